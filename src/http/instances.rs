//! `/v1/instances`: create, read (with `ETag`), list, patch data (`If-Match`), fire, approve,
//! reject, complete a branch, assign, history.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use super::error::ApiError;
use super::reply::{Reply, expected_version, idempotent, if_match, parse};
use super::views::{decode_cursor, encode_cursor, history_json, row_json, view_json};
use super::{AppState, Caller};
use crate::engine::machine::Vote;
use crate::store::{Cursor, HistoryRow, InstanceQuery, StoredInstanceStatus};

/// `POST /v1/instances` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    definition: String,
    entity: String,
    #[serde(default = "super::views::empty_object", deserialize_with = "super::views::object")]
    data: Json,
}

/// `POST /v1/instances`: 201 with the instance, its `ETag` and `Location`.
#[utoipa::path(
    post,
    path = "/v1/instances",
    operation_id = "instances_create",
    tag = "instances",
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h")),
    request_body = super::schemas::CreateInstance,
    responses((status = 201, description = "Created (ETag, Location)", body = super::schemas::Instance), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 409, description = "Stale version or wrong state", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid body, data or definition", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, ApiError> {
    let request: CreateBody = parse(&body)?;
    let work = async {
        let view = state
            .engine()
            .create_instance(
                &caller.tenant,
                &caller.actor,
                &request.definition,
                &request.entity,
                &request.data,
            )
            .await?;
        let mut reply = Reply::versioned(view_json(&view)).with_status(StatusCode::CREATED);
        reply.location = Some(format!("/v1/instances/{}", view.id));
        Ok(reply)
    };
    idempotent(&state, &caller, &headers, "POST /v1/instances", StatusCode::CREATED, &body, work).await
}

/// `GET /v1/instances/{id}`.
#[utoipa::path(
    get,
    path = "/v1/instances/{id}",
    operation_id = "instances_get",
    tag = "instances",
    params(("id" = String, Path, description = "The id")),
    responses((status = 200, description = "The instance (ETag)", body = super::schemas::Instance), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Reply, ApiError> {
    let view = state.engine().instance(&caller.tenant, &id).await?;
    Ok(Reply::versioned(view_json(&view)))
}

/// `GET /v1/instances/by-number/{number}`.
#[utoipa::path(
    get,
    path = "/v1/instances/by-number/{number}",
    operation_id = "instances_get_by_number",
    tag = "instances",
    params(("number" = String, Path, description = "The instance's human-readable number, e.g. `LEAD-2026-0001`")),
    responses((status = 200, description = "The instance (ETag)", body = super::schemas::Instance), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn get_by_number(
    State(state): State<AppState>,
    caller: Caller,
    Path(number): Path<String>,
) -> Result<Reply, ApiError> {
    let view = state.engine().instance_by_number(&caller.tenant, &number).await?;
    Ok(Reply::versioned(view_json(&view)))
}

/// Running or finished (the `status` filter).
#[derive(Clone, Copy, Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum StatusFilter {
    /// Not yet in a terminal stage.
    Active,
    /// In a terminal stage.
    Completed,
}

/// `GET /v1/instances` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    #[serde(default, deserialize_with = "super::views::non_empty")]
    definition: Option<String>,
    #[serde(default, deserialize_with = "super::views::non_empty")]
    entity: Option<String>,
    #[serde(default, deserialize_with = "super::views::non_empty")]
    stage: Option<String>,
    #[serde(default)]
    status: Option<StatusFilter>,
    #[serde(default, deserialize_with = "super::views::non_empty")]
    assignee: Option<String>,
    /// Not `non_empty`: a time is never empty.
    #[serde(default)]
    updated_since: Option<String>,
    #[serde(default, deserialize_with = "super::views::page_limit")]
    limit: u32,
    #[serde(default, deserialize_with = "super::views::non_empty")]
    cursor: Option<String>,
}

/// `GET /v1/instances`: filtered, oldest change first, in keyset pages (`next_cursor`).
#[utoipa::path(
    get,
    path = "/v1/instances",
    operation_id = "instances_list",
    tag = "instances",
    params(("definition" = Option<String>, Query, description = "Filter"), ("entity" = Option<String>, Query, description = "Filter"), ("stage" = Option<String>, Query, description = "Filter"), ("status" = Option<StatusFilter>, Query, description = "Only running or only finished instances"), ("assignee" = Option<String>, Query, description = "Filter"), ("updated_since" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "Changed at or after this time (RFC 3339)"), ("limit" = Option<u32>, Query, maximum = 500, description = "Page size, default 50, at most 500"), ("cursor" = Option<String>, Query, description = "From next_cursor")),
    responses((status = 200, description = "A page", body = super::schemas::InstancePage), (status = 400, description = "Malformed query or header", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid body, data or definition", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Reply, ApiError> {
    let status = query.status.map(|status| match status {
        StatusFilter::Active => StoredInstanceStatus::Active,
        StatusFilter::Completed => StoredInstanceStatus::Completed,
    });
    let store_query = InstanceQuery {
        definition: query.definition,
        entity: query.entity,
        stage: query.stage,
        status,
        assignee: query.assignee,
        updated_since: match query.updated_since.as_deref() {
            None => None,
            Some(text) => {
                Some(DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).map_err(|_| {
                    ApiError::bad_request(format!("updated_since must be an RFC 3339 time, not `{text}`"))
                })?)
            }
        },
        limit: query.limit,
        after: query.cursor.as_deref().map(decode_cursor).transpose()?,
    };
    let page = crate::store::Store::instances(state.engine().store(), &caller.tenant, &store_query).await?;
    Ok(Reply::ok(json!({
        "items": page.items.iter().map(row_json).collect::<Vec<_>>(),
        "next_cursor": page.next.as_ref().map(encode_cursor),
    })))
}

