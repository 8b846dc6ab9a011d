//! The shared-memory limit: spinning single-producer/single-consumer byte
//! rings in one tmpfs file both processes map. No notifications, no
//! sleeping: what any vchan could reach at best.
//! Each side publishes its index after every `publish` bytes it copies
//! (the limit row tries several granularities and keeps the best), and
//! [`Mapping::bounce`] measures the floor of any hand-off: one cache line
//! going back and forth between the two processes.

use std::io::{Error, Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a side spins on a ring that does not move before giving up
/// (the peer died).
const STALL: Duration = Duration::from_secs(30);

/// Where the rings' counters live in the header page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Every counter in a cache-line pair of its own: the best any SPSC
    /// ring can do.
    Separate,
    /// All four counters in one cache line, as libxenvchan.h lays out the
    /// vchan control page (ring 0's cons and prod, then ring 1's): what a
    /// vchan, bound to that wire format, could do at best.
    Vchan,
}

/// Bytes between counters in the [`Layout::Separate`] layout.
const LINE_PAIR: usize = 128;

const HEADER_SPACE: usize = 4096;

/// Two rings of `size` bytes each, mapped shared.
pub struct Mapping {
    base: *mut u8,
    len: usize,
    size: usize,
    layout: Layout,
}

impl Mapping {
    /// Map two rings of `size` bytes (a power of two), their counters
    /// laid out as `layout` says, from the file `path` (made zero-filled
    /// to the length they need).
    pub fn open(path: &Path, size: usize, layout: Layout) -> Result<Mapping, String> {
        let len = HEADER_SPACE + 2 * size;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path);
        let f = f.and_then(|f| f.set_len(len as u64).map(|()| f));
        let f = f.map_err(|e| format!("{}: {e}", path.display()))?;
        if !size.is_power_of_two() {
            return Err(format!("ring size {size} is not a power of two"));
        }
        let (rw, shared) = (libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED);
        // SAFETY: a fresh shared mapping of a file `len` bytes long; no
        // existing memory is touched.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len, rw, shared, f.as_raw_fd(), 0) };
        if p == libc::MAP_FAILED {
            return Err(format!("mmap: {}", Error::last_os_error()));
        }
        Ok(Mapping {
            base: p.cast(),
            len,
            size,
            layout,
        })
    }

    /// This process's end: writes ring `tx`, reads the other one,
    /// publishing its progress after every `publish` bytes.
    pub fn end(&self, tx: usize, publish: usize) -> ShmLink<'_> {
        ShmLink {
            tx: self.ring(tx),
            rx: self.ring(1 - tx),
            publish: publish.max(1),
            _map: self,
        }
    }

    /// Cache-line ping-pong, `rounds` round trips: side 0 stores an odd
    /// count into ring 0's `prod` line and waits for side 1 to answer with
    /// the next even one there. Returns the median round trip (side 0;
    /// side 1 returns 0).
    pub fn bounce(&self, side: usize, rounds: u64) -> Result<u64, String> {
        let ring = self.ring(0);
        let line = ring.prod();
        let mut rtt = Vec::with_capacity(if side == 0 { rounds as usize } else { 0 });
        for i in 0..rounds {
            let (ping, pong) = (2 * i + 1, 2 * i + 2);
            if side == 0 {
                let t = Instant::now();
                line.store(ping, Ordering::Release);
                spin_until(|| (line.load(Ordering::Acquire) == pong).then_some(()))
                    .map_err(|e| e.to_string())?;
                rtt.push(t.elapsed().as_nanos() as u64);
            } else {
                spin_until(|| (line.load(Ordering::Acquire) == ping).then_some(()))
                    .map_err(|e| e.to_string())?;
                line.store(pong, Ordering::Release);
            }
        }
        rtt.sort_unstable();
        Ok(rtt.get(rtt.len() / 2).copied().unwrap_or(0))
    }

    fn ring(&self, i: usize) -> Ring {
        let step = match self.layout {
            Layout::Separate => LINE_PAIR,
            Layout::Vchan => std::mem::size_of::<AtomicU64>(),
        };
        // SAFETY: the counters lie in the first HEADER_SPACE bytes of the
        // mapping (at most 4 * 128 bytes), naturally aligned (the mapping
        // is page aligned, the offsets multiples of 8), and the rings
        // follow the header, in bounds.
        unsafe {
            Ring {
                cons: self.base.add(2 * i * step).cast(),
                prod: self.base.add((2 * i + 1) * step).cast(),
                data: self.base.add(HEADER_SPACE + i * self.size),
                size: self.size,
            }
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what new() mapped; no ShmLink outlives
        // the Mapping (they borrow it).
        unsafe {
            libc::munmap(self.base.cast(), self.len);
        }
    }
}

