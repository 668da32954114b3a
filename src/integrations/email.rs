//! E-mail through SendGrid's v3 HTTP API (the seed's `integrations.email.provider: "sendgrid"`),
//! through the same guarded client as webhooks, with a configurable base URL.
//!
//! The action's `template` is a key of `integrations.email.templates`, whose value is the
//! SendGrid dynamic template id; the template is rendered by SendGrid from
//! `dynamic_template_data` (the instance's data, its stage and id). Recipients are the action's
//! `to`: addresses, or `data.FIELD` for an address in the instance's data. The API key is the
//! secret `sendgrid_api_key`, sent as a bearer token and never shown. The item id goes along as
//! a custom argument, so a receiver can deduplicate a repeated delivery.
//!
//! SMTP (lettre) and local templates are not built yet.

use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::{Value as Json, json};

use super::secrets::{SecretError, Secrets};
use super::webhook::GuardedClient;
use super::{ActionFuture, Integration};
use crate::engine::service::{ActionFailure, ActionSuccess, Delivered};
use crate::ir::ActionKind;

/// SendGrid's API.
pub const SENDGRID: &str = "https://api.sendgrid.com";

/// The secret holding the SendGrid API key.
pub const API_KEY_SECRET: &str = "sendgrid_api_key";

/// Delivers `email` actions through SendGrid.
pub struct SendGrid {
    client: GuardedClient,
    secrets: Secrets,
    base: Url,
}

impl SendGrid {
    /// SendGrid at `base` (normally [`SENDGRID`]; a fake one in tests).
    pub fn new(client: GuardedClient, secrets: Secrets, base: Url) -> Self {
        Self { client, secrets, base }
    }

    async fn deliver(&self, item: &Delivered) -> Result<ActionSuccess, ActionFailure> {
        let Some(ActionKind::Email { template, to }) = &item.action else {
            return Err(ActionFailure::permanent(format!("`{}` is not an email action", item.name)));
        };
        let settings = item.integrations.as_ref();
        if let Some(provider) = settings.and_then(|s| s.email_provider.as_deref())
            && provider != "sendgrid"
        {
            return Err(ActionFailure::permanent(format!(
                "e-mail provider `{provider}` is not supported yet"
            )));
        }
        let from = settings
            .and_then(|s| s.email_from.clone())
            .ok_or_else(|| ActionFailure::permanent("`integrations.email.from` is not set"))?;
        let template_id = template.as_ref().map(|key| {
            settings
                .and_then(|s| s.email_templates.iter().find(|(k, _)| k == key))
                .map_or_else(|| key.clone(), |(_, id)| id.clone())
        });
        let recipients: Vec<Json> = to
            .iter()
            .filter_map(|entry| match entry.strip_prefix("data.") {
                Some(field) => item.data.as_ref()?.get(field)?.as_str().map(str::to_owned),
                None => Some(entry.clone()),
            })
            .filter(|address| address.contains('@'))
            .map(|email| json!({ "email": email }))
            .collect();
        if recipients.is_empty() {
            return Err(ActionFailure::permanent(format!("email action `{}` has no recipient", item.name)));
        }
        let key = self.secrets.get(&item.tenant, API_KEY_SECRET).await.map_err(|e| match e {
            SecretError::Store(store) => ActionFailure::retry(store.to_string()),
            missing => ActionFailure::permanent(missing.to_string()),
        })?;
        let mut body = json!({
            "personalizations": [{
                "to": recipients,
                "dynamic_template_data": {
                    "data": item.data, "stage": item.stage, "instance": item.instance_id, "action": item.name,
                },
                "custom_args": { "outbox_id": item.id },
            }],
            "from": { "email": from },
        });
        match template_id {
            Some(id) => body["template_id"] = Json::String(id),
            None => {
                let text = format!("{} ({})", item.name, item.stage.as_deref().unwrap_or(""));
                body["subject"] = Json::String(item.name.clone());
                body["content"] = json!([{ "type": "text/plain", "value": text }]);
            }
        }
        let url = self
            .base
            .join("v3/mail/send")
            .map_err(|e| ActionFailure::permanent(format!("bad SendGrid base URL: {e}")))?;
        let mut headers = HeaderMap::new();
        let bearer = HeaderValue::from_str(&format!("Bearer {}", key.expose().trim())).map_err(|_| {
            ActionFailure::permanent(format!("secret `{API_KEY_SECRET}` is not a valid header value"))
        })?;
        headers.insert(AUTHORIZATION, bearer);
        let body = serde_json::to_vec(&body).map_err(|e| ActionFailure::permanent(e.to_string()))?;
        let status = self.client.post(&url, "SendGrid", headers, body).await?;
        Ok(ActionSuccess { http_status: Some(status.as_u16()) })
    }
}

impl Integration for SendGrid {
    fn execute<'a>(&'a self, item: &'a Delivered) -> ActionFuture<'a> {
        Box::pin(self.deliver(item))
    }

    fn compensate<'a>(&'a self, item: &'a Delivered) -> ActionFuture<'a> {
        Box::pin(self.deliver(item))
    }
}
