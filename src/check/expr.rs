//! Type-checking and lowering of condition expressions: syntax tree to [`crate::ir::expr::Expr`].
//!
//! One pass collects every diagnostic of an expression. Static types come from `dataSchema`; what is
//! only known at run time (undeclared fields, members of `object` fields) is typed `Unknown` and
//! checked by the evaluator. The recursion follows the syntax tree, whose depth the parser bounds.

use crate::diagnostic::{Code, Diagnostic, Span, did_you_mean, unknown_name_help};
use crate::ir::data::DataSchema;
use crate::ir::expr::{ArithOp, CmpMode, CmpOp, Expr, Function, Type};
use crate::ir::value::{Temporal, Value};
use crate::syntax::expr::{self as ast, CompareOp, ExprKind, Name};

/// What an expression may refer to.
#[derive(Clone, Copy, Debug)]
pub struct ExprEnv<'a> {
    /// The declared data fields.
    pub schema: &'a DataSchema,
    /// The stage names of the entity the expression belongs to; empty when unknown.
    pub stages: &'a [String],
}

/// The result of compiling one expression.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The compiled expression, when there is no error (warnings allowed).
    pub expr: Option<Expr>,
    /// Its static type (`Unknown` after an error).
    pub ty: Type,
    /// Every error and warning, spans relative to the source.
    pub diagnostics: Vec<Diagnostic>,
}

impl Compiled {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parses, type-checks and lowers an expression.
pub fn compile(source: &str, env: &ExprEnv<'_>) -> Compiled {
    let tree = match ast::parse(source) {
        Ok(tree) => tree,
        Err(mut diagnostics) => {
            for diagnostic in &mut diagnostics {
                dangling_operator_help(source, diagnostic);
            }
            return Compiled { expr: None, ty: Type::Unknown, diagnostics };
        }
    };
    let mut checker = Checker { env, diagnostics: Vec::new() };
    let Typed { expr, ty } = checker.check(&tree);
    let failed = checker.diagnostics.iter().any(Diagnostic::is_error);
    Compiled {
        expr: (!failed).then_some(expr),
        ty: if failed { Type::Unknown } else { ty },
        diagnostics: checker.diagnostics,
    }
}

/// A syntax error at the end of an expression that ends with an operator (`data.a > 1 AND`) gets a
/// help line saying what is missing.
fn dangling_operator_help(source: &str, diagnostic: &mut Diagnostic) {
    let trimmed = source.trim_end();
    if diagnostic.code != Code::ExprSyntax
        || diagnostic.help.is_some()
        || diagnostic.primary.span.end < trimmed.len()
    {
        return;
    }
    const OPERATORS: [&str; 16] =
        ["AND", "OR", "NOT", "and", "or", "not", "&&", "||", "==", "!=", "<=", ">=", "<", ">", "+", "in"];
    let Some(operator) = OPERATORS.iter().find(|op| {
        trimmed.ends_with(*op) && {
            // A word operator must be a whole word (`data.brand` does not end with `and`).
            let before = trimmed[..trimmed.len() - op.len()].chars().next_back();
            !op.starts_with(|c: char| c.is_ascii_alphabetic())
                || before.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'))
        }
    }) else {
        return;
    };
    let what = match operator.to_ascii_uppercase().as_str() {
        "AND" | "OR" | "&&" | "||" => "the condition it joins",
        "NOT" => "the condition it negates",
        "IN" => "the list or string to look in",
        _ => "the value to compare with",
    };
    diagnostic.help = Some(format!(
        "the expression ends with `{operator}`: add {what} after it, or remove the `{operator}`"
    ));
}

/// Compiles a condition: like [`compile`], and the result must be a boolean (or `null`, which counts as
/// false), else `NotBoolean`.
pub fn compile_condition(source: &str, env: &ExprEnv<'_>) -> Compiled {
    let mut compiled = compile(source, env);
    if !matches!(compiled.ty, Type::Bool | Type::Null | Type::Unknown) {
        let start = source.len() - source.trim_start().len();
        let span = Span::new(start, source.trim_end().len().max(start));
        let message = format!("condition produces {}, not a boolean", a(&compiled.ty));
        compiled.diagnostics.push(
            Diagnostic::new(Code::NotBoolean, span, message)
                .with_label(format!("this is {}", a(&compiled.ty)))
                .with_help("compare the value, e.g. `data.lead_score > 50` or `data.lead_source == 'web'`"),
        );
        compiled.expr = None;
        compiled.ty = Type::Unknown;
    }
    compiled
}

struct Typed {
    expr: Expr,
    ty: Type,
}

impl Typed {
    fn new(expr: Expr, ty: Type) -> Self {
        Self { expr, ty }
    }

