//! The seam between the shared SQL ([`super::sql`]) and a database driver.
//!
//! Both databases run the same statements (`$1`-style parameters work on both), so the store is
//! written once, generic over [`Backend`]. A backend only binds values, runs statements, decodes
//! columns and says how to begin a transaction; that is where SQLite's text timestamps and
//! PostgreSQL's `TIMESTAMPTZ`/`JSONB` part ways. Values cross the seam as [`Arg`]s, so the shared
//! code needs no sqlx trait bounds.
//!
//! This module is public only because [`SqlStore`](super::SqlStore) is generic over [`Backend`];
//! the trait is sealed and its items are not part of the API.

use std::borrow::Cow;
use std::future::Future;

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use serde_json::Value as Json;
use sqlx::migrate::MigrateError;
use sqlx::{Database, Pool};

/// A database the store runs on: SQLite or PostgreSQL. Sealed.
pub trait Backend: Database + sealed::Sealed {
    /// Begins a write transaction. SQLite: `BEGIN IMMEDIATE`, so a writer takes the write lock
    /// up front and waits for it (busy timeout) instead of failing when upgrading a read lock.
    #[doc(hidden)]
    const BEGIN_WRITE: &'static str;
    /// Whether one call may run several `;`-separated statements (SQLite); otherwise inserts are
    /// batched as data-modifying `WITH` parts (PostgreSQL).
    #[doc(hidden)]
    const MULTI_STATEMENT: bool;
    /// The one statement that reads an instance with everything execution needs (see
    /// `load_state_sql!` in `sql/load.rs`): one round trip, one snapshot.
    #[doc(hidden)]
    const LOAD_STATE: &'static str;
    /// Appended to a worker's claim sub-select so concurrent claimers skip each other's rows.
    #[doc(hidden)]
    const SKIP_LOCKED: &'static str;
    /// `$2 is among r.assignees` (a JSON array of user ids).
    #[doc(hidden)]
    const IS_ASSIGNEE: &'static str;

    /// Runs a statement; the number of rows it changed.
    #[doc(hidden)]
    fn execute<'c>(
        conn: &'c mut Self::Connection,
        stmt: Stmt,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send + 'c;

    /// Runs a query; all its rows.
    #[doc(hidden)]
    fn fetch_all<'c>(
        conn: &'c mut Self::Connection,
        stmt: Stmt,
    ) -> impl Future<Output = Result<Vec<Self::Row>, sqlx::Error>> + Send + 'c;

    /// Applies the embedded migrations of this backend.
    #[doc(hidden)]
    fn migrate(pool: &Pool<Self>) -> impl Future<Output = Result<(), MigrateError>> + Send + '_;

    /// Column `i` as text.
    #[doc(hidden)]
    fn text(row: &Self::Row, i: usize) -> Result<Option<String>, sqlx::Error>;
    /// Column `i` as an integer.
    #[doc(hidden)]
    fn int(row: &Self::Row, i: usize) -> Result<Option<i64>, sqlx::Error>;
    /// Column `i` as a float.
    #[doc(hidden)]
    fn real(row: &Self::Row, i: usize) -> Result<Option<f64>, sqlx::Error>;
    /// Column `i` as a boolean.
    #[doc(hidden)]
    fn boolean(row: &Self::Row, i: usize) -> Result<Option<bool>, sqlx::Error>;
    /// Column `i` as JSON.
    #[doc(hidden)]
    fn json(row: &Self::Row, i: usize) -> Result<Option<Json>, sqlx::Error>;
    /// Column `i` as a timestamp.
    #[doc(hidden)]
    fn time(row: &Self::Row, i: usize) -> Result<Option<DateTime<Utc>>, sqlx::Error>;
    /// Column `i` as a date.
    #[doc(hidden)]
    fn date(row: &Self::Row, i: usize) -> Result<Option<NaiveDate>, sqlx::Error>;
    /// Column `i` as bytes.
    #[doc(hidden)]
    fn bytes(row: &Self::Row, i: usize) -> Result<Option<Vec<u8>>, sqlx::Error>;
}

pub(super) mod sealed {
    /// Only this crate implements [`Backend`](super::Backend).
    pub trait Sealed {}
    impl Sealed for sqlx::Sqlite {}
    impl Sealed for sqlx::Postgres {}
}

/// A bound value, typed the way the schema types its column.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// `TEXT`.
    Text(Option<String>),
    /// `INTEGER` / `BIGINT`.
    Int(Option<i64>),
    /// `REAL` / `DOUBLE PRECISION`.
    Real(Option<f64>),
    /// `INTEGER` 0/1 / `BOOLEAN`.
    Bool(Option<bool>),
    /// `TEXT` / `JSONB`.
    Json(Option<Json>),
    /// `TEXT` (fixed-width RFC 3339) / `TIMESTAMPTZ`, truncated to microseconds on both.
    Time(Option<DateTime<Utc>>),
    /// `TEXT` (`YYYY-MM-DD`) / `DATE`.
    Date(Option<NaiveDate>),
    /// `BLOB` / `BYTEA`.
    Bytes(Option<Vec<u8>>),
}

/// One statement and its arguments, numbered `$1`, `$2`, … in order.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    /// The SQL: a literal, or assembled from literal fragments by [`super::sql`] (never from input).
    pub sql: Cow<'static, str>,
    /// The arguments.
    pub args: Vec<Arg>,
}

