//! Row and value types: what the store reads and writes, independent of the IR.
//!
//! Names (stages, transitions, gateways) are plain text and data is JSON; the engine's glue maps
//! its typed state to these rows and back.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value as Json;

/// The tenant every row belongs to and every query is scoped to (SR-003).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(pub String);

impl TenantId {
    /// A tenant id from any string.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A fresh row id: a UUIDv7, time-ordered so that ids sort roughly by creation and index well.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Declares a closed set of values stored as text, with its `as_str` and `parse`.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// The text stored in the database.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// The value stored as `text`, if it is one.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// Whether an instance still runs.
    InstanceStatus {
        /// In a non-terminal stage.
        Active = "active",
        /// In a terminal stage; `ended_at` is set.
        Completed = "completed",
    }
}

text_enum! {
    /// The life of a gateway branch token.
    TokenStatus {
        /// The branch is running.
        Active = "active",
        /// The branch reached its join.
        Completed = "completed",
        /// The branch was abandoned (the instance left the gateway another way).
        Cancelled = "cancelled",
    }
}

text_enum! {
    /// Where an action run stands.
    RunStatus {
        /// Enqueued; its outcome is not reported yet.
        Pending = "pending",
        /// Reported successful (or applied in the step itself).
        Succeeded = "succeeded",
        /// Reported failed after its retries.
        Failed = "failed",
        /// Succeeded, then undone by its compensation.
        Compensated = "compensated",
    }
}

text_enum! {
    /// One approver's answer.
    Decision {
        /// Approves the transition.
        Approve = "approve",
        /// Rejects the transition.
        Reject = "reject",
    }
}

text_enum! {
    /// Where an approval round stands.
    RequestStatus {
        /// Waiting for responses.
        Pending = "pending",
        /// The strategy resolved to approve.
        Approved = "approved",
        /// The strategy resolved to reject.
        Rejected = "rejected",
        /// Withdrawn, e.g. because the instance left the stage.
        Cancelled = "cancelled",
    }
}

text_enum! {
    /// What an outbox item asks a worker to do.
    OutboxKind {
        /// Publish a domain event.
        Event = "event",
        /// Run an action (email, webhook, …).
        Action = "action",
        /// Run the compensation of an action that succeeded before a later one failed (BR-004).
        Compensation = "compensation",
    }
}

text_enum! {
    /// Delivery state of an outbox item.
    OutboxStatus {
        /// Waiting for (another) attempt.
        Pending = "pending",
        /// Delivered.
        Done = "done",
        /// Gave up after the retry limit (REL-005's dead-letter queue).
        Dead = "dead",
    }
}

text_enum! {
    /// Where an SLA stands.
    SlaStatus {
        /// Within its time.
        OnTrack = "on_track",
        /// Past the at-risk threshold.
        AtRisk = "at_risk",
        /// Past the breach time.
        Breached = "breached",
        /// Stopped in time.
        Met = "met",
    }
}

/// What deploying a definition did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deployed {
    /// The version that now holds the source.
    pub version: u64,
    /// False when the source was identical to the latest version, which is then reused.
    pub created: bool,
}

/// One deployed version of a definition (`crm_definitions`).
#[derive(Debug, Clone, PartialEq)]
pub struct DefinitionRow {
    /// The definition's id.
    pub id: String,
    /// 1, 2, …: a new version per changed source.
    pub version: u64,
    /// The definition's display name.
    pub name: String,
    /// The definition JSON exactly as deployed.
    pub source: String,
    /// SHA-256 of `source`, lowercase hex.
    pub checksum: String,
    /// True for the latest version, the one new instances start on.
    pub active: bool,
    /// When this version was deployed.
    pub created_at: DateTime<Utc>,
}

