//! The HTTP API through `http::router(state)`, without a socket, on SQLite and PostgreSQL:
//! every route's success, each error kind as a problem document, keyset pages, `If-Match`
//! conflicts, idempotent replay, tokens and roles, and tenant isolation by attack.

mod support;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use chrono::Utc;
use nexus_crm::engine::service::Engine;
use nexus_crm::http::{AppState, NewToken, RateLimit, ServerConfig, create_token, router};
use nexus_crm::store::{AnyStore, Store};
use serde_json::{Value as Json, json};
use support::db::{TestDb, each_backend};
use tower::ServiceExt as _;

/// A definition exercising guards and approvals, small enough to read in one go.
const DEALS: &str = r#"{
  "id": "deals",
  "dataSchema": { "amount": { "type": "number", "min": 0 } },
  "entities": { "deal": { "stages": ["draft", "review", "approved", "rejected"], "terminal": ["approved", "rejected"] } },
  "transitions": {
    "submit": { "from": "draft", "to": "review", "guards": [{ "type": "role_check", "role": "rep" }] },
    "sign_off": { "from": "review", "to": "approved", "approval": { "users": ["boss"], "strategy": "first" } },
    "drop": { "from": ["draft", "review"], "to": "rejected" }
  }
}"#;

fn shipped(name: &str) -> String {
    let path = format!("{}/definitions/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A router on `db` with a few tokens: `admin` (tenant acme, may deploy), `rep` (acme, role
/// `rep`), `boss` (acme), `other` (tenant globex, may deploy).
struct Api {
    router: Router,
    store: AnyStore,
    admin: String,
    rep: String,
    boss: String,
    other: String,
}

async fn token(store: &AnyStore, tenant: &str, user: &str, roles: &[&str], permissions: &[&str]) -> String {
    let new = NewToken {
        tenant: tenant.into(),
        user: user.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        permissions: permissions.iter().map(|p| p.to_string()).collect(),
        label: None,
    };
    create_token(store, new, Utc::now()).await.expect("a token").0
}

async fn api_with(db: &TestDb, config: ServerConfig) -> Api {
    let store = db.store.clone();
    let state = AppState::new(Engine::new(store.clone()), config);
    let admin = token(&store, "acme", "ana", &[], &["definitions:deploy", "dashboard:read_any"]).await;
    let rep = token(&store, "acme", "rick", &["rep"], &[]).await;
    let boss = token(&store, "acme", "boss", &[], &[]).await;
    let other = token(&store, "globex", "gus", &["rep"], &["definitions:deploy"]).await;
    Api { router: router(state), store, admin, rep, boss, other }
}

async fn api(db: &TestDb) -> Api {
    api_with(db, ServerConfig { rate_limit: None, ..ServerConfig::default() }).await
}

/// One response: status, headers, and the body as JSON (or a JSON string for other text).
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Json,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem document with this status and code; returns the body.
    fn problem(&self, status: StatusCode, code: &str) -> &Json {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "body: {}", self.body);
        assert_eq!(self.body["code"], code, "body: {}", self.body);
        assert_eq!(self.body["status"], status.as_u16());
        assert!(self.body["title"].is_string() && self.body["detail"].is_string(), "{}", self.body);
        &self.body
    }
}

impl Api {
    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.expect("the router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("a body");
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Json::String(String::from_utf8_lossy(&bytes).into_owned()));
        Answer { status, headers, body }
    }

    async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<&str>) -> Answer {
        self.call_with(method, path, token, body, &[]).await
    }

    async fn call_with(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = match body {
            Some(text) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(text.to_owned())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).expect("a request")).await
    }

    async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None).await
    }

    async fn post(&self, path: &str, token: &str, body: Json) -> Answer {
        self.call(Method::POST, path, Some(token), Some(&body.to_string())).await
    }

    async fn deploy(&self, source: &str) {
        let answer = self.call(Method::POST, "/v1/definitions", Some(&self.admin), Some(source)).await;
        assert!(answer.status.is_success(), "deploy: {}", answer.body);
    }

    async fn create(&self, token: &str, definition: &str, entity: &str, data: Json) -> Json {
        let answer = self
            .post("/v1/instances", token, json!({"definition": definition, "entity": entity, "data": data}))
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.body
    }
}

#[tokio::test]
async fn health_and_readiness_need_no_token() {
    each_backend(|db| async move {
        let api = api(&db).await;
        let health = api.call(Method::GET, "/healthz", None, None).await;
        assert_eq!((health.status, health.body["status"].clone()), (StatusCode::OK, json!("ok")));
        let ready = api.call(Method::GET, "/readyz", None, None).await;
        assert_eq!((ready.status, ready.body["status"].clone()), (StatusCode::OK, json!("ready")));
        assert!(api.call(Method::GET, "/healthz", None, None).await.header("x-request-id").is_some());
    })
    .await;
}

#[tokio::test]
async fn a_missing_unknown_or_revoked_token_is_refused_with_the_same_401() {
    each_backend(|db| async move {
        let api = api(&db).await;
        let missing = api.call(Method::GET, "/v1/definitions", None, None).await;
        let body = missing.problem(StatusCode::UNAUTHORIZED, "crm::http::unauthorized").clone();
        let unknown = api.get("/v1/definitions", "crm_made_up").await;
        assert_eq!(unknown.body, body);
        assert_eq!(api.get("/v1/definitions", &api.rep).await.status, StatusCode::OK);

        let rows = api.store.api_tokens(None).await.expect("tokens");
        let rick = rows.iter().find(|r| r.user_id == "rick").expect("rick's token");
        assert!(rows.iter().all(|r| !r.token_hash.contains(&api.rep)), "only hashes are stored");
        assert!(api.store.revoke_api_token(&rick.id, Utc::now()).await.expect("revoke"));
        let revoked = api.get("/v1/definitions", &api.rep).await;
        assert_eq!((revoked.status, revoked.body.clone()), (StatusCode::UNAUTHORIZED, body));
    })
    .await;
}

