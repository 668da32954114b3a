//! Rendering diagnostics, once, at the boundary.
//!
//! Front-end stages produce plain [`Diagnostic`]s; this module turns them into what people and
//! tools read. A [`Report`] is one source file with all its findings (the shape of kdl-rs's
//! `KdlError`); it is itself a [`miette::Diagnostic`] whose `related()` are the findings, so library
//! users can `?` it. The renderers are pure functions over a slice of reports writing to a
//! [`fmt::Write`], so tests snapshot exactly what the CLI prints:
//!
//! - [`human`]: miette's graphical handler plus a summary line (only with the `cli` feature, which
//!   turns on miette's `fancy` rendering);
//! - [`concise`]: `path:line:col: severity[CODE] message`, one line per finding;
//! - [`json`]: the documented, stable [`JsonOutput`] contract;
//! - [`github`]: GitHub Actions workflow commands (annotations);
//! - [`sarif`]: SARIF 2.1.0 for code-scanning tools.
//!
//! Lines and columns are 1-based everywhere; columns count characters, not bytes ([`LineIndex`]).

use std::fmt;
use std::sync::{Arc, OnceLock};

use miette::{LabeledSpan, SourceCode};
use serde::{Deserialize, Serialize};

use crate::diagnostic::{Diagnostic, Severity};

mod excerpt;
#[cfg(feature = "cli")]
mod human;
mod index;
mod sarif;

use excerpt::Excerpt;
pub use index::{LineIndex, Position};
pub use sarif::{ToolFailure, sarif, sarif_run};

/// One source file and every finding in it.
#[derive(Clone, Debug)]
pub struct Report {
    /// The file's path as the user wrote it (or a pseudo-name such as `<expression>`).
    pub path: String,
    /// The full source text the diagnostics' spans point into.
    pub source: Arc<str>,
    /// The findings, in the order they are rendered.
    pub diagnostics: Vec<Diagnostic>,
    /// The findings as miette renders them (`related()`), built on first use.
    sourced: OnceLock<Vec<SourcedDiagnostic>>,
}

impl Report {
    /// A report of `diagnostics` found in `source`, read from `path`.
    pub fn new(path: impl Into<String>, source: impl Into<Arc<str>>, diagnostics: Vec<Diagnostic>) -> Self {
        Self { path: path.into(), source: source.into(), diagnostics, sourced: OnceLock::new() }
    }

    /// Number of findings that are errors.
    pub fn error_count(&self) -> usize {
        self.count(Severity::Error)
    }

    /// Number of findings that are warnings.
    pub fn warning_count(&self) -> usize {
        self.count(Severity::Warning)
    }

    /// Number of findings that are notes (what a check left out, never a problem in itself).
    pub fn note_count(&self) -> usize {
        self.count(Severity::Note)
    }

    fn count(&self, severity: Severity) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == severity).count()
    }

    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// One finding as a stand-alone [`miette::Diagnostic`] carrying the part of this report's
    /// source it shows. Indexes the whole source: for many findings, render the report instead.
    pub fn sourced(&self, diagnostic: &Diagnostic) -> SourcedDiagnostic {
        SourcedDiagnostic::new(&LineIndex::new(&self.source), &self.path, diagnostic)
    }

    fn sourced_all(&self) -> &[SourcedDiagnostic] {
        self.sourced.get_or_init(|| {
            let index = LineIndex::new(&self.source);
            self.diagnostics.iter().map(|d| SourcedDiagnostic::new(&index, &self.path, d)).collect()
        })
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (errors, warnings) = (self.error_count(), self.warning_count());
        if errors + warnings == 0 {
            write!(f, "{}: no problems", self.path)
        } else {
            write!(f, "{}: {}, {}", self.path, plural(errors, "error"), plural(warnings, "warning"))
        }
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn severity(&self) -> Option<miette::Severity> {
        Some(if self.has_errors() { miette::Severity::Error } else { miette::Severity::Warning })
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        Some(Box::new(self.sourced_all().iter().map(|d| d as &dyn miette::Diagnostic)))
    }
}

/// A finding bundled with the excerpt of its source it shows: what miette renders on its own.
#[derive(Clone, Debug)]
pub struct SourcedDiagnostic {
    diagnostic: Diagnostic,
    source: Excerpt,
}

impl SourcedDiagnostic {
    fn new(index: &LineIndex<'_>, path: &str, diagnostic: &Diagnostic) -> Self {
        let mut diagnostic = diagnostic.clone();
        let spans: Vec<_> = std::iter::once(diagnostic.primary.span)
            .chain(diagnostic.secondary.iter().map(|label| label.span))
            .collect();
        let (source, spans) = Excerpt::new(index, path, &spans);
        for (label, span) in
            std::iter::once(&mut diagnostic.primary).chain(&mut diagnostic.secondary).zip(spans)
        {
            label.span = span;
        }
        Self { diagnostic, source }
    }
}

impl fmt::Display for SourcedDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.diagnostic, f)
    }
}

impl std::error::Error for SourcedDiagnostic {}

