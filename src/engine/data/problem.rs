//! What is wrong with instance data ([`Violation`], [`Problem`]) and with a field's pattern
//! ([`PatternError`]): the one vocabulary the engine and Level 1 report invalid data in.

use std::fmt;

/// A field's `pattern` that is not a regular expression, e.g. `"^(a"`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}` has an invalid pattern: {message}")]
pub struct PatternError {
    /// The field.
    pub field: String,
    /// The regex compiler's message.
    pub message: String,
}

/// One problem of instance data.
#[derive(Clone, Debug, PartialEq, thiserror::Error, miette::Diagnostic)]
#[error("`{field}` {problem}")]
// The code predates the move out of `engine::machine`; codes are stable, so it stays.
#[diagnostic(code(crm::machine::violation))]
pub struct Violation {
    /// The field, with an index for array items (`tags[2]`); empty for the data as a whole.
    pub field: String,
    /// What is wrong.
    pub problem: Problem,
}

/// What is wrong with a value.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Problem {
    /// The data is not a JSON object.
    NotAnObject {
        /// What it is.
        found: &'static str,
    },
    /// A `required` field is absent or `null`.
    Missing,
    /// The value has the wrong kind.
    WrongType {
        /// The declared type.
        expected: &'static str,
        /// The kind found.
        found: &'static str,
    },
    /// A `date`/`datetime` field holds another string.
    InvalidTemporal {
        /// `"a date"` or `"a date-time"`.
        expected: &'static str,
    },
    /// A number below `min`, or a string or array shorter than `min`.
    BelowMin {
        /// The bound.
        min: f64,
        /// The value or length found.
        found: f64,
        /// Whether the bound is on the length (strings, arrays).
        length: bool,
    },
    /// A number above `max`, or a string or array longer than `max`.
    AboveMax {
        /// The bound.
        max: f64,
        /// The value or length found.
        found: f64,
        /// Whether the bound is on the length (strings, arrays).
        length: bool,
    },
    /// Not one of the `enum` values.
    NotAllowed {
        /// The allowed values, as JSON.
        allowed: Vec<String>,
    },
    /// A string that does not match `pattern`.
    PatternMismatch {
        /// The pattern.
        pattern: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotAnObject { found } => write!(f, "must be an object, found {found}"),
            Problem::Missing => f.write_str("is required"),
            Problem::WrongType { expected, found } => write!(f, "must be of type {expected}, found {found}"),
            Problem::InvalidTemporal { expected } => write!(f, "must be {expected}"),
            Problem::BelowMin { min, found, length } => {
                write!(f, "must {} at least {min} (found {found})", verb(*length))
            }
            Problem::AboveMax { max, found, length } => {
                write!(f, "must {} at most {max} (found {found})", verb(*length))
            }
            Problem::NotAllowed { allowed } => write!(f, "must be one of {}", allowed.join(", ")),
            Problem::PatternMismatch { pattern } => write!(f, "must match `{pattern}`"),
        }
    }
}

impl Problem {
    /// The last segment of the diagnostic code that names this kind of problem (`missing`,
    /// `wrong_type`, …), stable like every code.
    pub const fn code_name(&self) -> &'static str {
        match self {
            Problem::NotAnObject { .. } => "not_an_object",
            Problem::Missing => "missing",
            Problem::WrongType { .. } => "wrong_type",
            Problem::InvalidTemporal { .. } => "invalid_temporal",
            Problem::BelowMin { .. } | Problem::AboveMax { .. } => "out_of_bounds",
            Problem::NotAllowed { .. } => "not_allowed",
            Problem::PatternMismatch { .. } => "pattern",
        }
    }

    /// How to write a valid value, where the message alone does not say.
    pub const fn help(&self) -> Option<&'static str> {
        match self {
            Problem::InvalidTemporal { .. } => Some("dates are `YYYY-MM-DD`, date-times RFC 3339"),
            _ => None,
        }
    }
}

fn verb(length: bool) -> &'static str {
    if length { "have length" } else { "be" }
}
