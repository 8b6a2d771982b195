//! The detector's configuration, read by the daemon from the `[detect]` table.

use serde::{Deserialize, Serialize};

use crate::watchlist::WatchEntry;
use crate::DetectError;

/// Most cells per hash function of a sketch (2^22): 8 hashes of this size already take
/// about a gigabyte.
pub const MAX_SKETCH_CELLS: u32 = 1 << 22;

/// Every knob of detection, with its unit. Defaults are principled rather than fitted:
/// an hour-long window (the scale at which newsrooms react), a half-day baseline
/// half-life, a significance of 3 standard deviations for a term and 5 for an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    /// Length of one statistics window, in seconds of event time. Term counts are
    /// compared per window; at each window close the baselines absorb the closed window.
    pub window_secs: u32,
    /// Half-life of the baselines (EWMA μ and EWMVar σ² per hashed cell), in seconds of
    /// event time; converted to a per-window weight α = 1 − 2^(−window/half-life).
    pub baseline_half_life_secs: u32,
    /// SigniTrend's bias β, in posts per window: the noise floor under which a term's
    /// baseline counts as β, so that the first sighting of a rare term scores
    /// (x − β) / β rather than infinity. 0.8 by default (chosen on MediaEval, checked on
    /// PHEME: docs/design/narratives.md §12).
    pub bias_posts: f64,
    /// Significance z above which a term or pair is bursting in a post's window.
    pub burst_z: f64,
    /// Hash functions per sketch (rows of the count-min-like tables).
    pub sketch_hashes: u32,
    /// Cells per hash function in the single-term sketch (rounded up to a power of two).
    pub term_sketch_cells: u32,
    /// Cells per hash function in the term-pair sketch (rounded up to a power of two).
    pub pair_sketch_cells: u32,
    /// Most terms of one post combined into pairs (hashtags first, then mentions,
    /// domains and words, in text order), bounding pairs per post to n(n−1)/2.
    pub max_pair_terms_per_post: usize,
    /// Terms never counted (folded form), such as the retweet marker `rt`.
    pub ignored_terms: Vec<String>,
    /// Most recent posts kept to back-fill a new narrative with the posts that made its
    /// terms burst (also bounded by two windows of event time).
    pub max_recent_posts: usize,
    /// Most narratives tracked at once; beyond it the longest idle one is retired.
    pub max_active_narratives: usize,
    /// Most defining terms per narrative.
    pub max_narrative_terms: usize,
    /// Most member post ids kept per narrative (the most recent ones).
    pub max_member_ids: usize,
    /// Seconds of event time without significant growth (narrative z ≥ `burst_z`) after
    /// which a narrative is retired; a later burst of its terms revives it.
    pub narrative_idle_secs: u32,
    /// Two narratives merge when at least this share of the smaller one's posts carried
    /// bursting terms of both (0 to 1).
    pub merge_bridge_share: f64,
    /// A new narrative revives a retired one (same id) when at least this share of its
    /// seed terms are among the retired one's terms (0 to 1).
    pub revive_term_share: f64,
    /// Seconds of event time after the first post during which no narrative rises above
    /// `low`: on a cold start every term bursts against empty baselines. Restored snapshots
    /// are already warm.
    pub warmup_secs: u32,
    /// Growth significance z a narrative needs to reach `medium` severity.
    pub alert_z: f64,
    /// Posts in the sliding window a narrative needs to reach `medium` severity.
    pub alert_min_posts: f64,
    /// Distinct authors a narrative needs to reach `medium` severity.
    pub alert_min_authors: u32,
    /// Distinct authors from which reach is wide enough to raise severity one level.
    pub wide_reach_authors: u32,
    /// Estimated Jaccard similarity of word shingles from which two posts are
    /// near-duplicates (0 to 1).
    pub near_duplicate_jaccard: f64,
    /// Seconds of event time within which two near-identical posts count as coordinated.
    pub near_duplicate_window_secs: u32,
    /// CooRnet's coordination interval: seconds within which distinct accounts posting
    /// the same link count as coordinated link sharing.
    pub coordination_interval_secs: u32,
    /// Distinct accounts a near-duplicate group or a shared link needs to count.
    pub coordination_min_accounts: u32,
    /// Near-duplicate groups or shared links two accounts must have in common to count
    /// as acting in sync.
    pub synchronized_min_groups: u32,
    /// Known-author posts at which the coordination score is shrunk by half towards 0
    /// (score × n / (n + this)), so that a few posts cannot look coordinated.
    pub coordination_prior_posts: f64,
    /// Coordination score from which severity is raised one level (0 to 1).
    pub coordination_high: f64,
    /// Standing queries and lists of domains or accounts; a match raises severity.
    pub watchlists: Vec<WatchEntry>,
    /// `[detect.claims]`: how a storyline's posts are grouped into claims.
    pub claims: ClaimConfig,
    /// `[detect.event_time]`: the watermark and the reorder buffer before detection.
    pub event_time: EventTimeConfig,
    /// `[detect.slow]`: the second, daily time scale for stories that trickle over days.
    pub slow: SlowScaleConfig,
}

