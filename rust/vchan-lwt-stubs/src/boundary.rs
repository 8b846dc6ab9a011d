//! The boundary between `vchan-rs-unix` (OCaml) and these stubs, as data:
//! error kinds, the epoll engine's values and every
//! external, in the typed table of `ocaml_boundary` (shared with
//! `vchan-freestanding`). The library uses the codes and checks in a unit
//! test (src/lib.rs) that [`EXTERNALS`] is what it defines;
//! `vchan-lwt-stubs-gen` (src/bin/gen.rs) prints the OCaml side
//! (`ocaml/lwt-unix/stubs.ml`) from it. Edit here, never in the generated
//! file.

use crate::ocaml_boundary::{Call, External, Ty};

/// Error kind: a system call failed.
pub const KIND_SYSTEM: isize = 0;
/// Error kind: the channel is closed.
pub const KIND_CLOSED: isize = 1;
/// Error kind: another client is connected to this server.
pub const KIND_BUSY: isize = 2;
/// Error kind: a live server already serves this client domain and port.
pub const KIND_ADDR_IN_USE: isize = 3;
/// Error kind: no server appeared in time.
pub const KIND_TIMEOUT: isize = 4;
/// Error kind: a bad argument (port name, domain id, ring size, packet size).
pub const KIND_INVALID_ARGUMENT: isize = 5;
/// Error kind: the backend cannot be used here.
pub const KIND_UNAVAILABLE: isize = 6;
/// Error kind: the peer broke the protocol.
pub const KIND_PROTOCOL: isize = 7;

/// Error kinds of `(kind, msg)` pairs other than [`KIND_SYSTEM`] (any
/// other kind): value, and the `Vchan_rs.Error.t` it stands for.
pub const KINDS: &[(i64, &str)] = &[
    (KIND_CLOSED as i64, "`Closed"),
    (KIND_BUSY as i64, "`Busy"),
    (KIND_ADDR_IN_USE as i64, "`Addr_in_use"),
    (KIND_TIMEOUT as i64, "`Timeout"),
    (KIND_INVALID_ARGUMENT as i64, "`Invalid_argument msg"),
    (KIND_UNAVAILABLE as i64, "`Unavailable msg"),
    (KIND_PROTOCOL as i64, "`Protocol msg"),
];

// The epoll engine (src/engine.rs).

/// The epoll values the engine uses: OCaml name, value.
pub const CONSTANTS: &[(&str, i64)] = &[
    ("epollin", libc::EPOLLIN as i64),
    ("epollout", libc::EPOLLOUT as i64),
    ("epollerr", libc::EPOLLERR as i64),
    ("epollhup", libc::EPOLLHUP as i64),
    ("epollrdhup", libc::EPOLLRDHUP as i64),
    ("epollet", libc::EPOLLET as u32 as i64),
    ("epoll_ctl_add", libc::EPOLL_CTL_ADD as i64),
    ("epoll_ctl_mod", libc::EPOLL_CTL_MOD as i64),
    ("epoll_ctl_del", libc::EPOLL_CTL_DEL as i64),
];

/// The errno values the engine tells apart: value, `Unix.error` constructor
/// (any other becomes `Unix.EUNKNOWNERR n`).
pub const ERRNOS: &[(i64, &str)] = &[
    (libc::EINTR as i64, "Unix.EINTR"),
    (libc::EBADF as i64, "Unix.EBADF"),
    (libc::EPERM as i64, "Unix.EPERM"),
    (libc::ENOENT as i64, "Unix.ENOENT"),
    (libc::EEXIST as i64, "Unix.EEXIST"),
    (libc::EINVAL as i64, "Unix.EINVAL"),
    (libc::EMFILE as i64, "Unix.EMFILE"),
    (libc::ENFILE as i64, "Unix.ENFILE"),
    (libc::ENOMEM as i64, "Unix.ENOMEM"),
    (libc::ENOSPC as i64, "Unix.ENOSPC"),
    (libc::ELOOP as i64, "Unix.ELOOP"),
];

