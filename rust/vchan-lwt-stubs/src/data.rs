//! Data path: raw `extern "C"` functions for OCaml externals declared
//! `[@@noalloc]` with `[@untagged] int` arguments and result, e.g.
//!
//! ```ocaml
//! external write : (int [@untagged]) -> Cstruct.buffer -> (int [@untagged])
//!   -> (int [@untagged]) -> (int [@untagged])
//!   = "vchan_rs_write_byte" "vchan_rs_write" [@@noalloc]
//! ```
//!
//! The first argument is always a handle (see the crate documentation). None of
//! these blocks, allocates on the OCaml heap, raises or calls back into
//! OCaml; results are counts (>= 0) or a negative code ([`crate::E_AGAIN`],
//! [`crate::E_EOF`], [`crate::E_CLOSED`], [`crate::E_ERROR`]).
//!
//! The `*_byte` twins serve bytecode: the same functions over tagged
//! OCaml values.

use std::os::fd::AsRawFd;

use vchan::State;

use crate::ocaml_boundary::{STATE_CONNECTED, STATE_EXITED, STATE_WAITING};
use crate::ocaml_value::{slice, tag, untag, Value};
use crate::{handle, Handle, Kind, E_EOF};

fn bad_buffer(h: &mut Handle) -> isize {
    h.fail((
        Kind::InvalidArgument as isize,
        "buffer offset/length out of bounds".into(),
    ))
}

/// Does `[p, p + len)` overlap the read ring? (Reading the ring into
/// itself would alias; on a client the ring is mapped read-only.)
fn in_read_ring(h: &Handle, p: *const u8, len: usize) -> bool {
    let (a, b) = (p as usize, h.ring as usize);
    len > 0 && a < b + h.ring_len && b < a + len
}

/// Run `op` on `ba[off..off + len]` (checked to lie in the bigarray) and
/// turn its outcome into a count or a negative code.
///
/// # Safety
///
/// `h` is a live handle; `ba` a `char` bigarray.
unsafe fn from_buffer(
    h: isize,
    ba: Value,
    off: isize,
    len: isize,
    op: impl FnOnce(&mut vchan::Endpoint, &[u8]) -> vchan::Result<usize>,
) -> isize {
    // SAFETY: per this function's contract.
    let h = unsafe { handle(h) };
    // SAFETY: per this function's contract.
    let Some((p, n)) = (unsafe { slice(ba, off, len) }) else {
        return bad_buffer(h);
    };
    if in_read_ring(h, p, n) {
        // A view into our own read ring (an echo): memory the peer can
        // still write, so never behind a `&[u8]`. Copy it out first, with
        // the core's shared-memory copy.
        let mut bounce = std::mem::take(&mut h.bounce);
        bounce.clear();
        bounce.resize(n, 0);
        // SAFETY: `p..p+n` lies in the bigarray (checked), alive for the
        // call, and does not overlap `bounce`, our own allocation.
        unsafe { vchan::vchan_core::mem::copy_from_shared(p, &mut bounce) };
        let r = op(&mut h.ep, &bounce);
        h.bounce = bounce;
        return h.code(r);
    }
    // SAFETY: `p..p+n` lies in the bigarray (checked), alive for the call,
    // and outside the read ring (checked): memory only OCaml writes, and
    // OCaml does not run during the call.
    let buf = unsafe { std::slice::from_raw_parts(p, n) };
    let r = op(&mut h.ep, buf);
    h.code(r)
}

/// Stream write: copy up to `len` bytes from `ba[off..]`. Returns the
/// count (0 only for `len = 0`), `E_AGAIN`, `E_CLOSED` (we or the peer
/// closed) or `E_ERROR`.
///
/// # Safety
///
/// `h` is a live handle; `ba` a `char` bigarray.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_write(h: isize, ba: Value, off: isize, len: isize) -> isize {
    // SAFETY: per this function's contract.
    unsafe { from_buffer(h, ba, off, len, |ep, buf| ep.write(buf)) }
}

