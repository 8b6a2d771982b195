//! `[alert]` configuration: rules and timings for the policy, content options, sinks and
//! delivery retries. The daemon embeds [`AlertConfig`] in its own file and calls
//! [`AlertConfig::validate`] once at load.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use vigie_domain::{Secret, Severity};

use crate::error::AlertError;
use crate::signing::WebhookSecret;
use vigie_domain::alert::AlertSeverity;

/// `[alert]`: when narratives become alerts, what alerts say and where they go.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertConfig {
    /// Base URL under which receivers reach this daemon's HTTP API; links in alerts
    /// (`/api/v1/narratives/{id}`, `/api/v1/search?q=…`) start with it.
    pub external_url: String,
    /// Link to the team's runbook for narrative alerts; empty for none.
    pub runbook_url: String,
    /// Rules: a narrative matching a rule becomes an alert of that rule (one alert per
    /// narrative and rule). Default: one rule `default` at narrative severity `medium`.
    pub rules: Vec<AlertRule>,
    /// How narrative severities map to alert severities (one mapping for all rules).
    pub tiers: SeverityTiers,
    /// Seconds a narrative must match continuously before its alert fires; 0 fires at once.
    pub for_secs: u64,
    /// Seconds a firing alert keeps firing at least, counted from when it started, so a
    /// narrative that spikes and fades within minutes still gives one stable alert.
    pub keep_firing_for_secs: u64,
    /// Seconds a firing alert's narrative must be fading or below the rule's threshold
    /// before the alert resolves (12 h by default: a story that goes quiet overnight is
    /// not over). A merged-away or retired narrative resolves at once.
    pub resolve_after_secs: u64,
    /// Seconds after a resolve during which the same alert cannot fire again (7 days by
    /// default: a narrative that comes back within a week is the same story, not news).
    pub cooldown_secs: u64,
    /// Seconds between re-notifications of a firing alert (needed by Alertmanager, which
    /// expires alerts that are not re-sent); 0 disables them.
    pub renotify_interval_secs: u64,
    /// An `updated` notification is sent when a firing alert's growth ratio has been
    /// multiplied by at least this factor since it was last notified (must be > 1).
    pub growth_change_factor: f64,
    /// Seconds of event time during which notifications are held and released together,
    /// one group per storyline (one Slack message with the storyline and its new claims,
    /// one Alertmanager request); 0 sends at once.
    pub group_wait_secs: u64,
    /// Seconds a resolved alert stays listed (and its cooldown remembered).
    pub resolved_retention_secs: u64,
    /// Shows account ids as salted HMAC-SHA256 pseudonyms (12 hex digits) rather than raw.
    pub pseudonymize_accounts: bool,
    /// The salt (HMAC key) of account pseudonyms; keep it secret and stable so the same
    /// account keeps the same pseudonym across alerts. Unset, the daemon generates one
    /// (32 random bytes) into `DATA_DIR/account-salt` (mode 0600) and reuses it. A secret:
    /// may come from `account_salt_file` or `account_salt_env`, and is never printed.
    pub account_salt: Secret,
    /// Top terms cited in an alert.
    pub max_terms: usize,
    /// Top accounts cited in an alert.
    pub max_accounts: usize,
    /// Representative posts cited in an alert (3 to 5 reads best).
    pub max_representative_posts: usize,
    /// Where notifications go; several at once, each with its own routing.
    pub sinks: Vec<SinkConfig>,
    /// Retries and limits of delivery.
    pub delivery: DeliveryConfig,
    /// Limits of silences (duration, count, matcher sizes).
    pub silences: crate::silence::SilenceConfig,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            external_url: "http://127.0.0.1:9464".into(),
            runbook_url: String::new(),
            rules: vec![AlertRule::default()],
            tiers: SeverityTiers::default(),
            for_secs: 0,
            keep_firing_for_secs: 600,
            // Measured on pheme-mixed (`vigie replay` with a file sink): with 30 min / 1 h,
            // stories quiet overnight resolved and re-fired every morning (585 firings for
            // 198 alerts); with 12 h / 7 days each PHEME story fires once and resolves once
            // (23 firings for 22 alerts).
            resolve_after_secs: 12 * 3600,
            cooldown_secs: 7 * 24 * 3600,
            renotify_interval_secs: 900,
            growth_change_factor: 2.0,
            group_wait_secs: 30,
            resolved_retention_secs: 86_400,
            pseudonymize_accounts: true,
            account_salt: Secret::default(),
            max_terms: 5,
            max_accounts: 5,
            max_representative_posts: 5,
            sinks: Vec::new(),
            delivery: DeliveryConfig::default(),
            silences: crate::silence::SilenceConfig::default(),
        }
    }
}

