//! `transitions`, and the trigger rule transitions and gateways share.

use crate::check::locate::ptr;
use crate::check::lower::Cx;
use crate::check::lower::endpoints::{Endpoints, endpoint_stages};
use crate::check::lower::names::Names;
use crate::ir::{self, DataSchema, EntityId};
use crate::syntax::model;

pub(super) struct LoweredTransitions {
    pub(super) transitions: Vec<ir::Transition>,
    pub(super) wildcards: Vec<(ir::TransitionId, EntityId)>,
}

impl Cx<'_, '_> {
    pub(super) fn transitions(&mut self, names: &Names<'_>, data: &DataSchema) -> LoweredTransitions {
        let mut transitions = Vec::new();
        let mut wildcards = Vec::new();
        for (name, spec) in &self.file.transitions {
            let at = ptr!["transitions", name];
            let endpoints = Endpoints {
                stages: endpoint_stages(&spec.from, &at)
                    .into_iter()
                    .chain(std::iter::once((spec.to.as_str(), format!("{at}/to"))))
                    .collect(),
                pointer: at.clone(),
                entity: spec.entity.as_deref(),
            };
            let Some(entity) = self.resolve_entity(&endpoints, names, "this transition") else {
                self.dropped_edges = true;
                continue;
            };
            let (from, wildcard) = self.resolve_from(&spec.from, entity, names, &|| format!("{at}/from"));
            let to = self.stage_in_entity(&spec.to, entity, names, || format!("{at}/to"), "stage");
            let stages = self.entity_stage_names(entity);
            let condition = spec
                .condition
                .as_ref()
                .and_then(|c| self.condition(c, || format!("{at}/condition"), data, &stages));
            let guards = self.guards(&spec.guards, &at, data, &stages);
            let actions = self.action_list(&spec.actions, &at, names);
            let approval = spec.approval.as_ref().and_then(|a| self.approval(a, &format!("{at}/approval")));
            let trigger = trigger(spec.trigger, spec.condition.is_some());
            let Some(to) = to else {
                self.dropped_edges = true;
                continue;
            };
            if wildcard {
                wildcards.push((ir::TransitionId(transitions.len() as u32), entity));
            }
            transitions.push(ir::Transition {
                name: name.clone(),
                label: spec.label.clone(),
                entity,
                from,
                to,
                trigger,
                condition,
                guards,
                actions,
                approval,
            });
        }
        LoweredTransitions { transitions, wildcards }
    }
}

pub(super) fn trigger(trigger: Option<model::Trigger>, has_condition: bool) -> ir::Trigger {
    match trigger {
        Some(model::Trigger::Manual) => ir::Trigger::Manual,
        Some(model::Trigger::Auto) => ir::Trigger::Auto,
        None if has_condition => ir::Trigger::Auto,
        None => ir::Trigger::Manual,
    }
}
