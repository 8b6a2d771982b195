//! Tests of the event-time orderer, and of the detector's late posts behind it.
use super::*;

const HOUR: i64 = 3600;

fn config() -> EventTimeConfig {
    EventTimeConfig {
        out_of_order_secs: 60,
        max_ahead_secs: 6 * 3600,
        corroborating_posts: 3,
        max_buffered_posts: 1000,
    }
}

fn orderer() -> EventTimeOrderer<u32> {
    EventTimeOrderer::new(&config()).unwrap()
}

fn drain(orderer: &mut EventTimeOrderer<u32>) -> Vec<u32> {
    std::iter::from_fn(|| orderer.pop_ready())
        .map(|r| r.item)
        .collect()
}

/// Issue 8 item 5: one post dated three weeks ahead does not become "now".
#[test]
fn issue_8_an_outlier_does_not_move_the_watermark() {
    let file = PartitionKey::file();
    let mut orderer = orderer();
    let start = 1_448_539_200; // 2015-11-26T12:00:00Z
    for i in 0..100 {
        orderer.push(&file, start + i * 10, 0, i as u32);
    }
    let before = orderer.watermark();
    orderer.push(&file, start + 21 * 24 * HOUR, 0, 100);
    assert_eq!(orderer.watermark(), before);
    assert_eq!(orderer.counters().posts_held_ahead, 1);
    for i in 101..200 {
        orderer.push(&file, start + i * 10, 0, i as u32);
    }
    assert_eq!(orderer.watermark(), Some(start + 199 * 10));
    let released = drain(&mut orderer);
    assert!(!released.contains(&100), "the outlier waits in the buffer");
    assert_eq!(
        released,
        (0..200)
            .filter(|&i| i != 100)
            .take(released.len())
            .collect::<Vec<_>>()
    );
    // At the end it is released last, counted at the latest time, not its own.
    let rest = orderer.flush();
    let last = rest.last().unwrap();
    assert_eq!(last.item, 100);
    assert_eq!(last.event_time, start + 21 * 24 * HOUR);
    assert_eq!(last.count_at, start + 199 * 10);
}

/// Issue 8 item 5: a real gap in the stream (several posts far ahead, close together)
/// lets the watermark jump.
#[test]
fn issue_8_a_corroborated_gap_moves_the_watermark() {
    let file = PartitionKey::file();
    let mut orderer = orderer();
    orderer.push(&file, 0, 0, 0);
    let later = 10 * 24 * HOUR;
    orderer.push(&file, later, 0, 1);
    orderer.push(&file, later + 5, 0, 2);
    assert_eq!(orderer.watermark(), Some(0), "two posts do not corroborate");
    orderer.push(&file, later + 7, 0, 3);
    assert_eq!(orderer.watermark(), Some(later + 7));
    assert_eq!(orderer.counters().corroborated_jumps, 1);
    orderer.push(&file, later + 200, 0, 4);
    assert_eq!(drain(&mut orderer), vec![0, 1, 2, 3]);
    // Corroborated posts are counted at their own time.
    let rest = orderer.flush();
    assert_eq!(rest[0].count_at, later + 200);
    // Posts far ahead but hours apart do not corroborate each other.
    let mut orderer = self::orderer();
    orderer.push(&file, 0, 0, 0);
    for i in 1..5 {
        orderer.push(&file, 30 * 24 * HOUR + i * 7 * HOUR, 0, i as u32);
    }
    assert_eq!(orderer.watermark(), Some(0));
    assert_eq!(orderer.counters().posts_held_ahead, 4);
}

/// Issue 8 item 5: with several partitions the watermark is the minimum of theirs; a
/// partition assigned but silent holds it, one at its end or revoked does not.
#[test]
fn issue_8_the_watermark_is_the_minimum_over_active_partitions() {
    let (a, b, c) = (
        PartitionKey::new("posts", 0),
        PartitionKey::new("posts", 1),
        PartitionKey::new("posts", 2),
    );
    let mut orderer = orderer();
    orderer.assigned(&a);
    orderer.assigned(&b);
    orderer.assigned(&c);
    orderer.push(&a, 1000, 0, 0);
    orderer.push(&a, 5000, 0, 1);
    assert_eq!(orderer.watermark(), None, "b and c have delivered nothing");
    orderer.push(&b, 2000, 0, 2);
    orderer.at_end(&c);
    assert_eq!(orderer.watermark(), Some(2000));
    assert_eq!(drain(&mut orderer), vec![0]);
    orderer.push(&c, 1500, 0, 3);
    assert_eq!(orderer.watermark(), Some(2000), "never goes back");
    assert_eq!(
        drain(&mut orderer),
        vec![3],
        "behind the watermark: released"
    );
    orderer.revoked(&b);
    assert_eq!(orderer.watermark(), Some(2000), "c holds it at 1500");
    orderer.at_end(&c);
    assert_eq!(orderer.watermark(), Some(5000));
    // Every assigned partition at its end: all released, the last minute included.
    orderer.at_end(&a);
    assert_eq!(drain(&mut orderer), vec![2, 1]);
}

