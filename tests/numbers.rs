//! Human-readable instance numbers (`entities.<name>.number`): assigned by the creating
//! transaction from a per-tenant, per-pattern, per-period counter; unique and gap-free under
//! concurrency and rollbacks; found by number. SQLite and PostgreSQL alike.

mod support;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use nexus_crm::engine::eval::Actor;
use nexus_crm::engine::service::{Engine, EngineError};
use nexus_crm::store::{
    AnyStore, Commit, InstanceWrite, NewInstance, NumberRequest, Store, StoreError, StoredInstanceStatus,
    TenantId, new_id,
};
use serde_json::json;
use support::db::each_backend;

const DEALS: &str = r#"{"id": "deals",
  "entities": {
    "deal": {"stages": ["open", "won"], "number": "DEAL-{YYYY}-{0000}"},
    "ticket": {"stages": ["open", "won"], "number": "TCK-{YYYY}{MM}-{00000}"},
    "note": {"stages": ["open", "won"]}
  },
  "transitions": {
    "win": {"entity": "deal", "from": "open", "to": "won", "trigger": "manual"},
    "close": {"entity": "ticket", "from": "open", "to": "won", "trigger": "manual"},
    "file": {"entity": "note", "from": "open", "to": "won", "trigger": "manual"}
  }}"#;

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).single().expect("a valid date")
}

/// An engine whose clock the test moves.
fn engine(store: AnyStore, clock: &Arc<Mutex<DateTime<Utc>>>) -> Engine<AnyStore> {
    let clock = Arc::clone(clock);
    Engine::new(store).with_clock(move || *clock.lock().expect("clock lock"))
}

fn acme() -> TenantId {
    TenantId::new("acme")
}

fn ann() -> Actor {
    Actor { id: "ann".into(), ..Actor::default() }
}

async fn create(engine: &Engine<AnyStore>, tenant: &TenantId, entity: &str) -> Option<String> {
    engine.create_instance(tenant, &ann(), "deals", entity, &json!({})).await.expect("created").number
}

#[tokio::test]
async fn numbers_follow_the_pattern_and_restart_each_period() {
    each_backend(|db| async move {
        let clock = Arc::new(Mutex::new(at(2026, 12, 30)));
        let engine = engine(db.store.clone(), &clock);
        engine.deploy(&acme(), DEALS).await.expect("deployed");

        assert_eq!(create(&engine, &acme(), "deal").await.as_deref(), Some("DEAL-2026-0001"));
        assert_eq!(create(&engine, &acme(), "deal").await.as_deref(), Some("DEAL-2026-0002"));
        assert_eq!(create(&engine, &acme(), "ticket").await.as_deref(), Some("TCK-202612-00001"));
        assert_eq!(create(&engine, &acme(), "note").await, None, "no pattern, no number");
        // Another tenant counts on its own.
        let globex = TenantId::new("globex");
        engine.deploy(&globex, DEALS).await.expect("deployed");
        assert_eq!(create(&engine, &globex, "deal").await.as_deref(), Some("DEAL-2026-0001"));

        // A new year restarts the yearly counter; a new month the monthly one.
        *clock.lock().expect("clock lock") = at(2027, 1, 2);
        assert_eq!(create(&engine, &acme(), "deal").await.as_deref(), Some("DEAL-2027-0001"));
        assert_eq!(create(&engine, &acme(), "ticket").await.as_deref(), Some("TCK-202701-00001"));
        *clock.lock().expect("clock lock") = at(2027, 2, 1);
        assert_eq!(create(&engine, &acme(), "ticket").await.as_deref(), Some("TCK-202702-00001"));
        assert_eq!(create(&engine, &acme(), "deal").await.as_deref(), Some("DEAL-2027-0002"));
    })
    .await;
}

