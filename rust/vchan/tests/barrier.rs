//! The unix backend's asymmetric fences (`Fences::PeerBarrier`): two
//! processes that both ask for `membarrier(2)` (`VCHAN_MEMBARRIER=1`) drop
//! the fast path's full barrier, each running the process-wide barrier
//! before it sleeps; a peer without it (the default) keeps both sides on
//! full fences. In
//! every case, ping-pongs in which both sides keep falling asleep (random
//! pauses around the spin budget, so arming races the peer's writes) must
//! never lose a wake-up: a watchdog turns a hang into a failure.

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use std::time::Duration;
use vchan::{Endpoint, Fences};

const ENTRY: &str = "child";
const ROUNDS: u32 = 3000;
const MSG: usize = 48;

/// Does this kernel give us membarrier's global expedited barrier? The same
/// query the backend makes: on a kernel without it, full fences are the
/// right outcome, and that is what the tests then check.
fn kernel_has_membarrier() -> bool {
    // SAFETY: MEMBARRIER_CMD_QUERY (0) takes no memory and has no effect.
    let q = unsafe { libc::syscall(libc::SYS_membarrier, 0, 0, 0) };
    q >= 0 && q & 0b110 == 0b110
}

fn fences_name(f: Fences) -> &'static str {
    match f {
        Fences::Full => "full",
        Fences::PeerBarrier => "peer-barrier",
    }
}

/// Pause 0..=`max_us` microseconds, sometimes not at all.
fn pause(rng: &mut rand::rngs::StdRng, max_us: u64) {
    let us = rng.gen_range(0..=max_us);
    if us > max_us / 3 {
        std::thread::sleep(Duration::from_micros(us));
    }
}

/// Echo `ROUNDS` messages, pausing at random before each reply.
fn echo(ep: &mut Endpoint, seed: u64, max_us: u64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut buf = [0u8; MSG];
    for _ in 0..ROUNDS {
        assert_eq!(ep.recv(&mut buf).unwrap(), MSG, "end of stream");
        pause(&mut rng, max_us);
        ep.send(&buf).unwrap();
    }
}

/// Send `ROUNDS` messages and check every echo, pausing at random.
fn ping(ep: &mut Endpoint, seed: u64, max_us: u64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut back = [0u8; MSG];
    for i in 0..ROUNDS {
        let msg: Vec<u8> = (0..MSG).map(|k| (i as usize * 31 + k) as u8).collect();
        pause(&mut rng, max_us);
        ep.send(&msg).unwrap();
        assert_eq!(ep.recv(&mut back).unwrap(), MSG, "end of stream");
        assert_eq!(back.as_slice(), msg.as_slice(), "echo {i} differs");
    }
}

/// Rounds of the racing test.
const PACKETS: u32 = 250_000;
const PKT: usize = 16;

/// The racing test's writer: each packet goes out a random 0-600 ns after
/// the reader's acknowledgement of the previous one arrived, which is just
/// when the reader, finding its ring empty, arms a notification: the
/// arming keeps racing the writer's index store (the store-load window the
/// barriers close). Then the writer is silent until the next
/// acknowledgement, so a wake-up lost on a packet is never made good by a
/// later one.
fn race_write(ep: &mut Endpoint) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut ack = [0u8; 1];
    for i in 0..PACKETS {
        let until = std::time::Instant::now() + Duration::from_nanos(rng.gen_range(0..600));
        while std::time::Instant::now() < until {
            std::hint::spin_loop();
        }
        ep.send(&[(i % 251) as u8; PKT]).unwrap();
        assert_eq!(ep.recv(&mut ack).unwrap(), 1, "end of stream");
    }
}

/// The racing test's reader: non-blocking, so it arms the moment its ring
/// is empty (no spin), then waits at most 100 ms. A wait that times out
/// with a packet in the ring is a lost wake-up; returns how many.
fn race_read(ep: &mut Endpoint) -> u32 {
    ep.set_nonblocking(true);
    let (mut lost, mut buf) = (0, [0u8; PKT]);
    let mut i = 0;
    while i < PACKETS {
        match ep.recv(&mut buf) {
            Ok(0) => panic!("end of stream after {i} packets"),
            Ok(_) => {
                assert_eq!(buf, [(i % 251) as u8; PKT], "packet {i} differs");
                i += 1;
                loop {
                    match ep.send(&[1]) {
                        Ok(_) => break,
                        Err(e) if would_block(&e) => {
                            ep.wait_timeout(Some(Duration::from_millis(100))).unwrap();
                        }
                        Err(e) => panic!("send: {e}"),
                    }
                }
            }
            Err(e) if would_block(&e) => {
                if !ep.wait_timeout(Some(Duration::from_millis(100))).unwrap()
                    && ep.data_ready().unwrap() >= PKT
                {
                    lost += 1;
                }
            }
            Err(e) => panic!("recv: {e}"),
        }
    }
    lost
}

