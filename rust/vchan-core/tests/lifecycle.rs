//! Set-up, grants, live states and close: the parts of the API around the
//! ring operations.

mod common;

use common::{Ch, Mem, Side};
use vchan_core::layout::*;
use vchan_core::{
    init_server_page, read_grant, write_grant, Error, LiveState, Orders, RawPage, RawRing, Role,
};

#[test]
fn server_page_initialisation() {
    let orders = Orders::validate(12, 10).unwrap();
    let mem = Mem::new(orders);
    for off in 0..PAGE_SIZE {
        mem.poke_u8(off, 0xFF);
    }
    init_server_page(&mem.page(), orders);
    assert_eq!(mem.peek_u16(LEFT_ORDER), 12);
    assert_eq!(mem.peek_u16(RIGHT_ORDER), 10);
    assert_eq!(mem.peek_u8(CLI_LIVE), LIVE_WAITING);
    assert_eq!(mem.peek_u8(SRV_LIVE), LIVE_CONNECTED);
    assert_eq!(mem.peek_u8(CLI_NOTIFY), NOTIFY_WRITE);
    assert_eq!(mem.peek_u8(SRV_NOTIFY), 0);
    // Everything else is zero: indices, grants, in-page rings.
    for off in (0..16).chain(GRANTS..PAGE_SIZE) {
        assert_eq!(mem.peek_u8(off), 0, "byte {off}");
    }
}

#[test]
fn client_connects() {
    let orders = Orders::validate(10, 11).unwrap();
    let mem = Mem::new(orders);
    let (server, client) = mem.pair();
    assert_eq!(mem.peek_u8(CLI_LIVE), LIVE_CONNECTED);
    assert_eq!(mem.peek_u8(SRV_NOTIFY), NOTIFY_WRITE);
    assert_eq!(server.peer_state(), Ok(LiveState::Connected));
    assert_eq!(client.peer_state(), Ok(LiveState::Connected));
    assert_eq!((server.role(), client.role()), (Role::Server, Role::Client));
    assert_eq!((server.orders(), client.orders()), (orders, orders));
    assert_eq!((server.read_size(), server.write_size()), (1024, 2048));
    assert_eq!((client.read_size(), client.write_size()), (2048, 1024));
    assert_eq!(server.read_ring().as_ptr(), mem.ring_ptr(Side::Left));
    assert_eq!(client.read_ring().as_ptr(), mem.ring_ptr(Side::Right));
    assert_eq!(client.write_ring().as_ptr(), mem.ring_ptr(Side::Left));
    assert_eq!(server.page().as_ptr(), mem.page_ptr());
}

#[test]
fn close_keeps_data_readable() {
    let orders = Orders::validate(11, 10).unwrap();
    let mem = Mem::new(orders);
    let (mut server, mut client) = mem.pair();
    assert_eq!(server.write(b"last words").unwrap().bytes, 10);
    server.close();
    assert_eq!(mem.peek_u8(SRV_LIVE), LIVE_EXITED);
    assert_eq!(client.peer_state(), Ok(LiveState::Exited));
    let mut b = [0u8; 16];
    assert_eq!(client.read(&mut b).unwrap().bytes, 10);
    assert_eq!(&b[..10], b"last words");
    client.set_state(LiveState::Waiting);
    assert_eq!(server.peer_state(), Ok(LiveState::Waiting));
    client.close();
    assert_eq!(server.peer_state(), Ok(LiveState::Exited));
    let (page, rd, wr) = server.into_parts();
    assert_eq!(page.as_ptr(), mem.page_ptr());
    assert_eq!(rd.as_ptr(), mem.ring_ptr(Side::Left));
    assert_eq!(wr.as_ptr(), mem.ring_ptr(Side::Right));
}

