//! Durations and dates as written in definitions.
//!
//! [`parse_duration`] accepts, with units in any letter case and whitespace around parts optional:
//!
//! | form | examples |
//! | --- | --- |
//! | number and unit name, singular or plural | `90 seconds`, `30 minutes`, `1 hour`, `2 days`, `1 week` |
//! | abbreviations | `45s`, `90 sec`, `30m`, `30 min`, `4h`, `4 hrs`, `2d`, `1w` |
//! | several parts, each unit at most once | `1 day 12 hours`, `1d 12h`, `1d12h`, `2 hours 30 minutes` |
//! | ISO 8601, weeks to seconds | `PT4H`, `P2D`, `P1W`, `P1DT12H`, `PT1H30M`, `PT90S` |
//!
//! Amounts are whole numbers (`1.5 days` is rejected: write `1 day 12 hours`), `m` means minutes,
//! and months and years are not units because their length varies. A duration must be positive and
//! at most 100 years ([`Duration::MAX`]), so that adding it to a timestamp cannot overflow.
//!
//! [`parse_date`] accepts calendar dates written strictly as `YYYY-MM-DD`.
//!
//! Errors carry a byte span within the text; [`DurationError::diagnostic`] and
//! [`DateError::diagnostic`] map it through [`JsonString::source_span`] to the definition file.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;

use crate::diagnostic::{Code, Diagnostic, Span, did_you_mean};
use crate::syntax::json::JsonString;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
const WEEK: u64 = 7 * DAY;

/// A positive span of time, in whole seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    seconds: u64,
}

impl Duration {
    /// The longest duration [`parse_duration`] accepts: 100 years of 365 days.
    pub const MAX: Duration = Duration { seconds: 36_500 * DAY };

    /// A duration of `seconds` seconds (not limited to [`Duration::MAX`]).
    pub const fn from_seconds(seconds: u64) -> Self {
        Self { seconds }
    }

    /// The length in seconds.
    pub const fn as_seconds(self) -> u64 {
        self.seconds
    }
}

impl From<Duration> for std::time::Duration {
    fn from(duration: Duration) -> Self {
        std::time::Duration::from_secs(duration.seconds)
    }
}

/// The canonical form: largest units first, e.g. `1 week 2 days`, `1 day 12 hours`, `90 seconds`
/// is `1 minute 30 seconds`; zero is `0 seconds`.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.seconds == 0 {
            return f.write_str("0 seconds");
        }
        let mut rest = self.seconds;
        let mut separator = "";
        for unit in &UNITS {
            let amount = rest / unit.seconds;
            rest %= unit.seconds;
            if amount > 0 {
                let name = if amount == 1 { unit.singular } else { unit.plural };
                write!(f, "{separator}{amount} {name}")?;
                separator = " ";
            }
        }
        Ok(())
    }
}

/// `2 days`, `1 day 12 hours`: a duration the way definitions write it.
pub fn in_words(duration: std::time::Duration) -> String {
    Duration::from_seconds(duration.as_secs()).to_string()
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_duration(text)
    }
}

/// Why a duration text is invalid; `span` is the offending byte range within the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// `""`, `"  "`.
    #[error("empty duration")]
    Empty {
        /// The whole text.
        span: Span,
    },
    /// `"hours"`, `"1 day and 2 hours"` (at `and`), `"P"`, `"PT"`.
    #[error("expected a number")]
    MissingNumber {
        /// The word in place of the number, or the empty span where it should be.
        span: Span,
    },
    /// `"2"`, `"1 day 12"`, `"PT4"`.
    #[error("missing unit after `{number}`")]
    MissingUnit {
        /// The number.
        span: Span,
        /// The number as written.
        number: String,
    },
    /// `"2 dayz"`, `"3 months"`, `"P1Y"`, `"P4H"` (hours before `T`).
    #[error("unknown unit `{unit}`")]
    UnknownUnit {
        /// The unit.
        span: Span,
        /// The unit as written.
        unit: String,
        /// Whether the text is in the ISO 8601 form.
        iso: bool,
    },
    /// `"1 hour 2 hours"`, `"PT1H1H"`.
    #[error("`{unit}` appears twice")]
    RepeatedUnit {
        /// The second occurrence.
        span: Span,
        /// The first occurrence.
        first: Span,
        /// The unit's plural name.
        unit: &'static str,
    },
    /// `"1.5 days"`, `"PT0.5H"`.
    #[error("fractional amounts are not supported")]
    Fraction {
        /// The number.
        span: Span,
    },
    /// `"0 days"`, `"PT0S"`.
    #[error("duration is zero")]
    Zero {
        /// The whole duration.
        span: Span,
    },
    /// `"101 years"` spelled in weeks, `"99999999999999999999 days"`.
    #[error("duration is longer than 100 years")]
    TooLong {
        /// The part that went over.
        span: Span,
    },
    /// `"-2 days"`, `"1 day, 2 hours"`, `"P1DT"` followed by `"D"`.
    #[error("unexpected `{found}` in duration")]
    Unexpected {
        /// The character.
        span: Span,
        /// The character found.
        found: char,
    },
}

