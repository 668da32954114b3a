//! `crm check` and friends on input written by machines and fuzzers (issue #9): nothing panics,
//! every output format reports every finding, long lines are shown as a window, and the limits
//! (file size, the scenario clock) are clear errors. Timings live in `benches/check_scaling.rs`.

use std::path::PathBuf;
use std::process::Command;

use nexus_crm::check::check_source;
use nexus_crm::report::{self, JsonOutput, Report};
use proptest::prelude::*;

// ---- item 1 and 2: long lines and many findings ------------------------------------------------

/// A one-line definition over 64 KB whose one finding (an unknown key) starts past column 65,535.
fn minified_with_a_finding_far_right() -> String {
    format!(
        r#"{{"id": "wide", "label": "{}", "entities": {{"lead": {{"stages": ["new", "done"]}}}}, "transitions": {{"finish": {{"from": "new", "to": "done"}}}}, "bogus": 1}}"#,
        "x".repeat(65_536)
    )
}

#[test]
fn a_finding_past_column_65535_renders_in_every_format() {
    let source = minified_with_a_finding_far_right();
    let reports = reports("wide.json", &source);
    assert_eq!(codes(&reports), ["CRM0005"], "the unknown key is the one finding");
    let all = render_all(&reports);
    assert_same_findings(&reports, &all);
    assert_lines_bounded(&all.human);
    snapshot("robustness_wide_line_human", all.human);
}

#[test]
fn the_binary_survives_a_minified_definition_over_64_kb() {
    let dir = temp_dir("wide");
    let file = dir.join("wide.json");
    write(&file, &minified_with_a_finding_far_right());
    let file = file.display().to_string();
    for args in [
        vec!["check", file.as_str()],
        vec!["inspect", file.as_str()],
        vec!["graph", file.as_str()],
        vec!["eval", "1 > 0", "--definition", file.as_str()],
    ] {
        let run = crm(&args);
        assert_eq!(run.code, Some(1), "crm {args:?}: {}", run.golden());
        assert!(
            run.stdout.contains("error[CRM0005]") || run.stderr.contains("error[CRM0005]"),
            "{}",
            run.golden()
        );
    }
}

