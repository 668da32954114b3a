//! Properties of the expression pipeline on generated input: nothing panics or overflows (arbitrary
//! text, token soup, grammar-shaped expressions, arbitrary data), and a `No` from the
//! satisfiability check is never contradicted by data that `dataSchema` allows.

use chrono::{DateTime, Utc};
use nexus_crm::check::expr::{ExprEnv, compile, compile_condition};
use nexus_crm::check::satisfiable::{Tri, can_both_hold, can_hold};
use nexus_crm::engine::eval::{Actor, Context, Record, evaluate, evaluate_condition};
use nexus_crm::ir::data::{DataSchema, Field, FieldType};
use nexus_crm::ir::value::Value;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::json;

fn schema() -> DataSchema {
    DataSchema::new(vec![
        Field { min: Some(-50.0), max: Some(50.0), ..Field::new("amount", FieldType::Number) },
        Field { required: true, min: Some(0.0), ..Field::new("count", FieldType::Integer) },
        Field::new("name", FieldType::String),
        Field {
            allowed: vec![Value::from("web"), Value::from("email")],
            ..Field::new("source", FieldType::String)
        },
        Field::new("vip", FieldType::Boolean),
        Field::new("close", FieldType::Date),
        Field::new("due", FieldType::DateTime),
        Field::new("tags", FieldType::Array(Some(Box::new(FieldType::String)))),
        Field::new("address", FieldType::Object),
    ])
}

const STAGES: [&str; 2] = ["new", "won"];

/// Compiles `source`; when it compiles, evaluates it every way and runs the satisfiability check.
fn exercise(source: &str, data: &serde_json::Value) {
    let schema = schema();
    let stages: Vec<String> = STAGES.iter().map(|s| s.to_string()).collect();
    let compiled = compile(source, &ExprEnv { schema: &schema, stages: &stages });
    let Some(expr) = compiled.expr else { return };
    let record = Record::from_json(&schema, data);
    let actor = Actor { id: "u1".into(), roles: vec!["sales".into()], permissions: vec![] };
    let now = DateTime::<Utc>::default();
    let ctx = Context { data: &record, stage: "new", entity: "lead", actor: Some(&actor), now };
    let _ = evaluate(&expr, &ctx);
    let _ = evaluate_condition(&expr, &ctx);
    let _ = can_hold(&expr, &schema);
    let _ = can_both_hold(&expr, &expr, &schema);
}

const PATHS: &[&str] = &[
    "data.amount",
    "data.count",
    "data.name",
    "data.source",
    "data.vip",
    "data.close",
    "data.due",
    "data.tags",
    "data.address",
    "data.address.city",
    "data.u",
    "data.u.v",
    "stage",
    "entity",
    "actor.id",
    "actor.roles",
];
const LITERALS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2.5",
    "1e3",
    "1e308",
    "9223372036854775807",
    "'web'",
    "\"x\"",
    "''",
    "'2026-01-01'",
    "'2026-01-01T10:00:00Z'",
    "'\\n'",
    "true",
    "false",
    "null",
];
const FUNCTIONS: &[&str] = &[
    "len",
    "lower",
    "upper",
    "contains",
    "starts_with",
    "ends_with",
    "has_role",
    "has_permission",
    "now",
    "days_since",
    "hours_since",
    "nope",
];
const PUNCTUATION: &[&str] = &[
    "(", ")", "[", "]", ",", "AND", "and", "&&", "OR", "or", "||", "NOT", "not", "!", "==", "!=", "<", "<=",
    ">", ">=", "in", "not in", "+", "-", "*", "/", "%", "=", "'", "\"", "\\", ".", "é",
];

fn token_soup() -> impl Strategy<Value = String> {
    let tokens = [PATHS, LITERALS, FUNCTIONS, PUNCTUATION].concat();
    (prop::collection::vec(select(tokens), 0..40), any::<bool>())
        .prop_map(|(tokens, spaced)| tokens.join(if spaced { " " } else { "" }))
}

/// Expressions shaped by the grammar, so that many get through the parser and the type checker.
fn expression() -> impl Strategy<Value = String> {
    let leaf = select([PATHS, LITERALS].concat()).prop_map(str::to_owned);
    leaf.prop_recursive(5, 64, 3, |inner| {
        let infix =
            select(&["AND", "OR", "==", "!=", "<", ">=", "in", "not in", "+", "-", "*", "/", "%"][..]);
        prop_oneof![
            (inner.clone(), infix, inner.clone()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            (select(&["NOT ", "!", "-"][..]), inner.clone()).prop_map(|(op, e)| format!("{op}{e}")),
            inner.clone().prop_map(|e| format!("({e})")),
            prop::collection::vec(inner.clone(), 0..3).prop_map(|items| format!("[{}]", items.join(", "))),
            (select(FUNCTIONS), prop::collection::vec(inner, 0..3))
                .prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
        ]
    })
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(json!(null)),
        any::<bool>().prop_map(|b| json!(b)),
        any::<i64>().prop_map(|i| json!(i)),
        (-1e6..1e6f64).prop_map(|f| json!(f)),
        select(&["", "web", "x", "2026-01-01", "2026-01-01T10:00:00+02:00", "soon", "é"][..])
            .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(serde_json::Value::from),
            prop::collection::btree_map(select(&["city", "v", "x"][..]), inner, 0..3).prop_map(object),
        ]
    })
}

