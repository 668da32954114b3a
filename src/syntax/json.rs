//! Strict JSON (RFC 8259) to an owned tree with byte spans, keeping duplicate keys.
//!
//! [`parse`] is the entry point. The tree remembers where every key and value came from, and a
//! [`JsonString`] maps offsets in its decoded value back to the file, so a diagnostic about a
//! condition expression inside a string can underline the exact character.
//!
//! Decisions, where RFC 8259 leaves room or serde_json differs:
//! - Numbers are read exactly as serde_json reads them (without `arbitrary_precision`): integers
//!   that fit `u64` or `i64` stay integers, other integers and all decimals become the nearest
//!   `f64` (`-0` is `-0.0`), and a number beyond the `f64` range (`1e400`) is an error.
//! - Duplicate keys are reported ([`Code::DuplicateKey`]) but kept; lookups and [`Node::to_value`]
//!   use the last one, as serde_json does.
//! - Nesting deeper than [`MAX_DEPTH`] is rejected ([`Code::TooDeep`]) by a linear pre-scan before
//!   the recursive-descent grammar runs, so no input can exhaust the stack; every tree [`parse`]
//!   returns is at most that deep, which bounds the recursion of [`Node::to_value`] and of `Drop`.
//! - A leading UTF-8 byte order mark is skipped. Lone surrogate escapes (`"\ud800"`) are errors.
//!
//! Otherwise a text is accepted exactly when `serde_json::from_str::<serde_json::Value>` accepts it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use pest::Parser as _;
use pest::Token;
use pest::error::{ErrorVariant, InputLocation};
use serde_json::{Map, Number, Value};

use self::grammar::{JsonParser, Rule};
use crate::diagnostic::{Code, Diagnostic, Span, did_you_mean};

/// The deepest nesting of arrays and objects that [`parse`] accepts (serde_json accepts 127).
pub const MAX_DEPTH: usize = 128;

/// A JSON value and the byte span it was parsed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The whole value in the source, brackets and quotes included.
    pub span: Span,
    /// What the value is.
    pub kind: NodeKind,
}

/// The shape of a [`Node`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as serde_json reads it.
    Number(Number),
    /// A string.
    String(JsonString),
    /// An array.
    Array(Vec<Node>),
    /// An object's members in source order, duplicate keys included.
    Object(Vec<Member>),
}

/// One `"key": value` pair of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The key, with its span.
    pub key: JsonString,
    /// The value.
    pub value: Node,
}

/// A string literal: its decoded value, its span, and how to map decoded offsets to the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonString {
    /// The decoded value (escapes resolved).
    pub value: String,
    /// The literal in the source, quotes included.
    pub span: Span,
    /// The escapes, in order; empty (no allocation) for the common string without escapes.
    escapes: Box<[Escape]>,
}

/// One escape sequence: where it starts in the decoded value and in the source (both relative to
/// the first byte after the opening quote), and how long it is in each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Escape {
    decoded: usize,
    source: usize,
    decoded_len: u8,
    source_len: u8,
}

/// Parses `source` as one JSON value; the tree is `None` if the text is not well-formed JSON.
///
/// Syntax errors stop the parse at the first one ([`Code::JsonSyntax`], [`Code::TooDeep`]);
/// duplicate keys ([`Code::DuplicateKey`]) are all reported and the tree is still returned.
pub fn parse(source: &str) -> (Option<Node>, Vec<Diagnostic>) {
    let scan = prescan(source.as_bytes());
    // Past the depth limit the grammar could recurse without bound: parse only the text before
    // the offending bracket, to report any earlier syntax error first.
    let text = scan.too_deep.and_then(|at| source.get(..at)).unwrap_or(source);
    let first_error = match JsonParser::parse(Rule::json, text) {
        Ok(pairs) if scan.too_deep.is_none() && scan.control.is_none() => {
            return Builder::new(source).build(pairs.tokens());
        }
        Ok(_) => None,
        Err(error) => {
            let at = match error.location {
                InputLocation::Pos(at) | InputLocation::Span((at, _)) => at,
            };
            match error.variant {
                // An error where the text was cut is the depth limit, reported below.
                ErrorVariant::ParsingError { positives, .. } => (at < text.len() || scan.too_deep.is_none())
                    .then(|| syntax_error(source, at, Expected::from_rules(&positives))),
                // pest's stack guard: the thread's stack cannot hold even `MAX_DEPTH` levels.
                ErrorVariant::CustomError { message } => Some(Diagnostic::new(
                    Code::TooDeep,
                    Span::new(at, at),
                    format!("JSON nests too deeply for the parser's stack ({message})"),
                )),
            }
        }
    };
    let control = scan.control.map(|(at, string)| control_character(source, at, string));
    let too_deep = scan.too_deep.map(|at| {
        Diagnostic::new(
            Code::TooDeep,
            Span::new(at, at + 1),
            format!("JSON nests deeper than {MAX_DEPTH} levels"),
        )
        .with_label(format!("level {}", MAX_DEPTH + 1))
        .with_help("flatten the structure")
    });
    let earliest =
        [first_error, control, too_deep].into_iter().flatten().min_by_key(|d| d.primary.span.start);
    (None, earliest.into_iter().collect())
}

impl Node {
    /// Converts to a `serde_json::Value`; of duplicate keys the last value wins, in the first's place.
    pub fn to_value(&self) -> Value {
        match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Bool(value) => Value::Bool(*value),
            NodeKind::Number(value) => Value::Number(value.clone()),
            NodeKind::String(value) => Value::String(value.value.clone()),
            NodeKind::Array(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            NodeKind::Object(members) => {
                let mut map = Map::with_capacity(members.len());
                for member in members {
                    map.insert(member.key.value.clone(), member.value.to_value());
                }
                Value::Object(map)
            }
        }
    }

