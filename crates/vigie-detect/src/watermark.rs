//! Event time before detection: per-partition watermarks that one outlier cannot drag, a
//! global watermark that is the minimum over the partitions still delivering, and a bounded
//! buffer that hands posts to the detector in event-time order.
//!
//! This is the watermark model of Flink and Kafka Streams. Each partition (a Kafka
//! `(topic, partition)`; a file replay is one partition) has its own watermark: the latest
//! event time it delivered. A post more than `max_ahead_secs` ahead of its partition's
//! watermark is buffered like any other but does not move the watermark: one post dated
//! weeks ahead would otherwise become "now" and make every later post late. Only
//! `corroborating_posts` such posts within `max_ahead_secs` of one another (a real gap in
//! the stream) let the watermark jump. The global watermark is the minimum over the active
//! partitions: a partition read ahead cannot drag event time past the others. A partition
//! that the source reports at its end (Kafka's partition EOF) or revoked is left out until
//! it delivers again; one assigned that has delivered nothing yet holds the watermark.
//! The source's changes of one moment (a rebalance assigns several partitions at once)
//! are applied together ([`EventTimeOrderer::apply`]): applied one by one, the first
//! partition assigned would decide the watermark alone for a moment, and the watermark
//! never goes back.
//! After a restart, every partition comes back unassigned until the source reports its
//! assignment: applied one by one there, the first partition assigned released the whole
//! restored buffer up to its own watermark and the others' posts came late (a SIGKILL and
//! restart on a 4-partition topic gave other narratives than the replay, under load).
//!
//! A buffered post is released once the global watermark is more than `out_of_order_secs`
//! past it, in (event time, post id hash, partition, arrival) order; so the same posts give the
//! same detector input whatever the interleaving of partitions or the batching. When every
//! assigned partition is at its end, everything up to their watermarks is released (the
//! source has nothing older to deliver). Beyond `max_buffered_posts` the oldest post is
//! released early, and at the end of a finite input [`EventTimeOrderer::flush`] releases
//! all. A post still held ahead when it is released that way is counted at the current
//! time, not its own: uncorroborated, it never moves event time.
//!
//! The bound is rarely reached because the orderer also tells the source what to stop
//! reading ([`EventTimeOrderer::partitions_to_pause`]): a broker hands a catching-up
//! consumer whole runs of one partition, so on a backlog the buffer filled with one
//! partition's posts and released them out of order (28,532 of 223,281 IRA posts on a
//! 4-partition topic); paused, the partitions ahead wait in Kafka instead.
//!
//! The orderer is pure and deterministic (no clock, no I/O); it knows nothing of posts
//! beyond their event time, and leaves late posts (released behind the detector's time)
//! to the detector. Its state is serializable so that a snapshot keeps the watermarks and
//! the buffered posts, which the source offsets committed with it cover.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vigie_domain::PartitionEventKind;

use crate::{DetectError, EventTimeConfig};

/// Where a post was read: one Kafka partition, or the single stream of a file replay.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PartitionKey {
    /// The topic (empty for a file replay).
    pub topic: String,
    /// The partition number (0 for a file replay).
    pub partition: i32,
}

impl PartitionKey {
    /// Returns the key of a Kafka partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> PartitionKey {
        PartitionKey {
            topic: topic.into(),
            partition,
        }
    }

    /// Returns the one key of a file replay: files are read one after the other, so they
    /// are one stream.
    pub fn file() -> PartitionKey {
        PartitionKey::new("", 0)
    }
}

/// Returns the tie-break of a post among posts of the same second: a hash of its id, so
/// that the order depends on the posts alone, not on how a source laid them out (a file
/// replay and a topic of any number of partitions give the same order).
pub fn tie_of(post_id: &str) -> u64 {
    crate::hashing::hash_bytes(0x7469_6521, post_id.as_bytes())
}

