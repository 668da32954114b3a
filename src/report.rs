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
use std::sync::Arc;

use miette::{
    LabeledSpan, MietteError, MietteSpanContents, NamedSource, SourceCode, SourceSpan, SpanContents,
};
use serde::{Deserialize, Serialize};

use crate::codes::Code;
use crate::diagnostic::{Diagnostic, Severity, Span};

/// One source file and every finding in it.
#[derive(Clone, Debug)]
pub struct Report {
    /// The file's path as the user wrote it (or a pseudo-name such as `<expression>`).
    pub path: String,
    /// The full source text the diagnostics' spans point into.
    pub source: Arc<str>,
    /// The findings, in the order they are rendered.
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    /// A report of `diagnostics` found in `source`, read from `path`.
    pub fn new(path: impl Into<String>, source: impl Into<Arc<str>>, diagnostics: Vec<Diagnostic>) -> Self {
        Self { path: path.into(), source: source.into(), diagnostics }
    }

    /// Number of findings that are errors.
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// Number of findings that are warnings.
    pub fn warning_count(&self) -> usize {
        self.diagnostics.len() - self.error_count()
    }

    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// One finding as a stand-alone [`miette::Diagnostic`] carrying this report's source.
    pub fn sourced(&self, diagnostic: &Diagnostic) -> SourcedDiagnostic {
        // miette refuses to render a span outside the source; clamp so no input breaks rendering.
        let mut diagnostic = diagnostic.clone();
        diagnostic.primary.span = clamp(&self.source, diagnostic.primary.span);
        for label in &mut diagnostic.secondary {
            label.span = clamp(&self.source, label.span);
        }
        let source = NamedSource::new(&self.path, CharColumns(Arc::clone(&self.source)));
        SourcedDiagnostic { diagnostic, source }
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

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(self)
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        Some(Box::new(self.diagnostics.iter().map(|d| d as &dyn miette::Diagnostic)))
    }
}

/// The report is its own named source, so the findings it relates render against the file.
impl SourceCode for Report {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        read_span(&self.source, Some(&self.path), span, context_lines_before, context_lines_after)
    }
}

/// Source text as miette reads it, except that columns count characters, as in every other output
/// here (miette counts bytes), and out-of-range spans are clamped instead of failing the rendering.
#[derive(Clone, Debug)]
struct CharColumns(Arc<str>);

impl SourceCode for CharColumns {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        read_span(&self.0, None, span, context_lines_before, context_lines_after)
    }
}

fn read_span<'a>(
    source: &'a str,
    name: Option<&str>,
    span: &SourceSpan,
    context_lines_before: usize,
    context_lines_after: usize,
) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
    let span = clamp(source, Span::new(span.offset(), span.offset() + span.len()));
    let inner = source.read_span(&span.into(), context_lines_before, context_lines_after)?;
    let start = inner.span().offset();
    let line_start = source[..start].rfind('\n').map_or(0, |at| at + 1);
    let column = source.get(line_start..start).map_or(inner.column(), |line| line.chars().count());
    let contents = match name {
        Some(name) => MietteSpanContents::new_named(
            name.to_owned(),
            inner.data(),
            *inner.span(),
            inner.line(),
            column,
            inner.line_count(),
        ),
        None => {
            MietteSpanContents::new(inner.data(), *inner.span(), inner.line(), column, inner.line_count())
        }
    };
    Ok(Box::new(contents))
}

/// A finding bundled with its source as a [`NamedSource`]: what miette renders on its own.
#[derive(Clone, Debug)]
pub struct SourcedDiagnostic {
    diagnostic: Diagnostic,
    source: NamedSource<CharColumns>,
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
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
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

/// Shrinks `span` into `source` and onto character boundaries.
fn clamp(source: &str, span: Span) -> Span {
    let floor = |mut offset: usize| {
        offset = offset.min(source.len());
        while !source.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    };
    let start = floor(span.start);
    Span::new(start, floor(span.end).max(start))
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 { format!("1 {noun}") } else { format!("{count} {noun}s") }
}

/// A 1-based line and column; the column counts characters (Unicode scalar values), not bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// Line number, from 1.
    pub line: usize,
    /// Column number, from 1, in characters.
    pub column: usize,
}

