//! xenstored's socket protocol (Xen's `<xen/io/xs_wire.h>`), served over a
//! Unix socket and backed by the same store as xensim's `libxenstore`
//! ([`crate::xs`]), so that clients that speak to xenstored's socket
//! rather than through `libxenstore` — ocaml-xenstore's client (so
//! ocaml-vchan's `vchan-unix`), or Xen's own `libxenstore` with
//! `XENSTORED_PATH` — share the store with every xensim program.
//! `vchan-xensim` runs [`serve`] for the command it launches.
//!
//! A message is a header of four native-endian `u32` (type, request id,
//! transaction id, payload length) and at most [`PAYLOAD_MAX`] bytes of
//! payload; the reply echoes the type, request id and transaction id, or
//! has type `XS_ERROR` and an errno name as payload. Watch events are sent
//! as `XS_WATCH_EVENT` with request id 0. Each connection is one domain's
//! (`VCHAN_DOMID`'s): relative paths are under its home, and it has its own
//! transactions and watches. As in xensim's `libxenstore`, permissions are
//! not enforced: `SET_PERMS` is accepted on any valid path and `GET_PERMS`
//! reports the node as this domain's and open to all (`b<domid>`), which
//! is what the store does. Watches are polled every [`WATCH_POLL`], and
//! their events name the watched path in its absolute form (xenstored
//! keeps a relative watch's relative form; vchan clients watch absolute
//! paths).
//! Not served (`ENOSYS`): `CONTROL`, `INTRODUCE`, `RELEASE`, `RESUME`,
//! `SET_TARGET`, `DIRECTORY_PART`; no toolstack drives xensim.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::xs::XsHandle;

/// Largest payload of a message either way (`XENSTORE_PAYLOAD_MAX`).
pub const PAYLOAD_MAX: usize = 4096;

/// How often a connection with watches looks for changes.
pub const WATCH_POLL: Duration = Duration::from_millis(5);

/// Message types of `enum xsd_sockmsg_type`.
mod ty {
    pub const DIRECTORY: u32 = 1;
    pub const READ: u32 = 2;
    pub const GET_PERMS: u32 = 3;
    pub const WATCH: u32 = 4;
    pub const UNWATCH: u32 = 5;
    pub const TRANSACTION_START: u32 = 6;
    pub const TRANSACTION_END: u32 = 7;
    pub const GET_DOMAIN_PATH: u32 = 10;
    pub const WRITE: u32 = 11;
    pub const MKDIR: u32 = 12;
    pub const RM: u32 = 13;
    pub const SET_PERMS: u32 = 14;
    pub const WATCH_EVENT: u32 = 15;
    pub const ERROR: u32 = 16;
    pub const IS_DOMAIN_INTRODUCED: u32 = 17;
    pub const RESET_WATCHES: u32 = 21;
}

/// The name xenstored gives `errno` in an `XS_ERROR` reply (its
/// `xsd_errors` table; anything else is reported as `EIO`).
fn errno_name(e: i32) -> &'static str {
    match e {
        libc::EINVAL => "EINVAL",
        libc::EACCES => "EACCES",
        libc::EEXIST => "EEXIST",
        libc::EISDIR => "EISDIR",
        libc::ENOENT => "ENOENT",
        libc::ENOMEM => "ENOMEM",
        libc::ENOSPC => "ENOSPC",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ENOSYS => "ENOSYS",
        libc::EROFS => "EROFS",
        libc::EBUSY => "EBUSY",
        libc::EAGAIN => "EAGAIN",
        libc::EISCONN => "EISCONN",
        libc::E2BIG => "E2BIG",
        libc::EPERM => "EPERM",
        _ => "EIO",
    }
}

/// A request's header.
#[derive(Clone, Copy)]
struct Header {
    ty: u32,
    req_id: u32,
    tx_id: u32,
}

