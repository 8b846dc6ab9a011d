//! How the core touches shared memory.
//!
//! The core never holds a Rust reference (`&T`/`&mut T`) to memory the peer
//! can change: the control page is reached through [`SharedPage`], whose
//! implementation for real memory ([`RawPage`]) uses atomic operations on raw
//! pointers, and ring bytes through [`RingMem`], which copies between raw
//! pointers and the caller's buffers. Test models (e.g. loom) implement the
//! same traits, so the model checks the very code that runs.

use core::ptr::NonNull;
use core::sync::atomic::{fence, AtomicU16, AtomicU32, AtomicU8, Ordering};

use crate::layout::PAGE_SIZE;

/// Atomic access to the 4096-byte shared control page.
///
/// Offsets passed by the core are always in bounds and naturally aligned
/// for the access width. Values are native-endian on this side of the trait;
/// implementations convert to the page's little-endian encoding.
///
/// # Safety
/// Implementations must behave like atomic memory accesses to one page that
/// may be concurrently modified by another party: no access may be
/// out of bounds, and `full_fence` must be a sequentially consistent fence.
pub unsafe trait SharedPage {
    /// Atomic 32-bit load.
    fn load_u32(&self, offset: usize, order: Ordering) -> u32;
    /// Atomic 32-bit store.
    fn store_u32(&self, offset: usize, value: u32, order: Ordering);
    /// Atomic 16-bit load.
    fn load_u16(&self, offset: usize, order: Ordering) -> u16;
    /// Atomic 16-bit store.
    fn store_u16(&self, offset: usize, value: u16, order: Ordering);
    /// Atomic 8-bit load.
    fn load_u8(&self, offset: usize, order: Ordering) -> u8;
    /// Atomic 8-bit store.
    fn store_u8(&self, offset: usize, value: u8, order: Ordering);
    /// Atomic OR on a byte; returns the previous value.
    fn fetch_or_u8(&self, offset: usize, bits: u8, order: Ordering) -> u8;
    /// Atomic AND on a byte; returns the previous value.
    fn fetch_and_u8(&self, offset: usize, bits: u8, order: Ordering) -> u8;
    /// A full (sequentially consistent) memory barrier.
    fn full_fence(&self) {
        fence(Ordering::SeqCst);
    }
}

/// The bytes of one data ring.
///
/// # Safety
/// `len` must be the number of bytes really backing the ring; `read_at` and
/// `write_at` must copy exactly the requested range (the core guarantees
/// `offset + buf.len() <= len()`).
pub unsafe trait RingMem {
    /// Size of the ring memory in bytes.
    fn len(&self) -> usize;
    /// True for a zero-length ring (never the case for a valid vchan).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copy `dst.len()` bytes starting at ring offset `offset` into `dst`.
    fn read_at(&self, offset: usize, dst: &mut [u8]);
    /// Copy `src` into the ring starting at ring offset `offset`.
    fn write_at(&self, offset: usize, src: &[u8]);
}

/// A shared control page in real memory (a mapping of a granted page, a
/// shared-memory file, or a plain buffer in tests).
#[derive(Debug, Clone, Copy)]
pub struct RawPage {
    base: NonNull<u8>,
}

// SAFETY: a RawPage is a pointer to memory that is designed to be shared
// between parties; every access through it is atomic.
unsafe impl Send for RawPage {}
// SAFETY: as above; `&RawPage` only allows atomic accesses.
unsafe impl Sync for RawPage {}

impl RawPage {
    /// Wrap a pointer to a shared page.
    ///
    /// Returns `None` when `base` is null or not 4-byte aligned.
    ///
    /// # Safety
    /// `base` must point to [`PAGE_SIZE`] bytes that stay mapped, readable
    /// and writable for as long as the returned value (or any channel built
    /// on it) is used.
    pub unsafe fn new(base: *mut u8) -> Option<RawPage> {
        if base as usize % 4 != 0 {
            return None;
        }
        NonNull::new(base).map(|base| RawPage { base })
    }

