//! The HTTP API (`crm serve`, issue #10) against the engine called directly, in one run:
//!
//! - fire over HTTP with 32 concurrent keep-alive clients on one SQLite file, against
//!   `Engine::fire` called directly one at a time (target ≥ 1.0×), with p50/p99;
//! - `GET /v1/instances/{id}` with 32 clients (target ≥ 20,000 requests/s), with p50/p99;
//! - start-up of the built `crm serve` with the shipped definitions until `/readyz` answers
//!   (target ≤ 100 ms), against `crm --version` (process start alone).
//!
//! The server runs in this process on 127.0.0.1 (a free port); clients are reqwest with
//! keep-alive. Not a criterion bench: each measurement is a fixed amount of work timed once per
//! run, printed side by side with its baseline and the ratio.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nexus_crm::engine::eval::Actor;
use nexus_crm::engine::service::Engine;
use nexus_crm::http::{AppState, NewToken, ServerConfig, create_token, serve};
use nexus_crm::store::{AnyStore, TenantId};
use serde_json::{Value as Json, json};
use tokio::task::JoinSet;

/// Two stages and a manual transition each way, so one instance can be fired forever.
const TOGGLE: &str = r#"{"id": "toggle", "entities": {"item": {"stages": ["a", "b"]}},
 "transitions": {"ab": {"from": "a", "to": "b", "trigger": "manual"},
                 "ba": {"from": "b", "to": "a", "trigger": "manual"}}}"#;

const CLIENTS: usize = 32;
const FIRES: usize = 4_000;
const GETS: usize = 64_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

fn line(label: &str, count: usize, elapsed: Duration, latencies: &mut [Duration]) -> f64 {
    latencies.sort();
    let rate = count as f64 / elapsed.as_secs_f64();
    println!(
        "{label:<44}: {rate:>9.0}/s   p50 {:>8.2?}   p99 {:>8.2?}",
        percentile(latencies, 0.50),
        percentile(latencies, 0.99)
    );
    rate
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(run());
    startup();
}

