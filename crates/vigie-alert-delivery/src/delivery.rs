//! Delivery: a durable [`Outbox`] on disk and per-sink workers that send what it holds,
//! at least once, with retries, and dead-letter what cannot be delivered in time.
//!
//! # The outbox
//!
//! One directory holding `journal.jsonl`, an append-only journal: an `accept` record per
//! notification (with the sinks it goes to), then a `done` record per sink once it was
//! delivered or dead-lettered. [`AlertDelivery::deliver`] writes the accept records and
//! fsyncs before it returns, so an accepted notification survives a crash; `done`
//! records are not fsync'd, since losing one only re-sends a notification, which
//! receivers de-duplicate by its id (`webhook-id`). At open, and every
//! [`COMPACT_AFTER_RECORDS`] records, the journal is rewritten with only what is pending
//! (temp file, fsync, rename), so it stays small. One journal rather than a file per
//! delivery: one fsync per batch of notifications, and no directory of thousands of
//! small files when a sink is down for a day. `dead-letter.jsonl` keeps what was given up
//! on, with the reason.
//!
//! # Workers
//!
//! Each sink endpoint (each Alertmanager of a sink counts as one) has its own queue and
//! tokio task, so a failing or hanging sink delays nothing else, and enqueueing never
//! waits on the network. A worker sends up to `max_concurrency` requests at once, at most
//! `rate_limit_per_minute`, and keeps the order of each alert's notifications (a resolve
//! never overtakes its firing). Failures (transport errors, timeouts, 408, 425, 429, 5xx)
//! are retried with exponential backoff and full jitter, or after the `Retry-After` the
//! receiver asked for, until `max_age_secs` after acceptance; other 4xx are not retried.
//! Notifications of one group go in one request where the sink kind allows (Slack, Teams,
//! Alertmanager). The wall clock is read here only: retry delays, `webhook-timestamp`,
//! Alertmanager's `endsAt`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::{DeliveryConfig, SinkConfig, SinkKind};
use crate::error::DeliveryError;
use crate::format;
use crate::signing::WebhookSecret;
use vigie_domain::alert::AlertSeverity;
use vigie_domain::alert::{Notification, NotificationKind};

mod journal;

pub use journal::{parse_journal, read_journal, JournalRecord, ParsedJournal, MAX_RECORD_BYTES};
use vigie_domain::Secret;

/// The journal's file name inside the outbox directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";
/// The dead letters' file name inside the outbox directory.
pub const DEAD_LETTER_FILE: &str = "dead-letter.jsonl";
/// Journal records written before the journal is compacted again.
pub const COMPACT_AFTER_RECORDS: usize = 10_000;
/// Latency samples kept per sink in [`DeliveryStats`].
const LATENCY_SAMPLES: usize = 256;

/// Returns the wall clock.
#[allow(clippy::disallowed_methods)]
fn wall_now() -> DateTime<Utc> {
    // Delivery is about the receiver's time, not event time: retry deadlines, signature
    // timestamps and Alertmanager expiry are all judged against real clocks.
    Utc::now()
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// The sink accepted it.
    Delivered,
    /// It failed and will be tried again.
    Retried,
    /// It was given up on and written to `dead-letter.jsonl`.
    DeadLettered,
}

impl DeliveryOutcome {
    /// Returns the outcome as a lowercase word, for the `outcome` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Retried => "retried",
            DeliveryOutcome::DeadLettered => "dead_lettered",
        }
    }
}

/// Receives delivery events, for the daemon's Prometheus metrics. Labels passed are from
/// small closed sets (configured sink names, outcomes, severities); never a narrative.
pub trait DeliveryObserver: Send + Sync {
    /// Called once per notification and attempt outcome; `latency` (from acceptance to
    /// delivery) is given for delivered ones.
    fn delivery_finished(
        &self,
        sink: &str,
        outcome: DeliveryOutcome,
        severity: AlertSeverity,
        latency: Option<Duration>,
    );
    /// Called whenever a sink's pending count changes.
    fn queue_depth(&self, sink: &str, depth: usize);
}

/// Counters of one sink.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SinkStats {
    /// Notifications delivered.
    pub delivered: u64,
    /// Failed attempts that will be retried.
    pub retried: u64,
    /// Notifications given up on.
    pub dead_lettered: u64,
    /// Notifications pending (queued, waiting for a retry or in flight).
    pub depth: usize,
    /// Latest delivery latencies in seconds, from acceptance to delivery (bounded).
    pub latency_secs: VecDeque<f64>,
}

/// Delivery counters per sink, always kept (tests and `/api/v1/alerts` read them); the
/// daemon may also pass its own [`DeliveryObserver`].
#[derive(Debug, Default)]
pub struct DeliveryStats {
    sinks: Mutex<BTreeMap<String, SinkStats>>,
}

impl DeliveryStats {
    /// Returns the counters of every sink.
    pub fn snapshot(&self) -> BTreeMap<String, SinkStats> {
        self.sinks.lock().expect("stats lock").clone()
    }

    /// Returns the counters of one sink (zeros when unknown).
    pub fn sink(&self, name: &str) -> SinkStats {
        self.sinks
            .lock()
            .expect("stats lock")
            .get(name)
            .cloned()
            .unwrap_or_default()
    }
}

impl DeliveryObserver for DeliveryStats {
    fn delivery_finished(
        &self,
        sink: &str,
        outcome: DeliveryOutcome,
        _severity: AlertSeverity,
        latency: Option<Duration>,
    ) {
        let mut sinks = self.sinks.lock().expect("stats lock");
        let stats = sinks.entry(sink.to_owned()).or_default();
        match outcome {
            DeliveryOutcome::Delivered => stats.delivered += 1,
            DeliveryOutcome::Retried => stats.retried += 1,
            DeliveryOutcome::DeadLettered => stats.dead_lettered += 1,
        }
        if let Some(latency) = latency {
            if stats.latency_secs.len() == LATENCY_SAMPLES {
                stats.latency_secs.pop_front();
            }
            stats.latency_secs.push_back(latency.as_secs_f64());
        }
    }

    fn queue_depth(&self, sink: &str, depth: usize) {
        let mut sinks = self.sinks.lock().expect("stats lock");
        sinks.entry(sink.to_owned()).or_default().depth = depth;
    }
}

/// One line of `dead-letter.jsonl`.
#[derive(Debug, Serialize, Deserialize)]
struct DeadLetter {
    dead_at: DateTime<Utc>,
    target: String,
    reason: String,
    attempts: u32,
    accepted_at: DateTime<Utc>,
    notification: Notification,
}

/// A notification accepted for some targets and not yet done with all of them.
#[derive(Debug, Clone)]
pub struct PendingDelivery {
    /// Position in the journal (acceptance order).
    pub seq: u64,
    /// When it was accepted (wall clock).
    pub accepted_at: DateTime<Utc>,
    /// The targets (sink endpoints) still to deliver to.
    pub targets: BTreeSet<String>,
    /// The notification.
    pub notification: Arc<Notification>,
}

struct OutboxInner {
    journal: File,
    journal_len: u64,
    /// A failed append may have left a partial line that could not be cut: the next
    /// append starts with a newline so its record is not glued to it.
    torn_tail: bool,
    pending: BTreeMap<u64, PendingDelivery>,
    next_seq: u64,
    records_since_compaction: usize,
}

