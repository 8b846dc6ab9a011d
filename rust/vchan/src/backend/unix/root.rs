//! The rendezvous directory: where it is, making or adopting it (and
//! refusing any other), and its lock.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::fsobj;
use crate::error::{Error, Result};

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
pub(super) const CLOSE_LOCK_WAIT: Duration = Duration::from_millis(250);

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
pub(super) fn marked(dir: RawFd) -> io::Result<bool> {
    Ok(fsobj::open_reg_at(dir, MARKER)?.is_some())
}

/// Open the rendezvous directory `root`, creating it (0700, with our
/// marker) if it does not exist. An existing directory is used only if it
/// is ours (our uid, no access for group or others) and carries the marker,
/// or is empty (then we mark it); anything else is refused with an error
/// that names the path and says what to do. Its permissions are never
/// changed.
pub(super) fn prepare_root(root: &Path) -> Result<()> {
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
pub(super) fn is_domid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 5 && name.bytes().all(|b| b.is_ascii_digit())
}