impl miette::Diagnostic for SourcedDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diagnostic.code()
    }

    fn severity(&self) -> Option<miette::Severity> {
        miette::Diagnostic::severity(&self.diagnostic)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diagnostic.help()
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.diagnostic.labels()
    }
}

/// miette's name for a severity (a note is miette's advice).
fn miette_severity(severity: Severity) -> miette::Severity {
    match severity {
        Severity::Error => miette::Severity::Error,
        Severity::Warning => miette::Severity::Warning,
        Severity::Note => miette::Severity::Advice,
    }
}

// The conversion of one finding into miette's protocol. It carries no source of its own: rendered
// as a `related()` item of a `Report`, miette uses the report's source.

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code.as_str()))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(miette_severity(self.severity))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|help| Box::new(help) as Box<dyn fmt::Display>)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let text = |message: &str| (!message.is_empty()).then(|| message.to_owned());
        let primary = LabeledSpan::new_primary_with_span(text(&self.primary.message), self.primary.span);
        let secondary = self
            .secondary
            .iter()
            .map(move |label| LabeledSpan::new_with_span(text(&label.message), label.span));
        Some(Box::new(std::iter::once(primary).chain(secondary)))
    }
}

/// `text` with line breaks escaped, so a name quoted in a message cannot start a line of its own.
fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains(['\n', '\r']) {
        text.replace('\n', "\\n").replace('\r', "\\r").into()
    } else {
        text.into()
    }
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 { format!("1 {noun}") } else { format!("{count} {noun}s") }
}

/// The summary line of the human output: `2 errors, 1 warning in 3 files` (notes are counted
/// only when there are some).
pub fn summary(reports: &[Report]) -> String {
    let files = plural(reports.len(), "file");
    let errors: usize = reports.iter().map(Report::error_count).sum();
    let warnings: usize = reports.iter().map(Report::warning_count).sum();
    let notes: usize = reports.iter().map(Report::note_count).sum();
    if errors + warnings + notes == 0 {
        format!("{files} checked, no problems")
    } else if notes == 0 {
        format!("{}, {} in {files}", plural(errors, "error"), plural(warnings, "warning"))
    } else {
        format!(
            "{}, {}, {} in {files}",
            plural(errors, "error"),
            plural(warnings, "warning"),
            plural(notes, "note")
        )
    }
}

/// Renders every finding (rustc-style header, miette's annotated snippet) in `theme`, then the
/// [`summary`] line.
///
/// Use `GraphicalTheme::unicode_nocolor()` for snapshots and for output that is not a terminal.
#[cfg(feature = "cli")]
pub fn human(reports: &[Report], theme: miette::GraphicalTheme, out: &mut impl fmt::Write) -> fmt::Result {
    human_findings(reports, theme, out)?;
    writeln!(out, "{}", summary(reports))
}

/// Renders every finding like [`human`], without the summary line. The time is linear in the
/// number of findings plus the size of the files, and each finding shows a bounded excerpt.
#[cfg(feature = "cli")]
pub fn human_findings(
    reports: &[Report],
    theme: miette::GraphicalTheme,
    out: &mut impl fmt::Write,
) -> fmt::Result {
    human::findings(reports, theme, out)
}

/// Renders one line per finding: `path:line:col: severity[CODE] message`.
pub fn concise(reports: &[Report], out: &mut impl fmt::Write) -> fmt::Result {
    for report in reports {
        let index = LineIndex::new(&report.source);
        for d in &report.diagnostics {
            let at = index.position(d.primary.span.start);
            writeln!(
                out,
                "{}:{}:{}: {}[{}] {}",
                report.path,
                at.line,
                at.column,
                d.severity,
                d.code,
                one_line(&d.message)
            )?;
        }
    }
    Ok(())
}

/// The `--format json` document. A stable, documented contract: fields are only ever added.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JsonOutput {
    /// How many files were checked (including those without findings).
    pub files_checked: usize,
    /// Every finding of every file, file by file.
    pub diagnostics: Vec<JsonDiagnostic>,
}

/// One finding in [`JsonOutput`]. Lines and columns are 1-based; columns count characters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JsonDiagnostic {
    /// The stable code, e.g. `CRM0101`.
    pub code: String,
    /// `error`, `warning` or `note`.
    pub severity: String,
    /// What is wrong, one sentence.
    pub message: String,
    /// The file's path as given on the command line.
    pub file: String,
    /// Line of the start of the primary span.
    pub line: usize,
    /// Column of the start of the primary span.
    pub column: usize,
    /// Line of the end of the primary span.
    pub end_line: usize,
    /// Column just past the end of the primary span.
    pub end_column: usize,
    /// How to fix it, or `null`.
    pub help: Option<String>,
}

