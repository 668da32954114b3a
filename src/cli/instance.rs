//! `crm instance create|show|update|fire|approve|reject|assign|history` and `crm pending`: one
//! engine call each, the same call the HTTP API makes, printed as text or JSON.
//!
//! Exit statuses: 0 done, 1 the engine refused (unknown instance, wrong stage, invalid data, a
//! conflict, …: the message carries the engine's stable code), 2 usage, I/O or database error.

use clap::{Args, Subcommand};
use serde_json::{Map, Value as Json, json};

use super::shell::{
    ShellFormat, StoreArgs, engine_error, json_output, short_time, sorted, table, with_engine,
};
use super::{Exit, Output};
use crate::engine::eval::Actor;
use crate::engine::machine::{InstanceStatus, TokenStatus, Vote};
use crate::engine::service::{Engine, EngineError, InstanceView};
use crate::store::{
    AnyStore, Cursor, HistoryRow, InstanceQuery, InstanceRow, Page, PendingItem, PendingQuery, PendingReason,
    Store, StoredInstanceStatus, TenantId,
};

/// Who acts: the user a command runs as.
#[derive(Debug, Args)]
pub struct ActorArgs {
    /// The acting user's id (required by commands that change an instance).
    #[arg(long = "as", value_name = "ACTOR", env = "CRM_ACTOR", global = true)]
    pub actor: Option<String>,
    /// The acting user's roles, comma-separated.
    #[arg(long, value_name = "ROLE,…", value_delimiter = ',', global = true)]
    pub roles: Vec<String>,
    /// The acting user's permissions, comma-separated.
    #[arg(long, value_name = "PERMISSION,…", value_delimiter = ',', global = true)]
    pub permissions: Vec<String>,
}

/// Arguments of `crm instance`.
#[derive(Debug, Args)]
pub struct InstanceArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: InstanceCommand,
    /// The database and tenant.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Who acts.
    #[command(flatten)]
    pub actor: ActorArgs,
    /// How results are printed.
    #[arg(long, value_enum, default_value_t = ShellFormat::Text, global = true)]
    pub format: ShellFormat,
}

/// The subcommands of `crm instance`.
#[derive(Debug, Subcommand)]
pub enum InstanceCommand {
    /// Start an instance of an entity on the definition's latest version.
    Create {
        /// The definition id.
        definition: String,
        /// The entity, e.g. `lead`.
        entity: String,
        /// Its data: a JSON object.
        #[arg(long, value_name = "JSON", default_value = "{}")]
        data: String,
    },
    /// Instances, filtered, in the order the HTTP API lists them; a page at a time (`--after`).
    List {
        /// Only instances of this definition.
        #[arg(long, value_name = "ID")]
        definition: Option<String>,
        /// Only instances of this entity.
        #[arg(long, value_name = "NAME")]
        entity: Option<String>,
        /// Only instances in this stage.
        #[arg(long, value_name = "NAME")]
        stage: Option<String>,
        /// Only active or only completed instances.
        #[arg(long, value_enum)]
        status: Option<ListStatus>,
        /// Only instances assigned to this user.
        #[arg(long, value_name = "USER")]
        assignee: Option<String>,
        /// Page size (at most 500).
        #[arg(long, value_name = "N", default_value_t = 50)]
        limit: u32,
        /// The page after this cursor.
        #[arg(long, value_name = "CURSOR")]
        after: Option<String>,
    },
    /// An instance as last committed, by id or by its human-readable number.
    Show {
        /// The instance id.
        #[arg(required_unless_present = "number")]
        id: Option<String>,
        /// Find the instance by its number instead (e.g. `LEAD-2026-0001`).
        #[arg(long, value_name = "NUMBER", conflicts_with = "id")]
        number: Option<String>,
    },
    /// Merge a JSON patch into the data (a key sets its field, `null` removes it).
    Update {
        /// The instance id.
        id: String,
        /// The patch: a JSON object.
        #[arg(long, value_name = "JSON")]
        data: String,
        /// Only if the instance is still at this version (default: its current version).
        #[arg(long, value_name = "N")]
        if_version: Option<u64>,
    },
    /// Fire a transition or gateway by name.
    Fire {
        /// The instance id.
        id: String,
        /// The transition or gateway.
        transition: String,
        /// Only if the instance is still at this version.
        #[arg(long, value_name = "N")]
        if_version: Option<u64>,
    },
    /// Approve the transition waiting for approval.
    Approve {
        /// The instance id.
        id: String,
        /// The transition (default: the one pending).
        transition: Option<String>,
    },
    /// Reject the transition waiting for approval.
    Reject {
        /// The instance id.
        id: String,
        /// The transition (default: the one pending).
        transition: Option<String>,
    },
    /// Assign the instance to a user (or to whom their delegations lead).
    Assign {
        /// The instance id.
        id: String,
        /// The user.
        user: String,
        /// Only if the instance is still at this version.
        #[arg(long, value_name = "N")]
        if_version: Option<u64>,
    },
    /// The instance's audit history, oldest first.
    History {
        /// The instance id.
        id: String,
    },
}

