//! Detection inside the daemon: runs the [`Detector`] on every analyzed post in the
//! indexer thread, publishes narratives for the HTTP API and metrics, applies watchlist
//! changes, and snapshots detector state next to the source offsets it covers.
//!
//! Offsets and snapshots: a Kafka offset may only be committed once the detector state
//! covering the posts before it is on disk, otherwise a crash would make the restarted
//! detector forget those posts. Snapshots are large (the fixed-size sketches, ~26 MB with
//! the defaults), so they are written every `[snapshot] interval_secs` rather than at each
//! index commit, and the runner hands the source only the checkpoint of the latest
//! snapshot. After a restart, posts the snapshot already covers (re-delivered because
//! their offsets were not committed) are indexed again (harmless upserts) but not observed
//! again, so baselines are neither forgotten nor double-counted.
//!
//! Event time: posts go through an [`EventTimeOrderer`] before the detector, which orders
//! them by event time behind per-partition watermarks (issue 8), so the same posts give the
//! same narratives whatever the interleaving of Kafka partitions. The posts it buffers are
//! part of the snapshot, which is why their offsets may be committed before the detector
//! has seen them: a restart restores them with the watermarks.
//!
//! The snapshot is written durably (`vigie_pipeline::durable_write_with`: temp file,
//! fsync, rename, directory fsync) before the runner hands its checkpoint to the source,
//! so an offset is never committed ahead of the state covering it, power loss included.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use vigie_alert::{
    AlertConfig, AlertError, AlertView, PolicySnapshot, SilenceRequest, SilenceView,
};
use vigie_alert_delivery::AlertDelivery;
use vigie_detect::{
    Detector, DetectorConfig, DetectorCounters, DetectorSnapshot, DetectorSnapshotRef,
    EventTimeOrderer, OrdererCounters, OrdererSnapshot, PartitionKey, Released, WatchEntry,
};
use vigie_domain::{
    AnalyzedPost, Checkpoint, Narrative, NarrativeEvent, NarrativeEventKind, Origin,
};
use vigie_pipeline::PartitionEvent;
use vigie_tokenize::Analyzer;

use crate::alerting::Alerting;
use crate::metrics::{Metrics, TOP_GROWTH_SLOTS};

/// Event-time step of the alert policy's clock (see `Detection::observe`).
const ALERT_TICK_SECS: i64 = 60;

/// Name of the detector snapshot file inside the data directory.
pub const SNAPSHOT_FILE: &str = "detector.snapshot";

/// The most often narratives are published to the board (see `Detection::publish`).
const PUBLISH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// Recent narrative events kept for the HTTP API.
const RECENT_EVENTS: usize = 1000;

/// `[snapshot]`: how often detector state is saved.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnapshotConfig {
    /// Seconds between detector snapshots (Kafka source only). Offsets are committed to
    /// Kafka at this pace, so a crash re-reads at most this much (the index de-duplicates).
    pub interval_secs: u64,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        SnapshotConfig { interval_secs: 60 }
    }
}

/// What the HTTP API reads: the latest narratives and recent events.
#[derive(Debug, Default)]
pub struct NarrativeBoard {
    /// Active narratives at the last publication.
    pub narratives: Vec<Narrative>,
    /// Latest events, oldest first.
    pub events: VecDeque<NarrativeEvent>,
    /// The detector's counters.
    pub counters: DetectorCounters,
    /// The watchlists in force.
    pub watchlists: Vec<WatchEntry>,
    /// Alerts (pending, firing, recently resolved).
    pub alerts: Vec<AlertView>,
    /// Silences: active, scheduled, and expired ones still listed.
    pub silences: Vec<SilenceView>,
}

/// What `detector.snapshot` holds: detector and alert-policy state, written together so
/// they always cover the same offsets.
#[derive(Serialize, Deserialize)]
struct StateSnapshot {
    detector: DetectorSnapshot,
    alerts: PolicySnapshot,
    /// The posts alert content can cite (see `Alerting::recent_posts`).
    #[serde(default)]
    recent_posts: Vec<vigie_alert::PostRef>,
    /// Watermarks and the posts waiting for them (issue 8); absent in older snapshots,
    /// which start with fresh watermarks.
    #[serde(default)]
    event_time: Option<OrdererSnapshot<Arc<AnalyzedPost>>>,
}

