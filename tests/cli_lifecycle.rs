//! Golden tests of `crm deploy` and `crm definitions …` against the built binary, each on a
//! fresh SQLite file (and on PostgreSQL too where the test says so, when
//! `CRM_TEST_POSTGRES_URL` is set). Times and checksums are redacted from the goldens.

mod support;

use std::path::PathBuf;
use std::process::Command;

const CLEAN: &str = "tests/fixtures/cli/clean.json";
const INVALID: &str = "tests/fixtures/cli/invalid.json";
const WARNING: &str = "tests/fixtures/cli/warning.json";

/// What one run of `crm` produced.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The whole run as one golden text, times and checksums redacted.
    fn golden(&self) -> String {
        redact(&format!("status: {:?}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr))
    }
}

fn redact(text: &str) -> String {
    let time = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)").expect("a regex");
    let hash = regex::Regex::new(r"\b[0-9a-f]{64}\b|\b[0-9a-f]{12}\b").expect("a regex");
    hash.replace_all(&time.replace_all(text, "<time>"), "<hash>").into_owned()
}

fn crm(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_crm"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env_remove("CRM_DATABASE_URL")
        .env_remove("CRM_TENANT")
        .output()
        .unwrap_or_else(|error| panic!("cannot run crm: {error}"));
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `crm ARGS --database URL`.
fn crm_on(url: &str, args: &[&str]) -> Run {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--database", url]);
    crm(&all)
}

macro_rules! snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!($name, $value);
        })
    };
}

/// A fresh SQLite database URL in a directory of its own (kept until the guard drops).
fn sqlite_db() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite:{}", dir.path().join("crm.db").display());
    (dir, url)
}

/// The fresh databases a test runs on: SQLite, and PostgreSQL when configured.
fn databases() -> Vec<(Box<dyn std::any::Any>, String)> {
    let (dir, url) = sqlite_db();
    let mut out: Vec<(Box<dyn std::any::Any>, String)> = vec![(Box::new(dir), url)];
    if let Some(admin) = support::db::postgres_url() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let database = runtime.block_on(support::db::PgDatabase::create(&admin));
        let url = database.url.clone();
        out.push((Box::new(database), url));
    }
    out
}

#[test]
fn deploy_then_redeploy_is_unchanged() {
    for (_guard, url) in databases() {
        let first = crm_on(&url, &["deploy", CLEAN]);
        assert_eq!(first.code, Some(0), "{}", first.golden());
        assert_eq!(first.stdout, format!("deployed cli-clean version 1 ({CLEAN})\n"));
        let again = crm_on(&url, &["deploy", CLEAN]);
        assert_eq!(again.stdout, format!("unchanged cli-clean version 1 ({CLEAN})\n"), "{}", again.golden());
        assert_eq!(again.code, Some(0));
    }
}

#[test]
fn deploy_with_errors_deploys_nothing_and_prints_what_check_prints() {
    let (_dir, url) = sqlite_db();
    for format in ["human", "concise", "json", "github", "sarif"] {
        let deploy = crm_on(&url, &["deploy", CLEAN, INVALID, "--format", format]);
        let check = crm(&["check", CLEAN, INVALID, "--format", format]);
        assert_eq!(deploy.code, Some(1), "{format}: {}", deploy.golden());
        assert_eq!(
            deploy.stdout, check.stdout,
            "{format}: the diagnostics exactly as `crm check` prints them"
        );
        assert_eq!(deploy.stderr, "");
    }
    let list = crm_on(&url, &["definitions", "list"]);
    assert_eq!(list.stdout, "no definitions deployed\n", "the clean file was not deployed either");
}

#[test]
fn deploy_prints_warnings_on_stderr_and_deploys() {
    let (_dir, url) = sqlite_db();
    let run = crm_on(&url, &["deploy", WARNING, "--format", "concise"]);
    snapshot!("cli_lifecycle_deploy_warning", run.golden());
    let denied = crm_on(&sqlite_db().1, &["deploy", WARNING, "--deny-warnings"]);
    assert_eq!(denied.code, Some(1), "{}", denied.golden());
}

#[test]
fn deploy_json_output() {
    let (_dir, url) = sqlite_db();
    let run = crm_on(&url, &["deploy", "definitions/", "--format", "json"]);
    snapshot!("cli_lifecycle_deploy_json", run.golden());
}

#[test]
fn deploy_refuses_two_files_with_one_id() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let source =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(CLEAN)).expect("clean");
    for name in ["a.json", "b.json"] {
        std::fs::write(dir.path().join(name), &source).expect("written");
    }
    let (_db, url) = sqlite_db();
    let run = crm_on(&url, &["deploy", &dir.path().display().to_string()]);
    assert_eq!(run.code, Some(2), "{}", run.golden());
    assert!(run.stderr.contains("definition `cli-clean` is in both"), "{}", run.stderr);
    assert!(run.stderr.contains("nothing deployed"), "{}", run.stderr);
}

#[test]
fn deploy_of_a_missing_path_is_a_usage_error() {
    let (_dir, url) = sqlite_db();
    let run = crm_on(&url, &["deploy", "no/such/dir"]);
    assert_eq!(run.code, Some(2), "{}", run.golden());
}

