//! `crm token create|list|revoke`: API tokens for `crm serve`. A token is printed once, at
//! creation; the database keeps only its SHA-256.

use clap::{Args, Subcommand};

use super::{Exit, Output};
use crate::http::{NewToken, create_token};
use crate::store::{AnyStore, Store, TenantId};

/// Arguments of `crm token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// `postgres://…` for PostgreSQL; a file path or `sqlite:PATH` for the embedded SQLite store.
    #[arg(long, env = "CRM_DATABASE_URL", default_value = "sqlite:crm.db", global = true)]
    pub database: String,
    /// What to do.
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// The subcommands of `crm token`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (once: only its hash is stored).
    Create {
        /// The tenant every request with this token is scoped to.
        #[arg(long)]
        tenant: String,
        /// The acting user.
        #[arg(long)]
        user: String,
        /// Roles, comma-separated.
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
        /// Permissions, comma-separated (e.g. `definitions:deploy,dashboard:read_any`).
        #[arg(long, value_delimiter = ',')]
        permissions: Vec<String>,
        /// A note shown by `crm token list`.
        #[arg(long)]
        label: Option<String>,
    },
    /// List tokens (never the tokens themselves).
    List {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revoke a token by id; it is refused from the next request on.
    Revoke {
        /// The token's id, as `crm token list` shows it.
        id: String,
    },
}

/// Runs `crm token`.
pub fn run(args: &TokenArgs) -> Output {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return Output::failure(format!("cannot start the async runtime: {error}")),
    };
    runtime.block_on(async {
        let store = match AnyStore::open(&args.database).await {
            Ok(store) => store,
            Err(error) => return Output::failure(format!("cannot open `{}`: {error}", args.database)),
        };
        let output = command(&store, &args.command).await;
        store.close().await;
        output
    })
}

async fn command(store: &AnyStore, command: &TokenCommand) -> Output {
    let now = chrono::Utc::now();
    match command {
        TokenCommand::Create { tenant, user, roles, permissions, label } => {
            let new = NewToken {
                tenant: tenant.clone(),
                user: user.clone(),
                roles: roles.clone(),
                permissions: permissions.clone(),
                label: label.clone(),
            };
            match create_token(store, new, now).await {
                Ok((text, row)) => Output {
                    stdout: format!("{text}\n"),
                    stderr: format!(
                        "created token {} for user `{}` in tenant `{}`; it is shown only this once\n",
                        row.id, row.user_id, row.tenant
                    ),
                    exit: Exit::Clean,
                },
                Err(error) => Output::failure(error),
            }
        }
        TokenCommand::List { tenant } => {
            let tenant = tenant.as_ref().map(TenantId::new);
            match store.api_tokens(tenant.as_ref()).await {
                Ok(rows) => {
                    let mut out =
                        String::from("ID\tTENANT\tUSER\tROLES\tPERMISSIONS\tPREFIX\tCREATED\tREVOKED\n");
                    for r in rows {
                        out.push_str(&format!(
                            "{}\t{}\t{}\t{}\t{}\t{}…\t{}\t{}\n",
                            r.id,
                            r.tenant,
                            r.user_id,
                            r.roles.join(","),
                            r.permissions.join(","),
                            r.prefix,
                            r.created_at.to_rfc3339(),
                            r.revoked_at.map_or_else(|| "-".to_owned(), |t| t.to_rfc3339()),
                        ));
                    }
                    Output::stdout(out, Exit::Clean)
                }
                Err(error) => Output::failure(error),
            }
        }
        TokenCommand::Revoke { id } => match store.revoke_api_token(id, now).await {
            Ok(true) => Output::stdout(format!("revoked {id}\n"), Exit::Clean),
            Ok(false) => Output::failure(format!("no unrevoked token `{id}`")),
            Err(error) => Output::failure(error),
        },
    }
}