    /// The value of `key` if this is an object that has it (the last one if duplicated).
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.member(key).map(|member| &member.value)
    }

    /// The member named `key` if this is an object that has it (the last one if duplicated).
    pub fn member(&self, key: &str) -> Option<&Member> {
        self.as_object()?.iter().rev().find(|member| member.key.value == key)
    }

    /// The node an RFC 6901 JSON pointer (`/stages/0/name`, `~1` for `/`, `~0` for `~`) addresses.
    pub fn pointer(&self, pointer: &str) -> Option<&Node> {
        if pointer.is_empty() {
            return Some(self);
        }
        pointer.strip_prefix('/')?.split('/').try_fold(self, |node, token| node.child(&unescape(token)))
    }

    /// The object member whose value `pointer` addresses, to point at its key; `None` for the
    /// root and for array elements.
    pub fn member_at(&self, pointer: &str) -> Option<&Member> {
        let (parent, key) = pointer.rsplit_once('/')?;
        self.pointer(parent)?.member(&unescape(key))
    }

    /// The string's decoded value, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        self.as_string().map(JsonString::as_str)
    }

    /// The string literal, if this is a string.
    pub fn as_string(&self) -> Option<&JsonString> {
        match &self.kind {
            NodeKind::String(string) => Some(string),
            _ => None,
        }
    }

    /// The members, if this is an object.
    pub fn as_object(&self) -> Option<&[Member]> {
        match &self.kind {
            NodeKind::Object(members) => Some(members),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The value, if this is `true` or `false`.
    pub fn as_bool(&self) -> Option<bool> {
        match self.kind {
            NodeKind::Bool(value) => Some(value),
            _ => None,
        }
    }

    /// The number, if this is a number.
    pub fn as_number(&self) -> Option<&Number> {
        match &self.kind {
            NodeKind::Number(number) => Some(number),
            _ => None,
        }
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self.kind, NodeKind::Null)
    }

    /// The JSON type's name for messages: `"null"`, `"boolean"`, `"number"`, `"string"`, `"array"`
    /// or `"object"`.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "boolean",
            NodeKind::Number(_) => "number",
            NodeKind::String(_) => "string",
            NodeKind::Array(_) => "array",
            NodeKind::Object(_) => "object",
        }
    }

    fn child(&self, token: &str) -> Option<&Node> {
        match &self.kind {
            NodeKind::Object(_) => self.get(token),
            NodeKind::Array(items) => items.get(array_index(token)?),
            _ => None,
        }
    }
}

impl JsonString {
    /// The decoded value.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The text between the quotes in the source.
    pub fn content_span(&self) -> Span {
        Span::new(self.span.start + 1, self.span.end.saturating_sub(1).max(self.span.start + 1))
    }

    /// Whether the literal contains escapes, i.e. whether decoded and source offsets differ.
    pub fn has_escapes(&self) -> bool {
        !self.escapes.is_empty()
    }

    /// Maps a byte range of the decoded value to the source bytes it was decoded from.
    ///
    /// A range that starts or ends inside the output of one escape widens to the whole escape;
    /// offsets past the end of the value clamp to it.
    pub fn source_span(&self, inner: Span) -> Span {
        let base = self.span.start + 1;
        Span::new(base + self.source_offset(inner.start, false), base + self.source_offset(inner.end, true))
    }

    fn source_offset(&self, decoded: usize, round_up: bool) -> usize {
        let decoded = decoded.min(self.value.len());
        // Escapes that end at or before `decoded` shift it by their length difference.
        let before = self.escapes.partition_point(|e| e.decoded + usize::from(e.decoded_len) <= decoded);
        let shifted = match before.checked_sub(1).and_then(|last| self.escapes.get(last)) {
            Some(e) => {
                decoded - (e.decoded + usize::from(e.decoded_len)) + e.source + usize::from(e.source_len)
            }
            None => decoded,
        };
        match self.escapes.get(before) {
            Some(e) if e.decoded < decoded => e.source + if round_up { usize::from(e.source_len) } else { 0 },
            _ => shifted,
        }
    }
}

mod grammar {
    #[derive(pest_derive::Parser)]
    #[grammar = "grammar/json.pest"]
    pub(super) struct JsonParser;
}

/// What the linear pre-scan found: the first control character the grammar leaves to it (with
/// the opening quote of the string it is in, if any) and the first bracket beyond [`MAX_DEPTH`].
#[derive(Default)]
struct Scan {
    control: Option<(usize, Option<usize>)>,
    too_deep: Option<usize>,
}

/// Tracks string state and bracket depth byte by byte. On any prefix that is valid JSON it
/// tokenizes exactly like the grammar, so its findings agree with where pest would fail.
fn prescan(bytes: &[u8]) -> Scan {
    let mut scan = Scan::default();
    let mut depth = 0usize;
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'"' => {
                let start = at;
                at += 1;
                while let Some(&byte) = bytes.get(at) {
                    match byte {
                        b'"' => break,
                        b'\\' => at += 1,
                        0..0x20 if scan.control.is_none() => scan.control = Some((at, Some(start))),
                        _ => {}
                    }
                    at += 1;
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    scan.too_deep = Some(at);
                    break;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'\t' | b'\n' | b'\r' => {}
            0..0x20 if scan.control.is_none() => scan.control = Some((at, None)),
            _ => {}
        }
        at += 1;
    }
    scan
}

/// Builds the tree from pest's flat token stream with explicit stacks (no recursion): containers
/// collect their children on shared stacks and take them with one exact-size allocation.
struct Builder<'s> {
    source: &'s str,
    nodes: Vec<Node>,
    members: Vec<Member>,
    frames: Vec<Frame>,
    root: Option<Node>,
    diagnostics: Vec<Diagnostic>,
    malformed: bool,
}

/// An open container: where it starts, where its children start on the shared stack, and for
/// objects the key waiting for its value.
enum Frame {
    Array { start: usize, first: usize },
    Object { start: usize, first: usize, key: Option<JsonString> },
}

impl<'s> Builder<'s> {
    fn new(source: &'s str) -> Self {
        Self {
            source,
            nodes: Vec::new(),
            members: Vec::new(),
            frames: Vec::new(),
            root: None,
            diagnostics: Vec::new(),
            malformed: false,
        }
    }

