//! The sweep: removing what dead processes left below the rendezvous
//! directory.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::time::Duration;

use super::rendezvous::{owner_of, remove_rendezvous_at, rendezvous_live_at};
use super::root::{is_domid_name, marked, RootLock, MARKER, ROOT_LOCK_WAIT};
use super::{evtchn, fsobj};
use crate::backend::EVENT_CHANNEL_LEAF;

/// Is `name` a share id as we write them?
fn is_share_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 10 && name.bytes().all(|b| b.is_ascii_digit())
}

/// Remove every object left behind by dead processes under `root`, and the
/// directories that become empty. Only a marked root (see [`MARKER`]) is
/// swept; only entries with the names and types we create are judged, and
/// anything else is skipped (and stays): an unexpected entry never stops
/// the sweep. Nothing is reached through a symlink.
pub fn sweep(root: &Path) -> io::Result<()> {
    sweep_within(root, ROOT_LOCK_WAIT)
}

pub(super) fn sweep_within(root: &Path, wait: Duration) -> io::Result<()> {
    let _lock = RootLock::acquire_within(root, wait)?;
    let dir = fsobj::open_dir(root)?;
    let rfd = dir.as_raw_fd();
    if !marked(rfd)? {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} has no {MARKER}: not swept", root.display()),
        ));
    }
    for kind in ["gnt", "evtchn"] {
        let Ok(top) = fsobj::open_subdir(rfd, kind) else {
            continue;
        };
        for (name, k) in fsobj::list(top.as_raw_fd()).unwrap_or_default() {
            if k != fsobj::Kind::Dir || !is_domid_name(&name) {
                fsobj::skipped(kind, &name);
                continue;
            }
            let Ok(dom) = fsobj::open_subdir(top.as_raw_fd(), &name) else {
                continue;
            };
            if kind == "evtchn" {
                evtchn::sweep_dir(dom.as_raw_fd());
            } else {
                sweep_gnt_dir(dom.as_raw_fd());
            }
            fsobj::prune_at(top.as_raw_fd(), &name);
        }
        fsobj::prune_at(rfd, kind);
    }
    if let Ok(store) = fsobj::open_subdir(rfd, "store") {
        sweep_store(rfd, store.as_raw_fd(), &mut Vec::new());
        fsobj::prune_at(rfd, "store");
    }
    Ok(())
}

/// Reap the stale shares of one domain directory of `gnt/`.
fn sweep_gnt_dir(dir: RawFd) {
    for (name, kind) in fsobj::list(dir).unwrap_or_default() {
        if kind == fsobj::Kind::File
            && (is_share_name(&name) || name.starts_with(fsobj::TMP_PREFIX))
        {
            let _ = fsobj::reap_at(dir, &name);
        } else {
            fsobj::skipped("gnt/<domid>", &name);
        }
    }
}

/// Is the process that created temporary entry `name` (`.tmp-<pid>-<n>`)
/// gone? False for names not of that form.
fn tmp_owner_dead(name: &str) -> bool {
    let Some((pid, n)) = name
        .strip_prefix(fsobj::TMP_PREFIX)
        .and_then(|r| r.split_once('-'))
    else {
        return false;
    };
    let (Ok(pid), Ok(_)) = (pid.parse::<libc::pid_t>(), n.parse::<u64>()) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks for the process.
    let rc = unsafe { libc::kill(pid, 0) };
    rc != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// Deepest store node the sweep visits (`local/domain/<d>/data/vchan/<c>/<port>`
/// is 7 deep).
const STORE_SWEEP_DEPTH: usize = 12;

/// Sweep store directory `dir`, at path `at` below `store/`: temporary
/// entries of dead processes, rendezvous of dead servers, empty
/// directories.
fn sweep_store(root: RawFd, dir: RawFd, at: &mut Vec<String>) {
    if at.len() >= STORE_SWEEP_DEPTH {
        return;
    }
    for (name, kind) in fsobj::list(dir).unwrap_or_default() {
        if name.starts_with(fsobj::TMP_PREFIX) {
            if tmp_owner_dead(&name) {
                match kind {
                    fsobj::Kind::File => {
                        let _ = fsobj::unlink_at(dir, &name, 0);
                    }
                    fsobj::Kind::Dir => remove_rendezvous_at(dir, &name),
                    _ => {}
                }
            }
            continue;
        }
        if kind != fsobj::Kind::Dir {
            if kind != fsobj::Kind::File {
                fsobj::skipped("store", &name);
            }
            continue;
        }
        let Ok(sub) = fsobj::open_subdir(dir, &name) else {
            continue;
        };
        at.push(name);
        let owner = owner_of(at);
        let has_port = matches!(
            fsobj::open_reg_at(sub.as_raw_fd(), EVENT_CHANNEL_LEAF),
            Ok(Some(_))
        );
        let name = at.last().cloned().unwrap_or_default();
        if let (Some(owner), true) = (owner, has_port) {
            if matches!(rendezvous_live_at(root, owner, sub.as_raw_fd()), Ok(false)) {
                drop(sub);
                remove_rendezvous_at(dir, &name);
                at.pop();
                continue;
            }
        }
        sweep_store(root, sub.as_raw_fd(), at);
        drop(sub);
        fsobj::prune_at(dir, &name);
        at.pop();
    }
}