/// `[[alert.rules]]`: a threshold a narrative must reach to become an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertRule {
    /// The rule's name, part of the alert fingerprint and of the `rule` label; unique.
    pub name: String,
    /// Least narrative severity (`low`, `medium`, `high`, `critical`).
    pub min_severity: Severity,
    /// Least member posts.
    pub min_posts: u64,
    /// Least distinct authors.
    pub min_distinct_authors: u32,
    /// Least growth against the narrative's baseline (`posts_in_window / baseline`).
    pub min_growth_ratio: f64,
    /// Least coordination score (0 to 1).
    pub min_coordination_score: f64,
    /// Only narratives with posts in one of these languages (ISO 639-1); empty for all.
    pub languages: Vec<String>,
    /// Extra labels put on this rule's alerts (`team = "fr-desk"`), for routing.
    pub labels: BTreeMap<String, String>,
}

impl Default for AlertRule {
    fn default() -> Self {
        AlertRule {
            name: "default".into(),
            min_severity: Severity::Medium,
            min_posts: 0,
            min_distinct_authors: 0,
            min_growth_ratio: 0.0,
            min_coordination_score: 0.0,
            languages: Vec::new(),
            labels: BTreeMap::new(),
        }
    }
}

/// `[alert.tiers]`: the least narrative severity for each alert severity. A narrative
/// below `info` that still matches a rule alerts as `info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeverityTiers {
    /// Least narrative severity for a `critical` alert.
    pub critical: Severity,
    /// Least narrative severity for a `warning` alert.
    pub warning: Severity,
    /// Least narrative severity for an `info` alert.
    pub info: Severity,
}

impl Default for SeverityTiers {
    fn default() -> Self {
        SeverityTiers {
            critical: Severity::Critical,
            warning: Severity::High,
            info: Severity::Medium,
        }
    }
}

impl SeverityTiers {
    /// Returns the alert severity of a narrative severity.
    pub fn tier(&self, severity: Severity) -> AlertSeverity {
        if severity >= self.critical {
            AlertSeverity::Critical
        } else if severity >= self.warning {
            AlertSeverity::Warning
        } else {
            AlertSeverity::Info
        }
    }
}

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

/// Longest duration any `*_secs` key of `[alert]` may hold: 10 years. Longer values are
/// typos, and past about 292 billion years they would overflow time arithmetic.
pub const MAX_DURATION_SECS: u64 = 10 * 365 * 86_400;
/// Longest retry delay, in milliseconds (one day).
pub const MAX_BACKOFF_MS: u64 = 86_400_000;
/// Most requests in flight to one sink.
pub const MAX_SINK_CONCURRENCY: usize = 1024;
/// Longest request timeout of a sink, in seconds.
pub const MAX_SINK_TIMEOUT_SECS: u64 = 3600;
/// Most terms, accounts or posts cited in one alert.
pub const MAX_CITED: usize = 100;

impl AlertConfig {
    /// Returns every secret of the section (salt, sink URLs, signing keys, credentials),
    /// for scrubbing text that may quote them.
    pub fn secrets(&self) -> Vec<&Secret> {
        let mut secrets = vec![&self.account_salt];
        for sink in &self.sinks {
            secrets.extend(sink.secrets());
        }
        secrets
    }

