//! Endpoints: a server that shares the memory and a client that maps it.
//! This file has the endpoint itself and its closing; its phases are
//! [`setup`] (listen, connect), [`wait`] (the peer's state, events,
//! sleeping) and [`io`] (reads and writes).

mod io;
mod setup;
mod wait;

use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use vchan_core::{Channel, Fences, RawPage, RawRing, Role};

use crate::backend::{Backend, EventChannel, Region};
use crate::error::{Error, Result};
use crate::port::DomId;
use crate::spin::Spin;

/// The state of the channel, as ocaml-vchan's `state` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The peer has not connected yet (server before its client).
    Waiting,
    /// Both sides are connected.
    Connected,
    /// The peer closed or died (data it wrote before may still be readable).
    Exited,
}

/// Everything that must be released on close, in field order.
struct Live {
    ch: Channel<RawPage, RawRing>,
    event: Box<dyn EventChannel>,
    // Ring regions are dropped (unmapped/unshared) before the page.
    _rings: Vec<Box<dyn Region>>,
    _page: Box<dyn Region>,
}

/// One end of a vchan.
///
/// Blocking by default; [`set_nonblocking`](Endpoint::set_nonblocking)
/// turns operations that would wait into `WouldBlock` errors. In that mode,
/// as with Xen's `libxenvchan`, the event descriptor ([`AsRawFd`]) polls
/// readable when something changed, and only the caller consumes events:
/// when it polls readable, call [`consume_events`](Endpoint::consume_events)
/// once (this also notices a dead peer), then retry *every* operation that
/// returned `WouldBlock`. Operations never consume events behind the
/// caller's back, so one cannot swallow the wake-up another is waiting for.
/// The hot path (data moving,
/// the peer not asleep) takes no lock, makes no system call and allocates
/// nothing; before sleeping, a side spins briefly on the peer's index, for a
/// time that adapts to how often spinning paid off.
pub struct Endpoint {
    live: Option<Live>,
    backend: Arc<dyn Backend>,
    role: Role,
    peer: DomId,
    /// Where a server published its rendezvous.
    path: Option<String>,
    nonblocking: bool,
    spin: Spin,
    /// The peer went away without closing (see
    /// [`peer_vanished`](Endpoint::peer_vanished)).
    vanished: bool,
    /// The event channel said the peer is gone (closed or died): from then
    /// on its state is `Exited`, whatever the shared page says (a peer's
    /// page can be rewritten by anyone who mapped it).
    peer_gone: bool,
    /// When events were last consumed ([`coarse_ms`]).
    drained_at: u64,
    /// The peer's consumer index on our write ring when a write last
    /// looked (see [`Endpoint::death_check_due`]).
    peer_cons_seen: u32,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("backend", &self.backend.name())
            .field("role", &self.role)
            .field("peer", &self.peer)
            .field("path", &self.path)
            .field("open", &self.live.is_some())
            .finish()
    }
}

impl Endpoint {
    /// How this endpoint's fast path is fenced: [`Fences::Full`] (Xen's
    /// protocol as libxenvchan runs it), or [`Fences::PeerBarrier`] once a
    /// peer on the unix backend announced that it runs `membarrier(2)`
    /// after posting a notify request (and this process is registered for
    /// it). Events are consumed lazily, so a new endpoint may report
    /// `Full` for a while (at most until its first wait, or a blocking
    /// writer's 200 ms death check).
    pub fn fences(&self) -> Result<Fences> {
        Ok(self.live()?.ch.fences())
    }

    /// Server or client.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The peer's domain.
    pub fn peer(&self) -> DomId {
        self.peer
    }

    /// The backend this endpoint lives in.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Where a server published its rendezvous (`None` for a client).
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// Switch between blocking and non-blocking operation.
    pub fn set_nonblocking(&mut self, nonblocking: bool) {
        self.nonblocking = nonblocking;
    }

