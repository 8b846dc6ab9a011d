//! The system calls of `Vchan_rs_lwt_unix.Engine`, an epoll-based Lwt
//! engine: `epoll_create1`, `epoll_ctl` and `epoll_wait`, as raw
//! `extern "C"` externals over untagged ints. They return a result (>= 0)
//! or `-errno`, never raise, and never call back into OCaml.
//!
//! Their OCaml types are in the table of src/boundary.rs (`EXTERNALS`),
//! with [`CONSTANTS`] and [`ERRNOS`], the values the OCaml side needs;
//! `vchan-lwt-stubs-gen` writes the externals from it (the `_byte` twin as
//! bytecode name). `epoll_wait` is not `[@@noalloc]`: when it may sleep, it
//! releases the runtime lock (other OCaml threads run meanwhile).

use crate::ocaml_value::{bigarray, tag, untag, Value};

pub use crate::boundary::{CONSTANTS, ERRNOS};

/// Events one `epoll_wait` returns at most (more stay queued in the kernel
/// for the next call).
const MAX_EVENTS: usize = 256;

fn errno() -> isize {
    -(std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO) as isize)
}

fn result(rc: libc::c_int) -> isize {
    if rc < 0 {
        errno()
    } else {
        rc as isize
    }
}

/// A new epoll instance (close-on-exec): its descriptor, or `-errno`.
///
/// # Safety
///
/// Takes OCaml's unit; no other requirement.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_epoll_create(_unit: Value) -> isize {
    // SAFETY: plain epoll_create1(2); the caller owns the result.
    result(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })
}

/// `epoll_ctl(ep, op, fd, {events; data = fd})`: 0 or `-errno`.
///
/// # Safety
///
/// None beyond the system call's: bad descriptors give `-EBADF`.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_epoll_ctl(
    ep: isize,
    op: isize,
    fd: isize,
    events: isize,
) -> isize {
    let (Ok(ep), Ok(op), Ok(fd)) = (i32::try_from(ep), i32::try_from(op), i32::try_from(fd)) else {
        return -(libc::EBADF as isize);
    };
    let mut ev = libc::epoll_event {
        events: events as u32,
        u64: fd as u32 as u64,
    };
    // SAFETY: `ev` lives across the call; the kernel checks the descriptors.
    result(unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) })
}

/// Wait up to `timeout_ms` (-1: for ever, 0: not at all) for events of
/// `ep`, and store each as two ints, `events` and the descriptor, in
/// `out` (an `(int, int_elt, c_layout) Bigarray.Array1.t`), at most
/// `dim / 2` (and at most 256) of them. Returns their number or `-errno`
/// (`-EINTR` when a signal came). The runtime lock is released while the
/// call may sleep.
///
/// # Safety
///
/// `out` must be a one-dimensional bigarray of kind `int` (OCaml keeps it
/// reachable during the call: its data does not move).
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_epoll_wait(ep: isize, out: Value, timeout_ms: isize) -> isize {
    let Ok(ep) = i32::try_from(ep) else {
        return -(libc::EBADF as isize);
    };
    let timeout = timeout_ms.clamp(-1, i32::MAX as isize) as i32;
    // SAFETY: per this function's contract; read before the lock is
    // released (the bigarray's header may move, its data does not).
    let Some((data, dim)) = (unsafe { bigarray(out) }) else {
        return -(libc::EINVAL as isize);
    };
    let data = data.cast::<isize>();
    let max = (dim / 2).min(MAX_EVENTS);
    if max == 0 {
        return -(libc::EINVAL as isize);
    }
    // SAFETY: epoll_event is plain data; all-zero is a valid value.
    let mut evs: [libc::epoll_event; MAX_EVENTS] = unsafe { std::mem::zeroed() };
    let n = if timeout == 0 {
        // SAFETY: `evs` holds `max` entries and lives across the call.
        unsafe { libc::epoll_wait(ep, evs.as_mut_ptr(), max as i32, 0) }
    } else {
        // SAFETY: the runtime lock is released around a call that touches
        // no OCaml value (only `evs`, ours), and retaken before `data` is
        // written.
        unsafe {
            ocaml::sys::caml_enter_blocking_section();
            let n = libc::epoll_wait(ep, evs.as_mut_ptr(), max as i32, timeout);
            let e = if n < 0 { errno() } else { 0 };
            ocaml::sys::caml_leave_blocking_section();
            if n < 0 {
                return e;
            }
            n
        }
    };
    if n < 0 {
        return errno();
    }
    for (i, ev) in evs.iter().take(n as usize).enumerate() {
        // SAFETY: i < max <= dim / 2: both slots lie in the bigarray.
        unsafe {
            *data.add(2 * i) = ev.events as isize;
            *data.add(2 * i + 1) = ev.u64 as u32 as i32 as isize;
        }
    }
    n as isize
}

/// Seconds on the monotonic clock (`CLOCK_MONOTONIC`), which no change of
/// the wall clock moves: the engine's timers count on it.
///
/// # Safety
///
/// Takes OCaml's unit; no other requirement.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_monotonic(_unit: Value) -> f64 {
    // SAFETY: timespec is plain data; all-zero is a valid value.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `ts` lives across the call; CLOCK_MONOTONIC always exists on
    // Linux, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Bytecode twin of [`vchan_rs_monotonic`] (returns a boxed float).
///
/// # Safety
///
/// Called by the bytecode interpreter, holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_monotonic_byte(unit: Value) -> Value {
    // SAFETY: the runtime lock is held; caml_copy_double allocates a
    // float block on the OCaml heap, as bytecode primitives may.
    unsafe { ocaml::sys::caml_copy_double(vchan_rs_monotonic(unit)) }
}

/// Bytecode twin of [`vchan_rs_epoll_create`].
///
/// # Safety
///
/// As for the native stub.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_epoll_create_byte(unit: Value) -> Value {
    // SAFETY: the same contract.
    tag(unsafe { vchan_rs_epoll_create(unit) })
}

/// Bytecode twin of [`vchan_rs_epoll_ctl`].
///
/// # Safety
///
/// As for the native stub, with tagged ints.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_epoll_ctl_byte(
    ep: Value,
    op: Value,
    fd: Value,
    ev: Value,
) -> Value {
    // SAFETY: the same contract, with the ints untagged.
    tag(unsafe { vchan_rs_epoll_ctl(untag(ep), untag(op), untag(fd), untag(ev)) })
}

/// Bytecode twin of [`vchan_rs_epoll_wait`].
///
/// # Safety
///
/// As for the native stub, with tagged ints.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_epoll_wait_byte(ep: Value, out: Value, timeout: Value) -> Value {
    // SAFETY: the same contract, with the ints untagged.
    tag(unsafe { vchan_rs_epoll_wait(untag(ep), out, untag(timeout)) })
}
