//! A user's work: the dashboard (`/v1/dashboard`), delegations (`/v1/delegations`), and an
//! instance's SLA clocks and escalations (`/v1/instances/{id}/sla`).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::auth::permissions;
use super::error::ApiError;
use super::reply::{Reply, idempotent, parse};
use super::views::{decode_cursor, encode_cursor, row_json, time};
use super::{AppState, Caller};
use crate::engine::service::{EngineError, NewDelegation};
use crate::store::{DelegationRow, Direction, PendingQuery, PendingReason, SortKey, Store};

/// `GET /v1/dashboard` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DashboardQuery {
    #[serde(default, deserialize_with = "super::views::non_empty")]
    user: Option<String>,
    #[serde(default, deserialize_with = "super::views::non_empty")]
    entity: Option<String>,
    #[serde(default, deserialize_with = "super::views::non_empty")]
    stage: Option<String>,
    #[serde(default, deserialize_with = "super::views::non_empty")]
    definition: Option<String>,
    #[serde(default)]
    reason: Option<ReasonFilter>,
    #[serde(default)]
    sort: Option<DashboardSort>,
    #[serde(default)]
    direction: Option<SortDirection>,
    #[serde(default, deserialize_with = "super::views::page_limit")]
    limit: u32,
    #[serde(default, deserialize_with = "super::views::non_empty")]
    cursor: Option<String>,
}

/// Why an item is on the dashboard (the `reason` filter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum ReasonFilter {
    /// Assigned to the user.
    Assigned,
    /// Assigned to someone who delegated to the user.
    Delegated,
    /// Waiting for the user's approval.
    Approval,
}

/// The order of the dashboard.
#[derive(Clone, Copy, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum DashboardSort {
    /// Last change (the default).
    #[default]
    UpdatedAt,
    /// Creation.
    StartedAt,
}

/// Ascending or descending.
#[derive(Clone, Copy, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum SortDirection {
    /// Oldest first.
    Asc,
    /// Newest first (the default).
    #[default]
    Desc,
}

fn reason_json(reason: &PendingReason) -> Json {
    match reason {
        PendingReason::Assigned => json!({ "kind": "assigned" }),
        PendingReason::Delegated { from } => json!({ "kind": "delegated", "from": from }),
        PendingReason::Approval { transition } => json!({ "kind": "approval", "transition": transition }),
    }
}

fn reason_kind(reason: &PendingReason) -> ReasonFilter {
    match reason {
        PendingReason::Assigned => ReasonFilter::Assigned,
        PendingReason::Delegated { .. } => ReasonFilter::Delegated,
        PendingReason::Approval { .. } => ReasonFilter::Approval,
    }
}

/// `GET /v1/dashboard`: what is pending for the caller (or `user`, with `dashboard:read_any`),
/// filtered, sorted, in keyset pages with an opaque cursor. `reason` filters within each page, so
/// a page may hold fewer items than `limit`; `next_cursor` still leads on.
#[utoipa::path(
    get,
    path = "/v1/dashboard",
    operation_id = "work_dashboard",
    tag = "work",
    params(("user" = Option<String>, Query, description = "Another user (needs dashboard:read_any)"), ("entity" = Option<String>, Query, description = "Filter"), ("stage" = Option<String>, Query, description = "Filter"), ("definition" = Option<String>, Query, description = "Filter"), ("reason" = Option<ReasonFilter>, Query, description = "Only items pending for this reason"), ("sort" = Option<DashboardSort>, Query, description = "Default: updated_at"), ("direction" = Option<SortDirection>, Query, description = "Default: desc"), ("limit" = Option<u32>, Query, maximum = 500, description = "Page size"), ("cursor" = Option<String>, Query, description = "From next_cursor")),
    responses((status = 200, description = "A page", body = super::schemas::Dashboard), (status = 400, description = "Malformed query or header", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 403, description = "Missing permission, refused guard or not an approver", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid body, data or definition", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn dashboard(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<DashboardQuery>,
) -> Result<Reply, ApiError> {
    let user = match query.user {
        Some(user) if user != caller.actor.id => {
            caller.require(permissions::READ_ANY_DASHBOARD)?;
            user
        }
        _ => caller.actor.id.clone(),
    };
    let sort = match query.sort.unwrap_or_default() {
        DashboardSort::UpdatedAt => SortKey::UpdatedAt,
        DashboardSort::StartedAt => SortKey::StartedAt,
    };
    let direction = match query.direction.unwrap_or_default() {
        SortDirection::Desc => Direction::Desc,
        SortDirection::Asc => Direction::Asc,
    };
    let pending = PendingQuery {
        entity: query.entity,
        stage: query.stage,
        definition: query.definition,
        sort,
        direction,
        limit: query.limit,
        after: query.cursor.as_deref().map(decode_cursor).transpose()?,
        ..PendingQuery::default()
    };
    let page = state.engine().pending_for_user(&caller.tenant, &user, &pending).await?;
    let items: Vec<Json> = page
        .items
        .iter()
        .filter(|item| query.reason.is_none_or(|r| r == reason_kind(&item.reason)))
        .map(|item| {
            let mut json = row_json(&item.instance);
            json["reason"] = reason_json(&item.reason);
            json
        })
        .collect();
    Ok(Reply::ok(json!({
        "user": user,
        "items": items,
        "next_cursor": page.next.as_ref().map(encode_cursor),
    })))
}

fn delegation_json(row: &DelegationRow) -> Json {
    json!({
        "id": row.id,
        "delegator": row.delegator,
        "delegatee": row.delegatee,
        "start": row.start_date.map(|d| d.to_string()),
        "end": row.end_date.map(|d| d.to_string()),
        "entity": row.entity,
        "created_at": time(row.created_at),
    })
}

/// `POST /v1/delegations` body; `delegator` defaults to the caller.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DelegationBody {
    delegator: Option<String>,
    delegatee: String,
    start: Option<String>,
    end: Option<String>,
    entity: Option<String>,
}

