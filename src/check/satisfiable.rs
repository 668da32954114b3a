//! Cheap, sound satisfiability checks for conditions, used by the semantic rules (`AlwaysFalse`,
//! `AmbiguousTransitions`).
//!
//! A condition is put in disjunctive normal form (at most [`MAX_TERMS`] terms, else `Unknown`) over
//! atoms `path op literal`. Each term is decided per path from the atoms on it and the constraints of
//! `dataSchema` (type, `required`, `min`/`max`, `enum`). Answers follow the evaluator's semantics: a
//! missing field is `null`, ordering against `null` is false, `== null` can hold.
//!
//! Soundness: `No` only when no data can satisfy the condition; constraints that cannot be modelled
//! are dropped, which only enlarges the solution set. `Yes` only when every path involved has a
//! statically known type and the condition has no opaque part (function calls, arithmetic, paths
//! compared with paths), since those could fail at run time and a failure is not a hold.

use std::cmp::Ordering;

use chrono::{Datelike, NaiveDate};

use crate::ir::data::{DataSchema, FieldId, FieldType};
use crate::ir::expr::{CmpMode, CmpOp, Expr, MAX_TREE_DEPTH};
use crate::ir::value::{Temporal, Value, compare_numbers};

/// The most terms a normal form may have before the analysis gives up.
pub const MAX_TERMS: usize = 64;

/// A three-valued answer: `Yes` and `No` are certain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tri {
    /// Certainly.
    Yes,
    /// Certainly not.
    No,
    /// Could not decide.
    Unknown,
}

/// Whether some data allowed by `schema` makes the condition hold; `None` (no condition) always holds.
pub fn can_hold<'e>(condition: impl Into<Option<&'e Expr>>, schema: &DataSchema) -> Tri {
    analyse(&[condition.into()], schema)
}

/// Whether some data allowed by `schema` makes both conditions hold at once; `None` always holds.
pub fn can_both_hold<'e>(
    a: impl Into<Option<&'e Expr>>,
    b: impl Into<Option<&'e Expr>>,
    schema: &DataSchema,
) -> Tri {
    analyse(&[a.into(), b.into()], schema)
}

fn analyse(conditions: &[Option<&Expr>], schema: &DataSchema) -> Tri {
    let mut analysis = Analysis { schema, opaque: false };
    // `None` stands for "true" until the first condition: conjoining with it would copy every term.
    let mut dnf: Option<Dnf<'_>> = None;
    for condition in conditions.iter().flatten() {
        let terms = analysis.dnf(condition, false, 0).and_then(|terms| match &dnf {
            None => Some(terms),
            Some(dnf) => and(dnf, &terms),
        });
        let Some(terms) = terms else {
            return Tri::Unknown;
        };
        dnf = Some(terms);
    }
    let dnf = dnf.unwrap_or_else(|| vec![Term::default()]);
    let mut answer = Tri::No;
    for term in &dnf {
        match analysis.term(term) {
            Tri::Yes if !analysis.opaque => return Tri::Yes,
            Tri::No => {}
            _ => answer = Tri::Unknown,
        }
    }
    answer
}

/// What an atom constrains: a whole field or a built-in string, never a path into an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Subject<'e> {
    Field(FieldId),
    Undeclared(&'e str),
    Stage,
    Entity,
    ActorId,
}

