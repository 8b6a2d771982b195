//! One tracked narrative's bookkeeping, and how it becomes the reported
//! [`vigie_domain::Narrative`]: counts per window, status, severity and its reasons.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vigie_domain::{
    Narrative, NarrativeId, NarrativeStatus, RepresentativePost, Severity, TermSignal, TokenKind,
    WatchMatch,
};

use crate::coordination::{CoordinationParams, CoordinationShares, CoordinationState};
use crate::detector::ClaimSeed;
use crate::evidence::{self, Candidate, SurfaceForms};
use crate::hashing::{term_hash, MINHASH_LEN};
use crate::sketch::{signitrend_z, Significance};
use crate::slow::SlowCounts;
use crate::DetectorConfig;

/// Most distinct authors remembered per narrative; the count saturates beyond.
const MAX_AUTHORS: usize = 50_000;
/// Most hashtags counted per narrative.
const MAX_HASHTAGS: usize = 64;
/// Representative posts shown.
const REPRESENTATIVES: usize = 5;
/// Member posts kept as evidence (candidate headlines and representatives), each
/// standing for its near-duplicates.
const MAX_EVIDENCE: usize = 16;
/// Words and hashtags in a label.
const LABEL_PARTS: usize = 6;

/// A term that defines a narrative.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct NarrativeTerm {
    pub hash: u64,
    pub kind: TokenKind,
    pub text: String,
    pub best: StoredSignificance,
    pub narrative_posts: u32,
}

/// A [`Significance`] in serialisable form.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredSignificance {
    pub z: f64,
    pub posts_in_window: f64,
    pub mean: f64,
    pub std: f64,
}

impl From<Significance> for StoredSignificance {
    fn from(s: Significance) -> Self {
        StoredSignificance {
            z: s.z,
            posts_in_window: s.posts_in_window,
            mean: s.mean,
            std: s.std,
        }
    }
}

/// What a member post brings to a narrative.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Membership<'a> {
    pub id: &'a str,
    pub at: i64,
    /// Window the post was counted in.
    pub window: u32,
    /// Slow window the post was counted in (`slow`).
    pub slow_window: u32,
    pub author: Option<u64>,
    pub lang: &'a str,
    pub hashtags: &'a [String],
    pub engagement: u64,
    pub watches: &'a [String],
    /// Hashes of the post's counted terms, sorted.
    pub terms: &'a [u64],
    /// The original spellings of `terms`, in the same order, separated by single spaces;
    /// empty when unknown (a post buffered by an older version).
    pub surfaces: &'a str,
    /// A bounded sample of its text.
    pub sample: &'a str,
    /// Its MinHash signature.
    pub signature: Option<&'a [u32; MINHASH_LEN]>,
}

/// Returns the most specific of these significances: the smallest usual rate, then the
/// highest z (see `NarrativeState::seed_baseline`).
pub(crate) fn most_specific(
    significances: impl Iterator<Item = StoredSignificance>,
) -> Option<StoredSignificance> {
    significances.min_by(|a, b| a.mean.total_cmp(&b.mean).then(b.z.total_cmp(&a.z)))
}

/// A narrative being tracked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct NarrativeState {
    pub id: NarrativeId,
    pub terms: Vec<NarrativeTerm>,
    pub first_seen: i64,
    pub last_seen: i64,
    /// Latest time its growth was significant (z ≥ `burst_z`).
    pub last_burst: i64,
    /// Window in which it was created or revived.
    pub born_window: u32,
    pub status: NarrativeStatus,
    pub severity: Severity,
    pub severity_reasons: Vec<String>,
    pub posts_total: u64,
    /// Window `window_posts` counts.
    pub window: u32,
    pub window_posts: f64,
    pub previous_window_posts: f64,
    pub peak_window_posts: f64,
    /// Posts of the last closed window.
    pub last_closed_posts: f64,
    /// Baseline of the signal that created it: posts per window its defining term
    /// usually gets.
    pub baseline: StoredSignificance,
    pub authors: BTreeSet<u64>,
    pub anonymous_posts: u32,
    pub engagement: u64,
    pub languages: BTreeMap<String, u32>,
    pub hashtags: BTreeMap<String, u32>,
    /// (window counted in, id) of the most recent member posts, oldest first.
    pub member_ids: VecDeque<(u32, String)>,
    /// Member posts kept as evidence, each standing for its near-duplicates (bounded).
    #[serde(default)]
    pub evidence: Vec<EvidencePost>,
    /// Original spellings of its terms and of its posts' hashtags (bounded).
    #[serde(default)]
    pub forms: SurfaceForms,
    pub coordination: CoordinationState,
    /// Coordination score, refreshed on a schedule (see `CoordinationRefresh`).
    pub coordination_score: f64,
    pub watch_matches: BTreeMap<String, u32>,
    pub merged_ids: Vec<NarrativeId>,
    /// Its counts on the slow (daily) scale.
    #[serde(default)]
    pub slow: SlowCounts,
    /// The claim that seeded it, when a claim spreading on its own did.
    #[serde(default)]
    pub claim_seed: Option<ClaimSeed>,
}

