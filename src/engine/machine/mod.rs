//! The interpreter: commands over an instance's state, each returning the next state plus what to
//! write with it. Pure: no I/O, no clock (time is an argument), no storage — the store applies a
//! [`Step`] atomically, or refuses it when the state's `version` moved on.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use nexus_crm::engine::eval::Actor;
//! use nexus_crm::engine::machine::{Machine, events};
//! use serde_json::json;
//!
//! let source = r#"{"id": "p", "dataSchema": {"score": {"type": "number"}},
//!   "entities": {"lead": {"stages": ["new", "contacted", "qualified"]}},
//!   "transitions": {"contact": {"from": "new", "to": "contacted"},
//!                   "qualify": {"from": "contacted", "to": "qualified", "condition": "data.score > 50"}}}"#;
//! let def = nexus_crm::check::check_source(source).definition.expect("valid");
//! let machine = Machine::new(def).expect("patterns compile");
//! let now = Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap();
//! let rep = Actor { id: "ana".into(), ..Actor::default() };
//!
//! let lead = machine.create_by_name("lead", &json!({"score": 70}), &rep, now)?;
//! let step = machine.fire_by_name(&lead.state, "contact", &rep, now)?;
//! // `qualify` is automatic: it fired in the same step.
//! assert_eq!(machine.stage_name(&step.state), "qualified");
//! assert_eq!(step.history_of(events::TRANSITION_COMPLETED).count(), 2);
//! # Ok::<(), nexus_crm::engine::machine::MachineError>(())
//! ```
//!
//! # Semantics the documentation leaves to the engine
//!
//! - **Versions.** Every step's state has `version` one more than the state it read (1 after
//!   `create`); a refused command returns an error and no state.
//! - **Automatic transitions** run after every change (creation, data update, stage change,
//!   approval, action outcome, timer), first applicable in declaration order, transitions before
//!   gateways, for the [`SYSTEM`] actor, at most [`MAX_AUTO_STEPS`] per command: beyond that the
//!   command is refused ([`MachineError::AutoTransitionLimit`]) rather than half-applied. An
//!   automatic transition whose guard or condition fails to *evaluate* is skipped and recorded
//!   (`auto_transition_refused`), so a bad value never blocks saving data, but never goes unseen.
//! - **Gateways and tokens.** A fork creates one [`Token`] per started branch and parks the main
//!   `stage` at the fork stage. A token with a `stage` moves by ordinary transitions that list its
//!   stage in `from`: [`Machine::fire`] applies a transition to the main stage when it lists that,
//!   otherwise to the first active token whose stage it lists. Reaching the join stage completes
//!   the token; a token entering another *terminal* stage ends the gateway and takes the instance
//!   there (a branch rejection rejects the instance). When every token is completed, the instance
//!   enters the join stage and the tokens are dropped. While tokens run, automatic transitions of
//!   the fork stage wait (the fork was taken on purpose), but a user may still fire one out of it
//!   (a `"*"` withdrawal): that cancels the running branches. Only one gateway runs at a time.
//!   Branch actions are their own compensation groups; a failed one cancels its token, and the
//!   join then waits until a transition leaves the fork stage.
//! - **Approvals.** Guards and condition are checked when the approval is requested; the approved
//!   transition then applies as it was approved. One approval is pending at a time; it is dropped
//!   when its transition's stage is left another way. Approvers are the listed users and holders
//!   (by the responding [`Actor`]'s roles) of the listed roles; the assignee count is the listed
//!   users plus the [`Directory`] members of the roles plus anyone else who responded.
//! - **Actions** go to the outbox in declared order, except `set_field`, which is applied in the
//!   step itself (it is part of the state, and the same transaction must see it), and `assign`,
//!   which asks for an assignee in the step ([`Step::assignment`]). A group (one
//!   transition's actions) is tracked only when some action in it has a compensation; when one
//!   fails, the compensations of the succeeded ones are enqueued in reverse order, and an action
//!   of that group succeeding later is compensated at once. The stage change stays.
//! - **Timers** carry absolute due times: the entity SLA and reminders from creation until a
//!   terminal stage, stage SLAs and escalations from entering a stage (main or token) until
//!   leaving it. Escalation conditions are evaluated when due ([`Machine::timer_due`]).
//! - **Assignment** follows active delegations first (seed BR-009), then refuses the result if
//!   it is the acting user and the entity does not allow self-assignment (BR-001); an entity that
//!   lists candidates refuses anyone else. Entering a non-terminal main stage of an entity with an
//!   automatic strategy while unassigned asks for an assignee ([`AssignmentRequest`]); the choice
//!   needs shared state (the rotation, workloads), so the engine makes it and completes the step
//!   with [`Machine::complete_assignment`] before applying it.

