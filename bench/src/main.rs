//! **Internal to vchan-rs** (not published): the benchmark program.
//!
//! `make bench`: vchan-rs side by side with Xen's C libxenvchan (on
//! xensim), a Unix stream socket, a pipe and a spinning shared-memory ring,
//! each as two processes on this machine. Prints one table.
//!
//!   vchan-bench [--runs N] [--secs S] [--rounds N] [--only TEXT] [--no-pin]
//!
//! Each stream cell moves as many bytes as take about S seconds (a short
//! probe run sizes it); each cell is the median of N runs. Ping-pong cells
//! are the median round trip over --rounds 64-byte round trips (median of
//! the N runs' medians). --only runs just the cells whose
//! "workload / column" contains TEXT (e.g. "1 MiB rings (GiB/s) / vchan-rs").
//! The two processes of a cell run pinned to CPUs 0 and 1, one each;
//! --no-pin leaves them to the scheduler.

mod kernel;
mod pair;
mod pattern;
mod shm;
mod workload;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kernel::{Job, Kind, Outcome};

const KIB: usize = 1024;
const MIB: u64 = 1 << 20;
/// Every writer's chunk and every reader's buffer.
const CHUNK: usize = 64 * KIB;
/// The ping-pong message.
const MSG: usize = 64;
const RINGS: [usize; 3] = [4 * KIB, 64 * KIB, 1024 * KIB];
/// Ring (and kernel buffer) size for the ping-pong.
const PING_RING: usize = 64 * KIB;
const PROBE: u64 = 8 * MIB;
const MAX_TOTAL: u64 = 16 << 30;
/// Any one run that takes longer than this is killed.
const LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Column {
    VchanRs,
    C,
    Socket,
    Pipe,
    Shm,
}

const COLUMNS: [Column; 5] = [
    Column::VchanRs,
    Column::C,
    Column::Socket,
    Column::Pipe,
    Column::Shm,
];

impl Column {
    fn title(self) -> &'static str {
        match self {
            Column::VchanRs => "vchan-rs",
            Column::C => "C libxenvchan",
            Column::Socket => "unix socket",
            Column::Pipe => "pipe",
            Column::Shm => "shm limit",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Work {
    Stream { ring: usize },
    PingPong,
}

impl Work {
    fn title(self) -> String {
        match self {
            Work::Stream { ring } => format!("stream, {} rings (GiB/s)", size_name(ring)),
            Work::PingPong => format!("ping-pong {MSG} B (µs round trip)"),
        }
    }
}

fn size_name(n: usize) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{} KiB", n >> 10)
    }
}

struct Opts {
    runs: usize,
    secs: f64,
    rounds: u64,
    /// Run only the cells whose "workload / column" contains this.
    only: Option<String>,
    /// Pin the two processes of each cell to CPUs 0 and 1 (the default
    /// with two CPUs or more).
    pin: bool,
}

struct Bench {
    opts: Opts,
    c: Result<pair::CSide, String>,
    tmp: PathBuf,
}

/// One measurement: GiB/s for a stream, µs for a ping-pong; and how often
/// the measuring side (stream reader, pinger) slept.
#[derive(Debug, Clone, Copy)]
enum Sample {
    Stream { bytes: u64, secs: f64, sleeps: u64 },
    Rtt { ns: u64, sleeps: u64 },
}

impl Sample {
    fn secs(&self) -> f64 {
        match *self {
            Sample::Stream { secs, .. } => secs,
            Sample::Rtt { ns, .. } => ns as f64 * 1e-9,
        }
    }

    fn value(&self) -> f64 {
        match *self {
            Sample::Stream { bytes, secs, .. } => {
                bytes as f64 / secs.max(1e-9) / (1u64 << 30) as f64
            }
            Sample::Rtt { ns, .. } => ns as f64 / 1000.0,
        }
    }

    fn sleeps(&self) -> u64 {
        match *self {
            Sample::Stream { sleeps, .. } | Sample::Rtt { sleeps, .. } => sleeps,
        }
    }
}

impl Bench {
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