impl NarrativeState {
    /// Returns a new narrative seeded with its bursting terms.
    pub fn new(id: NarrativeId, terms: Vec<NarrativeTerm>, at: i64, window: u32) -> NarrativeState {
        let baseline = NarrativeState::seed_baseline(&terms);
        NarrativeState {
            id,
            terms,
            first_seen: at,
            last_seen: at,
            last_burst: at,
            born_window: window,
            status: NarrativeStatus::Emerging,
            severity: Severity::Low,
            severity_reasons: Vec::new(),
            posts_total: 0,
            window,
            window_posts: 0.0,
            previous_window_posts: 0.0,
            peak_window_posts: 0.0,
            last_closed_posts: 0.0,
            baseline,
            authors: BTreeSet::new(),
            anonymous_posts: 0,
            engagement: 0,
            languages: BTreeMap::new(),
            hashtags: BTreeMap::new(),
            member_ids: VecDeque::new(),
            evidence: Vec::new(),
            forms: SurfaceForms::default(),
            coordination: CoordinationState::default(),
            coordination_score: 0.0,
            watch_matches: BTreeMap::new(),
            merged_ids: Vec::new(),
            slow: SlowCounts::default(),
            claim_seed: None,
        }
    }

    /// Returns the baseline of a narrative seeded with `terms`: that of its most specific
    /// seed term (smallest usual rate, then highest z). The seeding post carries every
    /// seed term and back-filled posts at least two, so the narrative's usual rate is at
    /// most its rarest seed's; judging "putin #putindead" against the usual rate and
    /// variance of "putin" alone would hide the story behind the name's everyday noise.
    pub fn seed_baseline(terms: &[NarrativeTerm]) -> StoredSignificance {
        most_specific(terms.iter().map(|t| t.best))
            .expect("a narrative is seeded with at least one term")
    }

    /// Returns whether the sorted term hashes of a post hold one of the narrative's terms
    /// carried by at least `share` of its posts.
    pub fn characteristic_term_in(&self, post_terms: &[u64], share: f64) -> bool {
        self.terms.iter().any(|term| {
            f64::from(term.narrative_posts) >= share * self.posts_total as f64
                && post_terms.binary_search(&term.hash).is_ok()
        })
    }

    /// Returns whether the narrative has the term.
    pub fn has_term(&self, hash: u64) -> bool {
        self.terms.iter().any(|t| t.hash == hash)
    }

    /// Moves the narrative's window counts to `window`, closing the ones in between.
    /// Returns the posts of the last closed window when at least one closed.
    pub fn roll_to(&mut self, window: u32) -> Option<f64> {
        if window <= self.window {
            return None;
        }
        let closed = self.window_posts;
        self.previous_window_posts = if window == self.window + 1 {
            closed
        } else {
            0.0
        };
        self.window_posts = 0.0;
        self.window = window;
        Some(closed)
    }

