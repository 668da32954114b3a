//! The `crm` command line: argument parsing (clap) and one function per command.
//!
//! Commands are pure functions from arguments to an [`Output`] (what goes to stdout and stderr,
//! and the exit status); only [`run`] touches the terminal. Exit statuses: 0 clean (warnings
//! allowed), 1 findings, 2 usage or I/O error (clap's own usage errors also exit 2).

mod check;
mod compat;
mod definitions;
mod deploy;
mod eval;
mod instance;
mod outbox;
mod records;
#[cfg(feature = "http")]
mod reload;
#[cfg(feature = "http")]
pub mod serve;
mod shell;
mod test;
#[cfg(feature = "http")]
pub mod token;
mod worker;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::check::check_source;
use crate::codes::Code;
use crate::dump;
use crate::ir::Definition;
use crate::report::{self, Report};
pub use check::FileSize;

pub use self::definitions::{DefinitionsArgs, DefinitionsCommand};
pub use self::deploy::DeployArgs;
pub use self::instance::{ActorArgs, InstanceArgs, InstanceCommand, PendingArgs};
pub use self::shell::{ShellFormat, StoreArgs};

const EXIT_CODES: &str = "\
Exit status:
  0  no errors (warnings are allowed unless --deny-warnings)
  1  findings: the input has errors (or warnings, with --deny-warnings)
  2  usage or I/O error: bad arguments, a path that cannot be read";

/// Compile, check and inspect nexus-crm pipeline definitions.
#[derive(Debug, Parser)]
#[command(name = "crm", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `crm`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check definition files and report every problem found.
    #[command(after_help = check::AFTER_HELP)]
    Check(CheckArgs),
    /// Compile an expression and evaluate it against instance data.
    #[command(after_help = eval::AFTER_HELP)]
    Eval(EvalArgs),
    /// Print the compiled IR of a definition.
    Inspect(InspectArgs),
    /// Draw the stages and transitions of a definition (Mermaid or Graphviz).
    Graph(GraphArgs),
    /// Print the JSON Schema of definition files.
    Schema,
    /// Explain a diagnostic code, or list every code.
    Explain(ExplainArgs),
    /// Run scenario files against an in-memory engine (exit 1 on a failing scenario).
    Test(TestArgs),
    /// Create or upgrade the database schema (opening a store does this too).
    Migrate(MigrateArgs),
    /// Fire due timers and deliver the outbox (until stopped, or once with --once).
    Worker(WorkerArgs),
    /// Check definition files as `crm check` does, then deploy them (nothing on errors).
    #[command(after_help = deploy::AFTER_HELP)]
    Deploy(DeployArgs),
    /// List, show, activate and deactivate deployed definitions.
    Definitions(DefinitionsArgs),
    /// Create, inspect and move instances as a user.
    Instance(InstanceArgs),
    /// A user's dashboard: instances assigned or delegated to them, or awaiting their approval.
    Pending(PendingArgs),
    /// List outbox items and their delivery attempts; replay or discard dead letters.
    Outbox(outbox::OutboxArgs),
    /// Serve the HTTP API (definitions in DIR deployed at start) until SIGINT or SIGTERM.
    #[cfg(feature = "http")]
    Serve(serve::ServeArgs),
    /// Create, list and revoke API tokens for `crm serve`.
    #[cfg(feature = "http")]
    Token(token::TokenArgs),
    /// Log notes, calls, meetings and e-mails with attachments; read an instance's timeline.
    Interaction(records::InteractionArgs),
    /// Reports from history: funnel, by user, by period, time in stage, SLA compliance.
    Report(records::ReportArgs),
}

/// Arguments of `crm worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// `postgres://…` for PostgreSQL; a file path or `sqlite:PATH` for the embedded SQLite store.
    #[arg(long, env = "CRM_DATABASE_URL", default_value = "sqlite:crm.db")]
    pub database: String,
    /// Process what is due now, print a summary and exit.
    #[arg(long)]
    pub once: bool,
    /// The id claims are recorded under (default: worker-PID).
    #[arg(long, value_name = "ID")]
    pub worker_id: Option<String>,
    /// How long a claim holds before another worker may take the item.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub lease_seconds: u64,
    /// Items claimed per batch.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub batch: u32,
    /// The pause between passes when idle.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub poll_ms: u64,
    /// Run against this clock instead of the wall clock (RFC 3339, e.g. `2026-01-07T09:00:00Z`):
    /// fires what is due at that time, to try timers or replay a day.
    #[arg(long, value_name = "TIMESTAMP", value_parser = parse_timestamp)]
    pub now: Option<chrono::DateTime<chrono::Utc>>,
    /// Print actions as JSON lines instead of delivering them.
    #[arg(long)]
    pub dry_run: bool,
    /// An address, network (CIDR) or host name outgoing requests may reach although it is
    /// loopback, private or link-local (repeatable).
    #[arg(long = "allow", value_name = "ADDR")]
    pub allow: Vec<String>,
    /// The most one delivery attempt may take.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// How many instances' timers and outbox items a batch works on at once.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub lanes: usize,
}

