//! Acceptance test of vchan's xen backend over xensim: a process with
//! `VCHAN_BACKEND=xen` and `LD_LIBRARY_PATH` at xensim's libraries (so the
//! backend dlopens xensim in place of Xen's `libxengnttab.so.1`,
//! `libxenevtchn.so.1` and `libxenstore.so.4`) talks to a vchan-rs
//! unix-backend endpoint in the same rendezvous directory, as server and as
//! client: 16 MiB each way (SHA-256 compared), end-of-stream after either
//! side closes, and peer death seen within a second either way. And the
//! same xen backend against Debian's C `libxenvchan` (the xensim test peer
//! `tests/c/xvchan.c`), both on xensim.
//!
//! Needs xensim built and linked (`cargo build --release -p xensim`,
//! `scripts/link-xensim.sh`): the test does both itself, into its own
//! target directory, and needs `cc` and libxen-dev for the C peer.

#[path = "../../vchan/tests/common/mod.rs"]
mod common;
mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout};
use std::time::{Duration, Instant};
use vchan_test_support::kill;

use common::{child_role, dom, port, pump, spawn};
use support::{xensim_dir, xvchan};
use vchan::{Endpoint, Error, State};

const ENTRY: &str = "child";
const T: Option<Duration> = Some(Duration::from_secs(30));
const MIB16: u64 = 16 << 20;

/// Environment of a child on the xen backend.
fn xen_env() -> Vec<(&'static str, String)> {
    vec![
        ("VCHAN_BACKEND", "xen".into()),
        ("LD_LIBRARY_PATH", xensim_dir().display().to_string()),
    ]
}

fn say(k: &str, v: impl std::fmt::Display) {
    println!("{k}={v}");
    std::io::stdout().flush().unwrap();
}

/// Child entry. `SIDE` is `server` (domain 0, serving domain 1) or
/// `client` (domain 1); `ACTION`:
/// - `xfer`: move 16 MiB each way (full duplex, non-blocking), print the
///   hashes; then, if `CLOSER` names this side, close; else wait for
///   end-of-stream, check that writing fails with `Closed` and the state
///   is `Exited`, and close.
/// - `lonely`: a server that listens, prints `listening=1` and sleeps.
/// - `second`: a server that tries to listen and prints the outcome.
/// - `idle`: connect, print `connected=1`, sleep until killed.
/// - `watch`: connect, print `connected=1`, then block in a read until the
///   peer goes, print what the read returned and the state.
#[test]
#[ignore = "child process entry point"]
fn child() {
    let role = child_role();
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let name = var("PORT");
    let side = var("SIDE");
    match role.as_str() {
        "lonely" => {
            let s = Endpoint::listen(dom(1), &port(&name), 4096, 4096).unwrap();
            say("backend", s.backend().name());
            say("listening", 1);
            std::thread::sleep(Duration::from_secs(60));
            return;
        }
        "second" => {
            let r = Endpoint::listen(dom(1), &port(&name), 4096, 4096);
            say(
                "listen",
                match r {
                    Ok(s) => format!("ok:{}", s.backend().name()),
                    Err(e) => format!("{e:?}"),
                },
            );
            return;
        }
        _ => {}
    }
    let rings: Vec<usize> = var("RINGS")
        .split(',')
        .filter_map(|v| v.parse().ok())
        .collect();
    let (rmin, wmin) = match rings[..] {
        [r, w] => (r, w),
        _ => (65536, 65536),
    };
    let mut ep = if side == "server" {
        let mut s = Endpoint::listen(dom(1), &port(&name), rmin, wmin).unwrap();
        say("backend", s.backend().name());
        say("listening", 1);
        assert_eq!(s.accept(T).unwrap(), State::Connected);
        s
    } else {
        let c = Endpoint::connect(dom(0), &port(&name), T).unwrap();
        say("backend", c.backend().name());
        c
    };
    say("connected", 1);
    match role.as_str() {
        "xfer" => {
            let seed = if side == "server" { 1 } else { 2 };
            let (sent, got) = pump(&mut ep, seed, MIB16, MIB16);
            say("sent", sent);
            say("got", got);
            ep.set_nonblocking(false);
            if var("CLOSER") == side {
                ep.close().unwrap();
                say("closed", 1);
                return;
            }
            let mut b = [0u8; 16];
            let n = ep.read(&mut b).unwrap();
            say("eof", u8::from(n == 0));
            say("state", format!("{:?}", ep.state().unwrap()));
            let w = ep.write(b"late");
            say("write_after", matches!(w, Err(Error::Closed)));
            ep.close().unwrap();
            say("closed", 1);
        }
        "idle" => std::thread::sleep(Duration::from_secs(60)),
        "watch" => {
            let r = ep.read(&mut [0u8; 100]);
            say("read", format!("{r:?}"));
            say("state", format!("{:?}", ep.state().unwrap()));
            ep.close().unwrap();
        }
        other => panic!("unknown role {other}"),
    }
}

