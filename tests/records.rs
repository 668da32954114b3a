//! Interactions, attachments, the timeline and reports (`nexus_crm::records`), on SQLite and
//! PostgreSQL: what a sales team logs and what its manager reads, checked against hand-computed
//! expectations.

mod support;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use nexus_crm::engine::eval::Actor;
use nexus_crm::engine::service::{Engine, NewContact};
use nexus_crm::records::reports::{parse_bound, parse_tz};
use nexus_crm::records::{
    self, AttachmentConfig, AttachmentStore, NewInteraction, Period, RecordsError, Report, ReportKind,
    ReportQuery,
};
use nexus_crm::store::{
    AnyStore, FunnelRow, InteractionKind, InteractionQuery, RecordStore, StageTimeRow, Subject, TenantId,
    TimelineItem, TimelineQuery, UserRow,
};
use sha2::{Digest, Sha256};
use support::db::{TestDb, each_backend};

const PIPELINE: &str = r#"{
  "id": "pipeline",
  "entities": {"lead": {
    "stages": ["new", {"name": "contacted", "sla": {"duration": "8 hours"}}, "qualified", "won", "lost"],
    "terminal": ["won", "lost"]
  }},
  "transitions": {
    "contact": {"from": "new", "to": "contacted"},
    "qualify": {"from": "contacted", "to": "qualified"},
    "win": {"from": "qualified", "to": "won"},
    "lose": {"from": ["contacted", "qualified"], "to": "lost"}
  }
}"#;

#[derive(Clone)]
struct Clock(Arc<Mutex<DateTime<Utc>>>);

impl Clock {
    fn at(text: &str) -> Self {
        Self(Arc::new(Mutex::new(time(text))))
    }
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock lock")
    }
    fn set(&self, text: &str) {
        *self.0.lock().expect("clock lock") = time(text);
    }
}

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).expect("an RFC 3339 time").to_utc()
}

fn acme() -> TenantId {
    TenantId::new("acme")
}

fn user(id: &str) -> Actor {
    Actor { id: id.into(), ..Actor::default() }
}

async fn engine(db: &TestDb, clock: &Clock) -> Engine<AnyStore> {
    let clock = clock.clone();
    let engine = Engine::new(db.store.clone()).with_clock(move || clock.now());
    engine.deploy(&acme(), PIPELINE).await.expect("the pipeline deploys");
    engine
}

fn note(subject: Subject, body: &str, at: &str) -> NewInteraction {
    NewInteraction {
        subject,
        kind: InteractionKind::Note,
        author: "ana".into(),
        occurred_at: Some(time(at)),
        body: body.into(),
        duration_seconds: None,
        outcome: None,
    }
}

