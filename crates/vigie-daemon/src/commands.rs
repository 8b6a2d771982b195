//! The `vigie` subcommands: `run`, `replay`, `search` and `check-config`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use vigie_index::{PostIndex, PostSearcher, SearchOrder, SearchRequest, SearchResults};
use vigie_pipeline::{FileSource, FileSourceConfig};
use vigie_source_kafka::KafkaSource;
use vigie_tokenize::Analyzer;

use crate::config::{CheckedConfig, Config, SourceKind, Speed};
use crate::detection::{Detection, DetectionHandle};
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::runner::{run_pipeline, PipelineState, RunSummary, Stages};

/// The built-in sample of real posts replayed by `vigie run` with no configuration
/// (see `crates/vigie-daemon/data/README.md` for its source and licence).
pub const SAMPLE_POSTS_GZ: &[u8] = include_bytes!("../data/sample.jsonl.gz");

/// Name of the index directory inside the data directory.
pub const INDEX_DIR: &str = "index";
/// Name of the file collecting rejected lines of file inputs.
pub const REJECTED_FILE: &str = "rejected.jsonl";

/// How long shutdown may take before the process gives up and exits non-zero.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(9);

/// Loads the configuration from a file (or the defaults) and the `VIGIE_…` environment.
pub fn load_config(path: Option<&Path>) -> anyhow::Result<CheckedConfig> {
    Ok(Config::load(path, std::env::vars())?)
}

/// Loads the configuration of `vigie run`: a file must also say where posts come from
/// (`source.kind`); only a run with no file replays the built-in sample unasked.
pub fn load_run_config(path: Option<&Path>) -> anyhow::Result<CheckedConfig> {
    let config = load_config(path)?;
    if let Some(path) = path {
        config.require_source(path)?;
    }
    Ok(config)
}

/// `vigie check-config FILE`: validates a configuration for `vigie run` and prints the
/// effective values, secrets as `[redacted]`.
pub fn check_config(path: &Path) -> anyhow::Result<()> {
    let config = load_run_config(Some(path))?;
    let effective =
        toml::to_string_pretty(&config.raw).context("cannot print the configuration")?;
    println!(
        "# {} is valid; effective configuration (after VIGIE_… overrides):\n{effective}",
        path.display()
    );
    Ok(())
}

/// `vigie run`: runs the daemon until SIGINT/SIGTERM.
pub async fn run(mut config: CheckedConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    crate::config::ensure_account_salt(&mut config.raw.alert.policy, &config.raw.data_dir)?;
    let raw = &config.raw;
    std::fs::create_dir_all(&raw.data_dir)
        .with_context(|| format!("cannot create data directory {}", raw.data_dir.display()))?;
    let metrics = Metrics::new();
    // Detector state survives restarts only with a source that resumes from offsets; a file
    // replay starts from the top, so it starts with fresh baselines too.
    let keep_state = raw.source.kind == SourceKind::Kafka;
    let (stages, detection) = open_stages(&config, keep_state, &metrics)?;
    let delivery = detection.delivery.clone();
    let state = Arc::new(PipelineState::default());
    let app = AppState {
        metrics: metrics.clone(),
        pipeline: state.clone(),
        searcher: stages.index.searcher(),
        detection,
    };
    let server = http::serve(
        &config.http,
        &raw.alert.policy.account_salt,
        app,
        shutdown.clone(),
    )
    .await?;
    let url = format!("http://{}/", config.http_listen);
    tracing::info!(%url, data_dir = %raw.data_dir.display(), "vigie is up; open the url to search posts, /metrics for Prometheus");

    let (summary, detection) = match raw.source.kind {
        SourceKind::Kafka => {
            let kafka = raw.kafka.clone().context("[kafka] is required")?;
            tracing::info!(brokers = %kafka.brokers, topics = ?kafka.topics, group = %kafka.group_id, "connecting to kafka");
            let source = tokio::select! {
                source = KafkaSource::connect(kafka, raw.input.limits()) => source.context("cannot start the Kafka source")?,
                _ = shutdown.cancelled() => return Ok(()),
            };
            run_pipeline(source, stages, metrics, state, shutdown.clone()).await?
        }
        SourceKind::Sample | SourceKind::Files => {
            let paths = match raw.source.kind {
                SourceKind::Sample => {
                    tracing::info!("source.kind = \"sample\" (the default with no configuration file): replaying the built-in sample of 5,271 real posts (IRA tweets, 2015-11-26, incl. the #KochFarms hoax)");
                    vec![write_sample(&raw.data_dir)?]
                }
                _ => raw.source.files.clone(),
            };
            let source = file_source(paths, raw.source.speed, &config)?;
            run_pipeline(source, stages, metrics, state, shutdown.clone()).await?
        }
    };
    if !summary.interrupted {
        tracing::info!(
            posts_read = summary.posts_read,
            indexed = summary.posts_indexed,
            rejected = summary.rejected(),
            documents = summary.documents,
            %url,
            "input replayed; still serving search and metrics until ctrl-c"
        );
        // Keep applying watchlist changes from the API while serving the finished replay.
        if let Some(mut detection) = detection {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => {
                        detection.apply_commands();
                        detection.publish();
                    }
                }
            }
        }
        shutdown.cancelled().await;
    }
    tracing::info!("shutting down");
    drain_alerts(&delivery, Duration::from_secs(3)).await;
    let _ = server.await;
    Ok(())
}

