//! The store, written once for both databases (see [`Backend`] for what differs).
//!
//! Statements use `$n` parameters, which SQLite accepts too. SQL text is always literal or
//! assembled from literal fragments; values are always bound.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};
use sqlx::{Pool, Transaction};

use super::backend::{Backend, Reader, Stmt, micros};
use super::rows::*;
use super::{Store, StoreError, StoreResult};

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

/// Dashboard page size when the query says 0, and the most it may ask for.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

/// `last_error` keeps this many characters of an outbox failure.
const MAX_ERROR_CHARS: usize = 2000;

/// BR-005: delegation chains are followed at most this deep.
const MAX_DELEGATION_DEPTH: i64 = 3;

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

fn checksum(source: &str) -> String {
    Sha256::digest(source.as_bytes()).iter().fold(String::with_capacity(64), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

/// `now + lease`, saturating: an absurd lease means "held for good", not a panic.
fn lease_end(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(lease)
        .ok()
        .and_then(|lease| now.checked_add_signed(lease))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

// ---- Column lists and row readers, in the same order. ----

const DEFINITION_COLS: &str = "id, version, name, source, checksum, active, created_at";

fn definition<DB: Backend>(r: &mut Reader<DB>) -> Decoded<DefinitionRow> {
    Ok(DefinitionRow {
        id: r.text()?,
        version: r.count()?,
        name: r.text()?,
        source: r.text()?,
        checksum: r.text()?,
        active: r.boolean()?,
        created_at: r.time()?,
    })
}

/// Instance columns; statements alias `crm_instances` as `i`.
macro_rules! instance_cols {
    () => {
        "i.id, i.definition_id, i.definition_version, i.entity, i.subject_type, i.subject_id, i.state, \
         i.status, i.data, i.assignee, i.version, i.stage_entered_at, i.started_at, i.updated_at, i.ended_at"
    };
}

fn instance<DB: Backend>(r: &mut Reader<DB>) -> Decoded<InstanceRow> {
    Ok(InstanceRow {
        id: r.text()?,
        definition_id: r.text()?,
        definition_version: r.count()?,
        entity: r.text()?,
        subject_type: r.opt_text()?,
        subject_id: r.opt_text()?,
        state: r.text()?,
        status: r.parsed(InstanceStatus::parse)?,
        data: r.json()?,
        assignee: r.opt_text()?,
        version: r.count()?,
        stage_entered_at: r.time()?,
        started_at: r.time()?,
        updated_at: r.time()?,
        ended_at: r.opt_time()?,
    })
}

fn history<DB: Backend>(r: &mut Reader<DB>) -> Decoded<HistoryRow> {
    Ok(HistoryRow {
        instance_id: r.text()?,
        seq: r.count()?,
        event: r.text()?,
        before: r.opt_json()?,
        after: r.opt_json()?,
        actor_id: r.opt_text()?,
        payload: r.opt_json()?,
        created_at: r.time()?,
    })
}

// ---- `load_state`: one statement, the instance's parts aggregated into JSON arrays. ----

/// The statement behind [`Store::load_state`] in one dialect: `$agg` aggregates objects into a
/// JSON array (in the order given), `$obj` builds an object, and `$json` reads a stored JSON
/// column as JSON rather than text. One statement sees one snapshot on both databases, so no
/// transaction is needed, and the whole state costs one round trip.
macro_rules! load_state_sql {
    ($agg:literal, $obj:literal, $json:literal) => {
        concat!(
            "SELECT ",
            instance_cols!(),
            ", i.runs, COALESCE((SELECT ",
            $agg,
            "(",
            $obj,
            "('id', t.id, 'instance_id', t.instance_id, 'gateway', t.gateway, 'branch', t.branch, \
             'stage', t.stage, 'status', t.status, 'created_at', t.created_at, \
             'entered_at', COALESCE(t.entered_at, t.created_at), 'completed_at', t.completed_at) \
             ORDER BY t.created_at, t.id) FROM crm_tokens t \
             WHERE t.tenant_id = i.tenant_id AND t.instance_id = i.id AND t.ended_at IS NULL), '[]'), \
             COALESCE((SELECT ",
            $agg,
            "(",
            $obj,
            "('instance_id', r.instance_id, 'transition', r.transition, 'round', r.round, 'status', r.status, \
             'assignees', ",
            $json,
            "(r.assignees), 'requested_by', r.requested_by, 'requested_at', r.requested_at, \
             'resolved_at', r.resolved_at, 'responses', ",
            $json,
            "(COALESCE((SELECT ",
            $agg,
            "(",
            $obj,
            "('id', a.id, 'transition', a.transition, 'round', a.round, 'approver', a.approver, \
             'decision', a.decision, 'comment', a.comment, 'created_at', a.created_at) ORDER BY a.created_at, a.id) \
             FROM crm_approvals a WHERE a.tenant_id = r.tenant_id AND a.instance_id = r.instance_id \
             AND a.transition = r.transition AND a.round = r.round), '[]'))) ORDER BY r.requested_at, r.transition) \
             FROM crm_approval_requests r \
             WHERE r.tenant_id = i.tenant_id AND r.instance_id = i.id AND r.status = 'pending'), '[]'), \
             COALESCE((SELECT ",
            $agg,
            "(",
            $obj,
            "('tenant_id', m.tenant_id, 'id', m.id, 'instance_id', m.instance_id, 'type', m.type, \
             'trigger_at', m.trigger_at, 'payload', ",
            $json,
            "(m.payload), 'processed_at', m.processed_at, 'cancelled', m.cancelled, 'locked_by', m.locked_by, \
             'locked_until', m.locked_until) ORDER BY m.trigger_at, m.id) FROM crm_timers m \
             WHERE m.tenant_id = i.tenant_id AND m.instance_id = i.id AND m.processed_at IS NULL), '[]'), \
             COALESCE((SELECT ",
            $agg,
            "(",
            $obj,
            "('id', s.id, 'instance_id', s.instance_id, 'scope', s.scope, 'duration_minutes', s.duration_minutes, \
             'started_at', s.started_at, 'at_risk_at', s.at_risk_at, 'breach_at', s.breach_at, 'status', s.status, \
             'stopped_at', s.stopped_at) ORDER BY s.started_at, s.id) FROM crm_sla s \
             WHERE s.tenant_id = i.tenant_id AND s.instance_id = i.id), '[]'), \
             COALESCE((SELECT ",
            $agg,
            "(",
            $obj,
            "('user_id', g.user_id, 'assigned_by', g.assigned_by, 'assigned_at', g.assigned_at, 'active', g.active)) \
             FROM crm_assignments g WHERE g.tenant_id = i.tenant_id AND g.instance_id = i.id AND g.active), '[]') \
             FROM crm_instances i WHERE i.tenant_id = $1 AND i.id = $2"
        )
    };
}

/// [`load_state_sql!`] for SQLite (JSON columns are text, hence `json(…)`).
pub(super) const SQLITE_LOAD_STATE: &str = load_state_sql!("json_group_array", "json_object", "json");
/// [`load_state_sql!`] for PostgreSQL (`jsonb_agg` of no rows is NULL, hence the `COALESCE`).
pub(super) const PG_LOAD_STATE: &str = load_state_sql!("jsonb_agg", "jsonb_build_object", "");

/// The row of [`load_state_sql!`]: the instance, its runs, then one JSON array per part.
fn state_row<DB: Backend>(r: &mut Reader<DB>) -> Decoded<InstanceState> {
    let instance = instance(r)?;
    let runs = objects(r.json()?, run)?;
    let tokens = objects(r.json()?, |f| {
        Ok(TokenRow {
            id: f.text("id")?,
            instance_id: f.text("instance_id")?,
            gateway: f.text("gateway")?,
            branch: f.text("branch")?,
            stage: f.opt_text("stage")?,
            status: f.parsed("status", TokenStatus::parse)?,
            created_at: f.time("created_at")?,
            entered_at: f.time("entered_at")?,
            completed_at: f.opt_time("completed_at")?,
        })
    })?;
    let approvals = objects(r.json()?, |f| {
        let request = ApprovalRequestRow {
            instance_id: f.text("instance_id")?,
            transition: f.text("transition")?,
            round: f.count("round")?,
            status: f.parsed("status", RequestStatus::parse)?,
            assignees: serde_json::from_value(f.json("assignees"))
                .map_err(|e| sqlx::Error::Decode(e.into()))?,
            requested_by: f.opt_text("requested_by")?,
            requested_at: f.time("requested_at")?,
            resolved_at: f.opt_time("resolved_at")?,
        };
        let responses = objects(f.json("responses"), |f| {
            Ok(ApprovalRow {
                id: f.text("id")?,
                transition: f.text("transition")?,
                round: f.count("round")?,
                approver: f.text("approver")?,
                decision: f.parsed("decision", Decision::parse)?,
                comment: f.opt_text("comment")?,
                created_at: f.time("created_at")?,
            })
        })?;
        Ok(PendingApproval { request, responses })
    })?;
    let timers = objects(r.json()?, |f| {
        Ok(TimerRow {
            tenant: TenantId(f.text("tenant_id")?),
            id: f.text("id")?,
            instance_id: f.text("instance_id")?,
            kind: f.text("type")?,
            trigger_at: f.time("trigger_at")?,
            payload: f.json("payload"),
            processed_at: f.opt_time("processed_at")?,
            cancelled: f.boolean("cancelled")?,
            locked_by: f.opt_text("locked_by")?,
            locked_until: f.opt_time("locked_until")?,
        })
    })?;
    let sla = objects(r.json()?, |f| {
        Ok(SlaRow {
            id: f.text("id")?,
            instance_id: f.text("instance_id")?,
            scope: f.text("scope")?,
            duration_minutes: f.count("duration_minutes")?,
            started_at: f.time("started_at")?,
            at_risk_at: f.opt_time("at_risk_at")?,
            breach_at: f.time("breach_at")?,
            status: f.parsed("status", SlaStatus::parse)?,
            stopped_at: f.opt_time("stopped_at")?,
        })
    })?;
    let assignment = objects(r.json()?, |f| {
        Ok(AssignmentRow {
            user_id: f.text("user_id")?,
            assigned_by: f.opt_text("assigned_by")?,
            assigned_at: f.time("assigned_at")?,
            active: f.boolean("active")?,
        })
    })?
    .pop();
    Ok(InstanceState { instance, runs, tokens, approvals, timers, sla, assignment })
}

fn run(f: &Fields<'_>) -> Decoded<RunRow> {
    Ok(RunRow {
        id: f.text("id")?,
        group: f.text("group")?,
        action: f.text("action")?,
        gateway: f.opt_text("gateway")?,
        branch: f.opt_text("branch")?,
        status: f.parsed("status", RunStatus::parse)?,
    })
}

/// `crm_instances.runs`: the same keys [`run`] reads.
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

/// The objects of an aggregated JSON array, each read with `read`.
fn objects<T>(array: Json, read: impl Fn(&Fields<'_>) -> Decoded<T>) -> Decoded<Vec<T>> {
    match array {
        Json::Array(items) => items
            .iter()
            .map(|item| match item {
                Json::Object(map) => read(&Fields(map)),
                _ => Err(malformed("[]", "an object")),
            })
            .collect(),
        _ => Err(malformed("[]", "an array")),
    }
}

fn malformed(key: &str, what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("field `{key}` is not {what}").into())
}

/// One object of an aggregated array, read by key. Timestamps arrive as text on both databases
/// (SQLite's stored RFC 3339, PostgreSQL's ISO 8601 rendering), booleans as 0/1 or true/false.
struct Fields<'a>(&'a serde_json::Map<String, Json>);

impl Fields<'_> {
    fn get(&self, key: &str) -> Option<&Json> {
        self.0.get(key).filter(|v| !v.is_null())
    }
    fn opt_text(&self, key: &str) -> Decoded<Option<String>> {
        self.get(key).map(|v| v.as_str().map(str::to_owned).ok_or_else(|| malformed(key, "text"))).transpose()
    }
    fn text(&self, key: &str) -> Decoded<String> {
        self.opt_text(key)?.ok_or_else(|| malformed(key, "present"))
    }
    fn count<T: TryFrom<i64>>(&self, key: &str) -> Decoded<T> {
        self.get(key)
            .and_then(Json::as_i64)
            .and_then(|n| T::try_from(n).ok())
            .ok_or_else(|| malformed(key, "a count"))
    }
    fn boolean(&self, key: &str) -> Decoded<bool> {
        match self.get(key) {
            Some(Json::Bool(b)) => Ok(*b),
            Some(Json::Number(n)) => Ok(n.as_i64() != Some(0)),
            _ => Err(malformed(key, "a boolean")),
        }
    }
    fn opt_time(&self, key: &str) -> Decoded<Option<DateTime<Utc>>> {
        self.opt_text(key)?
            .map(|t| {
                DateTime::parse_from_rfc3339(&t)
                    .map(|t| t.to_utc())
                    .map_err(|_| malformed(key, "a timestamp"))
            })
            .transpose()
    }
    fn time(&self, key: &str) -> Decoded<DateTime<Utc>> {
        self.opt_time(key)?.ok_or_else(|| malformed(key, "a timestamp"))
    }
    fn json(&self, key: &str) -> Json {
        self.0.get(key).cloned().unwrap_or(Json::Null)
    }
    fn parsed<T>(&self, key: &str, parse: fn(&str) -> Option<T>) -> Decoded<T> {
        let text = self.text(key)?;
        parse(&text).ok_or_else(|| malformed(key, "a known value"))
    }
}

const TIMER_COLS: &str =
    "tenant_id, id, instance_id, type, trigger_at, payload, processed_at, cancelled, locked_by, locked_until";

fn timer<DB: Backend>(r: &mut Reader<DB>) -> Decoded<TimerRow> {
    Ok(TimerRow {
        tenant: TenantId(r.text()?),
        id: r.text()?,
        instance_id: r.text()?,
        kind: r.text()?,
        trigger_at: r.time()?,
        payload: r.json()?,
        processed_at: r.opt_time()?,
        cancelled: r.boolean()?,
        locked_by: r.opt_text()?,
        locked_until: r.opt_time()?,
    })
}

fn escalation<DB: Backend>(r: &mut Reader<DB>) -> Decoded<EscalationRow> {
    Ok(EscalationRow {
        id: r.text()?,
        instance_id: r.text()?,
        level: r.count()?,
        from_user_id: r.opt_text()?,
        to_user_id: r.opt_text()?,
        reason: r.text()?,
        escalated_at: r.time()?,
    })
}

const DELEGATION_COLS: &str = "id, delegator, delegatee, start_date, end_date, entity, created_at";

fn delegation<DB: Backend>(r: &mut Reader<DB>) -> Decoded<DelegationRow> {
    Ok(DelegationRow {
        id: r.text()?,
        delegator: r.text()?,
        delegatee: r.text()?,
        start_date: r.opt_date()?,
        end_date: r.opt_date()?,
        entity: r.opt_text()?,
        created_at: r.time()?,
    })
}

const OUTBOX_COLS: &str = "tenant_id, id, instance_id, kind, name, payload, status, attempts, next_attempt_at, \
                           locked_by, created_at, processed_at, last_error";

fn outbox<DB: Backend>(r: &mut Reader<DB>) -> Decoded<OutboxRow> {
    Ok(OutboxRow {
        tenant: TenantId(r.text()?),
        id: r.text()?,
        instance_id: r.opt_text()?,
        kind: r.parsed(OutboxKind::parse)?,
        name: r.text()?,
        payload: r.json()?,
        status: r.parsed(OutboxStatus::parse)?,
        attempts: r.count()?,
        next_attempt_at: r.time()?,
        locked_by: r.opt_text()?,
        created_at: r.time()?,
        processed_at: r.opt_time()?,
        last_error: r.opt_text()?,
    })
}

const CONTACT_COLS: &str =
    "id, instance_id, name, email, phone, company, status, score, data, created_at, updated_at";

fn contact<DB: Backend>(r: &mut Reader<DB>) -> Decoded<Stored<Contact>> {
    let value = Contact {
        id: r.text()?,
        instance_id: r.opt_text()?,
        name: r.text()?,
        email: r.opt_text()?,
        phone: r.opt_text()?,
        company: r.opt_text()?,
        status: r.text()?,
        score: r.opt_real()?,
        data: r.json()?,
    };
    Ok(Stored { value, created_at: r.time()?, updated_at: r.time()? })
}

const OPPORTUNITY_COLS: &str = "id, contact_id, instance_id, stage, value, currency, close_date, probability, data, \
                                created_at, updated_at";

fn opportunity<DB: Backend>(r: &mut Reader<DB>) -> Decoded<Stored<Opportunity>> {
    let value = Opportunity {
        id: r.text()?,
        contact_id: r.text()?,
        instance_id: r.opt_text()?,
        stage: r.text()?,
        value: r.real()?,
        currency: r.text()?,
        close_date: r.opt_date()?,
        probability: r.real()?,
        data: r.json()?,
    };
    Ok(Stored { value, created_at: r.time()?, updated_at: r.time()? })
}

const CAMPAIGN_COLS: &str =
    "id, instance_id, name, type, start_date, end_date, metrics, status, created_at, updated_at";

fn campaign<DB: Backend>(r: &mut Reader<DB>) -> Decoded<Stored<Campaign>> {
    let value = Campaign {
        id: r.text()?,
        instance_id: r.opt_text()?,
        name: r.text()?,
        kind: r.text()?,
        start_date: r.opt_date()?,
        end_date: r.opt_date()?,
        metrics: r.json()?,
        status: r.text()?,
    };
    Ok(Stored { value, created_at: r.time()?, updated_at: r.time()? })
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
    ) -> StoreResult<Deployed> {
        let checksum = checksum(source);
        let now = Utc::now();
        self.write_tx(async |conn: &mut Conn<DB>| {
            let latest = fetch::<DB, _>(
                conn,
                Stmt::new(
                    "SELECT version, checksum FROM crm_definitions WHERE tenant_id = $1 AND id = $2 \
                     ORDER BY version DESC LIMIT 1",
                )
                .arg(tenant.as_str())
                .arg(id),
                |r| Ok((r.count::<u64>()?, r.text()?)),
            )
            .await?
            .pop();
            if let Some((version, existing)) = &latest
                && *existing == checksum
            {
                return Ok(Deployed { version: *version, created: false });
            }
            let version = latest.map_or(1, |(version, _)| version + 1);
            DB::execute(
                conn,
                Stmt::new("UPDATE crm_definitions SET active = FALSE WHERE tenant_id = $1 AND id = $2 AND active")
                    .arg(tenant.as_str())
                    .arg(id),
            )
            .await?;
            DB::execute(
                conn,
                Stmt::new(
                    "INSERT INTO crm_definitions (tenant_id, id, version, name, source, checksum, active, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, TRUE, $7)",
                )
                .arg(tenant.as_str())
                .arg(id)
                .arg(version)
                .arg(name)
                .arg(source)
                .arg(&checksum)
                .arg(now),
            )
            .await?;
            Ok(Deployed { version, created: true })
        })
        .await
    }

    async fn definition(
        &self,
        tenant: &TenantId,
        id: &str,
        version: Option<u64>,
    ) -> StoreResult<Option<DefinitionRow>> {
        let stmt = match version {
            Some(version) => Stmt::new(concat_sql!(
                "SELECT ",
                DEFINITION_COLS,
                " FROM crm_definitions WHERE tenant_id = $1 AND id = $2 AND version = $3"
            ))
            .arg(tenant.as_str())
            .arg(id)
            .arg(version),
            None => Stmt::new(concat_sql!(
                "SELECT ",
                DEFINITION_COLS,
                " FROM crm_definitions WHERE tenant_id = $1 AND id = $2 \
                 ORDER BY version DESC LIMIT 1"
            ))
            .arg(tenant.as_str())
            .arg(id),
        };
        self.read_one(stmt, definition).await
    }

    async fn definitions(&self, tenant: &TenantId) -> StoreResult<Vec<DefinitionRow>> {
        let stmt = Stmt::new(concat_sql!(
            "SELECT ",
            DEFINITION_COLS,
            " FROM crm_definitions d WHERE tenant_id = $1 AND version = \
             (SELECT MAX(version) FROM crm_definitions m WHERE m.tenant_id = d.tenant_id AND m.id = d.id) \
             ORDER BY id"
        ))
        .arg(tenant.as_str());
        self.read_all(stmt, definition).await
    }

    async fn load_instance(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<InstanceRow>> {
        let stmt = Stmt::new(concat!(
            "SELECT ",
            instance_cols!(),
            " FROM crm_instances i WHERE i.tenant_id = $1 AND i.id = $2"
        ))
        .arg(tenant.as_str())
        .arg(id);
        self.read_one(stmt, instance).await
    }

    async fn load_state(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<InstanceState>> {
        let stmt = Stmt::new(DB::LOAD_STATE).arg(tenant.as_str()).arg(id);
        self.read_one(stmt, state_row).await
    }

    async fn commit(&self, tenant: &TenantId, commit: Commit) -> StoreResult<u64> {
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
        self.write_tx(async |conn: &mut Conn<DB>| apply::<DB>(conn, tenant.as_str(), &commit).await).await
    }

    async fn history(&self, tenant: &TenantId, instance_id: &str) -> StoreResult<Vec<HistoryRow>> {
        let stmt = Stmt::new(
            "SELECT instance_id, seq, event, before, after, actor_id, payload, created_at FROM crm_history \
             WHERE tenant_id = $1 AND instance_id = $2 ORDER BY seq",
        )
        .arg(tenant.as_str())
        .arg(instance_id);
        self.read_all(stmt, history).await
    }

    async fn escalations(&self, tenant: &TenantId, instance_id: &str) -> StoreResult<Vec<EscalationRow>> {
        let stmt = Stmt::new(
            "SELECT id, instance_id, level, from_user_id, to_user_id, reason, escalated_at FROM crm_escalations \
             WHERE tenant_id = $1 AND instance_id = $2 ORDER BY escalated_at, id",
        )
        .arg(tenant.as_str())
        .arg(instance_id);
        self.read_all(stmt, escalation).await
    }

    async fn pending_for_user(
        &self,
        tenant: &TenantId,
        user: &str,
        query: &PendingQuery,
    ) -> StoreResult<Page<PendingItem>> {
        let limit = match query.limit {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let after = query.after.as_ref().map(|c| parse_cursor(c, query)).transpose()?;
        let today = query.today.unwrap_or_else(|| Utc::now().date_naive());
        let mut conn = self.read.acquire().await?;

        // Who `user` stands in for today; each arm below is one index range scan.
        let principals = fetch::<DB, _>(&mut *conn, principals_stmt(tenant.as_str(), user, today), |r| {
            Ok((r.text()?, r.opt_text()?))
        })
        .await?;
        let mut arms = vec![(user.to_owned(), None, PendingReason::Assigned)];
        arms.extend(principals.into_iter().filter(|(who, _)| who != user).map(|(who, scope)| {
            let reason = PendingReason::Delegated { from: who.clone() };
            (who, scope, reason)
        }));

        let mut found: Vec<PendingItem> = Vec::new();
        for (assignee, scope, reason) in arms {
            let entity = match (&scope, &query.entity) {
                (Some(scope), Some(wanted)) if scope != wanted => continue,
                (Some(scope), _) => Some(scope),
                (None, wanted) => wanted.as_ref(),
            };
            let stmt = assigned_stmt(tenant.as_str(), &assignee, entity, query, after.as_ref(), limit);
            let rows = fetch::<DB, _>(&mut *conn, stmt, instance).await?;
            found.extend(rows.into_iter().map(|instance| PendingItem { instance, reason: reason.clone() }));
        }
        let stmt = approvals_stmt::<DB>(tenant.as_str(), user, query, after.as_ref(), limit);
        let rows = fetch::<DB, _>(&mut *conn, stmt, |r| {
            let instance = instance(r)?;
            Ok(PendingItem { instance, reason: PendingReason::Approval { transition: r.text()? } })
        })
        .await?;
        found.extend(rows);
        Ok(page(found, query, limit))
    }

    async fn add_delegation(&self, tenant: &TenantId, d: &DelegationRow) -> StoreResult<()> {
        let stmt = Stmt::new(
            "INSERT INTO crm_delegations (tenant_id, id, delegator, delegatee, start_date, end_date, entity, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .arg(tenant.as_str())
        .arg(&d.id)
        .arg(&d.delegator)
        .arg(&d.delegatee)
        .arg(d.start_date)
        .arg(d.end_date)
        .arg(d.entity.as_ref())
        .arg(d.created_at);
        self.write_one(stmt).await.map(drop)
    }

    async fn remove_delegation(&self, tenant: &TenantId, id: &str) -> StoreResult<()> {
        let stmt = Stmt::new("DELETE FROM crm_delegations WHERE tenant_id = $1 AND id = $2")
            .arg(tenant.as_str())
            .arg(id);
        match self.write_one(stmt).await? {
            0 => Err(StoreError::NotFound { what: "delegation", id: id.to_owned() }),
            _ => Ok(()),
        }
    }

    async fn delegations(&self, tenant: &TenantId) -> StoreResult<Vec<DelegationRow>> {
        let stmt = Stmt::new(concat_sql!(
            "SELECT ",
            DELEGATION_COLS,
            " FROM crm_delegations WHERE tenant_id = $1 ORDER BY created_at, id"
        ))
        .arg(tenant.as_str());
        self.read_all(stmt, delegation).await
    }

    async fn due_timers(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        worker: &str,
        lease: Duration,
    ) -> StoreResult<Vec<TimerRow>> {
        let mut stmt = Stmt::new(
            "UPDATE crm_timers SET locked_by = $1, locked_until = $2 WHERE (tenant_id, id) IN (\
             SELECT tenant_id, id FROM crm_timers WHERE processed_at IS NULL AND trigger_at <= $3 \
             AND (locked_until IS NULL OR locked_until <= $3) ORDER BY trigger_at LIMIT $4",
        )
        .arg(worker)
        .arg(lease_end(now, lease))
        .arg(now)
        .arg(limit);
        stmt.push(DB::SKIP_LOCKED).push(concat_sql!(") RETURNING ", TIMER_COLS));
        let mut timers = self.write_rows(stmt, timer).await?;
        timers.sort_by(|a, b| (a.trigger_at, &a.id).cmp(&(b.trigger_at, &b.id)));
        Ok(timers)
    }

    async fn mark_timer_processed(&self, tenant: &TenantId, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let stmt = Stmt::new(
            "UPDATE crm_timers SET processed_at = $3, locked_until = NULL \
             WHERE tenant_id = $1 AND id = $2 AND processed_at IS NULL",
        )
        .arg(tenant.as_str())
        .arg(id)
        .arg(at);
        match self.write_one(stmt).await? {
            0 => Err(StoreError::NotFound { what: "pending timer", id: id.to_owned() }),
            _ => Ok(()),
        }
    }

    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        worker: &str,
        lease: Duration,
    ) -> StoreResult<Vec<OutboxRow>> {
        let mut stmt = Stmt::new(
            "UPDATE crm_outbox SET locked_by = $1, next_attempt_at = $2 WHERE (tenant_id, id) IN (\
             SELECT tenant_id, id FROM crm_outbox WHERE status = 'pending' AND next_attempt_at <= $3 \
             ORDER BY next_attempt_at LIMIT $4",
        )
        .arg(worker)
        .arg(lease_end(now, lease))
        .arg(now)
        .arg(limit);
        stmt.push(DB::SKIP_LOCKED).push(concat_sql!(") RETURNING ", OUTBOX_COLS));
        let mut items = self.write_rows(stmt, outbox).await?;
        items.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(items)
    }

    async fn outbox_done(&self, tenant: &TenantId, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let stmt = Stmt::new(
            "UPDATE crm_outbox SET status = 'done', processed_at = $3 \
             WHERE tenant_id = $1 AND id = $2 AND status = 'pending'",
        )
        .arg(tenant.as_str())
        .arg(id)
        .arg(at);
        match self.write_one(stmt).await? {
            0 => Err(StoreError::NotFound { what: "pending outbox item", id: id.to_owned() }),
            _ => Ok(()),
        }
    }

    async fn outbox_failed(
        &self,
        tenant: &TenantId,
        id: &str,
        at: DateTime<Utc>,
        failure: &OutboxFailure,
    ) -> StoreResult<()> {
        let (status, processed_at) =
            if failure.dead { (OutboxStatus::Dead, Some(at)) } else { (OutboxStatus::Pending, None) };
        let error: String = failure.error.chars().take(MAX_ERROR_CHARS).collect();
        let stmt = Stmt::new(
            "UPDATE crm_outbox SET attempts = attempts + 1, last_error = $3, next_attempt_at = $4, status = $5, \
             processed_at = $6 WHERE tenant_id = $1 AND id = $2 AND status = 'pending'",
        )
        .arg(tenant.as_str())
        .arg(id)
        .arg(error)
        .arg(failure.next_attempt_at)
        .arg(status.as_str())
        .arg(processed_at);
        match self.write_one(stmt).await? {
            0 => Err(StoreError::NotFound { what: "pending outbox item", id: id.to_owned() }),
            _ => Ok(()),
        }
    }

    async fn outbox_item(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<OutboxRow>> {
        let stmt = Stmt::new(concat_sql!(
            "SELECT ",
            OUTBOX_COLS,
            " FROM crm_outbox WHERE tenant_id = $1 AND id = $2"
        ))
        .arg(tenant.as_str())
        .arg(id);
        self.read_one(stmt, outbox).await
    }

    async fn contact(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<Stored<Contact>>> {
        let stmt = Stmt::new(concat_sql!(
            "SELECT ",
            CONTACT_COLS,
            " FROM crm_contacts WHERE tenant_id = $1 AND id = $2"
        ))
        .arg(tenant.as_str())
        .arg(id);
        self.read_one(stmt, contact).await
    }

    async fn contacts(&self, tenant: &TenantId, query: &EntityQuery) -> StoreResult<Vec<Stored<Contact>>> {
        let stmt =
            entity_list(concat_sql!("SELECT ", CONTACT_COLS, " FROM crm_contacts"), "status", tenant, query);
        self.read_all(stmt, contact).await
    }

    async fn opportunity(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<Stored<Opportunity>>> {
        let stmt = Stmt::new(concat_sql!(
            "SELECT ",
            OPPORTUNITY_COLS,
            " FROM crm_opportunities WHERE tenant_id = $1 AND id = $2"
        ))
        .arg(tenant.as_str())
        .arg(id);
        self.read_one(stmt, opportunity).await
    }

    async fn opportunities(
        &self,
        tenant: &TenantId,
        query: &EntityQuery,
    ) -> StoreResult<Vec<Stored<Opportunity>>> {
        let stmt = entity_list(
            concat_sql!("SELECT ", OPPORTUNITY_COLS, " FROM crm_opportunities"),
            "stage",
            tenant,
            query,
        );
        self.read_all(stmt, opportunity).await
    }

    async fn campaign(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<Stored<Campaign>>> {
        let stmt = Stmt::new(concat_sql!(
            "SELECT ",
            CAMPAIGN_COLS,
            " FROM crm_campaigns WHERE tenant_id = $1 AND id = $2"
        ))
        .arg(tenant.as_str())
        .arg(id);
        self.read_one(stmt, campaign).await
    }

    async fn campaigns(&self, tenant: &TenantId, query: &EntityQuery) -> StoreResult<Vec<Stored<Campaign>>> {
        let stmt = entity_list(
            concat_sql!("SELECT ", CAMPAIGN_COLS, " FROM crm_campaigns"),
            "status",
            tenant,
            query,
        );
        self.read_all(stmt, campaign).await
    }
}

impl<DB: Backend> SqlStore<DB> {
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

/// Writes every part of `commit` in the current transaction: the instance first (the other rows
/// reference it, and its version check must fail before anything else can), then the rest.
async fn apply<DB: Backend>(conn: &mut Conn<DB>, tenant: &str, commit: &Commit) -> StoreResult<u64> {
    let at = micros(commit.at);
    let instance_id = commit.instance.as_ref().map(InstanceWrite::id);
    // History and outbox rows depend on nothing else in the commit and only fail by raising, so
    // they travel together in one call (see `batch`).
    let mut appends = append_stmts(tenant, instance_id, at, commit);
    let version = match &commit.instance {
        Some(InstanceWrite::Insert(new)) => {
            insert_instance::<DB>(conn, tenant, new, at).await?;
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
        let scope = Scope { tenant, instance: instance_id, at };
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
            DB::execute(
                conn,
                scope
                    .stamped(
                        "INSERT INTO crm_escalations (tenant_id, instance_id, escalated_at, id, level, from_user_id, \
                         to_user_id, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .arg(&new.id)
                    .arg(new.level)
                    .arg(new.from_user_id.as_ref())
                    .arg(new.to_user_id.as_ref())
                    .arg(&new.reason),
            )
            .await?;
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
    Ok(version)
}

/// The history and outbox inserts of `commit`, in order. Each is an `INSERT … SELECT … FROM … AS v`
/// without a `WHERE`, so a condition can be appended, and inserts exactly the rows it lists.
fn append_stmts(tenant: &str, instance_id: Option<&str>, at: DateTime<Utc>, commit: &Commit) -> Vec<Stmt> {
    let mut stmts = Vec::new();
    if let Some(instance) = instance_id {
        history_inserts(&Scope { tenant, instance, at }, &commit.history, &mut stmts);
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

/// Rows per multi-row `INSERT`: few statements per commit, far below both databases' limits on
/// bound parameters.
const ROWS_PER_INSERT: usize = 100;

/// The tenant, instance and time every instance-scoped row of a commit shares.
struct Scope<'a> {
    tenant: &'a str,
    instance: &'a str,
    at: DateTime<Utc>,
}

impl Scope<'_> {
    /// A statement with the tenant as `$1` and the instance as `$2`.
    fn stmt(&self, sql: &'static str) -> Stmt {
        Stmt::new(sql).arg(self.tenant).arg(self.instance)
    }

    /// A statement with the tenant as `$1`, the instance as `$2` and the commit's time as `$3`.
    fn stamped(&self, sql: &'static str) -> Stmt {
        self.stmt(sql).arg(self.at)
    }
}

async fn insert_instance<DB: Backend>(
    conn: &mut Conn<DB>,
    tenant: &str,
    new: &NewInstance,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let completed = new.status == InstanceStatus::Completed;
    let stmt = Stmt::new(
        "INSERT INTO crm_instances (tenant_id, id, definition_id, definition_version, entity, subject_type, \
         subject_id, state, status, data, assignee, version, stage_entered_at, started_at, updated_at, ended_at, \
         runs) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, $12, $12, $13, $14)",
    )
    .arg(tenant)
    .arg(&new.id)
    .arg(&new.definition_id)
    .arg(new.definition_version)
    .arg(&new.entity)
    .arg(new.subject_type.as_ref())
    .arg(new.subject_id.as_ref())
    .arg(&new.state)
    .arg(new.status.as_str())
    .arg(&new.data)
    .arg(new.assignee.as_ref())
    .arg(at)
    .arg(completed.then_some(at))
    .arg(runs_json(&new.runs));
    DB::execute(conn, stmt).await?;
    Ok(())
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
    .arg(&update.state)
    .arg(update.status.as_str())
    .arg(&update.data)
    .arg(update.assignee.as_ref())
    .arg(update.stage_entered_at)
    .arg(update.ended_at)
    .arg(at)
    .arg(runs_json(&update.runs))
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

/// Applies token writes in order; consecutive starts (a fork) go in one statement.
async fn write_tokens<DB: Backend>(
    conn: &mut Conn<DB>,
    scope: &Scope<'_>,
    writes: &[TokenWrite],
) -> StoreResult<()> {
    let mut rest = writes;
    while let Some(first) = rest.first() {
        let starts =
            rest.iter().take_while(|w| matches!(w, TokenWrite::Start { .. })).count().min(ROWS_PER_INSERT);
        if starts == 0 {
            write_token::<DB>(conn, scope, first).await?;
            rest = &rest[1..];
            continue;
        }
        let mut stmt = scope.stamped(
            "INSERT INTO crm_tokens (tenant_id, instance_id, created_at, entered_at, status, id, gateway, branch, \
             stage) VALUES ",
        );
        for (n, write) in rest[..starts].iter().enumerate() {
            if let TokenWrite::Start { id, gateway, branch, stage } = write {
                stmt.push(if n == 0 {
                    "($1, $2, $3, $3, 'active', "
                } else {
                    ", ($1, $2, $3, $3, 'active', "
                });
                stmt.bind(id).push(", ").bind(gateway).push(", ").bind(branch).push(", ");
                stmt.bind(stage.as_ref()).push(")");
            }
        }
        DB::execute(conn, stmt).await?;
        rest = &rest[starts..];
    }
    Ok(())
}

/// One token write other than a start.
async fn write_token<DB: Backend>(
    conn: &mut Conn<DB>,
    scope: &Scope<'_>,
    write: &TokenWrite,
) -> StoreResult<()> {
    match write {
        TokenWrite::Start { id, gateway, branch, stage } => {
            let stmt = scope
                .stamped(
                    "INSERT INTO crm_tokens (tenant_id, instance_id, created_at, entered_at, status, id, gateway, \
                     branch, stage) VALUES ($1, $2, $3, $3, 'active', $4, $5, $6, $7)",
                )
                .arg(id)
                .arg(gateway)
                .arg(branch)
                .arg(stage.as_ref());
            DB::execute(conn, stmt).await?;
            Ok(())
        }
        TokenWrite::Set { id, stage, status, entered_at } => {
            let stmt = scope
                .stamped(
                    "UPDATE crm_tokens SET stage = $5, status = $6, entered_at = $7, \
                     completed_at = CASE WHEN $6 = 'active' THEN NULL ELSE $3 END \
                     WHERE tenant_id = $1 AND instance_id = $2 AND id = $4 AND status = 'active' \
                     AND ended_at IS NULL",
                )
                .arg(id)
                .arg(stage.as_ref())
                .arg(status.as_str())
                .arg(*entered_at);
            exactly_one::<DB>(conn, stmt, "active token", id).await
        }
        TokenWrite::End { status } => {
            let stmt = scope
                .stamped(
                    "UPDATE crm_tokens SET ended_at = $3, \
                     completed_at = CASE WHEN status = 'active' THEN $3 ELSE completed_at END, \
                     status = CASE WHEN status = 'active' THEN $4 ELSE status END \
                     WHERE tenant_id = $1 AND instance_id = $2 AND ended_at IS NULL",
                )
                .arg(status.as_str());
            DB::execute(conn, stmt).await?;
            Ok(())
        }
    }
}

async fn write_approval<DB: Backend>(
    conn: &mut Conn<DB>,
    scope: &Scope<'_>,
    write: &ApprovalWrite,
) -> StoreResult<()> {
    match write {
        ApprovalWrite::Request { transition, assignees, requested_by } => {
            let stmt = scope
                .stamped(
                    "INSERT INTO crm_approval_requests (tenant_id, instance_id, requested_at, transition, round, \
                     status, assignees, requested_by) SELECT $1, $2, $3, $4, COALESCE(MAX(round), 0) + 1, 'pending', \
                     $5, $6 FROM crm_approval_requests WHERE tenant_id = $1 AND instance_id = $2 AND transition = $4",
                )
                .arg(transition)
                .arg(Json::from(assignees.clone()))
                .arg(requested_by.as_ref());
            DB::execute(conn, stmt).await?;
            Ok(())
        }
        ApprovalWrite::Respond { id, transition, approver, decision, comment } => {
            let stmt = scope
                .stamped(
                    "INSERT INTO crm_approvals (tenant_id, instance_id, created_at, id, transition, round, approver, \
                     decision, comment) SELECT $1, $2, $3, $4, $5, round, $6, $7, $8 FROM crm_approval_requests \
                     WHERE tenant_id = $1 AND instance_id = $2 AND transition = $5 AND status = 'pending'",
                )
                .arg(id)
                .arg(transition)
                .arg(approver)
                .arg(decision.as_str())
                .arg(comment.as_ref());
            exactly_one::<DB>(conn, stmt, "pending approval request for transition", transition).await
        }
        ApprovalWrite::Resolve { transition, status } => {
            let stmt = scope
                .stamped(
                    "UPDATE crm_approval_requests SET status = $5, resolved_at = $3 \
                     WHERE tenant_id = $1 AND instance_id = $2 AND transition = $4 AND status = 'pending'",
                )
                .arg(transition)
                .arg(status.as_str());
            exactly_one::<DB>(conn, stmt, "pending approval request for transition", transition).await
        }
    }
}

async fn write_timer<DB: Backend>(
    conn: &mut Conn<DB>,
    scope: &Scope<'_>,
    write: &TimerWrite,
) -> StoreResult<()> {
    match write {
        TimerWrite::Schedule { id, kind, trigger_at, payload } => {
            let stmt = scope
                .stmt(
                    "INSERT INTO crm_timers (tenant_id, instance_id, id, type, trigger_at, payload) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .arg(id)
                .arg(kind)
                .arg(*trigger_at)
                .arg(payload);
            DB::execute(conn, stmt).await?;
            Ok(())
        }
        TimerWrite::Cancel { id } => {
            let stmt = scope
                .stamped(
                    "UPDATE crm_timers SET processed_at = $3, cancelled = TRUE \
                     WHERE tenant_id = $1 AND instance_id = $2 AND id = $4 AND processed_at IS NULL",
                )
                .arg(id);
            exactly_one::<DB>(conn, stmt, "pending timer", id).await
        }
        TimerWrite::CancelKind { kind } => {
            let stmt = scope
                .stamped(
                    "UPDATE crm_timers SET processed_at = $3, cancelled = TRUE \
                     WHERE tenant_id = $1 AND instance_id = $2 AND type = $4 AND processed_at IS NULL",
                )
                .arg(kind);
            DB::execute(conn, stmt).await?;
            Ok(())
        }
        TimerWrite::Fired { id } => {
            let stmt = scope
                .stamped(
                    "UPDATE crm_timers SET processed_at = $3, locked_until = NULL \
                     WHERE tenant_id = $1 AND instance_id = $2 AND id = $4 AND processed_at IS NULL",
                )
                .arg(id);
            exactly_one::<DB>(conn, stmt, "pending timer", id).await
        }
    }
}

async fn write_sla<DB: Backend>(conn: &mut Conn<DB>, scope: &Scope<'_>, write: &SlaWrite) -> StoreResult<()> {
    match write {
        SlaWrite::Start { id, scope: measured, duration_minutes, started_at, at_risk_at, breach_at } => {
            let stmt = scope
                .stmt(
                    "INSERT INTO crm_sla (tenant_id, instance_id, id, scope, duration_minutes, started_at, \
                     at_risk_at, breach_at, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'on_track')",
                )
                .arg(id)
                .arg(measured)
                .arg(*duration_minutes)
                .arg(*started_at)
                .arg(*at_risk_at)
                .arg(*breach_at);
            DB::execute(conn, stmt).await?;
            Ok(())
        }
        SlaWrite::Set { id, status, stopped_at } => {
            let stmt = scope
                .stmt(
                    "UPDATE crm_sla SET status = $4, stopped_at = $5 \
                     WHERE tenant_id = $1 AND instance_id = $2 AND id = $3",
                )
                .arg(id)
                .arg(status.as_str())
                .arg(*stopped_at);
            // A clock is a report derived from the timers, which are what enforce the SLA; one
            // missing (an instance from before clocks were recorded) must not block the instance.
            DB::execute(conn, stmt).await?;
            Ok(())
        }
    }
}

async fn write_assignment<DB: Backend>(
    conn: &mut Conn<DB>,
    scope: &Scope<'_>,
    change: &AssignmentChange,
) -> StoreResult<()> {
    let retire = scope.stmt(
        "UPDATE crm_assignments SET active = FALSE WHERE tenant_id = $1 AND instance_id = $2 AND active",
    );
    DB::execute(conn, retire).await?;
    if let AssignmentChange::Assign { user_id, assigned_by } = change {
        let stmt = scope
            .stamped(
                "INSERT INTO crm_assignments (tenant_id, instance_id, assigned_at, user_id, assigned_by, active) \
                 VALUES ($1, $2, $3, $4, $5, TRUE)",
            )
            .arg(user_id)
            .arg(assigned_by.as_ref());
        DB::execute(conn, stmt).await?;
    }
    Ok(())
}

async fn write_contact<DB: Backend>(
    conn: &mut Conn<DB>,
    tenant: &str,
    write: &EntityWrite<Contact>,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let (sql, c, insert) = match write {
        EntityWrite::Insert(c) => (
            "INSERT INTO crm_contacts (tenant_id, id, updated_at, instance_id, name, email, phone, company, status, \
             score, data, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $3)",
            c,
            true,
        ),
        EntityWrite::Update(c) => (
            "UPDATE crm_contacts SET updated_at = $3, instance_id = $4, name = $5, email = $6, phone = $7, \
             company = $8, status = $9, score = $10, data = $11 WHERE tenant_id = $1 AND id = $2",
            c,
            false,
        ),
    };
    let stmt = Stmt::new(sql)
        .arg(tenant)
        .arg(&c.id)
        .arg(at)
        .arg(c.instance_id.as_ref())
        .arg(&c.name)
        .arg(c.email.as_ref())
        .arg(c.phone.as_ref())
        .arg(c.company.as_ref())
        .arg(&c.status)
        .arg(c.score)
        .arg(&c.data);
    entity_written::<DB>(conn, stmt, insert, "contact", &c.id).await
}

async fn write_opportunity<DB: Backend>(
    conn: &mut Conn<DB>,
    tenant: &str,
    write: &EntityWrite<Opportunity>,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let (sql, o, insert) = match write {
        EntityWrite::Insert(o) => (
            "INSERT INTO crm_opportunities (tenant_id, id, updated_at, contact_id, instance_id, stage, value, \
             currency, close_date, probability, data, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $3)",
            o,
            true,
        ),
        EntityWrite::Update(o) => (
            "UPDATE crm_opportunities SET updated_at = $3, contact_id = $4, instance_id = $5, stage = $6, \
             value = $7, currency = $8, close_date = $9, probability = $10, data = $11 \
             WHERE tenant_id = $1 AND id = $2",
            o,
            false,
        ),
    };
    let stmt = Stmt::new(sql)
        .arg(tenant)
        .arg(&o.id)
        .arg(at)
        .arg(&o.contact_id)
        .arg(o.instance_id.as_ref())
        .arg(&o.stage)
        .arg(o.value)
        .arg(&o.currency)
        .arg(o.close_date)
        .arg(o.probability)
        .arg(&o.data);
    entity_written::<DB>(conn, stmt, insert, "opportunity", &o.id).await
}

async fn write_campaign<DB: Backend>(
    conn: &mut Conn<DB>,
    tenant: &str,
    write: &EntityWrite<Campaign>,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let (sql, c, insert) = match write {
        EntityWrite::Insert(c) => (
            "INSERT INTO crm_campaigns (tenant_id, id, updated_at, instance_id, name, type, start_date, end_date, \
             metrics, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $3)",
            c,
            true,
        ),
        EntityWrite::Update(c) => (
            "UPDATE crm_campaigns SET updated_at = $3, instance_id = $4, name = $5, type = $6, start_date = $7, \
             end_date = $8, metrics = $9, status = $10 WHERE tenant_id = $1 AND id = $2",
            c,
            false,
        ),
    };
    let stmt = Stmt::new(sql)
        .arg(tenant)
        .arg(&c.id)
        .arg(at)
        .arg(c.instance_id.as_ref())
        .arg(&c.name)
        .arg(&c.kind)
        .arg(c.start_date)
        .arg(c.end_date)
        .arg(&c.metrics)
        .arg(&c.status);
    entity_written::<DB>(conn, stmt, insert, "campaign", &c.id).await
}

/// An insert either works or raises; an update must find its row.
async fn entity_written<DB: Backend>(
    conn: &mut Conn<DB>,
    stmt: Stmt,
    insert: bool,
    what: &'static str,
    id: &str,
) -> StoreResult<()> {
    if insert {
        DB::execute(conn, stmt).await?;
        Ok(())
    } else {
        exactly_one::<DB>(conn, stmt, what, id).await
    }
}

fn entity_list(
    select: &'static str,
    status_column: &'static str,
    tenant: &TenantId,
    query: &EntityQuery,
) -> Stmt {
    let mut stmt = Stmt::new(select);
    stmt.push(" WHERE tenant_id = ").bind(tenant.as_str());
    if let Some(status) = &query.status {
        stmt.push(" AND ").push(status_column).push(" = ").bind(status);
    }
    if let Some(after) = &query.after {
        stmt.push(" AND id > ").bind(after);
    }
    let limit = match query.limit {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    };
    stmt.push(" ORDER BY id LIMIT ").bind(limit);
    stmt
}

// ---- The dashboard. ----

/// The users `user` stands in for today through delegations, with the entity each chain is
/// limited to (`NULL`: all), following chains at most [`MAX_DELEGATION_DEPTH`] deep.
fn principals_stmt(tenant: &str, user: &str, today: NaiveDate) -> Stmt {
    Stmt::new(
        "WITH RECURSIVE chain (user_id, scope, depth) AS (\
            SELECT CAST($2 AS TEXT), CAST(NULL AS TEXT), 0 \
            UNION ALL \
            SELECT d.delegator, COALESCE(c.scope, d.entity), c.depth + 1 \
            FROM chain c JOIN crm_delegations d ON d.tenant_id = $1 AND d.delegatee = c.user_id \
            WHERE c.depth < $4 \
              AND (d.start_date IS NULL OR d.start_date <= $3) AND (d.end_date IS NULL OR d.end_date >= $3) \
              AND (c.scope IS NULL OR d.entity IS NULL OR d.entity = c.scope)\
         ) \
         SELECT DISTINCT user_id, scope FROM chain WHERE depth > 0 ORDER BY user_id, scope",
    )
    .arg(tenant)
    .arg(user)
    .arg(today)
    .arg(MAX_DELEGATION_DEPTH)
}

fn sort_column(sort: SortKey) -> &'static str {
    match sort {
        SortKey::UpdatedAt => "i.updated_at",
        SortKey::StartedAt => "i.started_at",
    }
}

/// The filters, keyset condition, order and limit shared by both arms of the dashboard.
fn finish_pending(
    stmt: &mut Stmt,
    entity: Option<&String>,
    query: &PendingQuery,
    after: Option<&Position>,
    limit: u32,
) {
    if let Some(entity) = entity {
        stmt.push(" AND i.entity = ").bind(entity);
    }
    if let Some(stage) = &query.stage {
        stmt.push(" AND i.state = ").bind(stage);
    }
    if let Some(definition) = &query.definition {
        stmt.push(" AND i.definition_id = ").bind(definition);
    }
    let column = sort_column(query.sort);
    let (compare, order) = match query.direction {
        Direction::Asc => (") > (", " ASC"),
        Direction::Desc => (") < (", " DESC"),
    };
    if let Some(after) = after {
        // A row-value comparison: one index range, where an OR of two conditions would not be.
        stmt.push(" AND (")
            .push(column)
            .push(", i.id")
            .push(compare)
            .bind(after.key)
            .push(", ")
            .bind(&after.id);
        stmt.push(")");
    }
    stmt.push(" ORDER BY ").push(column).push(order).push(", i.id").push(order);
    stmt.push(" LIMIT ").bind(limit + 1);
}

fn assigned_stmt(
    tenant: &str,
    assignee: &str,
    entity: Option<&String>,
    query: &PendingQuery,
    after: Option<&Position>,
    limit: u32,
) -> Stmt {
    let mut stmt = Stmt::new(concat!(
        "SELECT ",
        instance_cols!(),
        " FROM crm_instances i WHERE i.tenant_id = $1 AND i.assignee = $2 AND i.status = 'active'"
    ))
    .arg(tenant)
    .arg(assignee);
    finish_pending(&mut stmt, entity, query, after, limit);
    stmt
}

fn approvals_stmt<DB: Backend>(
    tenant: &str,
    user: &str,
    query: &PendingQuery,
    after: Option<&Position>,
    limit: u32,
) -> Stmt {
    let mut stmt = Stmt::new(concat!(
        "SELECT ",
        instance_cols!(),
        ", r.transition FROM crm_approval_requests r \
         JOIN crm_instances i ON i.tenant_id = r.tenant_id AND i.id = r.instance_id \
         WHERE r.tenant_id = $1 AND r.status = 'pending' AND i.status = 'active' \
         AND NOT EXISTS (SELECT 1 FROM crm_approvals a WHERE a.tenant_id = r.tenant_id \
         AND a.instance_id = r.instance_id AND a.transition = r.transition AND a.round = r.round \
         AND a.approver = $2) AND "
    ))
    .arg(tenant)
    .arg(user);
    stmt.push(DB::IS_ASSIGNEE);
    finish_pending(&mut stmt, query.entity.as_ref(), query, after, limit);
    stmt
}

/// A decoded cursor: the sort key and id of the last item of the previous page.
struct Position {
    key: DateTime<Utc>,
    id: String,
}

fn cursor_tag(query: &PendingQuery) -> &'static str {
    match (query.sort, query.direction) {
        (SortKey::UpdatedAt, Direction::Asc) => "ua",
        (SortKey::UpdatedAt, Direction::Desc) => "ud",
        (SortKey::StartedAt, Direction::Asc) => "sa",
        (SortKey::StartedAt, Direction::Desc) => "sd",
    }
}

fn sort_key(instance: &InstanceRow, sort: SortKey) -> DateTime<Utc> {
    match sort {
        SortKey::UpdatedAt => instance.updated_at,
        SortKey::StartedAt => instance.started_at,
    }
}

/// `<tag>.<microseconds since the epoch>.<id>`: short, and tied to one sort order.
fn make_cursor(instance: &InstanceRow, query: &PendingQuery) -> Cursor {
    let micros = sort_key(instance, query.sort).timestamp_micros();
    Cursor(format!("{}.{micros}.{}", cursor_tag(query), instance.id))
}

fn parse_cursor(cursor: &Cursor, query: &PendingQuery) -> StoreResult<Position> {
    let mut parts = cursor.as_str().splitn(3, '.');
    let (Some(tag), Some(micros), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(StoreError::InvalidCursor);
    };
    let key = micros.parse().ok().and_then(DateTime::from_timestamp_micros);
    match key {
        Some(key) if tag == cursor_tag(query) && !id.is_empty() => Ok(Position { key, id: id.to_owned() }),
        _ => Err(StoreError::InvalidCursor),
    }
}

/// Merges the arms (each sorted, each at most `limit + 1` long) into one page.
fn page(mut found: Vec<PendingItem>, query: &PendingQuery, limit: u32) -> Page<PendingItem> {
    let sort = query.sort;
    // Stable: for an instance found by several arms, the first arm's reason wins.
    found.sort_by(|a, b| {
        let order =
            (sort_key(&a.instance, sort), &a.instance.id).cmp(&(sort_key(&b.instance, sort), &b.instance.id));
        match query.direction {
            Direction::Asc => order,
            Direction::Desc => order.reverse(),
        }
    });
    let mut seen = HashSet::new();
    found.retain(|item| seen.insert(item.instance.id.clone()));
    let limit = limit as usize;
    let next = (found.len() > limit).then(|| make_cursor(&found[limit - 1].instance, query));
    found.truncate(limit);
    Page { items: found, next }
}
