//! Which backend: by name, or as `$VCHAN_BACKEND` says.

use std::sync::Arc;

use super::unix::UnixBackend;
use super::xen::XenBackend;
use super::Backend;
use crate::error::{Error, Result};

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
