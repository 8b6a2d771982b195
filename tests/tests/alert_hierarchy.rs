//! Issue 8, row 3 ("alerts follow the hierarchy"), checked with real receivers: a storyline
//! with 40 claims, through Vigie's policy and delivery, reaches
//! - a real Alertmanager (Debian's `prometheus-alertmanager`) grouping by `storyline`: one
//!   group holding the storyline and its 40 claims, sent on as one notification;
//! - Slack, Teams and a signed webhook, whose requests are checked with the receivers'
//!   reference libraries (`tests/receivers/`: PyPI `standardwebhooks` and `slack_sdk`, npm
//!   `adaptivecards`; install them with `pip install -r tests/receivers/requirements.txt`
//!   and `npm ci --prefix tests/receivers`, as `.ci/run` does).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use vigie_alert::{backtest, AlertConfig, Notification, NotificationKind};
use vigie_alert_delivery::{AlertDelivery, DeliveryConfig, Outbox, SinkConfig, SinkKind};
use vigie_domain::{
    CoordinationEvidence, Narrative, NarrativeEvent, NarrativeEventKind, NarrativeId,
    NarrativeStatus, RepresentativePost, Secret, Severity,
};
use vigie_tests::{http_get, repo_root, ReceivedRequest, TestAlertmanager, WebhookReceiver};

/// The Standard Webhooks test secret.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
}

fn narrative(id: u64, parent: Option<u64>, severity: Severity) -> Narrative {
    Narrative {
        id: NarrativeId(id),
        parent: parent.map(NarrativeId),
        label: format!("sandy shark highway {id}"),
        headline: match parent {
            None => "Hurricane Sandy: flooding in New Jersey and New York".into(),
            Some(_) => format!("Photo {id}: a shark swimming on a New Jersey highway"),
        },
        terms: Vec::new(),
        hashtags: vec!["sandy".into()],
        first_seen: at(0),
        last_seen: at(0),
        status: NarrativeStatus::Growing,
        severity,
        severity_reasons: vec!["growth 6.0× baseline".into()],
        posts_total: 40,
        posts_in_window: 30.0,
        baseline_posts_per_window: 5.0,
        growth_ratio: 6.0,
        growth_z: 7.0,
        distinct_authors: 25,
        anonymous_posts: 0,
        engagement: 0,
        languages: vec![("en".into(), 30), ("fr".into(), 10)],
        member_post_ids: Vec::new(),
        window_post_ids: Vec::new(),
        representative_post_ids: vec![format!("p{id}a"), format!("p{id}b")],
        representatives: vec![
            RepresentativePost {
                post_id: format!("p{id}a"),
                text: format!("Shark on the NJ turnpike <wow> & more, photo {id}"),
                lang: "en".into(),
                copies: 14,
            },
            RepresentativePost {
                post_id: format!("p{id}b"),
                text: "Un requin sur l'autoroute du New Jersey".into(),
                lang: "fr".into(),
                copies: 2,
            },
        ],
        coordination: CoordinationEvidence::default(),
        watch_matches: Vec::new(),
        merged_ids: Vec::new(),
    }
}

fn event(secs: i64, kind: NarrativeEventKind, narrative: Narrative) -> NarrativeEvent {
    NarrativeEvent {
        at: at(secs),
        kind,
        narrative,
    }
}

fn policy_config() -> AlertConfig {
    AlertConfig {
        account_salt: Secret::new("test salt"),
        keep_firing_for_secs: 0,
        resolve_after_secs: 600,
        group_wait_secs: 30,
        ..AlertConfig::default()
    }
}

/// The notifications of a storyline (n1) whose 40 claims appear as it fires, then fades.
fn forty_claims() -> Vec<Notification> {
    let mut events = vec![event(
        0,
        NarrativeEventKind::Created,
        narrative(1, None, Severity::High),
    )];
    for i in 0..40 {
        events.push(event(
            5 + i / 4,
            NarrativeEventKind::Created,
            narrative(100 + i as u64, Some(1), Severity::Medium),
        ));
    }
    let mut fading = narrative(1, None, Severity::High);
    fading.status = NarrativeStatus::Fading;
    events.push(event(60, NarrativeEventKind::Updated, fading));
    backtest(events, policy_config())
}

