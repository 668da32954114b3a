//! Compiled condition expressions: a typed tree that evaluates without re-parsing or name look-ups.
//!
//! Built by [`crate::check::expr::compile`] from the syntax tree, run by [`crate::engine::eval`], and
//! inspected by [`crate::check::satisfiable`]. Declared data fields are [`FieldId`] slots, functions
//! are [`Function`]s, literals are pre-built [`Value`]s. Operator chains are flat (`And`, `Or`,
//! `Arith`), so a tree is never deeper than [`MAX_TREE_DEPTH`] when it comes from source text.

use std::fmt;

use crate::ir::data::{FieldId, FieldType};
use crate::ir::value::Value;

/// The longest expression accepted, in characters.
pub const MAX_LENGTH: usize = 4096;

/// The deepest nesting accepted: brackets, calls, and prefix `NOT`/`!`/`-` operators each add a level.
pub const MAX_NESTING: usize = 64;

/// The deepest compiled tree: within one nesting level at most an `Or`, an `And`, a comparison and
/// two arithmetic chains sit between counted levels. The evaluator refuses deeper hand-built trees.
pub const MAX_TREE_DEPTH: usize = 6 * (MAX_NESTING + 1);

/// A compiled expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A literal, or a list of literals built once: `42`, `'web'`, `null`, `['a', 'b']`.
    Const(Value),
    /// `data.<field>` for a field declared in `dataSchema`, then `.<key>…` into objects.
    Field {
        /// The field's slot.
        id: FieldId,
        /// Keys looked up after the field (`data.address.city` → `["city"]`), usually empty.
        keys: Box<[Box<str>]>,
    },
    /// `data.<name>` for a field `dataSchema` does not declare: looked up by name at run time.
    Undeclared {
        /// The field name.
        name: Box<str>,
        /// Keys looked up after the field.
        keys: Box<[Box<str>]>,
    },
    /// `stage`: the current stage name.
    Stage,
    /// `entity`: the entity type name.
    Entity,
    /// `actor.id`: the acting user's id, `null` without an actor.
    ActorId,
    /// `actor.roles`: the acting user's roles, `null` without an actor.
    ActorRoles,
    /// A list literal with computed elements: `[data.a, 1]`.
    List(Box<[Expr]>),
    /// `NOT a`, `not a`, `!a`.
    Not(Box<Expr>),
    /// Unary `-a` (on a literal number it is folded into the literal).
    Neg(Box<Expr>),
    /// `a AND b AND …`, evaluated left to right until one is not true.
    And(Box<[Expr]>),
    /// `a OR b OR …`, evaluated left to right until one is true.
    Or(Box<[Expr]>),
    /// `a == b`, `a != b`, `a < b`, `a <= b`, `a > b`, `a >= b`.
    Compare {
        /// The operator.
        op: CmpOp,
        /// How operands are ordered, fixed at compile time from their static types.
        mode: CmpMode,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
    /// `a in b` (membership in a list, substring of a string), or `a not in b` when `negated`.
    In {
        /// Whether it is `not in`.
        negated: bool,
        /// The element or substring.
        lhs: Box<Expr>,
        /// The list or string.
        rhs: Box<Expr>,
    },
    /// `a + b - c …` or `a * b / c …`: a left-associative chain of one precedence level.
    Arith {
        /// The first operand.
        first: Box<Expr>,
        /// Each further operator and operand, in order.
        rest: Box<[(ArithOp, Expr)]>,
    },
    /// `f(a, b)` with the arity already checked.
    Call {
        /// The function.
        func: Function,
        /// Its arguments.
        args: Box<[Expr]>,
    },
}

impl Expr {
    /// Whether its value can change with time alone (`now()`, `days_since`, `hours_since`).
    pub fn reads_clock(&self) -> bool {
        match self {
            Expr::Call { func: Function::Now | Function::DaysSince | Function::HoursSince, .. } => true,
            Expr::Call { args: items, .. } | Expr::List(items) | Expr::And(items) | Expr::Or(items) => {
                items.iter().any(Expr::reads_clock)
            }
            Expr::Not(e) | Expr::Neg(e) => e.reads_clock(),
            Expr::Compare { lhs, rhs, .. } | Expr::In { lhs, rhs, .. } => {
                lhs.reads_clock() || rhs.reads_clock()
            }
            Expr::Arith { first, rest } => first.reads_clock() || rest.iter().any(|(_, e)| e.reads_clock()),
            Expr::Const(_)
            | Expr::Field { .. }
            | Expr::Undeclared { .. }
            | Expr::Stage
            | Expr::Entity
            | Expr::ActorId
            | Expr::ActorRoles => false,
        }
    }
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
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
}

impl CmpOp {
    /// The operator as written.
    pub const fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// The operator with its operands swapped: `a < b` is `b > a`.
    pub const fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            op => op,
        }
    }

    /// Whether this is `<`, `<=`, `>` or `>=` (false for `null` operands, an error across kinds).
    pub const fn is_ordering(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// How a comparison orders its operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpMode {
    /// By the run-time kinds: numbers numerically, strings by code point.
    Natural,
    /// Both sides are dates or date-times (from `dataSchema`): strings compared as instants.
    Chronological,
}

