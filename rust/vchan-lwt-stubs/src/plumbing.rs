//! Plumbing for `Vchan_rs.Endpoint.Make` applied to Lwt Unix modules
//! (`ocaml/lwt-unix/plumbing.ml`): the backends' shared pages, event
//! channels and rendezvous store, and nothing of the rings (the functor
//! reaches those through the freestanding archive).
//!
//! Each object lives in a `Box` whose address OCaml holds as an `int`, and
//! is freed by an explicit `*_free` call (the functor's `unshare`, `unmap`
//! and `E.close`).

use std::ffi::{c_int, c_void};
use std::sync::{Arc, Mutex, OnceLock};

use vchan::backend::{EventChannel, Region, Rendezvous};
use vchan::{rendezvous_path, Backend, DomId, Port};

use crate::ocaml_value::{tag, untag, Value};
use crate::{caml_err, CamlErr, Kind};

/// The backend of this process (chosen once, by `$VCHAN_BACKEND`).
fn backend() -> vchan::Result<Arc<dyn Backend>> {
    static CHOSEN: OnceLock<Mutex<Option<Arc<dyn Backend>>>> = OnceLock::new();
    let mut b = CHOSEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(b) = b.as_ref() {
        return Ok(b.clone());
    }
    let chosen = vchan::default_backend()?;
    *b = Some(chosen.clone());
    Ok(chosen)
}

fn domid(d: ocaml::Int) -> vchan::Result<DomId> {
    u32::try_from(d)
        .map_err(|_| vchan::Error::BadDomid(d.to_string()))
        .and_then(DomId::new)
}

fn boxed<T>(x: T) -> Result<ocaml::Int, CamlErr> {
    let p = Box::into_raw(Box::new(x)) as usize;
    if p >> 62 != 0 {
        // SAFETY: `p` came from Box::into_raw just above and was not shared.
        drop(unsafe { Box::from_raw(p as *mut T) });
        return Err((Kind::System as isize, "address does not fit an OCaml int".into()));
    }
    Ok(p as ocaml::Int)
}

type Chan = Box<dyn EventChannel>;
type Mem = Box<dyn Region>;

/// # Safety
///
/// `h` comes from [`boxed`] of a `T` and was not freed; OCaml calls one
/// stub at a time (runtime lock), so no other reference is live.
unsafe fn get<'a, T>(h: isize) -> &'a mut T {
    // SAFETY: per this function's contract.
    unsafe { &mut *(h as *mut T) }
}

/// `chan_listen remote`: an event channel port that domain `remote` may
/// connect to.
#[ocaml::func]
pub fn vchan_rs_chan_listen(remote: ocaml::Int) -> Result<ocaml::Int, CamlErr> {
    let c: Chan = (|| backend()?.bind_unbound(domid(remote)?))().map_err(|e| caml_err(&e))?;
    boxed(c)
}

/// `chan_connect remote port`: connect to `port` of domain `remote`.
#[ocaml::func]
pub fn vchan_rs_chan_connect(remote: ocaml::Int, port: ocaml::Int) -> Result<ocaml::Int, CamlErr> {
    let c: Chan = (|| {
        let port = u32::try_from(port).map_err(|_| vchan::Error::Closed)?;
        backend()?.bind_interdomain(domid(remote)?, port)
    })()
    .map_err(|e| caml_err(&e))?;
    boxed(c)
}

/// `chan_port c`: our port number.
#[ocaml::func]
pub fn vchan_rs_chan_port(c: ocaml::Int) -> ocaml::Int {
    // SAFETY: a live channel (see `get`).
    unsafe { get::<Chan>(c) }.port() as ocaml::Int
}

/// `chan_fd c`: the descriptor that polls readable when events are pending.
#[ocaml::func]
pub fn vchan_rs_chan_fd(c: ocaml::Int) -> ocaml::Int {
    // SAFETY: a live channel (see `get`).
    unsafe { get::<Chan>(c) }.fd() as ocaml::Int
}

/// `chan_hangup_fd c`: the descriptor reporting the peer's hang-up, or -1.
#[ocaml::func]
pub fn vchan_rs_chan_hangup_fd(c: ocaml::Int) -> ocaml::Int {
    // SAFETY: a live channel (see `get`).
    unsafe { get::<Chan>(c) }.hangup_fd().unwrap_or(-1) as ocaml::Int
}

