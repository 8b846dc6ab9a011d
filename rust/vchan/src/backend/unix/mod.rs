//! The unix backend: vchans between processes of one host, no hypervisor.
//!
//! Everything lives under one rendezvous directory ([`root_dir`]):
//!
//! | path | what |
//! |---|---|
//! | `gnt/<domid>/<id>` | pages shared by domain `<domid>` (see [`gnt`]) |
//! | `evtchn/<domid>/<port>[.sock,.peer]` | event channel ports (see [`evtchn`]) |
//! | `store/...` | the xenstore stand-in (see [`store`]) |
//!
//! Every object is owned by a live process through an `flock`; objects of
//! dead processes are swept away by the next endpoint that closes (and by
//! [`sweep`]). Directories are 0700 and files 0600.
//!
//! The backend owns only what it made: a root it created, or adopted
//! empty, carries the [`MARKER`] file; any other existing directory, and
//! any directory that other users can reach, is refused (with an error
//! naming the path and the fix), never chmod'ed nor swept. Below the root,
//! entries are judged through directory descriptors with `O_NOFOLLOW |
//! O_NONBLOCK` (see `fsobj.rs`): a planted symlink, FIFO or directory is
//! skipped, never followed, waited on, or fatal to a sweep. The root's
//! lock is waited for at most [`ROOT_LOCK_WAIT`].
//!
//! Creating objects, publishing and removing rendezvous, and sweeping all
//! happen under an exclusive `flock` of the rendezvous directory itself,
//! held for a few file system calls: so a sweeper never
//! judges an object that is half made (not yet locked, or locked but its
//! socket not yet bound), nor removes a rendezvous that a new server has
//! just put in the place of a stale one.

pub mod evtchn;
pub(crate) mod fsobj;
pub mod gnt;
mod membarrier;
mod rendezvous;
mod root;
pub mod store;
mod sweep;

use std::io;
use std::path::{Path, PathBuf};

use crate::backend::{Backend, EventChannel, Region, Rendezvous};
use crate::error::{Error, Result, DOMID_MAX};
use crate::port::DomId;
use evtchn::UnixEvent;
use root::{prepare_root, CLOSE_LOCK_WAIT};
pub use root::{root_dir, RootLock, ENV_DIR, MARKER, ROOT_LOCK_WAIT};
pub use sweep::sweep;
use sweep::sweep_within;

/// Environment variable: this process's domain id (default 0).
pub const ENV_DOMID: &str = "VCHAN_DOMID";

/// This process's domain id from `$VCHAN_DOMID` (default 0), parsed as
/// every domain id is ([`DomId`]'s `FromStr`: decimal digits only).
pub fn env_domid() -> Result<DomId> {
    match std::env::var(ENV_DOMID) {
        Ok(s) => s.parse().map_err(|_| Error::InvalidEnv {
            var: ENV_DOMID,
            value: s.clone(),
            why: format!("expected a domain id, a number in 0..={DOMID_MAX}"),
        }),
        Err(std::env::VarError::NotPresent) => DomId::new(0),
        Err(std::env::VarError::NotUnicode(v)) => Err(Error::InvalidEnv {
            var: ENV_DOMID,
            value: v.to_string_lossy().into_owned(),
            why: "not a number".into(),
        }),
    }
}

/// The unix backend, rooted at one rendezvous directory.
#[derive(Debug, Clone)]
pub struct UnixBackend {
    root: PathBuf,
    domid: DomId,
}

impl UnixBackend {
    /// The backend configured from the environment (`VCHAN_DOMID`,
    /// `VCHAN_UNIX_DIR`).
    pub fn from_env() -> Result<UnixBackend> {
        UnixBackend::new(root_dir(), env_domid()?)
    }

    /// A backend rooted at `root`, for a process in domain `domid`.
    pub fn new(root: PathBuf, domid: DomId) -> Result<UnixBackend> {
        prepare_root(&root)?;
        Ok(UnixBackend { root, domid })
    }

    /// The rendezvous directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Sweep the objects of dead processes (see [`sweep`]).
    pub fn sweep(&self) -> io::Result<()> {
        sweep(&self.root)
    }
}

fn io_err(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::ResourceBusy => Error::Busy,
        _ => Error::Io(e),
    }
}

impl Backend for UnixBackend {
    fn name(&self) -> &'static str {
        "unix"
    }

    fn process_barrier(&self) -> Option<fn()> {
        membarrier::process_barrier()
    }

    fn own_domid(&self) -> Result<DomId> {
        Ok(self.domid)
    }

    fn bind_unbound(&self, _remote: DomId) -> Result<Box<dyn EventChannel>> {
        let _lock = RootLock::acquire(&self.root)?;
        Ok(Box::new(
            UnixEvent::bind_unbound(&self.root, self.domid.get()).map_err(io_err)?,
        ))
    }

    fn bind_interdomain(&self, remote: DomId, remote_port: u32) -> Result<Box<dyn EventChannel>> {
        let _lock = RootLock::acquire(&self.root)?;
        Ok(Box::new(
            UnixEvent::bind_interdomain(&self.root, self.domid.get(), remote.get(), remote_port)
                .map_err(io_err)?,
        ))
    }

    fn share(
        &self,
        _remote: DomId,
        pages: usize,
        notify: Option<(u32, &mut dyn EventChannel)>,
    ) -> Result<Box<dyn Region>> {
        let share = {
            let _lock = RootLock::acquire(&self.root)?;
            gnt::share(&self.root, self.domid.get(), pages)?
        };
        if let Some((offset, ev)) = notify {
            ev.set_unmap_notify(self.domid, share.refs()[0], offset)?;
        }
        Ok(Box::new(share))
    }

    fn map(
        &self,
        remote: DomId,
        refs: &[u32],
        writable: bool,
        notify: Option<(u32, &mut dyn EventChannel)>,
    ) -> Result<Box<dyn Region>> {
        let mapped = gnt::map(&self.root, remote.get(), refs, writable)?;
        if let (Some((offset, ev)), Some(&first)) = (notify, refs.first()) {
            ev.set_unmap_notify(remote, first, offset)?;
        }
        Ok(Box::new(mapped))
    }

    fn publish(&self, path: &str, _client: DomId, rv: Rendezvous) -> Result<()> {
        let _lock = RootLock::acquire(&self.root)?;
        rendezvous::publish(&self.root, path, rv)
    }

    fn lookup(&self, path: &str) -> Result<Option<Rendezvous>> {
        rendezvous::lookup(&self.root, path)
    }

    fn unpublish(&self, path: &str) -> Result<()> {
        let _lock = RootLock::acquire_within(&self.root, CLOSE_LOCK_WAIT)?;
        store::rm(&self.root, path)?;
        Ok(())
    }

    fn sweep(&self) {
        let _ = sweep_within(&self.root, CLOSE_LOCK_WAIT);
    }
}
