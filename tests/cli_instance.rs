//! Golden tests of `crm instance …` and `crm pending` against the built binary: one session of
//! an operator moving instances from the shell, on a fresh SQLite file and, when
//! `CRM_TEST_POSTGRES_URL` is set, on a fresh PostgreSQL database with the same golden.
//! Instance ids and times are redacted.

mod support;

use std::process::Command;

use serde_json::Value as Json;

const APPROVALS: &str = "tests/fixtures/lifecycle/approvals.json";
const SALES: &str = "definitions/sales-pipeline.json";

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn crm(url: &str, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_crm"))
        .args(args)
        .args(["--database", url])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env_remove("CRM_DATABASE_URL")
        .env_remove("CRM_TENANT")
        .env_remove("CRM_ACTOR")
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

/// A transcript of commands and what they printed, with ids named and times redacted.
struct Session {
    url: String,
    transcript: String,
    names: Vec<(String, String)>,
}

impl Session {
    fn new(url: String) -> Self {
        Self { url, transcript: String::new(), names: Vec::new() }
    }

    /// Runs `crm ARGS` (ids written as their names are substituted), records it, returns it.
    fn run(&mut self, args: &[&str]) -> Run {
        let run = self.run_unrecorded(args);
        self.record(args, &run);
        run
    }

    fn run_unrecorded(&self, args: &[&str]) -> Run {
        let args: Vec<String> = args.iter().map(|a| self.unname(a)).collect();
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        crm(&self.url, &refs)
    }

    fn record(&mut self, args: &[&str], run: &Run) {
        let shown: Vec<String> = args.iter().map(|a| self.name(a)).collect();
        self.transcript.push_str(&format!(
            "$ crm {}\nstatus: {:?}\n{}{}\n",
            shown.join(" "),
            run.code,
            self.name(&run.stdout),
            if run.stderr.is_empty() {
                String::new()
            } else {
                format!("--- stderr\n{}", self.name(&run.stderr))
            },
        ));
    }

    /// Creates an instance (JSON output) and names its id.
    fn create(&mut self, name: &str, args: &[&str]) -> Json {
        let run = self.run_unrecorded(args);
        assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
        let view: Json = serde_json::from_str(&run.stdout).expect("JSON output");
        let id = view["id"].as_str().expect("an id").to_owned();
        self.names.push((id, format!("<{name}>")));
        self.record(args, &run);
        view
    }

    fn name(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (id, name) in &self.names {
            text = text.replace(id, name);
        }
        let time = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z").expect("a regex");
        time.replace_all(&text, "<time>").into_owned()
    }

    fn unname(&self, arg: &str) -> String {
        self.names.iter().find(|(_, name)| name == arg).map_or_else(|| arg.to_owned(), |(id, _)| id.clone())
    }
}

/// Everything the instance commands do, as one operator session.
fn session(url: String) -> String {
    let mut s = Session::new(url);
    assert_eq!(s.run(&["deploy", SALES, APPROVALS]).code, Some(0));

    s.create(
        "lead",
        &[
            "instance",
            "create",
            "sales-pipeline",
            "lead",
            "--data",
            r#"{"email": "kim@example.com"}"#,
            "--as",
            "ana",
            "--format",
            "json",
        ],
    );
    s.run(&["instance", "show", "<lead>"]);
    s.run(&["instance", "fire", "<lead>", "make_contact", "--as", "ana"]);
    s.run(&["instance", "update", "<lead>", "--data", r#"{"lead_score": 72}"#, "--as", "ana"]);
    s.run(&["instance", "assign", "<lead>", "bob", "--as", "ana", "--format", "json"]);
    s.run(&["pending", "--user", "bob"]);
    s.run(&["instance", "history", "<lead>"]);

    // Refusals: the engine's message and stable code, exit status 1.
    s.run(&["instance", "fire", "<lead>", "make_contact", "--as", "ana"]);
    s.run(&["instance", "fire", "<lead>", "lose_lead", "--as", "ana", "--if-version", "1"]);
    s.run(&["instance", "update", "<lead>", "--data", r#"{"lead_score": "high"}"#, "--as", "ana"]);
    s.run(&["instance", "show", "00000000-0000-0000-0000-000000000000"]);
    s.run(&["instance", "show", "<lead>", "--tenant", "globex"]);
    // Usage errors: exit status 2, the database is not touched.
    s.run(&["instance", "fire", "<lead>", "lose_lead"]);
    s.run(&["instance", "update", "<lead>", "--data", "[1]", "--as", "ana"]);

    // Approvals: unison of dana and omar.
    s.create(
        "deal",
        &[
            "instance",
            "create",
            "discounts",
            "opportunity",
            "--data",
            r#"{"discount": 30}"#,
            "--as",
            "ana",
            "--format",
            "json",
        ],
    );
    s.run(&["instance", "fire", "<deal>", "submit", "--as", "ana"]);
    s.run(&["instance", "fire", "<deal>", "approve_discount", "--as", "ana"]);
    s.run(&["pending", "--user", "dana", "--format", "json"]);
    s.run(&["instance", "approve", "<deal>", "--as", "dana"]);
    s.run(&["instance", "approve", "<deal>", "--as", "ana"]);
    s.run(&["instance", "approve", "<deal>", "approve_discount", "--as", "omar", "--format", "json"]);
    s.run(&["instance", "approve", "<deal>", "--as", "omar"]);

    s.create("other", &["instance", "create", "discounts", "opportunity", "--as", "ana", "--format", "json"]);
    s.run(&["instance", "fire", "<other>", "submit", "--as", "ana"]);
    s.run(&["instance", "fire", "<other>", "approve_discount", "--as", "ana"]);
    s.run(&["instance", "reject", "<other>", "--as", "omar"]);
    s.run(&["instance", "history", "<other>", "--format", "json"]);

    s.run(&["instance", "list"]);
    s.run(&["instance", "list", "--definition", "discounts", "--status", "active", "--format", "json"]);
    s.run(&["instance", "list", "--stage", "nowhere"]);

    // A deactivated definition starts nothing; its running instances still move.
    s.run(&["definitions", "deactivate", "sales-pipeline"]);
    s.run(&["instance", "create", "sales-pipeline", "lead", "--as", "ana"]);
    s.run(&["instance", "fire", "<lead>", "lose_lead", "--as", "ana"]);
    s.transcript
}

#[test]
fn an_operator_session_from_the_shell() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sqlite = session(format!("sqlite:{}", dir.path().join("crm.db").display()));
    snapshot!("cli_instance_session", &sqlite);
    if let Some(admin) = support::db::postgres_url() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let database = runtime.block_on(support::db::PgDatabase::create(&admin));
        let postgres = session(database.url.clone());
        assert_eq!(postgres, sqlite, "the same session prints the same on PostgreSQL");
    }
}

/// `crm worker --once --now T` runs the timers due at T: an SLA of two days is neither at risk
/// nor breached after an hour, at risk after 36 hours, breached after two days.
#[test]
fn worker_now_fires_timers_against_the_chosen_clock() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite:{}", dir.path().join("crm.db").display());
    assert_eq!(crm(&url, &["deploy", "tests/fixtures/cli/clean.json"]).code, Some(0));
    let created = crm(&url, &["instance", "create", "cli-clean", "lead", "--as", "ana", "--format", "json"]);
    assert_eq!(created.code, Some(0), "{}", created.stderr);
    let id =
        serde_json::from_str::<Json>(&created.stdout).expect("JSON")["id"].as_str().expect("id").to_owned();
    let start = chrono::Utc::now();
    let at = |hours: i64| (start + chrono::TimeDelta::hours(hours)).to_rfc3339();

    let early = crm(&url, &["worker", "--once", "--now", &at(1)]);
    assert_eq!(early.code, Some(0), "{}", early.stderr);
    let history = |url: &str| crm(url, &["instance", "history", &id, "--format", "json"]).stdout;
    let events = |text: String| -> Vec<String> {
        let doc: Json = serde_json::from_str(&text).expect("JSON");
        doc["history"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|h| h["event"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    assert!(!events(history(&url)).iter().any(|e| e.starts_with("sla")), "nothing due after an hour");

    let risky = crm(&url, &["worker", "--once", "--now", &at(37)]);
    assert_eq!(risky.code, Some(0), "{}", risky.stderr);
    let after_risk = events(history(&url));
    assert!(after_risk.iter().any(|e| e.contains("at_risk")), "{after_risk:?}\n{}", risky.stdout);

    let late = crm(&url, &["worker", "--once", "--now", &at(49)]);
    assert_eq!(late.code, Some(0), "{}", late.stderr);
    let after_breach = events(history(&url));
    assert!(after_breach.iter().any(|e| e.contains("breach")), "{after_breach:?}\n{}", late.stdout);
    assert!(late.stdout.contains("\"action\":\"alert\""), "the breach action is delivered: {}", late.stdout);

    let bad = crm(&url, &["worker", "--once", "--now", "tomorrow"]);
    assert_eq!(bad.code, Some(2), "a bad timestamp is a usage error");
}
