//! The boundary between `vchan-rs-unix` (OCaml) and these stubs, as data:
//! result codes, error kinds, the epoll engine's values and every
//! external, in the typed table of `ocaml_boundary` (shared with
//! `vchan-freestanding`). The library uses the codes and checks in a unit
//! test (src/lib.rs) that [`EXTERNALS`] is what it defines;
//! `vchan-lwt-stubs-gen` (src/bin/gen.rs) prints the OCaml side
//! (`ocaml/lwt-unix/stubs.ml`) from it. Edit here, never in the generated
//! file.

use crate::ocaml_boundary::{Call, External, Ty};

/// Would block: wait for the event descriptor to poll readable, then retry.
pub const E_AGAIN: isize = -1;
/// End of stream: the peer closed and everything it wrote was read.
pub const E_EOF: isize = -2;
/// Closed: by us, or (for writes) by the peer.
pub const E_CLOSED: isize = -3;
/// Any other error; `vchan_rs_last_error` tells which.
pub const E_ERROR: isize = -4;

/// The negative results of data-path stubs: OCaml name (`e_<name>`), value.
pub const CODES: &[(&str, isize)] = &[
    ("again", E_AGAIN),
    ("eof", E_EOF),
    ("closed", E_CLOSED),
    ("error", E_ERROR),
];

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

pub use crate::ocaml_boundary::STATES;

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

/// The endpoint: the address of its `Box<Handle>` (see the crate
/// documentation), an untagged `handle` (an int).
const HANDLE: Ty = Ty::IntAlias("handle");
/// The same, tagged (a plain OCaml int).
const TAGGED_HANDLE: Ty = Ty::Value("handle");
/// A `Cstruct.buffer`: `(char, int8_unsigned_elt, c_layout) Bigarray.Array1.t`.
const BUFFER: Ty = Ty::Value("Cstruct.buffer");
/// An untagged int.
const INT: Ty = Ty::Int;
/// OCaml's unit.
const UNIT: Ty = Ty::Value("unit");
/// A control-path result: an int, or an error as `(kind, message)`.
const INT_RESULT: Ty = Ty::Value("(int, int * string) result");
/// An optional backend name (`None`: `$VCHAN_BACKEND`).
const BACKEND: Ty = Ty::Value("string option");

/// A control-path external (src/control.rs): an `#[ocaml::func]` over
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

/// A data-path external (src/data.rs, src/engine.rs): `[@@noalloc]` over
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
    func!(
        "listen",
        &[
            BACKEND,
            Ty::Value("int"),
            Ty::Value("string"),
            Ty::Value("int"),
            Ty::Value("int")
        ],
        INT_RESULT
    ),
    func!("own_domid", &[BACKEND], INT_RESULT),
    func!(
        "try_connect",
        &[BACKEND, Ty::Value("int"), Ty::Value("string")],
        INT_RESULT
    ),
    func!(
        "close",
        &[Ty::Value("int")],
        Ty::Value("(unit, int * string) result")
    ),
    func!("last_error", &[Ty::Value("int")], Ty::Value("int * string")),
    func!("is_server", &[Ty::Value("int")], Ty::Value("bool")),
    func!("unix_dir", &[UNIT], Ty::Value("string")),
    // src/ring.rs: allocates, may raise.
    func!("ring", &[TAGGED_HANDLE], Ty::Value("Cstruct.buffer")),
    data!("write", &[HANDLE, BUFFER, INT, INT]),
    data!("send", &[HANDLE, BUFFER, INT, INT]),
    data!("recv", &[HANDLE, BUFFER, INT, INT]),
    data!("read", &[HANDLE, BUFFER, INT, INT]),
    data!("peek", &[HANDLE]),
    data!("consume", &[HANDLE, INT]),
    data!("write_from_fd", &[HANDLE, INT]),
    data!("data_ready", &[HANDLE]),
    data!("buffer_space", &[HANDLE]),
    data!("state", &[HANDLE]),
    data!("fd", &[HANDLE]),
    data!("hangup_fd", &[HANDLE]),
    data!("linger", &[HANDLE]),
    data!("peer_vanished", &[HANDLE]),
    data!("consume_events", &[HANDLE]),
    data!("set_spin", &[HANDLE, INT]),
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
    // The plumbing of Endpoint.Make over the backends (src/plumbing.rs).
    func!("chan_listen", &[Ty::Value("int")], INT_RESULT),
    func!("chan_connect", &[Ty::Value("int"), Ty::Value("int")], INT_RESULT),
    func!("chan_port", &[Ty::Value("int")], Ty::Value("int")),
    func!("chan_fd", &[Ty::Value("int")], Ty::Value("int")),
    func!("chan_hangup_fd", &[Ty::Value("int")], Ty::Value("int")),
    data!("chan_notify", &[INT]),
    data!("chan_drain", &[INT]),
    func!("chan_free", &[Ty::Value("int")], UNIT),
    func!("share", &[Ty::Value("int"), Ty::Value("int")], INT_RESULT),
    func!(
        "map",
        &[Ty::Value("int"), Ty::Value("int array"), Ty::Value("bool")],
        INT_RESULT
    ),
    func!("region_refs", &[Ty::Value("int")], Ty::Value("int array")),
    func!("region_free", &[Ty::Value("int")], UNIT),
    func!("region_buf", &[Ty::Value("int")], Ty::Value("Cstruct.buffer")),
    func!(
        "publish",
        &[Ty::Value("int"), Ty::Value("string"), Ty::Value("int"), Ty::Value("int")],
        Ty::Value("(unit, int * string) result")
    ),
    func!(
        "lookup",
        &[Ty::Value("int"), Ty::Value("string")],
        Ty::Value("((int * int) option, int * string) result")
    ),
    func!("unpublish", &[Ty::Value("int"), Ty::Value("string")], Ty::Value("(unit, int * string) result")),
];