    /// Adds a member post.
    pub fn add_member(&mut self, member: &Membership<'_>, config: &DetectorConfig) {
        self.posts_total += 1;
        // A back-filled post of the previous window counts there.
        if member.window >= self.window {
            self.window_posts += 1.0;
        } else if member.window + 1 == self.window {
            self.previous_window_posts += 1.0;
        }
        self.slow.add(member.slow_window);
        self.first_seen = self.first_seen.min(member.at);
        self.last_seen = self.last_seen.max(member.at);
        match member.author {
            Some(author) if self.authors.len() < MAX_AUTHORS => {
                self.authors.insert(author);
            }
            Some(_) => {}
            None => self.anonymous_posts += 1,
        }
        self.engagement += member.engagement;
        *self.languages.entry(member.lang.to_owned()).or_insert(0) += 1;
        for tag in member.hashtags {
            if let Some(count) = self.hashtags.get_mut(tag) {
                *count += 1;
            } else if self.hashtags.len() < MAX_HASHTAGS {
                self.hashtags.insert(tag.clone(), 1);
            }
        }
        for watch in member.watches {
            *self.watch_matches.entry(watch.clone()).or_insert(0) += 1;
        }
        let surfaces: Vec<&str> = member.surfaces.split(' ').collect();
        let surface = |index: usize| {
            (surfaces.len() == member.terms.len())
                .then(|| surfaces[index])
                .filter(|s| !s.is_empty())
        };
        for term in &mut self.terms {
            if let Ok(index) = member.terms.binary_search(&term.hash) {
                term.narrative_posts += 1;
                if let Some(spelling) = surface(index) {
                    self.forms.add(term.hash, spelling);
                }
            }
        }
        // Hashtags label a story too (see `view`): count their spellings.
        for tag in member.hashtags {
            let hash = term_hash(TokenKind::Hashtag, tag);
            if let Ok(index) = member.terms.binary_search(&hash) {
                if let Some(spelling) = surface(index) {
                    if !self.has_term(hash) {
                        self.forms.add(hash, spelling);
                    }
                }
            }
        }
        self.member_ids
            .push_back((member.window, member.id.to_owned()));
        while self.member_ids.len() > config.max_member_ids {
            self.member_ids.pop_front();
        }
        let incoming = Incoming {
            id: member.id,
            text: member.sample,
            lang: member.lang,
            at: member.at,
            signature: member.signature,
            key: std::borrow::Cow::Owned(evidence::normalized(member.sample)),
            terms: member.terms,
            hashtags: member.hashtags,
            copies: 1,
        };
        let profile = Profile {
            terms: &self.terms,
            hashtags: &self.hashtags,
            posts_total: self.posts_total,
        };
        add_evidence(
            &mut self.evidence,
            incoming,
            config.near_duplicate_jaccard,
            &profile,
        );
    }

    /// Returns the representative posts, most central first (see `centrality`), one
    /// per near-duplicate group of the evidence, with the member posts each stands for.
    pub fn representatives(&self, jaccard: f64) -> Vec<RepresentativePost> {
        let profile = Profile {
            terms: &self.terms,
            hashtags: &self.hashtags,
            posts_total: self.posts_total,
        };
        let candidates: Vec<Candidate<'_>> = self
            .evidence
            .iter()
            .map(|post| Candidate {
                id: &post.id,
                text: &post.text,
                lang: &post.lang,
                signature: post.signature.as_ref(),
                centrality: profile.centrality(post).value(),
            })
            .collect();
        let keys: Vec<String> = self.evidence.iter().map(|e| e.key.clone()).collect();
        evidence::groups_by_key(&candidates, &keys, jaccard)
            .into_iter()
            .take(REPRESENTATIVES)
            .map(|group| {
                let head = &self.evidence[group[0]];
                RepresentativePost {
                    post_id: head.id.clone(),
                    text: head.text.clone(),
                    lang: head.lang.clone(),
                    copies: group
                        .iter()
                        .map(|&i| self.evidence[i].copies)
                        .fold(0u32, u32::saturating_add),
                }
            })
            .collect()
    }

