//! The OpenAPI document: served at `/openapi.json`, equal to the committed
//! `schema/openapi.json`, OpenAPI 3.1, and covering every route the router has.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use nexus_crm::engine::service::Engine;
use nexus_crm::http::{AppState, ServerConfig, openapi, router};
use nexus_crm::store::AnyStore;
use serde_json::Value as Json;
use tower::ServiceExt as _;

const COMMITTED: &str = "schema/openapi.json";

fn pretty(document: &Json) -> String {
    let mut text = serde_json::to_string_pretty(document).expect("JSON");
    text.push('\n');
    text
}

#[test]
fn the_committed_document_is_up_to_date() {
    let generated = pretty(&openapi::document());
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &generated).expect("write schema/openapi.json");
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == generated,
        "{COMMITTED} is out of date; regenerate it with\n\n    UPDATE_OPENAPI=1 cargo test --test http_openapi\n"
    );
}

#[test]
fn it_is_openapi_3_1_and_documents_errors_and_auth() {
    let document = openapi::document();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().expect("paths");
    let mut ids = std::collections::BTreeSet::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("operations") {
            let id = operation["operationId"].as_str().expect("an operationId");
            assert!(ids.insert(id.to_owned()), "operationId {id} is not unique");
            let responses = operation["responses"].as_object().expect("responses");
            if path.starts_with("/v1/") {
                assert!(responses.contains_key("401"), "{method} {path} documents 401");
                assert!(operation["security"].is_array(), "{method} {path} names its security");
                assert_eq!(
                    responses["401"]["content"]["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem"
                );
            }
        }
    }
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn it_is_served_and_lists_every_route() {
    let store = AnyStore::in_memory().await.expect("a store");
    let app = router(AppState::new(Engine::new(store), ServerConfig::default()));
    let response = app
        .oneshot(Request::get("/openapi.json").body(Body::empty()).expect("a request"))
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("a body");
    let served: Json = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(served, openapi::document());

    // Every route registered in src/http/mod.rs is documented (axum's `{id}` is OpenAPI's too).
    let source = std::fs::read_to_string("src/http/mod.rs").expect("src/http/mod.rs");
    let paths = served["paths"].as_object().expect("paths");
    for line in source.lines().filter_map(|l| l.trim().strip_prefix(".route(\"")) {
        let route = line.split('"').next().expect("a path");
        let full = if ["/healthz", "/readyz", "/metrics", "/openapi.json"].contains(&route) {
            route.to_owned()
        } else {
            format!("/v1{route}")
        };
        if route == "/openapi.json" {
            continue;
        }
        assert!(paths.contains_key(&full), "{full} is not in the OpenAPI document");
    }
}
