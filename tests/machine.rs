//! The interpreter (`engine::machine`), end to end: definitions compiled with `check_source`, then
//! driven through commands. Commands are pure, so every test reads the state out of each step.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use nexus_crm::check::check_source;
use nexus_crm::engine::eval::{Actor, Context};
use nexus_crm::engine::machine::{
    ApprovalResponse, Decision, Delegation, Directory, InstanceState, InstanceStatus, Machine, MachineError,
    NoDirectory, OutboxKind, Problem, RunId, RunStatus, SYSTEM, Step, TimerChange, TimerKind, TokenStatus,
    Vote, events,
};
use nexus_crm::ir::{Field, FieldType, GatewayId, TransitionId};
use serde_json::{Map, Value as Json, json};

type Result<T = ()> = std::result::Result<T, MachineError>;

// ----- helpers -----------------------------------------------------------------------------------

fn compile(source: &str) -> Machine {
    let checked = check_source(source);
    let Some(def) = checked.definition else { panic!("definition must compile: {:#?}", checked.diagnostics) };
    Machine::new(def).expect("checked definitions have valid patterns")
}

fn shipped(name: &str) -> Machine {
    let path = format!("{}/definitions/{name}.json", env!("CARGO_MANIFEST_DIR"));
    compile(&std::fs::read_to_string(&path).expect("shipped definition is readable"))
}

/// 2026-03-02 09:00 UTC plus `minutes`.
fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).single().expect("valid time") + Duration::minutes(minutes)
}

fn user(id: &str) -> Actor {
    Actor { id: id.into(), ..Actor::default() }
}

fn with_roles(id: &str, roles: &[&str]) -> Actor {
    Actor { id: id.into(), roles: roles.iter().map(|r| r.to_string()).collect(), permissions: Vec::new() }
}

fn patch(value: Json) -> Map<String, Json> {
    match value {
        Json::Object(map) => map,
        other => panic!("a patch is an object, not {other}"),
    }
}

fn stage(m: &Machine, state: &InstanceState) -> String {
    m.stage_name(state).to_owned()
}

fn tid(m: &Machine, name: &str) -> TransitionId {
    m.transition_id(name).expect("transition exists")
}

fn gid(m: &Machine, name: &str) -> GatewayId {
    m.definition().gateway_named(name).expect("gateway exists")
}

fn branch(m: &Machine, gateway: &str, name: &str) -> usize {
    let g = m.definition().gateway(gid(m, gateway));
    g.branches.iter().position(|b| b.name == name).expect("branch exists")
}

fn fire(m: &Machine, state: &InstanceState, name: &str, actor: &Actor) -> Result<Step> {
    m.fire_by_name(state, name, actor, at(0))
}

fn events_of(step: &Step) -> Vec<&str> {
    step.outbox_names(OutboxKind::Event)
}

fn schedules(step: &Step) -> Vec<(TimerKind, DateTime<Utc>)> {
    step.timers
        .iter()
        .filter_map(|t| match t {
            TimerChange::Schedule(timer) => Some((timer.kind, timer.due)),
            TimerChange::Cancel(_) => None,
        })
        .collect()
}

fn cancels(step: &Step) -> Vec<TimerKind> {
    step.timers
        .iter()
        .filter_map(|t| match t {
            TimerChange::Cancel(kind) => Some(*kind),
            TimerChange::Schedule(_) => None,
        })
        .collect()
}

// ----- the seed's example: automatic qualification ----------------------------------------------

#[test]
fn lead_transitions_from_new_to_qualified_based_on_score() -> Result {
    let m = shipped("sales-pipeline");
    let rep = user("ana");
    let lead = m.create_by_name("lead", &json!({"lead_score": 30, "email": "x@example.com"}), &rep, at(0))?;
    assert_eq!((stage(&m, &lead.state), lead.state.version), ("new".into(), 1));
    assert_eq!(lead.history[0].event, events::INSTANCE_CREATED);

    let contacted = fire(&m, &lead.state, "make_contact", &rep)?;
    assert_eq!(stage(&m, &contacted.state), "contacted", "a score of 30 does not qualify");
    assert_eq!(contacted.outbox_names(OutboxKind::Action), ["send_welcome_email"]);

    // Raising the score past 50 qualifies the lead by itself, in the same step.
    let scored = m.update_data(&contacted.state, &patch(json!({"lead_score": 72})), &rep, at(5))?;
    assert_eq!(stage(&m, &scored.state), "qualified");
    assert_eq!(scored.state.version, 3);
    let moves: Vec<_> = scored.history_of(events::TRANSITION_COMPLETED).collect();
    assert_eq!(moves.len(), 1);
    assert_eq!(moves[0].actor, SYSTEM);
    assert_eq!(moves[0].before, json!({"stage": "contacted"}));
    assert_eq!(moves[0].after, json!({"stage": "qualified"}));
    assert_eq!(scored.history[0].before, json!({"data": {"lead_score": 30}}));
    assert_eq!(scored.history[0].after, json!({"data": {"lead_score": 72}}));
    assert_eq!(scored.outbox_names(OutboxKind::Action), ["send_qualification_email", "notify_sales_manager"]);
    // The seed's "lead qualified" domain event, named after the entity and the stage entered.
    assert_eq!(
        events_of(&scored),
        ["data_updated", "transition_completed", "stage_entered", "lead_qualified"]
    );

    // `convert_to_opportunity` waits for the budget, then fires automatically too.
    let confirmed = m.update_data(&scored.state, &patch(json!({"budget_confirmed": true})), &rep, at(6))?;
    assert_eq!(stage(&m, &confirmed.state), "opportunity");
    Ok(())
}

#[test]
fn commands_are_pure_and_bump_the_version_once() -> Result {
    let m = shipped("sales-pipeline");
    let rep = user("ana");
    let lead = m.create_by_name("lead", &json!({"lead_score": 10}), &rep, at(0))?;
    let before = lead.state.clone();
    let step = fire(&m, &lead.state, "make_contact", &rep)?;
    assert_eq!(lead.state, before, "the input state is never changed");
    assert_eq!(step.state.version, before.version + 1);
    // Unchanged data is shared, not copied.
    assert!(std::sync::Arc::ptr_eq(&step.state.data, &before.data));
    Ok(())
}

// ----- data validation ---------------------------------------------------------------------------

