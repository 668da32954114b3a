//! Domain records: contacts, leads (and their conversion), opportunities and campaigns. A lead,
//! an opportunity and a campaign each run as an instance of the named definition; the record and
//! its instance are written in one transaction.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::error::ApiError;
use super::reply::{Reply, idempotent, parse};
use super::views::{time, view_json};
use super::work::date;
use super::{AppState, Caller};
use crate::engine::service::{NewCampaign, NewContact, NewOpportunity};
use crate::store::{Campaign, Contact, EntityQuery, Opportunity, Store, Stored};

fn contact_json(c: &Contact) -> Json {
    json!({
        "id": c.id, "instance_id": c.instance_id, "name": c.name, "email": c.email, "phone": c.phone,
        "company": c.company, "status": c.status, "score": c.score, "data": c.data,
    })
}

fn opportunity_json(o: &Opportunity) -> Json {
    json!({
        "id": o.id, "contact_id": o.contact_id, "instance_id": o.instance_id, "stage": o.stage,
        "value": o.value, "currency": o.currency, "close_date": o.close_date.map(|d| d.to_string()),
        "probability": o.probability, "data": o.data,
    })
}

fn campaign_json(c: &Campaign) -> Json {
    json!({
        "id": c.id, "instance_id": c.instance_id, "name": c.name, "type": c.kind,
        "start": c.start_date.map(|d| d.to_string()), "end": c.end_date.map(|d| d.to_string()),
        "metrics": c.metrics, "status": c.status,
    })
}

/// A stored record with its times.
fn stored<T>(record: &Stored<T>, json: fn(&T) -> Json) -> Json {
    let mut out = json(&record.value);
    out["created_at"] = Json::String(time(record.created_at));
    out["updated_at"] = Json::String(time(record.updated_at));
    out
}

/// A listing query: status (or stage) filter and id keyset pages.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    #[serde(default, deserialize_with = "super::views::non_empty")]
    status: Option<String>,
    #[serde(default, deserialize_with = "super::views::page_limit")]
    limit: u32,
    #[serde(default, deserialize_with = "super::views::non_empty")]
    after: Option<String>,
}

impl ListQuery {
    fn entity_query(self) -> EntityQuery {
        EntityQuery { status: self.status, limit: self.limit, after: self.after }
    }
}

/// The next page's `after`: the last id, when the page is full.
fn next_after<T>(items: &[Stored<T>], limit: u32, id: fn(&T) -> &str) -> Option<String> {
    let full = match limit {
        0 => 50,
        n => n.min(500),
    } as usize;
    (items.len() >= full).then(|| items.last().map(|s| id(&s.value).to_owned())).flatten()
}

/// `POST /v1/contacts` and `POST /v1/leads` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactBody {
    name: String,
    email: Option<String>,
    phone: Option<String>,
    company: Option<String>,
    status: Option<String>,
    score: Option<f64>,
    #[serde(default = "super::views::empty_object", deserialize_with = "super::views::object")]
    fields: Json,
    /// Leads only: the definition whose `lead` entity runs the lead.
    definition: Option<String>,
    /// Leads only: the lead instance's data.
    #[serde(default = "super::views::empty_object", deserialize_with = "super::views::object")]
    data: Json,
}

impl ContactBody {
    fn new_contact(&self) -> NewContact {
        NewContact {
            name: self.name.clone(),
            email: self.email.clone(),
            phone: self.phone.clone(),
            company: self.company.clone(),
            status: self.status.clone(),
            score: self.score,
            data: self.fields.clone(),
        }
    }
}

/// `POST /v1/contacts`: a contact without a pipeline.
#[utoipa::path(
    post,
    path = "/v1/contacts",
    operation_id = "records_create_contact",
    tag = "records",
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h")),
    request_body = super::schemas::NewContact,
    responses((status = 201, description = "Created", body = Object), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid body, data or definition", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn create_contact(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, ApiError> {
    let request: ContactBody = parse(&body)?;
    let work = async {
        let contact = state.engine().create_contact(&caller.tenant, request.new_contact()).await?;
        Ok(Reply::ok(contact_json(&contact)).with_status(StatusCode::CREATED))
    };
    idempotent(&state, &caller, &headers, "POST /v1/contacts", StatusCode::CREATED, &body, work).await
}