impl DurationError {
    /// The offending byte range within the text.
    pub fn span(&self) -> Span {
        match self {
            Self::Empty { span }
            | Self::MissingNumber { span }
            | Self::MissingUnit { span, .. }
            | Self::UnknownUnit { span, .. }
            | Self::RepeatedUnit { span, .. }
            | Self::Fraction { span }
            | Self::Zero { span }
            | Self::TooLong { span }
            | Self::Unexpected { span, .. } => *span,
        }
    }

    /// How to fix it.
    pub fn help(&self) -> String {
        const EXAMPLE: &str = "write e.g. `2 days`, `4 hours`, `1d 12h` or `PT4H`";
        match self {
            Self::UnknownUnit { unit, iso: true, .. } => match unit.to_ascii_uppercase().as_str() {
                "Y" | "M" => "years and months vary in length; use days (`D`) or weeks (`W`)".to_owned(),
                "H" | "S" => "hours, minutes and seconds come after `T`, e.g. `PT4H`".to_owned(),
                "W" | "D" => "weeks and days come before `T`, e.g. `P2DT4H`".to_owned(),
                _ => "ISO 8601 durations use W and D, then T and H, M, S, e.g. `P1DT12H`".to_owned(),
            },
            Self::UnknownUnit { unit, .. } => {
                let lower = unit.to_lowercase();
                if ["month", "months", "mo", "year", "years", "y", "yr", "yrs"].contains(&lower.as_str()) {
                    return "months and years vary in length; use days or weeks".to_owned();
                }
                match did_you_mean(&lower, UNITS.iter().map(|unit| unit.plural)) {
                    Some(name) => format!("did you mean `{name}`?"),
                    None => {
                        "the units are seconds, minutes, hours, days and weeks (or s, m, h, d, w)".to_owned()
                    }
                }
            }
            Self::MissingUnit { number, .. } => format!("add a unit, e.g. `{number} hours`"),
            Self::RepeatedUnit { .. } => "add the amounts up into one part".to_owned(),
            Self::Fraction { .. } => "use a smaller unit, e.g. `1 day 12 hours` or `90 minutes`".to_owned(),
            Self::Zero { .. } => "a duration must be longer than zero".to_owned(),
            Self::TooLong { .. } => "use a shorter duration".to_owned(),
            Self::Unexpected { found: '-', .. } => "durations cannot be negative".to_owned(),
            Self::Empty { .. } | Self::MissingNumber { .. } | Self::Unexpected { .. } => EXAMPLE.to_owned(),
        }
    }

    /// A [`Code::InvalidDuration`] diagnostic pointing into `literal`, the string the text came from.
    pub fn diagnostic(&self, literal: &JsonString) -> Diagnostic {
        let span =
            if matches!(self, Self::Empty { .. }) { literal.span } else { literal.source_span(self.span()) };
        Diagnostic::new(Code::InvalidDuration, span, self.to_string()).with_help(self.help())
    }
}

/// Parses a duration in one of the forms listed in the [module documentation](self).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let start = text.len() - text.trim_start().len();
    let body = text.trim();
    if body.is_empty() {
        return Err(DurationError::Empty { span: Span::new(0, text.len()) });
    }
    let mut cursor = Cursor { text, at: start };
    let iso = body.starts_with(['P', 'p'])
        && body
            .get(1..)
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit() || c == 'T' || c == 't'));
    let seconds = if iso { cursor.iso()? } else { cursor.human()? };
    let span = Span::new(start, start + body.len());
    match seconds {
        0 => Err(DurationError::Zero { span }),
        seconds => Ok(Duration { seconds }),
    }
}

