//! Slack incoming webhooks, through the same guarded client as webhooks.
//!
//! The URL of an incoming webhook is a credential, so it belongs in secrets, not in definitions:
//! an action without `url` posts to the secret `slack:ACTION` (the action's name), or else the
//! secret `slack_webhook_url`. A URL in the action (or in `integrations.slack.webhook_url`) is
//! still used when given. The URL never appears in an error. The message is the
//! action's `message`, with `{{stage}}`, `{{instance}}` and `{{data.FIELD}}` filled in.

use reqwest::Url;
use reqwest::header::HeaderMap;
use serde_json::{Value as Json, json};

use super::secrets::Secrets;
use super::webhook::GuardedClient;
use super::{ActionFuture, Integration};
use crate::engine::service::{ActionFailure, ActionSuccess, Delivered};
use crate::ir::ActionKind;

/// The secret used when neither the action nor the definition names a Slack URL.
pub const DEFAULT_SECRET: &str = "slack_webhook_url";

/// Delivers `slack` actions.
pub struct Slack {
    client: GuardedClient,
    secrets: Secrets,
}

impl Slack {
    /// Slack through `client`, URLs from `secrets`.
    pub fn new(client: GuardedClient, secrets: Secrets) -> Self {
        Self { client, secrets }
    }

    async fn deliver(&self, item: &Delivered) -> Result<ActionSuccess, ActionFailure> {
        let Some(ActionKind::Slack { channel, url, message }) = &item.action else {
            return Err(ActionFailure::permanent(format!("`{}` is not a slack action", item.name)));
        };
        let settings = item.integrations.as_ref();
        let url = match url.clone().or_else(|| settings.and_then(|s| s.slack_webhook_url.clone())) {
            Some(url) => url,
            None => self.secret_url(item).await?,
        };
        let shown = format!("slack action `{}`", item.name);
        let parsed = Url::parse(&url)
            .map_err(|_| ActionFailure::permanent(format!("{shown}: the URL is not valid")))?;
        let channel = channel.clone().or_else(|| settings.and_then(|s| s.slack_channel.clone()));
        let text = render(message.as_deref().unwrap_or(&item.name), item);
        let mut body = json!({ "text": text });
        if let Some(channel) = channel {
            body["channel"] = Json::String(channel);
        }
        let body = serde_json::to_vec(&body).map_err(|e| ActionFailure::permanent(e.to_string()))?;
        let status = self.client.post(&parsed, &shown, HeaderMap::new(), body).await?;
        Ok(ActionSuccess { http_status: Some(status.as_u16()) })
    }
}

impl Slack {
    /// The URL kept as the secret `slack:ACTION`, or else `slack_webhook_url`.
    async fn secret_url(&self, item: &Delivered) -> Result<String, ActionFailure> {
        let own = format!("slack:{}", item.name);
        let store_failed = |e: crate::store::StoreError| ActionFailure::retry(e.to_string());
        if let Some(secret) = self.secrets.find(&item.tenant, &own).await.map_err(store_failed)? {
            return Ok(secret.expose().trim().to_owned());
        }
        match self.secrets.get(&item.tenant, DEFAULT_SECRET).await {
            Ok(secret) => Ok(secret.expose().trim().to_owned()),
            Err(super::secrets::SecretError::Store(e)) => Err(store_failed(e)),
            Err(_) => Err(ActionFailure::permanent(format!(
                "neither secret `{own}` nor `{DEFAULT_SECRET}` is set (the Slack incoming-webhook URL)"
            ))),
        }
    }
}

/// `template` with `{{stage}}`, `{{instance}}`, `{{action}}` and `{{data.FIELD}}` filled in from
/// the item; an unknown placeholder stays as written.
pub fn render(template: &str, item: &Delivered) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let key = after[..end].trim();
        let value = match key {
            "stage" => item.stage.clone(),
            "instance" => item.instance_id.clone(),
            "action" => Some(item.name.clone()),
            _ => key.strip_prefix("data.").and_then(|field| {
                item.data.as_ref()?.get(field).map(|v| match v {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                })
            }),
        };
        match value {
            Some(value) => out.push_str(&value),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

impl Integration for Slack {
    fn execute<'a>(&'a self, item: &'a Delivered) -> ActionFuture<'a> {
        Box::pin(self.deliver(item))
    }

    fn compensate<'a>(&'a self, item: &'a Delivered) -> ActionFuture<'a> {
        Box::pin(self.deliver(item))
    }
}