#[test]
fn invalid_data_is_reported_whole_and_changes_nothing() -> Result {
    let m = shipped("support-queue");
    let agent = user("sam");
    let err = m
        .create_by_name(
            "ticket",
            &json!({"priority": "asap", "reopen_count": 1.5, "tags": ["a", 2], "last_customer_reply": "yesterday"}),
            &agent,
            at(0),
        )
        .expect_err("data is invalid");
    let MachineError::InvalidData { violations } = err else { panic!("expected InvalidData, got {err:?}") };
    let found: BTreeSet<(String, String)> = violations
        .iter()
        .map(|v| {
            (v.field.clone(), format!("{:?}", v.problem).split([' ', '{']).next().unwrap_or("").to_owned())
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("priority", "NotAllowed"),
        ("reopen_count", "WrongType"),
        ("tags[1]", "WrongType"),
        ("last_customer_reply", "InvalidTemporal"),
        ("subject", "Missing"),
    ]
    .into_iter()
    .map(|(f, p)| (f.to_owned(), p.to_owned()))
    .collect();
    assert_eq!(found, expected);

    let ticket = m.create_by_name(
        "ticket",
        &json!({"subject": "Printer on fire", "priority": "high"}),
        &agent,
        at(0),
    )?;
    let before = ticket.state.clone();
    let err = m
        .update_data(
            &ticket.state,
            &patch(json!({"subject": "no", "priority": null, "customer_tier": "gold"})),
            &agent,
            at(1),
        )
        .expect_err("patch is invalid");
    let MachineError::InvalidData { violations } = &err else { panic!("expected InvalidData, got {err:?}") };
    let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["subject", "priority", "customer_tier"]);
    assert!(
        matches!(violations[0].problem, Problem::BelowMin { min, found, length: true } if min == 3.0 && found == 2.0)
    );
    assert_eq!(
        err.to_string(),
        "invalid data: `subject` must have length at least 3 (found 2); `priority` is required; `customer_tier` must be one of \"standard\", \"premium\""
    );
    assert_eq!(ticket.state, before);

    // Undeclared keys are kept; `null` removes them.
    let tagged = m.update_data(&ticket.state, &patch(json!({"source": "phone"})), &agent, at(2))?;
    assert_eq!(m.data_json(&tagged.state)["source"], "phone");
    let untagged = m.update_data(&tagged.state, &patch(json!({"source": null})), &agent, at(3))?;
    assert_eq!(m.data_json(&untagged.state), json!({"subject": "Printer on fire", "priority": "high"}));
    Ok(())
}

#[test]
fn custom_fields_added_at_run_time_are_validated() -> Result {
    let mut m = shipped("sales-pipeline");
    let rep = user("ana");
    let lead = m.create_by_name("lead", &json!({}), &rep, at(0))?;
    let vat = Field {
        name: "vat_id".into(),
        ty: FieldType::String,
        required: false,
        min: None,
        max: Some(14.0),
        allowed: Vec::new(),
        pattern: Some("^[A-Z]{2}[0-9A-Z]+$".into()),
        label: None,
    };
    let bad = Field { name: "broken".into(), pattern: Some("^(a".into()), ..vat.clone() };
    assert!(matches!(m.add_field(bad), Err(MachineError::InvalidPattern { .. })));
    m.add_field(vat)?;

    let err =
        m.update_data(&lead.state, &patch(json!({"vat_id": "de 123"})), &rep, at(1)).expect_err("bad VAT id");
    assert!(matches!(&err, MachineError::InvalidData { violations } if violations.len() == 1
        && matches!(violations[0].problem, Problem::PatternMismatch { .. })));
    let ok = m.update_data(&lead.state, &patch(json!({"vat_id": "DE123456789"})), &rep, at(1))?;
    assert_eq!(m.data_json(&ok.state)["vat_id"], "DE123456789");
    Ok(())
}

// ----- approvals ---------------------------------------------------------------------------------

const APPROVALS: &str = r#"{
  "id": "approvals",
  "entities": { "deal": { "stages": ["open", "won"] } },
  "transitions": {
    "unison": { "from": "open", "to": "won", "approval": { "users": ["a", "b", "c"], "strategy": "unison" } },
    "majority": { "from": "open", "to": "won", "approval": { "users": ["a", "b", "c", "d", "e"], "strategy": "majority" } },
    "by_role": { "from": "open", "to": "won", "approval": { "roles": ["board"], "strategy": "majority" } },
    "quorum": { "from": "open", "to": "won", "approval": { "users": ["a", "b", "c", "d", "e"], "strategy": "quorum", "quorum": 3 } },
    "first": { "from": "open", "to": "won", "approval": { "roles": ["council"], "strategy": "first" } },
    "custom": { "from": "open", "to": "won", "approval": { "users": ["a", "b", "c"], "strategy": "custom", "custom": "all_but_one" } }
  }
}"#;

/// Fires `transition`, then records `votes` (user, approve?) in order; returns every step.
fn vote(
    m: &Machine,
    transition: &str,
    votes: &[(&Actor, bool)],
    directory: &dyn Directory,
) -> Result<Vec<Step>> {
    let deal = m.create_by_name("deal", &Json::Null, &user("owner"), at(0))?;
    let mut steps = vec![fire(m, &deal.state, transition, &user("owner"))?];
    for (i, (approver, yes)) in votes.iter().enumerate() {
        let state = &steps[steps.len() - 1].state;
        let vote = if *yes { Vote::Approve } else { Vote::Reject };
        steps.push(m.respond(state, tid(m, transition), approver, vote, directory, at(i as i64 + 1))?);
    }
    Ok(steps)
}

fn outcome(m: &Machine, steps: &[Step]) -> (String, bool) {
    let last = &steps[steps.len() - 1].state;
    (stage(m, last), last.pending_approval.is_some())
}

#[test]
fn unison_needs_everyone_and_any_rejection_ends_it() -> Result {
    let m = compile(APPROVALS);
    let (a, b, c) = (user("a"), user("b"), user("c"));
    let steps = vote(&m, "unison", &[(&a, true), (&b, true)], &NoDirectory)?;
    assert_eq!(outcome(&m, &steps), ("open".into(), true));
    assert_eq!(steps[0].history[0].event, events::APPROVAL_REQUESTED);
    assert_eq!(steps[0].state.pending_approval.as_ref().map(|p| p.requested_by.as_str()), Some("owner"));

    let steps = vote(&m, "unison", &[(&a, true), (&b, true), (&c, true)], &NoDirectory)?;
    assert_eq!(outcome(&m, &steps), ("won".into(), false));
    let last = &steps[3];
    assert_eq!(
        last.history.iter().map(|h| h.event).collect::<Vec<_>>(),
        [events::APPROVAL_RESPONDED, events::APPROVAL_GRANTED, events::TRANSITION_COMPLETED]
    );
    assert_eq!(last.history[2].actor, "c");
    assert_eq!(last.state.status, InstanceStatus::Completed);

    let steps = vote(&m, "unison", &[(&a, true), (&b, false)], &NoDirectory)?;
    assert_eq!(outcome(&m, &steps), ("open".into(), false));
    assert_eq!(steps[2].history_of(events::APPROVAL_REJECTED).count(), 1);
    // A rejected transition can be fired again: a new approval starts.
    let again = fire(&m, &steps[2].state, "unison", &user("owner"))?;
    assert!(again.state.pending_approval.as_ref().is_some_and(|p| p.responses.is_empty()));
    Ok(())
}

