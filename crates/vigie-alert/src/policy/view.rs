//! What the HTTP API lists of the policy's alerts: [`AlertView`]s, built from its
//! bookkeeping on demand.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vigie_domain::alert::{AlertSeverity, AlertStatus, NarrativeLevel, NotificationRecord};
use vigie_domain::{NarrativeId, NarrativeStatus};

use super::AlertPolicy;
use crate::content::alert_labels;

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Matching its rule, waiting for `for_secs` or the end of a cooldown.
    Pending,
    /// Firing.
    Firing,
    /// Resolved recently (kept `resolved_retention_secs`).
    Resolved,
}

impl AlertState {
    /// Returns the state as a lowercase word.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// An alert as the HTTP API lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertView {
    /// Stable identity (narrative id + rule); what `ack` takes.
    pub fingerprint: String,
    /// The narrative.
    pub narrative_id: NarrativeId,
    /// Storyline or claim.
    #[serde(default)]
    pub level: NarrativeLevel,
    /// For a claim: its storyline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<NarrativeId>,
    /// The narrative's label.
    pub narrative_label: String,
    /// The narrative's status.
    pub narrative_status: NarrativeStatus,
    /// The rule.
    pub rule: String,
    /// Pending, firing or resolved.
    pub state: AlertState,
    /// Current alert severity.
    pub severity: AlertSeverity,
    /// Acknowledged: no re-notification until the severity changes.
    pub acked: bool,
    /// A silence mutes it now.
    pub silenced: bool,
    /// The silence muting it now, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silenced_by: Option<String>,
    /// Since when it has matched its rule (while pending or firing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_since: Option<DateTime<Utc>>,
    /// When it started firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<DateTime<Utc>>,
    /// When it resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
    /// Its latest notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_notification: Option<NotificationRecord>,
    /// Its labels (status as of now).
    pub labels: BTreeMap<String, String>,
}

impl AlertPolicy {
    /// Returns every pending, firing and recently resolved alert, firing first, then by
    /// severity and start.
    pub fn alerts(&self) -> Vec<AlertView> {
        let now = self.silence_time(self.clock.unwrap_or_default());
        let mut views: Vec<AlertView> = self
            .entries
            .values()
            .filter_map(|entry| {
                let state = entry.state()?;
                let rule = self.rule(&entry.rule);
                let severity = self.config.tiers.tier(entry.narrative.severity);
                let status = if state == AlertState::Resolved {
                    AlertStatus::Resolved
                } else {
                    AlertStatus::Firing
                };
                let labels = match rule {
                    Some(rule) => alert_labels(
                        rule,
                        entry.narrative.id,
                        entry.narrative.parent,
                        severity,
                        status,
                    ),
                    None => BTreeMap::new(),
                };
                let silenced_by = self.silences.matching(&labels, now).map(str::to_owned);
                Some(AlertView {
                    fingerprint: entry.fingerprint.clone(),
                    narrative_id: entry.narrative.id,
                    level: NarrativeLevel::of(&entry.narrative),
                    parent: entry.narrative.parent,
                    narrative_label: entry.narrative.label.clone(),
                    narrative_status: entry.narrative.status,
                    rule: entry.rule.clone(),
                    state,
                    severity,
                    acked: entry.acked,
                    silenced: silenced_by.is_some(),
                    silenced_by,
                    active_since: entry.active.then_some(entry.active_since).flatten(),
                    starts_at: entry.starts_at,
                    ends_at: (!entry.firing).then_some(entry.ends_at).flatten(),
                    last_notification: entry.last_notification.clone(),
                    labels,
                })
            })
            .collect();
        views.sort_by(|a, b| {
            (a.state != AlertState::Firing)
                .cmp(&(b.state != AlertState::Firing))
                .then(b.severity.cmp(&a.severity))
                .then(a.starts_at.cmp(&b.starts_at))
                .then(a.fingerprint.cmp(&b.fingerprint))
        });
        views
    }
}
