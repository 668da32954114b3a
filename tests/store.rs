//! The store's behaviour, the same on SQLite and PostgreSQL (see `support::db`).

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use nexus_crm::store::*;
use serde_json::json;
use support::db::{TestDb, each_backend};

const SOURCE: &str = r#"{"id": "sales", "entities": {}}"#;

/// A fixed clock: minute `m` of 2025-03-01 09:00 UTC (with microseconds, to prove they survive).
fn at(m: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-03-01T09:00:00.123456Z").unwrap().to_utc() + TimeDelta::minutes(m)
}

fn acme() -> TenantId {
    TenantId::new("acme")
}

fn globex() -> TenantId {
    TenantId::new("globex")
}

async fn deploy(store: &AnyStore, tenant: &TenantId) -> u64 {
    store.deploy_definition(tenant, "sales", "Sales", SOURCE).await.unwrap().version
}

fn new_instance(assignee: Option<&str>) -> NewInstance {
    NewInstance {
        id: new_id(),
        definition_id: "sales".into(),
        definition_version: 1,
        entity: "lead".into(),
        subject_type: None,
        subject_id: None,
        stage: "new".into(),
        status: StoredInstanceStatus::Active,
        data: json!({"score": 10}),
        assignee: assignee.map(str::to_owned),
        runs: Vec::new(),
        number: None,
    }
}

fn created(event: &str) -> NewHistory {
    NewHistory { event: event.into(), actor_id: Some("ann".into()), ..NewHistory::default() }
}

/// Creates an instance (with one history entry) at `when`; its id.
async fn create(store: &AnyStore, tenant: &TenantId, new: NewInstance, when: DateTime<Utc>) -> String {
    let id = new.id.clone();
    let mut commit = Commit::new(when);
    commit.instance = Some(InstanceWrite::Insert(new));
    commit.history.push(created("created"));
    assert_eq!(store.commit(tenant, commit).await.unwrap(), 1);
    id
}

/// A commit moving `row` to `state` at `when`, with one history entry.
fn transition(row: &InstanceRow, state: &str, when: DateTime<Utc>) -> Commit {
    let mut commit = Commit::new(when);
    commit.instance = Some(InstanceWrite::Update(InstanceUpdate {
        id: row.id.clone(),
        expected_version: row.version,
        stage: state.into(),
        status: row.status,
        data: row.data.clone(),
        assignee: row.assignee.clone(),
        stage_entered_at: when,
        ended_at: row.ended_at,
        runs: Vec::new(),
    }));
    commit.history.push(NewHistory {
        event: "transition".into(),
        before: Some(json!({"state": row.stage})),
        after: Some(json!({"state": state})),
        actor_id: Some("ann".into()),
        payload: None,
    });
    commit
}

async fn load(store: &AnyStore, tenant: &TenantId, id: &str) -> InstanceRow {
    store.load_instance(tenant, id).await.unwrap().expect("the instance exists")
}

#[tokio::test]
async fn migrations_are_idempotent() {
    each_backend(|db: TestDb| async move {
        db.store.migrate().await.unwrap();
        db.store.migrate().await.unwrap();
        let again = AnyStore::open(&db.url).await.unwrap();
        assert!(again.definitions(&acme()).await.unwrap().is_empty());
        again.close().await;
    })
    .await;
}

#[tokio::test]
async fn open_routes_by_url() {
    let error = AnyStore::open("mysql://localhost/crm").await.unwrap_err();
    assert!(matches!(error, StoreError::UnsupportedUrl { .. }), "{error:?}");
    let memory = AnyStore::in_memory().await.unwrap();
    assert_eq!(memory.backend(), "sqlite");
    assert_eq!(deploy(&memory, &acme()).await, 1);
}

#[tokio::test]
async fn deploying_identical_source_is_a_no_op_and_changes_make_versions() {
    each_backend(|db: TestDb| async move {
        let store = &db.store;
        let first = store.deploy_definition(&acme(), "sales", "Sales", SOURCE).await.unwrap();
        assert_eq!(first, DeployedVersion { version: 1, created: true });
        let same = store.deploy_definition(&acme(), "sales", "Sales", SOURCE).await.unwrap();
        assert_eq!(same, DeployedVersion { version: 1, created: false });
        let changed = r#"{"id": "sales", "entities": {"lead": {}}}"#;
        let second = store.deploy_definition(&acme(), "sales", "Sales v2", changed).await.unwrap();
        assert_eq!(second, DeployedVersion { version: 2, created: true });

        let old = store.definition(&acme(), "sales", Some(1)).await.unwrap().unwrap();
        assert_eq!((old.source.as_str(), old.active), (SOURCE, false));
        assert_eq!(old.checksum.len(), 64);
        let latest = store.definition(&acme(), "sales", None).await.unwrap().unwrap();
        assert_eq!((latest.version, latest.name.as_str(), latest.active), (2, "Sales v2", true));
        let all = store.definitions(&acme()).await.unwrap();
        assert_eq!(all.iter().map(|d| (d.id.as_str(), d.version)).collect::<Vec<_>>(), [("sales", 2)]);

        // Another tenant sees none of it and numbers its own versions.
        assert!(store.definition(&globex(), "sales", None).await.unwrap().is_none());
        assert_eq!(deploy(store, &globex()).await, 1);
    })
    .await;
}