/// The release order of a buffered post: event time, then the caller's tie-break, then
/// partition and arrival (for equal ties, such as the same post delivered twice).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct BufferKey {
    at: i64,
    tie: u64,
    partition: PartitionKey,
    seq: u64,
}

/// What the orderer has done so far, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrdererCounters {
    /// Posts pushed.
    pub posts_pushed: u64,
    /// Posts more than `max_ahead_secs` ahead of their partition's watermark, which did
    /// not move it when they arrived.
    pub posts_held_ahead: u64,
    /// Jumps of a partition's watermark corroborated by `corroborating_posts` posts ahead.
    pub corroborated_jumps: u64,
    /// Posts released before the watermark reached them because the buffer was full.
    pub posts_forced: u64,
    /// Posts released.
    pub posts_released: u64,
}

/// One partition's clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PartitionClock {
    /// Latest event time delivered (outliers aside); `None` before the first post.
    watermark: Option<i64>,
    /// The source reports it assigned (or it delivered since it was revoked).
    assigned: bool,
    /// The source reports it at its end; cleared by its next post.
    at_end: bool,
    /// Buffered posts held ahead and not corroborated yet, in release order.
    ahead: Vec<BufferKey>,
}

impl PartitionClock {
    fn new() -> PartitionClock {
        PartitionClock {
            watermark: None,
            assigned: true,
            at_end: false,
            ahead: Vec::new(),
        }
    }
}

/// A buffered post, as a snapshot holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct BufferedPost<T> {
    key: BufferKey,
    held_ahead: bool,
    item: T,
}

/// The orderer's state, to store with the detector's and the source offsets they cover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrdererSnapshot<T> {
    partitions: Vec<(PartitionKey, PartitionClock)>,
    buffered: Vec<BufferedPost<T>>,
    watermark: Option<i64>,
    caught_up_through: Option<i64>,
    last_released: Option<i64>,
    next_seq: u64,
    counters: OrdererCounters,
}

/// A post released to detection.
#[derive(Debug, Clone, PartialEq)]
pub struct Released<T> {
    /// The post.
    pub item: T,
    /// Its event time, Unix seconds.
    pub event_time: i64,
    /// The event time to count it at: its own, except for a post still held ahead
    /// (uncorroborated) when released, which is counted at the latest time released.
    pub count_at: i64,
}

/// Orders posts by event time behind a watermark before detection; see the module docs.
#[derive(Debug, Clone)]
pub struct EventTimeOrderer<T> {
    out_of_order_secs: i64,
    max_ahead_secs: i64,
    corroborating_posts: usize,
    max_buffered_posts: usize,
    partitions: BTreeMap<PartitionKey, PartitionClock>,
    /// Buffered posts, with whether each is held ahead.
    buffer: BTreeMap<BufferKey, (bool, T)>,
    /// The global watermark, Unix seconds; never goes back.
    watermark: Option<i64>,
    /// Posts at or before this time are released: every assigned partition was at its
    /// end when its watermark was this far. Never goes back.
    caught_up_through: Option<i64>,
    /// Latest `count_at` released.
    last_released: Option<i64>,
    next_seq: u64,
    counters: OrdererCounters,
    /// Asking the source to pause the partitions ahead (see [`Self::partitions_to_pause`]);
    /// not saved: it follows the buffer.
    pausing: bool,
}

impl<T> EventTimeOrderer<T> {
    /// Builds an empty orderer; fails on an invalid configuration.
    pub fn new(config: &EventTimeConfig) -> Result<EventTimeOrderer<T>, DetectError> {
        config.check()?;
        Ok(EventTimeOrderer {
            out_of_order_secs: i64::from(config.out_of_order_secs),
            max_ahead_secs: i64::from(config.max_ahead_secs),
            corroborating_posts: config.corroborating_posts as usize,
            max_buffered_posts: config.max_buffered_posts,
            partitions: BTreeMap::new(),
            buffer: BTreeMap::new(),
            watermark: None,
            caught_up_through: None,
            last_released: None,
            next_seq: 0,
            counters: OrdererCounters::default(),
            pausing: false,
        })
    }

