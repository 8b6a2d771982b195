//! `KafkaSource` against a real Kafka-protocol broker (Tansu, started per test by
//! [`TestBroker`]): exactly-once reading within a run, offsets honoured across runs,
//! re-delivery of uncommitted work, rejects kept on the dead-letter topic, and start-up
//! errors that say what is wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use vigie_domain::{Checkpoint, DecodeLimits, Origin, Post, RejectReason};
use vigie_pipeline::{InputLimits, RejectedInput, Source, SourceBatch};
use vigie_source_kafka::{KafkaConfig, KafkaSource, KafkaSourceError};
use vigie_tests::{free_port, Record, TestBroker};

/// Upper bound for anything that involves a consumer-group join (~3 s on Tansu).
const JOIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Everything read from a source, merged over batches.
#[derive(Debug, Default)]
struct Collected {
    posts: Vec<Post>,
    rejections: Vec<RejectedInput>,
    checkpoint: Checkpoint,
    consumed: BTreeMap<String, u64>,
}

impl Collected {
    fn add(&mut self, batch: SourceBatch) {
        self.posts.extend(batch.posts);
        self.rejections.extend(batch.rejections);
        self.checkpoint.merge(&batch.checkpoint);
        for (topic, count) in batch.consumed {
            *self.consumed.entry(topic).or_default() += count;
        }
    }

    fn len(&self) -> usize {
        self.posts.len() + self.rejections.len()
    }

    fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.posts.iter().map(|p| p.id.clone()).collect();
        ids.sort();
        ids
    }

    fn origins(&self) -> BTreeMap<String, Origin> {
        self.posts
            .iter()
            .map(|p| (p.id.clone(), p.origin.clone()))
            .collect()
    }
}

fn config(broker: &TestBroker, topic: &str, group_id: &str) -> KafkaConfig {
    let mut properties = TestBroker::consumer_properties();
    // Lag comes from librdkafka statistics; report them often enough for a test to wait on.
    properties.insert("statistics.interval.ms".into(), "500".into());
    KafkaConfig {
        brokers: broker.bootstrap.clone(),
        group_id: group_id.to_owned(),
        topics: vec![topic.to_owned()],
        dead_letter_topic: format!("{topic}-dead-letter"),
        create_topics: true,
        create_partitions: 3,
        batch_max_messages: 64,
        batch_max_wait_ms: 100,
        properties: properties.into(),
    }
}

async fn connect(config: KafkaConfig) -> KafkaSource {
    KafkaSource::connect(config, InputLimits::default())
        .await
        .expect("connect to the test broker")
}

fn post_json(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","text":"post {id} about the harbour fire","created_at":"2024-05-01T12:00:00Z"}}"#
    )
}

/// Reads until `expected` messages arrived, then a few more batches (each one waits
/// `batch_max_wait_ms`) so that a duplicate or stray message would be caught too.
async fn read_exactly(source: &mut KafkaSource, expected: usize) -> Collected {
    let started = Instant::now();
    let mut collected = Collected::default();
    while collected.len() < expected {
        assert!(
            started.elapsed() < JOIN_TIMEOUT,
            "read {} of {expected} messages within {JOIN_TIMEOUT:?}",
            collected.len()
        );
        collected.add(
            source
                .next_batch()
                .await
                .expect("next_batch")
                .expect("kafka never ends"),
        );
    }
    for _ in 0..3 {
        collected.add(
            source
                .next_batch()
                .await
                .expect("next_batch")
                .expect("kafka never ends"),
        );
    }
    assert_eq!(
        collected.len(),
        expected,
        "more messages than expected: {:?}",
        collected.ids()
    );
    collected
}