/// A running or finished instance (`crm_instances`).
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRow {
    /// The instance id (UUIDv7).
    pub id: String,
    /// The definition it runs.
    pub definition_id: String,
    /// The definition version it is pinned to.
    pub definition_version: u64,
    /// The entity of the definition it is an instance of.
    pub entity: String,
    /// The host model type, if the instance belongs to one.
    pub subject_type: Option<String>,
    /// The host model id, if the instance belongs to one.
    pub subject_id: Option<String>,
    /// The current stage's name.
    pub state: String,
    /// Active or completed.
    pub status: InstanceStatus,
    /// The instance data document.
    pub data: Json,
    /// The user it is assigned to.
    pub assignee: Option<String>,
    /// Optimistic-lock version: 1 on insert, +1 per commit that writes the instance.
    pub version: u64,
    /// When the current stage was entered.
    pub stage_entered_at: DateTime<Utc>,
    /// When the instance was created.
    pub started_at: DateTime<Utc>,
    /// When the instance was last written.
    pub updated_at: DateTime<Utc>,
    /// When it completed.
    pub ended_at: Option<DateTime<Utc>>,
}

/// An action run whose outcome still matters to the engine (a branch waits for it, or a
/// compensation may need it). Kept with the instance (`crm_instances.runs`, a JSON array) and
/// written under its version check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    /// The run's id, as the outbox item's payload carries it (`"3.0"`).
    pub id: String,
    /// The id of the first run of its group (the actions compensated together).
    pub group: String,
    /// The action.
    pub action: String,
    /// The gateway of the branch that completes when the run succeeds.
    pub gateway: Option<String>,
    /// That branch.
    pub branch: Option<String>,
    /// Where it stands.
    pub status: RunStatus,
}

/// An instance to create, at version 1 with all times [`Commit::at`] (`ended_at` too, when it
/// is created `completed`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewInstance {
    /// Its id, usually [`new_id`].
    pub id: String,
    /// The definition it runs.
    pub definition_id: String,
    /// The (deployed) definition version to pin.
    pub definition_version: u64,
    /// The entity it is an instance of.
    pub entity: String,
    /// Host model type.
    pub subject_type: Option<String>,
    /// Host model id; unique per definition and subject type (BR-007).
    pub subject_id: Option<String>,
    /// The initial stage.
    pub state: String,
    /// `Completed` when creation already reached a terminal stage.
    pub status: InstanceStatus,
    /// The initial data.
    pub data: Json,
    /// The first assignee.
    pub assignee: Option<String>,
    /// Action runs already enqueued by the creation.
    pub runs: Vec<RunRow>,
}

/// The new state of an existing instance; written only if its version is still `expected_version`.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceUpdate {
    /// Which instance.
    pub id: String,
    /// The version the change was computed from.
    pub expected_version: u64,
    /// The stage after the change.
    pub state: String,
    /// Active or completed after the change.
    pub status: InstanceStatus,
    /// The data after the change.
    pub data: Json,
    /// The assignee after the change.
    pub assignee: Option<String>,
    /// When the current stage was entered (unchanged unless the stage changed).
    pub stage_entered_at: DateTime<Utc>,
    /// Set when the instance completes.
    pub ended_at: Option<DateTime<Utc>>,
    /// The action runs after the change (replacing the stored list).
    pub runs: Vec<RunRow>,
}

/// How a commit writes its instance.
#[derive(Debug, Clone, PartialEq)]
pub enum InstanceWrite {
    /// Create it.
    Insert(NewInstance),
    /// Change it under the optimistic lock.
    Update(InstanceUpdate),
    /// Leave its row as it is (no new version), provided it is still at `expected_version`: the
    /// commit's other parts, such as timers, belong to instance `id`. For bookkeeping no reader
    /// of the instance can see.
    Unchanged {
        /// The instance.
        id: String,
        /// The version the bookkeeping was computed from; another is a [`StoreError::Conflict`](super::StoreError::Conflict).
        expected_version: u64,
    },
}

