//! The JSON shapes of interactions, attachments and timeline entries, shared by `crm … --format
//! json` and the HTTP API so both print the same.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value as Json, json};

use crate::store::{AttachmentRow, InteractionRow, Subject, TimelineItem};

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// An interaction as JSON (the HTTP API's shape).
pub fn interaction_json(i: &InteractionRow) -> Json {
    let (instance, contact) = match &i.subject {
        Subject::Instance(id) => (Some(id), None),
        Subject::Contact(id) => (None, Some(id)),
    };
    json!({
        "id": i.id, "instance_id": instance, "contact_id": contact, "kind": i.kind.as_str(), "author": i.author,
        "occurred_at": time(i.occurred_at), "body": i.body,
        "duration_seconds": i.duration_seconds, "outcome": i.outcome,
        "created_at": time(i.created_at),
    })
}

/// An attachment's metadata as JSON.
pub fn attachment_json(a: &AttachmentRow) -> Json {
    json!({
        "id": a.id, "interaction_id": a.interaction_id, "file_name": a.file_name, "content_type": a.content_type,
        "size_bytes": a.size_bytes, "sha256": a.sha256, "storage": a.storage.as_str(), "created_by": a.created_by,
        "created_at": time(a.created_at),
    })
}

/// A timeline entry as JSON: `{"type": "history"|"interaction", …}`.
pub fn timeline_json(item: &TimelineItem) -> Json {
    match item {
        TimelineItem::History(h) => json!({
            "type": "history", "seq": h.seq, "event": h.event, "before": h.before, "after": h.after,
            "actor": h.actor_id, "payload": h.payload,
            "at": time(h.created_at),
        }),
        TimelineItem::Interaction(i) => {
            let mut out = interaction_json(i);
            if let Json::Object(map) = &mut out {
                map.insert("type".into(), json!("interaction"));
                map.insert("at".into(), map.get("occurred_at").cloned().unwrap_or(Json::Null));
            }
            out
        }
    }
}
