//! Time-driven transitions of the alert policy: at each step every alert is looked at
//! and those with something due fire, resolve, are updated, re-notified or forgotten.
//!
//! A step is split in two: a read-only *plan* of one alert ([`plan`], no allocation),
//! then the transition it names. The policy steps twice per narrative event, and most
//! alerts have nothing due at a given moment. The step this replaced found each claim's
//! storyline gate by scanning every alert (quadratic: half of a 223k-post replay), then
//! looked at every alert through a cloned key and a map search (a fifth more); now the
//! gates are read once per step ([`AlertPolicy::storyline_gates`]) and idle alerts cost
//! one read. Planning every alert of a phase before acting is the same as acting alert
//! by alert, because a transition changes no other alert of its phase: storylines touch
//! only their claims (stepped in the next phase), and claims touch nothing but themselves.

use chrono::{DateTime, Duration, Utc};
use vigie_domain::NarrativeStatus;

use super::hierarchy::Gate;
use super::{secs, AlertEntry, AlertPolicy, NotificationKind};
use crate::config::AlertConfig;

/// What one step does to one alert.
#[derive(Debug, Clone, PartialEq)]
enum Transition {
    /// Its rule left the configuration: it turns inactive, then is planned again.
    Deactivate,
    /// It fires, starting at this time.
    Fire(DateTime<Utc>),
    /// Resolved long enough ago (or never fired): dropped.
    Forget,
    /// It resolves at this time, for this reason.
    Resolve(DateTime<Utc>, &'static str),
    /// Its severity tier changed: announced (and un-acked).
    SeverityChanged,
    /// It grew by the growth factor while acknowledged: noted, not announced.
    GrowthNoted,
    /// It grew by the growth factor: announced.
    Grew,
    /// It fired while silenced: announced once the silence allows (`notify` checks).
    Announce,
    /// Re-notified, as of this time.
    Renotify(DateTime<Utc>),
}

/// Returns what a step at `now` does to `entry`, or `None` when nothing is due; reads
/// only. `gate` is its storyline's (see [`Gate`]).
fn plan(
    entry: &AlertEntry,
    gate: Gate,
    now: DateTime<Utc>,
    config: &AlertConfig,
) -> Option<Transition> {
    if entry.active && !config.rules.iter().any(|r| r.name == entry.rule) {
        return Some(Transition::Deactivate);
    }
    if !entry.firing {
        if entry.active && entry.retired.is_none() {
            let since = entry.active_since.unwrap_or(now);
            let mut due = since + secs(config.for_secs);
            if let Some(ended) = entry.ends_at {
                // A claim resolved with its storyline comes back with it.
                let cooldown = if entry.waive_cooldown {
                    Duration::zero()
                } else {
                    secs(config.cooldown_secs)
                };
                due = due.max(ended + cooldown);
            }
            match gate {
                Gate::Storyline => {}
                // A claim goes out with its storyline, never before it.
                Gate::Open(parent_started) => due = due.max(parent_started),
                Gate::Closed => return None,
            }
            return (now >= due).then_some(Transition::Fire(due));
        }
        let forget = match entry.ends_at {
            None => true,
            Some(ended) => {
                now >= ended + secs(config.resolved_retention_secs.max(config.cooldown_secs))
            }
        };
        return forget.then_some(Transition::Forget);
    }
    // Firing.
    let starts_at = entry.starts_at.unwrap_or(now);
    let min_end = starts_at + secs(config.keep_firing_for_secs);
    if !entry.active {
        let inactive_since = entry.inactive_since.unwrap_or(now);
        let due = if let Some(retired_at) = entry.retired {
            retired_at.max(min_end)
        } else {
            (inactive_since + secs(config.resolve_after_secs)).max(min_end)
        };
        if now >= due {
            let reason = if entry.retired.is_some() {
                "narrative retired (no new posts)"
            } else if entry.narrative.status == NarrativeStatus::Fading {
                "narrative faded"
            } else {
                "below the rule's threshold"
            };
            return Some(Transition::Resolve(due, reason));
        }
    } else if entry.firing_notified {
        // (An alert muted since it fired is first announced, below, not updated.)
        if config.tiers.tier(entry.narrative.severity) != entry.notified_severity {
            return Some(Transition::SeverityChanged);
        }
        let grew = entry.narrative.growth_ratio
            >= entry.notified_growth * config.growth_change_factor
            && entry.notified_growth > 0.0;
        if grew {
            // An acked alert is being handled: growth alone is not news to them.
            return Some(if entry.acked {
                Transition::GrowthNoted
            } else {
                Transition::Grew
            });
        }
    }
    if !entry.firing_notified {
        // Silenced when it fired (`notify` checks again): news once the silence ends.
        return Some(Transition::Announce);
    }
    if config.renotify_interval_secs > 0 {
        let interval = secs(config.renotify_interval_secs);
        let last = entry.last_sent_at.unwrap_or(starts_at);
        if now >= last + interval {
            // One re-notification however long the gap: the latest one due.
            let periods = (now - last).num_seconds() / interval.num_seconds().max(1);
            let due = last + interval * i32::try_from(periods).unwrap_or(i32::MAX);
            return Some(Transition::Renotify(due));
        }
    }
    None
}

impl AlertPolicy {
    /// Applies time-driven transitions to every alert: storylines first, so a claim
    /// whose storyline fires in this step fires with it.
    pub(super) fn step(&mut self, now: DateTime<Utc>) {
        let storylines = self.plan_phase(now, |entry| {
            entry.narrative.parent.is_none().then_some(Gate::Storyline)
        });
        for (key, transition, gate) in storylines {
            self.apply_transition(&key, transition, gate, now);
        }
        // Read after the storylines moved; stepping a claim changes no storyline. (Claims
        // are never storylines of other claims: the detector elects parents among
        // storylines, and a claim's id is never another narrative's parent.)
        let gates = self.storyline_gates();
        let claims = self.plan_phase(now, |entry| entry.narrative.parent.map(|p| gates.of(p)));
        for (key, transition, gate) in claims {
            self.apply_transition(&key, transition, gate, now);
        }
    }