/// What an atom requires of its subject's value.
#[derive(Clone, Copy, Debug)]
enum Test<'e> {
    /// Equal (structurally; chronologically for dates) to the literal, which may be `null`.
    Eq(&'e Value),
    /// Not equal.
    Ne(&'e Value),
    /// Ordered against a literal that is not `null`; `null` values fail.
    Order(CmpOp, &'e Value),
    /// Equal to one of these.
    In(&'e [Value]),
    /// Equal to none of these.
    NotIn(&'e [Value]),
    /// `true` (a bare path in a boolean position).
    Truthy,
    /// `false` or `null` (`NOT path`).
    Falsy,
}

#[derive(Clone, Copy, Debug)]
struct Atom<'e> {
    subject: Subject<'e>,
    test: Test<'e>,
}

/// A conjunction of atoms; `opaque` when it also has parts the analysis cannot see into.
#[derive(Clone, Debug, Default)]
struct Term<'e> {
    atoms: Vec<Atom<'e>>,
    opaque: bool,
}

/// A disjunction of terms: `[]` is false, `[Term::default()]` is true.
type Dnf<'e> = Vec<Term<'e>>;

fn and<'e>(a: &Dnf<'e>, b: &Dnf<'e>) -> Option<Dnf<'e>> {
    if a.len().saturating_mul(b.len()) > MAX_TERMS {
        return None;
    }
    let mut terms = Vec::with_capacity(a.len() * b.len());
    for x in a {
        for y in b {
            let mut atoms = x.atoms.clone();
            atoms.extend_from_slice(&y.atoms);
            terms.push(Term { atoms, opaque: x.opaque || y.opaque });
        }
    }
    Some(terms)
}

fn or<'e>(mut a: Dnf<'e>, b: Dnf<'e>) -> Option<Dnf<'e>> {
    a.extend(b);
    (a.len() <= MAX_TERMS).then_some(a)
}

fn atom<'e>(subject: Subject<'e>, test: Test<'e>) -> Dnf<'e> {
    vec![Term { atoms: vec![Atom { subject, test }], opaque: false }]
}

/// The negation of an ordering operator, for non-null operands.
const fn negate(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Ge,
        CmpOp::Le => CmpOp::Gt,
        CmpOp::Gt => CmpOp::Le,
        CmpOp::Ge => CmpOp::Lt,
        CmpOp::Eq => CmpOp::Ne,
        CmpOp::Ne => CmpOp::Eq,
    }
}

static NULL: Value = Value::Null;

struct Analysis<'s> {
    schema: &'s DataSchema,
    /// Some part could not be analysed: it might fail at run time, so no `Yes`.
    opaque: bool,
}

