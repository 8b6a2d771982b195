//! Prometheus metrics of the pipeline, declared in one place.
//!
//! Label values come from small closed sets (topic and partition names from the config,
//! rejection reasons, queue names); nothing per post or per narrative becomes a label.

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::time::SystemTime;

use vigie_domain::RejectReason;

/// Every metric the daemon exports.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Messages (posts and rejects) read from each topic or file.
    pub messages_consumed: IntCounterVec,
    /// Rejected inputs by reason.
    pub posts_rejected: IntCounterVec,
    /// Posts written to the index (re-deliveries included; the index de-duplicates).
    pub posts_indexed: IntCounter,
    /// Documents searchable in the index after the last commit.
    pub index_documents: IntGauge,
    /// Index commit latency.
    pub commit_duration: Histogram,
    /// Wall time from a post's Kafka message timestamp to the index commit that made it
    /// searchable.
    pub produce_to_searchable: Histogram,
    /// Wall time from a post's Kafka message timestamp to its hand-off to the detector.
    pub produce_to_detection: Histogram,
    /// Posts deleted by retention.
    pub retention_deleted: IntCounter,
    /// Consumer lag per topic and partition.
    pub consumer_lag: IntGaugeVec,
    /// Batches waiting between stages.
    pub queue_depth: IntGaugeVec,
    /// Newest event time indexed, in seconds since the epoch.
    pub newest_event_time: IntGauge,
    /// 1 while the source is connected.
    pub source_connected: IntGauge,
    /// Partitions paused because they are read far ahead of the event-time watermark.
    pub partitions_paused: IntGauge,
    /// Posts the detector observed.
    pub detector_posts_observed: IntCounter,
    /// Fixed memory of the detector's state.
    pub detector_memory: IntGauge,
    /// Posts not observed again because their id was seen lately.
    pub detector_duplicates_skipped: IntCounter,
    /// Posts too far ahead of their partition's watermark to move it when they arrived.
    pub detector_posts_held_ahead: IntCounter,
    /// Posts waiting in the reorder buffer for the watermark.
    pub detector_reorder_buffered: IntGauge,
    /// Posts released from a full reorder buffer before the watermark reached them.
    pub detector_reorder_forced: IntCounter,
    /// Posts of an already closed window, counted at the current time.
    pub detector_late_posts: IntCounter,
    /// The event-time watermark before detection, in seconds since the epoch.
    pub detector_watermark: IntGauge,
    /// Active narratives by status.
    pub narratives_active: IntGaugeVec,
    /// Narrative events by kind.
    pub narrative_events: IntCounterVec,
    /// Active narratives whose coordination score is at least 0.5.
    pub narratives_coordinated: IntGauge,
    /// Growth ratio of the fastest-growing active narratives, by rank slot (1 = fastest).
    pub narrative_top_growth: GaugeVec,
    /// Alert notifications produced, by kind and severity.
    pub alert_notifications: IntCounterVec,
    /// Failed attempts to write notifications into the outbox (each retried, none lost).
    pub alert_outbox_write_errors: IntCounter,
    /// Damaged outbox journal lines skipped at start.
    pub alert_outbox_corrupt_records: IntCounter,
    /// Failed durable writes to the data dir, by what (`STORAGE_WHATS`).
    pub storage_write_errors: IntCounterVec,
    /// Failed offset commits to the source (retried with the next checkpoint).
    pub offset_commit_failures: IntCounter,
    /// 1 while writes of `what` fail and the pipeline waits for them, by what.
    pub storage_write_failing: IntGaugeVec,
    /// Firing alerts by severity.
    pub alerts_firing: IntGaugeVec,
    /// Delivery attempts by sink and outcome (delivered, retried, dead_lettered).
    pub alert_deliveries: IntCounterVec,
    /// Time from acceptance in the outbox to delivery, by sink.
    pub alert_delivery_duration: HistogramVec,
    /// Notifications waiting in the outbox, by sink.
    pub alert_outbox_depth: IntGaugeVec,
    /// HTTP requests refused, by reason (see `http::REJECT_REASONS`).
    pub http_requests_rejected: IntCounterVec,
}

/// Buckets of the produce-to-searchable and produce-to-detection histograms, in seconds:
/// fine around the 2 s a reader expects a post to be searchable in, coarse for a backlog.
const FRESHNESS_BUCKETS: [f64; 16] = [
    0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 7200.0,
];

