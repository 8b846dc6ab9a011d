//! `libxenstore`'s C functions (`<xenstore.h>`): each checks and converts
//! its arguments and calls the simulated store of the parent module.

use std::ffi::{c_char, c_uint, c_ulong, CStr};
use std::time::Duration;

use super::*;
use crate::{malloc_bytes, set_errno};

/// Xen's `struct xs_permissions` (`<xenstore_lib.h>`).
#[repr(C)]
struct XsPermissions {
    id: c_uint,
    perms: c_uint,
}

/// # Safety
/// `p` is null or a NUL-terminated string.
unsafe fn cstr<'a>(p: *const c_char) -> Result<&'a str, i32> {
    if p.is_null() {
        return Err(libc::EINVAL);
    }
    // SAFETY: per this function's contract.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| libc::EINVAL)
}

/// # Safety
/// `h` is null or a pointer returned by `xs_open` and not closed.
unsafe fn handle<'a>(h: *mut XsHandle) -> Result<&'a XsHandle, i32> {
    // SAFETY: per this function's contract.
    unsafe { h.as_ref() }.ok_or(libc::EINVAL)
}

fn err_false(e: i32) -> bool {
    set_errno(e);
    false
}

fn err_null<T>(e: i32) -> *mut T {
    set_errno(e);
    std::ptr::null_mut()
}

/// Xen's `xs_open` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_open` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_open(_flags: c_ulong) -> *mut XsHandle {
    match XsHandle::open() {
        Ok(h) => Box::into_raw(Box::new(h)),
        Err(e) => err_null(e),
    }
}

/// Xen's `xs_close` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_close` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_close(h: *mut XsHandle) {
    if !h.is_null() {
        // SAFETY: a pointer from xs_open, closed once (C contract).
        drop(unsafe { Box::from_raw(h) });
    }
}

/// Xen's `xs_daemon_open` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_daemon_open` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_daemon_open() -> *mut XsHandle {
    // SAFETY: no preconditions.
    unsafe { xs_open(0) }
}

/// Xen's `xs_daemon_open_readonly` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_daemon_open_readonly` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_daemon_open_readonly() -> *mut XsHandle {
    // SAFETY: no preconditions.
    unsafe { xs_open(0) }
}

/// Xen's `xs_domain_open` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_domain_open` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_domain_open() -> *mut XsHandle {
    // SAFETY: no preconditions.
    unsafe { xs_open(0) }
}

/// Xen's `xs_daemon_close` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_daemon_close` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_daemon_close(h: *mut XsHandle) {
    // SAFETY: forwarded C contract.
    unsafe { xs_close(h) }
}

/// Xen's `xs_read` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_read` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_read(
    h: *mut XsHandle,
    t: u32,
    path: *const c_char,
    len: *mut c_uint,
) -> *mut c_char {
    // SAFETY: C contract: a handle from xs_open and a C string.
    // SAFETY: C contract: a C string.
    let res = unsafe { handle(h) }.and_then(|h| h.read(t, unsafe { cstr(path) }?));
    match res {
        Ok(v) => {
            let out = malloc_bytes(&v);
            if !out.is_null() && !len.is_null() {
                // SAFETY: C contract: `len` is null or valid for writes.
                unsafe { *len = v.len() as c_uint };
            }
            out
        }
        Err(e) => err_null(e),
    }
}

/// Xen's `xs_write` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_write` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_write(
    h: *mut XsHandle,
    t: u32,
    path: *const c_char,
    data: *const libc::c_void,
    len: c_uint,
) -> bool {
    // SAFETY: C contract: a handle from xs_open.
    let res = unsafe { handle(h) }.and_then(|h| {
        // SAFETY: C contract: a C string.
        let p = unsafe { cstr(path) }?;
        let v: &[u8] = if len == 0 {
            &[]
        } else if data.is_null() {
            return Err(libc::EINVAL);
        } else {
            // SAFETY: C contract: `data` holds `len` bytes.
            unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len as usize) }
        };
        h.write(t, p, v)
    });
    res.map_or_else(err_false, |()| true)
}

