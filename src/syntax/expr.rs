//! Condition expressions: source text to an owned syntax tree with byte spans.
//!
//! The grammar is `grammar/expr.pest`. Before pest runs, a linear pre-scan enforces the limits of
//! the contract (4,096 characters, 64 nesting levels) and reports unbalanced brackets and
//! unterminated strings with better messages than a generic "expected …". pest recurses once per
//! bracket level and the tree builder once per node, so the pre-scan is what keeps every later
//! recursive pass (type-checking, lowering, evaluation, `Drop`) within a fixed stack budget.

use pest::Parser as _;
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;

use crate::diagnostic::{Code, Diagnostic, Span};
use crate::ir::expr::{MAX_LENGTH, MAX_NESTING};

mod grammar {
    // In a private module: the generated `Rule` enum is an implementation detail.
    #[derive(pest_derive::Parser)]
    #[grammar = "grammar/expr.pest"]
    pub(super) struct ExprParser;
}

use grammar::{ExprParser, Rule};

/// An expression node with the span of its source text.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it is, relative to the start of the expression source.
    pub span: Span,
}

/// The forms of the language.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// `null`.
    Null,
    /// `true`, `false`.
    Bool(bool),
    /// `42`, `-7` (a literal that fits in 64 bits, sign folded in).
    Int(i64),
    /// `3.5`, `1e3`, or an integer literal too large for 64 bits.
    Float(f64),
    /// `'single'`, `"double"`, escapes resolved.
    Str(String),
    /// `[a, b]`.
    List(Vec<Expr>),
    /// `data.a.b`, `stage`, `actor.id`: the root and each segment.
    Path(Vec<Name>),
    /// `f(a, b)`.
    Call {
        /// The function name.
        name: Name,
        /// The arguments.
        args: Vec<Expr>,
    },
    /// `NOT a`, `not a`, `!a`.
    Not {
        /// The operator's span.
        op: Span,
        /// The operand.
        operand: Box<Expr>,
    },
    /// `-a`.
    Neg {
        /// The operator's span.
        op: Span,
        /// The operand.
        operand: Box<Expr>,
    },
    /// `a OR b OR …` (two or more operands).
    Or(Vec<Expr>),
    /// `a AND b AND …` (two or more operands).
    And(Vec<Expr>),
    /// `a == b`, `a in b`, …
    Compare {
        /// The operator.
        op: CompareOp,
        /// The operator's span.
        op_span: Span,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
    /// `a + b - c` or `a * b / c`: one precedence level, left-associative.
    Arith {
        /// The first operand.
        first: Box<Expr>,
        /// Each further operator (with its span) and operand.
        rest: Vec<(ArithOp, Span, Expr)>,
    },
}

/// An identifier with its span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name {
    /// The text.
    pub text: String,
    /// Where it is.
    pub span: Span,
}

/// A comparison operator as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `in`.
    In,
    /// `not in`.
    NotIn,
}

impl CompareOp {
    /// The operator as written (lower case).
    pub const fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::In => "in",
            CompareOp::NotIn => "not in",
        }
    }
}

/// An arithmetic operator as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArithOp {
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `%`.
    Rem,
}

/// Parses one expression. Errors are `ExprSyntax` or `ExprLimit` diagnostics, spans relative to
/// `source`; there is at least one.
pub fn parse(source: &str) -> Result<Expr, Vec<Diagnostic>> {
    let problems = prescan(source);
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut pairs = ExprParser::parse(Rule::expression, source).map_err(|e| vec![syntax_error(source, &e)])?;
    let mut builder = Builder { diagnostics: Vec::new() };
    let expr = match pairs.next().and_then(|p| p.into_inner().find(|p| p.as_rule() == Rule::disjunction)) {
        Some(pair) => builder.build(pair),
        None => builder.malformed(Span::new(0, source.len())),
    };
    if builder.diagnostics.is_empty() { Ok(expr) } else { Err(builder.diagnostics) }
}