/// Gives pending alert deliveries a little time; what is left stays in the outbox and is
/// sent, with the same ids, at the next start.
async fn drain_alerts(delivery: &vigie_alert_delivery::AlertDelivery, timeout: Duration) {
    if !delivery.drain(timeout).await {
        tracing::warn!(
            pending = delivery.depth(),
            "alert notifications still pending; they are kept in the outbox"
        );
    }
}

/// Opens the analyzer, the index and the detector.
fn open_stages(
    config: &CheckedConfig,
    keep_state: bool,
    metrics: &Metrics,
) -> anyhow::Result<(Stages, DetectionHandle)> {
    let raw = &config.raw;
    let analyzer = Arc::new(Analyzer::new(raw.analyzer.clone()));
    let index = open_index(&raw.data_dir, &analyzer, config)?;
    let delivery = crate::alerting::start_delivery(&raw.alert, &raw.data_dir, metrics)?;
    let (detection, handle) = Detection::open(
        raw.detect.clone(),
        raw.alert.policy.clone(),
        delivery.clone(),
        analyzer.clone(),
        &raw.data_dir,
        keep_state,
        metrics.clone(),
    )?;
    let stages = Stages {
        index,
        analyzer,
        detection: Some(detection),
        snapshot_interval: Duration::from_secs(raw.snapshot.interval_secs),
    };
    Ok((stages, handle))
}

fn open_index(
    data_dir: &Path,
    analyzer: &Arc<Analyzer>,
    config: &CheckedConfig,
) -> anyhow::Result<PostIndex> {
    let dir = data_dir.join(INDEX_DIR);
    PostIndex::open(&dir, analyzer.clone(), config.raw.index.clone())
        .with_context(|| format!("cannot open the index in {}", dir.display()))
}

fn write_sample(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let path = data_dir.join("sample.jsonl.gz");
    if std::fs::read(&path).ok().as_deref() != Some(SAMPLE_POSTS_GZ) {
        std::fs::write(&path, SAMPLE_POSTS_GZ)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(path)
}

fn file_source(
    paths: Vec<PathBuf>,
    speed: Speed,
    config: &CheckedConfig,
) -> anyhow::Result<FileSource> {
    let raw = &config.raw;
    Ok(FileSource::start(FileSourceConfig {
        paths,
        pace: speed.into(),
        batch_size: raw.source.batch_size,
        limits: raw.input.limits(),
        rejected_path: Some(raw.data_dir.join(REJECTED_FILE)),
    })?)
}

/// Options of `vigie replay`.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Files to replay, in order.
    pub files: Vec<PathBuf>,
    /// Replay speed.
    pub speed: Speed,
    /// Overrides `data_dir` of the configuration.
    pub data_dir: Option<PathBuf>,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
    /// Backtest: write the alert notifications to this JSONL file instead of the
    /// configured sinks.
    pub alerts_to: Option<PathBuf>,
}

