//! The persisted engine: `Engine::fire` on a SQLite file (WAL) and on PostgreSQL against a
//! hand-written sqlx baseline doing the same writes, a persisted 10-branch parallel join, and the
//! dashboard (`pending_for_user`) over 100,000 instances against a plain indexed `SELECT`.
//!
//! Targets (issue #3): persisted transitions ≥ 0.5× the baseline and ≥ 2,000/s; a 10-branch join
//! ≤ 5 ms; a dashboard page of 50 out of 100,000 instances ≤ 20 ms.
//!
//! PostgreSQL runs when `CRM_TEST_POSTGRES_URL` is set (e.g. `postgres://postgres@127.0.0.1:5432/test`):
//! a fresh database `crm_bench_<uuid>` is created on that server and dropped at the end.

#[path = "support/mod.rs"]
mod support;

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use criterion::Criterion;
use nexus_crm::engine::eval::Actor;
use nexus_crm::engine::service::Engine;
use nexus_crm::store::{Direction, PendingQuery, PgStore, SortKey, SqliteStore, Store, TenantId};
use serde_json::{Value as Json, json};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Connection, Row};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

/// Two stages and a manual transition each way, so one instance can be fired forever.
const TOGGLE: &str = r#"{"id": "toggle", "entities": {"item": {"stages": ["a", "b"]}},
 "transitions": {"ab": {"from": "a", "to": "b", "trigger": "manual"},
                 "ba": {"from": "b", "to": "a", "trigger": "manual"}}}"#;

/// Instances fired round-robin: history grows by one row per instance per lap, not on one instance.
const INSTANCES: usize = 500;

fn ten_branches() -> String {
    let branches: Vec<String> = (0..10).map(|i| format!(r#""b{i}": {{"label": "sign-off {i}"}}"#)).collect();
    format!(
        r#"{{"id": "ten", "entities": {{"launch": {{"stages": ["ready", "live", "done"]}}}},
            "gateways": {{"go": {{"type": "parallel", "from": "ready", "join": "live", "branches": {{{}}}}}}},
            "transitions": {{"finish": {{"from": "live", "to": "done", "trigger": "manual"}}}}}}"#,
        branches.join(", ")
    )
}

fn actor() -> Actor {
    Actor { id: "ana".into(), ..Actor::default() }
}

fn sqlite_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// One toggling instance: where it is and at which version.
struct Slot {
    id: String,
    version: u64,
    at_b: bool,
}

/// The instances fired round-robin.
struct Slots {
    slots: Vec<Slot>,
    next: usize,
    /// Completed rounds over all instances.
    laps: usize,
}

impl Slots {
    fn next(&mut self) -> &mut Slot {
        let i = self.next;
        self.next = (i + 1) % self.slots.len();
        if self.next == 0 {
            self.laps += 1;
        }
        &mut self.slots[i]
    }
}

async fn create_slots<S: Store>(engine: &Engine<S>, tenant: &TenantId) -> Slots {
    engine.deploy(tenant, TOGGLE).await.expect("deploys");
    let mut slots = Vec::with_capacity(INSTANCES);
    for _ in 0..INSTANCES {
        let view =
            engine.create_instance(tenant, &actor(), "toggle", "item", &Json::Null).await.expect("creates");
        assert_eq!(view.stage, "a");
        slots.push(Slot { id: view.id, version: view.version, at_b: false });
    }
    Slots { slots, next: 0, laps: 0 }
}

async fn fire_ours<S: Store>(engine: &Engine<S>, tenant: &TenantId, actor: &Actor, slots: &mut Slots) {
    let slot = slots.next();
    let name = if slot.at_b { "ba" } else { "ab" };
    let view = engine.fire(tenant, actor, &slot.id, name, Some(slot.version)).await.expect("fires");
    slot.version = view.version;
    slot.at_b = !slot.at_b;
}

/// Our fire without the state the engine keeps: two engines on the same store take turns by lap,
/// so each finds its kept state two versions behind the expected one and loads the instance.
async fn fire_cold<S: Store>(engines: [&Engine<S>; 2], tenant: &TenantId, actor: &Actor, slots: &mut Slots) {
    let engine = engines[slots.laps % 2];
    fire_ours(engine, tenant, actor, slots).await
}

