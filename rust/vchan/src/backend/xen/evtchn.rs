//! Event channels through `libxenevtchn`: one handle (one open of
//! `/dev/xen/evtchn`) per channel, so that its descriptor polls readable
//! for this channel only. A peer domain that may be destroyed is watched
//! too (`death.rs`), by a thread that waits for the watch to fire: when
//! the peer's domain is gone, it signals a loopback channel (two ports of
//! our own domain, bound on the same handle), so the handle's descriptor
//! polls readable and the next drain reports the peer gone.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::death::DomainWatch;
use super::ffi::{lib, open_error, EvtchnHandle, Lib};
use crate::backend::{EventChannel, Events};
use crate::error::{Error, Result};
use crate::port::DomId;

/// Most events consumed by one [`EventChannel::drain`]: a peer signalling
/// without pause must not keep us in the loop.
const MAX_DRAIN: usize = 4096;

/// One bound event channel port.
#[derive(Debug)]
pub(crate) struct XenEvent {
    lib: &'static Lib,
    h: *mut EvtchnHandle,
    port: u32,
    fd: RawFd,
    /// The peer domain's death watch, when it has one.
    death: Option<DeathWatch>,
}

/// The thread that waits for a peer domain's death, and how to stop it.
#[derive(Debug)]
struct DeathWatch {
    thread: Option<JoinHandle<()>>,
    /// Written to stop the thread.
    stop: OwnedFd,
    /// Set by the thread when the peer's domain is gone.
    gone: Arc<AtomicBool>,
    /// The loopback ports: the thread signals `send`, `recv` is pending.
    recv: u32,
    send: u32,
}

/// The handle, for the thread (see `DeathWatch`): it only signals a port on
/// it, and is joined before the handle closes.
struct SendHandle(*mut EvtchnHandle);
// SAFETY: xenevtchn_notify is an ioctl on the handle's descriptor, safe
// from any thread while the handle is open (the thread is joined before).
unsafe impl Send for SendHandle {}

/// Wait until the watch fires for the peer's death or `stop` is written;
/// on a death, set `gone` and signal port `send` of `h`.
fn watch_thread(
    lib: &'static Lib,
    h: SendHandle,
    send: u32,
    mut watch: DomainWatch,
    stop: RawFd,
    gone: Arc<AtomicBool>,
) {
    loop {
        let mut fds = [
            libc::pollfd {
                fd: watch.fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: stop,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfd entries; both descriptors stay open
        // until this thread is joined.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if fds[1].revents != 0 {
            return;
        }
        match watch.peer_gone() {
            Ok(false) => {}
            Ok(true) => {
                gone.store(true, Ordering::Release);
                // SAFETY: the handle is open (joined before it closes) and
                // `send` bound on it.
                unsafe { (lib.xenevtchn_notify)(h.0, send) };
                return;
            }
            // xenstore failed us: no more watching (the unmap-notify
            // still tells a peer process's death).
            Err(_) => return,
        }
    }
}

// SAFETY: the handle is used by its one owner (`&mut self` for every call
// that changes state); libxenevtchn keeps no thread-affine state.
unsafe impl Send for XenEvent {}

/// Open a handle and bind it with `bind`; unmask the port and make the
/// descriptor non-blocking. Everything is released again on failure.
fn open_and_bind(
    what: &str,
    bind: impl FnOnce(&'static Lib, *mut EvtchnHandle) -> libc::c_int,
) -> Result<XenEvent> {
    let lib = lib()?;
    // SAFETY: NULL logger (log to stderr) and no flags are valid.
    let h = unsafe { (lib.xenevtchn_open)(std::ptr::null_mut(), 0) };
    if h.is_null() {
        return Err(open_error("xenevtchn_open", io::Error::last_os_error()));
    }
    let context = |e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
    let Ok(port) = u32::try_from(bind(lib, h)) else {
        let e = io::Error::last_os_error();
        // SAFETY: h is open and bound to nothing; closed once, here.
        unsafe { (lib.xenevtchn_close)(h) };
        return Err(context(e).into());
    };
    // From here on, dropping `ev` unbinds the port and closes the handle.
    let mut ev = XenEvent {
        lib,
        h,
        port,
        fd: -1,
        death: None,
    };
    // Unmask the fresh port, as libxenvchan does after binding.
    // SAFETY: h is open and port bound on it.
    if unsafe { (lib.xenevtchn_unmask)(h, port) } < 0 {
        return Err(context(io::Error::last_os_error()).into());
    }
    // SAFETY: h is open.
    let fd = unsafe { (lib.xenevtchn_fd)(h) };
    if fd < 0 {
        return Err(context(io::Error::last_os_error()).into());
    }
    // Non-blocking, so that xenevtchn_pending (a read of the device)
    // returns -1/EAGAIN instead of waiting when nothing is pending. The
    // descriptor belongs to this handle alone.
    // SAFETY: fcntl on the handle's open descriptor.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(context(io::Error::last_os_error()).into());
    }
    ev.fd = fd;
    Ok(ev)
}

impl XenEvent {
    /// A fresh port that domain `remote` may bind to.
    pub(crate) fn bind_unbound(remote: DomId, own: DomId) -> Result<XenEvent> {
        let ev = open_and_bind(
            &format!("xenevtchn_bind_unbound_port(domain {remote})"),
            |lib, h| {
                // SAFETY: h is an open handle.
                unsafe { (lib.xenevtchn_bind_unbound_port)(h, remote.get()) }
            },
        )?;
        ev.watching(remote, own)
    }

    /// A port bound to `remote_port` of domain `remote`. Xen refuses
    /// (EINVAL) a remote port that is not waiting for us: the rendezvous
    /// of a server that died or already has its client. That is
    /// `ConnectionRefused`, as the unix backend says for no live server
    /// (a client waiting for a server then waits for a new one).
    pub(crate) fn bind_interdomain(
        remote: DomId,
        remote_port: u32,
        own: DomId,
    ) -> Result<XenEvent> {
        let what = format!("xenevtchn_bind_interdomain(domain {remote}, port {remote_port})");
        let r = open_and_bind(&what, |lib, h| {
            // SAFETY: h is an open handle.
            unsafe { (lib.xenevtchn_bind_interdomain)(h, remote.get(), remote_port) }
        });
        match r {
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::InvalidInput => {
                Err(Error::Io(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!("{e} (no server waits on that port: a stale rendezvous?)"),
                )))
            }
            r => r?.watching(remote, own),
        }
    }

    /// Add the death watch of domain `remote`, if it has one (see the
    /// module's documentation); `own` is this domain.
    fn watching(mut self, remote: DomId, own: DomId) -> Result<XenEvent> {
        let Some(watch) = DomainWatch::open(remote)? else {
            return Ok(self);
        };
        let lib = self.lib;
        let h = self.h;
        let err = |what: &str| -> Error {
            let e = io::Error::last_os_error();
            io::Error::new(e.kind(), format!("{what} (death watch): {e}")).into()
        };
        // SAFETY: h is open.
        let Ok(recv) = u32::try_from(unsafe { (lib.xenevtchn_bind_unbound_port)(h, own.get()) })
        else {
            return Err(err("xenevtchn_bind_unbound_port"));
        };
        // SAFETY: h is open; recv waits for our own domain.
        let send = unsafe { (lib.xenevtchn_bind_interdomain)(h, own.get(), recv) };
        let Ok(send) = u32::try_from(send) else {
            let e = err("xenevtchn_bind_interdomain");
            // SAFETY: recv is bound on h; released once, here.
            unsafe { (lib.xenevtchn_unbind)(h, recv) };
            return Err(e);
        };
        // From here on, dropping `self` releases both ports and the thread.
        // SAFETY: no pointer arguments; a new descriptor or -1.
        let stop = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if stop < 0 {
            let e = err("eventfd");
            // SAFETY: both bound on h; released once, here.
            unsafe {
                (lib.xenevtchn_unbind)(h, send);
                (lib.xenevtchn_unbind)(h, recv);
            }
            return Err(e);
        }
        // SAFETY: stop is a fresh descriptor that nothing else owns.
        let stop = unsafe { OwnedFd::from_raw_fd(stop) };
        let gone = Arc::new(AtomicBool::new(false));
        let (t_gone, t_stop, t_h) = (gone.clone(), stop.as_raw_fd(), SendHandle(h));
        let mut death = DeathWatch {
            thread: None,
            stop,
            gone,
            recv,
            send,
        };
        // SAFETY: h is open and recv bound on it.
        if unsafe { (lib.xenevtchn_unmask)(h, recv) } < 0 {
            let e = err("xenevtchn_unmask");
            self.death = Some(death);
            return Err(e);
        }
        let thread = std::thread::Builder::new()
            .name("vchan-xen-death".into())
            .spawn(move || watch_thread(lib, t_h, send, watch, t_stop, t_gone));
        match thread {
            Ok(t) => death.thread = Some(t),
            Err(e) => {
                self.death = Some(death);
                return Err(e.into());
            }
        }
        self.death = Some(death);
        Ok(self)
    }
}

