//! Endpoints: a server that shares the memory and a client that maps it.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vchan_core::layout::{CLI_LIVE, LIVE_EXITED, SRV_LIVE};
use vchan_core::setup::{self, External};
use vchan_core::{
    Channel, Fences, LiveState, Orders, RawPage, RawRing, Role, SharedPage, Span, Transfer,
};

use crate::backend::{Backend, EventChannel, Region, Rendezvous};
use crate::error::{Error, Result};
use crate::port::{rendezvous_path, DomId, Port};
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
    /// Spin before answering `WouldBlock` too (see
    /// [`set_nonblocking_spin`](Endpoint::set_nonblocking_spin)).
    nonblocking_spin: bool,
    /// When a non-blocking operation last answered `WouldBlock` after a
    /// failed spin (the next `consume_events` tells how long it waited).
    blocked_at: Option<Instant>,
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
}

/// In blocking mode a writer that never has to wait consumes events at
/// least this often (ms), to learn of a dead peer (see
/// [`Endpoint::writer_peer_state`]).
const DEATH_CHECK_MS: u64 = 200;

/// A monotonic clock in milliseconds, as cheap as a clock gets (the
/// kernel's coarse clock, read in user space through the vDSO).
fn coarse_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write; CLOCK_MONOTONIC_COARSE
    // always exists on Linux, and on failure `ts` stays zero (harmless: at
    // worst one extra drain).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1000) + (ts.tv_nsec as u64) / 1_000_000
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

/// The grant refs of an optional region (none for an in-page ring).
fn refs(region: &Option<Box<dyn Region>>) -> &[u32] {
    region.as_ref().map_or(&[], |r| r.refs())
}

/// The ring memory of an optional region (a ring in its own pages).
fn external(region: &Option<Box<dyn Region>>) -> Option<External> {
    region.as_ref().map(|r| External {
        base: r.as_ptr(),
        len: r.len(),
    })
}

/// Where the backend has a process-wide barrier (see [`Fences`]): make
/// `ch` run it after each notify request from now on (before the peer is
/// told: the server in its rendezvous, the client by
/// [`EventChannel::announce_barrier`]). True if so: this process then also
/// receives the peer's barrier, and may go light once the peer says it
/// runs its own.
fn arm_barrier(backend: &dyn Backend, ch: &mut Channel<RawPage, RawRing>) -> bool {
    let barrier = backend.process_barrier();
    ch.set_arm_barrier(barrier);
    barrier.is_some()
}

fn raw_page(page: &dyn Region) -> Result<RawPage> {
    // SAFETY: the region is at least one page and outlives the channel
    // (both live in `Live`, the region dropped after the channel).
    unsafe { RawPage::new(page.as_ptr()) }
        .ok_or_else(|| Error::Io(io::Error::other("misaligned shared page")))
}

impl Endpoint {
    /// Serve client domain `client` on `port` with the default backend
    /// ([`crate::default_backend`]). Returns at once; the client may
    /// connect later ([`accept`](Endpoint::accept) waits for it).
    pub fn listen(
        client: DomId,
        port: &Port,
        read_min: usize,
        write_min: usize,
    ) -> Result<Endpoint> {
        let backend = crate::default_backend()?;
        let path = rendezvous_path(backend.own_domid()?, client, port);
        Endpoint::listen_at(backend, client, &path, read_min, write_min)
    }

    /// Serve client domain `client` with the rendezvous at xenstore
    /// directory `path` (as Xen's `libxenvchan_server_init` does).
    pub fn listen_at(
        backend: Arc<dyn Backend>,
        client: DomId,
        path: &str,
        read_min: usize,
        write_min: usize,
    ) -> Result<Endpoint> {
        let orders = Orders::for_server(read_min, write_min)?;
        let mut event = backend.bind_unbound(client)?;
        let page = backend.share(client, 1, Some((SRV_LIVE as u32, &mut *event)))?;
        let raw = raw_page(&*page)?;
        let share_ring = |order: u8| -> Result<Option<Box<dyn Region>>> {
            match setup::ring_pages(order) {
                Some(count) if count > 0 => Ok(Some(backend.share(client, count, None)?)),
                _ => Ok(None),
            }
        };
        let left = share_ring(orders.left())?;
        let right = share_ring(orders.right())?;
        setup::init_server(&raw, orders, refs(&left), refs(&right))?;
        // SAFETY: the page and ring regions live in `Live` with the channel
        // and are dropped after it.
        let mut ch =
            unsafe { setup::server_channel(raw, orders, external(&left), external(&right))? };
        let rings = left.into_iter().chain(right).collect();
        let registered = arm_barrier(&*backend, &mut ch);
        let rv = Rendezvous {
            ring_ref: page.refs().first().copied().unwrap_or(0),
            event_channel: event.port(),
            barrier: registered,
        };
        backend.publish(path, client, rv)?;
        let live = Live {
            ch,
            event,
            _rings: rings,
            _page: page,
        };
        Ok(Endpoint::assemble(
            live,
            backend,
            client,
            Some(path.to_owned()),
        ))
    }

