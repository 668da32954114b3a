//! Deploying definitions over their lifetime (issue #11): canonical comparison, concurrent
//! deploys, versions, activation. The same on SQLite and PostgreSQL (see `support::db`).

mod support;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use nexus_crm::engine::eval::Actor;
use nexus_crm::engine::service::{Deployed, Engine, EngineError};
use nexus_crm::store::{AnyStore, Store, TenantId, source_checksum};
use serde_json::{Value as Json, json};
use support::db::each_backend;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).single().expect("a valid date")
}

fn engine(store: AnyStore) -> Engine<AnyStore> {
    Engine::new(store).with_clock(now)
}

fn acme() -> TenantId {
    TenantId::new("acme")
}

fn ana() -> Actor {
    Actor { id: "ana".into(), ..Actor::default() }
}

fn shipped(name: &str) -> String {
    let path = format!("{}/definitions/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `source` with its top-level keys in reverse order and printed compactly: the same content.
fn reordered(source: &str) -> String {
    let value: Json = serde_json::from_str(source).expect("JSON");
    let Json::Object(map) = value else { panic!("an object") };
    let reversed: serde_json::Map<String, Json> = map.into_iter().rev().collect();
    serde_json::to_string(&Json::Object(reversed)).expect("serializes")
}

/// `source` with another label: a change of content.
fn relabelled(source: &str, label: &str) -> String {
    let mut value: Json = serde_json::from_str(source).expect("JSON");
    value["label"] = json!(label);
    serde_json::to_string_pretty(&value).expect("serializes")
}

fn deployed(id: &str, version: u64, created: bool) -> Deployed {
    Deployed { id: id.to_owned(), version, created }
}

#[tokio::test]
async fn whitespace_and_key_order_do_not_make_a_new_version() {
    each_backend(|db| async move {
        let (engine, tenant) = (engine(db.store.clone()), acme());
        let source = shipped("sales-pipeline");
        assert_eq!(engine.deploy(&tenant, &source).await.unwrap(), deployed("sales-pipeline", 1, true));

        let reformatted = source.replace("\n", "\n\n  ");
        assert_ne!(reformatted, source);
        assert_eq!(engine.deploy(&tenant, &reformatted).await.unwrap(), deployed("sales-pipeline", 1, false));
        assert_eq!(
            engine.deploy(&tenant, &reordered(&source)).await.unwrap(),
            deployed("sales-pipeline", 1, false)
        );

        let changed = relabelled(&source, "Sales, second edition");
        assert_eq!(engine.deploy(&tenant, &changed).await.unwrap(), deployed("sales-pipeline", 2, true));
        assert_eq!(engine.deploy(&tenant, &changed).await.unwrap(), deployed("sales-pipeline", 2, false));
        // Going back is a change too: the old content becomes version 3, not version 1 again.
        assert_eq!(engine.deploy(&tenant, &source).await.unwrap(), deployed("sales-pipeline", 3, true));
    })
    .await;
}

#[tokio::test]
async fn versions_stored_before_canonical_hashes_are_still_recognised() {
    each_backend(|db| async move {
        let (engine, tenant) = (engine(db.store.clone()), acme());
        let source = shipped("sales-pipeline");
        // A row as deployed before migration 0006: raw checksum, no canonical hash.
        let sql = format!(
            "INSERT INTO crm_definitions (tenant_id, id, version, name, source, checksum, active, created_at) \
             VALUES ('acme', 'sales-pipeline', 1, 'Sales Pipeline CRM', '{}', '{}', {}, '2025-06-01T00:00:00.000000Z')",
            source.replace('\'', "''"),
            source_checksum(&source),
            if db.backend() == "sqlite" { "1" } else { "TRUE" },
        );
        db.raw_execute(&sql).await.expect("a legacy row");

        assert_eq!(engine.deploy(&tenant, &source).await.unwrap(), deployed("sales-pipeline", 1, false));
        assert_eq!(
            engine.deploy(&tenant, &reordered(&source)).await.unwrap(),
            deployed("sales-pipeline", 1, false),
            "compared by canonicalising the stored source"
        );
        let changed = relabelled(&source, "Sales, second edition");
        assert_eq!(engine.deploy(&tenant, &changed).await.unwrap(), deployed("sales-pipeline", 2, true));
        let versions = engine.definition_versions(&tenant, "sales-pipeline").await.unwrap();
        let active: Vec<(u64, bool)> = versions.iter().map(|v| (v.version, v.active)).collect();
        assert_eq!(active, [(1, false), (2, true)]);
    })
    .await;
}

/// Eight callers deploy the same content at once: exactly one new version, and every call
/// succeeds (on PostgreSQL about half used to fail with `duplicate definition version`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deploys_make_exactly_one_version_and_all_succeed() {
    each_backend(|db| async move {
        let engine = Arc::new(engine(db.store.clone()));
        let source = Arc::new(shipped("sales-pipeline"));
        for (round, content) in [(1, (*source).clone()), (2, relabelled(&source, "Sales v2"))] {
            let content = Arc::new(content);
            let barrier = Arc::new(tokio::sync::Barrier::new(8));
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let (engine, content, barrier) = (engine.clone(), content.clone(), barrier.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        engine.deploy(&acme(), &content).await
                    })
                })
                .collect();
            let mut created = 0;
            for task in tasks {
                let done = task.await.expect("the task ran").unwrap_or_else(|e| panic!("round {round}: {e}"));
                assert_eq!(done.version, round, "every caller sees the one version");
                created += usize::from(done.created);
            }
            assert_eq!(created, 1, "round {round} on {}: exactly one caller created it", db.backend());
        }
        let versions = db.store.definition_versions(&acme(), "sales-pipeline").await.unwrap();
        assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), [1, 2]);
    })
    .await;
}