#[test]
#[ignore = "child process entry point"]
fn child() {
    let role = child_role();
    if role == "writer" || role == "reader" {
        let mut ep = if role == "writer" {
            let mut ep = Endpoint::listen(dom(1), &port("fence"), 4096, 4096).unwrap();
            ep.accept(Some(Duration::from_secs(20))).unwrap();
            race_write(&mut ep);
            ep.linger().unwrap();
            ep
        } else {
            let mut ep =
                Endpoint::connect(dom(0), &port("fence"), Some(Duration::from_secs(20))).unwrap();
            println!("lost={}", race_read(&mut ep));
            ep
        };
        println!("fences={}", fences_name(ep.fences().unwrap()));
        ep.close().unwrap();
        return;
    }
    let max_us: u64 = std::env::var("MAX_US").unwrap().parse().unwrap();
    let mut ep = if role == "server" {
        Endpoint::listen(dom(1), &port("fence"), 4096, 4096).unwrap()
    } else {
        Endpoint::connect(dom(0), &port("fence"), Some(Duration::from_secs(20))).unwrap()
    };
    if role == "server" {
        ep.accept(Some(Duration::from_secs(20))).unwrap();
        echo(&mut ep, 7, max_us);
    } else {
        ping(&mut ep, 8, max_us);
    }
    println!("fences={}", fences_name(ep.fences().unwrap()));
    ep.close().unwrap();
}

/// Wait for both children, which must succeed; their `key=value` lines.
/// After `secs` both are killed and the test fails: a lost wake-up hangs
/// a side for ever, and a hung child must not outlive the test (it would
/// hold the harness's output pipe open).
fn both(
    mut kids: [std::process::Child; 2],
    secs: u64,
    what: &str,
) -> [std::collections::HashMap<String, String>; 2] {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while kids.iter_mut().any(|k| matches!(k.try_wait(), Ok(None))) {
        if std::time::Instant::now() > deadline {
            for k in &mut kids {
                let _ = k.kill();
                let _ = k.wait();
            }
            panic!("{what}: still blocked after {secs} s (a lost wake-up?)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    kids.map(child_values)
}

/// Run a server and a client child (with `server_env` / `client_env`)
/// through the ping-pong; their final fences.
fn pair(
    max_us: u64,
    server_env: &[(&str, String)],
    client_env: &[(&str, String)],
) -> (String, String) {
    let dir = private_tempdir();
    fn with<'a>(env: &[(&'a str, String)], max_us: u64) -> Vec<(&'a str, String)> {
        let mut v = env.to_vec();
        v.push(("MAX_US", max_us.to_string()));
        v
    }
    let server = spawn(ENTRY, "server", 0, dir.path(), &with(server_env, max_us));
    let client = spawn(ENTRY, "client", 1, dir.path(), &with(client_env, max_us));
    let [s, c] = both([server, client], 120, "ping-pong with sleeping sides");
    assert!(
        walk(dir.path()).is_empty(),
        "left behind: {:?}",
        walk(dir.path())
    );
    (s["fences"].clone(), c["fences"].clone())
}

fn on() -> Vec<(&'static str, String)> {
    vec![("VCHAN_MEMBARRIER", "1".to_owned())]
}

#[test]
fn both_sides_with_membarrier_drop_the_fast_path_fence_and_lose_no_wake_up() {
    let want = if kernel_has_membarrier() {
        "peer-barrier"
    } else {
        "full"
    };
    // Pauses around the spin budget (2-100 µs): sides park and wake often.
    for max_us in [0, 150, 600] {
        let (s, c) = pair(max_us, &on(), &on());
        assert_eq!(
            (s.as_str(), c.as_str()),
            (want, want),
            "pauses up to {max_us} µs"
        );
    }
}

/// A reader that arms the moment its ring is empty, racing a writer's
/// index store round after round (see [`race_write`]): no wake-up may be
/// lost, with the light fast path and with full fences alike.
#[test]
fn a_reader_arming_at_once_against_a_racing_writer_loses_no_wake_up() {
    let want = if kernel_has_membarrier() {
        "peer-barrier"
    } else {
        "full"
    };
    // Asked for on both sides; and the default (not asked for).
    for (env, want) in [(on(), want), (vec![], "full")] {
        let dir = private_tempdir();
        let writer = spawn(ENTRY, "writer", 0, dir.path(), &env);
        let reader = spawn(ENTRY, "reader", 1, dir.path(), &env);
        let [w, r] = both([writer, reader], 120, "racing arm and write");
        assert_eq!(r["lost"], "0", "lost wake-ups (fences {})", r["fences"]);
        assert_eq!((w["fences"].as_str(), r["fences"].as_str()), (want, want));
    }
}

#[test]
fn a_peer_without_membarrier_keeps_both_sides_on_full_fences() {
    let off = [("VCHAN_MEMBARRIER", "0".to_owned())];
    // Server without: the client may not go light (no announcement), and
    // the server is not registered for the client's barrier.
    let (s, c) = pair(150, &off, &on());
    assert_eq!((s.as_str(), c.as_str()), ("full", "full"));
    // Client without (the default: not asked for), the other way round.
    let (s, c) = pair(150, &on(), &[]);
    assert_eq!((s.as_str(), c.as_str()), ("full", "full"));
}
