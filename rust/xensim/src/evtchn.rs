//! `libxenevtchn`: event channels as unix-backend ports.
//!
//! A handle may bind several ports. Its descriptor (`xenevtchn_fd`) is an
//! epoll instance over the ports' own descriptors plus an eventfd that is
//! kept readable while ports are queued but not yet returned by
//! `xenevtchn_pending`. `xenevtchn_pending` blocks, as a read of Xen's
//! `/dev/xen/evtchn` does, unless the caller made that descriptor
//! non-blocking (then -1 with `EAGAIN`).
//!
//! Masking follows Linux's evtchn driver ([`Delivery`]): an event queues
//! its port and masks it; events while the port is masked are latched,
//! and `xenevtchn_unmask` queues a latched port again. That re-delivery
//! is what callers such as `vchan-socket-proxy` rely on: it consumes one
//! event in `libxenvchan_wait` and then `select`s on the descriptor
//! before it looks at the ring, so an event merged into the one it
//! consumed would be lost for good (issue 10: the proxy slept on a full
//! ring whose writer had cleared the notify bit and signalled).

use std::ffi::{c_int, c_uint, c_void};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use vchan::backend::unix::evtchn::UnixEvent;
use vchan::backend::unix::RootLock;
use vchan::backend::EventChannel;

pub use crate::delivery::Delivery;
use crate::{gnt, io_errno, own_domid, set_errno, with, Global, PortEnt};

/// An open event channel handle (opaque to C).
#[derive(Debug)]
pub struct XenevtchnHandle {
    id: u64,
    epoll: OwnedFd,
    efd: OwnedFd,
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn epoll_ctl(ep: RawFd, op: c_int, fd: RawFd) -> Result<(), i32> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: fd as u64,
    };
    // SAFETY: both descriptors are valid; `ev` lives across the call.
    if unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) } < 0 {
        return Err(last_errno());
    }
    Ok(())
}

fn epoll_add(ep: RawFd, fd: RawFd) -> Result<(), i32> {
    epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd)
}

fn open_handle() -> Result<XenevtchnHandle, i32> {
    // SAFETY: plain epoll_create1(2); the result is checked.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(last_errno());
    }
    // SAFETY: ep is a fresh descriptor we exclusively own.
    let epoll = unsafe { OwnedFd::from_raw_fd(ep) };
    // SAFETY: plain eventfd(2); the result is checked.
    let e = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if e < 0 {
        return Err(last_errno());
    }
    // SAFETY: e is a fresh descriptor we exclusively own.
    let efd = unsafe { OwnedFd::from_raw_fd(e) };
    epoll_add(epoll.as_raw_fd(), efd.as_raw_fd())?;
    Ok(XenevtchnHandle {
        id: crate::new_id(),
        epoll,
        efd,
    })
}

/// The handle behind a C pointer, or `EINVAL`.
///
/// # Safety
/// `xce` is null or a pointer returned by `xenevtchn_open` and not closed.
unsafe fn handle<'a>(xce: *mut XenevtchnHandle) -> Result<&'a XenevtchnHandle, i32> {
    // SAFETY: per this function's contract.
    unsafe { xce.as_ref() }.ok_or(libc::EINVAL)
}

fn fail(e: i32) -> c_int {
    set_errno(e);
    -1
}

/// Xen's `xenevtchn_open` (`<xenevtchn.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xenevtchn_open` requires.
#[no_mangle]
pub unsafe extern "C" fn xenevtchn_open(
    _logger: *mut c_void,
    _flags: c_uint,
) -> *mut XenevtchnHandle {
    match open_handle() {
        Ok(h) => Box::into_raw(Box::new(h)),
        Err(e) => {
            set_errno(e);
            std::ptr::null_mut()
        }
    }
}

/// Xen's `xenevtchn_close` (`<xenevtchn.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xenevtchn_close` requires.
#[no_mangle]
pub unsafe extern "C" fn xenevtchn_close(xce: *mut XenevtchnHandle) -> c_int {
    if xce.is_null() {
        return 0;
    }
    // SAFETY: a pointer from xenevtchn_open, closed once (C contract).
    let h = unsafe { Box::from_raw(xce) };
    let gone: Vec<PortEnt> = with(|g| {
        let ports: Vec<u32> = g
            .ports
            .iter()
            .filter(|(_, p)| p.handle == h.id)
            .map(|(k, _)| *k)
            .collect();
        ports.iter().filter_map(|p| g.ports.remove(p)).collect()
    });
    // Closing the sockets is what the peer sees as our close.
    drop(gone);
    drop(h);
    0
}

