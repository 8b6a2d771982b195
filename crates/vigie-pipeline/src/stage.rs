//! The stage contract: a synchronous step that takes batches in source order, may emit
//! batches to the stages after it, and reports which offsets it has made durable.
//!
//! Each stage runs on its own OS thread ([`spawn_stage`]) between bounded channels, so a
//! slow stage fills its input channel and everything before it waits (back-pressure), and
//! CPU work never runs on the async runtime. The runner calls the stage from that one
//! thread only, in this order: [`Stage::process`] for each batch as it arrives, followed by
//! [`Stage::on_tick`]; `on_tick` alone at least every tick when no batch comes; and
//! [`Stage::finish`] once, when the input closes or at a shutdown.
//!
//! # Ticks are wall time, watermarks belong to the detector
//!
//! `on_tick` receives the wall clock, for what people and disks set the pace of: index
//! commits every T seconds, snapshots, retries of a refused write, publishing to the API.
//! Event time (the watermark) is not a runner concept: it is computed by the one stage whose
//! results must not depend on timing (detection orders posts behind per-partition
//! watermarks itself), so a replay at any speed still gives the same alerts.
//!
//! # Held stages
//!
//! A stage that cannot make progress without losing data (a full disk refuses the index
//! or the alert outbox) says so with [`Stage::held`]. The runner then takes no new batch
//! from it (its input channel fills, the stages before it stop in turn, and so does the
//! source) and calls `on_tick` with a doubling back-off (100 ms to 10 s) so that the stage
//! can retry its write. A shutdown during an outage ends the loop without draining the
//! input: what was not made durable is read again after the restart.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vigie_domain::Checkpoint;

use crate::tracker::DurableReport;
use crate::PartitionEvent;

/// Items read from the source at one point of its stream, with the position they bring it
/// to. Every stage sees every batch, in source order, including batches with no items
/// (their offsets and partition changes still count).
#[derive(Debug, Clone)]
pub struct Batch<T> {
    /// The items, in source order.
    pub items: Vec<T>,
    /// Position after this batch (next offsets); empty for sources without offsets.
    pub checkpoint: Checkpoint,
    /// Partition changes among the items (see [`PartitionEvent::after_posts`]).
    pub partition_events: Vec<PartitionEvent>,
    /// When the source loop handed the batch on: the start of its freshness latency.
    pub read_at: Instant,
    /// When its posts were produced (see [`SourceBatch::produced_at_ms`](crate::SourceBatch)).
    pub produced_at_ms: Vec<i64>,
}

impl<T> Batch<T> {
    /// Returns a batch with other items and the same position, partition changes and time.
    pub fn with_items<U>(self, items: Vec<U>) -> Batch<U> {
        Batch {
            items,
            checkpoint: self.checkpoint,
            partition_events: self.partition_events,
            read_at: self.read_at,
            produced_at_ms: self.produced_at_ms,
        }
    }
}

/// Why a stage's input ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// A finite input (file, sample) was read to its end.
    EndOfInput,
    /// A shutdown was requested; the source may still hold unread data.
    Shutdown,
}

/// One step of the pipeline, called from its own thread (see the module docs for the
/// call order).
///
/// An error returned by any method stops this stage: the runner drops its input (so the
/// stages before it stop too) and reports the error once the pipeline has wound down.
/// Errors are for broken state (a corrupt index, a bug); a refused write that may succeed
/// later is held instead (see [`Stage::held`]).
pub trait Stage: Send + 'static {
    /// What the stage receives.
    type Input: Send + 'static;
    /// What it emits; cloned once per extra downstream stage (use `Arc` for big items).
    type Output: Clone + Send + 'static;
    /// What it returns when it finishes.
    type Outcome: Send + 'static;
    /// Why it stopped.
    type Error: Send + 'static;
    /// Short lowercase name, for its thread (`vigie-<name>`) and logs.
    const NAME: &'static str;

    /// Processes one batch, in source order.
    fn process(
        &mut self,
        batch: Batch<Self::Input>,
        out: &mut Outlet<Self::Output>,
    ) -> Result<(), Self::Error>;

    /// Does time-driven work (commits, snapshots, retries, publishing): called after each
    /// batch and at least every tick without one, with the wall clock.
    fn on_tick(&mut self, now: Instant, out: &mut Outlet<Self::Output>) -> Result<(), Self::Error>;

    /// Returns true while the stage must not take new input (a refused write it retries
    /// on its ticks).
    fn held(&self) -> bool {
        false
    }

    /// Ends the stage: final commit or snapshot, and its outcome.
    fn finish(
        self,
        end: StreamEnd,
        out: &mut Outlet<Self::Output>,
    ) -> Result<Self::Outcome, Self::Error>;
}

