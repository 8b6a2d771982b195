//! The evaluation report: numbers as a struct (JSON) and as a text table.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;
use vigie_detect::DetectorConfig;

use crate::metrics::{Alert, CoordinationSummary, EventReport, MethodReport};
use crate::Labelled;

/// Formats one metric of a method for the table.
type MetricCell = Box<dyn Fn(&MethodReport) -> String>;

/// Recall and purity of one sweep run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepRow {
    /// Which parameter moved, and how (`burst_z × 0.8`).
    pub parameter: String,
    /// Event recall.
    pub event_recall: f64,
    /// Narrative recall.
    pub narrative_recall: f64,
    /// Alert purity.
    pub purity: f64,
    /// Duplicate alerts per detected event.
    pub duplicates_per_event: f64,
    /// Background alerts per stream-day.
    pub background_alerts_per_day: f64,
    /// The labelled event with the highest coordination score, and that score.
    pub max_event_coordination: Option<(String, f64)>,
    /// The focus hashtag's coordination score, when one is given.
    pub focus_coordination: Option<f64>,
}

/// When a given hashtag's campaign was first alerted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FocusReport {
    /// The hashtag, folded, without `#`.
    pub hashtag: String,
    /// Posts whose text mentions it.
    pub posts: usize,
    /// The first post mentioning it.
    pub first_post: Option<DateTime<Utc>>,
    /// The first alert whose narrative is about it (label or cited posts).
    pub first_alert: Option<DateTime<Utc>>,
    /// That alert's label.
    pub alert_label: Option<String>,
    /// Posts mentioning it observed before that alert.
    pub posts_before_alert: Option<usize>,
    /// The narrative's coordination score at the alert.
    pub coordination_at_alert: Option<f64>,
    /// The coordination of the narratives whose cited posts mostly mention it, judged on
    /// the most known-author posts.
    pub coordination_final: Option<CoordinationSummary>,
}

/// Everything an evaluation measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// Valid posts replayed.
    pub posts: usize,
    /// Lines the decoder rejected.
    pub rejected: u64,
    /// Posts with an event label.
    pub labelled_posts: usize,
    /// The detector's metrics.
    pub detector: MethodReport,
    /// The baseline's metrics.
    pub baseline: MethodReport,
    /// Detector event recall / baseline event recall (`None` when the baseline has none).
    pub recall_ratio: Option<f64>,
    /// Detector purity − baseline purity.
    pub purity_gain: f64,
    /// Per counted event, how the detector did.
    pub events: Vec<EventReport>,
    /// The ±20% sweep, when asked for.
    pub sweep: Vec<SweepRow>,
    /// The focus hashtag's first alert, when asked for.
    pub focus: Option<FocusReport>,
    /// The detector's memory at the end, bytes.
    pub memory_bytes: usize,
    /// Of which the fixed sketches, bytes.
    pub sketch_bytes: usize,
    /// Seconds spent reading and analyzing.
    pub load_secs: f64,
    /// Seconds spent in the detector (one replay).
    pub detect_secs: f64,
}

