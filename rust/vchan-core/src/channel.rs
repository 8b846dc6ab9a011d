//! One endpoint's view of a vchan: stream and packet I/O over the two rings.

use core::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};

use crate::error::Error;
use crate::layout::*;
use crate::mem::{RingMem, SharedPage};
use crate::order::Orders;
pub use crate::state::LiveState;

/// The outcome of a successful ring operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "when `notify` is set the peer must be signalled on the event channel"]
pub struct Transfer {
    /// Bytes moved (0 when nothing could be moved).
    pub bytes: usize,
    /// The peer asked to be told about this progress: signal the event
    /// channel.
    pub notify: bool,
}

impl Transfer {
    const NOTHING: Transfer = Transfer {
        bytes: 0,
        notify: false,
    };
}

/// A contiguous run of readable bytes in the read ring (see
/// [`Channel::peek`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Byte offset in the read ring.
    pub offset: usize,
    /// Number of readable bytes starting there (never past the ring's end).
    pub len: usize,
}

/// How an endpoint orders the two halves of Xen's notify protocol: "publish
/// my index, then look at the peer's notify request" (the fast path, every
/// operation) against the peer's "post my request, then look at your
/// index" (before it sleeps). Without a store-load barrier between the two
/// halves, on one side or the other, each side can miss the other's store
/// and a wake-up is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fences {
    /// A full barrier on both sides, as Xen's libxenvchan does: the fast
    /// path waits for its index store to reach the peer's cache before it
    /// reads the request (a cross-core round trip per operation).
    Full,
    /// The peer promised to run a process-wide barrier (Linux's
    /// `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`, which makes every
    /// thread of every registered process, ours included, execute a full
    /// barrier) after posting a request and before looking at our index,
    /// and this process is registered for it. That barrier orders our
    /// fast path for us: either it falls after our index store (the peer
    /// then sees the index and does not sleep) or before our look at the
    /// request (we then see the request and signal). So the fast path needs
    /// only a compiler barrier; the cost moves to the side about to sleep,
    /// which is about to spend far more on the sleep itself.
    PeerBarrier,
}

/// One endpoint of a vchan over a shared page `P` and rings `R`.
///
/// Our own indices (`cons` of the ring we read, `prod` of the ring we write)
/// are kept privately and only ever *written* to the page; the peer's
/// indices are read at most once per operation and validated (a read or
/// write whose amount the last validated value covers does not look
/// again). The ring orders are
/// fixed at construction. A hostile peer can therefore make an operation
/// fail with a protocol error, but never make it touch memory outside the
/// rings, panic, or loop.
///
/// Operations never block and never signal: when [`Transfer::notify`] is set,
/// the caller must signal the event channel.
#[derive(Debug)]
pub struct Channel<P, R> {
    page: P,
    rd: R,
    wr: R,
    role: Role,
    orders: Orders,
    rd_mask: u32,
    wr_mask: u32,
    /// Private copy of our consumer index on the read ring.
    rd_cons: u32,
    /// Private copy of our producer index on the write ring.
    wr_prod: u32,
    /// The peer's `prod` (read ring) and `cons` (write ring) as last
    /// loaded and validated: what they cover needs no new look.
    rd_prod_seen: u32,
    wr_cons_seen: u32,
    rd_cons_off: usize,
    rd_prod_off: usize,
    wr_cons_off: usize,
    wr_prod_off: usize,
    /// A stream write publishes `prod` after every this many bytes.
    wr_seg: usize,
    /// A stream read releases `cons` after every this many bytes.
    rd_seg: usize,
    /// How the fast path orders its index store and the request check.
    fences: Fences,
    /// Run after posting a notify request, before re-checking: our half
    /// of [`Fences::PeerBarrier`] (see [`set_arm_barrier`](Channel::set_arm_barrier)).
    arm_barrier: Option<fn()>,
}

/// The default publish granularity of stream copies through a ring of
/// `size` bytes: a quarter of the ring, at least 1 KiB, at most 64 KiB.
///
/// A copy larger than this is pipelined: the index is published after
/// each segment, so the peer starts copying the first segment while we
/// copy the next, and both cores work at once. Measured with `make bench`
/// (the limit row tries ring/1 .. ring/16): publishing a 64 KiB ring every
/// 16 KiB moves about twice what whole-ring chunks do; below ~1 KiB the
/// per-segment barrier and the cache-line hand-off of the index dominate.
pub const fn default_segment(size: usize) -> usize {
    let q = size / 4;
    if q < 1024 {
        1024
    } else if q > 65536 {
        65536
    } else {
        q
    }
}

