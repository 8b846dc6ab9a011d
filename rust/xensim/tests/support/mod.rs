//! What the xensim integration tests share: the launcher, the xensim
//! libraries and the C peer (built once per test binary), spawning C
//! programs under xensim, feeding and draining them, Rust endpoints.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use vchan::{Endpoint, State};

use crate::common::{backend, dom, hex, pump, Source};

pub const T: Option<Duration> = Some(Duration::from_secs(20));
pub const MIB: u64 = 1 << 20;

/// Xen's `vchan-socket-proxy` (Debian's `xen-utils-<version>` installs its
/// tools under `/usr/lib/xen-<version>/bin`): the newest installed.
pub fn socket_proxy() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("xen-"))
        .map(|e| e.path().join("bin/vchan-socket-proxy"))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found
        .pop()
        .expect("no /usr/lib/xen-*/bin/vchan-socket-proxy: install xen-utils")
}

/// The installed Xen library `cc -l<name>` links (`libxen-dev`'s
/// `lib<name>.so`), resolved to its file (`libxenvchan.so.4.17.0` on
/// Debian 12).
pub fn xen_lib(name: &str) -> PathBuf {
    let out = Command::new("cc")
        .arg(format!("-print-file-name=lib{name}.so"))
        .output()
        .expect("run cc");
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        path.is_absolute() && path.exists(),
        "lib{name}.so not found by cc: install libxen-dev"
    );
    path.canonicalize().unwrap()
}

/// The launcher built by cargo for this test run.
pub fn launcher() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vchan-xensim"))
}

/// `<target>/release`, from this test binary's path
/// (`<target>/release/deps/<test>-<hash>`).
pub fn release_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// xensim's library directory (`<target>/release/xensim`), built and linked
/// on first use. Cargo does not build a `staticlib` for integration tests
/// (and the archives under `deps/` carry hashes, so which is current is not
/// knowable from their names): run `cargo build --release --locked -p
/// xensim` (a no-op when up to date), which writes the one
/// `release/libxensim.a`, and `scripts/link-xensim.sh` over it.
pub fn xensim_dir() -> PathBuf {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let release = release_dir();
        let target = release.parent().ok_or("no target directory")?;
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let st = Command::new(cargo)
            .args(["build", "--release", "--locked", "-p", "xensim"])
            .arg("--manifest-path")
            .arg(root.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target)
            .status()
            .map_err(|e| format!("cargo: {e}"))?;
        if !st.success() {
            return Err(format!("cargo build --release -p xensim: {st:?}"));
        }
        let script = root.join("scripts/link-xensim.sh");
        let st = Command::new("bash")
            .arg(&script)
            .arg(target)
            .status()
            .map_err(|e| format!("bash: {e}"))?;
        if !st.success() {
            return Err(format!("{} failed: {st:?}", script.display()));
        }
        let dir = release.join("xensim");
        for lib in [
            "libxensim.so",
            "libxengnttab.so.1",
            "libxenevtchn.so.1",
            "libxenstore.so.4",
            "libxenctrl-xensim.so",
        ] {
            if !dir.join(lib).exists() {
                return Err(format!("{} missing", dir.join(lib).display()));
            }
        }
        Ok(dir)
    });
    dir.clone().unwrap_or_else(|e| panic!("xensim: {e}"))
}

/// The C test peer (`tests/c/xvchan.c` on Debian's libxenvchan), compiled
/// once per test process into `<target>/release/xensim-tests/` (to a
/// temporary name, then renamed: a concurrent run never sees half a file).
pub fn xvchan() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/xvchan.c");
        let dir = release_dir().join("xensim-tests");
        std::fs::create_dir_all(&dir).unwrap();
        let bin = dir.join("xvchan");
        let tmp = dir.join(format!(".xvchan-{}", std::process::id()));
        let st = Command::new("cc")
            .args(["-O2", "-Wall", "-Werror", "-o"])
            .arg(&tmp)
            .arg(&src)
            .arg("-lxenvchan")
            .status()
            .expect("run cc");
        assert!(
            st.success(),
            "cc {} -lxenvchan failed: {st:?}",
            src.display()
        );
        std::fs::rename(&tmp, &bin).expect("install xvchan");
        bin
    })
}

/// The directory of the xensim libraries the tests run on.
pub fn xensim_lib() -> PathBuf {
    xensim_dir()
}

/// A fresh rendezvous directory (short, for socket paths).
pub fn tmpdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .prefix("xs")
        .tempdir_in("/tmp")
        .unwrap()
}

/// `cmd args` under the launcher in domain `domid`, rooted at `dir`.
pub fn under_xensim(domid: u32, dir: &Path, cmd: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(launcher());
    c.arg("--domid")
        .arg(domid.to_string())
        .arg("--")
        .arg(cmd)
        .args(args)
        .env("VCHAN_UNIX_DIR", dir)
        .env("VCHAN_XENSIM_LIB", xensim_lib())
        .env_remove("VCHAN_DOMID")
        .stderr(Stdio::inherit());
    c
}

