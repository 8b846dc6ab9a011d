//! A peer domain's death, seen in xenstore.
//!
//! A process that dies leaves an unmap-notify, but a domain that is
//! destroyed (`xl destroy`) does not: its kernel never runs again, and our
//! peer's live byte stays set. The toolstack removes the domain's directory
//! `/local/domain/<id>` when it destroys it, so an endpoint watches that
//! directory on its own xenstore connection (a thread waits for it, see
//! `evtchn.rs`). When it fired and the directory is gone (ENOENT; EACCES means that it is there,
//! unreadable), the peer is gone.
//!
//! Not watched: domain 0 (it does not die while the machine runs), a peer
//! whose directory is absent from the start (nothing would tell its death),
//! and any peer when `libxenstore` has no watch functions (xensim's).

use std::ffi::{c_uint, CString};
use std::io;
use std::os::fd::RawFd;

use super::ffi::open_error;
use super::ffi::{lib, watch_lib, Lib, WatchLib, XsHandle, XBT_NULL};
use crate::error::{Error, Result};
use crate::port::DomId;

/// The token of our watch (one watch per connection).
const TOKEN: &std::ffi::CStr = c"vchan-rs-peer";

/// A watch on one peer domain's directory, on a connection of its own.
#[derive(Debug)]
pub(crate) struct DomainWatch {
    lib: &'static Lib,
    wl: &'static WatchLib,
    h: *mut XsHandle,
    path: CString,
    fd: RawFd,
}

// SAFETY: the handle is used by its one owner (`&mut self` for the calls
// that consume watch events); libxenstore locks its own state.
unsafe impl Send for DomainWatch {}

impl DomainWatch {
    /// Watch domain `peer`'s directory; `None` when it is not watched (see
    /// the module's documentation).
    pub(crate) fn open(peer: DomId) -> Result<Option<DomainWatch>> {
        let Some(wl) = watch_lib() else {
            return Ok(None);
        };
        if peer.get() == 0 {
            return Ok(None);
        }
        let lib = lib()?;
        let path = CString::new(format!("/local/domain/{}", peer.get()))
            .map_err(|_| Error::Io(io::Error::from(io::ErrorKind::InvalidInput)))?;
        // SAFETY: xs_open takes flags only (0: read-write, either transport).
        let h = unsafe { (lib.xs_open)(0) };
        if h.is_null() {
            return Err(open_error("xs_open", io::Error::last_os_error()));
        }
        // From here on, dropping `w` closes the connection.
        let mut w = DomainWatch {
            lib,
            wl,
            h,
            path,
            fd: -1,
        };
        if !w.peer_exists()? {
            return Ok(None);
        }
        let context = |what: &str, e: io::Error| {
            Error::Io(io::Error::new(
                e.kind(),
                format!("{what} {}: {e}", w.path.to_string_lossy()),
            ))
        };
        // The descriptor first: libxenstore makes its pipe here, and
        // writes to it for every watch event queued after.
        // SAFETY: open handle.
        let fd = unsafe { (wl.xs_fileno)(h) };
        if fd < 0 {
            return Err(context("xs_fileno for", io::Error::last_os_error()));
        }
        // SAFETY: open handle, valid C strings.
        if !unsafe { (wl.xs_watch)(h, w.path.as_ptr(), TOKEN.as_ptr()) } {
            return Err(context("xs_watch", io::Error::last_os_error()));
        }
        w.fd = fd;
        Ok(Some(w))
    }

    /// Readable while a watch event waits to be consumed.
    pub(crate) fn fd(&self) -> RawFd {
        self.fd
    }

    /// Consume the watch events without blocking; true when one came and
    /// the peer's directory is gone.
    pub(crate) fn peer_gone(&mut self) -> io::Result<bool> {
        let mut fired = false;
        loop {
            // SAFETY: open handle with a watch set.
            let v = unsafe { (self.wl.xs_check_watch)(self.h) };
            if v.is_null() {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EAGAIN) {
                    break;
                }
                return Err(e);
            }
            // SAFETY: one malloc'd block (path and token), unused: freed
            // once, here.
            unsafe { libc::free(v.cast()) };
            fired = true;
        }
        Ok(fired && !self.peer_exists()?)
    }

    /// Is the peer's directory there? (EACCES: it is, we may not read it.)
    fn peer_exists(&self) -> io::Result<bool> {
        let mut len: c_uint = 0;
        // SAFETY: open handle, valid C string, len a valid out pointer.
        let p = unsafe { (self.lib.xs_read)(self.h, XBT_NULL, self.path.as_ptr(), &mut len) };
        if p.is_null() {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOENT) => Ok(false),
                Some(libc::EACCES) => Ok(true),
                _ => Err(io::Error::new(
                    e.kind(),
                    format!("xs_read {}: {e}", self.path.to_string_lossy()),
                )),
            };
        }
        // SAFETY: xs_read's malloc'd value, unused: freed once, here.
        unsafe { libc::free(p) };
        Ok(true)
    }
}

impl Drop for DomainWatch {
    fn drop(&mut self) {
        // SAFETY: h came from xs_open and is closed once, here (which
        // drops its watch and its descriptor).
        unsafe { (self.lib.xs_close)(self.h) };
    }
}
