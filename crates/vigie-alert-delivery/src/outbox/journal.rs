//! The outbox journal's format and its reader, which tolerates any damage.
//!
//! One JSON record per line. A crash mid-append leaves a torn last line (possibly cut
//! inside a multi-byte UTF-8 character); a bad disk or a hand edit may leave garbage
//! anywhere. The reader works on bytes, bounds each line to [`MAX_RECORD_BYTES`], skips
//! and counts (by line number) every line that is not a well-formed record, and keeps
//! all the others, so one bad line never stops the daemon or loses the rest.
//! [`parse_journal`] is the pure entry point (the fuzz target calls it).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{DeliveryOutcome, PendingDelivery};
use crate::error::DeliveryError;
use vigie_domain::alert::Notification;

/// Longest journal line read as a record (8 MiB, far above any notification); longer
/// lines are skipped as corrupt without being held in memory whole.
pub const MAX_RECORD_BYTES: usize = 8 * 1024 * 1024;

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum JournalRecord {
    /// A notification accepted for these targets (sink endpoints).
    Accept {
        /// Position in acceptance order.
        seq: u64,
        /// When it was accepted (wall clock).
        accepted_at: DateTime<Utc>,
        /// The targets it goes to.
        targets: Vec<String>,
        /// The notification.
        notification: Box<Notification>,
    },
    /// One target is done with a notification.
    Done {
        /// The accepted record's `seq`.
        seq: u64,
        /// The target.
        target: String,
        /// Delivered or dead-lettered.
        outcome: DeliveryOutcome,
    },
}

/// What a journal holds: its readable records, in order, and the lines skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedJournal {
    /// The well-formed records, in file order.
    pub records: Vec<JournalRecord>,
    /// 1-based numbers of the lines skipped as corrupt (torn, not UTF-8, not JSON, not a
    /// record, too long).
    pub corrupt_lines: Vec<u64>,
}

/// Parses journal bytes; never fails and never panics, whatever the bytes.
pub fn parse_journal(bytes: &[u8]) -> ParsedJournal {
    read_journal(bytes).expect("reading from a byte slice cannot fail")
}

/// Reads a journal from `reader`; fails only on an I/O error of the reader.
pub fn read_journal(mut reader: impl BufRead) -> std::io::Result<ParsedJournal> {
    let mut parsed = ParsedJournal::default();
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let Some(too_long) = read_bounded_line(&mut reader, &mut line, MAX_RECORD_BYTES)? else {
            break;
        };
        number += 1;
        if too_long {
            parsed.corrupt_lines.push(number);
            continue;
        }
        let content = line.strip_suffix(b"\n").unwrap_or(&line);
        if content.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        // `from_slice` checks UTF-8 itself: a torn multi-byte character is just an error.
        match serde_json::from_slice::<JournalRecord>(content) {
            Ok(record) => parsed.records.push(record),
            Err(_) => parsed.corrupt_lines.push(number),
        }
    }
    Ok(parsed)
}

/// Appends the next line (newline included) to `line`, keeping at most `max + 1` bytes of
/// it; returns `None` at the end of input, else whether the line was longer than `max`.
fn read_bounded_line(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<bool>> {
    let mut total = 0usize;
    let mut ended = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if available.is_empty() {
            break;
        }
        let (take, ends) = match available.iter().position(|&b| b == b'\n') {
            Some(position) => (position + 1, true),
            None => (available.len(), false),
        };
        let room = (max + 1).saturating_sub(line.len());
        line.extend_from_slice(&available[..take.min(room)]);
        reader.consume(take);
        total = total.saturating_add(take);
        if ends {
            ended = true;
            break;
        }
    }
    if total == 0 {
        return Ok(None);
    }
    Ok(Some(total - usize::from(ended) > max))
}

/// Replays records into what is still pending, and the next free sequence number.
pub(super) fn replay(records: Vec<JournalRecord>) -> (BTreeMap<u64, PendingDelivery>, u64) {
    let mut pending: BTreeMap<u64, PendingDelivery> = BTreeMap::new();
    let mut next_seq = 0u64;
    for record in records {
        match record {
            JournalRecord::Accept {
                seq,
                accepted_at,
                targets,
                notification,
            } => {
                next_seq = next_seq.max(seq.saturating_add(1));
                if targets.is_empty() {
                    continue;
                }
                // A repeated seq (a damaged journal) keeps the first acceptance.
                pending.entry(seq).or_insert_with(|| PendingDelivery {
                    seq,
                    accepted_at,
                    targets: targets.into_iter().collect(),
                    notification: Arc::new(*notification),
                });
            }
            JournalRecord::Done { seq, target, .. } => {
                if let Some(entry) = pending.get_mut(&seq) {
                    entry.targets.remove(&target);
                    if entry.targets.is_empty() {
                        pending.remove(&seq);
                    }
                }
            }
        }
    }
    (pending, next_seq)
}

