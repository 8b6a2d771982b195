//! The metrics, computed the same way for the detector and the baseline.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;
use vigie_domain::Severity;

use crate::{EvalOptions, Labelled};

/// The label of posts without `label_event`.
const BACKGROUND: &str = "(background)";

/// One alert: a narrative crossing the alert severity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// What alerted: a narrative id, or a hashtag for the baseline.
    pub key: String,
    /// Event time of the alert.
    pub at: DateTime<Utc>,
    /// Posts of the stream observed before the alert.
    pub stream_index: usize,
    /// Whether the same key had already alerted (a duplicate by construction).
    pub repeat: bool,
    /// The narrative's label.
    pub label: String,
    /// The narrative's headline (empty for the baseline or when unknown).
    pub headline: String,
    /// The storyline of a claim narrative; `None` for a storyline (and the baseline).
    pub parent: Option<String>,
    /// The member post ids the alert cites.
    pub member_post_ids: Vec<String>,
    /// The narrative's coordination score at the alert.
    pub coordination: f64,
    /// Severity at the alert.
    pub severity: Severity,
}

/// A narrative's coordination score and its parts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CoordinationSummary {
    /// The score.
    pub score: f64,
    /// Posts with a known author.
    pub known_author_posts: u32,
    /// Share of them in near-duplicate groups.
    pub near_duplicate_share: f64,
    /// Share of them in coordinated link sharing.
    pub shared_link_share: f64,
    /// Share of them from accounts acting in sync.
    pub synchronized_account_share: f64,
}

impl CoordinationSummary {
    /// Takes the summary of a narrative's evidence.
    pub fn of(narrative: &vigie_domain::Narrative) -> CoordinationSummary {
        let c = &narrative.coordination;
        CoordinationSummary {
            score: c.score,
            known_author_posts: c.known_author_posts,
            near_duplicate_share: c.near_duplicate_share,
            shared_link_share: c.shared_link_share,
            synchronized_account_share: c.synchronized_account_share,
        }
    }
}

/// The metrics of one method.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodReport {
    /// Method name.
    pub method: String,
    /// Alerts, repeats included.
    pub alerts: usize,
    /// Event labels with at least `min_event_posts` posts.
    pub events: usize,
    /// Of those, events with a matching alert.
    pub events_detected: usize,
    /// `events_detected / events`.
    pub event_recall: f64,
    /// Narrative labels with at least `min_narrative_posts` posts.
    pub narratives: usize,
    /// Of those, narratives with a matching alert.
    pub narratives_detected: usize,
    /// `narratives_detected / narratives`.
    pub narrative_recall: f64,
    /// Mean share of an alert's cited posts in its majority label.
    pub purity: f64,
    /// Mean, over detected events, of matching alerts beyond the first.
    pub duplicates_per_event: f64,
    /// Median delay from an event's first post to its first matching alert, seconds.
    pub delay_median_secs: Option<f64>,
    /// 90th percentile of that delay, seconds.
    pub delay_p90_secs: Option<f64>,
    /// Median share of an event's posts observed before its first matching alert.
    pub seen_share_median: Option<f64>,
    /// Alerts matching background posts.
    pub background_alerts: usize,
    /// Days of the stream holding at least one post.
    pub stream_days: usize,
    /// `background_alerts / stream_days`.
    pub background_alerts_per_day: f64,
}

/// How one labelled event fared with the detector.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventReport {
    /// Event label.
    pub event: String,
    /// Its posts.
    pub posts: usize,
    /// Matching alerts.
    pub matching_alerts: usize,
    /// Delay of the first matching alert, seconds.
    pub delay_secs: Option<f64>,
    /// Share of its posts observed before that alert.
    pub seen_share: Option<f64>,
    /// The first matching alert's label.
    pub first_alert_label: Option<String>,
    /// Every matching alert: time, narrative, whether it repeats, label.
    pub alerts: Vec<String>,
    /// The coordination of the narratives whose cited posts were mostly its posts,
    /// judged on the most known-author posts.
    pub coordination: Option<CoordinationSummary>,
}

