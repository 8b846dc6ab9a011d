//! xenstore through `libxenstore`: our domain id and the rendezvous.

use std::ffi::{c_uint, c_void, CString};
use std::io;
use std::sync::Mutex;

use super::ffi::{lib, open_error, Lib, XsHandle, XsPermissions, XsTransaction, XBT_NULL};
use super::ffi::{XS_PERM_NONE, XS_PERM_READ};
use super::owner;
use crate::backend::Rendezvous;
use crate::error::{Error, Result};
use crate::port::DomId;

/// How often a transaction that xenstored asks us to redo (EAGAIN) is
/// retried before giving up.
const MAX_TRANSACTION_TRIES: usize = 64;

/// An open connection to xenstore. Calls are serialized by a mutex.
#[derive(Debug)]
pub(crate) struct Store {
    lib: &'static Lib,
    h: Mutex<Handle>,
}

#[derive(Debug)]
struct Handle(*mut XsHandle);

// SAFETY: the handle is only used under the Store's mutex.
unsafe impl Send for Handle {}

fn c_path(path: &str) -> Result<CString> {
    CString::new(path).map_err(|_| {
        Error::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("xenstore path {path:?} contains a NUL byte"),
        ))
    })
}

fn op_error(op: &str, path: &str, e: io::Error) -> Error {
    Error::Io(io::Error::new(e.kind(), format!("{op} {path}: {e}")))
}

impl Store {
    /// `xs_open(0)`: the xenstored socket or the xenbus device.
    pub(crate) fn open() -> Result<Store> {
        let lib = lib()?;
        // SAFETY: xs_open takes flags only (0: read-write, either transport).
        let h = unsafe { (lib.xs_open)(0) };
        if h.is_null() {
            return Err(open_error("xs_open", io::Error::last_os_error()));
        }
        Ok(Store {
            lib,
            h: Mutex::new(Handle(h)),
        })
    }

