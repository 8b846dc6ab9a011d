//! **Internal to vchan-rs** (not published): the benchmark program.
//!
//! `make bench`: vchan-rs side by side with Xen's C libxenvchan (on
//! xensim), a Unix stream socket, a pipe and the limit (spinning
//! shared-memory rings), each as two processes on this machine. Prints a
//! table and writes it as CSV and SVG (`--out DIR`, default target/bench;
//! the committed figures, bench/results, only with `--out bench/results`:
//! `make bench-results`).
//!
//!   vchan-bench [--runs N] [--secs S] [--rounds N] [--idle-secs S]
//!               [--only TEXT] [--no-pin] [--out DIR] [--smoke]
//!
//! Each stream cell moves as many bytes as take about S seconds (a short
//! probe run sizes it); each cell is the median of N runs (of fewer in the
//! message-size sweep). Each run of the limit column is the fastest of
//! publishing its index every ring/1 .. ring/16 bytes (a fifth of the bytes
//! each). Ping-pong cells are the
//! median round trip over --rounds 64-byte round trips (median of the N
//! runs' medians). --only runs just the cells whose "workload / column"
//! contains TEXT (e.g. "1 MiB rings (GiB/s) / vchan-rs"). The two
//! processes of a cell run pinned to CPUs 0 and 1, one each; --no-pin
//! leaves them to the scheduler. --smoke runs every cell once on a few MiB
//! (make test): it checks that every row runs and verifies its data, and
//! measures nothing worth reading.

mod cli;
mod kernel;
mod measure;
mod pair;
mod pattern;
mod report;
mod shm;
mod workload;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cli::*;
use kernel::{Job, Kind, Outcome};
use measure::*;
use report::*;
use shm::Layout;

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
/// Bytes per run of the Lwt_io and vchan-cat rows (the file is in tmpfs).
const CAT_TOTAL: u64 = 1 << 30;
/// Any one run that takes longer than this is killed.
const LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Column {
    VchanRs,
    OCaml,
    /// mirage/ocaml-vchan: its vchan-unix over xensim, its In_memory, its
    /// xencat (built by scripts/ocaml-vchan.sh from the pinned sources).
    OVchan,
    C,
    Socket,
    Pipe,
    Limit,
}

const COLUMNS: [Column; 7] = [
    Column::VchanRs,
    Column::OCaml,
    Column::OVchan,
    Column::C,
    Column::Socket,
    Column::Pipe,
    Column::Limit,
];

impl Column {
    fn title(self) -> &'static str {
        match self {
            Column::VchanRs => "vchan-rs",
            Column::OCaml => "vchan-rs OCaml",
            Column::OVchan => "ocaml-vchan",
            Column::C => "C libxenvchan",
            Column::Socket => "unix socket",
            Column::Pipe => "pipe",
            Column::Limit => "limit",
        }
    }

    /// Its index in [`COLUMNS`].
    fn at(self) -> usize {
        COLUMNS.iter().position(|&c| c == self).unwrap_or(0)
    }
}

/// The publish granularities the limit column tries: ring / these.
const LIMIT_DIVISORS: [usize; 5] = [1, 2, 4, 8, 16];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Work {
    /// One-way stream in `chunk`-byte writes into `chunk`-byte reads.
    Stream {
        ring: usize,
        chunk: usize,
    },
    PingPong,
    /// The limit's ping-pong with its counters in one cache line, as the
    /// vchan wire format puts them.
    PingPongVchanLayout,
    /// One cache line back and forth: the floor of any hand-off.
    Floor,
    /// CPU used by an endpoint blocked on a silent peer.
    Idle,
    /// System calls per round trip on one side when both sleep each round.
    Syscalls,
    /// The OCaml library's Lwt_io channels, one way (64 KiB rings).
    LwtIo,
    /// vchan-cat, a tmpfs file to /dev/null (64 KiB rings).
    Cat,
    /// `Vchan_rs.In_memory`, both ends in one OCaml process: a stream
    /// through 64 KiB rings.
    InMemStream,
    /// `Vchan_rs.In_memory`: the 64-byte ping-pong.
    InMemPing,
}

