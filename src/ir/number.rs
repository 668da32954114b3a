//! Human-readable instance numbers (`entities.<name>.number`, e.g. `"LEAD-{YYYY}-{0000}"`).

use chrono::{Datelike, NaiveDate};

/// A compiled number pattern: literal text, date tokens and exactly one counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumberPattern {
    /// The pattern as written; with the period it keys the counter.
    pub source: String,
    /// Its parts in order.
    pub parts: Vec<NumberPart>,
}

/// One part of a [`NumberPattern`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NumberPart {
    /// Text copied as is.
    Literal(String),
    /// `{YYYY}`: the four-digit year.
    Year,
    /// `{YY}`: the last two digits of the year.
    ShortYear,
    /// `{MM}`: the two-digit month.
    Month,
    /// `{DD}`: the two-digit day of the month.
    Day,
    /// `{0000}`: the counter, zero-padded to as many digits as there are zeros.
    Counter {
        /// The minimum number of digits.
        width: usize,
    },
}

/// A pattern rendered for one date: everything but the counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumberTemplate {
    /// The rendered date tokens, in order: the counter restarts whenever they change.
    pub period: String,
    /// The text before the counter.
    pub prefix: String,
    /// The text after the counter.
    pub suffix: String,
    /// The counter's minimum number of digits.
    pub width: usize,
}

impl NumberPattern {
    /// The pattern on `date`. The period is exactly the date text the number shows, so two
    /// numbers of one pattern differ in their date text or in their counter.
    pub fn template(&self, date: NaiveDate) -> NumberTemplate {
        let mut period = String::new();
        let mut prefix = String::new();
        let mut suffix = String::new();
        let mut width = 1;
        let mut after_counter = false;
        for part in &self.parts {
            let text = match part {
                NumberPart::Literal(text) => text.clone(),
                NumberPart::Year => format!("{:04}", date.year()),
                NumberPart::ShortYear => format!("{:02}", date.year().rem_euclid(100)),
                NumberPart::Month => format!("{:02}", date.month()),
                NumberPart::Day => format!("{:02}", date.day()),
                NumberPart::Counter { width: w } => {
                    width = *w;
                    after_counter = true;
                    continue;
                }
            };
            if !matches!(part, NumberPart::Literal(_)) {
                if !period.is_empty() {
                    period.push('-');
                }
                period.push_str(&text);
            }
            if after_counter { suffix.push_str(&text) } else { prefix.push_str(&text) }
        }
        NumberTemplate { period, prefix, suffix, width }
    }
}

impl NumberTemplate {
    /// The number with counter value `n`.
    pub fn render(&self, n: u64) -> String {
        format!("{}{:0width$}{}", self.prefix, n, self.suffix, width = self.width)
    }
}