/// Maps byte offsets of one source to [`Position`]s by binary search over line starts.
#[derive(Clone, Debug)]
pub struct LineIndex<'a> {
    source: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    /// Indexes the line starts of `source` (lines end at `\n`; a `\r` before it belongs to the line).
    pub fn new(source: &'a str) -> Self {
        let line_starts =
            std::iter::once(0).chain(source.match_indices('\n').map(|(at, _)| at + 1)).collect();
        Self { source, line_starts }
    }

    /// The position of byte `offset`; offsets past the end or inside a character are clamped.
    pub fn position(&self, offset: usize) -> Position {
        let offset = clamp(self.source, Span::new(offset, offset)).start;
        let line = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let column = self.source[self.line_starts[line]..offset].chars().count() + 1;
        Position { line: line + 1, column }
    }

    /// The positions of the start and the (exclusive) end of `span`.
    pub fn range(&self, span: Span) -> (Position, Position) {
        (self.position(span.start), self.position(span.end.max(span.start)))
    }
}

/// The summary line of the human output: `2 errors, 1 warning in 3 files`.
pub fn summary(reports: &[Report]) -> String {
    let files = plural(reports.len(), "file");
    let errors: usize = reports.iter().map(Report::error_count).sum();
    let warnings: usize = reports.iter().map(Report::warning_count).sum();
    if errors + warnings == 0 {
        format!("{files} checked, no problems")
    } else {
        format!("{}, {} in {files}", plural(errors, "error"), plural(warnings, "warning"))
    }
}

/// Renders every finding with miette's graphical handler in `theme`, then the [`summary`] line.
///
/// Use `GraphicalTheme::unicode_nocolor()` for snapshots and for output that is not a terminal.
#[cfg(feature = "cli")]
pub fn human(reports: &[Report], theme: miette::GraphicalTheme, out: &mut impl fmt::Write) -> fmt::Result {
    human_findings(reports, theme, out)?;
    writeln!(out, "{}", summary(reports))
}

/// Renders every finding with miette's graphical handler in `theme`, without a summary line.
#[cfg(feature = "cli")]
pub fn human_findings(
    reports: &[Report],
    theme: miette::GraphicalTheme,
    out: &mut impl fmt::Write,
) -> fmt::Result {
    // A fixed width keeps the output identical whatever terminal the tests or CI run in.
    let handler = miette::GraphicalReportHandler::new_themed(theme).with_width(100);
    for report in reports {
        for diagnostic in &report.diagnostics {
            handler.render_report(out, &report.sourced(diagnostic))?;
            writeln!(out)?;
        }
    }
    Ok(())
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
                report.path, at.line, at.column, d.severity, d.code, d.message
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
    /// `error` or `warning`.
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

/// Renders a SARIF 2.1.0 log: one run of the `crm` tool with the rules its results use.
pub fn sarif(reports: &[Report], out: &mut impl fmt::Write) -> fmt::Result {
    let mut codes: Vec<Code> = reports.iter().flat_map(|r| r.diagnostics.iter().map(|d| d.code)).collect();
    codes.sort_unstable();
    codes.dedup();
    let rules = codes
        .iter()
        .map(|code| sarif::Rule {
            id: code.as_str(),
            name: code.name(),
            short_description: sarif::Text { text: code.summary().to_owned() },
            help: sarif::Help { text: code.documentation(), markdown: code.documentation() },
            default_configuration: sarif::Configuration { level: code.severity().as_str() },
        })
        .collect();
    let mut results = Vec::new();
    for report in reports {
        let index = LineIndex::new(&report.source);
        let uri = sarif_uri(&report.path);
        let location = |span: Span| {
            let (start, end) = index.range(span);
            sarif::PhysicalLocation {
                artifact_location: sarif::ArtifactLocation { uri: uri.clone() },
                region: sarif::Region {
                    start_line: start.line,
                    start_column: start.column,
                    end_line: end.line,
                    end_column: end.column,
                },
            }
        };
        for d in &report.diagnostics {
            let mut text = d.message.clone();
            if let Some(help) = &d.help {
                text.push_str("\nhelp: ");
                text.push_str(help);
            }
            results.push(sarif::Result {
                rule_id: d.code.as_str(),
                rule_index: codes.binary_search(&d.code).unwrap_or_default(),
                level: d.severity.as_str(),
                message: sarif::Text { text },
                locations: vec![sarif::Location {
                    physical_location: location(d.primary.span),
                    message: None,
                }],
                related_locations: d
                    .secondary
                    .iter()
                    .map(|label| sarif::Location {
                        physical_location: location(label.span),
                        message: Some(sarif::Text { text: label.message.clone() }),
                    })
                    .collect(),
            });
        }
    }
    let log = sarif::Log {
        schema: "https://json.schemastore.org/sarif-2.1.0.json",
        version: "2.1.0",
        runs: vec![sarif::Run {
            tool: sarif::Tool {
                driver: sarif::Driver { name: "crm", version: env!("CARGO_PKG_VERSION"), rules },
            },
            results,
        }],
    };
    write_json(&log, out)
}

/// A relative URI reference for a path: forward slashes, and the characters a URI reserves escaped.
fn sarif_uri(path: &str) -> String {
    let mut uri = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '\\' => uri.push('/'),
            '%' | ' ' | '#' | '?' | '[' | ']' => uri.push_str(&format!("%{:02X}", c as u32)),
            c => uri.push(c),
        }
    }
    uri
}