impl Analysis<'_> {
    fn opaque<'e>(&mut self) -> Option<Dnf<'e>> {
        self.opaque = true;
        Some(vec![Term { atoms: Vec::new(), opaque: true }])
    }

    fn subject<'e>(&self, expr: &'e Expr) -> Option<Subject<'e>> {
        match expr {
            Expr::Field { id, keys } if keys.is_empty() && id.index() < self.schema.len() => {
                Some(Subject::Field(*id))
            }
            Expr::Undeclared { name, keys } if keys.is_empty() => Some(Subject::Undeclared(name)),
            Expr::Stage => Some(Subject::Stage),
            Expr::Entity => Some(Subject::Entity),
            Expr::ActorId => Some(Subject::ActorId),
            _ => None,
        }
    }

    fn field_type(&self, subject: Subject<'_>) -> Option<&FieldType> {
        match subject {
            Subject::Field(id) => Some(&self.schema.field(id).ty),
            _ => None,
        }
    }

    /// The normal form of "`expr` holds" (or, when `negated`, "`NOT expr` holds").
    fn dnf<'e>(&mut self, expr: &'e Expr, negated: bool, depth: usize) -> Option<Dnf<'e>> {
        if depth > MAX_TREE_DEPTH {
            return None;
        }
        let depth = depth + 1;
        match expr {
            Expr::Const(Value::Bool(b)) if *b != negated => Some(vec![Term::default()]),
            // `null` is false, so `NOT null` holds; anything else fails at run time either way.
            Expr::Const(Value::Null) if negated => Some(vec![Term::default()]),
            Expr::Const(_) => Some(Vec::new()),
            Expr::Not(operand) => self.dnf(operand, !negated, depth),
            Expr::And(items) | Expr::Or(items) => {
                // De Morgan: under a negation AND becomes OR and the other way round.
                let conjunction = matches!(expr, Expr::And(_)) != negated;
                // The first operand's terms are the start: conjoining them with "true" or adding
                // them to "false" would only copy them.
                let mut result: Option<Dnf<'e>> = None;
                for item in items {
                    let terms = self.dnf(item, negated, depth)?;
                    result = Some(match result {
                        None => terms,
                        Some(result) if conjunction => and(&result, &terms)?,
                        Some(result) => or(result, terms)?,
                    });
                }
                Some(result.unwrap_or_else(|| if conjunction { vec![Term::default()] } else { Vec::new() }))
            }
            Expr::Compare { op, mode, lhs, rhs } => {
                let (subject, op, literal) = match (self.subject(lhs), self.subject(rhs), &**lhs, &**rhs) {
                    (Some(subject), _, _, Expr::Const(literal)) => (subject, *op, literal),
                    (_, Some(subject), Expr::Const(literal), _) => (subject, op.flipped(), literal),
                    _ => return self.opaque(),
                };
                // Dates order chronologically only in that mode; anything else on them is not modelled.
                let temporal =
                    matches!(self.field_type(subject), Some(FieldType::Date | FieldType::DateTime));
                if temporal != (*mode == CmpMode::Chronological) && !literal.is_null() {
                    return self.opaque();
                }
                let op = if negated { negate(op) } else { op };
                Some(match op {
                    CmpOp::Eq => atom(subject, Test::Eq(literal)),
                    CmpOp::Ne => atom(subject, Test::Ne(literal)),
                    // Ordering against null is false, so its negation always holds.
                    _ if literal.is_null() => {
                        if negated {
                            vec![Term::default()]
                        } else {
                            Vec::new()
                        }
                    }
                    // `NOT (x < 5)` holds when `x` is null or `x >= 5`.
                    _ if negated => {
                        or(atom(subject, Test::Eq(&NULL)), atom(subject, Test::Order(op, literal)))?
                    }
                    _ => atom(subject, Test::Order(op, literal)),
                })
            }
            Expr::In { negated: not_in, lhs, rhs } => match (self.subject(lhs), &**rhs) {
                (Some(subject), Expr::Const(Value::List(items))) if *not_in != negated => {
                    Some(atom(subject, Test::NotIn(items)))
                }
                (Some(subject), Expr::Const(Value::List(items))) => Some(atom(subject, Test::In(items))),
                _ => self.opaque(),
            },
            _ => match self.subject(expr) {
                Some(subject @ Subject::Undeclared(_)) => {
                    Some(atom(subject, if negated { Test::Falsy } else { Test::Truthy }))
                }
                Some(subject @ Subject::Field(_))
                    if self.field_type(subject) == Some(&FieldType::Boolean) =>
                {
                    Some(atom(subject, if negated { Test::Falsy } else { Test::Truthy }))
                }
                _ => self.opaque(),
            },
        }
    }

    fn term(&self, term: &Term<'_>) -> Tri {
        let mut answer = if term.opaque { Tri::Unknown } else { Tri::Yes };
        let mut done: Vec<Subject<'_>> = Vec::new();
        for first in &term.atoms {
            if done.contains(&first.subject) {
                continue;
            }
            done.push(first.subject);
            let tests = term.atoms.iter().filter(|a| a.subject == first.subject).map(|a| a.test);
            match self.domain(first.subject).solve(tests) {
                Tri::No => return Tri::No,
                Tri::Unknown => answer = Tri::Unknown,
                Tri::Yes => {}
            }
        }
        answer
    }

    fn domain(&self, subject: Subject<'_>) -> Domain {
        let field = match subject {
            Subject::Field(id) => self.schema.field(id),
            Subject::Undeclared(_) => return Domain::new(Kind::Any, true, false),
            // The stage and entity are fixed by where the condition runs, which is not known here.
            Subject::Stage | Subject::Entity => return Domain::new(Kind::String, false, false),
            Subject::ActorId => return Domain::new(Kind::String, true, true),
        };
        let kind = match field.ty {
            FieldType::Number => Kind::Number { integer: false },
            FieldType::Integer => Kind::Number { integer: true },
            FieldType::String => Kind::String,
            FieldType::Boolean => Kind::Bool,
            FieldType::Date => Kind::Date,
            FieldType::DateTime => Kind::DateTime,
            FieldType::Array(_) | FieldType::Object => Kind::Other,
        };
        // Trust `dataSchema`: instance data is validated against it.
        let mut domain = Domain::new(kind, !field.required, true);
        match kind {
            Kind::Number { .. } => {
                domain.lower = field.min.map(|min| (Value::Float(min), true));
                domain.upper = field.max.map(|max| (Value::Float(max), true));
            }
            Kind::String => {
                domain.lengths = (field.min, field.max);
                domain.exact &= field.pattern.is_none();
            }
            _ => domain.exact &= field.min.is_none() && field.max.is_none(),
        }
        if !field.allowed.is_empty() {
            let mut allowed = Vec::new();
            for value in &field.allowed {
                match domain.project(value) {
                    Projected::Value(value) => allowed.push(value),
                    Projected::Foreign => {}
                    Projected::Unmodelled => return Domain { exact: false, ..domain },
                }
            }
            domain.allowed = Some(allowed);
        }
        domain
    }
}