    /// Returns the partitions the source should stop reading for now: once the buffer is
    /// a quarter full (until it is back under an eighth), every partition read far enough
    /// ahead that none of its posts is waiting on it, i.e. whose own watermark is past the
    /// global one by more than the out-of-order bound. A broker hands a catching-up
    /// consumer whole runs of one partition at a time (tens of thousands of posts, seen
    /// with Tansu); read on, they only fill the buffer until posts are forced out in
    /// arrival order. Paused, they wait in Kafka while the partition holding the
    /// watermark catches up (Kafka Streams pauses a partition whose buffer is full the
    /// same way). A partition at its end or revoked does not hold the watermark, so a
    /// quiet partition never stalls the others.
    pub fn partitions_to_pause(&mut self) -> Vec<PartitionKey> {
        let buffered = self.buffer.len();
        // Early: what the pipeline has in flight (a few batches per stage) and what the
        // client fetched before the pause still arrive after it.
        if buffered > self.max_buffered_posts / 4 {
            self.pausing = true;
        } else if buffered < self.max_buffered_posts / 8 {
            self.pausing = false;
        }
        if !self.pausing {
            return Vec::new();
        }
        let active = || {
            self.partitions
                .iter()
                .filter(|(_, clock)| clock.assigned && !clock.at_end)
        };
        let ahead: Vec<PartitionKey> = match self.watermark {
            Some(watermark) => {
                let bound = watermark.saturating_add(self.out_of_order_secs);
                active()
                    .filter(|(_, clock)| clock.watermark.is_some_and(|w| w > bound))
                    .map(|(key, _)| key.clone())
                    .collect()
            }
            // No watermark yet: an assigned partition has not delivered (nor reached its
            // end), so every one that has is ahead of it.
            None if active().any(|(_, clock)| clock.watermark.is_none()) => active()
                .filter(|(_, clock)| clock.watermark.is_some())
                .map(|(key, _)| key.clone())
                .collect(),
            None => Vec::new(),
        };
        ahead
    }

    /// Rebuilds an orderer from a snapshot, under the current configuration. Partitions
    /// come back unassigned: the source reports its assignment again after a restart (all
    /// of it at once, see [`Self::apply`]), and a partition now owned by another instance
    /// must not hold the watermark.
    pub fn restore(
        config: &EventTimeConfig,
        snapshot: OrdererSnapshot<T>,
    ) -> Result<EventTimeOrderer<T>, DetectError> {
        let mut orderer = EventTimeOrderer::new(config)?;
        orderer.partitions = snapshot
            .partitions
            .into_iter()
            .map(|(key, mut clock)| {
                clock.assigned = false;
                clock.at_end = false;
                (key, clock)
            })
            .collect();
        orderer.buffer = snapshot
            .buffered
            .into_iter()
            .map(|post| (post.key, (post.held_ahead, post.item)))
            .collect();
        orderer.watermark = snapshot.watermark;
        orderer.caught_up_through = snapshot.caught_up_through;
        orderer.last_released = snapshot.last_released;
        orderer.next_seq = snapshot.next_seq;
        orderer.counters = snapshot.counters;
        Ok(orderer)
    }

    /// Captures the whole state, buffered posts included.
    pub fn snapshot(&self) -> OrdererSnapshot<T>
    where
        T: Clone,
    {
        OrdererSnapshot {
            partitions: self
                .partitions
                .iter()
                .map(|(key, clock)| (key.clone(), clock.clone()))
                .collect(),
            buffered: self
                .buffer
                .iter()
                .map(|(key, (held_ahead, item))| BufferedPost {
                    key: key.clone(),
                    held_ahead: *held_ahead,
                    item: item.clone(),
                })
                .collect(),
            watermark: self.watermark,
            caught_up_through: self.caught_up_through,
            last_released: self.last_released,
            next_seq: self.next_seq,
            counters: self.counters.clone(),
        }
    }