/// One linear pass over the bytes: length, nesting, brackets and strings.
///
/// Nesting counts what makes the tree deeper: an opening bracket (group, list, call) adds one level
/// for its contents; a prefix `-` covers its operand and a prefix `NOT`/`!` covers the rest of its
/// comparison, so each open one adds a level until that scope ends.
fn prescan(source: &str) -> Vec<Diagnostic> {
    let chars = source.chars().count();
    if chars > MAX_LENGTH {
        let start = source.char_indices().nth(MAX_LENGTH).map_or(0, |(i, _)| i);
        let message = format!("expression is {chars} characters long; the limit is 4,096");
        return vec![
            Diagnostic::new(Code::ExprLimit, Span::new(start, source.len()), message)
                .with_label("characters past the limit")
                .with_help("split the condition, or compute the value into a data field"),
        ];
    }

    struct Open {
        bracket: u8,
        at: usize,
        base: usize,
        nots: usize,
    }
    let bytes = source.as_bytes();
    let mut diagnostics = Vec::new();
    let mut stack: Vec<Open> = Vec::new();
    // Levels opened by enclosing brackets, by prefix NOTs of the current comparison and by prefix
    // minuses of the current operand.
    let (mut base, mut nots, mut negs) = (0, 0, 0);
    let mut operand_expected = true;
    let mut i = 0;
    let too_deep = |start: usize, end: usize| {
        Diagnostic::new(Code::ExprLimit, Span::new(start, end), "expression nests deeper than 64 levels")
            .with_label("this opens level 65")
            .with_help("brackets, calls and each prefix `NOT`, `!` or `-` add a level; simplify the expression")
    };
    while let Some(&byte) = bytes.get(i) {
        let start = i;
        i += 1;
        match byte {
            b'\'' | b'"' => {
                let mut closed = false;
                while let Some(&b) = bytes.get(i) {
                    i += if b == b'\\' { 2 } else { 1 };
                    if b == byte {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    let message = "unterminated string";
                    diagnostics.push(
                        Diagnostic::new(Code::ExprSyntax, Span::new(start, start + 1), message)
                            .with_label("this string is never closed")
                            .with_help(format!("end it with `{}`", byte as char)),
                    );
                    return diagnostics;
                }
                (negs, operand_expected) = (0, false);
            }
            b'(' | b'[' => {
                let level = base + nots + negs + 1;
                if level > MAX_NESTING {
                    diagnostics.push(too_deep(start, i));
                    return diagnostics;
                }
                stack.push(Open { bracket: byte, at: start, base, nots });
                (base, nots, negs, operand_expected) = (level, 0, 0, true);
            }
            b')' | b']' => {
                let opener = if byte == b')' { b'(' } else { b'[' };
                match stack.pop() {
                    Some(open) if open.bracket == opener => (base, nots) = (open.base, open.nots),
                    Some(open) => {
                        let message = format!("`{}` closed by `{}`", open.bracket as char, byte as char);
                        diagnostics.push(
                            Diagnostic::new(Code::ExprSyntax, Span::new(start, i), message)
                                .with_label("mismatched bracket")
                                .with_secondary(Span::new(open.at, open.at + 1), "opened here"),
                        );
                        return diagnostics;
                    }
                    None => {
                        let message = format!("unmatched `{}`", byte as char);
                        diagnostics.push(
                            Diagnostic::new(Code::ExprSyntax, Span::new(start, i), message)
                                .with_label(format!("no `{}` before it", opener as char)),
                        );
                        return diagnostics;
                    }
                }
                (negs, operand_expected) = (0, false);
            }
            b',' | b'|' | b'&' => (nots, negs, operand_expected) = (0, 0, true),
            b'!' if bytes.get(i) == Some(&b'=') => {
                i += 1;
                operand_expected = true;
            }
            b'!' | b'-' if operand_expected => {
                if byte == b'!' { nots += 1 } else { negs += 1 }
                if base + nots + negs > MAX_NESTING {
                    diagnostics.push(too_deep(start, i));
                    return diagnostics;
                }
            }
            b'0'..=b'9' => {
                // The exponent's sign belongs to the number, not a prefix minus.
                while let Some(&b) = bytes.get(i) {
                    let exponent_sign = matches!(b, b'+' | b'-') && matches!(bytes.get(i - 1), Some(b'e' | b'E'));
                    if !(b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || exponent_sign) {
                        break;
                    }
                    i += 1;
                }
                (negs, operand_expected) = (0, false);
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                while bytes.get(i).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.') {
                    i += 1;
                }
                match source.get(start..i).unwrap_or_default() {
                    "and" | "AND" | "or" | "OR" => (nots, negs, operand_expected) = (0, 0, true),
                    "not" | "NOT" if operand_expected => {
                        nots += 1;
                        if base + nots + negs > MAX_NESTING {
                            diagnostics.push(too_deep(start, i));
                            return diagnostics;
                        }
                    }
                    // `not in`, `in`.
                    "not" | "NOT" | "in" => operand_expected = true,
                    _ => (negs, operand_expected) = (0, false),
                }
            }
            b' ' | b'\t' | b'\r' | b'\n' => {}
            // Other operators, and bytes of non-ASCII characters (pest reports those).
            _ => operand_expected = true,
        }
    }
    if let Some(open) = stack.pop() {
        let message = format!("unclosed `{}`", open.bracket as char);
        let close = if open.bracket == b'(' { ')' } else { ']' };
        diagnostics.push(
            Diagnostic::new(Code::ExprSyntax, Span::new(open.at, open.at + 1), message)
                .with_label("opened here")
                .with_help(format!("add `{close}` where it ends")),
        );
    }
    diagnostics
}

