//! Debian's unmodified libxenvchan (through tests/c/xvchan.c) and
//! vchan-socket-proxy, running on xensim under `vchan-xensim`, against
//! vchan-rs unix-backend endpoints.

#[path = "../../vchan/tests/common/mod.rs"]
mod common;
mod support;

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vchan_test_support::kill;

use common::{hex, Source};
use sha2::{Digest, Sha256};
use support::*;
use vchan::{Endpoint, State};

#[test]
fn c_server_rust_client_64mib_each_way() {
    let dir = tmpdir();
    let child = c_server(dir.path(), PATH, 65536, 65536, "stream");
    let mut ep = rust_client(dir.path(), PATH);
    let t = Instant::now();
    duplex(child, &mut ep, 64 * MIB, 64 * MIB, 1);
    eprintln!(
        "C server <-> Rust client, 64 MiB each way: {:?}",
        t.elapsed()
    );
    assert!(
        common::walk(dir.path()).iter().all(|p| p.is_dir()),
        "files left: {:?}",
        common::walk(dir.path())
    );
}

#[test]
fn rust_server_c_client_64mib_each_way() {
    let dir = tmpdir();
    let mut ep = rust_server(dir.path(), PATH, 1 << 20, 1 << 20);
    let child = spawn_c(1, dir.path(), &["client", "0", PATH, "stream"]);
    assert_eq!(ep.accept(T).unwrap(), State::Connected);
    let t = Instant::now();
    duplex(child, &mut ep, 64 * MIB, 64 * MIB, 2);
    eprintln!(
        "Rust server <-> C client, 64 MiB each way: {:?}",
        t.elapsed()
    );
}

/// Orders Xen's C server picks (protocol.md): ring sizes (left, right).
fn c_server_sizes(read_min: u64, write_min: u64) -> (usize, usize) {
    let page_order = |n: u64| (12..=20).find(|o| n <= 1 << o).unwrap_or(20);
    let (l, r) = if read_min <= 1024 && write_min <= 2048 {
        (10, 11)
    } else if read_min <= 2048 && write_min <= 1024 {
        (11, 10)
    } else if read_min <= 2048 {
        (11, page_order(write_min))
    } else if write_min <= 2048 {
        (page_order(read_min), 11)
    } else {
        (page_order(read_min), page_order(write_min))
    };
    (1 << l, 1 << r)
}

#[test]
fn c_server_ring_size_matrix() {
    let sizes = [1024u64, 2048, 4096, 65536, 1 << 20];
    let dir = tmpdir();
    let mut seed = 100;
    for &rmin in &sizes {
        for &wmin in &sizes {
            seed += 1;
            let path = format!("/local/domain/0/data/vchan/1/m{seed}");
            let child = c_server(dir.path(), &path, rmin, wmin, "stream");
            let mut ep = rust_client(dir.path(), &path);
            let (left, right) = c_server_sizes(rmin, wmin);
            assert_eq!(
                ep.write_ring_size().unwrap(),
                left,
                "left ring for {rmin}/{wmin}"
            );
            assert_eq!(
                ep.read_ring_size().unwrap(),
                right,
                "right ring for {rmin}/{wmin}"
            );
            duplex(child, &mut ep, 300_000, 200_000, seed);
        }
    }
}

