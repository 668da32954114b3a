//! Contacts, leads, opportunities and campaigns on the engine, and lead → opportunity
//! conversion, the same on SQLite and PostgreSQL (see `support::db`).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use nexus_crm::engine::eval::Actor;
use nexus_crm::engine::service::{
    Delivered, Engine, EngineError, NewCampaign, NewContact, NewOpportunity, domain_events,
};
use nexus_crm::store::{AnyStore, EntityQuery, Store, TenantId};
use serde_json::json;
use support::db::each_backend;

fn engine(store: AnyStore, seen: &Arc<Mutex<Vec<String>>>) -> Engine<AnyStore> {
    let log = seen.clone();
    Engine::new(store)
        .with_clock(|| Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).single().expect("a valid date"))
        .with_subscriber(move |e: &Delivered| log.lock().expect("log").push(e.name.clone()))
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

fn jane() -> NewContact {
    NewContact {
        name: "Jane Doe".into(),
        email: Some("jane@acme.example".into()),
        company: Some("Acme".into()),
        score: Some(72.0),
        ..NewContact::default()
    }
}

fn deal() -> NewOpportunity {
    NewOpportunity {
        value: 42_000.0,
        currency: "EUR".into(),
        probability: 0.4,
        close_date: NaiveDate::from_ymd_opt(2026, 3, 31),
        data: json!({"deal_value": 42000}),
    }
}

