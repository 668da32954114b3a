//! Compatibility of a new version of a definition with the live one (`crm check --against`):
//! what `buf breaking` does for protobuf, for workflow definitions.
//!
//! [`compare`] takes the new version (compiled, with its source for spans), the live version it
//! would replace, and optionally the live instances (from [`Store::live_instances`]); it returns
//! diagnostics in the new file, each with a stable code (`CRM08xx`):
//!
//! - with instances: a stage or entity they sit in is gone (CRM0801, with a did-you-mean stage
//!   mapping), a transition with pending approvals is gone (CRM0802), their data does not
//!   validate under the new `dataSchema` (CRM0803, per field, with counts), a gateway, branch or
//!   branch stage with running tokens is gone (CRM0804), a removed field still holds values
//!   (CRM0805, a warning);
//! - without instances (comparing with a file): each removed stage is a warning (CRM0806).
//!
//! Errors are exactly the changes that would strand a live instance. Everything is by name:
//! instances of every version are judged against the new one, as a migration would move them.
//!
//! [`Store::live_instances`]: crate::store::Store::live_instances

use std::collections::BTreeMap;

use crate::check::locate::Locator;
use crate::codes::Code;
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::engine::data::Validator;
use crate::ir::Definition;
use crate::store::LiveInstance;
use crate::syntax::json;

/// Every incompatibility of `new` (compiled from `new_source`) with the live version `old`,
/// ordered by position in the new file. `live` is `None` when no database is consulted.
pub fn compare(
    old: &Definition,
    new: &Definition,
    new_source: &str,
    live: Option<&[LiveInstance]>,
) -> Vec<Diagnostic> {
    let (root, _) = json::parse(new_source);
    let ctx = Context { new, at: Locator::new(root.as_ref()) };
    let mut out = match live {
        Some(instances) => ctx.against_instances(old, instances),
        None => ctx.removed_stages(old),
    };
    out.sort_by_key(|d| (d.primary.span.start, d.code));
    out
}

/// Whether any finding would strand a live instance.
pub fn strands(diagnostics: &[Diagnostic]) -> bool {
    diagnostics.iter().any(|d| d.is_error() && d.code.as_str().starts_with("CRM08"))
}

struct Context<'a> {
    new: &'a Definition,
    at: Locator<'a>,
}

/// Counts by a key, in key order (for stable output).
type Counts<K> = BTreeMap<K, usize>;

