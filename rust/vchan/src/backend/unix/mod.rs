//! The unix backend: vchans between processes of one host, no hypervisor.
//!
//! Everything lives under one rendezvous directory ([`root_dir`]):
//!
//! | path | what |
//! |---|---|
//! | `gnt/<domid>/<id>` | pages shared by domain `<domid>` (see [`gnt`]) |
//! | `evtchn/<domid>/<port>[.sock,.peer]` | event channel ports (see [`evtchn`]) |
//! | `store/...` | the xenstore stand-in (see [`store`]) |
//!
//! Every object is owned by a live process through an `flock`; objects of
//! dead processes are swept away by the next endpoint that closes (and by
//! [`sweep`]). Directories are 0700 and files 0600.
//!
//! The backend owns only what it made: a root it created, or adopted
//! empty, carries the [`MARKER`] file; any other existing directory, and
//! any directory that other users can reach, is refused (with an error
//! naming the path and the fix), never chmod'ed nor swept. Below the root,
//! entries are judged through directory descriptors with `O_NOFOLLOW |
//! O_NONBLOCK` (see `fsobj.rs`): a planted symlink, FIFO or directory is
//! skipped, never followed, waited on, or fatal to a sweep. The root's
//! lock is waited for at most [`ROOT_LOCK_WAIT`].
//!
//! Creating objects, publishing and removing rendezvous, and sweeping all
//! happen under an exclusive `flock` of the rendezvous directory itself,
//! held for a few file system calls: so a sweeper never
//! judges an object that is half made (not yet locked, or locked but its
//! socket not yet bound), nor removes a rendezvous that a new server has
//! just put in the place of a stale one.

pub mod evtchn;
pub(crate) mod fsobj;
pub mod gnt;
mod membarrier;
pub mod store;

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::backend::{Backend, EventChannel, Region, Rendezvous};
use crate::backend::{
    BARRIER_LEAF, BARRIER_VALUE, EVENT_CHANNEL_LEAF, RENDEZVOUS_LEAVES, RING_REF_LEAF,
};
use crate::error::{Error, Result, DOMID_MAX};
use crate::port::DomId;
use evtchn::UnixEvent;

/// Environment variable: this process's domain id (default 0).
pub const ENV_DOMID: &str = "VCHAN_DOMID";
/// Environment variable: the rendezvous directory.
pub const ENV_DIR: &str = "VCHAN_UNIX_DIR";
/// The file that marks a directory as a vchan rendezvous directory: the
/// backend writes it in a directory it created (or adopted empty), and
/// never uses, changes or sweeps a directory without it.
pub const MARKER: &str = ".vchan-root";
const MARKER_TEXT: &[u8] = b"vchan-rs unix backend rendezvous directory\n";

/// How long set-up operations wait for the rendezvous directory's lock
/// before failing (it is normally held for a few file system calls).
pub const ROOT_LOCK_WAIT: Duration = Duration::from_secs(5);
/// How long a close waits for it, to remove its rendezvous and sweep;
/// after that, it leaves them to a later sweep.
const CLOSE_LOCK_WAIT: Duration = Duration::from_millis(250);

/// The rendezvous directory: `$VCHAN_UNIX_DIR`, else
/// `$XDG_RUNTIME_DIR/vchan`, else `$TMPDIR/vchan-<uid>` (`/tmp` when
/// `TMPDIR` is unset).
pub fn root_dir() -> PathBuf {
    if let Some(d) = std::env::var_os(ENV_DIR).filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("vchan");
    }
    let tmp = std::env::var_os("TMPDIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    tmp.join(format!("vchan-{}", uid()))
}

