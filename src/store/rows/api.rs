//! What the HTTP API stores of its own: bearer tokens, idempotency keys, and the instance listing.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::{Cursor, StoredInstanceStatus, TenantId};

/// An API token (`crm_api_tokens`): only its SHA-256 is stored; it fixes tenant, user and rights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenRow {
    /// Token id (shown by `crm token list`, used by `crm token revoke`).
    pub id: String,
    /// The tenant every request made with it is scoped to.
    pub tenant: TenantId,
    /// Hex SHA-256 of the token text.
    pub token_hash: String,
    /// The token's first characters, for people to tell tokens apart.
    pub prefix: String,
    /// The acting user.
    pub user_id: String,
    /// The user's roles.
    pub roles: Vec<String>,
    /// The user's permissions.
    pub permissions: Vec<String>,
    /// A note from whoever created it.
    pub label: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was revoked; a revoked token authenticates nothing.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An idempotency key and what the request it guards did (`crm_idempotency`).
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyRecord {
    /// The client's `Idempotency-Key`.
    pub key: String,
    /// A digest of what was asked (method, path, caller, body): the same key with another
    /// request is refused.
    pub fingerprint: String,
    /// The HTTP status of the first response.
    pub status: u16,
    /// The instance the effect wrote, if any (filled in by the commit that carries the record).
    pub instance_id: Option<String>,
    /// The first response's body, once stored.
    pub response: Option<Json>,
    /// When the key was first used.
    pub created_at: DateTime<Utc>,
}

/// The instance listing: filters and a keyset page, oldest change first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InstanceQuery {
    /// Only instances of this definition.
    pub definition: Option<String>,
    /// Only instances of this entity.
    pub entity: Option<String>,
    /// Only instances in this stage.
    pub stage: Option<String>,
    /// Only active or only completed instances.
    pub status: Option<StoredInstanceStatus>,
    /// Only instances assigned to this user.
    pub assignee: Option<String>,
    /// Only instances changed at or after this time.
    pub updated_since: Option<DateTime<Utc>>,
    /// Page size (0 means 50; at most 500).
    pub limit: u32,
    /// The page after this cursor (from the previous [`Page::next`](super::Page::next)).
    pub after: Option<Cursor>,
}
