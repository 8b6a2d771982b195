//! `FileSource`: JSONL posts from files (plain or gzip) or standard input, in file order,
//! as fast as possible or paced at N× event time.
//!
//! Reading and decoding run on a dedicated thread (blocking I/O and CPU work stay off the
//! async runtime); batches reach [`FileSource::next_batch`] through a small bounded
//! channel, so a slow index applies back-pressure to the reader. Rejected lines go to
//! `rejected.jsonl` with their path, line number and reason before their batch is handed
//! on, so nothing is dropped silently.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use flate2::read::MultiGzDecoder;
use serde::Serialize;
use tokio::sync::mpsc;
use vigie_domain::{decode_post, Checkpoint, Origin, Rejection};

use crate::{InputLimits, RejectedInput, SourceBatch, SourceError, SourceStatus};

/// How fast a file is replayed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// As fast as the pipeline takes it.
    Max,
    /// At this multiple of event time: `Speed(60.0)` replays an hour of posts in a minute.
    Speed(f64),
}

/// What to read and how.
#[derive(Debug, Clone)]
pub struct FileSourceConfig {
    /// Files to read in order; `-` is standard input. `.gz` (or gzip magic) is decompressed.
    pub paths: Vec<PathBuf>,
    /// Replay speed.
    pub pace: Pace,
    /// Largest batch handed on at once.
    pub batch_size: usize,
    /// Validation limits.
    pub limits: InputLimits,
    /// Where rejected lines are appended; `None` only counts them (benchmarks).
    pub rejected_path: Option<PathBuf>,
}

/// Reads posts from files; see the module docs.
pub struct FileSource {
    batches: mpsc::Receiver<Result<SourceBatch, SourceError>>,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
}

/// Bytes read so far against the total size of the inputs (compressed size for gzip).
#[derive(Debug, Default)]
struct Progress {
    bytes_read: AtomicU64,
    bytes_total: AtomicU64,
    opened: AtomicBool,
}

impl FileSource {
    /// Starts reading. Fails at once if a path cannot be opened, before anything is read.
    pub fn start(config: FileSourceConfig) -> Result<FileSource, SourceError> {
        let mut total = 0u64;
        for path in &config.paths {
            if path.as_os_str() != "-" {
                let meta = std::fs::metadata(path).map_err(|err| read_error(path, err))?;
                total += meta.len();
            }
        }
        let rejected = match &config.rejected_path {
            Some(path) => {
                Some(
                    RejectedFileWriter::open(path).map_err(|err| SourceError::DeadLetter {
                        origin: path.display().to_string(),
                        source: Box::new(err),
                    })?,
                )
            }
            None => None,
        };
        let progress = Arc::new(Progress::default());
        progress.bytes_total.store(total, Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel(4);
        let reader = Reader {
            config,
            rejected,
            progress: progress.clone(),
            stop: stop.clone(),
            tx,
        };
        std::thread::Builder::new()
            .name("vigie-file-source".into())
            .spawn(move || reader.run())
            .map_err(|err| SourceError::Read {
                source_name: "file source".into(),
                source: Box::new(err),
            })?;
        Ok(FileSource {
            batches: rx,
            progress,
            stop,
        })
    }

    /// Returns `(bytes read, total bytes)` of the inputs; total is 0 for standard input.
    pub fn progress(&self) -> (u64, u64) {
        (
            self.progress.bytes_read.load(Ordering::Relaxed),
            self.progress.bytes_total.load(Ordering::Relaxed),
        )
    }

    /// Returns a handle that reports progress while the source is moved elsewhere.
    pub fn progress_handle(&self) -> impl Fn() -> (u64, u64) + Send + Sync + 'static {
        let progress = self.progress.clone();
        move || {
            (
                progress.bytes_read.load(Ordering::Relaxed),
                progress.bytes_total.load(Ordering::Relaxed),
            )
        }
    }
}

impl Drop for FileSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl crate::Source for FileSource {
    async fn next_batch(&mut self) -> Result<Option<SourceBatch>, SourceError> {
        self.batches.recv().await.transpose()
    }

