//! Golden tests of the `crm` binary: exit statuses, every output format, and each command.
//!
//! They run the built executable (as jaq's tests do) from the repository root, so paths in the
//! output are the relative paths written here. Snapshots live in the repo-level `snapshots/`.

use std::path::PathBuf;
use std::process::Command;

const CLEAN: &str = "tests/fixtures/cli/clean.json";
const INVALID: &str = "tests/fixtures/cli/invalid.json";
const WARNING: &str = "tests/fixtures/cli/warning.json";
/// Uses every construct of the definition language, so the IR dumps show every IR field.
const FULL: &str = "tests/fixtures/cli/full.json";

/// What one run of `crm` produced.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The whole run as one golden text: status, stdout and stderr.
    fn golden(&self) -> String {
        format!("status: {:?}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

fn crm(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_crm"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        // Never colour, whatever the environment the tests run in.
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|error| panic!("cannot run crm: {error}"));
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

macro_rules! snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!($name, $value);
        })
    };
}

/// A fresh, empty directory under the system temp directory, unique to `name` and this process.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crm-cli-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|error| panic!("cannot create {}: {error}", dir.display()));
    dir
}

// Exit statuses.

#[test]
fn clean_definition_exits_0() {
    let run = crm(&["check", CLEAN]);
    assert_eq!(run.code, Some(0), "{}", run.golden());
    assert_eq!(run.stdout, "1 file checked, no problems\n");
}

#[test]
fn shipped_definitions_pass() {
    let run = crm(&["check"]);
    assert_eq!(run.code, Some(0), "{}", run.golden());
}

#[test]
fn errors_exit_1() {
    let run = crm(&["check", INVALID]);
    assert_eq!(run.code, Some(1), "{}", run.golden());
}

#[test]
fn warnings_exit_0_unless_denied() {
    let run = crm(&["check", WARNING]);
    assert_eq!(run.code, Some(0), "{}", run.golden());
    assert!(run.stdout.ends_with("0 errors, 1 warning in 1 file\n"), "{}", run.golden());
    let run = crm(&["check", "--deny-warnings", WARNING]);
    assert_eq!(run.code, Some(1), "{}", run.golden());
}

#[test]
fn missing_path_exits_2_and_still_checks_the_rest() {
    let run = crm(&["check", "--format", "concise", "no/such/file.json", CLEAN]);
    assert_eq!(run.code, Some(2), "{}", run.golden());
    assert!(run.stderr.starts_with("error: cannot read `no/such/file.json`"), "{}", run.golden());
    assert_eq!(run.stdout, "");
}

#[test]
fn bad_flag_exits_2() {
    let run = crm(&["check", "--no-such-flag"]);
    assert_eq!(run.code, Some(2), "{}", run.golden());
    let run = crm(&["check", "--format", "xml", CLEAN]);
    assert_eq!(run.code, Some(2), "{}", run.golden());
}

#[test]
fn empty_directory_exits_2() {
    let dir = temp_dir("empty");
    let run = crm(&["check", &dir.display().to_string()]);
    assert_eq!(run.code, Some(2), "{}", run.golden());
    assert!(run.stderr.contains("no definition files"), "{}", run.golden());
}

#[test]
fn directories_are_walked_in_sorted_order() {
    let run = crm(&["check", "--format", "json", "tests/fixtures/cli"]);
    assert_eq!(run.code, Some(1), "{}", run.golden());
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_default();
    assert_eq!(json["files_checked"], 4);
    let files: Vec<&str> =
        json["diagnostics"].as_array().into_iter().flatten().filter_map(|d| d["file"].as_str()).collect();
    let mut sorted = files.clone();
    sorted.sort_unstable();
    assert_eq!(files, sorted);
    assert!(files.contains(&"tests/fixtures/cli/invalid.json"), "{}", run.golden());
}

