//! Rendezvous nodes in the store: who owns one, whether its server is
//! alive, removing one.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

use super::root::is_domid_name;
use super::{fsobj, store};
use crate::backend::{EVENT_CHANNEL_LEAF, RENDEZVOUS_LEAVES};

/// Remove the rendezvous node `name` of `dir` (or a temporary one): its
/// two leaves, then the directory if that left it empty. Nothing else in
/// it is touched.
pub(super) fn remove_rendezvous_at(dir: RawFd, name: &str) {
    if let Ok(node) = fsobj::open_subdir(dir, name) {
        for leaf in RENDEZVOUS_LEAVES {
            if let Ok(Some(_)) = fsobj::open_reg_at(node.as_raw_fd(), leaf) {
                let _ = fsobj::unlink_at(node.as_raw_fd(), leaf, 0);
            }
        }
    }
    fsobj::prune_at(dir, name);
}

/// Owner domain of a store node below `local/domain/<d>/` (components
/// below `store/`).
pub(super) fn owner_of(at: &[String]) -> Option<u32> {
    match at {
        [l, d, n, _, ..] if l == "local" && d == "domain" && is_domid_name(n) => n.parse().ok(),
        _ => None,
    }
}

/// Largest value a store leaf of ours holds, read back.
pub(super) const LEAF_MAX: usize = 64;

/// Read the number in leaf `name` of store node `node`.
pub(super) fn read_u32_leaf(node: RawFd, name: &str) -> io::Result<Option<u32>> {
    Ok(fsobj::read_small_at(node, name, LEAF_MAX)?
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|s| s.trim().parse::<u32>().ok()))
}

/// Is the server (domain `owner`) behind the rendezvous node `node` alive?
pub(super) fn rendezvous_live_at(root: RawFd, owner: u32, node: RawFd) -> io::Result<bool> {
    let Some(port) = read_u32_leaf(node, EVENT_CHANNEL_LEAF)? else {
        return Ok(false);
    };
    let Ok(evtchn) = fsobj::open_subdir(root, "evtchn") else {
        return Ok(false);
    };
    let Ok(dom) = fsobj::open_subdir(evtchn.as_raw_fd(), &owner.to_string()) else {
        return Ok(false);
    };
    fsobj::is_live_at(dom.as_raw_fd(), &port.to_string())
}

/// Owner domain of the store node at xenstore path `xs_path`.
fn owner_of_path(xs_path: &str) -> Option<u32> {
    let comps: Vec<String> = xs_path
        .trim_start_matches('/')
        .split('/')
        .map(str::to_owned)
        .collect();
    owner_of(&comps)
}

/// Is the server behind the vchan rendezvous directory at `xs_path` alive?
/// (True for a node outside `/local/domain/<d>/`: nothing says.)
pub(super) fn rendezvous_live(root: &Path, xs_path: &str) -> io::Result<bool> {
    let Some(owner) = owner_of_path(xs_path) else {
        return Ok(true);
    };
    let Some(node) = store::open_node(root, xs_path)? else {
        return Ok(false);
    };
    let rootfd = fsobj::open_dir(root)?;
    rendezvous_live_at(rootfd.as_raw_fd(), owner, node.as_raw_fd())
}
