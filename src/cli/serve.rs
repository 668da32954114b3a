//! `crm serve`: the HTTP API on a database, with the definitions of a directory deployed at
//! start. SIGINT and SIGTERM stop accepting connections and let in-flight requests finish;
//! every command is one transaction, so nothing is half-written either way.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::reload::Reloader;
use super::{Exit, Output};
use crate::engine::service::Engine;
use crate::http::{AppState, RateLimit, ServerConfig};
use crate::store::{AnyStore, Store, TenantId};

/// Arguments of `crm serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// `postgres://…` for PostgreSQL; a file path or `sqlite:PATH` for the embedded SQLite store.
    #[arg(long, env = "CRM_DATABASE_URL", default_value = "sqlite:crm.db")]
    pub database: String,
    /// Definition files deployed at start (a directory searched for `*.json`, or one file).
    #[arg(long, value_name = "DIR", default_value = "definitions/")]
    pub definitions: PathBuf,
    /// The tenant the start-up definitions are deployed to.
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// The address to listen on (`127.0.0.1:0` picks a free port, printed at start).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Requests per second each token may make on average (twice that at once); 0 for no limit.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub rate_limit: u32,
    /// Do not watch the definitions for changes (by default a saved file is checked and deployed
    /// while the server runs; one with errors, or one that would strand live instances, is not).
    #[arg(long)]
    pub no_watch: bool,
    /// How log lines look.
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Where attachments go and how large they may be.
    #[command(flatten)]
    pub attachments: super::records::AttachmentStoreArgs,
}

/// Log formats of `crm serve`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Runs `crm serve` until SIGINT or SIGTERM.
pub fn run(args: &ServeArgs) -> Output {
    init_logs(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return Output::failure(format!("cannot start the async runtime: {error}")),
    };
    runtime.block_on(serve(args))
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CRM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second initialisation (tests calling `run` twice) keeps the first subscriber.
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

async fn serve(args: &ServeArgs) -> Output {
    let store = match AnyStore::open(&args.database).await {
        Ok(store) => store,
        Err(error) => return Output::failure(format!("cannot open `{}`: {error}", args.database)),
    };
    let listener = match tokio::net::TcpListener::bind(&args.listen).await {
        Ok(listener) => listener,
        Err(error) => return Output::failure(format!("cannot listen on `{}`: {error}", args.listen)),
    };
    let address = match listener.local_addr() {
        Ok(address) => address,
        Err(error) => return Output::failure(format!("cannot read the listening address: {error}")),
    };
    let rate_limit = (args.rate_limit > 0).then(|| RateLimit {
        per_second: f64::from(args.rate_limit),
        burst: 2.0 * f64::from(args.rate_limit),
    });
    let config =
        ServerConfig { rate_limit, attachments: args.attachments.config(), ..ServerConfig::default() };
    let state = AppState::new(Engine::new(store.clone()), config);
    state.set_ready(false);
    let tenant = TenantId::new(args.tenant.clone());
    let ids = match deploy_all(&state, &tenant, &args.definitions).await {
        Ok(ids) => ids,
        Err(message) => {
            store.close().await;
            return Output::failure(message);
        }
    };
    // Kept until the server stops: dropping it stops watching.
    let _watch = if args.no_watch || !args.definitions.exists() {
        None
    } else {
        match Reloader::new(state.clone(), tenant.clone(), ids).watch(&args.definitions) {
            Ok(watch) => Some(watch),
            Err(message) => {
                store.close().await;
                return Output::failure(message);
            }
        }
    };
    state.set_ready(true);
    // The first line on stdout says where to connect (tests read the port from it).
    let _ = writeln!(std::io::stdout().lock(), "listening on http://{address}");
    let _ = std::io::stdout().flush();
    match store.api_tokens(Some(&tenant)).await {
        Ok(tokens) if tokens.is_empty() => tracing::info!(
            "no API token for tenant `{tenant}` yet: create one with `crm token create --database {} --tenant \
             {tenant} --user YOU --permissions definitions:deploy` and send it as `Authorization: Bearer …`",
            args.database
        ),
        _ => {}
    }
    tracing::info!(%address, backend = store.backend(), "serving");
    let served = crate::http::serve(listener, state, shutdown_signal()).await;
    store.close().await;
    match served {
        Ok(()) => {
            tracing::info!("stopped");
            Output { stdout: String::new(), stderr: String::new(), exit: Exit::Clean }
        }
        Err(error) => Output::failure(format!("server failed: {error}")),
    }
}

/// Deploys every `*.json` under `path` (or the file itself) to `tenant`; a missing default
/// directory is not an error, a definition with errors is. Returns which file holds which id.
async fn deploy_all(
    state: &AppState,
    tenant: &TenantId,
    path: &Path,
) -> Result<HashMap<PathBuf, String>, String> {
    let files = if path.is_file() {
        vec![path.to_owned()]
    } else if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|ext| ext == "json"))
            .collect();
        files.sort();
        files
    } else {
        tracing::warn!(path = %path.display(), "no definitions to deploy");
        return Ok(HashMap::new());
    };
    let mut ids = HashMap::new();
    for file in files {
        let source =
            std::fs::read_to_string(&file).map_err(|e| format!("cannot read `{}`: {e}", file.display()))?;
        match state.engine().deploy(tenant, &source).await {
            Ok(deployed) => {
                tracing::info!(
                    file = %file.display(), id = %deployed.id, version = deployed.version, created = deployed.created,
                    "deployed"
                );
                ids.insert(std::path::absolute(&file).unwrap_or_else(|_| file.clone()), deployed.id);
            }
            Err(error) => {
                return Err(format!(
                    "cannot deploy `{}`: {error} (run `crm check {}` for details)",
                    file.display(),
                    file.display()
                ));
            }
        }
    }
    Ok(ids)
}

/// Completes on SIGINT or SIGTERM (Ctrl-C elsewhere); never, if no handler can be installed.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
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
    #[cfg(not(unix))]
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
    tracing::info!("shutting down: draining in-flight requests");
}