/// The slow time scale (module `slow`): terms and storylines also counted per day
/// against baselines of their own, for stories that never burst within an hour.
/// `burst_z`, `alert_z` and `alert_min_authors` are shared with the hourly scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlowScaleConfig {
    /// Counts the slow scale at all; off, only the hourly windows detect.
    pub enabled: bool,
    /// Length of one slow window, seconds of event time; at least two `window_secs`.
    pub window_secs: u32,
    /// Half-life of the slow baselines, seconds of event time (active days only).
    pub baseline_half_life_secs: u32,
    /// SigniTrend's bias β for the slow scale, posts per slow window.
    pub bias_posts: f64,
    /// Posts in the slow sliding window a storyline needs to reach `medium` through it.
    pub alert_min_posts: f64,
    /// Active slow windows the slow baselines learn before they judge anything: a
    /// storyline started earlier has no slow baseline (on a cold start every term is new).
    pub warmup_windows: u32,
}

impl Default for SlowScaleConfig {
    fn default() -> Self {
        SlowScaleConfig {
            enabled: true,
            window_secs: 86_400,
            baseline_half_life_secs: 7 * 86_400,
            bias_posts: 4.0,
            alert_min_posts: 30.0,
            warmup_windows: 2,
        }
    }
}

impl SlowScaleConfig {
    /// Returns the per-slow-window EWMA weight.
    pub(crate) fn alpha(&self) -> f64 {
        ewma_weight(self.window_secs, self.baseline_half_life_secs)
    }

    /// Checks ranges against the hourly window.
    fn check(&self, window_secs: u32) -> Result<(), DetectError> {
        let invalid =
            |field: &'static str, reason: String| Err(DetectError::InvalidConfig { field, reason });
        if self.window_secs > 30 * 86_400 {
            return invalid(
                "slow.window_secs",
                "must be at most 2592000 (30 days)".into(),
            );
        }
        if u64::from(self.window_secs) < 2 * u64::from(window_secs) {
            return invalid(
                "slow.window_secs",
                format!(
                    "must be at least two windows (2 × window_secs = {})",
                    2 * u64::from(window_secs)
                ),
            );
        }
        if self.baseline_half_life_secs < self.window_secs
            || self.baseline_half_life_secs > 365 * 86_400
        {
            return invalid(
                "slow.baseline_half_life_secs",
                "must be between one slow window and 365 days".into(),
            );
        }
        if !(self.bias_posts > 0.0 && self.bias_posts <= 1e6) {
            return invalid(
                "slow.bias_posts",
                "must be above 0 and at most 1000000".into(),
            );
        }
        if self.warmup_windows > 365 {
            return invalid("slow.warmup_windows", "must be at most 365".into());
        }
        if !(self.alert_min_posts >= 0.0 && self.alert_min_posts <= 1e9) {
            return invalid("slow.alert_min_posts", "must be between 0 and 1e9".into());
        }
        Ok(())
    }
}

/// How posts are grouped into claims (the narratives inside storylines): single-pass
/// leader clustering of TF-IDF post vectors, with document frequencies that decay in event
/// time (what is common *now* weighs little), and centroid merges; a claim belongs to the
/// storyline most of its members joined (docs/design/narratives.md measures the method
/// against linfa's DBSCAN/OPTICS and average link).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimConfig {
    /// Groups posts into claims at all; off, storylines have no claims.
    pub enabled: bool,
    /// Cosine similarity (0 to 1) between a post and a claim's centroid from which the
    /// post joins the claim; below it for every claim, the post opens a new one.
    pub join_similarity: f64,
    /// Cosine similarity (0 to 1) between two centroids from which a claim that has just
    /// doubled in size is merged with the most similar other one.
    pub merge_similarity: f64,
    /// Members a claim needs over its life before it is reported (and may alert).
    pub min_posts: u32,
    /// Distinct authors a claim needs before it is reported (posts without an author
    /// count as their own author).
    pub min_authors: u32,
    /// Half-life of the document frequencies, in seconds of event time.
    pub idf_half_life_secs: u32,
    /// Posts (of the whole stream) after which a claim that got none is forgotten.
    pub idle_posts: u32,
    /// Most claims tracked, reported or forming (the longest idle is forgotten first).
    pub max_claims: usize,
    /// Heaviest terms kept in a claim's centroid.
    pub centroid_terms: usize,
    /// Members within `seed_span_secs`, from at least `alert_min_authors` authors, that
    /// make a claim none of whose members joined a storyline a storyline of its own,
    /// alerting (a claim spreading outside every trending story); 0 turns it off.
    pub seed_posts: u32,
    /// Seconds of event time within which a claim's `seed_posts` members must fall.
    pub seed_span_secs: u32,
}

