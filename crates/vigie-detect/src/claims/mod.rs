//! Claims: the narratives inside a storyline.
//!
//! A storyline (a burst of terms: "Hurricane Sandy") holds many claims ("a shark swimming
//! on a New Jersey highway", "the Statue of Liberty under a supercell"). Each storyline's
//! posts are grouped, in event-time order, by single-pass *leader clustering*: a post is a
//! sparse TF-IDF vector over its counted terms, full links and conversation anchor, with
//! document frequencies counted inside the storyline (so `sandy` weighs nothing inside the
//! Sandy storyline and `shark` a lot); it joins the claim whose centroid is most similar
//! when the cosine reaches `join_similarity`, otherwise it opens a new one. When a claim's
//! size reaches a power of two its centroid is compared with the others, and one at
//! `merge_similarity` or more is the same claim told in other words: the two merge, the
//! reported (else older) one keeping its id.
//!
//! docs/design/narratives.md measures this against linfa-clustering's DBSCAN/OPTICS and
//! linfa-hierarchical's average link on the labelled MediaEval claims: the density methods
//! split a claim into its groups of copies (recall 0.18–0.34), average link needs the whole
//! O(n²) distance matrix per run and re-matching of ids after each run (0.42–0.49); the
//! leader with merges reaches 0.55 at one sparse dot product per live centroid term and is
//! incremental, so ids are stable by construction. Hence no linfa here.
//!
//! A claim is *reported* (gets a [`NarrativeId`] and a [`NarrativeState`], the same
//! bookkeeping as a storyline: windows, status, authors, languages, coordination) once it
//! has `min_posts` members from `min_authors` authors over its life; claims accrue over
//! days, so its size is never limited to the sliding window. Until then its members wait in
//! a bounded list. Its severity follows its storyline's: `medium` (and raised by its own
//! coordination or watch matches) once the storyline alerts, so a claim is a child of an
//! alert, never a page of its own.
//!
//! Determinism: every choice depends only on the posts and their order (ties go to the
//! older claim; hash maps are only looked up, never iterated where order matters), so the
//! reorder buffer in front of the detector makes the claims the same on every replay.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use vigie_domain::{Narrative, NarrativeEvent, NarrativeEventKind, NarrativeId, TokenKind};

use vector::{add_sparse, dot, normalise, truncate_heaviest, DecayedCounts, Sparse};
pub(crate) use vector::{anchor, Anchor};

use crate::coordination::CoordinationParams;
use crate::detector::{add_member_post, CoordinationRefresh, RecentPost};
use crate::hashing::hash_bytes;
use crate::narrative::{NarrativeState, NarrativeTerm, StoredSignificance};
use crate::{ClaimConfig, DetectorConfig};

mod lifecycle;
mod merging;
mod seeding;
#[cfg(test)]
mod tests;
mod vector;

/// Seed of link hashes in claim vectors (terms use their kind's seed, 1–7).
const LINK_SEED: u64 = 11;
/// Weight of the conversation anchor relative to a term of the same document frequency:
/// a reply shares with its thread mostly the addressee, so the thread's root must count.
const ANCHOR_WEIGHT: f32 = 2.0;
/// Document frequencies kept; beyond it the rarest are forgotten.
const MAX_DF_TERMS: usize = 262_144;
/// Decayed document frequency (this post included) a term needs to count: another post
/// carried it within about one half-life.
const MIN_DF: f64 = 1.5;
/// Storylines whose member votes a cluster counts.
const MAX_VOTES: usize = 8;
/// Terms kept in a claim's running sum, per centroid term.
const SUM_TERMS_FACTOR: usize = 4;
/// Members a claim keeps as candidates for its headline and representatives.
const CANDIDATES: usize = 8;
/// Distinct authors a claim remembers before it is reported.
const MAX_PENDING_AUTHORS: usize = 64;
/// Posts between two sweeps for idle claims.
const SWEEP_EVERY: u64 = 64;
/// Identities (links, repost or reply roots) a cluster is found by.
const MAX_IDENTITIES: usize = 16;
/// Terms of a claim's centroid used as its defining terms (label, term list).
const CLAIM_TERMS: usize = 8;

