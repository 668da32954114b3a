//! Webhooks, signed per [Standard Webhooks](https://www.standardwebhooks.com/): a JSON `POST`
//! with `webhook-id` (the outbox item's id, the same on every attempt, so a receiver can make an
//! at-least-once delivery effectively once), `webhook-timestamp` (seconds) and
//! `webhook-signature`: `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body` under each of the
//! endpoint's secrets (`whsec_…`), space-separated — two at once while a secret is rotated.
//!
//! The action's `config.secret` names the secret (a name, or a list of names); a value may also
//! hold several secrets separated by spaces. Without `config.secret` the request is not signed.
//!
//! What the receiver answers decides: 2xx is delivered; a redirect is not followed and is a
//! failure; 410 Gone disables the endpoint (recorded in `crm_webhook_endpoints`, visible with
//! `crm outbox endpoints`) and dead-letters the item, and later items for it are dead-lettered
//! without a request; 429 and 503 are retried no sooner than their `Retry-After`; anything else
//! is retried with backoff. Each attempt has its own timeout.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::Utc;
use hmac::{KeyInit, Mac};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Client, StatusCode, Url};
use serde_json::{Value as Json, json};

use super::guard::{AddressPolicy, GuardedResolver, Lookup, refusal};
use super::secrets::{Secret, Secrets};
use super::{ActionFuture, Integration, Ledger};
use crate::engine::service::{ActionFailure, ActionSuccess, Delivered};
use crate::ir::ActionKind;
use crate::store::DisabledEndpoint;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The prefix of a Standard Webhooks secret; the rest is the key in base64.
pub const SECRET_PREFIX: &str = "whsec_";

/// The key bytes of a `whsec_…` secret; `None` when it is not one.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    BASE64.decode(secret.trim().strip_prefix(SECRET_PREFIX)?).ok().filter(|k| !k.is_empty())
}

