//! `[alert]` configuration of the policy: rules and timings, and what alerts say. The
//! daemon reads it from its `[alert]` table, beside the sinks and delivery keys of
//! `vigie-alert-delivery` (`[[alert.sinks]]`, `[alert.delivery]`), and calls
//! [`AlertConfig::validate`] once at load.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use vigie_domain::{Secret, Severity};

use crate::error::AlertError;
pub use crate::tiers::SeverityTiers;

/// `[alert]`, the policy's keys: when narratives become alerts and what alerts say.
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

pub use vigie_domain::alert::MAX_DURATION_SECS;
/// Most terms, accounts or posts cited in one alert.
pub const MAX_CITED: usize = 100;

impl AlertConfig {
    /// Returns the policy's secrets (the account salt), for scrubbing text that may quote
    /// them.
    pub fn secrets(&self) -> Vec<&Secret> {
        vec![&self.account_salt]
    }

    /// Checks rules that serde cannot: unique rule names, factors and durations in range.
    /// Every message starts with the dotted key it is about and quotes no secret.
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
}
