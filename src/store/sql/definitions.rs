//! Deploying and reading definitions (`crm_definitions`): a new version per changed source.
//!
//! "Changed" is decided on the canonical JSON ([`canonical_checksum`]): reformatting a file or
//! reordering its keys deploys nothing. Concurrent deploys of one definition are safe on both
//! databases: on SQLite the write transaction holds the database lock; on PostgreSQL the insert
//! of version N+1 does nothing when another transaction inserted it first (`ON CONFLICT DO
//! NOTHING` waits for that transaction to end), and the deploy reads the latest version again:
//! the same content is then "unchanged", other content becomes the version after it.

use std::collections::HashMap;

use chrono::Utc;

use super::columns::{DEFINITION_COLS, definition_row};
use super::{Conn, SqlStore, exactly_one, fetch};
use crate::store::backend::{Backend, Stmt};
use crate::store::{
    DefinitionRow, DeployedVersion, LiveInstance, StoreError, StoreResult, TenantId, canonical_checksum,
    source_checksum,
};

/// How often a deploy re-reads after losing the race for the next version number. Each round
/// means another deploy of different content committed meanwhile, so this is never reached in
/// practice; it only bounds the loop.
const DEPLOY_ROUNDS: usize = 64;

/// What a deploy compares with: the latest stored version.
struct Latest {
    version: u64,
    checksum: String,
    canonical_hash: Option<String>,
    source: String,
    active: bool,
}

impl Latest {
    /// Whether `canonical` (the new source's canonical hash) or `checksum` (its raw hash) says
    /// the content is what this version holds. Versions stored before canonical hashes were
    /// kept are compared by canonicalising their source.
    fn holds(&self, checksum: &str, canonical: &str) -> bool {
        match &self.canonical_hash {
            Some(stored) => stored == canonical,
            None => self.checksum == checksum || canonical_checksum(&self.source) == canonical,
        }
    }
}

pub(super) async fn deploy_definition<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    id: &str,
    name: &str,
    source: &str,
) -> StoreResult<DeployedVersion> {
    let checksum = source_checksum(source);
    let canonical = canonical_checksum(source);
    let now = Utc::now();
    store
        .write_tx(async |conn: &mut Conn<DB>| {
            for _ in 0..DEPLOY_ROUNDS {
                let latest = latest::<DB>(conn, tenant, id).await?;
                if let Some(latest) = latest.as_ref().filter(|l| l.holds(&checksum, &canonical)) {
                    return Ok(DeployedVersion { version: latest.version, created: false });
                }
                let version = latest.as_ref().map_or(1, |l| l.version + 1);
                // A deactivated definition stays so through deploys: retiring it was a decision,
                // a CI run deploying the directory is not one to undo it.
                let active = latest.as_ref().is_none_or(|l| l.active);
                // Deactivate first: at most one version is active (a unique index).
                DB::execute(
                    conn,
                    Stmt::new(
                        "UPDATE crm_definitions SET active = FALSE \
                         WHERE tenant_id = $1 AND id = $2 AND active AND version < $3",
                    )
                    .arg(tenant.as_str())
                    .arg(id)
                    .arg(version),
                )
                .await?;
                // No conflict target: a concurrent deploy may collide on the version (the key) or,
                // on PostgreSQL, first on the one-active-version index; either means "look again",
                // where naming only the key let the second surface as a unique violation.
                let inserted = DB::execute(
                    conn,
                    Stmt::new(
                        "INSERT INTO crm_definitions \
                         (tenant_id, id, version, name, source, checksum, canonical_hash, active, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                         ON CONFLICT DO NOTHING",
                    )
                    .arg(tenant.as_str())
                    .arg(id)
                    .arg(version)
                    .arg(name)
                    .arg(source)
                    .arg(&checksum)
                    .arg(&canonical)
                    .arg(active)
                    .arg(now),
                )
                .await?;
                if inserted == 1 {
                    return Ok(DeployedVersion { version, created: true });
                }
                // Another deploy took this version number and has committed: look again.
            }
            Err(StoreError::Duplicate { what: "definition version" })
        })
        .await
}

