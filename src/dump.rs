//! The IR rendered for people ([`to_text`]) and machines ([`to_json`]): what `crm inspect` prints.
//!
//! It sits at the boundary beside [`crate::report`], so `ir` stays free of serde and of the syntax layer.
//!
//! Both are deterministic and complete: every table and every field of a [`Definition`] appears,
//! in table order, so IR snapshot tests catch any change the compiler makes. The IR is not
//! `Serialize` (serialization stays at the boundaries); the JSON is built here, explicitly.
//! Conditions appear as their source text; durations in the definition language's words.

use std::fmt::Write;
use std::time::Duration;

use serde_json::{Map, Value as Json, json};

use crate::engine::data::value_to_json;
use crate::ir::{
    Action, ActionId, ActionKind, Approval, ApprovalStrategy, AssignmentStrategy, Branch, BranchCompletion,
    Condition, DataSchema, Definition, DelegationPolicy, Entity, Escalation, FieldType, Gateway, GatewayKind,
    Guard, Integrations, Reminder, ReminderTarget, Sla, Stage, StageId, Transition, Trigger,
};
use crate::syntax::duration::in_words;

/// A stable, indented, human-readable dump of the whole definition.
pub fn to_text(def: &Definition) -> String {
    let mut out = Text { def, out: String::new() };
    out.definition();
    out.out
}

/// The whole definition as JSON: one array per IR table; references by name, stages as `entity.stage`.
pub fn to_json(def: &Definition) -> Json {
    let d = Names { def };
    json!({
        "id": def.id,
        "label": def.label,
        "version": def.version,
        "data": data_json(&def.data),
        "entities": def.entities.iter().enumerate().map(|(i, e)| d.entity_json(i, e)).collect::<Vec<_>>(),
        "stages": def.stages.iter().enumerate().map(|(i, s)| d.stage_json(i, s)).collect::<Vec<_>>(),
        "transitions": def.transitions.iter().enumerate().map(|(i, t)| d.transition_json(i, t)).collect::<Vec<_>>(),
        "gateways": def.gateways.iter().enumerate().map(|(i, g)| d.gateway_json(i, g)).collect::<Vec<_>>(),
        "actions": def.actions.iter().enumerate().map(|(i, a)| d.action_json(i, a)).collect::<Vec<_>>(),
        "delegation": d.delegation_json(&def.delegation),
        "integrations": integrations_json(&def.integrations),
    })
}

/// A string as a JSON literal: quoted and escaped, so any label prints on one line.
fn quoted(text: &str) -> String {
    Json::from(text).to_string()
}

fn trigger_name(trigger: Trigger) -> &'static str {
    match trigger {
        Trigger::Manual => "manual",
        Trigger::Auto => "auto",
    }
}

fn gateway_kind_name(kind: GatewayKind) -> &'static str {
    match kind {
        GatewayKind::Parallel => "parallel",
        GatewayKind::Inclusive => "inclusive",
    }
}

fn reminder_target_name(target: ReminderTarget) -> &'static str {
    match target {
        ReminderTarget::SlaBreach => "sla_breach",
        ReminderTarget::SlaAtRisk => "sla_at_risk",
    }
}

fn assignment_strategy_name(strategy: AssignmentStrategy) -> &'static str {
    match strategy {
        AssignmentStrategy::Manual => "manual",
        AssignmentStrategy::RoundRobin => "round_robin",
        AssignmentStrategy::LeastLoaded => "least_loaded",
    }
}

fn completion_name(completion: BranchCompletion) -> &'static str {
    match completion {
        BranchCompletion::ReachesJoin => "reaches_join",
        BranchCompletion::ActionSucceeds => "action_succeeds",
        BranchCompletion::UserCompletes => "user_completes",
    }
}

fn type_text(ty: &FieldType) -> String {
    match ty {
        FieldType::Array(Some(item)) => format!("array of {}", type_text(item)),
        other => other.name().to_owned(),
    }
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

/// The text dump: one writer over the output, reading names through the definition.
struct Text<'a> {
    def: &'a Definition,
    out: String,
}