/// The hand-written baseline on SQLite: `BEGIN IMMEDIATE`, the instance update under its version
/// check, one history row (numbered like the store does), commit.
async fn fire_sqlite_baseline(pool: &SqlitePool, tenant: &str, slots: &mut Slots) {
    let slot = slots.next();
    let (from, to, name) = if slot.at_b { ("b", "a", "ba") } else { ("a", "b", "ab") };
    let now = sqlite_time(Utc::now());
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.expect("begins");
    let updated = sqlx::query(
        "UPDATE crm_instances SET state = $1, stage_entered_at = $2, updated_at = $2, version = version + 1 \
         WHERE tenant_id = $3 AND id = $4 AND version = $5",
    )
    .bind(to)
    .bind(now.clone())
    .bind(tenant.to_owned())
    .bind(slot.id.clone())
    .bind(slot.version as i64)
    .execute(&mut *tx)
    .await
    .expect("updates")
    .rows_affected();
    assert_eq!(updated, 1, "the version check holds");
    sqlx::query(
        "INSERT INTO crm_history (tenant_id, instance_id, created_at, seq, event, before, after, actor_id, payload) \
         SELECT $1, $2, $3, COALESCE(MAX(seq), 0) + 1, 'transition_completed', $4, $5, 'ana', $6 FROM crm_history \
         WHERE tenant_id = $1 AND instance_id = $2",
    )
    .bind(tenant.to_owned())
    .bind(slot.id.clone())
    .bind(now)
    .bind(json!({"stage": from}).to_string())
    .bind(json!({"stage": to}).to_string())
    .bind(json!({"transition": name}).to_string())
    .execute(&mut *tx)
    .await
    .expect("appends");
    tx.commit().await.expect("commits");
    slot.version += 1;
    slot.at_b = !slot.at_b;
}

/// The same on PostgreSQL (a plain `BEGIN`: the row lock serialises writers of one instance).
async fn fire_pg_baseline(pool: &PgPool, tenant: &str, slots: &mut Slots) {
    let slot = slots.next();
    let (from, to, name) = if slot.at_b { ("b", "a", "ba") } else { ("a", "b", "ab") };
    let now = Utc::now();
    let mut tx = pool.begin().await.expect("begins");
    let updated = sqlx::query(
        "UPDATE crm_instances SET state = $1, stage_entered_at = $2, updated_at = $2, version = version + 1 \
         WHERE tenant_id = $3 AND id = $4 AND version = $5",
    )
    .bind(to)
    .bind(now)
    .bind(tenant.to_owned())
    .bind(slot.id.clone())
    .bind(slot.version as i64)
    .execute(&mut *tx)
    .await
    .expect("updates")
    .rows_affected();
    assert_eq!(updated, 1, "the version check holds");
    sqlx::query(
        "INSERT INTO crm_history (tenant_id, instance_id, created_at, seq, event, before, after, actor_id, payload) \
         SELECT $1, $2, $3, COALESCE(MAX(seq), 0) + 1, 'transition_completed', $4, $5, 'ana', $6 FROM crm_history \
         WHERE tenant_id = $1 AND instance_id = $2",
    )
    .bind(tenant.to_owned())
    .bind(slot.id.clone())
    .bind(now)
    .bind(json!({"stage": from}))
    .bind(json!({"stage": to}))
    .bind(json!({"transition": name}))
    .execute(&mut *tx)
    .await
    .expect("appends");
    tx.commit().await.expect("commits");
    slot.version += 1;
    slot.at_b = !slot.at_b;
}

/// A raw pool on a SQLite file, with the store's settings (WAL, synchronous = NORMAL).
async fn sqlite_pool(path: &std::path::Path, connections: u32) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    SqlitePoolOptions::new().max_connections(connections).connect_with(options).await.expect("opens")
}

/// Persisted transitions: our engine and the baseline, each on its own freshly migrated store.
struct Transitions<S: Store> {
    engine: Engine<S>,
    /// A second engine on the same store, for [`fire_cold`].
    other: Engine<S>,
    tenant: TenantId,
    actor: Actor,
    ours: Slots,
    base: Slots,
}