impl Work {
    fn title(self) -> String {
        match self {
            Work::Stream { ring, chunk } if chunk == CHUNK => {
                format!("stream, {} rings (GiB/s)", size_name(ring))
            }
            Work::Stream { ring, chunk } => format!(
                "stream, {} rings, {} writes (GiB/s)",
                size_name(ring),
                size_name(chunk)
            ),
            Work::PingPong => format!("ping-pong {MSG} B (µs round trip)"),
            Work::PingPongVchanLayout => {
                format!("ping-pong {MSG} B, indices in one cache line as in vchan (µs round trip)")
            }
            Work::Floor => "cache-line ping-pong (µs round trip)".into(),
            Work::Idle => "idle, blocked on a silent peer (% of a core)".into(),
            Work::Syscalls => "system calls per round trip, one side, both sleeping".into(),
            Work::LwtIo => "stream, 64 KiB rings, OCaml Lwt_io channels (GiB/s)".into(),
            Work::Cat => "vchan-cat, tmpfs file to /dev/null, 64 KiB rings (GiB/s)".into(),
            Work::InMemStream => {
                "OCaml In_memory, one process, stream, 64 KiB rings (GiB/s)".into()
            }
            Work::InMemPing => {
                format!("OCaml In_memory, one process, ping-pong {MSG} B (µs round trip)")
            }
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Work::Stream { .. } | Work::LwtIo | Work::Cat | Work::InMemStream => "GiB/s",
            Work::PingPong | Work::PingPongVchanLayout | Work::Floor | Work::InMemPing => "us",
            Work::Idle => "% of a core",
            Work::Syscalls => "calls",
        }
    }

    /// Is a larger value better?
    fn higher_is_better(self) -> bool {
        matches!(
            self,
            Work::Stream { .. } | Work::LwtIo | Work::Cat | Work::InMemStream
        )
    }

    /// Why `col` has no cell in this row, if it has none.
    fn not_applicable(self, col: Column) -> Option<&'static str> {
        match (self, col) {
            // vchan-rs: the Rust 64 KiB stream of the same bytes, measured
            // in the same round robin (the row's ratio is to it).
            (Work::LwtIo | Work::Cat, Column::OCaml | Column::VchanRs) => None,
            (Work::Cat, Column::OVchan) => None,
            (Work::LwtIo, _) => Some("OCaml's Lwt_io only"),
            (Work::InMemStream | Work::InMemPing, Column::OCaml | Column::OVchan) => None,
            (Work::InMemStream | Work::InMemPing, _) => Some("OCaml's In_memory only"),
            (Work::Cat, _) => Some("vchan-cat (OCaml) only"),
            (Work::Stream { chunk, .. }, Column::OCaml) if chunk != CHUNK => {
                Some("the sweep is not run for OCaml")
            }
            (Work::Stream { ring, chunk }, Column::OVchan)
                if ring != 64 * KIB || chunk != CHUNK =>
            {
                Some("run for 64 KiB rings and writes only")
            }
            (Work::Idle, Column::OCaml | Column::OVchan) => Some("not run for OCaml"),
            (Work::Floor | Work::PingPongVchanLayout, Column::OVchan) => {
                Some("a variant of the limit only")
            }
            (Work::Floor | Work::PingPongVchanLayout, Column::Limit) => None,
            (Work::Floor, _) => Some("the floor is shared memory alone"),
            (Work::PingPongVchanLayout, _) => Some("a variant of the limit only"),
            (Work::Idle, Column::Limit) => Some("spins by design: 100%"),
            (Work::Syscalls, Column::Socket | Column::Pipe) => {
                Some("a blocking write and a blocking read: 2 by construction")
            }
            (Work::Syscalls, Column::Limit) => Some("spins: none"),
            _ => None,
        }
    }
}

fn size_name(n: usize) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else if n >= 1024 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

