//! How far each source partition has been read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The next offset to read, per topic and partition.
///
/// A checkpoint travels with each batch of posts. Once the index has made those posts
/// durable, the merged checkpoint is stored in the index commit and handed back to the
/// source, which commits it to Kafka. Offsets only move forward: [`Checkpoint::merge`]
/// keeps the larger of two offsets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Checkpoint {
    next_offsets: BTreeMap<String, BTreeMap<i32, i64>>,
}

impl Checkpoint {
    /// Returns an empty checkpoint.
    pub fn new() -> Checkpoint {
        Checkpoint::default()
    }

    /// Records that everything before `next_offset` in this partition has been read.
    pub fn advance(&mut self, topic: &str, partition: i32, next_offset: i64) {
        let slot = self
            .next_offsets
            .entry(topic.to_owned())
            .or_default()
            .entry(partition)
            .or_insert(next_offset);
        *slot = (*slot).max(next_offset);
    }

    /// Merges `other` into `self`, keeping the larger offset of each partition.
    pub fn merge(&mut self, other: &Checkpoint) {
        for (topic, partitions) in &other.next_offsets {
            for (&partition, &offset) in partitions {
                self.advance(topic, partition, offset);
            }
        }
    }

    /// Returns the next offset to read for a partition, if any was recorded.
    pub fn next_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.next_offsets.get(topic)?.get(&partition).copied()
    }

    /// Iterates over `(topic, partition, next_offset)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i32, i64)> + '_ {
        self.next_offsets
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |(&p, &o)| (t.as_str(), p, o)))
    }

    /// Returns true when no partition is recorded.
    pub fn is_empty(&self) -> bool {
        self.next_offsets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_the_larger_offset_and_round_trips_as_json() {
        let mut a = Checkpoint::new();
        a.advance("posts", 0, 10);
        a.advance("posts", 1, 5);
        let mut b = Checkpoint::new();
        b.advance("posts", 0, 7);
        b.advance("posts", 1, 9);
        b.advance("other", 2, 1);
        a.merge(&b);
        assert_eq!(a.next_offset("posts", 0), Some(10));
        assert_eq!(a.next_offset("posts", 1), Some(9));
        assert_eq!(a.next_offset("other", 2), Some(1));
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, r#"{"other":{"2":1},"posts":{"0":10,"1":9}}"#);
        assert_eq!(serde_json::from_str::<Checkpoint>(&json).unwrap(), a);
    }
}

/// What happened to a partition a source reads: the source reports it, the event-time
/// orderer acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionEventKind {
    /// It was assigned to this reader.
    Assigned,
    /// It was taken away (a rebalance); another reader may own it now.
    Revoked,
    /// Everything in it so far has been read (Kafka's partition EOF).
    AtEnd,
}
