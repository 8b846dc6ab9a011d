//! Xen vchan endpoints, byte-compatible with Xen's `libxenvchan` and
//! mirage/ocaml-vchan, over two backends:
//!
//! - [`backend::unix`]: no hypervisor — two processes of one host share
//!   memory files, signal each other through sockets and meet in a
//!   directory that mirrors xenstore. The default.
//! - [`backend::xen`]: Xen's grant tables, event channels and xenstore,
//!   through Xen's libraries loaded at run time: select it with
//!   `VCHAN_BACKEND=xen`.
//!
//! ```no_run
//! use vchan::{DomId, Endpoint, Port};
//! # fn main() -> vchan::Result<()> {
//! let port = Port::new("demo")?;
//! // In domain 0: serve domain 1.
//! let mut server = Endpoint::listen(DomId::new(1)?, &port, 65536, 65536)?;
//! // In domain 1 (another process, VCHAN_DOMID=1):
//! let mut client = Endpoint::connect(DomId::new(0)?, &port, None)?;
//! client.write_all(b"hello")?;
//! let mut buf = [0; 5];
//! server.read(&mut buf)?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod backend;
mod endpoint;
mod error;
mod port;
mod spin;

use std::sync::Arc;

pub use backend::unix::UnixBackend;
pub use backend::xen::XenBackend;
pub use backend::Backend;
pub use endpoint::{Endpoint, RetainedMemory, State};
pub use error::{Error, Result};
pub use port::{rendezvous_path, DomId, Port, DOMID_FIRST_RESERVED, MAX_PORT_LEN};
pub use vchan_core;
pub use vchan_core::Fences;

/// Environment variable choosing the backend: `unix` (default) or `xen`.
pub const ENV_BACKEND: &str = "VCHAN_BACKEND";

/// The backend named by `name` (`"unix"` or `"xen"`).
pub fn backend_named(name: &str) -> Result<Arc<dyn Backend>> {
    match name {
        "unix" | "" => Ok(Arc::new(UnixBackend::from_env()?)),
        "xen" => Ok(Arc::new(XenBackend::open()?)),
        other => Err(Error::BackendUnavailable(format!(
            "unknown backend {other:?} (expected unix or xen)"
        ))),
    }
}

/// The backend chosen by `$VCHAN_BACKEND` (default: unix).
pub fn default_backend() -> Result<Arc<dyn Backend>> {
    backend_named(std::env::var(ENV_BACKEND).as_deref().unwrap_or("unix"))
}
