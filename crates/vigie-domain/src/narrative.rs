//! What detection reports: narratives, the signals behind them and their severity.
//!
//! A [`Narrative`] is a story the detector saw emerge: the bursting terms that define it,
//! the posts that carry them, how fast it grows against its own baseline, who pushes it
//! and whether they look coordinated. A [`NarrativeEvent`] tells the alerting layer that a
//! narrative appeared, changed status or severity, absorbed another one or went quiet.
//! Every number carries its explanation, so an analyst can check why an alert fired.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::TokenKind;

/// A narrative's identifier: stable across updates, merges (the older id survives) and
/// revivals of the same story.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NarrativeId(pub u64);

impl fmt::Display for NarrativeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// Where a narrative is in its life, judged on its post rate at each window close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NarrativeStatus {
    /// Seen for the first time within the last two windows.
    Emerging,
    /// Its last window set a new peak rate and beat the window before.
    Growing,
    /// Its rate is below its peak but at least half of it.
    Peaking,
    /// Its rate fell under half its peak.
    Fading,
}

impl NarrativeStatus {
    /// Returns the status as a lowercase word, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            NarrativeStatus::Emerging => "emerging",
            NarrativeStatus::Growing => "growing",
            NarrativeStatus::Peaking => "peaking",
            NarrativeStatus::Fading => "fading",
        }
    }
}

/// How urgently a narrative needs an analyst; ordered from `Low` to `Critical`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A weak signal: tracked, not alerted on.
    #[default]
    Low,
    /// Significant growth with enough posts and accounts to be worth a look.
    Medium,
    /// Medium plus one aggravating signal (coordination, a watchlist match, wide reach).
    High,
    /// Medium plus two or more aggravating signals.
    Critical,
}

impl Severity {
    /// Returns the severity as a lowercase word, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Returns the next level up, saturating at `Critical`.
    pub fn raised(self) -> Severity {
        match self {
            Severity::Low => Severity::Medium,
            Severity::Medium => Severity::High,
            Severity::High | Severity::Critical => Severity::Critical,
        }
    }
}

/// One term of a narrative and the burst statistics that made it significant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermSignal {
    /// The term, as the analyzer produced it (a stem, a folded hashtag, a domain, …), or
    /// two terms joined by ` + ` for a co-occurring pair.
    pub term: String,
    /// What the term is (for a pair, the kind of its first term).
    pub kind: TokenKind,
    /// Largest significance seen: z = (x − max(μ, β)) / (σ + β), after SigniTrend.
    pub z: f64,
    /// Posts carrying the term in the sliding window when `z` was reached (x).
    pub posts_in_window: f64,
    /// The term's usual posts per window (EWMA μ) when `z` was reached.
    pub baseline_mean: f64,
    /// The standard deviation of that rate (√EWMVar σ) when `z` was reached.
    pub baseline_std: f64,
    /// Member posts of the narrative that carry the term.
    pub narrative_posts: u32,
}

/// Posts with near-identical text (estimated Jaccard similarity of word shingles at or
/// above the configured threshold) from distinct accounts within a short time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NearDuplicateGroup {
    /// Posts in the group.
    pub posts: u32,
    /// Distinct accounts that wrote them.
    pub distinct_authors: u32,
    /// Some of the accounts (bounded list).
    pub authors: Vec<String>,
    /// Some of the posts (bounded list).
    pub post_ids: Vec<String>,
    /// Earliest post time.
    pub first: DateTime<Utc>,
    /// Latest post time.
    pub last: DateTime<Utc>,
    /// The text of the group's first post, as a sample.
    pub sample_text: String,
}

/// One link pushed by several distinct accounts within the coordination interval
/// (CooRnet's "coordinated link sharing").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedLinkGroup {
    /// The normalised link.
    pub link: String,
    /// Posts carrying it within an interval.
    pub posts: u32,
    /// Distinct accounts that posted it within an interval.
    pub distinct_authors: u32,
    /// Some of the accounts (bounded list).
    pub authors: Vec<String>,
    /// Seconds between the first and the last of those posts.
    pub spread_secs: i64,
}

/// Why a narrative looks coordinated, or does not.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CoordinationEvidence {
    /// From 0 (organic) to 1 (clearly coordinated); shrunk towards 0 when few posts have
    /// a known author.
    pub score: f64,
    /// Member posts with a known author: the only ones coordination can be judged on.
    pub known_author_posts: u32,
    /// Share of those posts in a near-duplicate group spanning several accounts.
    pub near_duplicate_share: f64,
    /// Share of those posts carrying a link shared by several accounts within the
    /// coordination interval.
    pub shared_link_share: f64,
    /// Share of those posts written by accounts that acted together with the same other
    /// account in several near-duplicate groups or shared links (a small set of
    /// accounts bursting together, again and again).
    pub synchronized_account_share: f64,
    /// The largest near-duplicate groups (bounded list).
    pub near_duplicate_groups: Vec<NearDuplicateGroup>,
    /// The most shared links (bounded list).
    pub shared_links: Vec<SharedLinkGroup>,
    /// The most active accounts and their post counts (bounded list).
    pub top_accounts: Vec<(String, u32)>,
}

