//! The command line.

use crate::*;

pub struct Opts {
    pub runs: usize,
    pub secs: f64,
    pub rounds: u64,
    pub idle_ms: u64,
    /// Rounds of the two traced runs of the system-call row.
    pub sys_rounds: [u64; 2],
    /// Bytes per stream run instead of calibrating (--smoke).
    pub fixed_total: Option<u64>,
    /// Run only the cells whose "workload / column" contains this.
    pub only: Option<String>,
    /// The CPUs of a cell's two processes.
    pub pin: Option<[usize; 2]>,
    pub out: PathBuf,
}

const USAGE: &str = "usage: vchan-bench [--runs N] [--secs S] [--rounds N] [--idle-secs S] \
                     [--only TEXT] [--no-pin] [--out DIR] [--smoke]";

/// The options in `args` (without the program's name).
pub fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        runs: 5,
        secs: 1.0,
        rounds: 20_000,
        idle_ms: 10_000,
        sys_rounds: [200, 4000],
        fixed_total: None,
        only: None,
        pin: std::thread::available_parallelism()
            .is_ok_and(|n| n.get() >= 2)
            .then_some([0, 1]),
        out: peers::project("target/bench"),
    };
    let mut args = args.iter();
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        let mut num = || -> Result<f64, String> {
            let v = val()?;
            v.parse().map_err(|_| format!("bad {a} {v:?}"))
        };
        match a.as_str() {
            "--runs" => o.runs = num()? as usize,
            "--secs" => o.secs = num()?,
            "--rounds" => o.rounds = num()? as u64,
            "--idle-secs" => o.idle_ms = (num()? * 1000.0) as u64,
            "--only" => o.only = Some(val()?.clone()),
            "--no-pin" => o.pin = None,
            "--out" => o.out = PathBuf::from(val()?),
            "--smoke" => {
                (o.runs, o.rounds, o.idle_ms, o.sys_rounds) = (1, 200, 300, [20, 40]);
                o.fixed_total = Some(4 * MIB);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if o.runs == 0 || o.rounds == 0 || o.idle_ms == 0 || !(o.secs > 0.0 && o.secs.is_finite()) {
        return Err("--runs, --rounds, --idle-secs and --secs must be positive".into());
    }
    Ok(o)
}