#[tokio::test]
async fn a_deactivated_definition_starts_nothing_but_running_instances_continue() {
    each_backend(|db| async move {
        let (engine, tenant) = (engine(db.store.clone()), acme());
        let source = shipped("sales-pipeline");
        engine.deploy(&tenant, &source).await.unwrap();
        let lead = engine
            .create_instance(&tenant, &ana(), "sales-pipeline", "lead", &json!({}))
            .await
            .expect("created while active");

        let row = engine.deactivate_definition(&tenant, "sales-pipeline").await.unwrap();
        assert!(!row.active);
        let error = engine
            .create_instance(&tenant, &ana(), "sales-pipeline", "lead", &json!({}))
            .await
            .expect_err("deactivated");
        assert!(
            matches!(&error, EngineError::DefinitionInactive { id } if id == "sales-pipeline"),
            "{error:?}"
        );
        let code = miette::Diagnostic::code(&error).map(|c| c.to_string());
        assert_eq!(code.as_deref(), Some("crm::engine::definition_inactive"));

        let moved = engine.fire(&tenant, &ana(), &lead.id, "make_contact", None).await.expect("still runs");
        assert_eq!(moved.stage, "contacted");

        // A deploy does not undo a deactivation.
        let v2 = engine.deploy(&tenant, &relabelled(&source, "Sales v2")).await.unwrap();
        assert_eq!(v2, deployed("sales-pipeline", 2, true));
        assert!(!engine.definition(&tenant, "sales-pipeline", None).await.unwrap().active);
        assert!(matches!(
            engine.create_instance(&tenant, &ana(), "sales-pipeline", "lead", &json!({})).await,
            Err(EngineError::DefinitionInactive { .. })
        ));

        let row = engine.activate_definition(&tenant, "sales-pipeline").await.unwrap();
        assert_eq!((row.version, row.active), (2, true));
        let fresh = engine
            .create_instance(&tenant, &ana(), "sales-pipeline", "lead", &json!({}))
            .await
            .expect("active again");
        assert_eq!(fresh.definition_version, 2, "new instances start on the latest version");
        assert_eq!(engine.instance(&tenant, &lead.id).await.unwrap().definition_version, 1, "pinned");
    })
    .await;
}

#[tokio::test]
async fn unknown_definitions_are_reported_as_such() {
    each_backend(|db| async move {
        let (engine, tenant) = (engine(db.store.clone()), acme());
        for result in [
            engine.activate_definition(&tenant, "nope").await,
            engine.deactivate_definition(&tenant, "nope").await,
            engine.definition(&tenant, "nope", None).await,
        ] {
            assert!(
                matches!(&result, Err(EngineError::UnknownDefinition { id }) if id == "nope"),
                "{result:?}"
            );
        }
        assert!(matches!(
            engine.definition_versions(&tenant, "nope").await,
            Err(EngineError::UnknownDefinition { .. })
        ));
        engine.deploy(&tenant, &shipped("sales-pipeline")).await.unwrap();
        assert!(matches!(
            engine.definition(&tenant, "sales-pipeline", Some(7)).await,
            Err(EngineError::UnknownDefinition { id }) if id == "sales-pipeline@7"
        ));
        // Another tenant sees nothing of it.
        assert!(matches!(
            engine.deactivate_definition(&TenantId::new("globex"), "sales-pipeline").await,
            Err(EngineError::UnknownDefinition { .. })
        ));
    })
    .await;
}

#[tokio::test]
async fn an_invalid_definition_deploys_nothing() {
    each_backend(|db| async move {
        let (engine, tenant) = (engine(db.store.clone()), acme());
        let broken = shipped("sales-pipeline").replace("\"to\": \"contacted\"", "\"to\": \"contactd\"");
        let error = engine.deploy(&tenant, &broken).await.expect_err("invalid");
        assert!(matches!(&error, EngineError::InvalidDefinition { diagnostics } if !diagnostics.is_empty()));
        assert!(engine.definitions(&tenant).await.unwrap().is_empty());
    })
    .await;
}
