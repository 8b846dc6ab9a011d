//! The hostile-peer harness: our endpoint (server in one test, client in
//! the other, each for at least 10 s of rounds) streams with an honest
//! peer process while an attacker process of the same user
//!
//! - maps the shared pages (through the published share files and /proc,
//!   as any process of our uid can) and rewrites the bytes a peer may
//!   write — indices, orders, live bytes, notify bits, the grant list —
//!   with random and boundary values;
//! - tries to resize the shared memory, truncates and replaces the files
//!   that publish it;
//! - plants FIFOs, symlinks (into a directory outside the tree),
//!   directories and foreign files in the rendezvous tree, under our names
//!   and others;
//! - holds the root lock for random spells;
//!
//! and the peer dies (SIGKILL) at random moments. Every round must end in
//! data intact (rounds where the page was not rewritten), a protocol
//! error, end-of-file or a clean set-up error; never a signal or a panic
//! (the test process would die), and every blocking call returns within
//! 1 s of the peer's death. The ring is mapped between guard pages (see
//! `gnt.rs`). Nothing outside the tree changes (checksummed before/after).

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vchan::{Endpoint, Error, State};
use vchan_core::layout::PAGE_SIZE;
use vchan_test_support::kill;

const ENTRY: &str = "child";
/// Each role runs rounds for at least this long.
const ROLE_SECS: u64 = 10;
/// A round's peer and attacker are killed after this long.
const ROUND_MS: u64 = 700;

/// Child roles: `peer-server` / `peer-client` (an honest endpoint: sends
/// `SEND` bytes of stream `SEED`, reads what comes until end-of-file,
/// closes; any error ends it quietly) and `attacker` (`MODE`, `SEED`,
/// `ROOT`, `OUTSIDE`; runs until killed).
#[test]
#[ignore = "child process entry point"]
fn child() {
    let role = child_role();
    if role == "attacker" {
        attacker();
        return;
    }
    let name = std::env::var("PORT").unwrap();
    let seed: u64 = std::env::var("SEED").unwrap().parse().unwrap();
    let send: u64 = std::env::var("SEND").unwrap().parse().unwrap();
    let size: usize = std::env::var("RING").unwrap().parse().unwrap();
    let t = Some(Duration::from_secs(5));
    let ep = if role == "peer-server" {
        Endpoint::listen(dom(1), &port(&name), size, size).and_then(|mut s| {
            println!("listening=1");
            use std::io::Write;
            let _ = std::io::stdout().flush();
            s.accept(t).map(|_| s)
        })
    } else {
        Endpoint::connect(dom(0), &port(&name), t)
    };
    let Ok(mut ep) = ep else { return };
    let mut src = Source::new(seed, send);
    while src.left_bytes() > 0 {
        let c = src.next_chunk(65536);
        if ep.write_all(&c).is_err() {
            return;
        }
    }
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = ep.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
    let _ = ep.close();
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    /// No attacker: data must be intact.
    Honest,
    /// Rewrite the control page.
    Scribble,
    /// Resize the memory, truncate/replace the share files.
    Truncate,
    /// Plant FIFOs, symlinks, directories, foreign files.
    Plant,
    /// Hold the root lock.
    Lock,
    /// The peer is SIGKILLed at a random moment.
    Kill,
    /// Everything at once.
    All,
}

const MODES: [Mode; 7] = [
    Mode::Honest,
    Mode::Scribble,
    Mode::Truncate,
    Mode::Plant,
    Mode::Lock,
    Mode::Kill,
    Mode::All,
];

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Honest => "honest",
            Mode::Scribble => "scribble",
            Mode::Truncate => "truncate",
            Mode::Plant => "plant",
            Mode::Lock => "lock",
            Mode::Kill => "kill",
            Mode::All => "all",
        }
    }
    fn has(self, m: Mode) -> bool {
        self == m || (self == Mode::All && m != Mode::Honest)
    }
}

