//! The detector: counts each post's terms and term pairs in the significance sketches,
//! turns bursting terms into narratives, keeps their statistics, coordination evidence
//! and severity, and reports changes as [`NarrativeEvent`]s.
//!
//! # How posts become narratives
//!
//! A term (or a pair of terms co-occurring in a post) is *bursting* in a post when its
//! SigniTrend significance in the sliding window reaches `burst_z`. Each narrative owns
//! its defining terms. A post joins the narrative that owns most of its terms when it
//! carries one of its core terms (carried by half of its posts or more), or one of its
//! terms that is bursting right now; bursting terms it
//! carries that no one owns are claimed by that narrative. A post whose bursting terms
//! are all unowned seeds a new narrative (TwitterMonitor's grouping of bursty keywords,
//! Mathioudakis & Koudas 2010), which is back-filled with the unassigned posts of the
//! sliding window that carry its seed terms: those are the posts that made them burst.
//! When posts keep carrying bursting terms of two narratives, the two are the same story
//! and merge into the older id; a new narrative whose seed terms are those of a recently
//! retired one revives it under its old id. One story therefore keeps one id.
//!
//! Post clustering of a window (e.g. with linfa) is not used: within one narrative the
//! owned-term rule already separates stories whose terms differ, and stories that share
//! all their bursting terms cannot be told apart by a clustering of the same terms.
//!
//! # Time
//!
//! Event time (`created_at`) drives everything; the detector never reads a clock. Windows
//! close when a post or [`Detector::on_tick`] moves event time past them, one window at a
//! time, so the narratives are the same whatever the batching or replay speed. A post
//! older than the latest one seen is counted at its own time while its window is still
//! the current one, and at the latest time (as late) otherwise; the daemon orders posts
//! by event time before the detector (`watermark`), so few are.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vigie_domain::{
    AnalyzedPost, Checkpoint, Narrative, NarrativeEvent, NarrativeEventKind, NarrativeId,
    NarrativeStatus, Severity, TokenKind,
};
use vigie_tokenize::Analyzer;

use crate::claims::{anchor, ClaimContext, Claims};
use crate::coordination::{sample, CoordinationMember, CoordinationParams};
use crate::features::{extract, PostFeatures};
use crate::hashing::{hash_bytes, pair_hash, MINHASH_LEN};
use crate::narrative::{Membership, NarrativeState, NarrativeTerm};
use crate::sketch::{BaselineParams, Significance, SignificanceSketch, WindowPosition};
use crate::watchlist::{WatchEntry, Watchlists};
use crate::{DetectError, DetectorConfig};

/// Retired narratives remembered for revival.
const MAX_RETIRED: usize = 64;
/// Narrative pairs whose bridging posts are counted.
const MAX_BRIDGES: usize = 4096;
/// Bridging posts two narratives need at least before they merge.
const MIN_BRIDGE_POSTS: u32 = 3;

/// What the detector has done so far, for tests and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectorCounters {
    /// Posts observed.
    pub posts_observed: u64,
    /// Posts older than the current window, counted at the latest time.
    pub late_posts: u64,
    /// Posts that joined a narrative (back-filled ones included).
    pub posts_in_narratives: u64,
    /// Narratives created.
    pub narratives_created: u64,
    /// Retired narratives revived under their old id.
    pub narratives_revived: u64,
    /// Narratives absorbed by another one.
    pub narratives_merged: u64,
    /// Narratives retired for being idle or for room.
    pub narratives_retired: u64,
}

/// A post of the last windows, kept to back-fill new narratives (and, for claims not yet
/// reported, kept by their cluster until they are).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RecentPost {
    pub id: String,
    pub at: i64,
    pub window: u32,
    pub author: Option<String>,
    pub lang: String,
    /// Counted term hashes, sorted.
    pub terms: Vec<u64>,
    /// Kind and canonical text of each of `terms`, in the same order.
    #[serde(default)]
    pub words: Vec<(TokenKind, String)>,
    /// Original spelling of each of `terms`, in the same order, space-separated (one
    /// string: a fraction of the memory of one `String` per term).
    #[serde(default)]
    pub surfaces: String,
    /// Conversation anchor (repost or reply root), see `claims::anchor`.
    #[serde(default)]
    pub anchor: Option<crate::claims::Anchor>,
    pub signature: Option<[u32; MINHASH_LEN]>,
    pub links: Vec<String>,
    pub hashtags: Vec<String>,
    pub engagement: u64,
    pub watches: Vec<String>,
    pub sample: String,
    pub narrative: Option<NarrativeId>,
    /// The claim cluster it was placed in (`claims`), if any.
    #[serde(default)]
    pub claim: Option<u64>,
}

