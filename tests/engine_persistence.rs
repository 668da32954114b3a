//! What the engine persists beyond stage and data, and the state it keeps between commands: action
//! runs, every branch token, the approval requester, completion at creation, and stale kept
//! states. Every restart is a new engine on a reopened store. SQLite and PostgreSQL alike.

mod support;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use nexus_crm::engine::eval::Actor;
use nexus_crm::engine::machine::{InstanceStatus, MachineError, RunId, TokenStatus, Vote, events};
use nexus_crm::engine::service::{Engine, EngineError, InstanceView, parse_run_id};
use nexus_crm::store::{AnyStore, OutboxRow, Store, StoredOutboxKind, TenantId};
use serde_json::{Value as Json, json};
use support::db::{TestDb, each_backend};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).single().expect("a valid date")
}

fn engine(store: AnyStore) -> Engine<AnyStore> {
    Engine::new(store).with_clock(now)
}

/// An engine on a store reopened from the URL: nothing kept from any earlier engine.
async fn restarted(db: &TestDb) -> Engine<AnyStore> {
    engine(AnyStore::open(&db.url).await.expect("reopened"))
}

fn acme() -> TenantId {
    TenantId::new("acme")
}

fn user(id: &str) -> Actor {
    Actor { id: id.into(), ..Actor::default() }
}

/// A parallel gateway: two branches complete when their action succeeds, one by a sign-off.
const LAUNCH: &str = r#"{"id": "launch",
  "entities": {"campaign": {"stages": ["ready", "live", "done"]}},
  "actions": {
    "send_newsletter": {"type": "webhook", "url": "https://mail.example.com/send"},
    "start_ads": {"type": "webhook", "url": "https://ads.example.com/start"}
  },
  "gateways": {"go": {"type": "parallel", "from": "ready", "join": "live", "branches": {
    "newsletter": {"action": "send_newsletter"},
    "ads": {"action": "start_ads"},
    "sign_off": {"label": "Brand signs off"}
  }}},
  "transitions": {
    "finish": {"from": "live", "to": "done", "trigger": "manual"},
    "withdraw": {"from": "ready", "to": "done", "trigger": "manual"}
  }}"#;

/// A transition with two actions, the first undone by a compensation if the second fails.
const CONVERT: &str = r#"{"id": "convert",
  "entities": {"lead": {"stages": ["new", "converted"]}},
  "actions": {
    "open_account": {"type": "custom", "plugin": "erp", "compensation": "close_account"},
    "close_account": {"type": "custom", "plugin": "erp"},
    "notify_finance": {"type": "webhook", "url": "https://finance.example.com/hook"}
  },
  "transitions": {"convert": {"from": "new", "to": "converted", "trigger": "manual",
                              "actions": ["open_account", "notify_finance"]}}}"#;

/// Two stages and ways between them, including one that applies from both.
const TOGGLE: &str = r#"{"id": "toggle", "entities": {"item": {"stages": ["a", "b"]}},
 "transitions": {"ab": {"from": "a", "to": "b", "trigger": "manual"},
                 "ba": {"from": "b", "to": "a", "trigger": "manual"},
                 "reset": {"from": ["a", "b"], "to": "a", "trigger": "manual"}}}"#;

/// A lead whose low score rejects it at once: creation reaches a terminal stage.
const SCREEN: &str = r#"{"id": "screen", "dataSchema": {"score": {"type": "number"}},
  "entities": {"lead": {"stages": ["new", "rejected", "won"]}},
  "transitions": {"reject": {"from": "new", "to": "rejected", "condition": "data.score < 10"},
                  "win": {"from": "new", "to": "won", "trigger": "manual"}}}"#;

/// The pending action items of the outbox, by action name, with their run ids.
async fn action_runs(store: &AnyStore) -> Vec<(String, RunId)> {
    let items = store.claim_outbox(now(), 100, "test", Duration::from_secs(60)).await.expect("claims");
    let mut runs: Vec<(String, RunId)> = items
        .iter()
        .filter(|o| o.kind == StoredOutboxKind::Action)
        .filter_map(|o| Some((o.name.clone(), parse_run_id(o.payload.get("run")?.as_str()?)?)))
        .collect();
    for item in &items {
        store.outbox_done(&item.tenant, &item.id, now()).await.expect("delivered");
    }
    runs.sort();
    runs
}

