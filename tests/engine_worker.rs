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
        // No handler: the breach action (`page_on_call`) waits for a retry; the escalation's
        // `assign` action is the engine's own (with no directory it finds nobody to assign).
        assert_eq!(total.outbox.retried, 1, "{total:?}");
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
    // `reassign_ticket` is an `assign` action: the engine carries it out, nothing is delivered.
    assert_eq!(names, ["page_on_call"], "{stdout}");
    assert!(actions.iter().all(|a| a["instance"] == json!(id) && a["tenant"] == "acme"), "{stdout}");
    assert!(stdout.contains("timers: 3 fired, 0 skipped, 0 retried; outbox: "), "{stdout}");
    assert!(stdout.contains(", 1 actions, 0 retried, 0 dead"), "{stdout}");

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
        // No directory knows the `support_agent` role: the creation records that nobody could be
        // assigned automatically.
        assert_eq!(
            events,
            ["instance_created", "assignment_unresolved", "transition_completed"],
            "nothing fired"
        );
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

/// A worker whose lease ran out while it was delivering: another worker has claimed the item
/// since, so the first one's late result is refused and the second one's stands.
#[tokio::test]
async fn a_stale_workers_late_result_is_refused() {
    use nexus_crm::store::{AttemptOutcome, NewAttempt, OutboxStatus, StoreError};

    each_backend(|db| async move {
        let engine = Engine::new(db.store.clone());
        engine.deploy(&acme(), LAUNCH).await.expect("deploy");
        engine.create_instance(&acme(), &agent(), "launch", "campaign", &Json::Null).await.expect("create");
        let now = Utc::now();
        let first = db.store.claim_outbox(now, 10, "slow", Duration::from_secs(1)).await.expect("claim");
        let item = first.first().expect("an item").clone();
        // The lease has ended: a second worker claims the same item.
        let later = now + TimeDelta::seconds(2);
        let second = db.store.claim_outbox(later, 10, "fast", Duration::from_secs(60)).await.expect("claim");
        let retaken = second.iter().find(|i| i.id == item.id).expect("claimed again").clone();
        assert_ne!(retaken.claim, item.claim, "each claim has its own token");

        let attempt = |worker: &str| NewAttempt {
            id: nexus_crm::store::new_id(),
            attempt: 1,
            worker: worker.to_owned(),
            started_at: now,
            latency_us: 10,
            outcome: AttemptOutcome::Delivered,
            http_status: Some(200),
            error: None,
            next_attempt_at: later,
            finished_at: later,
        };
        let stale = item.claim.as_deref().expect("a token");
        let refused = db.store.record_attempt(&acme(), &item.id, stale, &attempt("slow")).await;
        assert!(matches!(refused, Err(StoreError::NotFound { .. })), "{refused:?}");
        let current = retaken.claim.as_deref().expect("a token");
        db.store.record_attempt(&acme(), &item.id, current, &attempt("fast")).await.expect("recorded");
        // Settled once: the stale claim cannot touch it afterwards either.
        let again = db.store.record_attempt(&acme(), &item.id, stale, &attempt("slow")).await;
        assert!(again.is_err());
        let stored = db.store.outbox_item(&acme(), &item.id).await.expect("read").expect("the item");
        assert_eq!(stored.status, OutboxStatus::Done);
        let attempts = db.store.outbox_attempts(&acme(), &item.id).await.expect("attempts");
        assert_eq!(attempts.iter().map(|a| a.worker.as_str()).collect::<Vec<_>>(), ["fast"]);
    })
    .await;
}

