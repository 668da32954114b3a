//! Validation of contact data against the declared fields ([`Field`]), the same rules a Level 2
//! `dataSchema` states: type, `min`/`max`, `enum`, `pattern`, `required`.
//!
//! Every problem of one piece of data is collected, so a form can show them all at once.

use regex::Regex;
use serde_json::Value as Json;

use crate::diagnostic::unknown_name_help;
use crate::ir::data::{Field, FieldType};
use crate::ir::value::{Temporal, Value};

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

/// Checks one non-null value against its declared field, adding every problem to `errors`.
pub(crate) fn check_field(
    field: &Field,
    pattern: Option<&Regex>,
    value: &Json,
    errors: &mut Vec<FieldError>,
) {
    let name = field.name.as_str();
    if !check_type(&field.ty, name, value, errors) {
        return;
    }
    let measured = match value {
        Json::Number(n) => n.as_f64().map(|n| (n, "be")),
        Json::String(s) => Some((s.chars().count() as f64, "have length")),
        Json::Array(items) => Some((items.len() as f64, "have length")),
        _ => None,
    };
    if let Some((measure, verb)) = measured {
        let problem = match (field.min, field.max) {
            (Some(min), _) if measure < min => Some(format!("must {verb} at least {min}")),
            (_, Some(max)) if measure > max => Some(format!("must {verb} at most {max}")),
            _ => None,
        };
        if let Some(problem) = problem {
            errors.push(FieldError::OutOfBounds { field: name.to_owned(), problem });
        }
    }
    if !field.allowed.is_empty() {
        let value = Value::from(value);
        if !field.allowed.contains(&value) {
            let allowed =
                field.allowed.iter().map(|v| v.to_json().to_string()).collect::<Vec<_>>().join(", ");
            errors.push(FieldError::NotAllowed { field: name.to_owned(), allowed });
        }
    }
    if let (Some(regex), Json::String(s)) = (pattern, value)
        && !regex.is_match(s)
    {
        let pattern = field.pattern.clone().unwrap_or_default();
        errors.push(FieldError::PatternMismatch { field: name.to_owned(), pattern });
    }
}

/// Whether `value` has the kind `ty` asks for; item problems of arrays are added to `errors` but
/// do not make the array itself the wrong kind.
fn check_type(ty: &FieldType, path: &str, value: &Json, errors: &mut Vec<FieldError>) -> bool {
    let temporal = |want_date: bool, s: &str, errors: &mut Vec<FieldError>| {
        let ok = match Temporal::parse(s) {
            Some(Temporal::Date(_)) => want_date,
            Some(Temporal::DateTime(_)) => !want_date,
            None => false,
        };
        if !ok {
            let expected = if want_date { "a date" } else { "a date-time" };
            errors.push(FieldError::InvalidTemporal {
                field: path.to_owned(),
                expected,
                value: s.to_owned(),
            });
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
        (FieldType::Date, Json::String(s)) => temporal(true, s, errors),
        (FieldType::DateTime, Json::String(s)) => temporal(false, s, errors),
        (FieldType::Array(items), Json::Array(values)) => {
            if let Some(item) = items {
                for (i, value) in values.iter().enumerate() {
                    check_type(item, &format!("{path}[{i}]"), value, errors);
                }
            }
            true
        }
        _ => {
            let found = match value {
                Json::Number(_) if *ty == FieldType::Integer => "a decimal",
                other => kind(other),
            };
            errors.push(FieldError::WrongType { field: path.to_owned(), expected: ty.name(), found });
            false
        }
    }
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
