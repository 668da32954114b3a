//! The part of a file one finding shows: the lines its labels are on, one line of context, and on
//! a long line only a window around the labels, cut with `...` as rustc does.
//!
//! miette renders an [`Excerpt`] instead of the whole file. That keeps the work per finding
//! bounded whatever the file (miette scans from the start of its source for every label and
//! prints whole lines, which made many findings quadratic, a 20 MB line print 20 MB per finding,
//! and a label past column 65,535 panic inside the renderer), while line numbers and the
//! `path:line:column` miette prints still refer to the file.

use miette::{MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

use super::index::LineIndex;
use crate::diagnostic::Span;

/// A line longer than this many characters is shown as a window of this width.
pub(crate) const MAX_WIDTH: usize = 200;
/// Characters shown before the first label of a window.
const MARGIN: usize = 60;
/// The most characters of one label shown on a windowed line.
const MAX_LABEL: usize = MAX_WIDTH - MARGIN - 10;
/// A label over more lines than this is shown on its first line only.
const MAX_LABEL_LINES: usize = 8;
/// Marks text left out of a windowed line.
const ELLIPSIS: &str = "...";

/// The lines (or windows of lines) one finding shows, as one small text miette can render.
#[derive(Clone, Debug)]
pub(crate) struct Excerpt {
    name: String,
    text: String,
    rows: Vec<Row>,
}

/// One shown line, or one window of a long line.
#[derive(Clone, Debug)]
struct Row {
    /// 0-based line in the file.
    line: usize,
    /// 0-based character column in the file where the shown text starts.
    column: usize,
    /// The shown bytes of the file.
    start: usize,
    end: usize,
    /// Where the row (with its ellipses) starts and ends in `text`.
    text_start: usize,
    text_end: usize,
    /// Bytes of ellipsis before the file's text.
    prefix: usize,
    /// Rows of one segment are consecutive lines; miette never shows two segments as one snippet.
    segment: usize,
}

/// Rows laid out together: (first line, first byte, rows as `(line, start, end)`, the window if it
/// is one).
type Segment = (usize, usize, Vec<(usize, usize, usize)>, Option<usize>);

/// Where a label is shown: on a window of a long line, or on lines shown whole.
#[derive(Clone, Copy)]
enum Place {
    Window(usize),
    Lines(usize, usize),
}

impl Excerpt {
    /// The excerpt showing the `labels` (spans of the file `index` covers) and their spans in it.
    pub(crate) fn new(index: &LineIndex<'_>, name: &str, labels: &[Span]) -> (Self, Vec<Span>) {
        let source = index.source();
        // Each label: clamped, then shrunk to what can be shown (the first line of a long span, a
        // bounded piece on a long line).
        let mut placed: Vec<(Span, Place)> = Vec::with_capacity(labels.len());
        let mut on_long: Vec<(usize, Span, usize)> = Vec::new(); // (line, span, label)
        for (label, &span) in labels.iter().enumerate() {
            let mut span = super::index::clamp(source, span);
            let first = index.line_of(span.start);
            let mut last = if span.is_empty() { first } else { index.line_of(index.floor(span.end - 1)) };
            if last > first && (last - first >= MAX_LABEL_LINES || (first..=last).any(|l| long(index, l))) {
                span.end = index.line_end(first).max(span.start);
                last = first;
            }
            if long(index, first) {
                span.end = forward(source, span.start, MAX_LABEL).min(span.end);
                on_long.push((first, span, label));
                placed.push((span, Place::Window(0)));
            } else {
                placed.push((span, Place::Lines(first, last)));
            }
        }

        // A window per cluster of labels on a long line.
        on_long.sort_unstable_by_key(|&(line, span, _)| (line, span.start));
        let mut windows: Vec<(usize, usize, usize)> = Vec::new(); // (line, start, end)
        for (line, span, label) in on_long {
            let fits = windows.last().is_some_and(|w| w.0 == line && span.end <= w.2);
            if !fits {
                let (line_start, line_end) = (index.line_start(line), index.line_end(line));
                let start = backward(source, span.start, MARGIN).max(line_start);
                let end = forward(source, start, MAX_WIDTH).min(line_end).max(span.end.min(line_end));
                windows.push((line, start, end));
            }
            placed[label].1 = Place::Window(windows.len() - 1);
        }
        // Short lines: each label's lines with one line of context, merged where they touch.
        let mut ranges: Vec<(usize, usize)> = placed
            .iter()
            .filter_map(|(_, place)| match *place {
                Place::Lines(first, last) => {
                    let from = if first > 0 && !long(index, first - 1) { first - 1 } else { first };
                    let to =
                        if last + 1 < index.line_count() && !long(index, last + 1) { last + 1 } else { last };
                    Some((from, to))
                }
                Place::Window(_) => None,
            })
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::new();
        for (from, to) in ranges {
            match merged.last_mut() {
                // A gap of up to two lines is shown rather than cut, as one snippet, unless a line
                // in it is too long to show whole.
                Some(last) if from <= last.1 + 3 && !(last.1 + 1..from).any(|l| long(index, l)) => {
                    last.1 = last.1.max(to)
                }
                _ => merged.push((from, to)),
            }
        }
        // Segments in file order: (first line, first byte, rows as (line, start, end), window).
        let mut segments: Vec<Segment> = windows
            .iter()
            .enumerate()
            .map(|(w, &(line, start, end))| {
                // Short neighbouring lines are context, cut to the same columns as the window.
                let columns = (index.column_of(line, start), index.column_of(line, end));
                let context = |other: usize| {
                    Some(same_columns(index, other, columns))
                        .filter(|&(_, start, end)| start < end && !long(index, other))
                };
                let mut rows = Vec::with_capacity(3);
                rows.extend(line.checked_sub(1).and_then(context));
                rows.push((line, start, end));
                rows.extend(Some(line + 1).filter(|&next| next < index.line_count()).and_then(context));
                (line, start, rows, Some(w))
            })
            .chain(merged.into_iter().map(|(from, to)| {
                let rows = (from..=to).map(|l| (l, index.line_start(l), index.line_end(l))).collect();
                (from, index.line_start(from), rows, None)
            }))
            .collect();
        segments.sort_unstable_by_key(|s| (s.0, s.1));

        // Lay the rows out as one text.
        let mut text = String::new();
        let mut rows = Vec::new();
        let mut window_rows = vec![0; windows.len()];
        let mut line_rows = std::collections::HashMap::new();
        for (segment, (_, _, lines, window)) in segments.iter().enumerate() {
            for &(line, start, end) in lines {
                if !rows.is_empty() {
                    text.push('\n');
                }
                let text_start = text.len();
                // An empty cut (a short context line left of a window) is shown empty, not as `...`.
                let prefix = if start > index.line_start(line) && end > start { ELLIPSIS.len() } else { 0 };
                if prefix > 0 {
                    text.push_str(ELLIPSIS);
                }
                text.push_str(&source[start..end]);
                if end < index.line_end(line) {
                    text.push_str(ELLIPSIS);
                }
                let column = index.chars_to(start).saturating_sub(index.chars_to(index.line_start(line)));
                match window {
                    Some(w) if windows[*w].0 == line => window_rows[*w] = rows.len(),
                    Some(_) => {}
                    None => {
                        line_rows.insert(line, rows.len());
                    }
                }
                rows.push(Row {
                    line,
                    column,
                    start,
                    end,
                    text_start,
                    text_end: text.len(),
                    prefix,
                    segment,
                });
            }
        }

        let excerpt = Excerpt { name: name.to_owned(), text, rows };
        let spans = placed
            .iter()
            .map(|&(span, place)| {
                let (first, last) = match place {
                    Place::Window(w) => (window_rows[w], window_rows[w]),
                    Place::Lines(first, last) => (
                        line_rows.get(&first).copied().unwrap_or(0),
                        line_rows.get(&last).copied().unwrap_or(0),
                    ),
                };
                let start = excerpt.to_text(first, span.start);
                let mut end = excerpt.to_text(last, span.end).max(start);
                // A span over a line break keeps it, so miette underlines it as it would in the file.
                let ends_past_row =
                    excerpt.rows.get(last).is_some_and(|row| span.end > row.end && row.text_end == end);
                if ends_past_row && excerpt.text.as_bytes().get(end) == Some(&b'\n') {
                    end += 1;
                }
                Span::new(start, end)
            })
            .collect();
        (excerpt, spans)
    }

    /// The offset in `text` of file byte `offset`, shown on `row`.
    fn to_text(&self, row: usize, offset: usize) -> usize {
        self.rows
            .get(row)
            .map_or(0, |row| row.text_start + row.prefix + offset.clamp(row.start, row.end) - row.start)
    }

    /// The row holding `text` offset `offset`.
    fn row_at(&self, offset: usize) -> usize {
        self.rows.partition_point(|row| row.text_start <= offset).saturating_sub(1)
    }
}

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let (start, len) = (span.offset(), span.len());
        if self.rows.is_empty() || start + len > self.text.len() {
            return Err(MietteError::OutOfBounds);
        }
        let first = self.row_at(start);
        let last = self.row_at(if len == 0 { start } else { start + len - 1 });
        let segment = self.rows[first].segment;
        // Two windows or far-apart lines are separate snippets (miette falls back when asked to join).
        if self.rows[last].segment != segment {
            return Err(MietteError::OutOfBounds);
        }
        let mut from = first;
        while from > 0 && first - from < context_lines_before && self.rows[from - 1].segment == segment {
            from -= 1;
        }
        let mut to = last;
        while to + 1 < self.rows.len()
            && to - last < context_lines_after
            && self.rows[to + 1].segment == segment
        {
            to += 1;
        }
        let mut segment_end = to;
        while segment_end + 1 < self.rows.len() && self.rows[segment_end + 1].segment == segment {
            segment_end += 1;
        }
        let (data_start, data_end) = (self.rows[from].text_start, self.rows[to].text_end);
        let row = &self.rows[first];
        // The column miette prints in `path:line:column` is the file's, for a span read on its own.
        let column = if context_lines_before == 0 && context_lines_after == 0 {
            let shown = start.saturating_sub(row.text_start + row.prefix);
            row.column
                + self
                    .text
                    .get(row.text_start + row.prefix..)
                    .map_or(0, |rest| rest.char_indices().take_while(|(at, _)| *at < shown).count())
        } else {
            0
        };
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            &self.text.as_bytes()[data_start..data_end],
            SourceSpan::new(data_start.into(), data_end - data_start),
            self.rows[from].line,
            column,
            // miette joins two labels' snippets when the first's lines reach the second's: count to
            // the end of the segment, so labels of one segment share a snippet and others never do.
            segment_end - from + 1,
        )))
    }
}

