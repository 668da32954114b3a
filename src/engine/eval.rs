//! The expression evaluator: runs a compiled [`Expr`] against an instance's data.
//!
//! The hot path allocates nothing: operands are borrowed from the expression's constants and the
//! record's slots ([`Val`]), compared through a `Copy` view ([`View`]), and boolean operators never
//! materialise a [`Value`]. Only string results (`lower`, `+` on strings, `now()`) and `actor.roles`
//! as a value allocate. Recursion is bounded by [`MAX_TREE_DEPTH`].

use std::cmp::Ordering;
use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::engine::data::NULL;
pub use crate::engine::data::Record;
use crate::ir::expr::{ArithOp, CmpMode, CmpOp, Expr, Function, MAX_TREE_DEPTH};
use crate::ir::value::{Temporal, Value, compare_numbers};

/// The user an evaluation acts for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Actor {
    /// The user id (`actor.id`).
    pub id: String,
    /// The user's roles (`actor.roles`, `has_role`).
    pub roles: Vec<String>,
    /// The user's permissions (`has_permission`).
    pub permissions: Vec<String>,
}

/// Everything an expression can read.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// The instance data (`data.…`).
    pub data: &'a Record,
    /// The current stage name (`stage`).
    pub stage: &'a str,
    /// The entity type name (`entity`).
    pub entity: &'a str,
    /// The acting user, if any (`actor.…`, `has_role`, `has_permission`).
    pub actor: Option<&'a Actor>,
    /// The evaluation time (`now()`, `days_since`, `hours_since`).
    pub now: DateTime<Utc>,
}

/// Why an evaluation failed. Run-time failures refuse the transition; they never read as `false`.
#[derive(Clone, Debug, PartialEq, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum EvalError {
    /// An operator met operands it cannot combine, e.g. `data.x > 50` when `x` (undeclared) holds `'high'`.
    #[error("`{op}` cannot be applied to {left} and {right}")]
    #[diagnostic(code(crm::eval::type_mismatch), help("check the instance data against `dataSchema`"))]
    TypeMismatch {
        /// The operator.
        op: &'static str,
        /// The left operand's kind.
        left: &'static str,
        /// The right operand's kind.
        right: &'static str,
    },
    /// An operator or function got a value of the wrong kind, e.g. `NOT data.x` when `x` holds `3`.
    #[error("`{op}` takes {expected}, found {found}")]
    #[diagnostic(code(crm::eval::wrong_operand), help("check the instance data against `dataSchema`"))]
    WrongOperand {
        /// The operator or function.
        op: &'static str,
        /// What it takes.
        expected: &'static str,
        /// The kind it got.
        found: &'static str,
    },
    /// A condition produced something other than a boolean or `null`, e.g. `data.x` when `x` holds `'a'`.
    #[error("the condition produced {found}, not a boolean")]
    #[diagnostic(code(crm::eval::not_boolean))]
    NotBoolean {
        /// The kind it produced.
        found: &'static str,
    },
    /// `/` or `%` by zero, e.g. `data.amount / data.count` when `count` is `0`.
    #[error("division by zero")]
    #[diagnostic(code(crm::eval::division_by_zero))]
    DivisionByZero,
    /// A result beyond the range of decimals, e.g. `1e308 * 10`.
    #[error("number overflow")]
    #[diagnostic(code(crm::eval::overflow))]
    Overflow,
    /// A string that should be a date is not one, e.g. `days_since(data.x)` when `x` holds `'soon'`.
    #[error("`{value}` is not a date or a date-time")]
    #[diagnostic(code(crm::eval::invalid_date), help("dates are `YYYY-MM-DD`, date-times RFC 3339"))]
    InvalidDate {
        /// The offending string.
        value: String,
    },
    /// A hand-built tree deeper than [`MAX_TREE_DEPTH`]; compiled expressions never are.
    #[error("expression is nested too deeply to evaluate")]
    #[diagnostic(code(crm::eval::too_deep))]
    TooDeep,
}

/// Evaluates an expression to a value.
pub fn evaluate(expr: &Expr, ctx: &Context<'_>) -> Result<Value, EvalError> {
    eval(expr, ctx, 0).map(Val::into_value).map_err(|e| *e)
}

