//! The engine: the pure [`Machine`] run against a [`Store`], one transaction per command.
//!
//! Every call is scoped to a tenant. A command loads the instance (rows → [`InstanceState`]),
//! lets the machine compute a [`Step`], turns it into one [`Commit`](crate::store::Commit) (instance under its
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
//! # Not persisted yet
//!
//! - [`InstanceState::runs`]: the store has no place for action runs, so they are empty after a
//!   reload and a later `action_succeeded`/`action_failed` would be an unknown run (neither is
//!   exposed here yet).
//! - Tokens: the store returns only *active* tokens, so a cancelled branch is forgotten on reload
//!   (the join could then proceed without it); a token's `entered_at` reads back as its start.
//! - Who requested a pending approval has no column: it is read back from the history, a full
//!   history read per command while an approval is pending.
//! - An instance whose creation already reaches a terminal stage is inserted as `active` (an
//!   insert cannot set its status).

mod assign;
mod domain;
mod error;
mod outbox;
mod persist;
mod sla;
mod timers;
mod view;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Map, Value as Json};

pub use self::assign::NewDelegation;
pub use self::domain::{NewCampaign, NewContact, NewOpportunity, Running, domain_events};
pub use self::error::EngineError;
pub use self::outbox::{ActionHandler, ActionResult, Delivered, DeliveryReport, Subscriber};
use self::persist::Loaded;
pub use self::timers::{TimerOutcome, TimerReport};
pub use self::view::{ApprovalView, InstanceView, TokenView};
use crate::check::check_source;
use crate::diagnostic::unknown_name_help;
use crate::engine::Context;
use crate::engine::eval::Actor;
use crate::engine::machine::{
    ApprovalResponse, ApprovalStrategy, Decision, Directory, GuardEvaluator, InstanceState, Machine,
    MachineError, NoDirectory, Step, Vote, events,
};
use crate::store::{HistoryRow, Store, TenantId, new_id};

/// The engine's notion of "now": the wall clock, or a virtual one in tests and scenarios.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// What [`Engine::deploy`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployed {
    /// The definition's id.
    pub id: String,
    /// The version that holds the source.
    pub version: u64,
    /// False when the source was identical to the latest version (a no-op).
    pub created: bool,
}

