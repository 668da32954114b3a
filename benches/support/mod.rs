//! Shared by the benchmarks and by a test that keeps the generated inputs valid.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// A valid definition with `stages` stages and `transitions` manual transitions, each with a
/// condition and an action, as a large pipeline an author might write.
pub fn generated_definition(stages: usize, transitions: usize) -> String {
    let mut out = String::with_capacity(transitions * 200);
    out.push_str(r#"{"id": "generated", "dataSchema": {"score": {"type": "number", "min": 0, "max": 1000}, "source": {"type": "string", "enum": ["web", "event", "referral"]}, "owner": {"type": "string"}},"#);
    out.push_str(r#""entities": {"lead": {"stages": ["#);
    for s in 0..stages {
        let _ = write!(out, "{}\"s{s}\"", if s == 0 { "" } else { ", " });
    }
    out.push_str(r#"], "terminal": ["#);
    let _ = write!(out, "\"s{}\"", stages - 1);
    out.push_str(r#"]}}, "transitions": {"#);
    for t in 0..transitions {
        let from = t % (stages - 1);
        let to = from + 1 + (t / (stages - 1)) % 2;
        let to = to.min(stages - 1);
        let _ = write!(
            out,
            r#"{}"t{t}": {{"from": "s{from}", "to": "s{to}", "trigger": "manual", "condition": "data.score > {} AND data.source == 'web' OR has_role('manager')", "actions": ["a{}"]}}"#,
            if t == 0 { "" } else { ", " },
            t % 1000,
            t % 20
        );
    }
    out.push_str(r#"}, "actions": {"#);
    for a in 0..20 {
        let _ = write!(
            out,
            r#"{}"a{a}": {{"type": "notify", "to": ["role:sales"], "message": "step {a}"}}"#,
            if a == 0 { "" } else { ", " }
        );
    }
    out.push_str("}}");
    out
}

/// Median time per call of `f`, measured over batches for about `budget`.
pub fn time_per_call<R>(budget: Duration, mut f: impl FnMut() -> R) -> Duration {
    // Calibrate a batch size that takes about 1 ms, then take the median of batches.
    let mut batch = 1u32;
    loop {
        let start = Instant::now();
        for _ in 0..batch {
            std::hint::black_box(f());
        }
        if start.elapsed() >= Duration::from_millis(1) || batch >= 1 << 24 {
            break;
        }
        batch *= 2;
    }
    let mut samples = Vec::new();
    let begin = Instant::now();
    while begin.elapsed() < budget || samples.len() < 5 {
        let start = Instant::now();
        for _ in 0..batch {
            std::hint::black_box(f());
        }
        samples.push(start.elapsed() / batch);
    }
    samples.sort();
    samples[samples.len() / 2]
}

/// Formats a duration with a unit that suits it.
pub fn human(d: Duration) -> String {
    let ns = d.as_nanos();
    match ns {
        0..=9_999 => format!("{ns} ns"),
        10_000..=9_999_999 => format!("{:.1} µs", ns as f64 / 1e3),
        _ => format!("{:.2} ms", ns as f64 / 1e6),
    }
}
