//! Structure: JSON Schema validation of the parsed file, then deserialisation into the model.
//!
//! The schema is the one `schemars` derives from [`crate::syntax::model`], so the editor and the
//! linter never disagree. Deserialisation never gives up on the first bad value: whatever serde
//! refuses is pruned (the smallest enclosing optional key, else the enclosing named entry) and
//! deserialisation is retried, so that semantic checks still run on everything else.

use std::collections::HashSet;
use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde::Deserialize as _;
use serde_json::Value as Json;

use crate::check::locate::{Locator, pointer_of};
use crate::diagnostic::{Code, Diagnostic, did_you_mean};
use crate::syntax::model::{self, DefinitionFile};

/// The deserialised file plus what had to be pruned to get it.
pub(crate) struct Structured {
    /// The model, if the root object could be read at all.
    pub file: Option<DefinitionFile>,
    /// Entries removed because they did not deserialise, as `(section, name)`, e.g.
    /// `("transitions", "qualify_lead")`. References to them are not reported as unknown.
    pub pruned: HashSet<(String, String)>,
    /// Every pruned JSON pointer; a key missing because it was pruned is not reported again.
    pub pruned_pointers: HashSet<String>,
}

/// Validates `value` against the definition schema and deserialises it, reporting into `out`.
pub(crate) fn validate(value: &Json, locate: &Locator<'_>, out: &mut Vec<Diagnostic>) -> Structured {
    let mut reported = Vec::new();
    // `is_valid` stops at the first failure and builds no errors: the common, valid file pays
    // for one pass only.
    if !validator().is_valid(value) {
        for error in validator().iter_errors(value) {
            reported.push(error.instance_path().as_str().to_owned());
            report(&error, locate, out);
        }
    }
    // Plain serde first: it reads the same thing as `serde_path_to_error`, without recording a
    // path for every value. Only a file that does not deserialise needs the paths, and a copy to
    // prune.
    match DefinitionFile::deserialize(value) {
        Ok(file) => Structured { file: Some(file), pruned: HashSet::new(), pruned_pointers: HashSet::new() },
        Err(_) => deserialize(value.clone(), locate, &reported, out),
    }
}

fn schema() -> &'static Json {
    static SCHEMA: OnceLock<Json> = OnceLock::new();
    SCHEMA.get_or_init(model::json_schema)
}

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        // The schema is generated from our own types; failing to compile it is a build defect
        // that every test would catch at once.
        #[allow(clippy::expect_used)]
        jsonschema::draft7::new(schema()).expect("the derived schema is valid draft-07")
    })
}