impl<P: SharedPage, R: RingMem> Channel<P, R> {
    /// Build the server's endpoint on a page already set up by
    /// [`init_server_page`](crate::setup::init_server_page), with its read (left) and write (right) rings.
    pub fn server(page: P, orders: Orders, read: R, write: R) -> Result<Self, Error> {
        Self::new(page, Role::Server, orders, read, write, 0, 0)
    }

    /// Build the client's endpoint on a mapped page whose orders were
    /// validated by [`read_orders`](crate::setup::read_orders), and announce it: `cli_live = 1`,
    /// `srv_notify = WRITE`. The caller then signals the event channel.
    pub fn client(page: P, orders: Orders, read: R, write: R) -> Result<Self, Error> {
        // Our own indices are read once, now; afterwards we trust only our
        // private copies.
        let rd_cons = page.load_u32(RIGHT_CONS, Relaxed);
        let wr_prod = page.load_u32(LEFT_PROD, Relaxed);
        let ch = Self::new(page, Role::Client, orders, read, write, rd_cons, wr_prod)?;
        ch.page.store_u8(SRV_NOTIFY, NOTIFY_WRITE, Relaxed);
        ch.page.store_u8(CLI_LIVE, LIVE_CONNECTED, Release);
        ch.page.full_fence();
        Ok(ch)
    }

    fn new(
        page: P,
        role: Role,
        orders: Orders,
        rd: R,
        wr: R,
        rd_cons: u32,
        wr_prod: u32,
    ) -> Result<Self, Error> {
        let rd_size = 1usize << orders.read(role);
        let wr_size = 1usize << orders.write(role);
        for (expected, actual) in [(rd_size, rd.len()), (wr_size, wr.len())] {
            if expected != actual {
                return Err(Error::RingMemSize { expected, actual });
            }
        }
        let (rd_cons_off, rd_prod_off) = role.read_indices();
        let (wr_cons_off, wr_prod_off) = role.write_indices();
        let (wr_seg, rd_seg) = (default_segment(wr_size), default_segment(rd_size));
        Ok(Channel {
            page,
            rd,
            wr,
            role,
            orders,
            rd_mask: (rd_size - 1) as u32,
            wr_mask: (wr_size - 1) as u32,
            rd_cons,
            wr_prod,
            // Nothing known readable nor free: the first look is afresh.
            rd_prod_seen: rd_cons,
            wr_cons_seen: wr_prod.wrapping_sub(wr_size as u32),
            rd_cons_off,
            rd_prod_off,
            wr_cons_off,
            wr_prod_off,
            wr_seg,
            rd_seg,
            fences: Fences::Full,
            arm_barrier: None,
        })
    }

    /// After posting a notify request (before the re-check), also run
    /// `barrier`, which must make every thread of the peer's process
    /// execute a full memory barrier (e.g. Linux's
    /// `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` with the peer
    /// registered). Set it before telling the peer it may use
    /// [`Fences::PeerBarrier`], and keep it for the channel's life: the peer
    /// relies on it from then on.
    pub fn set_arm_barrier(&mut self, barrier: Option<fn()>) {
        self.arm_barrier = barrier;
    }

    /// The barrier run after each notify request, if any (see
    /// [`set_arm_barrier`](Channel::set_arm_barrier)).
    pub fn arm_barrier(&self) -> Option<fn()> {
        self.arm_barrier
    }

    /// How the fast path orders itself (see [`Fences`]). Only choose
    /// [`Fences::PeerBarrier`] once the peer promised its barrier; a peer
    /// that lied can only lose its own wake-ups.
    pub fn set_fences(&mut self, fences: Fences) {
        self.fences = fences;
    }

    /// The fast path's ordering (see [`set_fences`](Channel::set_fences)).
    pub fn fences(&self) -> Fences {
        self.fences
    }

    /// Set the publish granularity of stream writes and reads (bytes; 0
    /// means "never split": one publication per call). See
    /// [`default_segment`]. Packets (`send`/`recv`) are never split: the
    /// peer sees them whole.
    pub fn set_segments(&mut self, write: usize, read: usize) {
        let whole = |n: usize| if n == 0 { usize::MAX } else { n };
        self.wr_seg = whole(write);
        self.rd_seg = whole(read);
    }

