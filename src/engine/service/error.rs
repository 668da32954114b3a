//! Why an engine call failed.

use crate::diagnostic::Diagnostic;
use crate::engine::machine::MachineError;
use crate::store::StoreError;

/// A refused or failed engine call. Whatever the variant, nothing was written.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum EngineError {
    /// No definition with this id (or this version) is deployed for the tenant.
    #[error("unknown definition `{id}`")]
    #[diagnostic(code(crm::engine::unknown_definition), help("deploy it first"))]
    UnknownDefinition {
        /// The id asked for.
        id: String,
    },

    /// Creating an instance of a definition that was deactivated (`crm definitions deactivate`):
    /// it starts no new instances, while the ones already running continue.
    #[error("definition `{id}` is deactivated: it starts no new instances")]
    #[diagnostic(
        code(crm::engine::definition_inactive),
        help("activate it again (`crm definitions activate`) to start instances on it")
    )]
    DefinitionInactive {
        /// The definition.
        id: String,
    },

    /// No instance with this id exists for the tenant; an instance of another tenant is reported
    /// the same way, so ids never leak across tenants.
    #[error("unknown instance `{id}`")]
    #[diagnostic(code(crm::engine::unknown_instance))]
    UnknownInstance {
        /// The id asked for.
        id: String,
    },

    /// `instance_by_number` with a number no instance of the tenant has, e.g. `"LEAD-2026-9999"`.
    #[error("no instance is numbered `{number}`")]
    #[diagnostic(code(crm::engine::unknown_number))]
    UnknownNumber {
        /// The number asked for.
        number: String,
    },

    /// `create_instance` with an entity the definition does not declare, e.g. `"leed"`.
    #[error("unknown entity `{name}` in definition `{definition}`")]
    #[diagnostic(code(crm::engine::unknown_entity))]
    UnknownEntity {
        /// The definition.
        definition: String,
        /// The name asked for.
        name: String,
        /// A did-you-mean or the declared entities.
        #[help]
        help: Option<String>,
    },

    /// The definition source has errors: at deployment, or a stored source this build no longer
    /// accepts.
    #[error("invalid definition: {}", summary(diagnostics))]
    #[diagnostic(code(crm::engine::invalid_definition), help("run `crm check` on it for the details"))]
    InvalidDefinition {
        /// Every finding (errors and warnings), in source order.
        diagnostics: Vec<Diagnostic>,
    },

    /// The interpreter refused the command: unknown transition, wrong stage, invalid data, guard
    /// refused, condition false, not an approver, …
    #[error(transparent)]
    #[diagnostic(transparent)]
    Machine(#[from] MachineError),

    /// The instance changed since the version the caller (or this call) read: reload and retry.
    #[error("instance `{id}` was changed concurrently: expected version {expected}, found {actual}")]
    #[diagnostic(code(crm::engine::conflict), help("reload the instance and apply the change again"))]
    Conflict {
        /// The instance.
        id: String,
        /// The version the change was based on.
        expected: u64,
        /// The version stored.
        actual: u64,
    },

    /// A command without an expected version kept losing the race: every one of its attempts
    /// (each on a fresh read) met a newer commit, e.g. dozens of processes writing one instance at
    /// once. Nothing was written; nothing about the command itself is wrong.
    #[error("instance `{id}` is changing too fast: gave up after {attempts} attempts")]
    #[diagnostic(code(crm::engine::contention), help("try again in a moment"))]
    Contention {
        /// The instance.
        id: String,
        /// How many times the command was computed and refused by a newer commit.
        attempts: u32,
    },

    /// A stored instance does not fit its pinned definition, e.g. a stage name the definition
    /// lacks (the rows were edited by hand).
    #[error("instance `{id}` is inconsistent with its definition: {detail}")]
    #[diagnostic(code(crm::engine::inconsistent))]
    Inconsistent {
        /// The instance.
        id: String,
        /// What does not fit.
        detail: String,
    },

    /// A delegation that cannot hold: to oneself, or ending before it starts.
    #[error("invalid delegation: {reason}")]
    #[diagnostic(code(crm::engine::invalid_delegation))]
    InvalidDelegation {
        /// What is wrong with it.
        reason: String,
    },

    /// A contact, lead, opportunity or campaign with a bad field, e.g. a negative value, a
    /// probability above 1, a currency that is not three capital letters.
    #[error("invalid {kind}: {reason}")]
    #[diagnostic(code(crm::engine::invalid_record))]
    InvalidRecord {
        /// `contact`, `opportunity` or `campaign`.
        kind: &'static str,
        /// What is wrong.
        reason: String,
    },

    /// No contact, opportunity or campaign with this id exists for the tenant.
    #[error("unknown {kind} `{id}`")]
    #[diagnostic(code(crm::engine::unknown_record))]
    UnknownRecord {
        /// `contact`, `opportunity` or `campaign`.
        kind: &'static str,
        /// The id asked for.
        id: String,
    },

    /// A lead that cannot become an opportunity: not qualified yet, or converted already.
    #[error("lead `{id}` cannot be converted: {reason}")]
    #[diagnostic(code(crm::engine::not_convertible))]
    NotConvertible {
        /// The lead's contact id.
        id: String,
        /// Why not.
        reason: String,
    },

    /// The database failed (other than a version conflict).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(StoreError),
}

impl From<StoreError> for EngineError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict { id, expected, actual } => Self::Conflict { id, expected, actual },
            other => Self::Store(other),
        }
    }
}

/// "2 errors; first: …" for the one-line message; the full list is in the variant.
fn summary(diagnostics: &[Diagnostic]) -> String {
    let mut errors = diagnostics.iter().filter(|d| d.is_error());
    match errors.next() {
        Some(first) => {
            let count = 1 + errors.count();
            let plural = if count == 1 { "" } else { "s" };
            format!("{count} error{plural}; first: {}", first.message)
        }
        None => "no compiled definition".to_owned(),
    }
}
