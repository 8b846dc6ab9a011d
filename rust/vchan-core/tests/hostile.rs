//! A hostile peer. One endpoint is under test; the test plays its peer by
//! writing arbitrary values into every byte of the page the peer can reach
//! (its indices, the orders, live and notify bytes, grants, even our own
//! indices) and into the ring it produces, between our operations.
//!
//! For every operation an exact oracle, computed from the page as the
//! endpoint will find it and from the endpoint's private indices, predicts
//! the result: counts, errors (impossible indices must be protocol
//! violations), the bytes read, and the *whole* memory afterwards (page,
//! both rings, guard zones), so any write outside what the operation may
//! touch is caught. Operations that are fine keep working throughout.

mod common;

use common::{Ch, Mem, Side};
use proptest::prelude::*;
use vchan_core::layout::*;
use vchan_core::{read_orders, Error, LiveState, Orders, Role, Span, Transfer};

/// A value for one of the peer's indices, relative to ours so that the
/// boundaries (empty, full, one past full, behind) come up often.
#[derive(Debug, Clone, Copy)]
enum IndexValue {
    Any(u32),
    /// Our index plus this delta (in units of bytes).
    Near(i64),
    /// Our index plus the ring size plus this delta.
    NearFull(i8),
}

fn index_value() -> impl Strategy<Value = IndexValue> {
    prop_oneof![
        any::<u32>().prop_map(IndexValue::Any),
        (-3i64..5000).prop_map(IndexValue::Near),
        (-3i8..=3).prop_map(IndexValue::NearFull),
        Just(IndexValue::Any(u32::MAX)),
        Just(IndexValue::Any(1 << 31)),
    ]
}

#[derive(Debug, Clone, Copy)]
enum Step {
    /// Any byte of the header and the first grant refs.
    PokeByte(usize, u8),
    /// The peer's prod on the ring we read, relative to our cons.
    PokePeerProd(IndexValue),
    /// The peer's cons on the ring we write, relative to our prod
    /// (negated: `Near(d)` means our prod minus d).
    PokePeerCons(IndexValue),
    /// Our own index fields in the page (the peer may scribble there too).
    PokeOurIndex(bool, u32),
    /// One of the four live/notify bytes.
    PokeFlag(usize, u8),
    /// The peer fills bytes of the ring we read.
    PokeRing(usize, u8),
    Write(usize),
    Send(usize),
    Read(usize),
    Recv(usize),
    Peek,
    Consume(usize),
    ArmData(usize),
    ArmSpace(usize),
    State,
}

fn step() -> impl Strategy<Value = Step> {
    let n = || prop_oneof![0usize..64, 0usize..9000];
    prop_oneof![
        2 => (0usize..GRANTS + 64, any::<u8>()).prop_map(|(o, v)| Step::PokeByte(o, v)),
        3 => index_value().prop_map(Step::PokePeerProd),
        3 => index_value().prop_map(Step::PokePeerCons),
        1 => (any::<bool>(), any::<u32>()).prop_map(|(w, v)| Step::PokeOurIndex(w, v)),
        2 => (0usize..4, prop_oneof![0u8..4, any::<u8>()]).prop_map(|(i, v)| Step::PokeFlag(CLI_LIVE + i, v)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, v)| Step::PokeRing(i, v)),
        2 => n().prop_map(Step::Write),
        2 => n().prop_map(Step::Send),
        2 => n().prop_map(Step::Read),
        2 => n().prop_map(Step::Recv),
        1 => Just(Step::Peek),
        2 => n().prop_map(Step::Consume),
        1 => n().prop_map(Step::ArmData),
        1 => n().prop_map(Step::ArmSpace),
        1 => Just(Step::State),
    ]
}

/// Page offsets and sides for the endpoint under test.
struct Fields {
    rd: Side,
    wr: Side,
    /// Offsets of our cons (read ring) and the peer's prod on it.
    rd_cons: usize,
    rd_prod: usize,
    /// Offsets of the peer's cons on our write ring and our prod.
    wr_cons: usize,
    wr_prod: usize,
    /// The notify byte we act on, and the peer's.
    my_notify: usize,
    peer_notify: usize,
    peer_live: usize,
}

