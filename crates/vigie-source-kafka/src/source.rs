//! [`KafkaSource`]: the consumer loop behind [`vigie_pipeline::Source`].
//!
//! Batches are cut by size or time; every message advances the batch checkpoint, whether it
//! became a post or a reject, and rejects are acknowledged by the dead-letter topic before
//! the batch is handed on. Offsets go back to Kafka only through [`Source::commit`], which
//! the runner calls once the index has made the posts before them durable.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::FutureProducer;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;
use tracing::{debug, info, warn};
use vigie_domain::{decode_post, Checkpoint, DecodeLimits, Origin, RejectReason, Rejection};
use vigie_pipeline::InputLimits;
use vigie_pipeline::{
    PartitionEvent, PartitionEventKind, RejectedInput, Source, SourceBatch, SourceError,
    SourceStatus,
};

use crate::context::{ConsumerCallbacks, ConsumerState, LogContext, LogLimiter, LOG_INTERVAL};
use crate::dead_letter::DeadLetters;
use crate::{KafkaConfig, KafkaSourceError};

/// How long `connect` waits for broker metadata, and for topic creation.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

type GroupConsumer = StreamConsumer<ConsumerCallbacks>;

/// Reads posts from Kafka topics as a member of a consumer group; see the crate docs.
pub struct KafkaSource {
    consumer: Arc<GroupConsumer>,
    producer: FutureProducer<LogContext>,
    state: Arc<ConsumerState>,
    config: KafkaConfig,
    limits: InputLimits,
    pending: PendingBatch,
    reject_log: LogLimiter,
    /// Partitions assigned to this consumer, as the rebalances reported them: a partition
    /// EOF names only the partition number.
    assigned: BTreeSet<(String, i32)>,
    /// Partitions paused at event time's request, and the assignment they were paused
    /// under (a rebalance hands partitions out unpaused).
    paused: BTreeSet<(String, i32)>,
    paused_under: BTreeSet<(String, i32)>,
}

impl KafkaSource {
    /// Checks `config`, creates the consumer and the dead-letter producer, waits (at most
    /// 10 s) for broker metadata, creates missing topics when `create_topics` is set, and
    /// subscribes to the input topics.
    ///
    /// Fails with [`KafkaSourceError::Config`] naming the key for invalid settings, and
    /// with [`KafkaSourceError::Connect`] when no broker answers in time.
    pub async fn connect(
        config: KafkaConfig,
        limits: InputLimits,
    ) -> Result<KafkaSource, KafkaSourceError> {
        config.validate()?;
        let state = Arc::new(ConsumerState::default());
        let consumer: GroupConsumer = config
            .consumer_config()
            .create_with_context(ConsumerCallbacks::new(state.clone()))
            .map_err(|err| config.client_error(err))?;
        let consumer = Arc::new(consumer);
        let producer: FutureProducer<LogContext> = config
            .producer_config()
            .create_with_context(LogContext::new("dead_letter_producer"))
            .map_err(|err| config.client_error(err))?;

        let metadata_consumer = consumer.clone();
        let existing = run_blocking(move || existing_topics(&metadata_consumer))
            .await
            .map_err(|source| KafkaSourceError::Connect {
                brokers: config.brokers.clone(),
                timeout: METADATA_TIMEOUT,
                source,
            })?;
        state.connected.store(true, Ordering::Relaxed);

        let missing: Vec<&str> = config
            .all_topics()
            .filter(|topic| !existing.contains(*topic))
            .collect();
        if !missing.is_empty() {
            if config.create_topics {
                create_topics(&config, &missing).await?;
            } else {
                // Subscribing to a missing topic is legal: librdkafka picks it up once it
                // exists. A missing dead-letter topic fails the first reject instead.
                warn!(topics = ?missing, "kafka topics do not exist and create_topics is off");
            }
        }

        let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|source| KafkaSourceError::Subscribe {
                topics: config.topics.clone(),
                source,
            })?;
        info!(
            brokers = %config.brokers,
            group_id = %config.group_id,
            topics = ?config.topics,
            dead_letter_topic = %config.dead_letter_topic,
            "kafka source connected"
        );
        Ok(KafkaSource {
            consumer,
            producer,
            state,
            config,
            limits,
            pending: PendingBatch::default(),
            paused: BTreeSet::new(),
            paused_under: BTreeSet::new(),
            reject_log: LogLimiter::default(),
            assigned: BTreeSet::new(),
        })
    }
}

