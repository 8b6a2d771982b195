//! Tests of the runner: disk-full recovery, snapshot coverage after restarts.
use std::io::Write;
use std::path::{Path, PathBuf};

use super::*;
use vigie_index::IndexConfig;
use vigie_pipeline::{FileSource, FileSourceConfig, InputLimits, Pace};
use vigie_tokenize::AnalyzerConfig;

/// A small tmpfs mounted for one test (needs root, as in CI's container); unmounted
/// on drop. Gives a real "No space left on device", which no mock would.
pub(crate) struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (e.g. `"4m"`); `None`, after saying so, when mounting
    /// is not allowed here.
    pub(crate) fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status();
        match status {
            Ok(status) if status.success() => Some(SmallDisk { dir }),
            _ => {
                eprintln!("skipped: cannot mount a tmpfs here (needs root)");
                None
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system; returns the filler, to delete when space should return.
    pub(crate) fn fill(&self) -> PathBuf {
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 4096];
        while file.write_all(&chunk).is_ok() {}
        while file.write_all(&chunk[..1]).is_ok() {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: files the test's runtime still holds open must not keep it mounted.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Polls `condition` every 20 ms for up to 60 s.
pub(crate) async fn wait_for(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Issue 12 (disk full on the data dir): the index commit fails with "No space left";
/// the pipeline holds (it neither exits nor skips posts), keeps the last commit
/// intact, and once space returns indexes every post exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_12_a_full_disk_holds_the_index_and_it_resumes_when_space_returns() {
    let Some(disk) = SmallDisk::mount("8m") else {
        return;
    };
    let analyzer = Arc::new(Analyzer::new(AnalyzerConfig::default()));
    let index_config = IndexConfig {
        writer_memory_mb: 20,
        writer_threads: Some(1),
        commit_every_posts: 100,
        ..IndexConfig::default()
    };
    let index_dir = disk.path().join("index");
    let index = PostIndex::open(&index_dir, analyzer.clone(), index_config.clone()).unwrap();
    let input = tempfile::tempdir().unwrap();
    let posts = input.path().join("posts.jsonl");
    let mut lines = String::new();
    for n in 0..600 {
        lines.push_str(&format!(
            "{{\"id\":\"p{n}\",\"text\":\"post number {n} about the harvest festival in town\",\"created_at\":\"2015-11-26T10:{:02}:{:02}Z\"}}\n",
            (n / 60) % 60,
            n % 60
        ));
    }
    std::fs::write(&posts, lines).unwrap();
    let filler = disk.fill();

    let source = FileSource::start(FileSourceConfig {
        paths: vec![posts],
        pace: Pace::Max,
        batch_size: 50,
        limits: InputLimits::default(),
        rejected_path: None,
    })
    .unwrap();
    let metrics = Metrics::new();
    let stages = Stages {
        index,
        analyzer: analyzer.clone(),
        detection: None,
        snapshot_interval: Duration::from_secs(60),
    };
    let run = tokio::spawn(run_pipeline(
        source,
        stages,
        metrics.clone(),
        Arc::new(PipelineState::default()),
        CancellationToken::new(),
    ));
    let failing = metrics.storage_write_failing.with_label_values(&["index"]);
    wait_for("the index outage", || failing.get() == 1).await;
    // Held, not failed: give it a few retries on the full disk.
    let errors = metrics.storage_write_errors.with_label_values(&["index"]);
    wait_for("retries", || errors.get() >= 3).await;
    assert!(
        !run.is_finished(),
        "the pipeline waits for space rather than stopping"
    );

    std::fs::remove_file(filler).unwrap();
    let (summary, _) = run
        .await
        .unwrap()
        .expect("the pipeline resumes and completes");
    assert_eq!(failing.get(), 0);
    assert_eq!(summary.posts_read, 600);
    assert_eq!(
        summary.documents, 600,
        "every post indexed once, none skipped"
    );
    let reopened = PostIndex::open(&index_dir, analyzer, index_config).unwrap();
    assert_eq!(reopened.num_docs(), 600);
}

/// Yields Kafka posts `posts`/0 at the given offsets in batches of 10, each with the
/// checkpoint after it, then ends; records every checkpoint it is asked to commit.
struct ScriptedKafka {
    offsets: std::ops::Range<i64>,
    commits: Arc<std::sync::Mutex<Vec<Checkpoint>>>,
}

impl Source for ScriptedKafka {
    async fn next_batch(&mut self) -> Result<Option<SourceBatch>, vigie_pipeline::SourceError> {
        if self.offsets.is_empty() {
            return Ok(None);
        }
        let end = (self.offsets.start + 10).min(self.offsets.end);
        let posts: Vec<Post> = (self.offsets.start..end).map(kafka_post).collect();
        self.offsets.start = end;
        let mut checkpoint = Checkpoint::new();
        checkpoint.advance("posts", 0, end);
        Ok(Some(SourceBatch {
            consumed: vec![("posts".to_owned(), posts.len() as u64)],
            posts,
            rejections: Vec::new(),
            checkpoint,
            ..SourceBatch::default()
        }))
    }

    async fn commit(&mut self, checkpoint: &Checkpoint) -> Result<(), vigie_pipeline::SourceError> {
        self.commits.lock().unwrap().push(checkpoint.clone());
        Ok(())
    }

    fn status(&self) -> vigie_pipeline::SourceStatus {
        vigie_pipeline::SourceStatus {
            connected: true,
            lag: Vec::new(),
        }
    }
}

fn kafka_post(offset: i64) -> Post {
    let created_at = chrono::DateTime::from_timestamp(1_448_532_000 + offset, 0).unwrap();
    Post {
        id: format!("k{offset}"),
        text: format!("post number {offset} about the harvest festival in town"),
        created_at,
        author: Some(format!("author{}", offset % 7)),
        lang: None,
        platform: None,
        url: None,
        reply_to: None,
        repost_of: None,
        hashtags: Vec::new(),
        urls: Vec::new(),
        mentions: Vec::new(),
        metrics: vigie_domain::EngagementMetrics::default(),
        origin: vigie_domain::Origin::Kafka {
            topic: "posts".to_owned(),
            partition: 0,
            offset,
        },
    }
}

/// An alert configuration for tests and its delivery, with the outbox in `dir`.
fn alerting_in(
    dir: &Path,
    metrics: &Metrics,
) -> (
    vigie_alert::AlertConfig,
    Arc<vigie_alert_delivery::AlertDelivery>,
) {
    let alert_config = vigie_alert::AlertConfig {
        account_salt: vigie_domain::Secret::new("test salt"),
        ..vigie_alert::AlertConfig::default()
    };
    let delivery =
        crate::alerting::start_delivery(&crate::config::AlertSection::default(), dir, metrics)
            .unwrap();
    (alert_config, delivery)
}

/// Issue 12 (SIGKILL soak: posts never observed after repeated crashes): after a
/// crash the index's committed checkpoint is ahead of the last snapshot. A restarted
/// detector that re-reads only part of that gap must snapshot (and let the source
/// commit) only what it observed, not the index's checkpoint: otherwise the next
/// restart skips the rest of the gap forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_12_a_snapshot_covers_only_posts_the_detector_observed() {
    let data_dir = tempfile::tempdir().unwrap();
    let analyzer = Arc::new(Analyzer::new(AnalyzerConfig::default()));
    let index_config = IndexConfig {
        writer_memory_mb: 20,
        writer_threads: Some(1),
        ..IndexConfig::default()
    };
    let index_dir = data_dir.path().join("index");
    let metrics = Metrics::new();
    let (alert_config, delivery) = alerting_in(data_dir.path(), &metrics);
    let open_detection = || {
        Detection::open(
            vigie_detect::DetectorConfig::default(),
            alert_config.clone(),
            delivery.clone(),
            analyzer.clone(),
            data_dir.path(),
            true,
            metrics.clone(),
        )
        .unwrap()
    };
    let run = |offsets: std::ops::Range<i64>, detection: Option<Detection>| {
        let commits = Arc::new(std::sync::Mutex::new(Vec::new()));
        let source = ScriptedKafka {
            offsets,
            commits: commits.clone(),
        };
        let stages = Stages {
            index: PostIndex::open(&index_dir, analyzer.clone(), index_config.clone()).unwrap(),
            analyzer: analyzer.clone(),
            detection,
            snapshot_interval: Duration::from_secs(3600),
        };
        let pipeline = run_pipeline(
            source,
            stages,
            metrics.clone(),
            Arc::new(PipelineState::default()),
            CancellationToken::new(),
        );
        async move {
            let (summary, _) = pipeline.await.unwrap();
            assert!(!summary.interrupted);
            let commits = commits.lock().unwrap().clone();
            commits
        }
    };
    let committed_through = |commits: &[Checkpoint]| {
        commits
            .iter()
            .filter_map(|c| c.next_offset("posts", 0))
            .max()
    };

    // Run 1: the detector observes 0..100; the graceful end snapshots through 100.
    let commits = run(0..100, Some(open_detection().0)).await;
    assert_eq!(committed_through(&commits), Some(100));
    assert_eq!(
        open_detection()
            .0
            .observed_through()
            .next_offset("posts", 0),
        Some(100)
    );

    // The index commits 100..200 while the detector never sees them (as when the
    // daemon crashes after index commits but before the next snapshot).
    run(100..200, None).await;

    // Run 3: restored from the snapshot, the detector re-reads only 100..150.
    let (detection, _handle) = open_detection();
    assert_eq!(
        detection.observed_through().next_offset("posts", 0),
        Some(100)
    );
    let commits = run(100..150, Some(detection)).await;
    let furthest = committed_through(&commits);
    assert!(
        furthest.is_some_and(|offset| offset <= 150),
        "the source was asked to commit {furthest:?}, beyond the 150 observed: {commits:?}"
    );

    let (reopened, handle) = open_detection();
    assert_eq!(
        reopened.observed_through().next_offset("posts", 0),
        Some(150),
        "the snapshot covers what the detector observed, not the index's 200"
    );
    assert_eq!(
        handle.board.read().unwrap().counters.posts_observed,
        150,
        "every post 0..150 observed once"
    );
}

/// Yields the batches it was given, then ends.
struct ScriptedBatches(std::collections::VecDeque<SourceBatch>);

impl Source for ScriptedBatches {
    async fn next_batch(&mut self) -> Result<Option<SourceBatch>, vigie_pipeline::SourceError> {
        Ok(self.0.pop_front())
    }

    async fn commit(&mut self, _: &Checkpoint) -> Result<(), vigie_pipeline::SourceError> {
        Ok(())
    }

    fn status(&self) -> vigie_pipeline::SourceStatus {
        vigie_pipeline::SourceStatus {
            connected: true,
            lag: Vec::new(),
        }
    }
}

/// Issue 8 (the 4-partition SIGKILL test, intermittent under load): a rebalance reaches
/// the indexer as several partition events at one point of a batch, and they must reach
/// the event-time orderer together. Applied one by one, after "revoke both" the first
/// partition re-assigned (read hours ahead) set the watermark alone, and the lagging
/// partition's posts came late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_8_a_rebalance_reaches_the_orderer_as_one_change() {
    use vigie_pipeline::{PartitionEvent, PartitionEventKind};
    let data_dir = tempfile::tempdir().unwrap();
    let analyzer = Arc::new(Analyzer::new(AnalyzerConfig::default()));
    let metrics = Metrics::new();
    let (alert_config, delivery) = alerting_in(data_dir.path(), &metrics);
    let (detection, handle) = Detection::open(
        vigie_detect::DetectorConfig::default(),
        alert_config,
        delivery,
        analyzer.clone(),
        data_dir.path(),
        true,
        metrics.clone(),
    )
    .unwrap();
    let post = |partition: i32, offset: i64, minutes: i64| {
        let mut post = kafka_post(offset);
        post.id = format!("p{partition}-{offset}");
        post.created_at =
            chrono::DateTime::from_timestamp(1_448_532_000 + minutes * 60, 0).unwrap();
        post.origin = vigie_domain::Origin::Kafka {
            topic: "posts".to_owned(),
            partition,
            offset,
        };
        post
    };
    let events = |changes: &[(i32, PartitionEventKind)]| -> Vec<PartitionEvent> {
        changes
            .iter()
            .map(|&(partition, kind)| PartitionEvent {
                after_posts: 0,
                topic: "posts".to_owned(),
                partition,
                kind,
            })
            .collect()
    };
    let batch = |posts: Vec<Post>, partition_events: Vec<PartitionEvent>| SourceBatch {
        consumed: vec![("posts".to_owned(), posts.len() as u64)],
        posts,
        partition_events,
        ..SourceBatch::default()
    };
    use PartitionEventKind::{Assigned, Revoked};
    let batches = vec![
        // Partition 0 is read six hours ahead; partition 1 has delivered its first post.
        batch(
            (0..60)
                .map(|offset| post(0, offset, offset * 6))
                .chain([post(1, 0, 0)])
                .collect(),
            events(&[(0, Assigned), (1, Assigned)]),
        ),
        // A rebalance gives both back, then partition 1 catches up.
        batch(
            (1..60)
                .map(|offset| post(1, offset, offset * 6 + 3))
                .collect(),
            events(&[(0, Revoked), (1, Revoked), (0, Assigned), (1, Assigned)]),
        ),
    ];
    let stages = Stages {
        index: PostIndex::open(
            &data_dir.path().join("index"),
            analyzer.clone(),
            IndexConfig {
                writer_memory_mb: 20,
                writer_threads: Some(1),
                ..IndexConfig::default()
            },
        )
        .unwrap(),
        analyzer,
        detection: Some(detection),
        snapshot_interval: Duration::from_secs(3600),
    };
    let (summary, _) = run_pipeline(
        ScriptedBatches(batches.into()),
        stages,
        metrics,
        Arc::new(PipelineState::default()),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(summary.posts_read, 120);
    let counters = handle.board.read().unwrap().counters.clone();
    assert_eq!(counters.posts_observed, 120);
    assert_eq!(counters.late_posts, 0, "partition 1's posts came late");
}
