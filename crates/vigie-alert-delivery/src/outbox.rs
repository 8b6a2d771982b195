//! The outbox: a durable queue of accepted notifications on disk.
//!
//! One directory holding `journal.jsonl`, an append-only journal: an `accept` record per
//! notification (with the sinks it goes to), then a `done` record per sink once it was
//! delivered or dead-lettered. [`crate::AlertDelivery::deliver`] writes the accept records and
//! fsyncs before it returns, so an accepted notification survives a crash; `done`
//! records are not fsync'd, since losing one only re-sends a notification, which
//! receivers de-duplicate by its id (`webhook-id`). At open, and every
//! [`COMPACT_AFTER_RECORDS`] records, the journal is rewritten with only what is pending
//! (temp file, fsync, rename), so it stays small. One journal rather than a file per
//! delivery: one fsync per batch of notifications, and no directory of thousands of
//! small files when a sink is down for a day. `dead-letter.jsonl` keeps what was given up
//! on, with the reason.
//!
//! The wall clock is read here for `accepted_at` (the start of `max_age_secs`) and
//! `dead_at` only.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vigie_domain::alert::Notification;

use crate::error::DeliveryError;

mod journal;

pub use journal::{parse_journal, read_journal, JournalRecord, ParsedJournal, MAX_RECORD_BYTES};

/// The journal's file name inside the outbox directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";
/// The dead letters' file name inside the outbox directory.
pub const DEAD_LETTER_FILE: &str = "dead-letter.jsonl";
/// Journal records written before the journal is compacted again.
pub const COMPACT_AFTER_RECORDS: usize = 10_000;

/// Returns the wall clock.
#[allow(clippy::disallowed_methods)]
pub(crate) fn wall_now() -> DateTime<Utc> {
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
    pub(crate) fn dead_letter(
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