    fn stream(&self, col: Column, ring: usize, total: u64) -> Result<Sample, String> {
        let s = |v: &dyn ToString| v.to_string();
        let outcome = match col {
            Column::VchanRs | Column::C => {
                let dir = self.rendezvous()?;
                let d = dir.path();
                let srv: Vec<String> = vec![
                    s(&"server"),
                    s(&1),
                    s(&pair::PATH),
                    s(&ring),
                    s(&"stream"),
                    s(&total),
                    s(&CHUNK),
                ];
                let cli: Vec<String> = vec![
                    s(&"client"),
                    s(&0),
                    s(&pair::PATH),
                    s(&"stream"),
                    s(&total),
                    s(&CHUNK),
                ];
                let (sv, _) = self.run_pair(col, d, &srv, &cli)?;
                pair::stream_outcome(&sv)?
            }
            Column::Socket => kernel_stream(Kind::Socket, ring, total, self.pin())?,
            Column::Pipe => kernel_stream(Kind::Pipe, ring, total, self.pin())?,
            Column::Shm => kernel_stream(Kind::Shm, ring, total, self.pin())?,
        };
        check_samples(&outcome, total)?;
        Ok(Sample::Stream {
            bytes: outcome.bytes,
            secs: outcome.secs,
            sleeps: outcome.sleeps,
        })
    }

    fn ping(&self, col: Column) -> Result<Sample, String> {
        let s = |v: &dyn ToString| v.to_string();
        let rounds = self.opts.rounds;
        let (ns, sleeps) = match col {
            Column::VchanRs | Column::C => {
                let dir = self.rendezvous()?;
                let srv: Vec<String> = vec![
                    s(&"server"),
                    s(&1),
                    s(&pair::PATH),
                    s(&PING_RING),
                    s(&"pong"),
                    s(&rounds),
                    s(&MSG),
                ];
                let cli: Vec<String> = vec![
                    s(&"client"),
                    s(&0),
                    s(&pair::PATH),
                    s(&"ping"),
                    s(&rounds),
                    s(&MSG),
                ];
                let (_, cv) = self.run_pair(col, dir.path(), &srv, &cli)?;
                (pair::get(&cv, "median_ns")?, pair::get(&cv, "sleeps")?)
            }
            Column::Socket | Column::Pipe | Column::Shm => {
                let kind = match col {
                    Column::Socket => Kind::Socket,
                    Column::Pipe => Kind::Pipe,
                    _ => Kind::Shm,
                };
                match kernel::run(
                    kind,
                    PING_RING,
                    Job::PingPong { rounds, msg: MSG },
                    self.pin(),
                )? {
                    Outcome::Rtt(p) => (p.median_ns, p.sleeps),
                    Outcome::Stream(_) => return Err("unexpected outcome".into()),
                }
            }
        };
        Ok(Sample::Rtt { ns, sleeps })
    }

    /// Run a server and a client given xvbench's argument lists (role,
    /// peer domid, path, ...); for vchan-rs the rendezvous directory takes
    /// the place of domid and path (C gets it through VCHAN_UNIX_DIR, its
    /// own domid through the launcher).
    fn run_pair(
        &self,
        col: Column,
        dir: &Path,
        srv: &[String],
        cli: &[String],
    ) -> Result<(pair::Values, pair::Values), String> {
        let d = dir.display().to_string();
        let (server, client) = if col == Column::C {
            let c = self.c.as_ref().map_err(Clone::clone)?;
            (c.command(0, dir, srv), c.command(1, dir, cli))
        } else {
            // Rust roles: `server DIR RING ...`, `client DIR ...`.
            let mut srv: Vec<String> = srv.to_vec();
            srv.splice(1..3, [d.clone()]);
            let mut cli: Vec<String> = cli.to_vec();
            cli.splice(1..3, [d]);
            (pair::rust_command(&srv)?, pair::rust_command(&cli)?)
        };
        pair::run(server, client, LIMIT, self.pin())
    }

    /// How much one stream run of `work` on `col` moves: probe with
    /// growing amounts until a run lasts a tenth of the target, then size
    /// the measured runs from its rate. 0 for a ping-pong.
    fn calibrate(&self, work: Work, col: Column) -> Result<u64, String> {
        let Work::Stream { ring } = work else {
            return Ok(0);
        };
        let mut total = PROBE;
        let probe = loop {
            let s = self.stream(col, ring, total)?;
            if s.secs() >= self.opts.secs / 10.0 || total >= MAX_TOTAL {
                break s.value();
            }
            total = (total * 8).min(MAX_TOTAL);
        };
        let want = probe * self.opts.secs * (1u64 << 30) as f64;
        Ok((want as u64).clamp(PROBE, MAX_TOTAL).div_ceil(MIB) * MIB)
    }

    /// One measured run (`total` from [`calibrate`](Bench::calibrate)).
    fn measure(&self, work: Work, col: Column, total: u64) -> Result<Sample, String> {
        match work {
            Work::Stream { ring } => self.stream(col, ring, total),
            Work::PingPong => self.ping(col),
        }
    }