#[test]
fn majority_needs_more_than_half_of_the_assignees() -> Result {
    let m = compile(APPROVALS);
    let [a, b, c, d] = ["a", "b", "c", "d"].map(user);
    let steps = vote(&m, "majority", &[(&a, true), (&b, false), (&c, true)], &NoDirectory)?;
    assert_eq!(outcome(&m, &steps), ("open".into(), true), "2 of 5 is not a majority");
    let steps = vote(&m, "majority", &[(&a, true), (&b, false), (&c, true), (&d, true)], &NoDirectory)?;
    assert_eq!(outcome(&m, &steps), ("won".into(), false));
    let steps = vote(&m, "majority", &[(&a, false), (&b, false), (&c, true), (&d, false)], &NoDirectory)?;
    assert_eq!(outcome(&m, &steps), ("open".into(), false), "3 rejections of 5 make a majority impossible");

    // Roles: the directory says who is asked, so 2 of the board's 4 members are not a majority.
    let board: HashMap<String, Vec<String>> =
        HashMap::from([("board".into(), vec!["w".into(), "x".into(), "y".into(), "z".into()])]);
    let [w, x, y] = ["w", "x", "y"].map(|id| with_roles(id, &["board"]));
    let steps = vote(&m, "by_role", &[(&w, true), (&x, true)], &board)?;
    assert_eq!(outcome(&m, &steps), ("open".into(), true));
    let steps = vote(&m, "by_role", &[(&w, true), (&x, true), (&y, true)], &board)?;
    assert_eq!(outcome(&m, &steps), ("won".into(), false));
    Ok(())
}

#[test]
fn deal_desk_majority_and_quorum_from_the_shipped_definition() -> Result {
    let m = shipped("deal-desk");
    let ae = with_roles("alex", &["account_executive"]);
    let deal = m.create_by_name("deal", &json!({"account": "Acme", "discount_pct": 20}), &ae, at(0))?;
    assert_eq!(stage(&m, &deal.state), "desk_review", "submit_discounted is automatic");
    let mut state = fire(&m, &deal.state, "desk_approve", &ae)?.state;
    for (i, approver) in ["dana", "omar", "li"].into_iter().enumerate() {
        assert_eq!(stage(&m, &state), "desk_review");
        let step = m.respond(
            &state,
            tid(&m, "desk_approve"),
            &user(approver),
            Vote::Approve,
            &NoDirectory,
            at(i as i64),
        )?;
        if i == 2 {
            assert_eq!(step.outbox_names(OutboxKind::Action), ["notify_account_executive"]);
        }
        state = step.state;
    }
    assert_eq!(stage(&m, &state), "approved");

    let deep = m.create_by_name("deal", &json!({"account": "Acme", "discount_pct": 40}), &ae, at(0))?;
    let cfo = Actor { permissions: vec!["deals.approve_deep_discount".into()], ..user("cfo") };
    let mut state = fire(&m, &deep.state, "committee_approve", &cfo)?.state;
    for (approver, vote) in [("cfo", Vote::Approve), ("cro", Vote::Reject), ("vp_sales", Vote::Reject)] {
        state = m
            .respond(&state, tid(&m, "committee_approve"), &user(approver), vote, &NoDirectory, at(1))?
            .state;
    }
    assert_eq!(
        (stage(&m, &state), state.pending_approval.is_none()),
        ("committee_review".into(), true),
        "3 of 4 impossible"
    );
    Ok(())
}

#[test]
fn quorum_first_and_custom_strategies() -> Result {
    let m = compile(APPROVALS).with_strategy(
        "all_but_one",
        |assignees: usize, responses: &[ApprovalResponse]| {
            let approvals = responses.iter().filter(|r| r.vote == Vote::Approve).count();
            match (approvals + 1 >= assignees, responses.len() - approvals > 1) {
                (true, _) => Decision::Approved,
                (_, true) => Decision::Rejected,
                _ => Decision::Pending,
            }
        },
    );
    let [a, b, c, d] = ["a", "b", "c", "d"].map(user);
    let steps = vote(&m, "quorum", &[(&a, true), (&b, false), (&c, true)], &NoDirectory)?;
    assert_eq!(outcome(&m, &steps), ("open".into(), true));
    let steps = vote(&m, "quorum", &[(&a, true), (&b, false), (&c, true), (&d, true)], &NoDirectory)?;
    assert_eq!(outcome(&m, &steps), ("won".into(), false));
    let steps = vote(&m, "quorum", &[(&a, false), (&b, false), (&c, false)], &NoDirectory)?;
    assert_eq!(outcome(&m, &steps), ("open".into(), false), "2 left cannot reach 3");

    let member = with_roles("m1", &["council"]);
    let steps = vote(&m, "first", &[(&member, false)], &NoDirectory)?;
    assert_eq!(outcome(&m, &steps), ("open".into(), false));
    let steps = vote(&m, "first", &[(&member, true)], &NoDirectory)?;
    assert_eq!(outcome(&m, &steps), ("won".into(), false));

    let steps = vote(&m, "custom", &[(&a, true)], &NoDirectory)?;
    assert_eq!(outcome(&m, &steps), ("open".into(), true));
    let steps = vote(&m, "custom", &[(&a, true), (&b, true)], &NoDirectory)?;
    assert_eq!(outcome(&m, &steps), ("won".into(), false));
    Ok(())
}

#[test]
fn leaving_the_stage_cancels_a_pending_approval() -> Result {
    let m = shipped("deal-desk");
    let ae = with_roles("alex", &["account_executive"]);
    let deal = m.create_by_name("deal", &json!({"account": "Acme", "discount_pct": 20}), &ae, at(0))?;
    let pending = fire(&m, &deal.state, "desk_approve", &ae)?;
    let lost = fire(&m, &pending.state, "close_lost", &ae)?;
    assert_eq!(stage(&m, &lost.state), "lost");
    assert!(lost.state.pending_approval.is_none());
    assert_eq!(lost.history_of(events::APPROVAL_CANCELLED).count(), 1);
    Ok(())
}

// ----- gateways ----------------------------------------------------------------------------------

