//! The worker: `Worker` passes on both backends, and `crm worker --once` on a SQLite file.

mod support;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use nexus_crm::engine::eval::Actor;
use nexus_crm::engine::service::{Delivered, Engine, TimerOutcome};
use nexus_crm::engine::worker::{Worker, WorkerConfig};
use nexus_crm::store::{AnyStore, SlaStatus, Store, TenantId};
use serde_json::{Value as Json, json};
use support::db::each_backend;

fn acme() -> TenantId {
    TenantId::new("acme")
}

fn agent() -> Actor {
    Actor { id: "ana".into(), roles: vec!["support_agent".into()], permissions: Vec::new() }
}

fn source() -> String {
    let path = format!("{}/definitions/support-queue.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A ticket opened `hours` ago by an engine whose clock says so, left in `new`.
async fn old_ticket(store: AnyStore, hours: i64) -> String {
    let then: DateTime<Utc> = Utc::now() - TimeDelta::hours(hours);
    let engine = Engine::new(store).with_clock(move || then);
    engine.deploy(&acme(), &source()).await.expect("deploy");
    let data = json!({"subject": "VPN is down", "priority": "high"});
    engine.create_instance(&acme(), &agent(), "support-queue", "ticket", &data).await.expect("create").id
}

#[tokio::test]
async fn a_pass_fires_what_is_due_and_delivers_what_it_enqueued() {
    each_backend(|db| async move {
        let id = old_ticket(db.store.clone(), 3).await;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let engine = Engine::new(db.store.clone())
            .with_subscriber(move |e: &Delivered| log.lock().expect("log").push(e.name.clone()));
        let worker = Worker::new(WorkerConfig { id: "w1".into(), ..WorkerConfig::default() });
        // A shutdown that is already due: one pass, then stop.
        let mut passes = 0;
        let total = worker.run(&engine, async {}, |_| passes += 1).await.expect("run");
        assert_eq!(passes, 1);
        // `new` at risk and breached, the first escalation: three timers of the stage.
        assert_eq!(total.timers.fired, 3, "{total:?}");
        let events = seen.lock().expect("log").clone();
        for event in ["instance_created", "sla_at_risk", "sla_breached", "escalated"] {
            assert!(events.iter().any(|e| e == event), "{event} not in {events:?}");
        }
        // No handler: the breach action (`page_on_call`) and the escalation's wait for a retry.
        assert_eq!(total.outbox.retried, 2, "{total:?}");
        let state = db.store.load_state(&acme(), &id).await.expect("load").expect("the ticket");
        let new = state.sla.iter().find(|s| s.scope == "new").expect("the stage clock");
        assert_eq!(new.status, SlaStatus::Breached);

        let again = worker.run_once(&engine).await.expect("pass");
        assert!(again.is_idle(), "{again:?}");
    })
    .await;
}

fn crm(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_crm"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("CRM_DATABASE_URL")
        .output()
        .unwrap_or_else(|error| panic!("cannot run crm: {error}"));
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("UTF-8 output");
    (output.status.code(), text(output.stdout), text(output.stderr))
}

#[tokio::test]
async fn crm_worker_once_processes_what_is_due_and_exits() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite:{}", dir.path().join("crm.db").display());
    let store = AnyStore::open(&url).await.expect("a store");
    let id = old_ticket(store.clone(), 3).await;
    store.close().await;

    let (code, stdout, stderr) =
        crm(&["worker", "--once", "--dry-run", "--database", &url, "--worker-id", "cli"]);
    assert_eq!(code, Some(0), "stdout: {stdout}\nstderr: {stderr}");
    let actions: Vec<Json> = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let names: Vec<&str> = actions.iter().filter_map(|a| a["action"].as_str()).collect();
    assert_eq!(names, ["page_on_call", "reassign_ticket"], "{stdout}");
    assert!(actions.iter().all(|a| a["instance"] == json!(id) && a["tenant"] == "acme"), "{stdout}");
    assert!(stdout.contains("timers: 3 fired, 0 skipped, 0 retried; outbox: "), "{stdout}");
    assert!(stdout.contains(", 2 actions, 0 retried, 0 dead"), "{stdout}");

    // Nothing is left: a second run does nothing.
    let (code, stdout, _) = crm(&["worker", "--once", "--dry-run", "--database", &url]);
    assert_eq!(code, Some(0));
    assert_eq!(
        stdout,
        "timers: 0 fired, 0 skipped, 0 retried; outbox: 0 events, 0 actions, 0 retried, 0 dead\n"
    );
    let store = AnyStore::open(&url).await.expect("a store");
    let escalations = store.escalations(&acme(), &id).await.expect("escalations");
    assert_eq!(escalations.len(), 1);
    store.close().await;
}

#[test]
fn crm_worker_reports_a_database_it_cannot_open() {
    let (code, stdout, stderr) = crm(&["worker", "--once", "--database", "mysql://localhost/crm"]);
    assert_eq!(code, Some(2), "{stdout}");
    assert!(stderr.starts_with("error: cannot open `mysql://localhost/crm`"), "{stderr}");
}

/// `crm worker` without `--once` keeps polling until Ctrl-C, then finishes its pass and exits 0
/// with the totals.
#[cfg(unix)]
#[tokio::test]
async fn crm_worker_stops_cleanly_on_ctrl_c() {
    use std::io::{BufRead as _, BufReader};
    use std::process::Stdio;

    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite:{}", dir.path().join("crm.db").display());
    let store = AnyStore::open(&url).await.expect("a store");
    old_ticket(store.clone(), 3).await;
    store.close().await;

    let mut child = Command::new(env!("CARGO_BIN_EXE_crm"))
        .args(["worker", "--dry-run", "--database", &url, "--poll-ms", "50"])
        .env_remove("CRM_DATABASE_URL")
        .stdout(Stdio::piped())
        .spawn()
        .expect("crm worker starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    // The first pass prints its actions, then its summary: the worker is up and polling.
    let first_pass = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|line| line.starts_with("timers: "))
        .expect("the first pass's summary");
    assert!(first_pass.starts_with("timers: 3 fired"), "{first_pass}");

    let signalled = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    assert!(signalled.is_ok_and(|s| s.success()), "kill -INT failed");
    let status = child.wait().expect("crm worker exits");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(status.code(), Some(0), "{rest:?}");
    // The totals of the whole run, printed on the way out.
    assert_eq!(rest.last().map(String::as_str).unwrap_or(""), first_pass, "{rest:?}");
}

/// A parallel launch whose two branches complete when their actions succeed.
const LAUNCH: &str = r#"{"id": "launch",
  "entities": {"campaign": {"stages": ["ready", "live", "done"]}},
  "actions": {
    "send_newsletter": {"type": "webhook", "url": "https://mail.example.com/send", "max_retries": 0},
    "start_ads": {"type": "webhook", "url": "https://ads.example.com/start", "max_retries": 0}
  },
  "gateways": {"go": {"type": "parallel", "from": "ready", "join": "live", "branches": {
    "newsletter": {"action": "send_newsletter"},
    "ads": {"action": "start_ads"}
  }}},
  "transitions": {"finish": {"from": "live", "to": "done", "trigger": "manual"},
                  "withdraw": {"from": "ready", "to": "done", "trigger": "manual"}}}"#;

