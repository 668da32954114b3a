//! What the store keeps of a deployed definition.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

/// What deploying a definition did: the version that holds the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeployedVersion {
    /// The version that now holds the source.
    pub version: u64,
    /// False when the source was the same as the latest version's (by [`canonical_checksum`]),
    /// which is then reused.
    pub created: bool,
}

/// One deployed version of a definition (`crm_definitions`).
#[derive(Debug, Clone, PartialEq)]
pub struct DefinitionRow {
    /// The definition's id.
    pub id: String,
    /// 1, 2, …: a new version per changed source.
    pub version: u64,
    /// The definition's display name.
    pub name: String,
    /// The definition JSON exactly as deployed.
    pub source: String,
    /// SHA-256 of `source`, lowercase hex.
    pub checksum: String,
    /// True for the version new instances start on: the latest, unless the definition is
    /// deactivated (then no version is active).
    pub active: bool,
    /// When this version was deployed.
    pub created_at: DateTime<Utc>,
}

/// A running instance of a definition as a compatibility check sees it: where it stands, by name.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveInstance {
    /// The instance id.
    pub id: String,
    /// The definition version it is pinned to.
    pub definition_version: u64,
    /// Its entity.
    pub entity: String,
    /// Its main stage.
    pub stage: String,
    /// Its data.
    pub data: Json,
    /// The transition whose approval is pending, if any.
    pub pending_approval: Option<String>,
    /// The active branches of its running gateway: (gateway, branch, stage).
    pub tokens: Vec<(String, String, Option<String>)>,
}

/// SHA-256 of `source` as deployed, lowercase hex.
pub fn source_checksum(source: &str) -> String {
    hex(&Sha256::digest(source.as_bytes()))
}

/// SHA-256 of the canonical form of the JSON `source`, lowercase hex: object keys sorted, no
/// insignificant whitespace, strings and numbers as serde_json prints them. Two files that differ
/// only in formatting, key order or string escapes hash the same. Text that is not JSON hashes
/// as it is (a deploy never stores such text; this only keeps the function total).
pub fn canonical_checksum(source: &str) -> String {
    match serde_json::from_str::<Json>(source) {
        Ok(value) => {
            let mut canonical = String::with_capacity(source.len());
            write_canonical(&value, &mut canonical);
            hex(&Sha256::digest(canonical.as_bytes()))
        }
        Err(_) => source_checksum(source),
    }
}

/// Appends the canonical text of `value` to `out`.
fn write_canonical(value: &Json, out: &mut String) {
    match value {
        Json::Object(map) => {
            let mut entries: Vec<(&String, &Json)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Json::String(text) => write_string(text, out),
        // Null, booleans and numbers print one way each.
        other => out.push_str(&other.to_string()),
    }
}

fn write_string(text: &str, out: &mut String) {
    // A string always serializes; the fallback is never taken.
    out.push_str(&serde_json::to_string(text).unwrap_or_default());
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut hex, byte| {
        // Writing into a `String` cannot fail.
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_and_key_order_do_not_change_the_canonical_hash() {
        let a = r#"{"id": "x", "entities": {"lead": {"stages": ["a", "b"]}}, "n": 1.5}"#;
        let b = "{\n  \"n\": 1.5,\n  \"entities\": {\"lead\":{\"stages\":[\"a\",\"b\"]}},\n  \"id\": \"\\u0078\"\n}\n";
        assert_eq!(canonical_checksum(a), canonical_checksum(b));
        assert_ne!(source_checksum(a), source_checksum(b));
    }

    #[test]
    fn content_changes_change_the_canonical_hash() {
        let a = r#"{"stages": ["a", "b"]}"#;
        assert_ne!(canonical_checksum(a), canonical_checksum(r#"{"stages": ["b", "a"]}"#));
        assert_ne!(canonical_checksum(a), canonical_checksum(r#"{"stages": ["a", "b "]}"#));
        assert_eq!(canonical_checksum(a).len(), 64);
    }
}
