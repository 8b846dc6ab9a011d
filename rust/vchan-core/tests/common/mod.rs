//! Shared test support: two endpoints over one in-memory shared page, and
//! compiling small C programs against the real Xen headers.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use vchan_core::layout::{Placement, PAGE_SIZE};
use vchan_core::{init_server_page, read_orders, Channel, Orders, RawPage, RawRing};

/// Memory of one vchan: the page and the out-of-page rings, 8-aligned.
pub struct Mem {
    pub page: Box<[u64; PAGE_SIZE / 8]>,
    pub left: Vec<u64>,
    pub right: Vec<u64>,
}

pub type Ch = Channel<RawPage, RawRing>;

impl Mem {
    pub fn new(orders: Orders) -> Box<Mem> {
        let out = |o: u8| match Placement::of_order(o) {
            Some(Placement::Pages { count }) => vec![0u64; count * PAGE_SIZE / 8],
            _ => Vec::new(),
        };
        Box::new(Mem {
            page: Box::new([0u64; PAGE_SIZE / 8]),
            left: out(orders.left()),
            right: out(orders.right()),
        })
    }

    pub fn page_ptr(&mut self) -> *mut u8 {
        self.page.as_mut_ptr().cast()
    }

    fn ring(&mut self, order: u8, left: bool) -> RawRing {
        let len = 1usize << order;
        let base: *mut u8 = match Placement::of_order(order) {
            // SAFETY: in-page offsets + ring size stay within the page.
            Some(Placement::InPage { offset }) => unsafe { self.page_ptr().add(offset) },
            _ if left => self.left.as_mut_ptr().cast(),
            _ => self.right.as_mut_ptr().cast(),
        };
        // SAFETY: `base` points to `len` bytes owned by `self`, which the
        // tests keep alive (boxed, never moved) longer than the channels.
        unsafe { RawRing::new(base, len) }.unwrap()
    }

    /// A connected (server, client) pair over this memory.
    pub fn pair(&mut self, orders: Orders) -> (Ch, Ch) {
        // SAFETY: the page is 4096 bytes, 8-aligned, and outlives the pair.
        let page = unsafe { RawPage::new(self.page_ptr()) }.unwrap();
        init_server_page(&page, orders);
        let left = self.ring(orders.left(), true);
        let right = self.ring(orders.right(), false);
        let server = Channel::server(page, orders, left, right).unwrap();
        let seen = read_orders(&page).unwrap();
        assert_eq!(seen, orders);
        let client = Channel::client(page, seen, right, left).unwrap();
        (server, client)
    }

    /// Raw byte view of the page (for hostile writes).
    pub fn poke_u8(&mut self, off: usize, v: u8) {
        assert!(off < PAGE_SIZE);
        // SAFETY: off < PAGE_SIZE is checked; single-threaded test access.
        unsafe { self.page_ptr().add(off).write_volatile(v) }
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

/// Compile and run a C program; returns its standard output.
pub fn run_c(name: &str, source: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("prog.c");
    let exe = dir.join("prog");
    std::fs::write(&src, source).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args(["-O1", "-Wall", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("cannot run C compiler {cc}: {e}"));
    assert!(
        out.status.success(),
        "C compilation failed (is libxen-dev installed? `make setup`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().unwrap();
    assert!(run.status.success());
    String::from_utf8(run.stdout).unwrap()
}
