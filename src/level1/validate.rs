//! Validation of contact data against the declared fields, through the engine's validator
//! (`engine::data`): the rules a Level 2 `dataSchema` states (type, `min`/`max`, `enum`,
//! `pattern`, `required`) are checked by the same code at both levels. Level 1 adds only what is
//! its own: unknown fields are refused and the `id` key holds the contact's id.
//!
//! Every problem of one piece of data is collected, so a form can show them all at once.

use serde_json::Value as Json;

use crate::diagnostic::unknown_name_help;
use crate::engine::data::json_kind;
use crate::ir::data::FieldId;
use crate::level1::config::{EntityConfig, ID_KEY};
use crate::level1::error::{CrmError, FieldError};
use crate::level1::model::{Contact, ContactId, Fields, MAX_ID_LEN};

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
            } else if let Some(field) = self.schema.lookup(&key) {
                if !value.is_null() {
                    self.check(field, &value, &mut errors);
                    fields.insert(key, value);
                }
            } else {
                errors.push(self.unknown(key));
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
            } else if let Some(field) = self.schema.lookup(&key) {
                self.check(field, &value, &mut errors);
                fields.insert(key, value);
            } else {
                errors.push(self.unknown(key));
            }
        }
        self.finish(fields, errors)
    }

    /// Adds the missing required fields to `errors`, then orders the fields as declared (fields no
    /// longer declared keep their place after those).
    fn finish(&self, mut fields: Fields, mut errors: Vec<FieldError>) -> Result<Fields, CrmError> {
        let missing = self.validator.missing(&self.schema, |name| fields.contains_key(name));
        errors.extend(missing.into_iter().map(FieldError::Violation));
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

    /// Checks a non-null value of a declared field with the engine's validator.
    fn check(&self, field: FieldId, value: &Json, errors: &mut Vec<FieldError>) {
        let mut violations = Vec::new();
        self.validator.check_field(&self.schema, field, value, &mut violations);
        errors.extend(violations.into_iter().map(FieldError::Violation));
    }
}

fn into_object(data: Json) -> Result<Fields, CrmError> {
    match data {
        Json::Object(map) => Ok(map),
        other => Err(CrmError::NotAnObject { found: json_kind(&other) }),
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
