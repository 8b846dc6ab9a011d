//! Measuring a row: each column's runs, round robin.

use crate::*;

pub struct Bench {
    pub opts: Opts,
    pub c: Result<pair::CSide, String>,
    /// ocaml-vchan's programs, or why they were not built.
    pub ovchan: Result<pair::OVchan, String>,
    pub tmp: PathBuf,
    /// The vchan-cat row's tmpfs file, made (and read once) on first use
    /// and shared by its runs: the first read of a freshly written tmpfs
    /// file costs the kernel ~40 ms per GiB more than later reads (its
    /// pages are activated on the LRU), which is not vchan-cat's doing.
    pub cat_file: std::cell::RefCell<Option<(u64, tempfile::NamedTempFile)>>,
}

/// One measurement: GiB/s for a stream, µs for a ping-pong, % of a core
/// for idle, calls per round; and how often the measuring side (stream
/// reader, pinger) slept.
#[derive(Debug, Clone, Copy)]
pub enum Sample {
    Stream { bytes: u64, secs: f64, sleeps: u64 },
    Rtt { ns: u64, sleeps: u64 },
    Idle { cpu_secs: f64, wall_secs: f64 },
    Calls { per_round: f64 },
}

impl Sample {
    fn secs(&self) -> f64 {
        match *self {
            Sample::Stream { secs, .. } => secs,
            Sample::Rtt { ns, .. } => ns as f64 * 1e-9,
            Sample::Idle { wall_secs, .. } => wall_secs,
            Sample::Calls { .. } => 0.0,
        }
    }

    pub fn value(&self) -> f64 {
        match *self {
            Sample::Stream { bytes, secs, .. } => {
                bytes as f64 / secs.max(1e-9) / (1u64 << 30) as f64
            }
            Sample::Rtt { ns, .. } => ns as f64 / 1000.0,
            Sample::Idle {
                cpu_secs,
                wall_secs,
            } => 100.0 * cpu_secs / wall_secs.max(1e-9),
            Sample::Calls { per_round } => per_round,
        }
    }

    pub fn sleeps(&self) -> Option<u64> {
        match *self {
            Sample::Stream { sleeps, .. } | Sample::Rtt { sleeps, .. } => Some(sleeps),
            _ => None,
        }
    }
}

/// What a vchan pair gets besides its arguments: environment variables
/// for both sides, and a wrapper for the server's command (a tracer).
pub struct Extra<'a> {
    pub env: &'a [(&'a str, String)],
    pub wrap: Option<&'a dyn Fn(Command) -> Command>,
}

impl Extra<'_> {
    const NONE: Extra<'static> = Extra {
        env: &[],
        wrap: None,
    };
}

/// A row's result for one column.
pub struct Cell {
    pub runs: Vec<Sample>,
    /// How the cell was measured, when that varies (the limit's best
    /// publish granularity).
    pub note: String,
}

impl Bench {
    /// The bench, with the C and ocaml-vchan programs built (or why not,
    /// said now and in their cells), scratch files in `tmp`.
    pub fn new(opts: Opts, tmp: &Path) -> Bench {
        let source = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/c/xvbench.c"));
        let c = pair::CSide::build(&source, tmp);
        if let Err(e) = &c {
            eprintln!("vchan-bench: C column unavailable: {e}");
        }
        let ovchan = pair::OVchan::build();
        if let Err(e) = &ovchan {
            eprintln!("vchan-bench: ocaml-vchan column: {e}");
        }
        Bench {
            opts,
            c,
            ovchan,
            tmp: tmp.to_path_buf(),
            cat_file: std::cell::RefCell::new(None),
        }
    }

