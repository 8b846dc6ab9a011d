//! Measuring a row: each column's runs, round robin.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::peers::{self, OVchan, Values, Xensim};
use crate::*;

pub struct Bench {
    pub opts: Opts,
    /// vchan-xensim and the C program, or why they are not there.
    c: Result<(Xensim, PathBuf), String>,
    /// ocaml-vchan's programs, or why they were not built.
    ovchan: Result<OVchan, String>,
    tmp: PathBuf,
    /// The vchan-cat row's tmpfs file, made (and read once) on first use
    /// and shared by its runs: the first read of a freshly written tmpfs
    /// file costs the kernel ~40 ms per GiB more than later reads (its
    /// pages are activated on the LRU), which is not vchan-cat's doing.
    cat_file: RefCell<Option<(u64, tempfile::NamedTempFile)>>,
}

/// One measurement: its value (GiB/s for a stream, µs for a ping-pong, %
/// of a core for idle, calls per round trip), the seconds it took, and how
/// often the measuring side (stream reader, pinger) slept.
#[derive(Debug, Clone, Copy)]
struct Sample {
    value: f64,
    secs: f64,
    sleeps: Option<u64>,
}

/// What the two sides of a pair run (see [`crate::role`]): MODE COUNT
/// SIZE through RING-byte rings; the limit publishing every `publish`
/// bytes, its counters in one cache line if `vchan_layout`.
#[derive(Clone, Copy)]
struct Job {
    mode: &'static str,
    ring: usize,
    count: u64,
    size: usize,
    publish: usize,
    vchan_layout: bool,
}

const fn job(mode: &'static str, ring: usize, count: u64, size: usize) -> Job {
    Job {
        mode,
        ring,
        count,
        size,
        publish: 0,
        vchan_layout: false,
    }
}

impl Job {
    /// The peers' arguments: ROLE RING MODE COUNT SIZE.
    fn args(&self, role: &str) -> Vec<String> {
        let (ring, count, size) = (self.ring, self.count, self.size);
        let text = format!("{role} {ring} {} {count} {size}", self.mode);
        text.split(' ').map(String::from).collect()
    }
}

/// A stream job of `work` (a stream row), `total` bytes, the limit
/// publishing every `publish` bytes.
fn stream_job(work: Work, total: u64, publish: usize) -> Job {
    let (ring, chunk) = match work {
        Work::Stream { ring, chunk } => (ring, chunk),
        _ => (64 * KIB, CHUNK),
    };
    Job {
        publish,
        ..job("stream", ring, total, chunk)
    }
}

/// A row's result for one column: its runs, and how it was measured when
/// that varies (the limit's best publish granularity, the system calls).
type Cell = (Vec<Sample>, String);

/// How long the system-call row's sides sleep before each message (µs):
/// well beyond the longest spin, so every wait sleeps.
pub const SYS_DELAY_US: u64 = 1000;

impl Bench {
    /// The bench, with the C and ocaml-vchan programs built (or why not,
    /// said now and in their cells), scratch files in `tmp`.
    pub fn new(opts: Opts, tmp: &Path) -> Bench {
        let (c, ovchan) = (peers::build_c(tmp), OVchan::build());
        if let Err(e) = &c {
            eprintln!("vchan-bench: C column unavailable: {e}");
        }
        if let Err(e) = &ovchan {
            eprintln!("vchan-bench: ocaml-vchan column: {e}");
        }
        let (tmp, cat_file) = (tmp.to_path_buf(), RefCell::new(None));
        Bench {
            opts,
            c,
            ovchan,
            tmp,
            cat_file,
        }
    }