/// How a subject's values are modelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Number {
        integer: bool,
    },
    String,
    Bool,
    /// Days since the epoch.
    Date,
    /// Nanoseconds since the epoch.
    DateTime,
    /// Arrays and objects: only `null` tests are modelled.
    Other,
    /// Undeclared: any value.
    Any,
}

/// A literal in the subject's value space.
enum Projected {
    Value(Value),
    /// Of a kind the subject never holds: never equal, never ordered against.
    Foreign,
    /// Beyond the model (a date-time against a date field, …): the test is dropped.
    Unmodelled,
}

/// The possible values of one subject, narrowed by tests. Non-null values only, except `nullable`.
struct Domain {
    kind: Kind,
    nullable: bool,
    /// Whether a `Yes` can be trusted (no unmodelled constraint such as a `pattern`).
    exact: bool,
    /// A finite set of allowed non-null values (from `enum`, `==`, `in`), or any of the kind.
    allowed: Option<Vec<Value>>,
    excluded: Vec<Value>,
    lower: Option<(Value, bool)>,
    upper: Option<(Value, bool)>,
    /// String length bounds (`min`/`max` of a string field).
    lengths: (Option<f64>, Option<f64>),
    /// A test rules `null` out (an allowed set without it, `!= null`, an ordering).
    non_null: bool,
    /// A test no value passes (ordering across kinds).
    impossible: bool,
}

impl Domain {
    fn new(kind: Kind, nullable: bool, exact: bool) -> Self {
        let allowed = (kind == Kind::Bool).then(|| vec![Value::Bool(true), Value::Bool(false)]);
        Self {
            kind,
            nullable,
            exact: exact && kind != Kind::Any,
            allowed,
            excluded: Vec::new(),
            lower: None,
            upper: None,
            lengths: (None, None),
            non_null: false,
            impossible: false,
        }
    }

    fn project(&self, literal: &Value) -> Projected {
        let temporal = |text: &str| Temporal::parse(text);
        match (self.kind, literal) {
            (Kind::Any, value) => Projected::Value(value.clone()),
            (Kind::Other, _) => Projected::Unmodelled,
            (Kind::Number { .. }, Value::Int(_) | Value::Float(_)) => Projected::Value(literal.clone()),
            (Kind::String, Value::Str(_)) | (Kind::Bool, Value::Bool(_)) => Projected::Value(literal.clone()),
            (Kind::Date, Value::Str(text)) => match temporal(text) {
                Some(Temporal::Date(date)) => Projected::Value(Value::Int(days(date))),
                Some(Temporal::DateTime(_)) => Projected::Unmodelled,
                None => Projected::Foreign,
            },
            (Kind::DateTime, Value::Str(text)) => {
                match temporal(text).map(|t| t.instant().timestamp_nanos_opt()) {
                    Some(Some(nanos)) => Projected::Value(Value::Int(nanos)),
                    Some(None) => Projected::Unmodelled,
                    None => Projected::Foreign,
                }
            }
            _ => Projected::Foreign,
        }
    }

    /// Narrows the domain to the values allowed by `set` (which may hold `null`).
    fn restrict(&mut self, set: &[Value]) {
        let mut kept = Vec::new();
        let mut null = false;
        for value in set {
            if value.is_null() {
                null = true;
                continue;
            }
            match self.project(value) {
                Projected::Value(value) => kept.push(value),
                Projected::Foreign => {}
                // A set with an unmodelled member is dropped whole: a smaller set would be unsound.
                Projected::Unmodelled => {
                    self.exact = false;
                    return;
                }
            }
        }
        self.non_null |= !null;
        self.allowed = Some(match self.allowed.take() {
            Some(previous) => previous.into_iter().filter(|v| kept.contains(v)).collect(),
            None => kept,
        });
    }

    fn exclude(&mut self, set: &[Value]) {
        for value in set {
            if value.is_null() {
                self.non_null = true;
                continue;
            }
            match self.project(value) {
                Projected::Value(value) => self.excluded.push(value),
                Projected::Foreign => {}
                Projected::Unmodelled => self.exact = false,
            }
        }
    }