    /// Row `w` of the selected (--only) columns that apply and can run,
    /// `runs` runs each, with a line per cell on stderr; None if no column
    /// is selected. Failed cells go to `errors` too.
    pub fn measure_row(&self, w: Work, runs: usize, errors: &mut Vec<String>) -> Option<RowOut> {
        let name = |c: Column| format!("{} / {}", w.title(), c.title());
        let selected = |c: Column| {
            self.opts
                .only
                .as_ref()
                .is_none_or(|o| name(c).contains(o.as_str()))
        };
        let why_not = |c: Column| match (w.not_applicable(c), &self.ovchan) {
            (Some(why), _) => Some(format!("n/a: {why}")),
            (None, _) if !selected(c) => Some("not run (--only)".into()),
            // ocaml-vchan's programs missing: its cells say why.
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
        let t = Instant::now();
        let mut out = RowOut::empty(w);
        for (c, n) in COLUMNS.into_iter().zip(&mut out.notes) {
            *n = why_not(c).unwrap_or_default();
        }
        for (&col, r) in cols.iter().zip(self.row(w, &cols, runs)) {
            let at = col.at();
            match r {
                Ok(cell) => {
                    let values: Vec<f64> = cell.runs.iter().map(Sample::value).collect();
                    let sleeps: Vec<f64> = cell
                        .runs
                        .iter()
                        .filter_map(|s| s.sleeps().map(|v| v as f64))
                        .collect();
                    let list = |v: &[f64], f: &dyn Fn(f64) -> String| {
                        v.iter().map(|&x| f(x)).collect::<Vec<_>>().join(", ")
                    };
                    out.median[at] = median(&values);
                    out.sleeps[at] = median(&sleeps);
                    eprintln!(
                        "{:<52} {:<14} median {:>8}  runs [{}]{}{}{}",
                        w.title(),
                        col.title(),
                        fmt(out.median[at]),
                        list(&values, &fmt),
                        if sleeps.is_empty() { "" } else { "  sleeps [" },
                        list(&sleeps, &|v| format!("{v:.0}"))
                            + if sleeps.is_empty() { "" } else { "]" },
                        if cell.note.is_empty() {
                            String::new()
                        } else {
                            format!("  {}", cell.note)
                        }
                    );
                    out.runs[at] = values;
                    out.notes[at] = cell.note;
                }
                Err(e) => {
                    eprintln!("{:<52} {:<14} FAILED: {e}", w.title(), col.title());
                    errors.push(format!("{}: {e}", name(col)));
                    out.notes[at] = format!("FAILED: {e}");
                }
            }
        }
        eprintln!("({:.1} s)", t.elapsed().as_secs_f64());
        Some(out)
    }

    fn pin(&self) -> Option<[usize; 2]> {
        self.opts.pin.then_some([0, 1])
    }

    /// A fresh rendezvous directory (short: it holds sockets).
    fn rendezvous(&self) -> Result<tempfile::TempDir, String> {
        tempfile::Builder::new()
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .prefix("vb")
            .tempdir_in(&self.tmp)
            .map_err(|e| format!("temp dir: {e}"))
    }

    /// A vchan pair of `col` (the server listening with `ring`-byte rings)
    /// in `modes` (server's, client's), with COUNT and SIZE; what each side
    /// printed.
    fn vchan_pair(
        &self,
        col: Column,
        ring: usize,
        modes: [&str; 2],
        count: u64,
        size: usize,
        extra: &Extra,
    ) -> Result<(Values, Values), String> {
        let dir = self.rendezvous()?;
        let dir = dir.path();
        let (count, size) = (count.to_string(), size.to_string());
        let srv = ["server", &ring.to_string(), modes[0], &count, &size].map(String::from);
        let cli = ["client", modes[1], &count, &size].map(String::from);
        // The tracer (`wrap`) goes on the server's own process (for
        // ocaml-vchan inside vchan-xensim, whose xenstored process is not
        // the endpoint's).
        let command = |domid: u32, args: &[String], wrap: Option<&dyn Fn(Command) -> Command>| {
            let w = |c: Command| match wrap {
                Some(w) => w(c),
                None => c,
            };
            let mut c = match col {
                Column::C => w(self
                    .c
                    .as_ref()
                    .map_err(Clone::clone)?
                    .command(domid, dir, args)),
                Column::OVchan => {
                    let ov = self.ovchan.as_ref().map_err(Clone::clone)?;
                    ov.under_xensim(domid, w(ov.vbench(dir, args)))
                }
                Column::OCaml => w(pair::ocaml_command(dir, domid, args)?),
                _ => w(pair::rust_command(dir, domid, args)?),
            };
            c.envs(extra.env.iter().map(|(k, v)| (k, v)));
            Ok::<_, String>(c)
        };
        pair::run(
            command(0, &srv, extra.wrap)?,
            command(1, &cli, None)?,
            LIMIT,
            self.pin(),
        )
    }

    /// One run of `job` on `col` through `ring`-byte rings (the limit
    /// publishing every `publish` bytes, its counters laid out as
    /// `layout`): the measuring side's sample.
    fn run(
        &self,
        col: Column,
        ring: usize,
        job: Job,
        publish: usize,
        layout: Layout,
    ) -> Result<Sample, String> {
        let kind = match col {
            Column::Socket => Kind::Socket,
            Column::Pipe => Kind::Pipe,
            Column::Limit => Kind::Shm { publish, layout },
            _ => {
                let (modes, count, size) = match job {
                    Job::Stream { total, chunk } => (["stream", "stream"], total, chunk),
                    Job::PingPong { rounds, msg } => (["pong", "ping"], rounds, msg),
                    Job::Idle { ms } => (["idle", "idle"], ms, 1),
                    Job::Bounce { .. } => {
                        return Err("a cache-line bounce needs shared memory".into())
                    }
                };
                let (sv, cv) = self.vchan_pair(col, ring, modes, count, size, &Extra::NONE)?;
                let measuring = if modes[1] == "ping" { cv } else { sv };
                return sample(job, &measuring);
            }
        };
        sample(job, &kernel::run(kind, ring, job, self.pin())?)
    }

    fn stream(
        &self,
        col: Column,
        work: Work,
        total: u64,
        publish: usize,
    ) -> Result<Sample, String> {
        let Work::Stream { ring, chunk } = work else {
            return Err("not a stream".into());
        };
        self.run(
            col,
            ring,
            Job::Stream { total, chunk },
            publish,
            Layout::Separate,
        )
    }

    /// System calls of the echoing side (the server) per round of a
    /// ping-pong in which both sides sleep [`SYS_DELAY_US`] before each
    /// message (so each side sleeps every round): traced with `strace -c`
    /// over two runs of different lengths, the difference divided by the
    /// difference in rounds (set-up cancels out), the delay's own sleep
    /// not counted.
    /// The OCaml column runs under `Vchan_rs_lwt_unix.Engine` (as every
    /// OCaml cell does); its note also gives the figure under Lwt's default
    /// engine (libev), which costs more per wake-up.
    fn syscalls(&self, col: Column) -> Result<(Sample, String), String> {
        let (sample, note) = self.traced_pingpong(col, &[])?;
        if col != Column::OCaml {
            return Ok((sample, note));
        }
        let (Sample::Calls { per_round: d }, dnote) =
            self.traced_pingpong(col, &[("BENCH_LWT_ENGINE", "default".into())])?
        else {
            return Err("unexpected sample".into());
        };
        Ok((
            sample,
            format!("{note}; under Lwt's default engine (libev) instead: {d:.2} ({dnote})"),
        ))
    }

    /// [`syscalls`](Bench::syscalls) of one column, with `env` added.
    fn traced_pingpong(
        &self,
        col: Column,
        more_env: &[(&str, String)],
    ) -> Result<(Sample, String), String> {
        let mut counts = [
            std::collections::BTreeMap::new(),
            std::collections::BTreeMap::new(),
        ];
        for (i, &rounds) in self.opts.sys_rounds.iter().enumerate() {
            let out = self.tmp.join(format!("strace-{i}"));
            let o = out.clone();
            let wrap = move |c: Command| {
                let mut t = Command::new("strace");
                t.arg("-f").arg("-c").arg("-o").arg(&o).arg(c.get_program());
                t.args(c.get_args());
                for (k, v) in c.get_envs() {
                    match v {
                        Some(v) => t.env(k, v),
                        None => t.env_remove(k),
                    };
                }
                t
            };
            let mut env = vec![("BENCH_DELAY_US", SYS_DELAY_US.to_string())];
            env.extend(more_env.iter().cloned());
            self.vchan_pair(
                col,
                PING_RING,
                ["pong", "ping"],
                rounds,
                MSG,
                &Extra {
                    env: &env,
                    wrap: Some(&wrap),
                },
            )?;
            let text = std::fs::read_to_string(&out).map_err(|e| format!("strace output: {e}"))?;
            counts[i] = strace_calls(&text)?;
        }
        let [a, b] = self.opts.sys_rounds;
        let per = |name: &String| {
            let (x, y) = (counts[0].get(name), counts[1].get(name));
            (y.copied().unwrap_or(0) as f64 - x.copied().unwrap_or(0) as f64) / (b - a) as f64
        };
        let mut by_call: Vec<(f64, &String)> = counts[1]
            .keys()
            .map(|k| (per(k), k))
            .filter(|(v, _)| *v >= 0.02)
            .collect();
        by_call.sort_by(|x, y| y.0.total_cmp(&x.0));
        let note = by_call
            .iter()
            .map(|(v, k)| format!("{k} {v:.2}"))
            .collect::<Vec<_>>()
            .join(", ");
        // What the two runs' set-up and tear-down do differently (a few
        // dozen openat/close, up or down) shows as stray fractions; over
        // 3,800 rounds that stays under 0.02 per round, where no call of
        // the round trip is: so the total is that of the calls listed,
        // those at 0.02 per round or more.
        let total: f64 = by_call.iter().map(|(v, _)| v).sum();
        Ok((Sample::Calls { per_round: total }, note))
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
            let s = self.stream(col, work, total, publish)?;
            if s.secs() >= secs / 10.0 || total >= MAX_TOTAL {
                break s.value();
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
            let s = self.stream(Column::Limit, work, part, ring / d)?;
            if best.as_ref().is_none_or(|(b, _)| s.value() > b.value()) {
                best = Some((s, d));
            }
        }
        best.ok_or_else(|| "no granularity".into())
    }

    /// One measured run (`total` from [`calibrate`](Bench::calibrate)).
    fn measure(
        &self,
        work: Work,
        col: Column,
        total: u64,
        publish: usize,
    ) -> Result<Sample, String> {
        let rounds = self.opts.rounds;
        let ping = Job::PingPong { rounds, msg: MSG };
        match work {
            Work::Stream { .. } => self.stream(col, work, total, publish),
            Work::PingPong => self.run(col, PING_RING, ping, MSG, Layout::Separate),
            Work::PingPongVchanLayout => self.run(col, PING_RING, ping, MSG, Layout::Vchan),
            Work::Floor => self.run(
                col,
                PING_RING,
                Job::Bounce { rounds },
                MSG,
                Layout::Separate,
            ),
            Work::LwtIo | Work::Cat if col == Column::VchanRs => {
                self.stream(col, stream(64 * KIB), total, 0)
            }
            Work::Idle => self.run(
                col,
                PING_RING,
                Job::Idle {
                    ms: self.opts.idle_ms,
                },
                1,
                Layout::Separate,
            ),
            Work::Syscalls => self.syscalls(col).map(|(s, _)| s),
            Work::LwtIo => {
                let (sv, _) = self.vchan_pair(
                    col,
                    64 * KIB,
                    ["lwtio", "lwtio"],
                    total,
                    CHUNK,
                    &Extra::NONE,
                )?;
                sample(
                    Job::Stream {
                        total,
                        chunk: CHUNK,
                    },
                    &sv,
                )
            }
            Work::Cat => self.cat(col, total),
            Work::InMemStream => sample(
                Job::Stream {
                    total,
                    chunk: CHUNK,
                },
                &self.in_memory(col, "stream", total, CHUNK)?,
            ),
            Work::InMemPing => sample(ping, &self.in_memory(col, "ping", rounds, MSG)?),
        }
    }

    /// One `vbench.exe inmem MODE COUNT SIZE` (the In_memory of `col`'s
    /// library, both ends in that one process); what it printed.
    fn in_memory(
        &self,
        col: Column,
        mode: &str,
        count: u64,
        size: usize,
    ) -> Result<pair::Values, String> {
        let args = ["inmem", mode, &count.to_string(), &size.to_string()].map(String::from);
        let cmd = if col == Column::OVchan {
            self.ovchan
                .as_ref()
                .map_err(Clone::clone)?
                .vbench(&self.tmp, &args)
        } else {
            pair::ocaml_command(&self.tmp, 0, &args)?
        };
        pair::run_one(cmd, LIMIT, self.pin())
    }

    /// vchan-cat end to end: a server `vchan-cat -l -d` to /dev/null, a
    /// client `vchan-cat -N` sending a tmpfs file of `total` bytes (and
    /// closing at its end); the wall time from
    /// the client's start to both ends' exit. For ocaml-vchan, its xencat
    /// ([`pair::run_xencat`]).
    fn cat(&self, col: Column, total: u64) -> Result<Sample, String> {
        let dir = self.rendezvous()?;
        let mut cached = self.cat_file.borrow_mut();
        if cached.as_ref().is_none_or(|(len, _)| *len != total) {
            let f = pair::tmpfs_file(total)?;
            std::io::copy(
                &mut std::fs::File::open(f.path()).map_err(|e| format!("open: {e}"))?,
                &mut std::io::sink(),
            )
            .map_err(|e| format!("read {}: {e}", f.path().display()))?;
            *cached = Some((total, f));
        }
        let Some((_, file)) = cached.as_ref() else {
            return Err("no tmpfs file".into());
        };
        let input = || std::fs::File::open(file.path()).map_err(|e| format!("open: {e}"));
        if col == Column::OVchan {
            let ov = self.ovchan.as_ref().map_err(Clone::clone)?;
            let secs = pair::run_xencat(ov, file.path(), total, dir.path(), LIMIT, self.pin())?;
            return Ok(Sample::Stream {
                bytes: total,
                secs,
                sleeps: 0,
            });
        }
        let exe = pair::vchan_cat()?;
        let mut server = Command::new(&exe);
        server
            .args(["-l", "-d", "1", "bench"])
            .env("VCHAN_UNIX_DIR", dir.path())
            .env("VCHAN_DOMID", "0")
            .stdout(std::process::Stdio::null());
        let mut client = Command::new(&exe);
        client
            .args(["-N", "0", "bench"])
            .env("VCHAN_UNIX_DIR", dir.path())
            .env("VCHAN_DOMID", "1")
            .stdin(input()?);
        let secs = pair::run_cat(server, client, dir.path(), LIMIT, self.pin())?;
        Ok(Sample::Stream {
            bytes: total,
            secs,
            sleeps: 0,
        })
    }

    /// One row: `runs` runs per column, round-robin over the columns
    /// (run 1 of each, then run 2 of each, ...), so that a change in the
    /// machine's speed (a shared host moving the virtual CPUs) falls on
    /// every column alike.
    fn row(&self, work: Work, cols: &[Column], runs: usize) -> Vec<Result<Cell, String>> {
        if work == Work::Syscalls {
            // One traced pair of runs per column; the note says which calls.
            return cols
                .iter()
                .map(|&c| {
                    self.syscalls(c).map(|(s, note)| Cell {
                        runs: vec![s],
                        note: format!("per round trip: {note}"),
                    })
                })
                .collect();
        }
        let setup = |col: Column| -> Result<(u64, usize), String> {
            if matches!(work, Work::LwtIo | Work::Cat | Work::InMemStream) {
                // About a second's worth at a few GiB/s.
                return Ok((self.opts.fixed_total.unwrap_or(CAT_TOTAL), 0));
            }
            let Work::Stream { ring, .. } = work else {
                return Ok((0, MSG));
            };
            Ok((self.calibrate(work, col, ring / 4)?, ring))
        };
        let limit_stream = matches!(work, Work::Stream { .. });
        let mut setups: Vec<Result<(u64, usize), String>> =
            cols.iter().map(|&c| setup(c)).collect();
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); cols.len()];
        let mut winners: Vec<String> = Vec::new();
        for _ in 0..runs {
            for (i, &col) in cols.iter().enumerate() {
                let Ok((total, publish)) = setups[i] else {
                    continue;
                };
                let r = if col == Column::Limit && limit_stream {
                    self.limit_run(work, total).map(|(s, d)| {
                        winners.push(format!("/{d}"));
                        s
                    })
                } else {
                    self.measure(work, col, total, publish)
                };
                match r {
                    Ok(v) => samples[i].push(v),
                    Err(e) => setups[i] = Err(e),
                }
            }
        }
        cols.iter()
            .zip(setups)
            .zip(samples)
            .map(|((&col, s), runs)| {
                s.map(|_| Cell {
                    runs,
                    note: if col == Column::Limit && limit_stream {
                        format!(
                            "each run the best of publishing every ring/{LIMIT_DIVISORS:?}; winners: {}",
                            winners.join(" ")
                        )
                    } else {
                        String::new()
                    },
                })
            })
            .collect()
    }
}
/// How often the system-call row's sides sleep before each message (µs):
/// well beyond the longest spin, so every wait sleeps.
pub const SYS_DELAY_US: u64 = 1000;

