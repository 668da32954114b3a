//! Reports and attachment uploads (issue #13), on an SQLite file:
//!
//! - each report over 100,000 instances and 1,000,000 history rows (a year of a sales pipeline,
//!   written through the `crm_stage_visits` triggers), beside the baseline of counting the
//!   window's visits in one indexed scan;
//! - uploading 256 MiB to the directory store (`records::upload`: sniff, SHA-256, limit, write,
//!   fsync, rename), beside the baseline of a plain copy of the same stream into a file.
//!
//! Targets: each report ≤ 200 ms; uploads ≥ 100 MB/s.

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use nexus_crm::engine::service::Engine;
use nexus_crm::records::attachments::Upload;
use nexus_crm::records::reports::parse_tz;
use nexus_crm::records::{self, AttachmentConfig, NewInteraction, Period, ReportKind, ReportQuery};
use nexus_crm::store::{AnyStore, InteractionKind, Subject, TenantId};
use sqlx::{Connection, Executor, Row, SqliteConnection};
use tokio::io::AsyncReadExt as _;

/// 100,000 unless `CRM_BENCH_INSTANCES` says otherwise (a quick run of the same code).
fn instances() -> u64 {
    std::env::var("CRM_BENCH_INSTANCES").ok().and_then(|n| n.parse().ok()).unwrap_or(100_000)
}
const PIPELINE: &str = r#"{
  "id": "sales",
  "entities": {"lead": {"stages": ["new", "contacted", "qualified", "proposal", "won", "lost"], "terminal": ["won", "lost"]}},
  "transitions": {
    "contact": {"from": "new", "to": "contacted"}, "qualify": {"from": "contacted", "to": "qualified"},
    "propose": {"from": "qualified", "to": "proposal"}, "win": {"from": "proposal", "to": "won"},
    "lose": {"from": "proposal", "to": "lost"}
  }
}"#;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
}

/// 100,000 finished leads and ten history entries each: created, assigned, four stage moves with
/// a data update between them, and a reassignment; spread over 2025 (instance `i` starts
/// `i × 5` minutes into the year, each step some hours after the last).
async fn seed(url: &str) -> Duration {
    let n = instances();
    let mut conn = SqliteConnection::connect(url).await.expect("a connection");
    let start = Instant::now();
    let ts = |expr: &str| {
        format!("strftime('%Y-%m-%dT%H:%M:%S', '2025-01-01', '+' || ({expr}) || ' seconds') || '.000000Z'")
    };
    let instances = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) \
         INSERT INTO crm_instances (tenant_id, id, definition_id, definition_version, entity, state, status, data, \
           assignee, version, stage_entered_at, started_at, updated_at) \
         SELECT 'bench', printf('i%06d', i), 'sales', 1, 'lead', CASE WHEN i % 3 = 0 THEN 'lost' ELSE 'won' END, \
           'completed', '{{}}', 'user' || (i % 20), 10, {t}, {t}, {t} FROM n",
        t = ts("i * 300")
    );
    conn.execute(sqlx::AssertSqlSafe(instances)).await.expect("instances");
    // seq: 1 created, 2 assigned, 3 → contacted, 4 data, 5 → qualified, 6 data, 7 → proposal,
    // 8 data, 9 reassigned, 10 → won or lost.
    let history = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}), \
         s(seq, stage, prev) AS (VALUES (1, 'new', NULL), (2, NULL, NULL), (3, 'contacted', 'new'), (4, NULL, NULL), \
           (5, 'qualified', 'contacted'), (6, NULL, NULL), (7, 'proposal', 'qualified'), (8, NULL, NULL), \
           (9, NULL, NULL), (10, 'end', 'proposal')) \
         INSERT INTO crm_history (tenant_id, instance_id, seq, event, before, after, actor_id, created_at) \
         SELECT 'bench', printf('i%06d', i), seq, \
           CASE WHEN seq = 1 THEN 'instance_created' WHEN seq IN (2, 9) THEN 'assigned' \
                WHEN stage IS NULL THEN 'data_updated' ELSE 'transition_completed' END, \
           CASE WHEN prev IS NOT NULL THEN json_object('stage', prev) END, \
           CASE WHEN seq IN (2, 9) THEN json_object('assignee', 'user' || ((i + seq) % 20)) \
                WHEN stage = 'end' THEN json_object('stage', CASE WHEN i % 3 = 0 THEN 'lost' ELSE 'won' END) \
                WHEN stage IS NOT NULL THEN json_object('stage', stage) ELSE json_object('data', json_object('n', seq)) END, \
           'manager', {t} FROM n, s ORDER BY i, seq",
        t = ts("i * 300 + (seq - 1) * ((i % 7) + 1) * 3600")
    );
    conn.execute(sqlx::AssertSqlSafe(history)).await.expect("history");
    let elapsed = start.elapsed();
    let visits: i64 = conn
        .fetch_one("SELECT COUNT(*) FROM crm_stage_visits WHERE tenant_id = 'bench'")
        .await
        .expect("counted")
        .get(0);
    assert_eq!(visits, 5 * n as i64, "five stage visits per instance");
    let _ = conn.close().await;
    elapsed
}

