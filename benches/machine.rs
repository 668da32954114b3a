//! In-memory transitions: `Machine::fire` against a hand-written `match` state machine doing the
//! same stage update and history push.
//!
//! Target (issue #3): ≥ 1,000,000 transitions per second on one core.

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use criterion::{Criterion, criterion_group};
use nexus_crm::engine::eval::Actor;
use nexus_crm::engine::machine::{InstanceState, Machine, Step};
use nexus_crm::ir::{GatewayId, TransitionId};
use serde_json::json;

const SOURCE: &str = r#"{
  "id": "bench",
  "dataSchema": { "score": { "type": "number" }, "source": { "type": "string" } },
  "entities": { "lead": { "stages": ["new", "contacted", "qualified", "closed"] } },
  "transitions": {
    "contact": { "from": "new", "to": "contacted" },
    "qualify": { "from": "contacted", "to": "qualified", "trigger": "manual",
                 "guards": [{ "type": "role_check", "role": "sales_rep" }],
                 "condition": "data.score > 50 AND data.source == 'web'", "actions": ["notify"] },
    "close": { "from": "qualified", "to": "closed" }
  },
  "actions": { "notify": { "type": "notify", "to": ["role:sales_manager"], "message": "qualified" } }
}"#;

struct Prepared {
    machine: Machine,
    new: InstanceState,
    contacted: InstanceState,
    contact: TransitionId,
    qualify: TransitionId,
    actor: Actor,
    now: DateTime<Utc>,
}

fn prepare() -> Prepared {
    let checked = nexus_crm::check::check_source(SOURCE);
    let Some(def) = checked.definition else {
        panic!("benchmark definition must compile: {:?}", checked.diagnostics)
    };
    let machine = Machine::new(def).expect("no patterns");
    let now = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).single().expect("valid time");
    let actor = Actor { id: "ana".into(), roles: vec!["sales_rep".into()], permissions: Vec::new() };
    let new = machine
        .create_by_name("lead", &json!({"score": 72, "source": "web"}), &actor, now)
        .expect("creates")
        .state;
    let contact = machine.transition_id("contact").expect("exists");
    let qualify = machine.transition_id("qualify").expect("exists");
    let contacted = machine.fire(&new, contact, &actor, now).expect("fires").state;
    Prepared { machine, new, contacted, contact, qualify, actor, now }
}

fn fire_simple(p: &Prepared) -> Step {
    p.machine.fire(&p.new, p.contact, &p.actor, p.now).expect("applies")
}

fn fire_guarded(p: &Prepared) -> Step {
    p.machine.fire(&p.contacted, p.qualify, &p.actor, p.now).expect("applies")
}

/// The baseline: the same pure update written by hand for this one pipeline — a `match` on
/// (stage, transition), a copy of the state with the new stage and version, one history entry.
mod baseline {
    use std::sync::Arc;

    use chrono::{DateTime, Utc};

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Stage {
        New,
        Contacted,
        Qualified,
        Closed,
    }

    #[derive(Clone, Copy)]
    #[expect(dead_code, reason = "only `Contact` is timed; the other arms keep the match a real dispatch")]
    pub enum Transition {
        Contact,
        Qualify,
        Close,
    }

    #[derive(Clone)]
    #[expect(dead_code, reason = "carried along so the copy costs what a real state's does")]
    pub struct State {
        pub stage: Stage,
        pub data: Arc<Vec<(String, f64)>>,
        pub assignee: Option<String>,
        pub version: u64,
    }

    #[expect(dead_code, reason = "written, as a history row is, never read back")]
    pub struct Entry {
        pub from: Stage,
        pub to: Stage,
        pub actor: String,
        pub at: DateTime<Utc>,
    }

    pub fn fire(
        state: &State,
        t: Transition,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<(State, Vec<Entry>), &'static str> {
        let to = match (state.stage, t) {
            (Stage::New, Transition::Contact) => Stage::Contacted,
            (Stage::Contacted, Transition::Qualify) => Stage::Qualified,
            (Stage::Qualified, Transition::Close) => Stage::Closed,
            _ => return Err("wrong stage"),
        };
        let mut next = state.clone();
        next.stage = to;
        next.version += 1;
        let history = vec![Entry { from: state.stage, to, actor: actor.to_owned(), at }];
        Ok((next, history))
    }

