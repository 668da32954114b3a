//! Recipient and assignee strings (`to` of `email`, `notify` and `assign` actions): `assignee`,
//! `role:NAME`, `data.FIELD` or a user id. A misspelt data path or an empty role would otherwise
//! reach nobody, silently.

use crate::check::lower::Cx;
use crate::diagnostic::{Code, Diagnostic, unknown_name_help};
use crate::ir::{DataSchema, FieldType};

/// The recipient that means the instance's current assignee.
pub(crate) const ASSIGNEE: &str = "assignee";

impl Cx<'_, '_> {
    /// Checks every entry of the list at `at` (a JSON pointer to the `to` array).
    pub(super) fn recipients(&mut self, to: &[String], at: &str, data: &DataSchema) {
        for (i, recipient) in to.iter().enumerate() {
            let pointer = format!("{at}/{i}");
            if recipient == ASSIGNEE {
                continue;
            }
            if let Some(role) = recipient.strip_prefix("role:") {
                if role.trim().is_empty() {
                    self.push(
                        Diagnostic::new(Code::InvalidValue, self.locate.value(&pointer), "empty role name")
                            .with_label("`role:` names no role")
                            .with_help("write the role after the colon, e.g. \"role:sales_manager\""),
                    );
                }
                continue;
            }
            if let Some(field) = recipient.strip_prefix("data.") {
                // Without a `dataSchema` the data is untyped: nothing to check the path against.
                if data.is_empty() {
                    continue;
                }
                let Some(id) = data.lookup(field) else {
                    let help =
                        unknown_name_help(field, "field", data.fields().iter().map(|f| f.name.as_str()));
                    self.push(
                        Diagnostic::new(
                            Code::UnknownField,
                            self.locate.value(&pointer),
                            format!("field `{field}` is not declared in `dataSchema`"),
                        )
                        .with_label("no such field to read the recipient from")
                        .with_help_opt(help),
                    );
                    continue;
                };
                let ty = &data.field(id).ty;
                let holds_users = match ty {
                    FieldType::String => true,
                    FieldType::Array(item) => item.as_deref().is_none_or(|t| *t == FieldType::String),
                    _ => false,
                };
                if !holds_users {
                    self.push(
                        Diagnostic::new(
                            Code::InvalidValue,
                            self.locate.value(&pointer),
                            format!(
                                "`{recipient}` is declared as `{}`; a recipient must be a string",
                                ty.name()
                            ),
                        )
                        .with_label("not a user id or address")
                        .with_help("name a `string` field (or an `array` of strings)"),
                    );
                }
                continue;
            }
            if recipient.trim().is_empty() {
                self.push(
                    Diagnostic::new(Code::InvalidValue, self.locate.value(&pointer), "empty recipient")
                        .with_label("names nobody")
                        .with_help("write a user id, `role:NAME`, `data.FIELD` or `assignee`"),
                );
            }
        }
    }
}
