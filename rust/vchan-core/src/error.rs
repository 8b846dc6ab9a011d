//! Errors of the ring core.

use core::fmt;

/// Everything that can go wrong in the ring core.
///
/// Variants marked "protocol violation" can only be caused by a peer that
/// broke the vchan protocol (or by memory corruption); see
/// [`Error::is_protocol_violation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A requested minimum ring size exceeds 1 MiB (the largest ring whose
    /// grant refs fit in the shared page).
    RingTooLarge {
        /// The size asked for, in bytes.
        requested: usize,
    },
    /// Protocol violation: the ring orders in the shared page are not a
    /// valid pair (each in `10..=20`, not both the same in-page slot).
    BadOrders {
        /// `left_order` as found in the page.
        left: u16,
        /// `right_order` as found in the page.
        right: u16,
    },
    /// Protocol violation: the peer's producer index on the ring we read is
    /// more than a ring size ahead of our consumer index (or behind it).
    ReadIndices {
        /// The peer's `prod` as read.
        prod: u32,
        /// Our own `cons`.
        cons: u32,
        /// The ring size.
        size: u32,
    },
    /// Protocol violation: the peer's consumer index on the ring we write is
    /// ahead of our producer index or more than a ring size behind it.
    WriteIndices {
        /// Our own `prod`.
        prod: u32,
        /// The peer's `cons` as read.
        cons: u32,
        /// The ring size.
        size: u32,
    },
    /// Protocol violation: the peer's live byte holds a value other than
    /// 0 (exited), 1 (connected) or 2 (waiting).
    BadLiveState(u8),
    /// A packet larger than the ring can never be sent or received whole.
    PacketTooLarge {
        /// Length of the packet.
        len: usize,
        /// Size of the ring.
        ring: usize,
    },
    /// The memory handed in for a ring does not have the ring's size.
    RingMemSize {
        /// Size implied by the ring order.
        expected: usize,
        /// Size of the memory handed in.
        actual: usize,
    },
    /// `consume` was asked to release more bytes than are readable.
    ConsumeTooMuch {
        /// Bytes asked to consume.
        requested: usize,
        /// Bytes readable.
        available: usize,
    },
    /// `produce` was asked to publish more bytes than the free span holds.
    ProduceTooMuch {
        /// Bytes asked to publish.
        requested: usize,
        /// Bytes of the free span.
        available: usize,
    },
    /// A grant index outside the shared page's `grants[]` array.
    GrantIndex(usize),
    /// A grant list whose length is not the ring's page count.
    GrantCount {
        /// Pages of the ring.
        expected: usize,
        /// Grant refs handed in.
        actual: usize,
    },
}

impl Error {
    /// True when the error can only come from a peer that broke the
    /// protocol; the channel should then be closed.
    pub const fn is_protocol_violation(&self) -> bool {
        matches!(
            self,
            Error::BadOrders { .. }
                | Error::ReadIndices { .. }
                | Error::WriteIndices { .. }
                | Error::BadLiveState(_)
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::RingTooLarge { requested } => write!(
                f,
                "ring size {requested} exceeds the vchan maximum of {} bytes",
                crate::layout::MAX_RING_SIZE
            ),
            Error::BadOrders { left, right } => write!(
                f,
                "protocol violation: invalid ring orders left={left} right={right}"
            ),
            Error::ReadIndices { prod, cons, size } => write!(
                f,
                "protocol violation: peer prod {prod} vs our cons {cons} on a {size}-byte ring"
            ),
            Error::WriteIndices { prod, cons, size } => write!(
                f,
                "protocol violation: peer cons {cons} vs our prod {prod} on a {size}-byte ring"
            ),
            Error::BadLiveState(v) => {
                write!(f, "protocol violation: peer live byte holds {v}")
            }
            Error::PacketTooLarge { len, ring } => {
                write!(f, "packet of {len} bytes cannot fit a {ring}-byte ring")
            }
            Error::RingMemSize { expected, actual } => write!(
                f,
                "ring memory of {actual} bytes given for a {expected}-byte ring"
            ),
            Error::ConsumeTooMuch {
                requested,
                available,
            } => write!(
                f,
                "cannot consume {requested} bytes: only {available} readable"
            ),
            Error::ProduceTooMuch {
                requested,
                available,
            } => write!(
                f,
                "cannot produce {requested} bytes: only {available} free in one run"
            ),
            Error::GrantIndex(i) => write!(f, "grant index {i} outside the shared page"),
            Error::GrantCount { expected, actual } => write!(
                f,
                "{actual} grant refs given for a ring of {expected} pages"
            ),
        }
    }
}

impl core::error::Error for Error {}