/// A [`StateSnapshot`] to write, with the detector's state borrowed rather than copied
/// (the same fields in the same order: it reads back as a `StateSnapshot`).
#[derive(Serialize)]
#[serde(rename = "StateSnapshot")]
struct StateSnapshotRef<'a> {
    detector: DetectorSnapshotRef<'a>,
    alerts: PolicySnapshot,
    recent_posts: Vec<vigie_alert::PostRef>,
    event_time: Option<OrdererSnapshot<Arc<AnalyzedPost>>>,
}

/// A watchlist change requested through the HTTP API, applied by the indexer thread.
#[derive(Debug)]
pub enum WatchCommand {
    /// Adds (or replaces) an entry.
    Add(WatchEntry, tokio::sync::oneshot::Sender<Result<(), String>>),
    /// Removes an entry by name; replies whether it existed.
    Remove(String, tokio::sync::oneshot::Sender<bool>),
    /// Acknowledges an alert by fingerprint; replies whether it exists.
    Ack(String, tokio::sync::oneshot::Sender<bool>),
    /// Adds a silence; replies with its id or why it is refused.
    AddSilence(
        SilenceRequest,
        tokio::sync::oneshot::Sender<Result<String, AlertError>>,
    ),
    /// Removes a silence by id; replies whether it existed.
    RemoveSilence(String, tokio::sync::oneshot::Sender<bool>),
}

/// The shared ends of detection: the board and the command queue.
#[derive(Clone)]
pub struct DetectionHandle {
    /// Narratives and events for readers.
    pub board: Arc<RwLock<NarrativeBoard>>,
    /// Watchlist, ack and silence changes for the indexer thread.
    pub commands: std::sync::mpsc::Sender<WatchCommand>,
    /// Alert delivery (outbox workers), to drain at shutdown.
    pub delivery: Arc<AlertDelivery>,
}

/// The detector with its bookkeeping, owned by the indexer thread.
pub struct Detection {
    detector: Detector,
    /// Orders posts by event time before the detector.
    orderer: EventTimeOrderer<Arc<AnalyzedPost>>,
    /// The orderer's and detector's counters at the last publication, for metric deltas.
    published_orderer: OrdererCounters,
    published_late_posts: u64,
    alerting: Alerting,
    board: Arc<RwLock<NarrativeBoard>>,
    commands: std::sync::mpsc::Receiver<WatchCommand>,
    metrics: Metrics,
    /// Where snapshots go; `None` when state is not kept (file replays start fresh).
    snapshot_path: Option<PathBuf>,
    /// Offsets covered by the restored snapshot: re-delivered posts before them are not
    /// observed again.
    covered: Checkpoint,
    /// Offsets of every post observed so far: the restored snapshot's, merged with the
    /// checkpoint of each batch observed since. A snapshot covers exactly this, and not the
    /// index's committed checkpoint, which after a restart is ahead of what the detector
    /// has re-read: a snapshot claiming those offsets made the next restart skip posts the
    /// detector had never seen (found by the SIGKILL soak, issue 12).
    observed_through: Checkpoint,
    recent_ids: RecentIds,
    changed_since_publish: bool,
    /// When narratives were last published (wall time: the board is for people).
    last_published: Option<std::time::Instant>,
    /// `Alerting::produced` when the alerts were last published.
    alerts_published_at: u64,
}

/// Post ids seen lately, so a duplicate delivery is not counted twice by detection (the
/// index de-duplicates on its own). Bounded: the oldest ids are forgotten first. Not kept
/// in snapshots; after a restart the offsets of the snapshot do that job.
struct RecentIds {
    order: VecDeque<u64>,
    set: std::collections::HashSet<u64>,
    capacity: usize,
}

impl RecentIds {
    fn new(capacity: usize) -> RecentIds {
        RecentIds {
            order: VecDeque::with_capacity(capacity),
            set: Default::default(),
            capacity,
        }
    }

    /// Records an id; returns false when it was already there.
    fn insert(&mut self, id: &str) -> bool {
        // A 64-bit hash: a collision (≈ n²/2⁶⁵) would skip one post, never crash.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(id, &mut hasher);
        let key = std::hash::Hasher::finish(&hasher);
        if !self.set.insert(key) {
            return false;
        }
        if self.order.len() == self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.set.remove(&oldest);
            }
        }
        self.order.push_back(key);
        true
    }
}