/// `PATCH /v1/instances/{id}`: a JSON merge patch of the data, at the version `If-Match` names.
#[utoipa::path(
    patch,
    path = "/v1/instances/{id}",
    operation_id = "instances_patch",
    tag = "instances",
    params(("id" = String, Path, description = "The id"), ("If-Match" = Option<String>, Header, pattern = r#"^\s*(\*|[0-9]+|(W/)?"[^"]*"(\s*,\s*(W/)?"[^"]*")*)\s*$"#, description = "The version (ETag) read: `\"3\"`, a list of them, or `*`. Required: without it the answer is 428")),
    request_body(content = Object, description = "A JSON merge patch of the data", content_type = "application/merge-patch+json"),
    responses((status = 200, description = "Changed (ETag)", body = super::schemas::Instance), (status = 400, description = "Malformed query or header", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 403, description = "Missing permission, refused guard or not an approver", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 409, description = "Stale version or wrong state", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid body, data or definition", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 428, description = "If-Match missing", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, ApiError> {
    let precondition = if_match(&headers)?.ok_or_else(ApiError::precondition_required)?;
    let patch: Map<String, Json> = parse(&body)?;
    let expected = expected_version(&state, &caller, &id, Some(precondition))
        .await?
        .ok_or_else(ApiError::precondition_required)?;
    let view = state.engine().update_data(&caller.tenant, &caller.actor, &id, expected, &patch).await?;
    Ok(Reply::versioned(view_json(&view)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FireBody {
    transition: String,
}

/// `POST /v1/instances/{id}/fire`: fires a transition or gateway (at the `If-Match` version, if
/// given).
#[utoipa::path(
    post,
    path = "/v1/instances/{id}/fire",
    operation_id = "instances_fire",
    tag = "instances",
    params(("id" = String, Path, description = "The id"), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h"), ("If-Match" = Option<String>, Header, pattern = r#"^\s*(\*|[0-9]+|(W/)?"[^"]*"(\s*,\s*(W/)?"[^"]*")*)\s*$"#, description = "The version (ETag) the change is based on: `\"3\"`, a list of them, or `*`")),
    request_body = super::schemas::Fire,
    responses((status = 200, description = "Fired", body = super::schemas::Instance), (status = 400, description = "Malformed query or header", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 403, description = "Missing permission, refused guard or not an approver", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 409, description = "Stale version or wrong state", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid body, data or definition", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn fire(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, ApiError> {
    let precondition = if_match(&headers)?;
    let request: FireBody = parse(&body)?;
    let expected = expected_version(&state, &caller, &id, precondition).await?;
    let work = async {
        let view =
            state.engine().fire(&caller.tenant, &caller.actor, &id, &request.transition, expected).await?;
        Ok(Reply::versioned(view_json(&view)))
    };
    let what = format!("POST /v1/instances/{id}/fire");
    idempotent(&state, &caller, &headers, &what, StatusCode::OK, &body, work).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VoteBody {
    transition: String,
}

/// `POST /v1/instances/{id}/approve`.
#[utoipa::path(
    post,
    path = "/v1/instances/{id}/approve",
    operation_id = "instances_approve",
    tag = "instances",
    params(("id" = String, Path, description = "The id"), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h")),
    request_body = super::schemas::Respond,
    responses((status = 200, description = "Vote recorded", body = super::schemas::Instance), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 403, description = "Missing permission, refused guard or not an approver", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 409, description = "Stale version or wrong state", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid body, data or definition", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn approve(
    state: State<AppState>,
    caller: Caller,
    id: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, ApiError> {
    respond(state, caller, id, headers, body, Vote::Approve).await
}

/// `POST /v1/instances/{id}/reject`.
#[utoipa::path(
    post,
    path = "/v1/instances/{id}/reject",
    operation_id = "instances_reject",
    tag = "instances",
    params(("id" = String, Path, description = "The id"), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h")),
    request_body = super::schemas::Respond,
    responses((status = 200, description = "Vote recorded", body = super::schemas::Instance), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 403, description = "Missing permission, refused guard or not an approver", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 409, description = "Stale version or wrong state", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid body, data or definition", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn reject(
    state: State<AppState>,
    caller: Caller,
    id: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, ApiError> {
    respond(state, caller, id, headers, body, Vote::Reject).await
}

async fn respond(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
    vote: Vote,
) -> Result<Reply, ApiError> {
    let request: VoteBody = parse(&body)?;
    let work = async {
        let view =
            state.engine().respond(&caller.tenant, &caller.actor, &id, &request.transition, vote).await?;
        Ok(Reply::versioned(view_json(&view)))
    };
    let what = format!("POST /v1/instances/{id}/{}", vote.as_str());
    idempotent(&state, &caller, &headers, &what, StatusCode::OK, &body, work).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BranchBody {
    gateway: String,
    branch: String,
}

/// `POST /v1/instances/{id}/complete-branch`.
#[utoipa::path(
    post,
    path = "/v1/instances/{id}/complete-branch",
    operation_id = "instances_complete_branch",
    tag = "instances",
    params(("id" = String, Path, description = "The id"), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h")),
    request_body = super::schemas::CompleteBranch,
    responses((status = 200, description = "Branch done", body = super::schemas::Instance), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 403, description = "Missing permission, refused guard or not an approver", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 409, description = "Stale version or wrong state", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid body, data or definition", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn complete_branch(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, ApiError> {
    let request: BranchBody = parse(&body)?;
    let work = async {
        let view = state
            .engine()
            .complete_branch(&caller.tenant, &caller.actor, &id, &request.gateway, &request.branch)
            .await?;
        Ok(Reply::versioned(view_json(&view)))
    };
    let what = format!("POST /v1/instances/{id}/complete-branch");
    idempotent(&state, &caller, &headers, &what, StatusCode::OK, &body, work).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    assignee: String,
}

/// `POST /v1/instances/{id}/assign`: to a user, or whom their delegations lead to.
#[utoipa::path(
    post,
    path = "/v1/instances/{id}/assign",
    operation_id = "instances_assign",
    tag = "instances",
    params(("id" = String, Path, description = "The id"), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h"), ("If-Match" = Option<String>, Header, pattern = r#"^\s*(\*|[0-9]+|(W/)?"[^"]*"(\s*,\s*(W/)?"[^"]*")*)\s*$"#, description = "The version (ETag) the change is based on: `\"3\"`, a list of them, or `*`")),
    request_body = super::schemas::Assign,
    responses((status = 200, description = "Assigned", body = super::schemas::Instance), (status = 400, description = "Malformed query or header", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 403, description = "Missing permission, refused guard or not an approver", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 409, description = "Stale version or wrong state", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid body, data or definition", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, ApiError> {
    let precondition = if_match(&headers)?;
    let request: AssignBody = parse(&body)?;
    let expected = expected_version(&state, &caller, &id, precondition).await?;
    let work = async {
        let view =
            state.engine().assign(&caller.tenant, &caller.actor, &id, &request.assignee, expected).await?;
        Ok(Reply::versioned(view_json(&view)))
    };
    let what = format!("POST /v1/instances/{id}/assign");
    idempotent(&state, &caller, &headers, &what, StatusCode::OK, &body, work).await
}

/// A keyset page's query (`limit`, `cursor`): history and the timeline.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PageQuery {
    #[serde(default, deserialize_with = "super::views::page_limit")]
    pub(super) limit: u32,
    #[serde(default, deserialize_with = "super::views::non_empty")]
    pub(super) cursor: Option<String>,
}

/// `GET /v1/instances/{id}/history`: oldest first, in keyset pages by sequence number.
#[utoipa::path(
    get,
    path = "/v1/instances/{id}/history",
    operation_id = "instances_history",
    tag = "instances",
    params(("id" = String, Path, description = "The id"), ("limit" = Option<u32>, Query, maximum = 500, description = "Page size"), ("cursor" = Option<String>, Query, description = "From next_cursor")),
    responses((status = 200, description = "A page, oldest first", body = super::schemas::HistoryPage), (status = 400, description = "Malformed query or header", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid body, data or definition", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Reply, ApiError> {
    let after = match query.cursor.as_deref() {
        None => 0,
        Some(text) => {
            let cursor = decode_cursor(text)?;
            cursor
                .as_str()
                .strip_prefix("h.")
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| ApiError::from_store(&crate::store::StoreError::InvalidCursor))?
        }
    };
    let limit = match query.limit {
        0 => 50,
        n => n.min(500),
    } as usize;
    // The store reads the whole history; pages are cut here until it pages by itself.
    let rows = state.engine().history(&caller.tenant, &id).await?;
    let mut items: Vec<&HistoryRow> = rows.iter().filter(|r| r.seq > after).take(limit + 1).collect();
    let next = (items.len() > limit)
        .then(|| encode_cursor(&Cursor::from_string(format!("h.{}", items[limit - 1].seq))));
    items.truncate(limit);
    Ok(Reply::ok(json!({
        "items": items.into_iter().map(history_json).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}
