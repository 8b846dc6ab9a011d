//! `libxenctrl`: just what `vchan-socket-proxy` asks — every domain it asks
//! about exists and is running. Xen 4.17's proxy asks `xc_domain_getinfo`
//! (an `xc_dominfo_t`), Xen 4.18 and later's `xc_domain_getinfo_single` (an
//! `xc_domaininfo_t`, Xen's `xen_domctl_getdomaininfo`); both are here,
//! exported at the installed Xen's version (`scripts/link-xensim.sh`).
//! And libxenctrl's compatibility names for event channels and grants,
//! which ocaml-evtchn and ocaml-gnt (so ocaml-vchan's `vchan-unix`) call.

use std::ffi::{c_int, c_uint, c_void};

use crate::evtchn::{self, XenevtchnHandle};
use crate::gnt::{self, GntHandle};
use crate::set_errno;

/// Size of Xen 4.17's `xc_dominfo_t` on x86-64 (checked against
/// /usr/include/xenctrl.h by the tests).
pub const DOMINFO_SIZE: usize = 112;
/// Byte offset of its flag bit-field word (`dying:1, crashed:1, ...`).
const FLAGS_OFFSET: usize = 8;
/// The `running` bit in that word.
const RUNNING: u32 = 1 << 5;
/// Byte offset of `xc_domaininfo_t`'s `flags` (after `domid_t domain` and
/// its `uint16_t` padding; checked against the header by the tests).
const DOMAININFO_FLAGS_OFFSET: usize = 4;
/// `XEN_DOMINF_running` in those flags.
const DOMINF_RUNNING: u32 = 1 << 5;

/// An open xenctrl handle (opaque to C).
#[derive(Debug)]
pub struct XcHandle {
    _private: u8,
}

/// Xen's `xc_interface_open` (`<xenctrl.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xc_interface_open` requires.
#[no_mangle]
pub unsafe extern "C" fn xc_interface_open(
    _logger: *mut c_void,
    _dombuild_logger: *mut c_void,
    _open_flags: c_uint,
) -> *mut XcHandle {
    Box::into_raw(Box::new(XcHandle { _private: 0 }))
}

/// Xen's `xc_interface_close` (`<xenctrl.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xc_interface_close` requires.
#[no_mangle]
pub unsafe extern "C" fn xc_interface_close(xch: *mut XcHandle) -> c_int {
    if !xch.is_null() {
        // SAFETY: a pointer from xc_interface_open, closed once (C contract).
        drop(unsafe { Box::from_raw(xch) });
    }
    0
}

/// Reports domain `first_domid` as existing and running.
/// Xen's `xc_domain_getinfo` (`<xenctrl.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xc_domain_getinfo` requires.
#[no_mangle]
pub unsafe extern "C" fn xc_domain_getinfo(
    xch: *mut XcHandle,
    first_domid: u32,
    max_doms: c_uint,
    info: *mut c_void,
) -> c_int {
    if xch.is_null() || info.is_null() {
        set_errno(libc::EINVAL);
        return -1;
    }
    if max_doms == 0 {
        return 0;
    }
    let p = info.cast::<u8>();
    // SAFETY: C contract: `info` holds `max_doms` (>= 1) xc_dominfo_t of
    // DOMINFO_SIZE bytes; the writes are unaligned-safe.
    unsafe {
        std::ptr::write_bytes(p, 0, DOMINFO_SIZE);
        std::ptr::write_unaligned(p.cast::<u32>(), first_domid);
        std::ptr::write_unaligned(p.add(FLAGS_OFFSET).cast::<u32>(), RUNNING);
    }
    1
}

/// Reports domain `domid` as existing and running: writes only the
/// `domain` and `flags` fields of `info` (the size of the rest depends on
/// the Xen release; the proxy reads these two).
/// Xen's `xc_domain_getinfo_single` (`<xenctrl.h>`, Xen 4.18 and later),
/// simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for
/// `xc_domain_getinfo_single` requires.
#[no_mangle]
pub unsafe extern "C" fn xc_domain_getinfo_single(
    xch: *mut XcHandle,
    domid: u32,
    info: *mut c_void,
) -> c_int {
    if xch.is_null() || info.is_null() {
        set_errno(libc::EINVAL);
        return -1;
    }
    let Ok(domain) = u16::try_from(domid) else {
        set_errno(libc::ESRCH);
        return -1;
    };
    let p = info.cast::<u8>();
    // SAFETY: C contract: `info` points to an xc_domaininfo_t, which starts
    // with a u16 domain, a u16 pad and the u32 flags; the writes are
    // unaligned-safe.
    unsafe {
        std::ptr::write_unaligned(p.cast::<u16>(), domain);
        std::ptr::write_unaligned(p.add(2).cast::<u16>(), 0);
        std::ptr::write_unaligned(p.add(DOMAININFO_FLAGS_OFFSET).cast::<u32>(), DOMINF_RUNNING);
    }
    0
}