/// The attacker process: does what `MODE` says, until killed.
fn attacker() {
    let mode = std::env::var("MODE").unwrap();
    let seed: u64 = std::env::var("SEED").unwrap().parse().unwrap();
    let root = PathBuf::from(std::env::var("ROOT").unwrap());
    let outside = PathBuf::from(std::env::var("OUTSIDE").unwrap());
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let all = mode == "all";
    let mut held: Option<std::fs::File> = None;
    let mut maps: BTreeMap<(u32, u32), ForeignShare> = BTreeMap::new();
    loop {
        if all || mode == "scribble" || mode == "truncate" {
            for (key, path) in shares(&root) {
                if let std::collections::btree_map::Entry::Vacant(e) = maps.entry(key) {
                    if let Some(s) = ForeignShare::map(&path) {
                        e.insert(s);
                    }
                }
            }
        }
        if all || mode == "scribble" {
            for s in maps.values() {
                scribble(s, &mut rng);
            }
        }
        if all || mode == "truncate" {
            for s in maps.values() {
                for len in [0, 1, s.len as i64 - 1, s.len as i64 + PAGE_SIZE as i64] {
                    // SAFETY: ftruncate on our own descriptor.
                    if unsafe { libc::ftruncate(s.fd.as_raw_fd(), len) } == 0 {
                        eprintln!("attacker: resized shared memory to {len}");
                        std::process::exit(9);
                    }
                }
            }
            for (_, path) in shares(&root) {
                if rng.gen_bool(0.5) {
                    let _ = std::fs::OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .and_then(|f| f.set_len(0));
                } else {
                    let tmp = path.with_file_name("x");
                    let _ = std::fs::write(&tmp, b"memfd 1 0 1 1\n");
                    let _ = std::fs::rename(&tmp, &path);
                }
            }
        }
        if all || mode == "plant" {
            plant(&root, &outside, &mut rng);
        }
        if all || mode == "lock" {
            if held.is_some() && rng.gen_bool(0.3) {
                held = None;
            } else if held.is_none() && rng.gen_bool(0.3) {
                if let Ok(f) = std::fs::File::open(&root) {
                    // SAFETY: flock on our own descriptor.
                    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                        held = Some(f);
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..20_000)));
    }
}

/// The share files of the tree: ((domain, id), path).
fn shares(root: &Path) -> Vec<((u32, u32), PathBuf)> {
    let mut out = Vec::new();
    for d in [0u32, 1] {
        let Ok(rd) = std::fs::read_dir(root.join(format!("gnt/{d}"))) else {
            continue;
        };
        for e in rd.flatten() {
            if let Some(id) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) {
                out.push(((d, id), e.path()));
            }
        }
    }
    out
}

/// Rewrite random control fields of a (possible) control page, or random
/// bytes of a ring page, with random and boundary values.
fn scribble(s: &ForeignShare, rng: &mut impl Rng) {
    const BOUNDARY: [u32; 10] = [
        0,
        1,
        2,
        0x3ff,
        0x400,
        0xffff,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_fffe,
        0xffff_ffff,
    ];
    for _ in 0..rng.gen_range(1..8) {
        let v = if rng.gen_bool(0.5) {
            BOUNDARY[rng.gen_range(0..BOUNDARY.len())]
        } else {
            rng.gen()
        };
        // Mostly the header (indices 0..16, orders 16..20, live and
        // notify bytes 20..24, grants 24..), sometimes anywhere.
        let off = if rng.gen_bool(0.8) {
            rng.gen_range(0..64usize) & !3
        } else {
            rng.gen_range(0..s.len / 4) * 4
        };
        s.poke_u32(off, v);
    }
}

/// Plant unexpected entries in the tree (never removing ours).
fn plant(root: &Path, outside: &Path, rng: &mut impl Rng) {
    let dirs = [
        "gnt/0",
        "gnt/1",
        "evtchn/0",
        "evtchn/1",
        "gnt",
        "evtchn",
        "store/local/domain/0/data/vchan/1",
        "store/local/domain/1",
        "",
    ];
    let d = root.join(dirs[rng.gen_range(0..dirs.len())]);
    let n: u32 = rng.gen_range(1..70000);
    let names = [
        n.to_string(),
        format!("{n}.sock"),
        format!("{n}.peer"),
        format!(".tmp-1-{n}"),
        format!("junk{n}"),
    ];
    let p = d.join(&names[rng.gen_range(0..names.len())]);
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    match rng.gen_range(0..4) {
        0 => {
            // SAFETY: c is NUL-terminated.
            unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
        }
        1 => {
            let _ = std::os::unix::fs::symlink(outside, &p);
        }
        2 => {
            let _ = std::fs::create_dir(&p);
        }
        _ => {
            let _ = std::fs::write(&p, b"foreign");
        }
    }
}

/// A checksum of everything below `dir` (names, modes, contents).
fn checksum(dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut all = walk_all(dir);
    all.sort();
    for p in all {
        let m = std::fs::symlink_metadata(&p).unwrap();
        h.update(p.as_os_str().as_encoded_bytes());
        h.update(std::os::unix::fs::MetadataExt::mode(&m).to_le_bytes());
        if m.is_file() {
            h.update(std::fs::read(&p).unwrap());
        }
    }
    hex(h.finalize())
}

