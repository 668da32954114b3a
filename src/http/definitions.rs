//! `/v1/definitions`: validate, deploy, list, versions, source, graph.
//!
//! A definition travels as its own JSON text (the request body is the file), so diagnostics
//! point at lines and columns of what the client sent, in the `crm check --format json` contract.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::auth::permissions;
use super::error::ApiError;
use super::reply::{Reply, idempotent};
use super::{AppState, Caller};
use crate::check::check_source;
use crate::engine::service::EngineError;
use crate::report::{JsonOutput, Report};
use crate::store::DefinitionRow;

/// The file name diagnostics of a request body carry.
const BODY_PATH: &str = "request body";

/// The body as text: definitions are JSON, and JSON is UTF-8.
fn text(body: &Bytes) -> Result<&str, ApiError> {
    std::str::from_utf8(body).map_err(|_| ApiError::invalid_body("the definition is not UTF-8 text"))
}

/// `POST /v1/definitions/validate`: every diagnostic, nothing deployed (a body that is not a JSON
/// object at all is a 422, with its diagnostics).
#[utoipa::path(
    post,
    path = "/v1/definitions/validate",
    operation_id = "definitions_validate",
    tag = "definitions",
    request_body(content = Object, description = "A definition file", content_type = "application/json"),
    responses((status = 200, description = "Findings", body = super::schemas::Validation), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid body, data or definition", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn validate(_caller: Caller, body: Bytes) -> Result<Reply, ApiError> {
    let source = text(&body)?;
    if source.trim().is_empty() {
        return Err(ApiError::invalid_body("the body must be a definition file"));
    }
    let checked = check_source(source);
    // Not a JSON object at all is not a definition to report on, but a body the route refuses.
    if !source.trim_start_matches('\u{feff}').trim_start().starts_with('{') {
        return Err(ApiError::invalid_definition(BODY_PATH, source, checked.diagnostics));
    }
    let report = Report::new(BODY_PATH, source, checked.diagnostics);
    let valid = checked.definition.is_some() && !report.has_errors();
    let output = serde_json::to_value(JsonOutput::new(&[report])).unwrap_or(Json::Null);
    Ok(Reply::ok(
        json!({ "valid": valid, "diagnostics": output.get("diagnostics").cloned().unwrap_or(json!([])) }),
    ))
}

/// `POST /v1/definitions`: deploys (needs `definitions:deploy`); 201 with a new version, 200 when
/// the source is identical to the latest version, 422 with diagnostics when it has errors.
#[utoipa::path(
    post,
    path = "/v1/definitions",
    operation_id = "definitions_deploy",
    tag = "definitions",
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h")),
    request_body(content = Object, description = "A definition file", content_type = "application/json"),
    responses((status = 201, description = "A new version", body = super::schemas::Deployed), (status = 200, description = "Identical to the latest version", body = super::schemas::Deployed), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 403, description = "Missing permission, refused guard or not an approver", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid body, data or definition", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn deploy(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, ApiError> {
    caller.require(permissions::DEPLOY)?;
    let source = text(&body)?.to_owned();
    let work = async {
        match state.engine().deploy(&caller.tenant, &source).await {
            Ok(deployed) => {
                let status = if deployed.created { StatusCode::CREATED } else { StatusCode::OK };
                let body =
                    json!({ "id": deployed.id, "version": deployed.version, "created": deployed.created });
                let mut reply = Reply::ok(body).with_status(status);
                reply.location = Some(format!("/v1/definitions/{}/versions", deployed.id));
                Ok(reply)
            }
            Err(EngineError::InvalidDefinition { diagnostics }) => {
                Err(ApiError::invalid_definition(BODY_PATH, &source, diagnostics))
            }
            Err(error) => Err(error.into()),
        }
    };
    idempotent(&state, &caller, &headers, "POST /v1/definitions", StatusCode::CREATED, &body, work).await
}

fn summary(row: &DefinitionRow) -> Json {
    json!({
        "id": row.id,
        "name": row.name,
        "version": row.version,
        "active": row.active,
        "checksum": row.checksum,
        "created_at": super::views::time(row.created_at),
    })
}

