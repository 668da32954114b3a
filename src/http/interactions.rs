//! Interactions, attachments, an instance's timeline and reports (`crate::records`).
//!
//! Uploads are the one route without the server's body limit: the body is streamed to storage
//! under the attachment limit (413 past it) and never held whole; its type comes from the bytes
//! (415 when the allow-list does not name it), never from `Content-Type`.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use futures_util::TryStreamExt as _;
use miette::Diagnostic as _;
use serde::Deserialize;
use serde_json::{Value as Json, json};
use utoipa::ToSchema;

use super::error::ApiError;
use super::reply::{Reply, idempotent, parse};
use super::views::{decode_cursor, encode_cursor};
use super::{AppState, Caller};
use crate::records::json::{attachment_json, interaction_json, timeline_json};
use crate::records::reports::{parse_bound, parse_tz};
use crate::records::{self, NewInteraction, Period, RecordsError, ReportKind, ReportQuery};
use crate::store::{InteractionKind, InteractionQuery, RecordStore, Subject, TimelineQuery};

/// A records error as a problem document: unknown ids 404, bad values 422, too large 413, a
/// refused type 415; storage failures 500 without details.
pub(super) fn records_error(error: RecordsError) -> ApiError {
    let status = match &error {
        RecordsError::UnknownInstance { .. }
        | RecordsError::UnknownContact { .. }
        | RecordsError::UnknownInteraction { .. }
        | RecordsError::UnknownAttachment { .. } => StatusCode::NOT_FOUND,
        RecordsError::Invalid { .. } | RecordsError::NoRendering { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        RecordsError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        RecordsError::UnsupportedType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        RecordsError::Store(store) => return ApiError::from_store(store),
        _ => {
            tracing::error!(error = %error, source = ?std::error::Error::source(&error), "records failure");
            return ApiError::internal();
        }
    };
    let code = error.code().map_or_else(|| "crm::records".to_owned(), |c| c.to_string());
    let mut api = ApiError::new(status, &code, error.to_string());
    if let Some(help) = error.help() {
        api = api.with("help", Json::String(help.to_string()));
    }
    api
}

/// The kind of an interaction.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum KindField {
    /// A note.
    Note,
    /// A phone call.
    Call,
    /// A meeting.
    Meeting,
    /// An e-mail.
    Email,
}

impl KindField {
    fn kind(self) -> InteractionKind {
        match self {
            Self::Note => InteractionKind::Note,
            Self::Call => InteractionKind::Call,
            Self::Meeting => InteractionKind::Meeting,
            Self::Email => InteractionKind::Email,
        }
    }
}

/// `POST /v1/interactions` body: exactly one of `instance_id` and `contact_id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"instance_id": "0190…", "kind": "call", "body": "Discussed pricing", "duration_seconds": 600, "outcome": "demo booked"}))]
pub(super) struct NewInteractionBody {
    /// The instance it is logged on (or `contact_id`).
    #[serde(default)]
    instance_id: Option<String>,
    /// The contact it is logged on (or `instance_id`).
    #[serde(default)]
    contact_id: Option<String>,
    /// What kind of interaction.
    kind: KindField,
    /// What was said or written (1 to 100,000 characters).
    body: String,
    /// When it took place (RFC 3339); default now.
    #[serde(default)]
    #[schema(format = DateTime)]
    occurred_at: Option<String>,
    /// How long it took, in seconds (at most a week).
    #[serde(default)]
    #[schema(maximum = 604800)]
    duration_seconds: Option<u64>,
    /// How it ended (at most 255 characters).
    #[serde(default)]
    outcome: Option<String>,
}

/// An interaction.
#[derive(ToSchema)]
#[allow(dead_code)] // Documentation only: utoipa reads the fields.
pub struct Interaction {
    /// Its id.
    id: String,
    /// The instance it is logged on, or null.
    instance_id: Option<String>,
    /// The contact it is logged on, or null.
    contact_id: Option<String>,
    /// What kind.
    kind: KindField,
    /// Who logged it (the token's user).
    author: String,
    /// When it took place.
    occurred_at: String,
    /// What was said or written.
    body: String,
    /// Seconds, or null.
    duration_seconds: Option<u64>,
    /// How it ended, or null.
    outcome: Option<String>,
    /// When it was logged.
    created_at: String,
    /// Its attachments (`GET /v1/interactions/{id}` only).
    attachments: Option<Vec<Attachment>>,
}