/// Read `key=value` lines from a child until `key` shows up (keeping
/// every line read for [`finish`]).
fn await_key(kid: &mut Kid, key: &str) -> String {
    loop {
        let mut line = String::new();
        assert!(
            kid.out.read_line(&mut line).unwrap() > 0,
            "child exited before printing {key}"
        );
        if let Some((k, v)) = line.trim().split_once('=') {
            kid.seen.push((k.to_owned(), v.to_owned()));
            if k == key {
                return v.to_owned();
            }
        }
    }
}

/// Every `key=value` line of a child, once it exited successfully.
fn finish(kid: Kid) -> Vec<(String, String)> {
    let Kid {
        mut child,
        mut out,
        mut seen,
    } = kid;
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let st = child.wait().unwrap();
    assert!(st.success(), "child failed: {st:?}; printed {rest}");
    seen.extend(
        rest.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    seen
}

fn get<'a>(kv: &'a [(String, String)], k: &str) -> &'a str {
    kv.iter()
        .find(|(kk, _)| kk == k)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {k} in {kv:?}"))
}

struct Kid {
    child: Child,
    out: BufReader<ChildStdout>,
    seen: Vec<(String, String)>,
}

fn kid(action: &str, side: &str, xen: bool, dir: &Path, extra: &[(&str, String)]) -> Kid {
    let mut env: Vec<(&str, String)> = extra.to_vec();
    if xen {
        env.extend(xen_env());
    }
    env.push(("SIDE", side.into()));
    let domid = if side == "server" { 0 } else { 1 };
    let mut child = spawn(ENTRY, action, domid, dir, &env);
    let out = BufReader::new(child.stdout.take().unwrap());
    Kid {
        child,
        out,
        seen: Vec::new(),
    }
}

/// 16 MiB each way between a xen-backend process and a unix-backend one
/// (server rings of 64 KiB each way); then `closer` closes first and the
/// other sees end-of-stream.
fn transfer(xen_side: &str, closer: &str) {
    transfer_rings(xen_side, closer, (65536, 65536));
}

