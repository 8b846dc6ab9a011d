//! The names of a rendezvous, as mirage/ocaml-vchan (and Xen) define them:
//! port names and domain ids. Both the std crate and the freestanding
//! archive (for OCaml's `Port.of_string`) validate with these.

/// First domain id Xen reserves (`DOMID_FIRST_RESERVED`); valid ids are below.
pub const DOMID_FIRST_RESERVED: u32 = 0x7ff0;

/// Is `id` a domain id (below [`DOMID_FIRST_RESERVED`])?
pub const fn valid_domid(id: u32) -> bool {
    id < DOMID_FIRST_RESERVED
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
