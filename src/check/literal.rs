//! JSON literals lowered to IR constants: the definition's `enum` and `set_field` values here,
//! and instance data through `engine::data::value_from_json`, which calls this (`check` may not
//! import `engine`). One mapping, so an `enum` value equals the data value written the same way.

use std::sync::Arc;

use serde_json::Value as Json;

use crate::ir::Value;

/// The IR constant a JSON literal of the definition stands for.
pub(crate) fn lower_literal(json: &Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            // Beyond i64 (a large u64) or a decimal: serde_json numbers are always finite.
            None => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        Json::String(s) => Value::Str(s.as_str().into()),
        Json::Array(items) => Value::List(items.iter().map(lower_literal).collect()),
        Json::Object(map) => {
            Value::Object(Arc::new(map.iter().map(|(k, v)| (k.clone(), lower_literal(v))).collect()))
        }
    }
}