/// Per alert: its majority label, that label's share, and the labels it matches.
pub(crate) struct AlertLabels {
    /// Share of the cited posts in the majority event label (background is one label).
    pub(crate) majority_share: f64,
    /// Share of the cited posts in the majority narrative label (unlabelled posts are
    /// never the majority).
    pub(crate) narrative_majority_share: f64,
    /// Event labels carried by at least half of the cited posts.
    pub(crate) events: Vec<String>,
    /// Narrative labels carried by at least half of the cited posts.
    pub(crate) narratives: Vec<String>,
    /// Whether at least half of the cited posts are background.
    pub(crate) background: bool,
}

/// Labels an alert by its cited posts: it matches a label when `2 × count ≥ cited`.
pub(crate) fn alert_labels(
    alert: &Alert,
    labels: &HashMap<&str, (Option<&str>, Option<&str>)>,
) -> AlertLabels {
    let mut events: BTreeMap<&str, usize> = BTreeMap::new();
    let mut narratives: BTreeMap<&str, usize> = BTreeMap::new();
    let cited = alert.member_post_ids.len().max(1);
    for id in &alert.member_post_ids {
        let (event, narrative) = labels.get(id.as_str()).copied().unwrap_or((None, None));
        *events.entry(event.unwrap_or(BACKGROUND)).or_insert(0) += 1;
        if let Some(narrative) = narrative {
            *narratives.entry(narrative).or_insert(0) += 1;
        }
    }
    let half = |count: usize| 2 * count >= cited;
    let majority = events.values().copied().max().unwrap_or(0);
    let narrative_majority = narratives.values().copied().max().unwrap_or(0);
    AlertLabels {
        majority_share: majority as f64 / cited as f64,
        narrative_majority_share: narrative_majority as f64 / cited as f64,
        events: events
            .iter()
            .filter(|(label, count)| **label != BACKGROUND && half(**count))
            .map(|(label, _)| (*label).to_owned())
            .collect(),
        narratives: narratives
            .iter()
            .filter(|(_, count)| half(**count))
            .map(|(label, _)| (*label).to_owned())
            .collect(),
        background: events.get(BACKGROUND).is_some_and(|count| half(*count)),
    }
}

/// Facts about the labelled stream used by every measurement.
pub(crate) struct Truth<'a> {
    /// Post id → (event label, narrative label).
    pub(crate) labels: HashMap<&'a str, (Option<&'a str>, Option<&'a str>)>,
    /// Event → (first post time, post stream indexes).
    pub(crate) events: BTreeMap<&'a str, (DateTime<Utc>, Vec<usize>)>,
    /// Narrative label → posts.
    pub(crate) narratives: BTreeMap<&'a str, usize>,
    /// Days of the stream holding at least one post.
    pub(crate) days: usize,
}

/// Gathers the labels of the stream.
pub(crate) fn truth(labelled: &Labelled) -> Truth<'_> {
    let mut labels = HashMap::new();
    let mut events: BTreeMap<&str, (DateTime<Utc>, Vec<usize>)> = BTreeMap::new();
    let mut narratives: BTreeMap<&str, usize> = BTreeMap::new();
    let mut days = BTreeSet::new();
    for (index, post) in labelled.posts.iter().enumerate() {
        let created = post.analyzed.post.created_at;
        days.insert(created.date_naive());
        labels.insert(
            post.analyzed.post.id.as_str(),
            (post.event.as_deref(), post.narrative.as_deref()),
        );
        if let Some(event) = &post.event {
            let entry = events.entry(event).or_insert((created, Vec::new()));
            entry.0 = entry.0.min(created);
            entry.1.push(index);
        }
        if let Some(narrative) = &post.narrative {
            *narratives.entry(narrative).or_insert(0) += 1;
        }
    }
    Truth {
        labels,
        events,
        narratives,
        days: days.len(),
    }
}

/// Returns the `q` quantile (nearest rank) of the values, sorting them.
pub(crate) fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64 - 1.0) * q).round() as usize;
    Some(values[rank])
}

/// Per counted event: its matching alerts in order.
fn matches_by_event<'a>(
    truth: &Truth<'_>,
    alerts: &'a [Alert],
    options: &EvalOptions,
) -> (BTreeMap<String, Vec<&'a Alert>>, Vec<AlertLabels>) {
    let labelled: Vec<AlertLabels> = alerts
        .iter()
        .map(|a| alert_labels(a, &truth.labels))
        .collect();
    let mut by_event: BTreeMap<String, Vec<&Alert>> = truth
        .events
        .iter()
        .filter(|(_, (_, posts))| posts.len() >= options.min_event_posts)
        .map(|(event, _)| ((*event).to_owned(), Vec::new()))
        .collect();
    for (alert, labels) in alerts.iter().zip(&labelled) {
        for event in &labels.events {
            if let Some(list) = by_event.get_mut(event) {
                list.push(alert);
            }
        }
    }
    (by_event, labelled)
}

