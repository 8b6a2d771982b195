//! The writer side: upserts, the commit policy, the commit payload and retention.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use tantivy::collector::Count;
use tantivy::directory::MmapDirectory;
use tantivy::query::RangeQuery;
use tantivy::{Index, IndexReader, IndexSettings, IndexWriter, ReloadPolicy, Term};
use tracing::{debug, info};
use vigie_domain::{AnalyzedPost, Checkpoint, QueryAnalyzer};

use crate::schema::{build_schema, check_schema, to_tantivy_date, Fields, CREATED_AT_PRECISION};
use crate::search::PostSearcher;
use crate::tokenizer::register_tokenizers;
use crate::{CommitPayload, IndexConfig, IndexError};

const BYTES_PER_MB: usize = 1024 * 1024;

/// The post index of one data dir, and its only writer.
///
/// Posts added with [`PostIndex::add`] become searchable, and durable, at the next
/// [`PostIndex::commit`]. Dropping a `PostIndex` without committing discards them, which is
/// safe: their offsets were not committed either, so the source delivers them again.
pub struct PostIndex {
    writer: IndexWriter,
    reader: IndexReader,
    fields: Fields,
    /// Folds keyword terms as the analyzer does (see `Fields::document`).
    analyzer: Arc<dyn QueryAnalyzer>,
    searcher: PostSearcher,
    config: IndexConfig,
    /// What the last commit stored (or the opened index held).
    committed: CommitPayload,
    /// Newest `created_at` among committed and pending posts.
    newest_created_at: Option<DateTime<Utc>>,
    pending: PendingPosts,
}

/// Bookkeeping for the posts added since the last commit.
#[derive(Default)]
struct PendingPosts {
    /// When the first of them was added.
    first_added_at: Option<Instant>,
    /// Their `created_at`, to count those that retention will drop before they are ever
    /// visible; at most `commit_every_posts` entries between commits.
    created_at: Vec<DateTime<Utc>>,
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStats {
    /// Posts added since the previous commit (re-delivered ones included).
    pub posts: usize,
    /// Posts removed because they fell out of the retention period.
    pub deleted_by_retention: u64,
    /// Time spent committing, retention included.
    pub duration: Duration,
}

impl PostIndex {
    /// Opens the index in `dir`, creating the directory and an empty index if absent.
    ///
    /// An existing index must have this version's schema. Opening takes Tantivy's writer
    /// lock, so a second daemon on the same dir fails with [`IndexError::OpenWriter`].
    pub fn open(
        dir: &Path,
        analyzer: Arc<dyn QueryAnalyzer>,
        config: IndexConfig,
    ) -> Result<PostIndex, IndexError> {
        let writer_threads = config.writer_threads_checked()?;
        std::fs::create_dir_all(dir).map_err(|source| IndexError::CreateDir {
            dir: dir.to_owned(),
            source,
        })?;
        let open_error = |source: tantivy::TantivyError| IndexError::OpenIndex {
            dir: dir.to_owned(),
            source,
        };
        let (schema, fields) = build_schema();
        let directory = MmapDirectory::open(dir).map_err(|err| open_error(err.into()))?;
        let index = if Index::exists(&directory).map_err(|err| open_error(err.into()))? {
            let index = Index::open(directory).map_err(open_error)?;
            check_schema(dir, &schema, &index.schema())?;
            index
        } else {
            info!(dir = %dir.display(), "creating post index");
            Index::create(directory, schema, IndexSettings::default()).map_err(open_error)?
        };
        register_tokenizers(&index, analyzer.clone());
        let metas = index.load_metas().map_err(open_error)?;
        let committed = CommitPayload::decode(metas.payload.as_deref())?;

        let writer = index
            .writer_with_num_threads(writer_threads, config.writer_memory_mb * BYTES_PER_MB)
            .map_err(|source| IndexError::OpenWriter {
                dir: dir.to_owned(),
                source,
            })?;
        // Manual: the reader is reloaded right after each of our own commits, which is
        // sooner than a file watcher would notice.
        let reader: IndexReader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(open_error)?;
        let searcher = PostSearcher::new(&index, reader.clone(), fields, analyzer.clone());
        let post_index = PostIndex {
            writer,
            reader,
            fields,
            analyzer,
            searcher,
            newest_created_at: committed.newest_created_at,
            committed,
            config,
            pending: PendingPosts::default(),
        };
        info!(
            dir = %dir.display(),
            docs = post_index.num_docs(),
            partitions = post_index.committed.checkpoint.iter().count(),
            writer_threads,
            "opened post index"
        );
        Ok(post_index)
    }

