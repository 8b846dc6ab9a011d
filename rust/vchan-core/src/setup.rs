//! Setting a vchan up (the counterpart of Xen's `init.c`): the server's
//! page initialisation and grant list, the client's validation of what it
//! mapped, and where each ring's bytes live.
//!
//! Sharing, mapping and event channels are the caller's: the std endpoint
//! (`vchan` crate) does them through its backends, the freestanding archive
//! through its caller (a Mirage unikernel's `MEMORY`/`EVENTS`, or C code).
//! Both build their [`Channel`] with [`server_channel`] /
//! [`client_channel`] over the memory they obtained.

use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crate::channel::Channel;
use crate::error::Error;
use crate::layout::*;
use crate::mem::{RawPage, RawRing, SharedPage};
use crate::order::Orders;

/// Read the ring orders from a shared page, once, and validate them, as a
/// client does right after mapping the page.
pub fn read_orders<P: SharedPage>(page: &P) -> Result<Orders, Error> {
    let left = page.load_u16(LEFT_ORDER, Acquire);
    let right = page.load_u16(RIGHT_ORDER, Acquire);
    Orders::validate(left, right)
}

/// Read grant ref number `index` from the page's `grants[]`.
pub fn read_grant<P: SharedPage>(page: &P, index: usize) -> Result<u32, Error> {
    if index >= MAX_GRANTS {
        return Err(Error::GrantIndex(index));
    }
    Ok(page.load_u32(GRANTS + 4 * index, Relaxed))
}

/// Write grant ref number `index` into the page's `grants[]` (server side,
/// during set-up).
pub fn write_grant<P: SharedPage>(page: &P, index: usize, gref: u32) -> Result<(), Error> {
    if index >= MAX_GRANTS {
        return Err(Error::GrantIndex(index));
    }
    page.store_u32(GRANTS + 4 * index, gref, Relaxed);
    Ok(())
}

/// Initialise a freshly shared page as a server does: zero it, write the
/// orders, `cli_live = 2` (waiting), `srv_live = 1`, and ask the client to
/// notify after it writes.
pub fn init_server_page<P: SharedPage>(page: &P, orders: Orders) {
    for offset in (0..PAGE_SIZE).step_by(4) {
        page.store_u32(offset, 0, Relaxed);
    }
    page.store_u16(LEFT_ORDER, u16::from(orders.left()), Relaxed);
    page.store_u16(RIGHT_ORDER, u16::from(orders.right()), Relaxed);
    page.store_u8(CLI_LIVE, LIVE_WAITING, Relaxed);
    page.store_u8(CLI_NOTIFY, NOTIFY_WRITE, Relaxed);
    page.store_u8(SRV_LIVE, LIVE_CONNECTED, Release);
}

/// Number of separately shared pages a ring of `order` needs (0 for the two
/// in-page orders); `None` for an order outside `10..=20`.
pub const fn ring_pages(order: u8) -> Option<usize> {
    match Placement::of_order(order) {
        Some(p) => Some(p.pages()),
        None => None,
    }
}

/// Byte offset in the shared page of an in-page ring of `order`; `None`
/// for an order whose ring lives in its own pages (or an invalid order).
pub const fn ring_offset_in_page(order: u8) -> Option<usize> {
    match Placement::of_order(order) {
        Some(Placement::InPage { offset }) => Some(offset),
        _ => None,
    }
}

/// The server's half of set-up on a freshly shared page:
/// [`init_server_page`], then the grant refs of the left ring's pages and
/// of the right ring's pages in `grants[]`. Each list must have exactly
/// the ring's page count ([`ring_pages`]).
pub fn init_server<P: SharedPage>(
    page: &P,
    orders: Orders,
    left_grants: &[u32],
    right_grants: &[u32],
) -> Result<(), Error> {
    check_count(orders.left_placement().pages(), left_grants.len())?;
    check_count(orders.right_placement().pages(), right_grants.len())?;
    init_server_page(page, orders);
    let start = orders.grant_range_right().start;
    for (i, g) in left_grants.iter().enumerate() {
        write_grant(page, i, *g)?;
    }
    for (i, g) in right_grants.iter().enumerate() {
        write_grant(page, start + i, *g)?;
    }
    Ok(())
}