impl JsonOutput {
    /// The document for these reports.
    pub fn new(reports: &[Report]) -> Self {
        let mut diagnostics = Vec::new();
        for report in reports {
            let index = LineIndex::new(&report.source);
            for d in &report.diagnostics {
                let (start, end) = index.range(d.primary.span);
                diagnostics.push(JsonDiagnostic {
                    code: d.code.as_str().to_owned(),
                    severity: d.severity.as_str().to_owned(),
                    message: d.message.clone(),
                    file: report.path.clone(),
                    line: start.line,
                    column: start.column,
                    end_line: end.line,
                    end_column: end.column,
                    help: d.help.clone(),
                });
            }
        }
        Self { files_checked: reports.len(), diagnostics }
    }
}

/// Renders [`JsonOutput`] pretty-printed, with a trailing newline.
pub fn json(reports: &[Report], out: &mut impl fmt::Write) -> fmt::Result {
    write_json(&JsonOutput::new(reports), out)
}

fn write_json(value: &impl Serialize, out: &mut impl fmt::Write) -> fmt::Result {
    // Serializing these plain structs cannot fail; a failure is reported as a write error anyway.
    let text = serde_json::to_string_pretty(value).map_err(|_| fmt::Error)?;
    writeln!(out, "{text}")
}

/// Renders GitHub Actions workflow commands: `::error file=…,line=…,col=…,endLine=…,endColumn=…,title=CODE::message`.
pub fn github(reports: &[Report], out: &mut impl fmt::Write) -> fmt::Result {
    for report in reports {
        let index = LineIndex::new(&report.source);
        let file = github_property(&report.path);
        for d in &report.diagnostics {
            let (start, end) = index.range(d.primary.span);
            let command = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Note => "notice",
            };
            let mut message = d.message.clone();
            if let Some(help) = &d.help {
                message.push_str("\nhelp: ");
                message.push_str(help);
            }
            writeln!(
                out,
                "::{command} file={file},line={},col={},endLine={},endColumn={},title={}::{}",
                start.line,
                start.column,
                end.line,
                end.column,
                github_property(d.code.as_str()),
                github_data(&message),
            )?;
        }
    }
    Ok(())
}

/// Escapes a workflow command's message (GitHub's `escapeData`).
fn github_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escapes a workflow command's property value (GitHub's `escapeProperty`).
fn github_property(text: &str) -> String {
    github_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::Code;
    use crate::diagnostic::Span;

    fn sample() -> Vec<Report> {
        let source = "{\n  \"to\": \"nówhere\"\n}\n";
        let at = source.find("\"nówhere\"").unwrap_or_default();
        let diagnostic = Diagnostic::new(
            Code::UnknownStage,
            Span::new(at, at + "\"nówhere\"".len()),
            "unknown stage `nówhere`",
        )
        .with_label("not declared")
        .with_help("did you mean `nowhere`?");
        vec![Report::new("a, b:c.json", source, vec![diagnostic]), Report::new("ok.json", "{}", Vec::new())]
    }

    #[test]
    fn concise_and_github_lines() {
        let mut out = String::new();
        concise(&sample(), &mut out).unwrap_or_default();
        assert_eq!(out, "a, b:c.json:2:9: error[CRM0101] unknown stage `nówhere`\n");
        let mut out = String::new();
        github(&sample(), &mut out).unwrap_or_default();
        assert_eq!(
            out,
            "::error file=a%2C b%3Ac.json,line=2,col=9,endLine=2,endColumn=18,title=CRM0101::\
             unknown stage `nówhere`%0Ahelp: did you mean `nowhere`?\n"
        );
    }

    #[test]
    fn json_round_trips_the_contract() {
        let mut out = String::new();
        json(&sample(), &mut out).unwrap_or_default();
        let parsed: JsonOutput = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(parsed, JsonOutput::new(&sample()));
        assert_eq!(parsed.files_checked, 2);
        assert_eq!((parsed.diagnostics[0].end_line, parsed.diagnostics[0].end_column), (2, 18));
    }

    #[cfg(feature = "cli")]
    #[test]
    fn a_report_renders_as_one_miette_diagnostic_with_its_findings_related() {
        let mut out = String::new();
        let handler = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor());
        handler.render_report(&mut out, &sample()[0]).unwrap_or_default();
        assert!(out.contains("a, b:c.json: 1 error, 0 warnings"), "{out}");
        assert!(out.contains("unknown stage `nówhere`"), "{out}");
        assert!(out.contains("[a, b:c.json:2:9]"), "{out}");
        assert!(out.contains("help: did you mean `nowhere`?"), "{out}");
    }

    #[cfg(feature = "cli")]
    #[test]
    fn out_of_range_spans_still_render() {
        let diagnostic = Diagnostic::new(Code::JsonSyntax, Span::new(40, 99), "unexpected end of input");
        let report = Report::new("short.json", "{", vec![diagnostic]);
        let mut out = String::new();
        human(&[report], miette::GraphicalTheme::unicode_nocolor(), &mut out).unwrap_or_default();
        assert!(out.starts_with("error[CRM0001]: unexpected end of input\n"), "{out}");
        assert!(out.contains("[short.json:1:2]"), "{out}");
        assert!(out.ends_with("1 error, 0 warnings in 1 file\n"), "{out}");
    }
}