mod approval;
mod assign;
mod error;
mod exec;
mod guard;
mod state;
mod step;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value as Json};

pub use self::approval::{CustomStrategy, Decision, Directory, NoDirectory};
pub use self::error::MachineError;
use self::exec::Exec;
pub use self::guard::GuardEvaluator;
pub use self::state::{
    ActionRun, ApprovalResponse, InstanceState, InstanceStatus, PendingApproval, RunId, RunStatus, Token,
    TokenStatus, Vote,
};
pub use self::step::{
    AssignmentRequest, Candidate, HistoryEntry, OutboxItem, OutboxKind, Step, Timer, TimerChange, TimerKind,
    events,
};
use crate::diagnostic::unknown_name_help;
pub use crate::engine::data::{Problem, Validator, Violation};
use crate::engine::eval::Actor;
use crate::ir::{Definition, EntityId, Field, FieldId, GatewayId, StageId, TransitionId, Trigger};

/// A standing or run-time delegation: the same shape as the definition's `delegation.rules`.
pub type Delegation = crate::ir::DelegationRule;

/// The most automatic transitions (and gateway forks) one command takes.
pub const MAX_AUTO_STEPS: usize = 32;

/// The user id automatic steps act as.
pub const SYSTEM: &str = "system";

/// The actor of automatic steps, with id [`SYSTEM`]: no roles, no permissions.
pub(crate) static ENGINE_ACTOR: LazyLock<Actor> =
    LazyLock::new(|| Actor { id: SYSTEM.to_owned(), roles: Vec::new(), permissions: Vec::new() });

/// A compiled definition ready to run: its data validator and the host's custom guards and
/// approval strategies. Build it once per definition version and share it.
pub struct Machine {
    def: Arc<Definition>,
    validator: Validator,
    guards: HashMap<String, Box<dyn GuardEvaluator>>,
    strategies: HashMap<String, Box<dyn CustomStrategy>>,
    /// By stage: whether an automatic transition or gateway leaving it has a condition that time
    /// alone can make true (`days_since(…) > 7`), so waiting there needs [`RECHECK_EVERY`].
    rechecked: Vec<bool>,
}

