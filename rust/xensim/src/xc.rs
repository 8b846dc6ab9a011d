//! `libxenctrl`: just what `vchan-socket-proxy` asks — every domain it asks
//! about exists and is running. Xen 4.17's proxy asks `xc_domain_getinfo`
//! (an `xc_dominfo_t`), Xen 4.18 and later's `xc_domain_getinfo_single` (an
//! `xc_domaininfo_t`, Xen's `xen_domctl_getdomaininfo`); both are here,
//! exported at the installed Xen's version (`scripts/link-xensim.sh`).

use std::ffi::{c_int, c_uint, c_void};

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
