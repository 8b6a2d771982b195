//! Criterion benchmarks of the per-post stages: decoding and analysis, on the built-in
//! sample of real posts (Russian, English, Ukrainian; see crates/vigie-daemon/data/README.md).

use std::io::BufRead;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vigie_domain::{decode_post, DecodeLimits, Origin};
use vigie_tokenize::{Analyzer, AnalyzerConfig};

fn sample_lines() -> Vec<Vec<u8>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/vigie-daemon/data/sample.jsonl.gz"
    );
    let file = std::fs::File::open(path).expect("the sample is in the repository");
    std::io::BufReader::new(flate2::read::MultiGzDecoder::new(file))
        .split(b'\n')
        .map(|l| l.unwrap())
        .filter(|l| !l.is_empty())
        .take(2000)
        .collect()
}

fn origin() -> Origin {
    Origin::File {
        path: "sample".into(),
        line: 0,
    }
}

fn stages(c: &mut Criterion) {
    let lines = sample_lines();
    let limits = DecodeLimits::default();
    let posts: Vec<_> = lines
        .iter()
        .map(|l| decode_post(l, &limits, origin()).unwrap())
        .collect();
    let analyzer = Analyzer::new(AnalyzerConfig::default());
    // Benches assert on their output so a broken stage fails loudly.
    let terms: usize = posts
        .iter()
        .map(|p| analyzer.analyze_post(p).tokens.len())
        .sum();
    assert!(
        terms > posts.len() * 3,
        "analysis produced only {terms} tokens for {} posts",
        posts.len()
    );

    let mut group = c.benchmark_group("stages");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("decode", |b| {
        b.iter(|| {
            lines
                .iter()
                .filter(|l| decode_post(l, &limits, origin()).is_ok())
                .count()
        })
    });
    group.bench_function("analyze", |b| {
        b.iter(|| {
            posts
                .iter()
                .map(|p| analyzer.analyze_post(p).tokens.len())
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
