//! A server and a client over one in-memory page: random sequences of
//! stream, packet and zero-copy operations in both directions, checked
//! against an exact model (bytes, indices in the page, notify bits); the
//! u32 indices wrapping around; then two threads at once, spinning and
//! event-driven.

mod common;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use common::{stream, valid_pairs, Ch, Mem, Side};
use proptest::prelude::*;
use vchan_core::layout::*;
use vchan_core::{Error, Orders, RingMem, Span, Transfer};
use vchan_test_support::Rng;

/// The order pairs under test: every valid pair of these orders.
const ORDERS: [u16; 6] = [10, 11, 12, 13, 16, 20];

fn pairs() -> Vec<Orders> {
    valid_pairs(&ORDERS)
}

/// A size, resolved against the ring size and the bytes that fit/are
/// ready now, so that boundaries (empty, exactly full, one over, ring
/// size, twice the ring) come up often for every order.
#[derive(Debug, Clone, Copy)]
enum Size {
    Small(u16),
    /// `k/64` of the ring, up to two rings.
    Frac(u8),
    /// The ring size plus a small delta.
    NearRing(i8),
    /// What fits (or is ready) now, plus a small delta.
    Fit(i8),
}

impl Size {
    fn resolve(self, ring: usize, fit: usize) -> usize {
        let near = |base: usize, d: i8| (base as isize + isize::from(d)).max(0) as usize;
        match self {
            Size::Small(n) => n.into(),
            Size::Frac(k) => usize::from(k) * ring / 64,
            Size::NearRing(d) => near(ring, d),
            Size::Fit(d) => near(fit, d),
        }
    }
}

fn size() -> impl Strategy<Value = Size> {
    prop_oneof![
        4 => (0u16..=80).prop_map(Size::Small),
        3 => (0u8..=128).prop_map(Size::Frac),
        1 => (-2i8..=2).prop_map(Size::NearRing),
        3 => (-2i8..=2).prop_map(Size::Fit),
    ]
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Write,
    Send,
    Read,
    Recv,
    /// `peek`, read through the ring memory, `consume`.
    PeekConsume,
    /// `data_ready_or_arm(want)`.
    ArmData,
    /// `buffer_space_or_arm(want)`.
    ArmSpace,
}

#[derive(Debug, Clone, Copy)]
struct Op {
    /// The server acts (else the client).
    server: bool,
    kind: Kind,
    size: Size,
}

fn op() -> impl Strategy<Value = Op> {
    let kind = prop_oneof![
        3 => Just(Kind::Write),
        2 => Just(Kind::Send),
        3 => Just(Kind::Read),
        2 => Just(Kind::Recv),
        2 => Just(Kind::PeekConsume),
        1 => Just(Kind::ArmData),
        1 => Just(Kind::ArmSpace),
    ];
    (any::<bool>(), kind, size()).prop_map(|(server, kind, size)| Op { server, kind, size })
}

/// One direction of the vchan as the model sees it.
#[derive(Debug, Clone, Copy)]
struct Dir {
    ring: usize,
    /// Index value at stream position 0 (not 0 when starting near a wrap).
    base: u32,
    /// Stream bytes produced and consumed.
    sent: u64,
    got: u64,
    /// The reader asked to be signalled after the next write.
    wake_on_write: bool,
    /// The writer asked to be signalled after the next read.
    wake_on_read: bool,
}

impl Dir {
    fn inflight(&self) -> usize {
        (self.sent - self.got) as usize
    }
    fn space(&self) -> usize {
        self.ring - self.inflight()
    }
    fn prod(&self) -> u32 {
        self.base.wrapping_add(self.sent as u32)
    }
    fn cons(&self) -> u32 {
        self.base.wrapping_add(self.got as u32)
    }
}

/// The model of both directions: `[0]` server to client (right ring),
/// `[1]` client to server (left ring).
struct Model {
    dirs: [Dir; 2],
}

