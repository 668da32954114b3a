//! `crm check`: every finding of every definition file, in the requested format.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{CheckArgs, CheckFormat, Exit, Output, Stream};
use crate::check::check_source;
use crate::codes::Code;
use crate::diagnostic::{Diagnostic, Span};
use crate::report::{self, Report, ToolFailure};

pub(super) const AFTER_HELP: &str = "\
A directory is searched recursively for `*.json` files, checked in sorted order (symbolic links to
directories are not followed); a file named explicitly is checked whatever its extension. Paths that
cannot be read, or are larger than --max-file-size (default 16MiB), are reported on stderr and the
readable ones are still checked. Finding no definition file at all is a usage error (exit status 2),
so a mistyped path never passes CI.

Every format reports the same findings, file by file and by position; lines and columns are
1-based, columns count Unicode code points. The JSON document is a stable contract:
`files_checked` and `diagnostics`, each with `code`, `severity`, `message`, `file`, `line`, `column`,
`end_line`, `end_column` and `help`. docs/output-formats.md describes every format.

Exit status: 0 no errors, 1 errors (or warnings with --deny-warnings), 2 usage or I/O error.";

pub(super) fn run(args: &CheckArgs) -> Output {
    let mut files = Vec::new();
    let mut failures = Vec::new();
    for path in &args.paths {
        if let Err(error) = collect(path, &mut files) {
            failures.push(ToolFailure { path: path.display().to_string(), message: error.to_string() });
        }
    }
    if files.is_empty() && failures.is_empty() {
        let paths: Vec<String> = args.paths.iter().map(|p| format!("`{}`", p.display())).collect();
        return Output::failure(format!("no definition files (`*.json`) found in {}", paths.join(", ")));
    }

    let mut reports = Vec::with_capacity(files.len());
    for file in &files {
        match read_bounded(file, args.max_file_size) {
            Ok(bytes) => reports.push(check_file(file.display().to_string(), bytes)),
            Err(error) => {
                failures.push(ToolFailure { path: file.display().to_string(), message: error.to_string() })
            }
        }
    }

    let stdout = render_run(args.format, &reports, &failures);
    let stderr: String =
        failures.iter().map(|f| format!("error: cannot read `{}`: {}\n", f.path, f.message)).collect();

    let errors = reports.iter().any(Report::has_errors);
    let warnings = reports.iter().any(|r| r.warning_count() > 0);
    let exit = if !failures.is_empty() {
        Exit::Failure
    } else if errors || (warnings && args.deny_warnings) {
        Exit::Findings
    } else {
        Exit::Clean
    };
    Output { stdout, stderr, exit }
}

/// Renders `reports` in `format` (a run in which every file could be read).
pub(super) fn render(format: CheckFormat, reports: &[Report]) -> String {
    render_run(format, reports, &[])
}

/// Renders `reports` in `format`; SARIF also records the files that could not be checked.
fn render_run(format: CheckFormat, reports: &[Report], failures: &[ToolFailure]) -> String {
    let mut out = String::new();
    // Writing into a `String` cannot fail.
    let _ = match format {
        CheckFormat::Human => report::human(reports, super::theme(Stream::Stdout), &mut out),
        CheckFormat::Concise => report::concise(reports, &mut out),
        CheckFormat::Json => report::json(reports, &mut out),
        CheckFormat::Github => report::github(reports, &mut out),
        CheckFormat::Sarif => report::sarif_run(reports, failures, &mut out),
    };
    out
}

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReadError {
    /// The operating system's error (no such file, permission denied, a directory, …).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// More bytes than the limit: `crm check /dev/zero`, or a machine-made file larger than meant.
    #[error("the file is larger than {} (raise the limit with --max-file-size, e.g. --max-file-size {})", FileSize(*.limit), FileSize(.limit.saturating_mul(4)))]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
}

/// Reads at most `limit` bytes of `path`; a longer file is an error, never read to its end (so
/// `/dev/zero` or a named pipe cannot exhaust memory).
pub(super) fn read_bounded(path: &Path, limit: FileSize) -> Result<Vec<u8>, ReadError> {
    let file = std::fs::File::open(path)?;
    let expected = file.metadata().map(|m| m.len()).unwrap_or(0);
    if expected > limit.0 {
        return Err(ReadError::TooLarge { limit: limit.0 });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    file.take(limit.0.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit.0 {
        return Err(ReadError::TooLarge { limit: limit.0 });
    }
    Ok(bytes)
}

/// A size in bytes, written `16MiB`, `512KiB`, `2GiB`, `10MB` or a plain number of bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileSize(pub u64);

impl FileSize {
    /// The default limit on a definition file: far above any hand-written definition.
    pub const DEFAULT: FileSize = FileSize(16 * 1024 * 1024);
}

impl std::str::FromStr for FileSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let number: u64 = digits.parse().map_err(|_| format!("`{text}` is not a size such as 16MiB"))?;
        let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kib" => 1 << 10,
            "m" | "mib" => 1 << 20,
            "g" | "gib" => 1 << 30,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            other => return Err(format!("unknown unit `{other}`; use B, KiB, MiB or GiB")),
        };
        number.checked_mul(scale).map(FileSize).ok_or_else(|| format!("`{text}` is too large"))
    }
}

impl std::fmt::Display for FileSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bytes = self.0;
        for (unit, scale) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if bytes >= scale && bytes.is_multiple_of(scale) {
                return write!(f, "{}{unit}", bytes / scale);
            }
        }
        write!(f, "{bytes}B")
    }
}

/// Adds `path` (a file) or the `*.json` files under it (a directory, sorted) to `files`.
pub(super) fn collect(path: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if !std::fs::metadata(path)?.is_dir() {
        push_new(files, path.to_path_buf());
        return Ok(());
    }
    let mut found = Vec::new();
    walk(path, &mut found)?;
    found.sort();
    for file in found {
        push_new(files, file);
    }
    Ok(())
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&path, found)?;
        } else if path.extension().is_some_and(|ext| ext == "json")
            // A symbolic link counts when it leads to a file; links to directories could loop.
            && (kind.is_file() || std::fs::metadata(&path).is_ok_and(|m| m.is_file()))
        {
            found.push(path);
        }
    }
    Ok(())
}

/// Keeps each file once when paths overlap (`crm check definitions definitions/a.json`).
fn push_new(files: &mut Vec<PathBuf>, file: PathBuf) {
    if !files.contains(&file) {
        files.push(file);
    }
}

/// Checks one file's bytes. Text that is not UTF-8 is not JSON (RFC 8259): a finding, not an I/O error.
pub(super) fn check_file(path: String, bytes: Vec<u8>) -> Report {
    match String::from_utf8(bytes) {
        Ok(source) => {
            let diagnostics = check_source(&source).diagnostics;
            Report::new(path, source, diagnostics)
        }
        Err(error) => {
            let at = error.utf8_error().valid_up_to();
            // The lossy text keeps every byte before `at`, then U+FFFD (3 bytes) for the bad sequence.
            let source = String::from_utf8_lossy(error.as_bytes()).into_owned();
            let diagnostic =
                Diagnostic::new(Code::JsonSyntax, Span::new(at, at + 3), "the file is not valid UTF-8")
                    .with_label("invalid byte sequence")
                    .with_help("definition files must be saved as UTF-8");
            Report::new(path, source, vec![diagnostic])
        }
    }
}
