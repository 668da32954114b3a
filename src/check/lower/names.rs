//! Name → id look-ups for actions, entities and stages, and the findings for a name that does not
//! resolve (unknown, or a stage of another entity).

use std::collections::HashMap;

use indexmap::IndexMap;

use crate::check::lower::Cx;
use crate::diagnostic::{Code, Diagnostic, unknown_name_help};
use crate::ir::{ActionId, EntityId, StageId};

/// Name → id look-ups shared by the lowering steps.
pub(super) struct Names<'n> {
    pub(super) actions: &'n HashMap<&'n str, ActionId>,
    pub(super) entities: &'n IndexMap<String, EntityId>,
    pub(super) stages: &'n StageIndex,
}

/// Every stage name → the stages of that name, one per entity that declares it.
#[derive(Default)]
pub(super) struct StageIndex {
    pub(super) by_name: HashMap<String, Vec<(EntityId, StageId)>>,
}

impl StageIndex {
    pub(super) fn in_entity(&self, name: &str, entity: EntityId) -> Option<StageId> {
        self.by_name.get(name)?.iter().find(|(e, _)| *e == entity).map(|(_, s)| *s)
    }

    pub(super) fn entities_of(&self, name: &str) -> Vec<EntityId> {
        self.by_name.get(name).map(|v| v.iter().map(|(e, _)| *e).collect()).unwrap_or_default()
    }
}

impl Cx<'_, '_> {
    pub(super) fn action_ref(&mut self, name: &str, pointer: &str, names: &Names<'_>) -> Option<ActionId> {
        if let Some(&id) = names.actions.get(name) {
            return Some(id);
        }
        if !self.was_pruned("actions", name) {
            let help = if self.file.actions.is_empty() {
                Some(format!(
                    "declare it under `actions`, e.g. \"actions\": {{\"{name}\": {{\"type\": \"notify\"}}}}"
                ))
            } else {
                unknown_name_help(name, "action", self.file.actions.keys().map(String::as_str))
            };
            self.push(
                Diagnostic::new(
                    Code::UnknownAction,
                    self.locate.value(pointer),
                    format!("unknown action `{name}`"),
                )
                .with_label("not declared in `actions`")
                .with_help_opt(help),
            );
        }
        None
    }

    pub(super) fn entity_ref(&mut self, name: &str, pointer: &str, names: &Names<'_>) -> Option<EntityId> {
        if let Some(&id) = names.entities.get(name) {
            return Some(id);
        }
        if !self.was_pruned("entities", name) {
            let help = unknown_name_help(name, "entity", names.entities.keys().map(String::as_str));
            self.push(
                Diagnostic::new(
                    Code::UnknownEntity,
                    self.locate.value(pointer),
                    format!("unknown entity `{name}`"),
                )
                .with_label("not declared in `entities`")
                .with_help_opt(help),
            );
        }
        None
    }

    /// Resolves `name` as a stage of `entity`, reporting an unknown or foreign stage.
    /// The stage `name` of `entity`; `pointer` (to the reference) is only built for a finding.
    pub(super) fn stage_in_entity(
        &mut self,
        name: &str,
        entity: EntityId,
        names: &Names<'_>,
        pointer: impl FnOnce() -> String,
        role: &str,
    ) -> Option<StageId> {
        if let Some(id) = names.stages.in_entity(name, entity) {
            return Some(id);
        }
        let pointer = &pointer();
        let entity_name = names.entities.get_index(entity.index()).map(|(n, _)| n.as_str()).unwrap_or("?");
        let owners = names.stages.entities_of(name);
        if let Some(owner) = owners.first() {
            let owner_name = names.entities.get_index(owner.index()).map(|(n, _)| n.as_str()).unwrap_or("?");
            self.push(
                Diagnostic::new(
                    Code::ForeignStage,
                    self.locate.value(pointer),
                    format!("{role} `{name}` belongs to entity `{owner_name}`, not `{entity_name}`"),
                )
                .with_label(format!("a stage of `{owner_name}`"))
                .with_help(format!("use a stage of `{entity_name}`, or move this to `{owner_name}`")),
            );
        } else if !self.some_entity_pruned() {
            let candidates = self.entity_stage_names(entity);
            let help = unknown_name_help(name, "stage", candidates.iter().map(String::as_str));
            self.push(
                Diagnostic::new(
                    Code::UnknownStage,
                    self.locate.value(pointer),
                    format!("unknown {role} `{name}` in entity `{entity_name}`"),
                )
                .with_label("not declared in the entity's `stages`")
                .with_help_opt(help),
            );
        }
        None
    }
}
