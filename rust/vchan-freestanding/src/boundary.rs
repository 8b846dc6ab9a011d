//! The boundary between OCaml (or C) and the freestanding archive, as
//! data: result codes, peer states and the OCaml externals, in the typed
//! table of [`crate::ocaml_boundary`]. The library uses it for its codes
//! and checks in a unit test (src/ocaml.rs) that the externals it defines
//! are exactly those listed here; `vchan-freestanding-gen` (src/bin/gen.rs)
//! prints the OCaml side (`ocaml/freestanding.ml`) from it. Edit here,
//! never in the generated file.

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

pub use crate::ocaml_boundary::STATES;

/// Bytes of caller memory holding one endpoint (8-byte aligned).
pub const STATE_SIZE: usize = 256;

/// Offset in the shared page of the server's live byte (vchan-core's
/// `layout::SRV_LIVE`; checked by a test in src/abi.rs).
pub const SERVER_LIVE: usize = 21;
/// Offset in the shared page of the client's live byte (`layout::CLI_LIVE`).
pub const CLIENT_LIVE: usize = 20;

/// Set in a packed order pair for the client role.
pub const CLIENT_FLAG: isize = 1 << 16;

use crate::ocaml_boundary::{Call, External, Ty};

/// The endpoint's state memory: a `buffer` of [`STATE_SIZE`] bytes.
pub const STATE: Ty = Ty::Value("buffer");
/// A `buffer`: `(char, int8_unsigned_elt, c_layout) Bigarray.Array1.t`.
pub const BUF: Ty = Ty::Value("buffer");
/// A `grants`: `(int32, int32_elt, c_layout) Bigarray.Array1.t`.
pub const GRANTS: Ty = Ty::Value("grants");
/// An `[@untagged] int`.
pub const INT: Ty = Ty::Int;
/// A `string`.
pub const STR: Ty = Ty::Value("string");

/// What every external of the archive is: `[@@noalloc]`, returning an
/// `[@untagged] int` (a count or a code).
const NOALLOC: External = External {
    name: "",
    symbol: "",
    args: &[],
    ret: Ty::Int,
    call: Call::NoAlloc,
    doc: "",
};