#[tokio::test]
async fn interactions_are_logged_listed_newest_first_and_scoped_to_the_tenant() {
    each_backend(|db| async move {
        let clock = Clock::at("2026-02-02T09:00:00Z");
        let engine = engine(&db, &clock).await;
        let store = &db.store;
        let lead = engine
            .create_instance(&acme(), &user("ana"), "pipeline", "lead", &serde_json::json!({}))
            .await
            .unwrap();
        let contact = engine
            .create_contact(&acme(), NewContact { name: "Grace".into(), ..NewContact::default() })
            .await
            .unwrap();

        let call = NewInteraction {
            kind: InteractionKind::Call,
            duration_seconds: Some(900),
            outcome: Some("agreed on a demo".into()),
            ..note(Subject::Instance(lead.id.clone()), "Called about pricing", "2026-02-01T10:00:00Z")
        };
        let call = records::add_interaction(store, &acme(), call, clock.now()).await.unwrap();
        assert_eq!(
            (call.kind, call.duration_seconds, call.outcome.as_deref()),
            (InteractionKind::Call, Some(900), Some("agreed on a demo"))
        );
        assert_eq!(call.created_at, clock.now());
        for (i, at) in
            ["2026-02-01T11:00:00Z", "2026-02-01T12:00:00Z", "2026-02-01T09:00:00Z"].iter().enumerate()
        {
            records::add_interaction(
                store,
                &acme(),
                note(Subject::Instance(lead.id.clone()), &format!("note {i}"), at),
                clock.now(),
            )
            .await
            .unwrap();
        }
        records::add_interaction(
            store,
            &acme(),
            note(Subject::Contact(contact.id.clone()), "Met at the fair", "2026-02-01T08:00:00Z"),
            clock.now(),
        )
        .await
        .unwrap();

        // Newest first, two per page, every interaction exactly once.
        let mut bodies = Vec::new();
        let mut after = None;
        loop {
            let query = InteractionQuery { subject: Subject::Instance(lead.id.clone()), limit: 2, after };
            let page = records::interactions(store, &acme(), &query).await.unwrap();
            bodies.extend(page.items.iter().map(|i| i.body.clone()));
            after = page.next;
            if after.is_none() {
                break;
            }
        }
        assert_eq!(bodies, ["note 1", "note 0", "Called about pricing", "note 2"]);
        let on_contact = records::interactions(
            store,
            &acme(),
            &InteractionQuery { subject: Subject::Contact(contact.id.clone()), limit: 0, after: None },
        )
        .await
        .unwrap();
        assert_eq!(on_contact.items.iter().map(|i| i.body.as_str()).collect::<Vec<_>>(), ["Met at the fair"]);

        // Another tenant sees nothing and cannot log on what it does not own.
        let other = TenantId::new("globex");
        let refused = records::add_interaction(
            store,
            &other,
            note(Subject::Instance(lead.id.clone()), "hi", "2026-02-01T10:00:00Z"),
            clock.now(),
        )
        .await;
        assert!(matches!(refused, Err(RecordsError::UnknownInstance { .. })), "{refused:?}");
        assert!(store.interaction(&other, &call.id).await.unwrap().is_none());
        let blank = records::add_interaction(
            store,
            &acme(),
            note(Subject::Contact(contact.id.clone()), "  ", "2026-02-01T10:00:00Z"),
            clock.now(),
        )
        .await;
        assert_eq!(
            blank.map(|_| ()).map_err(|e| e.to_string()),
            Err("the body must not be empty".to_owned())
        );
    })
    .await;
}

#[tokio::test]
async fn the_timeline_merges_history_and_interactions_newest_first_in_pages() {
    each_backend(|db| async move {
        let clock = Clock::at("2026-02-02T09:00:00Z");
        let engine = engine(&db, &clock).await;
        let store = &db.store;
        let lead = engine
            .create_instance(&acme(), &user("ana"), "pipeline", "lead", &serde_json::json!({}))
            .await
            .unwrap();
        let subject = Subject::Instance(lead.id.clone());
        records::add_interaction(
            store,
            &acme(),
            note(subject.clone(), "before contact", "2026-02-02T09:30:00Z"),
            clock.now(),
        )
        .await
        .unwrap();
        // Logged at the very instant of the creation: interactions come first at one instant.
        records::add_interaction(
            store,
            &acme(),
            note(subject.clone(), "at creation", "2026-02-02T09:00:00Z"),
            clock.now(),
        )
        .await
        .unwrap();
        clock.set("2026-02-02T10:00:00Z");
        engine.fire(&acme(), &user("ana"), &lead.id, "contact", None).await.unwrap();
        records::add_interaction(
            store,
            &acme(),
            note(subject.clone(), "after contact", "2026-02-02T11:00:00Z"),
            clock.now(),
        )
        .await
        .unwrap();

        let describe = |item: &TimelineItem| match item {
            TimelineItem::History(h) => format!("{} {}", h.created_at.format("%H:%M"), h.event),
            TimelineItem::Interaction(i) => format!("{} note: {}", i.occurred_at.format("%H:%M"), i.body),
        };
        let whole = records::timeline(store, &acme(), &lead.id, &TimelineQuery::default()).await.unwrap();
        assert!(whole.next.is_none());
        let whole: Vec<String> = whole.items.iter().map(describe).collect();
        assert_eq!(
            whole,
            [
                "11:00 note: after contact",
                "10:00 transition_completed",
                "09:30 note: before contact",
                "09:00 note: at creation",
                "09:00 instance_created",
            ]
        );
        for limit in 1..=3 {
            let mut paged = Vec::new();
            let mut after = None;
            loop {
                let page = records::timeline(store, &acme(), &lead.id, &TimelineQuery { limit, after })
                    .await
                    .unwrap();
                assert!(page.items.len() <= limit as usize);
                paged.extend(page.items.iter().map(describe));
                after = page.next;
                if after.is_none() {
                    break;
                }
            }
            assert_eq!(paged, whole, "pages of {limit}");
        }
        let bad = records::timeline(
            store,
            &acme(),
            &lead.id,
            &TimelineQuery { limit: 1, after: Some(nexus_crm::store::Cursor::from_string("t.x.h.1")) },
        )
        .await;
        assert!(bad.is_err());
        let other =
            records::timeline(store, &TenantId::new("globex"), &lead.id, &TimelineQuery::default()).await;
        assert!(matches!(other, Err(RecordsError::UnknownInstance { .. })), "{other:?}");
    })
    .await;
}

