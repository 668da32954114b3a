//! The commit writer: one [`Commit`] in one transaction, the instance first under its optimistic
//! lock, then its parts (see [`parts`](super::parts)) and the domain entities, with the history
//! and outbox rows sent last as one batch.

use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};

use super::entities::{write_campaign, write_contact, write_opportunity};
use super::parts::{
    ROWS_PER_INSERT, Scope, write_approval, write_assignment, write_escalation, write_sla, write_timer,
    write_tokens,
};
use super::{Conn, SqlStore, fetch, idempotency};
use crate::store::backend::{Backend, Stmt, micros};
use crate::store::{
    ApprovalWrite, Commit, Committed, InstanceUpdate, InstanceWrite, NewHistory, NewInstance, NumberRequest,
    RequestStatus, RunRow, StoreError, StoreResult, StoredInstanceStatus, TenantId,
};

pub(super) async fn commit<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    commit: Commit,
) -> StoreResult<Committed> {
    if commit.instance.is_none() && commit.has_instance_parts() {
        return Err(StoreError::Invalid { reason: "instance-scoped writes without an instance write" });
    }
    if commit
        .approvals
        .iter()
        .any(|a| matches!(a, ApprovalWrite::Resolve { status: RequestStatus::Pending, .. }))
    {
        return Err(StoreError::Invalid { reason: "an approval request cannot be resolved as pending" });
    }
    // An idempotency key the caller asked to record with this effect (see `idempotency`).
    let key = idempotency::pending_for(tenant);
    let committed = store
        .write_tx(async |conn: &mut Conn<DB>| {
            let committed = apply::<DB>(conn, tenant.as_str(), &commit).await?;
            if let Some(key) = &key {
                let instance_id = commit.instance.as_ref().map(InstanceWrite::id);
                idempotency::insert::<DB>(conn, tenant.as_str(), key, instance_id).await?;
            }
            Ok(committed)
        })
        .await?;
    if key.is_some() {
        idempotency::mark_written();
    }
    Ok(committed)
}

/// Writes every part of `commit` in the current transaction: the instance first (the other rows
/// reference it, and its version check must fail before anything else can), then the rest.
async fn apply<DB: Backend>(conn: &mut Conn<DB>, tenant: &str, commit: &Commit) -> StoreResult<Committed> {
    let at = micros(commit.at);
    let instance_id = commit.instance.as_ref().map(InstanceWrite::id);
    // History and outbox rows depend on nothing else in the commit and only fail by raising, so
    // they travel together in one call (see `batch`).
    let mut appends = append_stmts(tenant, instance_id, at, commit);
    let mut number = None;
    let version = match &commit.instance {
        Some(InstanceWrite::Insert(new)) => {
            number = insert_instance::<DB>(conn, tenant, new, at).await?;
            1
        }
        Some(InstanceWrite::Update(update)) if DB::MULTI_STATEMENT => {
            // SQLite: the versioned UPDATE rides in the same call as the inserts. Each insert runs
            // only if the statement before it changed rows (`changes()` is the count of the last
            // completed statement), so an UPDATE that matched no row writes nothing at all and
            // leaves the count short; the conflict is then read as on its own.
            let rows = 1 + commit.history.len() + commit.outbox.len();
            let mut stmts = vec![update_stmt(tenant, update, at)];
            for mut stmt in appends.drain(..) {
                stmt.push(" WHERE changes() > 0");
                stmts.push(stmt);
            }
            let changed = match batch::<DB>(stmts) {
                Some(stmt) => DB::execute(conn, stmt).await?,
                None => 0,
            };
            if usize::try_from(changed).map_or(true, |changed| changed < rows) {
                return Err(stale::<DB>(conn, tenant, update).await);
            }
            update.expected_version + 1
        }
        Some(InstanceWrite::Update(update)) => {
            // The version check and the write are one statement, so no other writer can slip
            // between them; a concurrent writer waits for the row lock, then sees the new version.
            if DB::execute(conn, update_stmt(tenant, update, at)).await? != 1 {
                return Err(stale::<DB>(conn, tenant, update).await);
            }
            update.expected_version + 1
        }
        Some(InstanceWrite::Unchanged { id, expected_version }) => {
            // Locks the row (PostgreSQL) and checks the version without making a new one.
            let check = Stmt::new(
                "UPDATE crm_instances SET version = version WHERE tenant_id = $1 AND id = $2 AND version = $3",
            )
            .arg(tenant)
            .arg(id)
            .arg(*expected_version);
            if DB::execute(conn, check).await? != 1 {
                return Err(stale_version::<DB>(conn, tenant, id, *expected_version).await);
            }
            *expected_version
        }
        None => 0,
    };
    for write in &commit.contacts {
        write_contact::<DB>(conn, tenant, write, at).await?;
    }
    for write in &commit.opportunities {
        write_opportunity::<DB>(conn, tenant, write, at).await?;
    }
    for write in &commit.campaigns {
        write_campaign::<DB>(conn, tenant, write, at).await?;
    }
    if let Some(instance_id) = instance_id {
        let scope = Scope::new(tenant, instance_id, at);
        write_tokens::<DB>(conn, &scope, &commit.tokens).await?;
        for write in &commit.approvals {
            write_approval::<DB>(conn, &scope, write).await?;
        }
        for write in &commit.timers {
            write_timer::<DB>(conn, &scope, write).await?;
        }
        for write in &commit.sla {
            write_sla::<DB>(conn, &scope, write).await?;
        }
        for new in &commit.escalations {
            write_escalation::<DB>(conn, &scope, new).await?;
        }
        if let Some(change) = &commit.assignment {
            write_assignment::<DB>(conn, &scope, change).await?;
        }
    }
    if !DB::MULTI_STATEMENT {
        // The parts of a PostgreSQL batch share one snapshot, and each history statement numbers
        // after the one before it: all but the last run first, on their own.
        let before_last = commit.history.len().div_ceil(ROWS_PER_INSERT).saturating_sub(1);
        for stmt in appends.drain(..before_last.min(appends.len())) {
            DB::execute(conn, stmt).await?;
        }
    }
    if let Some(stmt) = batch::<DB>(appends) {
        DB::execute(conn, stmt).await?;
    }
    Ok(Committed { version, number })
}

