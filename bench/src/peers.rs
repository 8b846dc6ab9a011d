//! The programs of a cell and running them: a server, then its client once
//! the server listens, each pinned to a CPU of its own; results are the
//! `key=value` lines they print ([`vchan_test_support::values`]).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vchan_test_support::{kill, values, wait_all};

use crate::role::PATH;

pub type Values = HashMap<String, String>;

/// Any one run that takes longer than this is killed.
const LIMIT: Duration = Duration::from_secs(60);

/// How a server shows that it listens: it prints `listening`, or its
/// rendezvous appears under the directory given (vchan-cat and xencat,
/// whose output is their data).
pub enum Ready<'a> {
    Says,
    Publishes(&'a Path),
}

/// `inner` (its program, arguments and environment) run by `program ARGS`.
pub fn wrapped(program: &str, args: &[&OsStr], inner: Command) -> Command {
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
        .env("VCHAN_DOMID", domid.to_string());
    c.env_remove("VCHAN_BACKEND");
    c
}

/// A file of the project (this crate is bench/ in it).
pub fn project(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// A program of the project's dune build.
pub fn dune_exe(path: &str) -> Result<PathBuf, String> {
    let exe = project("_build/default").join(path);
    exe.exists()
        .then_some(exe)
        .ok_or(format!("{path} not built (dune build)"))
}

/// vchan-xensim (next to this binary), which runs a program of Xen's C
/// libraries over xensim.
pub struct Xensim(PathBuf);

impl Xensim {
    pub fn find() -> Result<Xensim, String> {
        let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
        let launcher = exe.with_file_name("vchan-xensim");
        if !launcher.exists() {
            let how = "cargo build --release -p xensim && bash scripts/link-xensim.sh target";
            return Err(format!("{} not built ({how})", launcher.display()));
        }
        Ok(Xensim(launcher))
    }

    /// `inner` run by vchan-xensim in domain `domid`.
    pub fn under(&self, domid: u32, inner: Command) -> Command {
        let d = domid.to_string();
        let launcher = self.0.to_str().unwrap_or("vchan-xensim");
        wrapped(
            launcher,
            &["--domid".as_ref(), d.as_ref(), "--".as_ref()],
            inner,
        )
    }
}

/// bench/c/xvbench.c compiled into `dir` (`cc -O2 ... -lxenvchan`), with
/// the launcher that runs it.
pub fn build_c(dir: &Path) -> Result<(Xensim, PathBuf), String> {
    let (launcher, source, program) = (
        Xensim::find()?,
        project("bench/c/xvbench.c"),
        dir.join("xvbench"),
    );
    let mut cc = Command::new("cc");
    cc.args(["-O2", "-Wall", "-o"])
        .arg(&program)
        .arg(&source)
        .arg("-lxenvchan");
    match cc.status() {
        Ok(st) if st.success() => Ok((launcher, program)),
        _ => Err(format!("cc {} -lxenvchan failed", source.display())),
    }
}

/// mirage/ocaml-vchan's xencat and bench/ocaml/vbench.ml over it, from
/// its pinned sources, each run under vchan-xensim (but `vbench inmem`).
pub struct OVchan {
    pub xencat: PathBuf,
    pub vbench: PathBuf,
    pub xensim: Xensim,
}

impl OVchan {
    /// Build them (scripts/ocaml-vchan.sh, in target/ocaml-vchan); the
    /// error says why they are not there ("not built: ...").
    pub fn build() -> Result<OVchan, String> {
        let out = Command::new("bash")
            .arg(project("scripts/ocaml-vchan.sh"))
            .stderr(Stdio::piped())
            .output();
        let out = out.map_err(|e| format!("not built: cannot run scripts/ocaml-vchan.sh: {e}"))?;
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

/// With `cpu`, make `c` run on that CPU alone.
fn pin(c: &mut Command, cpu: Option<usize>) {
    let Some(cpu) = cpu.filter(|&c| c < 8 * std::mem::size_of::<libc::cpu_set_t>()) else {
        return;
    };
    // SAFETY: cpu_set_t is plain bits; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: cpu is within the set's bits (checked above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: the hook makes one async-signal-safe system call on a set it
    // owns, and neither locks nor allocates.
    unsafe {
        c.pre_exec(move || match libc::sched_setaffinity(0, size, &set) {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        });
    }
}

fn spawn(cmd: &mut Command, what: &str) -> Result<Child, String> {
    cmd.stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawn {what}: {e}"))
}

/// Start `server` (on CPU `pin[0]`), then `client` (on `pin[1]`) once the
/// server listens; the two and the client's start.
pub fn start(
    mut server: Command,
    mut client: Command,
    ready: Ready,
    cpus: Option<[usize; 2]>,
) -> Result<(Child, Child, Instant), String> {
    pin(&mut server, cpus.map(|p| p[0]));
    pin(&mut client, cpus.map(|p| p[1]));
    if let Ready::Says = ready {
        server.stdout(Stdio::piped());
        client.stdout(Stdio::piped());
    }
    let mut srv = spawn(&mut server, "the server")?;
    let listens = match ready {
        // Nothing follows the line before the client runs.
        Ready::Says => srv.stdout.take().is_some_and(|out| {
            let (mut out, mut line) = (BufReader::new(out), String::new());
            while out.read_line(&mut line).is_ok_and(|n| n > 0) && line.trim() != "listening" {
                line.clear();
            }
            srv.stdout = Some(out.into_inner());
            line.trim() == "listening"
        }),
        Ready::Publishes(dir) => {
            let store = dir.join("store").join(PATH.trim_start_matches('/'));
            let published = store.join("event-channel");
            let deadline = Instant::now() + LIMIT;
            while !published.exists()
                && Instant::now() < deadline
                && srv.try_wait().ok().flatten().is_none()
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            published.exists()
        }
    };
    let t0 = Instant::now();
    match listens {
        true => match spawn(&mut client, "the client") {
            Ok(cli) => Ok((srv, cli, t0)),
            Err(e) => Err(e).inspect_err(|_| kill(&mut srv)),
        },
        false => Err("the server did not listen".to_owned()).inspect_err(|_| kill(&mut srv)),
    }
}

/// Wait for children that must succeed (polling every `poll`: wall times
/// are read this finely); what they printed, and the seconds from `t0`
/// until the last exited.
pub fn finish(
    children: &mut [&mut Child],
    t0: Instant,
    poll: Duration,
) -> Result<(Values, f64), String> {
    let done = wait_all(children, t0, LIMIT, poll)?;
    let mut text = String::new();
    for out in children.iter_mut().filter_map(|c| c.stdout.as_mut()) {
        out.read_to_string(&mut text)
            .map_err(|e| format!("output: {e}"))?;
    }
    Ok((values(&text), done.into_iter().fold(0.0, f64::max)))
}

/// A pair that prints its results.
pub fn pair(server: Command, client: Command, pin: Option<[usize; 2]>) -> Result<Values, String> {
    let (mut s, mut c, t0) = start(server, client, Ready::Says, pin)?;
    Ok(finish(&mut [&mut s, &mut c], t0, Duration::from_millis(5))?.0)
}

/// One process (on CPU `pin[0]`) that must succeed; what it printed.
pub fn one(mut cmd: Command, cpus: Option<[usize; 2]>) -> Result<Values, String> {
    pin(&mut cmd, cpus.map(|p| p[0]));
    let mut child = spawn(cmd.stdout(Stdio::piped()), "")?;
    Ok(finish(&mut [&mut child], Instant::now(), Duration::from_millis(5))?.0)
}

/// ocaml-vchan's xencat end to end under vchan-xensim, `xencat -l 1`
/// receiving, `xencat 0` sending the tmpfs file `file` of `total` bytes;
/// the seconds from the client's start until both exited. xencat ends
/// when its input ends, closing its vchan before its last write is through
/// (then writing into the ring it unmapped, and crashing): so the sender's
/// input is a pipe fed from the file and closed only once the receiver
/// wrote everything out; the receiver's output is drained to /dev/null
/// and counted, its input held open. std::io::copy moves both with
/// splice(2), never through this process.
pub fn xencat(
    ov: &OVchan,
    file: &Path,
    total: u64,
    dir: &Path,
    pin: Option<[usize; 2]>,
) -> Result<f64, String> {
    let xencat = |domid, args: &[&str]| {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let mut c = ov
            .xensim
            .under(domid, rooted(&ov.xencat, dir, domid, &args));
        c.stdin(Stdio::piped());
        c
    };
    let mut server = xencat(0, &["-l", "1", "bench"]);
    server.stdout(Stdio::piped());
    let mut client = xencat(1, &["0", "bench"]);
    client.stdout(Stdio::null());
    let src = std::fs::File::open(file).map_err(|e| format!("open: {e}"))?;
    let (mut s, mut c, t0) = start(server, client, Ready::Publishes(dir), pin)?;
    let (held, fed, drained) = (s.stdin.take(), c.stdin.take(), s.stdout.take());
    let (all_out, wait_all_out) = std::sync::mpsc::channel::<()>();
    let feeder = std::thread::spawn(move || {
        let mut to = fed.ok_or("no pipe")?;
        let n = std::io::copy(&mut src.take(total), &mut to)
            .map_err(|e| format!("feeding xencat: {e}"))?;
        // Until the receiver wrote everything (or gave up).
        let _ = wait_all_out.recv();
        (n == total)
            .then_some(())
            .ok_or("the file ended early".to_owned())
    });
    let drainer = std::thread::spawn(move || {
        let null = std::fs::OpenOptions::new().write(true).open("/dev/null");
        let (mut from, mut null) = (drained.ok_or("no pipe")?, null.map_err(|e| e.to_string())?);
        let mut got = 0u64;
        let mut all_out = Some(all_out);
        loop {
            let n = std::io::copy(&mut (&mut from).take(1 << 20), &mut null);
            match n.map_err(|e| format!("draining xencat -l: {e}"))? {
                0 => return Ok::<u64, String>(got),
                n => got += n,
            }
            if got >= total {
                all_out.take();
            }
        }
    });
    let res = finish(&mut [&mut s, &mut c], t0, Duration::from_micros(500));
    // Both ends are gone (or killed): the receiver's output has ended.
    drop(held);
    let got = drainer.join().map_err(|_| "the drainer panicked")??;
    feeder.join().map_err(|_| "the feeder panicked")??;
    let secs = res?.1;
    match got == total {
        true => Ok(secs),
        false => Err(format!("xencat -l wrote {got} of {total} bytes")),
    }
}
