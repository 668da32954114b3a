//! Definitions over their lifetime (issue #11), on an SQLite file:
//!
//! - deploying the generated 200-stage, 1,000-transition definition as a new version, and again
//!   unchanged (a no-op), beside the baseline of compiling it alone (`check_source`, which a
//!   deploy includes);
//! - `crm check --against` on 100,000 live instances (`Engine::compatibility`: read them, compare
//!   stages, validate every instance's data), beside the baseline of only reading them
//!   (`Store::live_instances`).
//!
//! Targets: deploy ≤ 20 ms; the check against 100,000 live instances ≤ 1 s.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use criterion::{Criterion, criterion_group};
use nexus_crm::check::check_source;
use nexus_crm::engine::service::Engine;
use nexus_crm::store::{AnyStore, Store, TenantId};
use sqlx::{Connection, Executor, SqliteConnection};

const INSTANCES: usize = 100_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
}

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/compat/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The generated definition with another label: the same definition, new content.
fn relabelled(source: &str, n: usize) -> String {
    source.replacen(r#"{"id": "generated","#, &format!(r#"{{"id": "generated", "label": "v{n}","#), 1)
}

fn bench(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite:{}", dir.path().join("deploy.db").display());
    let engine = Engine::new(rt.block_on(AnyStore::open(&url)).expect("a store"));
    let tenant = TenantId::new("bench");
    let source = support::generated_definition(200, 1_000);
    rt.block_on(engine.deploy(&tenant, &source)).expect("deployed");
    let mut group = c.benchmark_group("deploy-200-stages");
    group.sample_size(20);
    group.bench_function("deploy unchanged (no-op)", |b| {
        b.iter(|| rt.block_on(engine.deploy(&tenant, &source)))
    });
    group.bench_function("check_source alone (baseline)", |b| b.iter(|| check_source(&source)));
    group.finish();
}

fn deploy_summary() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite:{}", dir.path().join("deploy.db").display());
    let engine = Engine::new(rt.block_on(AnyStore::open(&url)).expect("a store"));
    let tenant = TenantId::new("bench");
    let source = support::generated_definition(200, 1_000);
    let mut n = 0;
    let new_version = support::time_per_call(Duration::from_secs(3), || {
        n += 1;
        let changed = relabelled(&source, n);
        let deployed = rt.block_on(engine.deploy(&tenant, &changed)).expect("deployed");
        assert!(deployed.created);
    });
    let unchanged = support::time_per_call(Duration::from_secs(2), || {
        rt.block_on(engine.deploy(&tenant, &relabelled(&source, n))).expect("deployed")
    });
    let compile = support::time_per_call(Duration::from_secs(2), || check_source(&relabelled(&source, n)));
    println!(
        "\n== deploying a generated definition: 200 stages, 1,000 transitions ({} KB), SQLite ==",
        source.len() / 1024
    );
    println!("deploy, new version            : {:>10}   (target ≤ 20 ms)", support::human(new_version));
    println!("deploy, unchanged (no-op)      : {:>10}", support::human(unchanged));
    println!("check_source alone (baseline)  : {:>10}", support::human(compile));
    println!("ratio new version / baseline   : {:>9.2}×", new_version.as_secs_f64() / compile.as_secs_f64());
    rt.block_on(engine.store().close());
}

/// 100,000 active instances of the compat fixture's `deals`, inserted in one statement: a third
/// each in `new`, `contacted` and `review`, with data every later version narrows for some.
async fn live_instances(url: &str) {
    let mut conn = SqliteConnection::connect(url).await.expect("a connection");
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {INSTANCES}) \
         INSERT INTO crm_instances (tenant_id, id, definition_id, definition_version, entity, state, status, data, \
           version, stage_entered_at, started_at, updated_at) \
         SELECT 'bench', printf('i%06d', i), 'deals', 1, 'deal', \
           CASE i % 3 WHEN 0 THEN 'new' WHEN 1 THEN 'contacted' ELSE 'review' END, 'active', \
           json_object('score', i % 100, 'source', CASE i % 3 WHEN 0 THEN 'web' WHEN 1 THEN 'event' ELSE 'referral' END, \
             'note', 'n' || i), \
           1, '2026-01-05T09:00:00.000000Z', '2026-01-05T09:00:00.000000Z', '2026-01-05T09:00:00.000000Z' FROM n"
    );
    conn.execute(sqlx::AssertSqlSafe(sql)).await.expect("instances inserted");
    let _ = conn.close().await;
}

fn compat_summary() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite:{}", dir.path().join("compat.db").display());
    let store = rt.block_on(AnyStore::open(&url)).expect("a store");
    let engine = Engine::new(store.clone());
    let tenant = TenantId::new("bench");
    rt.block_on(engine.deploy(&tenant, &fixture("live"))).expect("deployed");
    rt.block_on(live_instances(&url));
    let narrowed = fixture("data_narrowed");
    let renamed = fixture("stage_renamed");
    let found = rt.block_on(engine.compatibility(&tenant, &narrowed)).expect("compared");
    assert_eq!(found.instances, INSTANCES);
    assert!(found.strands(), "the narrowed schema strands instances");

    let ours = support::time_per_call(Duration::from_secs(5), || {
        rt.block_on(engine.compatibility(&tenant, &narrowed)).expect("compared")
    });
    let stages = support::time_per_call(Duration::from_secs(5), || {
        rt.block_on(engine.compatibility(&tenant, &renamed)).expect("compared")
    });
    let read = support::time_per_call(Duration::from_secs(5), || {
        rt.block_on(store.live_instances(&tenant, "deals")).expect("read")
    });
    println!("\n== `crm check --against` on {INSTANCES} live instances, SQLite ==");
    println!("compatibility, narrowed data   : {:>10}   (target ≤ 1 s)", support::human(ours));
    println!("compatibility, renamed stage   : {:>10}", support::human(stages));
    println!("reading them alone (baseline)  : {:>10}", support::human(read));
    println!("ratio narrowed / baseline      : {:>9.2}×", ours.as_secs_f64() / read.as_secs_f64());
    rt.block_on(store.close());
}

criterion_group!(benches, bench);

fn main() {
    benches();
    deploy_summary();
    compat_summary();
    criterion::Criterion::default().configure_from_args().final_summary();
}
