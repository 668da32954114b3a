//! What hot reload last did with each definition file (`crm serve` watching its directory), and
//! `GET /v1/definitions/{id}/diagnostics`, which shows it.
//!
//! The watcher (in `cli`) records one [`Reload`] per definition id; a rejected file leaves the
//! running version live, and its findings stay here until a later save of the same id deploys
//! or proves unchanged. The records are per process: each replica watches its own directory.

use std::collections::HashMap;
use std::sync::RwLock;

use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};

use super::error::ApiError;
use super::reply::Reply;
use super::{AppState, Caller};
use crate::engine::service::EngineError;
use crate::report::{JsonOutput, Report};
use crate::store::TenantId;

/// What a reload did with a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// A new version is live.
    Deployed {
        /// The version now starting new instances.
        version: u64,
    },
    /// The file holds what the latest version holds (formatting and key order aside).
    Unchanged {
        /// The latest version.
        version: u64,
    },
    /// The file has errors; the running version stays live.
    Invalid,
    /// The new version would strand live instances (`CRM08xx`) and no stage mapping was given;
    /// the running version stays live.
    Strands,
}

impl ReloadOutcome {
    /// `deployed`, `unchanged`, `invalid` or `strands`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deployed { .. } => "deployed",
            Self::Unchanged { .. } => "unchanged",
            Self::Invalid => "invalid",
            Self::Strands => "strands",
        }
    }

    /// Whether the file's content is what new instances start on.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Deployed { .. } | Self::Unchanged { .. })
    }
}

/// One reload of a definition file: the file, its findings, and what was done.
#[derive(Clone, Debug)]
pub struct Reload {
    /// The file, with its source and every finding (spans in that source).
    pub report: Report,
    /// What was done.
    pub outcome: ReloadOutcome,
    /// When.
    pub at: DateTime<Utc>,
}

/// The last reload of each definition id, per tenant.
#[derive(Debug, Default)]
pub(super) struct Reloads {
    by_id: RwLock<HashMap<(TenantId, String), Reload>>,
}

impl Reloads {
    pub(super) fn record(&self, tenant: &TenantId, id: &str, reload: Reload) {
        if let Ok(mut map) = self.by_id.write() {
            map.insert((tenant.clone(), id.to_owned()), reload);
        }
    }

    pub(super) fn get(&self, tenant: &TenantId, id: &str) -> Option<Reload> {
        let map = self.by_id.read().ok()?;
        map.get(&(tenant.clone(), id.to_owned())).cloned()
    }
}

/// `GET /v1/definitions/{id}/diagnostics`: what hot reload last made of the definition's file.
#[utoipa::path(
    get,
    path = "/v1/definitions/{id}/diagnostics",
    operation_id = "definitions_diagnostics",
    tag = "definitions",
    params(("id" = String, Path, description = "The id")),
    responses((status = 200, description = "The last reload's findings", body = super::schemas::ReloadDiagnostics), (status = 400, description = "Malformed query, header or path", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 401, description = "No valid bearer token", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource for this tenant", body = super::schemas::Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limited (Retry-After)", body = super::schemas::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(super) async fn diagnostics(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Reply, ApiError> {
    let reload = state.inner.reloads.get(&caller.tenant, &id);
    let live = match state.engine().definition(&caller.tenant, &id, None).await {
        Ok(row) => Some(row.version),
        Err(EngineError::UnknownDefinition { .. }) => None,
        Err(error) => return Err(error.into()),
    };
    if reload.is_none() && live.is_none() {
        return Err(EngineError::UnknownDefinition { id }.into());
    }
    let (file, status, at, found) = match &reload {
        Some(reload) => {
            let output = serde_json::to_value(JsonOutput::new(std::slice::from_ref(&reload.report)))
                .unwrap_or(Json::Null);
            (
                Json::String(reload.report.path.clone()),
                reload.outcome.as_str(),
                Json::String(super::views::time(reload.at)),
                output.get("diagnostics").cloned().unwrap_or(json!([])),
            )
        }
        None => (Json::Null, "deployed", Json::Null, json!([])),
    };
    let mut body = json!({ "id": id, "status": status, "diagnostics": found });
    // Optional members are absent rather than null (the OpenAPI document says so).
    if let Some(version) = live {
        body["live_version"] = json!(version);
    }
    if !file.is_null() {
        body["file"] = file;
        body["reloaded_at"] = at;
    }
    Ok(Reply::ok(body))
}