/// Rust sends `n` random packets (length packet, then payload) to an
/// echoing C peer and checks each echo.
fn packets(ep: &mut Endpoint, n: usize, seed: u64) {
    use rand::{Rng, RngCore, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let max = ep
        .write_ring_size()
        .unwrap()
        .min(ep.read_ring_size().unwrap());
    let mut back = vec![0u8; max];
    for _ in 0..n {
        let len = rng.gen_range(1..=max);
        let mut p = vec![0u8; len];
        rng.fill_bytes(&mut p);
        assert_eq!(ep.send(&(len as u32).to_le_bytes()).unwrap(), 4);
        assert_eq!(ep.send(&p).unwrap(), len);
        let mut hdr = [0u8; 4];
        assert_eq!(ep.recv(&mut hdr).unwrap(), 4);
        assert_eq!(u32::from_le_bytes(hdr) as usize, len);
        assert_eq!(ep.recv(&mut back[..len]).unwrap(), len);
        assert!(back[..len] == p[..], "echo differs ({len} bytes)");
    }
    assert_eq!(ep.send(&0u32.to_le_bytes()).unwrap(), 4);
    let mut hdr = [0u8; 4];
    assert_eq!(ep.recv(&mut hdr).unwrap(), 4);
    assert_eq!(hdr, [0; 4]);
    // The C side closes after the last echo: end-of-stream.
    assert_eq!(ep.recv(&mut hdr).unwrap(), 0);
}

#[test]
fn packets_c_server_rust_client() {
    let dir = tmpdir();
    let mut child = c_server(dir.path(), PATH, 8192, 16384, "echo-packets");
    let mut ep = rust_client(dir.path(), PATH);
    packets(&mut ep, 500, 7);
    wait_ok(&mut child, Duration::from_secs(10), "C echo server");
}

#[test]
fn packets_rust_server_c_client() {
    let dir = tmpdir();
    let mut ep = rust_server(dir.path(), PATH, 4096, 2048);
    let mut child = spawn_c(1, dir.path(), &["client", "0", PATH, "echo-packets"]);
    assert_eq!(ep.accept(T).unwrap(), State::Connected);
    packets(&mut ep, 500, 8);
    wait_ok(&mut child, Duration::from_secs(10), "C echo client");
}

/// Read to end-of-stream; (hex SHA-256, length).
#[test]
fn c_closes_first_everything_written_is_read() {
    for role in ["server", "client"] {
        let dir = tmpdir();
        let total = 3 * MIB + 12345;
        let (mut child, mut ep) = c_and_rust(dir.path(), role, 4096, 65536, "stream-close");
        let fed = feed(child.stdin.take().unwrap(), 9, total);
        let out = drain(child.stdout.take().unwrap());
        let (got, n) = read_to_end(&mut ep);
        assert_eq!(ep.state().unwrap(), State::Exited);
        assert_eq!(n, total, "C {role}: bytes before end-of-stream");
        assert_eq!(got, fed.join().unwrap(), "C {role}: data");
        wait_ok(&mut child, Duration::from_secs(10), "C peer");
        assert_eq!(out.join().unwrap().1, 0);
    }
}

#[test]
fn rust_closes_first_everything_written_is_read() {
    for role in ["server", "client"] {
        let dir = tmpdir();
        let total = 3 * MIB + 777;
        let (mut child, mut ep) = c_and_rust(dir.path(), role, 65536, 4096, "stream");
        drop(child.stdin.take());
        let out = drain(child.stdout.take().unwrap());
        let mut src = Source::new(10, total);
        while src.left_bytes() > 0 {
            ep.write_all(&src.next_chunk(200_000)).unwrap();
        }
        // Close with the ring (likely) still full.
        ep.close().unwrap();
        wait_ok(&mut child, Duration::from_secs(20), "C peer");
        let (got, n) = out.join().unwrap();
        assert_eq!(n, total, "C {role}: bytes before end-of-stream");
        assert_eq!(got, hex(src.hash.finalize()), "C {role}: data");
    }
}

#[test]
fn sigkilled_c_peer_is_closed_within_a_second() {
    for role in ["server", "client"] {
        let dir = tmpdir();
        let (mut child, mut ep) = c_and_rust(dir.path(), role, 4096, 4096, "stream");
        // The C side is connected and idle (stdin open, nothing to send).
        ep.write_all(b"ping").unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut four = [0u8; 4];
        out.read_exact(&mut four).unwrap();
        assert_eq!(&four, b"ping");
        assert_eq!(ep.state().unwrap(), State::Connected);
        let t = Instant::now();
        kill(&mut child);
        let mut buf = [0u8; 16];
        let n = ep.read(&mut buf).unwrap();
        let took = t.elapsed();
        assert_eq!(n, 0, "end-of-stream after the C {role} died");
        assert_eq!(ep.state().unwrap(), State::Exited);
        assert!(
            took < Duration::from_secs(1),
            "C {role} death seen after {took:?}"
        );
        eprintln!("SIGKILLed C {role} seen closed after {took:?}");
    }
}

/// Child process entry: a Rust client that connects and idles until it
/// is killed.
#[test]
#[ignore = "child process entry point"]
fn child() {
    let role = common::child_role();
    let dir = std::env::var("VCHAN_UNIX_DIR").unwrap();
    let mut ep = match role.as_str() {
        "idle-client" => rust_client(Path::new(&dir), PATH),
        "idle-server" => {
            let mut ep = rust_server(Path::new(&dir), PATH, 4096, 4096);
            println!("listening=1");
            std::io::stdout().flush().unwrap();
            assert_eq!(ep.accept(T).unwrap(), State::Connected);
            ep
        }
        other => panic!("unknown child role {other:?}"),
    };
    ep.write_all(b"hi").unwrap();
    println!("connected=1");
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

/// Read the child's stdout up to the line `want`.
fn await_line(out: &mut impl std::io::BufRead, want: &str) {
    loop {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "Rust child ended early"
        );
        if line.trim() == want {
            return;
        }
    }
}

#[test]
fn sigkilled_rust_peer_is_closed_for_the_c_side() {
    // xensim must carry out the dead side's unmap-notify for libxenvchan:
    // clear the peer's live byte and raise the event.
    for role in ["server", "client"] {
        let dir = tmpdir();
        let (mut c, mut r, mut rout) = if role == "server" {
            let c = c_server(dir.path(), PATH, 4096, 4096, "stream");
            let mut r = common::spawn("child", "idle-client", 1, dir.path(), &[]);
            let rout = std::io::BufReader::new(r.stdout.take().unwrap());
            (c, r, rout)
        } else {
            let mut r = common::spawn("child", "idle-server", 0, dir.path(), &[]);
            let mut rout = std::io::BufReader::new(r.stdout.take().unwrap());
            await_line(&mut rout, "listening=1");
            let c = spawn_c(1, dir.path(), &["client", "0", PATH, "stream"]);
            (c, r, rout)
        };
        // (The child's stdout stays open until it is killed.)
        await_line(&mut rout, "connected=1");
        let mut out = c.stdout.take().unwrap();
        let mut two = [0u8; 2];
        out.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"hi");
        let t = Instant::now();
        kill(&mut r);
        // The C side (stdin still open) exits once it sees the peer closed.
        wait_ok(&mut c, Duration::from_secs(2), "C peer after its peer died");
        drop(rout);
        eprintln!(
            "C {role} saw the SIGKILLed Rust peer closed after {:?}",
            t.elapsed()
        );
    }
}