fn ten_branches() -> String {
    let branches: Vec<String> = (0..10).map(|i| format!(r#""b{i}": {{"label": "sign-off {i}"}}"#)).collect();
    format!(
        r#"{{"id": "ten", "entities": {{"launch": {{"stages": ["ready", "live", "done"]}}}},
            "gateways": {{"go": {{"type": "parallel", "from": "ready", "join": "live", "branches": {{{}}}}}}},
            "transitions": {{"finish": {{"from": "live", "to": "done"}}}}}}"#,
        branches.join(", ")
    )
}

#[test]
fn a_ten_branch_parallel_gateway_joins_when_all_complete() -> Result {
    let m = compile(&ten_branches());
    let pm = user("pat");
    let launch = m.create_by_name("launch", &Json::Null, &pm, at(0))?;
    let forked = fire(&m, &launch.state, "go", &pm)?;
    assert_eq!(forked.state.tokens.len(), 10);
    assert_eq!(stage(&m, &forked.state), "ready", "the main stage waits at the fork");
    let mut state = forked.state;
    // Complete in reverse order: the join does not care.
    for b in (0..10).rev() {
        let step = m.complete_branch(&state, gid(&m, "go"), b, &pm, at(1))?;
        let joined = step.history_of(events::GATEWAY_JOINED).count();
        assert_eq!(joined, usize::from(b == 0), "joins exactly when the last branch completes");
        state = step.state;
    }
    assert_eq!(stage(&m, &state), "live");
    assert!(state.tokens.is_empty());
    let err = m.complete_branch(&state, gid(&m, "go"), 3, &pm, at(2)).expect_err("the gateway is over");
    assert!(matches!(err, MachineError::BranchNotActive { .. }));
    Ok(())
}

#[test]
fn an_inclusive_gateway_waits_for_exactly_the_branches_it_started() -> Result {
    let m = shipped("partner-program")
        .with_guard("sanctions_screening", |_: Option<&Json>, _: &Context<'_>| true);
    let pm = user("pm_ines");
    let app = m.create_by_name(
        "application",
        &json!({"company": "Globex", "region": "EU", "expected_revenue": 50000}),
        &pm,
        at(0),
    )?;
    let screened = fire(&m, &app.state, "screen", &pm)?;
    let forked = fire(&m, &screened.state, "onboarding_checks", &pm)?;
    let started: Vec<usize> = forked.state.tokens.iter().map(|t| t.branch).collect();
    assert_eq!(
        started,
        [branch(&m, "onboarding_checks", "legal"), branch(&m, "onboarding_checks", "training")]
    );
    assert!(forked.outbox_names(OutboxKind::Action).is_empty(), "the finance branch did not start");

    let g = gid(&m, "onboarding_checks");
    let err = m
        .complete_branch(&forked.state, g, branch(&m, "onboarding_checks", "finance"), &pm, at(1))
        .expect_err("");
    assert!(matches!(err, MachineError::BranchNotManual { how: "when its action succeeds", .. }));
    let err = m
        .complete_branch(&forked.state, g, branch(&m, "onboarding_checks", "legal"), &pm, at(1))
        .expect_err("");
    assert!(matches!(err, MachineError::BranchNotManual { how: "by reaching the join stage", .. }));

    let trained =
        m.complete_branch(&forked.state, g, branch(&m, "onboarding_checks", "training"), &pm, at(1))?;
    assert_eq!(stage(&m, &trained.state), "screening");
    // The legal branch's token moves by an ordinary transition of its stage, and joins.
    let err = fire(&m, &trained.state, "finish_legal_review", &pm).expect_err("needs the legal role");
    assert!(matches!(err, MachineError::GuardRefused { .. }));
    let legal = fire(&m, &trained.state, "finish_legal_review", &with_roles("lee", &["legal"]))?;
    assert_eq!(stage(&m, &legal.state), "checks_complete");
    assert_eq!(legal.history_of(events::GATEWAY_JOINED).count(), 1);
    assert_eq!(legal.history[0].before, json!({"branch": "legal", "stage": "legal_review"}));
    Ok(())
}

#[test]
fn branch_tokens_travel_stages_and_actions_complete_branches() -> Result {
    let m = shipped("deal-desk");
    let mk = user("mia");
    let campaign =
        m.create_by_name("campaign", &json!({"account": "Acme", "channels": ["email"]}), &mk, at(0))?;
    let scheduled = fire(&m, &campaign.state, "schedule_campaign", &mk)?;
    let forked = fire(&m, &scheduled.state, "launch_campaign", &mk)?;
    assert_eq!(forked.outbox_names(OutboxKind::Action), ["announce_campaign", "send_campaign_emails"]);
    let email_run =
        forked.outbox.iter().find(|o| o.name == "send_campaign_emails").and_then(|o| o.run).expect("tracked");
    assert!(forked.outbox.iter().find(|o| o.name == "announce_campaign").is_some_and(|o| o.run.is_none()));
    let calls = forked.state.tokens.iter().find(|t| t.stage.is_some()).expect("phone_calls token");
    assert_eq!(m.definition().stage(calls.stage.expect("stage")).name, "calling");

    let err = fire(&m, &forked.state, "launch_campaign", &mk).expect_err("already running");
    assert!(matches!(err, MachineError::GatewayRunning { .. }));
    let err = fire(&m, &forked.state, "close_campaign", &mk).expect_err("evaluation is not reached yet");
    assert!(matches!(err, MachineError::WrongStage { .. }));

    let called = fire(&m, &forked.state, "finish_calls", &mk)?;
    assert_eq!(stage(&m, &called.state), "scheduled");
    let emailed = m.action_succeeded(&called.state, email_run, at(2))?;
    assert_eq!(emailed.history_of(events::BRANCH_COMPLETED).count(), 1);
    let err = m.action_succeeded(&emailed.state, email_run, at(2)).expect_err("reported twice");
    assert!(matches!(err, MachineError::UnknownRun { .. }));
    let joined = m.complete_branch(
        &emailed.state,
        gid(&m, "launch_campaign"),
        branch(&m, "launch_campaign", "paid_ads"),
        &mk,
        at(3),
    )?;
    assert_eq!(stage(&m, &joined.state), "evaluation");
    assert!(joined.state.runs.is_empty(), "settled runs are forgotten");

    // A failed branch action cancels its token: the join can no longer happen.
    let failed = m.action_failed(&forked.state, email_run, "SMTP down", at(2))?;
    assert!(failed.state.tokens.iter().any(|t| t.status == TokenStatus::Cancelled));
    assert_eq!(failed.history_of(events::BRANCH_FAILED).count(), 1);
    Ok(())
}

const VETO: &str = r#"{
  "id": "veto",
  "entities": { "contract": { "stages": ["review", "legal", "finance", "signed", "vetoed", "withdrawn"],
                              "terminal": ["signed", "vetoed", "withdrawn"] } },
  "gateways": { "checks": { "type": "parallel", "from": "review", "join": "signed",
                            "branches": { "legal": { "stage": "legal" }, "finance": { "stage": "finance" } } } },
  "transitions": {
    "legal_ok": { "from": "legal", "to": "signed" },
    "legal_veto": { "from": "legal", "to": "vetoed" },
    "finance_ok": { "from": "finance", "to": "signed" },
    "withdraw": { "from": "*", "to": "withdrawn" }
  }
}"#;