/// Post ids remembered for de-duplication (about 5 MB).
const RECENT_IDS: usize = 200_000;

impl Detection {
    /// Builds the detector, restoring `data_dir/detector.snapshot` when `keep_state` (a
    /// source with offsets) and the file exists. Returns the detection and its shared handle.
    pub fn open(
        config: DetectorConfig,
        alert_config: AlertConfig,
        delivery: Arc<AlertDelivery>,
        analyzer: Arc<Analyzer>,
        data_dir: &Path,
        keep_state: bool,
        metrics: Metrics,
    ) -> anyhow::Result<(Detection, DetectionHandle)> {
        let snapshot_path = keep_state.then(|| data_dir.join(SNAPSHOT_FILE));
        let restored = match &snapshot_path {
            Some(path) if path.exists() => Some(read_snapshot(path)?),
            _ => None,
        };
        let event_time = config.event_time.clone();
        let (detector, covered, policy, recent_posts, orderer) = match restored {
            Some(StateSnapshot {
                detector: snapshot,
                alerts,
                recent_posts,
                event_time: orderer,
            }) => {
                let covered = snapshot.checkpoint.clone();
                let detector = Detector::restore(config, analyzer, snapshot).context(
                    "cannot restore the detector snapshot (did [detect] sketch sizes change?)",
                )?;
                let orderer = match orderer {
                    Some(orderer) => EventTimeOrderer::restore(&event_time, orderer),
                    None => EventTimeOrderer::new(&event_time),
                }
                .context("invalid [detect.event_time] configuration")?;
                tracing::info!(
                    posts = detector.counters().posts_observed,
                    buffered_posts = orderer.buffered(),
                    "detector state restored"
                );
                (detector, covered, Some(alerts), recent_posts, orderer)
            }
            None => (
                Detector::new(config, analyzer).context("invalid [detect] configuration")?,
                Checkpoint::new(),
                None,
                Vec::new(),
                EventTimeOrderer::new(&event_time)
                    .context("invalid [detect.event_time] configuration")?,
            ),
        };
        let delivery_handle = delivery.clone();
        let alerting = Alerting::new(alert_config, policy, delivery, metrics.clone());
        alerting.restore_recent_posts(recent_posts);
        metrics.detector_memory.set(detector.memory_bytes() as i64);
        let board = Arc::new(RwLock::new(NarrativeBoard::default()));
        let (tx, rx) = std::sync::mpsc::channel();
        let mut detection = Detection {
            published_orderer: orderer.counters().clone(),
            published_late_posts: detector.counters().late_posts,
            orderer,
            detector,
            alerting,
            board: board.clone(),
            commands: rx,
            metrics,
            snapshot_path,
            observed_through: covered.clone(),
            covered,
            recent_ids: RecentIds::new(RECENT_IDS),
            changed_since_publish: true,
            last_published: None,
            alerts_published_at: 0,
        };
        detection.publish();
        Ok((
            detection,
            DetectionHandle {
                board,
                commands: tx,
                delivery: delivery_handle,
            },
        ))
    }

    /// Observes a post unless a restored snapshot already covers it or it was seen
    /// recently (a producer retry or a replayed message carries the same id): buffers it
    /// in event-time order and detects the posts the watermark releases.
    pub fn observe(&mut self, post: impl Into<Arc<AnalyzedPost>>) {
        let post: Arc<AnalyzedPost> = post.into();
        let partition = match &post.post.origin {
            Origin::Kafka {
                topic,
                partition,
                offset,
            } => {
                if self
                    .covered
                    .next_offset(topic, *partition)
                    .is_some_and(|next| *offset < next)
                {
                    return;
                }
                PartitionKey::new(topic.as_str(), *partition)
            }
            // Files are read one after the other: one stream.
            Origin::File { .. } => PartitionKey::file(),
        };
        if !self.recent_ids.insert(&post.post.id) {
            self.metrics.detector_duplicates_skipped.inc();
            return;
        }
        self.changed_since_publish = true;
        let at = post.post.created_at.timestamp();
        let tie = vigie_detect::tie_of(&post.post.id);
        self.orderer.push(&partition, at, tie, post);
        self.detect_ready();
    }

