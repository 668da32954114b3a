//! Assignment, delegations and the dashboard on the engine.
//!
//! Assigning follows the tenant's active delegations (stored with [`Engine::add_delegation`])
//! before the definition's own `delegation.rules` (seed BR-009), then refuses to hand the
//! instance to the acting user unless the entity allows self-assignment (BR-001). The dashboard
//! ([`Engine::pending_for_user`]) lists what is assigned to a user, what is assigned to someone who
//! delegated to them (no more hops away than the instance's definition follows, BR-005), and
//! what awaits their approval.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::{Engine, EngineError, InstanceView};
use crate::engine::eval::Actor;
use crate::engine::machine::{AssignmentRequest, Candidate, Delegation, Directory, Machine, Step};
use crate::ir::AssignmentStrategy;
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
        let directory = &*self.directory;
        self.run(tenant, id, expected_version, actor, |m, state, now| {
            let delegations = machine_delegations(m, &stored);
            m.assign(state, assignee, actor, &delegations, directory, now.date_naive(), now)
        })
        .await
    }

    /// Completes the assignment `step` asks for, if any (see [`AssignmentRequest`]): the
    /// candidates are its users and the directory's members of its roles, in order and without
    /// repeats; round-robin takes the next turn of the pool's rotation, which every engine on the
    /// store shares; least-loaded takes the candidate with the fewest active instances assigned,
    /// the first listed on a tie. A turn taken by a command that then loses a race stays taken.
    pub(super) async fn choose_assignee(
        &self,
        tenant: &TenantId,
        machine: &Machine,
        step: &mut Step,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        let Some(request) = &step.assignment else { return Ok(()) };
        let mut users = candidate_users(request, &*self.directory);
        if request.reassign
            && users.len() > 1
            && let Some(current) = &step.state.assignee
        {
            users.retain(|u| u != current);
        }
        let choice = if users.is_empty() {
            None
        } else {
            match request.strategy {
                AssignmentStrategy::LeastLoaded => {
                    let counts = self.store.open_assignments(tenant, &users).await?;
                    let fewest =
                        counts.iter().enumerate().min_by_key(|&(i, count)| (*count, i)).map(|(i, _)| i);
                    fewest.and_then(|i| users.get(i))
                }
                AssignmentStrategy::RoundRobin | AssignmentStrategy::Manual => {
                    let pool = format!("{}/{}", machine.definition().id, request.pool);
                    let turn = self.store.take_assignment_turn(tenant, &pool).await?;
                    let index = usize::try_from(turn % users.len() as u64).unwrap_or(0);
                    users.get(index)
                }
            }
        };
        let delegations = match choice {
            Some(_) => machine_delegations(machine, &self.store.delegations(tenant).await?),
            None => Vec::new(),
        };
        let choice = choice.cloned();
        machine.complete_assignment(step, choice.as_deref(), &delegations, now.date_naive(), now);
        Ok(())
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

/// The users `request` chooses from: its users and the members of its roles, in order, each once.
fn candidate_users(request: &AssignmentRequest, directory: &dyn Directory) -> Vec<String> {
    let mut users: Vec<String> = Vec::new();
    for candidate in &request.candidates {
        let found = match candidate {
            Candidate::User(user) => vec![user.clone()],
            Candidate::Role(role) => directory.members(role),
        };
        for user in found {
            if !user.trim().is_empty() && !users.contains(&user) {
                users.push(user);
            }
        }
    }
    users
}
