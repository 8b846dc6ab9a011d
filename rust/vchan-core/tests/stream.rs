//! Two endpoints over one in-memory page: random operation sequences in
//! both directions, for every valid order pair; then two threads at once.

mod common;

use common::{valid_pairs, Ch, Mem};
use proptest::prelude::*;
use vchan_core::{Error, Orders};

#[derive(Debug, Clone)]
enum Op {
    /// Stream write of n bytes by the server (true) or client.
    Write(bool, usize),
    Read(bool, usize),
    Send(bool, usize),
    Recv(bool, usize),
    /// Zero-copy read of up to n bytes.
    PeekConsume(bool, usize),
}

fn op() -> impl Strategy<Value = Op> {
    // Sizes are fractions of a ring (in 1/64ths, up to 2 rings) so they
    // scale with the order under test.
    let sz = 0usize..=128;
    prop_oneof![
        (any::<bool>(), sz.clone()).prop_map(|(s, n)| Op::Write(s, n)),
        (any::<bool>(), sz.clone()).prop_map(|(s, n)| Op::Read(s, n)),
        (any::<bool>(), sz.clone()).prop_map(|(s, n)| Op::Send(s, n)),
        (any::<bool>(), sz.clone()).prop_map(|(s, n)| Op::Recv(s, n)),
        (any::<bool>(), sz).prop_map(|(s, n)| Op::PeekConsume(s, n)),
    ]
}

/// One direction's bookkeeping: bytes produced and consumed so far.
#[derive(Default)]
struct Dir {
    sent: u64,
    got: u64,
}

fn byte(i: u64) -> u8 {
    (i.wrapping_mul(0x9E37_79B9) >> 13) as u8
}

fn scale(n: usize, ring: usize) -> usize {
    // 1/64ths of a ring, plus an odd offset so sizes are rarely aligned.
    (n * ring / 64 + n % 7).min(2 * ring + 1)
}

fn run(orders: Orders, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut mem = Mem::new(orders);
    let (mut server, mut client) = mem.pair(orders);
    let mut dirs = [Dir::default(), Dir::default()]; // 0: server->client
    for op in ops {
        let (s, n) = match *op {
            Op::Write(s, n)
            | Op::Read(s, n)
            | Op::Send(s, n)
            | Op::Recv(s, n)
            | Op::PeekConsume(s, n) => (s, n),
        };
        let (me, peer): (&mut Ch, &mut Ch) = if s {
            (&mut server, &mut client)
        } else {
            (&mut client, &mut server)
        };
        let out = if s { 0 } else { 1 };
        match *op {
            Op::Write(..) | Op::Send(..) => {
                let ring = me.write_size();
                let n = scale(n, ring);
                let d = &mut dirs[out];
                let buf: Vec<u8> = (d.sent..d.sent + n as u64).map(byte).collect();
                let space = me.buffer_space().unwrap();
                let used = (d.sent - d.got) as usize;
                prop_assert_eq!(space, ring - used);
                prop_assert_eq!(peer.data_ready().unwrap(), used);
                let t = if matches!(op, Op::Write(..)) {
                    me.write(&buf).unwrap()
                } else {
                    match me.send(&buf) {
                        Err(Error::PacketTooLarge { len, ring: r }) => {
                            prop_assert!(n > ring && len == n && r == ring);
                            continue;
                        }
                        r => {
                            let t = r.unwrap();
                            prop_assert_eq!(t.bytes, if n <= space { n } else { 0 });
                            t
                        }
                    }
                };
                if matches!(op, Op::Write(..)) {
                    prop_assert_eq!(t.bytes, n.min(space));
                }
                d.sent += t.bytes as u64;
            }
            Op::Read(..) | Op::Recv(..) | Op::PeekConsume(..) => {
                let ring = me.read_size();
                let n = scale(n, ring);
                let d = &mut dirs[1 - out];
                let ready = me.data_ready().unwrap();
                prop_assert_eq!(ready as u64, d.sent - d.got);
                let mut buf = vec![0u8; n];
                let got = match op {
                    Op::Read(..) => me.read(&mut buf).unwrap().bytes,
                    Op::Recv(..) => match me.recv(&mut buf) {
                        Err(Error::PacketTooLarge { .. }) => {
                            prop_assert!(n > ring);
                            continue;
                        }
                        r => {
                            let b = r.unwrap().bytes;
                            prop_assert_eq!(b, if n <= ready { n } else { 0 });
                            b
                        }
                    },
                    _ => {
                        let span = me.peek().unwrap();
                        prop_assert!(span.offset + span.len <= ring);
                        prop_assert!(span.len <= ready);
                        prop_assert_eq!(span.len == 0, ready == 0);
                        let k = span.len.min(n);
                        let mut tmp = vec![0u8; ring];
                        // Read the view through the ring memory.
                        me.read_ring_copy(span.offset, &mut tmp[..k]);
                        buf[..k].copy_from_slice(&tmp[..k]);
                        let _ = me.consume(k).unwrap();
                        k
                    }
                };
                if matches!(op, Op::Read(..)) {
                    prop_assert_eq!(got, n.min(ready));
                }
                for (i, b) in buf[..got].iter().enumerate() {
                    prop_assert_eq!(
                        *b,
                        byte(d.got + i as u64),
                        "byte {} of the stream",
                        d.got + i as u64
                    );
                }
                d.got += got as u64;
            }
        }
    }
    Ok(())
}

