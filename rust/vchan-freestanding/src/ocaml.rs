//! The OCaml externals of `Vchan_rs.Endpoint.Make` (their OCaml side,
//! `ocaml/freestanding.ml`, is generated from [`crate::boundary`]).
//!
//! Plain `extern "C"` functions for externals declared `[@@noalloc]` with
//! `[@untagged] int` arguments and result: they receive bigarrays as
//! `value`s and only read their headers (data pointer and length), so they
//! call nothing of the OCaml runtime — no `caml_*` symbol, no rooting, no
//! allocation, no exception. Measured against ocaml-rs on this machine
//! (docs/design.md): such an external costs about what an OCaml call does
//! (~2 ns), `#[ocaml::func]` 50-70 ns; and ocaml-rs's boxroot needs
//! pthreads, which unikernels do not have. Each has a `_byte` twin for
//! bytecode, over tagged ints.

use crate::abi;
use crate::boundary::{E_INVALID, STATE_SIZE};
pub use crate::ocaml_value::Value;
use crate::ocaml_value::{bigarray, slice, string, tag, untag};

/// A whole `char` bigarray, or (null, 0) for an empty one.
///
/// # Safety
/// As [`bigarray`].
unsafe fn whole(ba: Value) -> Option<(*mut u8, usize)> {
    // SAFETY: per this function's contract.
    let (data, dim) = unsafe { bigarray(ba)? };
    Some(if dim == 0 {
        (core::ptr::null_mut(), 0)
    } else {
        (data, dim)
    })
}

/// The state memory (at least [`STATE_SIZE`] bytes).
///
/// # Safety
/// As [`bigarray`].
unsafe fn state(st: Value) -> *mut u8 {
    // SAFETY: per this function's contract.
    match unsafe { bigarray(st) } {
        Some((p, n)) if n >= STATE_SIZE => p,
        _ => core::ptr::null_mut(),
    }
}

/// A page: 4096 bytes at least.
///
/// # Safety
/// As [`bigarray`].
unsafe fn page(pg: Value) -> *mut u8 {
    // SAFETY: per this function's contract.
    match unsafe { bigarray(pg) } {
        Some((p, n)) if n >= vchan_core::layout::PAGE_SIZE => p,
        _ => core::ptr::null_mut(),
    }
}

/// An `int32` bigarray as refs.
///
/// # Safety
/// `g` is an `(int32, int32_elt, c_layout) Bigarray.Array1.t`.
unsafe fn grants(g: Value) -> Option<(*mut u32, usize)> {
    // SAFETY: per this function's contract.
    let (p, n) = unsafe { bigarray(g)? };
    Some((p.cast(), n))
}

macro_rules! ty {
    (INT) => {
        isize
    };
    ($other:ident) => {
        Value
    };
}

macro_rules! from_byte {
    (INT, $a:expr) => {
        untag($a)
    };
    ($other:ident, $a:expr) => {
        $a
    };
}

/// Defines each external, its bytecode twin, and (for the boundary's unit
/// test) the list of what was defined.
macro_rules! externals {
    ($( fn $native:ident / $byte:ident ( $($a:ident : $k:ident),* ) $body:block )*) => {
        $(
            #[doc = concat!("OCaml external `", stringify!($native), "` (see `crate::boundary::EXTERNALS`).")]
            ///
            /// # Safety
            /// Called by OCaml as declared in the generated
            /// `ocaml/freestanding.ml`: bigarray arguments are live
            /// bigarrays of the declared kinds; the state and the memory
            /// the endpoint was attached to stay alive (the OCaml
            /// endpoint holds them).
            #[no_mangle]
            pub unsafe extern "C" fn $native($($a: ty!($k)),*) -> isize $body

            #[doc = concat!("Bytecode twin of [`", stringify!($native), "`].")]
            ///
            /// # Safety
            /// As the native external, with tagged ints.
            #[no_mangle]
            pub unsafe extern "C" fn $byte($($a: Value),*) -> Value {
                // SAFETY: the same contract, with the ints untagged.
                tag(unsafe { $native($(from_byte!($k, $a)),*) })
            }
        )*

        /// What this module defines: (native symbol, arguments).
        #[cfg(test)]
        pub(crate) const DEFINED: &[(&str, &[crate::ocaml_boundary::Ty])] =
            &[$((stringify!($native), &[$(crate::boundary::$k),*])),*];
    };
}