#[test]
fn leaving_the_fork_cancels_branches() -> Result {
    let m = compile(VETO);
    let u = user("u");
    let contract = m.create_by_name("contract", &Json::Null, &u, at(0))?;
    let forked = fire(&m, &contract.state, "checks", &u)?;

    // A branch entering a terminal stage other than the join takes the instance with it.
    let vetoed = fire(&m, &forked.state, "legal_veto", &u)?;
    assert_eq!((stage(&m, &vetoed.state), vetoed.state.status), ("vetoed".into(), InstanceStatus::Completed));
    assert!(vetoed.state.tokens.is_empty());
    let cancelled: Vec<_> = vetoed.history_of(events::GATEWAY_CANCELLED).collect();
    assert_eq!(cancelled[0].payload["cancelled"], json!(["legal", "finance"]));

    // A transition out of the fork stage itself cancels the running branches too.
    let legal_done = fire(&m, &forked.state, "legal_ok", &u)?;
    assert_eq!(stage(&m, &legal_done.state), "review");
    let withdrawn = fire(&m, &legal_done.state, "withdraw", &u)?;
    assert_eq!(stage(&m, &withdrawn.state), "withdrawn");
    assert_eq!(
        withdrawn.history_of(events::GATEWAY_CANCELLED).next().map(|h| h.payload["cancelled"].clone()),
        Some(json!(["finance"]))
    );

    let signed = fire(&m, &legal_done.state, "finance_ok", &u)?;
    assert_eq!(stage(&m, &signed.state), "signed");
    Ok(())
}

#[test]
fn automatic_gateways_and_token_transitions() -> Result {
    let m = compile(
        r#"{"id": "auto", "dataSchema": {"go": {"type": "boolean"}},
            "entities": {"job": {"stages": ["idle", "a", "b", "merged"]}},
            "gateways": {"split": {"type": "inclusive", "from": "idle", "join": "merged", "condition": "data.go == true",
                                   "branches": {"left": {"stage": "a"}, "right": {"stage": "b", "condition": "data.go == false"}}}},
            "transitions": {"a_done": {"from": "a", "to": "merged", "condition": "data.go == true"},
                            "b_done": {"from": "b", "to": "merged"}}}"#,
    );
    let u = user("u");
    let idle = m.create_by_name("job", &json!({"go": false}), &u, at(0))?;
    assert_eq!(stage(&m, &idle.state), "idle");
    let done = m.update_data(&idle.state, &patch(json!({"go": true})), &u, at(1))?;
    // The gateway forked (only `left` applies) and the token's automatic transition joined it.
    assert_eq!(stage(&m, &done.state), "merged");
    let kinds: Vec<_> = done.history.iter().map(|h| h.event).collect();
    assert_eq!(
        kinds,
        ["data_updated", "gateway_forked", "transition_completed", "branch_completed", "gateway_joined"]
    );
    Ok(())
}

// ----- actions and compensation ------------------------------------------------------------------

const SAGA: &str = r#"{
  "id": "saga",
  "dataSchema": { "tier": { "type": "string" } },
  "entities": { "order": { "stages": ["new", "placed"] } },
  "transitions": { "place": { "from": "new", "to": "placed",
                              "actions": ["reserve", "mark_gold", "charge", "notify", "ship"] } },
  "actions": {
    "reserve": { "type": "webhook", "url": "https://x.example/reserve", "compensation": "release" },
    "release": { "type": "webhook", "url": "https://x.example/release" },
    "mark_gold": { "type": "set_field", "field": "tier", "value": "gold", "compensation": "unmark" },
    "unmark": { "type": "set_field", "field": "tier", "value": "standard" },
    "charge": { "type": "webhook", "url": "https://x.example/charge", "compensation": "refund" },
    "refund": { "type": "webhook", "url": "https://x.example/refund" },
    "notify": { "type": "notify", "to": ["role:ops"], "message": "placed" },
    "ship": { "type": "webhook", "url": "https://x.example/ship", "compensation": "recall" },
    "recall": { "type": "webhook", "url": "https://x.example/recall" }
  }
}"#;

#[test]
fn a_failed_action_compensates_the_succeeded_ones_in_reverse_order() -> Result {
    let m = compile(SAGA);
    let u = user("u");
    let order = m.create_by_name("order", &Json::Null, &u, at(0))?;
    let placed = fire(&m, &order.state, "place", &u)?;
    assert_eq!(placed.outbox_names(OutboxKind::Action), ["reserve", "charge", "notify", "ship"]);
    assert_eq!(m.data_json(&placed.state)["tier"], "gold", "set_field applies in the step");
    assert_eq!(placed.history[0].after, json!({"stage": "placed", "data": {"tier": "gold"}}));
    let run =
        |name: &str| placed.outbox.iter().find(|o| o.name == name).and_then(|o| o.run).expect("tracked run");

    let reserved = m.action_succeeded(&placed.state, run("reserve"), at(1))?;
    let charged = m.action_succeeded(&reserved.state, run("charge"), at(2))?;
    let failed = m.action_failed(&charged.state, run("notify"), "no such role", at(3))?;
    assert_eq!(failed.outbox_names(OutboxKind::Compensation), ["refund", "release"]);
    assert_eq!(m.data_json(&failed.state)["tier"], "standard", "the set_field compensation ran in place");
    assert_eq!(failed.history[0].after, json!({"data": {"tier": "standard"}}));
    assert_eq!(failed.history[0].payload["compensations"], json!(["refund", "unmark", "release"]));
    assert_eq!(stage(&m, &failed.state), "placed", "the stage change stays");

    // `ship` was still running: once it succeeds, it is undone at once.
    let shipped = m.action_succeeded(&failed.state, run("ship"), at(4))?;
    assert_eq!(shipped.outbox_names(OutboxKind::Compensation), ["recall"]);
    assert!(shipped.state.runs.is_empty());
    assert!(failed.state.runs.iter().any(|r| r.status == RunStatus::Compensated));
    Ok(())
}

// ----- automatic transitions -------------------------------------------------------------------

