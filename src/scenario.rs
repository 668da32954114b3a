//! Scenario files: scripted runs of a definition with expectations, for `crm test`.
//!
//! A file names one definition and holds scenarios; each scenario runs on a fresh in-memory
//! SQLite engine (tenant `test`) with a virtual clock that only [`Step::Advance`] moves, so runs
//! are deterministic. Advancing fires the timers that fall due on the way, each at its own due
//! time; after every step the outbox is delivered to a recorder, so expectations can name the
//! events and actions an instance produced. The format is documented in `docs/scenarios.md`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use crate::engine::eval::{Actor, Context};
use crate::engine::machine::{ApprovalResponse, Decision, InstanceStatus, TokenStatus, Vote};
use crate::engine::service::{
    ActionHandler, ActionResult, Delivered, Engine, EngineError, InstanceView, NewDelegation, TimerOutcome,
};
use crate::store::{PendingQuery, PendingReason, SqliteStore, Store, TenantId};
use crate::syntax::duration::{parse_date, parse_duration};

/// Where every scenario's virtual clock starts: a fixed instant keeps runs reproducible.
const EPOCH: &str = "2026-01-05T09:00:00Z";

/// The runner's claims (it processes what it claims at once, so the length hardly matters).
const LEASE: Duration = Duration::from_secs(60);

/// The latest time a scenario's clock may reach.
fn latest_time() -> DateTime<Utc> {
    // 9999-12-31T23:59:59Z is a valid timestamp; the fallback cannot be taken.
    DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The most timers one `advance` fires: a definition whose timers keep rescheduling themselves
/// fails the step instead of hanging the run.
const MAX_TIMERS_PER_ADVANCE: usize = 10_000;

/// A parsed scenario file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// The definition file, relative to the scenario file.
    pub definition: String,
    /// Custom guards the definition uses, by name, and whether they pass.
    #[serde(default)]
    pub custom_guards: HashMap<String, bool>,
    /// Custom approval strategies the definition uses, by name.
    #[serde(default)]
    pub custom_strategies: HashMap<String, CustomStrategy>,
    /// Who holds each role, for approvals that list roles.
    #[serde(default)]
    pub directory: HashMap<String, Vec<String>>,
    /// The scenarios, run in order, each on a fresh engine.
    pub scenarios: Vec<Scenario>,
}

/// A custom approval strategy by counts: approved at `approve_at` approvals, rejected at
/// `reject_at` rejections, whichever comes first.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomStrategy {
    /// Approvals that approve.
    pub approve_at: usize,
    /// Rejections that reject (default 1).
    #[serde(default = "one")]
    pub reject_at: usize,
}

fn one() -> usize {
    1
}

/// One scenario: a name and its steps.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Shown in the runner's output.
    pub name: String,
    /// Run in order; the first failing step ends the scenario.
    pub steps: Vec<Step>,
}

/// One step: a command (optionally expected to fail), a clock move, or an expectation.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Creates an instance and names it.
    Create(Create),
    /// Merges data into an instance.
    Update(Update),
    /// Fires a transition or gateway.
    Fire(Fire),
    /// Approves a pending approval.
    Approve(Respond),
    /// Rejects a pending approval.
    Reject(Respond),
    /// Completes a manual gateway branch.
    CompleteBranch(CompleteBranch),
    /// Assigns an instance (following delegations).
    Assign(Assign),
    /// Records a delegation.
    Delegate(Delegate),
    /// Removes a delegation named by an earlier `delegate`.
    Undelegate(String),
    /// Moves the virtual clock forward by a duration such as `"2 hours"`, firing the timers that
    /// fall due on the way.
    Advance(String),
    /// Checks an instance.
    Expect(Expect),
    /// Checks a user's dashboard.
    ExpectPending(ExpectPending),
}

/// `{"assign": …}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    /// The instance name.
    pub instance: String,
    /// The user to assign (delegations may lead further).
    pub to: String,
    /// The acting user.
    #[serde(rename = "as")]
    pub actor: String,
    /// The actor's roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The error code expected instead of success.
    #[serde(default)]
    pub expect_error: Option<String>,
}