/// What claims need from the detector while they change.
pub(crate) struct ClaimContext<'a> {
    pub config: &'a DetectorConfig,
    pub coordination: &'a CoordinationParams,
    /// The storylines tracked now: claims attach to them and follow their severity.
    pub storylines: &'a BTreeMap<NarrativeId, NarrativeState>,
    /// Event time now, Unix seconds, and how far into the current window (0 to 1).
    pub now: i64,
    pub elapsed: f64,
    pub window: u32,
    /// The detector's id counter (storylines and claims share one id space).
    pub next_id: &'a mut u64,
}

impl ClaimContext<'_> {
    fn claims(&self) -> &ClaimConfig {
        &self.config.claims
    }

    fn at(&self) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(self.now, 0).unwrap_or_default()
    }

    /// Returns the event `kind` of a reported cluster.
    fn event(&self, kind: NarrativeEventKind, cluster: &Cluster) -> Option<NarrativeEvent> {
        Some(NarrativeEvent {
            at: self.at(),
            kind,
            narrative: cluster.view(self.elapsed, self.config, self.coordination)?,
        })
    }
}

/// A member kept as a headline candidate, with its vector so that its centrality can be
/// judged against the centroid as it is now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Candidate {
    id: String,
    /// Its text (bounded sample).
    text: String,
    vector: Sparse,
}

/// One claim being formed or reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Cluster {
    /// Sum of the members' unit vectors (bounded to the heaviest terms), sorted by hash.
    sum: Sparse,
    /// The heaviest terms of `sum`, unit length, sorted by hash: what posts are scored on.
    centroid: Sparse,
    size: u32,
    /// The post count of the clustering when it last got a member.
    last_post: u64,
    /// Members waiting for the claim to be reported (bounded).
    pending: Vec<RecentPost>,
    /// Distinct authors of the members before the report (bounded); anonymous posts count
    /// as their own author.
    pending_authors: BTreeSet<u64>,
    pending_anonymous: u32,
    /// The most central members seen (bounded).
    candidates: Vec<Candidate>,
    /// The links and roots that lead to it (bounded; see `Claims::identities`).
    #[serde(default)]
    identities: Vec<u64>,
    /// Members per storyline (bounded): the claim belongs to the storyline most of its
    /// members joined.
    votes: BTreeMap<NarrativeId, u32>,
    parent: Option<NarrativeId>,
    /// The reported claim, once it qualifies.
    claim: Option<NarrativeState>,
}

impl Cluster {
    /// Returns the text of the member closest to the centroid: the claim's headline.
    fn headline(&self) -> Option<&str> {
        self.candidates
            .iter()
            .map(|c| (dot(&c.vector, &self.centroid), c))
            .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.id.cmp(&a.1.id)))
            .map(|(_, c)| c.text.as_str())
    }

    /// Builds the reported claim, when it is reported. A claim counts over its life, so
    /// the evidence it cites is all its (bounded) members.
    fn view(
        &self,
        elapsed: f64,
        config: &DetectorConfig,
        coordination: &CoordinationParams,
    ) -> Option<Narrative> {
        let claim = self.claim.as_ref()?;
        let mut view = claim.view(elapsed, config, coordination);
        view.parent = self.parent;
        view.window_post_ids = view.member_post_ids.clone();
        if let Some(headline) = self.headline() {
            view.headline = headline.to_owned();
        }
        Some(view)
    }

    fn authors(&self) -> u32 {
        match &self.claim {
            Some(claim) => claim.distinct_authors(),
            None => self.pending_authors.len() as u32 + self.pending_anonymous,
        }
    }

    /// Returns the storyline the claim belongs to: of the tracked storylines its members
    /// joined, the most severe (a claim told inside an alerting story is part of that
    /// story), then the one most members joined, then the older.
    fn elected(&self, storylines: &BTreeMap<NarrativeId, NarrativeState>) -> Option<NarrativeId> {
        self.votes
            .iter()
            .filter_map(|(id, votes)| storylines.get(id).map(|s| (s.severity, *votes, *id)))
            .max_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)).then(b.2.cmp(&a.2)))
            .map(|(_, _, id)| id)
    }
}