/// `chan_notify c`: signal the peer; 0, or -1 when the peer is gone.
///
/// # Safety
///
/// `c` is a live channel.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_chan_notify(c: isize) -> isize {
    // SAFETY: per this function's contract.
    match unsafe { get::<Chan>(c) }.notify() {
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
    match unsafe { get::<Chan>(c) }.drain() {
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

/// `chan_free c`: close the channel.
#[ocaml::func]
pub fn vchan_rs_chan_free(c: ocaml::Int) {
    // SAFETY: a live channel, freed once (the OCaml side forgets it).
    drop(unsafe { Box::from_raw(c as *mut Chan) });
}

/// `share remote pages`: `pages` fresh zeroed pages shared with `remote`.
#[ocaml::func]
pub fn vchan_rs_share(remote: ocaml::Int, pages: ocaml::Int) -> Result<ocaml::Int, CamlErr> {
    let r: Mem = (|| {
        let pages = usize::try_from(pages).map_err(|_| vchan::Error::Closed)?;
        backend()?.share(domid(remote)?, pages, None)
    })()
    .map_err(|e| caml_err(&e))?;
    boxed(r)
}

/// `map remote refs writable`: map the pages `refs` of `remote`.
#[ocaml::func]
pub fn vchan_rs_map(
    remote: ocaml::Int,
    refs: Vec<ocaml::Int>,
    writable: bool,
) -> Result<ocaml::Int, CamlErr> {
    let refs: Vec<u32> = refs
        .into_iter()
        .map(u32::try_from)
        .collect::<Result<_, _>>()
        .map_err(|_| (Kind::InvalidArgument as isize, "grant refs".to_string()))?;
    let r: Mem = (|| backend()?.map(domid(remote)?, &refs, writable, None))()
        .map_err(|e| caml_err(&e))?;
    boxed(r)
}

/// `region_refs r`: the grant refs of a shared region.
#[ocaml::func]
pub fn vchan_rs_region_refs(r: ocaml::Int) -> Vec<ocaml::Int> {
    // SAFETY: a live region (see `get`).
    unsafe { get::<Mem>(r) }.refs().iter().map(|&x| x as ocaml::Int).collect()
}

/// `region_free r`: unshare or unmap.
#[ocaml::func]
pub fn vchan_rs_region_free(r: ocaml::Int) {
    // SAFETY: a live region, freed once (the OCaml side forgets it).
    drop(unsafe { Box::from_raw(r as *mut Mem) });
}

extern "C" {
    fn caml_ba_alloc_dims(flags: c_int, num_dims: c_int, data: *mut c_void, ...) -> Value;
}

/// `region_buf r`: the region's memory as a bigarray (not owning it).
///
/// # Safety
///
/// `r` is a tagged OCaml int holding a live region.
#[no_mangle]
pub unsafe extern "C" fn vchan_rs_region_buf(r: Value) -> Value {
    // SAFETY: per this function's contract.
    let m = unsafe { get::<Mem>(untag(r)) };
    // SAFETY: an external uint8 C-layout array of one dimension over the
    // region's mapping, runtime lock held.
    unsafe { caml_ba_alloc_dims(0x03, 1, m.as_ptr().cast(), m.len() as isize) }
}

fn port(name: &str) -> vchan::Result<Port> {
    Port::new(name)
}

/// `publish client port ring_ref event_channel`.
#[ocaml::func]
pub fn vchan_rs_publish(
    client: ocaml::Int,
    name: String,
    ring_ref: ocaml::Int,
    evtchn: ocaml::Int,
) -> Result<(), CamlErr> {
    (|| {
        let b = backend()?;
        let client = domid(client)?;
        let path = rendezvous_path(b.own_domid()?, client, &port(&name)?);
        let rv = Rendezvous {
            ring_ref: ring_ref as u32,
            event_channel: evtchn as u32,
            barrier: false,
        };
        b.publish(&path, client, rv)
    })()
    .map_err(|e| caml_err(&e))
}

/// `lookup server port`: `(ring_ref, event_channel)` once published.
#[ocaml::func]
pub fn vchan_rs_lookup(
    server: ocaml::Int,
    name: String,
) -> Result<Option<(ocaml::Int, ocaml::Int)>, CamlErr> {
    (|| {
        let b = backend()?;
        let path = rendezvous_path(domid(server)?, b.own_domid()?, &port(&name)?);
        Ok(b.lookup(&path)?
            .map(|rv| (rv.ring_ref as ocaml::Int, rv.event_channel as ocaml::Int)))
    })()
    .map_err(|e: vchan::Error| caml_err(&e))
}

/// `unpublish client port`.
#[ocaml::func]
pub fn vchan_rs_unpublish(client: ocaml::Int, name: String) -> Result<(), CamlErr> {
    (|| {
        let b = backend()?;
        let path = rendezvous_path(b.own_domid()?, domid(client)?, &port(&name)?);
        b.unpublish(&path)
    })()
    .map_err(|e| caml_err(&e))
}
