//! Lost wake-ups under load (issue 10): Debian's libxenvchan peers —
//! `vchan-socket-proxy` in both roles and tests/c/xvchan.c — against the
//! Rust API, many short runs while every CPU is kept busy, each run
//! checked byte for byte; and runs where the C side dies, after which the
//! Rust side must end with end-of-stream or an error, never wait.
//!
//! Before xensim simulated event-channel masking, about half the
//! proxy-server runs hung: the proxy consumed the client's connect event
//! and the event of its first write in one `libxenvchan_wait`, then slept
//! in `select` on a full ring. A run that hangs is cut short by a
//! watchdog (the C peer is killed, so the Rust side fails with a message
//! instead of blocking the test run); if the Rust side itself never
//! returns, the watchdog aborts the test binary.

#[path = "../../vchan/tests/common/mod.rs"]
mod common;
mod support;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use vchan_test_support::kill;

use common::{hex, pump, Source};
use rand::{Rng, SeedableRng};
use sha2::Digest;
use support::*;
use vchan::{Endpoint, Error, State};

/// One spinning thread per CPU, shared by the tests of this binary while
/// any of them runs.
struct Load {
    users: usize,
    stop: Option<Arc<AtomicBool>>,
    threads: Vec<JoinHandle<()>>,
}

static LOAD: Mutex<Load> = Mutex::new(Load {
    users: 0,
    stop: None,
    threads: Vec::new(),
});

/// Keeps every CPU busy while alive.
struct Busy;

impl Busy {
    fn start() -> Busy {
        let mut l = LOAD.lock().unwrap_or_else(|e| e.into_inner());
        if l.users == 0 {
            let stop = Arc::new(AtomicBool::new(false));
            let n = std::thread::available_parallelism().map_or(2, |n| n.get());
            l.threads = (0..n)
                .map(|_| {
                    let stop = stop.clone();
                    std::thread::spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            std::hint::spin_loop();
                        }
                    })
                })
                .collect();
            l.stop = Some(stop);
        }
        l.users += 1;
        Busy
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut l = LOAD.lock().unwrap_or_else(|e| e.into_inner());
        l.users -= 1;
        if l.users == 0 {
            if let Some(stop) = l.stop.take() {
                stop.store(true, Ordering::Relaxed);
            }
            for t in l.threads.drain(..) {
                let _ = t.join();
            }
        }
    }
}