/// Carries out every action except those named in `failing`, which fail.
struct Handler {
    failing: &'static [&'static str],
}

impl nexus_crm::engine::service::ActionHandler for Handler {
    fn handle<'a>(&'a self, action: &'a Delivered) -> nexus_crm::engine::service::ActionResult<'a> {
        let failed = self.failing.contains(&action.name.as_str());
        Box::pin(async move { if failed { Err("the ad server said no".to_owned()) } else { Ok(()) } })
    }
}

/// Delivery reports a branch action's outcome to its instance: successes complete the branches
/// and the join proceeds; a final failure cancels its branch, and the join waits.
#[tokio::test]
async fn delivered_branch_actions_complete_their_branches() {
    use nexus_crm::engine::machine::TokenStatus;

    each_backend(|db| async move {
        for (failing, stage, ads) in
            [(&[][..], "live", None), (&["start_ads"][..], "ready", Some(TokenStatus::Cancelled))]
        {
            let engine = Engine::new(db.store.clone()).with_action_handler(Handler { failing });
            engine.deploy(&acme(), LAUNCH).await.expect("deploy");
            let launch = engine
                .create_instance(&acme(), &agent(), "launch", "campaign", &Json::Null)
                .await
                .expect("create");
            engine.fire(&acme(), &agent(), &launch.id, "go", None).await.expect("fork");
            let worker = Worker::new(WorkerConfig { id: "w".into(), ..WorkerConfig::default() });
            let pass = worker.run_once(&engine).await.expect("a pass");
            assert!(pass.outbox.unreported.is_empty(), "{pass:?}");

            let view = engine.instance(&acme(), &launch.id).await.expect("instance");
            assert_eq!(view.stage, stage, "failing {failing:?}: {view:?}");
            let history: Vec<String> = engine
                .history(&acme(), &launch.id)
                .await
                .expect("history")
                .into_iter()
                .map(|h| h.event)
                .collect();
            assert!(history.iter().any(|e| e == "action_succeeded"), "{history:?}");
            match ads {
                None => assert!(history.iter().any(|e| e == "gateway_joined"), "{history:?}"),
                Some(status) => {
                    let token = view.tokens.iter().find(|t| t.branch == "ads").expect("the ads branch");
                    assert_eq!(token.status, status, "{view:?}");
                    assert!(history.iter().any(|e| e == "branch_failed"), "{history:?}");
                    assert_eq!(pass.outbox.dead.len(), 1, "{pass:?}");
                }
            }
        }
    })
    .await;
}

