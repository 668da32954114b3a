//! Assignment and delegation, timers (SLA clocks, reminders, escalations) and outbox delivery on
//! the engine, the same on SQLite and PostgreSQL (see `support::db`).

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use nexus_crm::engine::eval::Actor;
use nexus_crm::engine::machine::{MachineError, events};
use nexus_crm::engine::service::{
    ActionHandler, ActionResult, Delivered, Engine, EngineError, InstanceView, NewDelegation, TimerReport,
};
use nexus_crm::store::{
    AnyStore, OutboxStatus, Page, PendingItem, PendingQuery, PendingReason, SlaRow, SlaStatus, Store,
    StoredOutboxKind, TenantId,
};
use serde_json::json;
use support::db::each_backend;

const LEASE: Duration = Duration::from_secs(60);

// The dashboard follows chains as deep as any definition may ask (BR-005).
const _: () = assert!(nexus_crm::ir::MAX_DELEGATION_DEPTH <= nexus_crm::store::DELEGATION_DEPTH_BOUND);

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

fn engine(store: AnyStore, clock: &Clock) -> Engine<AnyStore> {
    let clock = clock.clone();
    Engine::new(store).with_clock(move || clock.now())
}

fn acme() -> TenantId {
    TenantId::new("acme")
}

fn user(id: &str) -> Actor {
    Actor { id: id.into(), ..Actor::default() }
}

fn agent(id: &str) -> Actor {
    Actor { id: id.into(), roles: vec!["support_agent".into()], permissions: vec!["tickets.resolve".into()] }
}

