//! The typed data schema of a definition (`dataSchema`), with fields resolved to slots.

use std::collections::HashMap;

use crate::ir::value::Value;

/// Index of a declared data field; also its slot in a [`crate::engine::Record`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldId(pub u32);

impl FieldId {
    /// The slot index.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// The type of a data field. From `dataSchema.<field>.type`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// `"string"`.
    String,
    /// `"number"`: integer or decimal.
    Number,
    /// `"integer"`: a whole number.
    Integer,
    /// `"boolean"`.
    Boolean,
    /// `"date"`: an ISO-8601 date string, `2026-11-25`.
    Date,
    /// `"datetime"`: an ISO-8601 date-time string with offset, `2026-11-25T08:00:00Z`.
    DateTime,
    /// `"array"`, optionally with the type of its items (`"items"`).
    Array(Option<Box<FieldType>>),
    /// `"object"`: a JSON object whose keys are not declared.
    Object,
}

impl FieldType {
    /// The name used in definitions and diagnostics.
    pub fn name(&self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Number => "number",
            FieldType::Integer => "integer",
            FieldType::Boolean => "boolean",
            FieldType::Date => "date",
            FieldType::DateTime => "datetime",
            FieldType::Array(_) => "array",
            FieldType::Object => "object",
        }
    }
}

/// One declared field. From `dataSchema.<name>`.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// The field name (the key in `dataSchema`).
    pub name: String,
    /// Its type.
    pub ty: FieldType,
    /// Whether instance data must carry it (`"required": true`).
    pub required: bool,
    /// Inclusive lower bound: numeric value, or length for strings and arrays (`"min"`).
    pub min: Option<f64>,
    /// Inclusive upper bound: numeric value, or length for strings and arrays (`"max"`).
    pub max: Option<f64>,
    /// The only values allowed (`"enum"`), empty when unrestricted.
    pub allowed: Vec<Value>,
    /// A regular expression strings must match (`"pattern"`), as written.
    pub pattern: Option<String>,
    /// Human label (`"label"`).
    pub label: Option<String>,
}

impl Field {
    /// An optional field of type `ty` with no bounds, enum, pattern or label.
    pub fn new(name: impl Into<String>, ty: FieldType) -> Self {
        Self {
            name: name.into(),
            ty,
            required: false,
            min: None,
            max: None,
            allowed: Vec::new(),
            pattern: None,
            label: None,
        }
    }
}

/// All declared fields, in declaration order; a field's position is its [`FieldId`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DataSchema {
    fields: Vec<Field>,
    by_name: HashMap<String, FieldId>,
}

impl DataSchema {
    /// A schema of `fields` in this order. A repeated name keeps its first declaration.
    pub fn new(fields: Vec<Field>) -> Self {
        let mut schema = DataSchema::default();
        for field in fields {
            schema.push(field);
        }
        schema
    }

    /// Adds a field (a custom field defined at run time, say); returns its id, or the existing
    /// id if the name is already declared.
    pub fn push(&mut self, field: Field) -> FieldId {
        if let Some(&id) = self.by_name.get(&field.name) {
            return id;
        }
        let id = FieldId(u32::try_from(self.fields.len()).unwrap_or(u32::MAX));
        self.by_name.insert(field.name.clone(), id);
        self.fields.push(field);
        id
    }

    /// The id of the field called `name`.
    pub fn lookup(&self, name: &str) -> Option<FieldId> {
        self.by_name.get(name).copied()
    }

    /// The field with this id.
    pub fn field(&self, id: FieldId) -> &Field {
        &self.fields[id.index()]
    }

    /// All fields in slot order.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// Number of fields (slots).
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether no field is declared.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Iterates over `(id, field)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (FieldId, &Field)> {
        self.fields.iter().enumerate().map(|(i, f)| (FieldId(i as u32), f))
    }
}