/// Where a stage's results go: every downstream stage (fan-out: the same batch to each, in
/// order), and the [`crate::CheckpointTracker`] for the offsets it has made durable.
pub struct Outlet<T> {
    downstream: Vec<mpsc::Sender<Batch<T>>>,
    durable: Option<DurableReport>,
    closed: bool,
}

impl<T: Clone> Outlet<T> {
    /// Returns an outlet to the given downstream channels, reporting durable offsets to
    /// `durable` when the stage keeps state.
    pub fn new(downstream: Vec<mpsc::Sender<Batch<T>>>, durable: Option<DurableReport>) -> Self {
        Outlet {
            downstream,
            durable,
            closed: false,
        }
    }

    /// Sends `batch` to every downstream stage, waiting while a channel is full
    /// (back-pressure). Returns false, and marks the outlet closed, once a downstream stage
    /// has stopped: the pipeline is winding down and the batch will be read again.
    pub fn emit(&mut self, batch: Batch<T>) -> bool {
        if self.closed {
            return false;
        }
        let Some((last, others)) = self.downstream.split_last() else {
            return true;
        };
        for sender in others {
            if sender.blocking_send(batch.clone()).is_err() {
                self.closed = true;
            }
        }
        if last.blocking_send(batch).is_err() {
            self.closed = true;
        }
        !self.closed
    }

    /// Returns how many batches wait in each downstream channel, in the order given.
    pub fn queued(&self) -> impl Iterator<Item = usize> + '_ {
        self.downstream
            .iter()
            .map(|sender| sender.max_capacity() - sender.capacity())
    }

    /// Returns true once a downstream stage has stopped.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Reports that everything before `checkpoint` is durable in this stage (index commit,
    /// detector snapshot). Offsets reach the source only once every stateful stage has
    /// reported them.
    pub fn durable(&self, checkpoint: &Checkpoint) {
        if let Some(report) = &self.durable {
            report.send(checkpoint);
        }
    }
}

/// How the runner drives a stage.
#[derive(Debug, Clone)]
pub struct StageOptions {
    /// The longest wait for a batch before `on_tick` is called anyway.
    pub tick: Duration,
    /// Cancelled at a shutdown.
    pub shutdown: CancellationToken,
    /// The runtime whose timers the stage thread waits on.
    pub runtime: tokio::runtime::Handle,
}

/// Starts `stage` on its own thread, reading `input` and emitting to `outlet`. The thread
/// ends when the input closes, at a shutdown (after draining its input, unless held), or
/// when a downstream stage stops; join it for the stage's outcome.
pub fn spawn_stage<S: Stage>(
    stage: S,
    input: mpsc::Receiver<Batch<S::Input>>,
    outlet: Outlet<S::Output>,
    options: StageOptions,
) -> std::io::Result<std::thread::JoinHandle<Result<S::Outcome, S::Error>>> {
    std::thread::Builder::new()
        .name(format!("vigie-{}", S::NAME))
        .spawn(move || drive(stage, input, outlet, options))
}