struct SqliteTransitions {
    t: Transitions<SqliteStore>,
    pool: SqlitePool,
    _dir: tempfile::TempDir,
}

async fn sqlite_transitions() -> SqliteTransitions {
    let dir = tempfile::tempdir().expect("temp dir");
    let tenant = TenantId::new("acme");
    let engine = Engine::new(
        SqliteStore::open(dir.path().join("ours.db").to_str().expect("utf-8")).await.expect("opens"),
    );
    let ours = create_slots(&engine, &tenant).await;
    // The baseline's file: the same schema, instances created the same way, then a raw pool.
    let base_path = dir.path().join("baseline.db");
    let base_store = SqliteStore::open(base_path.to_str().expect("utf-8")).await.expect("opens");
    let base = create_slots(&Engine::new(base_store.clone()), &tenant).await;
    base_store.close().await;
    let pool = sqlite_pool(&base_path, 1).await;
    let other = Engine::new(engine.store().clone());
    SqliteTransitions {
        t: Transitions { engine, other, tenant, actor: actor(), ours, base },
        pool,
        _dir: dir,
    }
}

struct PgTransitions {
    t: Transitions<PgStore>,
    pool: PgPool,
    admin_url: String,
    database: String,
}

async fn pg_transitions(admin_url: &str) -> PgTransitions {
    let database = format!("crm_bench_{}", uuid::Uuid::now_v7().simple());
    let mut admin = sqlx::PgConnection::connect(admin_url).await.expect("connects to PostgreSQL");
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut admin)
        .await
        .expect("creates");
    admin.close().await.expect("closes");
    let options = PgConnectOptions::from_str(admin_url).expect("a URL").database(&database);
    let store = PgStore::connect_with(options.clone()).await.expect("connects");
    let engine = Engine::new(store.clone());
    let ours_tenant = TenantId::new("acme");
    let ours = create_slots(&engine, &ours_tenant).await;
    // The baseline: another tenant of the same database (row locks, no interference).
    let base = create_slots(&engine, &TenantId::new("base")).await;
    let pool = PgPoolOptions::new().max_connections(1).connect_with(options).await.expect("connects");
    PgTransitions {
        t: Transitions { other: Engine::new(store), engine, tenant: ours_tenant, actor: actor(), ours, base },
        pool,
        admin_url: admin_url.to_owned(),
        database,
    }
}

impl PgTransitions {
    async fn drop_database(self) {
        self.pool.close().await;
        self.t.engine.store().close().await;
        let mut admin = sqlx::PgConnection::connect(&self.admin_url).await.expect("connects");
        sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE {} WITH (FORCE)", self.database)))
            .execute(&mut admin)
            .await
            .expect("drops");
        admin.close().await.expect("closes");
    }
}

/// The 10-branch join on a SQLite file.
struct Join {
    engine: Engine<SqliteStore>,
    tenant: TenantId,
    actor: Actor,
    _dir: tempfile::TempDir,
}

async fn join_fixture() -> Join {
    let dir = tempfile::tempdir().expect("temp dir");
    let tenant = TenantId::new("acme");
    let engine = Engine::new(
        SqliteStore::open(dir.path().join("join.db").to_str().expect("utf-8")).await.expect("opens"),
    );
    engine.deploy(&tenant, &ten_branches()).await.expect("deploys");
    Join { engine, tenant, actor: actor(), _dir: dir }
}

impl Join {
    async fn new_launch(&self) -> String {
        self.engine
            .create_instance(&self.tenant, &self.actor, "ten", "launch", &Json::Null)
            .await
            .expect("creates")
            .id
    }

    /// Fires the gateway and completes the 10 branches; the last completion joins into `live`.
    async fn run(&self, id: &str) {
        let forked = self.engine.fire(&self.tenant, &self.actor, id, "go", None).await.expect("forks");
        assert_eq!(forked.tokens.len(), 10);
        let mut last = forked;
        for b in 0..10 {
            last = self
                .engine
                .complete_branch(&self.tenant, &self.actor, id, "go", &format!("b{b}"))
                .await
                .expect("completes");
        }
        assert_eq!((last.stage.as_str(), last.tokens.len()), ("live", 0), "joined");
    }

