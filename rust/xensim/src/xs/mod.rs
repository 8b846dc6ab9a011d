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
use std::ffi::{c_char, c_uint, c_ulong, CStr};
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use vchan::backend::unix::{store, RootLock};

use crate::{io_errno, malloc_bytes, own_domid, set_errno, with};

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

/// Xen's `struct xs_permissions` (`<xenstore_lib.h>`).
#[repr(C)]
struct XsPermissions {
    id: c_uint,
    perms: c_uint,
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

/// # Safety
/// `p` is null or a NUL-terminated string.
unsafe fn cstr<'a>(p: *const c_char) -> Result<&'a str, i32> {
    if p.is_null() {
        return Err(libc::EINVAL);
    }
    // SAFETY: per this function's contract.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| libc::EINVAL)
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

/// # Safety
/// `h` is null or a pointer returned by `xs_open` and not closed.
unsafe fn handle<'a>(h: *mut XsHandle) -> Result<&'a XsHandle, i32> {
    // SAFETY: per this function's contract.
    unsafe { h.as_ref() }.ok_or(libc::EINVAL)
}

fn err_false(e: i32) -> bool {
    set_errno(e);
    false
}

fn err_null<T>(e: i32) -> *mut T {
    set_errno(e);
    std::ptr::null_mut()
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

/// Xen's `xs_open` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_open` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_open(_flags: c_ulong) -> *mut XsHandle {
    match XsHandle::open() {
        Ok(h) => Box::into_raw(Box::new(h)),
        Err(e) => err_null(e),
    }
}

/// Xen's `xs_close` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_close` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_close(h: *mut XsHandle) {
    if !h.is_null() {
        // SAFETY: a pointer from xs_open, closed once (C contract).
        drop(unsafe { Box::from_raw(h) });
    }
}

/// Xen's `xs_daemon_open` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_daemon_open` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_daemon_open() -> *mut XsHandle {
    // SAFETY: no preconditions.
    unsafe { xs_open(0) }
}

/// Xen's `xs_daemon_open_readonly` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_daemon_open_readonly` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_daemon_open_readonly() -> *mut XsHandle {
    // SAFETY: no preconditions.
    unsafe { xs_open(0) }
}

/// Xen's `xs_domain_open` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_domain_open` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_domain_open() -> *mut XsHandle {
    // SAFETY: no preconditions.
    unsafe { xs_open(0) }
}

/// Xen's `xs_daemon_close` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_daemon_close` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_daemon_close(h: *mut XsHandle) {
    // SAFETY: forwarded C contract.
    unsafe { xs_close(h) }
}

/// Xen's `xs_read` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_read` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_read(
    h: *mut XsHandle,
    t: u32,
    path: *const c_char,
    len: *mut c_uint,
) -> *mut c_char {
    // SAFETY: C contract: a handle from xs_open and a C string.
    // SAFETY: C contract: a C string.
    let res = unsafe { handle(h) }.and_then(|h| h.read(t, unsafe { cstr(path) }?));
    match res {
        Ok(v) => {
            let out = malloc_bytes(&v);
            if !out.is_null() && !len.is_null() {
                // SAFETY: C contract: `len` is null or valid for writes.
                unsafe { *len = v.len() as c_uint };
            }
            out
        }
        Err(e) => err_null(e),
    }
}

/// Xen's `xs_write` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_write` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_write(
    h: *mut XsHandle,
    t: u32,
    path: *const c_char,
    data: *const libc::c_void,
    len: c_uint,
) -> bool {
    // SAFETY: C contract: a handle from xs_open.
    let res = unsafe { handle(h) }.and_then(|h| {
        // SAFETY: C contract: a C string.
        let p = unsafe { cstr(path) }?;
        let v: &[u8] = if len == 0 {
            &[]
        } else if data.is_null() {
            return Err(libc::EINVAL);
        } else {
            // SAFETY: C contract: `data` holds `len` bytes.
            unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len as usize) }
        };
        h.write(t, p, v)
    });
    res.map_or_else(err_false, |()| true)
}

