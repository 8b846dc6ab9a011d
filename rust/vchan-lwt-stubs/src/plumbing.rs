//! The plumbing of the Lwt Unix endpoint (`Vchan_rs.Endpoint.Make_with`
//! applied to `ocaml/lwt-unix/plumbing.ml`): the backends' event channels,
//! shared pages and rendezvous store, and nothing of the rings (the
//! functor reaches those through the freestanding archive).
//!
//! Every creating stub takes the backend's name (`None`:
//! `$VCHAN_BACKEND`). An event channel lives in a `Box` whose address OCaml
//! holds as an `int` until `chan_free`; a region's `Box` is handed to the
//! bigarray `region_buf` makes, which frees it when the last view of its
//! memory is collected ([`crate::region`]).

use std::ffi::c_int;
use std::sync::Arc;

use vchan::backend::{EventChannel, Rendezvous};
use vchan::{rendezvous_path, Backend, DomId, Port};

use crate::ocaml_value::{slice, tag, untag, Value};
use crate::region::Mem;
use crate::{caml_err, CamlErr, Kind};

pub(crate) fn backend(name: Option<String>) -> vchan::Result<Arc<dyn Backend>> {
    match name {
        Some(n) => vchan::backend_named(&n),
        None => vchan::default_backend(),
    }
}

pub(crate) fn domid(d: ocaml::Int) -> vchan::Result<DomId> {
    u32::try_from(d)
        .map_err(|_| vchan::Error::BadDomid(d.to_string()))
        .and_then(DomId::new)
}

fn u32_arg(what: &str, n: ocaml::Int) -> Result<u32, CamlErr> {
    u32::try_from(n).map_err(|_| (Kind::InvalidArgument as isize, format!("bad {what} {n}")))
}

fn boxed<T>(x: T) -> Result<ocaml::Int, CamlErr> {
    let p = Box::into_raw(Box::new(x)) as usize;
    if p >> 62 != 0 {
        // SAFETY: `p` came from Box::into_raw just above and was not shared.
        drop(unsafe { Box::from_raw(p as *mut T) });
        return Err((
            Kind::System as isize,
            "address does not fit an OCaml int".into(),
        ));
    }
    Ok(p as ocaml::Int)
}

/// An event channel, and its backend (swept when the channel is freed).
struct Chan {
    ev: Box<dyn EventChannel>,
    backend: Arc<dyn Backend>,
}

/// # Safety
///
/// `h` comes from [`boxed`] of a `T` and was not freed; OCaml calls one
/// stub at a time (runtime lock), so no other reference is live.
unsafe fn get<'a, T>(h: isize) -> &'a mut T {
    // SAFETY: per this function's contract.
    unsafe { &mut *(h as *mut T) }
}

/// `chan_listen backend remote`: an event channel port that domain
/// `remote` may connect to.
#[ocaml::func]
pub fn vchan_rs_chan_listen(
    name: Option<String>,
    remote: ocaml::Int,
) -> Result<ocaml::Int, CamlErr> {
    let c = (|| {
        let backend = backend(name)?;
        let ev = backend.bind_unbound(domid(remote)?)?;
        Ok(Chan { ev, backend })
    })()
    .map_err(|e: vchan::Error| caml_err(&e))?;
    boxed(c)
}

/// `chan_connect backend remote port`: connect to `port` of domain
/// `remote`; `Ok 0` when nobody listens there any more (a stale
/// rendezvous: wait for a new one).
#[ocaml::func]
pub fn vchan_rs_chan_connect(
    name: Option<String>,
    remote: ocaml::Int,
    port: ocaml::Int,
) -> Result<ocaml::Int, CamlErr> {
    let port = u32_arg("event channel port", port)?;
    let bound = backend(name).and_then(|backend| {
        let ev = backend.bind_interdomain(domid(remote)?, port)?;
        Ok(Chan { ev, backend })
    });
    match bound {
        Ok(c) => boxed(c),
        Err(vchan::Error::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(0),
        Err(e) => Err(caml_err(&e)),
    }
}

/// `chan_port c`: our port number.
#[ocaml::func]
pub fn vchan_rs_chan_port(c: ocaml::Int) -> ocaml::Int {
    // SAFETY: a live channel (see `get`).
    unsafe { get::<Chan>(c) }.ev.port() as ocaml::Int
}

/// `chan_fd c`: the descriptor that polls readable when events are pending.
#[ocaml::func]
pub fn vchan_rs_chan_fd(c: ocaml::Int) -> ocaml::Int {
    // SAFETY: a live channel (see `get`).
    unsafe { get::<Chan>(c) }.ev.fd() as ocaml::Int
}

/// `chan_hangup_fd c`: the descriptor reporting the peer's hang-up, or -1
/// (none, or not yet: a server's before its client connected).
#[ocaml::func]
pub fn vchan_rs_chan_hangup_fd(c: ocaml::Int) -> ocaml::Int {
    // SAFETY: a live channel (see `get`).
    unsafe { get::<Chan>(c) }.ev.hangup_fd().unwrap_or(-1) as ocaml::Int
}

/// `chan_notify c`: signal the peer; 0, or -1 when the peer is gone.
///
/// # Safety
///
/// `c` is a live channel.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_chan_notify(c: isize) -> isize {
    // SAFETY: per this function's contract.
    match unsafe { get::<Chan>(c) }.ev.notify() {
        Ok(()) => 0,
        Err(_) => -1,
    }
}

