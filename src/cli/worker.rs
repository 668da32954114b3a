//! `crm worker`: fires due timers and delivers the outbox against a database.
//!
//! Webhook and Slack actions are delivered for real ([`Registry::standard`]: signed, through the
//! SSRF guard, `--allow` widening it, `--timeout-ms` per attempt); actions no integration handles
//! here (e-mail, notify, assign, custom plugins) are written as one JSON line each on stdout
//! (`{"action": …}`) and counted delivered, a line an operator can act on. `--dry-run` prints every
//! action that way and sends nothing. Domain events have no subscribers here; they are marked
//! delivered.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{Exit, Output, WorkerArgs};
use crate::engine::service::{ActionFailure, ActionSuccess, Delivered, Engine};
use crate::engine::worker::{Worker, WorkerConfig};
use crate::integrations::guard::{AddressPolicy, Allowed};
use crate::integrations::webhook::HttpConfig;
use crate::integrations::{ActionFuture, Integration, Registry, StoreLedger};
use crate::store::AnyStore;

/// Runs `crm worker`.
pub fn run(args: &WorkerArgs) -> Output {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return Output::failure(format!("cannot start the async runtime: {error}")),
    };
    let mut config = WorkerConfig {
        lease: Duration::from_secs(args.lease_seconds.max(1)),
        batch: args.batch.max(1),
        poll: Duration::from_millis(args.poll_ms),
        ..WorkerConfig::default()
    };
    if let Some(id) = &args.worker_id {
        config.id.clone_from(id);
    }
    let allow = match args.allow.iter().map(|a| Allowed::parse(a)).collect::<Result<Vec<_>, _>>() {
        Ok(allow) => allow,
        Err(error) => return Output::failure(format!("--allow: {error}")),
    };
    runtime.block_on(async {
        let store = match AnyStore::open(&args.database).await {
            Ok(store) => store,
            Err(error) => return Output::failure(format!("cannot open `{}`: {error}", args.database)),
        };
        let registry = if args.dry_run {
            Registry::new()
        } else {
            let http = HttpConfig {
                timeout: Duration::from_millis(args.timeout_ms.max(1)),
                policy: Arc::new(AddressPolicy::with_allowed(allow)),
                ..HttpConfig::default()
            };
            match Registry::standard(&http, Arc::new(StoreLedger(store.clone()))) {
                Ok(registry) => registry,
                Err(error) => return Output::failure(error),
            }
        };
        let mut engine = Engine::new(store.clone()).with_action_handler(registry.with_fallback(LogActions));
        if let Some(now) = args.now {
            engine = engine.with_clock(move || now);
        }
        let worker = Worker::new(config);
        let result = if args.once {
            worker.run_once(&engine).await
        } else {
            // Ctrl-C ends the loop between passes. Each timer and outbox item is its own leased
            // transaction, so even a harder stop leaves nothing half-done: what the process held is
            // claimed again when its lease ends.
            let shutdown = interrupted();
            worker.run(&engine, shutdown, |pass| println!("{pass}")).await
        };
        store.close().await;
        match result {
            Ok(pass) => {
                let mut text = format!("{pass}\n");
                for skipped in &pass.timers.skipped {
                    text.push_str(&format!("skipped timer {skipped}\n"));
                }
                for dead in &pass.outbox.dead {
                    text.push_str(&format!("dead-lettered {dead}\n"));
                }
                Output::stdout(text, Exit::Clean)
            }
            Err(error) => Output::failure(format!("worker stopped: {error}")),
        }
    })
}

/// Completes on Ctrl-C (SIGINT) or, on Unix, SIGTERM. The handlers are installed before the
/// first pass, so a signal that arrives early still stops the worker cleanly rather than killing
/// it; when none can be installed the future never completes and the default action applies.
fn interrupted() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                (Ok(mut only), Err(_)) | (Err(_), Ok(mut only)) => {
                    only.recv().await;
                }
                (Err(_), Err(_)) => std::future::pending().await,
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Delivers actions to stdout, one JSON line each.
struct LogActions;

impl Integration for LogActions {
    fn execute<'a>(&'a self, action: &'a Delivered) -> ActionFuture<'a> {
        Box::pin(async move {
            let line = json!({
                "action": action.name,
                "kind": action.kind.as_str(),
                "tenant": action.tenant.as_str(),
                "instance": action.instance_id,
                "outbox_id": action.id,
                "payload": action.payload,
            });
            writeln!(std::io::stdout().lock(), "{line}")
                .map(|()| ActionSuccess::default())
                .map_err(|e| ActionFailure::retry(format!("cannot write to stdout: {e}")))
        })
    }

    fn compensate<'a>(&'a self, action: &'a Delivered) -> ActionFuture<'a> {
        self.execute(action)
    }
}
