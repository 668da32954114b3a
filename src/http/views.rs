//! The JSON shapes of the API's resources, and its opaque cursors and times.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};

use super::error::ApiError;
use crate::engine::machine::{InstanceStatus, TokenStatus};
use crate::engine::service::InstanceView;
use crate::store::{Cursor, HistoryRow, InstanceRow, StoreError};

/// A time as the API writes it: RFC 3339, UTC, microseconds.
pub(super) fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// An instance as the API shows it.
pub(super) fn view_json(view: &InstanceView) -> Json {
    let mut json = json!({
        "id": view.id,
        "definition": view.definition,
        "definition_version": view.definition_version,
        "entity": view.entity,
        "stage": view.stage,
        "status": match view.status {
            InstanceStatus::Active => "active",
            InstanceStatus::Completed => "completed",
        },
        "data": view.data,
        "assignee": view.assignee,
        "version": view.version,
        "tokens": view.tokens.iter().map(|t| json!({
            "gateway": t.gateway,
            "branch": t.branch,
            "stage": t.stage,
            "status": match t.status {
                TokenStatus::Active => "active",
                TokenStatus::Completed => "completed",
                TokenStatus::Cancelled => "cancelled",
            },
        })).collect::<Vec<_>>(),
        "pending_approval": view.pending_approval.as_ref().map(|p| json!({
            "transition": p.transition,
            "requested_by": p.requested_by,
            "responses": p.responses.iter().map(|r| json!({
                "approver": r.approver,
                "vote": r.vote.as_str(),
                "at": time(r.at),
            })).collect::<Vec<_>>(),
        })),
    });
    with_number(&mut json, view.number.as_deref());
    json
}

/// Adds `number` to an instance's JSON when it has one (entities without a pattern show none).
fn with_number(json: &mut Json, number: Option<&str>) {
    if let (Some(number), Json::Object(map)) = (number, json) {
        map.insert("number".to_owned(), Json::String(number.to_owned()));
    }
}

pub(super) fn row_json(row: &InstanceRow) -> Json {
    let mut json = json!({
        "id": row.id,
        "definition": row.definition_id,
        "definition_version": row.definition_version,
        "entity": row.entity,
        "stage": row.stage,
        "status": row.status.as_str(),
        "data": row.data,
        "assignee": row.assignee,
        "version": row.version,
        "started_at": time(row.started_at),
        "updated_at": time(row.updated_at),
        "ended_at": row.ended_at.map(time),
    });
    with_number(&mut json, row.number.as_deref());
    json
}

/// A store cursor as handed to clients: opaque (base64url), so nobody builds one by hand.
pub(super) fn encode_cursor(cursor: &Cursor) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(cursor.as_str())
}

/// A cursor a client handed back; 422 when it is not one of ours.
pub(super) fn decode_cursor(text: &str) -> Result<Cursor, ApiError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| ApiError::from_store(&StoreError::InvalidCursor))?;
    let text = String::from_utf8(bytes).map_err(|_| ApiError::from_store(&StoreError::InvalidCursor))?;
    Ok(Cursor::from_string(text))
}

pub(super) fn history_json(row: &HistoryRow) -> Json {
    json!({
        "seq": row.seq,
        "event": row.event,
        "before": row.before,
        "after": row.after,
        "actor": row.actor_id,
        "payload": row.payload,
        "at": time(row.created_at),
    })
}

/// The largest page a listing serves.
const MAX_PAGE: u32 = 500;

/// A `limit` query parameter: 0 (the default page) to 500; more is a 400, not a silent clamp.
pub(super) fn page_limit<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let limit = <u32 as serde::Deserialize>::deserialize(deserializer)?;
    if limit > MAX_PAGE {
        return Err(serde::de::Error::custom(format!("limit must be at most {MAX_PAGE}, not {limit}")));
    }
    Ok(limit)
}

/// An optional query parameter where `?name=` means the same as leaving it out.
pub(super) fn non_empty<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let text = <Option<String> as serde::Deserialize>::deserialize(deserializer)?;
    Ok(text.filter(|t| !t.is_empty()))
}

/// A body member that must be a JSON object when given (`null` and other values are refused).
pub(super) fn object<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
    <serde_json::Map<String, Json> as serde::Deserialize>::deserialize(deserializer).map(Json::Object)
}

/// What an absent object member means: `{}`.
pub(super) fn empty_object() -> Json {
    Json::Object(serde_json::Map::new())
}
