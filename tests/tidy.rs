//! Tidy: the layering of `src/` that ARCHITECTURE.md describes, checked on every `cargo test`.
//!
//! Every path into the crate (`crate::…`, `super::…`, `self::…`) in code outside `#[cfg(test)]`
//! is resolved to the module it names; each module belongs to a layer, and [`LAYERS`] lists which
//! layers each may use. A new dependency direction is a deliberate edit of that table, reviewed like
//! code. A second check keeps the modules free of import cycles.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Each layer and the layers it may use. A module belongs to the layer with the longest matching
/// prefix; any layer may use itself, and a parent may use its own submodules (its facade).
/// Mirrors ARCHITECTURE.md ("Dependencies"): change both together.
const LAYERS: &[(&str, &[&str])] = &[
    // Foundations: the rule registry and diagnostics as plain data.
    ("codes", &[]),
    ("diagnostic", &["codes"]),
    // The typed program: the bottom of the compiler, knowing nothing else of ours.
    ("ir", &[]),
    // Text to trees; shares the IR's limits (expression length and nesting).
    ("syntax", &["codes", "diagnostic", "ir"]),
    // Validation and lowering: syntax trees in, IR and diagnostics out.
    ("check", &["codes", "diagnostic", "syntax", "ir"]),
    // Persistence: names as text, data as JSON; nothing of the compiler or the engine.
    ("store", &[]),
    // The interpreter, bottom up.
    // Instance data: validation, records, JSON; reads JSON literals the way definitions do (`check::literal`).
    ("engine::data", &["ir", "check"]),
    ("engine::eval", &["ir", "engine::data"]),
    ("engine::machine", &["diagnostic", "ir", "engine::eval", "engine::data"]),
    // A new version against the live one and its instances (`crm check --against`): names and data.
    ("engine::compat", &["codes", "diagnostic", "ir", "syntax", "check", "store", "engine::data"]),
    (
        "engine::service",
        &[
            "codes",
            "diagnostic",
            "ir",
            "check",
            "store",
            "engine::eval",
            "engine::data",
            "engine::machine",
            "engine::compat",
        ],
    ),
    ("engine::worker", &["store", "engine::service"]),
    ("engine", &[]),
    // Level 1 (`HasCrm`): beside the engine, sharing its evaluator and validator.
    ("level1", &["codes", "diagnostic", "ir", "check", "report", "store", "engine::eval", "engine::data"]),
    // The boundary: rendering, the IR dump, scenario runs, the command line.
    ("report", &["codes", "diagnostic"]),
    ("dump", &["ir", "syntax", "engine::data"]),
    ("graph", &["ir"]),
    // Interactions, attachments, timelines and reports: store APIs only.
    ("records", &["store"]),
    (
        "scenario",
        &[
            "ir",
            "syntax",
            "store",
            "engine",
            "engine::eval",
            "engine::data",
            "engine::machine",
            "engine::service",
        ],
    ),
    // Integrations: delivering outbox actions to the outside world (webhooks, e-mail, Slack, custom).
    (
        "integrations",
        &[
            "codes",
            "diagnostic",
            "ir",
            "store",
            "engine",
            "engine::data",
            "engine::service",
            "engine::worker",
        ],
    ),
    // The HTTP API (`crm serve`): calls the engine and store APIs, never SQL.
    (
        "http",
        &[
            "codes",
            "diagnostic",
            "ir",
            "syntax",
            "check",
            "store",
            "engine",
            "engine::eval",
            "engine::data",
            "engine::machine",
            "engine::service",
            "engine::worker",
            "integrations",
            "report",
            "dump",
            "graph",
            "records",
        ],
    ),
    (
        "cli",
        &[
            "codes",
            "diagnostic",
            "ir",
            "syntax",
            "check",
            "store",
            "engine",
            "engine::eval",
            "engine::data",
            "engine::machine",
            "engine::service",
            "engine::worker",
            "engine::compat",
            "level1",
            "report",
            "dump",
            "scenario",
            "integrations",
            "http",
            "graph",
            "records",
        ],
    ),
    // The crate root declares the modules.
    ("", &[]),
];

#[test]
fn every_module_uses_only_the_layers_it_may() {
    let modules = read_modules();
    let mut violations = String::new();
    for module in &modules {
        let from = layer_of(&module.path);
        let allowed = allowed(from);
        for (target, line) in &module.uses {
            let to = layer_of(target);
            let facade = is_within(to, from) && !from.is_empty() || from.is_empty();
            if to != from && !facade && !allowed.contains(&to) {
                let _ = writeln!(
                    violations,
                    "{}:{line}: `{}` (layer `{from}`) uses `crate::{}` (layer `{to}`)",
                    module.file.display(),
                    module.path,
                    target
                );
            }
        }
    }
    assert!(
        violations.is_empty(),
        "dependencies that ARCHITECTURE.md does not allow (fix the import, or edit LAYERS in tests/tidy.rs and \
         ARCHITECTURE.md together):\n{violations}"
    );
}

