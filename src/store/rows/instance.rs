//! An instance: its row, its action runs and history, how a commit writes it, and the whole
//! state read back in one statement.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::{AssignmentRow, SlaRow, StoredPendingApproval, TimerRow, TokenRow};

text_enum! {
    /// Whether an instance still runs (`crm_instances.status`; the engine's `InstanceStatus` as stored).
    StoredInstanceStatus {
        /// In a non-terminal stage.
        Active = "active",
        /// In a terminal stage; `ended_at` is set.
        Completed = "completed",
    }
}

text_enum! {
    /// Where an action run stands (the engine's `RunStatus` as stored).
    StoredRunStatus {
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
    /// The current stage's name (column `state`).
    pub stage: String,
    /// Active or completed.
    pub status: StoredInstanceStatus,
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
    /// Its human-readable number, when its entity has a pattern.
    pub number: Option<String>,
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
    pub status: StoredRunStatus,
}

/// An instance to create, at version 1 with all times [`Commit::at`](crate::store::Commit::at)
/// (`ended_at` too, when it is created `completed`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewInstance {
    /// Its id, usually [`new_id`](crate::store::new_id).
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
    pub stage: String,
    /// `Completed` when creation already reached a terminal stage.
    pub status: StoredInstanceStatus,
    /// The initial data.
    pub data: Json,
    /// The first assignee.
    pub assignee: Option<String>,
    /// Action runs already enqueued by the creation.
    pub runs: Vec<RunRow>,
    /// The number to assign from a counter in the creating transaction, if any.
    pub number: Option<NumberRequest>,
}

/// A human-readable number to assign: the next value of the counter of (tenant, `pattern`,
/// `period`), written between `prefix` and `suffix` with at least `width` digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberRequest {
    /// The pattern as written in the definition.
    pub pattern: String,
    /// The period the counter runs in (the date text of the number).
    pub period: String,
    /// The text before the counter.
    pub prefix: String,
    /// The text after the counter.
    pub suffix: String,
    /// The counter's minimum number of digits.
    pub width: usize,
}

impl NumberRequest {
    /// The number with counter value `n`.
    pub fn render(&self, n: u64) -> String {
        format!("{}{:0width$}{}", self.prefix, n, self.suffix, width = self.width)
    }
}

/// What a commit wrote: the instance's new version and the number it assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The instance's version after the commit (0 without an instance).
    pub version: u64,
    /// The number assigned to a created instance.
    pub number: Option<String>,
}

/// The new state of an existing instance; written only if its version is still `expected_version`.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceUpdate {
    /// Which instance.
    pub id: String,
    /// The version the change was computed from.
    pub expected_version: u64,
    /// The stage after the change.
    pub stage: String,
    /// Active or completed after the change.
    pub status: StoredInstanceStatus,
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
        /// The version the bookkeeping was computed from; another is a
        /// [`StoreError::Conflict`](crate::store::StoreError::Conflict).
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

/// Everything the engine needs to resume an instance, as stored and read from one snapshot
/// (the engine turns it into its own `InstanceState`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredInstanceState {
    /// The instance row.
    pub instance: InstanceRow,
    /// Its action runs whose outcome still matters, in enqueue order.
    pub runs: Vec<RunRow>,
    /// Every token of its running gateway (active, completed or cancelled), in start order, id
    /// order within one start; empty when no gateway runs.
    pub tokens: Vec<TokenRow>,
    /// Its pending approval rounds with their responses.
    pub approvals: Vec<StoredPendingApproval>,
    /// Its timers still to fire, earliest first.
    pub timers: Vec<TimerRow>,
    /// Its SLA clocks, oldest first.
    pub sla: Vec<SlaRow>,
    /// Its current assignment.
    pub assignment: Option<AssignmentRow>,
}