impl RecentPost {
    /// Returns a copy without its terms' texts (`words`), which only the clustering of
    /// the post itself reads: what a claim keeps of a member waiting for its report.
    pub(crate) fn member_copy(&self) -> RecentPost {
        RecentPost {
            id: self.id.clone(),
            at: self.at,
            window: self.window,
            author: self.author.clone(),
            lang: self.lang.clone(),
            terms: self.terms.clone(),
            words: Vec::new(),
            surfaces: self.surfaces.clone(),
            anchor: self.anchor,
            signature: self.signature,
            links: self.links.clone(),
            hashtags: self.hashtags.clone(),
            engagement: self.engagement,
            watches: self.watches.clone(),
            sample: self.sample.clone(),
            narrative: self.narrative,
            claim: self.claim,
        }
    }
}

/// Everything the detector remembers; what a snapshot holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DetectorState {
    /// Latest event time seen, Unix seconds; `None` before the first post or tick.
    now: Option<i64>,
    /// Index of the current window.
    window: u32,
    terms: SignificanceSketch,
    pairs: SignificanceSketch,
    recent: VecDeque<RecentPost>,
    narratives: BTreeMap<NarrativeId, NarrativeState>,
    owners: HashMap<u64, NarrativeId>,
    bridges: Vec<(NarrativeId, NarrativeId, u32)>,
    retired: VecDeque<NarrativeState>,
    next_id: u64,
    counters: DetectorCounters,
    /// Event time of the first post, Unix seconds: baselines are empty before it, so no
    /// narrative may alert until `warmup_secs` later. Absent in older snapshots (treated as
    /// warmed up).
    #[serde(default)]
    started_at: Option<i64>,
    /// The claims inside the storylines.
    #[serde(default)]
    claims: Claims,
}

/// The detector's state, to store next to the source offsets it covers so that a restart
/// neither forgets baselines nor counts a post twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorSnapshot {
    /// The source offsets of the posts the state covers; the caller sets it to the
    /// checkpoint of the last post observed before [`Detector::snapshot`].
    pub checkpoint: Checkpoint,
    /// The watchlists at snapshot time (they may have been changed through the API).
    pub watchlists: Vec<WatchEntry>,
    state: DetectorState,
}

/// Detects emerging narratives in an event-time-ordered stream of analyzed posts; see
/// the module docs.
#[derive(Debug)]
pub struct Detector {
    config: DetectorConfig,
    watchlists: Watchlists,
    baseline: BaselineParams,
    coordination: CoordinationParams,
    ignored: HashSet<String>,
    state: DetectorState,
    /// Claim events of the post being observed, reported after its storyline events.
    claim_events: Vec<NarrativeEvent>,
}

/// A term found bursting in the current post.
#[derive(Debug, Clone)]
struct BurstingTerm {
    kind: TokenKind,
    text: String,
    significance: Significance,
}

impl Detector {
    /// Builds a detector with empty baselines; fails on an invalid configuration or
    /// watchlist entry. The analyzer compiles watch queries.
    pub fn new(config: DetectorConfig, analyzer: Arc<Analyzer>) -> Result<Detector, DetectError> {
        config.check()?;
        let state = DetectorState {
            now: None,
            window: 0,
            terms: SignificanceSketch::new(config.sketch_hashes, config.term_sketch_cells),
            pairs: SignificanceSketch::new(config.sketch_hashes, config.pair_sketch_cells),
            recent: VecDeque::new(),
            narratives: BTreeMap::new(),
            owners: HashMap::new(),
            bridges: Vec::new(),
            retired: VecDeque::new(),
            next_id: 1,
            started_at: None,
            claims: Claims::default(),
            counters: DetectorCounters::default(),
        };
        let watchlists = Watchlists::new(analyzer, &config.watchlists)?;
        Ok(Detector::assemble(config, watchlists, state))
    }

