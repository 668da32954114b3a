//! The engine: the pure [`Machine`] run against a [`Store`], one transaction per command.
//!
//! Every call is scoped to a tenant. A command loads the instance (rows → [`InstanceState`]),
//! lets the machine compute a [`Step`], turns it into one [`Commit`] (instance under its
//! optimistic lock, history, outbox, timers, tokens, approvals, assignment) and commits it. A
//! refused command writes nothing; a stale version is an [`EngineError::Conflict`], never a lost
//! update.
//!
//! Definitions come from `crm_definitions` and are compiled with [`check_source`], the same path
//! as a file; instances stay pinned to the version they started on. Compiled machines are cached
//! by (tenant, id, version), which never change once deployed.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use nexus_crm::engine::eval::Actor;
//! use nexus_crm::engine::service::Engine;
//! use nexus_crm::store::{AnyStore, TenantId};
//! use serde_json::json;
//!
//! let engine = Engine::new(AnyStore::open("sqlite:crm.db").await?);
//! let acme = TenantId::new("acme");
//! let ana = Actor { id: "ana".into(), ..Actor::default() };
//! engine.deploy(&acme, &std::fs::read_to_string("definitions/sales-pipeline.json")?).await?;
//! let lead = engine.create_instance(&acme, &ana, "sales-pipeline", "lead", &json!({})).await?;
//! let lead = engine.fire(&acme, &ana, &lead.id, "make_contact", Some(lead.version)).await?;
//! assert_eq!(lead.stage, "contacted");
//! # Ok(()) }
//! ```
//!
//! # What a command costs
//!
//! Everything the machine's state holds is persisted: the instance row (with its action runs),
//! every token of the running gateway with when it entered its stage, and the pending approval
//! with who requested it. A fresh load is one statement ([`Store::load_state`]).
//!
//! The engine also keeps the state it last committed or read for each instance (a bounded
//! cache), so a command on an instance this engine already knows costs only its commit. The
//! optimistic lock keeps that honest: the commit's versioned `UPDATE` refuses a state another
//! engine or process has moved on. Then, when the caller gave no expected version, the command is
//! recomputed on a fresh load, and again (with a jittered, growing pause) as long as other commits
//! keep winning, until it applies, the machine refuses it on its merits, or [`MAX_ATTEMPTS`] are
//! lost ([`EngineError::Contention`]); with an expected version it is the caller's conflict. A
//! refusal by the machine computed from the kept state is confirmed on a fresh load before it is
//! reported. Reads ([`Engine::instance`]) always go to the store.

mod assign;
mod deploy;
mod domain;
mod error;
mod outbox;
mod persist;
mod timers;
mod view;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Map, Value as Json};

pub use self::assign::NewDelegation;
pub use self::deploy::{Compatibility, Deployed};
pub use self::domain::{NewCampaign, NewContact, NewOpportunity, Running, domain_events};
pub use self::error::EngineError;
pub use self::outbox::{
    ActionFailure, ActionHandler, ActionResult, ActionSuccess, AttemptResult, Delivered, DeliveryReport,
    RetryPolicy, Subscriber,
};
use self::persist::Loaded;
pub use self::timers::{TimerOutcome, TimerReport};
pub use self::view::{ApprovalView, InstanceView, TokenView};
use crate::check::check_source;
use crate::diagnostic::unknown_name_help;
use crate::engine::eval::Actor;
use crate::engine::eval::Context;
use crate::engine::machine::{
    ApprovalResponse, CustomStrategy, Decision, Directory, ENGINE_ACTOR, GuardEvaluator, InstanceState,
    Machine, MachineError, NoDirectory, RunId, Step, Vote,
};
use crate::store::{Commit, DefinitionRow, HistoryRow, InstanceRow, Store, StoreError, TenantId, new_id};

/// The engine's notion of "now": the wall clock, or a virtual one in tests and scenarios.
pub type NowFn = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// How often a command without an expected version is computed afresh and refused by a newer
/// commit before it gives up with [`EngineError::Contention`].
pub const MAX_ATTEMPTS: u32 = 32;

