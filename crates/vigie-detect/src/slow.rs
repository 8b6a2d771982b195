//! The slow time scale: stories that trickle over days.
//!
//! The hourly windows judge a storyline by its posts of the last hour. Some stories never
//! burst within an hour: measured on `eval/mediaeval-dev-mixed`, the Sochi toilet photos
//! reach 15 posts in an hour at most (growth z below 5) but 136 in a day against a usual
//! zero. So terms are also counted per slow window (a day by default) in a significance
//! sketch of their own (terms only, no pairs), with a baseline of its own half-life, and
//! a storyline counts its members per slow window too: it reaches `medium` when that
//! growth, against the daily baseline of its most specific seed term, passes the same
//! `alert_z` with `slow.alert_min_posts` posts in the slow sliding window and
//! `alert_min_authors` authors. Its alert then cites the members of that window.
//!
//! A storyline whose posts mostly (`merge_bridge_share` of them) also carry terms of
//! another storyline already alerting is a side story of that one: it does not alert on
//! the slow scale (measured on PHEME, the Sydney siege gave three such side alerts, the
//! parent-level duplicates per event going from 1.78 to 2.11).
//!
//! Only the hourly scale decides what bursts, so storylines are grouped exactly as
//! without the slow scale (and claims with them). Letting daily bursts seed storylines and
//! draw posts to them was measured and dropped (design note §11): it split the claims
//! over more storylines (claim recall 83 → 70–79 of 190) for no further event.
//!
//! Slow windows count *active* windows only: a day that holds no post at all (an outage,
//! a gap between two replayed files) is not a day of silence, so it neither decays the
//! baselines nor makes every term new the day after.

use serde::{Deserialize, Serialize};

use crate::narrative::{most_specific, NarrativeState, StoredSignificance};
use crate::sketch::{signitrend_z, WindowPosition};
use crate::DetectorConfig;

/// Where event time is on the slow scale.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct SlowClock {
    /// Absolute slow window (Unix seconds / window length) of the latest post.
    day: Option<i64>,
    /// Slow windows that held posts before the latest one: the index the sketch and the
    /// narratives count in.
    active: u32,
}

impl SlowClock {
    /// Moves the clock to a post at `at`; returns whether a new slow window began.
    pub fn advance(&mut self, at: i64, window_secs: i64) -> bool {
        let day = at.div_euclid(window_secs.max(1));
        match self.day {
            Some(current) if day <= current => false,
            Some(_) => {
                self.day = Some(day);
                self.active = self.active.saturating_add(1);
                true
            }
            None => {
                self.day = Some(day);
                false
            }
        }
    }

    /// Returns the index of the current slow window.
    pub fn window(&self) -> u32 {
        self.active
    }

    /// Returns how far `at` is into the current slow window, 0 to 1.
    pub fn elapsed(&self, at: i64, window_secs: i64) -> f64 {
        let Some(day) = self.day else {
            return 0.0;
        };
        let start = day.saturating_mul(window_secs);
        ((at - start) as f64 / window_secs.max(1) as f64).clamp(0.0, 1.0)
    }

    /// Returns the sketch position of a post at `at`, with the start-up bias correction
    /// of `alpha` over the slow windows closed so far.
    pub fn position(&self, at: i64, window_secs: i64, alpha: f64) -> WindowPosition {
        WindowPosition {
            window: self.active,
            elapsed: self.elapsed(at, window_secs),
            warmth: 1.0 - (1.0 - alpha).powi(self.active.min(10_000) as i32),
        }
    }
}

/// A storyline's counts on the slow scale.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct SlowCounts {
    /// Slow window `posts` counts.
    pub window: u32,
    pub posts: f64,
    pub previous: f64,
    /// Daily baseline of its most specific seed term; `None` when the slow scale is off
    /// or the storyline predates it.
    pub baseline: Option<StoredSignificance>,
    /// Whether its alert came from the slow scale (then it cites the slow window).
    pub alerted: bool,
    /// Member posts that also carried a term of another storyline alerting then: a
    /// storyline mostly made of those is a side story of one already alerting, and does
    /// not alert on the slow scale.
    #[serde(default)]
    pub near_alerting: u32,
}

impl SlowCounts {
    /// Starts the counts of a storyline seeded with terms of these daily significances.
    pub fn seeded(window: u32, seeds: impl Iterator<Item = StoredSignificance>) -> SlowCounts {
        SlowCounts {
            window,
            posts: 0.0,
            previous: 0.0,
            baseline: most_specific(seeds),
            alerted: false,
            near_alerting: 0,
        }
    }

    /// Moves the counts to slow window `window`.
    pub fn roll_to(&mut self, window: u32) {
        if window <= self.window {
            return;
        }
        self.previous = if window == self.window + 1 {
            self.posts
        } else {
            0.0
        };
        self.posts = 0.0;
        self.window = window;
    }