fn drive<S: Stage>(
    mut stage: S,
    mut input: mpsc::Receiver<Batch<S::Input>>,
    mut outlet: Outlet<S::Output>,
    options: StageOptions,
) -> Result<S::Outcome, S::Error> {
    let StageOptions {
        tick,
        shutdown,
        runtime,
    } = options;
    let mut backoff = Backoff::default();
    loop {
        if stage.held() {
            if shutdown.is_cancelled() {
                break;
            }
            let delay = backoff.next_delay();
            runtime.block_on(async {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => {}
                }
            });
            stage.on_tick(Instant::now(), &mut outlet)?;
            if !stage.held() {
                backoff.reset();
            }
            continue;
        }
        match runtime.block_on(async { tokio::time::timeout(tick, input.recv()).await }) {
            Ok(Some(batch)) => stage.process(batch, &mut outlet)?,
            Ok(None) => break,
            Err(_elapsed) => {}
        }
        stage.on_tick(Instant::now(), &mut outlet)?;
        if outlet.is_closed() {
            break;
        }
    }
    // Unread batches are dropped with the channel: never made durable, so read again.
    drop(input);
    let end = if shutdown.is_cancelled() {
        StreamEnd::Shutdown
    } else {
        StreamEnd::EndOfInput
    };
    stage.finish(end, &mut outlet)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CheckpointTracker;

    /// Doubles numbers; holds once while its "disk" refuses a write.
    struct Doubler {
        refusals: u32,
        ticks_while_held: u32,
        seen: Vec<u32>,
    }

    impl Stage for Doubler {
        type Input = u32;
        type Output = u32;
        type Outcome = (Vec<u32>, u32, StreamEnd);
        type Error = String;
        const NAME: &'static str = "doubler";

        fn process(&mut self, batch: Batch<u32>, out: &mut Outlet<u32>) -> Result<(), String> {
            if batch.items.contains(&13) {
                return Err("thirteen".into());
            }
            self.seen.extend(&batch.items);
            let doubled = batch.items.iter().map(|n| n * 2).collect();
            let checkpoint = batch.checkpoint.clone();
            out.emit(batch.with_items(doubled));
            out.durable(&checkpoint);
            Ok(())
        }

        fn on_tick(&mut self, _: Instant, _: &mut Outlet<u32>) -> Result<(), String> {
            if self.refusals > 0 {
                self.refusals -= 1;
                self.ticks_while_held += 1;
            }
            Ok(())
        }

        fn held(&self) -> bool {
            self.refusals > 0
        }

        fn finish(self, end: StreamEnd, _: &mut Outlet<u32>) -> Result<Self::Outcome, String> {
            Ok((self.seen, self.ticks_while_held, end))
        }
    }

    fn batch(items: Vec<u32>, offset: i64) -> Batch<u32> {
        let mut checkpoint = Checkpoint::new();
        checkpoint.advance("posts", 0, offset);
        Batch {
            items,
            checkpoint,
            partition_events: Vec::new(),
            read_at: Instant::now(),
            produced_at_ms: Vec::new(),
        }
    }

    fn options(shutdown: &CancellationToken) -> StageOptions {
        StageOptions {
            tick: Duration::from_millis(10),
            shutdown: shutdown.clone(),
            runtime: tokio::runtime::Handle::current(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stage_sees_batches_in_order_emits_to_every_downstream_and_reports_durable() {
        let shutdown = CancellationToken::new();
        let mut tracker = CheckpointTracker::new();
        let (reports_tx, mut reports) = mpsc::unbounded_channel();
        let report = tracker.register("doubler", reports_tx);
        let (input_tx, input) = mpsc::channel(2);
        let (a_tx, mut a) = mpsc::channel(8);
        let (b_tx, mut b) = mpsc::channel(8);
        let stage = Doubler {
            refusals: 2,
            ticks_while_held: 0,
            seen: Vec::new(),
        };
        let outlet = Outlet::new(vec![a_tx, b_tx], Some(report));
        let thread = spawn_stage(stage, input, outlet, options(&shutdown)).unwrap();
        input_tx.send(batch(vec![1, 2], 2)).await.unwrap();
        input_tx.send(batch(vec![3], 3)).await.unwrap();
        drop(input_tx);
        let (seen, held_ticks, end) = tokio::task::spawn_blocking(move || thread.join())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(seen, vec![1, 2, 3]);
        assert_eq!(held_ticks, 2, "retried on ticks before taking any batch");
        assert_eq!(end, StreamEnd::EndOfInput);
        for downstream in [&mut a, &mut b] {
            assert_eq!(downstream.recv().await.unwrap().items, vec![2, 4]);
            assert_eq!(downstream.recv().await.unwrap().items, vec![6]);
            assert!(downstream.recv().await.is_none());
        }
        while let Ok((stage, checkpoint)) = reports.try_recv() {
            tracker.record(stage, &checkpoint);
        }
        assert_eq!(tracker.committable().next_offset("posts", 0), Some(3));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_error_stops_the_stage_and_closes_its_input() {
        let shutdown = CancellationToken::new();
        let (input_tx, input) = mpsc::channel(1);
        let stage = Doubler {
            refusals: 0,
            ticks_while_held: 0,
            seen: Vec::new(),
        };
        let thread =
            spawn_stage(stage, input, Outlet::new(vec![], None), options(&shutdown)).unwrap();
        input_tx.send(batch(vec![13], 1)).await.unwrap();
        let result = tokio::task::spawn_blocking(move || thread.join())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(result.err().as_deref(), Some("thirteen"));
        assert!(
            input_tx.send(batch(vec![1], 2)).await.is_err(),
            "the upstream stage learns the stage stopped"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_shutdown_while_held_ends_without_draining() {
        let shutdown = CancellationToken::new();
        let (input_tx, input) = mpsc::channel(4);
        let stage = Doubler {
            refusals: u32::MAX,
            ticks_while_held: 0,
            seen: Vec::new(),
        };
        let thread =
            spawn_stage(stage, input, Outlet::new(vec![], None), options(&shutdown)).unwrap();
        input_tx.send(batch(vec![1], 1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        shutdown.cancel();
        let (seen, _, end) = tokio::task::spawn_blocking(move || thread.join())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(seen.is_empty(), "nothing taken while held");
        assert_eq!(end, StreamEnd::Shutdown);
    }

    #[test]
    fn backoff_doubles_to_ten_seconds() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..10)
            .map(|_| backoff.next_delay().as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]
        );
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(100));
    }
}
