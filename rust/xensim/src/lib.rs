//! **Internal crate of vchan-rs** (not published; no Rust API to rely on):
//! its interface is Xen's C ABI, and its products are `libxensim.so`, Xen's
//! four library names and the launcher `vchan-xensim`.
//!
//! Xen's C libraries — `libxengnttab.so.1` (grant tables, including
//! `xengntshr_*`), `libxenevtchn.so.1`, `libxenstore.so.4` and a sliver of
//! `libxenctrl` (`libxenctrl.so.4.17` on Debian 12, `.so.4.20` on Debian
//! 13) — simulated over vchan's unix backend, so that Debian's unmodified
//! `libxenvchan` and `vchan-socket-proxy` run without a hypervisor and
//! talk to vchan-rs unix-backend endpoints.
//!
//! This crate builds a static library; `scripts/link-xensim.sh` links it
//! into `libxensim.so` (every function renamed `xensim_<name>`) and makes
//! Xen's four libraries — `libxengnttab.so.1`, `libxenevtchn.so.1`,
//! `libxenstore.so.4` with those sonames and Xen's symbol versions
//! (`VERS_1.0`, `VERS_4.0`), and `libxenctrl-xensim.so` with the soname and
//! symbol version of the installed Xen's libxenctrl (`libxenctrl.so.4.17`
//! at `VERS_4.17.0` on Debian 12), which the launcher preloads — as thin
//! objects whose functions jump to their `xensim_` twins. So all four share
//! this process-global state (a grant share's unmap-notify names an event
//! channel port bound on an event channel handle).
//!
//! Conventions (those of [`vchan::backend::unix`]): pages are files
//! `gnt/<dom>/<id>` (grant ref `id << 9 | page`), ports are
//! `evtchn/<dom>/<port>` with a `SOCK_SEQPACKET` socket, the store is the
//! directory tree `store/`; `VCHAN_UNIX_DIR` is the root and `VCHAN_DOMID`
//! this process's domain.
//!
//! Unmap-notify: each side sends its (owner, grant ref, offset) over the
//! event channel; when the channel reaches end-of-file, the survivor
//! clears that byte of its own mapping of the page and reports an event.
//! Here the survivor may be C code, so [`evtchn`] does it on the C side's
//! behalf when it drains a port whose peer is gone.
//!
//! Usage (`make build` runs the first two steps):
//!
//! ```text
//! cargo build --release -p xensim
//! scripts/link-xensim.sh target          # -> target/release/xensim/
//! export VCHAN_UNIX_DIR=/tmp/vchan-demo
//! target/release/vchan-xensim --domid 0 -- \
//!     /usr/lib/xen-*/bin/vchan-socket-proxy -m server 1 /local/domain/0/data/vchan/1/demo - < file
//! # ...and in domain 1, any vchan-rs unix-backend client of that path.
//! ```
//!
//! Event channel masking is simulated as Linux's evtchn driver does it
//! (see [`evtchn::Delivery`]). Not simulated: permissions,
//! `xs_fileno` (watches are polled inside `xs_read_watch`), and the
//! hypervisor's unmap-notify on a clean unmap (libxenvchan clears its
//! live byte and notifies by itself before unmapping).
//!
//! Every exported function has the C prototype of Xen's headers; their
//! safety contracts are those of the C API (valid handles from the
//! matching `open`, valid NUL-terminated strings, buffers of the stated
//! lengths).
#![warn(missing_docs)]
#![allow(clippy::missing_safety_doc)]

mod delivery;
pub mod evtchn;
pub mod gnt;
pub mod xc;
pub mod xs;
pub mod xsd;

use std::collections::HashMap;
use std::io;
use std::sync::{Mutex, MutexGuard};

use vchan::backend::unix::evtchn::UnixEvent;
use vchan::backend::Region;
use vchan::{DomId, UnixBackend};

/// A bound event channel port.
pub(crate) struct PortEnt {
    /// The xenevtchn handle it is bound on.
    pub(crate) handle: u64,
    pub(crate) ev: UnixEvent,
    /// Where the port stands in Xen's delivery cycle.
    pub(crate) delivery: delivery::Delivery,
    /// The peer's unmap-notify has been carried out.
    pub(crate) unmap_done: bool,
}