/// The claims of every storyline; see the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Claims {
    /// Posts clustered so far: the clock of idleness.
    posts: u64,
    /// Decayed document frequencies of terms, links and anchors (IDF of "now").
    df: DecayedCounts,
    /// Canonical text and kind of the terms seen, for labels (bounded).
    texts: FxHashMap<u64, (TokenKind, String)>,
    clusters: BTreeMap<u64, Cluster>,
    /// Term → (cluster, weight) of the centroids holding it, sorted by cluster: an
    /// inverted index of the centroids, so a post is scored against the clusters it
    /// shares a term with only.
    postings: FxHashMap<u64, Vec<(u64, f32)>>,
    /// Identity evidence → the cluster it belongs to: a full link or a repost/reply root
    /// seen in one cluster brings every later post carrying it to that cluster, whatever
    /// its words or language (shared links are 99% claim-pure on the MediaEval data).
    #[serde(default)]
    identities: FxHashMap<u64, u64>,
    next_key: u64,
}

impl Default for Claims {
    fn default() -> Self {
        Claims {
            posts: 0,
            df: DecayedCounts::new(),
            texts: FxHashMap::default(),
            clusters: BTreeMap::new(),
            postings: FxHashMap::default(),
            identities: FxHashMap::default(),
            next_key: 0,
        }
    }
}

impl Claims {
    /// Builds the reported claims, in id order.
    pub fn views(
        &self,
        elapsed: f64,
        config: &DetectorConfig,
        coordination: &CoordinationParams,
    ) -> Vec<Narrative> {
        let mut views: Vec<Narrative> = self
            .clusters
            .values()
            .filter_map(|c| c.view(elapsed, config, coordination))
            .collect();
        views.sort_by_key(|v| v.id);
        views
    }

    /// Clusters one post (see the module docs), counting a vote for the storyline it
    /// joined, if any; returns its cluster, if it has one.
    pub fn add(
        &mut self,
        post: &RecentPost,
        ctx: &mut ClaimContext<'_>,
        events: &mut Vec<NarrativeEvent>,
    ) -> Option<u64> {
        self.posts += 1;
        if self.texts.len() >= MAX_DF_TERMS {
            // Labels need the texts of terms still counted only.
            let df = &self.df.counts;
            self.texts.retain(|hash, _| df.contains_key(hash));
        }
        let vector = self.vector(post, ctx);
        if self.posts % SWEEP_EVERY == 0 {
            self.sweep(ctx, events);
        }
        let identities = identities_of(post);
        let key = match self.by_identity(&identities, ctx, events) {
            Some(key) => key,
            None => {
                if vector.is_empty() {
                    // Only terms no other recent post has: nothing to compare it on yet.
                    return None;
                }
                let best = self.nearest(&vector, None).filter(|(_, similarity)| {
                    f64::from(*similarity) >= ctx.claims().join_similarity
                });
                match best {
                    Some((key, _)) => key,
                    None => self.open(ctx, events),
                }
            }
        };
        self.join(key, post, &vector, ctx);
        self.register(key, &identities);
        let size = self.clusters[&key].size;
        let survivor = if size >= 2 && size.is_power_of_two() {
            self.try_merge(key, ctx, events)
        } else {
            key
        };
        if let Some(storyline) = post.narrative {
            self.vote(survivor, storyline, ctx, events);
        } else {
            self.report_if_due(survivor, ctx, events);
        }
        Some(survivor)
    }