/// How a round ended, for our endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// Everything sent arrived intact, and the close came.
    Intact,
    /// An intact prefix, then end-of-file or `Closed` (the peer died).
    Eof,
    /// The received bytes differ from what was sent (only allowed when the
    /// page was rewritten: a liar's data is its own business).
    Garbage,
    /// `Error::Core` with a protocol violation.
    Protocol,
    /// Set-up failed with a clean error (time-out, busy, I/O...).
    SetUp,
}

struct Round {
    server: bool,
    seed: u64,
    send: u64,
    ring: usize,
}

/// Our side of a round: set up, read everything, close.
fn our_side(
    r: &Round,
    dir: &Path,
    peer_ready: std::sync::mpsc::Receiver<bool>,
    connected: &std::sync::atomic::AtomicBool,
) -> (Outcome, u64, &'static str) {
    let name = format!("h{}", r.seed);
    let t = Some(Duration::from_secs(3));
    let ep = if r.server {
        Endpoint::listen_at(backend(dir, 0), dom(1), &path(0, 1, &name), r.ring, r.ring)
            .and_then(|mut s| s.accept(t).map(|st| (s, st)))
            .and_then(|(s, st)| {
                if st == State::Waiting {
                    Err(Error::Timeout(vchan::vchan_core::Role::Server))
                } else {
                    Ok(s)
                }
            })
    } else {
        match peer_ready.recv_timeout(Duration::from_secs(5)) {
            Ok(true) => Endpoint::connect_at(backend(dir, 1), dom(0), &path(0, 1, &name), t),
            _ => Err(Error::Timeout(vchan::vchan_core::Role::Client)),
        }
    };
    let mut ep = match ep {
        Ok(ep) => ep,
        Err(Error::Core(c)) if c.is_protocol_violation() => return (Outcome::Protocol, 0, ""),
        Err(_) => return (Outcome::SetUp, 0, ""),
    };
    connected.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut want = Source::new(r.seed, r.send);
    let mut expect = Vec::new();
    let mut got = 0u64;
    let mut garbage = false;
    let mut buf = vec![0u8; 65536];
    let end = loop {
        if got >= r.send {
            break Outcome::Intact;
        }
        match ep.read(&mut buf) {
            Ok(0) => break Outcome::Eof,
            Ok(n) => {
                let mut k = 0;
                while k < n {
                    if expect.is_empty() {
                        expect = want.next_chunk(65536);
                        if expect.is_empty() {
                            // More than was sent.
                            garbage = true;
                            break;
                        }
                        expect.reverse();
                    }
                    let b = expect.pop().unwrap();
                    garbage |= b != buf[k];
                    k += 1;
                }
                got += n as u64;
            }
            Err(Error::Closed) => break Outcome::Eof,
            Err(Error::Core(c)) if c.is_protocol_violation() => break Outcome::Protocol,
            Err(e) => panic!("read: unexpected error {e:?}"),
        }
    };
    let _ = ep.close();
    let why = if garbage { "garbage" } else { "" };
    (if garbage { Outcome::Garbage } else { end }, got, why)
}

