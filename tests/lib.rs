//! Shared harness for Vigie's end-to-end tests.
//!
//! [`TestBroker`] runs a real Kafka-protocol broker (Tansu, installed by
//! `scripts/test-broker.sh`) on a free loopback port for the lifetime of one test, with
//! in-memory storage, so Kafka tests need neither Docker nor a shared broker. The helpers
//! create topics, produce messages and read a topic back (e.g. the dead-letter topic) with
//! plain rdkafka clients, independent of the code under test.
//!
//! What Tansu 0.6 (memory storage) does with librdkafka 2.12 (rdkafka 0.39), found while
//! writing these tests:
//! - Supported: CreateTopics through the AdminClient (several partitions; replication
//!   factor `1` or `-1` for "broker default"; a second create gives `TopicAlreadyExists`),
//!   keys, record headers, messages without payload, the idempotent producer (its first
//!   send takes ~0.5 s for InitProducerId), consumer groups (subscribe, rejoin after a member
//!   left), synchronous offset commits and committed-offset lookups.
//! - Auto-creates a missing topic on first produce (with 4 partitions), so tests create
//!   their topics explicitly first.
//! - High-water marks (seen through ListOffsets) are the base offset of the partition's last
//!   record batch plus one, which is wrong when that batch holds several records; see
//!   [`TestBroker::high_watermarks`]. Consumer lag, computed by librdkafka from the
//!   high-water mark, is then -1 (unknown) instead of 0, and Vigie reports no lag.
//! - A consumer-group join waits for the group's rebalance delay: ~24 s with librdkafka's
//!   default `session.timeout.ms` (45 s), ~3.5 s with `session.timeout.ms=6000`, so tests
//!   pass [`TestBroker::consumer_properties`]. The broker starts in ~50 ms.
#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

/// How long a broker may take to accept connections after it is spawned.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Timeout of admin, metadata and produce calls made by the helpers.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A Kafka-protocol broker (Tansu, in-memory storage) on a free loopback port, killed on drop.
pub struct TestBroker {
    /// The bootstrap address, `127.0.0.1:PORT`.
    pub bootstrap: String,
    child: Child,
    log_path: PathBuf,
    // Holds the log file's directory until the broker is gone.
    _log_dir: tempfile::TempDir,
}

/// One message to produce.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// Target partition; `None` lets the partitioner choose (by key when there is one).
    pub partition: Option<i32>,
    /// The key, if any.
    pub key: Option<Vec<u8>>,
    /// The payload; `None` produces a message without payload (a tombstone).
    pub payload: Option<Vec<u8>>,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
}

impl Record {
    /// Returns a record carrying `payload`, to a partition of the partitioner's choice.
    pub fn new(payload: impl Into<Vec<u8>>) -> Record {
        Record {
            payload: Some(payload.into()),
            ..Record::default()
        }
    }

    /// Returns the record with no payload at all.
    pub fn tombstone() -> Record {
        Record::default()
    }

    /// Returns the record sent to `partition`.
    pub fn to_partition(mut self, partition: i32) -> Record {
        self.partition = Some(partition);
        self
    }

    /// Returns the record with `key`.
    pub fn with_key(mut self, key: impl Into<Vec<u8>>) -> Record {
        self.key = Some(key.into());
        self
    }

    /// Returns the record with one more header.
    pub fn with_header(mut self, key: &str, value: &str) -> Record {
        self.headers.push((key.to_owned(), value.to_owned()));
        self
    }
}

/// One message read back by [`TestBroker::consume_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedMessage {
    /// The payload; empty when the message had none.
    pub payload: Vec<u8>,
    /// The key, if any.
    pub key: Option<Vec<u8>>,
    /// Headers by name (the last value wins for repeated names); values as UTF-8 (lossy).
    pub headers: BTreeMap<String, String>,
    /// The partition it was read from.
    pub partition: i32,
    /// Its offset in that partition.
    pub offset: i64,
}

