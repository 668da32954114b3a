//! The definition file as written: serde types from which `schemars` derives the published JSON
//! Schema (`crm schema`, `schema/crm-definition.schema.json`).
//!
//! These types are the boundary format only. The compiler validates them and lowers them into
//! [`crate::ir`]; nothing downstream of `check` sees them. Keys and shapes follow the seed's
//! examples (`dataSchema`, `entities.<name>.stages`, `transitions.<name>.from/to/condition/actions`,
//! `sla.duration/breach_actions`, `automation.escalation/reminders`, `integrations`) so that those
//! examples need only additions, never rewrites. `docs/definition-language.md` documents every key.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A nexus-crm definition: entities with stages, transitions, gateways, actions, timers and policies.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "nexus-crm definition")]
pub struct DefinitionFile {
    /// The JSON Schema this file follows (for editors); ignored by the compiler.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Stable identifier of the definition, e.g. `sales-pipeline`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"), length(max = 128))]
    pub id: String,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The author's version label, e.g. `1.0.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Free text for readers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Typed instance data fields, by name. Conditions are type-checked against them.
    #[serde(rename = "dataSchema", default, skip_serializing_if = "IndexMap::is_empty")]
    pub data_schema: IndexMap<String, FieldSpec>,
    /// Entity types (`lead`, `opportunity`, …) with their stages.
    #[schemars(extend("minProperties" = 1))]
    pub entities: IndexMap<String, EntitySpec>,
    /// Named transitions between stages.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub transitions: IndexMap<String, TransitionSpec>,
    /// Named parallel and inclusive gateways (fork into branches, then join).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub gateways: IndexMap<String, GatewaySpec>,
    /// Named actions that transitions, gateways, timers and escalations run.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub actions: IndexMap<String, ActionSpec>,
    /// A service-level agreement for every entity that does not declare its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<SlaSpec>,
    /// Business-hours calendars by name, for SLAs that count working time only.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub calendars: IndexMap<String, CalendarSpec>,
    /// Delegation policy and standing delegations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegation: Option<DelegationSpec>,
    /// Configuration of outbound integrations (email, webhooks, Slack).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrations: Option<IntegrationsSpec>,
}

/// A typed data field, an entry of `dataSchema`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// The field's type.
    #[serde(rename = "type")]
    pub ty: FieldTypeName,
    /// Whether every instance must carry this field.
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    /// Inclusive minimum: the value for numbers, the length for strings and arrays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Inclusive maximum: the value for numbers, the length for strings and arrays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// The only values allowed.
    #[serde(rename = "enum", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub allowed: Option<Vec<serde_json::Value>>,
    /// A regular expression (Rust `regex` syntax) that string values must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// For arrays: the type of every item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<FieldTypeName>,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Free text for readers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The type of a data field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FieldTypeName {
    /// Text.
    String,
    /// Integer or decimal.
    Number,
    /// Whole number.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// ISO-8601 date, `2026-11-25`.
    Date,
    /// ISO-8601 date-time with offset, `2026-11-25T08:00:00Z`.
    Datetime,
    /// A list.
    Array,
    /// A JSON object.
    Object,
}

/// An entity type with its stages.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntitySpec {
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The stages, in order; the first is the initial stage unless `initial` says otherwise.
    pub stages: Vec<StageSpec>,
    /// The initial stage (default: the first listed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<String>,
    /// The terminal stages. When given, any other stage without a way out is a finding; when
    /// omitted, stages without an outgoing transition are terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal: Option<Vec<String>>,
    /// A service-level agreement for instances of this entity (overrides the top-level one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<SlaSpec>,
    /// Escalations and reminders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automation: Option<AutomationSpec>,
    /// Who works on instances of this entity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment: Option<AssignmentSpec>,
    /// Level 1 contact fields (seed `entities.contact.fields`): names of `dataSchema` fields, or of
    /// untyped fields when there is no `dataSchema`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
    /// The pattern of its instances' human-readable numbers, assigned on creation, unique and
    /// gap-free per tenant: text with `{YYYY}`, `{YY}`, `{MM}`, `{DD}` and one zero-padded counter
    /// such as `{0000}`, e.g. `"LEAD-{YYYY}-{0000}"`. The counter restarts when the date text changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub number: Option<String>,
}

/// A stage: just its name, or an object with a stage-level SLA.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum StageSpec {
    /// `"qualified"`.
    Name(String),
    /// `{"name": "qualified", "sla": {…}}`.
    Detailed(StageDetail),
}

impl StageSpec {
    /// The stage's name.
    pub fn name(&self) -> &str {
        match self {
            StageSpec::Name(name) => name,
            StageSpec::Detailed(detail) => &detail.name,
        }
    }
}

/// A stage written as an object.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StageDetail {
    /// The stage's name.
    pub name: String,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// An SLA whose clock runs while the instance is in this stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<SlaSpec>,
}

