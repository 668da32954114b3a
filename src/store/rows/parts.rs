//! The instance-scoped parts a commit writes besides the instance row: gateway tokens,
//! approvals, assignments, timers, SLA clocks and escalations.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::TenantId;

text_enum! {
    /// The life of a gateway branch token (the engine's `TokenStatus` as stored).
    StoredTokenStatus {
        /// The branch is running.
        Active = "active",
        /// The branch reached its join.
        Completed = "completed",
        /// The branch was abandoned (the instance left the gateway another way).
        Cancelled = "cancelled",
    }
}

text_enum! {
    /// One approver's answer (the engine's `Vote` as stored in `crm_approvals.decision`).
    StoredDecision {
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
    pub status: StoredTokenStatus,
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
    /// Start a branch (status `active`, created and entered at [`Commit::at`](crate::store::Commit::at)).
    Start {
        /// Token id, usually [`new_id`](crate::store::new_id).
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
        status: StoredTokenStatus,
        /// When it entered that stage.
        entered_at: DateTime<Utc>,
    },
    /// End the running gateway (joined or abandoned): every one of its tokens still active gets
    /// `status`, and all of them stop being read back. Nothing to end is not an error.
    End {
        /// The status of the tokens still active (`Completed` for a join, `Cancelled` otherwise).
        status: StoredTokenStatus,
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
    pub decision: StoredDecision,
    /// Their comment.
    pub comment: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A pending approval round with the responses it has so far, as stored (the engine's
/// `PendingApproval` is built from it).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPendingApproval {
    /// The round.
    pub request: ApprovalRequestRow,
    /// Its responses, oldest first.
    pub responses: Vec<ApprovalRow>,
}

/// A change to the commit's instance's approvals, applied in the order given.
#[derive(Debug, Clone, PartialEq)]
pub enum ApprovalWrite {
    /// Open the next round for `transition`; refused with
    /// [`Duplicate`](crate::store::StoreError::Duplicate) while one is pending.
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
        /// Response id, usually [`new_id`](crate::store::new_id).
        id: String,
        /// The transition.
        transition: String,
        /// Who answers.
        approver: String,
        /// Approve or reject.
        decision: StoredDecision,
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
/// [`InstanceUpdate::assignee`](crate::store::InstanceUpdate::assignee).
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
        /// Timer id, usually [`new_id`](crate::store::new_id).
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
        /// SLA id, usually [`new_id`](crate::store::new_id).
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
    /// Give a running clock new due times, keeping its start and status (its duration was
    /// chosen from data, and the data changed).
    Retime {
        /// Which clock.
        id: String,
        /// Its new length.
        duration_minutes: u64,
        /// When it becomes at risk now.
        at_risk_at: Option<DateTime<Utc>>,
        /// When it breaches now.
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

/// An escalation of the commit's instance, recorded at [`Commit::at`](crate::store::Commit::at).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEscalation {
    /// Escalation id, usually [`new_id`](crate::store::new_id).
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