/// The latest version of `id`, with what a deploy compares.
async fn latest<DB: Backend>(
    conn: &mut Conn<DB>,
    tenant: &TenantId,
    id: &str,
) -> StoreResult<Option<Latest>> {
    Ok(fetch::<DB, _>(
        conn,
        Stmt::new(
            "SELECT version, checksum, canonical_hash, source, active FROM crm_definitions \
             WHERE tenant_id = $1 AND id = $2 ORDER BY version DESC LIMIT 1",
        )
        .arg(tenant.as_str())
        .arg(id),
        |r| {
            Ok(Latest {
                version: r.count()?,
                checksum: r.text()?,
                canonical_hash: r.opt_text()?,
                source: r.text()?,
                active: r.boolean()?,
            })
        },
    )
    .await?
    .pop())
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

pub(super) async fn definition_versions<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    id: &str,
) -> StoreResult<Vec<DefinitionRow>> {
    let stmt = Stmt::new(concat_sql!(
        "SELECT ",
        DEFINITION_COLS,
        " FROM crm_definitions WHERE tenant_id = $1 AND id = $2 ORDER BY version"
    ))
    .arg(tenant.as_str())
    .arg(id);
    store.read_all(stmt, definition_row).await
}

pub(super) async fn set_definition_active<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    id: &str,
    active: bool,
) -> StoreResult<()> {
    store
        .write_tx(async |conn: &mut Conn<DB>| {
            // Only the latest version ever carries the flag, so a deploy racing with this sees
            // either the old or the new state, never two active versions.
            exactly_one::<DB>(
                conn,
                Stmt::new(
                    "UPDATE crm_definitions SET active = $3 WHERE tenant_id = $1 AND id = $2 AND version = \
                     (SELECT MAX(version) FROM crm_definitions m WHERE m.tenant_id = $1 AND m.id = $2)",
                )
                .arg(tenant.as_str())
                .arg(id)
                .arg(active),
                "definition",
                id,
            )
            .await
        })
        .await
}

pub(super) async fn live_instances<DB: Backend>(
    store: &SqlStore<DB>,
    tenant: &TenantId,
    definition: &str,
) -> StoreResult<Vec<LiveInstance>> {
    let mut instances = store
        .read_all(
            Stmt::new(
                "SELECT id, definition_version, entity, state, data FROM crm_instances \
                 WHERE tenant_id = $1 AND definition_id = $2 AND status = 'active' ORDER BY id",
            )
            .arg(tenant.as_str())
            .arg(definition),
            |r| {
                Ok(LiveInstance {
                    id: r.text()?,
                    definition_version: r.count()?,
                    entity: r.text()?,
                    stage: r.text()?,
                    data: r.json()?,
                    pending_approval: None,
                    tokens: Vec::new(),
                })
            },
        )
        .await?;
    let index: HashMap<String, usize> =
        instances.iter().enumerate().map(|(i, row)| (row.id.clone(), i)).collect();
    let approvals = store
        .read_all(
            Stmt::new(
                "SELECT r.instance_id, r.transition FROM crm_approval_requests r \
                 JOIN crm_instances i ON i.tenant_id = r.tenant_id AND i.id = r.instance_id \
                 WHERE r.tenant_id = $1 AND i.definition_id = $2 AND r.status = 'pending'",
            )
            .arg(tenant.as_str())
            .arg(definition),
            |r| Ok((r.text()?, r.text()?)),
        )
        .await?;
    for (instance, transition) in approvals {
        if let Some(&i) = index.get(&instance) {
            instances[i].pending_approval = Some(transition);
        }
    }
    let tokens = store
        .read_all(
            Stmt::new(
                "SELECT t.instance_id, t.gateway, t.branch, t.stage FROM crm_tokens t \
                 JOIN crm_instances i ON i.tenant_id = t.tenant_id AND i.id = t.instance_id \
                 WHERE t.tenant_id = $1 AND i.definition_id = $2 AND t.status = 'active' \
                 ORDER BY t.instance_id, t.gateway, t.branch",
            )
            .arg(tenant.as_str())
            .arg(definition),
            |r| Ok((r.text()?, r.text()?, r.text()?, r.opt_text()?)),
        )
        .await?;
    for (instance, gateway, branch, stage) in tokens {
        if let Some(&i) = index.get(&instance) {
            instances[i].tokens.push((gateway, branch, stage));
        }
    }
    Ok(instances)
}
