//! What can go wrong: building a configuration ([`ConfigError`]) and using the CRM ([`CrmError`]).
//!
//! Every variant's docs name an input that triggers it. Operations fail as a whole: whatever the
//! error, the contacts and the history are exactly as they were before the call.

use std::fmt;

use crate::engine::data::Violation;
use crate::engine::eval::EvalError;
use crate::level1::model::ContactId;
use crate::report::Report;

/// Why a CRM operation was refused or failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum CrmError {
    /// The data is not a JSON object, e.g. `add_contact(json!(["Ann"]))`.
    #[error("contact data must be a JSON object, found {found}")]
    #[diagnostic(code(crm::contact::not_an_object), help("pass an object such as `{{\"name\": \"Ann\"}}`"))]
    NotAnObject {
        /// The kind of JSON value found.
        found: &'static str,
    },

    /// One or more fields are wrong, e.g. `add_contact(json!({"name": "Ann", "fax": "1"}))` when
    /// `fax` is not declared. Every problem of the data is listed, not just the first.
    #[error("invalid contact data: {}", join(.errors))]
    #[diagnostic(code(crm::contact::invalid_data))]
    InvalidData {
        /// Each problem found.
        #[related]
        errors: Vec<FieldError>,
    },

    /// The caller-supplied `id` is not a usable id, e.g. `{"id": 42}` or `{"id": ""}`.
    #[error("invalid contact id {id}: {reason}")]
    #[diagnostic(code(crm::contact::invalid_id), help("an id is a non-empty string of at most 128 bytes"))]
    InvalidId {
        /// The offending `id` value, as JSON.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A contact with this id already exists, e.g. adding `{"id": "crm-7", …}` twice.
    #[error("a contact with id `{id}` already exists")]
    #[diagnostic(code(crm::contact::duplicate_id), help("omit `id` to have one generated"))]
    DuplicateId {
        /// The id.
        id: ContactId,
    },

    /// No contact has this id, e.g. `update_contact("nope", …)` or removing a contact twice.
    #[error("no contact has id `{id}`")]
    #[diagnostic(code(crm::contact::not_found))]
    NotFound {
        /// The id asked for.
        id: String,
    },

    /// `check`/`try_can` asked about an action that is neither built in nor guarded, e.g.
    /// `try_can("dellete")`.
    #[error("unknown action `{action}`")]
    #[diagnostic(code(crm::action::unknown))]
    UnknownAction {
        /// The action asked about.
        action: String,
        /// A did-you-mean or the list of known actions.
        #[help]
        help: Option<String>,
    },

    /// A guard does not allow the action, e.g. `edit` guarded by `data.status == 'active'` on a
    /// contact whose status is `'archived'`.
    #[error("`{action}` is not allowed: guard {guard} does not hold")]
    #[diagnostic(code(crm::action::refused))]
    Refused {
        /// The action.
        action: String,
        /// The guard that refused: its expression, or `#n` for the n-th closure guard.
        guard: String,
    },

    /// A guard could not be evaluated, which refuses the action, e.g. `data.score / data.count > 1`
    /// when `count` is `0`.
    #[error("`{action}` is not allowed: guard {guard} failed: {source}")]
    #[diagnostic(code(crm::action::guard_failed))]
    GuardFailed {
        /// The action.
        action: String,
        /// The guard's expression.
        guard: String,
        /// Why evaluation failed.
        #[source]
        source: EvalError,
    },

    /// A `before` hook vetoed the action, e.g. a hook returning `Err("no free-mail addresses".into())`.
    #[error("`{action}` was vetoed: {reason}")]
    #[diagnostic(code(crm::action::vetoed))]
    Vetoed {
        /// The action.
        action: String,
        /// The hook's reason.
        reason: String,
    },

    /// The host's document is not a CRM document, e.g. the host set it to `"hello"` or edited a
    /// history entry's sequence number.
    #[error("the CRM document is corrupt: {reason}")]
    #[diagnostic(
        code(crm::document::corrupt),
        help("the document is owned by the CRM; restore it from a backup or reset it to `null`")
    )]
    CorruptDocument {
        /// What is wrong with it.
        reason: String,
    },

    /// The document was written by a newer version of this crate, e.g. `{"version": 2, …}`.
    #[error("CRM document version {found} is not supported (this build reads version {supported})")]
    #[diagnostic(code(crm::document::unsupported_version), help("upgrade nexus-crm"))]
    UnsupportedVersion {
        /// The version found.
        found: u64,
        /// The version this build reads and writes.
        supported: u64,
    },

    /// The contact changed between reading it and storing the change, e.g. two processes editing
    /// the same promoted contact at once. Only the database store, which several handles share,
    /// can report it; nothing was written.
    #[error("contact `{id}` was changed concurrently")]
    #[diagnostic(code(crm::contact::conflict), help("read the contact again and retry"))]
    Conflict {
        /// The contact.
        id: String,
    },

    /// The host's CRM is in the database store (its document is a promotion pointer), but the
    /// configuration has no store, e.g. `{"version": 1, "store": "…"}` read without `.store(…)`.
    #[error("this CRM has moved to the database store (host `{host}`), and no store is configured")]
    #[diagnostic(
        code(crm::store::not_configured),
        help(
            "add the store to the configuration: `CrmConfig::builder().store(CrmStore::open(url, tenant)?)`"
        )
    )]
    Moved {
        /// The host's id in the store.
        host: String,
    },

    /// [`promote`](super::promote) was called with a configuration that has no store.
    #[error("no database store is configured to promote into")]
    #[diagnostic(
        code(crm::store::missing),
        help(
            "add the store to the configuration: `CrmConfig::builder().store(CrmStore::open(url, tenant)?)`"
        )
    )]
    StoreNotConfigured,

    /// The document points at a host the store does not have, e.g. the store was opened on another
    /// database or tenant than the one the host was promoted into.
    #[error("the store has no CRM for host `{host}`")]
    #[diagnostic(code(crm::store::unknown_host), help("check the store's URL and tenant"))]
    UnknownHost {
        /// The host's id, from its document.
        host: String,
    },

    /// [`promote`](super::promote) was called on a host that is promoted already (its document is
    /// a pointer into the store). Nothing changed.
    #[error("this CRM is already in the database store (host `{host}`)")]
    #[diagnostic(code(crm::store::already_promoted))]
    AlreadyPromoted {
        /// The host's id in the store.
        host: String,
    },

    /// [`promote_as`](super::promote_as) named a host id the store already has, e.g. promoting two
    /// users as `"user:42"`. Nothing changed.
    #[error("the store already has a CRM for host `{host}`")]
    #[diagnostic(code(crm::store::host_exists), help("each host needs its own id in the store"))]
    HostExists {
        /// The host id.
        host: String,
    },

    /// The host id given to [`promote_as`](super::promote_as) is unusable, e.g. `""`.
    #[error("invalid host id {id:?}: {reason}")]
    #[diagnostic(
        code(crm::store::invalid_host),
        help("a host id is a non-empty string of at most 128 bytes")
    )]
    InvalidHostId {
        /// The id given.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The database store failed, e.g. the server is unreachable. Nothing was written.
    #[error("the CRM store failed: {0}")]
    #[diagnostic(code(crm::store::failed))]
    Store(#[source] crate::store::StoreError),

    /// The store's worker thread could not start or has stopped.
    #[error("the CRM store is unavailable: {reason}")]
    #[diagnostic(code(crm::store::unavailable))]
    StoreUnavailable {
        /// Why.
        reason: String,
    },
}

/// One problem with one field of contact data: a problem Level 2 data can have too, in the
/// engine's words ([`Violation`]), or one only Level 1 has.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldError {
    /// The value breaks the field's declaration, checked by the engine's validator exactly as a
    /// Level 2 `dataSchema` is: a wrong type (`{"name": 42}` for an untyped, string field), a
    /// `required` field absent or `null`, a date that is not one, a value outside `min`/`max`, not
    /// one of the `enum` values, or not matching the `pattern`.
    #[error("field {0}")]
    Violation(Violation),
    /// The field is not declared, e.g. `fax` when the fields are `name, email, phone, company`.
    #[error("unknown field `{field}`")]
    Unknown {
        /// The field.
        field: String,
        /// A did-you-mean or the list of declared fields.
        help: Option<String>,
    },
    /// An update tries to change the contact's id, e.g. `update_contact(id, json!({"id": "other"}))`.
    #[error("field `{field}` cannot be changed")]
    Immutable {
        /// The field (`id`).
        field: String,
    },
}