    async fn timed_run(&self) -> Duration {
        let id = self.new_launch().await;
        let started = Instant::now();
        self.run(&id).await;
        started.elapsed()
    }
}

/// 100,000 instances on a SQLite file, seeded with raw multi-row inserts in one transaction.
struct Dashboard {
    store: SqliteStore,
    pool: SqlitePool,
    tenant: TenantId,
    _dir: tempfile::TempDir,
}

const DASHBOARD_INSTANCES: usize = 100_000;
const HEAVY: &str = "heavy";
const LIGHT: &str = "light";

/// Who instance `i` is assigned to: every 5th to `heavy` (20,000), three to `light`, the rest
/// spread over 1,000 users; every 10th instance is completed.
fn assignee(i: usize) -> String {
    if i.is_multiple_of(5) {
        HEAVY.to_owned()
    } else if i % 33_333 == 1 {
        LIGHT.to_owned()
    } else {
        format!("user{}", i % 1000)
    }
}

async fn dashboard_fixture() -> (Dashboard, Duration) {
    let dir = tempfile::tempdir().expect("temp dir");
    let tenant = TenantId::new("acme");
    let path = dir.path().join("dashboard.db");
    let store = SqliteStore::open(path.to_str().expect("utf-8")).await.expect("opens");
    Engine::new(store.clone()).deploy(&tenant, TOGGLE).await.expect("deploys");
    let pool = sqlite_pool(&path, 4).await;
    let started = Instant::now();
    let base = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("a valid date");
    const ROWS: usize = 500; // 4 parameters a row: 2,000 a statement
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.expect("begins");
    for chunk in 0..DASHBOARD_INSTANCES / ROWS {
        let mut sql = String::from(
            "INSERT INTO crm_instances (tenant_id, id, definition_id, definition_version, entity, state, status, \
             data, assignee, version, stage_entered_at, started_at, updated_at) VALUES ",
        );
        for r in 0..ROWS {
            let p = r * 4;
            if r > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "('acme', ${}, 'toggle', 1, 'item', 'a', ${}, '{{}}', ${}, 1, ${}, ${}, ${})",
                p + 1,
                p + 2,
                p + 3,
                p + 4,
                p + 4,
                p + 4
            ));
        }
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for r in 0..ROWS {
            let i = chunk * ROWS + r;
            // Instance i last changed i seconds after the base, in a shuffled-ish order.
            let at = base + chrono::TimeDelta::seconds(((i * 7_919) % DASHBOARD_INSTANCES) as i64);
            query = query
                .bind(format!("inst-{i:06}"))
                .bind(if i % 10 == 9 { "completed" } else { "active" })
                .bind(assignee(i))
                .bind(sqlite_time(at));
        }
        query.execute(&mut *tx).await.expect("inserts");
    }
    tx.commit().await.expect("commits");
    sqlx::query("ANALYZE").execute(&pool).await.expect("analyses");
    let seeded = started.elapsed();
    (Dashboard { store, pool, tenant, _dir: dir }, seeded)
}

impl Dashboard {
    fn query() -> PendingQuery {
        PendingQuery {
            sort: SortKey::UpdatedAt,
            direction: Direction::Asc,
            limit: 50,
            ..PendingQuery::default()
        }
    }

    async fn ours(&self, user: &str) -> usize {
        self.store.pending_for_user(&self.tenant, user, &Self::query()).await.expect("pages").items.len()
    }

    async fn baseline(&self, user: &str) -> usize {
        let rows = sqlx::query(
            "SELECT * FROM crm_instances WHERE tenant_id = $1 AND assignee = $2 AND status = 'active' \
             ORDER BY updated_at, id LIMIT 50",
        )
        .bind(self.tenant.as_str().to_owned())
        .bind(user.to_owned())
        .fetch_all(&self.pool)
        .await
        .expect("selects");
        rows.iter().filter(|r| !r.get::<String, _>("id").is_empty()).count()
    }
}

