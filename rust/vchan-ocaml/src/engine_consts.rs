//! The values the OCaml side of [`crate::engine`] needs, as data: also
//! included by `vchan-ocaml-gen`, which writes them into `stubs.ml`.

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