impl OutboxInner {
    /// Appends whole lines (fsync'd when `sync`); on failure cuts what was written, so a
    /// refused record leaves no trace and the journal stays readable.
    fn append(&mut self, path: &Path, lines: &[u8], sync: bool) -> Result<(), DeliveryError> {
        let mut buffer = Vec::with_capacity(lines.len() + 1);
        if self.torn_tail {
            buffer.push(b'\n');
        }
        buffer.extend_from_slice(lines);
        let start = self.journal_len;
        let written = self.journal.write_all(&buffer).and_then(|()| {
            if sync {
                self.journal.sync_data()
            } else {
                Ok(())
            }
        });
        match written {
            Ok(()) => {
                self.journal_len += buffer.len() as u64;
                self.torn_tail = false;
                Ok(())
            }
            Err(err) => {
                // Cut a partial write, or the next record would be glued to it.
                match self.journal.set_len(start) {
                    Ok(()) => {}
                    Err(_) => {
                        self.torn_tail = true;
                        if let Ok(metadata) = self.journal.metadata() {
                            self.journal_len = metadata.len();
                        }
                    }
                }
                Err(io_error(path)(err))
            }
        }
    }
}

/// The durable queue of accepted notifications; see the module docs.
pub struct Outbox {
    dir: PathBuf,
    inner: Mutex<OutboxInner>,
    corrupt_records: usize,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("dir", &self.dir).finish()
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DeliveryError + '_ {
    move |source| DeliveryError::OutboxIo {
        path: path.to_owned(),
        source,
    }
}

impl Outbox {
    /// Opens (creating it if needed) the outbox in `dir`, reads what is pending and
    /// compacts the journal. Damaged lines (a torn tail after a crash mid-write, garbage)
    /// are skipped, counted ([`Outbox::corrupt_records`]) and logged by line number; the
    /// rest is kept. When compaction fails (a full disk), the journal is kept as it is.
    pub fn open(dir: impl AsRef<Path>) -> Result<Outbox, DeliveryError> {
        let dir = dir.as_ref().to_owned();
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let path = dir.join(JOURNAL_FILE);
        let parsed = match File::open(&path) {
            Ok(file) => read_journal(BufReader::new(file)).map_err(io_error(&path))?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => ParsedJournal::default(),
            Err(err) => return Err(io_error(&path)(err)),
        };
        const LOGGED_LINES: usize = 20;
        for &line in parsed.corrupt_lines.iter().take(LOGGED_LINES) {
            tracing::warn!(path = %path.display(), line, "skipped a corrupt outbox journal record");
        }
        if parsed.corrupt_lines.len() > LOGGED_LINES {
            tracing::warn!(
                path = %path.display(),
                skipped = parsed.corrupt_lines.len(),
                "skipped more corrupt outbox journal records"
            );
        }
        let corrupt_records = parsed.corrupt_lines.len();
        let (pending, next_seq) = journal::replay(parsed.records);
        let (journal, journal_len) = match write_compacted(&dir, &pending) {
            Ok(compacted) => compacted,
            Err(err) => {
                tracing::warn!(error = %error_chain(&err), "cannot compact the outbox journal; appending to it as it is");
                reopen_uncompacted(&path)?
            }
        };
        Ok(Outbox {
            dir,
            inner: Mutex::new(OutboxInner {
                journal,
                journal_len,
                torn_tail: false,
                pending,
                next_seq,
                records_since_compaction: 0,
            }),
            corrupt_records,
        })
    }

    /// Returns how many damaged journal lines were skipped when the outbox was opened.
    pub fn corrupt_records(&self) -> usize {
        self.corrupt_records
    }

    /// Returns the outbox directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Accepts one notification for these targets, durably (fsync'd) before returning.
    pub fn enqueue(
        &self,
        notification: &Notification,
        targets: &[String],
    ) -> Result<Vec<PendingDelivery>, DeliveryError> {
        self.enqueue_all(&[(notification.clone(), targets.to_vec())])
    }

    /// Accepts several notifications with one write and one fsync; returns them as
    /// pending deliveries. Those with no target are skipped.
    pub fn enqueue_all(
        &self,
        batch: &[(Notification, Vec<String>)],
    ) -> Result<Vec<PendingDelivery>, DeliveryError> {
        let mut inner = self.inner.lock().expect("outbox lock");
        let accepted_at = wall_now();
        let mut buffer = Vec::new();
        let mut accepted = Vec::new();
        let mut seq = inner.next_seq;
        for (notification, targets) in batch {
            if targets.is_empty() {
                continue;
            }
            let record = JournalRecord::Accept {
                seq,
                accepted_at,
                targets: targets.clone(),
                notification: Box::new(notification.clone()),
            };
            serde_json::to_writer(&mut buffer, &record).map_err(DeliveryError::Encode)?;
            buffer.push(b'\n');
            accepted.push(PendingDelivery {
                seq,
                accepted_at,
                targets: targets.iter().cloned().collect(),
                notification: Arc::new(notification.clone()),
            });
            seq += 1;
        }
        if accepted.is_empty() {
            return Ok(accepted);
        }
        let path = self.dir.join(JOURNAL_FILE);
        inner.append(&path, &buffer, true)?;
        inner.next_seq = seq;
        inner.records_since_compaction += accepted.len();
        for delivery in &accepted {
            inner.pending.insert(delivery.seq, delivery.clone());
        }
        Ok(accepted)
    }

