//! `crm interaction` (log, list, attach, download; an instance's timeline) and `crm report`:
//! the `records` module from the shell, one library call per command.

use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value as Json, json};

use crate::records::json::{attachment_json, interaction_json, timeline_json};

use super::shell::{ShellFormat, StoreArgs, json_output, short_time, table, with_engine};
use super::{Exit, Output};
use crate::records::reports::{parse_bound, parse_tz};
use crate::records::{
    self, AttachmentConfig, AttachmentStore, NewInteraction, Period, RecordsError, ReportKind, ReportQuery,
};
use crate::store::{
    AttachmentRow, Cursor, InteractionKind, InteractionQuery, InteractionRow, Subject, TimelineItem,
    TimelineQuery,
};

/// Arguments of `crm interaction`.
#[derive(Debug, Args)]
pub struct InteractionArgs {
    /// Where the data is, and whose.
    #[command(flatten)]
    pub store: StoreArgs,
    /// `text` for people, `json` for scripts.
    #[arg(long, value_enum, default_value_t = ShellFormat::Text, global = true)]
    pub format: ShellFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: InteractionCommand,
}

/// What an interaction is logged on: exactly one of an instance or a contact.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct SubjectArgs {
    /// An instance's id.
    #[arg(long, value_name = "ID")]
    pub instance: Option<String>,
    /// A contact's id.
    #[arg(long, value_name = "ID")]
    pub contact: Option<String>,
}

impl SubjectArgs {
    fn subject(&self) -> Subject {
        match (&self.instance, &self.contact) {
            (Some(id), _) => Subject::Instance(id.clone()),
            (None, Some(id)) => Subject::Contact(id.clone()),
            // clap requires exactly one of the two.
            (None, None) => Subject::Instance(String::new()),
        }
    }
}

/// Where attachments are kept.
#[derive(Debug, Args)]
pub struct AttachmentStoreArgs {
    /// The directory attachments are stored in.
    #[arg(
        long,
        value_name = "DIR",
        env = "CRM_ATTACHMENTS",
        default_value = "crm-attachments",
        global = true
    )]
    pub attachments: PathBuf,
    /// Store new uploads in the database instead of the directory.
    #[arg(long, global = true)]
    pub attachments_in_database: bool,
    /// The largest upload accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 25 * 1024 * 1024, global = true)]
    pub max_attachment_size: u64,
}

impl AttachmentStoreArgs {
    /// The library's configuration (default allow-list).
    pub fn config(&self) -> AttachmentConfig {
        let mut config = AttachmentConfig::directory(&self.attachments);
        if self.attachments_in_database {
            config.store = AttachmentStore::Database;
        }
        config.max_bytes = self.max_attachment_size;
        config
    }
}

/// The kinds of interaction on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// A note.
    Note,
    /// A phone call.
    Call,
    /// A meeting.
    Meeting,
    /// An e-mail.
    Email,
}

impl KindArg {
    fn kind(self) -> InteractionKind {
        match self {
            Self::Note => InteractionKind::Note,
            Self::Call => InteractionKind::Call,
            Self::Meeting => InteractionKind::Meeting,
            Self::Email => InteractionKind::Email,
        }
    }
}