/// The rows of the table, in order, with how many runs each cell gets.
fn works(runs: usize) -> Vec<(Work, usize)> {
    let mut w: Vec<(Work, usize)> = RINGS
        .iter()
        .map(|&ring| (Work::Stream { ring, chunk: CHUNK }, runs))
        .collect();
    w.push((Work::LwtIo, runs));
    w.push((Work::Cat, runs));
    w.push((Work::InMemStream, runs));
    w.push((Work::PingPong, runs));
    w.push((Work::PingPongVchanLayout, runs));
    w.push((Work::Floor, runs));
    w.push((Work::InMemPing, runs));
    // Message sizes through 64 KiB rings (64 KiB itself is the row above).
    let sweep = runs.min(3);
    for chunk in [64, KIB, 16 * KIB, 256 * KIB, 1024 * KIB] {
        w.push((
            Work::Stream {
                ring: 64 * KIB,
                chunk,
            },
            sweep,
        ));
    }
    w.push((Work::Idle, 1));
    w.push((Work::Syscalls, 1));
    w
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
    let ovchan = pair::OVchan::build();
    if let Err(e) = &ovchan {
        eprintln!("vchan-bench: ocaml-vchan column: {e}");
    }
    let bench = Bench {
        opts,
        c,
        ovchan,
        tmp: tmp.path().to_path_buf(),
        cat_file: std::cell::RefCell::new(None),
    };

    let mut rows: Vec<RowOut> = Vec::new();
    let mut errors = Vec::new();
    for (w, runs) in works(bench.opts.runs) {
        let selected = |c: &Column| {
            let name = format!("{} / {}", w.title(), c.title());
            bench
                .opts
                .only
                .as_ref()
                .is_none_or(|o| name.contains(o.as_str()))
        };
        // ocaml-vchan's programs missing: its cells say why, and do not run.
        let unbuilt = |c: &Column| *c == Column::OVchan && bench.ovchan.is_err();
        let cols: Vec<Column> = COLUMNS
            .into_iter()
            .filter(|c| selected(c) && w.not_applicable(*c).is_none() && !unbuilt(c))
            .collect();
        if cols.is_empty() {
            continue;
        }
        let t = Instant::now();
        let results = bench.row(w, &cols, runs);
        let n = COLUMNS.len();
        let mut out = RowOut {
            work: w,
            median: vec![f64::NAN; n],
            runs: vec![Vec::new(); n],
            sleeps: vec![f64::NAN; n],
            notes: COLUMNS
                .iter()
                .map(|&c| match (w.not_applicable(c), &bench.ovchan) {
                    (Some(why), _) => format!("n/a: {why}"),
                    (None, _) if !selected(&c) => "not run (--only)".into(),
                    (None, Err(why)) if unbuilt(&c) => why.clone(),
                    (None, _) => String::new(),
                })
                .collect(),
        };
        for (col, r) in cols.iter().zip(results) {
            let Some(at) = COLUMNS.iter().position(|c| c == col) else {
                continue;
            };
            match r {
                Ok(cell) => {
                    let values: Vec<f64> = cell.runs.iter().map(Sample::value).collect();
                    let m = median(&values);
                    let sleeps: Vec<f64> = cell
                        .runs
                        .iter()
                        .filter_map(|s| s.sleeps().map(|v| v as f64))
                        .collect();
                    eprintln!(
                        "{:<52} {:<14} median {:>8}  runs [{}]{}{}",
                        w.title(),
                        col.title(),
                        fmt(m),
                        values
                            .iter()
                            .map(|&v| fmt(v))
                            .collect::<Vec<_>>()
                            .join(", "),
                        if sleeps.is_empty() {
                            String::new()
                        } else {
                            format!(
                                "  sleeps [{}]",
                                sleeps
                                    .iter()
                                    .map(|v| format!("{v:.0}"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        },
                        if cell.note.is_empty() {
                            String::new()
                        } else {
                            format!("  {}", cell.note)
                        }
                    );
                    out.median[at] = m;
                    out.runs[at] = values;
                    out.sleeps[at] = if sleeps.is_empty() {
                        f64::NAN
                    } else {
                        median(&sleeps)
                    };
                    out.notes[at] = cell.note;
                }
                Err(e) => {
                    eprintln!("{:<52} {:<14} FAILED: {e}", w.title(), col.title());
                    errors.push(format!("{} / {}: {e}", w.title(), col.title()));
                    out.notes[at] = format!("FAILED: {e}");
                }
            }
        }
        eprintln!("({:.1} s)", t.elapsed().as_secs_f64());
        rows.push(out);
    }

    println!();
    println!(
        "## vchan-bench: two processes per cell, medians of up to {} runs",
        bench.opts.runs
    );
    for m in machine() {
        println!("- {m}");
    }
    println!();
    print!("{}", results_table(&rows));
    println!();
    println!("Targets (this run):");
    println!();
    print!("{}", targets_table(&rows));
    println!();
    println!("How often the measuring side (stream reader, pinger) slept per run (voluntary context switches, median):");
    println!();
    println!("| workload | {} |", COLUMNS.map(Column::title).join(" | "));
    println!("|{}", "---|".repeat(COLUMNS.len() + 1));
    for r in rows
        .iter()
        .filter(|r| r.sleeps.iter().any(|v| v.is_finite()))
    {
        let cells: Vec<String> = r
            .sleeps
            .iter()
            .map(|&v| {
                if v.is_finite() {
                    format!("{v:.0}")
                } else {
                    "n/a".into()
                }
            })
            .collect();
        println!("| {} | {} |", r.work.title(), cells.join(" | "));
    }
    println!();
    println!("Notes:");
    for r in &rows {
        for (c, n) in COLUMNS.iter().zip(&r.notes) {
            if !n.is_empty() {
                println!("- {} / {}: {n}", r.work.title(), c.title());
            }
        }
    }
    println!();
    println!("Ratios are medians of per-run quotients (run k of every column of a row runs back to back), else quotients of medians: for GiB/s above 1 means the first column is faster; for µs below 1 does.");
    println!(
        "Writers use {} KiB writes and readers {} KiB buffers unless the row says otherwise; socket buffers (SO_SNDBUF/SO_RCVBUF) and pipe capacity (F_SETPIPE_SZ) are set to the ring size; ping-pong uses {} rings, {} rounds per run.",
        CHUNK / KIB,
        CHUNK / KIB,
        size_name(PING_RING),
        bench.opts.rounds
    );
    println!(
        "The limit: spinning single-producer/single-consumer rings in shared memory, no notifications; the best of publishing every ring/{:?}.",
        LIMIT_DIVISORS
    );
    println!(
        "Idle: CPU time of an endpoint blocked in a read while its peer stays silent {:.1} s. System calls: strace -c of the echoing side of a ping-pong in which both sides sleep {SYS_DELAY_US} µs before each message, runs of {:?} rounds differenced; the deliberate sleep not counted.",
        bench.opts.idle_ms as f64 / 1000.0,
        bench.opts.sys_rounds
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
    if let Err(e) = std::fs::create_dir_all(&bench.opts.out)
        .and_then(|_| write_csv(&bench.opts.out.join("bench.csv"), &rows))
        .and_then(|_| {
            write_svg(
                &bench.opts.out.join("bench.svg"),
                &rows,
                "vchan-bench: each bar relative to the best of its row",
            )
        })
    {
        errors.push(format!("writing {}: {e}", bench.opts.out.display()));
    } else {
        println!(
            "Wrote {} and {}.",
            bench.opts.out.join("bench.csv").display(),
            bench.opts.out.join("bench.svg").display()
        );
    }
    println!("Total time: {:.0} s.", started.elapsed().as_secs_f64());
    if !errors.is_empty() {
        println!();
        for e in &errors {
            println!("FAILED: {e}");
        }
        std::process::exit(1);
    }
}