/// `vigie replay`: runs the whole pipeline over files and returns the summary.
pub async fn replay(
    mut config: CheckedConfig,
    options: ReplayOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<RunSummary> {
    if let Some(dir) = options.data_dir {
        config.raw.data_dir = dir;
    }
    if let Some(path) = &options.alerts_to {
        // A backtest must not page anyone: the file replaces every configured sink.
        config.raw.alert.sinks = vec![vigie_alert_delivery::SinkConfig {
            name: "backtest".into(),
            kind: vigie_alert_delivery::SinkKind::File,
            path: path.display().to_string(),
            ..vigie_alert_delivery::SinkConfig::default()
        }];
    }
    crate::config::ensure_account_salt(&mut config.raw.alert.policy, &config.raw.data_dir)?;
    let raw = &config.raw;
    std::fs::create_dir_all(&raw.data_dir)
        .with_context(|| format!("cannot create data directory {}", raw.data_dir.display()))?;
    let metrics = Metrics::new();
    let (stages, detection) = open_stages(&config, false, &metrics)?;
    let source = file_source(options.files, options.speed, &config)?;
    let state = Arc::new(PipelineState::default());
    let progress = options
        .progress
        .then(|| spawn_progress_bar(source.progress_handle(), state.clone()));
    let summary = run_pipeline(source, stages, metrics, state, shutdown)
        .await
        .map(|(summary, _)| summary);
    if let Some((bar, task)) = progress {
        task.abort();
        bar.finish_and_clear();
    }
    drain_alerts(&detection.delivery, Duration::from_secs(10)).await;
    let mut summary = summary?;
    summary.narratives = detection
        .board
        .read()
        .expect("board lock is never poisoned")
        .narratives
        .clone();
    Ok(summary)
}

fn spawn_progress_bar(
    progress: impl Fn() -> (u64, u64) + Send + Sync + 'static,
    state: Arc<PipelineState>,
) -> (indicatif::ProgressBar, tokio::task::JoinHandle<()>) {
    let (_, total) = progress();
    let bar = indicatif::ProgressBar::new(total.max(1));
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
        )
        .expect("the template is valid"),
    );
    let handle = bar.clone();
    let task = tokio::spawn(async move {
        let started = std::time::Instant::now();
        loop {
            let (read, _) = progress();
            handle.set_position(read);
            let posts = state.posts_read.load(Ordering::Relaxed);
            let rate = posts as f64 / started.elapsed().as_secs_f64().max(1e-3);
            handle.set_message(format!("{posts} posts, {rate:.0} posts/s"));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    (bar, task)
}

/// Prints the replay summary.
pub fn print_summary(
    summary: &RunSummary,
    data_dir: &Path,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let secs = summary.elapsed.as_secs_f64();
    let rate = summary.posts_read as f64 / secs.max(1e-9);
    if summary.interrupted {
        writeln!(
            out,
            "replay interrupted; everything read so far is committed"
        )?;
    }
    writeln!(out, "posts read   {}", summary.posts_read)?;
    writeln!(
        out,
        "indexed      {}  (the index holds {} documents)",
        summary.posts_indexed, summary.documents
    )?;
    writeln!(out, "rejected     {}", summary.rejected())?;
    for (reason, count) in &summary.rejected_by_reason {
        writeln!(out, "  {reason:<13} {count}")?;
    }
    if summary.rejected() > 0 {
        writeln!(
            out,
            "  rejected lines are in {}",
            data_dir.join(REJECTED_FILE).display()
        )?;
    }
    writeln!(out, "elapsed      {secs:.2} s")?;
    writeln!(out, "throughput   {rate:.0} posts/s")?;
    write_narratives(&summary.narratives, out)
}

/// Storylines printed in the summary, most severe first.
const SUMMARY_STORYLINES: usize = 10;
/// Representative posts and claims printed per storyline.
const SUMMARY_EVIDENCE: usize = 3;

/// Prints the storylines, each with its headline, its representative posts (one per
/// group of near-identical posts, "×N" and language) and its largest claims.
fn write_narratives(all: &[vigie_domain::Narrative], out: &mut impl Write) -> std::io::Result<()> {
    let by_severity = |a: &&vigie_domain::Narrative, b: &&vigie_domain::Narrative| {
        b.severity
            .cmp(&a.severity)
            .then(b.posts_total.cmp(&a.posts_total))
            .then(a.id.cmp(&b.id))
    };
    let mut storylines: Vec<_> = all.iter().filter(|n| n.is_storyline()).collect();
    storylines.sort_by(by_severity);
    let claims = all.len() - storylines.len();
    writeln!(
        out,
        "narratives   {} storylines, {claims} claims",
        storylines.len()
    )?;
    for storyline in storylines.iter().take(SUMMARY_STORYLINES) {
        write_narrative_line(storyline, "  ", out)?;
        if !storyline.headline.is_empty() {
            writeln!(out, "         “{}”", printable(&storyline.headline))?;
        }
        for shown in storyline.representatives.iter().take(SUMMARY_EVIDENCE) {
            writeln!(
                out,
                "         ×{:<4} {:<3} {}",
                shown.copies,
                printable(&shown.lang),
                printable(&shown.text)
            )?;
        }
        let mut inside: Vec<_> = all
            .iter()
            .filter(|n| n.parent == Some(storyline.id))
            .collect();
        inside.sort_by(by_severity);
        for claim in inside.iter().take(SUMMARY_EVIDENCE) {
            write_narrative_line(claim, "    ↳ ", out)?;
        }
        if inside.len() > SUMMARY_EVIDENCE {
            writeln!(
                out,
                "    ↳ … {} more claims",
                inside.len() - SUMMARY_EVIDENCE
            )?;
        }
    }
    Ok(())
}

/// Prints one narrative's figures and label.
fn write_narrative_line(
    narrative: &vigie_domain::Narrative,
    indent: &str,
    out: &mut impl Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{indent}{:<6} {:<8} {:<9} {:>6} posts {:>5} authors  growth {:>5.1}x  coordination {:.2}  {}",
        narrative.id.to_string(),
        narrative.severity.as_str(),
        narrative.status.as_str(),
        narrative.posts_total,
        narrative.distinct_authors,
        narrative.growth_ratio,
        narrative.coordination.score,
        printable(&narrative.label)
    )
}

/// Returns post text fit for one terminal line: control characters (line breaks,
/// escape sequences a post could use to rewrite the terminal) become spaces.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Options of `vigie search`.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// The data directory of a daemon or replay.
    pub data_dir: PathBuf,
    /// The search.
    pub request: SearchRequest,
    /// Print JSON instead of text.
    pub json: bool,
}

