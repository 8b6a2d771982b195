//! The ±20% sweep: each main detector parameter, the claim parameters included, at ×0.8
//! and ×1.2, rerun on the same analyzed posts, with both levels' recall per row and the
//! worst relative change of each level.

use serde::Serialize;
use vigie_detect::DetectorConfig;

use crate::claims::NarrativeLevelReport;
use crate::metrics::MethodReport;

/// Recall and purity of one sweep run, at both levels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepRow {
    /// Which parameter moved, and how (`burst_z × 0.8`).
    pub parameter: String,
    /// Event recall (storyline alerts).
    pub event_recall: f64,
    /// Relative change of event recall against the configured run (`None` when that
    /// is 0 and this is not).
    pub event_recall_change: Option<f64>,
    /// Narrative (claim) recall (claim alerts).
    pub narrative_recall: f64,
    /// Relative change of narrative recall against the configured run.
    pub narrative_recall_change: Option<f64>,
    /// Narrative recall when any alert, storyline or claim, counts.
    pub narrative_recall_any_level: f64,
    /// Storyline alert purity.
    pub purity: f64,
    /// Duplicate storyline alerts per detected event.
    pub duplicates_per_event: f64,
    /// Duplicate claim alerts per recalled narrative.
    pub duplicates_per_narrative: f64,
    /// Storyline alerts on background per stream-day.
    pub background_alerts_per_day: f64,
    /// The labelled event with the highest coordination score, and that score.
    pub max_event_coordination: Option<(String, f64)>,
    /// The focus hashtag's coordination score, when one is given.
    pub focus_coordination: Option<f64>,
}

impl SweepRow {
    /// Builds a row from the configured run's and this run's measures, each as
    /// (storyline level, claim level).
    pub(crate) fn new(
        parameter: String,
        configured: (&MethodReport, &NarrativeLevelReport),
        run: (&MethodReport, &NarrativeLevelReport),
        max_event_coordination: Option<(String, f64)>,
        focus_coordination: Option<f64>,
    ) -> SweepRow {
        let (storylines, claims) = run;
        SweepRow {
            parameter,
            event_recall: storylines.event_recall,
            event_recall_change: relative_change(
                configured.0.event_recall,
                storylines.event_recall,
            ),
            narrative_recall: claims.narrative_recall,
            narrative_recall_change: relative_change(
                configured.1.narrative_recall,
                claims.narrative_recall,
            ),
            narrative_recall_any_level: claims.narrative_recall_any_level,
            purity: storylines.purity,
            duplicates_per_event: storylines.duplicates_per_event,
            duplicates_per_narrative: claims.duplicates_per_narrative,
            background_alerts_per_day: storylines.background_alerts_per_day,
            max_event_coordination,
            focus_coordination,
        }
    }
}

/// The largest relative change of one level's recall over the sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorstChange {
    /// The row's parameter.
    pub parameter: String,
    /// `(row − configured) / configured`, signed.
    pub change: f64,
}

/// The worst relative change of each level's recall over the sweep.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SweepWorst {
    /// Event recall (storyline level); `None` without a sweep.
    pub event_recall: Option<WorstChange>,
    /// Narrative (claim) recall; `None` without a sweep, or when the configured run
    /// recalls none and some row recalls some (the change is then unbounded).
    pub narrative_recall: Option<WorstChange>,
    /// Rows whose narrative recall change is unbounded (the configured run recalls none).
    pub narrative_recall_unbounded: Vec<String>,
}

impl SweepWorst {
    /// Finds, per level, the row whose recall moved furthest from the configured run.
    pub(crate) fn of(rows: &[SweepRow]) -> SweepWorst {
        let worst = |change: fn(&SweepRow) -> Option<f64>| {
            rows.iter()
                .filter_map(|row| change(row).map(|c| (row, c)))
                // The first of equal changes, so that a flat sweep names its first row.
                .reduce(|best, row| {
                    if row.1.abs() > best.1.abs() {
                        row
                    } else {
                        best
                    }
                })
                .map(|(row, change)| WorstChange {
                    parameter: row.parameter.clone(),
                    change,
                })
        };
        let unbounded: Vec<String> = rows
            .iter()
            .filter(|row| row.narrative_recall_change.is_none())
            .map(|row| row.parameter.clone())
            .collect();
        SweepWorst {
            event_recall: worst(|row| row.event_recall_change),
            narrative_recall: if unbounded.is_empty() {
                worst(|row| row.narrative_recall_change)
            } else {
                None
            },
            narrative_recall_unbounded: unbounded,
        }
    }
}

/// Returns `(value − base) / base`: 0 when both are 0, `None` when only `base` is.
fn relative_change(base: f64, value: f64) -> Option<f64> {
    if base.abs() < f64::EPSILON {
        (value.abs() < f64::EPSILON).then_some(0.0)
    } else {
        Some((value - base) / base)
    }
}