/// `--status` of `crm instance list`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ListStatus {
    /// Instances that can still move.
    Active,
    /// Instances in a terminal stage.
    Completed,
}

/// Arguments of `crm pending`.
#[derive(Debug, Args)]
pub struct PendingArgs {
    /// Whose dashboard: assigned to them, delegated to them, or awaiting their approval.
    #[arg(long, value_name = "USER")]
    pub user: String,
    /// Only instances of this definition.
    #[arg(long, value_name = "ID")]
    pub definition: Option<String>,
    /// Only instances of this entity.
    #[arg(long, value_name = "NAME")]
    pub entity: Option<String>,
    /// Only instances in this stage.
    #[arg(long, value_name = "NAME")]
    pub stage: Option<String>,
    /// Page size (at most 500).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: u32,
    /// The page after this cursor (printed at the end of the previous page).
    #[arg(long, value_name = "CURSOR")]
    pub after: Option<String>,
    /// The database and tenant.
    #[command(flatten)]
    pub store: StoreArgs,
    /// How results are printed.
    #[arg(long, value_enum, default_value_t = ShellFormat::Text)]
    pub format: ShellFormat,
}

/// Runs `crm instance …`.
pub(super) fn run(args: &InstanceArgs) -> Output {
    let format = args.format;
    let actor = match (&args.command, actor(&args.actor)) {
        (
            InstanceCommand::Show { .. } | InstanceCommand::History { .. } | InstanceCommand::List { .. },
            actor,
        ) => actor.unwrap_or_default(),
        (_, Some(actor)) => actor,
        (_, None) => {
            return Output::failure("this command changes an instance: say who acts with `--as ACTOR`");
        }
    };
    // Arguments are checked before the database is opened.
    let data = match &args.command {
        InstanceCommand::Create { data, .. } | InstanceCommand::Update { data, .. } => match object(data) {
            Ok(data) => Some(data),
            Err(output) => return output,
        },
        _ => None,
    };
    with_engine(&args.store, async |engine: &Engine<AnyStore>, tenant| {
        let result = command(engine, tenant, &actor, &args.command, data).await;
        match result {
            Ok(Done::Instance(view)) => instance_output(format, &view),
            Ok(Done::History(rows)) => history_output(format, &rows),
            Ok(Done::List(page)) => list_output(format, &page),
            Ok(Done::NothingPending(id)) => Output {
                stdout: String::new(),
                stderr: format!(
                    "error: instance `{id}` awaits no approval [crm::machine::no_pending_approval]\n"
                ),
                exit: Exit::Findings,
            },
            Err(error) => engine_error(&error),
        }
    })
}

/// What a command produced.
enum Done {
    Instance(Box<InstanceView>),
    History(Vec<HistoryRow>),
    List(Page<InstanceRow>),
    /// A vote without a transition on an instance that awaits no approval.
    NothingPending(String),
}

