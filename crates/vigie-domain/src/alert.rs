//! Alerts as they cross from the alert policy to delivery: an [`Alert`] (what one alert
//! says, as every sink renders it) inside a [`Notification`] (one state change of it, with
//! a stable id). The policy (`vigie-alert`) builds them; delivery (`vigie-alert-delivery`)
//! routes, formats and sends them, and keeps them in its outbox journal, so their serde
//! form is a storage format: changing a field changes what old journals and snapshots
//! parse to, and ids must stay the same.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Narrative, NarrativeId, NarrativeStatus};

/// Longest duration any `*_secs` key of `[alert]` may hold: 10 years. Longer values are
/// typos, and past about 292 billion years they would overflow time arithmetic.
pub const MAX_DURATION_SECS: u64 = 10 * 365 * 86_400;

/// The `alertname` label of every Vigie alert.
pub const ALERT_NAME: &str = "VigieNarrative";

/// How urgent an alert is, for routing and paging; ordered from `Info` to `Critical`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum AlertSeverity {
    /// Worth a look during working hours.
    #[default]
    Info,
    /// Needs an analyst soon.
    Warning,
    /// Needs the on-call person now.
    Critical,
}

impl AlertSeverity {
    /// Returns the severity as a lowercase word, for labels and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertSeverity::Info => "info",
            AlertSeverity::Warning => "warning",
            AlertSeverity::Critical => "critical",
        }
    }
}

impl fmt::Display for AlertSeverity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the alert is going on or over, as receivers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// The narrative is spreading above the rule's threshold.
    Firing,
    /// It faded, fell below the threshold, was merged or retired.
    Resolved,
}

impl AlertStatus {
    /// Returns the status as a lowercase word.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// Which level of the narrative hierarchy an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NarrativeLevel {
    /// A storyline: an event, the top level.
    #[default]
    Storyline,
    /// A claim inside a storyline.
    Claim,
}

impl NarrativeLevel {
    /// Returns the level as a lowercase word, for labels and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            NarrativeLevel::Storyline => "storyline",
            NarrativeLevel::Claim => "claim",
        }
    }

    /// Returns the level of a narrative.
    pub fn of(narrative: &Narrative) -> NarrativeLevel {
        if narrative.parent.is_some() {
            NarrativeLevel::Claim
        } else {
            NarrativeLevel::Storyline
        }
    }
}

/// A post cited by an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostRef {
    /// The post's id.
    pub id: String,
    /// Its public URL, when the source gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// When it was posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// The start of its text (the lookup decides how much; formatters shorten further).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Its language, when the narrative's representatives give it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// Member posts with near-identical text it stands for, itself included ("×14").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copies: Option<u32>,
}

impl PostRef {
    /// Returns a reference holding only the id.
    pub fn id_only(id: &str) -> PostRef {
        PostRef {
            id: id.to_owned(),
            url: None,
            created_at: None,
            text: None,
            lang: None,
            copies: None,
        }
    }

    /// Returns `en ×14` (language and copies, what is known of them), empty when neither.
    pub fn provenance(&self) -> String {
        let mut parts = Vec::new();
        if let Some(lang) = self.lang.as_deref().filter(|l| !l.is_empty()) {
            parts.push(lang.to_owned());
        }
        if let Some(copies) = self.copies.filter(|&c| c > 1) {
            parts.push(format!("×{copies}"));
        }
        parts.join(" ")
    }
}

/// A term that made the narrative significant, with its numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermEvidence {
    /// The term (`#tag` for a hashtag).
    pub term: String,
    /// Its significance z.
    pub z: f64,
    /// Posts carrying it in the window when `z` was reached.
    pub posts_in_window: f64,
    /// Its usual posts per window.
    pub baseline_mean: f64,
}

/// Why the alert fired: the numbers behind the rule's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FiringReasons {
    /// Top terms, most carried first.
    pub terms: Vec<TermEvidence>,
    /// Member posts in the sliding window.
    pub posts_in_window: f64,
    /// What its terms usually get per window.
    pub baseline_posts_per_window: f64,
    /// `posts_in_window` / baseline.
    pub growth_ratio: f64,
    /// Significance of the growth.
    pub growth_z: f64,
    /// The detector's reasons for the narrative's severity.
    pub severity_reasons: Vec<String>,
    /// Watchlist entries matched, with post counts.
    pub watch_matches: Vec<(String, u32)>,
}

/// Coordination evidence in a few numbers and one sentence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoordinationSummary {
    /// From 0 (organic) to 1 (clearly coordinated).
    pub score: f64,
    /// Share of posts in near-duplicate groups spanning several accounts.
    pub near_duplicate_share: f64,
    /// Share of posts carrying a link pushed by several accounts.
    pub shared_link_share: f64,
    /// Share of posts by accounts acting together repeatedly.
    pub synchronized_account_share: f64,
    /// Near-duplicate groups found.
    pub near_duplicate_groups: usize,
    /// The most shared links with their distinct accounts.
    pub shared_links: Vec<(String, u32)>,
    /// One sentence for humans.
    pub text: String,
}

/// An account cited by an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountRef {
    /// The pseudonym (12 hex digits) or, when pseudonymization is off, the raw id.
    pub account: String,
    /// Its posts in the narrative.
    pub posts: u32,
}