#[test]
fn non_utf8_file_is_a_finding_not_a_crash() {
    let dir = temp_dir("utf8");
    let file = dir.join("latin1.json");
    std::fs::write(&file, b"{\"id\": \"caf\xe9\"}").unwrap_or_else(|error| panic!("{error}"));
    let run = crm(&["check", "--format", "concise", &file.display().to_string()]);
    assert_eq!(run.code, Some(1), "{}", run.golden());
    assert!(run.stdout.ends_with(":1:12: error[CRM0001] the file is not valid UTF-8\n"), "{}", run.golden());
}

// Every format on a small invalid definition.

#[test]
fn format_human() {
    snapshot!("cli_check_human", crm(&["check", INVALID]).golden());
}

#[test]
fn format_concise() {
    snapshot!("cli_check_concise", crm(&["check", "--format", "concise", INVALID, WARNING]).golden());
}

#[test]
fn format_json() {
    snapshot!("cli_check_json", crm(&["check", "--format", "json", INVALID, CLEAN]).golden());
}

#[test]
fn format_github() {
    snapshot!("cli_check_github", crm(&["check", "--format", "github", INVALID]).golden());
}

#[test]
fn format_sarif() {
    let run = crm(&["check", "--format", "sarif", INVALID]);
    let sarif: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_default();
    assert_eq!(sarif["version"], "2.1.0", "{}", run.golden());
    // The rule pages are long; the snapshot keeps everything else.
    let pages = sarif["runs"][0]["tool"]["driver"]["rules"].as_array().map_or(0, Vec::len);
    assert!(pages > 0);
    let mut trimmed = sarif.clone();
    for rule in trimmed["runs"][0]["tool"]["driver"]["rules"].as_array_mut().into_iter().flatten() {
        let page = rule["help"]["text"].as_str().unwrap_or_default();
        assert!(page.starts_with(&format!("# {}", rule["id"].as_str().unwrap_or_default())), "{page}");
        rule["help"] = "<rule page>".into();
    }
    trimmed["runs"][0]["tool"]["driver"]["version"] = "<version>".into();
    snapshot!("cli_check_sarif", serde_json::to_string_pretty(&trimmed).unwrap_or_default());
}

// `crm eval`.

#[test]
fn eval_prints_the_value() {
    let run = crm(&["eval", "1 + 2 * 3"]);
    assert_eq!((run.code, run.stdout.as_str(), run.stderr.as_str()), (Some(0), "7\n", ""));
    let run = crm(&[
        "eval",
        "data.score > 50 AND data.region in ['EU', 'US']",
        "--data",
        r#"{"score": 70, "region": "EU"}"#,
    ]);
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (Some(0), "true\n", ""),
        "{}",
        run.golden()
    );
    let run = crm(&["eval", "upper(data.name)", "--data", r#"{"name": "ada"}"#]);
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), "\"ADA\"\n"), "{}", run.golden());
}

#[test]
fn eval_with_a_definition_checks_fields_and_stages() {
    let run = crm(&[
        "eval",
        "data.score > 50 AND stage == 'new'",
        "--definition",
        CLEAN,
        "--data",
        r#"{"score": 70}"#,
    ]);
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), "true\n"), "{}", run.golden());
    snapshot!(
        "cli_eval_undeclared_field",
        crm(&["eval", "data.nope == 1", "--definition", CLEAN, "--stage", "review"]).golden()
    );
}

