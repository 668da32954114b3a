//! Timers fired per second by 4 workers (library tasks, one engine each), against a hand-written
//! `FOR UPDATE SKIP LOCKED` claim-and-update loop doing the same writes per timer (instance
//! version, a history row, an outbox event, the SLA clock, the timer's mark) in one transaction,
//! with 4 tasks as well. Side by side in one run, with the ratio.
//!
//! Target (issue #12): on PostgreSQL ≥ 5,000 timers/s and ≥ 0.5× the baseline.
//!
//! Then webhook deliveries per second to a receiver on 127.0.0.1 with 4 workers, against a
//! hand-written loop (claim with `SKIP LOCKED`, POST, mark done). Target: ≥ 2,000/s.
//! PostgreSQL runs when `CRM_TEST_POSTGRES_URL` is set; SQLite (a WAL file) always.
//! `CRM_BENCH_TIMERS` sets the number of due timers per side (default 4,000).

use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use nexus_crm::engine::eval::Actor;
use nexus_crm::engine::service::Engine;
use nexus_crm::engine::worker::{Worker, WorkerConfig};
use nexus_crm::store::{AnyStore, PgStore, SqliteStore, TenantId};
use serde_json::Value as Json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Connection, Row};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

/// Two SLA timers per instance (at risk, breach), both due once the instance is 3 hours old.
const SLA: &str = r#"{"id": "sla", "entities": {"case": {"stages": ["open", "closed"], "terminal": ["closed"],
  "sla": {"duration": "2 hours", "at_risk": "1 hour"}}},
  "transitions": {"close": {"from": "open", "to": "closed"}}}"#;

const WORKERS: usize = 4;

fn timers() -> usize {
    std::env::var("CRM_BENCH_TIMERS").ok().and_then(|n| n.parse().ok()).unwrap_or(4_000)
}

/// Creates `count / 2` instances of tenant `tenant` three hours in the past: `count` due timers.
async fn seed(store: AnyStore, tenant: &TenantId, count: usize) {
    let then: DateTime<Utc> = Utc::now() - TimeDelta::hours(3);
    let engine = Engine::new(store).with_clock(move || then);
    engine.deploy(tenant, SLA).await.expect("deploys");
    let actor = Actor { id: "ana".into(), ..Actor::default() };
    for _ in 0..count / 2 {
        engine.create_instance(tenant, &actor, "sla", "case", &Json::Null).await.expect("creates");
    }
}

/// Ours: 4 workers until nothing is due; timers fired and the time it took.
async fn ours(store: AnyStore, lanes: usize) -> (usize, Duration) {
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for w in 0..WORKERS {
        let store = store.clone();
        tasks.spawn(async move {
            let engine = Engine::new(store).with_lanes(lanes);
            let config = WorkerConfig { id: format!("w{w}"), batch: 100, ..WorkerConfig::default() };
            let pass = Worker::new(config).run_once(&engine).await.expect("a pass");
            pass.timers.fired
        });
    }
    let mut fired = 0;
    while let Some(n) = tasks.join_next().await {
        fired += n.expect("a worker");
    }
    (fired, started.elapsed())
}