    /// The publish granularities of stream (write, read) copies.
    pub fn segments(&self) -> (usize, usize) {
        (self.wr_seg, self.rd_seg)
    }

    /// This endpoint's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The ring orders fixed at set-up.
    pub fn orders(&self) -> Orders {
        self.orders
    }

    /// The shared page.
    pub fn page(&self) -> &P {
        &self.page
    }

    /// The ring we read from.
    pub fn read_ring(&self) -> &R {
        &self.rd
    }

    /// The ring we write to.
    pub fn write_ring(&self) -> &R {
        &self.wr
    }

    /// Size of the ring we read from.
    pub fn read_size(&self) -> usize {
        self.rd_mask as usize + 1
    }

    /// Size of the ring we write to.
    pub fn write_size(&self) -> usize {
        self.wr_mask as usize + 1
    }

    /// Bytes readable now. Reads the peer's `prod` once (acquire: the data
    /// it covers is visible after this).
    #[inline]
    pub fn data_ready(&self) -> Result<usize, Error> {
        Ok(self.peer_prod()?.wrapping_sub(self.rd_cons) as usize)
    }

    /// The peer's `prod`, loaded once (acquire) and validated.
    #[inline(always)]
    fn peer_prod(&self) -> Result<u32, Error> {
        let prod = self.page.load_u32(self.rd_prod_off, Acquire);
        if prod.wrapping_sub(self.rd_cons) > self.rd_mask + 1 {
            return Err(Error::ReadIndices {
                prod,
                cons: self.rd_cons,
                size: self.rd_mask + 1,
            });
        }
        Ok(prod)
    }

    /// Bytes readable, at least `want` if there are: from the last `prod`
    /// loaded if it covers `want` (the page's line, which the peer keeps
    /// taking back, is not touched), else loaded afresh. Arming looks afresh.
    #[inline(always)]
    fn ready_for(&mut self, want: usize) -> Result<usize, Error> {
        let known = self.rd_prod_seen.wrapping_sub(self.rd_cons) as usize;
        if known >= want {
            return Ok(known);
        }
        self.rd_prod_seen = self.peer_prod()?;
        Ok(self.rd_prod_seen.wrapping_sub(self.rd_cons) as usize)
    }

    /// Bytes writable, at least `want` if that many are: as
    /// [`ready_for`](Channel::ready_for), from the `cons` loaded last.
    #[inline(always)]
    fn space_for(&mut self, want: usize) -> Result<usize, Error> {
        let size = self.wr_mask + 1;
        let known = (size - self.wr_prod.wrapping_sub(self.wr_cons_seen)) as usize;
        if known >= want {
            return Ok(known);
        }
        self.wr_cons_seen = self.peer_cons()?;
        Ok((size - self.wr_prod.wrapping_sub(self.wr_cons_seen)) as usize)
    }

    /// Bytes writable now. Reads the peer's `cons` once (acquire: the
    /// peer's reads of the space it frees are done).
    #[inline]
    pub fn buffer_space(&self) -> Result<usize, Error> {
        let used = self.wr_prod.wrapping_sub(self.peer_cons()?);
        Ok((self.wr_mask + 1 - used) as usize)
    }

    /// The peer's `cons`, loaded once (acquire) and validated.
    #[inline(always)]
    fn peer_cons(&self) -> Result<u32, Error> {
        let cons = self.page.load_u32(self.wr_cons_off, Acquire);
        let size = self.wr_mask + 1;
        if self.wr_prod.wrapping_sub(cons) > size {
            return Err(Error::WriteIndices {
                prod: self.wr_prod,
                cons,
                size,
            });
        }
        Ok(cons)
    }

    /// The peer's consumer index on the ring we write, as the page says
    /// now: read once and not validated, so only a hint (e.g. whether the
    /// peer moved since an earlier look), never a size or an offset.
    #[inline]
    pub fn peer_read_progress(&self) -> u32 {
        self.page.load_u32(self.wr_cons_off, Relaxed)
    }