    /// A placeholder after an error: `Unknown` stops the error from cascading to enclosing nodes.
    fn error() -> Self {
        Self::new(Expr::Const(Value::Null), Type::Unknown)
    }
}

struct Checker<'e, 'a> {
    env: &'e ExprEnv<'a>,
    diagnostics: Vec<Diagnostic>,
}

/// `a number`, `an object`, `null`: for messages.
fn a(ty: &Type) -> String {
    match ty {
        Type::Null => "null".to_owned(),
        Type::Unknown | Type::Object => format!("an {}", ty.name()),
        _ => format!("a {}", ty.name()),
    }
}

/// Could be a string at run time (dates are strings).
fn stringish(ty: &Type) -> bool {
    matches!(ty, Type::String | Type::Date | Type::DateTime | Type::Unknown | Type::Null)
}

fn numeric(ty: &Type) -> bool {
    matches!(ty, Type::Number | Type::Unknown | Type::Null)
}

fn booleanish(ty: &Type) -> bool {
    matches!(ty, Type::Bool | Type::Unknown | Type::Null)
}

const TEMPORAL_HELP: &str =
    "write dates as `YYYY-MM-DD` and date-times as RFC 3339, e.g. `2026-11-25T08:00:00Z`";

impl Checker<'_, '_> {
    fn check(&mut self, node: &ast::Expr) -> Typed {
        match &node.kind {
            ExprKind::Null => Typed::new(Expr::Const(Value::Null), Type::Null),
            ExprKind::Bool(b) => Typed::new(Expr::Const(Value::Bool(*b)), Type::Bool),
            ExprKind::Int(i) => Typed::new(Expr::Const(Value::Int(*i)), Type::Number),
            ExprKind::Float(f) => Typed::new(Expr::Const(Value::Float(*f)), Type::Number),
            ExprKind::Str(s) => Typed::new(Expr::Const(Value::from(s.as_str())), Type::String),
            ExprKind::List(items) => {
                let items: Vec<Typed> = items.iter().map(|item| self.check(item)).collect();
                let ty = Type::List(Box::new(Type::join(items.iter().map(|t| t.ty.clone()))));
                let constants: Option<Vec<Value>> = items
                    .iter()
                    .map(|t| match &t.expr {
                        Expr::Const(value) => Some(value.clone()),
                        _ => None,
                    })
                    .collect();
                match constants {
                    Some(values) => Typed::new(Expr::Const(Value::from(values)), ty),
                    None => Typed::new(Expr::List(items.into_iter().map(|t| t.expr).collect()), ty),
                }
            }
            ExprKind::Path(names) => self.path(names, node.span),
            ExprKind::Call { name, args } => self.call(name, args, node.span),
            ExprKind::Not { operand, .. } => {
                let typed = self.check(operand);
                self.expect_boolean("NOT", &typed.ty, operand);
                Typed::new(Expr::Not(Box::new(typed.expr)), Type::Bool)
            }
            ExprKind::Neg { op, operand } => {
                let typed = self.check(operand);
                if !numeric(&typed.ty) {
                    let message = format!("unary `-` takes a number, found {}", a(&typed.ty));
                    let diagnostic = Diagnostic::new(Code::ExprType, *op, message)
                        .with_label("expects a number")
                        .with_secondary(operand.span, format!("this is {}", a(&typed.ty)));
                    self.push_with_declaration(diagnostic, operand);
                    return Typed::error();
                }
                let ty = if typed.ty == Type::Null { Type::Null } else { Type::Number };
                Typed::new(Expr::Neg(Box::new(typed.expr)), ty)
            }
            ExprKind::Or(operands) | ExprKind::And(operands) => {
                let or = matches!(node.kind, ExprKind::Or(_));
                let keyword = if or { "OR" } else { "AND" };
                let exprs: Box<[Expr]> = operands
                    .iter()
                    .map(|operand| {
                        let typed = self.check(operand);
                        self.expect_boolean(keyword, &typed.ty, operand);
                        typed.expr
                    })
                    .collect();
                Typed::new(if or { Expr::Or(exprs) } else { Expr::And(exprs) }, Type::Bool)
            }
            ExprKind::Compare { op, op_span, lhs, rhs } => self.compare(*op, *op_span, lhs, rhs),
            ExprKind::Arith { first, rest } => self.arith(first, rest),
        }
    }

