//! Model checking of the notify protocol with loom: the very `Channel`
//! code runs over loom's atomics (through the `SharedPage` and `RingMem`
//! traits), and loom explores every interleaving and every weak-memory
//! outcome it allows.
//!
//! Property (no lost wake-up): a side that found no data (or no space),
//! armed a notification and would now sleep on the event channel is always
//! woken: either its re-check saw the progress, or the peer's transfer
//! returned `notify`. Ring bytes live in one loom cell each, so loom also
//! reports any access to ring data that the index protocol does not order
//! (a data race), e.g. reading a byte before its `prod` is visible, or
//! overwriting a byte the reader may still be copying out.
//!
//! The models have teeth: with the page's full fence removed, or with every
//! ordering weakened to `Relaxed`, loom finds the lost wake-up or the data
//! race (see the `weakened_*` tests).

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{self, Relaxed};
use std::sync::Mutex;

use loom::cell::UnsafeCell;
use loom::sync::atomic::{fence, AtomicU16, AtomicU32, AtomicU8};
use loom::sync::Arc;
use vchan_core::layout::*;
use vchan_core::{init_server_page, read_orders, Channel, Orders, RingMem, SharedPage};

/// How the model page deviates from the real one (to show that the model
/// catches broken barriers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Weaken {
    /// Faithful: orderings as asked, `full_fence` is a SeqCst fence.
    Faithful,
    /// `full_fence` does nothing.
    NoFence,
    /// Every access is `Relaxed` (fences kept).
    Relaxed,
}

/// The 24-byte header as one loom atomic per field. Fields never overlap
/// and the core always accesses a field with its own width, except
/// `init_server_page`, which zeroes the page in u32 words before any other
/// party exists; those words are split here. (Rust's memory model has no
/// mixed-size atomics, so one atomic per field is also the faithful model.)
/// The grant refs are not modelled: nothing here reads them.
struct Header {
    idx: [AtomicU32; 4],
    orders: [AtomicU16; 2],
    bytes: [AtomicU8; 4],
}

#[derive(Clone)]
struct Page {
    h: Arc<Header>,
    weaken: Weaken,
}

impl Page {
    fn new(weaken: Weaken) -> Page {
        Page {
            h: Arc::new(Header {
                idx: std::array::from_fn(|_| AtomicU32::new(0)),
                orders: std::array::from_fn(|_| AtomicU16::new(0)),
                bytes: std::array::from_fn(|_| AtomicU8::new(0)),
            }),
            weaken,
        }
    }
    fn o(&self, o: Ordering) -> Ordering {
        if self.weaken == Weaken::Relaxed {
            Relaxed
        } else {
            o
        }
    }
    fn byte(&self, off: usize) -> &AtomicU8 {
        assert!((CLI_LIVE..GRANTS).contains(&off), "byte access at {off}");
        &self.h.bytes[off - CLI_LIVE]
    }
    fn half(&self, off: usize) -> &AtomicU16 {
        assert!(
            off == LEFT_ORDER || off == RIGHT_ORDER,
            "u16 access at {off}"
        );
        &self.h.orders[(off - LEFT_ORDER) / 2]
    }
}

// SAFETY: every access is a loom atomic operation on the field at that
// offset (asserted), or a no-op for the unmodelled grant refs; `full_fence`
// is loom's SeqCst fence unless deliberately weakened for a negative test.
unsafe impl SharedPage for Page {
    fn load_u32(&self, off: usize, o: Ordering) -> u32 {
        assert!(off % 4 == 0 && off < PAGE_SIZE);
        match off {
            0..=12 => self.h.idx[off / 4].load(self.o(o)),
            _ => panic!("u32 load at {off} is not modelled"),
        }
    }
    fn store_u32(&self, off: usize, v: u32, o: Ordering) {
        assert!(off % 4 == 0 && off < PAGE_SIZE);
        match off {
            0..=12 => self.h.idx[off / 4].store(v, self.o(o)),
            // Only init_server_page's zeroing writes these as words.
            LEFT_ORDER => {
                assert_eq!(v, 0);
                self.half(LEFT_ORDER).store(0, self.o(o));
                self.half(RIGHT_ORDER).store(0, self.o(o));
            }
            CLI_LIVE => {
                assert_eq!(v, 0);
                for a in &self.h.bytes {
                    a.store(0, self.o(o));
                }
            }
            _ => assert_eq!(v, 0, "grant refs are not modelled"),
        }
    }
    fn load_u16(&self, off: usize, o: Ordering) -> u16 {
        self.half(off).load(self.o(o))
    }
    fn store_u16(&self, off: usize, v: u16, o: Ordering) {
        self.half(off).store(v, self.o(o))
    }
    fn load_u8(&self, off: usize, o: Ordering) -> u8 {
        self.byte(off).load(self.o(o))
    }
    fn store_u8(&self, off: usize, v: u8, o: Ordering) {
        self.byte(off).store(v, self.o(o))
    }
    fn fetch_or_u8(&self, off: usize, bits: u8, o: Ordering) -> u8 {
        self.byte(off).fetch_or(bits, self.o(o))
    }
    fn fetch_and_u8(&self, off: usize, bits: u8, o: Ordering) -> u8 {
        self.byte(off).fetch_and(bits, self.o(o))
    }
    fn full_fence(&self) {
        if self.weaken != Weaken::NoFence {
            fence(Ordering::SeqCst);
        }
    }
}