/// Issue 8 item 5: the same posts give the same release order whatever the
/// interleaving of partitions and the batching (shuffled with fixed seeds).
#[test]
fn issue_8_interleavings_of_the_same_posts_give_the_same_order() {
    // Four partitions, each in order within 30 s, with ties across partitions.
    let mut partitions: Vec<Vec<(i64, i64, u32)>> = vec![Vec::new(); 4];
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for id in 0..2000u32 {
        let p = (next() % 4) as usize;
        let base = i64::from(id) * 3;
        let at = base - (next() % 30) as i64;
        let offset = partitions[p].len() as i64;
        partitions[p].push((offset, at, id));
    }
    let keys: Vec<PartitionKey> = (0..4).map(|p| PartitionKey::new("posts", p)).collect();
    let run = |seed: u64| -> Vec<u32> {
        let mut rng = seed;
        // Room for every post: a forced release depends on the interleaving.
        let mut orderer = EventTimeOrderer::new(&EventTimeConfig {
            max_buffered_posts: 2000,
            ..config()
        })
        .unwrap();
        for key in &keys {
            orderer.assigned(key);
        }
        let mut cursors = [0usize; 4];
        let mut out = Vec::new();
        loop {
            let open: Vec<usize> = (0..4)
                .filter(|&p| cursors[p] < partitions[p].len())
                .collect();
            if open.is_empty() {
                break;
            }
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let p = open[(rng >> 33) as usize % open.len()];
            // A batch of 1 to 300 posts from one partition.
            let batch = 1 + (rng >> 40) as usize % 300;
            for _ in 0..batch {
                let Some(&(_, at, id)) = partitions[p].get(cursors[p]) else {
                    orderer.at_end(&keys[p]);
                    break;
                };
                cursors[p] += 1;
                orderer.push(&keys[p], at, 0, id);
            }
            if cursors[p] == partitions[p].len() {
                orderer.at_end(&keys[p]);
            }
            out.extend(drain(&mut orderer));
        }
        assert_eq!(orderer.counters().posts_forced, 0);
        assert_eq!(
            orderer.buffered(),
            0,
            "all at their end: nothing left to flush"
        );
        out
    };
    let reference = run(1);
    assert_eq!(reference.len(), 2000);
    let times: BTreeMap<u32, i64> = partitions
        .iter()
        .flatten()
        .map(|&(_, at, id)| (id, at))
        .collect();
    assert!(
        reference.windows(2).all(|w| times[&w[0]] <= times[&w[1]]),
        "released in event-time order"
    );
    for seed in 2..12 {
        assert_eq!(run(seed), reference, "seed {seed}");
    }
}

/// The buffer is bounded: beyond `max_buffered_posts` the oldest goes early, counted.
#[test]
fn the_buffer_is_bounded_and_overflow_is_counted() {
    let (a, b) = (PartitionKey::new("t", 0), PartitionKey::new("t", 1));
    let mut orderer = EventTimeOrderer::new(&EventTimeConfig {
        max_buffered_posts: 10,
        ..config()
    })
    .unwrap();
    orderer.assigned(&a);
    orderer.assigned(&b);
    let mut released = Vec::new();
    for i in 0..50u32 {
        orderer.push(&a, i64::from(i), 0, i);
        released.extend(drain(&mut orderer));
        assert!(orderer.buffered() <= 10);
    }
    assert_eq!(released, (0..40).collect::<Vec<_>>(), "oldest first");
    assert_eq!(orderer.counters().posts_forced, 40);
    assert_eq!(orderer.watermark(), None, "b still holds the watermark");
}