/// Xen's `xenevtchn_fd` (`<xenevtchn.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xenevtchn_fd` requires.
#[no_mangle]
pub unsafe extern "C" fn xenevtchn_fd(xce: *mut XenevtchnHandle) -> c_int {
    // SAFETY: C contract: a handle from xenevtchn_open.
    match unsafe { handle(xce) } {
        Ok(h) => h.epoll.as_raw_fd(),
        Err(e) => fail(e),
    }
}

fn bind(
    h: &XenevtchnHandle,
    make: impl FnOnce(&std::path::Path, u32) -> std::io::Result<UnixEvent>,
) -> c_int {
    let res = with(|g| -> Result<u32, i32> {
        let b = g.backend()?;
        let own = own_domid()?;
        let ev = {
            let _lock = RootLock::acquire(b.root()).map_err(|e| io_errno(&e))?;
            make(b.root(), own).map_err(|e| io_errno(&e))?
        };
        epoll_add(h.epoll.as_raw_fd(), ev.fd())?;
        let port = ev.port();
        g.ports.insert(
            port,
            PortEnt {
                handle: h.id,
                ev,
                delivery: Delivery::default(),
                unmap_done: false,
            },
        );
        Ok(port)
    });
    match res {
        Ok(p) => p as c_int,
        Err(e) => fail(e),
    }
}

/// Xen's `xenevtchn_bind_unbound_port` (`<xenevtchn.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xenevtchn_bind_unbound_port` requires.
#[no_mangle]
pub unsafe extern "C" fn xenevtchn_bind_unbound_port(
    xce: *mut XenevtchnHandle,
    _domid: u32,
) -> c_int {
    // SAFETY: C contract: a handle from xenevtchn_open.
    match unsafe { handle(xce) } {
        Ok(h) => bind(h, UnixEvent::bind_unbound),
        Err(e) => fail(e),
    }
}

/// Xen's `xenevtchn_bind_interdomain` (`<xenevtchn.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xenevtchn_bind_interdomain` requires.
#[no_mangle]
pub unsafe extern "C" fn xenevtchn_bind_interdomain(
    xce: *mut XenevtchnHandle,
    domid: u32,
    remote_port: u32,
) -> c_int {
    // SAFETY: C contract: a handle from xenevtchn_open.
    match unsafe { handle(xce) } {
        Ok(h) => bind(h, |root, own| {
            UnixEvent::bind_interdomain(root, own, domid, remote_port)
        }),
        Err(e) => fail(e),
    }
}

/// Xen's `xenevtchn_unbind` (`<xenevtchn.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xenevtchn_unbind` requires.
#[no_mangle]
pub unsafe extern "C" fn xenevtchn_unbind(xce: *mut XenevtchnHandle, port: u32) -> c_int {
    // SAFETY: C contract: a handle from xenevtchn_open.
    let h = match unsafe { handle(xce) } {
        Ok(h) => h,
        Err(e) => return fail(e),
    };
    let removed = with(|g| match g.ports.get(&port) {
        Some(p) if p.handle == h.id => g.ports.remove(&port),
        _ => None,
    });
    match removed {
        Some(p) => {
            drop(p);
            0
        }
        None => fail(libc::EINVAL),
    }
}

