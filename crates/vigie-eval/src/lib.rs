//! Labelled replay of the detector, its metrics and a baseline to compare with
//! (issue 3, point 7). The daemon's `vigie eval` subcommand calls [`run_eval`].
//!
//! Posts are read from labelled JSONL (plain or gzip), decoded with
//! [`vigie_domain::decode_post`] (which ignores `label_*`), analyzed once with the real
//! analyzer and fed to the detector in file order. The labels `label_event` and
//! `label_narrative` are read separately from the same line, keyed by post id: the
//! detector never sees them.
//!
//! An *alert* is a narrative's first crossing of the alert severity; a later crossing of
//! the same narrative (after it fell back while fading) counts as a duplicate. An alert
//! cites the posts that made it burst (its narrative's member posts in the sliding
//! window, `window_post_ids`) and *matches* a label when at least half of them carry it;
//! the baseline likewise cites its hashtag's posts of the current window. Metrics, as the issue defines them: event and
//! narrative recall (labels with at least `min_event_posts` / `min_narrative_posts`
//! posts), purity (mean share of an alert's posts in its majority label, background
//! being one label), duplicate alerts per detected event, delay from an event's first
//! post to its first matching alert (event time) and the share of its posts seen by then,
//! and alerts on background per stream-day (days holding at least one post).
//!
//! The baseline is the simplest detector an analyst would write: per hashtag, posts per
//! window against an exact EWMA mean and variance, alerting at z ≥ 3 with the detector's
//! minimum post count.
//!
//! Alerts are scored at two levels (issue 8, point 6). The *storyline* level takes the
//! alerts of storylines (narratives without a parent) and computes the metrics above;
//! the baseline is compared with it. The *narrative* (claim) level takes the alerts of
//! claims (narratives with a parent), each citing the claim's own posts: narrative
//! recall, duplicates per recalled narrative, purity, cross-language joins and a table
//! of the largest claims (see the `claims` module); narrative recall when any alert
//! counts is reported beside it, comparable with the single-level figure.
//!
//! This crate reads files and measures; it does not tune anything by itself. The sweep
//! reruns the detector with each main parameter at ±20% on the same analyzed posts, the
//! claim parameters included, and reports both levels' recall per row.
#![warn(missing_docs)]

mod baseline;
mod claims;
mod load;
mod metrics;
mod report;
mod sweep;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use vigie_detect::{
    tie_of, DetectError, Detector, DetectorConfig, EventTimeOrderer, PartitionKey, Released,
};
use vigie_domain::{NarrativeEvent, NarrativeEventKind, NarrativeId, Severity};
use vigie_tokenize::{Analyzer, AnalyzerConfig};

pub use claims::{
    ClaimRow, ClosestAlert, CrossLanguageReport, NarrativeLevelReport, LARGEST_CLAIMS,
};
pub use load::{load_labelled, Labelled, LabelledPost};
pub use metrics::{Alert, CoordinationSummary, EventReport, MethodReport};
pub use report::{EvalReport, FocusReport};
pub use sweep::{SweepRow, SweepWorst, WorstChange};

/// What can go wrong in an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// An input file could not be read.
    #[error("failed to read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The inputs hold no valid post.
    #[error("no valid post in the inputs")]
    NoPosts,
    /// The detector configuration is invalid.
    #[error("invalid detector configuration")]
    Detector(#[source] DetectError),
}

/// How to evaluate; the fields of `vigie eval`'s flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalOptions {
    /// Posts an event label needs to count (`--min-posts`, first value).
    pub min_event_posts: usize,
    /// Posts a narrative label needs to count (`--min-posts`, second value).
    pub min_narrative_posts: usize,
    /// Severity from which a narrative is an alert.
    pub alert_severity: Severity,
    /// Also rerun with each main parameter at −20% and +20% (`--sweep`).
    pub sweep: bool,
    /// A hashtag (without `#`) whose first alert to report, such as `kochfarms`: when,
    /// after how many posts mentioning it, with what coordination score.
    pub focus_hashtag: Option<String>,
    /// Threads analyzing posts.
    pub analysis_threads: usize,
    /// Rows of the per-claim table, the largest claims first (`--claim-rows`).
    pub claim_rows: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            min_event_posts: 30,
            min_narrative_posts: 10,
            alert_severity: Severity::Medium,
            sweep: false,
            focus_hashtag: None,
            analysis_threads: 2,
            claim_rows: claims::LARGEST_CLAIMS,
        }
    }
}

