//! **Internal to vchan-rs**: `make bench`'s tables (docs/benchmarks.md says how).

mod cli;
mod measure;
mod peers;
mod report;
mod role;
mod shm;

use std::path::{Path, PathBuf};
use std::time::Instant;

use vchan_test_support::Pattern;

const KIB: usize = 1024;
const MIB: u64 = 1 << 20;
/// Every writer's chunk and every reader's buffer unless a row says not.
const CHUNK: usize = 64 * KIB;
/// The ping-pong message, and its rings.
const MSG: usize = 64;
const PING_RING: usize = 64 * KIB;
/// Stream readers check the byte at every multiple of this offset.
const SAMPLE: u64 = 4096;

/// The stream every writer sends (vbench.ml's too).
fn pattern(extra: usize) -> Pattern {
    Pattern::new(65521, extra)
}

/// The table's columns, in order (`col as usize` is the index).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Column {
    VchanRs,
    OCaml,
    OVchan,
    C,
    Socket,
    Pipe,
    Limit,
}

const COLUMNS: [Column; 7] = {
    use Column::*;
    [VchanRs, OCaml, OVchan, C, Socket, Pipe, Limit]
};
const TITLES: [&str; 7] = [
    "vchan-rs",
    "vchan-rs OCaml",
    "ocaml-vchan",
    "C libxenvchan",
    "unix socket",
    "pipe",
    "limit",
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Work {
    /// One-way stream through rings of .0 bytes, in writes and reads of .1.
    Stream(usize, usize),
    PingPong,
    /// The limit's ping-pong with its counters in one cache line.
    PingPongVchanLayout,
    /// One cache line back and forth.
    Floor,
    Idle,
    Syscalls,
    LwtIo,
    Cat,
    InMemStream,
    InMemPing,
}

impl Work {
    fn unit(self) -> &'static str {
        match self {
            Work::Stream(..) | Work::LwtIo | Work::Cat | Work::InMemStream => "GiB/s",
            Work::PingPong | Work::PingPongVchanLayout | Work::Floor | Work::InMemPing => "us",
            Work::Idle => "% of a core",
            Work::Syscalls => "calls",
        }
    }
}

/// A letter per column, in [`COLUMNS`]' order (X: ocaml-vchan): a row's columns.
const LETTERS: &str = "ROXCSPL";

/// The rows: title, workload, most runs per cell (`--runs` caps them), columns.
#[rustfmt::skip]
const ROWS: [(&str, Work, usize, &str); 17] = {
    use Work::*;
    const ALL: usize = usize::MAX;
    [
        ("stream, 4 KiB rings (GiB/s)", Stream(4 * KIB, CHUNK), ALL, "ROCSPL"),
        ("stream, 64 KiB rings (GiB/s)", Stream(64 * KIB, CHUNK), ALL, "ROXCSPL"),
        ("stream, 1 MiB rings (GiB/s)", Stream(1024 * KIB, CHUNK), ALL, "ROCSPL"),
        ("stream, 64 KiB rings, OCaml Lwt_io channels (GiB/s)", LwtIo, ALL, "RO"),
        ("vchan-cat, tmpfs file to /dev/null, 64 KiB rings (GiB/s)", Cat, ALL, "ROX"),
        ("OCaml In_memory, one process, stream, 64 KiB rings (GiB/s)", InMemStream, ALL, "OX"),
        ("ping-pong 64 B (µs round trip)", PingPong, ALL, "ROXCSPL"),
        ("ping-pong 64 B, indices in one cache line as in vchan (µs round trip)",
            PingPongVchanLayout, ALL, "L"),
        ("cache-line ping-pong (µs round trip)", Floor, ALL, "L"),
        ("OCaml In_memory, one process, ping-pong 64 B (µs round trip)", InMemPing, ALL, "OX"),
        ("stream, 64 KiB rings, 64 B writes (GiB/s)", Stream(64 * KIB, 64), 3, "RCSPL"),
        ("stream, 64 KiB rings, 1 KiB writes (GiB/s)", Stream(64 * KIB, KIB), 3, "RCSPL"),
        ("stream, 64 KiB rings, 16 KiB writes (GiB/s)", Stream(64 * KIB, 16 * KIB), 3, "RCSPL"),
        ("stream, 64 KiB rings, 256 KiB writes (GiB/s)", Stream(64 * KIB, 256 * KIB), 3, "RCSPL"),
        ("stream, 64 KiB rings, 1 MiB writes (GiB/s)", Stream(64 * KIB, 1024 * KIB), 3, "RCSPL"),
        ("idle, blocked on a silent peer (% of a core)", Idle, 1, "RCSP"),
        ("system calls per round trip, one side, both sleeping", Syscalls, 1, "ROXC"),
    ]
};

/// What a target reads: a within-row ratio, a cell, or two rows' quotient.
#[derive(Clone, Copy)]
enum Of {
    Within(Work, Column, Column),
    Cell(Work, Column),
    Across(Work, Column, Work, Column),
}

