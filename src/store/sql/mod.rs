//! The store, written once for both databases (see [`Backend`] for what differs).
//!
//! Statements use `$n` parameters, which SQLite accepts too. SQL text is always literal or
//! assembled from literal fragments; values are always bound.
//!
//! This file holds [`SqlStore`], its connection helpers and the [`Store`] implementation, each
//! method a call into the module that does the work:
//!
//! - [`columns`]: the column lists and their row readers, declared together ([`columns!`]).
//! - [`definitions`]: deploying and reading definitions.
//! - [`load`]: an instance, its whole state in one statement, its history and escalations.
//! - [`commit`]: the commit writer (one transaction); [`parts`]: its instance-scoped parts
//!   (tokens, approvals, timers, SLA, escalations, assignment).
//! - [`entities`]: contacts, opportunities and campaigns.
//! - [`dashboard`]: delegations and the dashboard query.
//! - [`timers`] and [`outbox`]: what the workers claim and mark.
//! - [`instances`]: the instance listing; [`tokens`] and [`idempotency`]: the HTTP API's rows.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::{Pool, Transaction};

use super::backend::{Backend, Reader, Stmt};
use super::{
    ApiTokenRow, AttemptRow, Campaign, Commit, Committed, Contact, DefinitionRow, DelegationRow,
    DeployedVersion, DisabledEndpoint, EntityQuery, EscalationRow, HistoryRow, IdempotencyRecord,
    InstanceQuery, InstanceRow, LiveInstance, NewAttempt, Opportunity, OutboxFailure, OutboxQuery, OutboxRow,
    Page, PendingItem, PendingQuery, QueueStats, Store, StoreError, StoreResult, Stored, StoredInstanceState,
    TenantId, TimerRow,
};

/// A store on database `DB`: [`SqliteStore`](super::SqliteStore) or [`PgStore`](super::PgStore).
pub struct SqlStore<DB: Backend> {
    /// Connections for reads.
    read: Pool<DB>,
    /// Connections for write transactions (one on SQLite, the same pool on PostgreSQL).
    write: Pool<DB>,
}

impl<DB: Backend> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        Self { read: self.read.clone(), write: self.write.clone() }
    }
}

impl<DB: Backend> std::fmt::Debug for SqlStore<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore").finish_non_exhaustive()
    }
}

type Conn<DB> = <DB as sqlx::Database>::Connection;

/// Pastes literal SQL fragments (including `const` column lists) into one `&'static str`.
macro_rules! concat_sql {
    ($($part:expr),+ $(,)?) => {{
        const PARTS: &[&str] = &[$($part),+];
        const LEN: usize = {
            let mut len = 0;
            let mut i = 0;
            while i < PARTS.len() {
                len += PARTS[i].len();
                i += 1;
            }
            len
        };
        const BYTES: [u8; LEN] = {
            let mut out = [0u8; LEN];
            let mut at = 0;
            let mut i = 0;
            while i < PARTS.len() {
                let part = PARTS[i].as_bytes();
                let mut j = 0;
                while j < part.len() {
                    out[at] = part[j];
                    at += 1;
                    j += 1;
                }
                i += 1;
            }
            out
        };
        match std::str::from_utf8(&BYTES) {
            Ok(sql) => sql,
            Err(_) => panic!("SQL fragments are UTF-8"),
        }
    }};
}