/// Encodes the pending deliveries as a compacted journal (accept records only).
pub(super) fn encode_pending(
    pending: &BTreeMap<u64, PendingDelivery>,
) -> Result<Vec<u8>, DeliveryError> {
    let mut buffer = Vec::new();
    for delivery in pending.values() {
        let record = JournalRecord::Accept {
            seq: delivery.seq,
            accepted_at: delivery.accepted_at,
            targets: delivery.targets.iter().cloned().collect(),
            notification: Box::new((*delivery.notification).clone()),
        };
        serde_json::to_writer(&mut buffer, &record).map_err(DeliveryError::Encode)?;
        buffer.push(b'\n');
    }
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_alert::fixtures::notification;
    use vigie_domain::alert::NotificationKind;
    use vigie_domain::alert::TermEvidence;

    fn accept(seq: u64) -> Vec<u8> {
        let record = JournalRecord::Accept {
            seq,
            accepted_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            targets: vec!["hook".into()],
            notification: Box::new(Notification {
                // Non-ASCII, so a torn line can be cut inside a character.
                group_key: "récit-été".into(),
                ..notification(seq % 1000 + 1, NotificationKind::Firing)
            }),
        };
        let mut line = serde_json::to_vec(&record).unwrap();
        line.push(b'\n');
        line
    }

    #[test]
    fn keeps_every_good_record_around_any_kind_of_damage() {
        let mut bytes = accept(0);
        bytes.extend_from_slice(b"\xff\xfe garbage \x00\x01\n");
        bytes.extend_from_slice(&accept(1));
        bytes.extend_from_slice(b"{\"op\":\"accept\",\"seq\":7,\"accep\n"); // half-written
        bytes.extend_from_slice(b"{\"op\":\"launch\",\"seq\":3}\n"); // valid JSON, wrong shape
        bytes.extend_from_slice(b"[1,2,3]\n\n   \n");
        bytes.extend_from_slice(&accept(2));
        // A torn tail cut inside "é" (0xC3 0xA9): the last byte is missing.
        let mut torn = accept(3);
        let cut = torn.iter().rposition(|&b| b == 0xC3).unwrap();
        torn.truncate(cut + 1);
        assert!(std::str::from_utf8(&torn).is_err());
        bytes.extend_from_slice(&torn);

        let parsed = parse_journal(&bytes);
        let seqs: Vec<u64> = parsed
            .records
            .iter()
            .map(|r| match r {
                JournalRecord::Accept { seq, .. } | JournalRecord::Done { seq, .. } => *seq,
            })
            .collect();
        assert_eq!(seqs, vec![0, 1, 2]);
        assert_eq!(parsed.corrupt_lines, vec![2, 4, 5, 6, 10]);
    }

    #[test]
    fn an_overlong_line_is_skipped_without_losing_its_neighbours() {
        let mut bytes = accept(0);
        bytes.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES + 10));
        bytes.push(b'\n');
        bytes.extend_from_slice(&accept(1));
        let parsed = parse_journal(&bytes);
        assert_eq!(parsed.records.len(), 2);
        assert_eq!(parsed.corrupt_lines, vec![2]);
        // Exactly at the bound (plus its newline) is still read as a line.
        let mut line = vec![b' '; MAX_RECORD_BYTES];
        line.push(b'\n');
        let parsed = parse_journal(&line);
        assert!(parsed.corrupt_lines.is_empty() && parsed.records.is_empty());
    }

    #[test]
    fn replay_survives_hostile_sequence_numbers() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&accept(u64::MAX));
        bytes.extend_from_slice(&accept(u64::MAX));
        let (pending, next) = replay(parse_journal(&bytes).records);
        assert_eq!(pending.len(), 1);
        assert_eq!(next, u64::MAX);
    }

    #[test]
    fn a_record_read_back_is_bit_identical_to_the_one_written() {
        // A re-sent notification must carry the body first sent (receivers dedupe on the
        // webhook id): serde_json's default float parser may miss the nearest f64 by one
        // ulp, which changed a term's z in the 17th digit after a crash.
        let mut record = JournalRecord::Accept {
            seq: 1,
            accepted_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            targets: vec!["hook".into()],
            notification: Box::new(notification(1, NotificationKind::Firing)),
        };
        let JournalRecord::Accept { notification, .. } = &mut record else {
            unreachable!()
        };
        let tricky = [0x3FD7_1823_4000_0000_u64, 0x3FD7_1823_4000_0001];
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let terms = &mut notification.alert.reasons.terms;
        let template = terms[0].clone();
        terms.clear();
        for i in 0..400 {
            // Fixed cases, then pseudo-random doubles in [0, 64).
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let z = match tricky.get(i) {
                Some(bits) => f64::from_bits(*bits),
                None => (seed >> 11) as f64 / (1u64 << 53) as f64 * 64.0,
            };
            terms.push(TermEvidence {
                z,
                ..template.clone()
            });
        }
        let mut line = serde_json::to_vec(&record).unwrap();
        line.push(b'\n');
        let parsed = parse_journal(&line);
        assert_eq!(parsed.corrupt_lines, Vec::<u64>::new());
        let JournalRecord::Accept {
            notification: back, ..
        } = &parsed.records[0]
        else {
            panic!("{:?}", parsed.records);
        };
        let JournalRecord::Accept { notification, .. } = &record else {
            unreachable!()
        };
        for (written, read) in notification
            .alert
            .reasons
            .terms
            .iter()
            .zip(&back.alert.reasons.terms)
        {
            assert_eq!(
                written.z.to_bits(),
                read.z.to_bits(),
                "{} read back as {}",
                written.z,
                read.z
            );
        }
        assert_eq!(parsed.records[0], record);
    }
}
