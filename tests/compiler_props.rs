//! Property tests of the front end: whatever text it is given, `check_source` never panics, never
//! returns a definition alongside an error, and only points at real places in the source.
//!
//! Inputs come from four generators, from least to most structured: arbitrary bytes, JSON-token
//! soup, arbitrary JSON values (keys biased towards the definition language's), and mutations of
//! the shipped definitions (byte edits and JSON-pointer replacements), which reach the semantic
//! checks with nearly valid files.

use std::path::Path;
use std::sync::OnceLock;

use nexus_crm::check::{Checked, check_source};
use proptest::prelude::*;
use serde_json::Value as Json;

/// Enough cases to find shallow problems on every run while keeping the suite fast on 2 cores;
/// `PROPTEST_CASES=100000` runs a deeper search.
const CASES: u32 = 256;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(CASES);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_invariants(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn json_token_soup(tokens in proptest::collection::vec(json_token(), 0..64)) {
        check_invariants(&tokens.concat())?;
    }

    #[test]
    fn arbitrary_json_values(value in json_value(), pretty in any::<bool>()) {
        check_invariants(&to_text(&value, pretty))?;
    }

    #[test]
    fn arbitrary_definition_shaped_values(value in definition_shaped()) {
        check_invariants(&to_text(&value, true))?;
    }

    #[test]
    fn mutated_definitions(file in any::<prop::sample::Index>(), mutation in mutation()) {
        let (_, source) = file.get(definitions());
        check_invariants(&mutation.apply(source))?;
    }
}

/// The invariants every result of `check_source` must satisfy.
fn check_invariants(source: &str) -> Result<(), TestCaseError> {
    let checked = check_source(source);
    let errors: Vec<_> = checked.diagnostics.iter().filter(|d| d.is_error()).collect();
    prop_assert!(
        checked.definition.is_none() || errors.is_empty(),
        "a definition was returned together with errors: {errors:#?}"
    );
    prop_assert!(
        checked.definition.is_some() || !errors.is_empty(),
        "no error was reported, yet no definition was returned; findings: {:#?}",
        checked.diagnostics
    );
    for diagnostic in &checked.diagnostics {
        let spans = std::iter::once(&diagnostic.primary).chain(&diagnostic.secondary).map(|label| label.span);
        for span in spans {
            prop_assert!(
                span.start <= span.end && span.end <= source.len(),
                "{} span {}..{} is outside the source ({} bytes): {diagnostic:#?}",
                diagnostic.code,
                span.start,
                span.end,
                source.len()
            );
            prop_assert!(
                source.is_char_boundary(span.start) && source.is_char_boundary(span.end),
                "{} span {}..{} splits a character: {diagnostic:#?}",
                diagnostic.code,
                span.start,
                span.end
            );
        }
    }
    dump_compiled(&checked);
    Ok(())
}

/// Whatever compiles can be dumped (the dump indexes every table by the ids the checker produced).
fn dump_compiled(checked: &Checked) {
    if let Some(definition) = &checked.definition {
        let _ = nexus_crm::dump::to_text(definition);
    }
}

fn to_text(value: &Json, pretty: bool) -> String {
    let text = if pretty { serde_json::to_string_pretty(value) } else { serde_json::to_string(value) };
    text.expect("a serde_json::Value always serialises")
}

// ---- generators -------------------------------------------------------------------------------

/// Words of the definition language, so that generated keys and strings often mean something.
#[rustfmt::skip]
const WORDS: &[&str] = &[
    "id", "$schema", "label", "version", "dataSchema", "entities", "stages", "initial", "terminal", "transitions",
    "gateways", "actions", "sla", "delegation", "integrations", "from", "to", "entity", "trigger", "condition",
    "guards", "approval", "type", "name", "branches", "join", "stage", "action", "duration", "at_risk",
    "breach_actions", "automation", "escalation", "reminders", "after", "before", "target", "users", "roles",
    "strategy", "quorum", "custom", "max_depth", "rules", "start", "end", "compensation", "max_retries",
    "field", "value", "url", "template", "min", "max", "enum", "pattern", "items", "required", "lead", "new",
    "contacted", "qualified", "*", "auto", "manual", "parallel", "inclusive", "quorum", "email", "webhook",
    "set_field", "notify", "sla_breach", "sla_at_risk", "2 days", "75%", "2026-12-24", "number", "string",
    "data.lead_score > 50", "stage == 'new'", "data.x AND", "((", "len()", "é", "\u{1F600}",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![4 => prop::sample::select(WORDS).prop_map(str::to_owned), 1 => ".{0,12}"]
}

fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::from),
        (-1e6f64..1e6).prop_map(Json::from),
        (0u32..8).prop_map(Json::from),
        word().prop_map(Json::String),
    ];
    leaf.prop_recursive(6, 96, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            proptest::collection::vec((word(), inner), 0..6)
                .prop_map(|members| Json::Object(members.into_iter().collect())),
        ]
    })
}

/// An object with the top-level keys of a definition, each holding an arbitrary value; `entities`
/// is often well-formed so that the semantic checks run.
fn definition_shaped() -> impl Strategy<Value = Json> {
    let entities = proptest::collection::vec((word(), proptest::collection::vec(word(), 0..5)), 0..3)
        .prop_map(|entities| {
            Json::Object(
                entities
                    .into_iter()
                    .map(|(name, stages)| (name, serde_json::json!({ "stages": stages })))
                    .collect(),
            )
        });
    let entities = prop_oneof![3 => entities, 1 => json_value()];
    let sections = proptest::collection::vec((prop::sample::select(WORDS), json_value()), 0..6);
    (word(), entities, sections).prop_map(|(id, entities, sections)| {
        let mut object = serde_json::Map::new();
        object.insert("id".to_owned(), Json::String(id));
        object.insert("entities".to_owned(), entities);
        for (key, value) in sections {
            object.insert(key.to_owned(), value);
        }
        Json::Object(object)
    })
}

