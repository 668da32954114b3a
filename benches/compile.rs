//! Compiling definitions: a generated 200-stage, 1,000-transition definition, and `crm check` over
//! the shipped `definitions/` as a whole process. Baselines in the same run: `serde_json` merely
//! parsing the same text, and the `crm` process doing nothing (`crm --version`).
//!
//! Targets (issue #2): the large definition compiles in ≤ 10 ms; `crm check definitions/` ≤ 50 ms.

#[path = "support/mod.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, criterion_group};
use nexus_crm::check::check_source;

fn bench(c: &mut Criterion) {
    let source = support::generated_definition(200, 1_000);
    let mut group = c.benchmark_group("compile-200-stages-1000-transitions");
    group.sample_size(30);
    group.bench_function("nexus-crm check_source", |b| b.iter(|| check_source(&source)));
    group.bench_function("serde_json::from_str (parse only)", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(&source))
    });
    group.finish();
}

fn run_crm(args: &[&str]) -> bool {
    Command::new(env!("CARGO_BIN_EXE_crm"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn summary() {
    let source = support::generated_definition(200, 1_000);
    let checked = check_source(&source);
    assert!(checked.definition.is_some(), "the generated definition must compile: {:?}", checked.diagnostics);
    let ours = support::time_per_call(Duration::from_secs(2), || check_source(&source));
    let parse =
        support::time_per_call(Duration::from_secs(1), || serde_json::from_str::<serde_json::Value>(&source));
    println!(
        "\n== compiling a generated definition: 200 stages, 1,000 transitions ({} KB) ==",
        source.len() / 1024
    );
    println!("nexus-crm check_source       : {:>10}   (target ≤ 10 ms)", support::human(ours));
    println!("serde_json parse only        : {:>10}", support::human(parse));
    println!("ratio                        : {:>9.1}×", ours.as_secs_f64() / parse.as_secs_f64());

    assert!(run_crm(&["check", "definitions/"]), "`crm check definitions/` must pass");
    let check = support::time_per_call(Duration::from_secs(3), || run_crm(&["check", "definitions/"]));
    let idle = support::time_per_call(Duration::from_secs(2), || run_crm(&["--version"]));
    println!("\n== `crm check definitions/`, whole process ==");
    println!("crm check definitions/       : {:>10}   (target ≤ 50 ms)", support::human(check));
    println!("crm --version (process floor): {:>10}", support::human(idle));
    println!("ratio                        : {:>9.1}×", check.as_secs_f64() / idle.as_secs_f64());
}

criterion_group!(benches, bench);

fn main() {
    benches();
    summary();
    criterion::Criterion::default().configure_from_args().final_summary();
}