/// An interaction to attach files to.
async fn interaction(db: &TestDb, clock: &Clock) -> String {
    let engine = engine(db, clock).await;
    let lead = engine
        .create_instance(&acme(), &user("ana"), "pipeline", "lead", &serde_json::json!({}))
        .await
        .unwrap();
    let row = records::add_interaction(
        &db.store,
        &acme(),
        note(Subject::Instance(lead.id), "proposal sent", "2026-02-02T09:00:00Z"),
        clock.now(),
    )
    .await
    .unwrap();
    row.id
}

fn upload<'a>(interaction_id: &'a str, file_name: &'a str) -> records::attachments::Upload<'a> {
    records::attachments::Upload { interaction_id, file_name, author: "ana" }
}

async fn download(db: &TestDb, config: &AttachmentConfig, id: &str) -> (String, Vec<u8>) {
    use futures_util::TryStreamExt as _;
    let (row, body) = records::open_attachment(&db.store, &acme(), config, id).await.unwrap();
    let chunks: Vec<bytes::Bytes> = body.try_collect().await.unwrap();
    (row.content_type, chunks.concat())
}

#[tokio::test]
async fn attachments_round_trip_through_a_directory_and_the_database() {
    each_backend(|db| async move {
        let clock = Clock::at("2026-02-02T09:00:00Z");
        let interaction = interaction(&db, &clock).await;
        let dir = tempfile::tempdir().unwrap();
        // Three chunks and a bit, so chunk boundaries are crossed.
        let mut pdf = b"%PDF-1.7\n".to_vec();
        pdf.extend((0..800_000u32).map(|i| (i % 251) as u8));
        for store in [AttachmentStore::Directory(dir.path().to_owned()), AttachmentStore::Database] {
            let config = AttachmentConfig { store, ..AttachmentConfig::directory(dir.path()) };
            let row = records::upload(
                &db.store,
                &acme(),
                &config,
                upload(&interaction, "offer.pdf"),
                &pdf[..],
                clock.now(),
            )
            .await
            .unwrap();
            assert_eq!((row.content_type.as_str(), row.size_bytes), ("application/pdf", pdf.len() as u64));
            assert_eq!(
                row.sha256,
                Sha256::digest(&pdf).iter().map(|b| format!("{b:02x}")).collect::<String>()
            );
            assert_eq!(download(&db, &config, &row.id).await, ("application/pdf".to_owned(), pdf.clone()));
            let listed = db.store.attachments(&acme(), &interaction).await.unwrap();
            assert!(listed.iter().any(|a| a.id == row.id));
            let other = records::open_attachment(&db.store, &TenantId::new("globex"), &config, &row.id).await;
            assert!(matches!(other, Err(RecordsError::UnknownAttachment { .. })));
        }
    })
    .await;
}

