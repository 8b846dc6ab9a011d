//! Control path: creating, closing and freeing endpoints, and errors.
//! These go through `#[ocaml::func]`; errors come back as an OCaml
//! `(int, int * string) result` (see [`crate::Kind`]) rather than as
//! exceptions raised from Rust, so no Rust frame is ever unwound by OCaml.

use std::sync::Arc;

use vchan::{rendezvous_path, Backend, DomId, Endpoint, Port};

use crate::{caml_err, handle, into_raw, CamlErr, Handle, Kind};

fn backend(name: Option<String>) -> vchan::Result<Arc<dyn Backend>> {
    match name {
        Some(n) => vchan::backend_named(&n),
        None => vchan::default_backend(),
    }
}

fn domid(d: ocaml::Int) -> vchan::Result<DomId> {
    u32::try_from(d)
        .map_err(|_| vchan::Error::BadDomid(d.to_string()))
        .and_then(DomId::new)
}

fn size(n: ocaml::Int) -> Result<usize, CamlErr> {
    usize::try_from(n).map_err(|_| {
        (
            Kind::InvalidArgument as isize,
            format!("invalid ring size {n}"),
        )
    })
}

/// `listen backend client_domid port read_size write_size`: serve client
/// domain `client_domid` on `port` (backend `None` = `$VCHAN_BACKEND`).
/// Returns at once with a non-blocking endpoint; the client connects later.
#[ocaml::func]
pub fn vchan_rs_listen(
    backend_name: Option<String>,
    client: ocaml::Int,
    port: String,
    read_size: ocaml::Int,
    write_size: ocaml::Int,
) -> Result<ocaml::Int, CamlErr> {
    let (read_min, write_min) = (size(read_size)?, size(write_size)?);
    let ep = (|| {
        let backend = backend(backend_name)?;
        let client = domid(client)?;
        let port = Port::new(&port)?;
        let path = rendezvous_path(backend.own_domid()?, client, &port);
        Endpoint::listen_at(backend, client, &path, read_min, write_min).and_then(Handle::new)
    })()
    .map_err(|e| caml_err(&e))?;
    into_raw(ep)
}

/// `own_domid backend`: this process's domain id under `backend` (under
/// Xen, xenstore's `domid`; under the unix backend, `$VCHAN_DOMID`).
#[ocaml::func]
pub fn vchan_rs_own_domid(backend_name: Option<String>) -> Result<ocaml::Int, CamlErr> {
    let id = backend(backend_name)
        .and_then(|b| b.own_domid())
        .map_err(|e| caml_err(&e))?;
    // A domain id is below 32752: it fits.
    Ok(id.get() as ocaml::Int)
}

/// `try_connect backend server_domid port`: one attempt to connect to the
/// server in `server_domid`; `Ok 0` while none has published (retry after a
/// pause), else `Ok handle`.
#[ocaml::func]
pub fn vchan_rs_try_connect(
    backend_name: Option<String>,
    server: ocaml::Int,
    port: String,
) -> Result<ocaml::Int, CamlErr> {
    let ep = (|| {
        let backend = backend(backend_name)?;
        let server = domid(server)?;
        let port = Port::new(&port)?;
        let path = rendezvous_path(server, backend.own_domid()?, &port);
        Endpoint::try_connect_at(backend, server, &path)?
            .map(Handle::new)
            .transpose()
    })()
    .map_err(|e| caml_err(&e))?;
    match ep {
        None => Ok(0),
        Some(h) => into_raw(h),
    }
}

/// `close h`: the protocol close (the peer sees it at once), keeping the
/// memory mapped until the ring bigarray is finalised ([`crate::ring`]).
/// Idempotent.
#[ocaml::func]
pub fn vchan_rs_close(h: ocaml::Int) -> Result<(), CamlErr> {
    // SAFETY: `h` is a live handle: it is freed only when its ring
    // bigarray is finalised, and the OCaml record that passes `h` holds
    // that bigarray.
    let h = unsafe { handle(h) };
    let (memory, r) = h.ep.close_retaining_memory();
    if memory.is_some() {
        h.retained = memory;
    }
    r.map_err(|e| caml_err(&e))
}

/// `last_error h`: the error behind the last `E_ERROR` of a data-path call.
#[ocaml::func]
pub fn vchan_rs_last_error(h: ocaml::Int) -> CamlErr {
    // SAFETY: `h` is a live handle (see `vchan_rs_close`).
    let h = unsafe { handle(h) };
    h.last_error
        .take()
        .unwrap_or_else(|| (Kind::System as isize, "no error".into()))
}

/// `is_server h`.
#[ocaml::func]
pub fn vchan_rs_is_server(h: ocaml::Int) -> bool {
    // SAFETY: `h` is a live handle (see `vchan_rs_close`).
    let h = unsafe { handle(h) };
    h.ep.role() == vchan::vchan_core::Role::Server
}

/// `unix_dir ()`: the unix backend's rendezvous directory, as
/// [`vchan::backend::unix::root_dir`] resolves it (for messages: bytes
/// that are not UTF-8 are replaced).
#[ocaml::func]
pub fn vchan_rs_unix_dir() -> String {
    vchan::backend::unix::root_dir()
        .to_string_lossy()
        .into_owned()
}