/// Xen's `xenevtchn_notify` (`<xenevtchn.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xenevtchn_notify` requires.
#[no_mangle]
pub unsafe extern "C" fn xenevtchn_notify(xce: *mut XenevtchnHandle, port: u32) -> c_int {
    // SAFETY: C contract: a handle from xenevtchn_open.
    let h = match unsafe { handle(xce) } {
        Ok(h) => h,
        Err(e) => return fail(e),
    };
    let res = with(|g| match g.ports.get_mut(&port) {
        Some(p) if p.handle == h.id => p.ev.notify().map_err(|e| io_errno(&e)),
        _ => Err(libc::EINVAL),
    });
    match res {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

/// Xen's `xenevtchn_unmask` (`<xenevtchn.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xenevtchn_unmask` requires.
#[no_mangle]
pub unsafe extern "C" fn xenevtchn_unmask(xce: *mut XenevtchnHandle, port: u32) -> c_int {
    // SAFETY: C contract: a handle from xenevtchn_open.
    let h = match unsafe { handle(xce) } {
        Ok(h) => h,
        Err(e) => return fail(e),
    };
    // A masked port's socket is out of the handle's epoll set, so that the
    // handle's descriptor is not readable for events that only latch (as
    // under Xen); unmasking puts it back, and what arrived meanwhile then
    // makes the descriptor readable.
    let requeued = with(|g| match g.ports.get_mut(&port) {
        Some(p) if p.handle == h.id => match p.delivery.unmask() {
            None => Ok(false),
            Some(requeued) => {
                epoll_add(h.epoll.as_raw_fd(), p.ev.fd())?;
                Ok(requeued)
            }
        },
        _ => Err(libc::EINVAL),
    });
    match requeued {
        Ok(true) => {
            wake(h);
            0
        }
        Ok(false) => 0,
        Err(e) => fail(e),
    }
}

/// Make the handle's descriptor readable (a port is queued).
fn wake(h: &XenevtchnHandle) {
    let v: u64 = 1;
    // SAFETY: writing 8 bytes from `v` to our non-blocking eventfd; it can
    // only fail once the counter is near overflow, when it is readable.
    unsafe { libc::write(h.efd.as_raw_fd(), (&v as *const u64).cast(), 8) };
}

/// Does `fd` poll readable right now?
fn readable(fd: RawFd) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    let rc = unsafe { libc::poll(&mut pfd, 1, 0) };
    rc > 0 && pfd.revents != 0
}

/// Drain the handle's ports; carry out the unmap-notify of peers found
/// gone; return (and consume) one pending port, if any.
fn scan(g: &mut Global, h: &XenevtchnHandle) -> Result<Option<u32>, i32> {
    let mut ports: Vec<u32> = g
        .ports
        .iter()
        .filter(|(_, p)| p.handle == h.id)
        .map(|(k, _)| *k)
        .collect();
    ports.sort_unstable();
    let mut unmaps = Vec::new();
    for port in &ports {
        let Some(ent) = g.ports.get_mut(port) else {
            continue;
        };
        // Traffic that is no event (the peer's unmap-notify request, a
        // connection) also makes the descriptor readable; C callers then
        // expect `xenevtchn_pending` not to block: report it as a
        // (spurious) event, which libxenvchan tolerates.
        let ready = readable(ent.ev.fd());
        let ev = ent.ev.drain().map_err(|e| io_errno(&e))?;
        let mut arrived = ev.notifies.max(u32::from(ready));
        if ev.peer_gone && !ent.unmap_done {
            ent.unmap_done = true;
            arrived = arrived.max(1);
            if let Some(u) = ent.ev.peer_unmap() {
                unmaps.push(u);
            }
        }
        ent.delivery.arrive(arrived);
    }
    for u in unmaps {
        gnt::clear_notify_byte(g, u.owner, u.gref, u.offset);
    }
    let mut pick = None;
    let mut more = false;
    for port in &ports {
        if let Some(ent) = g.ports.get_mut(port) {
            if ent.delivery.is_queued() {
                if pick.is_none() {
                    ent.delivery.take();
                    epoll_ctl(h.epoll.as_raw_fd(), libc::EPOLL_CTL_DEL, ent.ev.fd())?;
                    pick = Some(*port);
                } else {
                    more = true;
                }
            }
        }
    }
    // Keep the handle's descriptor readable while ports are queued.
    if more {
        wake(h);
    } else {
        let mut v: u64 = 0;
        // SAFETY: reading 8 bytes into `v` from our non-blocking eventfd.
        unsafe { libc::read(h.efd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }
    Ok(pick)
}

/// Xen's `xenevtchn_pending` (`<xenevtchn.h>`), simulated over the unix backend.
///
/// # Safety
/// The pointer arguments must be as Xen's C API for `xenevtchn_pending` requires.
#[no_mangle]
pub unsafe extern "C" fn xenevtchn_pending(xce: *mut XenevtchnHandle) -> c_int {
    // SAFETY: C contract: a handle from xenevtchn_open.
    let h = match unsafe { handle(xce) } {
        Ok(h) => h,
        Err(e) => return fail(e),
    };
    loop {
        match with(|g| scan(g, h)) {
            Ok(Some(p)) => return p as c_int,
            Ok(None) => {}
            Err(e) => return fail(e),
        }
        let fd = h.epoll.as_raw_fd();
        // SAFETY: F_GETFL on our own descriptor.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags >= 0 && flags & libc::O_NONBLOCK != 0 {
            return fail(libc::EAGAIN);
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, -1) };
        if rc < 0 {
            let e = last_errno();
            if e != libc::EINTR {
                return fail(e);
            }
        }
    }
}
