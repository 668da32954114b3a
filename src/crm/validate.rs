//! Validation of contact data against the declared fields ([`Field`]), the same rules a Level 2
//! `dataSchema` states: type, `min`/`max`, `enum`, `pattern`, `required`.
//!
//! Every problem of one piece of data is collected, so a form can show them all at once.

use regex::Regex;
use serde_json::Value as Json;

use crate::diagnostic::unknown_name_help;
use crate::engine::machine::validate::check_field_value;
use crate::engine::machine::{Problem, Violation};
use crate::ir::data::Field;

use super::config::{EntityConfig, ID_KEY};
use super::error::{CrmError, FieldError};
use super::model::{Contact, ContactId, Fields, MAX_ID_LEN};

impl EntityConfig {
    /// Checks new contact data: the caller's `id` if any, and the fields in declaration order.
    /// `null` means absent.
    pub(crate) fn validate_new(&self, data: Json) -> Result<(Option<ContactId>, Fields), CrmError> {
        let map = into_object(data)?;
        let mut id = None;
        let mut errors = Vec::new();
        let mut fields = Fields::with_capacity(map.len());
        for (key, value) in map {
            if key == ID_KEY {
                if !value.is_null() {
                    id = Some(caller_id(&value)?);
                }
            } else if self.schema.lookup(&key).is_none() {
                errors.push(self.unknown(key));
            } else if !value.is_null() {
                self.check(&key, &value, &mut errors);
                fields.insert(key, value);
            }
        }
        self.finish(fields, errors).map(|fields| (id, fields))
    }

    /// Applies a patch to a contact's fields, as a JSON merge patch (RFC 7396) one level deep: a
    /// key sets the field, `null` removes it, absent keys stay. The result is checked as a whole.
    pub(crate) fn validate_patch(&self, current: &Contact, patch: Json) -> Result<Fields, CrmError> {
        let map = into_object(patch)?;
        let mut errors = Vec::new();
        let mut fields = current.fields.clone();
        for (key, value) in map {
            if key == ID_KEY {
                // Echoing the id back (a round-tripped contact) is harmless; changing it is not.
                if value.as_str() != Some(current.id.as_str()) {
                    errors.push(FieldError::Immutable { field: key });
                }
            } else if value.is_null() && (self.schema.lookup(&key).is_some() || fields.contains_key(&key)) {
                // Also lets a field the configuration no longer declares be cleared.
                fields.shift_remove(&key);
            } else if self.schema.lookup(&key).is_none() {
                errors.push(self.unknown(key));
            } else {
                self.check(&key, &value, &mut errors);
                fields.insert(key, value);
            }
        }
        self.finish(fields, errors)
    }

    /// Adds the missing required fields to `errors`, then orders the fields as declared (fields no
    /// longer declared keep their place after those).
    fn finish(&self, mut fields: Fields, mut errors: Vec<FieldError>) -> Result<Fields, CrmError> {
        for field in self.schema.fields() {
            if field.required && !fields.contains_key(&field.name) {
                errors.push(FieldError::Missing { field: field.name.clone() });
            }
        }
        if !errors.is_empty() {
            return Err(CrmError::InvalidData { errors });
        }
        let mut ordered = Fields::with_capacity(fields.len());
        for field in self.schema.fields() {
            if let Some(value) = fields.shift_remove(&field.name) {
                ordered.insert(field.name.clone(), value);
            }
        }
        ordered.extend(fields);
        Ok(ordered)
    }

    fn unknown(&self, field: String) -> FieldError {
        let help = unknown_name_help(&field, "field", self.schema.fields().iter().map(|f| f.name.as_str()));
        FieldError::Unknown { field, help }
    }

    fn check(&self, name: &str, value: &Json, errors: &mut Vec<FieldError>) {
        let Some(id) = self.schema.lookup(name) else { return };
        let pattern = self.patterns.get(id.index()).and_then(Option::as_ref);
        check_field(self.schema.field(id), pattern, value, errors);
    }
}

/// Checks one non-null value against its declared field, adding every problem to `errors`. The
/// rules are the engine's (`engine::machine::validate`), so data valid at Level 1 stays valid after
/// promotion; only the error type is Level 1's.
pub(crate) fn check_field(
    field: &Field,
    pattern: Option<&Regex>,
    value: &Json,
    errors: &mut Vec<FieldError>,
) {
    let mut violations = Vec::new();
    check_field_value(field, pattern, &field.name, value, &mut violations);
    errors.extend(violations.into_iter().map(|v| field_error(v, value)));
}

fn field_error(violation: Violation, value: &Json) -> FieldError {
    let Violation { field, problem } = violation;
    match problem {
        Problem::WrongType { expected, found } => FieldError::WrongType { field, expected, found },
        Problem::InvalidTemporal { expected } => {
            // Array items are reported as `name[i]`; find the string the path names.
            let item = field
                .rsplit_once('[')
                .and_then(|(_, index)| index.trim_end_matches(']').parse::<usize>().ok())
                .and_then(|i| value.get(i));
            let text = item.unwrap_or(value).as_str().unwrap_or_default().to_owned();
            FieldError::InvalidTemporal { field, expected, value: text }
        }
        Problem::BelowMin { min, length, .. } => {
            FieldError::OutOfBounds { field, problem: format!("must {} at least {min}", verb(length)) }
        }
        Problem::AboveMax { max, length, .. } => {
            FieldError::OutOfBounds { field, problem: format!("must {} at most {max}", verb(length)) }
        }
        Problem::NotAllowed { allowed } => FieldError::NotAllowed { field, allowed: allowed.join(", ") },
        Problem::PatternMismatch { pattern } => FieldError::PatternMismatch { field, pattern },
        Problem::Missing => FieldError::Missing { field },
        Problem::NotAnObject { found } => FieldError::WrongType { field, expected: "object", found },
    }
}

fn verb(length: bool) -> &'static str {
    if length { "have length" } else { "be" }
}

fn into_object(data: Json) -> Result<Fields, CrmError> {
    match data {
        Json::Object(map) => Ok(map),
        other => Err(CrmError::NotAnObject { found: kind(&other) }),
    }
}

fn caller_id(value: &Json) -> Result<ContactId, CrmError> {
    let reason = match value {
        Json::String(s) if s.is_empty() => "it is empty",
        Json::String(s) if s.len() > MAX_ID_LEN => "it is longer than 128 bytes",
        Json::String(s) if s.chars().any(char::is_control) => "it contains control characters",
        Json::String(s) => return Ok(ContactId::new(s.as_str())),
        _ => "it is not a string",
    };
    Err(CrmError::InvalidId { id: value.to_string(), reason })
}

/// A JSON value's kind, as errors name it.
pub(crate) fn kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}