externals! {
    fn vchan_fs_ml_port_valid / vchan_fs_ml_port_valid_byte (name: STR) {
        // SAFETY: per the external's contract, `name` is a live string.
        isize::from(vchan_core::name::valid_port(unsafe { string(name) }))
    }
    fn vchan_fs_ml_domid_valid / vchan_fs_ml_domid_valid_byte (id: INT) {
        isize::from(u32::try_from(id).is_ok_and(vchan_core::name::valid_domid))
    }
    fn vchan_fs_ml_domid_parse / vchan_fs_ml_domid_parse_byte (s: STR) {
        // SAFETY: per the external's contract, `s` is a live string.
        vchan_core::name::parse_domid(unsafe { string(s) })
            .map_or(E_INVALID, |d| d as isize)
    }
    fn vchan_fs_ml_server_orders / vchan_fs_ml_server_orders_byte (read_min: INT, write_min: INT) {
        match (usize::try_from(read_min), usize::try_from(write_min)) {
            (Ok(r), Ok(w)) => abi::vchan_fs_server_orders(r, w),
            _ => E_INVALID,
        }
    }
    fn vchan_fs_ml_ring_pages / vchan_fs_ml_ring_pages_byte (order: INT) {
        abi::vchan_fs_ring_pages(order)
    }
    fn vchan_fs_ml_ring_offset / vchan_fs_ml_ring_offset_byte (order: INT) {
        abi::vchan_fs_ring_offset(order)
    }
    fn vchan_fs_ml_server_init / vchan_fs_ml_server_init_byte (pg: BUF, orders: INT, gr: GRANTS) {
        // SAFETY: per the external's contract.
        match unsafe { grants(gr) } {
            // SAFETY: page and refs are live bigarrays (lengths checked).
            Some((g, n)) => unsafe { abi::vchan_fs_server_init(page(pg), orders, g, n) },
            None => E_INVALID,
        }
    }
    fn vchan_fs_ml_client_orders / vchan_fs_ml_client_orders_byte (pg: BUF) {
        // SAFETY: the page is a live bigarray (length checked).
        unsafe { abi::vchan_fs_client_orders(page(pg)) }
    }
    fn vchan_fs_ml_client_grants / vchan_fs_ml_client_grants_byte (pg: BUF, orders: INT, gr: GRANTS) {
        // SAFETY: per the external's contract.
        match unsafe { grants(gr) } {
            // SAFETY: page and refs are live bigarrays (lengths checked).
            Some((g, n)) => unsafe { abi::vchan_fs_client_grants(page(pg), orders, g, n) },
            None => E_INVALID,
        }
    }
    fn vchan_fs_ml_attach / vchan_fs_ml_attach_byte (st: STATE, pg: BUF, orders: INT, left: BUF, right: BUF) {
        let ring = |order: isize, ba: Value| -> Option<(*mut u8, usize)> {
            if abi::vchan_fs_ring_pages(order) == 0 {
                Some((core::ptr::null_mut(), 0))
            } else {
                // SAFETY: a live bigarray, per the external's contract.
                unsafe { whole(ba) }
            }
        };
        match (ring(orders & 0xff, left), ring((orders >> 8) & 0xff, right)) {
            // SAFETY: state, page and rings are live bigarrays (lengths
            // checked) that the OCaml endpoint keeps alive until close.
            (Some((l, ln)), Some((r, rn))) => unsafe {
                abi::vchan_fs_attach(state(st), page(pg), orders, l, ln, r, rn)
            },
            _ => E_INVALID,
        }
    }
    fn vchan_fs_ml_write / vchan_fs_ml_write_byte (st: STATE, ba: BUF, off: INT, len: INT) {
        // SAFETY: per the external's contract.
        match unsafe { slice(ba, off, len) } {
            // SAFETY: `p..p+n` lies in the live bigarray (checked).
            Some((p, n)) => unsafe { abi::vchan_fs_write(state(st), p, n) },
            None => E_INVALID,
        }
    }
    fn vchan_fs_ml_send / vchan_fs_ml_send_byte (st: STATE, ba: BUF, off: INT, len: INT) {
        // SAFETY: per the external's contract.
        match unsafe { slice(ba, off, len) } {
            // SAFETY: `p..p+n` lies in the live bigarray (checked).
            Some((p, n)) => unsafe { abi::vchan_fs_send(state(st), p, n) },
            None => E_INVALID,
        }
    }
    fn vchan_fs_ml_read / vchan_fs_ml_read_byte (st: STATE, ba: BUF, off: INT, len: INT) {
        // SAFETY: per the external's contract.
        match unsafe { slice(ba, off, len) } {
            // SAFETY: `p..p+n` lies in the live bigarray (checked).
            Some((p, n)) => unsafe { abi::vchan_fs_read(state(st), p, n) },
            None => E_INVALID,
        }
    }
    fn vchan_fs_ml_recv / vchan_fs_ml_recv_byte (st: STATE, ba: BUF, off: INT, len: INT) {
        // SAFETY: per the external's contract.
        match unsafe { slice(ba, off, len) } {
            // SAFETY: `p..p+n` lies in the live bigarray (checked).
            Some((p, n)) => unsafe { abi::vchan_fs_recv(state(st), p, n) },
            None => E_INVALID,
        }
    }
    fn vchan_fs_ml_peek / vchan_fs_ml_peek_byte (st: STATE) {
        // SAFETY: the state is a live bigarray (length checked).
        unsafe { abi::vchan_fs_peek(state(st)) }
    }
    fn vchan_fs_ml_consume / vchan_fs_ml_consume_byte (st: STATE, n: INT) {
        match usize::try_from(n) {
            // SAFETY: the state is a live bigarray (length checked).
            Ok(n) => unsafe { abi::vchan_fs_consume(state(st), n) },
            Err(_) => E_INVALID,
        }
    }
    fn vchan_fs_ml_free_span / vchan_fs_ml_free_span_byte (st: STATE) {
        // SAFETY: the state is a live bigarray (length checked).
        unsafe { abi::vchan_fs_free_span(state(st)) }
    }
    fn vchan_fs_ml_produce / vchan_fs_ml_produce_byte (st: STATE, n: INT) {
        match usize::try_from(n) {
            // SAFETY: the state is a live bigarray (length checked).
            Ok(n) => unsafe { abi::vchan_fs_produce(state(st), n) },
            Err(_) => E_INVALID,
        }
    }
    fn vchan_fs_ml_peer_gone / vchan_fs_ml_peer_gone_byte (st: STATE) {
        // SAFETY: the state is a live bigarray (length checked).
        unsafe { abi::vchan_fs_peer_gone(state(st)) }
    }
    fn vchan_fs_ml_data_ready / vchan_fs_ml_data_ready_byte (st: STATE) {
        // SAFETY: the state is a live bigarray (length checked).
        unsafe { abi::vchan_fs_data_ready(state(st)) }
    }
    fn vchan_fs_ml_buffer_space / vchan_fs_ml_buffer_space_byte (st: STATE) {
        // SAFETY: the state is a live bigarray (length checked).
        unsafe { abi::vchan_fs_buffer_space(state(st)) }
    }
    fn vchan_fs_ml_data_ready_or_arm / vchan_fs_ml_data_ready_or_arm_byte (st: STATE, want: INT) {
        // SAFETY: the state is a live bigarray (length checked).
        unsafe { abi::vchan_fs_data_ready_or_arm(state(st), want.max(0) as usize) }
    }
    fn vchan_fs_ml_buffer_space_or_arm / vchan_fs_ml_buffer_space_or_arm_byte (st: STATE, want: INT) {
        // SAFETY: the state is a live bigarray (length checked).
        unsafe { abi::vchan_fs_buffer_space_or_arm(state(st), want.max(0) as usize) }
    }
    fn vchan_fs_ml_poll_data / vchan_fs_ml_poll_data_byte (st: STATE, want: INT, polls: INT) {
        // SAFETY: the state is a live bigarray (length checked).
        unsafe { abi::vchan_fs_poll_data(state(st), want.max(0) as usize, polls.max(0) as usize) }
    }
    fn vchan_fs_ml_poll_space / vchan_fs_ml_poll_space_byte (st: STATE, want: INT, polls: INT) {
        // SAFETY: the state is a live bigarray (length checked).
        unsafe { abi::vchan_fs_poll_space(state(st), want.max(0) as usize, polls.max(0) as usize) }
    }
    fn vchan_fs_ml_state / vchan_fs_ml_state_byte (st: STATE) {
        // SAFETY: the state is a live bigarray (length checked).
        unsafe { abi::vchan_fs_state(state(st)) }
    }
    fn vchan_fs_ml_read_size / vchan_fs_ml_read_size_byte (st: STATE) {
        // SAFETY: the state is a live bigarray (length checked).
        unsafe { abi::vchan_fs_read_size(state(st)) }
    }
    fn vchan_fs_ml_write_size / vchan_fs_ml_write_size_byte (st: STATE) {
        // SAFETY: the state is a live bigarray (length checked).
        unsafe { abi::vchan_fs_write_size(state(st)) }
    }
    fn vchan_fs_ml_close / vchan_fs_ml_close_byte (st: STATE) {
        // SAFETY: the state is a live bigarray (length checked).
        unsafe { abi::vchan_fs_close(state(st)) }
    }
}

#[cfg(test)]
mod tests {
    use super::DEFINED;
    use crate::boundary::EXTERNALS;
    use crate::ocaml_boundary::{Call, Ty};

    #[test]
    fn defined_externals_are_the_boundarys() {
        // Every one is [@@noalloc] over untagged ints (the macro's type).
        for e in EXTERNALS {
            assert_eq!((e.ret, e.call), (Ty::Int, Call::NoAlloc), "{}", e.name);
        }
        let listed: Vec<_> = EXTERNALS.iter().map(|e| (e.symbol, e.args)).collect();
        let defined: Vec<_> = DEFINED.iter().map(|(s, a)| (*s, *a)).collect();
        assert_eq!(listed, defined);
    }
}
