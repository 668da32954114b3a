//! nexus-crm: a workflow engine for CRM pipelines.
//!
//! Definitions (JSON) are parsed with spans ([`syntax`]), validated against the JSON Schema and
//! semantic rules ([`check`]), and compiled into a typed state-machine IR ([`ir`]) that the
//! interpreter ([`engine`]) executes against a [`store`]. `ARCHITECTURE.md` is the codemap.
//!
//! The whole pipeline, from definition text to the audit history:
//!
//! ```
//! use nexus_crm::engine::{Engine, eval::Actor};
//! use nexus_crm::store::{SqliteStore, TenantId};
//! use serde_json::json;
//!
//! let source = r#"{
//!   "id": "tiny-pipeline",
//!   "entities": {"lead": {"stages": ["new", "contacted", "won"], "terminal": ["won"]}},
//!   "transitions": {
//!     "make_contact": {"from": "new", "to": "contacted"},
//!     "win": {"from": "contacted", "to": "won", "condition": "data.deal_value > 0"}
//!   },
//!   "dataSchema": {"deal_value": {"type": "number", "min": 0}}
//! }"#;
//!
//! // Compile: every finding at once, and the IR when there is no error.
//! let checked = nexus_crm::check::check_source(source);
//! assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
//! assert!(checked.definition.is_some());
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! // Execute: an engine on an in-memory SQLite store.
//! let engine = Engine::new(SqliteStore::in_memory().await?);
//! let (tenant, ana) = (TenantId::new("acme"), Actor { id: "ana".into(), ..Actor::default() });
//! engine.deploy(&tenant, source).await?;
//! let lead = engine.create_instance(&tenant, &ana, "tiny-pipeline", "lead", &json!({})).await?;
//! let lead = engine.fire(&tenant, &ana, &lead.id, "make_contact", Some(lead.version)).await?;
//! assert_eq!(lead.stage, "contacted");
//! // A condition the data does not meet refuses the transition and changes nothing.
//! assert!(engine.fire(&tenant, &ana, &lead.id, "win", None).await.is_err());
//!
//! // Read the append-only history.
//! let history = engine.history(&tenant, &lead.id).await?;
//! let events: Vec<&str> = history.iter().map(|entry| entry.event.as_str()).collect();
//! assert_eq!(events.first(), Some(&"instance_created"));
//! assert!(events.contains(&"transition_completed"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used)]
// Unit tests may unwrap: a panic there is a failed test, not a crash on user input.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

pub mod check;
#[cfg(feature = "cli")]
pub mod cli;
pub mod codes;
pub mod diagnostic;
pub mod dump;
pub mod engine;
pub mod graph;
#[cfg(feature = "http")]
pub mod http;
pub mod integrations;
pub mod ir;
pub mod level1;
pub mod records;
pub mod report;
pub mod scenario;
pub mod store;
pub mod syntax;