/// A ring with one loom cell per byte: loom checks that every access to a
/// byte is ordered against every conflicting access by the other thread.
#[derive(Clone)]
struct Ring(Arc<Vec<UnsafeCell<u8>>>);

impl Ring {
    fn new(len: usize) -> Ring {
        Ring(Arc::new((0..len).map(|_| UnsafeCell::new(0)).collect()))
    }
}

// SAFETY: `len` is the number of cells; copies touch exactly the cells
// `offset..offset + buf.len()` (indexing panics otherwise), each through
// loom's cell API, which detects unsynchronised access.
unsafe impl RingMem for Ring {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn read_at(&self, offset: usize, dst: &mut [u8]) {
        for (i, d) in dst.iter_mut().enumerate() {
            // SAFETY: loom reports any write to this cell that is not
            // ordered with this read; the pointer is valid for the call.
            *d = self.0[offset + i].with(|p| unsafe { *p });
        }
    }
    fn write_at(&self, offset: usize, src: &[u8]) {
        for (i, &s) in src.iter().enumerate() {
            // SAFETY: loom reports any access to this cell that is not
            // ordered with this write; the pointer is valid for the call.
            self.0[offset + i].with_mut(|p| unsafe { *p = s });
        }
    }
}

type Ch = Channel<Page, Ring>;

/// A connected pair on the in-page 1 KiB (left) / 2 KiB (right) rings, set
/// up as the real endpoints do; then both notify bytes are cleared, as
/// after a first exchange served the connect-time requests (with them set
/// the property would hold trivially).
fn pair(weaken: Weaken) -> (Ch, Ch) {
    let page = Page::new(weaken);
    let orders = Orders::validate(10, 11).unwrap();
    let (left, right) = (Ring::new(1024), Ring::new(2048));
    init_server_page(&page, orders);
    let server = Channel::server(page.clone(), orders, left.clone(), right.clone()).unwrap();
    let client = Channel::client(page.clone(), read_orders(&page).unwrap(), right, left).unwrap();
    page.store_u8(CLI_NOTIFY, 0, Relaxed);
    page.store_u8(SRV_NOTIFY, 0, Relaxed);
    (server, client)
}

/// What a model run saw: the outcomes (progress seen, notify sent) over
/// all executions, and the number of executions.
struct Explored {
    outcomes: BTreeSet<(bool, bool)>,
    executions: usize,
}

fn model(f: impl Fn() -> (bool, bool) + Send + Sync + 'static) -> Explored {
    let outcomes = std::sync::Arc::new(Mutex::new(BTreeSet::new()));
    let executions = std::sync::Arc::new(AtomicUsize::new(0));
    let (o, e) = (outcomes.clone(), executions.clone());
    loom::model(move || {
        let outcome = f();
        o.lock().unwrap().insert(outcome);
        e.fetch_add(1, Relaxed);
    });
    let outcomes = outcomes.lock().unwrap().clone();
    Explored {
        outcomes,
        executions: executions.load(Relaxed),
    }
}

/// WRITE direction: the reader finds the ring empty and arms
/// (`data_ready_or_arm`) while the writer writes one byte.
fn write_direction(server_writes: bool, weaken: Weaken) -> Explored {
    write_in_segments(server_writes, weaken, 1, 1)
}