    /// One row: the median of `runs` runs per column, with the runs.
    /// Runs go round-robin over the columns (run 1 of each, then run 2 of
    /// each, ...), so that a change in the machine's speed (a shared host
    /// moving the virtual CPUs) falls on every column alike.
    fn row(&self, work: Work, cols: &[Column]) -> Vec<Result<Vec<Sample>, String>> {
        let mut totals: Vec<Result<u64, String>> =
            cols.iter().map(|&c| self.calibrate(work, c)).collect();
        let mut runs: Vec<Vec<Sample>> = vec![Vec::new(); cols.len()];
        for _ in 0..self.opts.runs {
            for (i, &col) in cols.iter().enumerate() {
                let Ok(total) = totals[i] else { continue };
                match self.measure(work, col, total) {
                    Ok(v) => runs[i].push(v),
                    Err(e) => totals[i] = Err(e),
                }
            }
        }
        totals
            .into_iter()
            .zip(runs)
            .map(|(t, r)| t.map(|_| r))
            .collect()
    }
}

fn kernel_stream(
    kind: Kind,
    ring: usize,
    total: u64,
    pin: Option<[usize; 2]>,
) -> Result<workload::StreamOutcome, String> {
    match kernel::run(
        kind,
        ring,
        Job::Stream {
            total,
            chunk: CHUNK,
        },
        pin,
    )? {
        Outcome::Stream(o) => Ok(o),
        Outcome::Rtt(_) => Err("unexpected outcome".into()),
    }
}

/// The reader checked a sample per 4 KiB of the stream, and the clock ran.
fn check_samples(o: &workload::StreamOutcome, total: u64) -> Result<(), String> {
    if o.samples < total / pattern::SAMPLE || o.secs <= 0.0 {
        return Err(format!(
            "only {} of {} bytes verified",
            o.samples * pattern::SAMPLE,
            total
        ));
    }
    Ok(())
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
}

