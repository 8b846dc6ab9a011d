//! Granted pages as sealed memory files.
//!
//! A share of `n` pages by domain `d` is a `memfd` of `n` pages sealed with
//! `F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`: no one, the owner included,
//! can ever make it shorter, so a mapping of it can never raise `SIGBUS`.
//! It is published as the lock file `gnt/<d>/<id>`, held by its owner and
//! holding `memfd <pid> <fd> <inode> <pages>`: a mapper opens
//! `/proc/<pid>/fd/<fd>` (the owner's memfd: same user, same PID
//! namespace), checks the inode, the seals and the size, and maps it.
//! Truncating or replacing `gnt/<d>/<id>` changes nothing for a mapping.
//! Page `i` of a share has grant reference `(id << 9) | i`. Ids start at 1,
//! so no reference is ever 0 (Xen's C client treats 0 as failure).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use super::fsobj::{self, Owned};
use crate::backend::Region;
use vchan_core::layout::PAGE_SIZE as PAGE;

/// Bits of a grant reference that number the page within its share.
pub const INDEX_BITS: u32 = 9;
/// Most pages in one share.
pub const MAX_SHARE_PAGES: usize = 1 << INDEX_BITS;
/// Largest share id: every grant reference stays below 2^31, because Xen's
/// C library holds the control page's reference in an `int` (a negative
/// one reads as failure in `libxenvchan_server_init`).
const MAX_ID: u32 = (i32::MAX as u32) >> INDEX_BITS;

/// Split a grant reference into (share id, page index).
pub fn split_ref(gref: u32) -> (u32, usize) {
    (
        gref >> INDEX_BITS,
        (gref & ((1 << INDEX_BITS) - 1)) as usize,
    )
}

/// A shared mapping of `len` bytes.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory, usable from any thread.
unsafe impl Send for Mapping {}

impl Mapping {
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Reserve `len` bytes of address space, inaccessible until pages are
    /// mapped over it, between two guard pages that stay inaccessible: a
    /// stray access just outside the shared memory faults instead of
    /// reaching a neighbouring mapping.
    fn reserve(len: usize) -> io::Result<Mapping> {
        let total = len
            .checked_add(2 * PAGE)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: anonymous mapping at a kernel-chosen address; no existing
        // memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: PAGE < total: inside the reservation just made.
        let usable = unsafe { p.cast::<u8>().add(PAGE) };
        Ok(Mapping {
            ptr: NonNull::new(usable).ok_or_else(io::Error::last_os_error)?,
            len,
        })
    }

    /// Map `pages` pages of `fd` from page `first` at byte `at` of this
    /// reservation.
    fn map_fd_at(
        &self,
        at: usize,
        fd: libc::c_int,
        first: usize,
        pages: usize,
        writable: bool,
    ) -> io::Result<()> {
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        assert!(at + pages * PAGE <= self.len);
        // SAFETY: MAP_FIXED replaces pages inside our own reservation only
        // (bounds asserted above); callers map only sealed memfds checked
        // to be long enough, which cannot shrink: no access ever faults.
        let p = unsafe {
            libc::mmap(
                self.as_ptr().add(at).cast(),
                pages * PAGE,
                prot,
                libc::MAP_SHARED | libc::MAP_FIXED,
                fd,
                (first * PAGE) as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: we own this mapping and its guard pages (see `reserve`);
        // nothing refers to them after drop.
        unsafe {
            libc::munmap(self.ptr.as_ptr().sub(PAGE).cast(), self.len + 2 * PAGE);
        }
    }
}

/// Pages we share: our mapping, the memfd, and the locked file that
/// publishes it.
#[derive(Debug)]
pub(crate) struct Share {
    // Field order: unmap before the file is unlinked and unlocked.
    map: Mapping,
    _file: Owned,
    _memfd: OwnedFd,
    refs: Vec<u32>,
}

impl Region for Share {
    fn as_ptr(&self) -> *mut u8 {
        self.map.as_ptr()
    }
    fn len(&self) -> usize {
        self.map.len()
    }
    fn refs(&self) -> &[u32] {
        &self.refs
    }
}

/// Directory of domain `domid`'s shares.
pub(crate) fn dom_dir(root: &Path, domid: u32) -> PathBuf {
    root.join("gnt").join(domid.to_string())
}

fn random_id() -> u32 {
    ((fsobj::random() as u32) & MAX_ID).max(1)
}

/// Seals every share carries; a mapper requires [`REQUIRED_SEALS`].
const SEALS: libc::c_int = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
/// What makes a mapping safe: the file can never shrink.
const REQUIRED_SEALS: libc::c_int = libc::F_SEAL_SHRINK;

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// A new sealed memfd of `len` zero bytes.
fn sealed_memfd(len: usize) -> io::Result<OwnedFd> {
    // SAFETY: the name is a NUL-terminated literal; the result is checked.
    let fd = cvt(unsafe {
        libc::memfd_create(
            c"vchan-gnt".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    })?;
    // SAFETY: fd is a fresh descriptor we exclusively own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ftruncate/fcntl on our own descriptor.
    cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) })?;
    Ok(fd)
}