/// Computes a method's metrics from its alerts.
pub(crate) fn measure(
    method: &str,
    labelled: &Labelled,
    alerts: &[Alert],
    options: &EvalOptions,
) -> MethodReport {
    let truth = truth(labelled);
    let (by_event, alert_labels) = matches_by_event(&truth, alerts, options);
    let events = by_event.len();
    let detected: Vec<(&String, &Vec<&Alert>)> = by_event
        .iter()
        .filter(|(_, list)| !list.is_empty())
        .collect();
    let counted_narratives: BTreeSet<&str> = truth
        .narratives
        .iter()
        .filter(|(_, posts)| **posts >= options.min_narrative_posts)
        .map(|(narrative, _)| *narrative)
        .collect();
    let narratives_detected: BTreeSet<&str> = alert_labels
        .iter()
        .flat_map(|labels| labels.narratives.iter())
        .map(String::as_str)
        .filter(|narrative| counted_narratives.contains(narrative))
        .collect();
    let mut delays = Vec::new();
    let mut seen = Vec::new();
    for (event, list) in &detected {
        let (first_post, indexes) = &truth.events[event.as_str()];
        let first = list[0];
        delays.push((first.at - *first_post).num_seconds() as f64);
        let before = indexes.partition_point(|&i| i < first.stream_index);
        seen.push(before as f64 / indexes.len() as f64);
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let background_alerts = alert_labels.iter().filter(|l| l.background).count();
    let purity = if alerts.is_empty() {
        0.0
    } else {
        alert_labels.iter().map(|l| l.majority_share).sum::<f64>() / alerts.len() as f64
    };
    MethodReport {
        method: method.to_owned(),
        alerts: alerts.len(),
        events,
        events_detected: detected.len(),
        event_recall: ratio(detected.len(), events),
        narratives: counted_narratives.len(),
        narratives_detected: narratives_detected.len(),
        narrative_recall: ratio(narratives_detected.len(), counted_narratives.len()),
        purity,
        duplicates_per_event: if detected.is_empty() {
            0.0
        } else {
            detected
                .iter()
                .map(|(_, list)| list.len() - 1)
                .sum::<usize>() as f64
                / detected.len() as f64
        },
        delay_median_secs: quantile(&mut delays.clone(), 0.5),
        delay_p90_secs: quantile(&mut delays, 0.9),
        seen_share_median: quantile(&mut seen, 0.5),
        background_alerts,
        stream_days: truth.days,
        background_alerts_per_day: ratio(background_alerts, truth.days.max(1)),
    }
}

/// Reports each counted event with the detector's alerts.
pub(crate) fn per_event(
    labelled: &Labelled,
    alerts: &[Alert],
    coordination: &BTreeMap<String, CoordinationSummary>,
    options: &EvalOptions,
) -> Vec<EventReport> {
    let truth = truth(labelled);
    let (by_event, _) = matches_by_event(&truth, alerts, options);
    by_event
        .iter()
        .map(|(event, list)| {
            let (first_post, indexes) = &truth.events[event.as_str()];
            let first = list.first();
            EventReport {
                event: event.clone(),
                posts: indexes.len(),
                matching_alerts: list.len(),
                delay_secs: first.map(|a| (a.at - *first_post).num_seconds() as f64),
                seen_share: first.map(|a| {
                    indexes.partition_point(|&i| i < a.stream_index) as f64 / indexes.len() as f64
                }),
                first_alert_label: first.map(|a| a.label.clone()),
                alerts: list
                    .iter()
                    .map(|a| {
                        let repeat = if a.repeat { " (repeat)" } else { "" };
                        format!(
                            "{} {}{repeat} {}",
                            a.at.format("%Y-%m-%d %H:%M"),
                            a.key,
                            a.label
                        )
                    })
                    .collect(),
                coordination: coordination.get(event).copied(),
            }
        })
        .collect()
}