impl Model {
    /// The model of a freshly connected pair, read from the page.
    fn from_page(mem: &Mem) -> Model {
        let dir = |ring, cons_off, prod_off, reader_notify, writer_notify| {
            let (cons, prod) = (mem.peek_u32(cons_off), mem.peek_u32(prod_off));
            assert_eq!(cons, prod, "the model starts from empty rings");
            Dir {
                ring,
                base: cons,
                sent: 0,
                got: 0,
                wake_on_write: mem.peek_u8(writer_notify) & NOTIFY_WRITE != 0,
                wake_on_read: mem.peek_u8(reader_notify) & NOTIFY_READ != 0,
            }
        };
        Model {
            dirs: [
                dir(
                    mem.ring_size(Side::Right),
                    RIGHT_CONS,
                    RIGHT_PROD,
                    CLI_NOTIFY,
                    SRV_NOTIFY,
                ),
                dir(
                    mem.ring_size(Side::Left),
                    LEFT_CONS,
                    LEFT_PROD,
                    SRV_NOTIFY,
                    CLI_NOTIFY,
                ),
            ],
        }
    }

    /// Everything observable agrees with the model: both endpoints' views
    /// of both rings, the four indices and the two notify bytes in the page.
    fn check(&self, mem: &Mem, server: &Ch, client: &Ch) -> Result<(), TestCaseError> {
        let [s2c, c2s] = self.dirs;
        prop_assert_eq!(server.buffer_space(), Ok(s2c.space()));
        prop_assert_eq!(client.data_ready(), Ok(s2c.inflight()));
        prop_assert_eq!(client.buffer_space(), Ok(c2s.space()));
        prop_assert_eq!(server.data_ready(), Ok(c2s.inflight()));
        prop_assert_eq!(
            client.data_ready().unwrap() + server.buffer_space().unwrap(),
            server.write_size()
        );
        prop_assert_eq!(
            server.data_ready().unwrap() + client.buffer_space().unwrap(),
            client.write_size()
        );
        prop_assert_eq!(mem.peek_u32(RIGHT_PROD), s2c.prod());
        prop_assert_eq!(mem.peek_u32(RIGHT_CONS), s2c.cons());
        prop_assert_eq!(mem.peek_u32(LEFT_PROD), c2s.prod());
        prop_assert_eq!(mem.peek_u32(LEFT_CONS), c2s.cons());
        let bits = |w: bool, r: bool| {
            (if w { NOTIFY_WRITE } else { 0 }) | (if r { NOTIFY_READ } else { 0 })
        };
        // The server acts on: after writing right (s2c), after reading left.
        prop_assert_eq!(
            mem.peek_u8(SRV_NOTIFY),
            bits(s2c.wake_on_write, c2s.wake_on_read)
        );
        prop_assert_eq!(
            mem.peek_u8(CLI_NOTIFY),
            bits(c2s.wake_on_write, s2c.wake_on_read)
        );
        prop_assert!(mem.guards_intact());
        Ok(())
    }
}

/// Check a transfer of `bytes` against the model's expectation, and update
/// the notify flag it consumes.
fn expect_transfer(t: Transfer, bytes: usize, flag: &mut bool) -> Result<(), TestCaseError> {
    prop_assert_eq!(t.bytes, bytes);
    if bytes == 0 {
        prop_assert!(!t.notify, "nothing moved, nobody to notify");
    } else {
        prop_assert_eq!(t.notify, *flag, "notify after moving {} bytes", bytes);
        *flag = false;
    }
    Ok(())
}

fn check_stream(got: &[u8], from: u64) -> Result<(), TestCaseError> {
    if let Some(i) = stream().mismatch(from, got) {
        let pos = from + i as u64;
        prop_assert_eq!(got[i], stream().byte(pos), "stream byte {}", pos);
    }
    Ok(())
}