/// Bytecode twin of [`vchan_rs_chan_notify`].
///
/// # Safety
///
/// As for the native stub.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_chan_notify_byte(c: Value) -> Value {
    // SAFETY: the same contract, tagged.
    tag(unsafe { vchan_rs_chan_notify(untag(c)) })
}

/// `chan_drain c`: consume the pending events without blocking:
/// `notifies lsl 1 lor peer_gone`, or -1 on an error.
///
/// # Safety
///
/// `c` is a live channel.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_chan_drain(c: isize) -> isize {
    // SAFETY: per this function's contract.
    match unsafe { get::<Chan>(c) }.ev.drain() {
        Ok(ev) => ((ev.notifies.min(1 << 30) as isize) << 1) | isize::from(ev.peer_gone),
        Err(_) => -1,
    }
}

/// Bytecode twin of [`vchan_rs_chan_drain`].
///
/// # Safety
///
/// As for the native stub.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_chan_drain_byte(c: Value) -> Value {
    // SAFETY: the same contract, tagged.
    tag(unsafe { vchan_rs_chan_drain(untag(c)) })
}

/// `chan_free c`: close the channel (the endpoint's last step), then let
/// the backend sweep what dead processes left (the unix backend's files).
#[ocaml::func]
pub fn vchan_rs_chan_free(c: ocaml::Int) {
    // SAFETY: a live channel, freed once (the OCaml side forgets it).
    let Chan { ev, backend } = *unsafe { Box::from_raw(c as *mut Chan) };
    drop(ev);
    backend.sweep();
}

/// `share backend remote pages`: `pages` fresh zeroed pages shared with
/// `remote`; the region, for `region_refs` then `region_buf`.
#[ocaml::func]
pub fn vchan_rs_share(
    name: Option<String>,
    remote: ocaml::Int,
    pages: ocaml::Int,
) -> Result<ocaml::Int, CamlErr> {
    let pages = u32_arg("page count", pages)? as usize;
    let r: Mem =
        (|| backend(name)?.share(domid(remote)?, pages, None))().map_err(|e| caml_err(&e))?;
    boxed(r)
}

/// `share_page backend c remote own_live`: the control page (one page),
/// shared so that our death clears its byte `own_live` and signals `c`
/// (Xen's unmap notification; the unix backend's peer learns of a death
/// from its event socket instead).
#[ocaml::func]
pub fn vchan_rs_share_page(
    name: Option<String>,
    c: ocaml::Int,
    remote: ocaml::Int,
    own_live: ocaml::Int,
) -> Result<ocaml::Int, CamlErr> {
    let offset = u32_arg("live byte offset", own_live)?;
    // SAFETY: a live channel (see `get`).
    let chan = unsafe { get::<Chan>(c) };
    let r: Mem = (|| backend(name)?.share(domid(remote)?, 1, Some((offset, &mut *chan.ev))))()
        .map_err(|e| caml_err(&e))?;
    boxed(r)
}

fn refs(refs: &[ocaml::Int]) -> Result<Vec<u32>, CamlErr> {
    refs.iter().map(|&r| u32_arg("grant ref", r)).collect()
}

/// `map backend remote refs writable`: map the pages `refs` of `remote`.
#[ocaml::func]
pub fn vchan_rs_map(
    name: Option<String>,
    remote: ocaml::Int,
    grants: Vec<ocaml::Int>,
    writable: bool,
) -> Result<ocaml::Int, CamlErr> {
    let grants = refs(&grants)?;
    let r: Mem = (|| backend(name)?.map(domid(remote)?, &grants, writable, None))()
        .map_err(|e| caml_err(&e))?;
    boxed(r)
}

