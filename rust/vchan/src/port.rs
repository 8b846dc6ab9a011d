//! Port names, domain ids and the rendezvous path convention of
//! mirage/ocaml-vchan.

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// A Xen domain id, range-checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomId(u16);

impl DomId {
    /// Check a domain id.
    pub fn new(id: u32) -> Result<DomId> {
        if vchan_core::name::valid_domid(id) {
            Ok(DomId(id as u16))
        } else {
            Err(Error::InvalidDomid(id))
        }
    }

    /// The numeric id.
    pub fn get(self) -> u32 {
        u32::from(self.0)
    }
}

impl fmt::Display for DomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for DomId {
    type Err = Error;
    fn from_str(s: &str) -> Result<DomId> {
        vchan_core::name::parse_domid(s.as_bytes())
            .map(|d| DomId(d as u16))
            .ok_or_else(|| Error::BadDomid(s.to_owned()))
    }
}

/// A vchan port name: 1 to [`MAX_PORT_LEN`](crate::MAX_PORT_LEN) of `[a-zA-Z0-9_-]`, the
/// characters ocaml-vchan's `Port.of_string` accepts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Port(String);

impl Port {
    /// Validate a port name.
    pub fn new(name: &str) -> Result<Port> {
        if vchan_core::name::valid_port(name.as_bytes()) {
            Ok(Port(name.to_owned()))
        } else {
            Err(Error::InvalidPort(name.to_owned()))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Port {
    type Err = Error;
    fn from_str(s: &str) -> Result<Port> {
        Port::new(s)
    }
}

/// The xenstore directory where a server in domain `server` publishes a
/// vchan for client domain `client` on `port`:
/// `/local/domain/<server>/data/vchan/<client>/<port>`.
pub fn rendezvous_path(server: DomId, client: DomId, port: &Port) -> String {
    format!("/local/domain/{server}/data/vchan/{client}/{port}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use vchan_core::name::MAX_PORT_LEN;

    #[test]
    fn ports() {
        for ok in ["a", "foo", "A-b_9", "0"] {
            assert_eq!(Port::new(ok).unwrap().as_str(), ok);
        }
        let long = "p".repeat(MAX_PORT_LEN + 1);
        assert!(Port::new(&"p".repeat(MAX_PORT_LEN)).is_ok());
        for bad in ["", "a/b", "a b", "é", "..", "a.b", " a", "a\n", &long] {
            assert!(
                matches!(Port::new(bad), Err(Error::InvalidPort(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn domids_and_path() {
        assert!(DomId::new(0x7fef).is_ok());
        assert!(DomId::new(0x7ff0).is_err());
        for bad in [
            "x",
            "-1",
            "+1",
            "32752",
            "4294967296",
            "",
            " 1",
            "1\n",
            "0x1",
            "1_0",
        ] {
            let e = bad.parse::<DomId>().unwrap_err();
            assert!(matches!(&e, Error::BadDomid(s) if s == bad), "{bad}: {e}");
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
        let p = rendezvous_path(
            DomId::new(0).unwrap(),
            DomId::new(7).unwrap(),
            &Port::new("p").unwrap(),
        );
        assert_eq!(p, "/local/domain/0/data/vchan/7/p");
    }
}
