//! **Internal to vchan-rs** (not published): the benchmark program, `make
//! bench` (docs/benchmarks.md: what it measures, how, and its options,
//! [`cli`]'s usage). vchan-rs, Rust and OCaml, side by side with Xen's C
//! libxenvchan on xensim, mirage/ocaml-vchan, a Unix stream socket, a pipe
//! and the limit (spinning shared-memory rings), each cell two processes
//! ([`role`]) pinned to CPUs 0 and 1, medians of runs taken round robin
//! over the columns; a table on standard output, CSV and SVG into `--out`
//! (target/bench; the committed bench/results only by `make bench-results`).

mod cli;
mod measure;
mod peers;
mod report;
mod role;
mod shm;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cli::*;
use measure::*;
use report::*;
use vchan_test_support::Pattern;

const KIB: usize = 1024;
const MIB: u64 = 1 << 20;
/// Every writer's chunk and every reader's buffer.
const CHUNK: usize = 64 * KIB;
/// The ping-pong message.
const MSG: usize = 64;
/// Ring (and kernel buffer) size for the ping-pong.
const PING_RING: usize = 64 * KIB;
const PROBE: u64 = 8 * MIB;
const MAX_TOTAL: u64 = 16 << 30;
/// Bytes per run of the Lwt_io and vchan-cat rows (the file is in tmpfs).
const CAT_TOTAL: u64 = 1 << 30;
/// Stream readers check the byte at every multiple of this offset (and the
/// last of every read).
const SAMPLE: u64 = 4096;

/// The stream every writer sends, for runs up to `extra` bytes: its period
/// (prime) and bytes are those of bench/c/xvbench.c and bench/ocaml/vbench.ml.
fn pattern(extra: usize) -> Pattern {
    Pattern::new(65521, extra)
}

/// The table's columns, in their order (`col as usize` is the index).
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

#[rustfmt::skip]
const COLUMNS: [Column; 7] = {
    use Column::*;
    [VchanRs, OCaml, OVchan, C, Socket, Pipe, Limit]
};

impl Column {
    fn title(self) -> &'static str {
        [
            "vchan-rs",
            "vchan-rs OCaml",
            "ocaml-vchan",
            "C libxenvchan",
            "unix socket",
            "pipe",
            "limit",
        ][self as usize]
    }
}

