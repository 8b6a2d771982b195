//! The baseline: per-hashtag posts per window against an exact EWMA mean and variance,
//! alerting at z = (x − μ) / max(σ, 1) ≥ 3 with at least the detector's minimum posts.
//! What an analyst would write first; the detector's gain is measured against it.

use std::collections::{BTreeMap, VecDeque};

use vigie_detect::DetectorConfig;
use vigie_domain::{Severity, TokenKind};

use crate::metrics::Alert;
use crate::{EvalOptions, Labelled};

/// Significance at which a hashtag alerts.
const BASELINE_Z: f64 = 3.0;
/// Post ids an alert cites at most (the latest).
const MAX_CITED: usize = 500;

#[derive(Default)]
struct HashtagStats {
    window: i64,
    count: f64,
    mean: f64,
    variance: f64,
    above: bool,
    alerted: bool,
    posts: VecDeque<(i64, String)>,
}

/// Runs the baseline over the stream and returns its alerts.
pub(crate) fn run(
    labelled: &Labelled,
    config: &DetectorConfig,
    _options: &EvalOptions,
) -> Vec<Alert> {
    let window_secs = i64::from(config.window_secs);
    let alpha = 1.0
        - 0.5f64.powf(f64::from(config.window_secs) / f64::from(config.baseline_half_life_secs));
    let mut stats: BTreeMap<String, HashtagStats> = BTreeMap::new();
    let mut alerts = Vec::new();
    for (index, post) in labelled.posts.iter().enumerate() {
        let at = post.analyzed.post.created_at.timestamp();
        let window = at.div_euclid(window_secs);
        let mut tags: Vec<&str> = post
            .analyzed
            .analysis
            .terms_of(TokenKind::Hashtag)
            .collect();
        tags.sort_unstable();
        tags.dedup();
        for tag in tags {
            let entry = stats.entry(tag.to_owned()).or_insert_with(|| HashtagStats {
                window,
                ..HashtagStats::default()
            });
            while entry.window < window {
                // A burst continuing into the next window is the same alert.
                let closed_z = (entry.count - entry.mean) / entry.variance.sqrt().max(1.0);
                entry.above = entry.above && closed_z >= BASELINE_Z;
                let delta = entry.count - entry.mean;
                entry.mean += alpha * delta;
                entry.variance = (1.0 - alpha) * (entry.variance + alpha * delta * delta);
                entry.count = 0.0;
                entry.window += 1;
                if entry.mean < 1e-6 && entry.variance < 1e-6 {
                    entry.mean = 0.0;
                    entry.variance = 0.0;
                    entry.window = window;
                }
            }
            entry.count += 1.0;
            entry.posts.push_back((at, post.analyzed.post.id.clone()));
            while entry
                .posts
                .front()
                .is_some_and(|(t, _)| *t < window * window_secs)
            {
                entry.posts.pop_front();
            }
            while entry.posts.len() > MAX_CITED {
                entry.posts.pop_front();
            }
            let z = (entry.count - entry.mean) / entry.variance.sqrt().max(1.0);
            if !entry.above && z >= BASELINE_Z && entry.count >= config.alert_min_posts {
                entry.above = true;
                alerts.push(Alert {
                    key: format!("#{tag}"),
                    at: post.analyzed.post.created_at,
                    stream_index: index,
                    repeat: entry.alerted,
                    label: format!("#{tag}"),
                    headline: String::new(),
                    parent: None,
                    member_post_ids: entry.posts.iter().map(|(_, id)| id.clone()).collect(),
                    coordination: 0.0,
                    severity: Severity::Medium,
                });
                entry.alerted = true;
            }
        }
    }
    alerts
}