/// [`transfer`] with the server's (read_min, write_min).
fn transfer_rings(xen_side: &str, closer: &str, (rmin, wmin): (usize, usize)) {
    let dir = common::private_tempdir();
    let extra = [
        ("PORT", "xfer".to_owned()),
        ("CLOSER", closer.to_owned()),
        ("RINGS", format!("{rmin},{wmin}")),
    ];
    let mut server = kid("xfer", "server", xen_side == "server", dir.path(), &extra);
    assert_eq!(await_key(&mut server, "listening"), "1");
    let client = kid("xfer", "client", xen_side == "client", dir.path(), &extra);
    let t = Instant::now();
    let s = finish(server);
    let c = finish(client);
    eprintln!(
        "xen side {xen_side}, closer {closer}, rings {rmin}/{wmin}: 2 x 16 MiB and close in {:?}",
        t.elapsed()
    );
    let xen_kv = if xen_side == "server" { &s } else { &c };
    let unix_kv = if xen_side == "server" { &c } else { &s };
    assert_eq!(get(xen_kv, "backend"), "xen");
    assert_eq!(get(unix_kv, "backend"), "unix");
    assert_eq!(get(&s, "sent"), get(&c, "got"), "server -> client differs");
    assert_eq!(get(&c, "sent"), get(&s, "got"), "client -> server differs");
    let other = if closer == "server" { &c } else { &s };
    assert_eq!(get(other, "eof"), "1");
    assert_eq!(get(other, "state"), "Exited");
    assert_eq!(get(other, "write_after"), "true");
    // The server removed its rendezvous.
    let node = dir
        .path()
        .join("store")
        .join(common::path(0, 1, "xfer").trim_start_matches('/'));
    assert!(!node.exists(), "rendezvous left behind: {}", node.display());
    // And its client's directory, empty now (as ocaml-vchan removes it).
    let parent = node.parent().expect("a rendezvous path has a parent");
    assert!(
        !parent.exists(),
        "empty directory left: {}",
        parent.display()
    );
}

/// In-page rings (orders 10 and 11) and the largest (1 MiB, 256 granted
/// pages each way), with the xen backend on either side.
#[test]
fn ring_sizes_both_ways() {
    for rings in [
        (1024, 2048),
        (2048, 1024),
        (1 << 20, 1 << 20),
        (1024, 1 << 20),
    ] {
        transfer_rings("server", "server", rings);
        transfer_rings("client", "client", rings);
    }
}

#[test]
fn xen_server_unix_client_server_closes() {
    transfer("server", "server");
}

#[test]
fn xen_server_unix_client_client_closes() {
    transfer("server", "client");
}

#[test]
fn unix_server_xen_client_server_closes() {
    transfer("client", "server");
}

#[test]
fn unix_server_xen_client_client_closes() {
    transfer("client", "client");
}

/// The process on side `dies` is killed while its peer (on the other
/// backend) is blocked in a read: the peer must see the channel closed
/// within a second.
fn killed(xen_side: &str, dies: &str) {
    let (sa, ca) = if dies == "server" {
        ("idle", "watch")
    } else {
        ("watch", "idle")
    };
    killed_as(xen_side, dies, sa, ca);
}

