//! Server and client as two separate programs (vchan-rs: this binary in
//! a child role; C: bench/c/xvbench.c under vchan-xensim), started the
//! same way: the server first, the client once the server printed
//! `listening`. Results are the `key=value` lines they print.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::workload::{self, Link, StreamOutcome};

/// The rendezvous both ends use (server domain 0, client domain 1).
pub const PATH: &str = "/local/domain/0/data/vchan/1/bench";

/// Results of one pair: the server's and the client's `key=value` lines.
pub type Values = HashMap<String, String>;

/// Run `server` then `client`; kill both if they take longer than `limit`.
/// With `pin`, the server on CPU `pin[0]`, the client on CPU `pin[1]`.
pub fn run(
    mut server: Command,
    mut client: Command,
    limit: Duration,
    pin: Option<[usize; 2]>,
) -> Result<(Values, Values), String> {
    pin_pair(&mut server, &mut client, pin);
    let mut srv = server
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawn server: {e}"))?;
    let mut out = BufReader::new(srv.stdout.take().ok_or("server stdout")?);
    let mut line = String::new();
    loop {
        line.clear();
        match out.read_line(&mut line) {
            Ok(0) | Err(_) => {
                kill(&mut srv);
                return Err("server exited before listening".into());
            }
            Ok(_) if line.trim() == "listening" => break,
            Ok(_) => {}
        }
    }
    let mut cli = match client
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            kill(&mut srv);
            return Err(format!("spawn client: {e}"));
        }
    };
    let deadline = Instant::now() + limit;
    let mut done = [false, false];
    let mut failed = None;
    while !(done[0] && done[1]) {
        for (i, c) in [&mut srv, &mut cli].into_iter().enumerate() {
            if done[i] {
                continue;
            }
            match c.try_wait() {
                Ok(Some(st)) => {
                    done[i] = true;
                    if !st.success() {
                        failed.get_or_insert(format!("{} failed: {st}", ["server", "client"][i]));
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    done[i] = true;
                    failed.get_or_insert(format!("wait: {e}"));
                }
            }
        }
        if failed.is_some() || Instant::now() > deadline {
            kill(&mut srv);
            kill(&mut cli);
            return Err(failed.unwrap_or_else(|| format!("timed out after {limit:?}")));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut rest = String::new();
    out.read_to_string(&mut rest)
        .map_err(|e| format!("server output: {e}"))?;
    let mut cli_out = String::new();
    if let Some(mut o) = cli.stdout.take() {
        o.read_to_string(&mut cli_out)
            .map_err(|e| format!("client output: {e}"))?;
    }
    Ok((values(&rest), values(&cli_out)))
}

/// Run one process (pinned to `pin[0]`) that must succeed within `limit`;
/// the `key=value` lines it printed.
pub fn run_one(
    mut cmd: Command,
    limit: Duration,
    pin: Option<[usize; 2]>,
) -> Result<Values, String> {
    if let Some([cpu, _]) = pin {
        let set = crate::kernel::only_cpu(cpu);
        // SAFETY: the hook makes one system call (sched_setaffinity),
        // async-signal-safe, and touches no locks or allocations.
        unsafe {
            cmd.pre_exec(move || crate::kernel::set_affinity(&set));
        }
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => break,
            Ok(Some(st)) => return Err(format!("failed: {st}")),
            Ok(None) if Instant::now() > deadline => {
                kill(&mut child);
                return Err(format!("timed out after {limit:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("wait: {e}")),
        }
    }
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        o.read_to_string(&mut out)
            .map_err(|e| format!("output: {e}"))?;
    }
    Ok(values(&out))
}

/// With `pin`, make `server` run on CPU `pin[0]` and `client` on `pin[1]`.
fn pin_pair(server: &mut Command, client: &mut Command, pin: Option<[usize; 2]>) {
    if let Some([s, c]) = pin {
        for (cmd, cpu) in [(server, s), (client, c)] {
            let set = crate::kernel::only_cpu(cpu);
            // SAFETY: the hook makes one system call (sched_setaffinity),
            // async-signal-safe, and touches no locks or allocations.
            unsafe {
                cmd.pre_exec(move || crate::kernel::set_affinity(&set));
            }
        }
    }
}

fn kill(c: &mut Child) {
    let _ = c.kill();
    let _ = c.wait();
}

fn values(s: &str) -> Values {
    s.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// A value printed by a child.
pub fn get<T: std::str::FromStr>(v: &Values, key: &str) -> Result<T, String> {
    v.get(key)
        .ok_or_else(|| format!("no {key}= in the output"))?
        .parse()
        .map_err(|_| format!("bad {key}= in the output"))
}

/// The stream reader's result.
pub fn stream_outcome(v: &Values) -> Result<StreamOutcome, String> {
    Ok(StreamOutcome {
        bytes: get(v, "bytes")?,
        secs: get(v, "secs")?,
        samples: get(v, "samples")?,
        sleeps: get(v, "sleeps")?,
    })
}

/// Where the C program and its launcher are.
pub struct CSide {
    pub launcher: PathBuf,
    pub program: PathBuf,
}

impl CSide {
    /// Compile `source` into `dir` (with `cc -O2 ... -lxenvchan`) and find
    /// vchan-xensim next to this binary.
    pub fn build(source: &Path, dir: &Path) -> Result<CSide, String> {
        let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
        let launcher = exe.with_file_name("vchan-xensim");
        if !launcher.exists() {
            return Err(format!(
                "{} not built (cargo build --release -p xensim && bash scripts/link-xensim.sh target)",
                launcher.display()
            ));
        }
        let program = dir.join("xvbench");
        let st = Command::new("cc")
            .args(["-O2", "-Wall", "-o"])
            .arg(&program)
            .arg(source)
            .arg("-lxenvchan")
            .status()
            .map_err(|e| format!("run cc: {e}"))?;
        if !st.success() {
            return Err(format!("cc {} -lxenvchan failed", source.display()));
        }
        Ok(CSide { launcher, program })
    }

    /// `xvbench ARGS` under the launcher in domain `domid`, rooted at `dir`.
    pub fn command(&self, domid: u32, dir: &Path, args: &[String]) -> Command {
        let mut c = Command::new(&self.launcher);
        c.arg("--domid")
            .arg(domid.to_string())
            .arg("--")
            .arg(&self.program)
            .args(args)
            .env("VCHAN_UNIX_DIR", dir)
            .env_remove("VCHAN_DOMID");
        c
    }
}

/// This binary in a vchan-rs role (see [`role`]).
pub fn rust_command(args: &[String]) -> Result<Command, String> {
    let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    let mut c = Command::new(exe);
    c.arg("--role").args(args);
    Ok(c)
}

/// The repository's dune build directory.
fn dune_build() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../_build/default")
}

/// bench/ocaml/vbench.exe (the OCaml roles) in domain `domid`, rooted
/// at `dir`.
pub fn ocaml_command(dir: &Path, domid: u32, args: &[String]) -> Result<Command, String> {
    let exe = dune_build().join("bench/ocaml/vbench.exe");
    if !exe.exists() {
        return Err(format!("{} not built (dune build)", exe.display()));
    }
    let mut c = Command::new(exe);
    c.args(args)
        .env("VCHAN_UNIX_DIR", dir)
        .env("VCHAN_DOMID", domid.to_string())
        .env_remove("VCHAN_BACKEND");
    Ok(c)
}

/// vchan-cat, as dune built it.
pub fn vchan_cat() -> Result<PathBuf, String> {
    let exe = dune_build().join("bin/vchan_cat.exe");
    if !exe.exists() {
        return Err(format!("{} not built (dune build)", exe.display()));
    }
    Ok(exe)
}

/// A file of `len` pattern bytes in tmpfs (/dev/shm), removed on drop.
pub fn tmpfs_file(len: u64) -> Result<tempfile::NamedTempFile, String> {
    use std::io::Write;
    let mut f = tempfile::Builder::new()
        .prefix("vchan-bench")
        .tempfile_in("/dev/shm")
        .map_err(|e| format!("tmpfs file: {e}"))?;
    let pattern = crate::pattern::Pattern::new(crate::CHUNK);
    let mut pos = 0u64;
    while pos < len {
        let n = (len - pos).min(crate::CHUNK as u64) as usize;
        f.write_all(pattern.run(pos, n))
            .map_err(|e| format!("tmpfs file: {e}"))?;
        pos += n as u64;
    }
    f.flush().map_err(|e| format!("tmpfs file: {e}"))?;
    Ok(f)
}

/// Run a vchan-cat server (until it listens: its rendezvous appears under
/// `dir`), then a client; the seconds from the client's start until both
/// exited successfully.
pub fn run_cat(
    mut server: Command,
    mut client: Command,
    dir: &Path,
    limit: Duration,
    pin: Option<[usize; 2]>,
) -> Result<f64, String> {
    pin_pair(&mut server, &mut client, pin);
    let mut srv = server
        .spawn()
        .map_err(|e| format!("spawn vchan-cat -l: {e}"))?;
    let published = dir.join("store").join(PATH.trim_start_matches('/'));
    let deadline = Instant::now() + limit;
    while !published.join("event-channel").exists() {
        if Instant::now() > deadline || srv.try_wait().ok().flatten().is_some() {
            kill(&mut srv);
            return Err("vchan-cat -l did not listen".into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let t0 = Instant::now();
    let mut cli = match client.spawn() {
        Ok(c) => c,
        Err(e) => {
            kill(&mut srv);
            return Err(format!("spawn vchan-cat: {e}"));
        }
    };
    let mut done = [None, None];
    while done.iter().any(Option::is_none) {
        for (i, c) in [&mut srv, &mut cli].into_iter().enumerate() {
            if done[i].is_none() {
                if let Ok(Some(st)) = c.try_wait() {
                    done[i] = Some((st, t0.elapsed().as_secs_f64()));
                }
            }
        }
        if Instant::now() > deadline {
            kill(&mut srv);
            kill(&mut cli);
            return Err(format!("vchan-cat timed out after {limit:?}"));
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let mut end: f64 = 0.0;
    for (i, d) in done.into_iter().enumerate() {
        let Some((st, at)) = d else { continue };
        if !st.success() {
            return Err(format!("vchan-cat {} failed: {st}", ["-l", "client"][i]));
        }
        end = end.max(at);
    }
    Ok(end)
}

/// A vchan-rs endpoint as a [`Link`] (blocking mode).
struct EpLink(vchan::Endpoint);

impl Link for EpLink {
    fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, String> {
        match self.0.read(buf) {
            Ok(0) => Err("early end-of-stream".into()),
            Ok(n) => Ok(n),
            Err(e) => Err(format!("read: {e}")),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> Result<(), String> {
        self.0.write_all(buf).map_err(|e| format!("write: {e}"))
    }
}

/// Apply `BENCH_SEGMENT` (bytes, both directions), if set.
fn segment(ep: &mut vchan::Endpoint) -> Result<(), String> {
    if let Ok(v) = std::env::var("BENCH_SEGMENT") {
        let n: usize = v.parse().map_err(|_| format!("bad BENCH_SEGMENT {v:?}"))?;
        ep.set_segments(n, n)
            .map_err(|e| format!("segments: {e}"))?;
    }
    Ok(())
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Result<T, String> {
    args.get(i)
        .ok_or_else(|| format!("missing {what}"))?
        .parse()
        .map_err(|_| format!("bad {what}: {:?}", args[i]))
}

/// The vchan-rs child roles, the same as xvbench's:
///   server DIR RING stream|pong|idle COUNT SIZE
///   client DIR stream|ping|idle COUNT SIZE
/// `BENCH_SEGMENT=N` sets the endpoints' publish granularity.
pub fn role(args: &[String]) -> Result<(), String> {
    use std::sync::Arc;
    use vchan::{DomId, Endpoint, UnixBackend};
    let dom = |d: u32| DomId::new(d).map_err(|e| format!("domid {d}: {e}"));
    let backend = |d: u32| -> Result<Arc<dyn vchan::Backend>, String> {
        let dir = PathBuf::from(args.get(1).ok_or("missing DIR")?);
        Ok(Arc::new(
            UnixBackend::new(dir, dom(d)?).map_err(|e| format!("unix backend: {e}"))?,
        ))
    };
    match args.first().map(String::as_str) {
        Some("server") => {
            let ring: usize = arg(args, 2, "RING")?;
            let mode = args.get(3).ok_or("missing MODE")?;
            let count: u64 = arg(args, 4, "COUNT")?;
            let size: usize = arg(args, 5, "SIZE")?;
            let mut ep = Endpoint::listen_at(backend(0)?, dom(1)?, PATH, ring, ring)
                .map_err(|e| format!("listen: {e}"))?;
            ep.set_nonblocking(false);
            println!("listening");
            ep.accept(Some(Duration::from_secs(30)))
                .map_err(|e| format!("accept: {e}"))?;
            segment(&mut ep)?;
            let mut link = EpLink(ep);
            match mode.as_str() {
                "stream" => workload::stream_read(&mut link, count, size)?.print(),
                "pong" => workload::pong(&mut link, count, size)?,
                "idle" => workload::idle_read(&mut link)?.print(),
                m => return Err(format!("unknown server mode {m}")),
            }
            link.0.close().map_err(|e| format!("close: {e}"))
        }
        Some("client") => {
            let mode = args.get(2).ok_or("missing MODE")?;
            let count: u64 = arg(args, 3, "COUNT")?;
            let size: usize = arg(args, 4, "SIZE")?;
            let mut ep = Endpoint::connect_at(backend(1)?, dom(0)?, PATH, Some(Duration::from_secs(30)))
                .map_err(|e| format!("connect: {e}"))?;
            ep.set_nonblocking(false);
            segment(&mut ep)?;
            let mut link = EpLink(ep);
            match mode.as_str() {
                "stream" => workload::stream_write(&mut link, count, size)?,
                "idle" => workload::idle_write(&mut link, count)?,
                "ping" => {
                    let p = workload::ping(&mut link, count, size)?;
                    println!("median_ns={}", p.median_ns);
                    println!("sleeps={}", p.sleeps);
                    println!("rounds={count}");
                }
                m => return Err(format!("unknown client mode {m}")),
            }
            link.0.close().map_err(|e| format!("close: {e}"))
        }
        _ => Err("usage: vchan-bench --role server DIR RING stream|pong COUNT SIZE | client DIR stream|ping COUNT SIZE".into()),
    }
}
