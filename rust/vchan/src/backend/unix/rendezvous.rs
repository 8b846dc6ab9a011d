//! Rendezvous nodes in the store: publishing and looking one up (the
//! backend's [`publish`] and [`lookup`], each read top to bottom), who owns
//! one, whether its server is alive, removing one.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

use super::root::is_domid_name;
use super::{fsobj, store};
use crate::backend::Rendezvous;
use crate::backend::{
    BARRIER_LEAF, BARRIER_VALUE, EVENT_CHANNEL_LEAF, RENDEZVOUS_LEAVES, RING_REF_LEAF,
};
use crate::error::{Error, Result};

/// Publish `rv` at xenstore path `path`: its leaves appear at once (one
/// rename). A node already there is replaced if its server is dead; a live
/// one is [`Error::AddrInUse`]. The caller holds the directory's
/// [`RootLock`](super::RootLock).
pub(super) fn publish(root: &Path, path: &str, rv: Rendezvous) -> Result<()> {
    let ring_ref = rv.ring_ref.to_string();
    let port = rv.event_channel.to_string();
    let mut leaves: Vec<(&str, &[u8])> = vec![
        (RING_REF_LEAF, ring_ref.as_bytes()),
        (EVENT_CHANNEL_LEAF, port.as_bytes()),
    ];
    if rv.barrier {
        leaves.push((BARRIER_LEAF, BARRIER_VALUE.as_bytes()));
    }
    for _ in 0..2 {
        match store::create_dir_with(root, path, &leaves) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if rendezvous_live(root, path)? {
                    return Err(Error::AddrInUse);
                }
                // A stale rendezvous of a dead server: replace it.
                if let Some((parent, name)) = path.rsplit_once('/') {
                    if let Ok(Some(p)) = store::open_node(root, parent) {
                        remove_rendezvous_at(p.as_raw_fd(), name);
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::AddrInUse)
}

/// The rendezvous at xenstore path `path`, if both its numbers are there
/// (and not 0) and its server is alive. Each leaf is read once: the
/// server judged alive is the one at the port returned.
pub(super) fn lookup(root: &Path, path: &str) -> Result<Option<Rendezvous>> {
    let Some(node) = store::open_node(root, path)? else {
        return Ok(None);
    };
    let field = |name: &str| -> Result<Option<u32>> {
        Ok(read_u32_leaf(node.as_raw_fd(), name)?.filter(|v| *v != 0))
    };
    let (Some(ring_ref), Some(event_channel)) = (field(RING_REF_LEAF)?, field(EVENT_CHANNEL_LEAF)?)
    else {
        return Ok(None);
    };
    if let Some(owner) = owner_of_path(path) {
        let rootfd = fsobj::open_dir(root)?;
        if !port_live(rootfd.as_raw_fd(), owner, event_channel)? {
            return Ok(None);
        }
    }
    let barrier = fsobj::read_small_at(node.as_raw_fd(), BARRIER_LEAF, LEAF_MAX)?
        .is_some_and(|v| v.trim_ascii() == BARRIER_VALUE.as_bytes());
    Ok(Some(Rendezvous {
        ring_ref,
        event_channel,
        barrier,
    }))
}

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
const LEAF_MAX: usize = 64;

/// Read the number in leaf `name` of store node `node`.
fn read_u32_leaf(node: RawFd, name: &str) -> io::Result<Option<u32>> {
    Ok(fsobj::read_small_at(node, name, LEAF_MAX)?
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|s| s.trim().parse::<u32>().ok()))
}

/// Is the server (domain `owner`) behind the rendezvous node `node` alive?
pub(super) fn rendezvous_live_at(root: RawFd, owner: u32, node: RawFd) -> io::Result<bool> {
    let Some(port) = read_u32_leaf(node, EVENT_CHANNEL_LEAF)? else {
        return Ok(false);
    };
    port_live(root, owner, port)
}

/// Is event channel port `port` of domain `owner` held by a live process?
fn port_live(root: RawFd, owner: u32, port: u32) -> io::Result<bool> {
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
fn rendezvous_live(root: &Path, xs_path: &str) -> io::Result<bool> {
    let Some(owner) = owner_of_path(xs_path) else {
        return Ok(true);
    };
    let Some(node) = store::open_node(root, xs_path)? else {
        return Ok(false);
    };
    let rootfd = fsobj::open_dir(root)?;
    rendezvous_live_at(rootfd.as_raw_fd(), owner, node.as_raw_fd())
}