/// The baseline on PostgreSQL: claim 100 with SKIP LOCKED, then per timer one transaction with
/// the same writes as the engine's.
async fn pg_baseline(options: PgConnectOptions, tenant: &'static str) -> (usize, Duration) {
    let pool =
        PgPoolOptions::new().max_connections(WORKERS as u32 * 2).connect_with(options).await.expect("pool");
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for w in 0..WORKERS {
        let pool = pool.clone();
        tasks.spawn(async move {
            let mut fired = 0;
            loop {
                let now = Utc::now();
                let claimed = sqlx::query(
                    "UPDATE crm_timers SET locked_by = $1, locked_until = $2 WHERE (tenant_id, id) IN (\
                     SELECT tenant_id, id FROM crm_timers WHERE tenant_id = $4 AND processed_at IS NULL \
                     AND trigger_at <= $3 AND (locked_until IS NULL OR locked_until <= $3) ORDER BY trigger_at \
                     LIMIT 100 FOR UPDATE SKIP LOCKED) RETURNING id, instance_id, type",
                )
                .bind(format!("base{w}"))
                .bind(now + TimeDelta::seconds(60))
                .bind(now)
                .bind(tenant)
                .fetch_all(&pool)
                .await
                .expect("claims");
                if claimed.is_empty() {
                    return fired;
                }
                for row in claimed {
                    let (id, instance, kind): (String, String, String) = (row.get(0), row.get(1), row.get(2));
                    let mut tx = pool.begin().await.expect("begins");
                    let version: i64 = sqlx::query(
                        "UPDATE crm_instances SET version = version + 1, updated_at = $3 \
                         WHERE tenant_id = $1 AND id = $2 RETURNING version",
                    )
                    .bind(tenant)
                    .bind(&instance)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await
                    .expect("instance")
                    .get(0);
                    let event = if kind == "sla_breach" { "sla_breached" } else { "sla_at_risk" };
                    sqlx::query(
                        "INSERT INTO crm_history (tenant_id, instance_id, seq, event, payload, created_at) \
                         VALUES ($1, $2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM crm_history \
                         WHERE tenant_id = $1 AND instance_id = $2), $3, '{\"stage\": null}', $4)",
                    )
                    .bind(tenant)
                    .bind(&instance)
                    .bind(event)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .expect("history");
                    sqlx::query(
                        "INSERT INTO crm_outbox (tenant_id, id, instance_id, kind, name, payload, status, \
                         next_attempt_at, created_at) VALUES ($1, $2, $3, 'event', $4, '{}', 'pending', $5, $5)",
                    )
                    .bind(tenant)
                    .bind(uuid::Uuid::now_v7().to_string())
                    .bind(&instance)
                    .bind(event)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .expect("outbox");
                    let status = if kind == "sla_breach" { "breached" } else { "at_risk" };
                    sqlx::query("UPDATE crm_sla SET status = $3 WHERE tenant_id = $1 AND instance_id = $2")
                        .bind(tenant)
                        .bind(&instance)
                        .bind(status)
                        .execute(&mut *tx)
                        .await
                        .expect("sla");
                    sqlx::query(
                        "UPDATE crm_timers SET processed_at = $3, locked_until = NULL \
                         WHERE tenant_id = $1 AND id = $2 AND processed_at IS NULL",
                    )
                    .bind(tenant)
                    .bind(&id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .expect("timer");
                    tx.commit().await.expect("commits");
                    let _ = version;
                    fired += 1;
                }
            }
        });
    }
    let mut fired = 0;
    while let Some(n) = tasks.join_next().await {
        fired += n.expect("a task");
    }
    let elapsed = started.elapsed();
    pool.close().await;
    (fired, elapsed)
}

fn line(label: &str, (fired, took): (usize, Duration)) -> f64 {
    let rate = fired as f64 / took.as_secs_f64();
    println!("  {label:<44} {fired:>6} timers in {:>8.1} ms  = {rate:>8.0}/s", took.as_secs_f64() * 1000.0);
    rate
}

async fn postgres(admin_url: &str, count: usize) {
    let database = format!("crm_bench_{}", uuid::Uuid::now_v7().simple());
    let mut admin = sqlx::PgConnection::connect(admin_url).await.expect("connects to PostgreSQL");
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut admin)
        .await
        .expect("creates");
    let options = PgConnectOptions::from_str(admin_url).expect("a URL").database(&database);
    let store = AnyStore::Postgres(PgStore::connect_with(options.clone()).await.expect("connects"));
    println!("timers fired, PostgreSQL, {WORKERS} workers ({count} due timers per side):");
    seed(store.clone(), &TenantId::new("acme"), count).await;
    seed(store.clone(), &TenantId::new("base"), count).await;
    // The baseline first on its own tenant, then ours: neither competes with the other.
    let base = line("hand-written SKIP LOCKED loop", pg_baseline(options, "base").await);
    let one = line("nexus-crm Worker, 1 lane", ours(store.clone(), 1).await);
    seed(store.clone(), &TenantId::new("acme"), count).await;
    let eight = line("nexus-crm Worker, 8 lanes", ours(store.clone(), 8).await);
    println!("  ratio ours/baseline: {:.2}× (1 lane), {:.2}× (8 lanes)", one / base, eight / base);
    store.close().await;
    sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE {database} WITH (FORCE)")))
        .execute(&mut admin)
        .await
        .expect("drops");
}

