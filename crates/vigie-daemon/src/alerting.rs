//! Alerting inside the daemon: turns the detector's narrative events into notifications
//! (`vigie-alert`'s `AlertPolicy`, in event time, in the indexer thread), hands them to the
//! durable outbox, and maps delivery outcomes to Prometheus metrics.
//!
//! The policy runs where the detector runs so that alerts follow the stream's event time
//! exactly; delivery runs on the async runtime (per-sink workers with retries), so a
//! failing sink never slows ingestion. Policy state is saved in the same snapshot as the
//! detector's; the outbox keeps undelivered notifications across restarts by itself.
//!
//! A notification is not sent until the outbox has taken it (fsync'd). When the outbox
//! refuses (disk full, I/O error), notifications are held here in order and offered again
//! by the runner, which meanwhile takes no new batch and saves neither snapshot nor
//! offsets: a crash then replays the posts and the restored policy produces them again.
//!
//! Silences are judged by the wall clock, read here (and only here) before each call into
//! the policy, which reads no clock itself.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vigie_alert::{
    AlertConfig, AlertError, AlertPolicy, AlertSeverity, NarrativeLevel, Notification,
    PolicySnapshot, PostRef, SilenceRequest, SilenceView,
};
use vigie_alert_delivery::{AlertDelivery, DeliveryObserver, DeliveryOutcome};
use vigie_domain::{AnalyzedPost, NarrativeEvent};

use crate::config::AlertSection;
use crate::metrics::{Metrics, StorageOutage};

/// Returns the wall clock, for silences.
#[allow(clippy::disallowed_methods)]
fn wall_now() -> chrono::DateTime<chrono::Utc> {
    // Silences are set by people for a stretch of their time ("the next hour"), as in
    // Alertmanager; event time may run days ahead during a replay or lag behind Kafka.
    chrono::Utc::now()
}

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
        let text: String = post.text.chars().take(280).collect();
        self.insert(PostRef {
            id: post.id.clone(),
            url: post.url.clone(),
            created_at: Some(post.created_at),
            text: Some(text),
            lang: None,
            copies: None,
        });
    }

    fn insert(&mut self, post: PostRef) {
        if self.by_id.contains_key(&post.id) {
            return;
        }
        if self.order.len() >= RECENT_POSTS {
            if let Some(oldest) = self.order.pop_front() {
                self.by_id.remove(&oldest);
            }
        }
        self.order.push_back(post.id.clone());
        self.by_id.insert(post.id.clone(), post);
    }
}