/// `crm outbox` on a SQLite file: dead letters listed, shown with their attempts, replayed and
/// discarded.
#[tokio::test]
async fn crm_outbox_lists_shows_replays_and_discards() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite:{}", dir.path().join("crm.db").display());
    let store = AnyStore::open(&url).await.expect("a store");
    let engine = Engine::new(store.clone());
    engine.deploy(&acme(), LAUNCH).await.expect("deploy");
    let launch =
        engine.create_instance(&acme(), &agent(), "launch", "campaign", &Json::Null).await.expect("create");
    engine.fire(&acme(), &agent(), &launch.id, "go", None).await.expect("fork");
    // No handler: both branch actions (max_retries 0) are dead-lettered on their first attempt.
    let pass = Worker::new(WorkerConfig::default()).run_once(&engine).await.expect("a pass");
    assert_eq!(pass.outbox.dead.len(), 2, "{pass:?}");
    store.close().await;

    let outbox = |args: &[&str]| {
        let mut all = vec!["outbox", "--database", &url, "--tenant", "acme"];
        all.extend_from_slice(args);
        crm(&all)
    };
    let (code, stdout, stderr) = outbox(&["list", "--status", "dead"]);
    assert_eq!(code, Some(0), "{stderr}");
    let dead: Vec<&str> = stdout.lines().collect();
    assert_eq!(dead.len(), 2, "{stdout}");
    assert!(
        dead.iter().all(|l| l.contains("dead") && l.contains("no action handler is registered")),
        "{stdout}"
    );
    let first = dead[0].split_whitespace().next().expect("an id").to_owned();
    let second = dead[1].split_whitespace().next().expect("an id").to_owned();

    let (code, stdout, _) = outbox(&["show", &first, "--format", "json"]);
    assert_eq!(code, Some(0));
    let shown: Json = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(shown["status"], "dead");
    assert_eq!(shown["attempt_history"][0]["outcome"], "dead");
    assert_eq!(shown["attempt_history"][0]["error"], "no action handler is registered");

    let (code, stdout, _) = outbox(&["replay", &first]);
    assert_eq!((code, stdout.trim()), (Some(0), format!("replayed {first}").as_str()));
    let (code, stdout, _) = outbox(&["discard", &second]);
    assert_eq!((code, stdout.trim()), (Some(0), format!("discarded {second}").as_str()));
    let (code, _, stderr) = outbox(&["discard", &second]);
    assert_eq!(code, Some(2), "discarding twice is refused");
    assert!(stderr.contains("no undelivered outbox item"), "{stderr}");
    let (_, stdout, _) = outbox(&["list", "--status", "pending"]);
    assert!(stdout.starts_with(&first), "the replayed item waits again: {stdout}");
    let (_, stdout, _) = outbox(&["list", "--status", "dead"]);
    assert!(stdout.contains("discarded") && stdout.starts_with(&second), "{stdout}");
}

/// A pipeline whose entity SLA (2 hours, at risk after 1) pages a local receiver on breach.
fn paging(url: &str) -> String {
    json!({
        "id": "paging",
        "entities": {"case": {"stages": ["open", "closed"], "terminal": ["closed"],
                              "sla": {"duration": "2 hours", "at_risk": "1 hour", "breach_actions": ["page"]}}},
        "actions": {"page": {"type": "webhook", "url": url, "max_retries": 20}},
        "transitions": {"close": {"from": "open", "to": "closed"}}
    })
    .to_string()
}