impl EvalReport {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        labelled: &Labelled,
        detector: MethodReport,
        baseline: MethodReport,
        events: Vec<EventReport>,
        sweep: Vec<SweepRow>,
        focus: Option<FocusReport>,
        memory_bytes: usize,
        sketch_bytes: usize,
        load_secs: f64,
        detect_secs: f64,
    ) -> EvalReport {
        EvalReport {
            posts: labelled.posts.len(),
            rejected: labelled.rejected,
            labelled_posts: labelled.posts.iter().filter(|p| p.event.is_some()).count(),
            recall_ratio: (baseline.event_recall > 0.0)
                .then(|| detector.event_recall / baseline.event_recall),
            purity_gain: detector.purity - baseline.purity,
            detector,
            baseline,
            events,
            sweep,
            focus,
            memory_bytes,
            sketch_bytes,
            load_secs,
            detect_secs,
        }
    }

    /// Formats the report as the text table `vigie eval` prints.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let minutes =
            |secs: Option<f64>| secs.map_or("-".to_owned(), |s| format!("{:.0} min", s / 60.0));
        let share =
            |value: Option<f64>| value.map_or("-".to_owned(), |v| format!("{:.1}%", v * 100.0));
        let _ = writeln!(
            out,
            "{} posts ({} labelled, {} rejected), detector {:.1} s, {:.0} posts/s, memory {:.1} MB (sketches {:.1} MB)",
            self.posts,
            self.labelled_posts,
            self.rejected,
            self.detect_secs,
            self.posts as f64 / self.detect_secs.max(1e-9),
            self.memory_bytes as f64 / 1e6,
            self.sketch_bytes as f64 / 1e6,
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<34} {:>16} {:>16}",
            "metric", self.detector.method, self.baseline.method
        );
        let rows: Vec<(&str, MetricCell)> = vec![
            ("alerts", Box::new(|m| m.alerts.to_string())),
            (
                "event recall",
                Box::new(|m| format!("{}/{} = {:.2}", m.events_detected, m.events, m.event_recall)),
            ),
            (
                "narrative recall",
                Box::new(|m| {
                    format!(
                        "{}/{} = {:.2}",
                        m.narratives_detected, m.narratives, m.narrative_recall
                    )
                }),
            ),
            ("alert purity", Box::new(|m| format!("{:.3}", m.purity))),
            (
                "duplicate alerts per event",
                Box::new(|m| format!("{:.2}", m.duplicates_per_event)),
            ),
            (
                "delay median",
                Box::new(move |m| minutes(m.delay_median_secs)),
            ),
            ("delay p90", Box::new(move |m| minutes(m.delay_p90_secs))),
            (
                "event posts seen before (median)",
                Box::new(move |m| share(m.seen_share_median)),
            ),
            (
                "background alerts per day",
                Box::new(|m| {
                    format!(
                        "{:.2} ({}/{} d)",
                        m.background_alerts_per_day, m.background_alerts, m.stream_days
                    )
                }),
            ),
        ];
        for (name, value) in &rows {
            let _ = writeln!(
                out,
                "{:<34} {:>16} {:>16}",
                name,
                value(&self.detector),
                value(&self.baseline)
            );
        }
        let _ = writeln!(
            out,
            "recall ratio detector/baseline: {}; purity gain {:+.3}",
            self.recall_ratio
                .map_or("∞ (baseline detects none)".to_owned(), |r| format!(
                    "{r:.2}×"
                )),
            self.purity_gain
        );
        if !self.events.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "{:<20} {:>6} {:>7} {:>9} {:>7}  coordination  first alert",
                "event", "posts", "alerts", "delay", "seen"
            );
            for event in &self.events {
                let _ = writeln!(
                    out,
                    "{:<20} {:>6} {:>7} {:>9} {:>7}  {}  {}",
                    event.event,
                    event.posts,
                    event.matching_alerts,
                    minutes(event.delay_secs),
                    share(event.seen_share),
                    event.coordination.map_or("-".to_owned(), |c| format!(
                        "{:.2} (n={} dup {:.2} link {:.2} sync {:.2})",
                        c.score,
                        c.known_author_posts,
                        c.near_duplicate_share,
                        c.shared_link_share,
                        c.synchronized_account_share
                    )),
                    event.first_alert_label.as_deref().unwrap_or("-"),
                );
            }
        }
        if let Some(focus) = &self.focus {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "#{}: {} posts from {}; first alert {} after {} of them; coordination {} at alert, {} final; label {:?}",
                focus.hashtag,
                focus.posts,
                focus.first_post.map_or("-".to_owned(), |t| t.to_rfc3339()),
                focus.first_alert.map_or("never".to_owned(), |t| t.to_rfc3339()),
                focus.posts_before_alert.map_or("-".to_owned(), |n| n.to_string()),
                focus.coordination_at_alert.map_or("-".to_owned(), |c| format!("{c:.2}")),
                focus.coordination_final.map_or("-".to_owned(), |c| format!(
                    "{:.2} (n={} dup {:.2} link {:.2} sync {:.2})",
                    c.score, c.known_author_posts, c.near_duplicate_share, c.shared_link_share, c.synchronized_account_share
                )),
                focus.alert_label.as_deref().unwrap_or("-"),
            );
        }
        if !self.sweep.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "{:<34} {:>8} {:>8} {:>8} {:>6} {:>8}  max event coord. / focus coord.",
                "sweep", "events", "narr.", "purity", "dup", "bg/day"
            );
            let _ = writeln!(
                out,
                "{:<34} {:>8.2} {:>8.2} {:>8.3} {:>6.2} {:>8.2}",
                "(configured)",
                self.detector.event_recall,
                self.detector.narrative_recall,
                self.detector.purity,
                self.detector.duplicates_per_event,
                self.detector.background_alerts_per_day
            );
            for row in &self.sweep {
                let _ = writeln!(
                    out,
                    "{:<34} {:>8.2} {:>8.2} {:>8.3} {:>6.2} {:>8.2}  {} / {}",
                    row.parameter,
                    row.event_recall,
                    row.narrative_recall,
                    row.purity,
                    row.duplicates_per_event,
                    row.background_alerts_per_day,
                    row.max_event_coordination
                        .as_ref()
                        .map_or("-".to_owned(), |(event, score)| format!(
                            "{score:.2} {event}"
                        )),
                    row.focus_coordination
                        .map_or("-".to_owned(), |score| format!("{score:.2}")),
                );
            }
        }
        out
    }
}

