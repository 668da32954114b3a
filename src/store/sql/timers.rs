//! The timer worker's side: claiming due timers under a lease, and marking one fired.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::columns::{TIMER_COLS, timer_row};
use super::{SqlStore, lease_end};
use crate::store::backend::{Backend, Stmt};
use crate::store::{QueueStats, StoreError, StoreResult, TenantId, TimerRow};

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

/// Due timers and outbox depth across all tenants, in one round trip on a reader. Counts only:
/// no tenant's data leaves, and each part is answered from an index (`crm_timers_due`,
/// `crm_outbox_due`).
pub(super) async fn queue_stats<DB: Backend>(
    store: &SqlStore<DB>,
    now: DateTime<Utc>,
) -> StoreResult<QueueStats> {
    let stmt = Stmt::new(
        "SELECT \
         (SELECT CAST(COUNT(*) AS BIGINT) FROM crm_timers WHERE processed_at IS NULL AND trigger_at <= $1), \
         (SELECT MIN(trigger_at) FROM crm_timers WHERE processed_at IS NULL AND trigger_at <= $1), \
         (SELECT CAST(COUNT(*) AS BIGINT) FROM crm_outbox WHERE status = 'pending'), \
         (SELECT MIN(next_attempt_at) FROM crm_outbox WHERE status = 'pending' AND next_attempt_at <= $1), \
         (SELECT CAST(COUNT(*) AS BIGINT) FROM crm_outbox WHERE status = 'dead')",
    )
    .arg(now);
    let stats = store
        .read_one(stmt, |r| {
            Ok(QueueStats {
                timers_due: r.count()?,
                oldest_timer_due_at: r.opt_time()?,
                outbox_pending: r.count()?,
                oldest_outbox_due_at: r.opt_time()?,
                outbox_dead: r.count()?,
            })
        })
        .await?;
    Ok(stats.unwrap_or_default())
}
