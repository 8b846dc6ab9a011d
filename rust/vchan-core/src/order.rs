//! Ring orders: the server's choice and the client's validation.

use crate::error::Error;
use crate::layout::{
    Placement, Role, LARGE_IN_PAGE_ORDER, MAX_GRANTS, MAX_ORDER, MAX_RING_SIZE, MIN_ORDER,
    PAGE_SHIFT,
};

/// The two ring orders of a vchan: `left` (client writes, server reads) and
/// `right` (server writes, client reads). A value of this type is always a
/// valid pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Orders {
    left: u8,
    right: u8,
}

/// Smallest order `>= 12` whose ring holds `size` bytes (Xen's `min_order`).
fn min_page_order(size: usize) -> u8 {
    let mut order = PAGE_SHIFT;
    while size > (1usize << order) {
        order += 1;
    }
    order
}

impl Orders {
    /// The orders Xen's C server (`libxenvchan_server_init`) picks for a
    /// server that wants to read at least `read_min` bytes (left ring) and
    /// write at least `write_min` bytes (right ring) without waiting.
    ///
    /// In-page rings are used when they suffice: 10/11 or 11/10 when both
    /// fit, otherwise one side of at most 2 KiB takes the order-11 slot and
    /// the other the smallest page-multiple order that holds it.
    pub fn for_server(read_min: usize, write_min: usize) -> Result<Orders, Error> {
        for requested in [read_min, write_min] {
            if requested > MAX_RING_SIZE {
                return Err(Error::RingTooLarge { requested });
            }
        }
        const SMALL: usize = 1 << MIN_ORDER;
        const LARGE: usize = 1 << LARGE_IN_PAGE_ORDER;
        let (left, right) = if read_min <= SMALL && write_min <= LARGE {
            (MIN_ORDER, LARGE_IN_PAGE_ORDER)
        } else if read_min <= LARGE && write_min <= SMALL {
            (LARGE_IN_PAGE_ORDER, MIN_ORDER)
        } else if read_min <= LARGE {
            (LARGE_IN_PAGE_ORDER, min_page_order(write_min))
        } else if write_min <= LARGE {
            (min_page_order(read_min), LARGE_IN_PAGE_ORDER)
        } else {
            (min_page_order(read_min), min_page_order(write_min))
        };
        Ok(Orders { left, right })
    }

    /// Validate orders as a client reads them from the shared page: each in
    /// `10..=20`, and not both in the same in-page slot.
    pub fn validate(left: u16, right: u16) -> Result<Orders, Error> {
        let ok = |o: u16| (u16::from(MIN_ORDER)..=u16::from(MAX_ORDER)).contains(&o);
        if !ok(left) || !ok(right) || (left == right && left < u16::from(PAGE_SHIFT)) {
            return Err(Error::BadOrders { left, right });
        }
        // Both fit in u8: checked against MAX_ORDER just above.
        Ok(Orders {
            left: left as u8,
            right: right as u8,
        })
    }

    /// Order of the left ring (client to server).
    pub const fn left(self) -> u8 {
        self.left
    }

    /// Order of the right ring (server to client).
    pub const fn right(self) -> u8 {
        self.right
    }

    /// Order of the ring `role` reads from.
    pub const fn read(self, role: Role) -> u8 {
        match role {
            Role::Server => self.left,
            Role::Client => self.right,
        }
    }

    /// Order of the ring `role` writes to.
    pub const fn write(self, role: Role) -> u8 {
        match role {
            Role::Server => self.right,
            Role::Client => self.left,
        }
    }

    /// Placement of the left ring.
    pub fn left_placement(self) -> Placement {
        placement(self.left)
    }

    /// Placement of the right ring.
    pub fn right_placement(self) -> Placement {
        placement(self.right)
    }

    /// Index in `grants[]` of the first page of the left ring (always 0) and
    /// of the right ring (after the left ring's pages).
    pub fn grant_range_left(self) -> core::ops::Range<usize> {
        0..self.left_placement().pages()
    }

    /// Indices in `grants[]` of the right ring's pages.
    pub fn grant_range_right(self) -> core::ops::Range<usize> {
        let start = self.left_placement().pages();
        start..start + self.right_placement().pages()
    }

    /// Total grant refs listed in the shared page (at most 512 <= MAX_GRANTS).
    pub fn grant_count(self) -> usize {
        let n = self.left_placement().pages() + self.right_placement().pages();
        debug_assert!(n <= MAX_GRANTS);
        n
    }
}

fn placement(order: u8) -> Placement {
    match Placement::of_order(order) {
        Some(p) => p,
        // Orders is only ever built from validated values.
        None => Placement::Pages { count: 0 },
    }
}