impl InstanceWrite {
    /// The id of the instance written.
    pub fn id(&self) -> &str {
        match self {
            Self::Insert(new) => &new.id,
            Self::Update(update) => &update.id,
            Self::Unchanged { id, .. } => id,
        }
    }
}

/// One audit entry (`crm_history`), as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    /// The instance it belongs to.
    pub instance_id: String,
    /// 1, 2, … per instance, without gaps.
    pub seq: u64,
    /// What happened (`created`, `transition`, `data_updated`, …).
    pub event: String,
    /// State before, if any.
    pub before: Option<Json>,
    /// State after, if any.
    pub after: Option<Json>,
    /// Who did it; `None` for the system.
    pub actor_id: Option<String>,
    /// Anything else worth keeping.
    pub payload: Option<Json>,
    /// When (the commit's time).
    pub created_at: DateTime<Utc>,
}

/// An audit entry to append to the commit's instance; the store numbers it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewHistory {
    /// What happened.
    pub event: String,
    /// State before.
    pub before: Option<Json>,
    /// State after.
    pub after: Option<Json>,
    /// Who did it.
    pub actor_id: Option<String>,
    /// Anything else.
    pub payload: Option<Json>,
}

/// A gateway branch token (`crm_tokens`) of the gateway run still going on.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRow {
    /// Token id.
    pub id: String,
    /// The instance it belongs to.
    pub instance_id: String,
    /// The gateway that started it.
    pub gateway: String,
    /// The branch it runs.
    pub branch: String,
    /// The stage the branch is in, if branches have stages.
    pub stage: Option<String>,
    /// Running, joined or abandoned.
    pub status: TokenStatus,
    /// When the branch started.
    pub created_at: DateTime<Utc>,
    /// When the token entered its current stage (its start, until it moves).
    pub entered_at: DateTime<Utc>,
    /// When it completed or was cancelled.
    pub completed_at: Option<DateTime<Utc>>,
}

/// A change to the commit's instance's tokens, applied in order.
///
/// Tokens belong to the gateway run that started them; [`TokenWrite::End`] closes that run, after
/// which its tokens are no longer read back with the instance.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenWrite {
    /// Start a branch (status `active`, created and entered at [`Commit::at`]).
    Start {
        /// Token id, usually [`new_id`].
        id: String,
        /// The gateway.
        gateway: String,
        /// The branch.
        branch: String,
        /// Its first stage, if any.
        stage: Option<String>,
    },
    /// Change an active token's stage and status; completing or cancelling stamps `completed_at`.
    Set {
        /// Which token; it must be active, of the running gateway and belong to the instance.
        id: String,
        /// Its stage after the change.
        stage: Option<String>,
        /// Its status after the change.
        status: TokenStatus,
        /// When it entered that stage.
        entered_at: DateTime<Utc>,
    },
    /// End the running gateway (joined or abandoned): every one of its tokens still active gets
    /// `status`, and all of them stop being read back. Nothing to end is not an error.
    End {
        /// The status of the tokens still active (`Completed` for a join, `Cancelled` otherwise).
        status: TokenStatus,
    },
}