fn report(error: &jsonschema::ValidationError<'_>, locate: &Locator<'_>, out: &mut Vec<Diagnostic>) {
    let at = error.instance_path().as_str().to_owned();
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let allowed = allowed_properties(error.schema_path().as_str());
            for key in unexpected {
                let pointer = format!("{at}/{}", escape(key));
                let help = match did_you_mean(key, allowed.iter().map(String::as_str)) {
                    Some(best) => Some(format!("did you mean `{best}`?")),
                    None if !allowed.is_empty() => Some(format!(
                        "allowed keys here: {}",
                        allowed.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                    )),
                    None => None,
                };
                out.push(
                    Diagnostic::new(Code::UnknownKey, locate.key(&pointer), format!("unknown key `{key}`"))
                        .with_label("not part of the definition language here")
                        .with_help_opt(help),
                );
            }
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            out.push(
                Diagnostic::new(
                    Code::MissingField,
                    locate.key(&at),
                    format!("missing required key `{name}`"),
                )
                .with_label(format!("this object needs `{name}`")),
            );
        }
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(ty) => article(&ty.to_string()),
                TypeKind::Multiple(set) => {
                    // `null` stands for "absent" in optional keys; naming it only confuses.
                    let types: Vec<String> = set.iter().map(|t| t.to_string()).collect();
                    let shown: Vec<&String> =
                        types.iter().filter(|t| *t != "null" || types.len() == 1).collect();
                    shown.iter().map(|t| article(t)).collect::<Vec<_>>().join(" or ")
                }
            };
            let found = article(json_type(error.instance()));
            out.push(
                Diagnostic::new(
                    Code::WrongType,
                    locate.value(&at),
                    format!("expected {expected}, found {found}"),
                )
                .with_label(format!("expected {expected}")),
            );
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            report_alternatives(error, context, locate, out);
        }
        ValidationErrorKind::Enum { options } => {
            let options: Vec<String> =
                options.as_array().map(|o| o.iter().map(|v| v.to_string()).collect()).unwrap_or_default();
            let found = error.instance().to_string();
            let unquoted: Vec<&str> = options.iter().map(|o| o.trim_matches('"')).collect();
            let help = match did_you_mean(found.trim_matches('"'), unquoted.iter().copied()) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("expected one of {}", options.join(", ")),
            };
            out.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    locate.value(&at),
                    format!("{found} is not allowed here"),
                )
                .with_label("not one of the allowed values")
                .with_help(help),
            );
        }
        kind => {
            let (message, label) = match kind {
                ValidationErrorKind::MinProperties { limit } => (
                    format!("expected at least {limit} {}", plural(*limit, "entry", "entries")),
                    "too few entries".into(),
                ),
                ValidationErrorKind::MinItems { limit } => (
                    format!("expected at least {limit} {}", plural(*limit, "item", "items")),
                    "too few items".into(),
                ),
                ValidationErrorKind::MaxItems { limit } => (
                    format!("expected at most {limit} {}", plural(*limit, "item", "items")),
                    "too many items".into(),
                ),
                ValidationErrorKind::Minimum { limit } => {
                    (format!("must be at least {limit}"), "too small".into())
                }
                ValidationErrorKind::Maximum { limit } => {
                    (format!("must be at most {limit}"), "too large".into())
                }
                ValidationErrorKind::MinLength { limit } => (
                    format!("must be at least {limit} {} long", plural(*limit, "character", "characters")),
                    "too short".into(),
                ),
                ValidationErrorKind::MaxLength { limit } => (
                    format!("must be at most {limit} {} long", plural(*limit, "character", "characters")),
                    "too long".into(),
                ),
                ValidationErrorKind::Pattern { pattern } => (
                    format!("{} does not match the pattern `{pattern}`", error.instance()),
                    "invalid format".into(),
                ),
                _ => (error.to_string(), "invalid value".to_owned()),
            };
            out.push(Diagnostic::new(Code::InvalidValue, locate.value(&at), message).with_label(label));
        }
    }
}

/// For `anyOf`/`oneOf` failures, report the errors of the alternative that came closest: the one
/// whose errors lie deepest (it matched the shape and failed inside), else a combined type error.
fn report_alternatives(
    error: &jsonschema::ValidationError<'_>,
    context: &[Vec<jsonschema::ValidationError<'static>>],
    locate: &Locator<'_>,
    out: &mut Vec<Diagnostic>,
) {
    let at = error.instance_path().as_str();
    let depth = |errors: &Vec<jsonschema::ValidationError<'static>>| {
        errors.iter().map(|e| e.instance_path().as_str().len()).max().unwrap_or(0)
    };
    let only_type_errors = |errors: &Vec<jsonschema::ValidationError<'static>>| {
        errors
            .iter()
            .all(|e| matches!(e.kind(), ValidationErrorKind::Type { .. }) && e.instance_path().as_str() == at)
    };
    // An enum of documented constants (schemars writes `oneOf: [{const}, …]`): one message with
    // the allowed values and a did-you-mean, instead of one alternative's "x was expected".
    let constants: Option<Vec<String>> = context
        .iter()
        .map(|errors| match errors.as_slice() {
            [only] => match only.kind() {
                ValidationErrorKind::Constant { expected_value } => {
                    expected_value.as_str().map(str::to_owned)
                }
                _ => None,
            },
            _ => None,
        })
        .collect();
    if let Some(allowed) = constants.filter(|c| !c.is_empty()) {
        let found = error.instance();
        let text = found.as_str().map(str::to_owned).unwrap_or_else(|| found.to_string());
        let help = match did_you_mean(&text, allowed.iter().map(String::as_str)) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!(
                "expected one of {}",
                allowed.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
            ),
        };
        out.push(
            Diagnostic::new(Code::InvalidValue, locate.value(at), format!("{found} is not allowed here"))
                .with_label("not one of the allowed values")
                .with_help(help),
        );
        return;
    }
    if context.iter().all(only_type_errors) {
        let mut expected: Vec<String> = context
            .iter()
            .flatten()
            .filter_map(|e| match e.kind() {
                ValidationErrorKind::Type { kind: TypeKind::Single(ty) } => Some(article(&ty.to_string())),
                _ => None,
            })
            .collect();
        expected.dedup();
        let expected = expected.join(" or ");
        let found = article(json_type(error.instance()));
        out.push(
            Diagnostic::new(Code::WrongType, locate.value(at), format!("expected {expected}, found {found}"))
                .with_label(format!("expected {expected}")),
        );
        return;
    }
    // For tagged alternatives (`"type": "role_check"`), the one whose discriminator matched is
    // the one the author meant: it has no `const` failure.
    let discriminated: Vec<&Vec<jsonschema::ValidationError<'static>>> = context
        .iter()
        .filter(|errors| !errors.iter().any(|e| matches!(e.kind(), ValidationErrorKind::Constant { .. })))
        .collect();
    if discriminated.len() == 1 && discriminated.len() < context.len() {
        for inner in discriminated[0] {
            report(inner, locate, out);
        }
        return;
    }
    let closest = context
        .iter()
        .filter(|errors| !only_type_errors(errors))
        .max_by_key(|errors| (depth(errors), usize::MAX - errors.len()));
    match closest {
        Some(errors) => {
            for inner in errors {
                report(inner, locate, out);
            }
        }
        None => out.push(
            Diagnostic::new(Code::InvalidValue, locate.value(at), "value does not match any allowed form")
                .with_label("invalid value"),
        ),
    }
}