/// How often an instance waiting in a stage with a time-dependent automatic transition has that
/// condition evaluated again when nothing else happens to it.
pub const RECHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(60 * 60);

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("definition", &self.def.id)
            .field("guards", &self.guards.keys().collect::<Vec<_>>())
            .field("strategies", &self.strategies.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Machine {
    /// Prepares `def`: compiles its data patterns (checked definitions always compile).
    pub fn new(def: impl Into<Arc<Definition>>) -> Result<Self, MachineError> {
        let def = def.into();
        let validator = Validator::new(&def.data)?;
        let rechecked = rechecked_stages(&def);
        Ok(Self { def, validator, guards: HashMap::new(), strategies: HashMap::new(), rechecked })
    }

    /// Whether waiting in `stage` re-checks its time-dependent automatic transitions.
    pub(crate) fn rechecks(&self, stage: StageId) -> bool {
        self.rechecked.get(stage.index()).copied().unwrap_or(false)
    }

    /// Registers the evaluator of `{"type": "custom", "name": NAME}` guards.
    pub fn with_guard(mut self, name: impl Into<String>, guard: impl GuardEvaluator + 'static) -> Self {
        self.guards.insert(name.into(), Box::new(guard));
        self
    }

    /// Registers the strategy of approvals with `"strategy": "custom", "custom": NAME`.
    pub fn with_strategy(mut self, name: impl Into<String>, strategy: impl CustomStrategy + 'static) -> Self {
        self.strategies.insert(name.into(), Box::new(strategy));
        self
    }

    /// Declares a custom data field at run time (seed FR-L3-005); later data is validated against
    /// it like any declared field. A name already declared keeps its first declaration.
    pub fn add_field(&mut self, field: Field) -> Result<FieldId, MachineError> {
        if let Some(id) = self.def.data.lookup(&field.name) {
            return Ok(id);
        }
        // Compile first, so a bad pattern leaves both schema and validator unchanged.
        let mut validator = self.validator.clone();
        validator.push(&field)?;
        let id = Arc::make_mut(&mut self.def).data.push(field);
        self.validator = validator;
        Ok(id)
    }

    /// The definition.
    pub fn definition(&self) -> &Definition {
        &self.def
    }

    /// The data validator.
    pub fn validator(&self) -> &Validator {
        &self.validator
    }

    /// The name of the instance's main stage.
    pub fn stage_name(&self, state: &InstanceState) -> &str {
        &self.def.stage(state.stage).name
    }

    /// The current data as JSON.
    pub fn data_json(&self, state: &InstanceState) -> Json {
        state.data.to_json(&self.def.data)
    }

    /// The transition called `name`, with a did-you-mean when there is none.
    pub fn transition_id(&self, name: &str) -> Result<TransitionId, MachineError> {
        self.def.transition_named(name).ok_or_else(|| self.unknown_transition(name))
    }

    /// Creates an instance of `entity` in its initial stage with validated `data` (an object or
    /// `null`), schedules its timers and runs automatic transitions.
    pub fn create(
        &self,
        entity: EntityId,
        data: &Json,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Step, MachineError> {
        let record = self.validator.record(&self.def.data, data).map_err(invalid_data)?;
        Exec::create(self, entity, record, actor, now)
    }

    /// [`Machine::create`] by entity name.
    pub fn create_by_name(
        &self,
        entity: &str,
        data: &Json,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Step, MachineError> {
        let id = self.def.entity_named(entity).ok_or_else(|| MachineError::UnknownEntity {
            name: entity.to_owned(),
            help: unknown_name_help(entity, "entity", self.def.entities.iter().map(|e| e.name.as_str())),
        })?;
        self.create(id, data, actor, now)
    }

    /// Applies a merge patch to the data (a key sets its field, `null` removes it), validated as a
    /// whole before anything changes, then runs automatic transitions.
    pub fn update_data(
        &self,
        state: &InstanceState,
        patch: &Map<String, Json>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Step, MachineError> {
        let mut exec = Exec::new(self, state, now)?;
        let (record, changes) =
            self.validator.patch(&self.def.data, &state.data, patch).map_err(invalid_data)?;
        exec.data_updated(record, changes, actor);
        exec.finish()
    }

    /// Fires a transition as `actor`: checks entity, stage, guards and condition, then starts its
    /// approval or moves the instance (or the branch token whose stage it leaves).
    pub fn fire(
        &self,
        state: &InstanceState,
        transition: TransitionId,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Step, MachineError> {
        let mut exec = Exec::new(self, state, now)?;
        exec.fire(transition, actor)?;
        exec.finish()
    }

    /// Forks a gateway as `actor` from the instance's stage.
    pub fn fire_gateway(
        &self,
        state: &InstanceState,
        gateway: GatewayId,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Step, MachineError> {
        let mut exec = Exec::new(self, state, now)?;
        exec.fork(gateway, actor)?;
        exec.finish()
    }

    /// Fires the transition or gateway called `name` (they share one namespace).
    pub fn fire_by_name(
        &self,
        state: &InstanceState,
        name: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Step, MachineError> {
        if let Some(id) = self.def.transition_named(name) {
            self.fire(state, id, actor, now)
        } else if let Some(id) = self.def.gateway_named(name) {
            self.fire_gateway(state, id, actor, now)
        } else {
            Err(self.unknown_transition(name))
        }
    }

    /// Records `approver`'s response to the pending approval of `transition` and resolves it as
    /// the strategy says; `directory` tells who holds the approval's roles.
    pub fn respond(
        &self,
        state: &InstanceState,
        transition: TransitionId,
        approver: &Actor,
        vote: Vote,
        directory: &dyn Directory,
        now: DateTime<Utc>,
    ) -> Result<Step, MachineError> {
        let mut exec = Exec::new(self, state, now)?;
        exec.respond(transition, approver, vote, directory)?;
        exec.finish()
    }

    /// Marks a branch without `stage` or `action` done (e.g. a sign-off); joins when it was the last.
    pub fn complete_branch(
        &self,
        state: &InstanceState,
        gateway: GatewayId,
        branch: usize,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Step, MachineError> {
        let mut exec = Exec::new(self, state, now)?;
        exec.complete_branch(gateway, branch, actor)?;
        exec.finish()
    }

    /// Reports that the outbox item with `run` succeeded: completes its branch, if any, and
    /// compensates it at once if its group already failed. Allowed on completed instances.
    pub fn action_succeeded(
        &self,
        state: &InstanceState,
        run: RunId,
        now: DateTime<Utc>,
    ) -> Result<Step, MachineError> {
        let mut exec = Exec::resume(self, state, now);
        exec.action_succeeded(run)?;
        exec.finish()
    }

    /// Reports that the outbox item with `run` failed for good: the compensations of the
    /// already-succeeded actions of its group are enqueued in reverse order (seed BR-004), and its
    /// branch, if any, is cancelled. Allowed on completed instances.
    pub fn action_failed(
        &self,
        state: &InstanceState,
        run: RunId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Step, MachineError> {
        let mut exec = Exec::resume(self, state, now);
        exec.action_failed(run, reason)?;
        exec.finish()
    }

    /// Assigns the instance to `assignee`, or to whom their active delegations lead (at most
    /// `delegation.max_depth` hops, cycles refused); `delegations` come first, then the
    /// definition's rules. `today` decides which delegations are active. When the entity's
    /// `assignment` lists candidates, `assignee` must be one of them: a listed user, or a member
    /// of a listed role by `directory` (roles `directory` knows no member of cannot be checked).
    #[allow(clippy::too_many_arguments)]
    pub fn assign(
        &self,
        state: &InstanceState,
        assignee: &str,
        actor: &Actor,
        delegations: &[Delegation],
        directory: &dyn Directory,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<Step, MachineError> {
        let mut exec = Exec::new(self, state, now)?;
        exec.check_candidate(assignee, directory)?;
        exec.assign(assignee, actor, delegations, today)?;
        exec.finish()
    }

    /// Runs a timer that fell due: SLA at-risk or breach (breach actions), a reminder, or an
    /// escalation (if its condition holds now). [`MachineError::StaleTimer`] when it no longer
    /// applies.
    pub fn timer_due(
        &self,
        state: &InstanceState,
        timer: TimerKind,
        now: DateTime<Utc>,
    ) -> Result<Step, MachineError> {
        let mut exec = Exec::new(self, state, now).map_err(|_| MachineError::StaleTimer { timer })?;
        exec.timer_due(timer)?;
        exec.finish()
    }

    fn unknown_transition(&self, name: &str) -> MachineError {
        let names = self
            .def
            .transitions
            .iter()
            .map(|t| t.name.as_str())
            .chain(self.def.gateways.iter().map(|g| g.name.as_str()));
        MachineError::UnknownTransition {
            name: name.to_owned(),
            help: unknown_name_help(name, "transition", names),
        }
    }
}

/// The refusal of data that breaks `dataSchema`.
fn invalid_data(violations: Vec<Violation>) -> MachineError {
    MachineError::InvalidData { violations }
}

/// [`Machine::rechecks`] for every stage of `def`.
fn rechecked_stages(def: &Definition) -> Vec<bool> {
    let reads_clock = |trigger: Trigger, condition: Option<&crate::ir::Condition>| {
        trigger == Trigger::Auto && condition.is_some_and(|c| c.expr.reads_clock())
    };
    def.stages
        .iter()
        .map(|stage| {
            stage.outgoing.iter().any(|&t| {
                let t = def.transition(t);
                reads_clock(t.trigger, t.condition.as_ref())
            }) || stage.forks.iter().any(|&g| {
                let g = def.gateway(g);
                reads_clock(g.trigger, g.condition.as_ref())
            })
        })
        .collect()
}