/// A page of interactions.
#[derive(ToSchema)]
#[allow(dead_code)] // Documentation only: utoipa reads the fields.
pub struct InteractionPage {
    /// Newest first.
    items: Vec<Interaction>,
    /// The next page's cursor.
    next_cursor: Option<String>,
}

/// An attachment's metadata.
#[derive(ToSchema)]
#[allow(dead_code)] // Documentation only: utoipa reads the fields.
pub struct Attachment {
    /// Its id (download it from `/v1/attachments/{id}`).
    id: String,
    /// The interaction it belongs to.
    interaction_id: String,
    /// The name offered on download.
    file_name: String,
    /// The media type sniffed from its bytes.
    content_type: String,
    /// Its size.
    size_bytes: u64,
    /// SHA-256 of its bytes, lowercase hex.
    sha256: String,
    /// `directory` or `database`.
    storage: String,
    /// Who uploaded it.
    created_by: String,
    /// When.
    created_at: String,
}

/// A timeline entry: a history entry (`type` `history`: `seq`, `event`, `before`, `after`, `actor`,
/// `payload`, as in `/history`) or an interaction (`type` `interaction`, the interaction's members).
#[derive(ToSchema)]
#[allow(dead_code)] // Documentation only: utoipa reads the fields.
pub struct TimelineEntry {
    /// `history` or `interaction`.
    #[schema(rename = "type")]
    kind: String,
    /// When it happened.
    at: String,
    /// History: the sequence number.
    seq: Option<u64>,
    /// History: what happened.
    event: Option<String>,
    /// Interaction: its id.
    id: Option<String>,
    /// Interaction: its body.
    body: Option<String>,
}

/// A page of a timeline.
#[derive(ToSchema)]
#[allow(dead_code)] // Documentation only: utoipa reads the fields.
pub struct TimelinePage {
    /// Newest first.
    items: Vec<TimelineEntry>,
    /// The next page's cursor.
    next_cursor: Option<String>,
}

/// `POST /v1/interactions`: logs an interaction; the author is the token's user.
#[utoipa::path(
    post,
    path = "/v1/interactions",
    operation_id = "interactions_create",
    tag = "records",
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h")),
    request_body = NewInteractionBody,
    responses((status = 201, description = "Logged", body = Interaction), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such instance or contact for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid body", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, ApiError> {
    let request: NewInteractionBody = parse(&body)?;
    let subject = match (request.instance_id, request.contact_id) {
        (Some(id), None) => Subject::Instance(id),
        (None, Some(id)) => Subject::Contact(id),
        _ => {
            return Err(records_error(RecordsError::Invalid {
                reason: "give exactly one of `instance_id` and `contact_id`".into(),
            }));
        }
    };
    let occurred_at = match request.occurred_at.as_deref() {
        None => None,
        Some(text) => Some(chrono::DateTime::parse_from_rfc3339(text).map(|t| t.to_utc()).map_err(|_| {
            records_error(RecordsError::Invalid {
                reason: format!("`occurred_at` is not an RFC 3339 time: `{text}`"),
            })
        })?),
    };
    let new = NewInteraction {
        subject,
        kind: request.kind.kind(),
        author: caller.actor.id.clone(),
        occurred_at,
        body: request.body,
        duration_seconds: request.duration_seconds,
        outcome: request.outcome,
    };
    let work = async {
        let row = records::add_interaction(state.engine().store(), &caller.tenant, new, Utc::now())
            .await
            .map_err(records_error)?;
        Ok(Reply::ok(interaction_json(&row)).with_status(StatusCode::CREATED))
    };
    idempotent(&state, &caller, &headers, "POST /v1/interactions", StatusCode::CREATED, &body, work).await
}

/// `GET /v1/interactions` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    #[serde(default, deserialize_with = "super::views::non_empty")]
    instance_id: Option<String>,
    #[serde(default, deserialize_with = "super::views::non_empty")]
    contact_id: Option<String>,
    #[serde(default, deserialize_with = "super::views::page_limit")]
    limit: u32,
    #[serde(default, deserialize_with = "super::views::non_empty")]
    cursor: Option<String>,
}