const ALL: usize = usize::MAX;

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

    /// Is a larger value better? (Only for throughput.)
    fn higher_is_better(self) -> bool {
        self.unit() == "GiB/s"
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

/// What a target reads: a within-row ratio of two columns (see
/// [`report::paired`]), one cell, or a quotient of two rows' medians.
#[derive(Clone, Copy)]
enum Of {
    Within(Work, Column, Column),
    Cell(Work, Column),
    Across(Work, Column, Work, Column),
}

#[derive(Clone, Copy)]
enum Goal {
    AtLeast(f64),
    AtMost(f64),
    Below(f64),
}

const fn stream(ring: usize) -> Work {
    Work::Stream { ring, chunk: CHUNK }
}

const fn sweep(chunk: usize) -> Work {
    Work::Stream {
        ring: 64 * KIB,
        chunk,
    }
}

/// The performance targets `make bench` checks on its own run: (name,
/// what it reads, goal, the goal as the table says it).
#[rustfmt::skip]
const TARGETS: [(&str, Of, Goal, &str); 19] = {
    use Column::{Limit, OCaml, OVchan, Socket, VchanRs, C};
    use Goal::{AtLeast, AtMost, Below};
    use Of::{Across, Cell, Within};
    [
        ("stream, 4 KiB rings (GiB/s): vchan-rs / limit", Within(stream(4 * KIB), VchanRs, Limit), AtLeast(0.9), ">= 0.9"),
        ("stream, 64 KiB rings (GiB/s): vchan-rs / limit", Within(stream(64 * KIB), VchanRs, Limit), AtLeast(0.9), ">= 0.9"),
        ("stream, 1 MiB rings (GiB/s): vchan-rs / limit", Within(stream(1024 * KIB), VchanRs, Limit), AtLeast(0.9), ">= 0.9"),
        ("64 KiB rings: vchan-rs / unix socket", Within(stream(64 * KIB), VchanRs, Socket), AtLeast(1.5), ">= 1.5"),
        ("1 MiB rings: vchan-rs / C", Within(stream(1024 * KIB), VchanRs, C), AtLeast(1.0), ">= 1"),
        ("ping-pong: vchan-rs / limit", Within(Work::PingPong, VchanRs, Limit), AtMost(1.2), "<= 1.2"),
        ("(context) ping-pong: vchan-rs / limit in vchan's layout", Across(Work::PingPong, VchanRs, Work::PingPongVchanLayout, Limit), AtMost(1.2), "<= 1.2"),
        ("64 KiB rings: OCaml M.read/M.write / vchan-rs", Within(stream(64 * KIB), OCaml, VchanRs), AtLeast(0.9), ">= 0.9"),
        ("OCaml Lwt_io / vchan-rs (64 KiB)", Within(Work::LwtIo, OCaml, VchanRs), AtLeast(0.7), ">= 0.7"),
        ("OCaml ping-pong 64 B (µs)", Cell(Work::PingPong, OCaml), AtMost(3.0), "<= 3"),
        ("vchan-cat / vchan-rs (64 KiB)", Within(Work::Cat, OCaml, VchanRs), AtLeast(0.8), ">= 0.8"),
        // Against ocaml-vchan: its In_memory, its vchan-unix over xensim
        // (two processes), its xencat.
        ("In_memory stream: vchan-rs / ocaml-vchan", Within(Work::InMemStream, OCaml, OVchan), AtLeast(1.0), ">= 1"),
        ("In_memory ping-pong: vchan-rs / ocaml-vchan", Within(Work::InMemPing, OCaml, OVchan), AtMost(0.6), "<= 0.6"),
        ("64 KiB rings: vchan-rs OCaml / ocaml-vchan over xensim", Within(stream(64 * KIB), OCaml, OVchan), AtLeast(2.0), ">= 2"),
        ("ping-pong: vchan-rs OCaml / ocaml-vchan over xensim", Within(Work::PingPong, OCaml, OVchan), AtMost(0.2), "<= 0.2"),
        ("vchan-cat / ocaml-vchan's xencat (tmpfs file)", Within(Work::Cat, OCaml, OVchan), AtLeast(2.0), ">= 2"),
        ("idle vchan-rs (% of a core)", Cell(Work::Idle, VchanRs), Below(1.0), "< 1"),
        // strace counts whole calls; a stray one in a few hundred rounds
        // (the 200 ms death check of a writer) shows as 2.01.
        ("system calls per round trip, vchan-rs", Cell(Work::Syscalls, VchanRs), AtMost(2.05), "<= 2 (+0.05)"),
        ("system calls per round trip, vchan-rs OCaml", Cell(Work::Syscalls, OCaml), AtMost(2.05), "<= 2 (+0.05)"),
    ]
};

/// The rows of the table, in order, with how many runs their cells get at
/// most (--runs caps them).
const ROWS: [(Work, usize); 17] = [
    (stream(4 * KIB), ALL),
    (stream(64 * KIB), ALL),
    (stream(1024 * KIB), ALL),
    (Work::LwtIo, ALL),
    (Work::Cat, ALL),
    (Work::InMemStream, ALL),
    (Work::PingPong, ALL),
    (Work::PingPongVchanLayout, ALL),
    (Work::Floor, ALL),
    (Work::InMemPing, ALL),
    // Message sizes through 64 KiB rings (64 KiB itself is a row above).
    (sweep(64), 3),
    (sweep(KIB), 3),
    (sweep(16 * KIB), 3),
    (sweep(256 * KIB), 3),
    (sweep(1024 * KIB), 3),
    (Work::Idle, 1),
    (Work::Syscalls, 1),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--role") {
        if let Err(e) = role::role(&args[1..]) {
            eprintln!("vchan-bench role: {e}");
            std::process::exit(1);
        }
        return;
    }
    let fail = |e: String, code| -> ! {
        eprintln!("vchan-bench: {e}");
        std::process::exit(code)
    };
    let opts = parse_opts(&args).unwrap_or_else(|e| fail(e, 2));
    let started = Instant::now();
    let tmp = tempfile::Builder::new()
        .prefix("vchan-bench")
        .tempdir_in("/tmp")
        .unwrap_or_else(|e| fail(format!("temporary directory in /tmp: {e}"), 1));
    let bench = Bench::new(opts, tmp.path());
    let mut errors = Vec::new();
    let rows: Vec<RowOut> = ROWS
        .iter()
        .filter_map(|&(work, runs)| bench.measure_row(work, bench.opts.runs.min(runs), &mut errors))
        .collect();
    print_report(&bench.opts, &rows);
    let out = &bench.opts.out;
    let (csv, svg) = (out.join("bench.csv"), out.join("bench.svg"));
    match std::fs::create_dir_all(out)
        .and_then(|_| std::fs::write(&csv, csv_text(&rows)))
        .and_then(|_| std::fs::write(&svg, svg_text(&rows)))
    {
        Ok(()) => println!("Wrote {} and {}.", csv.display(), svg.display()),
        Err(e) => errors.push(format!("writing {}: {e}", out.display())),
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