/// Why a date text is invalid; `span` is the offending byte range within the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DateError {
    /// `"2024-1-5"`, `"05/01/2024"`, `"2024-01-05T10:00"`.
    #[error("expected a date as YYYY-MM-DD")]
    Format {
        /// The whole text.
        span: Span,
    },
    /// `"2024-13-01"` (at `13`), `"2023-02-29"` (at `29`).
    #[error("{date} is not a date")]
    NoSuchDate {
        /// The month or day that does not exist.
        span: Span,
        /// The text.
        date: String,
    },
}

impl DateError {
    /// The offending byte range within the text.
    pub fn span(&self) -> Span {
        match self {
            Self::Format { span } | Self::NoSuchDate { span, .. } => *span,
        }
    }

    /// A [`Code::InvalidDateRange`] diagnostic pointing into `literal`, the string the text came from.
    pub fn diagnostic(&self, literal: &JsonString) -> Diagnostic {
        let diagnostic =
            Diagnostic::new(Code::InvalidDateRange, literal.source_span(self.span()), self.to_string());
        match self {
            Self::Format { .. } => diagnostic.with_help("write e.g. `2024-03-31`"),
            Self::NoSuchDate { .. } => diagnostic,
        }
    }
}

/// Parses a calendar date written exactly as `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<NaiveDate, DateError> {
    let format = || DateError::Format { span: Span::new(0, text.len()) };
    let bytes = text.as_bytes();
    let shape = bytes.len() == 10
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| if i == 4 || i == 7 { *b == b'-' } else { b.is_ascii_digit() });
    if !shape {
        return Err(format());
    }
    let field = |range: std::ops::Range<usize>| text.get(range).and_then(|digits| digits.parse::<u32>().ok());
    let (Some(year), Some(month), Some(day)) = (field(0..4), field(5..7), field(8..10)) else {
        return Err(format());
    };
    let no_such = |span: Span| DateError::NoSuchDate { span, date: text.to_owned() };
    if !(1..=12).contains(&month) {
        return Err(no_such(Span::new(5, 7)));
    }
    i32::try_from(year)
        .ok()
        .and_then(|year| NaiveDate::from_ymd_opt(year, month, day))
        .ok_or_else(|| no_such(Span::new(8, 10)))
}

/// A unit of the human form: its length, its canonical names and every spelling accepted.
struct Unit {
    seconds: u64,
    singular: &'static str,
    plural: &'static str,
    names: &'static [&'static str],
}

/// Largest first, which is the order [`Duration`]'s `Display` prints.
const UNITS: [Unit; 5] = [
    Unit { seconds: WEEK, singular: "week", plural: "weeks", names: &["w", "wk", "wks", "week", "weeks"] },
    Unit { seconds: DAY, singular: "day", plural: "days", names: &["d", "day", "days"] },
    Unit { seconds: HOUR, singular: "hour", plural: "hours", names: &["h", "hr", "hrs", "hour", "hours"] },
    Unit {
        seconds: MINUTE,
        singular: "minute",
        plural: "minutes",
        names: &["m", "min", "mins", "minute", "minutes"],
    },
    Unit {
        seconds: 1,
        singular: "second",
        plural: "seconds",
        names: &["s", "sec", "secs", "second", "seconds"],
    },
];

