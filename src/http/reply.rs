//! Responses with `ETag`s, request bodies, `If-Match`, and idempotent replay of commands.
//!
//! A command (`POST`) with an `Idempotency-Key` header runs inside
//! [`with_idempotency`](crate::store::with_idempotency): the key is written by the same
//! transaction as the command's effect. The same key with the same request (method, path, user,
//! body) within 24 hours answers the first response again without doing anything; with another
//! request it is a 422. Two identical requests racing each other produce one effect: the second
//! one's transaction fails on the key and rolls back, and it answers the first one's response.

use std::future::Future;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{TimeDelta, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::{AppState, Caller};
use crate::store::{IdempotencyRecord, Store, with_idempotency};

/// How long a key is remembered.
const KEY_LIFETIME: TimeDelta = TimeDelta::hours(24);
/// The longest key accepted.
const MAX_KEY_LEN: usize = 255;

/// A JSON response, with the `ETag` of the instance it shows.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Reply {
    pub status: StatusCode,
    pub body: Json,
    pub etag: Option<u64>,
    pub location: Option<String>,
    pub replayed: bool,
}

impl Reply {
    /// 200 with `body`.
    pub fn ok(body: Json) -> Self {
        Self { status: StatusCode::OK, body, etag: None, location: None, replayed: false }
    }

    /// `body` with status `status`.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// An instance (or anything with a `version`): its `ETag` is `"<version>"`.
    pub fn versioned(body: Json) -> Self {
        let etag = body.get("version").and_then(Json::as_u64);
        Self { etag, ..Self::ok(body) }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        let headers = response.headers_mut();
        if let Some(version) = self.etag
            && let Ok(value) = HeaderValue::from_str(&format!("\"{version}\""))
        {
            headers.insert(header::ETAG, value);
        }
        if let Some(location) = self.location
            && let Ok(value) = HeaderValue::from_str(&location)
        {
            headers.insert(header::LOCATION, value);
        }
        if self.replayed {
            headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        response
    }
}

/// The body as `T`, or a 422 that names the offending field.
pub(super) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let detail = if path == "." || path.is_empty() {
            format!("invalid request body: {inner}")
        } else {
            format!("invalid request body at `{path}`: {inner}")
        };
        ApiError::invalid_body(detail)
    })
}

/// What an `If-Match` header asks for (RFC 9110 §13.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum IfMatch {
    /// `*`: any current version.
    Any,
    /// A list of entity tags: the versions among them (`"3"`). Weak tags (`W/"3"`) and tags this
    /// API never gave out are kept out: they match no version, as strong comparison requires.
    Versions(Vec<u64>),
}

/// The `If-Match` header, if sent: `*`, or a comma-separated list of entity tags (`"3"`,
/// `W/"3"`); a bare `3` is taken as `"3"` for clients that forget the quotes. Anything else is a 400.
pub(super) fn if_match(headers: &HeaderMap) -> Result<Option<IfMatch>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else { return Ok(None) };
    let malformed = || {
        ApiError::bad_request(format!(
            "If-Match must be `*` or entity tags like \"3\" (the ETag you read); got `{}`",
            String::from_utf8_lossy(value.as_bytes())
        ))
    };
    let text = value.to_str().map_err(|_| malformed())?.trim();
    if text == "*" {
        return Ok(Some(IfMatch::Any));
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map(|v| Some(IfMatch::Versions(vec![v]))).map_err(|_| malformed());
    }
    let mut versions = Vec::new();
    let mut rest = text;
    loop {
        let (weak, tail) = match rest.strip_prefix("W/") {
            Some(tail) => (true, tail),
            None => (false, rest),
        };
        let tail = tail.strip_prefix('"').ok_or_else(malformed)?;
        let close = tail.find('"').ok_or_else(malformed)?;
        if let (false, Ok(version)) = (weak, tail[..close].parse::<u64>()) {
            versions.push(version);
        }
        rest = tail[close + 1..].trim_start();
        if rest.is_empty() {
            return Ok(Some(IfMatch::Versions(versions)));
        }
        rest = rest.strip_prefix(',').ok_or_else(malformed)?.trim_start();
    }
}