/// `{"delegate": …}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delegate {
    /// The name an `undelegate` step uses.
    #[serde(default)]
    pub id: Option<String>,
    /// Who delegates.
    pub from: String,
    /// To whom.
    pub to: String,
    /// First day, `YYYY-MM-DD`.
    #[serde(default, deserialize_with = "date")]
    pub start: Option<NaiveDate>,
    /// Last day, `YYYY-MM-DD`.
    #[serde(default, deserialize_with = "date")]
    pub end: Option<NaiveDate>,
    /// Only this entity.
    #[serde(default)]
    pub entity: Option<String>,
    /// The error code expected instead of success.
    #[serde(default)]
    pub expect_error: Option<String>,
}

/// `{"expect_pending": …}`: a user's dashboard.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectPending {
    /// The user.
    pub user: String,
    /// Every instance on the dashboard, by name, in any order.
    pub instances: Vec<String>,
    /// For some of them, why: `"assigned"`, `"delegated:FROM"` or `"approval:TRANSITION"`.
    #[serde(default)]
    pub reasons: HashMap<String, String>,
}

/// `{"create": …}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Create {
    /// The entity.
    pub entity: String,
    /// The name later steps use for the instance.
    pub id: String,
    /// Initial data.
    #[serde(default)]
    pub data: Option<Json>,
    /// The acting user.
    #[serde(rename = "as")]
    pub actor: String,
    /// The actor's roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The actor's permissions.
    #[serde(default)]
    pub permissions: Vec<String>,
    /// The error code expected instead of success.
    #[serde(default)]
    pub expect_error: Option<String>,
}

/// `{"update": …}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Update {
    /// The instance name.
    pub instance: String,
    /// A merge patch: a key sets its field, `null` removes it.
    pub data: Map<String, Json>,
    /// The acting user.
    #[serde(rename = "as")]
    pub actor: String,
    /// The actor's roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The actor's permissions.
    #[serde(default)]
    pub permissions: Vec<String>,
    /// The error code expected instead of success.
    #[serde(default)]
    pub expect_error: Option<String>,
}

/// `{"fire": …}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fire {
    /// The instance name.
    pub instance: String,
    /// The transition or gateway.
    pub transition: String,
    /// The acting user.
    #[serde(rename = "as")]
    pub actor: String,
    /// The actor's roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The actor's permissions.
    #[serde(default)]
    pub permissions: Vec<String>,
    /// The error code expected instead of success.
    #[serde(default)]
    pub expect_error: Option<String>,
}

/// `{"approve": …}` and `{"reject": …}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Respond {
    /// The instance name.
    pub instance: String,
    /// The transition waiting for approval.
    pub transition: String,
    /// The approver.
    #[serde(rename = "as")]
    pub actor: String,
    /// The approver's roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The error code expected instead of success.
    #[serde(default)]
    pub expect_error: Option<String>,
}

/// `{"complete_branch": …}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteBranch {
    /// The instance name.
    pub instance: String,
    /// The running gateway.
    pub gateway: String,
    /// The branch.
    pub branch: String,
    /// The acting user.
    #[serde(rename = "as")]
    pub actor: String,
    /// The error code expected instead of success.
    #[serde(default)]
    pub expect_error: Option<String>,
}

