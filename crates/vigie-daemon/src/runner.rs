//! The pipeline runner: moves batches from a source through the analyzer into the index,
//! and hands committed checkpoints back to the source.
//!
//! Two threads of control:
//! - the *source loop* (async): reads batches, counts them, forwards them to the indexer
//!   over a bounded channel (back-pressure), and commits checkpoints the indexer returns;
//! - the *indexer* (a dedicated OS thread, CPU-bound): analyzes each post once, upserts it
//!   into the index, commits on the index's policy (every N posts or T seconds) and sends
//!   the committed checkpoint back.
//!
//! Offsets therefore reach Kafka only after the posts before them are durable in the
//! index. On shutdown the source loop stops reading, the indexer drains what it has, makes
//! a final commit, and the source commits that last checkpoint.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vigie_domain::{AnalyzedPost, Checkpoint, Post};
use vigie_index::PostIndex;
use vigie_pipeline::{Source, SourceBatch};
use vigie_tokenize::Analyzer;

use crate::detection::Detection;
use crate::metrics::Metrics;

/// Batches in flight between the source and the indexer.
const BATCH_QUEUE_CAPACITY: usize = 4;

/// What the HTTP server reports about the running pipeline.
#[derive(Debug, Default)]
pub struct PipelineState {
    /// The source is connected (broker reachable, file opened).
    pub source_connected: AtomicBool,
    /// The index is open for writing.
    pub index_open: AtomicBool,
    /// A finite source (file, sample) has been read to the end and committed.
    pub input_finished: AtomicBool,
    /// Posts read so far (valid ones).
    pub posts_read: AtomicU64,
}

/// What a run did, for the replay summary.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Valid posts read.
    pub posts_read: u64,
    /// Posts written to the index.
    pub posts_indexed: u64,
    /// Rejected inputs by reason.
    pub rejected_by_reason: BTreeMap<&'static str, u64>,
    /// Searchable documents at the end.
    pub documents: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// True when the run stopped on a shutdown signal rather than at the end of input.
    pub interrupted: bool,
    /// Per batch, the time from reaching the indexer to being searchable (its commit), in
    /// seconds: the pipeline's freshness latency, for benchmarks.
    pub batch_latencies: Vec<f64>,
    /// Active narratives at the end of the run.
    pub narratives: Vec<vigie_domain::Narrative>,
}

impl RunSummary {
    /// Returns the total number of rejected inputs.
    pub fn rejected(&self) -> u64 {
        self.rejected_by_reason.values().sum()
    }
}

/// The stages the runner drives besides the source.
pub struct Stages {
    /// The index the posts go to.
    pub index: PostIndex,
    /// The analyzer run once per post.
    pub analyzer: Arc<Analyzer>,
    /// Narrative detection, when enabled.
    pub detection: Option<Detection>,
    /// How often detector state is saved (and source offsets committed with it).
    pub snapshot_interval: Duration,
}

