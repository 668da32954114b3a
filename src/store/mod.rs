//! Storage: instances, their history and everything execution persists, on SQLite or PostgreSQL.
//!
//! One [`Store`] trait, one implementation written once over both databases ([`SqlStore`], as
//! [`SqliteStore`] and [`PgStore`]), and [`AnyStore`] to pick one by URL at run time. Opening a
//! store applies the embedded migrations (`migrations/sqlite`, `migrations/postgres`).
//!
//! # Invariants
//!
//! - The store knows nothing of the IR or the engine: it stores names as text and data as JSON.
//! - Every table has `tenant_id` and every statement filters by it; a row of one tenant is
//!   invisible to, and cannot be changed through, another (SR-003). Only the workers' claims
//!   ([`Store::due_timers`], [`Store::claim_outbox`]) and the API token look-up and revocation
//!   ([`Store::api_token_by_hash`], [`Store::revoke_api_token`]) span tenants, and their rows say whose they are.
//! - A [`Commit`] is one transaction: the instance under its optimistic lock (REL-003) plus its
//!   history, tokens, approvals, timers, SLA, escalations, assignment, outbox items and domain
//!   entities, all written or none (REL-001, BR-002).
//! - `crm_history` is append-only, enforced by database triggers, not by this code (SR-005).
//! - Round trips are few: [`Store::load_state`] is one statement, and a commit's history and
//!   outbox rows are multi-row inserts sent together in one call after the other writes.
//! - Timestamps are kept to the microsecond on both databases, so what is read is what was written.

