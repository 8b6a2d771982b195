//! Storylines seeded by a claim spreading on its own (`claims.seed_posts`, module
//! `claims::seeding`): the claim's recent members become the storyline's first posts, its
//! defining terms its seed terms, and it alerts on that evidence. Later posts join it as
//! they join any storyline (its terms bursting, or its core terms).

use serde::{Deserialize, Serialize};
use vigie_domain::{NarrativeEvent, NarrativeEventKind, NarrativeId, Severity};

use crate::narrative::{most_specific, NarrativeState, NarrativeTerm, StoredSignificance};
use crate::sketch::{signitrend_z, WindowPosition};
use crate::slow::SlowCounts;

use super::*;

/// Why a storyline seeded by a claim exists: the claim's spread when it was seeded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClaimSeed {
    /// Members of the claim within the span, and their distinct authors.
    pub posts: u32,
    pub authors: u32,
    /// Seconds between the oldest and newest of them.
    pub span_secs: i64,
    /// Their significance against the usual posts of the claim's most specific word over
    /// the windows they span (`usual_posts`).
    pub z: f64,
    pub usual_posts: f64,
    /// Windows its reports cite, the current one included: back to the claim's oldest
    /// member when it was seeded.
    pub cited_windows: u32,
}

impl NarrativeState {
    /// Returns whether a claim spreading on its own seeded this storyline (which then
    /// supports an alert for its whole life), and says so in `reasons`.
    pub(crate) fn claim_seed_alert(&self, reasons: &mut Vec<String>) -> bool {
        let Some(seed) = &self.claim_seed else {
            return false;
        };
        reasons.push(format!(
            "a claim spreading outside every trending story: {} posts from {} authors within {:.1} h, z {:.1} against a usual {:.2}",
            seed.posts,
            seed.authors,
            seed.span_secs as f64 / 3600.0,
            seed.z,
            seed.usual_posts
        ));
        true
    }
}

impl Detector {
    /// Makes claim cluster `key` a storyline of its own when it is a claim spreading on
    /// its own (`Claims::orphan`), unless it is a side story of an alerting storyline (at
    /// least `merge_bridge_share` of its members carry one of its terms), all its words
    /// are another storyline's, or the storylines are at their bound.
    pub(super) fn seed_from_claim(&mut self, key: u64, events: &mut Vec<NarrativeEvent>) {
        if !self.config.claims.enabled
            || self.state.narratives.len() >= self.config.max_active_narratives
        {
            return;
        }
        // Before the baselines have learned the stream, every word is rare.
        let now = self.state.now.unwrap_or_default();
        let warming_up = self
            .state
            .started_at
            .is_none_or(|started| now - started < i64::from(self.config.warmup_secs));
        if warming_up {
            return;
        }
        let Some(orphan) = self.state.claims.orphan(key, &self.config) else {
            return;
        };
        let narratives = &self.state.narratives;
        let owners = &self.state.owners;
        let near_alerting = orphan
            .members
            .iter()
            .filter(|post| {
                post.terms.iter().any(|hash| {
                    owners
                        .get(hash)
                        .and_then(|owner| narratives.get(owner))
                        .is_some_and(|n| n.severity >= Severity::Medium)
                })
            })
            .count();
        if near_alerting as f64 >= self.config.merge_bridge_share * orphan.members.len() as f64 {
            return;
        }
        let position = WindowPosition {
            window: self.state.window,
            elapsed: self.elapsed(),
            warmth: self.warmth(),
        };
        let mut terms: Vec<NarrativeTerm> = orphan
            .terms
            .into_iter()
            .filter(|term| !owners.contains_key(&term.hash))
            .take(self.config.max_narrative_terms)
            .collect();
        if terms.is_empty() {
            return;
        }
        // Judged against the usual hourly rate of its words, as a storyline they seeded
        // by bursting would be.
        for term in &mut terms {
            term.best = self
                .state
                .terms
                .peek(term.hash, position, &self.baseline)
                .into();
        }
        // Ten posts in twelve hours is news for words usually unseen, and the usual
        // traffic of common ones: the claim's spread is judged against the usual rate of
        // its most specific word over the windows it spans (SigniTrend's z). The hourly
        // baselines have already learned the claim's own earlier hours, so the daily
        // ones judge it when they can: they learn a day only once it is over.
        let window = self.state.window;
        let oldest = orphan.members.first().map_or(now, |p| p.at);
        let spanned = window.saturating_sub(self.window_of(oldest)) + 1;
        let (usual, windows) = match self.daily_usual(&terms) {
            Some(daily) => (
                daily,
                f64::from(spanned) * f64::from(self.config.window_secs)
                    / f64::from(self.config.slow.window_secs.max(1)),
            ),
            None => (
                most_specific(terms.iter().map(|t| t.best)).unwrap_or_default(),
                f64::from(spanned),
            ),
        };
        let usual_posts = usual.mean * windows;
        let z = signitrend_z(
            orphan.members.len() as f64,
            usual_posts,
            usual.std * windows.sqrt(),
            self.config.bias_posts,
        );
        if z < self.config.alert_z {
            return;
        }
        let id = NarrativeId(self.state.next_id);
        self.state.next_id += 1;
        self.state.counters.narratives_created += 1;
        let mut narrative = NarrativeState::new(id, terms, oldest, window);
        narrative.last_burst = now;
        narrative.slow = SlowCounts::seeded(self.state.slow_clock.window(), std::iter::empty());
        narrative.claim_seed = Some(ClaimSeed {
            posts: orphan.members.len() as u32,
            authors: orphan.authors,
            span_secs: orphan.span_secs,
            z,
            usual_posts,
            cited_windows: spanned.max(2),
        });
        for post in &orphan.members {
            add_member_post(
                &mut narrative,
                post,
                &self.config,
                &self.coordination,
                CoordinationRefresh::Eager,
            );
        }
        self.state.counters.posts_in_narratives += orphan.members.len() as u64;
        for term in &narrative.terms {
            self.state.owners.entry(term.hash).or_insert(id);
        }
        let members: HashSet<&str> = orphan.members.iter().map(|p| p.id.as_str()).collect();
        for post in &mut self.state.recent {
            if post.narrative.is_none() && members.contains(post.id.as_str()) {
                post.narrative = Some(id);
            }
        }
        events.push(NarrativeEvent {
            at: self.event_time(),
            kind: NarrativeEventKind::Created,
            narrative: narrative.view(self.elapsed(), &self.config, &self.coordination),
        });
        self.state.narratives.insert(id, narrative);
        let votes = orphan.members.len() as u32;
        let clock = self.claim_clock();
        let claim_events = self.with_claims(clock, |claims, ctx, events| {
            claims.add_votes(key, id, votes, ctx, events)
        });
        self.claim_events.extend(claim_events);
        self.reassess(id, events);
        // As in `assign`: a claim's events follow its storyline's.
        events.append(&mut self.claim_events);
    }

    /// Returns the daily baseline of the most specific of `terms`, once the slow scale
    /// has learned `slow.warmup_windows` days.
    fn daily_usual(&self, terms: &[NarrativeTerm]) -> Option<StoredSignificance> {
        let sketch = self.state.slow_terms.as_ref()?;
        let clock = &self.state.slow_clock;
        if !self.config.slow.enabled || clock.window() < self.config.slow.warmup_windows {
            return None;
        }
        let position = clock.position(
            self.state.now.unwrap_or_default(),
            i64::from(self.config.slow.window_secs),
            self.slow_baseline.alpha,
        );
        most_specific(
            terms
                .iter()
                .map(|t| sketch.peek(t.hash, position, &self.slow_baseline).into()),
        )
    }
}
