//! The outbox: events and actions a commit enqueues for the workers to deliver.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::TenantId;

text_enum! {
    /// What an outbox item asks a worker to do (the engine's `OutboxKind` as stored).
    StoredOutboxKind {
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
    pub kind: StoredOutboxKind,
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

/// An outbox item to enqueue, due at [`Commit::at`](crate::store::Commit::at), tied to the
/// commit's instance if it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOutbox {
    /// Item id, usually [`new_id`](crate::store::new_id).
    pub id: String,
    /// Event, action or compensation.
    pub kind: StoredOutboxKind,
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
