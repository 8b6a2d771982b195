//! The alert policy: turns narrative events into notifications — when an alert fires,
//! changes, is re-sent and resolves.
//!
//! One alert exists per narrative and rule; its fingerprint hashes both, so it is stable
//! across restarts. Event time drives everything: [`AlertPolicy::on_event`] takes the time
//! of each narrative event and [`AlertPolicy::on_tick`] a time with no event, and a time
//! earlier than one already seen is ignored. The same events always give the same
//! notifications, at the same times and with the same ids, which makes
//! [`backtest`] exact and lets receivers de-duplicate after a restart.
//!
//! ```text
//!             matches for for_secs            severity tier or growth ×factor
//!  (none) ───────────────────────────► FIRING ───────────────────────────────► updated
//!    ▲        (and cooldown over)        │  └── every renotify_interval_secs ──► renotify
//!    │                                   │ fading / below threshold for resolve_after_secs
//!    │ cooldown_secs                     │ (not before keep_firing_for_secs), retired, merged
//!    └────────────────────────────── RESOLVED
//! ```
//!
//! Notifications within `group_wait_secs` of the first of a group are held and released
//! together, with one group key per storyline: a storyline and its claims released
//! together share a key, so chat sinks send them as one message.
//!
//! # Storylines and claims
//!
//! A storyline (a narrative without parent) alerts on its own. A claim inside it alerts as
//! its *child*: it fires only once its storyline's alert is firing and announced, in the
//! same step (a claim that matches earlier waits, pending; one whose storyline never
//! alerts never sends anything: the storyline is the page, its claims what it is made
//! of). When the storyline resolves, its firing claims resolve with it, marked
//! [`Notification::with_parent`], and carry no cooldown of their own: they come back with
//! the storyline. See [`hierarchy`] for the details.
//!
//! Silences hold back notifications of matching alerts (a resolve still goes out when the
//! firing did); they are judged by the wall clock, which the caller passes in with
//! [`AlertPolicy::set_wall_clock`] (the policy reads no clock), so a silence "for the next
//! hour" holds during a fast replay of old posts too. An ack stops re-notifications until
//! the alert's severity changes. Delivery is left to `vigie-alert-delivery`.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use vigie_domain::alert::{
    AlertSeverity, AlertStatus, NarrativeLevel, Notification, NotificationKind, NotificationRecord,
};
use vigie_domain::{Narrative, NarrativeEvent, NarrativeEventKind, NarrativeId, NarrativeStatus};

use crate::config::{AlertConfig, AlertRule};
use crate::content::{alert_labels, build_alert, narrative_title, AlertFrame, PostLookup};
use crate::error::AlertError;
use crate::fingerprint::sha256_hex;
use crate::silence::{SilenceRequest, Silences};

pub mod hierarchy;
mod step;

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

/// One alert's bookkeeping; see the module docs for the life it follows.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AlertEntry {
    fingerprint: String,
    rule: String,
    narrative: Narrative,
    /// The narrative matches the rule and is not fading, as of its latest event.
    active: bool,
    active_since: Option<DateTime<Utc>>,
    inactive_since: Option<DateTime<Utc>>,
    /// When the narrative was retired or merged away; it will send no more events.
    retired: Option<DateTime<Utc>>,
    merged_into: Option<NarrativeId>,
    firing: bool,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    notified_severity: AlertSeverity,
    notified_growth: f64,
    /// When the alert was last notified, or would have been had it not been silenced.
    last_sent_at: Option<DateTime<Utc>>,
    sequence: u64,
    acked: bool,
    /// The current firing was announced (not silenced), so its resolve must be too.
    firing_notified: bool,
    last_notification: Option<NotificationRecord>,
    /// A claim resolved with its storyline: it may fire again with the storyline, without
    /// waiting out a cooldown of its own.
    #[serde(default)]
    waive_cooldown: bool,
    /// How many earlier firings of this alert started in the same second as the current
    /// one (a claim carried through two storyline merges in one second fires three times):
    /// it tells their notification ids apart. 0 for nearly every firing, which keeps the
    /// ids of older versions (and of snapshots written by them).
    #[serde(default)]
    same_start_firings: u32,
}

impl AlertEntry {
    fn state(&self) -> Option<AlertState> {
        if self.firing {
            Some(AlertState::Firing)
        } else if self.active && self.retired.is_none() {
            Some(AlertState::Pending)
        } else if self.ends_at.is_some() {
            Some(AlertState::Resolved)
        } else {
            None
        }
    }
}

/// The policy's state, saved by the daemon beside the detector's and given back to
/// [`AlertPolicy::restore`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PolicySnapshot {
    clock: Option<DateTime<Utc>>,
    entries: Vec<AlertEntry>,
    held: Vec<Notification>,
    group_opened_at: Option<DateTime<Utc>>,
    silences: Silences,
}

/// Turns narrative events into notifications; see the module docs.
pub struct AlertPolicy {
    config: AlertConfig,
    clock: Option<DateTime<Utc>>,
    entries: BTreeMap<String, AlertEntry>,
    held: Vec<Notification>,
    group_opened_at: Option<DateTime<Utc>>,
    silences: Silences,
    /// The wall clock silences are judged by; `None` (backtests) judges them in event time.
    wall_clock: Option<DateTime<Utc>>,
    lookup: Option<PostLookup>,
}

