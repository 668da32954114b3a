//! The outbox worker's side: claiming due items under a lease, marking them delivered or failed,
//! recording every attempt; and the operator's: listing, replaying and discarding items,
//! disabled webhook endpoints, secrets by name.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::columns::{ATTEMPT_COLS, ENDPOINT_COLS, OUTBOX_COLS, attempt_row, endpoint_row, outbox_row};
use super::{Conn, SqlStore, exactly_one, lease_end, page_size};
use crate::store::backend::{Backend, Stmt};
use crate::store::{
    AttemptOutcome, AttemptRow, DisabledEndpoint, NewAttempt, OutboxFailure, OutboxQuery, OutboxRow,
    OutboxStatus, StoreError, StoreResult, TenantId, new_id,
};

/// What [`record_attempt`] reports as not found when the claim is no longer the item's.
pub(crate) const CLAIMED_ITEM: &str = "outbox item under this claim";

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
        "UPDATE crm_outbox SET locked_by = $1, next_attempt_at = $2, claim_token = $5 WHERE (tenant_id, id) IN (\
         SELECT tenant_id, id FROM crm_outbox WHERE status = 'pending' AND next_attempt_at <= $3 \
         ORDER BY next_attempt_at LIMIT $4",
    )
    .arg(worker)
    .arg(lease_end(now, lease))
    .arg(now)
    .arg(limit)
    // A fresh token per claim: a later claim of the same item (after the lease) gets another.
    .arg(new_id());
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

pub(super) async fn record_attempt<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    id: &str,
    claim: &str,
    attempt: &NewAttempt,
) -> StoreResult<()> {
    let (status, processed_at) = match attempt.outcome {
        AttemptOutcome::Delivered => (OutboxStatus::Done, Some(attempt.finished_at)),
        AttemptOutcome::Retry => (OutboxStatus::Pending, None),
        AttemptOutcome::Dead => (OutboxStatus::Dead, Some(attempt.finished_at)),
    };
    let failed = attempt.outcome != AttemptOutcome::Delivered;
    let error: Option<String> = attempt.error.as_ref().map(|e| e.chars().take(MAX_ERROR_CHARS).collect());
    store
        .write_tx(async |conn: &mut Conn<DB>| {
            // Only under the claim that made the attempt: a worker whose lease ended, and whose
            // item was claimed again since, must not settle it behind the new holder's back.
            let settle = Stmt::new(
                "UPDATE crm_outbox SET status = $4, processed_at = $5, next_attempt_at = $6, \
                 attempts = attempts + $7, last_error = COALESCE($8, last_error), claim_token = NULL \
                 WHERE tenant_id = $1 AND id = $2 AND claim_token = $3 AND status = 'pending'",
            )
            .arg(tenant.as_str())
            .arg(id)
            .arg(claim)
            .arg(status.as_str())
            .arg(processed_at)
            .arg(attempt.next_attempt_at)
            .arg(i64::from(failed))
            .arg(error.clone());
            exactly_one::<DB>(conn, settle, CLAIMED_ITEM, id).await?;
            let record = Stmt::new(
                "INSERT INTO crm_outbox_attempts (tenant_id, id, outbox_id, attempt, worker, started_at, \
                 latency_us, outcome, http_status, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .arg(tenant.as_str())
            .arg(&attempt.id)
            .arg(id)
            .arg(attempt.attempt)
            .arg(&attempt.worker)
            .arg(attempt.started_at)
            .arg(attempt.latency_us)
            .arg(attempt.outcome.as_str())
            .arg(attempt.http_status.map(i64::from))
            .arg(error);
            DB::execute(conn, record).await?;
            Ok(())
        })
        .await
}

pub(super) async fn outbox_attempts<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    id: &str,
) -> StoreResult<Vec<AttemptRow>> {
    let stmt = Stmt::new(concat_sql!(
        "SELECT ",
        ATTEMPT_COLS,
        " FROM crm_outbox_attempts WHERE tenant_id = $1 AND outbox_id = $2 ORDER BY started_at, id"
    ))
    .arg(tenant.as_str())
    .arg(id);
    store.read_all(stmt, attempt_row).await
}

