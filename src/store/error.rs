//! What can go wrong talking to the database.
//!
//! Every variant's docs name what triggers it. A failed [`commit`](super::Store::commit) writes
//! nothing, whatever the error. `Display` never shows SQL or driver details: those stay in the
//! [`source`](std::error::Error::source) chain, for logs, not for API users.

use sqlx::error::ErrorKind;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum StoreError {
    /// An instance update carried a stale `expected_version`: someone else committed first, e.g.
    /// two users firing transitions on the same instance at once (REL-003). Reload and retry.
    #[error("instance `{id}` was changed concurrently: expected version {expected}, found {actual}")]
    #[diagnostic(code(crm::store::conflict), help("reload the instance and apply the change again"))]
    Conflict {
        /// The instance.
        id: String,
        /// The version the change was computed from.
        expected: u64,
        /// The version in the database.
        actual: u64,
    },

    /// A row the operation needs does not exist for this tenant, e.g. updating an instance of
    /// another tenant, responding to an approval that is not pending, or completing a token twice.
    #[error("no {what} `{id}`")]
    #[diagnostic(code(crm::store::not_found))]
    NotFound {
        /// What kind of row (`instance`, `pending approval request`, `active token`, …).
        what: &'static str,
        /// Its id or name.
        id: String,
    },

    /// A unique key is already taken, e.g. inserting an instance id twice, a second response of
    /// the same approver in one round, or a second instance of a definition for the same subject.
    #[error("duplicate {what}")]
    #[diagnostic(code(crm::store::duplicate))]
    Duplicate {
        /// What is duplicated, from the constraint's table.
        what: &'static str,
    },

    /// Something tried to change or delete audit history, e.g. `DELETE FROM crm_history` (SR-005).
    #[error("crm_history is append-only")]
    #[diagnostic(code(crm::store::append_only))]
    AppendOnly,

    /// A commit is malformed, e.g. history entries without an instance to attach them to.
    #[error("invalid commit: {reason}")]
    #[diagnostic(code(crm::store::invalid))]
    Invalid {
        /// What is wrong.
        reason: &'static str,
    },

    /// A pagination cursor that this store did not hand out for this sort order.
    #[error("invalid page cursor")]
    #[diagnostic(code(crm::store::cursor), help("start again from the first page"))]
    InvalidCursor,

    /// The store location is not understood, e.g. `mysql://…`.
    #[error("unsupported store URL `{url}`")]
    #[diagnostic(code(crm::store::url), help("use `postgres://…`, `sqlite:PATH` or a file path"))]
    UnsupportedUrl {
        /// The URL given.
        url: String,
    },

    /// Applying the embedded migrations failed, e.g. the database has a migration this build
    /// does not know (a newer version ran against it).
    #[error("database migration failed")]
    #[diagnostic(code(crm::store::migration))]
    Migration(#[source] sqlx::migrate::MigrateError),

    /// Any other database failure: unreachable server, timeout, I/O error, a value that does not
    /// decode. The kind is a short, safe summary; details are in the source.
    #[error("database error ({kind})")]
    #[diagnostic(code(crm::store::database))]
    Database {
        /// A short summary that is safe to show.
        kind: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
}

/// The message both backends' history triggers raise.
const APPEND_ONLY: &str = "crm_history is append-only";

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if let Some(db) = error.as_database_error() {
            if db.message().contains(APPEND_ONLY) {
                return Self::AppendOnly;
            }
            if db.kind() == ErrorKind::UniqueViolation {
                // PostgreSQL names the table; SQLite says "UNIQUE constraint failed: table.column, …".
                let table = db.table().map(str::to_owned).or_else(|| {
                    let columns = db.message().split_once(": ")?.1;
                    Some(columns.split_once('.')?.0.to_owned())
                });
                return Self::Duplicate { what: duplicate_what(table.as_deref().unwrap_or_default()) };
            }
        }
        let kind = match &error {
            sqlx::Error::Database(db) => match db.kind() {
                ErrorKind::ForeignKeyViolation => "a referenced row does not exist",
                ErrorKind::NotNullViolation | ErrorKind::CheckViolation => "a value violates the schema",
                _ => "refused by the database",
            },
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => "connection failed",
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => "no connection available",
            sqlx::Error::Configuration(_) => "bad configuration",
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::ColumnNotFound(_) => {
                "stored value does not decode"
            }
            _ => "unexpected failure",
        };
        Self::Database { kind, source: error }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        Self::Migration(error)
    }
}

/// The domain name of what a unique key of `table` identifies.
fn duplicate_what(table: &str) -> &'static str {
    match table {
        "crm_definitions" => "definition version",
        "crm_instances" => "instance (id, or definition and subject)",
        "crm_history" => "history sequence number",
        "crm_tokens" => "token id",
        "crm_approval_requests" => "pending approval request",
        "crm_approvals" => "approval response",
        "crm_assignments" => "active assignment",
        "crm_delegations" => "delegation id",
        "crm_outbox" => "outbox item id",
        "crm_timers" => "timer id",
        "crm_sla" => "SLA id",
        "crm_escalations" => "escalation id",
        "crm_contacts" => "contact id",
        "crm_opportunities" => "opportunity id",
        "crm_campaigns" => "campaign id",
        _ => "key",
    }
}
