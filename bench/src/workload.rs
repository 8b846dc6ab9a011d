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

/// Voluntary context switches of this process so far: how often it slept.
pub fn sleeps() -> u64 {
    // SAFETY: rusage is plain data; all-zero is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: ru is a valid out-pointer for getrusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0;
    }
    ru.ru_nvcsw as u64
}

/// What a stream reader measured: `bytes` moved in `secs`, timed from the
/// end of its first read (so connection set-up is not counted), and how
/// often the reader slept meanwhile.
#[derive(Debug, Clone, Copy)]
pub struct StreamOutcome {
    pub bytes: u64,
    pub secs: f64,
    pub samples: u64,
    pub sleeps: u64,
}

/// What a pinger measured: the median round trip, and how often the
/// pinger slept over all the rounds.
#[derive(Debug, Clone, Copy)]
pub struct PingOutcome {
    pub median_ns: u64,
    pub sleeps: u64,
}

impl StreamOutcome {
    /// As the key=value lines a child process prints.
    pub fn print(&self) {
        println!("bytes={}", self.bytes);
        println!("secs={:.9}", self.secs);
        println!("samples={}", self.samples);
        println!("sleeps={}", self.sleeps);
    }
}

/// Read `total` bytes of the pattern in reads of up to `chunk` bytes.
pub fn stream_read(link: &mut dyn Link, total: u64, chunk: usize) -> Result<StreamOutcome, String> {
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
    Ok(StreamOutcome {
        bytes: pos - start_pos,
        secs,
        samples,
        sleeps: sleeps() - sleeps0,
    })
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

/// Echo `rounds` messages of `msg` bytes.
pub fn pong(link: &mut dyn Link, rounds: u64, msg: usize) -> Result<(), String> {
    let mut buf = vec![0u8; msg];
    for _ in 0..rounds {
        read_exact(link, &mut buf)?;
        link.write_all(&buf)?;
    }
    Ok(())
}

/// Send `rounds` messages of `msg` bytes, each after the echo of the last
/// came back intact.
pub fn ping(link: &mut dyn Link, rounds: u64, msg: usize) -> Result<PingOutcome, String> {
    if rounds == 0 {
        return Err("no rounds".into());
    }
    let pattern = Pattern::new(msg);
    let mut back = vec![0u8; msg];
    let mut rtt = Vec::with_capacity(rounds as usize);
    let sleeps0 = sleeps();
    for i in 0..rounds {
        let out = pattern.run(i, msg);
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
    Ok(PingOutcome {
        median_ns: rtt[rtt.len() / 2],
        sleeps,
    })
}