impl std::fmt::Debug for AlertPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertPolicy")
            .field("clock", &self.clock)
            .field("alerts", &self.entries.len())
            .field("held", &self.held.len())
            .finish_non_exhaustive()
    }
}

/// Returns the fingerprint of the alert of `narrative` under `rule`: 16 hex digits.
pub fn fingerprint(narrative: NarrativeId, rule: &str) -> String {
    sha256_hex(&[&narrative.to_string(), rule], 16)
}

fn secs(value: u64) -> Duration {
    Duration::seconds(i64::try_from(value).unwrap_or(i64::MAX / 1000))
}

impl AlertPolicy {
    /// Builds a policy with no alert. The config should have passed
    /// [`AlertConfig::validate`].
    pub fn new(config: AlertConfig) -> AlertPolicy {
        AlertPolicy {
            config,
            clock: None,
            entries: BTreeMap::new(),
            held: Vec::new(),
            group_opened_at: None,
            silences: Silences::default(),
            wall_clock: None,
            lookup: None,
        }
    }

    /// Rebuilds a policy from a snapshot. Alerts of rules no longer configured resolve
    /// as if their narrative had fallen below the threshold.
    pub fn restore(config: AlertConfig, snapshot: PolicySnapshot) -> AlertPolicy {
        let mut silences = snapshot.silences;
        silences.prepare(&config.silences);
        AlertPolicy {
            config,
            clock: snapshot.clock,
            entries: snapshot
                .entries
                .into_iter()
                .map(|e| (e.fingerprint.clone(), e))
                .collect(),
            held: snapshot.held,
            group_opened_at: snapshot.group_opened_at,
            silences,
            wall_clock: None,
            lookup: None,
        }
    }

    /// Returns the state to save.
    pub fn snapshot(&self) -> PolicySnapshot {
        PolicySnapshot {
            clock: self.clock,
            entries: self.entries.values().cloned().collect(),
            held: self.held.clone(),
            group_opened_at: self.group_opened_at,
            silences: self.silences.clone(),
        }
    }

    /// Sets how cited posts are resolved to URLs and text (the daemon: its search index).
    /// Without one, alerts cite post ids only.
    pub fn set_post_lookup(&mut self, lookup: PostLookup) {
        self.lookup = Some(lookup);
    }

    /// Returns the configuration in force.
    pub fn config(&self) -> &AlertConfig {
        &self.config
    }

    /// Returns the latest event time seen.
    pub fn clock(&self) -> Option<DateTime<Utc>> {
        self.clock
    }

    /// Returns the silences.
    pub fn silences(&self) -> &Silences {
        &self.silences
    }

    /// Returns the silences for changes; they apply from the next event or tick.
    pub fn silences_mut(&mut self) -> &mut Silences {
        &mut self.silences
    }

    /// Sets the wall-clock time silences are judged by from now on (the daemon calls it
    /// before each batch of events and each tick), and forgets silences that ended more
    /// than `[alert.silences] expired_retention_secs` before it. A time earlier than one
    /// already given is ignored.
    pub fn set_wall_clock(&mut self, now: DateTime<Utc>) {
        let now = self.wall_clock.map_or(now, |wall| wall.max(now));
        self.wall_clock = Some(now);
        let retention = std::time::Duration::from_secs(self.config.silences.expired_retention_secs);
        self.silences.forget_expired(now, retention);
    }

    /// Returns the wall-clock time last given to [`AlertPolicy::set_wall_clock`].
    pub fn wall_clock(&self) -> Option<DateTime<Utc>> {
        self.wall_clock
    }

    /// Adds a silence at wall-clock time `now` within the configured limits; returns its
    /// id. See [`Silences::add`].
    pub fn add_silence(
        &mut self,
        request: SilenceRequest,
        now: DateTime<Utc>,
    ) -> Result<String, AlertError> {
        self.set_wall_clock(now);
        let now = self.wall_clock.unwrap_or(now);
        self.silences.add(request, now, &self.config.silences)
    }

    /// Returns the time silences are judged at: the wall clock when given, else `at`.
    fn silence_time(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        self.wall_clock.unwrap_or(at)
    }

    /// Acknowledges a firing alert: no re-notification until its severity changes or it
    /// resolves. Returns false when no firing alert has this fingerprint.
    pub fn ack(&mut self, fingerprint: &str) -> bool {
        match self.entries.get_mut(fingerprint) {
            Some(entry) if entry.firing => {
                entry.acked = true;
                true
            }
            _ => false,
        }
    }

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

    /// Takes a narrative event; returns the notifications due (possibly ones held for
    /// grouping by earlier calls).
    pub fn on_event(&mut self, event: &NarrativeEvent) -> Vec<Notification> {
        let now = self.advance(event.at);
        let mut out = self.release(now, false);
        // Transitions due by now happen on the state before the event (a resolve due
        // before the narrative came back is still a resolve).
        self.step(now);
        self.apply(event, now);
        self.step(now);
        out.extend(self.release(now, self.config.group_wait_secs == 0));
        out
    }

