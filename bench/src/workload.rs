//! The two workloads, over anything that moves bytes between two
//! processes: a one-way stream and a ping-pong.

use std::io::{Read, Write};
use std::time::Instant;

use crate::pattern::Pattern;

/// One end of a byte channel, blocking.
pub trait Link {
    /// Read at least one byte (end-of-stream is an error here: every
    /// reader knows how much is coming).
    fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, String>;
    /// Write all of `buf`.
    fn write_all(&mut self, buf: &[u8]) -> Result<(), String>;
}

/// A kernel channel: a socket (both halves one socket) or two pipes.
pub struct IoLink<R, W> {
    pub r: R,
    pub w: W,
}

impl<R: Read, W: Write> Link for IoLink<R, W> {
    fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, String> {
        loop {
            match self.r.read(buf) {
                Ok(0) => return Err("early end-of-stream".into()),
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> Result<(), String> {
        self.w.write_all(buf).map_err(|e| format!("write: {e}"))
    }
}

/// This process's resource usage so far: (voluntary context switches,
/// that is how often it slept; CPU time, user and system, in seconds).
pub fn usage() -> (u64, f64) {
    // SAFETY: rusage is plain data; all-zero is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: ru is a valid out-pointer for getrusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return (0, 0.0);
    }
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
    (ru.ru_nvcsw as u64, t(ru.ru_utime) + t(ru.ru_stime))
}

/// How often this process slept so far.
pub fn sleeps() -> u64 {
    usage().0
}

/// Block on a read of one byte that comes after the peer's silence; the
/// CPU time used meanwhile and the wall time blocked, as `key=value`
/// lines (as every measuring side reports).
pub fn idle_read(link: &mut dyn Link) -> Result<String, String> {
    let (c0, t0) = (usage().1, Instant::now());
    link.read_some(&mut [0u8; 1])?;
    let wall = t0.elapsed().as_secs_f64();
    Ok(format!(
        "cpu_secs={:.6}\nwall_secs={wall:.6}\n",
        usage().1 - c0
    ))
}

/// Stay silent for `ms` milliseconds, then write one byte.
pub fn idle_write(link: &mut dyn Link, ms: u64) -> Result<(), String> {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    link.write_all(&[1])
}

/// Read `total` bytes of the pattern in reads of up to `chunk` bytes; the
/// bytes moved in how many seconds, timed from the end of the first read
/// (so connection set-up is not counted), the bytes verified and how often
/// the reader slept meanwhile, as `key=value` lines.
pub fn stream_read(link: &mut dyn Link, total: u64, chunk: usize) -> Result<String, String> {
    let pattern = Pattern::new(0);
    let mut buf = vec![0u8; chunk];
    let (mut pos, mut start_pos, mut samples) = (0u64, 0u64, 0u64);
    let mut t0 = Instant::now();
    let mut sleeps0 = 0;
    while pos < total {
        let want = (total - pos).min(chunk as u64) as usize;
        let n = link.read_some(&mut buf[..want])?;
        samples += pattern.verify(&buf[..n], pos)?;
        if pos == 0 {
            sleeps0 = sleeps();
            t0 = Instant::now();
            start_pos = n as u64;
        }
        pos += n as u64;
    }
    let secs = t0.elapsed().as_secs_f64();
    let (bytes, sleeps) = (pos - start_pos, sleeps() - sleeps0);
    Ok(format!(
        "bytes={bytes}\nsecs={secs:.9}\nsamples={samples}\nsleeps={sleeps}\n"
    ))
}

/// Write `total` bytes of the pattern in writes of `chunk` bytes.
pub fn stream_write(link: &mut dyn Link, total: u64, chunk: usize) -> Result<(), String> {
    let pattern = Pattern::new(chunk);
    let mut pos = 0u64;
    while pos < total {
        let n = (total - pos).min(chunk as u64) as usize;
        link.write_all(pattern.run(pos, n))?;
        pos += n as u64;
    }
    Ok(())
}

fn read_exact(link: &mut dyn Link, mut buf: &mut [u8]) -> Result<(), String> {
    while !buf.is_empty() {
        let n = link.read_some(buf)?;
        buf = &mut buf[n..];
    }
    Ok(())
}

/// `BENCH_DELAY_US`: how long both sides of a ping-pong sleep before each
/// message they send, so that both sleep every round (the bench counts
/// system calls per wake-up that way).
fn delay() -> Option<std::time::Duration> {
    std::env::var("BENCH_DELAY_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(std::time::Duration::from_micros)
}

/// Echo `rounds` messages of `msg` bytes (see [`delay`]).
pub fn pong(link: &mut dyn Link, rounds: u64, msg: usize) -> Result<(), String> {
    let delay = delay();
    let mut buf = vec![0u8; msg];
    for _ in 0..rounds {
        read_exact(link, &mut buf)?;
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
        link.write_all(&buf)?;
    }
    Ok(())
}

/// Send `rounds` messages of `msg` bytes, each after the echo of the last
/// came back intact; the median round trip and how often the pinger slept,
/// as `key=value` lines.
pub fn ping(link: &mut dyn Link, rounds: u64, msg: usize) -> Result<String, String> {
    if rounds == 0 {
        return Err("no rounds".into());
    }
    let pattern = Pattern::new(msg);
    let mut back = vec![0u8; msg];
    let mut rtt = Vec::with_capacity(rounds as usize);
    let delay = delay();
    let sleeps0 = sleeps();
    for i in 0..rounds {
        let out = pattern.run(i, msg);
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
        let t = Instant::now();
        link.write_all(out)?;
        read_exact(link, &mut back)?;
        rtt.push(t.elapsed().as_nanos() as u64);
        if back != out {
            return Err(format!("echo differs in round {i}"));
        }
    }
    let sleeps = sleeps() - sleeps0;
    rtt.sort_unstable();
    Ok(rtt_lines(rtt[rtt.len() / 2], sleeps))
}

/// A pinger's result lines.
pub fn rtt_lines(median_ns: u64, sleeps: u64) -> String {
    format!("median_ns={median_ns}\nsleeps={sleeps}\n")
}