fn uid() -> libc::uid_t {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// This process's domain id from `$VCHAN_DOMID` (default 0), parsed as
/// every domain id is ([`DomId`]'s `FromStr`: decimal digits only).
pub fn env_domid() -> Result<DomId> {
    match std::env::var(ENV_DOMID) {
        Ok(s) => s.parse().map_err(|_| Error::InvalidEnv {
            var: ENV_DOMID,
            value: s.clone(),
            why: format!("expected a domain id, a number in 0..={DOMID_MAX}"),
        }),
        Err(std::env::VarError::NotPresent) => DomId::new(0),
        Err(std::env::VarError::NotUnicode(v)) => Err(Error::InvalidEnv {
            var: ENV_DOMID,
            value: v.to_string_lossy().into_owned(),
            why: "not a number".into(),
        }),
    }
}

/// The name of user `uid`, if it has one.
fn user_name(uid: libc::uid_t) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: all-zero is a valid `passwd`.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut res: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; `buf` outlives `pw`'s use.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut res) };
    if rc != 0 || res.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points to a NUL-terminated string in buf.
    let name = unsafe { std::ffi::CStr::from_ptr(pw.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// Does directory `dir` carry our marker?
fn marked(dir: RawFd) -> io::Result<bool> {
    Ok(fsobj::open_reg_at(dir, MARKER)?.is_some())
}

/// Open the rendezvous directory `root`, creating it (0700, with our
/// marker) if it does not exist. An existing directory is used only if it
/// is ours (our uid, no access for group or others) and carries the marker,
/// or is empty (then we mark it); anything else is refused with an error
/// that names the path and says what to do. Its permissions are never
/// changed.
fn prepare_root(root: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let err = |why: String| Error::UnixDir {
        path: root.to_path_buf(),
        why,
    };
    let hint = "set VCHAN_UNIX_DIR to a new or empty private directory";
    let c = std::ffi::CString::new(root.as_os_str().as_bytes())
        .map_err(|_| err("the path holds a NUL byte".into()))?;
    // SAFETY: `c` is NUL-terminated.
    let created = if unsafe { libc::mkdir(c.as_ptr(), 0o700) } == 0 {
        true
    } else {
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EEXIST) => false,
            Some(libc::ENOENT) if !root.parent().is_some_and(Path::is_dir) => {
                return Err(err(format!(
                    "its parent directory does not exist: create the parent, or {hint}"
                )))
            }
            _ => return Err(err(format!("cannot create it ({e}): {hint}"))),
        }
    };
    let is_link = || std::fs::symlink_metadata(root).is_ok_and(|m| m.file_type().is_symlink());
    let dir = fsobj::open_dir(root).map_err(|e| {
        err(match e.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::ENOTDIR) if is_link() => {
                format!("is a symbolic link, which vchan does not follow: name the real directory, or {hint}")
            }
            Some(libc::ENOTDIR) => format!("is not a directory: {hint}"),
            _ => format!("cannot open it ({e}): {hint}"),
        })
    })?;
    let st = fsobj::stat_fd(dir.as_raw_fd()).map_err(|e| err(format!("cannot stat it ({e})")))?;
    if st.st_uid != uid() {
        let owner = match user_name(st.st_uid) {
            Some(n) => format!("uid {} ({n})", st.st_uid),
            None => format!("uid {}", st.st_uid),
        };
        return Err(err(format!(
            "belongs to {owner}, not to us (uid {}): another user may have made it to \
             intercept or block our vchans; have it removed (by its owner or root), or {hint} \
             (or set XDG_RUNTIME_DIR)",
            uid()
        )));
    }
    if st.st_mode & 0o077 != 0 {
        return Err(err(format!(
            "is accessible to other users (mode {:04o}); vchan never changes the permissions \
             of a directory: {hint}",
            st.st_mode & 0o7777
        )));
    }
    let fd = dir.as_raw_fd();
    if marked(fd).map_err(|e| err(format!("cannot read {MARKER} ({e})")))? {
        return Ok(());
    }
    let others = fsobj::list(fd)
        .map_err(|e| err(format!("cannot list it ({e})")))?
        .into_iter()
        .any(|(n, _)| n != MARKER);
    // A concurrent process marks a directory before it puts anything in it.
    if !created && others && !marked(fd).unwrap_or(false) {
        return Err(err(format!(
            "is not empty and was not made by vchan (it has no {MARKER} file); vchan uses, and \
             sweeps, only directories it made: {hint}"
        )));
    }
    let m = std::ffi::CString::new(MARKER).map_err(|_| err("marker".into()))?;
    match fsobj::open_at(fd, &m, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL) {
        Ok(f) => {
            io::Write::write_all(&mut std::fs::File::from(f), MARKER_TEXT)
                .map_err(|e| err(format!("cannot write {MARKER} ({e})")))?;
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if !marked(fd).unwrap_or(false) {
                return Err(err(format!(
                    "{MARKER} exists but is not a regular file: {hint}"
                )));
            }
        }
        Err(e) => return Err(err(format!("cannot create {MARKER} ({e}): {hint}"))),
    }
    Ok(())
}

