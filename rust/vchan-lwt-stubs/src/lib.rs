//! **Internal crate of vchan-rs** (not published; no Rust API to rely on):
//! the C stubs of the OCaml library, whose externals are their only users.
//!
//! C stubs for the OCaml library `vchan-rs-unix` (`ocaml/lwt-unix/`),
//! linked into it as `libvchan_rs_stubs.a` (native code) and
//! `dllvchan_rs_stubs.so` (bytecode). Every external is listed, typed, in
//! [`boundary::EXTERNALS`]; `vchan-lwt-stubs-gen` prints their OCaml side
//! from it, and a unit test checks it against the functions defined here.
//!
//! # What is here
//!
//! - [`plumbing`]: the backends' event channels, shared memory and
//!   rendezvous store, for `Vchan_rs.Endpoint.Make_with` (the rings are
//!   the freestanding archive's, linked into `vchan-rs`);
//! - [`region`]: shared memory as bigarrays that own it;
//! - [`engine`]: the epoll engine's system calls;
//! - the backend's facts (this domain's id, the rendezvous directory).
//!
//! Stubs that create things or convert values are `#[ocaml::func]` (~50-70
//! ns a call); the per-event ones (notify, drain, epoll) are raw `extern
//! "C"` functions for `[@@noalloc]` externals over `[@untagged] int`s (~2
//! ns), each with a `*_byte` twin for bytecode.
#![warn(missing_docs)]

use std::io;

mod control;
pub mod engine;
pub mod plumbing;
pub mod region;

use vchan::Error;

pub mod boundary;
// Shared with vchan-freestanding, whose library this one cannot link (it
// brings its own panic handler); see ocaml_boundary's documentation.
#[path = "../../vchan-freestanding/src/ocaml_boundary.rs"]
pub mod ocaml_boundary;
#[path = "../../vchan-freestanding/src/ocaml_value.rs"]
#[allow(dead_code)] // its strings: ocaml-rs reads them here
pub(crate) mod ocaml_value;

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

#[cfg(test)]
mod tests {
    use crate::boundary::EXTERNALS;
    use crate::control::*;
    use crate::engine::*;
    use crate::ocaml_boundary::{Call, Ty};
    use crate::ocaml_value::Value;
    use crate::plumbing::*;
    use crate::region::*;
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
            c_fn!(vchan_rs_own_domid(raw) -> raw),
            c_fn!(vchan_rs_unix_dir(raw) -> raw),
            c_fn!(vchan_rs_epoll_create(value) -> isize),
            c_fn!(vchan_rs_epoll_create_byte(value) -> value),
            c_fn!(vchan_rs_epoll_ctl(isize, isize, isize, isize) -> isize),
            c_fn!(vchan_rs_epoll_ctl_byte(value, value, value, value) -> value),
            c_fn!(vchan_rs_epoll_wait(isize, value, isize) -> isize),
            c_fn!(vchan_rs_epoll_wait_byte(value, value, value) -> value),
            c_fn!(vchan_rs_monotonic(value) -> f64),
            c_fn!(vchan_rs_monotonic_byte(value) -> value),
            c_fn!(vchan_rs_chan_listen(raw, raw) -> raw),
            c_fn!(vchan_rs_chan_connect(raw, raw, raw) -> raw),
            c_fn!(vchan_rs_chan_port(raw) -> raw),
            c_fn!(vchan_rs_chan_fd(raw) -> raw),
            c_fn!(vchan_rs_chan_hangup_fd(raw) -> raw),
            c_fn!(vchan_rs_chan_notify(isize) -> isize),
            c_fn!(vchan_rs_chan_notify_byte(value) -> value),
            c_fn!(vchan_rs_chan_drain(isize) -> isize),
            c_fn!(vchan_rs_chan_drain_byte(value) -> value),
            c_fn!(vchan_rs_chan_free(raw) -> raw),
            c_fn!(vchan_rs_share(raw, raw, raw) -> raw),
            c_fn!(vchan_rs_share_page(raw, raw, raw, raw) -> raw),
            c_fn!(vchan_rs_map(raw, raw, raw, raw) -> raw),
            c_fn!(vchan_rs_map_page(raw, raw, raw, raw, raw) -> raw),
            c_fn!(vchan_rs_region_refs(raw) -> raw),
            c_fn!(vchan_rs_region_buf(value) -> value),
            c_fn!(vchan_rs_publish(raw, raw, raw, raw, raw) -> raw),
            c_fn!(vchan_rs_lookup(raw, raw, raw) -> raw),
            c_fn!(vchan_rs_unpublish(raw, raw, raw) -> raw),
            c_fn!(vchan_rs_fd_read(isize, value, isize, isize) -> isize),
            c_fn!(vchan_rs_fd_read_byte(value, value, value, value) -> value),
        ];
        listed.sort();
        defined.sort();
        assert_eq!(listed, defined);
    }
}
