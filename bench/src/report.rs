//! The report: the tables, the targets, the CSV.

use crate::cli::Opts;
use crate::*;

pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `a / b` within one row: the median of the per-run quotients if any.
pub fn paired(r: &RowOut, a: Column, b: Column) -> f64 {
    let (ra, rb) = (&r.runs[a as usize], &r.runs[b as usize]);
    if ra.is_empty() || ra.len() != rb.len() {
        return r.median[a as usize] / r.median[b as usize];
    }
    median(&ra.iter().zip(rb).map(|(x, y)| x / y).collect::<Vec<_>>())
}

pub fn fmt(v: f64) -> String {
    match v {
        _ if !v.is_finite() => "n/a".into(),
        100.0.. => format!("{v:.0}"),
        10.0.. => format!("{v:.1}"),
        0.1.. => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    }
}

/// One finished row: per column the median (NaN if none), the runs, a note.
pub struct RowOut {
    pub title: &'static str,
    pub work: Work,
    pub median: Vec<f64>,
    pub runs: Vec<Vec<f64>>,
    pub notes: Vec<String>,
}

impl RowOut {
    pub fn empty(title: &'static str, work: Work) -> RowOut {
        let (median, runs, notes) = (vec![f64::NAN; 7], vec![vec![]; 7], vec![String::new(); 7]);
        RowOut {
            title,
            work,
            median,
            runs,
            notes,
        }
    }
}

/// The CSV of `rows`: a line per cell (its sleeps field empty).
pub fn csv(rows: &[RowOut]) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let v = |x: &f64| match x.is_finite() {
        true => x.to_string(),
        false => String::new(),
    };
    let mut out = String::from("workload,unit,column,median,runs,sleeps,note\n");
    for r in rows {
        for (i, c) in TITLES.iter().enumerate() {
            let runs = r.runs[i].iter().map(v).collect::<Vec<_>>().join(" ");
            let (w, u, m) = (q(r.title), q(r.work.unit()), v(&r.median[i]));
            out += &format!("{w},{u},{},{m},{},,{}\n", q(c), q(&runs), q(&r.notes[i]));
        }
    }
    out
}

/// The performance targets ([`TARGETS`]) read from `rows`, in Markdown.
pub fn targets_table(rows: &[RowOut]) -> String {
    let row = |w: Work| rows.iter().find(|r| r.work == w);
    let cell = |w: Work, c: Column| row(w).map_or(f64::NAN, |r| r.median[c as usize]);
    let mut out = String::from("| target | measured | goal | holds |\n|---|---|---|---|\n");
    for (name, of, goal) in TARGETS {
        let v = match of {
            Of::Within(w, a, b) => row(w).map_or(f64::NAN, |r| paired(r, a, b)),
            Of::Cell(w, c) => cell(w, c),
            Of::Across(w, a, x, b) => cell(w, a) / cell(x, b),
        };
        // "<= 2 (+0.05)": at most 2.05.
        let mut words = goal.split(' ');
        let op = words.next().unwrap_or_default();
        let g: f64 = words
            .flat_map(|w| w.trim_matches(['(', '+', ')']).parse::<f64>())
            .sum();
        let holds = match op {
            _ if !v.is_finite() => "not measured",
            ">=" if v >= g => "yes",
            "<=" if v <= g => "yes",
            "<" if v < g => "yes",
            _ => "no",
        };
        out += &format!("| {name} | {} | {goal} | {holds} |\n", fmt(v));
    }
    out
}

/// The ratio columns of the results table: (title, a, b) for `a / b`.
const RATIOS: [(&str, Column, Column); 5] = {
    use Column::*;
    [
        ("vchan-rs / C", VchanRs, C),
        ("vchan-rs / socket", VchanRs, Socket),
        ("vchan-rs / limit", VchanRs, Limit),
        ("OCaml / vchan-rs", OCaml, VchanRs),
        ("OCaml / ocaml-vchan", OCaml, OVchan),
    ]
};

/// The medians and within-row ratios, in Markdown.
pub fn results_table(rows: &[RowOut]) -> String {
    let head: Vec<&str> = ["workload"]
        .into_iter()
        .chain(TITLES)
        .chain(RATIOS.map(|r| r.0))
        .collect();
    let mut out = format!("| {} |\n|{}\n", head.join(" | "), "---|".repeat(head.len()));
    for r in rows {
        let ratio = |v: f64| match v {
            _ if v.is_finite() => format!("{v:.2}"),
            _ => "n/a".into(),
        };
        let ratios = RATIOS.iter().map(|&(_, a, b)| ratio(paired(r, a, b)));
        let cells: Vec<String> = r.median.iter().map(|&v| fmt(v)).chain(ratios).collect();
        out += &format!("| {} | {} |\n", r.title, cells.join(" | "));
    }
    out
}

/// The report on standard output: the machine, the tables and the notes.
pub fn print(o: &Opts, rows: &[RowOut]) {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let (cpuinfo, pinned) = (read("/proc/cpuinfo"), ["", " pinned to CPUs 0 and 1"]);
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.trim() == "model name"));
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let notes = rows
        .iter()
        .flat_map(|r| TITLES.iter().zip(&r.notes).map(move |(c, n)| (r, c, n)));
    let notes: String = notes
        .filter(|(_, _, n)| !n.is_empty() && *n != "n/a")
        .map(|(r, c, n)| format!("- {} / {c}: {n}\n", r.title))
        .collect();
    println!(
        "\n## vchan-bench: two processes per cell{}, medians of up to {} runs\n\n\
         - {nproc} CPUs: {}\n- kernel {}- load average {}\n\n{}\nTargets (this run):\n\n{}\n\
         Notes:\n{notes}",
        pinned[o.pin.is_some() as usize],
        o.runs,
        cpu.map_or("unknown", |(_, m)| m.trim()),
        read("/proc/sys/kernel/osrelease"),
        read("/proc/loadavg").trim(),
        results_table(rows),
        targets_table(rows),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/benchmarks.md's two tables are those of bench/results/bench.csv.
    #[test]
    fn docs_tables_are_the_results() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let csv = std::fs::read_to_string(dir.join("results/bench.csv")).unwrap();
        let mut rows: Vec<RowOut> = Vec::new();
        // "workload","unit","column",median,"runs",...: split at quotes.
        for f in csv
            .lines()
            .skip(1)
            .map(|l| l.split('"').collect::<Vec<_>>())
        {
            let num = |s: &str| s.trim_matches(',').parse::<f64>().unwrap_or(f64::NAN);
            let (title, work, ..) = *ROWS.iter().find(|r| r.0 == f[1]).expect("a known row");
            let at = TITLES
                .iter()
                .position(|&c| c == f[5])
                .expect("a known column");
            if rows.last().is_none_or(|r| r.work != work) {
                rows.push(RowOut::empty(title, work));
            }
            let r = rows.last_mut().unwrap();
            (r.median[at], r.runs[at]) = (num(f[6]), f[7].split_whitespace().map(num).collect());
        }
        let doc = std::fs::read_to_string(dir.join("../docs/benchmarks.md")).unwrap();
        for table in [results_table(&rows), targets_table(&rows)] {
            let msg = "docs/benchmarks.md lacks this table of bench/results/bench.csv";
            assert!(doc.contains(&format!("\n{table}\n")), "{msg}:\n{table}");
        }
    }
}
