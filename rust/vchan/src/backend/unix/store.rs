//! A xenstore stand-in: a directory tree under `store/` with xenstore's
//! paths. A node's value is a file; a node with children is a directory.

use std::fs;
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

/// Create a new file (mode 0600) holding `value`.
fn write_new(path: &Path, value: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    io::Write::write_all(&mut f, value)
}

/// Write `value` at `xs_path`, atomically (temporary file, then rename).
pub fn write(root: &Path, xs_path: &str, value: &[u8]) -> io::Result<()> {
    let path = node_path(root, xs_path)?;
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    for attempt in 0.. {
        fsobj::mkdir_p(dir)?;
        let tmp = fsobj::tmp_name(dir);
        let res = write_new(&tmp, value).and_then(|()| fs::rename(&tmp, &path));
        match res {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < 8 => continue,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        }
    }
    unreachable!()
}

/// Largest value a node holds (xenstore's payload limit).
pub const VALUE_MAX: usize = 4096;

/// Read the value at `xs_path`; `None` if there is no such node. Never
/// follows a symlink nor blocks (a FIFO planted in the tree is an error).
pub fn read(root: &Path, xs_path: &str) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let path = node_path(root, xs_path)?;
    let f = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(fsobj::SAFE_OPEN)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = f.metadata()?;
    if meta.is_dir() {
        // A node with children but no value reads as empty, as in xenstore.
        return Ok(Some(Vec::new()));
    }
    let bad = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("store node {xs_path}: {why}"),
        )
    };
    if !meta.is_file() {
        return Err(bad("not a value"));
    }
    let mut v = Vec::new();
    f.take(VALUE_MAX as u64 + 1).read_to_end(&mut v)?;
    if v.len() > VALUE_MAX {
        return Err(bad("value too long"));
    }
    Ok(Some(v))
}

/// The children of `xs_path`; `None` if there is no such node.
pub fn directory(root: &Path, xs_path: &str) -> io::Result<Option<Vec<String>>> {
    let rd = match fs::read_dir(node_path(root, xs_path)?) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return Ok(Some(Vec::new())),
        Err(e) => return Err(e),
    };
    let mut names: Vec<String> = rd
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
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
    while rel.len() > 1 {
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
/// built under a temporary name, then renamed into place. Fails with
/// `AlreadyExists` if the node exists.
pub fn create_dir_with(root: &Path, xs_path: &str, leaves: &[(&str, &[u8])]) -> io::Result<()> {
    let path = node_path(root, xs_path)?;
    let parent = path
        .parent()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    for attempt in 0.. {
        fsobj::mkdir_p(parent)?;
        let tmp = fsobj::tmp_name(parent);
        let res = (|| {
            fsobj::mkdir_p(&tmp)?;
            for (name, value) in leaves {
                write_new(&tmp.join(name), value)?;
            }
            // rename(2) onto an existing non-empty directory fails.
            if path.exists() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            fs::rename(&tmp, &path).map_err(|e| {
                if e.raw_os_error() == Some(libc::ENOTEMPTY) {
                    io::Error::from(io::ErrorKind::AlreadyExists)
                } else {
                    e
                }
            })
        })();
        if res.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        match res {
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < 8 => continue,
            other => return other,
        }
    }
    unreachable!()
}
