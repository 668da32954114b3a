//! Entities and their stages: stage names, `initial`, `terminal`, automation (escalations and
//! reminders), assignment and the entity's `fields`.

use std::collections::HashMap;

use indexmap::IndexMap;

use crate::check::locate::ptr;
use crate::check::lower::Cx;
use crate::check::lower::names::{Names, StageIndex};
use crate::check::lower::sla::placeholder_sla;
use crate::diagnostic::{Code, Diagnostic, unknown_name_help};
use crate::ir::{self, DataSchema, EntityId, StageId};
use crate::syntax::model;

pub(super) struct EntitySpecs {
    pub(super) ids: IndexMap<String, EntityId>,
    pub(super) stage_pointers: Vec<String>,
}

impl Cx<'_, '_> {
    pub(super) fn entities_and_stages(&mut self) -> (EntitySpecs, Vec<ir::Stage>, StageIndex) {
        let mut ids = IndexMap::new();
        let mut stages = Vec::new();
        let mut stage_pointers = Vec::new();
        let mut index = StageIndex::default();
        for (e, (entity_name, entity)) in self.file.entities.iter().enumerate() {
            let entity_id = EntityId(e as u32);
            ids.insert(entity_name.clone(), entity_id);
            if entity.stages.is_empty() && !self.was_pruned("entities", entity_name) {
                self.push(
                    Diagnostic::new(
                        Code::EmptyEntity,
                        self.locate.value(&ptr!["entities", entity_name, "stages"]),
                        format!("entity `{entity_name}` declares no stages"),
                    )
                    .with_label("no stages")
                    .with_help("list at least one stage; the first is the initial stage"),
                );
            }
            let mut seen: HashMap<&str, usize> = HashMap::new();
            let mut names = Vec::new();
            for (i, stage) in entity.stages.iter().enumerate() {
                let name = stage.name();
                let pointer = stage_pointer(entity_name, i, stage);
                if let Some(&first) = seen.get(name) {
                    let first_pointer = stage_pointer(entity_name, first, &entity.stages[first]);
                    self.push(
                        Diagnostic::new(
                            Code::DuplicateName,
                            self.locate.value(&pointer),
                            format!("stage `{name}` is declared twice in entity `{entity_name}`"),
                        )
                        .with_label("declared again here")
                        .with_secondary(self.locate.value(&first_pointer), "first declared here"),
                    );
                    continue;
                }
                seen.insert(name, i);
                let id = StageId(stages.len() as u32);
                index.by_name.entry(name.to_owned()).or_default().push((entity_id, id));
                names.push(name.to_owned());
                let sla = match stage {
                    model::StageSpec::Detailed(detail) => detail.sla.as_ref(),
                    model::StageSpec::Name(_) => None,
                };
                stages.push(ir::Stage {
                    name: name.to_owned(),
                    label: match stage {
                        model::StageSpec::Detailed(detail) => detail.label.clone(),
                        model::StageSpec::Name(_) => None,
                    },
                    entity: entity_id,
                    terminal: false,
                    // Stage SLAs are lowered with the entity, once actions are known.
                    sla: sla.map(|_| placeholder_sla()),
                    outgoing: Vec::new(),
                    forks: Vec::new(),
                });
                stage_pointers.push(pointer);
            }
            self.stage_names_by_entity.push(names.into());
        }
        (EntitySpecs { ids, stage_pointers }, stages, index)
    }

