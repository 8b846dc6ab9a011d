//! The programs of a cell: a server, then its client once the server listens.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vchan_test_support::{kill, values, wait_all};

pub type Values = HashMap<String, String>;

/// Any run that takes longer is killed.
const LIMIT: Duration = Duration::from_secs(60);

/// How a server shows that it listens: it says so, or its rendezvous appears.
pub enum Ready<'a> {
    Says,
    Publishes(&'a Path),
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

pub fn own_exe() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("own path: {e}"))
}

/// The command line `argv` rooted at `dir` in domain `domid`.
pub fn rooted(argv: &[OsString], dir: &Path, domid: u32) -> Command {
    let mut c = Command::new(&argv[0]);
    c.args(&argv[1..])
        .env("VCHAN_UNIX_DIR", dir)
        .env("VCHAN_DOMID", domid.to_string());
    c.env_remove("VCHAN_BACKEND");
    c
}

/// `exe` and the words of `args`.
pub fn cmdline(exe: &Path, args: &str) -> Vec<OsString> {
    [exe.into()]
        .into_iter()
        .chain(args.split(' ').map(OsString::from))
        .collect()
}

/// The start of a command line run over xensim in domain `domid`.
pub fn xensim(domid: u32) -> Result<Vec<OsString>, String> {
    let launcher = own_exe()?.with_file_name("vchan-xensim");
    let how = "cargo build --release -p xensim && bash scripts/link-xensim.sh target";
    match launcher.exists() {
        true => Ok(cmdline(&launcher, &format!("--domid {domid} --"))),
        false => Err(format!("{} not built ({how})", launcher.display())),
    }
}

/// mirage/ocaml-vchan's xencat and bench/ocaml/vbench.ml over it.
pub struct OVchan {
    pub xencat: PathBuf,
    pub vbench: PathBuf,
}

impl OVchan {
    /// Build them from the pinned sources (scripts/ocaml-vchan.sh), or say why not.
    pub fn build() -> Result<OVchan, String> {
        let out = Command::new("bash")
            .arg(project("scripts/ocaml-vchan.sh"))
            .output();
        let out = out.map_err(|e| format!("not built: cannot run scripts/ocaml-vchan.sh: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let bad = || format!("not built: scripts/ocaml-vchan.sh printed {text:?}");
        let (xencat, vbench) = text.trim().split_once('\n').ok_or_else(bad)?;
        xensim(0).map_err(|e| format!("not run: {e}"))?;
        Ok(OVchan {
            xencat: xencat.into(),
            vbench: vbench.into(),
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

/// Start `server`, then `client` once the server listens; the two and when.
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
    let mut srv = server
        .spawn()
        .map_err(|e| format!("spawn the server: {e}"))?;
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
            let published = dir
                .join("store")
                .join(&crate::role::PATH[1..])
                .join("event-channel");
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
    let client = match listens {
        true => client.spawn().map_err(|e| format!("spawn the client: {e}")),
        false => Err("the server did not listen".to_owned()),
    };
    client.inspect_err(|_| kill(&mut srv)).map(|c| (srv, c, t0))
}

/// Wait for children that must succeed; what they printed, and seconds from `t0`.
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

pub fn pair(server: Command, client: Command, pin: Option<[usize; 2]>) -> Result<Values, String> {
    let (mut s, mut c, t0) = start(server, client, Ready::Says, pin)?;
    Ok(finish(&mut [&mut s, &mut c], t0, Duration::from_millis(5))?.0)
}

/// One process (on CPU `cpus[0]`) that must succeed; what it printed.
pub fn one(mut cmd: Command, cpus: Option<[usize; 2]>) -> Result<Values, String> {
    pin(&mut cmd, cpus.map(|p| p[0]));
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    Ok(finish(&mut [&mut child], Instant::now(), Duration::from_millis(5))?.0)
}

/// ocaml-vchan's xencat sending `file`'s `total` bytes: its input is held
/// open until the receiver wrote them all (xencat closes when input ends).
pub fn xencat(
    ov: &OVchan,
    file: &Path,
    total: u64,
    dir: &Path,
    pin: Option<[usize; 2]>,
) -> Result<f64, String> {
    let xencat = |domid, args: &str, out: Stdio| {
        let argv = [xensim(domid)?, cmdline(&ov.xencat, args)].concat();
        let mut c = rooted(&argv, dir, domid);
        c.stdin(Stdio::piped()).stdout(out);
        Ok::<_, String>(c)
    };
    let (server, client) = (
        xencat(0, "-l 1 bench", Stdio::piped())?,
        xencat(1, "0 bench", Stdio::null())?,
    );
    let src = std::fs::File::open(file).map_err(|e| format!("open: {e}"))?;
    let (mut s, mut c, t0) = start(server, client, Ready::Publishes(dir), pin)?;
    let (held, fed, drained) = (s.stdin.take(), c.stdin.take(), s.stdout.take());
    let (all_out, wait_all_out) = std::sync::mpsc::channel::<()>();
    let feeder = std::thread::spawn(move || {
        let n = std::io::copy(&mut src.take(total), &mut fed.ok_or("no pipe")?);
        let n = n.map_err(|e| format!("feeding xencat: {e}"))?;
        let _ = wait_all_out.recv(); // until the receiver wrote everything (or gave up)
        (n == total)
            .then_some(())
            .ok_or("the file ended early".to_owned())
    });
    let drainer = std::thread::spawn(move || {
        let null = std::fs::OpenOptions::new().write(true).open("/dev/null");
        let (mut from, mut null) = (drained.ok_or("no pipe")?, null.map_err(|e| e.to_string())?);
        let (mut got, mut all_out) = (0u64, Some(all_out));
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
    drop(held); // both ends are gone (or killed): the receiver's output ends
    let got = drainer.join().map_err(|_| "the drainer panicked")??;
    feeder.join().map_err(|_| "the feeder panicked")??;
    let secs = res?.1;
    (got == total)
        .then_some(secs)
        .ok_or(format!("xencat -l wrote {got} of {total} bytes"))
}
