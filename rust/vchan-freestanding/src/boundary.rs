//! The boundary between OCaml (or C) and the freestanding archive, as
//! data: result codes, peer states and the OCaml externals. The library
//! uses it for its codes and checks in a unit test that the externals it
//! defines are exactly those listed here; `vchan-freestanding-gen` (src/bin/gen.rs)
//! writes the OCaml side from it. Edit here, never in the generated file.

/// A negative result code: name (OCaml `e_<name>`, C `VCHAN_FS_E_<NAME>`),
/// value, OCaml error it maps to, and its meaning.
pub struct Code {
    /// Lower-case name.
    pub name: &'static str,
    /// Value (negative).
    pub value: isize,
    /// The `Vchan_rs.Error.t` it stands for, as OCaml source.
    pub ocaml: &'static str,
    /// What it means.
    pub doc: &'static str,
}

/// The endpoint is not open: closed, or never set up.
pub const E_CLOSED: isize = -1;
/// The peer broke the vchan protocol (indices, orders or live byte).
pub const E_PROTOCOL: isize = -2;
/// A packet larger than the ring, or a ring larger than 1 MiB.
pub const E_TOO_LARGE: isize = -3;
/// A bad argument: buffer bounds, alignment, ring memory, grant count,
/// order pair, or consuming more than is readable.
pub const E_INVALID: isize = -4;

/// Every result code.
pub const CODES: &[Code] = &[
    Code {
        name: "closed",
        value: E_CLOSED,
        ocaml: "`Closed",
        doc: "the endpoint is not open (closed, or never set up)",
    },
    Code {
        name: "protocol",
        value: E_PROTOCOL,
        ocaml: "`Protocol \"vchan: the peer broke the protocol\"",
        doc: "the peer broke the vchan protocol (indices, orders or live byte)",
    },
    Code {
        name: "too_large",
        value: E_TOO_LARGE,
        ocaml:
            "`Invalid_argument \"vchan: packet larger than the ring, or ring larger than 1 MiB\"",
        doc: "a packet larger than the ring, or a ring larger than 1 MiB",
    },
    Code {
        name: "invalid",
        value: E_INVALID,
        ocaml: "`Invalid_argument \"vchan: bad buffer, ring memory, grant list or orders\"",
        doc: "a bad argument (buffer bounds, alignment, ring memory, grant count, orders, consume)",
    },
];

/// The peer's state as `state` returns it: name and value.
pub const STATES: &[(&str, isize)] = &[("waiting", 0), ("connected", 1), ("exited", 2)];

/// Bytes of caller memory holding one endpoint (8-byte aligned).
pub const STATE_SIZE: usize = 256;

/// Set in a packed order pair for the client role.
pub const CLIENT_FLAG: isize = 1 << 16;

/// An argument of an OCaml external.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// The endpoint's state memory: a `buffer` of [`STATE_SIZE`] bytes.
    State,
    /// A `buffer`: `(char, int8_unsigned_elt, c_layout) Bigarray.Array1.t`.
    Buf,
    /// A `grants`: `(int32, int32_elt, c_layout) Bigarray.Array1.t`.
    Grants,
    /// An `[@untagged] int`.
    Int,
    /// A `string`.
    Str,
}

/// One OCaml external: its OCaml name, its C symbol (native; the bytecode
/// twin adds `_byte`), its arguments and what it returns. All are
/// `[@@noalloc]` and return an `[@untagged] int`.
pub struct External {
    /// OCaml name.
    pub name: &'static str,
    /// Native symbol.
    pub symbol: &'static str,
    /// Arguments.
    pub args: &'static [Arg],
    /// Documentation comment for the OCaml side.
    pub doc: &'static str,
}

use Arg::{Buf, Grants, Int, State, Str};

