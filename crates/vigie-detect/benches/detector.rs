//! Detector throughput on analyzed IRA posts, and its memory.
//!
//! Reads `../shared/data/ira-troll-tweets/posts.jsonl.gz` when present (the first
//! 50,000 posts), else the committed daemon sample. Posts are analyzed once before
//! timing: the bench measures detection only. It prints the memory and asserts that
//! the run is sane (narratives form, posts reach them, memory stays bounded) so a broken
//! detector fails loudly.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flate2::read::MultiGzDecoder;
use vigie_detect::{Detector, DetectorConfig};
use vigie_domain::{decode_post, AnalyzedPost, DecodeLimits, Origin};
use vigie_tokenize::{Analyzer, AnalyzerConfig};

const MAX_POSTS: usize = 50_000;

fn corpus() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = manifest.join("../../../shared/data/ira-troll-tweets/posts.jsonl.gz");
    if shared.exists() {
        shared
    } else {
        manifest.join("../vigie-daemon/data/sample.jsonl.gz")
    }
}

fn load(analyzer: &Analyzer) -> Vec<AnalyzedPost> {
    let path = corpus();
    let file = std::fs::File::open(&path).expect("the bench corpus exists");
    BufReader::new(MultiGzDecoder::new(file))
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| {
            let origin = Origin::File {
                path: path.display().to_string(),
                line: 0,
            };
            decode_post(line.as_bytes(), &DecodeLimits::default(), origin).ok()
        })
        .take(MAX_POSTS)
        .map(|post| AnalyzedPost {
            analysis: analyzer.analyze_post(&post),
            post,
        })
        .collect()
}

fn bench_detector(c: &mut Criterion) {
    let analyzer = Arc::new(Analyzer::new(AnalyzerConfig::default()));
    let posts = load(&analyzer);
    assert!(posts.len() > 1000, "the corpus has posts");

    let mut detector = Detector::new(DetectorConfig::default(), analyzer.clone()).unwrap();
    let mut events = 0;
    for post in &posts {
        events += detector.observe(post).len();
    }
    let counters = detector.counters().clone();
    println!(
        "{} posts, {} events, {} narratives created, {} posts in narratives; memory {} bytes (sketches {} bytes)",
        posts.len(),
        events,
        counters.narratives_created,
        counters.posts_in_narratives,
        detector.memory_bytes(),
        detector.sketch_bytes()
    );
    assert!(counters.narratives_created > 0 && counters.posts_in_narratives > 100);
    assert!(detector.memory_bytes() < 200_000_000);

    let mut group = c.benchmark_group("detector");
    group.throughput(Throughput::Elements(posts.len() as u64));
    group.sample_size(10);
    // The storyline level alone, in the same run: what the claims cost.
    let storylines_only = DetectorConfig {
        claims: vigie_detect::ClaimConfig {
            enabled: false,
            ..Default::default()
        },
        ..Default::default()
    };
    for (name, config) in [
        ("observe", DetectorConfig::default()),
        ("observe_storylines_only", storylines_only),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut detector = Detector::new(config.clone(), analyzer.clone()).unwrap();
                let mut events = 0;
                for post in &posts {
                    events += detector.observe(post).len();
                }
                events
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_detector);
criterion_main!(benches);