#[tokio::test]
async fn uploads_over_the_limit_or_of_a_refused_type_leave_nothing_behind() {
    each_backend(|db| async move {
        let clock = Clock::at("2026-02-02T09:00:00Z");
        let interaction = interaction(&db, &clock).await;
        let dir = tempfile::tempdir().unwrap();
        let text = "a line of plain text\n".repeat(30_000);
        for store in [AttachmentStore::Directory(dir.path().to_owned()), AttachmentStore::Database] {
            let config =
                AttachmentConfig { store, max_bytes: 500_000, ..AttachmentConfig::directory(dir.path()) };
            let big = records::upload(
                &db.store,
                &acme(),
                &config,
                upload(&interaction, "notes.txt"),
                text.as_bytes(),
                clock.now(),
            )
            .await;
            assert!(matches!(big, Err(RecordsError::TooLarge { limit: 500_000 })), "{big:?}");
            // A Windows executable named like a PDF: the name and any claimed type are ignored.
            let exe = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0 this program cannot be run in DOS mode";
            let spoofed = records::upload(
                &db.store,
                &acme(),
                &config,
                upload(&interaction, "invoice.pdf"),
                &exe[..],
                clock.now(),
            )
            .await;
            match spoofed {
                Err(RecordsError::UnsupportedType { detected, .. }) => {
                    assert_eq!(detected, "application/vnd.microsoft.portable-executable")
                }
                other => panic!("expected a refused type, got {other:?}"),
            }
            let exactly = records::upload(
                &db.store,
                &acme(),
                &config,
                upload(&interaction, "ok.txt"),
                &text.as_bytes()[..500_000],
                clock.now(),
            )
            .await;
            assert_eq!(exactly.unwrap().size_bytes, 500_000);
        }
        assert_eq!(db.store.attachments(&acme(), &interaction).await.unwrap().len(), 2);
        // Only the two accepted files remain on disk; no `.part` leftovers.
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let refused_chunks = db.store.attachment_chunk(&acme(), "missing", 0).await.unwrap();
        assert!(refused_chunks.is_none());
    })
    .await;
}

/// Three leads with hand-picked times; see each report test for what they add up to.
///
/// - A: created 03:00Z on 10 Jan (22:00 on the 9th in New York), assigned to ana; contacted at
///   05:00Z (midnight in New York), qualified at 15:00Z, won at 15:00Z on the 11th.
/// - B: created 06:00Z on 10 Jan, assigned to bob; contacted at 10:00Z, lost at 12:00Z.
/// - C: created 04:30Z on 10 Jan (23:30 on the 9th in New York), unassigned; contacted at
///   04:30Z on the 11th (23:30 on the 10th in New York).
///
/// The contacted stage has an 8-hour SLA: A breaches it (timers run at 14:00Z), B meets it, C's
/// is still running.
async fn seed(db: &TestDb) {
    let clock = Clock::at("2026-01-10T03:00:00Z");
    let engine = engine(db, &clock).await;
    let (t, mgr) = (acme(), user("manager"));
    let create = async |at: &str| {
        clock.set(at);
        engine.create_instance(&t, &mgr, "pipeline", "lead", &serde_json::json!({})).await.unwrap().id
    };
    let a = create("2026-01-10T03:00:00Z").await;
    engine.assign(&t, &mgr, &a, "ana", None).await.unwrap();
    let c = create("2026-01-10T04:30:00Z").await;
    let b = create("2026-01-10T06:00:00Z").await;
    engine.assign(&t, &mgr, &b, "bob", None).await.unwrap();
    for (at, id, transition) in [
        ("2026-01-10T05:00:00Z", &a, "contact"),
        ("2026-01-10T10:00:00Z", &b, "contact"),
        ("2026-01-10T12:00:00Z", &b, "lose"),
    ] {
        clock.set(at);
        engine.fire(&t, &mgr, id, transition, None).await.unwrap();
    }
    clock.set("2026-01-10T14:00:00Z");
    engine.run_due_timers("w", std::time::Duration::from_secs(60), 100).await.unwrap();
    for (at, id, transition) in [
        ("2026-01-10T15:00:00Z", &a, "qualify"),
        ("2026-01-11T04:30:00Z", &c, "contact"),
        ("2026-01-11T15:00:00Z", &a, "win"),
    ] {
        clock.set(at);
        engine.fire(&t, &mgr, id, transition, None).await.unwrap();
    }
}