/// A `YYYY-MM-DD` date field, or a 422 naming it.
pub(super) fn date(field: &str, text: Option<&str>) -> Result<Option<NaiveDate>, ApiError> {
    text.map(|t| {
        NaiveDate::parse_from_str(t, "%Y-%m-%d").map_err(|_| {
            ApiError::invalid_body(format!("`{field}` must be a date like 2026-12-31, not `{t}`"))
        })
    })
    .transpose()
}

/// `POST /v1/delegations`: the caller's work (or, with `delegations:manage`, anyone's) also goes
/// to `delegatee` between the dates.
#[utoipa::path(
    post,
    path = "/v1/delegations",
    operation_id = "work_create_delegation",
    tag = "work",
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h")),
    request_body = super::schemas::NewDelegation,
    responses((status = 201, description = "Recorded", body = super::schemas::Delegation), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 403, description = "Missing permission, refused guard or not an approver", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid body, data or definition", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn create_delegation(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, ApiError> {
    let request: DelegationBody = parse(&body)?;
    let (start, end) = (date("start", request.start.as_deref())?, date("end", request.end.as_deref())?);
    let delegator = request.delegator.unwrap_or_else(|| caller.actor.id.clone());
    if delegator != caller.actor.id {
        caller.require(permissions::MANAGE_DELEGATIONS)?;
    }
    let work = async {
        let new =
            NewDelegation { delegator, delegatee: request.delegatee, start, end, entity: request.entity };
        let row = state.engine().add_delegation(&caller.tenant, new).await?;
        Ok(Reply::ok(delegation_json(&row)).with_status(StatusCode::CREATED))
    };
    idempotent(&state, &caller, &headers, "POST /v1/delegations", StatusCode::CREATED, &body, work).await
}

/// `GET /v1/delegations`: the tenant's delegations, oldest first.
#[utoipa::path(
    get,
    path = "/v1/delegations",
    operation_id = "work_delegations",
    tag = "work",
    responses((status = 200, description = "Every delegation", body = super::schemas::Delegations), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn delegations(State(state): State<AppState>, caller: Caller) -> Result<Reply, ApiError> {
    let rows = state.engine().delegations(&caller.tenant).await?;
    Ok(Reply::ok(json!({ "items": rows.iter().map(delegation_json).collect::<Vec<_>>() })))
}

/// `DELETE /v1/delegations/{id}`: by its delegator, or with `delegations:manage`.
#[utoipa::path(
    delete,
    path = "/v1/delegations/{id}",
    operation_id = "work_remove_delegation",
    tag = "work",
    params(("id" = String, Path, description = "The id")),
    responses((status = 204, description = "Removed"), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 403, description = "Missing permission, refused guard or not an approver", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn remove_delegation(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let rows = state.engine().delegations(&caller.tenant).await?;
    let row = rows.iter().find(|d| d.id == id).ok_or_else(|| {
        ApiError::from_store(&crate::store::StoreError::NotFound { what: "delegation", id: id.clone() })
    })?;
    if row.delegator != caller.actor.id {
        caller.require(permissions::MANAGE_DELEGATIONS)?;
    }
    state.engine().remove_delegation(&caller.tenant, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/instances/{id}/sla`: the instance's SLA clocks and escalations.
#[utoipa::path(
    get,
    path = "/v1/instances/{id}/sla",
    operation_id = "work_sla",
    tag = "work",
    params(("id" = String, Path, description = "The id")),
    responses((status = 200, description = "Clocks and escalations", body = super::schemas::Sla), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn sla(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Reply, ApiError> {
    let store = state.engine().store();
    let loaded = store.load_state(&caller.tenant, &id).await?;
    let loaded =
        loaded.ok_or_else(|| ApiError::from_engine(EngineError::UnknownInstance { id: id.clone() }))?;
    let escalations = store.escalations(&caller.tenant, &id).await?;
    Ok(Reply::ok(json!({
        "clocks": loaded.sla.iter().map(|c| json!({
            "id": c.id,
            "scope": c.scope,
            "duration_minutes": c.duration_minutes,
            "started_at": time(c.started_at),
            "at_risk_at": c.at_risk_at.map(time),
            "breach_at": time(c.breach_at),
            "status": c.status.as_str(),
            "stopped_at": c.stopped_at.map(time),
        })).collect::<Vec<_>>(),
        "escalations": escalations.iter().map(|e| json!({
            "id": e.id,
            "level": e.level,
            "from": e.from_user_id,
            "to": e.to_user_id,
            "reason": e.reason,
            "at": time(e.escalated_at),
        })).collect::<Vec<_>>(),
    })))
}