/// Evaluates a condition: `null` is false, a non-boolean is an error.
pub fn evaluate_condition(expr: &Expr, ctx: &Context<'_>) -> Result<bool, EvalError> {
    truth(expr, ctx, 0).map_err(|e| *e)
}

/// Errors are boxed inside the evaluator so that results fit in registers: returning a large
/// `Result` through the stack costs more than the comparisons themselves.
type Outcome<T> = Result<T, Box<EvalError>>;

/// An operand, borrowed where possible.
enum Val<'a> {
    Ref(&'a Value),
    Str(&'a str),
    Own(Value),
}

/// A `Copy` view of a value, for matching on kinds without cloning.
#[derive(Clone, Copy)]
enum View<'a> {
    Null,
    Bool(bool),
    Num(&'a Value),
    Str(&'a str),
    List(&'a [Value]),
    Object(&'a BTreeMap<String, Value>),
}

impl<'a> Val<'a> {
    fn view(&self) -> View<'_> {
        match self {
            Val::Ref(value) => view(value),
            Val::Str(s) => View::Str(s),
            Val::Own(value) => view(value),
        }
    }

    fn into_value(self) -> Value {
        match self {
            Val::Ref(value) => value.clone(),
            Val::Str(s) => Value::from(s),
            Val::Own(value) => value,
        }
    }
}

fn view(value: &Value) -> View<'_> {
    match value {
        Value::Null => View::Null,
        Value::Bool(b) => View::Bool(*b),
        Value::Int(_) | Value::Float(_) => View::Num(value),
        Value::Str(s) => View::Str(s),
        Value::List(items) => View::List(items),
        Value::Object(map) => View::Object(map),
    }
}

impl View<'_> {
    fn kind(self) -> &'static str {
        match self {
            View::Null => "null",
            View::Bool(_) => "boolean",
            View::Num(_) => "number",
            View::Str(_) => "string",
            View::List(_) => "list",
            View::Object(_) => "object",
        }
    }
}

fn own(value: Value) -> Val<'static> {
    Val::Own(value)
}

/// Names the operator when an operand of a boolean operator is not a boolean.
fn operand_of(op: &'static str) -> impl Fn(Box<EvalError>) -> Box<EvalError> {
    move |e| match *e {
        EvalError::NotBoolean { found } => {
            Box::new(EvalError::WrongOperand { op, expected: "booleans", found })
        }
        _ => e,
    }
}