    async fn commit(&mut self, _checkpoint: &Checkpoint) -> Result<(), SourceError> {
        // Files have no upstream offsets: a replay always starts from the top, and the
        // index's upsert by id makes that harmless.
        Ok(())
    }

    fn status(&self) -> SourceStatus {
        SourceStatus {
            connected: self.progress.opened.load(Ordering::Relaxed),
            lag: Vec::new(),
        }
    }
}

fn read_error(path: &Path, err: io::Error) -> SourceError {
    SourceError::Read {
        source_name: path.display().to_string(),
        source: Box::new(err),
    }
}

/// Counts compressed bytes as they are read, for the progress bar.
struct CountingReader<R> {
    inner: R,
    progress: Arc<Progress>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress
            .bytes_read
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

struct Reader {
    config: FileSourceConfig,
    rejected: Option<RejectedFileWriter>,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
    tx: mpsc::Sender<Result<SourceBatch, SourceError>>,
}

/// Maps event time to wall time for paced replays.
struct Pacer {
    speed: f64,
    started: Instant,
    first_event: Option<DateTime<Utc>>,
}

impl Pacer {
    /// Returns how long to wait before a post with this event time is due.
    fn wait_for(&mut self, created_at: DateTime<Utc>) -> Duration {
        let first = *self.first_event.get_or_insert(created_at);
        let event_offset = (created_at - first).num_milliseconds().max(0) as f64 / 1000.0;
        let due = self.started + Duration::from_secs_f64(event_offset / self.speed);
        due.saturating_duration_since(Instant::now())
    }
}

impl Reader {
    fn run(mut self) {
        let paths = std::mem::take(&mut self.config.paths);
        let mut pacer = match self.config.pace {
            Pace::Max => None,
            Pace::Speed(speed) => Some(Pacer {
                speed,
                started: Instant::now(),
                first_event: None,
            }),
        };
        for path in paths {
            if let Err(err) = self.read_path(&path, &mut pacer) {
                let _ = self.tx.blocking_send(Err(err));
                return;
            }
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
        }
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn BufRead>> {
        let raw: Box<dyn Read> = if path.as_os_str() == "-" {
            Box::new(io::stdin().lock())
        } else {
            Box::new(File::open(path)?)
        };
        let mut counted = BufReader::with_capacity(
            1 << 16,
            CountingReader {
                inner: raw,
                progress: self.progress.clone(),
            },
        );
        // Detect gzip by its magic bytes rather than the file name, so stdin works too.
        let is_gzip = counted.fill_buf()?.starts_with(&[0x1f, 0x8b]);
        self.progress.opened.store(true, Ordering::Relaxed);
        Ok(if is_gzip {
            Box::new(BufReader::with_capacity(
                1 << 16,
                MultiGzDecoder::new(counted),
            ))
        } else {
            Box::new(counted)
        })
    }

    fn read_path(&mut self, path: &Path, pacer: &mut Option<Pacer>) -> Result<(), SourceError> {
        let name = path.display().to_string();
        let mut input = self.open(path).map_err(|err| read_error(path, err))?;
        let mut batch = SourceBatch::default();
        let mut line = Vec::with_capacity(4096);
        let mut line_number = 0u64;
        let mut consumed = 0u64;
        loop {
            line.clear();
            let limit = self.config.limits.decode.max_message_bytes;
            let n = match read_line_bounded(&mut input, &mut line, limit) {
                Ok(n) => n,
                Err(err) => {
                    // Hand on the complete lines read before the error (a truncated or
                    // corrupt gzip file still yields its good posts); the partial line is
                    // dropped, and the error then stops the pipeline.
                    self.flush(&mut batch, &name, &mut consumed)?;
                    return Err(read_error(path, err));
                }
            };
            if n == 0 {
                break;
            }
            line_number += 1;
            let mut content = trim_line_end(&line);
            if line_number == 1 {
                // A UTF-8 byte-order mark (editors on Windows add one) is not part of the JSON.
                content = content.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(content);
            }
            if content.iter().all(u8::is_ascii_whitespace) {
                continue; // blank lines separate nothing and carry nothing
            }
            consumed += 1;
            // Built twice on a reject rather than cloned for every post.
            let origin = || Origin::File {
                path: name.clone(),
                line: line_number,
            };
            let limits = self.config.limits.decode_limits_now();
            match decode_post(content, &limits, origin()) {
                Ok(post) => {
                    if let Some(pacer) = pacer.as_mut() {
                        let wait = pacer.wait_for(post.created_at);
                        if !wait.is_zero() {
                            self.flush(&mut batch, &name, &mut consumed)?;
                            if !self.sleep(wait) {
                                return Ok(());
                            }
                        }
                    }
                    batch.posts.push(post);
                }
                Err(rejection) => {
                    let origin = origin();
                    self.keep_rejected(&rejection, &origin, content)?;
                    batch.rejections.push(RejectedInput { rejection, origin });
                }
            }
            if batch.posts.len() + batch.rejections.len() >= self.config.batch_size {
                self.flush(&mut batch, &name, &mut consumed)?;
            }
            if self.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
        }
        self.flush(&mut batch, &name, &mut consumed)
    }

    fn keep_rejected(
        &mut self,
        rejection: &Rejection,
        origin: &Origin,
        raw: &[u8],
    ) -> Result<(), SourceError> {
        if let Some(writer) = self.rejected.as_mut() {
            writer
                .write(rejection, origin, raw)
                .map_err(|err| SourceError::DeadLetter {
                    origin: origin.describe(),
                    source: Box::new(err),
                })?;
        }
        Ok(())
    }

    /// Hands the batch on; rejected lines are flushed to disk first.
    fn flush(
        &mut self,
        batch: &mut SourceBatch,
        name: &str,
        consumed: &mut u64,
    ) -> Result<(), SourceError> {
        if batch.is_empty() {
            return Ok(());
        }
        if let Some(writer) = self.rejected.as_mut() {
            writer.flush().map_err(|err| SourceError::DeadLetter {
                origin: name.to_owned(),
                source: Box::new(err),
            })?;
        }
        let mut full = std::mem::take(batch);
        full.consumed
            .push((name.to_owned(), std::mem::take(consumed)));
        if self.tx.blocking_send(Ok(full)).is_err() {
            // The pipeline is gone (shutdown); stop reading.
            self.stop.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Sleeps in short steps so a shutdown is noticed; returns false when stopping.
    fn sleep(&self, total: Duration) -> bool {
        let deadline = Instant::now() + total;
        loop {
            if self.stop.load(Ordering::Relaxed) || self.tx.is_closed() {
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
    }
}

/// Reads one line like `read_until(b'\n')`, but keeps at most `limit + 1` bytes of it: a
/// longer line is still consumed to its end (so the next line starts right) and is then
/// rejected as too large by decoding, without ever holding a huge line in memory.
/// Returns the number of bytes consumed, 0 at the end of input.
fn read_line_bounded(
    input: &mut dyn BufRead,
    line: &mut Vec<u8>,
    limit: usize,
) -> io::Result<usize> {
    let mut consumed = 0;
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if available.is_empty() {
            return Ok(consumed);
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..=end], true),
            None => (available, false),
        };
        let room = (limit + 1).saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = chunk.len();
        input.consume(used);
        consumed += used;
        if done {
            return Ok(consumed);
        }
    }
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && (line[end - 1] == b'\n' || line[end - 1] == b'\r') {
        end -= 1;
    }
    &line[..end]
}

/// Appends rejected lines to `rejected.jsonl`: one JSON object per line with the input's
/// path, line number, reason, detail and the original line.
pub struct RejectedFileWriter {
    out: io::BufWriter<File>,
}

#[derive(Serialize)]
struct RejectedRecord<'a> {
    path: &'a str,
    line: u64,
    reason: &'static str,
    detail: &'a str,
    /// The original line; invalid UTF-8 is replaced and `raw_lossy` is set.
    raw: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    raw_lossy: bool,
}

impl RejectedFileWriter {
    /// Opens (or creates) the file for appending.
    pub fn open(path: &Path) -> io::Result<RejectedFileWriter> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(RejectedFileWriter {
            out: io::BufWriter::new(file),
        })
    }