    /// Counts a member of cluster `key` joining `storyline` (a post joins its storyline
    /// when it is observed, or later when a new storyline is back-filled with it).
    pub fn vote(
        &mut self,
        key: u64,
        storyline: NarrativeId,
        ctx: &mut ClaimContext<'_>,
        events: &mut Vec<NarrativeEvent>,
    ) {
        self.add_votes(key, storyline, 1, ctx, events);
    }

    /// Counts `count` members of cluster `key` joining `storyline` at once (a storyline
    /// seeded by the claim itself, `seeding`), then elects, reports and judges it.
    pub fn add_votes(
        &mut self,
        key: u64,
        storyline: NarrativeId,
        count: u32,
        ctx: &mut ClaimContext<'_>,
        events: &mut Vec<NarrativeEvent>,
    ) {
        let Some(cluster) = self.clusters.get_mut(&key) else {
            return;
        };
        if let Some(votes) = cluster.votes.get_mut(&storyline) {
            *votes += count;
        } else if cluster.votes.len() < MAX_VOTES {
            cluster.votes.insert(storyline, count);
        }
        self.elect(key, ctx, events);
        self.report_if_due(key, ctx, events);
        self.reassess(key, ctx, events);
    }

    /// Returns the cluster the post's identity evidence leads to; when it leads to
    /// several, they are one claim and merge first.
    fn by_identity(
        &mut self,
        identities: &[u64],
        ctx: &mut ClaimContext<'_>,
        events: &mut Vec<NarrativeEvent>,
    ) -> Option<u64> {
        let mut found: Vec<u64> = identities
            .iter()
            .filter_map(|hash| self.identities.get(hash).copied())
            .filter(|key| self.clusters.contains_key(key))
            .collect();
        found.sort_unstable();
        found.dedup();
        let rank = |claims: &Claims, k: u64| {
            let claim = claims.clusters[&k].claim.as_ref().map(|c| c.id);
            (claim.is_none(), claim, k)
        };
        found.sort_by_key(|k| rank(self, *k));
        let (&survivor, others) = found.split_first()?;
        for &other in others {
            let similarity = dot(
                &self.clusters[&other].centroid,
                &self.clusters[&survivor].centroid,
            );
            let size = self.clusters[&other].size;
            self.merge_because(
                survivor,
                other,
                format!(
                    "a post carried a link or a reposted post of both (their texts are {:.0}% similar) when one had {size} posts",
                    f64::from(similarity) * 100.0
                ),
                ctx,
                events,
            );
        }
        Some(survivor)
    }

    /// Records the post's identities for its cluster, where there is room.
    fn register(&mut self, key: u64, identities: &[u64]) {
        let Some(cluster) = self.clusters.get_mut(&key) else {
            return;
        };
        for hash in identities {
            let known = self.identities.get(hash).is_some_and(|owner| *owner == key);
            if known || cluster.identities.len() >= MAX_IDENTITIES {
                continue;
            }
            self.identities.insert(*hash, key);
            cluster.identities.push(*hash);
        }
    }

    /// Sets a cluster's storyline from its votes; a reported claim that changes storyline
    /// is reported again (`Updated`).
    fn elect(&mut self, key: u64, ctx: &ClaimContext<'_>, events: &mut Vec<NarrativeEvent>) {
        let Some(cluster) = self.clusters.get_mut(&key) else {
            return;
        };
        let elected = cluster.elected(ctx.storylines);
        if elected == cluster.parent {
            return;
        }
        cluster.parent = elected;
        if cluster.claim.is_some() && elected.is_some() {
            events.extend(ctx.event(NarrativeEventKind::Updated, cluster));
        }
    }

