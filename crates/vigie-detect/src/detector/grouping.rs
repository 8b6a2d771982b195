//! How posts become narratives: a post joins the narrative owning most of its terms,
//! claims the bursting terms no one owns, or seeds a new narrative (back-filled from the
//! sliding window); narratives that keep sharing posts merge; severity is re-judged after
//! every change (see the module docs of `detector`).

use chrono::{DateTime, Utc};
use vigie_domain::{
    NarrativeEvent, NarrativeEventKind, NarrativeId, NarrativeStatus, Severity, TokenKind,
};

use crate::coordination::{CoordinationMember, CoordinationParams};
use crate::hashing::hash_bytes;
use crate::narrative::{Membership, NarrativeState, NarrativeTerm};
use crate::DetectorConfig;

use super::*;

impl Detector {
    /// Puts the post at `index` of the recent buffer into a narrative, if it belongs to
    /// one or starts one.
    pub(super) fn assign(
        &mut self,
        index: usize,
        bursting: &BTreeMap<u64, BurstingTerm>,
        events: &mut Vec<NarrativeEvent>,
    ) {
        // Per owning narrative: (terms owned, bursting terms owned).
        let mut tally: BTreeMap<NarrativeId, (u32, u32)> = BTreeMap::new();
        for hash in &self.state.recent[index].terms {
            if let Some(owner) = self.state.owners.get(hash) {
                let entry = tally.entry(*owner).or_default();
                entry.0 += 1;
                if bursting.contains_key(hash) {
                    entry.1 += 1;
                }
            }
        }
        // A post belongs to a narrative when it carries one of its terms that is bursting
        // right now, or one of its core terms (carried by at least half of its posts):
        // generic words claimed during a burst ("report", "police") stop attracting
        // posts once the burst is over, the story's own terms do not.
        let post_terms = &self.state.recent[index].terms;
        let narratives = &self.state.narratives;
        // Alerting storylines owning one of its terms: a post near an alerting story.
        let alerting_owners: Vec<NarrativeId> = tally
            .keys()
            .filter(|id| narratives[*id].severity >= Severity::Medium)
            .copied()
            .collect();
        tally.retain(|id, (_, owned_bursting)| {
            *owned_bursting >= 1
                || narratives[id].terms.iter().any(|term| {
                    2 * u64::from(term.narrative_posts) >= narratives[id].posts_total
                        && post_terms.binary_search(&term.hash).is_ok()
                })
        });
        let best = tally
            .iter()
            .max_by(|a, b| {
                (a.1 .0, a.1 .1)
                    .cmp(&(b.1 .0, b.1 .1))
                    // Older narratives win ties.
                    .then(b.0.cmp(a.0))
            })
            .map(|(id, _)| *id);
        let mut touched = Vec::new();
        if let Some(best) = best {
            self.join(best, index);
            if alerting_owners.iter().any(|id| *id != best) {
                if let Some(narrative) = self.state.narratives.get_mut(&best) {
                    narrative.slow.near_alerting += 1;
                }
            }
            self.claim(best, bursting);
            touched.push(best);
            // A post bridges two stories only through a term characteristic of the other
            // one (carried by at least `merge_bridge_share` of its posts): "michael" in
            // "Michael Essien has Ebola" is a bursting term of a Michael Brown narrative,
            // but one it rarely carries, so it says nothing about the two being one story.
            let post_terms = &self.state.recent[index].terms;
            let bridged: Vec<NarrativeId> = tally
                .keys()
                .filter(|id| **id != best)
                .filter(|id| {
                    self.state.narratives[*id]
                        .characteristic_term_in(post_terms, self.config.merge_bridge_share)
                })
                .copied()
                .collect();
            {
                let mut current = best;
                for other in bridged {
                    if other == current || !self.state.narratives.contains_key(&other) {
                        continue;
                    }
                    if let Some(survivor) = self.bridge(current, other, events) {
                        touched.retain(|id| *id != current && *id != other);
                        touched.push(survivor);
                        current = survivor;
                    }
                }
            }
        } else {
            let seeds: Vec<(u64, &BurstingTerm)> = bursting
                .iter()
                .filter(|(hash, term)| {
                    term.kind != TokenKind::Mention && !self.state.owners.contains_key(*hash)
                })
                .map(|(hash, term)| (*hash, term))
                .collect();
            if seeds.is_empty() {
                return;
            }
            let id = self.create(&seeds, events);
            self.join(id, index);
            let seed_hashes: Vec<u64> = seeds.iter().map(|(hash, _)| *hash).collect();
            self.backfill(id, index, &seed_hashes);
            let narrative = &self.state.narratives[&id];
            events.push(NarrativeEvent {
                at: self.event_time(),
                kind: NarrativeEventKind::Created,
                narrative: narrative.view(self.elapsed(), &self.config, &self.coordination),
            });
            touched.push(id);
        }
        for id in touched {
            self.reassess(id, events);
        }
        // Claims change while their storyline does; they are reported after it, so a
        // reader always knows a claim's storyline before the claim.
        events.append(&mut self.claim_events);
    }

