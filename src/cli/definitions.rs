//! `crm definitions list|show|activate|deactivate`: deployed definitions and their versions.

use clap::{Args, Subcommand};
use serde_json::{Value as Json, json};

use super::shell::{ShellFormat, StoreArgs, engine_error, json_output, short_time, table, with_engine};
use super::{Exit, Output};
use crate::engine::service::Engine;
use crate::store::DefinitionRow;

/// Arguments of `crm definitions`.
#[derive(Debug, Args)]
pub struct DefinitionsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: DefinitionsCommand,
    /// The database and tenant.
    #[command(flatten)]
    pub store: StoreArgs,
    /// How results are printed.
    #[arg(long, value_enum, default_value_t = ShellFormat::Text, global = true)]
    pub format: ShellFormat,
}

/// The subcommands of `crm definitions`.
#[derive(Debug, Subcommand)]
pub enum DefinitionsCommand {
    /// The latest version of every deployed definition, and whether it starts new instances.
    List,
    /// One definition: its versions, and the source of one (`--version`, default the latest).
    Show {
        /// The definition id.
        id: String,
        /// The version whose source `--source` prints (default: the latest).
        #[arg(long, value_name = "N")]
        version: Option<u64>,
        /// Print the source of the version instead of the summary.
        #[arg(long)]
        source: bool,
    },
    /// Let the definition start new instances again.
    Activate {
        /// The definition id.
        id: String,
    },
    /// Stop the definition from starting new instances; running ones continue.
    Deactivate {
        /// The definition id.
        id: String,
    },
}

/// Runs `crm definitions …`.
pub(super) fn run(args: &DefinitionsArgs) -> Output {
    let format = args.format;
    with_engine(&args.store, async |engine: &Engine<_>, tenant| match &args.command {
        DefinitionsCommand::List => match engine.definitions(tenant).await {
            Ok(rows) => list(format, &rows),
            Err(error) => engine_error(&error),
        },
        DefinitionsCommand::Show { id, version, source } => {
            let versions = match engine.definition_versions(tenant, id).await {
                Ok(versions) => versions,
                Err(error) => return engine_error(&error),
            };
            let chosen = match version {
                Some(v) => match versions.iter().find(|row| row.version == *v) {
                    Some(row) => row,
                    None => {
                        let error = crate::engine::service::EngineError::UnknownDefinition {
                            id: format!("{id}@{v}"),
                        };
                        return engine_error(&error);
                    }
                },
                // `definition_versions` never answers an empty list.
                None => match versions.last() {
                    Some(row) => row,
                    None => return Output::failure(format!("definition `{id}` has no versions")),
                },
            };
            if *source {
                let mut text = chosen.source.clone();
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                return Output::stdout(text, Exit::Clean);
            }
            show(format, &versions)
        }
        DefinitionsCommand::Activate { id } => match engine.activate_definition(tenant, id).await {
            Ok(row) => changed(format, &row),
            Err(error) => engine_error(&error),
        },
        DefinitionsCommand::Deactivate { id } => match engine.deactivate_definition(tenant, id).await {
            Ok(row) => changed(format, &row),
            Err(error) => engine_error(&error),
        },
    })
}

fn status(row: &DefinitionRow) -> &'static str {
    if row.active { "active" } else { "inactive" }
}

fn row_json(row: &DefinitionRow) -> Json {
    json!({
        "id": row.id,
        "version": row.version,
        "name": row.name,
        "active": row.active,
        "checksum": row.checksum,
        "deployed_at": row.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    })
}

fn list(format: ShellFormat, rows: &[DefinitionRow]) -> Output {
    match format {
        ShellFormat::Json => {
            json_output(&json!({ "definitions": rows.iter().map(row_json).collect::<Vec<_>>() }))
        }
        ShellFormat::Text if rows.is_empty() => {
            Output::stdout("no definitions deployed\n".to_owned(), Exit::Clean)
        }
        ShellFormat::Text => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.id.clone(),
                        r.version.to_string(),
                        status(r).to_owned(),
                        short_time(r.created_at),
                        r.name.clone(),
                    ]
                })
                .collect();
            Output::stdout(table(&["ID", "VERSION", "STATUS", "DEPLOYED", "NAME"], &cells), Exit::Clean)
        }
    }
}

/// The definition's versions, oldest first; the last is the latest.
fn show(format: ShellFormat, versions: &[DefinitionRow]) -> Output {
    let Some(latest) = versions.last() else {
        return Output::failure("no versions");
    };
    match format {
        ShellFormat::Json => json_output(&json!({
            "id": latest.id,
            "name": latest.name,
            "active": latest.active,
            "latest_version": latest.version,
            "versions": versions.iter().map(row_json).collect::<Vec<_>>(),
        })),
        ShellFormat::Text => {
            let mut out = format!(
                "{} ({})\nstatus: {}\nlatest version: {}\n\n",
                latest.id,
                latest.name,
                status(latest),
                latest.version
            );
            let cells: Vec<Vec<String>> = versions
                .iter()
                .rev()
                .map(|r| {
                    vec![
                        r.version.to_string(),
                        short_time(r.created_at),
                        r.checksum.chars().take(12).collect(),
                    ]
                })
                .collect();
            out.push_str(&table(&["VERSION", "DEPLOYED", "CHECKSUM"], &cells));
            Output::stdout(out, Exit::Clean)
        }
    }
}

fn changed(format: ShellFormat, row: &DefinitionRow) -> Output {
    match format {
        ShellFormat::Json => json_output(&row_json(row)),
        ShellFormat::Text => Output::stdout(
            format!("{} is {} (latest version {})\n", row.id, status(row), row.version),
            Exit::Clean,
        ),
    }
}
