//! Targets over vchan-core, the shared page and its rings: `orders` and
//! `ring`.

use vchan_core::layout::*;
use vchan_core::{read_grant, read_orders, Channel, Orders, RawPage, RawRing};

use crate::input::Input;

/// Order validation and the server's choice: accepted orders describe
/// rings that fit (in the page, or in at most `MAX_GRANTS` granted pages),
/// and the server never picks a ring smaller than asked.
pub fn orders(data: &[u8]) {
    let mut inp = Input::new(data);
    let (l, r) = (inp.u16(), inp.u16());
    if let Ok(o) = Orders::validate(l, r) {
        assert_eq!((u16::from(o.left()), u16::from(o.right())), (l, r));
        assert!(o.grant_count() <= MAX_GRANTS);
        assert!(o.grant_range_right().end == o.grant_count());
        for order in [o.left(), o.right()] {
            assert!((MIN_ORDER..=MAX_ORDER).contains(&order));
        }
        // Two in-page rings of one order would overlap.
        assert!(!(l == r && l < u16::from(PAGE_SHIFT)));
    }
    let (rmin, wmin) = (inp.u32() as usize, inp.u32() as usize);
    if let Ok(o) = Orders::for_server(rmin, wmin) {
        assert!(1usize << o.left() >= rmin && 1usize << o.right() >= wmin);
        assert!(Orders::validate(o.left().into(), o.right().into()).is_ok());
    }
}

#[repr(C, align(4096))]
struct Page([u8; PAGE_SIZE]);

/// Ring operations on a page the peer filled arbitrarily and keeps
/// rewriting between operations: every operation returns (a count within
/// what was asked, or an error), and nothing outside the rings and the
/// page is ever written (guard bytes around the rings stay intact).
pub fn ring(data: &[u8]) {
    const GUARD: usize = 64;
    let mut inp = Input::new(data);
    let mut page = Box::new(Page([0; PAGE_SIZE]));
    let head = inp.bytes(64);
    page.0[..head.len()].copy_from_slice(head);
    // Mostly valid orders, so that operations get exercised.
    if inp.u8() % 4 != 0 {
        let o = |b: u8| u16::from(MIN_ORDER + b % 7);
        let (mut l, r) = (o(inp.u8()), o(inp.u8()));
        if l == r && l < u16::from(PAGE_SHIFT) {
            l = u16::from(PAGE_SHIFT);
        }
        page.0[LEFT_ORDER..LEFT_ORDER + 2].copy_from_slice(&l.to_le_bytes());
        page.0[RIGHT_ORDER..RIGHT_ORDER + 2].copy_from_slice(&r.to_le_bytes());
    }
    let base = page.0.as_mut_ptr();
    // SAFETY: `page` is 4096 bytes, 4096-aligned, alive until the end.
    let raw = unsafe { RawPage::new(base) }.expect("aligned page");
    let Ok(orders) = read_orders(&raw) else {
        return;
    };
    for i in 0..MAX_GRANTS + 2 {
        let _ = read_grant(&raw, i);
    }
    let server = inp.u8() & 1 == 0;
    let (rd_order, wr_order) = if server {
        (orders.left(), orders.right())
    } else {
        (orders.right(), orders.left())
    };
    let (rd_len, wr_len) = (1usize << rd_order, 1usize << wr_order);
    // Rings in separate buffers, each between guard zones.
    let mut rd = vec![0xa5u8; rd_len + 2 * GUARD];
    let mut wr = vec![0x5au8; wr_len + 2 * GUARD];
    let fill = inp.bytes(rd_len.min(256));
    rd[GUARD..GUARD + fill.len()].copy_from_slice(fill);
    // SAFETY: the rings lie inside `rd`/`wr`, alive until the end.
    let (rr, wrr) = unsafe {
        (
            RawRing::new(rd.as_mut_ptr().add(GUARD), rd_len).expect("ring"),
            RawRing::new(wr.as_mut_ptr().add(GUARD), wr_len).expect("ring"),
        )
    };
    let ch = if server {
        Channel::server(raw, orders, rr, wrr)
    } else {
        Channel::client(raw, orders, rr, wrr)
    };
    let Ok(mut ch) = ch else { return };
    // (`ch` holds raw pointers into `rd`/`wr`: checked after its last use.)
    let mut buf = vec![0u8; 1 << 16];
    let mut steps = 0;
    while !inp.is_empty() && steps < 256 {
        steps += 1;
        let op = inp.u8();
        let n = (inp.u16() as usize) % (buf.len() + 1);
        match op % 10 {
            0 | 1 => {
                // The peer rewrites a header byte (indices, orders, live
                // and notify bytes, first grants) or any byte.
                let off = if op & 0x80 == 0 {
                    inp.u8() as usize % 64
                } else {
                    inp.u16() as usize % PAGE_SIZE
                };
                let v = inp.u8();
                // SAFETY: off < PAGE_SIZE: inside the page.
                unsafe { std::ptr::write_volatile(base.add(off), v) };
            }
            2 => {
                if let Ok(t) = ch.read(&mut buf[..n]) {
                    assert!(t.bytes <= n);
                }
            }
            3 => {
                if let Ok(t) = ch.write(&buf[..n]) {
                    assert!(t.bytes <= n);
                }
            }
            4 => {
                if let Ok(t) = ch.recv(&mut buf[..n]) {
                    assert!(t.bytes == n || t.bytes == 0);
                }
            }
            5 => {
                if let Ok(t) = ch.send(&buf[..n]) {
                    assert!(t.bytes == n || t.bytes == 0);
                }
            }
            6 => {
                if let Ok(s) = ch.peek() {
                    assert!(s.offset + s.len <= rd_len);
                    let _ = ch.consume(s.len.min(n));
                }
            }
            7 => {
                let _ = ch.consume(n);
            }
            8 => {
                if let Ok(k) = ch.data_ready() {
                    assert!(k <= rd_len);
                }
                if let Ok(k) = ch.buffer_space() {
                    assert!(k <= wr_len);
                }
            }
            _ => {
                let _ = ch.peer_state();
                let _ = ch.data_ready_or_arm(n);
                let _ = ch.buffer_space_or_arm(n);
            }
        }
    }
    assert!(
        rd[..GUARD].iter().all(|b| *b == 0xa5),
        "write before the read ring"
    );
    assert!(
        rd[GUARD + rd_len..].iter().all(|b| *b == 0xa5),
        "write after the read ring"
    );
    assert!(
        wr[..GUARD].iter().all(|b| *b == 0x5a),
        "write before the write ring"
    );
    assert!(
        wr[GUARD + wr_len..].iter().all(|b| *b == 0x5a),
        "write after the write ring"
    );
}
