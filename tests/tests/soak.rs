//! Fault soak (issue 12, "What to build" item 6): the `vigie` daemon consumes 50,000 real
//! posts (the built-in sample repeated, [`sample_posts_repeated`]) from a real Kafka-protocol
//! broker (Tansu) in a steady stream while faults hit it, and must end with exactly the
//! 50,000 posts in its index and the alerts of an uninterrupted run:
//! - SIGKILL of the daemon at 20 random points, each followed by a restart;
//! - the broker stopped and restarted on the same port and storage mid-stream;
//! - the signed webhook sink answering 503 for 10 minutes of wall time.
//!
//! Every test is `#[ignore]`d (minutes each, outside CI's budget): `scripts/soak.sh` builds
//! the binary and runs them one at a time, then prints a table of the `SOAK` lines they
//! print. Knobs (environment): `SOAK_SEED` (kill points; printed), `SOAK_POSTS` (50000),
//! `SOAK_KILLS` (20), `SOAK_RATE` (posts produced per second during the kills, 125: each
//! restart takes ~15 s, so 20 kills need ~400 s of stream), `SOAK_FAST_RATE` (1000, the
//! other scenarios),
//! `SOAK_WEBHOOK_DOWN_SECS` (600), `SOAK_BROKER_DOWN_SECS` (10).
//!
//! The kill soak uses a 1-partition topic for its alert comparison: with several
//! partitions the detector's result depends on how partitions interleave (issue 8, item 5),
//! so the 4-partition variant asserts the index and only reports whether alerts matched.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::Value;
use vigie_tests::faults::{
    all_document_ids, read_jsonl, sample_posts_repeated, PersistentBroker, SoakPost,
};
use vigie_tests::{free_port, metric_sum, Lcg, Record, TestBroker, VigieProcess, WebhookReceiver};

#[path = "soak/checks.rs"]
mod checks;

use checks::{check_webhooks, Alerts, Outcome};

/// The Standard Webhooks test secret.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Posts produced per chunk tick.
const TICK: Duration = Duration::from_millis(250);

fn knob<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The soak's sizes, from the environment.
#[derive(Debug, Clone)]
struct Knobs {
    posts: usize,
    kills: usize,
    rate: usize,
    fast_rate: usize,
    seed: u64,
    webhook_down: Duration,
    broker_down: Duration,
}

fn knobs() -> Knobs {
    #[allow(clippy::disallowed_methods)] // a fresh seed per run, printed to replay it
    let fresh = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs());
    let knobs = Knobs {
        posts: knob("SOAK_POSTS", 50_000),
        kills: knob("SOAK_KILLS", 20),
        rate: knob("SOAK_RATE", 125).max(1),
        fast_rate: knob("SOAK_FAST_RATE", 1000).max(1),
        seed: knob("SOAK_SEED", fresh),
        webhook_down: Duration::from_secs(knob("SOAK_WEBHOOK_DOWN_SECS", 600)),
        broker_down: Duration::from_secs(knob("SOAK_BROKER_DOWN_SECS", 10)),
    };
    eprintln!(
        "soak knobs: {knobs:?} (replay with SOAK_SEED={})",
        knobs.seed
    );
    knobs
}

/// The stream, built once per test binary.
fn posts(count: usize) -> Arc<Vec<SoakPost>> {
    static POSTS: OnceLock<Mutex<BTreeMap<usize, Arc<Vec<SoakPost>>>>> = OnceLock::new();
    let mut cache = POSTS.get_or_init(Default::default).lock().unwrap();
    cache
        .entry(count)
        .or_insert_with(|| Arc::new(sample_posts_repeated(count).expect("the built-in sample")))
        .clone()
}

/// Prints one summary line for `scripts/soak.sh`: `SOAK scenario key=value…`.
fn report(scenario: &str, fields: &[(&str, String)]) {
    let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("SOAK {scenario} {}", fields.join(" "));
}

// ---------------------------------------------------------------------------------------
// One daemon, its data directory, its sinks

