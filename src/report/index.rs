//! Byte offsets to 1-based lines and character columns, in time independent of the line length.

use crate::diagnostic::Span;

/// A 1-based line and column; the column counts characters (Unicode scalar values), not bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// Line number, from 1.
    pub line: usize,
    /// Column number, from 1, in characters.
    pub column: usize,
}

/// Bytes per checkpoint of the character count: a column costs at most this many byte reads.
const BLOCK: usize = 1024;

/// Maps byte offsets of one source to [`Position`]s: a binary search over line starts, then a
/// character count from the nearest checkpoint, so a finding deep in a 20 MB one-line file costs
/// as little as one on a short line (counting from the line start made many findings quadratic).
#[derive(Clone, Debug)]
pub struct LineIndex<'a> {
    source: &'a str,
    line_starts: Vec<usize>,
    /// `chars_before[k]`: characters in `source[..k * BLOCK]` (counted on bytes, so any offset works).
    chars_before: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    /// Indexes the line starts of `source` (lines end at `\n`; a `\r` before it belongs to the line).
    /// A byte-order mark is not part of line 1: columns there count from the character after it.
    pub fn new(source: &'a str) -> Self {
        let first = if source.starts_with('\u{feff}') { '\u{feff}'.len_utf8() } else { 0 };
        let line_starts =
            std::iter::once(first).chain(source.match_indices('\n').map(|(at, _)| at + 1)).collect();
        let mut chars_before = Vec::with_capacity(source.len() / BLOCK + 1);
        let mut count = 0;
        chars_before.push(0);
        for block in source.as_bytes().chunks(BLOCK) {
            count += char_starts(block);
            chars_before.push(count);
        }
        Self { source, line_starts, chars_before }
    }

    /// The source this index is over.
    pub fn source(&self) -> &'a str {
        self.source
    }

    /// Shrinks `offset` into the source and back onto a character boundary.
    pub fn floor(&self, offset: usize) -> usize {
        floor(self.source, offset)
    }

    /// The position of byte `offset`; offsets past the end or inside a character are clamped.
    pub fn position(&self, offset: usize) -> Position {
        let offset = self.floor(offset);
        let line = self.line_of(offset);
        let column = self.chars_to(offset).saturating_sub(self.chars_to(self.line_starts[line])) + 1;
        Position { line: line + 1, column }
    }

    /// The positions of the start and the (exclusive) end of `span`.
    pub fn range(&self, span: Span) -> (Position, Position) {
        (self.position(span.start), self.position(span.end.max(span.start)))
    }

    /// The 0-based line holding byte `offset` (already clamped).
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset).saturating_sub(1)
    }

    /// Byte offset where 0-based `line` starts (the source's end past the last line).
    pub(crate) fn line_start(&self, line: usize) -> usize {
        self.line_starts.get(line).copied().unwrap_or(self.source.len())
    }

    /// Byte offset where 0-based `line`'s text ends, before its `\n` (and a `\r` before that).
    pub(crate) fn line_end(&self, line: usize) -> usize {
        let end = match self.line_starts.get(line + 1) {
            Some(&next) => next - 1,
            None => self.source.len(),
        };
        let start = self.line_start(line).min(end);
        if end > start && self.source.as_bytes()[end - 1] == b'\r' { end - 1 } else { end }
    }

    /// The 0-based character column of byte `offset` on 0-based `line`.
    pub(crate) fn column_of(&self, line: usize, offset: usize) -> usize {
        self.chars_to(offset).saturating_sub(self.chars_to(self.line_start(line)))
    }

    /// Number of lines (a source without a newline has one).
    pub(crate) fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// Characters in `source[..offset]`.
    pub(crate) fn chars_to(&self, offset: usize) -> usize {
        let offset = offset.min(self.source.len());
        let block = offset / BLOCK;
        let before = self.chars_before.get(block).copied().unwrap_or(0);
        before + char_starts(&self.source.as_bytes()[block * BLOCK..offset])
    }
}

/// Characters starting in `bytes`: every byte that is not a UTF-8 continuation byte.
fn char_starts(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| (b & 0xC0) != 0x80).count()
}

/// Shrinks `offset` into `source` and back onto a character boundary.
pub(crate) fn floor(source: &str, offset: usize) -> usize {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// Shrinks `span` into `source` and onto character boundaries.
pub(crate) fn clamp(source: &str, span: Span) -> Span {
    let start = floor(source, span.start);
    Span::new(start, floor(source, span.end).max(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let index = LineIndex::new("ab\néé x\r\nz");
        assert_eq!(index.position(0), Position { line: 1, column: 1 });
        assert_eq!(index.position(3), Position { line: 2, column: 1 });
        assert_eq!(index.position(8), Position { line: 2, column: 4 });
        assert_eq!(index.position(4), Position { line: 2, column: 1 }, "inside a character: clamped back");
        assert_eq!(index.position(11), Position { line: 3, column: 1 });
        assert_eq!(index.position(999), Position { line: 3, column: 2 });
        assert_eq!(index.line_end(1), 9, "the \\r belongs to the line, not its text");
    }

    #[test]
    fn a_byte_order_mark_takes_no_column() {
        let index = LineIndex::new("\u{feff}{\"a\": 1}\nx");
        assert_eq!(index.position(3), Position { line: 1, column: 1 });
        assert_eq!(index.position(4), Position { line: 1, column: 2 });
        assert_eq!(index.position(0), Position { line: 1, column: 1 });
        assert_eq!(index.position(12), Position { line: 2, column: 1 });
    }

    #[test]
    fn columns_past_many_checkpoints_count_characters() {
        let line = "é".repeat(3000) + "x";
        let index = LineIndex::new(&line);
        assert_eq!(index.position(6000), Position { line: 1, column: 3001 });
        assert_eq!(index.position(6001), Position { line: 1, column: 3002 });
    }
}