/// `POST /v1/leads`: a contact with status `lead` and its `lead` instance of `definition`.
#[utoipa::path(
    post,
    path = "/v1/leads",
    operation_id = "records_create_lead",
    tag = "records",
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h")),
    request_body = super::schemas::NewLead,
    responses((status = 201, description = "contact and instance", body = super::schemas::RecordAndInstance), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 409, description = "Stale version or wrong state", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid body, data or definition", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn create_lead(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, ApiError> {
    let request: ContactBody = parse(&body)?;
    let definition = request
        .definition
        .clone()
        .ok_or_else(|| ApiError::invalid_body("a lead needs `definition`: the pipeline it runs in"))?;
    let work = async {
        let running = state
            .engine()
            .create_lead(&caller.tenant, &caller.actor, &definition, request.new_contact(), &request.data)
            .await?;
        let body =
            json!({ "contact": contact_json(&running.record), "instance": view_json(&running.instance) });
        Ok(Reply::ok(body).with_status(StatusCode::CREATED))
    };
    idempotent(&state, &caller, &headers, "POST /v1/leads", StatusCode::CREATED, &body, work).await
}

/// `POST /v1/leads/{id}/convert` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConvertBody {
    value: f64,
    currency: String,
    probability: f64,
    close_date: Option<String>,
    #[serde(default = "super::views::empty_object", deserialize_with = "super::views::object")]
    data: Json,
}

/// `POST /v1/leads/{id}/convert`: a qualified lead becomes an opportunity (once).
#[utoipa::path(
    post,
    path = "/v1/leads/{id}/convert",
    operation_id = "records_convert_lead",
    tag = "records",
    params(("id" = String, Path, description = "The id"), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h")),
    request_body = super::schemas::Convert,
    responses((status = 201, description = "opportunity and instance", body = super::schemas::RecordAndInstance), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 409, description = "Stale version or wrong state", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid body, data or definition", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn convert_lead(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, ApiError> {
    let request: ConvertBody = parse(&body)?;
    let close_date = date("close_date", request.close_date.as_deref())?;
    let work = async {
        let new = NewOpportunity {
            value: request.value,
            currency: request.currency,
            probability: request.probability,
            close_date,
            data: request.data,
        };
        let running = state.engine().convert_lead(&caller.tenant, &caller.actor, &id, new).await?;
        let body = json!({ "opportunity": opportunity_json(&running.record), "instance": view_json(&running.instance) });
        Ok(Reply::ok(body).with_status(StatusCode::CREATED))
    };
    let what = format!("POST /v1/leads/{id}/convert");
    idempotent(&state, &caller, &headers, &what, StatusCode::CREATED, &body, work).await
}

/// `POST /v1/campaigns` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CampaignBody {
    definition: String,
    name: String,
    #[serde(rename = "type", default)]
    kind: String,
    start: Option<String>,
    end: Option<String>,
    #[serde(default = "super::views::empty_object", deserialize_with = "super::views::object")]
    data: Json,
}

/// `POST /v1/campaigns`: a campaign and its `campaign` instance of `definition`.
#[utoipa::path(
    post,
    path = "/v1/campaigns",
    operation_id = "records_create_campaign",
    tag = "records",
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 h")),
    request_body = super::schemas::NewCampaign,
    responses((status = 201, description = "campaign and instance", body = super::schemas::RecordAndInstance), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 409, description = "Stale version or wrong state", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid body, data or definition", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn create_campaign(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, ApiError> {
    let request: CampaignBody = parse(&body)?;
    let (start, end) = (date("start", request.start.as_deref())?, date("end", request.end.as_deref())?);
    let work = async {
        let new = NewCampaign { name: request.name, kind: request.kind, start, end, data: request.data };
        let running =
            state.engine().create_campaign(&caller.tenant, &caller.actor, &request.definition, new).await?;
        let body =
            json!({ "campaign": campaign_json(&running.record), "instance": view_json(&running.instance) });
        Ok(Reply::ok(body).with_status(StatusCode::CREATED))
    };
    idempotent(&state, &caller, &headers, "POST /v1/campaigns", StatusCode::CREATED, &body, work).await
}