/// `{"expect": …}`: every given field is checked, absent ones are not.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The instance name.
    pub instance: String,
    /// The main stage.
    #[serde(default)]
    pub stage: Option<String>,
    /// `"active"` or `"completed"`.
    #[serde(default)]
    pub status: Option<String>,
    /// A subset of the data: each key must be present with an equal value.
    #[serde(default)]
    pub data: Option<Map<String, Json>>,
    /// History events that must occur in this order (others may come between).
    #[serde(default)]
    pub history_events: Option<Vec<String>>,
    /// The transition waiting for approval, or `null` for none.
    #[serde(default, deserialize_with = "some")]
    pub pending_approval: Option<Option<String>>,
    /// The running gateway's active branches, in any order.
    #[serde(default)]
    pub branches: Option<Vec<String>>,
    /// The assignee, or `null` for none.
    #[serde(default, deserialize_with = "some")]
    pub assignee: Option<Option<String>>,
    /// SLA clocks by scope (stage or entity name): the status of the latest one.
    #[serde(default)]
    pub sla: Option<HashMap<String, String>>,
    /// The levels of the escalations recorded, in order.
    #[serde(default)]
    pub escalations: Option<Vec<u32>>,
    /// Events and actions delivered from the outbox, in this order (others may come between).
    #[serde(default)]
    pub outbox: Option<Vec<String>>,
}

/// A strict `YYYY-MM-DD` date, as definitions write them.
fn date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|text| parse_date(&text).map_err(|e| serde::de::Error::custom(format!("`{text}`: {e}"))))
        .transpose()
}

/// Keeps an explicit `null` apart from an absent key.
fn some<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl ScenarioFile {
    /// Parses a scenario file; the error names the JSON path of the problem.
    pub fn parse(text: &str) -> Result<Self, String> {
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let scenario = scenario_name(text, &path);
            let inner = e.into_inner();
            if path == "." { inner.to_string() } else { format!("at `{path}`{scenario}: {inner}") }
        })
    }
}

/// `" (scenario \"…\")"` when `path` points inside a scenario whose name can be read.
fn scenario_name(text: &str, path: &str) -> String {
    let index = path
        .strip_prefix("scenarios[")
        .and_then(|rest| rest.split(']').next())
        .and_then(|i| i.parse::<usize>().ok());
    let name = index.and_then(|i| {
        let value: Json = serde_json::from_str(text).ok()?;
        value.get("scenarios")?.get(i)?.get("name")?.as_str().map(str::to_owned)
    });
    name.map(|n| format!(" (scenario \"{n}\")")).unwrap_or_default()
}

/// Why a scenario failed: the 1-based step and what went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The step, counting from 1; 0 when setting up the engine failed.
    pub step: usize,
    /// Expected versus actual, or the unexpected error.
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.step {
            0 => write!(f, "setup: {}", self.message),
            n => write!(f, "step {n}: {}", self.message),
        }
    }
}

/// What a scenario's engine is set up with besides the definition: the file's custom guards,
/// custom strategies and directory.
#[derive(Clone, Copy, Debug)]
pub struct Setup<'a> {
    /// Custom guards by name, and whether they pass.
    pub custom_guards: &'a HashMap<String, bool>,
    /// Custom approval strategies by name.
    pub custom_strategies: &'a HashMap<String, CustomStrategy>,
    /// Role holders.
    pub directory: &'a HashMap<String, Vec<String>>,
}

impl<'a> From<&'a ScenarioFile> for Setup<'a> {
    fn from(file: &'a ScenarioFile) -> Self {
        Self {
            custom_guards: &file.custom_guards,
            custom_strategies: &file.custom_strategies,
            directory: &file.directory,
        }
    }
}