async fn run() {
    let dir = tempfile::tempdir().expect("a directory");
    let url = format!("sqlite:{}", dir.path().join("bench.db").display());
    let store = AnyStore::open(&url).await.expect("a SQLite file");
    let tenant = TenantId::new("bench");
    let engine = Engine::new(store.clone());
    engine.deploy(&tenant, TOGGLE).await.expect("deployed");
    let actor = Actor { id: "ana".into(), ..Actor::default() };

    // Baseline: the engine, one command at a time.
    let mut ids = Vec::new();
    for _ in 0..CLIENTS * 4 {
        ids.push(
            engine.create_instance(&tenant, &actor, "toggle", "item", &Json::Null).await.expect("created").id,
        );
    }
    let mut latencies = Vec::with_capacity(FIRES);
    let mut stage_b = vec![false; ids.len()];
    let started = Instant::now();
    for n in 0..FIRES {
        let i = n % ids.len();
        let name = if stage_b[i] { "ba" } else { "ab" };
        let t = Instant::now();
        engine.fire(&tenant, &actor, &ids[i], name, None).await.expect("fired");
        latencies.push(t.elapsed());
        stage_b[i] = !stage_b[i];
    }
    println!("== fire on one SQLite file ({FIRES} transitions) ==");
    let direct = line("Engine::fire directly, one at a time", FIRES, started.elapsed(), &mut latencies);

    // Fresh instances for the HTTP clients, all in stage `a`.
    let mut ids = Vec::new();
    for _ in 0..CLIENTS * 4 {
        ids.push(
            engine.create_instance(&tenant, &actor, "toggle", "item", &Json::Null).await.expect("created").id,
        );
    }

    // The server, in this process, on a free port.
    let state = AppState::new(engine, ServerConfig { rate_limit: None, ..ServerConfig::default() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state, async move {
        let _ = stopped.await;
    }));
    let (token, _) = create_token(
        &store,
        NewToken { tenant: "bench".into(), user: "ana".into(), ..NewToken::default() },
        chrono::Utc::now(),
    )
    .await
    .expect("a token");
    let client = reqwest::Client::builder().pool_max_idle_per_host(CLIENTS).build().expect("a client");
    let ids = Arc::new(ids);

    // Fire over HTTP: 32 clients, each on its own instances.
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for c in 0..CLIENTS {
        let (client, base, token, ids) = (client.clone(), base.clone(), token.clone(), ids.clone());
        tasks.spawn(async move {
            let mine: Vec<&String> = ids.iter().skip(c).step_by(CLIENTS).collect();
            let mut in_b = vec![false; mine.len()];
            let mut latencies = Vec::new();
            for n in 0..FIRES / CLIENTS {
                let i = n % mine.len();
                let name = if in_b[i] { "ba" } else { "ab" };
                let t = Instant::now();
                let response = client
                    .post(format!("{base}/v1/instances/{}/fire", mine[i]))
                    .bearer_auth(&token)
                    .json(&json!({ "transition": name }))
                    .send()
                    .await
                    .expect("sent");
                assert!(response.status().is_success(), "{}", response.status());
                let _ = response.bytes().await;
                latencies.push(t.elapsed());
                in_b[i] = !in_b[i];
            }
            latencies
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done.expect("a client"));
    }
    let over_http =
        line("POST …/fire over HTTP, 32 keep-alive clients", FIRES, started.elapsed(), &mut latencies);
    println!("{:<44}: {:>9.2}×   (target ≥ 1.0×)", "ratio HTTP / direct", over_http / direct);

    // GET an instance: 32 clients.
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for c in 0..CLIENTS {
        let (client, base, token, ids) = (client.clone(), base.clone(), token.clone(), ids.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            for n in 0..GETS / CLIENTS {
                let id = &ids[(c + n * CLIENTS) % ids.len()];
                let t = Instant::now();
                let response = client
                    .get(format!("{base}/v1/instances/{id}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("sent");
                assert!(response.status().is_success());
                let _ = response.bytes().await;
                latencies.push(t.elapsed());
            }
            latencies
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done.expect("a client"));
    }
    println!("== GET /v1/instances/{{id}} ({GETS} requests) ==");
    line("GET over HTTP, 32 keep-alive clients", GETS, started.elapsed(), &mut latencies);
    println!("{:<44}  (target ≥ 20,000/s)", "");

    let _ = stop.send(());
    let _ = server.await;
    store.close().await;
}

/// `crm serve` from exec to a successful `/readyz`, against `crm --version`.
fn startup() {
    let crm = env!("CARGO_BIN_EXE_crm");
    let definitions = concat!(env!("CARGO_MANIFEST_DIR"), "/definitions");
    let mut serve_times = Vec::new();
    let mut version_times = Vec::new();
    for _ in 0..5 {
        let dir = tempfile::tempdir().expect("a directory");
        let t = Instant::now();
        let status = Command::new(crm).arg("--version").stdout(Stdio::null()).status().expect("crm runs");
        assert!(status.success());
        version_times.push(t.elapsed());

        let t = Instant::now();
        let mut child = Command::new(crm)
            .args(["serve", "--listen", "127.0.0.1:0", "--definitions", definitions])
            .env("CRM_LOG", "error")
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("crm serve starts");
        let mut reader = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        std::io::BufRead::read_line(&mut reader, &mut first).expect("a line");
        let address = first.trim().trim_start_matches("listening on http://").to_owned();
        // The address is printed once the definitions are deployed and /readyz would say ready;
        // one request proves it.
        let ready = std::net::TcpStream::connect(&address).and_then(|mut s| {
            use std::io::{Read, Write};
            s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
            let mut answer = String::new();
            s.read_to_string(&mut answer)?;
            Ok(answer.starts_with("HTTP/1.1 200"))
        });
        serve_times.push(t.elapsed());
        assert!(matches!(ready, Ok(true)), "{ready:?}");
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let _ = child.wait();
    }
    serve_times.sort();
    version_times.sort();
    println!("== start-up with the shipped definitions (5 runs, a fresh SQLite file each) ==");
    println!(
        "{:<44}: median {:>8.2?}   (target ≤ 100 ms)",
        "crm serve until /readyz answers 200", serve_times[2]
    );
    println!("{:<44}: median {:>8.2?}", "crm --version (process start)", version_times[2]);
}