/// One approval round of a transition (`crm_approval_requests`).
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRequestRow {
    /// The instance.
    pub instance_id: String,
    /// The transition awaiting approval.
    pub transition: String,
    /// 1 for the first request of this transition, +1 for each re-request.
    pub round: u64,
    /// Where it stands.
    pub status: RequestStatus,
    /// The user ids asked to respond (roles resolved by the caller).
    pub assignees: Vec<String>,
    /// Who fired the transition; `None` for the system.
    pub requested_by: Option<String>,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
    /// When it was resolved.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// One approver's response (`crm_approvals`).
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRow {
    /// Response id.
    pub id: String,
    /// The transition.
    pub transition: String,
    /// The round it answers.
    pub round: u64,
    /// Who answered.
    pub approver: String,
    /// Approve or reject.
    pub decision: Decision,
    /// Their comment.
    pub comment: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A pending approval round with the responses it has so far.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingApproval {
    /// The round.
    pub request: ApprovalRequestRow,
    /// Its responses, oldest first.
    pub responses: Vec<ApprovalRow>,
}

/// A change to the commit's instance's approvals, applied in the order given.
#[derive(Debug, Clone, PartialEq)]
pub enum ApprovalWrite {
    /// Open the next round for `transition`; refused with [`Duplicate`](super::StoreError::Duplicate)
    /// while one is pending.
    Request {
        /// The transition.
        transition: String,
        /// The user ids asked to respond.
        assignees: Vec<String>,
        /// Who fired the transition; `None` for the system.
        requested_by: Option<String>,
    },
    /// Record a response to the pending round of `transition`; one per approver and round.
    Respond {
        /// Response id, usually [`new_id`].
        id: String,
        /// The transition.
        transition: String,
        /// Who answers.
        approver: String,
        /// Approve or reject.
        decision: Decision,
        /// A comment.
        comment: Option<String>,
    },
    /// Close the pending round of `transition` as approved, rejected or cancelled.
    Resolve {
        /// The transition.
        transition: String,
        /// The outcome (not `Pending`).
        status: RequestStatus,
    },
}

/// An assignment record (`crm_assignments`).
#[derive(Debug, Clone, PartialEq)]
pub struct AssignmentRow {
    /// The assignee.
    pub user_id: String,
    /// Who assigned them; `None` for the system.
    pub assigned_by: Option<String>,
    /// When.
    pub assigned_at: DateTime<Utc>,
    /// Whether this is the current assignment.
    pub active: bool,
}

/// A change of the commit's instance's assignment; the previous one becomes inactive.
///
/// The instance's `assignee` column is what the dashboard reads; keep it in step through
/// [`InstanceUpdate::assignee`].
#[derive(Debug, Clone, PartialEq)]
pub enum AssignmentChange {
    /// Assign to `user_id`.
    Assign {
        /// The new assignee.
        user_id: String,
        /// Who assigns.
        assigned_by: Option<String>,
    },
    /// Leave the instance unassigned.
    Unassign,
}

/// A delegation (`crm_delegations`): `delegator`'s work also goes to `delegatee` between the dates.
#[derive(Debug, Clone, PartialEq)]
pub struct DelegationRow {
    /// Delegation id.
    pub id: String,
    /// Who delegates.
    pub delegator: String,
    /// To whom.
    pub delegatee: String,
    /// First day (inclusive); `None` means already started.
    pub start_date: Option<NaiveDate>,
    /// Last day (inclusive); `None` means open-ended.
    pub end_date: Option<NaiveDate>,
    /// Only instances of this entity; `None` means all.
    pub entity: Option<String>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// An outbox item (`crm_outbox`).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    /// The tenant (workers serve all tenants).
    pub tenant: TenantId,
    /// Item id.
    pub id: String,
    /// The instance it came from.
    pub instance_id: Option<String>,
    /// Event, action or compensation.
    pub kind: OutboxKind,
    /// Event or action name.
    pub name: String,
    /// What to deliver.
    pub payload: Json,
    /// Delivery state.
    pub status: OutboxStatus,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Not to be tried before this time (also the claim's lease end).
    pub next_attempt_at: DateTime<Utc>,
    /// The worker that claimed it last.
    pub locked_by: Option<String>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When it was delivered or given up.
    pub processed_at: Option<DateTime<Utc>>,
    /// The last failure, shortened.
    pub last_error: Option<String>,
}

/// An outbox item to enqueue, due at [`Commit::at`], tied to the commit's instance if it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOutbox {
    /// Item id, usually [`new_id`].
    pub id: String,
    /// Event, action or compensation.
    pub kind: OutboxKind,
    /// Event or action name.
    pub name: String,
    /// What to deliver.
    pub payload: Json,
}

/// What to record after a failed delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxFailure {
    /// The error, kept (shortened) in `last_error`.
    pub error: String,
    /// When to try again (the caller's backoff).
    pub next_attempt_at: DateTime<Utc>,
    /// Give up: move the item to the dead-letter state.
    pub dead: bool,
}

/// A scheduled timer (`crm_timers`).
#[derive(Debug, Clone, PartialEq)]
pub struct TimerRow {
    /// The tenant (workers serve all tenants).
    pub tenant: TenantId,
    /// Timer id.
    pub id: String,
    /// The instance.
    pub instance_id: String,
    /// What kind of timer (`sla_at_risk`, `sla_breach`, `reminder`, `escalation`, …).
    pub kind: String,
    /// When it fires.
    pub trigger_at: DateTime<Utc>,
    /// What the firing needs to know.
    pub payload: Json,
    /// When it fired or was cancelled.
    pub processed_at: Option<DateTime<Utc>>,
    /// Whether it was cancelled rather than fired.
    pub cancelled: bool,
    /// The worker holding it.
    pub locked_by: Option<String>,
    /// Until when that worker holds it.
    pub locked_until: Option<DateTime<Utc>>,
}

/// A change to the commit's instance's timers.
#[derive(Debug, Clone, PartialEq)]
pub enum TimerWrite {
    /// Schedule a timer.
    Schedule {
        /// Timer id, usually [`new_id`].
        id: String,
        /// What kind of timer.
        kind: String,
        /// When it fires.
        trigger_at: DateTime<Utc>,
        /// What the firing needs.
        payload: Json,
    },
    /// Cancel one pending timer.
    Cancel {
        /// Which timer.
        id: String,
    },
    /// Cancel every pending timer of this kind (e.g. leaving a stage).
    CancelKind {
        /// The kind.
        kind: String,
    },
    /// Mark a timer fired, in the same transaction as its effect.
    Fired {
        /// Which timer.
        id: String,
    },
}

/// An SLA clock (`crm_sla`).
#[derive(Debug, Clone, PartialEq)]
pub struct SlaRow {
    /// SLA id.
    pub id: String,
    /// The instance.
    pub instance_id: String,
    /// The entity or stage name it measures.
    pub scope: String,
    /// Its length.
    pub duration_minutes: u64,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it becomes at risk.
    pub at_risk_at: Option<DateTime<Utc>>,
    /// When it breaches.
    pub breach_at: DateTime<Utc>,
    /// Where it stands.
    pub status: SlaStatus,
    /// When it stopped.
    pub stopped_at: Option<DateTime<Utc>>,
}

/// A change to the commit's instance's SLA clocks.
#[derive(Debug, Clone, PartialEq)]
pub enum SlaWrite {
    /// Start a clock (status `on_track`).
    Start {
        /// SLA id, usually [`new_id`].
        id: String,
        /// Entity or stage name.
        scope: String,
        /// Its length.
        duration_minutes: u64,
        /// When it started.
        started_at: DateTime<Utc>,
        /// When it becomes at risk.
        at_risk_at: Option<DateTime<Utc>>,
        /// When it breaches.
        breach_at: DateTime<Utc>,
    },
    /// Change its status; `stopped_at` for `met` (or a breach that stops the clock).
    Set {
        /// Which clock.
        id: String,
        /// New status.
        status: SlaStatus,
        /// When it stopped.
        stopped_at: Option<DateTime<Utc>>,
    },
}

/// An escalation record (`crm_escalations`).
#[derive(Debug, Clone, PartialEq)]
pub struct EscalationRow {
    /// Escalation id.
    pub id: String,
    /// The instance.
    pub instance_id: String,
    /// 1, 2, …
    pub level: u32,
    /// Taken from.
    pub from_user_id: Option<String>,
    /// Given to.
    pub to_user_id: Option<String>,
    /// Why.
    pub reason: String,
    /// When.
    pub escalated_at: DateTime<Utc>,
}

/// An escalation of the commit's instance, recorded at [`Commit::at`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewEscalation {
    /// Escalation id, usually [`new_id`].
    pub id: String,
    /// 1, 2, …
    pub level: u32,
    /// Taken from.
    pub from_user_id: Option<String>,
    /// Given to.
    pub to_user_id: Option<String>,
    /// Why.
    pub reason: String,
}