    fn build<'i>(mut self, tokens: impl Iterator<Item = Token<'i, Rule>>) -> (Option<Node>, Vec<Diagnostic>) {
        let mut leaf_start = 0;
        for token in tokens {
            match token {
                Token::Start { rule: Rule::array, pos } => {
                    self.frames.push(Frame::Array { start: pos.pos(), first: self.nodes.len() });
                }
                Token::Start { rule: Rule::object, pos } => {
                    self.frames.push(Frame::Object {
                        start: pos.pos(),
                        first: self.members.len(),
                        key: None,
                    });
                }
                // Scalars and keys are atomic: their end token comes next.
                Token::Start { pos, .. } => leaf_start = pos.pos(),
                Token::End { rule, pos } => self.end(rule, Span::new(leaf_start, pos.pos())),
            }
        }
        let root = if self.malformed { None } else { self.root };
        (root, self.diagnostics)
    }

    /// Handles the end of `rule`; `span` is only meaningful for scalars and keys.
    fn end(&mut self, rule: Rule, span: Span) {
        let kind = match rule {
            Rule::array | Rule::object => return self.close(span.end),
            Rule::key => {
                let key = self.string(span);
                if let Some(Frame::Object { key: slot, .. }) = self.frames.last_mut() {
                    *slot = Some(key);
                }
                return;
            }
            Rule::string => NodeKind::String(self.string(span)),
            Rule::number => self.number(span),
            Rule::boolean => NodeKind::Bool(self.source.get(span.start..span.end) == Some("true")),
            Rule::null => NodeKind::Null,
            _ => return,
        };
        self.push(Node { span, kind });
    }

    fn close(&mut self, end: usize) {
        let node = match self.frames.pop() {
            Some(Frame::Array { start, first }) => Node {
                span: Span::new(start, end),
                kind: NodeKind::Array(self.nodes.drain(first..).collect()),
            },
            Some(Frame::Object { start, first, .. }) => {
                let members = self.members.get(first..).unwrap_or_default();
                report_duplicates(members, &mut self.diagnostics);
                Node {
                    span: Span::new(start, end),
                    kind: NodeKind::Object(self.members.drain(first..).collect()),
                }
            }
            None => return,
        };
        self.push(node);
    }

    fn push(&mut self, node: Node) {
        match self.frames.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Array { .. }) => self.nodes.push(node),
            Some(Frame::Object { key, .. }) => {
                if let Some(key) = key.take() {
                    self.members.push(Member { key, value: node });
                }
            }
        }
    }

    fn string(&mut self, span: Span) -> JsonString {
        let raw = self.source.get(span.start + 1..span.end.saturating_sub(1)).unwrap_or_default();
        match decode(raw, span.start + 1) {
            Ok((value, escapes)) => JsonString { value, span, escapes },
            Err(diagnostic) => {
                self.fail(diagnostic);
                JsonString { value: String::new(), span, escapes: Box::default() }
            }
        }
    }

    fn number(&mut self, span: Span) -> NodeKind {
        let text = self.source.get(span.start..span.end).unwrap_or_default();
        // Non-negative integers, the common case, parse directly: serde_json keeps every one that
        // fits `u64`. The rest goes through serde_json so that negative and big integers, `-0`
        // and float rounding come out exactly as it reads them.
        let number = match text.parse::<u64>() {
            Ok(integer) => Some(Number::from(integer)),
            Err(_) => serde_json::from_str::<Number>(text).ok(),
        };
        match number {
            Some(number) => NodeKind::Number(number),
            None => {
                self.fail(
                    Diagnostic::new(Code::JsonSyntax, span, "number out of range")
                        .with_label("too large for a 64-bit floating-point number"),
                );
                NodeKind::Null
            }
        }
    }

    fn fail(&mut self, diagnostic: Diagnostic) {
        self.malformed = true;
        self.diagnostics.push(diagnostic);
    }
}

/// Decodes the escapes of a string body that starts at byte `base` of the source. The grammar
/// has checked the escape syntax; what is left to check is surrogate pairing.
fn decode(raw: &str, base: usize) -> Result<(String, Box<[Escape]>), Diagnostic> {
    let Some(first) = raw.find('\\') else {
        return Ok((raw.to_owned(), Box::default()));
    };
    let mut value = String::with_capacity(raw.len());
    let mut escapes = Vec::new();
    let mut copied = 0;
    let mut next = Some(first);
    while let Some(at) = next {
        value.push_str(raw.get(copied..at).unwrap_or_default());
        let (decoded, source_len) =
            decode_escape(raw, at).ok_or_else(|| unpaired_surrogate(raw, base, at))?;
        let decoded_len = decoded.len_utf8();
        escapes.push(Escape { decoded: value.len(), source: at, decoded_len: decoded_len as u8, source_len });
        value.push(decoded);
        copied = at + usize::from(source_len);
        next = raw.get(copied..).and_then(|rest| rest.find('\\')).map(|offset| copied + offset);
    }
    value.push_str(raw.get(copied..).unwrap_or_default());
    Ok((value, escapes.into_boxed_slice()))
}

/// The character the escape at `at` stands for and the escape's length in the source; `None` for
/// an unpaired surrogate, the one failure the grammar lets through.
fn decode_escape(raw: &str, at: usize) -> Option<(char, u8)> {
    let simple = match raw.as_bytes().get(at + 1)? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => {
            let high = hex4(raw, at + 2)?;
            if !(0xD800..=0xDBFF).contains(&high) {
                return char::from_u32(high).map(|c| (c, 6));
            }
            let low = hex4(raw, at + 8).filter(|low| (0xDC00..=0xDFFF).contains(low))?;
            raw.get(at + 6..at + 8).filter(|escape| *escape == "\\u")?;
            return char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)).map(|c| (c, 12));
        }
        _ => return None,
    };
    Some((simple, 2))
}

/// The four hex digits at `at`.
fn hex4(raw: &str, at: usize) -> Option<u32> {
    raw.get(at..at + 4)
        .filter(|digits| digits.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|digits| u32::from_str_radix(digits, 16).ok())
}

fn unpaired_surrogate(raw: &str, base: usize, at: usize) -> Diagnostic {
    let escape = raw.get(at..at + 6).unwrap_or("\\u");
    Diagnostic::new(
        Code::JsonSyntax,
        Span::new(base + at, base + at + escape.len()),
        format!("unpaired surrogate `{escape}`"),
    )
    .with_help("`\\uD800`–`\\uDBFF` must be followed by `\\uDC00`–`\\uDFFF`, forming one character")
}

/// Reports every key of `members` that repeats an earlier one.
fn report_duplicates(members: &[Member], diagnostics: &mut Vec<Diagnostic>) {
    let mut report = |first: Span, again: &JsonString| {
        diagnostics.push(
            Diagnostic::new(Code::DuplicateKey, again.span, format!("duplicate key `{}`", again.value))
                .with_label("defined again here")
                .with_secondary(first, "first defined here")
                .with_help("the last definition wins; remove or rename one of them"),
        );
    };
    // A quadratic scan beats hashing for the small objects that dominate definitions.
    if members.len() <= 16 {
        for (index, member) in members.iter().enumerate() {
            if let Some(first) = members.iter().take(index).find(|m| m.key.value == member.key.value) {
                report(first.key.span, &member.key);
            }
        }
        return;
    }
    let mut seen = HashMap::with_capacity(members.len());
    for member in members {
        match seen.entry(member.key.value.as_str()) {
            Entry::Occupied(first) => report(*first.get(), &member.key),
            Entry::Vacant(slot) => {
                slot.insert(member.key.span);
            }
        }
    }
}