fn run_of(runs: &[(String, RunId)], action: &str) -> RunId {
    runs.iter()
        .find(|(name, _)| name == action)
        .map(|(_, run)| *run)
        .unwrap_or_else(|| panic!("no run of {action}"))
}

fn branches(view: &InstanceView) -> Vec<(&str, TokenStatus)> {
    view.tokens.iter().map(|t| (t.branch.as_str(), t.status)).collect()
}

async fn forked_launch(db: &TestDb) -> (String, Vec<(String, RunId)>) {
    let first = engine(db.store.clone());
    first.deploy(&acme(), LAUNCH).await.expect("deployed");
    let launch = first
        .create_instance(&acme(), &user("pat"), "launch", "campaign", &Json::Null)
        .await
        .expect("created");
    let forked = first.fire(&acme(), &user("pat"), &launch.id, "go", None).await.expect("forked");
    assert_eq!(forked.stage, "ready");
    (launch.id, action_runs(&db.store).await)
}

#[tokio::test]
async fn a_branch_completes_when_its_action_succeeds_even_after_a_restart() {
    each_backend(|db| async move {
        let (id, runs) = forked_launch(&db).await;
        assert_eq!(
            runs.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(),
            ["send_newsletter", "start_ads"]
        );

        let second = restarted(&db).await;
        let view =
            second.action_succeeded(&acme(), &id, run_of(&runs, "send_newsletter")).await.expect("reported");
        assert_eq!(
            branches(&view),
            [
                ("newsletter", TokenStatus::Completed),
                ("ads", TokenStatus::Active),
                ("sign_off", TokenStatus::Active)
            ]
        );
        let again = second.action_succeeded(&acme(), &id, run_of(&runs, "send_newsletter")).await;
        assert!(matches!(again, Err(EngineError::Machine(MachineError::UnknownRun { .. }))), "{again:?}");
        second.complete_branch(&acme(), &user("pat"), &id, "go", "sign_off").await.expect("signed off");

        let third = restarted(&db).await;
        let joined =
            third.action_succeeded(&acme(), &id, run_of(&runs, "start_ads")).await.expect("reported");
        assert_eq!((joined.stage.as_str(), joined.tokens.len()), ("live", 0), "the last branch joins");
        assert_eq!(restarted(&db).await.instance(&acme(), &id).await.expect("reloads"), joined);
        let history = third.history(&acme(), &id).await.expect("history");
        let count = |event: &str| history.iter().filter(|h| h.event == event).count();
        assert_eq!((count(events::ACTION_SUCCEEDED), count(events::GATEWAY_JOINED)), (2, 1));
    })
    .await;
}

#[tokio::test]
async fn a_failed_branch_is_remembered_so_the_join_waits() {
    each_backend(|db| async move {
        let (id, runs) = forked_launch(&db).await;
        let first = restarted(&db).await;
        let failed = first
            .action_failed(&acme(), &id, run_of(&runs, "start_ads"), "ads API down")
            .await
            .expect("reported");
        assert_eq!(branches(&failed)[1], ("ads", TokenStatus::Cancelled));

        // After a restart the other two branches complete: the cancelled one still blocks the join.
        let second = restarted(&db).await;
        second.action_succeeded(&acme(), &id, run_of(&runs, "send_newsletter")).await.expect("reported");
        let last =
            second.complete_branch(&acme(), &user("pat"), &id, "go", "sign_off").await.expect("signed off");
        assert_eq!(last.stage, "ready", "no join without the failed branch");
        let reloaded = restarted(&db).await.instance(&acme(), &id).await.expect("reloads");
        assert_eq!(
            branches(&reloaded),
            [
                ("newsletter", TokenStatus::Completed),
                ("ads", TokenStatus::Cancelled),
                ("sign_off", TokenStatus::Completed)
            ]
        );

        // Leaving the fork stage ends the gateway; its tokens are not read back any more.
        let done =
            restarted(&db).await.fire(&acme(), &user("pat"), &id, "withdraw", None).await.expect("withdrawn");
        assert_eq!(
            (done.stage.as_str(), done.status, done.tokens.len()),
            ("done", InstanceStatus::Completed, 0)
        );
        let row = db.store.load_instance(&acme(), &id).await.expect("loads").expect("exists");
        assert_eq!(row.ended_at, Some(now()));
        assert!(db.store.load_state(&acme(), &id).await.expect("loads").expect("exists").tokens.is_empty());
    })
    .await;
}