#[tokio::test]
async fn definitions_validate_deploy_list_versions_and_source() {
    each_backend(|db| async move {
        let api = api(&db).await;
        let source = shipped("sales-pipeline");

        let valid = api.call(Method::POST, "/v1/definitions/validate", Some(&api.rep), Some(&source)).await;
        assert_eq!((valid.status, valid.body["valid"].clone()), (StatusCode::OK, json!(true)));
        let broken = r#"{"id": "x", "entities": {"lead": {"stages": ["new"]}}, "transitions": {"go": {"from": "new", "to": "nowhere"}}}"#;
        let invalid = api.call(Method::POST, "/v1/definitions/validate", Some(&api.rep), Some(broken)).await;
        assert_eq!(invalid.body["valid"], json!(false));
        let first = &invalid.body["diagnostics"][0];
        assert_eq!(first["code"], "CRM0101", "{}", invalid.body);
        assert_eq!((first["line"].clone(), first["file"].clone()), (json!(1), json!("request body")));
        assert!(first["column"].as_u64().is_some() && first["severity"] == "error");

        api.call(Method::POST, "/v1/definitions/validate", Some(&api.rep), Some(" "))
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY, "crm::http::invalid_body");
        // Deploying needs the permission; nothing was deployed by validating.
        let refused = api.call(Method::POST, "/v1/definitions", Some(&api.rep), Some(&source)).await;
        refused.problem(StatusCode::FORBIDDEN, "crm::http::forbidden");
        assert_eq!(api.get("/v1/definitions", &api.admin).await.body["items"], json!([]));

        let deployed = api.call(Method::POST, "/v1/definitions", Some(&api.admin), Some(&source)).await;
        assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.body);
        assert_eq!(deployed.body, json!({"id": "sales-pipeline", "version": 1, "created": true}));
        let again = api.call(Method::POST, "/v1/definitions", Some(&api.admin), Some(&source)).await;
        assert_eq!((again.status, again.body["created"].clone()), (StatusCode::OK, json!(false)));
        let changed = source.replacen("\"description\": \"", "\"description\": \"v2: ", 1);
        assert_ne!(changed, source);
        let v2 = api.call(Method::POST, "/v1/definitions", Some(&api.admin), Some(&changed)).await;
        assert_eq!((v2.status, v2.body["version"].clone()), (StatusCode::CREATED, json!(2)), "{}", v2.body);

        let rejected = api.call(Method::POST, "/v1/definitions", Some(&api.admin), Some(broken)).await;
        let problem = rejected.problem(StatusCode::UNPROCESSABLE_ENTITY, "crm::engine::invalid_definition");
        assert_eq!(problem["diagnostics"][0]["code"], "CRM0101");

        let list = api.get("/v1/definitions", &api.rep).await;
        assert_eq!(list.body["items"][0]["id"], "sales-pipeline");
        assert_eq!(list.body["items"][0]["version"], 2);
        let versions = api.get("/v1/definitions/sales-pipeline/versions", &api.rep).await;
        let numbers: Vec<&Json> = versions.body["items"].as_array().expect("items").iter().map(|v| &v["version"]).collect();
        assert_eq!(numbers, [&json!(2), &json!(1)]);
        let v1 = api.get("/v1/definitions/sales-pipeline/source?version=1", &api.rep).await;
        assert_eq!(v1.body, serde_json::from_str::<Json>(&source).expect("json"));
        api.get("/v1/definitions/nope/versions", &api.rep)
            .await
            .problem(StatusCode::NOT_FOUND, "crm::engine::unknown_definition");

        // The graph, as `crm graph` draws it: Mermaid by default, Graphviz on request.
        let mermaid = api.get("/v1/definitions/sales-pipeline/graph?version=1", &api.rep).await;
        assert_eq!(mermaid.status, StatusCode::OK, "{}", mermaid.body);
        assert_eq!(mermaid.header("content-type"), Some("text/plain; charset=utf-8"));
        assert!(mermaid.body.as_str().is_some_and(|text| text.starts_with("stateDiagram-v2")), "{}", mermaid.body);
        let dot = api.get("/v1/definitions/sales-pipeline/graph?format=dot", &api.rep).await;
        assert!(dot.body.as_str().is_some_and(|text| text.starts_with("digraph")), "{}", dot.body);
        api.get("/v1/definitions/sales-pipeline/graph?format=svg", &api.rep)
            .await
            .problem(StatusCode::BAD_REQUEST, "crm::http::bad_request");
        api.get("/v1/definitions/nope/graph", &api.rep)
            .await
            .problem(StatusCode::NOT_FOUND, "crm::engine::unknown_definition");

        // Deactivated, it starts no instances; activated again, it does.
        let create = json!({"definition": "sales-pipeline", "entity": "lead"});
        api.post("/v1/definitions/sales-pipeline/deactivate", &api.rep, json!({}))
            .await
            .problem(StatusCode::FORBIDDEN, "crm::http::forbidden");
        let off = api.post("/v1/definitions/sales-pipeline/deactivate", &api.admin, json!({})).await;
        assert_eq!((off.status, off.body["active"].clone()), (StatusCode::OK, json!(false)), "{}", off.body);
        api.post("/v1/instances", &api.rep, create.clone())
            .await
            .problem(StatusCode::CONFLICT, "crm::engine::definition_inactive");
        let on = api.post("/v1/definitions/sales-pipeline/activate", &api.admin, json!({})).await;
        assert_eq!(on.body["active"], json!(true));
        assert_eq!(api.post("/v1/instances", &api.rep, create).await.status, StatusCode::CREATED);
    })
    .await;
}

