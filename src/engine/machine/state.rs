//! The state of one instance: plain data the store persists and hands back, never touched in place.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::engine::eval::Record;
use crate::ir::{ActionId, EntityId, GatewayId, StageId, TransitionId};

/// Everything the interpreter needs to know about one instance between commands.
///
/// Commands take it by reference and return a new one in a [`Step`](super::Step); the store
/// persists the new state only if `version` still matches what it read (optimistic locking).
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceState {
    /// The entity type.
    pub entity: EntityId,
    /// The main stage. While a gateway runs ([`InstanceState::tokens`] non-empty) it stays at the
    /// stage the gateway forked from.
    pub stage: StageId,
    /// Whether the instance can still move.
    pub status: InstanceStatus,
    /// The data, shared: a step that does not change data does not copy it.
    pub data: Arc<Record>,
    /// The branch tokens of the running gateway; empty when no gateway runs.
    pub tokens: Vec<Token>,
    /// The approval a transition is waiting for, if any.
    pub pending_approval: Option<PendingApproval>,
    /// The user the instance is assigned to.
    pub assignee: Option<String>,
    /// When the main stage was entered (escalations count from here).
    pub stage_entered_at: DateTime<Utc>,
    /// When the instance was created: where the entity SLA's clock starts.
    pub started_at: DateTime<Utc>,
    /// Actions whose outcome still matters: a branch waits for it, or a compensation may need it.
    pub runs: Vec<ActionRun>,
    /// Incremented by every step; 1 after creation.
    pub version: u64,
}

impl InstanceState {
    /// Whether a gateway is running (the main stage is parked at its fork stage).
    pub fn in_gateway(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// Whether the instance is in `stage`: its main stage, or the stage of an active token.
    pub fn occupies(&self, stage: StageId) -> bool {
        self.stage == stage
            || self.tokens.iter().any(|t| t.status == TokenStatus::Active && t.stage == Some(stage))
    }
}

/// Whether an instance can still move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstanceStatus {
    /// It can move.
    Active,
    /// It reached a terminal stage.
    Completed,
}

/// One branch of a running gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// The gateway that started it.
    pub gateway: GatewayId,
    /// The branch's position in [`crate::ir::Gateway::branches`].
    pub branch: usize,
    /// Where the branch's token is: its `stage`, moved on by transitions; `None` for branches
    /// without a stage. A completed stage branch keeps the join stage here.
    pub stage: Option<StageId>,
    /// Whether the branch still runs.
    pub status: TokenStatus,
    /// When the token entered its current stage (or started).
    pub entered_at: DateTime<Utc>,
}

/// Where a branch stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenStatus {
    /// Still running.
    Active,
    /// Done: the join counts it.
    Completed,
    /// Its action failed: the join can no longer complete; a transition out of the fork stage
    /// (e.g. a `"*"` withdrawal) ends the gateway.
    Cancelled,
}

/// A transition waiting for approval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingApproval {
    /// The transition to apply once approved.
    pub transition: TransitionId,
    /// The branch whose token the transition moves, when it moves a token.
    pub branch: Option<usize>,
    /// Who fired the transition.
    pub requested_by: String,
    /// When.
    pub requested_at: DateTime<Utc>,
    /// The responses so far, in order.
    pub responses: Vec<ApprovalResponse>,
}

/// One approver's response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalResponse {
    /// The user who responded.
    pub approver: String,
    /// What they said.
    pub vote: Vote,
    /// When.
    pub at: DateTime<Utc>,
}

/// An approver's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vote {
    /// Yes.
    Approve,
    /// No.
    Reject,
}

impl Vote {
    /// `"approve"` or `"reject"`, as history and events write it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Vote::Approve => "approve",
            Vote::Reject => "reject",
        }
    }
}

/// Identifies one enqueued action: the version of the step that enqueued it and its position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId {
    /// The [`InstanceState::version`] the enqueuing step produced.
    pub step: u64,
    /// Its position among the actions of that step.
    pub seq: u32,
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.step, self.seq)
    }
}

/// An action whose outcome the host reports back (`action_succeeded` / `action_failed`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionRun {
    /// This run.
    pub id: RunId,
    /// The first run of its group: the actions one transition (or one fork) enqueued, which are
    /// compensated together.
    pub group: RunId,
    /// The action.
    pub action: ActionId,
    /// The gateway branch that completes when it succeeds.
    pub branch: Option<(GatewayId, usize)>,
    /// Where it stands.
    pub status: RunStatus,
}

/// Where an action run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStatus {
    /// Enqueued, outcome not reported yet.
    Pending,
    /// Reported successful (or applied in the step, as `set_field` is).
    Succeeded,
    /// Reported failed after its retries.
    Failed,
    /// Succeeded, then undone by its compensation.
    Compensated,
}