/// Runs deployed definitions against persisted instances. Cheap to share behind an `Arc`.
pub struct Engine<S: Store> {
    store: S,
    clock: Clock,
    machines: RwLock<HashMap<(TenantId, String, u64), Arc<Machine>>>,
    directory: Arc<dyn Directory + Send + Sync>,
    guards: Vec<(String, Arc<dyn GuardEvaluator>)>,
    strategies: Vec<(String, Arc<dyn ApprovalStrategy>)>,
    subscribers: Vec<Arc<dyn Subscriber>>,
    action_handler: Option<Arc<dyn ActionHandler>>,
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
            directory: Arc::new(NoDirectory),
            guards: Vec::new(),
            strategies: Vec::new(),
            subscribers: Vec::new(),
            action_handler: None,
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
    pub fn with_strategy(
        mut self,
        name: impl Into<String>,
        strategy: impl ApprovalStrategy + 'static,
    ) -> Self {
        self.strategies.push((name.into(), Arc::new(strategy)));
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Compiles `source` and deploys it: identical to the latest version is a no-op, a change
    /// becomes the next version. Errors in the source are [`EngineError::InvalidDefinition`].
    pub async fn deploy(&self, tenant: &TenantId, source: &str) -> Result<Deployed, EngineError> {
        let def = compile(source)?;
        let name = def.label.as_deref().unwrap_or(&def.id);
        let deployed = self.store.deploy_definition(tenant, &def.id, name, source).await?;
        Ok(Deployed { id: def.id, version: deployed.version, created: deployed.created })
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
        let (machine, version) = self.machine(tenant, definition, None).await?;
        let def = machine.definition();
        let entity_id = def.entity_named(entity).ok_or_else(|| EngineError::UnknownEntity {
            definition: def.id.clone(),
            name: entity.to_owned(),
            help: unknown_name_help(entity, "entity", def.entities.iter().map(|e| e.name.as_str())),
        })?;
        let now = self.now();
        let step = machine.create(entity_id, data, actor, now)?;
        let id = new_id();
        let write = persist::insert(&machine, &id, version, &step.state);
        let view = InstanceView::new(&id, version, &machine, &step.state);
        let commit = persist::commit(&machine, write, None, step, actor, &*self.directory, now)?;
        self.store.commit(tenant, commit).await?;
        Ok(view)
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

    /// The instance as last committed.
    pub async fn instance(&self, tenant: &TenantId, id: &str) -> Result<InstanceView, EngineError> {
        let (machine, loaded) = self.load(tenant, id).await?;
        Ok(InstanceView::new(id, loaded.row.definition_version, &machine, &loaded.state))
    }

    /// The instance's history, oldest first; actor `None` is the system.
    pub async fn history(&self, tenant: &TenantId, id: &str) -> Result<Vec<HistoryRow>, EngineError> {
        // The store answers an empty list for an unknown id; tell the caller it does not exist.
        if self.store.load_instance(tenant, id).await?.is_none() {
            return Err(EngineError::UnknownInstance { id: id.to_owned() });
        }
        Ok(self.store.history(tenant, id).await?)
    }

    /// Load, compute, commit: the shape of every command on an existing instance.
    async fn run(
        &self,
        tenant: &TenantId,
        id: &str,
        expected_version: Option<u64>,
        actor: &Actor,
        command: impl FnOnce(&Machine, &InstanceState, DateTime<Utc>) -> Result<Step, MachineError>,
    ) -> Result<InstanceView, EngineError> {
        let (machine, loaded) = self.load(tenant, id).await?;
        // Checked before computing anything: the caller decided on what it saw at that version.
        if let Some(expected) = expected_version.filter(|&v| v != loaded.row.version) {
            return Err(EngineError::Conflict { id: id.to_owned(), expected, actual: loaded.row.version });
        }
        let now = self.now();
        let step = command(&machine, &loaded.state, now)?;
        let write = persist::update(&machine, &loaded, &step.state, now);
        let view = InstanceView::new(id, loaded.row.definition_version, &machine, &step.state);
        let commit = persist::commit(&machine, write, Some(&loaded), step, actor, &*self.directory, now)?;
        self.store.commit(tenant, commit).await?;
        Ok(view)
    }

    /// The instance's state and the machine of its pinned definition version.
    async fn load(&self, tenant: &TenantId, id: &str) -> Result<(Arc<Machine>, Loaded), EngineError> {
        let unknown = || EngineError::UnknownInstance { id: id.to_owned() };
        let rows = self.store.load_state(tenant, id).await?.ok_or_else(unknown)?;
        let pinned = Some(rows.instance.definition_version);
        let (machine, _) = self.machine(tenant, &rows.instance.definition_id, pinned).await?;
        let requested_by = match rows.approvals.first() {
            Some(pending) => self.requester(tenant, id, &pending.request.transition).await?,
            None => None,
        };
        let loaded = persist::load(&machine, rows, requested_by)?;
        Ok((machine, loaded))
    }

    /// Who asked for the pending approval of `transition`: the actor of its latest request.
    async fn requester(
        &self,
        tenant: &TenantId,
        id: &str,
        transition: &str,
    ) -> Result<Option<String>, EngineError> {
        let history = self.store.history(tenant, id).await?;
        Ok(history
            .into_iter()
            .rev()
            .find(|h| {
                h.event == events::APPROVAL_REQUESTED
                    && h.payload.as_ref().and_then(|p| p.get("transition")).and_then(Json::as_str)
                        == Some(transition)
            })
            .and_then(|h| h.actor_id))
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
        if let Some(machine) = self.cache_get(tenant, definition, row.version) {
            return Ok((machine, row.version));
        }
        let mut machine = Machine::new(compile(&row.source)?)?;
        for (name, guard) in &self.guards {
            machine = machine.with_guard(name.clone(), SharedGuard(guard.clone()));
        }
        for (name, strategy) in &self.strategies {
            machine = machine.with_strategy(name.clone(), SharedStrategy(strategy.clone()));
        }
        let key = (tenant.clone(), definition.to_owned(), row.version);
        // Two callers may compile the same version at once; keep the first, they are equal.
        let machine = self
            .machines
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_insert(Arc::new(machine))
            .clone();
        Ok((machine, row.version))
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
struct SharedStrategy(Arc<dyn ApprovalStrategy>);

impl ApprovalStrategy for SharedStrategy {
    fn decide(&self, assignees: usize, responses: &[ApprovalResponse]) -> Decision {
        self.0.decide(assignees, responses)
    }
}