async fn report(db: &TestDb, kind: ReportKind, tz: &str, period: Period) -> Report {
    let tz = parse_tz(tz).unwrap();
    let mut query = ReportQuery::new(
        kind,
        parse_bound("2026-01-09", tz).unwrap(),
        parse_bound("2026-01-12", tz).unwrap(),
    );
    query.tz = tz;
    query.period = period;
    records::run_report(&db.store, &acme(), &query).await.unwrap()
}

const H: i64 = 3_600_000_000;

#[tokio::test]
async fn reports_match_hand_computed_expectations() {
    each_backend(|db| async move {
        seed(&db).await;
        let funnel = |stage: &str, entered, moved_on, won, lost| FunnelRow {
            stage: stage.into(),
            entered,
            moved_on,
            won,
            lost,
        };
        assert_eq!(
            report(&db, ReportKind::Funnel, "UTC", Period::Day).await,
            Report::Funnel(vec![
                funnel("contacted", 3, 2, 1, 1),
                funnel("new", 3, 3, 1, 1),
                funnel("lost", 1, 0, 0, 1),
                funnel("qualified", 1, 1, 1, 0),
                funnel("won", 1, 0, 1, 0),
            ])
        );
        let by_user =
            |u: Option<&str>, moved_on, won, lost| UserRow { user: u.map(Into::into), moved_on, won, lost };
        assert_eq!(
            report(&db, ReportKind::ByUser, "UTC", Period::Day).await,
            Report::ByUser(vec![
                by_user(Some("ana"), 3, 1, 0),
                by_user(Some("bob"), 2, 0, 1),
                by_user(None, 1, 0, 0)
            ])
        );
        let times = |stage: &str, visits, median_us, p90_us| StageTimeRow {
            stage: stage.into(),
            visits,
            median_us,
            p90_us,
        };
        // new: 2 h, 4 h, 24 h (median the 2nd, p90 the 3rd); contacted: 2 h, 10 h; qualified: 24 h.
        assert_eq!(
            report(&db, ReportKind::TimeInStage, "UTC", Period::Day).await,
            Report::TimeInStage(vec![
                times("contacted", 2, 2 * H, 10 * H),
                times("new", 3, 4 * H, 24 * H),
                times("qualified", 1, 24 * H, 24 * H),
            ])
        );
        let Report::Sla(sla) = report(&db, ReportKind::Sla, "UTC", Period::Day).await else {
            panic!("an SLA report")
        };
        let contacted: Vec<_> =
            sla.iter().filter(|r| r.scope == "contacted").map(|r| (r.met, r.breached, r.open)).collect();
        assert_eq!(contacted, [(1, 1, 1)]);
    })
    .await;
}

#[tokio::test]
async fn periods_follow_the_time_zone_where_the_day_boundary_matters() {
    each_backend(|db| async move {
        seed(&db).await;
        let days = |report: Report| match report {
            Report::ByPeriod(rows) => rows
                .iter()
                .map(|r| {
                    (r.start.to_string(), r.counts.started, r.counts.moved_on, r.counts.won, r.counts.lost)
                })
                .collect::<Vec<_>>(),
            other => panic!("a by-period report, not {other:?}"),
        };
        // In New York, A and C were created on the 9th; A's first move (midnight) and C's move
        // (23:30 on the 10th) fall on the 10th.
        assert_eq!(
            days(report(&db, ReportKind::ByPeriod, "America/New_York", Period::Day).await),
            [
                ("2026-01-09".into(), 2, 0, 0, 0),
                ("2026-01-10".into(), 1, 5, 0, 1),
                ("2026-01-11".into(), 0, 1, 1, 0)
            ]
        );
        assert_eq!(
            days(report(&db, ReportKind::ByPeriod, "UTC", Period::Day).await),
            [
                ("2026-01-09".into(), 0, 0, 0, 0),
                ("2026-01-10".into(), 3, 4, 0, 1),
                ("2026-01-11".into(), 0, 2, 1, 0)
            ]
        );
        // 5 January 2026 is a Monday: one ISO week holds the whole window.
        assert_eq!(
            days(report(&db, ReportKind::ByPeriod, "America/New_York", Period::Week).await),
            [("2026-01-05".into(), 3, 6, 1, 1)]
        );
    })
    .await;
}