/// Turns pest's furthest failure into "expected …, found …".
fn syntax_error(source: &str, error: &pest::error::Error<Rule>) -> Diagnostic {
    let at = match error.location {
        InputLocation::Pos(pos) => pos,
        InputLocation::Span((start, _)) => start,
    };
    let rest = source.get(at..).unwrap_or_default();
    let found = rest.chars().next();
    let span = Span::new(at, at + found.map_or(0, char::len_utf8));

    let mut expected: Vec<&str> = Vec::new();
    if let ErrorVariant::ParsingError { positives, .. } = &error.variant {
        for rule in positives {
            if let Some(what) = describe(*rule)
                && !expected.contains(&what)
            {
                expected.push(what);
            }
        }
    }
    // Stable order: operands, operators, punctuation, end.
    expected.sort_by_key(|what| EXPECTED_ORDER.iter().position(|w| w == what));
    let expected = match expected.as_slice() {
        [] => "a valid expression".to_owned(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    };
    let word: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    let (message, label) = match found {
        None => (format!("expected {expected}, found the end of the expression"), "the expression ends here".to_owned()),
        Some(c) if c.is_whitespace() => (format!("expected {expected}, found a blank"), "unexpected blank".to_owned()),
        Some(c) if word.is_empty() => (format!("expected {expected}, found `{c}`"), format!("unexpected `{c}`")),
        Some(_) => (format!("expected {expected}, found `{word}`"), format!("unexpected `{word}`")),
    };
    let span = if word.is_empty() { span } else { Span::new(at, at + word.len()) };
    let help = if rest.starts_with('=') && !rest.starts_with("==") {
        Some("use `==` to compare values".to_owned())
    } else if ["and", "or", "not"].iter().any(|k| word.eq_ignore_ascii_case(k)) {
        Some(format!("write `{}` or `{}`", word.to_ascii_uppercase(), word.to_ascii_lowercase()))
    } else if ["true", "false", "null", "in"].iter().any(|k| word.eq_ignore_ascii_case(k)) {
        Some(format!("keywords are lower case: `{}`", word.to_ascii_lowercase()))
    } else {
        None
    };
    Diagnostic::new(Code::ExprSyntax, span, message).with_label(label).with_help_opt(help)
}

const EXPECTED_ORDER: [&str; 7] =
    ["an operand", "a field name", "an operator", "`,`", "`)`", "`]`", "the end of the expression"];

/// What a rule stands for in "expected …", or nothing for rules users need not hear about.
fn describe(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::disjunction
        | Rule::conjunction
        | Rule::negation
        | Rule::comparison
        | Rule::sum
        | Rule::product
        | Rule::unary
        | Rule::neg
        | Rule::not_op
        | Rule::number
        | Rule::string
        | Rule::true_lit
        | Rule::false_lit
        | Rule::null_lit
        | Rule::list
        | Rule::call
        | Rule::path
        | Rule::group
        | Rule::ident => "an operand",
        Rule::field => "a field name",
        Rule::or_op
        | Rule::and_op
        | Rule::eq
        | Rule::ne
        | Rule::le
        | Rule::ge
        | Rule::lt
        | Rule::gt
        | Rule::in_op
        | Rule::not_in
        | Rule::add
        | Rule::sub
        | Rule::mul
        | Rule::div
        | Rule::rem => "an operator",
        Rule::comma => "`,`",
        Rule::close_paren => "`)`",
        Rule::close_bracket => "`]`",
        Rule::EOI => "the end of the expression",
        _ => return None,
    })
}