    /// Adds a post, replacing any post with the same `id` (committed or pending), so that
    /// re-delivered and replayed posts are never indexed twice.
    pub fn add(&mut self, post: &AnalyzedPost) -> Result<(), IndexError> {
        let document = self.fields.document(post, self.analyzer.as_ref());
        // Deletes only touch documents added before them (by opstamp), so this removes
        // the older copy and keeps the one added next, even within one batch.
        self.writer
            .delete_term(Term::from_field_text(self.fields.id, &post.post.id));
        self.writer
            .add_document(document)
            .map_err(|source| IndexError::Write {
                id: post.post.id.clone(),
                source,
            })?;
        let created_at = post.post.created_at;
        if self.pending.first_added_at.is_none() {
            self.pending.first_added_at = Some(Instant::now());
        }
        self.pending.created_at.push(created_at);
        self.newest_created_at = self.newest_created_at.max(Some(created_at));
        Ok(())
    }

    /// Returns the number of posts added since the last commit.
    pub fn pending_posts(&self) -> usize {
        self.pending.created_at.len()
    }

    /// Returns true when a commit is due at `now`: `commit_every_posts` posts are pending,
    /// or the oldest pending post was added at least `commit_interval_secs` ago.
    pub fn commit_due(&self, now: Instant) -> bool {
        if self.pending_posts() >= self.config.commit_every_posts {
            return true;
        }
        self.pending.first_added_at.is_some_and(|first| {
            now.saturating_duration_since(first) >= self.config.commit_interval()
        })
    }

    /// Commits the pending posts together with `checkpoint`, merged into the stored one.
    ///
    /// Before committing, deletes the posts that fell out of the retention period. When
    /// this returns, the posts are durable, their offsets are in the commit payload
    /// ([`PostIndex::committed_checkpoint`]) and searches see them. On
    /// [`IndexError::Retention`] or [`IndexError::Commit`] nothing of this commit is
    /// durable; on [`IndexError::Reload`] it is durable (and `committed_checkpoint` says
    /// so) but searches do not see it yet. Either way the caller should stop rather than
    /// acknowledge offsets.
    pub fn commit(&mut self, checkpoint: &Checkpoint) -> Result<CommitStats, IndexError> {
        let started = Instant::now();
        let deleted_by_retention = self.delete_expired()?;

        let mut payload = self.committed.clone();
        payload.version = CommitPayload::CURRENT_VERSION;
        payload.checkpoint.merge(checkpoint);
        payload.newest_created_at = self.newest_created_at;
        let mut prepared = self
            .writer
            .prepare_commit()
            .map_err(|source| IndexError::Commit { source })?;
        prepared.set_payload(&payload.encode());
        prepared
            .commit()
            .map_err(|source| IndexError::Commit { source })?;
        // The commit is durable from here on: record it before anything else can fail.
        let posts = self.pending_posts();
        self.committed = payload;
        self.pending = PendingPosts::default();
        self.reader
            .reload()
            .map_err(|source| IndexError::Reload { source })?;

        let stats = CommitStats {
            posts,
            deleted_by_retention,
            duration: started.elapsed(),
        };
        debug!(
            posts,
            deleted_by_retention,
            elapsed_ms = stats.duration.as_millis() as u64,
            "committed post index"
        );
        Ok(stats)
    }

