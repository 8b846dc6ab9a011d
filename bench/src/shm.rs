//! The limit: spinning SPSC byte rings in a shared tmpfs file, no notifications.

use std::io::{Error, Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a side spins on a ring that does not move (its peer died).
const STALL: Duration = Duration::from_secs(30);
const HEADER_SPACE: usize = 4096;

/// Two rings of `size` bytes each after a header page, mapped shared.
pub struct Mapping {
    base: *mut u8,
    len: usize,
    size: usize,
    /// The four counters in one cache line as in the vchan page, else 128 B apart.
    one_line: bool,
}

impl Mapping {
    /// Map two rings of `size` bytes (a power of two) from the file `path`.
    pub fn open(path: &Path, size: usize, one_line: bool) -> Result<Mapping, String> {
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
        // SAFETY: a fresh shared mapping of a file `len` bytes long.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len, rw, shared, f.as_raw_fd(), 0) };
        if p == libc::MAP_FAILED {
            return Err(format!("mmap: {}", Error::last_os_error()));
        }
        Ok(Mapping {
            base: p.cast(),
            len,
            size,
            one_line,
        })
    }

    /// This process's end: writes ring `tx`, reads the other one.
    pub fn end(&self, tx: usize, publish: usize) -> ShmLink<'_> {
        ShmLink {
            tx: self.ring(tx),
            rx: self.ring(1 - tx),
            publish: publish.max(1),
        }
    }

    /// `rounds` round trips of ring 0's `prod` line; side 0's median.
    pub fn bounce(&self, side: usize, rounds: u64) -> Result<String, String> {
        let line = self.ring(0).prod;
        let mut rtt = Vec::with_capacity(if side == 0 { rounds as usize } else { 0 });
        let wait = |v| spin_until(|| (line.load(Ordering::Acquire) == v).then_some(()));
        for i in 0..rounds {
            if side == 0 {
                let t = Instant::now();
                line.store(2 * i + 1, Ordering::Release);
                wait(2 * i + 2).map_err(|e| e.to_string())?;
                rtt.push(t.elapsed().as_nanos() as u64);
            } else {
                wait(2 * i + 1).map_err(|e| e.to_string())?;
                line.store(2 * i + 2, Ordering::Release);
            }
        }
        rtt.sort_unstable();
        Ok(rtt
            .get(rtt.len() / 2)
            .map_or(String::new(), |m| format!("median_ns={m}\n")))
    }

    fn ring(&self, i: usize) -> Ring<'_> {
        let step = [128, size_of::<AtomicU64>()][self.one_line as usize];
        // SAFETY: the counters lie in the header page, naturally aligned (the
        // mapping is page aligned, the offsets multiples of 8), live as long
        // as the mapping the ring borrows, and an atomic may be shared with
        // another process; the rings follow the header, in bounds.
        unsafe {
            Ring {
                cons: &*self.base.add(2 * i * step).cast(),
                prod: &*self.base.add((2 * i + 1) * step).cast(),
                data: self.base.add(HEADER_SPACE + i * self.size),
                size: self.size,
            }
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping what open() mapped; no Ring outlives the Mapping.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

struct Ring<'a> {
    cons: &'a AtomicU64,
    prod: &'a AtomicU64,
    data: *mut u8,
    size: usize,
}

/// One process's end of a pair of rings.
pub struct ShmLink<'a> {
    tx: Ring<'a>,
    rx: Ring<'a>,
    publish: usize,
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
        if start.get_or_insert_with(Instant::now).elapsed() > STALL {
            return Err(Error::other("shared-memory ring stalled (peer gone?)"));
        }
    }
}

impl Read for ShmLink<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let r = &self.rx;
        let cons = r.cons.load(Ordering::Relaxed);
        let prod = spin_until(|| Some(r.prod.load(Ordering::Acquire)).filter(|&p| p != cons))?;
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
            r.cons.store(cons + done as u64, Ordering::Release);
        }
        Ok(n)
    }
}

impl Write for ShmLink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (r, mut done) = (&self.tx, 0);
        while done < buf.len() {
            let buf = &buf[done..];
            let prod = r.prod.load(Ordering::Relaxed);
            let used = |c| prod - c;
            let c = spin_until(|| {
                Some(r.cons.load(Ordering::Acquire)).filter(|&c| used(c) < r.size as u64)
            })?;
            let n = (r.size - used(c) as usize).min(buf.len()).min(self.publish);
            let at = (prod as usize) & (r.size - 1);
            let first = n.min(r.size - at);
            // SAFETY: [at, at + first) and [0, n - first) lie in the ring
            // and are free: the consumer released them (Acquire above) and
            // will not read them before prod moves (Release below).
            unsafe {
                std::ptr::copy_nonoverlapping(buf.as_ptr(), r.data.add(at), first);
                std::ptr::copy_nonoverlapping(buf.as_ptr().add(first), r.data, n - first);
            }
            r.prod.store(prod + n as u64, Ordering::Release);
            done += n;
        }
        Ok(done)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