fn apply(op: Op, model: &mut Model, server: &mut Ch, client: &mut Ch) -> Result<(), TestCaseError> {
    let (me, peer_out): (&mut Ch, usize) = if op.server { (server, 0) } else { (client, 1) };
    let out = &mut model.dirs[peer_out];
    match op.kind {
        Kind::Write | Kind::Send => {
            let ring = me.write_size();
            prop_assert_eq!(ring, out.ring);
            let space = out.space();
            let n = op.size.resolve(ring, space);
            let mut buf = vec![0u8; n];
            stream().fill(out.sent, &mut buf);
            let moved = if let Kind::Write = op.kind {
                let t = me.write(&buf).unwrap();
                expect_transfer(t, n.min(space), &mut out.wake_on_write)?;
                t.bytes
            } else if n > ring {
                prop_assert_eq!(me.send(&buf), Err(Error::PacketTooLarge { len: n, ring }));
                0
            } else {
                let t = me.send(&buf).unwrap();
                let all_or_nothing = if n <= space { n } else { 0 };
                expect_transfer(t, all_or_nothing, &mut out.wake_on_write)?;
                t.bytes
            };
            out.sent += moved as u64;
        }
        Kind::Read | Kind::Recv | Kind::PeekConsume => {
            let inc = &mut model.dirs[1 - peer_out];
            let ring = me.read_size();
            prop_assert_eq!(ring, inc.ring);
            let ready = inc.inflight();
            let n = op.size.resolve(ring, ready);
            let mut buf = vec![0u8; n];
            let moved = match op.kind {
                Kind::Read => {
                    let t = me.read(&mut buf).unwrap();
                    expect_transfer(t, n.min(ready), &mut inc.wake_on_read)?;
                    t.bytes
                }
                Kind::Recv if n > ring => {
                    prop_assert_eq!(
                        me.recv(&mut buf),
                        Err(Error::PacketTooLarge { len: n, ring })
                    );
                    0
                }
                Kind::Recv => {
                    let t = me.recv(&mut buf).unwrap();
                    let all_or_nothing = if n <= ready { n } else { 0 };
                    expect_transfer(t, all_or_nothing, &mut inc.wake_on_read)?;
                    prop_assert!(
                        buf[t.bytes..].iter().all(|&b| b == 0),
                        "recv wrote past its count"
                    );
                    t.bytes
                }
                _ => {
                    let offset = (inc.cons() as usize) & (ring - 1);
                    let span = me.peek().unwrap();
                    prop_assert_eq!(
                        span,
                        Span {
                            offset,
                            len: ready.min(ring - offset)
                        }
                    );
                    if n > ready {
                        prop_assert_eq!(
                            me.consume(n),
                            Err(Error::ConsumeTooMuch {
                                requested: n,
                                available: ready
                            })
                        );
                        0
                    } else {
                        // Zero-copy: read the bytes in place (wrapping past
                        // the span when consuming more than it).
                        let first = n.min(span.len);
                        me.read_ring().read_at(span.offset, &mut buf[..first]);
                        me.read_ring().read_at(0, &mut buf[first..]);
                        let t = me.consume(n).unwrap();
                        expect_transfer(t, n, &mut inc.wake_on_read)?;
                        n
                    }
                }
            };
            check_stream(&buf[..moved], inc.got)?;
            inc.got += moved as u64;
        }
        Kind::ArmData => {
            let inc = &mut model.dirs[1 - peer_out];
            let want = op.size.resolve(inc.ring, inc.inflight());
            prop_assert_eq!(me.data_ready_or_arm(want), Ok(inc.inflight()));
            if inc.inflight() < want {
                inc.wake_on_write = true;
            }
        }
        Kind::ArmSpace => {
            let want = op.size.resolve(out.ring, out.space());
            prop_assert_eq!(me.buffer_space_or_arm(want), Ok(out.space()));
            if out.space() < want {
                out.wake_on_read = true;
            }
        }
    }
    Ok(())
}

fn segment() -> impl Strategy<Value = usize> {
    prop_oneof![Just(0usize), 1usize..=9, 1000usize..=5000]
}

