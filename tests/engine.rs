//! The engine (machine + store) end to end, the same on SQLite and PostgreSQL (see `support::db`).

mod support;

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeZone, Utc};
use nexus_crm::engine::eval::Actor;
use nexus_crm::engine::machine::{InstanceStatus, MachineError, TokenStatus, Vote, events};
use nexus_crm::engine::service::{Engine, EngineError, InstanceView};
use nexus_crm::store::{AnyStore, HistoryRow, Store, TenantId};
use serde_json::{Map, Value as Json, json};
use support::db::{TestDb, each_backend};

/// The virtual clock: every call happens at the same instant.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).single().expect("a valid date")
}

fn engine(store: AnyStore) -> Engine<AnyStore> {
    Engine::new(store).with_clock(now)
}

fn acme() -> TenantId {
    TenantId::new("acme")
}

fn user(id: &str) -> Actor {
    Actor { id: id.into(), ..Actor::default() }
}

fn shipped(name: &str) -> String {
    let path = format!("{}/definitions/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn patch(value: Json) -> Map<String, Json> {
    match value {
        Json::Object(map) => map,
        other => panic!("a patch is an object, not {other}"),
    }
}

/// Prints how long the test body took on this backend (`--nocapture` shows it).
fn took(test: &str, db: &TestDb, started: Instant) {
    eprintln!("timing: {test} on {}: {:?}", db.backend(), started.elapsed());
}

/// The history's events, with the transition of `transition_completed` entries.
fn events_of(history: &[HistoryRow]) -> Vec<String> {
    history
        .iter()
        .map(|h| match h.payload.as_ref().and_then(|p| p.get("transition")).and_then(Json::as_str) {
            Some(t) if h.event == events::TRANSITION_COMPLETED => format!("{}:{t}", h.event),
            _ => h.event.clone(),
        })
        .collect()
}

fn completions(history: &[HistoryRow], transition: &str) -> usize {
    let wanted = format!("{}:{transition}", events::TRANSITION_COMPLETED);
    events_of(history).into_iter().filter(|e| *e == wanted).count()
}

/// A lead of the shipped sales pipeline, in `contacted` at version 2.
async fn contacted_lead(engine: &Engine<AnyStore>, tenant: &TenantId) -> InstanceView {
    let rep = user("ana");
    let lead = engine
        .create_instance(tenant, &rep, "sales-pipeline", "lead", &json!({"email": "kim@example.com"}))
        .await
        .expect("created");
    engine.fire(tenant, &rep, &lead.id, "make_contact", Some(lead.version)).await.expect("contacted")
}

#[tokio::test]
async fn lead_transitions_from_new_to_qualified_based_on_score() {
    each_backend(|db| async move {
        let started = Instant::now();
        let (engine, tenant, rep) = (engine(db.store.clone()), acme(), user("ana"));
        engine.deploy(&tenant, &shipped("sales-pipeline")).await.expect("deployed");

        let lead = engine
            .create_instance(&tenant, &rep, "sales-pipeline", "lead", &json!({"email": "kim@example.com"}))
            .await
            .expect("created");
        assert_eq!((lead.stage.as_str(), lead.version, lead.definition_version), ("new", 1, 1));
        let lead = engine.fire(&tenant, &rep, &lead.id, "make_contact", Some(1)).await.expect("contacted");
        assert_eq!((lead.stage.as_str(), lead.version), ("contacted", 2));

        let scored = engine
            .update_data(&tenant, &rep, &lead.id, 2, &patch(json!({"lead_score": 72})))
            .await
            .expect("saved");
        assert_eq!((scored.stage.as_str(), scored.version), ("qualified", 3), "qualify_lead is automatic");
        assert_eq!(scored.data["lead_score"], json!(72));
        assert_eq!(
            engine.instance(&tenant, &lead.id).await.expect("reloads"),
            scored,
            "what was saved is read back"
        );

        let history = engine.history(&tenant, &lead.id).await.expect("history");
        let transitions: Vec<String> =
            events_of(&history).into_iter().filter(|e| e.starts_with(events::TRANSITION_COMPLETED)).collect();
        assert_eq!(transitions, ["transition_completed:make_contact", "transition_completed:qualify_lead"]);
        let qualified = history.iter().rfind(|h| h.event == events::TRANSITION_COMPLETED).expect("an entry");
        assert_eq!(qualified.actor_id, None, "the automatic step is the system's");
        assert_eq!(qualified.before.as_ref().and_then(|b| b.get("stage")), Some(&json!("contacted")));
        assert_eq!(qualified.after.as_ref().and_then(|a| a.get("stage")), Some(&json!("qualified")));

        // The actions of both transitions are in the outbox, written by the same commits.
        let outbox = db
            .store
            .claim_outbox(now(), 100, "test", std::time::Duration::from_secs(60))
            .await
            .expect("outbox");
        let mut actions: Vec<&str> = outbox
            .iter()
            .filter(|o| o.kind == nexus_crm::store::StoredOutboxKind::Action)
            .map(|o| o.name.as_str())
            .collect();
        actions.sort_unstable();
        assert_eq!(actions, ["notify_sales_manager", "send_qualification_email", "send_welcome_email"]);
        took("lead_qualifies", &db, started);
    })
    .await;
}

#[tokio::test]
async fn deploying_is_versioned_and_instances_stay_pinned() {
    each_backend(|db| async move {
        let started = Instant::now();
        let (engine, tenant, rep) = (engine(db.store.clone()), acme(), user("ana"));
        let v1 = shipped("sales-pipeline");
        let first = engine.deploy(&tenant, &v1).await.expect("deployed");
        assert_eq!((first.id.as_str(), first.version, first.created), ("sales-pipeline", 1, true));
        let again = engine.deploy(&tenant, &v1).await.expect("deployed");
        assert_eq!((again.version, again.created), (1, false), "identical source is a no-op");

        let old = contacted_lead(&engine, &tenant).await;
        let v2 = v1.replace("data.lead_score > 50", "data.lead_score > 80");
        let second = engine.deploy(&tenant, &v2).await.expect("deployed");
        assert_eq!((second.version, second.created), (2, true));
        let new = contacted_lead(&engine, &tenant).await;
        assert_eq!((old.definition_version, new.definition_version), (1, 2));

        // 60 qualifies under version 1's condition, not under version 2's.
        let score = patch(json!({"lead_score": 60}));
        let old = engine.update_data(&tenant, &rep, &old.id, old.version, &score).await.expect("saved");
        let new = engine.update_data(&tenant, &rep, &new.id, new.version, &score).await.expect("saved");
        assert_eq!((old.stage.as_str(), new.stage.as_str()), ("qualified", "contacted"));

        // A fresh engine (empty cache) compiles each version from the table.
        let fresh = engine_on(&db).await;
        assert_eq!(fresh.instance(&tenant, &old.id).await.expect("loads").definition_version, 1);

        let err = engine.deploy(&tenant, r#"{"id": "broken", "entities": {"lead": {"stages": []}}"#).await;
        match err {
            Err(EngineError::InvalidDefinition { diagnostics }) => assert!(!diagnostics.is_empty()),
            other => panic!("expected InvalidDefinition, got {other:?}"),
        }
        took("deploy_versions", &db, started);
    })
    .await;
}

/// An engine on a store reopened from the URL: no state shared with any earlier engine.
async fn engine_on(db: &TestDb) -> Engine<AnyStore> {
    engine(AnyStore::open(&db.url).await.expect("reopened"))
}

#[tokio::test]
async fn majority_approval_on_the_deal_desk() {
    each_backend(|db| async move {
        let started = Instant::now();
        let (engine, tenant) = (engine(db.store.clone()), acme());
        let ae = Actor { roles: vec!["account_executive".into()], ..user("alex") };
        engine.deploy(&tenant, &shipped("deal-desk")).await.expect("deployed");
        let deal = engine
            .create_instance(
                &tenant,
                &ae,
                "deal-desk",
                "deal",
                &json!({"account": "Acme", "discount_pct": 20}),
            )
            .await
            .expect("created");
        assert_eq!(deal.stage, "desk_review", "submit_discounted is automatic");

        let pending = engine.fire(&tenant, &ae, &deal.id, "desk_approve", None).await.expect("requested");
        assert_eq!(pending.pending_approval.as_ref().map(|p| p.transition.as_str()), Some("desk_approve"));

        let err = engine.respond(&tenant, &user("mallory"), &deal.id, "desk_approve", Vote::Approve).await;
        assert!(matches!(err, Err(EngineError::Machine(MachineError::NotAnApprover { .. }))), "{err:?}");

        // Every response is a separate command on a reloaded instance.
        let mut stages = Vec::new();
        for approver in ["dana", "omar", "li"] {
            let deal = engine
                .respond(&tenant, &user(approver), &deal.id, "desk_approve", Vote::Approve)
                .await
                .expect("voted");
            stages.push(deal.stage);
        }
        assert_eq!(stages, ["desk_review", "desk_review", "approved"], "3 of 5 is a majority");
        let deal = engine.instance(&tenant, &deal.id).await.expect("reloads");
        assert_eq!((deal.stage.as_str(), deal.pending_approval), ("approved", None));

        let err = engine.respond(&tenant, &user("sam"), &deal.id, "desk_approve", Vote::Approve).await;
        assert!(matches!(err, Err(EngineError::Machine(MachineError::NoPendingApproval { .. }))), "{err:?}");

        let history = engine.history(&tenant, &deal.id).await.expect("history");
        assert_eq!(completions(&history, "desk_approve"), 1, "the stage changed once");
        let granted = history.iter().find(|h| h.event == events::APPROVAL_GRANTED).expect("granted");
        assert_eq!(
            granted.payload.as_ref().and_then(|p| p.get("requested_by")),
            Some(&json!("alex")),
            "the requester survives the reloads"
        );
        took("majority_approval", &db, started);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_transitions_on_one_instance_exactly_one_wins() {
    each_backend(|db| async move {
        let started = Instant::now();
        let (engine, tenant) = (Arc::new(engine(db.store.clone())), acme());
        engine.deploy(&tenant, &shipped("sales-pipeline")).await.expect("deployed");
        let lead = engine
            .create_instance(&tenant, &user("ana"), "sales-pipeline", "lead", &json!({}))
            .await
            .expect("created");

        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..32 {
            let (engine, tenant, id) = (engine.clone(), tenant.clone(), lead.id.clone());
            tasks.spawn(async move {
                engine.fire(&tenant, &user(&format!("rep{i}")), &id, "make_contact", Some(1)).await
            });
        }
        let (mut wins, mut conflicts) = (0, 0);
        while let Some(outcome) = tasks.join_next().await {
            match outcome.expect("the task ran") {
                Ok(view) => {
                    wins += 1;
                    assert_eq!((view.stage.as_str(), view.version), ("contacted", 2));
                }
                Err(EngineError::Conflict { expected: 1, actual: 2, .. }) => conflicts += 1,
                Err(other) => panic!("expected a conflict, got {other:?}"),
            }
        }
        assert_eq!((wins, conflicts), (1, 31));
        let history = engine.history(&tenant, &lead.id).await.expect("history");
        assert_eq!(completions(&history, "make_contact"), wins, "history rows equal wins");
        assert_eq!(engine.instance(&tenant, &lead.id).await.expect("reloads").version, 2);

        // Without an expected version only the store's lock stands between the racers: those
        // that read version 2 lose on it, those that read 3 find the stage moved on.
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..32 {
            let (engine, tenant, id) = (engine.clone(), tenant.clone(), lead.id.clone());
            tasks.spawn(async move {
                engine.fire(&tenant, &user(&format!("rep{i}")), &id, "lose_lead", None).await
            });
        }
        let mut wins = 0;
        while let Some(outcome) = tasks.join_next().await {
            match outcome.expect("the task ran") {
                Ok(_) => wins += 1,
                Err(
                    EngineError::Conflict { .. }
                    | EngineError::Machine(MachineError::InstanceCompleted { .. }),
                ) => {}
                Err(other) => panic!("expected a conflict or a completed instance, got {other:?}"),
            }
        }
        let history = engine.history(&tenant, &lead.id).await.expect("history");
        assert_eq!((wins, completions(&history, "lose_lead")), (1, 1));
        took("concurrent_32", &db, started);
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

#[tokio::test]
async fn a_ten_branch_parallel_join_survives_a_restart() {
    each_backend(|db| async move {
        let started = Instant::now();
        let (tenant, pat) = (acme(), user("pat"));
        let first = engine(db.store.clone());
        first.deploy(&tenant, &ten_branches()).await.expect("deployed");
        let launch =
            first.create_instance(&tenant, &pat, "ten", "launch", &Json::Null).await.expect("created");
        let forked = first.fire(&tenant, &pat, &launch.id, "go", None).await.expect("forked");
        assert_eq!(
            (forked.stage.as_str(), forked.tokens.len()),
            ("ready", 10),
            "the main stage waits at the fork"
        );
        for b in 0..5 {
            first
                .complete_branch(&tenant, &pat, &launch.id, "go", &format!("b{b}"))
                .await
                .expect("completed");
        }
        drop(first);

        // A new engine on a reopened store: the five running branches are all still there, and
        // so are the five completed ones.
        let second = engine_on(&db).await;
        let resumed = second.instance(&tenant, &launch.id).await.expect("reloads");
        let running: Vec<&str> = resumed
            .tokens
            .iter()
            .filter(|t| t.status == TokenStatus::Active)
            .map(|t| t.branch.as_str())
            .collect();
        assert_eq!(running, ["b5", "b6", "b7", "b8", "b9"]);
        assert_eq!(resumed.tokens.len(), 10);
        let err = second.complete_branch(&tenant, &pat, &launch.id, "go", "b2").await;
        assert!(matches!(err, Err(EngineError::Machine(MachineError::BranchNotActive { .. }))), "{err:?}");

        let join_started = Instant::now();
        let mut last = resumed;
        for b in 5..10 {
            assert_eq!(last.stage, "ready", "no join before the last branch");
            last = second
                .complete_branch(&tenant, &pat, &launch.id, "go", &format!("b{b}"))
                .await
                .expect("completed");
        }
        eprintln!("timing: last 5 branches + join on {}: {:?}", db.backend(), join_started.elapsed());
        assert_eq!((last.stage.as_str(), last.tokens.len()), ("live", 0));
        assert_eq!(second.instance(&tenant, &launch.id).await.expect("reloads"), last);

        let history = second.history(&tenant, &launch.id).await.expect("history");
        let count = |event: &str| history.iter().filter(|h| h.event == event).count();
        assert_eq!((count(events::BRANCH_COMPLETED), count(events::GATEWAY_JOINED)), (10, 1));
        let done =
            second.fire(&tenant, &pat, &launch.id, "finish", Some(last.version)).await.expect("finished");
        assert_eq!((done.stage.as_str(), done.status), ("done", InstanceStatus::Completed));
        took("parallel_join_10", &db, started);
    })
    .await;
}

#[tokio::test]
async fn bad_input_gives_typed_errors_and_writes_nothing() {
    each_backend(|db| async move {
        let started = Instant::now();
        let (engine, tenant, rep) = (engine(db.store.clone()), acme(), user("ana"));
        engine.deploy(&tenant, &shipped("sales-pipeline")).await.expect("deployed");
        let lead = contacted_lead(&engine, &tenant).await;
        let before = engine.history(&tenant, &lead.id).await.expect("history");

        let err = engine.fire(&tenant, &rep, &lead.id, "qualfy_lead", None).await;
        match err {
            Err(EngineError::Machine(MachineError::UnknownTransition { help, .. })) => {
                assert_eq!(help.as_deref(), Some("did you mean `qualify_lead`?"))
            }
            other => panic!("expected UnknownTransition, got {other:?}"),
        }
        let err = engine.fire(&tenant, &rep, &lead.id, "win_lead", None).await;
        assert!(matches!(err, Err(EngineError::Machine(MachineError::WrongStage { .. }))), "{err:?}");
        let err = engine
            .update_data(
                &tenant,
                &rep,
                &lead.id,
                lead.version,
                &patch(json!({"lead_score": 700, "email": "nope"})),
            )
            .await;
        match err {
            Err(EngineError::Machine(MachineError::InvalidData { violations })) => {
                assert_eq!(violations.len(), 2)
            }
            other => panic!("expected InvalidData, got {other:?}"),
        }
        let err = engine.update_data(&tenant, &rep, &lead.id, 1, &patch(json!({"lead_score": 10}))).await;
        assert!(matches!(err, Err(EngineError::Conflict { expected: 1, actual: 2, .. })), "{err:?}");

        let after = engine.instance(&tenant, &lead.id).await.expect("reloads");
        assert_eq!(after, lead, "nothing was written");
        assert_eq!(engine.history(&tenant, &lead.id).await.expect("history"), before);

        let err = engine.fire(&tenant, &rep, "no-such-instance", "make_contact", None).await;
        assert!(matches!(err, Err(EngineError::UnknownInstance { .. })), "{err:?}");
        let err = engine.create_instance(&tenant, &rep, "sales-pipeline", "leed", &json!({})).await;
        match err {
            Err(EngineError::UnknownEntity { help, .. }) => {
                assert_eq!(help.as_deref(), Some("did you mean `lead`?"))
            }
            other => panic!("expected UnknownEntity, got {other:?}"),
        }
        let err = engine.create_instance(&tenant, &rep, "no-such-definition", "lead", &json!({})).await;
        assert!(matches!(err, Err(EngineError::UnknownDefinition { .. })), "{err:?}");

        // Another tenant sees no such instance, and cannot change it.
        let globex = TenantId::new("globex");
        let err = engine.instance(&globex, &lead.id).await;
        assert!(matches!(err, Err(EngineError::UnknownInstance { .. })), "{err:?}");
        let err = engine.fire(&globex, &rep, &lead.id, "lose_lead", None).await;
        assert!(matches!(err, Err(EngineError::UnknownInstance { .. })), "{err:?}");
        let err = engine.history(&globex, &lead.id).await;
        assert!(matches!(err, Err(EngineError::UnknownInstance { .. })), "{err:?}");
        assert_eq!(engine.instance(&tenant, &lead.id).await.expect("reloads"), lead);
        took("bad_input", &db, started);
    })
    .await;
}
