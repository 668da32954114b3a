//! The expression contract (`expressions.md`), end to end: source → `check::expr::compile` →
//! `engine::eval`, and the satisfiability checks. Every case goes through the helpers and macros below.

use chrono::{DateTime, Utc};
use nexus_crm::check::expr::{Compiled, ExprEnv, compile, compile_condition};
use nexus_crm::check::satisfiable::{Tri, can_both_hold, can_hold};
use nexus_crm::diagnostic::{Code, Diagnostic, Severity};
use nexus_crm::engine::data::value_from_json;
use nexus_crm::engine::eval::{Actor, Context, EvalError, Record, evaluate, evaluate_condition};
use nexus_crm::ir::data::{DataSchema, Field, FieldType};
use nexus_crm::ir::expr::{Expr, MAX_TREE_DEPTH};
use nexus_crm::ir::value::Value;
use serde_json::json;

fn schema() -> DataSchema {
    DataSchema::new(vec![
        Field { min: Some(0.0), max: Some(100.0), ..Field::new("lead_score", FieldType::Number) },
        Field {
            allowed: vec![Value::from("web"), Value::from("email"), Value::from("referral")],
            ..Field::new("lead_source", FieldType::String)
        },
        Field::new("name", FieldType::String),
        Field::new("amount", FieldType::Number),
        Field { required: true, ..Field::new("count", FieldType::Integer) },
        Field::new("vip", FieldType::Boolean),
        Field::new("close_date", FieldType::Date),
        Field::new("due_at", FieldType::DateTime),
        Field::new("tags", FieldType::Array(Some(Box::new(FieldType::String)))),
        Field::new("address", FieldType::Object),
    ])
}

const STAGES: [&str; 3] = ["new", "qualified", "won"];

fn compiled(source: &str) -> Compiled {
    let stages: Vec<String> = STAGES.iter().map(|s| s.to_string()).collect();
    compile(source, &ExprEnv { schema: &schema(), stages: &stages })
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z").map(|t| t.to_utc()).unwrap_or_default()
}

/// Compiles without errors (warnings allowed) and evaluates against `data` in stage `qualified`
/// of entity `lead`, as actor `u1` (roles `sales`, `emea`; permission `deal.approve`).
fn run(source: &str, data: serde_json::Value) -> Result<Value, EvalError> {
    let compiled = compiled(source);
    let errors: Vec<&Diagnostic> = compiled.diagnostics.iter().filter(|d| d.is_error()).collect();
    let Some(expr) = compiled.expr else { panic!("`{source}` did not compile: {errors:#?}") };
    let record = Record::from_json(&schema(), &data);
    let actor = Actor {
        id: "u1".into(),
        roles: vec!["sales".into(), "emea".into()],
        permissions: vec!["deal.approve".into()],
    };
    let ctx = Context { data: &record, stage: "qualified", entity: "lead", actor: Some(&actor), now: now() };
    evaluate(&expr, &ctx)
}

/// `yields!(source, expected)` or `yields!(source, data, expected)`: evaluates to the JSON value
/// (numbers compare numerically, so `2` and `2.0` are the same).
macro_rules! yields {
    ($source:expr, $expected:tt) => {
        yields!($source, {}, $expected)
    };
    ($source:expr, $data:tt, $expected:tt) => {
        match run($source, json!($data)) {
            Ok(value) => assert_eq!(value, value_from_json(&json!($expected)), "`{}` = {:?}", $source, value),
            Err(error) => panic!("`{}` failed: {error}", $source),
        }
    };
}

/// `fails!(source, data, pattern)`: compiles, then evaluation fails with a matching error.
macro_rules! fails {
    ($source:expr, $data:tt, $pattern:pat) => {
        match run($source, json!($data)) {
            Err(error) => assert!(matches!(error, $pattern), "`{}` failed with {error:?}", $source),
            Ok(value) => panic!("`{}` evaluated to {value:?}", $source),
        }
    };
}

/// Does not compile, with an error of `code`; returns that diagnostic.
#[track_caller]
fn rejects(source: impl AsRef<str>, code: Code) -> Diagnostic {
    let source = source.as_ref();
    let compiled = compiled(source);
    assert!(compiled.expr.is_none(), "`{source}` compiled");
    let found = compiled.diagnostics.iter().find(|d| d.code == code && d.is_error()).cloned();
    found.unwrap_or_else(|| panic!("`{source}`: no {code} in {:#?}", compiled.diagnostics))
}