/// The first wait after losing a race, doubled per loss up to [`MAX_CONTENTION_WAIT`].
const FIRST_CONTENTION_WAIT: Duration = Duration::from_millis(1);

/// The longest wait between two attempts of one command.
const MAX_CONTENTION_WAIT: Duration = Duration::from_millis(100);

/// How many instances' last committed states an engine keeps; beyond that, one is dropped for
/// each new one (any one: a dropped state only costs a load).
const KEPT_STATES: usize = 4096;

/// The id of the run an outbox item carries in its payload (`"run": "3.0"`), for
/// [`Engine::action_succeeded`] and [`Engine::action_failed`].
pub fn parse_run_id(text: &str) -> Option<RunId> {
    persist::parse_run(text)
}

/// Runs deployed definitions against persisted instances. Cheap to share behind an `Arc`.
pub struct Engine<S: Store> {
    store: S,
    clock: NowFn,
    machines: RwLock<HashMap<(TenantId, String, u64), Arc<Machine>>>,
    /// The last state this engine committed or read per instance, validated by the version check
    /// of the next commit (see the module docs).
    states: Mutex<HashMap<(TenantId, String), Arc<Loaded>>>,
    directory: Arc<dyn Directory + Send + Sync>,
    guards: Vec<(String, Arc<dyn GuardEvaluator>)>,
    strategies: Vec<(String, Arc<dyn CustomStrategy>)>,
    subscribers: Vec<Arc<dyn Subscriber>>,
    action_handler: Option<Arc<dyn ActionHandler>>,
    retry: RetryPolicy,
    /// How many instances' timers or outbox items one batch works on at once.
    lanes: usize,
}

impl<S: Store> std::fmt::Debug for Engine<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cached = self.machines.read().map_or(0, |m| m.len());
        f.debug_struct("Engine").field("machines", &cached).finish_non_exhaustive()
    }
}

impl<S: Store> Engine<S> {
    /// An engine on `store` with the wall clock, no directory, and no custom guards or strategies.
    pub fn new(store: S) -> Self {
        Self {
            store,
            clock: Arc::new(Utc::now),
            machines: RwLock::default(),
            states: Mutex::default(),
            directory: Arc::new(NoDirectory),
            guards: Vec::new(),
            strategies: Vec::new(),
            subscribers: Vec::new(),
            action_handler: None,
            retry: RetryPolicy::default(),
            lanes: 1,
        }
    }

    /// Uses `clock` for "now" (a virtual clock in tests).
    pub fn with_clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Uses `directory` to find who holds the roles approvals list.
    pub fn with_directory(mut self, directory: impl Directory + Send + Sync + 'static) -> Self {
        self.directory = Arc::new(directory);
        self
    }

    /// Registers the evaluator of `{"type": "custom", "name": NAME}` guards, for every definition.
    pub fn with_guard(mut self, name: impl Into<String>, guard: impl GuardEvaluator + 'static) -> Self {
        self.guards.push((name.into(), Arc::new(guard)));
        self
    }

    /// Registers the custom approval strategy `NAME`, for every definition.
    pub fn with_strategy(mut self, name: impl Into<String>, strategy: impl CustomStrategy + 'static) -> Self {
        self.strategies.push((name.into(), Arc::new(strategy)));
        self
    }