/// One signature, `v1,<base64>`, of `id.timestamp.body` under `key`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length; an error here would be a bug in the hmac crate.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header: one signature per key, space-separated.
pub fn signature_header(keys: &[Vec<u8>], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter().map(|k| sign(k, id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// What a receiver checks: whether any signature in `header` is `id.timestamp.body` under `key`
/// (compared in constant time).
pub fn verify(header: &str, key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> bool {
    header.split(' ').filter_map(|s| s.strip_prefix("v1,")).filter_map(|s| BASE64.decode(s).ok()).any(|sig| {
        let Ok(mut mac) = HmacSha256::new_from_slice(key) else { return false };
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        mac.verify_slice(&sig).is_ok()
    })
}

/// How outgoing HTTP behaves.
#[derive(Clone)]
pub struct HttpConfig {
    /// The most one attempt may take, connection included.
    pub timeout: Duration,
    /// Which addresses may be reached.
    pub policy: Arc<AddressPolicy>,
    /// How names are resolved (the system's resolver; a fixed table in tests).
    pub lookup: Arc<dyn Lookup>,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig").field("timeout", &self.timeout).field("policy", &self.policy).finish()
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            policy: Arc::new(AddressPolicy::new()),
            lookup: Arc::new(super::guard::SystemLookup),
        }
    }
}

/// The guarded HTTP client: no redirects, no proxies (a proxy would resolve names for us), the
/// guard as its only resolver, a timeout per request.
#[derive(Clone, Debug)]
pub struct GuardedClient {
    client: Client,
    policy: Arc<AddressPolicy>,
}

impl GuardedClient {
    /// A client for `config`.
    pub fn new(config: &HttpConfig) -> Result<Self, super::IntegrationError> {
        let resolver = GuardedResolver::new(config.policy.clone(), config.lookup.clone());
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(resolver))
            .timeout(config.timeout)
            .user_agent(concat!("nexus-crm/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| super::IntegrationError::Client { reason: e.without_url().to_string() })?;
        Ok(Self { client, policy: config.policy.clone() })
    }

    /// Posts `body` as JSON to `url` with `headers`, and maps the answer to an attempt's result.
    /// `shown` is how the endpoint is named in errors (a Slack URL is itself a secret).
    pub async fn post(
        &self,
        url: &Url,
        shown: &str,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<StatusCode, ActionFailure> {
        self.policy.check_url(url).map_err(|r| ActionFailure::permanent(format!("{shown}: {r}")))?;
        let sent = self
            .client
            .post(url.clone())
            .headers(headers)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                if let Some(refused) = refusal(&error) {
                    return Err(ActionFailure::permanent(format!("{shown}: {refused}")));
                }
                let what = if error.is_timeout() { "timed out" } else { "request failed" };
                // `without_url`: the URL may be a secret (Slack); the caller names the endpoint.
                return Err(ActionFailure::retry(format!("{shown}: {what}: {}", error.without_url())));
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(status);
        }
        let code = status.as_u16();
        let failure = match status {
            StatusCode::GONE => ActionFailure::permanent(format!("{shown}: 410 Gone")),
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                ActionFailure::retry(format!("{shown}: {status}"))
                    .with_retry_after(retry_after(response.headers().get(RETRY_AFTER)))
            }
            s if s.is_redirection() => {
                ActionFailure::retry(format!("{shown}: {status}: redirects are not followed"))
            }
            _ => ActionFailure::retry(format!("{shown}: {status}")),
        };
        Err(failure.with_status(code))
    }
}

/// A `Retry-After` value: seconds, or an HTTP date.
pub fn retry_after(value: Option<&HeaderValue>) -> Option<Duration> {
    let text = value?.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    (at.with_timezone(&Utc) - Utc::now()).to_std().ok()
}

/// Delivers `webhook` actions.
pub struct Webhooks {
    client: GuardedClient,
    secrets: Secrets,
    ledger: Arc<dyn Ledger>,
}

impl Webhooks {
    /// Webhooks through `client`, with `secrets` for signing and `ledger` for disabled endpoints.
    pub fn new(client: GuardedClient, secrets: Secrets, ledger: Arc<dyn Ledger>) -> Self {
        Self { client, secrets, ledger }
    }

    async fn deliver(&self, item: &Delivered) -> Result<ActionSuccess, ActionFailure> {
        let Some(ActionKind::Webhook { url, config }) = &item.action else {
            return Err(ActionFailure::permanent(format!("`{}` is not a webhook action", item.name)));
        };
        let parsed =
            Url::parse(url).map_err(|e| ActionFailure::permanent(format!("bad URL `{url}`: {e}")))?;
        let disabled =
            self.ledger.disabled(&item.tenant, url).await.map_err(|e| ActionFailure::retry(e.to_string()))?;
        if disabled {
            return Err(ActionFailure::permanent(format!("{url}: endpoint disabled (it answered 410 Gone)")));
        }
        let keys = self.keys(item, config.as_ref()).await?;
        let body = serde_json::to_vec(&body(item, config.as_ref()))
            .map_err(|e| ActionFailure::permanent(format!("cannot encode the body: {e}")))?;
        let timestamp = Utc::now().timestamp();
        let mut headers = HeaderMap::new();
        let header = |text: &str| {
            HeaderValue::from_str(text).map_err(|_| ActionFailure::permanent("bad header value"))
        };
        headers.insert("webhook-id", header(&item.id)?);
        headers.insert("webhook-timestamp", header(&timestamp.to_string())?);
        if !keys.is_empty() {
            headers
                .insert("webhook-signature", header(&signature_header(&keys, &item.id, timestamp, &body))?);
        }
        match self.client.post(&parsed, url, headers, body).await {
            Ok(status) => Ok(ActionSuccess { http_status: Some(status.as_u16()) }),
            Err(failure) => {
                if failure.http_status == Some(StatusCode::GONE.as_u16()) {
                    let endpoint = DisabledEndpoint {
                        url: url.clone(),
                        disabled_at: Utc::now(),
                        reason: "410 Gone".to_owned(),
                        outbox_id: Some(item.id.clone()),
                    };
                    if let Err(error) = self.ledger.disable(&item.tenant, &endpoint).await {
                        // Not recorded: retry, so the 410 is seen (and recorded) again.
                        return Err(ActionFailure::retry(format!(
                            "{url}: 410 Gone; recording it failed: {error}"
                        )));
                    }
                }
                Err(failure)
            }
        }
    }

    /// The signing keys named by `config.secret`, each value possibly holding several.
    async fn keys(&self, item: &Delivered, config: Option<&Json>) -> Result<Vec<Vec<u8>>, ActionFailure> {
        let names: Vec<&str> = match config.and_then(|c| c.get("secret")) {
            None | Some(Json::Null) => return Ok(Vec::new()),
            Some(Json::String(name)) => vec![name.as_str()],
            Some(Json::Array(names)) => names.iter().filter_map(Json::as_str).collect(),
            Some(_) => {
                return Err(ActionFailure::permanent("`config.secret` must name a secret or a list of them"));
            }
        };
        let mut keys = Vec::new();
        for name in names {
            let secret: Secret = self.secrets.get(&item.tenant, name).await.map_err(|e| match e {
                super::secrets::SecretError::Store(store) => ActionFailure::retry(store.to_string()),
                missing => ActionFailure::permanent(missing.to_string()),
            })?;
            for part in secret.expose().split_whitespace() {
                let key = secret_key(part).ok_or_else(|| {
                    ActionFailure::permanent(format!("secret `{name}` is not a `{SECRET_PREFIX}…` secret"))
                })?;
                keys.push(key);
            }
        }
        Ok(keys)
    }
}

/// The body: Standard Webhooks' `{type, timestamp, data}` with the instance's context.
fn body(item: &Delivered, config: Option<&Json>) -> Json {
    json!({
        "type": item.name,
        "timestamp": item.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "data": {
            "tenant": item.tenant.as_str(),
            "kind": item.kind.as_str(),
            "instance": item.instance_id,
            "definition": item.definition,
            "stage": item.stage,
            "cause": item.payload,
            "data": item.data,
            "config": config.and_then(|c| c.get("payload")),
        }
    })
}

impl Integration for Webhooks {
    fn execute<'a>(&'a self, item: &'a Delivered) -> ActionFuture<'a> {
        Box::pin(self.deliver(item))
    }

    /// A compensation that is a webhook is posted like any other: the receiver undoes.
    fn compensate<'a>(&'a self, item: &'a Delivered) -> ActionFuture<'a> {
        Box::pin(self.deliver(item))
    }
}