/// Replays the files through the detector and the baseline and measures both; see the
/// crate docs.
pub fn run_eval(
    files: &[PathBuf],
    detector_config: &DetectorConfig,
    options: &EvalOptions,
) -> Result<EvalReport, EvalError> {
    detector_config.check().map_err(EvalError::Detector)?;
    let analyzer = Arc::new(Analyzer::new(AnalyzerConfig::default()));
    let started = Instant::now();
    let labelled = load_labelled(files, &analyzer, options.analysis_threads)?;
    if labelled.posts.is_empty() {
        return Err(EvalError::NoPosts);
    }
    let load_secs = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let run = replay(&labelled, detector_config, &analyzer, options)?;
    let detect_secs = started.elapsed().as_secs_f64();
    let detector = metrics::measure("vigie-detect", &labelled, &run.storyline_alerts, options);
    let narratives = claims::measure(&labelled, &run.storyline_alerts, &run.claim_alerts, options);
    let per_event =
        metrics::per_event(&labelled, &run.storyline_alerts, &run.coordination, options);
    let baseline_alerts = baseline::run(&labelled, detector_config, options);
    let baseline = metrics::measure("hashtag z-score", &labelled, &baseline_alerts, options);
    let focus = options
        .focus_hashtag
        .as_deref()
        .map(|tag| report::focus(tag, &labelled, &run.storyline_alerts, &run.coordination));

    let mut sweep = Vec::new();
    if options.sweep {
        for (parameter, config) in sweep::configs(detector_config) {
            let run = replay(&labelled, &config, &analyzer, options)?;
            let storylines = metrics::measure("sweep", &labelled, &run.storyline_alerts, options);
            let claims =
                claims::measure(&labelled, &run.storyline_alerts, &run.claim_alerts, options);
            // The most coordinated labelled event, to check that organic events stay
            // below a campaign whatever the parameters.
            let max_event_coordination = run
                .coordination
                .iter()
                .filter(|(label, _)| !label.starts_with('#'))
                .max_by(|a, b| a.1.score.total_cmp(&b.1.score))
                .map(|(label, summary)| (label.clone(), summary.score));
            let focus_coordination = options.focus_hashtag.as_deref().and_then(|tag| {
                let tag = tag.trim_start_matches('#').to_lowercase();
                run.coordination.get(&format!("#{tag}")).map(|c| c.score)
            });
            sweep.push(SweepRow::new(
                parameter,
                (&detector, &narratives),
                (&storylines, &claims),
                max_event_coordination,
                focus_coordination,
            ));
        }
    }
    let sweep_worst = SweepWorst::of(&sweep);
    let mut report = EvalReport::new(
        &labelled,
        detector,
        narratives,
        baseline,
        per_event,
        sweep,
        sweep_worst,
        focus,
        run.memory_bytes,
        run.sketch_bytes,
        load_secs,
        detect_secs,
    );
    report.alerts = run.storyline_alerts;
    report.alerts.extend(run.claim_alerts);
    Ok(report)
}

/// What one detector replay produced.
struct Replay {
    /// Alerts of storylines (narratives without a parent), in stream order.
    storyline_alerts: Vec<Alert>,
    /// Alerts of claims (narratives with a parent), in stream order.
    claim_alerts: Vec<Alert>,
    /// Per label (event, or `#tag` for the focus hashtag), the coordination of the
    /// narratives whose cited posts carried it; see [`AlertCollector::coordination_of`].
    coordination: BTreeMap<String, CoordinationSummary>,
    memory_bytes: usize,
    sketch_bytes: usize,
}

/// Returns, per post id, the labels whose coordination is reported: its event, and
/// `#tag` when its text mentions the focus hashtag.
fn coordination_labels<'a>(
    labelled: &'a Labelled,
    focus: Option<&str>,
) -> HashMap<&'a str, Vec<String>> {
    let focus = focus.map(|tag| tag.trim_start_matches('#').to_lowercase());
    let mut labels = HashMap::new();
    for post in &labelled.posts {
        let mut own = Vec::new();
        if let Some(event) = &post.event {
            own.push(event.clone());
        }
        if let Some(tag) = &focus {
            if post
                .analyzed
                .post
                .text
                .to_lowercase()
                .contains(tag.as_str())
            {
                own.push(format!("#{tag}"));
            }
        }
        if !own.is_empty() {
            labels.insert(post.analyzed.post.id.as_str(), own);
        }
    }
    labels
}