impl Source for KafkaSource {
    /// Returns up to `batch_max_messages` messages, or what arrived within
    /// `batch_max_wait_ms` (possibly nothing); never `Ok(None)`, Kafka has no end.
    ///
    /// Cancel-safe: messages already read stay in the pending batch and are returned by
    /// the next call. A dead-letter delivery failure is a [`SourceError::DeadLetter`];
    /// a fatal consumer error is a [`SourceError::Read`]. Transient broker errors are
    /// logged by the client context while librdkafka retries.
    async fn next_batch(&mut self) -> Result<Option<SourceBatch>, SourceError> {
        let max_wait = Duration::from_millis(self.config.batch_max_wait_ms);
        let deadline = *self
            .pending
            .deadline
            .get_or_insert_with(|| Instant::now() + max_wait);
        // Read the clock once per call, not per message; a call lasts at most
        // `batch_max_wait_ms`, far below any sensible `max_future`.
        let limits = self.limits.decode_limits_now();
        while self.pending.len() < self.config.batch_max_messages {
            let received = tokio::select! {
                received = self.consumer.recv() => received,
                () = tokio::time::sleep_until(deadline) => break,
            };
            // Rebalance callbacks run inside `recv`, before the messages they concern.
            note_rebalances(&self.state, &mut self.assigned, &mut self.pending);
            match received {
                // Decoding stays on the runtime: a message is at most `max_message_bytes`
                // and parsing a batch costs far less than the fetch that brought it.
                Ok(message) => self.pending.accept(&message, &limits, &mut self.reject_log),
                Err(KafkaError::MessageConsumptionFatal(code)) => {
                    return Err(SourceError::Read {
                        source_name: self.config.topics.join(","),
                        source: Box::new(KafkaError::MessageConsumptionFatal(code)),
                    });
                }
                Err(KafkaError::PartitionEOF(partition)) => {
                    note_end(&self.assigned, &mut self.pending, partition)
                }
                Err(err) => debug!(error = %err, "kafka consumer error, librdkafka retries"),
            }
        }
        note_rebalances(&self.state, &mut self.assigned, &mut self.pending);
        if !self.pending.batch.is_empty() {
            self.state.connected.store(true, Ordering::Relaxed);
        }
        self.pending
            .dead_letters
            .deliver(&self.producer, &self.config.dead_letter_topic)
            .await?;
        Ok(Some(self.pending.take()))
    }

    /// Commits `checkpoint` synchronously for the partitions this consumer still owns.
    ///
    /// A partition revoked since it was read may be owned by another instance now, which
    /// re-reads from the last committed offset; committing it here would move that
    /// owner's position, so it is skipped. A commit refused because a rebalance is under
    /// way is logged and skipped for the same reason (the next commit, or re-delivery to
    /// the new owner, covers it). Other failures are [`SourceError::CommitOffsets`].
    async fn commit(&mut self, checkpoint: &Checkpoint) -> Result<(), SourceError> {
        if checkpoint.is_empty() {
            return Ok(());
        }
        let consumer = self.consumer.clone();
        let checkpoint = checkpoint.clone();
        // A synchronous commit waits for the group coordinator: keep it off the runtime.
        run_blocking(move || commit_assigned(&consumer, &checkpoint)).await
    }

    /// Pauses and resumes through librdkafka, which keeps each partition's position:
    /// nothing is skipped or read twice. A failure is logged and left: pausing only keeps
    /// the reorder buffer small, and posts read anyway are still ordered up to its bound.
    fn pause_only(&mut self, partitions: &[(String, i32)]) {
        if self.paused_under != self.assigned {
            // Assigned anew since the last pause: librdkafka resumed them.
            self.paused.clear();
            self.paused_under = self.assigned.clone();
        }
        let wanted: BTreeSet<(String, i32)> = partitions
            .iter()
            .filter(|p| self.assigned.contains(*p))
            .cloned()
            .collect();
        let list = |set: Vec<&(String, i32)>| {
            let mut list = TopicPartitionList::new();
            for (topic, partition) in set {
                list.add_partition(topic, *partition);
            }
            list
        };
        let pause = list(wanted.difference(&self.paused).collect());
        let resume = list(self.paused.difference(&wanted).collect());
        if pause.count() > 0 {
            match self.consumer.pause(&pause) {
                Ok(()) => {
                    debug!(partitions = ?wanted, "paused kafka partitions read far ahead of event time")
                }
                Err(err) => warn!(error = %err, "cannot pause kafka partitions"),
            }
        }
        if resume.count() > 0 {
            if let Err(err) = self.consumer.resume(&resume) {
                warn!(error = %err, "cannot resume kafka partitions");
            }
        }
        self.paused = wanted;
    }

    /// Returns whether a broker is reachable and the consumer lag of assigned partitions
    /// (from librdkafka statistics, refreshed every `statistics.interval.ms` while
    /// batches are being read; empty when statistics are off).
    fn status(&self) -> SourceStatus {
        let lag = self
            .state
            .lag
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        SourceStatus {
            connected: self.state.connected.load(Ordering::Relaxed),
            lag,
        }
    }
}

