//! `[[alert.sinks]]` and `[alert.delivery]`: where notifications go and how delivery
//! retries. The daemon reads them from its `[alert]` table, beside the policy's keys
//! (`vigie_alert::AlertConfig`), and calls [`validate`] once at load.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use vigie_domain::alert::{AlertSeverity, MAX_DURATION_SECS};
use vigie_domain::Secret;

use crate::error::DeliveryError;
use crate::signing::WebhookSecret;

/// What a sink speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkKind {
    /// JSON POST signed per the Standard Webhooks spec.
    #[default]
    Webhook,
    /// Slack incoming webhook (Block Kit).
    Slack,
    /// Microsoft Teams workflow webhook (Adaptive Card).
    Teams,
    /// Alertmanager `POST /api/v2/alerts`, to every URL in `urls`.
    Alertmanager,
    /// One JSON line per notification appended to `path`, fsync'd.
    File,
    /// One JSON line per notification on standard output.
    Stdout,
}

impl SinkKind {
    /// Returns the kind as its configuration word.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Webhook => "webhook",
            SinkKind::Slack => "slack",
            SinkKind::Teams => "teams",
            SinkKind::Alertmanager => "alertmanager",
            SinkKind::File => "file",
            SinkKind::Stdout => "stdout",
        }
    }

    /// Returns how many notifications of one group this kind sends in one request (1 when
    /// it does not group: a signed webhook has one id per message, so receivers can
    /// de-duplicate it whatever the batching).
    pub fn max_group(self) -> usize {
        match self {
            // A storyline with its claims in one message; the formatters show the first
            // alerts in full and list the claims briefly.
            SinkKind::Slack | SinkKind::Teams => {
                crate::format::group::MAX_NOTIFICATIONS_PER_MESSAGE
            }
            // Local sinks write a group with one write and one fsync.
            SinkKind::Alertmanager | SinkKind::File | SinkKind::Stdout => 64,
            SinkKind::Webhook => 1,
        }
    }
}

/// `[[alert.sinks]]`: one destination and which notifications it takes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkConfig {
    /// Unique name, used in logs, metrics (`sink` label) and the outbox.
    pub name: String,
    /// `webhook`, `slack`, `teams`, `alertmanager`, `file` or `stdout`.
    pub kind: SinkKind,
    /// Endpoint (webhook, slack, teams); for alertmanager, one more base URL besides `urls`.
    /// A secret (a Slack or Teams URL *is* the credential): may come from `url_file` or
    /// `url_env`, and is never printed or logged.
    pub url: Secret,
    /// Alertmanager base URLs (`http://am:9093`); each gets every alert. Secrets too,
    /// since a URL may carry credentials.
    pub urls: Vec<Secret>,
    /// JSONL file of the `file` sink.
    pub path: String,
    /// Webhook signing secret: `whsec_<base64 key>` (Standard Webhooks) or any other
    /// string, used as the raw key bytes. Empty sends unsigned requests. May come from
    /// `secret_file` or `secret_env`.
    pub secret: Secret,
    /// User name for HTTP basic authentication (webhook and alertmanager sinks, e.g. an
    /// Alertmanager behind a reverse proxy); needs `basic_auth_password`.
    pub basic_auth_user: String,
    /// Password for HTTP basic authentication; a secret (`basic_auth_password_file`).
    pub basic_auth_password: Secret,
    /// Bearer token sent as `Authorization: Bearer …` (webhook and alertmanager sinks);
    /// a secret (`bearer_token_file`). Not together with basic authentication.
    pub bearer_token: Secret,
    /// Seconds before a request is abandoned (and retried).
    pub timeout_secs: u64,
    /// Requests in flight at once to this sink (file and stdout sinks always write one
    /// at a time, so lines keep their order and never interleave).
    pub max_concurrency: usize,
    /// Requests per minute at most (a token bucket); 0 for no cap. Excess waits its turn.
    pub rate_limit_per_minute: u32,
    /// Least alert severity sent here (`info`, `warning`, `critical`).
    pub min_severity: AlertSeverity,
    /// Labels an alert must carry, all of them, with these exact values.
    pub match_labels: BTreeMap<String, String>,
    /// Sends re-notifications of firing alerts. Default: true for alertmanager (it expires
    /// alerts that are not re-sent, and it gets them even once acked), false otherwise.
    pub renotify: Option<bool>,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            name: String::new(),
            kind: SinkKind::Webhook,
            url: Secret::default(),
            urls: Vec::new(),
            path: String::new(),
            secret: Secret::default(),
            basic_auth_user: String::new(),
            basic_auth_password: Secret::default(),
            bearer_token: Secret::default(),
            timeout_secs: 10,
            max_concurrency: 4,
            rate_limit_per_minute: 0,
            min_severity: AlertSeverity::Info,
            match_labels: BTreeMap::new(),
            renotify: None,
        }
    }
}