/// The subset of the SARIF 2.1.0 object model that `crm` emits.
mod sarif {
    use serde::Serialize;

    #[derive(Serialize)]
    pub(super) struct Log {
        #[serde(rename = "$schema")]
        pub schema: &'static str,
        pub version: &'static str,
        pub runs: Vec<Run>,
    }

    #[derive(Serialize)]
    pub(super) struct Run {
        pub tool: Tool,
        pub results: Vec<Result>,
    }

    #[derive(Serialize)]
    pub(super) struct Tool {
        pub driver: Driver,
    }

    #[derive(Serialize)]
    pub(super) struct Driver {
        pub name: &'static str,
        pub version: &'static str,
        pub rules: Vec<Rule>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Rule {
        pub id: &'static str,
        pub name: &'static str,
        pub short_description: Text,
        pub help: Help,
        pub default_configuration: Configuration,
    }

    #[derive(Serialize)]
    pub(super) struct Help {
        pub text: &'static str,
        pub markdown: &'static str,
    }

    #[derive(Serialize)]
    pub(super) struct Configuration {
        pub level: &'static str,
    }

    #[derive(Serialize)]
    pub(super) struct Text {
        pub text: String,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Result {
        pub rule_id: &'static str,
        pub rule_index: usize,
        pub level: &'static str,
        pub message: Text,
        pub locations: Vec<Location>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub related_locations: Vec<Location>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Location {
        pub physical_location: PhysicalLocation,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub message: Option<Text>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct PhysicalLocation {
        pub artifact_location: ArtifactLocation,
        pub region: Region,
    }

    #[derive(Serialize)]
    pub(super) struct ArtifactLocation {
        pub uri: String,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Region {
        pub start_line: usize,
        pub start_column: usize,
        pub end_line: usize,
        pub end_column: usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn positions_are_one_based_and_count_characters() {
        let index = LineIndex::new("ab\néé x\r\nz");
        assert_eq!(index.position(0), Position { line: 1, column: 1 });
        assert_eq!(index.position(3), Position { line: 2, column: 1 });
        assert_eq!(index.position(8), Position { line: 2, column: 4 });
        assert_eq!(index.position(4), Position { line: 2, column: 1 }, "inside a character: clamped back");
        assert_eq!(index.position(11), Position { line: 3, column: 1 });
        assert_eq!(index.position(999), Position { line: 3, column: 2 });
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

    #[test]
    fn out_of_range_spans_still_render() {
        let diagnostic = Diagnostic::new(Code::JsonSyntax, Span::new(40, 99), "unexpected end of input");
        let report = Report::new("short.json", "{", vec![diagnostic]);
        let sourced = report.sourced(&report.diagnostics[0]);
        let labels: Vec<_> = miette::Diagnostic::labels(&sourced).into_iter().flatten().collect();
        assert_eq!(labels[0].offset(), 1);
        assert_eq!(summary(&[report]), "1 error, 0 warnings in 1 file");
    }
}