    /// The page's base address.
    pub fn as_ptr(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    #[inline(always)]
    fn at(&self, offset: usize, width: usize) -> *mut u8 {
        debug_assert!(offset % width == 0 && offset + width <= PAGE_SIZE);
        // SAFETY: offset + width <= PAGE_SIZE (the core only passes layout
        // constants and bounds-checked grant offsets), so the result stays
        // within the page promised by `RawPage::new`'s caller.
        unsafe { self.base.as_ptr().add(offset) }
    }

    #[inline(always)]
    fn a32(&self, offset: usize) -> &AtomicU32 {
        // SAFETY: the pointer is in bounds and 4-aligned (page base is
        // 4-aligned, offsets are multiples of 4); the memory is only ever
        // accessed atomically by us, and the returned reference does not
        // outlive `self`.
        unsafe { AtomicU32::from_ptr(self.at(offset, 4).cast()) }
    }

    #[inline(always)]
    fn a16(&self, offset: usize) -> &AtomicU16 {
        // SAFETY: as `a32`, with 2-byte alignment.
        unsafe { AtomicU16::from_ptr(self.at(offset, 2).cast()) }
    }

    #[inline(always)]
    fn a8(&self, offset: usize) -> &AtomicU8 {
        // SAFETY: as `a32`; bytes need no alignment.
        unsafe { AtomicU8::from_ptr(self.at(offset, 1)) }
    }
}

// SAFETY: every access is an atomic operation within the page (see `at`).
unsafe impl SharedPage for RawPage {
    #[inline(always)]
    fn load_u32(&self, offset: usize, order: Ordering) -> u32 {
        u32::from_le(self.a32(offset).load(order))
    }
    #[inline(always)]
    fn store_u32(&self, offset: usize, value: u32, order: Ordering) {
        self.a32(offset).store(value.to_le(), order)
    }
    #[inline(always)]
    fn load_u16(&self, offset: usize, order: Ordering) -> u16 {
        u16::from_le(self.a16(offset).load(order))
    }
    #[inline(always)]
    fn store_u16(&self, offset: usize, value: u16, order: Ordering) {
        self.a16(offset).store(value.to_le(), order)
    }
    #[inline(always)]
    fn load_u8(&self, offset: usize, order: Ordering) -> u8 {
        self.a8(offset).load(order)
    }
    #[inline(always)]
    fn store_u8(&self, offset: usize, value: u8, order: Ordering) {
        self.a8(offset).store(value, order)
    }
    #[inline(always)]
    fn fetch_or_u8(&self, offset: usize, bits: u8, order: Ordering) -> u8 {
        self.a8(offset).fetch_or(bits, order)
    }
    #[inline(always)]
    fn fetch_and_u8(&self, offset: usize, bits: u8, order: Ordering) -> u8 {
        self.a8(offset).fetch_and(bits, order)
    }
}

/// A data ring in real memory: `len` contiguous bytes.
#[derive(Debug, Clone, Copy)]
pub struct RawRing {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the ring is shared memory by design; copies in and out are
// ordered by the atomics of the control page.
unsafe impl Send for RawRing {}
// SAFETY: as above.
unsafe impl Sync for RawRing {}

impl RawRing {
    /// Wrap `len` bytes at `base`.
    ///
    /// # Safety
    /// `base` must point to `len` bytes that stay mapped for as long as the
    /// returned value (or any channel built on it) is used; they must be
    /// writable if the ring is written to.
    pub unsafe fn new(base: *mut u8, len: usize) -> Option<RawRing> {
        NonNull::new(base).map(|base| RawRing { base, len })
    }

    /// The ring's base address.
    pub fn as_ptr(&self) -> *mut u8 {
        self.base.as_ptr()
    }
}

// SAFETY: copies stay within `offset + buf.len() <= len` (asserted).
unsafe impl RingMem for RawRing {
    #[inline(always)]
    fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    fn read_at(&self, offset: usize, dst: &mut [u8]) {
        debug_assert!(offset <= self.len && dst.len() <= self.len - offset);
        // SAFETY: the range [offset, offset + dst.len()) lies within the
        // ring (the core computes offsets from its private, validated order
        // and masked indices); `dst` is a distinct, caller-owned buffer.
        unsafe { copy_from_shared(self.base.as_ptr().add(offset), dst) }
    }

