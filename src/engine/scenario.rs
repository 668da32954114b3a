//! Scenario files: scripted runs of a definition with expectations, for `crm test`.
//!
//! A file names one definition and holds scenarios; each scenario runs on a fresh in-memory
//! SQLite engine (tenant `test`) with a virtual clock that only [`Step::Advance`] moves, so runs
//! are deterministic. The format is documented in `docs/scenarios.md`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use crate::engine::eval::{Actor, Context};
use crate::engine::machine::{InstanceStatus, TokenStatus, Vote};
use crate::engine::service::{Engine, EngineError, InstanceView};
use crate::store::{SqliteStore, TenantId};
use crate::syntax::duration::parse_duration;

/// Where every scenario's virtual clock starts: a fixed instant keeps runs reproducible.
const EPOCH: &str = "2026-01-05T09:00:00Z";

/// A parsed scenario file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// The definition file, relative to the scenario file.
    pub definition: String,
    /// Custom guards the definition uses, by name, and whether they pass.
    #[serde(default)]
    pub custom_guards: HashMap<String, bool>,
    /// The scenarios, run in order, each on a fresh engine.
    pub scenarios: Vec<Scenario>,
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
    /// Moves the virtual clock forward by a duration such as `"2 hours"`.
    Advance(String),
    /// Checks an instance.
    Expect(Expect),
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

/// Runs `scenario` against the definition `source` on a fresh engine.
pub async fn run(
    source: &str,
    custom_guards: &HashMap<String, bool>,
    scenario: &Scenario,
) -> Result<(), Failure> {
    let setup = |message: String| Failure { step: 0, message };
    let store = SqliteStore::in_memory().await.map_err(|e| setup(e.to_string()))?;
    let start = DateTime::parse_from_rfc3339(EPOCH).map_err(|e| setup(e.to_string()))?.to_utc();
    let now = Arc::new(Mutex::new(start));
    let clock = now.clone();
    // A poisoned lock still holds a valid instant.
    let mut engine = Engine::new(store).with_clock(move || *clock.lock().unwrap_or_else(|e| e.into_inner()));
    for (name, &passes) in custom_guards {
        engine = engine.with_guard(name.clone(), move |_: Option<&Json>, _: &Context<'_>| passes);
    }
    let tenant = TenantId::new("test");
    let definition = engine.deploy(&tenant, source).await.map_err(|e| setup(e.to_string()))?.id;
    let mut runner = Runner { engine, tenant, definition, now, ids: HashMap::new() };
    for (index, step) in scenario.steps.iter().enumerate() {
        runner.step(step).await.map_err(|message| Failure { step: index + 1, message })?;
    }
    Ok(())
}

/// One scenario's engine and the names its steps gave instances.
struct Runner {
    engine: Engine<SqliteStore>,
    tenant: TenantId,
    definition: String,
    now: Arc<Mutex<DateTime<Utc>>>,
    ids: HashMap<String, String>,
}

impl Runner {
    async fn step(&mut self, step: &Step) -> Result<(), String> {
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
            Step::Advance(text) => {
                let duration =
                    parse_duration(text).map_err(|e| format!("advance: invalid duration `{text}`: {e}"))?;
                let seconds = i64::try_from(duration.as_seconds()).unwrap_or(i64::MAX);
                let delta = TimeDelta::try_seconds(seconds).ok_or("advance: duration out of range")?;
                let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
                *now += delta;
                Ok(())
            }
            Step::Expect(e) => self.expect(e).await,
        }
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
fn outcome(
    what: &str,
    result: Result<InstanceView, EngineError>,
    expected: Option<&str>,
) -> Result<Option<InstanceView>, String> {
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
