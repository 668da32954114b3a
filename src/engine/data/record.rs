//! [`Record`]: instance data with declared fields resolved to slots, as the evaluator reads it.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use crate::engine::data::json::{value_from_json, value_to_json};
use crate::ir::data::{DataSchema, FieldId};
use crate::ir::value::Value;

/// An instance's data, declared fields resolved to slots.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    /// One slot per declared field, by [`FieldId`]; `None` when the data does not carry it.
    slots: Vec<Option<Value>>,
    /// Keys the schema does not declare, kept so they still work (by name) and round-trip.
    extra: BTreeMap<String, Value>,
}

/// What an absent field or key reads as.
pub(crate) static NULL: Value = Value::Null;

impl Record {
    /// A record with no data.
    pub fn new(schema: &DataSchema) -> Self {
        Self { slots: vec![None; schema.len()], extra: BTreeMap::new() }
    }

    /// Reads instance data. Anything but a JSON object yields an empty record.
    pub fn from_json(schema: &DataSchema, data: &Json) -> Self {
        match data {
            Json::Object(map) => Self::from_object(schema, map),
            _ => Record::new(schema),
        }
    }

    /// Reads instance data held as a JSON object's map.
    pub fn from_object(schema: &DataSchema, map: &Map<String, Json>) -> Self {
        let mut record = Record::new(schema);
        for (key, value) in map {
            match schema.lookup(key) {
                Some(id) => record.set(id, value_from_json(value)),
                None => {
                    record.extra.insert(key.clone(), value_from_json(value));
                }
            }
        }
        record
    }

    /// The value of a declared field, `None` when absent.
    pub fn get(&self, id: FieldId) -> Option<&Value> {
        self.slots.get(id.index()).and_then(Option::as_ref)
    }

    /// Sets a declared field (growing the record if the schema gained fields since it was made).
    pub fn set(&mut self, id: FieldId, value: Value) {
        if self.slots.len() <= id.index() {
            self.slots.resize(id.index() + 1, None);
        }
        if let Some(slot) = self.slots.get_mut(id.index()) {
            *slot = Some(value);
        }
    }

    /// Removes a declared field's value.
    pub fn clear(&mut self, id: FieldId) {
        if let Some(slot) = self.slots.get_mut(id.index()) {
            *slot = None;
        }
    }

    /// The value of a key the schema does not declare.
    pub fn extra(&self, name: &str) -> Option<&Value> {
        self.extra.get(name)
    }

    /// Sets a key the schema does not declare.
    pub fn set_extra(&mut self, name: impl Into<String>, value: Value) {
        self.extra.insert(name.into(), value);
    }

    /// The data as a JSON object: declared fields in schema order, then the other keys.
    pub fn to_json(&self, schema: &DataSchema) -> Json {
        let mut map = Map::new();
        for (id, field) in schema.iter() {
            if let Some(value) = self.get(id) {
                map.insert(field.name.clone(), value_to_json(value));
            }
        }
        for (key, value) in &self.extra {
            map.insert(key.clone(), value_to_json(value));
        }
        Json::Object(map)
    }

    /// A declared field's value, `null` when absent (the evaluator's hot path).
    #[inline]
    pub(crate) fn slot(&self, id: FieldId) -> &Value {
        self.get(id).unwrap_or(&NULL)
    }
}
