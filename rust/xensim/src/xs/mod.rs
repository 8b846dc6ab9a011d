//! `libxenstore`: the unix backend's directory tree under `store/`.
//!
//! Relative paths are under `/local/domain/<VCHAN_DOMID>/`, except that
//! `domid` reads as `VCHAN_DOMID` itself. Permissions are not simulated
//! (the tree is private to one user). Transactions buffer their writes and
//! removals and apply them at the end under the unix backend's root lock;
//! they never fail with `EAGAIN`. Watches fire once when set, then
//! whenever a poll (every 20 ms, in `xs_read_watch`) sees the watched
//! subtree change; `@`-paths never change.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Mutex;

use vchan::backend::unix::{store, RootLock};

use crate::{io_errno, own_domid, with};

mod abi;

enum Op {
    Write(String, Vec<u8>),
    Rm(String),
    Mkdir(String),
}

struct Watch {
    path: String,
    token: String,
    print: u64,
}

#[derive(Default)]
struct Inner {
    next_t: u32,
    trans: HashMap<u32, Vec<Op>>,
    watches: Vec<Watch>,
    queue: VecDeque<(String, String)>,
}

/// A node's permissions for the domains other than its owner (xenstored's
/// first permission entry, `b<owner>` for both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perms {
    /// The owning domain.
    pub owner: u32,
    /// Others may read.
    pub read: bool,
    /// Others may write.
    pub write: bool,
}

impl Perms {
    /// xenstored's text form: `n`, `r`, `w` or `b`, then the owner.
    pub fn to_wire(self) -> String {
        let c = match (self.read, self.write) {
            (false, false) => 'n',
            (true, false) => 'r',
            (false, true) => 'w',
            (true, true) => 'b',
        };
        format!("{c}{}", self.owner)
    }
}

/// An open xenstore handle (opaque to C).
pub struct XsHandle {
    inner: Mutex<Inner>,
}

impl XsHandle {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn root() -> Result<std::path::PathBuf, i32> {
    with(|g| g.backend()).map(|b| b.root().to_path_buf())
}

/// Absolute form of a xenstore path.
fn absolute(path: &str) -> Result<String, i32> {
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    if path.starts_with('/') {
        Ok(path.to_owned())
    } else if path.is_empty() {
        Err(libc::EINVAL)
    } else {
        Ok(format!("/local/domain/{}/{path}", own_domid()?))
    }
}

/// Is `path` `p` or below it?
fn under(path: &str, p: &str) -> bool {
    path == p || (path.starts_with(p) && path.as_bytes().get(p.len()) == Some(&b'/'))
}

/// Read `path`, seeing transaction `t`'s buffered changes.
fn read(h: &XsHandle, t: u32, path: &str) -> Result<Option<Vec<u8>>, i32> {
    if t != 0 {
        let inner = h.lock();
        let ops = inner.trans.get(&t).ok_or(libc::EINVAL)?;
        for op in ops.iter().rev() {
            match op {
                Op::Write(p, v) if p == path => return Ok(Some(v.clone())),
                Op::Rm(p) if under(path, p) => return Ok(None),
                _ => {}
            }
        }
    }
    store::read(&root()?, path).map_err(|e| io_errno(&e))
}

/// The children of `path`, seeing transaction `t`'s buffered changes.
fn directory(h: &XsHandle, t: u32, path: &str) -> Result<Option<Vec<String>>, i32> {
    let mut names = store::directory(&root()?, path).map_err(|e| io_errno(&e))?;
    if t == 0 {
        return Ok(names);
    }
    let inner = h.lock();
    for op in inner.trans.get(&t).ok_or(libc::EINVAL)? {
        let (Op::Write(p, _) | Op::Rm(p) | Op::Mkdir(p)) = op;
        if let Op::Rm(_) = op {
            if under(path, p) {
                names = None;
            } else if let Some(n) = &mut names {
                n.retain(|c| !under(&format!("{path}/{c}"), p));
            }
            continue;
        }
        // A write or mkdir makes `path` and its child on the way to `p`.
        if under(p, path) {
            let n = names.get_or_insert_with(Vec::new);
            if let Some(child) = p[path.len()..].trim_start_matches('/').split('/').next() {
                if !child.is_empty() && !n.iter().any(|c| c == child) {
                    n.push(child.to_owned());
                    n.sort();
                }
            }
        }
    }
    Ok(names)
}

fn apply(root: &Path, op: &Op) -> Result<(), i32> {
    match op {
        Op::Write(p, v) => store::write(root, p, v),
        Op::Rm(p) => {
            let _lock = RootLock::acquire(root).map_err(|e| io_errno(&e))?;
            // As xenstored: the parents stay, even empty.
            store::rm_node(root, p)
        }
        Op::Mkdir(p) => {
            let dir = store::node_path(root, p).map_err(|e| io_errno(&e))?;
            if dir.is_dir() {
                Ok(())
            } else {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
            }
        }
    }
    .map_err(|e| io_errno(&e))
}

/// Do `op` now (t = 0) or at the end of transaction `t`.
fn change(h: &XsHandle, t: u32, op: Op) -> Result<(), i32> {
    let root = root()?;
    // Validate the path now, as xenstored would.
    let (Op::Write(p, _) | Op::Rm(p) | Op::Mkdir(p)) = &op;
    store::node_path(&root, p).map_err(|e| io_errno(&e))?;
    if t == 0 {
        return apply(&root, &op);
    }
    let mut inner = h.lock();
    inner.trans.get_mut(&t).ok_or(libc::EINVAL)?.push(op);
    Ok(())
}

impl XsHandle {
    /// A handle on the store of `VCHAN_UNIX_DIR` (`EINVAL`, ... when the
    /// unix backend cannot be configured from the environment).
    pub fn open() -> Result<XsHandle, i32> {
        root()?;
        Ok(XsHandle {
            inner: Mutex::new(Inner::default()),
        })
    }