    pub fn start() -> State {
        State { stage: Stage::New, data: Arc::new(vec![("score".into(), 72.0)]), assignee: None, version: 1 }
    }
}

fn fire_baseline(state: &baseline::State, now: DateTime<Utc>) -> (baseline::State, Vec<baseline::Entry>) {
    baseline::fire(state, baseline::Transition::Contact, "ana", now).expect("applies")
}

/// A parallel gateway with ten sign-off branches.
struct TenBranches {
    machine: Machine,
    ready: InstanceState,
    gateway: GatewayId,
}

fn ten_branches(actor: &Actor, now: DateTime<Utc>) -> TenBranches {
    let branches: Vec<String> = (0..10).map(|i| format!(r#""b{i}": {{}}"#)).collect();
    let source = format!(
        r#"{{"id": "ten", "entities": {{"launch": {{"stages": ["ready", "live"]}}}},
            "gateways": {{"go": {{"type": "parallel", "from": "ready", "join": "live", "branches": {{{}}}}}}}}}"#,
        branches.join(", ")
    );
    let checked = nexus_crm::check::check_source(&source);
    let Some(def) = checked.definition else {
        panic!("ten-branch definition must compile: {:?}", checked.diagnostics)
    };
    let machine = Machine::new(def).expect("no patterns");
    let ready =
        machine.create_by_name("launch", &serde_json::Value::Null, actor, now).expect("creates").state;
    let gateway = machine.definition().gateway_named("go").expect("exists");
    TenBranches { machine, ready, gateway }
}

/// Fork, complete every branch, join: eleven steps.
fn join_ten(ten: &TenBranches, actor: &Actor, now: DateTime<Utc>) -> InstanceState {
    let mut state = ten.machine.fire_gateway(&ten.ready, ten.gateway, actor, now).expect("forks").state;
    for b in 0..10 {
        state = ten.machine.complete_branch(&state, ten.gateway, b, actor, now).expect("completes").state;
    }
    state
}

fn bench(c: &mut Criterion) {
    let p = prepare();
    let start = baseline::start();
    assert_eq!(fire_baseline(&start, p.now).0.stage, baseline::Stage::Contacted);
    let mut group = c.benchmark_group("transition");
    group.bench_function("machine fire (manual)", |b| b.iter(|| fire_simple(black_box(&p))));
    group.bench_function("machine fire (guard, condition, action)", |b| {
        b.iter(|| fire_guarded(black_box(&p)))
    });
    group.bench_function("hand-written match", |b| b.iter(|| fire_baseline(black_box(&start), p.now)));
    group.finish();
    let ten = ten_branches(&p.actor, p.now);
    c.bench_function("10-branch parallel fork and join (in memory)", |b| {
        b.iter(|| join_ten(&ten, &p.actor, p.now))
    });
}

fn summary() {
    let p = prepare();
    let start = baseline::start();
    let ten = ten_branches(&p.actor, p.now);
    let budget = Duration::from_millis(700);
    let simple = support::time_per_call(budget, || fire_simple(&p));
    let guarded = support::time_per_call(budget, || fire_guarded(&p));
    let hand = support::time_per_call(budget, || fire_baseline(&start, p.now));
    let join = support::time_per_call(budget, || join_ten(&ten, &p.actor, p.now));
    let rate = |d: Duration| 1.0 / d.as_secs_f64();
    println!("\n== in-memory transitions (one core) ==");
    println!(
        "machine fire, manual                 : {:>9}  {:>12.0}/s   (target ≥ 1,000,000/s)",
        support::human(simple),
        rate(simple)
    );
    println!(
        "machine fire, guard+condition+action : {:>9}  {:>12.0}/s",
        support::human(guarded),
        rate(guarded)
    );
    println!("hand-written match + history push    : {:>9}  {:>12.0}/s", support::human(hand), rate(hand));
    println!("ratio machine / hand-written         : {:>9.1}×", simple.as_secs_f64() / hand.as_secs_f64());
    println!("10-branch fork + 10 completions + join: {:>8}", support::human(join));
}

criterion_group!(benches, bench);

fn main() {
    benches();
    summary();
    criterion::Criterion::default().configure_from_args().final_summary();
}
