//! nexus-crm: a workflow engine for CRM pipelines.
//!
//! Definitions (JSON) are parsed with spans ([`syntax`]), validated against the JSON Schema and
//! semantic rules ([`check`]), and compiled into a typed state-machine IR ([`ir`]) that the
//! interpreter ([`engine`]) executes.
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
pub mod ir;
pub mod level1;
pub mod report;
pub mod scenario;
pub mod store;
pub mod syntax;
