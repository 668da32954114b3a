//! One error type for every route, rendered as RFC 9457 `application/problem+json`.
//!
//! The body always has `type`, `title`, `status`, `detail` and a stable `code`: the engine's
//! error code (`crm::machine::wrong_stage`) or one of this module's (`crm::http::…`). The status is
//! chosen in one place, [`ApiError::from_engine`]. Database failures become a bare 500 whose
//! detail says nothing of the database; the cause goes to the log.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use miette::Diagnostic as _;
use serde_json::{Map, Value as Json, json};

use crate::diagnostic::Diagnostic;
use crate::engine::machine::MachineError;
use crate::engine::service::EngineError;
use crate::report::{JsonOutput, Report};
use crate::store::StoreError;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A refused or failed request, as the client sees it (boxed: it travels in every `Result`).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError(Box<Problem>);

/// What an [`ApiError`] holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code, e.g. `crm::machine::wrong_stage`.
    pub code: String,
    /// What went wrong, for a person.
    pub detail: String,
    /// Extra members: `diagnostics` (an invalid definition), `errors` (invalid data), `help`.
    pub extra: Map<String, Json>,
    /// Seconds to wait, for 429 (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status`, `code` and `detail`.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self(Box::new(Problem {
            status,
            code: code.to_owned(),
            detail: detail.into(),
            extra: Map::new(),
            retry_after: None,
        }))
    }

    /// What the error says.
    pub fn problem(&self) -> &Problem {
        &self.0
    }

    /// Adds a member to the body.
    pub fn with(mut self, key: &str, value: Json) -> Self {
        self.0.extra.insert(key.to_owned(), value);
        self
    }

    /// 401: no usable bearer token. Always the same body, whatever was wrong with the token.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "crm::http::unauthorized",
            "a valid bearer token is required (`Authorization: Bearer …`; create one with `crm token create`)",
        )
    }

    /// 403: the token's user lacks `permission`.
    pub fn forbidden(permission: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "crm::http::forbidden",
            format!("this needs the permission `{permission}`"),
        )
    }

    /// 404 for a route that does not exist.
    pub fn no_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, "crm::http::not_found", "no such resource")
    }

    /// 400: a malformed request (query string, header, path).
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "crm::http::bad_request", detail)
    }

    /// 422: a body that is not what the route takes.
    pub fn invalid_body(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "crm::http::invalid_body", detail)
    }

    /// 428: a change that must name the version it is based on.
    pub fn precondition_required() -> Self {
        Self::new(
            StatusCode::PRECONDITION_REQUIRED,
            "crm::http::if_match_required",
            "send `If-Match: \"<version>\"` with the version (ETag) you read",
        )
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(retry_after: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "crm::http::rate_limited",
            "too many requests for this token; retry later",
        );
        error.0.retry_after = Some(retry_after.max(1));
        error
    }

    /// 500, saying nothing of the cause (which is logged).
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "crm::http::internal",
            "internal error; see the server log",
        )
    }

    /// 422 for a definition with errors: its findings in the `crm check --format json` contract.
    pub fn invalid_definition(path: &str, source: &str, diagnostics: Vec<Diagnostic>) -> Self {
        let report = Report::new(path, source, diagnostics);
        let errors = report.error_count();
        let json = serde_json::to_value(JsonOutput::new(&[report])).unwrap_or(Json::Null);
        let plural = if errors == 1 { "" } else { "s" };
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "crm::engine::invalid_definition",
            format!("the definition has {errors} error{plural}"),
        )
        .with("diagnostics", json.get("diagnostics").cloned().unwrap_or(Json::Array(Vec::new())))
    }

    /// The status and body for an engine error.
    pub fn from_engine(error: EngineError) -> Self {
        use StatusCode as S;
        let status = match &error {
            EngineError::UnknownDefinition { .. }
            | EngineError::UnknownInstance { .. }
            | EngineError::UnknownNumber { .. }
            | EngineError::UnknownRecord { .. } => S::NOT_FOUND,
            EngineError::UnknownEntity { .. }
            | EngineError::InvalidDelegation { .. }
            | EngineError::InvalidRecord { .. } => S::UNPROCESSABLE_ENTITY,
            EngineError::Conflict { .. }
            | EngineError::NotConvertible { .. }
            | EngineError::DefinitionInactive { .. } => S::CONFLICT,
            // Nothing is wrong with the request; the instance was too busy: retry.
            EngineError::Contention { .. } => S::SERVICE_UNAVAILABLE,
            EngineError::Machine(machine) => machine_status(machine),
            EngineError::Store(store) => return Self::from_store(store),
            // A stored definition this build no longer compiles, an inconsistent row, or a
            // variant added later: the server's problem, not the caller's.
            _ => {
                tracing::error!(error = %error, "engine failure");
                return Self::internal();
            }
        };
        let mut api = Self::new(status, &code_of(&error), error.to_string());
        if let Some(help) = error.help() {
            api = api.with("help", Json::String(help.to_string()));
        }
        if let EngineError::Machine(MachineError::InvalidData { violations }) = &error {
            api = api.with("errors", json!(violations.iter().map(ToString::to_string).collect::<Vec<_>>()));
        }
        api
    }

    /// The status and body for a store error: a missing row, a duplicate, a bad cursor; anything
    /// else is a 500 that does not say why.
    pub fn from_store(error: &StoreError) -> Self {
        let status = match error {
            StoreError::NotFound { .. } => StatusCode::NOT_FOUND,
            StoreError::Duplicate { .. } | StoreError::Conflict { .. } => StatusCode::CONFLICT,
            StoreError::InvalidCursor => StatusCode::UNPROCESSABLE_ENTITY,
            _ => {
                tracing::error!(error = %error, source = ?std::error::Error::source(error), "store failure");
                return Self::internal();
            }
        };
        Self::new(status, &code_of(error), error.to_string())
    }

    /// The problem document.
    pub fn body(&self) -> Json {
        let p = &self.0;
        let mut body = Map::new();
        body.insert("type".into(), Json::String("about:blank".into()));
        let title = p.status.canonical_reason().unwrap_or("Error");
        body.insert("title".into(), Json::String(title.into()));
        body.insert("status".into(), Json::from(p.status.as_u16()));
        body.insert("detail".into(), Json::String(p.detail.clone()));
        body.insert("code".into(), Json::String(p.code.clone()));
        for (key, value) in &p.extra {
            body.insert(key.clone(), value.clone());
        }
        Json::Object(body)
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        Self::from_engine(error)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self::from_store(&error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut response = (self.0.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = self.0.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The diagnostic code of an error, or a generic one.
fn code_of(error: &dyn miette::Diagnostic) -> String {
    error.code().map_or_else(|| "crm::http::error".to_owned(), |code| code.to_string())
}

/// 409 for what the instance's state refuses now, 403 for who may not, 422 for input that can
/// never work.
fn machine_status(error: &MachineError) -> StatusCode {
    use MachineError as M;
    use StatusCode as S;
    match error {
        M::GuardRefused { .. } | M::NotAnApprover { .. } | M::SelfAssignment { .. } => S::FORBIDDEN,
        M::UnknownEntity { .. }
        | M::UnknownTransition { .. }
        | M::WrongEntity { .. }
        | M::InvalidData { .. }
        | M::Evaluation { .. }
        | M::InvalidPattern { .. }
        | M::BranchNotManual { .. } => S::UNPROCESSABLE_ENTITY,
        M::NotACandidate { .. } => S::UNPROCESSABLE_ENTITY,
        M::UnknownGuard { .. } | M::UnknownStrategy { .. } => S::INTERNAL_SERVER_ERROR,
        _ => S::CONFLICT,
    }
}