    /// Rebuilds a detector from a snapshot, with the snapshot's watchlists. Fails when the
    /// configuration's sketch dimensions differ from the snapshot's.
    pub fn restore(
        config: DetectorConfig,
        analyzer: Arc<Analyzer>,
        snapshot: DetectorSnapshot,
    ) -> Result<Detector, DetectError> {
        config.check()?;
        let fresh = Detector::new(config.clone(), analyzer.clone())?;
        for (expected, found) in [
            (fresh.state.terms.len(), snapshot.state.terms.len()),
            (fresh.state.pairs.len(), snapshot.state.pairs.len()),
        ] {
            if expected != found {
                return Err(DetectError::SnapshotMismatch { expected, found });
            }
        }
        let watchlists = Watchlists::new(analyzer, &snapshot.watchlists)?;
        Ok(Detector::assemble(config, watchlists, snapshot.state))
    }

    fn assemble(config: DetectorConfig, watchlists: Watchlists, state: DetectorState) -> Detector {
        let baseline = BaselineParams::new(config.alpha(), config.bias_posts);
        let coordination = CoordinationParams::new(&config);
        let ignored = config
            .ignored_terms
            .iter()
            .map(|t| t.to_lowercase())
            .collect();
        Detector {
            config,
            watchlists,
            baseline,
            coordination,
            ignored,
            state,
            claim_events: Vec::new(),
        }
    }

    /// Returns the configuration.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// Returns the storyline of the latest observed post, if it joined one (for the
    /// eval's diagnostics).
    #[doc(hidden)]
    pub fn latest_post_storyline(&self) -> Option<NarrativeId> {
        self.state.recent.back().and_then(|p| p.narrative)
    }

    /// Returns the counters.
    pub fn counters(&self) -> &DetectorCounters {
        &self.state.counters
    }

    /// Returns the watchlists, for the HTTP API to list, add and remove entries.
    pub fn watchlists_mut(&mut self) -> &mut Watchlists {
        &mut self.watchlists
    }

    /// Returns the latest event time seen.
    pub fn now(&self) -> Option<DateTime<Utc>> {
        self.state
            .now
            .and_then(|now| DateTime::<Utc>::from_timestamp(now, 0))
    }

    /// Builds the reported form of every tracked narrative: the storylines in id order,
    /// then their claims in id order.
    pub fn narratives(&self) -> Vec<Narrative> {
        let elapsed = self.elapsed();
        let mut views: Vec<Narrative> = self
            .state
            .narratives
            .values()
            .map(|n| n.view(elapsed, &self.config, &self.coordination))
            .collect();
        views.extend(
            self.state
                .claims
                .views(elapsed, &self.config, &self.coordination),
        );
        views
    }

