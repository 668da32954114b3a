//! Lowering: the deserialised model to the IR, resolving every name and reporting what does not
//! resolve. Graph-level rules (reachability, joins, ambiguity) run afterwards on the IR, in
//! [`super::graph`].

use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use indexmap::IndexMap;

use crate::check::expr::{self as expr_check, ExprEnv};
use crate::check::literal::lower_literal;
use crate::check::locate::{Locator, ptr};
use crate::check::structure::ANY_ENTRY;
use crate::diagnostic::{Code, Diagnostic, unknown_name_help};
use crate::ir::{self, ActionId, DataSchema, EntityId, FieldType, StageId};
use crate::syntax::duration::{parse_date, parse_duration};
use crate::syntax::model::{self, DefinitionFile, StageRefs};

/// The IR built so far plus the pointers needed to report on it later.
pub(crate) struct Lowered {
    /// The definition; only meaningful when no error was reported.
    pub definition: ir::Definition,
    /// Where each stage is declared (`/entities/lead/stages/2`).
    pub stage_pointers: Vec<String>,
    /// Stages reached by a `"*"` transition; they count as having a way out only once known to
    /// be non-terminal.
    pub wildcard_transitions: Vec<(ir::TransitionId, EntityId)>,
    /// Whether transitions or gateways were dropped as unreadable (graph findings would be noise).
    pub graph_incomplete: bool,
    /// The stages each entity declared `terminal`, if it declared any.
    pub declared_terminal: Vec<Option<Vec<StageId>>>,
}

/// Lowers `file` to the IR, reporting unresolved names and invalid settings into `out`.
pub(crate) fn lower(
    file: &DefinitionFile,
    pruned: &Pruned<'_>,
    locate: &Locator<'_>,
    out: &mut Vec<Diagnostic>,
) -> Lowered {
    let mut cx = Cx { file, pruned, locate, out, stage_names_by_entity: Vec::new(), dropped_edges: false };
    let data = cx.data_schema();
    let (entity_specs, mut stages, stage_index) = cx.entities_and_stages();
    let action_ids: HashMap<&str, ActionId> =
        file.actions.keys().enumerate().map(|(i, name)| (name.as_str(), ActionId(i as u32))).collect();
    let names = Names { actions: &action_ids, entities: &entity_specs.ids, stages: &stage_index };

    let actions = cx.actions(&names, &data);
    let transitions = cx.transitions(&names, &data);
    let gateways = cx.gateways(&names, &data);
    cx.check_duplicate_firing_names();
    cx.stage_slas(&mut stages, &names, &entity_specs);
    let (entities, declared_terminal) = cx.entities(&names, &data, &stages);
    let delegation = cx.delegation(&names);
    let integrations = integrations(file);
    let graph_incomplete = cx.dropped_edges
        || pruned.entries.iter().any(|(section, _)| section == "transitions" || section == "gateways");
    // Whatever was dropped for an error may have been what used an action: "unused" is only
    // worth saying about an otherwise valid definition.
    if !cx.out.iter().any(Diagnostic::is_error) {
        cx.unused_actions(&transitions, &gateways, &entities, &actions);
    }
    cx.integration_urls();

    for (id, transition) in transitions.transitions.iter().enumerate() {
        for &from in &transition.from {
            stages[from.index()].outgoing.push(ir::TransitionId(id as u32));
        }
    }
    for (id, gateway) in gateways.iter().enumerate() {
        for &from in &gateway.from {
            stages[from.index()].forks.push(ir::GatewayId(id as u32));
        }
    }
    let header = ir::DefinitionHeader {
        id: file.id.clone(),
        label: file.label.clone(),
        version: file.version.clone(),
    };
    Lowered {
        definition: ir::Definition::new(
            header,
            data,
            entities,
            stages,
            transitions.transitions,
            gateways,
            actions,
            delegation,
            integrations,
        ),
        stage_pointers: entity_specs.stage_pointers,
        wildcard_transitions: transitions.wildcards,
        graph_incomplete,
        declared_terminal,
    }
}

/// What structure validation removed, so that lowering does not report it a second time.
pub(crate) struct Pruned<'p> {
    /// Named entries removed whole, as `(section, name)`.
    pub entries: &'p HashSet<(String, String)>,
    /// Every removed pointer.
    pub pointers: &'p HashSet<String>,
}

struct Cx<'a, 'o> {
    file: &'a DefinitionFile,
    pruned: &'a Pruned<'a>,
    locate: &'a Locator<'a>,
    out: &'o mut Vec<Diagnostic>,
    /// Stage names per entity, shared: every condition of the entity needs them.
    stage_names_by_entity: Vec<Rc<[String]>>,
    /// Whether a transition or gateway was left out of the IR because a name did not resolve.
    dropped_edges: bool,
}

/// Name → id look-ups shared by the lowering steps.
struct Names<'n> {
    actions: &'n HashMap<&'n str, ActionId>,
    entities: &'n IndexMap<String, EntityId>,
    stages: &'n StageIndex,
}

/// Every stage name → the stages of that name, one per entity that declares it.
#[derive(Default)]
struct StageIndex {
    by_name: HashMap<String, Vec<(EntityId, StageId)>>,
}

impl StageIndex {
    fn in_entity(&self, name: &str, entity: EntityId) -> Option<StageId> {
        self.by_name.get(name)?.iter().find(|(e, _)| *e == entity).map(|(_, s)| *s)
    }

    fn entities_of(&self, name: &str) -> Vec<EntityId> {
        self.by_name.get(name).map(|v| v.iter().map(|(e, _)| *e).collect()).unwrap_or_default()
    }
}

struct EntitySpecs {
    ids: IndexMap<String, EntityId>,
    stage_pointers: Vec<String>,
}

struct LoweredTransitions {
    transitions: Vec<ir::Transition>,
    wildcards: Vec<(ir::TransitionId, EntityId)>,
}

/// What a transition or gateway moves between, before its entity is known.
struct Endpoints<'s> {
    /// `(stage name, pointer of the value)`.
    stages: Vec<(&'s str, String)>,
    /// The pointer of the whole transition or gateway (for the key span).
    pointer: String,
    /// `entity`, if declared.
    entity: Option<&'s str>,
}

