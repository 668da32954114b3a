//! Level 1: a CRM inside any host type, with no database (seed US-001…US-005, FR-L1-001…007).
//!
//! A host (a user struct, an account record of your application) implements [`HasCrm`] by
//! handing out its [`CrmConfig`] and a JSON document it owns, the seed's "JSON column"; contacts
//! and their history live in that document. `host.crm()` returns a [`Crm`] handle.
//!
//! # Five minutes
//!
//! ```
//! use std::sync::LazyLock;
//!
//! use nexus_crm::crm::{CrmConfig, HasCrm};
//! use serde_json::{Value, json};
//!
//! struct User {
//!     name: String,
//!     crm: Value, // the document: `null` to start with; persist it with the user
//! }
//!
//! static CRM: LazyLock<CrmConfig> = LazyLock::new(|| {
//!     CrmConfig::builder()
//!         .entity("contact", |e| e.fields(["name", "email", "phone", "company"]).required(["name"]))
//!         .build()
//!         .expect("the CRM configuration is valid")
//! });
//!
//! impl HasCrm for User {
//!     fn crm_config(&self) -> &CrmConfig { &CRM }
//!     fn crm_document(&self) -> &Value { &self.crm }
//!     fn crm_document_mut(&mut self) -> &mut Value { &mut self.crm }
//! }
//!
//! # fn main() -> Result<(), nexus_crm::crm::CrmError> {
//! let mut user = User { name: "Ada".into(), crm: Value::Null };
//! let john = user.crm().add_contact(json!({
//!     "name": "John Doe",
//!     "email": "john@example.com",
//!     "phone": "+1-555-0100",
//!     "company": "Acme Corp",
//! }))?;
//!
//! assert_eq!(user.crm().contacts()?, [john.clone()]);
//! assert!(user.crm().can("edit"));
//! let history = user.crm().history()?;
//! assert_eq!((history[0].seq, history[0].actor.as_str()), (1, "system"));
//! assert_eq!(history[0].after.as_ref().and_then(|f| f.get("company")), Some(&json!("Acme Corp")));
//!
//! // Bad data is refused as a whole and leaves the document as it was.
//! let before = user.crm.to_string();
//! assert!(user.crm().add_contact(json!({"name": "Eve", "fax": "555"})).is_err());
//! assert_eq!(user.crm.to_string(), before);
//! # Ok(())
//! # }
//! ```
//!
//! # What a configuration says
//!
//! - **Fields** ([`EntityBuilder::fields`]): plain names are string fields, as in the seed's
//!   `['name', 'email', 'phone', 'company']`; [`EntityBuilder::field`] and
//!   [`EntityBuilder::declare`] declare other types and constraints with the same
//!   [`Field`](crate::ir::data::Field) a Level 2 `dataSchema` compiles to, so both levels validate
//!   data alike. Unknown fields are refused; `null` means absent; `id` is reserved for the id.
//! - **Guards** per action ([`EntityBuilder::guard`], [`EntityBuilder::guard_fn`]): a condition of
//!   the expression language (compiled once, when the configuration is built; a mistake is a
//!   [`ConfigError`] carrying the diagnostic) or a Rust closure over the [`Contact`]. The built-in
//!   actions are `add`, `edit` and `delete`; other names are the host's own, asked with
//!   [`Crm::can`].
//! - **Hooks** ([`EntityBuilder::before`], [`EntityBuilder::after`]): run in the order added; a
//!   `before` hook can veto with a reason ([`CrmError::Vetoed`]).
//! - **Subscribers** ([`CrmConfigBuilder::subscribe`]) receive [`CrmEvent`]s after each change,
//!   and a **clock** ([`CrmConfigBuilder::clock`]) makes time deterministic in tests.
//!
//! Every change is all-or-nothing: validation, guards and `before` hooks run before anything is
//! written, and the backend stores the contact and its history entry in one step. History is
//! append-only: no API edits or removes an entry, and entries are numbered 1, 2, 3, … without
//! gaps, which every read checks. One host has exactly one CRM (BR-007): its document.
//!
//! # Promotion to the database store
//!
//! Seed US-010 and BR-006: a host outgrows its document and moves to the Level 2 database store
//! without changing the code that uses its CRM. The seams for that are in place:
//!
//! - **All behaviour is in the handle, none in storage.** [`Crm<B>`](Crm) is generic over a
//!   [`ContactBackend`]/[`ContactBackendMut`]; backends only read and atomically
//!   [`commit`](ContactBackendMut::commit) a [`Change`] (contact plus history entry). Validation,
//!   guards, hooks, events and the shape of history are therefore the same whatever the backend.
//! - **The host's handle type does not name the document.** [`HasCrm::crm`] returns
//!   [`HostCrm`], a `Crm<HostBackend<…>>`; [`HostBackend`] is opaque and today always holds the
//!   document. The store will be a second, private variant of it: a configuration line (say
//!   `CrmConfig::builder().store(…)`) selects it, and `crm()` routes to the store for hosts that
//!   have been promoted. Code written against Level 1, including code that names `HostCrm`,
//!   compiles and behaves the same.
//! - **Which subject in the store?** The migration helper (say `promote(&mut host, &store)`) reads
//!   [`Crm::export`], writes contacts and history into the store's tables under a fresh subject
//!   id inside one transaction, ids, sequence numbers, timestamps and actors unchanged (ids are
//!   UUIDv7, unique across hosts, so nothing is renumbered), and only then replaces the host's
//!   document with a pointer to that subject. The document keeps identifying the host's one CRM
//!   (BR-007) and the host's `HasCrm` impl stays as it is. A build that predates the store
//!   reports the pointer as [`CrmError::CorruptDocument`] rather than showing an empty CRM.
//! - **Async.** sqlx is async and this API is synchronous. The store implements the same two
//!   traits by blocking on a runtime it owns (never called from inside an async task); async
//!   applications get an async mirror of the handle. Its steps (validate, check guards, run
//!   hooks, commit, publish) are the ones in `handle.rs`, where everything before the commit
//!   is pure, so the mirror reuses them rather than re-implementing them.
//! - **One test suite.** `tests/level1.rs` runs every Level 1 test through a small `Fixture`
//!   trait (a fresh CRM for a config, and its persisted state as text); the store adds a fixture
//!   and the whole suite runs against it.

