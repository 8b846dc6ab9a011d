//! `vchan-xensim [--domid N] -- CMD ARGS...`: run CMD with Xen's C
//! libraries replaced by xensim (over vchan's unix backend), by
//! prepending the xensim library directory to `LD_LIBRARY_PATH`.
//!
//! The libraries: `$VCHAN_XENSIM_LIB` if set, else the first of
//! `<exe dir>/xensim` (cargo's target dir after `scripts/link-xensim.sh`),
//! `<exe dir>` (dune's build dir), `<exe dir>/../lib/vchan-rs/xensim` and
//! `<exe dir>/../lib/vchan-rs` (an installation) that holds the four
//! library names, or else `libxensim.so` alone (then the names are made as
//! links to it in a private directory, see [`linked_dir`]).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const LIBS: [&str; 4] = [
    "libxengnttab.so.1",
    "libxenevtchn.so.1",
    "libxenstore.so.4",
    "libxenctrl.so.4.17",
];

fn usage() -> ExitCode {
    eprintln!("usage: vchan-xensim [--domid N] -- CMD [ARGS...]");
    ExitCode::from(2)
}

fn has_libs(dir: &Path) -> bool {
    LIBS.iter().all(|l| dir.join(l).exists())
}

/// The shared object itself, which the four names stand for.
const OBJECT: &str = "libxensim.so";

/// A directory where the four library names are found, all one object.
fn lib_dir() -> Result<PathBuf, String> {
    if let Some(d) = std::env::var_os("VCHAN_XENSIM_LIB").filter(|d| !d.is_empty()) {
        let d = PathBuf::from(d);
        if has_libs(&d) {
            return Ok(d);
        }
        if d.join(OBJECT).is_file() {
            return linked_dir(&d.join(OBJECT));
        }
        return Err(format!(
            "VCHAN_XENSIM_LIB={} holds neither {} nor {OBJECT}",
            d.display(),
            LIBS.join(", ")
        ));
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my own path: {e}"))?;
    let exe = exe.canonicalize().unwrap_or(exe);
    let dir = exe.parent().unwrap_or(Path::new("."));
    // Cargo's target dir (link-xensim.sh), the build dir, an installation.
    let candidates = [
        dir.join("xensim"),
        dir.to_path_buf(),
        dir.join("../lib/vchan-rs/xensim"),
        dir.join("../lib/vchan-rs"),
    ];
    if let Some(c) = candidates.iter().find(|c| has_libs(c)) {
        return Ok(c.clone());
    }
    if let Some(c) = candidates.iter().find(|c| c.join(OBJECT).is_file()) {
        return linked_dir(&c.join(OBJECT));
    }
    Err(format!(
        "xensim libraries not found in {} (run scripts/link-xensim.sh, or set VCHAN_XENSIM_LIB)",
        candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// A private directory holding the four names as symbolic links to `lib`.
/// (Four copies of one file would be four objects to the dynamic loader,
/// each with its own state; links to one file are one object, because it
/// recognises a file it already loaded.) Under `$XDG_RUNTIME_DIR`, else
/// `/tmp`, in `vchan-xensim-<uid>/<device>-<inode>`.
fn linked_dir(lib: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let err = |what: &str, p: &Path, e: std::io::Error| format!("{what} {}: {e}", p.display());
    let lib = lib
        .canonicalize()
        .map_err(|e| err("cannot resolve", lib, e))?;
    let meta = std::fs::metadata(&lib).map_err(|e| err("cannot stat", &lib, e))?;
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let top = base.join(format!("vchan-xensim-{uid}"));
    let dir = top.join(format!("{}-{}", meta.dev(), meta.ino()));
    for d in [&top, &dir] {
        match std::fs::DirBuilder::new().mode(0o700).create(d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(err("cannot create", d, e)),
        }
        // Never follow a directory someone else planted.
        let m = std::fs::symlink_metadata(d).map_err(|e| err("cannot stat", d, e))?;
        if !m.is_dir() || m.uid() != uid || m.mode() & 0o022 != 0 {
            return Err(format!(
                "{} is not a private directory of ours",
                d.display()
            ));
        }
    }
    for name in LIBS {
        let link = dir.join(name);
        if std::fs::read_link(&link).is_ok_and(|t| t == lib) {
            continue;
        }
        let tmp = dir.join(format!(".{name}.{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&lib, &tmp).map_err(|e| err("cannot create", &tmp, e))?;
        std::fs::rename(&tmp, &link).map_err(|e| err("cannot create", &link, e))?;
    }
    Ok(dir)
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let mut domid: Option<u32> = None;
    loop {
        let Some(a) = args.next() else {
            return usage();
        };
        match a.to_str() {
            Some("--") => break,
            Some("--domid") => match args.next().and_then(|v| v.to_str()?.parse().ok()) {
                Some(d) => domid = Some(d),
                None => return usage(),
            },
            Some(s) if s.starts_with("--domid=") => match s["--domid=".len()..].parse() {
                Ok(d) => domid = Some(d),
                Err(_) => return usage(),
            },
            Some("-h") | Some("--help") => {
                usage();
                return ExitCode::SUCCESS;
            }
            _ => return usage(),
        }
    }
    let rest: Vec<OsString> = args.collect();
    let Some((cmd, cmd_args)) = rest.split_first() else {
        return usage();
    };
    let dir = match lib_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("vchan-xensim: {e}");
            return ExitCode::from(127);
        }
    };
    let mut path = OsString::from(dir.as_os_str());
    if let Some(old) = std::env::var_os("LD_LIBRARY_PATH").filter(|o| !o.is_empty()) {
        path.push(":");
        path.push(old);
    }
    let mut c = Command::new(cmd);
    c.args(cmd_args).env("LD_LIBRARY_PATH", path);
    if let Some(d) = domid {
        c.env("VCHAN_DOMID", d.to_string());
    }
    let err = c.exec();
    eprintln!("vchan-xensim: cannot run {}: {err}", cmd.to_string_lossy());
    ExitCode::from(127)
}