// By hand rather than derived: a violation's code names its kind of problem
// (`crm::field::missing`, `crm::field::wrong_type`, …), as Level 1's codes always have.
impl miette::Diagnostic for FieldError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let name = match self {
            FieldError::Violation(violation) => violation.problem.code_name(),
            FieldError::Unknown { .. } => "unknown",
            FieldError::Immutable { .. } => "immutable",
        };
        Some(Box::new(format!("crm::field::{name}")))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self {
            FieldError::Violation(violation) => {
                violation.problem.help().map(|h| Box::new(h) as Box<dyn fmt::Display>)
            }
            FieldError::Unknown { help, .. } => help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>),
            FieldError::Immutable { .. } => None,
        }
    }
}

/// A configuration that cannot be used, with every problem found in it.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("invalid CRM configuration: {}", join(.problems))]
#[diagnostic(code(crm::config::invalid))]
pub struct ConfigError {
    /// Each problem, in the order the builder calls were made.
    #[related]
    pub problems: Vec<ConfigProblem>,
}

/// One problem in a [`CrmConfig`](super::CrmConfig) being built.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum ConfigProblem {
    /// No `contact` entity is declared: `CrmConfig::builder().build()`.
    #[error("no `contact` entity is declared")]
    #[diagnostic(
        code(crm::config::no_contact),
        help("declare it: `.entity(\"contact\", |e| e.fields([\"name\", \"email\"]))`")
    )]
    MissingContactEntity,
    /// An entity other than `contact`, e.g. `.entity("lead", …)`: Level 1 manages contacts only.
    #[error("entity `{entity}` is not supported at Level 1")]
    #[diagnostic(
        code(crm::config::unsupported_entity),
        help("Level 1 manages contacts; leads and opportunities come with Level 2 definitions")
    )]
    UnsupportedEntity {
        /// The entity.
        entity: String,
    },
    /// The same entity declared twice, e.g. `.entity("contact", …).entity("contact", …)`.
    #[error("entity `{entity}` is declared twice")]
    #[diagnostic(code(crm::config::duplicate_entity), help("declare each entity in one `.entity` call"))]
    DuplicateEntity {
        /// The entity.
        entity: String,
    },
    /// The same field declared twice, e.g. `.fields(["name", "name"])`.
    #[error("field `{field}` is declared twice")]
    #[diagnostic(code(crm::config::duplicate_field))]
    DuplicateField {
        /// The field.
        field: String,
    },
    /// A field uses a reserved name, e.g. `.fields(["id"])`: `id` holds the contact's id.
    #[error("field name `{field}` is reserved")]
    #[diagnostic(code(crm::config::reserved_field), help("every contact has an `id`; pick another name"))]
    ReservedField {
        /// The field.
        field: String,
    },
    /// `required` names an undeclared field, e.g. `.fields(["name"]).required(["nmae"])`.
    #[error("required field `{field}` is not declared")]
    #[diagnostic(code(crm::config::unknown_required))]
    UnknownRequired {
        /// The field.
        field: String,
        /// A did-you-mean or the list of declared fields.
        #[help]
        help: Option<String>,
    },
    /// A field's `pattern` is not a valid regular expression, e.g. `"(["`.
    #[error("field `{field}` has an invalid pattern: {message}")]
    #[diagnostic(code(crm::config::invalid_pattern))]
    InvalidPattern {
        /// The field.
        field: String,
        /// The regex compiler's message.
        message: String,
    },
    /// A hook names an action that does not exist (e.g. `.before("create", …)`), or a guard names
    /// one that looks like a typo of a built-in action (e.g. `.guard("dellete", …)`).
    #[error("unknown action `{action}`")]
    #[diagnostic(code(crm::config::unknown_action))]
    UnknownAction {
        /// The action.
        action: String,
        /// A did-you-mean or the list of built-in actions.
        #[help]
        help: Option<String>,
    },
    /// A guard expression has a diagnostic, e.g. `data.name > 5` (a string compared with a number)
    /// or `data.status == 'x'` when `status` is not declared. At Level 1 warnings count too: an
    /// undeclared field can never hold a value here, so such a guard is always a mistake.
    #[error("guard of `{action}` does not compile: {}", first_message(.report))]
    #[diagnostic(code(crm::config::invalid_guard))]
    InvalidGuard {
        /// The action it guards.
        action: String,
        /// The expression and every diagnostic, renderable with miette.
        #[diagnostic_source]
        report: Report,
    },
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

fn first_message(report: &Report) -> &str {
    report.diagnostics.first().map_or("", |d| d.message.as_str())
}