/// The history and outbox inserts of `commit`, in order. Each is an `INSERT … SELECT … FROM … AS v`
/// without a `WHERE`, so a condition can be appended, and inserts exactly the rows it lists.
fn append_stmts(tenant: &str, instance_id: Option<&str>, at: DateTime<Utc>, commit: &Commit) -> Vec<Stmt> {
    let mut stmts = Vec::new();
    if let Some(instance) = instance_id {
        history_inserts(&Scope::new(tenant, instance, at), &commit.history, &mut stmts);
    }
    for chunk in commit.outbox.chunks(ROWS_PER_INSERT) {
        let mut stmt = Stmt::new(
            "INSERT INTO crm_outbox (tenant_id, instance_id, next_attempt_at, created_at, status, attempts, id, \
             kind, name, payload) SELECT $1, $2, $3, $3, 'pending', 0, v.column1, v.column2, v.column3, v.column4 \
             FROM (VALUES ",
        )
        .arg(tenant)
        .arg(instance_id)
        .arg(at);
        for (n, item) in chunk.iter().enumerate() {
            stmt.push(if n == 0 { "(" } else { ", (" }).bind(&item.id).push(", ").bind(item.kind.as_str());
            stmt.push(", ").bind(&item.name).push(", ").bind(&item.payload).push(")");
        }
        stmt.push(") AS v");
        stmts.push(stmt);
    }
    stmts
}

async fn insert_instance<DB: Backend>(
    conn: &mut Conn<DB>,
    tenant: &str,
    new: &NewInstance,
    at: DateTime<Utc>,
) -> StoreResult<Option<String>> {
    let number = match &new.number {
        Some(request) => Some(next_number::<DB>(conn, tenant, request).await?),
        None => None,
    };
    let completed = new.status == StoredInstanceStatus::Completed;
    let stmt = Stmt::new(
        "INSERT INTO crm_instances (tenant_id, id, definition_id, definition_version, entity, subject_type, \
         subject_id, state, status, data, assignee, version, stage_entered_at, started_at, updated_at, ended_at, \
         runs, number) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, $12, $12, $13, $14, $15)",
    )
    .arg(tenant)
    .arg(&new.id)
    .arg(&new.definition_id)
    .arg(new.definition_version)
    .arg(&new.entity)
    .arg(new.subject_type.as_ref())
    .arg(new.subject_id.as_ref())
    .arg(&new.stage)
    .arg(new.status.as_str())
    .arg(&new.data)
    .arg(new.assignee.as_ref())
    .arg(at)
    .arg(completed.then_some(at))
    .arg(runs_json(&new.runs))
    .arg(number.as_ref());
    DB::execute(conn, stmt).await?;
    Ok(number)
}

/// Takes the next value of the request's counter and renders the number. The counter row is
/// written by the creating transaction (and locked by it on PostgreSQL until it ends), so
/// concurrent creations queue on it and a rollback gives its value back: no gaps, no duplicates.
async fn next_number<DB: Backend>(
    conn: &mut Conn<DB>,
    tenant: &str,
    request: &NumberRequest,
) -> StoreResult<String> {
    let stmt = Stmt::new(
        "INSERT INTO crm_counters (tenant_id, pattern, period, value) VALUES ($1, $2, $3, 1) \
         ON CONFLICT (tenant_id, pattern, period) DO UPDATE SET value = crm_counters.value + 1 RETURNING value",
    )
    .arg(tenant)
    .arg(&request.pattern)
    .arg(&request.period);
    let value = fetch::<DB, _>(conn, stmt, |r| r.count::<u64>()).await?.pop();
    let value = value.ok_or(StoreError::Invalid { reason: "the counter upsert returned no value" })?;
    Ok(request.render(value))
}