/// Observes, for each wall-clock time in `produced_at_ms`, the seconds from it to now
/// (clamped at 0: a producer's clock may run ahead of this machine's).
pub fn observe_since_produced(histogram: &Histogram, produced_at_ms: &[i64]) {
    if produced_at_ms.is_empty() {
        return;
    }
    // Freshness is wall time by definition: the producer stamped each message with its
    // clock. Nothing detection decides reads it.
    #[allow(clippy::disallowed_methods)]
    let now = SystemTime::now();
    let now_ms = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    for &ms in produced_at_ms {
        histogram.observe(now_ms.saturating_sub(ms).max(0) as f64 / 1e3);
    }
}

/// The `what` label values of `vigie_storage_write_errors_total`.
pub const STORAGE_WHATS: [&str; 3] = ["index", "snapshot", "outbox"];

/// Rank slots of `vigie_narrative_top_growth_ratio`.
pub const TOP_GROWTH_SLOTS: usize = 5;

impl Metrics {
    /// Registers every metric in a fresh registry.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let metrics = Metrics {
            messages_consumed: IntCounterVec::new(
                Opts::new("vigie_source_messages_consumed_total", "Messages read from each Kafka topic or input file."),
                &["topic"],
            )
            .unwrap(),
            posts_rejected: IntCounterVec::new(
                Opts::new("vigie_posts_rejected_total", "Inputs rejected by validation, by reason; each is kept in the dead-letter topic or rejected.jsonl."),
                &["reason"],
            )
            .unwrap(),
            posts_indexed: IntCounter::new("vigie_index_posts_indexed_total", "Posts written to the index (re-deliveries included).")
                .unwrap(),
            index_documents: IntGauge::new("vigie_index_documents", "Documents searchable after the last commit.").unwrap(),
            commit_duration: Histogram::with_opts(
                HistogramOpts::new("vigie_index_commit_duration_seconds", "Index commit latency.")
                    .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            )
            .unwrap(),
            produce_to_searchable: Histogram::with_opts(
                HistogramOpts::new(
                    "vigie_index_produce_to_searchable_seconds",
                    "Wall time from each post's Kafka message timestamp (producer or broker clock) to the index commit that made it searchable.",
                )
                .buckets(FRESHNESS_BUCKETS.to_vec()),
            )
            .unwrap(),
            produce_to_detection: Histogram::with_opts(
                HistogramOpts::new(
                    "vigie_detect_produce_to_detection_seconds",
                    "Wall time from each post's Kafka message timestamp to its hand-off to the detector (alerts are decided from there, once event time passes the reorder bound).",
                )
                .buckets(FRESHNESS_BUCKETS.to_vec()),
            )
            .unwrap(),
            retention_deleted: IntCounter::new("vigie_index_retention_deleted_total", "Posts deleted by retention.").unwrap(),
            consumer_lag: IntGaugeVec::new(
                Opts::new("vigie_source_consumer_lag_messages", "Kafka consumer lag per partition."),
                &["topic", "partition"],
            )
            .unwrap(),
            queue_depth: IntGaugeVec::new(
                Opts::new("vigie_pipeline_queue_depth_batches", "Batches waiting between pipeline stages."),
                &["queue"],
            )
            .unwrap(),
            newest_event_time: IntGauge::new("vigie_index_newest_event_time_seconds", "Newest post event time indexed (Unix seconds).")
                .unwrap(),
            source_connected: IntGauge::new("vigie_source_connected", "1 while the source is connected.").unwrap(),
            partitions_paused: IntGauge::new(
                "vigie_source_partitions_paused",
                "Kafka partitions paused because they are read far ahead of the event-time watermark (the reorder buffer is filling).",
            )
            .unwrap(),
            detector_posts_observed: IntCounter::new(
                "vigie_detector_posts_observed_total",
                "Posts observed by the narrative detector.",
            )
            .unwrap(),
            detector_duplicates_skipped: IntCounter::new(
                "vigie_detector_duplicates_skipped_total",
                "Posts not observed again by detection because their id was seen lately.",
            )
            .unwrap(),
            detector_memory: IntGauge::new("vigie_detector_memory_bytes", "Memory of the detector's state (fixed).")
                .unwrap(),
            detector_posts_held_ahead: IntCounter::new(
                "vigie_detector_posts_held_ahead_total",
                "Posts too far ahead of their partition's watermark to move it (until corroborated).",
            )
            .unwrap(),
            detector_reorder_buffered: IntGauge::new(
                "vigie_detector_reorder_buffered_posts",
                "Posts waiting in the event-time reorder buffer before detection.",
            )
            .unwrap(),
            detector_reorder_forced: IntCounter::new(
                "vigie_detector_reorder_forced_total",
                "Posts released early from a full reorder buffer ([detect.event_time] max_buffered_posts).",
            )
            .unwrap(),
            detector_late_posts: IntCounter::new(
                "vigie_detector_late_posts_total",
                "Posts of an already closed window, counted by the detector at the current time.",
            )
            .unwrap(),
            detector_watermark: IntGauge::new(
                "vigie_detector_watermark_seconds",
                "Event-time watermark before detection (Unix seconds): the minimum over the partitions' own.",
            )
            .unwrap(),
            narratives_active: IntGaugeVec::new(
                Opts::new("vigie_narratives_active", "Active narratives by status."),
                &["status"],
            )
            .unwrap(),
            narrative_events: IntCounterVec::new(
                Opts::new("vigie_narrative_events_total", "Narrative events by kind."),
                &["kind"],
            )
            .unwrap(),
            narratives_coordinated: IntGauge::new(
                "vigie_narratives_coordinated",
                "Active narratives with a coordination score of at least 0.5.",
            )
            .unwrap(),
            narrative_top_growth: GaugeVec::new(
                Opts::new(
                    "vigie_narrative_top_growth_ratio",
                    "Growth ratio against baseline of the fastest-growing active narratives, by rank slot.",
                ),
                &["rank"],
            )
            .unwrap(),
            alert_notifications: IntCounterVec::new(
                Opts::new("vigie_alert_notifications_total", "Alert notifications produced, by kind, severity and level (storyline or claim)."),
                &["kind", "severity", "level"],
            )
            .unwrap(),
            alert_outbox_write_errors: IntCounter::new(
                "vigie_alert_outbox_write_errors_total",
                "Failed attempts to write alert notifications into the outbox; the pipeline holds and retries them, none is lost.",
            )
            .unwrap(),
            alert_outbox_corrupt_records: IntCounter::new(
                "vigie_alert_outbox_corrupt_records_total",
                "Damaged outbox journal lines (torn tail, garbage) skipped when the outbox was opened.",
            )
            .unwrap(),
            storage_write_errors: IntCounterVec::new(
                Opts::new("vigie_storage_write_errors_total", "Failed writes to the data dir (disk full, I/O error), by what: index, snapshot, outbox."),
                &["what"],
            )
            .unwrap(),
            offset_commit_failures: IntCounter::new(
                "vigie_source_offset_commit_failures_total",
                "Failed offset commits to the source (broker down, group rebalancing); retried with the next checkpoint.",
            )
            .unwrap(),
            storage_write_failing: IntGaugeVec::new(
                Opts::new("vigie_storage_write_failing", "1 while writes of `what` fail and the pipeline holds its offsets, retrying."),
                &["what"],
            )
            .unwrap(),
            alerts_firing: IntGaugeVec::new(
                Opts::new("vigie_alerts_firing", "Firing alerts by severity and level (storyline or claim)."),
                &["severity", "level"],
            )
            .unwrap(),
            alert_deliveries: IntCounterVec::new(
                Opts::new("vigie_alert_deliveries_total", "Alert delivery attempts by sink and outcome."),
                &["sink", "outcome"],
            )
            .unwrap(),
            alert_delivery_duration: HistogramVec::new(
                HistogramOpts::new(
                    "vigie_alert_delivery_duration_seconds",
                    "Time from acceptance in the outbox to delivery.",
                )
                .buckets(vec![0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0, 3600.0]),
                &["sink"],
            )
            .unwrap(),
            alert_outbox_depth: IntGaugeVec::new(
                Opts::new("vigie_alert_outbox_depth", "Notifications waiting in the outbox, by sink."),
                &["sink"],
            )
            .unwrap(),
            http_requests_rejected: IntCounterVec::new(
                Opts::new("vigie_http_requests_rejected_total", "HTTP requests refused, by reason (host, origin, unauthenticated, forbidden, too_large, timeout, busy, bad_query)."),
                &["reason"],
            )
            .unwrap(),
            registry,
        };
        let build_info = IntGaugeVec::new(
            Opts::new("vigie_build_info", "Vigie build information."),
            &["version"],
        )
        .unwrap();
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for collector in [
            Box::new(metrics.messages_consumed.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(metrics.posts_rejected.clone()),
            Box::new(metrics.posts_indexed.clone()),
            Box::new(metrics.index_documents.clone()),
            Box::new(metrics.commit_duration.clone()),
            Box::new(metrics.produce_to_searchable.clone()),
            Box::new(metrics.produce_to_detection.clone()),
            Box::new(metrics.retention_deleted.clone()),
            Box::new(metrics.consumer_lag.clone()),
            Box::new(metrics.queue_depth.clone()),
            Box::new(metrics.newest_event_time.clone()),
            Box::new(metrics.source_connected.clone()),
            Box::new(metrics.partitions_paused.clone()),
            Box::new(metrics.detector_posts_observed.clone()),
            Box::new(metrics.detector_memory.clone()),
            Box::new(metrics.detector_duplicates_skipped.clone()),
            Box::new(metrics.detector_posts_held_ahead.clone()),
            Box::new(metrics.detector_reorder_buffered.clone()),
            Box::new(metrics.detector_reorder_forced.clone()),
            Box::new(metrics.detector_late_posts.clone()),
            Box::new(metrics.detector_watermark.clone()),
            Box::new(metrics.narratives_active.clone()),
            Box::new(metrics.narrative_events.clone()),
            Box::new(metrics.narratives_coordinated.clone()),
            Box::new(metrics.narrative_top_growth.clone()),
            Box::new(metrics.alert_notifications.clone()),
            Box::new(metrics.alert_outbox_write_errors.clone()),
            Box::new(metrics.alert_outbox_corrupt_records.clone()),
            Box::new(metrics.storage_write_errors.clone()),
            Box::new(metrics.storage_write_failing.clone()),
            Box::new(metrics.offset_commit_failures.clone()),
            Box::new(metrics.alerts_firing.clone()),
            Box::new(metrics.alert_deliveries.clone()),
            Box::new(metrics.alert_delivery_duration.clone()),
            Box::new(metrics.alert_outbox_depth.clone()),
            Box::new(metrics.http_requests_rejected.clone()),
            Box::new(build_info),
        ] {
            metrics
                .registry
                .register(collector)
                .expect("metric names are unique");
        }
        for reason in crate::http::REJECT_REASONS {
            metrics.http_requests_rejected.with_label_values(&[reason]);
        }
        // Pre-register every reason so rate() works from the first scrape.
        for reason in RejectReason::ALL {
            metrics.posts_rejected.with_label_values(&[reason.as_str()]);
        }
        for what in STORAGE_WHATS {
            metrics.storage_write_errors.with_label_values(&[what]);
            metrics.storage_write_failing.with_label_values(&[what]);
        }
        for status in ["emerging", "growing", "peaking", "fading"] {
            metrics.narratives_active.with_label_values(&[status]);
        }
        for severity in ["critical", "warning", "info"] {
            for level in ["storyline", "claim"] {
                metrics.alerts_firing.with_label_values(&[severity, level]);
            }
        }
        for rank in 1..=TOP_GROWTH_SLOTS {
            metrics
                .narrative_top_growth
                .with_label_values(&[&rank.to_string()]);
        }
        metrics
    }

    /// Renders the text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding to memory cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// One store's write outage (`index`, `snapshot`, `outbox`): counts every refused write in
