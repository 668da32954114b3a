//! Finding the span of a key or value in the source by its JSON pointer.
//!
//! The model types carry no spans; every check names what it reports on by pointer
//! (`/transitions/qualify_lead/from`) and asks the [`Locator`] where that is in the file.

use crate::diagnostic::Span;
use crate::syntax::json::Node;

/// Maps JSON pointers to spans in one parsed file.
pub(crate) struct Locator<'a> {
    root: Option<&'a Node>,
}

impl<'a> Locator<'a> {
    /// A locator over the parsed tree (`None` when the file did not parse).
    pub fn new(root: Option<&'a Node>) -> Self {
        Self { root }
    }

    /// The node at `pointer`, if present.
    pub fn node(&self, pointer: &str) -> Option<&'a Node> {
        self.root?.pointer(pointer)
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
        if let Some(member) = self.root.and_then(|root| root.member_at(pointer)) {
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