#[tokio::test]
async fn compensations_follow_a_failure_reported_after_restarts() {
    each_backend(|db| async move {
        let first = engine(db.store.clone());
        first.deploy(&acme(), CONVERT).await.expect("deployed");
        let lead = first
            .create_instance(&acme(), &user("ana"), "convert", "lead", &Json::Null)
            .await
            .expect("created");
        first.fire(&acme(), &user("ana"), &lead.id, "convert", None).await.expect("converted");
        let runs = action_runs(&db.store).await;
        let stored = db.store.load_state(&acme(), &lead.id).await.expect("loads").expect("exists");
        assert_eq!(stored.runs.len(), 2, "both runs of the group are kept with the instance");

        restarted(&db)
            .await
            .action_succeeded(&acme(), &lead.id, run_of(&runs, "open_account"))
            .await
            .expect("reported");
        restarted(&db)
            .await
            .action_failed(&acme(), &lead.id, run_of(&runs, "notify_finance"), "finance hook gone")
            .await
            .expect("reported");
        let items = db.store.claim_outbox(now(), 100, "test", Duration::from_secs(60)).await.expect("claims");
        let compensations: Vec<&OutboxRow> =
            items.iter().filter(|o| o.kind == StoredOutboxKind::Compensation).collect();
        assert_eq!(compensations.len(), 1);
        assert_eq!(compensations[0].name, "close_account");
        assert_eq!(compensations[0].payload["compensates"], json!("open_account"));
        let stored = db.store.load_state(&acme(), &lead.id).await.expect("loads").expect("exists");
        assert!(stored.runs.is_empty(), "nothing of the group is pending any more");
    })
    .await;
}

#[tokio::test]
async fn the_requester_of_a_pending_approval_is_stored_with_it() {
    each_backend(|db| async move {
        let first = engine(db.store.clone());
        let shipped =
            std::fs::read_to_string(format!("{}/definitions/deal-desk.json", env!("CARGO_MANIFEST_DIR")))
                .expect("shipped definition");
        first.deploy(&acme(), &shipped).await.expect("deployed");
        let ae = Actor { roles: vec!["account_executive".into()], ..user("alex") };
        let deal = first
            .create_instance(
                &acme(),
                &ae,
                "deal-desk",
                "deal",
                &json!({"account": "Acme", "discount_pct": 20}),
            )
            .await
            .expect("created");
        first.fire(&acme(), &ae, &deal.id, "desk_approve", None).await.expect("requested");
        let state = db.store.load_state(&acme(), &deal.id).await.expect("loads").expect("exists");
        assert_eq!(state.approvals[0].request.requested_by.as_deref(), Some("alex"));

        let mut stage = String::new();
        for approver in ["dana", "omar", "li"] {
            let fresh = restarted(&db).await;
            let pending = fresh.instance(&acme(), &deal.id).await.expect("reloads").pending_approval;
            assert_eq!(pending.map(|p| p.requested_by).as_deref(), Some("alex"));
            stage = fresh
                .respond(&acme(), &user(approver), &deal.id, "desk_approve", Vote::Approve)
                .await
                .expect("voted")
                .stage;
        }
        assert_eq!(stage, "approved");
        let history = first.history(&acme(), &deal.id).await.expect("history");
        let granted = history.iter().find(|h| h.event == events::APPROVAL_GRANTED).expect("granted");
        assert_eq!(granted.payload.as_ref().and_then(|p| p.get("requested_by")), Some(&json!("alex")));
    })
    .await;
}