#[tokio::test]
async fn a_qualified_lead_converts_once_into_an_opportunity() {
    each_backend(|db| async move {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let engine = engine(db.store, &seen);
        engine.deploy(&acme(), &shipped("sales-pipeline")).await.expect("deploy");
        let lead = engine
            .create_lead(&acme(), &ana(), "sales-pipeline", jane(), &json!({"lead_score": 72}))
            .await
            .expect("lead");
        assert_eq!((lead.record.status.as_str(), lead.instance.entity.as_str()), ("lead", "lead"));
        let contact_id = lead.record.id.clone();
        assert_eq!(engine.contact(&acme(), &contact_id).await.expect("read").value, lead.record);

        // Not qualified yet: refused, nothing written.
        let early = engine.convert_lead(&acme(), &ana(), &contact_id, deal()).await;
        assert!(matches!(early, Err(EngineError::NotConvertible { .. })), "{early:?}");
        engine.fire(&acme(), &ana(), &lead.instance.id, "make_contact", None).await.expect("contact");
        assert_eq!(engine.instance(&acme(), &lead.instance.id).await.expect("lead").stage, "qualified");

        for (bad, why) in [
            (NewOpportunity { value: -1.0, ..deal() }, "value"),
            (NewOpportunity { probability: 1.5, ..deal() }, "probability"),
            (NewOpportunity { currency: "euro".into(), ..deal() }, "currency"),
        ] {
            let refused = engine.convert_lead(&acme(), &ana(), &contact_id, bad).await;
            assert!(matches!(refused, Err(EngineError::InvalidRecord { .. })), "{why}: {refused:?}");
        }
        // Data the opportunity's schema refuses: nothing is written either.
        let bad_data = NewOpportunity { data: json!({"deal_value": -5}), ..deal() };
        let refused = engine.convert_lead(&acme(), &ana(), &contact_id, bad_data).await;
        assert!(matches!(refused, Err(EngineError::Machine(_))), "{refused:?}");
        let none = engine.store().opportunities(&acme(), &EntityQuery::default()).await.expect("list");
        assert!(none.is_empty());

        let converted = engine.convert_lead(&acme(), &ana(), &contact_id, deal()).await.expect("convert");
        let opportunity = engine.opportunity(&acme(), &converted.record.id).await.expect("read").value;
        assert_eq!(opportunity.contact_id, contact_id);
        assert_eq!(
            (opportunity.value, opportunity.currency.as_str(), opportunity.probability),
            (42_000.0, "EUR", 0.4)
        );
        assert_eq!(opportunity.close_date, NaiveDate::from_ymd_opt(2026, 3, 31));
        assert_eq!(opportunity.instance_id.as_deref(), Some(converted.instance.id.as_str()));
        assert_eq!(
            (converted.instance.entity.as_str(), converted.instance.stage.as_str()),
            ("opportunity", "proposal")
        );
        let contact = engine.contact(&acme(), &contact_id).await.expect("read").value;
        assert_eq!(contact.status, "converted");
        assert_eq!(contact.data["opportunity_id"], json!(opportunity.id));
        let history = engine.history(&acme(), &converted.instance.id).await.expect("history");
        let link = history.iter().find(|h| h.event == domain_events::CONVERTED_FROM_LEAD).expect("the link");
        assert_eq!(
            link.payload.as_ref().map(|p| p["lead_instance_id"].clone()),
            Some(json!(lead.instance.id))
        );

        let again = engine.convert_lead(&acme(), &ana(), &contact_id, deal()).await;
        assert!(matches!(again, Err(EngineError::NotConvertible { .. })), "{again:?}");
        let all = engine.store().opportunities(&acme(), &EntityQuery::default()).await.expect("list");
        assert_eq!(all.len(), 1);

        // Another tenant sees none of it.
        let other = engine.contact(&TenantId::new("globex"), &contact_id).await;
        assert!(matches!(other, Err(EngineError::UnknownRecord { kind: "contact", .. })), "{other:?}");

        engine.deliver_outbox("w1", Duration::from_secs(60), 500).await.expect("deliver");
        let events = seen.lock().expect("log").clone();
        for name in
            [domain_events::LEAD_CREATED, domain_events::LEAD_CONVERTED, domain_events::OPPORTUNITY_CREATED]
        {
            assert_eq!(events.iter().filter(|e| *e == name).count(), 1, "{name} in {events:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn contacts_and_campaigns_are_checked_and_recorded() {
    each_backend(|db| async move {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let engine = engine(db.store, &seen);
        engine.deploy(&acme(), &shipped("deal-desk")).await.expect("deploy");
        for bad in [
            NewContact { name: " ".into(), ..jane() },
            NewContact { email: Some("jane at acme".into()), ..jane() },
            NewContact { data: json!([1]), ..jane() },
        ] {
            let refused = engine.create_contact(&acme(), bad).await;
            assert!(
                matches!(refused, Err(EngineError::InvalidRecord { kind: "contact", .. })),
                "{refused:?}"
            );
        }
        let contact = engine.create_contact(&acme(), jane()).await.expect("contact");
        assert_eq!(contact.status, "contact");
        let listed = engine.store().contacts(&acme(), &EntityQuery::default()).await.expect("list");
        assert_eq!(listed.len(), 1);
        // deal-desk has no `lead` entity: a lead cannot start, and nothing is written.
        let refused = engine.create_lead(&acme(), &ana(), "deal-desk", jane(), &json!({})).await;
        assert!(matches!(refused, Err(EngineError::UnknownEntity { .. })), "{refused:?}");
        assert_eq!(engine.store().contacts(&acme(), &EntityQuery::default()).await.expect("list").len(), 1);

        let launch = NewCampaign {
            name: "Spring launch".into(),
            kind: "email".into(),
            start: NaiveDate::from_ymd_opt(2026, 3, 1),
            end: NaiveDate::from_ymd_opt(2026, 3, 31),
            data: json!({"account": "Acme", "channels": ["email"]}),
        };
        let backwards = NewCampaign { end: NaiveDate::from_ymd_opt(2026, 2, 1), ..launch.clone() };
        let refused = engine.create_campaign(&acme(), &ana(), "deal-desk", backwards).await;
        assert!(matches!(refused, Err(EngineError::InvalidRecord { kind: "campaign", .. })), "{refused:?}");
        let campaign = engine.create_campaign(&acme(), &ana(), "deal-desk", launch).await.expect("campaign");
        assert_eq!(
            (campaign.instance.entity.as_str(), campaign.instance.stage.as_str()),
            ("campaign", "planning")
        );
        let stored = engine.campaign(&acme(), &campaign.record.id).await.expect("read").value;
        assert_eq!(stored, campaign.record);
        engine
            .fire(&acme(), &ana(), &campaign.instance.id, "schedule_campaign", None)
            .await
            .expect("schedule");

        engine.deliver_outbox("w1", Duration::from_secs(60), 500).await.expect("deliver");
        let events = seen.lock().expect("log").clone();
        assert!(events.contains(&domain_events::CONTACT_CREATED.to_owned()), "{events:?}");
        assert!(events.contains(&domain_events::CAMPAIGN_CREATED.to_owned()), "{events:?}");
    })
    .await;
}
