//! Level 1 CRMs in the database: what a promoted `HasCrm` host (seed US-010, BR-006) keeps in the
//! store. The `crm` module's store backend is the only intended caller.
//!
//! Tables (`migrations/*/0003_level1.sql`): `crm_level1_hosts` (one row per host's CRM, keyed by
//! tenant and host id), `crm_contacts` (a Level 1 contact is a row with `host_id`, `contact_id`
//! and `position` set; its fields are `data`, and the columns Level 2 queries — `name`, `email`,
//! `phone`, `company`, `status`, `score` — mirror the fields of those names) and
//! `crm_contact_history` (append-only, enforced by triggers).
//!
//! # Invariants
//!
//! - Every statement filters by tenant *and* host: a host's contacts and history are invisible to
//!   every other host, of its tenant or another.
//! - A [`Level1Write`] is one transaction: the contact row and its history entry, or nothing. A
//!   refusal ([`Level1Refusal`]) rolls back too, so it leaves no trace.
//! - Writes to one host are serialised by bumping its `crm_level1_hosts` row first (a row lock on
//!   PostgreSQL, the write lock on SQLite), and an edit or delete checks the row still holds the
//!   `before` it was computed from: a concurrent change is refused, never overwritten.
//! - Timestamps are kept to the microsecond, as everywhere in the store.
//!
//! # Why its own connections
//!
//! [`Level1Store`] is not a method set on [`Store`](super::Store): it opens its own pool to the
//! same database (same URL rules, same embedded migrations, the same [`Backend`] seam for SQL), so
//! the engine's store and its internals stay untouched. An application may open both on one
//! SQLite file or PostgreSQL database; SQLite's `BEGIN IMMEDIATE` and busy timeout order their
//! writers as they order two processes'.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{Pool, Postgres, Sqlite, Transaction};

use super::backend::{Backend, Reader, Stmt};
use super::rows::{TenantId, new_id};
use super::{StoreError, StoreResult};

/// PostgreSQL connections per Level 1 store.
const PG_CONNECTIONS: u32 = 4;

/// The Level 1 tables of one database, SQLite or PostgreSQL. Cheap to clone.
#[derive(Clone)]
pub enum Level1Store {
    /// SQLite (a file or memory).
    Sqlite(Pool<Sqlite>),
    /// PostgreSQL.
    Postgres(Pool<Postgres>),
}

impl std::fmt::Debug for Level1Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.backend())
    }
}

/// A contact as stored: its id within its host and its fields (a JSON object).
#[derive(Clone, Debug, PartialEq)]
pub struct Level1ContactRow {
    /// The id within the host.
    pub contact_id: String,
    /// The fields, a JSON object.
    pub fields: Json,
}

/// A history entry as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Level1EntryRow {
    /// Position in the host's history, from 1.
    pub seq: u64,
    /// When.
    pub at: DateTime<Utc>,
    /// The actor's id.
    pub actor: String,
    /// `add`, `edit` or `delete`.
    pub action: String,
    /// The contact's id within the host.
    pub contact_id: String,
    /// The fields before (a JSON object); `None` for an add.
    pub before: Option<Json>,
    /// The fields after (a JSON object); `None` for a delete.
    pub after: Option<Json>,
}

/// What a [`Level1Write`] does to its contact.
#[derive(Clone, Debug, PartialEq)]
pub enum Level1Change {
    /// Insert the contact with these fields.
    Add {
        /// The fields.
        fields: Json,
    },
    /// Replace the fields; refused unless the stored fields equal `before`.
    Edit {
        /// The fields the change was computed from.
        before: Json,
        /// The new fields.
        after: Json,
    },
    /// Remove the contact; refused unless the stored fields equal `before`.
    Delete {
        /// The fields the change was computed from.
        before: Json,
    },
}

/// One change of one host's CRM and its history entry, written in one transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct Level1Write {
    /// The contact's id within the host.
    pub contact_id: String,
    /// What happens to it.
    pub change: Level1Change,
    /// When (the history entry's timestamp).
    pub at: DateTime<Utc>,
    /// The actor's id.
    pub actor: String,
    /// Create the host's CRM in the same transaction (its first write); refused if it exists.
    pub create_host: bool,
}