impl SinkConfig {
    /// Returns whether re-notifications go to this sink.
    pub fn sends_renotify(&self) -> bool {
        self.renotify.unwrap_or(self.kind == SinkKind::Alertmanager)
    }

    /// Returns the endpoints this sink posts to: one per Alertmanager, one otherwise
    /// (none for file and stdout).
    pub fn endpoints(&self) -> Vec<Secret> {
        match self.kind {
            SinkKind::Alertmanager => {
                let mut urls: Vec<Secret> = self.urls.clone();
                if !self.url.is_empty() {
                    urls.insert(0, self.url.clone());
                }
                urls
            }
            SinkKind::Webhook | SinkKind::Slack | SinkKind::Teams => vec![self.url.clone()],
            SinkKind::File | SinkKind::Stdout => Vec::new(),
        }
    }
}

/// `[alert.delivery]`: retries and the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// First retry delay in milliseconds; each retry doubles the cap, and the actual
    /// delay is drawn uniformly below it ("full jitter").
    pub initial_backoff_ms: u64,
    /// Largest retry delay in milliseconds (a `Retry-After` may ask for longer).
    pub max_backoff_ms: u64,
    /// Seconds after acceptance when an undelivered notification is dead-lettered.
    pub max_age_secs: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            initial_backoff_ms: 1000,
            max_backoff_ms: 300_000,
            max_age_secs: 86_400,
        }
    }
}

/// Longest retry delay, in milliseconds (one day).
pub const MAX_BACKOFF_MS: u64 = 86_400_000;
/// Most requests in flight to one sink.
pub const MAX_SINK_CONCURRENCY: usize = 1024;
/// Longest request timeout of a sink, in seconds.
pub const MAX_SINK_TIMEOUT_SECS: u64 = 3600;

/// Checks the sinks and delivery settings as serde cannot: unique names, URLs present,
/// limits and durations in range. Every message starts with the dotted key it is about
/// (`alert.sinks.<name>.url`, `alert.delivery.max_age_secs`) and quotes no secret.
pub fn validate(sinks: &[SinkConfig], delivery: &DeliveryConfig) -> Result<(), DeliveryError> {
    let invalid = |message: String| Err(DeliveryError::InvalidConfig(message));
    if delivery.max_age_secs > MAX_DURATION_SECS {
        return invalid(format!(
            "alert.delivery.max_age_secs must be at most {MAX_DURATION_SECS} (10 years), got {}",
            delivery.max_age_secs
        ));
    }
    let mut names = BTreeSet::new();
    for sink in sinks {
        let name = &sink.name;
        if name.is_empty() {
            return invalid("alert.sinks: every sink needs a name".into());
        }
        if !names.insert(name.as_str()) {
            return invalid(format!("alert.sinks: duplicate sink name {name:?}"));
        }
        sink.validate()?;
    }
    if delivery.initial_backoff_ms == 0 || delivery.max_backoff_ms < delivery.initial_backoff_ms {
        return invalid(
            "alert.delivery.initial_backoff_ms: need 0 < initial_backoff_ms <= max_backoff_ms"
                .into(),
        );
    }
    if delivery.max_backoff_ms > MAX_BACKOFF_MS {
        return invalid(format!(
            "alert.delivery.max_backoff_ms must be at most {MAX_BACKOFF_MS} (one day), got {}",
            delivery.max_backoff_ms
        ));
    }
    Ok(())
}

