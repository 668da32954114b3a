//! PostgreSQL: the store at scale, chosen by a `postgres://` URL.

use std::future::Future;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value as Json;
use sqlx::migrate::MigrateError;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::types::Json as Jsonb;
use sqlx::{AssertSqlSafe, PgConnection, Pool, Postgres, Row};

use super::backend::{Arg, Backend, Stmt};
use super::{SqlStore, StoreError};

/// The store on PostgreSQL.
pub type PgStore = SqlStore<Postgres>;

/// Connections per store.
const CONNECTIONS: u32 = 10;

impl SqlStore<Postgres> {
    /// Connects to `url` (`postgres://user@host:port/database`) and migrates the database.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(PgConnectOptions::from_str(url)?).await
    }

    /// Connects with explicit options and migrates the database.
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new().max_connections(CONNECTIONS).connect_with(options).await?;
        let store = Self::from_pools(pool.clone(), pool);
        store.migrate_now().await?;
        Ok(store)
    }
}

fn bind(stmt: Stmt) -> Query<'static, Postgres, PgArguments> {
    let mut query = sqlx::query(AssertSqlSafe(stmt.sql));
    for arg in stmt.args {
        query = match arg {
            Arg::Text(v) => query.bind(v),
            Arg::Int(v) => query.bind(v),
            Arg::Real(v) => query.bind(v),
            Arg::Bool(v) => query.bind(v),
            Arg::Json(v) => query.bind(v.map(Jsonb)),
            Arg::Time(v) => query.bind(v),
            Arg::Date(v) => query.bind(v),
            Arg::Bytes(v) => query.bind(v),
        };
    }
    query
}

impl Backend for Postgres {
    const BEGIN_WRITE: &'static str = "BEGIN";
    // One prepared statement is one statement: batches become `WITH` parts.
    const MULTI_STATEMENT: bool = false;
    const LOAD_STATE: &'static str = super::sql::PG_LOAD_STATE;
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    const IS_ASSIGNEE: &'static str = "r.assignees ? $2";

    async fn execute(conn: &mut PgConnection, stmt: Stmt) -> Result<u64, sqlx::Error> {
        Ok(bind(stmt).execute(conn).await?.rows_affected())
    }

    fn fetch_all<'c>(
        conn: &'c mut PgConnection,
        stmt: Stmt,
    ) -> impl Future<Output = Result<Vec<PgRow>, sqlx::Error>> + Send + 'c {
        bind(stmt).fetch_all(conn)
    }

    fn migrate(pool: &Pool<Postgres>) -> impl Future<Output = Result<(), MigrateError>> + Send + '_ {
        sqlx::migrate!("./migrations/postgres").run(pool)
    }

    fn text(row: &PgRow, i: usize) -> Result<Option<String>, sqlx::Error> {
        row.try_get(i)
    }

    fn int(row: &PgRow, i: usize) -> Result<Option<i64>, sqlx::Error> {
        row.try_get(i)
    }

    fn real(row: &PgRow, i: usize) -> Result<Option<f64>, sqlx::Error> {
        row.try_get(i)
    }

    fn boolean(row: &PgRow, i: usize) -> Result<Option<bool>, sqlx::Error> {
        row.try_get(i)
    }

    fn json(row: &PgRow, i: usize) -> Result<Option<Json>, sqlx::Error> {
        Ok(row.try_get::<Option<Jsonb<Json>>, _>(i)?.map(|j| j.0))
    }

    fn time(row: &PgRow, i: usize) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        row.try_get(i)
    }

    fn date(row: &PgRow, i: usize) -> Result<Option<NaiveDate>, sqlx::Error> {
        row.try_get(i)
    }

    fn bytes(row: &PgRow, i: usize) -> Result<Option<Vec<u8>>, sqlx::Error> {
        row.try_get(i)
    }
}