    /// Returns the label: the words and hashtags most of its posts carry, as they
    /// spell them.
    pub fn label(&self) -> String {
        let mut parts: Vec<(u32, f64, u64, &str, TokenKind)> = self
            .terms
            .iter()
            .map(|t| (t.narrative_posts, t.best.z, t.hash, t.text.as_str(), t.kind))
            .collect();
        // A hashtag that is also a term comes twice; `evidence::label` keeps the first.
        for (tag, posts) in &self.hashtags {
            let hash = term_hash(TokenKind::Hashtag, tag);
            parts.push((
                *posts,
                f64::NEG_INFINITY,
                hash,
                tag.as_str(),
                TokenKind::Hashtag,
            ));
        }
        // Stable: among equals, defining terms (in their order) before hashtags.
        parts.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)));
        let terms: Vec<(u64, &str, TokenKind)> = parts
            .into_iter()
            .map(|(_, _, hash, text, kind)| (hash, text, kind))
            .collect();
        evidence::label(&terms, &self.forms, LABEL_PARTS)
    }

    /// Forgets the evidence of a past episode (on revival); spellings stay valid.
    pub fn clear_evidence(&mut self) {
        self.evidence.clear();
    }

    /// Recomputes the coordination score after every post while the narrative is small
    /// and every tenth known-author post after that: the score moves slowly once there
    /// are many posts, and its cost grows with them.
    pub fn refresh_coordination(&mut self, params: &CoordinationParams) -> CoordinationShares {
        let shares = self.coordination.shares(params, self.cited_since(params));
        self.coordination_score = shares.score;
        shares
    }

    /// Returns the start of the window a report cites (`window_post_ids`: the previous
    /// and the current window), Unix seconds; coordination is judged on posts since then.
    pub fn cited_since(&self, params: &CoordinationParams) -> i64 {
        i64::from(self.window.saturating_sub(self.cited_windows(params) - 1)) * params.window_secs
    }

    /// Returns how many windows, the current one included, a report cites: two, the two
    /// slow windows' worth when its alert came from the slow scale, or back to the oldest
    /// post of the claim that seeded it.
    fn cited_windows(&self, params: &CoordinationParams) -> u32 {
        if self.slow.alerted {
            2 * params.windows_per_slow_window.max(1)
        } else if let Some(seed) = &self.claim_seed {
            seed.cited_windows
        } else {
            2
        }
    }

    /// Returns the known-author posts coordination has examined.
    pub fn coordination_known(&self) -> usize {
        self.coordination.len()
    }

    /// Returns the number of distinct authors, each anonymous post counting as one.
    pub fn distinct_authors(&self) -> u32 {
        self.authors.len() as u32 + self.anonymous_posts
    }

    /// Returns the posts in the sliding window ending at `elapsed` (0 to 1) into the
    /// current window.
    pub fn posts_in_window(&self, elapsed: f64) -> f64 {
        self.window_posts + self.previous_window_posts * (1.0 - elapsed.clamp(0.0, 1.0))
    }

    /// Returns the growth significance and ratio of the sliding window against the
    /// baseline of the narrative's defining term.
    pub fn growth(&self, elapsed: f64, bias: f64) -> (f64, f64) {
        let posts = self.posts_in_window(elapsed);
        let z = signitrend_z(posts, self.baseline.mean, self.baseline.std, bias);
        (z, posts / self.baseline.mean.max(bias))
    }

    /// Computes the severity the narrative's signals support now, with one reason per
    /// signal.
    ///
    /// The third value says whether only the slow scale (`slow`) supports an alert.
    pub fn assess(
        &self,
        elapsed: f64,
        slow_elapsed: f64,
        config: &DetectorConfig,
    ) -> (Severity, Vec<String>, bool) {
        let (z, ratio) = self.growth(elapsed, config.bias_posts);
        let posts = self.posts_in_window(elapsed);
        let authors = self.distinct_authors();
        let mut reasons = vec![format!(
            "growth z {z:.1}: {posts:.1} posts in the window against a usual {:.2} ± {:.2} ({ratio:.1}× baseline)",
            self.baseline.mean, self.baseline.std
        )];
        reasons.push(format!(
            "reach: {authors} distinct authors ({} posts without author), engagement {}",
            self.anonymous_posts, self.engagement
        ));
        let hourly = z >= config.alert_z
            && posts >= config.alert_min_posts
            && authors >= config.alert_min_authors;
        let slow = !hourly && self.slow_alert(slow_elapsed, config, &mut reasons);
        let base = hourly || slow || self.claim_seed_alert(&mut reasons);
        let mut severity = if base {
            Severity::Medium
        } else {
            reasons.push(format!(
                "below alert: needs z ≥ {}, ≥ {} posts in the window and ≥ {} authors",
                config.alert_z, config.alert_min_posts, config.alert_min_authors
            ));
            Severity::Low
        };
        if base && authors >= config.wide_reach_authors {
            severity = severity.raised();
            reasons.push(format!(
                "wide reach: {authors} authors ≥ {}",
                config.wide_reach_authors
            ));
        }
        if base && self.coordination_score >= config.coordination_high {
            severity = severity.raised();
            reasons.push(format!(
                "coordination {:.2} ≥ {}",
                self.coordination_score, config.coordination_high
            ));
        }
        if !self.watch_matches.is_empty() {
            severity = severity.raised();
            let matches: Vec<String> = self
                .watch_matches
                .iter()
                .map(|(name, posts)| format!("{name:?} ({posts} posts)"))
                .collect();
            reasons.push(format!("watchlist matched: {}", matches.join(", ")));
        }
        (severity, reasons, slow)
    }

    /// Updates the status at a window close from the closed window's posts; returns the
    /// previous status when it changed.
    pub fn close_window(&mut self, closed_posts: f64, new_window: u32) -> Option<NarrativeStatus> {
        let before = self.status;
        let age = new_window.saturating_sub(self.born_window);
        self.status = if age < 2 {
            NarrativeStatus::Emerging
        } else if closed_posts > self.last_closed_posts && closed_posts >= self.peak_window_posts {
            NarrativeStatus::Growing
        } else if closed_posts >= 0.5 * self.peak_window_posts {
            NarrativeStatus::Peaking
        } else {
            NarrativeStatus::Fading
        };
        self.peak_window_posts = self.peak_window_posts.max(closed_posts);
        self.last_closed_posts = closed_posts;
        (self.status != before).then_some(before)
    }

    /// Builds the reported narrative.
    pub fn view(
        &self,
        elapsed: f64,
        config: &DetectorConfig,
        params: &CoordinationParams,
    ) -> Narrative {
        let time = |at: i64| DateTime::<Utc>::from_timestamp(at, 0).unwrap_or_default();
        let mut terms = self.terms.clone();
        terms.sort_by(|a, b| {
            b.narrative_posts
                .cmp(&a.narrative_posts)
                .then(b.best.z.total_cmp(&a.best.z))
        });
        let mut hashtags: Vec<(&String, &u32)> = self.hashtags.iter().collect();
        hashtags.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let hashtags: Vec<String> = hashtags
            .into_iter()
            .take(10)
            .map(|(tag, _)| tag.clone())
            .collect();
        let representatives = self.representatives(config.near_duplicate_jaccard);
        let mut languages: Vec<(String, u32)> = self
            .languages
            .iter()
            .map(|(lang, posts)| (lang.clone(), *posts))
            .collect();
        languages.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let (growth_z, growth_ratio) = self.growth(elapsed, config.bias_posts);
        let mut coordination = self.coordination.evidence(params, self.cited_since(params));
        coordination.score = self.coordination_score;
        Narrative {
            id: self.id,
            parent: None,
            label: self.label(),
            headline: representatives
                .first()
                .map(|r| r.text.clone())
                .unwrap_or_default(),
            terms: terms
                .iter()
                .map(|t| TermSignal {
                    term: t.text.clone(),
                    kind: t.kind,
                    z: t.best.z,
                    posts_in_window: t.best.posts_in_window,
                    baseline_mean: t.best.mean,
                    baseline_std: t.best.std,
                    narrative_posts: t.narrative_posts,
                })
                .collect(),
            hashtags,
            first_seen: time(self.first_seen),
            last_seen: time(self.last_seen),
            status: self.status,
            severity: self.severity,
            severity_reasons: self.severity_reasons.clone(),
            posts_total: self.posts_total,
            posts_in_window: self.posts_in_window(elapsed),
            baseline_posts_per_window: self.baseline.mean,
            growth_ratio,
            growth_z,
            distinct_authors: self.distinct_authors(),
            anonymous_posts: self.anonymous_posts,
            engagement: self.engagement,
            languages,
            member_post_ids: self.member_ids.iter().map(|(_, id)| id.clone()).collect(),
            window_post_ids: self
                .member_ids
                .iter()
                .filter(|(window, _)| window + self.cited_windows(params) > self.window)
                .map(|(_, id)| id.clone())
                .collect(),
            representative_post_ids: representatives.iter().map(|r| r.post_id.clone()).collect(),
            representatives,
            coordination,
            watch_matches: self
                .watch_matches
                .iter()
                .map(|(watch, posts)| WatchMatch {
                    watch: watch.clone(),
                    posts: *posts,
                })
                .collect(),
            merged_ids: self.merged_ids.clone(),
        }
    }

    /// Absorbs another narrative found to be the same story.
    pub fn absorb(
        &mut self,
        other: NarrativeState,
        config: &DetectorConfig,
        params: &CoordinationParams,
    ) {
        for term in other.terms {
            if let Some(mine) = self.terms.iter_mut().find(|t| t.hash == term.hash) {
                mine.narrative_posts += term.narrative_posts;
                if term.best.z > mine.best.z {
                    mine.best = term.best;
                }
            } else if self.terms.len() < config.max_narrative_terms {
                self.terms.push(term);
            }
        }
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
        self.last_burst = self.last_burst.max(other.last_burst);
        self.posts_total += other.posts_total;
        if other.window == self.window {
            self.window_posts += other.window_posts;
            self.previous_window_posts += other.previous_window_posts;
        }
        self.slow.absorb(&other.slow);
        for author in other.authors {
            if self.authors.len() >= MAX_AUTHORS {
                break;
            }
            self.authors.insert(author);
        }
        self.anonymous_posts += other.anonymous_posts;
        self.engagement += other.engagement;
        for (lang, posts) in other.languages {
            *self.languages.entry(lang).or_insert(0) += posts;
        }
        for (tag, posts) in other.hashtags {
            if let Some(count) = self.hashtags.get_mut(&tag) {
                *count += posts;
            } else if self.hashtags.len() < MAX_HASHTAGS {
                self.hashtags.insert(tag, posts);
            }
        }
        self.member_ids.extend(other.member_ids);
        // Stable: ids of one window keep their order.
        self.member_ids
            .make_contiguous()
            .sort_by_key(|(window, _)| *window);
        while self.member_ids.len() > config.max_member_ids {
            self.member_ids.pop_front();
        }
        // After the terms and counts are merged, so centrality is the merged story's.
        let profile = Profile {
            terms: &self.terms,
            hashtags: &self.hashtags,
            posts_total: self.posts_total,
        };
        for post in &other.evidence {
            add_evidence(
                &mut self.evidence,
                Incoming::of(post),
                config.near_duplicate_jaccard,
                &profile,
            );
        }
        self.forms.absorb(&other.forms);
        self.coordination.absorb(other.coordination, params);
        self.coordination_score = self
            .coordination
            .shares(params, self.cited_since(params))
            .score;
        for (watch, posts) in other.watch_matches {
            *self.watch_matches.entry(watch).or_insert(0) += posts;
        }
        self.merged_ids.push(other.id);
        self.merged_ids.extend(other.merged_ids);
        self.severity = self.severity.max(other.severity);
    }

    /// Returns the bytes held, roughly, for the memory estimate.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.terms.len() * (std::mem::size_of::<NarrativeTerm>() + 16)
            + self.authors.len() * 16
            + self.member_ids.len() * 48
            + (self.languages.len() + self.hashtags.len()) * 48
            + self.coordination.memory_bytes()
            + self
                .evidence
                .iter()
                .map(|e| {
                    std::mem::size_of::<EvidencePost>()
                        + e.id.len()
                        + e.text.len()
                        + e.key.len()
                        + e.lang.len()
                        + e.terms.len() * 8
                        + e.hashtags.iter().map(|t| 24 + t.len()).sum::<usize>()
                })
                .sum::<usize>()
            + self.forms.memory_bytes()
    }
}

mod evidence_posts;
#[cfg(test)]
mod tests;

pub(crate) use evidence_posts::EvidencePost;
use evidence_posts::{add_evidence, Incoming, Profile};