/// A position in the text being parsed.
struct Cursor<'t> {
    text: &'t str,
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.text.get(self.at..).and_then(|rest| rest.chars().next())
    }

    /// Consumes the longest run of characters satisfying `accept`.
    fn take_while(&mut self, accept: impl Fn(char) -> bool) -> Span {
        let rest = self.text.get(self.at..).unwrap_or_default();
        let len = rest.find(|c: char| !accept(c)).unwrap_or(rest.len());
        let span = Span::new(self.at, self.at + len);
        self.at += len;
        span
    }

    fn slice(&self, span: Span) -> &str {
        self.text.get(span.start..span.end).unwrap_or_default()
    }

    fn unexpected(&self, found: char) -> DurationError {
        DurationError::Unexpected { span: Span::new(self.at, self.at + found.len_utf8()), found }
    }

    /// A whole number; the cursor is on its first digit.
    fn number(&mut self) -> Result<(u64, Span), DurationError> {
        let span = self.take_while(|c| c.is_ascii_digit());
        let after_point = self.text.get(self.at..).and_then(|rest| rest.strip_prefix('.'));
        if after_point.is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit())) {
            self.at += 1;
            let fraction = self.take_while(|c| c.is_ascii_digit());
            return Err(DurationError::Fraction { span: span.to(fraction) });
        }
        // Only digits were taken, so the one failure is overflow.
        let number = self.slice(span).parse().map_err(|_| DurationError::TooLong { span })?;
        Ok((number, span))
    }

    /// `1 day 12 hours`, `1d12h`, …
    fn human(&mut self) -> Result<u64, DurationError> {
        let mut total = 0u64;
        let mut seen: [Option<Span>; UNITS.len()] = [None; UNITS.len()];
        loop {
            self.take_while(char::is_whitespace);
            let Some(next) = self.peek() else { return Ok(total) };
            if next.is_alphabetic() {
                return Err(DurationError::MissingNumber { span: self.take_while(char::is_alphabetic) });
            }
            if !next.is_ascii_digit() {
                return Err(self.unexpected(next));
            }
            let (amount, number) = self.number()?;
            self.take_while(char::is_whitespace);
            let word = self.take_while(char::is_alphabetic);
            let name = self.slice(word);
            if name.is_empty() {
                return Err(DurationError::MissingUnit {
                    span: number,
                    number: self.slice(number).to_owned(),
                });
            }
            let Some(index) =
                UNITS.iter().position(|unit| unit.names.iter().any(|n| n.eq_ignore_ascii_case(name)))
            else {
                return Err(DurationError::UnknownUnit { span: word, unit: name.to_owned(), iso: false });
            };
            if let Some(first) = seen.get_mut(index).and_then(|slot| slot.replace(word)) {
                return Err(DurationError::RepeatedUnit { span: word, first, unit: UNITS[index].plural });
            }
            total = add(total, amount, UNITS[index].seconds)
                .ok_or(DurationError::TooLong { span: number.to(word) })?;
        }
    }

    /// `P1DT12H`, …; the cursor is on the `P`.
    fn iso(&mut self) -> Result<u64, DurationError> {
        // Designators in the order ISO 8601 requires; `M` is minutes only after `T`.
        const DESIGNATORS: [(bool, char, u64, &str); 5] = [
            (false, 'W', WEEK, "weeks"),
            (false, 'D', DAY, "days"),
            (true, 'H', HOUR, "hours"),
            (true, 'M', MINUTE, "minutes"),
            (true, 'S', 1, "seconds"),
        ];
        self.at += 1;
        let mut in_time = false;
        let mut total = 0u64;
        let mut last: Option<(usize, Span)> = None;
        while let Some(next) = self.peek() {
            if next.eq_ignore_ascii_case(&'T') && !in_time {
                in_time = true;
                self.at += 1;
                if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    return Err(DurationError::MissingNumber { span: Span::new(self.at, self.at) });
                }
                continue;
            }
            if !next.is_ascii_digit() {
                return Err(self.unexpected(next));
            }
            let (amount, number) = self.number()?;
            let Some(designator) = self.peek().filter(char::is_ascii_alphabetic) else {
                return Err(DurationError::MissingUnit {
                    span: number,
                    number: self.slice(number).to_owned(),
                });
            };
            let span = Span::new(self.at, self.at + 1);
            self.at += 1;
            let found = DESIGNATORS
                .iter()
                .position(|&(time, letter, ..)| time == in_time && letter.eq_ignore_ascii_case(&designator));
            let Some(index) = found else {
                return Err(DurationError::UnknownUnit { span, unit: designator.to_string(), iso: true });
            };
            let (_, _, seconds, name) = DESIGNATORS[index];
            match last {
                Some((previous, first)) if previous == index => {
                    return Err(DurationError::RepeatedUnit { span, first, unit: name });
                }
                Some((previous, _)) if previous > index => {
                    return Err(DurationError::Unexpected { span, found: designator });
                }
                _ => last = Some((index, span)),
            }
            total = add(total, amount, seconds).ok_or(DurationError::TooLong { span: number.to(span) })?;
        }
        if last.is_none() {
            return Err(DurationError::MissingNumber { span: Span::new(self.at, self.at) });
        }
        Ok(total)
    }
}

