//! What sales teams record and read beside the pipeline: interactions (notes, calls, meetings,
//! e-mails) with file attachments, an instance's timeline, and reports from its history.
//!
//! - [`interactions`]: logging and listing interactions; the timeline (history and interactions
//!   together, newest first).
//! - [`attachments`]: uploads streamed to a directory or the database under a size limit, with
//!   the type sniffed from the bytes and a SHA-256; downloads as a stream.
//! - [`reports`]: funnel, by user, by period (in an IANA time zone), time in stage, SLA
//!   compliance; rendered as a table, JSON, CSV or an SVG chart.
//!
//! Invariants: every call is scoped to one tenant; an id of another tenant is unknown. No upload
//! is ever held whole in memory: a bounded buffer moves it from the reader to the storage.

pub mod attachments;
pub mod interactions;
pub mod json;
pub mod reports;

pub use attachments::{
    AttachmentBody, AttachmentConfig, AttachmentStore, DEFAULT_ALLOWED_TYPES, open_attachment, upload,
};
pub use interactions::{NewInteraction, add_interaction, interactions, timeline};
pub use reports::{Period, Report, ReportKind, ReportQuery, run_report};

use crate::store::StoreError;

/// Why a records call failed. Every variant names an input that triggers it.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum RecordsError {
    /// The instance does not exist for this tenant, e.g. logging a call on a deleted id.
    #[error("no instance `{id}`")]
    #[diagnostic(code(crm::records::unknown_instance))]
    UnknownInstance {
        /// The id given.
        id: String,
    },
    /// The contact does not exist for this tenant.
    #[error("no contact `{id}`")]
    #[diagnostic(code(crm::records::unknown_contact))]
    UnknownContact {
        /// The id given.
        id: String,
    },
    /// The interaction does not exist for this tenant, e.g. attaching a file to a typo.
    #[error("no interaction `{id}`")]
    #[diagnostic(code(crm::records::unknown_interaction))]
    UnknownInteraction {
        /// The id given.
        id: String,
    },
    /// The attachment does not exist for this tenant.
    #[error("no attachment `{id}`")]
    #[diagnostic(code(crm::records::unknown_attachment))]
    UnknownAttachment {
        /// The id given.
        id: String,
    },
    /// A value is out of bounds, e.g. an empty body or author, an empty upload, a file name with
    /// control characters, `--to` before `--from`.
    #[error("{reason}")]
    #[diagnostic(code(crm::records::invalid))]
    Invalid {
        /// What is wrong.
        reason: String,
    },
    /// An upload is larger than the configured limit (HTTP 413).
    #[error("the attachment is larger than the limit of {limit} bytes")]
    #[diagnostic(code(crm::records::too_large), help("the limit is set by --max-attachment-size"))]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The bytes of an upload are of a type the allow-list does not name, whatever the client
    /// claimed, e.g. an executable sent as `application/pdf` (HTTP 415).
    #[error("attachments of type `{detected}` are not accepted")]
    #[diagnostic(code(crm::records::unsupported_type), help("accepted: {allowed}"))]
    UnsupportedType {
        /// The type sniffed from the bytes.
        detected: String,
        /// The allow-list, comma-separated.
        allowed: String,
    },
    /// A report was asked for in a form it has not, e.g. an SVG of the SLA report.
    #[error("the {kind} report has no {format} rendering")]
    #[diagnostic(code(crm::records::no_rendering), help("SVG charts exist for `funnel` and `time-in-stage`"))]
    NoRendering {
        /// The report.
        kind: &'static str,
        /// The format asked for.
        format: &'static str,
    },
    /// Reading the upload or the attachment storage failed, e.g. the client hung up mid-upload
    /// or the directory is not writable.
    #[error("attachment I/O failed: {0}")]
    #[diagnostic(code(crm::records::io))]
    Io(#[source] std::io::Error),
    /// The store failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
}

/// Result of a records call.
pub type RecordsResult<T> = Result<T, RecordsError>;

fn invalid(reason: impl Into<String>) -> RecordsError {
    RecordsError::Invalid { reason: reason.into() }
}