/// Reads batches until the source reports lag for `partitions` partitions, which happens
/// once it is assigned them and knows their committed offsets; returns what it read.
async fn read_until_lag_known(
    source: &mut KafkaSource,
    partitions: usize,
) -> (Collected, Vec<(String, i32, i64)>) {
    let started = Instant::now();
    let mut collected = Collected::default();
    loop {
        let status = source.status();
        if status.lag.len() == partitions {
            assert!(status.connected);
            return (collected, status.lag);
        }
        assert!(
            started.elapsed() < JOIN_TIMEOUT,
            "no lag for {partitions} partitions: {status:?}"
        );
        collected.add(
            source
                .next_batch()
                .await
                .expect("next_batch")
                .expect("kafka never ends"),
        );
    }
}

/// Produces `count` posts `p0…` round-robin over `partitions` partitions, the last one of
/// each partition on its own (see [`TestBroker::high_watermarks`]); returns id → origin.
async fn produce_posts(
    broker: &TestBroker,
    topic: &str,
    count: usize,
    partitions: i32,
) -> BTreeMap<String, Origin> {
    let records: Vec<Record> = (0..count)
        .map(|i| {
            Record::new(post_json(&format!("p{i}")))
                .to_partition(i as i32 % partitions)
                .with_key(format!("k{i}"))
        })
        .collect();
    let (batched, singles) = records.split_at(count - partitions as usize);
    let mut delivered = broker.produce_many(topic, batched).await.unwrap();
    for record in singles {
        delivered.extend(
            broker
                .produce_many(topic, std::slice::from_ref(record))
                .await
                .unwrap(),
        );
    }
    delivered
        .into_iter()
        .enumerate()
        .map(|(i, (partition, offset))| {
            (
                format!("p{i}"),
                Origin::Kafka {
                    topic: topic.to_owned(),
                    partition,
                    offset,
                },
            )
        })
        .collect()
}

