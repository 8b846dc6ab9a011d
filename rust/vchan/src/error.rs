//! Errors of vchan endpoints.

use std::fmt;
use std::io;

use vchan_core::name::{DOMID_FIRST_RESERVED, MAX_PORT_LEN};

/// The largest domain id, as error messages name it.
pub(crate) const DOMID_MAX: u32 = DOMID_FIRST_RESERVED - 1;

/// What can go wrong with a vchan endpoint.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A port name that is not `[a-zA-Z0-9_-]+`.
    InvalidPort(String),
    /// A domain id outside `0..=32751` (Xen's `DOMID_FIRST_RESERVED`).
    InvalidDomid(u32),
    /// A domain id that is not a number in `0..=32751` (as given).
    BadDomid(String),
    /// An environment variable with a value we cannot use.
    InvalidEnv {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// The unix backend's rendezvous directory cannot be used.
    UnixDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why, and what to do.
        why: String,
    },
    /// The ring core refused (bad ring size, packet too large, or the peer
    /// broke the protocol).
    Core(vchan_core::Error),
    /// Another client is already connected to this server.
    Busy,
    /// A live server already serves this domain and port.
    AddrInUse,
    /// The timeout ran out: for a client ([`Role::Client`](vchan_core::Role)),
    /// before its server appeared; for a server, before its client connected.
    Timeout(vchan_core::Role),
    /// The channel is closed (by us, or by the peer for writes).
    Closed,
    /// The Xen libraries could not be loaded or a function is missing.
    BackendUnavailable(String),
    /// A system call failed.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidPort(p) => write!(
                f,
                "invalid vchan port {p:?}: expected 1 to {MAX_PORT_LEN} of [a-zA-Z0-9_-]"
            ),
            Error::InvalidDomid(d) => write!(f, "invalid domain id {d}: expected 0..={DOMID_MAX}"),
            Error::BadDomid(s) => {
                write!(
                    f,
                    "invalid domain id {s:?}: expected a number in 0..={DOMID_MAX}"
                )
            }
            Error::InvalidEnv { var, value, why } => write!(f, "{var}={value:?}: {why}"),
            Error::UnixDir { path, why } => {
                write!(f, "vchan rendezvous directory {}: {why}", path.display())
            }
            Error::Core(e) => e.fmt(f),
            Error::Busy => f.write_str("vchan port busy: another client is already connected"),
            Error::AddrInUse => f.write_str(
                "vchan port already served for this client domain (by a live server, or, \
                 under Xen, by an entry not provably stale: xenstore-rm it if it is)",
            ),
            Error::Timeout(vchan_core::Role::Client) => {
                f.write_str("timed out waiting for the vchan server")
            }
            Error::Timeout(vchan_core::Role::Server) => {
                f.write_str("timed out waiting for a vchan client to connect")
            }
            Error::Closed => f.write_str("vchan closed"),
            Error::BackendUnavailable(why) => write!(f, "vchan backend unavailable: {why}"),
            Error::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Core(e) => Some(e),
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<vchan_core::Error> for Error {
    fn from(e: vchan_core::Error) -> Self {
        Error::Core(e)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match &e {
            Error::Io(inner) => return io::Error::new(inner.kind(), e),
            Error::InvalidPort(_)
            | Error::InvalidDomid(_)
            | Error::BadDomid(_)
            | Error::InvalidEnv { .. } => io::ErrorKind::InvalidInput,
            Error::UnixDir { .. } => io::ErrorKind::PermissionDenied,
            Error::Core(c) if c.is_protocol_violation() => io::ErrorKind::InvalidData,
            Error::Core(_) => io::ErrorKind::InvalidInput,
            Error::Busy => io::ErrorKind::ResourceBusy,
            Error::AddrInUse => io::ErrorKind::AddrInUse,
            Error::Timeout(_) => io::ErrorKind::TimedOut,
            Error::Closed => io::ErrorKind::BrokenPipe,
            Error::BackendUnavailable(_) => io::ErrorKind::Unsupported,
        };
        io::Error::new(kind, e)
    }
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::Error;
    use vchan_core::Role;

    #[test]
    fn timeout_names_what_was_awaited() {
        let client = Error::Timeout(Role::Client).to_string();
        let server = Error::Timeout(Role::Server).to_string();
        assert!(client.contains("vchan server"), "{client}");
        assert!(server.contains("vchan client"), "{server}");
        assert_eq!(
            std::io::Error::from(Error::Timeout(Role::Server)).kind(),
            std::io::ErrorKind::TimedOut
        );
    }
}
