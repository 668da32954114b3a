//! The typed IR: plain data, independent of JSON text and of storage. Indices, not strings, inside.
//!
//! A [`Definition`] is a set of tables (entities, stages, transitions, gateways, actions) addressed
//! by newtype ids. Names are kept for display, error messages and look-ups at the API edge only.
//! Each variant's docs name the definition form it comes from.

pub mod calendar;
pub mod data;
pub mod expr;
pub mod number;
pub mod value;

use std::collections::HashMap;
use std::time::Duration;

use chrono::NaiveDate;

pub use calendar::Calendar;
pub use data::{DataSchema, Field, FieldId, FieldType};
pub use expr::Expr;
pub use number::{NumberPart, NumberPattern, NumberTemplate};
pub use value::Value;

macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u32);

        impl $name {
            /// The position in its table.
            pub const fn index(self) -> usize {
                self.0 as usize
            }
        }
    )*};
}

ids! {
    /// An entity in [`Definition::entities`].
    EntityId;
    /// A stage in [`Definition::stages`]; stage ids are global across entities.
    StageId;
    /// A transition in [`Definition::transitions`].
    TransitionId;
    /// A gateway in [`Definition::gateways`].
    GatewayId;
    /// An action in [`Definition::actions`].
    ActionId;
}

/// A compiled definition. From a whole definition file.
#[derive(Clone, Debug)]
pub struct Definition {
    /// `id`.
    pub id: String,
    /// `label`.
    pub label: Option<String>,
    /// `version`.
    pub version: Option<String>,
    /// `dataSchema`, fields resolved to slots.
    pub data: DataSchema,
    /// `entities`, in declaration order.
    pub entities: Vec<Entity>,
    /// Every stage of every entity, grouped by entity in declaration order.
    pub stages: Vec<Stage>,
    /// `transitions`, in declaration order.
    pub transitions: Vec<Transition>,
    /// `gateways`, in declaration order.
    pub gateways: Vec<Gateway>,
    /// `actions`, in declaration order.
    pub actions: Vec<Action>,
    /// `delegation`.
    pub delegation: DelegationPolicy,
    /// `integrations`.
    pub integrations: Integrations,
    names: NameIndex,
}

#[derive(Clone, Debug, Default)]
struct NameIndex {
    entities: HashMap<String, EntityId>,
    transitions: HashMap<String, TransitionId>,
    gateways: HashMap<String, GatewayId>,
    actions: HashMap<String, ActionId>,
}

impl Definition {
    /// Assembles a definition from its tables and builds the name look-ups.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        header: DefinitionHeader,
        data: DataSchema,
        entities: Vec<Entity>,
        stages: Vec<Stage>,
        transitions: Vec<Transition>,
        gateways: Vec<Gateway>,
        actions: Vec<Action>,
        delegation: DelegationPolicy,
        integrations: Integrations,
    ) -> Self {
        fn index<I: Copy>(names: impl Iterator<Item = String>, id: impl Fn(u32) -> I) -> HashMap<String, I> {
            names.enumerate().map(|(i, name)| (name, id(i as u32))).collect()
        }
        let names = NameIndex {
            entities: index(entities.iter().map(|e| e.name.clone()), EntityId),
            transitions: index(transitions.iter().map(|t| t.name.clone()), TransitionId),
            gateways: index(gateways.iter().map(|g| g.name.clone()), GatewayId),
            actions: index(actions.iter().map(|a| a.name.clone()), ActionId),
        };
        Self {
            id: header.id,
            label: header.label,
            version: header.version,
            data,
            entities,
            stages,
            transitions,
            gateways,
            actions,
            delegation,
            integrations,
            names,
        }
    }

    /// The entity with this id.
    pub fn entity(&self, id: EntityId) -> &Entity {
        &self.entities[id.index()]
    }

    /// The stage with this id.
    pub fn stage(&self, id: StageId) -> &Stage {
        &self.stages[id.index()]
    }

    /// The transition with this id.
    pub fn transition(&self, id: TransitionId) -> &Transition {
        &self.transitions[id.index()]
    }

    /// The gateway with this id.
    pub fn gateway(&self, id: GatewayId) -> &Gateway {
        &self.gateways[id.index()]
    }

    /// The action with this id.
    pub fn action(&self, id: ActionId) -> &Action {
        &self.actions[id.index()]
    }

    /// The entity called `name`.
    pub fn entity_named(&self, name: &str) -> Option<EntityId> {
        self.names.entities.get(name).copied()
    }

    /// The transition called `name`.
    pub fn transition_named(&self, name: &str) -> Option<TransitionId> {
        self.names.transitions.get(name).copied()
    }

    /// The gateway called `name`.
    pub fn gateway_named(&self, name: &str) -> Option<GatewayId> {
        self.names.gateways.get(name).copied()
    }

    /// The action called `name`.
    pub fn action_named(&self, name: &str) -> Option<ActionId> {
        self.names.actions.get(name).copied()
    }

    /// The stage of `entity` called `name`.
    pub fn stage_named(&self, entity: EntityId, name: &str) -> Option<StageId> {
        self.entity(entity).stages.iter().copied().find(|&s| self.stage(s).name == name)
    }
}

