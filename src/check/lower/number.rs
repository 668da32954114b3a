//! `entities.<name>.number`: the human-readable number pattern (CRM0208).

use crate::check::locate::ptr;
use crate::check::lower::Cx;
use crate::diagnostic::{Code, Diagnostic};
use crate::ir::{NumberPart, NumberPattern};

/// The widest counter: `u64` has 20 digits, and a pattern wider than this is surely a typo.
const MAX_WIDTH: usize = 18;

impl Cx<'_, '_> {
    /// The entity's compiled pattern, or `None` (reported) when it is invalid.
    pub(super) fn number_pattern(&mut self, entity_name: &str, source: &str) -> Option<NumberPattern> {
        match parse(source) {
            Ok(pattern) => Some(pattern),
            Err((message, help)) => {
                self.push(
                    Diagnostic::new(
                        Code::InvalidNumberPattern,
                        self.locate.value(&ptr!["entities", entity_name, "number"]),
                        format!("invalid number pattern: {message}"),
                    )
                    .with_label("invalid pattern")
                    .with_help(help),
                );
                None
            }
        }
    }
}

const TOKENS_HELP: &str = "use text with `{YYYY}`, `{YY}`, `{MM}`, `{DD}` and exactly one counter such as `{0000}`, e.g. `LEAD-{YYYY}-{0000}`";

/// Parses a pattern; the error is a message and a help line.
fn parse(source: &str) -> Result<NumberPattern, (String, String)> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut counters = 0;
    let mut rest = source;
    while let Some(c) = rest.chars().next() {
        match c {
            '{' => {
                let Some(end) = rest.find('}') else {
                    return Err(("`{` is never closed".to_owned(), TOKENS_HELP.to_owned()));
                };
                let token = &rest[1..end];
                let part = match token {
                    "YYYY" => NumberPart::Year,
                    "YY" => NumberPart::ShortYear,
                    "MM" => NumberPart::Month,
                    "DD" => NumberPart::Day,
                    zeros if !zeros.is_empty() && zeros.bytes().all(|b| b == b'0') => {
                        if zeros.len() > MAX_WIDTH {
                            return Err((
                                format!("the counter `{{{zeros}}}` has {} digits", zeros.len()),
                                format!("a counter has at most {MAX_WIDTH} digits"),
                            ));
                        }
                        counters += 1;
                        NumberPart::Counter { width: zeros.len() }
                    }
                    other => {
                        return Err((format!("unknown token `{{{other}}}`"), TOKENS_HELP.to_owned()));
                    }
                };
                if !literal.is_empty() {
                    parts.push(NumberPart::Literal(std::mem::take(&mut literal)));
                }
                parts.push(part);
                rest = &rest[end + 1..];
            }
            '}' => return Err(("`}` without a matching `{`".to_owned(), TOKENS_HELP.to_owned())),
            c if c.is_control() => {
                return Err(("the pattern contains a control character".to_owned(), TOKENS_HELP.to_owned()));
            }
            c => {
                literal.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    if !literal.is_empty() {
        parts.push(NumberPart::Literal(literal));
    }
    match counters {
        1 => Ok(NumberPattern { source: source.to_owned(), parts }),
        0 => Err((
            "the pattern has no counter".to_owned(),
            "add a zero-padded counter such as `{0000}`".to_owned(),
        )),
        n => Err((
            format!("the pattern has {n} counters"),
            "keep exactly one counter such as `{0000}`".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::parse;

    fn render(pattern: &str, y: i32, m: u32, d: u32, n: u64) -> (String, String) {
        let date = NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
        let template = parse(pattern).map_err(|e| e.0).unwrap_or_else(|e| panic!("{e}")).template(date);
        (template.render(n), template.period)
    }

    #[test]
    fn tokens_render_and_key_the_period() {
        assert_eq!(render("LEAD-{YYYY}-{0000}", 2026, 3, 9, 7), ("LEAD-2026-0007".into(), "2026".into()));
        assert_eq!(
            render("TCK-{YYYY}{MM}-{00000}", 2026, 3, 9, 12),
            ("TCK-202603-00012".into(), "2026-03".into())
        );
        assert_eq!(render("{0}/{YY}.{DD}", 2009, 1, 31, 123), ("123/09.31".into(), "09-31".into()));
        assert_eq!(render("N{00}", 2026, 1, 1, 5), ("N05".into(), String::new()));
    }

    #[test]
    fn invalid_patterns_say_why() {
        let error = |p: &str| parse(p).err().map(|e| e.0).unwrap_or_default();
        assert_eq!(error("LEAD-{YYYY}"), "the pattern has no counter");
        assert_eq!(error("{000}-{00}"), "the pattern has 2 counters");
        assert_eq!(error("X-{Q}-{00}"), "unknown token `{Q}`");
        assert_eq!(error("X-{000"), "`{` is never closed");
        assert_eq!(error("X}-{000}"), "`}` without a matching `{`");
        assert_eq!(error("{0000000000000000000}"), "the counter `{0000000000000000000}` has 19 digits");
    }
}
