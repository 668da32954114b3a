//! Assignment: candidates (the entity's `assignment`), delegations first (seed BR-009, at most
//! `max_depth` hops, BR-005), then the self-assignment rule (BR-001); and the automatic
//! assignments the engine completes with a choice only it can make (shared rotation, workloads).

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value as Json;

use super::error::MachineError;
use super::exec::{Exec, obj, string};
use super::step::{AssignmentRequest, Candidate, HistoryEntry, OutboxItem, OutboxKind, Step, events};
use super::{Delegation, Directory, Machine, SYSTEM};
use crate::engine::data::value_to_json;
use crate::engine::eval::Actor;
use crate::ir::{ActionId, AssignmentStrategy, Definition, EntityId, StageId};

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

impl Exec<'_> {
    /// Refuses `user` when the entity lists candidates and `user` is not one of them. A role
    /// whose members `directory` does not know cannot be checked, so it admits anyone.
    pub(super) fn check_candidate(&self, user: &str, directory: &dyn Directory) -> Result<(), MachineError> {
        let assignment = &self.def.entity(self.state.entity).assignment;
        if assignment.users.is_empty() && assignment.roles.is_empty() {
            return Ok(());
        }
        if assignment.users.iter().any(|u| u == user) {
            return Ok(());
        }
        let mut unchecked = false;
        for role in &assignment.roles {
            let members = directory.members(role);
            if members.is_empty() {
                unchecked = true;
            } else if members.iter().any(|m| m == user) {
                return Ok(());
            }
        }
        if unchecked {
            return Ok(());
        }
        let listed = assignment
            .users
            .iter()
            .map(|u| format!("`{u}`"))
            .chain(assignment.roles.iter().map(|r| format!("members of `{r}`")))
            .collect::<Vec<_>>()
            .join(", ");
        Err(MachineError::NotACandidate { user: user.to_owned(), candidates: listed })
    }

    /// Asks for an automatic assignee on entering `stage`, when the entity has an automatic
    /// strategy and the instance has nobody yet.
    pub(super) fn request_entity_assignment(&mut self, stage: StageId) {
        let def = self.def;
        let entity = def.entity(self.state.entity);
        let a = &entity.assignment;
        // An `assign` action of the same command decides instead.
        if a.strategy == AssignmentStrategy::Manual
            || self.state.assignee.is_some()
            || self.assignment.is_some()
        {
            return;
        }
        let candidates = a
            .users
            .iter()
            .map(|u| Candidate::User(u.clone()))
            .chain(a.roles.iter().map(|r| Candidate::Role(r.clone())))
            .collect();
        self.assignment = Some(AssignmentRequest {
            candidates,
            strategy: a.strategy,
            pool: entity.name.clone(),
            cause: obj([("stage", string(&def.stage(stage).name))]),
            reassign: false,
        });
    }

    /// Asks for an assignee among an `assign` action's `to`: users, `role:NAME`, `data.FIELD`
    /// (read now; a string or an array of strings) and `assignee` (the current one). The entity's
    /// automatic strategy chooses; with `manual`, the candidates take turns.
    pub(super) fn request_action_assignment(&mut self, action: ActionId, to: &[String]) {
        let def = self.def;
        let entity = def.entity(self.state.entity);
        let mut candidates = Vec::new();
        for recipient in to {
            if let Some(role) = recipient.strip_prefix("role:") {
                candidates.push(Candidate::Role(role.to_owned()));
            } else if let Some(field) = recipient.strip_prefix("data.") {
                let value = def
                    .data
                    .lookup(field)
                    .and_then(|id| self.state.data.get(id))
                    .map(value_to_json)
                    .unwrap_or(Json::Null);
                match value {
                    Json::String(user) => candidates.push(Candidate::User(user)),
                    Json::Array(items) => candidates.extend(
                        items.into_iter().filter_map(|i| i.as_str().map(|u| Candidate::User(u.to_owned()))),
                    ),
                    _ => {}
                }
            } else if recipient == "assignee" {
                if let Some(current) = &self.state.assignee {
                    candidates.push(Candidate::User(current.clone()));
                }
            } else {
                candidates.push(Candidate::User(recipient.clone()));
            }
        }
        let strategy = match entity.assignment.strategy {
            AssignmentStrategy::Manual => AssignmentStrategy::RoundRobin,
            automatic => automatic,
        };
        let name = &def.action(action).name;
        self.assignment = Some(AssignmentRequest {
            candidates,
            strategy,
            pool: format!("{}/{name}", entity.name),
            cause: obj([("action", string(name))]),
            reassign: true,
        });
    }
}

impl Machine {
    /// Completes the assignment `step` asks for with the engine's `choice`: through active
    /// delegations (as [`Machine::assign`], acting as the system, so not self-assignment) into
    /// the step's state, history and events. `None`, or delegations that lead nowhere valid, is
    /// recorded as `assignment_unresolved` and leaves the assignee as it was (for a stage entry
    /// finding nobody, only in the step that creates the instance).
    pub fn complete_assignment(
        &self,
        step: &mut Step,
        choice: Option<&str>,
        delegations: &[Delegation],
        today: NaiveDate,
        now: DateTime<Utc>,
    ) {
        let Some(request) = step.assignment.take() else { return };
        let chain =
            choice.map(|user| delegation_chain(&self.def, step.state.entity, user, delegations, today));
        let created = step.history.iter().any(|h| h.event == events::INSTANCE_CREATED);
        let mut history = |event: &'static str, before: Json, after: Json, payload: Json| {
            step.history.push(HistoryEntry {
                event,
                before,
                after,
                actor: SYSTEM.to_owned(),
                at: now,
                payload,
            });
        };
        match (choice, chain) {
            (Some(requested), Some(Ok(chain))) => {
                let user = chain.last().map_or(requested, String::as_str).to_owned();
                let before = obj([("assignee", step.state.assignee.as_deref().map_or(Json::Null, string))]);
                let after = obj([("assignee", string(&user))]);
                let mut payload = obj([
                    ("requested", string(requested)),
                    ("chain", Json::Array(chain.iter().map(|u| string(u)).collect())),
                ]);
                if let (Json::Object(map), Json::Object(cause)) = (&mut payload, request.cause) {
                    map.extend(cause);
                }
                history(events::ASSIGNED, before, after, payload);
                step.outbox.push(OutboxItem {
                    kind: OutboxKind::Event,
                    name: Cow::Borrowed(events::ASSIGNED),
                    run: None,
                    payload: obj([("assignee", string(&user))]),
                });
                step.state.assignee = Some(user);
            }
            // A stage entry that finds nobody, when the instance was not just created, leaves
            // no trace: its creation recorded that already, and every stage entry tries again.
            (None, _) if !request.reassign && !created => {}
            (_, chain) => {
                let reason = match chain {
                    Some(Err(error)) => error.to_string(),
                    _ => "no candidate is known".to_owned(),
                };
                let mut payload = obj([("reason", string(&reason))]);
                if let (Json::Object(map), Json::Object(cause)) = (&mut payload, request.cause) {
                    map.extend(cause);
                }
                history(events::ASSIGNMENT_UNRESOLVED, Json::Null, Json::Null, payload);
            }
        }
    }
}