/// `GET /v1/definitions`: the latest version of each.
#[utoipa::path(
    get,
    path = "/v1/definitions",
    operation_id = "definitions_list",
    tag = "definitions",
    responses((status = 200, description = "The latest version of each", body = super::schemas::Definitions), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn list(State(state): State<AppState>, caller: Caller) -> Result<Reply, ApiError> {
    let rows = state.engine().definitions(&caller.tenant).await?;
    Ok(Reply::ok(json!({ "items": rows.iter().map(summary).collect::<Vec<_>>() })))
}

/// `GET /v1/definitions/{id}/versions`: every version, newest first.
#[utoipa::path(
    get,
    path = "/v1/definitions/{id}/versions",
    operation_id = "definitions_versions",
    tag = "definitions",
    params(("id" = String, Path, description = "The id")),
    responses((status = 200, description = "Every version, newest first", body = super::schemas::Definitions), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn versions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Reply, ApiError> {
    let rows = state.engine().definition_versions(&caller.tenant, &id).await?;
    Ok(Reply::ok(json!({ "items": rows.iter().rev().map(summary).collect::<Vec<_>>() })))
}

/// `POST /v1/definitions/{id}/activate`: new instances may start on it (needs `definitions:deploy`).
#[utoipa::path(
    post,
    path = "/v1/definitions/{id}/activate",
    operation_id = "definitions_activate",
    tag = "definitions",
    params(("id" = String, Path, description = "The id")),
    responses((status = 200, description = "Active", body = super::schemas::DefinitionSummary), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 403, description = "Missing permission, refused guard or not an approver", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn activate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Reply, ApiError> {
    caller.require(permissions::DEPLOY)?;
    let row = state.engine().activate_definition(&caller.tenant, &id).await?;
    Ok(Reply::ok(summary(&row)))
}

/// `POST /v1/definitions/{id}/deactivate`: no new instances; running ones continue.
#[utoipa::path(
    post,
    path = "/v1/definitions/{id}/deactivate",
    operation_id = "definitions_deactivate",
    tag = "definitions",
    params(("id" = String, Path, description = "The id")),
    responses((status = 200, description = "Inactive", body = super::schemas::DefinitionSummary), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 403, description = "Missing permission, refused guard or not an approver", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn deactivate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Reply, ApiError> {
    caller.require(permissions::DEPLOY)?;
    let row = state.engine().deactivate_definition(&caller.tenant, &id).await?;
    Ok(Reply::ok(summary(&row)))
}

/// Which version to read.
#[derive(Debug, Deserialize)]
pub(super) struct VersionQuery {
    version: Option<u64>,
}

/// `GET /v1/definitions/{id}/source[?version=N]`: the definition file as deployed.
#[utoipa::path(
    get,
    path = "/v1/definitions/{id}/source",
    operation_id = "definitions_source",
    tag = "definitions",
    params(("id" = String, Path, description = "The id"), ("version" = Option<u64>, Query, description = "Default: the latest")),
    responses((status = 200, description = "The definition file", body = Object), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn source(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<VersionQuery>,
) -> Result<Response, ApiError> {
    let row = state.engine().definition(&caller.tenant, &id, query.version).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], row.source).into_response())
}

/// How to draw a definition.
#[derive(Clone, Copy, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum GraphFormat {
    /// A Mermaid `stateDiagram-v2`.
    #[default]
    Mermaid,
    /// A Graphviz digraph.
    Dot,
}

/// Which version to draw, and how.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GraphQuery {
    version: Option<u64>,
    #[serde(default)]
    format: GraphFormat,
}

/// `GET /v1/definitions/{id}/graph[?version=N&format=mermaid|dot]`: stages and transitions drawn
/// as `crm graph` draws them.
#[utoipa::path(
    get,
    path = "/v1/definitions/{id}/graph",
    operation_id = "definitions_graph",
    tag = "definitions",
    params(("id" = String, Path, description = "The id"), ("version" = Option<u64>, Query, description = "Default: the latest"), ("format" = Option<GraphFormat>, Query, description = "mermaid (default) or dot")),
    responses((status = 200, description = "The drawing", body = String, content_type = "text/plain"), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn graph(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<GraphQuery>,
) -> Result<Response, ApiError> {
    let row = state.engine().definition(&caller.tenant, &id, query.version).await?;
    // A stored version compiled when it was deployed; one that no longer does is our fault.
    let Some(definition) = check_source(&row.source).definition else {
        tracing::error!(definition = %row.id, version = row.version, "a deployed definition no longer compiles");
        return Err(ApiError::internal());
    };
    let drawing = match query.format {
        GraphFormat::Mermaid => crate::graph::mermaid(&definition, None),
        GraphFormat::Dot => crate::graph::dot(&definition, None),
    };
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], drawing).into_response())
}