fn run(orders: Orders, segs: (usize, usize), ops: &[Op]) -> Result<(), TestCaseError> {
    let mem = Mem::new(orders);
    let (mut server, mut client) = mem.pair();
    // Pipelined copies publish after every segment: the model (which
    // knows nothing of segments) must still hold, notify bits included.
    server.set_segments(segs.0, segs.1);
    client.set_segments(segs.1, segs.0);
    let mut model = Model::from_page(&mem);
    // Connect-time requests: each side asked the other to notify on write.
    prop_assert!(model
        .dirs
        .iter()
        .all(|d| d.wake_on_write && !d.wake_on_read));
    model.check(&mem, &server, &client)?;
    for &op in ops {
        apply(op, &mut model, &mut server, &mut client)?;
        model.check(&mem, &server, &client)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Random operations on a random valid pair of the order set, with
    /// random publish granularities (0: whole copies).
    #[test]
    fn random_operations(
        pair in 0..pairs().len(),
        segs in (segment(), segment()),
        ops in proptest::collection::vec(op(), 1..64),
    ) {
        run(pairs()[pair], segs, &ops)?;
    }
}

/// A recorded packet stream: every packet `send` accepted comes out whole
/// from `recv` with its own length, in order; `recv` with a length larger
/// than what is ready moves nothing; lengths over the ring are errors.
#[derive(Debug, Clone, Copy)]
enum PktOp {
    Send { server: bool, len: Size },
    RecvNext { server: bool },
    RecvTooLong { server: bool, extra: u8 },
}

fn pkt_op() -> impl Strategy<Value = PktOp> {
    prop_oneof![
        3 => (any::<bool>(), size()).prop_map(|(server, len)| PktOp::Send { server, len }),
        3 => any::<bool>().prop_map(|server| PktOp::RecvNext { server }),
        1 => (any::<bool>(), 1u8..=3).prop_map(|(server, extra)| PktOp::RecvTooLong { server, extra }),
    ]
}

fn packet(id: u32, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    stream().fill(u64::from(id) * 7919, &mut p);
    p
}

fn run_packets(orders: Orders, ops: &[PktOp]) -> Result<(), TestCaseError> {
    let mem = Mem::new(orders);
    let (mut server, mut client) = mem.pair();
    // Per direction ([0] server to client): packets in flight, next id.
    let mut queues: [VecDeque<(u32, usize)>; 2] = [VecDeque::new(), VecDeque::new()];
    let mut next_id = 0u32;
    let mut delivered = 0usize;
    for &op in ops {
        match op {
            PktOp::Send { server: s, len } => {
                let (me, q) = if s {
                    (&mut server, 0)
                } else {
                    (&mut client, 1)
                };
                let ring = me.write_size();
                let inflight: usize = queues[q].iter().map(|p| p.1).sum();
                let n = len.resolve(ring, ring - inflight);
                let p = packet(next_id, n);
                match me.send(&p) {
                    Err(e) => prop_assert_eq!(e, Error::PacketTooLarge { len: n, ring }),
                    Ok(t) => {
                        prop_assert_eq!(n <= ring, true);
                        if n > 0 && n <= ring - inflight {
                            prop_assert_eq!(t.bytes, n);
                            queues[q].push_back((next_id, n));
                            next_id += 1;
                        } else {
                            prop_assert_eq!(t.bytes, 0);
                        }
                    }
                }
            }
            PktOp::RecvNext { server: s } => {
                let (me, q) = if s {
                    (&mut server, 1)
                } else {
                    (&mut client, 0)
                };
                match queues[q].pop_front() {
                    Some((id, len)) => {
                        let mut buf = vec![0u8; len];
                        prop_assert_eq!(me.recv(&mut buf).unwrap().bytes, len);
                        prop_assert!(buf == packet(id, len), "packet {} corrupted", id);
                        delivered += 1;
                    }
                    None => {
                        prop_assert_eq!(me.data_ready(), Ok(0));
                        prop_assert_eq!(me.recv(&mut [0u8; 1]).unwrap().bytes, 0);
                    }
                }
            }
            PktOp::RecvTooLong { server: s, extra } => {
                let (me, q) = if s {
                    (&mut server, 1)
                } else {
                    (&mut client, 0)
                };
                let ring = me.read_size();
                let ready: usize = queues[q].iter().map(|p| p.1).sum();
                prop_assert_eq!(me.data_ready(), Ok(ready));
                let n = ready + usize::from(extra);
                let mut buf = vec![0u8; n];
                let r = me.recv(&mut buf);
                if n > ring {
                    prop_assert_eq!(r, Err(Error::PacketTooLarge { len: n, ring }));
                } else {
                    prop_assert_eq!(r.unwrap().bytes, 0);
                }
                prop_assert_eq!(me.data_ready(), Ok(ready), "a failed recv consumed data");
            }
        }
    }
    // Drain: everything still queued arrives whole.
    for (q, me) in [(0, &mut client), (1, &mut server)] {
        while let Some((id, len)) = queues[q].pop_front() {
            let mut buf = vec![0u8; len];
            prop_assert_eq!(me.recv(&mut buf).unwrap().bytes, len);
            prop_assert!(buf == packet(id, len), "packet {} corrupted", id);
            delivered += 1;
        }
        prop_assert_eq!(me.data_ready(), Ok(0));
    }
    prop_assert_eq!(delivered, next_id as usize);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn packets_arrive_whole(pair in 0..pairs().len(), ops in proptest::collection::vec(pkt_op(), 1..80)) {
        run_packets(pairs()[pair], &ops)?;
    }
}

/// A fixed sequence on every one of the 119 valid pairs (not only the
/// representative set above).
#[test]
fn every_valid_order_pair() {
    let all: Vec<u16> = (10..=20).collect();
    let pairs = valid_pairs(&all);
    assert_eq!(pairs.len(), 11 * 11 - 2);
    let mut ops = Vec::new();
    for i in 0..24u8 {
        let s = i % 2 == 0;
        let op = |server, kind, size| Op { server, kind, size };
        ops.extend([
            op(s, Kind::Write, Size::Frac(37 + i)),
            op(!s, Kind::Send, Size::Fit(i as i8 % 3 - 1)),
            op(s, Kind::ArmSpace, Size::NearRing(0)),
            op(!s, Kind::Read, Size::Frac(50)),
            op(s, Kind::Recv, Size::Small(u16::from(i) * 3)),
            op(!s, Kind::PeekConsume, Size::Fit(0)),
            op(s, Kind::ArmData, Size::Small(1)),
            op(s, Kind::Read, Size::NearRing(2)),
        ]);
    }
    for orders in pairs {
        for segs in [(0, 0), (1, 7), (1024, 4096)] {
            run(orders, segs, &ops).unwrap_or_else(|e| panic!("{orders:?} {segs:?}: {e}"));
        }
    }
}

/// Free-running u32 indices wrap around: bring a server's indices close to
/// 2^32 (reading by `consume` of bytes the test "produces" by moving the
/// client's `prod`, writing by real writes the test "consumes" by moving
/// the client's `cons`), then connect a client, which starts from the
/// indices in the page, and run operations across the wrap.
#[test]
fn indices_wrap_around() {
    for (l, r, ops) in [(10, 11, 3000), (20, 20, 300)] {
        let orders = Orders::validate(l, r).unwrap();
        let mem = Mem::new(orders);
        let page = mem.page();
        vchan_core::init_server_page(&page, orders);
        let mut server =
            Ch::server(page, orders, mem.ring(Side::Left), mem.ring(Side::Right)).unwrap();
        let (lsize, rsize) = (1u64 << l, 1u64 << r);
        // Stop a few rings short of the wrap, at an odd offset.
        let target = |size: u64| (1u64 << 32) - 3 * size - 7;
        let mut cons = 0u64;
        while cons < target(lsize) {
            let n = (target(lsize) - cons).min(lsize);
            mem.poke_u32(LEFT_PROD, (cons + n) as u32);
            assert_eq!(server.consume(n as usize).unwrap().bytes, n as usize);
            cons += n;
        }
        let zeros = vec![0u8; rsize as usize];
        let mut prod = 0u64;
        while prod < target(rsize) {
            let n = (target(rsize) - prod).min(rsize) as usize;
            assert_eq!(server.write(&zeros[..n]).unwrap().bytes, n);
            prod += n as u64;
            mem.poke_u32(RIGHT_CONS, prod as u32);
        }
        assert_eq!(mem.peek_u32(LEFT_CONS), target(lsize) as u32);
        assert_eq!(mem.peek_u32(RIGHT_PROD), target(rsize) as u32);
        let mut client = Ch::client(
            page,
            vchan_core::read_orders(&page).unwrap(),
            mem.ring(Side::Right),
            mem.ring(Side::Left),
        )
        .unwrap();
        let mut model = Model::from_page(&mem);
        model.check(&mem, &server, &client).unwrap();
        let mut rng = Rng(0x5EED ^ (u64::from(l) << 8) ^ u64::from(r));
        let kinds = [
            Kind::Write,
            Kind::Send,
            Kind::Read,
            Kind::Recv,
            Kind::PeekConsume,
            Kind::ArmData,
            Kind::ArmSpace,
        ];
        for _ in 0..ops {
            let size = match rng.below(3) {
                0 => Size::Frac(rng.below(129) as u8),
                1 => Size::Fit(rng.below(5) as i8 - 2),
                _ => Size::Small(rng.below(81) as u16),
            };
            let op = Op {
                server: rng.below(2) == 0,
                kind: kinds[rng.below(kinds.len() as u64) as usize],
                size,
            };
            apply(op, &mut model, &mut server, &mut client).unwrap();
            model.check(&mem, &server, &client).unwrap();
        }
        for d in model.dirs {
            assert!(
                u64::from(d.base) + d.sent > 1 << 32,
                "{l}/{r}: the test did not cross the wrap: {d:?}"
            );
        }
    }
}

/// Moves `total` bytes each way at once between two threads, checking
/// every byte; `idle` runs when the thread could make no progress.
fn pump(
    mut ch: Ch,
    total: u64,
    abort: &AtomicBool,
    mut idle: impl FnMut(&mut Ch, Transfer, bool, bool),
) -> (u64, u64) {
    let _guard = AbortOnPanic(abort);
    let (mut sent, mut got) = (0u64, 0u64);
    let mut out = vec![0u8; 70_001];
    let mut inb = vec![0u8; 50_003];
    while sent < total || got < total {
        assert!(
            !abort.load(Relaxed),
            "{:?}: stopping, the other thread failed",
            ch.role()
        );
        let mut moved = Transfer {
            bytes: 0,
            notify: false,
        };
        if sent < total {
            // Odd, varying chunk sizes.
            let n = ((total - sent) as usize).min(out.len() - (sent % 4099) as usize);
            stream().fill(sent, &mut out[..n]);
            let t = ch.write(&out[..n]).unwrap();
            sent += t.bytes as u64;
            moved.bytes += t.bytes;
            moved.notify |= t.notify;
        }
        if got < total {
            let t = ch.read(&mut inb).unwrap();
            if let Some(i) = stream().mismatch(got, &inb[..t.bytes]) {
                panic!("{:?}: stream byte {} corrupted", ch.role(), got + i as u64);
            }
            got += t.bytes as u64;
            moved.bytes += t.bytes;
            moved.notify |= t.notify;
        }
        idle(&mut ch, moved, sent < total, got < total);
    }
    (sent, got)
}

/// Set when a thread of a two-thread test panics, so that the other one
/// stops instead of waiting forever for a peer that is gone.
struct AbortOnPanic<'a>(&'a AtomicBool);

