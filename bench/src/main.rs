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

mod kernel;
mod pair;
mod pattern;
mod shm;
mod workload;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kernel::{Job, Kind, Outcome};
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

struct Opts {
    runs: usize,
    secs: f64,
    rounds: u64,
    /// How long the idle row's peer stays silent (ms).
    idle_ms: u64,
    /// Rounds of the two system-call runs (their difference is counted).
    sys_rounds: [u64; 2],
    /// A fixed amount per stream run instead of calibrating (smoke runs).
    fixed_total: Option<u64>,
    /// Run only the cells whose "workload / column" contains this.
    only: Option<String>,
    /// Pin the two processes of each cell to CPUs 0 and 1 (the default
    /// with two CPUs or more).
    pin: bool,
    /// Where the CSV and the SVG go.
    out: PathBuf,
}

struct Bench {
    opts: Opts,
    c: Result<pair::CSide, String>,
    /// ocaml-vchan's programs, or why they were not built.
    ovchan: Result<pair::OVchan, String>,
    tmp: PathBuf,
    /// The vchan-cat row's tmpfs file, made (and read once) on first use
    /// and shared by its runs: the first read of a freshly written tmpfs
    /// file costs the kernel ~40 ms per GiB more than later reads (its
    /// pages are activated on the LRU), which is not vchan-cat's doing.
    cat_file: std::cell::RefCell<Option<(u64, tempfile::NamedTempFile)>>,
}

/// One measurement: GiB/s for a stream, µs for a ping-pong, % of a core
/// for idle, calls per round; and how often the measuring side (stream
/// reader, pinger) slept.
#[derive(Debug, Clone, Copy)]
enum Sample {
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

    fn value(&self) -> f64 {
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

    fn sleeps(&self) -> Option<u64> {
        match *self {
            Sample::Stream { sleeps, .. } | Sample::Rtt { sleeps, .. } => Some(sleeps),
            _ => None,
        }
    }
}

/// What a vchan pair gets besides its arguments: environment variables
/// for both sides, and a wrapper for the server's command (a tracer).
struct Extra<'a> {
    env: &'a [(&'a str, String)],
    wrap: Option<&'a dyn Fn(Command) -> Command>,
}

impl Extra<'_> {
    const NONE: Extra<'static> = Extra {
        env: &[],
        wrap: None,
    };
}

/// A row's result for one column.
struct Cell {
    runs: Vec<Sample>,
    /// How the cell was measured, when that varies (the limit's best
    /// publish granularity).
    note: String,
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

    /// A vchan pair (vchan-rs or C) in `mode` ("stream", "ping"/"pong",
    /// "idle"), with the client's COUNT and SIZE; `wrap` may put a tracer
    /// in front of the server.
    fn vchan_pair(
        &self,
        col: Column,
        ring: usize,
        modes: [&str; 2],
        count: u64,
        size: usize,
        extra: &Extra,
    ) -> Result<(pair::Values, pair::Values), String> {
        let s = |v: &dyn ToString| v.to_string();
        let dir = self.rendezvous()?;
        let srv: Vec<String> = vec![
            s(&"server"),
            s(&1),
            s(&pair::PATH),
            s(&ring),
            s(&modes[0]),
            s(&count),
            s(&size),
        ];
        let cli: Vec<String> = vec![
            s(&"client"),
            s(&0),
            s(&pair::PATH),
            s(&modes[1]),
            s(&count),
            s(&size),
        ];
        self.run_pair(col, dir.path(), &srv, &cli, extra)
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
        let outcome = match col {
            Column::VchanRs | Column::C | Column::OCaml | Column::OVchan => {
                let (sv, _) =
                    self.vchan_pair(col, ring, ["stream", "stream"], total, chunk, &Extra::NONE)?;
                pair::stream_outcome(&sv)?
            }
            Column::Socket => kernel_stream(Kind::Socket, ring, total, chunk, self.pin())?,
            Column::Pipe => kernel_stream(Kind::Pipe, ring, total, chunk, self.pin())?,
            Column::Limit => kernel_stream(
                Kind::Shm {
                    publish,
                    layout: Layout::Separate,
                },
                ring,
                total,
                chunk,
                self.pin(),
            )?,
        };
        verified(outcome, total)
    }