/// Share `pages` zeroed pages from domain `own`.
pub(crate) fn share(root: &Path, own: u32, pages: usize) -> io::Result<Share> {
    if pages == 0 || pages > MAX_SHARE_PAGES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot share {pages} pages at once"),
        ));
    }
    let memfd = sealed_memfd(pages * PAGE)?;
    let ino = fsobj::stat_fd(memfd.as_raw_fd())?.st_ino;
    let content = format!(
        "memfd {} {} {ino} {pages}\n",
        std::process::id(),
        memfd.as_raw_fd()
    );
    let dir = dom_dir(root, own);
    for _ in 0..64 {
        let id = random_id();
        let Some(file) = fsobj::create(&dir, &id.to_string(), content.as_bytes())? else {
            continue;
        };
        let map = Mapping::reserve(pages * PAGE)?;
        map.map_fd_at(0, memfd.as_raw_fd(), 0, pages, true)?;
        let refs = (0..pages as u32).map(|i| (id << INDEX_BITS) | i).collect();
        return Ok(Share {
            map,
            _file: file,
            _memfd: memfd,
            refs,
        });
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "no free grant id found",
    ))
}

/// Pages mapped from another domain's shares.
#[derive(Debug)]
pub(crate) struct Mapped {
    map: Mapping,
}

impl Region for Mapped {
    fn as_ptr(&self) -> *mut u8 {
        self.map.as_ptr()
    }
    fn len(&self) -> usize {
        self.map.len()
    }
    fn refs(&self) -> &[u32] {
        &[]
    }
}

/// What a share's published file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The sharing process.
    pub pid: u32,
    /// Its descriptor of the memfd.
    pub fd: u32,
    /// The memfd's inode.
    pub ino: u64,
    /// Pages in the share (1..=[`MAX_SHARE_PAGES`]).
    pub pages: usize,
}

/// Parse `memfd <pid> <fd> <inode> <pages>\n` (peer-written: every field is
/// checked; `None` for anything else).
pub fn parse_published(text: &[u8]) -> Option<Published> {
    let text = std::str::from_utf8(text).ok()?;
    let mut f = text.strip_suffix('\n')?.split(' ');
    if f.next()? != "memfd" {
        return None;
    }
    let p = Published {
        pid: f.next()?.parse().ok().filter(|p| *p > 0)?,
        fd: f.next()?.parse().ok()?,
        ino: f.next()?.parse().ok()?,
        pages: f
            .next()?
            .parse()
            .ok()
            .filter(|n| (1..=MAX_SHARE_PAGES).contains(n))?,
    };
    f.next().is_none().then_some(p)
}

/// Open share `id` of domain `owner` (for pages up to `end`): its memfd,
/// checked to be the one published, sealed and long enough.
fn open_share(root: &Path, owner: u32, id: u32, end: usize, writable: bool) -> io::Result<OwnedFd> {
    let what = format!("grant {id} of domain {owner}");
    let bad = |kind: io::ErrorKind, why: &str| io::Error::new(kind, format!("{what}: {why}"));
    let dir = fsobj::open_dom_dir(&dom_dir(root, owner))
        .map_err(|e| bad(e.kind(), &format!("no such share ({e})")))?
        .ok_or_else(|| bad(io::ErrorKind::NotFound, "no such share"))?;
    let Some(file) = fsobj::open_reg_at(dir.as_raw_fd(), &id.to_string())? else {
        return Err(bad(io::ErrorKind::NotFound, "no such share"));
    };
    // SAFETY: flock on our own descriptor; a shared lock we get means
    // that no live owner holds its exclusive one.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0 {
        return Err(bad(
            io::ErrorKind::ConnectionRefused,
            "belongs to a dead process",
        ));
    }
    let mut text = Vec::new();
    io::Read::read_to_end(
        &mut io::Read::take(std::fs::File::from(file), 128),
        &mut text,
    )?;
    let p = parse_published(&text)
        .ok_or_else(|| bad(io::ErrorKind::InvalidData, "not a valid share"))?;
    if end > p.pages * PAGE {
        return Err(bad(io::ErrorKind::InvalidInput, "no such page"));
    }
    let proc = format!("/proc/{}/fd/{}", p.pid, p.fd);
    let flags = if writable {
        libc::O_RDWR
    } else {
        libc::O_RDONLY
    };
    let c = std::ffi::CString::new(proc.as_str())
        .map_err(|_| bad(io::ErrorKind::InvalidData, "bad path"))?;
    // SAFETY: `c` is NUL-terminated; the result is checked and owned. The
    // magic link must be followed: it is the owner's open memfd.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NONBLOCK) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(bad(
            io::ErrorKind::ConnectionRefused,
            &format!("cannot open {proc} ({e}): its owner is gone, or not in our PID namespace"),
        ));
    }
    // SAFETY: fd is a fresh descriptor we exclusively own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let st = fsobj::stat_fd(fd.as_raw_fd())?;
    // SAFETY: F_GET_SEALS on our own descriptor.
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    if st.st_ino != p.ino || !fsobj::is_reg(&st) || seals < 0 || seals & REQUIRED_SEALS == 0 {
        return Err(bad(
            io::ErrorKind::InvalidData,
            "not a sealed shared memory file (its size could change under us)",
        ));
    }
    if (st.st_size as u64) < end as u64 {
        return Err(bad(io::ErrorKind::InvalidInput, "no such page"));
    }
    Ok(fd)
}

