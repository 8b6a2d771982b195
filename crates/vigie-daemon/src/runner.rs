//! The pipeline runner: wires the stages (`crate::stages`) on their own threads between
//! bounded channels, feeds them from the source, and commits the offsets every stateful
//! stage has made durable (the data-flow diagram is in `vigie_pipeline`'s crate docs).
//!
//! - The *source loop* (an async task) reads batches, counts them and hands them to the
//!   analysis stage (a full channel stops it reading: back-pressure), and commits the
//!   checkpoints the [`CheckpointTracker`] allows: per partition, the smallest offset both
//!   the index (its commit) and detection (its snapshot) have made durable.
//! - `vigie-analyze` analyzes each post once, on every core, and hands the same shared
//!   batch to `vigie-index` and `vigie-detect`, which run side by side.
//!
//! On shutdown the source loop stops reading; each stage drains what it has, makes its
//! final commit or snapshot, and the source commits what they both cover.
//!
//! # When the data dir refuses writes
//!
//! A full disk or an I/O error on the data dir never stops the daemon and never loses or
//! skips a post: the stage whose write is refused (the index, or detection's outbox) is
//! held and retries with back-off until space returns, its input channel fills, and the
//! stages before it and then the source stop in turn (see `stages::index` and
//! `stages::detect`). A refused snapshot only keeps offsets at the last snapshot. The
//! outage is logged once at ERROR with the path and the cause, once at INFO when it ends,
//! and counted in `vigie_storage_write_errors_total` with `vigie_storage_write_failing` set
//! while it lasts.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vigie_domain::{Checkpoint, Post};
use vigie_index::PostIndex;
use vigie_pipeline::{
    spawn_stage, Batch, CheckpointTracker, Outlet, Source, SourceBatch, Stage, StageOptions,
};
use vigie_tokenize::Analyzer;

use crate::detection::Detection;
use crate::metrics::Metrics;
use crate::stages::{AnalyzeStage, DetectOutcome, DetectStage, IndexStage};

/// Batches in flight in each channel between two stages.
const BATCH_QUEUE_CAPACITY: usize = 4;