/// An exclusive `flock` on the rendezvous directory (see the module
/// documentation); released when dropped, or when its process dies.
#[derive(Debug)]
pub struct RootLock {
    _dir: OwnedFd,
}

impl RootLock {
    /// Take the lock on `root`, waiting at most [`ROOT_LOCK_WAIT`]. Never
    /// call this while holding it (in this process or thread).
    pub fn acquire(root: &Path) -> io::Result<RootLock> {
        RootLock::acquire_within(root, ROOT_LOCK_WAIT)
    }

    /// Take the lock on `root`, waiting at most `wait`: a process that
    /// holds it for longer (stuck, or hostile) gets us a `TimedOut` error
    /// naming the directory, never a hang.
    pub fn acquire_within(root: &Path, wait: Duration) -> io::Result<RootLock> {
        let dir = fsobj::open_dir(root)?;
        let deadline = Instant::now() + wait;
        let mut nap = Duration::from_micros(200);
        loop {
            // SAFETY: flock on a valid descriptor owned by `dir`.
            if unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(RootLock { _dir: dir });
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EWOULDBLOCK) => {}
                Some(libc::EINTR) => continue,
                _ => return Err(e),
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the rendezvous directory {} stayed locked by another process for {:?} \
                         (a stuck or hostile process holds flock(2) on it: find it with \
                         `fuser -v {}`)",
                        root.display(),
                        wait,
                        root.display()
                    ),
                ));
            }
            std::thread::sleep(nap.min(deadline - now));
            nap = (nap * 2).min(Duration::from_millis(20));
        }
    }
}

/// Is `name` a domain id as we write them?
fn is_domid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 5 && name.bytes().all(|b| b.is_ascii_digit())
}

/// Is `name` a share id as we write them?
fn is_share_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 10 && name.bytes().all(|b| b.is_ascii_digit())
}

/// Remove every object left behind by dead processes under `root`, and the
/// directories that become empty. Only a marked root (see [`MARKER`]) is
/// swept; only entries with the names and types we create are judged, and
/// anything else is skipped (and stays): an unexpected entry never stops
/// the sweep. Nothing is reached through a symlink.
pub fn sweep(root: &Path) -> io::Result<()> {
    sweep_within(root, ROOT_LOCK_WAIT)
}

fn sweep_within(root: &Path, wait: Duration) -> io::Result<()> {
    let _lock = RootLock::acquire_within(root, wait)?;
    let dir = fsobj::open_dir(root)?;
    let rfd = dir.as_raw_fd();
    if !marked(rfd)? {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} has no {MARKER}: not swept", root.display()),
        ));
    }
    for kind in ["gnt", "evtchn"] {
        let Ok(top) = fsobj::open_subdir(rfd, kind) else {
            continue;
        };
        for (name, k) in fsobj::list(top.as_raw_fd()).unwrap_or_default() {
            if k != fsobj::Kind::Dir || !is_domid_name(&name) {
                fsobj::skipped(kind, &name);
                continue;
            }
            let Ok(dom) = fsobj::open_subdir(top.as_raw_fd(), &name) else {
                continue;
            };
            if kind == "evtchn" {
                evtchn::sweep_dir(dom.as_raw_fd());
            } else {
                sweep_gnt_dir(dom.as_raw_fd());
            }
            fsobj::prune_at(top.as_raw_fd(), &name);
        }
        fsobj::prune_at(rfd, kind);
    }
    if let Ok(store) = fsobj::open_subdir(rfd, "store") {
        sweep_store(rfd, store.as_raw_fd(), &mut Vec::new());
        fsobj::prune_at(rfd, "store");
    }
    Ok(())
}