    /// Ask the peer to signal us after it writes (sets WRITE in the peer's
    /// notify byte, then a full barrier). Re-check [`data_ready`] afterwards:
    /// the peer may have written in between.
    ///
    /// [`data_ready`]: Channel::data_ready
    #[inline]
    pub fn request_write_notify(&self) {
        self.request(NOTIFY_WRITE);
    }

    /// Ask the peer to signal us after it reads (sets READ in the peer's
    /// notify byte, then a full barrier). Re-check [`buffer_space`]
    /// afterwards.
    ///
    /// [`buffer_space`]: Channel::buffer_space
    #[inline]
    pub fn request_read_notify(&self) {
        self.request(NOTIFY_READ);
    }

    #[inline]
    fn request(&self, bit: u8) {
        self.page
            .fetch_or_u8(self.role.peer().notify_offset(), bit, SeqCst);
        self.page.full_fence();
        if let Some(barrier) = self.arm_barrier {
            barrier();
        }
    }

    /// [`data_ready`](Channel::data_ready), and when fewer than `want` bytes
    /// are ready, request a write notification and look again (Xen's
    /// `fast_get_data_ready`). A caller that sees fewer than `want` bytes
    /// may then sleep on the event channel without losing a wake-up.
    #[inline]
    pub fn data_ready_or_arm(&self, want: usize) -> Result<usize, Error> {
        let ready = self.data_ready()?;
        if ready >= want {
            return Ok(ready);
        }
        self.request_write_notify();
        self.data_ready()
    }

    /// [`buffer_space`](Channel::buffer_space), and when fewer than `want`
    /// bytes are free, request a read notification and look again.
    #[inline]
    pub fn buffer_space_or_arm(&self, want: usize) -> Result<usize, Error> {
        let space = self.buffer_space()?;
        if space >= want {
            return Ok(space);
        }
        self.request_read_notify();
        self.buffer_space()
    }

    /// Acknowledge progress: after a barrier (see [`Fences`]), clear `bit`
    /// in our own notify byte and report whether it was set (the peer wants
    /// a signal).
    #[inline]
    fn take_notify(&self, bit: u8) -> bool {
        match self.fences {
            Fences::Full => self.page.full_fence(),
            Fences::PeerBarrier => core::sync::atomic::compiler_fence(SeqCst),
        }
        let off = self.role.notify_offset();
        // Cheap check first: a plain load after the fence sees a request
        // posted before our index update (the requester fences too).
        if self.page.load_u8(off, Relaxed) & bit == 0 {
            return false;
        }
        self.page.fetch_and_u8(off, !bit, SeqCst) & bit != 0
    }

    /// Stream write: copy as much of `buf` as fits (possibly 0 bytes). The
    /// copy is pipelined: `prod` is published (a release store) after
    /// every segment ([`set_segments`](Channel::set_segments)), so a
    /// spinning reader starts on the first segment at once. Only the last
    /// publication is followed by the full barrier and the notify check of
    /// Xen's protocol: a reader that armed meanwhile and still saw too
    /// little is seen by that check (the last index covers every byte), and
    /// the caller signals once per call anyway, so a barrier per segment
    /// (which waits for the index's cache line to travel to the peer and
    /// back) would buy nothing.
    #[inline]
    pub fn write(&mut self, buf: &[u8]) -> Result<Transfer, Error> {
        let space = self.space_for(buf.len())?;
        let n = space.min(buf.len());
        if n == 0 {
            return Ok(Transfer::NOTHING);
        }
        if n <= self.wr_seg {
            // One segment (every small message): no cutting, no division.
            self.copy_in(&buf[..n]);
            return Ok(self.publish_prod(n));
        }
        let (body, last) = buf[..n].split_at(n - self.last_segment(n, self.wr_seg));
        for seg in body.chunks(self.wr_seg) {
            self.copy_in(seg);
            self.advance_prod(seg.len());
        }
        self.copy_in(last);
        let notify = self.publish_prod(last.len()).notify;
        Ok(Transfer { bytes: n, notify })
    }

    /// Packet send: copy all of `buf` or nothing. A packet larger than the
    /// ring is an error; a packet that does not fit now moves 0 bytes.
    #[inline]
    pub fn send(&mut self, buf: &[u8]) -> Result<Transfer, Error> {
        let ring = self.write_size();
        if buf.len() > ring {
            return Err(Error::PacketTooLarge {
                len: buf.len(),
                ring,
            });
        }
        if self.space_for(buf.len())? < buf.len() || buf.is_empty() {
            return Ok(Transfer::NOTHING);
        }
        self.copy_in(buf);
        Ok(self.publish_prod(buf.len()))
    }

