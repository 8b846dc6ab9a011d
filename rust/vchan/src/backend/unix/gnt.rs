//! Granted pages as shared-memory files.
//!
//! A share of `n` pages by domain `d` is the file `gnt/<d>/<id>` of `n`
//! pages, locked by its owner; page `i` of it has grant reference
//! `(id << 9) | i`. Ids start at 1, so no reference is ever 0 (Xen's C
//! client treats 0 as failure).

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;
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
    /// mapped over it.
    fn reserve(len: usize) -> io::Result<Mapping> {
        // SAFETY: anonymous mapping at a kernel-chosen address; no existing
        // memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping {
            ptr: NonNull::new(p.cast()).ok_or_else(io::Error::last_os_error)?,
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
        // (bounds asserted above); the file range is checked by the kernel
        // (SIGBUS-free: callers check the file size first).
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
        // SAFETY: we own this mapping; nothing refers to it after drop.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// Pages we share: the locked file and our mapping of it.
#[derive(Debug)]
pub(crate) struct Share {
    // Field order: unmap before the file is unlinked and unlocked.
    map: Mapping,
    _file: Owned,
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

/// Share `pages` zeroed pages from domain `own`.
pub(crate) fn share(root: &Path, own: u32, pages: usize) -> io::Result<Share> {
    if pages == 0 || pages > MAX_SHARE_PAGES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot share {pages} pages at once"),
        ));
    }
    let dir = dom_dir(root, own);
    for _ in 0..64 {
        let id = random_id();
        let Some(file) = fsobj::create(&dir, &id.to_string(), (pages * PAGE) as u64)? else {
            continue;
        };
        let map = Mapping::reserve(pages * PAGE)?;
        map.map_fd_at(0, file.file().as_raw_fd(), 0, pages, true)?;
        let refs = (0..pages as u32).map(|i| (id << INDEX_BITS) | i).collect();
        return Ok(Share {
            map,
            _file: file,
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

/// Map the pages `refs` shared by domain `owner`, contiguously, in as few
/// `mmap` calls as there are runs of consecutive pages of one share.
pub(crate) fn map(root: &Path, owner: u32, refs: &[u32], writable: bool) -> io::Result<Mapped> {
    if refs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no pages to map",
        ));
    }
    let dir = dom_dir(root, owner);
    let map = Mapping::reserve(refs.len() * PAGE)?;
    let mut i = 0;
    while i < refs.len() {
        let (id, first) = split_ref(refs[i]);
        let mut run = 1;
        while i + run < refs.len() && refs[i + run] == refs[i].wrapping_add(run as u32) {
            run += 1;
        }
        let path = dir.join(id.to_string());
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("grant ref {} of domain {owner}: {e}", refs[i]),
                )
            })?;
        if !fsobj::is_live(&path)? {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!(
                    "grant ref {} of domain {owner} belongs to a dead process",
                    refs[i]
                ),
            ));
        }
        let size = file.metadata()?.len() as usize;
        if (first + run) * PAGE > size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "grant ref {} of domain {owner} does not exist",
                    refs[i] + run as u32 - 1
                ),
            ));
        }
        map.map_fd_at(i * PAGE, file.as_raw_fd(), first, run, writable)?;
        i += run;
    }
    Ok(Mapped { map })
}