fn reports_summary() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite:{}", dir.path().join("reports.db").display());
    let store = rt.block_on(AnyStore::open(&url)).expect("a store");
    let tenant = TenantId::new("bench");
    rt.block_on(Engine::new(store.clone()).deploy(&tenant, PIPELINE)).expect("deployed");
    let seeded = rt.block_on(seed(&url));
    let time = |s: &str| DateTime::parse_from_rfc3339(s).expect("a time").to_utc();
    let (from, to): (DateTime<Utc>, DateTime<Utc>) =
        (time("2025-01-01T00:00:00Z"), time("2026-01-01T00:00:00Z"));

    println!("\n== reports over {} instances and {} history rows, SQLite ==", instances(), instances() * 10);
    println!("seeding (triggers keep crm_stage_visits): {}", support::human(seeded));
    for (kind, period) in [
        (ReportKind::Funnel, Period::Day),
        (ReportKind::ByUser, Period::Day),
        (ReportKind::ByPeriod, Period::Day),
        (ReportKind::ByPeriod, Period::Month),
        (ReportKind::TimeInStage, Period::Day),
        (ReportKind::Sla, Period::Day),
    ] {
        let mut query = ReportQuery::new(kind, from, to);
        query.tz = parse_tz("Europe/Paris").expect("a zone");
        query.period = period;
        let report = rt.block_on(records::run_report(&store, &tenant, &query)).expect("a report");
        let took = support::time_per_call(Duration::from_secs(3), || {
            rt.block_on(records::run_report(&store, &tenant, &query)).expect("a report")
        });
        let name = match kind {
            ReportKind::ByPeriod => format!("by-period ({})", period.as_str()),
            other => other.as_str().to_owned(),
        };
        println!(
            "{name:<22}: {:>10}   (target ≤ 200 ms; {} rows)",
            support::human(took),
            report.to_json()["rows"].as_array().map_or(0, Vec::len)
        );
    }
    let baseline = support::time_per_call(Duration::from_secs(3), || {
        rt.block_on(async {
            let mut conn = SqliteConnection::connect(&url).await.expect("a connection");
            let row = conn
                .fetch_one(
                    "SELECT COUNT(*), SUM(duration_us) FROM crm_stage_visits WHERE tenant_id = 'bench' \
                     AND entered_at >= '2025-01-01T00:00:00.000000Z' AND entered_at < '2026-01-01T00:00:00.000000Z'",
                )
                .await
                .expect("a count");
            let _ = conn.close().await;
            row.get::<i64, _>(0)
        })
    });
    println!("{:<22}: {:>10}", "count window (baseline)", support::human(baseline));
    rt.block_on(store.close());
}

const UPLOAD: u64 = 256 << 20;

/// The upload: a PDF header and then `UPLOAD` bytes in all.
fn pdf_stream() -> impl tokio::io::AsyncRead + Unpin + Send {
    (&b"%PDF-1.7\n"[..]).chain(tokio::io::repeat(b'x')).take(UPLOAD)
}

fn upload_summary() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite:{}", dir.path().join("upload.db").display());
    let store = rt.block_on(AnyStore::open(&url)).expect("a store");
    let tenant = TenantId::new("bench");
    let engine = Engine::new(store.clone());
    rt.block_on(engine.deploy(&tenant, PIPELINE)).expect("deployed");
    let actor = nexus_crm::engine::eval::Actor { id: "ana".into(), ..Default::default() };
    let lead = rt
        .block_on(engine.create_instance(&tenant, &actor, "sales", "lead", &serde_json::json!({})))
        .expect("a lead");
    let note = NewInteraction {
        subject: Subject::Instance(lead.id),
        kind: InteractionKind::Email,
        author: "ana".into(),
        occurred_at: None,
        body: "export".into(),
        duration_seconds: None,
        outcome: None,
    };
    let note = rt.block_on(records::add_interaction(&store, &tenant, note, Utc::now())).expect("a note");
    let config =
        AttachmentConfig { max_bytes: 1 << 40, ..AttachmentConfig::directory(dir.path().join("files")) };
    let ours = support::time_per_call(Duration::from_secs(5), || {
        let upload = Upload { interaction_id: &note.id, file_name: "export.pdf", author: "ana" };
        rt.block_on(records::upload(&store, &tenant, &config, upload, pdf_stream(), Utc::now()))
            .expect("stored")
    });
    let copy_to = dir.path().join("copy.bin");
    let plain = support::time_per_call(Duration::from_secs(5), || {
        rt.block_on(async {
            let mut file = tokio::fs::File::create(&copy_to).await.expect("a file");
            tokio::io::copy(&mut pdf_stream(), &mut file).await.expect("copied");
            file.sync_all().await.expect("synced");
        })
    });
    let rate = |d: Duration| UPLOAD as f64 / 1e6 / d.as_secs_f64();
    println!("\n== attachment upload, {} MiB to the directory store ==", UPLOAD >> 20);
    println!(
        "records::upload                : {:>10}  {:>7.0} MB/s   (target ≥ 100 MB/s)",
        support::human(ours),
        rate(ours)
    );
    println!("plain copy + fsync (baseline)  : {:>10}  {:>7.0} MB/s", support::human(plain), rate(plain));
    rt.block_on(store.close());
}

fn main() {
    reports_summary();
    upload_summary();
}