/// Evaluates in a boolean context: `null` is false, another non-boolean is `NotBoolean`. Boolean
/// operators stay here and never build a [`Value`].
fn truth(expr: &Expr, ctx: &Context<'_>, depth: usize) -> Outcome<bool> {
    if depth > MAX_TREE_DEPTH {
        return Err(Box::new(EvalError::TooDeep));
    }
    let depth = depth + 1;
    match expr {
        Expr::And(items) => {
            for item in items {
                if !truth(item, ctx, depth).map_err(operand_of("AND"))? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Expr::Or(items) => {
            for item in items {
                if truth(item, ctx, depth).map_err(operand_of("OR"))? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Expr::Not(operand) => Ok(!truth(operand, ctx, depth).map_err(operand_of("NOT"))?),
        Expr::Compare { op, mode, lhs, rhs } => {
            let (l_val, r_val);
            let l = match leaf(lhs, ctx) {
                Some(view) => view,
                None => {
                    l_val = eval(lhs, ctx, depth)?;
                    l_val.view()
                }
            };
            let r = match leaf(rhs, ctx) {
                Some(view) => view,
                None => {
                    r_val = eval(rhs, ctx, depth)?;
                    r_val.view()
                }
            };
            Ok(compare(*op, *mode, l, r)?)
        }
        Expr::In { negated, lhs, rhs } => Ok(membership(lhs, rhs, ctx, depth)? != *negated),
        other => match eval(other, ctx, depth)?.view() {
            View::Bool(b) => Ok(b),
            View::Null => Ok(false),
            found => Err(Box::new(EvalError::NotBoolean { found: found.kind() })),
        },
    }
}

/// Reads a constant or a path in place, without a `Result` or a copy through the stack.
#[inline(always)]
fn leaf<'a>(expr: &'a Expr, ctx: &'a Context<'_>) -> Option<View<'a>> {
    match expr {
        Expr::Const(value) => Some(view(value)),
        Expr::Field { id, keys } => Some(view(descend(ctx.data.slot(*id), keys))),
        Expr::Stage => Some(View::Str(ctx.stage)),
        Expr::Entity => Some(View::Str(ctx.entity)),
        _ => None,
    }
}

fn eval<'a>(expr: &'a Expr, ctx: &'a Context<'_>, depth: usize) -> Outcome<Val<'a>> {
    if depth > MAX_TREE_DEPTH {
        return Err(Box::new(EvalError::TooDeep));
    }
    let depth = depth + 1;
    Ok(match expr {
        Expr::Const(value) => Val::Ref(value),
        Expr::Field { id, keys } => Val::Ref(descend(ctx.data.slot(*id), keys)),
        Expr::Undeclared { name, keys } => Val::Ref(descend(ctx.data.extra(name).unwrap_or(&NULL), keys)),
        Expr::Stage => Val::Str(ctx.stage),
        Expr::Entity => Val::Str(ctx.entity),
        Expr::ActorId => ctx.actor.map_or(Val::Ref(&NULL), |actor| Val::Str(&actor.id)),
        Expr::ActorRoles => match ctx.actor {
            Some(actor) => own(Value::List(actor.roles.iter().map(|r| Value::from(r.as_str())).collect())),
            None => Val::Ref(&NULL),
        },
        Expr::List(items) => {
            let items = items.iter().map(|item| eval(item, ctx, depth).map(Val::into_value));
            own(Value::List(items.collect::<Result<_, _>>()?))
        }
        Expr::Neg(operand) => match eval(operand, ctx, depth)?.view() {
            View::Null => Val::Ref(&NULL),
            View::Num(Value::Int(i)) => own(i.checked_neg().map_or(Value::Float(-(*i as f64)), Value::Int)),
            View::Num(Value::Float(f)) => own(Value::Float(-f)),
            other => {
                return Err(Box::new(EvalError::WrongOperand {
                    op: "-",
                    expected: "a number",
                    found: other.kind(),
                }));
            }
        },
        Expr::Arith { first, rest } => {
            let mut acc = eval(first, ctx, depth)?;
            for (op, operand) in rest {
                acc = arith(*op, acc.view(), eval(operand, ctx, depth)?.view())?;
            }
            acc
        }
        Expr::Call { func, args } => call(*func, args, ctx, depth)?,
        // Their operands' `NotBoolean` is already named after the operator.
        Expr::And(_) | Expr::Or(_) | Expr::Not(_) | Expr::Compare { .. } | Expr::In { .. } => {
            own(Value::Bool(truth(expr, ctx, depth - 1)?))
        }
    })
}

/// Follows object keys; anything missing or not an object yields `null`.
#[inline]
fn descend<'a>(value: &'a Value, keys: &[Box<str>]) -> &'a Value {
    if keys.is_empty() { value } else { descend_keys(value, keys) }
}

fn descend_keys<'a>(mut value: &'a Value, keys: &[Box<str>]) -> &'a Value {
    for key in keys {
        value = match value {
            Value::Object(map) => map.get(&**key).unwrap_or(&NULL),
            _ => return &NULL,
        };
    }
    value
}

#[inline]
fn equal(l: View<'_>, r: View<'_>) -> bool {
    match (l, r) {
        (View::Null, View::Null) => true,
        (View::Bool(a), View::Bool(b)) => a == b,
        (View::Num(a), View::Num(b)) => compare_numbers(a, b) == Some(Ordering::Equal),
        (View::Str(a), View::Str(b)) => a == b,
        (View::List(a), View::List(b)) => a == b,
        (View::Object(a), View::Object(b)) => a == b,
        _ => false,
    }
}

