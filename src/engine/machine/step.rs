//! What a command produces: the new state and everything the store writes with it, atomically.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::state::{InstanceState, RunId};
use crate::ir::{Definition, EntityId, StageId};

/// The outcome of a command. The store applies all of it in one transaction, or none of it.
#[derive(Clone, Debug, PartialEq)]
#[must_use = "a step does nothing until the store applies it"]
pub struct Step {
    /// The new state; its `version` is one more than the state the command read.
    pub state: InstanceState,
    /// Entries to append to the history, in order.
    pub history: Vec<HistoryEntry>,
    /// Domain events, actions and compensations to enqueue, in order.
    pub outbox: Vec<OutboxItem>,
    /// Timers to schedule or cancel, in order (a cancel may follow a schedule of the same kind).
    pub timers: Vec<TimerChange>,
    /// An assignee the engine must choose before the step is applied (see
    /// [`Machine::complete_assignment`](super::Machine::complete_assignment)).
    pub assignment: Option<AssignmentRequest>,
}

/// An assignee to choose outside the pure machine, because the choice needs what several
/// engines share (the round-robin rotation, open workloads): asked for on entering a non-terminal
/// stage of an entity with an automatic `assignment.strategy` while unassigned, and by an `assign`
/// action (the last one asked in a command wins).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssignmentRequest {
    /// Whom to choose from, in declared order.
    pub candidates: Vec<Candidate>,
    /// How to choose: round-robin or least-loaded.
    pub strategy: crate::ir::AssignmentStrategy,
    /// The rotation the choice takes a turn of: the entity's name, or `entity/action` for an
    /// `assign` action.
    pub pool: String,
    /// What asked for it, recorded with the assignment (`{"stage": …}` or `{"action": …}`).
    pub cause: Json,
    /// An `assign` action: choose someone other than the current assignee when there is anyone
    /// else (a reassignment that hands the work back to the same person does nothing).
    pub reassign: bool,
}

/// One candidate of an [`AssignmentRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Candidate {
    /// A user id.
    User(String),
    /// Every member of a role, as the engine's directory knows them.
    Role(String),
}

impl Step {
    /// The history entries recording `event`, in order.
    pub fn history_of<'s>(&'s self, event: &'s str) -> impl Iterator<Item = &'s HistoryEntry> + 's {
        self.history.iter().filter(move |h| h.event == event)
    }

    /// The names of the outbox items of `kind`, in order.
    pub fn outbox_names(&self, kind: OutboxKind) -> Vec<&str> {
        self.outbox.iter().filter(|o| o.kind == kind).map(|o| &*o.name).collect()
    }
}

/// One append-only history record.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryEntry {
    /// What happened, one of [`events`].
    pub event: &'static str,
    /// The part of the state that changed, as it was (`{"stage": …, "data": {changed fields}}`).
    pub before: Json,
    /// The same part afterwards.
    pub after: Json,
    /// Who caused it: a user id, or [`SYSTEM`](super::SYSTEM) for automatic steps.
    pub actor: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Details (transition, gateway, branch, approver, …).
    pub payload: Json,
}

/// What an outbox item asks the workers to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboxKind {
    /// Deliver a domain event (named by one of [`events`]) to subscribers.
    Event,
    /// Run a declared action.
    Action,
    /// Run a declared action that undoes an earlier one.
    Compensation,
}

/// An entry of the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxItem {
    /// What to do.
    pub kind: OutboxKind,
    /// The event name, or the action's name in the definition.
    pub name: Cow<'static, str>,
    /// For actions whose outcome matters (gateway branches, compensable groups): report it with
    /// `action_succeeded`/`action_failed` under this id. `None`: fire and forget.
    pub run: Option<RunId>,
    /// Details: for events what happened, for actions what caused them.
    pub payload: Json,
}

/// A change to the instance's timers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimerChange {
    /// Fire `timer.kind` at `timer.due` (replacing a timer of the same kind).
    Schedule(Timer),
    /// Drop the timer of this kind, if any.
    Cancel(TimerKind),
}

/// A timer with an absolute due time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timer {
    /// What it is; unique per instance.
    pub kind: TimerKind,
    /// When it is due.
    pub due: DateTime<Utc>,
}

/// What a timer does when due (through `Machine::timer_due`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimerKind {
    /// The SLA turns at risk: of the instance (`stage: None`) or of a stage.
    SlaAtRisk {
        /// The stage whose SLA it is, `None` for the entity's.
        stage: Option<StageId>,
    },
    /// The SLA is breached: its `breach_actions` run.
    SlaBreach {
        /// The stage whose SLA it is, `None` for the entity's.
        stage: Option<StageId>,
    },
    /// A reminder of the entity's `automation.reminders`.
    Reminder {
        /// Its position in the list.
        index: usize,
    },
    /// An escalation of the entity's `automation.escalation`, counted from entering `stage`.
    Escalation {
        /// Its position in the list.
        index: usize,
        /// The stage whose entry started it.
        stage: StageId,
    },
    /// Evaluate the time-dependent automatic transitions of `stage` again (every
    /// [`RECHECK_EVERY`](super::RECHECK_EVERY) while the instance waits there).
    Recheck {
        /// The stage waited in.
        stage: StageId,
    },
}