/// Fragments of JSON text, valid and not, including the escapes the span mapping must survive.
fn json_token() -> impl Strategy<Value = String> {
    #[rustfmt::skip]
    const TOKENS: &[&str] = &[
        "{", "}", "[", "]", ":", ",", " ", "\n", "\"id\"", "\"entities\"", "\"stages\"", "\"lead\"",
        "\"transitions\"", "\"from\"", "\"to\"", "\"condition\"", "\"data.a > 'x'\"", "\"\\u00e9\"", "\"\\ud800\"",
        "\"\\\"\"", "\"a\\", "1", "-0", "1e400", "0.5", "true", "null", "nul", "//", "/*", "'", "\u{feff}", "\t",
    ];
    prop::sample::select(TOKENS).prop_map(str::to_owned)
}

/// One edit to a definition's text.
#[derive(Clone, Debug)]
enum Mutation {
    /// Delete the bytes `start..start + len` (both taken modulo the length).
    Delete { start: usize, len: usize },
    /// Insert `text` before byte `at`.
    Insert { at: usize, text: String },
    /// Replace the bytes `start..start + len` by `text`.
    Replace { start: usize, len: usize, text: String },
    /// Set the value at one of the file's JSON pointers (chosen by `node`) to `value`.
    SetPointer { node: prop::sample::Index, value: Json },
    /// Remove the member or element at one of the file's JSON pointers.
    RemovePointer { node: prop::sample::Index },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let text = prop_oneof![word(), json_token(), ".{0,8}"];
    prop_oneof![
        1 => (any::<usize>(), 1usize..64).prop_map(|(start, len)| Mutation::Delete { start, len }),
        1 => (any::<usize>(), text.clone()).prop_map(|(at, text)| Mutation::Insert { at, text }),
        1 => (any::<usize>(), 1usize..16, text).prop_map(|(start, len, text)| Mutation::Replace { start, len, text }),
        2 => (any::<prop::sample::Index>(), json_value()).prop_map(|(node, value)| Mutation::SetPointer { node, value }),
        1 => any::<prop::sample::Index>().prop_map(|node| Mutation::RemovePointer { node }),
    ]
}

impl Mutation {
    fn apply(&self, source: &str) -> String {
        let bytes = source.as_bytes();
        let edit = |start: usize, len: usize, text: &str| {
            let start = start % (bytes.len() + 1);
            let end = (start + len).min(bytes.len());
            let mut out = bytes[..start].to_vec();
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(&bytes[end..]);
            String::from_utf8_lossy(&out).into_owned()
        };
        match self {
            Mutation::Delete { start, len } => edit(*start, *len, ""),
            Mutation::Insert { at, text } => edit(*at, 0, text),
            Mutation::Replace { start, len, text } => edit(*start, *len, text),
            Mutation::SetPointer { node, value } => edit_tree(source, node, |tree, pointer| {
                if let Some(slot) = tree.pointer_mut(pointer) {
                    *slot = value.clone();
                }
            }),
            Mutation::RemovePointer { node } => edit_tree(source, node, |tree, pointer| {
                let Some((parent, key)) = pointer.rsplit_once('/') else { return };
                let key = key.replace("~1", "/").replace("~0", "~");
                match tree.pointer_mut(parent) {
                    Some(Json::Object(map)) => {
                        map.shift_remove(&key);
                    }
                    Some(Json::Array(items)) => {
                        if let Some(i) = key.parse::<usize>().ok().filter(|&i| i < items.len()) {
                            items.remove(i);
                        }
                    }
                    _ => {}
                }
            }),
        }
    }
}

/// Parses `source`, applies `edit` at the pointer `node` selects, and prints the tree again.
fn edit_tree(source: &str, node: &prop::sample::Index, edit: impl FnOnce(&mut Json, &str)) -> String {
    let mut tree: Json = serde_json::from_str(source).expect("shipped definitions are valid JSON");
    let pointers = pointers(&tree);
    let pointer: &String = node.get(&pointers);
    edit(&mut tree, pointer);
    to_text(&tree, true)
}

/// Every JSON pointer in `value`, the root (`""`) first.
fn pointers(value: &Json) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), value)];
    while let Some((pointer, node)) = stack.pop() {
        match node {
            Json::Object(map) => {
                for (key, child) in map {
                    stack.push((format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1")), child));
                }
            }
            Json::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    stack.push((format!("{pointer}/{i}"), child));
                }
            }
            _ => {}
        }
        out.push(pointer);
    }
    out
}

/// The shipped definitions, `(file name, text)`, sorted by name and read once.
fn definitions() -> &'static [(String, String)] {
    static DEFINITIONS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    DEFINITIONS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("definitions");
        let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
            .expect("definitions/ exists")
            .map(|entry| entry.expect("definitions/ can be listed").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .map(|path| {
                let text = std::fs::read_to_string(&path).expect("definitions are UTF-8 text");
                (path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), text)
            })
            .collect();
        files.sort();
        assert!(!files.is_empty(), "definitions/ has no definitions to mutate");
        files
    })
}