    /// Row `w` of the selected (--only) columns that apply and can run,
    /// `runs` runs each, with a line per cell on stderr; None if no column
    /// is selected. Failed cells go to `errors` too.
    pub fn measure_row(&self, w: Work, runs: usize, errors: &mut Vec<String>) -> Option<RowOut> {
        let name = |c: Column| format!("{} / {}", w.title(), c.title());
        let only = |c: Column| self.opts.only.as_ref().is_none_or(|o| name(c).contains(o));
        let why_not = |c: Column| match (w.not_applicable(c), &self.ovchan) {
            (Some(why), _) => Some(format!("n/a: {why}")),
            (None, _) if !only(c) => Some("not run (--only)".into()),
            (None, Err(why)) if c == Column::OVchan => Some(why.clone()),
            (None, _) => None,
        };
        let cols: Vec<Column> = COLUMNS
            .into_iter()
            .filter(|&c| why_not(c).is_none())
            .collect();
        if cols.is_empty() {
            return None;
        }
        let (t, mut out) = (Instant::now(), RowOut::empty(w));
        out.notes = COLUMNS.map(|c| why_not(c).unwrap_or_default()).to_vec();
        for (&col, r) in cols.iter().zip(self.row(w, &cols, runs)) {
            let (at, head) = (
                col as usize,
                format!("{:<52} {:<14}", w.title(), col.title()),
            );
            let (runs, note) = match r {
                Ok(cell) => cell,
                Err(e) => {
                    eprintln!("{head} FAILED: {e}");
                    errors.push(format!("{}: {e}", name(col)));
                    out.notes[at] = format!("FAILED: {e}");
                    continue;
                }
            };
            let values: Vec<f64> = runs.iter().map(|s| s.value).collect();
            let sleeps: Vec<f64> = runs.iter().filter_map(|s| Some(s.sleeps? as f64)).collect();
            let list =
                |v: &[f64], f: fn(f64) -> String| v.iter().map(|&x| f(x)).collect::<Vec<_>>();
            let (m, list_v) = (fmt(median(&values)), list(&values, fmt).join(", "));
            let mut line = format!("{head} median {m:>8}  runs [{list_v}]");
            if !sleeps.is_empty() {
                line += &format!(
                    "  sleeps [{}]",
                    list(&sleeps, |v| format!("{v:.0}")).join(", ")
                );
            }
            eprintln!("{line}{}{note}", if note.is_empty() { "" } else { "  " });
            (out.median[at], out.sleeps[at]) = (median(&values), median(&sleeps));
            (out.runs[at], out.notes[at]) = (values, note);
        }
        eprintln!("({:.1} s)", t.elapsed().as_secs_f64());
        Some(out)
    }