    /// Runs `change` on the claims with their context at (time, elapsed share of the
    /// window, window); returns the claim events it produced.
    fn with_claims(
        &mut self,
        (now, elapsed, window): (i64, f64, u32),
        change: impl FnOnce(&mut Claims, &mut ClaimContext<'_>, &mut Vec<NarrativeEvent>),
    ) -> Vec<NarrativeEvent> {
        let mut events = Vec::new();
        if !self.config.claims.enabled {
            return events;
        }
        let state = &mut self.state;
        let mut ctx = ClaimContext {
            config: &self.config,
            coordination: &self.coordination,
            storylines: &state.narratives,
            now,
            elapsed,
            window,
            next_id: &mut state.next_id,
        };
        change(&mut state.claims, &mut ctx, &mut events);
        events
    }

    /// Returns (time, elapsed share, window) now, for [`Detector::with_claims`].
    fn claim_clock(&self) -> (i64, f64, u32) {
        (
            self.state.now.unwrap_or_default(),
            self.elapsed(),
            self.state.window,
        )
    }

    /// Returns the bytes the detector holds: the sketches, fixed at construction
    /// ([`Detector::sketch_bytes`]), plus an estimate of the bounded buffers (recent
    /// posts, narratives, retired narratives) as they are now.
    pub fn memory_bytes(&self) -> usize {
        let recent: usize = self
            .state
            .recent
            .iter()
            .map(|p| {
                std::mem::size_of::<RecentPost>()
                    + p.id.len()
                    + p.sample.len()
                    + p.surfaces.len()
                    + p.terms.len() * 8
                    + p.links
                        .iter()
                        .chain(&p.hashtags)
                        .map(String::len)
                        .sum::<usize>()
            })
            .sum();
        let narratives: usize = self
            .state
            .narratives
            .values()
            .chain(&self.state.retired)
            .map(NarrativeState::memory_bytes)
            .sum();
        self.sketch_bytes()
            + recent
            + narratives
            + self.state.claims.memory_bytes()
            + self.state.owners.len() * 24
    }

    /// Returns the bytes of the significance sketches: rows × cells × 20 bytes for terms
    /// and for pairs, independent of the vocabulary.
    pub fn sketch_bytes(&self) -> usize {
        self.state.terms.memory_bytes() + self.state.pairs.memory_bytes()
    }

    /// Captures the whole state; see [`DetectorSnapshot`].
    pub fn snapshot(&self) -> DetectorSnapshot {
        DetectorSnapshot {
            checkpoint: Checkpoint::new(),
            watchlists: self.watchlists.list(),
            state: self.state.clone(),
        }
    }

    /// Moves event time to `now` with no post: closes the windows before it (statuses,
    /// retirements) and returns what changed. Earlier times are ignored.
    pub fn on_tick(&mut self, now: DateTime<Utc>) -> Vec<NarrativeEvent> {
        let mut events = Vec::new();
        self.advance_to(now.timestamp(), &mut events);
        events
    }

    /// Counts one post, updates the narratives it touches and returns what changed.
    pub fn observe(&mut self, analyzed: &AnalyzedPost) -> Vec<NarrativeEvent> {
        let mut events = Vec::new();
        let mut at = analyzed.post.created_at.timestamp();
        // A late post still in the current window is counted at its own time (issue 8);
        // one of a closed window can only be counted now, as late.
        if let Some(now) = self.state.now {
            if at < now && self.window_of(at) < self.state.window {
                self.state.counters.late_posts += 1;
                at = now;
            }
        }
        self.advance_to(at, &mut events);
        if self.state.counters.posts_observed == 0 {
            self.state.started_at = Some(at);
        }
        self.state.counters.posts_observed += 1;
        let features = extract(analyzed, &self.ignored, self.config.max_pair_terms_per_post);
        let bursting = self.count_terms(&features, at);
        let watches: Vec<String> = self
            .watchlists
            .matches(analyzed)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let post = &analyzed.post;
        let metrics = &post.metrics;
        self.state.recent.push_back(RecentPost {
            id: post.id.clone(),
            at,
            window: self.state.window,
            author: post.author.clone(),
            lang: analyzed.analysis.lang.clone(),
            terms: features.terms.iter().map(|t| t.hash).collect(),
            words: features
                .terms
                .iter()
                .map(|t| (t.kind, t.text.clone()))
                .collect(),
            surfaces: features
                .terms
                .iter()
                .map(|t| t.surface.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            anchor: anchor(post),
            signature: features.signature,
            links: features.links,
            hashtags: features.hashtags,
            engagement: [metrics.likes, metrics.shares, metrics.replies]
                .iter()
                .flatten()
                .sum(),
            watches,
            sample: sample(&post.text),
            narrative: None,
            claim: None,
        });
        while self.state.recent.len() > self.config.max_recent_posts {
            self.state.recent.pop_front();
        }
        let index = self.state.recent.len() - 1;
        self.assign(index, &bursting, &mut events);
        let clock = self.claim_clock();
        let mut placed = None;
        // Taken out of the buffer while the claims look at it (no copy per post), put back
        // at the same place.
        let mut post = self
            .state
            .recent
            .pop_back()
            .expect("the post was just pushed");
        let claim_events = self.with_claims(clock, |claims, ctx, events| {
            placed = claims.add(&post, ctx, events);
        });
        post.claim = placed;
        self.state.recent.push_back(post);
        events.extend(claim_events);
        events
    }

    /// Returns how far event time is into the current window, 0 to 1.
    fn elapsed(&self) -> f64 {
        let Some(now) = self.state.now else {
            return 0.0;
        };
        let window_secs = i64::from(self.config.window_secs);
        let start = i64::from(self.state.window) * window_secs;
        ((now - start) as f64 / window_secs as f64).clamp(0.0, 1.0)
    }

    /// Returns 1 − (1 − α)^n for the n windows closed since the first post: the weight
    /// the EWMA baselines have gathered (1 for snapshots older than `started_at`).
    fn warmth(&self) -> f64 {
        let Some(started) = self.state.started_at else {
            return 1.0;
        };
        let closed = self.state.window.saturating_sub(self.window_of(started));
        1.0 - (1.0 - self.config.alpha()).powi(closed.min(10_000) as i32)
    }

    fn window_of(&self, at: i64) -> u32 {
        let index = at.div_euclid(i64::from(self.config.window_secs));
        index.clamp(0, i64::from(u32::MAX)) as u32
    }

    /// Counts the post's terms and pairs; returns the bursting ones by hash.
    fn count_terms(&mut self, features: &PostFeatures, at: i64) -> BTreeMap<u64, BurstingTerm> {
        let position = WindowPosition {
            window: self.state.window,
            elapsed: self.elapsed_at(at),
            warmth: self.warmth(),
        };
        let mut bursting = BTreeMap::new();
        for term in &features.terms {
            let significance = self
                .state
                .terms
                .observe(term.hash, position, &self.baseline);
            if significance.z >= self.config.burst_z {
                bursting.insert(
                    term.hash,
                    BurstingTerm {
                        kind: term.kind,
                        text: term.text.clone(),
                        significance,
                    },
                );
            }
        }
        for (i, &a) in features.pair_terms.iter().enumerate() {
            for &b in &features.pair_terms[i + 1..] {
                let (first, second) = (&features.terms[a], &features.terms[b]);
                let significance = self.state.pairs.observe(
                    pair_hash(first.hash, second.hash),
                    position,
                    &self.baseline,
                );
                if significance.z < self.config.burst_z {
                    continue;
                }
                // A co-burst makes both terms bursting in this post: "essien" next to
                // "ebola" is news even if "ebola" alone is already common.
                for term in [first, second] {
                    bursting.entry(term.hash).or_insert_with(|| BurstingTerm {
                        kind: term.kind,
                        text: term.text.clone(),
                        significance,
                    });
                }
            }
        }
        bursting
    }

    fn elapsed_at(&self, at: i64) -> f64 {
        let window_secs = i64::from(self.config.window_secs);
        let start = i64::from(self.state.window) * window_secs;
        ((at - start) as f64 / window_secs as f64).clamp(0.0, 1.0)
    }

    /// Moves event time forward, closing windows one at a time.
    fn advance_to(&mut self, at: i64, events: &mut Vec<NarrativeEvent>) {
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
    fn close_window(&mut self, next: u32, events: &mut Vec<NarrativeEvent>) {
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
    fn retire(&mut self, id: NarrativeId, at: i64, events: &mut Vec<NarrativeEvent>) {
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

    /// Puts the post at `index` of the recent buffer into a narrative, if it belongs to
    /// one or starts one.
    fn assign(
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

    fn event_time(&self) -> DateTime<Utc> {
        self.now().unwrap_or_default()
    }

    /// Gives a narrative the bursting terms of its post that no one owns yet.
    fn claim(&mut self, id: NarrativeId, bursting: &BTreeMap<u64, BurstingTerm>) {
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
    fn create(
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
        let id = narrative.id;
        for term in &narrative.terms {
            self.state.owners.entry(term.hash).or_insert(id);
        }
        self.state.narratives.insert(id, narrative);
        id
    }

    /// Adds the unassigned posts of the sliding window that carry the seed terms: at
    /// least two of them, or the one when there is a single seed.
    fn backfill(&mut self, id: NarrativeId, except: usize, seeds: &[u64]) {
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
    fn join(&mut self, id: NarrativeId, index: usize) {
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
    fn reassess_claims(&mut self, parent: NarrativeId) {
        let clock = self.claim_clock();
        let events = self.with_claims(clock, |claims, ctx, events| {
            claims.reassess_children(parent, ctx, events)
        });
        self.claim_events.extend(events);
    }

    /// Counts a post carrying bursting terms of two narratives; merges them when enough
    /// posts did. Returns the survivor when they merged.
    fn bridge(
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
    fn reassess(&mut self, id: NarrativeId, events: &mut Vec<NarrativeEvent>) {
        let elapsed = self.elapsed();
        let Some(narrative) = self.state.narratives.get_mut(&id) else {
            return;
        };
        let (mut assessed, mut reasons) = narrative.assess(elapsed, &self.config);
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
        if narrative.growth(elapsed, self.config.bias_posts).0 >= self.config.burst_z {
            narrative.last_burst = self.state.now.unwrap_or(narrative.last_burst);
        }
        narrative.severity_reasons = reasons;
        let severity = assessed.max(narrative.severity);
        if severity != narrative.severity {
            let from = narrative.severity;
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
        let due = match refresh {
            CoordinationRefresh::Eager => narrative.coordination_due(known_before),
            CoordinationRefresh::Sparse => known_before.is_power_of_two() || known_before % 16 == 0,
        };
        if due {
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

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use vigie_domain::Post;
    use vigie_tokenize::AnalyzerConfig;

    use super::*;

    /// A deterministic generator for synthetic streams (a 64-bit LCG).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, bound: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 33) % bound as u64) as usize
        }
    }

    fn analyzer() -> Arc<Analyzer> {
        Arc::new(Analyzer::new(AnalyzerConfig::default()))
    }

    fn small_config() -> DetectorConfig {
        DetectorConfig {
            term_sketch_cells: 4096,
            pair_sketch_cells: 16_384,
            ..DetectorConfig::default()
        }
    }

    fn post(
        analyzer: &Analyzer,
        id: usize,
        text: &str,
        author: &str,
        at: DateTime<Utc>,
    ) -> AnalyzedPost {
        let mut post = Post::for_test(&id.to_string(), text, at);
        post.author = Some(author.to_owned());
        post.lang = Some("en".into());
        AnalyzedPost {
            analysis: analyzer.analyze_post(&post),
            post,
        }
    }

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap()
    }

    /// Three days of one post a minute drawn from a fixed vocabulary by 50 accounts.
    fn flat_stream(analyzer: &Analyzer, days: i64) -> Vec<AnalyzedPost> {
        let vocabulary: Vec<String> = (0..300).map(|i| format!("topic{i}")).collect();
        let mut rng = Lcg(7);
        (0..days * 24 * 60)
            .map(|minute| {
                let words: Vec<&str> = (0..6)
                    .map(|_| vocabulary[rng.next(vocabulary.len())].as_str())
                    .collect();
                let author = format!("u{}", rng.next(50));
                post(
                    analyzer,
                    minute as usize,
                    &words.join(" "),
                    &author,
                    start() + Duration::minutes(minute),
                )
            })
            .collect()
    }

    /// The flat stream, then 60 posts in 40 minutes about a new event, interleaved.
    fn stream_with_burst(analyzer: &Analyzer, copies: bool) -> Vec<AnalyzedPost> {
        let mut posts = flat_stream(analyzer, 3);
        let burst_start = start() + Duration::days(3);
        // Organic posts tell the story in their own words.
        let words = [
            "explosion",
            "chemical",
            "plant",
            "residents",
            "inside",
            "smoke",
            "black",
            "city",
            "schools",
            "closed",
            "toxic",
            "cloud",
            "firefighters",
            "night",
            "prefecture",
            "windows",
            "warning",
            "river",
            "factory",
            "flames",
            "sirens",
            "roads",
            "wind",
            "masks",
            "asbestos",
            "roof",
            "evacuation",
            "hospital",
            "mayor",
            "photos",
        ];
        let mut rng = Lcg(11);
        for i in 0..60 {
            let at = burst_start + Duration::seconds(i * 40);
            let text = if copies {
                "SHARE NOW the rouen chemical plant fire was set on purpose #rouenfire".to_owned()
            } else {
                let story: Vec<&str> = (0..6).map(|_| words[rng.next(words.len())]).collect();
                format!("rouen {} #rouenfire", story.join(" "))
            };
            posts.push(post(
                analyzer,
                1_000_000 + i as usize,
                &text,
                &format!("b{i}"),
                at,
            ));
            let background = format!(
                "topic{} topic{} topic{}",
                rng.next(300),
                rng.next(300),
                rng.next(300)
            );
            posts.push(post(
                analyzer,
                2_000_000 + i as usize,
                &background,
                &format!("u{}", rng.next(50)),
                at,
            ));
        }
        posts
    }

    /// Returns the alerting storylines (their claims alert with them).
    fn alerting(narratives: &[Narrative]) -> Vec<&Narrative> {
        narratives
            .iter()
            .filter(|n| n.is_storyline() && n.severity >= Severity::Medium)
            .collect()
    }

    /// A busy stream from its first post: 2 posts a minute by 300 accounts, every post
    /// saying "today … near …" with words from a small vocabulary. On a cold start every
    /// one of those terms bursts against empty baselines; none of it is news.
    #[test]
    fn a_cold_start_on_a_busy_stream_raises_no_alert() {
        let analyzer = analyzer();
        let mut detector = Detector::new(small_config(), analyzer.clone()).unwrap();
        let vocabulary = [
            "city", "council", "meeting", "traffic", "weather", "football", "market", "school",
            "concert", "rain", "train", "museum", "park", "festival", "bakery", "library",
            "election", "budget", "hospital", "bridge",
        ];
        let mut rng = Lcg(11);
        let mut events = Vec::new();
        for i in 0..8 * 60 * 2 {
            let words: Vec<&str> = (0..4)
                .map(|_| vocabulary[rng.next(vocabulary.len())])
                .collect();
            let text = format!(
                "Today the {} and the {} near the {} {} {}",
                words[0],
                words[1],
                words[2],
                words[3],
                rng.next(1_000_000)
            );
            let author = format!("user{}", rng.next(300));
            let at = start() + Duration::seconds(30 * i as i64);
            events.extend(detector.observe(&post(&analyzer, i, &text, &author, at)));
        }
        let raised: Vec<String> = events
            .iter()
            .filter(|e| e.narrative.severity > Severity::Low)
            .map(|e| format!("{} {} {:?}", e.at, e.narrative.label, e.narrative.severity))
            .collect();
        assert!(raised.is_empty(), "cold-start alerts: {raised:?}");
    }

    #[test]
    fn a_flat_stream_raises_no_alert() {
        let analyzer = analyzer();
        let mut detector = Detector::new(small_config(), analyzer.clone()).unwrap();
        let mut events = Vec::new();
        for post in flat_stream(&analyzer, 3) {
            events.extend(detector.observe(&post));
        }
        assert!(alerting(&detector.narratives()).is_empty());
        assert!(events.iter().all(|e| e.narrative.severity == Severity::Low));
    }

    #[test]
    fn a_burst_after_a_flat_stream_is_one_narrative_and_none_before() {
        let analyzer = analyzer();
        let mut detector = Detector::new(small_config(), analyzer.clone()).unwrap();
        let posts = stream_with_burst(&analyzer, false);
        let burst_start = start() + Duration::days(3);
        let mut first_alert = None;
        for post in &posts {
            for event in detector.observe(post) {
                if event.narrative.severity >= Severity::Medium && first_alert.is_none() {
                    first_alert = Some(event);
                }
            }
        }
        let alert = first_alert.expect("the burst alerts");
        assert!(alert.at >= burst_start && alert.at < burst_start + Duration::minutes(20));
        let alerting = alerting(&detector.narratives())
            .into_iter()
            .cloned()
            .collect::<Vec<_>>();
        assert_eq!(alerting.len(), 1, "{alerting:#?}");
        let narrative = &alerting[0];
        assert!(
            narrative.hashtags.contains(&"rouenfire".to_owned()),
            "{narrative:#?}"
        );
        assert!(narrative.label.contains("rouen"));
        assert!(narrative.posts_total >= 50);
        assert!(narrative.growth_z >= 5.0 && narrative.distinct_authors >= 50);
        let members_from_burst = narrative
            .member_post_ids
            .iter()
            .filter(|id| {
                id.parse::<usize>().unwrap() >= 1_000_000
                    && id.parse::<usize>().unwrap() < 2_000_000
            })
            .count();
        assert!(members_from_burst as f64 >= 0.9 * narrative.member_post_ids.len() as f64);
        assert!(
            narrative.coordination.score < 0.3,
            "{:?}",
            narrative.coordination
        );
        assert!(!narrative.severity_reasons.is_empty());
    }

    #[test]
    fn near_duplicates_from_many_accounts_score_high_coordination() {
        let analyzer = analyzer();
        let mut detector = Detector::new(small_config(), analyzer.clone()).unwrap();
        for post in stream_with_burst(&analyzer, true) {
            detector.observe(&post);
        }
        let narratives = detector.narratives();
        let narrative = alerting(&narratives)[0];
        let evidence = &narrative.coordination;
        assert!(evidence.score > 0.6, "{evidence:#?}");
        assert!(evidence.near_duplicate_groups[0].distinct_authors >= 40);
        assert!(narrative.severity >= Severity::High);
    }

    fn final_narratives(posts: &[AnalyzedPost], tick_every: Option<Duration>) -> Vec<Narrative> {
        let mut detector = Detector::new(small_config(), analyzer()).unwrap();
        let mut next_tick = posts[0].post.created_at;
        for post in posts {
            if let Some(step) = tick_every {
                while next_tick < post.post.created_at {
                    detector.on_tick(next_tick);
                    next_tick += step;
                }
            }
            detector.observe(post);
        }
        detector.on_tick(posts.last().unwrap().post.created_at + Duration::hours(3));
        detector.narratives()
    }

    #[test]
    fn the_same_stream_gives_the_same_narratives_whatever_the_ticks() {
        let analyzer = analyzer();
        let posts = stream_with_burst(&analyzer, false);
        let without_ticks = final_narratives(&posts, None);
        assert!(!without_ticks.is_empty());
        assert_eq!(
            without_ticks,
            final_narratives(&posts, Some(Duration::seconds(17)))
        );
        assert_eq!(
            without_ticks,
            final_narratives(&posts, Some(Duration::minutes(45)))
        );
    }

    #[test]
    fn snapshot_restore_continue_equals_an_uninterrupted_run() {
        let analyzer = analyzer();
        let posts = stream_with_burst(&analyzer, true);
        let split = posts.len() - 70;
        let mut uninterrupted = Detector::new(small_config(), analyzer.clone()).unwrap();
        let mut events_uninterrupted = Vec::new();
        for post in &posts {
            events_uninterrupted.extend(uninterrupted.observe(post));
        }
        let mut first = Detector::new(small_config(), analyzer.clone()).unwrap();
        let mut events_resumed = Vec::new();
        for post in &posts[..split] {
            events_resumed.extend(first.observe(post));
        }
        let bytes = rmp_serde::to_vec_named(&first.snapshot()).unwrap();
        drop(first);
        let snapshot: DetectorSnapshot = rmp_serde::from_slice(&bytes).unwrap();
        let mut resumed = Detector::restore(small_config(), analyzer.clone(), snapshot).unwrap();
        for post in &posts[split..] {
            events_resumed.extend(resumed.observe(post));
        }
        assert_eq!(uninterrupted.narratives(), resumed.narratives());
        assert_eq!(events_uninterrupted, events_resumed);
        assert_eq!(uninterrupted.counters(), resumed.counters());

        let other_size = DetectorConfig {
            term_sketch_cells: 8192,
            ..small_config()
        };
        let snapshot = resumed.snapshot();
        assert!(matches!(
            Detector::restore(other_size, analyzer, snapshot),
            Err(DetectError::SnapshotMismatch { .. })
        ));
    }

    #[test]
    fn sketch_memory_stays_fixed_as_the_vocabulary_grows() {
        let analyzer = analyzer();
        let mut detector = Detector::new(small_config(), analyzer.clone()).unwrap();
        let fixed = detector.sketch_bytes();
        assert_eq!(fixed, 4 * (4096 + 16_384) * crate::sketch::CELL_BYTES);
        for i in 0..5000 {
            let text = format!("word{i} other{i} third{i} fourth{i}");
            detector.observe(&post(
                &analyzer,
                i,
                &text,
                "u",
                start() + Duration::seconds(i as i64),
            ));
        }
        assert_eq!(detector.sketch_bytes(), fixed);
        // Recent posts are bounded by two windows of event time and by count.
        assert!(detector.memory_bytes() < fixed + 5000 * 1024);
    }

    #[test]
    fn a_watchlist_match_raises_severity() {
        let analyzer = analyzer();
        let config = DetectorConfig {
            watchlists: vec![WatchEntry {
                name: "rouen".into(),
                query: Some("#rouenfire AND chemical".into()),
                domains: vec![],
                accounts: vec![],
            }],
            ..small_config()
        };
        let mut detector = Detector::new(config, analyzer.clone()).unwrap();
        for post in stream_with_burst(&analyzer, false) {
            detector.observe(&post);
        }
        let narratives = detector.narratives();
        let narrative = alerting(&narratives)[0];
        assert_eq!(narrative.watch_matches[0].watch, "rouen");
        assert!(narrative.severity >= Severity::High);
        assert!(detector.watchlists_mut().remove("rouen"));
    }

    #[test]
    fn late_posts_are_counted_at_the_latest_time() {
        let analyzer = analyzer();
        let mut detector = Detector::new(small_config(), analyzer.clone()).unwrap();
        detector.observe(&post(
            &analyzer,
            1,
            "one two three",
            "a",
            start() + Duration::hours(1),
        ));
        detector.observe(&post(&analyzer, 2, "one two three", "b", start()));
        assert_eq!(detector.counters().late_posts, 1);
        assert_eq!(detector.now(), Some(start() + Duration::hours(1)));
    }
}
