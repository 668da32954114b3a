//! `crm check`: every finding of every definition file, in the requested format.

use std::path::{Path, PathBuf};

use super::{CheckArgs, CheckFormat, Exit, Output, Stream};
use crate::check::check_source;
use crate::codes::Code;
use crate::diagnostic::{Diagnostic, Span};
use crate::report::{self, Report};

pub(super) const AFTER_HELP: &str = "\
A directory is searched recursively for `*.json` files, checked in sorted order (symbolic links to
directories are not followed); a file named explicitly is checked whatever its extension. Paths that
cannot be read are reported on stderr and the readable ones are still checked. Finding no definition
file at all is a usage error (exit status 2), so a mistyped path never passes CI.

Exit status: 0 no errors, 1 errors (or warnings with --deny-warnings), 2 usage or I/O error.";

pub(super) fn run(args: &CheckArgs) -> Output {
    let mut files = Vec::new();
    let mut stderr = String::new();
    for path in &args.paths {
        if let Err(error) = collect(path, &mut files) {
            stderr.push_str(&format!("error: cannot read `{}`: {error}\n", path.display()));
        }
    }
    if files.is_empty() && stderr.is_empty() {
        let paths: Vec<String> = args.paths.iter().map(|p| format!("`{}`", p.display())).collect();
        return Output::failure(format!("no definition files (`*.json`) found in {}", paths.join(", ")));
    }

    let mut reports = Vec::with_capacity(files.len());
    for file in &files {
        match std::fs::read(file) {
            Ok(bytes) => reports.push(check_file(file.display().to_string(), bytes)),
            Err(error) => stderr.push_str(&format!("error: cannot read `{}`: {error}\n", file.display())),
        }
    }

    let stdout = render(args.format, &reports);

    let errors = reports.iter().any(Report::has_errors);
    let warnings = reports.iter().any(|r| r.warning_count() > 0);
    let exit = if !stderr.is_empty() {
        Exit::Failure
    } else if errors || (warnings && args.deny_warnings) {
        Exit::Findings
    } else {
        Exit::Clean
    };
    Output { stdout, stderr, exit }
}

pub(super) fn render(format: CheckFormat, reports: &[Report]) -> String {
    let mut out = String::new();
    // Writing into a `String` cannot fail.
    let _ = match format {
        CheckFormat::Human => report::human(reports, super::theme(Stream::Stdout), &mut out),
        CheckFormat::Concise => report::concise(reports, &mut out),
        CheckFormat::Json => report::json(reports, &mut out),
        CheckFormat::Github => report::github(reports, &mut out),
        CheckFormat::Sarif => report::sarif(reports, &mut out),
    };
    out
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