/// Identification of a definition: `id`, `label`, `version`.
#[derive(Clone, Debug, Default)]
pub struct DefinitionHeader {
    /// `id`.
    pub id: String,
    /// `label`.
    pub label: Option<String>,
    /// `version`.
    pub version: Option<String>,
}

/// An entity type. From `entities.<name>`.
#[derive(Clone, Debug)]
pub struct Entity {
    /// The key in `entities`.
    pub name: String,
    /// `label`.
    pub label: Option<String>,
    /// Its stages in declaration order (`stages`).
    pub stages: Vec<StageId>,
    /// `initial`, or the first listed stage.
    pub initial: StageId,
    /// The SLA of its instances: `sla`, else the definition's top-level `sla`.
    pub sla: Option<Sla>,
    /// `automation.escalation`, in order.
    pub escalations: Vec<Escalation>,
    /// `automation.reminders`.
    pub reminders: Vec<Reminder>,
    /// `assignment` (defaults: manual, no self-assignment).
    pub assignment: Assignment,
    /// Level 1 `fields`: the data fields a contact of this entity carries.
    pub fields: Vec<String>,
    /// `number`: the pattern of its instances' human-readable numbers.
    pub number: Option<NumberPattern>,
}

/// A stage. From an entry of `entities.<name>.stages`.
#[derive(Clone, Debug)]
pub struct Stage {
    /// The stage name.
    pub name: String,
    /// `label` of the object form.
    pub label: Option<String>,
    /// The entity it belongs to.
    pub entity: EntityId,
    /// Whether instances end here (declared in `terminal`, or inferred: no way out).
    pub terminal: bool,
    /// A stage-level SLA (`{"name": …, "sla": …}`).
    pub sla: Option<Sla>,
    /// Transitions that may leave this stage (`from` lists it, or is `"*"`).
    pub outgoing: Vec<TransitionId>,
    /// Gateways that may fork from this stage.
    pub forks: Vec<GatewayId>,
}

/// How a transition or gateway starts. From `trigger`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// `"manual"`, or no trigger and no condition: an actor fires it by name.
    Manual,
    /// `"auto"`, or no trigger but a condition: fires by itself once the condition holds.
    Auto,
}

/// A compiled condition together with the text it came from.
#[derive(Clone, Debug)]
pub struct Condition {
    /// The expression as written.
    pub source: String,
    /// The compiled form.
    pub expr: Expr,
}

/// A named transition. From `transitions.<name>`.
#[derive(Clone, Debug)]
pub struct Transition {
    /// The key in `transitions`.
    pub name: String,
    /// `label`.
    pub label: Option<String>,
    /// `entity`, or the entity its stages belong to.
    pub entity: EntityId,
    /// `from`, with `"*"` expanded to every non-terminal stage.
    pub from: Vec<StageId>,
    /// `to`.
    pub to: StageId,
    /// `trigger`, defaulted.
    pub trigger: Trigger,
    /// `condition`.
    pub condition: Option<Condition>,
    /// `guards`.
    pub guards: Vec<Guard>,
    /// `actions`.
    pub actions: Vec<ActionId>,
    /// `approval`.
    pub approval: Option<Approval>,
}

