//! The shared-memory limit: spinning single-producer/single-consumer byte
//! rings in one `MAP_SHARED` anonymous mapping, inherited across `fork`.
//! No notifications, no sleeping: what any vchan could reach at best.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::workload::Link;

/// How long a side spins on a ring that does not move before giving up
/// (the peer died).
const STALL: Duration = Duration::from_secs(30);

/// The producer and consumer counters of one ring, a cache-line pair apart.
#[repr(C, align(128))]
struct Counter(AtomicU64);

#[repr(C)]
struct Header {
    prod: Counter,
    cons: Counter,
}

const HEADER_SPACE: usize = 4096;

/// Two rings of `size` bytes each, mapped shared (survives `fork`).
pub struct Mapping {
    base: *mut u8,
    len: usize,
    size: usize,
}

impl Mapping {
    /// Map two zeroed rings of `size` bytes (a power of two).
    pub fn new(size: usize) -> Result<Mapping, String> {
        if !size.is_power_of_two() {
            return Err(format!("ring size {size} is not a power of two"));
        }
        let len = HEADER_SPACE + 2 * size;
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(format!("mmap: {}", std::io::Error::last_os_error()));
        }
        Ok(Mapping {
            base: p.cast(),
            len,
            size,
        })
    }

    /// This process's end: writes ring `tx`, reads the other one.
    pub fn end(&self, tx: usize) -> ShmLink<'_> {
        ShmLink {
            tx: self.ring(tx),
            rx: self.ring(1 - tx),
            _map: self,
        }
    }

    fn ring(&self, i: usize) -> Ring {
        // SAFETY: both headers lie in the first HEADER_SPACE bytes of the
        // mapping (2 * 256 bytes) and the rings after it, in bounds; the
        // mapping is page aligned, so the headers are aligned.
        unsafe {
            Ring {
                hdr: self.base.add(i * std::mem::size_of::<Header>()).cast(),
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
    hdr: *const Header,
    data: *mut u8,
    size: usize,
}

impl Ring {
    fn header(&self) -> &Header {
        // SAFETY: hdr points into the live mapping (ShmLink borrows the
        // Mapping); a Header of atomics may be shared with another process.
        unsafe { &*self.hdr }
    }
}

/// One process's end of a pair of rings.
pub struct ShmLink<'a> {
    tx: Ring,
    rx: Ring,
    _map: &'a Mapping,
}

/// Spin until `f` returns `Some`, or fail after [`STALL`].
fn spin_until<T>(mut f: impl FnMut() -> Option<T>) -> Result<T, String> {
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
            return Err("shared-memory ring stalled (peer gone?)".into());
        }
    }
}

impl Link for ShmLink<'_> {
    fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, String> {
        let r = &self.rx;
        let h = r.header();
        let cons = h.cons.0.load(Ordering::Relaxed);
        let prod = spin_until(|| {
            let p = h.prod.0.load(Ordering::Acquire);
            (p != cons).then_some(p)
        })?;
        let n = ((prod - cons) as usize).min(buf.len());
        let at = (cons as usize) & (r.size - 1);
        let first = n.min(r.size - at);
        // SAFETY: [at, at + first) and [0, n - first) lie in the ring; the
        // producer published these n bytes (Acquire above) and will not
        // touch them until cons moves past them (Release below).
        unsafe {
            std::ptr::copy_nonoverlapping(r.data.add(at), buf.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(r.data, buf.as_mut_ptr().add(first), n - first);
        }
        h.cons.0.store(cons + n as u64, Ordering::Release);
        Ok(n)
    }

    fn write_all(&mut self, mut buf: &[u8]) -> Result<(), String> {
        let r = &self.tx;
        let h = r.header();
        let size = r.size as u64;
        while !buf.is_empty() {
            let prod = h.prod.0.load(Ordering::Relaxed);
            let space = spin_until(|| {
                let c = h.cons.0.load(Ordering::Acquire);
                let s = size - (prod - c);
                (s > 0).then_some(s)
            })?;
            let n = (space as usize).min(buf.len());
            let at = (prod as usize) & (r.size - 1);
            let first = n.min(r.size - at);
            // SAFETY: [at, at + first) and [0, n - first) lie in the ring
            // and are free: the consumer released them (Acquire above) and
            // will not read them before prod moves (Release below).
            unsafe {
                std::ptr::copy_nonoverlapping(buf.as_ptr(), r.data.add(at), first);
                std::ptr::copy_nonoverlapping(buf.as_ptr().add(first), r.data, n - first);
            }
            h.prod.0.store(prod + n as u64, Ordering::Release);
            buf = &buf[n..];
        }
        Ok(())
    }
}