#[test]
fn modules_import_one_another_without_cycles() {
    let modules = read_modules();
    let known: BTreeSet<&str> = modules.iter().map(|m| m.path.as_str()).collect();
    // Edges between modules; a parent naming its own submodules (declaring and re-exporting them)
    // is how Rust builds a module, not a dependency, and so are a submodule's uses of its parent.
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for module in &modules {
        for (target, _) in &module.uses {
            let target = deepest_known(target, &known);
            if target != module.path && !is_within(target, &module.path) && !is_within(&module.path, target) {
                edges.entry(module.path.as_str()).or_default().insert(target);
            }
        }
    }
    let cycles = strongly_connected(&known, &edges);
    let report: Vec<String> = cycles.iter().map(|c| c.join(" ↔ ")).collect();
    assert!(report.is_empty(), "modules that import one another:\n{}", report.join("\n"));
}

#[test]
fn the_table_names_every_top_level_module() {
    let modules = read_modules();
    let layers: BTreeSet<&str> = LAYERS.iter().map(|(name, _)| *name).collect();
    for module in &modules {
        let top = module.path.split("::").next().unwrap_or_default();
        assert!(layers.contains(top), "module `{}` has no layer in tests/tidy.rs", module.path);
    }
}

// ---- reading modules --------------------------------------------------------------------------

/// One source file: its module path and every crate path its non-test code names.
struct Module {
    file: PathBuf,
    path: String,
    /// Absolute module paths (without `crate::`) with the line they appear on.
    uses: Vec<(String, usize)>,
}

fn read_modules() -> Vec<Module> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect_rs(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .filter(|file| file.file_name().is_some_and(|n| n != "main.rs"))
        .map(|file| {
            let relative = file.strip_prefix(&src).unwrap_or(&file).to_path_buf();
            let path = module_path(&relative);
            let source = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let code = strip_non_code(&source);
            let uses = crate_paths(&code, &path);
            Module { file: Path::new("src").join(relative), path, uses }
        })
        .collect()
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `engine/machine/mod.rs` → `engine::machine`; `lib.rs` → the root (``).
fn module_path(relative: &Path) -> String {
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" && stem != "lib" {
            parts.push(stem.to_owned());
        }
    }
    parts.join("::")
}

/// The source with comments, string and character literals blanked (line breaks kept), and every
/// item under `#[cfg(test)]` removed: only what the library compiles to is checked.
fn strip_non_code(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    let blank = |c: char, out: &mut String| out.push(if c == '\n' { '\n' } else { ' ' });
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(chars[i], &mut out);
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !prev_is_ident(&chars, i) {
            // Raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                match chars.get(j) {
                    None => break,
                    Some('"') if (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) => {
                        j += 1 + hashes;
                        break;
                    }
                    Some(&other) => blank(other, &mut out),
                }
                j += 1;
            }
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if let Some(&ch) = chars.get(i) {
                    blank(ch, &mut out);
                }
                i += 1;
            }
            i += 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{..}'), or a lifetime ('a) which stays.
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    remove_test_items(&out)
}

fn prev_is_ident(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// Blanks every item that follows a `#[cfg(test)]` attribute, up to its matching `}` or `;`.
fn remove_test_items(code: &str) -> String {
    const MARK: &str = "#[cfg(test)]";
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let mut depth = 0usize;
        let mut end = item.len();
        for (i, c) in item.char_indices().skip(MARK.len()) {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                ';' if depth == 0 => {
                    end = i + 1;
                    break;
                }
                _ => {}
            }
        }
        out.extend(item[..end].chars().map(|c| if c == '\n' { '\n' } else { ' ' }));
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// Every absolute module path named through `crate::`, `super::` or `self::`, with use-tree
/// groups (`use crate::{a, b::{c, d}}`) expanded.
fn crate_paths(code: &str, module: &str) -> Vec<(String, usize)> {
    let tokens = tokenize(code);
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let (token, line) = &tokens[i];
        let starts_path = matches!(token.as_str(), "crate" | "super" | "self")
            && tokens.get(i + 1).is_some_and(|(t, _)| t == "::")
            && (i == 0 || tokens[i - 1].0 != "::");
        if starts_path {
            let base = match base_of(&tokens, &mut i, module) {
                Some(base) => base,
                None => {
                    i += 1;
                    continue;
                }
            };
            let mut paths = Vec::new();
            i = tree(&tokens, i, base, &mut paths);
            found.extend(paths.into_iter().filter(|p| !p.is_empty()).map(|p| (p, *line)));
        } else {
            i += 1;
        }
    }
    found
}

