//! What an endpoint needs from its environment: memory shared between the
//! two sides by grant references, an event channel, and a store for the
//! rendezvous. Two implementations: [`unix`] (no hypervisor) and [`xen`].

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::port::DomId;

pub(crate) mod choice;
pub mod unix;
pub mod xen;

/// A run of pages shared by us (server) or mapped from the peer (client).
/// Dropping it unshares or unmaps the pages.
pub trait Region: Send {
    /// First byte of the mapping.
    fn as_ptr(&self) -> *mut u8;
    /// Length of the mapping in bytes (a multiple of 4096).
    fn len(&self) -> usize;
    /// True for an empty mapping.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The grant references of the pages (for shared regions; empty for
    /// mapped ones).
    fn refs(&self) -> &[u32];
}

/// What [`EventChannel::drain`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Events {
    /// How many notifications arrived (0: none). A backend that cannot
    /// count them reports 1 for any number. xensim needs the count to
    /// simulate Xen's masking: a notification that arrives while an earlier
    /// one is still undelivered is not lost but delivered again on unmask.
    pub notifies: u32,
    /// The peer is gone (its process died or closed the channel). The
    /// endpoint then treats the peer's live byte as 0, as Xen's
    /// unmap-notify would have made it.
    pub peer_gone: bool,
    /// The peer announced that it runs a process-wide barrier after
    /// posting a notify request (see [`EventChannel::announce_barrier`]).
    pub peer_barrier: bool,
}

/// One end of an event channel.
pub trait EventChannel: Send {
    /// Our local port number.
    fn port(&self) -> u32;
    /// Signal the peer.
    fn notify(&mut self) -> io::Result<()>;
    /// A file descriptor that polls readable when an event is pending.
    fn fd(&self) -> RawFd;
    /// Consume every pending event without blocking.
    fn drain(&mut self) -> io::Result<Events>;
    /// Block until an event is pending (or the peer is gone), then consume
    /// every pending event. By default a `poll` of [`fd`](EventChannel::fd)
    /// and a [`drain`](EventChannel::drain); backends that can wait and
    /// consume in one system call do.
    fn wait(&mut self) -> io::Result<Events> {
        poll_fd(self.fd(), None)?;
        self.drain()
    }
    /// Ask that, should this process die or unmap without closing, the byte
    /// at `offset` of page `gref` (shared or mapped by this process from
    /// domain `owner`) be cleared and the peer signalled. The Xen backend
    /// does this through the grant devices instead, and ignores the call.
    fn set_unmap_notify(&mut self, owner: DomId, gref: u32, offset: u32) -> io::Result<()>;
    /// Tell the connected peer that we run [`Backend::process_barrier`]
    /// after every notify request we post, so that it may use
    /// [`vchan_core::Fences::PeerBarrier`] (a client's way; a server says
    /// so in its [`Rendezvous`]). Backends whose peers may be other
    /// implementations (Xen's) have no such message.
    fn announce_barrier(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// A descriptor that reports a hang-up (`EPOLLRDHUP`/`EPOLLHUP`) when
    /// the peer closes or dies, and is not readable for notifications
    /// alone, if the backend has one (the unix backend's connection
    /// socket, once connected). It stays valid until the next
    /// [`drain`](EventChannel::drain) or [`wait`](EventChannel::wait), which
    /// may close it once the peer is gone: watch it, and stop watching it
    /// before consuming events.
    fn hangup_fd(&self) -> Option<RawFd> {
        None
    }
}

/// The rendezvous a server publishes: its page's grant ref and its event
/// channel port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rendezvous {
    /// Grant reference of the shared control page.
    pub ring_ref: u32,
    /// The server's event channel port.
    pub event_channel: u32,
    /// The server runs [`Backend::process_barrier`] after every notify
    /// request it posts, so the client may use
    /// [`vchan_core::Fences::PeerBarrier`] from the start. Only the unix
    /// backend records it (the store leaf `vchan-rs-barrier`); always
    /// false under Xen.
    pub barrier: bool,
}