    /// Advances event time with no event (the daemon calls it periodically with its
    /// newest event time); returns the notifications due: firings after `for_secs`,
    /// resolves, re-notifications, grouped releases.
    pub fn on_tick(&mut self, now: DateTime<Utc>) -> Vec<Notification> {
        let now = self.advance(now);
        let mut out = self.release(now, false);
        self.step(now);
        out.extend(self.release(now, self.config.group_wait_secs == 0));
        out
    }

    /// Releases every held notification now, whatever the group wait (end of a replay,
    /// shutdown).
    pub fn flush(&mut self) -> Vec<Notification> {
        let now = self.clock.unwrap_or_default();
        self.release(now, true)
    }

    fn advance(&mut self, at: DateTime<Utc>) -> DateTime<Utc> {
        let now = self.clock.map_or(at, |clock| clock.max(at));
        self.clock = Some(now);
        now
    }

    fn rule(&self, name: &str) -> Option<&AlertRule> {
        self.config.rules.iter().find(|r| r.name == name)
    }

    fn release(&mut self, now: DateTime<Utc>, force: bool) -> Vec<Notification> {
        let Some(opened) = self.group_opened_at else {
            return Vec::new();
        };
        if force || now >= opened + secs(self.config.group_wait_secs) {
            self.group_opened_at = None;
            std::mem::take(&mut self.held)
        } else {
            Vec::new()
        }
    }

    /// Updates the alerts of the event's narrative (and of an absorbed one).
    fn apply(&mut self, event: &NarrativeEvent, now: DateTime<Utc>) {
        let narrative = &event.narrative;
        let mut carried: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
        match &event.kind {
            NarrativeEventKind::Retired => {
                for entry in self
                    .entries
                    .values_mut()
                    .filter(|e| e.narrative.id == narrative.id)
                {
                    entry.narrative = narrative.clone();
                    entry.retired = Some(now);
                    entry.active = false;
                    entry.inactive_since.get_or_insert(now);
                }
                return;
            }
            NarrativeEventKind::Merged { absorbed, .. } => {
                let keys: Vec<String> = self
                    .entries
                    .values()
                    .filter(|e| e.narrative.id == *absorbed)
                    .map(|e| e.fingerprint.clone())
                    .collect();
                for key in keys {
                    let entry = self.entries.get_mut(&key).expect("key just listed");
                    // The story goes on under the absorbing narrative: its alert need not
                    // wait `for_secs` again.
                    if let Some(since) = entry.active_since.filter(|_| entry.firing) {
                        carried.insert(entry.rule.clone(), since);
                    }
                    entry.retired = Some(now);
                    entry.active = false;
                    entry.inactive_since.get_or_insert(now);
                    entry.merged_into = Some(narrative.id);
                    if entry.firing {
                        self.resolve(&key, now, format!("merged into {}", narrative.id));
                    }
                }
            }
            _ => {}
        }
        self.resolve_moved_claims(narrative, now);
        for rule_index in 0..self.config.rules.len() {
            let rule = &self.config.rules[rule_index];
            let matches = rule_matches(rule, narrative);
            let key = fingerprint(narrative.id, &rule.name);
            let rule_name = rule.name.clone();
            match self.entries.get_mut(&key) {
                Some(entry) => {
                    entry.narrative = narrative.clone();
                    entry.retired = None;
                    entry.merged_into = None;
                    if matches && !entry.active {
                        entry.active = true;
                        entry.active_since = Some(now);
                        entry.inactive_since = None;
                    } else if !matches && entry.active {
                        entry.active = false;
                        entry.inactive_since = Some(now);
                    }
                }
                None if matches => {
                    self.entries.insert(
                        key.clone(),
                        AlertEntry {
                            fingerprint: key.clone(),
                            rule: rule_name.clone(),
                            narrative: narrative.clone(),
                            active: true,
                            active_since: Some(now),
                            inactive_since: None,
                            retired: None,
                            merged_into: None,
                            firing: false,
                            starts_at: None,
                            ends_at: None,
                            notified_severity: AlertSeverity::Info,
                            notified_growth: 0.0,
                            last_sent_at: None,
                            sequence: 0,
                            acked: false,
                            firing_notified: false,
                            last_notification: None,
                            waive_cooldown: false,
                            same_start_firings: 0,
                        },
                    );
                }
                None => {}
            }
            if let (Some(since), Some(entry)) =
                (carried.get(&rule_name), self.entries.get_mut(&key))
            {
                if entry.active && !entry.firing {
                    // `for_secs` counts as served, but the alert starts now, not in the past.
                    let served = (*since).max(now - secs(self.config.for_secs));
                    entry.active_since = entry.active_since.map(|own| own.min(served));
                }
            }
        }
    }

    fn fire(&mut self, key: &str, at: DateTime<Utc>) {
        let entry = self.entries.get_mut(key).expect("caller checked");
        entry.firing = true;
        let same_second = entry
            .starts_at
            .is_some_and(|before| before.timestamp() == at.timestamp());
        entry.same_start_firings = if same_second {
            entry.same_start_firings + 1
        } else {
            0
        };
        entry.starts_at = Some(at);
        entry.ends_at = None;
        entry.sequence = 0;
        entry.acked = false;
        entry.firing_notified = false;
        self.notify(key, NotificationKind::Firing, at, None);
    }