/// A host's whole in-document CRM, to be moved into the store in one transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct Level1Import {
    /// The contacts, in order.
    pub contacts: Vec<Level1ContactRow>,
    /// The history, oldest first, numbered 1, 2, 3, …
    pub history: Vec<Level1EntryRow>,
    /// When the import happens (the host row's creation time, and a contact's when no history
    /// entry names it).
    pub at: DateTime<Utc>,
}

/// Why a write was refused; nothing was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level1Refusal {
    /// The host has no CRM in the store.
    HostMissing,
    /// The host already has a CRM in the store.
    HostExists,
    /// An add names a contact id the host already has.
    ContactExists,
    /// An edit or delete names a contact the host does not have.
    ContactMissing,
    /// The contact's stored fields are not the `before` of the change: it changed meanwhile.
    ContactChanged,
}

/// The outcome of a write: the history entry's sequence number, or why it was refused.
pub type Level1Outcome<T> = StoreResult<Result<T, Level1Refusal>>;

/// Runs the same generic function on whichever pool `self` holds.
macro_rules! dispatch {
    ($self:ident, |$pool:ident| $call:expr) => {
        match $self {
            Level1Store::Sqlite($pool) => $call.await,
            Level1Store::Postgres($pool) => $call.await,
        }
    };
}
impl Level1Store {
    /// Opens and migrates the database at `location`, by the rules of
    /// [`AnyStore::open`](super::AnyStore::open): `postgres://…`, `sqlite:…` or a file path.
    pub async fn open(location: &str) -> StoreResult<Self> {
        let store = if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(location)?;
            Self::Postgres(PgPoolOptions::new().max_connections(PG_CONNECTIONS).connect_with(options).await?)
        } else if location.starts_with("sqlite:") || !location.contains("://") {
            let options = super::sqlite::file_options(location)?;
            // One connection: Level 1 writers of this process queue in the pool, not in SQLite's
            // busy handler (which sleeps).
            Self::Sqlite(SqlitePoolOptions::new().max_connections(1).connect_with(options).await?)
        } else {
            return Err(StoreError::UnsupportedUrl { url: location.to_owned() });
        };
        store.migrate().await?;
        Ok(store)
    }

    /// A fresh, migrated SQLite database in memory, gone when the store is closed or dropped.
    pub async fn in_memory() -> StoreResult<Self> {
        let store = Self::Sqlite(super::sqlite::memory_pool().await?);
        store.migrate().await?;
        Ok(store)
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Applies the embedded migrations (idempotent).
    pub async fn migrate(&self) -> StoreResult<()> {
        match self {
            Self::Sqlite(pool) => Ok(Sqlite::migrate(pool).await?),
            Self::Postgres(pool) => Ok(Postgres::migrate(pool).await?),
        }
    }

    /// Closes the connections; later calls fail.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }

    /// Whether the host has a CRM in the store.
    pub async fn host_exists(&self, tenant: &TenantId, host: &str) -> StoreResult<bool> {
        dispatch!(self, |pool| host_exists(pool, tenant.as_str(), host))
    }

    /// The host's contacts, in the order they were added.
    pub async fn contacts(&self, tenant: &TenantId, host: &str) -> StoreResult<Vec<Level1ContactRow>> {
        dispatch!(self, |pool| contacts(pool, tenant.as_str(), host, None))
    }

    /// One of the host's contacts.
    pub async fn contact(
        &self,
        tenant: &TenantId,
        host: &str,
        contact_id: &str,
    ) -> StoreResult<Option<Level1ContactRow>> {
        let found = dispatch!(self, |pool| contacts(pool, tenant.as_str(), host, Some(contact_id)))?;
        Ok(found.into_iter().next())
    }

    /// The host's history, oldest first.
    pub async fn history(&self, tenant: &TenantId, host: &str) -> StoreResult<Vec<Level1EntryRow>> {
        dispatch!(self, |pool| history(pool, tenant.as_str(), host))
    }

    /// Applies `write` and appends its history entry in one transaction; the entry's number.
    pub async fn write(&self, tenant: &TenantId, host: &str, write: &Level1Write) -> Level1Outcome<u64> {
        dispatch!(self, |pool| write_in(pool, tenant.as_str(), host, write))
    }

    /// Creates the host's CRM with `import`'s contacts and history, all in one transaction;
    /// refused with [`Level1Refusal::HostExists`] if the host has one already.
    pub async fn import(&self, tenant: &TenantId, host: &str, import: &Level1Import) -> Level1Outcome<()> {
        dispatch!(self, |pool| import_in(pool, tenant.as_str(), host, import))
    }
}