#[test]
fn many_findings_on_one_line_show_a_window_each() {
    // 10,000 duplicate keys on one 180 KB line: each finding shows a window, not the line.
    let keys: String = (0..10_000).map(|_| r#""id": "a", "#).collect();
    let source = format!(r#"{{{keys}"entities": {{"lead": {{"stages": ["new"]}}}}}}"#);
    let reports = reports("dups.json", &source);
    assert_eq!(reports[0].diagnostics.len(), 9_999);
    let all = render_all(&reports);
    assert_same_findings(&reports, &all);
    assert_lines_bounded(&all.human);
    assert!(all.human.len() < 9_999 * 1_500, "about a screenful a finding: {} bytes", all.human.len());
}

#[test]
fn a_finding_deep_in_a_long_line_is_windowed_with_ellipses() {
    let source = format!(
        r#"{{"id": "w", "label": "{}", "bogus": 1, "tail": "{}"}}"#,
        "é".repeat(300),
        "z".repeat(300)
    );
    let all = render_all(&reports("w.json", &source));
    let excerpt = all.human.lines().find(|line| line.contains("\"bogus\"")).unwrap_or_default();
    assert!(excerpt.contains("...") && excerpt.matches("...").count() == 2, "{}", all.human);
    assert!(all.human.contains("[w.json:1:"), "{}", all.human);
    // The column printed is the file's, in characters: after `{"id": "w", "label": "` + 300 × é + `", `.
    let column = r#"{"id": "w", "label": ""#.len() + 300 + r#"", "#.len() + 1;
    assert!(all.human.contains(&format!("[w.json:1:{column}]")), "{}", all.human);
    let bogus = all.json.diagnostics.iter().find(|d| d.code == "CRM0005").map(|d| d.column);
    assert_eq!(bogus, Some(column));
}

#[test]
fn a_long_line_between_two_labels_of_one_finding_is_not_shown_whole() {
    // A duplicate key two lines after the first: both labels would share one snippet with the
    // line between them, but that line is 3,000 characters long, so it is left out (found by the
    // property test).
    let source = format!(
        "{{\n  \"id\": \"gap\",\n  \"description\": \"{}\",\n  \"id\": \"again\",\n  \"entities\": {{\"lead\": {{\"stages\": [\"new\"]}}}}\n}}\n",
        "y".repeat(3_000)
    );
    let reports = reports("gap.json", &source);
    let all = render_all(&reports);
    assert!(!reports[0].diagnostics.is_empty(), "a duplicate key is reported");
    assert_same_findings(&reports, &all);
    assert_lines_bounded(&all.human);
}

// ---- item 3: CRM0203 on many automatic transitions ---------------------------------------------

/// `count` automatic transitions leaving `new`, each to its own stage, with `condition(i)`.
fn fan_out(count: usize, condition: impl Fn(usize) -> String) -> String {
    let stages: Vec<String> = (0..count).map(|i| format!(r#""s{i}""#)).collect();
    let transitions: Vec<String> = (0..count)
        .map(|i| {
            format!(
                r#""t{i}": {{"from": "new", "to": "s{i}", "trigger": "auto", "condition": "{}"}}"#,
                condition(i)
            )
        })
        .collect();
    format!(
        r#"{{"id": "fan", "dataSchema": {{"score": {{"type": "number"}}, "kind": {{"type": "string"}}}}, "entities": {{"lead": {{"stages": ["new", {stages}], "terminal": [{stages}]}}}}, "transitions": {{{transitions}}}}}"#,
        stages = stages.join(", "),
        transitions = transitions.join(", ")
    )
}

fn count(source: &str, code: &str, severity: &str) -> usize {
    let output = JsonOutput::new(&reports("fan.json", source));
    output.diagnostics.iter().filter(|d| d.code == code && d.severity == severity).count()
}

#[test]
fn overlapping_automatic_transitions_are_each_reported_once() {
    // Every pair overlaps: one finding per transition after the first, not one per pair.
    let source = fan_out(300, |i| format!("data.score > {i}"));
    assert_eq!(count(&source, "CRM0203", "warning"), 299);
    assert_eq!(count(&source, "CRM0203", "note"), 0);
}

#[test]
fn exclusive_equalities_are_never_compared() {
    let source = fan_out(2_000, |i| format!("data.kind == 'k{i}'"));
    assert_eq!(count(&source, "CRM0203", "warning"), 0);
    assert_eq!(count(&source, "CRM0203", "note"), 0, "indexed: nothing capped");
    // Two transitions pinning the same value do overlap.
    let source = fan_out(3, |i| format!("data.kind == 'k{}'", i.min(1)));
    assert_eq!(count(&source, "CRM0203", "warning"), 1);
}

#[test]
fn conditions_the_index_cannot_separate_are_capped_with_a_note() {
    let source = fan_out(400, |i| format!("data.score >= {i} AND data.score < {}", i + 1));
    let output = JsonOutput::new(&reports("fan.json", &source));
    let notes: Vec<_> = output.diagnostics.iter().filter(|d| d.severity == "note").collect();
    assert_eq!(notes.len(), 1, "one note for the capped stage");
    assert!(notes[0].message.contains("400 automatic transitions leave `new`"), "{}", notes[0].message);
    assert_eq!(count(&source, "CRM0203", "warning"), 0, "exclusive ranges: no overlap found");
    let mut human = String::new();
    report::human(&reports("fan.json", &source), miette::GraphicalTheme::unicode_nocolor(), &mut human)
        .expect("human renders");
    assert!(human.contains("note[CRM0203]: 400 automatic transitions"), "{human}");
    assert!(human.ends_with("0 errors, 0 warnings, 1 note in 1 file\n"), "{human}");
}

// ---- item 5: user text starting with `-` -------------------------------------------------------

#[test]
fn eval_takes_an_expression_starting_with_a_minus() {
    let run = crm(&["eval", "-3.5 + 1"]);
    snapshot("robustness_eval_negative", run.golden());
    assert_eq!(run.code, Some(0));
    let run = crm(&["eval", "--data", r#"{"a": 2}"#, "-data.a < 0"]);
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), "true\n"), "{}", run.golden());
}

// ---- item 6: bounded input ---------------------------------------------------------------------

#[test]
fn a_file_over_the_size_limit_is_a_clear_error_and_the_rest_is_checked() {
    let dir = temp_dir("size");
    let big = dir.join("big.json");
    write(&big, &format!(r#"{{"id": "{}"}}"#, "b".repeat(200)));
    let small = dir.join("small.json");
    write(&small, r#"{"id": "s"}"#);
    let run =
        crm(&["check", "--max-file-size", "100", &big.display().to_string(), &small.display().to_string()]);
    assert_eq!(run.code, Some(2), "{}", run.golden());
    assert!(run.stderr.contains("larger than 100B"), "{}", run.golden());
    assert!(run.stderr.contains("--max-file-size"), "says how to raise it: {}", run.golden());
    assert!(run.stdout.contains("in 1 file"), "the readable file is still checked: {}", run.golden());
    let run = crm(&["check", "--max-file-size", "1KiB", &big.display().to_string()]);
    assert_eq!(run.code, Some(1), "under the raised limit the file is checked: {}", run.golden());
}

#[cfg(unix)]
#[test]
fn an_endless_file_is_refused_at_the_limit() {
    let run = crm(&["check", "--max-file-size", "1MiB", "/dev/zero"]);
    assert_eq!(run.code, Some(2), "{}", run.golden());
    assert!(run.stderr.contains("larger than 1MiB"), "{}", run.golden());
    let run = crm(&["inspect", "--max-file-size", "1MiB", "/dev/zero"]);
    assert_eq!(run.code, Some(2), "{}", run.golden());
}

// ---- item 7: byte-order mark -------------------------------------------------------------------

#[test]
fn a_byte_order_mark_does_not_shift_columns() {
    let plain = r#"{"id": "b", "bogus": 1}"#;
    let with_bom = format!("\u{feff}{plain}");
    let column = |source: &str| {
        let output = JsonOutput::new(&reports("b.json", source));
        output.diagnostics.iter().find(|d| d.code == "CRM0005").map_or(0, |d| d.column)
    };
    assert_eq!(column(&with_bom), column(plain));
    assert_eq!(column(plain), plain.find("\"bogus\"").unwrap_or_default() + 1);
}

// ---- item 9: SARIF -----------------------------------------------------------------------------

#[test]
fn sarif_names_its_column_kind_and_records_unreadable_paths() {
    let run = crm(&["check", "--format", "sarif", "no/such file.json", INVALID]);
    assert_eq!(run.code, Some(2), "{}", run.golden());
    let log: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_default();
    let run0 = &log["runs"][0];
    assert_eq!(run0["columnKind"], "unicodeCodePoints");
    assert_eq!(run0["invocations"][0]["executionSuccessful"], false);
    let notification = &run0["invocations"][0]["toolExecutionNotifications"][0];
    assert_eq!(notification["level"], "error");
    assert_eq!(
        notification["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "no/such%20file.json"
    );
    let location = &run0["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"];
    assert_eq!(location["uri"], INVALID);
    assert_eq!(location["uriBaseId"], "%SRCROOT%");

    let clean = crm(&["check", "--format", "sarif", CLEAN]);
    let log: serde_json::Value = serde_json::from_str(&clean.stdout).unwrap_or_default();
    assert_eq!(log["runs"][0]["invocations"][0]["executionSuccessful"], true, "{}", clean.golden());
}

// ---- item 8: the scenario clock ----------------------------------------------------------------

#[test]
fn advancing_the_scenario_clock_past_its_end_fails_the_scenario() {
    let dir = temp_dir("clock");
    let definition = std::fs::canonicalize(CLEAN).unwrap_or_else(|e| panic!("{CLEAN}: {e}"));
    // 3,000 × 100 years passes chrono's last date (year 262,143): without the check, a panic.
    let steps: Vec<serde_json::Value> =
        (0..3_000).map(|_| serde_json::json!({"advance": "36500 days"})).collect();
    let scenario = serde_json::json!({
        "definition": definition,
        "scenarios": [{"name": "a long wait", "steps": steps}],
    });
    let file = dir.join("clock.json");
    write(&file, &scenario.to_string());
    let run = crm(&["test", &file.display().to_string()]);
    assert_eq!(run.code, Some(1), "{}", run.golden());
    assert!(run.stdout.contains("past the latest time a scenario may reach"), "{}", run.golden());
}

// ---- the property: any input, every format, the same findings ----------------------------------

/// One way to damage a definition.
#[derive(Clone, Debug)]
enum Mutation {
    /// Join every line (a minified file).
    Minify,
    /// Put a byte-order mark first.
    Bom,
    /// Remove a slice (positions are fractions of the length).
    Delete(f64, f64),
    /// Insert text.
    Insert(f64, String),
    /// Repeat a slice.
    Duplicate(f64, f64),
    /// Add a key with a string value longer than 64 KB.
    LongString,
    /// Add many copies of one key.
    ManyKeys(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let fraction = 0.0..1.0f64;
    prop_oneof![
        Just(Mutation::Minify),
        Just(Mutation::Bom),
        (fraction.clone(), 0.0..0.2f64).prop_map(|(at, len)| Mutation::Delete(at, len)),
        (fraction.clone(), r#"[{}\[\],:"a-z0-9 \n\t\\é✓-]{0,12}"#)
            .prop_map(|(at, text)| Mutation::Insert(at, text)),
        (fraction, 0.0..0.2f64).prop_map(|(at, len)| Mutation::Duplicate(at, len)),
        Just(Mutation::LongString),
        (1usize..300).prop_map(Mutation::ManyKeys),
    ]
}

/// A byte offset at `fraction` of `text`, on a character boundary.
fn at(text: &str, fraction: f64) -> usize {
    let mut offset = ((text.len() as f64) * fraction) as usize;
    offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

fn apply(mut text: String, mutation: &Mutation) -> String {
    match mutation {
        Mutation::Minify => text.split('\n').map(str::trim).collect(),
        Mutation::Bom => format!("\u{feff}{text}"),
        Mutation::Delete(start, len) => {
            let start = at(&text, *start);
            let end = at(&text, (start as f64 / text.len().max(1) as f64 + len).min(1.0)).max(start);
            text.replace_range(start..end, "");
            text
        }
        Mutation::Insert(position, insert) => {
            let position = at(&text, *position);
            text.insert_str(position, insert);
            text
        }
        Mutation::Duplicate(start, len) => {
            let start = at(&text, *start);
            let end = at(&text, (start as f64 / text.len().max(1) as f64 + len).min(1.0)).max(start);
            let copy = text[start..end].to_owned();
            text.insert_str(end, &copy);
            text
        }
        Mutation::LongString => {
            let after = text.find('{').map_or(0, |brace| brace + 1);
            text.insert_str(after, &format!(r#""note": "{}", "#, "y".repeat(70_000)));
            text
        }
        Mutation::ManyKeys(count) => {
            let after = text.find('{').map_or(0, |brace| brace + 1);
            text.insert_str(after, &r#""id": "dup", "#.repeat(*count));
            text
        }
    }
}

fn base_definitions() -> Vec<String> {
    let mut files: Vec<PathBuf> = ["definitions", "tests/fixtures/cli"]
        .iter()
        .flat_map(|dir| {
            std::fs::read_dir(root().join(dir))
                .unwrap_or_else(|e| panic!("{dir}: {e}"))
                .filter_map(|entry| entry.ok().map(|e| e.path()))
        })
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files.iter().map(|path| std::fs::read_to_string(path).unwrap_or_default()).collect()
}

proptest! {
    // 48 cases by default (each renders files over 64 KB in every format); PROPTEST_CASES for more.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(48),
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_mutated_definition_renders_the_same_findings_in_every_format(
        base in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        let bases = base_definitions();
        let mut source = bases[base.index(bases.len())].clone();
        for mutation in &mutations {
            source = apply(source, mutation);
        }
        let reports = reports("mutated.json", &source);
        let all = render_all(&reports);
        assert_same_findings(&reports, &all);
        assert_lines_bounded(&all.human);
    }

    #[test]
    fn arbitrary_text_renders_the_same_findings_in_every_format(source in "\\PC{0,300}") {
        let reports = reports("arbitrary.json", &source);
        let all = render_all(&reports);
        assert_same_findings(&reports, &all);
        assert_lines_bounded(&all.human);
    }
}

// ---- helpers -----------------------------------------------------------------------------------

const CLEAN: &str = "tests/fixtures/cli/clean.json";
const INVALID: &str = "tests/fixtures/cli/invalid.json";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn reports(path: &str, source: &str) -> Vec<Report> {
    vec![Report::new(path, source, check_source(source).diagnostics)]
}

fn codes(reports: &[Report]) -> Vec<&'static str> {
    reports.iter().flat_map(|r| r.diagnostics.iter().map(|d| d.code.as_str())).collect()
}

/// Every output format of the same reports.
struct Rendered {
    human: String,
    concise: String,
    json: JsonOutput,
    github: String,
    sarif: serde_json::Value,
}

fn render_all(reports: &[Report]) -> Rendered {
    let mut human = String::new();
    report::human(reports, miette::GraphicalTheme::unicode_nocolor(), &mut human).expect("human renders");
    let mut concise = String::new();
    report::concise(reports, &mut concise).expect("concise renders");
    let mut json = String::new();
    report::json(reports, &mut json).expect("json renders");
    let mut github = String::new();
    report::github(reports, &mut github).expect("github renders");
    let mut sarif = String::new();
    report::sarif(reports, &mut sarif).expect("sarif renders");
    Rendered {
        human,
        concise,
        json: serde_json::from_str(&json).expect("the JSON output parses"),
        github,
        sarif: serde_json::from_str(&sarif).expect("the SARIF output parses"),
    }
}

/// Every format lists the same findings: code, line and column, in the same order.
fn assert_same_findings(reports: &[Report], all: &Rendered) {
    let expected: Vec<(String, usize, usize)> =
        all.json.diagnostics.iter().map(|d| (d.code.clone(), d.line, d.column)).collect();
    let count: usize = reports.iter().map(|r| r.diagnostics.len()).sum();
    assert_eq!(expected.len(), count, "json");

    let concise: Vec<(String, usize, usize)> = all
        .concise
        .lines()
        .map(|line| {
            // `path:line:col: severity[CODE] message`; the path has no `:` here.
            let mut parts = line.splitn(4, ':');
            let (_, l, c, rest) =
                (parts.next(), parts.next(), parts.next(), parts.next().unwrap_or_default());
            let code = rest.split('[').nth(1).and_then(|r| r.split(']').next()).unwrap_or_default();
            (
                code.to_owned(),
                l.and_then(|l| l.parse().ok()).unwrap_or(0),
                c.and_then(|c| c.parse().ok()).unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(concise, expected, "concise");

    let github: Vec<(String, usize, usize)> = all
        .github
        .lines()
        .map(|line| {
            let field = |name: &str| {
                line.split([',', ' ', ':'])
                    .find_map(|part| part.strip_prefix(&format!("{name}=")))
                    .unwrap_or_default()
                    .to_owned()
            };
            (field("title"), field("line").parse().unwrap_or(0), field("col").parse().unwrap_or(0))
        })
        .collect();
    assert_eq!(github, expected, "github");

    let sarif: Vec<(String, usize, usize)> = all.sarif["runs"][0]["results"]
        .as_array()
        .map(|results| {
            results
                .iter()
                .map(|r| {
                    let region = &r["locations"][0]["physicalLocation"]["region"];
                    (
                        r["ruleId"].as_str().unwrap_or_default().to_owned(),
                        region["startLine"].as_u64().unwrap_or(0) as usize,
                        region["startColumn"].as_u64().unwrap_or(0) as usize,
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(sarif, expected, "sarif");

    // Human: one `severity[CODE]: message` header per finding, then `[path:line:col]` of its snippet.
    let headers: Vec<String> = all
        .human
        .lines()
        .filter_map(|line| {
            let (severity, rest) = line.split_once('[')?;
            matches!(severity, "error" | "warning" | "note")
                .then(|| rest.split(']').next().unwrap_or_default().to_owned())
        })
        .collect();
    let codes: Vec<String> = expected.iter().map(|(code, _, _)| code.clone()).collect();
    assert_eq!(headers, codes, "human headers\n{}", all.human);
}

/// No line of the human output is longer than a screenful, whatever the input's lines.
fn assert_lines_bounded(human: &str) {
    let longest = human.lines().map(|line| line.chars().count()).max().unwrap_or(0);
    assert!(longest <= 700, "a human output line has {longest} characters");
}

fn snapshot(name: &str, value: String) {
    insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!(name, value);
    });
}

/// What one run of `crm` produced.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn golden(&self) -> String {
        format!("status: {:?}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

fn crm(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_crm"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env_remove("CRM_MAX_FILE_SIZE")
        .output()
        .unwrap_or_else(|error| panic!("cannot run crm: {error}"));
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A fresh, empty directory under the system temp directory, unique to `name` and this process.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crm-robustness-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|error| panic!("cannot create {}: {error}", dir.display()));
    dir
}

fn write(path: &std::path::Path, contents: &str) {
    std::fs::write(path, contents).unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
}
