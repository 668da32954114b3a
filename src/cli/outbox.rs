//! `crm outbox`: what operators need to see and do about deliveries: list items, show one with
//! every attempt, replay dead letters, discard what should never be delivered, and list or
//! re-enable webhook endpoints disabled by a 410.

use std::fmt::Write as _;

use chrono::{SecondsFormat, Utc};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use super::{Exit, Output};
use crate::store::{AnyStore, OutboxQuery, OutboxRow, OutboxStatus, Store, StoreError, TenantId};

/// Arguments of `crm outbox`.
#[derive(Debug, Args)]
pub struct OutboxArgs {
    /// `postgres://…` for PostgreSQL; a file path or `sqlite:PATH` for the embedded SQLite store.
    #[arg(long, env = "CRM_DATABASE_URL", default_value = "sqlite:crm.db", global = true)]
    pub database: String,
    /// The tenant whose outbox is inspected.
    #[arg(long, env = "CRM_TENANT", default_value = "default", global = true)]
    pub tenant: String,
    /// `text` for people, `json` for scripts.
    #[arg(long, value_enum, default_value_t = OutboxFormat::Text, global = true)]
    pub format: OutboxFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: OutboxCommand,
}

/// Output formats of `crm outbox`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutboxFormat {
    /// One line per item.
    Text,
    /// JSON.
    Json,
}

/// The subcommands of `crm outbox`.
#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List items by id (dead letters with `--status dead`).
    List {
        /// Only items in this state.
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        /// Only items after this id (the last id of the previous page).
        #[arg(long, value_name = "ID")]
        after: Option<String>,
        /// At most this many (default 50, at most 500).
        #[arg(long, value_name = "N", default_value_t = 50)]
        limit: u32,
    },
    /// Show one item and every delivery attempt.
    Show {
        /// The item's id.
        id: String,
    },
    /// Put dead-lettered items back in the queue, due now, with their retries reset.
    Replay {
        /// The items' ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Give up on undelivered items for good.
    Discard {
        /// The items' ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// List webhook endpoints disabled because they answered 410 Gone.
    Endpoints {
        /// Re-enable this endpoint instead.
        #[arg(long, value_name = "URL")]
        enable: Option<String>,
    },
}

/// An item state on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    /// Waiting for (another) attempt.
    Pending,
    /// Delivered.
    Done,
    /// Dead-lettered (or discarded).
    Dead,
}

/// Runs `crm outbox`.
pub fn run(args: &OutboxArgs) -> Output {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return Output::failure(format!("cannot start the async runtime: {error}")),
    };
    runtime.block_on(async {
        let store = match AnyStore::open(&args.database).await {
            Ok(store) => store,
            Err(error) => return Output::failure(format!("cannot open `{}`: {error}", args.database)),
        };
        let tenant = TenantId::new(args.tenant.clone());
        let output = match execute(&store, &tenant, args).await {
            Ok(output) => output,
            Err(error) => Output::failure(error),
        };
        store.close().await;
        output
    })
}