    /// Checks rules that serde cannot: unique names, URLs present, factors and durations in
    /// range. Every message starts with the dotted key it is about and quotes no secret.
    pub fn validate(&self) -> Result<(), AlertError> {
        self.silences.validate()?;
        let invalid = |message: String| Err(AlertError::InvalidConfig(message));
        for (key, value) in [
            ("for_secs", self.for_secs),
            ("keep_firing_for_secs", self.keep_firing_for_secs),
            ("resolve_after_secs", self.resolve_after_secs),
            ("cooldown_secs", self.cooldown_secs),
            ("renotify_interval_secs", self.renotify_interval_secs),
            ("group_wait_secs", self.group_wait_secs),
            ("resolved_retention_secs", self.resolved_retention_secs),
            ("delivery.max_age_secs", self.delivery.max_age_secs),
        ] {
            if value > MAX_DURATION_SECS {
                return invalid(format!(
                    "alert.{key} must be at most {MAX_DURATION_SECS} (10 years), got {value}"
                ));
            }
        }
        for (key, value) in [
            ("max_terms", self.max_terms),
            ("max_accounts", self.max_accounts),
            ("max_representative_posts", self.max_representative_posts),
        ] {
            if value > MAX_CITED {
                return invalid(format!(
                    "alert.{key} must be at most {MAX_CITED}, got {value}"
                ));
            }
        }
        // Written so that NaN is refused too.
        if !(self.growth_change_factor.is_finite() && self.growth_change_factor > 1.0) {
            return invalid(format!(
                "alert.growth_change_factor must be a number > 1, got {}",
                self.growth_change_factor
            ));
        }
        if !(self.external_url.starts_with("http://") || self.external_url.starts_with("https://"))
        {
            return invalid(format!(
                "alert.external_url must be an http(s) URL, got {:?}",
                self.external_url
            ));
        }
        if !(self.tiers.info <= self.tiers.warning && self.tiers.warning <= self.tiers.critical) {
            return invalid("alert.tiers must satisfy info <= warning <= critical".into());
        }
        let mut names = BTreeSet::new();
        for rule in &self.rules {
            if rule.name.is_empty() {
                return invalid("alert.rules: every rule needs a name".into());
            }
            if !names.insert(rule.name.as_str()) {
                return invalid(format!("alert.rules: duplicate rule name {:?}", rule.name));
            }
            for (key, value) in [
                ("min_growth_ratio", rule.min_growth_ratio),
                ("min_coordination_score", rule.min_coordination_score),
            ] {
                if !value.is_finite() {
                    return invalid(format!(
                        "alert.rules.{}.{key} must be a finite number",
                        rule.name
                    ));
                }
            }
        }
        let mut names = BTreeSet::new();
        for sink in &self.sinks {
            let name = &sink.name;
            if name.is_empty() {
                return invalid("alert.sinks: every sink needs a name".into());
            }
            if !names.insert(name.as_str()) {
                return invalid(format!("alert.sinks: duplicate sink name {name:?}"));
            }
            sink.validate()?;
        }
        let delivery = &self.delivery;
        if delivery.initial_backoff_ms == 0 || delivery.max_backoff_ms < delivery.initial_backoff_ms
        {
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

    fn validate(&self) -> Result<(), AlertError> {
        let name = &self.name;
        let invalid = |message: String| Err(AlertError::InvalidConfig(message));
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
    fn defaults_validate_and_unknown_keys_are_refused() {
        AlertConfig::default().validate().unwrap();
        let err = serde_json::from_str::<AlertConfig>(r#"{"for_sec": 3}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn tiers_map_narrative_severities() {
        let tiers = SeverityTiers::default();
        assert_eq!(tiers.tier(Severity::Critical), AlertSeverity::Critical);
        assert_eq!(tiers.tier(Severity::High), AlertSeverity::Warning);
        assert_eq!(tiers.tier(Severity::Medium), AlertSeverity::Info);
        assert_eq!(tiers.tier(Severity::Low), AlertSeverity::Info);
    }

    #[test]
    fn sinks_need_endpoints_and_unique_names() {
        let mut config = AlertConfig {
            sinks: vec![SinkConfig {
                name: "a".into(),
                kind: SinkKind::Alertmanager,
                ..SinkConfig::default()
            }],
            ..AlertConfig::default()
        };
        assert!(config.validate().is_err());
        config.sinks[0].urls = vec![Secret::new("http://127.0.0.1:9093")];
        config.validate().unwrap();
        config.sinks.push(config.sinks[0].clone());
        assert!(config.validate().is_err());
    }
}
