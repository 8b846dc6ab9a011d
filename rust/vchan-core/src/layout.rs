//! Byte layout of the vchan shared page (`struct vchan_interface` in Xen's
//! `xen/io/libxenvchan.h`) and the placement of the two data rings.
//!
//! All multi-byte fields are little-endian. The offsets here are checked
//! against the real C header by `tests/c_header.rs`.

/// Size of the shared control page and of every ring page.
pub const PAGE_SIZE: usize = 4096;
/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u8 = 12;

/// `left.cons`: bytes the server has consumed from the left ring.
pub const LEFT_CONS: usize = 0;
/// `left.prod`: bytes the client has produced into the left ring.
pub const LEFT_PROD: usize = 4;
/// `right.cons`: bytes the client has consumed from the right ring.
pub const RIGHT_CONS: usize = 8;
/// `right.prod`: bytes the server has produced into the right ring.
pub const RIGHT_PROD: usize = 12;
/// `left_order` (u16).
pub const LEFT_ORDER: usize = 16;
/// `right_order` (u16).
pub const RIGHT_ORDER: usize = 18;
/// `cli_live` (u8).
pub const CLI_LIVE: usize = 20;
/// `srv_live` (u8).
pub const SRV_LIVE: usize = 21;
/// `cli_notify` (u8): bits the client must act on.
pub const CLI_NOTIFY: usize = 22;
/// `srv_notify` (u8): bits the server must act on.
pub const SRV_NOTIFY: usize = 23;
/// `grants[]` (u32 each): refs of external ring pages, left's first.
pub const GRANTS: usize = 24;
/// How many grant refs fit in the page after the header.
pub const MAX_GRANTS: usize = (PAGE_SIZE - GRANTS) / 4;

/// Notify bit: "signal the peer after you write" (`VCHAN_NOTIFY_WRITE`).
pub const NOTIFY_WRITE: u8 = 1;
/// Notify bit: "signal the peer after you read" (`VCHAN_NOTIFY_READ`).
pub const NOTIFY_READ: u8 = 2;

/// Live byte value: the endpoint exited (or crashed: the kernel's
/// unmap-notify clears the byte).
pub const LIVE_EXITED: u8 = 0;
/// Live byte value: the endpoint is connected.
pub const LIVE_CONNECTED: u8 = 1;
/// Live byte value: the endpoint has not connected yet.
pub const LIVE_WAITING: u8 = 2;

/// Smallest ring order (1 KiB ring inside the shared page).
pub const MIN_ORDER: u8 = 10;
/// Order of the 2 KiB ring inside the shared page.
pub const LARGE_IN_PAGE_ORDER: u8 = 11;
/// Largest ring order (1 MiB, 256 pages).
pub const MAX_ORDER: u8 = 20;
/// Largest ring size in bytes.
pub const MAX_RING_SIZE: usize = 1 << MAX_ORDER;
/// Offset of an order-10 ring inside the shared page.
pub const SMALL_RING_OFFSET: usize = 1024;
/// Offset of an order-11 ring inside the shared page.
pub const LARGE_RING_OFFSET: usize = 2048;

/// Which end of a vchan: the server shares the memory, the client maps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Allocates and shares the page and rings; reads the left ring.
    Server,
    /// Maps what the server shared; reads the right ring.
    Client,
}

impl Role {
    /// Offsets of (cons, prod) of the ring this role reads.
    pub(crate) const fn read_indices(self) -> (usize, usize) {
        match self {
            Role::Server => (LEFT_CONS, LEFT_PROD),
            Role::Client => (RIGHT_CONS, RIGHT_PROD),
        }
    }
    /// Offsets of (cons, prod) of the ring this role writes.
    pub(crate) const fn write_indices(self) -> (usize, usize) {
        match self {
            Role::Server => (RIGHT_CONS, RIGHT_PROD),
            Role::Client => (LEFT_CONS, LEFT_PROD),
        }
    }
    /// Offset of this role's own live byte.
    pub const fn live_offset(self) -> usize {
        match self {
            Role::Server => SRV_LIVE,
            Role::Client => CLI_LIVE,
        }
    }
    /// Offset of the notify byte holding the bits this role acts on.
    pub const fn notify_offset(self) -> usize {
        match self {
            Role::Server => SRV_NOTIFY,
            Role::Client => CLI_NOTIFY,
        }
    }
    /// The other role.
    pub const fn peer(self) -> Role {
        match self {
            Role::Server => Role::Client,
            Role::Client => Role::Server,
        }
    }
}

/// Where the bytes of a ring of a given order live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Inside the shared page, starting at this byte offset.
    InPage {
        /// Byte offset in the shared page.
        offset: usize,
    },
    /// In this many separately granted pages, mapped contiguously.
    Pages {
        /// Number of 4 KiB pages.
        count: usize,
    },
}

impl Placement {
    /// Placement of a ring of `order`; `None` when the order is outside
    /// `MIN_ORDER..=MAX_ORDER`.
    pub const fn of_order(order: u8) -> Option<Placement> {
        match order {
            MIN_ORDER => Some(Placement::InPage {
                offset: SMALL_RING_OFFSET,
            }),
            LARGE_IN_PAGE_ORDER => Some(Placement::InPage {
                offset: LARGE_RING_OFFSET,
            }),
            o if o >= PAGE_SHIFT && o <= MAX_ORDER => Some(Placement::Pages {
                count: 1 << (o - PAGE_SHIFT),
            }),
            _ => None,
        }
    }

    /// Number of separately granted pages (0 for an in-page ring).
    pub const fn pages(self) -> usize {
        match self {
            Placement::InPage { .. } => 0,
            Placement::Pages { count } => count,
        }
    }
}