/// Declares a column list and the reader that decodes a row of it from one list of
/// `field: "column" => expr` entries, so the `SELECT` list and the decoding order cannot drift:
/// each `expr` reads the next column through the [`Reader`] the header names (`fn name(r)`), in
/// the order listed. A `Stored<T>` reader also reads `created_at, updated_at`, appended to the list.
macro_rules! columns {
    (
        $(#[$meta:meta])*
        const $cols:ident;
        fn $read:ident($r:ident) -> Stored<$row:ident> { $($field:ident: $col:literal => $get:expr,)+ }
    ) => {
        $(#[$meta])*
        pub(super) const $cols: &str =
            $crate::store::sql::join_columns(concat!($(", ", $col,)+ ", created_at, updated_at"));

        pub(super) fn $read<DB: Backend>($r: &mut Reader<DB>) -> Decoded<Stored<$row>> {
            let value = $row { $($field: $get,)+ };
            Ok(Stored { value, created_at: $r.time()?, updated_at: $r.time()? })
        }
    };
    (
        $(#[$meta:meta])*
        const $cols:ident;
        fn $read:ident($r:ident) -> $row:ident { $($field:ident: $col:literal => $get:expr,)+ }
    ) => {
        $(#[$meta])*
        pub(super) const $cols: &str = $crate::store::sql::join_columns(concat!($(", ", $col,)+));

        pub(super) fn $read<DB: Backend>($r: &mut Reader<DB>) -> Decoded<$row> {
            Ok($row { $($field: $get,)+ })
        }
    };
}

mod assignment;
mod columns;
mod commit;
mod dashboard;
mod definitions;
mod entities;
mod idempotency;
mod instances;
mod load;
mod outbox;
mod parts;
pub(in crate::store) mod records;
mod timers;
mod tokens;

pub use idempotency::with_idempotency;
pub(super) use load::{PG_LOAD_STATE, SQLITE_LOAD_STATE};

/// `", a, b, c"` without its leading `", "`: the column list [`columns!`] pastes together.
const fn join_columns(list: &'static str) -> &'static str {
    match std::str::from_utf8(list.as_bytes().split_at(2).1) {
        Ok(columns) => columns,
        Err(_) => panic!("column names are ASCII"),
    }
}

/// Page size when a listing asks for 0, and the most it may ask for.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

/// The page size a listing asked for, within [`MAX_PAGE`].
fn page_size(limit: u32) -> u32 {
    match limit {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    }
}

impl<DB: Backend> SqlStore<DB> {
    pub(super) fn from_pools(read: Pool<DB>, write: Pool<DB>) -> Self {
        Self { read, write }
    }

    pub(super) async fn migrate_now(&self) -> StoreResult<()> {
        Ok(DB::migrate(&self.write).await?)
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    /// Runs `work` in a write transaction: committed if it succeeds, rolled back at once if not
    /// (on SQLite that releases the write lock immediately rather than when the connection is
    /// next used).
    async fn write_tx<T>(&self, work: impl AsyncFnOnce(&mut Conn<DB>) -> StoreResult<T>) -> StoreResult<T> {
        let mut tx: Transaction<'static, DB> = self.write.begin_with(DB::BEGIN_WRITE).await?;
        match work(&mut *tx).await {
            Ok(value) => {
                tx.commit().await?;
                Ok(value)
            }
            Err(error) => {
                // The error that caused the rollback is the one worth reporting.
                let _ = tx.rollback().await;
                Err(error)
            }
        }
    }

    /// Runs one statement outside an explicit transaction, on the writer.
    async fn write_one(&self, stmt: Stmt) -> StoreResult<u64> {
        let mut conn = self.write.acquire().await?;
        Ok(DB::execute(&mut *conn, stmt).await?)
    }

    /// Runs one query on a reader and decodes every row with `read`.
    async fn read_all<T>(&self, stmt: Stmt, read: fn(&mut Reader<DB>) -> Decoded<T>) -> StoreResult<Vec<T>> {
        let mut conn = self.read.acquire().await?;
        decode_all(DB::fetch_all(&mut *conn, stmt).await?, read)
    }

    /// Like [`read_all`](Self::read_all), for at most one row.
    async fn read_one<T>(
        &self,
        stmt: Stmt,
        read: fn(&mut Reader<DB>) -> Decoded<T>,
    ) -> StoreResult<Option<T>> {
        Ok(self.read_all(stmt, read).await?.into_iter().next())
    }

    /// Runs one writing statement that returns rows (`UPDATE … RETURNING`) on the writer.
    async fn write_rows<T>(
        &self,
        stmt: Stmt,
        read: fn(&mut Reader<DB>) -> Decoded<T>,
    ) -> StoreResult<Vec<T>> {
        let mut conn = self.write.acquire().await?;
        fetch::<DB, _>(&mut *conn, stmt, read).await
    }
}

type Decoded<T> = Result<T, sqlx::Error>;

fn decode_all<DB: Backend, T>(
    rows: Vec<DB::Row>,
    read: fn(&mut Reader<DB>) -> Decoded<T>,
) -> StoreResult<Vec<T>> {
    Ok(rows.iter().map(|row| read(&mut Reader::new(row))).collect::<Decoded<Vec<T>>>()?)
}

async fn fetch<DB: Backend, T>(
    conn: &mut Conn<DB>,
    stmt: Stmt,
    read: fn(&mut Reader<DB>) -> Decoded<T>,
) -> StoreResult<Vec<T>> {
    decode_all(DB::fetch_all(conn, stmt).await?, read)
}

/// Fails with `NotFound` unless the statement changed a row.
async fn exactly_one<DB: Backend>(
    conn: &mut Conn<DB>,
    stmt: Stmt,
    what: &'static str,
    id: &str,
) -> StoreResult<()> {
    match DB::execute(conn, stmt).await? {
        0 => Err(StoreError::NotFound { what, id: id.to_owned() }),
        _ => Ok(()),
    }
}

/// `now + lease`, saturating: an absurd lease means "held for good", not a panic.
fn lease_end(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(lease)
        .ok()
        .and_then(|lease| now.checked_add_signed(lease))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl<DB: Backend> Store for SqlStore<DB> {
    async fn migrate(&self) -> StoreResult<()> {
        self.migrate_now().await
    }

    async fn deploy_definition(
        &self,
        tenant: &TenantId,
        id: &str,
        name: &str,
        source: &str,
    ) -> StoreResult<DeployedVersion> {
        definitions::deploy_definition(self, tenant, id, name, source).await
    }

    async fn definition(
        &self,
        tenant: &TenantId,
        id: &str,
        version: Option<u64>,
    ) -> StoreResult<Option<DefinitionRow>> {
        definitions::definition(self, tenant, id, version).await
    }

    async fn definitions(&self, tenant: &TenantId) -> StoreResult<Vec<DefinitionRow>> {
        definitions::definitions(self, tenant).await
    }

    async fn definition_versions(&self, tenant: &TenantId, id: &str) -> StoreResult<Vec<DefinitionRow>> {
        definitions::definition_versions(self, tenant, id).await
    }

    async fn set_definition_active(&self, tenant: &TenantId, id: &str, active: bool) -> StoreResult<()> {
        definitions::set_definition_active(self, tenant, id, active).await
    }

    async fn live_instances(&self, tenant: &TenantId, definition: &str) -> StoreResult<Vec<LiveInstance>> {
        definitions::live_instances(self, tenant, definition).await
    }

    async fn load_instance(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<InstanceRow>> {
        load::load_instance(self, tenant, id).await
    }

    async fn load_state(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<StoredInstanceState>> {
        load::load_state(self, tenant, id).await
    }

    async fn commit(&self, tenant: &TenantId, commit: Commit) -> StoreResult<u64> {
        Ok(commit::commit(self, tenant, commit).await?.version)
    }

    async fn commit_numbered(&self, tenant: &TenantId, commit: Commit) -> StoreResult<Committed> {
        commit::commit(self, tenant, commit).await
    }

    async fn instance_by_number(&self, tenant: &TenantId, number: &str) -> StoreResult<Option<InstanceRow>> {
        load::instance_by_number(self, tenant, number).await
    }

    async fn history(&self, tenant: &TenantId, instance_id: &str) -> StoreResult<Vec<HistoryRow>> {
        load::history(self, tenant, instance_id).await
    }

    async fn escalations(&self, tenant: &TenantId, instance_id: &str) -> StoreResult<Vec<EscalationRow>> {
        load::escalations(self, tenant, instance_id).await
    }

    async fn pending_for_user(
        &self,
        tenant: &TenantId,
        user: &str,
        query: &PendingQuery,
    ) -> StoreResult<Page<PendingItem>> {
        dashboard::pending_for_user(self, tenant, user, query).await
    }

    async fn add_delegation(&self, tenant: &TenantId, delegation: &DelegationRow) -> StoreResult<()> {
        dashboard::add_delegation(self, tenant, delegation).await
    }

    async fn remove_delegation(&self, tenant: &TenantId, id: &str) -> StoreResult<()> {
        dashboard::remove_delegation(self, tenant, id).await
    }

    async fn delegations(&self, tenant: &TenantId) -> StoreResult<Vec<DelegationRow>> {
        dashboard::delegations(self, tenant).await
    }

    async fn take_assignment_turn(&self, tenant: &TenantId, pool: &str) -> StoreResult<u64> {
        assignment::take_turn(self, tenant, pool).await
    }

    async fn open_assignments(&self, tenant: &TenantId, users: &[String]) -> StoreResult<Vec<u64>> {
        assignment::open_assignments(self, tenant, users).await
    }

    async fn due_timers(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        worker: &str,
        lease: Duration,
    ) -> StoreResult<Vec<TimerRow>> {
        timers::due_timers(self, now, limit, worker, lease).await
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> StoreResult<QueueStats> {
        timers::queue_stats(self, now).await
    }

    async fn mark_timer_processed(&self, tenant: &TenantId, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        timers::mark_timer_processed(self, tenant, id, at).await
    }

    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        worker: &str,
        lease: Duration,
    ) -> StoreResult<Vec<OutboxRow>> {
        outbox::claim_outbox(self, now, limit, worker, lease).await
    }

    async fn outbox_done(&self, tenant: &TenantId, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        outbox::outbox_done(self, tenant, id, at).await
    }

    async fn outbox_failed(
        &self,
        tenant: &TenantId,
        id: &str,
        at: DateTime<Utc>,
        failure: &OutboxFailure,
    ) -> StoreResult<()> {
        outbox::outbox_failed(self, tenant, id, at, failure).await
    }

    async fn outbox_item(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<OutboxRow>> {
        outbox::outbox_item(self, tenant, id).await
    }

    async fn record_attempt(
        &self,
        tenant: &TenantId,
        id: &str,
        claim: &str,
        attempt: &NewAttempt,
    ) -> StoreResult<()> {
        outbox::record_attempt(self, tenant, id, claim, attempt).await
    }

    async fn complete_claimed_events(&self, claim: &str, at: DateTime<Utc>) -> StoreResult<u64> {
        outbox::complete_claimed_events(self, claim, at).await
    }

    async fn outbox_attempts(&self, tenant: &TenantId, id: &str) -> StoreResult<Vec<AttemptRow>> {
        outbox::outbox_attempts(self, tenant, id).await
    }

    async fn outbox_items(&self, tenant: &TenantId, query: &OutboxQuery) -> StoreResult<Vec<OutboxRow>> {
        outbox::outbox_items(self, tenant, query).await
    }

    async fn replay_outbox(&self, tenant: &TenantId, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        outbox::replay_outbox(self, tenant, id, at).await
    }

    async fn discard_outbox(&self, tenant: &TenantId, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        outbox::discard_outbox(self, tenant, id, at).await
    }

    async fn disable_endpoint(&self, tenant: &TenantId, endpoint: &DisabledEndpoint) -> StoreResult<()> {
        outbox::disable_endpoint(self, tenant, endpoint).await
    }

    async fn enable_endpoint(&self, tenant: &TenantId, url: &str) -> StoreResult<()> {
        outbox::enable_endpoint(self, tenant, url).await
    }

    async fn disabled_endpoints(
        &self,
        tenant: &TenantId,
        url: Option<&str>,
    ) -> StoreResult<Vec<DisabledEndpoint>> {
        outbox::disabled_endpoints(self, tenant, url).await
    }

    async fn secret(&self, tenant: &TenantId, name: &str) -> StoreResult<Option<String>> {
        outbox::secret(self, tenant, name).await
    }

    async fn put_secret(
        &self,
        tenant: &TenantId,
        name: &str,
        value: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        outbox::put_secret(self, tenant, name, value, at).await
    }

    async fn contact(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<Stored<Contact>>> {
        entities::contact(self, tenant, id).await
    }

    async fn contacts(&self, tenant: &TenantId, query: &EntityQuery) -> StoreResult<Vec<Stored<Contact>>> {
        entities::contacts(self, tenant, query).await
    }

    async fn opportunity(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<Stored<Opportunity>>> {
        entities::opportunity(self, tenant, id).await
    }

    async fn opportunities(
        &self,
        tenant: &TenantId,
        query: &EntityQuery,
    ) -> StoreResult<Vec<Stored<Opportunity>>> {
        entities::opportunities(self, tenant, query).await
    }

    async fn campaign(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<Stored<Campaign>>> {
        entities::campaign(self, tenant, id).await
    }

    async fn campaigns(&self, tenant: &TenantId, query: &EntityQuery) -> StoreResult<Vec<Stored<Campaign>>> {
        entities::campaigns(self, tenant, query).await
    }

    async fn instances(&self, tenant: &TenantId, query: &InstanceQuery) -> StoreResult<Page<InstanceRow>> {
        instances::instances(self, tenant, query).await
    }

    async fn create_api_token(&self, token: &ApiTokenRow) -> StoreResult<()> {
        tokens::create_api_token(self, token).await
    }

    async fn api_token_by_hash(&self, hash: &str) -> StoreResult<Option<ApiTokenRow>> {
        tokens::api_token_by_hash(self, hash).await
    }

    async fn api_tokens(&self, tenant: Option<&TenantId>) -> StoreResult<Vec<ApiTokenRow>> {
        tokens::api_tokens(self, tenant).await
    }

    async fn revoke_api_token(&self, id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        tokens::revoke_api_token(self, id, at).await
    }

    async fn idempotency(&self, tenant: &TenantId, key: &str) -> StoreResult<Option<IdempotencyRecord>> {
        idempotency::idempotency(self, tenant, key).await
    }

    async fn insert_idempotency(&self, tenant: &TenantId, record: &IdempotencyRecord) -> StoreResult<()> {
        idempotency::insert_idempotency(self, tenant, record).await
    }

    async fn complete_idempotency(
        &self,
        tenant: &TenantId,
        key: &str,
        status: u16,
        response: &serde_json::Value,
    ) -> StoreResult<()> {
        idempotency::complete_idempotency(self, tenant, key, status, response).await
    }

    async fn purge_idempotency(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        idempotency::purge_idempotency(self, before).await
    }
}