/// `map_page backend c remote ref own_live`: the client's mapping of the
/// control page, with the unmap notification `share_page` describes.
#[ocaml::func]
pub fn vchan_rs_map_page(
    name: Option<String>,
    c: ocaml::Int,
    remote: ocaml::Int,
    grant: ocaml::Int,
    own_live: ocaml::Int,
) -> Result<ocaml::Int, CamlErr> {
    let (grant, offset) = (
        u32_arg("grant ref", grant)?,
        u32_arg("live byte offset", own_live)?,
    );
    // SAFETY: a live channel (see `get`).
    let chan = unsafe { get::<Chan>(c) };
    let r: Mem = (|| {
        backend(name)?.map(
            domid(remote)?,
            &[grant],
            true,
            Some((offset, &mut *chan.ev)),
        )
    })()
    .map_err(|e| caml_err(&e))?;
    boxed(r)
}

/// `region_refs r`: the grant refs of a shared region.
#[ocaml::func]
pub fn vchan_rs_region_refs(r: ocaml::Int) -> Vec<ocaml::Int> {
    // SAFETY: a live region (see `get`).
    unsafe { get::<Mem>(r) }
        .refs()
        .iter()
        .map(|&x| x as ocaml::Int)
        .collect()
}

/// `publish backend client port ring_ref event_channel`.
#[ocaml::func]
pub fn vchan_rs_publish(
    name: Option<String>,
    client: ocaml::Int,
    port: String,
    ring_ref: ocaml::Int,
    evtchn: ocaml::Int,
) -> Result<(), CamlErr> {
    let (ring_ref, event_channel) = (
        u32_arg("ring-ref", ring_ref)?,
        u32_arg("event-channel", evtchn)?,
    );
    (|| {
        let b = backend(name)?;
        let client = domid(client)?;
        let path = rendezvous_path(b.own_domid()?, client, &Port::new(&port)?);
        let rv = Rendezvous {
            ring_ref,
            event_channel,
            barrier: false,
        };
        b.publish(&path, client, rv)
    })()
    .map_err(|e| caml_err(&e))
}

/// `lookup backend server port`: `(ring_ref, event_channel)` once published.
#[ocaml::func]
pub fn vchan_rs_lookup(
    name: Option<String>,
    server: ocaml::Int,
    port: String,
) -> Result<Option<(ocaml::Int, ocaml::Int)>, CamlErr> {
    (|| {
        let b = backend(name)?;
        let path = rendezvous_path(domid(server)?, b.own_domid()?, &Port::new(&port)?);
        Ok(b.lookup(&path)?
            .map(|rv| (rv.ring_ref as ocaml::Int, rv.event_channel as ocaml::Int)))
    })()
    .map_err(|e: vchan::Error| caml_err(&e))
}

/// `unpublish backend client port`.
#[ocaml::func]
pub fn vchan_rs_unpublish(
    name: Option<String>,
    client: ocaml::Int,
    port: String,
) -> Result<(), CamlErr> {
    (|| {
        let b = backend(name)?;
        let path = rendezvous_path(b.own_domid()?, domid(client)?, &Port::new(&port)?);
        b.unpublish(&path)
    })()
    .map_err(|e| caml_err(&e))
}

/// `fd_read fd buf off len`: one `read(2)` of `fd` into `buf[off..off+len)`
/// (a ring's free run, for `write_from_fd`): the count (0 at end-of-file),
/// or `-errno`.
///
/// # Safety
///
/// `buf` is a `char` bigarray.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_fd_read(fd: isize, buf: Value, off: isize, len: isize) -> isize {
    // SAFETY: per this function's contract.
    let Some((p, n)) = (unsafe { slice(buf, off, len) }) else {
        return -(libc::EINVAL as isize);
    };
    let Ok(fd) = c_int::try_from(fd) else {
        return -(libc::EBADF as isize);
    };
    loop {
        // SAFETY: [p, p + n) lies in the bigarray (checked by `slice`); the
        // kernel writes into it directly (the peer may see that memory:
        // no Rust reference to it is made).
        let r = unsafe { libc::read(fd, p.cast(), n) };
        if r >= 0 {
            return r as isize;
        }
        let e = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
        if e != libc::EINTR {
            return -(e as isize);
        }
    }
}

/// Bytecode twin of [`vchan_rs_fd_read`].
///
/// # Safety
///
/// As for the native stub.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_fd_read_byte(
    fd: Value,
    buf: Value,
    off: Value,
    len: Value,
) -> Value {
    // SAFETY: the same contract, tagged.
    tag(unsafe { vchan_rs_fd_read(untag(fd), buf, untag(off), untag(len)) })
}
