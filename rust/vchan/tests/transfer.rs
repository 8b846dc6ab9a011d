//! Two processes exchange 256 MiB in both directions at once, random chunk
//! sizes, for several ring order pairs; SHA-256 equal both ways.

mod common;

use common::*;
use std::time::{Duration, Instant};
use vchan::Endpoint;

const TOTAL: u64 = 256 << 20;
const ENTRY: &str = "child";

#[test]
#[ignore = "child process entry point"]
fn child() {
    let role = child_role();
    assert_eq!(role, "client");
    let mut ep = Endpoint::connect(dom(0), &port("xfer"), Some(Duration::from_secs(20))).unwrap();
    let (sent, got) = pump(&mut ep, 2, TOTAL, TOTAL);
    ep.close().unwrap();
    println!("sent={sent}");
    println!("got={got}");
}

#[test]
fn both_ways_256mib_each_order_pair() {
    for (rmin, wmin, orders) in [
        (1024, 2048, (10, 11)),
        (2048, 1024, (11, 10)),
        (4096, 4096, (12, 12)),
        (65536, 1 << 20, (16, 20)),
        (1 << 20, 1 << 20, (20, 20)),
    ] {
        let dir = common::private_tempdir();
        let mut server = Endpoint::listen_at(
            backend(dir.path(), 0),
            dom(1),
            &path(0, 1, "xfer"),
            rmin,
            wmin,
        )
        .unwrap();
        assert_eq!(
            (
                server.read_ring_size().unwrap(),
                server.write_ring_size().unwrap()
            ),
            (1 << orders.0, 1 << orders.1)
        );
        let child = spawn(ENTRY, "client", 1, dir.path(), &[]);
        let start = Instant::now();
        let (sent, got) = pump(&mut server, 1, TOTAL, TOTAL);
        let secs = start.elapsed().as_secs_f64();
        let c = child_values(child);
        server.close().unwrap();
        eprintln!(
            "orders {orders:?}: 256 MiB each way at once in {secs:.2} s = {:.0} MiB/s each way",
            256.0 / secs
        );
        assert_eq!(c["sent"], got, "client->server stream differs");
        assert_eq!(c["got"], sent, "server->client stream differs");
        assert!(
            walk(dir.path()).is_empty(),
            "left behind: {:?}",
            walk(dir.path())
        );
    }
}