impl EventChannel for XenEvent {
    fn port(&self) -> u32 {
        self.port
    }

    fn notify(&mut self) -> io::Result<()> {
        // SAFETY: h is open and port bound on it.
        if unsafe { (self.lib.xenevtchn_notify)(self.h, self.port) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn fd(&self) -> RawFd {
        self.fd
    }

    /// Consume pending events without blocking (the descriptor is
    /// non-blocking: `xenevtchn_pending` returns -1/EAGAIN when nothing is
    /// left). Each port read is unmasked again (as `libxenvchan_wait`
    /// does). `peer_gone` is set when the peer's domain is gone (see
    /// `death.rs`); a peer process's death clears its live byte by its
    /// unmap-notify instead.
    fn drain(&mut self) -> io::Result<Events> {
        let mut ev = Events::default();
        for _ in 0..MAX_DRAIN {
            // SAFETY: h is open.
            let p = unsafe { (self.lib.xenevtchn_pending)(self.h) };
            let Ok(p) = u32::try_from(p) else {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => break,
                    _ => return Err(e),
                }
            };
            ev.notifies = ev.notifies.saturating_add(1);
            // SAFETY: h is open; p is a port it reported pending.
            if unsafe { (self.lib.xenevtchn_unmask)(self.h, p) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if let Some(d) = &self.death {
            ev.peer_gone = d.gone.load(Ordering::Acquire);
        }
        Ok(ev)
    }

    /// Nothing to do: the xen backend asks for unmap-notifies when it
    /// shares or maps the page.
    fn set_unmap_notify(&mut self, _owner: DomId, _gref: u32, _offset: u32) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for XenEvent {
    fn drop(&mut self) {
        if let Some(mut d) = self.death.take() {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from `one` to the open eventfd.
            unsafe { libc::write(d.stop.as_raw_fd(), (&one as *const u64).cast(), 8) };
            if let Some(t) = d.thread.take() {
                let _ = t.join();
            }
            // SAFETY: both bound on h (the thread is gone); released once.
            unsafe {
                (self.lib.xenevtchn_unbind)(self.h, d.send);
                (self.lib.xenevtchn_unbind)(self.h, d.recv);
            }
        }
        // SAFETY: h is open and port bound on it; both released once, here.
        unsafe {
            (self.lib.xenevtchn_unbind)(self.h, self.port);
            (self.lib.xenevtchn_close)(self.h);
        }
    }
}