/// WRITE direction, pipelined: the writer writes `len` bytes in one call,
/// published one `seg`-byte segment at a time, while the reader arms for
/// all `len` (as a packet `recv` does) and, if it saw them all, reads them
/// (one `seg` at a time too). A reader that saw fewer than `len` sleeps, so
/// the writer must have returned `notify`; every byte read must be the one
/// written (loom checks the per-segment publication orders the copies).
fn write_in_segments(server_writes: bool, weaken: Weaken, len: usize, seg: usize) -> Explored {
    model(move || {
        let (server, client) = pair(weaken);
        let (mut writer, mut reader) = if server_writes {
            (server, client)
        } else {
            (client, server)
        };
        writer.set_segments(seg, seg);
        reader.set_segments(seg, seg);
        let data: Vec<u8> = (0..len as u8).map(|i| 42 + i).collect();
        let sent = data.clone();
        let w = loom::thread::spawn(move || {
            let t = writer.write(&sent).unwrap();
            assert_eq!(t.bytes, sent.len(), "the ring had room for all");
            t.notify
        });
        let ready = reader.data_ready_or_arm(len).unwrap();
        if ready > 0 {
            let mut b = vec![0u8; ready];
            assert_eq!(reader.read(&mut b).unwrap().bytes, ready);
            assert_eq!(b, data[..ready], "read a byte before it was written");
        }
        let notified = w.join().unwrap();
        assert!(
            ready == len || notified,
            "lost wake-up: the reader sleeps and the writer did not signal"
        );
        (ready == len, notified)
    })
}

/// READ direction: the writer finds the ring full and arms
/// (`buffer_space_or_arm`) while the reader consumes one byte; a writer
/// that sees space writes into the freed byte.
fn read_direction(server_writes: bool, weaken: Weaken) -> Explored {
    read_in_segments(server_writes, weaken, 1, 1)
}

/// READ direction, pipelined: the ring is full; the reader reads `len`
/// bytes in one call, releasing one `seg`-byte segment at a time, while
/// the writer arms for `len` bytes of space and writes into whatever it
/// saw freed (one `seg` at a time). A writer that saw less than `len`
/// sleeps, so the reader must have returned `notify`; loom checks that no
/// byte is overwritten before the reader copied it out.
fn read_in_segments(server_writes: bool, weaken: Weaken, len: usize, seg: usize) -> Explored {
    model(move || {
        let (server, client) = pair(weaken);
        let (mut writer, mut reader) = if server_writes {
            (server, client)
        } else {
            (client, server)
        };
        writer.set_segments(0, 0);
        let size = writer.write_size();
        let full: Vec<u8> = (0..size).map(|i| i as u8).collect();
        assert_eq!(writer.write(&full).unwrap().bytes, size);
        writer.set_segments(seg, seg);
        reader.set_segments(seg, seg);
        // Writing cleared nothing: nobody had asked for WRITE.
        let r = loom::thread::spawn(move || {
            let mut b = vec![0u8; len];
            let t = reader.read(&mut b).unwrap();
            assert_eq!(t.bytes, len);
            assert_eq!(
                b,
                (0..len as u8).collect::<Vec<u8>>(),
                "read a byte overwritten too early"
            );
            t.notify
        });
        let space = writer.buffer_space_or_arm(len).unwrap();
        if space > 0 {
            assert_eq!(writer.write(&vec![0xEE; space]).unwrap().bytes, space);
        }
        let notified = r.join().unwrap();
        assert!(
            space >= len || notified,
            "lost wake-up: the writer sleeps and the reader did not signal"
        );
        (space >= len, notified)
    })
}

/// Cached indices: the ring is full; the reader reads one byte and then
/// a second from the `prod` its first read loaded, while the writer tries
/// two one-byte writes, the second from the `cons` its first loaded, and
/// arms for one byte of space if both moved nothing. Loom checks
/// that neither cached index lets a byte be read before it is written or
/// overwritten before it is read.
fn cached_indices(server_writes: bool, weaken: Weaken) -> Explored {
    model(move || {
        let (server, client) = pair(weaken);
        let (mut writer, mut reader) = if server_writes {
            (server, client)
        } else {
            (client, server)
        };
        let size = writer.write_size();
        let full: Vec<u8> = (0..size).map(|i| i as u8).collect();
        assert_eq!(writer.write(&full).unwrap().bytes, size);
        let r = loom::thread::spawn(move || {
            let mut notified = false;
            for expect in [0u8, 1] {
                let mut b = [0u8];
                let t = reader.read(&mut b).unwrap();
                assert_eq!(
                    (t.bytes, b[0]),
                    (1, expect),
                    "read a byte overwritten too early"
                );
                notified |= t.notify;
            }
            notified
        });
        let wrote: usize = (0..2).map(|_| writer.write(&[0xEE]).unwrap().bytes).sum();
        // Only a writer that moved nothing arms, and sleeps if it sees no room.
        let space = if wrote > 0 {
            wrote
        } else {
            writer.buffer_space_or_arm(1).unwrap()
        };
        let notified = r.join().unwrap();
        assert!(
            space >= 1 || notified,
            "lost wake-up: the writer sleeps and the reader did not signal"
        );
        (space >= 1, notified)
    })
}