fn span_of(pair: &Pair<'_, Rule>) -> Span {
    let span = pair.as_span();
    Span::new(span.start(), span.end())
}

/// Builds the tree from pest pairs, collecting errors the grammar leaves to it (escapes, chained
/// comparisons, out-of-range numbers). Its recursion follows the tree, bounded by the pre-scan.
struct Builder {
    diagnostics: Vec<Diagnostic>,
}

impl Builder {
    fn build(&mut self, pair: Pair<'_, Rule>) -> Expr {
        let span = span_of(&pair);
        match pair.as_rule() {
            Rule::disjunction | Rule::conjunction => {
                let or = pair.as_rule() == Rule::disjunction;
                let mut operands: Vec<Expr> = pair
                    .into_inner()
                    .filter(|p| !matches!(p.as_rule(), Rule::or_op | Rule::and_op))
                    .map(|p| self.build(p))
                    .collect();
                match operands.len() {
                    0 => self.malformed(span),
                    1 => operands.pop().unwrap_or_else(|| self.malformed(span)),
                    _ if or => Expr { kind: ExprKind::Or(operands), span },
                    _ => Expr { kind: ExprKind::And(operands), span },
                }
            }
            Rule::negation => {
                let mut ops = Vec::new();
                let mut operand = None;
                for inner in pair.into_inner() {
                    match inner.as_rule() {
                        Rule::not_op => ops.push(span_of(&inner)),
                        _ => operand = Some(self.build(inner)),
                    }
                }
                let operand = operand.unwrap_or_else(|| self.malformed(span));
                ops.into_iter().rev().fold(operand, |operand, op| Expr {
                    span: op.to(operand.span),
                    kind: ExprKind::Not { op, operand: Box::new(operand) },
                })
            }
            Rule::comparison => self.comparison(pair, span),
            Rule::sum | Rule::product => {
                let mut inner = pair.into_inner();
                let Some(first) = inner.next() else { return self.malformed(span) };
                let first = self.build(first);
                let mut rest = Vec::new();
                while let (Some(op), Some(operand)) = (inner.next(), inner.next()) {
                    let arith = match op.as_rule() {
                        Rule::add => ArithOp::Add,
                        Rule::sub => ArithOp::Sub,
                        Rule::mul => ArithOp::Mul,
                        Rule::div => ArithOp::Div,
                        _ => ArithOp::Rem,
                    };
                    rest.push((arith, span_of(&op), self.build(operand)));
                }
                if rest.is_empty() { first } else { Expr { kind: ExprKind::Arith { first: Box::new(first), rest }, span } }
            }
            Rule::unary => self.unary(pair, span),
            Rule::group => match pair.into_inner().find(|p| p.as_rule() == Rule::disjunction) {
                // The span grows to the parentheses, so labels underline what the user grouped.
                Some(inner) => Expr { span, ..self.build(inner) },
                None => self.malformed(span),
            },
            Rule::list => {
                let items = pair
                    .into_inner()
                    .filter(|p| p.as_rule() == Rule::disjunction)
                    .map(|p| self.build(p))
                    .collect();
                Expr { kind: ExprKind::List(items), span }
            }
            Rule::call => {
                let mut inner = pair.into_inner();
                let Some(name) = inner.next() else { return self.malformed(span) };
                let name = Name { text: name.as_str().to_owned(), span: span_of(&name) };
                let args = inner.filter(|p| p.as_rule() == Rule::disjunction).map(|p| self.build(p)).collect();
                Expr { kind: ExprKind::Call { name, args }, span }
            }
            Rule::path => {
                let names = pair.into_inner().map(|p| Name { text: p.as_str().to_owned(), span: span_of(&p) }).collect();
                Expr { kind: ExprKind::Path(names), span }
            }
            Rule::number => self.number(pair.as_str(), false, span),
            Rule::string => self.string(pair, span),
            Rule::true_lit => Expr { kind: ExprKind::Bool(true), span },
            Rule::false_lit => Expr { kind: ExprKind::Bool(false), span },
            Rule::null_lit => Expr { kind: ExprKind::Null, span },
            _ => self.malformed(span),
        }
    }