#[tokio::test]
async fn the_funnel_and_time_in_stage_render_as_svg() {
    // One backend is enough: the chart depends on the rows only.
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb {
        store: AnyStore::open(&dir.path().join("crm.db").display().to_string()).await.unwrap(),
        url: String::new(),
    };
    seed(&db).await;
    let funnel = report(&db, ReportKind::Funnel, "UTC", Period::Day).await.to_svg().unwrap();
    assert!(funnel.starts_with("<svg"), "{}", &funnel[..80.min(funnel.len())]);
    assert!(funnel.contains("\ncontacted\n</text>") && funnel.contains("\nmoved on\n</text>"));
    insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("records_funnel_svg", funnel);
    });
    let times = report(&db, ReportKind::TimeInStage, "UTC", Period::Day).await.to_svg().unwrap();
    assert!(times.contains("\n90th percentile\n</text>"));
    let sla = report(&db, ReportKind::Sla, "UTC", Period::Day).await.to_svg();
    assert_eq!(sla.map_err(|e| e.to_string()), Err("the sla report has no svg rendering".to_owned()));
    assert_eq!(
        report(&db, ReportKind::Funnel, "UTC", Period::Day)
            .await
            .to_csv()
            .lines()
            .take(2)
            .collect::<Vec<_>>(),
        ["stage,entered,moved_on,won,lost", "contacted,3,2,1,1"]
    );
}

// ---- the command line ----------------------------------------------------------------------------

/// Runs the built `crm` with `args`; (exit status, stdout, stderr).
fn crm(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_crm")).args(args).output().expect("crm runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[tokio::test]
async fn crm_report_prints_tables_csv_json_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("crm.db").display());
    let db = TestDb { store: AnyStore::open(&url).await.unwrap(), url: url.clone() };
    seed(&db).await;
    db.store.close().await;
    let window = ["--database", &url, "--tenant", "acme", "--from", "2026-01-09", "--to", "2026-01-12"];
    let run = |extra: &[&str]| crm(&[&["report"], extra, &window[..]].concat());

    let (status, table, _) = run(&["by-period", "--tz", "America/New_York"]);
    assert_eq!(status, 0);
    assert_eq!(
        table,
        "period      started  moved_on  won  lost\n\
         2026-01-09        2         0    0     0\n\
         2026-01-10        1         5    0     1\n\
         2026-01-11        0         1    1     0\n"
    );
    let (_, csv, _) = run(&["time-in-stage", "--format", "csv"]);
    assert_eq!(
        csv,
        "stage,visits,median_seconds,p90_seconds\ncontacted,2,7200,36000\nnew,3,14400,86400\nqualified,1,86400,86400\n"
    );
    let (_, table, _) = run(&["time-in-stage"]);
    assert_eq!(
        table,
        "stage      visits  median     p90\n\
         contacted       2   2h 0m  10h 0m\n\
         new             3   4h 0m   1d 0h\n\
         qualified       1   1d 0h   1d 0h\n"
    );
    let (_, json, _) = run(&["by-user", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["rows"][0], serde_json::json!({"user": "ana", "moved_on": 3, "won": 1, "lost": 0}));
    let (status, svg, _) = run(&["funnel", "--format", "svg"]);
    assert_eq!(status, 0);
    assert!(svg.starts_with("<svg"));
    let (status, _, err) = run(&["sla", "--format", "svg"]);
    assert_eq!((status, err.as_str()), (2, "error: the sla report has no svg rendering\n"));
    let (status, _, err) = crm(&["report", "funnel", "--database", &url, "--tz", "Mars/Olympus"]);
    assert_eq!(
        (status, err.as_str()),
        (2, "error: `Mars/Olympus` is not an IANA time zone (such as `Europe/Paris`)\n")
    );
}