/// An RFC 3339 timestamp, for `--now`.
fn parse_timestamp(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|time| time.to_utc())
        .map_err(|error| format!("not an RFC 3339 timestamp ({error}), e.g. 2026-01-07T09:00:00Z"))
}

/// Arguments of `crm migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// `postgres://…` for PostgreSQL; a file path or `sqlite:PATH` for the embedded SQLite store.
    #[arg(long, env = "CRM_DATABASE_URL", default_value = "sqlite:crm.db")]
    pub database: String,
}

/// Arguments of `crm test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Scenario files, or directories searched recursively for `*.json`.
    #[arg(value_name = "PATH", default_value = "scenarios/")]
    pub paths: Vec<PathBuf>,
}

/// Arguments of `crm check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Definition files, or directories searched recursively for `*.json`.
    #[arg(value_name = "PATH", default_value = "definitions/")]
    pub paths: Vec<PathBuf>,
    /// How findings are printed.
    #[arg(long, value_enum, default_value_t = CheckFormat::Human)]
    pub format: CheckFormat,
    /// Exit with status 1 when there are warnings, too.
    #[arg(long)]
    pub deny_warnings: bool,
    /// Also compare each file with its live version: the file of the same id in a directory, or
    /// the latest deployed version and the live instances in a database (`sqlite:PATH`,
    /// `postgres://…`); exit 1 when the new version would strand an instance.
    #[arg(long, value_name = "DIR|DATABASE_URL")]
    pub against: Option<String>,
    /// The tenant whose instances `--against DATABASE_URL` counts.
    #[arg(long, env = "CRM_TENANT", default_value = "default")]
    pub tenant: String,
    /// The largest definition file read, e.g. `64MiB` (a larger file is an error, exit status 2).
    #[arg(long, value_name = "SIZE", env = "CRM_MAX_FILE_SIZE", default_value_t = FileSize::DEFAULT)]
    pub max_file_size: FileSize,
}

/// Output formats of `crm check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// Annotated source snippets and a summary (colour on a terminal unless NO_COLOR is set).
    Human,
    /// One line per finding: `path:line:col: severity[CODE] message`.
    Concise,
    /// A JSON document: `{"files_checked", "diagnostics": [...]}`.
    Json,
    /// GitHub Actions annotations (`::error file=...`).
    Github,
    /// SARIF 2.1.0, for code-scanning tools.
    Sarif,
}

/// Arguments of `crm eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The expression, e.g. "data.lead_score > 50 AND stage == 'new'" (it may start with `-`).
    #[arg(allow_hyphen_values = true)]
    pub expr: String,
    /// Instance data: a JSON object.
    #[arg(long, value_name = "JSON", default_value = "{}")]
    pub data: String,
    /// A definition file whose `dataSchema` and stages the expression is checked against.
    #[arg(long, value_name = "FILE")]
    pub definition: Option<PathBuf>,
    /// The current stage (default: the entity's initial stage, or empty).
    #[arg(long, value_name = "S")]
    pub stage: Option<String>,
    /// The entity type (default: the definition's first entity, or empty).
    #[arg(long, value_name = "E")]
    pub entity: Option<String>,
    /// The time `now()` returns, RFC 3339 (default: the current time).
    #[arg(long, value_name = "DATETIME")]
    pub now: Option<String>,
    /// The largest definition file read, e.g. `64MiB` (a larger file is an error, exit status 2).
    #[arg(long, value_name = "SIZE", env = "CRM_MAX_FILE_SIZE", default_value_t = FileSize::DEFAULT)]
    pub max_file_size: FileSize,
}

/// Arguments of `crm inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The definition file.
    pub file: PathBuf,
    /// How the IR is printed.
    #[arg(long, value_enum, default_value_t = InspectFormat::Text)]
    pub format: InspectFormat,
    /// The largest definition file read, e.g. `64MiB` (a larger file is an error, exit status 2).
    #[arg(long, value_name = "SIZE", env = "CRM_MAX_FILE_SIZE", default_value_t = FileSize::DEFAULT)]
    pub max_file_size: FileSize,
}