/// `vigie search`: searches an index on disk (a running daemon may hold it).
pub fn search(
    config: &CheckedConfig,
    options: &SearchOptions,
    out: &mut impl Write,
) -> anyhow::Result<SearchResults> {
    let dir = options.data_dir.join(INDEX_DIR);
    if !dir.exists() {
        anyhow::bail!(
            "no index in {} (run `vigie replay FILE --data-dir {}` first)",
            options.data_dir.display(),
            options.data_dir.display()
        );
    }
    let analyzer = Arc::new(Analyzer::new(config.raw.analyzer.clone()));
    let searcher = PostSearcher::open_read_only(&dir, analyzer)
        .with_context(|| format!("cannot open the index in {}", dir.display()))?;
    let results = searcher.search(&options.request)?;
    if options.json {
        serde_json::to_writer_pretty(&mut *out, &results)?;
        writeln!(out)?;
    } else {
        let order = match options.request.order {
            SearchOrder::Newest => "newest first",
            SearchOrder::Relevance => "by relevance",
        };
        writeln!(
            out,
            "{} posts match; showing {} {order}",
            results.total_hits,
            results.hits.len()
        )?;
        for hit in &results.hits {
            writeln!(
                out,
                "\n{}  {}  {}  {}",
                hit.created_at.format("%Y-%m-%d %H:%M:%S"),
                hit.author.as_deref().unwrap_or("-"),
                hit.lang,
                hit.id
            )?;
            writeln!(out, "  {}", plain_snippet(&hit.snippet))?;
        }
    }
    Ok(results)
}

/// Turns the HTML snippet into terminal text: matches in `[…]`, entities decoded.
fn plain_snippet(snippet: &str) -> String {
    snippet
        .replace("<b>", "[")
        .replace("</b>", "]")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
        .replace('\n', " ")
}

