//! `crm serve`: the engine's HTTP API (axum).
//!
//! [`router`] builds the whole API over an [`AppState`], so tests drive it without a socket and
//! [`serve`] only adds the listener and graceful shutdown. Handlers are thin: parse, call one
//! engine function, map the result; no SQL and no business rule here.
//!
//! - [`auth`]: bearer tokens → [`Caller`] (tenant, actor, roles, permissions).
//! - [`error`]: [`ApiError`], RFC 9457 problem details with the engine's stable codes.
//! - `reply`: responses with `ETag`s, and idempotent replay of `POST`s.
//! - `definitions`, `instances`, `work` (dashboard, delegations, SLA), `records` (contacts,
//!   leads, opportunities, campaigns), `outbox` (dead letters), `ops`: the routes; `views`: the JSON shapes they answer.
//! - `openapi`: the OpenAPI 3.1 document (`/openapi.json`) from the routes' annotations and `schemas`.
//!
//! Invariants: every route but `/healthz`, `/readyz` and `/metrics` needs a token, and every
//! engine call is made with the token's tenant; an id of another tenant is answered exactly
//! like an id that does not exist. Error bodies never carry a database message.

pub mod auth;
mod definitions;
pub mod error;
mod instances;
mod interactions;
mod limit;
pub mod openapi;
mod ops;
mod outbox;
mod records;
mod reloads;
mod reply;
mod schemas;
mod views;
mod work;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use self::auth::{Caller, NewToken, TokenError, create_token, hash_token};
pub use self::error::ApiError;
pub use self::limit::RateLimit;
pub use self::reloads::{Reload, ReloadOutcome};
use crate::engine::service::Engine;
use crate::store::AnyStore;

/// Limits and policies of a server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// The largest request body accepted (413 beyond).
    pub body_limit: usize,
    /// How long a request may take before it is answered 408.
    pub timeout: Duration,
    /// Requests per token; `None` for no limit.
    pub rate_limit: Option<RateLimit>,
    /// Where attachments go, their size limit (instead of `body_limit`) and allowed types.
    pub attachments: crate::records::AttachmentConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            body_limit: 1024 * 1024,
            timeout: Duration::from_secs(30),
            rate_limit: Some(RateLimit { per_second: 200.0, burst: 400.0 }),
            attachments: crate::records::AttachmentConfig::directory("crm-attachments"),
        }
    }
}

/// What every handler shares: the engine, the configuration and the server's counters.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine<AnyStore>,
    config: ServerConfig,
    ready: AtomicBool,
    limiter: limit::Limiter,
    metrics: ops::Metrics,
    reloads: reloads::Reloads,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl AppState {
    /// The state of a server running `engine`; ready at once (see [`AppState::set_ready`]).
    pub fn new(engine: Engine<AnyStore>, config: ServerConfig) -> Self {
        let limiter = limit::Limiter::new(config.rate_limit);
        Self {
            inner: Arc::new(Inner {
                engine,
                config,
                ready: AtomicBool::new(true),
                limiter,
                metrics: ops::Metrics::default(),
                reloads: reloads::Reloads::default(),
            }),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine<AnyStore> {
        &self.inner.engine
    }

    /// The server's configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// Whether `/readyz` may say ready (false while start-up definitions are being deployed).
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::SeqCst);
    }

    /// Records what hot reload did with definition `id`'s file (served at
    /// `GET /v1/definitions/{id}/diagnostics`).
    pub fn record_reload(&self, tenant: &crate::store::TenantId, id: &str, reload: Reload) {
        self.inner.reloads.record(tenant, id, reload);
    }

    /// What hot reload last did with definition `id`'s file.
    pub fn last_reload(&self, tenant: &crate::store::TenantId, id: &str) -> Option<Reload> {
        self.inner.reloads.get(tenant, id)
    }

    fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::SeqCst)
    }

    /// Takes one request from the token's allowance, or says how long to wait (429).
    fn check_rate(&self, token_id: &str) -> Result<(), ApiError> {
        self.inner.limiter.check(token_id).map_err(ApiError::too_many_requests)
    }
}