/// The property names the schema declares next to the failing `additionalProperties`.
fn allowed_properties(schema_path: &str) -> Vec<String> {
    let parent = schema_path.strip_suffix("/additionalProperties").unwrap_or(schema_path);
    schema()
        .pointer(parent)
        .and_then(|node| node.get("properties"))
        .and_then(Json::as_object)
        .map(|props| props.keys().cloned().collect())
        .unwrap_or_default()
}

/// Top-level sections whose entries other parts of a definition refer to by name.
const SECTIONS: [&str; 4] = ["transitions", "gateways", "actions", "entities"];

/// The entry name recorded when a whole section was dropped.
pub(crate) const ANY_ENTRY: &str = "*";

fn deserialize(
    mut value: Json,
    locate: &Locator<'_>,
    reported: &[String],
    out: &mut Vec<Diagnostic>,
) -> Structured {
    let mut pruned = HashSet::new();
    let mut pruned_pointers = HashSet::new();
    // Each round removes at least one node, so this terminates; the bound keeps pathological
    // inputs (thousands of bad entries) linear in practice.
    for _ in 0..512 {
        let error = match serde_path_to_error::deserialize::<_, DefinitionFile>(&value) {
            Ok(file) => return Structured { file: Some(file), pruned, pruned_pointers },
            Err(error) => error,
        };
        let segments: Vec<String> = error
            .path()
            .iter()
            .map(|segment| match segment {
                serde_path_to_error::Segment::Seq { index } => index.to_string(),
                serde_path_to_error::Segment::Map { key } => key.clone(),
                serde_path_to_error::Segment::Enum { variant } => variant.clone(),
                serde_path_to_error::Segment::Unknown => "?".to_owned(),
            })
            .collect();
        let pointer = pointer_of(segments.iter().map(String::as_str));
        if !reported.iter().any(|r| r.starts_with(&pointer) || pointer.starts_with(r.as_str())) {
            out.push(
                Diagnostic::new(Code::WrongType, locate.value(&pointer), error.inner().to_string())
                    .with_label("cannot be read"),
            );
        }
        if let Some(section) = segments.first().filter(|s| SECTIONS.contains(&s.as_str())) {
            // A whole section dropped counts as every entry of it dropped.
            let name = segments.get(1).cloned().unwrap_or_else(|| ANY_ENTRY.to_owned());
            pruned.insert((section.clone(), name));
        }
        if !remove(&mut value, &segments) {
            return Structured { file: None, pruned, pruned_pointers };
        }
        pruned_pointers.insert(pointer);
    }
    Structured { file: None, pruned, pruned_pointers }
}

/// Removes the node at `segments`; when it is the root or cannot be removed, reports failure.
fn remove(value: &mut Json, segments: &[String]) -> bool {
    let Some((last, parents)) = segments.split_last() else { return false };
    let mut node = value;
    for segment in parents {
        node = match node {
            Json::Object(map) => match map.get_mut(segment) {
                Some(child) => child,
                None => return false,
            },
            Json::Array(items) => match segment.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(child) => child,
                None => return false,
            },
            _ => return false,
        };
    }
    match node {
        Json::Object(map) => map.shift_remove(last).is_some(),
        Json::Array(items) => match last.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn json_type(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

fn article(ty: &str) -> String {
    match ty {
        "null" => "null".to_owned(),
        "array" | "object" | "integer" => format!("an {ty}"),
        _ => format!("a {ty}"),
    }
}

fn plural(count: u64, one: &'static str, many: &'static str) -> &'static str {
    if count == 1 { one } else { many }
}
