//! The built `crm serve` binary on a free 127.0.0.1 port, on SQLite and PostgreSQL: the README's
//! curl walk-through run verbatim, and SIGTERM under load losing nothing that was acknowledged.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nexus_crm::store::{AnyStore, Store, TenantId};
use serde_json::{Value as Json, json};
use support::db::each_backend;

const CRM: &str = env!("CARGO_BIN_EXE_crm");

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A running `crm serve`, killed if the test fails before stopping it.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// Starts `crm serve` in `dir` on `database` and waits until `/readyz` says ready.
    async fn start(dir: &Path, database: &str) -> Self {
        let mut child = Command::new(CRM)
            .args(["serve", "--listen", "127.0.0.1:0", "--definitions"])
            .arg(repo("definitions"))
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
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected: {line}"))
            .to_owned();
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        let server = Self { child, base };
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(response) = client.get(format!("{}/readyz", server.base)).send().await
                && response.status().is_success()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("crm serve never became ready");
    }

    /// Sends SIGTERM and waits for the exit status.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let killed =
            Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill runs");
        assert!(killed.success());
        self.child.wait().expect("crm serve exits")
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

/// The fenced block after `marker` in README.md.
fn readme_block(marker: &str) -> String {
    let readme = std::fs::read_to_string(repo("README.md")).expect("README.md");
    let after = readme.split_once(marker).unwrap_or_else(|| panic!("README.md has no `{marker}`")).1;
    let fence = after.split_once("```").expect("a fenced block").1;
    let body = fence.split_once('\n').expect("a fence line").1;
    body.split_once("```").expect("a closing fence").0.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walkthrough_runs_verbatim_against_the_binary() {
    each_backend(|db| async move {
        let dir = tempfile::tempdir().expect("a directory");
        let server = Server::start(dir.path(), &db.url).await;
        let script = readme_block("<!-- walkthrough:");
        let expected = readme_block("<!-- walkthrough output -->");
        let bin_dir = Path::new(CRM).parent().expect("the binary's directory");
        let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
        let output = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .env("PATH", path)
            .env("API", &server.base)
            .env("CRM_DATABASE_URL", &db.url)
            .current_dir(dir.path())
            .output()
            .expect("bash runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(stdout, expected);
        drop(server);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_drains_and_loses_nothing_acknowledged() {
    each_backend(|db| async move {
        let dir = tempfile::tempdir().expect("a directory");
        let mut server = Server::start(dir.path(), &db.url).await;
        let store = AnyStore::open(&db.url).await.expect("the store");
        let (token, _) = nexus_crm::http::create_token(
            &store,
            nexus_crm::http::NewToken { tenant: "default".into(), user: "ana".into(), ..Default::default() },
            chrono::Utc::now(),
        )
        .await
        .expect("a token");

        // Eight clients create leads as fast as they can until the server goes away.
        let client = reqwest::Client::new();
        let mut clients = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (client, base, token) = (client.clone(), server.base.clone(), token.clone());
            clients.spawn(async move {
                let mut acknowledged = Vec::new();
                loop {
                    let sent = client
                        .post(format!("{base}/v1/instances"))
                        .bearer_auth(&token)
                        .json(&json!({"definition": "sales-pipeline", "entity": "lead", "data": {}}))
                        .send()
                        .await;
                    let Ok(response) = sent else { break };
                    if response.status() != reqwest::StatusCode::CREATED {
                        break;
                    }
                    let Ok(body) = response.json::<Json>().await else { break };
                    acknowledged.push(body["id"].as_str().expect("an id").to_owned());
                }
                acknowledged
            });
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        let status = tokio::task::spawn_blocking(move || {
            let status = server.terminate();
            drop(server);
            status
        })
        .await
        .expect("terminated");
        assert!(status.success(), "crm serve exits 0 on SIGTERM, got {status}");
        let mut acknowledged = Vec::new();
        while let Some(done) = clients.join_next().await {
            acknowledged.extend(done.expect("a client"));
        }
        assert!(!acknowledged.is_empty(), "the load ran before the signal");
        let tenant = TenantId::new("default");
        for id in &acknowledged {
            assert!(
                store.load_instance(&tenant, id).await.expect("a read").is_some(),
                "acknowledged {id} was lost"
            );
        }
        eprintln!("{} acknowledged creations, all stored", acknowledged.len());
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crm_token_creates_lists_and_revokes_and_a_revoked_token_is_refused_at_once() {
    let dir = tempfile::tempdir().expect("a directory");
    let database = format!("sqlite:{}", dir.path().join("crm.db").display());
    let crm = |args: &[&str]| {
        let output =
            Command::new(CRM).args(args).env("CRM_DATABASE_URL", &database).output().expect("crm runs");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, token, stderr) = crm(&[
        "token",
        "create",
        "--tenant",
        "default",
        "--user",
        "ana",
        "--roles",
        "a,b",
        "--permissions",
        "p",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let token = token.trim().to_owned();
    assert!(token.starts_with("crm_") && token.len() > 40, "{token}");
    assert!(stderr.contains("shown only this once"), "{stderr}");

    let (_, list, _) = crm(&["token", "list"]);
    assert!(!list.contains(&token), "the list never shows a token: {list}");
    let row = list.lines().nth(1).expect("one token");
    assert!(row.contains("\tdefault\tana\ta,b\tp\t"), "{row}");
    assert!(row.contains(&format!("{}…", &token[..10])), "{row}");
    let id = row.split('\t').next().expect("an id").to_owned();

    let server = Server::start(dir.path(), &database).await;
    let client = reqwest::Client::new();
    let get = || client.get(format!("{}/v1/definitions", server.base)).bearer_auth(&token).send();
    assert_eq!(get().await.expect("an answer").status(), reqwest::StatusCode::OK);
    let (code, out, _) = crm(&["token", "revoke", &id]);
    assert_eq!((code, out.trim()), (Some(0), format!("revoked {id}").as_str()));
    assert_eq!(get().await.expect("an answer").status(), reqwest::StatusCode::UNAUTHORIZED);
    let (code, _, err) = crm(&["token", "revoke", &id]);
    assert_eq!(code, Some(2), "revoking twice is an error: {err}");
    let (code, _, err) = crm(&["token", "create", "--tenant", "", "--user", "ana"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("tenant must not be empty"), "{err}");
    drop(server);
}