#[tokio::test]
async fn an_instance_is_found_by_its_number_within_its_tenant_only() {
    each_backend(|db| async move {
        let clock = Arc::new(Mutex::new(at(2026, 3, 9)));
        let engine = engine(db.store.clone(), &clock);
        engine.deploy(&acme(), DEALS).await.expect("deployed");
        let created =
            engine.create_instance(&acme(), &ann(), "deals", "deal", &json!({})).await.expect("created");
        let fired = engine.fire(&acme(), &ann(), &created.id, "win", None).await.expect("fired");
        assert_eq!(fired.number.as_deref(), Some("DEAL-2026-0001"), "commands keep showing the number");

        // A new engine reads it from the database.
        let reopened = Engine::new(AnyStore::open(&db.url).await.expect("reopened"));
        let found = reopened.instance_by_number(&acme(), "DEAL-2026-0001").await.expect("found");
        assert_eq!((found.id.as_str(), found.stage.as_str()), (created.id.as_str(), "won"));
        assert_eq!(reopened.instance(&acme(), &created.id).await.expect("read").number, found.number);

        for (tenant, number) in [(TenantId::new("globex"), "DEAL-2026-0001"), (acme(), "DEAL-2026-0002")] {
            let error = reopened.instance_by_number(&tenant, number).await.expect_err("not found");
            assert!(matches!(&error, EngineError::UnknownNumber { number: n } if n == number), "{error:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn thirty_two_concurrent_creations_get_thirty_two_consecutive_numbers() {
    each_backend(|db| async move {
        let clock = Arc::new(Mutex::new(at(2026, 6, 1)));
        let engine = Arc::new(engine(db.store.clone(), &clock));
        engine.deploy(&acme(), DEALS).await.expect("deployed");
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..32 {
            let engine = Arc::clone(&engine);
            tasks.spawn(async move { create(&engine, &acme(), "deal").await });
        }
        let mut numbers: Vec<String> =
            tasks.join_all().await.into_iter().map(|n| n.expect("numbered")).collect();
        numbers.sort();
        let expected: Vec<String> = (1..=32).map(|n| format!("DEAL-2026-{n:04}")).collect();
        assert_eq!(numbers, expected);
    })
    .await;
}

fn numbered(id: &str) -> NewInstance {
    NewInstance {
        id: id.to_owned(),
        definition_id: "deals".into(),
        definition_version: 1,
        entity: "deal".into(),
        subject_type: None,
        subject_id: None,
        stage: "open".into(),
        status: StoredInstanceStatus::Active,
        data: json!({}),
        assignee: None,
        runs: Vec::new(),
        number: Some(NumberRequest {
            pattern: "D-{0000}".into(),
            period: String::new(),
            prefix: "D-".into(),
            suffix: String::new(),
            width: 4,
        }),
    }
}

async fn commit_numbered(store: &AnyStore, new: NewInstance) -> Result<Option<String>, StoreError> {
    let mut commit = Commit::new(at(2026, 1, 1));
    commit.instance = Some(InstanceWrite::Insert(new));
    Ok(store.commit_numbered(&acme(), commit).await?.number)
}

#[tokio::test]
async fn a_rolled_back_creation_leaves_no_gap() {
    each_backend(|db| async move {
        db.store.deploy_definition(&acme(), "deals", "Deals", DEALS).await.expect("deployed");
        let first = new_id();
        assert_eq!(
            commit_numbered(&db.store, numbered(&first)).await.expect("created").as_deref(),
            Some("D-0001")
        );
        // The counter moves first; the insert then fails on the duplicate id and the whole
        // transaction, counter included, rolls back.
        let error = commit_numbered(&db.store, numbered(&first)).await.expect_err("a duplicate id");
        assert!(matches!(error, StoreError::Duplicate { .. }), "{error:?}");
        let next = commit_numbered(&db.store, numbered(&new_id())).await.expect("created");
        assert_eq!(next.as_deref(), Some("D-0002"));
        let row = db.store.instance_by_number(&acme(), "D-0002").await.expect("read").expect("found");
        assert_eq!(row.number.as_deref(), Some("D-0002"));
        assert!(db.store.instance_by_number(&acme(), "D-0003").await.expect("read").is_none());
    })
    .await;
}
