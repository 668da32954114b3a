//! The interpreter: executes the IR. Depends on `ir`, never on JSON text.

pub mod compat;
pub mod data;
pub mod eval;
pub mod machine;
pub mod service;
pub mod worker;

pub use eval::{Context, EvalError, Record};
pub use service::{Engine, EngineError};