fn bench_transitions<S: Store>(
    c: &mut Criterion,
    rt: &Runtime,
    group: &str,
    t: &mut Transitions<S>,
    mut baseline: impl FnMut(&mut Slots),
) {
    let mut g = c.benchmark_group(group);
    g.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    let Transitions { engine, tenant, actor, ours, base, .. } = t;
    g.bench_function("nexus-crm Engine::fire", |b| {
        b.iter(|| rt.block_on(fire_ours(engine, tenant, actor, ours)))
    });
    g.bench_function("hand-written sqlx (update + history row)", |b| b.iter(|| baseline(base)));
    g.finish();
}

const ROUNDS: usize = 5;

fn per_second(d: Duration) -> f64 {
    1.0 / d.as_secs_f64()
}

fn summary_transitions<S: Store>(
    title: &str,
    rt: &Runtime,
    t: &mut Transitions<S>,
    mut baseline: impl FnMut(&mut Slots),
) {
    let Transitions { engine, other, tenant, actor, ours, base } = t;
    // Throughput: commits counted over wall-clock time (WAL checkpoints and other stalls
    // included, which a median of batches would hide), in alternating rounds so that a burst of
    // load from elsewhere does not land on one side only.
    let (mut our_n, mut our_t, mut their_n, mut their_t) = (0u32, Duration::ZERO, 0u32, Duration::ZERO);
    for _ in 0..ROUNDS {
        let round = Duration::from_millis(700);
        let started = Instant::now();
        while started.elapsed() < round {
            rt.block_on(fire_ours(engine, tenant, actor, ours));
            our_n += 1;
        }
        our_t += started.elapsed();
        let started = Instant::now();
        while started.elapsed() < round {
            baseline(base);
            their_n += 1;
        }
        their_t += started.elapsed();
    }
    // The same fires without kept state, in rounds of their own after the comparison.
    let (mut cold_n, mut cold_t) = (0u32, Duration::ZERO);
    for _ in 0..2 {
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(700) {
            rt.block_on(fire_cold([&*engine, &*other], tenant, actor, ours));
            cold_n += 1;
        }
        cold_t += started.elapsed();
    }
    let (our, theirs, cold) = (our_t / our_n, their_t / their_n, cold_t / cold_n);
    println!("\n== {title} ({ROUNDS} alternating rounds of 0.7 s each, {our_n} + {their_n} commits) ==");
    println!(
        "nexus-crm Engine::fire       : {:>10}  = {:>7.0}/s   (target ≥ 2,000/s)",
        support::human(our),
        per_second(our)
    );
    println!(
        "hand-written sqlx baseline   : {:>10}  = {:>7.0}/s",
        support::human(theirs),
        per_second(theirs)
    );
    println!(
        "ratio ours / baseline (rate) : {:>9.2}×   (target ≥ 0.5×)",
        theirs.as_secs_f64() / our.as_secs_f64()
    );
    println!(
        "ours, nothing kept (load)    : {:>10}  = {:>7.0}/s   ratio {:.2}× ({cold_n} commits)",
        support::human(cold),
        per_second(cold),
        theirs.as_secs_f64() / cold.as_secs_f64()
    );
}

/// Clients writing at once in the concurrent PostgreSQL rounds (the store's pool holds 10).
const CONCURRENCY: usize = 8;

/// Deals the instances out to `CONCURRENCY` clients, so no two clients fire the same instance.
fn deal(slots: &mut Slots) -> Vec<Slots> {
    let mut parts: Vec<Vec<Slot>> = (0..CONCURRENCY).map(|_| Vec::new()).collect();
    for (i, slot) in std::mem::take(&mut slots.slots).into_iter().enumerate() {
        parts[i % CONCURRENCY].push(slot);
    }
    parts.into_iter().map(|slots| Slots { slots, next: 0, laps: 0 }).collect()
}

/// Commits per second of `CONCURRENCY` clients, each running `fire` on its own instances.
async fn concurrent_rate<F, Fut>(parts: &mut Vec<Slots>, fire: F) -> f64
where
    F: Fn(Slots) -> Fut,
    Fut: std::future::Future<Output = (Slots, u64)> + Send + 'static,
{
    let started = Instant::now();
    let mut clients = JoinSet::new();
    for part in parts.drain(..) {
        clients.spawn(fire(part));
    }
    let mut commits = 0;
    for (part, n) in clients.join_all().await {
        parts.push(part);
        commits += n;
    }
    commits as f64 / started.elapsed().as_secs_f64()
}

