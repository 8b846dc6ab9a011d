//! Files whose liveness is an `flock` held by their owner, and safe access
//! to the rendezvous tree.
//!
//! Every object of the unix backend (granted pages, event channel ports,
//! client slots) is a file locked exclusively by the process that owns it.
//! The lock vanishes with the process, so anyone can tell a stale object
//! (lock free) from a live one, and clean it up. Objects are created under a
//! temporary name, locked, then linked to their final name, so that no one
//! ever sees an unlocked live object.
//!
//! Inspecting and removing goes through directory descriptors: every entry
//! is opened with `openat(2)` and `O_NOFOLLOW | O_NONBLOCK` (a symlink is
//! never followed, a FIFO never blocks), and only regular files are judged;
//! anything else found in the tree is left alone.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Prefix of temporary names.
pub(crate) const TMP_PREFIX: &str = ".tmp-";

/// Flags of every open below the root: never follow a symlink, never block
/// on a FIFO, never leak into a child.
pub(crate) const SAFE_OPEN: libc::c_int = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;

/// A file we own and hold locked, entry `name` of directory `dir`;
/// unlinked when dropped.
#[derive(Debug)]
pub(crate) struct Owned {
    dir: OwnedFd,
    name: String,
    file: File,
}

impl Owned {
    /// Replace the file's content (a reader that opens it after this
    /// returned reads all of it).
    pub(crate) fn set_content(&self, content: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.write_all_at(content, 0)?;
        self.file.set_len(content.len() as u64)
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = unlink_at(self.dir.as_raw_fd(), &self.name, 0);
    }
}

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