fn parse_opts() -> Result<Opts, String> {
    let mut o = Opts {
        runs: 5,
        secs: 1.0,
        rounds: 20_000,
        only: None,
        pin: std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--runs" => o.runs = val("--runs")?.parse().map_err(|_| "bad --runs")?,
            "--secs" => o.secs = val("--secs")?.parse().map_err(|_| "bad --secs")?,
            "--rounds" => o.rounds = val("--rounds")?.parse().map_err(|_| "bad --rounds")?,
            "--only" => o.only = Some(val("--only")?),
            "--no-pin" => o.pin = false,
            "-h" | "--help" => {
                println!(
                    "usage: vchan-bench [--runs N] [--secs S] [--rounds N] [--only TEXT] [--no-pin]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.runs == 0 || o.rounds == 0 || !o.secs.is_finite() || o.secs <= 0.0 {
        return Err("--runs, --rounds and --secs must be positive".into());
    }
    Ok(o)
}

fn machine() -> Vec<String> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|r| r.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let lib = [
        "/usr/lib/x86_64-linux-gnu/libxenvchan.so.4.17",
        "/usr/lib/aarch64-linux-gnu/libxenvchan.so.4.17",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .unwrap_or("libxenvchan.so.4.17 (not found)");
    vec![
        format!("nproc: {nproc}"),
        format!("kernel: {}", read("/proc/sys/kernel/osrelease").trim()),
        format!("cpu: {cpu}"),
        format!(
            "load average: {}",
            read("/proc/loadavg")
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        ),
        format!("C library: {lib} on xensim"),
    ]
}

fn fmt(v: f64) -> String {
    if !v.is_finite() {
        "n/a".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--role") {
        if let Err(e) = pair::role(&args[1..]) {
            eprintln!("vchan-bench role: {e}");
            std::process::exit(1);
        }
        return;
    }
    let opts = match parse_opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("vchan-bench: {e}");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let tmp = tempfile::Builder::new()
        .prefix("vchan-bench")
        .tempdir_in("/tmp")
        .expect("cannot make a temporary directory in /tmp");
    let source = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/c/xvbench.c"));
    let c = pair::CSide::build(&source, tmp.path());
    if let Err(e) = &c {
        eprintln!("vchan-bench: C column unavailable: {e}");
    }
    let bench = Bench {
        opts,
        c,
        tmp: tmp.path().to_path_buf(),
    };

    let works: Vec<Work> = RINGS
        .iter()
        .map(|&ring| Work::Stream { ring })
        .chain([Work::PingPong])
        .collect();
    let mut table: Vec<Vec<f64>> = Vec::new();
    let mut sleep_table: Vec<Vec<f64>> = Vec::new();
    let mut errors = Vec::new();
    for &w in &works {
        let cols: Vec<Column> = COLUMNS
            .into_iter()
            .filter(|c| {
                let name = format!("{} / {}", w.title(), c.title());
                bench
                    .opts
                    .only
                    .as_ref()
                    .is_none_or(|o| name.contains(o.as_str()))
            })
            .collect();
        let t = Instant::now();
        let results = bench.row(w, &cols);
        let secs = t.elapsed().as_secs_f64();
        let mut row = vec![f64::NAN; COLUMNS.len()];
        let mut sleep_row = vec![f64::NAN; COLUMNS.len()];
        for (col, r) in cols.iter().zip(results) {
            let Some(at) = COLUMNS.iter().position(|c| c == col) else {
                continue;
            };
            match r {
                Ok(all) => {
                    let values: Vec<f64> = all.iter().map(Sample::value).collect();
                    let m = median(&values);
                    eprintln!(
                        "{:<36} {:<14} median {:>8}  runs [{}]  sleeps [{}]",
                        w.title(),
                        col.title(),
                        fmt(m),
                        values
                            .iter()
                            .map(|&v| fmt(v))
                            .collect::<Vec<_>>()
                            .join(", "),
                        all.iter()
                            .map(|s| s.sleeps().to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                    );
                    row[at] = m;
                    let sleeps: Vec<f64> = all.iter().map(|s| s.sleeps() as f64).collect();
                    sleep_row[at] = median(&sleeps);
                }
                Err(e) => {
                    eprintln!("{:<36} {:<14} FAILED: {e}", w.title(), col.title());
                    errors.push(format!("{} / {}: {e}", w.title(), col.title()));
                }
            }
        }
        eprintln!("({:.1} s)", secs);
        table.push(row);
        sleep_table.push(sleep_row);
    }

    println!();
    println!(
        "## vchan-bench: two processes per cell, medians of {} runs",
        bench.opts.runs
    );
    for m in machine() {
        println!("- {m}");
    }
    println!();
    let mut head: Vec<String> = vec!["workload".into()];
    head.extend(COLUMNS.iter().map(|c| c.title().to_owned()));
    head.push("vchan-rs / C".into());
    head.push("vchan-rs / shm limit".into());
    println!("| {} |", head.join(" | "));
    println!("|{}", "---|".repeat(head.len()));
    for (w, row) in works.iter().zip(&table) {
        let mut cells = vec![w.title()];
        cells.extend(row.iter().map(|&v| fmt(v)));
        let ratio = |a: f64, b: f64| {
            if a.is_finite() && b.is_finite() && b > 0.0 {
                format!("{:.2}", a / b)
            } else {
                "n/a".into()
            }
        };
        cells.push(ratio(row[0], row[1]));
        cells.push(ratio(row[0], row[4]));
        println!("| {} |", cells.join(" | "));
    }
    println!();
    println!("How often the measuring side (stream reader, pinger) slept per run (voluntary context switches, median):");
    println!();
    println!("| workload | {} |", COLUMNS.map(Column::title).join(" | "));
    println!("|{}", "---|".repeat(COLUMNS.len() + 1));
    for (w, row) in works.iter().zip(&sleep_table) {
        let cells: Vec<String> = row
            .iter()
            .map(|&v| {
                if v.is_finite() {
                    format!("{v:.0}")
                } else {
                    "n/a".into()
                }
            })
            .collect();
        println!("| {} | {} |", w.title(), cells.join(" | "));
    }
    println!();
    println!("Ratios are plain quotients: for GiB/s above 1 means vchan-rs is faster; for µs below 1 does.");
    println!(
        "Every writer uses {} KiB writes, every reader a {} KiB buffer; socket buffers (SO_SNDBUF/SO_RCVBUF) and pipe capacity (F_SETPIPE_SZ) are set to the ring size; ping-pong uses {} rings, {} rounds per run.",
        CHUNK / KIB,
        CHUNK / KIB,
        size_name(PING_RING),
        bench.opts.rounds
    );
    println!(
        "{}",
        if bench.opts.pin {
            "The two processes of each cell are pinned to CPUs 0 and 1, one each (--no-pin: not)."
        } else {
            "The processes are not pinned (--no-pin)."
        }
    );
    println!(
        "Readers check one byte per 4 KiB of a deterministic pattern; ping-pong checks every echo."
    );
    println!("Total time: {:.0} s.", started.elapsed().as_secs_f64());
    if !errors.is_empty() {
        println!();
        for e in &errors {
            println!("FAILED: {e}");
        }
        std::process::exit(1);
    }
}
