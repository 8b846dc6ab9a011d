//! Files whose liveness is an `flock` held by their owner.
//!
//! Every object of the unix backend (granted pages, event channel ports,
//! client slots) is a file locked exclusively by the process that owns it.
//! The lock vanishes with the process, so anyone can tell a stale object
//! (lock free) from a live one, and clean it up. Objects are created under a
//! temporary name, locked, then linked to their final name, so that no one
//! ever sees an unlocked live object.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Prefix of temporary names.
pub(crate) const TMP_PREFIX: &str = ".tmp-";

/// A file we own and hold locked; unlinked when dropped.
#[derive(Debug)]
pub(crate) struct Owned {
    path: PathBuf,
    file: File,
}

impl Owned {
    /// The open, locked file.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Create the directory `dir` (and parents) with mode 0700.
pub(crate) fn mkdir_p(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn flock(file: &File, op: libc::c_int) -> io::Result<bool> {
    // SAFETY: flock on a valid open descriptor owned by `file`.
    let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
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

/// A unique temporary name in `dir`.
pub(crate) fn tmp_name(dir: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{TMP_PREFIX}{}-{n}", std::process::id()))
}

/// Create `dir/name` as a locked file of `len` bytes. Returns `Ok(None)`
/// when the name is taken (by a live or a stale owner: see [`reap`]).
pub(crate) fn create(dir: &Path, name: &str, len: u64) -> io::Result<Option<Owned>> {
    let mut tries = 0;
    loop {
        tries += 1;
        mkdir_p(dir)?;
        let tmp = tmp_name(dir);
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
        {
            Ok(f) => f,
            // A concurrent sweep pruned the (empty) directory: try again.
            Err(e) if e.kind() == io::ErrorKind::NotFound && tries < 8 => continue,
            Err(e) => return Err(e),
        };
        let guard = Owned { path: tmp, file };
        if !flock(&guard.file, libc::LOCK_EX | libc::LOCK_NB)? {
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
        if len > 0 {
            guard.file.set_len(len)?;
        }
        let path = dir.join(name);
        return match fs::hard_link(&guard.path, &path) {
            Ok(()) => {
                // Dropping the guard unlinks the temporary name only.
                let file = guard.file.try_clone()?;
                drop(guard);
                Ok(Some(Owned { path, file }))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound && tries < 8 => continue,
            Err(e) => Err(e),
        };
    }
}

/// Is the object at `path` owned by a live process? `Ok(false)` for a
/// missing file.
pub(crate) fn is_live(path: &Path) -> io::Result<bool> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    Ok(!flock(&file, libc::LOCK_SH | libc::LOCK_NB)?)
}

/// Remove `path` if its owner is dead; true if it was removed (or absent).
pub(crate) fn reap(path: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e),
    };
    if !flock(&file, libc::LOCK_EX | libc::LOCK_NB)? {
        return Ok(false);
    }
    // The name may have been reaped, and given to a new (live) object,
    // between our open and our lock: unlink only the file we locked.
    let (ours, now) = match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => (a, b),
        (_, Err(e)) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    if (ours.dev(), ours.ino()) != (now.dev(), now.ino()) {
        return Ok(false);
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

/// Remove `dir` if it is empty, ignoring failures (someone may be using it).
pub(crate) fn prune(dir: &Path) {
    let _ = fs::remove_dir(dir);
}
