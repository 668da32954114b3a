//! Assignment: delegations first (seed BR-009, at most `max_depth` hops, BR-005), then the
//! self-assignment rule (BR-001).

use chrono::NaiveDate;
use serde_json::Value as Json;

use super::Delegation;
use super::error::MachineError;
use super::exec::{Exec, obj, string};
use super::step::events;
use crate::engine::eval::Actor;
use crate::ir::{Definition, EntityId};

impl Exec<'_> {
    pub(super) fn assign(
        &mut self,
        assignee: &str,
        actor: &Actor,
        delegations: &[Delegation],
        today: NaiveDate,
    ) -> Result<(), MachineError> {
        let def = self.def;
        let chain = delegation_chain(def, self.state.entity, assignee, delegations, today)?;
        let user = chain.last().map_or(assignee, String::as_str);
        if user == actor.id && !def.entity(self.state.entity).assignment.allow_self_assignment {
            return Err(MachineError::SelfAssignment { user: user.to_owned() });
        }
        let before = obj([("assignee", self.state.assignee.as_deref().map_or(Json::Null, string))]);
        let after = obj([("assignee", string(user))]);
        let payload = obj([
            ("requested", string(assignee)),
            ("chain", Json::Array(chain.iter().map(|u| string(u)).collect())),
        ]);
        self.state.assignee = Some(user.to_owned());
        self.record(events::ASSIGNED, before, after, actor, payload);
        self.emit(events::ASSIGNED, obj([("assignee", string(user))]));
        Ok(())
    }
}

/// The users work for `user` goes to, `user` first, following the first active delegation of
/// each (run-time ones before the definition's rules).
fn delegation_chain(
    def: &Definition,
    entity: EntityId,
    user: &str,
    delegations: &[Delegation],
    today: NaiveDate,
) -> Result<Vec<String>, MachineError> {
    let active = |d: &&Delegation| {
        d.start.is_none_or(|start| start <= today)
            && d.end.is_none_or(|end| today <= end)
            && (d.entities.is_empty() || d.entities.contains(&entity))
    };
    let max_depth = def.delegation.max_depth.min(crate::ir::MAX_DELEGATION_DEPTH) as usize;
    let mut chain = vec![user.to_owned()];
    while let Some(next) = chain.last().and_then(|current| {
        delegations.iter().chain(&def.delegation.rules).filter(active).find(|d| &d.from == current)
    }) {
        let cycle = chain.contains(&next.to);
        chain.push(next.to.clone());
        if cycle {
            return Err(MachineError::DelegationCycle { chain });
        }
        if chain.len() - 1 > max_depth {
            return Err(MachineError::DelegationTooDeep { chain, max_depth: max_depth as u32 });
        }
    }
    Ok(chain)
}