impl Default for ClaimConfig {
    fn default() -> Self {
        ClaimConfig {
            enabled: true,
            join_similarity: 0.3,
            merge_similarity: 0.4,
            min_posts: 5,
            min_authors: 3,
            idf_half_life_secs: 24 * 3600,
            idle_posts: 20_000,
            max_claims: 8_192,
            centroid_terms: 32,
            seed_posts: 10,
            seed_span_secs: 12 * 3600,
        }
    }
}

impl ClaimConfig {
    /// Checks ranges and bounds.
    fn check(&self) -> Result<(), DetectError> {
        let invalid = |field: &'static str, reason: &str| {
            Err(DetectError::InvalidConfig {
                field,
                reason: reason.to_owned(),
            })
        };
        for (field, value) in [
            ("claims.join_similarity", self.join_similarity),
            ("claims.merge_similarity", self.merge_similarity),
        ] {
            if !(value > 0.0 && value <= 1.0) {
                return invalid(field, "must be above 0 and at most 1");
            }
        }
        for (field, value, min, max) in [
            ("claims.min_posts", u64::from(self.min_posts), 2, 10_000),
            ("claims.min_authors", u64::from(self.min_authors), 1, 10_000),
            (
                "claims.idf_half_life_secs",
                u64::from(self.idf_half_life_secs),
                60,
                365 * 86_400,
            ),
            (
                "claims.idle_posts",
                u64::from(self.idle_posts),
                1,
                100_000_000,
            ),
            ("claims.max_claims", self.max_claims as u64, 1, 1_000_000),
            ("claims.seed_posts", u64::from(self.seed_posts), 0, 1_000),
            (
                "claims.seed_span_secs",
                u64::from(self.seed_span_secs),
                60,
                30 * 86_400,
            ),
            (
                "claims.centroid_terms",
                self.centroid_terms as u64,
                1,
                1_024,
            ),
        ] {
            if value < min || value > max {
                return Err(DetectError::InvalidConfig {
                    field,
                    reason: format!("must be between {min} and {max}"),
                });
            }
        }
        Ok(())
    }
}

/// How event time advances before detection: a watermark that one outlier cannot drag,
/// the minimum over the partitions' own, and a bounded buffer that orders posts by event
/// time before the detector sees them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventTimeConfig {
    /// Seconds of out-of-orderness tolerated: a post is released to the detector once the
    /// watermark is more than this far past it, so posts up to this much out of order
    /// within a partition are detected in order (at most one day).
    pub out_of_order_secs: u32,
    /// Seconds ahead of its partition's watermark beyond which a post does not move the
    /// watermark until corroborated (positive, at most one year). Such posts are still
    /// indexed and detected; one that is never corroborated is counted at the current time.
    pub max_ahead_secs: u32,
    /// Posts ahead by more than `max_ahead_secs`, within `max_ahead_secs` of each other,
    /// that together corroborate a jump of event time (a gap in the stream); 1 to 1000,
    /// 1 letting any post move the watermark.
    pub corroborating_posts: u32,
    /// Most posts held in the reorder buffer (1 to 1,000,000); beyond it the oldest is
    /// released early. From a quarter of it, partitions read far ahead of the watermark
    /// are paused at the source. A snapshot holds the buffered posts.
    pub max_buffered_posts: usize,
}