/// A daemon configuration on one topic with a file sink (`alerts.jsonl`) and a signed
/// webhook sink, restarted on the same data directory and HTTP port after each kill.
struct Soak {
    dir: tempfile::TempDir,
    config: PathBuf,
    http_port: u16,
    receiver: WebhookReceiver,
    daemon: Option<VigieProcess>,
    starts: usize,
}

impl Soak {
    fn new(bootstrap: &str, topic: &str) -> anyhow::Result<Soak> {
        let dir = tempfile::tempdir()?;
        let receiver = WebhookReceiver::start()?;
        let http_port = free_port()?;
        let config = format!(
            r#"data_dir = "{data}"
[source]
kind = "kafka"
[kafka]
brokers = "{bootstrap}"
group_id = "vigie-soak"
topics = ["{topic}"]
dead_letter_topic = "{topic}-dead-letter"
create_topics = false
batch_max_messages = 500
batch_max_wait_ms = 100
[kafka.properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "1000"
[index]
commit_every_posts = 1000
commit_interval_secs = 1
[snapshot]
interval_secs = 2
[http]
listen = "127.0.0.1:{http_port}"
[alert.delivery]
initial_backoff_ms = 200
max_backoff_ms = 5000
[[alert.sinks]]
name = "archive"
kind = "file"
path = "{archive}"
[[alert.sinks]]
name = "hook"
kind = "webhook"
url = "{hook}"
secret = "{SECRET}"
"#,
            data = dir.path().join("data").display(),
            archive = dir.path().join("alerts.jsonl").display(),
            hook = receiver.url("/hook"),
        );
        let config_path = dir.path().join("vigie.toml");
        std::fs::write(&config_path, config)?;
        Ok(Soak {
            dir,
            config: config_path,
            http_port,
            receiver,
            daemon: None,
            starts: 0,
        })
    }

    fn start(&mut self) -> anyhow::Result<()> {
        let log = self.dir.path().join("vigie.log");
        self.daemon = Some(VigieProcess::run(&self.config, self.http_port, &log)?);
        self.starts += 1;
        Ok(())
    }

    fn daemon(&mut self) -> &mut VigieProcess {
        self.daemon.as_mut().expect("the daemon runs")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("vigie.log")).unwrap_or_default()
    }

    /// Restarts the daemon if it exited by itself (as a supervisor would) and returns why
    /// it exited, so a scenario can report it and still check what was lost.
    fn revive(&mut self) -> anyhow::Result<Option<String>> {
        let Err(exited) = self.daemon().check_alive() else {
            return Ok(None);
        };
        let first = exited
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        let cause = self
            .log()
            .lines()
            .rfind(|line| line.starts_with("error") || line.starts_with("Error"))
            .unwrap_or_default()
            .to_owned();
        self.start()?;
        Ok(Some(format!("{first}: {cause}")))
    }