/// Out-of-range settings are refused by name, by the orderer and by the detector's
/// configuration check.
#[test]
fn bad_settings_are_refused_by_name() {
    for (field, config) in [
        (
            "event_time.out_of_order_secs",
            EventTimeConfig {
                out_of_order_secs: u32::MAX,
                ..config()
            },
        ),
        (
            "event_time.max_ahead_secs",
            EventTimeConfig {
                max_ahead_secs: 0,
                ..config()
            },
        ),
        (
            "event_time.corroborating_posts",
            EventTimeConfig {
                corroborating_posts: 0,
                ..config()
            },
        ),
        (
            "event_time.max_buffered_posts",
            EventTimeConfig {
                max_buffered_posts: usize::MAX,
                ..config()
            },
        ),
    ] {
        match EventTimeOrderer::<u32>::new(&config) {
            Err(DetectError::InvalidConfig { field: named, .. }) => assert_eq!(named, field),
            other => panic!("{field}: {:?}", other.map(|_| ())),
        }
        let detector = crate::DetectorConfig {
            event_time: config,
            ..crate::DetectorConfig::default()
        };
        assert!(detector.check().is_err(), "{field}");
    }
}

/// At the end of a finite input everything left is released in order.
#[test]
fn flush_releases_everything_in_order() {
    let file = PartitionKey::file();
    let mut orderer = orderer();
    for at in [50, 10, 30, 20, 40] {
        orderer.push(&file, at, 0, at as u32);
    }
    assert!(drain(&mut orderer).is_empty(), "all within a minute");
    let rest: Vec<u32> = orderer.flush().into_iter().map(|r| r.item).collect();
    assert_eq!(rest, vec![10, 20, 30, 40, 50]);
    assert_eq!(orderer.buffered(), 0);
    assert_eq!(orderer.counters().posts_released, 5);
}

/// Issue 8 item 5: a post released behind the detector's time is counted at its own
/// time while its window is still the current one, and at the current time, as late,
/// once its window has closed.
#[test]
fn issue_8_late_posts_count_in_their_window_while_it_is_open() {
    use chrono::{Duration, TimeZone, Utc};
    use std::sync::Arc;
    use vigie_domain::{AnalyzedPost, Post};
    use vigie_tokenize::{Analyzer, AnalyzerConfig};

    let analyzer = Arc::new(Analyzer::new(AnalyzerConfig::default()));
    let config = crate::DetectorConfig {
        term_sketch_cells: 4096,
        pair_sketch_cells: 16_384,
        ..crate::DetectorConfig::default()
    };
    let mut detector = crate::Detector::new(config, analyzer.clone()).unwrap();
    let start = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
    let mut observe = |id: &str, minutes: i64| {
        let post = Post::for_test(
            id,
            "harbour fire tonight",
            start + Duration::minutes(minutes),
        );
        let analysis = analyzer.analyze_post(&post);
        detector.observe(&AnalyzedPost { post, analysis });
        (detector.counters().late_posts, detector.now().unwrap())
    };
    assert_eq!(observe("a", 30), (0, start + Duration::minutes(30)));
    assert_eq!(
        observe("b", 10),
        (0, start + Duration::minutes(30)),
        "same window: not late, and time does not go back"
    );
    assert_eq!(observe("c", 125), (0, start + Duration::minutes(125)));
    assert_eq!(
        observe("d", 50),
        (1, start + Duration::minutes(125)),
        "its window has closed: late"
    );
}

/// A snapshot keeps watermarks and buffered posts; restored partitions wait for the
/// source to assign them again.
#[test]
fn a_snapshot_round_trips_watermarks_and_buffered_posts() {
    let (a, b) = (PartitionKey::new("t", 0), PartitionKey::new("t", 1));
    let mut orderer = orderer();
    orderer.push(&a, 100, 0, 0);
    orderer.push(&b, 90, 0, 1);
    orderer.push(&a, 200, 0, 2);
    let snapshot = orderer.snapshot();
    let json = serde_json::to_string(&snapshot).unwrap();
    let back: OrdererSnapshot<u32> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snapshot);
    let mut restored = EventTimeOrderer::restore(&config(), back).unwrap();
    assert_eq!(restored.watermark(), Some(100), "never goes back");
    assert_eq!(restored.partition_watermark(&a), Some(200));
    assert_eq!(restored.buffered(), 3);
    restored.assigned(&a);
    restored.at_end(&a);
    // b is no longer assigned here: a alone decides.
    assert_eq!(drain(&mut restored), vec![1, 0, 2]);
}