    fn expect_boolean(&mut self, keyword: &str, ty: &Type, operand: &ast::Expr) {
        if booleanish(ty) {
            return;
        }
        let message = format!("`{keyword}` takes booleans, found {}", a(ty));
        let diagnostic = Diagnostic::new(Code::ExprType, operand.span, message)
            .with_label(format!("this is {}", a(ty)))
            .with_help("compare the value to get a boolean, e.g. `data.lead_score > 50`");
        self.push_with_declaration(diagnostic, operand);
    }

    /// Adds "`field` is declared as …" when the operand is a declared field.
    fn with_declaration(&self, mut diagnostic: Diagnostic, operand: &ast::Expr) -> Diagnostic {
        if let ExprKind::Path(names) = &operand.kind
            && let [root, field] = names.as_slice()
            && root.text == "data"
            && let Some(id) = self.env.schema.lookup(&field.text)
        {
            let declared = format!("`{}` is declared as {}", field.text, self.env.schema.field(id).ty.name());
            match diagnostic.secondary.iter_mut().find(|label| label.span == operand.span) {
                Some(label) => label.message = declared,
                None if diagnostic.primary.span == operand.span => diagnostic.primary.message = declared,
                None => diagnostic = diagnostic.with_secondary(operand.span, declared),
            }
        }
        diagnostic
    }

    fn push_with_declaration(&mut self, diagnostic: Diagnostic, operand: &ast::Expr) {
        let diagnostic = self.with_declaration(diagnostic, operand);
        self.diagnostics.push(diagnostic);
    }

    fn path(&mut self, names: &[Name], span: Span) -> Typed {
        let Some((root, rest)) = names.split_first() else { return Typed::error() };
        match root.text.as_str() {
            "data" => self.data_path(rest, span),
            what @ ("stage" | "entity") => {
                if let Some(extra) = rest.first() {
                    self.diagnostics.push(
                        Diagnostic::new(
                            Code::ExprSyntax,
                            span,
                            format!("`{what}` has no field `{}`", extra.text),
                        )
                        .with_label("no such field")
                        .with_help(format!(
                            "`{what}` is a string; compare it directly, e.g. `{what} == 'x'`"
                        )),
                    );
                    return Typed::error();
                }
                Typed::new(if what == "stage" { Expr::Stage } else { Expr::Entity }, Type::String)
            }
            "actor" => match rest {
                [id] if id.text == "id" => Typed::new(Expr::ActorId, Type::String),
                [roles] if roles.text == "roles" => {
                    Typed::new(Expr::ActorRoles, Type::List(Box::new(Type::String)))
                }
                _ => {
                    self.diagnostics.push(
                        Diagnostic::new(Code::ExprSyntax, span, format!("unknown path `{}`", join(names)))
                            .with_label("not a member of `actor`")
                            .with_help("`actor` has `actor.id` and `actor.roles`; see also `has_role(…)`"),
                    );
                    Typed::error()
                }
            },
            other => {
                let declared = self.env.schema.lookup(other).is_some();
                let help = if declared {
                    format!("data fields are read through `data`: `data.{}`", join(names))
                } else if let Some(root) = did_you_mean(other, ["data", "stage", "entity", "actor"]) {
                    format!("did you mean `{root}`?")
                } else {
                    "paths start with `data.`, `stage`, `entity` or `actor.`".to_owned()
                };
                self.diagnostics.push(
                    Diagnostic::new(Code::ExprSyntax, root.span, format!("unknown name `{other}`"))
                        .with_label("not a path root")
                        .with_help(help),
                );
                Typed::error()
            }
        }
    }