/// Moves the partitions assigned or revoked since the last look into the batch.
fn note_rebalances(
    state: &ConsumerState,
    assigned: &mut BTreeSet<(String, i32)>,
    pending: &mut PendingBatch,
) {
    for (topic, partition, now_assigned) in state.take_rebalanced() {
        let kind = if now_assigned {
            assigned.insert((topic.clone(), partition));
            PartitionEventKind::Assigned
        } else {
            assigned.remove(&(topic.clone(), partition));
            PartitionEventKind::Revoked
        };
        pending.partition_event(topic, partition, kind);
    }
}

/// Records that a partition is read to its end. librdkafka names only its number, so with
/// several topics every assigned partition of that number is taken to be at its end; one
/// that is not delivers again soon and counts again from then on.
fn note_end(assigned: &BTreeSet<(String, i32)>, pending: &mut PendingBatch, partition: i32) {
    for (topic, _) in assigned.iter().filter(|(_, p)| *p == partition) {
        pending.partition_event(topic.clone(), partition, PartitionEventKind::AtEnd);
    }
}

/// The batch being collected; kept in the source so a cancelled `next_batch` loses nothing.
#[derive(Default)]
struct PendingBatch {
    batch: SourceBatch,
    consumed: BTreeMap<String, u64>,
    dead_letters: DeadLetters,
    /// When the batch must be handed on; set by the first `next_batch` call for it.
    deadline: Option<Instant>,
}

impl PendingBatch {
    fn len(&self) -> usize {
        self.batch.posts.len() + self.batch.rejections.len()
    }

    fn partition_event(&mut self, topic: String, partition: i32, kind: PartitionEventKind) {
        self.batch.partition_events.push(PartitionEvent {
            after_posts: self.batch.posts.len(),
            topic,
            partition,
            kind,
        });
    }

    /// Decodes one message into a post or a reject (copied for the dead-letter topic).
    fn accept(
        &mut self,
        message: &BorrowedMessage<'_>,
        limits: &DecodeLimits,
        reject_log: &mut LogLimiter,
    ) {
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        self.batch.checkpoint.advance(topic, partition, offset + 1);
        match self.consumed.get_mut(topic) {
            Some(count) => *count += 1,
            None => {
                self.consumed.insert(topic.to_owned(), 1);
            }
        }
        // Built twice on a reject rather than cloned for every post.
        let origin = || Origin::Kafka {
            topic: topic.to_owned(),
            partition,
            offset,
        };
        let decoded = match message.payload() {
            None | Some([]) => Err(empty_message()),
            Some(payload) => decode_post(payload, limits, origin()),
        };
        match decoded {
            Ok(post) => {
                self.batch.posts.push(post);
                if let Some(ms) = message.timestamp().to_millis() {
                    self.batch.produced_at_ms.push(ms);
                }
            }
            Err(rejection) => {
                let origin = origin();
                if let Some(suppressed) = reject_log.allow(std::time::Instant::now(), LOG_INTERVAL)
                {
                    warn!(
                        origin = %origin.describe(),
                        reason = %rejection.reason,
                        detail = %rejection.detail,
                        suppressed,
                        "rejected a kafka message, keeping it on the dead-letter topic"
                    );
                }
                self.dead_letters.push(message, &rejection, origin.clone());
                self.batch
                    .rejections
                    .push(RejectedInput { rejection, origin });
            }
        }
    }

    /// Returns the collected batch and starts a new one.
    fn take(&mut self) -> SourceBatch {
        let mut batch = std::mem::take(&mut self.batch);
        batch.consumed = std::mem::take(&mut self.consumed).into_iter().collect();
        self.deadline = None;
        batch
    }
}

/// Returns the rejection of a message without payload (a tombstone) or with an empty one.
///
/// Reported as `not_json`: zero bytes are not a JSON document, and `decode_post` says the
/// same about an empty line; the detail tells the two cases from other JSON errors.
fn empty_message() -> Rejection {
    Rejection {
        reason: RejectReason::NotJson,
        detail: "empty message".to_owned(),
    }
}

/// Fetches cluster metadata and returns the names of the topics that exist.
fn existing_topics(consumer: &GroupConsumer) -> Result<HashSet<String>, KafkaError> {
    let metadata = consumer.fetch_metadata(None, METADATA_TIMEOUT)?;
    Ok(metadata
        .topics()
        .iter()
        .filter(|topic| topic.error().is_none())
        .map(|topic| topic.name().to_owned())
        .collect())
}

