//! The timer worker's side: claiming due timers under a lease, and marking one fired.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::columns::{TIMER_COLS, timer_row};
use super::{SqlStore, lease_end};
use crate::store::backend::{Backend, Stmt};
use crate::store::{StoreError, StoreResult, TenantId, TimerRow};

pub(super) async fn due_timers<DB: Backend>(
    store: &SqlStore<DB>,
    now: DateTime<Utc>,
    limit: u32,
    worker: &str,
    lease: Duration,
) -> StoreResult<Vec<TimerRow>> {
    let mut stmt = Stmt::new(
        "UPDATE crm_timers SET locked_by = $1, locked_until = $2 WHERE (tenant_id, id) IN (\
         SELECT tenant_id, id FROM crm_timers WHERE processed_at IS NULL AND trigger_at <= $3 \
         AND (locked_until IS NULL OR locked_until <= $3) ORDER BY trigger_at LIMIT $4",
    )
    .arg(worker)
    .arg(lease_end(now, lease))
    .arg(now)
    .arg(limit);
    stmt.push(DB::SKIP_LOCKED).push(concat_sql!(") RETURNING ", TIMER_COLS));
    let mut timers = store.write_rows(stmt, timer_row).await?;
    timers.sort_by(|a, b| (a.trigger_at, &a.id).cmp(&(b.trigger_at, &b.id)));
    Ok(timers)
}

pub(super) async fn mark_timer_processed<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    id: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let stmt = Stmt::new(
        "UPDATE crm_timers SET processed_at = $3, locked_until = NULL \
         WHERE tenant_id = $1 AND id = $2 AND processed_at IS NULL",
    )
    .arg(tenant.as_str())
    .arg(id)
    .arg(at);
    match store.write_one(stmt).await? {
        0 => Err(StoreError::NotFound { what: "pending timer", id: id.to_owned() }),
        _ => Ok(()),
    }
}