    fn ping(&self, col: Column, job: Job, layout: Layout) -> Result<Sample, String> {
        let rounds = self.opts.rounds;
        let (ns, sleeps) = match col {
            Column::VchanRs | Column::C | Column::OCaml | Column::OVchan => {
                let (_, cv) =
                    self.vchan_pair(col, PING_RING, ["pong", "ping"], rounds, MSG, &Extra::NONE)?;
                (pair::get(&cv, "median_ns")?, pair::get(&cv, "sleeps")?)
            }
            Column::Socket | Column::Pipe | Column::Limit => {
                let kind = match col {
                    Column::Socket => Kind::Socket,
                    Column::Pipe => Kind::Pipe,
                    _ => Kind::Shm {
                        publish: MSG,
                        layout,
                    },
                };
                match kernel::run(kind, PING_RING, job, self.pin())? {
                    Outcome::Rtt(p) => (p.median_ns, p.sleeps),
                    _ => return Err("unexpected outcome".into()),
                }
            }
        };
        Ok(Sample::Rtt { ns, sleeps })
    }

    fn idle(&self, col: Column) -> Result<Sample, String> {
        let ms = self.opts.idle_ms;
        let (cpu_secs, wall_secs) = match col {
            Column::VchanRs | Column::C => {
                let (sv, _) =
                    self.vchan_pair(col, PING_RING, ["idle", "idle"], ms, 1, &Extra::NONE)?;
                (pair::get(&sv, "cpu_secs")?, pair::get(&sv, "wall_secs")?)
            }
            Column::Socket | Column::Pipe => {
                let kind = if col == Column::Socket {
                    Kind::Socket
                } else {
                    Kind::Pipe
                };
                match kernel::run(kind, PING_RING, Job::Idle { ms }, self.pin())? {
                    Outcome::Idle(o) => (o.cpu_secs, o.wall_secs),
                    _ => return Err("unexpected outcome".into()),
                }
            }
            Column::Limit | Column::OCaml | Column::OVchan => return Err("not applicable".into()),
        };
        if wall_secs < ms as f64 / 1000.0 * 0.9 {
            return Err(format!("blocked only {wall_secs:.3} s of {ms} ms"));
        }
        Ok(Sample::Idle {
            cpu_secs,
            wall_secs,
        })
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
        extra: &Extra,
    ) -> Result<(pair::Values, pair::Values), String> {
        let d = dir.display().to_string();
        let (mut server, mut client) = if col == Column::C {
            let c = self.c.as_ref().map_err(Clone::clone)?;
            (c.command(0, dir, srv), c.command(1, dir, cli))
        } else if col == Column::OCaml || col == Column::OVchan {
            // vbench.exe: `server RING ...`, `client ...`.
            let mut srv: Vec<String> = srv.to_vec();
            srv.drain(1..3);
            let mut cli: Vec<String> = cli.to_vec();
            cli.drain(1..3);
            if col == Column::OVchan {
                // The tracer goes inside vchan-xensim (its xenstored
                // process is not the endpoint's).
                let ov = self.ovchan.as_ref().map_err(Clone::clone)?;
                let mut server = ov.vbench(dir, &srv);
                if let Some(w) = extra.wrap {
                    server = w(server);
                }
                let (mut server, mut client) = (
                    ov.under_xensim(0, server),
                    ov.under_xensim(1, ov.vbench(dir, &cli)),
                );
                for (k, v) in extra.env {
                    server.env(k, v);
                    client.env(k, v);
                }
                return pair::run(server, client, LIMIT, self.pin());
            }
            (
                pair::ocaml_command(dir, 0, &srv)?,
                pair::ocaml_command(dir, 1, &cli)?,
            )
        } else {
            // Rust roles: `server DIR RING ...`, `client DIR ...`.
            let mut srv: Vec<String> = srv.to_vec();
            srv.splice(1..3, [d.clone()]);
            let mut cli: Vec<String> = cli.to_vec();
            cli.splice(1..3, [d]);
            (pair::rust_command(&srv)?, pair::rust_command(&cli)?)
        };
        for (k, v) in extra.env {
            server.env(k, v);
            client.env(k, v);
        }
        if let Some(w) = extra.wrap {
            server = w(server);
        }
        pair::run(server, client, LIMIT, self.pin())
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
        match work {
            Work::Stream { .. } => self.stream(col, work, total, publish),
            Work::PingPong | Work::PingPongVchanLayout => self.ping(
                col,
                Job::PingPong {
                    rounds: self.opts.rounds,
                    msg: MSG,
                },
                if work == Work::PingPong {
                    Layout::Separate
                } else {
                    Layout::Vchan
                },
            ),
            Work::Floor => self.ping(
                col,
                Job::Bounce {
                    rounds: self.opts.rounds,
                },
                Layout::Separate,
            ),
            Work::LwtIo | Work::Cat if col == Column::VchanRs => self.stream(
                col,
                Work::Stream {
                    ring: 64 * KIB,
                    chunk: CHUNK,
                },
                total,
                0,
            ),
            Work::Idle => self.idle(col),
            Work::Syscalls => self.syscalls(col).map(|(s, _)| s),
            Work::LwtIo => {
                let (sv, _) = self.vchan_pair(
                    Column::OCaml,
                    64 * KIB,
                    ["lwtio", "lwtio"],
                    total,
                    CHUNK,
                    &Extra::NONE,
                )?;
                verified(pair::stream_outcome(&sv)?, total)
            }
            Work::Cat => self.cat(col, total),
            Work::InMemStream => {
                let v = self.in_memory(col, "stream", total, CHUNK)?;
                verified(pair::stream_outcome(&v)?, total)
            }
            Work::InMemPing => {
                let v = self.in_memory(col, "ping", self.opts.rounds, MSG)?;
                Ok(Sample::Rtt {
                    ns: pair::get(&v, "median_ns")?,
                    sleeps: pair::get(&v, "sleeps")?,
                })
            }
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
const SYS_DELAY_US: u64 = 1000;

/// The `calls` column of `strace -c` output by system call, without the
/// sleeps the workload makes on purpose.
fn strace_calls(text: &str) -> Result<std::collections::BTreeMap<String, u64>, String> {
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

fn kernel_stream(
    kind: Kind,
    ring: usize,
    total: u64,
    chunk: usize,
    pin: Option<[usize; 2]>,
) -> Result<workload::StreamOutcome, String> {
    match kernel::run(kind, ring, Job::Stream { total, chunk }, pin)? {
        Outcome::Stream(o) => Ok(o),
        _ => Err("unexpected outcome".into()),
    }
}

/// A stream run's sample, once its reader checked a sample per 4 KiB of
/// the stream and the clock ran.
fn verified(o: workload::StreamOutcome, total: u64) -> Result<Sample, String> {
    if o.samples < total / pattern::SAMPLE || o.secs <= 0.0 {
        return Err(format!(
            "only {} of {} bytes verified",
            o.samples * pattern::SAMPLE,
            total
        ));
    }
    Ok(Sample::Stream {
        bytes: o.bytes,
        secs: o.secs,
        sleeps: o.sleeps,
    })
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `a / b` within one row: the median of the per-run quotients when both
/// cells have the same runs (run k of every column ran back to back, so a
/// change in the machine between runs — this kind of host sometimes moves
/// the two virtual CPUs apart, and cross-core copies slow down 3-4x —
/// falls on both sides of each quotient), else the quotient of medians.
fn paired(r: &RowOut, a: Column, b: Column) -> f64 {
    let (ra, rb) = (&r.runs[a.at()], &r.runs[b.at()]);
    if ra.is_empty() || ra.len() != rb.len() {
        return r.median[a.at()] / r.median[b.at()];
    }
    let q: Vec<f64> = ra.iter().zip(rb).map(|(x, y)| x / y).collect();
    median(&q)
}

fn parse_opts() -> Result<Opts, String> {
    let mut o = Opts {
        runs: 5,
        secs: 1.0,
        rounds: 20_000,
        idle_ms: 10_000,
        sys_rounds: [200, 4000],
        fixed_total: None,
        only: None,
        pin: std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2),
        out: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench")),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--runs" => o.runs = val("--runs")?.parse().map_err(|_| "bad --runs")?,
            "--secs" => o.secs = val("--secs")?.parse().map_err(|_| "bad --secs")?,
            "--rounds" => o.rounds = val("--rounds")?.parse().map_err(|_| "bad --rounds")?,
            "--idle-secs" => {
                let s: f64 = val("--idle-secs")?.parse().map_err(|_| "bad --idle-secs")?;
                o.idle_ms = (s * 1000.0) as u64;
            }
            "--only" => o.only = Some(val("--only")?),
            "--no-pin" => o.pin = false,
            "--out" => o.out = PathBuf::from(val("--out")?),
            "--smoke" => {
                o.runs = 1;
                o.rounds = 200;
                o.idle_ms = 300;
                o.sys_rounds = [20, 40];
                o.fixed_total = Some(4 * MIB);
            }
            "-h" | "--help" => {
                println!(
                    "usage: vchan-bench [--runs N] [--secs S] [--rounds N] [--idle-secs S] [--only TEXT] [--no-pin] [--out DIR] [--smoke]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.runs == 0 || o.rounds == 0 || o.idle_ms == 0 || !o.secs.is_finite() || o.secs <= 0.0 {
        return Err("--runs, --rounds, --idle-secs and --secs must be positive".into());
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
    // The installed Xen's libxenvchan.so.<major>.<minor> (its soname).
    let lib = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"]
        .into_iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libxenvchan.so.") && n.matches('.').count() == 3)
        })
        .min()
        .map_or_else(
            || "libxenvchan (not found)".to_owned(),
            |p| p.display().to_string(),
        );
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

/// One finished row: per column the median (NaN if none), the runs, the
/// sleeps, and a note (why it has no value, or how it was measured).
struct RowOut {
    work: Work,
    median: Vec<f64>,
    runs: Vec<Vec<f64>>,
    sleeps: Vec<f64>,
    notes: Vec<String>,
}

fn fmt_ratio(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "n/a".into()
    }
}

fn write_csv(path: &Path, rows: &[RowOut]) -> std::io::Result<()> {
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut out = String::from("workload,unit,column,median,runs,sleeps,note\n");
    for r in rows {
        for (i, c) in COLUMNS.iter().enumerate() {
            let v = |x: f64| {
                if x.is_finite() {
                    format!("{x}")
                } else {
                    String::new()
                }
            };
            out.push_str(&format!(
                "{},{},{},{},{},{},{}\n",
                q(&r.work.title()),
                q(r.work.unit()),
                q(c.title()),
                v(r.median[i]),
                q(&r.runs[i]
                    .iter()
                    .map(|&x| v(x))
                    .collect::<Vec<_>>()
                    .join(" ")),
                v(r.sleeps[i]),
                q(&r.notes[i]),
            ));
        }
    }
    std::fs::write(path, out)
}

/// A bar chart: one group per row, one bar per column, each bar's length
/// relative to the best cell of its row (for µs, the best is the
/// smallest), labelled with its value.
fn write_svg(path: &Path, rows: &[RowOut], title: &str) -> std::io::Result<()> {
    const COLORS: [&str; 7] = [
        "#d62728", "#ff7f0e", "#8c564b", "#1f77b4", "#2ca02c", "#9467bd", "#7f7f7f",
    ];
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let (left, bar_w, bar_h, gap) = (330.0, 420.0, 11.0, 14.0);
    let group_h = bar_h * COLUMNS.len() as f64 + gap;
    let height = 70.0 + group_h * rows.len() as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"900\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"10\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"18\" font-size=\"13\">{}</text>\n",
        esc(title)
    );
    for (i, c) in COLUMNS.iter().enumerate() {
        let x = 10.0 + i as f64 * 125.0;
        svg.push_str(&format!(
            "<rect x=\"{x}\" y=\"30\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"39\">{}</text>\n",
            COLORS[i],
            x + 14.0,
            esc(c.title())
        ));
    }
    for (g, r) in rows.iter().enumerate() {
        let y0 = 55.0 + g as f64 * group_h;
        svg.push_str(&format!(
            "<text x=\"10\" y=\"{}\">{}</text>\n",
            y0 + bar_h * 2.5,
            esc(&r.work.title())
        ));
        let vals: Vec<f64> = r.median.iter().copied().filter(|v| v.is_finite()).collect();
        let best = if r.work.higher_is_better() {
            vals.iter().copied().fold(0.0, f64::max)
        } else {
            vals.iter()
                .copied()
                .filter(|&v| v > 0.0)
                .fold(f64::INFINITY, f64::min)
        };
        for (i, &v) in r.median.iter().enumerate() {
            let y = y0 + i as f64 * bar_h;
            if !v.is_finite() {
                continue;
            }
            let rel = if r.work.higher_is_better() {
                v / best
            } else if v > 0.0 {
                best / v
            } else {
                1.0
            };
            let w = (rel.clamp(0.0, 1.0) * bar_w).max(1.0);
            svg.push_str(&format!(
                "<rect x=\"{left}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{}\">{} {}</text>\n",
                bar_h - 2.0,
                COLORS[i],
                left + w + 4.0,
                y + bar_h - 3.0,
                fmt(v),
                esc(r.work.unit())
            ));
        }
    }
    svg.push_str("</svg>\n");
    std::fs::write(path, svg)
}

/// The performance targets, read from this run's medians, as a Markdown
/// table (docs/benchmarks.md carries the one of bench/results/bench.csv).
fn targets_table(rows: &[RowOut]) -> String {
    let cell = |w: Work, c: Column| {
        rows.iter()
            .find(|r| r.work == w)
            .map_or(f64::NAN, |r| r.median[c.at()])
    };
    let within = |w: Work, a: Column, b: Column| {
        rows.iter()
            .find(|r| r.work == w)
            .map_or(f64::NAN, |r| paired(r, a, b))
    };
    let stream = |ring: usize| Work::Stream { ring, chunk: CHUNK };
    let q = |a: f64, b: f64| a / b;
    use Column::{Limit, OCaml, OVchan, Socket, VchanRs, C};
    let mut t: Vec<(String, f64, bool, &str)> = Vec::new();
    for ring in RINGS {
        let w = stream(ring);
        let v = within(w, VchanRs, Limit);
        t.push((
            format!("{}: vchan-rs / limit", w.title()),
            v,
            v >= 0.9,
            ">= 0.9",
        ));
    }
    let v = within(stream(64 * KIB), VchanRs, Socket);
    t.push((
        "64 KiB rings: vchan-rs / unix socket".into(),
        v,
        v >= 1.5,
        ">= 1.5",
    ));
    let v = within(stream(1 << 20), VchanRs, C);
    t.push(("1 MiB rings: vchan-rs / C".into(), v, v >= 1.0, ">= 1"));
    let v = within(Work::PingPong, VchanRs, Limit);
    t.push(("ping-pong: vchan-rs / limit".into(), v, v <= 1.2, "<= 1.2"));
    let v = q(
        cell(Work::PingPong, VchanRs),
        cell(Work::PingPongVchanLayout, Limit),
    );
    t.push((
        "(context) ping-pong: vchan-rs / limit in vchan's layout".into(),
        v,
        v <= 1.2,
        "<= 1.2",
    ));
    let v = within(stream(64 * KIB), OCaml, VchanRs);
    t.push((
        "64 KiB rings: OCaml M.read/M.write / vchan-rs".into(),
        v,
        v >= 0.9,
        ">= 0.9",
    ));
    let v = within(Work::LwtIo, OCaml, VchanRs);
    t.push((
        "OCaml Lwt_io / vchan-rs (64 KiB)".into(),
        v,
        v >= 0.7,
        ">= 0.7",
    ));
    let v = cell(Work::PingPong, OCaml);
    t.push(("OCaml ping-pong 64 B (µs)".into(), v, v <= 3.0, "<= 3"));
    let v = within(Work::Cat, OCaml, VchanRs);
    t.push((
        "vchan-cat / vchan-rs (64 KiB)".into(),
        v,
        v >= 0.8,
        ">= 0.8",
    ));
    // Against ocaml-vchan, within each row: its In_memory, its vchan-unix
    // over xensim (two processes), its xencat: (target, row, higher is
    // better, goal).
    for (name, w, higher, goal, text) in [
        (
            "In_memory stream: vchan-rs / ocaml-vchan",
            Work::InMemStream,
            true,
            1.0,
            ">= 1",
        ),
        (
            "In_memory ping-pong: vchan-rs / ocaml-vchan",
            Work::InMemPing,
            false,
            0.6,
            "<= 0.6",
        ),
        (
            "64 KiB rings: vchan-rs OCaml / ocaml-vchan over xensim",
            stream(64 * KIB),
            true,
            2.0,
            ">= 2",
        ),
        (
            "ping-pong: vchan-rs OCaml / ocaml-vchan over xensim",
            Work::PingPong,
            false,
            0.2,
            "<= 0.2",
        ),
        (
            "vchan-cat / ocaml-vchan's xencat (tmpfs file)",
            Work::Cat,
            true,
            2.0,
            ">= 2",
        ),
    ] {
        let v = within(w, OCaml, OVchan);
        let ok = if higher { v >= goal } else { v <= goal };
        t.push((name.into(), v, ok, text));
    }
    let v = cell(Work::Idle, VchanRs);
    t.push(("idle vchan-rs (% of a core)".into(), v, v < 1.0, "< 1"));
    // strace counts whole calls; a stray one in a few hundred rounds (the
    // 200 ms death check of a writer) shows as 2.01.
    for c in [VchanRs, OCaml] {
        let v = cell(Work::Syscalls, c);
        t.push((
            format!("system calls per round trip, {}", c.title()),
            v,
            v <= 2.05,
            "<= 2 (+0.05)",
        ));
    }
    let mut out = String::from("| target | measured | goal | holds |\n|---|---|---|---|\n");
    for (name, v, ok, goal) in t {
        let holds = if !v.is_finite() {
            "not measured"
        } else if ok {
            "yes"
        } else {
            "no"
        };
        out.push_str(&format!("| {name} | {} | {goal} | {holds} |\n", fmt(v)));
    }
    out
}

/// The table of medians and within-row ratios, in Markdown
/// (docs/benchmarks.md carries the one of bench/results/bench.csv).
fn results_table(rows: &[RowOut]) -> String {
    let mut head: Vec<String> = vec!["workload".into()];
    head.extend(COLUMNS.iter().map(|c| c.title().to_owned()));
    head.push("vchan-rs / C".into());
    head.push("vchan-rs / socket".into());
    head.push("vchan-rs / limit".into());
    head.push("OCaml / vchan-rs".into());
    head.push("OCaml / ocaml-vchan".into());
    let mut out = format!("| {} |\n|{}\n", head.join(" | "), "---|".repeat(head.len()));
    for r in rows {
        let mut cells = vec![r.work.title()];
        cells.extend(r.median.iter().map(|&v| fmt(v)));
        let p = |a: Column, b: Column| fmt_ratio(paired(r, a, b));
        cells.push(p(Column::VchanRs, Column::C));
        cells.push(p(Column::VchanRs, Column::Socket));
        cells.push(p(Column::VchanRs, Column::Limit));
        cells.push(p(Column::OCaml, Column::VchanRs));
        cells.push(p(Column::OCaml, Column::OVchan));
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
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

/// The rows of a CSV that [`write_csv`] wrote, for the tables of
/// docs/benchmarks.md.
#[cfg(test)]
fn read_csv(text: &str) -> Vec<RowOut> {
    fn fields(line: &str) -> Vec<String> {
        let (mut out, mut cur, mut quoted, mut chars) =
            (Vec::new(), String::new(), false, line.chars().peekable());
        while let Some(c) = chars.next() {
            match c {
                '"' if quoted && chars.peek() == Some(&'"') => {
                    cur.push('"');
                    chars.next();
                }
                '"' => quoted = !quoted,
                ',' if !quoted => out.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        out.push(cur);
        out
    }
    let num = |s: &str| s.parse::<f64>().unwrap_or(f64::NAN);
    let mut rows: Vec<RowOut> = Vec::new();
    for line in text.lines().skip(1) {
        let f = fields(line);
        assert_eq!(f.len(), 7, "bench.csv: {line}");
        let work = works(1)
            .into_iter()
            .map(|(w, _)| w)
            .find(|w| w.title() == f[0])
            .unwrap_or_else(|| panic!("bench.csv: unknown workload {:?}", f[0]));
        let at = COLUMNS
            .iter()
            .position(|c| c.title() == f[2])
            .unwrap_or_else(|| panic!("bench.csv: unknown column {:?}", f[2]));
        if rows.last().is_none_or(|r| r.work != work) {
            let n = COLUMNS.len();
            rows.push(RowOut {
                work,
                median: vec![f64::NAN; n],
                runs: vec![Vec::new(); n],
                sleeps: vec![f64::NAN; n],
                notes: vec![String::new(); n],
            });
        }
        let r = rows.last_mut().unwrap();
        r.median[at] = num(&f[3]);
        r.runs[at] = f[4].split_whitespace().map(num).collect();
        r.sleeps[at] = num(&f[5]);
        r.notes[at] = f[6].clone();
    }
    rows
}

#[cfg(test)]
mod tests {
    /// docs/benchmarks.md's two tables are those of bench/results/bench.csv,
    /// the run whose chart it shows: after a `make bench`, copy them from
    /// its output (or from this test's message).
    #[test]
    fn docs_tables_are_the_results() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let csv = std::fs::read_to_string(dir.join("results/bench.csv")).unwrap();
        let rows = super::read_csv(&csv);
        let doc = std::fs::read_to_string(dir.join("../docs/benchmarks.md")).unwrap();
        for (what, table) in [
            ("results", super::results_table(&rows)),
            ("targets", super::targets_table(&rows)),
        ] {
            assert!(
                doc.contains(&format!("\n{table}\n")),
                "docs/benchmarks.md lacks the {what} table of bench/results/bench.csv, which is:\n{table}"
            );
        }
    }
}
