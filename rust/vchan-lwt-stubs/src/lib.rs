//! **Internal crate of vchan-rs** (not published; no Rust API to rely on):
//! the C stubs of the OCaml library, whose externals are their only users.
//!
//! C stubs for the OCaml library `vchan-rs-unix` (`ocaml/lwt-unix/`),
//! linked into it as `libvchan_rs_stubs.a` (native code) and
//! `dllvchan_rs_stubs.so` (bytecode). Every external is listed, typed, in
//! [`boundary::EXTERNALS`]; `vchan-lwt-stubs-gen` prints their OCaml side
//! from it, and a unit test checks it against the functions defined here.
//!
//! # Handles and their lifetime
//!
//! An endpoint lives in a `Box<Handle>`; its address is handed to OCaml as
//! an `int` (user-space addresses fit in 63 bits). Right after creating it,
//! the OCaml side asks for the read ring as a bigarray
//! ([`ring::vchan_rs_ring`]) and keeps both in one record. That bigarray
//! **owns** the handle: it is a custom block with its own finaliser (as
//! `Unix.map_file` bigarrays are), shared by every sub-array made from it,
//! and the handle is freed when the last of them is collected — so neither
//! the endpoint nor any zero-copy view into its ring can dangle. Closing
//! (`vchan_rs_close`) is the protocol close — the peer sees it at once —
//! but keeps the memory mapped until then.
//!
//! # Two kinds of stubs
//!
//! - Control path (create, close, errors): `#[ocaml::func]`, which roots
//!   arguments and converts values (~50-70 ns a call).
//! - Data path ([`data`]): raw `extern "C"` functions for `[@@noalloc]`
//!   externals with `[@untagged] int` arguments (~2 ns a call). They never
//!   block (the endpoint is non-blocking), never allocate on the OCaml heap
//!   and never raise: they return a count, or one of the negative codes
//!   below. Each has a `*_byte` twin for bytecode, taking and returning
//!   tagged OCaml values.
#![warn(missing_docs)]

use std::io;

mod control;
pub mod data;
pub mod engine;
pub mod plumbing;
pub mod ring;

use vchan::{Endpoint, Error, RetainedMemory};

pub mod boundary;
// Shared with vchan-freestanding, whose library this one cannot link (it
// brings its own panic handler); see ocaml_boundary's documentation.
#[path = "../../vchan-freestanding/src/ocaml_boundary.rs"]
pub mod ocaml_boundary;
#[path = "../../vchan-freestanding/src/ocaml_value.rs"]
#[allow(dead_code)] // its strings: ocaml-rs reads them here
pub(crate) mod ocaml_value;

pub use boundary::{E_AGAIN, E_CLOSED, E_EOF, E_ERROR};

/// Error kinds reported to OCaml with a message, as `(kind, message)`
/// (values from [`boundary`], whose OCaml side is generated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(isize)]
pub enum Kind {
    /// A system call failed.
    System = boundary::KIND_SYSTEM,
    /// The channel is closed.
    Closed = boundary::KIND_CLOSED,
    /// Another client is connected to this server.
    Busy = boundary::KIND_BUSY,
    /// A live server already serves this client domain and port.
    AddrInUse = boundary::KIND_ADDR_IN_USE,
    /// No server appeared in time.
    Timeout = boundary::KIND_TIMEOUT,
    /// A bad argument (port name, domain id, ring size, packet size).
    InvalidArgument = boundary::KIND_INVALID_ARGUMENT,
    /// The backend cannot be used here.
    Unavailable = boundary::KIND_UNAVAILABLE,
    /// The peer broke the protocol.
    Protocol = boundary::KIND_PROTOCOL,
}

impl Kind {
    fn of_error(e: &Error) -> Kind {
        match e {
            Error::InvalidPort(_)
            | Error::InvalidDomid(_)
            | Error::BadDomid(_)
            | Error::InvalidEnv { .. } => Kind::InvalidArgument,
            Error::Core(c) if c.is_protocol_violation() => Kind::Protocol,
            Error::Core(_) => Kind::InvalidArgument,
            Error::Busy => Kind::Busy,
            Error::AddrInUse => Kind::AddrInUse,
            Error::Timeout(_) => Kind::Timeout,
            Error::Closed => Kind::Closed,
            Error::BackendUnavailable(_) => Kind::Unavailable,
            Error::Io(e) if e.kind() == io::ErrorKind::BrokenPipe => Kind::Closed,
            _ => Kind::System,
        }
    }
}