/// The whole API over `state`: routes, errors as problem details, request ids, tracing, body
/// limit, timeout and compression.
pub fn router(state: AppState) -> Router {
    let config = state.inner.config.clone();
    let request_id = HeaderName::from_static("x-request-id");
    let v1 = Router::new()
        .route("/definitions", get(definitions::list).post(definitions::deploy))
        .route("/definitions/validate", post(definitions::validate))
        .route("/definitions/{id}/versions", get(definitions::versions))
        .route("/definitions/{id}/source", get(definitions::source))
        .route("/definitions/{id}/graph", get(definitions::graph))
        .route("/definitions/{id}/activate", post(definitions::activate))
        .route("/definitions/{id}/deactivate", post(definitions::deactivate))
        .route("/instances", get(instances::list).post(instances::create))
        .route("/instances/{id}", get(instances::get).patch(instances::patch))
        .route("/instances/{id}/fire", post(instances::fire))
        .route("/instances/{id}/approve", post(instances::approve))
        .route("/instances/{id}/reject", post(instances::reject))
        .route("/instances/{id}/complete-branch", post(instances::complete_branch))
        .route("/instances/{id}/assign", post(instances::assign))
        .route("/instances/{id}/history", get(instances::history))
        .route("/instances/{id}/sla", get(work::sla))
        .route("/instances/by-number/{number}", get(instances::get_by_number))
        .route("/dashboard", get(work::dashboard))
        .route("/delegations", get(work::delegations).post(work::create_delegation))
        .route("/delegations/{id}", delete(work::remove_delegation))
        .route("/contacts", get(records::contacts).post(records::create_contact))
        .route("/contacts/{id}", get(records::contact))
        .route("/leads", post(records::create_lead))
        .route("/leads/{id}/convert", post(records::convert_lead))
        .route("/opportunities", get(records::opportunities))
        .route("/opportunities/{id}", get(records::opportunity))
        .route("/campaigns", get(records::campaigns).post(records::create_campaign))
        .route("/campaigns/{id}", get(records::campaign))
        .route("/outbox", get(outbox::list))
        .route("/outbox/{id}/replay", post(outbox::replay))
        .route("/outbox/{id}/discard", post(outbox::discard))
        .route("/definitions/{id}/diagnostics", get(reloads::diagnostics))
        .route("/interactions", get(interactions::list).post(interactions::create))
        .route("/interactions/{id}", get(interactions::get))
        .route("/attachments/{id}", get(interactions::download))
        .route("/instances/{id}/timeline", get(interactions::timeline))
        .route("/reports/{kind}", get(interactions::report))
        // Every route above reads its body under the server's limit; uploads, added after the
        // layer, stream under the attachment limit instead.
        .layer(RequestBodyLimitLayer::new(config.body_limit))
        .route("/interactions/{id}/attachments", post(interactions::attach));
    Router::new()
        .nest("/v1", v1)
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(openapi::serve_document))
        .fallback(|| async { ApiError::no_route() })
        .layer(middleware::from_fn_with_state(state.clone(), ops::record))
        .layer(middleware::from_fn(problems))
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, config.timeout))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Turns every error response that is not a problem document yet (a body-limit 413, a
/// timeout's 408, axum's own rejections and 405s) into one, keeping the status.
async fn problems(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(error::PROBLEM_JSON.as_bytes()));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (parts, body) = response.into_parts();
    // axum's rejection texts are short and say what was wrong with the request; keep them.
    let text = axum::body::to_bytes(body, 4096).await.ok().and_then(|b| String::from_utf8(b.to_vec()).ok());
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "crm::http::payload_too_large",
        StatusCode::REQUEST_TIMEOUT => "crm::http::timeout",
        StatusCode::METHOD_NOT_ALLOWED => "crm::http::method_not_allowed",
        StatusCode::NOT_FOUND => "crm::http::not_found",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "crm::http::unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "crm::http::invalid_body",
        s if s.is_server_error() => "crm::http::internal",
        _ => "crm::http::bad_request",
    };
    let detail = match text.filter(|t| !t.trim().is_empty() && status.is_client_error()) {
        Some(text) => text,
        None => status.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let mut response = ApiError::new(status, code, detail).into_response();
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    response
}

/// Serves `router(state)` on `listener` until `shutdown` completes, then stops accepting and
/// lets in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}