    /// Kills the daemon with SIGKILL.
    fn kill(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            daemon.kill_hard();
        }
    }

    fn metrics(&self) -> Option<String> {
        match vigie_tests::http_get(self.http_port, "/metrics")? {
            (200, body) => Some(body),
            _ => None,
        }
    }

    /// Searchable documents after the last index commit.
    fn documents(&self) -> Option<u64> {
        Some(metric_sum(&self.metrics()?, "vigie_index_documents", &[]) as u64)
    }

    /// Posts the detector has observed, restored state included.
    fn posts_observed(&self) -> Option<u64> {
        match vigie_tests::http_get(self.http_port, "/api/v1/narratives?limit=1")? {
            (200, body) => serde_json::from_str::<Value>(&body).ok()?["posts_observed"].as_u64(),
            _ => None,
        }
    }

    /// Waits until every post is indexed and observed and both sinks are drained, then
    /// returns what the daemon holds.
    fn settle(&mut self, posts: &[SoakPost], timeout: Duration) -> anyhow::Result<Outcome> {
        let total = posts.len() as u64;
        let deadline = Instant::now() + timeout;
        let mut unsettled = None;
        loop {
            self.daemon().check_alive()?;
            let metrics = self.metrics().unwrap_or_default();
            let documents = metric_sum(&metrics, "vigie_index_documents", &[]) as u64;
            let pending = metric_sum(&metrics, "vigie_alert_outbox_depth", &[]);
            let observed = self.posts_observed();
            if documents == total
                && observed == Some(total)
                && pending == 0.0
                && !metrics.is_empty()
            {
                break;
            }
            if Instant::now() > deadline {
                // Checked and reported with the rest rather than hiding it.
                unsettled = Some(format!(
                    "not settled within {timeout:?}: {documents} documents, {observed:?} \
                     observed, {pending} notifications pending"
                ));
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        // A little longer: anything still in flight would show as an extra.
        std::thread::sleep(Duration::from_secs(3));
        let since = posts.iter().map(|p| p.at).min().unwrap_or(0);
        let until = posts.iter().map(|p| p.at).max().unwrap_or(0) + 1;
        let ids = all_document_ids(self.http_port, since, until)?;
        let archive_path = self.dir.path().join("alerts.jsonl");
        let archive = if archive_path.exists() {
            read_jsonl(&archive_path)?
        } else {
            Vec::new()
        };
        let dead = std::fs::read_to_string(self.dir.path().join("data/outbox/dead-letter.jsonl"))
            .unwrap_or_default();
        Ok(Outcome {
            documents: self.documents().unwrap_or(0),
            observed: self.posts_observed().unwrap_or(0),
            ids,
            alerts: Alerts::from_archive(&archive),
            archive_lines: archive.len(),
            dead_letters: dead.lines().count(),
            unsettled,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Producing in a steady stream

/// Produces the stream in chunks, `rate` posts a second, keyed by post id.
struct SteadyProducer {
    records: Vec<Record>,
    next: usize,
    chunk: usize,
    due: Instant,
}

impl SteadyProducer {
    fn new(posts: &[SoakPost], rate: usize) -> SteadyProducer {
        SteadyProducer {
            records: posts
                .iter()
                .map(|p| Record::new(p.json.clone()).with_key(p.id.clone()))
                .collect(),
            next: 0,
            chunk: (rate * TICK.as_millis() as usize / 1000).max(1),
            due: Instant::now(),
        }
    }

    fn done(&self) -> bool {
        self.next == self.records.len()
    }

    fn produced(&self) -> usize {
        self.next
    }

    /// Produces the next chunk when it is due (waiting for its acknowledgements).
    async fn pump(&mut self, broker: &TestBroker, topic: &str) -> anyhow::Result<()> {
        if self.done() || Instant::now() < self.due {
            return Ok(());
        }
        let end = (self.next + self.chunk).min(self.records.len());
        broker
            .produce_many(topic, &self.records[self.next..end])
            .await?;
        self.next = end;
        self.due += TICK;
        Ok(())
    }
}

async fn create_topics(broker: &TestBroker, topic: &str, partitions: i32) -> anyhow::Result<()> {
    broker.create_topic(topic, partitions).await?;
    broker
        .create_topic(&format!("{topic}-dead-letter"), 1)
        .await
}

/// How long a scenario may take to settle once everything is produced.
fn settle_timeout(posts: usize) -> Duration {
    Duration::from_secs(120 + posts as u64 / 100)
}

/// Ends a scenario: waits for the daemon to settle, checks its index, its webhooks and
/// (when `expected` is given) its alerts against the uninterrupted run's, prints the
/// `SOAK` line with `fields` and the common figures, and fails with every failure found
/// (`failures` holds the scenario's own). Returns the run's alerts.
fn finish(
    started: Instant,
    soak: &mut Soak,
    posts: &[SoakPost],
    expected: Option<&Alerts>,
    scenario: &str,
    mut fields: Vec<(&str, String)>,
    mut failures: Vec<String>,
) -> anyhow::Result<Alerts> {
    let outcome = soak.settle(posts, settle_timeout(posts.len()))?;
    let (distinct, lost, duplicates, index_failures) = outcome.index_failures(posts);
    failures.extend(outcome.unsettled.clone());
    failures.extend(index_failures);
    let (webhooks, webhook_failures) = check_webhooks(&soak.receiver);
    failures.extend(webhook_failures);
    // Every alert the daemon raised reached the receiver, each state change once.
    if let Some(diff) = webhooks.delivered.difference(&outcome.alerts) {
        failures.push(format!(
            "webhook deliveries differ from the file sink: {diff}"
        ));
    }
    if let Some(expected) = expected {
        let diff = outcome.alerts.difference(expected);
        let matched = expected.ids.intersection(&outcome.alerts.ids).count();
        fields.push(("matched", format!("{matched}/{}", expected.ids.len())));
        fields.push(("alerts_same", diff.is_none().to_string()));
        if let Some(diff) = diff {
            // With several partitions the detector's result depends on how they interleave
            // (issue 8, item 5): reported, not asserted.
            if scenario.ends_with("-1p") {
                failures.push(format!("alerts differ from the uninterrupted run: {diff}"));
            } else {
                eprintln!("alerts differ from the uninterrupted run (not asserted): {diff}");
            }
        }
    }
    fields.extend([
        ("posts", posts.len().to_string()),
        ("distinct_docs", distinct.to_string()),
        ("lost", lost.to_string()),
        ("duplicates", duplicates.to_string()),
        ("observed", outcome.observed.to_string()),
        ("alerts", outcome.alerts.lifecycles.len().to_string()),
        ("notifications", outcome.alerts.ids.len().to_string()),
        ("firing", outcome.alerts.firing().to_string()),
        ("resolved", outcome.alerts.resolved().to_string()),
        ("archive_lines", outcome.archive_lines.to_string()),
        ("hook_requests", webhooks.requests.to_string()),
        ("hook_refused", webhooks.refused.to_string()),
        ("hook_ids", webhooks.distinct_ids.to_string()),
        ("hook_delivered", webhooks.delivered.ids.len().to_string()),
        ("starts", soak.starts.to_string()),
        ("secs", started.elapsed().as_secs().to_string()),
    ]);
    report(scenario, &fields);
    if !failures.is_empty() {
        bail!(
            "{scenario}: {} failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    Ok(outcome.alerts)
}

/// Starts a memory broker with the soak topic and a daemon on it.
async fn start_on_memory_broker(partitions: i32) -> anyhow::Result<(TestBroker, Soak)> {
    let broker = TestBroker::start()?;
    create_topics(&broker, "soak", partitions).await?;
    let mut soak = Soak::new(&broker.bootstrap, "soak")?;
    soak.start()?;
    Ok((broker, soak))
}

// ---------------------------------------------------------------------------------------
// The uninterrupted run every scenario is compared with

/// Runs the stream once with no fault and returns its alerts (cached per partition count,
/// so the scenarios of one `cargo test` process share it).
async fn baseline(knobs: &Knobs, partitions: i32) -> anyhow::Result<Alerts> {
    static BASELINES: OnceLock<Mutex<BTreeMap<(i32, usize), Alerts>>> = OnceLock::new();
    let cache = BASELINES.get_or_init(Default::default);
    let key = (partitions, knobs.posts);
    if let Some(alerts) = cache.lock().unwrap().get(&key) {
        return Ok(alerts.clone());
    }
    let started = Instant::now();
    let posts = posts(knobs.posts);
    let (broker, mut soak) = start_on_memory_broker(partitions).await?;
    let mut producer = SteadyProducer::new(&posts, knobs.fast_rate);
    while !producer.done() {
        producer.pump(&broker, "soak").await?;
        soak.daemon().check_alive()?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let alerts = finish(
        started,
        &mut soak,
        &posts,
        None,
        &format!("baseline-{partitions}p"),
        Vec::new(),
        Vec::new(),
    )?;
    if alerts.ids.is_empty() {
        bail!("the uninterrupted run raised no alert: nothing to compare");
    }
    cache.lock().unwrap().insert(key, alerts.clone());
    Ok(alerts)
}

// ---------------------------------------------------------------------------------------
// Scenarios

/// SIGKILLs the daemon `knobs.kills` times at random points spread over the stream, each
/// once it has indexed more than at the previous kill, and restarts it every time.
async fn kill_soak(knobs: &Knobs, partitions: i32) -> anyhow::Result<()> {
    let expected = baseline(knobs, partitions).await?;
    let started = Instant::now();
    let posts = posts(knobs.posts);
    let (broker, mut soak) = start_on_memory_broker(partitions).await?;
    let mut producer = SteadyProducer::new(&posts, knobs.rate);
    let mut rng = Lcg::new(knobs.seed);
    // The k-th kill is planned at a random moment of the k-th slice of the stream's
    // production time, and happens once the daemon indexed more than at the previous one.
    let slice =
        Duration::from_secs_f64(posts.len() as f64 / knobs.rate as f64 / knobs.kills as f64);
    let plan: Vec<Duration> = (0..knobs.kills as u32)
        .map(|k| slice * k + slice.mul_f64(f64::from(rng.range(0, 1000)) / 1000.0))
        .collect();
    // (seconds since the start, posts produced, documents indexed) at each kill.
    let mut kills: Vec<(u64, usize, u64)> = Vec::new();
    let mut floor = 0u64;
    while !(producer.done() && kills.len() == knobs.kills) {
        producer.pump(&broker, "soak").await?;
        soak.daemon().check_alive()?;
        if kills.len() < knobs.kills && started.elapsed() >= plan[kills.len()] {
            let documents = soak.documents().unwrap_or(0);
            if documents > floor {
                // A random extra delay within the next second, so kills do not line up
                // with the moment progress was first seen.
                let extra = Duration::from_millis(u64::from(rng.range(0, 1000)));
                tokio::time::sleep(extra).await;
                let documents = soak.documents().unwrap_or(documents);
                soak.kill();
                kills.push((started.elapsed().as_secs(), producer.produced(), documents));
                eprintln!(
                    "kill {}: {:?} (s, produced, indexed)",
                    kills.len(),
                    kills.last()
                );
                floor = documents;
                soak.start()?;
            } else if documents >= posts.len() as u64 {
                bail!(
                    "everything was indexed before kill {}: lower SOAK_RATE",
                    kills.len() + 1
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Progress between kills holds by construction (`floor`); the figures show it.
    let progress: Vec<String> = kills.iter().map(|(_, _, d)| d.to_string()).collect();
    eprintln!("documents at each kill: {}", progress.join(" "));
    let (first, last) = (kills.first().copied(), kills.last().copied());
    finish(
        started,
        &mut soak,
        &posts,
        Some(&expected),
        &format!("sigkill-{partitions}p"),
        vec![
            ("seed", knobs.seed.to_string()),
            ("kills", kills.len().to_string()),
            ("first_kill_s", first.map_or(0, |k| k.0).to_string()),
            ("last_kill_s", last.map_or(0, |k| k.0).to_string()),
            ("produced_at_last_kill", last.map_or(0, |k| k.1).to_string()),
        ],
        Vec::new(),
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault soak, minutes: scripts/soak.sh"]
async fn soak_sigkill_20_times_loses_nothing_duplicates_nothing_same_alerts() -> anyhow::Result<()>
{
    kill_soak(&knobs(), 1).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault soak, minutes: scripts/soak.sh (4 partitions: alerts reported, issue 8)"]
async fn soak_sigkill_4_partitions_loses_nothing_duplicates_nothing() -> anyhow::Result<()> {
    kill_soak(&knobs(), 4).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault soak, minutes: scripts/soak.sh"]
async fn soak_broker_restart_mid_stream_resumes_and_loses_nothing() -> anyhow::Result<()> {
    let knobs = knobs();
    let expected = baseline(&knobs, 1).await?;
    let started = Instant::now();
    let posts = posts(knobs.posts);
    let mut broker = PersistentBroker::start()?;
    create_topics(&broker, "soak", 1).await?;
    let mut soak = Soak::new(&broker.bootstrap, "soak")?;
    soak.start()?;
    let mut producer = SteadyProducer::new(&posts, knobs.fast_rate);
    let mut at_stop = None;
    let mut exits = Vec::new();
    // Stopped once half the stream is produced and the daemon indexed some of it; the loop
    // goes on until the broker is back and everything is produced.
    while !producer.done() || at_stop.is_none() {
        producer.pump(&broker, "soak").await?;
        exits.extend(soak.revive()?);
        let documents = soak.documents().unwrap_or(0);
        if at_stop.is_none() && producer.produced() >= posts.len() / 2 && documents > 0 {
            broker.stop()?;
            at_stop = Some((started.elapsed().as_secs(), producer.produced(), documents));
            eprintln!("broker stopped: {at_stop:?} (s, produced, indexed)");
            // The daemon stays up without its broker for a while.
            let down_until = Instant::now() + knobs.broker_down;
            while Instant::now() < down_until {
                exits.extend(soak.revive()?);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            broker.restart()?;
            eprintln!("broker restarted at {:?}", started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (stopped_s, produced, documents) = at_stop.unwrap_or_default();
    finish(
        started,
        &mut soak,
        &posts,
        Some(&expected),
        "broker-restart-1p",
        vec![
            ("down_s", knobs.broker_down.as_secs().to_string()),
            ("stopped_at_s", stopped_s.to_string()),
            ("produced_at_stop", produced.to_string()),
            ("docs_at_stop", documents.to_string()),
            ("daemon_exits", exits.len().to_string()),
        ],
        exits
            .iter()
            .map(|e| format!("the daemon exited (restarted as a supervisor would): {e}"))
            .collect(),
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault soak, 10+ minutes: scripts/soak.sh"]
async fn soak_webhook_down_10_minutes_then_every_alert_delivered_once() -> anyhow::Result<()> {
    let knobs = knobs();
    let expected = baseline(&knobs, 1).await?;
    let started = Instant::now();
    let posts = posts(knobs.posts);
    let broker = TestBroker::start()?;
    create_topics(&broker, "soak", 1).await?;
    let mut soak = Soak::new(&broker.bootstrap, "soak")?;
    soak.receiver.answer_with(503);
    soak.start()?;
    let mut producer = SteadyProducer::new(&posts, knobs.fast_rate);
    let down_until = Instant::now() + knobs.webhook_down;
    while !producer.done() || Instant::now() < down_until {
        producer.pump(&broker, "soak").await?;
        soak.daemon().check_alive()?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let during = soak.receiver.requests();
    let tried: BTreeSet<&String> = during
        .iter()
        .filter_map(|r| r.headers.get("webhook-id"))
        .collect();
    let mut failures = Vec::new();
    if during.is_empty() {
        failures.push("no alert was attempted during the outage".to_owned());
    }
    soak.receiver.answer_with(200);
    let back = Instant::now();
    finish(
        started,
        &mut soak,
        &posts,
        Some(&expected),
        "webhook-down-1p",
        vec![
            ("down_s", knobs.webhook_down.as_secs().to_string()),
            ("refused_during_outage", during.len().to_string()),
            ("ids_tried_during_outage", tried.len().to_string()),
            ("settled_after_s", back.elapsed().as_secs().to_string()),
        ],
        failures,
    )?;
    Ok(())
}

/// The outage the webhook soak simulates must be shorter than the age at which the outbox
/// gives up on a notification, or the soak would test dead-lettering instead.
#[test]
#[ignore = "part of the fault soak: scripts/soak.sh"]
fn soak_outage_is_shorter_than_the_delivery_max_age() {
    let max_age = vigie_alert_delivery::DeliveryConfig::default().max_age_secs;
    let outage = knob("SOAK_WEBHOOK_DOWN_SECS", 600u64);
    report(
        "delivery-max-age",
        &[
            ("max_age_secs", max_age.to_string()),
            ("outage_secs", outage.to_string()),
        ],
    );
    assert!(
        max_age > outage,
        "alert.delivery.max_age_secs defaults to {max_age} s, not longer than the {outage} s outage"
    );
}
