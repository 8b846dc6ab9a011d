//! Packet mode between two processes, and eight vchans driven by one
//! thread through poll(2).

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use std::os::fd::AsRawFd;
use std::time::Duration;
use vchan::{Endpoint, Error};

const ENTRY: &str = "child";
const PACKETS: usize = 100_000;
const T: Option<Duration> = Some(Duration::from_secs(20));

fn packet(rng: &mut rand::rngs::StdRng, ring: usize, i: usize) -> Vec<u8> {
    let n = rng.gen_range(1..=ring);
    (0..n).map(|k| (i * 31 + k * 7) as u8).collect()
}

#[test]
#[ignore = "child process entry point"]
fn child() {
    let role = child_role();
    if role == "packets" {
        let mut ep = Endpoint::connect(dom(0), &port("pk"), T).unwrap();
        let ring = ep.write_ring_size().unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for i in 0..PACKETS {
            let p = packet(&mut rng, ring, i);
            assert_eq!(ep.send(&p).unwrap(), p.len());
        }
        // Wait for the server's verdict before closing.
        let mut ok = [0u8; 2];
        assert_eq!(ep.recv(&mut ok).unwrap(), 2);
        assert_eq!(&ok, b"ok");
        ep.close().unwrap();
    } else if role == "poll8" {
        let mut eps: Vec<Endpoint> = (0..8)
            .map(|i| Endpoint::connect(dom(0), &port(&format!("p{i}")), T).unwrap())
            .collect();
        let hashes = drive(&mut eps, 100);
        for (i, (s, g)) in hashes.iter().enumerate() {
            println!("sent{i}={s}");
            println!("got{i}={g}");
        }
        for mut e in eps {
            e.close().unwrap();
        }
    } else {
        panic!("unknown child role {role:?}");
    }
}

#[test]
fn hundred_thousand_packets_arrive_whole_and_in_order() {
    let dir = common::private_tempdir();
    // Rings of 4 KiB (client to server) and 2 KiB.
    let mut s = Endpoint::listen_at(
        backend(dir.path(), 0),
        dom(1),
        &path(0, 1, "pk"),
        4096,
        2048,
    )
    .unwrap();
    let child = spawn(ENTRY, "packets", 1, dir.path(), &[]);
    let ring = s.read_ring_size().unwrap();
    assert_eq!(ring, 4096);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut buf = vec![0u8; ring];
    for i in 0..PACKETS {
        let p = packet(&mut rng, ring, i);
        let n = s.recv(&mut buf[..p.len()]).unwrap();
        assert_eq!(n, p.len());
        assert_eq!(&buf[..n], &p[..], "packet {i}");
    }
    // Too large for the ring: refused, in both directions.
    let e = s.send(&vec![0u8; 2049]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Core(vchan::vchan_core::Error::PacketTooLarge {
                len: 2049,
                ring: 2048
            })
        ),
        "{e:?}"
    );
    let e = s.recv(&mut vec![0u8; 4097]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Core(vchan::vchan_core::Error::PacketTooLarge { .. })
        ),
        "{e:?}"
    );
    assert_eq!(s.send(b"ok").unwrap(), 2);
    child_values(child);
    s.close().unwrap();
}

/// Drive all endpoints to completion from one thread with poll(2), in
/// non-blocking mode: each sends 8 MiB (seeded by `seed + i`) and reads
/// 8 MiB. Returns per-channel (sent, received) SHA-256.
fn drive(eps: &mut [Endpoint], seed: u64) -> Vec<(String, String)> {
    const EACH: u64 = 8 << 20;
    let mut src: Vec<Source> = (0..eps.len())
        .map(|i| Source::new(seed + i as u64, EACH))
        .collect();
    let mut pending: Vec<(Vec<u8>, usize)> = vec![(Vec::new(), 0); eps.len()];
    let mut got = vec![0u64; eps.len()];
    let mut rh: Vec<Sha256> = (0..eps.len()).map(|_| Sha256::new()).collect();
    let mut buf = vec![0u8; 100_000];
    for e in eps.iter_mut() {
        e.set_nonblocking(true);
    }
    loop {
        let mut done = true;
        for i in 0..eps.len() {
            let (chunk, off) = &mut pending[i];
            loop {
                if *off == chunk.len() {
                    if src[i].left_bytes() == 0 {
                        break;
                    }
                    *chunk = src[i].next_chunk(50_000);
                    *off = 0;
                }
                match eps[i].write(&chunk[*off..]) {
                    Ok(n) => *off += n,
                    Err(e) if would_block(&e) => break,
                    Err(e) => panic!("write {i}: {e}"),
                }
            }
            while got[i] < EACH {
                match eps[i].read(&mut buf) {
                    Ok(0) => panic!("eof on {i}"),
                    Ok(n) => {
                        rh[i].update(&buf[..n]);
                        got[i] += n as u64;
                    }
                    Err(e) if would_block(&e) => break,
                    Err(e) => panic!("read {i}: {e}"),
                }
            }
            done &=
                got[i] == EACH && src[i].left_bytes() == 0 && pending[i].1 == pending[i].0.len();
        }
        if done {
            break;
        }
        let fds: Vec<i32> = eps.iter().map(|e| e.as_raw_fd()).collect();
        let ready = poll_in(&fds, 10_000);
        assert!(!ready.is_empty(), "lost wake-up: no channel woke for 10 s");
        for i in ready {
            eps[i].consume_events().unwrap();
        }
    }
    src.into_iter()
        .zip(rh)
        .map(|(s, r)| (hex(s.hash.finalize()), hex(r.finalize())))
        .collect()
}

#[test]
fn one_thread_eight_vchans_through_poll() {
    let dir = common::private_tempdir();
    let b = backend(dir.path(), 0);
    let mut eps: Vec<Endpoint> = (0..8)
        .map(|i| {
            Endpoint::listen_at(
                b.clone(),
                dom(1),
                &path(0, 1, &format!("p{i}")),
                4096 << (i % 3),
                4096,
            )
            .unwrap()
        })
        .collect();
    let child = spawn(ENTRY, "poll8", 1, dir.path(), &[]);
    let mine = drive(&mut eps, 0);
    let theirs = child_values(child);
    for (i, (sent, got)) in mine.iter().enumerate() {
        assert_eq!(
            &theirs[&format!("got{i}")],
            sent,
            "channel {i} server->client"
        );
        assert_eq!(
            &theirs[&format!("sent{i}")],
            got,
            "channel {i} client->server"
        );
    }
    for mut e in eps {
        e.close().unwrap();
    }
    assert!(
        walk(dir.path()).is_empty(),
        "left behind: {:?}",
        walk(dir.path())
    );
}