    fn comparison(&mut self, pair: Pair<'_, Rule>, span: Span) -> Expr {
        let mut inner = pair.into_inner();
        let Some(lhs) = inner.next() else { return self.malformed(span) };
        let lhs = self.build(lhs);
        let Some(op_pair) = inner.next() else { return lhs };
        let op_span = span_of(&op_pair);
        let op = match op_pair.as_rule() {
            Rule::eq => CompareOp::Eq,
            Rule::ne => CompareOp::Ne,
            Rule::lt => CompareOp::Lt,
            Rule::le => CompareOp::Le,
            Rule::gt => CompareOp::Gt,
            Rule::ge => CompareOp::Ge,
            Rule::in_op => CompareOp::In,
            _ => CompareOp::NotIn,
        };
        let rhs = match inner.next() {
            Some(rhs) => self.build(rhs),
            None => self.malformed(span),
        };
        if let Some(second) = inner.next() {
            let message = format!("comparisons cannot be chained: `a {} b {} c`", op.symbol(), second.as_str());
            let help = "compare twice and combine with AND: `a < b AND b < c`";
            self.diagnostics.push(
                Diagnostic::new(Code::ExprSyntax, span_of(&second), message)
                    .with_label("second comparison")
                    .with_secondary(op_span, "first comparison")
                    .with_help(help),
            );
        }
        Expr { kind: ExprKind::Compare { op, op_span, lhs: Box::new(lhs), rhs: Box::new(rhs) }, span }
    }

    fn unary(&mut self, pair: Pair<'_, Rule>, span: Span) -> Expr {
        let mut minuses = Vec::new();
        let mut operand = None;
        for inner in pair.into_inner() {
            match inner.as_rule() {
                Rule::neg => minuses.push(span_of(&inner)),
                // `-9223372036854775808` must fold before it overflows as a positive literal.
                Rule::number if !minuses.is_empty() => {
                    let op = minuses.pop().unwrap_or(span);
                    operand = Some(self.number(inner.as_str(), true, op.to(span_of(&inner))));
                }
                _ => operand = Some(self.build(inner)),
            }
        }
        let operand = operand.unwrap_or_else(|| self.malformed(span));
        minuses.into_iter().rev().fold(operand, |operand, op| Expr {
            span: op.to(operand.span),
            kind: ExprKind::Neg { op, operand: Box::new(operand) },
        })
    }

    fn number(&mut self, digits: &str, negative: bool, span: Span) -> Expr {
        let text = if negative { format!("-{digits}") } else { digits.to_owned() };
        let integral = !digits.contains(['.', 'e', 'E']);
        if integral && let Ok(int) = text.parse::<i64>() {
            return Expr { kind: ExprKind::Int(int), span };
        }
        match text.parse::<f64>() {
            Ok(float) if float.is_finite() => Expr { kind: ExprKind::Float(float), span },
            _ => {
                self.diagnostics.push(
                    Diagnostic::new(Code::ExprSyntax, span, "number is too large")
                        .with_label("beyond the range of decimals")
                        .with_help("numbers must lie within ±1.7e308"),
                );
                Expr { kind: ExprKind::Null, span }
            }
        }
    }