/// A check before a transition or gateway. From an entry of `guards`.
#[derive(Clone, Debug)]
pub enum Guard {
    /// `{"type": "expression", "expression": …}`.
    Expression {
        /// The compiled expression.
        condition: Condition,
        /// `message`.
        message: Option<String>,
    },
    /// `{"type": "role_check", "role": …}`.
    Role {
        /// `role`.
        role: String,
        /// `message`.
        message: Option<String>,
    },
    /// `{"type": "permission_check", "permission": …}`.
    Permission {
        /// `permission`.
        permission: String,
        /// `message`.
        message: Option<String>,
    },
    /// `{"type": "custom", "name": …}`: an evaluator registered by the host application.
    Custom {
        /// `name`.
        name: String,
        /// `config`, passed to the evaluator as is.
        config: Option<serde_json::Value>,
        /// `message`.
        message: Option<String>,
    },
}

/// How approval responses are counted. From `approval.strategy` (+ `quorum`, `custom`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApprovalStrategy {
    /// `"unison"`: every assignee approves.
    Unison,
    /// `"majority"`: more than half approve.
    Majority,
    /// `"quorum"` with `"quorum": N`: at least N approve.
    Quorum(u32),
    /// `"first"`: the first response decides.
    First,
    /// `"custom"` with `"custom": NAME`: a strategy registered by the host application.
    Custom(String),
}

/// An approval step. From `transitions.<name>.approval`.
#[derive(Clone, Debug)]
pub struct Approval {
    /// `users`.
    pub users: Vec<String>,
    /// `roles`.
    pub roles: Vec<String>,
    /// `strategy`.
    pub strategy: ApprovalStrategy,
}

/// Parallel or inclusive. From `gateways.<name>.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatewayKind {
    /// `"parallel"`: all branches run; the join waits for all.
    Parallel,
    /// `"inclusive"`: branches whose condition holds run; the join waits for exactly those.
    Inclusive,
}

/// A fork into branches followed by a join. From `gateways.<name>`.
#[derive(Clone, Debug)]
pub struct Gateway {
    /// The key in `gateways`.
    pub name: String,
    /// `label`.
    pub label: Option<String>,
    /// `type`.
    pub kind: GatewayKind,
    /// `entity`, or the entity its stages belong to.
    pub entity: EntityId,
    /// `from`.
    pub from: Vec<StageId>,
    /// `trigger`, defaulted as for transitions.
    pub trigger: Trigger,
    /// `condition`.
    pub condition: Option<Condition>,
    /// `guards`.
    pub guards: Vec<Guard>,
    /// `branches`, in declaration order.
    pub branches: Vec<Branch>,
    /// `join`: the stage entered when the join completes.
    pub join: StageId,
    /// `actions`, run at the fork.
    pub actions: Vec<ActionId>,
}

/// One branch of a gateway. From `gateways.<name>.branches.<branch>`.
#[derive(Clone, Debug)]
pub struct Branch {
    /// The key in `branches`.
    pub name: String,
    /// `label`.
    pub label: Option<String>,
    /// `condition` (inclusive gateways only).
    pub condition: Option<Condition>,
    /// `stage`: where the branch's token starts.
    pub stage: Option<StageId>,
    /// `action`: run when the branch starts.
    pub action: Option<ActionId>,
}

/// When a branch counts as complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BranchCompletion {
    /// Its token reached the join stage through transitions (the branch has a `stage`).
    ReachesJoin,
    /// Its action succeeded (an `action` and no `stage`).
    ActionSucceeds,
    /// A user marked it complete (neither `stage` nor `action`).
    UserCompletes,
}

impl Branch {
    /// How this branch completes.
    pub fn completion(&self) -> BranchCompletion {
        match (self.stage, self.action) {
            (Some(_), _) => BranchCompletion::ReachesJoin,
            (None, Some(_)) => BranchCompletion::ActionSucceeds,
            (None, None) => BranchCompletion::UserCompletes,
        }
    }
}

/// A named action. From `actions.<name>`.
#[derive(Clone, Debug)]
pub struct Action {
    /// The key in `actions`.
    pub name: String,
    /// `label`.
    pub label: Option<String>,
    /// `type` and its settings.
    pub kind: ActionKind,
    /// `compensation`: the action that undoes this one.
    pub compensation: Option<ActionId>,
    /// `max_retries` (default 5).
    pub max_retries: u32,
}