/// Returns true when standard error is a terminal (progress bars, colours).
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Waits for SIGINT or SIGTERM, cancels `shutdown`, and enforces the shutdown deadline:
/// a second signal, or a shutdown slower than the deadline, exits at once with an error.
pub fn spawn_signal_handler(shutdown: CancellationToken) {
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received: stopping intake, flushing and committing");
        shutdown.cancel();
        tokio::select! {
            _ = wait_for_signal() => {
                tracing::error!("second signal: exiting without a final commit");
                std::process::exit(130);
            }
            _ = tokio::time::sleep(SHUTDOWN_DEADLINE) => {
                tracing::error!(deadline_secs = SHUTDOWN_DEADLINE.as_secs(), "shutdown took too long; exiting without a final commit");
                std::process::exit(1);
            }
        }
    });
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler installs");
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_read_plainly_in_a_terminal() {
        assert_eq!(
            plain_snippet("a <b>hebdo</b> &amp; &lt;x&gt;"),
            "a [hebdo] & <x>"
        );
    }

    fn narrative(id: u64, parent: Option<u64>, label: &str) -> vigie_domain::Narrative {
        let at = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        vigie_domain::Narrative {
            id: vigie_domain::NarrativeId(id),
            parent: parent.map(vigie_domain::NarrativeId),
            label: label.into(),
            headline: format!("headline of {label}\n\u{1b}[2Jcleared"),
            terms: Vec::new(),
            hashtags: Vec::new(),
            first_seen: at,
            last_seen: at,
            status: vigie_domain::NarrativeStatus::Growing,
            severity: vigie_domain::Severity::High,
            severity_reasons: Vec::new(),
            posts_total: 40 - id,
            posts_in_window: 1.0,
            baseline_posts_per_window: 0.0,
            growth_ratio: 1.0,
            growth_z: 1.0,
            distinct_authors: 3,
            anonymous_posts: 0,
            engagement: 0,
            languages: Vec::new(),
            member_post_ids: Vec::new(),
            window_post_ids: Vec::new(),
            representative_post_ids: vec!["p1".into()],
            representatives: vec![vigie_domain::RepresentativePost {
                post_id: "p1".into(),
                text: "the plant exploded".into(),
                lang: "en".into(),
                copies: 14,
            }],
            coordination: Default::default(),
            watch_matches: Vec::new(),
            merged_ids: Vec::new(),
        }
    }

    #[test]
    fn issue_8_the_summary_shows_storylines_with_headline_evidence_and_claims() {
        let all = vec![
            narrative(1, None, "Columbian Chemicals #ColumbianChemicals"),
            narrative(2, Some(1), "plant exploded"),
            narrative(3, None, "other story"),
        ];
        let mut out = Vec::new();
        write_narratives(&all, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("narratives   2 storylines, 1 claims\n"),
            "{text}"
        );
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].ends_with("Columbian Chemicals #ColumbianChemicals"),
            "{text}"
        );
        // The headline on one line, a post's control characters made harmless.
        assert!(
            lines[2].contains("“headline of Columbian Chemicals #ColumbianChemicals"),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(
            lines[3].contains("×14") && lines[3].contains("en  the plant exploded"),
            "{text}"
        );
        assert!(
            lines[4].starts_with("    ↳ n2") && lines[4].ends_with("plant exploded"),
            "{text}"
        );
        assert!(lines[5].starts_with("  n3"), "{text}");
    }
}

/// Options of `vigie produce`.
#[derive(Debug, Clone)]
pub struct ProduceOptions {
    /// Files to produce, in order (JSONL, .gz, `-`); empty with `sample` set.
    pub files: Vec<PathBuf>,
    /// Produce the built-in sample.
    pub sample: bool,
    /// Brokers and librdkafka properties (TLS/SASL).
    pub kafka: vigie_source_kafka::KafkaConfig,
    /// The topic to write to.
    pub topic: String,
    /// `max`, or a multiple of event time.
    pub speed: Speed,
}

/// Messages in flight at once while producing.
const PRODUCE_IN_FLIGHT: usize = 1000;