mod backend;
mod clock;
mod config;
mod error;
mod handle;
mod model;
mod promote;
mod store;
mod validate;

use serde_json::Value as Json;

pub use backend::{
    Change, ChangeKind, ContactBackend, ContactBackendMut, DOCUMENT_VERSION, Document, HostBackend,
};
pub use clock::{Clock, SystemClock};
pub use config::{CONTACT, CrmConfig, CrmConfigBuilder, EntityBuilder, HookContext, ID_KEY, Veto};
pub use error::{ConfigError, ConfigProblem, CrmError, FieldError};
pub use handle::{Crm, SYSTEM_ACTOR};
pub use model::{Action, Contact, ContactId, CrmEvent, Fields, HistoryEntry, MAX_ID_LEN};
pub use promote::{Promotion, promote, promote_as};
pub use store::CrmStore;

pub use crate::store::TenantId;

pub use crate::engine::eval::Actor;

/// A host's CRM handle, as [`HasCrm::crm`] returns it.
pub type HostCrm<'a> = Crm<HostBackend<&'a mut Json>>;

/// A host's read-only CRM handle, as [`HasCrm::crm_view`] returns it.
pub type HostCrmView<'a> = Crm<HostBackend<&'a Json>>;

/// A type with a CRM: implement the three required methods, then call `host.crm()`.
pub trait HasCrm {
    /// The CRM configuration (typically a `static`; see the [module docs](self)).
    fn crm_config(&self) -> &CrmConfig;

    /// The JSON document where this host's contacts and history live; `null` for a new host.
    fn crm_document(&self) -> &Json;

    /// The same document, to change it. Only the CRM should write it.
    fn crm_document_mut(&mut self) -> &mut Json;

    /// This host's CRM, acting as the [`SYSTEM_ACTOR`]; see [`Crm::with_actor`].
    fn crm(&mut self) -> HostCrm<'_> {
        // The config is an `Arc` inside: cloning it ends the shared borrow before the mutable one.
        let config = self.crm_config().clone();
        let backend = HostBackend::for_host(&config, self.crm_document_mut());
        Crm::new(config, backend)
    }

    /// This host's CRM for reading (`contacts`, `history`, `can`) through a shared reference.
    fn crm_view(&self) -> HostCrmView<'_> {
        let config = self.crm_config().clone();
        let backend = HostBackend::for_host(&config, self.crm_document());
        Crm::new(config, backend)
    }
}
