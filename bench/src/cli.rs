//! The command line.

use crate::*;

pub struct Opts {
    pub runs: usize,
    pub secs: f64,
    pub rounds: u64,
    /// How long the idle row's peer stays silent (ms).
    pub idle_ms: u64,
    /// Rounds of the two system-call runs (their difference is counted).
    pub sys_rounds: [u64; 2],
    /// A fixed amount per stream run instead of calibrating (smoke runs).
    pub fixed_total: Option<u64>,
    /// Run only the cells whose "workload / column" contains this.
    pub only: Option<String>,
    /// Pin the two processes of each cell to CPUs 0 and 1 (the default
    /// with two CPUs or more).
    pub pin: bool,
    /// Where the CSV and the SVG go.
    pub out: PathBuf,
}

const USAGE: &str = "usage: vchan-bench [--runs N] [--secs S] [--rounds N] [--idle-secs S] [--only TEXT] [--no-pin] [--out DIR] [--smoke]";

/// The options in `args` (the program's arguments, without its name).
pub fn parse_opts(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        runs: 5,
        secs: 1.0,
        rounds: 20_000,
        idle_ms: 10_000,
        sys_rounds: [200, 4000],
        fixed_total: None,
        only: None,
        pin: std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2),
        // The project's target/ (this crate is bench/ in it).
        out: Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or(Path::new(".."))
            .join("target/bench"),
    };
    let mut args = args.iter();
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        fn num<T: std::str::FromStr>(a: &str, v: &str) -> Result<T, String> {
            v.parse().map_err(|_| format!("bad {a} {v:?}"))
        }
        match a.as_str() {
            "--runs" => o.runs = num(a, val()?)?,
            "--secs" => o.secs = num(a, val()?)?,
            "--rounds" => o.rounds = num(a, val()?)?,
            "--idle-secs" => o.idle_ms = (num::<f64>(a, val()?)? * 1000.0) as u64,
            "--only" => o.only = Some(val()?.clone()),
            "--no-pin" => o.pin = false,
            "--out" => o.out = PathBuf::from(val()?),
            "--smoke" => {
                (o.runs, o.rounds, o.idle_ms) = (1, 200, 300);
                o.sys_rounds = [20, 40];
                o.fixed_total = Some(4 * MIB);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if o.runs == 0 || o.rounds == 0 || o.idle_ms == 0 || !o.secs.is_finite() || o.secs <= 0.0 {
        return Err("--runs, --rounds, --idle-secs and --secs must be positive".into());
    }
    Ok(o)
}
