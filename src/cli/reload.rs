//! Hot reload for `crm serve`: the definitions directory is watched (notify, debounced), and a
//! saved file is checked and deployed as `crm deploy` would, with one difference: a new version
//! that would strand live instances (`crm check --against`, `CRM08xx`) is refused.
//!
//! A file with errors, or a refused one, leaves the running version live; its findings are
//! logged as `crm check --format concise` prints them and kept for
//! `GET /v1/definitions/{id}/diagnostics`. A deleted file undeploys nothing. Which definition a
//! file holds is read from the file (its `id`), or, when the file is too broken to say, taken
//! from the last time it deployed; failing both, its name without `.json`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use notify_debouncer_full::notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;

use super::check::{FileSize, read_bounded};
use crate::check::check_source;
use crate::engine::service::EngineError;
use crate::http::{AppState, Reload, ReloadOutcome};
use crate::report::{self, Report};
use crate::store::TenantId;

/// How long the watcher waits for a burst of events on one file (an editor's save) to end.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// A running watch; dropping it stops watching.
pub(super) struct Watch {
    _debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the reloader knows: where, for whom, and which file last deployed which id.
pub(super) struct Reloader {
    state: AppState,
    tenant: TenantId,
    max_file_size: FileSize,
    ids: HashMap<PathBuf, String>,
}

impl Reloader {
    /// A reloader deploying to `tenant`; `ids` says which file deployed which definition at start.
    pub(super) fn new(state: AppState, tenant: TenantId, ids: HashMap<PathBuf, String>) -> Self {
        Self { state, tenant, max_file_size: FileSize::DEFAULT, ids }
    }

    /// Watches `path` (a directory, or one file) and reloads each `*.json` file saved there.
    pub(super) fn watch(mut self, path: &Path) -> Result<Watch, String> {
        let path = absolute(path);
        let (dir, only) = if path.is_file() {
            (path.parent().unwrap_or(Path::new("/")).to_owned(), Some(path.clone()))
        } else {
            (path.clone(), None)
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<DebounceEventResult>();
        let mut debouncer = new_debouncer(DEBOUNCE, None, move |result| {
            // The receiver is gone only when the server stops.
            let _ = tx.send(result);
        })
        .map_err(|e| format!("cannot watch `{}`: {e}", dir.display()))?;
        debouncer
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|e| format!("cannot watch `{}`: {e}", dir.display()))?;
        tracing::info!(path = %dir.display(), "watching definitions for changes");
        let task = tokio::spawn(async move {
            while let Some(result) = rx.recv().await {
                let events = match result {
                    Ok(events) => events,
                    Err(errors) => {
                        for error in errors {
                            tracing::warn!(%error, "watching definitions");
                        }
                        continue;
                    }
                };
                let mut changed: Vec<PathBuf> = Vec::new();
                for event in events {
                    if matches!(event.event.kind, EventKind::Remove(_) | EventKind::Access(_)) {
                        continue;
                    }
                    for file in &event.event.paths {
                        let wanted = match &only {
                            Some(only) => absolute(file) == *only,
                            None => file.extension().is_some_and(|ext| ext == "json"),
                        };
                        if wanted && file.is_file() && !changed.contains(file) {
                            changed.push(file.clone());
                        }
                    }
                }
                for file in changed {
                    self.reload(&file).await;
                }
            }
        });
        Ok(Watch { _debouncer: debouncer, task })
    }

    /// Checks, compares and deploys one file; records and logs what happened.
    pub(super) async fn reload(&mut self, file: &Path) -> Option<ReloadOutcome> {
        let bytes = match read_bounded(file, self.max_file_size) {
            Ok(bytes) => bytes,
            Err(error) => {
                // Mid-save or gone again: the next event brings it back.
                tracing::warn!(file = %file.display(), %error, "cannot read a changed definition");
                return None;
            }
        };
        let path = file.display().to_string();
        let Ok(source) = String::from_utf8(bytes) else {
            tracing::warn!(file = %path, "a changed definition is not UTF-8 text; not reloaded");
            return None;
        };
        let checked = check_source(&source);
        let id = match &checked.definition {
            Some(def) => def.id.clone(),
            None => self.id_of(file, &source),
        };
        let engine = self.state.engine();
        let (outcome, diagnostics) = if checked.definition.is_none() {
            (ReloadOutcome::Invalid, checked.diagnostics)
        } else {
            match engine.compatibility(&self.tenant, &source).await {
                Ok(compat) if compat.strands() => {
                    let mut found = checked.diagnostics;
                    found.extend(compat.diagnostics);
                    found.sort_by_key(|d| d.primary.span.start);
                    (ReloadOutcome::Strands, found)
                }
                Ok(_) => match engine.deploy(&self.tenant, &source).await {
                    Ok(deployed) if deployed.created => {
                        (ReloadOutcome::Deployed { version: deployed.version }, checked.diagnostics)
                    }
                    Ok(deployed) => {
                        (ReloadOutcome::Unchanged { version: deployed.version }, checked.diagnostics)
                    }
                    Err(EngineError::InvalidDefinition { diagnostics }) => {
                        (ReloadOutcome::Invalid, diagnostics)
                    }
                    Err(error) => {
                        tracing::error!(file = %path, %error, "cannot deploy a changed definition; will retry on the next save");
                        return None;
                    }
                },
                Err(EngineError::InvalidDefinition { diagnostics }) => (ReloadOutcome::Invalid, diagnostics),
                Err(error) => {
                    tracing::error!(file = %path, %error, "cannot compare a changed definition with the live one");
                    return None;
                }
            }
        };
        let report = Report::new(path.clone(), source, diagnostics);
        if !report.diagnostics.is_empty() {
            let mut text = String::new();
            // Writing into a `String` cannot fail.
            let _ = report::concise(std::slice::from_ref(&report), &mut text);
            for line in text.lines() {
                if outcome.is_live() {
                    tracing::warn!("{line}");
                } else {
                    tracing::error!("{line}");
                }
            }
        }
        match outcome {
            ReloadOutcome::Deployed { version } => {
                tracing::info!(file = %path, %id, version, "reloaded: new instances start on this version");
            }
            ReloadOutcome::Unchanged { version } => {
                tracing::info!(file = %path, %id, version, "reloaded: unchanged");
            }
            ReloadOutcome::Invalid => {
                tracing::error!(file = %path, %id, "not reloaded: the definition has errors; the running version stays live");
            }
            ReloadOutcome::Strands => tracing::error!(
                file = %path, %id,
                "not reloaded: the new version would strand live instances; the running version stays live"
            ),
        }
        if outcome.is_live() {
            self.ids.insert(absolute(file), id.clone());
        }
        self.state.record_reload(&self.tenant, &id, Reload { report, outcome, at: Utc::now() });
        Some(outcome)
    }

    /// The id a file that does not compile is about: its `id` member if it is JSON with one, else
    /// what it deployed last, else its name.
    fn id_of(&self, file: &Path, source: &str) -> String {
        serde_json::from_str::<serde_json::Value>(source)
            .ok()
            .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_owned))
            .filter(|id| !id.is_empty())
            .or_else(|| self.ids.get(&absolute(file)).cloned())
            .unwrap_or_else(|| file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default())
    }
}

/// `path` made absolute without touching the file system beyond the working directory.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}
