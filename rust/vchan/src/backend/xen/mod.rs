//! The xen backend: grant tables, event channels and xenstore of a Xen
//! domain, through Xen's stable C libraries loaded at run time (see
//! `ffi.rs`). Nothing of Xen is needed to build, and a process that never
//! asks for this backend never loads them.
//!
//! | need | library calls |
//! |---|---|
//! | share pages | `xengntshr_share_pages`; the control page with `xengntshr_share_page_notify` |
//! | map pages | `xengnttab_map_domain_grant_refs`; the control page with `xengnttab_map_grant_ref_notify` |
//! | events | one `xenevtchn` handle per channel |
//! | rendezvous | `xs_*`: one transaction writes `ring-ref` and `event-channel` |
//!
//! Peer death is seen through the unmap-notifies: the kernel clears the
//! dead process's live byte in the shared page and signals its event
//! channel; a destroyed domain leaves none, so a peer domain's directory
//! in xenstore is watched (`death.rs`). Xen offers no way to tell whether
//! the server behind a published rendezvous still lives, so our server
//! also records who it is
//! (`owner.rs`): [`Backend::publish`] replaces an entry whose recorded
//! writer is provably dead (a server restarted after a crash needs no
//! clean-up) and refuses any other ([`Error::AddrInUse`]);
//! [`Backend::sweep`] does nothing.
//!
//! Under the xensim simulator (`LD_LIBRARY_PATH` pointing at its
//! `libxengnttab.so.1` & co.), the same code talks to unix-backend peers.

mod death;
mod evtchn;
pub(crate) mod ffi;
mod gnt;
pub(crate) mod owner;
mod store;

use std::sync::{Arc, Mutex};

use crate::backend::{Backend, EventChannel, Region, Rendezvous};
#[cfg(doc)] // for the links above
use crate::error::Error;
use crate::error::Result;
use crate::port::DomId;
use evtchn::XenEvent;
use gnt::{GntShr, GntTab};
use store::Store;

/// A handle opened on first use and shared by the regions made through it.
#[derive(Debug)]
struct Lazy<T>(Mutex<Option<Arc<T>>>);

impl<T> Lazy<T> {
    fn new() -> Lazy<T> {
        Lazy(Mutex::new(None))
    }

    fn get(&self, open: impl FnOnce() -> Result<T>) -> Result<Arc<T>> {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = &*slot {
            return Ok(h.clone());
        }
        let h = Arc::new(open()?);
        *slot = Some(h.clone());
        Ok(h)
    }
}

/// The xen backend of this domain.
#[derive(Debug)]
pub struct XenBackend {
    store: Store,
    domid: DomId,
    gnttab: Lazy<GntTab>,
    gntshr: Lazy<GntShr>,
}

impl XenBackend {
    /// Load the libraries, connect to xenstore and read our domain id. The
    /// grant devices are opened when first needed (a client needs only
    /// gntdev, a server only gntalloc).
    pub fn open() -> Result<XenBackend> {
        let store = Store::open()?;
        let domid = store.own_domid()?;
        Ok(XenBackend {
            store,
            domid,
            gnttab: Lazy::new(),
            gntshr: Lazy::new(),
        })
    }
}

impl Backend for XenBackend {
    fn name(&self) -> &'static str {
        "xen"
    }

    fn own_domid(&self) -> Result<DomId> {
        Ok(self.domid)
    }

    fn bind_unbound(&self, remote: DomId) -> Result<Box<dyn EventChannel>> {
        Ok(Box::new(XenEvent::bind_unbound(remote, self.domid)?))
    }

    fn bind_interdomain(&self, remote: DomId, remote_port: u32) -> Result<Box<dyn EventChannel>> {
        Ok(Box::new(XenEvent::bind_interdomain(
            remote,
            remote_port,
            self.domid,
        )?))
    }

    fn share(
        &self,
        remote: DomId,
        pages: usize,
        notify: Option<(u32, &mut dyn EventChannel)>,
    ) -> Result<Box<dyn Region>> {
        let shr = self.gntshr.get(GntShr::open)?;
        let notify = notify.map(|(offset, ev)| (offset, ev.port()));
        Ok(Box::new(gnt::share(&shr, remote.get(), pages, notify)?))
    }

    fn map(
        &self,
        remote: DomId,
        refs: &[u32],
        writable: bool,
        notify: Option<(u32, &mut dyn EventChannel)>,
    ) -> Result<Box<dyn Region>> {
        let tab = self.gnttab.get(GntTab::open)?;
        let notify = notify.map(|(offset, ev)| (offset, ev.port()));
        Ok(Box::new(gnt::map(
            &tab,
            remote.get(),
            refs,
            writable,
            notify,
        )?))
    }

    /// Fails with [`Error::AddrInUse`] when `path` already holds a
    /// rendezvous, unless one of our servers wrote it and that process is
    /// dead (see `owner.rs`): then the entry is replaced.
    fn publish(&self, path: &str, client: DomId, rv: Rendezvous) -> Result<()> {
        self.store.publish(path, self.domid, client, rv)
    }

    fn lookup(&self, path: &str) -> Result<Option<Rendezvous>> {
        self.store.lookup(path)
    }

    fn unpublish(&self, path: &str) -> Result<()> {
        self.store.unpublish(path)
    }
}
