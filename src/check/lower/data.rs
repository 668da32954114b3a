//! `dataSchema`: field types, bounds, patterns and `enum` values.

use crate::check::literal::lower_literal;
use crate::check::locate::ptr;
use crate::check::lower::Cx;
use crate::diagnostic::{Code, Diagnostic};
use crate::ir::{self, DataSchema, FieldType};
use crate::syntax::duration::parse_date;
use crate::syntax::model;

impl Cx<'_, '_> {
    pub(super) fn data_schema(&mut self) -> DataSchema {
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
                        .with_label(last_line(&error.to_string())),
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
pub(super) fn json_fits(value: &serde_json::Value, ty: &FieldType) -> bool {
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

/// The last non-empty line of `text`, trimmed: `regex` puts the reason for an error on its
/// last line, after an echo of the pattern.
fn last_line(text: &str) -> String {
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(text).trim().to_owned()
}