/// Issue 8: a rebalance that assigns several partitions is one change. Applied one by one,
/// the first partition assigned (here one read far ahead) set the watermark alone, and the
/// watermark never goes back: the other partitions' posts would come late.
#[test]
fn issue_8_an_assignment_is_applied_at_once() {
    use vigie_domain::PartitionEventKind;
    let (a, b) = (PartitionKey::new("t", 0), PartitionKey::new("t", 1));
    let mut orderer = orderer();
    orderer.apply([
        (a.clone(), PartitionEventKind::Assigned),
        (b.clone(), PartitionEventKind::Assigned),
    ]);
    orderer.push(&a, 100, 0, 0);
    orderer.push(&a, 5 * HOUR, 0, 1);
    // Within `max_ahead_secs`: a's own watermark really is five hours ahead.
    assert_eq!(orderer.partition_watermark(&a), Some(5 * HOUR));
    orderer.push(&b, 100, 0, 2);
    assert_eq!(orderer.watermark(), Some(100));
    orderer.apply([
        (a.clone(), PartitionEventKind::Revoked),
        (b.clone(), PartitionEventKind::Revoked),
    ]);
    orderer.apply([
        (a.clone(), PartitionEventKind::Assigned),
        (b.clone(), PartitionEventKind::Assigned),
    ]);
    assert_eq!(orderer.watermark(), Some(100), "b still holds it");
    assert!(drain(&mut orderer).is_empty());
    orderer.push(&b, HOUR, 0, 3);
    assert_eq!(orderer.watermark(), Some(HOUR));
    assert_eq!(drain(&mut orderer), vec![0, 2]);
}

/// A partition read far ahead of the others is paused once the buffer is a quarter full,
/// and resumed once the others caught up and the buffer is back under an eighth; nothing
/// is forced out of order meanwhile.
#[test]
fn partitions_far_ahead_are_paused_while_the_buffer_fills() {
    let mut orderer = orderer(); // max_buffered_posts 1000
    let start = 1_448_539_200;
    let keys: Vec<PartitionKey> = (0..4).map(|p| PartitionKey::new("posts", p)).collect();
    for key in &keys {
        orderer.push(key, start, 0, 0);
    }
    assert!(orderer.partitions_to_pause().is_empty());
    // Partition 0 delivers a long run (one post per 10 s) while the others are silent.
    let mut released = Vec::new();
    for i in 1..=300 {
        orderer.push(&keys[0], start + i * 10, 0, i as u32);
        released.extend(drain(&mut orderer));
    }
    assert_eq!(orderer.partitions_to_pause(), vec![keys[0].clone()]);
    // The others catch up; still paused until the buffer is under an eighth.
    for i in 1..=300 {
        for key in &keys[1..] {
            orderer.push(key, start + i * 10, 0, 10_000 + i as u32);
        }
        released.extend(drain(&mut orderer));
        if orderer.buffered() >= 125 {
            assert!(!orderer.partitions_to_pause().is_empty());
        }
    }
    assert!(orderer.partitions_to_pause().is_empty());
    assert_eq!(orderer.counters().posts_forced, 0);
    assert!(released.len() > 1000);
}

/// Before every partition delivered there is no watermark; once the buffer fills, the
/// partitions that delivered are paused until the silent one delivers or reaches its end.
#[test]
fn partitions_that_delivered_are_paused_while_another_has_not() {
    let mut orderer = orderer(); // max_buffered_posts 1000
    let start = 1_448_539_200;
    let (early, silent) = (PartitionKey::new("posts", 0), PartitionKey::new("posts", 1));
    orderer.assigned(&silent);
    for i in 0..300 {
        orderer.push(&early, start + i * 10, 0, i as u32);
        assert!(drain(&mut orderer).is_empty());
    }
    assert_eq!(orderer.watermark(), None);
    assert_eq!(orderer.partitions_to_pause(), vec![early.clone()]);
    orderer.at_end(&silent);
    let released = drain(&mut orderer);
    assert!(!released.is_empty());
    assert!(orderer.partitions_to_pause().is_empty());
    assert_eq!(orderer.counters().posts_forced, 0);
}
