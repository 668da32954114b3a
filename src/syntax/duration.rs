//! Durations and dates as written in definitions.
//!
//! Accepted duration forms (case-insensitive, whitespace between parts optional):
//! - a number and a unit: `"2 days"`, `"24 hours"`, `"30 minutes"`, `"1 week"`, `"90 seconds"`,
//!   singular or plural;
//! - short units: `"2d"`, `"4h"`, `"30m"`, `"1w"`, `"45s"` (also `min`, `mins`, `hr`, `hrs`, `sec`);
//! - several parts added up: `"1 day 12 hours"`, `"1d 12h"`.
//!
//! A duration must be positive. Numbers are whole; totals beyond `u64` seconds are refused.
//! Dates are strict ISO-8601 calendar dates, `YYYY-MM-DD`.

use std::fmt;

use chrono::NaiveDate;

use crate::diagnostic::{Span, did_you_mean};

/// A positive length of time, in whole seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    seconds: u64,
}

impl Duration {
    /// A duration of `seconds` seconds.
    pub const fn from_seconds(seconds: u64) -> Self {
        Self { seconds }
    }

    /// The length in seconds.
    pub const fn as_seconds(self) -> u64 {
        self.seconds
    }
}

const UNITS: &[(&str, u64)] = &[("week", 604_800), ("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1)];

/// Prints the canonical long form, largest units first: `1 day 12 hours`.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.seconds == 0 {
            return f.write_str("0 seconds");
        }
        let mut rest = self.seconds;
        let mut first = true;
        for &(unit, size) in UNITS {
            let count = rest / size;
            if count == 0 {
                continue;
            }
            rest %= size;
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            write!(f, "{count} {unit}{}", if count == 1 { "" } else { "s" })?;
        }
        Ok(())
    }
}

/// Why a duration could not be read; the span is a byte range within the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// `""` or `"   "`.
    #[error("the duration is empty")]
    Empty {
        /// Where.
        span: Span,
    },
    /// `"days"`: a unit without a number before it.
    #[error("expected a number")]
    MissingNumber {
        /// Where.
        span: Span,
    },
    /// `"2"`: a number without a unit.
    #[error("expected a unit after the number (days, hours, minutes…)")]
    MissingUnit {
        /// Where.
        span: Span,
    },
    /// `"2 fortnights"`, `"3 dais"`.
    #[error("unknown unit `{unit}`{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The closest known unit.
        suggestion: Option<String>,
        /// Where.
        span: Span,
    },
    /// `"0 hours"`.
    #[error("a duration must be longer than zero")]
    Zero {
        /// Where.
        span: Span,
    },
    /// `"99999999999999999999 weeks"`.
    #[error("the duration is too long")]
    Overflow {
        /// Where.
        span: Span,
    },
    /// `"2.5 days"`, `"-1 day"`.
    #[error("expected a whole number")]
    NotWhole {
        /// Where.
        span: Span,
    },
}

impl DurationError {
    /// The offending byte range within the text.
    pub fn span(&self) -> Span {
        match self {
            DurationError::Empty { span }
            | DurationError::MissingNumber { span }
            | DurationError::MissingUnit { span }
            | DurationError::UnknownUnit { span, .. }
            | DurationError::Zero { span }
            | DurationError::Overflow { span }
            | DurationError::NotWhole { span } => *span,
        }
    }
}

fn unit_seconds(unit: &str) -> Option<u64> {
    let seconds = match unit {
        "w" | "wk" | "wks" | "week" | "weeks" => 604_800,
        "d" | "day" | "days" => 86_400,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        _ => return None,
    };
    Some(seconds)
}

/// Parses a duration such as `"2 days"`, `"4h"` or `"1 day 12 hours"`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let bytes = text.as_bytes();
    let mut at = 0;
    let mut total: u64 = 0;
    let mut parts = 0;
    loop {
        while at < bytes.len() && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        if at == bytes.len() {
            break;
        }
        let number_start = at;
        while at < bytes.len() && bytes[at].is_ascii_digit() {
            at += 1;
        }
        if at == number_start {
            // Whitespace was skipped, so the word here is at least one character long.
            let span = Span::new(at, word_end(bytes, at));
            return Err(if bytes[at] == b'-' || bytes[at] == b'+' {
                DurationError::NotWhole { span }
            } else {
                DurationError::MissingNumber { span }
            });
        }
        if at < bytes.len() && (bytes[at] == b'.' || bytes[at] == b',') {
            let end = word_end(bytes, at);
            return Err(DurationError::NotWhole { span: Span::new(number_start, end) });
        }
        let number_span = Span::new(number_start, at);
        let count: u64 =
            text[number_start..at].parse().map_err(|_| DurationError::Overflow { span: number_span })?;
        while at < bytes.len() && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        let unit_start = at;
        while at < bytes.len() && bytes[at].is_ascii_alphabetic() {
            at += 1;
        }
        if at == unit_start {
            return Err(DurationError::MissingUnit { span: number_span });
        }
        let unit = text[unit_start..at].to_ascii_lowercase();
        let unit_span = Span::new(unit_start, at);
        let Some(size) = unit_seconds(&unit) else {
            let known = ["weeks", "days", "hours", "minutes", "seconds"];
            let suggestion = did_you_mean(&unit, known).map(str::to_owned);
            return Err(DurationError::UnknownUnit { unit, suggestion, span: unit_span });
        };
        let part = count.checked_mul(size).ok_or(DurationError::Overflow { span: Span::new(number_start, at) })?;
        total = total.checked_add(part).ok_or(DurationError::Overflow { span: Span::new(0, text.len()) })?;
        parts += 1;
        if at < bytes.len() && !bytes[at].is_ascii_whitespace() && !bytes[at].is_ascii_digit() {
            let end = word_end(bytes, at);
            let unit = text[unit_start..end].to_owned();
            return Err(DurationError::UnknownUnit { unit, suggestion: None, span: Span::new(unit_start, end) });
        }
    }
    if parts == 0 {
        return Err(DurationError::Empty { span: Span::new(0, text.len()) });
    }
    if total == 0 {
        return Err(DurationError::Zero { span: Span::new(0, text.len()) });
    }
    Ok(Duration::from_seconds(total))
}

