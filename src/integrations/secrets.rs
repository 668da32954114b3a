//! Secrets by name: definitions and configuration say `"secret": "pager_signing"`, never the
//! value. A name is looked up in the tenant's `crm_secrets` table, then in the environment as
//! `CRM_SECRET_PAGER_SIGNING`. Values are wrapped in [`Secret`], whose `Debug` shows nothing, and
//! no error message ever contains one.

use std::sync::Arc;

use super::Ledger;
use crate::store::{StoreError, TenantId};

/// The environment variable that holds secret `name`: `CRM_SECRET_` and the name in capitals,
/// every character other than a letter or digit as `_`.
pub fn env_var(name: &str) -> String {
    let mut var = String::from("CRM_SECRET_");
    var.extend(name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }));
    var
}

/// A secret's value; shown as `Secret(…)` by `Debug`, so it cannot slip into a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Why a secret could not be had.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum SecretError {
    /// Neither the tenant's secrets table nor the environment has it.
    #[error("secret `{name}` is not set")]
    #[diagnostic(
        code(crm::integrations::secret_missing),
        help("store it in crm_secrets for the tenant, or set the environment variable {var}")
    )]
    Missing {
        /// Its name.
        name: String,
        /// The environment variable that would hold it.
        var: String,
    },

    /// Reading the secrets table failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
}

/// Resolves secrets by name for a tenant.
#[derive(Clone)]
pub struct Secrets {
    ledger: Arc<dyn Ledger>,
    environment: bool,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets").field("environment", &self.environment).finish_non_exhaustive()
    }
}

impl Secrets {
    /// Secrets from the tenant's table and, when `environment`, from `CRM_SECRET_*` variables.
    pub fn new(ledger: Arc<dyn Ledger>, environment: bool) -> Self {
        Self { ledger, environment }
    }

    /// The value of `name` for `tenant`: its table first (the more specific), then the
    /// environment.
    pub async fn get(&self, tenant: &TenantId, name: &str) -> Result<Secret, SecretError> {
        self.find(tenant, name)
            .await?
            .ok_or_else(|| SecretError::Missing { name: name.to_owned(), var: env_var(name) })
    }

    /// Like [`get`](Self::get), `None` when it is not set.
    pub async fn find(&self, tenant: &TenantId, name: &str) -> Result<Option<Secret>, StoreError> {
        if let Some(value) = self.ledger.secret(tenant, name).await? {
            return Ok(Some(Secret(value)));
        }
        if self.environment
            && let Ok(value) = std::env::var(env_var(name))
            && !value.is_empty()
        {
            return Ok(Some(Secret(value)));
        }
        Ok(None)
    }
}