fn check_count(expected: usize, actual: usize) -> Result<(), Error> {
    if expected != actual {
        return Err(Error::GrantCount { expected, actual });
    }
    Ok(())
}

/// The client's validation of a mapped page: the orders, read once and
/// validated ([`read_orders`]), and the grant refs of each external ring,
/// read once into `left` and `right`, which must have exactly the ring's
/// page count ([`ring_pages`]). The caller maps the left ring writable and
/// the right ring read-only, and then calls [`client_channel`] with the
/// same orders: nothing is read from the page again.
pub fn read_client_grants<P: SharedPage>(
    page: &P,
    orders: Orders,
    left: &mut [u32],
    right: &mut [u32],
) -> Result<(), Error> {
    check_count(orders.left_placement().pages(), left.len())?;
    check_count(orders.right_placement().pages(), right.len())?;
    for (slot, i) in left.iter_mut().zip(orders.grant_range_left()) {
        *slot = read_grant(page, i)?;
    }
    for (slot, i) in right.iter_mut().zip(orders.grant_range_right()) {
        *slot = read_grant(page, i)?;
    }
    Ok(())
}

/// Memory handed in for a ring kept in its own pages: base and length.
#[derive(Debug, Clone, Copy)]
pub struct External {
    /// First byte.
    pub base: *mut u8,
    /// Length in bytes.
    pub len: usize,
}

/// The ring of `order`: inside `page` for orders 10 and 11 (then
/// `external` must be `None`), else `external`, whose length must be the
/// ring's size.
///
/// # Safety
/// `external`, when given, must point to `len` bytes that stay mapped for
/// as long as the returned ring is used (writable if it is written to).
pub unsafe fn ring(page: RawPage, order: u8, external: Option<External>) -> Result<RawRing, Error> {
    let len = 1usize << order.min(MAX_ORDER);
    let (base, actual) = match (Placement::of_order(order), external) {
        // SAFETY: offset + len <= PAGE_SIZE for the in-page orders
        // (1024 + 1024, 2048 + 2048): within the page `page` stands for.
        (Some(Placement::InPage { offset }), None) => (unsafe { page.as_ptr().add(offset) }, len),
        (Some(Placement::Pages { .. }), Some(e)) => (e.base, e.len),
        (Some(Placement::InPage { .. }), Some(e)) => (e.base, e.len + len),
        (_, _) => (core::ptr::null_mut(), 0),
    };
    if actual != len {
        return Err(Error::RingMemSize {
            expected: len,
            actual,
        });
    }
    // SAFETY: `base` points to `len` bytes: inside the page, or the
    // caller's external memory of that length (checked).
    unsafe { RawRing::new(base, len) }.ok_or(Error::RingMemSize {
        expected: len,
        actual: 0,
    })
}

/// The server's channel over a page set up with [`init_server`] and the
/// memory of its external rings (`None` for an in-page ring).
///
/// # Safety
/// As [`ring`], for both rings; `page` must stay valid as long as the
/// channel is used.
pub unsafe fn server_channel(
    page: RawPage,
    orders: Orders,
    left: Option<External>,
    right: Option<External>,
) -> Result<Channel<RawPage, RawRing>, Error> {
    // SAFETY: per this function's contract.
    let (read, write) = unsafe {
        (
            ring(page, orders.left(), left)?,
            ring(page, orders.right(), right)?,
        )
    };
    Channel::server(page, orders, read, write)
}

/// The client's channel over a mapped page whose orders were validated by
/// [`read_orders`] and the mappings of its external rings; announces the
/// client (`cli_live = 1`). The caller then signals the event channel.
///
/// # Safety
/// As [`server_channel`].
pub unsafe fn client_channel(
    page: RawPage,
    orders: Orders,
    left: Option<External>,
    right: Option<External>,
) -> Result<Channel<RawPage, RawRing>, Error> {
    // SAFETY: per this function's contract.
    let (write, read) = unsafe {
        (
            ring(page, orders.left(), left)?,
            ring(page, orders.right(), right)?,
        )
    };
    Channel::client(page, orders, read, write)
}
