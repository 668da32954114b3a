//! Condition expressions: source text to an owned syntax tree with byte spans.
//!
//! The grammar is `grammar/expr.pest`. Before pest runs, a linear pre-scan enforces the limits of
//! the contract (4,096 characters, 64 nesting levels) and reports unbalanced brackets and
//! unterminated strings with better messages than a generic "expected …". pest recurses once per
//! bracket level and the tree builder once per node, so the pre-scan is what keeps every later
//! recursive pass (type-checking, lowering, evaluation, `Drop`) within a fixed stack budget.

use pest::Parser as _;
use pest::error::{ErrorVariant, InputLocation};
use std::iter::Peekable;

use pest::iterators::{Pair, Pairs};

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
    prescan(source).map_err(|problem| vec![problem])?;
    let mut pairs =
        ExprParser::parse(Rule::expression, source).map_err(|e| vec![syntax_error(source, &e)])?;
    let mut builder = Builder { diagnostics: Vec::new() };
    let expr = match pairs.next().and_then(|p| p.into_inner().find(|p| p.as_rule() == Rule::expr)) {
        Some(pair) => builder.expr(pair),
        None => builder.malformed(Span::new(0, source.len())),
    };
    if builder.diagnostics.is_empty() { Ok(expr) } else { Err(builder.diagnostics) }
}