/// The longest a stage waits for a batch before its time-driven work (commit on time,
/// retries, HTTP commands, publishing).
const STAGE_TICK: Duration = Duration::from_millis(250);

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
    let Stages {
        index,
        analyzer,
        detection,
        snapshot_interval,
    } = stages;
    let options = StageOptions {
        tick: STAGE_TICK,
        shutdown: shutdown.clone(),
        runtime: tokio::runtime::Handle::current(),
    };
    let mut tracker = CheckpointTracker::new();
    let (durable_tx, mut durable_rx) = mpsc::unbounded_channel();

    let (index_tx, index_rx) = mpsc::channel(BATCH_QUEUE_CAPACITY);
    let mut downstream = vec![index_tx];
    let mut downstream_names = vec![IndexStage::NAME];
    let index_report = tracker.register(IndexStage::NAME, durable_tx.clone());
    let index_thread = spawn_stage(
        IndexStage::new(index, metrics.clone()),
        index_rx,
        Outlet::new(Vec::new(), Some(index_report)),
        options.clone(),
    )
    .context("failed to start the index thread")?;
    state.index_open.store(true, Ordering::Relaxed);
    // Partitions the detect stage asks the source to pause (event-time flow control).
    let (pause_tx, mut pause_rx) = tokio::sync::watch::channel(Vec::<(String, i32)>::new());
    let detect_thread = match detection {
        Some(detection) => {
            let (detect_tx, detect_rx) = mpsc::channel(BATCH_QUEUE_CAPACITY);
            downstream.push(detect_tx);
            downstream_names.push(DetectStage::NAME);
            let report = tracker.register(DetectStage::NAME, durable_tx.clone());
            Some(
                spawn_stage(
                    DetectStage::new(detection, metrics.clone(), snapshot_interval, pause_tx),
                    detect_rx,
                    Outlet::new(Vec::new(), Some(report)),
                    options.clone(),
                )
                .context("failed to start the detection thread")?,
            )
        }
        None => None,
    };
    // Only the stages hold the durable channel now: it closes once they all finished.
    drop(durable_tx);
    let (batch_tx, batch_rx) = mpsc::channel::<Batch<Post>>(BATCH_QUEUE_CAPACITY);
    let analyze_thread = spawn_stage(
        AnalyzeStage::new(analyzer, metrics.clone(), downstream_names),
        batch_rx,
        Outlet::new(downstream, None),
        options,
    )
    .context("failed to start the analysis thread")?;

    let mut summary = RunSummary::default();
    let queue_depth = metrics.queue_depth.with_label_values(&[AnalyzeStage::NAME]);
    // What the source has committed. Offsets every stage made durable but the source could
    // not commit yet (broker down, group rebalancing) are tried again with the next report,
    // since a later commit covers an earlier one. Losing a commit only means re-reading
    // posts the index and the detector skip by id; stopping the daemon for it would be
    // worse.
    let mut committed = Checkpoint::new();
    let result: anyhow::Result<()> = async {
        loop {
            if pause_rx.has_changed().unwrap_or(false) {
                let wanted = pause_rx.borrow_and_update().clone();
                source.pause_only(&wanted);
            }
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    summary.interrupted = true;
                    break;
                }
                Some((stage, durable)) = durable_rx.recv() => {
                    tracker.record(stage, &durable);
                    commit_offsets(&mut source, &tracker, &mut committed, &metrics).await;
                }
                batch = source.next_batch() => {
                    let Some(batch) = batch.context("source failed")? else { break };
                    observe_source(&source, &metrics, &state);
                    count_batch(&batch, &metrics, &mut summary);
                    state.posts_read.fetch_add(batch.posts.len() as u64, Ordering::Relaxed);
                    if batch.is_idle() {
                        continue;
                    }
                    let batch = Batch {
                        items: batch.posts,
                        checkpoint: batch.checkpoint,
                        partition_events: batch.partition_events,
                        read_at: Instant::now(),
                        produced_at_ms: batch.produced_at_ms,
                    };
                    tokio::select! {
                        _ = shutdown.cancelled() => {
                            // Not yet handed on, so not committed: read again after restart.
                            summary.interrupted = true;
                            break;
                        }
                        sent = batch_tx.send(batch) => {
                            if sent.is_err() {
                                break; // a stage stopped; its error is reported below
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

    // Let the stages drain and make their final commits, then commit what they all cover.
    drop(batch_tx);
    while let Some((stage, durable)) = durable_rx.recv().await {
        tracker.record(stage, &durable);
        if result.is_ok() {
            commit_offsets(&mut source, &tracker, &mut committed, &metrics).await;
        }
    }
    if result.is_ok() {
        let last = tracker.advanced_beyond(&committed);
        if !last.is_empty() {
            // The final commit at shutdown: one more try, then report it (the posts will
            // be read again and skipped by id after the restart).
            if let Err(err) = source.commit(&last).await {
                tracing::error!(error = %format!("{err:#}"), "failed to commit source offsets at shutdown; posts since the last commit will be read again");
            }
        }
    }
    let analyzed = join_stage(analyze_thread, AnalyzeStage::NAME).await;
    let indexed = join_stage(index_thread, IndexStage::NAME).await;
    let detected = match detect_thread {
        Some(thread) => Some(join_stage(thread, DetectStage::NAME).await),
        None => None,
    };
    state.index_open.store(false, Ordering::Relaxed);
    let indexed = indexed?;
    let detection = detected
        .transpose()?
        .map(|outcome: DetectOutcome| outcome.detection);
    analyzed?;
    result?;
    summary.posts_indexed = indexed.posts_indexed;
    summary.batch_latencies = indexed.batch_latencies;
    summary.documents = indexed.documents;
    summary.elapsed = started.elapsed();
    if !summary.interrupted {
        state.input_finished.store(true, Ordering::Relaxed);
    }
    Ok((summary, detection))
}

/// Waits for a stage thread off the runtime and returns its outcome.
async fn join_stage<T: Send + 'static>(
    thread: std::thread::JoinHandle<anyhow::Result<T>>,
    name: &'static str,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(move || thread.join())
        .await
        .with_context(|| format!("joining the {name} thread failed"))?
        .map_err(|_| anyhow::anyhow!("the {name} thread panicked"))?
}

/// Commits the offsets the tracker allows beyond `committed`; on failure leaves them for
/// the next try and counts it.
async fn commit_offsets<S: Source>(
    source: &mut S,
    tracker: &CheckpointTracker,
    committed: &mut Checkpoint,
    metrics: &Metrics,
) {
    let advanced = tracker.advanced_beyond(committed);
    if advanced.is_empty() {
        return;
    }
    match source.commit(&advanced).await {
        Ok(()) => committed.merge(&advanced),
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

#[cfg(test)]
pub(crate) mod tests;