/// #12 defect 1: a user's command cancels timers a worker has already claimed (here: triaging
/// the ticket leaves `new`, whose SLA and escalation timers were due). The worker skips them and
/// counts them; before the fix the first one was `Err(no pending timer …)` and stopped the worker.
#[tokio::test]
async fn a_timer_cancelled_after_its_claim_is_skipped_and_counted() {
    each_backend(|db| async move {
        let id = old_ticket(db.store.clone(), 3).await;
        let engine = Engine::new(db.store.clone());
        let claimed =
            db.store.due_timers(Utc::now(), 100, "w1", Duration::from_secs(60)).await.expect("claimed");
        assert_eq!(claimed.len(), 3, "at risk, breach and escalation of `new`: {claimed:?}");
        engine.fire(&acme(), &agent(), &id, "triage", None).await.expect("triaged");
        for timer in &claimed {
            let outcome = engine.process_timer(timer).await.expect("no user action stops a worker");
            assert!(matches!(outcome, TimerOutcome::Skipped(_)), "{}: {outcome:?}", timer.kind);
        }
        let events = history_events(&engine, &id).await;
        assert_eq!(events, ["instance_created", "transition_completed"], "nothing fired");
    })
    .await;
}

/// An entity SLA of two hours, at risk after one.
const SLA_2H: &str = r#"{"id": "sla2",
  "entities": {"case": {"stages": ["open", "closed"], "terminal": ["closed"],
                        "sla": {"duration": "2 hours", "at_risk": "1 hour"}}},
  "transitions": {"close": {"from": "open", "to": "closed"}}}"#;

