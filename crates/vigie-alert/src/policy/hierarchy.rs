//! Storylines and their claims in the alert policy: a claim's alert is a child of its
//! storyline's, so a story with forty claims is one conversation, not forty pages.
//!
//! - A claim fires only while an alert of its storyline (any rule) is firing and was
//!   announced (not silenced); until then it waits, pending. It fires in the same step as
//!   its storyline (claims are stepped after storylines), so both are released in one
//!   group, under one group key.
//! - A claim whose storyline never alerts sends nothing: the storyline is what pages, and
//!   a claim is news only inside a story someone is looking at. Its alert stays visible as
//!   pending in the API.
//! - When the last announced alert of a storyline resolves, its firing claims resolve with
//!   it, at the same time and in the same group, marked [`Notification::with_parent`]; they
//!   keep no cooldown of their own, so they come back with the storyline.
//! - A firing claim that moves to another storyline (its storyline merged into another)
//!   resolves under its old one and fires again under the new one once that one alerts.
//!
//! [`Notification::with_parent`]: super::Notification::with_parent

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use vigie_domain::{Narrative, NarrativeId};

use super::{fingerprint, AlertEntry, AlertPolicy};

/// Whether an alert may fire, as far as its storyline is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gate {
    /// A storyline: nothing to wait for.
    Storyline,
    /// A claim whose storyline's alert fired (at this time) and was announced.
    Open(DateTime<Utc>),
    /// A claim whose storyline is not alerting (yet).
    Closed,
}

/// The gates of every claim at one moment; see [`AlertPolicy::storyline_gates`].
pub(super) struct StorylineGates {
    since: HashMap<NarrativeId, DateTime<Utc>>,
}

impl StorylineGates {
    /// Returns whether a claim of `storyline` may fire, as far as its storyline goes.
    pub(super) fn of(&self, storyline: NarrativeId) -> Gate {
        match self.since.get(&storyline) {
            Some(since) => Gate::Open(*since),
            None => Gate::Closed,
        }
    }
}

impl AlertPolicy {
    /// Returns the alerts of a narrative, one per rule.
    pub(super) fn entries_of(&self, narrative: NarrativeId) -> impl Iterator<Item = &AlertEntry> {
        self.entries
            .values()
            .filter(move |e| e.narrative.id == narrative)
    }

    /// Returns the earliest start of the storyline's firing and announced alerts, if any.
    fn storyline_alerting_since(&self, storyline: NarrativeId) -> Option<DateTime<Utc>> {
        self.entries_of(storyline).filter_map(announced_start).min()
    }

    /// Returns, for every narrative with a firing and announced alert, the earliest start
    /// of those alerts ([`Self::storyline_alerting_since`] of all of them, in one pass).
    pub(super) fn storyline_gates(&self) -> StorylineGates {
        let mut since: HashMap<NarrativeId, DateTime<Utc>> = HashMap::new();
        for entry in self.entries.values() {
            if let Some(started) = announced_start(entry) {
                since
                    .entry(entry.narrative.id)
                    .and_modify(|earliest| *earliest = (*earliest).min(started))
                    .or_insert(started);
            }
        }
        StorylineGates { since }
    }

    /// Resolves the firing claims of `storyline` once none of its alerts is firing and
    /// announced any more (called right after one of them resolved).
    pub(super) fn resolve_children(
        &mut self,
        storyline: NarrativeId,
        at: DateTime<Utc>,
        why: &str,
    ) {
        if self.storyline_alerting_since(storyline).is_some() {
            return;
        }
        let children: Vec<String> = self
            .entries
            .values()
            .filter(|e| e.narrative.parent == Some(storyline) && e.firing)
            .map(|e| e.fingerprint.clone())
            .collect();
        for key in children {
            let entry = self.entries.get_mut(&key).expect("key just listed");
            // Still active if it still matches: it comes back when the storyline does.
            entry.firing = false;
            entry.ends_at = Some(at);
            entry.acked = false;
            entry.waive_cooldown = true;
            if !entry.firing_notified {
                continue;
            }
            let before = self.held.len();
            self.notify(
                &key,
                super::NotificationKind::Resolved,
                at,
                Some(format!("storyline {storyline} resolved ({why})")),
            );
            if let Some(sent) = self.held.get_mut(before) {
                sent.with_parent = true;
            }
        }
    }

    /// Resolves the firing alerts of a claim whose storyline changed, under the old one,
    /// before the event's narrative replaces the entry's (the resolve must carry the labels
    /// receivers know it by).
    pub(super) fn resolve_moved_claims(&mut self, narrative: &Narrative, now: DateTime<Utc>) {
        let moved: Vec<String> = self
            .config
            .rules
            .iter()
            .map(|rule| fingerprint(narrative.id, &rule.name))
            .filter(|key| {
                self.entries
                    .get(key)
                    .is_some_and(|e| e.firing && e.narrative.parent != narrative.parent)
            })
            .collect();
        for key in moved {
            let reason = match narrative.parent {
                Some(parent) => format!("moved to storyline {parent}"),
                None => "became a storyline".to_owned(),
            };
            self.resolve(&key, now, reason);
            if let Some(entry) = self.entries.get_mut(&key) {
                // It goes on under its new storyline: no cooldown, and it matches still.
                entry.waive_cooldown = true;
                entry.active = true;
                entry.inactive_since = None;
            }
        }
    }
}

/// Returns when an alert started, if it is firing and was announced: what opens its
/// storyline's gate to the claims.
fn announced_start(entry: &AlertEntry) -> Option<DateTime<Utc>> {
    entry
        .starts_at
        .filter(|_| entry.firing && entry.firing_notified)
}