/// An event channel: the address of its `Box` (see src/plumbing.rs).
const CHAN: Ty = Ty::Value("chan");
/// A region before `region_buf` owns it: the address of its `Box`.
const REGION: Ty = Ty::Value("region");
/// A `Cstruct.buffer`: `(char, int8_unsigned_elt, c_layout) Bigarray.Array1.t`.
const BUFFER: Ty = Ty::Value("Cstruct.buffer");
/// An OCaml int.
const OINT: Ty = Ty::Value("int");
/// An OCaml string.
const STRING: Ty = Ty::Value("string");
/// An untagged int.
const INT: Ty = Ty::Int;
/// OCaml's unit.
const UNIT: Ty = Ty::Value("unit");
/// A control-path result: an int, or an error as `(kind, message)`.
const INT_RESULT: Ty = Ty::Value("(int, int * string) result");
/// The same, for a channel.
const CHAN_RESULT: Ty = Ty::Value("(chan, int * string) result");
/// The same, for a region.
const REGION_RESULT: Ty = Ty::Value("(region, int * string) result");
/// A result without a value.
const UNIT_RESULT: Ty = Ty::Value("(unit, int * string) result");
/// An optional backend name (`None`: `$VCHAN_BACKEND`).
const BACKEND: Ty = Ty::Value("string option");

/// A control-path external: an `#[ocaml::func]` over
/// OCaml values, whose symbol is `vchan_rs_<name>`.
macro_rules! func {
    ($name:literal, $args:expr, $ret:expr) => {
        External {
            name: $name,
            symbol: concat!("vchan_rs_", $name),
            args: $args,
            ret: $ret,
            call: Call::Values,
            doc: "",
        }
    };
}

/// A per-event external (src/plumbing.rs, src/engine.rs): `[@@noalloc]` over
/// untagged ints and values, returning an untagged int; its symbol is
/// `vchan_rs_<name>`, its bytecode twin's `vchan_rs_<name>_byte`.
macro_rules! data {
    ($name:literal, $args:expr) => {
        External {
            name: $name,
            symbol: concat!("vchan_rs_", $name),
            args: $args,
            ret: INT,
            call: Call::NoAlloc,
            doc: "",
        }
    };
}

/// Every external of the stubs.
pub const EXTERNALS: &[External] = &[
    // src/control.rs
    func!("own_domid", &[BACKEND], INT_RESULT),
    func!("unix_dir", &[UNIT], STRING),
    // The epoll engine (src/engine.rs): 0 or more, or -errno.
    data!("epoll_create", &[UNIT]),
    data!("epoll_ctl", &[INT, INT, INT, INT]),
    External {
        // Not [@@noalloc]: it releases the runtime lock while it sleeps.
        call: Call::Twin,
        ..data!(
            "epoll_wait",
            &[
                INT,
                Ty::Value("(int, Bigarray.int_elt, Bigarray.c_layout) Bigarray.Array1.t"),
                INT
            ]
        )
    },
    External {
        ret: Ty::Float,
        ..data!("monotonic", &[UNIT])
    },
    // The plumbing of Endpoint.Make_with over the backends (src/plumbing.rs).
    func!("chan_listen", &[BACKEND, OINT], CHAN_RESULT),
    func!("chan_connect", &[BACKEND, OINT, OINT], CHAN_RESULT),
    func!("chan_port", &[CHAN], OINT),
    func!("chan_fd", &[CHAN], OINT),
    func!("chan_hangup_fd", &[CHAN], OINT),
    data!("chan_notify", &[Ty::IntAlias("chan")]),
    data!("chan_drain", &[Ty::IntAlias("chan")]),
    func!("chan_free", &[CHAN], UNIT),
    func!("share", &[BACKEND, OINT, OINT], REGION_RESULT),
    func!("share_page", &[BACKEND, CHAN, OINT, OINT], REGION_RESULT),
    func!(
        "map",
        &[BACKEND, OINT, Ty::Value("int array"), Ty::Value("bool")],
        REGION_RESULT
    ),
    func!(
        "map_page",
        &[BACKEND, CHAN, OINT, OINT, OINT],
        REGION_RESULT
    ),
    func!("region_refs", &[REGION], Ty::Value("int array")),
    // src/region.rs: allocates; the bigarray owns the region from then on.
    func!("region_buf", &[REGION], BUFFER),
    func!("publish", &[BACKEND, OINT, STRING, OINT, OINT], UNIT_RESULT),
    func!(
        "lookup",
        &[BACKEND, OINT, STRING],
        Ty::Value("((int * int) option, int * string) result")
    ),
    func!("unpublish", &[BACKEND, OINT, STRING], UNIT_RESULT),
    data!("fd_read", &[INT, BUFFER, INT, INT]),
];