/// #12 defect 2: with several workers (or a retry after a conflict) the at-risk timer may run
/// after the breach timer. SLA status only moves forward: the late at-risk records nothing.
#[tokio::test]
async fn a_late_at_risk_timer_does_not_undo_a_breach() {
    each_backend(|db| async move {
        let t0 = Utc::now() - TimeDelta::hours(3);
        let creator = Engine::new(db.store.clone()).with_clock(move || t0);
        creator.deploy(&acme(), SLA_2H).await.expect("deploy");
        let case =
            creator.create_instance(&acme(), &agent(), "sla2", "case", &Json::Null).await.expect("create");
        let engine = Engine::new(db.store.clone());
        let mut claimed =
            db.store.due_timers(Utc::now(), 100, "w1", Duration::from_secs(60)).await.expect("claimed");
        // The breach first, then the at-risk mark.
        claimed.sort_by_key(|t| t.kind != "sla_breach");
        let kinds: Vec<&str> = claimed.iter().map(|t| t.kind.as_str()).collect();
        assert_eq!(kinds, ["sla_breach", "sla_at_risk"]);
        assert_eq!(engine.process_timer(&claimed[0]).await.expect("breach"), TimerOutcome::Fired);
        let late = engine.process_timer(&claimed[1]).await.expect("at risk");
        assert!(matches!(late, TimerOutcome::Skipped(_)), "{late:?}");

        let state = db.store.load_state(&acme(), &case.id).await.expect("load").expect("the case");
        assert_eq!(state.sla.len(), 1, "{:?}", state.sla);
        assert_eq!(state.sla[0].status, SlaStatus::Breached);
        assert_eq!(history_events(&engine, &case.id).await, ["instance_created", "sla_breached"]);
    })
    .await;
}

/// Ten branches without stage or action, each signed off by hand; the join enters `live`.
fn ten_branches() -> String {
    let branches: Vec<String> = (0..10).map(|i| format!(r#""b{i}": {{"label": "sign-off {i}"}}"#)).collect();
    format!(
        r#"{{"id": "ten", "entities": {{"launch": {{"stages": ["ready", "live", "done"]}}}},
            "gateways": {{"go": {{"type": "parallel", "from": "ready", "join": "live", "branches": {{{}}}}}}},
            "transitions": {{"finish": {{"from": "live", "to": "done", "trigger": "manual"}}}}}}"#,
        branches.join(", ")
    )
}

/// #12 defect 3: ten users complete ten different branches at the same moment, each through an
/// engine of its own (as ten processes would). None of them named a version, so none gets a
/// conflict: each command is retried until it applies; before the fix 7–8 of 10 were refused
/// with a message quoting an "expected version" nobody gave.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_commands_without_a_version_all_apply() {
    each_backend(|db| async move {
        let first = Engine::new(db.store.clone());
        first.deploy(&acme(), &ten_branches()).await.expect("deploy");
        let launch =
            first.create_instance(&acme(), &agent(), "ten", "launch", &Json::Null).await.expect("create");
        first.fire(&acme(), &agent(), &launch.id, "go", None).await.expect("fork");
        let start = Arc::new(tokio::sync::Barrier::new(10));
        let tasks: Vec<_> = (0..10)
            .map(|b| {
                let (store, id, start) = (db.store.clone(), launch.id.clone(), start.clone());
                tokio::spawn(async move {
                    let engine = Engine::new(store);
                    // Every engine has read the instance before anyone writes.
                    engine.instance(&acme(), &id).await.expect("read");
                    start.wait().await;
                    engine.complete_branch(&acme(), &agent(), &id, "go", &format!("b{b}")).await
                })
            })
            .collect();
        for (b, task) in tasks.into_iter().enumerate() {
            let result = task.await.expect("the task ran");
            assert!(result.is_ok(), "b{b}: {result:?}");
        }
        let view = first.instance(&acme(), &launch.id).await.expect("instance");
        assert_eq!((view.stage.as_str(), view.tokens.len()), ("live", 0), "{view:?}");
    })
    .await;
}

async fn history_events(engine: &Engine<AnyStore>, id: &str) -> Vec<String> {
    engine.history(&acme(), id).await.expect("history").into_iter().map(|h| h.event).collect()
}