fn sink(name: &str, kind: SinkKind, url: String) -> SinkConfig {
    SinkConfig {
        name: name.into(),
        kind,
        url: Secret::new(url),
        secret: if kind == SinkKind::Webhook {
            Secret::new(SECRET)
        } else {
            Secret::default()
        },
        timeout_secs: 5,
        ..SinkConfig::default()
    }
}

/// Delivers the notifications to these sinks (firings first, then resolves, as the daemon
/// hands them over step by step) and waits until nothing is pending.
fn deliver(sinks: Vec<SinkConfig>, notifications: &[Notification]) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    runtime.block_on(async {
        let retries = DeliveryConfig {
            initial_backoff_ms: 50,
            max_backoff_ms: 500,
            max_age_secs: 60,
        };
        let delivery = AlertDelivery::start(
            &sinks,
            &retries,
            policy_config().renotify_interval_secs,
            Outbox::open(dir.path())?,
            None,
        )?;
        let (firing, resolved): (Vec<Notification>, Vec<Notification>) = notifications
            .iter()
            .cloned()
            .partition(|n| n.kind != NotificationKind::Resolved);
        delivery.deliver(&firing)?;
        delivery.deliver(&resolved)?;
        if !delivery.drain(Duration::from_secs(60)).await {
            bail!("{} deliveries still pending", delivery.depth());
        }
        Ok(())
    })
}

