//! Finding the span of a key or value in the source by its JSON pointer.
//!
//! The model types carry no spans; every check names what it reports on by pointer
//! (`/transitions/qualify_lead/from`) and asks the [`Locator`] where that is in the file.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::diagnostic::Span;
use crate::syntax::json::{Member, Node};

/// An RFC 6901 token with `~1` and `~0` decoded.
fn unescape(token: &str) -> std::borrow::Cow<'_, str> {
    if token.contains('~') { token.replace("~1", "/").replace("~0", "~").into() } else { token.into() }
}

/// An RFC 6901 array index: decimal digits without a leading zero.
fn array_index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() > 1) {
        return None;
    }
    token.parse().ok()
}

/// Maps JSON pointers to spans in one parsed file.
pub(crate) struct Locator<'a> {
    root: Option<&'a Node>,
    /// Key → member index of each large object looked into, by the object's address: a finding
    /// per member of a 100,000-member object must not scan the object each time (quadratic).
    indexes: RefCell<HashMap<usize, Rc<KeyIndex>>>,
}

/// An object's keys → the index of the (last) member with that key.
type KeyIndex = HashMap<Box<str>, usize>;

/// Objects with more members than this are indexed; smaller ones are scanned.
const INDEXED_MEMBERS: usize = 32;

impl<'a> Locator<'a> {
    /// A locator over the parsed tree (`None` when the file did not parse).
    pub fn new(root: Option<&'a Node>) -> Self {
        Self { root, indexes: RefCell::new(HashMap::new()) }
    }

    /// The node at `pointer`, if present.
    pub fn node(&self, pointer: &str) -> Option<&'a Node> {
        let root = self.root?;
        if pointer.is_empty() {
            return Some(root);
        }
        pointer.strip_prefix('/')?.split('/').try_fold(root, |node, token| self.child(node, &unescape(token)))
    }

    fn child(&self, node: &'a Node, token: &str) -> Option<&'a Node> {
        match node.as_array() {
            Some(items) => items.get(array_index(token)?),
            None => self.member(node, token).map(|member| &member.value),
        }
    }

    /// The member `key` of object `node` (the last one, when the key is duplicated).
    fn member(&self, node: &'a Node, key: &str) -> Option<&'a Member> {
        let members = node.as_object()?;
        if members.len() <= INDEXED_MEMBERS {
            return members.iter().rev().find(|member| member.key.value == key);
        }
        // The address identifies the object while the tree is borrowed (no unsafe: never dereferenced).
        let address = node as *const Node as usize;
        let index = Rc::clone(self.indexes.borrow_mut().entry(address).or_insert_with(|| {
            // Later duplicates overwrite earlier ones: the last member wins, as in `Node::member`.
            Rc::new(
                members
                    .iter()
                    .enumerate()
                    .map(|(i, member)| (Box::from(member.key.value.as_str()), i))
                    .collect(),
            )
        }));
        index.get(key).and_then(|&i| members.get(i))
    }

    /// The member whose value `pointer` addresses.
    fn member_at(&self, pointer: &str) -> Option<&'a Member> {
        let (parent, key) = pointer.rsplit_once('/')?;
        self.member(self.node(parent)?, &unescape(key))
    }

    /// The span of the value at `pointer`, or of its nearest existing ancestor.
    pub fn value(&self, pointer: &str) -> Span {
        let mut pointer = pointer;
        loop {
            if let Some(node) = self.node(pointer) {
                return node.span;
            }
            match pointer.rfind('/') {
                Some(cut) => pointer = &pointer[..cut],
                None => return self.root.map(|r| r.span).unwrap_or_default(),
            }
        }
    }

    /// The span of the key of the member at `pointer` (the value's span for array items and the
    /// root), or of its nearest existing ancestor.
    pub fn key(&self, pointer: &str) -> Span {
        if pointer.is_empty() {
            // The root has no key: its opening brace stands for it, not the whole file.
            return self.root.map(|r| Span::new(r.span.start, r.span.start + 1)).unwrap_or_default();
        }
        if let Some(member) = self.member_at(pointer) {
            return member.key.span;
        }
        match pointer.rfind('/') {
            Some(cut) if self.node(pointer).is_none() => self.key(&pointer[..cut]),
            _ => self.value(pointer),
        }
    }

    /// The span of a character range `inner` of the decoded string at `pointer` (for diagnostics
    /// inside expressions). Falls back to the whole value.
    pub fn in_string(&self, pointer: &str, inner: Span) -> Span {
        match self.node(pointer).and_then(|n| n.as_string()) {
            Some(string) => string.source_span(inner),
            None => self.value(pointer),
        }
    }
}

/// A JSON pointer from unescaped segments: `["a", "b/c"]` → `/a/b~1c`.
pub(crate) fn pointer_of<'s>(segments: impl IntoIterator<Item = &'s str>) -> String {
    let mut pointer = String::new();
    for segment in segments {
        pointer.push('/');
        for c in segment.chars() {
            match c {
                '~' => pointer.push_str("~0"),
                '/' => pointer.push_str("~1"),
                c => pointer.push(c),
            }
        }
    }
    pointer
}

/// Builds a pointer from a mix of names and indices: `ptr!["transitions", name, "guards", 2]`.
macro_rules! ptr {
    ($($segment:expr),* $(,)?) => {
        $crate::check::locate::pointer_of([$(AsRef::<str>::as_ref(&$crate::check::locate::Segment::from($segment))),*])
    };
}
pub(crate) use ptr;

/// One pointer segment, owned when it came from an index.
pub(crate) struct Segment<'s>(std::borrow::Cow<'s, str>);

impl AsRef<str> for Segment<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'s> From<&'s str> for Segment<'s> {
    fn from(s: &'s str) -> Self {
        Segment(s.into())
    }
}

impl<'s> From<&'s String> for Segment<'s> {
    fn from(s: &'s String) -> Self {
        Segment(s.as_str().into())
    }
}

impl From<usize> for Segment<'_> {
    fn from(i: usize) -> Self {
        Segment(i.to_string().into())
    }
}
