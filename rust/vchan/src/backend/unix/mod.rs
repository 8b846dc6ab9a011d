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
//! Creating objects, publishing and removing rendezvous, and sweeping all
//! happen under an exclusive `flock` of the rendezvous directory itself,
//! held for a few file system calls: so a sweeper never
//! judges an object that is half made (not yet locked, or locked but its
//! socket not yet bound), nor removes a rendezvous that a new server has
//! just put in the place of a stale one.

pub mod evtchn;
pub(crate) mod fsobj;
pub mod gnt;
pub mod store;

use std::io;
use std::path::{Path, PathBuf};

use crate::backend::{Backend, EventChannel, Region, Rendezvous};
use crate::error::{Error, Result};
use crate::port::DomId;
use evtchn::UnixEvent;

/// Environment variable: this process's domain id (default 0).
pub const ENV_DOMID: &str = "VCHAN_DOMID";
/// Environment variable: the rendezvous directory.
pub const ENV_DIR: &str = "VCHAN_UNIX_DIR";

/// The rendezvous directory: `$VCHAN_UNIX_DIR`, else
/// `$XDG_RUNTIME_DIR/vchan`, else `/tmp/vchan-<uid>`.
pub fn root_dir() -> PathBuf {
    if let Some(d) = std::env::var_os(ENV_DIR).filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("vchan");
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    PathBuf::from(format!("/tmp/vchan-{uid}"))
}

/// This process's domain id from `$VCHAN_DOMID` (default 0).
pub fn env_domid() -> Result<DomId> {
    match std::env::var(ENV_DOMID) {
        Ok(s) => s.trim().parse(),
        Err(_) => DomId::new(0),
    }
}

/// Create the rendezvous directory (0700) and check that it is ours and not
/// reachable by other users.
fn prepare_root(root: &Path) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    fsobj::mkdir_p(root)?;
    let meta = std::fs::symlink_metadata(root)?;
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    if !meta.is_dir() || meta.uid() != uid {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is not a directory owned by uid {uid}", root.display()),
        ));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// An exclusive `flock` on the rendezvous directory (see the module
/// documentation); released when dropped, or when its process dies.
#[derive(Debug)]
pub struct RootLock {
    _dir: std::fs::File,
}

impl RootLock {
    /// Wait for the lock on `root`. Never call this while holding it (in
    /// this process or thread): flock(2) would wait for ever.
    pub fn acquire(root: &Path) -> io::Result<RootLock> {
        use std::os::fd::AsRawFd;
        let dir = std::fs::File::open(root)?;
        loop {
            // SAFETY: flock on a valid descriptor owned by `dir`.
            if unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(RootLock { _dir: dir });
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// Remove every object left behind by dead processes under `root`, and the
/// directories that become empty.
pub fn sweep(root: &Path) -> io::Result<()> {
    let _lock = RootLock::acquire(root)?;
    for kind in ["gnt", "evtchn"] {
        let top = root.join(kind);
        let Ok(doms) = std::fs::read_dir(&top) else {
            continue;
        };
        for dom in doms.flatten() {
            let dir = dom.path();
            if kind == "evtchn" {
                evtchn::sweep_dir(&dir)?;
            } else if let Ok(files) = std::fs::read_dir(&dir) {
                for f in files.flatten() {
                    fsobj::reap(&f.path())?;
                }
                fsobj::prune(&dir);
            }
        }
        fsobj::prune(&top);
    }
    sweep_store(root, &root.join("store"))?;
    fsobj::prune(&root.join("store"));
    Ok(())
}

/// Is the process that created temporary entry `name` (`.tmp-<pid>-<n>`)
/// gone?
fn tmp_owner_dead(name: &str) -> bool {
    let pid = name
        .strip_prefix(fsobj::TMP_PREFIX)
        .and_then(|r| r.split('-').next())
        .and_then(|p| p.parse::<libc::pid_t>().ok());
    match pid {
        Some(pid) => {
            // SAFETY: kill with signal 0 only checks for the process.
            let rc = unsafe { libc::kill(pid, 0) };
            rc != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
        }
        None => true,
    }
}

fn sweep_store(root: &Path, dir: &Path) -> io::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(fsobj::TMP_PREFIX) {
            if tmp_owner_dead(&name) {
                let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
            }
            continue;
        }
        if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        if path.join("event-channel").is_file() && !rendezvous_live(root, &path)? {
            let _ = std::fs::remove_dir_all(&path);
            continue;
        }
        sweep_store(root, &path)?;
        fsobj::prune(&path);
    }
    Ok(())
}

/// Owner domain of a store node below `/local/domain/<d>/`.
fn owner_of(root: &Path, node: &Path) -> Option<u32> {
    let rel = node.strip_prefix(root.join("store")).ok()?;
    let mut c = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    match (c.next()?.as_str(), c.next()?.as_str()) {
        ("local", "domain") => c.next()?.parse().ok(),
        _ => None,
    }
}

/// Is the server behind the vchan rendezvous directory `node` alive?
fn rendezvous_live(root: &Path, node: &Path) -> io::Result<bool> {
    let Some(owner) = owner_of(root, node) else {
        return Ok(true);
    };
    let port = match std::fs::read_to_string(node.join("event-channel")) {
        Ok(s) => s.trim().parse::<u32>().ok(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    match port {
        Some(p) => fsobj::is_live(&evtchn::dom_dir(root, owner).join(p.to_string())),
        None => Ok(false),
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
        let leaves: [(&str, &[u8]); 2] = [
            ("ring-ref", ring_ref.as_bytes()),
            ("event-channel", port.as_bytes()),
        ];
        let _lock = RootLock::acquire(&self.root)?;
        for _ in 0..2 {
            match store::create_dir_with(&self.root, path, &leaves) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let node = store::node_path(&self.root, path)?;
                    if rendezvous_live(&self.root, &node)? {
                        return Err(Error::AddrInUse);
                    }
                    // A stale rendezvous of a dead server: replace it.
                    let _ = std::fs::remove_dir_all(&node);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::AddrInUse)
    }

    fn lookup(&self, path: &str) -> Result<Option<Rendezvous>> {
        let node = store::node_path(&self.root, path)?;
        let field = |name: &str| -> Result<Option<u32>> {
            match std::fs::read_to_string(node.join(name)) {
                Ok(s) => Ok(s.trim().parse::<u32>().ok().filter(|v| *v != 0)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        };
        let (Some(ring_ref), Some(event_channel)) = (field("ring-ref")?, field("event-channel")?)
        else {
            return Ok(None);
        };
        if !rendezvous_live(&self.root, &node)? {
            return Ok(None);
        }
        Ok(Some(Rendezvous {
            ring_ref,
            event_channel,
        }))
    }

    fn unpublish(&self, path: &str) -> Result<()> {
        let _lock = RootLock::acquire(&self.root)?;
        store::rm(&self.root, path)?;
        Ok(())
    }

    fn sweep(&self) {
        let _ = sweep(&self.root);
    }
}
