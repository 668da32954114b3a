//! Interactions, their attachments, an instance's timeline and the report rows
//! ([`RecordStore`](crate::store::RecordStore)).

use chrono::{DateTime, Utc};

use super::{Cursor, HistoryRow};

text_enum! {
    /// What kind of interaction was logged (`crm_interactions.kind`).
    InteractionKind {
        /// A note.
        Note = "note",
        /// A phone call.
        Call = "call",
        /// A meeting.
        Meeting = "meeting",
        /// An e-mail.
        Email = "email",
    }
}

text_enum! {
    /// Where an attachment's bytes are kept (`crm_attachments.storage`).
    AttachmentStorage {
        /// A file in the configured directory.
        Directory = "directory",
        /// Chunks in `crm_attachment_chunks`.
        Database = "database",
    }
}

/// What an interaction is logged on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// An instance, by id.
    Instance(String),
    /// A contact, by id.
    Contact(String),
}

/// A logged interaction (`crm_interactions`).
#[derive(Debug, Clone, PartialEq)]
pub struct InteractionRow {
    /// Its id (UUIDv7).
    pub id: String,
    /// The instance or contact it is logged on.
    pub subject: Subject,
    /// Note, call, meeting or e-mail.
    pub kind: InteractionKind,
    /// Who logged it.
    pub author: String,
    /// When it took place (not when it was logged).
    pub occurred_at: DateTime<Utc>,
    /// What was said or written.
    pub body: String,
    /// How long it took, in seconds (calls and meetings).
    pub duration_seconds: Option<u64>,
    /// How it ended (`reached`, `voicemail`, `agreed next steps`, … free text).
    pub outcome: Option<String>,
    /// When it was logged.
    pub created_at: DateTime<Utc>,
}

/// A listing of one subject's interactions, newest first, in keyset pages.
#[derive(Debug, Clone, PartialEq)]
pub struct InteractionQuery {
    /// Whose interactions.
    pub subject: Subject,
    /// Page size (0: the default, 50; at most 500).
    pub limit: u32,
    /// Where the page starts: the previous page's `next`.
    pub after: Option<Cursor>,
}

/// An attachment's metadata (`crm_attachments`).
#[derive(Debug, Clone, PartialEq)]
pub struct AttachmentRow {
    /// Its id (UUIDv7).
    pub id: String,
    /// The interaction it belongs to.
    pub interaction_id: String,
    /// The file name the uploader gave.
    pub file_name: String,
    /// The media type sniffed from the bytes.
    pub content_type: String,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// The SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
    /// Where its bytes are.
    pub storage: AttachmentStorage,
    /// Who uploaded it.
    pub created_by: String,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

/// One entry of an instance's timeline.
#[derive(Debug, Clone, PartialEq)]
pub enum TimelineItem {
    /// An audit history entry.
    History(HistoryRow),
    /// A logged interaction.
    Interaction(InteractionRow),
}

impl TimelineItem {
    /// When it happened: the history entry's commit time, the interaction's time.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Self::History(h) => h.created_at,
            Self::Interaction(i) => i.occurred_at,
        }
    }
}

/// The page of a timeline to read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TimelineQuery {
    /// Page size (0: the default, 50; at most 500).
    pub limit: u32,
    /// Where the page starts: the previous page's `next`.
    pub after: Option<Cursor>,
}

/// What every report reads: a time window and which instances.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportFilter {
    /// Start of the window (inclusive).
    pub from: DateTime<Utc>,
    /// End of the window (exclusive).
    pub to: DateTime<Utc>,
    /// Only instances of this definition.
    pub definition: Option<String>,
    /// Only instances of this entity.
    pub entity: Option<String>,
    /// Stages that count as closed won.
    pub won: Vec<String>,
    /// Stages that count as closed lost.
    pub lost: Vec<String>,
}

/// The funnel's row of one stage: visits that began in the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunnelRow {
    /// The stage.
    pub stage: String,
    /// Visits that entered it.
    pub entered: u64,
    /// Of those, how many moved on to another stage.
    pub moved_on: u64,
    /// Of those visits, how many belong to instances that closed won.
    pub won: u64,
    /// … and closed lost.
    pub lost: u64,
}

/// Moves in the window by the user the instance was assigned to when it moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// The assignee; `None` for unassigned instances.
    pub user: Option<String>,
    /// Stage moves.
    pub moved_on: u64,
    /// Moves into a won stage.
    pub won: u64,
    /// Moves into a lost stage.
    pub lost: u64,
}

/// One period's counts: instances started, stage moves, wins and losses within it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodCounts {
    /// Instances created.
    pub started: u64,
    /// Stage moves.
    pub moved_on: u64,
    /// Moves into a won stage.
    pub won: u64,
    /// Moves into a lost stage.
    pub lost: u64,
}

/// Time spent in one stage by visits that left it in the window (nearest-rank percentiles).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageTimeRow {
    /// The stage.
    pub stage: String,
    /// Completed visits.
    pub visits: u64,
    /// Median, in microseconds.
    pub median_us: i64,
    /// 90th percentile, in microseconds.
    pub p90_us: i64,
}

/// SLA clocks started in the window, by scope (a stage's or an entity's name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaReportRow {
    /// The SLA's scope.
    pub scope: String,
    /// Stopped before their deadline.
    pub met: u64,
    /// Breached.
    pub breached: u64,
    /// Still running (on track or at risk).
    pub open: u64,
}