    fn data_path(&mut self, rest: &[Name], span: Span) -> Typed {
        let Some((field, keys)) = rest.split_first() else {
            self.diagnostics.push(
                Diagnostic::new(Code::ExprSyntax, span, "`data` needs a field name")
                    .with_label("expected `data.<field>`")
                    .with_help("read a field, e.g. `data.lead_score`"),
            );
            return Typed::error();
        };
        let key_names: Box<[Box<str>]> = keys.iter().map(|k| k.text.as_str().into()).collect();
        let schema = self.env.schema;
        let Some(id) = schema.lookup(&field.text) else {
            let help =
                unknown_name_help(&field.text, "field", schema.fields().iter().map(|f| f.name.as_str()));
            self.diagnostics.push(
                Diagnostic::new(
                    Code::UndeclaredField,
                    span,
                    format!("`data.{}` is not declared in `dataSchema`", field.text),
                )
                .with_label("undeclared field")
                .with_help_opt(help),
            );
            return Typed::new(
                Expr::Undeclared { name: field.text.as_str().into(), keys: key_names },
                Type::Unknown,
            );
        };
        let declared = &schema.field(id).ty;
        let ty = match (Type::of_field(declared), keys.first()) {
            (ty, None) => ty,
            (Type::Object, Some(_)) => Type::Unknown,
            (_, Some(key)) => {
                let message = format!(
                    "`{}` is declared as {}; it has no field `{}`",
                    field.text,
                    declared.name(),
                    key.text
                );
                self.diagnostics.push(
                    Diagnostic::new(Code::ExprType, key.span, message)
                        .with_label("no such field")
                        .with_secondary(
                            field.span,
                            format!("`{}` is declared as {}", field.text, declared.name()),
                        ),
                );
                return Typed::error();
            }
        };
        Typed::new(Expr::Field { id, keys: key_names }, ty)
    }

