//! Operations: `/healthz` (the process answers), `/readyz` (database reachable, start-up
//! definitions deployed) and `/metrics` (Prometheus text).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use crate::store::{QueueStats, Store, TenantId};

/// Upper bounds (seconds) of the latency histogram's buckets.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Request counts and latencies by route, method and status.
#[derive(Default)]
pub(super) struct Metrics {
    series: Mutex<BTreeMap<(String, String, u16), Series>>,
}

#[derive(Default, Clone)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

impl Metrics {
    fn observe(&self, route: String, method: String, status: u16, seconds: f64) {
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let s = series.entry((route, method, status)).or_default();
        s.count += 1;
        s.sum += seconds;
        for (bucket, bound) in s.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
    }

    fn render(&self) -> String {
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut out = String::new();
        // Writing into a `String` cannot fail.
        let _ = writeln!(out, "# HELP crm_http_requests_total HTTP requests by route, method and status.");
        let _ = writeln!(out, "# TYPE crm_http_requests_total counter");
        for ((route, method, status), s) in &series {
            let _ = writeln!(
                out,
                "crm_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {}",
                s.count
            );
        }
        let _ = writeln!(out, "# HELP crm_http_request_duration_seconds HTTP request latency.");
        let _ = writeln!(out, "# TYPE crm_http_request_duration_seconds histogram");
        let mut by_route: BTreeMap<(&str, &str), Series> = BTreeMap::new();
        for ((route, method, _), s) in &series {
            let total = by_route.entry((route, method)).or_default();
            total.count += s.count;
            total.sum += s.sum;
            for (t, b) in total.buckets.iter_mut().zip(s.buckets) {
                *t += b;
            }
        }
        for ((route, method), s) in &by_route {
            let labels = format!("route=\"{route}\",method=\"{method}\"");
            for (bound, n) in BUCKETS.iter().zip(s.buckets) {
                let _ =
                    writeln!(out, "crm_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}");
            }
            let _ =
                writeln!(out, "crm_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", s.count);
            let _ = writeln!(out, "crm_http_request_duration_seconds_sum{{{labels}}} {}", s.sum);
            let _ = writeln!(out, "crm_http_request_duration_seconds_count{{{labels}}} {}", s.count);
        }
        let count = |pred: &dyn Fn(&str, u16) -> bool| -> u64 {
            series.iter().filter(|((route, _, status), _)| pred(route, *status)).map(|(_, s)| s.count).sum()
        };
        let fired = count(&|route, status| route.ends_with("/fire") && (200..300).contains(&status));
        let conflicts = count(&|_, status| status == 409);
        let _ = writeln!(out, "# HELP crm_transitions_fired_total Transitions fired successfully over HTTP.");
        let _ = writeln!(out, "# TYPE crm_transitions_fired_total counter");
        let _ = writeln!(out, "crm_transitions_fired_total {fired}");
        let _ =
            writeln!(out, "# HELP crm_conflicts_total Requests answered 409 (stale version or wrong state).");
        let _ = writeln!(out, "# TYPE crm_conflicts_total counter");
        let _ = writeln!(out, "crm_conflicts_total {conflicts}");
        out
    }
}

/// Records every request's route, status and latency.
pub(super) async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    state.inner.metrics.observe(route, method, response.status().as_u16(), seconds);
    response
}

/// `GET /healthz`: the process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "ops_healthz",
    tag = "operations",
    responses((status = 200, description = "The process is up"))
)]
pub(super) async fn healthz() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the database answers and the start-up definitions are deployed.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "ops_readyz",
    tag = "operations",
    responses((status = 200, description = "Ready"), (status = 503, description = "Not ready", body = super::schemas::Problem, content_type = "application/problem+json"))
)]
pub(super) async fn readyz(State(state): State<AppState>) -> Response {
    if !state.is_ready() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "crm::http::starting",
            "deploying definitions",
        )
        .into_response();
    }
    // Any cheap query: the tenant does not exist, the round trip is what counts.
    match state.engine().store().definition(&TenantId::new(""), "", None).await {
        Ok(_) => axum::Json(json!({ "status": "ready" })).into_response(),
        Err(error) => {
            tracing::warn!(error = %error, "readiness check failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "crm::http::not_ready",
                "the database is unreachable",
            )
            .into_response()
        }
    }
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "ops_metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"))
)]
pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = state.inner.metrics.render();
    let now = Utc::now();
    match state.engine().store().queue_stats(now).await {
        Ok(stats) => render_queue(&mut text, &stats, now),
        // The request metrics are still worth serving when the database is down; /readyz says why.
        Err(error) => tracing::warn!(error = %error, "queue metrics unavailable"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// The workers' backlog as gauges: timers due and how late the oldest is, outbox depth, dead letters.
fn render_queue(out: &mut String, stats: &QueueStats, now: DateTime<Utc>) {
    let lag = |since: Option<DateTime<Utc>>| {
        since.map_or(0.0, |since| (now - since).num_milliseconds().max(0) as f64 / 1000.0)
    };
    let gauges = [
        ("crm_timers_due", "Timers due now and not yet fired.", stats.timers_due as f64),
        (
            "crm_timer_lag_seconds",
            "How long the oldest due timer has waited (0 when none is due).",
            lag(stats.oldest_timer_due_at),
        ),
        ("crm_outbox_pending", "Outbox items waiting for delivery.", stats.outbox_pending as f64),
        (
            "crm_outbox_lag_seconds",
            "How long the oldest due outbox item has waited (0 when none is due).",
            lag(stats.oldest_outbox_due_at),
        ),
        ("crm_outbox_dead_letters", "Dead-lettered outbox items.", stats.outbox_dead as f64),
    ];
    for (name, help, value) in gauges {
        // Writing into a `String` cannot fail.
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        let _ = writeln!(out, "{name} {value}");
    }
}