#[tokio::test]
async fn crm_interaction_logs_lists_attaches_and_downloads() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("crm.db").display());
    let db = TestDb { store: AnyStore::open(&url).await.unwrap(), url: url.clone() };
    let clock = Clock::at("2026-02-02T09:00:00Z");
    let engine = engine(&db, &clock).await;
    let lead = engine
        .create_instance(&acme(), &user("ana"), "pipeline", "lead", &serde_json::json!({}))
        .await
        .unwrap();
    db.store.close().await;
    let store = ["--database", url.as_str(), "--tenant", "acme"];
    let run = |args: &[&str]| crm(&[args, &store[..]].concat());

    let (status, out, err) = run(&[
        "interaction",
        "add",
        "--instance",
        &lead.id,
        "--kind",
        "call",
        "--as",
        "ana",
        "--body",
        "Discussed the offer",
        "--at",
        "2026-02-02T10:00:00Z",
        "--duration",
        "600",
        "--outcome",
        "interested",
        "--format",
        "json",
    ]);
    assert_eq!(status, 0, "{err}");
    let call: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((call["kind"].as_str(), call["duration_seconds"].as_u64()), (Some("call"), Some(600)));
    let call_id = call["id"].as_str().unwrap().to_owned();

    let (_, list, _) = run(&["interaction", "list", "--instance", &lead.id]);
    assert!(list.starts_with("time                  kind  author  body                 id\n2026-02-02T10:00:00Z  call  ana     Discussed the offer  "), "{list}");
    let (_, timeline, _) = run(&["interaction", "timeline", &lead.id]);
    let first_columns: Vec<&str> =
        timeline.lines().map(|l| l.split("  ").next().unwrap_or_default()).collect();
    assert_eq!(first_columns, ["time", "2026-02-02T10:00:00Z", "2026-02-02T09:00:00Z"], "{timeline}");

    let file = dir.path().join("minutes.txt");
    std::fs::write(&file, "Minutes of the call\n".repeat(1000)).unwrap();
    let attachments = dir.path().join("files");
    let files = ["--attachments", attachments.to_str().unwrap()];
    let (status, out, err) = run(&[
        &["interaction", "attach", &call_id, file.to_str().unwrap(), "--as", "ana", "--format", "json"],
        &files[..],
    ]
    .concat());
    assert_eq!(status, 0, "{err}");
    let attached: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (attached["content_type"].as_str(), attached["file_name"].as_str(), attached["size_bytes"].as_u64()),
        (Some("text/plain"), Some("minutes.txt"), Some(20_000))
    );
    let copy = dir.path().join("copy.txt");
    let (status, _, err) = run(&[
        &["interaction", "download", attached["id"].as_str().unwrap(), "-o", copy.to_str().unwrap()],
        &files[..],
    ]
    .concat());
    assert_eq!(status, 0, "{err}");
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&file).unwrap());

    let (status, _, err) = run(&[
        &[
            "interaction",
            "attach",
            &call_id,
            file.to_str().unwrap(),
            "--as",
            "ana",
            "--max-attachment-size",
            "1000",
        ],
        &files[..],
    ]
    .concat());
    assert_eq!(status, 1);
    assert!(
        err.starts_with(
            "error: the attachment is larger than the limit of 1000 bytes [crm::records::too_large]"
        ),
        "{err}"
    );
    let (status, _, err) = run(&["interaction", "add", "--instance", "nope", "--as", "ana", "--body", "hi"]);
    assert_eq!((status, err.as_str()), (1, "error: no instance `nope` [crm::records::unknown_instance]\n"));
}