/// Links to act on the alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertLinks {
    /// The team's runbook, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook_url: Option<String>,
    /// The narrative in Vigie's HTTP API.
    pub narrative_url: String,
    /// A search reproducing the narrative's posts.
    pub search_url: String,
}

/// The content of one alert, as every sink renders it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable identity of the alert: narrative id + rule.
    pub fingerprint: String,
    /// Short title (`Narrative spreading: X`).
    pub title: String,
    /// Alert severity.
    pub severity: AlertSeverity,
    /// Firing or resolved.
    pub status: AlertStatus,
    /// One line: growth, posts, authors, languages.
    pub summary: String,
    /// The rule that matched.
    pub rule: String,
    /// The narrative's id.
    pub narrative_id: NarrativeId,
    /// Storyline or claim.
    #[serde(default)]
    pub level: NarrativeLevel,
    /// For a claim: the storyline it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<NarrativeId>,
    /// For a claim: its storyline's headline (or label), when the policy knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_title: Option<String>,
    /// The narrative's label.
    pub narrative_label: String,
    /// The narrative's headline (the text of its most central post); empty when unknown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub headline: String,
    /// The narrative's status.
    pub narrative_status: NarrativeStatus,
    /// Member posts so far.
    pub posts_total: u64,
    /// Distinct authors.
    pub distinct_authors: u32,
    /// Languages with post counts, most frequent first.
    pub languages: Vec<(String, u32)>,
    /// Why it fired.
    pub reasons: FiringReasons,
    /// Coordination evidence.
    pub coordination: CoordinationSummary,
    /// The most active accounts (pseudonymized unless configured otherwise).
    pub top_accounts: Vec<AccountRef>,
    /// Representative posts, resolved through the post lookup when there is one.
    pub representative_posts: Vec<PostRef>,
    /// Why it resolved, when it did (`faded`, `merged into n12`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve_reason: Option<String>,
    /// Links to act on it.
    pub links: AlertLinks,
    /// Event time the alert started firing.
    pub starts_at: DateTime<Utc>,
    /// Event time it resolved; none while firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
    /// Labels for routing and silences: `alertname`, `severity`, `narrative_id`, `rule`,
    /// `status`, `level`, `storyline` (the storyline's id, a claim's parent included),
    /// `parent` (claims only) and the rule's own labels.
    pub labels: BTreeMap<String, String>,
}

impl Alert {
    /// Returns the id of the storyline this alert belongs to: its own for a storyline, its
    /// parent's for a claim.
    pub fn storyline(&self) -> NarrativeId {
        self.parent.unwrap_or(self.narrative_id)
    }
}

/// Returns at most `max_chars` characters of `text`, ending with `…` when cut; never
/// splits a character.
pub fn truncate_chars(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let keep = max_chars.saturating_sub(1);
    let mut out: String = text.chars().take(keep).collect();
    out.push('…');
    out
}

/// What a notification tells about its alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// The alert started firing (or a silence on a firing alert ended).
    Firing,
    /// A firing alert changed severity or grew materially.
    Updated,
    /// A firing alert, re-sent on the renotify cadence.
    Renotify,
    /// The alert resolved.
    Resolved,
}

impl NotificationKind {
    /// Returns the kind as a lowercase word.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Firing => "firing",
            NotificationKind::Updated => "updated",
            NotificationKind::Renotify => "renotify",
            NotificationKind::Resolved => "resolved",
        }
    }
}

/// One message about one alert, for every sink that takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Stable id of this state change (`vigie_` + 24 hex digits): the same after a restart
    /// and on every retry, so receivers de-duplicate on it (`webhook-id`).
    pub id: String,
    /// What happened.
    pub kind: NotificationKind,
    /// Position among the notifications of this alert episode, from 0.
    pub sequence: u64,
    /// Event time of the change.
    pub at: DateTime<Utc>,
    /// Notifications released together about one storyline (its own and its claims')
    /// share this key (`g<release time>-<storyline>`); sinks that can send them as one
    /// message do.
    pub group_key: String,
    /// The alert was acknowledged (only on re-notifications).
    pub acked: bool,
    /// On an update that changed the severity, the severity before (Alertmanager needs
    /// it to resolve the alert under its old labels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_severity: Option<AlertSeverity>,
    /// A claim's resolve sent because its storyline resolved (in the same group): chat
    /// sinks show it inside the storyline's message, not on its own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub with_parent: bool,
    /// The alert's content at that time.
    pub alert: Alert,
}

impl Notification {
    /// Returns the alert's fingerprint.
    pub fn fingerprint(&self) -> &str {
        &self.alert.fingerprint
    }

    /// Returns firing or resolved.
    pub fn status(&self) -> AlertStatus {
        self.alert.status
    }

    /// Returns storyline or claim.
    pub fn level(&self) -> NarrativeLevel {
        self.alert.level
    }
}

/// The latest notification of an alert, for the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationRecord {
    /// Its id.
    pub id: String,
    /// Its kind.
    pub kind: NotificationKind,
    /// Its event time.
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_characters_whole() {
        assert_eq!(truncate_chars("héllo", 10), "héllo");
        assert_eq!(truncate_chars("ééééé", 3), "éé…");
        assert_eq!(truncate_chars("😀😀😀", 2).chars().count(), 2);
    }
}