/// Throughput with concurrent clients on PostgreSQL, where commits of different connections share
/// a WAL flush (group commit), so the rate is no longer one fsync per commit.
fn summary_concurrent_pg(rt: &Runtime, pg: &mut PgTransitions) {
    let engine = Arc::new(Engine::new(pg.t.engine.store().clone()));
    let (tenant, actor) = (pg.t.tenant.clone(), pg.t.actor.clone());
    let options = PgConnectOptions::from_str(&pg.admin_url).expect("a URL").database(&pg.database);
    let pool = rt
        .block_on(PgPoolOptions::new().max_connections(CONCURRENCY as u32).connect_with(options))
        .expect("connects");
    let (mut ours, mut base) = (deal(&mut pg.t.ours), deal(&mut pg.t.base));
    let window = Duration::from_millis(1500);
    let (mut our_rates, mut their_rates) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        our_rates.push(rt.block_on(concurrent_rate(&mut ours, |mut part| {
            let (engine, tenant, actor) = (engine.clone(), tenant.clone(), actor.clone());
            async move {
                let (started, mut n) = (Instant::now(), 0);
                while started.elapsed() < window {
                    fire_ours(&*engine, &tenant, &actor, &mut part).await;
                    n += 1;
                }
                (part, n)
            }
        })));
        their_rates.push(rt.block_on(concurrent_rate(&mut base, |mut part| {
            let pool = pool.clone();
            async move {
                let (started, mut n) = (Instant::now(), 0);
                while started.elapsed() < window {
                    fire_pg_baseline(&pool, "base", &mut part).await;
                    n += 1;
                }
                (part, n)
            }
        })));
    }
    rt.block_on(pool.close());
    let mean = |rates: &[f64]| rates.iter().sum::<f64>() / rates.len() as f64;
    let (our, theirs) = (mean(&our_rates), mean(&their_rates));
    println!(
        "\n== persisted transitions, PostgreSQL, {CONCURRENCY} concurrent clients on their own instances (3 alternating rounds of 1.5 s) =="
    );
    println!("nexus-crm Engine::fire       : {our:>7.0}/s   (target ≥ 2,000/s)");
    println!("hand-written sqlx baseline   : {theirs:>7.0}/s");
    println!("ratio ours / baseline (rate) : {:>9.2}×   (target ≥ 0.5×)", our / theirs);
}