/// The version a change to instance `id` must be based on, from its `If-Match` (`None`: no
/// precondition). A list that names the current version, or `*`, is the current version; a list
/// that names no version of it is a 409, as a stale version is. A missing instance is a 404 first.
pub(super) async fn expected_version(
    state: &AppState,
    caller: &Caller,
    id: &str,
    precondition: Option<IfMatch>,
) -> Result<Option<u64>, ApiError> {
    match precondition {
        None => Ok(None),
        Some(IfMatch::Versions(versions)) if versions.len() == 1 => Ok(versions.first().copied()),
        Some(precondition) => {
            let current = state.engine().instance(&caller.tenant, id).await?.version;
            match precondition {
                IfMatch::Versions(versions) if !versions.contains(&current) => {
                    Err(ApiError::from_engine(crate::engine::service::EngineError::Conflict {
                        id: id.to_owned(),
                        expected: versions.first().copied().unwrap_or(0),
                        actual: current,
                    }))
                }
                _ => Ok(Some(current)),
            }
        }
    }
}

/// Runs the command `work` at most once per `Idempotency-Key` (see the module docs); without the
/// header it just runs it. `what` names the request (`POST /v1/instances/…/fire`); `success` is
/// the status it answers when it works (replayed with the effect if the response was lost).
#[allow(clippy::too_many_arguments)]
pub(super) async fn idempotent(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    what: &str,
    success: StatusCode,
    body: &[u8],
    work: impl Future<Output = Result<Reply, ApiError>> + Send,
) -> Result<Reply, ApiError> {
    // An empty header is no key at all; any other value is a key, byte for byte.
    let key = headers.get("idempotency-key").map(|k| String::from_utf8_lossy(k.as_bytes()).trim().to_owned());
    let Some(key) = key.filter(|k| !k.is_empty()) else { return work.await };
    if key.len() > MAX_KEY_LEN {
        return Err(ApiError::bad_request("Idempotency-Key must be at most 255 bytes"));
    }
    let store = state.engine().store();
    let fingerprint = fingerprint(what, &caller.actor.id, body);
    let now = Utc::now();
    if let Some(found) = store.idempotency(&caller.tenant, &key).await? {
        if found.created_at + KEY_LIFETIME > now {
            return replay(state, caller, found, &fingerprint).await;
        }
        // Expired: forget it (and every other expired key) and run the request afresh.
        store.purge_idempotency(now - KEY_LIFETIME).await?;
    }
    let record = IdempotencyRecord {
        key: key.clone(),
        fingerprint: fingerprint.clone(),
        status: success.as_u16(),
        instance_id: None,
        response: None,
        created_at: now,
    };
    let (result, written) = with_idempotency(caller.tenant.clone(), record.clone(), work).await;
    match result {
        Ok(reply) => {
            let saved = if written {
                store.complete_idempotency(&caller.tenant, &key, reply.status.as_u16(), &reply.body).await
            } else {
                // No commit carried the key (a deployment, a delegation, a no-op): record it now.
                let record = IdempotencyRecord {
                    status: reply.status.as_u16(),
                    response: Some(reply.body.clone()),
                    ..record
                };
                store.insert_idempotency(&caller.tenant, &record).await
            };
            if let Err(error) = saved {
                // The effect is committed; failing the request now would invite a retry that
                // the key (when written) still guards. Log and answer.
                tracing::warn!(error = %error, "could not store the response of an idempotent request");
            }
            Ok(reply)
        }
        Err(error) => match store.idempotency(&caller.tenant, &key).await {
            // A concurrent request with the same key won: answer what it did.
            Ok(Some(found)) => replay(state, caller, found, &fingerprint).await,
            _ => Err(error),
        },
    }
}

/// The first response to a key, or why it cannot be given.
async fn replay(
    state: &AppState,
    caller: &Caller,
    found: IdempotencyRecord,
    fingerprint: &str,
) -> Result<Reply, ApiError> {
    if found.fingerprint != fingerprint {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "crm::http::idempotency_key_reused",
            "this Idempotency-Key was used for a different request; use a new key",
        ));
    }
    let status = StatusCode::from_u16(found.status).unwrap_or(StatusCode::OK);
    let body = match (found.response, found.instance_id) {
        (Some(body), _) => body,
        // The effect committed but its response was not stored (the process stopped in
        // between, or it is being stored right now): the instance as it is now.
        (None, Some(id)) => super::views::view_json(&state.engine().instance(&caller.tenant, &id).await?),
        (None, None) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "crm::http::idempotency_in_progress",
                "a request with this Idempotency-Key is still being processed; retry shortly",
            ));
        }
    };
    Ok(Reply { replayed: true, ..Reply::versioned(body).with_status(status) })
}

/// Hex SHA-256 of what a request asks for.
fn fingerprint(what: &str, user: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    for part in [what.as_bytes(), b"\n", user.as_bytes(), b"\n", body] {
        hasher.update(part);
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