/// Zero-copy write from descriptor `fd` (non-blocking, or a regular file):
/// one `read(2)` straight into the write ring's free span, published at
/// once (see `Endpoint::write_from_fd`). Returns the bytes read (> 0), 0
/// when `fd` has nothing now, `E_EOF` at its end-of-file, `E_AGAIN` (the
/// ring is full; a notification is armed), `E_CLOSED` or `E_ERROR`.
///
/// # Safety
///
/// `h` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_write_from_fd(h: isize, fd: isize) -> isize {
    // SAFETY: per this function's contract.
    let h = unsafe { handle(h) };
    let Ok(fd) = i32::try_from(fd) else {
        return h.fail((
            Kind::InvalidArgument as isize,
            format!("bad descriptor {fd}"),
        ));
    };
    match h.ep.write_from_fd(fd) {
        Ok(Some(0)) => E_EOF,
        Ok(Some(n)) => n as isize,
        Ok(None) => 0,
        Err(e) => h.code(Err(e)),
    }
}

/// Packet send: all `len` bytes of `ba[off..]` or nothing. Returns `len`,
/// `E_AGAIN` (not enough room yet), `E_CLOSED` or `E_ERROR` (e.g. larger
/// than the ring).
///
/// # Safety
///
/// `h` is a live handle; `ba` a `char` bigarray.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_send(h: isize, ba: Value, off: isize, len: isize) -> isize {
    // SAFETY: per this function's contract.
    unsafe { from_buffer(h, ba, off, len, |ep, buf| ep.send(buf)) }
}

/// Run `op` on `ba[off..off + len]` as a destination (checked to lie in
/// the bigarray and outside the read ring); `Ok(0)` from `op` (for a
/// non-empty buffer) is the end of the stream.
///
/// # Safety
///
/// `h` is a live handle; `ba` a `char` bigarray.
unsafe fn into_buffer(
    h: isize,
    ba: Value,
    off: isize,
    len: isize,
    op: impl FnOnce(&mut vchan::Endpoint, &mut [u8]) -> vchan::Result<usize>,
) -> isize {
    // SAFETY: per this function's contract.
    let h = unsafe { handle(h) };
    // SAFETY: per this function's contract.
    let Some((p, n)) = (unsafe { slice(ba, off, len) }) else {
        return bad_buffer(h);
    };
    if in_read_ring(h, p, n) {
        return bad_buffer(h);
    }
    if n == 0 {
        return 0;
    }
    // SAFETY: `p..p+n` lies in the bigarray (checked), which the caller
    // keeps alive for the call, and does not overlap the ring (checked).
    let buf = unsafe { std::slice::from_raw_parts_mut(p, n) };
    match op(&mut h.ep, buf) {
        Ok(0) => E_EOF,
        r => h.code(r),
    }
}

/// Packet receive: exactly `len` bytes into `ba[off..]` or nothing.
/// Returns `len`, `E_AGAIN`, `E_EOF`, `E_CLOSED` or `E_ERROR`.
///
/// # Safety
///
/// `h` is a live handle; `ba` a `char` bigarray.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_recv(h: isize, ba: Value, off: isize, len: isize) -> isize {
    // SAFETY: per this function's contract.
    unsafe { into_buffer(h, ba, off, len, |ep, buf| ep.recv(buf)) }
}

/// Copying stream read: up to `len` readable bytes into `ba[off..]`,
/// released to the writer segment by segment as they are copied (the
/// core's pipelined read), so a writer waiting for room starts at once.
/// Returns the count (> 0; 0 only for `len = 0`), `E_AGAIN`, `E_EOF`,
/// `E_CLOSED` or `E_ERROR`. (Zero-copy reads: [`vchan_rs_peek`] and
/// [`vchan_rs_consume`]; consume a view before reading past it.)
///
/// # Safety
///
/// `h` is a live handle; `ba` a `char` bigarray.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_read(h: isize, ba: Value, off: isize, len: isize) -> isize {
    // SAFETY: per this function's contract.
    unsafe { into_buffer(h, ba, off, len, |ep, buf| ep.read(buf)) }
}