    /// The value at `path` (relative to this domain's home; `domid` is
    /// this domain's id), seeing transaction `t` (0: none).
    pub fn read(&self, t: u32, path: &str) -> Result<Vec<u8>, i32> {
        if path == "domid" {
            return Ok(own_domid()?.to_string().into_bytes());
        }
        read(self, t, &absolute(path)?)?.ok_or(libc::ENOENT)
    }

    /// Write `value` at `path`, now (`t` = 0) or at the end of `t`.
    pub fn write(&self, t: u32, path: &str, value: &[u8]) -> Result<(), i32> {
        change(self, t, Op::Write(absolute(path)?, value.to_vec()))
    }

    /// Make the node `path` (and its parents), empty if it is new.
    pub fn mkdir(&self, t: u32, path: &str) -> Result<(), i32> {
        change(self, t, Op::Mkdir(absolute(path)?))
    }

    /// Remove the subtree at `path`.
    pub fn rm(&self, t: u32, path: &str) -> Result<(), i32> {
        change(self, t, Op::Rm(absolute(path)?))
    }

    /// Permissions are not simulated: accepted for any valid path.
    pub fn set_permissions(&self, path: &str) -> Result<(), i32> {
        store::node_path(&root()?, &absolute(path)?).map_err(|e| io_errno(&e))?;
        Ok(())
    }

    /// The permissions of the node `path`, as they are: not enforced, so
    /// the node is this domain's and everyone may read and write it
    /// (`ENOENT` when there is no such node).
    pub fn get_permissions(&self, t: u32, path: &str) -> Result<Perms, i32> {
        let p = absolute(path)?;
        if read(self, t, &p)?.is_none() && directory(self, t, &p)?.is_none() {
            return Err(libc::ENOENT);
        }
        Ok(Perms {
            owner: own_domid()?,
            read: true,
            write: true,
        })
    }

    /// The names of `path`'s children, sorted.
    pub fn directory(&self, t: u32, path: &str) -> Result<Vec<String>, i32> {
        directory(self, t, &absolute(path)?)?.ok_or(libc::ENOENT)
    }

    /// A new transaction's id (never 0).
    pub fn transaction_start(&self) -> u32 {
        let mut inner = self.lock();
        inner.next_t = inner.next_t.wrapping_add(1).max(1);
        let t = inner.next_t;
        inner.trans.insert(t, Vec::new());
        t
    }