/// Every OCaml external of the archive.
pub const EXTERNALS: &[External] = &[
    External {
        name: "port_valid",
        symbol: "vchan_fs_ml_port_valid",
        args: &[Str],
        doc: "[port_valid name]: 1 if [name] is a vchan port name ([a-zA-Z0-9_-]+), else 0.",
    },
    External {
        name: "domid_valid",
        symbol: "vchan_fs_ml_domid_valid",
        args: &[Int],
        doc: "[domid_valid id]: 1 if [id] is a domain id (0 ..< 0x7ff0), else 0.",
    },
    External {
        name: "domid_parse",
        symbol: "vchan_fs_ml_domid_parse",
        args: &[Str],
        doc: "[domid_parse s]: the domain id [s] spells (decimal digits only), or [e_invalid].",
    },
    External {
        name: "server_orders",
        symbol: "vchan_fs_ml_server_orders",
        args: &[Int, Int],
        doc: "[server_orders read_min write_min]: the ring orders Xen's server picks, packed [left lor (right lsl 8)], or a code.",
    },
    External {
        name: "ring_pages",
        symbol: "vchan_fs_ml_ring_pages",
        args: &[Int],
        doc: "[ring_pages order]: pages to share for a ring of [order] (0 for an in-page ring), or a code.",
    },
    External {
        name: "ring_offset",
        symbol: "vchan_fs_ml_ring_offset",
        args: &[Int],
        doc: "[ring_offset order]: offset of an in-page ring in the shared page (0 for a ring of its own pages), or a code.",
    },
    External {
        name: "server_init",
        symbol: "vchan_fs_ml_server_init",
        args: &[Buf, Int, Grants],
        doc: "[server_init page orders grants]: initialise a freshly shared page with [orders] and the grant refs of the left then the right ring's pages. 0 or a code.",
    },
    External {
        name: "client_orders",
        symbol: "vchan_fs_ml_client_orders",
        args: &[Buf],
        doc: "[client_orders page]: the orders of a mapped page, read once and validated, packed, or a code.",
    },
    External {
        name: "client_grants",
        symbol: "vchan_fs_ml_client_grants",
        args: &[Buf, Int, Grants],
        doc: "[client_grants page orders grants]: read the grant refs of the left then the right ring into [grants] (exactly that many). The count or a code.",
    },
    External {
        name: "attach",
        symbol: "vchan_fs_ml_attach",
        args: &[State, Buf, Int, Buf, Buf],
        doc: "[attach state page orders left right]: set up the endpoint in [state] over [page] and the rings' memory ([left]/[right] are ignored for in-page rings). [orders] carries [client_flag] for a client, which is then announced: signal the peer. 0 or a code.",
    },
    External {
        name: "write",
        symbol: "vchan_fs_ml_write",
        args: &[State, Buf, Int, Int],
        doc: "[write state buf off len]: copy what fits of [buf[off..off+len)]: [bytes lsl 1 lor notify], or a code.",
    },
    External {
        name: "send",
        symbol: "vchan_fs_ml_send",
        args: &[State, Buf, Int, Int],
        doc: "[send state buf off len]: all of it or nothing: [bytes lsl 1 lor notify], or a code.",
    },
    External {
        name: "read",
        symbol: "vchan_fs_ml_read",
        args: &[State, Buf, Int, Int],
        doc: "[read state buf off len]: copy up to [len] readable bytes: [bytes lsl 1 lor notify], or a code.",
    },
    External {
        name: "recv",
        symbol: "vchan_fs_ml_recv",
        args: &[State, Buf, Int, Int],
        doc: "[recv state buf off len]: exactly [len] bytes or nothing: [bytes lsl 1 lor notify], or a code.",
    },
    External {
        name: "peek",
        symbol: "vchan_fs_ml_peek",
        args: &[State],
        doc: "[peek state]: the contiguous readable run of the read ring, [offset lsl 32 lor length], or a code.",
    },
    External {
        name: "consume",
        symbol: "vchan_fs_ml_consume",
        args: &[State, Int],
        doc: "[consume state n]: release [n] bytes seen with [peek]: [notify] (0 or 1), or a code.",
    },
    External {
        name: "data_ready",
        symbol: "vchan_fs_ml_data_ready",
        args: &[State],
        doc: "[data_ready state]: bytes readable now, or a code.",
    },
    External {
        name: "buffer_space",
        symbol: "vchan_fs_ml_buffer_space",
        args: &[State],
        doc: "[buffer_space state]: bytes writable now, or a code.",
    },
    External {
        name: "data_ready_or_arm",
        symbol: "vchan_fs_ml_data_ready_or_arm",
        args: &[State, Int],
        doc: "[data_ready_or_arm state want]: [data_ready]; below [want], ask the peer to signal after it writes and look again.",
    },
    External {
        name: "buffer_space_or_arm",
        symbol: "vchan_fs_ml_buffer_space_or_arm",
        args: &[State, Int],
        doc: "[buffer_space_or_arm state want]: [buffer_space]; below [want], ask the peer to signal after it reads and look again.",
    },
    External {
        name: "state",
        symbol: "vchan_fs_ml_state",
        args: &[State],
        doc: "[state state]: the peer's state (see [state_*]), or a code.",
    },
    External {
        name: "read_size",
        symbol: "vchan_fs_ml_read_size",
        args: &[State],
        doc: "[read_size state]: size of the ring we read, or a code.",
    },
    External {
        name: "write_size",
        symbol: "vchan_fs_ml_write_size",
        args: &[State],
        doc: "[write_size state]: size of the ring we write, or a code.",
    },
    External {
        name: "close",
        symbol: "vchan_fs_ml_close",
        args: &[State],
        doc: "[close state]: mark us exited; 1 (signal the peer) the first time, then 0. The memory is no longer touched.",
    },
];
