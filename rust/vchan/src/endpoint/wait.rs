//! Waiting: the peer's state, consuming events, sleeping until the ring
//! is ready.

use std::io;
use std::time::{Duration, Instant};

use vchan_core::{Channel, Fences, LiveState, RawPage, RawRing, Role};

use super::{Endpoint, State};
use crate::backend::{poll_fd, Events};
use crate::error::{Error, Result};

/// In blocking mode a writer that never has to wait consumes events at
/// least this often (ms), to learn of a dead peer (see
/// [`Endpoint::writer_peer_state`]).
const DEATH_CHECK_MS: u64 = 200;

/// A monotonic clock in milliseconds, as cheap as a clock gets (the
/// kernel's coarse clock, read in user space through the vDSO).
pub(super) fn coarse_ms() -> u64 {
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

impl Endpoint {
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
        self.drain()
    }

    /// The peer's state, for a write. A blocking writer that never has to
    /// wait would otherwise never consume events, and (on the unix backend,
    /// where a death arrives as an event) write into a dead peer's ring
    /// until it fills: so in blocking mode, events are consumed first when
    /// the last time is [`DEATH_CHECK_MS`] ago (see
    /// [`death_check_due`](Endpoint::death_check_due)). In non-blocking
    /// mode the descriptor polls readable on a death and the caller
    /// consumes.
    #[inline]
    pub(super) fn writer_peer_state(&mut self) -> Result<State> {
        if !self.nonblocking && self.death_check_due()? {
            self.drain()?;
        }
        self.peer_state()
    }

    /// Is a blocking writer's death check due? Not while the peer keeps
    /// reading: its consumer index moved since the last write looked, so
    /// it was alive since then (a ping-pong, or a stream the peer keeps up
    /// with, reads no clock at all). Otherwise when events were last
    /// consumed [`DEATH_CHECK_MS`] ago: a clock read (no system call), and
    /// a drain every 200 ms. A peer that dies is seen at most one write
    /// later than by a clock read per write; a peer that fakes progress
    /// delays only the discovery of its own death.
    #[inline]
    fn death_check_due(&mut self) -> Result<bool> {
        let cons = self.live()?.ch.peer_read_progress();
        if cons != self.peer_cons_seen {
            self.peer_cons_seen = cons;
            return Ok(false);
        }
        Ok(coarse_ms().wrapping_sub(self.drained_at) >= DEATH_CHECK_MS)
    }

    #[inline]
    pub(super) fn peer_state(&self) -> Result<State> {
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
    fn absorb(&mut self, ev: Events) -> Result<()> {
        self.drained_at = coarse_ms();
        let live = self.live_mut()?;
        // Only a channel that runs the barrier itself is registered to
        // receive the peer's (see `arm_barrier`).
        if ev.peer_barrier && live.ch.arm_barrier().is_some() {
            live.ch.set_fences(Fences::PeerBarrier);
        }
        if ev.peer_gone {
            // A peer that closed marked itself exited before it went.
            self.vanished |= live.ch.mark_peer_gone();
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
            if st == State::Connected {
                // The client connected its event channel before it wrote
                // the page: accept that connection now (the unix backend),
                // so that `hangup_fd` is there from the start.
                self.drain()?;
            }
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

    /// Wait until `ready()` holds, or the peer exits. Spins first, then arms
    /// a notification with `arm()` (which re-checks) and sleeps.
    pub(super) fn wait_until(
        &mut self,
        ready: impl Fn(&Channel<RawPage, RawRing>) -> Result<bool>,
        arm: impl Fn(&Channel<RawPage, RawRing>) -> Result<bool>,
    ) -> Result<()> {
        let mut started = None;
        if !self.nonblocking {
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
            return Err(io::Error::from(io::ErrorKind::WouldBlock).into());
        }
        self.wait()?;
        // Had a longer spin caught this? (It ends the trap where both sides
        // sleep, each wake-up outlasts the budget, and the budget shrinks.)
        self.spin.woke_after(started.elapsed());
        Ok(())
    }
}
