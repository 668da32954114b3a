//! `crm test`: runs scenario files (see `docs/scenarios.md`) and reports like a test runner.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{Exit, Output, TestArgs};
use crate::scenario::{self, ScenarioFile};

/// A scenario file read, parsed, and with its definition's source loaded.
struct Loaded {
    /// The file's stem, shown before each scenario name.
    label: String,
    file: ScenarioFile,
    source: String,
}

/// Runs every scenario of every file under `args.paths`.
pub fn run(args: &TestArgs) -> Output {
    let files = match collect(&args.paths) {
        Ok(files) => files,
        Err(message) => return Output::failure(message),
    };
    // Every file is validated before anything runs: a typo must not hide behind a long run.
    let mut loaded = Vec::with_capacity(files.len());
    let mut errors = String::new();
    for path in &files {
        match load(path) {
            Ok(file) => loaded.push(file),
            Err(message) => {
                let _ = writeln!(errors, "error: {message}");
            }
        }
    }
    if !errors.is_empty() {
        return Output { stdout: String::new(), stderr: errors, exit: Exit::Failure };
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return Output::failure(format!("cannot start the async runtime: {error}")),
    };
    let (mut passed, mut failed) = (0, 0);
    let mut stdout = String::new();
    for file in &loaded {
        for s in &file.file.scenarios {
            let result = runtime.block_on(scenario::run(&file.source, (&file.file).into(), s));
            match result {
                Ok(()) => {
                    passed += 1;
                    let _ = writeln!(stdout, "ok  {} › {}", file.label, s.name);
                }
                Err(failure) => {
                    failed += 1;
                    let _ = writeln!(stdout, "FAIL {} › {}", file.label, s.name);
                    for line in failure.to_string().lines() {
                        let _ = writeln!(stdout, "      {line}");
                    }
                }
            }
        }
    }
    let _ = writeln!(stdout, "\n{passed} passed, {failed} failed");
    Output { stdout, stderr: String::new(), exit: if failed == 0 { Exit::Clean } else { Exit::Findings } }
}

/// The `*.json` files named by `paths`, directories searched recursively, in a stable order.
fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut files)?;
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            return Err(format!("cannot read `{}`: no such file or directory", path.display()));
        }
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            walk(&path, files)?;
        } else if path.extension().is_some_and(|ext| ext == "json") {
            files.push(path);
        }
    }
    Ok(())
}

/// Reads and parses a scenario file and reads its definition, relative to the file.
fn load(path: &Path) -> Result<Loaded, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    let file = ScenarioFile::parse(&text).map_err(|e| format!("`{shown}`: {e}"))?;
    let definition = path.parent().unwrap_or(Path::new(".")).join(&file.definition);
    let source = std::fs::read_to_string(&definition)
        .map_err(|e| format!("`{shown}`: cannot read definition `{}`: {e}", definition.display()))?;
    let label = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(Loaded { label, file, source })
}
