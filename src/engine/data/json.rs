//! Instance data between JSON and [`Value`]: what the engine reads from callers and the store, and
//! what it writes back. The IR itself knows nothing of JSON.

use serde_json::Value as Json;

use crate::check::literal::lower_literal;
use crate::ir::value::Value;

/// Reads a JSON value. Numbers that fit in an `i64` become [`Value::Int`], others
/// [`Value::Float`]; object keys come out sorted. The mapping is the one definition literals are
/// lowered with (`check::literal`, which may not import `engine`), so an `enum` value equals the
/// data value written the same way.
pub fn value_from_json(json: &Json) -> Value {
    lower_literal(json)
}

/// The value as JSON. Object keys come out sorted.
pub fn value_to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        // `Float` is finite by construction in the evaluator; a non-finite one has no JSON form.
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Into::into),
        Value::Str(s) => Json::String(s.to_string()),
        Value::List(items) => Json::Array(items.iter().map(value_to_json).collect()),
        Value::Object(map) => Json::Object(map.iter().map(|(k, v)| (k.clone(), value_to_json(v))).collect()),
    }
}

/// A JSON value's kind, as errors name it (`"a string"`, `"an object"`, …).
pub(crate) fn json_kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips() {
        let json = serde_json::json!({"a": [1, 2.5, "x", null, true], "b": {"c": 18446744073709551615u64}});
        let value = value_from_json(&json);
        assert_eq!(value_from_json(&value_to_json(&value)), value);
    }
}
