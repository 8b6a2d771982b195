//! Checks of the fault soak: the index against the stream, the alerts of a run against
//! another's, and every request the webhook receiver got.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use vigie_tests::faults::{verify_signed_request, SoakPost};
use vigie_tests::WebhookReceiver;

use super::SECRET;

/// What a scenario ended with.
pub struct Outcome {
    pub documents: u64,
    pub observed: u64,
    /// One entry per indexed document.
    pub ids: Vec<String>,
    pub alerts: Alerts,
    pub archive_lines: usize,
    pub dead_letters: usize,
    /// Why the daemon did not reach the expected end state in time, if it did not.
    pub unsettled: Option<String>,
}

impl Outcome {
    /// Checks the index against the stream: every id once, nothing else.
    pub fn index_failures(&self, posts: &[SoakPost]) -> (usize, usize, usize, Vec<String>) {
        let distinct: BTreeSet<&str> = self.ids.iter().map(String::as_str).collect();
        let expected: BTreeSet<&str> = posts.iter().map(|p| p.id.as_str()).collect();
        let duplicates = self.ids.len() - distinct.len();
        let lost = expected.difference(&distinct).count();
        let extra = distinct.difference(&expected).count();
        let mut failures = Vec::new();
        if lost + extra + duplicates > 0 || self.documents != posts.len() as u64 {
            failures.push(format!(
                "index: {} documents, {} distinct ids, {lost} lost, {extra} unexpected, \
                 {duplicates} duplicated (expected {})",
                self.documents,
                distinct.len(),
                posts.len()
            ));
        }
        if self.observed != posts.len() as u64 {
            failures.push(format!(
                "detector observed {} posts, expected {}",
                self.observed,
                posts.len()
            ));
        }
        if self.dead_letters > 0 {
            failures.push(format!("{} notifications dead-lettered", self.dead_letters));
        }
        (distinct.len(), lost, duplicates, failures)
    }
}

/// The alerts of a run, from its file sink: every notification id, and per alert
/// (fingerprint) the sequence of its notification kinds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Alerts {
    pub ids: BTreeSet<String>,
    pub lifecycles: BTreeMap<String, Vec<(u64, String)>>,
}

impl Alerts {
    /// Reads notifications (file-sink lines or webhook `data`), each id counted once (the
    /// file sink may write a notification again after a crash, under its id).
    pub fn from_archive(notifications: &[Value]) -> Alerts {
        let mut alerts = Alerts::default();
        for notification in notifications {
            let id = notification["id"].as_str().unwrap_or_default().to_owned();
            if !alerts.ids.insert(id) {
                continue;
            }
            let fingerprint = notification["alert"]["fingerprint"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let sequence = notification["sequence"].as_u64().unwrap_or(u64::MAX);
            let kind = notification["kind"].as_str().unwrap_or_default().to_owned();
            alerts
                .lifecycles
                .entry(fingerprint)
                .or_default()
                .push((sequence, kind));
        }
        for lifecycle in alerts.lifecycles.values_mut() {
            lifecycle.sort();
        }
        alerts
    }

    pub fn firing(&self) -> usize {
        self.count("firing")
    }

    pub fn resolved(&self) -> usize {
        self.count("resolved")
    }

    fn count(&self, kind: &str) -> usize {
        self.lifecycles
            .values()
            .flatten()
            .filter(|(_, k)| k == kind)
            .count()
    }

    /// Describes how `self` differs from `expected`, or `None` when they are the same.
    pub fn difference(&self, expected: &Alerts) -> Option<String> {
        if self == expected {
            return None;
        }
        let missing: Vec<_> = expected.ids.difference(&self.ids).collect();
        let extra: Vec<_> = self.ids.difference(&expected.ids).collect();
        let mut differing = Vec::new();
        for fingerprint in expected
            .lifecycles
            .keys()
            .chain(self.lifecycles.keys())
            .collect::<BTreeSet<_>>()
        {
            let (a, b) = (
                expected.lifecycles.get(fingerprint),
                self.lifecycles.get(fingerprint),
            );
            if a != b {
                differing.push(format!("{fingerprint}: expected {a:?}, got {b:?}"));
            }
        }
        Some(format!(
            "{} notification ids missing, {} unexpected; {} alerts differ:\n{}",
            missing.len(),
            extra.len(),
            differing.len(),
            differing.join("\n")
        ))
    }
}

/// What the webhook receiver saw, checked.
pub struct Webhooks {
    pub requests: usize,
    pub refused: usize,
    pub distinct_ids: usize,
    pub delivered: Alerts,
}

/// One notification's place in its alert's life: fingerprint, firing start, storyline,
/// kind, sequence.
type StateChange = (String, String, String, String, u64);

/// Checks every request the receiver got: signed with [`SECRET`], one body per
/// `webhook-id` and one id per body and per state change ([`StateChange`]), every
/// id attempted also delivered; returns the delivered notifications and failures found.
pub fn check_webhooks(receiver: &WebhookReceiver) -> (Webhooks, Vec<String>) {
    let requests = receiver.requests();
    let mut failures = Vec::new();
    let mut body_of: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut id_of_body: BTreeMap<Vec<u8>, String> = BTreeMap::new();
    let mut id_of_change: BTreeMap<StateChange, String> = BTreeMap::new();
    let mut delivered = Vec::new();
    let mut delivered_ids = BTreeSet::new();
    for request in &requests {
        let id = request
            .headers
            .get("webhook-id")
            .cloned()
            .unwrap_or_default();
        if let Err(err) = verify_signed_request(SECRET, request) {
            failures.push(format!("webhook {id}: signature does not verify: {err}"));
        }
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let data = &body["data"];
        if data["id"] != id.as_str() {
            failures.push(format!("webhook {id}: the body names {}", data["id"]));
        }
        if let Some(previous) = body_of.insert(id.clone(), request.body.clone()) {
            if previous != request.body && failures.len() < 20 {
                failures.push(format!(
                    "webhook-id {id} sent with two bodies:\n{}\n{}",
                    String::from_utf8_lossy(&previous),
                    String::from_utf8_lossy(&request.body)
                ));
            }
        }
        let other = id_of_body.entry(request.body.clone()).or_insert(id.clone());
        if *other != id {
            failures.push(format!("one body under two ids: {other} and {id}"));
        }
        // A state change is one alert's n-th notification of one firing (its start) under
        // one storyline: an alert may legitimately fire again later, or under the storyline
        // it was merged into.
        let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
        let change = (
            text(&data["alert"]["fingerprint"]),
            text(&data["alert"]["starts_at"]),
            text(&data["alert"]["labels"]["storyline"]),
            text(&data["kind"]),
            data["sequence"].as_u64().unwrap_or(u64::MAX),
        );
        let other = id_of_change.entry(change.clone()).or_insert(id.clone());
        if *other != id {
            failures.push(format!(
                "state change {change:?} under two ids: {other} and {id}"
            ));
        }
        if (200..300).contains(&request.answered) {
            delivered_ids.insert(id.clone());
            delivered.push(data.clone());
        }
    }
    let undelivered: Vec<&String> = body_of
        .keys()
        .filter(|id| !delivered_ids.contains(*id))
        .collect();
    if !undelivered.is_empty() {
        failures.push(format!(
            "{} webhook ids attempted and never delivered: {undelivered:?}",
            undelivered.len()
        ));
    }
    let webhooks = Webhooks {
        requests: requests.len(),
        refused: requests.iter().filter(|r| r.answered >= 300).count(),
        distinct_ids: body_of.len(),
        delivered: Alerts::from_archive(&delivered),
    };
    (webhooks, failures)
}