async fn command(
    engine: &Engine<AnyStore>,
    tenant: &TenantId,
    actor: &Actor,
    command: &InstanceCommand,
    data: Option<Map<String, Json>>,
) -> Result<Done, EngineError> {
    let data = data.unwrap_or_default();
    let view = match command {
        InstanceCommand::Create { definition, entity, .. } => {
            engine.create_instance(tenant, actor, definition, entity, &Json::Object(data)).await?
        }
        InstanceCommand::Show { id: Some(id), .. } => engine.instance(tenant, id).await?,
        InstanceCommand::Show { id: None, number } => {
            // clap requires one of the two.
            engine.instance_by_number(tenant, number.as_deref().unwrap_or_default()).await?
        }
        InstanceCommand::List { definition, entity, stage, status, assignee, limit, after } => {
            let query = InstanceQuery {
                definition: definition.clone(),
                entity: entity.clone(),
                stage: stage.clone(),
                status: status.map(|s| match s {
                    ListStatus::Active => StoredInstanceStatus::Active,
                    ListStatus::Completed => StoredInstanceStatus::Completed,
                }),
                assignee: assignee.clone(),
                limit: *limit,
                after: after.clone().map(Cursor::from_string),
                ..InstanceQuery::default()
            };
            // The listing the HTTP API serves: a read of the store, no engine rule involved.
            return Ok(Done::List(engine.store().instances(tenant, &query).await?));
        }
        InstanceCommand::Update { id, if_version, .. } => {
            let version = match if_version {
                Some(version) => *version,
                None => engine.instance(tenant, id).await?.version,
            };
            engine.update_data(tenant, actor, id, version, &data).await?
        }
        InstanceCommand::Fire { id, transition, if_version } => {
            engine.fire(tenant, actor, id, transition, *if_version).await?
        }
        InstanceCommand::Approve { id, transition } | InstanceCommand::Reject { id, transition } => {
            let vote =
                if matches!(command, InstanceCommand::Approve { .. }) { Vote::Approve } else { Vote::Reject };
            match respond(engine, tenant, actor, id, transition.as_deref(), vote).await? {
                Some(view) => view,
                None => return Ok(Done::NothingPending(id.clone())),
            }
        }
        InstanceCommand::Assign { id, user, if_version } => {
            engine.assign(tenant, actor, id, user, *if_version).await?
        }
        InstanceCommand::History { id } => return Ok(Done::History(engine.history(tenant, id).await?)),
    };
    Ok(Done::Instance(Box::new(view)))
}

/// Votes on `transition`, or on the one pending when none is named (`None` when nothing is).
async fn respond(
    engine: &Engine<AnyStore>,
    tenant: &TenantId,
    actor: &Actor,
    id: &str,
    transition: Option<&str>,
    vote: Vote,
) -> Result<Option<InstanceView>, EngineError> {
    let transition = match transition {
        Some(name) => name.to_owned(),
        None => match engine.instance(tenant, id).await?.pending_approval {
            Some(pending) => pending.transition,
            None => return Ok(None),
        },
    };
    engine.respond(tenant, actor, id, &transition, vote).await.map(Some)
}

/// The actor of `--as`, `--roles`, `--permissions`; `None` without `--as`.
fn actor(args: &ActorArgs) -> Option<Actor> {
    let id = args.actor.as_ref().filter(|id| !id.trim().is_empty())?;
    Some(Actor { id: id.clone(), roles: args.roles.clone(), permissions: args.permissions.clone() })
}

/// `--data` as a JSON object, or a usage error that says what is wrong with it.
fn object(text: &str) -> Result<Map<String, Json>, Output> {
    match serde_json::from_str::<Json>(text) {
        Ok(Json::Object(map)) => Ok(map),
        Ok(other) => Err(Output::failure(format!("--data must be a JSON object, not {}", kind(&other)))),
        Err(error) => Err(Output::failure(format!("--data is not JSON: {error}"))),
    }
}

fn kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn status_str(status: InstanceStatus) -> &'static str {
    match status {
        InstanceStatus::Active => "active",
        InstanceStatus::Completed => "completed",
    }
}

fn token_status_str(status: TokenStatus) -> &'static str {
    match status {
        TokenStatus::Active => "active",
        TokenStatus::Completed => "completed",
        TokenStatus::Cancelled => "cancelled",
    }
}