impl Fields {
    fn of(role: Role) -> Fields {
        match role {
            Role::Server => Fields {
                rd: Side::Left,
                wr: Side::Right,
                rd_cons: LEFT_CONS,
                rd_prod: LEFT_PROD,
                wr_cons: RIGHT_CONS,
                wr_prod: RIGHT_PROD,
                my_notify: SRV_NOTIFY,
                peer_notify: CLI_NOTIFY,
                peer_live: CLI_LIVE,
            },
            Role::Client => Fields {
                rd: Side::Right,
                wr: Side::Left,
                rd_cons: RIGHT_CONS,
                rd_prod: RIGHT_PROD,
                wr_cons: LEFT_CONS,
                wr_prod: LEFT_PROD,
                my_notify: CLI_NOTIFY,
                peer_notify: SRV_NOTIFY,
                peer_live: SRV_LIVE,
            },
        }
    }
}

/// The endpoint under test, the memory, and the oracle's knowledge of the
/// endpoint's private state.
struct Harness {
    mem: Mem,
    me: Ch,
    f: Fields,
    rsize: usize,
    wsize: usize,
    /// The endpoint's private indices, as the oracle tracks them.
    cons: u32,
    prod: u32,
    /// The peer's indices as the endpoint last loaded them (its cache:
    /// reads and writes look at the page only when these fall short).
    prod_seen: u32,
    cons_seen: u32,
}

/// How an operation may change memory: our index, our notify byte, the
/// peer's notify byte, and bytes of the write ring.
#[derive(Default)]
struct Effects {
    rd_cons: Option<u32>,
    wr_prod: Option<u32>,
    clear_my_notify: u8,
    set_peer_notify: u8,
    written: Vec<(usize, u8)>,
}

impl Harness {
    fn new(orders: Orders, role: Role) -> Harness {
        let mem = Mem::new(orders);
        let (server, client) = mem.pair();
        let me = match role {
            Role::Server => server,
            Role::Client => client,
        };
        let f = Fields::of(role);
        Harness {
            rsize: mem.ring_size(f.rd),
            wsize: mem.ring_size(f.wr),
            cons: mem.peek_u32(f.rd_cons),
            prod: mem.peek_u32(f.wr_prod),
            prod_seen: mem.peek_u32(f.rd_cons),
            cons_seen: mem
                .peek_u32(f.wr_prod)
                .wrapping_sub(mem.ring_size(f.wr) as u32),
            mem,
            me,
            f,
        }
    }

    /// Expected `data_ready()` given the page now.
    fn ready(&self) -> Result<usize, Error> {
        let prod = self.mem.peek_u32(self.f.rd_prod);
        let ready = prod.wrapping_sub(self.cons);
        if ready as usize > self.rsize {
            Err(Error::ReadIndices {
                prod,
                cons: self.cons,
                size: self.rsize as u32,
            })
        } else {
            Ok(ready as usize)
        }
    }

    /// Expected bytes readable for a read or receive of `want`: what the
    /// cached `prod` covers if enough, else the page's (cached if valid).
    fn ready_for(&mut self, want: usize) -> Result<usize, Error> {
        let known = self.prod_seen.wrapping_sub(self.cons) as usize;
        if known >= want {
            return Ok(known);
        }
        self.page_ready()
    }

    /// Expected `data_ready()`, the cache refreshed when valid.
    fn page_ready(&mut self) -> Result<usize, Error> {
        let r = self.ready();
        if r.is_ok() {
            self.prod_seen = self.mem.peek_u32(self.f.rd_prod);
        }
        r
    }

    /// Expected space for a write or send of `want`, as `ready_for`.
    fn space_for(&mut self, want: usize) -> Result<usize, Error> {
        let known = self.wsize - self.prod.wrapping_sub(self.cons_seen) as usize;
        if known >= want {
            return Ok(known);
        }
        self.page_space()
    }

