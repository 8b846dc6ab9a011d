//! Measuring a row: each column's runs, round robin.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::process::Command;
use std::time::Duration;

use crate::cli::Opts;
use crate::peers::{self, OVchan, Values};
use crate::report::{fmt, median, RowOut};
use crate::*;

/// Bytes per run of the Lwt_io, vchan-cat and In_memory streams; else bounds.
const CAT_TOTAL: u64 = 1 << 30;
const PROBE: u64 = 8 * MIB;
const MAX_TOTAL: u64 = 16 << 30;
/// Each stream run of the limit is its best of publishing every ring/N.
const LIMIT_DIVISORS: [usize; 5] = [1, 2, 4, 8, 16];
const VBENCH: &str = "bench/ocaml/vbench.exe";
/// How long the system-call row's sides sleep before each message (µs).
const SYS_DELAY_US: &str = "1000";

pub struct Bench {
    pub opts: Opts,
    ovchan: Result<OVchan, String>,
    tmp: PathBuf,
    /// The vchan-cat row's tmpfs file, made and read once.
    cat_file: OnceCell<tempfile::NamedTempFile>,
}

/// One run: its value (GiB/s, µs, % of a core, calls) and seconds.
#[derive(Clone, Copy)]
struct Sample(f64, f64);

/// A column's runs of a row, and how they were measured when that varies.
type Cell = (Vec<f64>, String);

/// The peers' MODE COUNT SIZE through RING-byte rings ([`crate::role`]).
#[derive(Clone, Copy)]
struct Job {
    mode: &'static str,
    ring: usize,
    count: u64,
    size: usize,
    publish: usize,
    one_line: bool,
}

const fn job(mode: &'static str, ring: usize, count: u64, size: usize) -> Job {
    let (publish, one_line) = (size, false);
    Job {
        mode,
        ring,
        count,
        size,
        publish,
        one_line,
    }
}

impl Job {
    fn args(&self, side: &str) -> String {
        let j = self;
        format!("{side} {} {} {} {}", j.ring, j.mode, j.count, j.size)
    }
}

/// A stream job of `total` bytes through `ring`-byte rings in `chunk`s.
fn stream_job((ring, chunk): (usize, usize), total: u64, publish: usize) -> Job {
    let mut j = job("stream", ring, total, chunk);
    j.publish = publish;
    j
}

impl Bench {
    /// The bench, ocaml-vchan's programs built (or why not), files in `tmp`.
    pub fn new(opts: Opts, tmp: &Path) -> Bench {
        let ovchan = OVchan::build();
        if let Err(e) = &ovchan {
            eprintln!("vchan-bench: ocaml-vchan column: {e}");
        }
        Bench {
            opts,
            ovchan,
            tmp: tmp.to_path_buf(),
            cat_file: OnceCell::new(),
        }
    }

