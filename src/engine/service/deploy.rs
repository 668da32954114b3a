//! Definitions over their lifetime: deploy, list, show, activate and deactivate.
//!
//! These are the calls `crm deploy`, `crm definitions …` and the HTTP API's definition routes
//! share. Deploy compiles with [`check_source`](crate::check::check_source), the path of
//! `crm check`, so a definition with errors is never stored; what is stored is the source text,
//! and the engine compiles it again (once per version, cached) when instances need it.

use std::sync::Arc;

use super::{Engine, EngineError, compile};
use crate::diagnostic::Diagnostic;
use crate::engine::compat;
use crate::engine::machine::Machine;
use crate::store::{DefinitionRow, Store, StoreError, TenantId};

/// What [`Engine::compatibility`] found: a new version against the live one and its instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compatibility {
    /// The definition's id.
    pub id: String,
    /// The deployed version compared with (the latest); `None` when none is deployed.
    pub live_version: Option<u64>,
    /// How many active instances (of any version) were checked.
    pub instances: usize,
    /// The findings (`CRM08xx`), with spans in the new source.
    pub diagnostics: Vec<Diagnostic>,
}

impl Compatibility {
    /// Whether deploying and migrating to the new version would strand a live instance.
    pub fn strands(&self) -> bool {
        compat::strands(&self.diagnostics)
    }
}

/// What [`Engine::deploy`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployed {
    /// The definition's id.
    pub id: String,
    /// The version that holds the source.
    pub version: u64,
    /// False when the source had the same content as the latest version (a no-op); formatting
    /// and key order do not count as changes.
    pub created: bool,
}

impl<S: Store> Engine<S> {
    /// Compiles `source` and deploys it: the same content as the latest version is a no-op, a
    /// change becomes the next version (instances stay on the version they started on). Errors
    /// in the source are [`EngineError::InvalidDefinition`] and store nothing. Safe to call
    /// concurrently, from several processes: each distinct content becomes one version.
    pub async fn deploy(&self, tenant: &TenantId, source: &str) -> Result<Deployed, EngineError> {
        let def = compile(source)?;
        let name = def.label.as_deref().unwrap_or(&def.id);
        let deployed = self.store.deploy_definition(tenant, &def.id, name, source).await?;
        Ok(Deployed { id: def.id, version: deployed.version, created: deployed.created })
    }

    /// Compares `source`, a new version of a deployed definition, with its latest version and
    /// the definition's active instances (see [`compat`]): what `crm check --against` reports.
    /// Errors in the source are [`EngineError::InvalidDefinition`]; nothing is written.
    pub async fn compatibility(&self, tenant: &TenantId, source: &str) -> Result<Compatibility, EngineError> {
        let new = compile(source)?;
        let Some(row) = self.store.definition(tenant, &new.id, None).await? else {
            return Ok(Compatibility {
                id: new.id,
                live_version: None,
                instances: 0,
                diagnostics: Vec::new(),
            });
        };
        let old = self.compiled(tenant, &row)?;
        let live = self.store.live_instances(tenant, &new.id).await?;
        let diagnostics = compat::compare(old.definition(), &new, source, Some(&live));
        Ok(Compatibility { id: new.id, live_version: Some(row.version), instances: live.len(), diagnostics })
    }

    /// The latest version of every deployed definition, by id; `active` says whether it starts
    /// new instances.
    pub async fn definitions(&self, tenant: &TenantId) -> Result<Vec<DefinitionRow>, EngineError> {
        Ok(self.store.definitions(tenant).await?)
    }

    /// One version of a definition (the latest for `None`).
    pub async fn definition(
        &self,
        tenant: &TenantId,
        id: &str,
        version: Option<u64>,
    ) -> Result<DefinitionRow, EngineError> {
        self.store
            .definition(tenant, id, version)
            .await?
            .ok_or_else(|| EngineError::UnknownDefinition { id: unknown_id(id, version) })
    }

    /// Every version of a definition, oldest first.
    pub async fn definition_versions(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Vec<DefinitionRow>, EngineError> {
        let versions = self.store.definition_versions(tenant, id).await?;
        if versions.is_empty() {
            return Err(EngineError::UnknownDefinition { id: id.to_owned() });
        }
        Ok(versions)
    }

    /// Lets the definition start new instances again (on its latest version); a no-op when it
    /// does already. Returns the latest version.
    pub async fn activate_definition(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<DefinitionRow, EngineError> {
        self.set_active(tenant, id, true).await
    }

    /// Stops the definition from starting new instances: [`Engine::create_instance`] answers
    /// [`EngineError::DefinitionInactive`]. Running instances continue on their versions, and a
    /// later deploy keeps the definition deactivated. Returns the latest version.
    pub async fn deactivate_definition(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<DefinitionRow, EngineError> {
        self.set_active(tenant, id, false).await
    }

    async fn set_active(
        &self,
        tenant: &TenantId,
        id: &str,
        active: bool,
    ) -> Result<DefinitionRow, EngineError> {
        match self.store.set_definition_active(tenant, id, active).await {
            Ok(()) => self.definition(tenant, id, None).await,
            Err(StoreError::NotFound { .. }) => Err(EngineError::UnknownDefinition { id: id.to_owned() }),
            Err(error) => Err(error.into()),
        }
    }

    /// The machine new instances of `definition` start on, and its version: the latest version,
    /// unless the definition is deactivated.
    pub(super) async fn startable_machine(
        &self,
        tenant: &TenantId,
        definition: &str,
    ) -> Result<(Arc<Machine>, u64), EngineError> {
        let row = self.definition(tenant, definition, None).await?;
        if !row.active {
            return Err(EngineError::DefinitionInactive { id: row.id });
        }
        Ok((self.compiled(tenant, &row)?, row.version))
    }
}

/// `sales` or `sales@3`, for the error of a missing (version of a) definition.
fn unknown_id(id: &str, version: Option<u64>) -> String {
    match version {
        Some(version) => format!("{id}@{version}"),
        None => id.to_owned(),
    }
}