// libxenctrl's compatibility API (`XC_WANT_COMPAT_EVTCHN_API`,
// `XC_WANT_COMPAT_GNTTAB_API` in `<xenctrl_compat.h>`): the `xc_evtchn_*`,
// `xc_gnttab_*` and `xc_gntshr_*` names that older programs (ocaml-evtchn,
// ocaml-gnt) still call. As in Xen, each is the `xenevtchn_*`,
// `xengnttab_*` or `xengntshr_*` function of the same handle.

/// Xen's `xc_evtchn_open`: `xenevtchn_open`.
///
/// # Safety
/// As Xen's C API for `xc_evtchn_open` requires.
#[no_mangle]
pub unsafe extern "C" fn xc_evtchn_open(
    logger: *mut c_void,
    flags: c_uint,
) -> *mut XenevtchnHandle {
    // SAFETY: forwarded C contract.
    unsafe { evtchn::xenevtchn_open(logger, flags) }
}

/// Xen's `xc_evtchn_close`: `xenevtchn_close`.
///
/// # Safety
/// As Xen's C API for `xc_evtchn_close` requires.
#[no_mangle]
pub unsafe extern "C" fn xc_evtchn_close(xce: *mut XenevtchnHandle) -> c_int {
    // SAFETY: forwarded C contract.
    unsafe { evtchn::xenevtchn_close(xce) }
}

/// Xen's `xc_evtchn_fd`: `xenevtchn_fd`.
///
/// # Safety
/// As Xen's C API for `xc_evtchn_fd` requires.
#[no_mangle]
pub unsafe extern "C" fn xc_evtchn_fd(xce: *mut XenevtchnHandle) -> c_int {
    // SAFETY: forwarded C contract.
    unsafe { evtchn::xenevtchn_fd(xce) }
}

/// Xen's `xc_evtchn_notify`: `xenevtchn_notify`.
///
/// # Safety
/// As Xen's C API for `xc_evtchn_notify` requires.
#[no_mangle]
pub unsafe extern "C" fn xc_evtchn_notify(xce: *mut XenevtchnHandle, port: u32) -> c_int {
    // SAFETY: forwarded C contract.
    unsafe { evtchn::xenevtchn_notify(xce, port) }
}

/// Xen's `xc_evtchn_bind_unbound_port`: `xenevtchn_bind_unbound_port`.
///
/// # Safety
/// As Xen's C API for `xc_evtchn_bind_unbound_port` requires.
#[no_mangle]
pub unsafe extern "C" fn xc_evtchn_bind_unbound_port(
    xce: *mut XenevtchnHandle,
    domid: u32,
) -> c_int {
    // SAFETY: forwarded C contract.
    unsafe { evtchn::xenevtchn_bind_unbound_port(xce, domid) }
}

/// Xen's `xc_evtchn_bind_interdomain`: `xenevtchn_bind_interdomain`.
///
/// # Safety
/// As Xen's C API for `xc_evtchn_bind_interdomain` requires.
#[no_mangle]
pub unsafe extern "C" fn xc_evtchn_bind_interdomain(
    xce: *mut XenevtchnHandle,
    domid: u32,
    remote_port: u32,
) -> c_int {
    // SAFETY: forwarded C contract.
    unsafe { evtchn::xenevtchn_bind_interdomain(xce, domid, remote_port) }
}

/// Xen's `xc_evtchn_bind_virq`: there are no virtual interrupts without a
/// hypervisor; fails with `ENOSYS`.
///
/// # Safety
/// As Xen's C API for `xc_evtchn_bind_virq` requires.
#[no_mangle]
pub unsafe extern "C" fn xc_evtchn_bind_virq(_xce: *mut XenevtchnHandle, _virq: c_uint) -> c_int {
    set_errno(libc::ENOSYS);
    -1
}

/// Xen's `xc_evtchn_unbind`: `xenevtchn_unbind`.
///
/// # Safety
/// As Xen's C API for `xc_evtchn_unbind` requires.
#[no_mangle]
pub unsafe extern "C" fn xc_evtchn_unbind(xce: *mut XenevtchnHandle, port: u32) -> c_int {
    // SAFETY: forwarded C contract.
    unsafe { evtchn::xenevtchn_unbind(xce, port) }
}

/// Xen's `xc_evtchn_pending`: `xenevtchn_pending`.
///
/// # Safety
/// As Xen's C API for `xc_evtchn_pending` requires.
#[no_mangle]
pub unsafe extern "C" fn xc_evtchn_pending(xce: *mut XenevtchnHandle) -> c_int {
    // SAFETY: forwarded C contract.
    unsafe { evtchn::xenevtchn_pending(xce) }
}

/// Xen's `xc_evtchn_unmask`: `xenevtchn_unmask`.
///
/// # Safety
/// As Xen's C API for `xc_evtchn_unmask` requires.
#[no_mangle]
pub unsafe extern "C" fn xc_evtchn_unmask(xce: *mut XenevtchnHandle, port: u32) -> c_int {
    // SAFETY: forwarded C contract.
    unsafe { evtchn::xenevtchn_unmask(xce, port) }
}

