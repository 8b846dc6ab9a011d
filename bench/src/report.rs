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
    let (ra, rb) = (&r.runs[a.at()], &r.runs[b.at()]);
    if ra.is_empty() || ra.len() != rb.len() {
        return r.median[a.at()] / r.median[b.at()];
    }
    let q: Vec<f64> = ra.iter().zip(rb).map(|(x, y)| x / y).collect();
    median(&q)
}

pub fn machine() -> Vec<String> {
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

pub fn fmt_ratio(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "n/a".into()
    }
}

pub fn write_csv(path: &Path, rows: &[RowOut]) -> std::io::Result<()> {
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
pub fn write_svg(path: &Path, rows: &[RowOut], title: &str) -> std::io::Result<()> {
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
pub fn targets_table(rows: &[RowOut]) -> String {
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
pub fn results_table(rows: &[RowOut]) -> String {
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