/// Output formats of `crm inspect`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InspectFormat {
    /// An indented, readable dump.
    Text,
    /// A JSON document with one array per IR table.
    Json,
}

/// Arguments of `crm graph`.
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The definition file.
    pub file: PathBuf,
    /// The diagram language.
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    pub format: GraphFormat,
    /// Draw only this entity (default: all, one subgraph each).
    #[arg(long, value_name = "NAME")]
    pub entity: Option<String>,
    /// The largest definition file read, e.g. `64MiB` (a larger file is an error, exit status 2).
    #[arg(long, value_name = "SIZE", env = "CRM_MAX_FILE_SIZE", default_value_t = FileSize::DEFAULT)]
    pub max_file_size: FileSize,
}

/// Output formats of `crm graph`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// A Mermaid state diagram (renders on GitHub).
    Mermaid,
    /// Graphviz DOT.
    Dot,
}

/// Arguments of `crm explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A code (`CRM0101`) or rule name (`unknown-stage`); omit it to list every code.
    pub code: Option<String>,
    /// List every code with its severity and summary.
    #[arg(long, conflicts_with = "code")]
    pub list: bool,
}

/// The process exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Nothing wrong (warnings allowed).
    Clean,
    /// The input has findings.
    Findings,
    /// Bad usage or an I/O error.
    Failure,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(match exit {
            Exit::Clean => 0,
            Exit::Findings => 1,
            Exit::Failure => 2,
        })
    }
}

/// What a command prints and how the process exits.
#[derive(Debug)]
pub struct Output {
    /// Text for stdout.
    pub stdout: String,
    /// Text for stderr.
    pub stderr: String,
    /// The exit status.
    pub exit: Exit,
}

impl Output {
    fn stdout(text: String, exit: Exit) -> Self {
        Self { stdout: text, stderr: String::new(), exit }
    }

    /// A usage or I/O error: `error: …` on stderr, exit status 2.
    fn failure(message: impl std::fmt::Display) -> Self {
        Self { stdout: String::new(), stderr: format!("error: {message}\n"), exit: Exit::Failure }
    }
}

/// `crm migrate`: opening a store applies every pending migration.
fn migrate(args: &MigrateArgs) -> Output {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return Output::failure(format!("cannot start the async runtime: {error}")),
    };
    runtime.block_on(async {
        match crate::store::AnyStore::open(&args.database).await {
            Ok(store) => {
                let backend = store.backend();
                store.close().await;
                Output::stdout(format!("{backend} database is up to date\n"), Exit::Clean)
            }
            Err(error) => Output::failure(format!("cannot migrate `{}`: {error}", args.database)),
        }
    })
}

/// Where human diagnostics go, which decides whether they may be coloured.
#[derive(Clone, Copy, Debug)]
enum Stream {
    Stdout,
    Stderr,
}

/// Runs a parsed command line: executes the command and writes its output.
pub fn run(cli: Cli) -> ExitCode {
    let output = match cli.command {
        Command::Check(args) => match &args.against {
            Some(against) => compat::run(&args, against),
            None => check::run(&args),
        },
        Command::Eval(args) => eval::run(&args),
        Command::Inspect(args) => inspect(&args),
        Command::Graph(args) => graph(&args),
        Command::Schema => schema(),
        Command::Explain(args) => explain(&args),
        Command::Test(args) => test::run(&args),
        Command::Migrate(args) => migrate(&args),
        Command::Worker(args) => worker::run(&args),
        Command::Deploy(args) => deploy::run(&args),
        Command::Definitions(args) => definitions::run(&args),
        Command::Instance(args) => instance::run(&args),
        Command::Pending(args) => instance::pending(&args),
        Command::Outbox(args) => outbox::run(&args),
        #[cfg(feature = "http")]
        Command::Serve(args) => serve::run(&args),
        #[cfg(feature = "http")]
        Command::Token(args) => token::run(&args),
        Command::Interaction(args) => records::interaction(&args),
        Command::Report(args) => records::report(&args),
    };
    // A closed pipe (`crm check | head`) is not an error worth reporting; anything else is I/O.
    let written = std::io::stdout()
        .lock()
        .write_all(output.stdout.as_bytes())
        .and_then(|()| std::io::stderr().lock().write_all(output.stderr.as_bytes()));
    match written {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => ExitCode::from(2),
        _ => output.exit.into(),
    }
}