/// Feeds every post to a fresh detector and collects alerts.
fn replay(
    labelled: &Labelled,
    config: &DetectorConfig,
    analyzer: &Arc<Analyzer>,
    options: &EvalOptions,
) -> Result<Replay, EvalError> {
    let mut detector =
        Detector::new(config.clone(), analyzer.clone()).map_err(EvalError::Detector)?;
    let labels = coordination_labels(labelled, options.focus_hashtag.as_deref());
    let mut collector = AlertCollector::new(options.alert_severity, &labels);
    // Posts reach the detector as in the daemon: through the event-time orderer (one
    // stream, as a file replay), so the eval measures the order the daemon detects in.
    let mut orderer: EventTimeOrderer<usize> =
        EventTimeOrderer::new(&config.event_time).map_err(EvalError::Detector)?;
    let mut observe = |released: Released<usize>, collector: &mut AlertCollector<'_>| {
        let post = &labelled.posts[released.item].analyzed;
        let events = if released.count_at == released.event_time {
            detector.observe(post)
        } else {
            // Held ahead and never corroborated: counted at the time released.
            let mut post = post.clone();
            if let Some(at) = chrono::DateTime::from_timestamp(released.count_at, 0) {
                post.post.created_at = at;
            }
            detector.observe(&post)
        };
        collector.collect(released.item, &events);
    };
    for (index, post) in labelled.posts.iter().enumerate() {
        let post = &post.analyzed.post;
        orderer.push(
            &PartitionKey::file(),
            post.created_at.timestamp(),
            tie_of(&post.id),
            index,
        );
        while let Some(released) = orderer.pop_ready() {
            observe(released, &mut collector);
        }
    }
    for released in orderer.flush() {
        observe(released, &mut collector);
    }
    if let Some(last) = labelled.posts.last() {
        let end = last.analyzed.post.created_at
            + chrono::Duration::seconds(i64::from(config.narrative_idle_secs) * 2);
        let events = detector.on_tick(end);
        collector.collect(labelled.posts.len(), &events);
    }
    let (claim_alerts, storyline_alerts) = collector
        .alerts
        .into_iter()
        .partition(|alert| alert.parent.is_some());
    Ok(Replay {
        coordination: collector.coordination,
        storyline_alerts,
        claim_alerts,
        memory_bytes: detector.memory_bytes(),
        sketch_bytes: detector.sketch_bytes(),
    })
}

/// Turns narrative events into alerts: first crossings and repeat crossings.
struct AlertCollector<'a> {
    threshold: Severity,
    labels: &'a HashMap<&'a str, Vec<String>>,
    above: BTreeMap<NarrativeId, bool>,
    coordination: BTreeMap<String, CoordinationSummary>,
    alerts: Vec<Alert>,
}