type Conn<DB> = <DB as sqlx::Database>::Connection;
type Decoded<T> = Result<T, sqlx::Error>;

/// Runs `work` in a write transaction, committed only if it succeeds and was not refused.
async fn in_transaction<DB: Backend, T>(
    pool: &Pool<DB>,
    work: impl AsyncFnOnce(&mut Conn<DB>) -> Level1Outcome<T>,
) -> Level1Outcome<T> {
    let mut tx: Transaction<'static, DB> = pool.begin_with(DB::BEGIN_WRITE).await?;
    let outcome = work(&mut *tx).await;
    if matches!(outcome, Ok(Ok(_))) {
        tx.commit().await?;
    } else {
        // The refusal or error that caused the rollback is what is worth reporting.
        let _ = tx.rollback().await;
    }
    outcome
}

async fn write_in<DB: Backend>(
    pool: &Pool<DB>,
    tenant: &str,
    host: &str,
    w: &Level1Write,
) -> Level1Outcome<u64> {
    in_transaction(pool, async |conn: &mut Conn<DB>| apply::<DB>(conn, tenant, host, w).await).await
}

async fn import_in<DB: Backend>(
    pool: &Pool<DB>,
    tenant: &str,
    host: &str,
    import: &Level1Import,
) -> Level1Outcome<()> {
    in_transaction(pool, async |conn: &mut Conn<DB>| insert_all::<DB>(conn, tenant, host, import).await).await
}

async fn fetch<DB: Backend, T>(
    conn: &mut Conn<DB>,
    stmt: Stmt,
    read: fn(&mut Reader<DB>) -> Decoded<T>,
) -> StoreResult<Vec<T>> {
    let rows = DB::fetch_all(conn, stmt).await?;
    Ok(rows.iter().map(|row| read(&mut Reader::new(row))).collect::<Decoded<Vec<T>>>()?)
}

async fn host_exists<DB: Backend>(pool: &Pool<DB>, tenant: &str, host: &str) -> StoreResult<bool> {
    let mut conn = pool.acquire().await?;
    host_row_exists::<DB>(&mut conn, tenant, host).await
}

async fn host_row_exists<DB: Backend>(conn: &mut Conn<DB>, tenant: &str, host: &str) -> StoreResult<bool> {
    let stmt = Stmt::new("SELECT host_id FROM crm_level1_hosts WHERE tenant_id = $1 AND host_id = $2")
        .arg(tenant)
        .arg(host);
    Ok(!fetch::<DB, String>(conn, stmt, |r| r.text()).await?.is_empty())
}

/// A JSON object column.
fn object<DB: Backend>(r: &mut Reader<DB>) -> Decoded<Json> {
    let value = r.json()?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(sqlx::Error::Decode("fields are not a JSON object".into()))
    }
}

fn opt_object<DB: Backend>(r: &mut Reader<DB>) -> Decoded<Option<Json>> {
    match r.opt_json()? {
        Some(value) if !value.is_object() => Err(sqlx::Error::Decode("fields are not a JSON object".into())),
        other => Ok(other),
    }
}

fn contact_row<DB: Backend>(r: &mut Reader<DB>) -> Decoded<Level1ContactRow> {
    Ok(Level1ContactRow { contact_id: r.text()?, fields: object(r)? })
}

async fn contacts<DB: Backend>(
    pool: &Pool<DB>,
    tenant: &str,
    host: &str,
    only: Option<&str>,
) -> StoreResult<Vec<Level1ContactRow>> {
    let mut conn = pool.acquire().await?;
    let stmt = match only {
        None => Stmt::new(
            "SELECT contact_id, data FROM crm_contacts WHERE tenant_id = $1 AND host_id = $2 ORDER BY position",
        )
        .arg(tenant)
        .arg(host),
        Some(id) => Stmt::new(
            "SELECT contact_id, data FROM crm_contacts WHERE tenant_id = $1 AND host_id = $2 AND contact_id = $3",
        )
        .arg(tenant)
        .arg(host)
        .arg(id),
    };
    fetch::<DB, _>(&mut conn, stmt, contact_row).await
}

fn entry_row<DB: Backend>(r: &mut Reader<DB>) -> Decoded<Level1EntryRow> {
    Ok(Level1EntryRow {
        seq: r.count()?,
        at: r.time()?,
        actor: r.text()?,
        action: r.text()?,
        contact_id: r.text()?,
        before: opt_object(r)?,
        after: opt_object(r)?,
    })
}

