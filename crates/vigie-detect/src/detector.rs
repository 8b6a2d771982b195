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
    AnalyzedPost, Checkpoint, Narrative, NarrativeEvent, NarrativeId, QueryAnalyzer, TokenKind,
};

use crate::claims::{anchor, ClaimContext, Claims};
use crate::coordination::{sample, CoordinationParams};
use crate::features::{extract, PostFeatures};
use crate::hashing::{pair_hash, MINHASH_LEN};
use crate::narrative::NarrativeState;
use crate::sketch::{BaselineParams, Significance, SignificanceSketch, WindowPosition};
use crate::slow::{SlowClock, SlowCounts};
use crate::watchlist::{WatchEntry, Watchlists};
use crate::{DetectError, DetectorConfig};

mod claim_seeds;
mod grouping;
#[cfg(test)]
mod tests;
mod windows;

pub(crate) use claim_seeds::ClaimSeed;
pub(crate) use grouping::{add_member_post, CoordinationRefresh};

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
    /// Slow window it was counted in (`slow`).
    #[serde(default)]
    pub slow_window: u32,
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
            slow_window: self.slow_window,
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
    /// Terms counted per slow window (`slow`); `None` when the slow scale is off (and in
    /// snapshots older than it, which start it empty).
    #[serde(default)]
    slow_terms: Option<SignificanceSketch>,
    #[serde(default)]
    slow_clock: SlowClock,
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

/// The detector's state borrowed for writing: serializes exactly as a
/// [`DetectorSnapshot`] (same fields, same order, so it reads back as one) without the
/// deep copy [`Detector::snapshot`] makes. A snapshot written from a copy held the state
/// twice at each write: the Kafka path's peak memory.
#[derive(Debug, Serialize)]
#[serde(rename = "DetectorSnapshot")]
pub struct DetectorSnapshotRef<'a> {
    /// As [`DetectorSnapshot::checkpoint`].
    pub checkpoint: &'a Checkpoint,
    /// As [`DetectorSnapshot::watchlists`].
    pub watchlists: Vec<WatchEntry>,
    state: &'a DetectorState,
}

/// Detects emerging narratives in an event-time-ordered stream of analyzed posts; see
/// the module docs.
#[derive(Debug)]
pub struct Detector {
    config: DetectorConfig,
    watchlists: Watchlists,
    baseline: BaselineParams,
    /// The slow scale's baseline parameters.
    slow_baseline: BaselineParams,
    coordination: CoordinationParams,
    ignored: HashSet<String>,
    state: DetectorState,
    /// Claim events of the post being observed, reported after its storyline events.
    claim_events: Vec<NarrativeEvent>,
    /// The slow-scale significance of each term of the post being counted (a buffer).
    slow_scratch: Vec<Option<Significance>>,
}

/// A term found bursting in the current post.
#[derive(Debug, Clone)]
struct BurstingTerm {
    kind: TokenKind,
    text: String,
    significance: Significance,
    /// Its significance on the slow scale, when that is on.
    slow: Option<Significance>,
}