/// The subcommands of `crm interaction`.
#[derive(Debug, Subcommand)]
pub enum InteractionCommand {
    /// Log a note, call, meeting or e-mail on an instance or a contact.
    Add {
        /// What it is logged on.
        #[command(flatten)]
        subject: SubjectArgs,
        /// What kind of interaction.
        #[arg(long, value_enum, default_value_t = KindArg::Note)]
        kind: KindArg,
        /// Who logs it.
        #[arg(long = "as", value_name = "USER", env = "CRM_USER")]
        author: String,
        /// What was said or written.
        #[arg(long)]
        body: String,
        /// When it took place (RFC 3339; default now).
        #[arg(long, value_name = "TIMESTAMP", value_parser = super::parse_timestamp)]
        at: Option<DateTime<Utc>>,
        /// How long it took.
        #[arg(long, value_name = "SECONDS")]
        duration: Option<u64>,
        /// How it ended.
        #[arg(long)]
        outcome: Option<String>,
    },
    /// List an instance's or a contact's interactions, newest first.
    List {
        /// Whose interactions.
        #[command(flatten)]
        subject: SubjectArgs,
        /// At most this many (default 50, at most 500).
        #[arg(long, value_name = "N", default_value_t = 50)]
        limit: u32,
        /// The `next` cursor of the previous page.
        #[arg(long, value_name = "CURSOR")]
        after: Option<String>,
    },
    /// An instance's history and interactions together, newest first.
    Timeline {
        /// The instance's id.
        instance: String,
        /// At most this many (default 50, at most 500).
        #[arg(long, value_name = "N", default_value_t = 50)]
        limit: u32,
        /// The `next` cursor of the previous page.
        #[arg(long, value_name = "CURSOR")]
        after: Option<String>,
    },
    /// Attach a file to an interaction (its type is read from its bytes).
    Attach {
        /// The interaction's id.
        interaction: String,
        /// The file.
        file: PathBuf,
        /// Who attaches it.
        #[arg(long = "as", value_name = "USER", env = "CRM_USER")]
        author: String,
        /// The name to offer on download (default: the file's name).
        #[arg(long)]
        name: Option<String>,
        /// Where attachments are kept.
        #[command(flatten)]
        storage: AttachmentStoreArgs,
    },
    /// Write an attachment's bytes to a file.
    Download {
        /// The attachment's id.
        attachment: String,
        /// Where to write it.
        #[arg(long, short, value_name = "FILE")]
        output: PathBuf,
        /// Where attachments are kept.
        #[command(flatten)]
        storage: AttachmentStoreArgs,
    },
}

/// A records error as the shell reports it: exit status 1 for a refusal, 2 for I/O or the database.
fn records_error(error: &RecordsError) -> Output {
    use miette::Diagnostic as _;
    let mut text = format!("error: {error}");
    if let Some(code) = error.code() {
        text.push_str(&format!(" [{code}]"));
    }
    text.push('\n');
    if let Some(help) = error.help() {
        text.push_str(&format!("help: {help}\n"));
    }
    let exit = if matches!(error, RecordsError::Store(_) | RecordsError::Io(_)) {
        Exit::Failure
    } else {
        Exit::Findings
    };
    Output { stdout: String::new(), stderr: text, exit }
}

fn interaction_line(i: &InteractionRow) -> Vec<String> {
    let mut body: String = i.body.lines().next().unwrap_or_default().chars().take(60).collect();
    if body.len() < i.body.len() {
        body.push('…');
    }
    vec![short_time(i.occurred_at), i.kind.as_str().to_owned(), i.author.clone(), body, i.id.clone()]
}

fn next_line(next: Option<&Cursor>) -> String {
    next.map(|c| format!("next page: --after {c}\n")).unwrap_or_default()
}