    pub(super) fn event_time(&self) -> DateTime<Utc> {
        self.now().unwrap_or_default()
    }

    /// Gives a narrative the bursting terms of its post that no one owns yet.
    pub(super) fn claim(&mut self, id: NarrativeId, bursting: &BTreeMap<u64, BurstingTerm>) {
        let narrative = self
            .state
            .narratives
            .get_mut(&id)
            .expect("claims go to tracked narratives");
        for (hash, term) in bursting {
            if term.kind == TokenKind::Mention || self.state.owners.contains_key(hash) {
                continue;
            }
            if narrative.terms.len() >= self.config.max_narrative_terms {
                break;
            }
            narrative.terms.push(NarrativeTerm {
                hash: *hash,
                kind: term.kind,
                text: term.text.clone(),
                best: term.significance.into(),
                narrative_posts: 1,
            });
            self.state.owners.insert(*hash, id);
        }
        for term in &mut narrative.terms {
            if let Some(burst) = bursting.get(&term.hash) {
                if burst.significance.z > term.best.z {
                    term.best = burst.significance.into();
                }
            }
        }
    }

    /// Starts a narrative from unowned bursting terms, or revives a retired one that had
    /// them; returns its id.
    pub(super) fn create(
        &mut self,
        seeds: &[(u64, &BurstingTerm)],
        events: &mut Vec<NarrativeEvent>,
    ) -> NarrativeId {
        let at = self.state.now.unwrap_or_default();
        let window = self.state.window;
        let mut seed_terms: Vec<NarrativeTerm> = seeds
            .iter()
            .map(|(hash, term)| NarrativeTerm {
                hash: *hash,
                kind: term.kind,
                text: term.text.clone(),
                best: term.significance.into(),
                narrative_posts: 0,
            })
            .collect();
        seed_terms.sort_by(|a, b| b.best.z.total_cmp(&a.best.z).then(a.hash.cmp(&b.hash)));
        seed_terms.truncate(self.config.max_narrative_terms);

        if self.state.narratives.len() >= self.config.max_active_narratives {
            let oldest = self
                .state
                .narratives
                .values()
                .min_by_key(|n| (n.last_seen, n.id))
                .map(|n| n.id)
                .expect("the map is full, so not empty");
            let narrative = &self.state.narratives[&oldest];
            events.push(NarrativeEvent {
                at: self.event_time(),
                kind: NarrativeEventKind::Retired,
                narrative: narrative.view(self.elapsed(), &self.config, &self.coordination),
            });
            let at = self.state.now.unwrap_or_default();
            self.retire(oldest, at, events);
        }

        let revived = self.state.retired.iter().rposition(|retired| {
            let shared = seed_terms
                .iter()
                .filter(|seed| retired.has_term(seed.hash))
                .count();
            shared as f64 >= self.config.revive_term_share * seed_terms.len() as f64
        });
        let mut narrative = match revived {
            Some(position) => {
                let mut narrative = self
                    .state
                    .retired
                    .remove(position)
                    .expect("the position was just found");
                narrative.roll_to(window);
                narrative.previous_window_posts = 0.0;
                narrative.born_window = window;
                narrative.status = NarrativeStatus::Emerging;
                narrative.severity = Severity::Low;
                narrative.peak_window_posts = 0.0;
                narrative.last_closed_posts = 0.0;
                narrative.baseline = NarrativeState::seed_baseline(&seed_terms);
                narrative.last_burst = at;
                // Bursting words revive it: it is no longer a claim spreading on its own.
                narrative.claim_seed = None;
                // A new episode of the story: its members are the posts from now on.
                narrative.member_ids.clear();
                narrative.clear_evidence();
                for seed in seed_terms {
                    if !narrative.has_term(seed.hash)
                        && narrative.terms.len() < self.config.max_narrative_terms
                    {
                        narrative.terms.push(seed);
                    }
                }
                self.state.counters.narratives_revived += 1;
                narrative
            }
            None => {
                let id = NarrativeId(self.state.next_id);
                self.state.next_id += 1;
                self.state.counters.narratives_created += 1;
                NarrativeState::new(id, seed_terms, at, window)
            }
        };
        narrative.window = window;
        narrative.slow = self.seed_slow(seeds);
        let id = narrative.id;
        for term in &narrative.terms {
            self.state.owners.entry(term.hash).or_insert(id);
        }
        self.state.narratives.insert(id, narrative);
        id
    }

