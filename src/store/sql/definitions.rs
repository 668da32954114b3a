//! Deploying and reading definitions (`crm_definitions`): a new version per changed source.

use std::fmt::Write as _;

use chrono::Utc;
use sha2::{Digest, Sha256};

use super::columns::{DEFINITION_COLS, definition_row};
use super::{Conn, SqlStore, fetch};
use crate::store::backend::{Backend, Stmt};
use crate::store::{DefinitionRow, DeployedVersion, StoreResult, TenantId};

pub(super) async fn deploy_definition<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    id: &str,
    name: &str,
    source: &str,
) -> StoreResult<DeployedVersion> {
    let checksum = checksum(source);
    let now = Utc::now();
    store.write_tx(async |conn: &mut Conn<DB>| {
        let latest = fetch::<DB, _>(
            conn,
            Stmt::new(
                "SELECT version, checksum FROM crm_definitions WHERE tenant_id = $1 AND id = $2 \
                 ORDER BY version DESC LIMIT 1",
            )
            .arg(tenant.as_str())
            .arg(id),
            |r| Ok((r.count::<u64>()?, r.text()?)),
        )
        .await?
        .pop();
        if let Some((version, existing)) = &latest
            && *existing == checksum
        {
            return Ok(DeployedVersion { version: *version, created: false });
        }
        let version = latest.map_or(1, |(version, _)| version + 1);
        DB::execute(
            conn,
            Stmt::new("UPDATE crm_definitions SET active = FALSE WHERE tenant_id = $1 AND id = $2 AND active")
                .arg(tenant.as_str())
                .arg(id),
        )
        .await?;
        DB::execute(
            conn,
            Stmt::new(
                "INSERT INTO crm_definitions (tenant_id, id, version, name, source, checksum, active, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, TRUE, $7)",
            )
            .arg(tenant.as_str())
            .arg(id)
            .arg(version)
            .arg(name)
            .arg(source)
            .arg(&checksum)
            .arg(now),
        )
        .await?;
        Ok(DeployedVersion { version, created: true })
    })
    .await
}

pub(super) async fn definition<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    id: &str,
    version: Option<u64>,
) -> StoreResult<Option<DefinitionRow>> {
    let stmt = match version {
        Some(version) => Stmt::new(concat_sql!(
            "SELECT ",
            DEFINITION_COLS,
            " FROM crm_definitions WHERE tenant_id = $1 AND id = $2 AND version = $3"
        ))
        .arg(tenant.as_str())
        .arg(id)
        .arg(version),
        None => Stmt::new(concat_sql!(
            "SELECT ",
            DEFINITION_COLS,
            " FROM crm_definitions WHERE tenant_id = $1 AND id = $2 \
             ORDER BY version DESC LIMIT 1"
        ))
        .arg(tenant.as_str())
        .arg(id),
    };
    store.read_one(stmt, definition_row).await
}

pub(super) async fn definitions<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
) -> StoreResult<Vec<DefinitionRow>> {
    let stmt = Stmt::new(concat_sql!(
        "SELECT ",
        DEFINITION_COLS,
        " FROM crm_definitions d WHERE tenant_id = $1 AND version = \
         (SELECT MAX(version) FROM crm_definitions m WHERE m.tenant_id = d.tenant_id AND m.id = d.id) \
         ORDER BY id"
    ))
    .arg(tenant.as_str());
    store.read_all(stmt, definition_row).await
}

fn checksum(source: &str) -> String {
    Sha256::digest(source.as_bytes()).iter().fold(String::with_capacity(64), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}