/// One stage name, several, or `"*"` for any non-terminal stage of the entity.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum StageRefs {
    /// A single stage name, or `"*"`.
    One(String),
    /// Several stage names.
    Many(Vec<String>),
}

/// How a transition is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// Fired by name by an actor.
    Manual,
    /// Fires by itself after any change once its condition holds.
    Auto,
}

/// A named transition between stages.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionSpec {
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The entity it belongs to; needed only when its stage names are shared by several entities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// The stage(s) it leaves from; `"*"` for any non-terminal stage.
    pub from: StageRefs,
    /// The stage it enters.
    pub to: String,
    /// `manual` or `auto`. Default: `auto` when there is a `condition`, `manual` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// An expression that must hold for the transition to apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Checks on the acting user and the data, all of which must pass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guards: Vec<GuardSpec>,
    /// Actions run (through the outbox) when the transition completes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
    /// An approval required before the stage changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalSpec>,
}

/// A guard: a check that must pass before a transition or gateway may fire.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum GuardSpec {
    /// An expression over the data and the actor.
    Expression {
        /// The expression; it must produce a boolean.
        expression: String,
        /// Shown to the actor when the guard refuses.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// The actor must have this role.
    RoleCheck {
        /// The role name.
        role: String,
        /// Shown to the actor when the guard refuses.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// The actor must have this permission.
    PermissionCheck {
        /// The permission name.
        permission: String,
        /// Shown to the actor when the guard refuses.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// A condition evaluator registered by the embedding application under this name.
    Custom {
        /// The registered evaluator's name.
        name: String,
        /// Passed to the evaluator as is.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        config: Option<serde_json::Value>,
        /// Shown to the actor when the guard refuses.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
}

/// How approvals are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StrategyName {
    /// Every assignee must approve.
    Unison,
    /// More than half of the assignees must approve.
    Majority,
    /// At least `quorum` assignees must approve.
    Quorum,
    /// The first response decides.
    First,
    /// A strategy registered by the embedding application (`custom` names it).
    Custom,
}

/// An approval step: who approves and how their responses are counted.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSpec {
    /// Users whose approval is asked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Roles whose members' approval is asked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// How responses are counted.
    pub strategy: StrategyName,
    /// For `quorum`: how many approvals are needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<u32>,
    /// For `custom`: the registered strategy's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<String>,
}

/// The kind of gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GatewayKind {
    /// Every branch runs; the join waits for all of them.
    Parallel,
    /// Every branch whose condition holds runs; the join waits for exactly those.
    Inclusive,
}

/// A gateway: from a stage, fork into branches that run at once, then join into one stage.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewaySpec {
    /// `parallel` or `inclusive`.
    #[serde(rename = "type")]
    pub kind: GatewayKind,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The entity it belongs to; needed only when its stage names are shared by several entities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// The stage(s) the fork leaves from.
    pub from: StageRefs,
    /// `manual` or `auto`, as for transitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// An expression that must hold for the gateway to fire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Checks that must pass before the gateway fires.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guards: Vec<GuardSpec>,
    /// The branches, by name.
    #[schemars(extend("minProperties" = 1))]
    pub branches: IndexMap<String, BranchSpec>,
    /// The stage the instance enters once the join completes.
    pub join: String,
    /// Actions run when the gateway forks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
}

/// One branch of a gateway. It completes when its `stage` path reaches the join, when its
/// `action` succeeds, or, with neither, when a user completes it.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchSpec {
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Inclusive gateways: the branch runs only when this holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// The branch is this action; it completes when the action succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The branch's token starts in this stage and completes when transitions bring it to the join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
}

/// The kind of an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionType {
    /// Send an email through the email integration.
    Email,
    /// POST an event to a URL.
    Webhook,
    /// Post a message to a Slack channel.
    Slack,
    /// Create an instance of another entity.
    CreateEntity,
    /// Set a data field of the instance.
    SetField,
    /// Assign the instance to a user or role.
    Assign,
    /// Notify users or roles in the application.
    Notify,
    /// A plugin registered by the embedding application.
    Custom,
}

/// A named action. Which keys apply depends on `type`; `docs/definition-language.md` lists them.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    /// What kind of action this is.
    #[serde(rename = "type")]
    pub kind: ActionType,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `email`: the template key in `integrations.email.templates`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// `email`, `notify`, `assign`: recipients or assignees (user ids, `role:NAME`, or a
    /// `data.` path holding an address).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// `webhook`: the URL (https), or `slack`: the incoming-webhook URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `slack`: the channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// `slack`, `notify`: the message text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `create_entity`: the entity to create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// `set_field`: the data field to set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// `set_field`: the value to store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    /// `custom`: the registered plugin's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// `custom`, `webhook`, `create_entity`: free configuration passed along.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
    /// The action that undoes this one; compensations run in reverse order on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compensation: Option<String>,
    /// How many times a failed run is retried (with exponential backoff) before dead-lettering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub max_retries: Option<u32>,
}

