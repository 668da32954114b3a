//! Assignment, delegations and the dashboard on the engine.
//!
//! Assigning follows the tenant's active delegations (stored with [`Engine::add_delegation`])
//! before the definition's own `delegation.rules` (seed BR-009), then refuses to hand the
//! instance to the acting user unless the entity allows self-assignment (BR-001). The dashboard
//! ([`Engine::pending_for_user`]) lists what is assigned to a user, what is assigned to someone who
//! delegated to them (no more hops away than the instance's definition follows, BR-005), and
//! what awaits their approval.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::{Engine, EngineError, InstanceView};
use crate::engine::eval::Actor;
use crate::engine::machine::{Delegation, Machine};
use crate::store::{DelegationRow, Page, PendingItem, PendingQuery, Store, TenantId, new_id};

/// A delegation to record: `delegator`'s work also goes to `delegatee` between the dates.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NewDelegation {
    /// Who delegates.
    pub delegator: String,
    /// To whom.
    pub delegatee: String,
    /// First day (inclusive); `None` means already started.
    pub start: Option<NaiveDate>,
    /// Last day (inclusive); `None` means open-ended.
    pub end: Option<NaiveDate>,
    /// Only instances of this entity; `None` means all.
    pub entity: Option<String>,
}

impl<S: Store> Engine<S> {
    /// Assigns the instance to `assignee` as `actor`, or to whom their active delegations lead;
    /// refused when that is `actor` and the entity does not allow self-assignment (BR-001). With
    /// `expected_version`, only if the instance is still at that version.
    pub async fn assign(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        id: &str,
        assignee: &str,
        expected_version: Option<u64>,
    ) -> Result<InstanceView, EngineError> {
        let stored = self.store.delegations(tenant).await?;
        self.run(tenant, id, expected_version, actor, |m, state, now| {
            let delegations = machine_delegations(m, &stored);
            m.assign(state, assignee, actor, &delegations, now.date_naive(), now)
        })
        .await
    }

    /// Records a delegation for the tenant and returns it with its id.
    pub async fn add_delegation(
        &self,
        tenant: &TenantId,
        delegation: NewDelegation,
    ) -> Result<DelegationRow, EngineError> {
        let invalid = |reason: &str| EngineError::InvalidDelegation { reason: reason.to_owned() };
        if delegation.delegator.trim().is_empty() || delegation.delegatee.trim().is_empty() {
            return Err(invalid("delegator and delegatee must be user ids"));
        }
        if delegation.delegator == delegation.delegatee {
            return Err(invalid(&format!("`{}` cannot delegate to themselves", delegation.delegator)));
        }
        if let (Some(start), Some(end)) = (delegation.start, delegation.end)
            && end < start
        {
            return Err(invalid(&format!("it ends ({end}) before it starts ({start})")));
        }
        let row = DelegationRow {
            id: new_id(),
            delegator: delegation.delegator,
            delegatee: delegation.delegatee,
            start_date: delegation.start,
            end_date: delegation.end,
            entity: delegation.entity,
            created_at: self.now(),
        };
        self.store.add_delegation(tenant, &row).await?;
        Ok(row)
    }

    /// Removes a delegation; an unknown id is a store `NotFound` error.
    pub async fn remove_delegation(&self, tenant: &TenantId, id: &str) -> Result<(), EngineError> {
        Ok(self.store.remove_delegation(tenant, id).await?)
    }

    /// Every delegation of the tenant, oldest first.
    pub async fn delegations(&self, tenant: &TenantId) -> Result<Vec<DelegationRow>, EngineError> {
        Ok(self.store.delegations(tenant).await?)
    }

    /// The dashboard of `user`: assigned to them, delegated to them, or awaiting their approval.
    /// Delegations are judged on the engine's "today" unless the query sets one, and followed
    /// as many hops as each definition's `delegation.max_depth` allows.
    pub async fn pending_for_user(
        &self,
        tenant: &TenantId,
        user: &str,
        query: &PendingQuery,
    ) -> Result<Page<PendingItem>, EngineError> {
        let mut query = query.clone();
        query.today = query.today.or_else(|| Some(self.now().date_naive()));
        query.delegation_depth = self.delegation_depths(tenant, query.definition.as_deref()).await?;
        Ok(self.store.pending_for_user(tenant, user, &query).await?)
    }

    /// The `delegation.max_depth` of each definition (its latest version), or of `only`.
    async fn delegation_depths(
        &self,
        tenant: &TenantId,
        only: Option<&str>,
    ) -> Result<BTreeMap<String, u32>, EngineError> {
        let rows = match only {
            Some(id) => self.store.definition(tenant, id, None).await?.into_iter().collect(),
            None => self.store.definitions(tenant).await?,
        };
        let mut depths = BTreeMap::new();
        for row in rows {
            // A stored source that no longer compiles runs no command; listing its instances
            // with the store's default depth beats refusing the whole dashboard.
            if let Ok(machine) = self.compiled(tenant, &row) {
                depths.insert(row.id, machine.definition().delegation.max_depth);
            }
        }
        Ok(depths)
    }
}

/// The stored delegations as the machine sees them; one limited to an entity this definition
/// does not have cannot apply to its instances and is left out.
fn machine_delegations(machine: &Machine, stored: &[DelegationRow]) -> Vec<Delegation> {
    let def = machine.definition();
    stored
        .iter()
        .filter_map(|d| {
            let entities = match &d.entity {
                None => Vec::new(),
                Some(name) => vec![def.entity_named(name)?],
            };
            Some(Delegation {
                from: d.delegator.clone(),
                to: d.delegatee.clone(),
                start: d.start_date,
                end: d.end_date,
                entities,
            })
        })
        .collect()
}