/// Xen's `xs_mkdir` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_mkdir` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_mkdir(h: *mut XsHandle, t: u32, path: *const c_char) -> bool {
    // SAFETY: C contract: a handle from xs_open and a C string.
    let res = unsafe { handle(h) }.and_then(|h| h.mkdir(t, unsafe { cstr(path) }?));
    res.map_or_else(err_false, |()| true)
}

/// Xen's `xs_rm` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_rm` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_rm(h: *mut XsHandle, t: u32, path: *const c_char) -> bool {
    // SAFETY: C contract: a handle from xs_open and a C string.
    let res = unsafe { handle(h) }.and_then(|h| h.rm(t, unsafe { cstr(path) }?));
    res.map_or_else(err_false, |()| true)
}

/// Permissions are not simulated: accepted for any valid path.
/// Xen's `xs_set_permissions` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_set_permissions` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_set_permissions(
    h: *mut XsHandle,
    _t: u32,
    path: *const c_char,
    _perms: *mut libc::c_void,
    _num_perms: c_uint,
) -> bool {
    // SAFETY: C contract: a handle from xs_open and a C string.
    let res = unsafe { handle(h) }.and_then(|h| h.set_permissions(unsafe { cstr(path) }?));
    res.map_or_else(err_false, |()| true)
}

/// Xen's `xs_get_permissions` (`<xenstore.h>`): one entry, as
/// [`XsHandle::get_permissions`] says.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_get_permissions` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_get_permissions(
    h: *mut XsHandle,
    t: u32,
    path: *const c_char,
    num: *mut c_uint,
) -> *mut libc::c_void {
    // SAFETY: C contract: a handle from xs_open and a C string.
    let res = unsafe { handle(h) }.and_then(|h| h.get_permissions(t, unsafe { cstr(path) }?));
    match res {
        Ok(p) => {
            // SAFETY: plain malloc; the result is checked.
            let out = unsafe { libc::malloc(std::mem::size_of::<XsPermissions>()) }
                .cast::<XsPermissions>();
            if out.is_null() {
                return err_null(libc::ENOMEM);
            }
            let bits = u32::from(p.read) | (u32::from(p.write) << 1);
            // SAFETY: `out` is a fresh allocation of one entry, aligned by
            // malloc; `num` is null or valid for writes (C contract).
            unsafe {
                out.write(XsPermissions {
                    id: p.owner,
                    perms: bits,
                });
                if !num.is_null() {
                    *num = 1;
                }
            }
            out.cast()
        }
        Err(e) => err_null(e),
    }
}

/// A `malloc`ed vector of `items` pointers followed by the strings, freed
/// by one `free`, as libxenstore returns them.
fn malloc_vector(items: &[&str]) -> *mut *mut c_char {
    let ptrs = std::mem::size_of::<*mut c_char>() * items.len();
    let total = ptrs + items.iter().map(|s| s.len() + 1).sum::<usize>();
    // SAFETY: plain malloc; the result is checked.
    let base = unsafe { libc::malloc(total.max(1)) }.cast::<u8>();
    if base.is_null() {
        return err_null(libc::ENOMEM);
    }
    let vec = base.cast::<*mut c_char>();
    let mut at = ptrs;
    for (i, s) in items.iter().enumerate() {
        // SAFETY: `at + s.len() + 1 <= total` and slot i < items.len(), all
        // inside the fresh allocation; malloc aligns for pointers.
        unsafe {
            let dst = base.add(at);
            std::ptr::copy_nonoverlapping(s.as_ptr(), dst, s.len());
            *dst.add(s.len()) = 0;
            *vec.add(i) = dst.cast();
        }
        at += s.len() + 1;
    }
    vec
}

