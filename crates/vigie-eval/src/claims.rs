//! The narrative (claim) level of the evaluation (issue 8, point 6): how the detector's
//! claim narratives (those with a `parent` storyline) match the labelled claims
//! (`label_narrative`), how often a claim told in several languages lands in one claim
//! narrative, and a table of the largest claims.
//!
//! A claim alert cites the claim's own posts (`window_post_ids`, or `member_post_ids`
//! when that is empty) and matches a claim by the storyline rule: `2 × count ≥ cited`.
//! Only counted claims (at least `min_narrative_posts` posts) enter recall, duplicates
//! and cross-language joins.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::metrics::{self, Alert, AlertLabels};
use crate::{EvalOptions, Labelled};

/// Claims listed in the per-claim table by default, the largest first
/// (`EvalOptions::claim_rows`, `vigie eval --claim-rows`).
pub const LARGEST_CLAIMS: usize = 15;
/// Posts a claim needs in a language for that language to count (design note §5).
const MIN_LANGUAGE_POSTS: usize = 3;
/// Share of a claim's posts it needs in a language for that language to count.
const MIN_LANGUAGE_SHARE: f64 = 0.1;
/// The analyzer's language when it could not tell; never a language of its own.
const UNKNOWN_LANG: &str = "und";

/// The narrative (claim) level: claim alerts against the labelled claims.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NarrativeLevelReport {
    /// Claim alerts (alerts of narratives with a parent), repeats included.
    pub alerts: usize,
    /// Narrative labels with at least `min_narrative_posts` posts.
    pub narratives: usize,
    /// Of those, narratives matched by a claim alert.
    pub narratives_detected: usize,
    /// `narratives_detected / narratives`: the narrative (claim) recall.
    pub narrative_recall: f64,
    /// Narratives matched by any alert, storyline or claim (comparable with the figure
    /// from before claims existed).
    pub narratives_detected_any_level: usize,
    /// `narratives_detected_any_level / narratives`.
    pub narrative_recall_any_level: f64,
    /// Mean, over recalled narratives, of matching claim alerts beyond the first.
    pub duplicates_per_narrative: f64,
    /// Mean share of a claim alert's cited posts in its majority narrative label.
    pub purity: f64,
    /// Mean share of a claim alert's cited posts in its majority event label
    /// (background being one label).
    pub event_purity: f64,
    /// Median delay from a recalled narrative's first post to its first matching claim
    /// alert, seconds.
    pub delay_median_secs: Option<f64>,
    /// Claim alerts whose cited posts are at least half background.
    pub background_alerts: usize,
    /// `background_alerts` per stream-day (days holding at least one post).
    pub background_alerts_per_day: f64,
    /// Claims told in several languages, and how many land in one claim narrative.
    pub cross_language: CrossLanguageReport,
    /// The largest claims (by posts, at most `EvalOptions::claim_rows`) and how each fared.
    pub largest: Vec<ClaimRow>,
}

/// Cross-language joins: counted claims with posts in two or more languages, and the
/// share whose posts of two or more of those languages land in one claim narrative.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CrossLanguageReport {
    /// Counted narratives with at least 3 posts and 10% of their posts in each of two or
    /// more languages (the analyzer's `lang`; `und` is not a language).
    pub narratives: usize,
    /// Of those, narratives matched by a claim alert that cites their posts in two or
    /// more of those languages.
    pub joined: usize,
    /// `joined / narratives` (0 when there is none).
    pub share: f64,
}