/// `vigie_storage_write_errors_total` and sets `vigie_storage_write_failing` while it lasts.
/// The caller logs the start (ERROR) and the end (INFO), once each.
#[derive(Debug)]
pub struct StorageOutage {
    store: &'static str,
    since: Option<std::time::Instant>,
}

impl StorageOutage {
    /// Returns the tracker of `store`, with no outage.
    pub fn new(store: &'static str) -> StorageOutage {
        StorageOutage { store, since: None }
    }

    /// Returns true while writes are refused.
    pub fn is_failing(&self) -> bool {
        self.since.is_some()
    }

    /// Counts a refused write; returns true when it starts an outage (log it then).
    pub fn refused(&mut self, metrics: &Metrics) -> bool {
        metrics
            .storage_write_errors
            .with_label_values(&[self.store])
            .inc();
        if self.since.is_some() {
            return false;
        }
        self.since = Some(std::time::Instant::now());
        metrics
            .storage_write_failing
            .with_label_values(&[self.store])
            .set(1);
        true
    }

    /// Ends the outage, if there was one; returns how long it lasted (log it then).
    pub fn ended(&mut self, metrics: &Metrics) -> Option<std::time::Duration> {
        let since = self.since.take()?;
        metrics
            .storage_write_failing
            .with_label_values(&[self.store])
            .set(0);
        Some(since.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_reason_and_the_required_names() {
        let metrics = Metrics::new();
        metrics
            .posts_rejected
            .with_label_values(&["not_json"])
            .inc();
        let text = metrics.render();
        assert!(
            text.contains("vigie_posts_rejected_total{reason=\"not_json\"} 1"),
            "{text}"
        );
        assert!(text.contains("vigie_posts_rejected_total{reason=\"too_large\"} 0"));
        assert!(text.contains("vigie_build_info"));
    }
}
