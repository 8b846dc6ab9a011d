//! The report: tables, CSV, SVG.

use crate::*;

pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `a / b` within one row: the median of the per-run quotients when both
/// cells have the same runs (run k of every column ran back to back, so a
/// change in the machine between runs — this kind of host sometimes moves
/// the two virtual CPUs apart, and cross-core copies slow down 3-4x —
/// falls on both sides of each quotient), else the quotient of medians.
pub fn paired(r: &RowOut, a: Column, b: Column) -> f64 {
    let (ra, rb) = (&r.runs[a as usize], &r.runs[b as usize]);
    if ra.is_empty() || ra.len() != rb.len() {
        return r.median[a as usize] / r.median[b as usize];
    }
    let q: Vec<f64> = ra.iter().zip(rb).map(|(x, y)| x / y).collect();
    median(&q)
}

/// The machine the bench runs on, as the report's list.
fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo.lines().find_map(|l| l.strip_prefix("model name"));
    let cpu = model.map_or("unknown", |m| m.trim_start_matches([' ', '\t', ':']));
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    // The installed Xen's libxenvchan.so.<major>.<minor> (its soname).
    let dirs = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"];
    let files = dirs
        .into_iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten());
    let soname = |n: &str| n.starts_with("libxenvchan.so.") && n.matches('.').count() == 3;
    let lib = files
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(soname))
        .min();
    let lib = lib.map_or("libxenvchan (not found)".to_owned(), |p| {
        p.display().to_string()
    });
    let load = read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    let kernel = read("/proc/sys/kernel/osrelease");
    let kernel = kernel.trim();
    format!("- nproc: {nproc}\n- kernel: {kernel}\n- cpu: {cpu}\n- load average: {load}\n- C library: {lib} on xensim\n")
}

/// `v` as `f` writes it, or `none` if it is not a number.
fn or(v: f64, none: &str, f: impl Fn(f64) -> String) -> String {
    if v.is_finite() {
        f(v)
    } else {
        none.into()
    }
}

fn join<T>(items: impl IntoIterator<Item = T>, sep: &str, f: impl Fn(T) -> String) -> String {
    items.into_iter().map(f).collect::<Vec<_>>().join(sep)
}

pub fn fmt(v: f64) -> String {
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

/// One finished row: per column the median (NaN if none), the runs, the
/// sleeps, and a note (why it has no value, or how it was measured).
pub struct RowOut {
    pub work: Work,
    pub median: Vec<f64>,
    pub runs: Vec<Vec<f64>>,
    pub sleeps: Vec<f64>,
    pub notes: Vec<String>,
}

impl RowOut {
    pub fn empty(work: Work) -> RowOut {
        let (n, nan) = (COLUMNS.len(), f64::NAN);
        let (median, runs, sleeps, notes) = (
            vec![nan; n],
            vec![vec![]; n],
            vec![nan; n],
            vec![String::new(); n],
        );
        RowOut {
            work,
            median,
            runs,
            sleeps,
            notes,
        }
    }
}

/// The CSV of `rows`: a line per cell.
pub fn csv_text(rows: &[RowOut]) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let v = |x: f64| or(x, "", |x| format!("{x}"));
    let mut out = String::from("workload,unit,column,median,runs,sleeps,note\n");
    for r in rows {
        let (w, unit) = (q(&r.work.title()), q(r.work.unit()));
        for (i, c) in COLUMNS.iter().enumerate() {
            let (runs, note) = (q(&join(&r.runs[i], " ", |&x| v(x))), q(&r.notes[i]));
            let (c, median, sleeps) = (q(c.title()), v(r.median[i]), v(r.sleeps[i]));
            out += &format!("{w},{unit},{c},{median},{runs},{sleeps},{note}\n");
        }
    }
    out
}