/// Resolves the leading `crate`/`super`/`self` segments to a module path; leaves `i` after the
/// last `::` of the prefix.
fn base_of(tokens: &[(String, usize)], i: &mut usize, module: &str) -> Option<Vec<String>> {
    let mut base: Vec<String> =
        if module.is_empty() { Vec::new() } else { module.split("::").map(String::from).collect() };
    // `super` in `a/b.rs` and in `a/b/mod.rs` (both module `a::b`) is `a`.
    match tokens[*i].0.as_str() {
        "crate" => {
            base.clear();
            *i += 2;
        }
        "self" => *i += 2,
        _ => {
            while tokens.get(*i).is_some_and(|(t, _)| t == "super")
                && tokens.get(*i + 1).is_some_and(|(t, _)| t == "::")
            {
                base.pop()?;
                *i += 2;
            }
        }
    }
    Some(base)
}

/// Parses a path or use tree at `i` under `base`, pushing each module path; returns the index after it.
fn tree(tokens: &[(String, usize)], mut i: usize, mut base: Vec<String>, out: &mut Vec<String>) -> usize {
    loop {
        match tokens.get(i).map(|(t, _)| t.as_str()) {
            Some("{") => {
                i += 1;
                loop {
                    match tokens.get(i).map(|(t, _)| t.as_str()) {
                        Some("}") => return i + 1,
                        Some(",") => i += 1,
                        None => return i,
                        Some(_) => i = tree(tokens, i, base.clone(), out),
                    }
                }
            }
            Some("self") => {
                out.push(base.join("::"));
                return i + 1;
            }
            Some(t) if is_ident(t) => {
                base.push(t.to_owned());
                if tokens.get(i + 1).is_some_and(|(t, _)| t == "::") {
                    i += 2;
                } else {
                    out.push(base.join("::"));
                    return i + 1;
                }
            }
            _ => {
                out.push(base.join("::"));
                return i;
            }
        }
    }
}

fn is_ident(token: &str) -> bool {
    token.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// Identifiers, `::`, and single punctuation characters, each with its 1-based line.
fn tokenize(code: &str) -> Vec<(String, usize)> {
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut chars = code.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c == '\n' {
            line += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let mut end = start + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if d.is_alphanumeric() || d == '_' {
                    end = j + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push((code[start..end].to_owned(), line));
        } else if c == ':' && chars.peek().is_some_and(|&(_, d)| d == ':') {
            chars.next();
            tokens.push(("::".to_owned(), line));
        } else if !c.is_whitespace() {
            tokens.push((c.to_string(), line));
        }
    }
    tokens
}

// ---- layers and cycles ------------------------------------------------------------------------

fn layer_of(path: &str) -> &'static str {
    LAYERS
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| is_within(path, name))
        .max_by_key(|name| name.len())
        .unwrap_or("")
}

fn allowed(layer: &str) -> &'static [&'static str] {
    LAYERS.iter().find(|(name, _)| *name == layer).map_or(&[], |(_, deps)| deps)
}

/// Whether `path` is `prefix` or inside it (`engine::machine::exec` is within `engine::machine`).
fn is_within(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with("::"))
}

/// The deepest known module that `path` names (an item path names its module).
fn deepest_known<'a>(path: &str, known: &BTreeSet<&'a str>) -> &'a str {
    let mut candidate = path;
    loop {
        if let Some(module) = known.get(candidate) {
            return module;
        }
        match candidate.rfind("::") {
            Some(at) => candidate = &candidate[..at],
            None => return known.get("").copied().unwrap_or(""),
        }
    }
}

/// The strongly connected components with more than one module (Tarjan's algorithm).
fn strongly_connected<'a>(
    nodes: &BTreeSet<&'a str>,
    edges: &BTreeMap<&'a str, BTreeSet<&'a str>>,
) -> Vec<Vec<&'a str>> {
    struct State<'a> {
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        components: Vec<Vec<&'a str>>,
    }
    fn visit<'a>(node: &'a str, edges: &BTreeMap<&'a str, BTreeSet<&'a str>>, s: &mut State<'a>) {
        s.index.insert(node, s.next);
        s.low.insert(node, s.next);
        s.next += 1;
        s.stack.push(node);
        s.on_stack.insert(node);
        for &next in edges.get(node).into_iter().flatten() {
            if !s.index.contains_key(next) {
                visit(next, edges, s);
                let low = s.low[node].min(s.low[next]);
                s.low.insert(node, low);
            } else if s.on_stack.contains(next) {
                let low = s.low[node].min(s.index[next]);
                s.low.insert(node, low);
            }
        }
        if s.low[node] == s.index[node] {
            let mut component = Vec::new();
            while let Some(top) = s.stack.pop() {
                s.on_stack.remove(top);
                component.push(top);
                if top == node {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort_unstable();
                s.components.push(component);
            }
        }
    }
    let mut state = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        components: Vec::new(),
    };
    for &node in nodes {
        if !state.index.contains_key(node) {
            visit(node, edges, &mut state);
        }
    }
    state.components
}
