//! The Rust peers: this binary as one side of a cell, with the argument
//! convention of bench/c/xvbench.c and bench/ocaml/vbench.ml:
//!
//!   vchan-bench --role CHANNEL server|client RING stream|ping|idle|bounce COUNT SIZE
//!
//! CHANNEL is `vchan` (the unix backend rooted at VCHAN_UNIX_DIR, the
//! server domain 0 listening at [`PATH`]), `socket` or `pipe` (a Unix
//! stream socket or two FIFOs in VCHAN_UNIX_DIR, their buffers the ring
//! size), or `shm:PUBLISH:LAYOUT` (the limit: spinning rings in the tmpfs
//! file BENCH_SHM, see [`crate::shm`]). The server prints `listening` once
//! the client may start. stream: the client writes COUNT bytes of the
//! pattern in SIZE-byte writes, the server reads and checks them in
//! SIZE-byte reads; ping: the client sends COUNT SIZE-byte messages, each
//! after the echo of the last came back, the server echoes (both sleep
//! BENCH_DELAY_US µs before each message when set); idle: the client stays
//! silent COUNT ms, then writes a byte the server blocks on; bounce (shm
//! only): one cache line back and forth COUNT times. The measuring side
//! prints `key=value` lines. `BENCH_SEGMENT=N`: vchan endpoints publish
//! every N bytes.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use vchan::{DomId, Endpoint, UnixBackend};

use crate::shm::{Layout, Mapping};
use crate::{pattern, SAMPLE};

/// The rendezvous of every vchan pair.
pub const PATH: &str = "/local/domain/0/data/vchan/1/bench";
const T: Option<Duration> = Some(Duration::from_secs(30));

/// One side of a cell, from the arguments after `--role`.
pub fn role(args: &[String]) -> Result<(), String> {
    let [channel, side, ring, mode, count, size] = args else {
        return Err("usage: vchan-bench --role CHANNEL server|client RING MODE COUNT SIZE".into());
    };
    fn num<T: std::str::FromStr>(v: &str) -> Result<T, String> {
        v.parse().map_err(|_| format!("bad number {v:?}"))
    }
    let server = side == "server";
    let (ring, count, size): (usize, u64, usize) = (num(ring)?, num(count)?, num(size)?);
    let env = |k: &str| std::env::var_os(k).ok_or(format!("{k} is not set"));
    let dir = PathBuf::from(env("VCHAN_UNIX_DIR")?);
    let listening = || println!("listening");
    let out = match channel.split(':').collect::<Vec<_>>()[..] {
        ["vchan"] => {
            let dom = |d: u32| DomId::new(d).map_err(|e| format!("domid {d}: {e}"));
            let (me, peer) = if server { (0, 1) } else { (1, 0) };
            let backend = UnixBackend::new(dir, dom(me)?).map_err(|e| format!("backend: {e}"))?;
            let backend = std::sync::Arc::new(backend);
            let mut ep = if server {
                let mut ep = Endpoint::listen_at(backend, dom(peer)?, PATH, ring, ring)
                    .map_err(|e| format!("listen: {e}"))?;
                listening();
                ep.set_nonblocking(false);
                ep.accept(T).map_err(|e| format!("accept: {e}"))?;
                ep
            } else {
                Endpoint::connect_at(backend, dom(peer)?, PATH, T)
                    .map_err(|e| format!("connect: {e}"))?
            };
            ep.set_nonblocking(false);
            if let Some(n) = std::env::var_os("BENCH_SEGMENT") {
                let n: usize = num(n.to_str().unwrap_or("?"))?;
                ep.set_segments(n, n)
                    .map_err(|e| format!("segments: {e}"))?;
            }
            let out = work(&mut ep, server, mode, count, size)?;
            ep.close().map_err(|e| format!("close: {e}"))?;
            out
        }
        ["socket"] => {
            let path = dir.join("sock");
            let s = if server {
                let l = UnixListener::bind(&path).map_err(|e| format!("bind: {e}"))?;
                listening();
                l.accept().map_err(|e| format!("accept: {e}"))?.0
            } else {
                UnixStream::connect(&path).map_err(|e| format!("connect: {e}"))?
            };
            for opt in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
                set(&s, "setsockopt", ring, |fd, v| {
                    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
                    // SAFETY: a socket we own, a c_int option of that size.
                    unsafe {
                        libc::setsockopt(fd, libc::SOL_SOCKET, opt, (&v as *const i32).cast(), len)
                    }
                })?;
            }
            work(&mut Duplex(&s, &s), server, mode, count, size)?
        }
        ["pipe"] => {
            // Server to client "down", client to server "up"; each writer
            // sizes its pipe before writing.
            let (up, down) = (dir.join("up"), dir.join("down"));
            let open = |p: &PathBuf, write: bool| {
                let f = std::fs::OpenOptions::new()
                    .read(!write)
                    .write(write)
                    .open(p);
                f.map_err(|e| format!("open {}: {e}", p.display()))
            };
            let (r, w) = if server {
                for p in [&up, &down] {
                    let st = std::process::Command::new("mkfifo").arg(p).status();
                    st.ok().filter(|s| s.success()).ok_or("mkfifo failed")?;
                }
                listening();
                let r = open(&up, false)?;
                (r, open(&down, true)?)
            } else {
                let w = open(&up, true)?;
                (open(&down, false)?, w)
            };
            // SAFETY: F_SETPIPE_SZ on a pipe we own.
            set(&w, "F_SETPIPE_SZ", ring, |fd, v| unsafe {
                libc::fcntl(fd, libc::F_SETPIPE_SZ, v)
            })?;
            work(&mut Duplex(&r, &w), server, mode, count, size)?
        }
        ["shm", publish, layout] => {
            let layout = if layout == "vchan" {
                Layout::Vchan
            } else {
                Layout::Separate
            };
            let map = Mapping::open(&PathBuf::from(env("BENCH_SHM")?), ring, layout)?;
            listening();
            // The server writes ring 0 (and is side 0 of a bounce, which
            // measures).
            let tx = usize::from(!server);
            if mode == "bounce" {
                let s0 = sleeps();
                let median = map.bounce(tx, count)?;
                match server {
                    true => rtt_lines(median, sleeps() - s0),
                    false => String::new(),
                }
            } else {
                work(&mut map.end(tx, num(publish)?), server, mode, count, size)?
            }
        }
        _ => return Err(format!("unknown channel {channel}")),
    };
    print!("{out}");
    Ok(())
}