mod backend;
mod error;
pub mod level1;
mod postgres;
mod records;
mod rows;
mod sql;
mod sqlite;

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use backend::Backend;
#[doc(hidden)]
pub use backend::{Arg, Stmt};
pub use error::StoreError;
pub use postgres::PgStore;
pub use records::RecordStore;
pub use rows::*;
pub use sql::{SqlStore, with_idempotency};
pub use sqlite::SqliteStore;

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// Persistence for the engine. Every method is scoped to one tenant, except the workers' claims.
pub trait Store: Send + Sync + 'static {
    /// Applies the embedded migrations (already done on open; idempotent), for `crm migrate`.
    fn migrate(&self) -> impl Future<Output = StoreResult<()>> + Send;

    /// Deploys a definition's source: the same content as the latest version (by
    /// [`canonical_checksum`], so formatting and key order do not count) is a no-op, anything
    /// else becomes the next version, active unless the definition is deactivated. Concurrent
    /// deploys of one definition end in one new version per distinct content, and all succeed.
    fn deploy_definition(
        &self,
        tenant: &TenantId,
        id: &str,
        name: &str,
        source: &str,
    ) -> impl Future<Output = StoreResult<DeployedVersion>> + Send;

    /// A definition by version, or its latest version for `None`.
    fn definition(
        &self,
        tenant: &TenantId,
        id: &str,
        version: Option<u64>,
    ) -> impl Future<Output = StoreResult<Option<DefinitionRow>>> + Send;

    /// The latest version of every definition, by id.
    fn definitions(&self, tenant: &TenantId) -> impl Future<Output = StoreResult<Vec<DefinitionRow>>> + Send;

    /// Every version of a definition, oldest first (empty for an unknown id).
    fn definition_versions(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> impl Future<Output = StoreResult<Vec<DefinitionRow>>> + Send;

    /// Activates or deactivates a definition: whether new instances may start on its latest
    /// version. Instances already running are not affected. [`StoreError::NotFound`] for an
    /// unknown id.
    fn set_definition_active(
        &self,
        tenant: &TenantId,
        id: &str,
        active: bool,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Every active instance of a definition (any version) with its stage, data, pending
    /// approval and active branches, by id: what a compatibility check compares with a new version.
    fn live_instances(
        &self,
        tenant: &TenantId,
        definition: &str,
    ) -> impl Future<Output = StoreResult<Vec<LiveInstance>>> + Send;

    /// An instance row.
    fn load_instance(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<InstanceRow>>> + Send;

    /// An instance with its action runs, every token of its running gateway, pending approvals
    /// (with their requester and responses), timers, SLA clocks and assignment: one statement,
    /// so one snapshot and one round trip.
    fn load_state(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<StoredInstanceState>>> + Send;

    /// Writes a unit of work in one transaction; the instance's version afterwards (1 for an
    /// insert), or 0 when the commit writes no instance. A stale `expected_version` is a
    /// [`StoreError::Conflict`] and nothing is written.
    fn commit(&self, tenant: &TenantId, commit: Commit) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Like [`commit`](Self::commit), also answering the number given to an instance it creates
    /// (from the counter of the instance's [`NumberRequest`], in the same transaction).
    fn commit_numbered(
        &self,
        tenant: &TenantId,
        commit: Commit,
    ) -> impl Future<Output = StoreResult<Committed>> + Send;

    /// The row of the instance numbered `number`.
    fn instance_by_number(
        &self,
        tenant: &TenantId,
        number: &str,
    ) -> impl Future<Output = StoreResult<Option<InstanceRow>>> + Send;

    /// An instance's history, by sequence number.
    fn history(
        &self,
        tenant: &TenantId,
        instance_id: &str,
    ) -> impl Future<Output = StoreResult<Vec<HistoryRow>>> + Send;

    /// An instance's escalations, oldest first.
    fn escalations(
        &self,
        tenant: &TenantId,
        instance_id: &str,
    ) -> impl Future<Output = StoreResult<Vec<EscalationRow>>> + Send;

    /// The dashboard: active instances assigned to `user`, assigned to someone who delegated to
    /// `user` (within their dates and entity, through chains no longer than the instance's
    /// definition allows by [`PendingQuery::delegation_depth`]), or awaiting `user`'s approval;
    /// filtered, sorted and keyset-paginated.
    fn pending_for_user(
        &self,
        tenant: &TenantId,
        user: &str,
        query: &PendingQuery,
    ) -> impl Future<Output = StoreResult<Page<PendingItem>>> + Send;

    /// Records a delegation.
    fn add_delegation(
        &self,
        tenant: &TenantId,
        delegation: &DelegationRow,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Removes a delegation.
    fn remove_delegation(&self, tenant: &TenantId, id: &str) -> impl Future<Output = StoreResult<()>> + Send;

    /// Every delegation of the tenant, oldest first.
    fn delegations(&self, tenant: &TenantId) -> impl Future<Output = StoreResult<Vec<DelegationRow>>> + Send;

    /// Takes the next round-robin turn of an assignment `pool` (shared by every engine on the
    /// database) and returns how many turns were taken before it, 0 for the first.
    fn take_assignment_turn(
        &self,
        tenant: &TenantId,
        pool: &str,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// How many active instances are assigned to each of `users`, in their order.
    fn open_assignments(
        &self,
        tenant: &TenantId,
        users: &[String],
    ) -> impl Future<Output = StoreResult<Vec<u64>>> + Send;

    /// Claims up to `limit` due timers of any tenant for `worker` until `now + lease`; a timer
    /// claimed by one worker is not handed to another before the lease ends (SCL-002).
    fn due_timers(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        worker: &str,
        lease: Duration,
    ) -> impl Future<Output = StoreResult<Vec<TimerRow>>> + Send;

    /// Marks a timer fired (when its effect was not part of a [`Commit`]).
    fn mark_timer_processed(
        &self,
        tenant: &TenantId,
        id: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Claims up to `limit` due outbox items of any tenant for `worker`, pushing their
    /// `next_attempt_at` to `now + lease` so no other worker takes them meanwhile.
    fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        worker: &str,
        lease: Duration,
    ) -> impl Future<Output = StoreResult<Vec<OutboxRow>>> + Send;

    /// Marks an outbox item delivered.
    fn outbox_done(
        &self,
        tenant: &TenantId,
        id: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Records a failed attempt: retry later, or dead-letter it.
    fn outbox_failed(
        &self,
        tenant: &TenantId,
        id: &str,
        at: DateTime<Utc>,
        failure: &OutboxFailure,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// One outbox item.
    fn outbox_item(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<OutboxRow>>> + Send;

    /// Records one delivery attempt of an item claimed under `claim` and what follows from it
    /// (delivered, retry at its `next_attempt_at`, dead-lettered), in one transaction. Refused with
    /// [`StoreError::NotFound`] when `claim` no longer holds the item (its lease ended and another
    /// worker claimed it, or an operator discarded it): a stale worker's late result is not
    /// recorded.
    fn record_attempt(
        &self,
        tenant: &TenantId,
        id: &str,
        claim: &str,
        attempt: &NewAttempt,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Marks every event of the claim `claim` delivered in one statement (events go to
    /// in-process subscribers, which cannot fail); how many it marked. Events another claim
    /// holds by now are left to it.
    fn complete_claimed_events(
        &self,
        claim: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Every recorded delivery attempt of an outbox item, oldest first.
    fn outbox_attempts(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> impl Future<Output = StoreResult<Vec<AttemptRow>>> + Send;

    /// Outbox items by id, filtered and keyset-paginated.
    fn outbox_items(
        &self,
        tenant: &TenantId,
        query: &OutboxQuery,
    ) -> impl Future<Output = StoreResult<Vec<OutboxRow>>> + Send;

    /// Puts a dead-lettered (or discarded) item back in the queue, due at `at`, with its retries
    /// reset; its recorded attempts stay.
    fn replay_outbox(
        &self,
        tenant: &TenantId,
        id: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Due timers and outbox depth across all tenants (counts only), for operators' metrics.
    fn queue_stats(&self, now: DateTime<Utc>) -> impl Future<Output = StoreResult<QueueStats>> + Send;

    /// Gives up on an undelivered item for good: dead-lettered and marked discarded.
    fn discard_outbox(
        &self,
        tenant: &TenantId,
        id: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Records that a webhook endpoint stopped accepting deliveries (410 Gone); the first record
    /// stays.
    fn disable_endpoint(
        &self,
        tenant: &TenantId,
        endpoint: &DisabledEndpoint,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Takes an endpoint off the disabled list.
    fn enable_endpoint(&self, tenant: &TenantId, url: &str) -> impl Future<Output = StoreResult<()>> + Send;

    /// The disabled webhook endpoints of the tenant (only `url`'s, when given), by URL.
    fn disabled_endpoints(
        &self,
        tenant: &TenantId,
        url: Option<&str>,
    ) -> impl Future<Output = StoreResult<Vec<DisabledEndpoint>>> + Send;

    /// The value of the tenant's secret `name`, if it has one.
    fn secret(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> impl Future<Output = StoreResult<Option<String>>> + Send;

    /// Sets the tenant's secret `name`.
    fn put_secret(
        &self,
        tenant: &TenantId,
        name: &str,
        value: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// One contact.
    fn contact(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<Stored<Contact>>>> + Send;

    /// Contacts in id order.
    fn contacts(
        &self,
        tenant: &TenantId,
        query: &EntityQuery,
    ) -> impl Future<Output = StoreResult<Vec<Stored<Contact>>>> + Send;

    /// One opportunity.
    fn opportunity(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<Stored<Opportunity>>>> + Send;

    /// Opportunities in id order (`status` filters by stage).
    fn opportunities(
        &self,
        tenant: &TenantId,
        query: &EntityQuery,
    ) -> impl Future<Output = StoreResult<Vec<Stored<Opportunity>>>> + Send;

    /// One campaign.
    fn campaign(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<Stored<Campaign>>>> + Send;

    /// Campaigns in id order.
    fn campaigns(
        &self,
        tenant: &TenantId,
        query: &EntityQuery,
    ) -> impl Future<Output = StoreResult<Vec<Stored<Campaign>>>> + Send;
    /// Instances filtered and keyset-paginated by `(updated_at, id)`, oldest change first.
    fn instances(
        &self,
        tenant: &TenantId,
        query: &InstanceQuery,
    ) -> impl Future<Output = StoreResult<Page<InstanceRow>>> + Send;

    /// Records an API token (only its hash).
    fn create_api_token(&self, token: &ApiTokenRow) -> impl Future<Output = StoreResult<()>> + Send;

    /// The token with this SHA-256 hash, revoked or not, of whichever tenant it belongs to: a
    /// request carries only the token, and the row says whose it is.
    fn api_token_by_hash(&self, hash: &str) -> impl Future<Output = StoreResult<Option<ApiTokenRow>>> + Send;

    /// The tokens of `tenant`, or of every tenant for `None` (`crm token list`), oldest first.
    fn api_tokens(
        &self,
        tenant: Option<&TenantId>,
    ) -> impl Future<Output = StoreResult<Vec<ApiTokenRow>>> + Send;

    /// Revokes a token by id, whatever its tenant (`crm token revoke`); false when no unrevoked
    /// token has this id.
    fn revoke_api_token(&self, id: &str, at: DateTime<Utc>)
    -> impl Future<Output = StoreResult<bool>> + Send;

    /// The idempotency record of `key`.
    fn idempotency(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> impl Future<Output = StoreResult<Option<IdempotencyRecord>>> + Send;

    /// Records an idempotency key on its own, for effects that are not a [`Commit`] (commits carry
    /// theirs through [`with_idempotency`]); a key already taken is [`StoreError::Duplicate`].
    fn insert_idempotency(
        &self,
        tenant: &TenantId,
        record: &IdempotencyRecord,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Stores the first response to the request guarded by `key`, to be replayed.
    fn complete_idempotency(
        &self,
        tenant: &TenantId,
        key: &str,
        status: u16,
        response: &serde_json::Value,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Forgets the keys of every tenant first used before `before`; how many.
    fn purge_idempotency(&self, before: DateTime<Utc>) -> impl Future<Output = StoreResult<u64>> + Send;
}

/// A store on either database, chosen at run time by [`AnyStore::open`].
#[derive(Clone)]
pub enum AnyStore {
    /// SQLite (a file or memory).
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PgStore),
}

impl std::fmt::Debug for AnyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.backend())
    }
}

impl AnyStore {
    /// Opens and migrates the store at `location`: `postgres://…`/`postgresql://…` for
    /// PostgreSQL; `sqlite:…` or a file path for SQLite (created if missing).
    pub async fn open(location: &str) -> StoreResult<Self> {
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            Ok(Self::Postgres(PgStore::connect(location).await?))
        } else if location.starts_with("sqlite:") || !location.contains("://") {
            Ok(Self::Sqlite(SqliteStore::open(location).await?))
        } else {
            Err(StoreError::UnsupportedUrl { url: location.to_owned() })
        }
    }

    /// A fresh SQLite database in memory.
    pub async fn in_memory() -> StoreResult<Self> {
        Ok(Self::Sqlite(SqliteStore::in_memory().await?))
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Closes the connections; later calls fail.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(store) => store.close().await,
            Self::Postgres(store) => store.close().await,
        }
    }
}

/// Runs the same call on whichever store `self` is.
macro_rules! dispatch {
    ($self:ident.$method:ident($($arg:expr),*)) => {
        match $self {
            AnyStore::Sqlite(store) => store.$method($($arg),*).await,
            AnyStore::Postgres(store) => store.$method($($arg),*).await,
        }
    };
}

impl Store for AnyStore {
    async fn migrate(&self) -> StoreResult<()> {
        dispatch!(self.migrate())
    }

    async fn deploy_definition(
        &self,
        tenant: &TenantId,
        id: &str,
        name: &str,
        source: &str,
    ) -> StoreResult<DeployedVersion> {
        dispatch!(self.deploy_definition(tenant, id, name, source))
    }

    async fn definition(
        &self,
        tenant: &TenantId,
        id: &str,
        version: Option<u64>,
    ) -> StoreResult<Option<DefinitionRow>> {
        dispatch!(self.definition(tenant, id, version))
    }

    async fn definitions(&self, tenant: &TenantId) -> StoreResult<Vec<DefinitionRow>> {
        dispatch!(self.definitions(tenant))
    }

    async fn definition_versions(&self, tenant: &TenantId, id: &str) -> StoreResult<Vec<DefinitionRow>> {
        dispatch!(self.definition_versions(tenant, id))
    }

    async fn set_definition_active(&self, tenant: &TenantId, id: &str, active: bool) -> StoreResult<()> {
        dispatch!(self.set_definition_active(tenant, id, active))
    }

    async fn live_instances(&self, tenant: &TenantId, definition: &str) -> StoreResult<Vec<LiveInstance>> {
        dispatch!(self.live_instances(tenant, definition))
    }

    async fn load_instance(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<InstanceRow>> {
        dispatch!(self.load_instance(tenant, id))
    }

    async fn load_state(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<StoredInstanceState>> {
        dispatch!(self.load_state(tenant, id))
    }

    async fn commit(&self, tenant: &TenantId, commit: Commit) -> StoreResult<u64> {
        dispatch!(self.commit(tenant, commit))
    }

    async fn commit_numbered(&self, tenant: &TenantId, commit: Commit) -> StoreResult<Committed> {
        dispatch!(self.commit_numbered(tenant, commit))
    }

    async fn instance_by_number(&self, tenant: &TenantId, number: &str) -> StoreResult<Option<InstanceRow>> {
        dispatch!(self.instance_by_number(tenant, number))
    }

    async fn history(&self, tenant: &TenantId, instance_id: &str) -> StoreResult<Vec<HistoryRow>> {
        dispatch!(self.history(tenant, instance_id))
    }

    async fn escalations(&self, tenant: &TenantId, instance_id: &str) -> StoreResult<Vec<EscalationRow>> {
        dispatch!(self.escalations(tenant, instance_id))
    }

    async fn pending_for_user(
        &self,
        tenant: &TenantId,
        user: &str,
        query: &PendingQuery,
    ) -> StoreResult<Page<PendingItem>> {
        dispatch!(self.pending_for_user(tenant, user, query))
    }

    async fn add_delegation(&self, tenant: &TenantId, delegation: &DelegationRow) -> StoreResult<()> {
        dispatch!(self.add_delegation(tenant, delegation))
    }

    async fn remove_delegation(&self, tenant: &TenantId, id: &str) -> StoreResult<()> {
        dispatch!(self.remove_delegation(tenant, id))
    }

    async fn delegations(&self, tenant: &TenantId) -> StoreResult<Vec<DelegationRow>> {
        dispatch!(self.delegations(tenant))
    }

    async fn take_assignment_turn(&self, tenant: &TenantId, pool: &str) -> StoreResult<u64> {
        dispatch!(self.take_assignment_turn(tenant, pool))
    }

    async fn open_assignments(&self, tenant: &TenantId, users: &[String]) -> StoreResult<Vec<u64>> {
        dispatch!(self.open_assignments(tenant, users))
    }

    async fn due_timers(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        worker: &str,
        lease: Duration,
    ) -> StoreResult<Vec<TimerRow>> {
        dispatch!(self.due_timers(now, limit, worker, lease))
    }

    async fn mark_timer_processed(&self, tenant: &TenantId, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        dispatch!(self.mark_timer_processed(tenant, id, at))
    }

    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        worker: &str,
        lease: Duration,
    ) -> StoreResult<Vec<OutboxRow>> {
        dispatch!(self.claim_outbox(now, limit, worker, lease))
    }

    async fn outbox_done(&self, tenant: &TenantId, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        dispatch!(self.outbox_done(tenant, id, at))
    }

    async fn outbox_failed(
        &self,
        tenant: &TenantId,
        id: &str,
        at: DateTime<Utc>,
        failure: &OutboxFailure,
    ) -> StoreResult<()> {
        dispatch!(self.outbox_failed(tenant, id, at, failure))
    }

    async fn outbox_item(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<OutboxRow>> {
        dispatch!(self.outbox_item(tenant, id))
    }

    async fn record_attempt(
        &self,
        tenant: &TenantId,
        id: &str,
        claim: &str,
        attempt: &NewAttempt,
    ) -> StoreResult<()> {
        dispatch!(self.record_attempt(tenant, id, claim, attempt))
    }

    async fn complete_claimed_events(&self, claim: &str, at: DateTime<Utc>) -> StoreResult<u64> {
        dispatch!(self.complete_claimed_events(claim, at))
    }

    async fn outbox_attempts(&self, tenant: &TenantId, id: &str) -> StoreResult<Vec<AttemptRow>> {
        dispatch!(self.outbox_attempts(tenant, id))
    }

    async fn outbox_items(&self, tenant: &TenantId, query: &OutboxQuery) -> StoreResult<Vec<OutboxRow>> {
        dispatch!(self.outbox_items(tenant, query))
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> StoreResult<QueueStats> {
        dispatch!(self.queue_stats(now))
    }

    async fn replay_outbox(&self, tenant: &TenantId, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        dispatch!(self.replay_outbox(tenant, id, at))
    }

    async fn discard_outbox(&self, tenant: &TenantId, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        dispatch!(self.discard_outbox(tenant, id, at))
    }

    async fn disable_endpoint(&self, tenant: &TenantId, endpoint: &DisabledEndpoint) -> StoreResult<()> {
        dispatch!(self.disable_endpoint(tenant, endpoint))
    }

    async fn enable_endpoint(&self, tenant: &TenantId, url: &str) -> StoreResult<()> {
        dispatch!(self.enable_endpoint(tenant, url))
    }

    async fn disabled_endpoints(
        &self,
        tenant: &TenantId,
        url: Option<&str>,
    ) -> StoreResult<Vec<DisabledEndpoint>> {
        dispatch!(self.disabled_endpoints(tenant, url))
    }

    async fn secret(&self, tenant: &TenantId, name: &str) -> StoreResult<Option<String>> {
        dispatch!(self.secret(tenant, name))
    }

    async fn put_secret(
        &self,
        tenant: &TenantId,
        name: &str,
        value: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        dispatch!(self.put_secret(tenant, name, value, at))
    }

    async fn contact(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<Stored<Contact>>> {
        dispatch!(self.contact(tenant, id))
    }

    async fn contacts(&self, tenant: &TenantId, query: &EntityQuery) -> StoreResult<Vec<Stored<Contact>>> {
        dispatch!(self.contacts(tenant, query))
    }

    async fn opportunity(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<Stored<Opportunity>>> {
        dispatch!(self.opportunity(tenant, id))
    }

    async fn opportunities(
        &self,
        tenant: &TenantId,
        query: &EntityQuery,
    ) -> StoreResult<Vec<Stored<Opportunity>>> {
        dispatch!(self.opportunities(tenant, query))
    }

    async fn campaign(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<Stored<Campaign>>> {
        dispatch!(self.campaign(tenant, id))
    }

    async fn campaigns(&self, tenant: &TenantId, query: &EntityQuery) -> StoreResult<Vec<Stored<Campaign>>> {
        dispatch!(self.campaigns(tenant, query))
    }

    async fn instances(&self, tenant: &TenantId, query: &InstanceQuery) -> StoreResult<Page<InstanceRow>> {
        dispatch!(self.instances(tenant, query))
    }

    async fn create_api_token(&self, token: &ApiTokenRow) -> StoreResult<()> {
        dispatch!(self.create_api_token(token))
    }

    async fn api_token_by_hash(&self, hash: &str) -> StoreResult<Option<ApiTokenRow>> {
        dispatch!(self.api_token_by_hash(hash))
    }

    async fn api_tokens(&self, tenant: Option<&TenantId>) -> StoreResult<Vec<ApiTokenRow>> {
        dispatch!(self.api_tokens(tenant))
    }

    async fn revoke_api_token(&self, id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        dispatch!(self.revoke_api_token(id, at))
    }

    async fn idempotency(&self, tenant: &TenantId, key: &str) -> StoreResult<Option<IdempotencyRecord>> {
        dispatch!(self.idempotency(tenant, key))
    }

    async fn insert_idempotency(&self, tenant: &TenantId, record: &IdempotencyRecord) -> StoreResult<()> {
        dispatch!(self.insert_idempotency(tenant, record))
    }

    async fn complete_idempotency(
        &self,
        tenant: &TenantId,
        key: &str,
        status: u16,
        response: &serde_json::Value,
    ) -> StoreResult<()> {
        dispatch!(self.complete_idempotency(tenant, key, status, response))
    }

    async fn purge_idempotency(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        dispatch!(self.purge_idempotency(before))
    }
}