impl Context<'_> {
    /// Structural comparison only: each stage of `old` missing from `new` (by entity and name).
    fn removed_stages(&self, old: &Definition) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for entity in &old.entities {
            for &stage in &entity.stages {
                let name = &old.stage(stage).name;
                if self.has_stage(&entity.name, name) {
                    continue;
                }
                out.push(
                    Diagnostic::new(
                        Code::StageRemoved,
                        self.stages_span(&entity.name),
                        format!("stage `{name}` of `{}` is removed", entity.name),
                    )
                    .with_label(format!("no `{name}` here"))
                    .with_help(self.mapping_help(&entity.name, name)),
                );
            }
        }
        out
    }

    fn against_instances(&self, old: &Definition, instances: &[LiveInstance]) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        let mut in_stage: Counts<(&str, &str)> = Counts::new();
        let mut approvals: Counts<&str> = Counts::new();
        let mut tokens: Counts<(&str, &str, Option<&str>)> = Counts::new();
        for instance in instances {
            *in_stage.entry((&instance.entity, &instance.stage)).or_default() += 1;
            if let Some(transition) = &instance.pending_approval {
                *approvals.entry(transition).or_default() += 1;
            }
            for (gateway, branch, stage) in &instance.tokens {
                *tokens.entry((gateway, branch, stage.as_deref())).or_default() += 1;
            }
        }

        for ((entity, stage), count) in in_stage {
            if self.new.entity_named(entity).is_none() {
                out.push(
                    Diagnostic::new(
                        Code::StageRemovedUnderInstances,
                        self.at.key("/entities"),
                        format!(
                            "entity `{entity}` is removed but {} in stage `{stage}`",
                            instances_are(count)
                        ),
                    )
                    .with_label(format!("no entity `{entity}` here"))
                    .with_help("keep the entity until its instances complete"),
                );
            } else if !self.has_stage(entity, stage) {
                out.push(
                    Diagnostic::new(
                        Code::StageRemovedUnderInstances,
                        self.stages_span(entity),
                        format!(
                            "stage `{stage}` of `{entity}` is removed but {} in it",
                            instances_are(count)
                        ),
                    )
                    .with_label(format!("no `{stage}` here"))
                    .with_help(self.mapping_help(entity, stage)),
                );
            }
        }

        for (transition, count) in approvals {
            if self.new.transition_named(transition).is_none() {
                out.push(
                    Diagnostic::new(
                        Code::TransitionRemovedUnderApprovals,
                        self.at.key("/transitions"),
                        format!(
                            "transition `{transition}` is removed but {} approval of it {}",
                            count,
                            if count == 1 { "is pending" } else { "are pending" }
                        ),
                    )
                    .with_label(format!("no `{transition}` here"))
                    .with_help("keep the transition until its pending approvals are resolved"),
                );
            }
        }

        for ((gateway, branch, stage), count) in tokens {
            let problem = match self.new.gateway_named(gateway) {
                None => Some(format!("gateway `{gateway}` is removed")),
                Some(id) => {
                    let g = self.new.gateway(id);
                    match g.branches.iter().find(|b| b.name == branch) {
                        None => Some(format!("branch `{branch}` of gateway `{gateway}` is removed")),
                        Some(b) => match (stage, b.stage) {
                            // A token that moved past its branch's first stage keeps its stage by name.
                            (Some(stage), _) if !self.has_stage(&self.new.entity(g.entity).name, stage) => {
                                Some(format!(
                                    "stage `{stage}` of branch `{branch}` (gateway `{gateway}`) is removed"
                                ))
                            }
                            _ => None,
                        },
                    }
                }
            };
            if let Some(problem) = problem {
                let pointer = format!("/gateways/{}", escape(gateway));
                out.push(
                    Diagnostic::new(
                        Code::GatewayChangedUnderTokens,
                        self.at.key(&pointer),
                        format!("{problem} but {} running in it", tokens_are(count)),
                    )
                    .with_label("changed here")
                    .with_help("keep the gateway's branches until the running gateways join"),
                );
            }
        }

        out.extend(self.data(old, instances));
        out
    }

    /// Live data against the new `dataSchema`: violations per field, and removed fields that
    /// still hold values.
    fn data(&self, old: &Definition, instances: &[LiveInstance]) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        let schema = &self.new.data;
        // A pattern that does not compile was reported by `crm check` already; `push` keeps its
        // slot empty so it checks nothing, and the other fields keep their slots.
        let mut validator = Validator::default();
        for field in schema.fields() {
            let _ = validator.push(field);
        }
        let mut invalid: BTreeMap<String, (usize, String)> = BTreeMap::new();
        let mut removed: Counts<&str> = Counts::new();
        for instance in instances {
            for violation in validator.check(schema, &instance.data) {
                let field = violation.field.split('[').next().unwrap_or_default().to_owned();
                let entry = invalid.entry(field).or_insert_with(|| (0, violation.to_string()));
                entry.0 += 1;
            }
            if let Some(map) = instance.data.as_object() {
                for (key, value) in map {
                    if !value.is_null() && schema.lookup(key).is_none() && old.data.lookup(key).is_some() {
                        *removed.entry(key.as_str()).or_default() += 1;
                    }
                }
            }
        }
        for (field, (count, example)) in invalid {
            let pointer = if field.is_empty() {
                "/dataSchema".to_owned()
            } else {
                format!("/dataSchema/{}", escape(&field))
            };
            out.push(
                Diagnostic::new(
                    Code::DataNoLongerValid,
                    self.at.key(&pointer),
                    format!("the data of {} no longer validates: {example}", instances_count(count)),
                )
                .with_label("narrowed here")
                .with_help("widen the field, or update the instances' data before deploying this version"),
            );
        }
        for (field, count) in removed {
            out.push(
                Diagnostic::new(
                    Code::FieldRemovedWithData,
                    self.at.key("/dataSchema"),
                    format!("field `{field}` is removed but {} a value for it", instances_hold(count)),
                )
                .with_label(format!("no `{field}` here"))
                .with_help("keep the field declared while data holds it, or clear the values first"),
            );
        }
        out
    }

    fn has_stage(&self, entity: &str, stage: &str) -> bool {
        self.new.entity_named(entity).is_some_and(|e| self.new.stage_named(e, stage).is_some())
    }

    /// The entity's `stages` in the new file, or the entity, or `entities`.
    fn stages_span(&self, entity: &str) -> crate::diagnostic::Span {
        self.at.value(&format!("/entities/{}/stages", escape(entity)))
    }

    /// A proposed mapping for the instances of a removed stage: the closest stage name of the
    /// new version when one is close, else the stages to choose from.
    fn mapping_help(&self, entity: &str, stage: &str) -> String {
        let names: Vec<&str> = self
            .new
            .entity_named(entity)
            .map(|e| self.new.entity(e).stages.iter().map(|&s| self.new.stage(s).name.as_str()).collect())
            .unwrap_or_default();
        match did_you_mean(stage, names.iter().copied()) {
            Some(close) => format!("renamed? map its instances with `--map {stage}={close}` when migrating"),
            None => format!(
                "map its instances to one of {} with `--map {stage}=STAGE` when migrating",
                quoted(&names)
            ),
        }
    }
}

fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

fn instances_are(count: usize) -> String {
    if count == 1 { "1 live instance is".to_owned() } else { format!("{count} live instances are") }
}

fn instances_hold(count: usize) -> String {
    if count == 1 { "1 live instance holds".to_owned() } else { format!("{count} live instances hold") }
}

fn instances_count(count: usize) -> String {
    if count == 1 { "1 live instance".to_owned() } else { format!("{count} live instances") }
}

fn tokens_are(count: usize) -> String {
    if count == 1 { "1 token is".to_owned() } else { format!("{count} tokens are") }
}

/// A name as one JSON pointer segment (RFC 6901).
fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}
