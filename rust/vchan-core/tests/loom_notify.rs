//! Model checking of the notify protocol with loom: the very `Channel` code
//! runs over loom's atomics, and loom explores every interleaving and every
//! weak-memory outcome it allows. Property: a side that found no data (or
//! no space), armed a notification and will now sleep is always woken —
//! either it saw the progress, or the peer was told to signal.

use loom::cell::UnsafeCell;
use loom::sync::atomic::{fence, AtomicU16, AtomicU32, AtomicU8};
use loom::sync::Arc;
use std::sync::atomic::Ordering;
use vchan_core::layout::*;
use vchan_core::{init_server_page, read_orders, Channel, Orders, RingMem, SharedPage};

/// The 24-byte header as one loom atomic per field (fields never overlap).
struct Header {
    idx: [AtomicU32; 4],
    orders: [AtomicU16; 2],
    bytes: [AtomicU8; 4],
}

#[derive(Clone)]
struct Page(Arc<Header>);

// SAFETY: every access is a loom atomic operation on a distinct field;
// offsets outside the header (grants, zeroed at init) are not modelled.
unsafe impl SharedPage for Page {
    fn load_u32(&self, off: usize, o: Ordering) -> u32 {
        if off < 16 {
            self.0.idx[off / 4].load(o)
        } else {
            0
        }
    }
    fn store_u32(&self, off: usize, v: u32, o: Ordering) {
        if off < 16 {
            self.0.idx[off / 4].store(v, o)
        } else if off < GRANTS {
            // init_server_page zeroes the whole page word by word.
            assert_eq!(v, 0);
            match off {
                16 => self.0.orders.iter().for_each(|a| a.store(0, o)),
                20 => self.0.bytes.iter().for_each(|a| a.store(0, o)),
                _ => unreachable!(),
            }
        }
    }
    fn load_u16(&self, off: usize, o: Ordering) -> u16 {
        self.0.orders[(off - 16) / 2].load(o)
    }
    fn store_u16(&self, off: usize, v: u16, o: Ordering) {
        self.0.orders[(off - 16) / 2].store(v, o)
    }
    fn load_u8(&self, off: usize, o: Ordering) -> u8 {
        self.0.bytes[off - 20].load(o)
    }
    fn store_u8(&self, off: usize, v: u8, o: Ordering) {
        self.0.bytes[off - 20].store(v, o)
    }
    fn fetch_or_u8(&self, off: usize, v: u8, o: Ordering) -> u8 {
        self.0.bytes[off - 20].fetch_or(v, o)
    }
    fn fetch_and_u8(&self, off: usize, v: u8, o: Ordering) -> u8 {
        self.0.bytes[off - 20].fetch_and(v, o)
    }
    fn full_fence(&self) {
        fence(Ordering::SeqCst)
    }
}

/// A ring whose bytes are one loom cell: loom reports a data race if ring
/// data is ever accessed without the index synchronisation ordering it.
#[derive(Clone)]
struct Ring(Arc<UnsafeCell<Vec<u8>>>, usize);

// SAFETY: copies stay within the vector (asserted), through loom's cell.
unsafe impl RingMem for Ring {
    fn len(&self) -> usize {
        self.1
    }
    fn read_at(&self, off: usize, dst: &mut [u8]) {
        // SAFETY: loom checks that no write to the cell races this read.
        self.0
            .with(|v| dst.copy_from_slice(unsafe { &(&*v)[off..off + dst.len()] }))
    }
    fn write_at(&self, off: usize, src: &[u8]) {
        // SAFETY: loom checks that no access to the cell races this write.
        self.0
            .with_mut(|v| unsafe { (&mut *v)[off..off + src.len()].copy_from_slice(src) })
    }
}

type Ch = Channel<Page, Ring>;

/// A connected pair on 1 KiB / 2 KiB in-page rings, with both notify bytes
/// cleared (the connect-time requests already served), as after a first
/// exchange.
fn pair() -> (Ch, Ch) {
    let page = Page(Arc::new(Header {
        idx: [
            AtomicU32::new(0),
            AtomicU32::new(0),
            AtomicU32::new(0),
            AtomicU32::new(0),
        ],
        orders: [AtomicU16::new(0), AtomicU16::new(0)],
        bytes: [
            AtomicU8::new(0),
            AtomicU8::new(0),
            AtomicU8::new(0),
            AtomicU8::new(0),
        ],
    }));
    let orders = Orders::validate(10, 11).unwrap();
    let left = Ring(Arc::new(UnsafeCell::new(vec![0; 1024])), 1024);
    let right = Ring(Arc::new(UnsafeCell::new(vec![0; 2048])), 2048);
    init_server_page(&page, orders);
    let server = Channel::server(page.clone(), orders, left.clone(), right.clone()).unwrap();
    let client = Channel::client(page.clone(), read_orders(&page).unwrap(), right, left).unwrap();
    page.store_u8(CLI_NOTIFY, 0, Ordering::Relaxed);
    page.store_u8(SRV_NOTIFY, 0, Ordering::Relaxed);
    (server, client)
}

/// Reader arms for data while the writer writes one byte.
fn write_direction(server_writes: bool, arm: bool) {
    loom::model(move || {
        let (server, client) = pair();
        let (mut writer, mut reader) = if server_writes {
            (server, client)
        } else {
            (client, server)
        };
        let w = loom::thread::spawn(move || writer.write(&[42]).unwrap().notify);
        let ready = if arm {
            reader.data_ready_or_arm(1).unwrap()
        } else {
            reader.data_ready().unwrap()
        };
        if ready > 0 {
            let mut b = [0u8];
            assert_eq!(reader.read(&mut b).unwrap().bytes, 1);
            assert_eq!(b[0], 42);
        }
        let notified = w.join().unwrap();
        assert!(
            ready > 0 || notified,
            "lost wake-up: reader sleeps, writer did not signal"
        );
    });
}

/// Writer (ring full) arms for space while the reader consumes one byte.
fn read_direction(server_writes: bool, arm: bool) {
    loom::model(move || {
        let (server, client) = pair();
        let (mut writer, mut reader) = if server_writes {
            (server, client)
        } else {
            (client, server)
        };
        let size = writer.write_size();
        assert_eq!(writer.write(&vec![1; size]).unwrap().bytes, size);
        let r = loom::thread::spawn(move || {
            let mut b = [0u8];
            reader.read(&mut b).unwrap().notify
        });
        let space = if arm {
            writer.buffer_space_or_arm(1).unwrap()
        } else {
            writer.buffer_space().unwrap()
        };
        let notified = r.join().unwrap();
        assert!(
            space > 0 || notified,
            "lost wake-up: writer sleeps, reader did not signal"
        );
    });
}

#[test]
fn no_lost_wakeup_reader_server() {
    write_direction(false, true);
}

#[test]
fn no_lost_wakeup_reader_client() {
    write_direction(true, true);
}

#[test]
fn no_lost_wakeup_writer_server() {
    read_direction(true, true);
}

#[test]
fn no_lost_wakeup_writer_client() {
    read_direction(false, true);
}

/// The model can fail: without arming, loom finds the lost wake-up.
#[test]
fn model_finds_lost_wakeup_without_arming() {
    for f in [write_direction as fn(bool, bool), read_direction] {
        let r = std::panic::catch_unwind(|| f(true, false));
        assert!(r.is_err(), "loom should have found a lost wake-up");
    }
}