/// Store leaf of a rendezvous: [`Rendezvous::ring_ref`] (libxenvchan's).
pub(crate) const RING_REF_LEAF: &str = "ring-ref";
/// Store leaf of a rendezvous: [`Rendezvous::event_channel`] (libxenvchan's).
pub(crate) const EVENT_CHANNEL_LEAF: &str = "event-channel";
/// Store leaf of a rendezvous: the xen backend's record of the server that
/// published it (see `xen/owner.rs`).
pub(crate) const OWNER_LEAF: &str = "vchan-rs-server";
/// Store leaf of a rendezvous: [`Rendezvous::barrier`] (the unix
/// backend's), holding [`BARRIER_VALUE`].
pub(crate) const BARRIER_LEAF: &str = "vchan-rs-barrier";
/// The value of [`BARRIER_LEAF`]: the server runs `membarrier(2)` after
/// every notify request.
pub(crate) const BARRIER_VALUE: &str = "membarrier";
/// Every leaf a rendezvous of ours may have: what removing one removes.
pub(crate) const RENDEZVOUS_LEAVES: [&str; 4] =
    [RING_REF_LEAF, EVENT_CHANNEL_LEAF, OWNER_LEAF, BARRIER_LEAF];

/// An environment in which vchans live.
pub trait Backend: Send + Sync {
    /// Short name ("unix", "xen").
    fn name(&self) -> &'static str;
    /// The domain this process runs in.
    fn own_domid(&self) -> Result<DomId>;
    /// Allocate an event channel port that `remote` may bind to.
    fn bind_unbound(&self, remote: DomId) -> Result<Box<dyn EventChannel>>;
    /// Bind to `remote_port` of domain `remote`.
    fn bind_interdomain(&self, remote: DomId, remote_port: u32) -> Result<Box<dyn EventChannel>>;
    /// Share `pages` fresh zeroed pages with `remote`, writable by it. With
    /// `notify`, the byte at that offset of the first page is cleared and
    /// the event signalled should this process die.
    fn share(
        &self,
        remote: DomId,
        pages: usize,
        notify: Option<(u32, &mut dyn EventChannel)>,
    ) -> Result<Box<dyn Region>>;
    /// Map pages `refs` granted by `remote`, contiguously.
    fn map(
        &self,
        remote: DomId,
        refs: &[u32],
        writable: bool,
        notify: Option<(u32, &mut dyn EventChannel)>,
    ) -> Result<Box<dyn Region>>;
    /// Publish a server's rendezvous at `path` (one transaction), readable
    /// by `client`. Fails with [`crate::Error::AddrInUse`] if a live server
    /// already published there; a stale entry is replaced.
    fn publish(&self, path: &str, client: DomId, rv: Rendezvous) -> Result<()>;
    /// Read a rendezvous; `None` while no (live) server published it.
    fn lookup(&self, path: &str) -> Result<Option<Rendezvous>>;
    /// Remove a rendezvous.
    fn unpublish(&self, path: &str) -> Result<()>;
    /// Clean up what dead processes left behind (no-op where the system
    /// does it, as under Xen).
    fn sweep(&self) {}
    /// A barrier that makes every thread of a peer process execute a full
    /// memory barrier, if this backend has one and this process can both
    /// run it and be reached by the peer's (see
    /// [`vchan_core::Fences::PeerBarrier`]). None under Xen: a peer in
    /// another domain is out of any such barrier's reach.
    fn process_barrier(&self) -> Option<fn()> {
        None
    }
}

/// poll(2) one descriptor for readability; false on timeout.
pub(crate) fn poll_fd(fd: RawFd, timeout: Option<Duration>) -> io::Result<bool> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                left.as_millis().min(i32::MAX as u128) as i32
                    + i32::from(left.subsec_nanos() % 1_000_000 != 0)
            }
        };
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let rc = unsafe { libc::poll(&mut p, 1, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(rc > 0);
    }
}