#[test]
fn eval_errors() {
    snapshot!("cli_eval_type_error", crm(&["eval", "1 > 'x'"]).golden());
    snapshot!("cli_eval_syntax_error", crm(&["eval", "data.a >"]).golden());
    let run = crm(&["eval", "data.total / data.count", "--data", r#"{"total": 10, "count": 0}"#]);
    assert_eq!(run.code, Some(1), "{}", run.golden());
    assert!(run.stderr.starts_with("error: evaluation failed: division by zero"), "{}", run.golden());
    let run = crm(&["eval", "true", "--data", "{not json"]);
    assert_eq!(run.code, Some(2), "{}", run.golden());
    assert!(run.stderr.starts_with("error: `--data` is not valid JSON"), "{}", run.golden());
    let run = crm(&["eval", "true", "--data", "[1]"]);
    assert_eq!(run.code, Some(2), "{}", run.golden());
    let run = crm(&["eval", "true", "--definition", CLEAN, "--stage", "nowhere"]);
    assert_eq!(run.code, Some(2), "{}", run.golden());
}

// `crm explain`, `crm schema`.

#[test]
fn explain_prints_the_rule_page() {
    let run = crm(&["explain", "CRM0101"]);
    let page = std::fs::read_to_string("docs/rules/CRM0101.md").unwrap_or_default();
    assert_eq!(run.code, Some(0));
    assert_eq!(run.stdout.trim_end(), page.trim_end());
    assert_eq!(crm(&["explain", "unknown-stage"]).stdout, run.stdout, "rule names work too");
}

#[test]
fn explain_unknown_code_exits_2() {
    snapshot!("cli_explain_unknown", crm(&["explain", "CRM9999"]).golden());
}

#[test]
fn explain_lists_every_code() {
    let run = crm(&["explain", "--list"]);
    assert_eq!(run.code, Some(0));
    assert_eq!(crm(&["explain"]).stdout, run.stdout);
    assert!(run.stdout.lines().any(|l| l.starts_with("CRM0101  error    unknown-stage ")), "{}", run.stdout);
    assert!(run.stdout.lines().count() > 30);
}

#[test]
fn schema_matches_the_committed_file() {
    let run = crm(&["schema"]);
    assert_eq!(run.code, Some(0));
    let committed = std::fs::read_to_string("schema/crm-definition.schema.json").unwrap_or_default();
    assert!(
        run.stdout == committed,
        "schema/crm-definition.schema.json is out of date; regenerate it with\n\
         \n    cargo run -- schema > schema/crm-definition.schema.json\n"
    );
}

// `crm inspect`, `crm graph`.

#[test]
fn inspect_text_and_json() {
    snapshot!("cli_inspect_text", crm(&["inspect", FULL]).golden());
    snapshot!("cli_inspect_json", crm(&["inspect", "--format", "json", FULL]).golden());
}

#[test]
fn inspect_invalid_exits_1() {
    let run = crm(&["inspect", INVALID]);
    assert_eq!(run.code, Some(1), "{}", run.golden());
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("CRM0101"), "{}", run.golden());
}

#[test]
fn graph_mermaid_and_dot() {
    snapshot!("cli_graph_mermaid", crm(&["graph", CLEAN]).golden());
    snapshot!("cli_graph_dot", crm(&["graph", "--format", "dot", CLEAN]).golden());
    snapshot!("cli_graph_entity", crm(&["graph", "--entity", "lead", CLEAN]).golden());
    snapshot!("cli_graph_two_entities", crm(&["graph", FULL]).golden());
    let run = crm(&["graph", "--entity", "nope", CLEAN]);
    assert_eq!(run.code, Some(2), "{}", run.golden());
}

#[test]
fn help() {
    snapshot!("cli_help", crm(&["--help"]).golden());
}

// `crm migrate`.

#[test]
fn migrate_creates_then_keeps_an_sqlite_database() {
    let db = temp_dir("migrate").join("crm.db");
    let db = db.to_string_lossy();
    for _ in 0..2 {
        let run = crm(&["migrate", "--database", &db]);
        assert_eq!(run.code, Some(0), "{}", run.golden());
        assert_eq!(run.stdout, "sqlite database is up to date\n");
    }
}

#[test]
fn migrate_refuses_an_unsupported_url() {
    let run = crm(&["migrate", "--database", "mysql://localhost/crm"]);
    assert_eq!(run.code, Some(2), "{}", run.golden());
    assert!(run.stderr.contains("unsupported store URL"), "{}", run.stderr);
}