/// Runs `scenario` against the definition `source` on a fresh engine.
pub async fn run(source: &str, setup: Setup<'_>, scenario: &Scenario) -> Result<(), Failure> {
    let fail = |message: String| Failure { step: 0, message };
    let store = SqliteStore::in_memory().await.map_err(|e| fail(e.to_string()))?;
    let start = DateTime::parse_from_rfc3339(EPOCH).map_err(|e| fail(e.to_string()))?.to_utc();
    let now = Arc::new(Mutex::new(start));
    let clock = now.clone();
    let delivered = Recorder::default();
    // A poisoned lock still holds a valid instant.
    let mut engine = Engine::new(store)
        .with_clock(move || *clock.lock().unwrap_or_else(|e| e.into_inner()))
        .with_directory(setup.directory.clone())
        .with_subscriber(delivered.clone())
        .with_action_handler(delivered.clone());
    for (name, &passes) in setup.custom_guards {
        engine = engine.with_guard(name.clone(), move |_: Option<&Json>, _: &Context<'_>| passes);
    }
    for (name, &strategy) in setup.custom_strategies {
        engine = engine.with_strategy(name.clone(), move |_: usize, responses: &[ApprovalResponse]| {
            let approvals = responses.iter().filter(|r| r.vote == Vote::Approve).count();
            if approvals >= strategy.approve_at {
                Decision::Approved
            } else if responses.len() - approvals >= strategy.reject_at {
                Decision::Rejected
            } else {
                Decision::Pending
            }
        });
    }
    let tenant = TenantId::new("test");
    let definition = engine.deploy(&tenant, source).await.map_err(|e| fail(e.to_string()))?.id;
    let mut runner = Runner {
        engine,
        tenant,
        definition,
        now,
        ids: HashMap::new(),
        delegations: HashMap::new(),
        delivered,
    };
    for (index, step) in scenario.steps.iter().enumerate() {
        runner.step(step).await.map_err(|message| Failure { step: index + 1, message })?;
    }
    Ok(())
}

/// Records what the outbox delivers, by instance id; actions always succeed.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<HashMap<String, Vec<String>>>>);

impl Recorder {
    fn record(&self, item: &Delivered) {
        if let Some(instance) = &item.instance_id {
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(instance.clone()).or_default().push(item.name.clone());
        }
    }

    fn of(&self, instance: &str) -> Vec<String> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(instance).cloned().unwrap_or_default()
    }
}

impl crate::engine::service::Subscriber for Recorder {
    fn on_event(&self, event: &Delivered) {
        self.record(event);
    }
}

impl ActionHandler for Recorder {
    fn handle<'a>(&'a self, action: &'a Delivered) -> ActionResult<'a> {
        self.record(action);
        Box::pin(async { Ok(()) })
    }
}

/// One scenario's engine and the names its steps gave instances and delegations.
struct Runner {
    engine: Engine<SqliteStore>,
    tenant: TenantId,
    definition: String,
    now: Arc<Mutex<DateTime<Utc>>>,
    ids: HashMap<String, String>,
    delegations: HashMap<String, String>,
    delivered: Recorder,
}

impl Runner {
    async fn step(&mut self, step: &Step) -> Result<(), String> {
        self.act(step).await?;
        self.deliver().await
    }

    /// Delivers everything the outbox holds now.
    async fn deliver(&self) -> Result<(), String> {
        loop {
            let report =
                self.engine.deliver_outbox("scenario", LEASE, 500).await.map_err(|e| e.to_string())?;
            if report.claimed == 0 {
                return Ok(());
            }
        }
    }