fn shipped(name: &str) -> String {
    let path = format!("{}/definitions/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn sla_rows(engine: &Engine<AnyStore>, id: &str) -> Vec<SlaRow> {
    engine.store().load_state(&acme(), id).await.expect("load").expect("the instance").sla
}

fn status_of(rows: &[SlaRow], scope: &str) -> Vec<SlaStatus> {
    rows.iter().filter(|r| r.scope == scope).map(|r| r.status).collect()
}

/// A ticket of the shipped support queue (deployed first), opened by agent `ana`.
async fn support_ticket(engine: &Engine<AnyStore>, data: serde_json::Value) -> InstanceView {
    engine.deploy(&acme(), &shipped("support-queue")).await.expect("deploy");
    engine.create_instance(&acme(), &agent("ana"), "support-queue", "ticket", &data).await.expect("create")
}

async fn timers(engine: &Engine<AnyStore>) -> TimerReport {
    engine.run_due_timers("w1", LEASE, 100).await.expect("a timer pass")
}

#[tokio::test]
async fn assignment_follows_delegations_and_refuses_self_assignment() {
    each_backend(|db| async move {
        let clock = Clock::new();
        let engine = engine(db.store, &clock);
        engine.deploy(&acme(), &shipped("sales-pipeline")).await.expect("deploy");
        let lead = engine
            .create_instance(&acme(), &user("ana"), "sales-pipeline", "lead", &json!({}))
            .await
            .expect("create");

        // BR-001: sales-pipeline does not allow self-assignment.
        let refused = engine.assign(&acme(), &user("ana"), &lead.id, "ana", None).await;
        assert!(
            matches!(refused, Err(EngineError::Machine(MachineError::SelfAssignment { ref user })) if user == "ana"),
            "{refused:?}"
        );
        let stale = engine.assign(&acme(), &user("ana"), &lead.id, "bob", Some(lead.version + 1)).await;
        assert!(matches!(stale, Err(EngineError::Conflict { .. })), "{stale:?}");

        let assigned = engine.assign(&acme(), &user("ana"), &lead.id, "bob", None).await.expect("assign");
        assert_eq!(assigned.assignee.as_deref(), Some("bob"));
        let history = engine.history(&acme(), &lead.id).await.expect("history");
        assert_eq!(history.last().map(|h| h.event.as_str()), Some(events::ASSIGNED));

        // Bob delegates to carol: carol's dashboard shows bob's lead.
        let query = PendingQuery::default();
        assert!(engine.pending_for_user(&acme(), "carol", &query).await.expect("dash").items.is_empty());
        let delegation = engine
            .add_delegation(
                &acme(),
                NewDelegation { delegator: "bob".into(), delegatee: "carol".into(), ..NewDelegation::default() },
            )
            .await
            .expect("delegate");
        let page = engine.pending_for_user(&acme(), "carol", &query).await.expect("dash");
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].instance.id, lead.id);
        assert_eq!(page.items[0].reason, PendingReason::Delegated { from: "bob".into() });
        // Another tenant sees nothing of it.
        let other = engine.pending_for_user(&TenantId::new("globex"), "carol", &query).await.expect("dash");
        assert!(other.items.is_empty());

        // BR-009: assigning to bob now lands with carol.
        let reassigned = engine.assign(&acme(), &user("ana"), &lead.id, "bob", None).await.expect("assign");
        assert_eq!(reassigned.assignee.as_deref(), Some("carol"));
        // Carol may not take it by assigning bob herself: the delegation leads back to her.
        let own = engine.assign(&acme(), &user("carol"), &lead.id, "bob", None).await;
        assert!(matches!(own, Err(EngineError::Machine(MachineError::SelfAssignment { .. }))), "{own:?}");

        engine.assign(&acme(), &user("ana"), &lead.id, "dan", None).await.expect("assign");
        engine.remove_delegation(&acme(), &delegation.id).await.expect("remove");
        assert!(engine.delegations(&acme()).await.expect("list").is_empty());
        assert!(engine.remove_delegation(&acme(), &delegation.id).await.is_err());

        // A delegation that ended yesterday no longer applies.
        let yesterday = clock.now().date_naive().pred_opt();
        engine
            .add_delegation(
                &acme(),
                NewDelegation {
                    delegator: "dan".into(),
                    delegatee: "erin".into(),
                    start: None,
                    end: yesterday,
                    entity: None,
                },
            )
            .await
            .expect("delegate");
        assert!(engine.pending_for_user(&acme(), "erin", &query).await.expect("dash").items.is_empty());

        for (delegator, delegatee, start, end) in [
            ("bob", "bob", None, None),
            ("", "carol", None, None),
            ("bob", "carol", clock.now().date_naive().succ_opt(), Some(clock.now().date_naive())),
        ] {
            let bad = NewDelegation {
                delegator: delegator.into(),
                delegatee: delegatee.into(),
                start,
                end,
                entity: None,
            };
            let refused = engine.add_delegation(&acme(), bad).await;
            assert!(matches!(refused, Err(EngineError::InvalidDelegation { .. })), "{refused:?}");
        }
        assert_eq!(engine.delegations(&acme()).await.expect("list").len(), 1);
    })
    .await;
}

#[tokio::test]
async fn the_dashboard_follows_delegations_only_as_deep_as_the_definition_allows() {
    each_backend(|db| async move {
        let clock = Clock::new();
        let engine = engine(db.store, &clock);
        // The shipped pipeline follows chains 3 deep (the default); a copy of it only 1 deep.
        let mut shallow: serde_json::Value = serde_json::from_str(&shipped("sales-pipeline")).expect("JSON");
        shallow["id"] = json!("shallow-pipeline");
        shallow["delegation"] = json!({"max_depth": 1});
        engine.deploy(&acme(), &shipped("sales-pipeline")).await.expect("deploy");
        engine.deploy(&acme(), &shallow.to_string()).await.expect("deploy");
        let mut leads = Vec::new();
        for definition in ["sales-pipeline", "shallow-pipeline"] {
            let lead = engine
                .create_instance(&acme(), &user("ana"), definition, "lead", &json!({}))
                .await
                .expect("create");
            engine.assign(&acme(), &user("ana"), &lead.id, "bob", None).await.expect("assign");
            leads.push(lead.id);
        }
        // bob → carol → dave: carol is one hop from bob's work, dave two.
        for (delegator, delegatee) in [("bob", "carol"), ("carol", "dave")] {
            let delegation = NewDelegation {
                delegator: delegator.into(),
                delegatee: delegatee.into(),
                ..NewDelegation::default()
            };
            engine.add_delegation(&acme(), delegation).await.expect("delegate");
        }
        let ids = |page: Page<PendingItem>| {
            let mut ids: Vec<String> = page.items.into_iter().map(|item| item.instance.id).collect();
            ids.sort();
            ids
        };
        let mut both = leads.clone();
        both.sort();
        let query = PendingQuery::default();
        let carol = engine.pending_for_user(&acme(), "carol", &query).await.expect("dash");
        assert_eq!(ids(carol), both);
        let dave = engine.pending_for_user(&acme(), "dave", &query).await.expect("dash");
        assert_eq!(ids(dave), [leads[0].clone()], "the shallow pipeline's lead is two hops from dave");
        for (definition, expected) in
            [("shallow-pipeline", vec![]), ("sales-pipeline", vec![leads[0].clone()])]
        {
            let only = PendingQuery { definition: Some(definition.into()), ..PendingQuery::default() };
            let dave = engine.pending_for_user(&acme(), "dave", &only).await.expect("dash");
            assert_eq!(ids(dave), expected, "{definition}");
        }
    })
    .await;
}