    /// Works on up to `lanes` instances at once within a batch of due timers or outbox items
    /// (default 1). Items of one instance stay in order in one lane, so compensations still run
    /// in reverse order; more lanes use more database connections.
    pub fn with_lanes(mut self, lanes: usize) -> Self {
        self.lanes = lanes.max(1);
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Creates an instance of `entity` on the latest version of `definition`, as `actor`, with
    /// validated `data` (an object or `null`); automatic transitions run before it is saved.
    pub async fn create_instance(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        definition: &str,
        entity: &str,
        data: &Json,
    ) -> Result<InstanceView, EngineError> {
        let (commit, mut view, kept) = self.start(tenant, actor, definition, entity, data).await?;
        let committed = self.store.commit_numbered(tenant, commit).await?;
        if let Some(mut kept) = kept {
            kept.row.number.clone_from(&committed.number);
            self.keep(tenant, kept);
        }
        view.number = committed.number;
        Ok(view)
    }

    /// The commit that creates an instance of `entity`, not yet applied, its view, and the state
    /// to keep once it is applied.
    async fn start(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        definition: &str,
        entity: &str,
        data: &Json,
    ) -> Result<(Commit, InstanceView, Option<Loaded>), EngineError> {
        let (machine, version) = self.startable_machine(tenant, definition).await?;
        let def = machine.definition();
        let entity_id = def.entity_named(entity).ok_or_else(|| EngineError::UnknownEntity {
            definition: def.id.clone(),
            name: entity.to_owned(),
            help: unknown_name_help(entity, "entity", def.entities.iter().map(|e| e.name.as_str())),
        })?;
        let now = self.now();
        let mut step = machine.create(entity_id, data, actor, now)?;
        self.choose_assignee(tenant, &machine, &mut step, now).await?;
        let id = new_id();
        let write = persist::insert(&machine, &id, version, &step.state, now);
        let view = InstanceView::new(&id, version, &machine, &step.state);
        let row = persist::written_row(&write, None, now);
        let state = step.state.clone();
        let (commit, token_ids) = persist::commit(&machine, write, None, step, actor, &*self.directory, now)?;
        Ok((commit, view, row.map(|row| Loaded { row, state, token_ids })))
    }

    /// Applies a merge patch to the data as `actor` (a key sets its field, `null` removes it),
    /// validated as a whole first, if the instance is still at `expected_version`.
    pub async fn update_data(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        id: &str,
        expected_version: u64,
        patch: &Map<String, Json>,
    ) -> Result<InstanceView, EngineError> {
        self.run(tenant, id, Some(expected_version), actor, |m, state, now| {
            m.update_data(state, patch, actor, now)
        })
        .await
    }

    /// Fires the transition or gateway `name` as `actor`; with `expected_version`, only if the
    /// instance is still at that version.
    pub async fn fire(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        id: &str,
        name: &str,
        expected_version: Option<u64>,
    ) -> Result<InstanceView, EngineError> {
        self.run(tenant, id, expected_version, actor, |m, state, now| m.fire_by_name(state, name, actor, now))
            .await
    }

    /// Records `actor`'s vote on the pending approval of `transition`; the transition applies
    /// once the strategy approves.
    pub async fn respond(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        id: &str,
        transition: &str,
        vote: Vote,
    ) -> Result<InstanceView, EngineError> {
        let directory = &*self.directory;
        self.run(tenant, id, None, actor, |m, state, now| {
            let transition = m.transition_id(transition)?;
            m.respond(state, transition, actor, vote, directory, now)
        })
        .await
    }

    /// Marks `branch` of the running `gateway` done as `actor` (branches without stage or
    /// action); the join follows when it was the last.
    pub async fn complete_branch(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        id: &str,
        gateway: &str,
        branch: &str,
    ) -> Result<InstanceView, EngineError> {
        self.run(tenant, id, None, actor, |m, state, now| {
            let def = m.definition();
            let gateway_id = def.gateway_named(gateway).ok_or_else(|| MachineError::UnknownTransition {
                name: gateway.to_owned(),
                help: unknown_name_help(gateway, "gateway", def.gateways.iter().map(|g| g.name.as_str())),
            })?;
            let g = def.gateway(gateway_id);
            let index = g.branches.iter().position(|b| b.name == branch).ok_or_else(|| {
                MachineError::BranchNotActive { gateway: g.name.clone(), branch: branch.to_owned() }
            })?;
            m.complete_branch(state, gateway_id, index, actor, now)
        })
        .await
    }

    /// Reports that the action run `run` of the instance succeeded (its id is in the outbox
    /// item's payload, see [`parse_run_id`]): completes the branch waiting for it, joining if it
    /// was the last, or compensates it at once if its group already failed.
    pub async fn action_succeeded(
        &self,
        tenant: &TenantId,
        id: &str,
        run: RunId,
    ) -> Result<InstanceView, EngineError> {
        self.run(tenant, id, None, &ENGINE_ACTOR, |m, state, now| m.action_succeeded(state, run, now)).await
    }

    /// Reports that the action run `run` failed for good: the compensations of its group's
    /// succeeded actions are enqueued in reverse order and the branch waiting for it is cancelled
    /// (the join then waits until a transition leaves the fork stage).
    pub async fn action_failed(
        &self,
        tenant: &TenantId,
        id: &str,
        run: RunId,
        reason: &str,
    ) -> Result<InstanceView, EngineError> {
        self.run(tenant, id, None, &ENGINE_ACTOR, |m, state, now| m.action_failed(state, run, reason, now))
            .await
    }

    /// The instance as last committed, read from the store.
    pub async fn instance(&self, tenant: &TenantId, id: &str) -> Result<InstanceView, EngineError> {
        let (machine, loaded) = self.load(tenant, id).await?;
        let mut view = InstanceView::new(id, loaded.row.definition_version, &machine, &loaded.state);
        view.number.clone_from(&loaded.row.number);
        Ok(view)
    }

    /// The instance numbered `number` (see `entities.<name>.number`).
    pub async fn instance_by_number(
        &self,
        tenant: &TenantId,
        number: &str,
    ) -> Result<InstanceView, EngineError> {
        let row = self.store.instance_by_number(tenant, number).await?;
        let row = row.ok_or_else(|| EngineError::UnknownNumber { number: number.to_owned() })?;
        self.instance(tenant, &row.id).await
    }

    /// The instance's history, oldest first; actor `None` is the system.
    pub async fn history(&self, tenant: &TenantId, id: &str) -> Result<Vec<HistoryRow>, EngineError> {
        // The store answers an empty list for an unknown id; tell the caller it does not exist.
        if self.store.load_instance(tenant, id).await?.is_none() {
            return Err(EngineError::UnknownInstance { id: id.to_owned() });
        }
        Ok(self.store.history(tenant, id).await?)
    }

    /// Load, compute, commit: the shape of every command on an existing instance. The state comes
    /// from what this engine last committed when it has it (see the module docs for why that is
    /// safe), from the store otherwise.
    async fn run(
        &self,
        tenant: &TenantId,
        id: &str,
        expected_version: Option<u64>,
        actor: &Actor,
        command: impl Fn(&Machine, &InstanceState, DateTime<Utc>) -> Result<Step, MachineError>,
    ) -> Result<InstanceView, EngineError> {
        // A kept state at another version than the caller expects may just be stale: read.
        let kept = self.kept(tenant, id).filter(|k| expected_version.is_none_or(|v| v == k.row.version));
        let (mut machine, mut loaded, mut fresh) = match kept {
            Some(loaded) => (self.pinned_machine(tenant, &loaded.row).await?, loaded, false),
            None => {
                let (machine, loaded) = self.load(tenant, id).await?;
                (machine, loaded, true)
            }
        };
        // Commits refused because another one came first, counting only fresh reads.
        let mut lost = 0;
        loop {
            // Checked before computing anything: the caller decided on what it saw at that version.
            if let Some(expected) = expected_version.filter(|&v| v != loaded.row.version) {
                return Err(EngineError::Conflict {
                    id: id.to_owned(),
                    expected,
                    actual: loaded.row.version,
                });
            }
            let now = self.now();
            let mut step = match command(&machine, &loaded.state, now) {
                Ok(step) => step,
                Err(_) if !fresh => {
                    // Refused on the kept state: the store's may differ; decide on that one.
                    (machine, loaded) = self.load(tenant, id).await?;
                    fresh = true;
                    continue;
                }
                Err(error) => return Err(error.into()),
            };
            self.choose_assignee(tenant, &machine, &mut step, now).await?;
            let write = persist::update(&machine, &loaded, &step.state, now);
            let mut view = InstanceView::new(id, loaded.row.definition_version, &machine, &step.state);
            view.number.clone_from(&loaded.row.number);
            let row = persist::written_row(&write, Some(&loaded.row), now);
            let state = step.state.clone();
            let (commit, token_ids) =
                persist::commit(&machine, write, Some(&loaded), step, actor, &*self.directory, now)?;
            match self.store.commit(tenant, commit).await {
                Ok(_) => {
                    if let Some(row) = row {
                        self.keep(tenant, Loaded { row, state, token_ids });
                    }
                    return Ok(view);
                }
                Err(StoreError::Conflict { .. }) if expected_version.is_none() => {
                    // The caller named no version, so another commit in between is not their
                    // conflict: recompute on the stored state until it applies or the machine
                    // refuses it on its merits. A stale kept state costs one reload; a real race
                    // backs off (jittered, so racers spread out) and tries again.
                    if fresh {
                        lost += 1;
                        if lost >= MAX_ATTEMPTS {
                            self.forget(tenant, id);
                            return Err(EngineError::Contention { id: id.to_owned(), attempts: lost });
                        }
                        tokio::time::sleep(contention_backoff(lost)).await;
                    }
                    (machine, loaded) = self.load(tenant, id).await?;
                    fresh = true;
                }
                Err(error) => {
                    self.forget(tenant, id);
                    return Err(error.into());
                }
            }
        }
    }

    /// The instance's state read from the store (and kept), with the machine of its pinned
    /// definition version.
    async fn load(&self, tenant: &TenantId, id: &str) -> Result<(Arc<Machine>, Arc<Loaded>), EngineError> {
        let unknown = || EngineError::UnknownInstance { id: id.to_owned() };
        let rows = self.store.load_state(tenant, id).await?.ok_or_else(unknown)?;
        let machine = self.pinned_machine(tenant, &rows.instance).await?;
        let loaded = Arc::new(persist::load(&machine, rows)?);
        self.keep_shared(tenant, loaded.clone());
        Ok((machine, loaded))
    }

    /// The machine of the definition version `row` is pinned to.
    async fn pinned_machine(
        &self,
        tenant: &TenantId,
        row: &InstanceRow,
    ) -> Result<Arc<Machine>, EngineError> {
        Ok(self.machine(tenant, &row.definition_id, Some(row.definition_version)).await?.0)
    }

    fn states(&self) -> std::sync::MutexGuard<'_, HashMap<(TenantId, String), Arc<Loaded>>> {
        // A poisoned lock only means another thread panicked mid-insert; every entry is whole.
        self.states.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn kept(&self, tenant: &TenantId, id: &str) -> Option<Arc<Loaded>> {
        self.states().get(&(tenant.clone(), id.to_owned())).cloned()
    }

    fn keep(&self, tenant: &TenantId, loaded: Loaded) {
        self.keep_shared(tenant, Arc::new(loaded));
    }

    /// Keeps `loaded` unless a newer version is kept already (commands finish out of order).
    fn keep_shared(&self, tenant: &TenantId, loaded: Arc<Loaded>) {
        let mut states = self.states();
        let key = (tenant.clone(), loaded.row.id.clone());
        if states.get(&key).is_some_and(|k| k.row.version > loaded.row.version) {
            return;
        }
        if states.len() >= KEPT_STATES && !states.contains_key(&key) {
            let evict = states.keys().next().cloned();
            if let Some(evict) = evict {
                states.remove(&evict);
            }
        }
        states.insert(key, loaded);
    }

    fn forget(&self, tenant: &TenantId, id: &str) {
        self.states().remove(&(tenant.clone(), id.to_owned()));
    }

    /// The machine of `definition` at `version` (the latest for `None`) and that version:
    /// from the cache, or compiled from the stored source, the same path as from a file.
    async fn machine(
        &self,
        tenant: &TenantId,
        definition: &str,
        version: Option<u64>,
    ) -> Result<(Arc<Machine>, u64), EngineError> {
        if let Some(version) = version
            && let Some(machine) = self.cache_get(tenant, definition, version)
        {
            return Ok((machine, version));
        }
        let row = self
            .store
            .definition(tenant, definition, version)
            .await?
            .ok_or_else(|| EngineError::UnknownDefinition { id: definition.to_owned() })?;
        Ok((self.compiled(tenant, &row)?, row.version))
    }

    /// The machine of a stored definition version: from the cache, or compiled from its source.
    fn compiled(&self, tenant: &TenantId, row: &DefinitionRow) -> Result<Arc<Machine>, EngineError> {
        if let Some(machine) = self.cache_get(tenant, &row.id, row.version) {
            return Ok(machine);
        }
        let mut machine = Machine::new(compile(&row.source)?)?;
        for (name, guard) in &self.guards {
            machine = machine.with_guard(name.clone(), SharedGuard(guard.clone()));
        }
        for (name, strategy) in &self.strategies {
            machine = machine.with_strategy(name.clone(), SharedStrategy(strategy.clone()));
        }
        let key = (tenant.clone(), row.id.clone(), row.version);
        // Two callers may compile the same version at once; keep the first, they are equal.
        let machine = self
            .machines
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_insert(Arc::new(machine))
            .clone();
        Ok(machine)
    }

    fn cache_get(&self, tenant: &TenantId, definition: &str, version: u64) -> Option<Arc<Machine>> {
        // A poisoned lock only means another thread panicked while inserting; the map is intact.
        let machines = self.machines.read().unwrap_or_else(|e| e.into_inner());
        machines.get(&(tenant.clone(), definition.to_owned(), version)).cloned()
    }

    /// Now, to the microsecond: the store keeps microseconds, so a state computed in memory equals
    /// the one read back.
    fn now(&self) -> DateTime<Utc> {
        (self.clock)().trunc_subsecs(6)
    }
}

/// `items` split into at most `lanes` lanes, every item of one key (an instance) in the same lane
/// and in its original order.
pub(crate) fn lanes<T, K: PartialEq>(items: Vec<T>, lanes: usize, key: impl Fn(&T) -> K) -> Vec<Vec<T>> {
    let lanes = lanes.max(1);
    let mut out: Vec<Vec<T>> = (0..lanes).map(|_| Vec::new()).collect();
    let mut keys: Vec<(K, usize)> = Vec::new();
    for item in items {
        let k = key(&item);
        let lane = match keys.iter().find(|(seen, _)| *seen == k) {
            Some((_, lane)) => *lane,
            None => {
                // Round robin over instances: the next new instance goes to the next lane.
                let lane = keys.len() % lanes;
                keys.push((k, lane));
                lane
            }
        };
        out[lane].push(item);
    }
    out.retain(|lane| !lane.is_empty());
    out
}

/// Runs `futures` together on the current task (nothing is spawned, so they may borrow) and
/// returns their outputs in order.
pub(crate) async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// The wait after the `lost`-th lost race: "full jitter", a random share of an exponentially
/// growing cap, so racers that collided once do not collide again in lock step.
pub(crate) fn contention_backoff(lost: u32) -> Duration {
    let cap = FIRST_CONTENTION_WAIT.saturating_mul(1 << lost.min(16)).min(MAX_CONTENTION_WAIT);
    let micros = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(rand::random_range(0..=micros))
}

/// The definition compiled from `source`, or every diagnostic when it has errors.
fn compile(source: &str) -> Result<crate::ir::Definition, EngineError> {
    let checked = check_source(source);
    checked.definition.ok_or(EngineError::InvalidDefinition { diagnostics: checked.diagnostics })
}

/// One registered guard shared by the machines of every definition.
struct SharedGuard(Arc<dyn GuardEvaluator>);

impl GuardEvaluator for SharedGuard {
    fn allows(&self, config: Option<&Json>, ctx: &Context<'_>) -> bool {
        self.0.allows(config, ctx)
    }
}

/// One registered strategy shared by the machines of every definition.
struct SharedStrategy(Arc<dyn CustomStrategy>);

impl CustomStrategy for SharedStrategy {
    fn decide(&self, assignees: usize, responses: &[ApprovalResponse]) -> Decision {
        self.0.decide(assignees, responses)
    }
}