/// Xen's `xs_mkdir` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_mkdir` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_mkdir(h: *mut XsHandle, t: u32, path: *const c_char) -> bool {
    // SAFETY: C contract: a handle from xs_open and a C string.
    let res = unsafe { handle(h) }.and_then(|h| h.mkdir(t, unsafe { cstr(path) }?));
    res.map_or_else(err_false, |()| true)
}

/// Xen's `xs_rm` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_rm` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_rm(h: *mut XsHandle, t: u32, path: *const c_char) -> bool {
    // SAFETY: C contract: a handle from xs_open and a C string.
    let res = unsafe { handle(h) }.and_then(|h| h.rm(t, unsafe { cstr(path) }?));
    res.map_or_else(err_false, |()| true)
}

/// Permissions are not simulated: accepted for any valid path.
/// Xen's `xs_set_permissions` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_set_permissions` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_set_permissions(
    h: *mut XsHandle,
    _t: u32,
    path: *const c_char,
    _perms: *mut libc::c_void,
    _num_perms: c_uint,
) -> bool {
    // SAFETY: C contract: a handle from xs_open and a C string.
    let res = unsafe { handle(h) }.and_then(|h| h.set_permissions(unsafe { cstr(path) }?));
    res.map_or_else(err_false, |()| true)
}

/// Xen's `xs_get_permissions` (`<xenstore.h>`): one entry, as
/// [`XsHandle::get_permissions`] says.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_get_permissions` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_get_permissions(
    h: *mut XsHandle,
    t: u32,
    path: *const c_char,
    num: *mut c_uint,
) -> *mut libc::c_void {
    // SAFETY: C contract: a handle from xs_open and a C string.
    let res = unsafe { handle(h) }.and_then(|h| h.get_permissions(t, unsafe { cstr(path) }?));
    match res {
        Ok(p) => {
            // SAFETY: plain malloc; the result is checked.
            let out = unsafe { libc::malloc(std::mem::size_of::<XsPermissions>()) }
                .cast::<XsPermissions>();
            if out.is_null() {
                return err_null(libc::ENOMEM);
            }
            let bits = u32::from(p.read) | (u32::from(p.write) << 1);
            // SAFETY: `out` is a fresh allocation of one entry, aligned by
            // malloc; `num` is null or valid for writes (C contract).
            unsafe {
                out.write(XsPermissions {
                    id: p.owner,
                    perms: bits,
                });
                if !num.is_null() {
                    *num = 1;
                }
            }
            out.cast()
        }
        Err(e) => err_null(e),
    }
}

/// A `malloc`ed vector of `items` pointers followed by the strings, freed
/// by one `free`, as libxenstore returns them.
fn malloc_vector(items: &[&str]) -> *mut *mut c_char {
    let ptrs = std::mem::size_of::<*mut c_char>() * items.len();
    let total = ptrs + items.iter().map(|s| s.len() + 1).sum::<usize>();
    // SAFETY: plain malloc; the result is checked.
    let base = unsafe { libc::malloc(total.max(1)) }.cast::<u8>();
    if base.is_null() {
        return err_null(libc::ENOMEM);
    }
    let vec = base.cast::<*mut c_char>();
    let mut at = ptrs;
    for (i, s) in items.iter().enumerate() {
        // SAFETY: `at + s.len() + 1 <= total` and slot i < items.len(), all
        // inside the fresh allocation; malloc aligns for pointers.
        unsafe {
            let dst = base.add(at);
            std::ptr::copy_nonoverlapping(s.as_ptr(), dst, s.len());
            *dst.add(s.len()) = 0;
            *vec.add(i) = dst.cast();
        }
        at += s.len() + 1;
    }
    vec
}

/// Xen's `xs_directory` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_directory` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_directory(
    h: *mut XsHandle,
    t: u32,
    path: *const c_char,
    num: *mut c_uint,
) -> *mut *mut c_char {
    // SAFETY: C contract: a handle from xs_open and a C string.
    let res = unsafe { handle(h) }.and_then(|h| h.directory(t, unsafe { cstr(path) }?));
    match res {
        Ok(names) => {
            let items: Vec<&str> = names.iter().map(String::as_str).collect();
            let v = malloc_vector(&items);
            if !v.is_null() && !num.is_null() {
                // SAFETY: C contract: `num` is null or valid for writes.
                unsafe { *num = items.len() as c_uint };
            }
            v
        }
        Err(e) => err_null(e),
    }
}

