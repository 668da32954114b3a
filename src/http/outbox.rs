//! `/v1/outbox`: dead letters and the rest of the outbox — list, replay, discard. Every route
//! needs the `outbox:manage` permission: the payloads are what integrations receive.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::auth::permissions;
use super::error::ApiError;
use super::reply::Reply;
use super::views::time;
use super::{AppState, Caller};
use crate::store::{OutboxQuery, OutboxRow, OutboxStatus, Store};

fn item_json(row: &OutboxRow) -> Json {
    json!({
        "id": row.id,
        "instance_id": row.instance_id,
        "kind": row.kind.as_str(),
        "name": row.name,
        "payload": row.payload,
        "status": row.status.as_str(),
        "attempts": row.attempts,
        "next_attempt_at": time(row.next_attempt_at),
        "created_at": time(row.created_at),
        "processed_at": row.processed_at.map(time),
        "last_error": row.last_error,
        "discarded_at": row.discarded_at.map(time),
    })
}

/// `GET /v1/outbox` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OutboxListQuery {
    #[serde(default)]
    status: Option<OutboxStatusFilter>,
    #[serde(default, deserialize_with = "super::views::page_limit")]
    limit: u32,
    #[serde(default, deserialize_with = "super::views::non_empty")]
    after: Option<String>,
}

/// Where an outbox item is (the `status` filter).
#[derive(Clone, Copy, Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum OutboxStatusFilter {
    /// Waiting for delivery (or a retry).
    Pending,
    /// Delivered.
    Done,
    /// Given up on: a dead letter.
    Dead,
}

/// `GET /v1/outbox`: items by id (`status=dead` for the dead letters), pages after the id `after`.
#[utoipa::path(
    get,
    path = "/v1/outbox",
    operation_id = "outbox_list",
    tag = "work",
    params(
        ("status" = Option<OutboxStatusFilter>, Query, description = "Only items in this state (dead: the dead letters)"),
        ("limit" = Option<u32>, Query, maximum = 500, description = "Page size"),
        ("after" = Option<String>, Query, description = "From next_after")
    ),
    responses(
        (status = 200, description = "By id", body = super::schemas::Records),
        (status = 400, description = "Malformed query", body = super::schemas::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs outbox:manage", body = super::schemas::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<OutboxListQuery>,
) -> Result<Reply, ApiError> {
    caller.require(permissions::MANAGE_OUTBOX)?;
    let status = query.status.map(|status| match status {
        OutboxStatusFilter::Pending => OutboxStatus::Pending,
        OutboxStatusFilter::Done => OutboxStatus::Done,
        OutboxStatusFilter::Dead => OutboxStatus::Dead,
    });
    let limit = match query.limit {
        0 => 50,
        n => n.min(500),
    };
    let rows = state
        .engine()
        .store()
        .outbox_items(&caller.tenant, &OutboxQuery { status, after: query.after, limit })
        .await?;
    let next = (rows.len() >= limit as usize).then(|| rows.last().map(|r| r.id.clone())).flatten();
    Ok(Reply::ok(json!({ "items": rows.iter().map(item_json).collect::<Vec<_>>(), "next_after": next })))
}

/// `POST /v1/outbox/{id}/replay`: a dead letter back in the queue, due now, retries reset.
#[utoipa::path(
    post,
    path = "/v1/outbox/{id}/replay",
    operation_id = "outbox_replay",
    tag = "work",
    params(("id" = String, Path, description = "The outbox item")),
    responses(
        (status = 204, description = "Queued again"),
        (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs outbox:manage", body = super::schemas::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dead letter", body = super::schemas::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub(super) async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(permissions::MANAGE_OUTBOX)?;
    state.engine().store().replay_outbox(&caller.tenant, &id, Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/outbox/{id}/discard`: gives up on an undelivered item for good.
#[utoipa::path(
    post,
    path = "/v1/outbox/{id}/discard",
    operation_id = "outbox_discard",
    tag = "work",
    params(("id" = String, Path, description = "The outbox item")),
    responses(
        (status = 204, description = "Discarded"),
        (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs outbox:manage", body = super::schemas::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such undelivered item", body = super::schemas::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub(super) async fn discard(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(permissions::MANAGE_OUTBOX)?;
    state.engine().store().discard_outbox(&caller.tenant, &id, Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
