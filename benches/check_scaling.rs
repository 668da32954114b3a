//! How `crm check` grows with its input (issue #9): time and peak memory for 1k/10k/100k findings,
//! 10k/100k automatic transitions leaving one stage, and a 20 MB array, each beside a baseline in
//! the same run. Target: 10× the input costs at most about 12× the time.
//!
//! - findings: the human format (rustc-style headers, miette snippets on excerpts) beside the
//!   concise format (one line a finding) over the same reports; both on a file of many lines and on
//!   one long line (duplicate keys);
//! - automatic transitions (CRM0203): exclusive `data.kind == '…'` conditions (indexed),
//!   overlapping `data.score > n` conditions, and range conditions the index cannot separate (the
//!   capped case, which adds a note), beside the same number of manual transitions;
//! - a 20 MB array of 2.3 M numbers: `check_source` beside `serde_json` parsing the same text.
//!
//! Peak memory is the process's peak resident set (`VmHWM`), reset before each measurement through
//! `/proc/self/clear_refs` (Linux); elsewhere it prints `n/a`.

#[path = "support/mod.rs"]
mod support;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use nexus_crm::check::check_source;
use nexus_crm::report::{self, Report};

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects sections by name.
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wants = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    if wants("findings") {
        findings();
    }
    if wants("transitions") {
        transitions();
    }
    if wants("large-file") {
        large_file();
    }
}

/// One measurement: median wall time of `runs` calls and the peak RSS growth during them.
struct Measured {
    time: Duration,
    peak_mb: Option<f64>,
}

fn measure<R>(runs: usize, mut f: impl FnMut() -> R) -> Measured {
    let before = reset_peak();
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        std::hint::black_box(f());
        times.push(start.elapsed());
    }
    times.sort();
    let peak_mb = before.and_then(|before| peak_kb().map(|peak| peak.saturating_sub(before) as f64 / 1024.0));
    Measured { time: times[times.len() / 2], peak_mb }
}

/// Resets the peak RSS to the current RSS; returns the current RSS in KB.
fn reset_peak() -> Option<u64> {
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    status_kb("VmRSS:")
}

fn peak_kb() -> Option<u64> {
    status_kb("VmHWM:")
}

fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn mb(peak: Option<f64>) -> String {
    peak.map_or_else(|| "n/a".to_owned(), |mb| format!("{mb:.1} MB"))
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

fn print_row(label: &str, size: usize, ours: &Measured, base: &Measured, previous: Option<Duration>) {
    let growth =
        previous.map_or_else(String::new, |p| format!("   growth ×{:.1} for ×10 input", ratio(ours.time, p)));
    println!(
        "{label:<34} {size:>7}: ours {:>10} (+{:>9})   baseline {:>10} (+{:>9})   ratio {:>6.1}×{growth}",
        support::human(ours.time),
        mb(ours.peak_mb),
        support::human(base.time),
        mb(base.peak_mb),
        ratio(ours.time, base.time),
    );
}

fn runs_for(size: usize) -> usize {
    if size >= 100_000 { 1 } else { 3 }
}

// ---- findings ----------------------------------------------------------------------------------

/// `count` transitions, each to an undeclared stage: one CRM0101 finding per line.
fn many_lines(count: usize) -> String {
    let mut out = String::from(
        "{\n  \"id\": \"findings\",\n  \"entities\": {\"lead\": {\"stages\": [\"new\"]}},\n  \"transitions\": {\n",
    );
    for i in 0..count {
        let _ = writeln!(
            out,
            "    \"t{i}\": {{\"from\": \"new\", \"to\": \"missing{i}\"}}{}",
            if i + 1 < count { "," } else { "" }
        );
    }
    out.push_str("  }\n}\n");
    out
}

/// `count` + 1 copies of one key on a single line: `count` CRM0002 findings on one line.
fn one_line(count: usize) -> String {
    let keys: String = (0..=count).map(|_| r#""id": "a", "#).collect();
    format!(r#"{{{keys}"entities": {{"lead": {{"stages": ["new"]}}}}}}"#)
}

fn findings() {
    println!("\n== rendering findings: human (ours) vs concise (baseline), same reports ==");
    for (name, make) in [("many lines", many_lines as fn(usize) -> String), ("one line", one_line)] {
        let mut previous = None;
        for count in [1_000, 10_000, 100_000] {
            let source = make(count);
            let reports = vec![Report::new("bench.json", source.as_str(), check_source(&source).diagnostics)];
            let findings = reports[0].diagnostics.len();
            let runs = runs_for(count);
            let human = measure(runs, || {
                let mut out = String::new();
                let _ = report::human(&reports, miette::GraphicalTheme::unicode_nocolor(), &mut out);
                out.len()
            });
            let concise = measure(runs, || {
                let mut out = String::new();
                let _ = report::concise(&reports, &mut out);
                out.len()
            });
            print_row(&format!("{name} ({findings} findings)"), count, &human, &concise, previous);
            previous = Some(human.time);
        }
    }
    let mut previous = None;
    for count in [1_000, 10_000, 100_000] {
        let source = many_lines(count);
        let runs = runs_for(count);
        let ours = measure(runs, || check_source(&source).diagnostics.len());
        let parse = measure(runs, || serde_json::from_str::<serde_json::Value>(&source).is_ok());
        print_row("check_source, unknown stages", count, &ours, &parse, previous);
        previous = Some(ours.time);
    }
}

// ---- automatic transitions ---------------------------------------------------------------------

/// `count` transitions leaving `new`, each to its own stage, with `condition(i)` and `trigger`.
fn fan_out(count: usize, trigger: &str, condition: impl Fn(usize) -> String) -> String {
    let mut out = String::from(
        r#"{"id": "fan", "dataSchema": {"score": {"type": "number"}, "kind": {"type": "string"}}, "entities": {"lead": {"stages": ["new""#,
    );
    for i in 0..count {
        let _ = write!(out, r#", "s{i}""#);
    }
    out.push_str(r#"], "terminal": ["#);
    for i in 0..count {
        let _ = write!(out, r#"{}"s{i}""#, if i == 0 { "" } else { ", " });
    }
    out.push_str(r#"]}}, "transitions": {"#);
    for i in 0..count {
        let _ = write!(
            out,
            r#"{}"t{i}": {{"from": "new", "to": "s{i}", "trigger": "{trigger}", "condition": "{}"}}"#,
            if i == 0 { "" } else { ", " },
            condition(i)
        );
    }
    out.push_str("}}");
    out
}

fn transitions() {
    println!("\n== CRM0203 over automatic transitions leaving one stage vs the same manual transitions ==");
    type Condition = fn(usize) -> String;
    let cases: [(&str, Condition); 3] = [
        ("exclusive data.kind == 'k<i>'", |i| format!("data.kind == 'k{i}'")),
        ("overlapping data.score > <i>", |i| format!("data.score > {i}")),
        ("ranges (not indexed, capped)", |i| format!("data.score >= {i} AND data.score < {}", i + 1)),
    ];
    for (name, condition) in cases {
        let mut previous = None;
        for count in [10_000, 100_000] {
            let auto = fan_out(count, "auto", condition);
            let manual = fan_out(count, "manual", condition);
            let runs = runs_for(count);
            let findings = check_source(&auto).diagnostics.len();
            let ours = measure(runs, || check_source(&auto).diagnostics.len());
            let base = measure(runs, || check_source(&manual).diagnostics.len());
            print_row(&format!("{name} [{findings} findings]"), count, &ours, &base, previous);
            previous = Some(ours.time);
        }
    }
}

// ---- a large file ------------------------------------------------------------------------------

fn large_file() {
    println!("\n== a 20 MB array of numbers: check_source (ours) vs serde_json::Value (baseline) ==");
    let mut previous = None;
    for count in [230_000, 2_300_000] {
        let numbers: Vec<String> = (0..count).map(|i| format!("{}.{}", i * 7, i % 97)).collect();
        let source = format!(r#"{{"id": "big", "numbers": [{}]}}"#, numbers.join(", "));
        let ours = measure(1, || check_source(&source).diagnostics.len());
        let base = measure(1, || serde_json::from_str::<serde_json::Value>(&source).is_ok());
        print_row(&format!("{} MB of numbers", source.len() / 1_000_000), count, &ours, &base, previous);
        previous = Some(ours.time);
    }
}