    /// Builds the post's unit vector and counts its terms in the document frequencies.
    fn vector(&mut self, post: &RecentPost, ctx: &ClaimContext<'_>) -> Sparse {
        let mut tokens: Vec<(u64, f32)> = post.terms.iter().map(|hash| (*hash, 1.0)).collect();
        tokens.extend(
            post.links
                .iter()
                .map(|link| (hash_bytes(LINK_SEED, link.as_bytes()), 1.0)),
        );
        if let Some(anchor) = post.anchor {
            tokens.push((anchor.hash, ANCHOR_WEIGHT));
        }
        tokens.sort_by_key(|(hash, _)| *hash);
        tokens.dedup_by_key(|(hash, _)| *hash);
        let hashes: Vec<u64> = tokens.iter().map(|(hash, _)| *hash).collect();
        let half_life = f64::from(ctx.claims().idf_half_life_secs.max(1));
        let (dfs, n) = self
            .df
            .add(&hashes, post.at.max(ctx.now), half_life, MAX_DF_TERMS);
        let mut vector: Sparse = Vec::with_capacity(tokens.len());
        for ((hash, factor), df) in tokens.into_iter().zip(dfs) {
            // A term no other recent post has tells nothing about which claim the post
            // shares (every t.co link is one), and would only dilute the norm.
            if df < MIN_DF {
                continue;
            }
            let idf = ((1.0 + n) / (1.0 + df)).ln() + 1.0;
            vector.push((hash, factor * idf as f32));
            // Only terms carried by several posts can name a claim.
            if let Ok(i) = post.terms.binary_search(&hash) {
                if let Some((kind, text)) = post.words.get(i) {
                    if self.texts.len() < MAX_DF_TERMS {
                        self.texts
                            .entry(hash)
                            .or_insert_with(|| (*kind, text.clone()));
                    }
                }
            }
        }
        normalise(&mut vector);
        vector
    }

    /// Returns the most similar cluster to a unit vector (other than `except`), with its
    /// cosine; ties go to the older cluster.
    fn nearest(&self, vector: &Sparse, except: Option<u64>) -> Option<(u64, f32)> {
        let mut scores: FxHashMap<u64, f32> = FxHashMap::default();
        for (hash, weight) in vector {
            let Some(entries) = self.postings.get(hash) else {
                continue;
            };
            for (key, centroid_weight) in entries {
                if Some(*key) != except {
                    *scores.entry(*key).or_insert(0.0) += weight * centroid_weight;
                }
            }
        }
        scores
            .into_iter()
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
    }

    /// Opens an empty cluster, making room first when there are too many.
    fn open(&mut self, ctx: &mut ClaimContext<'_>, events: &mut Vec<NarrativeEvent>) -> u64 {
        while self.clusters.len() >= ctx.claims().max_claims.max(1) {
            // The longest idle goes, unreported ones first.
            let oldest = self
                .clusters
                .iter()
                .min_by_key(|(key, c)| (c.claim.is_some(), c.last_post, **key))
                .map(|(key, _)| *key)
                .expect("the map is full, so not empty");
            if let Some(cluster) = self.forget(oldest) {
                events.extend(ctx.event(NarrativeEventKind::Retired, &cluster));
            }
        }
        let key = self.next_key;
        self.next_key += 1;
        self.clusters.insert(
            key,
            Cluster {
                sum: Vec::new(),
                centroid: Vec::new(),
                size: 0,
                last_post: self.posts,
                pending: Vec::new(),
                pending_authors: BTreeSet::new(),
                pending_anonymous: 0,
                candidates: Vec::new(),
                identities: Vec::new(),
                votes: BTreeMap::new(),
                parent: None,
                claim: None,
            },
        );
        key
    }

