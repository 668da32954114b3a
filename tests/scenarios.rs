//! `crm test`: the shipped scenarios pass, and a failing scenario is reported usefully.

use std::process::Command;

fn crm_test(path: &str) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_crm"))
        .args(["test", path])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the crm binary runs");
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("utf-8 output");
    (output.status.code().unwrap_or(-1), text(output.stdout), text(output.stderr))
}

#[test]
fn shipped_scenarios_pass() {
    let (code, stdout, stderr) = crm_test("scenarios/");
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    let passed: usize = last
        .strip_suffix(" passed, 0 failed")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected closing line `{last}`"));
    // Every shipped definition has at least two scenarios.
    assert!(passed >= 10, "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

#[test]
fn failing_scenario_reports_step_expected_and_actual() {
    let (code, stdout, _) = crm_test("tests/fixtures/scenarios/failing.json");
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("ok  failing › passes"), "{stdout}");
    assert!(stdout.contains("FAIL failing › expects the wrong stage on purpose"), "{stdout}");
    assert!(stdout.contains("step 3: expect `lead`:"), "{stdout}");
    assert!(stdout.contains("stage: expected `qualified`, got `contacted`"), "{stdout}");
    assert_eq!(stdout.lines().last(), Some("1 passed, 1 failed"), "{stdout}");
}

#[test]
fn invalid_scenario_file_exits_2_naming_file_and_scenario() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("typo.json");
    let definition = concat!(env!("CARGO_MANIFEST_DIR"), "/definitions/sales-pipeline.json");
    let text = serde_json::json!({
        "definition": definition,
        "scenarios": [{"name": "has a typo", "steps": [{"fire": {"instance": "x", "transiton": "a", "as": "b"}}]}]
    });
    std::fs::write(&path, text.to_string()).expect("the fixture is written");
    let (code, stdout, stderr) = crm_test(path.to_str().expect("a utf-8 path"));
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("typo.json"), "{stderr}");
    assert!(stderr.contains("(scenario \"has a typo\")"), "{stderr}");
    assert!(stderr.contains("unknown field `transiton`"), "{stderr}");
}