    /// Appends one record (buffered; call [`RejectedFileWriter::flush`]).
    pub fn write(&mut self, rejection: &Rejection, origin: &Origin, raw: &[u8]) -> io::Result<()> {
        let (path, line) = match origin {
            Origin::File { path, line } => (path.as_str(), *line),
            Origin::Kafka { topic, .. } => (topic.as_str(), 0),
        };
        let text = String::from_utf8_lossy(raw);
        let record = RejectedRecord {
            path,
            line,
            reason: rejection.reason.as_str(),
            detail: &rejection.detail,
            raw: &text,
            raw_lossy: matches!(text, std::borrow::Cow::Owned(_)),
        };
        serde_json::to_writer(&mut self.out, &record)?;
        self.out.write_all(b"\n")
    }

    /// Flushes buffered records to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Source;
    use vigie_domain::DecodeLimits;
    use vigie_domain::RejectReason;

    fn write_lines(dir: &Path, name: &str, lines: &[&str]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, lines.join("\n")).unwrap();
        path
    }

    async fn read_all(source: &mut FileSource) -> SourceBatch {
        let mut all = SourceBatch::default();
        while let Some(batch) = source.next_batch().await.unwrap() {
            all.posts.extend(batch.posts);
            all.rejections.extend(batch.rejections);
            all.consumed.extend(batch.consumed);
        }
        all
    }