#[tokio::test]
async fn commit_inserts_and_updates_everything_in_it() {
    each_backend(|db: TestDb| async move {
        let store = &db.store;
        deploy(store, &acme()).await;
        let id = create(store, &acme(), new_instance(Some("ann")), at(0)).await;
        let row = load(store, &acme(), &id).await;
        assert_eq!((row.stage.as_str(), row.version, row.status), ("new", 1, StoredInstanceStatus::Active));
        assert_eq!((row.started_at, row.updated_at, row.stage_entered_at), (at(0), at(0), at(0)));
        assert_eq!(row.data, json!({"score": 10}));

        let mut commit = transition(&row, "qualifying", at(5));
        commit.tokens.push(TokenWrite::Start {
            id: "tok-1".into(),
            gateway: "checks".into(),
            branch: "credit".into(),
            stage: Some("credit_check".into()),
        });
        commit.tokens.push(TokenWrite::Start {
            id: "tok-2".into(),
            gateway: "checks".into(),
            branch: "legal".into(),
            stage: None,
        });
        commit.approvals.push(ApprovalWrite::Request {
            transition: "qualify".into(),
            assignees: vec!["bob".into(), "cy".into()],
            requested_by: Some("ann".into()),
        });
        commit.approvals.push(ApprovalWrite::Respond {
            id: new_id(),
            transition: "qualify".into(),
            approver: "bob".into(),
            decision: StoredDecision::Approve,
            comment: Some("fine".into()),
        });
        commit.timers.push(TimerWrite::Schedule {
            id: "timer-1".into(),
            kind: "sla_breach".into(),
            trigger_at: at(60),
            payload: json!({"sla": "sla-1"}),
        });
        commit.sla.push(SlaWrite::Start {
            id: "sla-1".into(),
            scope: "qualifying".into(),
            duration_minutes: 60,
            started_at: at(5),
            at_risk_at: Some(at(45)),
            breach_at: at(65),
        });
        commit.escalations.push(NewEscalation {
            id: new_id(),
            level: 1,
            from_user_id: Some("ann".into()),
            to_user_id: Some("dee".into()),
            reason: "stale".into(),
        });
        commit.assignment = Some(AssignmentChange::Assign { user_id: "ann".into(), assigned_by: None });
        commit.outbox.push(NewOutbox {
            id: new_id(),
            kind: StoredOutboxKind::Event,
            name: "lead.qualifying".into(),
            payload: json!({"id": id}),
        });
        assert_eq!(store.commit(&acme(), commit).await.unwrap(), 2);

        let state = store.load_state(&acme(), &id).await.unwrap().unwrap();
        assert_eq!((state.instance.stage.as_str(), state.instance.version), ("qualifying", 2));
        assert_eq!(state.instance.updated_at, at(5));
        assert_eq!(state.tokens.iter().map(|t| t.branch.as_str()).collect::<Vec<_>>(), ["credit", "legal"]);
        assert_eq!(state.approvals.len(), 1);
        let pending = &state.approvals[0];
        assert_eq!((pending.request.round, pending.request.status), (1, RequestStatus::Pending));
        assert_eq!(pending.request.assignees, ["bob", "cy"]);
        assert_eq!(pending.request.requested_by.as_deref(), Some("ann"));
        assert_eq!(pending.responses.iter().map(|r| r.approver.as_str()).collect::<Vec<_>>(), ["bob"]);
        assert_eq!(state.timers.len(), 1);
        assert_eq!((state.timers[0].trigger_at, state.timers[0].tenant.as_str()), (at(60), "acme"));
        assert_eq!((state.sla[0].status, state.sla[0].breach_at), (SlaStatus::OnTrack, at(65)));
        assert_eq!(state.assignment.as_ref().map(|a| a.user_id.as_str()), Some("ann"));
        assert_eq!(store.escalations(&acme(), &id).await.unwrap()[0].to_user_id.as_deref(), Some("dee"));

        // Complete one branch, resolve the approval, cancel the timer, meet the SLA, reassign.
        let row = load(store, &acme(), &id).await;
        let mut commit = transition(&row, "qualified", at(10));
        commit.tokens.push(TokenWrite::Set {
            id: "tok-1".into(),
            stage: None,
            status: StoredTokenStatus::Completed,
            entered_at: at(10),
        });
        commit
            .approvals
            .push(ApprovalWrite::Resolve { transition: "qualify".into(), status: RequestStatus::Approved });
        commit.timers.push(TimerWrite::Cancel { id: "timer-1".into() });
        commit.sla.push(SlaWrite::Set {
            id: "sla-1".into(),
            status: SlaStatus::Met,
            stopped_at: Some(at(10)),
        });
        commit.assignment =
            Some(AssignmentChange::Assign { user_id: "bob".into(), assigned_by: Some("ann".into()) });
        assert_eq!(store.commit(&acme(), commit).await.unwrap(), 3);

        let state = store.load_state(&acme(), &id).await.unwrap().unwrap();
        // The gateway still runs: its finished token is read back too, or a join could forget it.
        let tokens: Vec<_> = state.tokens.iter().map(|t| (t.id.as_str(), t.status, t.entered_at)).collect();
        assert_eq!(
            tokens,
            [("tok-1", StoredTokenStatus::Completed, at(10)), ("tok-2", StoredTokenStatus::Active, at(5))]
        );
        assert_eq!(state.tokens[0].completed_at, Some(at(10)));
        assert!(state.approvals.is_empty() && state.timers.is_empty());
        assert_eq!((state.sla[0].status, state.sla[0].stopped_at), (SlaStatus::Met, Some(at(10))));
        assert_eq!(
            state.assignment.map(|a| (a.user_id, a.assigned_by)),
            Some(("bob".into(), Some("ann".into())))
        );

        let history = store.history(&acme(), &id).await.unwrap();
        assert_eq!(history.iter().map(|h| h.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(
            history.iter().map(|h| h.event.as_str()).collect::<Vec<_>>(),
            ["created", "transition", "transition"]
        );
        assert_eq!(history[2].after, Some(json!({"state": "qualified"})));
        assert_eq!(history[2].created_at, at(10));
    })
    .await;
}

#[tokio::test]
async fn a_stale_version_is_a_conflict_and_writes_nothing() {
    each_backend(|db: TestDb| async move {
        let store = &db.store;
        deploy(store, &acme()).await;
        let id = create(store, &acme(), new_instance(None), at(0)).await;
        let stale = load(store, &acme(), &id).await;
        store.commit(&acme(), transition(&stale, "contacted", at(1))).await.unwrap();

        let mut late = transition(&stale, "lost", at(2));
        late.outbox.push(NewOutbox {
            id: new_id(),
            kind: StoredOutboxKind::Event,
            name: "x".into(),
            payload: json!({}),
        });
        let error = store.commit(&acme(), late).await.unwrap_err();
        assert!(matches!(error, StoreError::Conflict { expected: 1, actual: 2, .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!("instance `{id}` was changed concurrently: expected version 1, found 2")
        );
        assert_eq!(load(store, &acme(), &id).await.stage, "contacted");
        assert_eq!(store.history(&acme(), &id).await.unwrap().len(), 2);
        assert!(store.claim_outbox(at(10), 10, "w", Duration::from_secs(60)).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commits_on_one_version_have_exactly_one_winner() {
    each_backend(|db: TestDb| async move {
        let store = Arc::new(db.store.clone());
        deploy(&store, &acme()).await;
        let id = create(&store, &acme(), new_instance(None), at(0)).await;
        let row = load(&store, &acme(), &id).await;
        let tasks: Vec<_> = (0..32)
            .map(|n| {
                let (store, commit) = (store.clone(), transition(&row, &format!("stage-{n}"), at(1)));
                tokio::spawn(async move { store.commit(&acme(), commit).await })
            })
            .collect();
        let mut wins = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(version) => {
                    assert_eq!(version, 2);
                    wins += 1;
                }
                Err(StoreError::Conflict { expected: 1, actual: 2, .. }) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(wins, 1);
        assert_eq!(store.history(&acme(), &id).await.unwrap().len(), 1 + wins);
        assert_eq!(load(&store, &acme(), &id).await.version, 2);
    })
    .await;
}

#[tokio::test]
async fn a_failure_midway_leaves_nothing_half_written() {
    each_backend(|db: TestDb| async move {
        let store = &db.store;
        deploy(store, &acme()).await;
        let id = create(store, &acme(), new_instance(None), at(0)).await;
        let row = load(store, &acme(), &id).await;

        // Instance, history and a token are written before the duplicate token id fails.
        let mut commit = transition(&row, "qualified", at(1));
        for _ in 0..2 {
            commit.tokens.push(TokenWrite::Start {
                id: "same".into(),
                gateway: "g".into(),
                branch: "b".into(),
                stage: None,
            });
        }
        commit.outbox.push(NewOutbox {
            id: new_id(),
            kind: StoredOutboxKind::Action,
            name: "email".into(),
            payload: json!({}),
        });
        let error = store.commit(&acme(), commit).await.unwrap_err();
        assert!(matches!(error, StoreError::Duplicate { what: "token id" }), "{error:?}");

        let state = store.load_state(&acme(), &id).await.unwrap().unwrap();
        assert_eq!((state.instance.stage.as_str(), state.instance.version), ("new", 1));
        assert!(state.tokens.is_empty());
        assert_eq!(store.history(&acme(), &id).await.unwrap().len(), 1);
        assert!(store.claim_outbox(at(10), 10, "w", Duration::from_secs(60)).await.unwrap().is_empty());

        // Same for a failure at the very end: completing a token that does not exist.
        let mut commit = transition(&row, "qualified", at(1));
        commit.tokens.push(TokenWrite::Set {
            id: "nope".into(),
            stage: None,
            status: StoredTokenStatus::Completed,
            entered_at: at(1),
        });
        let error = store.commit(&acme(), commit).await.unwrap_err();
        assert!(matches!(error, StoreError::NotFound { what: "active token", .. }), "{error:?}");
        assert_eq!(load(store, &acme(), &id).await.version, 1);

        // And the store is still usable afterwards (the write lock was released).
        store.commit(&acme(), transition(&row, "qualified", at(2))).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn history_refuses_updates_and_deletes() {
    each_backend(|db: TestDb| async move {
        deploy(&db.store, &acme()).await;
        let id = create(&db.store, &acme(), new_instance(None), at(0)).await;
        for sql in ["UPDATE crm_history SET event = 'forged'", "DELETE FROM crm_history"] {
            let error = db.raw_execute(sql).await.unwrap_err();
            assert!(matches!(error, StoreError::AppendOnly), "{sql}: {error:?}");
        }
        if db.backend() == "postgres" {
            let error = db.raw_execute("TRUNCATE crm_history CASCADE").await.unwrap_err();
            assert!(matches!(error, StoreError::AppendOnly), "{error:?}");
        }
        let history = db.store.history(&acme(), &id).await.unwrap();
        assert_eq!((history.len(), history[0].event.as_str()), (1, "created"));
    })
    .await;
}

#[tokio::test]
async fn every_read_and_write_is_tenant_scoped() {
    each_backend(|db: TestDb| async move {
        let store = &db.store;
        deploy(store, &acme()).await;
        deploy(store, &globex()).await;
        let id = create(store, &acme(), new_instance(Some("ann")), at(0)).await;
        let row = load(store, &acme(), &id).await;

        assert!(store.load_instance(&globex(), &id).await.unwrap().is_none());
        assert!(store.load_state(&globex(), &id).await.unwrap().is_none());
        assert!(store.history(&globex(), &id).await.unwrap().is_empty());
        let page = store.pending_for_user(&globex(), "ann", &PendingQuery::default()).await.unwrap();
        assert!(page.items.is_empty());

        let error = store.commit(&globex(), transition(&row, "hijacked", at(1))).await.unwrap_err();
        assert!(matches!(error, StoreError::NotFound { what: "instance", .. }), "{error:?}");
        assert_eq!(load(store, &acme(), &id).await.stage, "new");

        // Another tenant cannot create an instance under the same id, nor use this one's definition.
        let mut copy = new_instance(None);
        copy.id = id.clone();
        let mut commit = Commit::new(at(1));
        commit.instance = Some(InstanceWrite::Insert(copy.clone()));
        assert!(store.commit(&globex(), commit).await.is_ok(), "ids are per tenant");
        copy.definition_id = "unknown".into();
        copy.id = new_id();
        let mut commit = Commit::new(at(1));
        commit.instance = Some(InstanceWrite::Insert(copy));
        let error = store.commit(&acme(), commit).await.unwrap_err();
        assert!(matches!(error, StoreError::Database { .. }), "{error:?}");
        assert_eq!(error.to_string(), "database error (a referenced row does not exist)");
    })
    .await;
}

#[tokio::test]
async fn keyset_pagination_returns_every_row_once_in_order() {
    each_backend(|db: TestDb| async move {
        let store = &db.store;
        deploy(store, &acme()).await;
        let mut expected = Vec::new();
        for n in 0..23 {
            // Pairs share a timestamp, so the id decides between them.
            let id = create(store, &acme(), new_instance(Some("ann")), at(n / 2)).await;
            expected.push((at(n / 2), id));
        }
        create(store, &acme(), new_instance(Some("bob")), at(3)).await;
        expected.sort();
        for (sort, direction) in [
            (SortKey::UpdatedAt, Direction::Asc),
            (SortKey::UpdatedAt, Direction::Desc),
            (SortKey::StartedAt, Direction::Asc),
            (SortKey::StartedAt, Direction::Desc),
        ] {
            let mut query = PendingQuery { sort, direction, limit: 5, ..PendingQuery::default() };
            let mut seen = Vec::new();
            loop {
                let page = store.pending_for_user(&acme(), "ann", &query).await.unwrap();
                assert!(page.items.len() <= 5);
                assert!(page.items.iter().all(|i| i.reason == PendingReason::Assigned));
                seen.extend(page.items.into_iter().map(|i| (i.instance.updated_at, i.instance.id)));
                match page.next {
                    Some(next) => query.after = Some(next),
                    None => break,
                }
            }
            let mut want = expected.clone();
            if direction == Direction::Desc {
                want.reverse();
            }
            assert_eq!(seen, want, "{sort:?} {direction:?}");
        }

        let bad = PendingQuery { after: Some(Cursor::from_string("garbage")), ..PendingQuery::default() };
        let error = store.pending_for_user(&acme(), "ann", &bad).await.unwrap_err();
        assert!(matches!(error, StoreError::InvalidCursor), "{error:?}");
    })
    .await;
}

#[tokio::test]
async fn dashboard_includes_delegated_and_approval_items_and_filters() {
    each_backend(|db: TestDb| async move {
        let store = &db.store;
        deploy(store, &acme()).await;
        let today = NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
        let delegate = |id: &str,
                        from: &str,
                        to: &str,
                        start: Option<NaiveDate>,
                        end: Option<NaiveDate>,
                        entity: Option<&str>| {
            DelegationRow {
                id: id.into(),
                delegator: from.into(),
                delegatee: to.into(),
                start_date: start,
                end_date: end,
                entity: entity.map(str::to_owned),
                created_at: at(0),
            }
        };
        // dee → cy → bob → ann: three links, so dee's work reaches ann; eve → dee is a fourth link.
        for d in [
            delegate("d1", "bob", "ann", Some(today), Some(today), None),
            delegate("d2", "cy", "bob", None, None, None),
            delegate("d3", "dee", "cy", None, None, None),
            delegate("d4", "eve", "dee", None, None, None),
            delegate("d5", "fay", "ann", None, Some(today.pred_opt().unwrap()), None),
            delegate("d6", "gus", "ann", None, None, Some("opportunity")),
        ] {
            store.add_delegation(&acme(), &d).await.unwrap();
        }
        assert_eq!(store.delegations(&acme()).await.unwrap().len(), 6);

        let mine = create(store, &acme(), new_instance(Some("ann")), at(1)).await;
        let bobs = create(store, &acme(), new_instance(Some("bob")), at(2)).await;
        let dees = create(store, &acme(), new_instance(Some("dee")), at(3)).await;
        create(store, &acme(), new_instance(Some("eve")), at(4)).await; // four links away
        create(store, &acme(), new_instance(Some("fay")), at(5)).await; // delegation expired
        create(store, &acme(), new_instance(Some("gus")), at(6)).await; // delegation only for opportunities
        let mut opportunity = new_instance(Some("gus"));
        opportunity.entity = "opportunity".into();
        let gus_opportunity = create(store, &acme(), opportunity, at(7)).await;

        // An approval for ann on zed's instance, and one she already answered.
        let zeds = create(store, &acme(), new_instance(Some("zed")), at(8)).await;
        let answered = create(store, &acme(), new_instance(Some("zed")), at(9)).await;
        for (instance, respond) in [(&zeds, false), (&answered, true)] {
            let row = load(store, &acme(), instance).await;
            let mut commit = transition(&row, "review", row.updated_at);
            commit.approvals.push(ApprovalWrite::Request {
                transition: "approve_deal".into(),
                assignees: vec!["ann".into(), "bob".into()],
                requested_by: None,
            });
            if respond {
                commit.approvals.push(ApprovalWrite::Respond {
                    id: new_id(),
                    transition: "approve_deal".into(),
                    approver: "ann".into(),
                    decision: StoredDecision::Approve,
                    comment: None,
                });
            }
            store.commit(&acme(), commit).await.unwrap();
        }

        let query = PendingQuery { direction: Direction::Asc, today: Some(today), ..PendingQuery::default() };
        let page = store.pending_for_user(&acme(), "ann", &query).await.unwrap();
        let got: Vec<_> = page.items.iter().map(|i| (i.instance.id.clone(), i.reason.clone())).collect();
        assert_eq!(
            got,
            [
                (mine.clone(), PendingReason::Assigned),
                (bobs, PendingReason::Delegated { from: "bob".into() }),
                (dees, PendingReason::Delegated { from: "dee".into() }),
                (gus_opportunity.clone(), PendingReason::Delegated { from: "gus".into() }),
                (zeds.clone(), PendingReason::Approval { transition: "approve_deal".into() }),
            ]
        );
        assert!(page.next.is_none());

        // The day after, bob's delegation (and the chain through it) has ended.
        let tomorrow = PendingQuery { today: today.succ_opt(), ..query.clone() };
        let page = store.pending_for_user(&acme(), "ann", &tomorrow).await.unwrap();
        let ids: HashSet<_> = page.items.iter().map(|i| i.instance.id.clone()).collect();
        assert_eq!(ids, HashSet::from([mine.clone(), gus_opportunity.clone(), zeds.clone()]));

        // Filters apply to every arm.
        let leads_in_new =
            PendingQuery { entity: Some("lead".into()), stage: Some("new".into()), ..query.clone() };
        let page = store.pending_for_user(&acme(), "ann", &leads_in_new).await.unwrap();
        assert_eq!(page.items.len(), 3);
        let opportunities = PendingQuery { entity: Some("opportunity".into()), ..query.clone() };
        let page = store.pending_for_user(&acme(), "ann", &opportunities).await.unwrap();
        assert_eq!(
            page.items.iter().map(|i| i.instance.id.as_str()).collect::<Vec<_>>(),
            [gus_opportunity.as_str()]
        );
        let other_definition = PendingQuery { definition: Some("support".into()), ..query };
        assert!(store.pending_for_user(&acme(), "ann", &other_definition).await.unwrap().items.is_empty());

        store.remove_delegation(&acme(), "d1").await.unwrap();
        let error = store.remove_delegation(&acme(), "d1").await.unwrap_err();
        assert!(matches!(error, StoreError::NotFound { what: "delegation", .. }), "{error:?}");
    })
    .await;
}

#[tokio::test]
async fn approval_rounds_count_each_vote_once() {
    each_backend(|db: TestDb| async move {
        let store = &db.store;
        deploy(store, &acme()).await;
        let id = create(store, &acme(), new_instance(None), at(0)).await;
        let vote = |approver: &str, decision| ApprovalWrite::Respond {
            id: new_id(),
            transition: "qualify".into(),
            approver: approver.into(),
            decision,
            comment: None,
        };
        let commit_with = |row: &InstanceRow, approvals: Vec<ApprovalWrite>| {
            let mut commit = transition(row, &row.stage, at(1));
            commit.approvals = approvals;
            commit
        };

        // No pending request: a vote has nothing to answer.
        let row = load(store, &acme(), &id).await;
        let error = store
            .commit(&acme(), commit_with(&row, vec![vote("bob", StoredDecision::Approve)]))
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            StoreError::NotFound { what: "pending approval request for transition", .. }
        ));

        let request = ApprovalWrite::Request {
            transition: "qualify".into(),
            assignees: vec!["bob".into()],
            requested_by: Some("ann".into()),
        };
        store
            .commit(&acme(), commit_with(&row, vec![request.clone(), vote("bob", StoredDecision::Reject)]))
            .await
            .unwrap();

        // A second vote by bob in the same round, or a second open request, is a duplicate.
        let row = load(store, &acme(), &id).await;
        let error = store
            .commit(&acme(), commit_with(&row, vec![vote("bob", StoredDecision::Approve)]))
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::Duplicate { what: "approval response" }), "{error:?}");
        let error = store.commit(&acme(), commit_with(&row, vec![request.clone()])).await.unwrap_err();
        assert!(matches!(error, StoreError::Duplicate { what: "pending approval request" }), "{error:?}");

        // Rejected, then asked again: round 2, and bob may vote again.
        let reject = ApprovalWrite::Resolve { transition: "qualify".into(), status: RequestStatus::Rejected };
        store
            .commit(&acme(), commit_with(&row, vec![reject, request, vote("bob", StoredDecision::Approve)]))
            .await
            .unwrap();
        let state = store.load_state(&acme(), &id).await.unwrap().unwrap();
        let pending = &state.approvals[0];
        assert_eq!(pending.request.round, 2);
        assert_eq!(
            pending.responses.iter().map(|r| (r.round, r.decision)).collect::<Vec<_>>(),
            [(2, StoredDecision::Approve)]
        );

        let pending_as_status =
            ApprovalWrite::Resolve { transition: "qualify".into(), status: RequestStatus::Pending };
        let row = load(store, &acme(), &id).await;
        let error = store.commit(&acme(), commit_with(&row, vec![pending_as_status])).await.unwrap_err();
        assert!(matches!(error, StoreError::Invalid { .. }), "{error:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn due_timers_are_claimed_once_across_concurrent_workers() {
    each_backend(|db: TestDb| async move {
        let store = Arc::new(db.store.clone());
        deploy(&store, &acme()).await;
        let id = create(&store, &acme(), new_instance(None), at(0)).await;
        let row = load(&store, &acme(), &id).await;
        let mut commit = transition(&row, "waiting", at(0));
        for n in 0..40 {
            commit.timers.push(TimerWrite::Schedule {
                id: format!("t{n:02}"),
                kind: "reminder".into(),
                trigger_at: at(n % 20),
                payload: json!({"n": n}),
            });
        }
        store.commit(&acme(), commit).await.unwrap();
        let stats = store.queue_stats(at(9)).await.unwrap();
        assert_eq!((stats.timers_due, stats.oldest_timer_due_at), (20, Some(at(0))), "minutes 0–9, twice");

        let lease = Duration::from_secs(300);
        let claimers: Vec<_> = ["w1", "w2"]
            .into_iter()
            .map(|worker| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let batch = store.due_timers(at(9), 3, worker, lease).await.unwrap();
                        if batch.is_empty() {
                            break mine;
                        }
                        assert!(batch.iter().all(|t| t.locked_by.as_deref() == Some(worker)));
                        mine.extend(batch.into_iter().map(|t| t.id));
                    }
                })
            })
            .collect();
        let mut claimed = Vec::new();
        for claimer in claimers {
            claimed.extend(claimer.await.unwrap());
        }
        // Minutes 0–9 of both halves are due: 20 timers, each claimed by exactly one worker.
        let unique: HashSet<_> = claimed.iter().cloned().collect();
        assert_eq!((claimed.len(), unique.len()), (20, 20));

        // Within the lease nobody gets them again; after it, an unprocessed timer is handed out again.
        assert!(
            store.due_timers(at(10), 100, "w3", lease).await.unwrap().iter().all(|t| t.trigger_at == at(10))
        );
        store.mark_timer_processed(&acme(), "t00", at(10)).await.unwrap();
        let error = store.mark_timer_processed(&acme(), "t00", at(10)).await.unwrap_err();
        assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
        let retaken = store.due_timers(at(30), 100, "w4", lease).await.unwrap();
        assert_eq!(retaken.len(), 39);
        assert!(!retaken.iter().any(|t| t.id == "t00"));
        assert!(retaken.windows(2).all(|w| w[0].trigger_at <= w[1].trigger_at));

        // Firing inside a commit, with a wrong tenant, is refused.
        let row = load(&store, &acme(), &id).await;
        let mut commit = transition(&row, "reminded", at(31));
        commit.timers.push(TimerWrite::Fired { id: "t01".into() });
        store.commit(&acme(), commit).await.unwrap();
        let error = store.mark_timer_processed(&globex(), "t02", at(31)).await.unwrap_err();
        assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
        let state = store.load_state(&acme(), &id).await.unwrap().unwrap();
        assert_eq!(state.timers.len(), 38);
    })
    .await;
}

#[tokio::test]
async fn outbox_keeps_retry_bookkeeping() {
    each_backend(|db: TestDb| async move {
        let store = &db.store;
        deploy(store, &acme()).await;
        let row = {
            let id = create(store, &acme(), new_instance(None), at(0)).await;
            load(store, &acme(), &id).await
        };
        let mut commit = transition(&row, "qualified", at(1));
        for name in ["email", "webhook"] {
            commit.outbox.push(NewOutbox {
                id: name.into(),
                kind: StoredOutboxKind::Action,
                name: name.into(),
                payload: json!({"to": "ann@example.com"}),
            });
        }
        store.commit(&acme(), commit).await.unwrap();

        let early = store.queue_stats(at(0)).await.unwrap();
        assert_eq!((early.outbox_pending, early.oldest_outbox_due_at, early.outbox_dead), (2, None, 0));
        assert_eq!(store.queue_stats(at(3)).await.unwrap().oldest_outbox_due_at, Some(at(1)));

        let lease = Duration::from_secs(60);
        assert!(store.claim_outbox(at(0), 10, "w1", lease).await.unwrap().is_empty(), "not due yet");
        let claimed = store.claim_outbox(at(1), 10, "w1", lease).await.unwrap();
        assert_eq!(claimed.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), ["email", "webhook"]);
        assert!(
            claimed.iter().all(|o| o.instance_id.as_deref() == Some(row.id.as_str()) && o.tenant == acme())
        );
        assert!(store.claim_outbox(at(1), 10, "w2", lease).await.unwrap().is_empty(), "leased to w1");

        store.outbox_done(&acme(), "email", at(2)).await.unwrap();
        let retry = OutboxFailure { error: "503 from hook".into(), next_attempt_at: at(5), dead: false };
        store.outbox_failed(&acme(), "webhook", at(2), &retry).await.unwrap();
        let item = store.outbox_item(&acme(), "webhook").await.unwrap().unwrap();
        assert_eq!((item.status, item.attempts, item.next_attempt_at), (OutboxStatus::Pending, 1, at(5)));
        assert_eq!(item.last_error.as_deref(), Some("503 from hook"));
        assert!(store.outbox_item(&globex(), "webhook").await.unwrap().is_none());

        let again = store.claim_outbox(at(5), 10, "w2", lease).await.unwrap();
        assert_eq!(again.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), ["webhook"]);
        let give_up = OutboxFailure { error: "x".repeat(5000), next_attempt_at: at(9), dead: true };
        store.outbox_failed(&acme(), "webhook", at(6), &give_up).await.unwrap();
        let item = store.outbox_item(&acme(), "webhook").await.unwrap().unwrap();
        assert_eq!((item.status, item.attempts, item.processed_at), (OutboxStatus::Dead, 2, Some(at(6))));
        assert_eq!(item.last_error.map(|e| e.len()), Some(2000));
        let done = store.outbox_item(&acme(), "email").await.unwrap().unwrap();
        assert_eq!((done.status, done.attempts, done.processed_at), (OutboxStatus::Done, 0, Some(at(2))));

        assert!(store.claim_outbox(at(100), 10, "w3", lease).await.unwrap().is_empty());
        let late = store.queue_stats(at(100)).await.unwrap();
        assert_eq!((late.outbox_pending, late.oldest_outbox_due_at, late.outbox_dead), (0, None, 1));
        let error = store.outbox_done(&acme(), "email", at(7)).await.unwrap_err();
        assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
    })
    .await;
}

#[tokio::test]
async fn domain_entities_round_trip_in_commits() {
    each_backend(|db: TestDb| async move {
        let store = &db.store;
        let contact = Contact {
            id: new_id(),
            instance_id: None,
            name: "John Doe".into(),
            email: Some("john@example.com".into()),
            phone: None,
            company: Some("Acme Corp".into()),
            status: "lead".into(),
            score: Some(72.5),
            data: json!({"source": "web"}),
        };
        let mut commit = Commit::new(at(0));
        commit.contacts.push(EntityWrite::Insert(contact.clone()));
        commit.outbox.push(NewOutbox {
            id: new_id(),
            kind: StoredOutboxKind::Event,
            name: "lead.created".into(),
            payload: json!({"id": contact.id}),
        });
        assert_eq!(store.commit(&acme(), commit).await.unwrap(), 0);

        // Conversion: the lead is qualified and an opportunity opened, together.
        let qualified = Contact { status: "qualified".into(), ..contact.clone() };
        let opportunity = Opportunity {
            id: new_id(),
            contact_id: contact.id.clone(),
            instance_id: None,
            stage: "prospecting".into(),
            value: 12_500.0,
            currency: "EUR".into(),
            close_date: NaiveDate::from_ymd_opt(2025, 6, 30),
            probability: 0.25,
            data: json!({}),
        };
        let campaign = Campaign {
            id: new_id(),
            instance_id: None,
            name: "Spring".into(),
            kind: "email".into(),
            start_date: NaiveDate::from_ymd_opt(2025, 3, 1),
            end_date: None,
            metrics: json!({"sent": 0}),
            status: "running".into(),
        };
        let mut commit = Commit::new(at(1));
        commit.contacts.push(EntityWrite::Update(qualified.clone()));
        commit.opportunities.push(EntityWrite::Insert(opportunity.clone()));
        commit.campaigns.push(EntityWrite::Insert(campaign.clone()));
        store.commit(&acme(), commit).await.unwrap();

        let stored = store.contact(&acme(), &contact.id).await.unwrap().unwrap();
        assert_eq!((stored.value, stored.created_at, stored.updated_at), (qualified, at(0), at(1)));
        assert_eq!(store.opportunity(&acme(), &opportunity.id).await.unwrap().unwrap().value, opportunity);
        assert_eq!(store.campaign(&acme(), &campaign.id).await.unwrap().unwrap().value, campaign);
        let by_stage = EntityQuery { status: Some("prospecting".into()), ..EntityQuery::default() };
        assert_eq!(store.opportunities(&acme(), &by_stage).await.unwrap().len(), 1);
        assert_eq!(store.campaigns(&acme(), &EntityQuery::default()).await.unwrap().len(), 1);
        let leads = EntityQuery { status: Some("lead".into()), ..EntityQuery::default() };
        assert!(store.contacts(&acme(), &leads).await.unwrap().is_empty());

        // Tenant-scoped: invisible elsewhere, and updates there find nothing.
        assert!(store.contact(&globex(), &contact.id).await.unwrap().is_none());
        assert!(store.contacts(&globex(), &EntityQuery::default()).await.unwrap().is_empty());
        let mut commit = Commit::new(at(2));
        commit.contacts.push(EntityWrite::Update(contact.clone()));
        let error = store.commit(&globex(), commit).await.unwrap_err();
        assert!(matches!(error, StoreError::NotFound { what: "contact", .. }), "{error:?}");

        // Paging by id.
        for n in 0..4 {
            let mut commit = Commit::new(at(3));
            commit.contacts.push(EntityWrite::Insert(Contact {
                id: new_id(),
                name: format!("c{n}"),
                ..contact.clone()
            }));
            store.commit(&acme(), commit).await.unwrap();
        }
        let first =
            store.contacts(&acme(), &EntityQuery { limit: 3, ..EntityQuery::default() }).await.unwrap();
        let after = Some(first[2].value.id.clone());
        let rest = store
            .contacts(&acme(), &EntityQuery { limit: 3, after, ..EntityQuery::default() })
            .await
            .unwrap();
        assert_eq!((first.len(), rest.len()), (3, 2));
    })
    .await;
}

#[tokio::test]
async fn malformed_commits_are_refused() {
    each_backend(|db: TestDb| async move {
        let mut commit = Commit::new(at(0));
        commit.history.push(created("orphan"));
        let error = db.store.commit(&acme(), commit).await.unwrap_err();
        assert!(matches!(error, StoreError::Invalid { .. }), "{error:?}");

        // BR-007: one instance of a definition per subject.
        deploy(&db.store, &acme()).await;
        let subject = |id: &str| NewInstance {
            subject_type: Some("account".into()),
            subject_id: Some(id.into()),
            ..new_instance(None)
        };
        create(&db.store, &acme(), subject("42"), at(0)).await;
        let mut commit = Commit::new(at(0));
        commit.instance = Some(InstanceWrite::Insert(subject("42")));
        let error = db.store.commit(&acme(), commit).await.unwrap_err();
        assert!(matches!(error, StoreError::Duplicate { .. }), "{error:?}");
    })
    .await;
}

#[tokio::test]
async fn tokens_are_read_back_until_their_gateway_run_ends() {
    each_backend(|db: TestDb| async move {
        let store = &db.store;
        deploy(store, &acme()).await;
        let id = create(store, &acme(), new_instance(None), at(0)).await;
        let start = |id: &str, branch: &str| TokenWrite::Start {
            id: id.into(),
            gateway: "checks".into(),
            branch: branch.into(),
            stage: Some("open".into()),
        };

        let row = load(store, &acme(), &id).await;
        let mut commit = transition(&row, "checking", at(1));
        commit.tokens = vec![start("a-1", "credit"), start("a-2", "legal"), start("a-3", "brand")];
        store.commit(&acme(), commit).await.unwrap();

        // One branch moves on, one fails, one is still open.
        let row = load(store, &acme(), &id).await;
        let mut commit = transition(&row, "checking", at(2));
        commit.tokens = vec![
            TokenWrite::Set {
                id: "a-1".into(),
                stage: Some("review".into()),
                status: StoredTokenStatus::Active,
                entered_at: at(2),
            },
            TokenWrite::Set {
                id: "a-2".into(),
                stage: Some("open".into()),
                status: StoredTokenStatus::Cancelled,
                entered_at: at(1),
            },
        ];
        store.commit(&acme(), commit).await.unwrap();
        let state = store.load_state(&acme(), &id).await.unwrap().unwrap();
        let tokens: Vec<_> = state
            .tokens
            .iter()
            .map(|t| (t.id.as_str(), t.stage.as_deref(), t.status, t.created_at, t.entered_at))
            .collect();
        assert_eq!(
            tokens,
            [
                ("a-1", Some("review"), StoredTokenStatus::Active, at(1), at(2)),
                ("a-2", Some("open"), StoredTokenStatus::Cancelled, at(1), at(1)),
                ("a-3", Some("open"), StoredTokenStatus::Active, at(1), at(1)),
            ],
            "the cancelled branch is still there, and each token says when it entered its stage"
        );

        // A cancelled token cannot be moved again.
        let row = load(store, &acme(), &id).await;
        let mut commit = transition(&row, "checking", at(3));
        commit.tokens.push(TokenWrite::Set {
            id: "a-2".into(),
            stage: None,
            status: StoredTokenStatus::Completed,
            entered_at: at(3),
        });
        let error = store.commit(&acme(), commit).await.unwrap_err();
        assert!(matches!(error, StoreError::NotFound { what: "active token", .. }), "{error:?}");

        // Ending the run cancels what still runs and hides all three; a new fork starts afresh.
        let mut commit = transition(&row, "checking", at(4));
        commit.tokens =
            vec![TokenWrite::End { status: StoredTokenStatus::Cancelled }, start("b-1", "credit")];
        store.commit(&acme(), commit).await.unwrap();
        let state = store.load_state(&acme(), &id).await.unwrap().unwrap();
        assert_eq!(state.tokens.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["b-1"]);
        let row = load(store, &acme(), &id).await;
        let mut commit = transition(&row, "checking", at(5));
        commit.tokens.push(TokenWrite::Set {
            id: "a-3".into(),
            stage: None,
            status: StoredTokenStatus::Completed,
            entered_at: at(5),
        });
        let error = store.commit(&acme(), commit).await.unwrap_err();
        assert!(matches!(error, StoreError::NotFound { what: "active token", .. }), "an ended run is closed");
    })
    .await;
}

#[tokio::test]
async fn runs_completion_at_creation_and_many_rows_per_commit_round_trip() {
    each_backend(|db: TestDb| async move {
        let store = &db.store;
        deploy(store, &acme()).await;
        let run = |id: &str, status: StoredRunStatus| RunRow {
            id: id.into(),
            group: "1.0".into(),
            action: "send".into(),
            gateway: Some("checks".into()),
            branch: Some("credit".into()),
            status,
        };

        // Created already in a terminal stage: stored completed, with its end time.
        let done = NewInstance {
            status: StoredInstanceStatus::Completed,
            stage: "closed".into(),
            assignee: Some("ann".into()),
            ..new_instance(None)
        };
        let done = create(store, &acme(), done, at(0)).await;
        let row = load(store, &acme(), &done).await;
        assert_eq!((row.status, row.ended_at), (StoredInstanceStatus::Completed, Some(at(0))));
        let page = store.pending_for_user(&acme(), "ann", &PendingQuery::default()).await.unwrap();
        assert!(page.items.is_empty(), "a completed instance is nobody's pending item");

        // Runs written at creation and replaced by an update.
        let new = NewInstance { runs: vec![run("1.0", StoredRunStatus::Pending)], ..new_instance(None) };
        let id = create(store, &acme(), new, at(0)).await;
        let state = store.load_state(&acme(), &id).await.unwrap().unwrap();
        assert_eq!(state.runs, [run("1.0", StoredRunStatus::Pending)]);

        let mut commit = transition(&state.instance, "next", at(1));
        if let Some(InstanceWrite::Update(update)) = &mut commit.instance {
            update.runs = vec![run("1.0", StoredRunStatus::Succeeded), run("1.1", StoredRunStatus::Pending)];
        }
        // Several history rows and outbox items: numbered and stored in order.
        for n in 0..3 {
            commit.history.push(created(&format!("extra-{n}")));
            commit.outbox.push(NewOutbox {
                id: format!("out-{n}"),
                kind: StoredOutboxKind::Event,
                name: format!("event-{n}"),
                payload: json!({"n": n}),
            });
        }
        store.commit(&acme(), commit).await.unwrap();
        let state = store.load_state(&acme(), &id).await.unwrap().unwrap();
        assert_eq!(
            state.runs,
            [run("1.0", StoredRunStatus::Succeeded), run("1.1", StoredRunStatus::Pending)]
        );
        let history = store.history(&acme(), &id).await.unwrap();
        let events: Vec<_> = history.iter().map(|h| (h.seq, h.event.as_str())).collect();
        assert_eq!(
            events,
            [(1, "created"), (2, "transition"), (3, "extra-0"), (4, "extra-1"), (5, "extra-2")]
        );
        let outbox = store.claim_outbox(at(2), 10, "w", Duration::from_secs(60)).await.unwrap();
        let items: Vec<_> =
            outbox.iter().map(|o| (o.id.as_str(), o.name.as_str(), o.instance_id.as_deref())).collect();
        assert_eq!(
            items,
            [
                ("out-0", "event-0", Some(id.as_str())),
                ("out-1", "event-1", Some(id.as_str())),
                ("out-2", "event-2", Some(id.as_str()))
            ]
        );
        assert_eq!(outbox[2].payload, json!({"n": 2}));
    })
    .await;
}

#[tokio::test]
async fn a_commit_with_hundreds_of_rows_numbers_history_without_gaps() {
    each_backend(|db: TestDb| async move {
        let store = &db.store;
        deploy(store, &acme()).await;
        let id = create(store, &acme(), new_instance(None), at(0)).await;
        let row = load(store, &acme(), &id).await;
        let mut commit = transition(&row, "busy", at(1));
        for n in 0..250 {
            commit.history.push(created(&format!("step-{n}")));
            commit.outbox.push(NewOutbox {
                id: format!("out-{n:03}"),
                kind: StoredOutboxKind::Event,
                name: "step".into(),
                payload: json!({"n": n}),
            });
        }
        store.commit(&acme(), commit).await.unwrap();
        let history = store.history(&acme(), &id).await.unwrap();
        assert_eq!(history.iter().map(|h| h.seq).collect::<Vec<_>>(), (1..=252).collect::<Vec<u64>>());
        assert_eq!((history[2].event.as_str(), history[251].event.as_str()), ("step-0", "step-249"));
        let outbox = store.claim_outbox(at(2), 500, "w", Duration::from_secs(60)).await.unwrap();
        assert_eq!(outbox.len(), 250);
    })
    .await;
}