    fn set_clock(&self, to: DateTime<Utc>) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now = to.max(*now);
    }

    /// Moves the clock to `target`, stopping at each timer due on the way to fire it then.
    async fn advance(&self, target: DateTime<Utc>) -> Result<(), String> {
        for _ in 0..MAX_TIMERS_PER_ADVANCE {
            let store = self.engine.store();
            let due = store.due_timers(target, 1, "scenario", LEASE).await.map_err(|e| e.to_string())?;
            let Some(timer) = due.into_iter().next() else {
                self.set_clock(target);
                return Ok(());
            };
            self.set_clock(timer.trigger_at);
            match self.engine.process_timer(&timer).await.map_err(|e| e.to_string())? {
                TimerOutcome::Fired | TimerOutcome::Skipped(_) => {}
                TimerOutcome::Retry => return Err(format!("advance: timer `{}` conflicted", timer.kind)),
            }
            self.deliver().await?;
        }
        Err(format!("advance: more than {MAX_TIMERS_PER_ADVANCE} timers fell due"))
    }

    async fn act(&mut self, step: &Step) -> Result<(), String> {
        let (tenant, engine) = (&self.tenant, &self.engine);
        match step {
            Step::Create(c) => {
                let actor = actor(&c.actor, &c.roles, &c.permissions);
                let data = c.data.clone().unwrap_or(Json::Null);
                let result = engine.create_instance(tenant, &actor, &self.definition, &c.entity, &data).await;
                if let Some(view) = outcome("create", result, c.expect_error.as_deref())? {
                    self.ids.insert(c.id.clone(), view.id);
                }
                Ok(())
            }
            Step::Update(u) => {
                let id = self.id(&u.instance)?;
                let actor = actor(&u.actor, &u.roles, &u.permissions);
                let version = engine.instance(tenant, id).await.map_err(|e| e.to_string())?.version;
                let result = engine.update_data(tenant, &actor, id, version, &u.data).await;
                outcome("update", result, u.expect_error.as_deref()).map(drop)
            }
            Step::Fire(f) => {
                let id = self.id(&f.instance)?;
                let actor = actor(&f.actor, &f.roles, &f.permissions);
                let result = engine.fire(tenant, &actor, id, &f.transition, None).await;
                outcome(&format!("fire `{}`", f.transition), result, f.expect_error.as_deref()).map(drop)
            }
            Step::Approve(r) | Step::Reject(r) => {
                let vote = if matches!(step, Step::Approve(_)) { Vote::Approve } else { Vote::Reject };
                let id = self.id(&r.instance)?;
                let actor = actor(&r.actor, &r.roles, &[]);
                let result = engine.respond(tenant, &actor, id, &r.transition, vote).await;
                let what = format!("{} `{}`", vote_word(vote), r.transition);
                outcome(&what, result, r.expect_error.as_deref()).map(drop)
            }
            Step::CompleteBranch(b) => {
                let id = self.id(&b.instance)?;
                let actor = actor(&b.actor, &[], &[]);
                let result = engine.complete_branch(tenant, &actor, id, &b.gateway, &b.branch).await;
                let what = format!("complete branch `{}`", b.branch);
                outcome(&what, result, b.expect_error.as_deref()).map(drop)
            }
            Step::Assign(a) => {
                let id = self.id(&a.instance)?;
                let actor = actor(&a.actor, &a.roles, &[]);
                let result = engine.assign(tenant, &actor, id, &a.to, None).await;
                outcome(&format!("assign `{}`", a.to), result, a.expect_error.as_deref()).map(drop)
            }
            Step::Delegate(d) => {
                let delegation = NewDelegation {
                    delegator: d.from.clone(),
                    delegatee: d.to.clone(),
                    start: d.start,
                    end: d.end,
                    entity: d.entity.clone(),
                };
                let result = engine.add_delegation(tenant, delegation).await;
                let what = format!("delegate `{}` to `{}`", d.from, d.to);
                if let Some(row) = outcome(&what, result, d.expect_error.as_deref())?
                    && let Some(name) = &d.id
                {
                    self.delegations.insert(name.clone(), row.id);
                }
                Ok(())
            }
            Step::Undelegate(name) => {
                let id = self
                    .delegations
                    .get(name)
                    .ok_or_else(|| format!("no delegation named `{name}` was recorded"))?;
                engine.remove_delegation(tenant, id).await.map_err(|e| format!("undelegate `{name}`: {e}"))
            }
            Step::Advance(text) => {
                let duration =
                    parse_duration(text).map_err(|e| format!("advance: invalid duration `{text}`: {e}"))?;
                let seconds = i64::try_from(duration.as_seconds()).unwrap_or(i64::MAX);
                let delta = TimeDelta::try_seconds(seconds).ok_or("advance: duration out of range")?;
                let now = *self.now.lock().unwrap_or_else(|e| e.into_inner());
                // Checked: `{"advance": "100 years"}` repeated would overflow chrono's calendar and
                // panic. The clock stops at the end of year 9999, where stored timestamps (and the
                // engine's own date arithmetic on them) still have room.
                let target = now
                    .checked_add_signed(delta)
                    .filter(|target| *target <= latest_time())
                    .ok_or_else(|| format!("advance: `{text}` after {now} is past the latest time a scenario may reach (9999-12-31)"))?;
                self.advance(target).await
            }
            Step::Expect(e) => self.expect(e).await,
            Step::ExpectPending(p) => self.expect_pending(p).await,
        }
    }

    /// The name a step gave the instance `id`, or the id itself.
    fn name_of(&self, id: &str) -> String {
        self.ids.iter().find(|(_, v)| *v == id).map_or_else(|| id.to_owned(), |(k, _)| k.clone())
    }

    async fn expect_pending(&self, p: &ExpectPending) -> Result<(), String> {
        let mut items = Vec::new();
        let mut query = PendingQuery { limit: 500, ..PendingQuery::default() };
        loop {
            let page = self
                .engine
                .pending_for_user(&self.tenant, &p.user, &query)
                .await
                .map_err(|e| e.to_string())?;
            items.extend(page.items);
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        let mut problems = Vec::new();
        let mut actual: Vec<String> = items.iter().map(|i| self.name_of(&i.instance.id)).collect();
        let mut expected = p.instances.clone();
        actual.sort();
        expected.sort();
        if actual != expected {
            problems.push(format!("instances: expected {expected:?}, got {actual:?}"));
        }
        for (name, want) in &p.reasons {
            let got = items.iter().find(|i| self.name_of(&i.instance.id) == *name).map(|i| reason(&i.reason));
            if got.as_deref() != Some(want.as_str()) {
                problems.push(format!("reason of `{name}`: expected `{want}`, got {}", show(&got)));
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        let mut message = format!("expect_pending `{}`:", p.user);
        for problem in problems {
            let _ = write!(message, "\n    {problem}");
        }
        Err(message)
    }

    /// The engine id of the instance a step calls `name`.
    fn id(&self, name: &str) -> Result<&str, String> {
        self.ids
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("no instance named `{name}` was created"))
    }

    async fn expect(&self, e: &Expect) -> Result<(), String> {
        let id = self.id(&e.instance)?;
        let view = self.engine.instance(&self.tenant, id).await.map_err(|e| e.to_string())?;
        let mut problems = Vec::new();
        if let Some(stage) = &e.stage
            && *stage != view.stage
        {
            problems.push(format!("stage: expected `{stage}`, got `{}`", view.stage));
        }
        if let Some(status) = &e.status {
            let actual = match view.status {
                InstanceStatus::Active => "active",
                InstanceStatus::Completed => "completed",
            };
            if status != actual {
                problems.push(format!("status: expected `{status}`, got `{actual}`"));
            }
        }
        if let Some(data) = &e.data {
            for (key, expected) in data {
                let actual = view.data.get(key).unwrap_or(&Json::Null);
                if actual != expected {
                    problems.push(format!("data.{key}: expected {expected}, got {actual}"));
                }
            }
        }
        if let Some(expected) = &e.pending_approval {
            let actual = view.pending_approval.as_ref().map(|p| p.transition.clone());
            if *expected != actual {
                problems.push(format!(
                    "pending_approval: expected {}, got {}",
                    show(expected),
                    show(&actual)
                ));
            }
        }
        if let Some(expected) = &e.branches {
            let mut actual = active_branches(&view);
            let mut expected = expected.clone();
            actual.sort();
            expected.sort();
            if actual != expected {
                problems.push(format!("branches: expected {expected:?}, got {actual:?}"));
            }
        }
        if let Some(expected) = &e.assignee
            && *expected != view.assignee
        {
            problems.push(format!("assignee: expected {}, got {}", show(expected), show(&view.assignee)));
        }
        if e.sla.is_some() || e.escalations.is_some() {
            let store = self.engine.store();
            if let Some(expected) = &e.sla {
                let state = store.load_state(&self.tenant, id).await.map_err(|e| e.to_string())?;
                let clocks = state.map(|s| s.sla).unwrap_or_default();
                let mut scopes: Vec<_> = expected.iter().collect();
                scopes.sort();
                for (scope, want) in scopes {
                    let got =
                        clocks.iter().rev().find(|c| c.scope == *scope).map(|c| c.status.as_str().to_owned());
                    if got.as_deref() != Some(want.as_str()) {
                        problems.push(format!("sla.{scope}: expected `{want}`, got {}", show(&got)));
                    }
                }
            }
            if let Some(expected) = &e.escalations {
                let rows = store.escalations(&self.tenant, id).await.map_err(|e| e.to_string())?;
                let actual: Vec<u32> = rows.iter().map(|r| r.level).collect();
                if actual != *expected {
                    problems.push(format!("escalations: expected levels {expected:?}, got {actual:?}"));
                }
            }
        }
        if let Some(expected) = &e.outbox {
            let actual = self.delivered.of(id);
            let mut rest = actual.iter();
            if let Some(missing) = expected.iter().find(|want| !rest.any(|got| got == *want)) {
                problems.push(format!(
                    "outbox: `{missing}` not delivered in order; delivered: [{}]",
                    actual.join(", ")
                ));
            }
        }
        if let Some(expected) = &e.history_events {
            let history = self.engine.history(&self.tenant, id).await.map_err(|e| e.to_string())?;
            let actual: Vec<&str> = history.iter().map(|h| h.event.as_str()).collect();
            let mut rest = actual.iter();
            if let Some(missing) = expected.iter().find(|want| !rest.any(|got| got == want)) {
                problems.push(format!(
                    "history_events: `{missing}` not found in order; history: [{}]",
                    actual.join(", ")
                ));
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        let mut message = format!("expect `{}`:", e.instance);
        for problem in problems {
            let _ = write!(message, "\n    {problem}");
        }
        Err(message)
    }
}

/// A dashboard reason as scenarios write it.
fn reason(reason: &PendingReason) -> String {
    match reason {
        PendingReason::Assigned => "assigned".to_owned(),
        PendingReason::Delegated { from } => format!("delegated:{from}"),
        PendingReason::Approval { transition } => format!("approval:{transition}"),
    }
}

fn actor(id: &str, roles: &[String], permissions: &[String]) -> Actor {
    Actor { id: id.to_owned(), roles: roles.to_vec(), permissions: permissions.to_vec() }
}

fn vote_word(vote: Vote) -> &'static str {
    match vote {
        Vote::Approve => "approve",
        Vote::Reject => "reject",
    }
}

fn show(value: &Option<String>) -> String {
    value.as_ref().map_or("null".to_owned(), |v| format!("`{v}`"))
}

fn active_branches(view: &InstanceView) -> Vec<String> {
    view.tokens.iter().filter(|t| t.status == TokenStatus::Active).map(|t| t.branch.clone()).collect()
}

/// Checks a command's result against its `expect_error`; the view when it succeeded as expected.
fn outcome<T>(
    what: &str,
    result: Result<T, EngineError>,
    expected: Option<&str>,
) -> Result<Option<T>, String> {
    match (result, expected) {
        (Ok(view), None) => Ok(Some(view)),
        (Ok(_), Some(code)) => Err(format!("{what}: expected error `{code}`, but it succeeded")),
        (Err(error), None) => Err(format!("{what}: unexpected error `{}`: {error}", error_code(&error))),
        (Err(error), Some(code)) => {
            let actual = error_code(&error);
            // Either the full diagnostic code or its last segment: `wrong_stage`.
            let full = miette::Diagnostic::code(&error).map(|c| c.to_string()).unwrap_or_default();
            if code == actual || code == full {
                Ok(None)
            } else {
                Err(format!("{what}: expected error `{code}`, got `{actual}`: {error}"))
            }
        }
    }
}

/// The last segment of the error's diagnostic code, e.g. `wrong_stage`.
fn error_code(error: &EngineError) -> String {
    let code = miette::Diagnostic::code(error).map(|c| c.to_string()).unwrap_or_default();
    code.rsplit("::").next().unwrap_or_default().to_owned()
}