/// The part of short `line` between character columns `columns` (of another line): `(line, start, end)`.
fn same_columns(index: &LineIndex<'_>, line: usize, columns: (usize, usize)) -> (usize, usize, usize) {
    let (start, end) = (index.line_start(line), index.line_end(line));
    let text = &index.source()[start..end];
    let at = |column: usize| text.char_indices().nth(column).map_or(end, |(offset, _)| start + offset);
    (line, at(columns.0), at(columns.1))
}

/// Whether 0-based `line` is too long to show whole.
fn long(index: &LineIndex<'_>, line: usize) -> bool {
    let (start, end) = (index.line_start(line), index.line_end(line));
    // Fast path: fewer bytes than the width means fewer characters, too.
    end - start > MAX_WIDTH && index.chars_to(end) - index.chars_to(start) > MAX_WIDTH
}

/// The byte offset `chars` characters after `offset` (or the end of `source`).
fn forward(source: &str, offset: usize, chars: usize) -> usize {
    source[offset..].char_indices().nth(chars).map_or(source.len(), |(at, _)| offset + at)
}

/// The byte offset `chars` characters before `offset` (or 0).
fn backward(source: &str, offset: usize, chars: usize) -> usize {
    source[..offset].char_indices().rev().take(chars).last().map_or(offset, |(at, _)| at)
}
