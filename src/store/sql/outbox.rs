//! The outbox worker's side: claiming due items under a lease, marking them delivered or failed.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::columns::{OUTBOX_COLS, outbox_row};
use super::{SqlStore, lease_end};
use crate::store::backend::{Backend, Stmt};
use crate::store::{OutboxFailure, OutboxRow, OutboxStatus, StoreError, StoreResult, TenantId};

/// `last_error` keeps this many characters of an outbox failure.
const MAX_ERROR_CHARS: usize = 2000;

pub(super) async fn claim_outbox<DB: Backend>(
    store: &SqlStore<DB>,
    now: DateTime<Utc>,
    limit: u32,
    worker: &str,
    lease: Duration,
) -> StoreResult<Vec<OutboxRow>> {
    let mut stmt = Stmt::new(
        "UPDATE crm_outbox SET locked_by = $1, next_attempt_at = $2 WHERE (tenant_id, id) IN (\
         SELECT tenant_id, id FROM crm_outbox WHERE status = 'pending' AND next_attempt_at <= $3 \
         ORDER BY next_attempt_at LIMIT $4",
    )
    .arg(worker)
    .arg(lease_end(now, lease))
    .arg(now)
    .arg(limit);
    stmt.push(DB::SKIP_LOCKED).push(concat_sql!(") RETURNING ", OUTBOX_COLS));
    let mut items = store.write_rows(stmt, outbox_row).await?;
    items.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(items)
}

pub(super) async fn outbox_done<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    id: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let stmt = Stmt::new(
        "UPDATE crm_outbox SET status = 'done', processed_at = $3 \
         WHERE tenant_id = $1 AND id = $2 AND status = 'pending'",
    )
    .arg(tenant.as_str())
    .arg(id)
    .arg(at);
    match store.write_one(stmt).await? {
        0 => Err(StoreError::NotFound { what: "pending outbox item", id: id.to_owned() }),
        _ => Ok(()),
    }
}

pub(super) async fn outbox_failed<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    id: &str,
    at: DateTime<Utc>,
    failure: &OutboxFailure,
) -> StoreResult<()> {
    let (status, processed_at) =
        if failure.dead { (OutboxStatus::Dead, Some(at)) } else { (OutboxStatus::Pending, None) };
    let error: String = failure.error.chars().take(MAX_ERROR_CHARS).collect();
    let stmt = Stmt::new(
        "UPDATE crm_outbox SET attempts = attempts + 1, last_error = $3, next_attempt_at = $4, status = $5, \
         processed_at = $6 WHERE tenant_id = $1 AND id = $2 AND status = 'pending'",
    )
    .arg(tenant.as_str())
    .arg(id)
    .arg(error)
    .arg(failure.next_attempt_at)
    .arg(status.as_str())
    .arg(processed_at);
    match store.write_one(stmt).await? {
        0 => Err(StoreError::NotFound { what: "pending outbox item", id: id.to_owned() }),
        _ => Ok(()),
    }
}

pub(super) async fn outbox_item<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    id: &str,
) -> StoreResult<Option<OutboxRow>> {
    let stmt =
        Stmt::new(concat_sql!("SELECT ", OUTBOX_COLS, " FROM crm_outbox WHERE tenant_id = $1 AND id = $2"))
            .arg(tenant.as_str())
            .arg(id);
    store.read_one(stmt, outbox_row).await
}