/// End of the run of non-space characters starting at `at`, on a char boundary.
fn word_end(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && !bytes[at].is_ascii_whitespace() {
        at += 1;
    }
    at
}

/// Why a date could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected a date as YYYY-MM-DD{}", if *.exists_not { " (no such day)" } else { "" })]
pub struct DateError {
    /// Whether the text has the right shape but names no real day (`2026-02-30`).
    exists_not: bool,
}

/// Parses a strict ISO-8601 calendar date, `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<NaiveDate, DateError> {
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    if !shaped {
        return Err(DateError { exists_not: false });
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| DateError { exists_not: true })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(text: &str) -> u64 {
        parse_duration(text).map(Duration::as_seconds).unwrap_or(0)
    }

    #[test]
    fn seed_forms() {
        assert_eq!(secs("2 days"), 172_800);
        assert_eq!(secs("24 hours"), 86_400);
        assert_eq!(secs("4 hours"), 14_400);
        assert_eq!(secs("1 week"), 604_800);
        assert_eq!(secs("30 minutes"), 1_800);
        assert_eq!(secs("1 second"), 1);
    }

    #[test]
    fn short_and_compound_forms() {
        assert_eq!(secs("2d"), 172_800);
        assert_eq!(secs("4h"), 14_400);
        assert_eq!(secs("30m"), 1_800);
        assert_eq!(secs("1w"), 604_800);
        assert_eq!(secs("45s"), 45);
        assert_eq!(secs("1d 12h"), 129_600);
        assert_eq!(secs("1 day 12 hours"), 129_600);
        assert_eq!(secs("  2 HOURS "), 7_200);
    }

    #[test]
    fn display_is_canonical() {
        assert_eq!(Duration::from_seconds(129_600).to_string(), "1 day 12 hours");
        assert_eq!(Duration::from_seconds(3_600).to_string(), "1 hour");
        assert_eq!(Duration::from_seconds(1_209_600).to_string(), "2 weeks");
    }

    #[test]
    fn errors_point_at_the_problem() {
        assert!(matches!(parse_duration(""), Err(DurationError::Empty { .. })));
        assert!(matches!(parse_duration("days"), Err(DurationError::MissingNumber { .. })));
        assert!(matches!(parse_duration("2"), Err(DurationError::MissingUnit { .. })));
        assert!(matches!(parse_duration("0 hours"), Err(DurationError::Zero { .. })));
        assert!(matches!(parse_duration("2.5 days"), Err(DurationError::NotWhole { .. })));
        assert!(matches!(parse_duration("-1 day"), Err(DurationError::NotWhole { .. })));
        assert!(matches!(parse_duration("99999999999999999999 weeks"), Err(DurationError::Overflow { .. })));
        assert!(matches!(parse_duration("9999999999999999 weeks"), Err(DurationError::Overflow { .. })));
        match parse_duration("3 dais") {
            Err(DurationError::UnknownUnit { unit, suggestion, span }) => {
                assert_eq!(unit, "dais");
                assert_eq!(suggestion.as_deref(), Some("days"));
                assert_eq!(span, Span::new(2, 6));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(parse_duration("2 days!"), Err(DurationError::UnknownUnit { .. })));
        assert!(matches!(parse_duration("2 dåys"), Err(DurationError::UnknownUnit { .. })));
    }

    #[test]
    fn dates_are_strict() {
        assert!(parse_date("2026-12-24").is_ok());
        assert!(parse_date("2026-2-24").is_err());
        assert!(parse_date("2026-02-30").is_err());
        assert!(parse_date("24.12.2026").is_err());
        assert!(parse_date("2026-12-24T00:00:00Z").is_err());
    }
}