pub(super) async fn outbox_items<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    query: &OutboxQuery,
) -> StoreResult<Vec<OutboxRow>> {
    let mut stmt = Stmt::new(concat_sql!("SELECT ", OUTBOX_COLS, " FROM crm_outbox WHERE tenant_id = $1"))
        .arg(tenant.as_str());
    if let Some(status) = query.status {
        stmt.push(" AND status = ").bind(status.as_str());
    }
    if let Some(after) = &query.after {
        stmt.push(" AND id > ").bind(after.as_str());
    }
    stmt.push(" ORDER BY id LIMIT ").bind(page_size(query.limit));
    store.read_all(stmt, outbox_row).await
}

pub(super) async fn replay_outbox<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    id: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    // A fresh start: due now, with the action's whole retry budget again. Its attempts so far
    // stay on record.
    let stmt = Stmt::new(
        "UPDATE crm_outbox SET status = 'pending', next_attempt_at = $3, processed_at = NULL, attempts = 0, \
         discarded_at = NULL, claim_token = NULL, locked_by = NULL \
         WHERE tenant_id = $1 AND id = $2 AND status = 'dead'",
    )
    .arg(tenant.as_str())
    .arg(id)
    .arg(at);
    match store.write_one(stmt).await? {
        0 => Err(StoreError::NotFound { what: "dead-lettered outbox item", id: id.to_owned() }),
        _ => Ok(()),
    }
}

pub(super) async fn discard_outbox<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    id: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let stmt = Stmt::new(
        "UPDATE crm_outbox SET status = 'dead', discarded_at = $3, processed_at = COALESCE(processed_at, $3), \
         claim_token = NULL WHERE tenant_id = $1 AND id = $2 AND status IN ('pending', 'dead') \
         AND discarded_at IS NULL",
    )
    .arg(tenant.as_str())
    .arg(id)
    .arg(at);
    match store.write_one(stmt).await? {
        0 => Err(StoreError::NotFound { what: "undelivered outbox item", id: id.to_owned() }),
        _ => Ok(()),
    }
}

pub(super) async fn disable_endpoint<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    endpoint: &DisabledEndpoint,
) -> StoreResult<()> {
    // The first disabling is the one on record; a second 410 changes nothing.
    let stmt = Stmt::new(
        "INSERT INTO crm_webhook_endpoints (tenant_id, url, disabled_at, reason, outbox_id) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, url) DO NOTHING",
    )
    .arg(tenant.as_str())
    .arg(&endpoint.url)
    .arg(endpoint.disabled_at)
    .arg(&endpoint.reason)
    .arg(endpoint.outbox_id.as_ref());
    store.write_one(stmt).await?;
    Ok(())
}

pub(super) async fn enable_endpoint<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    url: &str,
) -> StoreResult<()> {
    let stmt = Stmt::new("DELETE FROM crm_webhook_endpoints WHERE tenant_id = $1 AND url = $2")
        .arg(tenant.as_str())
        .arg(url);
    match store.write_one(stmt).await? {
        0 => Err(StoreError::NotFound { what: "disabled endpoint", id: url.to_owned() }),
        _ => Ok(()),
    }
}

pub(super) async fn disabled_endpoints<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    url: Option<&str>,
) -> StoreResult<Vec<DisabledEndpoint>> {
    let mut stmt =
        Stmt::new(concat_sql!("SELECT ", ENDPOINT_COLS, " FROM crm_webhook_endpoints WHERE tenant_id = $1"))
            .arg(tenant.as_str());
    if let Some(url) = url {
        stmt.push(" AND url = ").bind(url);
    }
    stmt.push(" ORDER BY url");
    store.read_all(stmt, endpoint_row).await
}

pub(super) async fn secret<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    name: &str,
) -> StoreResult<Option<String>> {
    let stmt = Stmt::new("SELECT value FROM crm_secrets WHERE tenant_id = $1 AND name = $2")
        .arg(tenant.as_str())
        .arg(name);
    store.read_one(stmt, |r| r.text()).await
}

pub(super) async fn put_secret<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    name: &str,
    value: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let stmt = Stmt::new(
        "INSERT INTO crm_secrets (tenant_id, name, value, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .arg(tenant.as_str())
    .arg(name)
    .arg(value)
    .arg(at);
    store.write_one(stmt).await?;
    Ok(())
}
