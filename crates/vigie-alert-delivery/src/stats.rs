//! Delivery counters: [`DeliveryStats`], always kept, and the [`DeliveryObserver`] the
//! daemon plugs its metrics into.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use vigie_domain::alert::AlertSeverity;

use crate::outbox::DeliveryOutcome;

/// Latency samples kept per sink in [`DeliveryStats`].
const LATENCY_SAMPLES: usize = 256;

/// Receives delivery events, for the daemon's Prometheus metrics. Labels passed are from
/// small closed sets (configured sink names, outcomes, severities); never a narrative.
pub trait DeliveryObserver: Send + Sync {
    /// Called once per notification and attempt outcome; `latency` (from acceptance to
    /// delivery) is given for delivered ones.
    fn delivery_finished(
        &self,
        sink: &str,
        outcome: DeliveryOutcome,
        severity: AlertSeverity,
        latency: Option<Duration>,
    );
    /// Called whenever a sink's pending count changes.
    fn queue_depth(&self, sink: &str, depth: usize);
}

/// Counters of one sink.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SinkStats {
    /// Notifications delivered.
    pub delivered: u64,
    /// Failed attempts that will be retried.
    pub retried: u64,
    /// Notifications given up on.
    pub dead_lettered: u64,
    /// Notifications pending (queued, waiting for a retry or in flight).
    pub depth: usize,
    /// Latest delivery latencies in seconds, from acceptance to delivery (bounded).
    pub latency_secs: VecDeque<f64>,
}

/// Delivery counters per sink, always kept (tests and `/api/v1/alerts` read them); the
/// daemon may also pass its own [`DeliveryObserver`].
#[derive(Debug, Default)]
pub struct DeliveryStats {
    sinks: Mutex<BTreeMap<String, SinkStats>>,
}

impl DeliveryStats {
    /// Returns the counters of every sink.
    pub fn snapshot(&self) -> BTreeMap<String, SinkStats> {
        self.sinks.lock().expect("stats lock").clone()
    }

    /// Returns the counters of one sink (zeros when unknown).
    pub fn sink(&self, name: &str) -> SinkStats {
        self.sinks
            .lock()
            .expect("stats lock")
            .get(name)
            .cloned()
            .unwrap_or_default()
    }
}

impl DeliveryObserver for DeliveryStats {
    fn delivery_finished(
        &self,
        sink: &str,
        outcome: DeliveryOutcome,
        _severity: AlertSeverity,
        latency: Option<Duration>,
    ) {
        let mut sinks = self.sinks.lock().expect("stats lock");
        let stats = sinks.entry(sink.to_owned()).or_default();
        match outcome {
            DeliveryOutcome::Delivered => stats.delivered += 1,
            DeliveryOutcome::Retried => stats.retried += 1,
            DeliveryOutcome::DeadLettered => stats.dead_lettered += 1,
        }
        if let Some(latency) = latency {
            if stats.latency_secs.len() == LATENCY_SAMPLES {
                stats.latency_secs.pop_front();
            }
            stats.latency_secs.push_back(latency.as_secs_f64());
        }
    }

    fn queue_depth(&self, sink: &str, depth: usize) {
        let mut sinks = self.sinks.lock().expect("stats lock");
        sinks.entry(sink.to_owned()).or_default().depth = depth;
    }
}
