//! SLAs (top-level, entity and stage), the reminders that count back from them, and durations.

use std::time::Duration;

use indexmap::IndexMap;

use crate::check::lower::Cx;
use crate::check::lower::names::Names;
use crate::diagnostic::{Code, Diagnostic, unknown_name_help};
use crate::ir::{self, DataSchema, FieldType};
use crate::syntax::duration::{in_words, parse_duration};
use crate::syntax::model;

/// What the stage SLAs of an entity offer a reminder when the entity has no SLA of its own.
#[derive(Clone, Copy, Debug)]
pub(super) struct StageSlas {
    /// Some stage declares an SLA.
    pub any: bool,
    /// Some stage SLA declares `at_risk`.
    pub any_at_risk: bool,
}

impl Cx<'_, '_> {
    pub(super) fn stage_slas(
        &mut self,
        stages: &mut [ir::Stage],
        names: &Names<'_>,
        stage_pointers: &[String],
        data: &DataSchema,
    ) {
        for (stage, pointer) in stages.iter_mut().zip(stage_pointers) {
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
            stage.sla = spec.and_then(|sla| self.sla(sla, &format!("{stage_object}/sla"), names, data));
        }
    }

    pub(super) fn check_reminder(
        &mut self,
        sla: Option<&ir::Sla>,
        stage_slas: StageSlas,
        target: ir::ReminderTarget,
        before: Option<Duration>,
        at: &str,
    ) {
        let Some(sla) = sla else {
            // Without an entity SLA a reminder counts back from the SLA of the stage the instance
            // is in; targeting the at-risk time needs a stage SLA that has one.
            if stage_slas.any && target == ir::ReminderTarget::SlaAtRisk && !stage_slas.any_at_risk {
                self.push(
                    Diagnostic::new(Code::ReminderWithoutSla, self.locate.value(&format!("{at}/target")),
                        "this reminder counts back from a stage SLA's at-risk time, but no stage SLA declares `at_risk`")
                        .with_label("no at-risk time")
                        .with_help("add `at_risk` to the stage SLAs, or target `sla_breach`"),
                );
            }
            if !stage_slas.any {
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
                        in_words(before),
                        in_words(deadline)
                    ))
                    .with_label("earlier than the clock's start")
                    .with_help("choose a `before` shorter than the SLA"),
            );
        }
    }

    pub(super) fn sla(
        &mut self,
        sla: &model::SlaSpec,
        at: &str,
        names: &Names<'_>,
        data: &DataSchema,
    ) -> Option<ir::Sla> {
        let (duration, by, shortest) = match &sla.duration {
            model::DurationSpec::Fixed(text) => {
                let duration = self.duration(text, &format!("{at}/duration"));
                (duration, None, duration)
            }
            model::DurationSpec::ByData(cases) => {
                match self.duration_by_data(cases, &format!("{at}/duration"), data) {
                    Some((by, longest, shortest)) => (Some(longest), Some(by), Some(shortest)),
                    None => (None, None, None),
                }
            }
        };
        // `None` inside: no calendar named; `None` outside: a named one that does not resolve.
        let calendar = sla.calendar.as_ref().map(|name| self.calendar_ref(name, &format!("{at}/calendar")));
        let on_calendar = calendar.clone().flatten();
        let at_risk = sla.at_risk.as_ref().and_then(|text| {
            let pointer = format!("{at}/at_risk");
            let value = match text.trim().strip_suffix('%') {
                Some(percent) => match percent.trim().parse::<f64>() {
                    // On a calendar the share is of the working time ("75%" of "2 days" is a
                    // day and a half of work).
                    Ok(p) if p > 0.0 && p < 100.0 => duration.map(|d| match &on_calendar {
                        Some(c) => c.duration_of(c.working_time(d).mul_f64(p / 100.0)),
                        None => d.mul_f64(p / 100.0),
                    }),
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
            // A fixed at-risk time must come before the shortest duration data can choose.
            if let Some(duration) = shortest
                && value >= duration
                && !text.trim().ends_with('%')
            {
                self.push(
                    Diagnostic::new(
                        Code::AtRiskNotBeforeBreach,
                        self.locate.value(&pointer),
                        format!(
                            "`at_risk` ({}) is not earlier than the breach ({})",
                            in_words(value),
                            in_words(duration)
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
        let calendar = calendar.map_or(Some(None), |resolved| resolved.map(Some))?;
        let at_risk_share = sla.at_risk.as_ref().and_then(|text| {
            let percent = text.trim().strip_suffix('%')?.trim().parse::<f64>().ok()?;
            (percent > 0.0 && percent < 100.0).then_some(percent / 100.0)
        });
        Some(ir::Sla { duration: duration?, by, at_risk, at_risk_share, breach_actions, calendar })
    }

    /// A duration chosen from data, with its longest and shortest case; every problem reported.
    fn duration_by_data(
        &mut self,
        cases: &IndexMap<String, String>,
        at: &str,
        data: &DataSchema,
    ) -> Option<(ir::DurationByData, Duration, Duration)> {
        let key = |k: &str| format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
        // Without `by` the schema (which requires it) has reported the object already.
        let by = cases.get("by")?;
        let Some(name) = by.strip_prefix("data.") else {
            self.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    self.locate.value(&key("by")),
                    format!("`{by}` is not a data path"),
                )
                .with_label("expected `data.FIELD`")
                .with_help("name a string field of `dataSchema`, e.g. \"data.priority\""),
            );
            return None;
        };
        let Some(field_id) = data.lookup(name) else {
            let help = unknown_name_help(name, "field", data.fields().iter().map(|f| f.name.as_str()));
            self.push(
                Diagnostic::new(
                    Code::UnknownField,
                    self.locate.value(&key("by")),
                    format!("field `{name}` is not declared in `dataSchema`"),
                )
                .with_label("cannot choose a duration by an undeclared field")
                .with_help_opt(help),
            );
            return None;
        };
        let field = data.field(field_id);
        if field.ty != FieldType::String {
            self.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    self.locate.value(&key("by")),
                    format!(
                        "`{by}` is declared as `{}`; durations are chosen by a string field",
                        field.ty.name()
                    ),
                )
                .with_label("not a string field")
                .with_help("choose by a `string` field, typically one with an `enum`"),
            );
            return None;
        }
        let allowed: Vec<&str> = field
            .allowed
            .iter()
            .filter_map(|v| match v {
                ir::Value::Str(s) => Some(&**s),
                _ => None,
            })
            .collect();
        let mut by_data = ir::DurationByData { field: field_id, cases: Vec::new(), default: None };
        let mut valid = true;
        for (value, text) in cases.iter().filter(|(k, _)| k.as_str() != "by") {
            let duration = self.duration(text, &key(value));
            if value != "default" && !allowed.is_empty() && !allowed.contains(&value.as_str()) {
                let help = unknown_name_help(value, "value", allowed.iter().copied());
                self.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        self.locate.key(&key(value)),
                        format!("`{value}` is not a value of `{name}`"),
                    )
                    .with_label("never chosen")
                    .with_help_opt(help.or_else(|| Some(format!("the values of `{name}` are its `enum`")))),
                );
                valid = false;
            }
            match (duration, value.as_str()) {
                (Some(d), "default") => by_data.default = Some(d),
                (Some(d), _) => by_data.cases.push((value.clone(), d)),
                (None, _) => valid = false,
            }
        }
        if by_data.default.is_none() {
            let missing: Vec<&str> = allowed.iter().copied().filter(|v| !cases.contains_key(*v)).collect();
            let reason = if allowed.is_empty() {
                Some(format!("`{name}` has no `enum`, so some values have no case"))
            } else if !missing.is_empty() {
                Some(format!(
                    "no duration for {}",
                    missing.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ")
                ))
            } else if !field.required {
                Some(format!("`{name}` is optional, and an instance without it has no case"))
            } else {
                None
            };
            if let Some(reason) = reason {
                self.push(
                    Diagnostic::new(Code::InvalidValue, self.locate.key(at), reason)
                        .with_label("some instances would have no duration")
                        .with_help("add the missing values, or `\"default\": DURATION`"),
                );
                valid = false;
            }
        }
        let all = by_data.cases.iter().map(|(_, d)| *d).chain(by_data.default);
        let (longest, shortest) = (all.clone().max()?, all.min()?);
        valid.then_some((by_data, longest, shortest))
    }

    pub(super) fn duration(&mut self, text: &str, pointer: &str) -> Option<Duration> {
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
}

pub(super) fn placeholder_sla() -> ir::Sla {
    ir::Sla {
        duration: Duration::ZERO,
        by: None,
        at_risk: None,
        at_risk_share: None,
        breach_actions: Vec::new(),
        calendar: None,
    }
}
