//! Test support: child processes (the test binary re-executing one of its
//! own ignored tests), backends rooted in a temporary directory, and a
//! single-threaded full-duplex pump.
#![allow(dead_code)]

use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use vchan::{Backend, DomId, Endpoint, Error, Port, UnixBackend};
use vchan_test_support::values;

pub const ROLE: &str = "VCHAN_TEST_ROLE";

/// Start the ignored test `entry` of this test binary as a child process
/// with `role`, in domain `domid`, rooted at `dir`.
pub fn spawn(entry: &str, role: &str, domid: u32, dir: &Path, extra: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        entry,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ])
    .env(ROLE, role)
    .env("VCHAN_DOMID", domid.to_string())
    .env("VCHAN_UNIX_DIR", dir)
    .env("VCHAN_BACKEND", "unix")
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Run `f` on a thread; fail (instead of hanging) if it takes longer than
/// `secs`.
pub fn within<R: Send + 'static>(
    secs: u64,
    what: &str,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(r) => r,
        Err(_) => panic!("{what}: still blocked after {secs} s"),
    }
}

/// A share of the unix backend mapped the way any process of our uid can
/// (what a hostile peer does): through its published file
/// (`gnt/<domid>/<id>`, `memfd <pid> <fd> <inode> <pages>`) and /proc.
pub struct ForeignShare {
    ptr: *mut u8,
    /// Bytes mapped.
    pub len: usize,
    /// The memfd, opened through /proc.
    pub fd: std::os::fd::OwnedFd,
}

// SAFETY: the mapping is plain shared memory, written with volatile stores
// only; it may move to another thread.
unsafe impl Send for ForeignShare {}

impl ForeignShare {
    /// Map the share published at `file`, read-write; `None` if it is not
    /// (or no longer) a share, or its memory is shorter than it says.
    pub fn map(file: &Path) -> Option<ForeignShare> {
        let text = std::fs::read_to_string(file).ok()?;
        let f: Vec<&str> = text.split_whitespace().collect();
        let ["memfd", pid, fd, _, pages] = f.as_slice() else {
            return None;
        };
        let pages: usize = pages.parse().ok()?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/proc/{pid}/fd/{fd}"))
            .ok()?;
        let len = pages * vchan::vchan_core::layout::PAGE_SIZE;
        if (file.metadata().ok()?.len() as usize) < len || len == 0 {
            return None;
        }
        // SAFETY: a new shared mapping of `len` bytes of a memfd at least
        // that long (checked above), which cannot shrink (sealed) — and if
        // it is not ours, only this test process would fault.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        Some(ForeignShare {
            ptr: p.cast(),
            len,
            fd: file.into(),
        })
    }

    /// Write byte `v` at `off`.
    pub fn poke(&self, off: usize, v: u8) {
        assert!(off < self.len);
        // SAFETY: off is inside our mapping.
        unsafe { std::ptr::write_volatile(self.ptr.add(off), v) };
    }

    /// Write `v` at the 4-aligned `off`.
    pub fn poke_u32(&self, off: usize, v: u32) {
        assert!(off % 4 == 0 && off + 4 <= self.len);
        // SAFETY: aligned and inside our mapping.
        unsafe { std::ptr::write_volatile(self.ptr.add(off).cast::<u32>(), v) };
    }
}

impl Drop for ForeignShare {
    fn drop(&mut self) {
        // SAFETY: our own mapping.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// The role this process was started with by its parent test. The child
/// entry points are `#[ignore]`d tests; run on their own (`--ignored`)
/// without a role they fail rather than pass having done nothing.
pub fn child_role() -> String {
    match std::env::var(ROLE) {
        Ok(role) if !role.is_empty() => role,
        _ => panic!(
            "this is a child process entry point: its parent test starts it with {ROLE}=<role>"
        ),
    }
}

/// The environment variable that lets a test skip when this machine
/// cannot run it (`VCHAN_TEST_ALLOW_SKIP=1`).
pub const ALLOW_SKIP: &str = "VCHAN_TEST_ALLOW_SKIP";

/// A test that cannot run here: fails, naming the reason, unless skipping
/// was allowed with `VCHAN_TEST_ALLOW_SKIP=1`; then it says that it skipped
/// and the caller returns.
pub fn skip(why: &str) {
    if std::env::var(ALLOW_SKIP).as_deref() == Ok("1") {
        eprintln!("SKIPPED ({ALLOW_SKIP}=1): {why}");
    } else {
        panic!("cannot run here: {why} (set {ALLOW_SKIP}=1 to skip instead)");
    }
}

/// Wait for a child that must succeed; the `key=value` lines it printed.
pub fn child_values(child: Child) -> std::collections::HashMap<String, String> {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "child failed: {:?}", out.status);
    values(&String::from_utf8(out.stdout).unwrap())
}

/// A fresh private (0700) directory: the unix backend refuses a
/// directory other users can reach.
pub fn private_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .unwrap()
}

