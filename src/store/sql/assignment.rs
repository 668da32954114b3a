//! Assignment the engine performs: round-robin turns shared by every engine, and open workloads.

use super::SqlStore;
use crate::store::backend::{Backend, Stmt};
use crate::store::{StoreResult, TenantId};

/// Takes the next turn of `pool` and returns how many turns were taken before it (0 first).
/// One statement, so engines racing for turns each get a different one.
pub(super) async fn take_turn<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    pool: &str,
) -> StoreResult<u64> {
    let stmt = Stmt::new(
        "INSERT INTO crm_assignment_turns (tenant_id, pool, turns) VALUES ($1, $2, 1) \
         ON CONFLICT (tenant_id, pool) DO UPDATE SET turns = crm_assignment_turns.turns + 1 \
         RETURNING turns",
    )
    .arg(tenant.as_str())
    .arg(pool);
    let turns: Vec<u64> = store.write_rows(stmt, |r| r.count()).await?;
    Ok(turns.first().copied().unwrap_or(1).saturating_sub(1))
}

/// The number of active instances assigned to each of `users`, in their order.
pub(super) async fn open_assignments<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    users: &[String],
) -> StoreResult<Vec<u64>> {
    let mut counts = Vec::with_capacity(users.len());
    // One indexed count per candidate (`crm_instances_assignee_updated` leads with tenant,
    // assignee, status); candidate lists are short.
    for user in users {
        let stmt = Stmt::new(
            "SELECT COUNT(*) FROM crm_instances WHERE tenant_id = $1 AND assignee = $2 AND status = 'active'",
        )
        .arg(tenant.as_str())
        .arg(user);
        let count: Option<u64> = store.read_one(stmt, |r| r.count()).await?;
        counts.push(count.unwrap_or(0));
    }
    Ok(counts)
}
