//! Row and value types: what the store reads and writes, independent of the IR.
//!
//! Names (stages, transitions, gateways) are plain text and data is JSON; the engine's glue maps
//! its typed state to these rows and back. A type that is the stored form of an engine type of
//! the same name is called `Stored…` (`StoredInstanceState`, `StoredTokenStatus`, …).
//!
//! - [`instance`]: the instance row, its action runs and history, how a commit writes it, and
//!   [`StoredInstanceState`], everything read back in one statement.
//! - [`parts`]: the instance-scoped parts: tokens, approvals, assignments, timers, SLA clocks,
//!   escalations.
//! - [`outbox`]: events and actions to deliver. [`entities`]: contacts, opportunities, campaigns.
//! - [`commit`]: [`Commit`], one transaction. [`definition`]: deployed definitions.
//! - [`dashboard`]: delegations and the dashboard query.
//! - [`api`]: the HTTP API's tokens, idempotency keys and instance listing.

use std::fmt;

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

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

mod api;
mod commit;
mod dashboard;
mod definition;
mod entities;
mod instance;
mod outbox;
mod parts;
mod records;

pub use api::{ApiTokenRow, IdempotencyRecord, InstanceQuery};
pub use commit::Commit;
pub use dashboard::{
    Cursor, DELEGATION_DEPTH_BOUND, DelegationRow, Direction, Page, PendingItem, PendingQuery, PendingReason,
    SortKey,
};
pub use definition::{DefinitionRow, DeployedVersion, LiveInstance, canonical_checksum, source_checksum};
pub use entities::{Campaign, Contact, EntityQuery, EntityWrite, Opportunity, Stored};
pub use instance::{Committed, NumberRequest};
pub use instance::{
    HistoryRow, InstanceRow, InstanceUpdate, InstanceWrite, NewHistory, NewInstance, RunRow,
    StoredInstanceState, StoredInstanceStatus, StoredRunStatus,
};
pub use outbox::{
    AttemptOutcome, AttemptRow, DisabledEndpoint, NewAttempt, NewOutbox, OutboxFailure, OutboxQuery,
    OutboxRow, OutboxStatus, QueueStats, StoredOutboxKind,
};
pub use parts::{
    ApprovalRequestRow, ApprovalRow, ApprovalWrite, AssignmentChange, AssignmentRow, EscalationRow,
    NewEscalation, RequestStatus, SlaRow, SlaStatus, SlaWrite, StoredDecision, StoredPendingApproval,
    StoredTokenStatus, TimerRow, TimerWrite, TokenRow, TokenWrite,
};
pub use records::{
    AttachmentRow, AttachmentStorage, FunnelRow, InteractionKind, InteractionQuery, InteractionRow,
    PeriodCounts, ReportFilter, SlaReportRow, StageTimeRow, Subject, TimelineItem, TimelineQuery, UserRow,
};