#[test]
fn socket_proxy_server_sends_a_file_to_a_rust_client() {
    let dir = tmpdir();
    let files = tmpdir();
    let (file, hash) = random_file(files.path(), 5 * MIB + 3, 11);
    let path = "/local/domain/0/data/vchan/1/proxy";
    let mut proxy = under_xensim(
        0,
        dir.path(),
        &socket_proxy(),
        &["-m", "server", "1", path, "-"],
    )
    .stdin(std::fs::File::open(&file).unwrap())
    .stdout(Stdio::null())
    .spawn()
    .expect("spawn vchan-socket-proxy");
    let mut ep = rust_client(dir.path(), path);
    // vchan-socket-proxy, at the end of its input, writes its last bytes
    // and then waits for an event unconditionally; if that last write
    // found room, no event is due (the peer only signals reads that were
    // asked for), and the proxy never closes. A peer must then prod it:
    // we write a byte (its output is /dev/null) when idle for 200 ms.
    ep.set_nonblocking(true);
    let mut h = Sha256::new();
    let mut n = 0u64;
    let mut buf = vec![0u8; 100_000];
    let mut prods = 0;
    loop {
        match ep.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => {
                h.update(&buf[..k]);
                n += k as u64;
            }
            Err(e) if common::would_block(&e) => {
                if common::poll_in(&[ep.as_raw_fd()], 200).is_empty() {
                    prods += 1;
                    assert!(prods < 50, "proxy never closed");
                    let _ = ep.write(b"!");
                }
                ep.consume_events().unwrap();
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    eprintln!("vchan-socket-proxy server needed {prods} prod(s)");
    let got = hex(h.finalize());
    assert_eq!(n, 5 * MIB + 3);
    assert_eq!(got, hash);
    wait_ok(
        &mut proxy,
        Duration::from_secs(10),
        "vchan-socket-proxy server",
    );
}

#[test]
fn socket_proxy_client_receives_a_file_from_a_rust_server() {
    let dir = tmpdir();
    let len = 5 * MIB + 5;
    let path = "/local/domain/0/data/vchan/1/proxy";
    let mut ep = rust_server(dir.path(), path, 65536, 65536);
    let mut proxy = under_xensim(
        1,
        dir.path(),
        &socket_proxy(),
        &["-m", "client", "0", path, "-"],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .spawn()
    .expect("spawn vchan-socket-proxy");
    // Keep its stdin open: the proxy stops at end of its input.
    let stdin = proxy.stdin.take().unwrap();
    let out = drain(proxy.stdout.take().unwrap());
    assert_eq!(ep.accept(T).unwrap(), State::Connected);
    let mut src = Source::new(12, len);
    while src.left_bytes() > 0 {
        ep.write_all(&src.next_chunk(100_000)).unwrap();
    }
    // The proxy drops what is still in the ring when it sees us closed:
    // wait until it has taken everything.
    let ring = ep.write_ring_size().unwrap();
    let t = Instant::now();
    while ep.buffer_space().unwrap() < ring {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "proxy stopped reading"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    ep.close().unwrap();
    wait_ok(
        &mut proxy,
        Duration::from_secs(10),
        "vchan-socket-proxy client",
    );
    drop(stdin);
    let (got, n) = out.join().unwrap();
    assert_eq!(n, len);
    assert_eq!(got, hex(src.hash.finalize()));
}

/// Whether the installed Xen asks for a domain's state with
/// `xc_domain_getinfo_single` (Xen 4.18 and later: `xc_domaininfo_t`)
/// rather than `xc_domain_getinfo` (`xc_dominfo_t`, gone from its header).
fn xc_getinfo_single() -> bool {
    dynamic_symbols(&xen_lib("xenctrl"), false)
        .iter()
        .any(|(_, n)| n == "xc_domain_getinfo_single")
}

#[test]
fn xc_dominfo_layout_matches_the_header() {
    // xensim writes the installed Xen's xc_dominfo_t or xc_domaininfo_t by
    // offsets; check them against xenctrl.h.
    let dir = tmpdir();
    let c = dir.path().join("sz.c");
    let (src, want) = if xc_getinfo_single() {
        (
            "#include <stdio.h>\n#include <stddef.h>\n#include <xenctrl.h>\n\
             int main(void){printf(\"%zu %zu %u\\n\", offsetof(xc_domaininfo_t, domain),\n\
             offsetof(xc_domaininfo_t, flags), (unsigned)XEN_DOMINF_running); return 0;}\n",
            "0 4 32",
        )
    } else {
        (
            "#include <stdio.h>\n#include <string.h>\n#include <xenctrl.h>\n\
             int main(void){xc_dominfo_t d; unsigned w; memset(&d,0,sizeof d); d.running=1;\n\
             memcpy(&w,(char*)&d+8,4); printf(\"%zu %zu %u\\n\", sizeof d, offsetof(xc_dominfo_t, ssidref), w); return 0;}\n",
            "112 4 32",
        )
    };
    std::fs::write(&c, src).unwrap();
    let bin = dir.path().join("sz");
    assert!(Command::new("cc")
        .arg("-o")
        .arg(&bin)
        .arg(&c)
        .status()
        .unwrap()
        .success());
    let out = Command::new(&bin).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), want);
}

/// `(version, name)` of the dynamic symbols `objdump -T` lists for `file`,
/// undefined (`und`) or defined.
fn dynamic_symbols(file: &Path, und: bool) -> Vec<(String, String)> {
    let out = Command::new("objdump")
        .arg("-T")
        .arg(file)
        .output()
        .expect("run objdump");
    assert!(out.status.success(), "objdump -T {}", file.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("*UND*") == und && (l.contains(" DF ") || l.contains(" DO ")))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let name = f.last()?.to_string();
            let ver = f
                .get(f.len().checked_sub(2)?)?
                .trim_matches(|c| c == '(' || c == ')');
            Some((ver.to_string(), name))
        })
        .collect()
}