    /// Expected `buffer_space()`, the cache refreshed when valid.
    fn page_space(&mut self) -> Result<usize, Error> {
        let r = self.space();
        if r.is_ok() {
            self.cons_seen = self.mem.peek_u32(self.f.wr_cons);
        }
        r
    }

    /// Expected `buffer_space()` given the page now.
    fn space(&self) -> Result<usize, Error> {
        let cons = self.mem.peek_u32(self.f.wr_cons);
        let used = self.prod.wrapping_sub(cons);
        if used as usize > self.wsize {
            Err(Error::WriteIndices {
                prod: self.prod,
                cons,
                size: self.wsize as u32,
            })
        } else {
            Ok(self.wsize - used as usize)
        }
    }

    fn poke(&mut self, s: Step) {
        let m = &self.mem;
        match s {
            Step::PokeByte(off, v) => m.poke_u8(off, v),
            Step::PokePeerProd(v) => {
                let v = match v {
                    IndexValue::Any(x) => x,
                    IndexValue::Near(d) => self.cons.wrapping_add(d as u32),
                    IndexValue::NearFull(d) => self
                        .cons
                        .wrapping_add(self.rsize as u32)
                        .wrapping_add(d as u32),
                };
                m.poke_u32(self.f.rd_prod, v);
            }
            Step::PokePeerCons(v) => {
                let v = match v {
                    IndexValue::Any(x) => x,
                    IndexValue::Near(d) => self.prod.wrapping_sub(d as u32),
                    IndexValue::NearFull(d) => self
                        .prod
                        .wrapping_sub(self.wsize as u32)
                        .wrapping_add(d as u32),
                };
                m.poke_u32(self.f.wr_cons, v);
            }
            Step::PokeOurIndex(w, v) => {
                m.poke_u32(if w { self.f.wr_prod } else { self.f.rd_cons }, v)
            }
            Step::PokeFlag(off, v) => m.poke_u8(off, v),
            Step::PokeRing(i, v) => m.set_ring_byte(self.f.rd, i % self.rsize, v),
            _ => unreachable!(),
        }
    }

