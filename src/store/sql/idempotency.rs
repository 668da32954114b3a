//! Idempotency keys (`crm_idempotency`), and the hook that writes one in the same transaction as
//! the effect it guards.
//!
//! The engine builds its commits itself, so the HTTP layer cannot add a row to them. Instead it
//! runs an engine call inside [`with_idempotency`]: the first successful [`commit`](super::commit)
//! made on that task for the record's tenant inserts the record too, in its transaction. A second
//! request with the same key racing the first fails that insert (primary key), which rolls its
//! whole effect back: exactly one effect, whatever the timing.

use std::cell::RefCell;
use std::future::Future;

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::{Conn, Decoded, SqlStore};
use crate::store::backend::{Backend, Reader, Stmt};
use crate::store::{IdempotencyRecord, StoreResult, TenantId};

columns! {
    /// `crm_idempotency`.
    const IDEMPOTENCY_COLS;
    fn idempotency_row(r) -> IdempotencyRecord {
        key: "key" => r.text()?,
        fingerprint: "fingerprint" => r.text()?,
        status: "status" => r.count()?,
        instance_id: "instance_id" => r.opt_text()?,
        response: "response" => r.opt_json()?,
        created_at: "created_at" => r.time()?,
    }
}

/// A record waiting for the commit that carries it.
struct Pending {
    tenant: TenantId,
    record: IdempotencyRecord,
    written: bool,
}

tokio::task_local! {
    static PENDING: RefCell<Option<Pending>>;
}

/// Runs `work` so that the first commit it makes for `tenant` also inserts `record`, in the same
/// transaction; the output of `work`, and whether a commit carried the record.
pub async fn with_idempotency<F: Future>(
    tenant: TenantId,
    record: IdempotencyRecord,
    work: F,
) -> (F::Output, bool) {
    let pending = RefCell::new(Some(Pending { tenant, record, written: false }));
    PENDING
        .scope(pending, async move {
            let output = work.await;
            let written = PENDING.with(|p| p.borrow().as_ref().is_some_and(|p| p.written));
            (output, written)
        })
        .await
}

/// The record the current task's next commit for `tenant` must carry, if any.
pub(super) fn pending_for(tenant: &TenantId) -> Option<IdempotencyRecord> {
    PENDING
        .try_with(|p| {
            p.borrow().as_ref().filter(|p| !p.written && p.tenant == *tenant).map(|p| p.record.clone())
        })
        .ok()
        .flatten()
}

/// The current task's record is written: later commits of the same call do not repeat it.
pub(super) fn mark_written() {
    let _ = PENDING.try_with(|p| {
        if let Some(p) = p.borrow_mut().as_mut() {
            p.written = true;
        }
    });
}

/// Inserts `record` on `conn` (inside the caller's transaction), naming `instance_id` as what it
/// wrote. A key already taken is [`StoreError::Duplicate`](crate::store::StoreError::Duplicate).
pub(super) async fn insert<DB: Backend>(
    conn: &mut Conn<DB>,
    tenant: &str,
    record: &IdempotencyRecord,
    instance_id: Option<&str>,
) -> StoreResult<()> {
    let stmt = Stmt::new(
        "INSERT INTO crm_idempotency (tenant_id, key, fingerprint, status, instance_id, response, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .arg(tenant)
    .arg(&record.key)
    .arg(&record.fingerprint)
    .arg(i64::from(record.status))
    .arg(instance_id.or(record.instance_id.as_deref()))
    .arg(record.response.as_ref())
    .arg(record.created_at);
    DB::execute(conn, stmt).await?;
    Ok(())
}

pub(super) async fn insert_idempotency<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    record: &IdempotencyRecord,
) -> StoreResult<()> {
    let mut conn = store.write.acquire().await?;
    insert::<DB>(&mut conn, tenant.as_str(), record, None).await
}

pub(super) async fn idempotency<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    key: &str,
) -> StoreResult<Option<IdempotencyRecord>> {
    let stmt = Stmt::new(concat_sql!(
        "SELECT ",
        IDEMPOTENCY_COLS,
        " FROM crm_idempotency WHERE tenant_id = $1 AND key = $2"
    ))
    .arg(tenant.as_str())
    .arg(key);
    store.read_one(stmt, idempotency_row).await
}

pub(super) async fn complete_idempotency<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    key: &str,
    status: u16,
    response: &Json,
) -> StoreResult<()> {
    let stmt =
        Stmt::new("UPDATE crm_idempotency SET status = $3, response = $4 WHERE tenant_id = $1 AND key = $2")
            .arg(tenant.as_str())
            .arg(key)
            .arg(i64::from(status))
            .arg(response);
    store.write_one(stmt).await.map(drop)
}

pub(super) async fn purge_idempotency<DB: Backend>(
    store: &SqlStore<DB>,
    before: DateTime<Utc>,
) -> StoreResult<u64> {
    store.write_one(Stmt::new("DELETE FROM crm_idempotency WHERE created_at < $1").arg(before)).await
}