impl EventTimeConfig {
    /// Checks the ranges serde cannot; [`DetectorConfig::check`] calls it.
    pub fn check(&self) -> Result<(), DetectError> {
        const DAY: u32 = 86_400;
        let invalid = |field: &'static str, reason: &str| {
            Err(DetectError::InvalidConfig {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.out_of_order_secs > DAY {
            return invalid(
                "event_time.out_of_order_secs",
                "must be at most 86400 (one day)",
            );
        }
        if self.max_ahead_secs == 0 {
            return invalid("event_time.max_ahead_secs", "must be positive");
        }
        if self.max_ahead_secs > 365 * DAY {
            return invalid(
                "event_time.max_ahead_secs",
                "must be at most 31536000 (one year)",
            );
        }
        if !(1..=1_000).contains(&self.corroborating_posts) {
            return invalid(
                "event_time.corroborating_posts",
                "must be between 1 and 1000 (1: any post ahead moves the watermark)",
            );
        }
        if !(1..=1_000_000).contains(&self.max_buffered_posts) {
            return invalid(
                "event_time.max_buffered_posts",
                "must be between 1 and 1000000",
            );
        }
        Ok(())
    }
}

impl Default for EventTimeConfig {
    fn default() -> Self {
        EventTimeConfig {
            out_of_order_secs: 60,
            max_ahead_secs: 6 * 3600,
            corroborating_posts: 3,
            max_buffered_posts: 50_000,
        }
    }
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            window_secs: 3600,
            baseline_half_life_secs: 12 * 3600,
            bias_posts: 0.8,
            burst_z: 3.0,
            sketch_hashes: 4,
            term_sketch_cells: 1 << 16,
            pair_sketch_cells: 1 << 18,
            max_pair_terms_per_post: 8,
            ignored_terms: ["rt", "via", "amp", "http", "https", "t.co"]
                .map(String::from)
                .to_vec(),
            max_recent_posts: 20_000,
            max_active_narratives: 512,
            max_narrative_terms: 24,
            max_member_ids: 500,
            narrative_idle_secs: 24 * 3600,
            merge_bridge_share: 0.2,
            revive_term_share: 0.5,
            warmup_secs: 2 * 3600,
            alert_z: 5.0,
            alert_min_posts: 10.0,
            alert_min_authors: 5,
            wide_reach_authors: 50,
            near_duplicate_jaccard: 0.8,
            near_duplicate_window_secs: 3600,
            coordination_interval_secs: 300,
            coordination_min_accounts: 3,
            synchronized_min_groups: 2,
            coordination_prior_posts: 10.0,
            coordination_high: 0.5,
            watchlists: Vec::new(),
            claims: ClaimConfig::default(),
            event_time: EventTimeConfig::default(),
            slow: SlowScaleConfig::default(),
        }
    }
}

