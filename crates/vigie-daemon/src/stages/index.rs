//! Index stage: upserts every analyzed post into the [`PostIndex`] (Tantivy's writer
//! threads do the heavy part), commits on the index's policy (every N posts or T seconds)
//! and reports the committed checkpoint as durable.
//!
//! # When the data dir refuses writes
//!
//! A failed add or commit (full disk, I/O error) never stops the daemon and never loses a
//! post: Tantivy keeps its previous commit, the writer is rolled back to it, the posts
//! added since (kept, analyzed, until their commit) are added again and the commit is
//! retried; meanwhile the stage is held, so no new batch is taken. The outage is logged
//! once at ERROR with the cause, once at INFO when it ends, and counted in
//! `vigie_storage_write_errors_total{store="index"}` with `vigie_storage_write_failing` set
//! while it lasts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use vigie_domain::{AnalyzedPost, Checkpoint};
use vigie_index::{IndexError, PostIndex};
use vigie_pipeline::{Batch, Outlet, Stage, StreamEnd};

use crate::metrics::{Metrics, StorageOutage};

/// Keeps at most this many latency samples (one per batch), so memory stays bounded on an
/// endless stream; later batches are not sampled.
const MAX_LATENCY_SAMPLES: usize = 100_000;

/// What the index stage did, for the run summary.
#[derive(Debug, Default)]
pub struct IndexOutcome {
    /// Posts written to the index (re-deliveries included).
    pub posts_indexed: u64,
    /// Searchable documents at the end.
    pub documents: u64,
    /// Per batch, seconds from being read to being searchable (its commit).
    pub batch_latencies: Vec<f64>,
}

/// Writes posts to the index and commits them.
pub struct IndexStage {
    index: PostIndex,
    metrics: Metrics,
    /// Offsets of every batch received.
    pending: Checkpoint,
    /// A batch brought offsets that no commit covers yet.
    uncommitted_offsets: bool,
    /// Posts added since the last commit, to add again after a failed one (at most about
    /// `commit_every_posts` plus a batch).
    uncommitted_posts: Vec<Arc<AnalyzedPost>>,
    /// When each batch not yet committed was read.
    uncommitted_batches: Vec<Instant>,
    /// When the posts not yet committed were produced (Kafka timestamps, ms).
    uncommitted_produced_at_ms: Vec<i64>,
    /// Index writes failing, while they do.
    outage: StorageOutage,
    outcome: IndexOutcome,
}

impl IndexStage {
    /// Returns the stage writing to `index`.
    pub fn new(index: PostIndex, metrics: Metrics) -> Self {
        IndexStage {
            index,
            metrics,
            pending: Checkpoint::new(),
            uncommitted_offsets: false,
            uncommitted_posts: Vec::new(),
            uncommitted_batches: Vec::new(),
            uncommitted_produced_at_ms: Vec::new(),
            outage: StorageOutage::new("index"),
            outcome: IndexOutcome::default(),
        }
    }

    /// Records a failed index write: logged once per outage, counted, retried later.
    fn write_failed(&mut self, err: &IndexError) {
        if self.outage.refused(&self.metrics) {
            tracing::error!(
                error = %crate::error_chain(err),
                pending_posts = self.uncommitted_posts.len(),
                "cannot write the post index; holding the pipeline and retrying (the last commit is intact)"
            );
        }
    }

    /// After a failed write: rolls the writer back to the last commit and adds the posts
    /// since again; returns false when that fails too (still failing).
    fn restore_writer(&mut self) -> bool {
        if let Err(err) = self.index.rollback() {
            self.write_failed(&err);
            return false;
        }
        for n in 0..self.uncommitted_posts.len() {
            if let Err(err) = self.index.add(&self.uncommitted_posts[n]) {
                self.write_failed(&err);
                return false;
            }
        }
        true
    }

    /// Commits the index and reports its checkpoint as durable. A refused write is
    /// recorded and retried on later ticks; the stage is held meanwhile.
    fn commit(&mut self, out: &Outlet<()>) {
        if self.outage.is_failing() && !self.restore_writer() {
            return;
        }
        let stats = match self.index.commit(&self.pending) {
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
                self.write_failed(&err);
                return;
            }
        };
        self.uncommitted_posts.clear();
        self.uncommitted_offsets = false;
        if let Some(outage) = self.outage.ended(&self.metrics) {
            tracing::info!(
                outage_secs = outage.as_secs(),
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
        let committed = Instant::now();
        crate::metrics::observe_since_produced(
            &self.metrics.produce_to_searchable,
            &self.uncommitted_produced_at_ms,
        );
        self.uncommitted_produced_at_ms.clear();
        for read_at in self.uncommitted_batches.drain(..) {
            if self.outcome.batch_latencies.len() < MAX_LATENCY_SAMPLES {
                self.outcome
                    .batch_latencies
                    .push(committed.duration_since(read_at).as_secs_f64());
            }
        }
        out.durable(self.index.committed_checkpoint());
    }
}

impl Stage for IndexStage {
    type Input = Arc<AnalyzedPost>;
    type Output = ();
    type Outcome = IndexOutcome;
    type Error = anyhow::Error;
    const NAME: &'static str = "index";

    fn process(
        &mut self,
        batch: Batch<Arc<AnalyzedPost>>,
        _: &mut Outlet<()>,
    ) -> anyhow::Result<()> {
        self.uncommitted_batches.push(batch.read_at);
        self.uncommitted_produced_at_ms
            .extend_from_slice(&batch.produced_at_ms);
        let count = batch.items.len() as u64;
        for post in batch.items {
            if !self.outage.is_failing() {
                if let Err(err) = self.index.add(&post) {
                    // Kept in `uncommitted_posts`: added again on recovery.
                    self.write_failed(&err);
                }
            }
            self.uncommitted_posts.push(post);
        }
        self.outcome.posts_indexed += count;
        self.metrics.posts_indexed.inc_by(count);
        if !batch.checkpoint.is_empty() {
            self.pending.merge(&batch.checkpoint);
            self.uncommitted_offsets = true;
        }
        Ok(())
    }

    fn on_tick(&mut self, now: Instant, out: &mut Outlet<()>) -> anyhow::Result<()> {
        // Offsets of batches made only of rejects also need a commit, even with no post
        // pending in the index.
        if self.outage.is_failing()
            || self.index.commit_due(now)
            || (self.uncommitted_offsets && self.index.pending_posts() == 0)
        {
            self.commit(out);
        }
        Ok(())
    }

    fn held(&self) -> bool {
        self.outage.is_failing()
    }

    fn finish(mut self, _: StreamEnd, out: &mut Outlet<()>) -> anyhow::Result<IndexOutcome> {
        self.commit(out);
        if self.outage.is_failing() {
            // Stopped during an outage: the offsets were not committed past what the index
            // holds, so the posts are read again after the restart.
            anyhow::bail!(
                "stopped while the data dir refused writes (index); offsets were not saved past them, so the next start reads those posts again"
            );
        }
        self.outcome.documents = self.index.num_docs();
        Ok(self.outcome)
    }
}