/// Returns the next offset per partition implied by `origins`.
fn next_offsets(topic: &str, origins: &BTreeMap<String, Origin>) -> Checkpoint {
    let mut checkpoint = Checkpoint::new();
    for origin in origins.values() {
        let Origin::Kafka {
            partition, offset, ..
        } = origin
        else {
            unreachable!()
        };
        checkpoint.advance(topic, *partition, offset + 1);
    }
    checkpoint
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_every_post_once_and_honours_committed_offsets() {
    let broker = TestBroker::start().unwrap();
    broker.create_topic("posts", 3).await.unwrap();
    let produced = produce_posts(&broker, "posts", 500, 3).await;
    let expected_checkpoint = next_offsets("posts", &produced);
    let watermarks = broker.high_watermarks("posts").unwrap();
    for (partition, high) in &watermarks {
        assert_eq!(
            expected_checkpoint.next_offset("posts", *partition),
            Some(*high)
        );
    }

    // First run: every post exactly once, with its origin; the checkpoint is the watermarks.
    let mut first = connect(config(&broker, "posts", "vigie-a")).await;
    let read = read_exactly(&mut first, 500).await;
    assert_eq!(read.origins(), produced);
    assert!(read.rejections.is_empty(), "{:?}", read.rejections);
    assert_eq!(read.checkpoint, expected_checkpoint);
    assert_eq!(read.consumed, BTreeMap::from([("posts".to_owned(), 500)]));
    first.commit(&read.checkpoint).await.unwrap();
    let (extra, lag) = read_until_lag_known(&mut first, 3).await;
    assert_eq!(extra.len(), 0);
    assert_eq!(
        lag,
        vec![
            ("posts".into(), 0, 0),
            ("posts".into(), 1, 0),
            ("posts".into(), 2, 0)
        ]
    );
    drop(first);

    // Same group after the commit: starts at the committed offsets, so it reads only a
    // post produced after it joined.
    let mut second = connect(config(&broker, "posts", "vigie-a")).await;
    let (before, lag) = read_until_lag_known(&mut second, 3).await;
    assert_eq!(
        before.len(),
        0,
        "re-read committed posts: {:?}",
        before.ids()
    );
    assert!(lag.iter().all(|(_, _, lag)| *lag == 0), "{lag:?}");
    let (partition, offset) = broker
        .produce("posts", None, Some(post_json("p500").as_bytes()))
        .await
        .unwrap();
    let after = read_exactly(&mut second, 1).await;
    assert_eq!(
        after.origins(),
        BTreeMap::from([(
            "p500".to_owned(),
            Origin::Kafka {
                topic: "posts".into(),
                partition,
                offset
            }
        )])
    );
    drop(second);

    // A new group has no committed offsets and starts from the earliest.
    let mut third = connect(config(&broker, "posts", "vigie-b")).await;
    let all = read_exactly(&mut third, 501).await;
    let mut expected_ids: Vec<String> = (0..=500).map(|i| format!("p{i}")).collect();
    expected_ids.sort();
    assert_eq!(all.ids(), expected_ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_every_reject_on_the_dead_letter_topic() {
    let broker = TestBroker::start().unwrap();
    let mut config = config(&broker, "mixed", "vigie-rejects");
    config.create_partitions = 2;
    // The source creates both topics itself; only then is there something to produce to.
    let limits = InputLimits {
        decode: DecodeLimits {
            max_text_bytes: 64,
            ..DecodeLimits::default()
        },
        max_future: Some(std::time::Duration::from_secs(86_400)),
    };
    let mut source = KafkaSource::connect(config, limits).await.unwrap();
    assert_eq!(broker.partition_count("mixed").unwrap(), 2);
    assert_eq!(broker.partition_count("mixed-dead-letter").unwrap(), 2);

    let oversize = format!(
        r#"{{"id":"big","text":"{}","created_at":1714564800}}"#,
        "x".repeat(100)
    );
    // (record, expected reason or None for a good post, expected detail fragment)
    let cases: Vec<(Record, Option<RejectReason>, &str)> = vec![
        (Record::new(post_json("g1")), None, ""),
        (
            Record::new("not json")
                .with_key("bad-key")
                .with_header("trace-id", "t-1"),
            Some(RejectReason::NotJson),
            "expected",
        ),
        (
            Record::new(r#"{"id":"m1","text":"no time"}"#),
            Some(RejectReason::MissingField),
            "created_at",
        ),
        (
            Record::new(&b"\xff\xfe{\"id\":1}"[..]),
            Some(RejectReason::InvalidUtf8),
            "invalid UTF-8",
        ),
        (
            Record::new(""),
            Some(RejectReason::NotJson),
            "empty message",
        ),
        (
            Record::tombstone(),
            Some(RejectReason::NotJson),
            "empty message",
        ),
        (
            Record::new(oversize),
            Some(RejectReason::TooLarge),
            "limit is 64",
        ),
        (Record::new(post_json("g2")), None, ""),
        (Record::new(post_json("g3")), None, ""),
    ];
    let records: Vec<Record> = cases
        .iter()
        .enumerate()
        .map(|(i, (record, ..))| record.clone().to_partition(i as i32 % 2))
        .collect();
    let delivered = broker.produce_many("mixed", &records).await.unwrap();

    let read = read_exactly(&mut source, cases.len()).await;
    assert_eq!(read.ids(), ["g1", "g2", "g3"]);
    assert_eq!(
        read.consumed,
        BTreeMap::from([("mixed".to_owned(), cases.len() as u64)])
    );
    let mut expected_checkpoint = Checkpoint::new();
    for (partition, offset) in &delivered {
        expected_checkpoint.advance("mixed", *partition, offset + 1);
    }
    assert_eq!(
        read.checkpoint, expected_checkpoint,
        "rejects advance the checkpoint too"
    );

    // Each reject is reported with its reason and origin...
    let mut expected_rejects = BTreeMap::new();
    for ((record, reason, detail), (partition, offset)) in cases.iter().zip(&delivered) {
        if let Some(reason) = reason {
            expected_rejects.insert((*partition, *offset), (record, *reason, *detail));
        }
    }
    let reported: BTreeSet<(i32, i64, RejectReason)> = read
        .rejections
        .iter()
        .map(|r| match &r.origin {
            Origin::Kafka {
                topic,
                partition,
                offset,
            } => {
                assert_eq!(topic, "mixed");
                (*partition, *offset, r.rejection.reason)
            }
            other => panic!("unexpected origin {other:?}"),
        })
        .collect();
    let expected_reported: BTreeSet<(i32, i64, RejectReason)> = expected_rejects
        .iter()
        .map(|((p, o), (_, reason, _))| (*p, *o, *reason))
        .collect();
    assert_eq!(reported, expected_reported);

    // ...and kept on the dead-letter topic with its original bytes, key and headers.
    let dead = broker
        .consume_all(
            "mixed-dead-letter",
            expected_rejects.len(),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(dead.len(), expected_rejects.len(), "{dead:?}");
    let mut kept = BTreeSet::new();
    for message in &dead {
        let partition: i32 = message.headers["vigie.source.partition"].parse().unwrap();
        let offset: i64 = message.headers["vigie.source.offset"].parse().unwrap();
        let (record, reason, detail) = expected_rejects[&(partition, offset)];
        assert_eq!(message.headers["vigie.source.topic"], "mixed");
        assert_eq!(message.headers["vigie.reason"], reason.as_str());
        assert!(
            message.headers["vigie.detail"].contains(detail),
            "{:?}",
            message.headers
        );
        assert_eq!(message.payload, record.payload.clone().unwrap_or_default());
        assert_eq!(message.key, record.key);
        for (key, value) in &record.headers {
            assert_eq!(
                message.headers.get(key),
                Some(value),
                "original header {key} kept"
            );
        }
        kept.insert((partition, offset));
    }
    assert_eq!(kept.len(), expected_rejects.len(), "each reject kept once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivers_what_was_not_committed() {
    let broker = TestBroker::start().unwrap();
    broker.create_topic("replay", 2).await.unwrap();
    let produced = produce_posts(&broker, "replay", 20, 2).await;

    // Read everything, commit nothing: a crash before the index commit.
    let mut first = connect(config(&broker, "replay", "vigie-replay")).await;
    let read = read_exactly(&mut first, 20).await;
    assert_eq!(read.origins(), produced);
    drop(first);

    // The same group gets all of it again; this time only partition 0 is committed.
    let mut second = connect(config(&broker, "replay", "vigie-replay")).await;
    let again = read_exactly(&mut second, 20).await;
    assert_eq!(again.origins(), produced);
    let mut partial = Checkpoint::new();
    let partition_0 = again.checkpoint.next_offset("replay", 0).unwrap();
    partial.advance("replay", 0, partition_0);
    second.commit(&partial).await.unwrap();
    drop(second);

    // Partition 1's posts come back, partition 0's do not.
    let mut third = connect(config(&broker, "replay", "vigie-replay")).await;
    let rest = read_exactly(&mut third, 10).await;
    let expected: BTreeMap<String, Origin> = produced
        .into_iter()
        .filter(|(_, origin)| matches!(origin, Origin::Kafka { partition: 1, .. }))
        .collect();
    assert_eq!(rest.origins(), expected);
}

#[tokio::test]
async fn unreachable_broker_is_a_clear_error_within_bounded_time() {
    let port = free_port().unwrap();
    let mut config = KafkaConfig {
        brokers: format!("127.0.0.1:{port}"),
        ..KafkaConfig::default()
    };
    config.properties = TestBroker::consumer_properties().into();
    let started = Instant::now();
    let err = KafkaSource::connect(config, InputLimits::default())
        .await
        .err()
        .expect("no broker there");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, KafkaSourceError::Connect { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
}

#[tokio::test]
async fn empty_topic_list_is_refused_by_name() {
    let config = KafkaConfig {
        topics: Vec::new(),
        ..KafkaConfig::default()
    };
    let err = KafkaSource::connect(config, InputLimits::default())
        .await
        .err()
        .expect("invalid config");
    match &err {
        KafkaSourceError::Config { key, .. } => assert_eq!(key, "topics"),
        other => panic!("expected a config error, got {other:?}"),
    }
    assert!(err.to_string().contains("`topics`"), "{err}");
}
