//! Integrations: outbox actions delivered to the outside world.
//!
//! A [`Registry`] is the engine's [`ActionHandler`]: it finds the [`Integration`] registered for
//! an action — by the plugin name of a `custom` action (FR-EXT-001), by the action's type
//! otherwise (`webhook`, `slack`, `email`, `notify`, …) — and calls its
//! [`execute`](Integration::execute), or its [`compensate`](Integration::compensate) for a
//! compensation item. The machine enqueues a failed group's compensations in reverse order and a
//! worker delivers them in that order (BR-004).
//!
//! [`Registry::standard`] registers the built-in [`webhook::Webhooks`] and [`slack::Slack`], both
//! through one [`webhook::GuardedClient`]: the SSRF guard ([`guard`]) as its resolver, no
//! redirects, no proxies, a timeout per attempt. Secrets are referenced by name ([`secrets`]),
//! never logged and never part of an error.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use nexus_crm::engine::service::Engine;
//! use nexus_crm::integrations::{Registry, StoreLedger, webhook::HttpConfig};
//! use nexus_crm::store::AnyStore;
//!
//! let store = AnyStore::open("sqlite:crm.db").await?;
//! let registry = Registry::standard(&HttpConfig::default(), Arc::new(StoreLedger(store.clone())))?;
//! let engine = Engine::new(store).with_action_handler(registry);
//! # Ok(()) }
//! ```

pub mod guard;
pub mod secrets;
pub mod slack;
pub mod webhook;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tracing::Instrument as _;

use crate::engine::service::{
    ActionFailure, ActionHandler, ActionResult, ActionSuccess, AttemptResult, Delivered,
};
use crate::ir::ActionKind;
use crate::store::{DisabledEndpoint, Store, StoreError, StoredOutboxKind, TenantId};

/// What an integration returns for one attempt.
pub type ActionFuture<'a> = Pin<Box<dyn Future<Output = Result<ActionSuccess, ActionFailure>> + Send + 'a>>;

/// A future that borrows its inputs, boxed (what [`Ledger`] returns).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something an action can do to the outside world, and undo (FR-EXT-001).
///
/// `execute` may run more than once for one item (delivery is at least once): use the item's
/// `id` to make the effect happen once.
pub trait Integration: Send + Sync {
    /// Carries out the action.
    fn execute<'a>(&'a self, item: &'a Delivered) -> ActionFuture<'a>;

    /// Undoes what `execute` did, for a compensation item (its payload names the action it
    /// compensates and the reason). By default there is nothing to undo.
    fn compensate<'a>(&'a self, item: &'a Delivered) -> ActionFuture<'a> {
        let _ = item;
        Box::pin(async { Ok(ActionSuccess::default()) })
    }
}

/// Why integrations could not be set up.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum IntegrationError {
    /// The HTTP client could not be built (e.g. no TLS roots).
    #[error("cannot build the HTTP client: {reason}")]
    #[diagnostic(code(crm::integrations::client))]
    Client {
        /// Why.
        reason: String,
    },

    /// An allow-list entry that is neither an address, a network nor a host name.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Allow(#[from] guard::Refused),
}

/// What integrations read and record in the store: secrets, disabled endpoints. Object-safe, so
/// integrations need not be generic over the store.
pub trait Ledger: Send + Sync {
    /// The tenant's secret `name`, if the table has it.
    fn secret<'a>(
        &'a self,
        tenant: &'a TenantId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>>;
    /// Whether the endpoint `url` is disabled for the tenant.
    fn disabled<'a>(&'a self, tenant: &'a TenantId, url: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// Records that an endpoint is disabled.
    fn disable<'a>(
        &'a self,
        tenant: &'a TenantId,
        endpoint: &'a DisabledEndpoint,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// The [`Ledger`] of a store.
#[derive(Clone, Debug)]
pub struct StoreLedger<S>(pub S);

impl<S: Store> Ledger for StoreLedger<S> {
    fn secret<'a>(
        &'a self,
        tenant: &'a TenantId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        Box::pin(self.0.secret(tenant, name))
    }

    fn disabled<'a>(&'a self, tenant: &'a TenantId, url: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move { Ok(!self.0.disabled_endpoints(tenant, Some(url)).await?.is_empty()) })
    }

    fn disable<'a>(
        &'a self,
        tenant: &'a TenantId,
        endpoint: &'a DisabledEndpoint,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.0.disable_endpoint(tenant, endpoint))
    }
}

/// Integrations by name; the engine's action handler.
#[derive(Clone, Default)]
pub struct Registry {
    by_name: HashMap<String, Arc<dyn Integration>>,
    fallback: Option<Arc<dyn Integration>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.by_name.keys().collect();
        names.sort();
        f.debug_struct("Registry").field("names", &names).field("fallback", &self.fallback.is_some()).finish()
    }
}

impl Registry {
    /// No integrations: every action fails for good until one is registered for it.
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in webhook and Slack integrations on one guarded client, with secrets from the
    /// store's table and the environment.
    pub fn standard(http: &webhook::HttpConfig, ledger: Arc<dyn Ledger>) -> Result<Self, IntegrationError> {
        let client = webhook::GuardedClient::new(http)?;
        let secrets = secrets::Secrets::new(ledger.clone(), true);
        Ok(Self::new()
            .register("webhook", webhook::Webhooks::new(client.clone(), secrets.clone(), ledger))
            .register("slack", slack::Slack::new(client, secrets)))
    }

    /// Registers `integration` for actions of type `name`, or `custom` actions of plugin `name`;
    /// a later registration of the same name replaces the earlier.
    pub fn register(mut self, name: impl Into<String>, integration: impl Integration + 'static) -> Self {
        self.by_name.insert(name.into(), Arc::new(integration));
        self
    }

    /// Uses `integration` for actions no registered integration handles.
    pub fn with_fallback(mut self, integration: impl Integration + 'static) -> Self {
        self.fallback = Some(Arc::new(integration));
        self
    }

    /// The integration `item` goes to, by the plugin name of a custom action or the action's type.
    fn route(&self, item: &Delivered) -> Result<&Arc<dyn Integration>, ActionFailure> {
        let name = match &item.action {
            Some(ActionKind::Custom { plugin, .. }) => plugin.as_str(),
            Some(kind) => kind.type_name(),
            None => {
                return self.fallback.as_ref().ok_or_else(|| {
                    ActionFailure::permanent(format!(
                        "action `{}` is not in its instance's definition",
                        item.name
                    ))
                });
            }
        };
        self.by_name
            .get(name)
            .or(self.fallback.as_ref())
            .ok_or_else(|| ActionFailure::permanent(format!("no integration is registered for `{name}`")))
    }
}

impl ActionHandler for Registry {
    fn handle<'a>(&'a self, action: &'a Delivered) -> ActionResult<'a> {
        Box::pin(async move { self.attempt(action).await.map(|_| ()).map_err(|f| f.error) })
    }

    fn attempt<'a>(&'a self, item: &'a Delivered) -> AttemptResult<'a> {
        Box::pin(async move {
            let integration = self.route(item)?;
            let span = tracing::info_span!("deliver", tenant = item.tenant.as_str(), id = %item.id, action = %item.name);
            let attempt = if item.kind == StoredOutboxKind::Compensation {
                integration.compensate(item)
            } else {
                integration.execute(item)
            };
            attempt.instrument(span).await
        })
    }
}