pub(crate) fn cstr(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// `openat(dir, name, flags | SAFE_OPEN)`.
pub(crate) fn open_at(dir: RawFd, name: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated; the result is checked and owned.
    let fd = cvt(unsafe { libc::openat(dir, name.as_ptr(), flags | SAFE_OPEN, 0o600) })?;
    // SAFETY: fd is a fresh descriptor we exclusively own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Open the directory `name` of `dir` (not a symlink).
pub(crate) fn open_subdir(dir: RawFd, name: &str) -> io::Result<OwnedFd> {
    open_at(
        dir,
        &cstr(name.as_bytes())?,
        libc::O_RDONLY | libc::O_DIRECTORY,
    )
}

/// Open the directory at `path`; its last component must not be a symlink
/// (the ones above are the user's choice).
pub(crate) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    open_at(
        libc::AT_FDCWD,
        &cstr(path.as_os_str().as_bytes())?,
        libc::O_RDONLY | libc::O_DIRECTORY,
    )
}

/// `fstatat(dir, name)` without following a symlink.
pub(crate) fn stat_at(dir: RawFd, name: &CStr) -> io::Result<libc::stat> {
    // SAFETY: all-zero is a valid `stat`; the kernel fills it in.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is NUL-terminated, `st` is writable.
    cvt(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

/// `fstat(fd)`.
pub(crate) fn stat_fd(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: all-zero is a valid `stat`; the kernel fills it in.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is writable for the call.
    cvt(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st)
}

pub(crate) fn is_reg(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFREG
}

/// `unlinkat(dir, name, flags)`; a missing entry is not an error.
pub(crate) fn unlink_at(dir: RawFd, name: &str, flags: libc::c_int) -> io::Result<()> {
    let n = cstr(name.as_bytes())?;
    // SAFETY: `n` is NUL-terminated.
    match cvt(unsafe { libc::unlinkat(dir, n.as_ptr(), flags) }) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// `mkdirat(dir, name, 0700)`.
pub(crate) fn mkdir_at(dir: RawFd, name: &str) -> io::Result<()> {
    let n = cstr(name.as_bytes())?;
    // SAFETY: `n` is NUL-terminated.
    cvt(unsafe { libc::mkdirat(dir, n.as_ptr(), 0o700) }).map(drop)
}

/// `renameat(dir, from, dir, to)`.
pub(crate) fn rename_at(dir: RawFd, from: &str, to: &str) -> io::Result<()> {
    let (f, t) = (cstr(from.as_bytes())?, cstr(to.as_bytes())?);
    // SAFETY: both names are NUL-terminated.
    cvt(unsafe { libc::renameat(dir, f.as_ptr(), dir, t.as_ptr()) }).map(drop)
}

/// Create the regular file `name` of `dir` (mode 0600, which must not
/// exist) holding `value`.
pub(crate) fn write_new_at(dir: RawFd, name: &str, value: &[u8]) -> io::Result<()> {
    let fd = open_at(
        dir,
        &cstr(name.as_bytes())?,
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
    )?;
    io::Write::write_all(&mut File::from(fd), value)
}

/// Remove the directory `name` of `dir` if it is empty (failures ignored:
/// someone may be using it, or it holds what is not ours).
pub(crate) fn prune_at(dir: RawFd, name: &str) {
    let _ = unlink_at(dir, name, libc::AT_REMOVEDIR);
}

/// Open the directory `root/rel[0]/rel[1]/...`: `root` by path (its
/// symlinks are the user's choice), every component below it with
/// `openat(O_NOFOLLOW)`, so that no symlink planted in the tree is
/// followed. `Ok(None)` if a component is missing or not a directory.
pub(crate) fn open_below(root: &Path, rel: &[&str]) -> io::Result<Option<OwnedFd>> {
    let mut dir = match open_dir(root) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    for c in rel {
        dir = match open_subdir(dir.as_raw_fd(), c) {
            Ok(d) => d,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP)
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
    }
    Ok(Some(dir))
}

/// depth limit of [`remove_tree_at`].
const REMOVE_DEPTH: usize = 32;

/// Remove entry `name` of `dir` and, if it is a directory, everything
/// below it, through directory descriptors (a symlink is removed, never
/// followed). A missing entry is not an error.
pub(crate) fn remove_tree_at(dir: RawFd, name: &str) -> io::Result<()> {
    remove_tree_depth(dir, name, 0)
}

fn remove_tree_depth(dir: RawFd, name: &str, depth: usize) -> io::Result<()> {
    let c = cstr(name.as_bytes())?;
    let st = match stat_at(dir, &c) {
        Ok(st) => st,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return unlink_at(dir, name, 0);
    }
    if depth >= REMOVE_DEPTH {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{name}: nested too deep to remove"),
        ));
    }
    let sub = open_subdir(dir, name)?;
    for (n, _) in list(sub.as_raw_fd())? {
        remove_tree_depth(sub.as_raw_fd(), &n, depth + 1)?;
    }
    unlink_at(dir, name, libc::AT_REMOVEDIR)
}

/// Kind of a directory entry, from `fstatat` (never followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Socket,
    /// Symlink, FIFO, device: never ours.
    Other,
}

/// The entries of directory `dir` (without `.` and `..`), with their kind.
/// Names that are not UTF-8 are skipped (we never make such names).
pub(crate) fn list(dir: RawFd) -> io::Result<Vec<(String, Kind)>> {
    // SAFETY: dup of a valid descriptor; the copy is owned by the stream.
    let fd = cvt(unsafe { libc::fcntl(dir, libc::F_DUPFD_CLOEXEC, 0) })?;
    // SAFETY: fd is ours; on success the stream owns it.
    let d = unsafe { libc::fdopendir(fd) };
    if d.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so fd is still ours to close.
        unsafe { libc::close(fd) };
        return Err(e);
    }
    // The duplicate shares the offset: start from the beginning.
    // SAFETY: d is a valid stream.
    unsafe { libc::rewinddir(d) };
    let mut names = Vec::new();
    loop {
        // SAFETY: d is a valid stream; the entry is valid until the next
        // readdir on it, and we copy the name before that.
        let ent = unsafe { libc::readdir(d) };
        if ent.is_null() {
            break;
        }
        // SAFETY: d_name is NUL-terminated within the entry.
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
        let b = name.to_bytes();
        if b == b"." || b == b".." {
            continue;
        }
        if let Ok(s) = std::str::from_utf8(b) {
            names.push(s.to_owned());
        }
    }
    // SAFETY: d is a valid stream, closed once (this closes fd).
    unsafe { libc::closedir(d) };
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        let Ok(c) = cstr(n.as_bytes()) else { continue };
        let Ok(st) = stat_at(dir, &c) else { continue };
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => Kind::File,
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFSOCK => Kind::Socket,
            _ => Kind::Other,
        };
        out.push((n, kind));
    }
    Ok(out)
}

