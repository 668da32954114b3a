//! Values of the expression language: literals in compiled expressions and instance data at run time.
//!
//! Plain data, cheap to clone: strings, lists and objects are shared behind an [`Arc`]. Equality is
//! the language's structural equality, where integers and decimals compare numerically (`50 == 50.0`).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

/// A value: null, boolean, number, string, list or object.
#[derive(Clone, Debug, Default)]
pub enum Value {
    /// `null`, and what a missing path yields.
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A whole number that fits in 64 bits.
    Int(i64),
    /// A decimal, or a whole number too large for [`Value::Int`]; always finite.
    Float(f64),
    /// A string; dates and date-times are strings too, typed as such by `dataSchema`.
    Str(Arc<str>),
    /// A list.
    List(Arc<[Value]>),
    /// An object; keys are kept sorted, so its JSON form (`engine::data::value_to_json`) has them
    /// in that order.
    Object(Arc<BTreeMap<String, Value>>),
}

impl Value {
    /// The kind's name as diagnostics and errors print it (`"number"`, `"string"`, …).
    pub const fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) | Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Object(_) => "object",
        }
    }

    /// Whether this is `null`.
    pub const fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The boolean, if this is one.
    pub const fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Compares two numbers exactly, also an integer with a decimal (no rounding through `f64`).
#[inline]
pub fn compare_numbers(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        (Value::Int(x), Value::Float(y)) => compare_int_float(*x, *y),
        (Value::Float(x), Value::Int(y)) => compare_int_float(*y, *x).map(Ordering::reverse),
        _ => None,
    }
}

/// Compares an integer with a decimal exactly; `None` only for NaN.
pub fn compare_int_float(int: i64, float: f64) -> Option<Ordering> {
    // 2^63 is exactly representable; every float at or beyond it is beyond every i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if float.is_nan() {
        None
    } else if float >= LIMIT {
        Some(Ordering::Less)
    } else if float < -LIMIT {
        Some(Ordering::Greater)
    } else {
        // In range, so truncation is exact; the fraction decides ties.
        let whole = float.trunc() as i64;
        match int.cmp(&whole) {
            Ordering::Equal => 0.0_f64.partial_cmp(&float.fract()),
            ordering => Some(ordering),
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Object(a), Value::Object(b)) => a == b,
            (a, b) => compare_numbers(a, b) == Some(Ordering::Equal),
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.into())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s.into())
    }
}

impl From<Arc<str>> for Value {
    fn from(s: Arc<str>) -> Self {
        Value::Str(s)
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Self {
        Value::List(items.into())
    }
}

/// A date or date-time read from an ISO-8601 string, as the language compares them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Temporal {
    /// `2026-11-25`.
    Date(NaiveDate),
    /// `2026-11-25T08:00:00Z`, `2026-11-25T09:00:00+01:00`; without an offset, UTC.
    DateTime(DateTime<Utc>),
}

impl Temporal {
    /// Reads a date (`YYYY-MM-DD`) or an RFC 3339 date-time; `None` if it is neither.
    pub fn parse(text: &str) -> Option<Temporal> {
        if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            return Some(Temporal::Date(date));
        }
        if let Ok(datetime) = DateTime::parse_from_rfc3339(text) {
            return Some(Temporal::DateTime(datetime.to_utc()));
        }
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(|naive| Temporal::DateTime(naive.and_utc()))
    }

    /// The instant it stands for: a date is its midnight, UTC.
    pub fn instant(self) -> DateTime<Utc> {
        match self {
            Temporal::Date(date) => date.and_time(NaiveTime::MIN).and_utc(),
            Temporal::DateTime(datetime) => datetime,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_exactly_across_kinds() {
        assert_eq!(Value::Int(50), Value::Float(50.0));
        assert_ne!(Value::Int(i64::MAX), Value::Float(9_223_372_036_854_775_807.0));
        assert_eq!(compare_int_float(1, 1.5), Some(Ordering::Less));
        assert_eq!(compare_int_float(-1, -1.5), Some(Ordering::Greater));
        assert_eq!(compare_int_float(i64::MIN, -9_223_372_036_854_775_808.0), Some(Ordering::Equal));
        assert_eq!(compare_int_float(i64::MAX, 1e19), Some(Ordering::Less));
        assert_ne!(Value::Int(1), Value::from("1"));
    }

    #[test]
    fn temporals_parse_dates_and_datetimes() {
        let date = Temporal::parse("2026-11-25").map(Temporal::instant);
        let midnight = Temporal::parse("2026-11-25T01:00:00+01:00").map(Temporal::instant);
        assert_eq!(date, midnight);
        assert_eq!(Temporal::parse("yesterday"), None);
    }
}
