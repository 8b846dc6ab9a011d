//! `libxengnttab`: granting (`xengntshr_*`) and mapping (`xengnttab_*`)
//! pages as unix-backend shared-memory files.
//!
//! Xen's `libxenvchan_close` unmaps its ring buffers with plain `munmap`,
//! not through this library; so a region still in our table when its
//! handle closes may be gone, or its addresses reused. Before releasing
//! one, `release` checks /proc/self/maps: our file still mapped there →
//! unmap it; nothing there → park an inaccessible placeholder for the
//! region's own unmap to hit; anything else → leave the memory alone
//! (only the file is then left until the process exits).

use std::ffi::{c_int, c_uint, c_void};

use vchan::backend::{Backend, EventChannel};
use vchan::DomId;

use crate::{set_errno, vchan_errno, with, Global, RegionEnt};

const PAGE: usize = 4096;

/// An open grant handle, sharing or mapping (opaque to C).
#[derive(Debug)]
pub struct GntHandle {
    id: u64,
}

fn open() -> *mut GntHandle {
    Box::into_raw(Box::new(GntHandle {
        id: crate::new_id(),
    }))
}

/// # Safety
/// `h` is null or a pointer returned by an `open` of this module.
unsafe fn handle_id(h: *mut GntHandle) -> Result<u64, i32> {
    // SAFETY: per this function's contract.
    unsafe { h.as_ref() }.map(|h| h.id).ok_or(libc::EINVAL)
}

/// Inode of the file mapped at `addr`, from /proc/self/maps.
fn maps_inode(addr: usize) -> Option<u64> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    for line in maps.lines() {
        let mut f = line.split_ascii_whitespace();
        let range = f.next()?;
        let start = range.split('-').next()?;
        if usize::from_str_radix(start, 16).ok() != Some(addr) {
            continue;
        }
        let inode = f.nth(3)?.parse::<u64>().ok()?;
        return Some(inode).filter(|i| *i != 0);
    }
    None
}

