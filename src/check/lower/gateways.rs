//! `gateways`: forks, their branches and joins, and names shared with transitions.

use crate::check::locate::ptr;
use crate::check::lower::Cx;
use crate::check::lower::endpoints::{Endpoints, endpoint_stages};
use crate::check::lower::names::Names;
use crate::check::lower::transitions::trigger;
use crate::diagnostic::{Code, Diagnostic};
use crate::ir::{self, DataSchema};
use crate::syntax::model;

impl Cx<'_, '_> {
    pub(super) fn gateways(&mut self, names: &Names<'_>, data: &DataSchema) -> Vec<ir::Gateway> {
        let mut gateways = Vec::new();
        for (name, spec) in &self.file.gateways {
            let at = ptr!["gateways", name];
            let mut endpoint_list = endpoint_stages(&spec.from, &at);
            endpoint_list.push((spec.join.as_str(), format!("{at}/join")));
            for (branch_name, branch) in &spec.branches {
                if let Some(stage) = &branch.stage {
                    endpoint_list
                        .push((stage.as_str(), ptr!["gateways", name, "branches", branch_name, "stage"]));
                }
            }
            let endpoints =
                Endpoints { stages: endpoint_list, pointer: at.clone(), entity: spec.entity.as_deref() };
            let Some(entity) = self.resolve_entity(&endpoints, names, "this gateway") else {
                self.dropped_edges = true;
                continue;
            };
            let (from, wildcard) = self.resolve_from(&spec.from, entity, names, &|| format!("{at}/from"));
            if wildcard {
                self.push(
                    Diagnostic::new(
                        Code::UnknownStage,
                        self.locate.value(&format!("{at}/from")),
                        "a gateway cannot fork from `*`",
                    )
                    .with_label("name the stage(s) the fork leaves from"),
                );
            }
            let join = self.stage_in_entity(&spec.join, entity, names, || format!("{at}/join"), "join stage");
            let stages = self.entity_stage_names(entity);
            let condition = spec
                .condition
                .as_ref()
                .and_then(|c| self.condition(c, || format!("{at}/condition"), data, &stages));
            let guards = self.guards(&spec.guards, &at, data, &stages);
            let actions = self.action_list(&spec.actions, &at, names);
            let mut branches = Vec::new();
            for (branch_name, branch) in &spec.branches {
                let bt = ptr!["gateways", name, "branches", branch_name];
                if spec.kind == model::GatewayKind::Parallel && branch.condition.is_some() {
                    self.push(
                        Diagnostic::new(
                            Code::ParallelBranchCondition,
                            self.locate.key(&format!("{bt}/condition")),
                            format!("branch `{branch_name}` of parallel gateway `{name}` has a condition"),
                        )
                        .with_label("parallel gateways run every branch; this is ignored")
                        .with_secondary(self.locate.value(&format!("{at}/type")), "parallel gateway")
                        .with_help("make the gateway `inclusive`, or remove the condition"),
                    );
                }
                let condition = match (spec.kind, &branch.condition) {
                    (model::GatewayKind::Inclusive, Some(c)) => {
                        self.condition(c, || format!("{bt}/condition"), data, &stages)
                    }
                    _ => None,
                };
                let action =
                    branch.action.as_ref().and_then(|a| self.action_ref(a, &format!("{bt}/action"), names));
                let stage = branch.stage.as_ref().and_then(|s| {
                    self.stage_in_entity(s, entity, names, || format!("{bt}/stage"), "branch stage")
                });
                if branch.stage.is_some() && stage.is_none() {
                    self.incomplete_entities.insert(entity);
                }
                branches.push(ir::Branch {
                    name: branch_name.clone(),
                    label: branch.label.clone(),
                    condition,
                    stage,
                    action,
                });
            }
            let Some(join) = join else {
                self.dropped_edges = true;
                continue;
            };
            gateways.push(ir::Gateway {
                name: name.clone(),
                label: spec.label.clone(),
                kind: match spec.kind {
                    model::GatewayKind::Parallel => ir::GatewayKind::Parallel,
                    model::GatewayKind::Inclusive => ir::GatewayKind::Inclusive,
                },
                entity,
                from,
                trigger: trigger(spec.trigger, spec.condition.is_some()),
                condition,
                guards,
                branches,
                join,
                actions,
            });
        }
        gateways
    }

    /// Transitions and gateways are both fired by name, so their names must not collide.
    pub(super) fn check_duplicate_firing_names(&mut self) {
        for name in self.file.gateways.keys() {
            if self.file.transitions.contains_key(name) {
                self.push(
                    Diagnostic::new(
                        Code::DuplicateName,
                        self.locate.key(&ptr!["gateways", name]),
                        format!("gateway `{name}` has the same name as a transition"),
                    )
                    .with_label("gateway declared here")
                    .with_secondary(self.locate.key(&ptr!["transitions", name]), "transition declared here")
                    .with_help("both are fired by name; rename one"),
                );
            }
        }
    }
}
