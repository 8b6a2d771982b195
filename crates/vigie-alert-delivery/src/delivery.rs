//! [`AlertDelivery`]: routes notifications to their sinks, accepts them into the
//! [`Outbox`], and runs one worker per sink endpoint that sends what it holds, at least
//! once, with retries, and dead-letters what cannot be delivered in time.
//!
//! Each sink endpoint (each Alertmanager of a sink counts as one) has its own queue and
//! tokio task, so a failing or hanging sink delays nothing else, and enqueueing never
//! waits on the network. A worker sends up to `max_concurrency` requests at once, at most
//! `rate_limit_per_minute`, and keeps the order of each alert's notifications (a resolve
//! never overtakes its firing). Failures (transport errors, timeouts, 408, 425, 429, 5xx)
//! are retried with exponential backoff and full jitter, or after the `Retry-After` the
//! receiver asked for, until `max_age_secs` after acceptance; other 4xx are not retried.
//! Notifications of one group go in one request where the sink kind allows (Slack, Teams,
//! Alertmanager). Each endpoint's requests are built and sent by its [`AlertSink`] (one
//! module per sink kind, in [`crate::sink`]). The wall clock is read for retry delays and
//! given to each attempt (`webhook-timestamp`, Alertmanager's `endsAt`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use vigie_domain::alert::{AlertSeverity, NarrativeLevel, Notification, NotificationKind};
use vigie_domain::Secret;

use crate::config::{DeliveryConfig, SinkConfig, SinkKind};
use crate::error::DeliveryError;
use crate::outbox::{wall_now, DeliveryOutcome, Outbox, PendingDelivery};
use crate::sink::{AlertSink, SendFailure};
use crate::stats::{DeliveryObserver, DeliveryStats};

#[cfg(test)]
mod tests;

/// One sink endpoint with its own queue.
struct Target {
    key: String,
    sink: SinkConfig,
    sender: Box<dyn AlertSink>,
}

struct QueueItem {
    delivery: PendingDelivery,
    attempts: u32,
    next_attempt: Instant,
    in_flight: bool,
}

#[derive(Default)]
struct QueueState {
    items: VecDeque<QueueItem>,
    next_send_allowed: Option<Instant>,
}

struct TargetQueue {
    target: Target,
    state: Mutex<QueueState>,
    wake: Notify,
    permits: Arc<Semaphore>,
}

impl TargetQueue {
    /// Queues a delivery for its first attempt at `now` (the caller wakes the worker).
    /// Queues new deliveries under one lock: a worker already awake must see a group
    /// whole, or it would send the part queued so far as a message of its own (found by
    /// the issue 8 receivers test: a storyline's resolve split in two Slack messages).
    fn push_new(&self, deliveries: Vec<PendingDelivery>, now: Instant) {
        let mut state = self.state.lock().expect("queue lock");
        for delivery in deliveries {
            state.items.push_back(QueueItem {
                delivery,
                attempts: 0,
                next_attempt: now,
                in_flight: false,
            });
        }
    }
}

struct Shared {
    outbox: Outbox,
    queues: BTreeMap<String, Arc<TargetQueue>>,
    delivery: DeliveryConfig,
    stats: Arc<DeliveryStats>,
    observer: Option<Arc<dyn DeliveryObserver>>,
}

impl Shared {
    fn report(
        &self,
        sink: &str,
        outcome: DeliveryOutcome,
        severity: AlertSeverity,
        latency: Option<Duration>,
    ) {
        self.stats
            .delivery_finished(sink, outcome, severity, latency);
        if let Some(observer) = &self.observer {
            observer.delivery_finished(sink, outcome, severity, latency);
        }
    }

    fn report_depth(&self, sink: &str) {
        let depth: usize = self
            .queues
            .values()
            .filter(|q| q.target.sink.name == sink)
            .map(|q| q.state.lock().expect("queue lock").items.len())
            .sum();
        self.stats.queue_depth(sink, depth);
        if let Some(observer) = &self.observer {
            observer.queue_depth(sink, depth);
        }
    }
}