/// Map the pages `refs` shared by domain `owner`, contiguously, in as few
/// `mmap` calls as there are runs of consecutive pages of one share.
pub(crate) fn map(root: &Path, owner: u32, refs: &[u32], writable: bool) -> io::Result<Mapped> {
    if refs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no pages to map",
        ));
    }
    let map = Mapping::reserve(refs.len() * PAGE)?;
    let mut i = 0;
    while i < refs.len() {
        let (id, first) = split_ref(refs[i]);
        let mut run = 1;
        while i + run < refs.len()
            && first + run < MAX_SHARE_PAGES
            && refs[i + run] == refs[i].wrapping_add(run as u32)
        {
            run += 1;
        }
        let fd = open_share(root, owner, id, (first + run) * PAGE, writable)
            .map_err(|e| io::Error::new(e.kind(), format!("grant ref {}: {e}", refs[i])))?;
        map.map_fd_at(i * PAGE, fd.as_raw_fd(), first, run, writable)?;
        i += run;
    }
    Ok(Mapped { map })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Does reading the byte at `p` fault? (Tried in a forked child.)
    fn faults(p: *const u8) -> bool {
        // SAFETY: the child only reads one byte and exits; it touches no
        // lock or allocator of the (multi-threaded) parent.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: a read that may fault: that is the test.
            unsafe {
                std::ptr::read_volatile(p);
                libc::_exit(0);
            }
        }
        let mut st = 0;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut st, 0) }, pid);
        libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGSEGV
    }

    #[test]
    fn shares_and_mappings_have_guard_pages() {
        let dir = tempfile_dir();
        let share = super::share(&dir, 0, 3).unwrap();
        let refs = share.refs.clone();
        let mapped = map(&dir, 0, &refs, true).unwrap();
        for (p, len) in [
            (share.as_ptr(), share.len()),
            (mapped.as_ptr(), mapped.len()),
        ] {
            assert_eq!(len, 3 * PAGE);
            // SAFETY: addresses just inside and just outside the region,
            // only read in a child.
            unsafe {
                assert!(!faults(p));
                assert!(!faults(p.add(len - 1)));
                assert!(faults(p.sub(1)), "no guard page before");
                assert!(faults(p.add(len)), "no guard page after");
            }
        }
        drop(mapped);
        drop(share);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("vchan-gnt-test-{}", std::process::id()));
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
            .create(&d)
            .unwrap();
        d
    }

    #[test]
    fn published_text() {
        let ok = parse_published(b"memfd 12 5 99 3\n");
        assert_eq!(
            ok,
            Some(Published {
                pid: 12,
                fd: 5,
                ino: 99,
                pages: 3
            })
        );
        for bad in [
            &b""[..],
            b"memfd 12 5 99 3",
            b"memfd 0 5 99 3\n",
            b"memfd 12 5 99 0\n",
            b"memfd 12 5 99 513\n",
            b"memfd 12 5 99 3 4\n",
            b"file 12 5 99 3\n",
            b"memfd -1 5 99 3\n",
            b"memfd 12 5 99 3\n\n",
            b"\xff\n",
        ] {
            assert_eq!(parse_published(bad), None, "{bad:?}");
        }
    }
}
