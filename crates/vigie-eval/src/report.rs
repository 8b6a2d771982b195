//! The evaluation report: numbers as a struct (JSON) and as a text table.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::claims::NarrativeLevelReport;
use crate::metrics::{Alert, CoordinationSummary, EventReport, MethodReport};
use crate::sweep::{SweepRow, SweepWorst};
use crate::Labelled;

/// Formats one metric of a method for the table.
type MetricCell = Box<dyn Fn(&MethodReport) -> String>;

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
    /// The detector's storyline level: alerts of storylines (narratives without a
    /// parent) only.
    pub detector: MethodReport,
    /// The detector's narrative (claim) level: alerts of claims (narratives with a
    /// parent), cross-language joins and the largest claims.
    pub narratives: NarrativeLevelReport,
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
    /// The worst relative change of each level's recall over the sweep.
    pub sweep_worst: SweepWorst,
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
    /// Every alert of the main replay (storylines, then claims, each in stream order),
    /// for `vigie eval --alerts-out`: what a change that must not alter detection is
    /// checked against (`scripts/same-alerts.sh`). Not part of the JSON report.
    #[serde(skip)]
    pub alerts: Vec<Alert>,
}

impl EvalReport {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        labelled: &Labelled,
        detector: MethodReport,
        narratives: NarrativeLevelReport,
        baseline: MethodReport,
        events: Vec<EventReport>,
        sweep: Vec<SweepRow>,
        sweep_worst: SweepWorst,
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
            narratives,
            baseline,
            events,
            sweep,
            sweep_worst,
            focus,
            memory_bytes,
            sketch_bytes,
            load_secs,
            detect_secs,
            alerts: Vec::new(),
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
            "STORYLINE LEVEL (storyline alerts)", self.detector.method, self.baseline.method
        );
        let rows: Vec<(&str, MetricCell)> = vec![
            ("alerts", Box::new(|m| m.alerts.to_string())),
            (
                "event recall",
                Box::new(|m| format!("{}/{} = {:.2}", m.events_detected, m.events, m.event_recall)),
            ),
            (
                "narrative recall (these alerts)",
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
        self.narrative_table(&mut out);
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
        self.sweep_table(&mut out);
        out
    }

    /// Appends the narrative (claim) level: its metrics, cross-language joins and the
    /// largest claims.
    fn narrative_table(&self, out: &mut String) {
        let n = &self.narratives;
        let minutes =
            |secs: Option<f64>| secs.map_or("-".to_owned(), |s| format!("{:.0} min", s / 60.0));
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<34} {:>16}",
            "NARRATIVE (CLAIM) LEVEL", "claim alerts"
        );
        let rows = [
            ("alerts", n.alerts.to_string()),
            (
                "narrative recall",
                format!(
                    "{}/{} = {:.2}",
                    n.narratives_detected, n.narratives, n.narrative_recall
                ),
            ),
            (
                "narrative recall (any alert)",
                format!(
                    "{}/{} = {:.2}",
                    n.narratives_detected_any_level, n.narratives, n.narrative_recall_any_level
                ),
            ),
            (
                "duplicates per recalled narrative",
                format!("{:.2}", n.duplicates_per_narrative),
            ),
            (
                "alert purity (claim / event)",
                format!("{:.3} / {:.3}", n.purity, n.event_purity),
            ),
            ("delay median", minutes(n.delay_median_secs)),
            (
                "background alerts per day",
                format!(
                    "{:.2} ({}/{} d)",
                    n.background_alerts_per_day, n.background_alerts, self.detector.stream_days
                ),
            ),
            (
                "cross-language joins",
                format!(
                    "{}/{} = {:.2}",
                    n.cross_language.joined, n.cross_language.narratives, n.cross_language.share
                ),
            ),
        ];
        for (name, value) in rows {
            let _ = writeln!(out, "{name:<34} {value:>16}");
        }
        let _ = writeln!(
            out,
            "(cross-language: claims with >= 3 posts and >= 10% of their posts in each of >= 2 languages, \
             joined when one matching claim alert cites them in >= 2 of those languages)"
        );
        if n.largest.is_empty() {
            return;
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<24} {:>6} {:<28} {:<10} {:>9} {:>9}  narrative label | headline",
            "largest claims", "posts", "languages", "matched", "narrative", "delay"
        );
        for row in &n.largest {
            let mut languages = row
                .languages
                .iter()
                .take(3)
                .map(|(lang, count)| format!("{lang} {count}"))
                .collect::<Vec<_>>()
                .join(", ");
            if row.languages.len() > 3 {
                let _ = write!(languages, " +{}", row.languages.len() - 3);
            }
            let matched = match (row.matched, row.matched_any_level) {
                (true, _) => format!(
                    "yes ×{}{}",
                    row.matching_alerts,
                    if row.joined_languages { " xl" } else { "" }
                ),
                (false, true) => "story".to_owned(),
                (false, false) => "no".to_owned(),
            };
            let _ = writeln!(
                out,
                "{:<24} {:>6} {:<28} {:<10} {:>9} {:>9}  {} | {}",
                clip(&row.narrative, 24),
                row.posts,
                clip(&languages, 28),
                matched,
                row.narrative_id.as_deref().unwrap_or("-"),
                minutes(row.delay_secs),
                clip(row.narrative_label.as_deref().unwrap_or("-"), 40),
                clip(row.headline.as_deref().unwrap_or("-"), 60),
            );
        }
        let _ = writeln!(
            out,
            "(matched: yes ×N matching claim alerts, xl = joined across languages; story = only a storyline alert matched)"
        );
    }

    /// Appends the sweep, both levels per row, and the worst change of each level.
    fn sweep_table(&self, out: &mut String) {
        if self.sweep.is_empty() {
            return;
        }
        let change = |c: Option<f64>| c.map_or("n/a".to_owned(), |c| format!("{:+.0}%", c * 100.0));
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<34} {:>7} {:>6} {:>7} {:>6} {:>6} {:>7} {:>6} {:>6} {:>7}  max event coord. / focus coord.",
            "sweep", "events", "Δ", "narr.", "Δ", "any", "purity", "dup", "dup/n", "bg/day"
        );
        let _ = writeln!(
            out,
            "{:<34} {:>7.2} {:>6} {:>7.2} {:>6} {:>6.2} {:>7.3} {:>6.2} {:>6.2} {:>7.2}",
            "(configured)",
            self.detector.event_recall,
            "",
            self.narratives.narrative_recall,
            "",
            self.narratives.narrative_recall_any_level,
            self.detector.purity,
            self.detector.duplicates_per_event,
            self.narratives.duplicates_per_narrative,
            self.detector.background_alerts_per_day
        );
        for row in &self.sweep {
            let _ = writeln!(
                out,
                "{:<34} {:>7.2} {:>6} {:>7.2} {:>6} {:>6.2} {:>7.3} {:>6.2} {:>6.2} {:>7.2}  {} / {}",
                row.parameter,
                row.event_recall,
                change(row.event_recall_change),
                row.narrative_recall,
                change(row.narrative_recall_change),
                row.narrative_recall_any_level,
                row.purity,
                row.duplicates_per_event,
                row.duplicates_per_narrative,
                row.background_alerts_per_day,
                row.max_event_coordination
                    .as_ref()
                    .map_or("-".to_owned(), |(event, score)| format!("{score:.2} {event}")),
                row.focus_coordination
                    .map_or("-".to_owned(), |score| format!("{score:.2}")),
            );
        }
        let worst = |w: &Option<crate::sweep::WorstChange>| {
            w.as_ref().map_or("-".to_owned(), |w| {
                format!("{:+.1}% ({})", w.change * 100.0, w.parameter)
            })
        };
        let _ = writeln!(
            out,
            "worst relative change: event recall {}; narrative recall {}{}",
            worst(&self.sweep_worst.event_recall),
            worst(&self.sweep_worst.narrative_recall),
            if self.sweep_worst.narrative_recall_unbounded.is_empty() {
                String::new()
            } else {
                format!(
                    " (unbounded, configured recall 0: {})",
                    self.sweep_worst.narrative_recall_unbounded.join(", ")
                )
            },
        );
    }
}

/// Cuts text to at most `max` characters on one line, marking the cut with `…`.
fn clip(text: &str, max: usize) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        line
    } else {
        let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
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