#[test]
fn definitions_list_show_deactivate_activate() {
    let (_dir, url) = sqlite_db();
    assert_eq!(crm_on(&url, &["deploy", "definitions/"]).code, Some(0));
    // A second version of one definition: the clean fixture with another label.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let changed = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(CLEAN))
        .expect("clean")
        .replace("\"CLI clean\"", "\"CLI clean, second edition\"");
    let v1 = crm_on(&url, &["deploy", CLEAN]);
    assert_eq!(v1.code, Some(0), "{}", v1.golden());
    let file = dir.path().join("clean-v2.json");
    std::fs::write(&file, changed).expect("written");
    let v2 = crm_on(&url, &["deploy", &file.display().to_string()]);
    assert!(v2.stdout.starts_with("deployed cli-clean version 2"), "{}", v2.golden());

    let mut golden = String::new();
    for args in [
        &["definitions", "list"][..],
        &["definitions", "show", "cli-clean"],
        &["definitions", "deactivate", "cli-clean"],
        &["definitions", "list", "--format", "json"],
        &["definitions", "activate", "cli-clean", "--format", "json"],
        &["definitions", "show", "cli-clean", "--format", "json"],
        &["definitions", "show", "nope"],
        &["definitions", "show", "cli-clean", "--version", "9"],
        &["definitions", "deactivate", "nope"],
    ] {
        golden.push_str(&format!("$ crm {}\n{}\n", args.join(" "), crm_on(&url, args).golden()));
    }
    snapshot!("cli_lifecycle_definitions", golden);

    let source = crm_on(&url, &["definitions", "show", "cli-clean", "--version", "1", "--source"]);
    let original =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(CLEAN)).expect("clean");
    assert_eq!(source.stdout, original, "the source exactly as deployed");
}

#[test]
fn tenants_do_not_see_each_others_definitions() {
    let (_dir, url) = sqlite_db();
    assert_eq!(crm_on(&url, &["deploy", CLEAN, "--tenant", "acme"]).code, Some(0));
    let other = crm_on(&url, &["definitions", "list", "--tenant", "globex"]);
    assert_eq!(other.stdout, "no definitions deployed\n");
    let own = crm_on(&url, &["definitions", "list", "--tenant", "acme"]);
    assert!(own.stdout.contains("cli-clean"), "{}", own.golden());
}

#[test]
fn check_against_a_database_counts_live_instances_and_exits_1_when_stranding() {
    for (_guard, url) in databases() {
        assert_eq!(crm_on(&url, &["deploy", "tests/fixtures/compat/live.json"]).code, Some(0));
        let created =
            crm_on(&url, &["instance", "create", "deals", "deal", "--as", "ana", "--format", "json"]);
        let id = serde_json::from_str::<serde_json::Value>(&created.stdout).expect("JSON")["id"]
            .as_str()
            .expect("an id")
            .to_owned();
        assert_eq!(crm_on(&url, &["instance", "fire", &id, "contact", "--as", "ana"]).code, Some(0));

        let strands = crm(&[
            "check",
            "--against",
            &url,
            "tests/fixtures/compat/stage_renamed.json",
            "--format",
            "concise",
        ]);
        snapshot!("cli_lifecycle_check_against_database", strands.golden().replace(&url, "<db>"));
        let fine = crm(&["check", "--against", &url, "tests/fixtures/compat/compatible.json"]);
        assert_eq!(fine.code, Some(0), "{}", fine.golden());
        let other_tenant = crm(&[
            "check",
            "--against",
            &url,
            "--tenant",
            "globex",
            "tests/fixtures/compat/stage_renamed.json",
        ]);
        assert_eq!(other_tenant.code, Some(0), "nothing of globex's is live: {}", other_tenant.golden());
    }
}

#[test]
fn check_against_a_directory_warns_of_removed_stages() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let live = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compat/live.json"),
    )
    .expect("live");
    std::fs::write(dir.path().join("deals.json"), live).expect("written");
    let run = crm(&[
        "check",
        "--against",
        &dir.path().display().to_string(),
        "tests/fixtures/compat/stage_renamed.json",
        "--format",
        "json",
    ]);
    snapshot!("cli_lifecycle_check_against_dir", run.golden());
    let bad = crm(&["check", "--against", "no/such/place", CLEAN]);
    assert_eq!(bad.code, Some(2), "{}", bad.golden());
}

#[test]
fn deploy_and_check_against_honour_the_file_size_limit() {
    let (_dir, url) = sqlite_db();
    let deployed = crm_on(&url, &["deploy", CLEAN, "--max-file-size", "100"]);
    assert_eq!(deployed.code, Some(2), "{}", deployed.golden());
    assert!(
        deployed.stderr.contains("larger than") && deployed.stderr.contains("--max-file-size"),
        "{}",
        deployed.golden()
    );
    let listed = crm_on(&url, &["definitions", "list", "--format", "json"]);
    assert_eq!(listed.code, Some(0), "{}", listed.golden());
    assert!(!listed.stdout.contains("\"id\""), "nothing deployed: {}", listed.golden());

    let compared = crm(&["check", "--against", "definitions/", CLEAN, "--max-file-size", "100"]);
    assert_ne!(compared.code, Some(0), "{}", compared.golden());
    assert!(
        compared.stderr.contains("larger than") || compared.stdout.contains("larger than"),
        "{}",
        compared.golden()
    );
}