/// `GET /v1/interactions`: one instance's or contact's interactions, newest first.
#[utoipa::path(
    get,
    path = "/v1/interactions",
    operation_id = "interactions_list",
    tag = "records",
    params(("instance_id" = Option<String>, Query, description = "The instance (give this or contact_id)"), ("contact_id" = Option<String>, Query, description = "The contact (give this or instance_id)"), ("limit" = Option<u32>, Query, maximum = 500, description = "Page size, default 50, at most 500"), ("cursor" = Option<String>, Query, description = "From next_cursor")),
    responses((status = 200, description = "A page, newest first", body = InteractionPage), (status = 400, description = "Malformed query or header", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such instance or contact for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 422, description = "Neither or both subjects, or a bad cursor", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Reply, ApiError> {
    let subject = match (query.instance_id, query.contact_id) {
        (Some(id), None) => Subject::Instance(id),
        (None, Some(id)) => Subject::Contact(id),
        _ => {
            return Err(records_error(RecordsError::Invalid {
                reason: "give exactly one of `instance_id` and `contact_id`".into(),
            }));
        }
    };
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let query = InteractionQuery { subject, limit: query.limit, after };
    let page =
        records::interactions(state.engine().store(), &caller.tenant, &query).await.map_err(records_error)?;
    Ok(Reply::ok(json!({
        "items": page.items.iter().map(interaction_json).collect::<Vec<_>>(),
        "next_cursor": page.next.as_ref().map(encode_cursor),
    })))
}

/// `GET /v1/interactions/{id}`: one interaction with its attachments.
#[utoipa::path(
    get,
    path = "/v1/interactions/{id}",
    operation_id = "interactions_get",
    tag = "records",
    params(("id" = String, Path, description = "The interaction's id")),
    responses((status = 200, description = "The interaction", body = Interaction), (status = 400, description = "Malformed query or header", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such interaction for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Reply, ApiError> {
    let store = state.engine().store();
    let Some(row) = store.interaction(&caller.tenant, &id).await? else {
        return Err(records_error(RecordsError::UnknownInteraction { id }));
    };
    let attachments = store.attachments(&caller.tenant, &id).await?;
    let mut body = interaction_json(&row);
    body["attachments"] = Json::Array(attachments.iter().map(attachment_json).collect());
    Ok(Reply::ok(body))
}

/// `POST /v1/interactions/{id}/attachments` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UploadQuery {
    file_name: String,
}

/// `POST /v1/interactions/{id}/attachments`: the body is the file, streamed to storage.
#[utoipa::path(
    post,
    path = "/v1/interactions/{id}/attachments",
    operation_id = "interactions_attach",
    tag = "records",
    description = "The request body is the file's bytes, streamed to storage under the attachment size limit \
        (not the server's body limit). Its type is sniffed from the bytes; `Content-Type` is ignored. An upload \
        is not idempotent: sending it again stores another attachment with the same `sha256`.",
    params(("id" = String, Path, description = "The interaction's id"), ("file_name" = String, Query, min_length = 1, max_length = 255, description = "The name to offer on download")),
    request_body(content = String, content_type = "application/octet-stream", description = "The file"),
    responses((status = 201, description = "Stored", body = Attachment), (status = 400, description = "Malformed query or header", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such interaction for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 413, description = "Larger than the attachment limit", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 415, description = "A type the allow-list does not name", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 422, description = "Empty file or a bad file name", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn attach(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Reply, ApiError> {
    let config = &state.config().attachments;
    // A declared length over the limit is refused before a byte is read.
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > config.max_bytes) {
        return Err(records_error(RecordsError::TooLarge { limit: config.max_bytes }));
    }
    let reader = tokio_util::io::StreamReader::new(body.into_data_stream().map_err(std::io::Error::other));
    let upload = records::attachments::Upload {
        interaction_id: &id,
        file_name: &query.file_name,
        author: &caller.actor.id,
    };
    let row = records::upload(state.engine().store(), &caller.tenant, config, upload, reader, Utc::now())
        .await
        .map_err(records_error)?;
    Ok(Reply::ok(attachment_json(&row)).with_status(StatusCode::CREATED))
}

/// `attachment; filename="…"; filename*=UTF-8''…` (RFC 6266): an ASCII fallback and the exact name.
fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    let mut encoded = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// `GET /v1/attachments/{id}`: the bytes, streamed, with the stored type.
#[utoipa::path(
    get,
    path = "/v1/attachments/{id}",
    operation_id = "attachments_download",
    tag = "records",
    params(("id" = String, Path, description = "The attachment's id")),
    responses((status = 200, description = "The file, with its stored type (any type the allow-list admits) and `Content-Disposition: attachment`", content_type = "*/*", body = String), (status = 400, description = "Malformed query or header", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such attachment for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (row, body) =
        records::open_attachment(state.engine().store(), &caller.tenant, &state.config().attachments, &id)
            .await
            .map_err(records_error)?;
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    let value = |text: String| HeaderValue::from_str(&text).map_err(|_| ApiError::internal());
    headers.insert(header::CONTENT_TYPE, value(row.content_type.clone())?);
    headers.insert(header::CONTENT_LENGTH, value(row.size_bytes.to_string())?);
    headers.insert(header::CONTENT_DISPOSITION, value(content_disposition(&row.file_name))?);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::ETAG, value(format!("\"{}\"", row.sha256))?);
    Ok(response)
}

/// `GET /v1/instances/{id}/timeline`: history and interactions together, newest first.
#[utoipa::path(
    get,
    path = "/v1/instances/{id}/timeline",
    operation_id = "instances_timeline",
    tag = "instances",
    params(("id" = String, Path, description = "The instance's id"), ("limit" = Option<u32>, Query, maximum = 500, description = "Page size, default 50, at most 500"), ("cursor" = Option<String>, Query, description = "From next_cursor")),
    responses((status = 200, description = "A page, newest first", body = TimelinePage), (status = 400, description = "Malformed query or header", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such instance for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 422, description = "A bad cursor", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn timeline(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<super::instances::PageQuery>,
) -> Result<Reply, ApiError> {
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let query = TimelineQuery { limit: query.limit, after };
    let page = records::timeline(state.engine().store(), &caller.tenant, &id, &query)
        .await
        .map_err(records_error)?;
    Ok(Reply::ok(json!({
        "items": page.items.iter().map(timeline_json).collect::<Vec<_>>(),
        "next_cursor": page.next.as_ref().map(encode_cursor),
    })))
}

/// The reports.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub(super) enum ReportName {
    /// Per stage: visits entered, moved on, closed won and lost.
    Funnel,
    /// Moves, wins and losses by the assignee when the instance moved.
    ByUser,
    /// Instances started, moves, wins and losses per period.
    ByPeriod,
    /// Median and 90th percentile of time per stage.
    TimeInStage,
    /// SLA clocks met, breached and open per scope.
    Sla,
}

/// How a report is answered.
#[derive(Clone, Copy, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum ReportFormatParam {
    /// `application/json`.
    #[default]
    Json,
    /// `text/csv` with a header line.
    Csv,
    /// `image/svg+xml` (funnel and time-in-stage only).
    Svg,
}

/// The periods of a by-period report.
#[derive(Clone, Copy, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum PeriodParam {
    /// Calendar days.
    #[default]
    Day,
    /// ISO weeks.
    Week,
    /// Calendar months.
    Month,
}

/// A report: its name and rows (members by report: see `crm report --help`).
#[derive(ToSchema)]
#[allow(dead_code)] // Documentation only: utoipa reads the fields.
pub struct ReportBody {
    /// The report's name.
    report: String,
    /// One object per stage, user, period or scope.
    #[schema(value_type = Vec<Object>)]
    rows: Vec<Json>,
}

/// `GET /v1/reports/{kind}` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReportParams {
    #[serde(default, deserialize_with = "super::views::non_empty")]
    from: Option<String>,
    #[serde(default, deserialize_with = "super::views::non_empty")]
    to: Option<String>,
    #[serde(default, deserialize_with = "super::views::non_empty")]
    tz: Option<String>,
    #[serde(default)]
    period: PeriodParam,
    #[serde(default, deserialize_with = "super::views::non_empty")]
    definition: Option<String>,
    #[serde(default, deserialize_with = "super::views::non_empty")]
    entity: Option<String>,
    #[serde(default, deserialize_with = "super::views::non_empty")]
    won: Option<String>,
    #[serde(default, deserialize_with = "super::views::non_empty")]
    lost: Option<String>,
    #[serde(default)]
    format: ReportFormatParam,
}

/// `GET /v1/reports/{kind}`: a report over `[from, to)`; needs `reports:read`.
#[utoipa::path(
    get,
    path = "/v1/reports/{kind}",
    operation_id = "reports_get",
    tag = "records",
    params(("kind" = ReportName, Path, description = "Which report"), ("from" = Option<String>, Query, description = "Start: a date (midnight in tz) or an RFC 3339 time; default 30 days before `to`"), ("to" = Option<String>, Query, description = "End, exclusive: a date or an RFC 3339 time; default now"), ("tz" = Option<String>, Query, description = "IANA time zone of periods and dates, default UTC"), ("period" = Option<PeriodParam>, Query, description = "Periods of by-period"), ("definition" = Option<String>, Query, description = "Only instances of this definition"), ("entity" = Option<String>, Query, description = "Only instances of this entity"), ("won" = Option<String>, Query, description = "Comma-separated stages that count as won (default won,closed_won)"), ("lost" = Option<String>, Query, description = "Comma-separated stages that count as lost (default lost,closed_lost)"), ("format" = Option<ReportFormatParam>, Query, description = "json, csv or svg")),
    responses((status = 200, description = "The report (JSON; CSV or SVG with `format`)", content((ReportBody = "application/json"), (String = "text/csv"), (String = "image/svg+xml"))), (status = 400, description = "Malformed query or header", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 403, description = "The token lacks `reports:read`", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 422, description = "A bad window, time zone, or no SVG for this report", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn report(
    State(state): State<AppState>,
    caller: Caller,
    Path(kind): Path<ReportName>,
    Query(params): Query<ReportParams>,
) -> Result<Response, ApiError> {
    caller.require(super::auth::permissions::READ_REPORTS)?;
    let query = report_query(kind, &params).map_err(records_error)?;
    let report =
        records::run_report(state.engine().store(), &caller.tenant, &query).await.map_err(records_error)?;
    let typed = |content_type: &'static str, body: String| {
        ([(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], body).into_response()
    };
    Ok(match params.format {
        ReportFormatParam::Json => Reply::ok(report.to_json()).into_response(),
        ReportFormatParam::Csv => typed("text/csv; charset=utf-8", report.to_csv()),
        ReportFormatParam::Svg => typed("image/svg+xml", report.to_svg().map_err(records_error)?),
    })
}

fn report_query(kind: ReportName, params: &ReportParams) -> Result<ReportQuery, RecordsError> {
    let tz = parse_tz(params.tz.as_deref().unwrap_or("UTC"))?;
    let to = params.to.as_deref().map(|t| parse_bound(t, tz)).transpose()?.unwrap_or_else(Utc::now);
    let from =
        params.from.as_deref().map(|t| parse_bound(t, tz)).transpose()?.unwrap_or(to - Duration::days(30));
    let kind = match kind {
        ReportName::Funnel => ReportKind::Funnel,
        ReportName::ByUser => ReportKind::ByUser,
        ReportName::ByPeriod => ReportKind::ByPeriod,
        ReportName::TimeInStage => ReportKind::TimeInStage,
        ReportName::Sla => ReportKind::Sla,
    };
    let mut query = ReportQuery::new(kind, from, to);
    query.tz = tz;
    query.period = match params.period {
        PeriodParam::Day => Period::Day,
        PeriodParam::Week => Period::Week,
        PeriodParam::Month => Period::Month,
    };
    query.filter.definition = params.definition.clone();
    query.filter.entity = params.entity.clone();
    let list =
        |text: &str| text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    if let Some(won) = &params.won {
        query.filter.won = list(won);
    }
    if let Some(lost) = &params.lost {
        query.filter.lost = list(lost);
    }
    Ok(query)
}

#[cfg(test)]
mod tests {
    use super::content_disposition;

    #[test]
    fn file_names_are_quoted_and_encoded() {
        assert_eq!(
            content_disposition("Offre été \"final\".pdf"),
            "attachment; filename=\"Offre _t_ _final_.pdf\"; filename*=UTF-8''Offre%20%C3%A9t%C3%A9%20%22final%22.pdf"
        );
    }
}