/// Pages shared or mapped through a grant handle.
pub(crate) struct RegionEnt {
    /// The xengntshr/xengnttab handle.
    pub(crate) handle: u64,
    pub(crate) addr: usize,
    pub(crate) len: usize,
    /// Domain that shared the pages (us, for shares).
    pub(crate) owner: u32,
    /// Grant reference of the first page.
    pub(crate) first_ref: u32,
    pub(crate) writable: bool,
    /// Inode of the file mapped at `addr` (from /proc/self/maps).
    pub(crate) inode: Option<u64>,
    pub(crate) region: Box<dyn Region>,
}

/// Process-global state shared by the four libraries.
#[derive(Default)]
pub(crate) struct Global {
    backend: Option<UnixBackend>,
    next_id: u64,
    pub(crate) ports: HashMap<u32, PortEnt>,
    pub(crate) regions: Vec<RegionEnt>,
}

impl Global {
    /// The unix backend configured from the environment.
    pub(crate) fn backend(&mut self) -> Result<UnixBackend, i32> {
        if let Some(b) = &self.backend {
            return Ok(b.clone());
        }
        let b = UnixBackend::from_env().map_err(|e| vchan_errno(&e))?;
        self.backend = Some(b.clone());
        Ok(b)
    }

    /// A fresh handle id (never 0).
    pub(crate) fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

static GLOBAL: Mutex<Option<Global>> = Mutex::new(None);

fn lock() -> MutexGuard<'static, Option<Global>> {
    GLOBAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Run `f` on the global state, under its lock.
pub(crate) fn with<R>(f: impl FnOnce(&mut Global) -> R) -> R {
    let mut g = lock();
    f(g.get_or_insert_with(Global::default))
}

/// A fresh handle id.
pub(crate) fn new_id() -> u64 {
    with(|g| g.new_id())
}

/// This process's domain id (`VCHAN_DOMID`, default 0).
pub(crate) fn own_domid() -> Result<u32, i32> {
    vchan::backend::unix::env_domid()
        .map(DomId::get)
        .map_err(|e| vchan_errno(&e))
}

/// Set the C `errno`.
pub(crate) fn set_errno(e: i32) {
    // SAFETY: __errno_location returns this thread's errno slot, always
    // valid for writes.
    unsafe { *libc::__errno_location() = e }
}

/// The errno for an I/O error.
pub(crate) fn io_errno(e: &io::Error) -> i32 {
    if let Some(n) = e.raw_os_error() {
        return n;
    }
    match e.kind() {
        io::ErrorKind::NotFound => libc::ENOENT,
        io::ErrorKind::PermissionDenied => libc::EACCES,
        io::ErrorKind::ConnectionRefused => libc::ECONNREFUSED,
        io::ErrorKind::AddrInUse => libc::EADDRINUSE,
        io::ErrorKind::AlreadyExists => libc::EEXIST,
        io::ErrorKind::InvalidInput => libc::EINVAL,
        io::ErrorKind::WouldBlock => libc::EAGAIN,
        io::ErrorKind::ResourceBusy => libc::EBUSY,
        _ => libc::EIO,
    }
}

/// The errno for a vchan error.
pub(crate) fn vchan_errno(e: &vchan::Error) -> i32 {
    match e {
        vchan::Error::Io(io) => io_errno(io),
        vchan::Error::Busy => libc::EBUSY,
        vchan::Error::AddrInUse => libc::EADDRINUSE,
        vchan::Error::Timeout(_) => libc::ETIMEDOUT,
        vchan::Error::Closed => libc::EPIPE,
        vchan::Error::BackendUnavailable(_) => libc::ENOSYS,
        _ => libc::EINVAL,
    }
}

/// Copy `bytes` plus a NUL into memory from `malloc` (the caller frees it
/// with `free`). Null if out of memory.
pub(crate) fn malloc_bytes(bytes: &[u8]) -> *mut libc::c_char {
    // SAFETY: plain malloc; the result is checked for null.
    let p = unsafe { libc::malloc(bytes.len() + 1) }.cast::<u8>();
    if p.is_null() {
        set_errno(libc::ENOMEM);
        return p.cast();
    }
    // SAFETY: p holds bytes.len() + 1 bytes; the source does not overlap a
    // fresh allocation.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
        *p.add(bytes.len()) = 0;
    }
    p.cast()
}