/// `crm interaction`.
pub fn interaction(args: &InteractionArgs) -> Output {
    let format = args.format;
    with_engine(&args.store, async |engine, tenant| {
        let store = engine.store();
        match &args.command {
            InteractionCommand::Add { subject, kind, author, body, at, duration, outcome } => {
                let new = NewInteraction {
                    subject: subject.subject(),
                    kind: kind.kind(),
                    author: author.clone(),
                    occurred_at: *at,
                    body: body.clone(),
                    duration_seconds: *duration,
                    outcome: outcome.clone(),
                };
                match records::add_interaction(store, tenant, new, Utc::now()).await {
                    Ok(row) if format == ShellFormat::Json => json_output(&interaction_json(&row)),
                    Ok(row) => Output::stdout(format!("logged {} {}\n", row.kind, row.id), Exit::Clean),
                    Err(error) => records_error(&error),
                }
            }
            InteractionCommand::List { subject, limit, after } => {
                let query = InteractionQuery {
                    subject: subject.subject(),
                    limit: *limit,
                    after: after.clone().map(Cursor::from_string),
                };
                match records::interactions(store, tenant, &query).await {
                    Ok(page) if format == ShellFormat::Json => json_output(&json!({
                        "items": page.items.iter().map(interaction_json).collect::<Vec<_>>(),
                        "next": page.next.map(|c| c.to_string()),
                    })),
                    Ok(page) => {
                        let rows: Vec<_> = page.items.iter().map(interaction_line).collect();
                        let text = table(&["time", "kind", "author", "body", "id"], &rows)
                            + &next_line(page.next.as_ref());
                        Output::stdout(text, Exit::Clean)
                    }
                    Err(error) => records_error(&error),
                }
            }
            InteractionCommand::Timeline { instance, limit, after } => {
                let query = TimelineQuery { limit: *limit, after: after.clone().map(Cursor::from_string) };
                match records::timeline(store, tenant, instance, &query).await {
                    Ok(page) if format == ShellFormat::Json => json_output(&json!({
                        "items": page.items.iter().map(timeline_json).collect::<Vec<_>>(),
                        "next": page.next.map(|c| c.to_string()),
                    })),
                    Ok(page) => {
                        let rows: Vec<_> = page.items.iter().map(timeline_line).collect();
                        let text =
                            table(&["time", "what", "who", "detail"], &rows) + &next_line(page.next.as_ref());
                        Output::stdout(text, Exit::Clean)
                    }
                    Err(error) => records_error(&error),
                }
            }
            InteractionCommand::Attach { interaction, file, author, name, storage } => {
                let opened = match tokio::fs::File::open(file).await {
                    Ok(opened) => opened,
                    Err(error) => {
                        return Output::failure(format!("cannot read `{}`: {error}", file.display()));
                    }
                };
                let file_name = name
                    .clone()
                    .or_else(|| file.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .unwrap_or_else(|| "attachment".to_owned());
                let upload = records::attachments::Upload {
                    interaction_id: interaction,
                    file_name: &file_name,
                    author,
                };
                match records::upload(store, tenant, &storage.config(), upload, opened, Utc::now()).await {
                    Ok(row) if format == ShellFormat::Json => json_output(&attachment_json(&row)),
                    Ok(row) => Output::stdout(
                        format!(
                            "attached {} ({}, {} bytes, sha256 {})\n",
                            row.id, row.content_type, row.size_bytes, row.sha256
                        ),
                        Exit::Clean,
                    ),
                    Err(error) => records_error(&error),
                }
            }
            InteractionCommand::Download { attachment, output, storage } => {
                match download(store, tenant, &storage.config(), attachment, output).await {
                    Ok(row) => Output::stdout(
                        format!(
                            "wrote {} ({}, {} bytes)\n",
                            output.display(),
                            row.content_type,
                            row.size_bytes
                        ),
                        Exit::Clean,
                    ),
                    Err(error) => records_error(&error),
                }
            }
        }
    })
}

/// Streams an attachment into `output`.
async fn download(
    store: &crate::store::AnyStore,
    tenant: &crate::store::TenantId,
    config: &AttachmentConfig,
    id: &str,
    output: &std::path::Path,
) -> Result<AttachmentRow, RecordsError> {
    use futures_util::StreamExt as _;
    use tokio::io::AsyncWriteExt as _;
    let (row, mut body) = records::open_attachment(store, tenant, config, id).await?;
    let mut file = tokio::fs::File::create(output).await.map_err(RecordsError::Io)?;
    while let Some(chunk) = body.next().await {
        file.write_all(&chunk.map_err(RecordsError::Io)?).await.map_err(RecordsError::Io)?;
    }
    file.flush().await.map_err(RecordsError::Io)?;
    Ok(row)
}

fn timeline_line(item: &TimelineItem) -> Vec<String> {
    match item {
        TimelineItem::History(h) => {
            let stage = h.after.as_ref().and_then(|a| a.get("stage")).and_then(Json::as_str);
            vec![
                short_time(h.created_at),
                h.event.clone(),
                h.actor_id.clone().unwrap_or_else(|| "system".into()),
                stage.map(|s| format!("→ {s}")).unwrap_or_default(),
            ]
        }
        TimelineItem::Interaction(i) => {
            let line = interaction_line(i);
            vec![line[0].clone(), line[1].clone(), line[2].clone(), line[3].clone()]
        }
    }
}

/// The reports on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportArg {
    /// Per stage: visits entered, moved on, closed won and lost.
    Funnel,
    /// Moves, wins and losses by the assignee when the instance moved.
    ByUser,
    /// Instances started, moves, wins and losses per day, week or month.
    ByPeriod,
    /// Median and 90th percentile of the time spent in each stage.
    TimeInStage,
    /// SLA clocks met, breached and open, per stage or entity.
    Sla,
}