/// Runs a receiver check script with `input` on stdin; returns its JSON summary.
fn check(program: &str, script: &str, input: &Value) -> anyhow::Result<Value> {
    let path = repo_root().join("tests/receivers").join(script);
    let mut child = Command::new(program)
        .arg(&path)
        .current_dir(repo_root().join("tests/receivers"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("{program} {} (is {program} installed?)", path.display()))?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(input.to_string().as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "{script} refused what Vigie sent (install the receivers with `pip install -r \
             tests/receivers/requirements.txt` and `npm ci --prefix tests/receivers`):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).context("the check's summary")
}

fn bodies(requests: &[ReceivedRequest], path: &str) -> Vec<Value> {
    requests
        .iter()
        .filter(|r| r.path == path)
        .map(|r| serde_json::from_slice(&r.body).expect("JSON body"))
        .collect()
}

/// Issue 8, row 3: Slack gets one Block Kit message for the storyline and its 40 new
/// claims and one for their resolve, which `slack_sdk`'s models accept; Teams the same in
/// two Adaptive Cards that `adaptivecards` parses without a warning; the webhook 82 signed
/// requests that `standardwebhooks` verifies, each claim's with its `parent`.
#[test]
fn issue_8_row_3_grouped_messages_pass_the_receivers_reference_libraries() -> anyhow::Result<()> {
    let sent = forty_claims();
    assert_eq!(sent.len(), 82);
    let receiver = WebhookReceiver::start()?;
    deliver(
        vec![
            sink("slack", SinkKind::Slack, receiver.url("/slack")),
            sink("teams", SinkKind::Teams, receiver.url("/teams")),
            sink("hook", SinkKind::Webhook, receiver.url("/hook")),
        ],
        &sent,
    )?;
    let requests = receiver.requests();

    let slack = bodies(&requests, "/slack");
    assert_eq!(
        slack.len(),
        2,
        "one message for the firing, one for the resolve"
    );
    let summary = check("python3", "check_slack.py", &Value::Array(slack.clone()))?;
    assert_eq!(summary["messages"], 2);
    let text = slack[0].to_string();
    assert!(text.contains("40 new claims"), "{text}");
    assert!(text.contains("Photo 100: a shark swimming on a New Jersey highway"));
    assert!(
        text.contains("&lt;wow&gt; &amp; more"),
        "mrkdwn escaped: {text}"
    );
    assert!(slack[1]
        .to_string()
        .contains("40 claims resolved with the storyline"));

    let teams = bodies(&requests, "/teams");
    assert_eq!(
        teams.len(),
        2,
        "one card for the firing, one for the resolve"
    );
    let summary = check("node", "check_teams.js", &Value::Array(teams.clone()))?;
    assert_eq!(summary["messages"], 2);
    assert!(teams[0].to_string().contains("40 new claims"));

    let hooks: Vec<Value> = requests
        .iter()
        .filter(|r| r.path == "/hook")
        .map(|r| {
            json!({
                "headers": r.headers,
                "body": String::from_utf8_lossy(&r.body),
            })
        })
        .collect();
    assert_eq!(hooks.len(), 82, "webhooks take each notification");
    let summary = check(
        "python3",
        "check_webhooks.py",
        &json!({"secret": SECRET, "requests": hooks}),
    )?;
    assert_eq!(summary["verified"], 82);
    assert_eq!(summary["levels"], json!({"storyline": 2, "claim": 80}));
    assert_eq!(summary["parents"], json!({"1": 80}));
    assert_eq!(
        summary["types"],
        json!({"vigie.alert.firing": 41, "vigie.alert.resolved": 41})
    );
    Ok(())
}

/// Issue 8, row 3: grouped by `storyline` (as `deploy/alertmanager/alertmanager.yml` and
/// the test Alertmanager do), a real Alertmanager holds the storyline and its 40 claims in
/// one group and sends them on in one notification.
#[test]
fn issue_8_row_3_alertmanager_groups_a_storyline_with_its_claims() -> anyhow::Result<()> {
    let sent = forty_claims();
    let firing: Vec<Notification> = sent
        .into_iter()
        .filter(|n| n.kind == NotificationKind::Firing)
        .collect();
    let receiver = WebhookReceiver::start()?;
    let alertmanager = TestAlertmanager::start(&receiver.url("/alertmanager"))?;
    let mut am = sink("am", SinkKind::Alertmanager, String::new());
    am.url = Secret::default();
    am.urls = vec![Secret::new(alertmanager.url())];
    deliver(vec![am], &firing)?;

    let (status, text) =
        http_get(alertmanager.port, "/api/v2/alerts/groups").context("alertmanager groups")?;
    assert_eq!(status, 200, "{text}");
    let groups: Vec<Value> = serde_json::from_str(&text)?;
    let ours: Vec<&Value> = groups
        .iter()
        .filter(|g| g["labels"]["alertname"] == "VigieNarrative")
        .collect();
    assert_eq!(ours.len(), 1, "one group: {text}");
    assert_eq!(ours[0]["labels"]["storyline"], "n1");
    let alerts = ours[0]["alerts"].as_array().context("alerts")?;
    assert_eq!(alerts.len(), 41);
    let mut levels: BTreeMap<String, usize> = BTreeMap::new();
    for alert in alerts {
        *levels
            .entry(alert["labels"]["level"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
        if alert["labels"]["level"] == "claim" {
            assert_eq!(alert["labels"]["parent"], "n1");
        }
    }
    assert_eq!(
        levels,
        BTreeMap::from([("claim".to_owned(), 40), ("storyline".to_owned(), 1)])
    );

    // Alertmanager sends the group on as one conversation: every notification has the
    // group's key. (Alerts older than `group_wait`, as replayed ones are, make it flush at
    // once and send the rest of the group `group_interval` later, under the same key.)
    let narratives = |requests: &[ReceivedRequest]| -> std::collections::BTreeSet<String> {
        requests
            .iter()
            .filter(|r| r.path == "/alertmanager")
            .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .flat_map(|body| body["alerts"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a["labels"]["narrative_id"].as_str().map(str::to_owned))
            .collect()
    };
    let requests = receiver.wait_for(
        "the whole group at the receiver",
        Duration::from_secs(30),
        |requests| narratives(requests).len() == 41,
    )?;
    let keys: std::collections::BTreeSet<String> = requests
        .iter()
        .filter(|r| r.path == "/alertmanager")
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .map(|body| {
            assert_eq!(body["groupLabels"]["storyline"], "n1");
            body["groupKey"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(keys.len(), 1, "one Alertmanager group: {keys:?}");
    Ok(())
}