/// Xen's `xc_gnttab_open`: `xengnttab_open`.
///
/// # Safety
/// As Xen's C API for `xc_gnttab_open` requires.
#[no_mangle]
pub unsafe extern "C" fn xc_gnttab_open(logger: *mut c_void, flags: c_uint) -> *mut GntHandle {
    // SAFETY: forwarded C contract.
    unsafe { gnt::xengnttab_open(logger, flags) }
}

/// Xen's `xc_gnttab_close`: `xengnttab_close`.
///
/// # Safety
/// As Xen's C API for `xc_gnttab_close` requires.
#[no_mangle]
pub unsafe extern "C" fn xc_gnttab_close(xcg: *mut GntHandle) -> c_int {
    // SAFETY: forwarded C contract.
    unsafe { gnt::xengnttab_close(xcg) }
}

/// Xen's `xc_gnttab_map_grant_ref`: `xengnttab_map_grant_ref`.
///
/// # Safety
/// As Xen's C API for `xc_gnttab_map_grant_ref` requires.
#[no_mangle]
pub unsafe extern "C" fn xc_gnttab_map_grant_ref(
    xcg: *mut GntHandle,
    domid: u32,
    gref: u32,
    prot: c_int,
) -> *mut c_void {
    // SAFETY: forwarded C contract.
    unsafe { gnt::xengnttab_map_grant_ref(xcg, domid, gref, prot) }
}

/// Xen's `xc_gnttab_map_grant_refs`: `xengnttab_map_domain_grant_refs`
/// when every page comes from one domain (as xensim's pages of several
/// domains cannot be one mapping); else fails with `EINVAL`.
///
/// # Safety
/// As Xen's C API for `xc_gnttab_map_grant_refs` requires: `domids` and
/// `refs` hold `count` entries.
#[no_mangle]
pub unsafe extern "C" fn xc_gnttab_map_grant_refs(
    xcg: *mut GntHandle,
    count: u32,
    domids: *mut u32,
    refs: *mut u32,
    prot: c_int,
) -> *mut c_void {
    if domids.is_null() || count == 0 {
        set_errno(libc::EINVAL);
        return std::ptr::null_mut();
    }
    // SAFETY: C contract: `domids` holds `count` (>= 1) entries.
    let doms = unsafe { std::slice::from_raw_parts(domids, count as usize) };
    if doms.iter().any(|d| *d != doms[0]) {
        set_errno(libc::EINVAL);
        return std::ptr::null_mut();
    }
    // SAFETY: forwarded C contract.
    unsafe { gnt::xengnttab_map_domain_grant_refs(xcg, count, doms[0], refs, prot) }
}

/// Xen's `xc_gnttab_munmap`: `xengnttab_unmap`.
///
/// # Safety
/// As Xen's C API for `xc_gnttab_munmap` requires.
#[no_mangle]
pub unsafe extern "C" fn xc_gnttab_munmap(
    xcg: *mut GntHandle,
    start: *mut c_void,
    count: u32,
) -> c_int {
    // SAFETY: forwarded C contract.
    unsafe { gnt::xengnttab_unmap(xcg, start, count) }
}

/// Xen's `xc_gntshr_open`: `xengntshr_open`.
///
/// # Safety
/// As Xen's C API for `xc_gntshr_open` requires.
#[no_mangle]
pub unsafe extern "C" fn xc_gntshr_open(logger: *mut c_void, flags: c_uint) -> *mut GntHandle {
    // SAFETY: forwarded C contract.
    unsafe { gnt::xengntshr_open(logger, flags) }
}

/// Xen's `xc_gntshr_close`: `xengntshr_close`.
///
/// # Safety
/// As Xen's C API for `xc_gntshr_close` requires.
#[no_mangle]
pub unsafe extern "C" fn xc_gntshr_close(xcg: *mut GntHandle) -> c_int {
    // SAFETY: forwarded C contract.
    unsafe { gnt::xengntshr_close(xcg) }
}

/// Xen's `xc_gntshr_share_pages`: `xengntshr_share_pages`.
///
/// # Safety
/// As Xen's C API for `xc_gntshr_share_pages` requires.
#[no_mangle]
pub unsafe extern "C" fn xc_gntshr_share_pages(
    xcg: *mut GntHandle,
    domid: u32,
    count: c_int,
    refs: *mut u32,
    writable: c_int,
) -> *mut c_void {
    // SAFETY: forwarded C contract.
    unsafe { gnt::xengntshr_share_pages(xcg, domid, count, refs, writable) }
}

/// Xen's `xc_gntshr_munmap`: `xengntshr_unshare`.
///
/// # Safety
/// As Xen's C API for `xc_gntshr_munmap` requires.
#[no_mangle]
pub unsafe extern "C" fn xc_gntshr_munmap(
    xcg: *mut GntHandle,
    start: *mut c_void,
    count: u32,
) -> c_int {
    // SAFETY: forwarded C contract.
    unsafe { gnt::xengntshr_unshare(xcg, start, count) }
}
