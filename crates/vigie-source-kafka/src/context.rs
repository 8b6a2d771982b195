//! librdkafka callbacks: logs, errors, statistics (consumer lag, broker liveness) and
//! rebalances, turned into `tracing` events and into the state behind
//! [`vigie_pipeline::Source::status`].
//!
//! librdkafka runs these callbacks on the thread that polls the client (for the consumer:
//! whoever awaits `recv`), so they only record and log; they never block.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::TopicPartitionList;
use serde::Deserialize;
use tracing::{debug, error, info, warn};

/// How often the same kind of broker error (or reject) is logged at most.
pub(crate) const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// What the consumer's callbacks learned, read by `KafkaSource::status`.
#[derive(Debug, Default)]
pub(crate) struct ConsumerState {
    /// True while at least one broker is reachable.
    pub(crate) connected: AtomicBool,
    /// Consumer lag per (topic, partition), from the latest statistics.
    pub(crate) lag: Mutex<Vec<(String, i32, i64)>>,
    /// Partitions assigned or revoked by rebalances since the source last looked, in order
    /// (`true`: assigned).
    pub(crate) rebalanced: Mutex<Vec<(String, i32, bool)>>,
}

impl ConsumerState {
    fn record_rebalance(&self, partitions: &TopicPartitionList, assigned: bool) {
        let mut rebalanced = self
            .rebalanced
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for element in partitions.elements() {
            rebalanced.push((element.topic().to_owned(), element.partition(), assigned));
        }
    }

    /// Returns the rebalance changes recorded since the last call.
    pub(crate) fn take_rebalanced(&self) -> Vec<(String, i32, bool)> {
        std::mem::take(
            &mut *self
                .rebalanced
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }
}

/// Lets one message through per interval and counts the ones held back.
#[derive(Debug, Default)]
pub(crate) struct LogLimiter {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimiter {
    /// Returns `Some(suppressed since the last one)` when a message may be logged now.
    pub(crate) fn allow(&mut self, now: Instant, interval: Duration) -> Option<u64> {
        match self.last {
            Some(last) if now.duration_since(last) < interval => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// Logs client errors, at most one per error code and [`LOG_INTERVAL`].
#[derive(Debug, Default)]
struct ErrorLog {
    limiters: Mutex<HashMap<i32, LogLimiter>>,
}

impl ErrorLog {
    fn log(&self, client: &'static str, error: &KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        if let Some(RDKafkaErrorCode::Fatal) = code {
            error!(client, error = %error, reason, "kafka client failed fatally");
            return;
        }
        let key = code.map_or(i32::MIN, |code| code as i32);
        let allowed = {
            let mut limiters = self
                .limiters
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            limiters
                .entry(key)
                .or_default()
                .allow(Instant::now(), LOG_INTERVAL)
        };
        if let Some(suppressed) = allowed {
            warn!(client, error = %error, reason, suppressed, "kafka client error");
        }
    }
}

/// Forwards a librdkafka log line to `tracing`.
fn log_to_tracing(client: &'static str, level: RDKafkaLogLevel, facility: &str, message: &str) {
    // Vigie gives the consumer and the producer the same user properties, so each client
    // warns about the other's (e.g. "session.timeout.ms is a consumer property and will be
    // ignored by this producer instance"); those warnings are expected, not actionable.
    if facility == "CONFWARN" && message.contains("will be ignored by this") {
        debug!(client, facility, "{message}");
        return;
    }
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error
        | RDKafkaLogLevel::Warning => warn!(client, facility, "{message}"),
        RDKafkaLogLevel::Notice => info!(client, facility, "{message}"),
        RDKafkaLogLevel::Info | RDKafkaLogLevel::Debug => debug!(client, facility, "{message}"),
    }
}

/// Context of the dead-letter producer and the admin client: logs and errors only.
#[derive(Debug, Default)]
pub(crate) struct LogContext {
    client: &'static str,
    errors: ErrorLog,
}

impl LogContext {
    /// Returns a context whose log events carry `client` (e.g. `dead_letter_producer`).
    pub(crate) fn new(client: &'static str) -> LogContext {
        LogContext {
            client,
            errors: ErrorLog::default(),
        }
    }
}

impl ClientContext for LogContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_to_tracing(self.client, level, fac, log_message);
    }

    fn stats_raw(&self, _statistics: &[u8]) {
        // Statistics are enabled for the consumer's lag; the shared properties turn them
        // on here too, where nothing reads them.
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.log(self.client, &error, reason);
    }
}

/// The consumer's context: logs, broker errors, statistics and rebalances.
pub(crate) struct ConsumerCallbacks {
    state: Arc<ConsumerState>,
    errors: ErrorLog,
}

impl ConsumerCallbacks {
    /// Returns a context that records into `state`.
    pub(crate) fn new(state: Arc<ConsumerState>) -> ConsumerCallbacks {
        ConsumerCallbacks {
            state,
            errors: ErrorLog::default(),
        }
    }
}

impl ClientContext for ConsumerCallbacks {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_to_tracing("consumer", level, fac, log_message);
    }

    fn stats_raw(&self, statistics: &[u8]) {
        match serde_json::from_slice::<RawStatistics>(statistics) {
            Ok(stats) => {
                self.state
                    .connected
                    .store(stats.any_broker_up(), Ordering::Relaxed);
                let lag = stats.consumer_lag();
                *self
                    .state
                    .lag
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = lag;
            }
            Err(err) => debug!(error = %err, "failed to parse librdkafka statistics"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::AllBrokersDown) => {
                self.state.connected.store(false, Ordering::Relaxed);
            }
            // Reaching a partition's end is news, not an error (`enable.partition.eof` is
            // on so the event-time orderer learns it; the source reads it from the stream
            // too): a warning at every catch-up would teach operators to ignore warnings.
            Some(RDKafkaErrorCode::PartitionEOF) => {
                debug!(reason, "kafka partition read to its end");
                return;
            }
            _ => {}
        }
        self.errors.log("consumer", &error, reason);
    }
}

