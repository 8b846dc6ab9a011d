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

pub use backend::choice::{backend_named, default_backend, ENV_BACKEND};
pub use backend::unix::UnixBackend;
pub use backend::xen::XenBackend;
pub use backend::Backend;
pub use endpoint::{Endpoint, State};
pub use error::{Error, Result};
pub use port::{rendezvous_path, DomId, Port};
pub use vchan_core;
pub use vchan_core::name::{DOMID_FIRST_RESERVED, MAX_PORT_LEN};
pub use vchan_core::Fences;