/// [`killed`] with the server's and the client's actions (`lonely`: a
/// server that never accepts).
fn killed_as(xen_side: &str, dies: &str, sa: &str, ca: &str) {
    let dir = common::private_tempdir();
    let extra = [("PORT", "kill".to_owned())];
    let mut server = kid(sa, "server", xen_side == "server", dir.path(), &extra);
    assert_eq!(await_key(&mut server, "listening"), "1");
    let mut client = kid(ca, "client", xen_side == "client", dir.path(), &extra);
    assert_eq!(await_key(&mut client, "connected"), "1");
    if sa != "lonely" {
        assert_eq!(await_key(&mut server, "connected"), "1");
    }
    // Let the watcher block in its read.
    std::thread::sleep(Duration::from_millis(300));
    let (victim, watcher) = if dies == "server" {
        (server, client)
    } else {
        (client, server)
    };
    let mut victim = victim.child;
    let mut watcher = watcher;
    let killed_at = Instant::now();
    kill(&mut victim);
    let exited = loop {
        if let Some(st) = watcher.child.try_wait().unwrap() {
            break st;
        }
        if killed_at.elapsed() > Duration::from_secs(10) {
            kill(&mut watcher.child);
            panic!("xen side {xen_side}, {dies} killed: the peer did not notice in 10 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let lag = killed_at.elapsed();
    assert!(exited.success(), "watcher failed: {exited:?}");
    let kv = finish(watcher);
    let want = if xen_side == dies { "unix" } else { "xen" };
    assert_eq!(get(&kv, "backend"), want);
    eprintln!("xen side {xen_side}, {dies} killed: peer saw {kv:?} after {lag:?}");
    let read = get(&kv, "read");
    assert!(read == "Ok(0)" || read == "Err(Closed)", "read gave {read}");
    assert_eq!(get(&kv, "state"), "Exited");
    assert!(lag < Duration::from_secs(1), "took {lag:?}");
}

#[test]
fn xen_server_killed_unix_client_notices() {
    killed("server", "server");
}

#[test]
fn unix_client_killed_xen_server_notices() {
    killed("server", "client");
}

#[test]
fn xen_client_killed_unix_server_notices() {
    killed("client", "client");
}

#[test]
fn unix_server_killed_xen_client_notices() {
    killed("client", "server");
}

/// A unix-backend server killed before its event channel accepted the xen
/// client's connection (it listens, then sleeps; its message with its
/// unmap-notify request is never sent): the client still sees it exited
/// within a second, as under Xen. It read the request from the server's
/// port when it bound, and xensim carries it out. (A server whose accept
/// saw the client connected in the page before its event channel took the
/// connection, and then idled, was the same case: a rare flake of the test
/// above.)
#[test]
fn unix_server_killed_before_accepting_xen_client_notices() {
    killed_as("client", "server", "lonely", "watch");
}

/// The same with the backends swapped: a xen-backend server killed before
/// it accepted; its unix-backend client sees the connection reset.
#[test]
fn xen_server_killed_before_accepting_unix_client_notices() {
    killed_as("server", "server", "lonely", "watch");
}

/// A second server for the same client and port. Over the xen backend, an
/// existing rendezvous is `AddrInUse` whether its server lives or not (Xen
/// has no liveness probe); the unix backend replaces a dead server's.
#[test]
fn second_server_is_addr_in_use() {
    let dir = common::private_tempdir();
    let extra = [("PORT", "busy".to_owned())];
    let second = |xen: bool| {
        let k = kid("second", "server", xen, dir.path(), &extra);
        get(&finish(k), "listen").to_owned()
    };
    let mut first = kid("lonely", "server", true, dir.path(), &extra);
    assert_eq!(await_key(&mut first, "listening"), "1");
    assert_eq!(second(true), "AddrInUse", "xen after a live xen server");
    assert_eq!(second(false), "AddrInUse", "unix after a live xen server");
    kill(&mut first.child);
    assert_eq!(second(true), "ok:xen", "xen after a dead xen server");
    // (That second server closed cleanly, removing its entry.)
    let mut first = kid("lonely", "server", true, dir.path(), &extra);
    assert_eq!(await_key(&mut first, "listening"), "1");
    kill(&mut first.child);
    assert_eq!(second(false), "ok:unix", "unix after a dead xen server");
}

/// A xen-backend server SIGKILLed (no clean-up: its rendezvous stays in
/// the store) and restarted on the same port serves again, with no manual
/// clean-up: the dead server's entry is replaced (its recorded process is
/// gone), and clients of either backend connect and move 16 MiB each way.
#[test]
fn sigkilled_xen_server_restarted_on_the_same_port_serves() {
    for client_xen in [false, true] {
        let dir = common::private_tempdir();
        let extra = [
            ("PORT", "again".to_owned()),
            ("CLOSER", "client".to_owned()),
        ];
        let mut dead = kid("lonely", "server", true, dir.path(), &extra);
        assert_eq!(await_key(&mut dead, "listening"), "1");
        kill(&mut dead.child);
        let node = dir
            .path()
            .join("store")
            .join(common::path(0, 1, "again").trim_start_matches('/'));
        assert!(
            node.join("ring-ref").exists(),
            "the killed server's entry is gone already"
        );
        let mut server = kid("xfer", "server", true, dir.path(), &extra);
        assert_eq!(await_key(&mut server, "listening"), "1");
        let client = kid("xfer", "client", client_xen, dir.path(), &extra);
        let s = finish(server);
        let c = finish(client);
        assert_eq!(get(&s, "sent"), get(&c, "got"), "server -> client differs");
        assert_eq!(get(&c, "sent"), get(&s, "got"), "client -> server differs");
        assert_eq!(get(&s, "eof"), "1");
        assert!(!node.exists(), "rendezvous left behind: {}", node.display());
    }
}

/// 16 MiB each way between our xen backend (`rust_side`) and libxenvchan
/// (the other side) in `stream` mode, over xensim; the Rust side closes
/// once done, the C side drains and exits.
fn with_libxenvchan(rust_side: &str) {
    use std::process::{Command, Stdio};
    let dir = common::private_tempdir();
    let name = "cpeer";
    let vpath = common::path(0, 1, name);
    let extra = [("PORT", name.to_owned()), ("CLOSER", rust_side.to_owned())];
    let c_side = if rust_side == "server" {
        "client"
    } else {
        "server"
    };
    let mut cmd = Command::new(xvchan());
    if c_side == "server" {
        cmd.args(["server", "1", &vpath, "65536", "65536", "stream"]);
    } else {
        cmd.args(["client", "0", &vpath, "stream"]);
    }
    cmd.env("LD_LIBRARY_PATH", xensim_dir())
        .env("VCHAN_DOMID", if c_side == "server" { "0" } else { "1" })
        .env("VCHAN_UNIX_DIR", dir.path())
        .env("VCHAN_BACKEND", "unix")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (mut cpeer, rust) = if c_side == "server" {
        let mut c = cmd.spawn().unwrap();
        let mut err = BufReader::new(c.stderr.take().unwrap());
        let mut line = String::new();
        err.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "listening", "xvchan server said {line:?}");
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::stderr()));
        (c, kid("xfer", "client", true, dir.path(), &extra))
    } else {
        let mut k = kid("xfer", "server", true, dir.path(), &extra);
        assert_eq!(await_key(&mut k, "listening"), "1");
        let mut c = cmd.spawn().unwrap();
        let mut err = c.stderr.take().unwrap();
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::stderr()));
        (c, k)
    };
    let mut stdin = cpeer.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        use sha2::Digest;
        let mut src = common::Source::new(3, MIB16);
        while src.left_bytes() > 0 {
            stdin.write_all(&src.next_chunk(100_000)).unwrap();
        }
        drop(stdin);
        common::hex(src.hash.finalize())
    });
    let mut stdout = cpeer.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut n = 0u64;
        loop {
            let k = std::io::Read::read(&mut stdout, &mut buf).unwrap();
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            n += k as u64;
        }
        (n, common::hex(h.finalize()))
    });
    let kv = finish(rust);
    let st = cpeer.wait().unwrap();
    assert!(st.success(), "xvchan {c_side} failed: {st:?}");
    let fed = feeder.join().unwrap();
    let (n, out) = reader.join().unwrap();
    assert_eq!(get(&kv, "backend"), "xen");
    assert_eq!(n, MIB16, "libxenvchan received {n} bytes");
    assert_eq!(get(&kv, "sent"), out, "rust -> libxenvchan differs");
    assert_eq!(get(&kv, "got"), fed, "libxenvchan -> rust differs");
    assert_eq!(get(&kv, "closed"), "1");
    if rust_side == "server" {
        // Our server removed its rendezvous and, empty now, its client's
        // directory (as ocaml-vchan does; xensim's xs_rm, like
        // xenstored's, leaves the parents, and no unix-backend peer is
        // here to sweep them).
        let node = dir.path().join("store").join(vpath.trim_start_matches('/'));
        assert!(!node.exists(), "rendezvous left behind: {}", node.display());
        let parent = node.parent().expect("a rendezvous path has a parent");
        assert!(
            !parent.exists(),
            "empty directory left: {}",
            parent.display()
        );
    }
}

#[test]
fn xen_backend_server_libxenvchan_client() {
    with_libxenvchan("server");
}

#[test]
fn libxenvchan_server_xen_backend_client() {
    with_libxenvchan("client");
}