    /// Set how often stream copies publish their progress to the peer:
    /// after every `write` bytes written and `read` bytes read (0: once per
    /// call). The default is [`vchan_core::default_segment`] of each ring
    /// size, which suits a peer that copies at the same time; a tuning
    /// knob for benchmarks.
    pub fn set_segments(&mut self, write: usize, read: usize) -> Result<()> {
        self.live_mut()?.ch.set_segments(write, read);
        Ok(())
    }

    /// Is the endpoint in non-blocking mode?
    pub fn is_nonblocking(&self) -> bool {
        self.nonblocking
    }

    // A match, not `ok_or(Error::Closed)`: that builds the error on every
    // call and drops it (an out-of-line drop of the whole enum) on the fast
    // path; measured at ~2 ns of a 16 ns read or write. `#[inline]`: the
    // phase modules call these, and may land in other codegen units.
    #[inline]
    fn live(&self) -> Result<&Live> {
        match &self.live {
            Some(l) => Ok(l),
            None => Err(Error::Closed),
        }
    }

    #[inline]
    fn live_mut(&mut self) -> Result<&mut Live> {
        match &mut self.live {
            Some(l) => Ok(l),
            None => Err(Error::Closed),
        }
    }

    /// Size of the ring we read from.
    pub fn read_ring_size(&self) -> Result<usize> {
        Ok(self.live()?.ch.read_size())
    }

    /// Size of the ring we write to.
    pub fn write_ring_size(&self) -> Result<usize> {
        Ok(self.live()?.ch.write_size())
    }

    /// Bytes readable without waiting.
    pub fn data_ready(&self) -> Result<usize> {
        Ok(self.live()?.ch.data_ready()?)
    }

    /// Bytes writable without waiting.
    pub fn buffer_space(&self) -> Result<usize> {
        Ok(self.live()?.ch.buffer_space()?)
    }

    /// A descriptor that reports a hang-up (poll it for `EPOLLRDHUP`) when
    /// the peer closes or dies, without being readable for every
    /// notification: the unix backend's connection socket, once connected
    /// (a server's, after it accepted). An event loop that watches
    /// [`as_raw_fd`](AsRawFd::as_raw_fd) edge-triggered and does not
    /// consume every wake-up's events can watch this as well, to see a
    /// death at once. Valid until the next
    /// [`consume_events`](Endpoint::consume_events) (or wait), which may
    /// close it once the peer is gone: stop watching it first. `None`
    /// elsewhere (the xen backend), and once the peer is gone.
    pub fn hangup_fd(&self) -> Option<RawFd> {
        self.live.as_ref()?.event.hangup_fd()
    }

    /// Did the peer go away without closing the vchan (its process died)?
    /// Its state is then [`State::Exited`], as for a close, and the data
    /// it wrote before can still be read. Known on the unix backend, where
    /// the peer's end of the event channel tells; under Xen a dead peer
    /// looks exactly like one that closed, and this stays false.
    pub fn peer_vanished(&self) -> bool {
        self.vanished
    }

    /// Close: mark ourselves exited, wake the peer, release the memory,
    /// and (server) remove the rendezvous. The peer can still read what we
    /// wrote. Idempotent.
    pub fn close(&mut self) -> Result<()> {
        let (memory, result) = self.close_keeping_memory();
        // Unshare/unmap first, so that the sweep can prune the directories.
        drop(memory);
        self.backend.sweep();
        result
    }

    /// The protocol close, handing back the memory for the caller to drop.
    fn close_keeping_memory(&mut self) -> (Option<Live>, Result<()>) {
        let Some(mut live) = self.live.take() else {
            return (None, Ok(()));
        };
        live.ch.close();
        let notified = live.event.notify();
        let unpublished = match self.path.take() {
            Some(p) => self.backend.unpublish(&p),
            None => Ok(()),
        };
        (Some(live), notified.map_err(Error::from).and(unpublished))
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl AsRawFd for Endpoint {
    /// The event channel's descriptor: readable when something changed
    /// (data, space, or the peer's state). -1 once closed.
    fn as_raw_fd(&self) -> RawFd {
        self.live.as_ref().map_or(-1, |l| l.event.fd())
    }
}