/// Several `crm worker` processes on one database, one killed with SIGKILL mid-run while users
/// close instances: every timer's effect is recorded once, every page is delivered (at least
/// once, exactly once after the receiver's dedup on `webhook-id`), nothing is left due, and the
/// surviving workers are still running until told to stop. 2 processes on SQLite, 4 on PostgreSQL.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_survive_a_killed_peer_and_deliver_everything() {
    use std::collections::{HashMap, HashSet};
    use std::process::Stdio;

    use nexus_crm::store::{OutboxQuery, OutboxStatus, StoredOutboxKind};

    const CASES: usize = 150;

    each_backend(|db| async move {
        // The receiver: counts deliveries per webhook id.
        let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
            let log = log.clone();
            async move {
                let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                *log.lock().expect("log").entry(id).or_default() += 1;
                axum::http::StatusCode::NO_CONTENT
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let url = format!("http://{}/page", listener.local_addr().expect("an address"));
        tokio::spawn(async move { axum::serve(listener, app).await });

        let then = Utc::now() - TimeDelta::hours(3);
        let creator = Engine::new(db.store.clone()).with_clock(move || then);
        creator.deploy(&acme(), &paging(&url)).await.expect("deploy");
        let mut ids = Vec::new();
        for _ in 0..CASES {
            ids.push(
                creator
                    .create_instance(&acme(), &agent(), "paging", "case", &Json::Null)
                    .await
                    .expect("create")
                    .id,
            );
        }

        let processes = if db.backend() == "postgres" { 4 } else { 2 };
        let spawn = |n: usize| {
            std::process::Command::new(env!("CARGO_BIN_EXE_crm"))
                .args(["worker", "--database", &db.url, "--allow", "127.0.0.1", "--poll-ms", "50"])
                .args(["--lease-seconds", "2", "--batch", "10", "--worker-id", &format!("p{n}")])
                .env_remove("CRM_DATABASE_URL")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("crm worker starts")
        };
        let mut workers: Vec<_> = (0..processes).map(spawn).collect();

        // Users close every third case while the workers run; one worker dies mid-run.
        let engine = Engine::new(db.store.clone());
        let mut closed = HashSet::new();
        for (i, id) in ids.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
            if i == 30 {
                let victim = workers.remove(0);
                let killed =
                    std::process::Command::new("kill").args(["-9", &victim.id().to_string()]).status();
                assert!(killed.is_ok_and(|s| s.success()), "kill -9");
                let mut victim = victim;
                let _ = victim.wait();
            }
            engine.fire(&acme(), &agent(), id, "close", None).await.expect("closed");
            closed.insert(id.clone());
        }

        // Wait until nothing is due and every page is settled (the dead worker's leases end
        // after 2 seconds).
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            // Every timer here is due; count the pending ones, claimed or not (a dead worker's
            // claims stay pending until their lease ends and another worker takes them).
            let pending = db
                .raw_execute("UPDATE crm_timers SET locked_by = locked_by WHERE processed_at IS NULL")
                .await;
            let pending = pending.expect("counts pending timers");
            let items =
                db.store.outbox_items(&acme(), &OutboxQuery { limit: 500, ..OutboxQuery::default() }).await;
            let mut all = items.expect("items");
            let mut after = all.last().map(|i| i.id.clone());
            while let Some(a) = after {
                let page = db
                    .store
                    .outbox_items(
                        &acme(),
                        &OutboxQuery { after: Some(a), limit: 500, ..OutboxQuery::default() },
                    )
                    .await
                    .expect("items");
                after = page.last().map(|i| i.id.clone());
                all.extend(page);
            }
            let unsettled = all
                .iter()
                .filter(|i| i.kind == StoredOutboxKind::Action && i.status != OutboxStatus::Done)
                .count();
            if pending == 0 && unsettled == 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{pending} timers pending, {unsettled} pages unsettled"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // No worker exited on its own; each stops cleanly when asked.
        for mut worker in workers {
            assert!(worker.try_wait().expect("status").is_none(), "a worker exited by itself");
            let signalled =
                std::process::Command::new("kill").args(["-INT", &worker.id().to_string()]).status();
            assert!(signalled.is_ok_and(|s| s.success()));
            assert_eq!(worker.wait().expect("exits").code(), Some(0));
        }

        let mut breaches = 0;
        for id in &ids {
            let events = history_events(&engine, id).await;
            let count = |e: &str| events.iter().filter(|x| *x == e).count();
            assert!(count("sla_breached") <= 1 && count("sla_at_risk") <= 1, "{id}: {events:?}");
            if !closed.contains(id) {
                assert_eq!(count("sla_breached"), 1, "{id}: {events:?}");
            }
            breaches += count("sla_breached");
        }
        let seen = seen.lock().expect("log").clone();
        let pages: HashSet<&String> = seen.keys().collect();
        assert_eq!(pages.len(), breaches, "one page per breach after dedup");
        eprintln!(
            "crash test on {}: {breaches} breaches, {} deliveries for {} pages",
            db.backend(),
            seen.values().sum::<usize>(),
            pages.len()
        );
    })
    .await;
}