    /// One row: `runs` runs per column, round-robin over the columns
    /// (run 1 of each, then run 2 of each, ...), so that a change in the
    /// machine's speed (a shared host moving the virtual CPUs) falls on
    /// every column alike.
    fn row(&self, work: Work, cols: &[Column], runs: usize) -> Vec<Result<Cell, String>> {
        if work == Work::Syscalls {
            // One traced pair of runs per column; the note says which calls.
            let cell = |(s, note)| (vec![s], format!("per round trip: {note}"));
            return cols.iter().map(|&c| self.syscalls(c).map(cell)).collect();
        }
        // The limit's stream runs are each the best of several
        // granularities; its cell lists the winners.
        let limit_stream = |col| col == Column::Limit && matches!(work, Work::Stream { .. });
        let total = |col: Column| match work {
            // About a second's worth at a few GiB/s.
            Work::LwtIo | Work::Cat | Work::InMemStream => {
                Ok(self.opts.fixed_total.unwrap_or(CAT_TOTAL))
            }
            Work::Stream { ring, .. } => self.calibrate(work, col, ring / 4),
            _ => Ok(0),
        };
        let mut totals: Vec<Result<u64, String>> = cols.iter().map(|&c| total(c)).collect();
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); cols.len()];
        let mut winners: Vec<String> = Vec::new();
        for _ in 0..runs {
            for (i, &col) in cols.iter().enumerate() {
                let Ok(total) = totals[i] else { continue };
                let r = match limit_stream(col) {
                    true => self.limit_run(work, total).map(|(s, d)| {
                        winners.push(format!("/{d}"));
                        s
                    }),
                    false => self.measure(work, col, total),
                };
                match r {
                    Ok(v) => samples[i].push(v),
                    Err(e) => totals[i] = Err(e),
                }
            }
        }
        let note = |col| match limit_stream(col) {
            true => format!(
                "each run the best of publishing every ring/{LIMIT_DIVISORS:?}; winners: {}",
                winners.join(" ")
            ),
            false => String::new(),
        };
        let cells = cols.iter().zip(totals).zip(samples);
        cells
            .map(|((&col, t), runs)| t.map(|_| (runs, note(col))))
            .collect()
    }

    /// How much one stream run of `work` on `col` moves: probe with
    /// growing amounts until a run lasts a tenth of the target, then size
    /// the measured runs from its rate.
    fn calibrate(&self, work: Work, col: Column, publish: usize) -> Result<u64, String> {
        if let Some(t) = self.opts.fixed_total {
            return Ok(t);
        }
        // The message-size sweep's runs are half as long.
        let secs = match work {
            Work::Stream { chunk, .. } if chunk != CHUNK => self.opts.secs / 2.0,
            _ => self.opts.secs,
        };
        let mut total = PROBE;
        let probe = loop {
            let s = self.run(col, stream_job(work, total, publish))?;
            if s.secs >= secs / 10.0 || total >= MAX_TOTAL {
                break s.value;
            }
            total = (total * 8).min(MAX_TOTAL);
        };
        let want = probe * secs * (1u64 << 30) as f64;
        Ok((want as u64).clamp(PROBE, MAX_TOTAL).div_ceil(MIB) * MIB)
    }

    /// One run of the limit column of a stream row: a fifth of `total`
    /// at each publish granularity ring/1 .. ring/16; the fastest counts,
    /// with its divisor.
    fn limit_run(&self, work: Work, total: u64) -> Result<(Sample, usize), String> {
        let Work::Stream { ring, .. } = work else {
            return Err("not a stream".into());
        };
        let part = (total / LIMIT_DIVISORS.len() as u64).max(MIB);
        let mut best: Option<(Sample, usize)> = None;
        for d in LIMIT_DIVISORS {
            let s = self.run(Column::Limit, stream_job(work, part, ring / d))?;
            if best.as_ref().is_none_or(|(b, _)| s.value > b.value) {
                best = Some((s, d));
            }
        }
        best.ok_or_else(|| "no granularity".into())
    }

    /// One measured run (`total` from [`calibrate`](Bench::calibrate)).
    fn measure(&self, work: Work, col: Column, total: u64) -> Result<Sample, String> {
        let (rounds, stream) = (self.opts.rounds, job("stream", 64 * KIB, total, CHUNK));
        // The limit publishes a whole message at once.
        let ping = Job {
            publish: MSG,
            ..job("ping", PING_RING, rounds, MSG)
        };
        match work {
            Work::Stream { .. } => self.run(col, stream_job(work, total, 0)),
            Work::PingPong => self.run(col, ping),
            Work::PingPongVchanLayout => self.run(
                col,
                Job {
                    vchan_layout: true,
                    ..ping
                },
            ),
            Work::Floor => self.run(col, job("bounce", PING_RING, rounds, MSG)),
            // The Rust 64 KiB stream of the same bytes, for the ratio.
            Work::LwtIo | Work::Cat if col == Column::VchanRs => self.run(col, stream),
            Work::Idle => self.run(col, job("idle", PING_RING, self.opts.idle_ms, 1)),
            Work::Syscalls => self.syscalls(col).map(|(s, _)| s),
            Work::LwtIo => self.run(
                col,
                Job {
                    mode: "lwtio",
                    ..stream
                },
            ),
            Work::Cat => self.cat(col, total),
            Work::InMemStream => sample(stream, &self.in_memory(col, stream)?),
            Work::InMemPing => sample(ping, &self.in_memory(col, ping)?),
        }
    }

    /// One run of `j` on `col`: the measuring side's sample.
    fn run(&self, col: Column, j: Job) -> Result<Sample, String> {
        sample(j, &self.pair(col, j, &[], None)?)
    }

    /// A pair of `col` running `j`, with `env` for both sides, the server
    /// traced into `strace` if given; what they printed.
    fn pair(
        &self,
        col: Column,
        j: Job,
        env: &[(&str, &str)],
        strace: Option<&Path>,
    ) -> Result<Values, String> {
        let dir = self.scratch_dir()?;
        let dir = dir.path();
        let shm = tempfile::Builder::new()
            .prefix("vchan-bench")
            .tempfile_in("/dev/shm");
        let shm = shm.map_err(|e| format!("tmpfs file: {e}"))?;
        let channel = match col {
            Column::Socket => "socket".into(),
            Column::Pipe => "pipe".into(),
            Column::Limit => format!(
                "shm:{}:{}",
                j.publish,
                if j.vchan_layout { "vchan" } else { "separate" }
            ),
            _ => "vchan".to_owned(),
        };
        // The tracer goes on the server's own process (for ocaml-vchan
        // inside vchan-xensim, whose xenstored process is not the
        // endpoint's).
        let command = |domid: u32, args: &[String], strace: Option<&Path>| {
            let t = |c: Command| match strace {
                Some(out) => peers::wrapped(
                    "strace",
                    &["-f".as_ref(), "-c".as_ref(), "-o".as_ref(), out.as_ref()],
                    c,
                ),
                None => c,
            };
            let mut c = match col {
                Column::C => {
                    let (xensim, program) = built(&self.c)?;
                    xensim.under(domid, t(peers::rooted(program, dir, domid, args)))
                }
                Column::OVchan => {
                    let ov = built(&self.ovchan)?;
                    ov.xensim
                        .under(domid, t(peers::rooted(&ov.vbench, dir, domid, args)))
                }
                Column::OCaml => t(peers::rooted(
                    &peers::dune_exe("bench/ocaml/vbench.exe")?,
                    dir,
                    domid,
                    args,
                )),
                _ => {
                    let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
                    let mut c =
                        peers::rooted(&exe, dir, domid, &["--role".into(), channel.clone()]);
                    c.args(args).env("BENCH_SHM", shm.path());
                    t(c)
                }
            };
            c.envs(env.iter().copied());
            Ok::<_, String>(c)
        };
        let (server, client) = (
            command(0, &j.args("server"), strace)?,
            command(1, &j.args("client"), None)?,
        );
        peers::pair(server, client, self.pin())
    }

    /// System calls of the echoing side (the server) per round of a
    /// ping-pong in which both sides sleep [`SYS_DELAY_US`] before each
    /// message (so each side sleeps every round): traced with `strace -c`
    /// over two runs of different lengths, the difference divided by the
    /// difference in rounds (set-up cancels out), the delay's own sleep
    /// not counted; and which calls. The OCaml column runs under
    /// `Vchan_rs_lwt_unix.Engine` (as every OCaml cell does); its note
    /// also gives the figure under Lwt's default engine (libev), which
    /// costs more per wake-up.
    fn syscalls(&self, col: Column) -> Result<(Sample, String), String> {
        let (calls, note) = self.traced_pingpong(col, None)?;
        let sample = Sample {
            value: calls,
            secs: 0.0,
            sleeps: None,
        };
        if col != Column::OCaml {
            return Ok((sample, note));
        }
        let (d, dnote) = self.traced_pingpong(col, Some(("BENCH_LWT_ENGINE", "default")))?;
        Ok((
            sample,
            format!("{note}; under Lwt's default engine (libev) instead: {d:.2} ({dnote})"),
        ))
    }

    /// [`syscalls`](Bench::syscalls) of one column, with `more` in the
    /// environment: the calls per round trip, and which.
    fn traced_pingpong(
        &self,
        col: Column,
        more: Option<(&str, &str)>,
    ) -> Result<(f64, String), String> {
        let delay = SYS_DELAY_US.to_string();
        let env: Vec<(&str, &str)> = [("BENCH_DELAY_US", delay.as_str())]
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
        let per = |name: &String| {
            let n = |i: usize| counts[i].get(name).copied().unwrap_or(0) as f64;
            (n(1) - n(0)) / (b - a) as f64
        };
        // What the two runs' set-up and tear-down do differently (a few
        // dozen openat/close, up or down) shows as stray fractions; over
        // 3,800 rounds that stays under 0.02 per round, where no call of
        // the round trip is: so the total is that of the calls listed,
        // those at 0.02 per round or more.
        let mut by_call: Vec<(f64, &String)> = counts[1]
            .keys()
            .map(|k| (per(k), k))
            .filter(|(v, _)| *v >= 0.02)
            .collect();
        by_call.sort_by(|x, y| y.0.total_cmp(&x.0));
        let note: Vec<String> = by_call.iter().map(|(v, k)| format!("{k} {v:.2}")).collect();
        Ok((by_call.iter().map(|(v, _)| v).sum(), note.join(", ")))
    }

    /// `vbench.exe inmem RING MODE COUNT SIZE` (the In_memory of `col`'s
    /// library, both ends in that one process); what it printed.
    fn in_memory(&self, col: Column, j: Job) -> Result<Values, String> {
        let args = j.args("inmem");
        let exe = match col {
            Column::OVchan => built(&self.ovchan)?.vbench.clone(),
            _ => peers::dune_exe("bench/ocaml/vbench.exe")?,
        };
        peers::one(peers::rooted(&exe, &self.tmp, 0, &args), self.pin())
    }

    /// vchan-cat end to end: a server `vchan-cat -l -d` to /dev/null, a
    /// client `vchan-cat -N` sending a tmpfs file of `total` bytes (and
    /// closing at its end); the wall time from the client's start to both
    /// ends' exit. For ocaml-vchan, its xencat ([`peers::xencat`]).
    fn cat(&self, col: Column, total: u64) -> Result<Sample, String> {
        let dir = self.scratch_dir()?;
        let dir = dir.path();
        let mut cached = self.cat_file.borrow_mut();
        if cached.as_ref().is_none_or(|(len, _)| *len != total) {
            *cached = Some((total, tmpfs_file(total)?));
        }
        let file = cached
            .as_ref()
            .map(|(_, f)| f.path())
            .ok_or("no tmpfs file")?;
        let secs = if col == Column::OVchan {
            peers::xencat(built(&self.ovchan)?, file, total, dir, self.pin())?
        } else {
            let exe = peers::dune_exe("bin/vchan_cat.exe")?;
            let mut server =
                peers::rooted(&exe, dir, 0, &["-l", "-d", "1", "bench"].map(String::from));
            server.stdout(std::process::Stdio::null());
            let mut client = peers::rooted(&exe, dir, 1, &["-N", "0", "bench"].map(String::from));
            client.stdin(std::fs::File::open(file).map_err(|e| format!("open: {e}"))?);
            let (mut s, mut c, t0) =
                peers::start(server, client, peers::Ready::Publishes(dir), self.pin())?;
            peers::finish(&mut [&mut s, &mut c], t0, Duration::from_micros(500))?.1
        };
        Ok(Sample::stream(total, secs, 0))
    }

    fn pin(&self) -> Option<[usize; 2]> {
        self.opts.pin.then_some([0, 1])
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

impl Sample {
    fn stream(bytes: u64, secs: f64, sleeps: u64) -> Sample {
        let value = bytes as f64 / secs.max(1e-9) / (1u64 << 30) as f64;
        Sample {
            value,
            secs,
            sleeps: Some(sleeps),
        }
    }
}

/// A program the bench built, or why it did not.
fn built<T>(r: &Result<T, String>) -> Result<&T, String> {
    r.as_ref().map_err(Clone::clone)
}

/// A file of `len` pattern bytes in tmpfs (/dev/shm), read once.
fn tmpfs_file(len: u64) -> Result<tempfile::NamedTempFile, String> {
    use std::io::Write;
    let err = |e: std::io::Error| format!("tmpfs file: {e}");
    let mut f = tempfile::Builder::new()
        .prefix("vchan-bench")
        .tempfile_in("/dev/shm")
        .map_err(err)?;
    let pattern = pattern(CHUNK);
    for pos in (0..len).step_by(CHUNK) {
        f.write_all(pattern.run(pos, (len - pos).min(CHUNK as u64) as usize))
            .map_err(err)?;
    }
    f.flush().map_err(err)?;
    std::io::copy(&mut f.reopen().map_err(err)?, &mut std::io::sink()).map_err(err)?;
    Ok(f)
}

/// The sample of one run of `j` from what its measuring side printed:
/// a stream run once its reader checked a sample per 4 KiB of the stream
/// and the clock ran, an idle run once it blocked long enough.
fn sample(j: Job, v: &Values) -> Result<Sample, String> {
    fn get<T: std::str::FromStr>(v: &Values, key: &str) -> Result<T, String> {
        let s = v
            .get(key)
            .ok_or_else(|| format!("no {key}= in the output"))?;
        s.parse().map_err(|_| format!("bad {key}= in the output"))
    }
    match j.mode {
        "stream" | "lwtio" => {
            let (samples, secs): (u64, f64) = (get(v, "samples")?, get(v, "secs")?);
            if samples < j.count / SAMPLE || secs <= 0.0 {
                return Err(format!(
                    "only {} of {} bytes verified",
                    samples * SAMPLE,
                    j.count
                ));
            }
            Ok(Sample::stream(get(v, "bytes")?, secs, get(v, "sleeps")?))
        }
        "idle" => {
            let (cpu, wall): (f64, f64) = (get(v, "cpu_secs")?, get(v, "wall_secs")?);
            if wall < j.count as f64 / 1000.0 * 0.9 {
                return Err(format!("blocked only {wall:.3} s of {} ms", j.count));
            }
            Ok(Sample {
                value: 100.0 * cpu / wall.max(1e-9),
                secs: wall,
                sleeps: None,
            })
        }
        _ => {
            let ns: f64 = get(v, "median_ns")?;
            Ok(Sample {
                value: ns / 1000.0,
                secs: ns * 1e-9,
                sleeps: Some(get(v, "sleeps")?),
            })
        }
    }
}

/// The `calls` column of `strace -c` output by system call, without the
/// sleeps the workload makes on purpose.
fn strace_calls(text: &str) -> Result<BTreeMap<String, u64>, String> {
    let mut total = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // % time, seconds, usecs/call, calls, [errors,] syscall
        if f.len() < 5 || f[0].parse::<f64>().is_err() {
            continue;
        }
        let name = f[f.len() - 1];
        if name != "total" && !name.contains("nanosleep") {
            let n = f[3].parse().map_err(|_| format!("strace line {line:?}"))?;
            total.insert(name.to_owned(), n);
        }
    }
    match total.is_empty() {
        true => Err("no system calls in the strace output".into()),
        false => Ok(total),
    }
}
