//! What the commands that operate the engine from the shell share (`deploy`, `definitions`,
//! `instance`, `pending`): where the data is and whose, how results print, and one engine call
//! per command on a runtime of its own.

use clap::{Args, ValueEnum};
use serde_json::Value as Json;

use super::{Exit, Output};
use crate::engine::service::{Engine, EngineError};
use crate::store::{AnyStore, TenantId};

/// Where the engine's data is, and whose.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// `postgres://…` for PostgreSQL; a file path or `sqlite:PATH` for the embedded SQLite store.
    #[arg(long, env = "CRM_DATABASE_URL", default_value = "sqlite:crm.db", global = true)]
    pub database: String,
    /// The tenant every read and write is scoped to.
    #[arg(long, env = "CRM_TENANT", default_value = "default", global = true)]
    pub tenant: String,
}

/// How results are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ShellFormat {
    /// Lines for a person.
    #[default]
    Text,
    /// One JSON document, for scripts.
    Json,
}

/// Runs `work` against the engine on `store`'s database, on a runtime of its own, and closes the
/// store afterwards. A database that cannot be opened is an I/O error (exit status 2).
pub(super) fn with_engine(
    store: &StoreArgs,
    work: impl AsyncFnOnce(&Engine<AnyStore>, &TenantId) -> Output,
) -> Output {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return Output::failure(format!("cannot start the async runtime: {error}")),
    };
    runtime.block_on(async {
        let opened = match AnyStore::open(&store.database).await {
            Ok(opened) => opened,
            Err(error) => return Output::failure(format!("cannot open `{}`: {error}", store.database)),
        };
        let engine = Engine::new(opened.clone());
        let output = work(&engine, &TenantId::new(store.tenant.clone())).await;
        opened.close().await;
        output
    })
}

/// An engine error as the shell reports it: the message, its stable code and help, exit status 1
/// for a refusal (the request was understood and declined) and 2 for a database failure.
pub(super) fn engine_error(error: &EngineError) -> Output {
    use miette::Diagnostic as _;
    let mut text = format!("error: {error}");
    if let Some(code) = error.code() {
        text.push_str(&format!(" [{code}]"));
    }
    text.push('\n');
    if let Some(help) = error.help() {
        text.push_str(&format!("help: {help}\n"));
    }
    let exit = if matches!(error, EngineError::Store(_)) { Exit::Failure } else { Exit::Findings };
    Output { stdout: String::new(), stderr: text, exit }
}

/// JSON with two-space indentation and a trailing newline, exit status 0.
pub(super) fn json_output(value: &Json) -> Output {
    Output::stdout(super::pretty(value), Exit::Clean)
}

/// `2026-12-05T07:00:00Z`: seconds are what a person reads; JSON output keeps microseconds.
pub(super) fn short_time(time: chrono::DateTime<chrono::Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Lines of columns, each as wide as its widest cell (the last one is not padded).
pub(super) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', width.saturating_sub(cell.chars().count())));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `value` with every object's keys in sorted order: stored JSON comes back in the database's
/// order (PostgreSQL's `jsonb` has its own), and the shell prints the same on both.
pub(super) fn sorted(value: &Json) -> Json {
    match value {
        Json::Object(map) => {
            let mut entries: Vec<(&String, &Json)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            Json::Object(entries.into_iter().map(|(k, v)| (k.clone(), sorted(v))).collect())
        }
        Json::Array(items) => Json::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}