impl Drop for AbortOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Relaxed);
        }
    }
}

/// Two threads move 16 MiB each way at once, spinning (with a yield) when
/// blocked.
#[test]
fn two_threads_both_ways_spinning() {
    const TOTAL: u64 = 16 << 20;
    for (l, r) in [(10, 11), (12, 12), (16, 20), (20, 13)] {
        let orders = Orders::validate(l, r).unwrap();
        let mem = Mem::new(orders);
        let (mut server, mut client) = mem.pair();
        // Odd publish granularities, so segments straddle the ring's end.
        server.set_segments(777, 1333);
        client.set_segments(333, 4097);
        let spin = |_: &mut Ch, t: Transfer, _: bool, _: bool| {
            if t.bytes == 0 {
                std::thread::yield_now();
            }
        };
        let abort = AtomicBool::new(false);
        std::thread::scope(|s| {
            let t = s.spawn(|| pump(client, TOTAL, &abort, spin));
            assert_eq!(pump(server, TOTAL, &abort, spin), (TOTAL, TOTAL));
            assert_eq!(t.join().unwrap(), (TOTAL, TOTAL));
        });
        assert!(mem.guards_intact());
    }
}

/// An event channel between the two threads: a pending flag per endpoint.
#[derive(Default)]
struct Event {
    pending: Mutex<bool>,
    cv: Condvar,
}