const PING_PONG: &str = r#"{
  "id": "loop",
  "dataSchema": { "spin": { "type": "boolean" }, "x": { "type": "number" } },
  "entities": { "toy": { "stages": ["ping", "pong", "ratio"] } },
  "transitions": {
    "to_pong": { "from": "ping", "to": "pong", "condition": "data.spin == true" },
    "to_ping": { "from": "pong", "to": "ping", "condition": "data.spin == true" },
    "divide": { "from": "ping", "to": "ratio", "condition": "data.odd > 50" }
  }
}"#;

#[test]
fn automatic_cycles_are_bounded() -> Result {
    let m = compile(PING_PONG);
    let u = user("u");
    let err = m.create_by_name("toy", &json!({"spin": true}), &u, at(0)).expect_err("cycles");
    let MachineError::AutoTransitionLimit { limit, path } = err else {
        panic!("expected the limit, got {err:?}")
    };
    assert_eq!(limit, nexus_crm::engine::machine::MAX_AUTO_STEPS);
    assert_eq!(path.len(), 8);

    let toy = m.create_by_name("toy", &json!({"spin": false}), &u, at(0))?;
    let err = m.update_data(&toy.state, &patch(json!({"spin": true})), &u, at(1)).expect_err("cycles");
    assert!(matches!(err, MachineError::AutoTransitionLimit { .. }));
    assert_eq!(stage(&m, &toy.state), "ping");
    Ok(())
}

#[test]
fn an_automatic_transition_that_cannot_be_evaluated_is_recorded_not_fatal() -> Result {
    let m = compile(PING_PONG);
    let u = user("u");
    // `odd` is undeclared (a warning at compile time) and holds a string: `>` cannot compare it.
    let toy = m.create_by_name("toy", &json!({"odd": "high"}), &u, at(0))?;
    let refused: Vec<_> = toy.history_of(events::AUTO_TRANSITION_REFUSED).collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].payload["transition"], "divide");
    // Fired by hand, the same problem refuses the transition with the evaluation error.
    let err = fire(&m, &toy.state, "divide", &u).expect_err("cannot compare");
    assert!(matches!(err, MachineError::Evaluation { .. }), "{err:?}");
    Ok(())
}

// ----- assignment and delegation -----------------------------------------------------------------

fn delegation(from: &str, to: &str) -> Delegation {
    Delegation { from: from.into(), to: to.into(), start: None, end: None, entities: Vec::new() }
}

fn today() -> NaiveDate {
    at(0).date_naive()
}

#[test]
fn self_assignment_is_refused_unless_allowed() -> Result {
    let m = shipped("sales-pipeline");
    let ana = user("ana");
    let lead = m.create_by_name("lead", &Json::Null, &ana, at(0))?;
    let err = m.assign(&lead.state, "ana", &ana, &[], &NoDirectory, today(), at(1)).expect_err("BR-001");
    assert_eq!(err, MachineError::SelfAssignment { user: "ana".into() });
    let step = m.assign(&lead.state, "bob", &ana, &[], &NoDirectory, today(), at(1))?;
    assert_eq!(step.state.assignee.as_deref(), Some("bob"));
    assert_eq!(step.history[0].after, json!({"assignee": "bob"}));

    let tickets = shipped("support-queue");
    let ticket =
        tickets.create_by_name("ticket", &json!({"subject": "Help me", "priority": "low"}), &ana, at(0))?;
    let step = tickets.assign(&ticket.state, "ana", &ana, &[], &NoDirectory, today(), at(1))?;
    assert_eq!(step.state.assignee.as_deref(), Some("ana"), "allow_self_assignment: true");
    Ok(())
}

#[test]
fn delegations_are_followed_at_most_three_deep_and_cycles_refused() -> Result {
    let m = shipped("sales-pipeline");
    let boss = user("boss");
    let lead = m.create_by_name("lead", &Json::Null, &boss, at(0))?;
    let chain = [delegation("a", "b"), delegation("b", "c"), delegation("c", "d")];
    let step = m.assign(&lead.state, "a", &boss, &chain, &NoDirectory, today(), at(1))?;
    assert_eq!(step.state.assignee.as_deref(), Some("d"));
    assert_eq!(step.history[0].payload["chain"], json!(["a", "b", "c", "d"]));

    let too_deep = [chain.as_slice(), &[delegation("d", "e")]].concat();
    let err = m.assign(&lead.state, "a", &boss, &too_deep, &NoDirectory, today(), at(1)).expect_err("4 hops");
    assert!(matches!(err, MachineError::DelegationTooDeep { max_depth: 3, .. }));

    let cycle = [delegation("a", "b"), delegation("b", "a")];
    let err = m.assign(&lead.state, "a", &boss, &cycle, &NoDirectory, today(), at(1)).expect_err("cycle");
    assert_eq!(err, MachineError::DelegationCycle { chain: vec!["a".into(), "b".into(), "a".into()] });

    // Out of its dates, or for another entity, a delegation does not apply.
    let expired = Delegation { end: NaiveDate::from_ymd_opt(2026, 1, 1), ..delegation("a", "b") };
    let elsewhere = Delegation {
        entities: vec![m.definition().entity_named("opportunity").expect("entity")],
        ..delegation("a", "c")
    };
    let step = m.assign(&lead.state, "a", &boss, &[expired, elsewhere], &NoDirectory, today(), at(1))?;
    assert_eq!(step.state.assignee.as_deref(), Some("a"));
    Ok(())
}

#[test]
fn the_definitions_delegation_rules_apply_by_date() -> Result {
    let m = shipped("partner-program");
    let lead = user("head");
    let app = m.create_by_name("application", &json!({"company": "Initech"}), &lead, at(0))?;
    let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).expect("valid date");
    let step = m.assign(&app.state, "pm_ines", &lead, &[], &NoDirectory, day(12, 22), at(0))?;
    assert_eq!(step.state.assignee.as_deref(), Some("pm_tom"));
    let step = m.assign(&app.state, "pm_ines", &lead, &[], &NoDirectory, day(12, 30), at(0))?;
    assert_eq!(step.state.assignee.as_deref(), Some("pm_ada"));
    // Delegation first, then BR-001: Tom assigning Ines's work would give it to himself.
    let err = m
        .assign(&app.state, "pm_ines", &user("pm_tom"), &[], &NoDirectory, day(12, 22), at(0))
        .expect_err("self");
    assert!(matches!(err, MachineError::SelfAssignment { .. }));
    Ok(())
}

// ----- timers ------------------------------------------------------------------------------------