async fn execute(store: &AnyStore, tenant: &TenantId, args: &OutboxArgs) -> Result<Output, StoreError> {
    let json = args.format == OutboxFormat::Json;
    let mut out = String::new();
    match &args.command {
        OutboxCommand::List { status, after, limit } => {
            let status = status.map(|s| match s {
                StatusArg::Pending => OutboxStatus::Pending,
                StatusArg::Done => OutboxStatus::Done,
                StatusArg::Dead => OutboxStatus::Dead,
            });
            let query = OutboxQuery { status, after: after.clone(), limit: *limit };
            let items = store.outbox_items(tenant, &query).await?;
            if json {
                out = pretty(&json!(items.iter().map(item_json).collect::<Vec<_>>()));
            } else {
                for item in &items {
                    let _ = writeln!(
                        out,
                        "{}  {:<9}  {:<12}  {}  attempts {}{}",
                        item.id,
                        state(item),
                        item.kind.as_str(),
                        item.name,
                        item.attempts,
                        item.last_error.as_deref().map(|e| format!("  last error: {e}")).unwrap_or_default()
                    );
                }
                if items.is_empty() {
                    out.push_str("no items\n");
                }
            }
        }
        OutboxCommand::Show { id } => {
            let Some(item) = store.outbox_item(tenant, id).await? else {
                return Ok(Output::failure(format!(
                    "no outbox item `{id}` for tenant `{}`",
                    tenant.as_str()
                )));
            };
            let attempts = store.outbox_attempts(tenant, id).await?;
            if json {
                let attempts: Vec<_> = attempts
                    .iter()
                    .map(|a| {
                        json!({
                            "attempt": a.attempt,
                            "worker": a.worker,
                            "started_at": a.started_at.to_rfc3339_opts(SecondsFormat::Micros, true),
                            "latency_us": a.latency_us,
                            "outcome": a.outcome.as_str(),
                            "http_status": a.http_status,
                            "error": a.error,
                        })
                    })
                    .collect();
                let mut value = item_json(&item);
                value["attempt_history"] = json!(attempts);
                out = pretty(&value);
            } else {
                let _ =
                    writeln!(out, "{} {} `{}` ({})", item.kind.as_str(), item.id, item.name, state(&item));
                if let Some(instance) = &item.instance_id {
                    let _ = writeln!(out, "instance: {instance}");
                }
                let _ = writeln!(out, "payload: {}", item.payload);
                for a in &attempts {
                    let _ = writeln!(
                        out,
                        "attempt {} by {} at {}: {} in {:.1} ms{}{}",
                        a.attempt,
                        a.worker,
                        a.started_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                        a.outcome.as_str(),
                        a.latency_us as f64 / 1000.0,
                        a.http_status.map(|s| format!(", HTTP {s}")).unwrap_or_default(),
                        a.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default(),
                    );
                }
                if attempts.is_empty() {
                    out.push_str("no attempts yet\n");
                }
            }
        }
        OutboxCommand::Replay { ids } | OutboxCommand::Discard { ids } => {
            let replay = matches!(args.command, OutboxCommand::Replay { .. });
            let now = Utc::now();
            let mut failed = Vec::new();
            for id in ids {
                let result = if replay {
                    store.replay_outbox(tenant, id, now).await
                } else {
                    store.discard_outbox(tenant, id, now).await
                };
                match result {
                    Ok(()) => {
                        let _ = writeln!(out, "{} {id}", if replay { "replayed" } else { "discarded" });
                    }
                    Err(StoreError::NotFound { what, .. }) => failed.push(format!("no {what} `{id}`")),
                    Err(error) => return Err(error),
                }
            }
            if !failed.is_empty() {
                let stderr = failed.iter().map(|f| format!("error: {f}\n")).collect();
                return Ok(Output { stdout: out, stderr, exit: Exit::Failure });
            }
        }
        OutboxCommand::Endpoints { enable } => {
            if let Some(url) = enable {
                store.enable_endpoint(tenant, url).await?;
                let _ = writeln!(out, "enabled {url}");
            } else {
                let endpoints = store.disabled_endpoints(tenant, None).await?;
                if json {
                    let list: Vec<_> = endpoints
                        .iter()
                        .map(|e| {
                            json!({
                                "url": e.url,
                                "disabled_at": e.disabled_at.to_rfc3339_opts(SecondsFormat::Micros, true),
                                "reason": e.reason,
                                "outbox_id": e.outbox_id,
                            })
                        })
                        .collect();
                    out = pretty(&json!(list));
                } else {
                    for e in &endpoints {
                        let _ = writeln!(
                            out,
                            "{}  disabled {}: {}",
                            e.url,
                            e.disabled_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                            e.reason
                        );
                    }
                    if endpoints.is_empty() {
                        out.push_str("no disabled endpoints\n");
                    }
                }
            }
        }
    }
    Ok(Output::stdout(out, Exit::Clean))
}

/// `pending`, `done`, `dead` or `discarded`.
fn state(item: &OutboxRow) -> &'static str {
    if item.discarded_at.is_some() { "discarded" } else { item.status.as_str() }
}

fn item_json(item: &OutboxRow) -> serde_json::Value {
    json!({
        "id": item.id,
        "kind": item.kind.as_str(),
        "name": item.name,
        "status": state(item),
        "instance": item.instance_id,
        "attempts": item.attempts,
        "next_attempt_at": item.next_attempt_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "created_at": item.created_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "processed_at": item.processed_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true)),
        "last_error": item.last_error,
        "payload": item.payload,
    })
}

fn pretty(value: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}
