//! Event channels through `libxenevtchn`: one handle (one open of
//! `/dev/xen/evtchn`) per channel, so that its descriptor polls readable
//! for this channel only.

use std::io;
use std::os::fd::RawFd;

use super::ffi::{lib, EvtchnHandle, Lib};
use super::open_error;
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
    pub(crate) fn bind_unbound(remote: DomId) -> Result<XenEvent> {
        open_and_bind(
            &format!("xenevtchn_bind_unbound_port(domain {remote})"),
            |lib, h| {
                // SAFETY: h is an open handle.
                unsafe { (lib.xenevtchn_bind_unbound_port)(h, remote.get()) }
            },
        )
    }

    /// A port bound to `remote_port` of domain `remote`. Xen refuses
    /// (EINVAL) a remote port that is not waiting for us: the rendezvous
    /// of a server that died or already has its client. That is
    /// `ConnectionRefused`, as the unix backend says for no live server
    /// (a client waiting for a server then waits for a new one).
    pub(crate) fn bind_interdomain(remote: DomId, remote_port: u32) -> Result<XenEvent> {
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
            r => r,
        }
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
    /// does). `peer_gone` stays false: under Xen the peer's live byte is
    /// cleared by its unmap-notify.
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
        // SAFETY: h is open and port bound on it; both released once, here.
        unsafe {
            (self.lib.xenevtchn_unbind)(self.h, self.port);
            (self.lib.xenevtchn_close)(self.h);
        }
    }
}