struct Ring {
    cons: *const AtomicU64,
    prod: *const AtomicU64,
    data: *mut u8,
    size: usize,
}

impl Ring {
    fn prod(&self) -> &AtomicU64 {
        // SAFETY: prod points into the live mapping (ShmLink borrows the
        // Mapping), aligned; an atomic may be shared with another process.
        unsafe { &*self.prod }
    }

    fn cons(&self) -> &AtomicU64 {
        // SAFETY: as for prod.
        unsafe { &*self.cons }
    }
}

/// One process's end of a pair of rings.
pub struct ShmLink<'a> {
    tx: Ring,
    rx: Ring,
    publish: usize,
    _map: &'a Mapping,
}

/// Spin until `f` returns `Some`, or fail after [`STALL`].
fn spin_until<T>(mut f: impl FnMut() -> Option<T>) -> Result<T, Error> {
    let mut start: Option<Instant> = None;
    loop {
        for _ in 0..1024 {
            if let Some(v) = f() {
                return Ok(v);
            }
            std::hint::spin_loop();
        }
        let s = *start.get_or_insert_with(Instant::now);
        if s.elapsed() > STALL {
            return Err(Error::other("shared-memory ring stalled (peer gone?)"));
        }
    }
}

impl Read for ShmLink<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let r = &self.rx;
        let cons = r.cons().load(Ordering::Relaxed);
        let prod = spin_until(|| {
            let p = r.prod().load(Ordering::Acquire);
            (p != cons).then_some(p)
        })?;
        let n = ((prod - cons) as usize).min(buf.len());
        let mut done = 0;
        while done < n {
            let k = (n - done).min(self.publish);
            let at = ((cons as usize) + done) & (r.size - 1);
            let first = k.min(r.size - at);
            // SAFETY: [at, at + first) and [0, k - first) lie in the ring;
            // the producer published these bytes (Acquire above) and will
            // not touch them until cons moves past them (Release below);
            // buf[done..done + k] is in bounds (done + k <= n <= len).
            unsafe {
                let dst = buf.as_mut_ptr().add(done);
                std::ptr::copy_nonoverlapping(r.data.add(at), dst, first);
                std::ptr::copy_nonoverlapping(r.data, dst.add(first), k - first);
            }
            done += k;
            r.cons().store(cons + done as u64, Ordering::Release);
        }
        Ok(n)
    }
}

impl Write for ShmLink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = &self.tx;
        let size = r.size as u64;
        let mut done = 0;
        while done < buf.len() {
            let buf = &buf[done..];
            let prod = r.prod().load(Ordering::Relaxed);
            let space = spin_until(|| {
                let c = r.cons().load(Ordering::Acquire);
                let s = size - (prod - c);
                (s > 0).then_some(s)
            })?;
            let n = (space as usize).min(buf.len()).min(self.publish);
            let at = (prod as usize) & (r.size - 1);
            let first = n.min(r.size - at);
            // SAFETY: [at, at + first) and [0, n - first) lie in the ring
            // and are free: the consumer released them (Acquire above) and
            // will not read them before prod moves (Release below).
            unsafe {
                std::ptr::copy_nonoverlapping(buf.as_ptr(), r.data.add(at), first);
                std::ptr::copy_nonoverlapping(buf.as_ptr().add(first), r.data, n - first);
            }
            r.prod().store(prod + n as u64, Ordering::Release);
            done += n;
        }
        Ok(done)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
