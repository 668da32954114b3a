//! Webhooks and Slack for real, against receivers on 127.0.0.1 (nothing else is ever a target):
//! Standard Webhooks signatures checked by the receiver, status handling (2xx, redirects, 410,
//! 429/503 `Retry-After`, timeouts), every attempt recorded, dead letters replayed, and the SSRF
//! guard refusing every internal address without a packet reaching it.

mod support;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::Utc;
use nexus_crm::engine::eval::Actor;
use nexus_crm::engine::service::{ActionHandler, Delivered, Engine, RetryPolicy};
use nexus_crm::engine::worker::{Worker, WorkerConfig};
use nexus_crm::integrations::guard::{AddressPolicy, Allowed, StaticLookup};
use nexus_crm::integrations::webhook::{HttpConfig, verify};
use nexus_crm::integrations::{Registry, StoreLedger};
use nexus_crm::ir::ActionKind;
use nexus_crm::store::{
    AnyStore, AttemptOutcome, OutboxQuery, OutboxStatus, Store, StoredOutboxKind, TenantId,
};
use serde_json::{Value as Json, json};
use support::db::each_backend;

fn acme() -> TenantId {
    TenantId::new("acme")
}

fn ana() -> Actor {
    Actor { id: "ana".into(), ..Actor::default() }
}

/// A request the receiver saw.
#[derive(Clone, Debug)]
struct Hit {
    path: String,
    headers: HeaderMap,
    body: Bytes,
    /// Whether its signature verified under the receiver's key.
    verified: bool,
}

/// What the receiver answers to the `n`-th request (0-based) on `path`.
type Answer = Arc<dyn Fn(&str, usize) -> Response + Send + Sync>;

/// An axum server on 127.0.0.1 that records every request and checks its Standard Webhooks
/// signature with `key`; webhook ids it has seen are deduplicated the way a receiver would.
struct Receiver {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
    seen: Arc<Mutex<HashSet<String>>>,
}

