//! `integrations`: email, webhooks and Slack, and the URLs they (and actions) name.

use crate::check::locate::ptr;
use crate::check::lower::Cx;
use crate::diagnostic::{Code, Diagnostic};
use crate::ir;
use crate::syntax::model::DefinitionFile;

impl Cx<'_, '_> {
    pub(super) fn integration_urls(&mut self) {
        let Some(integrations) = &self.file.integrations else { return };
        for (event, url) in &integrations.webhook {
            self.check_url(url, &ptr!["integrations", "webhook", event]);
        }
        if let Some(url) = integrations.slack.as_ref().and_then(|s| s.webhook_url.as_ref()) {
            self.check_url(url, "/integrations/slack/webhook_url");
        }
    }

    pub(super) fn check_url(&mut self, url: &str, pointer: &str) {
        let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
        let has_host = url
            .split_once("://")
            .map(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'))
            .unwrap_or(false);
        if !scheme_ok || !has_host {
            self.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    self.locate.value(pointer),
                    format!("`{url}` is not an http(s) URL"),
                )
                .with_label("expected an absolute http:// or https:// URL"),
            );
        }
    }
}

pub(super) fn integrations(file: &DefinitionFile) -> ir::Integrations {
    let Some(spec) = &file.integrations else { return ir::Integrations::default() };
    let email = spec.email.clone().unwrap_or_default();
    let slack = spec.slack.clone().unwrap_or_default();
    ir::Integrations {
        email_provider: email.provider,
        email_from: email.from,
        email_templates: email.templates.into_iter().collect(),
        webhooks: spec.webhook.clone().into_iter().collect(),
        slack_channel: slack.channel,
        slack_webhook_url: slack.webhook_url,
    }
}