pub fn spawn_c(domid: u32, dir: &Path, args: &[&str]) -> Child {
    under_xensim(domid, dir, xvchan(), args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn xvchan")
}

/// Feed `total` bytes from `seed` into `stdin`, then close it; the thread
/// returns the hex SHA-256 of what it fed.
pub fn feed(mut stdin: ChildStdin, seed: u64, total: u64) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut src = Source::new(seed, total);
        while src.left_bytes() > 0 {
            let c = src.next_chunk(100_000);
            stdin.write_all(&c).expect("feed the C peer");
        }
        drop(stdin);
        hex(src.hash.finalize())
    })
}

/// Read `stdout` to its end; the thread returns (hex SHA-256, length).
pub fn drain(mut stdout: ChildStdout) -> JoinHandle<(String, u64)> {
    std::thread::spawn(move || {
        let mut h = Sha256::new();
        let mut n = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let k = stdout.read(&mut buf).expect("read the C peer");
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            n += k as u64;
        }
        (hex(h.finalize()), n)
    })
}

/// Wait for a child, at most `limit`; kill it and fail on timeout.
pub fn wait_ok(child: &mut Child, limit: Duration, what: &str) {
    let poll = Duration::from_millis(5);
    if let Err(e) = vchan_test_support::wait_all(&mut [child], Instant::now(), limit, poll) {
        panic!("{what}: {e}");
    }
}

/// Hashes of one full-duplex stream exchange between a C peer (already
/// spawned, stdin/stdout piped) and Rust endpoint `ep`.
pub fn duplex(mut child: Child, ep: &mut Endpoint, c_bytes: u64, rust_bytes: u64, seed: u64) {
    let fed = feed(child.stdin.take().unwrap(), seed, c_bytes);
    let out = drain(child.stdout.take().unwrap());
    let (sent, got) = pump(ep, seed ^ 0x5eed, rust_bytes, c_bytes);
    ep.close().unwrap();
    wait_ok(&mut child, Duration::from_secs(30), "C peer");
    let fed = fed.join().unwrap();
    let (c_got, c_len) = out.join().unwrap();
    assert_eq!(got, fed, "Rust received what C was fed");
    assert_eq!(c_len, rust_bytes, "C received every byte");
    assert_eq!(c_got, sent, "C received what Rust sent");
}

pub fn c_server(dir: &Path, path: &str, read_min: u64, write_min: u64, mode: &str) -> Child {
    spawn_c(
        0,
        dir,
        &[
            "server",
            "1",
            path,
            &read_min.to_string(),
            &write_min.to_string(),
            mode,
        ],
    )
}

pub fn rust_client(dir: &Path, path: &str) -> Endpoint {
    Endpoint::connect_at(backend(dir, 1), dom(0), path, T).expect("Rust client connects")
}

pub fn rust_server(dir: &Path, path: &str, read_min: usize, write_min: usize) -> Endpoint {
    Endpoint::listen_at(backend(dir, 0), dom(1), path, read_min, write_min).expect("Rust listens")
}

pub const PATH: &str = "/local/domain/0/data/vchan/1/xensim";

pub fn random_file(dir: &Path, len: u64, seed: u64) -> (PathBuf, String) {
    let p = dir.join(format!("file-{seed}"));
    let mut f = std::fs::File::create(&p).unwrap();
    let mut src = Source::new(seed, len);
    while src.left_bytes() > 0 {
        f.write_all(&src.next_chunk(100_000)).unwrap();
    }
    (p, hex(src.hash.finalize()))
}

/// A C peer (xvchan in `mode`) and a Rust endpoint connected to it; the C
/// side serves when `c_role` is "server", else it is the client.
/// `c_reads`/`c_writes`: the sizes asked for the rings the C side reads
/// and writes.
pub fn c_and_rust(
    dir: &Path,
    c_role: &str,
    c_reads: usize,
    c_writes: usize,
    mode: &str,
) -> (Child, Endpoint) {
    if c_role == "server" {
        let child = c_server(dir, PATH, c_reads as u64, c_writes as u64, mode);
        (child, rust_client(dir, PATH))
    } else {
        let mut ep = rust_server(dir, PATH, c_writes, c_reads);
        let child = spawn_c(1, dir, &["client", "0", PATH, mode]);
        assert_eq!(ep.accept(T).unwrap(), State::Connected, "C client connects");
        (child, ep)
    }
}

/// Read `ep` to end-of-stream; (hex SHA-256, length).
pub fn read_to_end(ep: &mut Endpoint) -> (String, u64) {
    let mut h = Sha256::new();
    let mut n = 0u64;
    let mut buf = vec![0u8; 100_000];
    loop {
        let k = ep.read(&mut buf).unwrap();
        if k == 0 {
            return (hex(h.finalize()), n);
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
}