/// Xen's `xs_directory` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_directory` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_directory(
    h: *mut XsHandle,
    t: u32,
    path: *const c_char,
    num: *mut c_uint,
) -> *mut *mut c_char {
    // SAFETY: C contract: a handle from xs_open and a C string.
    let res = unsafe { handle(h) }.and_then(|h| h.directory(t, unsafe { cstr(path) }?));
    match res {
        Ok(names) => {
            let items: Vec<&str> = names.iter().map(String::as_str).collect();
            let v = malloc_vector(&items);
            if !v.is_null() && !num.is_null() {
                // SAFETY: C contract: `num` is null or valid for writes.
                unsafe { *num = items.len() as c_uint };
            }
            v
        }
        Err(e) => err_null(e),
    }
}

/// Xen's `xs_get_domain_path` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_get_domain_path` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_get_domain_path(_h: *mut XsHandle, domid: c_uint) -> *mut c_char {
    malloc_bytes(format!("/local/domain/{domid}").as_bytes())
}

/// Xen's `xs_transaction_start` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_transaction_start` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_transaction_start(h: *mut XsHandle) -> u32 {
    // SAFETY: C contract: a handle from xs_open.
    match unsafe { handle(h) } {
        Ok(h) => h.transaction_start(),
        Err(e) => {
            set_errno(e);
            0
        }
    }
}

/// Xen's `xs_transaction_end` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_transaction_end` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_transaction_end(h: *mut XsHandle, t: u32, abort: bool) -> bool {
    // SAFETY: C contract: a handle from xs_open.
    let res = unsafe { handle(h) }.and_then(|h| h.transaction_end(t, abort));
    res.map_or_else(err_false, |()| true)
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

/// Xen's `xs_watch` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_watch` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_watch(
    h: *mut XsHandle,
    path: *const c_char,
    token: *const c_char,
) -> bool {
    // SAFETY: C contract: a handle from xs_open and C strings.
    let res = unsafe { handle(h) }.and_then(|h| {
        // SAFETY: C contract: C strings.
        let (p, tok) = unsafe { (cstr(path)?, cstr(token)?) };
        h.watch(p, tok)
    });
    res.map_or_else(err_false, |()| true)
}

/// Xen's `xs_unwatch` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_unwatch` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_unwatch(
    h: *mut XsHandle,
    path: *const c_char,
    token: *const c_char,
) -> bool {
    // SAFETY: C contract: a handle from xs_open and C strings.
    let res = unsafe { handle(h) }.and_then(|h| {
        // SAFETY: C contract: C strings.
        let (p, tok) = unsafe { (cstr(path)?, cstr(token)?) };
        h.unwatch(p, tok)
    });
    res.map_or_else(err_false, |()| true)
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

fn event_vector(ev: (String, String), num: *mut c_uint) -> *mut *mut c_char {
    let v = malloc_vector(&[&ev.0, &ev.1]);
    if !v.is_null() && !num.is_null() {
        // SAFETY: C contract: `num` is null or valid for writes.
        unsafe { *num = 2 };
    }
    v
}

/// Xen's `xs_read_watch` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_read_watch` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_read_watch(h: *mut XsHandle, num: *mut c_uint) -> *mut *mut c_char {
    // SAFETY: C contract: a handle from xs_open.
    let h = match unsafe { handle(h) } {
        Ok(h) => h,
        Err(e) => return err_null(e),
    };
    loop {
        match next_event(h) {
            Ok(Some(ev)) => return event_vector(ev, num),
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return err_null(e),
        }
    }
}

/// Xen's `xs_check_watch` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_check_watch` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_check_watch(h: *mut XsHandle) -> *mut *mut c_char {
    // SAFETY: C contract: a handle from xs_open.
    let h = match unsafe { handle(h) } {
        Ok(h) => h,
        Err(e) => return err_null(e),
    };
    match next_event(h) {
        Ok(Some(ev)) => event_vector(ev, std::ptr::null_mut()),
        Ok(None) => err_null(libc::EAGAIN),
        Err(e) => err_null(e),
    }
}
