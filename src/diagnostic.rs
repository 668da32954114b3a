//! Diagnostics: what every front-end stage reports, as plain data.
//!
//! Stages never stop at the first problem: they return their result together with a
//! `Vec<Diagnostic>`. Rendering (miette, JSON, SARIF, …) happens once, in [`crate::report`].

pub use crate::codes::{Code, Severity};

/// A half-open byte range `start..end` into one source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    /// Byte offset of the first character.
    pub start: usize,
    /// Byte offset one past the last character.
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end` (byte offsets).
    pub const fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    /// The span shifted right by `offset` bytes (to move a sub-source span into its host).
    pub const fn shifted(self, offset: usize) -> Self {
        Self::new(self.start + offset, self.end + offset)
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Self {
        Self::new(self.start.min(other.start), self.end.max(other.end))
    }

    /// Length in bytes.
    pub const fn len(self) -> usize {
        self.end - self.start
    }

    /// Whether the span covers no bytes.
    pub const fn is_empty(self) -> bool {
        self.start >= self.end
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(span: Span) -> Self {
        miette::SourceSpan::new(span.start.into(), span.len())
    }
}

/// A span with a short message shown under the underlined source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// Where in the source.
    pub span: Span,
    /// What to say there (may be empty).
    pub message: String,
}

impl Label {
    /// A label at `span` saying `message`.
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        Self { span, message: message.into() }
    }
}

/// One finding: a stable code, a severity, a message, where, and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The rule that produced it; stable across releases.
    pub code: Code,
    /// Error, warning or note (defaults to the rule's severity).
    pub severity: Severity,
    /// One sentence, lower case start, no trailing period.
    pub message: String,
    /// The offending span, underlined.
    pub primary: Label,
    /// Related places, e.g. "stage declared here".
    pub secondary: Vec<Label>,
    /// How to fix it, e.g. a did-you-mean suggestion.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic for `code` at `span` with the rule's default severity.
    pub fn new(code: Code, span: Span, message: impl Into<String>) -> Self {
        Self {
            code,
            severity: code.severity(),
            message: message.into(),
            primary: Label::new(span, ""),
            secondary: Vec::new(),
            help: None,
        }
    }

    /// Sets the severity (e.g. a [`Severity::Note`] about what a rule left out).
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// Sets the text of the primary label.
    pub fn with_label(mut self, message: impl Into<String>) -> Self {
        self.primary.message = message.into();
        self
    }

    /// Adds a secondary label.
    pub fn with_secondary(mut self, span: Span, message: impl Into<String>) -> Self {
        self.secondary.push(Label::new(span, message));
        self
    }

    /// Sets the help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Sets the help line if there is one.
    pub fn with_help_opt(mut self, help: Option<String>) -> Self {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    /// Moves every span right by `offset` bytes (for sub-sources such as an expression in a JSON string).
    pub fn shifted(mut self, offset: usize) -> Self {
        self.primary.span = self.primary.span.shifted(offset);
        for label in &mut self.secondary {
            label.span = label.span.shifted(offset);
        }
        self
    }

    /// Whether this is an error (as opposed to a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Suggests the candidate closest to `name`, if any is close enough to be a likely typo.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(name, candidate), candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// The help line for an unknown name: a did-you-mean, or the list of what exists.
pub fn unknown_name_help<'a>(
    name: &str,
    kind: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
) -> Option<String> {
    if let Some(best) = did_you_mean(name, candidates.clone()) {
        return Some(format!("did you mean `{best}`?"));
    }
    let mut known: Vec<&str> = candidates.into_iter().collect();
    if known.is_empty() {
        return Some(format!("no {kind} is declared"));
    }
    known.sort_unstable();
    known.dedup();
    const SHOWN: usize = 8;
    let mut list = known.iter().take(SHOWN).map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
    if known.len() > SHOWN {
        list.push_str(&format!(" and {} more", known.len() - SHOWN));
    }
    let kinds = match kind.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{kind}s"),
    };
    Some(format!("declared {kinds}: {list}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let stages = ["new", "contacted", "qualified"];
        assert_eq!(did_you_mean("qualifed", stages), Some("qualified"));
        assert_eq!(did_you_mean("zzz", stages), None);
    }

    #[test]
    fn help_lists_candidates_when_nothing_is_close() {
        let help = unknown_name_help("zzz", "stage", ["b", "a"]).unwrap_or_default();
        assert_eq!(help, "declared stages: `a`, `b`");
    }
}
