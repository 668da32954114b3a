//! Hot reload against the built `crm serve` (issue #11): files edited under a running server, on
//! SQLite and PostgreSQL. A broken edit keeps the old version serving and exposes its
//! diagnostics; a good edit serves the new version while running instances stay on theirs; an
//! edit that would strand live instances is refused; a deleted file undeploys nothing.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nexus_crm::store::AnyStore;
use serde_json::{Value as Json, json};
use support::db::each_backend;

const CRM: &str = env!("CARGO_BIN_EXE_crm");

/// How long a reload may take before the test gives up waiting (not a timing assertion: only
/// a bound on a wait for something that must happen).
const PATIENCE: Duration = Duration::from_secs(30);

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A running `crm serve` watching `definitions`, killed if the test fails before it ends.
struct Server {
    child: Child,
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Server {
    async fn start(dir: &Path, definitions: &Path, database: &str) -> Self {
        let store = AnyStore::open(database).await.expect("the store");
        let (token, _) = nexus_crm::http::create_token(
            &store,
            nexus_crm::http::NewToken {
                tenant: "default".into(),
                user: "ana".into(),
                permissions: vec!["definitions:deploy".into()],
                ..Default::default()
            },
            chrono::Utc::now(),
        )
        .await
        .expect("a token");
        store.close().await;
        let mut child = Command::new(CRM)
            .args(["serve", "--listen", "127.0.0.1:0", "--rate-limit", "0", "--definitions"])
            .arg(definitions)
            .env("CRM_DATABASE_URL", database)
            .env("CRM_LOG", "warn")
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("crm serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("the first line");
        let base = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("{line}")).to_owned();
        Self { child, base, token, client: reqwest::Client::new() }
    }

    async fn get(&self, path: &str) -> (u16, Json) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("an answer");
        (response.status().as_u16(), response.json().await.unwrap_or(Json::Null))
    }

    async fn create_lead(&self, data: Json) -> Json {
        let response = self
            .client
            .post(format!("{}/v1/instances", self.base))
            .bearer_auth(&self.token)
            .json(&json!({"definition": "sales-pipeline", "entity": "lead", "data": data}))
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status().as_u16(), 201);
        response.json().await.expect("JSON")
    }

    /// Waits until the diagnostics of `sales-pipeline` say `status` after `since`'s reload.
    async fn reloaded(&self, status: &str, previous_at: &Json) -> Json {
        let start = Instant::now();
        loop {
            let (code, body) = self.get("/v1/definitions/sales-pipeline/diagnostics").await;
            assert_eq!(code, 200, "{body}");
            if body["status"] == status && body.get("reloaded_at") != Some(previous_at) {
                return body;
            }
            assert!(start.elapsed() < PATIENCE, "never reloaded as `{status}`: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_under_a_running_server_are_checked_and_reloaded() {
    each_backend(|db| async move {
        let dir = tempfile::tempdir().expect("a directory");
        let definitions = dir.path().join("definitions");
        std::fs::create_dir(&definitions).expect("a definitions directory");
        let file = definitions.join("sales-pipeline.json");
        let original = std::fs::read_to_string(repo("definitions/sales-pipeline.json")).expect("the file");
        std::fs::write(&file, &original).expect("written");
        let server = Server::start(dir.path(), &definitions, &db.url).await;

        // Never reloaded: the deployed version and no findings.
        let (code, body) = server.get("/v1/definitions/sales-pipeline/diagnostics").await;
        assert_eq!((code, &body["status"], &body["live_version"]), (200, &json!("deployed"), &json!(1)));
        assert_eq!(body["diagnostics"], json!([]));
        let (code, _) = server.get("/v1/definitions/nothing-here/diagnostics").await;
        assert_eq!(code, 404);
        let first = server.create_lead(json!({"lead_score": 50})).await;
        assert_eq!(first["definition_version"], 1, "{first}");

        // A broken edit: an unknown stage. The old version stays live; the findings are served.
        std::fs::write(&file, original.replace("\"to\": \"contacted\"", "\"to\": \"contactd\""))
            .expect("written");
        let body = server.reloaded("invalid", &Json::Null).await;
        assert_eq!(body["live_version"], 1, "{body}");
        let codes: Vec<&str> = body["diagnostics"]
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(|d| d["code"].as_str())
            .collect();
        assert!(!codes.is_empty() && codes.iter().all(|c| c.starts_with("CRM")), "{body}");
        assert!(body["diagnostics"][0]["message"].as_str().is_some_and(|m| m.contains("contactd")), "{body}");
        assert!(body["file"].as_str().is_some_and(|f| f.ends_with("sales-pipeline.json")), "{body}");
        assert_eq!(server.create_lead(json!({})).await["definition_version"], 1);

        // Not even JSON: the file is still known to hold `sales-pipeline`.
        let at = body["reloaded_at"].clone();
        std::fs::write(&file, "{ \"id\": ").expect("written");
        let body = server.reloaded("invalid", &at).await;
        assert_eq!(body["live_version"], 1, "{body}");
        assert!(!body["diagnostics"].as_array().expect("a list").is_empty(), "{body}");

        // A good edit: new instances start on version 2, the running one stays on version 1.
        let changed = original.replace("\"Sales Pipeline CRM\"", "\"Sales Pipeline CRM (reloaded)\"");
        std::fs::write(&file, &changed).expect("written");
        let body = server.reloaded("deployed", &Json::Null).await;
        assert_eq!((&body["live_version"], &body["diagnostics"]), (&json!(2), &json!([])), "{body}");
        assert_eq!(server.create_lead(json!({})).await["definition_version"], 2);
        let (_, running) =
            server.get(&format!("/v1/instances/{}", first["id"].as_str().expect("an id"))).await;
        assert_eq!(running["definition_version"], 1, "{running}");

        // An edit that would strand a live instance (its lead_score no longer validates) is refused.
        let at = body["reloaded_at"].clone();
        std::fs::write(&file, changed.replace("\"max\": 100", "\"max\": 10")).expect("written");
        let body = server.reloaded("strands", &at).await;
        assert_eq!(body["live_version"], 2, "{body}");
        let codes: Vec<&str> = body["diagnostics"]
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(|d| d["code"].as_str())
            .collect();
        assert!(codes.contains(&"CRM0803"), "{body}");

        // A deleted file undeploys nothing.
        std::fs::remove_file(&file).expect("removed");
        let (_, list) = server.get("/v1/definitions").await;
        assert_eq!(list["items"][0]["id"], "sales-pipeline", "{list}");
        assert_eq!(server.create_lead(json!({})).await["definition_version"], 2);
        drop(server);
    })
    .await;
}