/// How a report prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// An aligned table.
    Table,
    /// JSON.
    Json,
    /// CSV with a header line.
    Csv,
    /// An SVG bar chart (funnel and time-in-stage).
    Svg,
}

/// The length of a by-period report's periods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PeriodArg {
    /// Calendar days.
    Day,
    /// ISO weeks (Monday to Sunday).
    Week,
    /// Calendar months.
    Month,
}

/// Arguments of `crm report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Which report.
    #[arg(value_enum)]
    pub kind: ReportArg,
    /// Where the data is, and whose.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Start of the window: a date (midnight in --tz) or an RFC 3339 time (default: 30 days before --to).
    #[arg(long, value_name = "DATE|TIME")]
    pub from: Option<String>,
    /// End of the window, exclusive (default: now).
    #[arg(long, value_name = "DATE|TIME")]
    pub to: Option<String>,
    /// The IANA time zone of periods and of dates (`Europe/Paris`).
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    pub tz: String,
    /// The periods of `by-period`.
    #[arg(long, value_enum, default_value_t = PeriodArg::Day)]
    pub period: PeriodArg,
    /// Only instances of this definition.
    #[arg(long, value_name = "ID")]
    pub definition: Option<String>,
    /// Only instances of this entity.
    #[arg(long, value_name = "NAME")]
    pub entity: Option<String>,
    /// A stage that counts as closed won (repeatable; default `won` and `closed_won`).
    #[arg(long, value_name = "STAGE")]
    pub won: Vec<String>,
    /// A stage that counts as closed lost (repeatable; default `lost` and `closed_lost`).
    #[arg(long, value_name = "STAGE")]
    pub lost: Vec<String>,
    /// How to print it.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

impl ReportArgs {
    fn query(&self, now: DateTime<Utc>) -> Result<ReportQuery, RecordsError> {
        let tz = parse_tz(&self.tz)?;
        let to = self.to.as_deref().map(|t| parse_bound(t, tz)).transpose()?.unwrap_or(now);
        let from =
            self.from.as_deref().map(|t| parse_bound(t, tz)).transpose()?.unwrap_or(to - Duration::days(30));
        let kind = match self.kind {
            ReportArg::Funnel => ReportKind::Funnel,
            ReportArg::ByUser => ReportKind::ByUser,
            ReportArg::ByPeriod => ReportKind::ByPeriod,
            ReportArg::TimeInStage => ReportKind::TimeInStage,
            ReportArg::Sla => ReportKind::Sla,
        };
        let mut query = ReportQuery::new(kind, from, to);
        query.tz = tz;
        query.period = match self.period {
            PeriodArg::Day => Period::Day,
            PeriodArg::Week => Period::Week,
            PeriodArg::Month => Period::Month,
        };
        query.filter.definition = self.definition.clone();
        query.filter.entity = self.entity.clone();
        if !self.won.is_empty() {
            query.filter.won = self.won.clone();
        }
        if !self.lost.is_empty() {
            query.filter.lost = self.lost.clone();
        }
        Ok(query)
    }
}

/// `crm report`.
pub fn report(args: &ReportArgs) -> Output {
    let query = match args.query(Utc::now()) {
        Ok(query) => query,
        Err(error) => return Output::failure(error),
    };
    with_engine(&args.store, async |engine, tenant| {
        match records::run_report(engine.store(), tenant, &query).await {
            Ok(report) => match args.format {
                ReportFormat::Table => Output::stdout(report.to_table(), Exit::Clean),
                ReportFormat::Json => json_output(&report.to_json()),
                ReportFormat::Csv => Output::stdout(report.to_csv(), Exit::Clean),
                ReportFormat::Svg => match report.to_svg() {
                    Ok(svg) => Output::stdout(svg + "\n", Exit::Clean),
                    Err(error) => Output::failure(error),
                },
            },
            Err(error) => records_error(&error),
        }
    })
}