/// `GET /v1/contacts/{id}`.
#[utoipa::path(
    get,
    path = "/v1/contacts/{id}",
    operation_id = "records_contact",
    tag = "records",
    params(("id" = String, Path, description = "The id")),
    responses((status = 200, description = "The contact", body = Object), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn contact(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Reply, ApiError> {
    Ok(Reply::ok(stored(&state.engine().contact(&caller.tenant, &id).await?, contact_json)))
}

/// `GET /v1/opportunities/{id}`.
#[utoipa::path(
    get,
    path = "/v1/opportunities/{id}",
    operation_id = "records_opportunity",
    tag = "records",
    params(("id" = String, Path, description = "The id")),
    responses((status = 200, description = "The opportunity", body = Object), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn opportunity(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Reply, ApiError> {
    Ok(Reply::ok(stored(&state.engine().opportunity(&caller.tenant, &id).await?, opportunity_json)))
}

/// `GET /v1/campaigns/{id}`.
#[utoipa::path(
    get,
    path = "/v1/campaigns/{id}",
    operation_id = "records_campaign",
    tag = "records",
    params(("id" = String, Path, description = "The id")),
    responses((status = 200, description = "The campaign", body = Object), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn campaign(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Reply, ApiError> {
    Ok(Reply::ok(stored(&state.engine().campaign(&caller.tenant, &id).await?, campaign_json)))
}

/// `GET /v1/contacts`: by id, `status` filter, pages after the id `after`.
#[utoipa::path(
    get,
    path = "/v1/contacts",
    operation_id = "records_contacts",
    tag = "records",
    params(("status" = Option<String>, Query, description = "Filter"), ("limit" = Option<u32>, Query, maximum = 500, description = "Page size"), ("after" = Option<String>, Query, description = "From next_after")),
    responses((status = 200, description = "By id", body = super::schemas::Records), (status = 400, description = "Malformed query or header", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn contacts(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Reply, ApiError> {
    let limit = query.limit;
    let rows = state.engine().store().contacts(&caller.tenant, &query.entity_query()).await?;
    Ok(Reply::ok(json!({
        "items": rows.iter().map(|r| stored(r, contact_json)).collect::<Vec<_>>(),
        "next_after": next_after(&rows, limit, |c| &c.id),
    })))
}

/// `GET /v1/opportunities`: by id, `status` filters by stage.
#[utoipa::path(
    get,
    path = "/v1/opportunities",
    operation_id = "records_opportunities",
    tag = "records",
    params(("status" = Option<String>, Query, description = "Stage filter"), ("limit" = Option<u32>, Query, maximum = 500, description = "Page size"), ("after" = Option<String>, Query, description = "From next_after")),
    responses((status = 200, description = "By id", body = super::schemas::Records), (status = 400, description = "Malformed query or header", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn opportunities(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Reply, ApiError> {
    let limit = query.limit;
    let rows = state.engine().store().opportunities(&caller.tenant, &query.entity_query()).await?;
    Ok(Reply::ok(json!({
        "items": rows.iter().map(|r| stored(r, opportunity_json)).collect::<Vec<_>>(),
        "next_after": next_after(&rows, limit, |o| &o.id),
    })))
}

/// `GET /v1/campaigns`.
#[utoipa::path(
    get,
    path = "/v1/campaigns",
    operation_id = "records_campaigns",
    tag = "records",
    params(("status" = Option<String>, Query, description = "Filter"), ("limit" = Option<u32>, Query, maximum = 500, description = "Page size"), ("after" = Option<String>, Query, description = "From next_after")),
    responses((status = 200, description = "By id", body = super::schemas::Records), (status = 400, description = "Malformed query or header", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn campaigns(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Reply, ApiError> {
    let limit = query.limit;
    let rows = state.engine().store().campaigns(&caller.tenant, &query.entity_query()).await?;
    Ok(Reply::ok(json!({
        "items": rows.iter().map(|r| stored(r, campaign_json)).collect::<Vec<_>>(),
        "next_after": next_after(&rows, limit, |c| &c.id),
    })))
}