/// Returns the sweep's configurations: each main parameter at ×0.8 and ×1.2.
pub(crate) fn sweep_configs(base: &DetectorConfig) -> Vec<(String, DetectorConfig)> {
    let mut configs = Vec::new();
    for factor in [0.8, 1.2] {
        let scaled = |value: u32| (f64::from(value) * factor).round() as u32;
        let variants: Vec<(&str, DetectorConfig)> = vec![
            (
                "burst_z",
                DetectorConfig {
                    burst_z: base.burst_z * factor,
                    ..base.clone()
                },
            ),
            (
                "alert_z",
                DetectorConfig {
                    alert_z: base.alert_z * factor,
                    ..base.clone()
                },
            ),
            (
                "bias_posts",
                DetectorConfig {
                    bias_posts: base.bias_posts * factor,
                    ..base.clone()
                },
            ),
            (
                "window_secs",
                DetectorConfig {
                    window_secs: scaled(base.window_secs),
                    ..base.clone()
                },
            ),
            (
                "baseline_half_life_secs",
                DetectorConfig {
                    baseline_half_life_secs: scaled(base.baseline_half_life_secs),
                    ..base.clone()
                },
            ),
            (
                "alert_min_posts",
                DetectorConfig {
                    alert_min_posts: base.alert_min_posts * factor,
                    ..base.clone()
                },
            ),
            (
                "alert_min_authors",
                DetectorConfig {
                    alert_min_authors: scaled(base.alert_min_authors),
                    ..base.clone()
                },
            ),
            (
                "merge_bridge_share",
                DetectorConfig {
                    merge_bridge_share: (base.merge_bridge_share * factor).min(1.0),
                    ..base.clone()
                },
            ),
        ];
        for (name, config) in variants {
            configs.push((format!("{name} × {factor}"), config));
        }
    }
    configs
}

/// Finds the first alert about a hashtag and how many posts mentioning it came before.
pub(crate) fn focus(
    hashtag: &str,
    labelled: &Labelled,
    alerts: &[Alert],
    coordination: &BTreeMap<String, CoordinationSummary>,
) -> FocusReport {
    let needle = hashtag.trim_start_matches('#').to_lowercase();
    let mentions: Vec<usize> = labelled
        .posts
        .iter()
        .enumerate()
        .filter(|(_, p)| p.analyzed.post.text.to_lowercase().contains(&needle))
        .map(|(i, _)| i)
        .collect();
    let mentioning: std::collections::HashSet<&str> = mentions
        .iter()
        .map(|&i| labelled.posts[i].analyzed.post.id.as_str())
        .collect();
    let alert = alerts.iter().find(|alert| {
        let cited = alert
            .member_post_ids
            .iter()
            .filter(|id| mentioning.contains(id.as_str()))
            .count();
        alert.label.to_lowercase().contains(&needle)
            || 2 * cited >= alert.member_post_ids.len().max(1)
    });
    FocusReport {
        hashtag: needle.clone(),
        posts: mentions.len(),
        first_post: mentions
            .first()
            .map(|&i| labelled.posts[i].analyzed.post.created_at),
        first_alert: alert.map(|a| a.at),
        alert_label: alert.map(|a| a.label.clone()),
        posts_before_alert: alert.map(|a| mentions.partition_point(|&i| i < a.stream_index)),
        coordination_at_alert: alert.map(|a| a.coordination),
        coordination_final: coordination.get(&format!("#{needle}")).copied(),
    }
}