#[tokio::test]
async fn timers_mark_sla_clocks_and_record_escalations() {
    each_backend(|db| async move {
        let clock = Clock::new();
        let engine = engine(db.store, &clock);
        let ticket =
            support_ticket(&engine, json!({"subject": "Printer on fire", "priority": "normal"})).await;
        let ticket = engine.assign(&acme(), &user("lead"), &ticket.id, "ana", None).await.expect("assign");
        let rows = sla_rows(&engine, &ticket.id).await;
        assert_eq!(status_of(&rows, "new"), [SlaStatus::OnTrack]);
        assert_eq!(status_of(&rows, "ticket"), [SlaStatus::OnTrack]);
        let new_clock = rows.iter().find(|r| r.scope == "new").expect("the stage clock");
        assert_eq!(new_clock.duration_minutes, 60);
        assert_eq!(new_clock.at_risk_at, Some(clock.now() + TimeDelta::minutes(45)));
        assert_eq!(new_clock.breach_at, clock.now() + TimeDelta::hours(1));

        // Nothing is due yet.
        assert_eq!(timers(&engine).await, TimerReport::default());

        clock.advance(50);
        let report = timers(&engine).await;
        assert_eq!((report.claimed, report.fired), (1, 1), "{report:?}");
        assert_eq!(status_of(&sla_rows(&engine, &ticket.id).await, "new"), [SlaStatus::AtRisk]);

        // At two hours: the stage SLA breaches and the first escalation runs.
        clock.advance(70);
        let report = timers(&engine).await;
        assert_eq!(report.fired, 2, "{report:?}");
        assert_eq!(status_of(&sla_rows(&engine, &ticket.id).await, "new"), [SlaStatus::Breached]);
        let escalations = engine.store().escalations(&acme(), &ticket.id).await.expect("escalations");
        assert_eq!(escalations.len(), 1);
        assert_eq!(escalations[0].level, 1);
        assert_eq!(escalations[0].from_user_id.as_deref(), Some("ana"));
        assert_eq!(escalations[0].to_user_id.as_deref(), Some("role:support_agent"));
        let history = engine.history(&acme(), &ticket.id).await.expect("history");
        let names: Vec<&str> = history.iter().map(|h| h.event.as_str()).collect();
        assert!(names.contains(&events::SLA_AT_RISK) && names.contains(&events::SLA_BREACHED), "{names:?}");
        assert!(names.contains(&events::ESCALATED), "{names:?}");

        // Leaving the stage stops its breached clock; the entity clock runs on.
        engine.fire(&acme(), &agent("ana"), &ticket.id, "triage", None).await.expect("triage");
        let rows = sla_rows(&engine, &ticket.id).await;
        let stopped = rows.iter().find(|r| r.scope == "new").expect("the stage clock");
        assert_eq!((stopped.status, stopped.stopped_at), (SlaStatus::Breached, Some(clock.now())));
        assert_eq!(status_of(&rows, "ticket"), [SlaStatus::OnTrack]);

        // 5h30: the reminder before at-risk; 6h: the entity SLA is at risk. The escalations of
        // `triaged` fall due too, but their conditions do not hold: skipped, not recorded.
        clock.advance(4 * 60);
        let report = timers(&engine).await;
        assert_eq!((report.fired, report.claimed), (4, 4), "{report:?}");
        let history = engine.history(&acme(), &ticket.id).await.expect("history");
        assert!(history.iter().any(|h| h.event == events::REMINDER_SENT));
        assert_eq!(history.iter().filter(|h| h.event == events::ESCALATION_SKIPPED).count(), 2);
        assert_eq!(engine.store().escalations(&acme(), &ticket.id).await.expect("escalations").len(), 1);
        assert_eq!(status_of(&sla_rows(&engine, &ticket.id).await, "ticket"), [SlaStatus::AtRisk]);

        // Closed before eight hours: the entity SLA is met.
        for t in ["start_work", "resolve", "close"] {
            engine.fire(&acme(), &agent("ana"), &ticket.id, t, None).await.expect(t);
        }
        let rows = sla_rows(&engine, &ticket.id).await;
        assert_eq!(status_of(&rows, "ticket"), [SlaStatus::Met]);
        assert!(rows.iter().all(|r| r.stopped_at.is_some()), "{rows:?}");
        // Its remaining timers were cancelled with it: a day later nothing fires.
        clock.advance(24 * 60);
        assert_eq!(timers(&engine).await.claimed, 0);
    })
    .await;
}