    fn config(paths: Vec<PathBuf>, rejected: Option<PathBuf>) -> FileSourceConfig {
        FileSourceConfig {
            paths,
            pace: Pace::Max,
            batch_size: 2,
            limits: InputLimits {
                decode: DecodeLimits::default(),
                max_future: Some(Duration::from_secs(86_400)),
            },
            rejected_path: rejected,
        }
    }

    #[tokio::test]
    async fn reads_good_lines_and_keeps_bad_ones_with_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_lines(
            dir.path(),
            "in.jsonl",
            &[
                r#"{"id":"1","text":"one","created_at":"2015-01-07T11:06:00Z"}"#,
                "not json",
                "",
                r#"{"id":"2","text":"two","created_at":1420628800}"#,
                r#"{"id":"3","created_at":1420628800}"#,
                r#"{"id":"4","text":"four","created_at":1420628801}"#,
                r#"{"id":"5","text":"from the future","created_at":"2999-01-01T00:00:00Z"}"#,
            ],
        );
        let rejected = dir.path().join("out/rejected.jsonl");
        let mut source = FileSource::start(config(vec![path], Some(rejected.clone()))).unwrap();
        let all = read_all(&mut source).await;
        let ids: Vec<_> = all.posts.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "4"]);
        assert_eq!(all.rejections.len(), 3);
        let records: Vec<serde_json::Value> = std::fs::read_to_string(&rejected)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(records.len(), 3);
        assert_eq!(records[2]["reason"], "bad_time");
        assert_eq!(records[0]["line"], 2);
        assert_eq!(records[0]["reason"], RejectReason::NotJson.as_str());
        assert_eq!(records[0]["raw"], "not json");
        assert_eq!(records[1]["line"], 5);
        assert_eq!(records[1]["reason"], "missing_field");
        let consumed: u64 = all.consumed.iter().map(|(_, n)| n).sum();
        assert_eq!(consumed, 6);
    }

    #[tokio::test]
    async fn reads_gzip_by_magic_bytes() {
        use flate2::{write::GzEncoder, Compression};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("posts.data");
        let mut gz = GzEncoder::new(File::create(&path).unwrap(), Compression::fast());
        for i in 0..10 {
            writeln!(
                gz,
                r#"{{"id":{i},"text":"post {i}","created_at":{}}}"#,
                1_448_000_000 + i
            )
            .unwrap();
        }
        gz.finish().unwrap();
        let mut source = FileSource::start(config(vec![path], None)).unwrap();
        let all = read_all(&mut source).await;
        assert_eq!(all.posts.len(), 10);
        assert_eq!(all.posts[9].id, "9");
        let (read, total) = source.progress();
        assert_eq!(read, total);
    }

    #[tokio::test]
    async fn posts_read_before_a_read_error_are_handed_on() {
        use flate2::{write::GzEncoder, Compression};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("truncated.jsonl.gz");
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        for i in 0..5 {
            writeln!(
                gz,
                r#"{{"id":{i},"text":"post {i}","created_at":{}}}"#,
                1_448_000_000 + i
            )
            .unwrap();
        }
        let mut bytes = gz.finish().unwrap();
        // Cut the gzip trailer (CRC and size): every line decodes, then reading fails.
        bytes.truncate(bytes.len() - 8);
        std::fs::write(&path, bytes).unwrap();
        let mut source = FileSource::start(config(vec![path], None)).unwrap();
        let mut ids = Vec::new();
        let err = loop {
            match source.next_batch().await {
                Ok(Some(batch)) => ids.extend(batch.posts.into_iter().map(|p| p.id)),
                Ok(None) => panic!("a truncated gzip file must end with an error"),
                Err(err) => break err,
            }
        };
        assert!(matches!(err, SourceError::Read { .. }), "{err:?}");
        assert_eq!(ids, ["0", "1", "2", "3", "4"]);
    }

    #[tokio::test]
    async fn huge_lines_are_rejected_without_being_held_and_a_bom_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.jsonl");
        let huge = format!(
            r#"{{"id":"big","text":"{}","created_at":1}}"#,
            "x".repeat(5_000)
        );
        let content = format!(
            "\u{feff}{}\n{huge}\n{}\n",
            r#"{"id":"a","text":"first","created_at":1420628800}"#,
            r#"{"id":"b","text":"after","created_at":1420628801}"#
        );
        std::fs::write(&path, content).unwrap();
        let mut cfg = config(vec![path], None);
        cfg.limits.decode.max_message_bytes = 1_000;
        cfg.limits.decode.max_text_bytes = 500;
        let mut source = FileSource::start(cfg).unwrap();
        let all = read_all(&mut source).await;
        let ids: Vec<_> = all.posts.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(all.rejections.len(), 1);
        assert_eq!(all.rejections[0].rejection.reason, RejectReason::TooLarge);
    }

    #[test]
    fn bounded_line_reads_keep_at_most_the_limit_and_consume_the_rest() {
        let data = b"0123456789\nab\n";
        let mut input = std::io::BufReader::with_capacity(4, &data[..]);
        let mut line = Vec::new();
        assert_eq!(read_line_bounded(&mut input, &mut line, 3).unwrap(), 11);
        assert_eq!(line, b"0123");
        line.clear();
        assert_eq!(read_line_bounded(&mut input, &mut line, 3).unwrap(), 3);
        assert_eq!(line, b"ab\n");
        line.clear();
        assert_eq!(read_line_bounded(&mut input, &mut line, 3).unwrap(), 0);
    }

    #[tokio::test]
    async fn missing_file_fails_before_reading() {
        let err = FileSource::start(config(vec!["/nonexistent/x.jsonl".into()], None))
            .err()
            .unwrap();
        assert!(err.to_string().contains("/nonexistent/x.jsonl"), "{err}");
    }

    #[test]
    fn pacer_maps_event_time_to_wall_time() {
        let mut pacer = Pacer {
            speed: 3600.0,
            started: Instant::now(),
            first_event: None,
        };
        let t0 = DateTime::parse_from_rfc3339("2015-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert!(pacer.wait_for(t0).is_zero());
        // Two event-hours later at 3600x is two wall seconds after the start.
        let wait = pacer.wait_for(t0 + chrono::Duration::hours(2));
        assert!(
            wait > Duration::from_millis(1500) && wait <= Duration::from_secs(2),
            "{wait:?}"
        );
    }
}
