//! End-to-end benchmark: replays a JSONL(.gz) file through Vigie's real pipeline (file
//! source → decode → analyze → Tantivy index with commits) and, in the same run, through a
//! baseline: the same posts decoded with serde and indexed by plain Tantivy with its
//! default tokenizer. Each phase runs in its own child process so peak RSS is measured per
//! phase; the ratios are what to compare across machines.
//!
//! ```sh
//! cargo run --release -p vigie-benches --bin e2e -- ../shared/data/ira-troll-tweets/posts.jsonl.gz
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};

/// The allocator the `vigie` binary ships with, for both phases.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use serde_json::json;
use vigie_benches::{open_jsonl, Process};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--phase") => {
            let phase = args.get(2).context("--phase NAME FILE")?;
            let file = PathBuf::from(args.get(3).context("--phase NAME FILE")?);
            let result = match phase.as_str() {
                "baseline" => baseline(&file)?,
                "vigie" => vigie(&file)?,
                "stages" => stages(&file)?,
                other => bail!("unknown phase {other}"),
            };
            println!("{result}");
            Ok(())
        }
        Some(file) => compare(Path::new(file)),
        None => compare(&default_input()),
    }
}

fn default_input() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/ira-troll-tweets/posts.jsonl.gz")
}

fn compare(file: &Path) -> anyhow::Result<()> {
    if !file.exists() {
        bail!("{} not found (pass a JSONL file)", file.display());
    }
    let exe = std::env::current_exe()?;
    let mut results = Vec::new();
    for phase in ["baseline", "vigie", "stages"] {
        let output = Command::new(&exe)
            .args(["--phase", phase])
            .arg(file)
            .output()?;
        if !output.status.success() {
            bail!(
                "phase {phase} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let value: serde_json::Value =
            serde_json::from_slice(&output.stdout).context("phase output")?;
        results.push(value);
    }
    println!("end-to-end replay of {}", file.display());
    println!(
        "{:<10} {:>9} {:>10} {:>9} {:>12} {:>12} {:>12} {:>10}",
        "phase", "posts", "docs", "secs", "posts/s", "lat p50 ms", "lat p99 ms", "peak MiB"
    );
    for r in &results[..2] {
        println!(
            "{:<10} {:>9} {:>10} {:>9.2} {:>12.0} {:>12.1} {:>12.1} {:>10.0}",
            r["phase"].as_str().unwrap(),
            r["posts"],
            r["documents"],
            r["seconds"].as_f64().unwrap(),
            r["posts_per_sec"].as_f64().unwrap(),
            r["latency_p50_ms"].as_f64().unwrap_or(f64::NAN),
            r["latency_p99_ms"].as_f64().unwrap_or(f64::NAN),
            r["peak_rss_mib"].as_f64().unwrap(),
        );
    }
    let stages = results.pop().expect("three phases");
    println!("each stage alone, on the same posts (one after the other, in one process):");
    println!("{:<40} {:>12}", "stage", "posts/s");
    for stage in stages["stages"].as_array().into_iter().flatten() {
        println!(
            "{:<40} {:>12.0}",
            stage["stage"].as_str().unwrap_or("?"),
            stage["posts_per_sec"].as_f64().unwrap_or(f64::NAN)
        );
    }
    let (b, v) = (&results[0], &results[1]);
    if b["documents"] != v["documents"] {
        bail!(
            "phases disagree on the number of documents: {} vs {}",
            b["documents"],
            v["documents"]
        );
    }
    println!(
        "vigie/baseline: throughput {:.2}x, peak RSS {:.2}x; vigie used {:.2} cores (user+sys / wall)",
        v["posts_per_sec"].as_f64().unwrap() / b["posts_per_sec"].as_f64().unwrap(),
        v["peak_rss_mib"].as_f64().unwrap() / b["peak_rss_mib"].as_f64().unwrap(),
        v["cpu_secs"].as_f64().unwrap_or(f64::NAN) / v["seconds"].as_f64().unwrap()
    );
    Ok(())
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn vigie(file: &Path) -> anyhow::Result<serde_json::Value> {
    let dir = tempfile::tempdir()?;
    let config = vigie_daemon::config::Config::from_toml("", "bench", std::iter::empty())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let options = vigie_daemon::commands::ReplayOptions {
        files: vec![file.to_owned()],
        speed: vigie_daemon::config::Speed::Max,
        data_dir: Some(dir.path().to_owned()),
        progress: false,
        alerts_to: None,
    };
    let summary = runtime.block_on(vigie_daemon::commands::replay(
        config,
        options,
        tokio_util::sync::CancellationToken::new(),
    ))?;
    let mut latencies = summary.batch_latencies.clone();
    latencies.sort_by(f64::total_cmp);
    let secs = summary.elapsed.as_secs_f64();
    Ok(json!({
        "phase": "vigie",
        "posts": summary.posts_read,
        "documents": summary.documents,
        "rejected": summary.rejected(),
        "seconds": secs,
        "posts_per_sec": summary.posts_read as f64 / secs,
        "cpu_secs": Process::This.cpu_secs().unwrap_or(f64::NAN),
        "latency_p50_ms": percentile(&latencies, 0.5) * 1e3,
        "latency_p90_ms": percentile(&latencies, 0.9) * 1e3,
        "latency_p99_ms": percentile(&latencies, 0.99) * 1e3,
        "peak_rss_mib": Process::This.peak_rss_mib().unwrap_or(f64::NAN),
    }))
}

/// Each stage alone on the same posts, decoded beforehand: analysis (on every core, as the
/// analysis stage runs it), the index (upserts and commits of analyzed posts), detection
/// (the detector and the alert policy on one thread, as the detection stage runs them).
fn stages(file: &Path) -> anyhow::Result<serde_json::Value> {
    use rayon::prelude::*;
    use std::sync::Arc;
    use vigie_domain::{decode_post, AnalyzedPost, DecodeLimits, Origin};
    let reader = open_jsonl(file)?;
    let started = Instant::now();
    let origin = || Origin::File {
        path: file.display().to_string(),
        line: 0,
    };
    let posts: Vec<vigie_domain::Post> = std::io::BufRead::lines(reader)
        .map_while(Result::ok)
        .filter_map(|line| decode_post(line.as_bytes(), &DecodeLimits::default(), origin()).ok())
        .collect();
    let decode_secs = started.elapsed().as_secs_f64();
    let count = posts.len() as f64;
    let mut results =
        vec![json!({"stage": "read + decode (one thread)", "posts_per_sec": count / decode_secs})];

    let analyzer = Arc::new(vigie_tokenize::Analyzer::new(
        vigie_tokenize::AnalyzerConfig::default(),
    ));
    let started = Instant::now();
    let analyzed: Vec<AnalyzedPost> = posts
        .into_par_iter()
        .map(|post| AnalyzedPost {
            analysis: analyzer.analyze_post(&post),
            post,
        })
        .collect();
    results.push(json!({"stage": "analyze (rayon, every core)", "posts_per_sec": count / started.elapsed().as_secs_f64()}));

    let dir = tempfile::tempdir()?;
    let config = vigie_index::IndexConfig::default();
    let commit_every = config.commit_every_posts.max(1);
    let mut index = vigie_index::PostIndex::open(dir.path(), analyzer.clone(), config)?;
    let started = Instant::now();
    for (n, post) in analyzed.iter().enumerate() {
        index.add(post)?;
        if (n + 1) % commit_every == 0 {
            index.commit(&vigie_domain::Checkpoint::new())?;
        }
    }
    index.commit(&vigie_domain::Checkpoint::new())?;
    results.push(json!({"stage": "index (Tantivy writer threads)", "posts_per_sec": count / started.elapsed().as_secs_f64()}));
    drop(index);

    let mut detector =
        vigie_detect::Detector::new(vigie_detect::DetectorConfig::default(), analyzer.clone())?;
    let mut policy = vigie_alert::AlertPolicy::new(vigie_alert::AlertConfig::default());
    let started = Instant::now();
    let mut notifications = 0usize;
    let mut last_step = None;
    for post in &analyzed {
        for event in detector.observe(post) {
            notifications += policy.on_event(&event).len();
        }
        // The alert policy's clock steps once per minute of event time, as in the daemon.
        if let Some(now) = detector.now() {
            let step = now.timestamp().div_euclid(60);
            if last_step != Some(step) {
                last_step = Some(step);
                notifications += policy.on_tick(now).len();
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    if notifications == 0 {
        bail!("detection produced no notification: a broken stage");
    }
    results.push(
        json!({"stage": "detect + alert policy (one thread)", "posts_per_sec": count / secs}),
    );
    Ok(json!({"phase": "stages", "stages": results}))
}

/// Plain Tantivy: serde-decoded posts, default tokenizer, the same commit cadence.
fn baseline(file: &Path) -> anyhow::Result<serde_json::Value> {
    use std::io::BufRead;
    use tantivy::schema::{Schema, FAST, INDEXED, STORED, STRING, TEXT};
    #[derive(serde::Deserialize)]
    struct Minimal {
        id: String,
        text: String,
        created_at: String,
        author: Option<String>,
    }
    let dir = tempfile::tempdir()?;
    let mut builder = Schema::builder();
    let id = builder.add_text_field("id", STRING | STORED);
    let author = builder.add_text_field("author", STRING | STORED);
    let created_at = builder.add_date_field("created_at", INDEXED | STORED | FAST);
    let text = builder.add_text_field("text", TEXT | STORED);
    let index = tantivy::Index::create_in_dir(dir.path(), builder.build())?;
    let mut writer: tantivy::IndexWriter = index.writer_with_num_threads(2, 128 << 20)?;
    let started = Instant::now();
    let reader = open_jsonl(file)?;
    let mut posts = 0u64;
    for line in reader.lines() {
        let line = line?;
        let Ok(post) = serde_json::from_str::<Minimal>(&line) else {
            continue;
        };
        let time = chrono::DateTime::parse_from_rfc3339(&post.created_at)?.timestamp();
        let mut doc = tantivy::TantivyDocument::default();
        doc.add_text(id, &post.id);
        if let Some(a) = &post.author {
            doc.add_text(author, a);
        }
        doc.add_date(created_at, tantivy::DateTime::from_timestamp_secs(time));
        doc.add_text(text, &post.text);
        writer.add_document(doc)?;
        posts += 1;
        if posts % 10_000 == 0 {
            writer.commit()?;
        }
    }
    writer.commit()?;
    let documents = index.reader()?.searcher().num_docs();
    let secs = started.elapsed().as_secs_f64();
    Ok(json!({
        "phase": "baseline",
        "posts": posts,
        "documents": documents,
        "seconds": secs,
        "posts_per_sec": posts as f64 / secs,
        "latency_p50_ms": null,
        "latency_p99_ms": null,
        "peak_rss_mib": Process::This.peak_rss_mib().unwrap_or(f64::NAN),
    }))
}