/// Note an entry a sweep leaves alone (not one of ours), on stderr when
/// `VCHAN_DEBUG` is set: the unix backend's debug log.
pub(crate) fn skipped(where_: &str, name: &str) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("VCHAN_DEBUG").is_some_and(|v| !v.is_empty())) {
        eprintln!("vchan: sweep: left {where_}/{name:?} alone (not one of ours)");
    }
}

fn flock(fd: RawFd, op: libc::c_int) -> io::Result<bool> {
    // SAFETY: flock on a valid open descriptor.
    let rc = unsafe { libc::flock(fd, op) };
    if rc == 0 {
        Ok(true)
    } else {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            Ok(false)
        } else {
            Err(e)
        }
    }
}

/// A random number (from the standard library's per-process random hash
/// keys), to spread ids and ports of concurrent processes apart.
pub(crate) fn random() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

/// A unique temporary file name (`.tmp-<pid>-<n>`).
pub(crate) fn tmp_basename() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{TMP_PREFIX}{}-{n}", std::process::id())
}

/// Open the directory `root/rel[0]/...` as [`open_below`] does, making
/// the missing components (mode 0700) on the way.
pub(crate) fn open_or_make_below(root: &Path, rel: &[&str]) -> io::Result<OwnedFd> {
    let mut dir = open_dir(root)?;
    for c in rel {
        dir = match open_subdir(dir.as_raw_fd(), c) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match mkdir_at(dir.as_raw_fd(), c) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                    _ => {}
                }
                open_subdir(dir.as_raw_fd(), c)?
            }
            Err(e) => return Err(e),
        };
    }
    Ok(dir)
}

/// Create `dir/name` as a locked file holding `content`. Returns
/// `Ok(None)` when the name is taken (by a live or a stale owner: see
/// [`reap`]). `dir` is a domain directory, `<root>/<kind>/<domid>`: the
/// two components below the root are opened (made if missing) with
/// `O_NOFOLLOW`, so an object is never created through a planted symlink.
pub(crate) fn create(dir: &Path, name: &str, content: &[u8]) -> io::Result<Option<Owned>> {
    use std::io::Write;
    let (root, rel) = split_dom_dir(dir)?;
    let c_name = cstr(name.as_bytes())?;
    let mut tries = 0;
    loop {
        tries += 1;
        let d = open_or_make_below(root, &rel)?;
        let tmp = tmp_basename();
        let c_tmp = cstr(tmp.as_bytes())?;
        let file = match open_at(
            d.as_raw_fd(),
            &c_tmp,
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
        ) {
            Ok(f) => File::from(f),
            // A concurrent sweep pruned the (empty) directory: try again.
            Err(e) if e.kind() == io::ErrorKind::NotFound && tries < 8 => continue,
            Err(e) => return Err(e),
        };
        let mut guard = Owned {
            dir: d.try_clone()?,
            name: tmp,
            file,
        };
        if !flock(guard.file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB)? {
            // A sweeper took the fresh file for a dead one's (and unlinks
            // it): never publish an object we could not lock.
            if tries < 64 {
                continue;
            }
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("cannot lock a new file in {}", dir.display()),
            ));
        }
        if !content.is_empty() {
            guard.file.write_all(content)?;
        }
        // SAFETY: both names are NUL-terminated, `d` is open.
        let rc = unsafe {
            libc::linkat(
                d.as_raw_fd(),
                c_tmp.as_ptr(),
                d.as_raw_fd(),
                c_name.as_ptr(),
                0,
            )
        };
        if rc == 0 {
            // Dropping the guard unlinks the temporary name only.
            let file = guard.file.try_clone()?;
            drop(guard);
            return Ok(Some(Owned {
                dir: d,
                name: name.to_owned(),
                file,
            }));
        }
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::AlreadyExists => Ok(None),
            io::ErrorKind::NotFound if tries < 8 => continue,
            _ => Err(e),
        };
    }
}