    fn order(&mut self, op: CmpOp, literal: &Value) {
        self.non_null = true;
        let bound = match self.project(literal) {
            Projected::Value(value @ (Value::Int(_) | Value::Float(_) | Value::Str(_))) => value,
            Projected::Unmodelled => {
                self.exact = false;
                return;
            }
            // Ordering across kinds fails at run time.
            _ => {
                self.impossible = true;
                return;
            }
        };
        let inclusive = matches!(op, CmpOp::Le | CmpOp::Ge);
        let tighter = |current: &Option<(Value, bool)>, lower: bool| match current {
            None => true,
            Some((value, was_inclusive)) => match order(&bound, value) {
                Some(Ordering::Greater) => lower,
                Some(Ordering::Less) => !lower,
                Some(Ordering::Equal) => *was_inclusive && !inclusive,
                None => false,
            },
        };
        if let Some((existing, _)) = self.lower.as_ref().or(self.upper.as_ref())
            && order(&bound, existing).is_none()
        {
            // A number and a string bound on one value: no value is both.
            self.impossible = true;
            return;
        }
        match op {
            CmpOp::Gt | CmpOp::Ge if tighter(&self.lower, true) => self.lower = Some((bound, inclusive)),
            CmpOp::Lt | CmpOp::Le if tighter(&self.upper, false) => self.upper = Some((bound, inclusive)),
            _ => {}
        }
    }