fn unescape(token: &str) -> Cow<'_, str> {
    if token.contains('~') {
        Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
    } else {
        Cow::Borrowed(token)
    }
}

/// An RFC 6901 array index: decimal digits without a leading zero.
fn array_index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() > 1) {
        return None;
    }
    token.parse().ok()
}

/// What pest expected at the error position, from the rules it tried there.
#[derive(Clone, Copy, Default)]
struct Expected {
    value: bool,
    key: bool,
    colon: bool,
    comma: bool,
    close_brace: bool,
    close_bracket: bool,
    end: bool,
}

impl Expected {
    fn from_rules(rules: &[Rule]) -> Self {
        let mut expected = Self::default();
        for rule in rules {
            match rule {
                // pest reports the top rule instead of the value alternatives when all fail at 0.
                Rule::json
                | Rule::object
                | Rule::array
                | Rule::string
                | Rule::number
                | Rule::boolean
                | Rule::null => {
                    expected.value = true;
                }
                Rule::key => expected.key = true,
                Rule::colon => expected.colon = true,
                Rule::comma => expected.comma = true,
                Rule::close_brace => expected.close_brace = true,
                Rule::close_bracket => expected.close_bracket = true,
                Rule::EOI => expected.end = true,
                _ => {}
            }
        }
        expected
    }

