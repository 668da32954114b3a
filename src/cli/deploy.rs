//! `crm deploy`: check definition files exactly as `crm check` does, then deploy them.
//!
//! Every file is checked before anything is deployed: one error anywhere deploys nothing and
//! prints what `crm check` would print with the same `--format` (exit status 1). A clean run
//! deploys each file through [`Engine::deploy`], the call the HTTP API makes: an unchanged
//! definition is a no-op, a changed one becomes the next version.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::check::{FileSize, check_file, collect, read_bounded, render};
use super::shell::{StoreArgs, engine_error, with_engine};
use super::{CheckFormat, Exit, Output};
use crate::engine::service::Engine;
use crate::report::Report;

pub(super) const AFTER_HELP: &str = "\
Files are collected and checked exactly as by `crm check` (directories recursively, `*.json`, in
sorted order). Nothing is deployed unless every file is free of errors (and of warnings, with
--deny-warnings); the findings are then printed as `crm check` prints them. Warnings of a deployed
definition go to stderr. Two files with the same definition id are a usage error.

Exit status: 0 deployed (or unchanged), 1 findings (nothing deployed), 2 usage, I/O or database error.";

/// Arguments of `crm deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Definition files, or directories searched recursively for `*.json`.
    #[arg(value_name = "PATH", default_value = "definitions/")]
    pub paths: Vec<PathBuf>,
    /// The database and tenant.
    #[command(flatten)]
    pub store: StoreArgs,
    /// How findings are printed (as by `crm check`); `json` also prints the result as JSON.
    #[arg(long, value_enum, default_value_t = CheckFormat::Human)]
    pub format: CheckFormat,
    /// Deploy nothing when there are warnings, too.
    #[arg(long)]
    pub deny_warnings: bool,
    /// The largest definition file read, e.g. `64MiB` (a larger file is an error, exit status 2).
    #[arg(long, value_name = "SIZE", env = "CRM_MAX_FILE_SIZE", default_value_t = FileSize::DEFAULT)]
    pub max_file_size: FileSize,
}

/// Runs `crm deploy`.
pub(super) fn run(args: &DeployArgs) -> Output {
    let mut files = Vec::new();
    for path in &args.paths {
        if let Err(error) = collect(path, &mut files) {
            return Output::failure(format!("cannot read `{}`: {error}; nothing deployed", path.display()));
        }
    }
    if files.is_empty() {
        let paths: Vec<String> = args.paths.iter().map(|p| format!("`{}`", p.display())).collect();
        return Output::failure(format!("no definition files (`*.json`) found in {}", paths.join(", ")));
    }
    let mut reports = Vec::with_capacity(files.len());
    for file in &files {
        match read_bounded(file, args.max_file_size) {
            Ok(bytes) => reports.push(check_file(file.display().to_string(), bytes)),
            Err(error) => {
                return Output::failure(format!(
                    "cannot read `{}`: {error}; nothing deployed",
                    file.display()
                ));
            }
        }
    }

    let errors = reports.iter().any(Report::has_errors);
    let warnings = reports.iter().any(|r| r.warning_count() > 0);
    if errors || (warnings && args.deny_warnings) {
        return Output::stdout(render(args.format, &reports), Exit::Findings);
    }
    if let Err(output) = distinct_ids(&reports) {
        return output;
    }
    let diagnostics = if warnings { render(args.format, &reports) } else { String::new() };

    let mut output = with_engine(&args.store, async |engine: &Engine<_>, tenant| {
        let mut deployed = Vec::with_capacity(reports.len());
        for report in &reports {
            match engine.deploy(tenant, &report.source).await {
                Ok(done) => deployed.push((report.path.as_str(), done)),
                Err(error) => {
                    let mut output = engine_error(&error);
                    output.stdout = summary(args.format, &deployed);
                    output.stderr = format!("{}while deploying `{}`\n", output.stderr, report.path);
                    // A refusal here is not a finding in the files (they were checked): the
                    // database or this build's engine declined, which is an operational error.
                    output.exit = Exit::Failure;
                    return output;
                }
            }
        }
        Output::stdout(summary(args.format, &deployed), Exit::Clean)
    });
    output.stderr.insert_str(0, &diagnostics);
    output
}

/// What was deployed: one line per file, or a JSON document for `--format json`.
fn summary(format: CheckFormat, deployed: &[(&str, crate::engine::service::Deployed)]) -> String {
    if format == CheckFormat::Json {
        let items: Vec<_> = deployed
            .iter()
            .map(|(path, d)| json!({"file": path, "id": d.id, "version": d.version, "created": d.created}))
            .collect();
        return super::pretty(&json!({ "deployed": items }));
    }
    let mut out = String::new();
    for (path, d) in deployed {
        let what = if d.created { "deployed" } else { "unchanged" };
        out.push_str(&format!("{what} {} version {} ({path})\n", d.id, d.version));
    }
    out
}

/// Two files defining the same id would deploy as two versions of one definition, the second
/// silently replacing the first for new instances: refused before anything is deployed.
fn distinct_ids(reports: &[Report]) -> Result<(), Output> {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for report in reports {
        let id = serde_json::from_str::<serde_json::Value>(&report.source)
            .ok()
            .and_then(|value| value.get("id").and_then(|id| id.as_str()).map(str::to_owned));
        if let Some(id) = id
            && let Some(first) = seen.insert(id.clone(), &report.path)
        {
            return Err(Output::failure(format!(
                "definition `{id}` is in both `{first}` and `{}`; nothing deployed",
                report.path
            )));
        }
    }
    Ok(())
}
