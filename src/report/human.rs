//! The human format: a rustc-style header (`error[CRM0101]: message`), then miette's annotated
//! snippet of an [`Excerpt`] of the file and the help line.

use std::fmt;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, SourceCode};

use super::Report;
use super::excerpt::Excerpt;
use super::index::LineIndex;
use crate::diagnostic::{Diagnostic, Severity, Span};

/// The most characters of a message, label or help line printed; the rest is cut with `...`
/// (a name in a message can be as long as the file).
const MAX_TEXT: usize = 500;

/// Renders every finding of `reports`, each followed by an empty line, in time linear in the
/// number of findings plus the size of the files.
pub(super) fn findings(reports: &[Report], theme: GraphicalTheme, out: &mut impl fmt::Write) -> fmt::Result {
    let styles = theme.styles.clone();
    // A fixed width keeps the output identical whatever terminal the tests or CI run in.
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100).with_context_lines(1);
    let mut body = String::new();
    for report in reports {
        let index = LineIndex::new(&report.source);
        for diagnostic in &report.diagnostics {
            let style = match diagnostic.severity {
                Severity::Error => styles.error,
                Severity::Warning => styles.warning,
                Severity::Note => styles.advice,
            };
            let header = format!("{}[{}]", diagnostic.severity, diagnostic.code);
            writeln!(out, "{}: {}", style.style(header), super::one_line(&shorten(&diagnostic.message)))?;
            body.clear();
            handler.render_report(&mut body, &Snippet::new(&index, &report.path, diagnostic))?;
            // miette's first line is the (empty) message the header above replaces.
            let body = body.split_once('\n').map_or("", |(_, rest)| rest);
            out.write_str(body)?;
            writeln!(out)?;
        }
    }
    Ok(())
}

/// `text`, cut to [`MAX_TEXT`] characters.
fn shorten(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(MAX_TEXT) {
        Some((at, _)) => format!("{}...", &text[..at]).into(),
        None => text.into(),
    }
}

/// One finding as miette sees it: no message (the header says it), the labels on an excerpt.
#[derive(Debug)]
struct Snippet {
    severity: Severity,
    help: Option<String>,
    labels: Vec<LabeledSpan>,
    excerpt: Excerpt,
}

impl Snippet {
    fn new(index: &LineIndex<'_>, path: &str, diagnostic: &Diagnostic) -> Self {
        let spans: Vec<Span> = std::iter::once(diagnostic.primary.span)
            .chain(diagnostic.secondary.iter().map(|label| label.span))
            .collect();
        let (excerpt, spans) = Excerpt::new(index, path, &spans);
        let text = |message: &str| (!message.is_empty()).then(|| shorten(message).into_owned());
        let labels = std::iter::once(&diagnostic.primary)
            .chain(&diagnostic.secondary)
            .zip(spans)
            .enumerate()
            .map(|(i, (label, span))| {
                if i == 0 {
                    LabeledSpan::new_primary_with_span(text(&label.message), span)
                } else {
                    LabeledSpan::new_with_span(text(&label.message), span)
                }
            })
            .collect();
        let help = diagnostic.help.as_deref().map(|help| shorten(help).into_owned());
        Self { severity: diagnostic.severity, help, labels, excerpt }
    }
}

impl fmt::Display for Snippet {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }
}

impl std::error::Error for Snippet {}

impl miette::Diagnostic for Snippet {
    fn severity(&self) -> Option<miette::Severity> {
        Some(super::miette_severity(self.severity))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|help| Box::new(help) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.excerpt)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().cloned()))
    }
}
