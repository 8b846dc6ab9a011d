//! **Internal to vchan-rs** (not published): what the tests and the bench
//! share. [`Rng`] and [`Pattern`]: deterministic pseudo-random numbers and
//! the byte stream built from them (bench/ocaml/vbench.ml makes the same
//! one); [`wait_all`], [`kill`] and [`values`]: child processes that must
//! succeed in time, and the `key=value` lines they print.

use std::collections::HashMap;
use std::process::Child;
use std::time::{Duration, Instant};

/// xorshift64 (13, 7, 17): a fixed sequence for a non-zero seed.
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// The next number below `n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// A byte stream of a prime period (so that no ring or chunk size shares
/// it): byte `i` is the top byte of the `i % period + 1`-th number of
/// `Rng(0x9E37_79B9_7F4A_7C15)`. Held as one period plus its first `extra`
/// bytes again, so that any run up to `extra` long is one slice.
pub struct Pattern {
    bytes: Vec<u8>,
    period: usize,
}

impl Pattern {
    /// The stream of period `period`, handing out runs up to `extra` bytes.
    pub fn new(period: usize, extra: usize) -> Pattern {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut bytes: Vec<u8> = (0..period).map(|_| (rng.next_u64() >> 56) as u8).collect();
        for i in 0..extra {
            bytes.push(bytes[i % period]);
        }
        Pattern { bytes, period }
    }

    fn at(&self, pos: u64) -> usize {
        (pos % self.period as u64) as usize
    }

    /// Stream bytes `[pos, pos + len)`, `len` at most `extra`.
    pub fn run(&self, pos: u64, len: usize) -> &[u8] {
        let start = self.at(pos);
        &self.bytes[start..(start + len).min(self.bytes.len())]
    }

    /// Stream byte `pos`.
    pub fn byte(&self, pos: u64) -> u8 {
        self.bytes[self.at(pos)]
    }

    /// Stream bytes from `pos` on, `len` of them (any length), in runs.
    fn runs(&self, mut pos: u64, len: usize) -> impl Iterator<Item = &[u8]> {
        let mut left = len;
        std::iter::from_fn(move || {
            let start = self.at(pos);
            let n = left.min(self.period - start);
            (n > 0).then(|| {
                (pos, left) = (pos + n as u64, left - n);
                &self.bytes[start..start + n]
            })
        })
    }

    /// Fill `buf` with the stream bytes from `pos` on (any length).
    pub fn fill(&self, pos: u64, buf: &mut [u8]) {
        let mut done = 0;
        for r in self.runs(pos, buf.len()) {
            buf[done..done + r.len()].copy_from_slice(r);
            done += r.len();
        }
    }

    /// The first index of `buf` (stream bytes from `pos` on) that differs
    /// from the stream.
    pub fn mismatch(&self, pos: u64, buf: &[u8]) -> Option<usize> {
        let mut done = 0;
        for r in self.runs(pos, buf.len()) {
            if let Some(i) = (0..r.len()).find(|&i| buf[done + i] != r[i]) {
                return Some(done + i);
            }
            done += r.len();
        }
        None
    }

    /// The cheap check of a reader of a long stream: the bytes of `buf`
    /// (stream bytes from `pos` on) at every stream offset that is a
    /// multiple of `sample`, and its last byte; how many were checked.
    pub fn verify(&self, pos: u64, buf: &[u8], sample: u64) -> Result<u64, String> {
        let end = pos + buf.len() as u64;
        let bad = |s: u64| Err(format!("data mismatch at stream offset {s}"));
        let mut checked = 0;
        for s in (pos.div_ceil(sample) * sample..end).step_by(sample as usize) {
            if buf[(s - pos) as usize] != self.byte(s) {
                return bad(s);
            }
            checked += 1;
        }
        match buf.last() {
            Some(&b) if b != self.byte(end - 1) => bad(end - 1),
            Some(_) => Ok(checked + 1),
            None => Ok(0),
        }
    }
}

/// Wait until every child exited successfully, polling every `poll`; kill
/// them all at the first failure, or once `limit` has passed since `t0`.
/// The seconds from `t0` after which each exited.
pub fn wait_all(
    children: &mut [&mut Child],
    t0: Instant,
    limit: Duration,
    poll: Duration,
) -> Result<Vec<f64>, String> {
    let n = children.len();
    let mut done = vec![None; n];
    while done.iter().any(Option::is_none) {
        let mut failed = (t0.elapsed() > limit).then(|| format!("timed out after {limit:?}"));
        for (i, c) in children.iter_mut().enumerate() {
            match c.try_wait() {
                _ if done[i].is_some() => {}
                Ok(Some(st)) if st.success() => done[i] = Some(t0.elapsed().as_secs_f64()),
                Ok(Some(st)) => failed = Some(format!("process {} of {n} failed: {st}", i + 1)),
                Ok(None) => {}
                Err(e) => failed = Some(format!("wait: {e}")),
            }
        }
        if let Some(e) = failed {
            children.iter_mut().for_each(|c| kill(c));
            return Err(e);
        }
        std::thread::sleep(poll);
    }
    Ok(done.into_iter().flatten().collect())
}

/// SIGKILL a child and reap it.
pub fn kill(c: &mut Child) {
    let _ = c.kill();
    let _ = c.wait();
}

/// The `key=value` lines of `text`.
pub fn values(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}