/// Zero-copy read, first half: the contiguous readable run of the read
/// ring, as `offset lsl 32 lor length` (length > 0), or `E_EOF`, `E_AGAIN`,
/// `E_CLOSED`, `E_ERROR`. Release it with [`vchan_rs_consume`].
///
/// # Safety
///
/// `h` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_peek(h: isize) -> isize {
    // SAFETY: per this function's contract.
    let h = unsafe { handle(h) };
    match h.ep.peek() {
        Ok(s) if s.len == 0 => E_EOF,
        // Ring sizes are at most 2^20: both fit in 32 bits.
        Ok(s) => ((s.offset as isize) << 32) | s.len as isize,
        Err(e) => h.code(Err(e)),
    }
}

/// Zero-copy read, second half: release `n` bytes seen with
/// [`vchan_rs_peek`]. Returns 0, `E_CLOSED` or `E_ERROR`.
///
/// # Safety
///
/// `h` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_consume(h: isize, n: isize) -> isize {
    // SAFETY: per this function's contract.
    let h = unsafe { handle(h) };
    let Ok(n) = usize::try_from(n) else {
        return bad_buffer(h);
    };
    let r = h.ep.consume(n).map(|()| 0);
    h.code(r)
}

/// Bytes readable now, or `E_CLOSED`/`E_ERROR`.
///
/// # Safety
///
/// `h` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_data_ready(h: isize) -> isize {
    // SAFETY: per this function's contract.
    let h = unsafe { handle(h) };
    let r = h.ep.data_ready();
    h.code(r)
}

/// Bytes writable now, or `E_CLOSED`/`E_ERROR`.
///
/// # Safety
///
/// `h` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_buffer_space(h: isize) -> isize {
    // SAFETY: per this function's contract.
    let h = unsafe { handle(h) };
    let r = h.ep.buffer_space();
    h.code(r)
}

/// The peer's state, after consuming pending events: 0 waiting for the
/// client, 1 connected, 2 exited; `E_CLOSED` once we closed, or `E_ERROR`.
///
/// # Safety
///
/// `h` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_state(h: isize) -> isize {
    // SAFETY: per this function's contract.
    let h = unsafe { handle(h) };
    let r = h.ep.state().map(|s| match s {
        State::Waiting => STATE_WAITING as usize,
        State::Connected => STATE_CONNECTED as usize,
        State::Exited => STATE_EXITED as usize,
    });
    h.code(r)
}

/// The event descriptor (poll it for readability), or -1 once closed.
///
/// # Safety
///
/// `h` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_fd(h: isize) -> isize {
    // SAFETY: per this function's contract.
    let h = unsafe { handle(h) };
    h.ep.as_raw_fd() as isize
}

/// The endpoint's hang-up descriptor (see `Endpoint::hangup_fd`), or -1.
///
/// # Safety
///
/// `h` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_hangup_fd(h: isize) -> isize {
    // SAFETY: per this function's contract.
    let h = unsafe { handle(h) };
    h.ep.hangup_fd().map_or(-1, |fd| fd as isize)
}

/// Consume the pending events (call when the event descriptor polls
/// readable, then retry every operation that returned `E_AGAIN`): 0,
/// `E_CLOSED` or `E_ERROR`.
///
/// # Safety
///
/// `h` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_consume_events(h: isize) -> isize {
    // SAFETY: per this function's contract.
    let h = unsafe { handle(h) };
    let r = h.ep.consume_events().map(|()| 0);
    h.code(r)
}

/// 1 if the peer went away without closing (its process died; see
/// `Endpoint::peer_vanished`), else 0.
///
/// # Safety
///
/// `h` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_peer_vanished(h: isize) -> isize {
    // SAFETY: per this function's contract.
    let h = unsafe { handle(h) };
    isize::from(h.ep.peer_vanished())
}

/// 0 once the peer has read every byte written (see `Endpoint::linger`),
/// else `E_AGAIN` (notification armed), `E_CLOSED` (the peer is gone with
/// some of it unread) or `E_ERROR`.
///
/// # Safety
///
/// `h` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_linger(h: isize) -> isize {
    // SAFETY: per this function's contract.
    let h = unsafe { handle(h) };
    let r = h.ep.linger().map(|()| 0);
    h.code(r)
}