impl DetectorConfig {
    /// Checks ranges that serde cannot; the daemon calls it when loading the file.
    pub fn check(&self) -> Result<(), DetectError> {
        fn invalid(field: &'static str, reason: &str) -> Result<(), DetectError> {
            Err(DetectError::InvalidConfig {
                field,
                reason: reason.to_owned(),
            })
        }
        // Bounds first, so that a huge value is named for itself rather than through a
        // rule it breaks as a consequence.
        self.check_bounds()?;
        self.claims.check()?;
        if self.window_secs == 0 {
            return invalid("window_secs", "must be positive");
        }
        if self.baseline_half_life_secs < self.window_secs {
            return invalid("baseline_half_life_secs", "must be at least one window");
        }
        if self.bias_posts.is_nan() || self.bias_posts <= 0.0 {
            return invalid("bias_posts", "must be positive");
        }
        if !(1..=8).contains(&self.sketch_hashes) {
            return invalid("sketch_hashes", "must be between 1 and 8");
        }
        if self.term_sketch_cells < 64 || self.pair_sketch_cells < 64 {
            return invalid("term_sketch_cells", "sketches need at least 64 cells");
        }
        for (field, value) in [
            ("merge_bridge_share", self.merge_bridge_share),
            ("revive_term_share", self.revive_term_share),
            ("near_duplicate_jaccard", self.near_duplicate_jaccard),
            ("coordination_high", self.coordination_high),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return invalid(field, "must be between 0 and 1");
            }
        }
        if self.max_active_narratives == 0 || self.max_narrative_terms == 0 {
            return invalid("max_active_narratives", "must be positive");
        }
        self.event_time.check()?;
        self.slow.check(self.window_secs)?;
        Ok(())
    }

    /// Upper bounds: every duration feeds time arithmetic and every count an allocation,
    /// so none may be large enough to overflow or exhaust memory.
    fn check_bounds(&self) -> Result<(), DetectError> {
        const DAY: u32 = 86_400;
        const YEAR: u32 = 365 * DAY;
        let too_big = |field: &'static str, max: String| {
            Err(DetectError::InvalidConfig {
                field,
                reason: format!("must be at most {max}"),
            })
        };
        for (field, value, max, what) in [
            ("window_secs", self.window_secs, 7 * DAY, "7 days"),
            (
                "baseline_half_life_secs",
                self.baseline_half_life_secs,
                YEAR,
                "one year",
            ),
            (
                "narrative_idle_secs",
                self.narrative_idle_secs,
                YEAR,
                "one year",
            ),
            ("warmup_secs", self.warmup_secs, YEAR, "one year"),
            (
                "near_duplicate_window_secs",
                self.near_duplicate_window_secs,
                YEAR,
                "one year",
            ),
            (
                "coordination_interval_secs",
                self.coordination_interval_secs,
                YEAR,
                "one year",
            ),
            (
                "term_sketch_cells",
                self.term_sketch_cells,
                MAX_SKETCH_CELLS,
                "4194304",
            ),
            (
                "pair_sketch_cells",
                self.pair_sketch_cells,
                MAX_SKETCH_CELLS,
                "4194304",
            ),
        ] {
            if value > max {
                return too_big(field, format!("{max} ({what})"));
            }
        }
        for (field, value, max) in [
            ("max_pair_terms_per_post", self.max_pair_terms_per_post, 64),
            ("max_recent_posts", self.max_recent_posts, 1_000_000),
            ("max_active_narratives", self.max_active_narratives, 100_000),
            ("max_narrative_terms", self.max_narrative_terms, 1_000),
            ("max_member_ids", self.max_member_ids, 100_000),
        ] {
            if value > max {
                return too_big(field, max.to_string());
            }
        }
        for (field, value) in [
            ("bias_posts", self.bias_posts),
            ("burst_z", self.burst_z),
            ("alert_z", self.alert_z),
            ("alert_min_posts", self.alert_min_posts),
            ("coordination_prior_posts", self.coordination_prior_posts),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(DetectError::InvalidConfig {
                    field,
                    reason: "must be a finite number, at least 0".to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Returns the baselines' per-window weight α from the half-life.
    pub(crate) fn alpha(&self) -> f64 {
        ewma_weight(self.window_secs, self.baseline_half_life_secs)
    }
}

/// Returns the per-window EWMA weight α = 1 − 2^(−window / half-life).
fn ewma_weight(window_secs: u32, half_life_secs: u32) -> f64 {
    1.0 - 0.5f64.powf(f64::from(window_secs) / f64::from(half_life_secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_the_check_and_alpha_follows_the_half_life() {
        let config = DetectorConfig::default();
        assert_eq!(config.check(), Ok(()));
        let config = DetectorConfig {
            window_secs: 3600,
            baseline_half_life_secs: 3600,
            ..DetectorConfig::default()
        };
        assert!((config.alpha() - 0.5).abs() < 1e-12);
    }

    /// Issue 12 (review): huge values are refused with the field named, not a panic.
    #[test]
    fn issue_12_huge_values_are_refused_by_name() {
        for field in [
            "window_secs",
            "baseline_half_life_secs",
            "narrative_idle_secs",
            "warmup_secs",
            "near_duplicate_window_secs",
            "coordination_interval_secs",
            "term_sketch_cells",
            "pair_sketch_cells",
            "max_pair_terms_per_post",
            "max_recent_posts",
            "max_active_narratives",
            "max_narrative_terms",
            "max_member_ids",
        ] {
            let mut value = serde_json::to_value(DetectorConfig::default()).unwrap();
            value[field] = if field.starts_with("max_") {
                serde_json::json!(u64::MAX)
            } else {
                serde_json::json!(u32::MAX)
            };
            let config: DetectorConfig = serde_json::from_value(value).unwrap();
            match config.check() {
                Err(DetectError::InvalidConfig { field: named, .. }) => {
                    assert_eq!(named, field);
                }
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    /// Issue 8 (slow scale): its window must hold at least two hourly windows.
    #[test]
    fn issue_8_the_slow_window_is_checked_against_the_window() {
        let mut config = DetectorConfig::default();
        config.slow.window_secs = 3600;
        match config.check() {
            Err(DetectError::InvalidConfig { field, .. }) => assert_eq!(field, "slow.window_secs"),
            other => panic!("{other:?}"),
        }
        config.slow.window_secs = 86_400;
        config.slow.bias_posts = f64::NAN;
        assert!(config.check().is_err());
        let parsed: DetectorConfig =
            serde_json::from_str(r#"{"slow": {"enabled": false, "alert_min_posts": 12.5}}"#)
                .unwrap();
        assert!(!parsed.slow.enabled && parsed.slow.alert_min_posts == 12.5);
        assert!(serde_json::from_str::<DetectorConfig>(r#"{"slow": {"window": 3}}"#).is_err());
    }

    #[test]
    fn unknown_fields_and_bad_values_are_rejected() {
        assert!(serde_json::from_str::<DetectorConfig>(r#"{"window": 3}"#).is_err());
        let config = DetectorConfig {
            bias_posts: 0.0,
            ..DetectorConfig::default()
        };
        assert!(config.check().is_err());
    }
}
