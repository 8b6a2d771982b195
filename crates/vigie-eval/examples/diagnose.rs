//! Prints, for one event label, the narrative events of the detector whose cited posts
//! include that event's posts (a debugging aid for the sweep):
//!
//! ```sh
//! cargo run --release -p vigie-eval --example diagnose -- EVENT [--bias F] FILE...
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use vigie_detect::{Detector, DetectorConfig};
use vigie_domain::NarrativeEventKind;
use vigie_eval::load_labelled;
use vigie_tokenize::{Analyzer, AnalyzerConfig};

fn main() {
    let mut args = std::env::args().skip(1);
    let event = args.next().expect("an event label");
    let mut config = DetectorConfig::default();
    let mut files = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bias" => {
                config.bias_posts *= args
                    .next()
                    .and_then(|f| f.parse::<f64>().ok())
                    .expect("factor")
            }
            _ => files.push(PathBuf::from(arg)),
        }
    }
    let analyzer = Arc::new(Analyzer::new(AnalyzerConfig::default()));
    let labelled = load_labelled(&files, &analyzer, 2).expect("readable");
    let labels: HashMap<&str, (Option<&str>, Option<&str>)> = labelled
        .posts
        .iter()
        .map(|p| {
            (
                p.analyzed.post.id.as_str(),
                (p.event.as_deref(), p.narrative.as_deref()),
            )
        })
        .collect();
    let mut detector = Detector::new(config, analyzer).expect("valid config");
    for post in &labelled.posts {
        for e in detector.observe(&post.analyzed) {
            let n = &e.narrative;
            let ids = if n.window_post_ids.is_empty() {
                &n.member_post_ids
            } else {
                &n.window_post_ids
            };
            let mine = ids
                .iter()
                .filter(|id| {
                    labels
                        .get(id.as_str())
                        .is_some_and(|l| l.0 == Some(event.as_str()))
                })
                .count();
            if mine == 0 || matches!(e.kind, NarrativeEventKind::Updated) {
                continue;
            }
            println!(
                "{} {} {:?} sev={:?} cited {}/{} z={:.1} win={:.1} base={:.2}±{:.2} authors={} coord={:.2} {}",
                e.at.format("%m-%d %H:%M"), n.id, e.kind, n.severity, mine, ids.len(), n.growth_z, n.posts_in_window,
                n.baseline_posts_per_window, n.terms.first().map_or(0.0, |t| t.baseline_std), n.distinct_authors, n.coordination.score, n.label
            );
            if matches!(e.kind, NarrativeEventKind::Merged { .. }) {
                println!(
                    "   terms: {:?}",
                    n.terms
                        .iter()
                        .map(|t| (&t.term, t.narrative_posts))
                        .collect::<Vec<_>>()
                );
            }
        }
    }
}