#[tokio::test]
async fn a_stage_left_in_time_meets_its_sla_and_its_timers_never_fire() {
    each_backend(|db| async move {
        let clock = Clock::new();
        let engine = engine(db.store, &clock);
        let ticket = support_ticket(&engine, json!({"subject": "Password reset", "priority": "low"})).await;
        clock.advance(10);
        engine.fire(&acme(), &agent("ana"), &ticket.id, "triage", None).await.expect("triage");
        let rows = sla_rows(&engine, &ticket.id).await;
        assert_eq!(status_of(&rows, "new"), [SlaStatus::Met]);
        clock.advance(3 * 60);
        timers(&engine).await;
        // The timers of `new` were cancelled with it: no breach, no escalation, the clock stays met.
        let history = engine.history(&acme(), &ticket.id).await.expect("history");
        assert!(!history.iter().any(|h| h.event == events::SLA_BREACHED || h.event == events::ESCALATED));
        assert_eq!(status_of(&sla_rows(&engine, &ticket.id).await, "new"), [SlaStatus::Met]);

        // Another worker's claim holds for its lease: a second worker gets nothing meanwhile.
        clock.advance(3 * 60);
        let claimed = engine.store().due_timers(clock.now(), 10, "w2", LEASE).await.expect("claim");
        assert!(!claimed.is_empty());
        assert_eq!(timers(&engine).await.claimed, 0);
        clock.advance(2);
        let report = timers(&engine).await;
        assert_eq!(report.claimed, claimed.len(), "{report:?}");
    })
    .await;
}

/// Fails the first `failures` attempts of every action, then succeeds.
struct Flaky {
    failures: u32,
    attempts: AtomicU32,
}

impl ActionHandler for Flaky {
    fn handle<'a>(&'a self, action: &'a Delivered) -> ActionResult<'a> {
        Box::pin(async move {
            self.attempts.fetch_add(1, Ordering::SeqCst);
            if action.attempt <= self.failures { Err(format!("{} is down", action.name)) } else { Ok(()) }
        })
    }
}