    /// Run one operation of the endpoint and check it against the oracle.
    fn op(&mut self, s: Step) -> Result<(), TestCaseError> {
        let before = self.mem.snapshot();
        // A transfer's `notify` reports the bit in our notify byte as the
        // peer left it before the call.
        let my_notify = self.f.my_notify;
        let asked = |bit: u8| before[my_notify] & bit != 0;
        let ready = self.ready();
        let space = self.space();
        let mut fx = Effects::default();
        let mut data = vec![0u8; 9000];
        let rd_pos = |h: &Harness, i: usize| (h.cons as usize + i) & (h.rsize - 1);
        // Expected bytes read: what the ring holds at our cons.
        let expect_read = |h: &Harness, n: usize| -> Vec<u8> {
            (0..n)
                .map(|i| h.mem.ring_byte(h.f.rd, rd_pos(h, i)))
                .collect()
        };
        match s {
            Step::Write(n) | Step::Send(n) => {
                let space = match s {
                    Step::Send(_) if n > self.wsize => space,
                    _ => self.space_for(n),
                };
                let src: Vec<u8> = (0..n)
                    .map(|i| (i as u8) ^ 0x5A ^ (self.prod as u8))
                    .collect();
                let r = if let Step::Write(_) = s {
                    self.me.write(&src)
                } else {
                    self.me.send(&src)
                };
                let want: Result<usize, Error> = match (s, space) {
                    (Step::Send(_), _) if n > self.wsize => Err(Error::PacketTooLarge {
                        len: n,
                        ring: self.wsize,
                    }),
                    (_, Err(e)) => Err(e),
                    (Step::Write(_), Ok(sp)) => Ok(n.min(sp)),
                    (_, Ok(sp)) => Ok(if n <= sp { n } else { 0 }),
                };
                let k = expect_transfer(r, want, asked(NOTIFY_WRITE))?;
                if k > 0 {
                    for (i, &b) in src[..k].iter().enumerate() {
                        let pos = (self.prod as usize + i) & (self.wsize - 1);
                        fx.written.push((pos, b));
                    }
                    self.prod = self.prod.wrapping_add(k as u32);
                    fx.wr_prod = Some(self.prod);
                    fx.clear_my_notify = NOTIFY_WRITE;
                }
            }
            Step::Read(n) | Step::Recv(n) => {
                let ready = match s {
                    Step::Recv(_) if n > self.rsize => ready,
                    _ => self.ready_for(n),
                };
                let expected = ready.map(|r| expect_read(self, r.min(n)));
                let r = if let Step::Read(_) = s {
                    self.me.read(&mut data[..n])
                } else {
                    self.me.recv(&mut data[..n])
                };
                let want: Result<usize, Error> = match (s, ready) {
                    (Step::Recv(_), _) if n > self.rsize => Err(Error::PacketTooLarge {
                        len: n,
                        ring: self.rsize,
                    }),
                    (_, Err(e)) => Err(e),
                    (Step::Read(_), Ok(rd)) => Ok(n.min(rd)),
                    (_, Ok(rd)) => Ok(if n <= rd { n } else { 0 }),
                };
                let k = expect_transfer(r, want, asked(NOTIFY_READ))?;
                if k > 0 {
                    prop_assert!(data[..k] == expected.unwrap()[..k], "read the wrong bytes");
                    self.cons = self.cons.wrapping_add(k as u32);
                    fx.rd_cons = Some(self.cons);
                    fx.clear_my_notify = NOTIFY_READ;
                }
                prop_assert!(data[k..n].iter().all(|&b| b == 0), "wrote past the count");
            }
            Step::Peek => {
                let r = self.me.peek();
                match ready {
                    Err(e) => {
                        prop_assert_eq!(r, Err(e));
                        prop_assert!(e.is_protocol_violation());
                    }
                    Ok(rd) => {
                        let offset = rd_pos(self, 0);
                        prop_assert_eq!(
                            r,
                            Ok(Span {
                                offset,
                                len: rd.min(self.rsize - offset)
                            })
                        );
                    }
                }
            }
            Step::Consume(n) => {
                let ready = self.page_ready();
                let r = self.me.consume(n);
                let want = match ready {
                    Err(e) => Err(e),
                    Ok(rd) if n > rd => Err(Error::ConsumeTooMuch {
                        requested: n,
                        available: rd,
                    }),
                    Ok(_) => Ok(n),
                };
                let k = expect_transfer(r, want, asked(NOTIFY_READ))?;
                if k > 0 {
                    self.cons = self.cons.wrapping_add(k as u32);
                    fx.rd_cons = Some(self.cons);
                    fx.clear_my_notify = NOTIFY_READ;
                }
            }
            Step::ArmData(want) => {
                let r = self.me.data_ready_or_arm(want);
                prop_assert_eq!(r, ready);
                if matches!(ready, Ok(rd) if rd < want) {
                    fx.set_peer_notify = NOTIFY_WRITE;
                }
                if let Err(e) = r {
                    prop_assert!(e.is_protocol_violation());
                }
            }
            Step::ArmSpace(want) => {
                let r = self.me.buffer_space_or_arm(want);
                prop_assert_eq!(r, space);
                if matches!(space, Ok(sp) if sp < want) {
                    fx.set_peer_notify = NOTIFY_READ;
                }
                if let Err(e) = r {
                    prop_assert!(e.is_protocol_violation());
                }
            }
            Step::State => {
                let b = self.mem.peek_u8(self.f.peer_live);
                let want = match b {
                    0 => Ok(LiveState::Exited),
                    1 => Ok(LiveState::Connected),
                    2 => Ok(LiveState::Waiting),
                    v => Err(Error::BadLiveState(v)),
                };
                let r = self.me.peer_state();
                prop_assert_eq!(r, want);
                if let Err(e) = r {
                    prop_assert!(e.is_protocol_violation());
                }
            }
            _ => unreachable!(),
        }
        // The whole memory is as predicted.
        let mut want = before;
        let put32 = |want: &mut Vec<u8>, off: usize, v: u32| {
            want[off..off + 4].copy_from_slice(&v.to_le_bytes());
        };
        if let Some(v) = fx.rd_cons {
            put32(&mut want, self.f.rd_cons, v);
        }
        if let Some(v) = fx.wr_prod {
            put32(&mut want, self.f.wr_prod, v);
        }
        want[self.f.my_notify] &= !fx.clear_my_notify;
        want[self.f.peer_notify] |= fx.set_peer_notify;
        for &(pos, b) in &fx.written {
            want[self.mem.snapshot_index(self.f.wr, pos)] = b;
        }
        let now = self.mem.snapshot();
        if now != want {
            let i = (0..now.len()).find(|&i| now[i] != want[i]).unwrap();
            prop_assert!(
                false,
                "{:?}: memory byte {} is {}, expected {}",
                s,
                i,
                now[i],
                want[i]
            );
        }
        // Orders are private, whatever the page says now.
        prop_assert_eq!(
            (self.me.read_size(), self.me.write_size()),
            (self.rsize, self.wsize)
        );
        Ok(())
    }