    /// "a value", "`,` or `}`", …
    fn describe(self) -> String {
        let items: Vec<&str> = [
            (self.value, "a value"),
            (self.key, "a key"),
            (self.colon, "`:`"),
            (self.comma, "`,`"),
            (self.close_brace, "`}`"),
            (self.close_bracket, "`]`"),
            (self.end, "end of file"),
        ]
        .into_iter()
        .filter_map(|(wanted, item)| wanted.then_some(item))
        .collect();
        match items.split_last() {
            None => "valid JSON".to_owned(),
            Some((last, [])) => (*last).to_owned(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        }
    }
}

/// Turns pest's failure at byte `at` into a readable [`Code::JsonSyntax`] diagnostic by looking
/// at what is there.
fn syntax_error(source: &str, at: usize, expected: Expected) -> Diagnostic {
    let rest = source.get(at..).unwrap_or_default();
    let error = |span: Span, message: String| Diagnostic::new(Code::JsonSyntax, span, message);
    let next = rest.chars().next();

    if rest.starts_with("//") || rest.starts_with("/*") {
        let len = if rest.starts_with("//") {
            rest.find('\n').unwrap_or(rest.len())
        } else {
            rest.find("*/").map_or(rest.len(), |end| end + 2)
        };
        return error(Span::new(at, at + len), "comments are not allowed in JSON".into())
            .with_help("remove the comment, or move it into a string value");
    }
    if next == Some('"')
        && (expected.value || expected.key)
        && let Some(diagnostic) = string_error(source, at)
    {
        return diagnostic;
    }
    let before = source.get(..at).unwrap_or_default().trim_end_matches([' ', '\t', '\r', '\n']);
    if matches!(next, Some(']' | '}')) && (expected.value || expected.key) && before.ends_with(',') {
        let comma = before.len() - 1;
        return error(Span::new(comma, comma + 1), "trailing commas are not allowed".into())
            .with_label("remove this comma");
    }
    if next == Some('\'') && (expected.value || expected.key) {
        let end = rest.get(1..).and_then(|s| s.find(['\'', '\n'])).map_or(rest.len(), |end| end + 2);
        return error(Span::new(at, at + end), "strings must use double quotes".into())
            .with_help("replace the single quotes with `\"`");
    }
    let (found_span, found) = describe_found(source, at);
    if expected.key && !expected.value && next.is_some_and(is_word_start) {
        let word = source.get(found_span.start..found_span.end).unwrap_or_default();
        return error(found_span, "object keys must be strings in double quotes".into())
            .with_help(format!("write `\"{word}\"`"));
    }
    if expected.value {
        if let Some(diagnostic) = value_error(source, at, found_span) {
            return diagnostic;
        }
        if source.trim_start_matches('\u{feff}').trim_start_matches([' ', '\t', '\r', '\n']).is_empty() {
            return error(Span::new(0, 0), "the file is empty".into()).with_label("expected a JSON value");
        }
    }
    if (expected.comma || expected.end)
        && let Some(diagnostic) = number_tail_error(source, at)
    {
        return diagnostic;
    }

    let diagnostic = error(found_span, format!("expected {}, found {found}", expected.describe()));
    match next {
        None => match unclosed_opener(source, at) {
            Some(open) => diagnostic.with_secondary(open, "never closed"),
            None => diagnostic,
        },
        Some(close @ (']' | '}')) => match unclosed_opener(source, at) {
            // A closer of the wrong kind: show what it was meant to close.
            Some(open)
                if source.as_bytes().get(open.start) != Some(&if close == ']' { b'[' } else { b'{' }) =>
            {
                diagnostic.with_secondary(open, "opened here")
            }
            Some(_) => diagnostic,
            None => diagnostic.with_help(format!("this `{close}` closes nothing")),
        },
        Some(c) if expected.comma && starts_value(c) => {
            let what = if expected.close_brace { "members" } else { "elements" };
            diagnostic.with_help(format!("separate {what} with `,`"))
        }
        Some('=') if expected.colon => diagnostic.with_help("separate a key from its value with `:`"),
        Some(_) if expected.end => diagnostic.with_help("a JSON file holds exactly one value"),
        Some(_) => diagnostic,
    }
}

/// A value position holding something JSON does not have: `True`, `NaN`, `+1`, `.5`, `-x`.
fn value_error(source: &str, at: usize, found: Span) -> Option<Diagnostic> {
    let rest = source.get(at..).unwrap_or_default();
    let word = source.get(found.start..found.end).unwrap_or_default();
    let error = |span: Span, message: &str| Some(Diagnostic::new(Code::JsonSyntax, span, message));
    let mut chars = rest.chars();
    match (chars.next()?, chars.next()) {
        ('-', next) if !next.is_some_and(|c| c.is_ascii_digit()) => {
            return error(Span::new(at, at + 1), "expected a digit after `-`");
        }
        ('+', _) => return error(Span::new(at, at + 1), "numbers cannot start with `+`"),
        ('.', _) => {
            let len = rest.find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-')));
            let number = rest.get(..len.unwrap_or(rest.len())).unwrap_or_default();
            return error(Span::new(at, at + number.len()), "numbers must start with a digit")
                .map(|d| d.with_help(format!("write `0{number}`")));
        }
        (c, _) if is_word_start(c) => {}
        _ => return None,
    }
    let help = match word.to_ascii_lowercase().as_str() {
        lower @ ("true" | "false" | "null") => format!("JSON literals are lower case: write `{lower}`"),
        "nan" | "infinity" | "inf" => "JSON has no NaN or infinity; use `null` or a string".to_owned(),
        "undefined" | "none" | "nil" => "write `null`".to_owned(),
        _ => match did_you_mean(word, ["true", "false", "null"]) {
            Some(literal) => format!("did you mean `{literal}`?"),
            None => format!("if this is meant as a string, write `\"{word}\"`"),
        },
    };
    error(found, &format!("expected a value, found `{word}`")).map(|d| d.with_help(help))
}

/// A number that pest ended early because what follows cannot continue it: `07`, `1.`, `1e`.
fn number_tail_error(source: &str, at: usize) -> Option<Diagnostic> {
    let before = source.get(..at)?;
    let number_start = before
        .rfind(|c: char| !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E')))
        .map_or(0, |i| i + 1);
    let number = before.get(number_start..)?;
    if !number.ends_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let next = source.get(at..)?.chars().next()?;
    let error = |span: Span, message: &str| Some(Diagnostic::new(Code::JsonSyntax, span, message));
    let has_fraction_or_exponent = number.contains(['.', 'e', 'E']);
    match next {
        '0'..='9' if matches!(number, "0" | "-0") => {
            let digits = source.get(at..)?.find(|c: char| !c.is_ascii_digit()).unwrap_or(source.len() - at);
            error(Span::new(number_start, at + digits), "numbers cannot have leading zeros")
                .map(|d| d.with_help("write the number without leading zeros, or as a string"))
        }
        '.' if !has_fraction_or_exponent => {
            error(Span::new(at, at + 1), "expected a digit after the decimal point")
        }
        'e' | 'E' if !number.contains(['e', 'E']) => {
            error(Span::new(at, at + 1), "expected a digit in the exponent")
                .map(|d| d.with_help("write an exponent such as `1e3` or `2.5E-4`"))
        }
        _ => None,
    }
}

/// Why the string literal whose opening quote is at `quote` cannot be lexed, if it cannot.
fn string_error(source: &str, quote: usize) -> Option<Diagnostic> {
    let bytes = source.as_bytes();
    let mut at = quote + 1;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'"' => return None,
            b'\\' => {
                let escape = source.get(at..)?;
                let hex = escape.get(2..).unwrap_or_default();
                let hex_len = hex.bytes().take(4).take_while(u8::is_ascii_hexdigit).count();
                match escape.as_bytes().get(1) {
                    None => break,
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => at += 2,
                    Some(b'u') if hex_len == 4 => at += 6,
                    Some(b'u') => {
                        return Some(
                            Diagnostic::new(
                                Code::JsonSyntax,
                                Span::new(at, at + 2 + hex_len),
                                "invalid unicode escape",
                            )
                            .with_label("expected four hex digits")
                            .with_help("write e.g. `\\u00e9` for `é`"),
                        );
                    }
                    Some(_) => {
                        let len = 1 + escape.get(1..)?.chars().next()?.len_utf8();
                        let text = escape.get(..len)?;
                        return Some(
                            Diagnostic::new(Code::JsonSyntax, Span::new(at, at + len), format!("invalid escape `{text}`"))
                                .with_help(r#"the escapes are `\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t` and `\uXXXX`"#),
                        );
                    }
                }
            }
            0..0x20 => return Some(control_character(source, at, Some(quote))),
            _ => at += 1,
        }
    }
    Some(
        Diagnostic::new(Code::JsonSyntax, Span::new(quote, quote + 1), "unterminated string")
            .with_label("this string is never closed"),
    )
}

/// A raw control character at `at`, in the string opened at `quote` if any.
fn control_character(source: &str, at: usize, quote: Option<usize>) -> Diagnostic {
    let byte = source.as_bytes().get(at).copied().unwrap_or_default();
    let span = Span::new(at, at + 1);
    let Some(quote) = quote else {
        return Diagnostic::new(Code::JsonSyntax, span, format!("unexpected control character U+{byte:04X}"))
            .with_help("JSON allows only spaces, tabs and line breaks between values");
    };
    let diagnostic = match byte {
        b'\n' | b'\r' => Diagnostic::new(Code::JsonSyntax, span, "unterminated string")
            .with_label("line break inside a string")
            .with_help("close the string with `\"`, or write `\\n` for a line break inside it"),
        b'\t' => {
            Diagnostic::new(Code::JsonSyntax, span, "tab character inside a string").with_help("write `\\t`")
        }
        _ => {
            Diagnostic::new(Code::JsonSyntax, span, format!("control character U+{byte:04X} inside a string"))
                .with_help(format!("write `\\u{byte:04x}`"))
        }
    };
    diagnostic.with_secondary(Span::new(quote, quote + 1), "the string starts here")
}

/// What is at byte `at`, as a span and a phrase: "end of file", "a string", "`x`", …
fn describe_found(source: &str, at: usize) -> (Span, String) {
    let rest = source.get(at..).unwrap_or_default();
    let Some(first) = rest.chars().next() else {
        return (Span::new(at, at), "end of file".to_owned());
    };
    let token_len = |accept: fn(char) -> bool| rest.find(|c: char| !accept(c)).unwrap_or(rest.len());
    if first == '"' {
        // The literal up to its closing quote, or to the end of the line if it has none.
        let mut escaped = false;
        let len = rest
            .char_indices()
            .skip(1)
            .find(|&(_, c)| {
                let end = (c == '"' && !escaped) || c == '\n';
                escaped = c == '\\' && !escaped;
                end
            })
            .map_or(rest.len(), |(i, c)| i + usize::from(c == '"'));
        return (Span::new(at, at + len), "a string".to_owned());
    }
    if first == '-' || first.is_ascii_digit() {
        let len = token_len(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.'));
        return (Span::new(at, at + len), "a number".to_owned());
    }
    if is_word_start(first) {
        let len = token_len(|c| c.is_alphanumeric() || matches!(c, '_' | '$' | '-'));
        return (Span::new(at, at + len), format!("`{}`", rest.get(..len).unwrap_or_default()));
    }
    let found = if first.is_control() || first.is_whitespace() {
        format!("U+{:04X}", u32::from(first))
    } else {
        format!("`{first}`")
    };
    (Span::new(at, at + first.len_utf8()), found)
}

fn is_word_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '$'
}

fn starts_value(c: char) -> bool {
    matches!(c, '"' | '{' | '[' | '-' | '0'..='9') || is_word_start(c)
}

/// The innermost bracket still open at byte `at`.
fn unclosed_opener(source: &str, at: usize) -> Option<Span> {
    let mut open = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    for (i, byte) in source.as_bytes().iter().take(at).enumerate() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' if in_string => escaped = true,
            b'"' => in_string = !in_string,
            b'[' | b'{' if !in_string => open.push(i),
            b']' | b'}' if !in_string => {
                open.pop();
            }
            _ => {}
        }
    }
    open.pop().map(|i| Span::new(i, i + 1))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Parses text that must be valid and free of findings.
    fn tree(source: &str) -> Node {
        let (node, diagnostics) = parse(source);
        assert_eq!(diagnostics, [], "{source:?}");
        node.unwrap_or_else(|| panic!("no tree for {source:?}"))
    }

    /// Asserts that `source` has exactly one finding, with `message`, underlining `underlined`.
    fn check_error(source: &str, message: &str, underlined: &str) {
        let (node, diagnostics) = parse(source);
        assert!(node.is_none(), "{source:?} parsed");
        let [diagnostic] = diagnostics.as_slice() else { panic!("{source:?}: {diagnostics:#?}") };
        let span = diagnostic.primary.span;
        assert_eq!(diagnostic.message, message, "{source:?}");
        assert_eq!(&source[span.start..span.end], underlined, "{source:?}: {message}");
    }

    fn text(source: &str, span: Span) -> &str {
        &source[span.start..span.end]
    }

    #[test]
    fn spans_of_keys_and_values() {
        let source = r#" { "stages": [1, "new", true], "sla" : {"hours": null} } "#;
        let root = tree(source);
        assert_eq!(text(source, root.span), r#"{ "stages": [1, "new", true], "sla" : {"hours": null} }"#);
        let stages = root.member("stages").unwrap();
        assert_eq!(text(source, stages.key.span), r#""stages""#);
        assert_eq!(text(source, stages.key.content_span()), "stages");
        assert_eq!(text(source, stages.value.span), r#"[1, "new", true]"#);
        let items: Vec<&str> =
            stages.value.as_array().unwrap().iter().map(|item| text(source, item.span)).collect();
        assert_eq!(items, ["1", r#""new""#, "true"]);
        let hours = root.member_at("/sla/hours").unwrap();
        assert_eq!(text(source, hours.key.span), r#""hours""#);
        assert_eq!(text(source, hours.value.span), "null");
    }

    #[test]
    fn duplicate_keys_are_reported_and_kept() {
        let source = r#"{"a": 1, "b": 2, "a": 3}"#;
        let (node, diagnostics) = parse(source);
        let root = node.unwrap();
        assert_eq!(root.as_object().unwrap().len(), 3);
        assert_eq!(root.get("a").and_then(Node::as_number), Some(&Number::from(3)));
        assert_eq!(root.to_value(), serde_json::from_str::<Value>(source).unwrap());
        let [duplicate] = diagnostics.as_slice() else { panic!("{diagnostics:#?}") };
        assert_eq!(duplicate.code, Code::DuplicateKey);
        assert_eq!(duplicate.message, "duplicate key `a`");
        assert_eq!(duplicate.primary.span, Span::new(17, 20));
        assert_eq!(
            duplicate.secondary,
            [crate::diagnostic::Label::new(Span::new(1, 4), "first defined here")]
        );
    }

    #[test]
    fn duplicate_keys_in_large_objects() {
        let members: Vec<String> = (0..40).map(|i| format!(r#""k{}": {i}"#, i % 30)).collect();
        let source = format!("{{{}}}", members.join(", "));
        let (node, diagnostics) = parse(&source);
        assert_eq!(diagnostics.len(), 10);
        assert!(diagnostics.iter().all(|d| d.code == Code::DuplicateKey));
        assert_eq!(text(&source, diagnostics[0].primary.span), r#""k0""#);
        assert_eq!(text(&source, diagnostics[0].secondary[0].span), r#""k0""#);
        assert!(diagnostics[0].secondary[0].span.start < diagnostics[0].primary.span.start);
        assert_eq!(node.unwrap().get("k0").and_then(Node::as_number), Some(&Number::from(30)));
    }

    #[test]
    fn escapes_map_back_to_the_source() {
        let source = r#"["a\"b\n\u00e9c\ud83d\ude00d\/"]"#;
        let root = tree(source);
        let string = root.pointer("/0").and_then(Node::as_string).unwrap();
        assert_eq!(string.value, "a\"b\néc😀d/");
        assert!(string.has_escapes());
        let source_of = |decoded: &str| {
            let start = string.value.find(decoded).unwrap();
            text(source, string.source_span(Span::new(start, start + decoded.len())))
        };
        assert_eq!(source_of("a"), "a");
        assert_eq!(source_of("\""), r#"\""#);
        assert_eq!(source_of("\n"), r"\n");
        assert_eq!(source_of("é"), r"\u00e9");
        assert_eq!(source_of("c"), "c");
        assert_eq!(source_of("😀"), r"\ud83d\ude00");
        assert_eq!(source_of("d/"), r"d\/");
        assert_eq!(source_of("b\néc"), r"b\n\u00e9c");
        // A range that starts or ends inside one escape's output covers the whole escape.
        let emoji = string.value.find('😀').unwrap();
        assert_eq!(text(source, string.source_span(Span::new(emoji + 1, emoji + 2))), r"\ud83d\ude00");
        // Past the end clamps to the closing quote.
        assert_eq!(string.source_span(Span::new(0, 1000)).end, source.len() - 2);
    }

    #[test]
    fn plain_strings_map_by_a_shift() {
        let source = r#"{"when": "amount > 10"}"#;
        let when = tree(source).get("when").and_then(Node::as_string).cloned().unwrap();
        assert!(!when.has_escapes());
        assert_eq!(text(source, when.source_span(Span::new(9, 11))), "10");
    }

    #[test]
    fn syntax_errors_are_readable_and_precise() {
        let cases = [
            ("[1 2]", "expected `,` or `]`, found a number", "2"),
            (r#"{"a": 1 "b": 2}"#, "expected `,` or `}`, found a string", r#""b""#),
            (r#"{"a": 1,}"#, "trailing commas are not allowed", ","),
            ("[1, 2, ]", "trailing commas are not allowed", ","),
            (r#"{"a" 1}"#, "expected `:`, found a number", "1"),
            (r#"{"a": }"#, "expected a value, found `}`", "}"),
            ("[1,,2]", "expected a value, found `,`", ","),
            ("{", "expected a key or `}`, found end of file", ""),
            (r#"{"a": [1}"#, "expected `,` or `]`, found `}`", "}"),
            ("{} {}", "expected end of file, found `{`", "{"),
            ("", "the file is empty", ""),
            (" \n ", "the file is empty", ""),
            ("// note\n{}", "comments are not allowed in JSON", "// note"),
            ("{/* note */}", "comments are not allowed in JSON", "/* note */"),
            (r#""abc"#, "unterminated string", "\""),
            ("[\"abc\n]", "unterminated string", "\n"),
            ("\"a\tb\"", "tab character inside a string", "\t"),
            ("\"a\u{1}b\"", "control character U+0001 inside a string", "\u{1}"),
            ("[1,\u{b}2]", "unexpected control character U+000B", "\u{b}"),
            (r#""a\x""#, r"invalid escape `\x`", r"\x"),
            (r#""\u12""#, "invalid unicode escape", r"\u12"),
            (r#""\ud800""#, r"unpaired surrogate `\ud800`", r"\ud800"),
            (r#""\udc00\ud800""#, r"unpaired surrogate `\udc00`", r"\udc00"),
            ("{a: 1}", "object keys must be strings in double quotes", "a"),
            ("{'a': 1}", "strings must use double quotes", "'a'"),
            ("[True]", "expected a value, found `True`", "True"),
            ("[NaN]", "expected a value, found `NaN`", "NaN"),
            ("[01]", "numbers cannot have leading zeros", "01"),
            ("-00", "numbers cannot have leading zeros", "-00"),
            ("[1.]", "expected a digit after the decimal point", "."),
            ("[1e+]", "expected a digit in the exponent", "e"),
            ("[-]", "expected a digit after `-`", "-"),
            ("[+1]", "numbers cannot start with `+`", "+"),
            ("[.5]", "numbers must start with a digit", ".5"),
            ("[1e400]", "number out of range", "1e400"),
        ];
        for (source, message, underlined) in cases {
            check_error(source, message, underlined);
        }
    }

    #[test]
    fn errors_name_the_unclosed_bracket_and_suggest_fixes() {
        let (_, diagnostics) = parse(r#"{"a": [1, 2"#);
        assert_eq!(
            diagnostics[0].secondary,
            [crate::diagnostic::Label::new(Span::new(6, 7), "never closed")]
        );
        let (_, diagnostics) = parse("[1 2]");
        assert_eq!(diagnostics[0].help.as_deref(), Some("separate elements with `,`"));
        let (_, diagnostics) = parse("[True]");
        assert_eq!(diagnostics[0].help.as_deref(), Some("JSON literals are lower case: write `true`"));
    }

    #[test]
    fn the_first_error_wins() {
        // The control character comes after the syntax error, and the syntax error after the
        // control character; each is reported alone.
        check_error("[1 2, \"\n\"]", "expected `,` or `]`, found a number", "2");
        check_error("[\"\n\" 2]", "unterminated string", "\n");
        check_error(&format!("[1 2, {}", "[".repeat(200)), "expected `,` or `]`, found a number", "2");
    }

    #[test]
    fn nesting_is_bounded_before_parsing() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let deepest = tree(&nested(MAX_DEPTH));
        assert_eq!(deepest.pointer(&"/0".repeat(MAX_DEPTH - 1)).map(|n| n.span.len()), Some(2));
        let objects = format!("{}1{}", r#"{"a": "#.repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        assert_eq!(
            tree(&objects).pointer(&"/a".repeat(MAX_DEPTH)).and_then(Node::as_number),
            Some(&Number::from(1))
        );
        for source in [nested(MAX_DEPTH + 1), "[".repeat(1_000_000), r#"{"a":"#.repeat(200)] {
            let (node, diagnostics) = parse(&source);
            assert!(node.is_none());
            let [too_deep] = diagnostics.as_slice() else { panic!("{diagnostics:#?}") };
            assert_eq!(too_deep.code, Code::TooDeep);
            let span = too_deep.primary.span;
            assert!(matches!(text(&source, span), "[" | "{"));
            assert_eq!(source[..span.start].matches(['[', '{']).count(), MAX_DEPTH);
        }
        // Brackets inside strings do not count.
        tree(&format!(r#"["{}"]"#, "[{".repeat(1000)));
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let source = "\u{feff}{\"a\": 1}";
        let root = tree(source);
        assert_eq!(root.span, Span::new(3, source.len()));
        assert_eq!(text(source, root.member("a").unwrap().key.span), "\"a\"");
    }

    #[test]
    fn numbers_read_as_serde_json_reads_them() {
        let number = |source: &str| tree(source).as_number().cloned().unwrap();
        assert_eq!(number("0").as_u64(), Some(0));
        assert_eq!(number("18446744073709551615").as_u64(), Some(u64::MAX));
        assert_eq!(number("-9223372036854775808").as_i64(), Some(i64::MIN));
        assert_eq!(number("18446744073709551616").as_f64(), Some(18446744073709551616.0));
        assert_eq!(number("-0").as_f64().map(f64::to_bits), Some((-0.0f64).to_bits()));
        assert_eq!(number("2.5E-3").as_f64(), Some(0.0025));
        assert_eq!(number("1e-400").as_f64(), Some(0.0));
    }

    #[test]
    fn pointers_and_lookups() {
        let source = r#"{"a/b": {"m~n": [10, {"x": 1}]}, "": 2, "d": 1, "d": 3}"#;
        let root = parse(source).0.unwrap();
        assert_eq!(root.pointer(""), Some(&root));
        assert_eq!(root.pointer("/").and_then(Node::as_number), Some(&Number::from(2)));
        assert_eq!(root.pointer("/a~1b/m~0n/1/x").and_then(Node::as_number), Some(&Number::from(1)));
        assert_eq!(root.pointer("/d").and_then(Node::as_number), Some(&Number::from(3)));
        assert_eq!(root.pointer("/a~1b/m~0n/01"), None);
        assert_eq!(root.pointer("/a~1b/m~0n/2"), None);
        assert_eq!(root.pointer("a"), None);
        assert_eq!(root.member_at("/a~1b/m~0n/1/x").map(|m| text(source, m.key.span)), Some(r#""x""#));
        assert_eq!(root.member_at("/d").map(|m| m.key.span.start), Some(source.rfind("\"d\"").unwrap()));
        assert_eq!(root.member_at("/a~1b/m~0n/0"), None);
        assert_eq!(root.member_at(""), None);
        assert_eq!(root.type_name(), "object");
        assert_eq!(root.pointer("/a~1b/m~0n").map(Node::type_name), Some("array"));
        assert!(tree("null").is_null());
        assert_eq!(tree("true").as_bool(), Some(true));
        assert_eq!(tree(r#""é""#).as_str(), Some("é"));
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::vec((any::<String>(), inner), 0..8)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    /// A JSON string literal for `value` that escapes characters at random, in every way JSON can.
    fn escaped_literal() -> impl Strategy<Value = (String, String)> {
        prop::collection::vec((any::<char>(), 0..4u8), 0..24).prop_map(|chars| {
            let mut literal = String::from('"');
            let mut value = String::new();
            for (c, how) in chars {
                value.push(c);
                match (c, how) {
                    ('"', _) => literal.push_str("\\\""),
                    ('\\', _) => literal.push_str("\\\\"),
                    ('\n', 1) => literal.push_str("\\n"),
                    ('/', 1) => literal.push_str("\\/"),
                    (c, _) if (c as u32) < 0x20 || how == 2 => {
                        let mut units = [0; 2];
                        for unit in c.encode_utf16(&mut units) {
                            literal.push_str(&format!("\\u{unit:04X}"));
                        }
                    }
                    (c, _) => literal.push(c),
                }
            }
            literal.push('"');
            (literal, value)
        })
    }

    /// Valid JSON with a few bytes inserted, removed or replaced: text near the edge of validity.
    fn mutated_json() -> impl Strategy<Value = String> {
        let byte = prop::sample::select(&b"{}[]\",:0-1.eE+\\u/ \n\t\x01"[..]);
        let edit = (any::<prop::sample::Index>(), 0..3u8, byte);
        (json_value(), any::<bool>(), prop::collection::vec(edit, 1..4)).prop_map(|(value, pretty, edits)| {
            let text =
                if pretty { serde_json::to_string_pretty(&value) } else { serde_json::to_string(&value) };
            let mut bytes = text.unwrap_or_default().into_bytes();
            for (index, operation, byte) in edits {
                let at = index.index(bytes.len() + 1);
                match operation {
                    0 => bytes.insert(at, byte),
                    _ if at == bytes.len() => {}
                    1 => {
                        bytes.remove(at);
                    }
                    _ => bytes[at] = byte,
                }
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    }

    proptest! {
        #[test]
        fn valid_json_reads_like_serde_json(value in json_value(), pretty in any::<bool>()) {
            let source = if pretty { serde_json::to_string_pretty(&value) } else { serde_json::to_string(&value) };
            let source = source.unwrap_or_default();
            let (node, diagnostics) = parse(&source);
            prop_assert!(diagnostics.iter().all(|d| d.code == Code::DuplicateKey), "{diagnostics:?}");
            let expected = serde_json::from_str::<Value>(&source).ok();
            prop_assert_eq!(node.map(|node| node.to_value()), expected);
        }

        #[test]
        fn escapes_map_each_character_to_its_source(literal in escaped_literal()) {
            let (source, value) = literal;
            let string = tree(&source).as_string().cloned().unwrap_or_else(|| panic!("{source}"));
            prop_assert_eq!(&string.value, &value);
            for (start, c) in value.char_indices() {
                let span = string.source_span(Span::new(start, start + c.len_utf8()));
                let decoded: String = serde_json::from_str(&format!("\"{}\"", text(&source, span))).unwrap_or_default();
                prop_assert_eq!(decoded, c.to_string());
            }
        }

        #[test]
        fn near_json_never_panics_and_agrees_with_serde_json(
            source in r#"[\[\]{}",:0-9.eE+\-\\ntrufalsu /*\n\t\x01']{0,40}"#,
        ) {
            let (node, diagnostics) = parse(&source);
            let serde = serde_json::from_str::<Value>(&source);
            prop_assert_eq!(node.is_some(), serde.is_ok(), "{:?}: {:?} vs {:?}", source, diagnostics, serde);
            prop_assert_eq!(node.is_some(), diagnostics.iter().all(|d| !d.is_error()));
            if node.is_none() {
                let all_out_of_range = diagnostics.iter().all(|d| d.message == "number out of range");
                prop_assert!(diagnostics.len() == 1 || (all_out_of_range && !diagnostics.is_empty()));
            }
        }

        #[test]
        fn mutated_json_agrees_with_serde_json(source in mutated_json()) {
            let (node, diagnostics) = parse(&source);
            let serde = serde_json::from_str::<Value>(&source);
            prop_assert_eq!(node.is_some(), serde.is_ok(), "{:?}: {:?} vs {:?}", source, diagnostics, serde);
            if let (Some(node), Ok(value)) = (node, serde) {
                prop_assert_eq!(node.to_value(), value);
            } else {
                // A syntax error stops the parse at one finding; numbers out of range are each reported.
                let all_out_of_range = diagnostics.iter().all(|d| d.message == "number out of range");
                prop_assert!(diagnostics.len() == 1 || (all_out_of_range && !diagnostics.is_empty()));
            }
        }

        #[test]
        fn any_text_never_panics_and_agrees_with_serde_json(source in any::<String>()) {
            prop_assume!(!source.starts_with('\u{feff}'));
            let (node, _) = parse(&source);
            prop_assert_eq!(node.is_some(), serde_json::from_str::<Value>(&source).is_ok());
        }
    }
}