#[test]
fn sla_reminder_and_escalation_timers_have_absolute_due_times() -> Result {
    let m = shipped("support-queue");
    let new = m
        .definition()
        .stage_named(m.definition().entity_named("ticket").expect("entity"), "new")
        .expect("stage");
    let agent = with_roles("sam", &["support_agent"]);
    let ticket =
        m.create_by_name("ticket", &json!({"subject": "VPN down", "priority": "urgent"}), &agent, at(0))?;
    let expected = vec![
        (TimerKind::SlaAtRisk { stage: None }, at(6 * 60)),
        (TimerKind::SlaBreach { stage: None }, at(8 * 60)),
        (TimerKind::Reminder { index: 0 }, at(7 * 60)),
        (TimerKind::Reminder { index: 1 }, at(5 * 60 + 30)),
        (TimerKind::SlaAtRisk { stage: Some(new) }, at(45)),
        (TimerKind::SlaBreach { stage: Some(new) }, at(60)),
        (TimerKind::Escalation { index: 0, stage: new }, at(2 * 60)),
        (TimerKind::Escalation { index: 1, stage: new }, at(4 * 60)),
        (TimerKind::Escalation { index: 2, stage: new }, at(24 * 60)),
    ];
    assert_eq!(schedules(&ticket), expected);

    // Leaving `new` cancels its timers and counts escalations from entering `triaged`.
    let triaged = m.fire_by_name(&ticket.state, "triage", &agent, at(30))?;
    let t = triaged.state.stage;
    assert_eq!(
        cancels(&triaged),
        [
            TimerKind::SlaAtRisk { stage: Some(new) },
            TimerKind::SlaBreach { stage: Some(new) },
            TimerKind::Escalation { index: 0, stage: new },
            TimerKind::Escalation { index: 1, stage: new },
            TimerKind::Escalation { index: 2, stage: new },
        ]
    );
    assert_eq!(schedules(&triaged)[1], (TimerKind::Escalation { index: 1, stage: t }, at(30 + 4 * 60)));

    for (kind, _) in schedules(&ticket) {
        let text = kind.encode(m.definition());
        assert_eq!(TimerKind::decode(m.definition(), ticket.state.entity, &text), Some(kind), "{text}");
    }
    assert_eq!(TimerKind::Escalation { index: 1, stage: t }.encode(m.definition()), "escalation#1@triaged");

    let stale = m
        .timer_due(&triaged.state, TimerKind::Escalation { index: 0, stage: new }, at(120))
        .expect_err("left");
    assert!(matches!(stale, MachineError::StaleTimer { .. }));
    // The second escalation (urgent tickets still in triage) holds; the first (`stage == 'new'`) does not.
    let escalated = m.timer_due(&triaged.state, TimerKind::Escalation { index: 1, stage: t }, at(270))?;
    assert_eq!(escalated.outbox_names(OutboxKind::Action), ["page_on_call"]);
    assert_eq!(escalated.history[0].payload["level"], 2);
    let skipped = m.timer_due(&triaged.state, TimerKind::Escalation { index: 0, stage: t }, at(150))?;
    assert_eq!(skipped.history[0].event, events::ESCALATION_SKIPPED);

    // The breach runs its actions; `raise_priority` sets the field in the same step.
    let calm = m.update_data(&triaged.state, &patch(json!({"priority": "low"})), &agent, at(40))?;
    let breached = m.timer_due(&calm.state, TimerKind::SlaBreach { stage: None }, at(480))?;
    assert_eq!(breached.outbox_names(OutboxKind::Action), ["notify_support_lead"]);
    assert_eq!(m.data_json(&breached.state)["priority"], "urgent");
    assert_eq!(breached.history[0].after, json!({"data": {"priority": "urgent"}}));
    Ok(())
}

#[test]
fn the_top_level_sla_applies_and_completion_cancels_the_entity_timers() -> Result {
    let m = shipped("enterprise-crm");
    let u = user("u");
    let lead = m.create_by_name("lead", &Json::Null, &u, at(0))?;
    let entity: Vec<_> = schedules(&lead).into_iter().filter(|(k, _)| k.stage().is_none()).collect();
    assert_eq!(
        entity,
        [
            (TimerKind::SlaAtRisk { stage: None }, at(36 * 60)),
            (TimerKind::SlaBreach { stage: None }, at(48 * 60)),
            (TimerKind::Reminder { index: 0 }, at(44 * 60)),
        ]
    );
    let contacted = fire(&m, &lead.state, "contact_lead", &u)?;
    let qualified = fire(&m, &contacted.state, "qualify_lead", &u)?;
    assert_eq!(qualified.state.status, InstanceStatus::Completed, "`qualified` is inferred terminal");
    assert!(cancels(&qualified).contains(&TimerKind::SlaBreach { stage: None }));
    assert!(schedules(&qualified).is_empty());
    assert!(events_of(&qualified).contains(&events::INSTANCE_COMPLETED));
    let err =
        m.timer_due(&qualified.state, TimerKind::SlaBreach { stage: None }, at(48 * 60)).expect_err("done");
    assert!(matches!(err, MachineError::StaleTimer { .. }));
    Ok(())
}

// ----- every error -------------------------------------------------------------------------------

fn variant(error: &MachineError) -> String {
    format!("{error:?}").split([' ', '{', '(']).next().unwrap_or_default().to_owned()
}

const NOTHING_APPLIES: &str = r#"{
  "id": "inclusive",
  "dataSchema": { "n": { "type": "number" } },
  "entities": { "job": { "stages": ["start", "joined"] } },
  "gateways": { "split": { "type": "inclusive", "from": "start", "join": "joined",
                           "branches": { "a": { "condition": "data.n > 1" }, "b": { "condition": "data.n > 2" } } } }
}"#;