#[tokio::test]
async fn the_outbox_delivers_events_after_commit_and_retries_actions() {
    each_backend(|db| async move {
        let clock = Clock::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let handler = Arc::new(Flaky { failures: 2, attempts: AtomicU32::new(0) });
        let engine = engine(db.store, &clock)
            .with_subscriber(move |event: &Delivered| log.lock().expect("log").push(event.name.clone()))
            .with_action_handler(SharedHandler(handler.clone()));
        engine.deploy(&acme(), &shipped("sales-pipeline")).await.expect("deploy");
        let lead = engine
            .create_instance(&acme(), &user("ana"), "sales-pipeline", "lead", &json!({"lead_score": 80}))
            .await
            .expect("create");
        // A refused command enqueues nothing.
        assert!(engine.fire(&acme(), &user("ana"), &lead.id, "win_deal", None).await.is_err());
        engine.fire(&acme(), &user("ana"), &lead.id, "make_contact", None).await.expect("contact");
        assert!(seen.lock().expect("log").is_empty(), "nothing is delivered before a pass");

        let report = engine.deliver_outbox("w1", LEASE, 100).await.expect("deliver");
        let events = seen.lock().expect("log").clone();
        assert_eq!(events.first().map(String::as_str), Some(events::INSTANCE_CREATED));
        assert!(events.iter().any(|e| e == events::TRANSITION_COMPLETED), "{events:?}");
        assert_eq!(report.events, events.len());
        // Each action (`send_welcome_email`, then those of the automatic `qualify_lead`) failed
        // once and waits for its backoff.
        let actions = report.retried;
        assert_eq!((report.actions, actions, report.claimed), (0, 3, events.len() + 3), "{report:?}");
        assert_eq!(engine.deliver_outbox("w1", LEASE, 100).await.expect("deliver").claimed, 0);
        clock.advance(1);
        let report = engine.deliver_outbox("w1", LEASE, 100).await.expect("deliver");
        assert_eq!(report.retried, actions, "{report:?}");
        clock.advance(2);
        let report = engine.deliver_outbox("w1", LEASE, 100).await.expect("deliver");
        assert_eq!(report.actions, actions, "{report:?}");
        assert_eq!(handler.attempts.load(Ordering::SeqCst), 3 * 3);
        // Events are delivered once.
        assert_eq!(seen.lock().expect("log").len(), events.len());
    })
    .await;
}

#[tokio::test]
async fn an_action_that_keeps_failing_is_dead_lettered() {
    each_backend(|db| async move {
        let clock = Clock::new();
        // Without a handler every action fails; sales-pipeline's actions keep the default 5 retries.
        let engine = engine(db.store, &clock);
        engine.deploy(&acme(), &shipped("sales-pipeline")).await.expect("deploy");
        let lead = engine
            .create_instance(&acme(), &user("ana"), "sales-pipeline", "lead", &json!({}))
            .await
            .expect("create");
        engine.fire(&acme(), &user("ana"), &lead.id, "make_contact", None).await.expect("contact");
        let mut dead = Vec::new();
        for _ in 0..6 {
            let report = engine.deliver_outbox("w1", LEASE, 100).await.expect("deliver");
            dead.extend(report.dead);
            clock.advance(60);
        }
        assert_eq!(dead.len(), 1, "{dead:?}");
        let id = dead[0].split(':').next().expect("an id");
        let item = engine.store().outbox_item(&acme(), id).await.expect("read").expect("the item");
        assert_eq!(
            (item.kind, item.status, item.attempts),
            (StoredOutboxKind::Action, OutboxStatus::Dead, 6)
        );
        assert_eq!(item.last_error.as_deref(), Some("no action handler is registered"));
        clock.advance(24 * 60);
        assert_eq!(engine.deliver_outbox("w1", LEASE, 100).await.expect("deliver").claimed, 0);
    })
    .await;
}

/// Lets the test keep a handle on the handler it registers.
struct SharedHandler(Arc<Flaky>);

impl ActionHandler for SharedHandler {
    fn handle<'a>(&'a self, action: &'a Delivered) -> ActionResult<'a> {
        self.0.handle(action)
    }
}

