//! Interactions, attachments, timelines and reports over HTTP (`http::router`, no socket), on
//! SQLite and PostgreSQL: shapes, status codes, streaming downloads, tenant isolation.

mod support;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::Utc;
use nexus_crm::engine::eval::Actor;
use nexus_crm::engine::service::Engine;
use nexus_crm::http::{AppState, NewToken, ServerConfig, create_token, router};
use nexus_crm::records::{AttachmentConfig, AttachmentStore};
use nexus_crm::store::{AnyStore, TenantId};
use serde_json::{Value as Json, json};
use support::db::{TestDb, each_backend};
use tower::ServiceExt as _;

const PIPELINE: &str = r#"{
  "id": "pipeline",
  "entities": {"lead": {"stages": ["new", "contacted", "won", "lost"], "terminal": ["won", "lost"]}},
  "transitions": {"contact": {"from": "new", "to": "contacted"}, "win": {"from": "contacted", "to": "won"}}
}"#;

struct Api {
    router: Router,
    ana: String,
    manager: String,
    other: String,
    lead: String,
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    bytes: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Json {
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|_| Json::String(String::from_utf8_lossy(&self.bytes).into()))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn problem(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.json());
        assert_eq!(self.header("content-type"), Some("application/problem+json"));
        assert_eq!(self.json()["code"], code, "{}", self.json());
    }
}

async fn token(store: &AnyStore, tenant: &str, user: &str, permissions: &[&str]) -> String {
    let new = NewToken {
        tenant: tenant.into(),
        user: user.into(),
        roles: vec![],
        permissions: permissions.iter().map(|p| p.to_string()).collect(),
        label: None,
    };
    create_token(store, new, Utc::now()).await.expect("a token").0
}

async fn api(db: &TestDb, attachments: AttachmentConfig) -> Api {
    let store = db.store.clone();
    let engine = Engine::new(store.clone());
    let acme = TenantId::new("acme");
    engine.deploy(&acme, PIPELINE).await.unwrap();
    let lead = engine
        .create_instance(
            &acme,
            &Actor { id: "ana".into(), ..Actor::default() },
            "pipeline",
            "lead",
            &json!({}),
        )
        .await
        .unwrap();
    let config = ServerConfig { rate_limit: None, attachments, ..ServerConfig::default() };
    Api {
        router: router(AppState::new(engine, config)),
        ana: token(&store, "acme", "ana", &[]).await,
        manager: token(&store, "acme", "manager", &["reports:read"]).await,
        other: token(&store, "globex", "gus", &["reports:read"]).await,
        lead: lead.id,
    }
}

impl Api {
    async fn send(&self, method: Method, path: &str, token: &str, body: Body, content_type: &str) -> Answer {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec();
        Answer { status, headers, bytes }
    }
    async fn get(&self, path: &str, token: &str) -> Answer {
        self.send(Method::GET, path, token, Body::empty(), "application/json").await
    }
    async fn post(&self, path: &str, token: &str, body: Json) -> Answer {
        self.send(Method::POST, path, token, Body::from(body.to_string()), "application/json").await
    }
}

