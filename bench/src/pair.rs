//! Server and client as two separate programs (vchan-rs: this binary in
//! a child role; C: bench/c/xvbench.c under vchan-xensim), started the
//! same way: the server first, the client once the server printed
//! `listening`. Results are the `key=value` lines they print.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
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

/// vchan-xensim, next to this binary (cargo's target/release).
fn xensim_launcher() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    let launcher = exe.with_file_name("vchan-xensim");
    if !launcher.exists() {
        return Err(format!(
            "{} not built (cargo build --release -p xensim && bash scripts/link-xensim.sh target)",
            launcher.display()
        ));
    }
    Ok(launcher)
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
        let launcher = xensim_launcher()?;
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

/// mirage/ocaml-vchan's programs, from its pinned sources: its xencat
/// and bench/ocaml/vbench.ml over it, each run under vchan-xensim.
pub struct OVchan {
    xencat: PathBuf,
    vbench: PathBuf,
    xensim: PathBuf,
}

impl OVchan {
    /// Build them (scripts/ocaml-vchan.sh, a scratch dune workspace in
    /// target/ocaml-vchan); the error says why they are not there.
    pub fn build() -> Result<OVchan, String> {
        let project = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let out = Command::new("bash")
            .arg(project.join("scripts/ocaml-vchan.sh"))
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("not built: cannot run scripts/ocaml-vchan.sh: {e}"))?;
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr);
            return Err(why.trim().to_owned());
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut paths = text.lines().map(PathBuf::from);
        let (Some(xencat), Some(vbench)) = (paths.next(), paths.next()) else {
            return Err(format!(
                "not built: scripts/ocaml-vchan.sh printed {text:?}"
            ));
        };
        let xensim = xensim_launcher().map_err(|e| format!("not run: {e}"))?;
        Ok(OVchan {
            xencat,
            vbench,
            xensim,
        })
    }

    /// vbench.exe over ocaml-vchan, rooted at `dir` (for
    /// [`under_xensim`](OVchan::under_xensim), but for `inmem`).
    pub fn vbench(&self, dir: &Path, args: &[String]) -> Command {
        let mut c = Command::new(&self.vbench);
        c.args(args)
            .env("VCHAN_UNIX_DIR", dir)
            .env_remove("VCHAN_BACKEND");
        c
    }

    /// ocaml-vchan's xencat, rooted at `dir`.
    pub fn xencat(&self, dir: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(&self.xencat);
        c.args(args).env("VCHAN_UNIX_DIR", dir);
        c
    }

    /// `inner` (its program, arguments and environment) run by
    /// vchan-xensim in domain `domid`.
    pub fn under_xensim(&self, domid: u32, inner: Command) -> Command {
        let mut c = Command::new(&self.xensim);
        c.args(["--domid", &domid.to_string(), "--"])
            .arg(inner.get_program())
            .args(inner.get_args());
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c
    }
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
        .map_err(|e| format!("spawn the server: {e}"))?;
    let published = dir.join("store").join(PATH.trim_start_matches('/'));
    let deadline = Instant::now() + limit;
    while !published.join("event-channel").exists() {
        if Instant::now() > deadline || srv.try_wait().ok().flatten().is_some() {
            kill(&mut srv);
            return Err("the server did not listen".into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let t0 = Instant::now();
    let mut cli = match client.spawn() {
        Ok(c) => c,
        Err(e) => {
            kill(&mut srv);
            return Err(format!("spawn the client: {e}"));
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
            return Err(format!("timed out after {limit:?}"));
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let mut end: f64 = 0.0;
    for (i, d) in done.into_iter().enumerate() {
        let Some((st, at)) = d else { continue };
        if !st.success() {
            return Err(format!("{} failed: {st}", ["the server", "the client"][i]));
        }
        end = end.max(at);
    }
    Ok(end)
}

/// Move up to `len` bytes from `from` to `to` with splice(2) (one of them
/// a pipe), without copying them through this process; the bytes moved,
/// 0 at end of input.
fn splice(from: &impl AsRawFd, to: &impl AsRawFd, len: usize) -> std::io::Result<usize> {
    // SAFETY: two open descriptors, no offsets (both positions advance).
    let n = unsafe {
        libc::splice(
            from.as_raw_fd(),
            std::ptr::null_mut(),
            to.as_raw_fd(),
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE,
        )
    };
    usize::try_from(n).map_err(|_| std::io::Error::last_os_error())
}

/// A pipe: (read end, write end), both close-on-exec.
fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`, which holds two.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: two fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// ocaml-vchan's xencat end to end, under vchan-xensim: `xencat -l 1`
/// receiving, `xencat 0` sending the tmpfs file `file` of `total` bytes;
/// the seconds from the client's start until both exited (as
/// [`run_cat`]). xencat ends when its standard input ends, closing its
/// vchan at once, before its last buffered write is through (it then
/// writes into the ring it unmapped, and crashes): so the sender's input
/// is a pipe that this process fills from the file with splice(2) and
/// closes once the receiver has written everything out; the receiver's
/// output is a pipe that this process drains into /dev/null, also with
/// splice(2), counting; the receiver's input is a pipe held open.
pub fn run_xencat(
    ov: &OVchan,
    file: &Path,
    total: u64,
    dir: &Path,
    limit: Duration,
    pin: Option<[usize; 2]>,
) -> Result<f64, String> {
    let (srv_in, srv_in_held) = pipe()?;
    let (srv_out_drained, srv_out) = pipe()?;
    let (cli_in, cli_in_fed) = pipe()?;
    let mut server = ov.under_xensim(0, ov.xencat(dir, &["-l", "1", "bench"]));
    server.stdin(srv_in).stdout(srv_out);
    let mut client = ov.under_xensim(1, ov.xencat(dir, &["0", "bench"]));
    client.stdin(cli_in).stdout(Stdio::null());
    let src = std::fs::File::open(file).map_err(|e| format!("open: {e}"))?;
    let (all_out, wait_all_out) = std::sync::mpsc::channel::<()>();
    let feeder = std::thread::spawn(move || -> Result<(), String> {
        let mut left = total;
        while left > 0 {
            let n = splice(&src, &cli_in_fed, left.min(1 << 20) as usize)
                .map_err(|e| format!("feeding xencat: {e}"))?;
            if n == 0 {
                return Err("the file ended early".into());
            }
            left -= n as u64;
        }
        // Until the receiver wrote everything (or gave up): then xencat's
        // input ends.
        let _ = wait_all_out.recv();
        drop(cli_in_fed);
        Ok(())
    });
    let drainer = std::thread::spawn(move || -> Result<u64, String> {
        let null = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .map_err(|e| format!("/dev/null: {e}"))?;
        let mut got = 0u64;
        let mut all_out = Some(all_out);
        loop {
            let n = splice(&srv_out_drained, &null, 1 << 20)
                .map_err(|e| format!("draining xencat -l: {e}"))?;
            if n == 0 {
                return Ok(got);
            }
            got += n as u64;
            if got >= total {
                all_out.take();
            }
        }
    });
    let res = run_cat(server, client, dir, limit, pin);
    // Both ends are gone (or killed): the receiver's output has ended, and
    // the feeder was told (or its channel dropped with the drainer).
    drop(srv_in_held);
    let got = drainer.join().map_err(|_| "the drainer panicked")??;
    feeder.join().map_err(|_| "the feeder panicked")??;
    let secs = res?;
    if got != total {
        return Err(format!("xencat -l wrote {got} of {total} bytes"));
    }
    Ok(secs)
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
