//! How event time moves the narratives: windows close one at a time (statuses, updates,
//! severity of fading narratives) and idle narratives retire.

use chrono::{DateTime, Utc};
use vigie_domain::{NarrativeEvent, NarrativeEventKind, NarrativeId};

use super::*;

impl Detector {
    /// Moves event time forward, closing windows one at a time.
    pub(super) fn advance_to(&mut self, at: i64, events: &mut Vec<NarrativeEvent>) {
        let Some(now) = self.state.now else {
            self.state.now = Some(at);
            self.state.window = self.window_of(at);
            return;
        };
        if at <= now {
            return;
        }
        let target = self.window_of(at);
        while self.state.window < target {
            if self.state.narratives.is_empty() {
                self.state.window = target;
                break;
            }
            let next = self.state.window + 1;
            self.close_window(next, events);
            self.state.window = next;
        }
        self.state.now = Some(at);
        let horizon = at - 2 * i64::from(self.config.window_secs);
        while self.state.recent.front().is_some_and(|p| p.at < horizon) {
            self.state.recent.pop_front();
        }
    }

    /// Closes the current window: statuses, severity of fading narratives, retirements.
    pub(super) fn close_window(&mut self, next: u32, events: &mut Vec<NarrativeEvent>) {
        let window_secs = i64::from(self.config.window_secs);
        let close_time = i64::from(next) * window_secs;
        let at = DateTime::<Utc>::from_timestamp(close_time, 0).unwrap_or_default();
        // Narratives born while the baselines were still empty were judged against nothing:
        // at the first window close after the warm-up they are retired, and any that is
        // really news bursts again against the learned baselines (a revival, same id).
        let warmup_end = self
            .state
            .started_at
            .map(|started| started + i64::from(self.config.warmup_secs));
        let warmup_just_ended =
            warmup_end.is_some_and(|end| close_time >= end && close_time - end < window_secs);
        let ids: Vec<NarrativeId> = self.state.narratives.keys().copied().collect();
        for id in ids {
            let narrative = self
                .state
                .narratives
                .get_mut(&id)
                .expect("ids come from the map");
            let Some(closed_posts) = narrative.roll_to(next) else {
                continue;
            };
            let status_change = narrative.close_window(closed_posts, next);
            // Quiet rather than silent: a narrative whose terms keep trickling in at their
            // usual rate is over, and a new burst of them is news again (a revival).
            let born_cold =
                warmup_just_ended && warmup_end.is_some_and(|end| narrative.first_seen < end);
            let idle = born_cold
                || close_time - narrative.last_burst > i64::from(self.config.narrative_idle_secs);
            let mut kinds = Vec::new();
            if let Some(from) = status_change {
                kinds.push(NarrativeEventKind::StatusChanged { from });
            }
            if closed_posts > 0.0 {
                kinds.push(NarrativeEventKind::Updated);
            }
            if idle {
                kinds.push(NarrativeEventKind::Retired);
            }
            if !kinds.is_empty() {
                let view = narrative.view(0.0, &self.config, &self.coordination);
                for kind in kinds {
                    events.push(NarrativeEvent {
                        at,
                        kind,
                        narrative: view.clone(),
                    });
                }
            }
            if idle {
                self.retire(id, close_time, events);
            }
        }
        events.extend(
            self.with_claims((close_time, 0.0, next), |claims, ctx, events| {
                claims.close_window(next, ctx, events)
            }),
        );
    }

    /// Stops tracking a narrative and remembers it for revival; its claims retire with
    /// it (reported at `at`).
    pub(super) fn retire(&mut self, id: NarrativeId, at: i64, events: &mut Vec<NarrativeEvent>) {
        let Some(narrative) = self.state.narratives.remove(&id) else {
            return;
        };
        let window = self.state.window;
        events.extend(self.with_claims((at, 0.0, window), |claims, ctx, events| {
            claims.storyline_retired(id, ctx, events)
        }));
        self.state.owners.retain(|_, owner| *owner != id);
        self.state.bridges.retain(|(a, b, _)| *a != id && *b != id);
        self.state.retired.push_back(narrative);
        while self.state.retired.len() > MAX_RETIRED {
            self.state.retired.pop_front();
        }
        self.state.counters.narratives_retired += 1;
    }
}