#[tokio::test]
async fn an_instance_is_created_read_patched_fired_and_its_history_paged() {
    each_backend(|db| async move {
        let api = api(&db).await;
        api.deploy(&shipped("sales-pipeline")).await;

        let created = api
            .post(
                "/v1/instances",
                &api.rep,
                json!({"definition": "sales-pipeline", "entity": "lead", "data": {"lead_score": 10}}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let id = created.body["id"].as_str().expect("an id").to_owned();
        assert_eq!(created.header("etag"), Some("\"1\""));
        assert_eq!(created.header("location"), Some(format!("/v1/instances/{id}").as_str()));
        assert_eq!(
            (created.body["stage"].clone(), created.body["version"].clone()),
            (json!("new"), json!(1))
        );

        let read = api.get(&format!("/v1/instances/{id}"), &api.rep).await;
        assert_eq!(read.body, created.body);
        assert_eq!(read.header("etag"), Some("\"1\""));

        // PATCH needs If-Match, and a stale one is a conflict that changes nothing.
        let path = format!("/v1/instances/{id}");
        let no_match = api.call(Method::PATCH, &path, Some(&api.rep), Some(r#"{"lead_score": 60}"#)).await;
        no_match.problem(StatusCode::PRECONDITION_REQUIRED, "crm::http::if_match_required");
        let patched = api
            .call_with(
                Method::PATCH,
                &path,
                Some(&api.rep),
                Some(r#"{"lead_score": 40}"#),
                &[("if-match", "\"1\"")],
            )
            .await;
        assert_eq!((patched.status, patched.body["data"]["lead_score"].clone()), (StatusCode::OK, json!(40)));
        assert_eq!(patched.header("etag"), Some("\"2\""));
        let stale = api
            .call_with(
                Method::PATCH,
                &path,
                Some(&api.rep),
                Some(r#"{"lead_score": 5}"#),
                &[("if-match", "\"1\"")],
            )
            .await;
        stale.problem(StatusCode::CONFLICT, "crm::engine::conflict");
        let invalid = api
            .call_with(
                Method::PATCH,
                &path,
                Some(&api.rep),
                Some(r#"{"lead_score": 500}"#),
                &[("if-match", "\"2\"")],
            )
            .await;
        let problem = invalid.problem(StatusCode::UNPROCESSABLE_ENTITY, "crm::machine::invalid_data");
        assert!(problem["errors"][0].as_str().is_some_and(|e| e.contains("lead_score")), "{problem}");
        assert_eq!(api.get(&path, &api.rep).await.body["data"]["lead_score"], 40);

        // Fire: success, wrong stage (409), unknown transition (422), stale If-Match (409).
        let fire = format!("{path}/fire");
        let fired = api.post(&fire, &api.rep, json!({"transition": "make_contact"})).await;
        assert_eq!(
            (fired.status, fired.body["stage"].clone()),
            (StatusCode::OK, json!("contacted")),
            "{}",
            fired.body
        );
        api.post(&fire, &api.rep, json!({"transition": "make_contact"}))
            .await
            .problem(StatusCode::CONFLICT, "crm::machine::wrong_stage");
        api.post(&fire, &api.rep, json!({"transition": "make_contract"}))
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY, "crm::machine::unknown_transition");
        let body = json!({"transition": "qualify_lead"}).to_string();
        api.call_with(Method::POST, &fire, Some(&api.rep), Some(&body), &[("if-match", "\"1\"")])
            .await
            .problem(StatusCode::CONFLICT, "crm::engine::conflict");
        api.call(Method::POST, &fire, Some(&api.rep), Some("{\"transition\": 3}"))
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY, "crm::http::invalid_body");
        // `qualify_lead` needs `data.lead_score > 50`.
        api.call(Method::POST, &fire, Some(&api.rep), Some(&body))
            .await
            .problem(StatusCode::CONFLICT, "crm::machine::condition_false");

        // History in pages of two, oldest first, nothing lost or repeated.
        let mut seqs = Vec::new();
        let mut next = format!("{path}/history?limit=2");
        loop {
            let page = api.get(&next, &api.rep).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            seqs.extend(
                page.body["items"].as_array().expect("items").iter().map(|h| h["seq"].as_u64().expect("seq")),
            );
            match page.body["next_cursor"].as_str() {
                Some(cursor) => next = format!("{path}/history?limit=2&cursor={cursor}"),
                None => break,
            }
        }
        let all = api.get(&format!("{path}/history?limit=500"), &api.rep).await;
        assert_eq!(seqs.len(), all.body["items"].as_array().expect("items").len());
        assert!(seqs.len() >= 3 && seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        api.get(&format!("{path}/history?cursor=garbage!"), &api.rep)
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY, "crm::store::cursor");
    })
    .await;
}

#[tokio::test]
async fn instances_are_listed_with_filters_in_keyset_pages() {
    each_backend(|db| async move {
        let api = api(&db).await;
        api.deploy(&shipped("sales-pipeline")).await;
        let mut ids = Vec::new();
        for score in 0..5 {
            let lead = api.create(&api.rep, "sales-pipeline", "lead", json!({"lead_score": score})).await;
            ids.push(lead["id"].as_str().expect("id").to_owned());
        }
        let fired = api
            .post(&format!("/v1/instances/{}/fire", ids[0]), &api.rep, json!({"transition": "make_contact"}))
            .await;
        assert_eq!(fired.status, StatusCode::OK);

        let mut seen = Vec::new();
        let mut path = "/v1/instances?limit=2".to_owned();
        loop {
            let page = api.get(&path, &api.rep).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            let items = page.body["items"].as_array().expect("items");
            assert!(items.len() <= 2);
            seen.extend(items.iter().map(|i| i["id"].as_str().expect("id").to_owned()));
            match page.body["next_cursor"].as_str() {
                Some(cursor) => path = format!("/v1/instances?limit=2&cursor={cursor}"),
                None => break,
            }
        }
        let mut sorted = seen.clone();
        sorted.sort();
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(sorted, expected, "every instance exactly once");
        assert_eq!(seen.last(), Some(&ids[0]), "the last changed comes last");

        let contacted = api.get("/v1/instances?stage=contacted", &api.rep).await;
        let items = contacted.body["items"].as_array().expect("items");
        assert_eq!((items.len(), items[0]["id"].as_str()), (1, Some(ids[0].as_str())));
        let none = api.get("/v1/instances?definition=other&entity=lead", &api.rep).await;
        assert_eq!(none.body["items"], json!([]));
        let active = api.get("/v1/instances?status=active&entity=lead", &api.rep).await;
        assert_eq!(active.body["items"].as_array().map(Vec::len), Some(5));
        api.get("/v1/instances?status=sleeping", &api.rep)
            .await
            .problem(StatusCode::BAD_REQUEST, "crm::http::bad_request");
        api.get("/v1/instances?colour=red", &api.rep)
            .await
            .problem(StatusCode::BAD_REQUEST, "crm::http::bad_request");
        // A page larger than 500 is refused rather than silently cut.
        api.get("/v1/instances?limit=501", &api.rep)
            .await
            .problem(StatusCode::BAD_REQUEST, "crm::http::bad_request");
        assert_eq!(api.get("/v1/instances?limit=500", &api.rep).await.status, StatusCode::OK);
        // An empty free-text parameter is no filter (an empty enumeration value is refused: see
        // `enumerated_query_values_and_object_members_are_checked`).
        let unfiltered = api.get("/v1/instances?stage=&cursor=", &api.rep).await;
        assert_eq!(unfiltered.body["items"].as_array().map(Vec::len), Some(5), "{}", unfiltered.body);
    })
    .await;
}

#[tokio::test]
async fn guards_approvals_and_assignment_see_the_tokens_actor() {
    each_backend(|db| async move {
        let api = api(&db).await;
        api.deploy(DEALS).await;
        let deal = api.create(&api.boss, "deals", "deal", json!({"amount": 10})).await;
        let path = format!("/v1/instances/{}", deal["id"].as_str().expect("id"));

        // `submit` needs role `rep`: boss lacks it, rick has it.
        api.post(&format!("{path}/fire"), &api.boss, json!({"transition": "submit"}))
            .await
            .problem(StatusCode::FORBIDDEN, "crm::machine::guard_refused");
        let submitted = api.post(&format!("{path}/fire"), &api.rep, json!({"transition": "submit"})).await;
        assert_eq!(submitted.body["stage"], "review", "{}", submitted.body);

        // Only boss may approve.
        let requested = api.post(&format!("{path}/fire"), &api.rep, json!({"transition": "sign_off"})).await;
        assert_eq!(requested.body["pending_approval"]["transition"], "sign_off", "{}", requested.body);
        assert_eq!(requested.body["pending_approval"]["requested_by"], "rick");
        api.post(&format!("{path}/approve"), &api.rep, json!({"transition": "sign_off"}))
            .await
            .problem(StatusCode::FORBIDDEN, "crm::machine::not_an_approver");
        let approved =
            api.post(&format!("{path}/approve"), &api.boss, json!({"transition": "sign_off"})).await;
        assert_eq!(
            (approved.body["stage"].clone(), approved.body["status"].clone()),
            (json!("approved"), json!("completed"))
        );
        api.post(&format!("{path}/reject"), &api.boss, json!({"transition": "sign_off"}))
            .await
            .problem(StatusCode::CONFLICT, "crm::machine::instance_completed");

        // Assignment: to someone else works; to oneself is refused (BR-001).
        let other = api.create(&api.boss, "deals", "deal", json!({})).await;
        let other_path = format!("/v1/instances/{}", other["id"].as_str().expect("id"));
        let assigned =
            api.post(&format!("{other_path}/assign"), &api.boss, json!({"assignee": "rick"})).await;
        assert_eq!(assigned.body["assignee"], "rick", "{}", assigned.body);
        api.post(&format!("{other_path}/assign"), &api.rep, json!({"assignee": "rick"}))
            .await
            .problem(StatusCode::FORBIDDEN, "crm::machine::self_assignment");
        api.post(&format!("{other_path}/complete-branch"), &api.rep, json!({"gateway": "g", "branch": "b"}))
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY, "crm::machine::unknown_transition");
    })
    .await;
}

/// Every instance route, as (method, path under the instance, body).
fn instance_routes() -> Vec<(Method, &'static str, Option<Json>)> {
    vec![
        (Method::GET, "", None),
        (Method::PATCH, "", Some(json!({"lead_score": 99}))),
        (Method::POST, "/fire", Some(json!({"transition": "make_contact"}))),
        (Method::POST, "/approve", Some(json!({"transition": "make_contact"}))),
        (Method::POST, "/reject", Some(json!({"transition": "make_contact"}))),
        (Method::POST, "/complete-branch", Some(json!({"gateway": "g", "branch": "b"}))),
        (Method::POST, "/assign", Some(json!({"assignee": "gus2"}))),
        (Method::GET, "/history", None),
    ]
}

#[tokio::test]
async fn another_tenants_ids_are_answered_like_ids_that_do_not_exist_and_change_nothing() {
    each_backend(|db| async move {
        let api = api(&db).await;
        api.deploy(&shipped("sales-pipeline")).await;
        // globex deploys the same definition, so only the tenant wall stands between them.
        let deployed = api
            .call(Method::POST, "/v1/definitions", Some(&api.other), Some(&shipped("sales-pipeline")))
            .await;
        assert_eq!(deployed.status, StatusCode::CREATED);
        let lead = api.create(&api.rep, "sales-pipeline", "lead", json!({"lead_score": 1})).await;
        let id = lead["id"].as_str().expect("id").to_owned();
        let before = (
            api.get(&format!("/v1/instances/{id}"), &api.rep).await.body,
            api.get(&format!("/v1/instances/{id}/history"), &api.rep).await.body,
        );

        let made_up = "0190aaaa-0000-7000-8000-000000000000";
        for (method, suffix, body) in instance_routes() {
            let text = body.as_ref().map(Json::to_string);
            let headers = [("if-match", "\"1\"")];
            let attack = api
                .call_with(
                    method.clone(),
                    &format!("/v1/instances/{id}{suffix}"),
                    Some(&api.other),
                    text.as_deref(),
                    &headers,
                )
                .await;
            let missing = api
                .call_with(
                    method.clone(),
                    &format!("/v1/instances/{made_up}{suffix}"),
                    Some(&api.other),
                    text.as_deref(),
                    &headers,
                )
                .await;
            assert_eq!(attack.status, StatusCode::NOT_FOUND, "{method} {suffix}: {}", attack.body);
            assert_eq!(
                attack.body.to_string().replace(&id, "ID"),
                missing.body.to_string().replace(made_up, "ID"),
                "{method} {suffix}"
            );
        }
        let listed = api.get("/v1/instances", &api.other).await;
        assert_eq!(listed.body["items"], json!([]));
        let after = (
            api.get(&format!("/v1/instances/{id}"), &api.rep).await.body,
            api.get(&format!("/v1/instances/{id}/history"), &api.rep).await.body,
        );
        assert_eq!(before, after, "the attack changed nothing");
    })
    .await;
}

#[tokio::test]
async fn idempotency_keys_replay_the_first_response_and_refuse_another_body() {
    each_backend(|db| async move {
        let api = api(&db).await;
        api.deploy(&shipped("sales-pipeline")).await;
        let body = json!({"definition": "sales-pipeline", "entity": "lead", "data": {}}).to_string();
        let key = [("idempotency-key", "create-1")];
        let first = api.call_with(Method::POST, "/v1/instances", Some(&api.rep), Some(&body), &key).await;
        assert_eq!(first.status, StatusCode::CREATED);
        let again = api.call_with(Method::POST, "/v1/instances", Some(&api.rep), Some(&body), &key).await;
        assert_eq!((again.status, &again.body), (StatusCode::CREATED, &first.body));
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(again.header("etag"), Some("\"1\""));
        let listed = api.get("/v1/instances", &api.rep).await;
        assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1), "one instance for two requests");

        let other =
            json!({"definition": "sales-pipeline", "entity": "lead", "data": {"lead_score": 3}}).to_string();
        api.call_with(Method::POST, "/v1/instances", Some(&api.rep), Some(&other), &key)
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY, "crm::http::idempotency_key_reused");

        // A fire retried with its key does not fire twice (the second would be a wrong stage).
        let fire = format!("/v1/instances/{}/fire", first.body["id"].as_str().expect("id"));
        let fire_body = json!({"transition": "make_contact"}).to_string();
        let key = [("idempotency-key", "fire-1")];
        let fired = api.call_with(Method::POST, &fire, Some(&api.rep), Some(&fire_body), &key).await;
        let replayed = api.call_with(Method::POST, &fire, Some(&api.rep), Some(&fire_body), &key).await;
        assert_eq!((fired.status, replayed.status), (StatusCode::OK, StatusCode::OK), "{}", replayed.body);
        assert_eq!(fired.body, replayed.body);
        // Keys belong to a tenant: globex's same key is its own.
        let theirs = api
            .call_with(
                Method::POST,
                "/v1/instances",
                Some(&api.other),
                Some(&body),
                &[("idempotency-key", "create-1")],
            )
            .await;
        theirs.problem(StatusCode::NOT_FOUND, "crm::engine::unknown_definition");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_with_one_idempotency_key_have_exactly_one_effect() {
    each_backend(|db| async move {
        let api = api(&db).await;
        api.deploy(&shipped("sales-pipeline")).await;
        let body = json!({"definition": "sales-pipeline", "entity": "lead", "data": {}}).to_string();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let request = Request::post("/v1/instances")
                .header(header::AUTHORIZATION, format!("Bearer {}", api.rep))
                .header(header::CONTENT_TYPE, "application/json")
                .header("idempotency-key", "race")
                .body(Body::from(body.clone()))
                .expect("a request");
            let router = api.router.clone();
            tasks.spawn(async move {
                let response = router.oneshot(request).await.expect("an answer");
                let status = response.status();
                let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("a body");
                (status, serde_json::from_slice::<Json>(&bytes).expect("json"))
            });
        }
        let mut ids = std::collections::BTreeSet::new();
        while let Some(joined) = tasks.join_next().await {
            let (status, body) = joined.expect("the task finishes");
            assert_eq!(status, StatusCode::CREATED, "{body}");
            ids.insert(body["id"].as_str().expect("id").to_owned());
        }
        assert_eq!(ids.len(), 1, "every answer names the same instance");
        let listed = api.get("/v1/instances", &api.rep).await;
        assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1), "exactly one effect");
    })
    .await;
}

#[tokio::test]
async fn limits_and_unknown_routes_answer_problem_documents() {
    each_backend(|db| async move {
        let config = ServerConfig {
            body_limit: 1024,
            rate_limit: Some(RateLimit { per_second: 0.5, burst: 3.0 }),
            ..ServerConfig::default()
        };
        let api = api_with(&db, config).await;
        let big = format!("{{\"definition\": \"{}\"}}", "x".repeat(4096));
        api.call(Method::POST, "/v1/instances", Some(&api.admin), Some(&big))
            .await
            .problem(StatusCode::PAYLOAD_TOO_LARGE, "crm::http::payload_too_large");
        api.get("/v1/nothing-here", &api.admin).await.problem(StatusCode::NOT_FOUND, "crm::http::not_found");
        api.call(Method::DELETE, "/v1/definitions", Some(&api.admin), None)
            .await
            .problem(StatusCode::METHOD_NOT_ALLOWED, "crm::http::method_not_allowed");
        // The limit counts per token: rick's burst runs out, ana (whose requests above used two
        // of three) still has one.
        for _ in 0..3 {
            assert_eq!(api.get("/v1/definitions", &api.rep).await.status, StatusCode::OK);
        }
        let limited = api.get("/v1/definitions", &api.rep).await;
        limited.problem(StatusCode::TOO_MANY_REQUESTS, "crm::http::rate_limited");
        assert!(limited.header("retry-after").and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| s >= 1));
        assert_eq!(api.get("/v1/definitions", &api.admin).await.status, StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn a_database_failure_is_a_500_that_says_nothing_of_the_database() {
    each_backend(|db| async move {
        let api = api(&db).await;
        let token = api.rep.clone();
        // Authenticate once, then lose the database.
        assert_eq!(api.get("/v1/definitions", &token).await.status, StatusCode::OK);
        db.store.close().await;
        let failed = api.get("/v1/definitions", &token).await;
        let body = failed.problem(StatusCode::INTERNAL_SERVER_ERROR, "crm::http::internal").to_string();
        for leak in ["pool", "sqlx", "sqlite", "postgres", "database", "SELECT"] {
            assert!(!body.to_lowercase().contains(&leak.to_lowercase()), "{leak} in {body}");
        }
        let ready = api.call(Method::GET, "/readyz", None, None).await;
        assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    })
    .await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    each_backend(|db| async move {
        let api = api(&db).await;
        api.get("/v1/definitions", &api.rep).await;
        api.get("/v1/definitions", "nope").await;
        let metrics = api.call(Method::GET, "/metrics", None, None).await;
        let text = metrics.body.as_str().expect("text");
        assert!(text.contains("crm_http_requests_total{route=\"/v1/definitions\",method=\"GET\",status=\"200\"} 1"), "{text}");
        assert!(text.contains("status=\"401\"} 1"), "{text}");
        assert!(text.contains("crm_http_request_duration_seconds_bucket{route=\"/v1/definitions\",method=\"GET\",le=\"+Inf\"} 2"), "{text}");
        // No work yet: the backlog gauges are there, at zero.
        for gauge in ["crm_timers_due 0", "crm_timer_lag_seconds 0", "crm_outbox_pending 0", "crm_outbox_dead_letters 0"] {
            assert!(text.lines().any(|line| line == gauge), "{gauge} in {text}");
        }
    })
    .await;
}

/// A campaign pipeline.
const MARKETING: &str = r#"{
  "id": "marketing",
  "entities": { "campaign": { "stages": ["planned", "running", "done"], "terminal": ["done"] } },
  "transitions": { "launch": { "from": "planned", "to": "running" }, "finish": { "from": "running", "to": "done" } }
}"#;

#[tokio::test]
async fn the_dashboard_pages_a_users_work_and_delegations_extend_it() {
    each_backend(|db| async move {
        let api = api(&db).await;
        api.deploy(DEALS).await;
        let mut ids = Vec::new();
        for _ in 0..3 {
            let deal = api.create(&api.boss, "deals", "deal", json!({})).await;
            let id = deal["id"].as_str().expect("id").to_owned();
            let assigned =
                api.post(&format!("/v1/instances/{id}/assign"), &api.boss, json!({"assignee": "rick"})).await;
            assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.body);
            ids.push(id);
        }
        // One waits for boss's approval.
        api.post(&format!("/v1/instances/{}/fire", ids[0]), &api.rep, json!({"transition": "submit"})).await;
        let asked = api
            .post(&format!("/v1/instances/{}/fire", ids[0]), &api.rep, json!({"transition": "sign_off"}))
            .await;
        assert!(asked.body["pending_approval"].is_object(), "{}", asked.body);

        // rick's dashboard in pages of two, newest change first.
        let mut seen = Vec::new();
        let mut path = "/v1/dashboard?limit=2".to_owned();
        loop {
            let page = api.get(&path, &api.rep).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            assert_eq!(page.body["user"], "rick");
            for item in page.body["items"].as_array().expect("items") {
                assert_eq!(item["reason"]["kind"], "assigned");
                seen.push(item["id"].as_str().expect("id").to_owned());
            }
            match page.body["next_cursor"].as_str() {
                Some(cursor) => path = format!("/v1/dashboard?limit=2&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0], ids[0], "the last changed first");
        let boss = api.get("/v1/dashboard?reason=approval", &api.boss).await;
        let items = boss.body["items"].as_array().expect("items");
        assert_eq!(items.len(), 1, "{}", boss.body);
        assert_eq!(items[0]["reason"], json!({"kind": "approval", "transition": "sign_off"}));

        // Another user's dashboard needs a permission.
        api.get("/v1/dashboard?user=rick", &api.boss)
            .await
            .problem(StatusCode::FORBIDDEN, "crm::http::forbidden");
        let as_admin = api.get("/v1/dashboard?user=rick&sort=started_at&direction=asc", &api.admin).await;
        assert_eq!(as_admin.body["items"].as_array().map(Vec::len), Some(3), "{}", as_admin.body);
        api.get("/v1/dashboard?sort=colour", &api.rep)
            .await
            .problem(StatusCode::BAD_REQUEST, "crm::http::bad_request");
        api.get("/v1/dashboard?cursor=AAAA", &api.rep)
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY, "crm::store::cursor");

        // rick delegates to ana: his work shows on her dashboard as delegated.
        let created = api.post("/v1/delegations", &api.rep, json!({"delegatee": "ana"})).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let delegation = created.body["id"].as_str().expect("id").to_owned();
        api.post("/v1/delegations", &api.boss, json!({"delegator": "rick", "delegatee": "boss"}))
            .await
            .problem(StatusCode::FORBIDDEN, "crm::http::forbidden");
        api.post("/v1/delegations", &api.rep, json!({"delegatee": "rick"}))
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY, "crm::engine::invalid_delegation");
        api.post("/v1/delegations", &api.rep, json!({"delegatee": "ana", "start": "soon"}))
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY, "crm::http::invalid_body");
        let listed = api.get("/v1/delegations", &api.boss).await;
        assert_eq!(listed.body["items"][0]["delegator"], "rick");
        let ana = api.get("/v1/dashboard?reason=delegated", &api.admin).await;
        assert_eq!(ana.body["items"].as_array().map(Vec::len), Some(3), "{}", ana.body);
        assert_eq!(ana.body["items"][0]["reason"], json!({"kind": "delegated", "from": "rick"}));

        api.call(Method::DELETE, &format!("/v1/delegations/{delegation}"), Some(&api.boss), None)
            .await
            .problem(StatusCode::FORBIDDEN, "crm::http::forbidden");
        let removed =
            api.call(Method::DELETE, &format!("/v1/delegations/{delegation}"), Some(&api.rep), None).await;
        assert_eq!(removed.status, StatusCode::NO_CONTENT);
        api.call(Method::DELETE, &format!("/v1/delegations/{delegation}"), Some(&api.rep), None)
            .await
            .problem(StatusCode::NOT_FOUND, "crm::store::not_found");
    })
    .await;
}

#[tokio::test]
async fn sla_clocks_leads_conversion_contacts_and_campaigns() {
    each_backend(|db| async move {
        let api = api(&db).await;
        api.deploy(&shipped("enterprise-crm")).await;
        api.deploy(&shipped("sales-pipeline")).await;
        api.deploy(MARKETING).await;

        let tracked = api.create(&api.rep, "enterprise-crm", "lead", json!({})).await;
        let sla =
            api.get(&format!("/v1/instances/{}/sla", tracked["id"].as_str().expect("id")), &api.rep).await;
        assert_eq!(sla.status, StatusCode::OK, "{}", sla.body);
        let clocks = sla.body["clocks"].as_array().expect("clocks");
        assert!(!clocks.is_empty() && clocks[0]["status"] == "on_track", "{}", sla.body);
        assert_eq!(sla.body["escalations"], json!([]));

        let lead = api
            .post(
                "/v1/leads",
                &api.rep,
                json!({"definition": "sales-pipeline", "name": "Ada", "email": "ada@example.com",
                       "data": {"lead_score": 80}}),
            )
            .await;
        assert_eq!(lead.status, StatusCode::CREATED, "{}", lead.body);
        let contact_id = lead.body["contact"]["id"].as_str().expect("id").to_owned();
        let instance = lead.body["instance"]["id"].as_str().expect("id").to_owned();
        let convert = format!("/v1/leads/{contact_id}/convert");
        let deal =
            json!({"value": 1000.0, "currency": "EUR", "probability": 0.5, "close_date": "2026-12-31"});
        api.post(&convert, &api.rep, deal.clone())
            .await
            .problem(StatusCode::CONFLICT, "crm::engine::not_convertible");
        let contacted = api
            .post(&format!("/v1/instances/{instance}/fire"), &api.rep, json!({"transition": "make_contact"}))
            .await;
        assert_eq!(
            contacted.body["stage"], "qualified",
            "the score qualifies it at once: {}",
            contacted.body
        );
        let converted = api.post(&convert, &api.rep, deal.clone()).await;
        assert_eq!(converted.status, StatusCode::CREATED, "{}", converted.body);
        assert_eq!(converted.body["instance"]["entity"], "opportunity");
        let opportunity = converted.body["opportunity"]["id"].as_str().expect("id").to_owned();
        api.post(&convert, &api.rep, deal)
            .await
            .problem(StatusCode::CONFLICT, "crm::engine::not_convertible");
        let read = api.get(&format!("/v1/opportunities/{opportunity}"), &api.rep).await;
        assert_eq!(
            (read.body["currency"].clone(), read.body["contact_id"].clone()),
            (json!("EUR"), json!(contact_id))
        );
        assert_eq!(
            api.get("/v1/opportunities", &api.rep).await.body["items"].as_array().map(Vec::len),
            Some(1)
        );
        api.post(
            &format!("/v1/leads/{contact_id}/convert"),
            &api.rep,
            json!({"value": -1.0, "currency": "EUR", "probability": 0.5}),
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "crm::engine::invalid_record");

        let contact = api.post("/v1/contacts", &api.rep, json!({"name": "Bob", "company": "Initech"})).await;
        assert_eq!(contact.status, StatusCode::CREATED, "{}", contact.body);
        let bob =
            api.get(&format!("/v1/contacts/{}", contact.body["id"].as_str().expect("id")), &api.rep).await;
        assert_eq!(bob.body["company"], "Initech");
        let people = api.get("/v1/contacts?limit=1", &api.rep).await;
        assert_eq!(people.body["items"].as_array().map(Vec::len), Some(1));
        let after = people.body["next_after"].as_str().expect("a next page");
        let rest = api.get(&format!("/v1/contacts?limit=1&after={after}"), &api.rep).await;
        assert_ne!(rest.body["items"][0]["id"], people.body["items"][0]["id"]);
        api.post("/v1/contacts", &api.rep, json!({"name": ""}))
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY, "crm::engine::invalid_record");

        let campaign = api
            .post(
                "/v1/campaigns",
                &api.rep,
                json!({"definition": "marketing", "name": "Spring", "type": "email", "start": "2026-03-01"}),
            )
            .await;
        assert_eq!(campaign.status, StatusCode::CREATED, "{}", campaign.body);
        assert_eq!(campaign.body["instance"]["stage"], "planned");
        let id = campaign.body["campaign"]["id"].as_str().expect("id");
        assert_eq!(api.get(&format!("/v1/campaigns/{id}"), &api.rep).await.body["name"], "Spring");
        assert_eq!(api.get("/v1/campaigns", &api.rep).await.body["items"].as_array().map(Vec::len), Some(1));
        api.get("/v1/campaigns/nope", &api.rep)
            .await
            .problem(StatusCode::NOT_FOUND, "crm::engine::unknown_record");

        // globex sees none of it.
        for path in ["/v1/contacts", "/v1/opportunities", "/v1/campaigns", "/v1/delegations"] {
            assert_eq!(api.get(path, &api.other).await.body["items"], json!([]), "{path}");
        }
        let theirs = api.get(&format!("/v1/opportunities/{opportunity}"), &api.other).await;
        let made_up = api.get("/v1/opportunities/made-up", &api.other).await;
        assert_eq!(
            theirs.body.to_string().replace(&opportunity, "ID"),
            made_up.body.to_string().replace("made-up", "ID")
        );
        let sla_attack =
            api.get(&format!("/v1/instances/{}/sla", tracked["id"].as_str().expect("id")), &api.other).await;
        sla_attack.problem(StatusCode::NOT_FOUND, "crm::engine::unknown_instance");
        api.post(
            &format!("/v1/leads/{contact_id}/convert"),
            &api.other,
            json!({"value": 1.0, "currency": "EUR", "probability": 0.5}),
        )
        .await
        .problem(StatusCode::NOT_FOUND, "crm::engine::unknown_record");
    })
    .await;
}

#[tokio::test]
async fn outbox_items_are_listed_discarded_and_replayed_with_a_permission() {
    each_backend(|db| async move {
        let api = api(&db).await;
        let operator = token(&api.store, "acme", "ops", &[], &["outbox:manage"]).await;
        api.deploy(&shipped("sales-pipeline")).await;
        let lead = api.create(&api.rep, "sales-pipeline", "lead", json!({})).await;
        let fired = api
            .post(
                &format!("/v1/instances/{}/fire", lead["id"].as_str().expect("id")),
                &api.rep,
                json!({"transition": "make_contact"}),
            )
            .await;
        assert_eq!(fired.status, StatusCode::OK);

        api.get("/v1/outbox", &api.admin).await.problem(StatusCode::FORBIDDEN, "crm::http::forbidden");
        let pending = api.get("/v1/outbox?status=pending", &operator).await;
        assert_eq!(pending.status, StatusCode::OK, "{}", pending.body);
        let items = pending.body["items"].as_array().expect("items");
        let action = items.iter().find(|i| i["kind"] == "action").expect("the welcome e-mail action");
        let id = action["id"].as_str().expect("id");

        let discarded =
            api.call(Method::POST, &format!("/v1/outbox/{id}/discard"), Some(&operator), None).await;
        assert_eq!(discarded.status, StatusCode::NO_CONTENT, "{}", discarded.body);
        let dead = api.get("/v1/outbox?status=dead", &operator).await;
        assert!(dead.body["items"].as_array().expect("items").iter().any(|i| i["id"] == id), "{}", dead.body);
        let metrics = api.call(Method::GET, "/metrics", None, None).await;
        let text = metrics.body.as_str().expect("text");
        let expected = format!("crm_outbox_pending {}", items.len() - 1);
        for gauge in [expected.as_str(), "crm_outbox_dead_letters 1"] {
            assert!(text.lines().any(|line| line == gauge), "{gauge} in {text}");
        }
        let replayed =
            api.call(Method::POST, &format!("/v1/outbox/{id}/replay"), Some(&operator), None).await;
        assert_eq!(replayed.status, StatusCode::NO_CONTENT, "{}", replayed.body);

        let globex_operator = token(&api.store, "globex", "ops", &[], &["outbox:manage"]).await;
        let attack =
            api.call(Method::POST, &format!("/v1/outbox/{id}/discard"), Some(&globex_operator), None).await;
        let missing =
            api.call(Method::POST, "/v1/outbox/made-up/discard", Some(&globex_operator), None).await;
        attack.problem(StatusCode::NOT_FOUND, missing.body["code"].as_str().expect("code"));
        assert_eq!(
            attack.body.to_string().replace(id, "ID"),
            missing.body.to_string().replace("made-up", "ID")
        );
        assert_eq!(api.get("/v1/outbox", &globex_operator).await.body["items"], json!([]));
    })
    .await;
}

#[tokio::test]
async fn if_match_takes_lists_and_star_and_refuses_weak_or_foreign_tags() {
    each_backend(|db| async move {
        let api = api(&db).await;
        api.deploy(&shipped("sales-pipeline")).await;
        let lead = api.create(&api.rep, "sales-pipeline", "lead", json!({})).await;
        let path = format!("/v1/instances/{}", lead["id"].as_str().expect("id"));
        let patch = |if_match: &'static str, score: u32| {
            let (api, path) = (&api, &path);
            async move {
                let body = format!(r#"{{"lead_score": {score}}}"#);
                api.call_with(Method::PATCH, path, Some(&api.rep), Some(&body), &[("if-match", if_match)])
                    .await
            }
        };
        // A list naming the current version applies; `*` applies to whatever version is current.
        let listed = patch(r#""7", W/"1", "1""#, 10).await;
        assert_eq!(
            (listed.status, listed.header("etag")),
            (StatusCode::OK, Some("\"2\"")),
            "{}",
            listed.body
        );
        let star = patch("*", 20).await;
        assert_eq!((star.status, star.header("etag")), (StatusCode::OK, Some("\"3\"")), "{}", star.body);
        // Weak tags and tags this API never gave out match nothing (strong comparison): a 409 that
        // changes nothing.
        patch(r#"W/"3""#, 30).await.problem(StatusCode::CONFLICT, "crm::engine::conflict");
        patch(r#""Sw", W/"else""#, 30).await.problem(StatusCode::CONFLICT, "crm::engine::conflict");
        // Not an If-Match at all: a 400.
        patch("3, 4", 30).await.problem(StatusCode::BAD_REQUEST, "crm::http::bad_request");
        patch(r#""3"x"#, 30).await.problem(StatusCode::BAD_REQUEST, "crm::http::bad_request");
        assert_eq!(api.get(&path, &api.rep).await.body["data"]["lead_score"], 20);
        // A list on a missing instance is the same 404 as without one.
        api.call_with(
            Method::PATCH,
            "/v1/instances/made-up",
            Some(&api.rep),
            Some("{}"),
            &[("if-match", "\"1\", \"2\"")],
        )
        .await
        .problem(StatusCode::NOT_FOUND, "crm::engine::unknown_instance");
    })
    .await;
}

#[tokio::test]
async fn enumerated_query_values_and_object_members_are_checked() {
    each_backend(|db| async move {
        let api = api(&db).await;
        api.deploy(&shipped("sales-pipeline")).await;
        for path in ["/v1/instances?status=paused", "/v1/dashboard?sort=Z", "/v1/dashboard?direction=up"] {
            let answer = api.get(path, &api.rep).await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}: {}", answer.body);
            assert!(
                answer.body["detail"].as_str().is_some_and(|d| d.contains("unknown variant")),
                "{}",
                answer.body
            );
        }
        // `?name=` is the same as leaving a free-text filter out, but no value of an enumeration
        // or a time.
        assert_eq!(api.get("/v1/instances?entity=", &api.rep).await.status, StatusCode::OK);
        for path in ["/v1/instances?status=", "/v1/instances?updated_since=", "/v1/dashboard?direction="] {
            assert_eq!(api.get(path, &api.rep).await.status, StatusCode::BAD_REQUEST, "{path}");
        }
        let only_approvals =
            api.get("/v1/dashboard?reason=approval&sort=started_at&direction=asc", &api.rep).await;
        assert_eq!(only_approvals.status, StatusCode::OK, "{}", only_approvals.body);

        // `data` must be an object when given; leaving it out means `{}`.
        let null = api
            .post(
                "/v1/instances",
                &api.rep,
                json!({"definition": "sales-pipeline", "entity": "lead", "data": null}),
            )
            .await;
        null.problem(StatusCode::UNPROCESSABLE_ENTITY, "crm::http::invalid_body");
        let created = api
            .post("/v1/instances", &api.rep, json!({"definition": "sales-pipeline", "entity": "lead"}))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);

        // A body that is not a JSON object is not a definition: 422 with its diagnostics.
        let array = api.post("/v1/definitions/validate", &api.rep, json!([null, null])).await;
        let problem = array.problem(StatusCode::UNPROCESSABLE_ENTITY, "crm::engine::invalid_definition");
        assert_eq!(problem["diagnostics"][0]["code"], "CRM0003", "{problem}");
    })
    .await;
}