/// One linear pass over the bytes: length, nesting, brackets and strings.
///
/// Nesting counts what makes the tree deeper: an opening bracket (group, list, call) adds one level
/// for its contents; a prefix `-` covers its operand and a prefix `NOT`/`!` covers the rest of its
/// comparison, so each open one adds a level until that scope ends.
fn prescan(source: &str) -> Result<(), Diagnostic> {
    let chars = source.chars().count();
    if chars > MAX_LENGTH {
        let start = source.char_indices().nth(MAX_LENGTH).map_or(0, |(i, _)| i);
        let message = format!("expression is {chars} characters long; the limit is 4,096");
        return Err(Diagnostic::new(Code::ExprLimit, Span::new(start, source.len()), message)
            .with_label("characters past the limit")
            .with_help("split the condition, or compute the value into a data field"));
    }

    struct Open {
        bracket: u8,
        at: usize,
        base: usize,
        nots: usize,
    }
    let bytes = source.as_bytes();
    let mut stack: Vec<Open> = Vec::new();
    // Levels opened by enclosing brackets, by prefix NOTs of the current comparison and by prefix
    // minuses of the current operand.
    let (mut base, mut nots, mut negs) = (0, 0, 0);
    let mut operand_expected = true;
    let mut i = 0;
    let too_deep = |start: usize, end: usize| {
        Diagnostic::new(Code::ExprLimit, Span::new(start, end), "expression nests deeper than 64 levels")
            .with_label("this opens level 65")
            .with_help(
                "brackets, calls and each prefix `NOT`, `!` or `-` add a level; simplify the expression",
            )
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
                    return Err(Diagnostic::new(
                        Code::ExprSyntax,
                        Span::new(start, start + 1),
                        "unterminated string",
                    )
                    .with_label("this string is never closed")
                    .with_help(format!("end it with `{}`", byte as char)));
                }
                (negs, operand_expected) = (0, false);
            }
            b'(' | b'[' => {
                let level = base + nots + negs + 1;
                if level > MAX_NESTING {
                    return Err(too_deep(start, i));
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
                        return Err(Diagnostic::new(Code::ExprSyntax, Span::new(start, i), message)
                            .with_label("mismatched bracket")
                            .with_secondary(Span::new(open.at, open.at + 1), "opened here"));
                    }
                    None => {
                        let message = format!("unmatched `{}`", byte as char);
                        return Err(Diagnostic::new(Code::ExprSyntax, Span::new(start, i), message)
                            .with_label(format!("no `{}` before it", opener as char)));
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
                if byte == b'!' {
                    nots += 1
                } else {
                    negs += 1
                }
                if base + nots + negs > MAX_NESTING {
                    return Err(too_deep(start, i));
                }
            }
            b'0'..=b'9' => {
                // The exponent's sign belongs to the number, not a prefix minus.
                while let Some(&b) = bytes.get(i) {
                    let exponent_sign =
                        matches!(b, b'+' | b'-') && matches!(bytes.get(i - 1), Some(b'e' | b'E'));
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
                            return Err(too_deep(start, i));
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
    match stack.pop() {
        Some(open) => {
            let message = format!("unclosed `{}`", open.bracket as char);
            let close = if open.bracket == b'(' { ')' } else { ']' };
            Err(Diagnostic::new(Code::ExprSyntax, Span::new(open.at, open.at + 1), message)
                .with_label("opened here")
                .with_help(format!("add `{close}` where it ends")))
        }
        None => Ok(()),
    }
}

/// Turns pest's furthest failure into "expected …, found …".
fn syntax_error(source: &str, error: &pest::error::Error<Rule>) -> Diagnostic {
    if let ErrorVariant::CustomError { message } = &error.variant {
        // pest's stack guard: the caller's thread is nearly out of stack.
        return Diagnostic::new(
            Code::ExprLimit,
            Span::new(0, source.len()),
            format!("cannot parse here: {message}"),
        )
        .with_help("parse on a thread with more stack, or simplify the expression");
    }
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
        None => (
            format!("expected {expected}, found the end of the expression"),
            "the expression ends after this".to_owned(),
        ),
        Some(c) if c.is_whitespace() => {
            (format!("expected {expected}, found a blank"), "unexpected blank".to_owned())
        }
        Some(c) if word.is_empty() => {
            (format!("expected {expected}, found `{c}`"), format!("unexpected `{c}`"))
        }
        Some(_) => (format!("expected {expected}, found `{word}`"), format!("unexpected `{word}`")),
    };
    let span = match (found, word.is_empty()) {
        // Renderers draw nothing under an empty span at the very end: underline the last character.
        (None, _) => {
            let end = source.trim_end().len();
            let last = source.get(..end).and_then(|s| s.chars().next_back()).map_or(0, char::len_utf8);
            Span::new(end - last, end)
        }
        (Some(_), true) => span,
        (Some(_), false) => Span::new(at, at + word.len()),
    };
    let (upper, lower) = (word.to_ascii_uppercase(), word.to_ascii_lowercase());
    let miscased = |keywords: &[&str]| word != lower && keywords.contains(&lower.as_str());
    let help = if rest.starts_with('=') && !rest.starts_with("==") {
        Some("use `==` to compare values".to_owned())
    } else if miscased(&["and", "or", "not"]) && word != upper {
        Some(format!("write `{upper}` or `{lower}`"))
    } else if miscased(&["true", "false", "null", "in"]) {
        Some(format!("keywords are lower case: `{lower}`"))
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
        Rule::expr
        | Rule::prefix
        | Rule::number
        | Rule::string
        | Rule::true_lit
        | Rule::false_lit
        | Rule::null_lit
        | Rule::list
        | Rule::reference
        | Rule::group
        | Rule::ident => "an operand",
        Rule::field => "a field name",
        Rule::infix => "an operator",
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

/// A binary operator, told apart by its text (the grammar has one rule for all of them).
#[derive(Clone, Copy)]
enum Infix {
    Or,
    And,
    Compare(CompareOp),
    Arith(ArithOp),
}

impl Infix {
    /// Classifies an `infix` pair; `None` for any other pair.
    fn of(pair: &Pair<'_, Rule>) -> Option<Infix> {
        if pair.as_rule() != Rule::infix {
            return None;
        }
        Some(match pair.as_str().as_bytes() {
            b"||" | b"OR" | b"or" => Infix::Or,
            b"&&" | b"AND" | b"and" => Infix::And,
            b"==" => Infix::Compare(CompareOp::Eq),
            b"!=" => Infix::Compare(CompareOp::Ne),
            b"<=" => Infix::Compare(CompareOp::Le),
            b">=" => Infix::Compare(CompareOp::Ge),
            b"<" => Infix::Compare(CompareOp::Lt),
            b">" => Infix::Compare(CompareOp::Gt),
            b"in" => Infix::Compare(CompareOp::In),
            b"+" => Infix::Arith(ArithOp::Add),
            b"-" => Infix::Arith(ArithOp::Sub),
            b"*" => Infix::Arith(ArithOp::Mul),
            b"/" => Infix::Arith(ArithOp::Div),
            b"%" => Infix::Arith(ArithOp::Rem),
            // `not in`, `NOT in`, with any blanks between.
            _ => Infix::Compare(CompareOp::NotIn),
        })
    }

    /// How tightly the operator binds (higher binds tighter). Prefix `NOT` covers a comparison
    /// ([`NOT_OPERAND`]); prefix `-` covers a single operand ([`NEG_OPERAND`]).
    const fn precedence(self) -> u8 {
        match self {
            Infix::Or => 1,
            Infix::And => 2,
            Infix::Compare(_) => COMPARISON,
            Infix::Arith(ArithOp::Add | ArithOp::Sub) => 5,
            Infix::Arith(_) => 6,
        }
    }
}

const COMPARISON: u8 = 4;
const NOT_OPERAND: u8 = COMPARISON;
const NEG_OPERAND: u8 = 7;

type Items<'i> = Peekable<Pairs<'i, Rule>>;

/// The next pair if it is an operator binding at least as tightly as `min`.
fn next_infix<'i>(items: &mut Items<'i>, min: u8) -> Option<(Pair<'i, Rule>, Infix)> {
    let infix = items.peek().and_then(Infix::of).filter(|infix| infix.precedence() >= min)?;
    items.next().map(|pair| (pair, infix))
}

/// Builds the tree from pest pairs, collecting the errors the grammar leaves to it (precedence
/// misuse, escapes, out-of-range numbers). Its recursion follows brackets, prefix operators and the
/// few precedence levels, all bounded by the pre-scan.
struct Builder {
    diagnostics: Vec<Diagnostic>,
}

impl Builder {
    /// An `expr` pair: a flat row of operands and operators.
    fn expr(&mut self, pair: Pair<'_, Rule>) -> Expr {
        let span = span_of(&pair);
        self.climb(&mut pair.into_inner().peekable(), 1, span)
    }

    /// Precedence climbing: an operand, then every operator binding at least as tightly as `min`.
    /// Within one call operators never bind tighter than the previous one (those went into the right
    /// operand), so equal levels extend the node just built: chains stay flat, and a second
    /// comparison is a chain.
    fn climb(&mut self, items: &mut Items<'_>, min: u8, span: Span) -> Expr {
        let mut lhs = self.operand(items, min, span);
        let mut level = None;
        while let Some((op, infix)) = next_infix(items, min) {
            let prec = infix.precedence();
            let rhs = self.climb(items, prec + 1, span);
            lhs = self.infix(lhs, infix, span_of(&op), rhs, level == Some(prec));
            level = Some(prec);
        }
        lhs
    }

    /// Prefix operators and a primary.
    fn operand(&mut self, items: &mut Items<'_>, min: u8, span: Span) -> Expr {
        let Some(first) = items.next() else { return self.malformed(span) };
        let op = span_of(&first);
        match first.as_rule() {
            Rule::prefix if first.as_str() != "-" => {
                if min > NOT_OPERAND {
                    let message = format!("`{}` needs parentheses here", first.as_str());
                    self.diagnostics.push(
                        Diagnostic::new(Code::ExprSyntax, op, message)
                            .with_label("binds more loosely than the operator before it")
                            .with_help("`NOT` negates a whole comparison: write `a == (NOT b)`"),
                    );
                }
                let operand = self.climb(items, NOT_OPERAND, span);
                Expr { span: op.to(operand.span), kind: ExprKind::Not { op, operand: Box::new(operand) } }
            }
            Rule::prefix => match items.next_if(|p| p.as_rule() == Rule::number) {
                // `-9223372036854775808` must fold before it overflows as a positive literal.
                Some(number) => self.number(number.as_str(), true, op.to(span_of(&number))),
                None => {
                    let operand = self.climb(items, NEG_OPERAND, span);
                    Expr { span: op.to(operand.span), kind: ExprKind::Neg { op, operand: Box::new(operand) } }
                }
            },
            _ => self.primary(first),
        }
    }

    fn infix(&mut self, lhs: Expr, infix: Infix, op_span: Span, rhs: Expr, extend: bool) -> Expr {
        let span = lhs.span.to(rhs.span);
        let arith = match infix {
            Infix::Or | Infix::And => {
                let or = matches!(infix, Infix::Or);
                let kind = match (lhs.kind, extend) {
                    (ExprKind::Or(mut items), true) if or => {
                        items.push(rhs);
                        ExprKind::Or(items)
                    }
                    (ExprKind::And(mut items), true) if !or => {
                        items.push(rhs);
                        ExprKind::And(items)
                    }
                    (kind, _) => {
                        let pair = vec![Expr { kind, span: lhs.span }, rhs];
                        if or { ExprKind::Or(pair) } else { ExprKind::And(pair) }
                    }
                };
                return Expr { kind, span };
            }
            Infix::Arith(arith) => arith,
            Infix::Compare(op) => {
                if let (true, ExprKind::Compare { op: first, op_span: first_span, .. }) = (extend, &lhs.kind)
                {
                    let message =
                        format!("comparisons cannot be chained: `a {} b {} c`", first.symbol(), op.symbol());
                    self.diagnostics.push(
                        Diagnostic::new(Code::ExprSyntax, op_span, message)
                            .with_label("second comparison")
                            .with_secondary(*first_span, "first comparison")
                            .with_help("compare twice and combine with AND: `a < b AND b < c`"),
                    );
                }
                return Expr {
                    kind: ExprKind::Compare { op, op_span, lhs: Box::new(lhs), rhs: Box::new(rhs) },
                    span,
                };
            }
        };
        let kind = match lhs.kind {
            ExprKind::Arith { first, mut rest } if extend => {
                rest.push((arith, op_span, rhs));
                ExprKind::Arith { first, rest }
            }
            kind => ExprKind::Arith {
                first: Box::new(Expr { kind, span: lhs.span }),
                rest: vec![(arith, op_span, rhs)],
            },
        };
        Expr { kind, span }
    }

    fn primary(&mut self, pair: Pair<'_, Rule>) -> Expr {
        let span = span_of(&pair);
        match pair.as_rule() {
            Rule::group => match pair.into_inner().find(|p| p.as_rule() == Rule::expr) {
                // The span grows to the parentheses, so labels underline what the user grouped.
                Some(inner) => Expr { span, ..self.expr(inner) },
                None => self.malformed(span),
            },
            Rule::list => {
                let items =
                    pair.into_inner().filter(|p| p.as_rule() == Rule::expr).map(|p| self.expr(p)).collect();
                Expr { kind: ExprKind::List(items), span }
            }
            Rule::reference => {
                // A call ends in its `)`; a path ends in a name.
                let call = pair.as_str().ends_with(')');
                let mut inner = pair.into_inner();
                let Some(root) = inner.next() else { return self.malformed(span) };
                let root = Name { text: root.as_str().to_owned(), span: span_of(&root) };
                if call {
                    let args = inner.filter(|p| p.as_rule() == Rule::expr).map(|p| self.expr(p)).collect();
                    Expr { kind: ExprKind::Call { name: root, args }, span }
                } else {
                    let mut names = vec![root];
                    names.extend(inner.map(|p| Name { text: p.as_str().to_owned(), span: span_of(&p) }));
                    Expr { kind: ExprKind::Path(names), span }
                }
            }
            Rule::number => self.number(pair.as_str(), false, span),
            Rule::string => self.string(pair, span),
            Rule::true_lit => Expr { kind: ExprKind::Bool(true), span },
            Rule::false_lit => Expr { kind: ExprKind::Bool(false), span },
            Rule::null_lit => Expr { kind: ExprKind::Null, span },
            _ => self.malformed(span),
        }
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
        self.diagnostics.push(Diagnostic::new(
            Code::ExprSyntax,
            span,
            "internal error: unexpected parse tree",
        ));
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
        assert!(
            matches!(&operands[1].kind, ExprKind::And(items) if matches!(items[1].kind, ExprKind::Not { .. }))
        );
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
        assert_eq!(diagnostic.primary.span, Span::new(7, 8));
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
        assert!(matches!(prescan(&deep), Err(d) if d.code == Code::ExprLimit));
    }
}
