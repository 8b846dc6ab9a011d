//! The names of a rendezvous, as mirage/ocaml-vchan (and Xen) define them:
//! port names and domain ids. Both the std crate and the freestanding
//! archive (for OCaml's `Port.of_string`) validate with these.

/// First domain id Xen reserves (`DOMID_FIRST_RESERVED`); valid ids are below.
pub const DOMID_FIRST_RESERVED: u32 = 0x7ff0;

/// Is `id` a domain id (below [`DOMID_FIRST_RESERVED`])?
pub const fn valid_domid(id: u32) -> bool {
    id < DOMID_FIRST_RESERVED
}

/// Parse a domain id written as it is everywhere in vchan-rs (command
/// lines, `VCHAN_DOMID`, OCaml's `Domid.of_string`): one or more ASCII
/// decimal digits and nothing else (no sign, blank, `0x` or `_`), for a
/// value that [`valid_domid`] accepts.
pub fn parse_domid(s: &[u8]) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u32, |acc, &b| {
        let digit = u32::from(b.wrapping_sub(b'0'));
        let next = acc * 10 + digit;
        (digit < 10 && valid_domid(next)).then_some(next)
    })
}

/// Longest port name: a port is a file name in the unix backend's store
/// (`NAME_MAX`), so longer ones are refused wherever names are parsed.
pub const MAX_PORT_LEN: usize = 255;

/// Is `name` a vchan port name: 1 to [`MAX_PORT_LEN`] of `[a-zA-Z0-9_-]`
/// (ocaml-vchan's `Port.of_string` rule, bounded)?
pub fn valid_port(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_PORT_LEN
        && name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domids_parse_as_decimal_digits_only() {
        for (s, d) in [("0", 0), ("1", 1), ("007", 7), ("32751", 32751)] {
            assert_eq!(parse_domid(s.as_bytes()), Some(d), "{s}");
        }
        let bad = [
            "",
            " 1",
            "1 ",
            "1\n",
            "+1",
            "-1",
            "0x1",
            "1_0",
            "1.0",
            "32752",
            "99999999999",
            "1\0",
        ];
        for s in bad {
            assert_eq!(parse_domid(s.as_bytes()), None, "{s:?}");
        }
    }
}