/// An error as OCaml receives it: `(kind, message)`.
pub(crate) type CamlErr = (isize, String);

pub(crate) fn caml_err(e: &Error) -> CamlErr {
    (Kind::of_error(e) as isize, e.to_string())
}

/// One endpoint, as OCaml holds it.
pub struct Handle {
    ep: Endpoint,
    /// Base and length of the ring we read from (fixed for the endpoint's
    /// life, and mapped until the handle is freed).
    ring: *const u8,
    ring_len: usize,
    /// The memory kept mapped after [`vchan_rs_close`].
    retained: Option<RetainedMemory>,
    /// The last data-path error (returned as [`E_ERROR`]).
    last_error: Option<CamlErr>,
    /// Where a write whose source lies in the read ring (an echo of a read
    /// view) is copied first: the peer can still write there, so no `&[u8]`
    /// may be made over it (see `data::from_buffer`).
    bounce: Vec<u8>,
}

impl Handle {
    fn new(mut ep: Endpoint) -> Result<Handle, Error> {
        ep.set_nonblocking(true);
        // Lwt can afford the bounded spin (at most 100 µs per operation,
        // 2 µs once the peer is idle): see Endpoint::set_nonblocking_spin.
        ep.set_nonblocking_spin(true);
        let (ring, ring_len) = ep.read_ring()?;
        Ok(Handle {
            ep,
            ring,
            ring_len,
            retained: None,
            last_error: None,
            bounce: Vec::new(),
        })
    }

    /// Map a data-path result to a count or a negative code.
    fn code(&mut self, r: Result<usize, Error>) -> isize {
        match r {
            Ok(n) => n as isize,
            Err(Error::Closed) => E_CLOSED,
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => E_AGAIN,
            Err(e) => self.fail(caml_err(&e)),
        }
    }

    fn fail(&mut self, e: CamlErr) -> isize {
        self.last_error = Some(e);
        E_ERROR
    }
}

/// Box a handle and turn its address into an OCaml-representable integer.
pub(crate) fn into_raw(h: Handle) -> Result<isize, CamlErr> {
    let p = Box::into_raw(Box::new(h)) as usize;
    if p >> 62 != 0 {
        // SAFETY: `p` came from Box::into_raw just above and was not shared.
        drop(unsafe { Box::from_raw(p as *mut Handle) });
        return Err((
            Kind::System as isize,
            "endpoint address does not fit an OCaml int".into(),
        ));
    }
    Ok(p as isize)
}

/// The handle behind an OCaml int.
///
/// # Safety
///
/// `h` must come from [`into_raw`] and not have been freed (see
/// [`ring`]), and no other reference to the handle may be live. The OCaml
/// library guarantees both: the record that passes `h` holds the ring
/// bigarray that owns the handle, and stubs run holding the runtime lock,
/// so they never overlap.
pub(crate) unsafe fn handle<'a>(h: isize) -> &'a mut Handle {
    // SAFETY: per this function's contract, `h` is the address of a live,
    // unaliased Box<Handle>.
    unsafe { &mut *(h as *mut Handle) }
}

#[cfg(test)]
mod tests {
    use crate::boundary::EXTERNALS;
    use crate::control::*;
    use crate::data::DEFINED;
    use crate::engine::*;
    use crate::ocaml_boundary::{Call, Ty};
    use crate::ocaml_value::Value;
    use crate::plumbing::*;
    use crate::ring::*;
    use ocaml::Raw;

    /// A C function as OCaml sees it: symbol, argument and result kinds.
    type CFn = (String, Vec<&'static str>, &'static str);