    /// Stream read: copy up to `buf.len()` readable bytes (possibly 0).
    /// Pipelined like [`write`](Channel::write): `cons` is released (a
    /// release store) after every segment, so a writer waiting for space
    /// refills the ring while we copy the rest; the last release is the
    /// full one of Xen's protocol (barriers, notify check).
    #[inline]
    pub fn read(&mut self, buf: &mut [u8]) -> Result<Transfer, Error> {
        let ready = self.ready_for(buf.len())?;
        let n = ready.min(buf.len());
        if n == 0 {
            return Ok(Transfer::NOTHING);
        }
        if n <= self.rd_seg {
            self.copy_out(&mut buf[..n]);
            return Ok(self.publish_cons(n));
        }
        let cut = n - self.last_segment(n, self.rd_seg);
        let (body, last) = buf[..n].split_at_mut(cut);
        for seg in body.chunks_mut(self.rd_seg) {
            self.copy_out(seg);
            self.advance_cons(seg.len());
        }
        self.copy_out(last);
        let notify = self.publish_cons(last.len()).notify;
        Ok(Transfer { bytes: n, notify })
    }

    /// Packet receive: fill all of `buf` or read nothing. A packet larger
    /// than the ring is an error.
    #[inline]
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<Transfer, Error> {
        let ring = self.read_size();
        if buf.len() > ring {
            return Err(Error::PacketTooLarge {
                len: buf.len(),
                ring,
            });
        }
        if self.ready_for(buf.len())? < buf.len() || buf.is_empty() {
            return Ok(Transfer::NOTHING);
        }
        self.copy_out(buf);
        Ok(self.publish_cons(buf.len()))
    }

    /// Zero-copy read, first half: the contiguous readable bytes starting at
    /// our consumer index (up to the ring's end). They stay valid until
    /// [`consume`](Channel::consume) releases them.
    #[inline]
    pub fn peek(&self) -> Result<Span, Error> {
        let ready = self.data_ready()?;
        let offset = (self.rd_cons & self.rd_mask) as usize;
        let contiguous = self.read_size() - offset;
        Ok(Span {
            offset,
            len: ready.min(contiguous),
        })
    }

    /// Zero-copy read, second half: release `n` bytes previously seen with
    /// [`peek`](Channel::peek).
    #[inline]
    pub fn consume(&mut self, n: usize) -> Result<Transfer, Error> {
        self.rd_prod_seen = self.peer_prod()?;
        let available = self.rd_prod_seen.wrapping_sub(self.rd_cons) as usize;
        if n > available {
            return Err(Error::ConsumeTooMuch {
                requested: n,
                available,
            });
        }
        if n == 0 {
            return Ok(Transfer::NOTHING);
        }
        Ok(self.publish_cons(n))
    }

    /// Zero-copy write, first half: the contiguous free bytes of the write
    /// ring starting at our producer index (up to the ring's end). Fill
    /// them (by raw pointer: the peer can see this memory), then publish
    /// them with [`produce`](Channel::produce).
    #[inline]
    pub fn free_span(&self) -> Result<Span, Error> {
        let space = self.buffer_space()?;
        let offset = (self.wr_prod & self.wr_mask) as usize;
        let contiguous = self.write_size() - offset;
        Ok(Span {
            offset,
            len: space.min(contiguous),
        })
    }

    /// Zero-copy write, second half: publish `n` bytes written into the
    /// span [`free_span`](Channel::free_span) returned (one publication).
    #[inline]
    pub fn produce(&mut self, n: usize) -> Result<Transfer, Error> {
        self.wr_cons_seen = self.peer_cons()?;
        let used = self.wr_prod.wrapping_sub(self.wr_cons_seen) as usize;
        let contiguous = self.write_size() - (self.wr_prod & self.wr_mask) as usize;
        let available = (self.write_size() - used).min(contiguous);
        if n > available {
            return Err(Error::ProduceTooMuch {
                requested: n,
                available,
            });
        }
        if n == 0 {
            return Ok(Transfer::NOTHING);
        }
        Ok(self.publish_prod(n))
    }