/// Compiles, with a warning of `code`; returns that diagnostic.
#[track_caller]
fn warns(source: &str, code: Code) -> Diagnostic {
    let compiled = compiled(source);
    assert!(compiled.expr.is_some(), "`{source}` did not compile: {:#?}", compiled.diagnostics);
    let found =
        compiled.diagnostics.iter().find(|d| d.code == code && d.severity == Severity::Warning).cloned();
    found.unwrap_or_else(|| panic!("`{source}`: no {code} in {:#?}", compiled.diagnostics))
}

// ----- literals -----

#[test]
fn literals() {
    yields!("42", 42);
    yields!("-3.5", (-3.5));
    yields!("1e3", 1000);
    yields!("2.5E-1", 0.25);
    yields!("'single'", "single");
    yields!("\"double\"", "double");
    yields!("true", true);
    yields!("false", false);
    yields!("null", null);
    yields!("[1, 'a', null, [true]]", [1, "a", null, [true]]);
    yields!("[]", []);
}

#[test]
fn string_escapes_in_both_quote_kinds() {
    yields!(r#"'it\'s'"#, "it's");
    yields!(r#""say \"hi\"""#, "say \"hi\"");
    yields!(r#"'a\\b'"#, "a\\b");
    yields!(r#"'a\nb\tc'"#, "a\nb\tc");
    yields!(r#""'" + '"'"#, "'\"");
    let diagnostic = rejects(r"'\q'", Code::ExprSyntax);
    assert_eq!(diagnostic.message, r"unknown escape `\q`");
}

// ----- precedence, one level at a time -----

#[test]
fn or_is_lowest_then_and() {
    yields!("true OR false AND false", true);
    yields!("(true OR false) AND false", false);
    yields!("false AND true OR true", true);
}

#[test]
fn not_binds_looser_than_comparisons() {
    yields!("NOT 1 == 2", true);
    yields!("NOT 1 == 1 OR true", true);
    yields!("NOT true AND false", false);
    yields!("! false AND true", true);
}

#[test]
fn comparisons_bind_looser_than_arithmetic() {
    yields!("1 + 2 == 3", true);
    yields!("2 * 3 > 5", true);
    yields!("1 + 1 in [2]", true);
}

#[test]
fn multiplication_binds_tighter_than_addition() {
    yields!("2 + 3 * 4", 14);
    yields!("(2 + 3) * 4", 20);
    yields!("10 - 2 - 3", 5);
    yields!("100 / 10 / 5", 2);
    yields!("2 * 3 % 4", 2);
}

#[test]
fn unary_minus_binds_tightest() {
    yields!("-2 * 3", (-6));
    yields!("- -2", 2);
    yields!("-(1 + 2)", (-3));
    yields!("2 - -2", 4);
    yields!("-data.amount", {"amount": 5}, (-5));
}

#[test]
fn keywords_in_either_case_and_symbols() {
    yields!("true and false", false);
    yields!("true AND true", true);
    yields!("false or true", true);
    yields!("false OR false", false);
    yields!("not false", true);
    yields!("NOT true", false);
    yields!("true && false || true", true);
    yields!("!true", false);
    yields!("1 not in [2]", true);
    yields!("1 NOT in [1]", false);
    rejects("true And false", Code::ExprSyntax);
    rejects("TRUE", Code::ExprSyntax);
    rejects("1 IN [1]", Code::ExprSyntax);
}

// ----- meaning -----

#[test]
fn and_or_short_circuit() {
    yields!("false AND 1 / 0 == 1", false);
    yields!("true OR 1 / 0 == 1", true);
    yields!("data.vip AND data.u > 5", {"u": "text"}, false);
    fails!("true AND 1 / 0 == 1", {}, EvalError::DivisionByZero);
    fails!("false OR 1 / 0 == 1", {}, EvalError::DivisionByZero);
}

#[test]
fn null_counts_as_false_in_boolean_operators() {
    yields!("null AND true", false);
    yields!("null OR true", true);
    yields!("NOT null", true);
    yields!("NOT data.vip", {}, true);
    fails!("data.u AND true", {"u": 3}, EvalError::WrongOperand { op: "AND", .. });
    fails!("NOT data.u", {"u": "yes"}, EvalError::WrongOperand { op: "NOT", .. });
}

#[test]
fn equality_is_structural_with_numbers_compared_numerically() {
    yields!("50 == 50.0", true);
    yields!("1 == '1'", false);
    yields!("1 != '1'", true);
    yields!("null == null", true);
    yields!("null == false", false);
    yields!("null != 0", true);
    yields!("[1, 2] == [1, 2.0]", true);
    yields!("[1, 2] == [2, 1]", false);
    yields!("'a' == 'a'", true);
    yields!("true != false", true);
    yields!("data.address == data.address", {"address": {"city": "Lyon"}}, true);
    yields!("data.amount == 9007199254740993", {"amount": 9007199254740993u64}, true);
    yields!("9007199254740993 == 9007199254740992.0", false);
}

#[test]
fn ordering_numbers_strings_and_null() {
    yields!("2 < 10", true);
    yields!("2.5 <= 2.5", true);
    yields!("3 > 2.5", true);
    yields!("3 >= 4", false);
    yields!("'B' < 'a'", true);
    yields!("'abc' < 'abd'", true);
    yields!("'é' > 'z'", true);
    yields!("null < 1", false);
    yields!("null >= 1", false);
    yields!("1 > null", false);
    yields!("data.lead_score > 5", {}, false);
    yields!("NOT (data.lead_score > 5)", {}, true);
    fails!("data.u > 5", {"u": "high"}, EvalError::TypeMismatch { op: ">", left: "string", right: "number" });
    fails!("data.u < data.w", {"u": true, "w": false}, EvalError::TypeMismatch { .. });
}

#[test]
fn comparisons_do_not_chain() {
    let diagnostic = rejects("1 < 2 < 3", Code::ExprSyntax);
    assert_eq!(diagnostic.message, "comparisons cannot be chained: `a < b < c`");
    assert_eq!((diagnostic.primary.span.start, diagnostic.primary.span.end), (6, 7));
    rejects("1 == 1 == true", Code::ExprSyntax);
    rejects("1 in [1] in [true]", Code::ExprSyntax);
    yields!("(1 < 2) == true", true);
}

#[test]
fn membership_in_lists_and_substrings() {
    yields!("2 in [1, 2, 3]", true);
    yields!("2.0 in [1, 2, 3]", true);
    yields!("'2' in [1, 2, 3]", false);
    yields!("null in [1, null]", true);
    yields!("4 not in [1, 2, 3]", true);
    yields!("'we' in 'web'", true);
    yields!("'x' in 'web'", false);
    yields!("'x' not in 'web'", true);
    yields!("'' in 'web'", true);
    yields!("data.lead_source in ['web', 'email']", {"lead_source": "email"}, true);
    yields!("'vip' in data.tags", {"tags": ["vip", "hot"]}, true);
    yields!("'vip' in data.tags", {}, false);
    yields!("'vip' not in data.tags", {}, true);
    yields!("'sales' in actor.roles", true);
    yields!("'admin' in actor.roles", false);
    fails!("data.u in 'abc'", {"u": 1}, EvalError::TypeMismatch { op: "in", .. });
    fails!("1 in data.u", {"u": 1}, EvalError::TypeMismatch { op: "in", .. });
    rejects("1 in 'abc'", Code::ExprType);
    rejects("1 in 2", Code::ExprType);
}

#[test]
fn arithmetic() {
    yields!("1 + 2", 3);
    yields!("5 - 7", (-2));
    yields!("6 * 7", 42);
    yields!("5 / 2", 2.5);
    yields!("4 / 2", 2);
    yields!("7 % 3", 1);
    yields!("-7 % 3", (-1));
    yields!("7.5 % 2", 1.5);
    yields!("0.1 + 0.2 > 0.3", true);
    yields!("'ab' + 'cd'", "abcd");
    yields!("data.amount * 2", {"amount": 1.5}, 3);
    yields!("data.amount + 1", {}, null);
    fails!("data.u + 1", {"u": "a"}, EvalError::TypeMismatch { op: "+", left: "string", right: "number" });
    fails!("data.u - data.w", {"u": "b", "w": "a"}, EvalError::TypeMismatch { op: "-", .. });
}

#[test]
fn division_by_zero_is_a_run_time_error() {
    fails!("1 / 0", {}, EvalError::DivisionByZero);
    fails!("1.5 / 0.0", {}, EvalError::DivisionByZero);
    fails!("5 % 0", {}, EvalError::DivisionByZero);
    fails!("data.amount / data.count > 1", {"amount": 10, "count": 0}, EvalError::DivisionByZero);
    yields!("data.amount / data.count", {"amount": 10, "count": 4}, 2.5);
}

#[test]
fn integer_overflow_never_panics() {
    yields!("9223372036854775807 + 1", 9223372036854775808.0);
    yields!("-9223372036854775808 - 1", (-9223372036854775809.0));
    yields!("9223372036854775807 * 2", 18446744073709551614.0);
    yields!("-(-9223372036854775808)", 9223372036854775808.0);
    yields!("-9223372036854775808 / -1", 9223372036854775808.0);
    yields!("-9223372036854775808 % -1", 0);
    yields!("-9223372036854775808", (-9223372036854775808i64));
    yields!("99999999999999999999", 1e20);
    yields!("9223372036854775807 + 1 > 9223372036854775807", true);
    fails!("1e308 * 10", {}, EvalError::Overflow);
    rejects("1e999", Code::ExprSyntax);
}

#[test]
fn missing_paths_yield_null() {
    yields!("data.amount", {}, null);
    yields!("data.address.city", {"address": {"city": "Lyon"}}, "Lyon");
    yields!("data.address.city", {}, null);
    yields!("data.address.zip.code", {"address": {"zip": "69001"}}, null);
    yields!("data.address.city == null", {"address": {}}, true);
    yields!("data.nope", {}, null);
    yields!("data.nope.deeper", {"nope": [1]}, null);
}

#[test]
fn context_paths() {
    yields!("stage", "qualified");
    yields!("entity", "lead");
    yields!("actor.id", "u1");
    yields!("actor.roles", ["sales", "emea"]);
    yields!("stage == 'qualified' AND entity == 'lead'", true);
    rejects("actor.name", Code::ExprSyntax);
    rejects("stage.name", Code::ExprSyntax);
    rejects("data", Code::ExprSyntax);
    let diagnostic = rejects("lead_score > 5", Code::ExprSyntax);
    assert_eq!(diagnostic.help.as_deref(), Some("data fields are read through `data`: `data.lead_score`"));
}

#[test]
fn actor_absent() {
    let expr = compiled("has_role('sales') OR actor.id == null").expr;
    let record = Record::new(&schema());
    let ctx = Context { data: &record, stage: "new", entity: "lead", actor: None, now: now() };
    assert_eq!(expr.map(|e| evaluate_condition(&e, &ctx)), Some(Ok(true)));
}

#[test]
fn functions() {
    yields!("len('héllo')", 5);
    yields!("len([1, 2, 3])", 3);
    yields!("len(data.tags)", {}, null);
    yields!("lower('ABC')", "abc");
    yields!("upper('abc')", "ABC");
    yields!("contains('web form', 'form')", true);
    yields!("contains([1, 2], 2.0)", true);
    yields!("contains(data.tags, 'x')", {"tags": ["y"]}, false);
    yields!("starts_with('web form', 'web')", true);
    yields!("ends_with('web form', 'web')", false);
    yields!("has_role('sales')", true);
    yields!("has_role('admin')", false);
    yields!("has_permission('deal.approve')", true);
    yields!("has_permission('deal.delete')", false);
    yields!("now()", "2026-03-01T12:00:00Z");
    yields!("days_since('2026-02-27')", 2);
    yields!("days_since('2026-02-27T18:00:00Z')", 1);
    yields!("hours_since('2026-03-01T09:30:00Z')", 2);
    yields!("hours_since('2026-03-01')", 12);
    yields!("days_since(data.close_date) > 30", {"close_date": "2026-01-01"}, true);
    yields!("days_since(data.close_date)", {}, null);
    fails!("days_since(data.u)", {"u": "soon"}, EvalError::InvalidDate { .. });
    fails!("len(data.u)", {"u": 3}, EvalError::WrongOperand { op: "len", .. });
    fails!("lower(data.u)", {"u": 3}, EvalError::WrongOperand { op: "lower", .. });
}

#[test]
fn function_names_and_arity_are_checked() {
    let diagnostic = rejects("lenght('x') > 1", Code::UnknownFunction);
    assert_eq!(diagnostic.message, "unknown function `lenght`");
    assert_eq!(diagnostic.help.as_deref(), Some("did you mean `len`?"));
    let diagnostic = rejects("len('a', 'b')", Code::UnknownFunction);
    assert_eq!(diagnostic.message, "`len` takes 1 argument, found 2");
    rejects("now(1)", Code::UnknownFunction);
    rejects("contains('a')", Code::UnknownFunction);
    rejects("frobnicate()", Code::UnknownFunction);
    rejects("len(5)", Code::ExprType);
    rejects("lower(data.amount)", Code::ExprType);
    rejects("contains('abc', 1)", Code::ExprType);
    rejects("has_role(1)", Code::ExprType);
    rejects("days_since(data.amount)", Code::ExprType);
    rejects("days_since('next week')", Code::ExprType);
}

#[test]
fn dates_compare_chronologically() {
    yields!("data.close_date < '2026-12-01'", {"close_date": "2026-11-25"}, true);
    yields!("data.close_date > '2026-11-25'", {"close_date": "2026-11-25"}, false);
    yields!("data.close_date >= '2026-11-25'", {"close_date": "2026-11-25"}, true);
    // 10:00+02:00 is 08:00Z: before 09:00Z, though it sorts after it as text.
    yields!("data.due_at < '2026-03-01T09:00:00Z'", {"due_at": "2026-03-01T10:00:00+02:00"}, true);
    yields!("data.due_at == '2026-03-01T08:00:00Z'", {"due_at": "2026-03-01T10:00:00+02:00"}, true);
    yields!("data.due_at < now()", {"due_at": "2026-03-01T11:59:59Z"}, true);
    let data = json!({"close_date": "2026-03-01", "due_at": "2026-03-01T00:00:01Z"});
    yields!("data.close_date < data.due_at", data, true);
    yields!("data.close_date < '2026-12-01'", {}, false);
    fails!("data.close_date < '2026-12-01'", {"close_date": "soon"}, EvalError::InvalidDate { .. });
    rejects("data.close_date > 'tomorrow'", Code::ExprType);
    rejects("data.close_date > 5", Code::ExprType);
}

// ----- compile-time diagnostics -----

#[test]
fn type_errors_are_found_at_compile_time() {
    let diagnostic = rejects("data.lead_score > 'high'", Code::ExprType);
    assert_eq!(diagnostic.message, "cannot compare a number with a string using `>`");
    let declared = diagnostic.secondary.iter().find(|l| l.message == "`lead_score` is declared as number");
    assert_eq!(declared.map(|l| (l.span.start, l.span.end)), Some((0, 15)));
    rejects("data.name - 1", Code::ExprType);
    rejects("'a' * 2", Code::ExprType);
    rejects("data.vip < true", Code::ExprType);
    rejects("-'a'", Code::ExprType);
    rejects("data.amount AND true", Code::ExprType);
    rejects("NOT data.name", Code::ExprType);
    rejects("data.amount.cents", Code::ExprType);
    rejects("[1] < [2]", Code::ExprType);
}

#[test]
fn all_diagnostics_of_an_expression_are_collected() {
    let compiled = compiled("data.lead_score > 'high' OR lenght(data.nme) OR stage == 'wom'");
    let codes: Vec<Code> = compiled.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, [Code::ExprType, Code::UndeclaredField, Code::UnknownFunction, Code::UnknownStage]);
}

#[test]
fn undeclared_fields_warn_and_still_work() {
    let diagnostic = warns("data.lead_scor > 5", Code::UndeclaredField);
    assert_eq!(diagnostic.message, "`data.lead_scor` is not declared in `dataSchema`");
    assert_eq!(diagnostic.help.as_deref(), Some("did you mean `lead_score`?"));
    yields!("data.extra_key > 5", {"extra_key": 7}, true);
}

#[test]
fn unknown_stages() {
    let diagnostic = rejects("stage == 'qualifed'", Code::UnknownStage);
    assert_eq!(diagnostic.help.as_deref(), Some("did you mean `qualified`?"));
    rejects("'wom' != stage", Code::UnknownStage);
    rejects("stage in ['new', 'lost']", Code::UnknownStage);
    yields!("stage in ['new', 'qualified']", true);
    let anywhere = compile("stage == 'anything'", &ExprEnv { schema: &schema(), stages: &[] });
    assert!(anywhere.diagnostics.is_empty());
}

#[test]
fn conditions_must_be_boolean() {
    let env_stages: Vec<String> = Vec::new();
    let env = ExprEnv { schema: &schema(), stages: &env_stages };
    for (source, ok) in
        [("data.amount", false), ("'x'", false), ("data.vip", true), ("data.nope", true), ("null", true)]
    {
        let compiled = compile_condition(source, &env);
        assert_eq!(compiled.expr.is_some(), ok, "{source}: {:#?}", compiled.diagnostics);
        assert_eq!(compiled.diagnostics.iter().any(|d| d.code == Code::NotBoolean), !ok, "{source}");
    }
    let record = Record::from_json(&schema(), &json!({"nope": 3}));
    let ctx = Context { data: &record, stage: "new", entity: "lead", actor: None, now: now() };
    let expr = compile_condition("data.nope", &env).expr;
    assert_eq!(
        expr.map(|e| evaluate_condition(&e, &ctx)),
        Some(Err(EvalError::NotBoolean { found: "number" }))
    );
}

#[test]
fn syntax_errors_say_what_was_expected() {
    let cases = [
        ("data.x >", "expected an operand, found the end of the expression"),
        ("data.x = 1", "expected an operator or the end of the expression, found `=`"),
        ("(1 + 2", "unclosed `(`"),
        ("1 + 2)", "unmatched `)`"),
        ("[1, 2)", "`[` closed by `)`"),
        ("'open", "unterminated string"),
        ("[1 2]", "expected an operator, `,` or `]`, found `2`"),
        ("data.", "expected a field name, found the end of the expression"),
        ("", "expected an operand, found the end of the expression"),
    ];
    for (source, message) in cases {
        let diagnostic = rejects(source, Code::ExprSyntax);
        assert_eq!(diagnostic.message, message, "{source}");
    }
}

// ----- limits -----

#[test]
fn length_limit_is_4096_characters() {
    // Characters, not bytes: `é` is two bytes.
    let at_limit = format!("'{}'", "é".repeat(4094));
    assert_eq!(at_limit.chars().count(), 4096);
    assert!(compiled(&at_limit).expr.is_some());
    let diagnostic = rejects(format!("'{}'", "é".repeat(4095)), Code::ExprLimit);
    assert_eq!(diagnostic.message, "expression is 4097 characters long; the limit is 4,096");
    let sum = format!("1{}", " + 1".repeat(1023));
    assert_eq!(sum.len(), 4093);
    yields!(&sum, 1024);
}

fn nested(open: &str, core: &str, close: &str, levels: usize) -> String {
    format!("{}{core}{}", open.repeat(levels), close.repeat(levels))
}

#[test]
fn nesting_limit_is_64_levels() {
    let forms = [
        ("(", "true", ")"),
        ("[", "1", "]"),
        ("lower(", "'x'", ")"),
        ("NOT ", "true", ""),
        ("!", "true", ""),
        ("-", "1", ""),
        ("- ", "1", ""),
    ];
    for (open, core, close) in forms {
        let at_limit = nested(open, core, close, 64);
        assert!(compiled(&at_limit).expr.is_some(), "64 × `{open}`: {:#?}", compiled(&at_limit).diagnostics);
        rejects(nested(open, core, close, 65), Code::ExprLimit);
    }
    // Prefix operators and brackets add up.
    yields!(&nested("NOT (", "true", ")", 32), true);
    rejects(nested("NOT (", "true", ")", 33), Code::ExprLimit);
    // Separate prefix operators do not nest.
    yields!(&vec!["!false"; 200].join(" AND "), true);
}

#[test]
fn enormous_nesting_is_rejected_without_overflowing_the_stack() {
    for (open, close) in [("(", ")"), ("[", "]"), ("!", ""), ("- ", ""), ("NOT ", ""), ("f(", ")")] {
        let source = nested(open, "1", close, 100_000);
        let compiled = compile(&source, &ExprEnv { schema: &schema(), stages: &[] });
        assert!(compiled.diagnostics.iter().any(|d| d.code == Code::ExprLimit), "100k × `{open}`");
    }
}

#[test]
fn the_deepest_accepted_expression_compiles_and_evaluates() {
    // Four levels each (group, NOT, call, list), stacking an OR, an AND, a NOT, a comparison and both
    // arithmetic levels between them.
    let mut source = "true".to_owned();
    for _ in 0..16 {
        source = format!("(false OR true AND NOT len([{source}]) * 1 + 0 == 1)");
    }
    let compiled = compiled(&source);
    let Some(expr) = compiled.expr else { panic!("{:#?}", compiled.diagnostics) };
    assert!(depth(&expr) <= MAX_TREE_DEPTH);
    let record = Record::new(&schema());
    let ctx = Context { data: &record, stage: "new", entity: "lead", actor: None, now: now() };
    assert!(evaluate(&expr, &ctx).is_ok());
    assert_eq!(can_hold(&expr, &schema()), Tri::Unknown);
}

fn depth(expr: &Expr) -> usize {
    let children: Vec<&Expr> = match expr {
        Expr::Not(e) | Expr::Neg(e) => vec![e],
        Expr::And(items) | Expr::Or(items) | Expr::List(items) => items.iter().collect(),
        Expr::Call { args, .. } => args.iter().collect(),
        Expr::Compare { lhs, rhs, .. } | Expr::In { lhs, rhs, .. } => vec![lhs, rhs],
        Expr::Arith { first, rest } => std::iter::once(&**first).chain(rest.iter().map(|(_, e)| e)).collect(),
        _ => vec![],
    };
    1 + children.into_iter().map(depth).max().unwrap_or(0)
}

#[test]
fn hand_built_trees_too_deep_are_refused() {
    let mut expr = Expr::Const(Value::Bool(true));
    for _ in 0..=MAX_TREE_DEPTH {
        expr = Expr::Not(Box::new(expr));
    }
    let record = Record::new(&schema());
    let ctx = Context { data: &record, stage: "new", entity: "lead", actor: None, now: now() };
    assert_eq!(evaluate_condition(&expr, &ctx), Err(EvalError::TooDeep));
    assert_eq!(can_hold(&expr, &schema()), Tri::Unknown);
}

// ----- records -----

#[test]
fn records_round_trip_and_keep_undeclared_keys() {
    let data = json!({"lead_score": 70, "extra": {"a": [1, 2]}, "vip": null});
    let record = Record::from_json(&schema(), &data);
    assert_eq!(record.to_json(&schema()), data);
    assert_eq!(record.extra("extra"), Some(&value_from_json(&json!({"a": [1, 2]}))));
}

// ----- satisfiability -----

fn condition(source: &str) -> Expr {
    let compiled = compile_condition(source, &ExprEnv { schema: &schema(), stages: &[] });
    compiled.expr.unwrap_or_else(|| panic!("`{source}`: {:#?}", compiled.diagnostics))
}

/// `both!(a, b, Tri)`: can `a` and `b` hold at once?
macro_rules! both {
    ($a:expr, $b:expr, $answer:expr) => {
        assert_eq!(can_both_hold(&condition($a), &condition($b), &schema()), $answer, "`{}` and `{}`", $a, $b)
    };
}

/// `holds!(a, Tri)`: can `a` hold?
macro_rules! holds {
    ($a:expr, $answer:expr) => {
        assert_eq!(can_hold(&condition($a), &schema()), $answer, "`{}`", $a)
    };
}

#[test]
fn satisfiability_of_intervals() {
    both!("data.amount > 50", "data.amount < 30", Tri::No);
    both!("data.amount > 50", "data.amount > 60", Tri::Yes);
    both!("data.amount >= 50", "data.amount <= 50", Tri::Yes);
    both!("data.amount > 50", "data.amount <= 50", Tri::No);
    both!("data.amount > 50", "data.amount == 50", Tri::No);
    both!("data.amount > 50", "data.amount != 51", Tri::Yes);
    both!("50 < data.amount", "data.amount < 51", Tri::Yes);
    both!("data.count > 50", "data.count < 51", Tri::No);
    both!("data.count >= 50", "data.count < 51 AND data.count != 50", Tri::No);
    holds!("data.lead_score > 100", Tri::No);
    holds!("data.lead_score >= 100", Tri::Yes);
    holds!("data.lead_score < 0 OR data.lead_score > 100", Tri::No);
}

#[test]
fn satisfiability_with_enums_and_booleans() {
    holds!("data.lead_source == 'fax'", Tri::No);
    holds!("data.lead_source == 'web'", Tri::Yes);
    holds!("data.lead_source in ['fax', 'phone']", Tri::No);
    holds!("data.lead_source not in ['web', 'email', 'referral']", Tri::Yes);
    holds!("data.lead_source not in ['web', 'email', 'referral'] AND data.lead_source != null", Tri::No);
    holds!("data.lead_source > 'x'", Tri::No);
    both!("data.lead_source == 'web'", "data.lead_source == 'email'", Tri::No);
    both!("data.vip", "NOT data.vip", Tri::No);
    both!("data.vip == true", "data.vip != false", Tri::Yes);
    both!("data.vip", "data.vip == false OR data.amount > 3", Tri::Yes);
    holds!("data.amount == 'high'", Tri::No);
}

#[test]
fn satisfiability_with_null() {
    holds!("data.amount == null", Tri::Yes);
    holds!("data.count == null", Tri::No);
    holds!("NOT (data.amount > 5) AND data.amount > 10", Tri::No);
    holds!("NOT (data.amount > 5) AND data.amount == null", Tri::Yes);
    both!("data.amount != 5", "data.amount != 6", Tri::Yes);
    both!("data.amount > 5", "data.amount == null", Tri::No);
}

#[test]
fn satisfiability_of_dates_and_strings() {
    both!("data.close_date > '2026-06-01'", "data.close_date < '2026-01-01'", Tri::No);
    both!("data.close_date > '2026-06-01'", "data.close_date < '2026-06-02'", Tri::No);
    both!("data.close_date >= '2026-06-01'", "data.close_date < '2026-06-02'", Tri::Yes);
    both!("data.due_at > '2026-06-01T00:00:00Z'", "data.due_at < '2026-06-01T02:00:00+02:00'", Tri::No);
    both!("data.name == 'a'", "data.name == 'b'", Tri::No);
    both!("data.name > 'b'", "data.name < 'a'", Tri::No);
    both!("data.name != 'a'", "data.name != 'b'", Tri::Yes);
}

#[test]
fn satisfiability_gives_up_when_unsure() {
    holds!("len(data.name) > 3", Tri::Unknown);
    holds!("has_role('x') OR data.amount > 3", Tri::Unknown);
    holds!("data.amount + 1 > 3", Tri::Unknown);
    holds!("data.amount > data.count", Tri::Unknown);
    holds!("data.nope > 3", Tri::Unknown);
    holds!("data.nope > 3 AND data.nope < 2", Tri::No);
    holds!("stage == 'won'", Tri::Unknown);
    holds!("stage == 'won' AND stage == 'lost'", Tri::No);
    // 2^7 terms exceed the bound on the normal form.
    let wide = (0..7)
        .map(|i| format!("(data.amount == {i} OR data.count == {i})"))
        .collect::<Vec<_>>()
        .join(" AND ");
    holds!(&wide, Tri::Unknown);
}

#[test]
fn no_condition_always_holds() {
    let none: Option<&Expr> = None;
    assert_eq!(can_hold(none, &schema()), Tri::Yes);
    assert_eq!(can_both_hold(none, none, &schema()), Tri::Yes);
    assert_eq!(can_both_hold(none, Some(&condition("false")), &schema()), Tri::No);
    assert_eq!(can_both_hold(Some(&condition("data.amount > 1")), None, &schema()), Tri::Yes);
}

// ----- snapshots -----

/// One block per diagnostic: `severity[code]: message`, the source with each label underlined, help.
fn render(source: &str, diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&format!("{}[{}]: {}\n  {source}\n", d.severity, d.code, d.message));
        for (mark, label) in std::iter::once(('^', &d.primary)).chain(d.secondary.iter().map(|l| ('-', l))) {
            let pad = source[..label.span.start].chars().count();
            let width = source[label.span.start..label.span.end].chars().count().max(1);
            let line = format!("  {}{} {}", " ".repeat(pad), mark.to_string().repeat(width), label.message);
            out.push_str(line.trim_end());
            out.push('\n');
        }
        if let Some(help) = &d.help {
            out.push_str(&format!("  help: {help}\n"));
        }
    }
    out
}

#[test]
fn diagnostics_snapshot() {
    let source = "data.lead_score > 'high' AND stage == 'qualifed' OR lenght(data.lead_scor) > 1";
    let rendered = render(source, &compiled(source).diagnostics);
    insta::with_settings!({snapshot_path => "../snapshots"}, {
        insta::assert_snapshot!("expression_diagnostics", rendered);
    });
}

#[test]
fn syntax_error_snapshot() {
    let sources =
        ["data.lead_score > 50 AND AND data.x", "data.x < 1 < 2", "data.x == NOT data.y", "(data.x"];
    let rendered: String = sources.iter().map(|s| render(s, &compiled(s).diagnostics)).collect();
    insta::with_settings!({snapshot_path => "../snapshots"}, {
        insta::assert_snapshot!("expression_syntax_errors", rendered);
    });
}
