//! API tokens (`crm_api_tokens`): created and revoked by `crm token`, looked up by `crm serve`.
//!
//! The lookup by hash spans tenants on purpose: a request carries only the token, and the row
//! says which tenant it belongs to. Nothing else here reads another tenant's data.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::{Decoded, SqlStore};
use crate::store::backend::{Backend, Reader, Stmt};
use crate::store::{ApiTokenRow, StoreResult, TenantId};

columns! {
    /// `crm_api_tokens`.
    const TOKEN_COLS;
    fn token_row(r) -> ApiTokenRow {
        id: "id" => r.text()?,
        tenant: "tenant_id" => TenantId(r.text()?),
        token_hash: "token_hash" => r.text()?,
        prefix: "prefix" => r.text()?,
        user_id: "user_id" => r.text()?,
        roles: "roles" => strings(r.json()?),
        permissions: "permissions" => strings(r.json()?),
        label: "label" => r.opt_text()?,
        created_at: "created_at" => r.time()?,
        revoked_at: "revoked_at" => r.opt_time()?,
    }
}

/// A JSON array of strings as written by [`create_api_token`]; anything else reads as empty.
fn strings(json: Json) -> Vec<String> {
    match json {
        Json::Array(items) => items.into_iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

pub(super) async fn create_api_token<DB: Backend>(
    store: &SqlStore<DB>,
    token: &ApiTokenRow,
) -> StoreResult<()> {
    let stmt = Stmt::new(
        "INSERT INTO crm_api_tokens (id, tenant_id, token_hash, prefix, user_id, roles, permissions, label, \
         created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .arg(&token.id)
    .arg(token.tenant.as_str())
    .arg(&token.token_hash)
    .arg(&token.prefix)
    .arg(&token.user_id)
    .arg(Json::from(token.roles.clone()))
    .arg(Json::from(token.permissions.clone()))
    .arg(token.label.as_ref())
    .arg(token.created_at)
    .arg(token.revoked_at);
    store.write_one(stmt).await.map(drop)
}

pub(super) async fn api_token_by_hash<DB: Backend>(
    store: &SqlStore<DB>,
    hash: &str,
) -> StoreResult<Option<ApiTokenRow>> {
    let stmt =
        Stmt::new(concat_sql!("SELECT ", TOKEN_COLS, " FROM crm_api_tokens WHERE token_hash = $1")).arg(hash);
    store.read_one(stmt, token_row).await
}

pub(super) async fn api_tokens<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: Option<&TenantId>,
) -> StoreResult<Vec<ApiTokenRow>> {
    let stmt = match tenant {
        Some(tenant) => Stmt::new(concat_sql!(
            "SELECT ",
            TOKEN_COLS,
            " FROM crm_api_tokens WHERE tenant_id = $1 ORDER BY created_at, id"
        ))
        .arg(tenant.as_str()),
        None => Stmt::new(concat_sql!(
            "SELECT ",
            TOKEN_COLS,
            " FROM crm_api_tokens ORDER BY tenant_id, created_at, id"
        )),
    };
    store.read_all(stmt, token_row).await
}

pub(super) async fn revoke_api_token<DB: Backend>(
    store: &SqlStore<DB>,
    id: &str,
    at: DateTime<Utc>,
) -> StoreResult<bool> {
    let stmt = Stmt::new("UPDATE crm_api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
        .arg(id)
        .arg(at);
    Ok(store.write_one(stmt).await? > 0)
}