    /// Records that a target is done with a notification (delivered or dead-lettered).
    /// Not fsync'd: if lost, the notification is sent again after a restart.
    pub fn complete(
        &self,
        seq: u64,
        target: &str,
        outcome: DeliveryOutcome,
    ) -> Result<(), DeliveryError> {
        let mut inner = self.inner.lock().expect("outbox lock");
        if let Some(entry) = inner.pending.get_mut(&seq) {
            entry.targets.remove(target);
            if entry.targets.is_empty() {
                inner.pending.remove(&seq);
            }
        }
        let record = JournalRecord::Done {
            seq,
            target: target.to_owned(),
            outcome,
        };
        let mut line = serde_json::to_vec(&record).map_err(DeliveryError::Encode)?;
        line.push(b'\n');
        let path = self.dir.join(JOURNAL_FILE);
        inner.append(&path, &line, false)?;
        inner.records_since_compaction += 1;
        if inner.records_since_compaction >= COMPACT_AFTER_RECORDS {
            match write_compacted(&self.dir, &inner.pending) {
                Ok((journal, len)) => {
                    inner.journal = journal;
                    inner.journal_len = len;
                    inner.torn_tail = false;
                    inner.records_since_compaction = 0;
                }
                Err(err) => {
                    // The journal in use is intact: keep appending to it, try again later.
                    inner.records_since_compaction = COMPACT_AFTER_RECORDS / 2;
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// Returns what is pending, in acceptance order.
    pub fn pending(&self) -> Vec<PendingDelivery> {
        let inner = self.inner.lock().expect("outbox lock");
        inner.pending.values().cloned().collect()
    }

    /// Returns the number of (notification, target) deliveries pending.
    pub fn depth(&self) -> usize {
        let inner = self.inner.lock().expect("outbox lock");
        inner.pending.values().map(|p| p.targets.len()).sum()
    }

    /// Writes a dead letter (fsync'd) and marks the target done.
    fn dead_letter(
        &self,
        delivery: &PendingDelivery,
        target: &str,
        attempts: u32,
        reason: &str,
    ) -> Result<(), DeliveryError> {
        let path = self.dir.join(DEAD_LETTER_FILE);
        let record = DeadLetter {
            dead_at: wall_now(),
            target: target.to_owned(),
            reason: reason.to_owned(),
            attempts,
            accepted_at: delivery.accepted_at,
            notification: (*delivery.notification).clone(),
        };
        let mut line = serde_json::to_vec(&record).map_err(DeliveryError::Encode)?;
        line.push(b'\n');
        {
            let _guard = self.inner.lock().expect("outbox lock");
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io_error(&path))?;
            file.write_all(&line)
                .and_then(|()| file.sync_data())
                .map_err(io_error(&path))?;
        }
        self.complete(delivery.seq, target, DeliveryOutcome::DeadLettered)
    }
}

/// Rewrites the journal with only the pending deliveries, durably
/// ([`vigie_pipeline::durable_write`]); returns it open for appending.
fn write_compacted(
    dir: &Path,
    pending: &BTreeMap<u64, PendingDelivery>,
) -> Result<(File, u64), DeliveryError> {
    let path = dir.join(JOURNAL_FILE);
    let buffer = journal::encode_pending(pending)?;
    vigie_pipeline::durable_write(&path, &buffer).map_err(io_error(&path))?;
    let journal = OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(io_error(&path))?;
    Ok((journal, buffer.len() as u64))
}

/// Opens the journal as it is for appending (compaction failed), ending a torn last line
/// first so the next record starts on a line of its own.
fn reopen_uncompacted(path: &Path) -> Result<(File, u64), DeliveryError> {
    let mut journal = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .map_err(io_error(path))?;
    let mut len = journal.metadata().map_err(io_error(path))?.len();
    if len > 0 {
        use std::io::{Read, Seek, SeekFrom};
        let mut last = [0u8; 1];
        journal
            .seek(SeekFrom::Start(len - 1))
            .and_then(|_| journal.read_exact(&mut last))
            .map_err(io_error(path))?;
        if last[0] != b'\n' {
            journal.write_all(b"\n").map_err(io_error(path))?;
            len += 1;
        }
    }
    Ok((journal, len))
}

/// Returns an error with its causes, for logs.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// One sink endpoint with its own queue.
struct Target {
    key: String,
    sink: SinkConfig,
    endpoint: Option<Secret>,
    client: Option<reqwest::Client>,
    secret: Option<WebhookSecret>,
}

struct QueueItem {
    delivery: PendingDelivery,
    attempts: u32,
    next_attempt: Instant,
    in_flight: bool,
}

#[derive(Default)]
struct QueueState {
    items: VecDeque<QueueItem>,
    next_send_allowed: Option<Instant>,
}

struct TargetQueue {
    target: Target,
    state: Mutex<QueueState>,
    wake: Notify,
    permits: Arc<Semaphore>,
}

impl TargetQueue {
    /// Queues a delivery for its first attempt at `now` (the caller wakes the worker).
    /// Queues new deliveries under one lock: a worker already awake must see a group
    /// whole, or it would send the part queued so far as a message of its own (found by
    /// the issue 8 receivers test: a storyline's resolve split in two Slack messages).
    fn push_new(&self, deliveries: Vec<PendingDelivery>, now: Instant) {
        let mut state = self.state.lock().expect("queue lock");
        for delivery in deliveries {
            state.items.push_back(QueueItem {
                delivery,
                attempts: 0,
                next_attempt: now,
                in_flight: false,
            });
        }
    }
}

struct Shared {
    outbox: Outbox,
    queues: BTreeMap<String, Arc<TargetQueue>>,
    delivery: DeliveryConfig,
    resend_secs: u64,
    stats: Arc<DeliveryStats>,
    observer: Option<Arc<dyn DeliveryObserver>>,
}

impl Shared {
    fn report(
        &self,
        sink: &str,
        outcome: DeliveryOutcome,
        severity: AlertSeverity,
        latency: Option<Duration>,
    ) {
        self.stats
            .delivery_finished(sink, outcome, severity, latency);
        if let Some(observer) = &self.observer {
            observer.delivery_finished(sink, outcome, severity, latency);
        }
    }

    fn report_depth(&self, sink: &str) {
        let depth: usize = self
            .queues
            .values()
            .filter(|q| q.target.sink.name == sink)
            .map(|q| q.state.lock().expect("queue lock").items.len())
            .sum();
        self.stats.queue_depth(sink, depth);
        if let Some(observer) = &self.observer {
            observer.queue_depth(sink, depth);
        }
    }
}

/// Sends notifications to every configured sink from a durable outbox; see the module
/// docs. Dropping it stops the workers; what is pending stays in the outbox.
pub struct AlertDelivery {
    shared: Arc<Shared>,
    sinks: Vec<SinkConfig>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for AlertDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertDelivery")
            .field("targets", &self.shared.queues.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Drop for AlertDelivery {
    fn drop(&mut self) {
        for worker in &self.workers {
            worker.abort();
        }
    }
}

/// Returns whether a sink takes a notification: severity, label matchers, and for
/// re-notifications the sink's `renotify` (acked ones go to Alertmanager only, which
/// would otherwise expire the alert). Chat sinks (Slack, Teams) take a claim's
/// notification only when it is news to people: a new claim (firing), or its resolve
/// together with its storyline's; its updates, re-notifications and lone resolves go to
/// machines only.
pub fn routes_to(sink: &SinkConfig, notification: &Notification) -> bool {
    let alert = &notification.alert;
    if alert.severity < sink.min_severity {
        return false;
    }
    if alert.level == vigie_domain::alert::NarrativeLevel::Claim
        && matches!(sink.kind, SinkKind::Slack | SinkKind::Teams)
    {
        let news = match notification.kind {
            NotificationKind::Firing => true,
            NotificationKind::Resolved => notification.with_parent,
            NotificationKind::Updated | NotificationKind::Renotify => false,
        };
        if !news {
            return false;
        }
    }
    if !sink
        .match_labels
        .iter()
        .all(|(name, value)| alert.labels.get(name) == Some(value))
    {
        return false;
    }
    if notification.kind == NotificationKind::Renotify {
        return sink.sends_renotify()
            && (!notification.acked || sink.kind == SinkKind::Alertmanager);
    }
    true
}

fn target_keys(sink: &SinkConfig) -> Vec<(String, Option<Secret>)> {
    let endpoints = sink.endpoints();
    match endpoints.len() {
        0 => vec![(sink.name.clone(), None)],
        1 => vec![(sink.name.clone(), endpoints.into_iter().next())],
        _ => endpoints
            .into_iter()
            .enumerate()
            .map(|(index, url)| (format!("{}#{index}", sink.name), Some(url)))
            .collect(),
    }
}

impl AlertDelivery {
    /// Starts one worker per sink endpoint on the current tokio runtime (call it from
    /// within the runtime) and queues what the outbox holds. Pending deliveries for a
    /// target no longer configured are dead-lettered. `renotify_interval_secs` is the
    /// policy's (`[alert] renotify_interval_secs`): Alertmanager is told to keep an alert
    /// that long past its last re-send.
    pub fn start(
        sinks: &[SinkConfig],
        delivery: &DeliveryConfig,
        renotify_interval_secs: u64,
        outbox: Outbox,
        observer: Option<Arc<dyn DeliveryObserver>>,
    ) -> Result<AlertDelivery, DeliveryError> {
        crate::config::validate(sinks, delivery)?;
        let mut queues = BTreeMap::new();
        for sink in sinks {
            let secret = if sink.secret.is_empty() {
                None
            } else {
                Some(WebhookSecret::parse(sink.secret.expose())?)
            };
            for (key, endpoint) in target_keys(sink) {
                let client = match endpoint {
                    Some(_) => Some(
                        reqwest::Client::builder()
                            .timeout(Duration::from_secs(sink.timeout_secs))
                            .user_agent(concat!("vigie/", env!("CARGO_PKG_VERSION")))
                            .build()
                            .map_err(|err| {
                                DeliveryError::InvalidConfig(format!(
                                    "alert.sinks.{}: cannot build an HTTP client: {err}",
                                    sink.name
                                ))
                            })?,
                    ),
                    None => None,
                };
                queues.insert(
                    key.clone(),
                    Arc::new(TargetQueue {
                        target: Target {
                            key,
                            sink: sink.clone(),
                            endpoint,
                            client,
                            secret: secret.clone(),
                        },
                        state: Mutex::new(QueueState::default()),
                        wake: Notify::new(),
                        permits: Arc::new(Semaphore::new(match sink.kind {
                            SinkKind::File | SinkKind::Stdout => 1,
                            _ => sink.max_concurrency,
                        })),
                    }),
                );
            }
        }
        let shared = Arc::new(Shared {
            outbox,
            queues,
            delivery: delivery.clone(),
            resend_secs: renotify_interval_secs,
            stats: Arc::new(DeliveryStats::default()),
            observer,
        });
        let now = Instant::now();
        for delivery in shared.outbox.pending() {
            for target in &delivery.targets {
                match shared.queues.get(target) {
                    Some(queue) => queue.push_new(vec![delivery.clone()], now),
                    None => {
                        tracing::error!(target, id = %delivery.notification.id, "dead-lettered a pending notification: its sink is no longer configured");
                        shared.outbox.dead_letter(
                            &delivery,
                            target,
                            0,
                            "sink no longer configured",
                        )?;
                    }
                }
            }
        }
        let workers = shared
            .queues
            .values()
            .map(|queue| tokio::spawn(run_worker(shared.clone(), queue.clone())))
            .collect();
        for sink in sinks {
            shared.report_depth(&sink.name);
        }
        Ok(AlertDelivery {
            shared,
            sinks: sinks.to_vec(),
            workers,
        })
    }

    /// Routes notifications to their sinks and accepts them durably into the outbox;
    /// returns the number of (notification, sink endpoint) deliveries queued. Never waits
    /// on the network: callable from any thread, the indexer's included.
    pub fn deliver(&self, notifications: &[Notification]) -> Result<usize, DeliveryError> {
        let batch: Vec<(Notification, Vec<String>)> = notifications
            .iter()
            .map(|notification| {
                let targets = self
                    .sinks
                    .iter()
                    .filter(|sink| routes_to(sink, notification))
                    .flat_map(|sink| target_keys(sink).into_iter().map(|(key, _)| key))
                    .collect();
                (notification.clone(), targets)
            })
            .collect();
        let accepted = self.shared.outbox.enqueue_all(&batch)?;
        let now = Instant::now();
        let mut queued = 0;
        let mut per_target: BTreeMap<String, Vec<PendingDelivery>> = BTreeMap::new();
        for delivery in accepted {
            for target in &delivery.targets {
                if self.shared.queues.contains_key(target) {
                    per_target
                        .entry(target.clone())
                        .or_default()
                        .push(delivery.clone());
                    queued += 1;
                }
            }
        }
        let touched: Vec<String> = per_target.keys().cloned().collect();
        for (target, deliveries) in per_target {
            self.shared.queues[&target].push_new(deliveries, now);
        }
        for target in touched {
            let queue = &self.shared.queues[&target];
            queue.wake.notify_one();
            self.shared.report_depth(&queue.target.sink.name);
        }
        Ok(queued)
    }

    /// Returns the delivery counters.
    pub fn stats(&self) -> Arc<DeliveryStats> {
        self.shared.stats.clone()
    }

    /// Returns the deliveries pending in the outbox.
    pub fn depth(&self) -> usize {
        self.shared.outbox.depth()
    }

    /// Waits until nothing is pending or `timeout` passes; returns true when drained.
    /// For a clean shutdown: what is still pending after it is sent at the next start.
    pub async fn drain(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.depth() == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// What a worker found in its queue.
enum Pick {
    Send(Vec<usize>),
    WaitUntil(Option<Instant>),
}

/// Picks the next request's items: the first ready item whose alert has no earlier item
/// pending (per-alert order), plus ready items of the same group up to the sink's limit.
fn pick(state: &QueueState, now: Instant, max_group: usize) -> Pick {
    let mut blocked: BTreeSet<&str> = BTreeSet::new();
    let mut chosen: Vec<usize> = Vec::new();
    let mut chosen_fingerprints: BTreeSet<&str> = BTreeSet::new();
    let mut earliest: Option<Instant> = None;
    for (index, item) in state.items.iter().enumerate() {
        let notification = &item.delivery.notification;
        let fingerprint = notification.fingerprint();
        let ready = !item.in_flight && item.next_attempt <= now;
        let free = !blocked.contains(fingerprint) && !chosen_fingerprints.contains(fingerprint);
        if ready && free {
            let same_group = chosen.first().is_none_or(|&first| {
                state.items[first].delivery.notification.group_key == notification.group_key
            });
            if same_group && chosen.len() < max_group {
                chosen.push(index);
                chosen_fingerprints.insert(fingerprint);
                continue;
            }
        }
        if !item.in_flight && free {
            earliest = Some(earliest.map_or(item.next_attempt, |e| e.min(item.next_attempt)));
        }
        blocked.insert(fingerprint);
    }
    if chosen.is_empty() {
        Pick::WaitUntil(earliest)
    } else {
        Pick::Send(chosen)
    }
}

async fn run_worker(shared: Arc<Shared>, queue: Arc<TargetQueue>) {
    let sink = &queue.target.sink;
    let spacing = (sink.rate_limit_per_minute > 0)
        .then(|| Duration::from_secs_f64(60.0 / f64::from(sink.rate_limit_per_minute)));
    loop {
        let permit = match queue.permits.clone().acquire_owned().await {
            Ok(permit) => permit,
            Err(_) => return,
        };
        // Registered before looking, so a wake-up between the look and the wait is kept.
        let woken = queue.wake.notified();
        let batch = {
            let mut state = queue.state.lock().expect("queue lock");
            let now = Instant::now();
            match pick(&state, now, sink.kind.max_group()) {
                Pick::Send(indices) => match state.next_send_allowed {
                    Some(allowed) if allowed > now => Err(Some(allowed)),
                    _ => {
                        if let Some(spacing) = spacing {
                            state.next_send_allowed = Some(now + spacing);
                        }
                        let mut batch = Vec::with_capacity(indices.len());
                        for index in indices {
                            let item = &mut state.items[index];
                            item.in_flight = true;
                            item.attempts += 1;
                            batch.push(item.delivery.clone());
                        }
                        Ok(batch)
                    }
                },
                Pick::WaitUntil(at) => Err(at),
            }
        };
        match batch {
            Ok(batch) => {
                let shared = shared.clone();
                let queue = queue.clone();
                tokio::spawn(async move {
                    let result = send(&shared, &queue.target, &batch).await;
                    finish(&shared, &queue, &batch, result);
                    drop(permit);
                    queue.wake.notify_one();
                });
            }
            Err(wait_until) => {
                drop(permit);
                match wait_until {
                    Some(at) => {
                        tokio::select! {
                            _ = woken => {}
                            _ = tokio::time::sleep_until(at) => {}
                        }
                    }
                    None => woken.await,
                }
            }
        }
    }
}

/// Why an attempt failed.
#[derive(Debug)]
struct SendFailure {
    message: String,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl SendFailure {
    fn retry(message: String) -> SendFailure {
        SendFailure {
            message,
            retryable: true,
            retry_after: None,
        }
    }
}

async fn send(
    shared: &Shared,
    target: &Target,
    batch: &[PendingDelivery],
) -> Result<(), SendFailure> {
    let notifications: Vec<&Notification> = batch.iter().map(|d| d.notification.as_ref()).collect();
    let sink = &target.sink;
    let (Some(endpoint), Some(client)) = (&target.endpoint, &target.client) else {
        return write_local(sink, &notifications).await;
    };
    let now = wall_now();
    let mut request = match sink.kind {
        SinkKind::Webhook => {
            debug_assert_eq!(
                notifications.len(),
                1,
                "webhooks send one notification each"
            );
            let notification = notifications[0];
            let body = serde_json::to_vec(&format::webhook_body(notification))
                .expect("a notification always serializes");
            let timestamp = now.timestamp();
            let mut request = client
                .post(endpoint.expose())
                .header("webhook-id", &notification.id)
                .header("webhook-timestamp", timestamp.to_string());
            if let Some(secret) = &target.secret {
                request = request.header(
                    "webhook-signature",
                    secret.sign(&notification.id, timestamp, &body),
                );
            }
            request.body(body)
        }
        SinkKind::Slack => client
            .post(endpoint.expose())
            .body(format::slack::message(&notifications).to_string()),
        SinkKind::Teams => client
            .post(endpoint.expose())
            .body(format::teams::message(&notifications).to_string()),
        SinkKind::Alertmanager => {
            let url = format!("{}/api/v2/alerts", endpoint.expose().trim_end_matches('/'));
            client.post(url).body(
                format::alertmanager::alerts(&notifications, now, shared.resend_secs).to_string(),
            )
        }
        SinkKind::File | SinkKind::Stdout => unreachable!("local sinks have no endpoint"),
    };
    request = request.header(reqwest::header::CONTENT_TYPE, "application/json");
    if !sink.bearer_token.is_empty() {
        request = request.bearer_auth(sink.bearer_token.expose());
    } else if !sink.basic_auth_user.is_empty() {
        request = request.basic_auth(
            &sink.basic_auth_user,
            Some(sink.basic_auth_password.expose()),
        );
    }
    let response = request
        .send()
        .await
        .map_err(|err| SendFailure::retry(describe_request_error(sink, err)))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| parse_retry_after(value, now));
    let retryable = status.is_server_error() || matches!(status.as_u16(), 408 | 425 | 429);
    let body = response.text().await.unwrap_or_default();
    Err(SendFailure {
        message: format!(
            "HTTP {status}: {}",
            // Scrubbed before truncation, so that no prefix of a secret survives.
            vigie_domain::alert::truncate_chars(
                &vigie_domain::scrub(body.trim(), sink.secrets()),
                200
            )
        ),
        retryable,
        retry_after,
    })
}

/// Describes a failed request without its URL (for Slack and Teams the URL is the
/// credential, and reqwest's message quotes it), then scrubs the sink's secrets from what
/// is left as a second line of defence. The text goes to logs and `dead-letter.jsonl`.
fn describe_request_error(sink: &SinkConfig, err: reqwest::Error) -> String {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let err = err.without_url();
    let mut text = format!("{what}: {err}");
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    vigie_domain::scrub(&text, sink.secrets())
}

async fn write_local(
    sink: &SinkConfig,
    notifications: &[&Notification],
) -> Result<(), SendFailure> {
    let mut lines = String::new();
    for notification in notifications {
        lines.push_str(&format::json_line(notification));
        lines.push('\n');
    }
    let kind = sink.kind;
    let path = PathBuf::from(&sink.path);
    let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        match kind {
            SinkKind::File => {
                let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
                file.write_all(lines.as_bytes())?;
                file.sync_data()
            }
            _ => {
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(lines.as_bytes())?;
                stdout.flush()
            }
        }
    })
    .await;
    match written {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(SendFailure::retry(format!("write failed: {err}"))),
        Err(err) => Err(SendFailure::retry(format!("writer task failed: {err}"))),
    }
}

/// Parses `Retry-After`: delay seconds or an HTTP date.
fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at: DateTime<Utc> = httpdate::parse_http_date(value).ok()?.into();
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// Returns the delay before retry number `attempts` (1-based): uniform in
/// [0, min(max, initial × 2^(attempts−1))] ("full jitter", which spreads the retries of
/// many senders hitting one recovering receiver).
fn backoff(config: &DeliveryConfig, attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(32);
    let cap = config
        .initial_backoff_ms
        .saturating_mul(1u64 << exponent)
        .min(config.max_backoff_ms);
    Duration::from_millis(fastrand::u64(0..=cap))
}

fn finish(
    shared: &Shared,
    queue: &TargetQueue,
    batch: &[PendingDelivery],
    result: Result<(), SendFailure>,
) {
    let target = &queue.target;
    let sink_name = target.sink.name.as_str();
    let now_wall = wall_now();
    let max_age = chrono::Duration::seconds(
        i64::try_from(shared.delivery.max_age_secs).unwrap_or(i64::MAX / 1000),
    );
    let mut state = queue.state.lock().expect("queue lock");
    for delivery in batch {
        let Some(position) = state
            .items
            .iter()
            .position(|item| item.delivery.seq == delivery.seq)
        else {
            continue;
        };
        let severity = delivery.notification.alert.severity;
        let id = delivery.notification.id.as_str();
        match &result {
            Ok(()) => {
                state.items.remove(position);
                let latency = (now_wall - delivery.accepted_at).to_std().ok();
                shared.report(sink_name, DeliveryOutcome::Delivered, severity, latency);
                if let Err(err) =
                    shared
                        .outbox
                        .complete(delivery.seq, &target.key, DeliveryOutcome::Delivered)
                {
                    tracing::warn!(sink = sink_name, error = %err, "failed to record a delivery; it will be sent again after a restart");
                }
                tracing::debug!(sink = sink_name, id, "notification delivered");
            }
            Err(failure) => {
                let attempts = state.items[position].attempts;
                let delay = failure
                    .retry_after
                    .unwrap_or_else(|| backoff(&shared.delivery, attempts));
                let deadline = delivery.accepted_at + max_age;
                let retry_at = now_wall + chrono::Duration::from_std(delay).unwrap_or(max_age);
                if !failure.retryable || retry_at > deadline {
                    state.items.remove(position);
                    let reason = if failure.retryable {
                        format!(
                            "max age reached after {attempts} attempts: {}",
                            failure.message
                        )
                    } else {
                        format!("not retryable: {}", failure.message)
                    };
                    tracing::error!(sink = sink_name, id, attempts, reason = %reason, "notification dead-lettered");
                    shared.report(sink_name, DeliveryOutcome::DeadLettered, severity, None);
                    if let Err(err) =
                        shared
                            .outbox
                            .dead_letter(delivery, &target.key, attempts, &reason)
                    {
                        tracing::error!(sink = sink_name, id, error = %err, "failed to write a dead letter");
                    }
                } else {
                    let item = &mut state.items[position];
                    item.in_flight = false;
                    item.next_attempt = Instant::now() + delay;
                    tracing::warn!(sink = sink_name, id, attempts, retry_in_ms = delay.as_millis() as u64, error = %failure.message, "delivery failed, will retry");
                    shared.report(sink_name, DeliveryOutcome::Retried, severity, None);
                }
            }
        }
    }
    drop(state);
    shared.report_depth(sink_name);
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode, Uri};
    use axum::response::{IntoResponse, Response};
    use vigie_alert::fixtures::notification;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    /// What a test receiver answers to its n-th request (from 0).
    enum Reply {
        Status(u16),
        RetryAfter(u16, &'static str),
        Hang,
    }

    struct Received {
        at: std::time::Instant,
        path: String,
        headers: HeaderMap,
        body: Vec<u8>,
        status: u16,
    }

    type Log = Arc<Mutex<Vec<Received>>>;

    #[derive(Clone)]
    struct Receiver {
        log: Log,
        reply: Arc<dyn Fn(usize) -> Reply + Send + Sync>,
    }

    async fn handle(
        State(receiver): State<Receiver>,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let n = receiver.log.lock().unwrap().len();
        let (status, retry_after) = match (receiver.reply)(n) {
            Reply::Hang => std::future::pending().await,
            Reply::Status(status) => (status, None),
            Reply::RetryAfter(status, after) => (status, Some(after)),
        };
        receiver.log.lock().unwrap().push(Received {
            at: std::time::Instant::now(),
            path: uri.path().to_owned(),
            headers,
            body: body.to_vec(),
            status,
        });
        let status = StatusCode::from_u16(status).unwrap();
        match retry_after {
            Some(after) => (status, [("retry-after", after)]).into_response(),
            None => status.into_response(),
        }
    }

    /// Starts a receiver on a loopback port; returns its base URL and request log.
    async fn serve(reply: impl Fn(usize) -> Reply + Send + Sync + 'static) -> (String, Log) {
        let log: Log = Arc::default();
        let app = axum::Router::new().fallback(handle).with_state(Receiver {
            log: log.clone(),
            reply: Arc::new(reply),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, log)
    }

    fn sink(name: &str, kind: SinkKind, url: &str) -> SinkConfig {
        SinkConfig {
            name: name.into(),
            kind,
            url: Secret::new(url),
            secret: if kind == SinkKind::Webhook {
                Secret::new(SECRET)
            } else {
                Secret::default()
            },
            timeout_secs: 5,
            ..SinkConfig::default()
        }
    }

    /// What [`AlertDelivery::start`] takes besides the outbox.
    struct Setup {
        sinks: Vec<SinkConfig>,
        delivery: DeliveryConfig,
    }

    fn config(sinks: Vec<SinkConfig>, max_age_secs: u64) -> Setup {
        Setup {
            sinks,
            delivery: DeliveryConfig {
                initial_backoff_ms: 20,
                max_backoff_ms: 100,
                max_age_secs,
            },
        }
    }

    /// Starts delivery with the policy's default re-notify interval (900 s).
    fn start(
        setup: &Setup,
        outbox: Outbox,
        observer: Option<Arc<dyn DeliveryObserver>>,
    ) -> Result<AlertDelivery, DeliveryError> {
        AlertDelivery::start(&setup.sinks, &setup.delivery, 900, outbox, observer)
    }

    fn notifications(count: u64) -> Vec<Notification> {
        (1..=count)
            .map(|id| notification(id, NotificationKind::Firing))
            .collect()
    }

    /// Polls `condition` every 10 ms for up to 4 s.
    async fn wait_for(what: &str, condition: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(4);
        while !condition() {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn header<'a>(received: &'a Received, name: &str) -> &'a str {
        received.headers[name].to_str().unwrap()
    }

    #[tokio::test]
    async fn receiver_down_then_up_gets_everything_once_signed() {
        let (url, log) = serve(|n| Reply::Status(if n < 4 { 503 } else { 200 })).await;
        let dir = tempfile::tempdir().unwrap();
        let delivery = start(
            &config(vec![sink("hook", SinkKind::Webhook, &url)], 60),
            Outbox::open(dir.path()).unwrap(),
            None,
        )
        .unwrap();
        let sent = notifications(5);
        assert_eq!(delivery.deliver(&sent).unwrap(), 5);
        let stats = delivery.stats();
        wait_for("5 deliveries", || stats.sink("hook").delivered == 5).await;

        let log = log.lock().unwrap();
        let ids: BTreeSet<&str> = sent.iter().map(|n| n.id.as_str()).collect();
        let mut accepted = Vec::new();
        for received in log.iter() {
            crate::signing::verify_standard_webhook(SECRET, &received.headers, &received.body)
                .expect("every request is signed");
            let id = header(received, "webhook-id");
            assert!(ids.contains(id), "duplicates carry a known id");
            let body: serde_json::Value = serde_json::from_slice(&received.body).unwrap();
            assert_eq!(body["data"]["id"], id);
            assert_eq!(body["type"], "vigie.alert.firing");
            if received.status == 200 {
                accepted.push(id);
            }
        }
        accepted.sort_unstable();
        assert_eq!(
            accepted,
            ids.into_iter().collect::<Vec<_>>(),
            "each delivered once"
        );
        assert!(stats.sink("hook").retried >= 4);
        assert_eq!(stats.sink("hook").depth, 0);
        assert_eq!(delivery.depth(), 0);
    }

    #[tokio::test]
    async fn retry_after_is_honoured() {
        let (url, log) = serve(|n| {
            if n == 0 {
                Reply::RetryAfter(429, "1")
            } else {
                Reply::Status(200)
            }
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let delivery = start(
            &config(vec![sink("hook", SinkKind::Webhook, &url)], 60),
            Outbox::open(dir.path()).unwrap(),
            None,
        )
        .unwrap();
        delivery.deliver(&notifications(1)).unwrap();
        let stats = delivery.stats();
        wait_for("the delivery", || stats.sink("hook").delivered == 1).await;
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 2);
        let gap = log[1].at - log[0].at;
        assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
        assert_eq!(header(&log[0], "webhook-id"), header(&log[1], "webhook-id"));
    }

    #[test]
    fn retry_after_parses_seconds_and_http_dates() {
        let now = DateTime::from_timestamp(1_445_412_480, 0).unwrap(); // 2015-10-21 07:28:00
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:29:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        let config = DeliveryConfig {
            initial_backoff_ms: 100,
            max_backoff_ms: 1000,
            max_age_secs: 60,
        };
        for _ in 0..200 {
            assert!(backoff(&config, 1) <= Duration::from_millis(100));
            assert!(backoff(&config, 3) <= Duration::from_millis(400));
            assert!(backoff(&config, 60) <= Duration::from_millis(1000));
        }
        let spread: BTreeSet<Duration> = (0..50).map(|_| backoff(&config, 10)).collect();
        assert!(spread.len() > 10, "delays are jittered");
    }

    #[tokio::test]
    async fn past_max_age_a_notification_is_dead_lettered() {
        let (down, _) = serve(|_| Reply::Status(503)).await;
        let (refusing, _) = serve(|_| Reply::Status(400)).await;
        let dir = tempfile::tempdir().unwrap();
        let delivery = start(
            &config(
                vec![
                    sink("down", SinkKind::Webhook, &down),
                    sink("refusing", SinkKind::Webhook, &refusing),
                ],
                1,
            ),
            Outbox::open(dir.path()).unwrap(),
            None,
        )
        .unwrap();
        let sent = notifications(1);
        assert_eq!(delivery.deliver(&sent).unwrap(), 2);
        let stats = delivery.stats();
        // A 400 is not retried.
        wait_for("the refusal", || stats.sink("refusing").dead_lettered == 1).await;
        assert_eq!(stats.sink("refusing").retried, 0);
        wait_for("the dead letter", || stats.sink("down").dead_lettered == 1).await;
        assert!(stats.sink("down").retried >= 2);
        assert_eq!(delivery.depth(), 0);
        let letters = std::fs::read_to_string(dir.path().join(DEAD_LETTER_FILE)).unwrap();
        let letters: Vec<serde_json::Value> = letters
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(letters.len(), 2);
        let down = letters.iter().find(|l| l["target"] == "down").unwrap();
        assert_eq!(down["notification"]["id"], sent[0].id.as_str());
        assert!(
            down["reason"].as_str().unwrap().contains("max age"),
            "{down}"
        );
        // Dead letters are not re-sent after a restart.
        drop(delivery);
        assert_eq!(Outbox::open(dir.path()).unwrap().depth(), 0);
    }

    #[tokio::test]
    async fn a_hanging_sink_does_not_delay_another() {
        let (hanging, hanging_log) = serve(|_| Reply::Hang).await;
        let (healthy, healthy_log) = serve(|_| Reply::Status(200)).await;
        let dir = tempfile::tempdir().unwrap();
        let mut slow = sink("slow", SinkKind::Webhook, &hanging);
        slow.timeout_secs = 30;
        slow.max_concurrency = 1;
        let delivery = start(
            &config(vec![slow, sink("fast", SinkKind::Webhook, &healthy)], 60),
            Outbox::open(dir.path()).unwrap(),
            None,
        )
        .unwrap();
        let started = std::time::Instant::now();
        delivery.deliver(&notifications(3)).unwrap();
        let stats = delivery.stats();
        wait_for("the healthy sink", || stats.sink("fast").delivered == 3).await;
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(healthy_log.lock().unwrap().len(), 3);
        assert_eq!(stats.sink("slow").delivered, 0);
        assert!(hanging_log.lock().unwrap().is_empty());
        assert_eq!(stats.sink("slow").depth, 3);
    }

    #[tokio::test]
    async fn pending_deliveries_survive_a_crash() {
        let (down, down_log) = serve(|_| Reply::Status(503)).await;
        let dir = tempfile::tempdir().unwrap();
        let sent = notifications(2);
        {
            let delivery = start(
                &config(vec![sink("hook", SinkKind::Webhook, &down)], 60),
                Outbox::open(dir.path()).unwrap(),
                None,
            )
            .unwrap();
            delivery.deliver(&sent).unwrap();
            wait_for("attempts", || down_log.lock().unwrap().len() >= 2).await;
            // Dropped with deliveries in flight and no flush: a crash, as far as the
            // outbox can tell.
        }
        // A crash in the middle of writing leaves a torn line.
        let journal = dir.path().join(JOURNAL_FILE);
        let mut file = OpenOptions::new().append(true).open(&journal).unwrap();
        file.write_all(br#"{"op":"accept","seq":99,"accep"#)
            .unwrap();
        drop(file);

        let outbox = Outbox::open(dir.path()).unwrap();
        assert_eq!(outbox.depth(), 2);
        let (up, up_log) = serve(|_| Reply::Status(200)).await;
        let delivery = start(
            &config(vec![sink("hook", SinkKind::Webhook, &up)], 60),
            outbox,
            None,
        )
        .unwrap();
        let stats = delivery.stats();
        wait_for("re-sent deliveries", || stats.sink("hook").delivered == 2).await;
        let resent: BTreeSet<String> = up_log
            .lock()
            .unwrap()
            .iter()
            .map(|r| header(r, "webhook-id").to_owned())
            .collect();
        let original: BTreeSet<String> = sent.iter().map(|n| n.id.clone()).collect();
        assert_eq!(resent, original, "same ids after the restart");
        drop(delivery);
        assert_eq!(Outbox::open(dir.path()).unwrap().depth(), 0);
    }

    /// Issue 12, row 7: a crash leaves a torn multi-byte UTF-8 tail in `journal.jsonl`;
    /// the daemon refused to start (`stream did not contain valid UTF-8`). Now the torn
    /// line is skipped and counted and every pending delivery is still delivered.
    #[tokio::test]
    async fn issue_12_row_7_a_journal_torn_inside_a_utf8_character_still_opens_and_delivers() {
        let (down, down_log) = serve(|_| Reply::Status(503)).await;
        let dir = tempfile::tempdir().unwrap();
        // Non-ASCII text, as alert content in French, Russian or Arabic has.
        let sent: Vec<Notification> = notifications(3)
            .into_iter()
            .map(|n| Notification {
                group_key: "récit-été-наратив".into(),
                ..n
            })
            .collect();
        {
            let delivery = start(
                &config(vec![sink("hook", SinkKind::Webhook, &down)], 60),
                Outbox::open(dir.path()).unwrap(),
                None,
            )
            .unwrap();
            delivery.deliver(&sent[..2]).unwrap();
            delivery.deliver(&sent[2..]).unwrap();
            wait_for("attempts", || down_log.lock().unwrap().len() >= 2).await;
        }
        // The crash: the last record is cut in the middle of a two-byte character.
        let journal = dir.path().join(JOURNAL_FILE);
        let bytes = std::fs::read(&journal).unwrap();
        let last_line = bytes[..bytes.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .unwrap()
            + 1;
        let cut = last_line
            + bytes[last_line..]
                .iter()
                .position(|&b| b == 0xC3)
                .expect("a multi-byte character in the last record")
            + 1;
        std::fs::write(&journal, &bytes[..cut]).unwrap();
        assert!(
            std::str::from_utf8(&bytes[..cut]).is_err(),
            "torn inside a character"
        );

        let outbox = Outbox::open(dir.path()).expect("the outbox opens despite the torn tail");
        assert_eq!(outbox.corrupt_records(), 1);
        assert_eq!(outbox.depth(), 2, "the two complete records are kept");
        let (up, up_log) = serve(|_| Reply::Status(200)).await;
        let delivery = start(
            &config(vec![sink("hook", SinkKind::Webhook, &up)], 60),
            outbox,
            None,
        )
        .unwrap();
        let stats = delivery.stats();
        wait_for("re-sent deliveries", || stats.sink("hook").delivered == 2).await;
        let resent: BTreeSet<String> = up_log
            .lock()
            .unwrap()
            .iter()
            .map(|r| header(r, "webhook-id").to_owned())
            .collect();
        let kept: BTreeSet<String> = sent[..2].iter().map(|n| n.id.clone()).collect();
        assert_eq!(resent, kept);
        drop(delivery);
        // Compaction at open rewrote the journal without the torn line.
        let reopened = Outbox::open(dir.path()).unwrap();
        assert_eq!((reopened.corrupt_records(), reopened.depth()), (0, 0));
    }

    /// A small tmpfs mounted for one test (needs root); unmounted on drop.
    struct SmallDisk {
        dir: tempfile::TempDir,
    }

    impl SmallDisk {
        /// Mounts a tmpfs of `size` (e.g. `"256k"`); `None` when mounting is not allowed
        /// here (not root), after saying so.
        fn mount(size: &str) -> Option<SmallDisk> {
            let dir = tempfile::tempdir().unwrap();
            let status = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir.path())
                .stderr(std::process::Stdio::null())
                .status();
            match status {
                Ok(status) if status.success() => Some(SmallDisk { dir }),
                _ => {
                    eprintln!("skipped: cannot mount a tmpfs here (needs root)");
                    None
                }
            }
        }

        fn path(&self) -> &Path {
            self.dir.path()
        }

        /// Fills the file system; returns the filler, to delete when space should return.
        fn fill(&self) -> PathBuf {
            let filler = self.path().join("filler");
            let mut file = File::create(&filler).unwrap();
            let chunk = vec![0u8; 4096];
            while file.write_all(&chunk).is_ok() {}
            while file.write_all(&chunk[..1]).is_ok() {}
            filler
        }
    }

    impl Drop for SmallDisk {
        fn drop(&mut self) {
            // Lazy: files the test's runtime still holds open must not keep it mounted.
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }

    /// Issue 12 (review finding: a notification the outbox refuses is lost): on a full
    /// disk the outbox refuses with an error naming the journal and the cause, takes
    /// nothing, leaves the journal readable, and accepts again once space returns.
    #[tokio::test]
    async fn issue_12_a_full_disk_refuses_notifications_cleanly_and_recovers() {
        let Some(disk) = SmallDisk::mount("256k") else {
            return;
        };
        let dir = disk.path().join("outbox");
        let delivery = start(
            &config(
                vec![sink("hook", SinkKind::Webhook, "http://127.0.0.1:9")],
                60,
            ),
            Outbox::open(&dir).unwrap(),
            None,
        )
        .unwrap();
        // Records of several KB: appending them needs new pages, so a full tmpfs refuses.
        let sent = notifications(6);
        delivery.deliver(&sent[..1]).unwrap();
        let filler = disk.fill();
        let err = delivery.deliver(&sent[1..]).unwrap_err();
        let DeliveryError::OutboxIo { path, source } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(path, &dir.join(JOURNAL_FILE));
        assert_eq!(source.kind(), std::io::ErrorKind::StorageFull);
        assert!(source.to_string().contains("No space left"), "{source}");
        assert_eq!(delivery.depth(), 1, "nothing refused is counted as taken");

        std::fs::remove_file(filler).unwrap();
        assert_eq!(delivery.deliver(&sent[1..]).unwrap(), 5);
        assert_eq!(delivery.depth(), 6);
        drop(delivery);
        let parsed = parse_journal(&std::fs::read(dir.join(JOURNAL_FILE)).unwrap());
        assert!(
            parsed.corrupt_lines.is_empty(),
            "{:?}",
            parsed.corrupt_lines
        );
        assert_eq!(Outbox::open(&dir).unwrap().depth(), 6);
    }

    #[tokio::test]
    async fn group_capable_sinks_send_one_request_per_group() {
        let (am1, am1_log) = serve(|_| Reply::Status(200)).await;
        let (am2, am2_log) = serve(|_| Reply::Status(200)).await;
        let (slack, slack_log) = serve(|_| Reply::Status(200)).await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("alerts.jsonl");
        let mut alertmanager = sink("am", SinkKind::Alertmanager, "");
        alertmanager.urls = vec![Secret::new(am1), Secret::new(format!("{am2}/"))];
        let mut file_sink = sink("file", SinkKind::File, "");
        file_sink.path = file.display().to_string();
        let delivery = start(
            &config(
                vec![
                    alertmanager,
                    sink("slack", SinkKind::Slack, &slack),
                    file_sink,
                ],
                60,
            ),
            Outbox::open(dir.path().join("outbox")).unwrap(),
            None,
        )
        .unwrap();
        let sent = notifications(3);
        assert_eq!(delivery.deliver(&sent).unwrap(), 12);
        let stats = delivery.stats();
        wait_for("all sinks", || {
            stats.sink("am").delivered == 6
                && stats.sink("slack").delivered == 3
                && stats.sink("file").delivered == 3
        })
        .await;
        for log in [&am1_log, &am2_log] {
            let log = log.lock().unwrap();
            assert_eq!(log.len(), 1, "one request for the group");
            assert_eq!(log[0].path, "/api/v2/alerts");
            let body: serde_json::Value = serde_json::from_slice(&log[0].body).unwrap();
            assert_eq!(body.as_array().unwrap().len(), 3);
            assert_eq!(body[0]["labels"]["alertname"], "VigieNarrative");
        }
        let slack_log = slack_log.lock().unwrap();
        assert_eq!(slack_log.len(), 1);
        let body: serde_json::Value = serde_json::from_slice(&slack_log[0].body).unwrap();
        assert!(body["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .starts_with("*3 narrative alerts*"));
        let lines: Vec<Notification> = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines, sent);
    }

    #[tokio::test]
    async fn rate_limit_spaces_requests() {
        let (url, log) = serve(|_| Reply::Status(200)).await;
        let dir = tempfile::tempdir().unwrap();
        let mut limited = sink("hook", SinkKind::Webhook, &url);
        limited.rate_limit_per_minute = 600; // one per 100 ms
        let delivery = start(
            &config(vec![limited], 60),
            Outbox::open(dir.path()).unwrap(),
            None,
        )
        .unwrap();
        delivery.deliver(&notifications(3)).unwrap();
        let stats = delivery.stats();
        wait_for("all three", || stats.sink("hook").delivered == 3).await;
        let log = log.lock().unwrap();
        assert!(log[2].at - log[0].at >= Duration::from_millis(180));
    }

    #[tokio::test]
    async fn a_resolve_never_overtakes_its_firing() {
        // The firing fails once; the resolve, queued behind it, must wait for it.
        let (url, log) = serve(|n| Reply::Status(if n == 0 { 503 } else { 200 })).await;
        let dir = tempfile::tempdir().unwrap();
        let delivery = start(
            &config(vec![sink("hook", SinkKind::Webhook, &url)], 60),
            Outbox::open(dir.path()).unwrap(),
            None,
        )
        .unwrap();
        let firing = notification(1, NotificationKind::Firing);
        let resolved = notification(1, NotificationKind::Resolved);
        let other = notification(2, NotificationKind::Firing);
        delivery
            .deliver(&[firing.clone(), resolved.clone(), other.clone()])
            .unwrap();
        let stats = delivery.stats();
        wait_for("all three", || stats.sink("hook").delivered == 3).await;
        let log = log.lock().unwrap();
        let order: Vec<&str> = log.iter().map(|r| header(r, "webhook-id")).collect();
        let position = |id: &str| order.iter().rposition(|x| *x == id).unwrap();
        assert_eq!(order[0], firing.id);
        assert!(position(&firing.id) < position(&resolved.id), "{order:?}");
    }

    #[test]
    fn delivery_is_shareable_with_the_indexer_thread() {
        fn shareable<T: Send + Sync>() {}
        shareable::<AlertDelivery>();
        shareable::<vigie_alert::AlertPolicy>();
    }

    #[test]
    fn routing_by_severity_labels_and_renotify() {
        let mut n = notification(1, NotificationKind::Firing);
        let mut slack = sink("s", SinkKind::Slack, "http://127.0.0.1:1");
        assert!(routes_to(&slack, &n));
        slack.min_severity = AlertSeverity::Critical;
        assert!(!routes_to(&slack, &n), "warning below critical");
        slack.min_severity = AlertSeverity::Info;
        slack.match_labels.insert("rule".into(), "default".into());
        assert!(routes_to(&slack, &n));
        slack.match_labels.insert("team".into(), "fr".into());
        assert!(!routes_to(&slack, &n));
        slack.match_labels.clear();

        n.kind = NotificationKind::Renotify;
        let am = sink("am", SinkKind::Alertmanager, "http://127.0.0.1:1");
        assert!(
            !routes_to(&slack, &n),
            "chat sinks skip re-notifications by default"
        );
        assert!(routes_to(&am, &n));
        slack.renotify = Some(true);
        assert!(routes_to(&slack, &n));
        n.acked = true;
        assert!(
            !routes_to(&slack, &n),
            "acked: no re-notification to people"
        );
        assert!(routes_to(&am, &n), "Alertmanager keeps the alert alive");
    }
}
