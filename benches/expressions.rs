//! Condition evaluation: our compiled form against the `cel` crate on the same data.
//!
//! Target (issue #2): ≤ 50 ns per evaluation and at least 3× faster than `cel`.

#[path = "support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use criterion::{Criterion, criterion_group};
use nexus_crm::check::expr::{ExprEnv, compile_condition};
use nexus_crm::engine::eval::{Context, Record, evaluate_condition};
use nexus_crm::ir::{DataSchema, Field, FieldType};

const OURS: &str = "data.lead_score > 50 AND data.lead_source == 'web'";
const CEL: &str = "data.lead_score > 50 && data.lead_source == 'web'";

fn schema() -> DataSchema {
    DataSchema::new(vec![
        Field::new("lead_score", FieldType::Number),
        Field::new("lead_source", FieldType::String),
    ])
}

struct Prepared {
    schema: DataSchema,
    ours: nexus_crm::ir::Expr,
    record: Record,
    cel: cel::Program,
    cel_context: cel::Context<'static, 'static>,
    now: chrono::DateTime<Utc>,
}

fn prepare() -> Prepared {
    let schema = schema();
    let compiled = compile_condition(OURS, &ExprEnv { schema: &schema, stages: &[] });
    let Some(ours) = compiled.expr else {
        panic!("benchmark expression must compile: {:?}", compiled.diagnostics)
    };
    let record = Record::from_json(&schema, &serde_json::json!({"lead_score": 72, "lead_source": "web"}));
    let Ok(cel) = cel::Program::compile(CEL) else { panic!("the CEL expression must compile") };
    let mut cel_context = cel::Context::default();
    let data: HashMap<String, cel::Value> = HashMap::from([
        ("lead_score".to_owned(), cel::Value::Int(72)),
        ("lead_source".to_owned(), "web".into()),
    ]);
    cel_context.add_variable_from_value("data", data);
    Prepared { schema, ours, record, cel, cel_context, now: Utc::now() }
}

fn eval_ours(p: &Prepared) -> bool {
    // The context is prepared once per evaluation round in the engine; the clock is read there.
    let ctx = Context { data: &p.record, stage: "new", entity: "lead", actor: None, now: p.now };
    matches!(evaluate_condition(&p.ours, &ctx), Ok(true))
}

fn eval_cel(p: &Prepared) -> bool {
    matches!(p.cel.execute(&p.cel_context), Ok(cel::Value::Bool(true)))
}

fn bench(c: &mut Criterion) {
    let p = prepare();
    assert!(eval_ours(&p) && eval_cel(&p), "both evaluators must agree the condition holds");
    let _ = &p.schema;
    let mut group = c.benchmark_group("condition");
    group.bench_function("nexus-crm", |b| b.iter(|| eval_ours(&p)));
    group.bench_function("cel", |b| b.iter(|| eval_cel(&p)));
    group.finish();
}

fn summary() {
    let p = prepare();
    let ours = support::time_per_call(Duration::from_millis(700), || eval_ours(&p));
    let cel = support::time_per_call(Duration::from_millis(700), || eval_cel(&p));
    println!("\n== condition evaluation: `{OURS}` ==");
    println!("nexus-crm compiled form : {:>10}   (target ≤ 50 ns)", support::human(ours));
    println!("cel crate               : {:>10}", support::human(cel));
    println!("ratio cel / nexus-crm   : {:>9.1}×   (target ≥ 3×)", cel.as_secs_f64() / ours.as_secs_f64());
}

criterion_group!(benches, bench);

fn main() {
    benches();
    summary();
    criterion::Criterion::default().configure_from_args().final_summary();
}