#[inline]
fn compare(op: CmpOp, mode: CmpMode, l: View<'_>, r: View<'_>) -> Result<bool, EvalError> {
    let ordering = match (mode, l, r) {
        (CmpMode::Chronological, View::Str(a), View::Str(b)) => {
            match (Temporal::parse(a), Temporal::parse(b)) {
                (Some(a), Some(b)) => Some(a.instant().cmp(&b.instant())),
                // Equality falls back to comparing the strings; ordering needs dates.
                _ if !op.is_ordering() => None,
                (None, _) => return Err(EvalError::InvalidDate { value: a.to_owned() }),
                (_, None) => return Err(EvalError::InvalidDate { value: b.to_owned() }),
            }
        }
        _ => None,
    };
    Ok(match op {
        CmpOp::Eq => ordering.map_or_else(|| equal(l, r), Ordering::is_eq),
        CmpOp::Ne => ordering.map_or_else(|| !equal(l, r), Ordering::is_ne),
        _ => {
            let ordering = match (ordering, l, r) {
                (Some(ordering), _, _) => ordering,
                (None, View::Null, _) | (None, _, View::Null) => return Ok(false),
                (None, View::Num(a), View::Num(b)) => compare_numbers(a, b).unwrap_or(Ordering::Equal),
                (None, View::Str(a), View::Str(b)) => a.cmp(b),
                (None, l, r) => {
                    return Err(EvalError::TypeMismatch { op: op.symbol(), left: l.kind(), right: r.kind() });
                }
            };
            match op {
                CmpOp::Lt => ordering.is_lt(),
                CmpOp::Le => ordering.is_le(),
                CmpOp::Gt => ordering.is_gt(),
                _ => ordering.is_ge(),
            }
        }
    })
}

fn membership(lhs: &Expr, rhs: &Expr, ctx: &Context<'_>, depth: usize) -> Outcome<bool> {
    let needle = eval(lhs, ctx, depth)?;
    // `x in actor.roles` without building a list.
    if let (Expr::ActorRoles, View::Str(name)) = (rhs, needle.view()) {
        return Ok(ctx.actor.is_some_and(|actor| actor.roles.iter().any(|r| r == name)));
    }
    Ok(contains(eval(rhs, ctx, depth)?.view(), needle.view(), "in")?)
}

/// `needle in haystack`: list membership or substring; `null` contains nothing.
fn contains(haystack: View<'_>, needle: View<'_>, op: &'static str) -> Result<bool, EvalError> {
    match (haystack, needle) {
        (View::Null, _) => Ok(false),
        (View::List(items), needle) => Ok(items.iter().any(|item| equal(view(item), needle))),
        (View::Str(s), View::Str(part)) => Ok(s.contains(part)),
        (View::Str(_), View::Null) => Ok(false),
        (View::Str(_), needle) => Err(EvalError::TypeMismatch { op, left: needle.kind(), right: "string" }),
        (other, needle) => Err(EvalError::TypeMismatch { op, left: needle.kind(), right: other.kind() }),
    }
}

/// A finite float, or `Overflow`.
fn finite(f: f64) -> Result<Val<'static>, EvalError> {
    if f.is_finite() { Ok(own(Value::Float(f))) } else { Err(EvalError::Overflow) }
}

fn arith<'a>(op: ArithOp, l: View<'_>, r: View<'_>) -> Result<Val<'a>, EvalError> {
    let (a, b) = match (l, r) {
        (View::Null, _) | (_, View::Null) => return Ok(Val::Ref(&NULL)),
        (View::Num(a), View::Num(b)) => (a, b),
        (View::Str(a), View::Str(b)) if op == ArithOp::Add => {
            let mut joined = String::with_capacity(a.len() + b.len());
            joined.push_str(a);
            joined.push_str(b);
            return Ok(own(Value::from(joined)));
        }
        (l, r) => return Err(EvalError::TypeMismatch { op: op.symbol(), left: l.kind(), right: r.kind() }),
    };
    if let (Value::Int(x), Value::Int(y)) = (a, b) {
        let (x, y) = (*x, *y);
        // Checked: on overflow the result falls back to a decimal.
        let exact = match op {
            ArithOp::Add => x.checked_add(y),
            ArithOp::Sub => x.checked_sub(y),
            ArithOp::Mul => x.checked_mul(y),
            ArithOp::Div if y == 0 => return Err(EvalError::DivisionByZero),
            ArithOp::Div => match x.checked_rem(y) {
                Some(0) => x.checked_div(y),
                // Not a whole quotient: exact division gives a decimal.
                Some(_) => return finite(x as f64 / y as f64),
                None => None,
            },
            ArithOp::Rem if y == 0 => return Err(EvalError::DivisionByZero),
            // Only `i64::MIN % -1` overflows, and its remainder is 0.
            ArithOp::Rem => Some(x.checked_rem(y).unwrap_or(0)),
        };
        if let Some(result) = exact {
            return Ok(own(Value::Int(result)));
        }
    }
    let (x, y) = (as_float(a), as_float(b));
    match op {
        ArithOp::Add => finite(x + y),
        ArithOp::Sub => finite(x - y),
        ArithOp::Mul => finite(x * y),
        ArithOp::Div | ArithOp::Rem if y == 0.0 => Err(EvalError::DivisionByZero),
        ArithOp::Div => finite(x / y),
        ArithOp::Rem => finite(x % y),
    }
}