    /// Adds the unassigned posts of the sliding window that carry the seed terms: at
    /// least two of them, or the one when there is a single seed.
    pub(super) fn backfill(&mut self, id: NarrativeId, except: usize, seeds: &[u64]) {
        let needed = seeds.len().min(2);
        let first_window = self.state.window.saturating_sub(1);
        let candidates: Vec<usize> = self
            .state
            .recent
            .iter()
            .enumerate()
            .filter(|(i, post)| {
                *i != except
                    && post.narrative.is_none()
                    && post.window >= first_window
                    && seeds
                        .iter()
                        .filter(|seed| post.terms.binary_search(seed).is_ok())
                        .count()
                        >= needed
            })
            .map(|(i, _)| i)
            .collect();
        for index in candidates {
            self.join(id, index);
        }
    }

    /// Makes the recent post at `index` a member of narrative `id`, and of the claim of
    /// `id` it tells.
    pub(super) fn join(&mut self, id: NarrativeId, index: usize) {
        let post = &mut self.state.recent[index];
        post.narrative = Some(id);
        let post = &self.state.recent[index];
        let narrative = self
            .state
            .narratives
            .get_mut(&id)
            .expect("posts join tracked narratives");
        add_member_post(
            narrative,
            post,
            &self.config,
            &self.coordination,
            CoordinationRefresh::Eager,
        );
        self.state.counters.posts_in_narratives += 1;
        // A post back-filled into a new storyline was clustered when it was observed: its
        // claim now counts it for this storyline.
        if let Some(key) = post.claim {
            let clock = self.claim_clock();
            let events = self.with_claims(clock, |claims, ctx, events| {
                claims.vote(key, id, ctx, events)
            });
            self.claim_events.extend(events);
        }
    }

    /// Re-judges the claims of a storyline whose severity changed.
    pub(super) fn reassess_claims(&mut self, parent: NarrativeId) {
        let clock = self.claim_clock();
        let events = self.with_claims(clock, |claims, ctx, events| {
            claims.reassess_children(parent, ctx, events)
        });
        self.claim_events.extend(events);
    }

    /// Counts a post carrying bursting terms of two narratives; merges them when enough
    /// posts did. Returns the survivor when they merged.
    pub(super) fn bridge(
        &mut self,
        a: NarrativeId,
        b: NarrativeId,
        events: &mut Vec<NarrativeEvent>,
    ) -> Option<NarrativeId> {
        let (low, high) = if a < b { (a, b) } else { (b, a) };
        let count = match self
            .state
            .bridges
            .iter_mut()
            .find(|(x, y, _)| *x == low && *y == high)
        {
            Some(entry) => {
                entry.2 += 1;
                entry.2
            }
            None => {
                if self.state.bridges.len() >= MAX_BRIDGES {
                    self.state.bridges.remove(0);
                }
                self.state.bridges.push((low, high, 1));
                1
            }
        };
        let smaller = self.state.narratives[&low]
            .posts_total
            .min(self.state.narratives[&high].posts_total);
        let needed =
            (self.config.merge_bridge_share * smaller as f64).max(f64::from(MIN_BRIDGE_POSTS));
        if f64::from(count) < needed {
            return None;
        }
        // The older narrative keeps its id.
        let absorbed = self
            .state
            .narratives
            .remove(&high)
            .expect("bridged narratives are tracked");
        for owner in self.state.owners.values_mut() {
            if *owner == high {
                *owner = low;
            }
        }
        for post in &mut self.state.recent {
            if post.narrative == Some(high) {
                post.narrative = Some(low);
            }
        }
        self.state
            .bridges
            .retain(|(x, y, _)| *x != high && *y != high);
        let (at, elapsed) = (self.event_time(), self.elapsed());
        let survivor = self
            .state
            .narratives
            .get_mut(&low)
            .expect("bridged narratives are tracked");
        survivor.absorb(absorbed, &self.config, &self.coordination);
        self.state.counters.narratives_merged += 1;
        let clock = self.claim_clock();
        let claim_events = self.with_claims(clock, |claims, ctx, events| {
            claims.storyline_merged(high, low, ctx, events)
        });
        self.claim_events.extend(claim_events);
        let survivor = &self.state.narratives[&low];
        events.push(NarrativeEvent {
            at,
            kind: NarrativeEventKind::Merged {
                absorbed: high,
                reason: format!(
                    "{count} posts carried characteristic terms of both {low} and {high}"
                ),
            },
            narrative: survivor.view(elapsed, &self.config, &self.coordination),
        });
        Some(low)
    }