    /// Discards the posts added since the last commit and starts a fresh writer on that
    /// commit. After a failed [`PostIndex::commit`] or [`PostIndex::add`] (a full disk) the
    /// writer's state is unknown; the caller rolls back, adds those posts again, and
    /// commits. The last commit stays intact throughout: Tantivy writes its metadata
    /// atomically, and files of a failed commit are unused and garbage-collected later.
    pub fn rollback(&mut self) -> Result<(), IndexError> {
        self.writer
            .rollback()
            .map_err(|source| IndexError::Commit { source })?;
        self.pending = PendingPosts::default();
        self.newest_created_at = self.committed.newest_created_at;
        Ok(())
    }

    /// Queues the deletion of posts older than the retention period and returns how many
    /// it removes: committed ones, plus pending ones that will never become visible.
    fn delete_expired(&mut self) -> Result<u64, IndexError> {
        let (Some(days), Some(newest)) = (self.config.retention_days, self.newest_created_at)
        else {
            return Ok(0);
        };
        let Some(cutoff) = newest.checked_sub_signed(TimeDelta::days(i64::from(days))) else {
            return Ok(0);
        };
        let cutoff = to_tantivy_date(cutoff).truncate(CREATED_AT_PRECISION);
        let expired = || {
            RangeQuery::new(
                Bound::Unbounded,
                Bound::Excluded(Term::from_field_date(self.fields.created_at, cutoff)),
            )
        };
        let committed_expired =
            self.reader
                .searcher()
                .search(&expired(), &Count)
                .map_err(|source| IndexError::Retention { source })? as u64;
        let pending_expired = self
            .pending
            .created_at
            .iter()
            .filter(|&&created_at| {
                to_tantivy_date(created_at).truncate(CREATED_AT_PRECISION) < cutoff
            })
            .count() as u64;
        // A delete query is evaluated against every segment at commit; skipping it when
        // nothing expired keeps frequent commits cheap.
        if committed_expired + pending_expired > 0 {
            self.writer
                .delete_query(Box::new(expired()))
                .map_err(|source| IndexError::Retention { source })?;
        }
        Ok(committed_expired + pending_expired)
    }

    /// Returns the checkpoint of the last commit, or of the opened index.
    pub fn committed_checkpoint(&self) -> &Checkpoint {
        &self.committed.checkpoint
    }

    /// Returns the whole payload of the last commit, or of the opened index.
    pub fn committed_payload(&self) -> &CommitPayload {
        &self.committed
    }