    /// Adds a post to a cluster: centroid, candidates, members.
    fn join(&mut self, key: u64, post: &RecentPost, vector: &Sparse, ctx: &ClaimContext<'_>) {
        let centroid_terms = ctx.claims().centroid_terms.max(1);
        let posts = self.posts;
        let cluster = self.clusters.get_mut(&key).expect("joined clusters exist");
        cluster.size += 1;
        cluster.last_post = posts;
        add_sparse(&mut cluster.sum, vector, 1.0);
        truncate_heaviest(&mut cluster.sum, SUM_TERMS_FACTOR * centroid_terms);
        keep_candidate(cluster, &post.id, &post.sample, vector);
        match &mut cluster.claim {
            Some(claim) => add_member_post(
                claim,
                post,
                ctx.config,
                ctx.coordination,
                CoordinationRefresh::Sparse,
            ),
            None => {
                match &post.author {
                    Some(author) if cluster.pending_authors.len() < MAX_PENDING_AUTHORS => {
                        cluster
                            .pending_authors
                            .insert(hash_bytes(9, author.as_bytes()));
                    }
                    Some(_) => {}
                    None => cluster.pending_anonymous += 1,
                }
                cluster.pending.push(post.member_copy());
                let cap = pending_cap(ctx.claims());
                if cluster.pending.len() > cap {
                    cluster.pending.remove(0);
                }
            }
        }
        self.refresh_centroid(key, centroid_terms);
    }

    /// Recomputes a cluster's centroid from its sum and updates the inverted index.
    fn refresh_centroid(&mut self, key: u64, centroid_terms: usize) {
        let cluster = self
            .clusters
            .get_mut(&key)
            .expect("refreshed clusters exist");
        let mut centroid = cluster.sum.clone();
        truncate_heaviest(&mut centroid, centroid_terms);
        normalise(&mut centroid);
        let old = std::mem::replace(&mut cluster.centroid, centroid);
        for (hash, _) in &old {
            if cluster
                .centroid
                .binary_search_by_key(hash, |(h, _)| *h)
                .is_err()
            {
                unpost(&mut self.postings, *hash, key);
            }
        }
        for (hash, weight) in &cluster.centroid {
            let entries = self.postings.entry(*hash).or_default();
            match entries.binary_search_by_key(&key, |(k, _)| *k) {
                Ok(i) => entries[i].1 = *weight,
                Err(i) => entries.insert(i, (key, *weight)),
            }
        }
    }

    /// Reports a cluster as a claim once it has enough members and authors and belongs
    /// to a storyline.
    fn report_if_due(
        &mut self,
        key: u64,
        ctx: &mut ClaimContext<'_>,
        events: &mut Vec<NarrativeEvent>,
    ) {
        let texts = &self.texts;
        let Some(cluster) = self.clusters.get_mut(&key) else {
            return;
        };
        if cluster.claim.is_some()
            || cluster.parent.is_none()
            || cluster.size < ctx.claims().min_posts
            || cluster.authors() < ctx.claims().min_authors
        {
            return;
        }
        let terms = defining_terms(texts, &cluster.centroid);
        if terms.is_empty() {
            // Only links, anchors and mentions in common: no words to name it by yet.
            return;
        }
        let id = NarrativeId(*ctx.next_id);
        *ctx.next_id += 1;
        let first = cluster
            .pending
            .iter()
            .map(|p| p.at)
            .min()
            .unwrap_or(ctx.now);
        let mut claim = NarrativeState::new(id, terms, first, ctx.window);
        for post in std::mem::take(&mut cluster.pending) {
            add_member_post(
                &mut claim,
                &post,
                ctx.config,
                ctx.coordination,
                CoordinationRefresh::Sparse,
            );
        }
        claim.refresh_coordination(ctx.coordination);
        cluster.pending_authors.clear();
        cluster.pending_anonymous = 0;
        cluster.claim = Some(claim);
        events.extend(ctx.event(NarrativeEventKind::Created, cluster));
        self.reassess(key, ctx, events);
    }

