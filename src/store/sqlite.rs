//! SQLite: the embedded default. A file in WAL mode, or memory for tests and `crm test`.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value as Json;
use sqlx::migrate::MigrateError;
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Pool, Row, Sqlite, SqliteConnection};

use super::backend::{Arg, Backend, Stmt, sqlite_time};
use super::{SqlStore, StoreError};

/// The store on SQLite.
pub type SqliteStore = SqlStore<Sqlite>;

/// How long a writer waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections for concurrent readers of a file (WAL lets them read while one writes).
const READERS: u32 = 4;

impl SqlStore<Sqlite> {
    /// Opens (creating it if needed) and migrates the database at `location`: a path, or a
    /// `sqlite:` URL such as `sqlite:crm.db` or `sqlite://var/crm.db?mode=rwc`.
    pub async fn open(location: &str) -> Result<Self, StoreError> {
        let options = file_options(location)?;
        // One writer connection: writers of this process queue in the pool (FIFO, no polling)
        // rather than in SQLite's busy handler, which sleeps; other processes still wait on the
        // busy timeout, and `BEGIN IMMEDIATE` keeps that wait safe.
        let write = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        let read = SqlitePoolOptions::new().max_connections(READERS).connect_with(options).await?;
        let store = Self::from_pools(read, write);
        store.migrate_now().await?;
        Ok(store)
    }

    /// A fresh, migrated database in memory, gone when the store is dropped.
    pub async fn in_memory() -> Result<Self, StoreError> {
        // Readers and the writer share the one connection.
        let pool = memory_pool().await?;
        let store = Self::from_pools(pool.clone(), pool);
        store.migrate_now().await?;
        Ok(store)
    }
}

fn bind(stmt: Stmt) -> Query<'static, Sqlite, SqliteArguments> {
    let mut query = sqlx::query(AssertSqlSafe(stmt.sql));
    for arg in stmt.args {
        query = match arg {
            Arg::Text(v) => query.bind(v),
            Arg::Int(v) => query.bind(v),
            Arg::Real(v) => query.bind(v),
            Arg::Bool(v) => query.bind(v),
            Arg::Json(v) => query.bind(v.map(|v| v.to_string())),
            Arg::Time(v) => query.bind(v.map(sqlite_time)),
            Arg::Date(v) => query.bind(v.map(|d| d.format("%Y-%m-%d").to_string())),
            Arg::Bytes(v) => query.bind(v),
        };
    }
    query
}

fn decode_error(column: usize, what: &str, error: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(format!("column {column}: not {what}: {error}").into())
}

impl Backend for Sqlite {
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    // Statements separated by `;` run in one call.
    const MULTI_STATEMENT: bool = true;
    const LOAD_STATE: &'static str = super::sql::SQLITE_LOAD_STATE;
    // Writers are serialised by the database lock, so a claim cannot overlap another.
    const SKIP_LOCKED: &'static str = "";
    const IS_ASSIGNEE: &'static str =
        "EXISTS (SELECT 1 FROM json_each(r.assignees) AS who WHERE who.value = $2)";

    async fn execute(conn: &mut SqliteConnection, stmt: Stmt) -> Result<u64, sqlx::Error> {
        Ok(bind(stmt).execute(conn).await?.rows_affected())
    }

    fn fetch_all<'c>(
        conn: &'c mut SqliteConnection,
        stmt: Stmt,
    ) -> impl Future<Output = Result<Vec<SqliteRow>, sqlx::Error>> + Send + 'c {
        bind(stmt).fetch_all(conn)
    }

    fn migrate(pool: &Pool<Sqlite>) -> impl Future<Output = Result<(), MigrateError>> + Send + '_ {
        sqlx::migrate!("./migrations/sqlite").run(pool)
    }

    fn text(row: &SqliteRow, i: usize) -> Result<Option<String>, sqlx::Error> {
        row.try_get(i)
    }

    fn int(row: &SqliteRow, i: usize) -> Result<Option<i64>, sqlx::Error> {
        row.try_get(i)
    }

    fn real(row: &SqliteRow, i: usize) -> Result<Option<f64>, sqlx::Error> {
        row.try_get(i)
    }

    fn boolean(row: &SqliteRow, i: usize) -> Result<Option<bool>, sqlx::Error> {
        row.try_get(i)
    }

    fn json(row: &SqliteRow, i: usize) -> Result<Option<Json>, sqlx::Error> {
        let text: Option<String> = row.try_get(i)?;
        text.map(|t| serde_json::from_str(&t).map_err(|e| decode_error(i, "JSON", e))).transpose()
    }

    fn time(row: &SqliteRow, i: usize) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        let text: Option<String> = row.try_get(i)?;
        text.map(|t| {
            DateTime::parse_from_rfc3339(&t)
                .map(|t| t.to_utc())
                .map_err(|e| decode_error(i, "a timestamp", e))
        })
        .transpose()
    }

    fn date(row: &SqliteRow, i: usize) -> Result<Option<NaiveDate>, sqlx::Error> {
        let text: Option<String> = row.try_get(i)?;
        text.map(|t| NaiveDate::parse_from_str(&t, "%Y-%m-%d").map_err(|e| decode_error(i, "a date", e)))
            .transpose()
    }

    fn bytes(row: &SqliteRow, i: usize) -> Result<Option<Vec<u8>>, sqlx::Error> {
        row.try_get(i)
    }
}

/// The options of a database file at `location` (a path or a `sqlite:` URL): created if missing,
/// WAL, `synchronous = NORMAL`, a busy timeout and foreign keys.
pub(super) fn file_options(location: &str) -> Result<SqliteConnectOptions, StoreError> {
    let options = if location.starts_with("sqlite:") {
        SqliteConnectOptions::from_str(location)?
    } else {
        SqliteConnectOptions::new().filename(location)
    };
    Ok(options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true))
}

/// A pool on a fresh in-memory database. It lives as long as its connection: exactly one, never
/// recycled.
pub(super) async fn memory_pool() -> Result<Pool<Sqlite>, StoreError> {
    let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
    Ok(SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(options)
        .await?)
}