/// The instance update under its optimistic lock: it changes a row only at `expected_version`.
fn update_stmt(tenant: &str, update: &InstanceUpdate, at: DateTime<Utc>) -> Stmt {
    Stmt::new(
        "UPDATE crm_instances SET state = $4, status = $5, data = $6, assignee = $7, stage_entered_at = $8, \
         ended_at = $9, updated_at = $10, runs = $11, version = version + 1 \
         WHERE tenant_id = $1 AND id = $2 AND version = $3",
    )
    .arg(tenant)
    .arg(&update.id)
    .arg(update.expected_version)
    .arg(&update.stage)
    .arg(update.status.as_str())
    .arg(&update.data)
    .arg(update.assignee.as_ref())
    .arg(update.stage_entered_at)
    .arg(update.ended_at)
    .arg(at)
    .arg(runs_json(&update.runs))
}

/// `crm_instances.runs`: the same keys `load::run` reads.
fn runs_json(runs: &[RunRow]) -> Json {
    Json::Array(
        runs.iter()
            .map(|r| {
                json!({"id": r.id, "group": r.group, "action": r.action, "gateway": r.gateway,
                       "branch": r.branch, "status": r.status.as_str()})
            })
            .collect(),
    )
}

/// Why `update` matched no row: the version moved on, or there is no such instance.
async fn stale<DB: Backend>(conn: &mut Conn<DB>, tenant: &str, update: &InstanceUpdate) -> StoreError {
    stale_version::<DB>(conn, tenant, &update.id, update.expected_version).await
}

/// Why instance `id` was not at `expected`: a conflict with its actual version, or not found.
async fn stale_version<DB: Backend>(
    conn: &mut Conn<DB>,
    tenant: &str,
    id: &str,
    expected: u64,
) -> StoreError {
    let actual = fetch::<DB, _>(
        conn,
        Stmt::new("SELECT version FROM crm_instances WHERE tenant_id = $1 AND id = $2").arg(tenant).arg(id),
        |r| r.count::<u64>(),
    )
    .await;
    match actual.map(|mut rows| rows.pop()) {
        Ok(Some(actual)) => StoreError::Conflict { id: id.to_owned(), expected, actual },
        Ok(None) => StoreError::NotFound { what: "instance", id: id.to_owned() },
        Err(error) => error,
    }
}

/// The statements appending `entries` in order, numbered after the instance's last entry, one
/// per [`ROWS_PER_INSERT`] entries.
fn history_inserts(scope: &Scope<'_>, entries: &[NewHistory], out: &mut Vec<Stmt>) {
    // Numbering is safe without a lock of its own: the instance row written first is locked
    // (PostgreSQL) or the whole database is (SQLite) until this transaction ends. `VALUES`
    // columns are `column1`, `column2`, … on both databases. Each statement numbers after what
    // the previous ones wrote (see `apply` for PostgreSQL batches).
    for chunk in entries.chunks(ROWS_PER_INSERT) {
        let mut stmt = scope.stamped(
            "INSERT INTO crm_history (tenant_id, instance_id, created_at, seq, event, before, after, actor_id, \
             payload) SELECT $1, $2, $3, m.base + v.column1, v.column2, v.column3, v.column4, v.column5, v.column6 \
             FROM (SELECT COALESCE(MAX(seq), 0) AS base FROM crm_history WHERE tenant_id = $1 AND instance_id = $2) \
             AS m CROSS JOIN (VALUES ",
        );
        for (n, entry) in chunk.iter().enumerate() {
            stmt.push(if n == 0 { "(" } else { ", (" }).bind(n as i64 + 1).push(", ").bind(&entry.event);
            stmt.push(", ").bind(entry.before.as_ref()).push(", ").bind(entry.after.as_ref());
            stmt.push(", ").bind(entry.actor_id.as_ref()).push(", ").bind(entry.payload.as_ref()).push(")");
        }
        stmt.push(") AS v");
        out.push(stmt);
    }
}

/// Statements that only insert, as one round trip: SQLite runs `;`-separated statements in one
/// call; PostgreSQL runs all but the last as data-modifying `WITH` parts of the last. Parameters
/// are renumbered to follow on from one statement to the next.
fn batch<DB: Backend>(stmts: Vec<Stmt>) -> Option<Stmt> {
    if stmts.len() <= 1 {
        return stmts.into_iter().next();
    }
    let last = stmts.len() - 1;
    let mut sql = String::new();
    let mut args = Vec::new();
    for (i, stmt) in stmts.into_iter().enumerate() {
        if DB::MULTI_STATEMENT {
            if i > 0 {
                sql.push_str("; ");
            }
        } else if i == 0 {
            sql.push_str("WITH b0 AS (");
        } else if i < last {
            sql.push_str("), b");
            sql.push_str(&i.to_string());
            sql.push_str(" AS (");
        } else {
            sql.push_str(") ");
        }
        renumber(&stmt.sql, args.len(), &mut sql);
        args.extend(stmt.args);
    }
    Some(Stmt { sql: sql.into(), args })
}

/// Appends `sql` with every `$n` made `$(n + offset)`. Our statements have no `$` elsewhere.
fn renumber(sql: &str, offset: usize, out: &mut String) {
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
}