/// An arithmetic operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArithOp {
    /// `+`: numbers, or two strings joined.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`: exact division (`5 / 2` is 2.5).
    Div,
    /// `%`: remainder, with the sign of the dividend.
    Rem,
}

impl ArithOp {
    /// The operator as written.
    pub const fn symbol(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
            ArithOp::Rem => "%",
        }
    }
}

macro_rules! functions {
    ($($variant:ident = $name:literal, $arity:literal, $doc:literal;)*) => {
        /// A built-in function: the language has a fixed set.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Function {
            $(#[doc = $doc] $variant,)*
        }

        impl Function {
            /// Every function.
            pub const ALL: &'static [Function] = &[$(Function::$variant,)*];

            /// The name as written in expressions.
            pub const fn name(self) -> &'static str {
                match self { $(Function::$variant => $name,)* }
            }

            /// How many arguments it takes.
            pub const fn arity(self) -> usize {
                match self { $(Function::$variant => $arity,)* }
            }
        }
    };
}

functions! {
    Len = "len", 1, "`len(x)`: characters of a string, elements of a list.";
    Lower = "lower", 1, "`lower(s)`: the string in lower case.";
    Upper = "upper", 1, "`upper(s)`: the string in upper case.";
    Contains = "contains", 2, "`contains(s_or_list, x)`: `x in s_or_list`.";
    StartsWith = "starts_with", 2, "`starts_with(s, p)`: whether `s` begins with `p`.";
    EndsWith = "ends_with", 2, "`ends_with(s, p)`: whether `s` ends with `p`.";
    HasRole = "has_role", 1, "`has_role(name)`: whether the actor has the role.";
    HasPermission = "has_permission", 1, "`has_permission(name)`: whether the actor has the permission.";
    Now = "now", 0, "`now()`: the evaluation time, an RFC 3339 date-time in UTC.";
    DaysSince = "days_since", 1, "`days_since(date)`: whole days from the date (or date-time) to now.";
    HoursSince = "hours_since", 1, "`hours_since(datetime)`: whole hours from the date-time (or date's midnight) to now.";
}

impl Function {
    /// The function called `name`.
    pub fn from_name(name: &str) -> Option<Function> {
        Function::ALL.iter().copied().find(|f| f.name() == name)
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The static type of an expression, known at compile time. Every type also admits `null`
/// (a missing field), so `Null` is the type of the `null` literal only.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    /// Known only at run time: an undeclared field, an `object` field's member.
    Unknown,
    /// The `null` literal.
    Null,
    /// A boolean.
    Bool,
    /// An integer or a decimal.
    Number,
    /// A string.
    String,
    /// An ISO-8601 date string (`dataSchema` type `date`).
    Date,
    /// An ISO-8601 date-time string (`dataSchema` type `datetime`, `now()`).
    DateTime,
    /// A list of elements of a type.
    List(Box<Type>),
    /// An object.
    Object,
}

impl Type {
    /// The type of a declared field.
    pub fn of_field(ty: &FieldType) -> Type {
        match ty {
            FieldType::String => Type::String,
            FieldType::Number | FieldType::Integer => Type::Number,
            FieldType::Boolean => Type::Bool,
            FieldType::Date => Type::Date,
            FieldType::DateTime => Type::DateTime,
            FieldType::Array(items) => {
                Type::List(Box::new(items.as_deref().map_or(Type::Unknown, Type::of_field)))
            }
            FieldType::Object => Type::Object,
        }
    }

    /// The type of a value.
    pub fn of_value(value: &Value) -> Type {
        match value {
            Value::Null => Type::Null,
            Value::Bool(_) => Type::Bool,
            Value::Int(_) | Value::Float(_) => Type::Number,
            Value::Str(_) => Type::String,
            Value::List(items) => Type::List(Box::new(Type::join(items.iter().map(Type::of_value)))),
            Value::Object(_) => Type::Object,
        }
    }

    /// The common type of list elements: their type if they all agree (ignoring `null`), else `Unknown`.
    pub fn join(types: impl IntoIterator<Item = Type>) -> Type {
        let mut joined: Option<Type> = None;
        for ty in types {
            joined = match (joined, ty) {
                (None | Some(Type::Null), ty) => Some(ty),
                (Some(known), Type::Null) => Some(known),
                (Some(known), ty) if known == ty => Some(known),
                _ => return Type::Unknown,
            };
        }
        joined.unwrap_or(Type::Unknown)
    }

    /// The name used in diagnostics.
    pub const fn name(&self) -> &'static str {
        match self {
            Type::Unknown => "unknown",
            Type::Null => "null",
            Type::Bool => "boolean",
            Type::Number => "number",
            Type::String => "string",
            Type::Date => "date",
            Type::DateTime => "datetime",
            Type::List(_) => "list",
            Type::Object => "object",
        }
    }

    /// Whether it is a date or a date-time.
    pub const fn is_temporal(&self) -> bool {
        matches!(self, Type::Date | Type::DateTime)
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
