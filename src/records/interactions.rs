//! Interactions logged on an instance or a contact, and an instance's timeline.

use chrono::{DateTime, Utc};

use super::{RecordsError, RecordsResult, invalid};
use crate::store::{
    InteractionKind, InteractionQuery, InteractionRow, Page, RecordStore, Subject, TenantId, TimelineItem,
    TimelineQuery, new_id,
};

/// The longest body kept (characters): a long e-mail thread, not a document (attach those).
pub const MAX_BODY_CHARS: usize = 100_000;
/// The longest author, outcome and file name (characters).
pub const MAX_SHORT_CHARS: usize = 255;
/// The longest duration: a week, in seconds; anything longer is a typo.
pub const MAX_DURATION_SECONDS: u64 = 7 * 24 * 3600;

/// An interaction to log.
#[derive(Debug, Clone, PartialEq)]
pub struct NewInteraction {
    /// The instance or contact it is logged on.
    pub subject: Subject,
    /// Note, call, meeting or e-mail.
    pub kind: InteractionKind,
    /// Who logged it.
    pub author: String,
    /// When it took place; `None` for now.
    pub occurred_at: Option<DateTime<Utc>>,
    /// What was said or written.
    pub body: String,
    /// How long it took, in seconds.
    pub duration_seconds: Option<u64>,
    /// How it ended.
    pub outcome: Option<String>,
}

/// Checks that `text` is not blank and at most `max` characters long.
pub(super) fn bounded(what: &str, text: &str, max: usize) -> RecordsResult<()> {
    if text.trim().is_empty() {
        return Err(invalid(format!("{what} must not be empty")));
    }
    if text.chars().count() > max {
        return Err(invalid(format!("{what} is longer than {max} characters")));
    }
    Ok(())
}

/// Fails unless the subject exists for the tenant.
async fn check_subject<S: RecordStore>(store: &S, tenant: &TenantId, subject: &Subject) -> RecordsResult<()> {
    match subject {
        Subject::Instance(id) => match store.load_instance(tenant, id).await? {
            Some(_) => Ok(()),
            None => Err(RecordsError::UnknownInstance { id: id.clone() }),
        },
        Subject::Contact(id) => match store.contact(tenant, id).await? {
            Some(_) => Ok(()),
            None => Err(RecordsError::UnknownContact { id: id.clone() }),
        },
    }
}

/// Logs an interaction at `now` (its time defaults to `now`); the stored row.
pub async fn add_interaction<S: RecordStore>(
    store: &S,
    tenant: &TenantId,
    new: NewInteraction,
    now: DateTime<Utc>,
) -> RecordsResult<InteractionRow> {
    bounded("the author", &new.author, MAX_SHORT_CHARS)?;
    bounded("the body", &new.body, MAX_BODY_CHARS)?;
    if let Some(outcome) = &new.outcome {
        bounded("the outcome", outcome, MAX_SHORT_CHARS)?;
    }
    if new.duration_seconds.is_some_and(|d| d > MAX_DURATION_SECONDS) {
        return Err(invalid(format!("the duration is longer than {MAX_DURATION_SECONDS} seconds (a week)")));
    }
    check_subject(store, tenant, &new.subject).await?;
    let row = InteractionRow {
        id: new_id(),
        subject: new.subject,
        kind: new.kind,
        author: new.author,
        occurred_at: new.occurred_at.unwrap_or(now),
        body: new.body,
        duration_seconds: new.duration_seconds,
        outcome: new.outcome,
        created_at: now,
    };
    store.insert_interaction(tenant, &row).await?;
    // Read back: the store keeps microseconds, so the caller sees what a later read returns.
    Ok(store.interaction(tenant, &row.id).await?.unwrap_or(row))
}

/// A subject's interactions, newest first, in keyset pages; an unknown subject is an error
/// rather than an empty page.
pub async fn interactions<S: RecordStore>(
    store: &S,
    tenant: &TenantId,
    query: &InteractionQuery,
) -> RecordsResult<Page<InteractionRow>> {
    check_subject(store, tenant, &query.subject).await?;
    Ok(store.interactions(tenant, query).await?)
}

/// An instance's history and interactions together, newest first, in keyset pages.
pub async fn timeline<S: RecordStore>(
    store: &S,
    tenant: &TenantId,
    instance_id: &str,
    query: &TimelineQuery,
) -> RecordsResult<Page<TimelineItem>> {
    check_subject(store, tenant, &Subject::Instance(instance_id.to_owned())).await?;
    Ok(store.timeline(tenant, instance_id, query).await?)
}