impl Text<'_> {
    // `write!` into a `String` cannot fail, hence the ignored results below.
    fn line(&mut self, indent: usize, text: impl AsRef<str>) {
        let _ = writeln!(self.out, "{:indent$}{}", "", text.as_ref(), indent = indent * 2);
    }

    fn stage(&self, id: StageId) -> String {
        Names { def: self.def }.stage(id)
    }

    fn actions(&self, ids: &[ActionId]) -> String {
        ids.iter().map(|&a| self.def.action(a).name.as_str()).collect::<Vec<_>>().join(", ")
    }

    fn definition(&mut self) {
        let def = self.def;
        self.line(0, format!("definition {}", def.id));
        if let Some(label) = &def.label {
            self.line(1, format!("label {}", quoted(label)));
        }
        if let Some(version) = &def.version {
            self.line(1, format!("version {}", quoted(version)));
        }
        if !def.data.is_empty() {
            self.line(0, "");
            self.data(&def.data);
        }
        for (i, entity) in def.entities.iter().enumerate() {
            self.line(0, "");
            self.entity(i, entity);
        }
        if !def.transitions.is_empty() {
            self.line(0, "");
            self.line(0, "transitions");
            def.transitions.iter().enumerate().for_each(|(i, t)| self.transition(i, t));
        }
        if !def.gateways.is_empty() {
            self.line(0, "");
            self.line(0, "gateways");
            def.gateways.iter().enumerate().for_each(|(i, g)| self.gateway(i, g));
        }
        if !def.actions.is_empty() {
            self.line(0, "");
            self.line(0, "actions");
            def.actions.iter().enumerate().for_each(|(i, a)| self.action(i, a));
        }
        self.line(0, "");
        self.delegation(&def.delegation);
        self.integrations(&def.integrations);
    }

    fn data(&mut self, data: &DataSchema) {
        self.line(0, "data");
        for (id, field) in data.iter() {
            let mut text = format!("#{} {}: {}", id.0, field.name, type_text(&field.ty));
            if field.required {
                text.push_str(" required");
            }
            if let Some(min) = field.min {
                let _ = write!(text, " min {min}");
            }
            if let Some(max) = field.max {
                let _ = write!(text, " max {max}");
            }
            if !field.allowed.is_empty() {
                let allowed: Vec<String> =
                    field.allowed.iter().map(|v| value_to_json(v).to_string()).collect();
                let _ = write!(text, " enum {}", list(&allowed));
            }
            if let Some(pattern) = &field.pattern {
                let _ = write!(text, " pattern {}", quoted(pattern));
            }
            if let Some(label) = &field.label {
                let _ = write!(text, " label {}", quoted(label));
            }
            self.line(1, text);
        }
    }

    fn entity(&mut self, index: usize, entity: &Entity) {
        let mut head = format!("entity #{index} {}", entity.name);
        if let Some(label) = &entity.label {
            let _ = write!(head, " {}", quoted(label));
        }
        self.line(0, head);
        for &id in &entity.stages {
            let stage = self.def.stage(id);
            self.stage_block(id, stage, id == entity.initial);
        }
        if let Some(sla) = &entity.sla {
            let text = self.sla(sla);
            self.line(1, text);
        }
        for escalation in &entity.escalations {
            let text = self.escalation(escalation);
            self.line(1, text);
        }
        for reminder in &entity.reminders {
            let text = self.reminder(reminder);
            self.line(1, text);
        }
        let assignment = &entity.assignment;
        let mut text = format!("assignment {}", assignment_strategy_name(assignment.strategy));
        if !assignment.users.is_empty() {
            let _ = write!(text, " users {}", list(&assignment.users));
        }
        if !assignment.roles.is_empty() {
            let _ = write!(text, " roles {}", list(&assignment.roles));
        }
        text.push_str(if assignment.allow_self_assignment {
            ", self-assignment allowed"
        } else {
            ", no self-assignment"
        });
        self.line(1, text);
        if !entity.fields.is_empty() {
            self.line(1, format!("fields {}", list(&entity.fields)));
        }
        if let Some(number) = &entity.number {
            self.line(1, format!("number {}", number.source));
        }
    }

    fn stage_block(&mut self, id: StageId, stage: &Stage, initial: bool) {
        let mut head = format!("stage #{} {}", id.0, stage.name);
        if let Some(label) = &stage.label {
            let _ = write!(head, " {}", quoted(label));
        }
        if initial {
            head.push_str(" [initial]");
        }
        if stage.terminal {
            head.push_str(" [terminal]");
        }
        self.line(1, head);
        if let Some(sla) = &stage.sla {
            let text = self.sla(sla);
            self.line(2, text);
        }
        if !stage.outgoing.is_empty() {
            let names: Vec<&str> =
                stage.outgoing.iter().map(|&t| self.def.transition(t).name.as_str()).collect();
            self.line(2, format!("exits {}", names.join(", ")));
        }
        if !stage.forks.is_empty() {
            let names: Vec<&str> = stage.forks.iter().map(|&g| self.def.gateway(g).name.as_str()).collect();
            self.line(2, format!("forks {}", names.join(", ")));
        }
    }

    fn sla(&self, sla: &Sla) -> String {
        let mut text = match &sla.by {
            None => format!("sla {}", in_words(sla.duration)),
            Some(by) => {
                let cases = by
                    .cases
                    .iter()
                    .map(|(value, d)| (value.as_str(), *d))
                    .chain(by.default.map(|d| ("default", d)))
                    .map(|(value, d)| format!("{value} {}", in_words(d)))
                    .collect::<Vec<_>>();
                format!("sla by data.{}: {}", self.def.data.field(by.field).name, cases.join(", "))
            }
        };
        // A share is shown as such only where it follows a duration chosen from data.
        match (sla.at_risk_share.filter(|_| sla.by.is_some()), sla.at_risk) {
            (Some(share), _) => {
                let _ = write!(text, ", at risk at {}%", share * 100.0);
            }
            (None, Some(at_risk)) => {
                let _ = write!(text, ", at risk after {}", in_words(at_risk));
            }
            (None, None) => {}
        }
        if !sla.breach_actions.is_empty() {
            let _ = write!(text, ", on breach: {}", self.actions(&sla.breach_actions));
        }
        if let Some(calendar) = &sla.calendar {
            let _ = write!(text, ", working time of calendar {}", calendar.name);
        }
        text
    }

    fn escalation(&self, escalation: &Escalation) -> String {
        let mut text = format!("escalation level {} after {}", escalation.level, in_words(escalation.after));
        if let Some(condition) = &escalation.condition {
            let _ = write!(text, " when {}", condition.source);
        }
        let _ = write!(text, ": {}", self.def.action(escalation.action).name);
        text
    }

    fn reminder(&self, reminder: &Reminder) -> String {
        format!(
            "reminder {} before {}: {}",
            in_words(reminder.before),
            reminder_target_name(reminder.target),
            self.def.action(reminder.action).name
        )
    }

    fn guards(&mut self, guards: &[Guard]) {
        for guard in guards {
            let (text, message) = match guard {
                Guard::Expression { condition, message } => {
                    (format!("guard expression {}", condition.source), message)
                }
                Guard::Role { role, message } => (format!("guard role {role}"), message),
                Guard::Permission { permission, message } => {
                    (format!("guard permission {permission}"), message)
                }
                Guard::Custom { name, config, message } => {
                    let mut text = format!("guard custom {name}");
                    if let Some(config) = config {
                        let _ = write!(text, " config {config}");
                    }
                    (text, message)
                }
            };
            match message {
                Some(message) => self.line(2, format!("{text} message {}", quoted(message))),
                None => self.line(2, text),
            }
        }
    }

    fn transition(&mut self, index: usize, t: &Transition) {
        let from: Vec<String> = t.from.iter().map(|&s| self.stage(s)).collect();
        let mut head = format!("#{index} {}", t.name);
        if let Some(label) = &t.label {
            let _ = write!(head, " {}", quoted(label));
        }
        let _ = write!(head, ": {} -> {} [{}]", from.join(", "), self.stage(t.to), trigger_name(t.trigger));
        if let Some(condition) = &t.condition {
            let _ = write!(head, " when {}", condition.source);
        }
        self.line(1, head);
        self.guards(&t.guards);
        if !t.actions.is_empty() {
            let text = format!("actions {}", self.actions(&t.actions));
            self.line(2, text);
        }
        if let Some(approval) = &t.approval {
            self.line(2, approval_text(approval));
        }
    }

    fn gateway(&mut self, index: usize, g: &Gateway) {
        let from: Vec<String> = g.from.iter().map(|&s| self.stage(s)).collect();
        let mut head = format!("#{index} {}", g.name);
        if let Some(label) = &g.label {
            let _ = write!(head, " {}", quoted(label));
        }
        let _ = write!(
            head,
            ": {} {} => join {} [{}]",
            gateway_kind_name(g.kind),
            from.join(", "),
            self.stage(g.join),
            trigger_name(g.trigger)
        );
        if let Some(condition) = &g.condition {
            let _ = write!(head, " when {}", condition.source);
        }
        self.line(1, head);
        self.guards(&g.guards);
        if !g.actions.is_empty() {
            let text = format!("actions {}", self.actions(&g.actions));
            self.line(2, text);
        }
        for branch in &g.branches {
            let text = self.branch(branch);
            self.line(2, text);
        }
    }

    fn branch(&self, branch: &Branch) -> String {
        let mut text = format!("branch {}", branch.name);
        if let Some(label) = &branch.label {
            let _ = write!(text, " {}", quoted(label));
        }
        if let Some(condition) = &branch.condition {
            let _ = write!(text, " when {}", condition.source);
        }
        if let Some(stage) = branch.stage {
            let _ = write!(text, " stage {}", self.stage(stage));
        }
        if let Some(action) = branch.action {
            let _ = write!(text, " action {}", self.def.action(action).name);
        }
        let _ = write!(text, " ({})", completion_name(branch.completion()));
        text
    }

    fn action(&mut self, index: usize, action: &Action) {
        let mut text = format!("#{index} {}", action.name);
        if let Some(label) = &action.label {
            let _ = write!(text, " {}", quoted(label));
        }
        let _ = write!(text, ": {}", action.kind.type_name());
        let mut option = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                let _ = write!(text, " {key} {value}");
            }
        };
        let non_empty = |items: &[String]| (!items.is_empty()).then(|| list(items));
        match &action.kind {
            ActionKind::Email { template, to } => {
                option("template", template.clone());
                option("to", non_empty(to));
            }
            ActionKind::Webhook { url, config } => {
                option("url", Some(quoted(url)));
                option("config", config.as_ref().map(Json::to_string));
            }
            ActionKind::Slack { channel, url, message } => {
                option("channel", channel.as_deref().map(quoted));
                option("url", url.as_deref().map(quoted));
                option("message", message.as_deref().map(quoted));
            }
            ActionKind::CreateEntity { entity, config } => {
                option("entity", Some(self.def.entity(*entity).name.clone()));
                option("config", config.as_ref().map(Json::to_string));
            }
            ActionKind::SetField { field, value } => {
                option("field", Some(self.def.data.field(*field).name.clone()));
                option("value", Some(value_to_json(value).to_string()));
            }
            ActionKind::Assign { to } => option("to", non_empty(to)),
            ActionKind::Notify { to, message } => {
                option("to", non_empty(to));
                option("message", message.as_deref().map(quoted));
            }
            ActionKind::Custom { plugin, config } => {
                option("plugin", Some(plugin.clone()));
                option("config", config.as_ref().map(Json::to_string));
            }
        }
        let _ = write!(text, ", retries {}", action.max_retries);
        if let Some(compensation) = action.compensation {
            let _ = write!(text, ", compensation {}", self.def.action(compensation).name);
        }
        self.line(1, text);
    }

    fn delegation(&mut self, delegation: &DelegationPolicy) {
        self.line(0, format!("delegation max depth {}", delegation.max_depth));
        for rule in &delegation.rules {
            let mut text = format!("rule {} -> {}", rule.from, rule.to);
            if let Some(start) = rule.start {
                let _ = write!(text, " from {start}");
            }
            if let Some(end) = rule.end {
                let _ = write!(text, " until {end}");
            }
            if !rule.entities.is_empty() {
                let names: Vec<String> =
                    rule.entities.iter().map(|&e| self.def.entity(e).name.clone()).collect();
                let _ = write!(text, " entities {}", list(&names));
            }
            self.line(1, text);
        }
    }

    fn integrations(&mut self, integrations: &Integrations) {
        let mut lines = Vec::new();
        if let Some(provider) = &integrations.email_provider {
            lines.push(format!("email provider {}", quoted(provider)));
        }
        if let Some(from) = &integrations.email_from {
            lines.push(format!("email from {}", quoted(from)));
        }
        for (key, id) in &integrations.email_templates {
            lines.push(format!("email template {key} = {}", quoted(id)));
        }
        for (event, url) in &integrations.webhooks {
            lines.push(format!("webhook {event} = {}", quoted(url)));
        }
        if let Some(channel) = &integrations.slack_channel {
            lines.push(format!("slack channel {}", quoted(channel)));
        }
        if let Some(url) = &integrations.slack_webhook_url {
            lines.push(format!("slack webhook {}", quoted(url)));
        }
        if lines.is_empty() {
            return;
        }
        self.line(0, "");
        self.line(0, "integrations");
        for line in lines {
            self.line(1, line);
        }
    }
}

