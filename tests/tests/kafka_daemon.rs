//! End-to-end tests of the `vigie` daemon against a real Kafka-protocol broker (Tansu):
//! exactly-once indexing of produced posts, dead-lettering, recovery from SIGKILL with no
//! loss and no duplicate, and two instances of one consumer group splitting the partitions.
//!
//! The daemon runs as a child process (`target/<profile>/vigie`, built by
//! `cargo test --workspace` because vigie-daemon has integration tests of its own). Running
//! this file alone (`cargo test -p vigie-tests`) does not rebuild that binary: run
//! `cargo build -p vigie-daemon` first.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use vigie_tests::{free_port, http_get, metric_sum, vigie_binary, Record, TestBroker};

/// A running daemon, killed on drop; its log goes to a file for failure messages.
struct Daemon {
    child: Option<Child>,
    http_port: u16,
    log_path: PathBuf,
    data_dir: PathBuf,
}

struct DaemonSetup<'a> {
    broker: &'a TestBroker,
    topic: &'a str,
    group: &'a str,
    dir: &'a Path,
}

impl Daemon {
    fn start(setup: &DaemonSetup<'_>, http_port: u16) -> anyhow::Result<Daemon> {
        let data_dir = setup.dir.join("data");
        let config_path = setup.dir.join("vigie.toml");
        let config = format!(
            r#"
data_dir = "{data_dir}"
[source]
kind = "kafka"
[kafka]
brokers = "{brokers}"
group_id = "{group}"
topics = ["{topic}"]
dead_letter_topic = "{topic}-dead-letter"
create_topics = false
batch_max_messages = 50
batch_max_wait_ms = 100
[kafka.properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "1000"
[index]
commit_every_posts = 100
commit_interval_secs = 1
[snapshot]
interval_secs = 1
[http]
listen = "127.0.0.1:{http_port}"
"#,
            data_dir = data_dir.display(),
            brokers = setup.broker.bootstrap,
            group = setup.group,
            topic = setup.topic,
        );
        std::fs::write(&config_path, config)?;
        let log_path = setup.dir.join(format!("vigie-{http_port}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let child = Command::new(vigie_binary())
            .args(["run", "--config"])
            .arg(&config_path)
            .env("VIGIE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("failed to start vigie")?;
        Ok(Daemon {
            child: Some(child),
            http_port,
            log_path,
            data_dir,
        })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.http_port, path)
    }

    /// Returns the number of searchable documents, once the HTTP server answers.
    fn documents(&self) -> Option<u64> {
        let (status, body) = self.get("/api/v1/search?q=*&limit=1")?;
        if status != 200 {
            return None;
        }
        serde_json::from_str::<serde_json::Value>(&body).ok()?["total_hits"].as_u64()
    }

    /// Returns how many posts the detector has observed, restored state included.
    fn posts_observed(&self) -> Option<u64> {
        let (status, body) = self.get("/api/v1/narratives?limit=1")?;
        if status != 200 {
            return None;
        }
        serde_json::from_str::<serde_json::Value>(&body).ok()?["posts_observed"].as_u64()
    }

    /// Returns every document's id and origin ("topic/partition@offset").
    fn documents_with_origin(&self) -> anyhow::Result<Vec<(String, String)>> {
        let (status, body) = self
            .get("/api/v1/search?q=*&limit=1000")
            .context("no answer")?;
        if status != 200 {
            bail!("search failed: {status} {body}");
        }
        let results: serde_json::Value = serde_json::from_str(&body)?;
        Ok(results["hits"]
            .as_array()
            .context("hits")?
            .iter()
            .map(|h| {
                (
                    h["id"].as_str().unwrap().to_owned(),
                    h["origin"].as_str().unwrap().to_owned(),
                )
            })
            .collect())
    }

    fn wait_for_documents(&mut self, expected: u64, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait()? {
                bail!("vigie exited with {status}; log:\n{}", self.log());
            }
            last = self.documents();
            if last == Some(expected) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        bail!(
            "expected {expected} documents, have {last:?} after {timeout:?}; log:\n{}",
            self.log()
        )
    }

    fn wait_for_log(&self, needle: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "{needle:?} not logged within {timeout:?}; log:\n{}",
            self.log()
        )
    }

    fn kill_hard(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and returns the exit status and how long the exit took.
    fn terminate(&mut self) -> anyhow::Result<(std::process::ExitStatus, Duration)> {
        let mut child = self.child.take().context("not running")?;
        let started = Instant::now();
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok((status, started.elapsed()));
            }
            if started.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                bail!("vigie ignored SIGTERM for 20 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill_hard();
    }
}

fn post(i: usize) -> Vec<u8> {
    let minute = i % 1440;
    format!(
        r#"{{"id":"post-{i}","text":"Post number {i} about the harbour fire #fire{}","created_at":"2024-03-01T{:02}:{:02}:00Z","author":"acct{}","lang":"en"}}"#,
        i % 7,
        minute / 60,
        minute % 60,
        i % 40
    )
    .into_bytes()
}

/// Records for posts `range`, spread round-robin over `partitions`.
fn posts(range: std::ops::Range<usize>, partitions: i32) -> Vec<Record> {
    range
        .map(|i| {
            Record::new(post(i))
                .with_key(format!("k{i}"))
                .to_partition(i as i32 % partitions)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produced_posts_are_indexed_once_and_bad_ones_dead_lettered() -> anyhow::Result<()> {
    let broker = TestBroker::start()?;
    broker.create_topic("posts", 3).await?;
    broker.create_topic("posts-dead-letter", 1).await?;
    let dir = tempfile::tempdir()?;
    let setup = DaemonSetup {
        broker: &broker,
        topic: "posts",
        group: "vigie-once",
        dir: dir.path(),
    };
    let mut daemon = Daemon::start(&setup, free_port()?)?;

    let mut records = posts(0..300, 3);
    // Malformed messages mixed in, each on a known partition.
    records.insert(10, Record::new(b"not json at all".to_vec()).to_partition(0));
    records.insert(
        100,
        Record::new(br#"{"id":"x","text":"no time"}"#.to_vec()).to_partition(1),
    );
    records.insert(200, Record::new(b"\xff\xfe\xfd".to_vec()).to_partition(2));
    // The same post twice (a producer retry): indexed once.
    records.push(Record::new(post(7)).to_partition(1));
    broker.produce_many("posts", records).await?;

    daemon.wait_for_documents(300, Duration::from_secs(60))?;
    let ids: BTreeSet<String> = daemon
        .documents_with_origin()?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids.len(), 300);
    assert!((0..300).all(|i| ids.contains(&format!("post-{i}"))));

    let dead = broker
        .consume_all("posts-dead-letter", 3, Duration::from_secs(20))
        .await?;
    assert_eq!(dead.len(), 3, "{dead:?}");
    let reasons: BTreeSet<&str> = dead
        .iter()
        .map(|m| m.headers["vigie.reason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        BTreeSet::from(["invalid_utf8", "missing_field", "not_json"])
    );
    let not_json = dead
        .iter()
        .find(|m| m.headers["vigie.reason"] == "not_json")
        .unwrap();
    assert_eq!(not_json.payload, b"not json at all");
    assert_eq!(not_json.headers["vigie.source.topic"], "posts");
    assert_eq!(not_json.headers["vigie.source.partition"], "0");

    let (_, metrics) = daemon.get("/metrics").context("metrics")?;
    assert!(
        metrics.contains(r#"vigie_posts_rejected_total{reason="not_json"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"vigie_source_messages_consumed_total{topic="posts"} 304"#),
        "{metrics}"
    );
    // Freshness, from the messages' produce timestamps: each valid post (the repeat too)
    // observed once when searchable and once when handed to detection, within the test.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, metrics) = daemon.get("/metrics").context("metrics")?;
        let count = |name: &str| metric_sum(&metrics, &format!("{name}_count"), &[]);
        let within_a_minute =
            |name: &str| metric_sum(&metrics, &format!("{name}_bucket"), &[("le", "60")]);
        let names = [
            "vigie_index_produce_to_searchable_seconds",
            "vigie_detect_produce_to_detection_seconds",
        ];
        if names
            .iter()
            .all(|name| count(name) == 301.0 && within_a_minute(name) == 301.0)
        {
            break;
        }
        assert!(Instant::now() < deadline, "freshness histograms: {metrics}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, ready) = daemon.get("/readyz").context("readyz")?;
    assert_eq!(status, 200, "{ready}");

    // A graceful stop exits 0 within 10 s and commits offsets: a restart reads nothing again.
    let (status, took) = daemon.terminate()?;
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        daemon.log()
    );
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    let mut restarted = Daemon::start(&setup, free_port()?)?;
    restarted.wait_for_log("kafka partitions assigned", Duration::from_secs(30))?;
    restarted.wait_for_documents(300, Duration::from_secs(30))?;
    std::thread::sleep(Duration::from_secs(2));
    let (_, metrics) = restarted.get("/metrics").context("metrics")?;
    assert!(
        !metrics.contains(r#"vigie_source_messages_consumed_total{topic="posts"}"#)
            || metrics.contains(r#"vigie_source_messages_consumed_total{topic="posts"} 0"#),
        "offsets were not committed: {metrics}"
    );
    // The detector state saved at shutdown came back with the offsets it covers.
    assert!(restarted.data_dir.join("detector.snapshot").exists());
    restarted.wait_for_log("detector state restored", Duration::from_secs(5))?;
    assert_eq!(restarted.posts_observed(), Some(300));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_then_restart_loses_nothing_and_duplicates_nothing() -> anyhow::Result<()>
{
    let broker = TestBroker::start()?;
    broker.create_topic("stream", 2).await?;
    broker.create_topic("stream-dead-letter", 1).await?;
    let dir = tempfile::tempdir()?;
    let setup = DaemonSetup {
        broker: &broker,
        topic: "stream",
        group: "vigie-kill",
        dir: dir.path(),
    };
    let total = 1000;
    let mut daemon = Daemon::start(&setup, free_port()?)?;
    daemon.wait_for_log("kafka partitions assigned", Duration::from_secs(30))?;

    // Produce in chunks while the daemon consumes, kill it with SIGKILL mid-stream, keep
    // producing while it is down, then restart it on the same data directory.
    let chunk = 100;
    let mut killed = false;
    for start in (0..total).step_by(chunk) {
        broker
            .produce_many("stream", posts(start..start + chunk, 2))
            .await?;
        tokio::time::sleep(Duration::from_millis(150)).await;
        if !killed && start >= 400 {
            // Kill only once detector state (and the offsets it covers) has been saved, so
            // the restart exercises restoring it.
            let snapshot = daemon.data_dir.join("detector.snapshot");
            let deadline = Instant::now() + Duration::from_secs(10);
            while !snapshot.exists() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(
                snapshot.exists(),
                "no detector snapshot; log:\n{}",
                daemon.log()
            );
            let before = daemon.documents().unwrap_or(0);
            assert!(
                before > 0 && before < total as u64,
                "expected a mid-stream kill, had {before} documents"
            );
            daemon.kill_hard();
            killed = true;
        }
    }
    assert!(killed);
    let mut restarted = Daemon::start(&setup, free_port()?)?;
    restarted.wait_for_documents(total as u64, Duration::from_secs(60))?;
    restarted.wait_for_log("detector state restored", Duration::from_secs(5))?;
    // The detector neither forgot the posts its snapshot covered nor counted the
    // re-delivered ones twice.
    let deadline = Instant::now() + Duration::from_secs(10);
    while restarted.posts_observed() != Some(total as u64) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        restarted.posts_observed(),
        Some(total as u64),
        "log:\n{}",
        restarted.log()
    );
    // Nothing lost, nothing twice: every id once, and no document beyond them.
    let docs = restarted.documents_with_origin()?;
    let ids: BTreeSet<&str> = docs.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(docs.len(), total);
    assert_eq!(ids.len(), total);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(restarted.documents(), Some(total as u64));
    let (status, _) = restarted.terminate()?;
    assert!(status.success());
    assert!(restarted.data_dir.join("index").is_dir());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_in_one_group_split_the_partitions() -> anyhow::Result<()> {
    let broker = TestBroker::start()?;
    broker.create_topic("shared", 4).await?;
    broker.create_topic("shared-dead-letter", 1).await?;
    let dir_a = tempfile::tempdir()?;
    let dir_b = tempfile::tempdir()?;
    let setup_a = DaemonSetup {
        broker: &broker,
        topic: "shared",
        group: "vigie-pair",
        dir: dir_a.path(),
    };
    let setup_b = DaemonSetup {
        broker: &broker,
        topic: "shared",
        group: "vigie-pair",
        dir: dir_b.path(),
    };
    let a = Daemon::start(&setup_a, free_port()?)?;
    a.wait_for_log("kafka partitions assigned", Duration::from_secs(30))?;
    let b = Daemon::start(&setup_b, free_port()?)?;
    b.wait_for_log("kafka partitions assigned", Duration::from_secs(30))?;
    // Let the group settle: A gives up half of its partitions to B.
    a.wait_for_log("kafka partitions revoked", Duration::from_secs(30))?;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let total = 400;
    broker.produce_many("shared", posts(0..total, 4)).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (na, nb) = (a.documents().unwrap_or(0), b.documents().unwrap_or(0));
        if na + nb >= total as u64 {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "only {na} + {nb} of {total} documents; logs:\nA:\n{}\nB:\n{}",
                a.log(),
                b.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let partitions = |docs: &[(String, String)]| -> BTreeSet<String> {
        docs.iter()
            .map(|(_, origin)| origin.split('@').next().unwrap().to_owned())
            .collect()
    };
    let (docs_a, docs_b) = (a.documents_with_origin()?, b.documents_with_origin()?);
    let (parts_a, parts_b) = (partitions(&docs_a), partitions(&docs_b));
    assert!(
        !docs_a.is_empty() && !docs_b.is_empty(),
        "one instance got nothing: A {parts_a:?}, B {parts_b:?}"
    );
    assert!(
        parts_a.is_disjoint(&parts_b),
        "both instances read a partition: A {parts_a:?}, B {parts_b:?}"
    );
    assert_eq!(parts_a.len() + parts_b.len(), 4);
    let ids: BTreeSet<&str> = docs_a
        .iter()
        .chain(&docs_b)
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(ids.len(), total);
    assert_eq!(docs_a.len() + docs_b.len(), total);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vigie_produce_streams_the_sample_into_a_topic() -> anyhow::Result<()> {
    let broker = TestBroker::start()?;
    broker.create_topic("demo", 3).await?;
    let output = Command::new(vigie_binary())
        .args([
            "produce",
            "--sample",
            "--topic",
            "demo",
            "--brokers",
            &broker.bootstrap,
        ])
        .args(["--property", "linger.ms=5"])
        .env("VIGIE_LOG", "warn")
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("produced 5271 messages to demo"),
        "{stdout}"
    );
    let messages = broker
        .consume_all("demo", 5271, Duration::from_secs(60))
        .await?;
    assert_eq!(messages.len(), 5271);
    // Keyed by post id, so one post always lands on the same partition.
    let first = &messages[0];
    let post: serde_json::Value = serde_json::from_slice(&first.payload)?;
    assert_eq!(
        first.key.as_deref(),
        Some(post["id"].as_str().unwrap().as_bytes())
    );
    // A bad property is a clear error, not a hang.
    let output = Command::new(vigie_binary())
        .args([
            "produce",
            "--sample",
            "--brokers",
            &broker.bootstrap,
            "--property",
            "no.such.property=1",
        ])
        .output()?;
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("Kafka client"),
        "{output:?}"
    );
    Ok(())
}
