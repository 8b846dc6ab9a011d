//! Grant tables: pages we share (`xengntshr_*`, the gntalloc device) and
//! pages of other domains we map (`xengnttab_*`, the gntdev device).
//!
//! A region keeps an `Arc` of the handle it came from, so the handle is
//! closed only after the last region made through it is gone.

use std::ffi::c_void;
use std::io;
use std::sync::Arc;

use super::ffi::{lib, open_error, GntShrHandle, GntTabHandle, Lib};
use crate::backend::Region;
use crate::error::{Error, Result};
use vchan_core::layout::PAGE_SIZE as PAGE;

fn invalid(msg: &str) -> Error {
    Error::Io(io::Error::new(io::ErrorKind::InvalidInput, msg.to_owned()))
}

/// A page count as the `u32` the libraries take, and the mapping's length.
fn sizes(pages: usize) -> Result<(u32, usize)> {
    let count = u32::try_from(pages)
        .ok()
        .filter(|c| *c > 0 && *c <= i32::MAX as u32)
        .ok_or_else(|| invalid("grant region: page count out of range"))?;
    let len = pages
        .checked_mul(PAGE)
        .ok_or_else(|| invalid("grant region: too many pages"))?;
    Ok((count, len))
}

/// An open `xengnttab_handle` (maps other domains' grants).
#[derive(Debug)]
pub(crate) struct GntTab {
    lib: &'static Lib,
    h: *mut GntTabHandle,
}

// SAFETY: the handle is a file descriptor wrapper; libxengnttab's map and
// unmap calls are ioctls and mmaps on it, safe from any thread.
unsafe impl Send for GntTab {}
// SAFETY: as above; no call mutates the handle structure itself.
unsafe impl Sync for GntTab {}

impl GntTab {
    pub(crate) fn open() -> Result<GntTab> {
        let lib = lib()?;
        // SAFETY: NULL logger (log to stderr) and no flags are valid.
        let h = unsafe { (lib.xengnttab_open)(std::ptr::null_mut(), 0) };
        if h.is_null() {
            return Err(open_error("xengnttab_open", io::Error::last_os_error()));
        }
        Ok(GntTab { lib, h })
    }
}

impl Drop for GntTab {
    fn drop(&mut self) {
        // SAFETY: h came from xengnttab_open and every mapping made through
        // it is gone (each holds an Arc of this handle).
        unsafe { (self.lib.xengnttab_close)(self.h) };
    }
}

/// An open `xengntshr_handle` (shares our pages).
#[derive(Debug)]
pub(crate) struct GntShr {
    lib: &'static Lib,
    h: *mut GntShrHandle,
}

// SAFETY: as for GntTab: ioctls and mmaps on the gntalloc descriptor.
unsafe impl Send for GntShr {}
// SAFETY: as above.
unsafe impl Sync for GntShr {}

impl GntShr {
    pub(crate) fn open() -> Result<GntShr> {
        let lib = lib()?;
        // SAFETY: NULL logger (log to stderr) and no flags are valid.
        let h = unsafe { (lib.xengntshr_open)(std::ptr::null_mut(), 0) };
        if h.is_null() {
            return Err(open_error("xengntshr_open", io::Error::last_os_error()));
        }
        Ok(GntShr { lib, h })
    }
}

impl Drop for GntShr {
    fn drop(&mut self) {
        // SAFETY: h came from xengntshr_open and every share made through
        // it is gone (each holds an Arc of this handle).
        unsafe { (self.lib.xengntshr_close)(self.h) };
    }
}

/// Pages we share with another domain. Dropping unshares them (and, for a
/// page shared with an unmap-notify, clears the byte and signals the peer).
#[derive(Debug)]
pub(crate) struct Shared {
    shr: Arc<GntShr>,
    ptr: *mut c_void,
    count: u32,
    len: usize,
    refs: Vec<u32>,
}

// SAFETY: the mapping is plain shared memory, usable from any thread, and
// the handle is Send + Sync.
unsafe impl Send for Shared {}

impl Region for Shared {
    fn as_ptr(&self) -> *mut u8 {
        self.ptr.cast()
    }
    fn len(&self) -> usize {
        self.len
    }
    fn refs(&self) -> &[u32] {
        &self.refs
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: ptr/count are exactly what xengntshr_share_* returned
        // through this handle, unshared once, here.
        unsafe { (self.shr.lib.xengntshr_unshare)(self.shr.h, self.ptr, self.count) };
    }
}