/// A parallel launch: the legal branch's token waits in `legal`, which has its own 2-hour SLA.
const BRANCH_SLA: &str = r#"{"id": "branch-sla",
  "entities": {"campaign": {"stages": ["ready",
    {"name": "legal", "sla": {"duration": "2 hours", "at_risk": "50%"}}, "live", "done"]}},
  "gateways": {"go": {"type": "parallel", "from": "ready", "join": "live", "branches": {
    "legal": {"stage": "legal"}, "sign_off": {"label": "Brand signs off"}}}},
  "transitions": {"legal_ok": {"from": "legal", "to": "live", "trigger": "manual"},
                  "finish": {"from": "live", "to": "done", "trigger": "manual"}}}"#;

/// A branch token's stage gets an SLA clock like the main stage's: started when the token enters,
/// marked by its timers, stopped (met or breached) when the token leaves.
#[tokio::test]
async fn a_branch_stage_has_its_own_sla_clock() {
    each_backend(|db| async move {
        let clock = Clock::new();
        let engine = engine(db.store, &clock);
        engine.deploy(&acme(), BRANCH_SLA).await.expect("deploy");
        for (minutes_in_legal, expected) in [(30, SlaStatus::Met), (150, SlaStatus::Breached)] {
            let campaign = engine
                .create_instance(&acme(), &user("pat"), "branch-sla", "campaign", &json!({}))
                .await
                .expect("create");
            engine.fire(&acme(), &user("pat"), &campaign.id, "go", None).await.expect("fork");
            let rows = sla_rows(&engine, &campaign.id).await;
            let legal: Vec<&SlaRow> = rows.iter().filter(|r| r.scope == "legal").collect();
            assert_eq!(legal.len(), 1, "{rows:?}");
            assert_eq!(legal[0].started_at, clock.now());
            assert_eq!(legal[0].breach_at, clock.now() + TimeDelta::hours(2));

            clock.advance(minutes_in_legal);
            timers(&engine).await;
            engine.fire(&acme(), &user("pat"), &campaign.id, "legal_ok", None).await.expect("legal ok");
            let rows = sla_rows(&engine, &campaign.id).await;
            assert_eq!(status_of(&rows, "legal"), [expected], "{rows:?}");
            let legal = rows.iter().find(|r| r.scope == "legal").expect("the clock");
            assert_eq!(legal.stopped_at, Some(clock.now()));
        }
    })
    .await;
}

/// A stage left only when time alone makes its condition true.
const SILENT: &str = r#"{"id": "silent", "dataSchema": {"last_reply": {"type": "datetime"}},
  "entities": {"ticket": {"stages": ["waiting", "closed"]}},
  "transitions": {"auto_close": {"from": "waiting", "to": "closed",
                                 "condition": "days_since(data.last_reply) > 7"}}}"#;

/// An instance waiting on a time-dependent automatic transition is re-checked hourly by the
/// timers; a re-check that changes nothing makes no new version.
#[tokio::test]
async fn a_time_dependent_transition_fires_with_nobody_touching_the_instance() {
    each_backend(|db| async move {
        let clock = Clock::new();
        let engine = engine(db.store, &clock);
        engine.deploy(&acme(), SILENT).await.expect("deploy");
        let data = json!({"last_reply": clock.now().to_rfc3339()});
        let ticket =
            engine.create_instance(&acme(), &user("pat"), "silent", "ticket", &data).await.expect("create");

        clock.advance(150);
        assert_eq!(timers(&engine).await.fired, 1);
        let view = engine.instance(&acme(), &ticket.id).await.expect("instance");
        assert_eq!((view.stage.as_str(), view.version), ("waiting", ticket.version), "no new version");

        clock.advance(8 * 24 * 60);
        assert_eq!(timers(&engine).await.fired, 1);
        let view = engine.instance(&acme(), &ticket.id).await.expect("instance");
        assert_eq!((view.stage.as_str(), view.version), ("closed", ticket.version + 1));
        let history = engine.history(&acme(), &ticket.id).await.expect("history");
        let close = history.iter().find(|h| h.event == events::TRANSITION_COMPLETED).expect("the close");
        assert_eq!(close.actor_id, None, "the system closed it, no user");
        // Nothing is left to re-check in a terminal stage.
        clock.advance(120);
        assert_eq!(timers(&engine).await.claimed, 0);
    })
    .await;
}