/// Returns the sweep's configurations: each main parameter at ×0.8 and ×1.2, the claim
/// parameters `claims.join_similarity`, `claims.merge_similarity` (at most 1) and
/// `claims.min_posts` (rounded, at least 1), `claims.seed_posts` and
/// `claims.seed_span_secs` (rounded) and the slow scale's `slow.bias_posts`,
/// `slow.alert_min_posts` and `slow.baseline_half_life_secs` included.
pub(crate) fn configs(base: &DetectorConfig) -> Vec<(String, DetectorConfig)> {
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
        let claims = |name: &'static str, edit: &dyn Fn(&mut DetectorConfig)| {
            let mut config = base.clone();
            edit(&mut config);
            (name, config)
        };
        let claim_variants = [
            claims("claims.join_similarity", &|c| {
                c.claims.join_similarity = (c.claims.join_similarity * factor).min(1.0);
            }),
            claims("claims.merge_similarity", &|c| {
                c.claims.merge_similarity = (c.claims.merge_similarity * factor).min(1.0);
            }),
            claims("claims.min_posts", &|c| {
                c.claims.min_posts = scaled(c.claims.min_posts).max(1);
            }),
            claims("claims.seed_posts", &|c| {
                c.claims.seed_posts = scaled(c.claims.seed_posts).max(1);
            }),
            claims("claims.seed_span_secs", &|c| {
                c.claims.seed_span_secs = scaled(c.claims.seed_span_secs).max(60);
            }),
            claims("slow.bias_posts", &|c| c.slow.bias_posts *= factor),
            claims("slow.alert_min_posts", &|c| {
                c.slow.alert_min_posts *= factor
            }),
            claims("slow.baseline_half_life_secs", &|c| {
                c.slow.baseline_half_life_secs = scaled(c.slow.baseline_half_life_secs);
            }),
        ];
        for (name, config) in variants.into_iter().chain(claim_variants) {
            configs.push((format!("{name} × {factor}"), config));
        }
    }
    configs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 8, point 6: the sweep moves the claim parameters too, each at ×0.8 and
    /// ×1.2, `min_posts` rounded.
    #[test]
    fn issue_8_the_sweep_covers_the_claim_parameters() {
        let base = DetectorConfig::default();
        let configs = configs(&base);
        assert_eq!(configs.len(), 32);
        let find = |name: &str| {
            configs
                .iter()
                .find(|(parameter, _)| parameter == name)
                .map(|(_, config)| config.claims.clone())
                .unwrap_or_else(|| panic!("no row {name}"))
        };
        let join = find("claims.join_similarity × 0.8");
        assert!((join.join_similarity - base.claims.join_similarity * 0.8).abs() < 1e-12);
        assert_eq!(join.merge_similarity, base.claims.merge_similarity);
        let merge = find("claims.merge_similarity × 1.2");
        assert!((merge.merge_similarity - base.claims.merge_similarity * 1.2).abs() < 1e-12);
        assert_eq!(merge.join_similarity, base.claims.join_similarity);
        let expected = |factor: f64| (f64::from(base.claims.min_posts) * factor).round() as u32;
        assert_eq!(find("claims.min_posts × 0.8").min_posts, expected(0.8));
        assert_eq!(find("claims.min_posts × 1.2").min_posts, expected(1.2));
        let seed = |factor: f64| (f64::from(base.claims.seed_posts) * factor).round() as u32;
        assert_eq!(find("claims.seed_posts × 0.8").seed_posts, seed(0.8));
        assert_eq!(
            find("claims.seed_span_secs × 1.2").seed_posts,
            base.claims.seed_posts
        );
        let slow = configs
            .iter()
            .find(|(parameter, _)| parameter == "slow.alert_min_posts × 0.8")
            .map(|(_, config)| config.slow.clone())
            .expect("the slow scale is swept");
        assert!((slow.alert_min_posts - base.slow.alert_min_posts * 0.8).abs() < 1e-12);
        assert_eq!(slow.bias_posts, base.slow.bias_posts);
        for (parameter, config) in &configs {
            assert_eq!(config.check(), Ok(()), "{parameter}");
        }
    }

    fn row(parameter: &str, events: Option<f64>, narratives: Option<f64>) -> SweepRow {
        SweepRow {
            parameter: parameter.to_owned(),
            event_recall: 0.0,
            event_recall_change: events,
            narrative_recall: 0.0,
            narrative_recall_change: narratives,
            narrative_recall_any_level: 0.0,
            purity: 0.0,
            duplicates_per_event: 0.0,
            duplicates_per_narrative: 0.0,
            background_alerts_per_day: 0.0,
            max_event_coordination: None,
            focus_coordination: None,
        }
    }

    #[test]
    fn the_worst_change_of_each_level_is_the_largest_in_magnitude() {
        assert!((relative_change(0.5, 0.45).unwrap() + 0.1).abs() < 1e-12);
        assert_eq!(relative_change(0.0, 0.0), Some(0.0));
        assert_eq!(relative_change(0.0, 0.1), None);
        let worst = SweepWorst::of(&[
            row("a × 0.8", Some(0.05), Some(-0.2)),
            row("b × 1.2", Some(-0.1), Some(0.1)),
        ]);
        assert_eq!(worst.event_recall.as_ref().unwrap().parameter, "b × 1.2");
        assert_eq!(worst.event_recall.unwrap().change, -0.1);
        assert_eq!(worst.narrative_recall.unwrap().parameter, "a × 0.8");
        let unbounded = SweepWorst::of(&[row("a × 0.8", Some(0.0), None)]);
        assert_eq!(unbounded.narrative_recall, None);
        assert_eq!(unbounded.narrative_recall_unbounded, vec!["a × 0.8"]);
        assert_eq!(SweepWorst::of(&[]), SweepWorst::default());
    }
}
