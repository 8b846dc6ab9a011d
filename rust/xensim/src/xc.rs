//! `libxenctrl`: just what `vchan-socket-proxy` asks — every domain it asks
//! about exists and is running.

use std::ffi::{c_int, c_uint, c_void};

use crate::set_errno;

/// Size of Xen 4.17's `xc_dominfo_t` on x86-64 (checked against
/// /usr/include/xenctrl.h by the tests).
pub const DOMINFO_SIZE: usize = 112;
/// Byte offset of its flag bit-field word (`dying:1, crashed:1, ...`).
const FLAGS_OFFSET: usize = 8;
/// The `running` bit in that word.
const RUNNING: u32 = 1 << 5;

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
