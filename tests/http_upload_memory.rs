//! A 1 GiB attachment through `POST /v1/interactions/{id}/attachments` stays within a few MB of
//! memory: the body is generated as a stream (never a buffer) and the server streams it to the
//! directory store. Memory, not time, is asserted: the test process's resident set is sampled
//! during the upload (`/proc/self/status`), and its peak (`VmHWM`) is compared with the resident
//! set before. Its own binary, so no other test's allocations share the process.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bytes::Bytes;
use chrono::Utc;
use nexus_crm::engine::eval::Actor;
use nexus_crm::engine::service::Engine;
use nexus_crm::http::{AppState, NewToken, ServerConfig, create_token, router};
use nexus_crm::records::{AttachmentConfig, NewInteraction};
use nexus_crm::store::{AnyStore, InteractionKind, Subject, TenantId};
use sha2::{Digest, Sha256};
use tower::ServiceExt as _;

const GIB: u64 = 1 << 30;
const CHUNK: usize = 64 * 1024;

/// `VmRSS` or `VmHWM` of this process, in bytes.
fn proc_status(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with(field)).expect("the field");
    let kib: u64 = line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("a number of kB");
    kib * 1024
}

/// The `i`-th chunk of the upload: a PDF header first, then bytes that vary with the position.
fn chunk(i: u64) -> Bytes {
    let mut bytes = vec![(i % 251) as u8; CHUNK];
    if i == 0 {
        bytes[..9].copy_from_slice(b"%PDF-1.7\n");
    }
    Bytes::from(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_gib_upload_streams_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let store = AnyStore::open(&dir.path().join("crm.db").display().to_string()).await.unwrap();
    let engine = Engine::new(store.clone());
    let acme = TenantId::new("acme");
    engine
        .deploy(&acme, r#"{"id": "p", "entities": {"lead": {"stages": ["new", "done"], "terminal": ["done"]}}, "transitions": {"finish": {"from": "new", "to": "done"}}}"#)
        .await
        .unwrap();
    let ana = Actor { id: "ana".into(), ..Actor::default() };
    let lead = engine.create_instance(&acme, &ana, "p", "lead", &serde_json::json!({})).await.unwrap();
    let note = NewInteraction {
        subject: Subject::Instance(lead.id),
        kind: InteractionKind::Email,
        author: "ana".into(),
        occurred_at: None,
        body: "the data room export".into(),
        duration_seconds: None,
        outcome: None,
    };
    let note = nexus_crm::records::add_interaction(&store, &acme, note, Utc::now()).await.unwrap();
    let files = dir.path().join("files");
    let attachments = AttachmentConfig { max_bytes: 2 * GIB, ..AttachmentConfig::directory(&files) };
    let config = ServerConfig {
        rate_limit: None,
        timeout: std::time::Duration::from_secs(3600),
        attachments,
        ..ServerConfig::default()
    };
    let app = router(AppState::new(engine, config));
    let new = NewToken {
        tenant: "acme".into(),
        user: "ana".into(),
        roles: vec![],
        permissions: vec![],
        label: None,
    };
    let token = create_token(&store, new, Utc::now()).await.unwrap().0;

    // The expected digest, computed chunk by chunk as the body will be produced.
    let chunks = GIB / CHUNK as u64;
    let mut expected = Sha256::new();
    for i in 0..chunks {
        expected.update(chunk(i));
    }
    let expected: String = expected.finalize().iter().map(|b| format!("{b:02x}")).collect();

    let before = proc_status("VmRSS:");
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(proc_status("VmRSS:"), Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        })
    };
    let body =
        Body::from_stream(futures_util::stream::iter((0..chunks).map(|i| Ok::<_, std::io::Error>(chunk(i)))));
    let request = Request::post(format!("/v1/interactions/{}/attachments?file_name=export.pdf", note.id))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/pdf")
        .body(body)
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&bytes));
    let row: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(row["size_bytes"].as_u64(), Some(GIB));
    assert_eq!(row["sha256"].as_str(), Some(expected.as_str()));
    assert_eq!(row["content_type"].as_str(), Some("application/pdf"));

    let growth = peak.load(Ordering::Relaxed).saturating_sub(before);
    let hwm_growth = proc_status("VmHWM:").saturating_sub(before);
    eprintln!(
        "resident set before {} MiB; sampled peak growth {} KiB; VmHWM over it {} KiB",
        before >> 20,
        growth >> 10,
        hwm_growth >> 10
    );
    assert!(growth < 64 << 20, "the resident set grew by {} MiB during a 1 GiB upload", growth >> 20);
    assert!(hwm_growth < 64 << 20, "the peak resident set is {} MiB over the start", hwm_growth >> 20);
    let stored = std::fs::read_dir(&files)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .count();
    assert_eq!(stored, 1);
}