impl<'a> AlertCollector<'a> {
    fn new(threshold: Severity, labels: &'a HashMap<&'a str, Vec<String>>) -> AlertCollector<'a> {
        AlertCollector {
            threshold,
            labels,
            above: Default::default(),
            coordination: Default::default(),
            alerts: Vec::new(),
        }
    }

    /// Credits a narrative's coordination to the labels that at least half of its cited
    /// posts and at least half of its recent members carry (the score is judged on its
    /// recent members, so a narrative of background posts that the event's posts
    /// briefly outnumber in one window is not credited), keeping per label the report
    /// judged on the most known-author posts (the score is shrunk on few posts, so the
    /// largest sample is the best estimate).
    fn coordination_of(&mut self, narrative: &vigie_domain::Narrative) {
        let majority_labels = |ids: &[String]| -> Vec<String> {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for id in ids {
                for label in self.labels.get(id.as_str()).into_iter().flatten() {
                    *counts.entry(label.as_str()).or_insert(0) += 1;
                }
            }
            counts
                .into_iter()
                .filter(|(_, count)| 2 * count >= ids.len().max(1))
                .map(|(label, _)| label.to_owned())
                .collect()
        };
        let members = majority_labels(&narrative.member_post_ids);
        let cited = if narrative.window_post_ids.is_empty() {
            members.clone()
        } else {
            majority_labels(&narrative.window_post_ids)
        };
        let summary = CoordinationSummary::of(narrative);
        for label in cited.into_iter().filter(|label| members.contains(label)) {
            let best = self.coordination.entry(label).or_insert(summary);
            if summary.known_author_posts >= best.known_author_posts {
                *best = summary;
            }
        }
    }

    fn collect(&mut self, stream_index: usize, events: &[NarrativeEvent]) {
        for event in events {
            let narrative = &event.narrative;
            if narrative.is_storyline() {
                // Coordination per event stays judged on storylines, as before claims:
                // a claim is a subset of its storyline's posts.
                self.coordination_of(narrative);
            }
            if let NarrativeEventKind::Merged { absorbed, .. } = event.kind {
                // The absorbed narrative's story goes on in the survivor.
                let absorbed_above = self.above.remove(&absorbed).unwrap_or(false);
                if absorbed_above {
                    self.above.insert(narrative.id, true);
                }
            }
            let is_above = narrative.severity >= self.threshold;
            let was = self.above.get(&narrative.id).copied();
            match (was, is_above) {
                (Some(true), true) => {}
                (_, true) => {
                    self.alerts.push(Alert {
                        key: narrative.id.to_string(),
                        at: event.at,
                        stream_index,
                        repeat: was.is_some(),
                        label: narrative.label.clone(),
                        headline: narrative.headline.clone(),
                        parent: narrative.parent.map(|id| id.to_string()),
                        // The posts that made it burst, not its whole history: a
                        // narrative that started on background chatter and grew on an
                        // event's posts is, at its alert, about the event.
                        member_post_ids: if narrative.window_post_ids.is_empty() {
                            narrative.member_post_ids.clone()
                        } else {
                            narrative.window_post_ids.clone()
                        },
                        coordination: narrative.coordination.score,
                        severity: narrative.severity,
                    });
                    self.above.insert(narrative.id, true);
                }
                (Some(true), false) => {
                    self.above.insert(narrative.id, false);
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// Writes a labelled stream: two days of background chatter, then a labelled event
    /// of 80 posts in an hour from distinct accounts.
    fn labelled_stream(dir: &std::path::Path) -> PathBuf {
        let path = dir.join("stream.jsonl");
        let mut file = std::fs::File::create(&path).unwrap();
        let start = 1_700_000_000i64;
        let mut seed = 3u64;
        let mut next = |bound: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) % bound
        };
        for minute in 0..2 * 24 * 60 {
            let text = format!(
                "chat{} chat{} chat{} chat{}",
                next(200),
                next(200),
                next(200),
                next(200)
            );
            let line = serde_json::json!({
                "id": format!("bg:{minute}"), "created_at": start + minute * 60,
                "author": format!("u{}", next(40)), "lang": "en", "text": text,
                "label_event": null, "label_narrative": null,
            });
            writeln!(file, "{line}").unwrap();
        }
        let words = [
            "dam", "flood", "valley", "evacuate", "water", "breach", "village", "rescue",
        ];
        for i in 0..80i64 {
            let story: Vec<&str> = (0..5).map(|_| words[next(8) as usize]).collect();
            let line = serde_json::json!({
                "id": format!("ev:{i}"), "created_at": start + 2 * 86_400 + i * 45,
                "author": format!("w{i}"), "lang": "en",
                "text": format!("{} #damburst", story.join(" ")),
                "label_event": "damburst", "label_narrative": format!("thread{}", i % 2),
            });
            writeln!(file, "{line}").unwrap();
        }
        path
    }

    #[test]
    fn a_labelled_event_is_detected_measured_and_tabulated() {
        let dir = tempfile::tempdir().unwrap();
        let path = labelled_stream(dir.path());
        let config = DetectorConfig {
            term_sketch_cells: 4096,
            pair_sketch_cells: 16_384,
            ..DetectorConfig::default()
        };
        let options = EvalOptions {
            sweep: true,
            focus_hashtag: Some("damburst".into()),
            ..EvalOptions::default()
        };
        let report = run_eval(&[path], &config, &options).unwrap();
        assert_eq!(report.posts, 2 * 24 * 60 + 80);
        assert_eq!(
            (report.detector.events, report.detector.events_detected),
            (1, 1)
        );
        assert!(report.detector.purity >= 0.8, "{:?}", report.detector);
        assert_eq!(report.detector.background_alerts, 0);
        assert!(report.detector.seen_share_median.unwrap() < 0.5);
        assert_eq!(report.detector.narratives, 2);
        assert_eq!(report.sweep.len(), 32);
        let focus = report.focus.as_ref().unwrap();
        assert!(focus.posts_before_alert.unwrap() < 40, "{focus:?}");
        assert_eq!(report.narratives.narratives, 2);
        assert!(report.sweep_worst.event_recall.is_some());
        let table = report.to_table();
        assert!(
            table.contains("event recall")
                && table.contains("damburst")
                && table.contains("NARRATIVE (CLAIM) LEVEL")
                && table.contains("claims.min_posts × 1.2")
                && table.contains("thread0"),
            "{table}"
        );
        // The alert list (for `--alerts-out`): the storylines' alerts, then the claims',
        // and the one storyline alert the event gave is among them; not in the JSON.
        let storyline_alerts = report.alerts.iter().filter(|a| a.parent.is_none()).count();
        assert!(storyline_alerts >= 1, "{:?}", report.alerts);
        assert!(report.alerts[..storyline_alerts]
            .iter()
            .all(|a| a.parent.is_none()));
        assert!(report.alerts[storyline_alerts..]
            .iter()
            .all(|a| a.parent.is_some()));
        let json = serde_json::to_string(&report).unwrap();
        assert!(
            !json.contains("member_post_ids"),
            "alerts stay out of the report"
        );
    }

    #[test]
    fn missing_files_are_reported() {
        let result = run_eval(
            &[PathBuf::from("/nonexistent/stream.jsonl")],
            &DetectorConfig::default(),
            &EvalOptions::default(),
        );
        assert!(matches!(result, Err(EvalError::Read { .. })));
    }
}