    fn handle(&self) -> std::sync::MutexGuard<'_, Handle> {
        // A panic while holding the lock leaves the handle as usable as
        // before: recover it.
        self.h.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Read `path`: `Ok(None)` if it does not exist.
    fn read(&self, h: &Handle, t: XsTransaction, path: &str) -> Result<Option<Vec<u8>>> {
        let cpath = c_path(path)?;
        let mut len: c_uint = 0;
        // SAFETY: open handle, valid C string, len is a valid out pointer.
        let p = unsafe { (self.lib.xs_read)(h.0, t, cpath.as_ptr(), &mut len) };
        if p.is_null() {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOENT) => Ok(None),
                _ => Err(op_error("xs_read", path, e)),
            };
        }
        // SAFETY: xs_read returns a malloc'd buffer of at least `len` bytes
        // (plus a NUL); we copy it and free it once.
        let v = unsafe {
            let v = std::slice::from_raw_parts(p.cast::<u8>(), len as usize).to_vec();
            libc::free(p);
            v
        };
        Ok(Some(v))
    }

    /// Our domain id: the relative key `domid` (our home directory's).
    pub(crate) fn own_domid(&self) -> Result<DomId> {
        let h = self.handle();
        let v = self.read(&h, XBT_NULL, "domid")?.ok_or_else(|| {
            Error::BackendUnavailable("xenstore has no key \"domid\" for this domain".into())
        })?;
        let s = String::from_utf8_lossy(&v);
        let id: u32 = s.trim().parse().map_err(|_| {
            Error::BackendUnavailable(format!("xenstore key \"domid\" is not a number: {s:?}"))
        })?;
        DomId::new(id)
    }

    /// Write `value` at `path` in transaction `t`, owned by `own` and
    /// readable by `reader` only (by nobody else when `reader` is `None`).
    fn write_private(
        &self,
        h: &Handle,
        t: XsTransaction,
        path: &str,
        value: &str,
        own: DomId,
        reader: Option<DomId>,
    ) -> Result<()> {
        let cpath = c_path(path)?;
        let len = c_uint::try_from(value.len()).unwrap_or(c_uint::MAX);
        // SAFETY: open handle, valid C string, `len` bytes at value.
        let ok = unsafe {
            (self.lib.xs_write)(h.0, t, cpath.as_ptr(), value.as_ptr().cast::<c_void>(), len)
        };
        if !ok {
            return Err(op_error("xs_write", path, io::Error::last_os_error()));
        }
        // As libxenvchan: the first entry is the owner (it always has full
        // access) and the default for everybody else (none); the second
        // lets the client read.
        let mut perms = [
            XsPermissions {
                id: own.get(),
                perms: XS_PERM_NONE,
            },
            XsPermissions {
                id: reader.map_or(0, DomId::get),
                perms: XS_PERM_READ,
            },
        ];
        let n = if reader.is_some() { 2 } else { 1 };
        // SAFETY: open handle, valid C string, an array of at least n
        // permissions.
        let ok =
            unsafe { (self.lib.xs_set_permissions)(h.0, t, cpath.as_ptr(), perms.as_mut_ptr(), n) };
        if !ok {
            return Err(op_error(
                "xs_set_permissions",
                path,
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Publish a rendezvous at `path` in one transaction (see
    /// [`crate::backend::Backend::publish`]), with the key naming this
    /// process (`owner.rs`). An entry already at `path` is replaced when
    /// its key proves its writer dead, else it is [`Error::AddrInUse`].
    pub(crate) fn publish(
        &self,
        path: &str,
        own: DomId,
        client: DomId,
        rv: Rendezvous,
    ) -> Result<()> {
        let ring_ref_path = format!("{path}/ring-ref");
        let port_path = format!("{path}/event-channel");
        let owner_path = format!("{path}/{}", owner::KEY);
        let me = owner::this_process();
        let h = self.handle();
        self.transaction(&h, "publishing", path, |t| {
            let mut taken = false;
            for p in [&ring_ref_path, &port_path] {
                taken |= self.read(&h, t, p)?.is_some();
            }
            if taken {
                // Replace only the entry of a server of ours that died.
                match self.read(&h, t, &owner_path)? {
                    Some(v) if owner::writer_is_dead(&v) => {}
                    _ => return Err(Error::AddrInUse),
                }
            }
            let client = Some(client);
            self.write_private(&h, t, &ring_ref_path, &rv.ring_ref.to_string(), own, client)?;
            self.write_private(
                &h,
                t,
                &port_path,
                &rv.event_channel.to_string(),
                own,
                client,
            )?;
            match &me {
                Some(me) => self.write_private(&h, t, &owner_path, me, own, None),
                // No /proc: write nothing, and a stale entry of ours
                // is not recognised (an old key would name the dead).
                None => self.rm_in(&h, t, &owner_path),
            }
        })
    }

    /// Read the rendezvous at `path`: `None` while either key is absent,
    /// not a number, or 0. A key we may not read counts as absent:
    /// xenstored answers EACCES, not ENOENT, for a missing node below a
    /// directory the reader may not list (a domU looking for a server in
    /// dom0 that has not published yet), and a rendezvous published for
    /// another client is no more ours to use.
    ///
    /// Both keys are read in one transaction: a server restarted on the
    /// same path replaces them in one, and a key of each would make a
    /// rendezvous of neither.
    pub(crate) fn lookup(&self, path: &str) -> Result<Option<Rendezvous>> {
        let h = self.handle();
        let found = std::cell::Cell::new(None);
        self.transaction(&h, "reading", path, |t| {
            found.set(self.read_rendezvous(&h, t, path)?);
            Ok(())
        })?;
        Ok(found.get())
    }

    fn read_rendezvous(
        &self,
        h: &Handle,
        t: XsTransaction,
        path: &str,
    ) -> Result<Option<Rendezvous>> {
        let field = |key: &str| -> Result<Option<u32>> {
            let key = format!("{path}/{key}");
            let v = match self.read(h, t, &key) {
                Err(Error::Io(e)) if e.kind() == io::ErrorKind::PermissionDenied => None,
                r => r?,
            };
            Ok(v.and_then(|v| {
                std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok())
                    .filter(|n| *n != 0)
            }))
        };
        let (Some(ring_ref), Some(event_channel)) = (field("ring-ref")?, field("event-channel")?)
        else {
            return Ok(None);
        };
        Ok(Some(Rendezvous {
            barrier: false,
            ring_ref,
            event_channel,
        }))
    }

    /// Remove the rendezvous at `path` and everything below it (absent is
    /// fine). When `path` is a [`crate::rendezvous_path`], its client's
    /// directory goes too once empty, in the same transaction (as
    /// ocaml-vchan does; xenstored keeps the empty parent of a removed
    /// node, and Xen's C library leaves it).
    pub(crate) fn unpublish(&self, path: &str) -> Result<()> {
        let h = self.handle();
        let Some(dir) = client_dir(path) else {
            return self.rm_in(&h, XBT_NULL, path);
        };
        self.transaction(&h, "removing", path, |t| {
            self.rm_in(&h, t, path)?;
            if self.is_empty_dir(&h, t, dir)? {
                self.rm_in(&h, t, dir)?;
            }
            Ok(())
        })
    }

    /// Run `body` in a xenstore transaction on `h`, committed when it
    /// succeeds and abandoned when it fails; retried (a fresh transaction)
    /// while xenstored answers EAGAIN to the commit. `what` and `path` name
    /// the operation in errors.
    fn transaction(
        &self,
        h: &Handle,
        what: &str,
        path: &str,
        body: impl Fn(XsTransaction) -> Result<()>,
    ) -> Result<()> {
        for _ in 0..MAX_TRANSACTION_TRIES {
            // SAFETY: open handle.
            let t = unsafe { (self.lib.xs_transaction_start)(h.0) };
            if t == XBT_NULL {
                return Err(op_error(
                    "xs_transaction_start for",
                    path,
                    io::Error::last_os_error(),
                ));
            }
            if let Err(e) = body(t) {
                // SAFETY: open handle, live transaction, abandoned once.
                unsafe { (self.lib.xs_transaction_end)(h.0, t, true) };
                return Err(e);
            }
            // SAFETY: open handle, live transaction, committed once.
            if unsafe { (self.lib.xs_transaction_end)(h.0, t, false) } {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EAGAIN) {
                return Err(op_error("xs_transaction_end for", path, e));
            }
        }
        Err(Error::Io(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!("{what} {path}: xenstore kept asking to retry the transaction"),
        )))
    }

    /// Does `path` exist with no children, in transaction `t`?
    fn is_empty_dir(&self, h: &Handle, t: XsTransaction, path: &str) -> Result<bool> {
        let cpath = c_path(path)?;
        let mut num: c_uint = 0;
        // SAFETY: open handle, valid C string, num is a valid out pointer.
        let v = unsafe { (self.lib.xs_directory)(h.0, t, cpath.as_ptr(), &mut num) };
        if v.is_null() {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOENT) => Ok(false),
                _ => Err(op_error("xs_directory", path, e)),
            };
        }
        // SAFETY: xs_directory returns one malloc'd block (the pointers and
        // the strings they point to); freed once, its contents unused.
        unsafe { libc::free(v.cast()) };
        Ok(num == 0)
    }

    /// Remove `path` and everything below it in transaction `t` (absent is
    /// fine).
    fn rm_in(&self, h: &Handle, t: XsTransaction, path: &str) -> Result<()> {
        let cpath = c_path(path)?;
        // SAFETY: open handle, valid C string.
        if unsafe { (self.lib.xs_rm)(h.0, t, cpath.as_ptr()) } {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENOENT) => Ok(()),
            _ => Err(op_error("xs_rm", path, e)),
        }
    }
}

