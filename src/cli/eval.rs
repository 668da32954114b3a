//! `crm eval`: compile one expression and evaluate it against instance data.

use chrono::{DateTime, Utc};

use super::{EvalArgs, Exit, Output, Stream};
use crate::check::expr::{ExprEnv, compile};
use crate::codes::Code;
use crate::engine::data::value_to_json;
use crate::engine::eval::{Context, Record, evaluate};
use crate::ir::{DataSchema, Definition};
use crate::report::Report;

pub(super) const AFTER_HELP: &str = "\
Without --definition the data schema is empty: every `data.` path is undeclared and typed at run
time, and the undeclared-field warnings are not shown. With --definition, the expression is checked
against the definition's `dataSchema` and the entity's stage names, and warnings are shown.

The value is printed as JSON on stdout. Exit status: 0 evaluated; 1 the expression (or the
definition) has errors, or evaluation failed; 2 usage or I/O error, including --data that is not
a JSON object and --now that is not an RFC 3339 date-time.";

pub(super) fn run(args: &EvalArgs) -> Output {
    match evaluate_args(args) {
        Ok(output) | Err(output) => output,
    }
}

fn evaluate_args(args: &EvalArgs) -> Result<Output, Output> {
    let (definition, mut stderr) = match &args.definition {
        Some(path) => {
            let (definition, warnings) = super::compile(path, args.max_file_size)?;
            (Some(definition), warnings)
        }
        None => (None, String::new()),
    };
    let empty = DataSchema::default();
    let schema = definition.as_ref().map_or(&empty, |d| &d.data);
    let (entity, stage, stages) = scope(definition.as_ref(), args)?;

    let data: serde_json::Value = serde_json::from_str(&args.data)
        .map_err(|error| Output::failure(format!("`--data` is not valid JSON: {error}")))?;
    if !data.is_object() {
        return Err(Output::failure("`--data` must be a JSON object, e.g. '{\"lead_score\": 70}'"));
    }
    let now = match &args.now {
        None => Utc::now(),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|error| Output::failure(format!("`--now` is not an RFC 3339 date-time: {error}")))?,
    };

    let compiled = compile(&args.expr, &ExprEnv { schema, stages: &stages });
    // With no schema every field is undeclared; saying so for each would only be noise.
    let diagnostics: Vec<_> = compiled
        .diagnostics
        .into_iter()
        .filter(|d| definition.is_some() || d.code != Code::UndeclaredField)
        .collect();
    if !diagnostics.is_empty() {
        stderr.push_str(&super::human(
            &[Report::new("<expression>", args.expr.as_str(), diagnostics)],
            Stream::Stderr,
        ));
    }
    let Some(expr) = compiled.expr else {
        return Err(Output { stdout: String::new(), stderr, exit: Exit::Findings });
    };

    let record = Record::from_json(schema, &data);
    let context = Context { data: &record, stage: &stage, entity: &entity, actor: None, now };
    match evaluate(&expr, &context) {
        Ok(value) => {
            let mut stdout = value_to_json(&value).to_string();
            stdout.push('\n');
            Ok(Output { stdout, stderr, exit: Exit::Clean })
        }
        Err(error) => {
            stderr.push_str(&format!("error: evaluation failed: {error}\n"));
            if let Some(help) = miette::Diagnostic::help(&error) {
                stderr.push_str(&format!("  help: {help}\n"));
            }
            Err(Output { stdout: String::new(), stderr, exit: Exit::Findings })
        }
    }
}

/// The entity and stage the expression runs in, and the stage names it may compare `stage` with.
fn scope(definition: Option<&Definition>, args: &EvalArgs) -> Result<(String, String, Vec<String>), Output> {
    let Some(def) = definition else {
        let entity = args.entity.clone().unwrap_or_default();
        return Ok((entity, args.stage.clone().unwrap_or_default(), Vec::new()));
    };
    let id = match &args.entity {
        Some(name) => def.entity_named(name).ok_or_else(|| {
            let names: Vec<&str> = def.entities.iter().map(|e| e.name.as_str()).collect();
            Output::failure(format!("no entity `{name}`; declared entities: {}", names.join(", ")))
        })?,
        None => crate::ir::EntityId(0),
    };
    let Some(entity) = def.entities.get(id.index()) else {
        return Err(Output::failure("the definition declares no entity"));
    };
    let stages: Vec<String> = entity.stages.iter().map(|&s| def.stage(s).name.clone()).collect();
    let stage = match &args.stage {
        None => def.stage(entity.initial).name.clone(),
        Some(stage) if stages.contains(stage) => stage.clone(),
        Some(stage) => {
            return Err(Output::failure(format!(
                "entity `{}` has no stage `{stage}`; its stages: {}",
                entity.name,
                stages.join(", ")
            )));
        }
    };
    Ok((entity.name.clone(), stage, stages))
}
