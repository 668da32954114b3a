//! Guards: expression, role, permission, and custom evaluators the host registers by name.

use serde_json::Value as Json;

use crate::engine::eval::Context;

/// A `{"type": "custom", "name": …}` guard's implementation, registered with
/// `Machine::with_guard`. Gets the guard's `config` and the evaluation context (data, stage,
/// actor, time); returns whether the guard passes.
pub trait GuardEvaluator: Send + Sync {
    /// Whether the guard passes.
    fn allows(&self, config: Option<&Json>, ctx: &Context<'_>) -> bool;
}

impl<F> GuardEvaluator for F
where
    F: Fn(Option<&Json>, &Context<'_>) -> bool + Send + Sync,
{
    fn allows(&self, config: Option<&Json>, ctx: &Context<'_>) -> bool {
        self(config, ctx)
    }
}