impl Event {
    fn signal(&self) {
        *self.pending.lock().unwrap() = true;
        self.cv.notify_one();
    }
    /// Sleep until signalled; false on a (generous) timeout, which means a
    /// lost wake-up. Gives up early when `abort` is set.
    fn wait(&self, abort: &AtomicBool) -> bool {
        let mut g = self.pending.lock().unwrap();
        for _ in 0..200 {
            if *g || abort.load(Relaxed) {
                break;
            }
            g = self
                .cv
                .wait_timeout(g, Duration::from_millis(50))
                .unwrap()
                .0;
        }
        std::mem::replace(&mut *g, false)
    }
}

/// The notify protocol end to end on real atomics: both threads *sleep*
/// when blocked (after the `*_or_arm` re-checks) and rely solely on
/// `Transfer::notify` to be woken. A lost wake-up shows as a timeout.
#[test]
fn two_threads_event_driven() {
    const TOTAL: u64 = 4 << 20;
    let sleeps = AtomicU64::new(0);
    for (l, r) in [(10, 11), (11, 10), (12, 13)] {
        let orders = Orders::validate(l, r).unwrap();
        let mem = Mem::new(orders);
        let (mut server, mut client) = mem.pair();
        // Pipelined copies whose segments straddle the ring's end.
        server.set_segments(300, 700);
        client.set_segments(513, 129);
        let events = [Event::default(), Event::default()]; // [server, client]
        let abort = AtomicBool::new(false);
        let run = |ch: Ch, me: usize| {
            let (mine, peer) = (&events[me], &events[1 - me]);
            pump(ch, TOTAL, &abort, |ch, t, want_space, want_data| {
                if t.notify {
                    peer.signal();
                }
                if t.bytes > 0 {
                    return;
                }
                // Arm for what we wait on, re-check, and only then sleep.
                let space = want_space && ch.buffer_space_or_arm(1).unwrap() > 0;
                let data = want_data && ch.data_ready_or_arm(1).unwrap() > 0;
                if !space && !data {
                    sleeps.fetch_add(1, Relaxed);
                    assert!(
                        mine.wait(&abort) || abort.load(Relaxed),
                        "lost wake-up: the {:?} slept 10 s",
                        ch.role()
                    );
                }
            })
        };
        std::thread::scope(|s| {
            let t = s.spawn(|| run(client, 1));
            assert_eq!(run(server, 0), (TOTAL, TOTAL));
            assert_eq!(t.join().unwrap(), (TOTAL, TOTAL));
        });
    }
    // The sleeping path really ran (12 MiB through rings of a few KiB).
    assert!(sleeps.into_inner() > 0, "nobody ever slept");
}