impl ConsumerContext for ConsumerCallbacks {
    // On revoke there is nothing to flush or commit: offsets are committed only once posts
    // are durable in the index, so whatever this instance read from a revoked partition
    // but has not committed is simply re-delivered to the partition's new owner, and the
    // index's upsert by post id makes that re-delivery harmless. `KafkaSource::commit`
    // skips partitions that are no longer assigned, so a late commit cannot move another
    // owner's offsets.
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(partitions) => {
                info!(partitions = %describe_partitions(partitions), "kafka partitions revoked");
                self.state.record_rebalance(partitions, false);
            }
            Rebalance::Assign(_) => {}
            Rebalance::Error(err) => warn!(error = %err, "kafka rebalance failed"),
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            info!(partitions = %describe_partitions(partitions), "kafka partitions assigned");
            self.state.record_rebalance(partitions, true);
        }
    }
}

/// Returns `topic/partition` pairs, comma-separated, for logs.
fn describe_partitions(partitions: &TopicPartitionList) -> String {
    let names: Vec<String> = partitions
        .elements()
        .iter()
        .map(|e| format!("{}/{}", e.topic(), e.partition()))
        .collect();
    names.join(",")
}

/// The subset of librdkafka's statistics JSON that Vigie reads
/// (<https://github.com/confluentinc/librdkafka/blob/master/STATISTICS.md>). Parsed by
/// hand rather than through `rdkafka::Statistics`, so that a field missing in one
/// librdkafka version cannot cost us the lag.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawStatistics {
    brokers: HashMap<String, RawBroker>,
    topics: HashMap<String, RawTopic>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawBroker {
    /// `UP`, `DOWN`, `INIT`, `CONNECT`, …
    state: String,
    /// `configured`, `learned`, `internal` or `logical`.
    source: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawTopic {
    partitions: HashMap<String, RawPartition>,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawPartition {
    partition: i32,
    /// True for partitions assigned to this consumer.
    desired: bool,
    /// High-water mark minus committed offset; -1 when either is unknown.
    consumer_lag: i64,
}

impl Default for RawPartition {
    fn default() -> Self {
        RawPartition {
            partition: -1,
            desired: false,
            consumer_lag: -1,
        }
    }
}

impl RawStatistics {
    fn any_broker_up(&self) -> bool {
        self.brokers
            .values()
            .any(|broker| broker.source != "internal" && broker.state == "UP")
    }

    /// Returns the lag of assigned partitions, sorted; skips librdkafka's internal
    /// partition -1 and partitions whose lag is not known yet.
    fn consumer_lag(&self) -> Vec<(String, i32, i64)> {
        let mut lag: Vec<(String, i32, i64)> = self
            .topics
            .iter()
            .flat_map(|(topic, stats)| {
                stats
                    .partitions
                    .values()
                    .filter(|p| p.partition >= 0 && p.desired && p.consumer_lag >= 0)
                    .map(move |p| (topic.clone(), p.partition, p.consumer_lag))
            })
            .collect();
        lag.sort();
        lag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lag_of_assigned_partitions_only() {
        let json = br#"{
            "name": "vigie#consumer-1", "type": "consumer", "ts": 1,
            "brokers": {
                "GroupCoordinator": {"state": "UP", "source": "logical", "nodeid": 1},
                ":0/internal": {"state": "INIT", "source": "internal", "nodeid": -1},
                "k:9092/1": {"state": "UP", "source": "learned", "nodeid": 1}
            },
            "topics": {
                "posts": {"topic": "posts", "partitions": {
                    "0": {"partition": 0, "desired": true, "consumer_lag": 7, "hi_offset": 10},
                    "1": {"partition": 1, "desired": true, "consumer_lag": -1},
                    "2": {"partition": 2, "desired": false, "consumer_lag": 3},
                    "-1": {"partition": -1, "desired": false, "consumer_lag": -1}
                }},
                "more": {"partitions": {"4": {"partition": 4, "desired": true, "consumer_lag": 0}}}
            }
        }"#;
        let stats: RawStatistics = serde_json::from_slice(json).unwrap();
        assert!(stats.any_broker_up());
        assert_eq!(
            stats.consumer_lag(),
            vec![("more".to_owned(), 4, 0), ("posts".to_owned(), 0, 7)]
        );
    }

    #[test]
    fn no_broker_up_means_disconnected() {
        let json = br#"{"brokers": {
            ":0/internal": {"state": "UP", "source": "internal"},
            "k:9092/bootstrap": {"state": "CONNECT", "source": "configured"}
        }}"#;
        let stats: RawStatistics = serde_json::from_slice(json).unwrap();
        assert!(!stats.any_broker_up());
        assert!(stats.consumer_lag().is_empty());
    }

    #[test]
    fn limiter_lets_one_through_per_interval_and_counts_the_rest() {
        let mut limiter = LogLimiter::default();
        let start = Instant::now();
        assert_eq!(limiter.allow(start, LOG_INTERVAL), Some(0));
        assert_eq!(
            limiter.allow(start + Duration::from_secs(1), LOG_INTERVAL),
            None
        );
        assert_eq!(
            limiter.allow(start + Duration::from_secs(2), LOG_INTERVAL),
            None
        );
        assert_eq!(limiter.allow(start + LOG_INTERVAL, LOG_INTERVAL), Some(2));
    }
}