impl Receiver {
    async fn start(key: Option<Vec<u8>>, answer: Answer) -> Self {
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let seen: Arc<Mutex<HashSet<String>>> = Arc::default();
        let (log, ids) = (hits.clone(), seen.clone());
        let app = axum::Router::new().fallback(move |request: Request| {
            let (log, ids, key, answer) = (log.clone(), ids.clone(), key.clone(), answer.clone());
            async move {
                let path = request.uri().path().to_owned();
                let headers = request.headers().clone();
                let body = axum::body::to_bytes(request.into_body(), 1 << 20).await.unwrap_or_default();
                let text =
                    |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                let verified = key.as_ref().is_some_and(|key| {
                    let timestamp = text("webhook-timestamp").parse().unwrap_or(0);
                    verify(&text("webhook-signature"), key, &text("webhook-id"), timestamp, &body)
                });
                let n = {
                    let mut log = log.lock().expect("log");
                    log.push(Hit { path: path.clone(), headers: headers.clone(), body, verified });
                    log.iter().filter(|h| h.path == path).count() - 1
                };
                if path == "/slow" {
                    // Longer than the client's per-attempt timeout.
                    tokio::time::sleep(Duration::from_millis(600)).await;
                }
                if key.is_some() && !verified {
                    return StatusCode::UNAUTHORIZED.into_response();
                }
                ids.lock().expect("ids").insert(text("webhook-id"));
                answer(&path, n)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a local port");
        let addr = listener.local_addr().expect("its address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, hits, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("log").clone()
    }

    fn count(&self) -> usize {
        self.hits.lock().expect("log").len()
    }
}

fn ok() -> Answer {
    Arc::new(|_, _| StatusCode::NO_CONTENT.into_response())
}

/// `whsec_` and 32 bytes of `byte`, and the key bytes.
fn secret(byte: u8) -> (String, Vec<u8>) {
    let key = vec![byte; 32];
    (format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(&key)), key)
}

/// Integrations allow-listing 127.0.0.1 (the receivers) and nothing else.
fn registry(store: &AnyStore, timeout: Duration) -> Registry {
    let http = HttpConfig {
        timeout,
        policy: Arc::new(AddressPolicy::with_allowed(vec![Allowed::parse("127.0.0.1").expect("an address")])),
        lookup: Arc::new(StaticLookup::default()),
    };
    Registry::standard(&http, Arc::new(StoreLedger(store.clone()))).expect("integrations")
}

/// A pipeline whose `send` transition posts to `url`, signed with the secret `hook_secret`.
fn definition(url: &str, max_retries: u32) -> String {
    json!({
        "id": "hooks",
        "entities": {"deal": {"stages": ["open", "sent"], "terminal": ["sent"]}},
        "dataSchema": {"subject": {"type": "string"}},
        "actions": {
            "notify_crm": {"type": "webhook", "url": url, "max_retries": max_retries,
                           "config": {"secret": "hook_secret"}}
        },
        "transitions": {"send": {"from": "open", "to": "sent", "actions": ["notify_crm"]}}
    })
    .to_string()
}

/// Deploys `definition(url)`, creates a deal and fires `send`: one webhook item enqueued.
async fn enqueue(engine: &Engine<AnyStore>, url: &str, max_retries: u32) -> String {
    engine.deploy(&acme(), &definition(url, max_retries)).await.expect("deploy");
    let deal = engine
        .create_instance(&acme(), &ana(), "hooks", "deal", &json!({"subject": "Renewal"}))
        .await
        .expect("create");
    engine.fire(&acme(), &ana(), &deal.id, "send", None).await.expect("send");
    deal.id
}

fn worker() -> Worker {
    Worker::new(WorkerConfig { id: "w1".into(), ..WorkerConfig::default() })
}

async fn webhook_items(store: &AnyStore) -> Vec<nexus_crm::store::OutboxRow> {
    let all = store.outbox_items(&acme(), &OutboxQuery::default()).await.expect("items");
    all.into_iter().filter(|i| i.kind == StoredOutboxKind::Action).collect()
}

#[tokio::test]
async fn a_webhook_is_signed_with_both_secrets_while_rotating_and_recorded() {
    each_backend(|db| async move {
        let (old, _) = secret(1);
        let (new, new_key) = secret(2);
        // The receiver already knows only the new secret; the sender signs with both.
        let receiver = Receiver::start(Some(new_key), ok()).await;
        db.store
            .put_secret(&acme(), "hook_secret", &format!("{new} {old}"), Utc::now())
            .await
            .expect("secret");
        let engine =
            Engine::new(db.store.clone()).with_action_handler(registry(&db.store, Duration::from_secs(5)));
        let deal = enqueue(&engine, &receiver.url("/hook"), 3).await;

        let pass = worker().run_once(&engine).await.expect("a pass");
        assert_eq!((pass.outbox.actions, pass.outbox.retried), (1, 0), "{pass:?}");
        let hits = receiver.hits();
        assert_eq!(hits.len(), 1, "{hits:?}");
        let hit = &hits[0];
        assert!(hit.verified, "the signature verifies: {:?}", hit.headers);
        let signature = hit.headers["webhook-signature"].to_str().expect("text");
        assert_eq!(signature.split(' ').count(), 2, "{signature}");
        assert!(signature.split(' ').all(|s| s.starts_with("v1,")), "{signature}");
        let body: Json = serde_json::from_slice(&hit.body).expect("JSON");
        assert_eq!(body["type"], "notify_crm");
        assert_eq!(body["data"]["instance"], json!(deal));
        assert_eq!(body["data"]["data"]["subject"], "Renewal");
        assert_eq!(hit.headers["content-type"], "application/json");

        // The webhook id is the outbox item's: the same on every attempt.
        let item = webhook_items(&db.store).await.pop().expect("the item");
        assert_eq!(hit.headers["webhook-id"].to_str().expect("text"), item.id);
        assert_eq!(item.status, OutboxStatus::Done);
        let attempts = db.store.outbox_attempts(&acme(), &item.id).await.expect("attempts");
        assert_eq!(attempts.len(), 1, "{attempts:?}");
        assert_eq!(
            (attempts[0].outcome, attempts[0].http_status, attempts[0].attempt),
            (AttemptOutcome::Delivered, Some(204), 1)
        );
        assert_eq!(attempts[0].worker, "w1");
    })
    .await;
}

#[tokio::test]
async fn a_missing_secret_dead_letters_without_revealing_anything() {
    each_backend(|db| async move {
        let receiver = Receiver::start(None, ok()).await;
        let engine =
            Engine::new(db.store.clone()).with_action_handler(registry(&db.store, Duration::from_secs(5)));
        enqueue(&engine, &receiver.url("/hook"), 3).await;
        let pass = worker().run_once(&engine).await.expect("a pass");
        assert_eq!(pass.outbox.dead.len(), 1, "{pass:?}");
        assert!(pass.outbox.dead[0].contains("secret `hook_secret` is not set"), "{pass:?}");
        assert_eq!(receiver.count(), 0, "nothing unsigned was sent");
    })
    .await;
}

#[tokio::test]
async fn failures_are_retried_with_backoff_then_dead_lettered_and_can_be_replayed() {
    each_backend(|db| async move {
        let (value, key) = secret(3);
        db.store.put_secret(&acme(), "hook_secret", &value, Utc::now()).await.expect("secret");
        // 500 twice, then 204.
        let receiver = Receiver::start(
            Some(key),
            Arc::new(|_, n| {
                if n < 2 {
                    StatusCode::INTERNAL_SERVER_ERROR.into_response()
                } else {
                    StatusCode::NO_CONTENT.into_response()
                }
            }),
        )
        .await;
        // Waits of 50 ms exactly (below a second the cap is also the floor): one attempt a pass.
        let policy = RetryPolicy { first: Duration::from_millis(50), cap: Duration::from_millis(50) };
        let engine = Engine::new(db.store.clone())
            .with_action_handler(registry(&db.store, Duration::from_secs(5)))
            .with_retry_policy(policy);
        enqueue(&engine, &receiver.url("/hook"), 1).await;

        let first = worker().run_once(&engine).await.expect("a pass");
        assert_eq!(first.outbox.retried, 1, "{first:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let second = worker().run_once(&engine).await.expect("a pass");
        assert_eq!(second.outbox.dead.len(), 1, "max_retries 1: two attempts, then dead: {second:?}");
        assert!(second.outbox.dead[0].contains("500 Internal Server Error"), "{second:?}");

        let item = webhook_items(&db.store).await.pop().expect("the item");
        assert_eq!((item.status, item.attempts), (OutboxStatus::Dead, 2));
        let attempts = db.store.outbox_attempts(&acme(), &item.id).await.expect("attempts");
        let outcomes: Vec<_> = attempts.iter().map(|a| (a.attempt, a.outcome, a.http_status)).collect();
        assert_eq!(outcomes, [(1, AttemptOutcome::Retry, Some(500)), (2, AttemptOutcome::Dead, Some(500))]);

        // An operator replays it: delivered on the next pass (the receiver now answers 204).
        db.store.replay_outbox(&acme(), &item.id, Utc::now()).await.expect("replay");
        let third = worker().run_once(&engine).await.expect("a pass");
        assert_eq!(third.outbox.actions, 1, "{third:?}");
        let item = db.store.outbox_item(&acme(), &item.id).await.expect("read").expect("the item");
        assert_eq!(item.status, OutboxStatus::Done);
        assert_eq!(db.store.outbox_attempts(&acme(), &item.id).await.expect("attempts").len(), 3);
        assert_eq!(receiver.count(), 3);
    })
    .await;
}

/// Builds the item a worker would hand over for a webhook action to `url`.
fn webhook_item(url: &str) -> Delivered {
    Delivered {
        tenant: acme(),
        id: nexus_crm::store::new_id(),
        instance_id: None,
        kind: StoredOutboxKind::Action,
        name: "probe".into(),
        payload: json!({}),
        attempt: 1,
        created_at: Utc::now(),
        action: Some(ActionKind::Webhook { url: url.to_owned(), config: None }),
        integrations: None,
        definition: None,
        data: None,
        stage: None,
    }
}

#[tokio::test]
async fn statuses_decide_what_happens_next() {
    let dir = tempfile::tempdir().expect("a directory");
    let store =
        AnyStore::open(&format!("sqlite:{}", dir.path().join("crm.db").display())).await.expect("store");
    let receiver = Receiver::start(
        None,
        Arc::new(|path, _| match path {
            "/gone" => StatusCode::GONE.into_response(),
            "/busy" => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "7")]).into_response(),
            "/down" => (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "120")]).into_response(),
            "/moved" => (StatusCode::TEMPORARY_REDIRECT, [("location", "/elsewhere")]).into_response(),
            _ => StatusCode::NO_CONTENT.into_response(),
        }),
    )
    .await;
    let registry = registry(&store, Duration::from_millis(300));

    let busy = registry.attempt(&webhook_item(&receiver.url("/busy"))).await.expect_err("429");
    assert_eq!(
        (busy.permanent, busy.http_status, busy.retry_after),
        (false, Some(429), Some(Duration::from_secs(7)))
    );
    let down = registry.attempt(&webhook_item(&receiver.url("/down"))).await.expect_err("503");
    assert_eq!((down.permanent, down.retry_after), (false, Some(Duration::from_secs(120))));

    // A redirect is a failure and is not followed, not even to the same receiver.
    let moved = registry.attempt(&webhook_item(&receiver.url("/moved"))).await.expect_err("307");
    assert_eq!((moved.permanent, moved.http_status), (false, Some(307)));
    assert!(moved.error.contains("redirects are not followed"), "{moved:?}");
    assert!(receiver.hits().iter().all(|h| h.path != "/elsewhere"));

    let slow = registry.attempt(&webhook_item(&receiver.url("/slow"))).await.expect_err("timeout");
    assert!(!slow.permanent && slow.error.contains("timed out"), "{slow:?}");

    // 410 disables the endpoint, recorded for operators; the next item is not even sent.
    let gone_url = receiver.url("/gone");
    let gone = registry.attempt(&webhook_item(&gone_url)).await.expect_err("410");
    assert_eq!((gone.permanent, gone.http_status), (true, Some(410)));
    let disabled = store.disabled_endpoints(&acme(), None).await.expect("endpoints");
    assert_eq!(disabled.iter().map(|e| e.url.as_str()).collect::<Vec<_>>(), [gone_url.as_str()]);
    let before = receiver.count();
    let again = registry.attempt(&webhook_item(&gone_url)).await.expect_err("disabled");
    assert!(again.permanent && again.error.contains("disabled"), "{again:?}");
    assert_eq!(receiver.count(), before);

    let fine = registry.attempt(&webhook_item(&receiver.url("/fine"))).await.expect("204");
    assert_eq!(fine.http_status, Some(204));
    store.close().await;
}