    #[inline(always)]
    fn write_at(&self, offset: usize, src: &[u8]) {
        debug_assert!(offset <= self.len && src.len() <= self.len - offset);
        // SAFETY: as `read_at`, copying the other way into ring memory the
        // caller promised is writable.
        unsafe { copy_to_shared(src, self.base.as_ptr().add(offset)) }
    }
}

/// The widest plain load/store of the target: the copies move `Word`s
/// with volatile accesses, as vm-memory does for guest memory.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
type Word = core::arch::x86_64::__m128i;
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
type Word = u64;
const WORD: usize = core::mem::size_of::<Word>();
/// Words moved per step of the main loop (loads first, then stores, so
/// that the loads overlap).
const UNROLL: usize = 4;

/// From this many bytes on, x86-64 copies with one `rep movsb` (see
/// [`rep_movsb`]); below, the word loop is faster.
#[cfg(target_arch = "x86_64")]
const REP_MOVSB_MIN: usize = 4096;

/// `n` bytes from `src` to `dst` with one `rep movsb`: what glibc's
/// `memcpy` itself does for copies of this size on CPUs with fast string
/// moves (every x86-64 CPU since Ivy Bridge and Zen), moving whole cache
/// lines at a time, where the loop of [`copy_from_shared`] moves 16 bytes
/// per instruction: measured on a 2026 AMD EPYC, 4-64 KiB copies within
/// one core's cache ran at 80-97 GiB/s with it against 55-67 with the loop
/// (`memcpy` 90-94). The asm block is opaque to the compiler, so like a
/// volatile access it cannot assume the peer leaves those bytes alone;
/// and string stores are not reordered with other stores (Intel SDM vol.
/// 3A, 9.2.4.1; Linux publishes ring data copied with `rep movs` the same
/// way), so the release store of the index that follows still comes after
/// every byte of the copy.
///
/// # Safety
/// `src..src + n` must be readable and `dst..dst + n` writable for the
/// call, and the two ranges must not overlap.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn rep_movsb(src: *const u8, dst: *mut u8, n: usize) {
    // SAFETY: the caller guarantees both ranges; `rep movsb` touches
    // exactly `n` bytes of each, forwards (the ABI keeps the direction
    // flag clear in asm blocks), changes no flag and no stack.
    unsafe {
        core::arch::asm!(
            "rep movsb",
            inout("rcx") n => _,
            inout("rsi") src => _,
            inout("rdi") dst => _,
            options(nostack, preserves_flags),
        );
    }
}

/// Copy `dst.len()` bytes from shared memory at `src` into `dst`.
///
/// The peer may write those bytes while we read them (a hostile one, or a
/// buggy one): so they are read with volatile loads of aligned words (and
/// of bytes at the unaligned ends), or on x86-64 from 4 KiB on by one
/// `rep movsb` in an asm block, never through a Rust
/// reference nor `memcpy` (which the compiler may assume no one else
/// changes). What a
/// racing peer gets us is garbage in the data it sends, nothing else. The
/// copy is ordered by the control page's atomics.
///
/// # Safety
/// `src..src + dst.len()` must be mapped and readable for the call, and not
/// overlap `dst`.
#[inline]
pub unsafe fn copy_from_shared(src: *const u8, dst: &mut [u8]) {
    let n = dst.len();
    let d = dst.as_mut_ptr();
    #[cfg(target_arch = "x86_64")]
    if n >= REP_MOVSB_MIN {
        // SAFETY: `src..src + n` is readable (our contract), `dst` is ours
        // and does not overlap it.
        unsafe { rep_movsb(src, d, n) };
        return;
    }
    let head = src.align_offset(WORD).min(n);
    let mut i = 0;
    while i < head {
        // SAFETY: i < n: in bounds.
        dst[i] = unsafe { src.add(i).read_volatile() };
        i += 1;
    }
    while i + UNROLL * WORD <= n {
        // SAFETY: src + i is WORD-aligned (after `head`) and the words lie
        // within the range (loop bound). `Word` is plain data (any bits).
        let w: [Word; UNROLL] = core::array::from_fn(|k| unsafe {
            src.add(i + k * WORD).cast::<Word>().read_volatile()
        });
        for (k, w) in w.iter().enumerate() {
            // SAFETY: d + i + k * WORD.. + WORD is within `dst` (loop
            // bound); unaligned writes into our own buffer.
            unsafe { d.add(i + k * WORD).cast::<Word>().write_unaligned(*w) };
        }
        i += UNROLL * WORD;
    }
    while i + WORD <= n {
        // SAFETY: as above, one word.
        let w = unsafe { src.add(i).cast::<Word>().read_volatile() };
        // SAFETY: as above.
        unsafe { d.add(i).cast::<Word>().write_unaligned(w) };
        i += WORD;
    }
    while i < n {
        // SAFETY: i < n: in bounds.
        dst[i] = unsafe { src.add(i).read_volatile() };
        i += 1;
    }
}

/// Copy `src` into shared memory at `dst`, with volatile stores (see
/// [`copy_from_shared`]: the peer may read, or write, those bytes at the
/// same time).
///
/// # Safety
/// `dst..dst + src.len()` must be mapped and writable for the call, and not
/// overlap `src`.
#[inline]
pub unsafe fn copy_to_shared(src: &[u8], dst: *mut u8) {
    let n = src.len();
    let s = src.as_ptr();
    #[cfg(target_arch = "x86_64")]
    if n >= REP_MOVSB_MIN {
        // SAFETY: `dst..dst + n` is writable (our contract), `src` is ours
        // and does not overlap it.
        unsafe { rep_movsb(s, dst, n) };
        return;
    }
    let head = dst.align_offset(WORD).min(n);
    let mut i = 0;
    while i < head {
        // SAFETY: i < n: in bounds.
        unsafe { dst.add(i).write_volatile(src[i]) };
        i += 1;
    }
    while i + UNROLL * WORD <= n {
        // SAFETY: within `src` (loop bound); unaligned reads of our own
        // buffer.
        let w: [Word; UNROLL] = core::array::from_fn(|k| unsafe {
            s.add(i + k * WORD).cast::<Word>().read_unaligned()
        });
        for (k, w) in w.iter().enumerate() {
            // SAFETY: dst + i is WORD-aligned (after `head`), in bounds.
            unsafe { dst.add(i + k * WORD).cast::<Word>().write_volatile(*w) };
        }
        i += UNROLL * WORD;
    }
    while i + WORD <= n {
        // SAFETY: as above, one word.
        let w = unsafe { s.add(i).cast::<Word>().read_unaligned() };
        // SAFETY: as above.
        unsafe { dst.add(i).cast::<Word>().write_volatile(w) };
        i += WORD;
    }
    while i < n {
        // SAFETY: i < n: in bounds.
        unsafe { dst.add(i).write_volatile(src[i]) };
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_every_alignment_and_length() {
        let mut shared = [0u8; 200];
        for (i, b) in shared.iter_mut().enumerate() {
            *b = i as u8 ^ 0x5a;
        }
        let base = shared.as_mut_ptr();
        for off in 0..17 {
            for len in 0..(200 - off).min(90) {
                let mut out = [0u8; 90];
                // SAFETY: off + len <= 200: inside `shared`.
                unsafe { copy_from_shared(base.add(off), &mut out[..len]) };
                assert_eq!(&out[..len], &shared[off..off + len], "{off} {len}");
                let src: [u8; 90] = core::array::from_fn(|i| (i * 7) as u8);
                let mut copy = shared;
                // SAFETY: as above, into our copy.
                unsafe { copy_to_shared(&src[..len], copy.as_mut_ptr().add(off)) };
                assert_eq!(&copy[off..off + len], &src[..len], "{off} {len}");
                assert_eq!(&copy[..off], &shared[..off]);
                assert_eq!(&copy[off + len..], &shared[off + len..]);
            }
        }
    }

    #[test]
    fn copies_long_runs_exactly() {
        // Around the size from which x86-64 copies with `rep movsb`, at
        // every alignment of a word: exactly the bytes asked for, no more.
        let mut shared = [0u8; 8300];
        for (i, b) in shared.iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        let base = shared.as_mut_ptr();
        for off in 0..17 {
            for len in [4000, 4095, 4096, 4097, 4111, 8192] {
                let mut out = [0u8; 8200];
                // SAFETY: off + len + 1 <= 8300: inside `shared`.
                unsafe { copy_from_shared(base.add(off), &mut out[..len]) };
                assert_eq!(&out[..len], &shared[off..off + len], "{off} {len}");
                assert!(out[len..].iter().all(|&b| b == 0), "{off} {len}");
                let src: [u8; 8200] = core::array::from_fn(|i| (i * 7) as u8);
                let mut copy = shared;
                // SAFETY: as above, into our copy.
                unsafe { copy_to_shared(&src[..len], copy.as_mut_ptr().add(off)) };
                assert_eq!(&copy[off..off + len], &src[..len], "{off} {len}");
                assert_eq!(&copy[..off], &shared[..off]);
                assert_eq!(&copy[off + len..], &shared[off + len..]);
            }
        }
    }
}