/// What an action does. From `actions.<name>.type` and its type's keys.
#[derive(Clone, Debug)]
pub enum ActionKind {
    /// `"email"`: `template`, `to`.
    Email {
        /// Template key in `integrations.email.templates`.
        template: Option<String>,
        /// Recipients.
        to: Vec<String>,
    },
    /// `"webhook"`: `url`, `config`.
    Webhook {
        /// Target URL.
        url: String,
        /// Extra settings.
        config: Option<serde_json::Value>,
    },
    /// `"slack"`: `channel`, `url`, `message`.
    Slack {
        /// Channel (default: the integration's).
        channel: Option<String>,
        /// Incoming-webhook URL (default: the integration's).
        url: Option<String>,
        /// Message text.
        message: Option<String>,
    },
    /// `"create_entity"`: `entity`, `config`.
    CreateEntity {
        /// The entity to create.
        entity: EntityId,
        /// Initial data and settings.
        config: Option<serde_json::Value>,
    },
    /// `"set_field"`: `field`, `value`.
    SetField {
        /// The field written.
        field: FieldId,
        /// The value stored.
        value: Value,
    },
    /// `"assign"`: `to`.
    Assign {
        /// Candidate assignees.
        to: Vec<String>,
    },
    /// `"notify"`: `to`, `message`.
    Notify {
        /// Recipients.
        to: Vec<String>,
        /// Message text.
        message: Option<String>,
    },
    /// `"custom"`: `plugin`, `config`.
    Custom {
        /// The registered plugin's name.
        plugin: String,
        /// Passed to the plugin as is.
        config: Option<serde_json::Value>,
    },
}

impl ActionKind {
    /// The `type` name as written in definitions.
    pub fn type_name(&self) -> &'static str {
        match self {
            ActionKind::Email { .. } => "email",
            ActionKind::Webhook { .. } => "webhook",
            ActionKind::Slack { .. } => "slack",
            ActionKind::CreateEntity { .. } => "create_entity",
            ActionKind::SetField { .. } => "set_field",
            ActionKind::Assign { .. } => "assign",
            ActionKind::Notify { .. } => "notify",
            ActionKind::Custom { .. } => "custom",
        }
    }
}

/// A service-level agreement. From `sla` (top level, entity or stage).
#[derive(Clone, Debug, PartialEq)]
pub struct Sla {
    /// `duration`; for a duration chosen from data, the longest it can be (what checks compare).
    pub duration: Duration,
    /// `duration` written as `{"by": "data.FIELD", VALUE: DURATION, …, "default": DURATION}`.
    pub by: Option<DurationByData>,
    /// `at_risk`, as elapsed time since the clock started (a percentage is converted, of
    /// `duration`).
    pub at_risk: Option<Duration>,
    /// `at_risk` written as a percentage, as a share (0.75): for a duration chosen from data, the
    /// at-risk time follows the duration chosen.
    pub at_risk_share: Option<f64>,
    /// `breach_actions`.
    pub breach_actions: Vec<ActionId>,
    /// `calendar`: durations count its working time; `None` counts every hour.
    pub calendar: Option<std::sync::Arc<Calendar>>,
}

/// A duration chosen by the value of a data field. From `sla.duration` written as an object.
#[derive(Clone, Debug, PartialEq)]
pub struct DurationByData {
    /// `by`: the field, a string field.
    pub field: FieldId,
    /// The duration for each value, in the order written.
    pub cases: Vec<(String, Duration)>,
    /// `default`: for a value without a case, or no value.
    pub default: Option<Duration>,
}

impl Sla {
    /// The duration and at-risk time for an instance whose `by` field (if any) holds `value`.
    pub fn timing(&self, value: Option<&Value>) -> (Duration, Option<Duration>) {
        let Some(by) = &self.by else { return (self.duration, self.at_risk) };
        let chosen = match value {
            Some(Value::Str(text)) => by.cases.iter().find(|(case, _)| **case == **text).map(|(_, d)| *d),
            _ => None,
        };
        let duration = chosen.or(by.default).unwrap_or(self.duration);
        let at_risk = match (self.at_risk_share, &self.calendar) {
            (Some(share), Some(calendar)) => {
                Some(calendar.duration_of(calendar.working_time(duration).mul_f64(share)))
            }
            (Some(share), None) => Some(duration.mul_f64(share)),
            (None, _) => self.at_risk,
        };
        (duration, at_risk)
    }
    /// The time from the clock's start until `before` ahead of `target` (both of this SLA's
    /// time): on a calendar, in working time.
    pub fn ahead_of(&self, target: Duration, before: Duration) -> Duration {
        match &self.calendar {
            Some(calendar) => calendar
                .duration_of(calendar.working_time(target).saturating_sub(calendar.working_time(before))),
            None => target.saturating_sub(before),
        }
    }

