//! The fixture harness (rust-analyzer's `test_data/{ok,err}` with insta snapshots).
//!
//! - `tests/fixtures/err/CRMxxxx_what.json`: an invalid definition. The checker must report at
//!   least one finding, among them the code the file is named after; the human rendering (miette,
//!   no colour) and the `--format json` output are snapshotted in `snapshots/fixtures/`.
//! - `tests/fixtures/ok/*.json` and `definitions/*.json`: valid definitions. The checker must
//!   report nothing at all, not even a warning. The shipped definitions' IR dumps are snapshotted
//!   in `snapshots/ir/`.
//! - `tests/fixtures/seed/*.json`: the seed's examples verbatim; their findings are snapshotted in
//!   `snapshots/seed/`.
//!
//! Together the `err` fixtures must exercise every code of the registry.
//!
//! Every test walks its directory in sorted order and depends on no other test, so the runner may
//! run them in any order or in parallel. To add a fixture, drop a file into the right directory
//! and run `cargo insta test --test fixtures --review`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use nexus_crm::check::{Checked, check_source};
use nexus_crm::codes::Code;
use nexus_crm::report::{self, Report};

#[test]
fn err_fixtures_report_the_code_in_their_name() {
    let failures: Vec<String> =
        fixture_files("tests/fixtures/err").iter().filter_map(|path| err_failure(path)).collect();
    assert!(failures.is_empty(), "{} err fixture(s) failed:\n\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn err_fixture_findings_match_snapshots() {
    for path in fixture_files("tests/fixtures/err") {
        snapshot_findings("../snapshots/fixtures", &path);
    }
}

#[test]
fn err_fixtures_exercise_every_code() {
    let found: BTreeSet<Code> = fixture_files("tests/fixtures/err")
        .iter()
        .flat_map(|path| check_file(path).1.diagnostics.into_iter().map(|d| d.code))
        .collect();
    // CRM08xx compare a new version with live instances (`crm check --against`): one file cannot
    // produce them; tests/lifecycle_compat.rs and tests/cli_lifecycle.rs exercise each.
    let missing: Vec<&str> = Code::ALL
        .iter()
        .filter(|code| !found.contains(code) && !code.as_str().starts_with("CRM08"))
        .map(|code| code.as_str())
        .collect();
    assert!(missing.is_empty(), "no err fixture produces these codes: {}", missing.join(", "));
}

#[test]
fn ok_fixtures_have_no_findings() {
    assert_all_clean("tests/fixtures/ok");
}

#[test]
fn shipped_definitions_have_no_findings() {
    assert_all_clean("definitions");
}

#[test]
fn shipped_definitions_ir_matches_snapshots() {
    for path in fixture_files("definitions") {
        snapshot_ir(&path);
    }
}

#[test]
fn seed_examples_findings_match_snapshots() {
    let seeds = fixture_files("tests/fixtures/seed");
    assert_eq!(seeds.len(), 2, "the seed has exactly two verbatim examples: {seeds:?}");
    for path in seeds {
        snapshot_findings("../snapshots/seed", &path);
    }
}

// ---- one helper per kind of check -------------------------------------------------------------

/// Why an `err` fixture fails its contract (no findings, or not the code in its name), if it does.
fn err_failure(path: &Path) -> Option<String> {
    let (source, checked) = check_file(path);
    let name = file_stem(path);
    let Some(expected) = name.get(..7).and_then(Code::parse) else {
        return Some(format!("{}: the file name must start with a code, e.g. CRM0101_…", relative(path)));
    };
    if checked.diagnostics.iter().any(|d| d.code == expected) {
        return None;
    }
    let found =
        if checked.diagnostics.is_empty() { "nothing".to_owned() } else { concise(path, &source, &checked) };
    Some(format!("{}: expected {expected} among the findings, found {found}", relative(path)))
}

/// Every file of `dir` checks without a single finding; prints the findings of those that don't.
fn assert_all_clean(dir: &str) {
    let files = fixture_files(dir);
    assert!(!files.is_empty(), "{dir} has no fixtures");
    let dirty: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let (source, checked) = check_file(path);
            let problem = match (&checked.definition, checked.diagnostics.is_empty()) {
                (Some(_), true) => return None,
                (None, true) => "no findings, but no definition either\n".to_owned(),
                (_, false) => concise(path, &source, &checked),
            };
            Some(format!("{}:\n{problem}", relative(path)))
        })
        .collect();
    assert!(dirty.is_empty(), "{} file(s) in {dir} are not clean:\n\n{}", dirty.len(), dirty.join("\n"));
}

/// Snapshots the findings of `path` twice: as a person reads them and as the JSON contract.
fn snapshot_findings(snapshot_dir: &str, path: &Path) {
    let (source, checked) = check_file(path);
    let reports = [Report::new(relative(path), source, checked.diagnostics)];
    let name = file_stem(path);
    if let Some(human) = human(&reports) {
        snapshot(snapshot_dir, &format!("{name}@human"), path, human);
    }
    let mut json = String::new();
    report::json(&reports, &mut json).expect("writing to a String cannot fail");
    snapshot(snapshot_dir, &format!("{name}@json"), path, json);
}

/// Snapshots the IR dump of a definition that must compile.
fn snapshot_ir(path: &Path) {
    let (source, checked) = check_file(path);
    let Some(definition) = &checked.definition else {
        panic!("{} does not compile:\n{}", relative(path), concise(path, &source, &checked));
    };
    snapshot("../snapshots/ir", &file_stem(path), path, nexus_crm::dump::to_text(definition));
}

// ---- plumbing ---------------------------------------------------------------------------------

/// The `*.json` files of `dir` (relative to the crate root), sorted by name.
fn fixture_files(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let entries = std::fs::read_dir(&root).unwrap_or_else(|e| panic!("cannot read {}: {e}", root.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display())).path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

fn check_file(path: &Path) -> (String, Checked) {
    let source =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let checked = check_source(&source);
    (source, checked)
}

/// The path as shown in reports and snapshots: relative to the crate root, with `/`.
fn relative(path: &Path) -> String {
    let relative = path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(path);
    relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

fn file_stem(path: &Path) -> String {
    path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default()
}

/// One line per finding, for assertion messages.
fn concise(path: &Path, source: &str, checked: &Checked) -> String {
    let reports = [Report::new(relative(path), source, checked.diagnostics.clone())];
    let mut out = String::new();
    report::concise(&reports, &mut out).expect("writing to a String cannot fail");
    out
}

/// The human rendering without colour, as `crm check` prints it when not writing to a terminal.
#[cfg(feature = "cli")]
fn human(reports: &[Report]) -> Option<String> {
    let mut out = String::new();
    report::human(reports, miette::GraphicalTheme::unicode_nocolor(), &mut out)
        .expect("writing to a String cannot fail");
    Some(out)
}

/// Without the `cli` feature miette cannot render graphically, so there is nothing to compare.
#[cfg(not(feature = "cli"))]
fn human(_reports: &[Report]) -> Option<String> {
    None
}

fn snapshot(snapshot_dir: &str, name: &str, input: &Path, contents: String) {
    insta::with_settings!({
        snapshot_path => snapshot_dir,
        prepend_module_to_snapshot => false,
        input_file => input,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name.to_owned(), contents);
    });
}