fn as_float(value: &Value) -> f64 {
    match value {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => 0.0,
    }
}

fn call<'a>(func: Function, args: &'a [Expr], ctx: &'a Context<'_>, depth: usize) -> Outcome<Val<'a>> {
    let op = func.name();
    let arg = |i: usize| match args.get(i) {
        Some(arg) => eval(arg, ctx, depth),
        None => Ok(Val::Ref(&NULL)),
    };
    let wrong = |expected: &'static str, found: View<'_>| {
        Box::new(EvalError::WrongOperand { op, expected, found: found.kind() })
    };
    let first = arg(0)?;
    Ok(match func {
        Function::Len => match first.view() {
            View::Null => Val::Ref(&NULL),
            View::Str(s) => own(Value::Int(i64::try_from(s.chars().count()).unwrap_or(i64::MAX))),
            View::List(items) => own(Value::Int(i64::try_from(items.len()).unwrap_or(i64::MAX))),
            other => return Err(wrong("a string or a list", other)),
        },
        Function::Lower | Function::Upper => match first.view() {
            View::Null => Val::Ref(&NULL),
            View::Str(s) if func == Function::Lower => own(Value::from(s.to_lowercase())),
            View::Str(s) => own(Value::from(s.to_uppercase())),
            other => return Err(wrong("a string", other)),
        },
        Function::Contains => own(Value::Bool(contains(first.view(), arg(1)?.view(), op)?)),
        Function::StartsWith | Function::EndsWith => match (first.view(), arg(1)?.view()) {
            (View::Null, _) | (_, View::Null) => Val::Ref(&NULL),
            (View::Str(s), View::Str(p)) => {
                own(Value::Bool(if func == Function::StartsWith { s.starts_with(p) } else { s.ends_with(p) }))
            }
            (View::Str(_), other) | (other, _) => return Err(wrong("strings", other)),
        },
        Function::HasRole | Function::HasPermission => match first.view() {
            View::Null => own(Value::Bool(false)),
            View::Str(name) => {
                let granted = ctx.actor.is_some_and(|actor| {
                    let names = if func == Function::HasRole { &actor.roles } else { &actor.permissions };
                    names.iter().any(|n| n == name)
                });
                own(Value::Bool(granted))
            }
            other => return Err(wrong("a string", other)),
        },
        Function::Now => own(Value::from(ctx.now.to_rfc3339_opts(SecondsFormat::AutoSi, true))),
        Function::DaysSince | Function::HoursSince => match first.view() {
            View::Null => Val::Ref(&NULL),
            View::Str(text) => {
                let since =
                    Temporal::parse(text).ok_or_else(|| EvalError::InvalidDate { value: text.to_owned() })?;
                let elapsed = match (func, since) {
                    // Calendar days for a date: today minus that day.
                    (Function::DaysSince, Temporal::Date(date)) => {
                        ctx.now.date_naive().signed_duration_since(date).num_days()
                    }
                    (Function::DaysSince, since) => ctx.now.signed_duration_since(since.instant()).num_days(),
                    (_, since) => ctx.now.signed_duration_since(since.instant()).num_hours(),
                };
                own(Value::Int(elapsed))
            }
            other => return Err(wrong("a date or a date-time", other)),
        },
    })
}
