//! xenstored's socket protocol as vchan-xensim serves it (XENSTORED_PATH):
//! Xen's own xenstore-read, -write, -ls, -rm and -exists, through Debian's
//! libxenstore over the socket and through xensim's libxenstore directly,
//! on one store.

#[path = "../../vchan/tests/common/mod.rs"]
mod common;
mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use support::*;

/// `script` run by `sh` under the launcher in domain `domid`.
fn sh(dir: &Path, domid: u32, script: &str) -> Output {
    let mut c = under_xensim(domid, dir, Path::new("/bin/sh"), &["-c", script]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c.output().expect("run sh under vchan-xensim")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A script that runs each tool through `$T`: with `socket`, Xen's tools
/// use Debian's libxenstore (the launcher's library path and preload
/// removed), which reaches the store through XENSTORED_PATH's socket;
/// else xensim's libxenstore.
fn tools(socket: bool, body: &str) -> String {
    let t = if socket {
        "env -u LD_LIBRARY_PATH -u LD_PRELOAD"
    } else {
        ""
    };
    format!("set -e; T='{t}'; test -S \"$XENSTORED_PATH\"; {body}")
}

fn need_tools() {
    for t in [
        "xenstore-read",
        "xenstore-write",
        "xenstore-ls",
        "xenstore-rm",
        "xenstore-exists",
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "{t} is not installed (Debian's xenstore-utils: make setup)"
        );
    }
}

/// [`tools`]' script `body` in domain 3, which must succeed; its output.
fn ok(dir: &Path, socket: bool, body: &str) -> String {
    let o = sh(dir, 3, &tools(socket, body));
    assert!(o.status.success(), "{o:?}");
    text(&o)
}

#[test]
fn xen_tools_share_one_store_over_the_socket_and_libxenstore() {
    need_tools();
    let dir = tmpdir();
    let d = dir.path();
    // Written over the socket, read through xensim's libxenstore, and back.
    ok(
        d,
        true,
        "$T xenstore-write /t/sock/a 1 /t/sock/b two && $T xenstore-write rel here",
    );
    let out = ok(
        d,
        false,
        "xenstore-read /t/sock/a /t/sock/b /local/domain/3/rel domid; xenstore-write /t/lib/c 3",
    );
    assert_eq!(out, "1\ntwo\nhere\n3\n");
    let out = ok(
        d,
        true,
        "$T xenstore-read /t/lib/c rel domid; $T xenstore-ls /t; $T xenstore-ls -p /t/sock",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..3], ["3", "here", "3"], "{out}");
    // The tree, then a listing with permissions (as the store applies them:
    // this domain's, open to all).
    assert_eq!(
        lines[3..8],
        [
            "lib = \"\"",
            " c = \"3\"",
            "sock = \"\"",
            " a = \"1\"",
            " b = \"two\""
        ],
        "{out}"
    );
    assert!(
        lines[8].starts_with("a = \"1\"") && lines[8].ends_with("(b3)"),
        "{out}"
    );
    assert!(
        lines[9].starts_with("b = \"two\"") && lines[9].ends_with("(b3)"),
        "{out}"
    );
    // Errors come back as Xen's: a missing node fails both ways.
    for socket in [true, false] {
        let o = sh(d, 3, &tools(socket, "$T xenstore-read /t/none"));
        assert!(!o.status.success(), "{o:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("couldn't read path /t/none"),
            "{o:?}"
        );
    }
    // Removal over the socket is seen through the library.
    ok(d, true, "$T xenstore-rm /t/sock/a");
    let out = ok(
        d,
        false,
        "xenstore-exists /t/sock/b; ! xenstore-exists /t/sock/a; echo gone",
    );
    assert_eq!(out, "gone\n");
}