    fn string(&mut self, pair: Pair<'_, Rule>, span: Span) -> Expr {
        let Some(body) = pair.into_inner().next() else { return self.malformed(span) };
        let offset = body.as_span().start();
        let mut text = String::with_capacity(body.as_str().len());
        let mut chars = body.as_str().char_indices();
        while let Some((_, c)) = chars.next() {
            if c != '\\' {
                text.push(c);
                continue;
            }
            match chars.next() {
                Some((_, 'n')) => text.push('\n'),
                Some((_, 't')) => text.push('\t'),
                Some((_, c @ ('\'' | '"' | '\\'))) => text.push(c),
                Some((at, other)) => {
                    let escape = Span::new(offset + at - 1, offset + at + other.len_utf8());
                    self.diagnostics.push(
                        Diagnostic::new(Code::ExprSyntax, escape, format!("unknown escape `\\{other}`"))
                            .with_label("not an escape")
                            .with_help(r#"the escapes are \' \" \\ \n \t; write \\ for a backslash"#),
                    );
                }
                // The grammar pairs every backslash with a character.
                None => {}
            }
        }
        Expr { kind: ExprKind::Str(text), span }
    }

    /// A parse tree the grammar cannot produce; reported rather than panicking.
    fn malformed(&mut self, span: Span) -> Expr {
        self.diagnostics.push(Diagnostic::new(Code::ExprSyntax, span, "internal error: unexpected parse tree"));
        Expr { kind: ExprKind::Null, span }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(source: &str) -> Diagnostic {
        match parse(source) {
            Ok(expr) => panic!("`{source}` parsed as {expr:?}"),
            Err(mut diagnostics) => diagnostics.remove(0),
        }
    }

    #[test]
    fn precedence_shapes_the_tree() {
        let Ok(Expr { kind: ExprKind::Or(operands), .. }) = parse("a OR b AND NOT c == 1 + 2 * -3") else {
            panic!("expected an OR");
        };
        assert_eq!(operands.len(), 2);
        assert!(matches!(&operands[1].kind, ExprKind::And(items) if matches!(items[1].kind, ExprKind::Not { .. })));
    }

    #[test]
    fn minus_folds_into_the_smallest_integer() {
        assert_eq!(parse("-9223372036854775808").map(|e| e.kind), Ok(ExprKind::Int(i64::MIN)));
        assert_eq!(parse("- -1").map(|e| matches!(e.kind, ExprKind::Neg { .. })), Ok(true));
    }

    #[test]
    fn errors_point_at_the_offending_character() {
        let diagnostic = error("data.x > ");
        assert_eq!(diagnostic.message, "expected an operand, found the end of the expression");
        assert_eq!(diagnostic.primary.span, Span::new(9, 9));
        let diagnostic = error("data.x = 1");
        assert_eq!(diagnostic.primary.span, Span::new(7, 8));
        assert_eq!(diagnostic.help.as_deref(), Some("use `==` to compare values"));
    }

    #[test]
    fn prescan_counts_prefix_operators_until_their_scope_ends() {
        let nots = format!("{}x", "NOT ".repeat(64));
        assert!(parse(&nots).is_ok());
        assert!(parse(&format!("NOT {nots}")).is_err());
        // Sixty-four separate negations never nest.
        let flat = vec!["!a"; 64].join(" AND ");
        assert!(parse(&flat).is_ok());
        // A NOT stays open across arithmetic: here `-b` is at level 2.
        let deep = format!("{}(NOT a + -b)", "(".repeat(62));
        assert!(matches!(prescan(&deep).first(), Some(d) if d.code == Code::ExprLimit));
    }
}