async fn sqlite(count: usize) {
    let dir = tempfile::tempdir().expect("a directory");
    let path = dir.path().join("bench.db");
    let store = AnyStore::Sqlite(SqliteStore::open(path.to_str().expect("UTF-8")).await.expect("opens"));
    println!("timers fired, SQLite file (WAL), {WORKERS} workers in one process ({count} due timers):");
    seed(store.clone(), &TenantId::new("acme"), count).await;
    let ours = line("nexus-crm Worker, 1 lane", ours(store.clone(), 1).await);
    // The baseline on SQLite: the same writes, one transaction per timer, one writer.
    seed(store.clone(), &TenantId::new("base"), count).await;
    let options = SqliteConnectOptions::new().filename(&path).journal_mode(SqliteJournalMode::Wal);
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.expect("pool");
    let started = Instant::now();
    let now = Utc::now();
    let rows = sqlx::query(
        "SELECT id, instance_id FROM crm_timers WHERE tenant_id = 'base' AND processed_at IS NULL",
    )
    .fetch_all(&pool)
    .await
    .expect("due");
    let stamp = now.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    for row in &rows {
        let (id, instance): (String, String) = (row.get(0), row.get(1));
        let mut tx = pool.begin().await.expect("begins");
        for (sql, arg) in [
            (
                "UPDATE crm_instances SET version = version + 1 WHERE tenant_id = 'base' AND id = $1",
                &instance,
            ),
            (
                "INSERT INTO crm_history (tenant_id, instance_id, seq, event, created_at) VALUES ('base', $1, \
                 (SELECT COALESCE(MAX(seq), 0) + 1 FROM crm_history WHERE tenant_id = 'base' AND instance_id = $1), \
                 'sla_at_risk', '2026-01-01T00:00:00.000000Z')",
                &instance,
            ),
            (
                "UPDATE crm_sla SET status = 'at_risk' WHERE tenant_id = 'base' AND instance_id = $1",
                &instance,
            ),
            (
                "UPDATE crm_timers SET processed_at = '2026-01-01T00:00:00.000000Z' WHERE tenant_id = 'base' AND id = $1",
                &id,
            ),
        ] {
            sqlx::query(sql).bind(arg).execute(&mut *tx).await.expect("writes");
        }
        sqlx::query(
            "INSERT INTO crm_outbox (tenant_id, id, instance_id, kind, name, payload, status, next_attempt_at, \
             created_at) VALUES ('base', $1, $2, 'event', 'sla_at_risk', '{}', 'pending', $3, $3)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(&instance)
        .bind(&stamp)
        .execute(&mut *tx)
        .await
        .expect("outbox");
        tx.commit().await.expect("commits");
    }
    let base = line("hand-written loop (one writer)", (rows.len(), started.elapsed()));
    println!("  ratio ours/baseline: {:.2}×", ours / base);
    pool.close().await;
    store.close().await;
}

/// A transition whose action posts to `url` (unsigned): one webhook item per fired instance.
fn hooks(url: &str) -> String {
    serde_json::json!({
        "id": "hooks",
        "entities": {"deal": {"stages": ["open", "sent"], "terminal": ["sent"]}},
        "actions": {"notify": {"type": "webhook", "url": url}},
        "transitions": {"send": {"from": "open", "to": "sent", "actions": ["notify"]}}
    })
    .to_string()
}

/// A receiver on 127.0.0.1 answering 204; its URL.
async fn receiver() -> String {
    let app = axum::Router::new().fallback(|| async { axum::http::StatusCode::NO_CONTENT });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let url = format!("http://{}/hook", listener.local_addr().expect("an address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// `count` webhook items of `tenant` (and their events), then every event delivered so only the
/// webhooks are left.
async fn seed_hooks(store: AnyStore, tenant: &TenantId, url: &str, count: usize) {
    let engine = Engine::new(store);
    engine.deploy(tenant, &hooks(url)).await.expect("deploys");
    let actor = Actor { id: "ana".into(), ..Actor::default() };
    for _ in 0..count {
        let deal =
            engine.create_instance(tenant, &actor, "hooks", "deal", &Json::Null).await.expect("creates");
        engine.fire(tenant, &actor, &deal.id, "send", None).await.expect("fires");
    }
}

/// Ours: 4 workers delivering until nothing is due; webhook deliveries and the time it took.
async fn deliver_ours(store: AnyStore, lanes: usize) -> (usize, Duration) {
    use nexus_crm::integrations::guard::{AddressPolicy, Allowed};
    use nexus_crm::integrations::webhook::HttpConfig;
    use nexus_crm::integrations::{Registry, StoreLedger};

    let http = HttpConfig {
        policy: std::sync::Arc::new(AddressPolicy::with_allowed(vec![
            Allowed::parse("127.0.0.1").expect("ok"),
        ])),
        ..HttpConfig::default()
    };
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for w in 0..WORKERS {
        let store = store.clone();
        let registry =
            Registry::standard(&http, std::sync::Arc::new(StoreLedger(store.clone()))).expect("registry");
        tasks.spawn(async move {
            let engine = Engine::new(store).with_lanes(lanes).with_action_handler(registry);
            let config = WorkerConfig { id: format!("w{w}"), batch: 100, ..WorkerConfig::default() };
            let pass = Worker::new(config).run_once(&engine).await.expect("a pass");
            pass.outbox.actions
        });
    }
    let mut delivered = 0;
    while let Some(n) = tasks.join_next().await {
        delivered += n.expect("a worker");
    }
    (delivered, started.elapsed())
}

/// The baseline on PostgreSQL: 4 tasks claiming 100 actions with SKIP LOCKED, a plain POST each,
/// then marking it done.
async fn deliver_pg_baseline(
    options: PgConnectOptions,
    tenant: &'static str,
    url: String,
) -> (usize, Duration) {
    let pool =
        PgPoolOptions::new().max_connections(WORKERS as u32 * 2).connect_with(options).await.expect("pool");
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for w in 0..WORKERS {
        let (pool, client, url) = (pool.clone(), client.clone(), url.clone());
        tasks.spawn(async move {
            let mut delivered = 0;
            loop {
                let now = Utc::now();
                let claimed = sqlx::query(
                    "UPDATE crm_outbox SET locked_by = $1, next_attempt_at = $2 WHERE (tenant_id, id) IN (\
                     SELECT tenant_id, id FROM crm_outbox WHERE tenant_id = $4 AND kind = 'action' \
                     AND status = 'pending' AND next_attempt_at <= $3 ORDER BY next_attempt_at LIMIT 100 \
                     FOR UPDATE SKIP LOCKED) RETURNING id, payload",
                )
                .bind(format!("base{w}"))
                .bind(now + TimeDelta::seconds(60))
                .bind(now)
                .bind(tenant)
                .fetch_all(&pool)
                .await
                .expect("claims");
                if claimed.is_empty() {
                    return delivered;
                }
                for row in claimed {
                    let (id, payload): (String, Json) = (row.get(0), row.get(1));
                    let response = client.post(&url).header("webhook-id", &id).json(&payload).send().await;
                    assert!(response.is_ok_and(|r| r.status().is_success()), "posted");
                    sqlx::query("UPDATE crm_outbox SET status = 'done', processed_at = $3 WHERE tenant_id = $1 AND id = $2")
                        .bind(tenant)
                        .bind(&id)
                        .bind(Utc::now())
                        .execute(&pool)
                        .await
                        .expect("done");
                    delivered += 1;
                }
            }
        });
    }
    let mut delivered = 0;
    while let Some(n) = tasks.join_next().await {
        delivered += n.expect("a task");
    }
    let elapsed = started.elapsed();
    pool.close().await;
    (delivered, elapsed)
}

async fn webhooks_postgres(admin_url: &str, count: usize) {
    let database = format!("crm_bench_{}", uuid::Uuid::now_v7().simple());
    let mut admin = sqlx::PgConnection::connect(admin_url).await.expect("connects to PostgreSQL");
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut admin)
        .await
        .expect("creates");
    let options = PgConnectOptions::from_str(admin_url).expect("a URL").database(&database);
    let store = AnyStore::Postgres(PgStore::connect_with(options.clone()).await.expect("connects"));
    let url = receiver().await;
    println!("webhook deliveries, PostgreSQL, {WORKERS} workers, receiver on 127.0.0.1 ({count} per side):");
    seed_hooks(store.clone(), &TenantId::new("base"), &url, count).await;
    let base = line_of(
        "hand-written claim, POST, mark done",
        "deliveries",
        deliver_pg_baseline(options, "base", url.clone()).await,
    );
    // Ours takes the baseline's events as well; they are few next to the webhooks and cheap.
    seed_hooks(store.clone(), &TenantId::new("acme"), &url, count).await;
    let ours = line_of(
        "nexus-crm Worker, 8 lanes (signed, guarded, recorded)",
        "deliveries",
        deliver_ours(store.clone(), 8).await,
    );
    println!("  ratio ours/baseline: {:.2}×", ours / base);
    store.close().await;
    sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE {database} WITH (FORCE)")))
        .execute(&mut admin)
        .await
        .expect("drops");
}

async fn webhooks_sqlite(count: usize) {
    let dir = tempfile::tempdir().expect("a directory");
    let path = dir.path().join("hooks.db");
    let store = AnyStore::Sqlite(SqliteStore::open(path.to_str().expect("UTF-8")).await.expect("opens"));
    let url = receiver().await;
    println!("webhook deliveries, SQLite file, {WORKERS} workers in one process ({count}):");
    seed_hooks(store.clone(), &TenantId::new("acme"), &url, count).await;
    line_of("nexus-crm Worker, 8 lanes", "deliveries", deliver_ours(store.clone(), 8).await);
    store.close().await;
}

fn line_of(label: &str, what: &str, (n, took): (usize, Duration)) -> f64 {
    let rate = n as f64 / took.as_secs_f64();
    println!("  {label:<54} {n:>6} {what} in {:>8.1} ms  = {rate:>8.0}/s", took.as_secs_f64() * 1000.0);
    rate
}

fn main() {
    let rt = Runtime::new().expect("a tokio runtime");
    let count = timers();
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let run = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    let pg = std::env::var("CRM_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty());
    if pg.is_none() {
        println!("PostgreSQL skipped: set CRM_TEST_POSTGRES_URL");
    }
    if run("timers") {
        rt.block_on(sqlite(count));
        if let Some(url) = &pg {
            rt.block_on(postgres(url, count));
        }
    }
    if run("webhooks") {
        rt.block_on(webhooks_sqlite(count / 2));
        if let Some(url) = &pg {
            rt.block_on(webhooks_postgres(url, count / 2));
        }
    }
}