    /// Returns the global watermark, Unix seconds (`None` until every active partition
    /// has delivered).
    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    /// Returns the watermark of one partition.
    pub fn partition_watermark(&self, partition: &PartitionKey) -> Option<i64> {
        self.partitions.get(partition)?.watermark
    }

    /// Returns the number of posts buffered.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Returns the counters.
    pub fn counters(&self) -> &OrdererCounters {
        &self.counters
    }

    /// Buffers a post read from `partition`, dated `event_time` (Unix seconds); `tie`
    /// orders it among posts of the same second (see [`tie_of`]). Call
    /// [`Self::pop_ready`] after it.
    pub fn push(&mut self, partition: &PartitionKey, event_time: i64, tie: u64, item: T) {
        self.counters.posts_pushed += 1;
        let key = BufferKey {
            at: event_time,
            tie,
            partition: partition.clone(),
            seq: self.next_seq,
        };
        self.next_seq += 1;
        let clock = self
            .partitions
            .entry(partition.clone())
            .or_insert_with(PartitionClock::new);
        clock.assigned = true;
        clock.at_end = false;
        let held_ahead = match clock.watermark {
            None => {
                clock.watermark = Some(event_time);
                false
            }
            Some(watermark) if event_time > watermark.saturating_add(self.max_ahead_secs) => {
                let index = clock.ahead.partition_point(|k| *k < key);
                clock.ahead.insert(index, key.clone());
                self.counters.posts_held_ahead += 1;
                true
            }
            Some(watermark) => {
                clock.watermark = Some(watermark.max(event_time));
                false
            }
        };
        self.buffer.insert(key, (held_ahead, item));
        if held_ahead {
            self.corroborate(partition);
        } else {
            self.catch_up_ahead(partition);
        }
        self.advance();
    }

    /// Applies what the source reported at one point of its stream, all together, then
    /// moves the watermark once: a rebalance that assigns several partitions is one
    /// change, not a sequence in which the first assigned decides alone. An assigned
    /// partition holds the watermark until it delivers (unless it has a watermark from
    /// before); one revoked, or at its end until it delivers again, no longer holds it.
    pub fn apply(&mut self, changes: impl IntoIterator<Item = (PartitionKey, PartitionEventKind)>) {
        for (partition, change) in changes {
            match change {
                PartitionEventKind::Revoked => {
                    if let Some(clock) = self.partitions.get_mut(&partition) {
                        clock.assigned = false;
                        clock.at_end = false;
                    }
                }
                PartitionEventKind::Assigned | PartitionEventKind::AtEnd => {
                    let clock = self
                        .partitions
                        .entry(partition)
                        .or_insert_with(PartitionClock::new);
                    clock.assigned = true;
                    clock.at_end = change == PartitionEventKind::AtEnd;
                }
            }
        }
        self.advance();
    }

    /// [`Self::apply`] of one assignment.
    pub fn assigned(&mut self, partition: &PartitionKey) {
        self.apply([(partition.clone(), PartitionEventKind::Assigned)]);
    }

    /// [`Self::apply`] of one revocation.
    pub fn revoked(&mut self, partition: &PartitionKey) {
        self.apply([(partition.clone(), PartitionEventKind::Revoked)]);
    }

    /// [`Self::apply`] of one partition at its end.
    pub fn at_end(&mut self, partition: &PartitionKey) {
        self.apply([(partition.clone(), PartitionEventKind::AtEnd)]);
    }