fn approval_text(approval: &Approval) -> String {
    let strategy = match &approval.strategy {
        ApprovalStrategy::Unison => "unison".to_owned(),
        ApprovalStrategy::Majority => "majority".to_owned(),
        ApprovalStrategy::Quorum(n) => format!("quorum {n}"),
        ApprovalStrategy::First => "first".to_owned(),
        ApprovalStrategy::Custom(name) => format!("custom {name}"),
    };
    let mut text = format!("approval {strategy}");
    if !approval.users.is_empty() {
        let _ = write!(text, " users {}", list(&approval.users));
    }
    if !approval.roles.is_empty() {
        let _ = write!(text, " roles {}", list(&approval.roles));
    }
    text
}

/// Name look-ups shared by both dumps.
struct Names<'a> {
    def: &'a Definition,
}

impl Names<'_> {
    /// `entity.stage`: stage names are unique only within their entity.
    fn stage(&self, id: StageId) -> String {
        let stage = self.def.stage(id);
        format!("{}.{}", self.def.entity(stage.entity).name, stage.name)
    }

    fn stages(&self, ids: &[StageId]) -> Vec<String> {
        ids.iter().map(|&s| self.stage(s)).collect()
    }

    fn action(&self, id: ActionId) -> &str {
        &self.def.action(id).name
    }

    fn actions(&self, ids: &[ActionId]) -> Vec<&str> {
        ids.iter().map(|&a| self.action(a)).collect()
    }

    fn sla_json(&self, sla: &Sla) -> Json {
        let mut json = json!({
            "duration": duration_json(sla.duration),
            "at_risk": sla.at_risk.map(duration_json),
            "breach_actions": self.actions(&sla.breach_actions),
        });
        // Only when set, so the dumps of definitions without calendars stay as they were.
        if let (Some(calendar), Json::Object(map)) = (&sla.calendar, &mut json) {
            map.insert("calendar".to_owned(), json!(calendar.name));
        }
        if let (Some(by), Json::Object(map)) = (&sla.by, &mut json) {
            let cases: serde_json::Map<String, Json> =
                by.cases.iter().map(|(value, d)| (value.clone(), duration_json(*d))).collect();
            map.insert(
                "by".to_owned(),
                json!({
                    "field": self.def.data.field(by.field).name,
                    "cases": cases,
                    "default": by.default.map(duration_json),
                }),
            );
        }
        json
    }

    fn entity_json(&self, index: usize, entity: &Entity) -> Json {
        let assignment = &entity.assignment;
        json!({
            "id": index,
            "name": entity.name,
            "label": entity.label,
            "stages": self.stages(&entity.stages),
            "initial": self.stage(entity.initial),
            "sla": entity.sla.as_ref().map(|sla| self.sla_json(sla)),
            "escalations": entity.escalations.iter().map(|e| json!({
                "after": duration_json(e.after),
                "condition": condition_json(e.condition.as_ref()),
                "action": self.action(e.action),
                "level": e.level,
            })).collect::<Vec<_>>(),
            "reminders": entity.reminders.iter().map(|r| json!({
                "before": duration_json(r.before),
                "target": reminder_target_name(r.target),
                "action": self.action(r.action),
            })).collect::<Vec<_>>(),
            "assignment": {
                "users": assignment.users,
                "roles": assignment.roles,
                "strategy": assignment_strategy_name(assignment.strategy),
                "allow_self_assignment": assignment.allow_self_assignment,
            },
            "fields": entity.fields,
        })
    }

    fn stage_json(&self, index: usize, stage: &Stage) -> Json {
        json!({
            "id": index,
            "name": stage.name,
            "label": stage.label,
            "entity": self.def.entity(stage.entity).name,
            "terminal": stage.terminal,
            "sla": stage.sla.as_ref().map(|sla| self.sla_json(sla)),
            "outgoing": stage.outgoing.iter().map(|&t| self.def.transition(t).name.as_str()).collect::<Vec<_>>(),
            "forks": stage.forks.iter().map(|&g| self.def.gateway(g).name.as_str()).collect::<Vec<_>>(),
        })
    }

    fn guards_json(&self, guards: &[Guard]) -> Vec<Json> {
        guards
            .iter()
            .map(|guard| match guard {
                Guard::Expression { condition, message } => {
                    json!({"type": "expression", "expression": condition.source, "message": message})
                }
                Guard::Role { role, message } => {
                    json!({"type": "role_check", "role": role, "message": message})
                }
                Guard::Permission { permission, message } => {
                    json!({"type": "permission_check", "permission": permission, "message": message})
                }
                Guard::Custom { name, config, message } => {
                    json!({"type": "custom", "name": name, "config": config, "message": message})
                }
            })
            .collect()
    }

    fn transition_json(&self, index: usize, t: &Transition) -> Json {
        json!({
            "id": index,
            "name": t.name,
            "label": t.label,
            "entity": self.def.entity(t.entity).name,
            "from": self.stages(&t.from),
            "to": self.stage(t.to),
            "trigger": trigger_name(t.trigger),
            "condition": condition_json(t.condition.as_ref()),
            "guards": self.guards_json(&t.guards),
            "actions": self.actions(&t.actions),
            "approval": t.approval.as_ref().map(approval_json),
        })
    }

    fn gateway_json(&self, index: usize, g: &Gateway) -> Json {
        json!({
            "id": index,
            "name": g.name,
            "label": g.label,
            "type": gateway_kind_name(g.kind),
            "entity": self.def.entity(g.entity).name,
            "from": self.stages(&g.from),
            "trigger": trigger_name(g.trigger),
            "condition": condition_json(g.condition.as_ref()),
            "guards": self.guards_json(&g.guards),
            "branches": g.branches.iter().map(|b| json!({
                "name": b.name,
                "label": b.label,
                "condition": condition_json(b.condition.as_ref()),
                "stage": b.stage.map(|s| self.stage(s)),
                "action": b.action.map(|a| self.action(a)),
                "completion": completion_name(b.completion()),
            })).collect::<Vec<_>>(),
            "join": self.stage(g.join),
            "actions": self.actions(&g.actions),
        })
    }

    fn action_json(&self, index: usize, action: &Action) -> Json {
        let mut object = Map::new();
        object.insert("id".into(), json!(index));
        object.insert("name".into(), json!(action.name));
        object.insert("label".into(), json!(action.label));
        object.insert("type".into(), json!(action.kind.type_name()));
        let settings = match &action.kind {
            ActionKind::Email { template, to } => json!({"template": template, "to": to}),
            ActionKind::Webhook { url, config } => json!({"url": url, "config": config}),
            ActionKind::Slack { channel, url, message } => {
                json!({"channel": channel, "url": url, "message": message})
            }
            ActionKind::CreateEntity { entity, config } => {
                json!({"entity": self.def.entity(*entity).name, "config": config})
            }
            ActionKind::SetField { field, value } => {
                json!({"field": self.def.data.field(*field).name, "value": value_to_json(value)})
            }
            ActionKind::Assign { to } => json!({"to": to}),
            ActionKind::Notify { to, message } => json!({"to": to, "message": message}),
            ActionKind::Custom { plugin, config } => json!({"plugin": plugin, "config": config}),
        };
        if let Json::Object(settings) = settings {
            object.extend(settings);
        }
        object.insert("compensation".into(), json!(action.compensation.map(|a| self.action(a))));
        object.insert("max_retries".into(), json!(action.max_retries));
        Json::Object(object)
    }

    fn delegation_json(&self, delegation: &DelegationPolicy) -> Json {
        json!({
            "max_depth": delegation.max_depth,
            "rules": delegation.rules.iter().map(|rule| json!({
                "from": rule.from,
                "to": rule.to,
                "start": rule.start.map(|d| d.to_string()),
                "end": rule.end.map(|d| d.to_string()),
                "entities": rule.entities.iter().map(|&e| self.def.entity(e).name.as_str()).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }
}

/// `{"seconds": 172800, "text": "2 days"}`: exact for machines, readable for people.
fn duration_json(duration: Duration) -> Json {
    json!({"seconds": duration.as_secs(), "text": in_words(duration)})
}

fn condition_json(condition: Option<&Condition>) -> Json {
    json!(condition.map(|c| c.source.as_str()))
}

fn approval_json(approval: &Approval) -> Json {
    let (strategy, quorum, custom) = match &approval.strategy {
        ApprovalStrategy::Unison => ("unison", None, None),
        ApprovalStrategy::Majority => ("majority", None, None),
        ApprovalStrategy::Quorum(n) => ("quorum", Some(*n), None),
        ApprovalStrategy::First => ("first", None, None),
        ApprovalStrategy::Custom(name) => ("custom", None, Some(name.as_str())),
    };
    json!({"users": approval.users, "roles": approval.roles, "strategy": strategy, "quorum": quorum, "custom": custom})
}

fn data_json(data: &DataSchema) -> Json {
    fn type_json(ty: &FieldType) -> Json {
        match ty {
            FieldType::Array(Some(item)) => json!({"type": "array", "items": type_json(item)}),
            other => json!({"type": other.name()}),
        }
    }
    let fields = data.iter().map(|(id, field)| {
        let mut object = Map::new();
        object.insert("id".into(), json!(id.0));
        object.insert("name".into(), json!(field.name));
        if let Json::Object(ty) = type_json(&field.ty) {
            object.extend(ty);
        }
        object.insert("required".into(), json!(field.required));
        object.insert("min".into(), json!(field.min));
        object.insert("max".into(), json!(field.max));
        object.insert("enum".into(), Json::Array(field.allowed.iter().map(value_to_json).collect()));
        object.insert("pattern".into(), json!(field.pattern));
        object.insert("label".into(), json!(field.label));
        Json::Object(object)
    });
    Json::Array(fields.collect())
}

fn integrations_json(integrations: &Integrations) -> Json {
    let pairs = |pairs: &[(String, String)]| {
        Json::Object(pairs.iter().map(|(k, v)| (k.clone(), Json::from(v.as_str()))).collect())
    };
    json!({
        "email": {
            "provider": integrations.email_provider,
            "from": integrations.email_from,
            "templates": pairs(&integrations.email_templates),
        },
        "webhooks": pairs(&integrations.webhooks),
        "slack": {
            "channel": integrations.slack_channel,
            "webhook_url": integrations.slack_webhook_url,
        },
    })
}