impl SinkConfig {
    /// Returns the sink's secrets (URLs, signing key, credentials), for scrubbing.
    pub fn secrets(&self) -> Vec<&Secret> {
        let mut secrets = vec![
            &self.url,
            &self.secret,
            &self.basic_auth_password,
            &self.bearer_token,
        ];
        secrets.extend(self.urls.iter());
        secrets
    }

    fn validate(&self) -> Result<(), DeliveryError> {
        let name = &self.name;
        let invalid = |message: String| Err(DeliveryError::InvalidConfig(message));
        if self.max_concurrency == 0 || self.max_concurrency > MAX_SINK_CONCURRENCY {
            return invalid(format!(
                "alert.sinks.{name}.max_concurrency must be between 1 and {MAX_SINK_CONCURRENCY}"
            ));
        }
        if self.timeout_secs == 0 || self.timeout_secs > MAX_SINK_TIMEOUT_SECS {
            return invalid(format!(
                "alert.sinks.{name}.timeout_secs must be between 1 and {MAX_SINK_TIMEOUT_SECS}"
            ));
        }
        match self.kind {
            SinkKind::File if self.path.is_empty() => {
                return invalid(format!("alert.sinks.{name}.path: a file sink needs a path"));
            }
            SinkKind::File | SinkKind::Stdout => {}
            _ => {
                if self.endpoints().is_empty() {
                    return invalid(format!("alert.sinks.{name}.url: needs url or urls"));
                }
                // The URL is not quoted: for Slack and Teams it is the credential.
                let http = |url: &Secret| {
                    let url = url.expose();
                    url.starts_with("http://") || url.starts_with("https://")
                };
                if !self.url.is_empty() && !http(&self.url) {
                    return invalid(format!(
                        "alert.sinks.{name}.url is not an http(s) URL (value not shown)"
                    ));
                }
                if self.kind == SinkKind::Alertmanager {
                    if let Some(index) = self.urls.iter().position(|url| !http(url)) {
                        return invalid(format!(
                            "alert.sinks.{name}.urls[{index}] is not an http(s) URL (value not shown)"
                        ));
                    }
                }
            }
        }
        if !self.urls.is_empty() && self.kind != SinkKind::Alertmanager {
            return invalid(format!(
                "alert.sinks.{name}.urls is for alertmanager sinks only; use url"
            ));
        }
        if !self.secret.is_empty() {
            if self.kind != SinkKind::Webhook {
                return invalid(format!(
                    "alert.sinks.{name}.secret signs webhook sinks only"
                ));
            }
            if WebhookSecret::parse(self.secret.expose()).is_err() {
                return invalid(format!(
                    "alert.sinks.{name}.secret starts with whsec_ but is not base64"
                ));
            }
        }
        let basic = !self.basic_auth_user.is_empty() || !self.basic_auth_password.is_empty();
        let bearer = !self.bearer_token.is_empty();
        if basic || bearer {
            if !matches!(self.kind, SinkKind::Webhook | SinkKind::Alertmanager) {
                return invalid(format!(
                    "alert.sinks.{name}.{}: authentication is for webhook and alertmanager sinks",
                    if bearer {
                        "bearer_token"
                    } else {
                        "basic_auth_user"
                    }
                ));
            }
            if basic && bearer {
                return invalid(format!(
                    "alert.sinks.{name}.bearer_token: set basic_auth_user/basic_auth_password or bearer_token, not both"
                ));
            }
            if basic && (self.basic_auth_user.is_empty() || self.basic_auth_password.is_empty()) {
                return invalid(format!(
                    "alert.sinks.{name}.basic_auth_password: basic authentication needs both basic_auth_user and basic_auth_password"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinks_need_endpoints_and_unique_names() {
        let delivery = DeliveryConfig::default();
        validate(&[], &delivery).unwrap();
        let mut sinks = vec![SinkConfig {
            name: "a".into(),
            kind: SinkKind::Alertmanager,
            ..SinkConfig::default()
        }];
        assert!(validate(&sinks, &delivery).is_err());
        sinks[0].urls = vec![Secret::new("http://127.0.0.1:9093")];
        validate(&sinks, &delivery).unwrap();
        sinks.push(sinks[0].clone());
        assert!(validate(&sinks, &delivery).is_err());
    }
}