/// Per-run watchdog: after `KILL_AFTER` it SIGKILLs the C peer (the run
/// then fails on the Rust side, which sees its peer gone); after
/// `ABORT_AFTER` it aborts the process (the Rust side did not notice).
struct Watchdog {
    done: Arc<AtomicBool>,
    fired: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

const KILL_AFTER: Duration = Duration::from_secs(20);
const ABORT_AFTER: Duration = Duration::from_secs(40);

impl Watchdog {
    fn new(what: String, pid: u32) -> Watchdog {
        let done = Arc::new(AtomicBool::new(false));
        let fired = Arc::new(AtomicBool::new(false));
        let (d, f) = (done.clone(), fired.clone());
        let thread = std::thread::spawn(move || {
            let t = Instant::now();
            while !d.load(Ordering::SeqCst) {
                let e = t.elapsed();
                if e > ABORT_AFTER {
                    eprintln!("{what}: the Rust side still waits {e:?} after its start (its C peer was killed at {KILL_AFTER:?}): aborting");
                    std::process::abort();
                }
                if e > KILL_AFTER && !f.swap(true, Ordering::SeqCst) {
                    eprintln!("{what}: no progress for {KILL_AFTER:?}: killing the C peer");
                    // SAFETY: kill(2) of our own child; at worst ESRCH.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Watchdog {
            done,
            fired,
            thread: Some(thread),
        }
    }

    /// Did it kill the peer?
    fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    /// End the watch; panics if it had to kill the peer.
    fn finish(mut self, what: &str) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        assert!(
            !self.fired.load(Ordering::SeqCst),
            "{what}: lost wake-up (the run hung until the watchdog killed the C peer)"
        );
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn proxy(domid: u32, dir: &Path, args: &[&str]) -> Child {
    under_xensim(domid, dir, &socket_proxy(), args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn vchan-socket-proxy")
}

/// Wait until the peer has read everything we wrote (the proxy drops what
/// is still in the ring when it sees us closed).
fn await_drained(ep: &Endpoint, what: &str) {
    let ring = ep.write_ring_size().unwrap();
    loop {
        match ep.buffer_space() {
            Ok(n) if n == ring => return,
            Ok(_) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

fn write_payload(ep: &mut Endpoint, seed: u64, len: u64, dog: &Watchdog, what: &str) -> String {
    let mut src = Source::new(seed, len);
    while src.left_bytes() > 0 {
        if let Err(e) = ep.write_all(&src.next_chunk(50_000)) {
            assert!(
                !dog.fired(),
                "{what}: lost wake-up: the write hung until the watchdog killed the C peer"
            );
            panic!("{what}: write: {e}");
        }
    }
    hex(src.hash.finalize())
}

const RUNS: u64 = 40;

#[test]
fn proxy_server_rust_client_under_load() {
    let _busy = Busy::start();
    let path = "/local/domain/0/data/vchan/1/px";
    for run in 0..RUNS {
        let what = format!("proxy server, run {run}");
        let dir = tmpdir();
        let len = rand::rngs::StdRng::seed_from_u64(run).gen_range(1..=600_000);
        // Its stdin stays open (it would stop at its end); its stdout is
        // what it received.
        let mut px = proxy(0, dir.path(), &["-m", "server", "1", path, "-"]);
        let stdin = px.stdin.take().unwrap();
        let out = drain(px.stdout.take().unwrap());
        let dog = Watchdog::new(what.clone(), px.id());
        let mut ep = rust_client(dir.path(), path);
        let sent = write_payload(&mut ep, run, len, &dog, &what);
        await_drained(&ep, &what);
        ep.close().unwrap();
        dog.finish(&what);
        wait_ok(&mut px, Duration::from_secs(20), &what);
        drop(stdin);
        let (got, n) = out.join().unwrap();
        assert_eq!((n, got), (len, sent), "{what}: output");
    }
}

#[test]
fn rust_server_proxy_client_under_load() {
    let _busy = Busy::start();
    let path = "/local/domain/0/data/vchan/1/px";
    for run in 0..RUNS {
        let what = format!("proxy client, run {run}");
        let dir = tmpdir();
        let mut rng = rand::rngs::StdRng::seed_from_u64(run ^ 0xc11e);
        let len = rng.gen_range(1..=600_000);
        let ring = 1 << rng.gen_range(10..=16);
        let mut ep = rust_server(dir.path(), path, ring, ring);
        let mut px = proxy(1, dir.path(), &["-m", "client", "0", path, "-"]);
        let stdin = px.stdin.take().unwrap();
        let out = drain(px.stdout.take().unwrap());
        let dog = Watchdog::new(what.clone(), px.id());
        assert_eq!(ep.accept(T).unwrap(), State::Connected, "{what}");
        let sent = write_payload(&mut ep, run, len, &dog, &what);
        await_drained(&ep, &what);
        ep.close().unwrap();
        wait_ok(&mut px, Duration::from_secs(20), &what);
        dog.finish(&what);
        drop(stdin);
        let (got, n) = out.join().unwrap();
        assert_eq!((n, got), (len, sent), "{what}: output");
    }
}

#[test]
fn c_program_both_roles_duplex_under_load() {
    let _busy = Busy::start();
    for run in 0..RUNS {
        let role = if run % 2 == 0 { "server" } else { "client" };
        let what = format!("xvchan {role}, run {run}");
        let dir = tmpdir();
        let mut rng = rand::rngs::StdRng::seed_from_u64(run ^ 0xd00b);
        let (c_bytes, rust_bytes) = (rng.gen_range(0..=400_000), rng.gen_range(0..=400_000));
        let (left, right): (usize, usize) =
            (1 << rng.gen_range(10..=16), 1 << rng.gen_range(12..=16));
        let (mut child, mut ep) = c_and_rust(dir.path(), role, left, right, "stream");
        let dog = Watchdog::new(what.clone(), child.id());
        let fed = feed(child.stdin.take().unwrap(), run, c_bytes);
        let c_out = drain(child.stdout.take().unwrap());
        let (sent, got) = pump(&mut ep, run ^ 0x5eed, rust_bytes, c_bytes);
        ep.close().unwrap();
        wait_ok(&mut child, Duration::from_secs(20), &what);
        dog.finish(&what);
        assert_eq!(got, fed.join().unwrap(), "{what}: Rust received");
        assert_eq!(
            c_out.join().unwrap(),
            (sent, rust_bytes),
            "{what}: C received"
        );
    }
}

/// The C side dies (SIGKILL) at a random moment while the Rust side is
/// blocked writing into a ring the C side no longer drains, or blocked
/// reading: the Rust side ends with an error or end-of-stream.
#[test]
fn c_side_dies_rust_side_ends_under_load() {
    let _busy = Busy::start();
    let path = "/local/domain/0/data/vchan/1/px";
    for run in 0..RUNS / 2 {
        let dir = tmpdir();
        let mut rng = rand::rngs::StdRng::seed_from_u64(run ^ 0xdead);
        let after = Duration::from_millis(rng.gen_range(0..=50));
        let writer = run % 2 == 0;
        let what = format!(
            "killed proxy server, Rust {}, run {run}",
            if writer { "writing" } else { "reading" }
        );
        // The proxy's stdout is a pipe nobody reads: once it is full the
        // proxy stops taking data from the ring.
        let mut px = proxy(0, dir.path(), &["-m", "server", "1", path, "-"]);
        let stdin = px.stdin.take().unwrap();
        let stdout = px.stdout.take().unwrap();
        let pid = px.id();
        let dog = Watchdog::new(what.clone(), pid);
        let mut ep = rust_client(dir.path(), path);
        let killer = std::thread::spawn(move || {
            std::thread::sleep(after);
            kill(&mut px);
        });
        let end = if writer {
            let chunk = vec![7u8; 1 << 16];
            loop {
                match ep.write(&chunk) {
                    Ok(_) => {}
                    Err(e) => break e,
                }
            }
        } else {
            let mut buf = [0u8; 4096];
            match ep.read(&mut buf) {
                Ok(0) => Error::Closed,
                Ok(_) => panic!("{what}: the proxy sent data"),
                Err(e) => e,
            }
        };
        killer.join().unwrap();
        assert!(matches!(end, Error::Closed), "{what}: ended with {end:?}");
        assert!(ep.peer_vanished(), "{what}: the death was not seen as such");
        dog.finish(&what);
        drop((stdin, stdout));
    }
}

/// The C side exits cleanly right after writing: the Rust side reads it
/// all, then end-of-stream.
#[test]
fn c_side_exits_rust_side_reads_to_end_under_load() {
    let _busy = Busy::start();
    for run in 0..RUNS / 2 {
        let role = if run % 2 == 0 { "server" } else { "client" };
        let what = format!("xvchan {role} exits, run {run}");
        let dir = tmpdir();
        let len = rand::rngs::StdRng::seed_from_u64(run ^ 0xe0f).gen_range(0..=300_000);
        let (mut child, mut ep) = c_and_rust(dir.path(), role, 1024, 2048, "stream-close");
        let dog = Watchdog::new(what.clone(), child.id());
        let fed = feed(child.stdin.take().unwrap(), run, len);
        let mut stdout = child.stdout.take().unwrap();
        let (got, n) = read_to_end(&mut ep);
        dog.finish(&what);
        wait_ok(&mut child, Duration::from_secs(20), &what);
        let mut rest = Vec::new();
        stdout.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "{what}: C printed {} bytes", rest.len());
        assert_eq!(
            (n, got),
            (len, fed.join().unwrap()),
            "{what}: Rust received"
        );
        assert_eq!(ep.state().unwrap(), State::Exited, "{what}");
    }
}