    /// A row of [`ROWS`] in the columns that run (None if none); failures to `errors`.
    pub fn measure_row(
        &self,
        (title, w, most, set): (&'static str, Work, usize, &str),
        errors: &mut Vec<String>,
    ) -> Option<RowOut> {
        let name = |c: Column| format!("{title} / {}", TITLES[c as usize]);
        let only = |c: Column| self.opts.only.as_ref().is_none_or(|o| name(c).contains(o));
        let why_not = |c: Column| match &self.ovchan {
            _ if !set.contains(&LETTERS[c as usize..][..1]) => Some("n/a".to_owned()),
            _ if !only(c) => Some("not run (--only)".into()),
            Err(why) if c == Column::OVchan => Some(why.clone()),
            _ => None,
        };
        let cols: Vec<Column> = COLUMNS
            .into_iter()
            .filter(|&c| why_not(c).is_none())
            .collect();
        if cols.is_empty() {
            return None;
        }
        let (t, mut out) = (Instant::now(), RowOut::empty(title, w));
        out.notes = COLUMNS.map(|c| why_not(c).unwrap_or_default()).to_vec();
        let results = self.row(w, &cols, self.opts.runs.min(most));
        for (&col, r) in cols.iter().zip(results) {
            let at = col as usize;
            let head = format!("{title:<52} {:<14}", TITLES[at]);
            match r {
                Ok((runs, note)) => {
                    let m = median(&runs);
                    let list: Vec<String> = runs.iter().map(|&v| fmt(v)).collect();
                    let (fm, list) = (fmt(m), list.join(", "));
                    eprintln!("{head} median {fm:>8}  runs [{list}]  {note}");
                    (out.median[at], out.runs[at], out.notes[at]) = (m, runs, note);
                }
                Err(e) => {
                    eprintln!("{head} FAILED: {e}");
                    errors.push(format!("{}: {e}", name(col)));
                    out.notes[at] = format!("FAILED: {e}");
                }
            }
        }
        eprintln!("({:.1} s)", t.elapsed().as_secs_f64());
        Some(out)
    }

    /// `runs` runs per column, round robin (run 1 of each, then run 2, ...).
    fn row(&self, work: Work, cols: &[Column], runs: usize) -> Vec<Result<Cell, String>> {
        if work == Work::Syscalls {
            return cols.iter().map(|&c| self.syscalls(c)).collect();
        }
        let total = |c: Column| match work {
            Work::LwtIo | Work::Cat | Work::InMemStream => {
                Ok(self.opts.fixed_total.unwrap_or(CAT_TOTAL))
            }
            Work::Stream(ring, chunk) => self.calibrate(c, (ring, chunk), ring / 4),
            _ => Ok(0),
        };
        let mut totals: Vec<Result<u64, String>> = cols.iter().map(|&c| total(c)).collect();
        let mut cells: Vec<Cell> = vec![(Vec::new(), String::new()); cols.len()];
        for _ in 0..runs {
            for (i, &col) in cols.iter().enumerate() {
                let Ok(total) = totals[i] else { continue };
                match self.measure(work, col, total) {
                    Ok(s) => cells[i].0.push(s.0),
                    Err(e) => totals[i] = Err(e),
                }
            }
        }
        let out = totals.into_iter().zip(cells);
        out.map(|(t, cell)| t.map(|_| cell)).collect()
    }

    /// Bytes per stream run: as many as move in --secs (half for the sweep).
    fn calibrate(&self, col: Column, rc: (usize, usize), publish: usize) -> Result<u64, String> {
        if let Some(t) = self.opts.fixed_total {
            return Ok(t);
        }
        let secs = self.opts.secs / if rc.1 != CHUNK { 2.0 } else { 1.0 };
        let mut total = PROBE;
        let rate = loop {
            let s = self.run(col, stream_job(rc, total, publish))?;
            if s.1 >= secs / 10.0 || total >= MAX_TOTAL {
                break s.0;
            }
            total = (total * 8).min(MAX_TOTAL);
        };
        let want = (rate * secs * (1u64 << 30) as f64) as u64;
        Ok(want.clamp(PROBE, MAX_TOTAL).div_ceil(MIB) * MIB)
    }

    /// A run of the limit: a fifth of `total` at each granularity; the best.
    fn limit_run(&self, rc: (usize, usize), total: u64) -> Result<Sample, String> {
        let mut best: Option<Sample> = None;
        for d in LIMIT_DIVISORS {
            let part = (total / LIMIT_DIVISORS.len() as u64).max(MIB);
            let s = self.run(Column::Limit, stream_job(rc, part, rc.0 / d))?;
            best = Some(best.filter(|b| b.0 >= s.0).unwrap_or(s));
        }
        best.ok_or_else(|| "no granularity".into())
    }

    /// One measured run (`total` from [`calibrate`](Bench::calibrate)).
    fn measure(&self, work: Work, col: Column, total: u64) -> Result<Sample, String> {
        let (rounds, mut stream) = (self.opts.rounds, job("stream", 64 * KIB, total, CHUNK));
        let mut ping = job("ping", PING_RING, rounds, MSG);
        ping.one_line = work == Work::PingPongVchanLayout;
        if work == Work::LwtIo && col != Column::VchanRs {
            stream.mode = "lwtio";
        }
        match work {
            Work::Stream(r, c) if col == Column::Limit => self.limit_run((r, c), total),
            Work::Stream(r, c) => self.run(col, stream_job((r, c), total, 0)),
            Work::PingPong | Work::PingPongVchanLayout => self.run(col, ping),
            Work::Floor => self.run(col, job("bounce", PING_RING, rounds, MSG)),
            Work::LwtIo => self.run(col, stream),
            Work::Cat if col == Column::VchanRs => self.run(col, stream),
            Work::Cat => self.cat(col, total),
            Work::Idle => self.run(col, job("idle", PING_RING, self.opts.idle_ms, 1)),
            Work::Syscalls => Err("measured by syscalls".into()),
            Work::InMemStream => sample(stream, &self.in_memory(col, stream)?),
            Work::InMemPing => sample(ping, &self.in_memory(col, ping)?),
        }
    }

    /// One run of `j` on `col`: the measuring side's sample.
    fn run(&self, col: Column, j: Job) -> Result<Sample, String> {
        sample(j, &self.pair(col, j, &[], None)?)
    }

    /// A pair of `col` running `j` with `env`, the server under `strace` if given.
    fn pair(
        &self,
        col: Column,
        j: Job,
        env: &[(&str, &str)],
        strace: Option<&Path>,
    ) -> Result<Values, String> {
        let (dir, shm) = (self.scratch_dir()?, shm_file()?);
        let layout = ["separate", "vchan"][j.one_line as usize];
        let channel = match col {
            Column::C => "xen".into(),
            Column::Socket | Column::Pipe => TITLES[col as usize].replace("unix ", ""),
            Column::Limit => format!("shm:{}:{layout}", j.publish),
            _ => "vchan".to_owned(),
        };
        // strace goes on the server's own process (inside vchan-xensim).
        let command = |side: &str, strace: Option<&Path>| -> Result<Command, String> {
            let domid = u32::from(side == "client");
            let ov = || built(&self.ovchan).map(|ov| ov.vbench.as_path());
            let mut argv = match col {
                Column::C | Column::OVchan => peers::xensim(domid)?,
                _ => vec![],
            };
            if let Some(out) = strace {
                argv.extend(["strace", "-f", "-c", "-o"].map(OsString::from));
                argv.push(out.into());
            }
            argv.extend(match col {
                Column::OVchan => peers::cmdline(ov()?, &j.args(side)),
                Column::OCaml => peers::cmdline(&peers::dune_exe(VBENCH)?, &j.args(side)),
                _ => peers::cmdline(
                    &peers::own_exe()?,
                    &format!("--role {channel} {}", j.args(side)),
                ),
            });
            let mut c = peers::rooted(&argv, dir.path(), domid);
            c.env("BENCH_SHM", shm.path()).envs(env.iter().copied());
            Ok(c)
        };
        let (server, client) = (command("server", strace)?, command("client", None)?);
        peers::pair(server, client, self.opts.pin)
    }

    /// System calls of the echoing side per round trip, and which.
    fn syscalls(&self, col: Column) -> Result<Cell, String> {
        let (value, mut note) = self.traced(col, None)?;
        if col == Column::OCaml {
            let (d, dnote) = self.traced(col, Some(("BENCH_LWT_ENGINE", "default")))?;
            note += &format!("; under Lwt's default engine (libev) instead: {d:.2} ({dnote})");
        }
        Ok((vec![value], format!("per round trip: {note}")))
    }

    /// [`syscalls`](Bench::syscalls) with `more` in the environment.
    fn traced(&self, col: Column, more: Option<(&str, &str)>) -> Result<(f64, String), String> {
        let env: Vec<_> = [("BENCH_DELAY_US", SYS_DELAY_US)]
            .into_iter()
            .chain(more)
            .collect();
        let mut counts = [BTreeMap::new(), BTreeMap::new()];
        for (i, &rounds) in self.opts.sys_rounds.iter().enumerate() {
            let out = self.tmp.join(format!("strace-{i}"));
            self.pair(col, job("ping", PING_RING, rounds, MSG), &env, Some(&out))?;
            let text = std::fs::read_to_string(&out).map_err(|e| format!("strace output: {e}"))?;
            counts[i] = strace_calls(&text)?;
        }
        let [a, b] = self.opts.sys_rounds;
        let n = |i: usize, k: &String| counts[i].get(k).copied().unwrap_or(0) as f64;
        // Set-up and tear-down differ by a few dozen calls between the two
        // runs: under 0.02 per round, where no call of the round trip is.
        let mut by_call: Vec<(f64, &String)> = (counts[1].keys())
            .map(|k| ((n(1, k) - n(0, k)) / (b - a) as f64, k))
            .filter(|(v, _)| *v >= 0.02)
            .collect();
        by_call.sort_by(|x, y| y.0.total_cmp(&x.0));
        let note: Vec<String> = by_call.iter().map(|(v, k)| format!("{k} {v:.2}")).collect();
        Ok((by_call.iter().map(|(v, _)| v).sum(), note.join(", ")))
    }

    /// `vbench.exe inmem ...` of `col`'s library (both ends in one process).
    fn in_memory(&self, col: Column, j: Job) -> Result<Values, String> {
        let exe = match col {
            Column::OVchan => built(&self.ovchan)?.vbench.clone(),
            _ => peers::dune_exe(VBENCH)?,
        };
        let argv = peers::cmdline(&exe, &j.args("inmem"));
        peers::one(peers::rooted(&argv, &self.tmp, 0), self.opts.pin)
    }

    /// vchan-cat sending a tmpfs file of `total` bytes to /dev/null.
    fn cat(&self, col: Column, total: u64) -> Result<Sample, String> {
        let dir = self.scratch_dir()?;
        if self.cat_file.get().is_none() {
            let _ = self.cat_file.set(tmpfs_file(total)?);
        }
        let file = self.cat_file.get().ok_or("no tmpfs file")?.path();
        let secs = if col == Column::OVchan {
            peers::xencat(built(&self.ovchan)?, file, total, dir.path(), self.opts.pin)?
        } else {
            let exe = peers::dune_exe("bin/vchan_cat.exe")?;
            let mut server = peers::rooted(&peers::cmdline(&exe, "-l -d 1 bench"), dir.path(), 0);
            server.stdout(std::process::Stdio::null());
            let mut client = peers::rooted(&peers::cmdline(&exe, "-N 0 bench"), dir.path(), 1);
            client.stdin(std::fs::File::open(file).map_err(|e| format!("open: {e}"))?);
            let ready = peers::Ready::Publishes(dir.path());
            let (mut s, mut c, t0) = peers::start(server, client, ready, self.opts.pin)?;
            peers::finish(&mut [&mut s, &mut c], t0, Duration::from_micros(500))?.1
        };
        Ok(gib_s(total, secs))
    }

    /// A fresh private directory (short: it holds sockets).
    fn scratch_dir(&self) -> Result<tempfile::TempDir, String> {
        let private = std::os::unix::fs::PermissionsExt::from_mode(0o700);
        let d = tempfile::Builder::new()
            .permissions(private)
            .prefix("vb")
            .tempdir_in(&self.tmp);
        d.map_err(|e| format!("temp dir: {e}"))
    }
}

fn gib_s(bytes: u64, secs: f64) -> Sample {
    Sample(bytes as f64 / secs.max(1e-9) / (1u64 << 30) as f64, secs)
}

/// A fresh file in tmpfs (/dev/shm).
fn shm_file() -> Result<tempfile::NamedTempFile, String> {
    let f = tempfile::Builder::new()
        .prefix("vchan-bench")
        .tempfile_in("/dev/shm");
    f.map_err(|e| format!("tmpfs file: {e}"))
}

/// A program the bench built, or why it did not.
fn built<T>(r: &Result<T, String>) -> Result<&T, String> {
    r.as_ref().map_err(Clone::clone)
}

/// A file of `len` pattern bytes in tmpfs (/dev/shm), read once.
fn tmpfs_file(len: u64) -> Result<tempfile::NamedTempFile, String> {
    use std::io::Write;
    let err = |e: std::io::Error| format!("tmpfs file: {e}");
    let mut f = shm_file()?;
    let pattern = pattern(CHUNK);
    for pos in (0..len).step_by(CHUNK) {
        let n = (len - pos).min(CHUNK as u64) as usize;
        f.write_all(pattern.run(pos, n)).map_err(err)?;
    }
    f.flush().map_err(err)?;
    std::io::copy(&mut f.reopen().map_err(err)?, &mut std::io::sink()).map_err(err)?;
    Ok(f)
}

/// The sample of a run of `j` from what its measuring side printed, checked.
fn sample(j: Job, v: &Values) -> Result<Sample, String> {
    let get = |key: &str| -> Result<f64, String> {
        let s = v.get(key).ok_or(format!("no {key}= in the output"))?;
        s.parse().map_err(|_| format!("bad {key}= in the output"))
    };
    match j.mode {
        "stream" | "lwtio" => {
            let (samples, secs) = (get("samples")? as u64, get("secs")?);
            if samples < j.count / SAMPLE || secs <= 0.0 {
                let checked = samples * SAMPLE;
                return Err(format!("only {checked} of {} bytes verified", j.count));
            }
            Ok(gib_s(get("bytes")? as u64, secs))
        }
        "idle" => {
            let (cpu, wall) = (get("cpu_secs")?, get("wall_secs")?);
            if wall < j.count as f64 / 1000.0 * 0.9 {
                return Err(format!("blocked only {wall:.3} s of {} ms", j.count));
            }
            Ok(Sample(100.0 * cpu / wall.max(1e-9), wall))
        }
        _ => get("median_ns").map(|ns| Sample(ns / 1000.0, ns * 1e-9)),
    }
}

/// The calls in `strace -c`'s output, but the workload's own sleeps.
fn strace_calls(text: &str) -> Result<BTreeMap<String, u64>, String> {
    let mut total = BTreeMap::new();
    for f in text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
    {
        // % time, seconds, usecs/call, calls, [errors,] syscall
        let name = f.last().copied().unwrap_or_default();
        if f.len() >= 5
            && f[0].parse::<f64>().is_ok()
            && name != "total"
            && !name.contains("nanosleep")
        {
            total.insert(
                name.to_owned(),
                f[3].parse().map_err(|_| format!("strace: {f:?}"))?,
            );
        }
    }
    Some(total)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "no system calls in strace's output".into())
}
