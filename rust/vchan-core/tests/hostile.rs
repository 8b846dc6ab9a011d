//! A hostile peer scribbles on every byte it can reach between our
//! operations: we must never panic, never report impossible counts, never
//! touch memory outside the rings, and report violations as errors.

mod common;

use common::Mem;
use proptest::prelude::*;
use vchan_core::layout::*;
use vchan_core::{read_orders, Error, LiveState, Orders};

#[derive(Debug, Clone)]
enum Step {
    /// Write a byte anywhere in the header or the first grants.
    Poke(usize, u8),
    /// Write a whole u32 at an index field (likely an "interesting" value).
    PokeIndex(usize, u32),
    Write(usize),
    Read(usize),
    Send(usize),
    Recv(usize),
    Peek,
    Consume(usize),
    State,
}

fn step() -> impl Strategy<Value = Step> {
    let idx = prop_oneof![
        Just(LEFT_CONS),
        Just(LEFT_PROD),
        Just(RIGHT_CONS),
        Just(RIGHT_PROD)
    ];
    let val = prop_oneof![
        any::<u32>(),
        0u32..5000,
        Just(u32::MAX),
        (0u32..3).prop_map(|d| u32::MAX - d)
    ];
    prop_oneof![
        (0usize..GRANTS + 16, any::<u8>()).prop_map(|(o, v)| Step::Poke(o, v)),
        (idx, val).prop_map(|(o, v)| Step::PokeIndex(o, v)),
        (0usize..5000).prop_map(Step::Write),
        (0usize..5000).prop_map(Step::Read),
        (0usize..5000).prop_map(Step::Send),
        (0usize..5000).prop_map(Step::Recv),
        Just(Step::Peek),
        (0usize..5000).prop_map(Step::Consume),
        Just(Step::State),
    ]
}

fn check(r: Result<usize, Error>, bound: usize) -> Result<(), TestCaseError> {
    match r {
        Ok(n) => prop_assert!(n <= bound, "{} > {}", n, bound),
        Err(e) => prop_assert!(
            e.is_protocol_violation()
                || matches!(
                    e,
                    Error::PacketTooLarge { .. } | Error::ConsumeTooMuch { .. }
                ),
            "unexpected error {:?}",
            e
        ),
    }
    Ok(())
}