impl Detector {
    /// Builds a detector with empty baselines; fails on an invalid configuration or
    /// watchlist entry. The analyzer compiles watch queries.
    pub fn new(
        config: DetectorConfig,
        analyzer: Arc<dyn QueryAnalyzer>,
    ) -> Result<Detector, DetectError> {
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
            slow_terms: Detector::slow_sketch(&config),
            slow_clock: SlowClock::default(),
        };
        let watchlists = Watchlists::new(analyzer, &config.watchlists)?;
        Ok(Detector::assemble(config, watchlists, state))
    }

    /// Rebuilds a detector from a snapshot, with the snapshot's watchlists. Fails when the
    /// configuration's sketch dimensions differ from the snapshot's.
    pub fn restore(
        config: DetectorConfig,
        analyzer: Arc<dyn QueryAnalyzer>,
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
        let mut state = snapshot.state;
        let expected = Detector::slow_sketch(&config);
        match (&expected, &state.slow_terms) {
            (Some(fresh), Some(found)) if fresh.len() != found.len() => {
                return Err(DetectError::SnapshotMismatch {
                    expected: fresh.len(),
                    found: found.len(),
                })
            }
            // Turned on since the snapshot (or an older snapshot): starts empty; turned
            // off: forgotten.
            (Some(_), None) | (None, Some(_)) => state.slow_terms = expected,
            _ => {}
        }
        Ok(Detector::assemble(config, watchlists, state))
    }

    /// Returns the slow scale's term sketch, empty, when the configuration has it on.
    fn slow_sketch(config: &DetectorConfig) -> Option<SignificanceSketch> {
        config
            .slow
            .enabled
            .then(|| SignificanceSketch::new(config.sketch_hashes, config.term_sketch_cells))
    }

    fn assemble(config: DetectorConfig, watchlists: Watchlists, state: DetectorState) -> Detector {
        let baseline = BaselineParams::new(config.alpha(), config.bias_posts);
        let slow_baseline = BaselineParams::new(config.slow.alpha(), config.slow.bias_posts);
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
            slow_baseline,
            coordination,
            ignored,
            state,
            claim_events: Vec::new(),
            slow_scratch: Vec::new(),
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
        self.state.terms.memory_bytes()
            + self.state.pairs.memory_bytes()
            + self
                .state
                .slow_terms
                .as_ref()
                .map_or(0, SignificanceSketch::memory_bytes)
    }

    /// Captures the whole state; see [`DetectorSnapshot`].
    pub fn snapshot(&self) -> DetectorSnapshot {
        DetectorSnapshot {
            checkpoint: Checkpoint::new(),
            watchlists: self.watchlists.list(),
            state: self.state.clone(),
        }
    }

    /// Returns the state borrowed, covering `checkpoint`, to serialize in place (see
    /// [`DetectorSnapshotRef`]); it reads back with [`Detector::restore`] as a
    /// [`DetectorSnapshot`].
    pub fn snapshot_ref<'a>(&'a self, checkpoint: &'a Checkpoint) -> DetectorSnapshotRef<'a> {
        DetectorSnapshotRef {
            checkpoint,
            watchlists: self.watchlists.list(),
            state: &self.state,
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
        self.advance_slow(at);
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
            slow_window: self.state.slow_clock.window(),
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
        if let Some(key) = placed {
            self.seed_from_claim(key, &mut events);
        }
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
        let slow_secs = i64::from(self.config.slow.window_secs);
        let slow_position = self
            .state
            .slow_clock
            .position(at, slow_secs, self.slow_baseline.alpha);
        let mut bursting = BTreeMap::new();
        // Reused from post to post: the hot path allocates nothing for it.
        let mut slow_significances = std::mem::take(&mut self.slow_scratch);
        slow_significances.clear();
        for term in &features.terms {
            let significance = self
                .state
                .terms
                .observe(term.hash, position, &self.baseline);
            let slow = self
                .state
                .slow_terms
                .as_mut()
                .map(|sketch| sketch.observe(term.hash, slow_position, &self.slow_baseline));
            slow_significances.push(slow);
            // Only the hourly scale decides what bursts (what joins or seeds a
            // storyline); the slow one judges the storylines' growth (module `slow`).
            if significance.z >= self.config.burst_z {
                bursting.insert(
                    term.hash,
                    BurstingTerm {
                        kind: term.kind,
                        text: term.text.clone(),
                        significance,
                        slow,
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
                for (index, term) in [(a, first), (b, second)] {
                    bursting.entry(term.hash).or_insert_with(|| BurstingTerm {
                        kind: term.kind,
                        text: term.text.clone(),
                        significance,
                        slow: slow_significances[index],
                    });
                }
            }
        }
        self.slow_scratch = slow_significances;
        bursting
    }

    /// Moves the slow clock to a post at `at`; at the start of a slow window, every
    /// storyline's slow counts move there too.
    fn advance_slow(&mut self, at: i64) {
        if !self.config.slow.enabled {
            return;
        }
        let secs = i64::from(self.config.slow.window_secs);
        if self.state.slow_clock.advance(at, secs) {
            let window = self.state.slow_clock.window();
            for narrative in self.state.narratives.values_mut() {
                narrative.slow.roll_to(window);
            }
        }
    }

    /// Returns how far event time is into the current slow window, 0 to 1.
    fn slow_elapsed(&self) -> f64 {
        let secs = i64::from(self.config.slow.window_secs);
        self.state
            .slow_clock
            .elapsed(self.state.now.unwrap_or_default(), secs)
    }

    /// Starts the slow counts of a storyline seeded (or revived) with `seeds`.
    /// Before the slow baselines have learned `slow.warmup_windows` windows, it gets
    /// none: judged against nothing, every storyline of a cold start would look new.
    fn seed_slow(&self, seeds: &[(u64, &BurstingTerm)]) -> SlowCounts {
        let window = self.state.slow_clock.window();
        if window < self.config.slow.warmup_windows {
            return SlowCounts::seeded(window, std::iter::empty());
        }
        SlowCounts::seeded(
            window,
            seeds
                .iter()
                .filter_map(|(_, term)| term.slow.map(Into::into)),
        )
    }

    fn elapsed_at(&self, at: i64) -> f64 {
        let window_secs = i64::from(self.config.window_secs);
        let start = i64::from(self.state.window) * window_secs;
        ((at - start) as f64 / window_secs as f64).clamp(0.0, 1.0)
    }
}