/// Creates `topics` with `create_partitions` partitions; one that appeared meanwhile is fine.
async fn create_topics(config: &KafkaConfig, topics: &[&str]) -> Result<(), KafkaSourceError> {
    let admin: AdminClient<LogContext> = config
        .admin_config()
        .create_with_context(LogContext::new("admin"))
        .map_err(|err| config.client_error(err))?;
    // -1 asks for the broker's default replication factor (KIP-464): how durable the
    // cluster is is the operator's choice, not Vigie's.
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|topic| NewTopic::new(topic, config.create_partitions, TopicReplication::Fixed(-1)))
        .collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(METADATA_TIMEOUT))
        .request_timeout(Some(METADATA_TIMEOUT));
    let results = admin
        .create_topics(&new_topics, &options)
        .await
        .map_err(|source| KafkaSourceError::CreateTopics {
            topic: topics.join(","),
            source,
        })?;
    for result in results {
        match result {
            Ok(topic) => info!(
                topic,
                partitions = config.create_partitions,
                "created kafka topic"
            ),
            // Another instance created it since our metadata request.
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                debug!(topic, "kafka topic already exists")
            }
            Err((topic, code)) => {
                return Err(KafkaSourceError::CreateTopics {
                    topic,
                    source: KafkaError::AdminOp(code),
                });
            }
        }
    }
    Ok(())
}

/// Commits the checkpoint's offsets of the partitions currently assigned to `consumer`.
fn commit_assigned(consumer: &GroupConsumer, checkpoint: &Checkpoint) -> Result<(), SourceError> {
    let commit_error = |err: KafkaError| SourceError::CommitOffsets(Box::new(err));
    let assignment = consumer.assignment().map_err(commit_error)?;
    let assigned: HashSet<(String, i32)> = assignment
        .elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect();
    let mut offsets = TopicPartitionList::new();
    for (topic, partition, next_offset) in checkpoint.iter() {
        if assigned.contains(&(topic.to_owned(), partition)) {
            offsets
                .add_partition_offset(topic, partition, Offset::Offset(next_offset))
                .map_err(commit_error)?;
        } else {
            debug!(
                topic,
                partition,
                next_offset,
                "skipping offset commit of a partition not assigned to this consumer"
            );
        }
    }
    if offsets.count() == 0 {
        return Ok(());
    }
    match consumer.commit(&offsets, CommitMode::Sync) {
        Ok(()) => {
            debug!(partitions = offsets.count(), "committed kafka offsets");
            Ok(())
        }
        Err(err) if lost_to_rebalance(&err) => {
            warn!(error = %err, "kafka offset commit refused during a rebalance, uncommitted posts will be re-read");
            Ok(())
        }
        Err(err) => Err(commit_error(err)),
    }
}

/// Returns true when a commit failed only because the group is rebalancing.
fn lost_to_rebalance(err: &KafkaError) -> bool {
    matches!(
        err,
        KafkaError::ConsumerCommit(
            RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::IllegalGeneration
                | RDKafkaErrorCode::UnknownMemberId
                | RDKafkaErrorCode::AssignmentLost
        )
    )
}

/// Runs blocking librdkafka calls on tokio's blocking pool.
async fn run_blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        // A blocking task is only cancelled when the runtime shuts down, which also drops
        // the task awaiting it; reaching this line means that invariant broke.
        Err(err) => panic!("blocking kafka call was cancelled: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_messages_are_not_json() {
        let rejection = empty_message();
        assert_eq!(rejection.reason, RejectReason::NotJson);
        assert_eq!(rejection.to_string(), "not_json: empty message");
    }

    #[test]
    fn only_rebalance_codes_are_forgiven() {
        assert!(lost_to_rebalance(&KafkaError::ConsumerCommit(
            RDKafkaErrorCode::RebalanceInProgress
        )));
        assert!(!lost_to_rebalance(&KafkaError::ConsumerCommit(
            RDKafkaErrorCode::BrokerTransportFailure
        )));
        assert!(!lost_to_rebalance(&KafkaError::MessageConsumption(
            RDKafkaErrorCode::RebalanceInProgress
        )));
    }

    #[tokio::test]
    async fn invalid_config_fails_before_any_network_call() {
        let config = KafkaConfig {
            topics: Vec::new(),
            ..KafkaConfig::default()
        };
        let err = KafkaSource::connect(config, InputLimits::default())
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("`topics`"), "{err}");
    }

    #[tokio::test]
    async fn unknown_librdkafka_property_fails_client_creation() {
        let mut config = KafkaConfig::default();
        config
            .properties
            .insert("no.such.property".into(), "1".into());
        let err = KafkaSource::connect(config, InputLimits::default())
            .await
            .err()
            .unwrap();
        assert!(matches!(err, KafkaSourceError::CreateClient(_)), "{err:?}");
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert!(cause.contains("no.such.property"), "{cause}");
    }
}
