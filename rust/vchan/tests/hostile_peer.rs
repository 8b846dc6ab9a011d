//! A peer (or any process of our uid) that lies after the fact: one that
//! truncates or replaces the files behind the shared memory, and one that
//! sets a dead peer's live byte back. Each of them must end in data
//! intact, a protocol error or end-of-file: never a signal, never a hang.

mod common;

use common::*;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};
use vchan::{Endpoint, Error, State};
use vchan_core::layout::CLI_LIVE;
use vchan_test_support::kill;

const ENTRY: &str = "child";
const T: Option<Duration> = Some(Duration::from_secs(20));

/// Child roles: `client-idle` connects and sleeps until killed;
/// `client-send` sends `BYTES` bytes of the stream of seed `SEED`, closes.
#[test]
#[ignore = "child process entry point"]
fn child() {
    let role = child_role();
    let name = std::env::var("PORT").unwrap();
    let mut ep = Endpoint::connect(dom(0), &port(&name), T).unwrap();
    println!("connected=1");
    use std::io::Write;
    std::io::stdout().flush().unwrap();
    if role == "client-idle" {
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let seed: u64 = std::env::var("SEED").unwrap().parse().unwrap();
    let total: u64 = std::env::var("BYTES").unwrap().parse().unwrap();
    let mut src = Source::new(seed, total);
    while src.left_bytes() > 0 {
        let chunk = src.next_chunk(100_000);
        ep.write_all(&chunk).unwrap();
    }
    ep.close().unwrap();
}

/// The server's control page, found through the rendezvous.
fn control_page(root: &Path, p: &str) -> ForeignShare {
    let rel = p.trim_start_matches('/');
    let gref: u32 = std::fs::read_to_string(root.join("store").join(rel).join("ring-ref"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    ForeignShare::map(&root.join(format!("gnt/0/{}", gref >> 9))).expect("map the control page")
}

/// Read the child's output up to line `want`; the rest is drained by a
/// thread (so that the child never writes into a closed pipe).
fn await_line(child: &mut std::process::Child, want: &str) {
    use std::io::BufRead;
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "child exited early");
        if line.trim() == want {
            break;
        }
    }
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
}

/// Issue 12, reproduction 6: once the event channel said the peer died,
/// rewriting its live byte to "connected" does not bring it back: reads
/// end, writes fail, nothing sleeps for ever.
#[test]
fn a_dead_peer_stays_dead_whatever_the_page_says() {
    let dir = private_tempdir();
    let name = "dead";
    let p = path(0, 1, name);
    let mut s = Endpoint::listen_at(backend(dir.path(), 0), dom(1), &p, 4096, 4096).unwrap();
    let mut c = spawn(
        ENTRY,
        "client-idle",
        1,
        dir.path(),
        &[("PORT", name.into())],
    );
    assert_eq!(s.accept(T).unwrap(), State::Connected);
    kill(&mut c);
    let _ = c.wait();
    let mut s = within(5, "read after the kill", move || {
        assert_eq!(s.read(&mut [0u8; 16]).unwrap(), 0);
        s
    });
    assert!(s.peer_vanished());
    let page = control_page(dir.path(), &p);
    // Each operation right after a forgery (no event is pending: the
    // socket's end-of-file was consumed, its descriptor left the epoll set).
    page.poke(CLI_LIVE, 1);
    let mut s = within(5, "blocking read with the live byte forged", move || {
        assert_eq!(s.read(&mut [0u8; 16]).unwrap(), 0);
        s
    });
    page.poke(CLI_LIVE, 1);
    let mut s = within(5, "non-blocking read, write, state", move || {
        s.set_nonblocking(true);
        assert_eq!(s.read(&mut [0u8; 16]).unwrap(), 0);
        page.poke(CLI_LIVE, 1);
        assert!(matches!(s.write(&[1u8; 8192]), Err(Error::Closed)));
        page.poke(CLI_LIVE, 1);
        assert_eq!(s.state().unwrap(), State::Exited);
        s.set_nonblocking(false);
        page.poke(CLI_LIVE, 1);
        assert!(matches!(s.write(&[1u8; 8192]), Err(Error::Closed)));
        page.poke(CLI_LIVE, 1);
        assert_eq!(s.state().unwrap(), State::Exited);
        s
    });
    s.close().unwrap();
}

/// Issue 12, reproduction 2: truncating, growing or replacing the files
/// behind the shared memory while data flows raises no signal: the seals
/// refuse the change to the memory, and the published file is not what is
/// mapped. The transfer completes intact.
#[test]
fn truncating_the_shared_files_raises_no_signal() {
    let dir = private_tempdir();
    let name = "trunc";
    let total: u64 = 64 << 20;
    let p = path(0, 1, name);
    let mut s = Endpoint::listen_at(backend(dir.path(), 0), dom(1), &p, 65536, 65536).unwrap();
    let mut c = spawn(
        ENTRY,
        "client-send",
        1,
        dir.path(),
        &[
            ("PORT", name.into()),
            ("SEED", "5".into()),
            ("BYTES", total.to_string()),
        ],
    );
    await_line(&mut c, "connected=1");
    assert_eq!(s.accept(T).unwrap(), State::Connected);
    let root = dir.path().to_path_buf();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let attacker = std::thread::spawn(move || {
        let (mut refused, mut rounds) = (0u32, 0u32);
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            rounds += 1;
            for owner in [0u32, 1] {
                let Ok(rd) = std::fs::read_dir(root.join(format!("gnt/{owner}"))) else {
                    continue;
                };
                for e in rd.flatten() {
                    if e.file_name()
                        .to_str()
                        .and_then(|n| n.parse::<u32>().ok())
                        .is_none()
                    {
                        continue;
                    }
                    // The memory itself: every size change is refused.
                    if let Some(a) = ForeignShare::map(&e.path()) {
                        for len in [0, 1, a.len as i64 - 1, a.len as i64 + 4096] {
                            // SAFETY: ftruncate on our own descriptor.
                            let rc = unsafe { libc::ftruncate(a.fd.as_raw_fd(), len) };
                            assert_eq!(rc, -1, "the shared memory was resized to {len}");
                            assert_eq!(
                                std::io::Error::last_os_error().raw_os_error(),
                                Some(libc::EPERM)
                            );
                            refused += 1;
                        }
                    }
                    // The published file: truncated, then replaced.
                    let _ = std::fs::OpenOptions::new()
                        .write(true)
                        .open(e.path())
                        .and_then(|f| f.set_len(0));
                    if rounds % 8 == 0 {
                        let tmp = root.join(format!("gnt/{owner}/x"));
                        let _ = std::fs::write(&tmp, b"memfd 1 1 1 1\n");
                        let _ = std::fs::rename(&tmp, e.path());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        refused
    });
    let mut want = Source::new(5, total);
    let mut got = <sha2::Sha256 as sha2::Digest>::new();
    let mut n = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    let started = Instant::now();
    loop {
        let k = s.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        sha2::Digest::update(&mut got, &buf[..k]);
        n += k as u64;
    }
    while want.left_bytes() > 0 {
        want.next_chunk(100_000);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let refused = attacker.join().unwrap();
    eprintln!(
        "{n} bytes in {:?}, {refused} resizes refused",
        started.elapsed()
    );
    assert!(refused > 0, "the attacker never reached the memory");
    assert_eq!(n, total);
    assert_eq!(
        hex(sha2::Digest::finalize(got)),
        hex(sha2::Digest::finalize(want.hash))
    );
    assert!(c.wait().unwrap().success());
    s.close().unwrap();
}

/// A share whose published file lies (a memfd that is not sealed, a file
/// that is too short, garbage) is refused at map time with an error.
#[test]
fn unsealed_or_short_shares_are_refused() {
    let dir = private_tempdir();
    let b = backend(dir.path(), 1);
    // An unsealed memfd of ours, published as domain 0's share 5.
    // SAFETY: plain memfd_create; checked below.
    let fd = unsafe { libc::memfd_create(c"x".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0);
    // SAFETY: fd is fresh and ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: our own descriptor.
    assert_eq!(unsafe { libc::ftruncate(fd.as_raw_fd(), 8192) }, 0);
    // SAFETY: all-zero is a valid `stat`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: our own descriptor, st writable.
    assert_eq!(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) }, 0);
    std::fs::create_dir_all(dir.path().join("gnt/0")).unwrap();
    let lock = std::fs::File::create(dir.path().join("gnt/0/5")).unwrap();
    // SAFETY: flock on our own descriptor: the share looks live.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let publish = |text: String| std::fs::write(dir.path().join("gnt/0/5"), text).unwrap();
    let me = std::process::id();
    for (text, says) in [
        (
            format!("memfd {me} {} {} 2\n", fd.as_raw_fd(), st.st_ino),
            "not a sealed",
        ),
        (format!("memfd {me} 0 1 2\n"), "not a sealed"),
        ("garbage\n".to_owned(), "not a valid share"),
        (
            format!("memfd {me} {} {} 1\n", fd.as_raw_fd(), st.st_ino),
            "no such page",
        ),
    ] {
        publish(text.clone());
        let err = b.map(dom(0), &[5 << 9, (5 << 9) + 1], true, None).err();
        let msg = format!("{:?}", err.map(|e| e.to_string()));
        assert!(msg.contains(says), "{text:?}: {msg}");
    }
}