impl<'a> Cx<'a, '_> {
    fn push(&mut self, diagnostic: Diagnostic) {
        self.out.push(diagnostic);
    }

    fn entity_stage_names(&self, entity: EntityId) -> Rc<[String]> {
        self.stage_names_by_entity.get(entity.index()).cloned().unwrap_or_else(|| Rc::from([]))
    }

    fn was_pruned(&self, section: &str, name: &str) -> bool {
        self.pruned.entries.contains(&(section.to_owned(), name.to_owned()))
            || self.pruned.entries.contains(&(section.to_owned(), ANY_ENTRY.to_owned()))
    }

    /// Whether some entity was dropped as unreadable: its stages are then unknown for a reason
    /// already reported.
    fn some_entity_pruned(&self) -> bool {
        self.pruned.entries.iter().any(|(section, _)| section == "entities")
    }

    /// Whether the value at `pointer` was removed as unreadable (and so already reported).
    fn pruned_at(&self, pointer: &str) -> bool {
        self.pruned.pointers.contains(pointer)
    }

    // ---- dataSchema -------------------------------------------------------------------------

    fn data_schema(&mut self) -> DataSchema {
        let mut fields = Vec::new();
        for (name, spec) in &self.file.data_schema {
            let ty = field_type(spec.ty, spec.items);
            if spec.items.is_some() && spec.ty != model::FieldTypeName::Array {
                self.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        self.locate.key(&ptr!["dataSchema", name, "items"]),
                        "`items` applies only to array fields",
                    )
                    .with_label(format!("`{name}` is a {}", ty.name()))
                    .with_help("remove `items`, or make the field an array"),
                );
            }
            if let (Some(min), Some(max)) = (spec.min, spec.max)
                && min > max
            {
                self.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        self.locate.value(&ptr!["dataSchema", name, "max"]),
                        format!("`max` ({max}) is smaller than `min` ({min})"),
                    )
                    .with_label("no value can satisfy both bounds")
                    .with_secondary(self.locate.value(&ptr!["dataSchema", name, "min"]), "minimum set here"),
                );
            }
            if (spec.min.is_some() || spec.max.is_some())
                && matches!(
                    ty,
                    FieldType::Boolean | FieldType::Object | FieldType::Date | FieldType::DateTime
                )
            {
                let key = if spec.min.is_some() { "min" } else { "max" };
                self.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        self.locate.key(&ptr!["dataSchema", name, key]),
                        format!("`{key}` does not apply to {} fields", ty.name()),
                    )
                    .with_label("bounds apply to numbers, strings and arrays"),
                );
            }
            if let Some(pattern) = &spec.pattern {
                if ty != FieldType::String {
                    self.push(
                        Diagnostic::new(
                            Code::InvalidValue,
                            self.locate.key(&ptr!["dataSchema", name, "pattern"]),
                            "`pattern` applies only to string fields",
                        )
                        .with_label(format!("`{name}` is a {}", ty.name())),
                    );
                } else if let Err(error) = regex::Regex::new(pattern) {
                    self.push(
                        Diagnostic::new(
                            Code::InvalidValue,
                            self.locate.value(&ptr!["dataSchema", name, "pattern"]),
                            "invalid regular expression",
                        )
                        .with_label(first_line(&error.to_string())),
                    );
                }
            }
            let mut allowed = Vec::new();
            for (i, value) in spec.allowed.iter().flatten().enumerate() {
                if !json_fits(value, &ty) {
                    self.push(
                        Diagnostic::new(
                            Code::InvalidValue,
                            self.locate.value(&ptr!["dataSchema", name, "enum", i]),
                            format!("enum value {value} is not a {}", ty.name()),
                        )
                        .with_label(format!("`{name}` is declared as {}", ty.name())),
                    );
                }
                allowed.push(lower_literal(value));
            }
            fields.push(ir::Field {
                name: name.clone(),
                ty,
                required: spec.required,
                min: spec.min,
                max: spec.max,
                allowed,
                pattern: spec.pattern.clone(),
                label: spec.label.clone(),
            });
        }
        DataSchema::new(fields)
    }

    // ---- entities and stages ----------------------------------------------------------------

    fn entities_and_stages(&mut self) -> (EntitySpecs, Vec<ir::Stage>, StageIndex) {
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

    fn entities(
        &mut self,
        names: &Names<'_>,
        data: &DataSchema,
        stages: &[ir::Stage],
    ) -> (Vec<ir::Entity>, Vec<Option<Vec<StageId>>>) {
        let mut entities = Vec::new();
        let mut declared_terminal = Vec::new();
        let top_sla = self.file.sla.as_ref().and_then(|sla| self.sla(sla, &ptr!["sla"], names));
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
                Some(sla) => self.sla(sla, &ptr!["entities", entity_name, "sla"], names),
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
                    if let (Some(after), Some(action)) = (after, action) {
                        escalations.push(ir::Escalation {
                            after,
                            condition,
                            action,
                            level: rule.level.unwrap_or(i as u32 + 1),
                        });
                    }
                }
                let stage_slas = entity
                    .stages
                    .iter()
                    .any(|s| matches!(s, model::StageSpec::Detailed(d) if d.sla.is_some()));
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
            });
        }
        (entities, declared_terminal)
    }

    fn stage_slas(&mut self, stages: &mut [ir::Stage], names: &Names<'_>, specs: &EntitySpecs) {
        for (stage, pointer) in stages.iter_mut().zip(&specs.stage_pointers) {
            if stage.sla.is_none() {
                continue;
            }
            let entity_name = self.file.entities.get_index(stage.entity.index()).map(|(n, _)| n.clone());
            let Some(entity) = entity_name.and_then(|n| self.file.entities.get(&n)) else { continue };
            let spec = entity.stages.iter().find_map(|s| match s {
                model::StageSpec::Detailed(d) if d.name == stage.name => d.sla.as_ref(),
                _ => None,
            });
            let stage_object = pointer.strip_suffix("/name").unwrap_or(pointer);
            stage.sla = spec.and_then(|sla| self.sla(sla, &format!("{stage_object}/sla"), names));
        }
    }

    fn check_reminder(
        &mut self,
        sla: Option<&ir::Sla>,
        stage_slas: bool,
        target: ir::ReminderTarget,
        before: Option<Duration>,
        at: &str,
    ) {
        let Some(sla) = sla else {
            if !stage_slas {
                self.push(
                    Diagnostic::new(
                        Code::ReminderWithoutSla,
                        self.locate.value(&format!("{at}/target")),
                        "this reminder counts back from an SLA, but no SLA applies to this entity",
                    )
                    .with_label("no SLA to count back from")
                    .with_help("declare `sla` on the entity or at the top level, or remove the reminder"),
                );
            }
            return;
        };
        let (deadline, what) = match target {
            ir::ReminderTarget::SlaBreach => (Some(sla.duration), "breach"),
            ir::ReminderTarget::SlaAtRisk => (sla.at_risk, "at-risk time"),
        };
        let Some(deadline) = deadline else {
            self.push(
                Diagnostic::new(Code::ReminderWithoutSla, self.locate.value(&format!("{at}/target")),
                    "this reminder counts back from the SLA's at-risk time, but the SLA declares no `at_risk`")
                    .with_label("no at-risk time")
                    .with_help("add `at_risk` to the SLA, or target `sla_breach`"),
            );
            return;
        };
        if let Some(before) = before
            && before >= deadline
        {
            self.push(
                Diagnostic::new(Code::ReminderAfterBreach, self.locate.value(&format!("{at}/before")),
                    format!(
                        "the reminder is due {} before the {what}, but the {what} comes {} after the clock starts",
                        format_duration(before),
                        format_duration(deadline)
                    ))
                    .with_label("earlier than the clock's start")
                    .with_help("choose a `before` shorter than the SLA"),
            );
        }
    }

    fn sla(&mut self, sla: &model::SlaSpec, at: &str, names: &Names<'_>) -> Option<ir::Sla> {
        let duration = self.duration(&sla.duration, &format!("{at}/duration"));
        let at_risk = sla.at_risk.as_ref().and_then(|text| {
            let pointer = format!("{at}/at_risk");
            let value = match text.trim().strip_suffix('%') {
                Some(percent) => match percent.trim().parse::<f64>() {
                    Ok(p) if p > 0.0 && p < 100.0 => duration.map(|d| d.mul_f64(p / 100.0)),
                    _ => {
                        self.push(
                            Diagnostic::new(
                                Code::InvalidDuration,
                                self.locate.value(&pointer),
                                format!("invalid percentage `{text}`"),
                            )
                            .with_label("expected a share of the SLA between 0% and 100%, e.g. \"75%\""),
                        );
                        None
                    }
                },
                None => self.duration(text, &pointer),
            }?;
            if let Some(duration) = duration
                && value >= duration
            {
                self.push(
                    Diagnostic::new(
                        Code::AtRiskNotBeforeBreach,
                        self.locate.value(&pointer),
                        format!(
                            "`at_risk` ({}) is not earlier than the breach ({})",
                            format_duration(value),
                            format_duration(duration)
                        ),
                    )
                    .with_label("never at risk before breaching")
                    .with_secondary(self.locate.value(&format!("{at}/duration")), "SLA duration")
                    .with_help("use a shorter time or a percentage such as \"75%\""),
                );
            }
            Some(value)
        });
        let breach_actions = sla
            .breach_actions
            .iter()
            .enumerate()
            .filter_map(|(i, name)| self.action_ref(name, &format!("{at}/breach_actions/{i}"), names))
            .collect();
        Some(ir::Sla { duration: duration?, at_risk, breach_actions })
    }

    fn duration(&mut self, text: &str, pointer: &str) -> Option<Duration> {
        match parse_duration(text) {
            Ok(duration) => Some(Duration::from_secs(duration.as_seconds())),
            Err(error) => {
                self.push(
                    Diagnostic::new(
                        Code::InvalidDuration,
                        self.locate.in_string(pointer, error.span()),
                        format!("invalid duration `{text}`"),
                    )
                    .with_label(error.to_string())
                    .with_help(error.help()),
                );
                None
            }
        }
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

    // ---- actions ----------------------------------------------------------------------------

    fn action_ref(&mut self, name: &str, pointer: &str, names: &Names<'_>) -> Option<ActionId> {
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

    fn actions(&mut self, names: &Names<'_>, data: &DataSchema) -> Vec<ir::Action> {
        let mut actions = Vec::new();
        for (name, spec) in &self.file.actions {
            let at = ptr!["actions", name];
            self.inapplicable_action_keys(name, spec);
            let kind = self.action_kind(name, spec, names, data);
            let compensation = spec
                .compensation
                .as_ref()
                .and_then(|c| self.action_ref(c, &format!("{at}/compensation"), names));
            actions.push(ir::Action {
                name: name.clone(),
                label: spec.label.clone(),
                kind,
                compensation,
                max_retries: spec.max_retries.unwrap_or(5),
            });
        }
        self.compensation_cycles(&actions);
        actions
    }

    fn action_kind(
        &mut self,
        name: &str,
        spec: &model::ActionSpec,
        names: &Names<'_>,
        data: &DataSchema,
    ) -> ir::ActionKind {
        use model::ActionType as T;
        let at = ptr!["actions", name];
        let require = |cx: &mut Self, key: &str, present: bool| {
            if !present && !cx.pruned_at(&format!("{at}/{key}")) {
                cx.push(
                    Diagnostic::new(
                        Code::MissingField,
                        cx.locate.key(&at),
                        format!("missing required key `{key}`"),
                    )
                    .with_label(format!("a `{}` action needs `{key}`", type_name(spec.kind))),
                );
            }
        };
        match spec.kind {
            T::Email => {
                if let (Some(template), Some(email)) =
                    (&spec.template, self.file.integrations.as_ref().and_then(|i| i.email.as_ref()))
                    && !email.templates.is_empty()
                    && !email.templates.contains_key(template)
                {
                    let help =
                        unknown_name_help(template, "template", email.templates.keys().map(String::as_str));
                    self.push(
                        Diagnostic::new(
                            Code::InvalidValue,
                            self.locate.value(&format!("{at}/template")),
                            format!("unknown email template `{template}`"),
                        )
                        .with_label("not in `integrations.email.templates`")
                        .with_help_opt(help),
                    );
                }
                ir::ActionKind::Email { template: spec.template.clone(), to: spec.to.clone() }
            }
            T::Webhook => {
                require(self, "url", spec.url.is_some());
                if let Some(url) = &spec.url {
                    self.check_url(url, &format!("{at}/url"));
                }
                ir::ActionKind::Webhook {
                    url: spec.url.clone().unwrap_or_default(),
                    config: spec.config.clone(),
                }
            }
            T::Slack => {
                if let Some(url) = &spec.url {
                    self.check_url(url, &format!("{at}/url"));
                }
                ir::ActionKind::Slack {
                    channel: spec.channel.clone(),
                    url: spec.url.clone(),
                    message: spec.message.clone(),
                }
            }
            T::CreateEntity => {
                require(self, "entity", spec.entity.is_some());
                let entity =
                    spec.entity.as_ref().and_then(|e| self.entity_ref(e, &format!("{at}/entity"), names));
                ir::ActionKind::CreateEntity {
                    entity: entity.unwrap_or(EntityId(u32::MAX)),
                    config: spec.config.clone(),
                }
            }
            T::SetField => {
                require(self, "field", spec.field.is_some());
                require(self, "value", spec.value.is_some());
                let field = spec.field.as_ref().and_then(|field| {
                    let id = data.lookup(field);
                    if id.is_none() {
                        let help =
                            unknown_name_help(field, "field", data.fields().iter().map(|f| f.name.as_str()));
                        self.push(
                            Diagnostic::new(
                                Code::UnknownField,
                                self.locate.value(&format!("{at}/field")),
                                format!("field `{field}` is not declared in `dataSchema`"),
                            )
                            .with_label("cannot set an undeclared field")
                            .with_help_opt(help),
                        );
                    }
                    id
                });
                if let (Some(field), Some(value)) = (field, &spec.value) {
                    let declared = &data.field(field).ty;
                    if !value.is_null() && !json_fits(value, declared) {
                        self.push(
                            Diagnostic::new(
                                Code::InvalidValue,
                                self.locate.value(&format!("{at}/value")),
                                format!("{value} is not a {}", declared.name()),
                            )
                            .with_label(format!(
                                "`{}` is declared as {}",
                                data.field(field).name,
                                declared.name()
                            )),
                        );
                    }
                }
                ir::ActionKind::SetField {
                    field: field.unwrap_or(ir::FieldId(u32::MAX)),
                    value: spec.value.as_ref().map(lower_literal).unwrap_or(ir::Value::Null),
                }
            }
            T::Assign => {
                require(self, "to", !spec.to.is_empty());
                ir::ActionKind::Assign { to: spec.to.clone() }
            }
            T::Notify => ir::ActionKind::Notify { to: spec.to.clone(), message: spec.message.clone() },
            T::Custom => {
                require(self, "plugin", spec.plugin.is_some());
                ir::ActionKind::Custom {
                    plugin: spec.plugin.clone().unwrap_or_default(),
                    config: spec.config.clone(),
                }
            }
        }
    }

    /// Keys valid for some action type but not this one are errors: they would be silently ignored.
    fn inapplicable_action_keys(&mut self, name: &str, spec: &model::ActionSpec) {
        use model::ActionType as T;
        let present: [(&str, bool, &[T]); 9] = [
            ("template", spec.template.is_some(), &[T::Email]),
            ("to", !spec.to.is_empty(), &[T::Email, T::Notify, T::Assign]),
            ("url", spec.url.is_some(), &[T::Webhook, T::Slack]),
            ("channel", spec.channel.is_some(), &[T::Slack]),
            ("message", spec.message.is_some(), &[T::Slack, T::Notify]),
            ("entity", spec.entity.is_some(), &[T::CreateEntity]),
            ("field", spec.field.is_some(), &[T::SetField]),
            ("value", spec.value.is_some(), &[T::SetField]),
            ("plugin", spec.plugin.is_some(), &[T::Custom]),
        ];
        for (key, is_present, types) in present {
            if is_present && !types.contains(&spec.kind) {
                let owners =
                    types.iter().map(|t| format!("`{}`", type_name(*t))).collect::<Vec<_>>().join(", ");
                self.push(
                    Diagnostic::new(
                        Code::UnknownKey,
                        self.locate.key(&ptr!["actions", name, key]),
                        format!("key `{key}` does not apply to `{}` actions", type_name(spec.kind)),
                    )
                    .with_label("would be ignored")
                    .with_help(format!("`{key}` is for {owners} actions")),
                );
            }
        }
        if spec.config.is_some() && !matches!(spec.kind, T::Custom | T::Webhook | T::CreateEntity) {
            self.push(
                Diagnostic::new(
                    Code::UnknownKey,
                    self.locate.key(&ptr!["actions", name, "config"]),
                    format!("key `config` does not apply to `{}` actions", type_name(spec.kind)),
                )
                .with_label("would be ignored")
                .with_help("`config` is for `custom`, `webhook` and `create_entity` actions"),
            );
        }
    }

    fn integration_urls(&mut self) {
        let Some(integrations) = &self.file.integrations else { return };
        for (event, url) in &integrations.webhook {
            self.check_url(url, &ptr!["integrations", "webhook", event]);
        }
        if let Some(url) = integrations.slack.as_ref().and_then(|s| s.webhook_url.as_ref()) {
            self.check_url(url, "/integrations/slack/webhook_url");
        }
    }

    fn check_url(&mut self, url: &str, pointer: &str) {
        let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
        let has_host = url
            .split_once("://")
            .map(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'))
            .unwrap_or(false);
        if !scheme_ok || !has_host {
            self.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    self.locate.value(pointer),
                    format!("`{url}` is not an http(s) URL"),
                )
                .with_label("expected an absolute http:// or https:// URL"),
            );
        }
    }

    fn compensation_cycles(&mut self, actions: &[ir::Action]) {
        let mut reported = HashSet::new();
        for (start, action) in actions.iter().enumerate() {
            let mut seen = vec![start];
            let mut next = action.compensation;
            while let Some(id) = next {
                if id.index() == start {
                    if seen.iter().all(|i| !reported.contains(i)) {
                        reported.extend(seen.iter().copied());
                        let chain = seen
                            .iter()
                            .chain(std::iter::once(&start))
                            .map(|&i| format!("`{}`", actions[i].name))
                            .collect::<Vec<_>>()
                            .join(" → ");
                        let name = &action.name;
                        self.push(
                            Diagnostic::new(Code::CompensationCycle, self.locate.value(&ptr!["actions", name, "compensation"]),
                                format!("compensations form a cycle: {chain}"))
                                .with_label("compensating this action leads back to it")
                                .with_help("a compensation undoes its action; it should not need compensating by the action it undoes"),
                        );
                    }
                    break;
                }
                if seen.contains(&id.index()) || seen.len() > actions.len() {
                    break;
                }
                seen.push(id.index());
                next = actions.get(id.index()).and_then(|a| a.compensation);
            }
        }
    }

    fn unused_actions(
        &mut self,
        transitions: &LoweredTransitions,
        gateways: &[ir::Gateway],
        entities: &[ir::Entity],
        actions: &[ir::Action],
    ) {
        let mut used: HashSet<ActionId> = HashSet::new();
        for t in &transitions.transitions {
            used.extend(&t.actions);
        }
        for g in gateways {
            used.extend(&g.actions);
            used.extend(g.branches.iter().filter_map(|b| b.action));
        }
        let slas = entities.iter().filter_map(|e| e.sla.as_ref());
        for sla in slas {
            used.extend(&sla.breach_actions);
        }
        for e in entities {
            used.extend(e.escalations.iter().map(|x| x.action));
            used.extend(e.reminders.iter().map(|x| x.action));
        }
        used.extend(actions.iter().filter_map(|a| a.compensation));
        // Stage SLAs and the top-level SLA may name actions too; count every breach action written.
        let mut named: Vec<&str> = Vec::new();
        if let Some(sla) = &self.file.sla {
            named.extend(sla.breach_actions.iter().map(String::as_str));
        }
        for entity in self.file.entities.values() {
            for stage in &entity.stages {
                if let model::StageSpec::Detailed(d) = stage
                    && let Some(sla) = &d.sla
                {
                    named.extend(sla.breach_actions.iter().map(String::as_str));
                }
            }
        }
        for (i, action) in actions.iter().enumerate() {
            if !used.contains(&ActionId(i as u32)) && !named.contains(&action.name.as_str()) {
                self.push(
                    Diagnostic::new(
                        Code::UnusedAction,
                        self.locate.key(&ptr!["actions", &action.name]),
                        format!("action `{}` is never used", action.name),
                    )
                    .with_label("declared here, referenced nowhere")
                    .with_help(
                        "reference it from a transition, gateway, SLA, escalation or reminder, or remove it",
                    ),
                );
            }
        }
    }

    // ---- transitions and gateways -----------------------------------------------------------

    fn entity_ref(&mut self, name: &str, pointer: &str, names: &Names<'_>) -> Option<EntityId> {
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
    fn stage_in_entity(
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

    /// Works out which entity a transition or gateway belongs to.
    fn resolve_entity(
        &mut self,
        endpoints: &Endpoints<'_>,
        names: &Names<'_>,
        what: &str,
    ) -> Option<EntityId> {
        if let Some(entity) = endpoints.entity {
            return self.entity_ref(entity, &format!("{}/entity", endpoints.pointer), names);
        }
        let known: Vec<&(&str, String)> =
            endpoints.stages.iter().filter(|(name, _)| !names.stages.entities_of(name).is_empty()).collect();
        // Unknown stage names are reported against the resolved entity later.
        let mut candidates: Option<Vec<EntityId>> = None;
        for (name, _) in &known {
            let owners = names.stages.entities_of(name);
            candidates = Some(match candidates {
                None => owners,
                Some(c) => c.into_iter().filter(|e| owners.contains(e)).collect(),
            });
        }
        let Some(candidates) = candidates else {
            if self.some_entity_pruned() {
                return None;
            }
            // No stage is known anywhere: report each as unknown against all stages.
            for (name, pointer) in &endpoints.stages {
                let all: Vec<&str> = names.stages.by_name.keys().map(String::as_str).collect();
                let help = unknown_name_help(name, "stage", all.iter().copied());
                self.push(
                    Diagnostic::new(
                        Code::UnknownStage,
                        self.locate.value(pointer),
                        format!("unknown stage `{name}`"),
                    )
                    .with_label("no entity declares this stage")
                    .with_help_opt(help),
                );
            }
            return None;
        };
        match candidates.as_slice() {
            [one] => Some(*one),
            [] => {
                // The stages exist but in different entities: report the ones outside the entity
                // of the target (or of the first stage).
                let anchor = endpoints.stages.last().map(|(n, _)| *n).unwrap_or_default();
                let anchor_entity = names.stages.entities_of(anchor).first().copied();
                if let Some(entity) = anchor_entity {
                    for (name, pointer) in &endpoints.stages {
                        self.stage_in_entity(name, entity, names, || pointer.clone(), "stage");
                    }
                }
                None
            }
            many => {
                let list = many
                    .iter()
                    .filter_map(|e| names.entities.get_index(e.index()).map(|(n, _)| format!("`{n}`")))
                    .collect::<Vec<_>>()
                    .join(" and ");
                self.push(
                    Diagnostic::new(
                        Code::AmbiguousEntity,
                        self.locate.key(&endpoints.pointer),
                        format!("{what}'s stages exist in several entities: {list}"),
                    )
                    .with_label("cannot tell which entity this belongs to")
                    .with_help("add `\"entity\": \"…\"` to say which"),
                );
                None
            }
        }
    }

    fn resolve_from(
        &mut self,
        from: &StageRefs,
        entity: EntityId,
        names: &Names<'_>,
        pointer: &dyn Fn() -> String,
    ) -> (Vec<StageId>, bool) {
        match from {
            StageRefs::One(star) if star == "*" => (Vec::new(), true),
            StageRefs::One(name) => {
                (self.stage_in_entity(name, entity, names, pointer, "stage").into_iter().collect(), false)
            }
            StageRefs::Many(list) if list.is_empty() => {
                self.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        self.locate.value(&pointer()),
                        "`from` lists no stage",
                    )
                    .with_label("empty list")
                    .with_help("name the stage(s) this leaves from, or `\"*\"` for every non-terminal stage"),
                );
                (Vec::new(), false)
            }
            StageRefs::Many(list) => {
                let mut ids = Vec::new();
                for (i, name) in list.iter().enumerate() {
                    let at = || format!("{}/{i}", pointer());
                    if let Some(id) = self.stage_in_entity(name, entity, names, at, "stage") {
                        if ids.contains(&id) {
                            self.push(
                                Diagnostic::new(
                                    Code::DuplicateName,
                                    self.locate.value(&at()),
                                    format!("stage `{name}` is listed twice"),
                                )
                                .with_label("listed again here"),
                            );
                        } else {
                            ids.push(id);
                        }
                    }
                }
                (ids, false)
            }
        }
    }

    /// Compiles a condition; `pointer` (to the string) is only built when there is a finding.
    fn condition(
        &mut self,
        source: &str,
        pointer: impl FnOnce() -> String,
        data: &DataSchema,
        stages: &[String],
    ) -> Option<ir::Condition> {
        let env = ExprEnv { schema: data, stages };
        let compiled = expr_check::compile_condition(source, &env);
        let pointer = if compiled.diagnostics.is_empty() { String::new() } else { pointer() };
        for mut diagnostic in compiled.diagnostics {
            diagnostic.primary.span = self.locate.in_string(&pointer, diagnostic.primary.span);
            for label in &mut diagnostic.secondary {
                label.span = self.locate.in_string(&pointer, label.span);
            }
            self.push(diagnostic);
        }
        compiled.expr.map(|expr| ir::Condition { source: source.to_owned(), expr })
    }

    fn guards(
        &mut self,
        guards: &[model::GuardSpec],
        at: &str,
        data: &DataSchema,
        stages: &[String],
    ) -> Vec<ir::Guard> {
        let mut lowered = Vec::new();
        for (i, guard) in guards.iter().enumerate() {
            let pointer = format!("{at}/guards/{i}");
            let guard = match guard {
                model::GuardSpec::Expression { expression, message } => self
                    .condition(expression, || format!("{pointer}/expression"), data, stages)
                    .map(|condition| ir::Guard::Expression { condition, message: message.clone() }),
                model::GuardSpec::RoleCheck { role, message } => {
                    self.non_empty(role, &format!("{pointer}/role"), "role");
                    Some(ir::Guard::Role { role: role.clone(), message: message.clone() })
                }
                model::GuardSpec::PermissionCheck { permission, message } => {
                    self.non_empty(permission, &format!("{pointer}/permission"), "permission");
                    Some(ir::Guard::Permission { permission: permission.clone(), message: message.clone() })
                }
                model::GuardSpec::Custom { name, config, message } => {
                    self.non_empty(name, &format!("{pointer}/name"), "evaluator name");
                    Some(ir::Guard::Custom {
                        name: name.clone(),
                        config: config.clone(),
                        message: message.clone(),
                    })
                }
            };
            lowered.extend(guard);
        }
        lowered
    }

    fn non_empty(&mut self, value: &str, pointer: &str, what: &str) {
        if value.trim().is_empty() {
            self.push(
                Diagnostic::new(Code::InvalidValue, self.locate.value(pointer), format!("empty {what}"))
                    .with_label(format!("expected a {what}")),
            );
        }
    }

    fn action_list(&mut self, actions: &[String], at: &str, names: &Names<'_>) -> Vec<ActionId> {
        actions
            .iter()
            .enumerate()
            // A declared action, the common case, needs no pointer.
            .filter_map(|(i, name)| match names.actions.get(name.as_str()) {
                Some(&id) => Some(id),
                None => self.action_ref(name, &format!("{at}/actions/{i}"), names),
            })
            .collect()
    }

    fn transitions(&mut self, names: &Names<'_>, data: &DataSchema) -> LoweredTransitions {
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

    fn approval(&mut self, spec: &model::ApprovalSpec, at: &str) -> Option<ir::Approval> {
        use model::StrategyName as S;
        if spec.users.is_empty() && spec.roles.is_empty() {
            self.push(
                Diagnostic::new(Code::InvalidApproval, self.locate.key(at), "approval has nobody to approve")
                    .with_label("no `users` and no `roles`")
                    .with_help("list the approvers in `users` or `roles`"),
            );
            return None;
        }
        let mut users_seen = HashSet::new();
        for (i, user) in spec.users.iter().enumerate() {
            if !users_seen.insert(user) {
                self.push(
                    Diagnostic::new(
                        Code::DuplicateName,
                        self.locate.value(&format!("{at}/users/{i}")),
                        format!("approver `{user}` is listed twice"),
                    )
                    .with_label("listed again here")
                    .with_help("each approver counts once"),
                );
            }
        }
        if spec.quorum.is_some() && spec.strategy != S::Quorum {
            self.push(
                Diagnostic::new(
                    Code::InvalidApproval,
                    self.locate.key(&format!("{at}/quorum")),
                    "`quorum` is set but the strategy is not `quorum`",
                )
                .with_label("ignored by this strategy")
                .with_secondary(self.locate.value(&format!("{at}/strategy")), "strategy chosen here")
                .with_help("use `\"strategy\": \"quorum\"`, or remove `quorum`"),
            );
        }
        if spec.custom.is_some() && spec.strategy != S::Custom {
            self.push(
                Diagnostic::new(
                    Code::InvalidApproval,
                    self.locate.key(&format!("{at}/custom")),
                    "`custom` is set but the strategy is not `custom`",
                )
                .with_label("ignored by this strategy")
                .with_help("use `\"strategy\": \"custom\"`, or remove `custom`"),
            );
        }
        let strategy = match spec.strategy {
            S::Unison => ir::ApprovalStrategy::Unison,
            S::Majority => ir::ApprovalStrategy::Majority,
            S::First => ir::ApprovalStrategy::First,
            S::Quorum => {
                let Some(quorum) = spec.quorum else {
                    if self.pruned_at(&format!("{at}/quorum")) {
                        return None;
                    }
                    self.push(
                        Diagnostic::new(
                            Code::InvalidApproval,
                            self.locate.value(&format!("{at}/strategy")),
                            "the quorum strategy needs `quorum`",
                        )
                        .with_label("how many approvals are needed?")
                        .with_help("add `\"quorum\": N`"),
                    );
                    return None;
                };
                if quorum == 0 {
                    self.push(
                        Diagnostic::new(
                            Code::InvalidApproval,
                            self.locate.value(&format!("{at}/quorum")),
                            "a quorum of 0 approves without anyone approving",
                        )
                        .with_label("must be at least 1"),
                    );
                } else if spec.roles.is_empty() && quorum as usize > users_seen.len() {
                    self.push(
                        Diagnostic::new(
                            Code::QuorumTooLarge,
                            self.locate.value(&format!("{at}/quorum")),
                            format!("quorum of {quorum} can never be met by {} approvers", users_seen.len()),
                        )
                        .with_label(format!("needs {quorum} approvals"))
                        .with_secondary(
                            self.locate.value(&format!("{at}/users")),
                            format!("only {} approvers", users_seen.len()),
                        )
                        .with_help("lower the quorum, add approvers, or add a role"),
                    );
                }
                ir::ApprovalStrategy::Quorum(quorum)
            }
            S::Custom => match &spec.custom {
                Some(name) => ir::ApprovalStrategy::Custom(name.clone()),
                None if self.pruned_at(&format!("{at}/custom")) => return None,
                None => {
                    self.push(
                        Diagnostic::new(
                            Code::InvalidApproval,
                            self.locate.value(&format!("{at}/strategy")),
                            "the custom strategy needs `custom`",
                        )
                        .with_label("which registered strategy?")
                        .with_help("add `\"custom\": \"NAME\"` naming a strategy registered with the engine"),
                    );
                    return None;
                }
            },
        };
        Some(ir::Approval { users: spec.users.clone(), roles: spec.roles.clone(), strategy })
    }

    fn gateways(&mut self, names: &Names<'_>, data: &DataSchema) -> Vec<ir::Gateway> {
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
    fn check_duplicate_firing_names(&mut self) {
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

    // ---- delegation -------------------------------------------------------------------------

    fn delegation(&mut self, names: &Names<'_>) -> ir::DelegationPolicy {
        let Some(spec) = &self.file.delegation else { return ir::DelegationPolicy::default() };
        let max_depth = spec.max_depth.unwrap_or(ir::MAX_DELEGATION_DEPTH);
        if max_depth > ir::MAX_DELEGATION_DEPTH {
            self.push(
                Diagnostic::new(
                    Code::DelegationTooDeep,
                    self.locate.value("/delegation/max_depth"),
                    format!(
                        "delegation depth {max_depth} exceeds the maximum of {}",
                        ir::MAX_DELEGATION_DEPTH
                    ),
                )
                .with_label(format!("at most {}", ir::MAX_DELEGATION_DEPTH))
                .with_help("chains longer than 3 hide who is responsible (seed BR-005)"),
            );
        }
        let mut rules = Vec::new();
        for (i, rule) in spec.rules.iter().enumerate() {
            let at = ptr!["delegation", "rules", i];
            let start = rule.start.as_ref().and_then(|d| self.date(d, &format!("{at}/start")));
            let end = rule.end.as_ref().and_then(|d| self.date(d, &format!("{at}/end")));
            if let (Some(s), Some(e)) = (start, end)
                && e < s
            {
                self.push(
                    Diagnostic::new(
                        Code::InvalidDateRange,
                        self.locate.value(&format!("{at}/end")),
                        format!("delegation ends ({e}) before it starts ({s})"),
                    )
                    .with_label("end before start")
                    .with_secondary(self.locate.value(&format!("{at}/start")), "starts here"),
                );
            }
            if rule.from == rule.to {
                self.push(
                    Diagnostic::new(
                        Code::DelegationCycle,
                        self.locate.value(&format!("{at}/to")),
                        format!("`{}` delegates to themselves", rule.from),
                    )
                    .with_label("delegating to oneself")
                    .with_secondary(self.locate.value(&format!("{at}/from")), "delegator"),
                );
            }
            let entities = rule
                .entities
                .iter()
                .enumerate()
                .filter_map(|(j, e)| self.entity_ref(e, &format!("{at}/entities/{j}"), names))
                .collect();
            rules.push(ir::DelegationRule {
                from: rule.from.clone(),
                to: rule.to.clone(),
                start,
                end,
                entities,
            });
        }
        // A zero depth is refused by the schema already; chains are then checked against the default.
        let effective_depth =
            if max_depth == 0 { ir::MAX_DELEGATION_DEPTH } else { max_depth.min(ir::MAX_DELEGATION_DEPTH) };
        self.delegation_chains(&rules, effective_depth);
        ir::DelegationPolicy { max_depth: effective_depth, rules }
    }

    fn date(&mut self, text: &str, pointer: &str) -> Option<chrono::NaiveDate> {
        match parse_date(text) {
            Ok(date) => Some(date),
            Err(error) => {
                self.push(
                    Diagnostic::new(
                        Code::InvalidDateRange,
                        self.locate.in_string(pointer, error.span()),
                        format!("invalid date `{text}`"),
                    )
                    .with_label(error.to_string())
                    .with_help("write dates as YYYY-MM-DD, e.g. \"2026-12-24\""),
                );
                None
            }
        }
    }

    /// Follows delegation rules whose date ranges overlap along the way; reports chains deeper
    /// than `max_depth` and cycles (other than self-delegation, reported already).
    fn delegation_chains(&mut self, rules: &[ir::DelegationRule], max_depth: u32) {
        let overlaps = |a: &ir::DelegationRule, b: &ir::DelegationRule| {
            let starts_before_end = |x: &ir::DelegationRule, y: &ir::DelegationRule| match (x.start, y.end) {
                (Some(s), Some(e)) => s <= e,
                _ => true,
            };
            let scopes_meet = a.entities.is_empty()
                || b.entities.is_empty()
                || a.entities.iter().any(|e| b.entities.contains(e));
            starts_before_end(a, b) && starts_before_end(b, a) && scopes_meet
        };
        let mut reported_cycle = false;
        let mut reported_depth = false;
        // Depth-first from every rule; paths are bounded by the number of rules.
        for start in 0..rules.len() {
            let mut stack: Vec<Vec<usize>> = vec![vec![start]];
            while let Some(path) = stack.pop() {
                let Some(&last) = path.last() else { continue };
                let depth = path.len() as u32;
                if depth > max_depth && !reported_depth {
                    reported_depth = true;
                    let chain = std::iter::once(rules[path[0]].from.as_str())
                        .chain(path.iter().map(|&i| rules[i].to.as_str()))
                        .map(|u| format!("`{u}`"))
                        .collect::<Vec<_>>()
                        .join(" → ");
                    self.push(
                        Diagnostic::new(
                            Code::DelegationTooDeep,
                            self.locate.value(&ptr!["delegation", "rules", last]),
                            format!(
                                "delegation chain {chain} is {depth} levels deep; the maximum is {max_depth}"
                            ),
                        )
                        .with_label("this delegation makes the chain too deep")
                        .with_secondary(
                            self.locate.value(&ptr!["delegation", "rules", path[0]]),
                            "chain starts here",
                        )
                        .with_help("delegate directly to the final delegatee"),
                    );
                }
                if depth > max_depth + 1 {
                    continue;
                }
                for next in 0..rules.len() {
                    if rules[next].from != rules[last].to || rules[next].from == rules[next].to {
                        continue;
                    }
                    if !path.iter().all(|&p| overlaps(&rules[p], &rules[next])) {
                        continue;
                    }
                    if rules[next].to == rules[path[0]].from || path.contains(&next) {
                        if !reported_cycle {
                            reported_cycle = true;
                            let chain = std::iter::once(rules[path[0]].from.as_str())
                                .chain(
                                    path.iter().chain(std::iter::once(&next)).map(|&i| rules[i].to.as_str()),
                                )
                                .map(|u| format!("`{u}`"))
                                .collect::<Vec<_>>()
                                .join(" → ");
                            self.push(
                                Diagnostic::new(
                                    Code::DelegationCycle,
                                    self.locate.value(&ptr!["delegation", "rules", next]),
                                    format!("delegations form a cycle: {chain}"),
                                )
                                .with_label("this delegation closes the cycle")
                                .with_secondary(
                                    self.locate.value(&ptr!["delegation", "rules", path[0]]),
                                    "cycle starts here",
                                )
                                .with_help("work would be routed in circles; remove one delegation"),
                            );
                        }
                        continue;
                    }
                    let mut longer = path.clone();
                    longer.push(next);
                    stack.push(longer);
                }
            }
        }
    }
}

fn integrations(file: &DefinitionFile) -> ir::Integrations {
    let Some(spec) = &file.integrations else { return ir::Integrations::default() };
    let email = spec.email.clone().unwrap_or_default();
    let slack = spec.slack.clone().unwrap_or_default();
    ir::Integrations {
        email_provider: email.provider,
        email_from: email.from,
        email_templates: email.templates.into_iter().collect(),
        webhooks: spec.webhook.clone().into_iter().collect(),
        slack_channel: slack.channel,
        slack_webhook_url: slack.webhook_url,
    }
}

fn endpoint_stages<'s>(from: &'s StageRefs, at: &str) -> Vec<(&'s str, String)> {
    match from {
        StageRefs::One(star) if star == "*" => Vec::new(),
        StageRefs::One(name) => vec![(name.as_str(), format!("{at}/from"))],
        StageRefs::Many(list) => {
            list.iter().enumerate().map(|(i, n)| (n.as_str(), format!("{at}/from/{i}"))).collect()
        }
    }
}

fn stage_pointer(entity: &str, index: usize, stage: &model::StageSpec) -> String {
    match stage {
        model::StageSpec::Name(_) => ptr!["entities", entity, "stages", index],
        model::StageSpec::Detailed(_) => ptr!["entities", entity, "stages", index, "name"],
    }
}

fn trigger(trigger: Option<model::Trigger>, has_condition: bool) -> ir::Trigger {
    match trigger {
        Some(model::Trigger::Manual) => ir::Trigger::Manual,
        Some(model::Trigger::Auto) => ir::Trigger::Auto,
        None if has_condition => ir::Trigger::Auto,
        None => ir::Trigger::Manual,
    }
}

fn field_type(ty: model::FieldTypeName, items: Option<model::FieldTypeName>) -> FieldType {
    use model::FieldTypeName as N;
    match ty {
        N::String => FieldType::String,
        N::Number => FieldType::Number,
        N::Integer => FieldType::Integer,
        N::Boolean => FieldType::Boolean,
        N::Date => FieldType::Date,
        N::Datetime => FieldType::DateTime,
        N::Array => FieldType::Array(items.map(|item| Box::new(field_type(item, None)))),
        N::Object => FieldType::Object,
    }
}

/// Whether a JSON literal is a value of the declared type.
fn json_fits(value: &serde_json::Value, ty: &FieldType) -> bool {
    use serde_json::Value as J;
    match (ty, value) {
        (FieldType::String, J::String(_)) => true,
        (FieldType::Number, J::Number(_)) => true,
        (FieldType::Integer, J::Number(n)) => n.is_i64() || n.is_u64(),
        (FieldType::Boolean, J::Bool(_)) => true,
        (FieldType::Date, J::String(s)) => parse_date(s).is_ok(),
        (FieldType::DateTime, J::String(s)) => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
        (FieldType::Array(None), J::Array(_)) => true,
        (FieldType::Array(Some(item)), J::Array(items)) => items.iter().all(|v| json_fits(v, item)),
        (FieldType::Object, J::Object(_)) => true,
        _ => false,
    }
}

fn type_name(kind: model::ActionType) -> &'static str {
    use model::ActionType as T;
    match kind {
        T::Email => "email",
        T::Webhook => "webhook",
        T::Slack => "slack",
        T::CreateEntity => "create_entity",
        T::SetField => "set_field",
        T::Assign => "assign",
        T::Notify => "notify",
        T::Custom => "custom",
    }
}

fn placeholder_sla() -> ir::Sla {
    ir::Sla { duration: Duration::ZERO, at_risk: None, breach_actions: Vec::new() }
}

fn first_line(text: &str) -> String {
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(text).trim().to_owned()
}

/// `Duration` in the definition language's words, e.g. `2 days`, `1 day 12 hours`.
pub(crate) fn format_duration(duration: Duration) -> String {
    crate::syntax::duration::Duration::from_seconds(duration.as_secs()).to_string()
}