    /// Connect to the server in domain `server` on `port` with the default
    /// backend, waiting for the server to appear for up to `timeout`
    /// (forever with `None`).
    pub fn connect(server: DomId, port: &Port, timeout: Option<Duration>) -> Result<Endpoint> {
        let backend = crate::default_backend()?;
        let path = rendezvous_path(server, backend.own_domid()?, port);
        Endpoint::connect_at(backend, server, &path, timeout)
    }

    /// Connect to the server in domain `server` whose rendezvous is at
    /// `path` (as Xen's `libxenvchan_client_init`), waiting for it for up
    /// to `timeout`.
    pub fn connect_at(
        backend: Arc<dyn Backend>,
        server: DomId,
        path: &str,
        timeout: Option<Duration>,
    ) -> Result<Endpoint> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(rv) = backend.lookup(path)? {
                match Endpoint::attach(backend.clone(), server, rv) {
                    Ok(ep) => return Ok(ep),
                    // The server vanished between lookup and attach: wait
                    // for a new one.
                    Err(Error::Io(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                    Err(e) => return Err(e),
                }
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(Error::Timeout(Role::Client));
            }
            let nap = deadline.map_or(pause, |d| pause.min(d - now));
            std::thread::sleep(nap);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// One attempt at [`connect_at`](Endpoint::connect_at) that never
    /// waits: `Ok(None)` while no live server has published at `path`.
    /// For event loops that must not block (retry after a pause).
    pub fn try_connect_at(
        backend: Arc<dyn Backend>,
        server: DomId,
        path: &str,
    ) -> Result<Option<Endpoint>> {
        match backend.lookup(path)? {
            None => Ok(None),
            Some(rv) => match Endpoint::attach(backend, server, rv) {
                Ok(ep) => Ok(Some(ep)),
                Err(Error::Io(e)) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(None),
                Err(e) => Err(e),
            },
        }
    }

    fn attach(backend: Arc<dyn Backend>, server: DomId, rv: Rendezvous) -> Result<Endpoint> {
        let mut event = backend.bind_interdomain(server, rv.event_channel)?;
        let page = backend.map(
            server,
            &[rv.ring_ref],
            true,
            Some((CLI_LIVE as u32, &mut *event)),
        )?;
        let raw = raw_page(&*page)?;
        // Orders and grant refs are read once, here, and validated.
        let orders = setup::read_orders(&raw)?;
        let pages = |order: u8| setup::ring_pages(order).unwrap_or(0);
        let mut left_refs = vec![0u32; pages(orders.left())];
        let mut right_refs = vec![0u32; pages(orders.right())];
        setup::read_client_grants(&raw, orders, &mut left_refs, &mut right_refs)?;
        let map_ring = |refs: &[u32], writable: bool| -> Result<Option<Box<dyn Region>>> {
            if refs.is_empty() {
                return Ok(None);
            }
            Ok(Some(backend.map(server, refs, writable, None)?))
        };
        let left = map_ring(&left_refs, true)?;
        let right = map_ring(&right_refs, false)?;
        // SAFETY: the page and ring regions live in `Live` with the channel
        // and are dropped after it.
        let mut ch =
            unsafe { setup::client_channel(raw, orders, external(&left), external(&right))? };
        // A server that exited without unpublishing (it was killed) left a
        // stale rendezvous, which a restarted server's may be read with:
        // refused, so that the caller waits for the live one.
        if ch.peer_state()? == LiveState::Exited {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "the rendezvous's server has exited (a stale rendezvous)",
            )));
        }
        let rings = left.into_iter().chain(right).collect();
        if arm_barrier(&*backend, &mut ch) {
            // Before our first notification, so the server's accept, which
            // consumes that notification, learns it too.
            event.announce_barrier()?;
            if rv.barrier {
                ch.set_fences(Fences::PeerBarrier);
            }
        }
        event.notify()?;
        let live = Live {
            ch,
            event,
            _rings: rings,
            _page: page,
        };
        Ok(Endpoint::assemble(live, backend, server, None))
    }

    fn assemble(
        live: Live,
        backend: Arc<dyn Backend>,
        peer: DomId,
        path: Option<String>,
    ) -> Endpoint {
        Endpoint {
            role: live.ch.role(),
            live: Some(live),
            backend,
            peer,
            path,
            nonblocking: false,
            nonblocking_spin: false,
            blocked_at: None,
            spin: Spin::new(),
            vanished: false,
            peer_gone: false,
            drained_at: coarse_ms(),
        }
    }

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

    /// In non-blocking mode, spin on the peer's index (bounded and
    /// adaptive, as blocking mode does before sleeping: at most 100 µs,
    /// 2 µs once the peer has been idle) before answering `WouldBlock`. For
    /// event loops that can afford that much busy waiting per operation
    /// (the OCaml binding): a busy peer is then met at shared-memory speed
    /// with no event at all. How long the caller then waited, measured
    /// from the `WouldBlock` to the next
    /// [`consume_events`](Endpoint::consume_events), adapts the budget.
    pub fn set_nonblocking_spin(&mut self, spin: bool) {
        self.nonblocking_spin = spin;
    }

    /// Is the endpoint in non-blocking mode?
    pub fn is_nonblocking(&self) -> bool {
        self.nonblocking
    }

    // A match, not `ok_or(Error::Closed)`: that builds the error on every
    // call and drops it (an out-of-line drop of the whole enum) on the fast
    // path; measured at ~2 ns of a 16 ns read or write.
    fn live(&self) -> Result<&Live> {
        match &self.live {
            Some(l) => Ok(l),
            None => Err(Error::Closed),
        }
    }

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

    /// The peer's state. In blocking mode, pending events are consumed
    /// first, so a dead peer is reported as [`State::Exited`]; in
    /// non-blocking mode that happens in
    /// [`consume_events`](Endpoint::consume_events).
    pub fn state(&mut self) -> Result<State> {
        if !self.nonblocking {
            self.drain()?;
        }
        self.peer_state()
    }

    /// Consume pending events without blocking (a non-blocking
    /// [`wait`](Endpoint::wait)): call it when the event descriptor polls
    /// readable, then retry the operations that would have blocked.
    pub fn consume_events(&mut self) -> Result<()> {
        if let Some(t) = self.blocked_at.take() {
            self.spin.woke_after(t.elapsed());
        }
        self.drain()
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

    /// The peer's state, for a write. A blocking writer that never has to
    /// wait would otherwise never consume events, and (on the unix backend,
    /// where a death arrives as an event) write into a dead peer's ring
    /// until it fills: so in blocking mode, events are consumed first when
    /// the last time is [`DEATH_CHECK_MS`] ago — a clock read (no system
    /// call) per write, a drain every 200 ms. In non-blocking mode the
    /// descriptor polls readable on a death and the caller consumes.
    fn writer_peer_state(&mut self) -> Result<State> {
        if !self.nonblocking && coarse_ms().wrapping_sub(self.drained_at) >= DEATH_CHECK_MS {
            self.drain()?;
        }
        self.peer_state()
    }

    fn peer_state(&self) -> Result<State> {
        let state = self.live()?.ch.peer_state()?;
        if self.peer_gone {
            return Ok(State::Exited);
        }
        Ok(match state {
            LiveState::Waiting => State::Waiting,
            LiveState::Connected => State::Connected,
            LiveState::Exited => State::Exited,
        })
    }

    /// Consume pending events without blocking; a vanished peer is marked
    /// exited in the page (what Xen's unmap-notify does).
    fn drain(&mut self) -> Result<()> {
        let ev = self.live_mut()?.event.drain()?;
        self.absorb(ev)
    }

    /// Note what consuming events found (a vanished peer is marked exited
    /// in the page).
    fn absorb(&mut self, ev: crate::backend::Events) -> Result<()> {
        self.drained_at = coarse_ms();
        let role = self.role;
        let live = self.live_mut()?;
        // Only a channel that runs the barrier itself is registered to
        // receive the peer's (see `arm_barrier`).
        if ev.peer_barrier && live.ch.arm_barrier().is_some() {
            live.ch.set_fences(Fences::PeerBarrier);
        }
        if ev.peer_gone {
            let page = live.ch.page();
            let offset = role.peer().live_offset();
            // A peer that closed marked itself exited before it went.
            let vanished =
                page.load_u8(offset, core::sync::atomic::Ordering::Acquire) != LIVE_EXITED;
            page.store_u8(offset, LIVE_EXITED, core::sync::atomic::Ordering::Release);
            self.vanished |= vanished;
            self.peer_gone = true;
        }
        Ok(())
    }

    /// Block until the event channel fires (or `timeout` passes), then
    /// consume its events. Returns false on timeout.
    pub fn wait_timeout(&mut self, timeout: Option<Duration>) -> Result<bool> {
        if timeout.is_none() {
            // Waiting and consuming in one system call where the backend can.
            let ev = self.live_mut()?.event.wait()?;
            self.absorb(ev)?;
            return Ok(true);
        }
        let fd = self.live()?.event.fd();
        let fired = poll_fd(fd, timeout)?;
        self.drain()?;
        Ok(fired)
    }

    /// Block until the event channel fires, then consume its events
    /// (`libxenvchan_wait`).
    pub fn wait(&mut self) -> Result<()> {
        self.wait_timeout(None).map(|_| ())
    }

    /// Server: wait until the client connected (or, if the client came and
    /// went, closed), for up to `timeout`. Returns the state reached.
    pub fn accept(&mut self, timeout: Option<Duration>) -> Result<State> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let st = self.state()?;
            if st != State::Waiting {
                return Ok(st);
            }
            if self.nonblocking {
                return Err(io::Error::from(io::ErrorKind::WouldBlock).into());
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left == Some(Duration::ZERO) {
                return Err(Error::Timeout(Role::Server));
            }
            self.wait_timeout(left)?;
        }
    }

    fn signal(&mut self, t: Transfer) -> Result<usize> {
        if t.notify {
            self.live_mut()?.event.notify()?;
        }
        Ok(t.bytes)
    }

    /// Wait until `ready()` holds, or the peer exits. Spins first, then arms
    /// a notification with `arm()` (which re-checks) and sleeps.
    fn wait_until(
        &mut self,
        ready: impl Fn(&Channel<RawPage, RawRing>) -> Result<bool>,
        arm: impl Fn(&Channel<RawPage, RawRing>) -> Result<bool>,
    ) -> Result<()> {
        let mut started = None;
        if !self.nonblocking || self.nonblocking_spin {
            let Some(live) = &self.live else {
                return Err(Error::Closed);
            };
            let ch = &live.ch;
            let exited = || matches!(ch.peer_state(), Ok(LiveState::Exited) | Err(_));
            match self.spin.spin(|| ready(ch).unwrap_or(true) || exited()) {
                Ok(()) => return Ok(()),
                Err(began) => started = Some(began),
            }
        }
        let started = started.unwrap_or_else(Instant::now);
        if arm(&self.live()?.ch)? || self.peer_state()? == State::Exited {
            return Ok(());
        }
        if self.nonblocking {
            if self.nonblocking_spin {
                self.blocked_at = Some(started);
            }
            return Err(io::Error::from(io::ErrorKind::WouldBlock).into());
        }
        self.wait()?;
        // Had a longer spin caught this? (It ends the trap where both sides
        // sleep, each wake-up outlasts the budget, and the budget shrinks.)
        self.spin.woke_after(started.elapsed());
        Ok(())
    }

    /// Stream read: up to `buf.len()` bytes; `Ok(0)` is end-of-stream (the
    /// peer closed and everything it wrote has been read).
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            self.live()?;
            return Ok(0);
        }
        loop {
            let t = self.live_mut()?.ch.read(buf)?;
            if t.bytes > 0 {
                return self.signal(t);
            }
            if self.peer_state()? == State::Exited {
                // Everything written before the close is visible now.
                let t = self.live_mut()?.ch.read(buf)?;
                return self.signal(t);
            }
            self.wait_until(
                |c| Ok(c.data_ready()? > 0),
                |c| Ok(c.data_ready_or_arm(1)? > 0),
            )?;
        }
    }

    /// Stream write: at least one byte of `buf` (blocking mode waits for
    /// space), at most all of it. Fails with [`Error::Closed`] once the peer
    /// is gone.
    pub fn write(&mut self, buf: &[u8]) -> Result<usize> {
        loop {
            if self.writer_peer_state()? == State::Exited {
                return Err(Error::Closed);
            }
            if buf.is_empty() {
                return Ok(0);
            }
            let t = self.live_mut()?.ch.write(buf)?;
            if t.bytes > 0 {
                return self.signal(t);
            }
            self.wait_until(
                |c| Ok(c.buffer_space()? > 0),
                |c| Ok(c.buffer_space_or_arm(1)? > 0),
            )?;
        }
    }

    /// Zero-copy write from a file descriptor: one `read(2)` from `fd`
    /// straight into the write ring's free span (no intermediate buffer),
    /// then one publication. `Some(n)`: `n > 0` bytes read and published,
    /// `Some(0)`: `fd` is at end-of-file, `None`: `fd` is non-blocking and
    /// has nothing now. Blocking mode waits for room in the ring first;
    /// non-blocking mode answers `WouldBlock` when the ring is full.
    /// [`Error::Closed`] once the peer is gone. It waits until half the
    /// ring is free (a low-water mark), so that each `read(2)` moves a
    /// large run rather than whatever the reader just released.
    pub fn write_from_fd(&mut self, fd: RawFd) -> Result<Option<usize>> {
        let want = (self.write_ring_size()? / 2).max(1);
        loop {
            if self.writer_peer_state()? == State::Exited {
                return Err(Error::Closed);
            }
            let ch = &self.live()?.ch;
            let span = ch.free_span()?;
            if span.len > 0 && ch.buffer_space()? >= want {
                let base = ch.write_ring().as_ptr();
                // SAFETY: [offset, offset + len) is the free span of our
                // write ring, within its mapping (free_span bounds it by the
                // ring's size); the kernel writes into it directly, and no
                // Rust reference to that shared memory is ever made.
                let n = unsafe { libc::read(fd, base.add(span.offset).cast(), span.len) };
                if n < 0 {
                    let e = io::Error::last_os_error();
                    return match e.kind() {
                        io::ErrorKind::WouldBlock => Ok(None),
                        io::ErrorKind::Interrupted => continue,
                        _ => Err(e.into()),
                    };
                }
                let t = self.live_mut()?.ch.produce(n as usize)?;
                return self.signal(t).map(Some);
            }
            self.wait_until(
                |c| Ok(c.buffer_space()? >= want),
                |c| Ok(c.buffer_space_or_arm(want)? >= want),
            )?;
        }
    }

    /// Write all of `buf`.
    pub fn write_all(&mut self, mut buf: &[u8]) -> Result<()> {
        while !buf.is_empty() {
            let n = self.write(buf)?;
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Packet send: all of `buf` or nothing. Blocking mode waits for room;
    /// a packet larger than the ring is refused.
    pub fn send(&mut self, buf: &[u8]) -> Result<usize> {
        let want = buf.len();
        loop {
            if self.writer_peer_state()? == State::Exited {
                return Err(Error::Closed);
            }
            let t = self.live_mut()?.ch.send(buf)?;
            if t.bytes > 0 || want == 0 {
                return self.signal(t);
            }
            self.wait_until(
                |c| Ok(c.buffer_space()? >= want),
                |c| Ok(c.buffer_space_or_arm(want)? >= want),
            )?;
        }
    }

    /// Wait until the peer has read every byte we wrote — what `SO_LINGER`
    /// does before a socket's close. Useful before [`close`](Endpoint::close)
    /// when the peer (as some of Xen's tools do) stops reading as soon as
    /// it sees us closed. [`Error::Closed`] if the peer closed or died with
    /// some of it unread. Blocking mode waits; non-blocking mode answers
    /// `WouldBlock` (retry after [`consume_events`](Endpoint::consume_events)).
    /// `io::Write::flush` does not wait: it is a no-op.
    pub fn linger(&mut self) -> Result<()> {
        let all = self.write_ring_size()?;
        loop {
            if self.buffer_space()? >= all {
                return Ok(());
            }
            if self.writer_peer_state()? == State::Exited {
                return Err(Error::Closed);
            }
            self.wait_until(
                |c| Ok(c.buffer_space()? >= all),
                |c| Ok(c.buffer_space_or_arm(all)? >= all),
            )?;
        }
    }

    /// Packet receive: exactly `buf.len()` bytes or nothing. `Ok(0)` for a
    /// non-empty buffer means end-of-stream.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize> {
        let want = buf.len();
        loop {
            let t = self.live_mut()?.ch.recv(buf)?;
            if t.bytes > 0 || want == 0 {
                return self.signal(t);
            }
            if self.peer_state()? == State::Exited {
                let t = self.live_mut()?.ch.recv(buf)?;
                if t.bytes > 0 {
                    return self.signal(t);
                }
                return match self.data_ready()? {
                    0 => Ok(0),
                    _ => Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "peer closed in the middle of a packet",
                    )
                    .into()),
                };
            }
            self.wait_until(
                |c| Ok(c.data_ready()? >= want),
                |c| Ok(c.data_ready_or_arm(want)? >= want),
            )?;
        }
    }

    /// Zero-copy read, first half: wait (in blocking mode) for readable
    /// bytes and return the contiguous run of them in the read ring. An
    /// empty span means end-of-stream. Release them with
    /// [`consume`](Endpoint::consume).
    pub fn peek(&mut self) -> Result<Span> {
        loop {
            let span = self.live()?.ch.peek()?;
            if span.len > 0 {
                return Ok(span);
            }
            if self.peer_state()? == State::Exited {
                return Ok(self.live()?.ch.peek()?);
            }
            self.wait_until(
                |c| Ok(c.data_ready()? > 0),
                |c| Ok(c.data_ready_or_arm(1)? > 0),
            )?;
        }
    }

    /// Zero-copy read, second half: release `n` bytes seen with `peek`.
    pub fn consume(&mut self, n: usize) -> Result<()> {
        let t = self.live_mut()?.ch.consume(n)?;
        self.signal(t).map(|_| ())
    }

    /// Base address of the ring we read from (for zero-copy views built on
    /// [`peek`](Endpoint::peek)'s offsets), and its size.
    pub fn read_ring(&self) -> Result<(*const u8, usize)> {
        let ch = &self.live()?.ch;
        Ok((ch.read_ring().as_ptr(), ch.read_size()))
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

    /// [`close`](Endpoint::close), except that the shared memory stays
    /// mapped until the returned [`RetainedMemory`] is dropped: for bindings
    /// that lend views into the read ring ([`read_ring`](Endpoint::read_ring))
    /// to a garbage-collected language, where a view may outlive the
    /// endpoint. The peer sees the close at once, as with `close`. `None`
    /// if the endpoint was already closed.
    pub fn close_retaining_memory(&mut self) -> (Option<RetainedMemory>, Result<()>) {
        let closed = self.close_keeping_memory();
        self.backend.sweep();
        closed
    }

    fn close_keeping_memory(&mut self) -> (Option<RetainedMemory>, Result<()>) {
        let Some(live) = self.live.take() else {
            return (None, Ok(()));
        };
        let Live {
            ch,
            mut event,
            _rings,
            _page,
        } = live;
        ch.close();
        let notified = event.notify();
        drop(event);
        let unpublished = match self.path.take() {
            Some(p) => self.backend.unpublish(&p),
            None => Ok(()),
        };
        let memory = RetainedMemory { _rings, _page };
        (Some(memory), notified.map_err(Error::from).and(unpublished))
    }
}

/// The memory of an endpoint closed with
/// [`Endpoint::close_retaining_memory`]: the shared page and the rings stay
/// mapped (or shared) until this is dropped.
pub struct RetainedMemory {
    // Ring regions are dropped (unmapped/unshared) before the page.
    _rings: Vec<Box<dyn Region>>,
    _page: Box<dyn Region>,
}

impl std::fmt::Debug for RetainedMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetainedMemory").finish_non_exhaustive()
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

impl io::Read for Endpoint {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Endpoint::read(self, buf).map_err(Into::into)
    }
}

impl io::Write for Endpoint {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Endpoint::write(self, buf).map_err(Into::into)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
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