fn main() {
    let rt = Runtime::new().expect("a tokio runtime");
    let mut c = Criterion::default().configure_from_args();

    // 1. SQLite file.
    let mut sqlite = rt.block_on(sqlite_transitions());
    {
        let pool = sqlite.pool.clone();
        bench_transitions(&mut c, &rt, "persisted-fire-sqlite-wal", &mut sqlite.t, |s| {
            rt.block_on(fire_sqlite_baseline(&pool, "acme", s))
        });
    }

    // 2. PostgreSQL.
    let pg_url = std::env::var("CRM_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty());
    let mut pg = pg_url.as_deref().map(|url| rt.block_on(pg_transitions(url)));
    if let Some(pg) = pg.as_mut() {
        let pool = pg.pool.clone();
        bench_transitions(&mut c, &rt, "persisted-fire-postgres", &mut pg.t, |s| {
            rt.block_on(fire_pg_baseline(&pool, "base", s))
        });
    }

    // 3. The 10-branch join.
    let join = rt.block_on(join_fixture());
    {
        let mut g = c.benchmark_group("persisted-10-branch-join-sqlite");
        g.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
        g.bench_function("fire gateway + 10 complete_branch", |b| {
            b.iter_custom(|iters| (0..iters).map(|_| rt.block_on(join.timed_run())).sum())
        });
        g.finish();
    }

    // 4. The dashboard.
    let (dashboard, seeded) = rt.block_on(dashboard_fixture());
    assert_eq!(rt.block_on(dashboard.ours(HEAVY)), 50);
    assert_eq!(rt.block_on(dashboard.baseline(HEAVY)), 50);
    assert_eq!(rt.block_on(dashboard.ours(LIGHT)), 3);
    assert_eq!(rt.block_on(dashboard.baseline(LIGHT)), 3);
    {
        let mut g = c.benchmark_group("dashboard-100k-sqlite");
        g.sample_size(30).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
        for user in [HEAVY, LIGHT] {
            g.bench_function(format!("nexus-crm pending_for_user ({user})"), |b| {
                b.iter(|| rt.block_on(dashboard.ours(user)))
            });
            g.bench_function(format!("plain SELECT … LIMIT 50 ({user})"), |b| {
                b.iter(|| rt.block_on(dashboard.baseline(user)))
            });
        }
        g.finish();
    }

    // Summaries.
    {
        let pool = sqlite.pool.clone();
        summary_transitions(
            "persisted transitions, SQLite file (WAL, synchronous=NORMAL)",
            &rt,
            &mut sqlite.t,
            |s| rt.block_on(fire_sqlite_baseline(&pool, "acme", s)),
        );
    }
    {
        // What one fire of ours writes, averaged over every fire so far (creation rows excluded).
        let path = sqlite._dir.path().join("ours.db");
        let (fires, history, outbox): (i64, i64, i64) = rt.block_on(async {
            let pool = sqlite_pool(&path, 1).await;
            let row = sqlx::query(
                "SELECT (SELECT SUM(version - 1) FROM crm_instances), \
                 (SELECT COUNT(*) FROM crm_history WHERE event <> 'instance_created'), \
                 (SELECT COUNT(*) FROM crm_outbox WHERE name <> 'instance_created')",
            )
            .fetch_one(&pool)
            .await
            .expect("counts");
            pool.close().await;
            (row.get(0), row.get(1), row.get(2))
        });
        println!(
            "rows per fire of ours        : {:.2} history, {:.2} outbox ({fires} fires)",
            history as f64 / fires as f64,
            outbox as f64 / fires as f64
        );
    }
    match pg {
        Some(mut pg) => {
            let pool = pg.pool.clone();
            summary_transitions("persisted transitions, PostgreSQL (localhost)", &rt, &mut pg.t, |s| {
                rt.block_on(fire_pg_baseline(&pool, "base", s))
            });
            summary_concurrent_pg(&rt, &mut pg);
            rt.block_on(pg.drop_database());
        }
        None => {
            println!("\n== persisted transitions, PostgreSQL ==\nskipped (CRM_TEST_POSTGRES_URL is not set)")
        }
    }

    let mut runs: Vec<Duration> = (0..60).map(|_| rt.block_on(join.timed_run())).collect();
    runs.sort();
    let median = runs[runs.len() / 2];
    println!(
        "\n== persisted 10-branch parallel join, SQLite file: fire the gateway, complete 10 branches =="
    );
    println!("total, median of {} runs     : {:>10}   (target ≤ 5 ms)", runs.len(), support::human(median));
    println!("per command (11 commands)    : {:>10}", support::human(median / 11));
    println!(
        "fastest / slowest run        : {:>10} / {}",
        support::human(runs[0]),
        support::human(runs[runs.len() - 1])
    );

    println!(
        "\n== dashboard page of 50, {} instances on a SQLite file (seeded in {}) ==",
        DASHBOARD_INSTANCES,
        support::human(seeded)
    );
    for (user, items) in [(HEAVY, "~18,000 active items"), (LIGHT, "3 items")] {
        let ours = support::time_per_call(Duration::from_millis(1500), || rt.block_on(dashboard.ours(user)));
        let base =
            support::time_per_call(Duration::from_millis(1500), || rt.block_on(dashboard.baseline(user)));
        println!("user `{user}` ({items}):");
        println!("  nexus-crm pending_for_user : {:>10}   (target ≤ 20 ms)", support::human(ours));
        println!("  plain SELECT … LIMIT 50    : {:>10}", support::human(base));
        println!("  ratio ours / SELECT        : {:>9.1}×", ours.as_secs_f64() / base.as_secs_f64());
    }

    c.final_summary();
}