/// Every OCaml external of the archive.
pub const EXTERNALS: &[External] = &[
    External {
        name: "port_valid",
        symbol: "vchan_fs_ml_port_valid",
        args: &[STR],
        doc: "[port_valid name]: 1 if [name] is a vchan port name ([a-zA-Z0-9_-]+), else 0.",
        ..NOALLOC
    },
    External {
        name: "domid_valid",
        symbol: "vchan_fs_ml_domid_valid",
        args: &[INT],
        doc: "[domid_valid id]: 1 if [id] is a domain id (0 ..< 0x7ff0), else 0.",
        ..NOALLOC
    },
    External {
        name: "domid_parse",
        symbol: "vchan_fs_ml_domid_parse",
        args: &[STR],
        doc: "[domid_parse s]: the domain id [s] spells (decimal digits only), or [e_invalid].",
        ..NOALLOC
    },
    External {
        name: "server_orders",
        symbol: "vchan_fs_ml_server_orders",
        args: &[INT, INT],
        doc: "[server_orders read_min write_min]: the ring orders Xen's server picks, packed [left lor (right lsl 8)], or a code.",
        ..NOALLOC
    },
    External {
        name: "ring_pages",
        symbol: "vchan_fs_ml_ring_pages",
        args: &[INT],
        doc: "[ring_pages order]: pages to share for a ring of [order] (0 for an in-page ring), or a code.",
        ..NOALLOC
    },
    External {
        name: "ring_offset",
        symbol: "vchan_fs_ml_ring_offset",
        args: &[INT],
        doc: "[ring_offset order]: offset of an in-page ring in the shared page (0 for a ring of its own pages), or a code.",
        ..NOALLOC
    },
    External {
        name: "server_init",
        symbol: "vchan_fs_ml_server_init",
        args: &[BUF, INT, GRANTS],
        doc: "[server_init page orders grants]: initialise a freshly shared page with [orders] and the grant refs of the left then the right ring's pages. 0 or a code.",
        ..NOALLOC
    },
    External {
        name: "client_orders",
        symbol: "vchan_fs_ml_client_orders",
        args: &[BUF],
        doc: "[client_orders page]: the orders of a mapped page, read once and validated, packed, or a code.",
        ..NOALLOC
    },
    External {
        name: "client_grants",
        symbol: "vchan_fs_ml_client_grants",
        args: &[BUF, INT, GRANTS],
        doc: "[client_grants page orders grants]: read the grant refs of the left then the right ring into [grants] (exactly that many). The count or a code.",
        ..NOALLOC
    },
    External {
        name: "attach",
        symbol: "vchan_fs_ml_attach",
        args: &[STATE, BUF, INT, BUF, BUF],
        doc: "[attach state page orders left right]: set up the endpoint in [state] over [page] and the rings' memory ([left]/[right] are ignored for in-page rings). [orders] carries [client_flag] for a client, which is then announced: signal the peer. 0 or a code.",
        ..NOALLOC
    },
    External {
        name: "write",
        symbol: "vchan_fs_ml_write",
        args: &[STATE, BUF, INT, INT],
        doc: "[write state buf off len]: copy what fits of [buf[off..off+len)]: [bytes lsl 1 lor notify], or a code.",
        ..NOALLOC
    },
    External {
        name: "send",
        symbol: "vchan_fs_ml_send",
        args: &[STATE, BUF, INT, INT],
        doc: "[send state buf off len]: all of it or nothing: [bytes lsl 1 lor notify], or a code.",
        ..NOALLOC
    },
    External {
        name: "read",
        symbol: "vchan_fs_ml_read",
        args: &[STATE, BUF, INT, INT],
        doc: "[read state buf off len]: copy up to [len] readable bytes: [bytes lsl 1 lor notify], or a code.",
        ..NOALLOC
    },
    External {
        name: "recv",
        symbol: "vchan_fs_ml_recv",
        args: &[STATE, BUF, INT, INT],
        doc: "[recv state buf off len]: exactly [len] bytes or nothing: [bytes lsl 1 lor notify], or a code.",
        ..NOALLOC
    },
    External {
        name: "peek",
        symbol: "vchan_fs_ml_peek",
        args: &[STATE],
        doc: "[peek state]: the contiguous readable run of the read ring, [offset lsl 32 lor length], or a code.",
        ..NOALLOC
    },
    External {
        name: "consume",
        symbol: "vchan_fs_ml_consume",
        args: &[STATE, INT],
        doc: "[consume state n]: release [n] bytes seen with [peek]: [notify] (0 or 1), or a code.",
        ..NOALLOC
    },
    External {
        name: "free_span",
        symbol: "vchan_fs_ml_free_span",
        args: &[STATE],
        doc: "[free_span state]: the contiguous free run of the write ring, [offset lsl 32 lor length], or a code.",
        ..NOALLOC
    },
    External {
        name: "produce",
        symbol: "vchan_fs_ml_produce",
        args: &[STATE, INT],
        doc: "[produce state n]: publish [n] bytes written into the run [free_span] gave: [notify] (0 or 1), or a code.",
        ..NOALLOC
    },
    External {
        name: "peer_gone",
        symbol: "vchan_fs_ml_peer_gone",
        args: &[STATE],
        doc: "[peer_gone state]: the platform saw the peer die: mark it exited in its live byte (as Xen's unmap notification would). 1 if it had not closed first, else 0; or a code.",
        ..NOALLOC
    },
    External {
        name: "data_ready",
        symbol: "vchan_fs_ml_data_ready",
        args: &[STATE],
        doc: "[data_ready state]: bytes readable now, or a code.",
        ..NOALLOC
    },
    External {
        name: "buffer_space",
        symbol: "vchan_fs_ml_buffer_space",
        args: &[STATE],
        doc: "[buffer_space state]: bytes writable now, or a code.",
        ..NOALLOC
    },
    External {
        name: "data_ready_or_arm",
        symbol: "vchan_fs_ml_data_ready_or_arm",
        args: &[STATE, INT],
        doc: "[data_ready_or_arm state want]: [data_ready]; below [want], ask the peer to signal after it writes and look again.",
        ..NOALLOC
    },
    External {
        name: "buffer_space_or_arm",
        symbol: "vchan_fs_ml_buffer_space_or_arm",
        args: &[STATE, INT],
        doc: "[buffer_space_or_arm state want]: [buffer_space]; below [want], ask the peer to signal after it reads and look again.",
        ..NOALLOC
    },
    External {
        name: "poll_data",
        symbol: "vchan_fs_ml_poll_data",
        args: &[STATE, INT, INT],
        doc: "[poll_data state want polls]: spin until [data_ready] reaches [want], at most [polls] looks with a spin-loop hint between them: the last count, or a code.",
        ..NOALLOC
    },
    External {
        name: "poll_space",
        symbol: "vchan_fs_ml_poll_space",
        args: &[STATE, INT, INT],
        doc: "[poll_space state want polls]: [poll_data] for [buffer_space].",
        ..NOALLOC
    },
    External {
        name: "state",
        symbol: "vchan_fs_ml_state",
        args: &[STATE],
        doc: "[state state]: the peer's state (see [state_*]), or a code.",
        ..NOALLOC
    },
    External {
        name: "read_size",
        symbol: "vchan_fs_ml_read_size",
        args: &[STATE],
        doc: "[read_size state]: size of the ring we read, or a code.",
        ..NOALLOC
    },
    External {
        name: "write_size",
        symbol: "vchan_fs_ml_write_size",
        args: &[STATE],
        doc: "[write_size state]: size of the ring we write, or a code.",
        ..NOALLOC
    },
    External {
        name: "close",
        symbol: "vchan_fs_ml_close",
        args: &[STATE],
        doc: "[close state]: mark us exited; 1 (signal the peer) the first time, then 0. The memory is no longer touched.",
        ..NOALLOC
    },
];
