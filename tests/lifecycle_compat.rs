//! Compatibility of a new version with the live one and its instances (`CRM08xx`): fixture pairs
//! (`tests/fixtures/compat/live.json` against each other file there) over live instances in
//! every interesting place, with insta snapshots of every finding. SQLite and PostgreSQL.

mod support;

use nexus_crm::engine::eval::Actor;
use nexus_crm::engine::service::{Compatibility, Engine};
use nexus_crm::report::{self, Report};
use nexus_crm::store::{AnyStore, TenantId};
use serde_json::json;
use support::db::each_backend;

fn fixture(name: &str) -> (String, String) {
    let path = format!("tests/fixtures/compat/{name}.json");
    let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    (path, std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}")))
}

fn acme() -> TenantId {
    TenantId::new("acme")
}

fn ana() -> Actor {
    Actor { id: "ana".into(), ..Actor::default() }
}

/// The live version deployed, with instances: one in `contacted` (data that later versions
/// narrow), one awaiting approval of `approve`, one with the `diligence` gateway running, one
/// fresh in `new`.
async fn live(engine: &Engine<AnyStore>) {
    let tenant = acme();
    engine.deploy(&tenant, &fixture("live").1).await.expect("deployed");
    let create = |data: serde_json::Value| {
        let (engine, tenant) = (engine, tenant.clone());
        async move { engine.create_instance(&tenant, &ana(), "deals", "deal", &data).await.expect("created") }
    };
    let contacted = create(json!({"score": 80, "source": "event", "note": "met at the fair"})).await;
    engine.fire(&tenant, &ana(), &contacted.id, "contact", None).await.expect("contacted");

    let approving = create(json!({"score": 40, "source": "web"})).await;
    for step in ["contact", "submit", "approve"] {
        engine.fire(&tenant, &ana(), &approving.id, step, None).await.expect(step);
    }

    let diligence = create(json!({"source": "referral", "note": "big one"})).await;
    engine.fire(&tenant, &ana(), &diligence.id, "diligence", None).await.expect("gateway started");

    create(json!({"score": 20, "source": "web"})).await;
}

/// The findings as `crm check --format concise` and the human format print them.
fn rendered(path: &str, source: &str, found: &Compatibility) -> String {
    let reports = [Report::new(path, source, found.diagnostics.clone())];
    let (mut concise, mut human) = (String::new(), String::new());
    report::concise(&reports, &mut concise).expect("renders");
    report::human(&reports, miette::GraphicalTheme::unicode_nocolor(), &mut human).expect("renders");
    format!(
        "live version: {:?}, instances: {}, strands: {}\n--- concise\n{concise}--- human\n{human}",
        found.live_version,
        found.instances,
        found.strands()
    )
}

macro_rules! snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!($name, $value);
        })
    };
}

#[tokio::test]
async fn every_finding_against_live_instances() {
    each_backend(|db| async move {
        let engine = Engine::new(db.store.clone());
        live(&engine).await;
        for (name, strands) in [
            ("stage_renamed", true),
            ("transition_removed", true),
            ("data_narrowed", true),
            ("branch_removed", true),
            ("field_removed", false),
            ("compatible", false),
        ] {
            let (path, source) = fixture(name);
            let found = engine.compatibility(&acme(), &source).await.expect("compared");
            assert_eq!(found.strands(), strands, "{name} on {}: {:?}", db.backend(), found.diagnostics);
            assert_eq!((found.live_version, found.instances), (Some(1), 4));
            snapshot!(format!("compat_{name}"), rendered(&path, &source, &found));
        }
        // Another tenant has no live version: nothing to compare with.
        let (_, source) = fixture("stage_renamed");
        let other = engine.compatibility(&TenantId::new("globex"), &source).await.expect("compared");
        assert_eq!((other.live_version, other.diagnostics.len()), (None, 0));
    })
    .await;
}

#[tokio::test]
async fn completed_instances_are_not_live() {
    each_backend(|db| async move {
        let engine = Engine::new(db.store.clone());
        let tenant = acme();
        engine.deploy(&tenant, &fixture("live").1).await.expect("deployed");
        let deal =
            engine.create_instance(&tenant, &ana(), "deals", "deal", &json!({})).await.expect("created");
        engine.fire(&tenant, &ana(), &deal.id, "contact", None).await.expect("contacted");
        engine.fire(&tenant, &ana(), &deal.id, "lose", None).await.expect("lost");
        let found = engine.compatibility(&tenant, &fixture("stage_renamed").1).await.expect("compared");
        assert!(found.diagnostics.is_empty(), "{:?}", found.diagnostics);
        assert_eq!(found.instances, 0);
    })
    .await;
}
