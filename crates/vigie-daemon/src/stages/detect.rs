//! Detection stage: runs [`Detection`] (event-time orderer, detector, alert policy and
//! outbox) on every analyzed post, beside the index on the same batches; applies the HTTP
//! commands (acks, silences, watchlists) that reach it on its own control channel; saves
//! the detector snapshot every `[snapshot] interval_secs` and reports its checkpoint as
//! durable.
//!
//! # When the data dir refuses writes
//!
//! - The outbox refuses notifications: they stay held, in order, and the stage takes no
//!   new batch until the outbox accepts them; no snapshot is written and no offset is
//!   reported meanwhile, since both would cover notifications not yet durable.
//! - The snapshot write fails: detection goes on, but the stage's durable position stays
//!   at the last snapshot until one is written (a restart re-reads from there).
//!
//! Each outage is logged once at ERROR and once at INFO when it ends, and counted in
//! `vigie_storage_write_errors_total` with `vigie_storage_write_failing` set while it lasts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use vigie_domain::AnalyzedPost;
use vigie_pipeline::{Batch, Outlet, Stage, StreamEnd};

use crate::detection::Detection;
use crate::metrics::{Metrics, StorageOutage};

/// What the detection stage hands back: the detection itself, which outlives the
/// pipeline so a finished replay can still be inspected and its watchlists edited.
pub struct DetectOutcome {
    /// The detection, after its final snapshot.
    pub detection: Detection,
}

/// Detects narratives and decides alerts.
pub struct DetectStage {
    detection: Detection,
    metrics: Metrics,
    snapshot_interval: Duration,
    last_snapshot: Instant,
    /// Snapshot writes failing, while they do.
    snapshot_outage: StorageOutage,
    /// Batches observed since the last durable report.
    unreported: bool,
    /// The partitions the source should pause, for the event-time orderer.
    pause: tokio::sync::watch::Sender<Vec<(String, i32)>>,
}

impl DetectStage {
    /// Returns the stage; snapshots are saved every `snapshot_interval` when the detection
    /// keeps state.
    ///
    /// `pause` carries the partitions the source should stop reading for now: a partition
    /// the broker hands out far ahead of the others would otherwise fill the reorder
    /// buffer until posts are released out of order.
    pub fn new(
        detection: Detection,
        metrics: Metrics,
        snapshot_interval: Duration,
        pause: tokio::sync::watch::Sender<Vec<(String, i32)>>,
    ) -> Self {
        DetectStage {
            pause,
            detection,
            metrics,
            snapshot_interval,
            last_snapshot: Instant::now(),
            snapshot_outage: StorageOutage::new("snapshot"),
            unreported: false,
        }
    }

    /// Tells the source which partitions to pause, when that changed.
    fn request_pauses(&mut self) {
        let wanted = self.detection.partitions_to_pause();
        self.metrics.partitions_paused.set(wanted.len() as i64);
        self.pause.send_if_modified(|current| {
            let changed = *current != wanted;
            if changed {
                *current = wanted;
            }
            changed
        });
    }

    /// Saves the state when due (or `last`) and reports what it covers as durable.
    fn save(&mut self, last: bool, out: &Outlet<()>) {
        if self.detection.holds_notifications() {
            // A snapshot or an offset now would cover notifications the outbox has not
            // taken yet: a crash would lose them.
            return;
        }
        if !self.detection.keeps_state() {
            // Nothing to save (file replays): what was observed is as durable as it gets.
            if self.unreported || last {
                out.durable(self.detection.observed_through());
                self.unreported = false;
            }
            return;
        }
        let due = self.snapshot_outage.is_failing()
            || self.last_snapshot.elapsed() >= self.snapshot_interval;
        let wanted = last || (due && self.unreported);
        if !wanted {
            return;
        }
        let covered = self.detection.observed_through().clone();
        let started = Instant::now();
        if let Err(err) = self.detection.write_snapshot(&covered) {
            if self.snapshot_outage.refused(&self.metrics) {
                tracing::error!(error = format!("{err:#}"), "cannot save the detector state; offsets stay at the last snapshot until it can");
            }
            return;
        }
        if let Some(outage) = self.snapshot_outage.ended(&self.metrics) {
            tracing::info!(
                outage_secs = outage.as_secs(),
                "the detector state is saved again"
            );
        }
        self.last_snapshot = Instant::now();
        self.unreported = false;
        let duration_ms = started.elapsed().as_millis() as u64;
        if last {
            tracing::info!(duration_ms, "final detector state saved");
        } else {
            tracing::debug!(duration_ms, "detector state saved");
        }
        out.durable(&covered);
    }
}

impl Stage for DetectStage {
    type Input = Arc<AnalyzedPost>;
    type Output = ();
    type Outcome = DetectOutcome;
    type Error = anyhow::Error;
    const NAME: &'static str = "detect";

    fn process(
        &mut self,
        batch: Batch<Arc<AnalyzedPost>>,
        _: &mut Outlet<()>,
    ) -> anyhow::Result<()> {
        // Partition changes go to detection where they happened among the posts.
        let mut partition_events = batch.partition_events.iter().peekable();
        for (read_before, post) in batch.items.into_iter().enumerate() {
            // Every change at this point at once (see `Detection::partition_events`).
            self.detection.partition_events(std::iter::from_fn(|| {
                partition_events.next_if(|e| e.after_posts <= read_before)
            }));
            self.detection.observe(post);
        }
        self.detection.partition_events(partition_events);
        crate::metrics::observe_since_produced(
            &self.metrics.produce_to_detection,
            &batch.produced_at_ms,
        );
        if !batch.checkpoint.is_empty() {
            self.detection.note_observed(&batch.checkpoint);
            self.unreported = true;
        }
        self.request_pauses();
        Ok(())
    }

    fn on_tick(&mut self, _: Instant, out: &mut Outlet<()>) -> anyhow::Result<()> {
        if self.detection.holds_notifications() {
            self.detection.retry_held_notifications();
        }
        self.detection.apply_commands();
        self.detection.publish();
        self.request_pauses();
        self.save(false, out);
        Ok(())
    }

    fn held(&self) -> bool {
        self.detection.holds_notifications()
    }

    fn finish(mut self, end: StreamEnd, out: &mut Outlet<()>) -> anyhow::Result<DetectOutcome> {
        // At the end of a finite input every buffered post is detected; at a shutdown
        // they stay buffered for the final snapshot (see `Detection::finish`).
        self.detection.finish(end == StreamEnd::EndOfInput);
        self.save(true, out);
        if self.detection.holds_notifications() {
            // Neither the offsets nor the detector state were saved past the held
            // notifications: those posts are read again (and their notifications produced
            // again) after the restart.
            anyhow::bail!(
                "stopped while the data dir refused writes (alert outbox); offsets and detector state were not saved past them, so the next start reads those posts again"
            );
        }
        Ok(DetectOutcome {
            detection: self.detection,
        })
    }
}