    /// Returns the next post due for detection, if any: the oldest one when the buffer is
    /// over its bound, or the first in release order once the watermark is past it.
    pub fn pop_ready(&mut self) -> Option<Released<T>> {
        if self.buffer.len() > self.max_buffered_posts {
            self.counters.posts_forced += 1;
            return self.pop_first();
        }
        let first = self.buffer.keys().next()?;
        let behind_watermark = self
            .watermark
            .is_some_and(|w| first.at < w.saturating_sub(self.out_of_order_secs));
        let caught_up = self.caught_up_through.is_some_and(|c| first.at <= c);
        if behind_watermark || caught_up {
            self.pop_first()
        } else {
            None
        }
    }

    /// Releases every buffered post in order, at the end of a finite input.
    pub fn flush(&mut self) -> Vec<Released<T>> {
        let mut released = Vec::with_capacity(self.buffer.len());
        while let Some(post) = self.pop_first() {
            released.push(post);
        }
        released
    }

    fn pop_first(&mut self) -> Option<Released<T>> {
        let (key, (held_ahead, item)) = self.buffer.pop_first()?;
        let count_at = if held_ahead {
            if let Some(clock) = self.partitions.get_mut(&key.partition) {
                clock.ahead.retain(|k| *k != key);
            }
            self.last_released.or(self.watermark).unwrap_or(key.at)
        } else {
            key.at
        };
        self.last_released = Some(self.last_released.map_or(count_at, |t| t.max(count_at)));
        self.counters.posts_released += 1;
        Some(Released {
            item,
            event_time: key.at,
            count_at,
        })
    }

    /// Lets the partition's watermark jump when `corroborating_posts` of its posts held
    /// ahead lie within `max_ahead_secs` of one another.
    fn corroborate(&mut self, partition: &PartitionKey) {
        let needed = self.corroborating_posts.max(1);
        let Some(clock) = self.partitions.get_mut(partition) else {
            return;
        };
        if clock.ahead.len() < needed {
            return;
        }
        let jump_to = clock
            .ahead
            .windows(needed)
            .find(|group| group[needed - 1].at - group[0].at <= self.max_ahead_secs)
            .map(|group| group[needed - 1].at);
        if let Some(jump_to) = jump_to {
            clock.watermark = Some(clock.watermark.map_or(jump_to, |w| w.max(jump_to)));
            self.counters.corroborated_jumps += 1;
            self.catch_up_ahead(partition);
        }
    }

    /// Clears the held-ahead mark of the partition's posts its watermark has come within
    /// `max_ahead_secs` of: they are ordinary posts now.
    fn catch_up_ahead(&mut self, partition: &PartitionKey) {
        let Some(clock) = self.partitions.get_mut(partition) else {
            return;
        };
        let Some(watermark) = clock.watermark else {
            return;
        };
        let bound = watermark.saturating_add(self.max_ahead_secs);
        let caught = clock.ahead.partition_point(|k| k.at <= bound);
        for key in clock.ahead.drain(..caught) {
            if let Some((held_ahead, _)) = self.buffer.get_mut(&key) {
                *held_ahead = false;
            }
        }
    }

    /// Recomputes the global watermark: the minimum over the active partitions, held
    /// while one of them has delivered nothing; with every assigned partition at its end,
    /// everything up to their latest watermark may go.
    fn advance(&mut self) {
        let mut any_assigned = false;
        let mut waiting = false;
        let mut lowest: Option<i64> = None;
        let mut highest: Option<i64> = None;
        for clock in self.partitions.values().filter(|c| c.assigned) {
            any_assigned = true;
            highest = highest.max(clock.watermark);
            if clock.at_end {
                continue;
            }
            match clock.watermark {
                None => waiting = true,
                Some(w) => lowest = Some(lowest.map_or(w, |l: i64| l.min(w))),
            }
        }
        if waiting {
            return;
        }
        match lowest {
            Some(lowest) => self.watermark = self.watermark.max(Some(lowest)),
            None if any_assigned => {
                if let Some(highest) = highest {
                    self.watermark = self.watermark.max(Some(highest));
                    self.caught_up_through = self.caught_up_through.max(Some(highest));
                }
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests;