    /// Copy `src` (length <= buffer space) at our producer index: at most
    /// two copies, the second when the data wraps around the ring's end.
    #[inline(always)]
    fn copy_in(&self, src: &[u8]) {
        let pos = (self.wr_prod & self.wr_mask) as usize;
        let first = src.len().min(self.write_size() - pos);
        let (a, b) = src.split_at(first);
        self.wr.write_at(pos, a);
        if !b.is_empty() {
            self.wr.write_at(0, b);
        }
    }

    /// Copy `dst.len()` (<= data ready) bytes from our consumer index.
    #[inline(always)]
    fn copy_out(&self, dst: &mut [u8]) {
        let pos = (self.rd_cons & self.rd_mask) as usize;
        let first = dst.len().min(self.read_size() - pos);
        let (a, b) = dst.split_at_mut(first);
        self.rd.read_at(pos, a);
        if !b.is_empty() {
            self.rd.read_at(0, b);
        }
    }

    /// Length of the last segment of an `n`-byte copy cut every `seg`
    /// bytes (`n > 0`): the rest of `n / seg`, or a whole segment.
    #[inline(always)]
    fn last_segment(&self, n: usize, seg: usize) -> usize {
        match n % seg {
            0 => seg.min(n),
            r => r,
        }
    }

    /// An intermediate publication of a pipelined write: `n` more produced
    /// bytes, release only (the data is visible first).
    #[inline(always)]
    fn advance_prod(&mut self, n: usize) {
        self.wr_prod = self.wr_prod.wrapping_add(n as u32);
        self.page.store_u32(self.wr_prod_off, self.wr_prod, Release);
    }

    /// An intermediate release of a pipelined read: `n` more consumed
    /// bytes, release only (our reads of them are done first).
    #[inline(always)]
    fn advance_cons(&mut self, n: usize) {
        self.rd_cons = self.rd_cons.wrapping_add(n as u32);
        self.page.store_u32(self.rd_cons_off, self.rd_cons, Release);
    }

    /// Publish `n` more produced bytes (release: the data is visible first)
    /// and acknowledge a pending write-notify request.
    #[inline(always)]
    fn publish_prod(&mut self, n: usize) -> Transfer {
        self.wr_prod = self.wr_prod.wrapping_add(n as u32);
        self.page.store_u32(self.wr_prod_off, self.wr_prod, Release);
        Transfer {
            bytes: n,
            notify: self.take_notify(NOTIFY_WRITE),
        }
    }

    /// Publish `n` more consumed bytes and acknowledge a pending
    /// read-notify request. The release store orders our reads of the data
    /// before it (a release orders every earlier load and store, and on
    /// x86 loads never pass later stores anyway), so the peer cannot
    /// overwrite bytes we are still reading; Xen's C library puts a full
    /// barrier here, which costs a fence per read and buys nothing more.
    #[inline(always)]
    fn publish_cons(&mut self, n: usize) -> Transfer {
        self.rd_cons = self.rd_cons.wrapping_add(n as u32);
        self.page.store_u32(self.rd_cons_off, self.rd_cons, Release);
        Transfer {
            bytes: n,
            notify: self.take_notify(NOTIFY_READ),
        }
    }

    /// The peer's state, from its live byte (read once).
    #[inline]
    pub fn peer_state(&self) -> Result<LiveState, Error> {
        LiveState::from_byte(self.page.load_u8(self.role.peer().live_offset(), Acquire))
    }

    /// The peer died (the platform saw it): mark it exited, as Xen's unmap
    /// notification does. True when it had not closed first (it vanished).
    pub fn mark_peer_gone(&self) -> bool {
        let offset = self.role.peer().live_offset();
        let vanished = self.page.load_u8(offset, Acquire) != LIVE_EXITED;
        self.page.store_u8(offset, LIVE_EXITED, Release);
        vanished
    }

    /// Announce our own state in our live byte.
    pub fn set_state(&self, state: LiveState) {
        self.page
            .store_u8(self.role.live_offset(), state.to_byte(), Release);
        self.page.full_fence();
    }

    /// Mark this endpoint closed (live byte 0). The caller then signals the
    /// event channel so a sleeping peer notices. Data already written stays
    /// readable by the peer.
    pub fn close(&self) {
        self.set_state(LiveState::Exited);
    }

    /// Give back the page and the rings.
    pub fn into_parts(self) -> (P, R, R) {
        (self.page, self.rd, self.wr)
    }
}