/// Runs the pipeline until the source ends or `shutdown` is cancelled. Returns the summary
/// and the detection, which outlives the pipeline so that a finished replay can still be
/// inspected and its watchlists edited.
pub async fn run_pipeline<S: Source>(
    mut source: S,
    stages: Stages,
    metrics: Metrics,
    state: Arc<PipelineState>,
    shutdown: CancellationToken,
) -> anyhow::Result<(RunSummary, Option<Detection>)> {
    let started = Instant::now();
    let (batch_tx, batch_rx) = mpsc::channel::<SourceBatch>(BATCH_QUEUE_CAPACITY);
    let (committed_tx, mut committed_rx) = mpsc::unbounded_channel::<Checkpoint>();
    state.index_open.store(true, Ordering::Relaxed);
    let indexer = Indexer {
        index: stages.index,
        analyzer: stages.analyzer,
        detection: stages.detection,
        snapshot_interval: stages.snapshot_interval,
        last_snapshot: Instant::now(),
        metrics: metrics.clone(),
        committed_tx,
    };
    let runtime = tokio::runtime::Handle::current();
    let indexer_thread = std::thread::Builder::new()
        .name("vigie-indexer".into())
        .spawn(move || indexer.run(batch_rx, runtime))
        .context("failed to start the indexer thread")?;

    let mut summary = RunSummary::default();
    let queue_depth = metrics.queue_depth.with_label_values(&["analyze"]);
    let result: anyhow::Result<()> = async {
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    summary.interrupted = true;
                    break;
                }
                Some(checkpoint) = committed_rx.recv() => {
                    source.commit(&checkpoint).await.context("failed to commit source offsets")?;
                }
                batch = source.next_batch() => {
                    let Some(batch) = batch.context("source failed")? else { break };
                    observe_source(&source, &metrics, &state);
                    count_batch(&batch, &metrics, &mut summary);
                    state.posts_read.fetch_add(batch.posts.len() as u64, Ordering::Relaxed);
                    if batch.is_empty() && batch.checkpoint.is_empty() {
                        continue;
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => {
                            // Not yet handed on, so not committed: read again after restart.
                            summary.interrupted = true;
                            break;
                        }
                        sent = batch_tx.send(batch) => {
                            if sent.is_err() {
                                break; // the indexer stopped; its error is reported below
                            }
                        }
                    }
                    queue_depth.set((BATCH_QUEUE_CAPACITY - batch_tx.capacity()) as i64);
                }
            }
        }
        Ok(())
    }
    .await;

    // Let the indexer drain and make its final commit, then commit what it returns.
    drop(batch_tx);
    while let Some(checkpoint) = committed_rx.recv().await {
        if result.is_ok() {
            source
                .commit(&checkpoint)
                .await
                .context("failed to commit source offsets")?;
        }
    }
    let indexer_result = tokio::task::spawn_blocking(move || indexer_thread.join())
        .await
        .context("indexer join failed")?
        .map_err(|_| anyhow::anyhow!("the indexer thread panicked"))?;
    state.index_open.store(false, Ordering::Relaxed);
    let outcome = indexer_result?;
    result?;
    summary.posts_indexed = outcome.posts_indexed;
    summary.batch_latencies = outcome.batch_latencies;
    summary.documents = outcome.documents;
    summary.elapsed = started.elapsed();
    if !summary.interrupted {
        state.input_finished.store(true, Ordering::Relaxed);
    }
    Ok((summary, outcome.detection))
}

fn observe_source<S: Source>(source: &S, metrics: &Metrics, state: &PipelineState) {
    let status = source.status();
    state
        .source_connected
        .store(status.connected, Ordering::Relaxed);
    metrics.source_connected.set(i64::from(status.connected));
    for (topic, partition, lag) in status.lag {
        metrics
            .consumer_lag
            .with_label_values(&[topic.as_str(), &partition.to_string()])
            .set(lag);
    }
}

fn count_batch(batch: &SourceBatch, metrics: &Metrics, summary: &mut RunSummary) {
    for (topic, consumed) in &batch.consumed {
        metrics
            .messages_consumed
            .with_label_values(&[topic.as_str()])
            .inc_by(*consumed);
    }
    for rejected in &batch.rejections {
        let reason = rejected.rejection.reason.as_str();
        metrics.posts_rejected.with_label_values(&[reason]).inc();
        *summary.rejected_by_reason.entry(reason).or_default() += 1;
        tracing::debug!(origin = %rejected.origin.describe(), reason, detail = %rejected.rejection.detail, "rejected input");
    }
    if !batch.rejections.is_empty() {
        tracing::warn!(
            count = batch.rejections.len(),
            "rejected inputs kept for inspection"
        );
    }
    summary.posts_read += batch.posts.len() as u64;
}

struct IndexerOutcome {
    posts_indexed: u64,
    documents: u64,
    batch_latencies: Vec<f64>,
    detection: Option<Detection>,
}

/// Keeps at most this many latency samples (one per batch), so memory stays bounded on an
/// endless stream; later batches are not sampled.
const MAX_LATENCY_SAMPLES: usize = 100_000;

struct Indexer {
    index: PostIndex,
    analyzer: Arc<Analyzer>,
    detection: Option<Detection>,
    snapshot_interval: Duration,
    last_snapshot: Instant,
    metrics: Metrics,
    committed_tx: mpsc::UnboundedSender<Checkpoint>,
}

