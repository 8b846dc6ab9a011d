//! Setting an endpoint up: a server shares and publishes, a client looks
//! up and maps.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vchan_core::layout::{CLI_LIVE, SRV_LIVE};
use vchan_core::mem::SharedPage;
use vchan_core::setup::{self, External};
use vchan_core::{Channel, Fences, LiveState, Orders, RawPage, RawRing, Role};

use super::wait::coarse_ms;
use super::{Endpoint, Live};
use crate::backend::choice::default_backend;
use crate::backend::{Backend, Region, Rendezvous};
use crate::error::{Error, Result};
use crate::port::{rendezvous_path, DomId, Port};
use crate::spin::Spin;

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
    /// ([`default_backend`]). Returns at once; the client may
    /// connect later ([`accept`](Endpoint::accept) waits for it).
    pub fn listen(
        client: DomId,
        port: &Port,
        read_min: usize,
        write_min: usize,
    ) -> Result<Endpoint> {
        let backend = default_backend()?;
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
        let backend = default_backend()?;
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
        // A server that exited without unpublishing (it was killed) left a
        // stale rendezvous, which a restarted server's may be read with:
        // refused, so that the caller waits for the live one. Its control
        // page may still map (Xen frees a grant once no one maps it) while
        // its rings no longer do: a ring that will not map is refused too
        // when the server's live byte says it exited.
        let stale = || {
            Error::Io(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "the rendezvous's server has exited (a stale rendezvous)",
            ))
        };
        let exited = || {
            LiveState::from_byte(raw.load_u8(SRV_LIVE, Ordering::Acquire))
                .is_ok_and(|s| s == LiveState::Exited)
        };
        let map_ring = |refs: &[u32], writable: bool| -> Result<Option<Box<dyn Region>>> {
            if refs.is_empty() {
                return Ok(None);
            }
            match backend.map(server, refs, writable, None) {
                Ok(region) => Ok(Some(region)),
                Err(_) if exited() => Err(stale()),
                Err(e) => Err(e),
            }
        };
        let left = map_ring(&left_refs, true)?;
        let right = map_ring(&right_refs, false)?;
        // SAFETY: the page and ring regions live in `Live` with the channel
        // and are dropped after it.
        let mut ch =
            unsafe { setup::client_channel(raw, orders, external(&left), external(&right))? };
        if ch.peer_state()? == LiveState::Exited {
            return Err(stale());
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
            backend,
            peer,
            path,
            nonblocking: false,
            spin: Spin::new(),
            vanished: false,
            peer_gone: false,
            drained_at: coarse_ms(),
            peer_cons_seen: live.ch.peer_read_progress(),
            live: Some(live),
        }
    }
}