    /// After any abuse, restore sane peer indices: the endpoint works.
    fn recover(&mut self) -> Result<(), TestCaseError> {
        // The peer has produced 5 bytes and consumed everything.
        for i in 0..5usize {
            self.mem.set_ring_byte(
                self.f.rd,
                (self.cons as usize + i) & (self.rsize - 1),
                0xC0 + i as u8,
            );
        }
        self.mem.poke_u32(self.f.rd_prod, self.cons.wrapping_add(5));
        self.mem.poke_u32(self.f.wr_cons, self.prod);
        prop_assert_eq!(self.me.data_ready(), Ok(5));
        prop_assert_eq!(self.me.buffer_space(), Ok(self.wsize));
        // What a read of 5 bytes gets (its cached `prod` may cover more:
        // the peer moved its index back).
        let n = self.ready_for(5).unwrap().min(5);
        let mut b = [0u8; 5];
        prop_assert_eq!(self.me.read(&mut b).unwrap().bytes, n);
        prop_assert_eq!(n, 5);
        prop_assert_eq!(&b[..5], &[0xC0, 0xC1, 0xC2, 0xC3, 0xC4]);
        self.cons = self.cons.wrapping_add(5);
        prop_assert_eq!(self.space_for(self.wsize), Ok(self.wsize));
        let src = vec![0x77u8; self.wsize];
        prop_assert_eq!(self.me.write(&src).unwrap().bytes, self.wsize);
        self.prod = self.prod.wrapping_add(self.wsize as u32);
        prop_assert_eq!(self.mem.peek_u32(self.f.wr_prod), self.prod);
        prop_assert_eq!(self.mem.peek_u32(self.f.rd_cons), self.cons);
        prop_assert_eq!(self.me.buffer_space(), Ok(0));
        prop_assert!(self.mem.guards_intact());
        Ok(())
    }
}

/// Check a transfer against the expected byte count or error, and its
/// `notify` against what the peer asked for; returns the bytes moved.
fn expect_transfer(
    got: Result<Transfer, Error>,
    want: Result<usize, Error>,
    asked: bool,
) -> Result<usize, TestCaseError> {
    match want {
        Err(e) => {
            prop_assert_eq!(got, Err(e));
            // Only a broken peer causes these; the rest are caller errors.
            prop_assert_eq!(
                e.is_protocol_violation(),
                !matches!(
                    e,
                    Error::PacketTooLarge { .. } | Error::ConsumeTooMuch { .. }
                )
            );
            Ok(0)
        }
        Ok(n) => {
            let notify = n > 0 && asked;
            prop_assert_eq!(got, Ok(Transfer { bytes: n, notify }));
            Ok(n)
        }
    }
}