pub fn backend(dir: &Path, domid: u32) -> Arc<dyn Backend> {
    Arc::new(UnixBackend::new(dir.to_path_buf(), DomId::new(domid).unwrap()).unwrap())
}

pub fn dom(d: u32) -> DomId {
    DomId::new(d).unwrap()
}

pub fn port(name: &str) -> Port {
    Port::new(name).unwrap()
}

pub fn path(server: u32, client: u32, p: &str) -> String {
    vchan::rendezvous_path(dom(server), dom(client), &port(p))
}

/// Every file and directory below the rendezvous directory `dir`, but its
/// marker (which stays).
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let marker = dir.join(vchan::backend::unix::MARKER);
    walk_all(dir).into_iter().filter(|p| *p != marker).collect()
}

/// Every file and directory below `dir`.
pub fn walk_all(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            out.push(e.path());
            if e.file_type().unwrap().is_dir() {
                out.extend(walk_all(&e.path()));
            }
        }
    }
    out
}

pub fn would_block(e: &Error) -> bool {
    matches!(e, Error::Io(io) if io.kind() == ErrorKind::WouldBlock)
}

/// A deterministic byte stream with random chunk sizes.
pub struct Source {
    rng: rand::rngs::StdRng,
    left: u64,
    pub hash: Sha256,
}

impl Source {
    pub fn new(seed: u64, total: u64) -> Source {
        Source {
            rng: rand::rngs::StdRng::seed_from_u64(seed),
            left: total,
            hash: Sha256::new(),
        }
    }
    /// Bytes still to come.
    pub fn left_bytes(&self) -> u64 {
        self.left
    }
    /// The next chunk (empty at the end).
    pub fn next_chunk(&mut self, max: usize) -> Vec<u8> {
        let n = (self.rng.gen_range(1..=max) as u64).min(self.left) as usize;
        let mut v = vec![0u8; n];
        self.rng.fill_bytes(&mut v);
        self.hash.update(&v);
        self.left -= n as u64;
        v
    }
}

/// Non-blocking pump of one endpoint: send `total` bytes from `seed` and
/// receive until end-of-stream or `expect` bytes. Returns the hex SHA-256
/// of (sent, received).
pub fn pump(ep: &mut Endpoint, seed: u64, total: u64, expect: u64) -> (String, String) {
    ep.set_nonblocking(true);
    let mut src = Source::new(seed, total);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0xdead);
    let mut chunk: Vec<u8> = Vec::new();
    let mut off = 0;
    let mut got = 0u64;
    let mut rhash = Sha256::new();
    let mut buf = vec![0u8; 300_000];
    let mut sent_all = total == 0;
    loop {
        let mut progress = false;
        if !sent_all {
            if off == chunk.len() {
                chunk = src.next_chunk(200_000);
                off = 0;
            }
            match ep.write(&chunk[off..]) {
                Ok(n) => {
                    off += n;
                    progress = true;
                }
                Err(e) if would_block(&e) => {}
                Err(e) => panic!("write: {e}"),
            }
            sent_all = off == chunk.len() && src.left == 0;
        }
        if got < expect {
            let want = rng.gen_range(1..=buf.len());
            match ep.read(&mut buf[..want]) {
                Ok(0) => panic!("early end-of-stream after {got} of {expect} bytes"),
                Ok(n) => {
                    rhash.update(&buf[..n]);
                    got += n as u64;
                    progress = true;
                }
                Err(e) if would_block(&e) => {}
                Err(e) => panic!("read: {e}"),
            }
        }
        if sent_all && got >= expect {
            break;
        }
        if !progress {
            // Spin a little on the rings before sleeping on the event fd.
            let t = Instant::now();
            while t.elapsed() < Duration::from_micros(50) {
                if ep.data_ready().unwrap() > 0 || (!sent_all && ep.buffer_space().unwrap() > 0) {
                    break;
                }
                std::hint::spin_loop();
            }
            if ep.data_ready().unwrap() == 0 && (sent_all || ep.buffer_space().unwrap() == 0) {
                let ready = poll_in(&[ep.as_raw_fd()], 10_000);
                assert!(!ready.is_empty(), "lost wake-up: nothing for 10 s");
                ep.consume_events().unwrap();
            }
        }
    }
    (hex(src.hash.finalize()), hex(rhash.finalize()))
}

pub fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// poll(2) for readability; returns the indices that are readable.
pub fn poll_in(fds: &[i32], timeout_ms: i32) -> Vec<usize> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: p is a valid array of pollfd for the duration of the call.
    let rc = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
    assert!(rc >= 0, "poll: {}", std::io::Error::last_os_error());
    p.iter()
        .enumerate()
        .filter(|(_, p)| p.revents != 0)
        .map(|(i, _)| i)
        .collect()
}
