//! Instance data: JSON in and out ([`value_from_json`], [`value_to_json`], [`Record`]) and the one
//! validator of data against `dataSchema` fields ([`Validator`]: types, `required`, `min`/`max`,
//! `enum`, `pattern`). The engine's machine and Level 1 both validate through it, so data valid at
//! Level 1 stays valid after promotion by construction.
//!
//! Every problem is collected, so a form can show them all at once. Keys the schema does not
//! declare are kept: the compiler already warns about reading them, and host applications attach
//! their own keys to records. Depends on `ir` (and on `check::literal`, the one JSON-to-`Value`
//! mapping, which definition literals share); `engine::machine` and `level1` use it, never the
//! reverse.

mod json;
mod problem;
mod record;

use regex::Regex;
use serde_json::{Map, Value as Json};

pub(crate) use self::json::json_kind;
pub use self::json::{value_from_json, value_to_json};
pub use self::problem::{PatternError, Problem, Violation};
pub(crate) use self::record::NULL;
pub use self::record::Record;
use crate::ir::data::{DataSchema, Field, FieldId, FieldType};
use crate::ir::value::{Temporal, Value};

/// Checks data against a schema, with the schema's patterns compiled once.
#[derive(Clone, Debug, Default)]
pub struct Validator {
    /// The compiled `pattern` of each field, by [`FieldId`].
    patterns: Vec<Option<Regex>>,
}

/// A field whose value a patch changed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Change {
    pub name: String,
    pub before: Json,
    pub after: Json,
}

impl Validator {
    /// Compiles the patterns of every field of `schema`.
    pub fn new(schema: &DataSchema) -> Result<Self, PatternError> {
        let mut validator = Validator::default();
        for field in schema.fields() {
            validator.push(field)?;
        }
        Ok(validator)
    }

    /// Adds the next field's slot (a custom field defined at run time, seed FR-L3-005). The slot
    /// is added even when the pattern does not compile (it is then empty), so later slots keep
    /// their [`FieldId`]s while every bad pattern is reported.
    pub fn push(&mut self, field: &Field) -> Result<(), PatternError> {
        let compiled = field.pattern.as_deref().map(Regex::new).transpose();
        let (pattern, result) = match compiled {
            Ok(pattern) => (pattern, Ok(())),
            Err(e) => (None, Err(PatternError { field: field.name.clone(), message: e.to_string() })),
        };
        self.patterns.push(pattern);
        result
    }

    /// Every problem of complete data (`null` counts as absent); `data` must be an object or `null`.
    pub fn check(&self, schema: &DataSchema, data: &Json) -> Vec<Violation> {
        match data {
            Json::Null => self.missing(schema, |_| false),
            Json::Object(map) => {
                let mut violations = Vec::new();
                for (key, value) in map {
                    if let (Some(id), false) = (schema.lookup(key), value.is_null()) {
                        self.check_value(schema.field(id), id, key, value, &mut violations);
                    }
                }
                violations.extend(self.missing(schema, |name| map.get(name).is_some_and(|v| !v.is_null())));
                violations
            }
            other => {
                vec![Violation {
                    field: String::new(),
                    problem: Problem::NotAnObject { found: json_kind(other) },
                }]
            }
        }
    }

    /// Builds the record of complete data, or reports every problem.
    pub(crate) fn record(&self, schema: &DataSchema, data: &Json) -> Result<Record, Vec<Violation>> {
        let violations = self.check(schema, data);
        if !violations.is_empty() {
            return Err(violations);
        }
        let mut record = Record::new(schema);
        if let Json::Object(map) = data {
            for (key, value) in map.iter().filter(|(_, v)| !v.is_null()) {
                set(&mut record, schema, key, value_from_json(value));
            }
        }
        Ok(record)
    }

    /// Applies a merge patch one level deep (a key sets its field, `null` removes it, absent keys
    /// stay) and checks the result; returns the new record and what changed.
    pub(crate) fn patch(
        &self,
        schema: &DataSchema,
        current: &Record,
        patch: &Map<String, Json>,
    ) -> Result<(Record, Vec<Change>), Vec<Violation>> {
        let mut violations = Vec::new();
        for (key, value) in patch {
            match (schema.lookup(key), value) {
                (Some(id), Json::Null) if schema.field(id).required => {
                    violations.push(Violation { field: key.clone(), problem: Problem::Missing });
                }
                (Some(id), value) if !value.is_null() => {
                    self.check_value(schema.field(id), id, key, value, &mut violations)
                }
                _ => {}
            }
        }
        // Required fields the record lacks and the patch does not mention (one added since);
        // those the patch sets to `null` are reported above, in patch order.
        violations.extend(
            self.missing(schema, |name| patch.contains_key(name) || get(current, schema, name).is_some()),
        );
        if !violations.is_empty() {
            return Err(violations);
        }

        let mut record = current.clone();
        let mut changes = Vec::new();
        let mut removed_extra = false;
        for (key, value) in patch {
            let before = get(current, schema, key);
            let after = (!value.is_null()).then(|| value_from_json(value));
            if before == after.as_ref() {
                continue;
            }
            changes.push(Change {
                name: key.clone(),
                before: before.map_or(Json::Null, value_to_json),
                after: value.clone(),
            });
            match (after, schema.lookup(key)) {
                (Some(value), _) => set(&mut record, schema, key, value),
                (None, Some(id)) => record.clear(id),
                (None, None) => removed_extra = true,
            }
        }
        if removed_extra {
            // `Record` has no way to drop an undeclared key; rebuild it without them (rare).
            if let Json::Object(mut map) = record.to_json(schema) {
                map.retain(|key, _| !patch.get(key).is_some_and(Json::is_null));
                record = Record::from_json(schema, &Json::Object(map));
            }
        }
        Ok((record, changes))
    }