/// `vigie produce`: writes each line of the inputs as one message (key = the post's id),
/// paced by the posts' event time; returns the number of messages acknowledged.
pub async fn produce(options: ProduceOptions, shutdown: CancellationToken) -> anyhow::Result<u64> {
    use std::io::BufRead;
    let producer = vigie_source_kafka::PostProducer::new(&options.kafka)?;
    let (lines_tx, mut lines_rx) =
        tokio::sync::mpsc::channel::<anyhow::Result<Vec<u8>>>(PRODUCE_IN_FLIGHT);
    let (files, sample) = (options.files.clone(), options.sample);
    // Reading (and gunzipping) is blocking work: a plain thread feeds the async sender.
    std::thread::spawn(move || {
        let mut inputs: Vec<(String, Box<dyn BufRead>)> = Vec::new();
        if sample {
            let reader = flate2::read::MultiGzDecoder::new(SAMPLE_POSTS_GZ);
            inputs.push(("sample".into(), Box::new(std::io::BufReader::new(reader))));
        }
        for path in files {
            match open_lines(&path) {
                Ok(reader) => inputs.push((path.display().to_string(), reader)),
                Err(err) => {
                    let _ = lines_tx.blocking_send(Err(err));
                    return;
                }
            }
        }
        for (name, reader) in inputs {
            for line in reader.split(b'\n') {
                let line = line.with_context(|| format!("cannot read {name}"));
                let stop = line.is_err();
                if lines_tx.blocking_send(line).is_err() || stop {
                    return;
                }
            }
        }
    });
    let started = std::time::Instant::now();
    let mut first_event: Option<chrono::DateTime<chrono::Utc>> = None;
    let mut in_flight = tokio::task::JoinSet::new();
    let mut acknowledged = 0u64;
    let limits = vigie_domain::DecodeLimits::default();
    loop {
        let line = tokio::select! {
            _ = shutdown.cancelled() => break,
            line = lines_rx.recv() => match line {
                Some(line) => line?,
                None => break,
            },
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        // The post's id keys the message (same post, same partition); its event time paces
        // the replay. A line that does not decode is sent as is: the daemon dead-letters it.
        let origin = vigie_domain::Origin::File {
            path: "produce".into(),
            line: 0,
        };
        let decoded = vigie_domain::decode_post(&line, &limits, origin).ok();
        if let (Speed::Times(speed), Some(post)) = (options.speed, &decoded) {
            let first = *first_event.get_or_insert(post.created_at);
            let offset =
                (post.created_at - first).num_milliseconds().max(0) as f64 / 1000.0 / speed;
            let due = started + Duration::from_secs_f64(offset.min(86_400.0 * 365.0));
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep_until(due.into()) => {}
            }
        }
        while in_flight.len() >= PRODUCE_IN_FLIGHT {
            in_flight.join_next().await.expect("not empty")??;
            acknowledged += 1;
        }
        let (producer, topic) = (producer.clone(), options.topic.clone());
        let key = decoded.map(|post| post.id.into_bytes());
        in_flight.spawn(async move { producer.send(&topic, key.as_deref(), &line).await });
    }
    while let Some(sent) = in_flight.join_next().await {
        sent??;
        acknowledged += 1;
    }
    Ok(acknowledged)
}

fn open_lines(path: &Path) -> anyhow::Result<Box<dyn std::io::BufRead>> {
    use std::io::BufRead;
    let raw: Box<dyn std::io::Read + Send> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        )
    };
    let mut reader = std::io::BufReader::new(raw);
    let gzip = reader.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        Box::new(std::io::BufReader::new(flate2::read::MultiGzDecoder::new(
            reader,
        )))
    } else {
        Box::new(reader)
    })
}

/// Prints the notifications a backtest wrote: one line each, in event time.
pub fn print_backtest(path: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
    writeln!(
        out,
        "\nalert notifications (event time), also in {}:",
        path.display()
    )?;
    for line in text.lines() {
        let record: serde_json::Value = serde_json::from_str(line).context("bad backtest line")?;
        let kind = record["kind"].as_str().unwrap_or("?");
        // Counted per level (issue 8): a storyline's claims are its children, not duplicates.
        let level = record["alert"]["level"].as_str().unwrap_or("storyline");
        *counts.entry(format!("{kind} {level}")).or_default() += 1;
        writeln!(
            out,
            "  {}  {:<9} {:<8} {:<9} {}",
            record["at"].as_str().unwrap_or("?"),
            kind,
            record["alert"]["severity"].as_str().unwrap_or("?"),
            level,
            record["alert"]["title"].as_str().unwrap_or("?")
        )?;
    }
    let summary: Vec<String> = counts
        .iter()
        .map(|(kind, n)| format!("{n} {kind}"))
        .collect();
    writeln!(
        out,
        "  total: {}",
        if summary.is_empty() {
            "none".to_owned()
        } else {
            summary.join(", ")
        }
    )?;
    Ok(())
}