/// The socket lives as long as the command, no longer.
#[test]
fn the_socket_goes_with_the_command() {
    let dir = tmpdir();
    let o = sh(dir.path(), 0, "echo \"$XENSTORED_PATH\"");
    assert!(o.status.success(), "{o:?}");
    let path = text(&o).trim().to_owned();
    assert!(path.ends_with(".sock"), "{path}");
    // The server notices the command's end (a pidfd) and removes it; a
    // generous deadline, not a timing assertion.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while Path::new(&path).exists() {
        assert!(std::time::Instant::now() < deadline, "{path} still there");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A raw client of the socket: xs_wire.h's messages.
struct Wire(std::os::unix::net::UnixStream);

const READ: u32 = 2;
const GET_PERMS: u32 = 3;
const WATCH: u32 = 4;
const UNWATCH: u32 = 5;
const TRANSACTION_START: u32 = 6;
const TRANSACTION_END: u32 = 7;
const GET_DOMAIN_PATH: u32 = 10;
const WRITE: u32 = 11;
const DIRECTORY: u32 = 1;
const MKDIR: u32 = 12;
const RM: u32 = 13;
const WATCH_EVENT: u32 = 15;
const ERROR: u32 = 16;

impl Wire {
    fn send(&mut self, ty: u32, req: u32, tx: u32, payload: &[u8]) {
        use std::io::Write;
        let mut m = Vec::new();
        for v in [ty, req, tx, payload.len() as u32] {
            m.extend_from_slice(&v.to_ne_bytes());
        }
        m.extend_from_slice(payload);
        self.0.write_all(&m).unwrap();
    }

    /// The next message: (type, request id, transaction id, payload).
    fn recv(&mut self) -> (u32, u32, u32, Vec<u8>) {
        use std::io::Read;
        let mut h = [0u8; 16];
        self.0.read_exact(&mut h).unwrap();
        let w = |i: usize| u32::from_ne_bytes(h[i..i + 4].try_into().unwrap());
        let mut p = vec![0u8; w(12) as usize];
        self.0.read_exact(&mut p).unwrap();
        (w(0), w(4), w(8), p)
    }

    /// Request and its reply's (type, payload); the reply echoes the
    /// request and transaction ids.
    fn call(&mut self, ty: u32, tx: u32, payload: &[u8]) -> (u32, Vec<u8>) {
        self.send(ty, 77, tx, payload);
        let (rty, req, rtx, p) = self.recv();
        assert_eq!((req, rtx), (77, tx));
        (rty, p)
    }
}

#[test]
fn wire_protocol_replies_errors_transactions_and_watches() {
    let dir = tmpdir();
    // A command that lives until its standard input closes.
    let mut c = under_xensim(
        4,
        dir.path(),
        Path::new("/bin/sh"),
        &["-c", "echo \"$XENSTORED_PATH\"; cat > /dev/null"],
    );
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut path = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut path,
    )
    .unwrap();
    let mut w = Wire(std::os::unix::net::UnixStream::connect(path.trim()).unwrap());

    assert_eq!(w.call(WRITE, 0, b"/a/b\0v1"), (WRITE, b"OK\0".to_vec()));
    assert_eq!(w.call(READ, 0, b"/a/b\0"), (READ, b"v1".to_vec()));
    assert_eq!(w.call(READ, 0, b"/a/none\0"), (ERROR, b"ENOENT\0".to_vec()));
    assert_eq!(w.call(MKDIR, 0, b"/a/d\0"), (MKDIR, b"OK\0".to_vec()));
    assert_eq!(
        w.call(DIRECTORY, 0, b"/a\0"),
        (DIRECTORY, b"b\0d\0".to_vec())
    );
    // Relative paths are under this domain's home.
    assert_eq!(w.call(WRITE, 0, b"rel\0r"), (WRITE, b"OK\0".to_vec()));
    assert_eq!(
        w.call(READ, 0, b"/local/domain/4/rel\0"),
        (READ, b"r".to_vec())
    );
    assert_eq!(
        w.call(GET_DOMAIN_PATH, 0, b"9\0"),
        (GET_DOMAIN_PATH, b"/local/domain/9\0".to_vec())
    );
    assert_eq!(
        w.call(GET_PERMS, 0, b"/a/b\0"),
        (GET_PERMS, b"b4\0".to_vec())
    );

    // A transaction's writes are its own until it ends; an aborted one's
    // never show.
    let (ty, id) = w.call(TRANSACTION_START, 0, b"\0");
    assert_eq!(ty, TRANSACTION_START);
    let t: u32 = std::str::from_utf8(&id)
        .unwrap()
        .trim_end_matches('\0')
        .parse()
        .unwrap();
    assert_ne!(t, 0);
    assert_eq!(w.call(WRITE, t, b"/a/t\0in"), (WRITE, b"OK\0".to_vec()));
    assert_eq!(w.call(READ, t, b"/a/t\0"), (READ, b"in".to_vec()));
    assert_eq!(w.call(READ, 0, b"/a/t\0"), (ERROR, b"ENOENT\0".to_vec()));
    assert_eq!(
        w.call(TRANSACTION_END, t, b"T\0"),
        (TRANSACTION_END, b"OK\0".to_vec())
    );
    assert_eq!(w.call(READ, 0, b"/a/t\0"), (READ, b"in".to_vec()));
    let (_, id) = w.call(TRANSACTION_START, 0, b"\0");
    let t: u32 = std::str::from_utf8(&id)
        .unwrap()
        .trim_end_matches('\0')
        .parse()
        .unwrap();
    assert_eq!(w.call(RM, t, b"/a/t\0"), (RM, b"OK\0".to_vec()));
    assert_eq!(
        w.call(TRANSACTION_END, t, b"F\0"),
        (TRANSACTION_END, b"OK\0".to_vec())
    );
    assert_eq!(w.call(READ, 0, b"/a/t\0"), (READ, b"in".to_vec()));
    assert_eq!(
        w.call(TRANSACTION_END, t, b"T\0"),
        (ERROR, b"EINVAL\0".to_vec())
    );

    // A watch fires once when set (after its reply), then on a change of
    // its subtree, made here by another client (a second connection).
    assert_eq!(w.call(WATCH, 0, b"/a\0tok\0"), (WATCH, b"OK\0".to_vec()));
    assert_eq!(w.recv(), (WATCH_EVENT, 0, 0, b"/a\0tok\0".to_vec()));
    let mut other = Wire(std::os::unix::net::UnixStream::connect(path.trim()).unwrap());
    assert_eq!(other.call(WRITE, 0, b"/a/b\0v2"), (WRITE, b"OK\0".to_vec()));
    assert_eq!(w.recv(), (WATCH_EVENT, 0, 0, b"/a\0tok\0".to_vec()));
    assert_eq!(
        w.call(UNWATCH, 0, b"/a\0tok\0"),
        (UNWATCH, b"OK\0".to_vec())
    );
    assert_eq!(
        w.call(UNWATCH, 0, b"/a\0tok\0"),
        (ERROR, b"ENOENT\0".to_vec())
    );

    // A listing the store holds but one message cannot carry is E2BIG.
    for i in 0..300 {
        let node = format!("/big/child-number-{i:05}\0");
        assert_eq!(w.call(MKDIR, 0, node.as_bytes()), (MKDIR, b"OK\0".to_vec()));
    }
    assert_eq!(
        w.call(DIRECTORY, 0, b"/big\0"),
        (ERROR, b"E2BIG\0".to_vec())
    );

    // Unknown or unserved types are refused; a payload beyond 4096 bytes
    // is refused and ends the connection.
    assert_eq!(w.call(99, 0, b""), (ERROR, b"ENOSYS\0".to_vec()));
    w.send(WRITE, 5, 0, &vec![b'x'; 4097]);
    assert_eq!(w.recv(), (ERROR, 5, 0, b"E2BIG\0".to_vec()));
    // The server hung up: end of file, or a reset (the refused payload
    // was still unread in its socket).
    let mut rest = Vec::new();
    match std::io::Read::read_to_end(&mut w.0, &mut rest) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the connection goes on after E2BIG: {other:?}"),
    }

    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
}

/// docs/xensim.md's `xenstore-tools.sh` block, run as written (the
/// launcher on PATH): it prints what it wrote.
#[test]
fn docs_xenstore_tools_block() {
    need_tools();
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/xensim.md"))
        .unwrap();
    let after = doc
        .split_once("<!-- file: xenstore-tools.sh -->\n```sh\n")
        .expect("docs/xensim.md has the xenstore-tools.sh block")
        .1;
    let block = after.split_once("\n```").expect("the block ends").0;
    let dir = tmpdir();
    let bin = launcher().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = Command::new("sh")
        .args(["-c", block])
        .env("PATH", path)
        .env("VCHAN_UNIX_DIR", dir.path())
        .env("VCHAN_XENSIM_LIB", xensim_lib())
        .env_remove("VCHAN_DOMID")
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    assert_eq!(text(&o), "1\n");
}