/// A service-level agreement: a deadline from when the clock starts.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlaSpec {
    /// Time allowed, e.g. `"2 days"`, or chosen by a data field:
    /// `{"by": "data.priority", "urgent": "1 hour", "high": "4 hours", "default": "1 day"}`.
    pub duration: DurationSpec,
    /// When the SLA turns `at_risk`: elapsed time (`"36 hours"`) or share of the duration (`"75%"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_risk: Option<String>,
    /// Actions run when the SLA is breached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breach_actions: Vec<String>,
    /// A calendar of `calendars`: the SLA counts only its working time (days are working days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<String>,
}

/// An SLA's `duration`: fixed, or chosen by the value of a data field.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum DurationSpec {
    /// A duration, e.g. `"2 days"`.
    Fixed(String),
    /// `"by"`: the field (`"data.priority"`); every other key is a value of the field (or
    /// `"default"`) with its duration.
    #[schemars(extend("required" = ["by"]))]
    ByData(IndexMap<String, String>),
}

/// A business-hours calendar: working days and hours in a time zone, minus holidays.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarSpec {
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The IANA time zone the hours are in, e.g. `"Europe/Berlin"`, `"America/New_York"`.
    pub timezone: String,
    /// The working days (default: Monday to Friday).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<Vec<WeekdayName>>,
    /// Working hours of every working day, local time, e.g. `"09:00-17:00"`.
    #[schemars(regex(pattern = r"^\s*\d{2}:\d{2}\s*-\s*\d{2}:\d{2}\s*$"))]
    pub hours: String,
    /// Days without work, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holidays: Vec<String>,
}

/// A day of the week.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WeekdayName {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl WeekdayName {
    /// The chrono weekday.
    pub fn weekday(self) -> chrono::Weekday {
        use chrono::Weekday as W;
        match self {
            WeekdayName::Mon => W::Mon,
            WeekdayName::Tue => W::Tue,
            WeekdayName::Wed => W::Wed,
            WeekdayName::Thu => W::Thu,
            WeekdayName::Fri => W::Fri,
            WeekdayName::Sat => W::Sat,
            WeekdayName::Sun => W::Sun,
        }
    }
}

/// Time-based automation of an entity.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AutomationSpec {
    /// Escalation rules, checked in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalation: Vec<EscalationSpec>,
    /// Reminders before a deadline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reminders: Vec<ReminderSpec>,
}

/// Escalate when an instance has waited too long.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationSpec {
    /// How long after entering its current stage, e.g. `"24 hours"`.
    pub after: String,
    /// Escalate only when this holds, e.g. `"stage == 'new'"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// The action to run.
    pub action: String,
    /// The escalation level recorded in the history (default: position in the list, from 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10))]
    pub level: Option<u32>,
}

/// What a reminder counts back from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReminderTarget {
    /// The SLA's breach time.
    SlaBreach,
    /// The SLA's at-risk time.
    SlaAtRisk,
}

/// A reminder some time before a deadline.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReminderSpec {
    /// How long before the target, e.g. `"4 hours"`.
    pub before: String,
    /// The deadline it counts back from.
    pub target: ReminderTarget,
    /// The action to run.
    pub action: String,
}

/// How work is assigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentStrategy {
    /// Someone assigns explicitly.
    Manual,
    /// Take turns among the candidates.
    RoundRobin,
    /// The candidate with the fewest open instances.
    LeastLoaded,
}

/// Who works on instances of an entity.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignmentSpec {
    /// Candidate users.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Candidate roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// How the assignee is chosen (default `manual`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<AssignmentStrategy>,
    /// Whether a user may assign an instance to themselves (seed BR-001: no by default).
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_self_assignment: bool,
}

/// Delegation policy.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DelegationSpec {
    /// The longest delegation chain followed, at most 3 (seed BR-005).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_depth: Option<u32>,
    /// Standing delegations known when the definition is written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<DelegationRuleSpec>,
}

/// `from` delegates their work to `to` between `start` and `end` (inclusive dates).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DelegationRuleSpec {
    /// The delegating user.
    pub from: String,
    /// The user receiving the work.
    pub to: String,
    /// First day, `YYYY-MM-DD` (default: always).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Last day, `YYYY-MM-DD` (default: open-ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Only for these entities (default: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<String>,
}

/// Outbound integrations.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationsSpec {
    /// Email delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailIntegrationSpec>,
    /// Webhook URLs by event, e.g. `"on_lead_created": "https://…"`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub webhook: IndexMap<String, String>,
    /// Slack delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackIntegrationSpec>,
}

/// Email delivery settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailIntegrationSpec {
    /// The delivery provider, e.g. `smtp`, `sendgrid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The sender address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Template ids by key; `email` actions name a key.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub templates: IndexMap<String, String>,
}

/// Slack delivery settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlackIntegrationSpec {
    /// The default channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The incoming-webhook URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// The JSON Schema (draft-07) of definition files, as published for editors.
pub fn json_schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    generator.into_root_schema_for::<DefinitionFile>().to_value()
}