    fn resolve(&mut self, key: &str, at: DateTime<Utc>, reason: String) {
        let entry = self.entries.get_mut(key).expect("caller checked");
        entry.firing = false;
        entry.active = false;
        entry.ends_at = Some(at);
        entry.acked = false;
        entry.waive_cooldown = false;
        let storyline = entry.narrative.id;
        let is_storyline = entry.narrative.parent.is_none();
        if entry.firing_notified {
            self.notify(key, NotificationKind::Resolved, at, Some(reason.clone()));
        }
        if is_storyline {
            self.resolve_children(storyline, at, &reason);
        }
    }

    /// Builds and holds a notification, unless a silence mutes it (a resolve of an
    /// announced firing always goes out, so no receiver keeps a stale open alert).
    fn notify(
        &mut self,
        key: &str,
        kind: NotificationKind,
        at: DateTime<Utc>,
        resolve_reason: Option<String>,
    ) {
        let config = &self.config;
        let entry = self.entries.get_mut(key).expect("caller checked");
        let Some(rule) = config.rules.iter().find(|r| r.name == entry.rule) else {
            return;
        };
        let rule = rule.clone();
        let severity = config.tiers.tier(entry.narrative.severity);
        let status = if kind == NotificationKind::Resolved {
            AlertStatus::Resolved
        } else {
            AlertStatus::Firing
        };
        let previous_severity = (kind == NotificationKind::Updated
            && entry.notified_severity != severity)
            .then_some(entry.notified_severity);
        entry.notified_severity = severity;
        entry.notified_growth = entry.narrative.growth_ratio;
        entry.last_sent_at = Some(at);
        let labels = alert_labels(
            &rule,
            entry.narrative.id,
            entry.narrative.parent,
            severity,
            status,
        );
        let silence_time = self.wall_clock.unwrap_or(at);
        let silenced =
            kind != NotificationKind::Resolved && self.silences.is_silenced(&labels, silence_time);
        if silenced {
            return;
        }
        if kind == NotificationKind::Resolved && !entry.firing_notified {
            return;
        }
        let starts_at = entry.starts_at.unwrap_or(at);
        let sequence = entry.sequence;
        let parent_title = entry.narrative.parent.and_then(|parent| {
            self.entries_of(parent)
                .next()
                .map(|p| narrative_title(&p.narrative).to_owned())
        });
        let entry = self.entries.get_mut(key).expect("caller checked");
        let starts = starts_at.timestamp().to_string();
        let sequence_text = sequence.to_string();
        let restart = format!("#{}", entry.same_start_firings);
        let mut parts: Vec<&str> = vec![&entry.fingerprint, &starts, kind.as_str(), &sequence_text];
        if entry.same_start_firings > 0 {
            parts.push(&restart);
        }
        let id = format!("vigie_{}", sha256_hex(&parts, 24));
        let alert = build_alert(
            AlertFrame {
                config,
                rule: &rule,
                fingerprint: &entry.fingerprint,
                severity,
                status,
                starts_at,
                ends_at: entry.ends_at.filter(|_| status == AlertStatus::Resolved),
                resolve_reason,
                lookup: self.lookup.as_ref(),
                parent_title,
            },
            &entry.narrative,
        );
        entry.sequence += 1;
        if kind != NotificationKind::Resolved {
            entry.firing_notified = true;
        }
        entry.last_notification = Some(NotificationRecord {
            id: id.clone(),
            kind,
            at,
        });
        let acked = entry.acked;
        let opened = *self.group_opened_at.get_or_insert(at);
        self.held.push(Notification {
            id,
            kind,
            sequence,
            at,
            group_key: format!("g{}-{}", opened.timestamp(), alert.storyline()),
            acked,
            previous_severity,
            with_parent: false,
            alert,
        });
    }
}

/// Returns whether a narrative reaches a rule's thresholds and is not fading.
fn rule_matches(rule: &AlertRule, narrative: &Narrative) -> bool {
    narrative.status != NarrativeStatus::Fading
        && narrative.severity >= rule.min_severity
        && narrative.posts_total >= rule.min_posts
        && narrative.distinct_authors >= rule.min_distinct_authors
        && narrative.growth_ratio >= rule.min_growth_ratio
        && narrative.coordination.score >= rule.min_coordination_score
        && (rule.languages.is_empty()
            || narrative
                .languages
                .iter()
                .any(|(lang, _)| rule.languages.contains(lang)))
}