/// Xen's `xs_get_domain_path` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_get_domain_path` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_get_domain_path(_h: *mut XsHandle, domid: c_uint) -> *mut c_char {
    malloc_bytes(format!("/local/domain/{domid}").as_bytes())
}

/// Xen's `xs_transaction_start` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_transaction_start` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_transaction_start(h: *mut XsHandle) -> u32 {
    // SAFETY: C contract: a handle from xs_open.
    match unsafe { handle(h) } {
        Ok(h) => h.transaction_start(),
        Err(e) => {
            set_errno(e);
            0
        }
    }
}

/// Xen's `xs_transaction_end` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_transaction_end` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_transaction_end(h: *mut XsHandle, t: u32, abort: bool) -> bool {
    // SAFETY: C contract: a handle from xs_open.
    let res = unsafe { handle(h) }.and_then(|h| h.transaction_end(t, abort));
    res.map_or_else(err_false, |()| true)
}

/// `xs_watch` and `xs_unwatch`: `op` on the handle, the path and the token.
///
/// # Safety
/// As Xen's C API for `xs_watch` requires of its arguments.
unsafe fn watch_op(
    h: *mut XsHandle,
    path: *const c_char,
    token: *const c_char,
    op: impl FnOnce(&XsHandle, &str, &str) -> Result<(), i32>,
) -> bool {
    // SAFETY: C contract: a handle from xs_open and C strings.
    let res = unsafe { handle(h) }.and_then(|h| {
        // SAFETY: C contract: C strings.
        let (p, tok) = unsafe { (cstr(path)?, cstr(token)?) };
        op(h, p, tok)
    });
    res.map_or_else(err_false, |()| true)
}

/// Xen's `xs_watch` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_watch` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_watch(
    h: *mut XsHandle,
    path: *const c_char,
    token: *const c_char,
) -> bool {
    // SAFETY: the caller keeps xs_watch's C contract.
    unsafe { watch_op(h, path, token, XsHandle::watch) }
}

/// Xen's `xs_unwatch` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_unwatch` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_unwatch(
    h: *mut XsHandle,
    path: *const c_char,
    token: *const c_char,
) -> bool {
    // SAFETY: the caller keeps xs_unwatch's C contract.
    unsafe { watch_op(h, path, token, XsHandle::unwatch) }
}

fn event_vector(ev: (String, String), num: *mut c_uint) -> *mut *mut c_char {
    let v = malloc_vector(&[&ev.0, &ev.1]);
    if !v.is_null() && !num.is_null() {
        // SAFETY: C contract: `num` is null or valid for writes.
        unsafe { *num = 2 };
    }
    v
}

/// Xen's `xs_read_watch` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_read_watch` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_read_watch(h: *mut XsHandle, num: *mut c_uint) -> *mut *mut c_char {
    // SAFETY: C contract: a handle from xs_open.
    let h = match unsafe { handle(h) } {
        Ok(h) => h,
        Err(e) => return err_null(e),
    };
    loop {
        match next_event(h) {
            Ok(Some(ev)) => return event_vector(ev, num),
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return err_null(e),
        }
    }
}

/// Xen's `xs_check_watch` (`<xenstore.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xs_check_watch` requires.
#[no_mangle]
pub unsafe extern "C" fn xs_check_watch(h: *mut XsHandle) -> *mut *mut c_char {
    // SAFETY: C contract: a handle from xs_open.
    let h = match unsafe { handle(h) } {
        Ok(h) => h,
        Err(e) => return err_null(e),
    };
    match next_event(h) {
        Ok(Some(ev)) => event_vector(ev, std::ptr::null_mut()),
        Ok(None) => err_null(libc::EAGAIN),
        Err(e) => err_null(e),
    }
}