/// A watchlist entry a narrative's posts matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchMatch {
    /// The entry's name.
    pub watch: String,
    /// Member posts that matched it.
    pub posts: u32,
}

/// A post chosen to show what a narrative says: one per group of near-identical posts,
/// so that five representatives are five different texts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepresentativePost {
    /// The post shown.
    pub post_id: String,
    /// Its text (bounded sample).
    pub text: String,
    /// Its language (ISO 639-1, or `und`).
    pub lang: String,
    /// Member posts with near-identical text that it stands for, itself included ("×14").
    pub copies: u32,
}

/// A story the detector saw emerge; see the module docs.
///
/// Narratives come in two levels. A *storyline* (`parent` is `None`) is an event: a burst
/// of terms and the posts that carry them ("Hurricane Sandy"). A *claim* (`parent` is the
/// storyline's id) is what a group of the storyline's posts tells: the same image or link,
/// near-identical text, a shared phrase ("a shark swimming on a New Jersey highway"). A
/// post belongs to at most one storyline and to at most one of its claims.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Narrative {
    /// Stable identifier (storylines and claims share one id space).
    pub id: NarrativeId,
    /// The storyline a claim belongs to; `None` for a storyline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<NarrativeId>,
    /// A short human label: the top terms and hashtags, in their most frequent original
    /// spelling.
    pub label: String,
    /// A headline: the text of its most central post (bounded sample); empty if unknown.
    #[serde(default)]
    pub headline: String,
    /// The bursting terms that define the narrative, most carried first (bounded list).
    pub terms: Vec<TermSignal>,
    /// The most frequent hashtags of its posts, without `#` (bounded list).
    pub hashtags: Vec<String>,
    /// Event time of its earliest post.
    pub first_seen: DateTime<Utc>,
    /// Event time of its latest post.
    pub last_seen: DateTime<Utc>,
    /// Current status.
    pub status: NarrativeStatus,
    /// Current severity.
    pub severity: Severity,
    /// Why it has that severity, one sentence per signal.
    pub severity_reasons: Vec<String>,
    /// Member posts so far.
    pub posts_total: u64,
    /// Member posts in the sliding window (the current window plus the
    /// time-weighted remainder of the previous one).
    pub posts_in_window: f64,
    /// What its defining terms usually get per window (μ at creation).
    pub baseline_posts_per_window: f64,
    /// `posts_in_window` / max(baseline, β).
    pub growth_ratio: f64,
    /// Significance of `posts_in_window` against the baseline, SigniTrend's z.
    pub growth_z: f64,
    /// Distinct authors; a post without an author counts as its own author.
    pub distinct_authors: u32,
    /// Member posts without an author.
    pub anonymous_posts: u32,
    /// Sum of likes, shares and replies of its posts, where known.
    pub engagement: u64,
    /// Languages of its posts with their post counts, most frequent first.
    pub languages: Vec<(String, u32)>,
    /// Ids of its most recent member posts, oldest first (bounded list).
    pub member_post_ids: Vec<String>,
    /// Ids of its member posts in the sliding window, oldest first: the posts behind
    /// `posts_in_window` and `growth_z`, which an alert cites as its evidence (a subset
    /// of `member_post_ids`).
    #[serde(default)]
    pub window_post_ids: Vec<String>,
    /// Ids of posts that carry most of its terms (bounded list).
    pub representative_post_ids: Vec<String>,
    /// Representative posts, most central first, one per near-duplicate group (bounded
    /// list).
    #[serde(default)]
    pub representatives: Vec<RepresentativePost>,
    /// Coordination score and evidence.
    pub coordination: CoordinationEvidence,
    /// Watchlist entries its posts matched.
    pub watch_matches: Vec<WatchMatch>,
    /// Narratives merged into this one.
    pub merged_ids: Vec<NarrativeId>,
}

impl Narrative {
    /// Returns true for a storyline (an event), false for a claim inside one.
    pub fn is_storyline(&self) -> bool {
        self.parent.is_none()
    }
}

/// What happened to a narrative.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NarrativeEventKind {
    /// The narrative was created (or revived after going quiet).
    Created,
    /// A window closed with new posts in it.
    Updated,
    /// The status changed.
    StatusChanged {
        /// The previous status.
        from: NarrativeStatus,
    },
    /// The severity changed.
    SeverityChanged {
        /// The previous severity.
        from: Severity,
    },
    /// Another narrative was found to be the same story and absorbed.
    Merged {
        /// The absorbed narrative's id, which will not be reported again.
        absorbed: NarrativeId,
        /// Why the two were judged one story, in words.
        #[serde(default)]
        reason: String,
    },
    /// The narrative had no post for the idle period and is no longer tracked.
    Retired,
}

/// A change to a narrative, with the narrative as it is after the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NarrativeEvent {
    /// Event time at which it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: NarrativeEventKind,
    /// The narrative after the change.
    pub narrative: Narrative,
}