#[tokio::test]
async fn interactions_and_the_timeline_over_http() {
    each_backend(|db| async move {
        let dir = tempfile::tempdir().unwrap();
        let api = api(&db, AttachmentConfig::directory(dir.path())).await;
        let created = api
            .post(
                "/v1/interactions",
                &api.ana,
                json!({"instance_id": api.lead, "kind": "meeting", "body": "Kick-off", "occurred_at": "2030-01-01T10:00:00Z", "duration_seconds": 3600}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.json());
        let call = created.json();
        assert_eq!((call["author"].as_str(), call["kind"].as_str(), call["contact_id"].clone()), (Some("ana"), Some("meeting"), Json::Null));
        assert_eq!(call["occurred_at"], "2030-01-01T10:00:00.000000Z");

        let list = api.get(&format!("/v1/interactions?instance_id={}", api.lead), &api.ana).await.json();
        assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
        assert_eq!(list["next_cursor"], Json::Null);
        let one = api.get(&format!("/v1/interactions/{}", call["id"].as_str().unwrap()), &api.ana).await.json();
        assert_eq!(one["attachments"], json!([]));

        // The future meeting is the newest entry; then the creation.
        let timeline = api.get(&format!("/v1/instances/{}/timeline?limit=1", api.lead), &api.ana).await.json();
        assert_eq!((timeline["items"][0]["type"].as_str(), timeline["items"][0]["body"].as_str()), (Some("interaction"), Some("Kick-off")));
        let cursor = timeline["next_cursor"].as_str().expect("a second page").to_owned();
        let rest = api.get(&format!("/v1/instances/{}/timeline?cursor={cursor}", api.lead), &api.ana).await.json();
        assert_eq!((rest["items"][0]["type"].as_str(), rest["items"][0]["event"].as_str()), (Some("history"), Some("instance_created")));
        api.get(&format!("/v1/instances/{}/timeline?cursor=bm90LW91cnM", api.lead), &api.ana)
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY, "crm::store::cursor");

        // Neither subject, both, a blank body, another tenant's instance.
        api.post("/v1/interactions", &api.ana, json!({"kind": "note", "body": "x"}))
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY, "crm::records::invalid");
        api.post("/v1/interactions", &api.ana, json!({"instance_id": api.lead, "kind": "note", "body": " "}))
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY, "crm::records::invalid");
        api.post("/v1/interactions", &api.ana, json!({"instance_id": api.lead, "kind": "fax", "body": "x"}))
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY, "crm::http::invalid_body");
        api.post("/v1/interactions", &api.other, json!({"instance_id": api.lead, "kind": "note", "body": "x"}))
            .await
            .problem(StatusCode::NOT_FOUND, "crm::records::unknown_instance");
        api.get(&format!("/v1/interactions/{}", call["id"].as_str().unwrap()), &api.other)
            .await
            .problem(StatusCode::NOT_FOUND, "crm::records::unknown_interaction");
        api.get(&format!("/v1/instances/{}/timeline", api.lead), &api.other)
            .await
            .problem(StatusCode::NOT_FOUND, "crm::records::unknown_instance");
    })
    .await;
}