    fn call(&mut self, name: &Name, args: &[ast::Expr], span: Span) -> Typed {
        let typed: Vec<Typed> = args.iter().map(|arg| self.check(arg)).collect();
        let Some(func) = Function::from_name(&name.text) else {
            let names = Function::ALL.iter().map(|f| f.name());
            let help = match did_you_mean(&name.text, names.clone()) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!(
                    "the functions are {}",
                    names.map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                ),
            };
            self.diagnostics.push(
                Diagnostic::new(
                    Code::UnknownFunction,
                    name.span,
                    format!("unknown function `{}`", name.text),
                )
                .with_label("not a function")
                .with_help(help),
            );
            return Typed::error();
        };
        if typed.len() != func.arity() {
            let plural = |n: usize| if n == 1 { "" } else { "s" };
            let (want, got) = (func.arity(), typed.len());
            self.diagnostics.push(
                Diagnostic::new(
                    Code::UnknownFunction,
                    span,
                    format!("`{func}` takes {want} argument{}, found {got}", plural(want)),
                )
                .with_label(format!("called with {got} argument{}", plural(got)))
                .with_secondary(name.span, format!("`{func}` is a built-in function")),
            );
            return Typed::error();
        }
        let arg_ty = |i: usize| typed.get(i).map_or(&Type::Unknown, |t| &t.ty);
        let ok = match func {
            Function::Len => self.expect_arg(func, args, arg_ty(0), 0, "a string or a list", |t| {
                stringish(t) || matches!(t, Type::List(_))
            }),
            Function::Lower | Function::Upper | Function::HasRole | Function::HasPermission => {
                self.expect_arg(func, args, arg_ty(0), 0, "a string", stringish)
            }
            Function::Contains => {
                let haystack = self.expect_arg(func, args, arg_ty(0), 0, "a string or a list", |t| {
                    stringish(t) || matches!(t, Type::List(_))
                });
                let substring = !matches!(arg_ty(0), Type::String | Type::Date | Type::DateTime)
                    || self.expect_arg(
                        func,
                        args,
                        arg_ty(1),
                        1,
                        "a string (to look for in a string)",
                        stringish,
                    );
                haystack && substring
            }
            Function::StartsWith | Function::EndsWith => {
                let text = self.expect_arg(func, args, arg_ty(0), 0, "a string", stringish);
                self.expect_arg(func, args, arg_ty(1), 1, "a string", stringish) && text
            }
            Function::Now => true,
            Function::DaysSince | Function::HoursSince => {
                let ok = self.expect_arg(func, args, arg_ty(0), 0, "a date or a date-time", stringish);
                ok && args.first().is_none_or(|arg| self.expect_temporal_literal(arg))
            }
        };
        if !ok {
            return Typed::error();
        }
        let ty = match func {
            Function::Len | Function::DaysSince | Function::HoursSince => Type::Number,
            Function::Lower | Function::Upper => Type::String,
            Function::Now => Type::DateTime,
            Function::Contains
            | Function::StartsWith
            | Function::EndsWith
            | Function::HasRole
            | Function::HasPermission => Type::Bool,
        };
        Typed::new(Expr::Call { func, args: typed.into_iter().map(|t| t.expr).collect() }, ty)
    }

    fn expect_arg(
        &mut self,
        func: Function,
        args: &[ast::Expr],
        ty: &Type,
        index: usize,
        expected: &str,
        accepts: fn(&Type) -> bool,
    ) -> bool {
        if accepts(ty) {
            return true;
        }
        let Some(arg) = args.get(index) else { return false };
        let message = format!("`{func}` takes {expected}, found {}", a(ty));
        let diagnostic =
            Diagnostic::new(Code::ExprType, arg.span, message).with_label(format!("this is {}", a(ty)));
        self.push_with_declaration(diagnostic, arg);
        false
    }

    /// A string literal used as a date must be one; `true` when fine.
    fn expect_temporal_literal(&mut self, node: &ast::Expr) -> bool {
        match &node.kind {
            ExprKind::Str(text) if Temporal::parse(text).is_none() => {
                self.diagnostics.push(
                    Diagnostic::new(
                        Code::ExprType,
                        node.span,
                        format!("`{text}` is not a date or a date-time"),
                    )
                    .with_label("expected an ISO-8601 date")
                    .with_help(TEMPORAL_HELP),
                );
                false
            }
            _ => true,
        }
    }