/// Every address the issue lists is refused by default, before any connection: the receiver
/// listening on 127.0.0.1 never sees a request. Allow-listed, the same receiver is reached.
#[tokio::test]
async fn the_ssrf_guard_refuses_internal_addresses_without_sending_a_packet() {
    let dir = tempfile::tempdir().expect("a directory");
    let store =
        AnyStore::open(&format!("sqlite:{}", dir.path().join("crm.db").display())).await.expect("store");
    let receiver = Receiver::start(None, ok()).await;
    let port = receiver.addr.port();
    let loopback: IpAddr = "127.0.0.1".parse().expect("an address");
    let lookup = StaticLookup(vec![
        ("localhost".into(), vec![loopback, "::1".parse().expect("an address")]),
        // A public-looking name whose DNS answers loopback (a rebinding attack's second answer).
        ("innocent.example".into(), vec![loopback]),
    ]);
    let guarded = |allow: Vec<&str>| {
        let http = HttpConfig {
            timeout: Duration::from_secs(5),
            policy: Arc::new(AddressPolicy::with_allowed(
                allow.into_iter().map(|a| Allowed::parse(a).expect("an entry")).collect(),
            )),
            lookup: Arc::new(lookup.clone()),
        };
        Registry::standard(&http, Arc::new(StoreLedger(store.clone()))).expect("integrations")
    };
    let closed = guarded(vec![]);
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://2130706433:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.1/".to_owned(),
        "http://0.0.0.0/".to_owned(),
        format!("http://innocent.example:{port}/"),
        "file:///etc/passwd".to_owned(),
    ] {
        let refused = closed.attempt(&webhook_item(&url)).await.expect_err("refused");
        assert!(refused.permanent, "{url}: {refused:?}");
        assert!(refused.error.contains("refused"), "{url}: {refused:?}");
    }
    assert_eq!(receiver.count(), 0, "no request reached the receiver");

    // Allow-listed by address or by name, the receiver is reached.
    let open = guarded(vec!["127.0.0.1", "innocent.example"]);
    for url in [format!("http://127.0.0.1:{port}/a"), format!("http://innocent.example:{port}/b")] {
        open.attempt(&webhook_item(&url)).await.expect("delivered");
    }
    assert_eq!(receiver.count(), 2);
    // A redirect from an allowed receiver to loopback is not followed.
    let redirecting = Receiver::start(
        None,
        Arc::new(move |_, _| {
            (StatusCode::FOUND, [("location", format!("http://localhost:{port}/stolen"))]).into_response()
        }),
    )
    .await;
    let moved = open.attempt(&webhook_item(&redirecting.url("/"))).await.expect_err("302");
    assert_eq!(moved.http_status, Some(302));
    assert!(receiver.hits().iter().all(|h| h.path != "/stolen"));
    store.close().await;
}