/// Why a connection ends.
#[derive(Debug)]
pub enum ConnError {
    /// The socket failed (or the client hung up mid-message).
    Io(io::Error),
    /// The client announced a payload longer than [`PAYLOAD_MAX`].
    TooLong(u32),
}

impl From<io::Error> for ConnError {
    fn from(e: io::Error) -> Self {
        ConnError::Io(e)
    }
}

/// Write one message.
fn send(out: &mut UnixStream, ty: u32, req_id: u32, tx_id: u32, payload: &[u8]) -> io::Result<()> {
    let len =
        u32::try_from(payload.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut msg = Vec::with_capacity(16 + payload.len());
    for v in [ty, req_id, tx_id, len] {
        msg.extend_from_slice(&v.to_ne_bytes());
    }
    msg.extend_from_slice(payload);
    out.write_all(&msg)
}

/// The payload's NUL-terminated strings, the last one possibly without
/// its NUL (as `WRITE`'s value).
fn fields(payload: &[u8]) -> Result<Vec<&str>, i32> {
    let body = payload.strip_suffix(&[0]).unwrap_or(payload);
    body.split(|b| *b == 0)
        .map(|f| std::str::from_utf8(f).map_err(|_| libc::EINVAL))
        .collect()
}

/// The first string of the payload: a path, a token or a number.
fn first(payload: &[u8]) -> Result<&str, i32> {
    let end = payload
        .iter()
        .position(|b| *b == 0)
        .unwrap_or(payload.len());
    std::str::from_utf8(&payload[..end]).map_err(|_| libc::EINVAL)
}

/// `s` followed by its NUL.
fn nul(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// The reply's payload to request `h` with `payload` on handle `xs`.
fn answer(xs: &XsHandle, h: Header, payload: &[u8]) -> Result<Vec<u8>, i32> {
    let t = h.tx_id;
    let ok = || nul("OK");
    match h.ty {
        ty::READ => xs.read(t, first(payload)?),
        ty::WRITE => {
            let split = payload.iter().position(|b| *b == 0).ok_or(libc::EINVAL)?;
            let path = std::str::from_utf8(&payload[..split]).map_err(|_| libc::EINVAL)?;
            xs.write(t, path, &payload[split + 1..]).map(|()| ok())
        }
        ty::MKDIR => xs.mkdir(t, first(payload)?).map(|()| ok()),
        ty::RM => xs.rm(t, first(payload)?).map(|()| ok()),
        ty::DIRECTORY => {
            let names = xs.directory(t, first(payload)?)?;
            Ok(names.iter().flat_map(|n| nul(n)).collect())
        }
        ty::GET_PERMS => Ok(nul(&xs.get_permissions(t, first(payload)?)?.to_wire())),
        ty::SET_PERMS => {
            let f = fields(payload)?;
            if f.len() < 2 {
                return Err(libc::EINVAL);
            }
            xs.set_permissions(f[0]).map(|()| ok())
        }
        ty::WATCH | ty::UNWATCH => {
            let f = fields(payload)?;
            let [path, token] = f[..] else {
                return Err(libc::EINVAL);
            };
            if h.ty == ty::WATCH {
                xs.watch(path, token)
            } else {
                xs.unwatch(path, token)
            }
            .map(|()| ok())
        }
        ty::RESET_WATCHES => {
            xs.unwatch_all();
            Ok(ok())
        }
        ty::TRANSACTION_START => Ok(nul(&xs.transaction_start().to_string())),
        ty::TRANSACTION_END => {
            let abort = match first(payload)? {
                "T" => false,
                "F" => true,
                _ => return Err(libc::EINVAL),
            };
            xs.transaction_end(t, abort).map(|()| ok())
        }
        ty::GET_DOMAIN_PATH => {
            let dom: u32 = first(payload)?.parse().map_err(|_| libc::EINVAL)?;
            Ok(nul(&format!("/local/domain/{dom}")))
        }
        ty::IS_DOMAIN_INTRODUCED => {
            // As xensim's libxenctrl: every domain exists.
            first(payload)?.parse::<u32>().map_err(|_| libc::EINVAL)?;
            Ok(nul("T"))
        }
        _ => Err(libc::ENOSYS),
    }
}

/// Serve one client until it hangs up.
pub fn connection(stream: UnixStream) -> Result<(), ConnError> {
    let xs = Arc::new(XsHandle::open().map_err(io::Error::from_raw_os_error)?);
    let out = Arc::new(Mutex::new(stream.try_clone()?));
    let done = Arc::new(AtomicBool::new(false));
    let polling = Arc::new(AtomicBool::new(false));
    let res = requests(stream, &xs, &out, &done, &polling);
    // The poller, if any, sees it within WATCH_POLL and ends.
    done.store(true, Ordering::Release);
    res
}

fn requests(
    mut input: UnixStream,
    xs: &Arc<XsHandle>,
    out: &Arc<Mutex<UnixStream>>,
    done: &Arc<AtomicBool>,
    polling: &Arc<AtomicBool>,
) -> Result<(), ConnError> {
    let mut head = [0u8; 16];
    loop {
        match input.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let word = |i: usize| u32::from_ne_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        let h = Header {
            ty: word(0),
            req_id: word(4),
            tx_id: word(8),
        };
        let len = word(12);
        if len as usize > PAYLOAD_MAX {
            let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
            send(
                &mut o,
                ty::ERROR,
                h.req_id,
                h.tx_id,
                &nul(errno_name(libc::E2BIG)),
            )?;
            return Err(ConnError::TooLong(len));
        }
        let mut payload = vec![0u8; len as usize];
        input.read_exact(&mut payload)?;
        // Under the writer's lock, so that a watch's reply goes before
        // its first event.
        let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
        // A reply too long for one message (a value or a listing that
        // the store holds but the protocol cannot carry) is E2BIG.
        match answer(xs, h, &payload).and_then(|r| {
            if r.len() > PAYLOAD_MAX {
                Err(libc::E2BIG)
            } else {
                Ok(r)
            }
        }) {
            Ok(reply) => send(&mut o, h.ty, h.req_id, h.tx_id, &reply)?,
            Err(e) => send(&mut o, ty::ERROR, h.req_id, h.tx_id, &nul(errno_name(e)))?,
        }
        // A poller while there are watches (none polls for a connection
        // without: an idle client costs nothing). `polling` changes only
        // under the writer's lock.
        if h.ty == ty::WATCH && !polling.swap(true, Ordering::AcqRel) {
            let (xs, out, done, polling) = (
                Arc::clone(xs),
                Arc::clone(out),
                Arc::clone(done),
                Arc::clone(polling),
            );
            std::thread::spawn(move || watch_events(&xs, &out, &done, &polling));
        }
        drop(o);
    }
}

/// Send the connection's watch events until it ends or has no watch left.
fn watch_events(xs: &XsHandle, out: &Mutex<UnixStream>, done: &AtomicBool, polling: &AtomicBool) {
    while !done.load(Ordering::Acquire) {
        {
            let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                let (path, token) = match xs.next_event() {
                    Ok(Some(ev)) => ev,
                    Ok(None) => break,
                    // EINVAL: no watch left; under the writer's lock, as
                    // a WATCH's handling checks `polling`.
                    Err(_) => {
                        polling.store(false, Ordering::Release);
                        return;
                    }
                };
                let mut p = nul(&path);
                p.extend(nul(&token));
                if send(&mut o, ty::WATCH_EVENT, 0, 0, &p).is_err() {
                    return;
                }
            }
        }
        std::thread::sleep(WATCH_POLL);
    }
}

/// Accept clients on `listener` and serve each in its own thread; returns
/// only when accepting fails.
pub fn serve(listener: UnixListener) -> io::Error {
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                std::thread::spawn(move || connection(s));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return e,
        }
    }
}