/// Reap the stale shares of one domain directory of `gnt/`.
fn sweep_gnt_dir(dir: RawFd) {
    for (name, kind) in fsobj::list(dir).unwrap_or_default() {
        if kind == fsobj::Kind::File
            && (is_share_name(&name) || name.starts_with(fsobj::TMP_PREFIX))
        {
            let _ = fsobj::reap_at(dir, &name);
        } else {
            fsobj::skipped("gnt/<domid>", &name);
        }
    }
}

/// Is the process that created temporary entry `name` (`.tmp-<pid>-<n>`)
/// gone? False for names not of that form.
fn tmp_owner_dead(name: &str) -> bool {
    let Some((pid, n)) = name
        .strip_prefix(fsobj::TMP_PREFIX)
        .and_then(|r| r.split_once('-'))
    else {
        return false;
    };
    let (Ok(pid), Ok(_)) = (pid.parse::<libc::pid_t>(), n.parse::<u64>()) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks for the process.
    let rc = unsafe { libc::kill(pid, 0) };
    rc != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// Remove the rendezvous node `name` of `dir` (or a temporary one): its
/// two leaves, then the directory if that left it empty. Nothing else in
/// it is touched.
fn remove_rendezvous_at(dir: RawFd, name: &str) {
    if let Ok(node) = fsobj::open_subdir(dir, name) {
        for leaf in RENDEZVOUS_LEAVES {
            if let Ok(Some(_)) = fsobj::open_reg_at(node.as_raw_fd(), leaf) {
                let _ = fsobj::unlink_at(node.as_raw_fd(), leaf, 0);
            }
        }
    }
    fsobj::prune_at(dir, name);
}

/// Deepest store node the sweep visits (`local/domain/<d>/data/vchan/<c>/<port>`
/// is 7 deep).
const STORE_SWEEP_DEPTH: usize = 12;

/// Sweep store directory `dir`, at path `at` below `store/`: temporary
/// entries of dead processes, rendezvous of dead servers, empty
/// directories.
fn sweep_store(root: RawFd, dir: RawFd, at: &mut Vec<String>) {
    if at.len() >= STORE_SWEEP_DEPTH {
        return;
    }
    for (name, kind) in fsobj::list(dir).unwrap_or_default() {
        if name.starts_with(fsobj::TMP_PREFIX) {
            if tmp_owner_dead(&name) {
                match kind {
                    fsobj::Kind::File => {
                        let _ = fsobj::unlink_at(dir, &name, 0);
                    }
                    fsobj::Kind::Dir => remove_rendezvous_at(dir, &name),
                    _ => {}
                }
            }
            continue;
        }
        if kind != fsobj::Kind::Dir {
            if kind != fsobj::Kind::File {
                fsobj::skipped("store", &name);
            }
            continue;
        }
        let Ok(sub) = fsobj::open_subdir(dir, &name) else {
            continue;
        };
        at.push(name);
        let owner = owner_of(at);
        let has_port = matches!(
            fsobj::open_reg_at(sub.as_raw_fd(), EVENT_CHANNEL_LEAF),
            Ok(Some(_))
        );
        let name = at.last().cloned().unwrap_or_default();
        if let (Some(owner), true) = (owner, has_port) {
            if matches!(rendezvous_live_at(root, owner, sub.as_raw_fd()), Ok(false)) {
                drop(sub);
                remove_rendezvous_at(dir, &name);
                at.pop();
                continue;
            }
        }
        sweep_store(root, sub.as_raw_fd(), at);
        drop(sub);
        fsobj::prune_at(dir, &name);
        at.pop();
    }
}

/// Owner domain of a store node below `local/domain/<d>/` (components
/// below `store/`).
fn owner_of(at: &[String]) -> Option<u32> {
    match at {
        [l, d, n, _, ..] if l == "local" && d == "domain" && is_domid_name(n) => n.parse().ok(),
        _ => None,
    }
}

/// Largest value a store leaf of ours holds, read back.
const LEAF_MAX: usize = 64;

/// Read the number in leaf `name` of store node `node`.
fn read_u32_leaf(node: RawFd, name: &str) -> io::Result<Option<u32>> {
    Ok(fsobj::read_small_at(node, name, LEAF_MAX)?
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|s| s.trim().parse::<u32>().ok()))
}