impl TestBroker {
    /// Starts a broker on a free loopback port and waits until it accepts connections.
    pub fn start() -> anyhow::Result<TestBroker> {
        let log_dir =
            tempfile::tempdir().context("failed to create a directory for the broker log")?;
        TestBroker::spawn(free_port()?, "memory://tansu/", &[], log_dir)
    }

    /// Starts Tansu on `port` with `storage` and extra environment `env`, logging into
    /// `log_dir`, and waits until it accepts connections.
    fn spawn(
        port: u16,
        storage: &str,
        env: &[(&str, String)],
        log_dir: tempfile::TempDir,
    ) -> anyhow::Result<TestBroker> {
        let log_path = log_dir.path().join("tansu.log");
        let log = std::fs::File::create(&log_path).context("failed to create the broker log")?;
        let child = faults::tansu_command(port, storage)?
            .envs(env.iter().cloned())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("failed to spawn tansu")?;
        let mut broker = TestBroker {
            bootstrap: format!("127.0.0.1:{port}"),
            child,
            log_path,
            _log_dir: log_dir,
        };
        broker.wait_until_listening(port)?;
        Ok(broker)
    }

    fn wait_until_listening(&mut self, port: u16) -> anyhow::Result<()> {
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "tansu exited with {status} before listening; log:\n{}",
                    self.log()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "tansu did not listen on {address} within {START_TIMEOUT:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Returns the broker's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_else(|err| format!("(no log: {err})"))
    }

    /// Returns librdkafka properties that make consumer-group joins fast against Tansu.
    ///
    /// Tansu delays a group's first rebalance by roughly half the session timeout, so the
    /// librdkafka default (45 s) makes every join take ~20 s.
    pub fn consumer_properties() -> BTreeMap<String, String> {
        [
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "1000"),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
    }

    fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        config
    }

    /// Creates a topic with `partitions` partitions; an existing topic is an error.
    pub async fn create_topic(&self, name: &str, partitions: i32) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> = self
            .client_config()
            .create()
            .context("failed to create an admin client")?;
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let options = AdminOptions::new().operation_timeout(Some(CALL_TIMEOUT));
        let results = admin
            .create_topics([&topic], &options)
            .await
            .context("CreateTopics failed")?;
        for result in results {
            if let Err((topic, code)) = result {
                bail!("failed to create topic {topic}: {code}");
            }
        }
        // Creation is asynchronous on real brokers; wait until the metadata shows it all.
        let deadline = Instant::now() + CALL_TIMEOUT;
        while self.partition_count(name)? != partitions as usize {
            if Instant::now() >= deadline {
                bail!("topic {name} did not show {partitions} partitions within {CALL_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Returns the number of partitions of `topic` (0 if it does not exist).
    pub fn partition_count(&self, topic: &str) -> anyhow::Result<usize> {
        let consumer: BaseConsumer = self.client_config().create()?;
        let metadata = consumer.fetch_metadata(Some(topic), CALL_TIMEOUT)?;
        Ok(metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map_or(0, |t| t.partitions().len()))
    }

    /// Produces one message and waits for its acknowledgement; returns its (partition, offset).
    pub async fn produce(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
    ) -> anyhow::Result<(i32, i64)> {
        let record = Record {
            partition: None,
            key: key.map(<[u8]>::to_vec),
            payload: payload.map(<[u8]>::to_vec),
            headers: Vec::new(),
        };
        let mut delivered = self
            .produce_many(topic, std::slice::from_ref(&record))
            .await?;
        Ok(delivered.remove(0))
    }

    /// Produces `records` (a `Vec` or a slice) in order, all in flight at once (so librdkafka
    /// batches them), and waits for every acknowledgement; returns their (partition, offset)
    /// in the same order.
    pub async fn produce_many(
        &self,
        topic: &str,
        records: impl AsRef<[Record]>,
    ) -> anyhow::Result<Vec<(i32, i64)>> {
        let records = records.as_ref();
        let producer: FutureProducer = self
            .client_config()
            .set("acks", "all")
            .set("linger.ms", "5")
            .create()
            .context("failed to create a producer")?;
        let mut pending = Vec::with_capacity(records.len());
        for record in records {
            let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
            for (key, value) in &record.headers {
                headers = headers.insert(Header {
                    key,
                    value: Some(value.as_bytes()),
                });
            }
            let mut outgoing = FutureRecord::<[u8], [u8]>::to(topic).headers(headers);
            if let Some(partition) = record.partition {
                outgoing = outgoing.partition(partition);
            }
            if let Some(key) = &record.key {
                outgoing = outgoing.key(key);
            }
            if let Some(payload) = &record.payload {
                outgoing = outgoing.payload(payload);
            }
            // Test inputs are far below librdkafka's queue size: a full queue is a test bug.
            let delivery = producer
                .send_result(outgoing)
                .map_err(|(err, _)| err)
                .context("failed to enqueue")?;
            pending.push(delivery);
        }
        let mut delivered = Vec::with_capacity(pending.len());
        for delivery in pending {
            let delivery = delivery.await.context("the producer dropped a message")?;
            let delivery = delivery
                .map_err(|(err, _)| err)
                .context("failed to produce")?;
            delivered.push((delivery.partition, delivery.offset));
        }
        Ok(delivered)
    }

    /// Returns the high-water mark (next offset to be written) of every partition of `topic`.
    ///
    /// Tansu 0.6 quirk: it reports the base offset of a partition's last record batch plus
    /// one, which is only right when that batch holds a single record. Tests that compare
    /// against watermarks produce each partition's last message on its own.
    pub fn high_watermarks(&self, topic: &str) -> anyhow::Result<BTreeMap<i32, i64>> {
        let consumer: BaseConsumer = self.client_config().create()?;
        let mut marks = BTreeMap::new();
        for partition in 0..self.partition_count(topic)? as i32 {
            let (_low, high) = consumer.fetch_watermarks(topic, partition, CALL_TIMEOUT)?;
            marks.insert(partition, high);
        }
        Ok(marks)
    }

    /// Reads every partition of `topic` from the beginning, without a consumer group, until
    /// `expected` messages arrived or `timeout` passed; returns what was read, ordered by
    /// (partition, offset). Waits a little longer than needed to catch unexpected extras.
    pub async fn consume_all(
        &self,
        topic: &str,
        expected: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<ConsumedMessage>> {
        let topic = topic.to_owned();
        let config = self.client_config();
        let partitions = self.partition_count(&topic)? as i32;
        if partitions == 0 {
            bail!("topic {topic} does not exist");
        }
        tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<ConsumedMessage>> {
            // librdkafka wants a group id even for manual assignment; nothing joins or commits.
            let consumer: BaseConsumer = config
                .clone()
                .set("group.id", "vigie-tests-reader")
                .set("enable.auto.commit", "false")
                .set("enable.partition.eof", "false")
                .create()?;
            let mut assignment = TopicPartitionList::new();
            for partition in 0..partitions {
                assignment.add_partition_offset(&topic, partition, Offset::Beginning)?;
            }
            consumer.assign(&assignment)?;
            let deadline = Instant::now() + timeout;
            let mut messages = Vec::new();
            let mut grace_until = None;
            loop {
                let now = Instant::now();
                let stop_at = grace_until.unwrap_or(deadline);
                if now >= stop_at {
                    break;
                }
                if messages.len() >= expected && grace_until.is_none() {
                    // Keep polling briefly: a duplicate or stray message must fail the test.
                    grace_until = Some(now + Duration::from_millis(500));
                    continue;
                }
                match consumer.poll(stop_at - now) {
                    None => {}
                    Some(Err(err)) => bail!("failed to read {topic}: {err}"),
                    Some(Ok(message)) => {
                        let mut headers = BTreeMap::new();
                        if let Some(borrowed) = message.headers() {
                            for header in borrowed.iter() {
                                let value = header
                                    .value
                                    .map(String::from_utf8_lossy)
                                    .unwrap_or_default();
                                headers.insert(header.key.to_owned(), value.into_owned());
                            }
                        }
                        messages.push(ConsumedMessage {
                            payload: message.payload().unwrap_or_default().to_vec(),
                            key: message.key().map(<[u8]>::to_vec),
                            headers,
                            partition: message.partition(),
                            offset: message.offset(),
                        });
                    }
                }
            }
            messages.sort_by_key(|m| (m.partition, m.offset));
            Ok(messages)
        })
        .await?
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Returns the repository root (the parent of this crate's directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Installs Tansu if needed (`scripts/test-broker.sh path`) and returns its path.
fn tansu_binary() -> anyhow::Result<PathBuf> {
    let script = repo_root().join("scripts/test-broker.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg("path")
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("failed to run {}", script.display()))?;
    if !output.status.success() {
        bail!("{} path failed with {}", script.display(), output.status);
    }
    let path = String::from_utf8(output.stdout)?
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned();
    if path.is_empty() {
        bail!("{} path printed nothing", script.display());
    }
    Ok(PathBuf::from(path))
}

/// Returns a loopback port that was free a moment ago (the OS picks it).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("failed to bind a loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// Sends `GET path` to `127.0.0.1:port` and returns the status code and body, or `None`
/// when nothing answers (yet). HTTP/1.0, so no server answers with a chunked body. Enough
/// for health, metrics and JSON APIs without an HTTP client in every test.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// One HTTP request received by a [`WebhookReceiver`].
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    /// Method, e.g. `POST`.
    pub method: String,
    /// Path with query.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: BTreeMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
    /// The status the receiver answered with.
    pub answered: u16,
}

/// A minimal HTTP server on a free loopback port that records every request and answers
/// with a status the test controls (e.g. 503 to simulate an outage), standing in for a
/// webhook endpoint, Slack, Teams or Alertmanager's receiver.
pub struct WebhookReceiver {
    /// The port it listens on.
    pub port: u16,
    received: std::sync::Arc<std::sync::Mutex<Vec<ReceivedRequest>>>,
    status: std::sync::Arc<std::sync::atomic::AtomicU16>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl WebhookReceiver {
    /// Starts the receiver answering 200.
    pub fn start() -> anyhow::Result<WebhookReceiver> {
        use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = TcpListener::bind("127.0.0.1:0").context("failed to bind the receiver")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s, st) = (received.clone(), status.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let answered = s.load(Ordering::Relaxed);
                        if let Some(mut request) = serve_one(stream, answered) {
                            request.answered = answered;
                            r.lock().unwrap().push(request);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Ok(WebhookReceiver {
            port,
            received,
            status,
            stop,
        })
    }

    /// Returns `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Answers every following request with `status`.
    pub fn answer_with(&self, status: u16) {
        self.status
            .store(status, std::sync::atomic::Ordering::Relaxed);
    }

    /// Returns every request received so far.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `predicate` holds for the received requests, or fails after `timeout`.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        predicate: impl Fn(&[ReceivedRequest]) -> bool,
    ) -> anyhow::Result<Vec<ReceivedRequest>> {
        let deadline = Instant::now() + timeout;
        loop {
            let requests = self.requests();
            if predicate(&requests) {
                return Ok(requests);
            }
            if Instant::now() > deadline {
                bail!(
                    "{what}: not seen within {timeout:?}; received {} requests",
                    requests.len()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn serve_one(mut stream: TcpStream, status: u16) -> Option<ReceivedRequest> {
    use std::io::{BufRead, BufReader, Read, Write};
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = BTreeMap::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let reason = if status < 300 { "OK" } else { "Unavailable" };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    Some(ReceivedRequest {
        method,
        path,
        headers,
        body,
        answered: status,
    })
}

/// A real Alertmanager (Debian's `prometheus-alertmanager`) on a free loopback port, routing
/// every alert to one webhook receiver with short group timings, killed on drop.
pub struct TestAlertmanager {
    /// Its port.
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl TestAlertmanager {
    /// Starts Alertmanager with a configuration routing everything to `webhook_url`.
    pub fn start(webhook_url: &str) -> anyhow::Result<TestAlertmanager> {
        let binary = Path::new("/usr/bin/prometheus-alertmanager");
        if !binary.exists() {
            bail!(
                "{} is missing: apt-get install prometheus-alertmanager (.ci/run does)",
                binary.display()
            );
        }
        let dir = tempfile::tempdir()?;
        let config = format!(
            "route:\n  receiver: test\n  group_by: [alertname, storyline]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: test\n    webhook_configs:\n      - url: {webhook_url}\n        send_resolved: true\n"
        );
        let config_path = dir.path().join("alertmanager.yml");
        std::fs::write(&config_path, config)?;
        let port = free_port()?;
        let log = std::fs::File::create(dir.path().join("alertmanager.log"))?;
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let manager = TestAlertmanager {
            port,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while http_get(port, "/-/ready").map(|(s, _)| s) != Some(200) {
            if Instant::now() > deadline {
                bail!("alertmanager not ready on {port}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(manager)
    }

    /// Returns `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for TestAlertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small deterministic pseudo-random generator (64-bit LCG, Knuth's MMIX constants), so
/// synthetic streams are the same on every run without a `rand` dependency.
#[derive(Debug, Clone)]
pub struct Lcg(u64);

impl Lcg {
    /// Returns a generator seeded with `seed`.
    pub fn new(seed: u64) -> Lcg {
        Lcg(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// Returns the next 31 random bits.
    pub fn next_u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }

    /// Returns a number in `low..=high` (slightly biased for huge ranges; fine for tests).
    pub fn range(&mut self, low: u32, high: u32) -> u32 {
        low + self.next_u32() % (high - low + 1)
    }
}

/// Event time at which [`synthetic_hoax_stream`] starts: 2024-03-01T00:00:00Z.
pub const SYNTHETIC_START_UNIX: i64 = 1_709_251_200;

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The text of every post of the coordinated hoax in [`synthetic_hoax_stream`] (with the
/// link suffix `a0`, `a1` or `a2`).
pub const HOAX_TEXT: &str =
    "BREAKING: harbour fire was set on purpose by migrants, police hide the truth #HarbourFire http://hoax.example.com/a";

/// Returns a deterministic JSONL stream of 8 hours of posts from 2024-03-01T00:00:00Z in
/// which one coordinated narrative fires and then fades:
/// - background: 2 posts a minute (at :00 and :20) from 300 accounts (`user1`…`user300`),
///   "Today the W1 and the W2 near the W3 W4 N" with 4 distinct generic English words and a
///   random number;
/// - from 04:00 to 04:20, 80 near-identical posts (one every 15 s) from 60 accounts
///   (`troll0`…`troll59`): [`HOAX_TEXT`] followed by `0`, `1` or `2`.
///
/// Posts are in `created_at` order (background first at equal times). A port of the
/// Python generator that was checked with `vigie replay` and a file sink: with
/// `resolve_after_secs = 600`, `keep_firing_for_secs = 300` and `group_wait_secs = 0` the
/// hoax alert ("harbour migrant truth polic break #harbourfire") fires at about 04:02,
/// is updated to critical and resolves at about 06:10. A background narrative also fires
/// at about 00:04 (cold start: every word bursts while baselines are empty).
pub fn synthetic_hoax_stream() -> String {
    const WORDS: [&str; 20] = [
        "city", "council", "meeting", "traffic", "weather", "football", "market", "school",
        "concert", "rain", "train", "museum", "park", "festival", "bakery", "library", "election",
        "budget", "hospital", "bridge",
    ];
    let mut rng = Lcg::new(7);
    // (event time, order of creation, line)
    let mut posts: Vec<(i64, usize, String)> = Vec::new();
    let mut i = 0;
    for minute in 0..8 * 60 {
        for k in 0..2 {
            i += 1;
            let mut pool: Vec<&str> = WORDS.to_vec();
            let mut words = Vec::with_capacity(4);
            for _ in 0..4 {
                let pick = rng.range(0, pool.len() as u32 - 1) as usize;
                words.push(pool.swap_remove(pick));
            }
            let author = rng.range(1, 300);
            let number = rng.range(1, 1_000_000);
            let at = SYNTHETIC_START_UNIX + minute * 60 + k * 20;
            let post = serde_json::json!({
                "id": format!("bg{i}"),
                "created_at": rfc3339(at),
                "author": format!("user{author}"),
                "lang": "en",
                "text": format!(
                    "Today the {} and the {} near the {} {} {number}",
                    words[0], words[1], words[2], words[3]
                ),
            });
            posts.push((at, posts.len(), post.to_string()));
        }
    }
    for j in 0..80i64 {
        let at = SYNTHETIC_START_UNIX + 240 * 60 + j * 15;
        let post = serde_json::json!({
            "id": format!("hoax{j}"),
            "created_at": rfc3339(at),
            "author": format!("troll{}", j % 60),
            "lang": "en",
            "text": format!("{HOAX_TEXT}{}", j % 3),
        });
        posts.push((at, posts.len(), post.to_string()));
    }
    posts.sort_by_key(|(at, order, _)| (*at, *order));
    let mut out = String::new();
    for (_, _, line) in posts {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Returns the `vigie` binary next to the running test's executable
/// (`target/<profile>/deps/TEST-HASH` → `target/<profile>/vigie`), or the one
/// `TEST_VIGIE_BINARY` names (to check that a test fails on an older build).
pub fn vigie_binary() -> PathBuf {
    if let Some(binary) = std::env::var_os("TEST_VIGIE_BINARY") {
        return PathBuf::from(binary);
    }
    let exe = std::env::current_exe().expect("the test knows its path");
    let binary = exe
        .parent()
        .and_then(Path::parent)
        .expect("target layout")
        .join("vigie");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build -p vigie-daemon` (or `cargo test --workspace`)",
        binary.display()
    );
    binary
}

/// A `vigie` child process whose standard output and error go to a log file (appended,
/// so a restarted daemon keeps one log); killed (SIGKILL) on drop.
pub struct VigieProcess {
    child: Option<Child>,
    /// Its HTTP port (from the configuration it was given).
    pub http_port: u16,
    /// Its log file.
    pub log_path: PathBuf,
}

impl VigieProcess {
    /// Starts `vigie ARGS…` with `RUST_LOG`-style level `info`, logging to `log_path`.
    pub fn spawn(args: &[&str], http_port: u16, log_path: &Path) -> anyhow::Result<VigieProcess> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .with_context(|| format!("failed to open {}", log_path.display()))?;
        let child = Command::new(vigie_binary())
            .args(args)
            .env("VIGIE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("failed to start vigie")?;
        Ok(VigieProcess {
            child: Some(child),
            http_port,
            log_path: log_path.to_owned(),
        })
    }

    /// Starts `vigie run --config CONFIG`.
    pub fn run(config: &Path, http_port: u16, log_path: &Path) -> anyhow::Result<VigieProcess> {
        let config = config.to_str().context("config path is not UTF-8")?;
        VigieProcess::spawn(&["run", "--config", config], http_port, log_path)
    }

    /// Returns the log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_else(|err| format!("(no log: {err})"))
    }

    /// Its process id while it runs (for /proc readings such as peak memory).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `GET path` on its HTTP port.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.http_port, path)
    }

    /// `GET path` as JSON, when it answers 200 with JSON.
    pub fn get_json(&self, path: &str) -> Option<serde_json::Value> {
        match self.get(path)? {
            (200, body) => serde_json::from_str(&body).ok(),
            _ => None,
        }
    }

    /// Fails if the process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut() {
            if let Some(status) = child.try_wait()? {
                bail!("vigie exited with {status}; log:\n{}", self.log());
            }
        }
        Ok(())
    }

    /// Waits until `probe` returns `Some`, failing (with the log) after `timeout` or if the
    /// process exits; polls every 100 ms.
    pub fn wait_for<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut probe: impl FnMut(&VigieProcess) -> Option<T>,
    ) -> anyhow::Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = probe(self) {
                return Ok(value);
            }
            self.check_alive()?;
            if Instant::now() > deadline {
                bail!(
                    "{what}: not seen within {timeout:?}; vigie log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the process to exit by itself (e.g. `vigie replay`) and returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().context("not running")?;
        loop {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!(
                    "vigie did not exit within {timeout:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the process with SIGKILL (a crash) and reaps it.
    pub fn kill_hard(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for VigieProcess {
    fn drop(&mut self) {
        self.kill_hard();
    }
}

/// Returns the sum of the samples of `name` in a Prometheus text exposition whose labels
/// include every `name="value"` pair of `labels`.
pub fn metric_sum(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            labels
                .iter()
                .all(|(key, wanted)| label_text.contains(&format!("{key}=\"{wanted}\"")))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// Sends `METHOD path` (with a JSON body when given) to `127.0.0.1:port` over HTTP/1.0 and
/// returns the status code and body, or `None` when nothing answers.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let body = body.map(ToString::to_string).unwrap_or_default();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// Runs an instant PromQL query against a Prometheus on `127.0.0.1:port` and returns the
/// JSON answer; an HTTP error or a non-success status is an error naming the query.
pub fn prometheus_query(port: u16, promql: &str) -> anyhow::Result<serde_json::Value> {
    let encoded: String = promql
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (status, body) = http_get(port, &format!("/api/v1/query?query={encoded}"))
        .context("prometheus does not answer")?;
    let value: serde_json::Value = serde_json::from_str(&body).with_context(|| body.clone())?;
    if status != 200 || value["status"] != "success" {
        bail!("query {promql} failed: {status} {body}");
    }
    Ok(value)
}

/// Returns the first sample's value of an instant-query answer.
pub fn prometheus_scalar(answer: &serde_json::Value) -> Option<f64> {
    answer["data"]["result"].get(0)?["value"][1]
        .as_str()?
        .parse()
        .ok()
}

/// A real Prometheus (Debian's `prometheus`) started with the shipped
/// `deploy/prometheus/prometheus.yml` and `rules.yml`, its scrape target pointed at a Vigie
/// on `127.0.0.1:vigie_port` and its intervals shortened to one second; killed on drop.
pub struct TestPrometheus {
    /// Its port.
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl TestPrometheus {
    /// Starts Prometheus scraping the Vigie on `vigie_port`.
    pub fn start(vigie_port: u16) -> anyhow::Result<TestPrometheus> {
        let binary = Path::new("/usr/bin/prometheus");
        if !binary.exists() {
            bail!(
                "{} is missing: apt-get install prometheus (.ci/run does)",
                binary.display()
            );
        }
        let shipped =
            std::fs::read_to_string(repo_root().join("deploy/prometheus/prometheus.yml"))?;
        if !(shipped.contains("job_name: vigie") && shipped.contains("vigie:9464")) {
            bail!("deploy/prometheus/prometheus.yml no longer scrapes vigie:9464 as job vigie");
        }
        let rules = repo_root().join("deploy/prometheus/rules.yml");
        let config = shipped
            .replace("vigie:9464", &format!("127.0.0.1:{vigie_port}"))
            .replace("scrape_interval: 15s", "scrape_interval: 1s")
            .replace("evaluation_interval: 15s", "evaluation_interval: 1s")
            .replace("  - rules.yml", &format!("  - {}", rules.display()));
        let dir = tempfile::tempdir()?;
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config)?;
        let port = free_port()?;
        let log = std::fs::File::create(dir.path().join("prometheus.log"))?;
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("failed to start prometheus")?;
        Ok(TestPrometheus { port, child, dir })
    }

    /// Returns Prometheus' log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for TestPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kills and reaps a child process when dropped, so a failing test leaves nothing running.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ---------------------------------------------------------------------------------------
// Fault soak (issue 12): a broker that survives a restart, the repeated sample, exact
// index listing, webhook verification. In tests/src/faults.rs.

#[path = "src/faults.rs"]
pub mod faults;