    fn solve<'e>(mut self, tests: impl Iterator<Item = Test<'e>>) -> Tri {
        for test in tests {
            match test {
                Test::Eq(value) => self.restrict(std::slice::from_ref(value)),
                Test::Ne(value) => self.exclude(std::slice::from_ref(value)),
                Test::Order(op, value) => self.order(op, value),
                Test::In(items) => self.restrict(items),
                Test::NotIn(items) => self.exclude(items),
                Test::Truthy => self.restrict(&[Value::Bool(true)]),
                Test::Falsy => self.restrict(&[Value::Bool(false), Value::Null]),
            }
        }
        match self.possible() {
            Tri::Yes if !self.exact => Tri::Unknown,
            other => other,
        }
    }

    fn possible(&self) -> Tri {
        if self.impossible {
            Tri::No
        } else if self.nullable && !self.non_null {
            Tri::Yes
        } else if let Some(allowed) = &self.allowed {
            Tri::from(allowed.iter().any(|v| self.admits(v)))
        } else {
            self.infinite()
        }
    }

    /// Whether a non-null candidate from a finite set satisfies everything.
    fn admits(&self, value: &Value) -> bool {
        let within = |bound: &Option<(Value, bool)>, lower: bool| match bound {
            None => true,
            Some((bound, inclusive)) => match order(value, bound) {
                Some(Ordering::Equal) => *inclusive,
                Some(Ordering::Greater) => lower,
                Some(Ordering::Less) => !lower,
                None => false,
            },
        };
        let kind_ok = match (self.kind, value) {
            (Kind::Number { .. }, Value::Int(_)) => true,
            (Kind::Number { integer }, Value::Float(f)) => !integer || f.fract() == 0.0,
            (Kind::String, Value::Str(s)) => {
                let length = s.chars().count() as f64;
                self.lengths.0.is_none_or(|min| length >= min)
                    && self.lengths.1.is_none_or(|max| length <= max)
            }
            (Kind::Date | Kind::DateTime, Value::Int(_)) | (Kind::Bool, Value::Bool(_)) | (Kind::Any, _) => {
                true
            }
            _ => false,
        };
        kind_ok && within(&self.lower, true) && within(&self.upper, false) && !self.excluded.contains(value)
    }

    /// Whether an unrestricted (infinite) kind has a non-null value within the bounds and exclusions.
    fn infinite(&self) -> Tri {
        let bounds_kind = self.lower.as_ref().or(self.upper.as_ref()).map(|(v, _)| v.kind());
        match (self.kind, bounds_kind) {
            (Kind::Number { integer: false }, _) | (Kind::Any, Some("number")) => self.dense(),
            (Kind::Number { integer: true } | Kind::Date | Kind::DateTime, _) => self.integers(),
            (Kind::String, Some(_)) | (Kind::Any, Some(_)) => self.strings_between(),
            (Kind::String, None) => {
                let (min, max) = self.lengths;
                match max {
                    Some(max) if max < min.unwrap_or(0.0) || max < 0.0 => Tri::No,
                    // Only the empty string.
                    Some(max) if max < 1.0 => {
                        Tri::from(!self.excluded.iter().any(|v| v.as_str() == Some("")))
                    }
                    _ => Tri::Yes,
                }
            }
            (Kind::Other, _) => {
                let (min, max) = (self.lengths.0.unwrap_or(0.0), self.lengths.1.unwrap_or(f64::INFINITY));
                Tri::from(min <= max)
            }
            (Kind::Any, None) | (Kind::Bool, _) => Tri::Yes,
        }
    }

    fn dense(&self) -> Tri {
        match (&self.lower, &self.upper) {
            (Some((lo, lo_in)), Some((hi, hi_in))) => match order(lo, hi) {
                Some(Ordering::Less) => Tri::Yes,
                Some(Ordering::Equal) if *lo_in && *hi_in => Tri::from(self.admits(lo)),
                _ => Tri::No,
            },
            _ => Tri::Yes,
        }
    }

    fn integers(&self) -> Tri {
        // Exact arithmetic: date-times are nanoseconds, beyond what `f64` holds exactly.
        let whole = |bound: &(Value, bool), lower: bool| -> Option<i128> {
            let (value, inclusive) = bound;
            let step = if *inclusive { 0 } else { 1 };
            match value {
                Value::Int(i) => Some(if lower { i128::from(*i) + step } else { i128::from(*i) - step }),
                // `as` saturates a float beyond i128 (1e308) at its ends; the step must saturate too.
                Value::Float(f) if f.is_finite() => Some(match (lower, *inclusive) {
                    (true, true) => f.ceil() as i128,
                    (true, false) => (f.floor() as i128).saturating_add(1),
                    (false, true) => f.floor() as i128,
                    (false, false) => (f.ceil() as i128).saturating_sub(1),
                }),
                _ => None,
            }
        };
        let first = self.lower.as_ref().map(|b| whole(b, true));
        let last = self.upper.as_ref().map(|b| whole(b, false));
        let (first, last) = match (first, last) {
            (Some(None), _) | (_, Some(None)) => return Tri::Unknown,
            (Some(Some(first)), Some(Some(last))) => (first, last),
            // Unbounded on one side: infinitely many integers, finitely many exclusions.
            _ => return Tri::Yes,
        };
        if first > last {
            return Tri::No;
        }
        if last.saturating_sub(first) >= self.excluded.len() as i128 {
            return Tri::Yes;
        }
        // Few enough to try each: no more than there are exclusions.
        let admitted = (first..=last).any(|c| i64::try_from(c).is_ok_and(|c| self.admits(&Value::Int(c))));
        Tri::from(admitted)
    }

    fn strings_between(&self) -> Tri {
        match (&self.lower, &self.upper) {
            (Some((lo, lo_in)), Some((hi, hi_in))) => match order(lo, hi) {
                Some(Ordering::Greater) | None => Tri::No,
                Some(Ordering::Equal) if !(*lo_in && *hi_in) => Tri::No,
                Some(Ordering::Equal) => Tri::from(self.admits(lo)),
                // Strings are not dense (nothing lies between "a" and "a\0"): give up.
                Some(Ordering::Less) => Tri::Unknown,
            },
            // Below some string there may be only the empty string; above any there are infinitely many.
            (Some(_), None) => Tri::from(self.lengths == (None, None)).or_unknown(),
            _ => Tri::Unknown,
        }
    }
}

impl From<bool> for Tri {
    fn from(b: bool) -> Self {
        if b { Tri::Yes } else { Tri::No }
    }
}

impl Tri {
    /// `No` becomes `Unknown`: for answers where only `Yes` is certain.
    fn or_unknown(self) -> Tri {
        if self == Tri::No { Tri::Unknown } else { self }
    }
}

/// Orders two values of one kind (numbers, strings, projected instants); `None` across kinds.
fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        _ => compare_numbers(a, b),
    }
}

fn days(date: NaiveDate) -> i64 {
    i64::from(Datelike::num_days_from_ce(&date))
}