/// Is the server (domain `owner`) behind the rendezvous node `node` alive?
fn rendezvous_live_at(root: RawFd, owner: u32, node: RawFd) -> io::Result<bool> {
    let Some(port) = read_u32_leaf(node, EVENT_CHANNEL_LEAF)? else {
        return Ok(false);
    };
    let Ok(evtchn) = fsobj::open_subdir(root, "evtchn") else {
        return Ok(false);
    };
    let Ok(dom) = fsobj::open_subdir(evtchn.as_raw_fd(), &owner.to_string()) else {
        return Ok(false);
    };
    fsobj::is_live_at(dom.as_raw_fd(), &port.to_string())
}

/// Owner domain of the store node at xenstore path `xs_path`.
fn owner_of_path(xs_path: &str) -> Option<u32> {
    let comps: Vec<String> = xs_path
        .trim_start_matches('/')
        .split('/')
        .map(str::to_owned)
        .collect();
    owner_of(&comps)
}

/// Is the server behind the vchan rendezvous directory at `xs_path` alive?
/// (True for a node outside `/local/domain/<d>/`: nothing says.)
fn rendezvous_live(root: &Path, xs_path: &str) -> io::Result<bool> {
    let Some(owner) = owner_of_path(xs_path) else {
        return Ok(true);
    };
    let Some(node) = store::open_node(root, xs_path)? else {
        return Ok(false);
    };
    let rootfd = fsobj::open_dir(root)?;
    rendezvous_live_at(rootfd.as_raw_fd(), owner, node.as_raw_fd())
}

/// The unix backend, rooted at one rendezvous directory.
#[derive(Debug, Clone)]
pub struct UnixBackend {
    root: PathBuf,
    domid: DomId,
}

impl UnixBackend {
    /// The backend configured from the environment (`VCHAN_DOMID`,
    /// `VCHAN_UNIX_DIR`).
    pub fn from_env() -> Result<UnixBackend> {
        UnixBackend::new(root_dir(), env_domid()?)
    }

    /// A backend rooted at `root`, for a process in domain `domid`.
    pub fn new(root: PathBuf, domid: DomId) -> Result<UnixBackend> {
        prepare_root(&root)?;
        Ok(UnixBackend { root, domid })
    }

    /// The rendezvous directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Sweep the objects of dead processes (see [`sweep`]).
    pub fn sweep(&self) -> io::Result<()> {
        sweep(&self.root)
    }
}

fn io_err(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::ResourceBusy => Error::Busy,
        _ => Error::Io(e),
    }
}