/// Spin (`on` = 1) or not (0) before answering `E_AGAIN` (see
/// `Endpoint::set_nonblocking_spin`; on by default). The OCaml side turns
/// it off for the one retry that follows consuming the events after a
/// wake-up whose retry had already spun in vain. Returns 0.
///
/// # Safety
///
/// `h` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_set_spin(h: isize, on: isize) -> isize {
    // SAFETY: per this function's contract.
    let h = unsafe { handle(h) };
    h.ep.set_nonblocking_spin(on != 0);
    0
}

// Bytecode twins: tagged ints in and out.

macro_rules! byte_stub {
    ($byte:ident => $native:ident (h, ba, off, len)) => {
        #[doc = concat!("Bytecode twin of [`", stringify!($native), "`].")]
        ///
        /// # Safety
        ///
        /// As for the native stub, with tagged ints.
        #[no_mangle]
        pub unsafe extern "C" fn $byte(h: Value, ba: Value, off: Value, len: Value) -> Value {
            // SAFETY: the same contract, with the ints untagged.
            tag(unsafe { $native(untag(h), ba, untag(off), untag(len)) })
        }
    };
    ($byte:ident => $native:ident (h, n)) => {
        #[doc = concat!("Bytecode twin of [`", stringify!($native), "`].")]
        ///
        /// # Safety
        ///
        /// As for the native stub, with tagged ints.
        #[no_mangle]
        pub unsafe extern "C" fn $byte(h: Value, n: Value) -> Value {
            // SAFETY: the same contract, with the ints untagged.
            tag(unsafe { $native(untag(h), untag(n)) })
        }
    };
    ($byte:ident => $native:ident (h)) => {
        #[doc = concat!("Bytecode twin of [`", stringify!($native), "`].")]
        ///
        /// # Safety
        ///
        /// As for the native stub, with tagged ints.
        #[no_mangle]
        pub unsafe extern "C" fn $byte(h: Value) -> Value {
            // SAFETY: the same contract, with the int untagged.
            tag(unsafe { $native(untag(h)) })
        }
    };
}

/// The bytecode twins, and (for the boundary's unit test in src/lib.rs) the
/// list of what they wrap: native symbol and argument types.
macro_rules! byte_stubs {
    ($($byte:ident => $native:ident ($($a:ident),*);)*) => {
        $(byte_stub!($byte => $native($($a),*));)*

        #[cfg(test)]
        pub(crate) const DEFINED: &[(&str, &[crate::ocaml_boundary::Ty])] =
            &[$((stringify!($native), &[$(arg_ty!($a)),*])),*];
    };
}

/// The OCaml type of a data-path stub's argument, by its name.
#[cfg(test)]
macro_rules! arg_ty {
    (h) => {
        crate::ocaml_boundary::Ty::IntAlias("handle")
    };
    (ba) => {
        crate::ocaml_boundary::Ty::Value("Cstruct.buffer")
    };
    ($int:ident) => {
        crate::ocaml_boundary::Ty::Int
    };
}

byte_stubs! {
    vchan_rs_write_byte => vchan_rs_write(h, ba, off, len);
    vchan_rs_send_byte => vchan_rs_send(h, ba, off, len);
    vchan_rs_recv_byte => vchan_rs_recv(h, ba, off, len);
    vchan_rs_read_byte => vchan_rs_read(h, ba, off, len);
    vchan_rs_peek_byte => vchan_rs_peek(h);
    vchan_rs_consume_byte => vchan_rs_consume(h, n);
    vchan_rs_write_from_fd_byte => vchan_rs_write_from_fd(h, n);
    vchan_rs_data_ready_byte => vchan_rs_data_ready(h);
    vchan_rs_buffer_space_byte => vchan_rs_buffer_space(h);
    vchan_rs_state_byte => vchan_rs_state(h);
    vchan_rs_fd_byte => vchan_rs_fd(h);
    vchan_rs_hangup_fd_byte => vchan_rs_hangup_fd(h);
    vchan_rs_linger_byte => vchan_rs_linger(h);
    vchan_rs_peer_vanished_byte => vchan_rs_peer_vanished(h);
    vchan_rs_consume_events_byte => vchan_rs_consume_events(h);
    vchan_rs_set_spin_byte => vchan_rs_set_spin(h, n);
}