/// Zero-copy writes: bytes put into `free_span` and published with
/// `produce` come out of `read` in order, across the ring's end, for every
/// order pair; `produce` refuses more than the span; the connect-time
/// request is answered by the first publication only.
#[test]
fn free_span_and_produce_round_trip() {
    for orders in pairs() {
        let mem = Mem::new(orders);
        let (mut server, mut client) = mem.pair();
        let ring = server.write_size();
        let total = 5 * ring as u64 + 123;
        let (mut sent, mut got, mut notifies) = (0u64, 0u64, 0);
        let mut inb = vec![0u8; 3001];
        while got < total {
            let span = server.free_span().unwrap();
            assert!(span.offset + span.len <= ring);
            assert_eq!(
                server.produce(span.len + 1),
                Err(Error::ProduceTooMuch {
                    requested: span.len + 1,
                    available: span.len
                })
            );
            let n = span.len.min(1777).min((total - sent) as usize);
            if n > 0 {
                let mut chunk = vec![0u8; n];
                stream().fill(sent, &mut chunk);
                server.write_ring().write_at(span.offset, &chunk);
                let t = server.produce(n).unwrap();
                assert_eq!(t.bytes, n);
                notifies += usize::from(t.notify);
                sent += n as u64;
            }
            let t = client.read(&mut inb).unwrap();
            assert_eq!(stream().mismatch(got, &inb[..t.bytes]), None, "{orders:?}");
            got += t.bytes as u64;
        }
        assert_eq!(notifies, 1, "{orders:?}: only the connect-time request");
        assert!(mem.guards_intact());
    }
}
