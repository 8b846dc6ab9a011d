//! A xenstore stand-in: a directory tree under `store/` with xenstore's
//! paths. A node's value is a file; a node with children is a directory.

use std::io;
use std::path::{Path, PathBuf};

use super::fsobj;

/// Where xenstore path `xs_path` (absolute, `/`-separated) lives on disk.
/// Rejects empty, `.` and `..` components and characters xenstore does not
/// allow.
pub fn node_path(root: &Path, xs_path: &str) -> io::Result<PathBuf> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid xenstore path {xs_path:?}"),
        )
    };
    let rel = xs_path.strip_prefix('/').ok_or_else(bad)?;
    let mut p = root.join("store");
    for comp in rel.split('/') {
        let ok = !comp.is_empty()
            && comp != "."
            && comp != ".."
            && !comp.starts_with(fsobj::TMP_PREFIX)
            && comp
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-/_@.".contains(&b));
        if !ok {
            return Err(bad());
        }
        p.push(comp);
    }
    Ok(p)
}

/// The parent directory of node `xs_path`, opened without following any
/// symlink below the root (made, 0700, if `make`), and the node's name;
/// `Ok(None)` if it does not exist.
fn parent_of(
    root: &Path,
    xs_path: &str,
    make: bool,
) -> io::Result<Option<(std::os::fd::OwnedFd, String)>> {
    let comps = components(root, xs_path)?;
    let Some((last, parents)) = comps.split_last() else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    let mut rel: Vec<&str> = vec!["store"];
    rel.extend(parents.iter().map(String::as_str));
    let dir = if make {
        Some(fsobj::open_or_make_below(root, &rel)?)
    } else {
        fsobj::open_below(root, &rel)?
    };
    Ok(dir.map(|d| (d, last.clone())))
}

/// Write `value` at `xs_path`, atomically (temporary file, then rename),
/// through directory descriptors.
pub fn write(root: &Path, xs_path: &str, value: &[u8]) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    for attempt in 0.. {
        let Some((dir, last)) = parent_of(root, xs_path, true)? else {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        };
        let d = dir.as_raw_fd();
        let tmp = fsobj::tmp_basename();
        let res =
            fsobj::write_new_at(d, &tmp, value).and_then(|()| fsobj::rename_at(d, &tmp, &last));
        match res {
            Ok(()) => return Ok(()),
            // A concurrent sweep pruned the (empty) directory: again.
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < 8 => continue,
            Err(e) => {
                let _ = fsobj::unlink_at(d, &tmp, 0);
                return Err(e);
            }
        }
    }
    unreachable!()
}

/// Largest value a node holds (xenstore's payload limit).
pub const VALUE_MAX: usize = 4096;

/// Read the value at `xs_path`; `None` if there is no such node. Never
/// follows a symlink below the root nor blocks (a FIFO planted in the tree
/// is an error).
pub fn read(root: &Path, xs_path: &str) -> io::Result<Option<Vec<u8>>> {
    use std::os::fd::AsRawFd;
    let Some((dir, last)) = parent_of(root, xs_path, false)? else {
        return Ok(None);
    };
    let bad = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("store node {xs_path}: {why}"),
        )
    };
    let c = std::ffi::CString::new(last.as_str()).map_err(|_| bad("bad name"))?;
    match fsobj::stat_at(dir.as_raw_fd(), &c) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
        // A node with children but no value reads as empty, as in xenstore.
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => return Ok(Some(Vec::new())),
        Ok(st) if !fsobj::is_reg(&st) => return Err(bad("not a value")),
        Ok(_) => {}
    }
    match fsobj::read_small_at(dir.as_raw_fd(), &last, VALUE_MAX) {
        Ok(Some(v)) => Ok(Some(v)),
        Ok(None) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Err(bad("value too long")),
        Err(e) => Err(e),
    }
}