fn object(map: std::collections::BTreeMap<&str, serde_json::Value>) -> serde_json::Value {
    serde_json::Value::Object(map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// Any data at all, of any shape, for any key (declared or not).
fn any_data() -> impl Strategy<Value = serde_json::Value> {
    let keys =
        select(&["amount", "count", "name", "source", "vip", "close", "due", "tags", "address", "u"][..]);
    prop::collection::btree_map(keys, json_value(), 0..8).prop_map(object)
}

/// Data that `dataSchema` allows: right types, within bounds and enums, `count` present.
fn valid_data() -> impl Strategy<Value = serde_json::Value> {
    let maybe = |value: BoxedStrategy<serde_json::Value>| prop::option::of(value);
    (
        maybe(
            prop_oneof![(-50i64..=50).prop_map(|i| json!(i)), (-50.0..=50.0f64).prop_map(|f| json!(f))]
                .boxed(),
        ),
        (0i64..6).prop_map(|i| json!(i)),
        maybe(select(&["", "a", "b", "web"][..]).prop_map(|s| json!(s)).boxed()),
        maybe(select(&["web", "email"][..]).prop_map(|s| json!(s)).boxed()),
        maybe(any::<bool>().prop_map(|b| json!(b)).boxed()),
        maybe(select(&["2026-01-01", "2026-01-02", "2026-06-01"][..]).prop_map(|s| json!(s)).boxed()),
        maybe(
            select(&["2026-01-01T00:00:00Z", "2026-01-01T01:00:00+01:00", "2026-01-01T00:00:01Z"][..])
                .prop_map(|s| json!(s))
                .boxed(),
        ),
        maybe(json_value().boxed()),
    )
        .prop_map(|(amount, count, name, source, vip, close, due, u)| {
            let mut data = serde_json::Map::new();
            data.insert("count".into(), count);
            for (key, value) in [
                ("amount", amount),
                ("name", name),
                ("source", source),
                ("vip", vip),
                ("close", close),
                ("due", due),
                ("u", u),
            ] {
                if let Some(value) = value {
                    data.insert(key.into(), value);
                }
            }
            serde_json::Value::Object(data)
        })
}

/// Conditions made of the atoms the satisfiability check understands, and a few it does not.
fn condition() -> impl Strategy<Value = String> {
    let number = || select(&["-50", "-1", "0", "0.5", "1", "2", "3", "50", "51", "null"][..]);
    let op = || select(&["==", "!=", "<", "<=", ">", ">="][..]);
    let atom = prop_oneof![
        (select(&["data.amount", "data.count"][..]), op(), number())
            .prop_map(|(f, op, n)| format!("{f} {op} {n}")),
        (number(), op()).prop_map(|(n, op)| format!("{n} {op} data.amount")),
        (
            select(&["data.name", "data.source", "data.u"][..]),
            select(&["==", "!=", "<", ">="][..]),
            select(&["'a'", "'b'", "'web'", "'email'", "''", "null"][..])
        )
            .prop_map(|(f, op, s)| format!("{f} {op} {s}")),
        (
            select(&["data.source", "data.amount", "data.u"][..]),
            select(&["in", "not in"][..]),
            select(&["['web']", "['web', 'email', null]", "[1, 2.0, 'a']", "[]"][..])
        )
            .prop_map(|(f, op, l)| format!("{f} {op} {l}")),
        (
            select(&["data.close", "data.due"][..]),
            op(),
            select(
                &["'2026-01-01'", "'2026-01-02'", "'2026-01-01T00:00:00Z'", "'2026-01-01T00:00:01+00:00'"][..]
            )
        )
            .prop_map(|(f, op, d)| format!("{f} {op} {d}")),
        select(
            &["data.vip", "NOT data.vip", "data.vip == false", "true", "false", "data.u", "data.u > 2"][..]
        )
        .prop_map(str::to_owned),
        select(&["len(data.name) > 0", "data.amount + 1 > 2", "data.amount > data.count"][..])
            .prop_map(str::to_owned),
    ];
    atom.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            (inner.clone(), select(&["AND", "OR"][..]), inner.clone())
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            inner.prop_map(|e| format!("NOT ({e})")),
        ]
    })
}

fn holds(expr: &nexus_crm::ir::expr::Expr, record: &Record) -> bool {
    let ctx =
        Context { data: record, stage: "new", entity: "lead", actor: None, now: DateTime::<Utc>::default() };
    evaluate_condition(expr, &ctx) == Ok(true)
}

/// Found by `grammar_shaped_expressions_never_panic`: an exclusive bound of 1e308 on an integer
/// field overflowed the satisfiability check's integer arithmetic.
#[test]
fn a_float_bound_beyond_every_integer_does_not_overflow() {
    for source in ["NOT 1e308 >= (data.count)", "data.count > 1e308", "data.count < -1e308"] {
        exercise(source, &serde_json::json!({}));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(source in any::<String>(), data in any_data()) {
        exercise(&source, &data);
    }

    #[test]
    fn token_soup_never_panics(source in token_soup(), data in any_data()) {
        exercise(&source, &data);
    }

    #[test]
    fn grammar_shaped_expressions_never_panic(source in expression(), data in any_data()) {
        exercise(&source, &data);
    }

    #[test]
    fn no_is_never_contradicted(a in condition(), b in condition(), data in valid_data()) {
        let schema = schema();
        let env = ExprEnv { schema: &schema, stages: &[] };
        let (Some(a), Some(b)) = (compile_condition(&a, &env).expr, compile_condition(&b, &env).expr) else {
            return Ok(());
        };
        let record = Record::from_json(&schema, &data);
        let (holds_a, holds_b) = (holds(&a, &record), holds(&b, &record));
        if holds_a {
            prop_assert_ne!(can_hold(&a, &schema), Tri::No, "holds on {}", data);
        }
        if holds_a && holds_b {
            prop_assert_ne!(can_both_hold(&a, &b, &schema), Tri::No, "both hold on {}", data);
        }
    }
}