fn run(orders: Orders, role: Role, steps: &[Step]) -> Result<(), TestCaseError> {
    let mut h = Harness::new(orders, role);
    for &s in steps {
        match s {
            Step::PokeByte(..)
            | Step::PokePeerProd(_)
            | Step::PokePeerCons(_)
            | Step::PokeOurIndex(..)
            | Step::PokeFlag(..)
            | Step::PokeRing(..) => h.poke(s),
            _ => h.op(s)?,
        }
    }
    h.recover()
}

fn pair_and_role() -> impl Strategy<Value = (Orders, Role)> {
    let pairs = [(10, 11), (11, 10), (12, 13), (13, 12), (10, 12), (12, 11)];
    (0..pairs.len(), any::<bool>()).prop_map(move |(i, server)| {
        let (l, r) = pairs[i];
        (
            Orders::validate(l, r).unwrap(),
            if server { Role::Server } else { Role::Client },
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
    #[test]
    fn scribbling_peer((orders, role) in pair_and_role(), steps in proptest::collection::vec(step(), 1..100)) {
        run(orders, role, &steps)?;
    }
}

#[test]
fn peer_prod_one_past_full_is_a_read_violation() {
    for role in [Role::Server, Role::Client] {
        let mut h = Harness::new(Orders::validate(12, 12).unwrap(), role);
        let size = 4096u32;
        h.mem.poke_u32(h.f.rd_prod, size + 1);
        let e = Error::ReadIndices {
            prod: size + 1,
            cons: 0,
            size,
        };
        assert!(e.is_protocol_violation());
        assert_eq!(h.me.data_ready(), Err(e));
        assert_eq!(h.me.read(&mut [0; 8]), Err(e));
        assert_eq!(h.me.recv(&mut [0; 8]), Err(e));
        assert_eq!(h.me.peek(), Err(e));
        assert_eq!(h.me.consume(0), Err(e));
        assert_eq!(h.me.data_ready_or_arm(1), Err(e));
        // Behind our cons is just as impossible.
        h.mem.poke_u32(h.f.rd_prod, u32::MAX);
        assert!(matches!(
            h.me.data_ready(),
            Err(Error::ReadIndices { prod: u32::MAX, .. })
        ));
        // Exactly full is fine, and the endpoint keeps working.
        h.mem.poke_u32(h.f.rd_prod, size);
        assert_eq!(h.me.data_ready(), Ok(4096));
        assert_eq!(h.me.read(&mut [0; 100]).unwrap().bytes, 100);
        assert_eq!(h.me.data_ready(), Ok(3996));
    }
}

#[test]
fn peer_cons_ahead_of_our_prod_is_a_write_violation() {
    for role in [Role::Server, Role::Client] {
        let mut h = Harness::new(Orders::validate(12, 13).unwrap(), role);
        let size = h.wsize as u32;
        h.mem.poke_u32(h.f.wr_cons, 1);
        let e = Error::WriteIndices {
            prod: 0,
            cons: 1,
            size,
        };
        assert!(e.is_protocol_violation());
        assert_eq!(h.me.buffer_space(), Err(e));
        assert_eq!(h.me.write(b"x"), Err(e));
        assert_eq!(h.me.send(b"x"), Err(e));
        assert_eq!(h.me.buffer_space_or_arm(1), Err(e));
        // More than a ring behind our prod is impossible too.
        h.mem.poke_u32(h.f.wr_cons, 0);
        assert_eq!(h.me.write(&[1; 100]).unwrap().bytes, 100);
        h.mem.poke_u32(h.f.wr_cons, 100u32.wrapping_sub(size + 1));
        assert!(matches!(
            h.me.buffer_space(),
            Err(Error::WriteIndices { prod: 100, .. })
        ));
        // A peer rewriting *our* prod in the page does not fool us.
        h.mem.poke_u32(h.f.wr_cons, 0);
        h.mem.poke_u32(h.f.wr_prod, 0);
        assert_eq!(h.me.buffer_space(), Ok(h.wsize - 100));
        assert_eq!(h.me.write(&[2; 10]).unwrap().bytes, 10);
        assert_eq!(h.mem.peek_u32(h.f.wr_prod), 110);
    }
}

#[test]
fn bad_live_byte() {
    let orders = Orders::validate(10, 11).unwrap();
    let mem = Mem::new(orders);
    let (server, client) = mem.pair();
    assert_eq!(server.peer_state(), Ok(LiveState::Connected));
    assert_eq!(client.peer_state(), Ok(LiveState::Connected));
    mem.poke_u8(CLI_LIVE, 7);
    assert_eq!(server.peer_state(), Err(Error::BadLiveState(7)));
    assert!(server.peer_state().unwrap_err().is_protocol_violation());
    mem.poke_u8(SRV_LIVE, 255);
    assert_eq!(client.peer_state(), Err(Error::BadLiveState(255)));
    for (b, s) in [
        (0, LiveState::Exited),
        (1, LiveState::Connected),
        (2, LiveState::Waiting),
    ] {
        mem.poke_u8(CLI_LIVE, b);
        assert_eq!(server.peer_state(), Ok(s));
        assert_eq!(LiveState::from_byte(b), Ok(s));
        assert_eq!(s.to_byte(), b);
    }
    for b in 3..=255 {
        assert_eq!(LiveState::from_byte(b), Err(Error::BadLiveState(b)));
    }
}

#[test]
fn read_orders_rejects_bad_pages() {
    let orders = Orders::validate(10, 11).unwrap();
    let mem = Mem::new(orders);
    let (_server, _client) = mem.pair();
    let page = mem.page();
    for (l, r) in [
        (9u16, 11u16),
        (11, 9),
        (21, 12),
        (12, 21),
        (10, 10),
        (11, 11),
        (0, 0),
        (300, 12),
        (10 + 256, 11),
        (u16::MAX, u16::MAX),
    ] {
        mem.poke_u16(LEFT_ORDER, l);
        mem.poke_u16(RIGHT_ORDER, r);
        let e = read_orders(&page).unwrap_err();
        assert_eq!(e, Error::BadOrders { left: l, right: r });
        assert!(e.is_protocol_violation());
    }
    for (l, r) in [(10, 11), (11, 10), (12, 12), (20, 20), (10, 20)] {
        mem.poke_u16(LEFT_ORDER, l);
        mem.poke_u16(RIGHT_ORDER, r);
        let o = read_orders(&page).unwrap();
        assert_eq!((u16::from(o.left()), u16::from(o.right())), (l, r));
    }
}

/// A client connecting to a page whose indices are garbage takes them as
/// its own starting point, and reports impossible peer indices as errors
/// rather than trusting them.
#[test]
fn client_on_a_garbage_page() {
    let orders = Orders::validate(12, 11).unwrap();
    let mem = Mem::new(orders);
    let (_server, _client) = mem.pair();
    mem.poke_u32(RIGHT_CONS, 0xDEAD_BEEF);
    mem.poke_u32(RIGHT_PROD, 0x1234_5678);
    mem.poke_u32(LEFT_CONS, 77);
    mem.poke_u32(LEFT_PROD, 77 + 4096);
    let client = Ch::client(
        mem.page(),
        orders,
        mem.ring(Side::Right),
        mem.ring(Side::Left),
    )
    .unwrap();
    assert!(matches!(
        client.data_ready(),
        Err(Error::ReadIndices { .. })
    ));
    assert_eq!(client.buffer_space(), Ok(0));
    assert_eq!(mem.peek_u8(CLI_LIVE), LIVE_CONNECTED);
    assert_eq!(mem.peek_u8(SRV_NOTIFY), NOTIFY_WRITE);
}
