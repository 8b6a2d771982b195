//! Throughput of `Analyzer::analyze` on the IRA tweets (223k real posts, mostly Russian
//! and English). Ignored by default: it needs `../shared/data`, absent in CI. Run with
//! `cargo test --release -p vigie-tokenize --test throughput -- --ignored --nocapture`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use vigie_tokenize::{Analyzer, AnalyzerConfig};

const IRA_POSTS: &str = "../../../shared/data/ira-troll-tweets/posts.jsonl.gz";

/// Reads `(text, lang)` of every post, through `zcat` (no gzip crate just for this).
fn read_posts(path: &Path) -> Vec<(String, Option<String>)> {
    let mut child = Command::new("zcat")
        .arg(path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("zcat runs");
    let reader = BufReader::new(child.stdout.take().expect("piped stdout"));
    let posts = reader
        .lines()
        .map(|line| {
            let value: serde_json::Value =
                serde_json::from_str(&line.expect("utf-8 line")).expect("json line");
            let text = value["text"].as_str().unwrap_or_default().to_owned();
            let lang = value["lang"].as_str().map(str::to_owned);
            (text, lang)
        })
        .collect();
    assert!(child.wait().expect("zcat exits").success());
    posts
}

#[test]
#[ignore = "needs ../shared/data; run in release with --ignored --nocapture"]
fn analyze_throughput_on_ira_tweets() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(IRA_POSTS);
    if !path.exists() {
        eprintln!("skipped: {} not found", path.display());
        return;
    }
    let posts = read_posts(&path);
    assert!(
        posts.len() > 200_000,
        "expected the 223k-post window, got {}",
        posts.len()
    );
    let analyzer = Analyzer::new(AnalyzerConfig::default());

    for (label, use_lang) in [("lang identified", false), ("lang given", true)] {
        let started = Instant::now();
        let mut tokens = 0usize;
        for (text, lang) in &posts {
            let hint = if use_lang { lang.as_deref() } else { None };
            tokens += analyzer.analyze(text, hint).tokens.len();
        }
        let elapsed = started.elapsed();
        let per_sec = posts.len() as f64 / elapsed.as_secs_f64();
        eprintln!(
            "{label}: {} posts, {tokens} tokens in {:.2} s: {per_sec:.0} posts/s",
            posts.len(),
            elapsed.as_secs_f64()
        );
        assert!(
            tokens > posts.len() * 5,
            "suspiciously few tokens: {tokens}"
        );
    }
}