/// The JSON shape of an instance: what the HTTP API returns for one.
pub(super) fn instance_json(view: &InstanceView) -> Json {
    let mut json = json!({
        "id": view.id,
        "definition": view.definition,
        "definition_version": view.definition_version,
        "entity": view.entity,
        "stage": view.stage,
        "status": status_str(view.status),
        "data": view.data,
        "assignee": view.assignee,
        "version": view.version,
        "branches": view.tokens.iter().map(|t| json!({
            "gateway": t.gateway,
            "branch": t.branch,
            "stage": t.stage,
            "status": token_status_str(t.status),
        })).collect::<Vec<_>>(),
        "pending_approval": view.pending_approval.as_ref().map(|p| json!({
            "transition": p.transition,
            "requested_by": p.requested_by,
            "responses": p.responses.iter().map(|r| json!({
                "approver": r.approver,
                "vote": r.vote.as_str(),
                "at": r.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            })).collect::<Vec<_>>(),
        })),
    });
    if let (Some(number), Json::Object(map)) = (&view.number, &mut json) {
        map.insert("number".to_owned(), Json::String(number.clone()));
    }
    json
}

fn instance_output(format: ShellFormat, view: &InstanceView) -> Output {
    if format == ShellFormat::Json {
        return json_output(&instance_json(view));
    }
    let mut out = format!("instance {}\n", view.id);
    if let Some(number) = &view.number {
        out.push_str(&format!("number: {number}\n"));
    }
    out.push_str(&format!(
        "definition: {} (version {})\nentity: {}\nstage: {}\nstatus: {}\nversion: {}\n",
        view.definition,
        view.definition_version,
        view.entity,
        view.stage,
        status_str(view.status),
        view.version
    ));
    if let Some(assignee) = &view.assignee {
        out.push_str(&format!("assignee: {assignee}\n"));
    }
    out.push_str(&format!("data: {}\n", view.data));
    for t in &view.tokens {
        let stage = t.stage.as_deref().map(|s| format!(" in {s}")).unwrap_or_default();
        out.push_str(&format!(
            "branch: {}.{}{stage} ({})\n",
            t.gateway,
            t.branch,
            token_status_str(t.status)
        ));
    }
    if let Some(p) = &view.pending_approval {
        out.push_str(&format!("awaiting approval: {} (requested by {})\n", p.transition, p.requested_by));
        for r in &p.responses {
            out.push_str(&format!("  {} {}d at {}\n", r.approver, r.vote.as_str(), short_time(r.at)));
        }
    }
    Output::stdout(out, Exit::Clean)
}

fn history_json(row: &HistoryRow) -> Json {
    json!({
        "seq": row.seq,
        "event": row.event,
        "actor": row.actor_id,
        "before": row.before.as_ref().map(sorted),
        "after": row.after.as_ref().map(sorted),
        "payload": row.payload.as_ref().map(sorted),
        "at": row.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    })
}

fn history_output(format: ShellFormat, rows: &[HistoryRow]) -> Output {
    if format == ShellFormat::Json {
        return json_output(&json!({ "history": rows.iter().map(history_json).collect::<Vec<_>>() }));
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|h| {
            let stage = |side: &Option<Json>| {
                side.as_ref().and_then(|s| s.get("stage")).and_then(Json::as_str).map(str::to_owned)
            };
            let change = match (stage(&h.before), stage(&h.after)) {
                (Some(before), Some(after)) if before != after => format!("{before} -> {after}"),
                (None, Some(after)) => format!("-> {after}"),
                _ => String::new(),
            };
            let detail = h
                .payload
                .as_ref()
                .and_then(|p| p.get("transition").or_else(|| p.get("action")))
                .and_then(Json::as_str)
                .unwrap_or_default();
            vec![
                h.seq.to_string(),
                short_time(h.created_at),
                h.event.clone(),
                h.actor_id.clone().unwrap_or_else(|| "(system)".to_owned()),
                detail.to_owned(),
                change,
            ]
        })
        .collect();
    Output::stdout(table(&["SEQ", "AT", "EVENT", "ACTOR", "WHAT", "STAGE"], &cells), Exit::Clean)
}

