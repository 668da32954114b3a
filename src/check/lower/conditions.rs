//! Conditions and guards on transitions, gateways, branches and escalations.

use crate::check::expr::{self as expr_check, ExprEnv};
use crate::check::lower::Cx;
use crate::diagnostic::{Code, Diagnostic};
use crate::ir::{self, DataSchema};
use crate::syntax::model;

impl Cx<'_, '_> {
    /// Compiles a condition; `pointer` (to the string) is only built when there is a finding.
    pub(super) fn condition(
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

    pub(super) fn guards(
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
}
