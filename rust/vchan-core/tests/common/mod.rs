//! Shared test support: the memory of one vchan (page and rings) on the
//! heap, a connected server/client pair over it, raw access for playing the
//! peer, and compiling small C programs against the real Xen header.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use vchan_core::layout::{Placement, PAGE_SIZE};
use vchan_core::{init_server_page, read_orders, Channel, Orders, RawPage, RawRing};
use vchan_test_support::Pattern;

/// The endpoint type used by the tests.
pub type Ch = Channel<RawPage, RawRing>;

/// Guard words before and after each out-of-page ring buffer.
const GUARD_WORDS: usize = 64;
const GUARD: u64 = 0xA5C3_5A3C_0FF1_CE00;

/// A heap buffer of `u64`s (8-aligned) held as a raw pointer, so that the
/// raw pointers handed to `RawPage`/`RawRing` are never invalidated by a
/// Rust reference to the same memory.
struct Words {
    ptr: *mut u64,
    len: usize,
}

impl Words {
    fn new(len: usize, fill: u64) -> Words {
        let b: Box<[u64]> = vec![fill; len].into_boxed_slice();
        Words {
            ptr: Box::into_raw(b).cast(),
            len,
        }
    }
}

impl Drop for Words {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` come from `Box::into_raw` of a boxed slice of
        // exactly `len` words in `Words::new`, and are released only here.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.ptr, self.len)) });
    }
}

/// The memory of one vchan: the shared page (`Box<[u64; 512]>`-like,
/// 8-aligned) and separate buffers for rings of order >= 12, each with a
/// guard zone on both sides.
pub struct Mem {
    orders: Orders,
    page: Words,
    left: Option<Words>,
    right: Option<Words>,
}

// SAFETY: `Mem` owns its buffers; the raw pointers are only an aliasing
// device (see `Words`). Tests that share it between threads only do so
// through `RawPage`/`RawRing`, which use atomics / copies.
unsafe impl Send for Mem {}
// SAFETY: as above.
unsafe impl Sync for Mem {}

/// Which ring: left (client writes, server reads) or right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

impl Mem {
    pub fn new(orders: Orders) -> Mem {
        let out = |o: u8| match Placement::of_order(o) {
            Some(Placement::Pages { count }) => {
                Some(Words::new(count * PAGE_SIZE / 8 + 2 * GUARD_WORDS, GUARD))
            }
            _ => None,
        };
        Mem {
            orders,
            page: Words::new(PAGE_SIZE / 8, 0),
            left: out(orders.left()),
            right: out(orders.right()),
        }
    }

    pub fn orders(&self) -> Orders {
        self.orders
    }

    pub fn page_ptr(&self) -> *mut u8 {
        self.page.ptr.cast()
    }

    pub fn page(&self) -> RawPage {
        // SAFETY: 4096 bytes, 8-aligned, alive as long as `self`; callers
        // drop their channels before the `Mem`.
        unsafe { RawPage::new(self.page_ptr()) }.unwrap()
    }

    pub fn ring_size(&self, side: Side) -> usize {
        1 << match side {
            Side::Left => self.orders.left(),
            Side::Right => self.orders.right(),
        }
    }

    /// Base address of a ring's bytes.
    pub fn ring_ptr(&self, side: Side) -> *mut u8 {
        let (order, buf) = match side {
            Side::Left => (self.orders.left(), &self.left),
            Side::Right => (self.orders.right(), &self.right),
        };
        match (Placement::of_order(order), buf) {
            // SAFETY: in-page offsets (1024, 2048) plus the ring size (1024,
            // 2048) stay within the 4096-byte page.
            (Some(Placement::InPage { offset }), _) => unsafe { self.page_ptr().add(offset) },
            // SAFETY: the buffer holds GUARD_WORDS words before the ring.
            (_, Some(w)) => unsafe { w.ptr.add(GUARD_WORDS).cast() },
            _ => unreachable!("orders are validated"),
        }
    }

    pub fn ring(&self, side: Side) -> RawRing {
        // SAFETY: `ring_ptr` points to `ring_size` bytes owned by `self`.
        unsafe { RawRing::new(self.ring_ptr(side), self.ring_size(side)) }.unwrap()
    }

    /// A connected (server, client) pair, set up as the real endpoints do:
    /// the server initialises the page, the client reads and validates the
    /// orders from it. The server reads left, the client reads right.
    pub fn pair(&self) -> (Ch, Ch) {
        let page = self.page();
        init_server_page(&page, self.orders);
        let server = Channel::server(
            page,
            self.orders,
            self.ring(Side::Left),
            self.ring(Side::Right),
        )
        .unwrap();
        let seen = read_orders(&page).unwrap();
        assert_eq!(seen, self.orders);
        let client =
            Channel::client(page, seen, self.ring(Side::Right), self.ring(Side::Left)).unwrap();
        (server, client)
    }

    // Raw, non-atomic access for single-threaded tests playing the peer.

    pub fn peek_u8(&self, off: usize) -> u8 {
        assert!(off < PAGE_SIZE);
        // SAFETY: in bounds (checked); single-threaded access.
        unsafe { self.page_ptr().add(off).read() }
    }

    pub fn poke_u8(&self, off: usize, v: u8) {
        assert!(off < PAGE_SIZE);
        // SAFETY: in bounds (checked); single-threaded access.
        unsafe { self.page_ptr().add(off).write(v) }
    }

    pub fn peek_u16(&self, off: usize) -> u16 {
        u16::from_le_bytes([self.peek_u8(off), self.peek_u8(off + 1)])
    }

    pub fn poke_u16(&self, off: usize, v: u16) {
        for (i, b) in v.to_le_bytes().into_iter().enumerate() {
            self.poke_u8(off + i, b);
        }
    }

    pub fn peek_u32(&self, off: usize) -> u32 {
        u32::from_le_bytes(std::array::from_fn(|i| self.peek_u8(off + i)))
    }

    pub fn poke_u32(&self, off: usize, v: u32) {
        for (i, b) in v.to_le_bytes().into_iter().enumerate() {
            self.poke_u8(off + i, b);
        }
    }

    pub fn ring_byte(&self, side: Side, i: usize) -> u8 {
        assert!(i < self.ring_size(side));
        // SAFETY: in bounds (checked); single-threaded access.
        unsafe { self.ring_ptr(side).add(i).read() }
    }

    pub fn set_ring_byte(&self, side: Side, i: usize, v: u8) {
        assert!(i < self.ring_size(side));
        // SAFETY: in bounds (checked); single-threaded access.
        unsafe { self.ring_ptr(side).add(i).write(v) }
    }

    /// A copy of all the memory: the page, then each out-of-page ring
    /// buffer including its guard zones.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut v = Vec::new();
        for w in [Some(&self.page), self.left.as_ref(), self.right.as_ref()]
            .into_iter()
            .flatten()
        {
            // SAFETY: `w` is a live buffer of `w.len` words; no `&mut` to it
            // exists and no other thread writes it while tests snapshot.
            v.extend_from_slice(unsafe {
                std::slice::from_raw_parts(w.ptr.cast::<u8>(), w.len * 8)
            });
        }
        v
    }

    /// Where ring byte `i` of `side` lives in a [`snapshot`](Mem::snapshot).
    pub fn snapshot_index(&self, side: Side, i: usize) -> usize {
        let ring = match side {
            Side::Left => self.orders.left(),
            Side::Right => self.orders.right(),
        };
        if let Some(Placement::InPage { offset }) = Placement::of_order(ring) {
            return offset + i;
        }
        let mut base = PAGE_SIZE;
        if side == Side::Right {
            base += self.left.as_ref().map_or(0, |w| w.len * 8);
        }
        base + GUARD_WORDS * 8 + i
    }

    /// True when the guard zones around the out-of-page rings are intact.
    pub fn guards_intact(&self) -> bool {
        [self.left.as_ref(), self.right.as_ref()]
            .into_iter()
            .flatten()
            .all(|w| {
                (0..GUARD_WORDS)
                    .chain(w.len - GUARD_WORDS..w.len)
                    // SAFETY: index < w.len; single-threaded access.
                    .all(|i| unsafe { w.ptr.add(i).read() } == GUARD)
            })
    }
}

/// Every valid (left, right) order pair among `orders`.
pub fn valid_pairs(orders: &[u16]) -> Vec<Orders> {
    let mut v = Vec::new();
    for &l in orders {
        for &r in orders {
            if let Ok(o) = Orders::validate(l, r) {
                v.push(o);
            }
        }
    }
    v
}

/// The test stream: a prime period longer than the largest ring, so that
/// misplaced data never lines up.
pub fn stream() -> &'static Pattern {
    static P: std::sync::OnceLock<Pattern> = std::sync::OnceLock::new();
    P.get_or_init(|| Pattern::new(1_048_583, 0))
}

/// Compile `source` with the C compiler (`$CC`, else `cc`) and run it;
/// returns its standard output. Fails (does not skip) when the Xen vchan
/// header is missing.
pub fn run_c(name: &str, source: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("vchan-core-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("prog.c");
    let exe = dir.join("prog");
    std::fs::write(&src, source).unwrap();
    let cc = std::env::var("CC").unwrap_or_default();
    let mut words = cc.split_whitespace();
    let program = words.next().unwrap_or("cc").to_owned();
    let out = Command::new(&program)
        .args(words)
        .args(["-std=gnu11", "-O1", "-Wall", "-Werror", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{program}` (set CC): {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("libxenvchan.h") {
        panic!(
            "the Xen vchan header <xen/io/libxenvchan.h> is missing: install libxen-dev \
             (`apt-get install libxen-dev`, or `make setup`).\n{stderr}"
        );
    }
    assert!(out.status.success(), "C compilation failed:\n{stderr}");
    let run = Command::new(&exe).output().unwrap();
    assert!(run.status.success(), "C program failed: {run:?}");
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8(run.stdout).unwrap()
}
