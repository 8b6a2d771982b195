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
//!
//! # When the data dir refuses writes
//!
//! A full disk or an I/O error on the data dir never stops the daemon and never loses or
//! skips a post: the write is retried with backoff until space returns.
//! - The outbox refuses notifications: they stay held, in order (`Alerting`), and the
//!   indexer takes no new batch until the outbox accepts them; no snapshot is written and
//!   no offset is handed back meanwhile, since both would cover notifications not yet
//!   durable.
//! - The index commit (or an add) fails: Tantivy keeps its previous commit; the writer is
//!   rolled back to it, the posts added since (kept, as posts, until their commit) are
//!   analyzed and added again, and the commit is retried; no new batch is taken meanwhile.
//! - The snapshot write fails: indexing goes on, but offsets stay at the last snapshot
//!   until one is written (a restart re-reads from there; the index de-duplicates).
//!
//! Each outage is logged once at ERROR with the path and the cause ("No space left on
//! device"), once at INFO when it ends, and counted in `vigie_storage_write_errors_total`
//! with `vigie_storage_write_failing` set while it lasts. The bounded channel from the
//! source loop fills up while the indexer waits, so the source stops reading.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vigie_domain::{AnalyzedPost, Checkpoint, Post};
use vigie_index::IndexError;
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
        shutdown: shutdown.clone(),
        uncommitted_posts: Vec::new(),
        index_failing: None,
        snapshot_failing: None,
        retry_backoff: Backoff::default(),
    };
    let runtime = tokio::runtime::Handle::current();
    let indexer_thread = std::thread::Builder::new()
        .name("vigie-indexer".into())
        .spawn(move || indexer.run(batch_rx, runtime))
        .context("failed to start the indexer thread")?;

    let mut summary = RunSummary::default();
    let queue_depth = metrics.queue_depth.with_label_values(&["analyze"]);
    // Offsets the indexer made durable but the source could not commit yet (broker down,
    // group rebalancing): merged into the next checkpoint and committed with it, since a
    // later commit covers an earlier one. Losing a commit only means re-reading posts the
    // index and the detector skip by id; stopping the daemon for it would be worse.
    let mut uncommitted = Checkpoint::new();
    let result: anyhow::Result<()> = async {
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    summary.interrupted = true;
                    break;
                }
                Some(checkpoint) = committed_rx.recv() => {
                    uncommitted.merge(&checkpoint);
                    commit_offsets(&mut source, &mut uncommitted, &metrics).await;
                }
                batch = source.next_batch() => {
                    let Some(batch) = batch.context("source failed")? else { break };
                    observe_source(&source, &metrics, &state);
                    count_batch(&batch, &metrics, &mut summary);
                    state.posts_read.fetch_add(batch.posts.len() as u64, Ordering::Relaxed);
                    if batch.is_idle() {
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
            uncommitted.merge(&checkpoint);
            commit_offsets(&mut source, &mut uncommitted, &metrics).await;
        }
    }
    if result.is_ok() && !uncommitted.is_empty() {
        // The final commit at shutdown: one more try, then report it (the posts will be
        // read again and skipped by id after the restart).
        if let Err(err) = source.commit(&uncommitted).await {
            tracing::error!(error = %format!("{err:#}"), "failed to commit source offsets at shutdown; posts since the last commit will be read again");
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

/// Commits `pending` offsets; on failure keeps them for the next try and counts it.
async fn commit_offsets<S: Source>(source: &mut S, pending: &mut Checkpoint, metrics: &Metrics) {
    if pending.is_empty() {
        return;
    }
    match source.commit(pending).await {
        Ok(()) => *pending = Checkpoint::new(),
        Err(err) => {
            metrics.offset_commit_failures.inc();
            tracing::warn!(error = %format!("{err:#}"), "failed to commit source offsets; retrying with the next checkpoint");
        }
    }
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
    shutdown: CancellationToken,
    /// Posts added to the index since its last commit, to add again after a failed
    /// commit (at most about `commit_every_posts` plus a batch).
    uncommitted_posts: Vec<Post>,
    /// Since when index writes fail, while they do.
    index_failing: Option<Instant>,
    /// Since when snapshot writes fail, while they do.
    snapshot_failing: Option<Instant>,
    retry_backoff: Backoff,
}

/// Delays between retries of a refused write: doubling from 100 ms to 10 s.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let exponent = self.failures.saturating_sub(1).min(7);
        Duration::from_millis(100u64 << exponent).min(Duration::from_secs(10))
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
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
            if self.held() {
                // Take no new batch while a write is refused: the channel fills and the
                // source stops reading (see the module docs).
                if self.shutdown.is_cancelled() {
                    break;
                }
                let delay = self.retry_backoff.next_delay();
                let shutdown = self.shutdown.clone();
                runtime.block_on(async {
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.cancelled() => {}
                    }
                });
                if let Some(detection) = self.detection.as_mut() {
                    detection.retry_held_notifications();
                    detection.apply_commands();
                    detection.publish();
                }
                if self.index_failing.is_some() {
                    self.commit(&pending, false)?;
                    if self.index_failing.is_none() {
                        uncommitted_offsets = false;
                        record_latencies(&mut uncommitted_batches, &mut batch_latencies);
                    }
                }
                if !self.held() {
                    self.retry_backoff.reset();
                }
                continue;
            }
            let received =
                runtime.block_on(async { tokio::time::timeout(tick, batches.recv()).await });
            match received {
                Ok(Some(mut batch)) => {
                    uncommitted_batches.push(Instant::now());
                    let analyzed =
                        analyze_parallel(&self.analyzer, std::mem::take(&mut batch.posts));
                    if let Some(newest) =
                        analyzed.iter().map(|p| p.post.created_at.timestamp()).max()
                    {
                        if newest > self.metrics.newest_event_time.get() {
                            self.metrics.newest_event_time.set(newest);
                        }
                    }
                    let count = analyzed.len() as u64;
                    // Partition changes go to detection where they happened among the posts.
                    let mut partition_events = batch.partition_events.iter().peekable();
                    for (read_before, post) in analyzed.into_iter().enumerate() {
                        self.uncommitted_posts.push(post.post.clone());
                        if self.index_failing.is_none() {
                            if let Err(err) = self.index.add(&post) {
                                // Kept in `uncommitted_posts`: added again on recovery.
                                self.index_write_failed(&err);
                            }
                        }
                        if let Some(detection) = self.detection.as_mut() {
                            // Every change at this point at once (see `partition_events`).
                            detection.partition_events(std::iter::from_fn(|| {
                                partition_events.next_if(|e| e.after_posts <= read_before)
                            }));
                            detection.observe(post);
                        }
                    }
                    if let Some(detection) = self.detection.as_mut() {
                        detection.partition_events(partition_events);
                    }
                    posts_indexed += count;
                    self.metrics.posts_indexed.inc_by(count);
                    if !batch.checkpoint.is_empty() {
                        pending.merge(&batch.checkpoint);
                        if let Some(detection) = self.detection.as_mut() {
                            detection.note_observed(&batch.checkpoint);
                        }
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
            if self.index_failing.is_some() {
                // Retried, with backoff, at the top of the loop.
            } else if self.index.commit_due(Instant::now())
                || (uncommitted_offsets && self.index.pending_posts() == 0)
            {
                self.commit(&pending, false)?;
                if self.index_failing.is_none() {
                    uncommitted_offsets = false;
                    record_latencies(&mut uncommitted_batches, &mut batch_latencies);
                }
            } else if let Some(detection) = self.detection.as_mut() {
                detection.publish();
            }
        }
        if let Some(detection) = self.detection.as_mut() {
            // The batch channel closes at the end of a finite input, and at a shutdown.
            detection.finish(!self.shutdown.is_cancelled());
        }
        self.commit(&pending, true)?;
        record_latencies(&mut uncommitted_batches, &mut batch_latencies);
        if self.held() {
            // Stopped during an outage: what was not written is not lost, since neither the
            // offsets nor the detector state were saved past it; it is read again (and its
            // notifications produced again) after the restart.
            anyhow::bail!(
                "stopped while the data dir refused writes ({}); offsets and detector state were not saved past them, so the next start reads those posts again",
                self.held_what().join(", ")
            );
        }
        Ok(IndexerOutcome {
            posts_indexed,
            documents: self.index.num_docs(),
            batch_latencies,
            detection: self.detection,
        })
    }

    /// Returns true while a refused write holds the pipeline (outbox or index).
    fn held(&self) -> bool {
        self.index_failing.is_some()
            || self
                .detection
                .as_ref()
                .is_some_and(|detection| detection.holds_notifications())
    }

    fn held_what(&self) -> Vec<&'static str> {
        let mut what = Vec::new();
        if self.index_failing.is_some() {
            what.push("index");
        }
        if self
            .detection
            .as_ref()
            .is_some_and(|detection| detection.holds_notifications())
        {
            what.push("alert outbox");
        }
        what
    }

    /// Records a failed index write: logged once per outage, counted, retried later.
    fn index_write_failed(&mut self, err: &IndexError) {
        self.metrics
            .storage_write_errors
            .with_label_values(&["index"])
            .inc();
        if self.index_failing.is_none() {
            self.index_failing = Some(Instant::now());
            self.metrics
                .storage_write_failing
                .with_label_values(&["index"])
                .set(1);
            tracing::error!(
                error = %crate::error_chain(err),
                pending_posts = self.uncommitted_posts.len(),
                "cannot write the post index; holding the pipeline and retrying (the last commit is intact)"
            );
        }
    }

    /// After a failed index write: rolls the writer back to the last commit and adds the
    /// posts since again; returns false when that fails too (still failing).
    fn restore_index_writer(&mut self) -> bool {
        if let Err(err) = self.index.rollback() {
            self.index_write_failed(&err);
            return false;
        }
        let posts = self.uncommitted_posts.clone();
        for post in analyze_parallel(&self.analyzer, posts) {
            if let Err(err) = self.index.add(&post) {
                self.index_write_failed(&err);
                return false;
            }
        }
        true
    }

    /// Commits the index, publishes narratives, and hands the checkpoint back to the source
    /// once the detector state covering it is on disk (see `detection`'s module docs).
    /// A refused write is recorded and retried later (see the module docs); only other
    /// failures are returned.
    fn commit(&mut self, checkpoint: &Checkpoint, last: bool) -> anyhow::Result<()> {
        if self.index_failing.is_some() && !self.restore_index_writer() {
            return Ok(());
        }
        let stats = match self.index.commit(checkpoint) {
            Ok(stats) => stats,
            Err(IndexError::Reload { source }) => {
                // Durable; searches catch up at the next commit's reload.
                tracing::warn!(error = %crate::error_chain(&source), "index committed but searches do not see it yet");
                vigie_index::CommitStats {
                    posts: 0,
                    deleted_by_retention: 0,
                    duration: Duration::ZERO,
                }
            }
            Err(err) => {
                self.index_write_failed(&err);
                return Ok(());
            }
        };
        self.uncommitted_posts.clear();
        if let Some(since) = self.index_failing.take() {
            self.metrics
                .storage_write_failing
                .with_label_values(&["index"])
                .set(0);
            tracing::info!(
                outage_secs = since.elapsed().as_secs(),
                "the post index accepts writes again"
            );
        }
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
        let mut committed = self.index.committed_checkpoint().clone();
        if let Some(detection) = self.detection.as_mut() {
            if detection.keeps_state() {
                // The detector's position, not the index's: see `Detection::observed_through`.
                committed = detection.observed_through().clone();
            }
            detection.publish();
            if detection.holds_notifications() {
                // A snapshot or an offset now would cover notifications the outbox has
                // not taken yet: a crash would lose them.
                return Ok(());
            }
            if detection.keeps_state() {
                let due = self.snapshot_failing.is_some()
                    || self.last_snapshot.elapsed() >= self.snapshot_interval;
                if !last && !due {
                    return Ok(());
                }
                let started = Instant::now();
                if let Err(err) = detection.write_snapshot(&committed) {
                    self.metrics
                        .storage_write_errors
                        .with_label_values(&["snapshot"])
                        .inc();
                    if self.snapshot_failing.is_none() {
                        self.snapshot_failing = Some(Instant::now());
                        self.metrics
                            .storage_write_failing
                            .with_label_values(&["snapshot"])
                            .set(1);
                        tracing::error!(error = format!("{err:#}"), "cannot save the detector state; offsets stay at the last snapshot until it can");
                    }
                    return Ok(());
                }
                if let Some(since) = self.snapshot_failing.take() {
                    self.metrics
                        .storage_write_failing
                        .with_label_values(&["snapshot"])
                        .set(0);
                    tracing::info!(
                        outage_secs = since.elapsed().as_secs(),
                        "the detector state is saved again"
                    );
                }
                self.last_snapshot = Instant::now();
                let duration_ms = started.elapsed().as_millis() as u64;
                if last {
                    tracing::info!(duration_ms, "final detector state saved");
                } else {
                    tracing::debug!(duration_ms, "detector state saved");
                }
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

#[cfg(test)]
pub(crate) mod tests;
