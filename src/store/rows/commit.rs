//! A unit of work: everything written in one transaction.

use chrono::{DateTime, Utc};

use super::{
    ApprovalWrite, AssignmentChange, Campaign, Contact, EntityWrite, InstanceWrite, NewEscalation,
    NewHistory, NewOutbox, Opportunity, SlaWrite, TimerWrite, TokenWrite,
};

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
    pub(in crate::store) fn has_instance_parts(&self) -> bool {
        !(self.history.is_empty()
            && self.tokens.is_empty()
            && self.approvals.is_empty()
            && self.timers.is_empty()
            && self.sla.is_empty()
            && self.escalations.is_empty()
            && self.assignment.is_none())
    }
}
