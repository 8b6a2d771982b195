//! Alerting inside the daemon: turns the detector's narrative events into notifications
//! (`vigie-alert`'s `AlertPolicy`, in event time, in the indexer thread), hands them to the
//! durable outbox, and maps delivery outcomes to Prometheus metrics.
//!
//! The policy runs where the detector runs so that alerts follow the stream's event time
//! exactly; delivery runs on the async runtime (per-sink workers with retries), so a
//! failing sink never slows ingestion. Policy state is saved in the same snapshot as the
//! detector's; the outbox keeps undelivered notifications across restarts by itself.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vigie_alert::{
    AlertConfig, AlertDelivery, AlertPolicy, AlertSeverity, DeliveryObserver, DeliveryOutcome,
    Notification, PolicySnapshot, PostRef,
};
use vigie_domain::{AnalyzedPost, NarrativeEvent};

use crate::metrics::Metrics;

/// Posts remembered for alert content (representative posts with link and text); about the
/// detector's own window of recent posts.
const RECENT_POSTS: usize = 20_000;

/// Maps delivery outcomes to metrics with bounded labels (sink name, outcome).
struct MetricsObserver(Metrics);

impl DeliveryObserver for MetricsObserver {
    fn delivery_finished(
        &self,
        sink: &str,
        outcome: DeliveryOutcome,
        _: AlertSeverity,
        latency: Option<Duration>,
    ) {
        self.0
            .alert_deliveries
            .with_label_values(&[sink, outcome.as_str()])
            .inc();
        if let Some(latency) = latency {
            self.0
                .alert_delivery_duration
                .with_label_values(&[sink])
                .observe(latency.as_secs_f64());
        }
    }

    fn queue_depth(&self, sink: &str, depth: usize) {
        self.0
            .alert_outbox_depth
            .with_label_values(&[sink])
            .set(depth as i64);
    }
}

/// The recent posts alert content can cite, by id.
#[derive(Default)]
struct RecentPosts {
    order: VecDeque<String>,
    by_id: HashMap<String, PostRef>,
}

impl RecentPosts {
    fn remember(&mut self, post: &AnalyzedPost) {
        let post = &post.post;
        if self.by_id.contains_key(&post.id) {
            return;
        }
        if self.order.len() == RECENT_POSTS {
            if let Some(oldest) = self.order.pop_front() {
                self.by_id.remove(&oldest);
            }
        }
        let text: String = post.text.chars().take(280).collect();
        self.by_id.insert(
            post.id.clone(),
            PostRef {
                id: post.id.clone(),
                url: post.url.clone(),
                created_at: Some(post.created_at),
                text: Some(text),
            },
        );
        self.order.push_back(post.id.clone());
    }
}

/// Starts alert delivery (outbox workers) on the current runtime.
pub fn start_delivery(
    config: &AlertConfig,
    data_dir: &std::path::Path,
    metrics: &Metrics,
) -> anyhow::Result<Arc<AlertDelivery>> {
    let outbox = vigie_alert::Outbox::open(data_dir.join("outbox"))?;
    let observer: Arc<dyn DeliveryObserver> = Arc::new(MetricsObserver(metrics.clone()));
    Ok(Arc::new(AlertDelivery::start(
        config,
        outbox,
        Some(observer),
    )?))
}

/// The alert policy with its delivery and the posts its content cites.
pub struct Alerting {
    policy: AlertPolicy,
    delivery: Arc<AlertDelivery>,
    recent: Arc<Mutex<RecentPosts>>,
    metrics: Metrics,
}

impl Alerting {
    /// Builds the policy, restored from `snapshot` when there is one.
    pub fn new(
        config: AlertConfig,
        snapshot: Option<PolicySnapshot>,
        delivery: Arc<AlertDelivery>,
        metrics: Metrics,
    ) -> Alerting {
        let mut policy = match snapshot {
            Some(snapshot) => AlertPolicy::restore(config, snapshot),
            None => AlertPolicy::new(config),
        };
        let recent = Arc::new(Mutex::new(RecentPosts::default()));
        let lookup = recent.clone();
        policy.set_post_lookup(Arc::new(move |id: &str| {
            lookup
                .lock()
                .expect("recent posts lock")
                .by_id
                .get(id)
                .cloned()
        }));
        Alerting {
            policy,
            delivery,
            recent,
            metrics,
        }
    }

    /// Remembers a post so alerts can cite it.
    pub fn remember(&self, post: &AnalyzedPost) {
        self.recent
            .lock()
            .expect("recent posts lock")
            .remember(post);
    }

    /// Feeds narrative events to the policy and hands its notifications to the outbox.
    pub fn on_events(&mut self, events: &[NarrativeEvent]) {
        let mut notifications = Vec::new();
        for event in events {
            notifications.extend(self.policy.on_event(event));
        }
        self.deliver(notifications);
    }

    /// Advances the policy's event-time clock (hysteresis, resolves, re-notifications).
    pub fn on_tick(&mut self, now: chrono::DateTime<chrono::Utc>) {
        let notifications = self.policy.on_tick(now);
        self.deliver(notifications);
    }

    /// Releases held notification groups (end of a finite input, shutdown).
    pub fn flush(&mut self) {
        let notifications = self.policy.flush();
        self.deliver(notifications);
    }

    fn deliver(&mut self, notifications: Vec<Notification>) {
        if notifications.is_empty() {
            return;
        }
        for notification in &notifications {
            self.metrics
                .alert_notifications
                .with_label_values(&[
                    notification.kind.as_str(),
                    notification.alert.severity.as_str(),
                ])
                .inc();
        }
        if let Err(err) = self.delivery.deliver(&notifications) {
            // The outbox could not record them: they are lost unless the policy fires again.
            tracing::error!(error = %err, count = notifications.len(), "failed to accept alert notifications");
            self.metrics
                .alert_accept_failures
                .inc_by(notifications.len() as u64);
        }
    }

    /// Returns the policy (alerts, silences) for publication.
    pub fn policy(&self) -> &AlertPolicy {
        &self.policy
    }

    /// Returns the policy for acks and silences.
    pub fn policy_mut(&mut self) -> &mut AlertPolicy {
        &mut self.policy
    }

    /// Publishes the number of firing alerts by severity.
    pub fn publish_metrics(&self) {
        let alerts = self.policy.alerts();
        for severity in [
            AlertSeverity::Critical,
            AlertSeverity::Warning,
            AlertSeverity::Info,
        ] {
            let firing = alerts
                .iter()
                .filter(|a| a.severity == severity && a.state == vigie_alert::AlertState::Firing)
                .count();
            self.metrics
                .alerts_firing
                .with_label_values(&[severity.as_str()])
                .set(firing as i64);
        }
    }
}