/// `total + amount × unit`, if that stays within [`Duration::MAX`].
fn add(total: u64, amount: u64, unit: u64) -> Option<u64> {
    amount
        .checked_mul(unit)
        .and_then(|part| total.checked_add(part))
        .filter(|&sum| sum <= Duration::MAX.seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(text: &str) -> u64 {
        match parse_duration(text) {
            Ok(duration) => duration.as_seconds(),
            Err(error) => panic!("{text:?}: {error}"),
        }
    }

    /// Asserts that `text` fails with `message`, underlining `underlined`.
    fn check_error(text: &str, message: &str, underlined: &str) {
        let error = match parse_duration(text) {
            Ok(duration) => panic!("{text:?} parsed as {duration}"),
            Err(error) => error,
        };
        let span = error.span();
        assert_eq!(error.to_string(), message, "{text:?}");
        assert_eq!(&text[span.start..span.end], underlined, "{text:?}");
    }

    #[test]
    fn long_forms() {
        assert_eq!(seconds("90 seconds"), 90);
        assert_eq!(seconds("1 second"), 1);
        assert_eq!(seconds("30 minutes"), 30 * MINUTE);
        assert_eq!(seconds("1 minute"), MINUTE);
        assert_eq!(seconds("4 hours"), 4 * HOUR);
        assert_eq!(seconds("24 hours"), DAY);
        assert_eq!(seconds("1 hour"), HOUR);
        assert_eq!(seconds("2 days"), 2 * DAY);
        assert_eq!(seconds("1 day"), DAY);
        assert_eq!(seconds("1 week"), WEEK);
        assert_eq!(seconds("3 weeks"), 3 * WEEK);
        assert_eq!(seconds("2 Days"), 2 * DAY);
        assert_eq!(seconds("  2 days "), 2 * DAY);
    }

    #[test]
    fn short_forms() {
        assert_eq!(seconds("45s"), 45);
        assert_eq!(seconds("30m"), 30 * MINUTE);
        assert_eq!(seconds("4h"), 4 * HOUR);
        assert_eq!(seconds("2d"), 2 * DAY);
        assert_eq!(seconds("1w"), WEEK);
        assert_eq!(seconds("90 sec"), 90);
        assert_eq!(seconds("30 mins"), 30 * MINUTE);
        assert_eq!(seconds("4 hrs"), 4 * HOUR);
        assert_eq!(seconds("2 wks"), 2 * WEEK);
    }

    #[test]
    fn compound_forms() {
        assert_eq!(seconds("1 day 12 hours"), DAY + 12 * HOUR);
        assert_eq!(seconds("1d 12h"), DAY + 12 * HOUR);
        assert_eq!(seconds("1d12h"), DAY + 12 * HOUR);
        assert_eq!(seconds("2 hours 30 minutes 15 seconds"), 2 * HOUR + 30 * MINUTE + 15);
        assert_eq!(seconds("1w 0d 1s"), WEEK + 1);
    }

    #[test]
    fn iso_8601_forms() {
        assert_eq!(seconds("PT4H"), 4 * HOUR);
        assert_eq!(seconds("P2D"), 2 * DAY);
        assert_eq!(seconds("P1W"), WEEK);
        assert_eq!(seconds("P1DT12H"), DAY + 12 * HOUR);
        assert_eq!(seconds("PT1H30M"), HOUR + 30 * MINUTE);
        assert_eq!(seconds("PT90S"), 90);
        assert_eq!(seconds("p1dt2m"), DAY + 2 * MINUTE);
    }

    #[test]
    fn errors() {
        let cases = [
            ("", "empty duration", ""),
            ("   ", "empty duration", "   "),
            ("days", "expected a number", "days"),
            ("1 day and 2 hours", "expected a number", "and"),
            ("2", "missing unit after `2`", "2"),
            ("1 day 12", "missing unit after `12`", "12"),
            ("2 dayz", "unknown unit `dayz`", "dayz"),
            ("3 months", "unknown unit `months`", "months"),
            ("1 hour 2 hours", "`hours` appears twice", "hours"),
            ("1.5 days", "fractional amounts are not supported", "1.5"),
            ("0 days", "duration is zero", "0 days"),
            (" 0s 0m ", "duration is zero", "0s 0m"),
            ("99999999999999999999 days", "duration is longer than 100 years", "99999999999999999999"),
            ("5300 weeks", "duration is longer than 100 years", "5300 weeks"),
            ("-2 days", "unexpected `-` in duration", "-"),
            ("1 day, 2 hours", "unexpected `,` in duration", ","),
            ("P", "expected a number", "P"),
            ("PT", "expected a number", ""),
            ("PT4", "missing unit after `4`", "4"),
            ("P1Y", "unknown unit `Y`", "Y"),
            ("P4H", "unknown unit `H`", "H"),
            ("PT1D", "unknown unit `D`", "D"),
            ("PT1H1H", "`hours` appears twice", "H"),
            ("PT1M1H", "unexpected `H` in duration", "H"),
            ("PT0.5H", "fractional amounts are not supported", "0.5"),
            ("PT0S", "duration is zero", "PT0S"),
            ("P1D 2H", "unexpected ` ` in duration", " "),
        ];
        for (text, message, underlined) in cases {
            check_error(text, message, underlined);
        }
    }

    #[test]
    fn error_help() {
        let help = |text: &str| parse_duration(text).err().map(|error| error.help()).unwrap_or_default();
        assert_eq!(help("2 dayz"), "did you mean `days`?");
        assert_eq!(help("2 hourss"), "did you mean `hours`?");
        assert_eq!(help("3 months"), "months and years vary in length; use days or weeks");
        assert_eq!(
            help("2 fortnights"),
            "the units are seconds, minutes, hours, days and weeks (or s, m, h, d, w)"
        );
        assert_eq!(help("P4H"), "hours, minutes and seconds come after `T`, e.g. `PT4H`");
        assert_eq!(help("-2 days"), "durations cannot be negative");
    }

    #[test]
    fn display_is_canonical() {
        let display = |text: &str| parse_duration(text).map(|d| d.to_string()).unwrap_or_default();
        assert_eq!(display("36 hours"), "1 day 12 hours");
        assert_eq!(display("90s"), "1 minute 30 seconds");
        assert_eq!(display("P9D"), "1 week 2 days");
        assert_eq!(display("1 day"), "1 day");
        assert_eq!(Duration::from_seconds(0).to_string(), "0 seconds");
        assert_eq!(Duration::MAX.to_string(), "5214 weeks 2 days");
        for text in ["1 week 2 days 3 hours 4 minutes 5 seconds", "2 days", "1 hour 1 minute"] {
            assert_eq!(display(text), text);
        }
    }

    #[test]
    fn ordering_and_conversions() {
        assert!(Duration::from_seconds(DAY) > Duration::from_seconds(23 * HOUR));
        assert_eq!("4h".parse::<Duration>(), Ok(Duration::from_seconds(4 * HOUR)));
        assert_eq!(std::time::Duration::from(Duration::from_seconds(5)), std::time::Duration::from_secs(5));
        assert_eq!(seconds("36500 days"), Duration::MAX.as_seconds());
    }

    #[test]
    fn in_words_reads_like_a_definition() {
        assert_eq!(in_words(std::time::Duration::from_secs(2 * DAY)), "2 days");
        assert_eq!(in_words(std::time::Duration::from_secs(DAY + 12 * HOUR)), "1 day 12 hours");
    }

    #[test]
    fn diagnostics_point_into_the_json_file() {
        let source = r#"{"breach": "2 dayz"}"#;
        let (node, _) = crate::syntax::json::parse(source);
        let literal = node.and_then(|n| n.get("breach").and_then(|v| v.as_string().cloned())).unwrap();
        let diagnostic = parse_duration(&literal.value).err().map(|e| e.diagnostic(&literal)).unwrap();
        assert_eq!(diagnostic.code, Code::InvalidDuration);
        assert_eq!(&source[diagnostic.primary.span.start..diagnostic.primary.span.end], "dayz");
        assert_eq!(diagnostic.help.as_deref(), Some("did you mean `days`?"));
    }

    #[test]
    fn dates_are_strict() {
        assert_eq!(parse_date("2024-02-29"), Ok(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()));
        assert_eq!(parse_date("0001-01-01"), Ok(NaiveDate::from_ymd_opt(1, 1, 1).unwrap()));
        for text in
            ["2024-1-05", "2024/01/05", "24-01-05", "2024-01-05T10:00", " 2024-01-05", "", "２０２４-01-05"]
        {
            assert_eq!(
                parse_date(text),
                Err(DateError::Format { span: Span::new(0, text.len()) }),
                "{text:?}"
            );
        }
        let no_such = |text: &str, span: Span| Err(DateError::NoSuchDate { span, date: text.to_owned() });
        assert_eq!(parse_date("2023-02-29"), no_such("2023-02-29", Span::new(8, 10)));
        assert_eq!(parse_date("2024-13-01"), no_such("2024-13-01", Span::new(5, 7)));
        assert_eq!(parse_date("2024-00-10"), no_such("2024-00-10", Span::new(5, 7)));
        assert_eq!(parse_date("2024-04-31"), no_such("2024-04-31", Span::new(8, 10)));
        assert_eq!(parse_date("2024-13-01").unwrap_err().to_string(), "2024-13-01 is not a date");
    }
}