/// A bar chart: one group per row, one bar per column, each bar's length
/// relative to the best cell of its row (for µs, the best is the
/// smallest), labelled with its value.
pub fn svg_text(rows: &[RowOut]) -> String {
    const COLORS: [&str; 7] = [
        "#d62728", "#ff7f0e", "#8c564b", "#1f77b4", "#2ca02c", "#9467bd", "#7f7f7f",
    ];
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let (left, bar_w, bar_h) = (330.0, 420.0, 11.0);
    let group_h = bar_h * COLUMNS.len() as f64 + 14.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"900\" height=\"{}\" font-family=\"sans-serif\" font-size=\"10\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"18\" font-size=\"13\">vchan-bench: each bar relative to the best of its row</text>\n",
        70.0 + group_h * rows.len() as f64
    );
    for (i, c) in COLUMNS.iter().enumerate() {
        let x = 10.0 + i as f64 * 125.0;
        let title = esc(c.title());
        svg += &format!("<rect x=\"{x}\" y=\"30\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"39\">{title}</text>\n", COLORS[i], x + 14.0);
    }
    for (g, r) in rows.iter().enumerate() {
        let y0 = 55.0 + g as f64 * group_h;
        svg += &format!(
            "<text x=\"10\" y=\"{}\">{}</text>\n",
            y0 + bar_h * 2.5,
            esc(&r.work.title())
        );
        let higher = r.work.higher_is_better();
        let vals = r.median.iter().copied().filter(|v| v.is_finite());
        let best = match higher {
            true => vals.fold(0.0, f64::max),
            false => vals.filter(|&v| v > 0.0).fold(f64::INFINITY, f64::min),
        };
        for (i, &v) in r.median.iter().enumerate().filter(|(_, v)| v.is_finite()) {
            let y = y0 + i as f64 * bar_h;
            let rel = match (higher, v > 0.0) {
                (true, _) => v / best,
                (false, true) => best / v,
                (false, false) => 1.0,
            };
            let w = (rel.clamp(0.0, 1.0) * bar_w).max(1.0);
            let (label, unit) = (fmt(v), esc(r.work.unit()));
            svg += &format!(
                "<rect x=\"{left}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{}\">{label} {unit}</text>\n",
                bar_h - 2.0, COLORS[i], left + w + 4.0, y + bar_h - 3.0
            );
        }
    }
    svg + "</svg>\n"
}

/// The performance targets ([`TARGETS`]), read from this run's medians,
/// as a Markdown table (docs/benchmarks.md carries the one of
/// bench/results/bench.csv).
pub fn targets_table(rows: &[RowOut]) -> String {
    let row = |w: Work| rows.iter().find(|r| r.work == w);
    let cell = |w: Work, c: Column| row(w).map_or(f64::NAN, |r| r.median[c as usize]);
    let mut out = String::from("| target | measured | goal | holds |\n|---|---|---|---|\n");
    for (name, of, goal, text) in TARGETS {
        let v = match of {
            Of::Within(w, a, b) => row(w).map_or(f64::NAN, |r| paired(r, a, b)),
            Of::Cell(w, c) => cell(w, c),
            Of::Across(w, a, v, b) => cell(w, a) / cell(v, b),
        };
        let holds = match goal {
            _ if !v.is_finite() => "not measured",
            Goal::AtLeast(g) if v >= g => "yes",
            Goal::AtMost(g) if v <= g => "yes",
            Goal::Below(g) if v < g => "yes",
            _ => "no",
        };
        out.push_str(&format!("| {name} | {} | {text} | {holds} |\n", fmt(v)));
    }
    out
}

/// The ratio columns of the results table: (title, a, b) for `a / b`.
const RATIOS: [(&str, Column, Column); 5] = [
    ("vchan-rs / C", Column::VchanRs, Column::C),
    ("vchan-rs / socket", Column::VchanRs, Column::Socket),
    ("vchan-rs / limit", Column::VchanRs, Column::Limit),
    ("OCaml / vchan-rs", Column::OCaml, Column::VchanRs),
    ("OCaml / ocaml-vchan", Column::OCaml, Column::OVchan),
];

/// The table of medians and within-row ratios, in Markdown
/// (docs/benchmarks.md carries the one of bench/results/bench.csv).
pub fn results_table(rows: &[RowOut]) -> String {
    let head = ["workload"]
        .into_iter()
        .chain(COLUMNS.map(Column::title))
        .chain(RATIOS.map(|r| r.0));
    let head: Vec<&str> = head.collect();
    let mut out = format!("| {} |\n|{}\n", head.join(" | "), "---|".repeat(head.len()));
    for r in rows {
        let ratios = RATIOS
            .iter()
            .map(|&(_, a, b)| or(paired(r, a, b), "n/a", |v| format!("{v:.2}")));
        let cells: Vec<String> = r.median.iter().map(|&v| fmt(v)).chain(ratios).collect();
        out += &format!("| {} | {} |\n", r.work.title(), cells.join(" | "));
    }
    out
}

