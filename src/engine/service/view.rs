//! What callers see of an instance: names, not ids.

use serde_json::Value as Json;

use crate::engine::machine::{ApprovalResponse, InstanceState, InstanceStatus, Machine, TokenStatus};

/// An instance as of its latest committed version.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceView {
    /// The instance id.
    pub id: String,
    /// The definition it runs.
    pub definition: String,
    /// The definition version it is pinned to.
    pub definition_version: u64,
    /// Its entity.
    pub entity: String,
    /// Its main stage (the fork stage while a gateway runs).
    pub stage: String,
    /// Active or completed.
    pub status: InstanceStatus,
    /// Its data.
    pub data: Json,
    /// The running gateway's active branches.
    pub tokens: Vec<TokenView>,
    /// The approval a transition waits for.
    pub pending_approval: Option<ApprovalView>,
    /// The user it is assigned to.
    pub assignee: Option<String>,
    /// The optimistic-lock version: pass it back to change the instance.
    pub version: u64,
    /// Its human-readable number (`entities.<name>.number`), when its entity has a pattern.
    pub number: Option<String>,
}

/// One branch of the running gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenView {
    /// The gateway.
    pub gateway: String,
    /// The branch.
    pub branch: String,
    /// The branch's stage, for branches that have stages.
    pub stage: Option<String>,
    /// Where it stands.
    pub status: TokenStatus,
}

/// A transition waiting for approval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalView {
    /// The transition.
    pub transition: String,
    /// Who fired it.
    pub requested_by: String,
    /// The responses so far.
    pub responses: Vec<ApprovalResponse>,
}

impl InstanceView {
    /// The view of `state`, an instance `id` of `machine`'s definition at `definition_version`.
    pub(super) fn new(id: &str, definition_version: u64, machine: &Machine, state: &InstanceState) -> Self {
        let def = machine.definition();
        Self {
            id: id.to_owned(),
            definition: def.id.clone(),
            definition_version,
            entity: def.entity(state.entity).name.clone(),
            stage: machine.stage_name(state).to_owned(),
            status: state.status,
            data: machine.data_json(state),
            tokens: state
                .tokens
                .iter()
                .map(|t| {
                    let g = def.gateway(t.gateway);
                    TokenView {
                        gateway: g.name.clone(),
                        branch: g.branches[t.branch].name.clone(),
                        stage: t.stage.map(|s| def.stage(s).name.clone()),
                        status: t.status,
                    }
                })
                .collect(),
            pending_approval: state.pending_approval.as_ref().map(|p| ApprovalView {
                transition: def.transition(p.transition).name.clone(),
                requested_by: p.requested_by.clone(),
                responses: p.responses.clone(),
            }),
            assignee: state.assignee.clone(),
            version: state.version,
            // Assigned by the store; the caller fills it in from the row.
            number: None,
        }
    }
}