/// The faithful model holds, and explores both ways it can go: the armed
/// side saw the progress itself, or it was signalled.
fn holds(e: Explored) {
    assert!(
        e.outcomes.contains(&(true, false)) || e.outcomes.contains(&(true, true)),
        "never saw the progress directly: {:?}",
        e.outcomes
    );
    assert!(
        e.outcomes.contains(&(false, true)),
        "never slept and got woken: {:?}",
        e.outcomes
    );
    assert!(e.executions > 2, "only {} executions", e.executions);
}

#[test]
fn no_lost_wakeup_client_reads() {
    holds(write_direction(true, Weaken::Faithful));
}

#[test]
fn no_lost_wakeup_server_reads() {
    holds(write_direction(false, Weaken::Faithful));
}

#[test]
fn no_lost_wakeup_server_writes() {
    holds(read_direction(true, Weaken::Faithful));
}

#[test]
fn no_lost_wakeup_client_writes() {
    holds(read_direction(false, Weaken::Faithful));
}

/// A write published in two segments, a reader waiting for both.
#[test]
fn no_lost_wakeup_write_in_two_segments() {
    for server_writes in [true, false] {
        holds(write_in_segments(server_writes, Weaken::Faithful, 2, 1));
    }
}

/// A read released in two segments, a writer waiting for both bytes.
#[test]
fn no_lost_wakeup_read_in_two_segments() {
    for server_writes in [true, false] {
        holds(read_in_segments(server_writes, Weaken::Faithful, 2, 1));
    }
}

/// Each side reads and writes one byte at a time from the peer's index it
/// loaded last.
#[test]
fn no_lost_wakeup_with_cached_indices() {
    for server_writes in [true, false] {
        holds(cached_indices(server_writes, Weaken::Faithful));
    }
}

/// Run a model that must fail; return its panic message.
fn must_fail(f: impl FnOnce() -> Explored) -> String {
    let err = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(e) => panic!(
            "loom found nothing wrong in a broken model ({} executions, outcomes {:?})",
            e.executions, e.outcomes
        ),
        Err(err) => err,
    };
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Without the full barriers (request, re-check / publish, check bits:
/// the store-buffering pattern), loom finds the lost wake-up, also in the
/// segmented models.
#[test]
fn weakened_without_fences_loses_wakeups() {
    for server_writes in [true, false] {
        let msg = must_fail(|| write_direction(server_writes, Weaken::NoFence));
        assert!(msg.contains("lost wake-up"), "unexpected failure: {msg}");
        let msg = must_fail(|| read_direction(server_writes, Weaken::NoFence));
        assert!(msg.contains("lost wake-up"), "unexpected failure: {msg}");
    }
    let msg = must_fail(|| write_in_segments(true, Weaken::NoFence, 2, 1));
    assert!(msg.contains("lost wake-up"), "unexpected failure: {msg}");
    let msg = must_fail(|| read_in_segments(true, Weaken::NoFence, 2, 1));
    assert!(msg.contains("lost wake-up"), "unexpected failure: {msg}");
    let msg = must_fail(|| cached_indices(true, Weaken::NoFence));
    assert!(msg.contains("lost wake-up"), "unexpected failure: {msg}");
}

/// Without acquire/release on the indices, loom finds the data race on
/// the ring bytes.
#[test]
fn weakened_to_relaxed_races_on_ring_data() {
    for server_writes in [true, false] {
        for f in [write_direction, read_direction] {
            let msg = must_fail(|| f(server_writes, Weaken::Relaxed));
            assert!(
                msg.contains("Causality violation") || msg.contains("data race"),
                "unexpected failure: {msg}"
            );
        }
        // With the indices cached, the lost wake-up may come first.
        let msg = must_fail(|| cached_indices(server_writes, Weaken::Relaxed));
        assert!(
            ["Causality violation", "data race", "lost wake-up"]
                .iter()
                .any(|m| msg.contains(m)),
            "unexpected failure: {msg}"
        );
    }
}