#[test]
fn ring_memory_must_match_the_orders() {
    let orders = Orders::validate(12, 13).unwrap();
    let mem = Mem::new(orders);
    let page = mem.page();
    init_server_page(&page, orders);
    let (left, right) = (mem.ring(Side::Left), mem.ring(Side::Right));
    // Rings swapped: the server would read an 8 KiB ring as a 4 KiB one.
    assert_eq!(
        Ch::server(page, orders, right, left).unwrap_err(),
        Error::RingMemSize {
            expected: 4096,
            actual: 8192
        }
    );
    // SAFETY: a prefix of a live ring buffer.
    let short = unsafe { RawRing::new(mem.ring_ptr(Side::Right), 4096) }.unwrap();
    assert_eq!(
        Ch::server(page, orders, left, short).unwrap_err(),
        Error::RingMemSize {
            expected: 8192,
            actual: 4096
        }
    );
    assert_eq!(
        Ch::client(page, orders, left, right).unwrap_err(),
        Error::RingMemSize {
            expected: 8192,
            actual: 4096
        }
    );
    assert!(Ch::server(page, orders, left, right).is_ok());
}

#[test]
fn grant_refs() {
    let orders = Orders::validate(20, 20).unwrap();
    let mem = Mem::new(orders);
    let page = mem.page();
    init_server_page(&page, orders);
    for i in 0..orders.grant_count() {
        write_grant(&page, i, 0x1000_0000 + i as u32).unwrap();
    }
    write_grant(&page, MAX_GRANTS - 1, 0xABCD_EF01).unwrap();
    assert_eq!(mem.peek_u32(GRANTS), 0x1000_0000);
    assert_eq!(mem.peek_u32(GRANTS + 4 * 511), 0x1000_01FF);
    assert_eq!(mem.peek_u32(PAGE_SIZE - 4), 0xABCD_EF01);
    for i in orders.grant_range_right() {
        assert_eq!(read_grant(&page, i), Ok(0x1000_0000 + i as u32));
    }
    assert_eq!(read_grant(&page, MAX_GRANTS - 1), Ok(0xABCD_EF01));
    for bad in [MAX_GRANTS, MAX_GRANTS + 1, usize::MAX] {
        assert_eq!(read_grant(&page, bad), Err(Error::GrantIndex(bad)));
        assert_eq!(write_grant(&page, bad, 1), Err(Error::GrantIndex(bad)));
        assert!(!Error::GrantIndex(bad).is_protocol_violation());
    }
    // The header is untouched by grant writes.
    assert_eq!(mem.peek_u16(LEFT_ORDER), 20);
    assert_eq!(mem.peek_u8(SRV_LIVE), LIVE_CONNECTED);
}

#[test]
fn raw_page_and_ring_pointers() {
    let mut words = [0u64; PAGE_SIZE / 8 + 1];
    let base: *mut u8 = words.as_mut_ptr().cast();
    // SAFETY: only the checks are exercised; no page is used.
    unsafe {
        assert!(RawPage::new(std::ptr::null_mut()).is_none());
        assert!(RawPage::new(base.add(2)).is_none(), "misaligned page");
        assert!(RawPage::new(base.add(4)).is_some());
        assert!(RawRing::new(std::ptr::null_mut(), 1024).is_none());
    }
}

#[test]
fn errors_display_and_classify() {
    let all = [
        (Error::RingTooLarge { requested: 1 << 21 }, false),
        (Error::BadOrders { left: 9, right: 11 }, true),
        (
            Error::ReadIndices {
                prod: 5000,
                cons: 0,
                size: 4096,
            },
            true,
        ),
        (
            Error::WriteIndices {
                prod: 0,
                cons: 1,
                size: 4096,
            },
            true,
        ),
        (Error::BadLiveState(7), true),
        (Error::PacketTooLarge { len: 5, ring: 4 }, false),
        (
            Error::RingMemSize {
                expected: 1,
                actual: 2,
            },
            false,
        ),
        (
            Error::ConsumeTooMuch {
                requested: 3,
                available: 2,
            },
            false,
        ),
        (Error::GrantIndex(1018), false),
    ];
    for (e, violation) in all {
        assert_eq!(e.is_protocol_violation(), violation, "{e:?}");
        let msg = e.to_string();
        assert!(!msg.is_empty());
        assert_eq!(msg.starts_with("protocol violation"), violation, "{msg}");
    }
}