    /// `stage == 'x'`, `stage in ['x', 'y']`: each name must be a stage of the entity.
    fn check_stage_names(&mut self, stage: &ast::Expr, names: &ast::Expr) {
        let is_stage = |path: &[Name]| matches!(path, [root] if root.text == "stage");
        if !matches!(&stage.kind, ExprKind::Path(path) if is_stage(path)) || self.env.stages.is_empty() {
            return;
        }
        let literals = match &names.kind {
            ExprKind::Str(_) => std::slice::from_ref(names),
            ExprKind::List(items) => items.as_slice(),
            _ => return,
        };
        for literal in literals {
            if let ExprKind::Str(name) = &literal.kind
                && !self.env.stages.iter().any(|s| s == name)
            {
                let help = unknown_name_help(name, "stage", self.env.stages.iter().map(String::as_str));
                self.diagnostics.push(
                    Diagnostic::new(
                        Code::UnknownStage,
                        literal.span,
                        format!("stage `{name}` is not declared"),
                    )
                    .with_label("unknown stage")
                    .with_help_opt(help),
                );
            }
        }
    }

    fn compare(&mut self, op: CompareOp, op_span: Span, lhs: &ast::Expr, rhs: &ast::Expr) -> Typed {
        let left = self.check(lhs);
        let right = self.check(rhs);
        if !matches!(op, CompareOp::Lt | CompareOp::Le | CompareOp::Gt | CompareOp::Ge) {
            self.check_stage_names(lhs, rhs);
            self.check_stage_names(rhs, lhs);
        }
        let cmp = match op {
            CompareOp::In | CompareOp::NotIn => {
                return self.membership(op, op_span, (lhs, left), (rhs, right));
            }
            CompareOp::Eq => CmpOp::Eq,
            CompareOp::Ne => CmpOp::Ne,
            CompareOp::Lt => CmpOp::Lt,
            CompareOp::Le => CmpOp::Le,
            CompareOp::Gt => CmpOp::Gt,
            CompareOp::Ge => CmpOp::Ge,
        };
        let accepts_temporal =
            |t: &Type| matches!(t, Type::Date | Type::DateTime | Type::String | Type::Unknown);
        let chronological = (left.ty.is_temporal() && accepts_temporal(&right.ty))
            || (right.ty.is_temporal() && accepts_temporal(&left.ty));
        if chronological {
            let (fine_left, fine_right) =
                (self.expect_temporal_literal(lhs), self.expect_temporal_literal(rhs));
            if !(fine_left && fine_right) {
                return Typed::error();
            }
        } else if cmp.is_ordering() && !orderable(&left.ty, &right.ty) {
            let message = format!("cannot compare {} with {} using `{cmp}`", a(&left.ty), a(&right.ty));
            let mut help = "`<`, `<=`, `>` and `>=` compare two numbers, two strings or two dates".to_owned();
            if matches!((&left.ty, &right.ty), (Type::Number, Type::String) | (Type::String, Type::Number)) {
                help.push_str("; write numbers without quotes");
            }
            let diagnostic = Diagnostic::new(Code::ExprType, op_span, message)
                .with_label("incompatible operands")
                .with_secondary(lhs.span, format!("this is {}", a(&left.ty)))
                .with_secondary(rhs.span, format!("this is {}", a(&right.ty)))
                .with_help(help);
            let diagnostic = self.with_declaration(diagnostic, lhs);
            self.push_with_declaration(diagnostic, rhs);
            return Typed::error();
        }
        let mode = if chronological { CmpMode::Chronological } else { CmpMode::Natural };
        Typed::new(
            Expr::Compare { op: cmp, mode, lhs: Box::new(left.expr), rhs: Box::new(right.expr) },
            Type::Bool,
        )
    }

    fn membership(
        &mut self,
        op: CompareOp,
        op_span: Span,
        (lhs, left): (&ast::Expr, Typed),
        (rhs, right): (&ast::Expr, Typed),
    ) -> Typed {
        let problem = match &right.ty {
            Type::List(_) | Type::Unknown | Type::Null => None,
            Type::String | Type::Date | Type::DateTime if stringish(&left.ty) => None,
            Type::String | Type::Date | Type::DateTime => Some((
                format!(
                    "`{}` on a string looks for a substring, so it needs a string on the left, found {}",
                    op.symbol(),
                    a(&left.ty)
                ),
                lhs,
                &left.ty,
            )),
            other => Some((
                format!("`{}` needs a list or a string on the right, found {}", op.symbol(), a(other)),
                rhs,
                other,
            )),
        };
        if let Some((message, culprit, ty)) = problem {
            let diagnostic = Diagnostic::new(Code::ExprType, op_span, message)
                .with_label("incompatible operands")
                .with_secondary(culprit.span, format!("this is {}", a(ty)));
            self.push_with_declaration(diagnostic, culprit);
            return Typed::error();
        }
        let negated = op == CompareOp::NotIn;
        Typed::new(Expr::In { negated, lhs: Box::new(left.expr), rhs: Box::new(right.expr) }, Type::Bool)
    }