fn run(orders: Orders, server_side: bool, steps: &[Step]) -> Result<(), TestCaseError> {
    let mut mem = Mem::new(orders);
    let (server, client) = mem.pair(orders);
    let mut me = if server_side { server } else { client };
    let (rsize, wsize) = (me.read_size(), me.write_size());
    let mut buf = vec![0u8; 5000];
    for s in steps {
        match *s {
            Step::Poke(o, v) => mem.poke_u8(o, v),
            Step::PokeIndex(o, v) => {
                for (i, b) in v.to_le_bytes().into_iter().enumerate() {
                    mem.poke_u8(o + i, b);
                }
            }
            Step::Write(n) => check(me.write(&buf[..n]).map(|t| t.bytes), n.min(wsize))?,
            Step::Send(n) => {
                let r = me.send(&buf[..n]).map(|t| t.bytes);
                if let Ok(k) = r {
                    prop_assert!(k == 0 || k == n);
                }
                check(r, n)?
            }
            Step::Read(n) => check(me.read(&mut buf[..n]).map(|t| t.bytes), n.min(rsize))?,
            Step::Recv(n) => {
                let r = me.recv(&mut buf[..n]).map(|t| t.bytes);
                if let Ok(k) = r {
                    prop_assert!(k == 0 || k == n);
                }
                check(r, n)?
            }
            Step::Peek => match me.peek() {
                Ok(span) => prop_assert!(span.offset < rsize && span.len <= rsize - span.offset),
                Err(e) => prop_assert!(e.is_protocol_violation()),
            },
            Step::Consume(n) => check(me.consume(n).map(|t| t.bytes), n.min(rsize))?,
            Step::State => match me.peer_state() {
                Ok(_) => {}
                Err(e) => prop_assert!(matches!(e, Error::BadLiveState(v) if v > 2)),
            },
        }
        check(me.data_ready(), rsize)?;
        check(me.buffer_space(), wsize)?;
        // The orders we use never change, whatever the page says.
        prop_assert_eq!(me.orders(), orders);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn scribbling_peer(steps in proptest::collection::vec(step(), 1..80), server_side in any::<bool>(), pair in 0usize..4) {
        let (l, r) = [(10, 11), (11, 10), (12, 13), (16, 12)][pair];
        run(Orders::validate(l, r).unwrap(), server_side, &steps)?;
    }
}

#[test]
fn impossible_indices_are_protocol_errors() {
    let orders = Orders::validate(12, 12).unwrap();
    let mut mem = Mem::new(orders);
    let (mut server, _client) = mem.pair(orders);
    let size = 4096u32;
    // The client's prod on the left ring, one byte more than a ring ahead.
    for (i, b) in (size + 1).to_le_bytes().into_iter().enumerate() {
        mem.poke_u8(LEFT_PROD + i, b);
    }
    let e = server.data_ready().unwrap_err();
    assert_eq!(
        e,
        Error::ReadIndices {
            prod: size + 1,
            cons: 0,
            size
        }
    );
    assert!(e.is_protocol_violation());
    assert_eq!(server.read(&mut [0; 8]).unwrap_err(), e);
    // Exactly a ring ahead is fine: a full ring.
    for (i, b) in size.to_le_bytes().into_iter().enumerate() {
        mem.poke_u8(LEFT_PROD + i, b);
    }
    assert_eq!(server.data_ready(), Ok(4096));
    // The client's cons on the right ring ahead of our prod.
    for (i, b) in 1u32.to_le_bytes().into_iter().enumerate() {
        mem.poke_u8(RIGHT_CONS + i, b);
    }
    let e = server.buffer_space().unwrap_err();
    assert_eq!(
        e,
        Error::WriteIndices {
            prod: 0,
            cons: 1,
            size
        }
    );
    assert!(server.write(b"x").is_err());
    // A peer rewriting *our* index does not fool us: we keep our own copy.
    for (i, b) in 0u32.to_le_bytes().into_iter().enumerate() {
        mem.poke_u8(RIGHT_CONS + i, b);
    }
    assert_eq!(server.write(&[7; 100]).unwrap().bytes, 100);
    for (i, b) in 0u32.to_le_bytes().into_iter().enumerate() {
        mem.poke_u8(RIGHT_PROD + i, b);
    }
    assert_eq!(server.buffer_space(), Ok(4096 - 100));
}

#[test]
fn bad_live_bytes_and_orders() {
    let orders = Orders::validate(10, 11).unwrap();
    let mut mem = Mem::new(orders);
    let (server, client) = mem.pair(orders);
    assert_eq!(server.peer_state(), Ok(LiveState::Connected));
    mem.poke_u8(CLI_LIVE, 7);
    assert_eq!(server.peer_state(), Err(Error::BadLiveState(7)));
    mem.poke_u8(CLI_LIVE, 0);
    assert_eq!(server.peer_state(), Ok(LiveState::Exited));
    assert_eq!(client.peer_state(), Ok(LiveState::Connected));
    for (l, r) in [
        (9u16, 11u16),
        (21, 12),
        (10, 10),
        (11, 11),
        (0, 0),
        (300, 12),
    ] {
        mem.poke_u8(LEFT_ORDER, l as u8);
        mem.poke_u8(LEFT_ORDER + 1, (l >> 8) as u8);
        mem.poke_u8(RIGHT_ORDER, r as u8);
        mem.poke_u8(RIGHT_ORDER + 1, (r >> 8) as u8);
        // SAFETY: the page is live, 4096 bytes and aligned.
        let page = unsafe { vchan_core::RawPage::new(mem.page_ptr()) }.unwrap();
        assert_eq!(
            read_orders(&page),
            Err(Error::BadOrders { left: l, right: r })
        );
    }
}
