//! `vchan-xensim [--domid N] -- CMD ARGS...`: run CMD with Xen's C
//! libraries replaced by xensim (over vchan's unix backend), by
//! prepending the xensim library directory to `LD_LIBRARY_PATH` and
//! preloading its libxenctrl (whose soname is the installed Xen's:
//! `scripts/link-xensim.sh`), and by serving xenstored's socket protocol
//! on `XENSTORED_PATH` for as long as CMD runs (`vchan-xensim --help`
//! says it all; `man/vchan-xensim.1` is that text).
//!
//! The libraries (`scripts/link-xensim.sh` makes them): `$VCHAN_XENSIM_LIB`
//! if set, else the first of `<exe dir>/xensim` (cargo's target dir),
//! `<exe dir>` (dune's build dir) and `<exe dir>/../lib/vchan-rs-unix/xensim`
//! (an installation) that holds them.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use vchan::DomId;

const LIBS: [&str; 4] = [
    "libxengnttab.so.1",
    "libxenevtchn.so.1",
    "libxenstore.so.4",
    XENCTRL,
];

/// xensim's libxenctrl: preloaded, it stands (by its soname) for the
/// `libxenctrl.so.<Xen version>` of the Xen installed when it was linked.
const XENCTRL: &str = "libxenctrl-xensim.so";

const USAGE: &str = "usage: vchan-xensim [--domid N] -- CMD [ARGS...]";

const HELP: &str = "\
NAME
    vchan-xensim - run a program on simulated Xen libraries (no hypervisor)

SYNOPSIS
    vchan-xensim [--domid N] -- CMD [ARGS...]
    vchan-xensim --help | --version

