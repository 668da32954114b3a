//! Bearer tokens: creating them (for `crm token create`) and turning a request's
//! `Authorization` header into a [`Caller`]: the tenant, the acting user, its roles and
//! permissions. No request can name a tenant; the token fixes it.

use std::fmt::Write as _;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::ApiError;
use crate::engine::eval::Actor;
use crate::store::{ApiTokenRow, Store, StoreError, TenantId, new_id};

/// Named permissions the API itself checks (guards in definitions check their own).
pub mod permissions {
    /// Deploy definitions (`POST /v1/definitions`).
    pub const DEPLOY: &str = "definitions:deploy";
    /// Read another user's dashboard (`GET /v1/dashboard?user=…`).
    pub const READ_ANY_DASHBOARD: &str = "dashboard:read_any";
    /// List, replay and discard outbox items (dead letters).
    pub const MANAGE_OUTBOX: &str = "outbox:manage";
    /// Record or remove delegations on behalf of someone else.
    pub const MANAGE_DELEGATIONS: &str = "delegations:manage";
    /// Read reports over every user's work (`GET /v1/reports/{kind}`).
    pub const READ_REPORTS: &str = "reports:read";
}

/// Who is calling: fixed by the bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's id (rate limits and logs; never the token itself).
    pub token_id: String,
    /// The tenant every call is scoped to.
    pub tenant: TenantId,
    /// The acting user, as guards, approvals and assignment rules see it.
    pub actor: Actor,
}

impl Caller {
    /// Refuses (403) unless the caller holds `permission`.
    pub fn require(&self, permission: &str) -> Result<(), ApiError> {
        if self.actor.permissions.iter().any(|p| p == permission) {
            Ok(())
        } else {
            Err(ApiError::forbidden(permission))
        }
    }
}

/// What `crm token create` asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewToken {
    /// The tenant.
    pub tenant: String,
    /// The acting user.
    pub user: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Permissions.
    pub permissions: Vec<String>,
    /// A note for `crm token list`.
    pub label: Option<String>,
}

/// Why a token could not be created.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum TokenError {
    /// An empty tenant or user, e.g. `--tenant ""`.
    #[error("{what} must not be empty")]
    #[diagnostic(code(crm::http::token_input))]
    Empty {
        /// `tenant` or `user`.
        what: &'static str,
    },
    /// The database refused.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
}

/// Creates a token: the text to hand to the client (shown once; only its hash is stored) and
/// the stored row.
pub async fn create_token(
    store: &impl Store,
    new: NewToken,
    now: DateTime<Utc>,
) -> Result<(String, ApiTokenRow), TokenError> {
    if new.tenant.trim().is_empty() {
        return Err(TokenError::Empty { what: "tenant" });
    }
    if new.user.trim().is_empty() {
        return Err(TokenError::Empty { what: "user" });
    }
    let secret: [u8; 32] = rand::random();
    let text = format!("crm_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret));
    let row = ApiTokenRow {
        id: new_id(),
        tenant: TenantId::new(new.tenant),
        token_hash: hash_token(&text),
        prefix: text.chars().take(10).collect(),
        user_id: new.user,
        roles: clean(new.roles),
        permissions: clean(new.permissions),
        label: new.label,
        created_at: now,
        revoked_at: None,
    };
    store.create_api_token(&row).await?;
    Ok((text, row))
}

/// Trimmed, non-empty entries (`--roles a,,b ` means `a`, `b`).
fn clean(items: Vec<String>) -> Vec<String> {
    items.into_iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()
}

/// Hex SHA-256 of a token, as stored.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().fold(String::with_capacity(64), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

/// The caller of a request, from its bearer token: unknown, revoked or missing tokens are all
/// the same 401. The per-token rate limit is applied here, before any work.
pub async fn authenticate(state: &AppState, parts: &Parts) -> Result<Caller, ApiError> {
    let header = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let token = header
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(ApiError::unauthorized)?;
    let row = state.engine().store().api_token_by_hash(&hash_token(token)).await?;
    let row = row.filter(|r| r.revoked_at.is_none()).ok_or_else(ApiError::unauthorized)?;
    state.check_rate(&row.id)?;
    Ok(Caller {
        token_id: row.id,
        tenant: row.tenant,
        actor: Actor { id: row.user_id, roles: row.roles, permissions: row.permissions },
    })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let caller = authenticate(state, parts).await?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}
