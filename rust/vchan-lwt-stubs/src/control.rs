//! The backend's facts for the OCaml side: this process's domain id and
//! the unix backend's rendezvous directory. Errors come back as an OCaml
//! `(int, int * string) result` (see [`crate::Kind`]) rather than as
//! exceptions raised from Rust, so no Rust frame is ever unwound by OCaml.

use crate::plumbing::backend;
use crate::{caml_err, CamlErr};

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

/// `unix_dir ()`: the unix backend's rendezvous directory, as
/// [`vchan::backend::unix::root_dir`] resolves it (for messages: bytes
/// that are not UTF-8 are replaced).
#[ocaml::func]
pub fn vchan_rs_unix_dir() -> String {
    vchan::backend::unix::root_dir()
        .to_string_lossy()
        .into_owned()
}