DESCRIPTION
    Runs CMD with Xen's C libraries libxengnttab.so.1, libxenevtchn.so.1,
    libxenstore.so.4 and libxenctrl.so.<Xen version> replaced by xensim's,
    which carry out grants, event channels and xenstore over vchan's unix
    backend (shared-memory files, sockets and a directory standing for
    xenstore). Programs built against Xen's libraries - Debian's
    libxenvchan, vchan-socket-proxy, your own C code, vchan-rs with
    VCHAN_BACKEND=xen - then run unmodified on one host and talk to each
    other and to unix-backend endpoints (vchan-cat, the Rust crate, the
    OCaml library). It prepends xensim's library directory to
    LD_LIBRARY_PATH and its libxenctrl-xensim.so to LD_PRELOAD, and
    executes CMD. (libxenctrl's soname names the Xen release; xensim's
    carries the soname and symbol version of the Xen installed when
    xensim was built, and stands for it once preloaded.)

    For clients that speak xenstored's socket protocol instead of
    calling libxenstore (ocaml-xenstore's client, so ocaml-vchan's
    vchan-unix; Xen's own libxenstore too), it serves that protocol on a
    Unix socket, backed by the same store,
    and sets XENSTORED_PATH to it; the server runs until CMD exits.

    Event channels are masked as Linux's evtchn driver masks them. Not
    simulated: xenstore permissions, a pollable watch descriptor (watches
    are polled).

OPTIONS
    --domid N
        Run CMD as domain N, in decimal: sets VCHAN_DOMID=N (default: the
        inherited VCHAN_DOMID, else 0).
    -h, --help
        Show this help and exit.
    -V, --version
        Show the version and exit.

ENVIRONMENT
    VCHAN_DOMID
        This process's domain id (default 0); --domid overrides it.
    VCHAN_UNIX_DIR
        The rendezvous directory shared with the peers (default
        $XDG_RUNTIME_DIR/vchan, else $TMPDIR/vchan-$UID, /tmp/vchan-$UID
        when TMPDIR is unset).
    VCHAN_XENSIM_LIB
        The directory holding xensim's four libraries. Default: the first
        of <dir>/xensim (cargo's target/release), <dir> (dune's build
        directory) and <dir>/../lib/vchan-rs-unix/xensim (an installation)
        that holds them, <dir> being this program's directory.
    LD_LIBRARY_PATH
        Kept, after xensim's directory.
    LD_PRELOAD
        Kept, after xensim's libxenctrl.
    XENSTORED_PATH
        Set for CMD: the socket of xenstored's protocol,
        $TMPDIR/vchan-xensim-$UID/xenstored-<pid>.sock (TMPDIR: /tmp when
        unset). When it cannot be served, a warning says why and
        XENSTORED_PATH is left as it was.

EXIT STATUS
    CMD's exit status when it ran; 2 on bad arguments; 127 when the
    libraries or CMD cannot be found or run.

EXAMPLE
    VCHAN_DOMID=0 vchan-xensim -- /usr/lib/xen-*/bin/vchan-socket-proxy \\
        -m server 1 /local/domain/0/data/vchan/1/foo -
    VCHAN_DOMID=1 vchan-cat -N 0 foo
";

/// A usage error: what was wrong, then the usage; status 2.
fn usage(what: &str) -> ExitCode {
    eprintln!("vchan-xensim: {what}\n{USAGE}\n(vchan-xensim --help for more)");
    ExitCode::from(2)
}

/// The value of `--domid`, parsed as every domain id is in vchan-rs.
fn domid(value: Option<&str>) -> Result<DomId, String> {
    let v = value.ok_or("--domid needs a value")?;
    v.parse::<DomId>().map_err(|e| format!("--domid: {e}"))
}

fn has_libs(dir: &Path) -> bool {
    LIBS.iter().all(|l| dir.join(l).exists())
}

/// The directory holding the four libraries.
fn lib_dir() -> Result<PathBuf, String> {
    if let Some(d) = std::env::var_os("VCHAN_XENSIM_LIB").filter(|d| !d.is_empty()) {
        let d = PathBuf::from(d);
        return if has_libs(&d) {
            Ok(d)
        } else {
            Err(format!(
                "VCHAN_XENSIM_LIB={} does not hold {}",
                d.display(),
                LIBS.join(", ")
            ))
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my own path: {e}"))?;
    let exe = exe.canonicalize().unwrap_or(exe);
    let dir = exe.parent().unwrap_or(Path::new("."));
    // Cargo's target dir (link-xensim.sh), dune's build dir, an installation.
    let candidates = [
        dir.join("xensim"),
        dir.to_path_buf(),
        dir.join("../lib/vchan-rs-unix/xensim"),
    ];
    if let Some(c) = candidates.iter().find(|c| has_libs(c)) {
        return Ok(c.clone());
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

/// Bind xenstored's socket for the process that is about to become CMD
/// and serve it from a detached grandchild until that process is gone.
/// Returns the socket's path.
fn xenstored() -> Result<PathBuf, String> {
    // Outside the rendezvous directory, whose leftovers tests check (the
    // socket goes shortly after CMD); private to this user.
    // SAFETY: getuid has no preconditions.
    let dir = std::env::temp_dir().join(format!("vchan-xensim-{}", unsafe { libc::getuid() }));
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        let m = std::fs::symlink_metadata(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        // SAFETY: getuid has no preconditions.
        if !m.is_dir() || m.uid() != unsafe { libc::getuid() } || m.mode() & 0o077 != 0 {
            return Err(format!(
                "{} is not a private directory of this user",
                dir.display()
            ));
        }
    }
    let pid = std::process::id();
    let path = dir.join(format!("xenstored-{pid}.sock"));
    // A socket left by an earlier process of this pid.
    let _ = std::fs::remove_file(&path);
    // Close-on-exec: CMD does not inherit it.
    let listener = UnixListener::bind(&path).map_err(|e| {
        format!(
            "cannot serve xenstored's protocol at {}: {e}",
            path.display()
        )
    })?;
    // SAFETY: this process has one thread (no lock can be held across the
    // fork); the child only forks again and exits.
    match unsafe { libc::fork() } {
        -1 => Err(format!("fork: {}", std::io::Error::last_os_error())),
        0 => {
            // SAFETY: as above; the grandchild owns no lock either.
            if unsafe { libc::fork() } == 0 {
                xenstored_daemon(listener, pid, &path);
            }
            // SAFETY: leaving the intermediate child without running the
            // parent's atexit handlers or flushing its buffers twice.
            unsafe { libc::_exit(0) }
        }
        child => {
            let mut status = 0;
            // SAFETY: waiting for our own child; `status` is valid.
            unsafe { libc::waitpid(child, &mut status, 0) };
            Ok(path)
        }
    }
}

/// The server's process: stdio to /dev/null, every other descriptor but
/// the listener's closed, then serve until process `pid` ends.
fn xenstored_daemon(listener: UnixListener, pid: u32, path: &Path) -> ! {
    let keep = listener.as_raw_fd();
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors of this process.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
    let open: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    for fd in open.into_iter().filter(|fd| *fd > 2 && *fd != keep) {
        // SAFETY: descriptors inherited from CMD's caller, unused here (the
        // directory's own descriptor is already closed: EBADF is harmless).
        unsafe { libc::close(fd) };
    }
    // SAFETY: a new session, so that CMD's terminal signals are not ours.
    unsafe { libc::setsid() };
    std::thread::spawn(move || xensim::xsd::serve(listener));
    wait_for_exit(pid);
    let _ = std::fs::remove_file(path);
    // SAFETY: ending the server process; nothing to flush.
    unsafe { libc::_exit(0) }
}

/// Return when process `pid` has ended (a pidfd; else polled).
fn wait_for_exit(pid: u32) {
    // SAFETY: pidfd_open takes a pid and flags, returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if let Ok(fd) = i32::try_from(fd) {
        if fd >= 0 {
            // SAFETY: a fresh descriptor that we own.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let mut p = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            while unsafe { libc::poll(&mut p, 1, -1) } < 0 {}
            return;
        }
    }
    // SAFETY: signal 0 only checks that the process exists.
    while unsafe { libc::kill(pid as libc::pid_t, 0) } == 0 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let mut own: Option<DomId> = None;
    loop {
        let Some(a) = args.next() else {
            return usage("missing -- before the command");
        };
        let parsed = match a.to_str() {
            Some("--") => break,
            Some("--domid") => domid(
                args.next()
                    .map(|v| v.to_string_lossy().into_owned())
                    .as_deref(),
            ),
            Some(s) if s.starts_with("--domid=") => domid(Some(&s["--domid=".len()..])),
            Some("-h") | Some("--help") => {
                print!("{HELP}");
                return ExitCode::SUCCESS;
            }
            Some("-V") | Some("--version") => {
                println!("{}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            _ => return usage(&format!("unknown argument {:?}", a.to_string_lossy())),
        };
        match parsed {
            Ok(d) => own = Some(d),
            Err(e) => return usage(&e),
        }
    }
    let rest: Vec<OsString> = args.collect();
    let Some((cmd, cmd_args)) = rest.split_first() else {
        return usage("no command after --");
    };
    let dir = match lib_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("vchan-xensim: {e}");
            return ExitCode::from(127);
        }
    };
    // The dynamic loader splits both lists at ':' (LD_PRELOAD at ' ' too).
    if dir.as_os_str().as_bytes().iter().any(|b| b" :".contains(b)) {
        eprintln!(
            "vchan-xensim: {} holds a space or ':', which LD_LIBRARY_PATH and LD_PRELOAD cannot carry",
            dir.display()
        );
        return ExitCode::from(127);
    }
    let prepend = |var: &str, first: &Path| {
        let mut v = OsString::from(first.as_os_str());
        if let Some(old) = std::env::var_os(var).filter(|o| !o.is_empty()) {
            v.push(":");
            v.push(old);
        }
        v
    };
    let mut c = Command::new(cmd);
    c.args(cmd_args)
        .env("LD_LIBRARY_PATH", prepend("LD_LIBRARY_PATH", &dir))
        .env("LD_PRELOAD", prepend("LD_PRELOAD", &dir.join(XENCTRL)));
    if let Some(d) = own {
        // The server's domain too (this process has one thread).
        std::env::set_var("VCHAN_DOMID", d.to_string());
    }
    match xenstored() {
        Ok(p) => {
            c.env("XENSTORED_PATH", p);
        }
        Err(e) => eprintln!("vchan-xensim: warning: xenstored's protocol not served: {e}"),
    }
    let err = c.exec();
    eprintln!("vchan-xensim: cannot run {}: {err}", cmd.to_string_lossy());
    ExitCode::from(127)
}