/// Copy bytes out of the read ring at an offset (test helper standing in for
/// a zero-copy consumer).
trait RingCopy {
    fn read_ring_copy(&self, off: usize, dst: &mut [u8]);
}
impl RingCopy for Ch {
    fn read_ring_copy(&self, off: usize, dst: &mut [u8]) {
        use vchan_core::RingMem;
        self.read_ring().read_at(off, dst);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn random_sequences_small_orders(ops in proptest::collection::vec(op(), 1..200)) {
        for orders in valid_pairs(&[10, 11, 12, 13]) {
            run(orders, &ops)?;
        }
    }

    #[test]
    fn random_sequences_large_orders(ops in proptest::collection::vec(op(), 1..60)) {
        for orders in valid_pairs(&[10, 16, 20]) {
            run(orders, &ops)?;
        }
    }
}

#[test]
fn every_valid_order_pair_roundtrips() {
    let all: Vec<u16> = (10..=20).collect();
    let ops: Vec<Op> = (0..40)
        .flat_map(|i| {
            [
                Op::Write(i % 2 == 0, 37 + i),
                Op::Send(i % 3 == 0, 11),
                Op::Read(i % 2 == 0, 50),
                Op::Read(i % 2 == 1, 64),
                Op::Recv(i % 3 == 0, 11),
            ]
        })
        .collect();
    let pairs = valid_pairs(&all);
    assert_eq!(pairs.len(), 11 * 11 - 2);
    for orders in pairs {
        run(orders, &ops).unwrap();
    }
}

/// Two threads move 16 MiB each way at once, spinning when blocked.
#[test]
fn two_threads_both_ways() {
    const TOTAL: u64 = 16 << 20;
    for (l, r) in [(10, 11), (12, 12), (16, 20)] {
        let orders = Orders::validate(l, r).unwrap();
        let mut mem = Mem::new(orders);
        let (server, client) = mem.pair(orders);
        let pump = move |mut ch: Ch| {
            let mut sent = 0u64;
            let mut got = 0u64;
            let mut out = vec![0u8; 70_001];
            let mut inb = vec![0u8; 50_003];
            while sent < TOTAL || got < TOTAL {
                if sent < TOTAL {
                    let n = ((TOTAL - sent) as usize).min(out.len() - (sent % 13) as usize);
                    for (i, b) in out[..n].iter_mut().enumerate() {
                        *b = byte(sent + i as u64);
                    }
                    sent += ch.write(&out[..n]).unwrap().bytes as u64;
                }
                let n = ch.read(&mut inb).unwrap().bytes;
                for (i, b) in inb[..n].iter().enumerate() {
                    assert_eq!(*b, byte(got + i as u64));
                }
                got += n as u64;
                if n == 0 {
                    std::thread::yield_now();
                }
            }
            (sent, got)
        };
        let t = std::thread::spawn(move || pump(client));
        assert_eq!(pump(server), (TOTAL, TOTAL));
        assert_eq!(t.join().unwrap(), (TOTAL, TOTAL));
        drop(mem);
    }
}