/// The children of `xs_path`; `None` if there is no such node.
pub fn directory(root: &Path, xs_path: &str) -> io::Result<Option<Vec<String>>> {
    use std::os::fd::AsRawFd;
    let Some(node) = open_node(root, xs_path)? else {
        // A value (a file) has no children; a missing node is None.
        return Ok(read(root, xs_path)?.map(|_| Vec::new()));
    };
    let mut names: Vec<String> = fsobj::list(node.as_raw_fd())?
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| !n.starts_with(fsobj::TMP_PREFIX))
        .collect();
    names.sort();
    Ok(Some(names))
}

/// The components of `xs_path` below `store/` (validated by
/// [`node_path`]).
fn components(root: &Path, xs_path: &str) -> io::Result<Vec<String>> {
    node_path(root, xs_path)?;
    Ok(xs_path[1..].split('/').map(str::to_owned).collect())
}

/// Open the directory of node `xs_path` without following any symlink
/// below the root; `Ok(None)` if there is no such directory.
pub(crate) fn open_node(root: &Path, xs_path: &str) -> io::Result<Option<std::os::fd::OwnedFd>> {
    let comps = components(root, xs_path)?;
    let mut rel: Vec<&str> = vec!["store"];
    rel.extend(comps.iter().map(String::as_str));
    fsobj::open_below(root, &rel)
}

/// Remove `xs_path` and everything below it, then prune empty parents.
/// Goes through directory descriptors: a symlink planted in the store is
/// removed if it is the node or below it, never followed.
pub fn rm(root: &Path, xs_path: &str) -> io::Result<()> {
    rm_tree(root, xs_path, true)
}

/// [`rm`] without the pruning, as xenstored does: the parents stay, even
/// empty (xensim's `xs_rm`).
pub fn rm_node(root: &Path, xs_path: &str) -> io::Result<()> {
    rm_tree(root, xs_path, false)
}

fn rm_tree(root: &Path, xs_path: &str, prune: bool) -> io::Result<()> {
    let comps = components(root, xs_path)?;
    let Some((last, parents)) = comps.split_last() else {
        return Ok(());
    };
    let mut rel: Vec<&str> = vec!["store"];
    rel.extend(parents.iter().map(String::as_str));
    let Some(parent) = fsobj::open_below(root, &rel)? else {
        return Ok(());
    };
    fsobj::remove_tree_at(std::os::fd::AsRawFd::as_raw_fd(&parent), last)?;
    drop(parent);
    // Prune the parents that became empty, deepest first.
    while prune && rel.len() > 1 {
        let name = rel.pop().unwrap_or_default();
        let Some(dir) = fsobj::open_below(root, &rel)? else {
            break;
        };
        if fsobj::unlink_at(
            std::os::fd::AsRawFd::as_raw_fd(&dir),
            name,
            libc::AT_REMOVEDIR,
        )
        .is_err()
        {
            break;
        }
    }
    Ok(())
}

/// Create directory node `xs_path` holding the given leaves, atomically:
/// built under a temporary name, then renamed into place, through
/// directory descriptors. Fails with `AlreadyExists` if the node exists.
pub fn create_dir_with(root: &Path, xs_path: &str, leaves: &[(&str, &[u8])]) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    for attempt in 0.. {
        let Some((dir, last)) = parent_of(root, xs_path, true)? else {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        };
        let d = dir.as_raw_fd();
        let tmp = fsobj::tmp_basename();
        let res = (|| {
            fsobj::mkdir_at(d, &tmp)?;
            let t = fsobj::open_subdir(d, &tmp)?;
            for (name, value) in leaves {
                fsobj::write_new_at(t.as_raw_fd(), name, value)?;
            }
            // rename(2) onto an existing non-empty directory fails, onto
            // an empty one succeeds: look first.
            let c = std::ffi::CString::new(last.as_str())
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
            if fsobj::stat_at(d, &c).is_ok() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            fsobj::rename_at(d, &tmp, &last).map_err(|e| {
                if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST)) {
                    io::Error::from(io::ErrorKind::AlreadyExists)
                } else {
                    e
                }
            })
        })();
        if res.is_err() {
            let _ = fsobj::remove_tree_at(d, &tmp);
        }
        match res {
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < 8 => continue,
            other => return other,
        }
    }
    unreachable!()
}