/// The `SONAME` of a shared object, from `readelf -d`.
fn soname(file: &Path) -> String {
    let out = Command::new("readelf")
        .arg("-d")
        .arg(file)
        .output()
        .expect("run readelf");
    assert!(out.status.success(), "readelf -d {}", file.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.contains("(SONAME)"))
        .and_then(|l| Some(l.split('[').nth(1)?.trim_end_matches(']').to_string()))
        .unwrap_or_default()
}

#[test]
fn every_versioned_import_of_debians_binaries_is_exported() {
    // Each of Xen's libraries with its soname, exporting only its own
    // functions at Xen's version (libxenctrl's: those of the installed
    // Xen's libxenctrl); the implementation behind them, libxensim.so, only
    // xensim_* at its private version.
    let xenctrl = xen_lib("xenctrl");
    let ctrl_soname = soname(&xenctrl);
    let ctrl_version = dynamic_symbols(&xenctrl, false)
        .into_iter()
        .find(|(_, n)| n == "xc_interface_open")
        .map(|(v, _)| v)
        .expect("xc_interface_open in the installed libxenctrl");
    let mut ours = Vec::new();
    for (file, so, version, prefixes) in [
        (
            "libxengnttab.so.1",
            "libxengnttab.so.1",
            "VERS_1.0",
            &["xengnttab_", "xengntshr_"][..],
        ),
        (
            "libxenevtchn.so.1",
            "libxenevtchn.so.1",
            "VERS_1.0",
            &["xenevtchn_"][..],
        ),
        (
            "libxenstore.so.4",
            "libxenstore.so.4",
            "VERS_4.0",
            &["xs_"][..],
        ),
        (
            "libxenctrl-xensim.so",
            ctrl_soname.as_str(),
            ctrl_version.as_str(),
            &["xc_"][..],
        ),
    ] {
        let path = xensim_lib().join(file);
        assert_eq!(soname(&path), so, "{file}");
        // (The version definition itself is listed as a symbol too.)
        for (ver, name) in dynamic_symbols(&path, false)
            .into_iter()
            .filter(|(v, n)| v != n)
        {
            assert_eq!(ver, version, "{file}: {name}");
            assert!(
                prefixes.iter().any(|p| name.starts_with(p)),
                "{file} exports {name}"
            );
            ours.push((ver, name));
        }
    }
    let core = xensim_lib().join("libxensim.so");
    for (ver, name) in dynamic_symbols(&core, false)
        .into_iter()
        .filter(|(v, n)| v != n)
    {
        assert!(
            ver == "XENSIM_1" && name.starts_with("xensim_"),
            "libxensim.so exports {name}@{ver}"
        );
    }
    let mut checked = 0;
    for bin in [xen_lib("xenvchan"), socket_proxy()] {
        for (ver, name) in dynamic_symbols(&bin, true) {
            let ours_too = ["xengnttab_", "xengntshr_", "xenevtchn_", "xs_", "xc_"]
                .iter()
                .any(|p| name.starts_with(p));
            if !ours_too {
                continue;
            }
            assert!(
                ours.contains(&(ver.clone(), name.clone())),
                "{} needs {name}@{ver}, xensim lacks it",
                bin.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} imports checked");
}

#[test]
fn launcher_reports_missing_libraries() {
    let out = Command::new(launcher())
        .args(["--", "true"])
        .env("VCHAN_XENSIM_LIB", "/nonexistent/xensim")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/xensim"), "{err}");
    // And with them, it runs the command with the environment set.
    let out = Command::new(launcher())
        .args([
            "--domid",
            "7",
            "--",
            "sh",
            "-c",
            "echo $VCHAN_DOMID:$LD_LIBRARY_PATH+$LD_PRELOAD",
        ])
        .env("VCHAN_XENSIM_LIB", xensim_lib())
        .env("LD_LIBRARY_PATH", "/old")
        .env_remove("LD_PRELOAD")
        .output()
        .unwrap();
    assert!(out.status.success());
    let want = format!(
        "7:{}:/old+{}",
        xensim_lib().display(),
        xensim_lib().join("libxenctrl-xensim.so").display()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), want);
}

#[test]
fn c_abi_checks_of_store_events_grants_and_ctrl() {
    // tests/c/abi.c, linked against Debian's four libraries, run on
    // xensim: all four libraries must share libxensim.so's state (the
    // grant library finds the event channel ports).
    let dir = tmpdir();
    let files = tmpdir();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = files.path().join("abi");
    let st = Command::new("cc")
        .args(["-O1", "-Wall", "-Werror", "-o"])
        .arg(&bin)
        .arg(manifest.join("tests/c/abi.c"))
        .args(xc_getinfo_single().then_some("-DXC_GETINFO_SINGLE"))
        .args(["-lxenstore", "-lxenevtchn", "-lxengnttab", "-lxenctrl"])
        .status()
        .expect("run cc");
    assert!(st.success(), "cc tests/c/abi.c failed");
    let out = under_xensim(5, dir.path(), &bin, &[])
        .stdout(Stdio::piped())
        .output()
        .expect("run abi");
    assert!(out.status.success(), "abi checks failed: {:?}", out.status);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

#[test]
fn launcher_usage_errors_say_what_is_wrong() {
    for (args, says) in [
        (
            &["--domid", "abc", "--", "true"][..],
            "--domid: invalid domain id \"abc\"",
        ),
        (
            &["--domid=0x1", "--", "true"],
            "--domid: invalid domain id \"0x1\"",
        ),
        (
            &["--domid", "32752", "--", "true"],
            "--domid: invalid domain id \"32752\"",
        ),
        (&["--domid"], "--domid needs a value"),
        (&["--bogus", "--", "true"], "unknown argument \"--bogus\""),
        (&["true"], "unknown argument \"true\""),
        (&[], "missing -- before the command"),
        (&["--"], "no command after --"),
    ] {
        let out = Command::new(launcher()).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(err.contains("usage: vchan-xensim"), "{args:?}: {err}");
    }
}