    /// Plans the alerts `gate_of` admits to this phase (it returns their gate), in key
    /// order; keeps those with something due.
    fn plan_phase(
        &self,
        now: DateTime<Utc>,
        gate_of: impl Fn(&AlertEntry) -> Option<Gate>,
    ) -> Vec<(String, Transition, Gate)> {
        self.entries
            .iter()
            .filter_map(|(key, entry)| {
                let gate = gate_of(entry)?;
                plan(entry, gate, now, &self.config).map(|t| (key.clone(), t, gate))
            })
            .collect()
    }

    fn apply_transition(
        &mut self,
        key: &str,
        transition: Transition,
        gate: Gate,
        now: DateTime<Utc>,
    ) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        match transition {
            Transition::Deactivate => {
                entry.active = false;
                entry.inactive_since = Some(now);
                if let Some(next) = plan(entry, gate, now, &self.config) {
                    debug_assert_ne!(next, Transition::Deactivate);
                    self.apply_transition(key, next, gate, now);
                }
            }
            Transition::Fire(at) => self.fire(key, at),
            Transition::Forget => {
                self.entries.remove(key);
            }
            Transition::Resolve(at, reason) => self.resolve(key, at, reason.to_owned()),
            Transition::SeverityChanged => {
                entry.acked = false;
                self.notify(key, NotificationKind::Updated, now, None);
            }
            Transition::GrowthNoted => entry.notified_growth = entry.narrative.growth_ratio,
            Transition::Grew => self.notify(key, NotificationKind::Updated, now, None),
            Transition::Announce => self.notify(key, NotificationKind::Firing, now, None),
            Transition::Renotify(at) => self.notify(key, NotificationKind::Renotify, at, None),
        }
    }
}