/// The report on standard output: the machine, the tables, the sleeps,
/// the notes and how the cells were measured.
pub fn print_report(o: &Opts, rows: &[RowOut]) {
    let titles = COLUMNS.map(Column::title).join(" | ");
    let slept = rows
        .iter()
        .filter(|r| r.sleeps.iter().any(|v| v.is_finite()));
    let sleeps = join(slept, "", |r| {
        let cells = join(&r.sleeps, " | ", |&v| or(v, "n/a", |v| format!("{v:.0}")));
        format!("| {} | {cells} |\n", r.work.title())
    });
    let notes = rows
        .iter()
        .flat_map(|r| COLUMNS.iter().zip(&r.notes).map(move |(c, n)| (r, c, n)));
    let notes = join(notes.filter(|(_, _, n)| !n.is_empty()), "", |(r, c, n)| {
        format!("- {} / {}: {n}\n", r.work.title(), c.title())
    });
    let machine = machine();
    let pinned = match o.pin {
        true => {
            "The two processes of each cell are pinned to CPUs 0 and 1, one each (--no-pin: not)."
        }
        false => "The processes are not pinned (--no-pin).",
    };
    print!(
        "
## vchan-bench: two processes per cell, medians of up to {runs} runs
{machine}
{results}
Targets (this run):

{targets}
How often the measuring side (stream reader, pinger) slept per run (voluntary context switches, median):

| workload | {titles} |
|{dashes}
{sleeps}
Notes:
{notes}
Ratios are medians of per-run quotients (run k of every column of a row runs back to back), else quotients of medians: for GiB/s above 1 means the first column is faster; for µs below 1 does.
Writers use {kib} KiB writes and readers {kib} KiB buffers unless the row says otherwise; socket buffers (SO_SNDBUF/SO_RCVBUF) and pipe capacity (F_SETPIPE_SZ) are set to the ring size; ping-pong uses {ping} rings, {rounds} rounds per run.
The limit: spinning single-producer/single-consumer rings in shared memory, no notifications; the best of publishing every ring/{LIMIT_DIVISORS:?}.
Idle: CPU time of an endpoint blocked in a read while its peer stays silent {idle:.1} s. System calls: strace -c of the echoing side of a ping-pong in which both sides sleep {SYS_DELAY_US} µs before each message, runs of {sys:?} rounds differenced; the deliberate sleep not counted.
{pinned}
Readers check one byte per 4 KiB of a deterministic pattern; ping-pong checks every echo.
",
        runs = o.runs,
        results = results_table(rows),
        targets = targets_table(rows),
        dashes = "---|".repeat(COLUMNS.len() + 1),
        kib = CHUNK / KIB,
        ping = size_name(PING_RING),
        rounds = o.rounds,
        idle = o.idle_ms as f64 / 1000.0,
        sys = o.sys_rounds,
    );
}

/// The rows of a CSV that [`write_csv`] wrote, for the tables of
/// docs/benchmarks.md.
#[cfg(test)]
pub fn read_csv(text: &str) -> Vec<RowOut> {
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
        let work = ROWS
            .iter()
            .map(|&(w, _)| w)
            .find(|w| w.title() == f[0])
            .unwrap_or_else(|| panic!("bench.csv: unknown workload {:?}", f[0]));
        let at = COLUMNS
            .iter()
            .position(|c| c.title() == f[2])
            .unwrap_or_else(|| panic!("bench.csv: unknown column {:?}", f[2]));
        if rows.last().is_none_or(|r| r.work != work) {
            rows.push(RowOut::empty(work));
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
    /// the run whose chart it shows: after a `make bench-results`, copy
    /// them from its output (or from this test's message).
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

    /// The CSV the bench writes reads back as the same rows: written again
    /// from them, bench/results/bench.csv and its chart come out byte for
    /// byte.
    #[test]
    fn results_round_trip() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
        let csv = std::fs::read_to_string(dir.join("bench.csv")).unwrap();
        let rows = super::read_csv(&csv);
        assert_eq!(super::csv_text(&rows), csv);
        let svg = std::fs::read_to_string(dir.join("bench.svg")).unwrap();
        assert_eq!(super::svg_text(&rows), svg);
    }
}