/// One labelled claim and how the detector's claim narratives did on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClaimRow {
    /// The claim's `label_narrative`.
    pub narrative: String,
    /// Its posts.
    pub posts: usize,
    /// Its posts per language (the analyzer's `lang`), most frequent first.
    pub languages: Vec<(String, usize)>,
    /// Whether it counts as told in several languages (see [`CrossLanguageReport`]).
    pub multi_language: bool,
    /// Whether a claim alert matched it.
    pub matched: bool,
    /// Whether any alert, storyline or claim, matched it.
    pub matched_any_level: bool,
    /// Matching claim alerts, repeats included.
    pub matching_alerts: usize,
    /// Distinct storylines those alerts belong to (duplicates across storylines, or
    /// fragments inside one).
    pub matching_storylines: usize,
    /// The narrative id of the first matching claim alert.
    pub narrative_id: Option<String>,
    /// Its storyline's id.
    pub storyline_id: Option<String>,
    /// Delay from the claim's first post to that alert, seconds.
    pub delay_secs: Option<f64>,
    /// Share of the claim's posts observed before that alert.
    pub seen_share: Option<f64>,
    /// That narrative's label at the alert.
    pub narrative_label: Option<String>,
    /// That narrative's headline at the alert.
    pub headline: Option<String>,
    /// Whether a matching claim alert cites its posts in two or more of its languages.
    pub joined_languages: bool,
    /// The claim alert citing the most of its posts, matched or not: how close the
    /// detector came (a missed claim split over small narratives, or drowned in a big one).
    pub closest: Option<ClosestAlert>,
}

/// The claim alert citing the most posts of one labelled claim.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClosestAlert {
    /// The alert's narrative id.
    pub narrative_id: String,
    /// Posts it cites.
    pub cited: usize,
    /// Of those, posts of the claim.
    pub of_claim: usize,
    /// Claim alerts (first crossings and repeats) citing at least one of its posts.
    pub touching_alerts: usize,
}

/// What the labelled stream says about one claim.
struct ClaimFacts<'a> {
    first_post: DateTime<Utc>,
    /// Stream indexes of its posts, ascending.
    indexes: Vec<usize>,
    /// Posts per language, most frequent first.
    languages: Vec<(String, usize)>,
    /// The languages that count (at least 3 posts and 10% of the claim).
    counted_languages: BTreeSet<&'a str>,
}

impl ClaimFacts<'_> {
    fn multi_language(&self) -> bool {
        self.counted_languages.len() >= 2
    }
}

/// A claim's first post, post indexes and posts per language, as gathered.
type RawClaim<'a> = (DateTime<Utc>, Vec<usize>, BTreeMap<&'a str, usize>);

/// Gathers, per narrative label, its first post, posts and languages.
fn claim_facts(labelled: &Labelled) -> BTreeMap<&str, ClaimFacts<'_>> {
    let mut raw: BTreeMap<&str, RawClaim<'_>> = BTreeMap::new();
    for (index, post) in labelled.posts.iter().enumerate() {
        let Some(narrative) = post.narrative.as_deref() else {
            continue;
        };
        let created = post.analyzed.post.created_at;
        let entry = raw
            .entry(narrative)
            .or_insert_with(|| (created, Vec::new(), BTreeMap::new()));
        entry.0 = entry.0.min(created);
        entry.1.push(index);
        *entry
            .2
            .entry(post.analyzed.analysis.lang.as_str())
            .or_insert(0) += 1;
    }
    raw.into_iter()
        .map(|(narrative, (first_post, indexes, per_lang))| {
            let total = indexes.len();
            let counted_languages = per_lang
                .iter()
                .filter(|(lang, count)| {
                    **lang != UNKNOWN_LANG
                        && **count >= MIN_LANGUAGE_POSTS
                        && **count as f64 >= MIN_LANGUAGE_SHARE * total as f64
                })
                .map(|(lang, _)| *lang)
                .collect();
            let mut languages: Vec<(String, usize)> = per_lang
                .into_iter()
                .map(|(lang, count)| (lang.to_owned(), count))
                .collect();
            languages.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let facts = ClaimFacts {
                first_post,
                indexes,
                languages,
                counted_languages,
            };
            (narrative, facts)
        })
        .collect()
}

/// Returns, per labelled claim, the claim alert citing the most of its posts (ties: the
/// fewer cited, then the earlier), in one pass over the alerts.
fn closest_alerts<'a>(
    claim_alerts: &[Alert],
    labels: &HashMap<&str, (Option<&'a str>, Option<&'a str>)>,
) -> HashMap<&'a str, ClosestAlert> {
    let mut closest: HashMap<&str, ClosestAlert> = HashMap::new();
    for alert in claim_alerts {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for id in &alert.member_post_ids {
            if let Some((_, Some(narrative))) = labels.get(id.as_str()) {
                *counts.entry(narrative).or_insert(0) += 1;
            }
        }
        let cited = alert.member_post_ids.len();
        for (narrative, of_claim) in counts {
            let entry = closest.entry(narrative).or_insert_with(|| ClosestAlert {
                narrative_id: alert.key.clone(),
                cited,
                of_claim,
                touching_alerts: 0,
            });
            entry.touching_alerts += 1;
            if (of_claim, std::cmp::Reverse(cited))
                > (entry.of_claim, std::cmp::Reverse(entry.cited))
            {
                entry.narrative_id = alert.key.clone();
                entry.cited = cited;
                entry.of_claim = of_claim;
            }
        }
    }
    closest
}