/// Runs `crm pending --user U`.
pub(super) fn pending(args: &PendingArgs) -> Output {
    let query = PendingQuery {
        definition: args.definition.clone(),
        entity: args.entity.clone(),
        stage: args.stage.clone(),
        limit: args.limit,
        after: args.after.clone().map(Cursor::from_string),
        ..PendingQuery::default()
    };
    let format = args.format;
    with_engine(&args.store, async |engine: &Engine<AnyStore>, tenant| {
        match engine.pending_for_user(tenant, &args.user, &query).await {
            Ok(page) => pending_output(format, &page),
            Err(error) => engine_error(&error),
        }
    })
}

fn reason(reason: &PendingReason) -> (String, Json) {
    match reason {
        PendingReason::Assigned => ("assigned".to_owned(), json!({"kind": "assigned"})),
        PendingReason::Delegated { from } => {
            (format!("delegated by {from}"), json!({"kind": "delegated", "from": from}))
        }
        PendingReason::Approval { transition } => {
            (format!("approve {transition}"), json!({"kind": "approval", "transition": transition}))
        }
    }
}

fn pending_output(format: ShellFormat, page: &Page<PendingItem>) -> Output {
    if format == ShellFormat::Json {
        let items: Vec<Json> = page
            .items
            .iter()
            .map(|item| {
                let i = &item.instance;
                json!({
                    "id": i.id,
                    "definition": i.definition_id,
                    "definition_version": i.definition_version,
                    "entity": i.entity,
                    "stage": i.stage,
                    "assignee": i.assignee,
                    "version": i.version,
                    "updated_at": i.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    "reason": reason(&item.reason).1,
                })
            })
            .collect();
        return json_output(&json!({ "items": items, "next": page.next.as_ref().map(Cursor::as_str) }));
    }
    if page.items.is_empty() {
        return Output::stdout("nothing pending\n".to_owned(), Exit::Clean);
    }
    let cells: Vec<Vec<String>> = page
        .items
        .iter()
        .map(|item| {
            let i = &item.instance;
            vec![
                i.id.clone(),
                i.definition_id.clone(),
                i.entity.clone(),
                i.stage.clone(),
                reason(&item.reason).0,
                short_time(i.updated_at),
            ]
        })
        .collect();
    let mut out = table(&["INSTANCE", "DEFINITION", "ENTITY", "STAGE", "WHY", "UPDATED"], &cells);
    if let Some(next) = &page.next {
        out.push_str(&format!("more: --after {next}\n"));
    }
    Output::stdout(out, Exit::Clean)
}

fn list_output(format: ShellFormat, page: &Page<InstanceRow>) -> Output {
    if format == ShellFormat::Json {
        let items: Vec<Json> = page
            .items
            .iter()
            .map(|i| {
                json!({
                    "id": i.id,
                    "definition": i.definition_id,
                    "definition_version": i.definition_version,
                    "entity": i.entity,
                    "stage": i.stage,
                    "status": i.status.as_str(),
                    "assignee": i.assignee,
                    "version": i.version,
                    "updated_at": i.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                })
            })
            .collect();
        return json_output(&json!({ "items": items, "next": page.next.as_ref().map(Cursor::as_str) }));
    }
    if page.items.is_empty() {
        return Output::stdout("no instances\n".to_owned(), Exit::Clean);
    }
    let cells: Vec<Vec<String>> = page
        .items
        .iter()
        .map(|i| {
            vec![
                i.id.clone(),
                format!("{}@{}", i.definition_id, i.definition_version),
                i.entity.clone(),
                i.stage.clone(),
                i.status.as_str().to_owned(),
                i.assignee.clone().unwrap_or_default(),
                short_time(i.updated_at),
            ]
        })
        .collect();
    let mut out =
        table(&["INSTANCE", "DEFINITION", "ENTITY", "STAGE", "STATUS", "ASSIGNEE", "UPDATED"], &cells);
    if let Some(next) = &page.next {
        out.push_str(&format!("more: --after {next}\n"));
    }
    Output::stdout(out, Exit::Clean)
}
