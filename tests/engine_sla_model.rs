//! The SLA model of issue #14 on the engine, the same on SQLite and PostgreSQL: a duration chosen
//! from data is recomputed from the clock's start when the data changes, and the `crm_sla` row
//! follows (same clock, new due times); due times count a calendar's working hours.

mod support;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use nexus_crm::engine::eval::Actor;
use nexus_crm::engine::service::Engine;
use nexus_crm::store::{AnyStore, SlaRow, Store, TenantId};
use serde_json::json;
use support::db::each_backend;

fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, day, hour, minute, 0).single().expect("a valid time")
}

fn source() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/definitions/support-entitlements.json");
    std::fs::read_to_string(path).expect("the shipped definition")
}

async fn clocks(engine: &Engine<AnyStore>, id: &str, scope: &str) -> Vec<SlaRow> {
    let state = engine.store().load_state(&TenantId::new("acme"), id).await.expect("load").expect("the case");
    state.sla.into_iter().filter(|c| c.scope == scope).collect()
}

#[tokio::test]
async fn a_priority_change_retimes_the_running_clock_from_its_start() {
    each_backend(|db| async move {
        // Monday 2026-01-05 09:00 in London (UTC in winter): the desk opens.
        let now = Arc::new(Mutex::new(at(5, 9, 0)));
        let clock = now.clone();
        let engine = Engine::new(db.store).with_clock(move || *clock.lock().expect("clock"));
        let acme = TenantId::new("acme");
        let nia = Actor { id: "nia".into(), ..Actor::default() };
        engine.deploy(&acme, &source()).await.expect("deploy");
        let data = json!({"subject": "Reports are slow", "priority": "normal"});
        let case =
            engine.create_instance(&acme, &nia, "support-entitlements", "case", &data).await.expect("create");
        let before = clocks(&engine, &case.id, "new").await;
        assert_eq!(before.len(), 1);
        assert_eq!(before[0].breach_at, at(5, 17, 0), "8 working hours");
        assert_eq!(before[0].at_risk_at, Some(at(5, 15, 0)), "75% of them");

        *now.lock().expect("clock") += TimeDelta::hours(1);
        let patch = json!({"priority": "high"});
        let patch = patch.as_object().expect("an object").clone();
        engine.update_data(&acme, &nia, &case.id, case.version, &patch).await.expect("update");
        let after = clocks(&engine, &case.id, "new").await;
        assert_eq!(after.len(), 1, "the same clock, not a new one: {after:?}");
        assert_eq!((after[0].id.as_str(), after[0].started_at), (before[0].id.as_str(), at(5, 9, 0)));
        assert_eq!(after[0].breach_at, at(5, 13, 0), "4 working hours from 09:00, not from 10:00");
        assert_eq!(after[0].at_risk_at, Some(at(5, 12, 0)));
        assert_eq!(after[0].duration_minutes, 240);

        // The resolution clock (2 working days, not chosen by data) is untouched.
        let case_clock = clocks(&engine, &case.id, "case").await;
        assert_eq!(
            case_clock.first().map(|c| c.breach_at),
            Some(at(6, 17, 0)),
            "2 working days: Tuesday's close"
        );
    })
    .await;
}
