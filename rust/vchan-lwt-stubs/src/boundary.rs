//! The codes of the boundary between `vchan-rs-unix` (OCaml) and these
//! stubs, as data: the library uses them, and `vchan-lwt-stubs-gen`
//! (src/bin/gen.rs) writes their OCaml side (in `ocaml/lwt-unix/stubs.ml`)
//! from them. Edit here, never in the generated file.

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

/// Error kinds of `(kind, message)` pairs: value, and the
/// `Vchan_rs.Error.t` constructor (`true`: it carries the message).
pub const KINDS: &[(isize, &str, bool)] = &[
    (KIND_CLOSED, "`Closed", false),
    (KIND_BUSY, "`Busy", false),
    (KIND_ADDR_IN_USE, "`Addr_in_use", false),
    (KIND_TIMEOUT, "`Timeout", false),
    (KIND_INVALID_ARGUMENT, "`Invalid_argument", true),
    (KIND_UNAVAILABLE, "`Unavailable", true),
    (KIND_PROTOCOL, "`Protocol", true),
    (KIND_SYSTEM, "`System", true),
];

/// The peer's state as `vchan_rs_state` returns it.
pub const STATE_WAITING: usize = 0;
/// See [`STATE_WAITING`].
pub const STATE_CONNECTED: usize = 1;
/// See [`STATE_WAITING`].
pub const STATE_EXITED: usize = 2;

/// The states: OCaml name (`state_<name>`), value.
pub const STATES: &[(&str, usize)] = &[
    ("waiting", STATE_WAITING),
    ("connected", STATE_CONNECTED),
    ("exited", STATE_EXITED),
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

/// The errno values the engine tells apart: value, `Unix.error`
/// constructor (any other becomes `Unix.EUNKNOWNERR n`).
pub const ERRNOS: &[(i32, &str)] = &[
    (libc::EINTR, "EINTR"),
    (libc::EBADF, "EBADF"),
    (libc::EPERM, "EPERM"),
    (libc::ENOENT, "ENOENT"),
    (libc::EEXIST, "EEXIST"),
    (libc::EINVAL, "EINVAL"),
    (libc::EMFILE, "EMFILE"),
    (libc::ENFILE, "ENFILE"),
    (libc::ENOMEM, "ENOMEM"),
    (libc::ENOSPC, "ENOSPC"),
    (libc::ELOOP, "ELOOP"),
];