impl TimerKind {
    /// A stable text form for storage: `sla_at_risk`, `sla_breach@new`, `reminder#0`,
    /// `escalation#1@triaged`, `recheck@waiting` (stage names, not ids, so it reads well in the
    /// timers table).
    pub fn encode(self, def: &Definition) -> String {
        let at =
            |stage: Option<StageId>| stage.map(|s| format!("@{}", def.stage(s).name)).unwrap_or_default();
        match self {
            TimerKind::SlaAtRisk { stage } => format!("sla_at_risk{}", at(stage)),
            TimerKind::SlaBreach { stage } => format!("sla_breach{}", at(stage)),
            TimerKind::Reminder { index } => format!("reminder#{index}"),
            TimerKind::Escalation { index, stage } => format!("escalation#{index}{}", at(Some(stage))),
            TimerKind::Recheck { stage } => format!("recheck{}", at(Some(stage))),
        }
    }

    /// Reads [`TimerKind::encode`]'s form back for an instance of `entity`.
    pub fn decode(def: &Definition, entity: EntityId, text: &str) -> Option<TimerKind> {
        let (head, stage) = match text.split_once('@') {
            Some((head, name)) => (head, Some(def.stage_named(entity, name)?)),
            None => (text, None),
        };
        let (kind, index) = match head.split_once('#') {
            Some((kind, index)) => (kind, Some(index.parse().ok()?)),
            None => (head, None),
        };
        Some(match (kind, index, stage) {
            ("sla_at_risk", None, stage) => TimerKind::SlaAtRisk { stage },
            ("sla_breach", None, stage) => TimerKind::SlaBreach { stage },
            ("reminder", Some(index), None) => TimerKind::Reminder { index },
            ("escalation", Some(index), Some(stage)) => TimerKind::Escalation { index, stage },
            ("recheck", None, Some(stage)) => TimerKind::Recheck { stage },
            _ => return None,
        })
    }

    /// The stage the timer belongs to; leaving it cancels the timer.
    pub fn stage(self) -> Option<StageId> {
        match self {
            TimerKind::SlaAtRisk { stage } | TimerKind::SlaBreach { stage } => stage,
            TimerKind::Escalation { stage, .. } | TimerKind::Recheck { stage } => Some(stage),
            TimerKind::Reminder { .. } => None,
        }
    }
}

/// The names of history entries and domain events.
///
/// Besides these fixed names, entering a main stage emits the domain event
/// `<entity>_<stage>` (`lead_qualified`, `opportunity_closed_won`, `campaign_active`), and entering
/// a terminal stage also `<entity>_closed` (`opportunity_closed`); their payload is
/// `{"entity", "stage"}`.
pub mod events {
    /// An instance was created (history and event).
    pub const INSTANCE_CREATED: &str = "instance_created";
    /// Data was changed by `update_data` (history and event).
    pub const DATA_UPDATED: &str = "data_updated";
    /// A transition moved the instance or a branch token (history and event).
    pub const TRANSITION_COMPLETED: &str = "transition_completed";
    /// The main stage changed (event).
    pub const STAGE_ENTERED: &str = "stage_entered";
    /// A terminal stage was entered (event).
    pub const INSTANCE_COMPLETED: &str = "instance_completed";
    /// An automatic transition could not be evaluated and was skipped (history).
    pub const AUTO_TRANSITION_REFUSED: &str = "auto_transition_refused";
    /// A transition asked for approval (history and event).
    pub const APPROVAL_REQUESTED: &str = "approval_requested";
    /// An approver responded without resolving the approval (history and event).
    pub const APPROVAL_RESPONDED: &str = "approval_responded";
    /// The approval resolved as approved; a `transition_completed` follows (history and event).
    pub const APPROVAL_GRANTED: &str = "approval_granted";
    /// The approval resolved as rejected; the stage stays (history and event).
    pub const APPROVAL_REJECTED: &str = "approval_rejected";
    /// A pending approval was dropped because its transition left its stage another way (history).
    pub const APPROVAL_CANCELLED: &str = "approval_cancelled";
    /// A gateway forked into branches (history and event).
    pub const GATEWAY_FORKED: &str = "gateway_forked";
    /// Every branch completed and the instance entered the join stage (history and event).
    pub const GATEWAY_JOINED: &str = "gateway_joined";
    /// A transition left the fork stage while branches ran; they were cancelled (history and event).
    pub const GATEWAY_CANCELLED: &str = "gateway_cancelled";
    /// A branch completed (history and event).
    pub const BRANCH_COMPLETED: &str = "branch_completed";
    /// A branch's action failed; its token is cancelled (history and event).
    pub const BRANCH_FAILED: &str = "branch_failed";
    /// A tracked action succeeded (history).
    pub const ACTION_SUCCEEDED: &str = "action_succeeded";
    /// An action failed after its retries; compensations follow (history and event).
    pub const ACTION_FAILED: &str = "action_failed";
    /// The instance was assigned (history and event).
    pub const ASSIGNED: &str = "assigned";
    /// An assignment was asked for but nobody could be chosen: no candidate is known (a role
    /// without members in the directory), or delegations lead nowhere valid (history).
    pub const ASSIGNMENT_UNRESOLVED: &str = "assignment_unresolved";
    /// An SLA turned at risk (history and event).
    pub const SLA_AT_RISK: &str = "sla_at_risk";
    /// An SLA was breached (history and event).
    pub const SLA_BREACHED: &str = "sla_breached";
    /// A reminder ran (history).
    pub const REMINDER_SENT: &str = "reminder_sent";
    /// An escalation ran (history and event).
    pub const ESCALATED: &str = "escalated";
    /// An escalation was due but its condition did not hold (history).
    pub const ESCALATION_SKIPPED: &str = "escalation_skipped";
}
