//! `crm check --against DIR|DATABASE_URL FILE…`: each file checked as by `crm check`, plus its
//! compatibility with the live version (`CRM08xx`, see [`crate::engine::compat`]).
//!
//! Against a database, the live version is the latest deployed one of the same id, and the
//! findings count the tenant's active instances; against a directory, the live version is the
//! file there with the same id, and only structural changes are reported. The output formats and
//! exit statuses are `crm check`'s: 1 when a new version would strand an instance.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::check::FileSize;
use super::check::{check_file, collect, read_bounded, render};
use super::{CheckArgs, Exit, Output};
use crate::check::check_source;
use crate::engine::compat;
use crate::engine::service::{Engine, EngineError};
use crate::ir::Definition;
use crate::report::Report;
use crate::store::{AnyStore, TenantId};

/// Where the live version comes from.
enum Against {
    /// A directory of definition files.
    Dir(PathBuf),
    /// A database URL.
    Database(String),
}

/// Runs `crm check --against`.
pub(super) fn run(args: &CheckArgs, against: &str) -> Output {
    let against = if ["postgres://", "postgresql://", "sqlite:"].iter().any(|p| against.starts_with(p)) {
        Against::Database(against.to_owned())
    } else if std::fs::metadata(against).is_ok_and(|m| m.is_dir()) {
        Against::Dir(PathBuf::from(against))
    } else {
        return Output::failure(format!(
            "--against `{against}` is neither a directory nor a database URL (`sqlite:PATH`, `postgres://…`)"
        ));
    };

    let mut files = Vec::new();
    for path in &args.paths {
        if let Err(error) = collect(path, &mut files) {
            return Output::failure(format!("cannot read `{}`: {error}", path.display()));
        }
    }
    if files.is_empty() {
        return Output::failure("no definition files (`*.json`) to compare");
    }
    let mut reports = Vec::with_capacity(files.len());
    for file in &files {
        match read_bounded(file, args.max_file_size) {
            Ok(bytes) => reports.push(check_file(file.display().to_string(), bytes)),
            Err(error) => return Output::failure(format!("cannot read `{}`: {error}", file.display())),
        }
    }

    let added = match &against {
        Against::Dir(dir) => against_dir(dir, args.max_file_size, &mut reports),
        Against::Database(url) => against_database(url, &TenantId::new(args.tenant.clone()), &mut reports),
    };
    if let Err(output) = added {
        return output;
    }

    let errors = reports.iter().any(Report::has_errors);
    let warnings = reports.iter().any(|r| r.warning_count() > 0);
    let exit = if errors || (warnings && args.deny_warnings) { Exit::Findings } else { Exit::Clean };
    Output::stdout(render(args.format, &reports), exit)
}

/// Adds each compiled report's findings against the definition of the same id in `dir`.
fn against_dir(dir: &std::path::Path, limit: FileSize, reports: &mut [Report]) -> Result<(), Output> {
    let mut files = Vec::new();
    collect(dir, &mut files).map_err(|e| Output::failure(format!("cannot read `{}`: {e}", dir.display())))?;
    let mut live: BTreeMap<String, Definition> = BTreeMap::new();
    for file in files {
        // A live file that does not compile (or cannot be read) has nothing to compare with.
        if let Some(def) = read_bounded(&file, limit)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|source| check_source(&source).definition)
        {
            live.insert(def.id.clone(), def);
        }
    }
    for report in reports.iter_mut() {
        let Some(new) = check_source(&report.source).definition else { continue };
        if let Some(old) = live.get(&new.id) {
            let found = compat::compare(old, &new, &report.source, None);
            merge(report, found);
        }
    }
    Ok(())
}

/// Adds each compiled report's findings against the database's live version and instances.
fn against_database(url: &str, tenant: &TenantId, reports: &mut [Report]) -> Result<(), Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Output::failure(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let store =
            AnyStore::open(url).await.map_err(|e| Output::failure(format!("cannot open `{url}`: {e}")))?;
        let engine = Engine::new(store.clone());
        let mut result = Ok(());
        for report in reports.iter_mut() {
            if report.has_errors() {
                continue;
            }
            match engine.compatibility(tenant, &report.source).await {
                Ok(found) => merge(report, found.diagnostics),
                // Its errors are in the report already.
                Err(EngineError::InvalidDefinition { .. }) => {}
                Err(error) => {
                    result = Err(Output::failure(format!("cannot compare `{}`: {error}", report.path)));
                    break;
                }
            }
        }
        store.close().await;
        result
    })
}

/// Adds `found` to the report's findings, in source order.
fn merge(report: &mut Report, found: Vec<crate::diagnostic::Diagnostic>) {
    report.diagnostics.extend(found);
    report.diagnostics.sort_by_key(|d| d.primary.span.start);
}