/// Starts alert delivery (outbox workers) on the current runtime.
pub fn start_delivery(
    config: &AlertSection,
    data_dir: &std::path::Path,
    metrics: &Metrics,
) -> anyhow::Result<Arc<AlertDelivery>> {
    let outbox = vigie_alert_delivery::Outbox::open(data_dir.join("outbox"))?;
    metrics
        .alert_outbox_corrupt_records
        .inc_by(outbox.corrupt_records() as u64);
    let observer: Arc<dyn DeliveryObserver> = Arc::new(MetricsObserver(metrics.clone()));
    Ok(Arc::new(AlertDelivery::start(
        &config.sinks,
        &config.delivery,
        config.policy.renotify_interval_secs,
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
    /// Notifications the outbox refused, oldest first, offered again by `retry_held`.
    held: Vec<Notification>,
    /// The outbox refusing notifications, while it does.
    outbox_outage: StorageOutage,
    /// Notifications the policy produced so far (see [`Alerting::produced`]).
    produced: u64,
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
            held: Vec::new(),
            produced: 0,
            outbox_outage: StorageOutage::new("outbox"),
        }
    }

    /// Returns the remembered posts, oldest first, for the snapshot: after a restart the
    /// posts it covers are not observed again, and alert content must cite them the same
    /// way (same text, so a re-sent notification keeps one body per `webhook-id`).
    pub fn recent_posts(&self) -> Vec<PostRef> {
        let recent = self.recent.lock().expect("recent posts lock");
        recent
            .order
            .iter()
            .filter_map(|id| recent.by_id.get(id).cloned())
            .collect()
    }

    /// Restores the posts a snapshot remembered, oldest first.
    pub fn restore_recent_posts(&self, posts: Vec<PostRef>) {
        let mut recent = self.recent.lock().expect("recent posts lock");
        for post in posts {
            recent.insert(post);
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
        self.policy.set_wall_clock(wall_now());
        let mut notifications = Vec::new();
        for event in events {
            notifications.extend(self.policy.on_event(event));
        }
        self.deliver(notifications);
    }

    /// Advances the policy's event-time clock (hysteresis, resolves, re-notifications).
    pub fn on_tick(&mut self, now: chrono::DateTime<chrono::Utc>) {
        self.policy.set_wall_clock(wall_now());
        let notifications = self.policy.on_tick(now);
        self.deliver(notifications);
    }

    /// Releases held notification groups (end of a finite input, shutdown).
    pub fn flush(&mut self) {
        self.policy.set_wall_clock(wall_now());
        let notifications = self.policy.flush();
        self.deliver(notifications);
    }

    fn deliver(&mut self, notifications: Vec<Notification>) {
        if notifications.is_empty() {
            return;
        }
        self.produced += notifications.len() as u64;
        self.held.extend(notifications);
        self.retry_held();
    }

    /// Returns how many notifications the policy has produced since start: when it moves,
    /// the alerts the API lists changed.
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// Returns true while notifications the outbox refused are held.
    pub fn holds_notifications(&self) -> bool {
        !self.held.is_empty()
    }

    /// Offers the held notifications to the outbox (one write, in order); returns true
    /// when none is left. A refusal is counted, and logged once per outage.
    pub fn retry_held(&mut self) -> bool {
        if self.held.is_empty() {
            return true;
        }
        match self.delivery.deliver(&self.held) {
            Ok(_) => {
                for notification in &self.held {
                    self.metrics
                        .alert_notifications
                        .with_label_values(&[
                            notification.kind.as_str(),
                            notification.alert.severity.as_str(),
                            notification.level().as_str(),
                        ])
                        .inc();
                }
                if let Some(outage) = self.outbox_outage.ended(&self.metrics) {
                    tracing::info!(
                        count = self.held.len(),
                        outage_secs = outage.as_secs(),
                        "the alert outbox accepts notifications again"
                    );
                }
                self.held.clear();
                true
            }
            Err(err) => {
                self.metrics.alert_outbox_write_errors.inc();
                if self.outbox_outage.refused(&self.metrics) {
                    tracing::error!(
                        error = format!("{:#}", anyhow::Error::from(err)),
                        held = self.held.len(),
                        "the alert outbox refuses notifications; holding them and the pipeline, retrying"
                    );
                }
                false
            }
        }
    }

    /// Adds a silence at the current wall-clock time.
    pub fn add_silence(&mut self, request: SilenceRequest) -> Result<String, AlertError> {
        self.policy.add_silence(request, wall_now())
    }

    /// Returns the silences with their state now, for the HTTP API.
    pub fn silence_views(&self) -> Vec<SilenceView> {
        self.policy.silences().list(wall_now())
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
            for level in [NarrativeLevel::Storyline, NarrativeLevel::Claim] {
                let firing = alerts
                    .iter()
                    .filter(|a| {
                        a.severity == severity
                            && a.level == level
                            && a.state == vigie_alert::AlertState::Firing
                    })
                    .count();
                self.metrics
                    .alerts_firing
                    .with_label_values(&[severity.as_str(), level.as_str()])
                    .set(firing as i64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::tests::{wait_for, SmallDisk};
    use vigie_alert_delivery::{SinkConfig, SinkKind};
    use vigie_domain::{
        CoordinationEvidence, Narrative, NarrativeEventKind, NarrativeId, NarrativeStatus, Severity,
    };

    fn event(id: u64) -> NarrativeEvent {
        let at = chrono::DateTime::from_timestamp(1_448_532_000, 0).unwrap();
        NarrativeEvent {
            at,
            kind: NarrativeEventKind::Created,
            narrative: Narrative {
                id: NarrativeId(id),
                parent: None,
                label: format!("kochfarms #hoax{id}"),
                headline: String::new(),
                terms: Vec::new(),
                hashtags: vec!["kochfarms".into()],
                first_seen: at,
                last_seen: at,
                status: NarrativeStatus::Growing,
                severity: Severity::High,
                severity_reasons: vec!["growth".into()],
                posts_total: 300,
                posts_in_window: 90.0,
                baseline_posts_per_window: 10.0,
                growth_ratio: 9.0,
                growth_z: 8.0,
                distinct_authors: 50,
                anonymous_posts: 0,
                engagement: 0,
                languages: vec![("en".into(), 300)],
                member_post_ids: Vec::new(),
                window_post_ids: Vec::new(),
                representative_post_ids: Vec::new(),
                representatives: Vec::new(),
                coordination: CoordinationEvidence::default(),
                watch_matches: Vec::new(),
                merged_ids: Vec::new(),
            },
        }
    }

    /// Issue 12 (review finding: a notification the outbox refuses, disk full, was lost
    /// while the policy counted it as sent): it is held, counted, offered again, and
    /// delivered exactly once when space returns.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn issue_12_notifications_the_outbox_refuses_are_held_then_delivered_once() {
        let Some(disk) = SmallDisk::mount("256k") else {
            return;
        };
        let out = tempfile::tempdir().unwrap();
        let alerts_file = out.path().join("alerts.jsonl");
        let config = AlertSection {
            policy: AlertConfig {
                account_salt: vigie_domain::Secret::new("test salt"),
                group_wait_secs: 0,
                ..AlertConfig::default()
            },
            sinks: vec![SinkConfig {
                name: "file".into(),
                kind: SinkKind::File,
                path: alerts_file.display().to_string(),
                ..SinkConfig::default()
            }],
            ..AlertSection::default()
        };
        let metrics = Metrics::new();
        let delivery = start_delivery(&config, disk.path(), &metrics).unwrap();
        let mut alerting = Alerting::new(config.policy, None, delivery.clone(), metrics.clone());
        let filler = disk.fill();

        alerting.on_events(&[event(1), event(2), event(3)]);
        assert!(alerting.holds_notifications());
        assert!(!alerting.retry_held(), "still full");
        assert_eq!(metrics.alert_outbox_write_errors.get(), 2);
        let failing = metrics.storage_write_failing.with_label_values(&["outbox"]);
        assert_eq!(failing.get(), 1);
        assert_eq!(delivery.depth(), 0);
        let produced = || {
            metrics
                .alert_notifications
                .with_label_values(&["firing", "warning", "storyline"])
                .get()
        };
        assert_eq!(produced(), 0, "not counted before the outbox took it");

        std::fs::remove_file(filler).unwrap();
        assert!(alerting.retry_held());
        assert!(!alerting.holds_notifications());
        assert_eq!(failing.get(), 0);
        assert_eq!(produced(), 3);
        let lines = || {
            std::fs::read_to_string(&alerts_file)
                .map(|text| text.lines().count())
                .unwrap_or(0)
        };
        wait_for("three alerts in the file sink", || lines() == 3).await;
        assert!(delivery.drain(Duration::from_secs(10)).await);
        let ids: std::collections::BTreeSet<String> = std::fs::read_to_string(&alerts_file)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str::<Notification>(line).unwrap().id)
            .collect();
        assert_eq!(ids.len(), 3, "each delivered once");
    }

    /// Issue 8, row 3 ("duplicates are counted per level"): notifications and firing
    /// alerts are counted per level, storyline or claim (a bounded label), and a claim goes
    /// out with its storyline.
    #[tokio::test]
    async fn issue_8_row_3_notifications_are_counted_per_level() {
        let data_dir = tempfile::tempdir().unwrap();
        let config = AlertSection {
            policy: AlertConfig {
                account_salt: vigie_domain::Secret::new("test salt"),
                group_wait_secs: 0,
                ..AlertConfig::default()
            },
            sinks: vec![SinkConfig {
                name: "file".into(),
                kind: SinkKind::File,
                path: data_dir.path().join("alerts.jsonl").display().to_string(),
                ..SinkConfig::default()
            }],
            ..AlertSection::default()
        };
        let metrics = Metrics::new();
        let delivery = start_delivery(&config, data_dir.path(), &metrics).unwrap();
        let mut alerting = Alerting::new(config.policy, None, delivery, metrics.clone());
        let claim = |id: u64| {
            let mut e = event(id);
            e.narrative.parent = Some(NarrativeId(1));
            e.narrative.severity = Severity::Medium;
            e
        };
        // Claims first: they wait for their storyline, then go out with it.
        alerting.on_events(&[claim(7), claim(8)]);
        let counted = |level: &str, severity: &str| {
            metrics
                .alert_notifications
                .with_label_values(&["firing", severity, level])
                .get()
        };
        assert_eq!(counted("claim", "info"), 0);
        alerting.on_events(&[event(1)]);
        assert_eq!(counted("storyline", "warning"), 1);
        assert_eq!(counted("claim", "info"), 2);
        alerting.publish_metrics();
        let firing = |severity: &str, level: &str| {
            metrics
                .alerts_firing
                .with_label_values(&[severity, level])
                .get()
        };
        assert_eq!(
            (firing("warning", "storyline"), firing("info", "claim")),
            (1, 2)
        );
    }

    /// Issue 12, row 7, at the daemon's start: a journal torn inside a UTF-8 character
    /// made `vigie run` exit; now delivery starts and the skipped line is counted.
    #[tokio::test]
    async fn issue_12_row_7_delivery_starts_on_a_torn_journal_and_counts_it() {
        let data_dir = tempfile::tempdir().unwrap();
        let outbox = data_dir.path().join("outbox");
        std::fs::create_dir_all(&outbox).unwrap();
        // A record cut inside "é" (0xC3 0xA9), as a crash mid-append leaves it.
        std::fs::write(
            outbox.join(vigie_alert_delivery::outbox::JOURNAL_FILE),
            b"{\"op\":\"accept\",\"seq\":0,\"group_key\":\"r\xC3",
        )
        .unwrap();
        let metrics = Metrics::new();
        let config = AlertSection {
            policy: AlertConfig {
                account_salt: vigie_domain::Secret::new("test salt"),
                ..AlertConfig::default()
            },
            ..AlertSection::default()
        };
        let delivery = start_delivery(&config, data_dir.path(), &metrics)
            .expect("the daemon starts despite the torn journal");
        assert_eq!(delivery.depth(), 0);
        assert_eq!(metrics.alert_outbox_corrupt_records.get(), 1);
    }
}