#[test]
fn every_machine_error_variant_is_reachable() -> Result {
    let mut seen = BTreeSet::new();
    macro_rules! refused {
        ($command:expr) => {
            match $command {
                Ok(_) => panic!("expected an error from `{}`", stringify!($command)),
                Err(e) => seen.insert(variant(&e)),
            }
        };
    }
    let u = user("u");

    let sales = shipped("sales-pipeline");
    let lead = sales.create_by_name("lead", &json!({"lead_score": 10}), &u, at(0))?;
    refused!(sales.create_by_name("leed", &Json::Null, &u, at(0)));
    let err = sales.fire_by_name(&lead.state, "make_contakt", &u, at(0)).expect_err("typo");
    let help = Some("did you mean `make_contact`?".to_owned());
    assert_eq!(err, MachineError::UnknownTransition { name: "make_contakt".into(), help });
    refused!(Err::<Step, _>(err));
    refused!(fire(&sales, &lead.state, "win_deal", &u)); // WrongEntity
    refused!(fire(&sales, &lead.state, "win_lead", &u)); // WrongStage
    let lost = fire(&sales, &lead.state, "lose_lead", &u)?;
    refused!(fire(&sales, &lost.state, "make_contact", &u)); // InstanceCompleted
    let contacted = fire(&sales, &lead.state, "make_contact", &u)?;
    refused!(fire(&sales, &contacted.state, "qualify_lead", &u)); // ConditionFalse
    refused!(sales.update_data(&lead.state, &patch(json!({"lead_score": 101})), &u, at(0))); // InvalidData
    refused!(sales.assign(&lead.state, "u", &u, &[], &NoDirectory, today(), at(0))); // SelfAssignment
    refused!(sales.assign(
        &lead.state,
        "a",
        &u,
        &[delegation("a", "b"), delegation("b", "a")],
        &NoDirectory,
        today(),
        at(0)
    ));
    let deep: Vec<_> = ["a", "b", "c", "d", "e"].windows(2).map(|w| delegation(w[0], w[1])).collect();
    refused!(sales.assign(&lead.state, "a", &u, &deep, &NoDirectory, today(), at(0))); // DelegationTooDeep
    refused!(sales.action_succeeded(&lead.state, RunId { step: 9, seq: 0 }, at(0))); // UnknownRun
    refused!(sales.timer_due(&lead.state, TimerKind::Reminder { index: 0 }, at(0))); // StaleTimer
    let opportunity = sales.create_by_name("opportunity", &Json::Null, &u, at(0))?;
    refused!(fire(&sales, &opportunity.state, "negotiate", &u)); // GuardRefused

    let toy = compile(PING_PONG);
    let odd = toy.create_by_name("toy", &json!({"odd": "x"}), &u, at(0))?;
    refused!(fire(&toy, &odd.state, "divide", &u)); // Evaluation
    refused!(toy.create_by_name("toy", &json!({"spin": true}), &u, at(0))); // AutoTransitionLimit

    let partners = shipped("partner-program");
    let app = partners.create_by_name(
        "application",
        &json!({"company": "X", "tier": "gold", "region": "EU"}),
        &u,
        at(0),
    )?;
    refused!(fire(&partners, &app.state, "screen", &u)); // UnknownGuard
    let partners = partners.with_guard("sanctions_screening", |_: Option<&Json>, _: &Context<'_>| true);
    let screened = fire(&partners, &app.state, "screen", &u)?;
    refused!(fire(&partners, &screened.state, "reject", &u)); // UnknownStrategy
    let head = with_roles("h", &["head_of_partners"]);
    let pending = fire(&partners, &screened.state, "fast_track", &head)?;
    refused!(fire(&partners, &pending.state, "fast_track", &head)); // ApprovalPending
    let (approve, fast_track) = (tid(&partners, "approve"), tid(&partners, "fast_track"));
    refused!(partners.respond(&pending.state, approve, &u, Vote::Approve, &NoDirectory, at(0))); // NoPendingApproval
    refused!(partners.respond(&pending.state, fast_track, &u, Vote::Approve, &NoDirectory, at(0))); // NotAnApprover
    let forked = fire(&partners, &screened.state, "onboarding_checks", &u)?;
    refused!(fire(&partners, &forked.state, "onboarding_checks", &u)); // GatewayRunning
    let g = gid(&partners, "onboarding_checks");
    refused!(partners.complete_branch(
        &forked.state,
        g,
        branch(&partners, "onboarding_checks", "finance"),
        &u,
        at(0)
    ));

    let approvals = compile(APPROVALS);
    let deal = approvals.create_by_name("deal", &Json::Null, &u, at(0))?;
    let asked = fire(&approvals, &deal.state, "unison", &u)?;
    let unison = tid(&approvals, "unison");
    let once = approvals.respond(&asked.state, unison, &user("a"), Vote::Approve, &NoDirectory, at(0))?;
    refused!(approvals.respond(&once.state, unison, &user("a"), Vote::Approve, &NoDirectory, at(0))); // AlreadyResponded

    let inclusive = compile(NOTHING_APPLIES);
    let job = inclusive.create_by_name("job", &json!({"n": 0}), &u, at(0))?;
    refused!(fire(&inclusive, &job.state, "split", &u)); // NoBranchApplies

    let ten = compile(&ten_branches());
    let launch = ten.create_by_name("launch", &Json::Null, &u, at(0))?;
    let running = fire(&ten, &launch.state, "go", &u)?;
    let done = ten.complete_branch(&running.state, gid(&ten, "go"), 0, &u, at(0))?;
    refused!(ten.complete_branch(&done.state, gid(&ten, "go"), 0, &u, at(0))); // BranchNotActive

    let mut custom = shipped("sales-pipeline");
    let broken = Field {
        name: "b".into(),
        ty: FieldType::String,
        required: false,
        min: None,
        max: None,
        allowed: Vec::new(),
        pattern: Some("(".into()),
        label: None,
    };
    refused!(custom.add_field(broken)); // InvalidPattern

    let all: BTreeSet<String> = [
        "UnknownEntity",
        "UnknownTransition",
        "WrongEntity",
        "WrongStage",
        "InstanceCompleted",
        "GuardRefused",
        "UnknownGuard",
        "ConditionFalse",
        "Evaluation",
        "InvalidData",
        "ApprovalPending",
        "NoPendingApproval",
        "NotAnApprover",
        "AlreadyResponded",
        "UnknownStrategy",
        "SelfAssignment",
        "DelegationCycle",
        "DelegationTooDeep",
        "NoBranchApplies",
        "GatewayRunning",
        "BranchNotActive",
        "BranchNotManual",
        "UnknownRun",
        "StaleTimer",
        "AutoTransitionLimit",
        "InvalidPattern",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(seen, all);
    Ok(())
}

#[test]
fn errors_render_as_diagnostics() {
    let m = shipped("sales-pipeline");
    let u = user("u");
    let Ok(lead) = m.create_by_name("lead", &Json::Null, &u, at(0)) else { panic!("creates") };
    let err = fire(&m, &lead.state, "win_lead", &u).expect_err("wrong stage");
    assert_eq!(err.to_string(), "`win_lead` cannot be fired from stage `new`");
    let help = miette::Diagnostic::help(&err).map(|h| h.to_string());
    assert_eq!(help.as_deref(), Some("it leaves from: opportunity"));
    assert_eq!(
        miette::Diagnostic::code(&err).map(|c| c.to_string()).as_deref(),
        Some("crm::machine::wrong_stage")
    );
}

#[test]
fn machines_and_steps_cross_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Machine>();
    shareable::<Step>();
    shareable::<MachineError>();
}
