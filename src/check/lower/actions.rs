//! `actions`: each action type's keys, compensations and their cycles, action lists, unused actions.

use std::collections::HashSet;

use crate::check::literal::lower_literal;
use crate::check::locate::ptr;
use crate::check::lower::Cx;
use crate::check::lower::data::json_fits;
use crate::check::lower::names::Names;
use crate::check::lower::transitions::LoweredTransitions;
use crate::diagnostic::{Code, Diagnostic, unknown_name_help};
use crate::ir::{self, ActionId, DataSchema, EntityId};
use crate::syntax::model;

impl Cx<'_, '_> {
    pub(super) fn actions(&mut self, names: &Names<'_>, data: &DataSchema) -> Vec<ir::Action> {
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
                self.recipients(&spec.to, &format!("{at}/to"), data);
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
                self.recipients(&spec.to, &format!("{at}/to"), data);
                ir::ActionKind::Assign { to: spec.to.clone() }
            }
            T::Notify => {
                self.recipients(&spec.to, &format!("{at}/to"), data);
                ir::ActionKind::Notify { to: spec.to.clone(), message: spec.message.clone() }
            }
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

    pub(super) fn unused_actions(
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

    pub(super) fn action_list(&mut self, actions: &[String], at: &str, names: &Names<'_>) -> Vec<ActionId> {
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