async fn history<DB: Backend>(pool: &Pool<DB>, tenant: &str, host: &str) -> StoreResult<Vec<Level1EntryRow>> {
    let mut conn = pool.acquire().await?;
    let stmt = Stmt::new(
        "SELECT seq, created_at, actor_id, action, contact_id, before, after FROM crm_contact_history \
         WHERE tenant_id = $1 AND host_id = $2 ORDER BY seq",
    )
    .arg(tenant)
    .arg(host);
    fetch::<DB, _>(&mut conn, stmt, entry_row).await
}

async fn insert_host<DB: Backend>(
    conn: &mut Conn<DB>,
    tenant: &str,
    host: &str,
    (last_seq, last_position): (u64, u64),
    origin: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let stmt = Stmt::new(
        "INSERT INTO crm_level1_hosts (tenant_id, host_id, last_seq, last_position, origin, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .arg(tenant)
    .arg(host)
    .arg(last_seq)
    .arg(last_position)
    .arg(origin)
    .arg(at);
    DB::execute(conn, stmt).await?;
    Ok(())
}

/// The columns Level 2 reads, mirrored from the fields of the same names when their types fit.
struct Mirrored {
    name: String,
    email: Option<String>,
    phone: Option<String>,
    company: Option<String>,
    status: String,
    score: Option<f64>,
}

impl Mirrored {
    fn of(fields: &Json) -> Self {
        let text = |key: &str| fields.get(key).and_then(Json::as_str).map(str::to_owned);
        Self {
            // Both are NOT NULL for Level 2; a Level 1 contact need not have them.
            name: text("name").unwrap_or_default(),
            email: text("email"),
            phone: text("phone"),
            company: text("company"),
            status: text("status").unwrap_or_default(),
            score: fields.get("score").and_then(Json::as_f64),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn insert_contact<DB: Backend>(
    conn: &mut Conn<DB>,
    tenant: &str,
    host: &str,
    contact_id: &str,
    position: u64,
    fields: &Json,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
) -> StoreResult<()> {
    let m = Mirrored::of(fields);
    let stmt = Stmt::new(
        "INSERT INTO crm_contacts (tenant_id, id, host_id, contact_id, position, name, email, phone, company, \
         status, score, data, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .arg(tenant)
    // The tenant-unique row id Level 2 (and opportunities) use; the Level 1 key is the next two.
    .arg(new_id())
    .arg(host)
    .arg(contact_id)
    .arg(position)
    .arg(m.name)
    .arg(m.email)
    .arg(m.phone)
    .arg(m.company)
    .arg(m.status)
    .arg(m.score)
    .arg(fields)
    .arg(created_at)
    .arg(updated_at);
    DB::execute(conn, stmt).await?;
    Ok(())
}

async fn insert_entry<DB: Backend>(
    conn: &mut Conn<DB>,
    tenant: &str,
    host: &str,
    entry: &Level1EntryRow,
) -> StoreResult<()> {
    let stmt = Stmt::new(
        "INSERT INTO crm_contact_history (tenant_id, host_id, seq, action, contact_id, before, after, actor_id, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .arg(tenant)
    .arg(host)
    .arg(entry.seq)
    .arg(&entry.action)
    .arg(&entry.contact_id)
    .arg(entry.before.as_ref())
    .arg(entry.after.as_ref())
    .arg(&entry.actor)
    .arg(entry.at);
    DB::execute(conn, stmt).await?;
    Ok(())
}

async fn apply<DB: Backend>(
    conn: &mut Conn<DB>,
    tenant: &str,
    host: &str,
    w: &Level1Write,
) -> Level1Outcome<u64> {
    if w.create_host {
        if host_row_exists::<DB>(conn, tenant, host).await? {
            return Ok(Err(Level1Refusal::HostExists));
        }
        insert_host::<DB>(conn, tenant, host, (0, 0), "new", w.at).await?;
    }
    let adds = u64::from(matches!(w.change, Level1Change::Add { .. }));
    let bump = Stmt::new(
        "UPDATE crm_level1_hosts SET last_seq = last_seq + 1, last_position = last_position + $3 \
         WHERE tenant_id = $1 AND host_id = $2 RETURNING last_seq, last_position",
    )
    .arg(tenant)
    .arg(host)
    .arg(adds);
    let bumped = fetch::<DB, (u64, u64)>(conn, bump, |r| Ok((r.count()?, r.count()?))).await?;
    let Some(&(seq, position)) = bumped.first() else {
        return Ok(Err(Level1Refusal::HostMissing));
    };

    let current =
        Stmt::new("SELECT data FROM crm_contacts WHERE tenant_id = $1 AND host_id = $2 AND contact_id = $3")
            .arg(tenant)
            .arg(host)
            .arg(&w.contact_id);
    let stored = fetch::<DB, Json>(conn, current, object).await?.into_iter().next();
    let (before, after) = match (&w.change, &stored) {
        (Level1Change::Add { .. }, Some(_)) => return Ok(Err(Level1Refusal::ContactExists)),
        (Level1Change::Edit { .. } | Level1Change::Delete { .. }, None) => {
            return Ok(Err(Level1Refusal::ContactMissing));
        }
        (Level1Change::Edit { before, .. } | Level1Change::Delete { before }, Some(stored))
            if stored != before =>
        {
            return Ok(Err(Level1Refusal::ContactChanged));
        }
        (Level1Change::Add { fields }, None) => {
            insert_contact::<DB>(conn, tenant, host, &w.contact_id, position, fields, w.at, w.at).await?;
            (None, Some(fields))
        }
        (Level1Change::Edit { before, after }, Some(_)) => {
            let m = Mirrored::of(after);
            let stmt = Stmt::new(
                "UPDATE crm_contacts SET name = $4, email = $5, phone = $6, company = $7, status = $8, score = $9, \
                 data = $10, updated_at = $11 WHERE tenant_id = $1 AND host_id = $2 AND contact_id = $3",
            )
            .arg(tenant)
            .arg(host)
            .arg(&w.contact_id)
            .arg(m.name)
            .arg(m.email)
            .arg(m.phone)
            .arg(m.company)
            .arg(m.status)
            .arg(m.score)
            .arg(after)
            .arg(w.at);
            DB::execute(conn, stmt).await?;
            (Some(before), Some(after))
        }
        (Level1Change::Delete { before }, Some(_)) => {
            let stmt = Stmt::new(
                "DELETE FROM crm_contacts WHERE tenant_id = $1 AND host_id = $2 AND contact_id = $3",
            )
            .arg(tenant)
            .arg(host)
            .arg(&w.contact_id);
            DB::execute(conn, stmt).await?;
            (Some(before), None)
        }
    };
    let action = match w.change {
        Level1Change::Add { .. } => "add",
        Level1Change::Edit { .. } => "edit",
        Level1Change::Delete { .. } => "delete",
    };
    let entry = Level1EntryRow {
        seq,
        at: w.at,
        actor: w.actor.clone(),
        action: action.to_owned(),
        contact_id: w.contact_id.clone(),
        before: before.cloned(),
        after: after.cloned(),
    };
    insert_entry::<DB>(conn, tenant, host, &entry).await?;
    Ok(Ok(seq))
}

async fn insert_all<DB: Backend>(
    conn: &mut Conn<DB>,
    tenant: &str,
    host: &str,
    import: &Level1Import,
) -> Level1Outcome<()> {
    if host_row_exists::<DB>(conn, tenant, host).await? {
        return Ok(Err(Level1Refusal::HostExists));
    }
    let last_seq = import.history.last().map_or(0, |entry| entry.seq);
    let counters = (last_seq, import.contacts.len() as u64);
    insert_host::<DB>(conn, tenant, host, counters, "document", import.at).await?;
    for (position, contact) in (1..).zip(&import.contacts) {
        // A contact was created by its last `add` and last changed by its last entry; one no
        // entry names (a hand-made document) dates from the import.
        let mut created_at = None;
        let mut updated_at = None;
        for entry in import.history.iter().filter(|e| e.contact_id == contact.contact_id) {
            if entry.action == "add" {
                created_at = Some(entry.at);
            }
            updated_at = Some(entry.at);
        }
        let created_at = created_at.unwrap_or(import.at);
        let updated_at = updated_at.unwrap_or(created_at);
        insert_contact::<DB>(
            conn,
            tenant,
            host,
            &contact.contact_id,
            position,
            &contact.fields,
            created_at,
            updated_at,
        )
        .await?;
    }
    for entry in &import.history {
        insert_entry::<DB>(conn, tenant, host, entry).await?;
    }
    Ok(Ok(()))
}
