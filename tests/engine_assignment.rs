//! Assignment the engine performs (issue #14): automatic strategies on entering a stage, a
//! round-robin rotation shared by several engines on one database, candidates enforced on manual
//! assignment, `assign` actions that really assign, and reminders counted back from stage SLAs —
//! the same on SQLite and PostgreSQL (see `support::db`).

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use nexus_crm::engine::eval::Actor;
use nexus_crm::engine::machine::{MachineError, events};
use nexus_crm::engine::service::{Engine, EngineError, InstanceView};
use nexus_crm::store::{AnyStore, Store, StoredOutboxKind, TenantId};
use serde_json::json;
use support::db::each_backend;

/// A virtual clock the test moves.
#[derive(Clone)]
struct Clock(Arc<Mutex<DateTime<Utc>>>);

impl Clock {
    fn new() -> Self {
        Self(Arc::new(Mutex::new(Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).single().expect("a valid date"))))
    }

    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock lock")
    }

    fn advance(&self, minutes: i64) {
        *self.0.lock().expect("clock lock") += TimeDelta::minutes(minutes);
    }
}

const DESK: &str = r#"{
  "id": "help-desk",
  "dataSchema": { "owner": { "type": "string" } },
  "entities": {
    "ticket": {
      "stages": ["open", { "name": "working", "sla": { "duration": "4 hours" } }, "review", "done"],
      "terminal": ["done"],
      "automation": {
        "reminders": [{ "before": "1 hour", "target": "sla_breach", "action": "nudge" }]
      },
      "assignment": { "users": ["ana", "bob", "cara"], "strategy": "round_robin" }
    },
    "task": {
      "stages": ["todo", "finished"],
      "terminal": ["finished"],
      "assignment": { "roles": ["agent"], "strategy": "least_loaded" }
    },
    "note": {
      "stages": ["draft", "filed"],
      "assignment": { "roles": ["clerk"] }
    }
  },
  "transitions": {
    "start": { "from": "open", "to": "working" },
    "hand_to_owner": { "from": "working", "to": "review", "actions": ["give_to_owner"] },
    "finish": { "from": ["working", "review"], "to": "done" },
    "finish_task": { "from": "todo", "to": "finished" },
    "file": { "from": "draft", "to": "filed" }
  },
  "actions": {
    "nudge": { "type": "notify", "to": ["assignee"], "message": "Due in an hour" },
    "give_to_owner": { "type": "assign", "to": ["data.owner"] }
  }
}"#;

fn tenant() -> TenantId {
    TenantId::new("acme")
}

fn user(id: &str) -> Actor {
    Actor { id: id.into(), ..Actor::default() }
}

fn engine(store: AnyStore, clock: &Clock) -> Engine<AnyStore> {
    let clock = clock.clone();
    let directory: HashMap<String, Vec<String>> = HashMap::from([
        ("agent".to_owned(), vec!["dan".to_owned(), "eve".to_owned()]),
        ("clerk".to_owned(), vec!["fay".to_owned()]),
    ]);
    Engine::new(store).with_clock(move || clock.now()).with_directory(directory)
}

async fn create(engine: &Engine<AnyStore>, entity: &str, data: serde_json::Value) -> InstanceView {
    engine.create_instance(&tenant(), &user("boss"), "help-desk", entity, &data).await.expect("create")
}

async fn events_of(engine: &Engine<AnyStore>, id: &str) -> Vec<String> {
    engine.history(&tenant(), id).await.expect("history").into_iter().map(|h| h.event).collect()
}

#[tokio::test]
async fn round_robin_takes_turns_across_two_engines_on_one_database() {
    each_backend(|db| async move {
        let clock = Clock::new();
        let first = engine(db.store, &clock);
        // A second engine with its own connections: only the database is shared.
        let second = engine(AnyStore::open(&db.url).await.expect("a second store"), &clock);
        first.deploy(&tenant(), DESK).await.expect("deploy");
        let mut assignees = Vec::new();
        for i in 0..6 {
            let engine = if i % 2 == 0 { &first } else { &second };
            let ticket = create(engine, "ticket", json!({})).await;
            assignees.push(ticket.assignee.clone().unwrap_or_default());
            let stored = engine.instance(&tenant(), &ticket.id).await.expect("read back");
            assert_eq!(stored.assignee, ticket.assignee, "the assignment is committed with the creation");
        }
        assert_eq!(assignees, ["ana", "bob", "cara", "ana", "bob", "cara"]);

        // The history says who was chosen and which stage asked.
        let ticket = create(&second, "ticket", json!({})).await;
        let history = second.history(&tenant(), &ticket.id).await.expect("history");
        let assigned = history.iter().find(|h| h.event == events::ASSIGNED).expect("an assignment");
        assert_eq!(assigned.after, Some(json!({"assignee": "ana"})));
        assert_eq!(assigned.payload.as_ref().map(|p| p["stage"].clone()), Some(json!("open")));
        assert_eq!(assigned.actor_id, None, "the system assigned it");
    })
    .await;
}

