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
    AlertSeverity, AlertStatus, Notification, NotificationKind, NotificationRecord,
};
use vigie_domain::{Narrative, NarrativeEvent, NarrativeEventKind, NarrativeId, NarrativeStatus};

use crate::config::{AlertConfig, AlertRule};
use crate::content::{alert_labels, build_alert, narrative_title, AlertFrame, PostLookup};
use crate::error::AlertError;
use crate::fingerprint::sha256_hex;
use crate::silence::{SilenceRequest, Silences};

pub mod hierarchy;
mod step;
mod view;

pub use view::{AlertState, AlertView};

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
mod tests;