    /// Re-evaluates a narrative's severity after new posts. Severity only rises during a
    /// narrative's life, so that one story alerts once; it starts again from `low` when a
    /// retired narrative is revived, since the story coming back is news again.
    pub(super) fn reassess(&mut self, id: NarrativeId, events: &mut Vec<NarrativeEvent>) {
        let elapsed = self.elapsed();
        let slow_elapsed = self.slow_elapsed();
        let Some(narrative) = self.state.narratives.get_mut(&id) else {
            return;
        };
        let (mut assessed, mut reasons, slow_only) =
            narrative.assess(elapsed, slow_elapsed, &self.config);
        // On a cold start every term bursts against empty baselines; nothing can be
        // "unusual" before the baselines have seen a few windows of the stream.
        let warming_up = self.state.started_at.is_some_and(|started| {
            self.state.now.unwrap_or(started) - started < i64::from(self.config.warmup_secs)
        });
        if warming_up && assessed > Severity::Low {
            assessed = Severity::Low;
            reasons.push(format!(
                "warming up: baselines learn the stream's first {} s before anything alerts",
                self.config.warmup_secs
            ));
        }
        // Idleness stays hourly: keeping storylines alive on their slow growth made them
        // gather more claims' posts than they alert for (design note §11).
        if narrative.growth(elapsed, self.config.bias_posts).0 >= self.config.burst_z {
            narrative.last_burst = self.state.now.unwrap_or(narrative.last_burst);
        }
        narrative.severity_reasons = reasons;
        let severity = assessed.max(narrative.severity);
        if severity != narrative.severity {
            let from = narrative.severity;
            if from < Severity::Medium && severity >= Severity::Medium {
                // Its alert cites the window that supports it.
                narrative.slow.alerted = slow_only;
            }
            narrative.severity = severity;
            let at = self.now().unwrap_or_default();
            let narrative = &self.state.narratives[&id];
            events.push(NarrativeEvent {
                at,
                kind: NarrativeEventKind::SeverityChanged { from },
                narrative: narrative.view(elapsed, &self.config, &self.coordination),
            });
            self.reassess_claims(id);
        }
    }
}

/// Adds a recent post to a narrative's bookkeeping (storyline or claim): counts,
/// authors, languages, members and coordination evidence.
pub(crate) fn add_member_post(
    narrative: &mut NarrativeState,
    post: &RecentPost,
    config: &DetectorConfig,
    coordination: &CoordinationParams,
    refresh: CoordinationRefresh,
) {
    let author = post.author.as_deref().map(|a| hash_bytes(9, a.as_bytes()));
    narrative.add_member(
        &Membership {
            id: &post.id,
            at: post.at,
            window: post.window,
            slow_window: post.slow_window,
            author,
            lang: &post.lang,
            hashtags: &post.hashtags,
            engagement: post.engagement,
            watches: &post.watches,
            terms: &post.terms,
            surfaces: &post.surfaces,
            sample: &post.sample,
            signature: post.signature.as_ref(),
        },
        config,
    );
    if let Some(author) = &post.author {
        let known_before = narrative.coordination_known();
        narrative.coordination.add(
            CoordinationMember {
                id: post.id.clone(),
                author: author.clone(),
                at: post.at,
                signature: post.signature,
                links: post.links.clone(),
                sample: post.sample.clone(),
            },
            coordination,
        );
        if refresh.due(known_before) {
            narrative.refresh_coordination(coordination);
        }
    }
}

/// How often a member's arrival recomputes a narrative's coordination score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CoordinationRefresh {
    /// After every post while it is small, then every tenth: storylines, whose score
    /// takes part in every severity judgement.
    Eager,
    /// At 1, 2, 4, 8, 16 known-author posts, then every sixteenth: claims, whose score
    /// only raises an alerting claim and is recomputed when the claim is reported.
    /// (Every post made the claims' coordination a third of their cost.)
    Sparse,
}

impl CoordinationRefresh {
    /// Returns whether the score is due once a narrative that had `known_before`
    /// known-author posts gets one more.
    fn due(self, known_before: usize) -> bool {
        match self {
            CoordinationRefresh::Eager => known_before < 50 || known_before % 10 == 0,
            CoordinationRefresh::Sparse => known_before.is_power_of_two() || known_before % 16 == 0,
        }
    }
}
