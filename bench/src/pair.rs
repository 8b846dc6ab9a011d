//! Server and client as two separate programs (vchan-rs: this binary in
//! a child role; C: bench/c/xvbench.c under vchan-xensim), started the
//! same way: the server first, the client once the server printed
//! `listening`. Results are the `key=value` lines they print.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::workload::{self, Link};

/// The rendezvous both ends use (server domain 0, client domain 1).
pub const PATH: &str = "/local/domain/0/data/vchan/1/bench";

/// Results of one pair: the server's and the client's `key=value` lines.
pub type Values = HashMap<String, String>;

/// How a server shows that it listens: it prints `listening` (and then
/// its results, as the client does), or its rendezvous appears under the
/// directory given (vchan-cat and xencat, whose output is their data).
pub enum Ready<'a> {
    Says,
    Publishes(&'a Path),
}

/// Run `server`, then `client` once the server listens; kill both if they
/// take longer than `limit`. With `pin`, the server on CPU `pin[0]`, the
/// client on CPU `pin[1]`. What each printed (with [`Ready::Says`]), and
/// the seconds from the client's start until both exited.
pub fn run(
    mut server: Command,
    mut client: Command,
    ready: Ready,
    limit: Duration,
    pin: Option<[usize; 2]>,
) -> Result<(Values, Values, f64), String> {
    pin_to(&mut server, pin.map(|p| p[0]));
    pin_to(&mut client, pin.map(|p| p[1]));
    if let Ready::Says = ready {
        server.stdout(Stdio::piped());
        client.stdout(Stdio::piped());
    }
    let mut srv = spawn(&mut server, "the server")?;
    let mut out = srv.stdout.take().map(BufReader::new);
    let deadline = Instant::now() + limit;
    let listens = match (&ready, &mut out) {
        (Ready::Says, Some(out)) => {
            let mut line = String::new();
            loop {
                line.clear();
                match out.read_line(&mut line) {
                    Ok(0) | Err(_) => break false,
                    Ok(_) if line.trim() == "listening" => break true,
                    Ok(_) => {}
                }
            }
        }
        (Ready::Publishes(dir), _) => {
            let published = dir.join("store").join(PATH.trim_start_matches('/'));
            while !published.join("event-channel").exists()
                && Instant::now() < deadline
                && srv.try_wait().ok().flatten().is_none()
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            published.join("event-channel").exists()
        }
        _ => false,
    };
    if !listens {
        kill(&mut srv);
        return Err("the server did not listen".into());
    }
    let t0 = Instant::now();
    let mut cli = match spawn(&mut client, "the client") {
        Ok(c) => c,
        Err(e) => {
            kill(&mut srv);
            return Err(e);
        }
    };
    // vchan-cat's time is the wall time: poll finely.
    let poll = Duration::from_micros(if out.is_some() { 5000 } else { 500 });
    let done = wait_all(&mut [&mut srv, &mut cli], t0, limit, poll)?;
    let s = out.map_or(Ok(Values::new()), output)?;
    let c = cli.stdout.take().map_or(Ok(Values::new()), output)?;
    Ok((s, c, done.into_iter().fold(0.0, f64::max)))
}

/// Run one process (pinned to `pin[0]`) that must succeed within `limit`;
/// what it printed.
pub fn run_one(
    mut cmd: Command,
    limit: Duration,
    pin: Option<[usize; 2]>,
) -> Result<Values, String> {
    pin_to(&mut cmd, pin.map(|p| p[0]));
    let mut child = spawn(cmd.stdout(Stdio::piped()), "")?;
    wait_all(
        &mut [&mut child],
        Instant::now(),
        limit,
        Duration::from_millis(5),
    )?;
    output(child.stdout.take().ok_or("stdout")?)
}

fn spawn(cmd: &mut Command, what: &str) -> Result<Child, String> {
    cmd.stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawn {what}: {e}"))
}

/// The `key=value` lines of a child's remaining output.
fn output(mut r: impl Read) -> Result<Values, String> {
    let mut text = String::new();
    r.read_to_string(&mut text)
        .map_err(|e| format!("output: {e}"))?;
    Ok(values(&text))
}

/// Wait for every child to exit successfully, polling every `poll`; kill
/// them all at the first failure or after `limit` from `t0`. The seconds
/// from `t0` after which each exited.
fn wait_all(
    children: &mut [&mut Child],
    t0: Instant,
    limit: Duration,
    poll: Duration,
) -> Result<Vec<f64>, String> {
    let n = children.len();
    let mut done = vec![None; n];
    while done.iter().any(Option::is_none) {
        let mut failed = (t0.elapsed() > limit).then(|| format!("timed out after {limit:?}"));
        for (i, c) in children.iter_mut().enumerate() {
            match c.try_wait() {
                _ if done[i].is_some() => {}
                Ok(Some(st)) if st.success() => done[i] = Some(t0.elapsed().as_secs_f64()),
                Ok(Some(st)) => failed = Some(format!("process {} of {n} failed: {st}", i + 1)),
                Ok(None) => {}
                Err(e) => failed = Some(format!("wait: {e}")),
            }
        }
        if let Some(e) = failed {
            children.iter_mut().for_each(|c| kill(c));
            return Err(e);
        }
        std::thread::sleep(poll);
    }
    Ok(done.into_iter().flatten().collect())
}