    /// Counts a member post of slow window `window`.
    pub fn add(&mut self, window: u32) {
        self.roll_to(window);
        if window == self.window {
            self.posts += 1.0;
        } else if window + 1 == self.window {
            self.previous += 1.0;
        }
    }

    /// Returns the posts in the slow sliding window ending `elapsed` into the current
    /// slow window.
    pub fn posts_in_window(&self, elapsed: f64) -> f64 {
        self.posts + self.previous * (1.0 - elapsed.clamp(0.0, 1.0))
    }

    /// Returns the slow growth significance, ratio and posts, when there is a baseline.
    pub fn growth(&self, elapsed: f64, bias: f64) -> Option<(f64, f64, f64)> {
        let baseline = self.baseline?;
        let posts = self.posts_in_window(elapsed);
        let z = signitrend_z(posts, baseline.mean, baseline.std, bias);
        Some((z, posts / baseline.mean.max(bias), posts))
    }
}

impl SlowCounts {
    /// Adds the counts of a storyline merged into this one.
    pub fn absorb(&mut self, other: &SlowCounts) {
        let window = self.window.max(other.window);
        let mut other = other.clone();
        self.roll_to(window);
        other.roll_to(window);
        self.posts += other.posts;
        self.previous += other.previous;
        self.baseline = match (self.baseline, other.baseline) {
            (Some(a), Some(b)) => Some(if b.mean < a.mean { b } else { a }),
            (a, b) => a.or(b),
        };
        self.alerted |= other.alerted;
        self.near_alerting += other.near_alerting;
    }
}

impl NarrativeState {
    /// Returns whether the slow scale supports an alert now (growth z ≥ `alert_z`, at
    /// least `slow.alert_min_posts` posts in the slow window and `alert_min_authors`
    /// authors, and not a side story: see `SlowCounts::near_alerting`), and says why in
    /// `reasons` when it has a baseline.
    pub(crate) fn slow_alert(
        &self,
        elapsed: f64,
        config: &DetectorConfig,
        reasons: &mut Vec<String>,
    ) -> bool {
        let slow = &config.slow;
        if !slow.enabled {
            return false;
        }
        let Some((z, ratio, posts)) = self.slow.growth(elapsed, slow.bias_posts) else {
            return false;
        };
        let alerts = z >= config.alert_z
            && posts >= slow.alert_min_posts
            && self.distinct_authors() >= config.alert_min_authors;
        let baseline = self.slow.baseline.unwrap_or_default();
        reasons.push(format!(
            "slow growth z {z:.1}: {posts:.1} posts in the {} h window against a usual {:.2} ± {:.2} ({ratio:.1}× baseline){}",
            slow.window_secs / 3600,
            baseline.mean,
            baseline.std,
            if alerts { "" } else { ", below alert" }
        ));
        // The slow scale finds stories the hourly one missed, not a side story of one
        // that already alerts (measured on PHEME: three Sydney-siege side stories).
        let near = self.slow.near_alerting;
        if alerts && f64::from(near) >= config.merge_bridge_share * self.posts_total as f64 {
            reasons.push(format!(
                "slow growth not alerted: {near} of its posts also carry terms of an alerting storyline"
            ));
            return false;
        }
        alerts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn days_without_posts_are_not_counted() {
        let mut clock = SlowClock::default();
        assert!(!clock.advance(10 * DAY + 5, DAY));
        assert_eq!(clock.window(), 0);
        assert!(!clock.advance(10 * DAY + 500, DAY));
        assert!(clock.advance(11 * DAY, DAY));
        assert_eq!(clock.window(), 1);
        // Ninety silent days later: the next active day, not ninety windows on.
        assert!(clock.advance(102 * DAY + DAY / 2, DAY));
        assert_eq!(clock.window(), 2);
        assert!((clock.elapsed(102 * DAY + DAY / 2, DAY) - 0.5).abs() < 1e-9);
        assert!(
            !clock.advance(90 * DAY, DAY),
            "older times do not move it back"
        );
    }

    #[test]
    fn counts_slide_over_two_windows() {
        let seed = StoredSignificance {
            z: 4.0,
            posts_in_window: 12.0,
            mean: 0.0,
            std: 0.0,
        };
        let mut counts = SlowCounts::seeded(3, [seed].into_iter());
        for _ in 0..12 {
            counts.add(3);
        }
        counts.add(4);
        assert_eq!(counts.posts_in_window(0.5), 1.0 + 6.0);
        let (z, _, posts) = counts.growth(0.5, 1.0).expect("seeded");
        assert_eq!(posts, 7.0);
        assert!((z - 6.0).abs() < 1e-9);
        counts.roll_to(6);
        assert_eq!(counts.posts_in_window(0.0), 0.0);
        assert!(SlowCounts::default().growth(0.0, 1.0).is_none());
    }
}