    pub(super) fn entities(
        &mut self,
        names: &Names<'_>,
        data: &DataSchema,
        stages: &[ir::Stage],
    ) -> (Vec<ir::Entity>, Vec<Option<Vec<StageId>>>) {
        let mut entities = Vec::new();
        let mut declared_terminal = Vec::new();
        let top_sla = self.file.sla.as_ref().and_then(|sla| self.sla(sla, &ptr!["sla"], names, data));
        for (entity_name, entity) in &self.file.entities {
            let Some(&entity_id) = names.entities.get(entity_name) else { continue };
            let own_stages: Vec<StageId> = stages
                .iter()
                .enumerate()
                .filter(|(_, s)| s.entity == entity_id)
                .map(|(i, _)| StageId(i as u32))
                .collect();
            let initial = match &entity.initial {
                Some(initial) => self.stage_in_entity(
                    initial,
                    entity_id,
                    names,
                    || ptr!["entities", entity_name, "initial"],
                    "initial stage",
                ),
                None => own_stages.first().copied(),
            };
            declared_terminal.push(entity.terminal.as_ref().map(|terminal| {
                terminal
                    .iter()
                    .enumerate()
                    .filter_map(|(i, stage)| {
                        let pointer = || ptr!["entities", entity_name, "terminal", i];
                        self.stage_in_entity(stage, entity_id, names, pointer, "terminal stage")
                    })
                    .collect()
            }));
            let sla = match &entity.sla {
                Some(sla) => self.sla(sla, &ptr!["entities", entity_name, "sla"], names, data),
                None => top_sla.clone(),
            };
            let mut escalations = Vec::new();
            let mut reminders = Vec::new();
            if let Some(automation) = &entity.automation {
                let env_stages = self.entity_stage_names(entity_id);
                for (i, rule) in automation.escalation.iter().enumerate() {
                    let at = ptr!["entities", entity_name, "automation", "escalation", i];
                    let after = self.duration(&rule.after, &format!("{at}/after"));
                    let condition = rule.condition.as_ref().and_then(|source| {
                        self.condition(source, || format!("{at}/condition"), data, &env_stages)
                    });
                    let action = self.action_ref(&rule.action, &format!("{at}/action"), names);
                    // The default level is the position, so it must stay within 1–10 like an
                    // explicit one.
                    let level = rule.level.unwrap_or(i as u32 + 1);
                    if rule.level.is_none() && level > MAX_ESCALATION_LEVEL {
                        self.push(
                            Diagnostic::new(
                                Code::InvalidValue,
                                self.locate.key(&at),
                                format!(
                                    "the escalation at position {level} has no `level`; its default level (the position) is above the maximum of {MAX_ESCALATION_LEVEL}"
                                ),
                            )
                            .with_label("default level out of range")
                            .with_help("give this escalation an explicit `level` from 1 to 10"),
                        );
                    }
                    if let (Some(after), Some(action)) = (after, action) {
                        escalations.push(ir::Escalation { after, condition, action, level });
                    }
                }
                let stage_sla_specs: Vec<&model::SlaSpec> = entity
                    .stages
                    .iter()
                    .filter_map(|s| match s {
                        model::StageSpec::Detailed(d) => d.sla.as_ref(),
                        model::StageSpec::Name(_) => None,
                    })
                    .collect();
                let stage_slas = super::sla::StageSlas {
                    any: !stage_sla_specs.is_empty(),
                    any_at_risk: stage_sla_specs.iter().any(|s| s.at_risk.is_some()),
                };
                for (i, rule) in automation.reminders.iter().enumerate() {
                    let at = ptr!["entities", entity_name, "automation", "reminders", i];
                    let before = self.duration(&rule.before, &format!("{at}/before"));
                    let action = self.action_ref(&rule.action, &format!("{at}/action"), names);
                    let target = match rule.target {
                        model::ReminderTarget::SlaBreach => ir::ReminderTarget::SlaBreach,
                        model::ReminderTarget::SlaAtRisk => ir::ReminderTarget::SlaAtRisk,
                    };
                    // An SLA that is written but invalid was reported already; don't add "no SLA".
                    let sla_written = entity.sla.is_some() || self.file.sla.is_some();
                    if sla.is_some() || !sla_written {
                        self.check_reminder(sla.as_ref(), stage_slas, target, before, &at);
                    }
                    if let (Some(before), Some(action)) = (before, action) {
                        reminders.push(ir::Reminder { before, target, action });
                    }
                }
            }
            let assignment =
                entity.assignment.as_ref().map(|a| self.assignment(a, entity_name)).unwrap_or_default();
            let fields = entity.fields.clone().unwrap_or_default();
            if !data.is_empty() {
                for (i, field) in fields.iter().enumerate() {
                    if data.lookup(field).is_none() {
                        let help =
                            unknown_name_help(field, "field", data.fields().iter().map(|f| f.name.as_str()));
                        self.push(
                            Diagnostic::new(
                                Code::UnknownField,
                                self.locate.value(&ptr!["entities", entity_name, "fields", i]),
                                format!("field `{field}` is not declared in `dataSchema`"),
                            )
                            .with_label("unknown field")
                            .with_help_opt(help),
                        );
                    }
                }
            }
            let number = entity.number.as_deref().and_then(|source| self.number_pattern(entity_name, source));
            entities.push(ir::Entity {
                name: entity_name.clone(),
                label: entity.label.clone(),
                stages: own_stages,
                initial: initial.unwrap_or(StageId(u32::MAX)),
                sla,
                escalations,
                reminders,
                assignment,
                fields,
                number,
            });
        }
        (entities, declared_terminal)
    }

    fn assignment(&mut self, spec: &model::AssignmentSpec, entity_name: &str) -> ir::Assignment {
        let strategy = match spec.strategy {
            None | Some(model::AssignmentStrategy::Manual) => ir::AssignmentStrategy::Manual,
            Some(model::AssignmentStrategy::RoundRobin) => ir::AssignmentStrategy::RoundRobin,
            Some(model::AssignmentStrategy::LeastLoaded) => ir::AssignmentStrategy::LeastLoaded,
        };
        if strategy != ir::AssignmentStrategy::Manual && spec.users.is_empty() && spec.roles.is_empty() {
            self.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    self.locate.value(&ptr!["entities", entity_name, "assignment", "strategy"]),
                    "automatic assignment has no candidates",
                )
                .with_label("nobody to choose from")
                .with_help("list `users` or `roles` to assign to"),
            );
        }
        ir::Assignment {
            users: spec.users.clone(),
            roles: spec.roles.clone(),
            strategy,
            allow_self_assignment: spec.allow_self_assignment,
        }
    }
}

/// The highest escalation `level` (the schema's maximum).
const MAX_ESCALATION_LEVEL: u32 = 10;

fn stage_pointer(entity: &str, index: usize, stage: &model::StageSpec) -> String {
    match stage {
        model::StageSpec::Name(_) => ptr!["entities", entity, "stages", index],
        model::StageSpec::Detailed(_) => ptr!["entities", entity, "stages", index, "name"],
    }
}