/// A contact or lead (`crm_contacts`), as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    /// Contact id.
    pub id: String,
    /// The instance that runs its lead pipeline.
    pub instance_id: Option<String>,
    /// Name.
    pub name: String,
    /// Email.
    pub email: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Status (`lead`, `qualified`, `customer`, …).
    pub status: String,
    /// Lead score.
    pub score: Option<f64>,
    /// Other fields.
    pub data: Json,
}

/// A sales deal (`crm_opportunities`), as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Opportunity {
    /// Opportunity id.
    pub id: String,
    /// The contact it is with (same tenant).
    pub contact_id: String,
    /// The instance that runs its pipeline.
    pub instance_id: Option<String>,
    /// Pipeline stage.
    pub stage: String,
    /// Amount.
    pub value: f64,
    /// ISO currency code.
    pub currency: String,
    /// Expected close date.
    pub close_date: Option<NaiveDate>,
    /// Win probability.
    pub probability: f64,
    /// Other fields.
    pub data: Json,
}

/// A marketing campaign (`crm_campaigns`), as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    /// Campaign id.
    pub id: String,
    /// The instance that runs it.
    pub instance_id: Option<String>,
    /// Name.
    pub name: String,
    /// Type (`email`, `event`, …); `type` in the table.
    pub kind: String,
    /// First day.
    pub start_date: Option<NaiveDate>,
    /// Last day.
    pub end_date: Option<NaiveDate>,
    /// Metrics document.
    pub metrics: Json,
    /// Status (`draft`, `running`, …).
    pub status: String,
}