    /// Returns the number of posts visible to search (as of the last commit).
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Returns a searcher that sees every commit of this index as soon as it returns.
    pub fn searcher(&self) -> PostSearcher {
        self.searcher.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{analyzed, at, test_config, test_index};

    fn count_by_id(index: &PostIndex, id: &str) -> usize {
        let searcher = index.reader.searcher();
        let query = tantivy::query::TermQuery::new(
            Term::from_field_text(index.fields.id, id),
            tantivy::schema::IndexRecordOption::Basic,
        );
        searcher.search(&query, &Count).unwrap()
    }

    #[test]
    fn upsert_keeps_one_copy_within_a_batch_across_commits_and_across_reopen() {
        let (dir, mut index) = test_index(test_config());
        let post = analyzed("p1", "Первая версия поста", at("2024-05-01T10:00:00Z"));
        index.add(&post).unwrap();
        index.add(&post).unwrap();
        index.commit(&Checkpoint::new()).unwrap();
        assert_eq!(count_by_id(&index, "p1"), 1);

        let edited = analyzed("p1", "Вторая версия поста", at("2024-05-01T10:00:00Z"));
        index.add(&edited).unwrap();
        index.commit(&Checkpoint::new()).unwrap();
        assert_eq!(count_by_id(&index, "p1"), 1);
        assert_eq!(index.num_docs(), 1);
        drop(index);

        let mut reopened =
            PostIndex::open(dir.path(), crate::testing::analyzer(), test_config()).unwrap();
        reopened.add(&post).unwrap();
        reopened.commit(&Checkpoint::new()).unwrap();
        assert_eq!(count_by_id(&reopened, "p1"), 1);
        assert_eq!(reopened.num_docs(), 1);
    }

    #[test]
    fn commit_payload_round_trips_through_reopen_and_offsets_only_move_forward() {
        let (dir, mut index) = test_index(test_config());
        assert!(index.committed_checkpoint().is_empty());
        index
            .add(&analyzed("p1", "hello world", at("2024-05-01T10:00:00Z")))
            .unwrap();
        let mut first = Checkpoint::new();
        first.advance("posts", 0, 11);
        first.advance("posts", 1, 4);
        index.commit(&first).unwrap();
        let mut second = Checkpoint::new();
        second.advance("posts", 0, 7);
        second.advance("posts", 2, 1);
        index.commit(&second).unwrap();
        drop(index);

        let reopened =
            PostIndex::open(dir.path(), crate::testing::analyzer(), test_config()).unwrap();
        let checkpoint = reopened.committed_checkpoint();
        assert_eq!(checkpoint.next_offset("posts", 0), Some(11));
        assert_eq!(checkpoint.next_offset("posts", 1), Some(4));
        assert_eq!(checkpoint.next_offset("posts", 2), Some(1));
        let payload = reopened.committed_payload();
        assert_eq!(payload.version, CommitPayload::CURRENT_VERSION);
        assert_eq!(payload.newest_created_at, Some(at("2024-05-01T10:00:00Z")));
        let raw = Index::open_in_dir(dir.path())
            .unwrap()
            .load_metas()
            .unwrap()
            .payload
            .unwrap();
        assert!(raw.contains(r#""version":1"#), "{raw}");
    }

    #[test]
    fn uncommitted_posts_are_invisible_then_visible_after_commit() {
        let (_dir, mut index) = test_index(test_config());
        let searcher = index.searcher();
        index
            .add(&analyzed("p1", "hello world", at("2024-05-01T10:00:00Z")))
            .unwrap();
        assert_eq!(index.num_docs(), 0);
        assert_eq!(searcher.num_docs(), 0);
        assert_eq!(index.pending_posts(), 1);
        let stats = index.commit(&Checkpoint::new()).unwrap();
        assert_eq!(stats.posts, 1);
        assert_eq!(index.pending_posts(), 0);
        assert_eq!(index.num_docs(), 1);
        assert_eq!(searcher.num_docs(), 1);
    }

    #[test]
    fn uncommitted_posts_are_lost_on_reopen_with_their_offsets() {
        let (dir, mut index) = test_index(test_config());
        let mut checkpoint = Checkpoint::new();
        checkpoint.advance("posts", 0, 1);
        index
            .add(&analyzed("p1", "hello", at("2024-05-01T10:00:00Z")))
            .unwrap();
        index.commit(&checkpoint).unwrap();
        index
            .add(&analyzed("p2", "world", at("2024-05-01T10:00:01Z")))
            .unwrap();
        drop(index);
        let reopened =
            PostIndex::open(dir.path(), crate::testing::analyzer(), test_config()).unwrap();
        assert_eq!(reopened.num_docs(), 1);
        assert_eq!(
            reopened.committed_checkpoint().next_offset("posts", 0),
            Some(1)
        );
    }

    #[test]
    fn commit_is_due_by_count_or_by_age_of_the_first_pending_post() {
        let config = IndexConfig {
            commit_every_posts: 3,
            commit_interval_secs: 5,
            ..test_config()
        };
        let (_dir, mut index) = test_index(config);
        let start = Instant::now();
        assert!(
            !index.commit_due(start + Duration::from_secs(3600)),
            "nothing pending"
        );

        index
            .add(&analyzed("p1", "one", at("2024-05-01T10:00:00Z")))
            .unwrap();
        let added = Instant::now();
        assert!(!index.commit_due(added));
        assert!(!index.commit_due(added + Duration::from_secs(4)));
        assert!(index.commit_due(added + Duration::from_secs(5)));

        index
            .add(&analyzed("p2", "two", at("2024-05-01T10:00:00Z")))
            .unwrap();
        assert!(!index.commit_due(added));
        index
            .add(&analyzed("p3", "three", at("2024-05-01T10:00:00Z")))
            .unwrap();
        assert!(index.commit_due(added), "three posts pending");

        index.commit(&Checkpoint::new()).unwrap();
        assert!(!index.commit_due(Instant::now() + Duration::from_secs(3600)));
    }

    #[test]
    fn retention_deletes_posts_older_than_the_newest_minus_the_period() {
        let config = IndexConfig {
            retention_days: Some(7),
            ..test_config()
        };
        let (dir, mut index) = test_index(config.clone());
        index
            .add(&analyzed("old", "old post", at("2024-01-01T00:00:00Z")))
            .unwrap();
        index
            .add(&analyzed("edge", "edge post", at("2024-01-03T00:00:00Z")))
            .unwrap();
        let stats = index.commit(&Checkpoint::new()).unwrap();
        assert_eq!(stats.deleted_by_retention, 0, "replayed old data is kept");
        assert_eq!(index.num_docs(), 2);

        index
            .add(&analyzed("new", "new post", at("2024-01-10T00:00:00Z")))
            .unwrap();
        index
            .add(&analyzed(
                "late",
                "late old post",
                at("2024-01-02T00:00:00Z"),
            ))
            .unwrap();
        let stats = index.commit(&Checkpoint::new()).unwrap();
        assert_eq!(
            stats.deleted_by_retention, 2,
            "old (committed) and late (pending)"
        );
        assert_eq!(index.num_docs(), 2);
        assert_eq!(count_by_id(&index, "old"), 0);
        assert_eq!(count_by_id(&index, "late"), 0);
        assert_eq!(
            count_by_id(&index, "edge"),
            1,
            "exactly seven days old is kept"
        );
        assert_eq!(count_by_id(&index, "new"), 1);
        drop(index);

        // The newest date survives reopen, so retention keeps measuring from it.
        let mut reopened = PostIndex::open(dir.path(), crate::testing::analyzer(), config).unwrap();
        reopened
            .add(&analyzed("replay", "replayed", at("2024-01-02T12:00:00Z")))
            .unwrap();
        let stats = reopened.commit(&Checkpoint::new()).unwrap();
        assert_eq!(stats.deleted_by_retention, 1);
        assert_eq!(reopened.num_docs(), 2);
    }

    #[test]
    fn reopening_with_another_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut builder = tantivy::schema::Schema::builder();
        builder.add_text_field("id", tantivy::schema::STRING);
        builder.add_text_field("body", tantivy::schema::TEXT);
        Index::create_in_dir(dir.path(), builder.build()).unwrap();
        let err = PostIndex::open(dir.path(), crate::testing::analyzer(), test_config())
            .err()
            .unwrap();
        let IndexError::SchemaMismatch { difference, .. } = &err else {
            panic!("expected a schema mismatch, got {err:?}");
        };
        assert!(difference.contains("unknown field body"), "{difference}");
        assert!(
            difference.contains("missing field created_at"),
            "{difference}"
        );
    }

    #[test]
    fn a_second_writer_on_the_same_dir_is_refused() {
        let (dir, _index) = test_index(test_config());
        let err = PostIndex::open(dir.path(), crate::testing::analyzer(), test_config())
            .err()
            .unwrap();
        assert!(matches!(err, IndexError::OpenWriter { .. }), "{err:?}");
    }
}
