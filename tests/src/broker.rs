//! [`TestBroker`]: a Tansu broker per test, and the rdkafka helpers that drive it.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
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

use crate::{faults, free_port, repo_root};

/// How long a broker may take to accept connections after it is spawned.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Timeout of admin, metadata and produce calls made by the helpers.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A Kafka-protocol broker (Tansu, in-memory storage) on a free loopback port, killed on drop.
pub struct TestBroker {
    /// The bootstrap address, `127.0.0.1:PORT`.
    pub bootstrap: String,
    pub(crate) child: Child,
    pub(crate) log_path: PathBuf,
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
    pub(crate) fn spawn(
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

    pub(crate) fn wait_until_listening(&mut self, port: u16) -> anyhow::Result<()> {
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

/// Installs Tansu if needed (`scripts/test-broker.sh path`) and returns its path.
pub(crate) fn tansu_binary() -> anyhow::Result<PathBuf> {
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