fn run_role(server: bool) {
    let base = private_tempdir();
    let root = base.path().join("v");
    let outside = base.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    for i in 0..5 {
        std::fs::write(outside.join(i.to_string()), format!("precious {i}")).unwrap();
    }
    std::fs::create_dir(outside.join("0.d")).unwrap();
    std::fs::write(outside.join("0.d/1"), b"deep").unwrap();
    let before = checksum(&outside);
    let mut rng = rand::rngs::StdRng::seed_from_u64(if server { 12 } else { 21 });
    let started = Instant::now();
    let mut tally: BTreeMap<(Mode, Outcome), u32> = BTreeMap::new();
    let mut round = 0u64;
    while started.elapsed() < Duration::from_secs(ROLE_SECS) || round < MODES.len() as u64 {
        let mode = MODES[round as usize % MODES.len()];
        round += 1;
        let r = Round {
            server,
            seed: rng.gen(),
            send: rng.gen_range(0..(4u64 << 20)),
            ring: 1 << rng.gen_range(10..=16),
        };
        // The root is (re)made by us: the attacker works inside it.
        vchan::UnixBackend::new(root.clone(), dom(0)).unwrap();
        let env = vec![
            ("PORT", format!("h{}", r.seed)),
            ("SEED", r.seed.to_string()),
            ("SEND", r.send.to_string()),
            ("RING", r.ring.to_string()),
        ];
        let attacker = (mode != Mode::Honest && mode != Mode::Kill).then(|| {
            spawn(
                ENTRY,
                "attacker",
                2,
                &root,
                &[
                    ("MODE", mode.name().to_owned()),
                    ("SEED", r.seed.to_string()),
                    ("ROOT", root.display().to_string()),
                    ("OUTSIDE", outside.display().to_string()),
                ],
            )
        });
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let root2 = root.clone();
        let r2 = Round { ..r };
        let connected = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let connected2 = connected.clone();
        let ours = std::thread::spawn(move || {
            let res = our_side(&r2, &root2, ready_rx, &connected2);
            let _ = done_tx.send(());
            res
        });
        let mut peer = if server {
            // Our side listens first; the client retries until we do.
            std::thread::sleep(Duration::from_millis(5));
            spawn(ENTRY, "peer-client", 1, &root, &env)
        } else {
            let mut p = spawn(ENTRY, "peer-server", 0, &root, &env);
            let out = p.stdout.take().unwrap();
            std::thread::spawn(move || {
                let mut rd = std::io::BufReader::new(out);
                let ok = loop {
                    let mut line = String::new();
                    match rd.read_line(&mut line) {
                        Ok(n) if n > 0 => {
                            if line.trim() == "listening=1" {
                                break true;
                            }
                        }
                        _ => break false,
                    }
                };
                let _ = ready_tx.send(ok);
                let _ = std::io::copy(&mut rd, &mut std::io::sink());
            });
            p
        };
        let kill_after = if mode.has(Mode::Kill) {
            Duration::from_millis(rng.gen_range(0..ROUND_MS))
        } else {
            Duration::from_millis(ROUND_MS)
        };
        let finished_early = done_rx.recv_timeout(kill_after).is_ok();
        // The peer (and the attacker) go: killed, or gone already.
        kill(&mut peer);
        let _ = peer.wait();
        let attacker_status = attacker.map(|mut a| {
            kill(&mut a);
            a.wait().unwrap()
        });
        let killed_at = Instant::now();
        // Once connected, the peer's death ends every blocking call within
        // 1 s; before, set-up waits for its own time-out (3 s).
        let was_connected = connected.load(std::sync::atomic::Ordering::SeqCst);
        if !finished_early {
            let bound = Duration::from_secs(if was_connected { 1 } else { 9 });
            assert!(
                done_rx.recv_timeout(bound).is_ok(),
                "round {round} ({mode:?}, server={server}): our endpoint still blocked {bound:?} \
                 after the peer died"
            );
        }
        let lag = killed_at.elapsed();
        let (outcome, got, _) = ours.join().expect("our side panicked");
        if let Some(st) = attacker_status {
            // Killed, never exited on its own (9 = resized the memory).
            assert!(st.code().is_none(), "attacker: {st:?}");
        }
        let allowed: &[Outcome] = match mode {
            Mode::Honest => &[Outcome::Intact, Outcome::Eof],
            Mode::Kill => &[Outcome::Intact, Outcome::Eof, Outcome::SetUp],
            Mode::Truncate | Mode::Plant | Mode::Lock => {
                &[Outcome::Intact, Outcome::Eof, Outcome::SetUp]
            }
            Mode::Scribble | Mode::All => &[
                Outcome::Intact,
                Outcome::Eof,
                Outcome::Garbage,
                Outcome::Protocol,
                Outcome::SetUp,
            ],
        };
        assert!(
            allowed.contains(&outcome),
            "round {round} ({mode:?}, server={server}, {} bytes, ring {}): {outcome:?} after \
             {got} bytes",
            r.send,
            r.ring
        );
        if mode == Mode::Honest {
            // Our peer may be killed at the round's end before it closed
            // (a slow box): intact up to there in any case.
            assert!(
                outcome == Outcome::Intact || !finished_early,
                "honest round: {outcome:?}"
            );
        }
        assert!(
            lag < Duration::from_secs(1) || finished_early || !was_connected,
            "lag {lag:?}"
        );
        *tally.entry((mode, outcome)).or_default() += 1;
        // Clean the planted entries for the next round (ours are swept).
        let _ = std::fs::remove_dir_all(&root);
    }
    assert_eq!(
        checksum(&outside),
        before,
        "something outside the tree changed"
    );
    eprintln!(
        "hostile harness, our side {}: {round} rounds in {:?}",
        if server { "server" } else { "client" },
        started.elapsed()
    );
    for ((m, o), n) in &tally {
        eprintln!("  {m:?} -> {o:?}: {n}");
    }
    // Every mode ran, and the honest rounds carried data.
    for m in MODES {
        assert!(tally.keys().any(|(mm, _)| *mm == m), "{m:?} never ran");
    }
    assert!(
        tally.contains_key(&(Mode::Honest, Outcome::Intact)),
        "no honest round completed"
    );
}

#[test]
fn hostile_harness_our_server() {
    run_role(true);
}

#[test]
fn hostile_harness_our_client() {
    run_role(false);
}