/// Open the regular file `name` of `dir` for reading, never following a
/// symlink nor blocking; `Ok(None)` when it is missing or not a regular
/// file (a FIFO, a socket, a directory...: never one of our objects).
pub(crate) fn open_reg_at(dir: RawFd, name: &str) -> io::Result<Option<OwnedFd>> {
    let c = cstr(name.as_bytes())?;
    // Look before opening: opening a device could have effects.
    match stat_at(dir, &c) {
        Ok(st) if is_reg(&st) => {}
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    }
    let fd = match open_at(dir, &c, libc::O_RDONLY) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        // Swapped for a symlink (ELOOP) or a FIFO/device (ENXIO) meanwhile.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENXIO)) => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    if !is_reg(&stat_fd(fd.as_raw_fd())?) {
        return Ok(None);
    }
    Ok(Some(fd))
}

/// Is the object `name` of `dir` owned by a live process? `Ok(false)` for
/// a missing file or anything that is not a regular file.
pub(crate) fn is_live_at(dir: RawFd, name: &str) -> io::Result<bool> {
    match open_reg_at(dir, name)? {
        Some(fd) => Ok(!flock(fd.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB)?),
        None => Ok(false),
    }
}

/// Remove the object `name` of `dir` if its owner is dead; true if it was
/// removed (or absent). Anything but a regular file is left alone (false).
pub(crate) fn reap_at(dir: RawFd, name: &str) -> io::Result<bool> {
    let c = cstr(name.as_bytes())?;
    let fd = match open_reg_at(dir, name)? {
        Some(fd) => fd,
        None => {
            return match stat_at(dir, &c) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
                _ => Ok(false),
            }
        }
    };
    if !flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB)? {
        return Ok(false);
    }
    // The name may have been reaped, and given to a new (live) object,
    // between our open and our lock: unlink only the file we locked.
    let ours = stat_fd(fd.as_raw_fd())?;
    let now = match stat_at(dir, &c) {
        Ok(st) => st,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e),
    };
    if (ours.st_dev, ours.st_ino) != (now.st_dev, now.st_ino) {
        return Ok(false);
    }
    unlink_at(dir, name, 0)?;
    Ok(true)
}

/// Split a domain directory `<root>/<kind>/<domid>` (see the `dom_dir`
/// functions) into the root and the two components below it.
fn split_dom_dir(dir: &Path) -> io::Result<(&Path, [&str; 2])> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{}: not a domain directory of the rendezvous tree",
                dir.display()
            ),
        )
    };
    let domid = dir.file_name().and_then(|n| n.to_str()).ok_or_else(bad)?;
    let kind_dir = dir.parent().ok_or_else(bad)?;
    let kind = kind_dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(bad)?;
    let root = kind_dir.parent().ok_or_else(bad)?;
    Ok((root, [kind, domid]))
}

/// Open domain directory `<root>/<kind>/<domid>` without following a
/// symlink below the root; `Ok(None)` if it does not exist.
pub(crate) fn open_dom_dir(dir: &Path) -> io::Result<Option<OwnedFd>> {
    let (root, rel) = split_dom_dir(dir)?;
    open_below(root, &rel)
}

/// Split the path of an object, `<domain directory>/<name>`, into its
/// directory (opened, see [`open_dom_dir`]) and name.
fn parent_and_name(path: &Path) -> io::Result<Option<(OwnedFd, String)>> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
    else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    Ok(open_dom_dir(parent)?.map(|d| (d, name.to_owned())))
}

/// [`is_live_at`] by path.
pub(crate) fn is_live(path: &Path) -> io::Result<bool> {
    match parent_and_name(path)? {
        Some((d, n)) => is_live_at(d.as_raw_fd(), &n),
        None => Ok(false),
    }
}

/// [`reap_at`] by path.
pub(crate) fn reap(path: &Path) -> io::Result<bool> {
    match parent_and_name(path)? {
        Some((d, n)) => reap_at(d.as_raw_fd(), &n),
        None => Ok(true),
    }
}

/// Read at most `max` bytes of the regular file `name` of `dir` (see
/// [`open_reg_at`]); `Ok(None)` if it is missing or not a regular file.
pub(crate) fn read_small_at(dir: RawFd, name: &str, max: usize) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let Some(fd) = open_reg_at(dir, name)? else {
        return Ok(None);
    };
    let mut v = Vec::new();
    File::from(fd).take(max as u64 + 1).read_to_end(&mut v)?;
    if v.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{name}: more than {max} bytes"),
        ));
    }
    Ok(Some(v))
}
