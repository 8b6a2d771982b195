//! Which source offsets may be committed: those that every stateful stage has made
//! durable (the index by a commit, detection by a snapshot).
//!
//! Stateful stages run on their own threads at their own pace, so at any moment one may
//! be ahead of the other. A Kafka offset is committed only once it is behind *both*: a
//! crash then re-delivers posts (the index upserts them by id, detection skips those its
//! snapshot covers), and never loses one. After a restart the index's committed position
//! may be ahead of the restored detector's; the per-partition minimum takes care of that
//! too.

use tokio::sync::mpsc;
use vigie_domain::Checkpoint;

/// Identifies a stage registered with a [`CheckpointTracker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageId(usize);

/// A stage's end of the tracker: sends the checkpoints it has made durable.
#[derive(Debug, Clone)]
pub struct DurableReport {
    stage: StageId,
    reports: mpsc::UnboundedSender<(StageId, Checkpoint)>,
}

impl DurableReport {
    /// Reports `checkpoint` as durable (a closed tracker is ignored: the pipeline is
    /// stopping, and the durable state stands on its own).
    pub fn send(&self, checkpoint: &Checkpoint) {
        let _ = self.reports.send((self.stage, checkpoint.clone()));
    }
}

/// The durable positions of the stateful stages, and the one they share.
#[derive(Debug, Default)]
pub struct CheckpointTracker {
    stages: Vec<(&'static str, Checkpoint)>,
}

impl CheckpointTracker {
    /// Returns a tracker with no stage.
    pub fn new() -> CheckpointTracker {
        CheckpointTracker::default()
    }

    /// Registers a stateful stage; its reports arrive on `reports`, for [`Self::record`].
    pub fn register(
        &mut self,
        name: &'static str,
        reports: mpsc::UnboundedSender<(StageId, Checkpoint)>,
    ) -> DurableReport {
        let stage = StageId(self.stages.len());
        self.stages.push((name, Checkpoint::new()));
        DurableReport { stage, reports }
    }

    /// Records that `stage` made everything before `durable` durable.
    pub fn record(&mut self, stage: StageId, durable: &Checkpoint) {
        if let Some((_, position)) = self.stages.get_mut(stage.0) {
            position.merge(durable);
        }
    }

    /// Returns, per partition, the smallest durable offset over all stages; a partition
    /// some stage has not reported yet is left out. Empty when no stage is registered.
    pub fn committable(&self) -> Checkpoint {
        let mut committable = Checkpoint::new();
        let Some(((_, first), others)) = self.stages.split_first() else {
            return committable;
        };
        for (topic, partition, offset) in first.iter() {
            let lowest = others.iter().try_fold(offset, |lowest, (_, position)| {
                position
                    .next_offset(topic, partition)
                    .map(|other| lowest.min(other))
            });
            if let Some(lowest) = lowest {
                committable.advance(topic, partition, lowest);
            }
        }
        committable
    }

    /// Returns the partitions whose committable offset is beyond `committed` (what the
    /// source has already committed): only those are committed, so a partition revoked
    /// since its last commit is not written again with an old offset.
    pub fn advanced_beyond(&self, committed: &Checkpoint) -> Checkpoint {
        let mut advanced = Checkpoint::new();
        for (topic, partition, offset) in self.committable().iter() {
            if committed
                .next_offset(topic, partition)
                .is_none_or(|done| offset > done)
            {
                advanced.advance(topic, partition, offset);
            }
        }
        advanced
    }

    /// Returns each stage's name and durable position, for logs and tests.
    pub fn positions(&self) -> impl Iterator<Item = (&'static str, &Checkpoint)> {
        self.stages.iter().map(|(name, position)| (*name, position))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(entries: &[(&str, i32, i64)]) -> Checkpoint {
        let mut checkpoint = Checkpoint::new();
        for &(topic, partition, offset) in entries {
            checkpoint.advance(topic, partition, offset);
        }
        checkpoint
    }

    #[test]
    fn commits_only_what_every_stage_made_durable() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let mut tracker = CheckpointTracker::new();
        let index = tracker.register("index", tx.clone());
        let detect = tracker.register("detect", tx);
        assert!(tracker.committable().is_empty());

        tracker.record(index.stage, &at(&[("posts", 0, 100), ("posts", 1, 40)]));
        assert!(
            tracker.committable().is_empty(),
            "detection reported nothing"
        );

        tracker.record(detect.stage, &at(&[("posts", 0, 60)]));
        assert_eq!(tracker.committable(), at(&[("posts", 0, 60)]));

        tracker.record(detect.stage, &at(&[("posts", 0, 150), ("posts", 1, 10)]));
        assert_eq!(
            tracker.committable(),
            at(&[("posts", 0, 100), ("posts", 1, 10)])
        );
        // A stage's position never moves back.
        tracker.record(index.stage, &at(&[("posts", 0, 20)]));
        assert_eq!(
            tracker.committable().next_offset("posts", 0),
            Some(100),
            "an older report does not move the index back"
        );
    }

    #[test]
    fn only_partitions_that_advanced_are_committed_again() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let mut tracker = CheckpointTracker::new();
        let index = tracker.register("index", tx);
        tracker.record(index.stage, &at(&[("posts", 0, 100), ("posts", 1, 40)]));
        let committed = at(&[("posts", 0, 100), ("posts", 1, 30)]);
        assert_eq!(tracker.advanced_beyond(&committed), at(&[("posts", 1, 40)]));
        assert!(tracker
            .advanced_beyond(&at(&[("posts", 0, 100), ("posts", 1, 40)]))
            .is_empty());
    }

    /// Random reports from three stages: the committable offset of a partition is never
    /// beyond what any stage reported for it, and equals the smallest when all did.
    #[test]
    fn committable_is_the_minimum_over_stages_for_random_reports() {
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        for _ in 0..200 {
            let (tx, _rx) = mpsc::unbounded_channel();
            let mut tracker = CheckpointTracker::new();
            let ids: Vec<StageId> = ["a", "b", "c"]
                .iter()
                .map(|name| tracker.register(name, tx.clone()).stage)
                .collect();
            let mut highest = [[None::<i64>; 4]; 3];
            for _ in 0..next(20) {
                let stage = next(3) as usize;
                let partition = next(4) as i32;
                let offset = next(1000) as i64;
                tracker.record(ids[stage], &at(&[("posts", partition, offset)]));
                let slot = &mut highest[stage][partition as usize];
                *slot = Some(slot.map_or(offset, |h| h.max(offset)));
            }
            let committable = tracker.committable();
            for partition in 0..4usize {
                let expected = highest
                    .iter()
                    .map(|stage| stage[partition])
                    .collect::<Option<Vec<i64>>>()
                    .and_then(|offsets| offsets.into_iter().min());
                assert_eq!(committable.next_offset("posts", partition as i32), expected);
            }
        }
    }
}