/// A domain entity as stored, with the times the store keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored<T> {
    /// The entity.
    pub value: T,
    /// When it was inserted.
    pub created_at: DateTime<Utc>,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
}

/// How a commit writes a domain entity; times come from [`Commit::at`].
#[derive(Debug, Clone, PartialEq)]
pub enum EntityWrite<T> {
    /// Insert; an existing id is a [`Duplicate`](super::StoreError::Duplicate).
    Insert(T),
    /// Replace every field of an existing row; a missing row is [`NotFound`](super::StoreError::NotFound).
    Update(T),
}

/// A listing of domain entities in id order (ids are UUIDv7, so roughly creation order).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EntityQuery {
    /// Only this status (contacts, campaigns) or stage (opportunities).
    pub status: Option<String>,
    /// At most this many (0 means the default of 50).
    pub limit: u32,
    /// Continue after this id (the last one of the previous page).
    pub after: Option<String>,
}

/// One unit of work: everything in it is written in one transaction, or nothing is.
///
/// Instance-scoped parts (history, tokens, approvals, timers, SLA, escalations, assignment)
/// belong to `instance` and require it, so every change to an instance goes through its
/// optimistic lock. Outbox items are tied to `instance` when there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    /// The time of the change (a virtual clock in tests): stamps every row written.
    pub at: DateTime<Utc>,
    /// The instance to insert or update.
    pub instance: Option<InstanceWrite>,
    /// Audit entries to append, in order.
    pub history: Vec<NewHistory>,
    /// Branch token changes.
    pub tokens: Vec<TokenWrite>,
    /// Approval changes, applied in order (request, then responses, then resolution).
    pub approvals: Vec<ApprovalWrite>,
    /// Timer changes.
    pub timers: Vec<TimerWrite>,
    /// SLA changes.
    pub sla: Vec<SlaWrite>,
    /// Escalations to record.
    pub escalations: Vec<NewEscalation>,
    /// A change of assignment.
    pub assignment: Option<AssignmentChange>,
    /// Events and actions to deliver after the commit.
    pub outbox: Vec<NewOutbox>,
    /// Contact writes.
    pub contacts: Vec<EntityWrite<Contact>>,
    /// Opportunity writes.
    pub opportunities: Vec<EntityWrite<Opportunity>>,
    /// Campaign writes.
    pub campaigns: Vec<EntityWrite<Campaign>>,
}

