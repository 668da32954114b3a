//! Reading an instance: its row, everything execution needs in one statement
//! ([`Store::load_state`](crate::store::Store::load_state)), its history and escalations.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::columns::{
    ESCALATION_COLS, HISTORY_COLS, INSTANCE_COLS, escalation_row, history_row, instance_row,
};
use super::{Decoded, SqlStore};
use crate::store::backend::{Backend, Reader, Stmt};
use crate::store::{
    ApprovalRequestRow, ApprovalRow, AssignmentRow, EscalationRow, HistoryRow, InstanceRow, RequestStatus,
    RunRow, SlaRow, SlaStatus, StoreResult, StoredDecision, StoredInstanceState, StoredPendingApproval,
    StoredRunStatus, StoredTokenStatus, TenantId, TimerRow, TokenRow,
};

pub(super) async fn load_instance<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    id: &str,
) -> StoreResult<Option<InstanceRow>> {
    let stmt = Stmt::new(concat_sql!(
        "SELECT ",
        INSTANCE_COLS,
        " FROM crm_instances i WHERE i.tenant_id = $1 AND i.id = $2"
    ))
    .arg(tenant.as_str())
    .arg(id);
    store.read_one(stmt, instance_row).await
}

/// The instance numbered `number` (the unique index `crm_instances_number`).
pub(super) async fn instance_by_number<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    number: &str,
) -> StoreResult<Option<InstanceRow>> {
    let stmt = Stmt::new(concat_sql!(
        "SELECT ",
        INSTANCE_COLS,
        " FROM crm_instances i WHERE i.tenant_id = $1 AND i.number = $2"
    ))
    .arg(tenant.as_str())
    .arg(number);
    store.read_one(stmt, instance_row).await
}

pub(super) async fn load_state<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    id: &str,
) -> StoreResult<Option<StoredInstanceState>> {
    let stmt = Stmt::new(DB::LOAD_STATE).arg(tenant.as_str()).arg(id);
    store.read_one(stmt, state_row).await
}

pub(super) async fn history<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    instance_id: &str,
) -> StoreResult<Vec<HistoryRow>> {
    let stmt = Stmt::new(concat_sql!(
        "SELECT ",
        HISTORY_COLS,
        " FROM crm_history WHERE tenant_id = $1 AND instance_id = $2 ORDER BY seq"
    ))
    .arg(tenant.as_str())
    .arg(instance_id);
    store.read_all(stmt, history_row).await
}

pub(super) async fn escalations<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    instance_id: &str,
) -> StoreResult<Vec<EscalationRow>> {
    let stmt = Stmt::new(concat_sql!(
        "SELECT ",
        ESCALATION_COLS,
        " FROM crm_escalations WHERE tenant_id = $1 AND instance_id = $2 ORDER BY escalated_at, id"
    ))
    .arg(tenant.as_str())
    .arg(instance_id);
    store.read_all(stmt, escalation_row).await
}

/// The statement behind [`Store::load_state`](crate::store::Store::load_state) in one dialect:
/// `$agg` aggregates objects into a JSON array (in the order given), `$obj` builds an object, and
/// `$json` reads a stored JSON column as JSON rather than text. One statement sees one snapshot
/// on both databases, so no transaction is needed, and the whole state costs one round trip.
macro_rules! load_state_sql {
    ($agg:literal, $obj:literal, $json:literal) => {
        concat_sql!(
            "SELECT ",
            INSTANCE_COLS,
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
pub(in crate::store) const SQLITE_LOAD_STATE: &str =
    load_state_sql!("json_group_array", "json_object", "json");

/// [`load_state_sql!`] for PostgreSQL (`jsonb_agg` of no rows is NULL, hence the `COALESCE`).
pub(in crate::store) const PG_LOAD_STATE: &str = load_state_sql!("jsonb_agg", "jsonb_build_object", "");

/// The row of [`load_state_sql!`]: the instance, its runs, then one JSON array per part.
fn state_row<DB: Backend>(r: &mut Reader<DB>) -> Decoded<StoredInstanceState> {
    let instance = instance_row(r)?;
    let runs = objects(r.json()?, run)?;
    let tokens = objects(r.json()?, |f| {
        Ok(TokenRow {
            id: f.text("id")?,
            instance_id: f.text("instance_id")?,
            gateway: f.text("gateway")?,
            branch: f.text("branch")?,
            stage: f.opt_text("stage")?,
            status: f.parsed("status", StoredTokenStatus::parse)?,
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
                decision: f.parsed("decision", StoredDecision::parse)?,
                comment: f.opt_text("comment")?,
                created_at: f.time("created_at")?,
            })
        })?;
        Ok(StoredPendingApproval { request, responses })
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
    Ok(StoredInstanceState { instance, runs, tokens, approvals, timers, sla, assignment })
}

fn run(f: &Fields<'_>) -> Decoded<RunRow> {
    Ok(RunRow {
        id: f.text("id")?,
        group: f.text("group")?,
        action: f.text("action")?,
        gateway: f.opt_text("gateway")?,
        branch: f.opt_text("branch")?,
        status: f.parsed("status", StoredRunStatus::parse)?,
    })
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