impl Stmt {
    /// A statement from literal SQL.
    pub(super) fn new(sql: &'static str) -> Self {
        Self { sql: Cow::Borrowed(sql), args: Vec::new() }
    }

    /// Adds the next argument.
    pub(super) fn arg(mut self, value: impl Into<Arg>) -> Self {
        self.args.push(value.into());
        self
    }

    /// Appends literal SQL (building a statement whose shape depends on the query).
    pub(super) fn push(&mut self, sql: &'static str) -> &mut Self {
        self.sql.to_mut().push_str(sql);
        self
    }

    /// Appends a placeholder for `value` (as `$n`).
    pub(super) fn bind(&mut self, value: impl Into<Arg>) -> &mut Self {
        self.args.push(value.into());
        let n = self.args.len();
        let sql = self.sql.to_mut();
        sql.push('$');
        sql.push_str(&n.to_string());
        self
    }
}

/// Microseconds: the precision both databases keep, so a value reads back exactly as written.
pub(super) fn micros(time: DateTime<Utc>) -> DateTime<Utc> {
    time.trunc_subsecs(6)
}

/// SQLite's timestamp text: fixed width, so text order is time order.
pub(super) fn sqlite_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

macro_rules! args_from {
    ($($variant:ident: $ty:ty => |$v:ident| $conv:expr;)+) => {$(
        impl From<$ty> for Arg {
            fn from($v: $ty) -> Self {
                Self::$variant(Some($conv))
            }
        }
        impl From<Option<$ty>> for Arg {
            fn from(value: Option<$ty>) -> Self {
                Self::$variant(value.map(|$v| $conv))
            }
        }
    )+};
}

args_from! {
    Text: String => |v| v;
    Text: &String => |v| v.clone();
    Text: &str => |v| v.to_owned();
    Int: i64 => |v| v;
    // Counts and versions are unsigned in the API and BIGINT in the schema; nothing real exceeds i64.
    Int: u64 => |v| i64::try_from(v).unwrap_or(i64::MAX);
    Int: u32 => |v| i64::from(v);
    Real: f64 => |v| v;
    Bool: bool => |v| v;
    Json: Json => |v| v;
    Json: &Json => |v| v.clone();
    Time: DateTime<Utc> => |v| micros(v);
    Date: NaiveDate => |v| v;
    Bytes: Vec<u8> => |v| v;
}

/// Reads a row's columns left to right, in the order of the `SELECT` list.
pub(super) struct Reader<'r, DB: Backend> {
    row: &'r DB::Row,
    col: usize,
}

type Decoded<T> = Result<T, sqlx::Error>;

impl<'r, DB: Backend> Reader<'r, DB> {
    /// Starts at the first column.
    pub(super) fn new(row: &'r DB::Row) -> Self {
        Self { row, col: 0 }
    }

    fn next<T>(&mut self, get: fn(&DB::Row, usize) -> Decoded<Option<T>>) -> Decoded<Option<T>> {
        let col = self.col;
        self.col += 1;
        get(self.row, col)
    }

    fn required<T>(&mut self, get: fn(&DB::Row, usize) -> Decoded<Option<T>>) -> Decoded<T> {
        let col = self.col;
        self.next(get)?
            .ok_or_else(|| sqlx::Error::Decode(format!("column {col} is unexpectedly NULL").into()))
    }

    pub(super) fn opt_text(&mut self) -> Decoded<Option<String>> {
        self.next(DB::text)
    }
    pub(super) fn text(&mut self) -> Decoded<String> {
        self.required(DB::text)
    }
    pub(super) fn int(&mut self) -> Decoded<i64> {
        self.required(DB::int)
    }
    pub(super) fn opt_int(&mut self) -> Decoded<Option<i64>> {
        self.next(DB::int)
    }
    /// A non-negative integer (versions, sequence numbers, counts).
    pub(super) fn count<T: TryFrom<i64>>(&mut self) -> Decoded<T> {
        let value = self.int()?;
        T::try_from(value).map_err(|_| sqlx::Error::Decode(format!("{value} is out of range").into()))
    }
    pub(super) fn opt_real(&mut self) -> Decoded<Option<f64>> {
        self.next(DB::real)
    }
    pub(super) fn real(&mut self) -> Decoded<f64> {
        self.required(DB::real)
    }
    pub(super) fn boolean(&mut self) -> Decoded<bool> {
        self.required(DB::boolean)
    }
    pub(super) fn opt_json(&mut self) -> Decoded<Option<Json>> {
        self.next(DB::json)
    }
    pub(super) fn json(&mut self) -> Decoded<Json> {
        self.required(DB::json)
    }
    pub(super) fn opt_time(&mut self) -> Decoded<Option<DateTime<Utc>>> {
        self.next(DB::time)
    }
    pub(super) fn time(&mut self) -> Decoded<DateTime<Utc>> {
        self.required(DB::time)
    }
    pub(super) fn bytes(&mut self) -> Decoded<Vec<u8>> {
        self.required(DB::bytes)
    }
    pub(super) fn opt_date(&mut self) -> Decoded<Option<NaiveDate>> {
        self.next(DB::date)
    }
    /// A closed set of values stored as text (see `text_enum!` in `rows`).
    pub(super) fn parsed<T>(&mut self, parse: fn(&str) -> Option<T>) -> Decoded<T> {
        let text = self.text()?;
        parse(&text).ok_or_else(|| sqlx::Error::Decode(format!("unknown value `{text}`").into()))
    }
}