/// The performance targets, checked on each run: name, what it reads, goal.
#[rustfmt::skip]
const TARGETS: [(&str, Of, &str); 19] = {
    use Column::{Limit, OCaml, OVchan, Socket, VchanRs, C};
    use Of::{Across, Cell, Within};
    use Work::*;
    const S4: Work = Stream(4 * KIB, CHUNK);
    const S64: Work = Stream(64 * KIB, CHUNK);
    const S1M: Work = Stream(1024 * KIB, CHUNK);
    [
        ("stream, 4 KiB rings (GiB/s): vchan-rs / limit", Within(S4, VchanRs, Limit), ">= 0.9"),
        ("stream, 64 KiB rings (GiB/s): vchan-rs / limit", Within(S64, VchanRs, Limit), ">= 0.9"),
        ("stream, 1 MiB rings (GiB/s): vchan-rs / limit", Within(S1M, VchanRs, Limit), ">= 0.9"),
        ("64 KiB rings: vchan-rs / unix socket", Within(S64, VchanRs, Socket), ">= 1.5"),
        ("1 MiB rings: vchan-rs / C", Within(S1M, VchanRs, C), ">= 1"),
        ("ping-pong: vchan-rs / limit", Within(PingPong, VchanRs, Limit), "<= 1.2"),
        ("(context) ping-pong: vchan-rs / limit in vchan's layout",
            Across(PingPong, VchanRs, PingPongVchanLayout, Limit), "<= 1.2"),
        ("64 KiB rings: OCaml M.read/M.write / vchan-rs", Within(S64, OCaml, VchanRs), ">= 0.9"),
        ("OCaml Lwt_io / vchan-rs (64 KiB)", Within(LwtIo, OCaml, VchanRs), ">= 0.7"),
        ("OCaml ping-pong 64 B (µs)", Cell(PingPong, OCaml), "<= 3"),
        ("vchan-cat / vchan-rs (64 KiB)", Within(Cat, OCaml, VchanRs), ">= 0.8"),
        ("In_memory stream: vchan-rs / ocaml-vchan", Within(InMemStream, OCaml, OVchan), ">= 1"),
        ("In_memory ping-pong: vchan-rs / ocaml-vchan", Within(InMemPing, OCaml, OVchan),
            "<= 0.6"),
        ("64 KiB rings: vchan-rs OCaml / ocaml-vchan over xensim", Within(S64, OCaml, OVchan),
            ">= 2"),
        ("ping-pong: vchan-rs OCaml / ocaml-vchan over xensim", Within(PingPong, OCaml, OVchan),
            "<= 0.2"),
        ("vchan-cat / ocaml-vchan's xencat (tmpfs file)", Within(Cat, OCaml, OVchan), ">= 2"),
        ("idle vchan-rs (% of a core)", Cell(Idle, VchanRs), "< 1"),
        // strace counts whole calls: a stray one in a few hundred rounds
        // (the 200 ms death check of a writer) shows as 2.01.
        ("system calls per round trip, vchan-rs", Cell(Syscalls, VchanRs), "<= 2 (+0.05)"),
        ("system calls per round trip, vchan-rs OCaml", Cell(Syscalls, OCaml), "<= 2 (+0.05)"),
    ]
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let fail = |e: String, code| -> ! {
        eprintln!("vchan-bench: {e}");
        std::process::exit(code)
    };
    if let Some(("--role", role)) = args.split_first().map(|(a, r)| (a.as_str(), r)) {
        return role::role(role).unwrap_or_else(|e| fail(format!("role: {e}"), 1));
    }
    let opts = cli::parse(&args).unwrap_or_else(|e| fail(e, 2));
    let started = Instant::now();
    let tmp = tempfile::Builder::new()
        .prefix("vchan-bench")
        .tempdir_in("/tmp");
    let tmp = tmp.unwrap_or_else(|e| fail(format!("temporary directory in /tmp: {e}"), 1));
    let bench = measure::Bench::new(opts, tmp.path());
    let mut errors = Vec::new();
    let rows: Vec<report::RowOut> = ROWS
        .iter()
        .filter_map(|&row| bench.measure_row(row, &mut errors))
        .collect();
    report::print(&bench.opts, &rows);
    let (out, csv) = (&bench.opts.out, bench.opts.out.join("bench.csv"));
    match std::fs::create_dir_all(out).and_then(|_| std::fs::write(&csv, report::csv(&rows))) {
        Ok(()) => println!("Wrote {}.", csv.display()),
        Err(e) => errors.push(format!("writing {}: {e}", csv.display())),
    }
    println!("Total time: {:.0} s.", started.elapsed().as_secs_f64());
    for e in &errors {
        println!("FAILED: {e}");
    }
    if !errors.is_empty() {
        std::process::exit(1);
    }
}
