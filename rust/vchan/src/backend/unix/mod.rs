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
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::backend::{Backend, EventChannel, Region, Rendezvous};
use crate::backend::{BARRIER_LEAF, BARRIER_VALUE, EVENT_CHANNEL_LEAF, RING_REF_LEAF};
use crate::error::{Error, Result, DOMID_MAX};
use crate::port::DomId;
use evtchn::UnixEvent;
use rendezvous::{read_u32_leaf, remove_rendezvous_at, rendezvous_live, LEAF_MAX};
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
        let ring_ref = rv.ring_ref.to_string();
        let port = rv.event_channel.to_string();
        let mut leaves: Vec<(&str, &[u8])> = vec![
            (RING_REF_LEAF, ring_ref.as_bytes()),
            (EVENT_CHANNEL_LEAF, port.as_bytes()),
        ];
        if rv.barrier {
            leaves.push((BARRIER_LEAF, BARRIER_VALUE.as_bytes()));
        }
        let _lock = RootLock::acquire(&self.root)?;
        for _ in 0..2 {
            match store::create_dir_with(&self.root, path, &leaves) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if rendezvous_live(&self.root, path)? {
                        return Err(Error::AddrInUse);
                    }
                    // A stale rendezvous of a dead server: replace it.
                    if let Some((parent, name)) = path.rsplit_once('/') {
                        if let Ok(Some(p)) = store::open_node(&self.root, parent) {
                            remove_rendezvous_at(p.as_raw_fd(), name);
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::AddrInUse)
    }

    fn lookup(&self, path: &str) -> Result<Option<Rendezvous>> {
        let Some(node) = store::open_node(&self.root, path)? else {
            return Ok(None);
        };
        let field = |name: &str| -> Result<Option<u32>> {
            Ok(read_u32_leaf(node.as_raw_fd(), name)?.filter(|v| *v != 0))
        };
        let (Some(ring_ref), Some(event_channel)) =
            (field(RING_REF_LEAF)?, field(EVENT_CHANNEL_LEAF)?)
        else {
            return Ok(None);
        };
        if !rendezvous_live(&self.root, path)? {
            return Ok(None);
        }
        let barrier = fsobj::read_small_at(node.as_raw_fd(), BARRIER_LEAF, LEAF_MAX)?
            .is_some_and(|v| v.trim_ascii() == BARRIER_VALUE.as_bytes());
        Ok(Some(Rendezvous {
            ring_ref,
            event_channel,
            barrier,
        }))
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