#[tokio::test]
async fn an_instance_created_in_a_terminal_stage_is_stored_completed() {
    each_backend(|db| async move {
        let engine = engine(db.store.clone());
        engine.deploy(&acme(), SCREEN).await.expect("deployed");
        let lead = engine
            .create_instance(&acme(), &user("ana"), "screen", "lead", &json!({"score": 3}))
            .await
            .expect("created");
        assert_eq!((lead.stage.as_str(), lead.status), ("rejected", InstanceStatus::Completed));
        let row = db.store.load_instance(&acme(), &lead.id).await.expect("loads").expect("exists");
        assert_eq!((row.stage.as_str(), row.ended_at), ("rejected", Some(now())));
        assert_eq!(row.status, nexus_crm::store::StoredInstanceStatus::Completed);
        let err = restarted(&db).await.fire(&acme(), &user("ana"), &lead.id, "win", None).await;
        assert!(matches!(err, Err(EngineError::Machine(MachineError::InstanceCompleted { .. }))), "{err:?}");

        let open = engine
            .create_instance(&acme(), &user("ana"), "screen", "lead", &json!({"score": 50}))
            .await
            .expect("created");
        let row = db.store.load_instance(&acme(), &open.id).await.expect("loads").expect("exists");
        assert_eq!((row.status, row.ended_at), (nexus_crm::store::StoredInstanceStatus::Active, None));
    })
    .await;
}

#[tokio::test]
async fn a_state_kept_by_one_engine_and_changed_by_another_is_never_trusted_blindly() {
    each_backend(|db| async move {
        let (ana, bo) = (engine(db.store.clone()), restarted(&db).await);
        ana.deploy(&acme(), TOGGLE).await.expect("deployed");
        let item =
            ana.create_instance(&acme(), &user("ana"), "toggle", "item", &Json::Null).await.expect("created");
        bo.fire(&acme(), &user("bo"), &item.id, "ab", None).await.expect("bo moves it to b");

        // Ana's engine still has it in `a` at version 1: `ba` would be refused there, not in the store.
        let view =
            ana.fire(&acme(), &user("ana"), &item.id, "ba", None).await.expect("decided on the stored state");
        assert_eq!((view.stage.as_str(), view.version), ("a", 3));

        // Bo's kept state (b, version 2) is stale too; `reset` applies to both, so his commit is
        // refused by the version check and recomputed on the stored state.
        let view = bo.fire(&acme(), &user("bo"), &item.id, "ab", None).await.expect("recomputed");
        assert_eq!((view.stage.as_str(), view.version), ("b", 4));
        let view = ana.fire(&acme(), &user("ana"), &item.id, "reset", None).await.expect("recomputed");
        assert_eq!((view.stage.as_str(), view.version), ("a", 5));
        let history = ana.history(&acme(), &item.id).await.expect("history");
        let resets = history
            .iter()
            .filter(|h| h.payload.as_ref().and_then(|p| p.get("transition")) == Some(&json!("reset")));
        assert_eq!(resets.count(), 1, "the refused attempt wrote nothing");

        // With an expected version the caller decides: a newer one than kept is read first, an
        // older one is a conflict reporting the stored version, even when the kept state agrees.
        let view = bo.fire(&acme(), &user("bo"), &item.id, "ab", Some(5)).await.expect("read first");
        assert_eq!(view.version, 6);
        let err = ana.fire(&acme(), &user("ana"), &item.id, "reset", Some(5)).await;
        assert!(matches!(err, Err(EngineError::Conflict { expected: 5, actual: 6, .. })), "{err:?}");
        let err = bo.fire(&acme(), &user("bo"), &item.id, "ba", Some(5)).await;
        assert!(matches!(err, Err(EngineError::Conflict { expected: 5, actual: 6, .. })), "{err:?}");
        assert_eq!(ana.instance(&acme(), &item.id).await.expect("reloads").version, 6);
    })
    .await;
}
