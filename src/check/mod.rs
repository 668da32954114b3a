//! Validation: JSON Schema structure, semantic rules and expression type-checking, producing the IR
//! together with every diagnostic found in one run.
//!
//! The entry point is [`check_source`]; it never stops at the first problem and never panics.

pub mod expr;
pub(crate) mod graph;
pub(crate) mod literal;
pub(crate) mod locate;
pub(crate) mod lower;
pub mod satisfiable;
pub(crate) mod structure;

use crate::diagnostic::Diagnostic;
use crate::ir::Definition;
use crate::syntax::json;

/// The outcome of checking one definition source.
#[derive(Debug)]
pub struct Checked {
    /// The compiled definition, present when no error (only warnings, if anything) was found.
    pub definition: Option<Definition>,
    /// Every finding, ordered by position in the source.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parses, validates and compiles a definition source, collecting every finding in one run.
pub fn check_source(source: &str) -> Checked {
    let (root, mut diagnostics) = json::parse(source);
    let mut definition = None;
    if let Some(root) = &root {
        let locate = locate::Locator::new(Some(root));
        let value = root.to_value();
        let structured = structure::validate(&value, &locate, &mut diagnostics);
        if let Some(file) = &structured.file {
            let pruned = lower::Pruned { entries: &structured.pruned, pointers: &structured.pruned_pointers };
            let lowered = lower::lower(file, &pruned, &locate, &mut diagnostics);
            definition = Some(graph::check(lowered, &locate, &mut diagnostics));
        }
    }
    diagnostics.sort_by(|a, b| {
        (a.primary.span.start, a.code, &a.message).cmp(&(b.primary.span.start, b.code, &b.message))
    });
    diagnostics.dedup();
    let has_errors = diagnostics.iter().any(Diagnostic::is_error);
    Checked { definition: definition.filter(|_| !has_errors), diagnostics }
}