/// Set an int option of `fd`'s file to `v`: `call(fd, v)` makes the
/// system call.
fn set(
    fd: &impl AsRawFd,
    what: &str,
    v: usize,
    call: impl Fn(i32, i32) -> i32,
) -> Result<(), String> {
    let v = i32::try_from(v).map_err(|_| format!("{what} {v}"))?;
    match call(fd.as_raw_fd(), v) {
        rc if rc < 0 => Err(format!("{what} {v}: {}", std::io::Error::last_os_error())),
        _ => Ok(()),
    }
}

/// Reading from one handle, writing to another.
struct Duplex<R, W>(R, W);

impl<R: Read, W> Read for Duplex<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R, W: Write> Write for Duplex<R, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.1.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.1.flush()
    }
}

/// This side's part of `mode`; what it measured, as `key=value` lines.
fn work(
    l: &mut (impl Read + Write),
    server: bool,
    mode: &str,
    count: u64,
    size: usize,
) -> Result<String, String> {
    let pat = pattern(size);
    let delay = std::env::var("BENCH_DELAY_US")
        .ok()
        .and_then(|v| v.parse().ok());
    let pause = || delay.map(|us| std::thread::sleep(Duration::from_micros(us)));
    let mut buf = vec![0u8; size];
    match (mode, server) {
        ("stream", true) => {
            let (mut pos, mut start, mut samples) = (0u64, 0u64, 0u64);
            let (mut t0, mut s0) = (Instant::now(), 0);
            while pos < count {
                let want = (count - pos).min(size as u64) as usize;
                let n = read_some(l, &mut buf[..want])?;
                samples += pat.verify(pos, &buf[..n], SAMPLE)?;
                if pos == 0 {
                    (t0, s0, start) = (Instant::now(), sleeps(), n as u64);
                }
                pos += n as u64;
            }
            let (secs, sleeps) = (t0.elapsed().as_secs_f64(), sleeps() - s0);
            let bytes = pos - start;
            return Ok(format!(
                "bytes={bytes}\nsecs={secs:.9}\nsamples={samples}\nsleeps={sleeps}\n"
            ));
        }
        ("stream", false) => {
            for pos in (0..count).step_by(size) {
                w(l, pat.run(pos, (count - pos).min(size as u64) as usize))?;
            }
        }
        ("ping", true) => {
            for _ in 0..count {
                read_exact(l, &mut buf)?;
                pause();
                w(l, &buf)?;
            }
        }
        ("ping", false) => {
            let mut rtt = Vec::with_capacity(count as usize);
            let s0 = sleeps();
            for i in 0..count {
                let out = pat.run(i, size);
                pause();
                let t = Instant::now();
                w(l, out)?;
                read_exact(l, &mut buf)?;
                rtt.push(t.elapsed().as_nanos() as u64);
                if buf != out {
                    return Err(format!("echo differs in round {i}"));
                }
            }
            rtt.sort_unstable();
            let median = rtt.get(rtt.len() / 2).ok_or("no rounds")?;
            return Ok(rtt_lines(*median, sleeps() - s0));
        }
        ("idle", true) => {
            let (c0, t0) = (usage().1, Instant::now());
            read_some(l, &mut [0u8; 1])?;
            let (cpu, wall) = (usage().1 - c0, t0.elapsed().as_secs_f64());
            return Ok(format!("cpu_secs={cpu:.6}\nwall_secs={wall:.6}\n"));
        }
        ("idle", false) => {
            std::thread::sleep(Duration::from_millis(count));
            w(l, &[1])?;
        }
        _ => return Err(format!("unknown mode {mode}")),
    }
    Ok(String::new())
}

fn w(l: &mut impl Write, b: &[u8]) -> Result<(), String> {
    l.write_all(b).map_err(|e| format!("write: {e}"))
}

/// Read at least a byte (end-of-stream is an error: readers know how much
/// is coming).
fn read_some(l: &mut impl Read, buf: &mut [u8]) -> Result<usize, String> {
    loop {
        match l.read(buf) {
            Ok(0) => return Err("early end-of-stream".into()),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

fn read_exact(l: &mut impl Read, mut buf: &mut [u8]) -> Result<(), String> {
    while !buf.is_empty() {
        let n = read_some(l, buf)?;
        buf = &mut buf[n..];
    }
    Ok(())
}

/// A pinger's result lines.
fn rtt_lines(median_ns: u64, sleeps: u64) -> String {
    format!("median_ns={median_ns}\nsleeps={sleeps}\n")
}

/// This process's voluntary context switches (how often it slept) and CPU
/// time (user and system, seconds) so far.
fn usage() -> (u64, f64) {
    // SAFETY: rusage is plain data; all-zero is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: ru is a valid out-pointer for getrusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return (0, 0.0);
    }
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
    (ru.ru_nvcsw as u64, t(ru.ru_utime) + t(ru.ru_stime))
}

fn sleeps() -> u64 {
    usage().0
}