/// Lists the notifications a configuration would have sent over these events, in order,
/// with their event times (for `vigie eval` and tuning). After the last event, time runs
/// on by `max(resolve_after_secs, keep_firing_for_secs)` so fading narratives resolve,
/// then held groups are flushed.
pub fn backtest(
    events: impl IntoIterator<Item = NarrativeEvent>,
    config: AlertConfig,
) -> Vec<Notification> {
    let run_on = config.resolve_after_secs.max(config.keep_firing_for_secs);
    let mut policy = AlertPolicy::new(config);
    let mut out = Vec::new();
    for event in events {
        out.extend(policy.on_event(&event));
    }
    if let Some(last) = policy.clock() {
        out.extend(policy.on_tick(last + secs(run_on)));
    }
    out.extend(policy.flush());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{at, narrative, short_timings};
    use crate::silence::{Matcher, SilenceRequest};
    use vigie_domain::Severity;

    /// Short timings, sent at once (no group wait).
    fn config() -> AlertConfig {
        AlertConfig {
            group_wait_secs: 0,
            ..short_timings()
        }
    }

    fn event(secs: i64, id: u64, severity: Severity, status: NarrativeStatus) -> NarrativeEvent {
        let mut narrative = narrative(id, severity, 5.0);
        narrative.status = status;
        NarrativeEvent {
            at: at(secs),
            kind: NarrativeEventKind::Updated,
            narrative,
        }
    }

    fn kinds(notifications: &[Notification]) -> Vec<(i64, NotificationKind)> {
        notifications
            .iter()
            .map(|n| (n.at.timestamp() - 1_700_000_000, n.kind))
            .collect()
    }

    use NarrativeStatus::{Fading, Growing, Peaking};
    use NotificationKind::{Firing, Renotify, Resolved, Updated};

    /// Feeds events then ticks; returns (time, kind) of everything sent.
    fn run(
        policy: &mut AlertPolicy,
        events: &[NarrativeEvent],
        ticks: &[i64],
    ) -> Vec<Notification> {
        let mut out = Vec::new();
        for e in events {
            out.extend(policy.on_event(e));
        }
        for t in ticks {
            out.extend(policy.on_tick(at(*t)));
        }
        out
    }

    #[test]
    fn rise_and_fade_gives_one_firing_and_one_resolved() {
        let mut events = Vec::new();
        for minute in 0..30 {
            let status = if minute < 10 {
                Growing
            } else if minute < 15 {
                Peaking
            } else {
                Fading
            };
            events.push(event(minute * 60, 1, Severity::High, status));
        }
        let sent = backtest(events, config());
        assert_eq!(kinds(&sent), vec![(0, Firing), (900 + 600, Resolved)]);
        assert_eq!(sent[1].alert.ends_at, Some(at(1500)));
        assert_eq!(
            sent[1].alert.resolve_reason.as_deref(),
            Some("narrative faded")
        );
        assert_eq!(sent[0].fingerprint(), sent[1].fingerprint());
        assert_ne!(sent[0].id, sent[1].id);
    }

    #[test]
    fn below_threshold_narratives_do_not_alert() {
        let sent = backtest(vec![event(0, 1, Severity::Low, Growing)], config());
        assert!(sent.is_empty());
    }

    #[test]
    fn for_secs_needs_the_narrative_to_stay_above_threshold() {
        let mut policy = AlertPolicy::new(AlertConfig {
            for_secs: 300,
            ..config()
        });
        // Above for 200 s, then below: nothing.
        let sent = run(
            &mut policy,
            &[
                event(0, 1, Severity::High, Growing),
                event(200, 1, Severity::Low, Growing),
            ],
            &[1000],
        );
        assert!(sent.is_empty());
        // Above again from 1000: fires exactly at 1300, found by a tick at 1400.
        let sent = run(
            &mut policy,
            &[event(1000, 1, Severity::High, Growing)],
            &[1299],
        );
        assert!(sent.is_empty());
        let sent = run(&mut policy, &[], &[1400]);
        assert_eq!(kinds(&sent), vec![(1300, Firing)]);
        assert_eq!(sent[0].alert.starts_at, at(1300));
    }

    #[test]
    fn keep_firing_for_holds_a_short_spike() {
        let mut policy = AlertPolicy::new(AlertConfig {
            keep_firing_for_secs: 3600,
            resolve_after_secs: 60,
            ..config()
        });
        let sent = run(
            &mut policy,
            &[
                event(0, 1, Severity::High, Growing),
                event(120, 1, Severity::High, Fading),
            ],
            &[600, 3599],
        );
        assert_eq!(kinds(&sent), vec![(0, Firing)]);
        let sent = run(&mut policy, &[], &[4000]);
        assert_eq!(kinds(&sent), vec![(3600, Resolved)]);
    }

    #[test]
    fn recovering_before_resolve_after_does_not_flap() {
        let mut policy = AlertPolicy::new(config());
        let mut events = Vec::new();
        // Oscillates between fading and growing every 5 minutes for 2 hours.
        for step in 0..24 {
            let status = if step % 2 == 0 { Growing } else { Fading };
            events.push(event(step * 300, 1, Severity::High, status));
        }
        let sent = run(&mut policy, &events, &[]);
        assert_eq!(kinds(&sent), vec![(0, Firing)]);
    }

    #[test]
    fn cooldown_delays_a_second_firing() {
        let mut policy = AlertPolicy::new(config());
        let sent = run(
            &mut policy,
            &[
                event(0, 1, Severity::High, Growing),
                event(60, 1, Severity::High, Fading),
                // Resolved at 660; back above threshold at 1000, inside the cooldown.
                event(1000, 1, Severity::High, Growing),
            ],
            &[700, 4259],
        );
        assert_eq!(kinds(&sent), vec![(0, Firing), (660, Resolved)]);
        let sent = run(&mut policy, &[], &[4300]);
        assert_eq!(kinds(&sent), vec![(660 + 3600, Firing)]);
        assert_eq!(sent[0].sequence, 0);
    }

    #[test]
    fn renotify_cadence_and_ack() {
        let mut policy = AlertPolicy::new(AlertConfig {
            renotify_interval_secs: 300,
            ..config()
        });
        let mut sent = run(&mut policy, &[event(0, 1, Severity::High, Growing)], &[]);
        for t in (60..=1000).step_by(60) {
            sent.extend(policy.on_tick(at(t)));
        }
        assert_eq!(
            kinds(&sent),
            vec![
                (0, Firing),
                (300, Renotify),
                (600, Renotify),
                (900, Renotify)
            ]
        );
        // A long gap gives one re-notification, on the cadence.
        let sent = policy.on_tick(at(2000));
        assert_eq!(kinds(&sent), vec![(1800, Renotify)]);
        assert!(!sent[0].acked);

        let fingerprint = sent[0].fingerprint().to_owned();
        assert!(policy.ack(&fingerprint));
        assert!(!policy.ack("nope"));
        let sent = policy.on_tick(at(2100));
        assert_eq!(kinds(&sent), vec![(2100, Renotify)]);
        assert!(
            sent[0].acked,
            "acked re-notifications are marked for sinks to drop"
        );
        // Growth alone is no news once acked; a severity change is, and clears the ack.
        let mut grown = event(2200, 1, Severity::High, Growing);
        grown.narrative.growth_ratio = 50.0;
        assert!(policy.on_event(&grown).is_empty());
        let sent = policy.on_event(&event(2250, 1, Severity::Critical, Growing));
        assert_eq!(kinds(&sent), vec![(2250, Updated)]);
        assert_eq!(sent[0].alert.severity, AlertSeverity::Critical);
        assert!(!policy.alerts()[0].acked);
    }

    #[test]
    fn material_growth_and_severity_changes_update() {
        let mut policy = AlertPolicy::new(config());
        let mut e1 = event(0, 1, Severity::High, Growing);
        e1.narrative.growth_ratio = 4.0;
        let mut e2 = e1.clone();
        e2.at = at(60);
        e2.narrative.growth_ratio = 7.0;
        let mut e3 = e1.clone();
        e3.at = at(120);
        e3.narrative.growth_ratio = 8.5;
        let e4 = event(180, 1, Severity::Medium, Growing);
        let sent = run(&mut policy, &[e1, e2, e3, e4], &[]);
        assert_eq!(
            kinds(&sent),
            vec![(0, Firing), (120, Updated), (180, Updated)]
        );
        assert_eq!(sent[2].alert.severity, AlertSeverity::Info);
    }

    #[test]
    fn notification_ids_survive_snapshot_and_restore() {
        let events: Vec<NarrativeEvent> = (0..40)
            .map(|minute| {
                let status = if minute < 20 { Growing } else { Fading };
                event(minute * 60, 1, Severity::High, status)
            })
            .collect();
        let config = AlertConfig {
            renotify_interval_secs: 300,
            group_wait_secs: 120,
            ..config()
        };
        let straight = backtest(events.clone(), config.clone());

        let mut first = AlertPolicy::new(config.clone());
        let mut sent = Vec::new();
        for e in &events[..13] {
            sent.extend(first.on_event(e));
        }
        let json = serde_json::to_string(&first.snapshot()).unwrap();
        let mut second = AlertPolicy::restore(config, serde_json::from_str(&json).unwrap());
        for e in &events[13..] {
            sent.extend(second.on_event(e));
        }
        sent.extend(second.on_tick(at(39 * 60 + 600)));
        sent.extend(second.flush());
        assert!(straight.len() >= 4, "{:?}", kinds(&straight));
        assert_eq!(sent, straight);
        let ids: std::collections::BTreeSet<&str> = sent.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids.len(), sent.len(), "ids are unique per state change");
    }

    #[test]
    fn grouping_holds_simultaneous_alerts_together() {
        let mut policy = AlertPolicy::new(AlertConfig {
            group_wait_secs: 30,
            ..config()
        });
        assert!(policy
            .on_event(&event(0, 1, Severity::High, Growing))
            .is_empty());
        assert!(policy
            .on_event(&event(20, 2, Severity::Critical, Growing))
            .is_empty());
        let sent = policy.on_event(&event(31, 3, Severity::High, Growing));
        assert_eq!(sent.len(), 2);
        // Released together; one group key per storyline, so each story is one message.
        let keys: Vec<&str> = sent.iter().map(|n| n.group_key.as_str()).collect();
        assert_eq!(keys, vec!["g1700000000-n1", "g1700000000-n2"]);
        let sent = policy.on_tick(at(61));
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].group_key, "g1700000031-n3");
    }

    #[test]
    fn merged_narrative_resolves_and_the_absorbing_one_keeps_alerting() {
        let mut policy = AlertPolicy::new(AlertConfig {
            for_secs: 600,
            ..config()
        });
        let sent = run(
            &mut policy,
            &[
                event(0, 1, Severity::High, Growing),
                event(300, 2, Severity::High, Growing),
            ],
            &[700],
        );
        assert_eq!(kinds(&sent), vec![(600, Firing)]);
        let mut merged = event(800, 2, Severity::High, Growing);
        merged.kind = NarrativeEventKind::Merged {
            absorbed: NarrativeId(1),
            reason: String::new(),
        };
        let sent = policy.on_event(&merged);
        // n1 resolves; n2 inherits n1's start, so it does not wait out `for_secs` again.
        assert_eq!(kinds(&sent), vec![(800, Resolved), (800, Firing)]);
        assert_eq!(sent[0].alert.narrative_id, NarrativeId(1));
        assert_eq!(
            sent[0].alert.resolve_reason.as_deref(),
            Some("merged into n2")
        );
        assert_eq!(sent[1].alert.narrative_id, NarrativeId(2));
    }

    #[test]
    fn retired_narrative_resolves_at_once() {
        let mut policy = AlertPolicy::new(config());
        let mut retired = event(100, 1, Severity::High, Peaking);
        retired.kind = NarrativeEventKind::Retired;
        let sent = run(
            &mut policy,
            &[event(0, 1, Severity::High, Growing), retired],
            &[],
        );
        assert_eq!(kinds(&sent), vec![(0, Firing), (100, Resolved)]);
        assert_eq!(policy.alerts()[0].state, AlertState::Resolved);
        // Forgotten after the retention.
        policy.on_tick(at(100 + 86_400));
        assert!(policy.alerts().is_empty());
    }

    #[test]
    fn silences_mute_until_they_end() {
        let mut policy = AlertPolicy::new(AlertConfig {
            renotify_interval_secs: 300,
            ..config()
        });
        // Wall clock and event time coincide here; the issue-12 tests below pull them apart.
        policy
            .add_silence(
                SilenceRequest {
                    matchers: vec![Matcher {
                        name: "narrative_id".into(),
                        value: "n1".into(),
                        is_regex: false,
                    }],
                    starts_at: Some(at(0)),
                    ends_at: Some(at(1000)),
                    created_by: "a".into(),
                    comment: "known".into(),
                    ..SilenceRequest::default()
                },
                at(0),
            )
            .unwrap();
        let sent = run(
            &mut policy,
            &[
                event(0, 1, Severity::High, Growing),
                event(0, 2, Severity::High, Growing),
            ],
            &[350, 700],
        );
        assert_eq!(sent.len(), 3, "{:?}", kinds(&sent));
        assert!(sent.iter().all(|n| n.alert.narrative_id == NarrativeId(2)));
        let views = policy.alerts();
        let muted = views
            .iter()
            .find(|v| v.narrative_id == NarrativeId(1))
            .unwrap();
        assert_eq!(muted.state, AlertState::Firing);
        assert!(muted.silenced && muted.silenced_by.is_some());
        // The silence ends: the muted alert is announced as firing.
        policy.set_wall_clock(at(1200));
        let sent: Vec<_> = policy
            .on_tick(at(1200))
            .into_iter()
            .filter(|n| n.alert.narrative_id == NarrativeId(1))
            .collect();
        assert_eq!(kinds(&sent), vec![(1200, Firing)]);
    }

    #[test]
    fn silenced_firing_resolves_silently() {
        let mut policy = AlertPolicy::new(config());
        policy
            .add_silence(
                SilenceRequest {
                    matchers: vec![Matcher {
                        name: "severity".into(),
                        value: "warning".into(),
                        is_regex: false,
                    }],
                    starts_at: Some(at(0)),
                    ends_at: Some(at(100_000)),
                    ..SilenceRequest::default()
                },
                at(0),
            )
            .unwrap();
        let sent = run(
            &mut policy,
            &[
                event(0, 1, Severity::High, Growing),
                event(60, 1, Severity::High, Fading),
            ],
            &[5000],
        );
        assert!(sent.is_empty(), "{:?}", kinds(&sent));
    }

    /// Issue 12 (review finding: silences judged in event time): a silence set "for the
    /// next hour" of wall-clock time holds during a fast replay of posts from years ago,
    /// and stops applying once that hour is over.
    #[test]
    fn issue_12_a_silence_for_the_next_hour_holds_during_a_replay_of_old_posts() {
        let wall = |secs: i64| DateTime::from_timestamp(1_900_000_000 + secs, 0).unwrap();
        let mut policy = AlertPolicy::new(AlertConfig {
            renotify_interval_secs: 300,
            ..config()
        });
        policy
            .add_silence(
                SilenceRequest {
                    matchers: vec![Matcher {
                        name: "narrative_id".into(),
                        value: "n1".into(),
                        is_regex: false,
                    }],
                    duration_secs: Some(3600),
                    ..SilenceRequest::default()
                },
                wall(0),
            )
            .unwrap();
        // Event time runs days ahead within a minute of wall time (a replay at full speed):
        // judged in event time, the silence would have ended after its first hour.
        let mut sent = Vec::new();
        for (step, secs) in (0..50_000).step_by(5000).enumerate() {
            policy.set_wall_clock(wall(step as i64));
            sent.extend(policy.on_event(&event(secs, 1, Severity::High, Growing)));
            sent.extend(policy.on_tick(at(secs + 1)));
        }
        assert!(sent.is_empty(), "{:?}", kinds(&sent));
        let view = &policy.alerts()[0];
        assert_eq!(view.state, AlertState::Firing);
        assert!(view.silenced);

        // The hour is over: the silence stops applying and the alert is announced.
        policy.set_wall_clock(wall(3600));
        let sent = policy.on_tick(at(50_000));
        assert_eq!(kinds(&sent), vec![(50_000, Firing)]);
        assert!(!policy.alerts()[0].silenced);
        let listed = policy.silences().list(wall(3600));
        assert_eq!(listed[0].state, crate::silence::SilenceState::Expired);
        // Listed as expired for the retention, then forgotten from memory.
        let retention = i64::try_from(policy.config().silences.expired_retention_secs).unwrap();
        policy.set_wall_clock(wall(3600 + retention));
        assert!(policy.silences().is_empty());
    }

    /// Random event streams (seeded): whatever happens, each alert alternates firing and
    /// resolved, never fires again within its cooldown, never resolves before
    /// `keep_firing_for_secs`, ids are unique, and a snapshot/restore anywhere changes
    /// nothing.
    #[test]
    fn lifecycle_invariants_hold_on_random_streams() {
        let config = AlertConfig {
            for_secs: 120,
            keep_firing_for_secs: 300,
            resolve_after_secs: 600,
            cooldown_secs: 1800,
            renotify_interval_secs: 900,
            group_wait_secs: 30,
            ..config()
        };
        for seed in 0..40 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut events = Vec::new();
            let mut t = 0;
            for _ in 0..300 {
                t += rng.i64(0..240);
                let severity = [
                    Severity::Low,
                    Severity::Medium,
                    Severity::High,
                    Severity::Critical,
                ][rng.usize(0..4)];
                let status = [Growing, Peaking, Fading][rng.usize(0..3)];
                let mut e = event(t, rng.u64(1..4), severity, status);
                e.narrative.growth_ratio = rng.f64() * 20.0;
                if rng.u8(0..40) == 0 {
                    e.kind = NarrativeEventKind::Retired;
                }
                events.push(e);
            }
            let sent = backtest(events.clone(), config.clone());
            let ids: std::collections::BTreeSet<&str> =
                sent.iter().map(|n| n.id.as_str()).collect();
            assert_eq!(ids.len(), sent.len(), "seed {seed}: unique ids");
            let mut by_alert: BTreeMap<&str, Vec<&Notification>> = BTreeMap::new();
            for n in &sent {
                by_alert.entry(n.fingerprint()).or_default().push(n);
            }
            for notifications in by_alert.values() {
                let mut firing_since: Option<DateTime<Utc>> = None;
                let mut resolved_at: Option<DateTime<Utc>> = None;
                let mut last = None;
                for n in notifications {
                    assert!(last.is_none_or(|l| l <= n.at), "seed {seed}: time order");
                    last = Some(n.at);
                    match n.kind {
                        Firing if firing_since.is_none() => {
                            if let Some(resolved) = resolved_at {
                                assert!(n.at - resolved >= secs(1800), "seed {seed}: cooldown");
                            }
                            firing_since = Some(n.at);
                        }
                        Updated | Renotify => assert!(firing_since.is_some(), "seed {seed}"),
                        Resolved => {
                            let since = firing_since.take().expect("resolves a firing");
                            assert!(n.at - since >= secs(300), "seed {seed}: keep_firing_for");
                            resolved_at = Some(n.at);
                        }
                        Firing => panic!("seed {seed}: fired twice without a resolve"),
                    }
                }
            }
            // Restored halfway, the policy sends the same notifications (compared on ids,
            // kinds and times: JSON may round a float's last bit, which the daemon's
            // binary snapshots do not).
            let cut = rng.usize(1..events.len());
            let mut first = AlertPolicy::new(config.clone());
            let mut again = Vec::new();
            for e in &events[..cut] {
                again.extend(first.on_event(e));
            }
            let json = serde_json::to_string(&first.snapshot()).unwrap();
            let mut second =
                AlertPolicy::restore(config.clone(), serde_json::from_str(&json).unwrap());
            for e in &events[cut..] {
                again.extend(second.on_event(e));
            }
            again.extend(second.on_tick(events.last().unwrap().at + secs(600)));
            again.extend(second.flush());
            let brief = |ns: &[Notification]| -> Vec<String> {
                ns.iter()
                    .map(|n| {
                        format!(
                            "{} {} {} {}",
                            n.at.timestamp() - 1_700_000_000,
                            n.kind.as_str(),
                            n.alert.narrative_id,
                            n.id
                        )
                    })
                    .collect()
            };
            assert_eq!(
                brief(&again),
                brief(&sent),
                "seed {seed}: restore changes nothing (cut {cut})"
            );
        }
    }

    #[test]
    fn time_never_runs_backwards() {
        let mut policy = AlertPolicy::new(config());
        run(
            &mut policy,
            &[event(100, 1, Severity::High, Growing)],
            &[50],
        );
        assert_eq!(policy.clock(), Some(at(100)));
    }
}