    /// When `elapsed` of this SLA's time has passed since `start`: over its calendar, if any.
    pub fn due(
        &self,
        start: chrono::DateTime<chrono::Utc>,
        elapsed: Duration,
    ) -> chrono::DateTime<chrono::Utc> {
        match &self.calendar {
            Some(calendar) => calendar.add(start, elapsed),
            None => chrono::TimeDelta::from_std(elapsed)
                .ok()
                .and_then(|d| start.checked_add_signed(d))
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC),
        }
    }
}

/// An escalation rule. From an entry of `automation.escalation`.
#[derive(Clone, Debug)]
pub struct Escalation {
    /// `after`: time in the current stage.
    pub after: Duration,
    /// `condition`.
    pub condition: Option<Condition>,
    /// `action`.
    pub action: ActionId,
    /// `level`, or the 1-based position in the list.
    pub level: u32,
}

/// What a reminder counts back from. From `automation.reminders[].target`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReminderTarget {
    /// `"sla_breach"`.
    SlaBreach,
    /// `"sla_at_risk"`.
    SlaAtRisk,
}

/// A reminder. From an entry of `automation.reminders`.
#[derive(Clone, Debug)]
pub struct Reminder {
    /// `before`.
    pub before: Duration,
    /// `target`.
    pub target: ReminderTarget,
    /// `action`.
    pub action: ActionId,
}

/// How an assignee is chosen. From `assignment.strategy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AssignmentStrategy {
    /// `"manual"` (default).
    #[default]
    Manual,
    /// `"round_robin"`.
    RoundRobin,
    /// `"least_loaded"`.
    LeastLoaded,
}

/// Assignment policy. From `entities.<name>.assignment`.
#[derive(Clone, Debug, Default)]
pub struct Assignment {
    /// `users`.
    pub users: Vec<String>,
    /// `roles`.
    pub roles: Vec<String>,
    /// `strategy`.
    pub strategy: AssignmentStrategy,
    /// `allow_self_assignment` (seed BR-001: false by default).
    pub allow_self_assignment: bool,
}

/// Delegation policy. From `delegation`.
#[derive(Clone, Debug)]
pub struct DelegationPolicy {
    /// `max_depth` (default and maximum 3, seed BR-005).
    pub max_depth: u32,
    /// `rules`.
    pub rules: Vec<DelegationRule>,
}

impl Default for DelegationPolicy {
    fn default() -> Self {
        Self { max_depth: MAX_DELEGATION_DEPTH, rules: Vec::new() }
    }
}

/// The deepest delegation chain followed (seed BR-005).
pub const MAX_DELEGATION_DEPTH: u32 = 3;

/// A standing delegation. From an entry of `delegation.rules`.
#[derive(Clone, Debug)]
pub struct DelegationRule {
    /// `from`.
    pub from: String,
    /// `to`.
    pub to: String,
    /// `start` (inclusive).
    pub start: Option<NaiveDate>,
    /// `end` (inclusive).
    pub end: Option<NaiveDate>,
    /// `entities` (empty: all).
    pub entities: Vec<EntityId>,
}

/// Outbound integration settings. From `integrations`.
#[derive(Clone, Debug, Default)]
pub struct Integrations {
    /// `email.provider`.
    pub email_provider: Option<String>,
    /// `email.from`.
    pub email_from: Option<String>,
    /// `email.templates`: key → provider template id.
    pub email_templates: Vec<(String, String)>,
    /// `webhook`: event → URL.
    pub webhooks: Vec<(String, String)>,
    /// `slack.channel`.
    pub slack_channel: Option<String>,
    /// `slack.webhook_url`.
    pub slack_webhook_url: Option<String>,
}
