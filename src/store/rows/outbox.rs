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
    /// The token of the claim that holds it (a fresh one per claim); only that claim may record
    /// its outcome.
    pub claim: Option<String>,
    /// When an operator discarded it (status `dead`, never delivered).
    pub discarded_at: Option<DateTime<Utc>>,
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

text_enum! {
    /// What became of one delivery attempt (`crm_outbox_attempts.outcome`).
    AttemptOutcome {
        /// Delivered: the item is done.
        Delivered = "delivered",
        /// Failed; the item is tried again later.
        Retry = "retry",
        /// Failed for good (retries exhausted, or a failure no retry can fix): dead-lettered.
        Dead = "dead",
    }
}

/// One delivery attempt to record with its consequence ([`Store::record_attempt`](crate::store::Store::record_attempt)).
#[derive(Debug, Clone, PartialEq)]
pub struct NewAttempt {
    /// Attempt id, usually [`new_id`](crate::store::new_id).
    pub id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The worker that made it.
    pub worker: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took, in microseconds.
    pub latency_us: u64,
    /// What became of it.
    pub outcome: AttemptOutcome,
    /// The receiver's HTTP status, when there was an HTTP response.
    pub http_status: Option<u16>,
    /// Why it failed (shortened when stored); never a secret.
    pub error: Option<String>,
    /// For [`AttemptOutcome::Retry`]: when to try again.
    pub next_attempt_at: DateTime<Utc>,
    /// When it ended (the item's `processed_at` when delivered or dead).
    pub finished_at: DateTime<Utc>,
}

/// A recorded delivery attempt (`crm_outbox_attempts`).
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRow {
    /// Attempt id.
    pub id: String,
    /// The outbox item.
    pub outbox_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The worker that made it.
    pub worker: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took, in microseconds.
    pub latency_us: u64,
    /// What became of it.
    pub outcome: AttemptOutcome,
    /// The receiver's HTTP status, if any.
    pub http_status: Option<u16>,
    /// Why it failed.
    pub error: Option<String>,
}

/// Which outbox items [`Store::outbox_items`](crate::store::Store::outbox_items) lists: by id,
/// after `after` (keyset pagination), at most `limit` (0: the default page).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxQuery {
    /// Only items in this state (`None`: all).
    pub status: Option<OutboxStatus>,
    /// Only items whose id sorts after this one.
    pub after: Option<String>,
    /// Page size.
    pub limit: u32,
}

/// A webhook endpoint that stopped accepting deliveries (it answered 410 Gone).
#[derive(Debug, Clone, PartialEq)]
pub struct DisabledEndpoint {
    /// The endpoint's URL, as the definition names it.
    pub url: String,
    /// When it was disabled.
    pub disabled_at: DateTime<Utc>,
    /// Why (e.g. "410 Gone").
    pub reason: String,
    /// The outbox item whose delivery found out.
    pub outbox_id: Option<String>,
}

/// How far behind the workers are, across all tenants: what `/metrics` reports to operators.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Timers due now and not yet fired.
    pub timers_due: u64,
    /// When the oldest of them fell due (`None`: none is due).
    pub oldest_timer_due_at: Option<DateTime<Utc>>,
    /// Outbox items waiting for delivery (due now or retrying later).
    pub outbox_pending: u64,
    /// When the longest-waiting item that is due now fell due (`None`: none is due).
    pub oldest_outbox_due_at: Option<DateTime<Utc>>,
    /// Dead-lettered items an operator has not replayed.
    pub outbox_dead: u64,
}
