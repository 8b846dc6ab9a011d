//! The vchan ring core for freestanding code: a `#![no_std]`,
//! allocation-free, libc-free archive over `vchan-core`, for Mirage
//! unikernels (Solo5, Xen) and any C program that brings its own memory
//! and event channels.
//!
//! Two faces over one implementation:
//! - [`abi`]: a small C ABI (`include/vchan_freestanding.h`): server set-up
//!   over pages the caller shared, client validation of pages it mapped,
//!   stream and packet I/O, zero-copy peek/consume, and the notify
//!   decision ("signal the peer now") returned with every operation;
//! - [`ocaml`]: the OCaml externals of `Vchan_rs.Endpoint.Make`, plain
//!   `extern "C"` functions for `[@@noalloc]` externals that only read
//!   bigarray headers — no OCaml runtime call at all, so nothing of
//!   ocaml-rs (whose boxroot needs pthreads) is linked.
//!
//! The caller owns all memory: the shared page, the rings, and
//! [`boundary::STATE_SIZE`] bytes (8-byte aligned) holding one endpoint.
//! The archive never allocates, never blocks and never signals; it tells
//! the caller when the peer must be signalled.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

pub mod abi;
pub mod boundary;
pub mod ocaml;
pub mod ocaml_boundary;
pub mod ocaml_value;

/// Freestanding code has nowhere to report a panic: stop here. The core
/// never panics on peer-controlled input (see vchan-core); this is for
/// bugs. The symbol is made weak when the archive is linked into a Linux
/// program next to Rust's std (see ocaml/dune), whose handler then wins.
#[cfg(not(test))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// Rust's precompiled `core` for Linux targets was built to unwind and
/// refers to this personality routine; with `panic = "abort"` nothing ever
/// unwinds through this archive, so it is never called. Like the panic
/// handler it is made weak for Linux links next to std (whose routine
/// wins). Bare-metal targets' `core` does not refer to it.
#[cfg(all(not(test), not(target_os = "none")))]
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}