#[tokio::test]
async fn least_loaded_picks_the_candidate_with_fewest_active_instances() {
    each_backend(|db| async move {
        let clock = Clock::new();
        let engine = engine(db.store, &clock);
        engine.deploy(&tenant(), DESK).await.expect("deploy");
        let t1 = create(&engine, "task", json!({})).await;
        let t2 = create(&engine, "task", json!({})).await;
        assert_eq!((t1.assignee.as_deref(), t2.assignee.as_deref()), (Some("dan"), Some("eve")));
        // Dan finishes his task: he has the fewest open ones again.
        engine.fire(&tenant(), &user("dan"), &t1.id, "finish_task", None).await.expect("finish");
        let t3 = create(&engine, "task", json!({})).await;
        assert_eq!(t3.assignee.as_deref(), Some("dan"));
        let t4 = create(&engine, "task", json!({})).await;
        assert_eq!(t4.assignee.as_deref(), Some("dan"), "a tie goes to the first listed");
    })
    .await;
}

#[tokio::test]
async fn manual_assignment_is_limited_to_the_candidates() {
    each_backend(|db| async move {
        let clock = Clock::new();
        let engine = engine(db.store, &clock);
        engine.deploy(&tenant(), DESK).await.expect("deploy");
        let ticket = create(&engine, "ticket", json!({})).await;
        let refused = engine.assign(&tenant(), &user("boss"), &ticket.id, "mallory", None).await;
        assert!(
            matches!(refused, Err(EngineError::Machine(MachineError::NotACandidate { ref user, .. })) if user == "mallory"),
            "{refused:?}"
        );
        let assigned = engine.assign(&tenant(), &user("boss"), &ticket.id, "cara", None).await.expect("a listed user");
        assert_eq!(assigned.assignee.as_deref(), Some("cara"));

        // A role's members come from the directory; anyone else is refused.
        let task = create(&engine, "task", json!({})).await;
        let refused = engine.assign(&tenant(), &user("boss"), &task.id, "cara", None).await;
        assert!(matches!(refused, Err(EngineError::Machine(MachineError::NotACandidate { .. }))), "{refused:?}");
        let assigned = engine.assign(&tenant(), &user("boss"), &task.id, "eve", None).await.expect("an agent");
        assert_eq!(assigned.assignee.as_deref(), Some("eve"));

        // A manual entity assigns nobody by itself.
        let note = create(&engine, "note", json!({})).await;
        assert_eq!(note.assignee, None);
        assert!(!events_of(&engine, &note.id).await.iter().any(|e| e == events::ASSIGNED));
    })
    .await;
}

#[tokio::test]
async fn an_assign_action_assigns_the_instance() {
    each_backend(|db| async move {
        let clock = Clock::new();
        let engine = engine(db.store, &clock);
        engine.deploy(&tenant(), DESK).await.expect("deploy");
        let ticket = create(&engine, "ticket", json!({"owner": "zoe"})).await;
        assert_eq!(ticket.assignee.as_deref(), Some("ana"));
        engine.fire(&tenant(), &user("ana"), &ticket.id, "start", None).await.expect("start");
        let handed =
            engine.fire(&tenant(), &user("ana"), &ticket.id, "hand_to_owner", None).await.expect("hand");
        assert_eq!(handed.assignee.as_deref(), Some("zoe"), "read from data.owner when the action ran");
        let history = engine.history(&tenant(), &ticket.id).await.expect("history");
        let last = history.iter().rev().find(|h| h.event == events::ASSIGNED).expect("an assignment");
        assert_eq!(last.before, Some(json!({"assignee": "ana"})));
        assert_eq!(last.after, Some(json!({"assignee": "zoe"})));
        assert_eq!(last.payload.as_ref().map(|p| p["action"].clone()), Some(json!("give_to_owner")));
        // Carried out by the engine: nothing is queued for the application.
        let queued = engine.store().outbox_items(&tenant(), &Default::default()).await.expect("outbox");
        assert!(
            !queued.iter().any(|o| o.kind == StoredOutboxKind::Action && o.name == "give_to_owner"),
            "{queued:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_reminder_counts_back_from_the_stage_sla_when_the_entity_has_none() {
    each_backend(|db| async move {
        let clock = Clock::new();
        let engine = engine(db.store, &clock);
        engine.deploy(&tenant(), DESK).await.expect("deploy");
        let lease = Duration::from_secs(60);
        let ticket = create(&engine, "ticket", json!({})).await;
        engine.fire(&tenant(), &user("ana"), &ticket.id, "start", None).await.expect("start");
        clock.advance(2 * 60 + 59);
        engine.run_due_timers("w", lease, 100).await.expect("timers");
        assert!(!events_of(&engine, &ticket.id).await.iter().any(|e| e == events::REMINDER_SENT));
        clock.advance(1);
        engine.run_due_timers("w", lease, 100).await.expect("timers");
        let reminded = events_of(&engine, &ticket.id).await;
        assert_eq!(reminded.iter().filter(|e| *e == events::REMINDER_SENT).count(), 1, "{reminded:?}");

        // Leaving the stage drops the reminder: a second ticket finished in time is never reminded.
        let other = create(&engine, "ticket", json!({})).await;
        engine.fire(&tenant(), &user("bob"), &other.id, "start", None).await.expect("start");
        engine.fire(&tenant(), &user("bob"), &other.id, "finish", None).await.expect("finish");
        clock.advance(5 * 60);
        engine.run_due_timers("w", lease, 100).await.expect("timers");
        assert!(!events_of(&engine, &other.id).await.iter().any(|e| e == events::REMINDER_SENT));
    })
    .await;
}