/// The `calls` column of `strace -c` output by system call, without the
/// sleeps the workload makes on purpose.
pub fn strace_calls(text: &str) -> Result<std::collections::BTreeMap<String, u64>, String> {
    let mut total = std::collections::BTreeMap::new();
    let mut seen = false;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // % time, seconds, usecs/call, calls, [errors,] syscall
        if f.len() < 5 || f[0].parse::<f64>().is_err() {
            continue;
        }
        let name = f[f.len() - 1];
        if name == "total" || name.contains("nanosleep") {
            continue;
        }
        let n = f[3]
            .parse::<u64>()
            .map_err(|_| format!("strace line {line:?}"))?;
        total.insert(name.to_owned(), n);
        seen = true;
    }
    if !seen {
        return Err("no system calls in the strace output".into());
    }
    Ok(total)
}

/// The sample of one run of `job` from what its measuring side printed:
/// a stream run once its reader checked a sample per 4 KiB of the stream
/// and the clock ran, an idle run once it blocked long enough.
fn sample(job: Job, v: &Values) -> Result<Sample, String> {
    use pair::get;
    match job {
        Job::Stream { total, .. } => {
            let (samples, secs): (u64, f64) = (get(v, "samples")?, get(v, "secs")?);
            if samples < total / pattern::SAMPLE || secs <= 0.0 {
                return Err(format!(
                    "only {} of {total} bytes verified",
                    samples * pattern::SAMPLE
                ));
            }
            Ok(Sample::Stream {
                bytes: get(v, "bytes")?,
                secs,
                sleeps: get(v, "sleeps")?,
            })
        }
        Job::PingPong { .. } | Job::Bounce { .. } => Ok(Sample::Rtt {
            ns: get(v, "median_ns")?,
            sleeps: get(v, "sleeps")?,
        }),
        Job::Idle { ms } => {
            let (cpu_secs, wall_secs) = (get(v, "cpu_secs")?, get(v, "wall_secs")?);
            if wall_secs < ms as f64 / 1000.0 * 0.9 {
                return Err(format!("blocked only {wall_secs:.3} s of {ms} ms"));
            }
            Ok(Sample::Idle {
                cpu_secs,
                wall_secs,
            })
        }
    }
}
