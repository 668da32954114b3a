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
//! use nexus_crm::level1::{CrmConfig, HasCrm};
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
//! # fn main() -> Result<(), nexus_crm::level1::CrmError> {
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
//! without changing the code that uses its CRM.
//!
//! ```
//! # use nexus_crm::level1::{CrmConfig, CrmError, CrmStore, HasCrm, TenantId, promote};
//! # use serde_json::{Value, json};
//! # struct User { crm: Value, config: CrmConfig }
//! # impl HasCrm for User {
//! #     fn crm_config(&self) -> &CrmConfig { &self.config }
//! #     fn crm_document(&self) -> &Value { &self.crm }
//! #     fn crm_document_mut(&mut self) -> &mut Value { &mut self.crm }
//! # }
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = CrmConfig::builder().entity("contact", |e| e.fields(["name", "email"])).build()?;
//! let mut user = User { crm: Value::Null, config: config.clone() };
//! user.crm().add_contact(json!({"id": "c-1", "name": "Ann"}))?;
//!
//! // One configuration line chooses the store (`CrmStore::open("postgres://…", tenant)` in
//! // production); `promote` moves the document's contacts and history into it.
//! user.config = config.with_store(CrmStore::in_memory(TenantId::new("acme"))?);
//! let promotion = promote(&mut user)?;
//! assert_eq!((promotion.contacts, promotion.entries), (1, 1));
//! assert_eq!(user.crm, json!({"version": 1, "store": promotion.host}));
//!
//! // The same calls, now on the database.
//! user.crm().update_contact("c-1", json!({"email": "ann@example.com"}))?;
//! assert_eq!(user.crm().history()?.len(), 2);
//! # Ok(())
//! # }
//! ```
//!
//! - **All behaviour is in the handle, none in storage.** [`Crm<B>`](Crm) is generic over a
//!   [`ContactBackend`]/[`ContactBackendMut`]; backends only read and atomically
//!   [`commit`](ContactBackendMut::commit) a [`Change`] (contact plus history entry). Validation,
//!   guards, hooks, events and the shape of history are therefore the same whatever the backend.
//! - **Chosen by configuration.** [`CrmConfigBuilder::store`] (or [`CrmConfig::with_store`]) adds
//!   a [`CrmStore`]. [`HasCrm::crm`] still returns a [`HostCrm`], whose [`HostBackend`] is the store
//!   when the host's document is a promotion pointer, `{"version": 1, "store": "<host id>"}`, or
//!   empty (a new host starts in the store: its first change creates its CRM there and writes the
//!   pointer), and the document otherwise (a host keeps its document until promoted, so hosts
//!   can be promoted one at a time). A pointer read without a store is [`CrmError::Moved`], never
//!   an empty CRM. The document keeps identifying the host's one CRM (BR-007).
//! - **The migration helper.** [`promote`] (fresh UUIDv7 host id) or [`promote_as`] (the
//!   application's own id, e.g. `"user:42"`) reads and checks the whole document, writes every
//!   contact and history entry in one transaction — ids, order, sequence numbers, actors, before
//!   and after unchanged; timestamps to the microsecond, the store's precision — and only then
//!   replaces the document by the pointer. A second run is refused ([`CrmError::AlreadyPromoted`],
//!   or [`CrmError::HostExists`] for a host id the store has) and changes nothing.
//! - **Where it lives.** Contacts are rows of `crm_contacts` (Level 2 sees them; the columns it
//!   queries mirror the fields of the same names), keyed by tenant, host and contact id, so two
//!   hosts may both have a contact `crm-7`. History goes to its own append-only table,
//!   `crm_contact_history`, with the same triggers as `crm_history`: `crm_history` entries belong
//!   to a workflow instance (a required foreign key, per-instance numbering) and Level 1 has none;
//!   relaxing that table would weaken Level 2's audit trail. See `store::level1` and
//!   `migrations/*/0003_level1.sql`.
//! - **Sync over async.** sqlx is async and this API is synchronous. A [`CrmStore`] owns a thread
//!   with its own runtime and connections; calls go to it over a channel and wait for the reply,
//!   so they never panic inside a tokio runtime (no nested `block_on`) and cannot deadlock even on
//!   a current-thread one. Details and the alternatives are in the `store` submodule's docs.
//! - **Concurrency.** Unlike a document, the store is shared: an edit or delete computed from a
//!   contact that another handle changed meanwhile is refused ([`CrmError::Conflict`]), never
//!   applied over the other change.
//! - **One test suite.** `tests/level1.rs` runs every Level 1 test through a `Fixture` (a fresh
//!   CRM for a config, and its persisted state as text) on the document, on the store on SQLite
//!   and, when `CRM_TEST_POSTGRES_URL` is set, on the store on PostgreSQL.

mod backend;
mod clock;
mod config;
mod document;
mod error;
mod handle;
mod host;
mod model;
mod promote;
mod store;
mod validate;

pub use self::backend::{Change, ChangeKind, ContactBackend, ContactBackendMut};
pub use self::clock::{Clock, SystemClock};
pub use self::config::{CONTACT, CrmConfig, CrmConfigBuilder, EntityBuilder, HookContext, ID_KEY, Veto};
pub use self::document::{DOCUMENT_VERSION, Document};
pub use self::error::{ConfigError, ConfigProblem, CrmError, FieldError};
pub use self::handle::{Crm, SYSTEM_ACTOR};
pub use self::host::{HasCrm, HostBackend, HostCrm, HostCrmView};
pub use self::model::{Action, Contact, ContactId, CrmEvent, Fields, HistoryEntry, MAX_ID_LEN};
pub use self::promote::{Promotion, promote, promote_as};
pub use self::store::CrmStore;
pub use crate::engine::data::{Problem, Violation};
pub use crate::engine::eval::Actor;
pub use crate::store::TenantId;
