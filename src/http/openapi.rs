//! The OpenAPI 3.1 document (`GET /openapi.json`), generated from the routes' annotations with
//! utoipa (the schemas are in `schemas`); `schema/openapi.json` is the committed copy, kept equal
//! by a test.

use serde_json::Value as Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::schemas::{Diagnostic, Problem};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "nexus-crm", description = "The CRM workflow engine's HTTP API (`crm serve`). Every `/v1` route \
        needs `Authorization: Bearer <token>` (`crm token create`); the token fixes the tenant, the user, \
        their roles and permissions. Errors are RFC 9457 problem documents with a stable `code`. Every POST \
        takes an `Idempotency-Key`."),
    paths(
        super::ops::healthz, super::ops::readyz, super::ops::metrics,
        super::definitions::validate, super::definitions::deploy, super::definitions::list,
        super::definitions::versions, super::definitions::source, super::definitions::activate,
        super::definitions::deactivate, super::definitions::graph,
        super::instances::create, super::instances::get, super::instances::list, super::instances::patch,
        super::instances::fire, super::instances::approve, super::instances::reject,
        super::instances::complete_branch, super::instances::assign, super::instances::history,
        super::work::sla, super::work::dashboard, super::work::delegations, super::work::create_delegation,
        super::work::remove_delegation,
        super::records::create_contact, super::records::contacts, super::records::contact,
        super::records::create_lead, super::records::convert_lead, super::records::opportunities,
        super::records::opportunity, super::records::create_campaign, super::records::campaigns,
        super::records::campaign, super::outbox::list, super::outbox::replay, super::outbox::discard,
        super::interactions::create, super::interactions::list, super::interactions::get,
        super::interactions::attach, super::interactions::download, super::interactions::timeline,
        super::interactions::report, super::instances::get_by_number,
        super::reloads::diagnostics,
    ),
    components(schemas(
        Problem, Diagnostic, super::definitions::GraphFormat, super::instances::StatusFilter,
        super::work::ReasonFilter, super::work::DashboardSort, super::work::SortDirection,
        super::outbox::OutboxStatusFilter, super::interactions::KindField, super::interactions::ReportName,
        super::interactions::ReportFormatParam, super::interactions::PeriodParam,
    )),
    modifiers(&Bearer),
    tags(
        (name = "operations", description = "Health, readiness, metrics."),
        (name = "definitions", description = "Validate, deploy and read definitions."),
        (name = "instances", description = "Run instances: create, read, change, fire, approve."),
        (name = "work", description = "Dashboards, delegations, SLA clocks."),
        (name = "records", description = "Contacts, leads, opportunities, campaigns."),
    )
)]
pub struct ApiDoc;

/// Adds the bearer scheme every `/v1` route uses.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON.
pub fn document() -> Json {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Json::Null);
    not_null_parameters(&mut document);
    document
}

/// An optional query or header parameter is left out, never `null` (HTTP has no null): utoipa
/// writes `Option<T>` as "T or null", which would invite clients (and schemathesis) to send the
/// text `null`. Keep only the `T`.
fn not_null_parameters(document: &mut Json) {
    let Some(paths) = document.get_mut("paths").and_then(Json::as_object_mut) else { return };
    let parameters = paths
        .values_mut()
        .filter_map(Json::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("parameters").and_then(Json::as_array_mut))
        .flatten();
    for schema in parameters.filter_map(|parameter| parameter.get_mut("schema")) {
        if let Some(types) = schema.get_mut("type").and_then(Json::as_array_mut) {
            types.retain(|t| t != "null");
            if let [only] = types.as_slice() {
                let only = only.clone();
                schema["type"] = only;
            }
        }
        let not_null = schema.get("oneOf").and_then(Json::as_array).and_then(|choices| {
            let rest: Vec<&Json> =
                choices.iter().filter(|c| c.get("type") != Some(&Json::from("null"))).collect();
            (rest.len() == 1 && choices.len() == 2).then(|| rest[0].clone())
        });
        if let Some(only) = not_null {
            *schema = only;
        }
    }
}

/// `GET /openapi.json`.
pub(super) async fn serve_document() -> axum::Json<Json> {
    axum::Json(document())
}