#[tokio::test]
async fn uploads_are_sniffed_limited_and_downloaded_as_attachments() {
    each_backend(|db| async move {
        let dir = tempfile::tempdir().unwrap();
        for store in [AttachmentStore::Directory(dir.path().to_owned()), AttachmentStore::Database] {
            let config =
                AttachmentConfig { store, max_bytes: 100_000, ..AttachmentConfig::directory(dir.path()) };
            let api = api(&db, config).await;
            let note = api
                .post(
                    "/v1/interactions",
                    &api.ana,
                    json!({"instance_id": api.lead, "kind": "email", "body": "Offer"}),
                )
                .await
                .json();
            let url = format!(
                "/v1/interactions/{}/attachments?file_name=Offre%20%C3%A9t%C3%A9.pdf",
                note["id"].as_str().unwrap()
            );
            let mut pdf = b"%PDF-1.7\n".to_vec();
            pdf.extend(std::iter::repeat_n(b'x', 60_000));
            // The client's Content-Type is not what decides.
            let stored = api.send(Method::POST, &url, &api.ana, Body::from(pdf.clone()), "text/plain").await;
            assert_eq!(stored.status, StatusCode::CREATED, "{}", stored.json());
            let stored = stored.json();
            assert_eq!(
                (stored["content_type"].as_str(), stored["size_bytes"].as_u64()),
                (Some("application/pdf"), Some(60_009))
            );
            let got = api.get(&format!("/v1/attachments/{}", stored["id"].as_str().unwrap()), &api.ana).await;
            assert_eq!(got.status, StatusCode::OK);
            assert_eq!(got.header("content-type"), Some("application/pdf"));
            assert_eq!(
                got.header("content-disposition"),
                Some("attachment; filename=\"Offre _t_.pdf\"; filename*=UTF-8''Offre%20%C3%A9t%C3%A9.pdf")
            );
            assert_eq!(got.header("x-content-type-options"), Some("nosniff"));
            assert_eq!(got.bytes, pdf);
            api.get(&format!("/v1/attachments/{}", stored["id"].as_str().unwrap()), &api.other)
                .await
                .problem(StatusCode::NOT_FOUND, "crm::records::unknown_attachment");

            // Over the limit: declared up front, or only found while streaming (no length).
            let big = vec![b'a'; 100_001];
            api.send(Method::POST, &url, &api.ana, Body::from(big.clone()), "text/plain")
                .await
                .problem(StatusCode::PAYLOAD_TOO_LARGE, "crm::records::too_large");
            let chunks = big
                .chunks(10_000)
                .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>();
            api.send(
                Method::POST,
                &url,
                &api.ana,
                Body::from_stream(futures_util::stream::iter(chunks)),
                "text/plain",
            )
            .await
            .problem(StatusCode::PAYLOAD_TOO_LARGE, "crm::records::too_large");
            // An executable claiming to be a PDF.
            let exe =
                b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0This program cannot be run in DOS mode".to_vec();
            api.send(Method::POST, &url, &api.ana, Body::from(exe), "application/pdf")
                .await
                .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "crm::records::unsupported_type");
            let one =
                api.get(&format!("/v1/interactions/{}", note["id"].as_str().unwrap()), &api.ana).await.json();
            assert_eq!(
                one["attachments"].as_array().map(Vec::len),
                Some(1),
                "only the accepted upload is listed"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn reports_answer_json_csv_and_svg_to_those_allowed() {
    each_backend(|db| async move {
        let dir = tempfile::tempdir().unwrap();
        let api = api(&db, AttachmentConfig::directory(dir.path())).await;
        let path = "/v1/reports/funnel?from=2000-01-01&to=2100-01-01";
        let funnel = api.get(path, &api.manager).await;
        assert_eq!(funnel.status, StatusCode::OK, "{}", funnel.json());
        assert_eq!(funnel.json(), json!({"report": "funnel", "rows": [{"stage": "new", "entered": 1, "moved_on": 0, "won": 0, "lost": 0}]}));
        let csv = api.get(&format!("{path}&format=csv"), &api.manager).await;
        assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
        assert_eq!(String::from_utf8(csv.bytes).unwrap(), "stage,entered,moved_on,won,lost\nnew,1,0,0,0\n");
        let svg = api.get(&format!("{path}&format=svg"), &api.manager).await;
        assert_eq!(svg.header("content-type"), Some("image/svg+xml"));
        assert!(svg.bytes.starts_with(b"<svg"));
        api.get("/v1/reports/sla?format=svg", &api.manager).await.problem(StatusCode::UNPROCESSABLE_ENTITY, "crm::records::no_rendering");
        api.get("/v1/reports/funnel?tz=Mars/Olympus", &api.manager).await.problem(StatusCode::UNPROCESSABLE_ENTITY, "crm::records::invalid");
        api.get("/v1/reports/funnel?from=2026-02-01&to=2026-01-01", &api.manager).await.problem(StatusCode::UNPROCESSABLE_ENTITY, "crm::records::invalid");
        api.get("/v1/reports/funnel", &api.ana).await.problem(StatusCode::FORBIDDEN, "crm::http::forbidden");
        let by_period = api.get("/v1/reports/by-period?from=2000-01-01&to=2100-01-01", &api.manager).await;
        by_period.problem(StatusCode::UNPROCESSABLE_ENTITY, "crm::records::invalid");
        assert_eq!(api.get("/v1/reports/nothing", &api.manager).await.status, StatusCode::BAD_REQUEST);
        // Another tenant's report is empty.
        assert_eq!(api.get(path, &api.other).await.json(), json!({"report": "funnel", "rows": []}));
    })
    .await;
}