    /// A [`Problem::Missing`] for each `required` field that is not `present`, in schema order.
    pub(crate) fn missing(&self, schema: &DataSchema, present: impl Fn(&str) -> bool) -> Vec<Violation> {
        schema
            .fields()
            .iter()
            .filter(|f| f.required && !present(&f.name))
            .map(|f| Violation { field: f.name.clone(), problem: Problem::Missing })
            .collect()
    }

    /// Checks one non-null value of the declared field `id` (type, bounds, enum, pattern), adding
    /// every problem to `out`. Level 1 contacts and Level 2 instances share this, so data is valid
    /// by the same rules at both levels.
    pub(crate) fn check_field(
        &self,
        schema: &DataSchema,
        id: FieldId,
        value: &Json,
        out: &mut Vec<Violation>,
    ) {
        let field = schema.field(id);
        self.check_value(field, id, &field.name, value, out);
    }

    fn check_value(&self, field: &Field, id: FieldId, path: &str, value: &Json, out: &mut Vec<Violation>) {
        let pattern = self.patterns.get(id.index()).and_then(Option::as_ref);
        check_field_value(field, pattern, path, value, out);
    }
}

fn check_field_value(
    field: &Field,
    pattern: Option<&Regex>,
    path: &str,
    value: &Json,
    out: &mut Vec<Violation>,
) {
    if !check_type(&field.ty, path, value, out) {
        return;
    }
    let (measure, length) = match value {
        Json::Number(n) => (n.as_f64(), false),
        Json::String(s) => (Some(s.chars().count() as f64), true),
        Json::Array(items) => (Some(items.len() as f64), true),
        _ => (None, false),
    };
    if let Some(found) = measure {
        if let Some(min) = field.min.filter(|&min| found < min) {
            out.push(violation(path, Problem::BelowMin { min, found, length }));
        }
        if let Some(max) = field.max.filter(|&max| found > max) {
            out.push(violation(path, Problem::AboveMax { max, found, length }));
        }
    }
    if !field.allowed.is_empty() && !field.allowed.contains(&value_from_json(value)) {
        let allowed = field.allowed.iter().map(|v| value_to_json(v).to_string()).collect();
        out.push(violation(path, Problem::NotAllowed { allowed }));
    }
    if let (Some(regex), Json::String(s)) = (pattern, value)
        && !regex.is_match(s)
    {
        out.push(violation(path, Problem::PatternMismatch { pattern: regex.as_str().to_owned() }));
    }
}

fn violation(field: &str, problem: Problem) -> Violation {
    Violation { field: field.to_owned(), problem }
}

/// Whether `value` has the kind `ty` asks for. Problems of array items are reported but do not
/// make the array itself the wrong kind, so its length is still checked.
fn check_type(ty: &FieldType, path: &str, value: &Json, out: &mut Vec<Violation>) -> bool {
    let temporal = |want_date: bool, s: &str, out: &mut Vec<Violation>| {
        let ok = match Temporal::parse(s) {
            Some(Temporal::Date(_)) => want_date,
            Some(Temporal::DateTime(_)) => !want_date,
            None => false,
        };
        if !ok {
            let expected = if want_date { "a date" } else { "a date-time" };
            out.push(violation(path, Problem::InvalidTemporal { expected }));
        }
        ok
    };
    match (ty, value) {
        (FieldType::String, Json::String(_))
        | (FieldType::Number, Json::Number(_))
        | (FieldType::Boolean, Json::Bool(_))
        | (FieldType::Object, Json::Object(_)) => true,
        // JSON has one number type; `2.0` is a whole number, as in JSON Schema.
        (FieldType::Integer, Json::Number(n))
            if n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0) =>
        {
            true
        }
        (FieldType::Date, Json::String(s)) => temporal(true, s, out),
        (FieldType::DateTime, Json::String(s)) => temporal(false, s, out),
        (FieldType::Array(items), Json::Array(values)) => {
            if let Some(item) = items {
                for (i, value) in values.iter().enumerate() {
                    check_type(item, &format!("{path}[{i}]"), value, out);
                }
            }
            true
        }
        _ => {
            let found = match value {
                Json::Number(_) if *ty == FieldType::Integer => "a decimal",
                other => json_kind(other),
            };
            out.push(violation(path, Problem::WrongType { expected: ty.name(), found }));
            false
        }
    }
}

fn get<'r>(record: &'r Record, schema: &DataSchema, name: &str) -> Option<&'r Value> {
    match schema.lookup(name) {
        Some(id) => record.get(id),
        None => record.extra(name),
    }
}

fn set(record: &mut Record, schema: &DataSchema, name: &str, value: Value) {
    match schema.lookup(name) {
        Some(id) => record.set(id, value),
        None => record.set_extra(name, value),
    }
}