/// The miette theme for `stream`: colour only on a terminal, and never when `NO_COLOR` is set.
fn theme(stream: Stream) -> miette::GraphicalTheme {
    let terminal = match stream {
        Stream::Stdout => std::io::stdout().is_terminal(),
        Stream::Stderr => std::io::stderr().is_terminal(),
    };
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    if terminal && !no_color {
        miette::GraphicalTheme {
            characters: miette::ThemeCharacters::unicode(),
            styles: miette::ThemeStyles::ansi(),
        }
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    }
}

/// Renders the findings of `reports` for a person, for `stream` (no summary line).
fn human(reports: &[Report], stream: Stream) -> String {
    let mut out = String::new();
    // Writing into a `String` cannot fail.
    let _ = report::human_findings(reports, theme(stream), &mut out);
    out
}

/// Reads a file of at most `limit` bytes as text, or explains on stderr why it cannot (exit status 2).
fn read(path: &Path, limit: FileSize) -> Result<String, Output> {
    let failure =
        |error: &dyn std::fmt::Display| Output::failure(format!("cannot read `{}`: {error}", path.display()));
    let bytes = check::read_bounded(path, limit).map_err(|error| failure(&error))?;
    String::from_utf8(bytes).map_err(|_| failure(&"the file is not valid UTF-8"))
}

/// Reads and compiles one definition; on errors, the rendered diagnostics with exit status 1.
/// Warnings of a definition that compiles are returned for the caller to print on stderr.
fn compile(path: &Path, limit: FileSize) -> Result<(Definition, String), Output> {
    let source = read(path, limit)?;
    let checked = check_source(&source);
    let report = Report::new(path.display().to_string(), source, checked.diagnostics);
    match checked.definition {
        Some(definition) if !report.has_errors() => {
            let warnings =
                if report.diagnostics.is_empty() { String::new() } else { human(&[report], Stream::Stderr) };
            Ok((definition, warnings))
        }
        _ => Err(Output {
            stdout: String::new(),
            stderr: human(&[report], Stream::Stderr),
            exit: Exit::Findings,
        }),
    }
}

fn inspect(args: &InspectArgs) -> Output {
    let (definition, warnings) = match compile(&args.file, args.max_file_size) {
        Ok(compiled) => compiled,
        Err(output) => return output,
    };
    let stdout = match args.format {
        InspectFormat::Text => dump::to_text(&definition),
        InspectFormat::Json => pretty(&dump::to_json(&definition)),
    };
    Output { stdout, stderr: warnings, exit: Exit::Clean }
}

fn graph(args: &GraphArgs) -> Output {
    let (definition, warnings) = match compile(&args.file, args.max_file_size) {
        Ok(compiled) => compiled,
        Err(output) => return output,
    };
    let entity = match &args.entity {
        None => None,
        Some(name) => match definition.entity_named(name) {
            Some(id) => Some(id),
            None => {
                let names: Vec<&str> = definition.entities.iter().map(|e| e.name.as_str()).collect();
                return Output::failure(format!(
                    "no entity `{name}`; declared entities: {}",
                    names.join(", ")
                ));
            }
        },
    };
    let stdout = match args.format {
        GraphFormat::Mermaid => crate::graph::mermaid(&definition, entity),
        GraphFormat::Dot => crate::graph::dot(&definition, entity),
    };
    Output { stdout, stderr: warnings, exit: Exit::Clean }
}

/// JSON with two-space indentation and a trailing newline.
fn pretty(value: &serde_json::Value) -> String {
    // A `serde_json::Value` always serializes.
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

fn schema() -> Output {
    Output::stdout(pretty(&crate::syntax::model::json_schema()), Exit::Clean)
}

fn explain(args: &ExplainArgs) -> Output {
    let Some(text) = args.code.as_deref() else {
        return Output::stdout(code_list(), Exit::Clean);
    };
    match Code::parse(text) {
        Some(code) => {
            let mut page = code.documentation().to_owned();
            if !page.ends_with('\n') {
                page.push('\n');
            }
            Output::stdout(page, Exit::Clean)
        }
        None => Output::failure(format!(
            "unknown code `{text}`\n\nRun `crm explain --list` to see every code with its summary."
        )),
    }
}

/// `CRM0101  error    unknown-stage  A stage is referenced but not declared.`, aligned.
fn code_list() -> String {
    let width = Code::ALL.iter().map(|c| c.name().len()).max().unwrap_or(0);
    let mut out = String::new();
    for code in Code::ALL {
        let line =
            format!("{}  {:<7}  {:<width$}  {}", code, code.severity().as_str(), code.name(), code.summary());
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