/// The client's directory of a rendezvous path
/// `/local/domain/<server>/data/vchan/<client>/<port>` (see
/// [`crate::rendezvous_path`]); `None` for any other path (a path given to
/// `listen_at`), whose parents are not ours to remove.
fn client_dir(path: &str) -> Option<&str> {
    let (dir, port) = path.rsplit_once('/')?;
    let (vchan, client) = dir.rsplit_once('/')?;
    let (data, _) = vchan.strip_suffix("/vchan")?.rsplit_once('/')?;
    let server = data.strip_prefix("/local/domain/")?;
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let ok = number(server) && number(client) && !port.is_empty() && vchan.ends_with("/data/vchan");
    ok.then_some(dir)
}

impl Drop for Store {
    fn drop(&mut self) {
        let h = self.handle().0;
        // SAFETY: h came from xs_open and is closed once, here.
        unsafe { (self.lib.xs_close)(h) };
    }
}

#[cfg(test)]
mod tests {
    use super::client_dir;

    #[test]
    fn client_dirs() {
        assert_eq!(
            client_dir("/local/domain/0/data/vchan/12/demo"),
            Some("/local/domain/0/data/vchan/12")
        );
        for other in [
            "/local/domain/0/data/vchan/12",
            "/local/domain/0/data/vchan/x/demo",
            "/local/domain/0/data/other/12/demo",
            "/local/domain//data/vchan/12/demo",
            "/local/domain/0/data/vchan/12/",
            "/my/own/path",
            "demo",
        ] {
            assert_eq!(client_dir(other), None, "{other}");
        }
    }
}