    /// Applies the partition changes the source reported at one point of its stream
    /// (one rebalance assigns several partitions at once), together: one at its end or
    /// revoked no longer holds the watermark, one assigned holds it until it delivers.
    /// Applied one by one, the first partition of an assignment would move the watermark
    /// alone (see `vigie_detect::EventTimeOrderer::apply`).
    pub fn partition_events<'a>(&mut self, events: impl IntoIterator<Item = &'a PartitionEvent>) {
        let mut changes = events
            .into_iter()
            .map(|event| {
                let partition = PartitionKey::new(event.topic.as_str(), event.partition);
                (partition, event.kind)
            })
            .peekable();
        if changes.peek().is_none() {
            return;
        }
        self.orderer.apply(changes);
        self.changed_since_publish = true;
        self.detect_ready();
    }

    /// Detects every post the watermark has released.
    fn detect_ready(&mut self) {
        while let Some(released) = self.orderer.pop_ready() {
            self.detect(released);
        }
    }

    /// Runs the detector and the alert policy's clock on one released post.
    fn detect(&mut self, released: Released<Arc<AnalyzedPost>>) {
        let Released {
            item: mut post,
            event_time,
            count_at,
        } = released;
        self.alerting.remember(&post);
        if count_at != event_time {
            // Held ahead and never corroborated: counted now, so that it cannot move
            // event time (the index keeps its own date).
            if let Some(now) = chrono::DateTime::from_timestamp(count_at, 0) {
                Arc::make_mut(&mut post).post.created_at = now;
            }
        }
        let before = self.detector.now();
        let events = self.detector.observe(&post);
        self.metrics.detector_posts_observed.inc();
        if !events.is_empty() {
            self.record(events);
        }
        // The alert policy's clock (hysteresis, growth updates, resolves, grouping) ticks at
        // fixed steps of event time, decided by the posts alone: ticking once per batch made
        // the alerts depend on how the source happened to batch the stream, so a restart
        // (or a slower consumer) changed notification sequences (found by the SIGKILL soak).
        if let Some(after) = self.detector.now() {
            let step = |t: chrono::DateTime<chrono::Utc>| t.timestamp().div_euclid(ALERT_TICK_SECS);
            if before.is_none_or(|before| step(after) > step(before)) {
                self.alerting.on_tick(after);
            }
        }
    }

    fn record(&mut self, events: Vec<NarrativeEvent>) {
        self.changed_since_publish = true;
        // The narrative of each event that could alert goes on the board before the alert
        // policy sees it: the board is otherwise published at most every
        // PUBLISH_INTERVAL, and an alert links to its narrative (`/api/v1/narratives/{id}`),
        // which must answer as soon as a receiver follows the link. (An alert fires only
        // while its narrative is at a rule's severity, so events below every rule's need
        // not wait for the next publication; updating the board for all of them cost a
        // sixth of a replay.)
        let alertable = self
            .alerting
            .policy()
            .config()
            .rules
            .iter()
            .map(|rule| rule.min_severity)
            .min();
        {
            let mut board = self.board.write().expect("board lock is never poisoned");
            for event in &events {
                let view = &event.narrative;
                // Retired and absorbed narratives leave the board whatever their severity.
                match &event.kind {
                    NarrativeEventKind::Retired => {
                        board.narratives.retain(|n| n.id != view.id);
                        continue;
                    }
                    NarrativeEventKind::Merged { absorbed, .. } => {
                        board.narratives.retain(|n| n.id != *absorbed);
                    }
                    _ => {}
                }
                if alertable.is_none_or(|min| view.severity < min) {
                    continue;
                }
                match board.narratives.iter_mut().find(|n| n.id == view.id) {
                    Some(shown) => shown.clone_from(view),
                    None => board.narratives.push(view.clone()),
                }
            }
        }
        self.alerting.on_events(&events);
        let mut board = self.board.write().expect("board lock is never poisoned");
        for event in events {
            self.metrics
                .narrative_events
                .with_label_values(&[event_kind(&event)])
                .inc();
            if board.events.len() == RECENT_EVENTS {
                board.events.pop_front();
            }
            board.events.push_back(event);
        }
    }

    /// Applies pending watchlist commands, publishing the new lists before replying so a
    /// client reading right after its change sees it.
    pub fn apply_commands(&mut self) {
        while let Ok(command) = self.commands.try_recv() {
            self.changed_since_publish = true;
            let watchlists = self.detector.watchlists_mut();
            match command {
                WatchCommand::Add(entry, reply) => {
                    // Replacing keeps the old entry if the new one does not compile.
                    let previous = watchlists.list().into_iter().find(|e| e.name == entry.name);
                    watchlists.remove(&entry.name);
                    let result = watchlists.add(entry).map_err(|err| format!("{err:#}"));
                    if result.is_err() {
                        if let Some(previous) = previous {
                            let _ = watchlists.add(previous);
                        }
                    }
                    self.board
                        .write()
                        .expect("board lock is never poisoned")
                        .watchlists = watchlists.list();
                    let _ = reply.send(result);
                }
                WatchCommand::Remove(name, reply) => {
                    let removed = watchlists.remove(&name);
                    self.board
                        .write()
                        .expect("board lock is never poisoned")
                        .watchlists = watchlists.list();
                    let _ = reply.send(removed);
                }
                WatchCommand::Ack(fingerprint, reply) => {
                    let _ = reply.send(self.alerting.policy_mut().ack(&fingerprint));
                    self.publish_alerts();
                }
                WatchCommand::AddSilence(request, reply) => {
                    let _ = reply.send(self.alerting.add_silence(request));
                    self.publish_alerts();
                }
                WatchCommand::RemoveSilence(id, reply) => {
                    let _ = reply.send(self.alerting.policy_mut().silences_mut().remove(&id));
                    self.publish_alerts();
                }
            }
        }
    }

    /// Publishes narratives to the board and metrics when something changed, at most
    /// once per [`PUBLISH_INTERVAL`]: building every narrative's view cost an eighth of a
    /// replay when done after each batch. Changes wait for the next call after it (the
    /// indexer calls at least every 250 ms); [`Detection::finish`] publishes at once.
    pub fn publish(&mut self) {
        if self.alerting.produced() != self.alerts_published_at {
            // New notifications: the alert list follows them at once (it is cheap beside
            // the narratives), so what a receiver was sent is what the API lists.
            self.publish_alerts();
        }
        if !self.changed_since_publish
            || self
                .last_published
                .is_some_and(|at| at.elapsed() < PUBLISH_INTERVAL)
        {
            return;
        }
        self.publish_now();
    }

    /// Publishes narratives to the board and metrics now.
    fn publish_now(&mut self) {
        self.changed_since_publish = false;
        self.last_published = Some(std::time::Instant::now());
        let narratives = self.detector.narratives();
        for status in ["emerging", "growing", "peaking", "fading"] {
            let count = narratives
                .iter()
                .filter(|n| n.status.as_str() == status)
                .count();
            self.metrics
                .narratives_active
                .with_label_values(&[status])
                .set(count as i64);
        }
        self.metrics.narratives_coordinated.set(
            narratives
                .iter()
                .filter(|n| n.coordination.score >= 0.5)
                .count() as i64,
        );
        let mut growth: Vec<f64> = narratives.iter().map(|n| n.growth_ratio).collect();
        growth.sort_by(|a, b| b.total_cmp(a));
        for rank in 1..=TOP_GROWTH_SLOTS {
            let ratio = growth.get(rank - 1).copied().unwrap_or(0.0);
            self.metrics
                .narrative_top_growth
                .with_label_values(&[&rank.to_string()])
                .set(ratio);
        }
        self.publish_event_time();
        {
            let mut board = self.board.write().expect("board lock is never poisoned");
            board.narratives = narratives;
            board.counters = self.detector.counters().clone();
            board.watchlists = self.detector.watchlists_mut().list();
        }
        self.publish_alerts();
    }

    /// Advances alerting to the detector's event time (at the end of an input).
    pub fn tick(&mut self) {
        if let Some(now) = self.detector.now() {
            self.alerting.on_tick(now);
        }
    }

    /// Ends a run: at the end of a finite input (`end_of_input`), or whenever no state is
    /// kept, detects every post still buffered; at a shutdown with state kept, leaves
    /// them buffered for the final snapshot, so that a restart orders them with the posts
    /// still to come. Then releases held alert groups.
    pub fn finish(&mut self, end_of_input: bool) {
        if end_of_input || !self.keeps_state() {
            for released in self.orderer.flush() {
                self.detect(released);
            }
        }
        self.tick();
        self.alerting.flush();
        self.publish_now();
    }

    /// Publishes the watermark, the reorder buffer and late posts to metrics.
    fn publish_event_time(&mut self) {
        let counters = self.orderer.counters().clone();
        let published = std::mem::replace(&mut self.published_orderer, counters.clone());
        self.metrics.detector_posts_held_ahead.inc_by(
            counters
                .posts_held_ahead
                .saturating_sub(published.posts_held_ahead),
        );
        self.metrics
            .detector_reorder_forced
            .inc_by(counters.posts_forced.saturating_sub(published.posts_forced));
        let late = self.detector.counters().late_posts;
        self.metrics
            .detector_late_posts
            .inc_by(late.saturating_sub(std::mem::replace(&mut self.published_late_posts, late)));
        self.metrics
            .detector_reorder_buffered
            .set(self.orderer.buffered() as i64);
        if let Some(watermark) = self.orderer.watermark() {
            self.metrics.detector_watermark.set(watermark);
        }
    }

    fn publish_alerts(&mut self) {
        self.alerts_published_at = self.alerting.produced();
        self.alerting.publish_metrics();
        let policy = self.alerting.policy();
        let mut board = self.board.write().expect("board lock is never poisoned");
        board.alerts = policy.alerts();
        board.silences = self.alerting.silence_views();
    }

    /// Returns true while notifications the outbox refused are held: the runner then takes
    /// no new batch and saves neither snapshot nor offsets (see `runner`'s module docs).
    pub fn holds_notifications(&self) -> bool {
        self.alerting.holds_notifications()
    }

    /// Offers held notifications to the outbox again; returns true when none is left.
    pub fn retry_held_notifications(&mut self) -> bool {
        self.alerting.retry_held()
    }

    /// Returns true when snapshots are kept (a source with offsets).
    pub fn keeps_state(&self) -> bool {
        self.snapshot_path.is_some()
    }

    /// Records that every post of a batch read up to `checkpoint` has been observed.
    pub fn note_observed(&mut self, checkpoint: &Checkpoint) {
        self.observed_through.merge(checkpoint);
    }

    /// Returns the (topic, partition) pairs the source should stop reading for now, read
    /// so far ahead of the event-time watermark that their posts only fill the reorder
    /// buffer (see `EventTimeOrderer::partitions_to_pause`).
    pub fn partitions_to_pause(&mut self) -> Vec<(String, i32)> {
        self.orderer
            .partitions_to_pause()
            .into_iter()
            .map(|key| (key.topic, key.partition))
            .collect()
    }

    /// Returns the offsets of every post observed so far: what a snapshot written now
    /// covers, and so the furthest the source may commit.
    pub fn observed_through(&self) -> &Checkpoint {
        &self.observed_through
    }

    /// Writes a snapshot covering `checkpoint` durably (temp file, fsync, rename,
    /// directory fsync); on error the previous snapshot is intact.
    pub fn write_snapshot(&self, checkpoint: &Checkpoint) -> anyhow::Result<()> {
        let Some(path) = &self.snapshot_path else {
            return Ok(());
        };
        let snapshot = StateSnapshotRef {
            detector: self.detector.snapshot_ref(checkpoint),
            alerts: self.alerting.policy().snapshot(),
            recent_posts: self.alerting.recent_posts(),
            event_time: Some(self.orderer.snapshot()),
        };
        vigie_pipeline::durable_write_with(path, |writer| {
            rmp_serde::encode::write_named(writer, &snapshot).map_err(io_error_of)
        })
        .with_context(|| format!("cannot save the detector state to {}", path.display()))
    }
}

/// Returns the I/O error under an encoder error (so a full disk keeps its kind,
/// `StorageFull`), or the encoder error as an I/O error.
fn io_error_of(err: rmp_serde::encode::Error) -> std::io::Error {
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return std::io::Error::new(io.kind(), io.to_string());
        }
        source = cause.source();
    }
    std::io::Error::other(err)
}

fn read_snapshot(path: &Path) -> anyhow::Result<StateSnapshot> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    rmp_serde::decode::from_read(std::io::BufReader::new(file)).with_context(|| {
        format!(
            "{} is not a detector snapshot of this version",
            path.display()
        )
    })
}

fn event_kind(event: &NarrativeEvent) -> &'static str {
    use vigie_domain::NarrativeEventKind::*;
    match event.kind {
        Created => "created",
        Updated => "updated",
        StatusChanged { .. } => "status_changed",
        SeverityChanged { .. } => "severity_changed",
        Merged { .. } => "merged",
        Retired => "retired",
    }
}

#[cfg(test)]
mod tests;