impl Indexer {
    fn run(
        mut self,
        mut batches: mpsc::Receiver<SourceBatch>,
        runtime: tokio::runtime::Handle,
    ) -> anyhow::Result<IndexerOutcome> {
        let mut pending = Checkpoint::new();
        let mut posts_indexed = 0u64;
        let mut uncommitted_offsets = false;
        let mut uncommitted_batches: Vec<Instant> = Vec::new();
        let mut batch_latencies = Vec::new();
        // Wake up at least this often so a quiet stream still commits on time.
        let tick = Duration::from_millis(250);
        loop {
            let received =
                runtime.block_on(async { tokio::time::timeout(tick, batches.recv()).await });
            match received {
                Ok(Some(batch)) => {
                    uncommitted_batches.push(Instant::now());
                    let analyzed = analyze_parallel(&self.analyzer, batch.posts);
                    for post in &analyzed {
                        self.index
                            .add(post)
                            .context("failed to add a post to the index")?;
                        if let Some(detection) = self.detection.as_mut() {
                            detection.observe(post);
                        }
                    }
                    if let Some(detection) = self.detection.as_mut() {
                        detection.tick();
                    }
                    if let Some(newest) =
                        analyzed.iter().map(|p| p.post.created_at.timestamp()).max()
                    {
                        if newest > self.metrics.newest_event_time.get() {
                            self.metrics.newest_event_time.set(newest);
                        }
                    }
                    posts_indexed += analyzed.len() as u64;
                    self.metrics.posts_indexed.inc_by(analyzed.len() as u64);
                    if !batch.checkpoint.is_empty() {
                        pending.merge(&batch.checkpoint);
                        uncommitted_offsets = true;
                    }
                }
                Ok(None) => break,
                Err(_elapsed) => {}
            }
            if let Some(detection) = self.detection.as_mut() {
                detection.apply_commands();
            }
            // Offsets of batches made only of rejects also need a commit, even with no post
            // pending in the index.
            if self.index.commit_due(Instant::now())
                || (uncommitted_offsets && self.index.pending_posts() == 0)
            {
                self.commit(&pending, false)?;
                uncommitted_offsets = false;
                record_latencies(&mut uncommitted_batches, &mut batch_latencies);
            } else if let Some(detection) = self.detection.as_mut() {
                detection.publish();
            }
        }
        if let Some(detection) = self.detection.as_mut() {
            detection.finish();
        }
        self.commit(&pending, true)?;
        record_latencies(&mut uncommitted_batches, &mut batch_latencies);
        Ok(IndexerOutcome {
            posts_indexed,
            documents: self.index.num_docs(),
            batch_latencies,
            detection: self.detection,
        })
    }

    /// Commits the index, publishes narratives, and hands the checkpoint back to the source
    /// once the detector state covering it is on disk (see `detection`'s module docs).
    fn commit(&mut self, checkpoint: &Checkpoint, last: bool) -> anyhow::Result<()> {
        let stats = self
            .index
            .commit(checkpoint)
            .context("failed to commit the index")?;
        self.metrics
            .commit_duration
            .observe(stats.duration.as_secs_f64());
        self.metrics
            .retention_deleted
            .inc_by(stats.deleted_by_retention);
        self.metrics
            .index_documents
            .set(self.index.num_docs() as i64);
        tracing::debug!(
            posts = stats.posts,
            duration_ms = stats.duration.as_millis() as u64,
            "index committed"
        );
        let committed = self.index.committed_checkpoint().clone();
        if let Some(detection) = self.detection.as_mut() {
            detection.publish();
            if detection.keeps_state() {
                if !last && self.last_snapshot.elapsed() < self.snapshot_interval {
                    return Ok(());
                }
                let started = Instant::now();
                detection
                    .write_snapshot(&committed)
                    .context("failed to save the detector state")?;
                self.last_snapshot = Instant::now();
                tracing::debug!(
                    duration_ms = started.elapsed().as_millis() as u64,
                    "detector state saved"
                );
            }
        }
        // The source loop may be gone (error path); the commit is durable regardless.
        let _ = self.committed_tx.send(committed);
        Ok(())
    }
}

fn record_latencies(received: &mut Vec<Instant>, latencies: &mut Vec<f64>) {
    let committed = Instant::now();
    for at in received.drain(..) {
        if latencies.len() < MAX_LATENCY_SAMPLES {
            latencies.push(committed.duration_since(at).as_secs_f64());
        }
    }
}

/// Analyzes posts on every core: analysis is the pipeline's CPU hot spot, and posts are
/// independent. Order is preserved so the index sees posts in source order.
fn analyze_parallel(analyzer: &Analyzer, posts: Vec<Post>) -> Vec<AnalyzedPost> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads == 1 || posts.len() < 64 {
        return posts
            .into_iter()
            .map(|post| analyze_one(analyzer, post))
            .collect();
    }
    let chunk = posts.len().div_ceil(threads);
    let mut chunks: Vec<Vec<Post>> = Vec::with_capacity(threads);
    let mut rest = posts;
    while rest.len() > chunk {
        let tail = rest.split_off(chunk);
        chunks.push(rest);
        rest = tail;
    }
    chunks.push(rest);
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|post| analyze_one(analyzer, post))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("analysis does not panic"))
            .collect()
    })
}

fn analyze_one(analyzer: &Analyzer, post: Post) -> AnalyzedPost {
    let analysis = analyzer.analyze_post(&post);
    AnalyzedPost { post, analysis }
}