    /// How a type is passed in C.
    fn kind(t: Ty) -> &'static str {
        match t {
            Ty::Int | Ty::IntAlias(_) => "isize",
            Ty::Float => "f64",
            Ty::Value(_) => "value",
        }
    }

    /// The C functions `f` asks of the stubs: the native one, and the
    /// bytecode twin over values.
    fn wanted(symbol: &str, args: &[Ty], ret: Ty, call: Call) -> Vec<CFn> {
        let native = (
            symbol.to_owned(),
            args.iter().map(|a| kind(*a)).collect(),
            kind(ret),
        );
        match call {
            Call::Values => vec![native],
            Call::NoAlloc | Call::Twin => {
                let twin = (format!("{symbol}_byte"), vec!["value"; args.len()], "value");
                vec![native, twin]
            }
        }
    }

    /// A function of this crate, coerced to the C type its kinds spell
    /// (`raw`: ocaml-rs's value type): does not compile unless it has it.
    macro_rules! c_fn {
        ($f:ident ( $($a:ident),* ) -> $r:ident) => {{
            let _: unsafe extern "C" fn($(c_fn!(@ty $a)),*) -> c_fn!(@ty $r) = $f;
            (stringify!($f).to_owned(), vec![$(c_fn!(@kind $a)),*], c_fn!(@kind $r))
        }};
        (@ty raw) => { Raw };
        (@ty value) => { Value };
        (@ty isize) => { isize };
        (@ty f64) => { f64 };
        (@kind raw) => { "value" };
        (@kind $k:ident) => { stringify!($k) };
    }

    #[test]
    fn the_table_is_what_the_stubs_define() {
        let mut listed: Vec<CFn> = EXTERNALS
            .iter()
            .flat_map(|e| wanted(e.symbol, e.args, e.ret, e.call))
            .collect();
        let mut defined: Vec<CFn> = vec![
            c_fn!(vchan_rs_listen(raw, raw, raw, raw, raw) -> raw),
            c_fn!(vchan_rs_own_domid(raw) -> raw),
            c_fn!(vchan_rs_try_connect(raw, raw, raw) -> raw),
            c_fn!(vchan_rs_close(raw) -> raw),
            c_fn!(vchan_rs_last_error(raw) -> raw),
            c_fn!(vchan_rs_is_server(raw) -> raw),
            c_fn!(vchan_rs_unix_dir(raw) -> raw),
            c_fn!(vchan_rs_ring(value) -> value),
            c_fn!(vchan_rs_epoll_create(value) -> isize),
            c_fn!(vchan_rs_epoll_create_byte(value) -> value),
            c_fn!(vchan_rs_epoll_ctl(isize, isize, isize, isize) -> isize),
            c_fn!(vchan_rs_epoll_ctl_byte(value, value, value, value) -> value),
            c_fn!(vchan_rs_epoll_wait(isize, value, isize) -> isize),
            c_fn!(vchan_rs_epoll_wait_byte(value, value, value) -> value),
            c_fn!(vchan_rs_monotonic(value) -> f64),
            c_fn!(vchan_rs_monotonic_byte(value) -> value),
            c_fn!(vchan_rs_chan_listen(raw) -> raw),
            c_fn!(vchan_rs_chan_connect(raw, raw) -> raw),
            c_fn!(vchan_rs_chan_port(raw) -> raw),
            c_fn!(vchan_rs_chan_fd(raw) -> raw),
            c_fn!(vchan_rs_chan_hangup_fd(raw) -> raw),
            c_fn!(vchan_rs_chan_notify(isize) -> isize),
            c_fn!(vchan_rs_chan_notify_byte(value) -> value),
            c_fn!(vchan_rs_chan_drain(isize) -> isize),
            c_fn!(vchan_rs_chan_drain_byte(value) -> value),
            c_fn!(vchan_rs_chan_free(raw) -> raw),
            c_fn!(vchan_rs_share(raw, raw) -> raw),
            c_fn!(vchan_rs_map(raw, raw, raw) -> raw),
            c_fn!(vchan_rs_region_refs(raw) -> raw),
            c_fn!(vchan_rs_region_free(raw) -> raw),
            c_fn!(vchan_rs_region_buf(value) -> value),
            c_fn!(vchan_rs_publish(raw, raw, raw, raw) -> raw),
            c_fn!(vchan_rs_lookup(raw, raw) -> raw),
            c_fn!(vchan_rs_unpublish(raw, raw) -> raw),
        ];
        // The data path's stubs and their twins, as byte_stubs! made them.
        for (symbol, args) in DEFINED {
            defined.extend(wanted(symbol, args, Ty::Int, Call::NoAlloc));
        }
        listed.sort();
        defined.sort();
        assert_eq!(listed, defined);
        // The data path's argument types (the C kinds above cannot tell a
        // handle from an int).
        for (symbol, args) in DEFINED {
            let e = EXTERNALS.iter().find(|e| e.symbol == *symbol);
            assert_eq!(e.map(|e| e.args), Some(*args), "{symbol}");
        }
    }
}