impl Backend for UnixBackend {
    fn name(&self) -> &'static str {
        "unix"
    }

    fn process_barrier(&self) -> Option<fn()> {
        membarrier::process_barrier()
    }

    fn own_domid(&self) -> Result<DomId> {
        Ok(self.domid)
    }

    fn bind_unbound(&self, _remote: DomId) -> Result<Box<dyn EventChannel>> {
        let _lock = RootLock::acquire(&self.root)?;
        Ok(Box::new(
            UnixEvent::bind_unbound(&self.root, self.domid.get()).map_err(io_err)?,
        ))
    }

    fn bind_interdomain(&self, remote: DomId, remote_port: u32) -> Result<Box<dyn EventChannel>> {
        let _lock = RootLock::acquire(&self.root)?;
        Ok(Box::new(
            UnixEvent::bind_interdomain(&self.root, self.domid.get(), remote.get(), remote_port)
                .map_err(io_err)?,
        ))
    }

    fn share(
        &self,
        _remote: DomId,
        pages: usize,
        notify: Option<(u32, &mut dyn EventChannel)>,
    ) -> Result<Box<dyn Region>> {
        let share = {
            let _lock = RootLock::acquire(&self.root)?;
            gnt::share(&self.root, self.domid.get(), pages)?
        };
        if let Some((offset, ev)) = notify {
            ev.set_unmap_notify(self.domid, share.refs()[0], offset)?;
        }
        Ok(Box::new(share))
    }

    fn map(
        &self,
        remote: DomId,
        refs: &[u32],
        writable: bool,
        notify: Option<(u32, &mut dyn EventChannel)>,
    ) -> Result<Box<dyn Region>> {
        let mapped = gnt::map(&self.root, remote.get(), refs, writable)?;
        if let (Some((offset, ev)), Some(&first)) = (notify, refs.first()) {
            ev.set_unmap_notify(remote, first, offset)?;
        }
        Ok(Box::new(mapped))
    }

    fn publish(&self, path: &str, _client: DomId, rv: Rendezvous) -> Result<()> {
        let ring_ref = rv.ring_ref.to_string();
        let port = rv.event_channel.to_string();
        let mut leaves: Vec<(&str, &[u8])> = vec![
            (RING_REF_LEAF, ring_ref.as_bytes()),
            (EVENT_CHANNEL_LEAF, port.as_bytes()),
        ];
        if rv.barrier {
            leaves.push((BARRIER_LEAF, BARRIER_VALUE.as_bytes()));
        }
        let _lock = RootLock::acquire(&self.root)?;
        for _ in 0..2 {
            match store::create_dir_with(&self.root, path, &leaves) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if rendezvous_live(&self.root, path)? {
                        return Err(Error::AddrInUse);
                    }
                    // A stale rendezvous of a dead server: replace it.
                    if let Some((parent, name)) = path.rsplit_once('/') {
                        if let Ok(Some(p)) = store::open_node(&self.root, parent) {
                            remove_rendezvous_at(p.as_raw_fd(), name);
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::AddrInUse)
    }

    fn lookup(&self, path: &str) -> Result<Option<Rendezvous>> {
        let Some(node) = store::open_node(&self.root, path)? else {
            return Ok(None);
        };
        let field = |name: &str| -> Result<Option<u32>> {
            Ok(read_u32_leaf(node.as_raw_fd(), name)?.filter(|v| *v != 0))
        };
        let (Some(ring_ref), Some(event_channel)) =
            (field(RING_REF_LEAF)?, field(EVENT_CHANNEL_LEAF)?)
        else {
            return Ok(None);
        };
        if !rendezvous_live(&self.root, path)? {
            return Ok(None);
        }
        let barrier = fsobj::read_small_at(node.as_raw_fd(), BARRIER_LEAF, LEAF_MAX)?
            .is_some_and(|v| v.trim_ascii() == BARRIER_VALUE.as_bytes());
        Ok(Some(Rendezvous {
            ring_ref,
            event_channel,
            barrier,
        }))
    }

    fn unpublish(&self, path: &str) -> Result<()> {
        let _lock = RootLock::acquire_within(&self.root, CLOSE_LOCK_WAIT)?;
        store::rm(&self.root, path)?;
        Ok(())
    }

    fn sweep(&self) {
        let _ = sweep_within(&self.root, CLOSE_LOCK_WAIT);
    }
}