/// Drop a region (see the module documentation).
fn release(ent: RegionEnt) {
    if ent.inode.is_some() && maps_inode(ent.addr) == ent.inode {
        drop(ent.region);
        return;
    }
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping; it
    // fails if any page of the range is in use.
    let p = unsafe {
        libc::mmap(
            ent.addr as *mut c_void,
            ent.len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if p as usize == ent.addr {
        // The region's unmap now removes our placeholder only.
        drop(ent.region);
    } else {
        if p != libc::MAP_FAILED {
            // SAFETY: an old kernel placed our placeholder elsewhere: it
            // is ours alone.
            unsafe { libc::munmap(p, ent.len) };
        }
        std::mem::forget(ent.region);
    }
}

/// Release the regions of handle `id`.
fn close_handle(id: u64) {
    let mine: Vec<RegionEnt> = with(|g| {
        let (mine, rest) = std::mem::take(&mut g.regions)
            .into_iter()
            .partition(|r| r.handle == id);
        g.regions = rest;
        mine
    });
    for r in mine {
        release(r);
    }
}

/// Remove the region of handle `id` mapped at `addr`.
fn unmap_at(id: u64, addr: usize) -> c_int {
    let ent = with(|g| {
        let i = g
            .regions
            .iter()
            .position(|r| r.handle == id && r.addr == addr)?;
        Some(g.regions.swap_remove(i))
    });
    match ent {
        Some(e) => {
            release(e);
            0
        }
        None => {
            set_errno(libc::EINVAL);
            -1
        }
    }
}

/// Where the unmap-notify of a gone peer applies: clear byte `offset` of
/// page `gref` of domain `owner`, if we have it mapped writable.
pub(crate) fn clear_notify_byte(g: &mut Global, owner: u32, gref: u32, offset: u32) {
    let offset = offset as usize;
    if offset >= PAGE {
        return;
    }
    for r in &g.regions {
        if r.owner == owner && r.first_ref == gref && r.writable {
            // SAFETY: the region is mapped (it is in our table) and
            // writable, and offset < 4096 <= its length.
            unsafe {
                std::ptr::write_volatile((r.addr as *mut u8).add(offset), 0);
            }
            std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// How an unmap-notify request arrives from C: both -1 means none.
fn notify_of(offset: u32, port: u32) -> Option<(u32, u32)> {
    (offset != u32::MAX && port != u32::MAX).then_some((offset, port))
}

enum Op<'a> {
    Share { pages: usize },
    Map { refs: &'a [u32], writable: bool },
}

/// Share or map, record the region, return (address, refs).
fn make(
    id: u64,
    domid: u32,
    op: Op<'_>,
    notify: Option<(u32, u32)>,
) -> Result<(usize, Vec<u32>), i32> {
    let remote = DomId::new(domid).map_err(|e| vchan_errno(&e))?;
    with(|g| {
        let b = g.backend()?;
        let own = crate::own_domid()?;
        let nt: Option<(u32, &mut dyn EventChannel)> = match notify {
            Some((off, port)) => match g.ports.get_mut(&port) {
                Some(p) => Some((off, &mut p.ev)),
                None => return Err(libc::EINVAL),
            },
            None => None,
        };
        let (region, owner, first_ref, writable) = match op {
            Op::Share { pages } => {
                let r = b.share(remote, pages, nt).map_err(|e| vchan_errno(&e))?;
                let first = r.refs().first().copied().unwrap_or(0);
                (r, own, first, true)
            }
            Op::Map { refs, writable } => {
                let r = b
                    .map(remote, refs, writable, nt)
                    .map_err(|e| vchan_errno(&e))?;
                (r, domid, refs.first().copied().unwrap_or(0), writable)
            }
        };
        let refs = region.refs().to_vec();
        let addr = region.as_ptr() as usize;
        let len = region.len();
        g.regions.push(RegionEnt {
            handle: id,
            addr,
            len,
            owner,
            first_ref,
            writable,
            inode: maps_inode(addr),
            region,
        });
        Ok((addr, refs))
    })
}

fn null_err(e: i32) -> *mut c_void {
    set_errno(e);
    std::ptr::null_mut()
}

/// Xen's `xengntshr_open` (`<xengnttab.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xengntshr_open` requires.
#[no_mangle]
pub unsafe extern "C" fn xengntshr_open(_logger: *mut c_void, _flags: c_uint) -> *mut GntHandle {
    open()
}

/// Xen's `xengntshr_close` (`<xengnttab.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xengntshr_close` requires.
#[no_mangle]
pub unsafe extern "C" fn xengntshr_close(xgs: *mut GntHandle) -> c_int {
    if xgs.is_null() {
        return 0;
    }
    // SAFETY: a pointer from xengntshr_open, closed once (C contract).
    let h = unsafe { Box::from_raw(xgs) };
    close_handle(h.id);
    0
}

unsafe fn share(
    xgs: *mut GntHandle,
    domid: u32,
    count: c_int,
    refs: *mut u32,
    notify: Option<(u32, u32)>,
) -> *mut c_void {
    // SAFETY: C contract: a handle from xengntshr_open.
    let id = match unsafe { handle_id(xgs) } {
        Ok(id) => id,
        Err(e) => return null_err(e),
    };
    let pages = match usize::try_from(count) {
        Ok(n) if n > 0 => n,
        _ => return null_err(libc::EINVAL),
    };
    if refs.is_null() {
        return null_err(libc::EINVAL);
    }
    match make(id, domid, Op::Share { pages }, notify) {
        Ok((addr, got)) => {
            // SAFETY: C contract: `refs` holds `count` entries.
            let out = unsafe { std::slice::from_raw_parts_mut(refs, pages) };
            for (o, r) in out.iter_mut().zip(got) {
                *o = r;
            }
            addr as *mut c_void
        }
        Err(e) => null_err(e),
    }
}

/// Xen's `xengntshr_share_pages` (`<xengnttab.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xengntshr_share_pages` requires.
#[no_mangle]
pub unsafe extern "C" fn xengntshr_share_pages(
    xgs: *mut GntHandle,
    domid: u32,
    count: c_int,
    refs: *mut u32,
    _writable: c_int,
) -> *mut c_void {
    // SAFETY: forwarded C contract.
    unsafe { share(xgs, domid, count, refs, None) }
}

/// Xen's `xengntshr_share_page_notify` (`<xengnttab.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xengntshr_share_page_notify` requires.
#[no_mangle]
pub unsafe extern "C" fn xengntshr_share_page_notify(
    xgs: *mut GntHandle,
    domid: u32,
    gref: *mut u32,
    _writable: c_int,
    notify_offset: u32,
    notify_port: u32,
) -> *mut c_void {
    // SAFETY: forwarded C contract (`gref` holds one entry).
    unsafe { share(xgs, domid, 1, gref, notify_of(notify_offset, notify_port)) }
}

/// Xen's `xengntshr_unshare` (`<xengnttab.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xengntshr_unshare` requires.
#[no_mangle]
pub unsafe extern "C" fn xengntshr_unshare(
    xgs: *mut GntHandle,
    start_address: *mut c_void,
    _count: u32,
) -> c_int {
    // SAFETY: C contract: a handle from xengntshr_open.
    match unsafe { handle_id(xgs) } {
        Ok(id) => unmap_at(id, start_address as usize),
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}

/// Xen's `xengnttab_open` (`<xengnttab.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xengnttab_open` requires.
#[no_mangle]
pub unsafe extern "C" fn xengnttab_open(_logger: *mut c_void, _flags: c_uint) -> *mut GntHandle {
    open()
}

/// Xen's `xengnttab_close` (`<xengnttab.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xengnttab_close` requires.
#[no_mangle]
pub unsafe extern "C" fn xengnttab_close(xgt: *mut GntHandle) -> c_int {
    if xgt.is_null() {
        return 0;
    }
    // SAFETY: a pointer from xengnttab_open, closed once (C contract).
    let h = unsafe { Box::from_raw(xgt) };
    close_handle(h.id);
    0
}

unsafe fn map(
    xgt: *mut GntHandle,
    domid: u32,
    refs: &[u32],
    prot: c_int,
    notify: Option<(u32, u32)>,
) -> *mut c_void {
    // SAFETY: C contract: a handle from xengnttab_open.
    let id = match unsafe { handle_id(xgt) } {
        Ok(id) => id,
        Err(e) => return null_err(e),
    };
    let writable = prot & libc::PROT_WRITE != 0;
    match make(id, domid, Op::Map { refs, writable }, notify) {
        Ok((addr, _)) => addr as *mut c_void,
        Err(e) => null_err(e),
    }
}

/// Xen's `xengnttab_map_grant_ref` (`<xengnttab.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xengnttab_map_grant_ref` requires.
#[no_mangle]
pub unsafe extern "C" fn xengnttab_map_grant_ref(
    xgt: *mut GntHandle,
    domid: u32,
    gref: u32,
    prot: c_int,
) -> *mut c_void {
    // SAFETY: forwarded C contract.
    unsafe { map(xgt, domid, &[gref], prot, None) }
}

/// Xen's `xengnttab_map_grant_ref_notify` (`<xengnttab.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xengnttab_map_grant_ref_notify` requires.
#[no_mangle]
pub unsafe extern "C" fn xengnttab_map_grant_ref_notify(
    xgt: *mut GntHandle,
    domid: u32,
    gref: u32,
    prot: c_int,
    notify_offset: u32,
    notify_port: u32,
) -> *mut c_void {
    // SAFETY: forwarded C contract.
    unsafe {
        map(
            xgt,
            domid,
            &[gref],
            prot,
            notify_of(notify_offset, notify_port),
        )
    }
}

/// Xen's `xengnttab_map_domain_grant_refs` (`<xengnttab.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xengnttab_map_domain_grant_refs` requires.
#[no_mangle]
pub unsafe extern "C" fn xengnttab_map_domain_grant_refs(
    xgt: *mut GntHandle,
    count: u32,
    domid: u32,
    refs: *mut u32,
    prot: c_int,
) -> *mut c_void {
    if refs.is_null() || count == 0 || count as usize > vchan::backend::unix::gnt::MAX_SHARE_PAGES {
        return null_err(libc::EINVAL);
    }
    // SAFETY: C contract: `refs` holds `count` entries.
    let refs = unsafe { std::slice::from_raw_parts(refs, count as usize) };
    // SAFETY: forwarded C contract.
    unsafe { map(xgt, domid, refs, prot, None) }
}

/// Xen's `xengnttab_unmap` (`<xengnttab.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xengnttab_unmap` requires.
#[no_mangle]
pub unsafe extern "C" fn xengnttab_unmap(
    xgt: *mut GntHandle,
    start_address: *mut c_void,
    _count: u32,
) -> c_int {
    // SAFETY: C contract: a handle from xengnttab_open.
    match unsafe { handle_id(xgt) } {
        Ok(id) => unmap_at(id, start_address as usize),
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}