/// Measures the claim level from the storyline alerts and the claim alerts.
pub(crate) fn measure(
    labelled: &Labelled,
    storyline_alerts: &[Alert],
    claim_alerts: &[Alert],
    options: &EvalOptions,
) -> NarrativeLevelReport {
    let truth = metrics::truth(labelled);
    let facts = claim_facts(labelled);
    let langs: HashMap<&str, &str> = labelled
        .posts
        .iter()
        .map(|p| {
            (
                p.analyzed.post.id.as_str(),
                p.analyzed.analysis.lang.as_str(),
            )
        })
        .collect();
    let counted: BTreeSet<&str> = facts
        .iter()
        .filter(|(_, f)| f.indexes.len() >= options.min_narrative_posts)
        .map(|(narrative, _)| *narrative)
        .collect();
    let claim_labels: Vec<AlertLabels> = claim_alerts
        .iter()
        .map(|a| metrics::alert_labels(a, &truth.labels))
        .collect();
    // Every labelled claim's matching claim alerts, in stream order.
    let mut by_claim: BTreeMap<&str, Vec<&Alert>> = BTreeMap::new();
    for (alert, labels) in claim_alerts.iter().zip(&claim_labels) {
        for narrative in &labels.narratives {
            if let Some((key, _)) = facts.get_key_value(narrative.as_str()) {
                by_claim.entry(*key).or_default().push(alert);
            }
        }
    }
    let any_level: BTreeSet<&str> = storyline_alerts
        .iter()
        .flat_map(|a| metrics::alert_labels(a, &truth.labels).narratives)
        .filter_map(|n| facts.get_key_value(n.as_str()).map(|(key, _)| *key))
        .chain(by_claim.keys().copied())
        .collect();
    let joined = |narrative: &str| -> bool {
        let Some(claim) = facts.get(narrative) else {
            return false;
        };
        claim.multi_language()
            && by_claim.get(narrative).into_iter().flatten().any(|alert| {
                let cited: BTreeSet<&str> = alert
                    .member_post_ids
                    .iter()
                    .filter(|id| {
                        truth
                            .labels
                            .get(id.as_str())
                            .is_some_and(|(_, n)| *n == Some(narrative))
                    })
                    .filter_map(|id| langs.get(id.as_str()).copied())
                    .filter(|lang| claim.counted_languages.contains(lang))
                    .collect();
                cited.len() >= 2
            })
    };

    let recalled: Vec<(&str, &Vec<&Alert>)> = by_claim
        .iter()
        .filter(|(narrative, _)| counted.contains(*narrative))
        .map(|(narrative, list)| (*narrative, list))
        .collect();
    let mut delays: Vec<f64> = recalled
        .iter()
        .map(|(narrative, list)| (list[0].at - facts[narrative].first_post).num_seconds() as f64)
        .collect();
    let multi: Vec<&str> = counted
        .iter()
        .copied()
        .filter(|n| facts[n].multi_language())
        .collect();
    let joined_count = multi.iter().filter(|n| joined(n)).count();
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let mean = |values: &mut dyn Iterator<Item = f64>, n: usize| {
        if n == 0 {
            0.0
        } else {
            values.sum::<f64>() / n as f64
        }
    };
    let background_alerts = claim_labels.iter().filter(|l| l.background).count();

    let mut largest: Vec<(&str, &ClaimFacts)> = facts.iter().map(|(n, f)| (*n, f)).collect();
    largest.sort_by(|a, b| {
        b.1.indexes
            .len()
            .cmp(&a.1.indexes.len())
            .then_with(|| a.0.cmp(b.0))
    });
    let closest = closest_alerts(claim_alerts, &truth.labels);
    let largest = largest
        .into_iter()
        .take(options.claim_rows)
        .map(|(narrative, claim)| {
            let list = by_claim.get(narrative);
            let first = list.and_then(|l| l.first());
            ClaimRow {
                narrative: narrative.to_owned(),
                posts: claim.indexes.len(),
                languages: claim.languages.clone(),
                multi_language: claim.multi_language(),
                matched: first.is_some(),
                matched_any_level: any_level.contains(narrative),
                matching_alerts: list.map_or(0, Vec::len),
                matching_storylines: list.map_or(0, |l| {
                    l.iter()
                        .map(|a| a.parent.as_deref())
                        .collect::<BTreeSet<_>>()
                        .len()
                }),
                narrative_id: first.map(|a| a.key.clone()),
                storyline_id: first.and_then(|a| a.parent.clone()),
                delay_secs: first.map(|a| (a.at - claim.first_post).num_seconds() as f64),
                seen_share: first.map(|a| {
                    claim.indexes.partition_point(|&i| i < a.stream_index) as f64
                        / claim.indexes.len() as f64
                }),
                narrative_label: first.map(|a| a.label.clone()),
                headline: first.map(|a| a.headline.clone()),
                joined_languages: joined(narrative),
                closest: closest.get(narrative).cloned(),
            }
        })
        .collect();

    NarrativeLevelReport {
        alerts: claim_alerts.len(),
        narratives: counted.len(),
        narratives_detected: recalled.len(),
        narrative_recall: ratio(recalled.len(), counted.len()),
        narratives_detected_any_level: any_level.intersection(&counted).count(),
        narrative_recall_any_level: ratio(any_level.intersection(&counted).count(), counted.len()),
        duplicates_per_narrative: mean(
            &mut recalled.iter().map(|(_, list)| (list.len() - 1) as f64),
            recalled.len(),
        ),
        purity: mean(
            &mut claim_labels.iter().map(|l| l.narrative_majority_share),
            claim_labels.len(),
        ),
        event_purity: mean(
            &mut claim_labels.iter().map(|l| l.majority_share),
            claim_labels.len(),
        ),
        delay_median_secs: metrics::quantile(&mut delays, 0.5),
        background_alerts,
        background_alerts_per_day: ratio(background_alerts, truth.days.max(1)),
        cross_language: CrossLanguageReport {
            narratives: multi.len(),
            joined: joined_count,
            share: ratio(joined_count, multi.len()),
        },
        largest,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::PathBuf;
    use std::sync::Arc;

    use vigie_domain::{
        CoordinationEvidence, Narrative, NarrativeEvent, NarrativeEventKind, NarrativeId,
        NarrativeStatus, Severity,
    };
    use vigie_tokenize::{Analyzer, AnalyzerConfig};

    use super::*;
    use crate::{load_labelled, AlertCollector};

    const START: i64 = 1_700_000_000;

    /// Writes a labelled stream: claim `shark` (14 en + 6 fr posts), claim `plant`
    /// (9 en + 3 es), claim `small` (5), all of event `sandy`; claim `quake1` (10) of
    /// event `quake`; 20 background posts. Post `i` is at `START + 60 i`.
    fn stream(dir: &std::path::Path) -> PathBuf {
        let path = dir.join("claims.jsonl");
        let mut file = std::fs::File::create(&path).unwrap();
        let mut rows: Vec<(String, &str, Option<&str>, Option<&str>)> = Vec::new();
        for i in 0..20 {
            let lang = if i < 14 { "en" } else { "fr" };
            rows.push((format!("shark{i}"), lang, Some("sandy"), Some("shark")));
        }
        for i in 0..12 {
            let lang = if i < 9 { "en" } else { "es" };
            rows.push((format!("plant{i}"), lang, Some("sandy"), Some("plant")));
        }
        for i in 0..5 {
            rows.push((format!("small{i}"), "en", Some("sandy"), Some("small")));
        }
        for i in 0..10 {
            rows.push((format!("quake{i}"), "en", Some("quake"), Some("quake1")));
        }
        for i in 0..20 {
            rows.push((format!("bg{i}"), "en", None, None));
        }
        for (i, (id, lang, event, narrative)) in rows.iter().enumerate() {
            let line = serde_json::json!({
                "id": id, "created_at": START + 60 * i as i64, "author": format!("a{i}"),
                "lang": lang, "text": format!("post {id} about things"),
                "label_event": event, "label_narrative": narrative,
            });
            writeln!(file, "{line}").unwrap();
        }
        path
    }

    fn narrative(id: u64, parent: Option<u64>, severity: Severity, cited: &[String]) -> Narrative {
        let at = DateTime::<Utc>::from_timestamp(START, 0).unwrap();
        Narrative {
            id: NarrativeId(id),
            parent: parent.map(NarrativeId),
            label: format!("label {id}"),
            headline: format!("headline of {id}"),
            terms: Vec::new(),
            hashtags: Vec::new(),
            first_seen: at,
            last_seen: at,
            status: NarrativeStatus::Growing,
            severity,
            severity_reasons: Vec::new(),
            posts_total: cited.len() as u64,
            posts_in_window: cited.len() as f64,
            baseline_posts_per_window: 1.0,
            growth_ratio: 1.0,
            growth_z: 1.0,
            distinct_authors: cited.len() as u32,
            anonymous_posts: 0,
            engagement: 0,
            languages: Vec::new(),
            member_post_ids: cited.to_vec(),
            window_post_ids: Vec::new(),
            representative_post_ids: Vec::new(),
            representatives: Vec::new(),
            coordination: CoordinationEvidence::default(),
            watch_matches: Vec::new(),
            merged_ids: Vec::new(),
        }
    }

    fn event(minute: i64, kind: NarrativeEventKind, narrative: Narrative) -> NarrativeEvent {
        NarrativeEvent {
            at: DateTime::<Utc>::from_timestamp(START + 60 * minute, 0).unwrap(),
            kind,
            narrative,
        }
    }

    fn ids(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
        range.map(|i| format!("{prefix}{i}")).collect()
    }

    /// Issue 8, point 6: claim alerts (narratives with a parent) are scored apart from
    /// storyline alerts — narrative recall, duplicates per recalled narrative, purity,
    /// cross-language joins, the per-claim table — and the any-level recall counts both.
    #[test]
    fn issue_8_claim_alerts_are_scored_at_their_own_level() {
        let dir = tempfile::tempdir().unwrap();
        let analyzer = Arc::new(Analyzer::new(AnalyzerConfig::default()));
        let labelled = load_labelled(&[stream(dir.path())], &analyzer, 1).unwrap();
        let labels = HashMap::new();
        let mut collector = AlertCollector::new(Severity::Medium, &labels);
        let sandy: Vec<String> =
            [ids("shark", 0..20), ids("plant", 0..12), ids("small", 0..5)].concat();
        // Shark cited in en and fr (joined), then again after falling back (a repeat).
        let mut shark: Vec<String> = ids("shark", 0..6);
        shark.extend(ids("shark", 14..18));
        // Plant cited in en only, half background.
        let plant: Vec<String> = [ids("plant", 0..8), ids("bg", 0..8)].concat();
        let steps = [
            (
                5,
                NarrativeEventKind::Created,
                narrative(1, None, Severity::Medium, &sandy),
            ),
            (
                18,
                NarrativeEventKind::Created,
                narrative(2, Some(1), Severity::Medium, &shark),
            ),
            (
                19,
                NarrativeEventKind::Updated,
                narrative(2, Some(1), Severity::Low, &shark),
            ),
            (
                20,
                NarrativeEventKind::Updated,
                narrative(2, Some(1), Severity::Medium, &shark),
            ),
            (
                30,
                NarrativeEventKind::Created,
                narrative(3, Some(1), Severity::Medium, &plant),
            ),
            // A claim below the alert severity never alerts.
            (
                31,
                NarrativeEventKind::Created,
                narrative(7, Some(1), Severity::Low, &ids("small", 0..5)),
            ),
            (
                50,
                NarrativeEventKind::Created,
                narrative(6, None, Severity::High, &ids("quake", 0..10)),
            ),
        ];
        for (minute, kind, narrative) in steps {
            collector.collect(minute as usize, &[event(minute, kind, narrative)]);
        }
        let (claim_alerts, storyline_alerts): (Vec<Alert>, Vec<Alert>) = collector
            .alerts
            .into_iter()
            .partition(|alert| alert.parent.is_some());
        assert_eq!((storyline_alerts.len(), claim_alerts.len()), (2, 3));

        let report = measure(
            &labelled,
            &storyline_alerts,
            &claim_alerts,
            &Default::default(),
        );
        assert_eq!(report.alerts, 3);
        assert_eq!(report.narratives, 3, "small has fewer than 10 posts");
        assert_eq!(report.narratives_detected, 2);
        assert!((report.narrative_recall - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            report.narratives_detected_any_level, 3,
            "quake1 by its storyline"
        );
        assert!((report.narrative_recall_any_level - 1.0).abs() < 1e-12);
        assert!(
            (report.duplicates_per_narrative - 0.5).abs() < 1e-12,
            "shark 1, plant 0"
        );
        assert!((report.purity - 2.5 / 3.0).abs() < 1e-12, "{report:?}");
        assert!((report.event_purity - 2.5 / 3.0).abs() < 1e-12);
        assert_eq!(report.background_alerts, 1);
        assert_eq!(
            report.cross_language,
            CrossLanguageReport {
                narratives: 2,
                joined: 1,
                share: 0.5
            }
        );
        // Delays: shark's first post at minute 0, its alert at 18; plant's at 20 and 30.
        assert_eq!(report.delay_median_secs, Some(18.0 * 60.0));

        let table: Vec<&str> = report
            .largest
            .iter()
            .map(|r| r.narrative.as_str())
            .collect();
        assert_eq!(table, ["shark", "plant", "quake1", "small"]);
        let shark = &report.largest[0];
        assert_eq!(
            shark.languages,
            vec![("en".to_owned(), 14), ("fr".to_owned(), 6)]
        );
        assert!(shark.multi_language && shark.matched && shark.joined_languages);
        assert_eq!(shark.matching_alerts, 2);
        assert_eq!(shark.narrative_id.as_deref(), Some("n2"));
        assert_eq!(shark.storyline_id.as_deref(), Some("n1"));
        assert_eq!(shark.delay_secs, Some(18.0 * 60.0));
        assert_eq!(shark.seen_share, Some(18.0 / 20.0));
        assert_eq!(shark.headline.as_deref(), Some("headline of 2"));
        let plant = &report.largest[1];
        assert!(plant.multi_language && plant.matched && !plant.joined_languages);
        let quake = &report.largest[2];
        assert!(!quake.matched && quake.matched_any_level && quake.narrative_id.is_none());
        assert!(!report.largest[3].matched_any_level);
    }

    /// Strict cross-language definition (design note §5): a language counts with at
    /// least 3 posts and 10% of the claim; `und` never counts.
    #[test]
    fn issue_8_a_language_counts_with_three_posts_and_a_tenth_of_the_claim() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("langs.jsonl");
        let mut file = std::fs::File::create(&path).unwrap();
        // c1: 40 en + 3 fr (3 < 10% of 43); c2: 10 en + 2 fr; c3: 10 en + 5 und.
        let mut n = 0;
        let mut write = |claim: &str, lang: &str, count: usize| {
            for _ in 0..count {
                let line = serde_json::json!({
                    "id": format!("p{n}"), "created_at": START + n, "lang": lang,
                    "text": "some words", "label_event": "e", "label_narrative": claim,
                });
                writeln!(file, "{line}").unwrap();
                n += 1;
            }
        };
        write("c1", "en", 40);
        write("c1", "fr", 3);
        write("c2", "en", 10);
        write("c2", "fr", 2);
        write("c3", "en", 10);
        write("c3", "und", 5);
        write("c4", "en", 6);
        write("c4", "de", 4);
        let analyzer = Analyzer::new(AnalyzerConfig::default());
        let labelled = load_labelled(&[path], &analyzer, 1).unwrap();
        let facts = claim_facts(&labelled);
        let multi: Vec<&str> = facts
            .iter()
            .filter(|(_, f)| f.multi_language())
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(multi, ["c4"]);
    }
}