    /// End transaction `t`: apply its changes, or drop them (`abort`).
    pub fn transaction_end(&self, t: u32, abort: bool) -> Result<(), i32> {
        let ops = self.lock().trans.remove(&t).ok_or(libc::EINVAL)?;
        if abort {
            return Ok(());
        }
        let root = root()?;
        // Removals take the root lock themselves: apply them after the
        // writes, which go under one hold of it.
        {
            let _lock = RootLock::acquire(&root).map_err(|e| io_errno(&e))?;
            for op in ops.iter().filter(|o| !matches!(o, Op::Rm(_))) {
                apply(&root, op)?;
            }
        }
        for op in ops.iter().filter(|o| matches!(o, Op::Rm(_))) {
            apply(&root, op)?;
        }
        Ok(())
    }

    /// Watch the subtree at `path` (or a special `@` path) with `token`;
    /// the watch fires once now.
    pub fn watch(&self, path: &str, token: &str) -> Result<(), i32> {
        let p = watch_path(path)?;
        let print = fingerprint(&root()?, &p);
        let mut inner = self.lock();
        inner.queue.push_back((p.clone(), token.to_owned()));
        inner.watches.push(Watch {
            path: p,
            token: token.to_owned(),
            print,
        });
        Ok(())
    }

    /// Remove the watch of `path` and `token` (`ENOENT` if there is none).
    pub fn unwatch(&self, path: &str, token: &str) -> Result<(), i32> {
        let p = watch_path(path)?;
        let mut inner = self.lock();
        let before = inner.watches.len();
        inner.watches.retain(|w| !(w.path == p && w.token == token));
        inner.queue.retain(|(qp, qt)| !(*qp == p && qt == token));
        if inner.watches.len() == before {
            return Err(libc::ENOENT);
        }
        Ok(())
    }

    /// Remove every watch of this handle, and the events not yet taken.
    pub fn unwatch_all(&self) {
        let mut inner = self.lock();
        inner.watches.clear();
        inner.queue.clear();
    }

    /// One watch event (path, token) if one is due: queued, or a watched
    /// subtree changed since the last look. `EINVAL` when nothing is
    /// watched.
    pub fn next_event(&self) -> Result<Option<(String, String)>, i32> {
        next_event(self)
    }
}

/// A digest of the subtree at `path` (names and values), to see changes.
fn fingerprint(root: &Path, path: &str) -> u64 {
    fn walk(p: &Path, h: &mut std::collections::hash_map::DefaultHasher, depth: u32) {
        match std::fs::read_dir(p) {
            Ok(rd) => {
                1u8.hash(h);
                let mut names: Vec<_> = rd.flatten().map(|e| e.file_name()).collect();
                names.sort();
                for n in names {
                    n.hash(h);
                    if depth < 16 {
                        walk(&p.join(&n), h, depth + 1);
                    }
                }
            }
            Err(_) => match std::fs::read(p) {
                Ok(v) => {
                    2u8.hash(h);
                    v.hash(h);
                }
                Err(_) => 3u8.hash(h),
            },
        }
    }
    if path.starts_with('@') {
        return 0;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match store::node_path(root, path) {
        Ok(p) => walk(&p, &mut h, 0),
        Err(_) => 4u8.hash(&mut h),
    }
    h.finish()
}

/// A watched path: a special one (`@introduceDomain`, ...) as is, else
/// made absolute.
fn watch_path(p: &str) -> Result<String, i32> {
    if p.starts_with('@') {
        Ok(p.to_owned())
    } else {
        absolute(p)
    }
}

/// One watch event if one is due: queued, or a watched subtree changed.
fn next_event(h: &XsHandle) -> Result<Option<(String, String)>, i32> {
    let root = root()?;
    let mut inner = h.lock();
    if inner.queue.is_empty() {
        if inner.watches.is_empty() {
            return Err(libc::EINVAL);
        }
        let mut fired = Vec::new();
        for w in inner.watches.iter_mut() {
            let now = fingerprint(&root, &w.path);
            if now != w.print {
                w.print = now;
                fired.push((w.path.clone(), w.token.clone()));
            }
        }
        inner.queue.extend(fired);
    }
    Ok(inner.queue.pop_front())
}