    fn arith(&mut self, first: &ast::Expr, rest: &[(ast::ArithOp, Span, ast::Expr)]) -> Typed {
        let Typed { expr: head, mut ty } = self.check(first);
        let mut left_span = first.span;
        let mut chain = Vec::with_capacity(rest.len());
        let mut failed = false;
        for (op, op_span, operand) in rest {
            let right = self.check(operand);
            let op = match op {
                ast::ArithOp::Add => ArithOp::Add,
                ast::ArithOp::Sub => ArithOp::Sub,
                ast::ArithOp::Mul => ArithOp::Mul,
                ast::ArithOp::Div => ArithOp::Div,
                ast::ArithOp::Rem => ArithOp::Rem,
            };
            let result = match (&ty, &right.ty) {
                (Type::Null, _) | (_, Type::Null) => Some(Type::Null),
                (Type::Unknown, Type::Unknown) => Some(Type::Unknown),
                (l, r) if numeric(l) && numeric(r) => Some(Type::Number),
                (l, r) if op == ArithOp::Add && stringish(l) && stringish(r) => Some(Type::String),
                _ => None,
            };
            match result {
                Some(result) => ty = result,
                None => {
                    let verb = match op {
                        ArithOp::Add => "add",
                        ArithOp::Sub => "subtract",
                        ArithOp::Mul => "multiply",
                        ArithOp::Div => "divide",
                        ArithOp::Rem => "take the remainder of",
                    };
                    let help = if op == ArithOp::Add {
                        "`+` adds two numbers or joins two strings"
                    } else {
                        "arithmetic takes numbers"
                    };
                    let message = format!("cannot {verb} {} and {}", a(&ty), a(&right.ty));
                    let diagnostic = Diagnostic::new(Code::ExprType, *op_span, message)
                        .with_label("incompatible operands")
                        .with_secondary(left_span, format!("this is {}", a(&ty)))
                        .with_secondary(operand.span, format!("this is {}", a(&right.ty)))
                        .with_help(help);
                    // Only the first operator's left side is a single node that may be a declared field.
                    let diagnostic = if left_span == first.span {
                        self.with_declaration(diagnostic, first)
                    } else {
                        diagnostic
                    };
                    self.push_with_declaration(diagnostic, operand);
                    (ty, failed) = (Type::Unknown, true);
                }
            }
            left_span = left_span.to(operand.span);
            chain.push((op, right.expr));
        }
        if failed {
            return Typed::error();
        }
        Typed::new(Expr::Arith { first: Box::new(head), rest: chain.into() }, ty)
    }
}

/// Whether `<`, `<=`, `>`, `>=` can succeed on these types (dates against strings are handled before).
fn orderable(left: &Type, right: &Type) -> bool {
    let ordered = |t: &Type| {
        matches!(t, Type::Number | Type::String | Type::Date | Type::DateTime | Type::Unknown | Type::Null)
    };
    ordered(left)
        && ordered(right)
        && match (left, right) {
            (Type::Unknown | Type::Null, _) | (_, Type::Unknown | Type::Null) => true,
            (l, r) => l == r,
        }
}

fn join(names: &[Name]) -> String {
    names.iter().map(|n| n.text.as_str()).collect::<Vec<_>>().join(".")
}