impl Commit {
    /// An empty commit at `at`; fill in the parts it writes.
    pub fn new(at: DateTime<Utc>) -> Self {
        Self {
            at,
            instance: None,
            history: Vec::new(),
            tokens: Vec::new(),
            approvals: Vec::new(),
            timers: Vec::new(),
            sla: Vec::new(),
            escalations: Vec::new(),
            assignment: None,
            outbox: Vec::new(),
            contacts: Vec::new(),
            opportunities: Vec::new(),
            campaigns: Vec::new(),
        }
    }

    /// Whether it writes anything scoped to an instance besides the instance row itself.
    pub(super) fn has_instance_parts(&self) -> bool {
        !(self.history.is_empty()
            && self.tokens.is_empty()
            && self.approvals.is_empty()
            && self.timers.is_empty()
            && self.sla.is_empty()
            && self.escalations.is_empty()
            && self.assignment.is_none())
    }
}

/// Everything the engine needs to resume an instance, read from one snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceState {
    /// The instance row.
    pub instance: InstanceRow,
    /// Its action runs whose outcome still matters, in enqueue order.
    pub runs: Vec<RunRow>,
    /// Every token of its running gateway (active, completed or cancelled), in start order, id
    /// order within one start; empty when no gateway runs.
    pub tokens: Vec<TokenRow>,
    /// Its pending approval rounds with their responses.
    pub approvals: Vec<PendingApproval>,
    /// Its timers still to fire, earliest first.
    pub timers: Vec<TimerRow>,
    /// Its SLA clocks, oldest first.
    pub sla: Vec<SlaRow>,
    /// Its current assignment.
    pub assignment: Option<AssignmentRow>,
}

/// The sort key of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// Last change.
    #[default]
    UpdatedAt,
    /// Creation.
    StartedAt,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Oldest first.
    Asc,
    /// Newest first.
    #[default]
    Desc,
}

/// The dashboard query: which pending items, in which order, which page.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PendingQuery {
    /// Only instances of this entity.
    pub entity: Option<String>,
    /// Only instances in this stage.
    pub stage: Option<String>,
    /// Only instances of this definition.
    pub definition: Option<String>,
    /// Sort key.
    pub sort: SortKey,
    /// Sort direction.
    pub direction: Direction,
    /// Page size (0 means 50; at most 500).
    pub limit: u32,
    /// The page after this cursor (from the previous [`Page::next`]).
    pub after: Option<Cursor>,
    /// "Today" for delegation date ranges; `None` means the current UTC date.
    pub today: Option<NaiveDate>,
}

/// Why an item is on a user's dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingReason {
    /// Assigned to the user.
    Assigned,
    /// Assigned to `from`, who delegated (possibly through a chain) to the user.
    Delegated {
        /// The original assignee.
        from: String,
    },
    /// The user is asked to approve `transition` and has not responded.
    Approval {
        /// The transition awaiting approval.
        transition: String,
    },
}

/// One dashboard item.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingItem {
    /// The instance.
    pub instance: InstanceRow,
    /// Why it is pending for the user.
    pub reason: PendingReason,
}

/// One page of a keyset-paginated listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items, in order.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// An opaque position in a sorted listing: the sort key and id of the last item of a page.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor(pub(super) String);

impl Cursor {
    /// The cursor as text, to hand to a client.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A cursor a client handed back; checked when used.
    pub fn from_string(text: impl Into<String>) -> Self {
        Self(text.into())
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