/// Sends notifications to every configured sink from a durable outbox; see the module
/// docs. Dropping it stops the workers; what is pending stays in the outbox.
pub struct AlertDelivery {
    shared: Arc<Shared>,
    sinks: Vec<SinkConfig>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for AlertDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertDelivery")
            .field("targets", &self.shared.queues.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Drop for AlertDelivery {
    fn drop(&mut self) {
        for worker in &self.workers {
            worker.abort();
        }
    }
}

/// Returns whether a sink takes a notification: severity, label matchers, and for
/// re-notifications the sink's `renotify` (acked ones go to Alertmanager only, which
/// would otherwise expire the alert). Chat sinks (Slack, Teams) take a claim's
/// notification only when it is news to people: a new claim (firing), or its resolve
/// together with its storyline's; its updates, re-notifications and lone resolves go to
/// machines only.
pub fn routes_to(sink: &SinkConfig, notification: &Notification) -> bool {
    let alert = &notification.alert;
    if alert.severity < sink.min_severity {
        return false;
    }
    if alert.level == NarrativeLevel::Claim
        && matches!(sink.kind, SinkKind::Slack | SinkKind::Teams)
    {
        let news = match notification.kind {
            NotificationKind::Firing => true,
            NotificationKind::Resolved => notification.with_parent,
            NotificationKind::Updated | NotificationKind::Renotify => false,
        };
        if !news {
            return false;
        }
    }
    if !sink
        .match_labels
        .iter()
        .all(|(name, value)| alert.labels.get(name) == Some(value))
    {
        return false;
    }
    if notification.kind == NotificationKind::Renotify {
        return sink.sends_renotify()
            && (!notification.acked || sink.kind == SinkKind::Alertmanager);
    }
    true
}

fn target_keys(sink: &SinkConfig) -> Vec<(String, Option<Secret>)> {
    let endpoints = sink.endpoints();
    match endpoints.len() {
        0 => vec![(sink.name.clone(), None)],
        1 => vec![(sink.name.clone(), endpoints.into_iter().next())],
        _ => endpoints
            .into_iter()
            .enumerate()
            .map(|(index, url)| (format!("{}#{index}", sink.name), Some(url)))
            .collect(),
    }
}

impl AlertDelivery {
    /// Starts one worker per sink endpoint on the current tokio runtime (call it from
    /// within the runtime) and queues what the outbox holds. Pending deliveries for a
    /// target no longer configured are dead-lettered. `renotify_interval_secs` is the
    /// policy's (`[alert] renotify_interval_secs`): Alertmanager is told to keep an alert
    /// that long past its last re-send.
    pub fn start(
        sinks: &[SinkConfig],
        delivery: &DeliveryConfig,
        renotify_interval_secs: u64,
        outbox: Outbox,
        observer: Option<Arc<dyn DeliveryObserver>>,
    ) -> Result<AlertDelivery, DeliveryError> {
        crate::config::validate(sinks, delivery)?;
        let mut queues = BTreeMap::new();
        for sink in sinks {
            for (key, endpoint) in target_keys(sink) {
                let sender = crate::sink::build(sink, endpoint, renotify_interval_secs)?;
                queues.insert(
                    key.clone(),
                    Arc::new(TargetQueue {
                        target: Target {
                            key,
                            sink: sink.clone(),
                            sender,
                        },
                        state: Mutex::new(QueueState::default()),
                        wake: Notify::new(),
                        permits: Arc::new(Semaphore::new(match sink.kind {
                            SinkKind::File | SinkKind::Stdout => 1,
                            _ => sink.max_concurrency,
                        })),
                    }),
                );
            }
        }
        let shared = Arc::new(Shared {
            outbox,
            queues,
            delivery: delivery.clone(),
            stats: Arc::new(DeliveryStats::default()),
            observer,
        });
        let now = Instant::now();
        for delivery in shared.outbox.pending() {
            for target in &delivery.targets {
                match shared.queues.get(target) {
                    Some(queue) => queue.push_new(vec![delivery.clone()], now),
                    None => {
                        tracing::error!(target, id = %delivery.notification.id, "dead-lettered a pending notification: its sink is no longer configured");
                        shared.outbox.dead_letter(
                            &delivery,
                            target,
                            0,
                            "sink no longer configured",
                        )?;
                    }
                }
            }
        }
        let workers = shared
            .queues
            .values()
            .map(|queue| tokio::spawn(run_worker(shared.clone(), queue.clone())))
            .collect();
        for sink in sinks {
            shared.report_depth(&sink.name);
        }
        Ok(AlertDelivery {
            shared,
            sinks: sinks.to_vec(),
            workers,
        })
    }

    /// Routes notifications to their sinks and accepts them durably into the outbox;
    /// returns the number of (notification, sink endpoint) deliveries queued. Never waits
    /// on the network: callable from any thread, the indexer's included.
    pub fn deliver(&self, notifications: &[Notification]) -> Result<usize, DeliveryError> {
        let batch: Vec<(Notification, Vec<String>)> = notifications
            .iter()
            .map(|notification| {
                let targets = self
                    .sinks
                    .iter()
                    .filter(|sink| routes_to(sink, notification))
                    .flat_map(|sink| target_keys(sink).into_iter().map(|(key, _)| key))
                    .collect();
                (notification.clone(), targets)
            })
            .collect();
        let accepted = self.shared.outbox.enqueue_all(&batch)?;
        let now = Instant::now();
        let mut queued = 0;
        let mut per_target: BTreeMap<String, Vec<PendingDelivery>> = BTreeMap::new();
        for delivery in accepted {
            for target in &delivery.targets {
                if self.shared.queues.contains_key(target) {
                    per_target
                        .entry(target.clone())
                        .or_default()
                        .push(delivery.clone());
                    queued += 1;
                }
            }
        }
        let touched: Vec<String> = per_target.keys().cloned().collect();
        for (target, deliveries) in per_target {
            self.shared.queues[&target].push_new(deliveries, now);
        }
        for target in touched {
            let queue = &self.shared.queues[&target];
            queue.wake.notify_one();
            self.shared.report_depth(&queue.target.sink.name);
        }
        Ok(queued)
    }

    /// Returns the delivery counters.
    pub fn stats(&self) -> Arc<DeliveryStats> {
        self.shared.stats.clone()
    }

    /// Returns the deliveries pending in the outbox.
    pub fn depth(&self) -> usize {
        self.shared.outbox.depth()
    }

    /// Waits until nothing is pending or `timeout` passes; returns true when drained.
    /// For a clean shutdown: what is still pending after it is sent at the next start.
    pub async fn drain(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.depth() == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// What a worker found in its queue.
enum Pick {
    Send(Vec<usize>),
    WaitUntil(Option<Instant>),
}

/// Picks the next request's items: the first ready item whose alert has no earlier item
/// pending (per-alert order), plus ready items of the same group up to the sink's limit.
fn pick(state: &QueueState, now: Instant, max_group: usize) -> Pick {
    let mut blocked: BTreeSet<&str> = BTreeSet::new();
    let mut chosen: Vec<usize> = Vec::new();
    let mut chosen_fingerprints: BTreeSet<&str> = BTreeSet::new();
    let mut earliest: Option<Instant> = None;
    for (index, item) in state.items.iter().enumerate() {
        let notification = &item.delivery.notification;
        let fingerprint = notification.fingerprint();
        let ready = !item.in_flight && item.next_attempt <= now;
        let free = !blocked.contains(fingerprint) && !chosen_fingerprints.contains(fingerprint);
        if ready && free {
            let same_group = chosen.first().is_none_or(|&first| {
                state.items[first].delivery.notification.group_key == notification.group_key
            });
            if same_group && chosen.len() < max_group {
                chosen.push(index);
                chosen_fingerprints.insert(fingerprint);
                continue;
            }
        }
        if !item.in_flight && free {
            earliest = Some(earliest.map_or(item.next_attempt, |e| e.min(item.next_attempt)));
        }
        blocked.insert(fingerprint);
    }
    if chosen.is_empty() {
        Pick::WaitUntil(earliest)
    } else {
        Pick::Send(chosen)
    }
}

async fn run_worker(shared: Arc<Shared>, queue: Arc<TargetQueue>) {
    let sink = &queue.target.sink;
    let spacing = (sink.rate_limit_per_minute > 0)
        .then(|| Duration::from_secs_f64(60.0 / f64::from(sink.rate_limit_per_minute)));
    loop {
        let permit = match queue.permits.clone().acquire_owned().await {
            Ok(permit) => permit,
            Err(_) => return,
        };
        // Registered before looking, so a wake-up between the look and the wait is kept.
        let woken = queue.wake.notified();
        let batch = {
            let mut state = queue.state.lock().expect("queue lock");
            let now = Instant::now();
            match pick(&state, now, sink.kind.max_group()) {
                Pick::Send(indices) => match state.next_send_allowed {
                    Some(allowed) if allowed > now => Err(Some(allowed)),
                    _ => {
                        if let Some(spacing) = spacing {
                            state.next_send_allowed = Some(now + spacing);
                        }
                        let mut batch = Vec::with_capacity(indices.len());
                        for index in indices {
                            let item = &mut state.items[index];
                            item.in_flight = true;
                            item.attempts += 1;
                            batch.push(item.delivery.clone());
                        }
                        Ok(batch)
                    }
                },
                Pick::WaitUntil(at) => Err(at),
            }
        };
        match batch {
            Ok(batch) => {
                let shared = shared.clone();
                let queue = queue.clone();
                tokio::spawn(async move {
                    let notifications: Vec<&Notification> =
                        batch.iter().map(|d| d.notification.as_ref()).collect();
                    let result = queue.target.sender.send(&notifications, wall_now()).await;
                    finish(&shared, &queue, &batch, result);
                    drop(permit);
                    queue.wake.notify_one();
                });
            }
            Err(wait_until) => {
                drop(permit);
                match wait_until {
                    Some(at) => {
                        tokio::select! {
                            _ = woken => {}
                            _ = tokio::time::sleep_until(at) => {}
                        }
                    }
                    None => woken.await,
                }
            }
        }
    }
}

/// Returns the delay before retry number `attempts` (1-based): uniform in
/// [0, min(max, initial × 2^(attempts−1))] ("full jitter", which spreads the retries of
/// many senders hitting one recovering receiver).
fn backoff(config: &DeliveryConfig, attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(32);
    let cap = config
        .initial_backoff_ms
        .saturating_mul(1u64 << exponent)
        .min(config.max_backoff_ms);
    Duration::from_millis(fastrand::u64(0..=cap))
}

fn finish(
    shared: &Shared,
    queue: &TargetQueue,
    batch: &[PendingDelivery],
    result: Result<(), SendFailure>,
) {
    let target = &queue.target;
    let sink_name = target.sink.name.as_str();
    let now_wall = wall_now();
    let max_age = chrono::Duration::seconds(
        i64::try_from(shared.delivery.max_age_secs).unwrap_or(i64::MAX / 1000),
    );
    let mut state = queue.state.lock().expect("queue lock");
    for delivery in batch {
        let Some(position) = state
            .items
            .iter()
            .position(|item| item.delivery.seq == delivery.seq)
        else {
            continue;
        };
        let severity = delivery.notification.alert.severity;
        let id = delivery.notification.id.as_str();
        match &result {
            Ok(()) => {
                state.items.remove(position);
                let latency = (now_wall - delivery.accepted_at).to_std().ok();
                shared.report(sink_name, DeliveryOutcome::Delivered, severity, latency);
                if let Err(err) =
                    shared
                        .outbox
                        .complete(delivery.seq, &target.key, DeliveryOutcome::Delivered)
                {
                    tracing::warn!(sink = sink_name, error = %err, "failed to record a delivery; it will be sent again after a restart");
                }
                tracing::debug!(sink = sink_name, id, "notification delivered");
            }
            Err(failure) => {
                let attempts = state.items[position].attempts;
                let delay = failure
                    .retry_after
                    .unwrap_or_else(|| backoff(&shared.delivery, attempts));
                let deadline = delivery.accepted_at + max_age;
                let retry_at = now_wall + chrono::Duration::from_std(delay).unwrap_or(max_age);
                if !failure.retryable || retry_at > deadline {
                    state.items.remove(position);
                    let reason = if failure.retryable {
                        format!(
                            "max age reached after {attempts} attempts: {}",
                            failure.message
                        )
                    } else {
                        format!("not retryable: {}", failure.message)
                    };
                    tracing::error!(sink = sink_name, id, attempts, reason = %reason, "notification dead-lettered");
                    shared.report(sink_name, DeliveryOutcome::DeadLettered, severity, None);
                    if let Err(err) =
                        shared
                            .outbox
                            .dead_letter(delivery, &target.key, attempts, &reason)
                    {
                        tracing::error!(sink = sink_name, id, error = %err, "failed to write a dead letter");
                    }
                } else {
                    let item = &mut state.items[position];
                    item.in_flight = false;
                    item.next_attempt = Instant::now() + delay;
                    tracing::warn!(sink = sink_name, id, attempts, retry_in_ms = delay.as_millis() as u64, error = %failure.message, "delivery failed, will retry");
                    shared.report(sink_name, DeliveryOutcome::Retried, severity, None);
                }
            }
        }
    }
    drop(state);
    shared.report_depth(sink_name);
}