#[tokio::test]
async fn slack_messages_go_to_a_url_kept_as_a_secret() {
    each_backend(|db| async move {
        let receiver = Receiver::start(
            None,
            Arc::new(|path, _| {
                if path == "/services/T0/B0/x" {
                    StatusCode::OK.into_response()
                } else {
                    StatusCode::NOT_FOUND.into_response()
                }
            }),
        )
        .await;
        let url = receiver.url("/services/T0/B0/x");
        db.store.put_secret(&acme(), "slack:tell_sales", &url, Utc::now()).await.expect("secret");
        let definition = json!({
            "id": "slacky",
            "entities": {"deal": {"stages": ["open", "won"], "terminal": ["won"]}},
            "dataSchema": {"subject": {"type": "string"}},
            "actions": {
                "tell_sales": {"type": "slack", "channel": "#sales",
                               "message": "Deal {{data.subject}} is {{stage}}"},
                "tell_nobody": {"type": "slack", "max_retries": 0}
            },
            "transitions": {"win": {"from": "open", "to": "won", "actions": ["tell_sales", "tell_nobody"]}}
        });
        let engine =
            Engine::new(db.store.clone()).with_action_handler(registry(&db.store, Duration::from_secs(5)));
        engine.deploy(&acme(), &definition.to_string()).await.expect("deploy");
        let deal = engine
            .create_instance(&acme(), &ana(), "slacky", "deal", &json!({"subject": "ACME renewal"}))
            .await
            .expect("create");
        engine.fire(&acme(), &ana(), &deal.id, "win", None).await.expect("win");
        let pass = worker().run_once(&engine).await.expect("a pass");
        assert_eq!((pass.outbox.actions, pass.outbox.dead.len()), (1, 1), "{pass:?}");
        let hits = receiver.hits();
        assert_eq!(hits.len(), 1);
        let body: Json = serde_json::from_slice(&hits[0].body).expect("JSON");
        assert_eq!(body, json!({"text": "Deal ACME renewal is won", "channel": "#sales"}));
        assert!(
            pass.outbox.dead[0].contains("neither secret `slack:tell_nobody` nor `slack_webhook_url` is set"),
            "{pass:?}"
        );
        // The URL is a credential: no error or record shows it.
        let items = webhook_items(&db.store).await;
        for item in &items {
            for attempt in db.store.outbox_attempts(&acme(), &item.id).await.expect("attempts") {
                assert!(!attempt.error.unwrap_or_default().contains(&url));
            }
        }
        assert!(!format!("{pass:?}").contains(&url));
        // Guarded like webhooks: the receiver is reached only because 127.0.0.1 is allow-listed.
        assert!(receiver.seen.lock().expect("ids").len() <= 1);
    })
    .await;
}