    /// Returns the bytes held, roughly.
    pub fn memory_bytes(&self) -> usize {
        let clusters: usize = self
            .clusters
            .values()
            .map(|c| {
                std::mem::size_of::<Cluster>()
                    + (c.sum.len() + c.centroid.len()) * 12
                    + c.pending.len() * 512
                    + c.pending_authors.len() * 16
                    + c.votes.len() * 24
                    + c.candidates
                        .iter()
                        .map(|x| 48 + x.text.len() + x.vector.len() * 12)
                        .sum::<usize>()
                    + c.claim.as_ref().map_or(0, NarrativeState::memory_bytes)
            })
            .sum();
        clusters
            + self.df.counts.len() * 24
            + self
                .texts
                .values()
                .map(|(_, t)| 40 + t.len())
                .sum::<usize>()
            + self
                .postings
                .values()
                .map(|v| 32 + v.len() * 12)
                .sum::<usize>()
    }
}

/// Returns the identity evidence of a post: its full links and its repost/reply root.
fn identities_of(post: &RecentPost) -> Vec<u64> {
    let mut identities: Vec<u64> = post
        .links
        .iter()
        .map(|link| hash_bytes(LINK_SEED, link.as_bytes()))
        .collect();
    if let Some(anchor) = post.anchor.filter(|a| a.root) {
        identities.push(anchor.hash);
    }
    identities
}

/// Returns the terms naming a claim: the heaviest of its centroid with a known text,
/// mentions left out, at most `CLAIM_TERMS`.
fn defining_terms(
    texts: &FxHashMap<u64, (TokenKind, String)>,
    centroid: &Sparse,
) -> Vec<NarrativeTerm> {
    let mut heaviest = centroid.clone();
    heaviest.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    heaviest
        .iter()
        .filter_map(|(hash, weight)| {
            texts.get(hash).map(|(kind, text)| NarrativeTerm {
                hash: *hash,
                kind: *kind,
                text: text.clone(),
                // Claim terms carry no burst of their own: z is the term's weight in
                // the centroid, the rest zero.
                best: StoredSignificance {
                    z: f64::from(*weight),
                    posts_in_window: 0.0,
                    mean: 0.0,
                    std: 0.0,
                },
                narrative_posts: 0,
            })
        })
        .filter(|term| term.kind != TokenKind::Mention)
        .take(CLAIM_TERMS)
        .collect()
}

/// Removes a cluster's entry from a term's postings.
fn unpost(postings: &mut FxHashMap<u64, Vec<(u64, f32)>>, hash: u64, key: u64) {
    if let Some(entries) = postings.get_mut(&hash) {
        if let Ok(i) = entries.binary_search_by_key(&key, |(k, _)| *k) {
            entries.remove(i);
        }
        if entries.is_empty() {
            postings.remove(&hash);
        }
    }
}

/// Members a cluster keeps while it is not reported.
/// (A claim that may seed a storyline keeps at least `seed_posts` of them.)
fn pending_cap(config: &ClaimConfig) -> usize {
    (2 * config.min_posts.clamp(1, 1_000)).max(config.seed_posts.min(1_000)) as usize
}

/// Keeps a member as a candidate when it is among the most central ones.
fn keep_candidate(cluster: &mut Cluster, id: &str, text: &str, vector: &Sparse) {
    if cluster.candidates.iter().any(|c| c.id == id) {
        return;
    }
    if cluster.candidates.len() >= CANDIDATES {
        // Full: the least central candidate (the newest among equals) makes room, unless
        // the newcomer is no more central, which then is not kept (nor copied).
        let centroid = &cluster.sum;
        let (worst, least) = cluster
            .candidates
            .iter()
            .enumerate()
            .map(|(i, c)| (i, dot(&c.vector, centroid)))
            .min_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            .expect("candidates are full, so not empty");
        if dot(vector, centroid).total_cmp(&least).is_le() {
            return;
        }
        cluster.candidates.remove(worst);
    }
    cluster.candidates.push(Candidate {
        id: id.to_owned(),
        text: text.to_owned(),
        vector: vector.clone(),
    });
}
