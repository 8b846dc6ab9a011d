//! Two threads, one vchan over heap memory with 64 KiB rings: the server
//! streams 256 MiB to the client, which checks every byte. Prints MiB/s.
//! (The real demo, two processes with `vchan-cat`, is `make demo`.)

use std::time::Instant;
use vchan_core::layout::PAGE_SIZE;
use vchan_core::{init_server_page, read_orders, Channel, Orders, RawPage, RawRing};

const TOTAL: u64 = 256 << 20;

fn byte(i: u64) -> u8 {
    (i ^ (i >> 11)) as u8
}

fn main() {
    let orders = Orders::for_server(65536, 65536).expect("valid sizes");
    let mut page = vec![0u64; PAGE_SIZE / 8];
    let mut left = vec![0u64; (1 << orders.left()) / 8];
    let mut right = vec![0u64; (1 << orders.right()) / 8];
    // SAFETY: the three buffers live until the end of main, after both
    // channels are dropped (the thread is joined first).
    let (page, left, right) = unsafe {
        (
            RawPage::new(page.as_mut_ptr().cast()).expect("aligned page"),
            RawRing::new(left.as_mut_ptr().cast(), 1 << orders.left()).expect("ring"),
            RawRing::new(right.as_mut_ptr().cast(), 1 << orders.right()).expect("ring"),
        )
    };
    init_server_page(&page, orders);
    let mut server = Channel::server(page, orders, left, right).expect("server");
    let mut client =
        Channel::client(page, read_orders(&page).expect("orders"), right, left).expect("client");

    let start = Instant::now();
    let reader = std::thread::spawn(move || {
        let mut got = 0u64;
        let mut buf = vec![0u8; 65536];
        while got < TOTAL {
            let n = client.read(&mut buf).expect("read").bytes;
            for (i, b) in buf[..n].iter().enumerate() {
                assert_eq!(
                    *b,
                    byte(got + i as u64),
                    "corrupt byte at {}",
                    got + i as u64
                );
            }
            got += n as u64;
            if n == 0 {
                std::hint::spin_loop();
            }
        }
        got
    });
    let mut sent = 0u64;
    let mut buf = vec![0u8; 65536];
    while sent < TOTAL {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = byte(sent + i as u64);
        }
        let mut off = 0;
        while off < buf.len() {
            let n = server.write(&buf[off..]).expect("write").bytes;
            off += n;
            if n == 0 {
                std::hint::spin_loop();
            }
        }
        sent += buf.len() as u64;
    }
    let got = reader.join().expect("reader");
    let secs = start.elapsed().as_secs_f64();
    println!(
        "vchan-core demo: {} MiB through a 64 KiB ring between two threads, verified, in {:.2} s: {:.0} MiB/s",
        got >> 20,
        secs,
        (got >> 20) as f64 / secs
    );
}