/// With `cpu`, make `cmd` run on that CPU alone.
fn pin_to(cmd: &mut Command, cpu: Option<usize>) {
    if let Some(cpu) = cpu {
        let set = crate::kernel::only_cpu(cpu);
        // SAFETY: the hook makes one system call (sched_setaffinity),
        // async-signal-safe, and touches no locks or allocations.
        unsafe {
            cmd.pre_exec(move || crate::kernel::set_affinity(&set));
        }
    }
}

fn kill(c: &mut Child) {
    let _ = c.kill();
    let _ = c.wait();
}

/// The `key=value` lines of a measuring side's output.
pub fn values(s: &str) -> Values {
    s.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// A value printed by a measuring side.
pub fn get<T: std::str::FromStr>(v: &Values, key: &str) -> Result<T, String> {
    v.get(key)
        .ok_or_else(|| format!("no {key}= in the output"))?
        .parse()
        .map_err(|_| format!("bad {key}= in the output"))
}

/// vchan-xensim (next to this binary, cargo's target/release), which
/// runs a program of Xen's C libraries over xensim.
pub struct Xensim(PathBuf);

impl Xensim {
    fn find() -> Result<Xensim, String> {
        let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
        let launcher = exe.with_file_name("vchan-xensim");
        if !launcher.exists() {
            let how = "cargo build --release -p xensim && bash scripts/link-xensim.sh target";
            return Err(format!("{} not built ({how})", launcher.display()));
        }
        Ok(Xensim(launcher))
    }

    /// Compile the C side `source` into `dir` (with `cc -O2 ...
    /// -lxenvchan`); the launcher and the program.
    pub fn build_c(source: &Path, dir: &Path) -> Result<(Xensim, PathBuf), String> {
        let launcher = Xensim::find()?;
        let program = dir.join("xvbench");
        let mut cc = Command::new("cc");
        cc.args(["-O2", "-Wall", "-o"])
            .arg(&program)
            .arg(source)
            .arg("-lxenvchan");
        if !cc.status().map_err(|e| format!("run cc: {e}"))?.success() {
            return Err(format!("cc {} -lxenvchan failed", source.display()));
        }
        Ok((launcher, program))
    }

    /// `inner` run by vchan-xensim in domain `domid`.
    pub fn under(&self, domid: u32, inner: Command) -> Command {
        wrapped(
            self.0.as_os_str(),
            &[
                "--domid".as_ref(),
                domid.to_string().as_ref(),
                "--".as_ref(),
            ],
            inner,
        )
    }
}

/// `inner` (its program, arguments and environment) run by `program
/// ARGS`, which runs it.
pub fn wrapped(program: &OsStr, args: &[&OsStr], inner: Command) -> Command {
    let mut c = Command::new(program);
    c.args(args).arg(inner.get_program()).args(inner.get_args());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c
}

/// `exe ARGS` rooted at `dir` in domain `domid` (the unix backend's and
/// xensim's environment).
pub fn rooted(exe: &Path, dir: &Path, domid: u32, args: &[String]) -> Command {
    let mut c = Command::new(exe);
    c.args(args)
        .env("VCHAN_UNIX_DIR", dir)
        .env("VCHAN_DOMID", domid.to_string())
        .env_remove("VCHAN_BACKEND");
    c
}

/// This binary in a vchan-rs role (see [`role`]).
pub fn rust_command(dir: &Path, domid: u32, args: &[String]) -> Result<Command, String> {
    let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    let mut c = rooted(&exe, dir, domid, &[]);
    c.arg("--role").args(args);
    Ok(c)
}

/// A program of the repository's dune build.
pub fn dune_exe(path: &str) -> Result<PathBuf, String> {
    let exe = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../_build/default")
        .join(path);
    if !exe.exists() {
        return Err(format!("{} not built (dune build)", exe.display()));
    }
    Ok(exe)
}

/// bench/ocaml/vbench.exe (the OCaml roles) in domain `domid`, rooted
/// at `dir`.
pub fn ocaml_command(dir: &Path, domid: u32, args: &[String]) -> Result<Command, String> {
    Ok(rooted(
        &dune_exe("bench/ocaml/vbench.exe")?,
        dir,
        domid,
        args,
    ))
}

/// mirage/ocaml-vchan's programs, from its pinned sources: its xencat
/// and bench/ocaml/vbench.ml over it, each run under vchan-xensim (but
/// for `vbench inmem`).
pub struct OVchan {
    xencat: PathBuf,
    pub vbench: PathBuf,
    pub xensim: Xensim,
}

impl OVchan {
    /// Build them (scripts/ocaml-vchan.sh, a scratch dune workspace in
    /// target/ocaml-vchan); the error says why they are not there.
    pub fn build() -> Result<OVchan, String> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/ocaml-vchan.sh");
        let out = Command::new("bash")
            .arg(script)
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("not built: cannot run scripts/ocaml-vchan.sh: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut paths = text.lines().map(PathBuf::from);
        let (Some(xencat), Some(vbench)) = (paths.next(), paths.next()) else {
            return Err(format!(
                "not built: scripts/ocaml-vchan.sh printed {text:?}"
            ));
        };
        let xensim = Xensim::find().map_err(|e| format!("not run: {e}"))?;
        Ok(OVchan {
            xencat,
            vbench,
            xensim,
        })
    }
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
pub fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
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
/// vchan-cat's). xencat ends when its standard input ends, closing its
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
    let xencat = |domid, args: &[&str]| {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        ov.xensim
            .under(domid, rooted(&ov.xencat, dir, domid, &args))
    };
    let mut server = xencat(0, &["-l", "1", "bench"]);
    server.stdin(srv_in).stdout(srv_out);
    let mut client = xencat(1, &["0", "bench"]);
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
    let res = run(server, client, Ready::Publishes(dir), limit, pin);
    // Both ends are gone (or killed): the receiver's output has ended, and
    // the feeder was told (or its channel dropped with the drainer).
    drop(srv_in_held);
    let got = drainer.join().map_err(|_| "the drainer panicked")??;
    feeder.join().map_err(|_| "the feeder panicked")??;
    let (_, _, secs) = res?;
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

/// The vchan-rs child roles, the same as xvbench's and vbench's (the
/// rendezvous root in VCHAN_UNIX_DIR; the server is domain 0, the client
/// domain 1):
///   server RING stream|pong|idle COUNT SIZE
///   client stream|ping|idle COUNT SIZE
/// `BENCH_SEGMENT=N` sets the endpoints' publish granularity.
pub fn role(args: &[String]) -> Result<(), String> {
    use vchan::{DomId, Endpoint, UnixBackend};
    let usage = "usage: vchan-bench --role server RING stream|pong|idle COUNT SIZE | client stream|ping|idle COUNT SIZE";
    let (server, rest) = match args.split_first() {
        Some((r, rest)) if r == "server" && rest.len() == 4 => (true, &rest[1..]),
        Some((r, rest)) if r == "client" && rest.len() == 3 => (false, rest),
        _ => return Err(usage.into()),
    };
    fn num<T: std::str::FromStr>(v: &str) -> Result<T, String> {
        v.parse().map_err(|_| format!("bad number {v:?}"))
    }
    let (mode, count, size): (&str, u64, usize) = (&rest[0], num(&rest[1])?, num(&rest[2])?);
    let dom = |d: u32| DomId::new(d).map_err(|e| format!("domid {d}: {e}"));
    let dir = std::env::var_os("VCHAN_UNIX_DIR").ok_or("VCHAN_UNIX_DIR is not set")?;
    let (me, peer) = if server { (0, 1) } else { (1, 0) };
    let backend = std::sync::Arc::new(
        UnixBackend::new(dir.into(), dom(me)?).map_err(|e| format!("unix backend: {e}"))?,
    );
    let mut ep = if server {
        let ring: usize = num(&args[1])?;
        let mut ep = Endpoint::listen_at(backend, dom(peer)?, PATH, ring, ring)
            .map_err(|e| format!("listen: {e}"))?;
        ep.set_nonblocking(false);
        println!("listening");
        ep.accept(Some(Duration::from_secs(30)))
            .map_err(|e| format!("accept: {e}"))?;
        ep
    } else {
        Endpoint::connect_at(backend, dom(peer)?, PATH, Some(Duration::from_secs(30)))
            .map_err(|e| format!("connect: {e}"))?
    };
    ep.set_nonblocking(false);
    if let Ok(v) = std::env::var("BENCH_SEGMENT") {
        let n: usize = num(&v)?;
        ep.set_segments(n, n)
            .map_err(|e| format!("segments: {e}"))?;
    }
    let mut link = EpLink(ep);
    let out = match (server, mode) {
        (true, "stream") => workload::stream_read(&mut link, count, size)?,
        (true, "pong") => workload::pong(&mut link, count, size).map(|()| String::new())?,
        (true, "idle") => workload::idle_read(&mut link)?,
        (false, "stream") => {
            workload::stream_write(&mut link, count, size).map(|()| String::new())?
        }
        (false, "ping") => workload::ping(&mut link, count, size)?,
        (false, "idle") => workload::idle_write(&mut link, count).map(|()| String::new())?,
        _ => return Err(format!("unknown mode {mode}\n{usage}")),
    };
    print!("{out}");
    link.0.close().map_err(|e| format!("close: {e}"))
}