/// Share `pages` fresh pages with `domid`, writable by it; with `notify`
/// (byte offset, our event port), one page whose byte at that offset is
/// cleared and the port signalled when we unshare it or die.
pub(crate) fn share(
    shr: &Arc<GntShr>,
    domid: u32,
    pages: usize,
    notify: Option<(u32, u32)>,
) -> Result<Shared> {
    let (count, len) = sizes(pages)?;
    let mut refs = vec![0u32; pages];
    let ptr = match notify {
        None => {
            // SAFETY: refs has room for `count` references (the output);
            // the handle is open.
            unsafe {
                (shr.lib.xengntshr_share_pages)(shr.h, domid, count as i32, refs.as_mut_ptr(), 1)
            }
        }
        Some((offset, port)) => {
            if count != 1 {
                return Err(invalid("an unmap-notify share is one page"));
            }
            if offset as usize >= PAGE {
                return Err(invalid("unmap-notify offset outside the page"));
            }
            // SAFETY: refs has room for the one reference written; the
            // offset lies inside the page; the handle is open.
            unsafe {
                (shr.lib.xengntshr_share_page_notify)(
                    shr.h,
                    domid,
                    refs.as_mut_ptr(),
                    1,
                    offset,
                    port,
                )
            }
        }
    };
    if ptr.is_null() {
        let e = io::Error::last_os_error();
        return Err(Error::Io(io::Error::new(
            e.kind(),
            format!("sharing {pages} page(s) with domain {domid}: {e}"),
        )));
    }
    Ok(Shared {
        shr: shr.clone(),
        ptr,
        count,
        len,
        refs,
    })
}

/// Pages of another domain mapped here. Dropping unmaps them (and, for a
/// page mapped with an unmap-notify, clears the byte and signals the
/// peer).
#[derive(Debug)]
pub(crate) struct Mapped {
    tab: Arc<GntTab>,
    ptr: *mut c_void,
    count: u32,
    len: usize,
}

// SAFETY: the mapping is plain shared memory, usable from any thread, and
// the handle is Send + Sync.
unsafe impl Send for Mapped {}

impl Region for Mapped {
    fn as_ptr(&self) -> *mut u8 {
        self.ptr.cast()
    }
    fn len(&self) -> usize {
        self.len
    }
    fn refs(&self) -> &[u32] {
        &[]
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: ptr/count are exactly what xengnttab_map_* returned
        // through this handle, unmapped once, here.
        unsafe { (self.tab.lib.xengnttab_unmap)(self.tab.h, self.ptr, self.count) };
    }
}

/// Map grants `refs` of domain `domid` contiguously; with `notify` (byte
/// offset, our event port), one page with an unmap-notify.
pub(crate) fn map(
    tab: &Arc<GntTab>,
    domid: u32,
    refs: &[u32],
    writable: bool,
    notify: Option<(u32, u32)>,
) -> Result<Mapped> {
    let (count, len) = sizes(refs.len())?;
    let prot = if writable {
        libc::PROT_READ | libc::PROT_WRITE
    } else {
        libc::PROT_READ
    };
    let ptr = match notify {
        None => {
            // The C prototype takes a non-const array it only reads; hand
            // it a copy all the same.
            let mut refs = refs.to_vec();
            // SAFETY: refs holds `count` references; the handle is open.
            unsafe {
                (tab.lib.xengnttab_map_domain_grant_refs)(
                    tab.h,
                    count,
                    domid,
                    refs.as_mut_ptr(),
                    prot,
                )
            }
        }
        Some((offset, port)) => {
            let [gref] = refs else {
                return Err(invalid("an unmap-notify mapping is one page"));
            };
            if offset as usize >= PAGE {
                return Err(invalid("unmap-notify offset outside the page"));
            }
            // SAFETY: one reference, an offset inside the page, an open
            // handle.
            unsafe {
                (tab.lib.xengnttab_map_grant_ref_notify)(tab.h, domid, *gref, prot, offset, port)
            }
        }
    };
    if ptr.is_null() {
        let e = io::Error::last_os_error();
        // A control page (the one mapped with a notify) that Xen refuses
        // comes from a stale rendezvous: its server died and its grant is
        // gone. Refused, as binding its event channel is (`evtchn.rs`).
        let kind = match (notify, e.kind()) {
            (Some(_), io::ErrorKind::InvalidInput) => io::ErrorKind::ConnectionRefused,
            (_, kind) => kind,
        };
        return Err(Error::Io(io::Error::new(
            kind,
            format!("mapping {count} grant(s) of domain {domid}: {e}"),
        )));
    }
    Ok(Mapped {
        tab: tab.clone(),
        ptr,
        count,
        len,
    })
}
