//! The read side: query parsing, filters, ordering and snippets.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::error::OpenDirectoryError;
use tantivy::directory::MmapDirectory;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::snippet::SnippetGenerator;
use tantivy::{
    DocAddress, Index, IndexReader, Order, ReloadPolicy, Searcher, TantivyDocument, Term,
};
use vigie_domain::QueryAnalyzer;

use crate::limits::SearchLimits;
use crate::schema::{
    build_schema, check_schema, from_tantivy_date, to_tantivy_date, Fields, CREATED_AT,
    CREATED_AT_PRECISION,
};
use crate::tokenizer::{fold_keyword, register_tokenizers};
use crate::IndexError;

/// Hits returned when a request asks for none.
const DEFAULT_LIMIT: usize = 10;

/// A search over the post index.
#[derive(Deserialize, Clone, Debug, Default)]
#[serde(default)]
pub struct SearchRequest {
    /// Query in Tantivy's syntax. Bare words search the text and the hashtags, and all must
    /// match; fielded terms use `author:`, `lang:`, `hashtags:`, `mention:`, `domain:`,
    /// `url:`, `platform:`, `source:` or `id:`. Empty or `*` matches every post.
    pub query: String,
    /// Keeps posts created at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Keeps posts created before this time.
    pub until: Option<DateTime<Utc>>,
    /// Most hits to return: 0 means 10, and more than [`SearchLimits::max_hits`] (1000 by
    /// default) means that many.
    pub limit: usize,
    /// Order of the hits.
    pub order: SearchOrder,
    /// Keeps posts whose analysis language is this ISO 639-1 code (or `und`).
    pub lang: Option<String>,
}

/// Order of search hits.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SearchOrder {
    /// Newest `created_at` first.
    #[default]
    Newest,
    /// Best BM25 score first.
    Relevance,
}

/// The answer to a [`SearchRequest`].
#[derive(Serialize, Debug)]
pub struct SearchResults {
    /// Number of matching posts, beyond the returned ones.
    pub total_hits: usize,
    /// The returned posts, in the requested order.
    pub hits: Vec<SearchHit>,
}

/// One matching post.
#[derive(Serialize, Debug)]
pub struct SearchHit {
    /// Post id.
    pub id: String,
    /// Event time of the post.
    pub created_at: DateTime<Utc>,
    /// Author, as the producer sent it.
    pub author: Option<String>,
    /// Language the post was analyzed in.
    pub lang: String,
    /// The post's text.
    pub text: String,
    /// HTML-escaped excerpt of the text, with `<b>…</b>` around matching words; the start
    /// of the text when no word matched.
    pub snippet: String,
    /// Hashtags, folded, without `#`.
    pub hashtags: Vec<String>,
    /// Topic or file the post was read from.
    pub source: String,
    /// Exact origin: `topic/partition@offset` or `path:line`.
    pub origin: String,
    /// BM25 score, for relevance order.
    pub score: Option<f32>,
}

/// A handle for searching the post index, shared by concurrent request handlers.
///
/// Cloning is cheap. Each search uses the latest reloaded view of the index, so a search
/// running during a commit sees either all of the commit or none of it.
#[derive(Clone)]
pub struct PostSearcher {
    inner: Arc<SearcherInner>,
}

struct SearcherInner {
    reader: IndexReader,
    fields: Fields,
    query_parser: QueryParser,
    analyzer: Arc<dyn QueryAnalyzer>,
}

impl PostSearcher {
    /// Builds a searcher over `reader`; the index's tokenizers must already be registered.
    pub(crate) fn new(
        index: &Index,
        reader: IndexReader,
        fields: Fields,
        analyzer: Arc<dyn QueryAnalyzer>,
    ) -> PostSearcher {
        let mut query_parser = QueryParser::for_index(index, vec![fields.text, fields.hashtags]);
        // Analysts narrow down with more words; OR would rank but also flood the newest-first
        // order with posts matching any one word.
        query_parser.set_conjunction_by_default();
        PostSearcher {
            inner: Arc::new(SearcherInner {
                reader,
                fields,
                query_parser,
                analyzer,
            }),
        }
    }

    /// Opens the index in `dir` for searching only, while a daemon may be writing to it.
    ///
    /// The searcher follows the writer's commits shortly after they happen. Fails with
    /// [`IndexError::NoIndex`] when `dir` holds no index.
    pub fn open_read_only(
        dir: &Path,
        analyzer: Arc<dyn QueryAnalyzer>,
    ) -> Result<PostSearcher, IndexError> {
        let open_error = |source: tantivy::TantivyError| IndexError::OpenIndex {
            dir: dir.to_owned(),
            source,
        };
        let directory = match MmapDirectory::open(dir) {
            Ok(directory) => directory,
            Err(OpenDirectoryError::DoesNotExist(_) | OpenDirectoryError::NotADirectory(_)) => {
                return Err(IndexError::NoIndex {
                    dir: dir.to_owned(),
                });
            }
            Err(err) => return Err(open_error(err.into())),
        };
        if !Index::exists(&directory).map_err(|err| open_error(err.into()))? {
            return Err(IndexError::NoIndex {
                dir: dir.to_owned(),
            });
        }
        let index = Index::open(directory).map_err(open_error)?;
        let (schema, fields) = build_schema();
        check_schema(dir, &schema, &index.schema())?;
        register_tokenizers(&index, analyzer.clone());
        let reader: IndexReader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()
            .map_err(open_error)?;
        Ok(PostSearcher::new(&index, reader, fields, analyzer))
    }

    /// Returns the number of posts visible to search.
    pub fn num_docs(&self) -> u64 {
        self.inner.reader.searcher().num_docs()
    }

    /// Runs a search within the default [`SearchLimits`].
    ///
    /// A query the parser rejects (bad syntax, unknown field), a query over the limits and
    /// a `since` after `until` are reported as [`IndexError::Query`], with a message meant
    /// for the user.
    pub fn search(&self, request: &SearchRequest) -> Result<SearchResults, IndexError> {
        self.search_with(request, &SearchLimits::default())
    }

    /// Runs a search within `limits` (clamped to their ceilings); see [`Self::search`].
    pub fn search_with(
        &self,
        request: &SearchRequest,
        limits: &SearchLimits,
    ) -> Result<SearchResults, IndexError> {
        let limits = limits.clamped();
        let fields = &self.inner.fields;
        limits.check_query(request.query.trim())?;
        let user_query = self.parse_user_query(&request.query)?;
        let query = self.with_filters(user_query.box_clone(), request)?;
        let limit = match request.limit {
            0 => DEFAULT_LIMIT.min(limits.max_hits),
            limit => limit.min(limits.max_hits),
        };
        let searcher = self.inner.reader.searcher();
        let search_error = |source| IndexError::Search { source };
        // Some queries parse but are judged only when they run: `field:*` (an exists
        // query) on a field that is unknown or not a fast field. Those are the user's
        // errors (400), not the server's (found by the search_query fuzz target).
        let run_error = |source: tantivy::TantivyError| match source {
            tantivy::TantivyError::FieldNotFound(_) | tantivy::TantivyError::SchemaError(_) => {
                IndexError::Query {
                    message: format!("the query cannot run on this index: {source}"),
                }
            }
            source => IndexError::Search { source },
        };
        let (top, total_hits): (Vec<(Option<f32>, DocAddress)>, usize) = match request.order {
            SearchOrder::Newest => {
                let newest = TopDocs::with_limit(limit)
                    .order_by_fast_field::<tantivy::DateTime>(CREATED_AT, Order::Desc);
                let (top, count) = searcher
                    .search(&query, &(newest, Count))
                    .map_err(run_error)?;
                (
                    top.into_iter()
                        .map(|(_, address)| (None, address))
                        .collect(),
                    count,
                )
            }
            SearchOrder::Relevance => {
                let best = TopDocs::with_limit(limit).order_by_score();
                let (top, count) = searcher.search(&query, &(best, Count)).map_err(run_error)?;
                (
                    top.into_iter()
                        .map(|(score, address)| (Some(score), address))
                        .collect(),
                    count,
                )
            }
        };
        // Highlights come from the user's terms on `text` only, not from the filters.
        let mut snippets =
            SnippetGenerator::create(&searcher, &*user_query, fields.text).map_err(search_error)?;
        snippets.set_max_num_chars(limits.snippet_max_bytes);
        let hits = top
            .into_iter()
            .map(|(score, address)| {
                self.hit(
                    &searcher,
                    &snippets,
                    limits.snippet_max_bytes,
                    address,
                    score,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SearchResults { total_hits, hits })
    }

    fn parse_user_query(&self, query: &str) -> Result<Box<dyn Query>, IndexError> {
        let query = query.trim();
        if query.is_empty() || query == "*" {
            return Ok(Box::new(AllQuery));
        }
        self.inner
            .query_parser
            .parse_query(query)
            .map_err(|err| IndexError::Query {
                message: format!("invalid query {query:?}: {err}"),
            })
    }

    /// ANDs the request's language and time filters with the user's query.
    fn with_filters(
        &self,
        user_query: Box<dyn Query>,
        request: &SearchRequest,
    ) -> Result<Box<dyn Query>, IndexError> {
        let fields = &self.inner.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, user_query)];
        if let Some(lang) = &request.lang {
            let term = Term::from_field_text(
                fields.lang,
                &fold_keyword(self.inner.analyzer.as_ref(), lang),
            );
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
            ));
        }
        if let (Some(since), Some(until)) = (request.since, request.until) {
            if since > until {
                return Err(IndexError::Query {
                    message: format!("since ({since}) is after until ({until})"),
                });
            }
        }
        if request.since.is_some() || request.until.is_some() {
            // Bounds at the fast field's precision, which is what the range is checked against.
            let date_term = |time: DateTime<Utc>| {
                Term::from_field_date(
                    fields.created_at,
                    to_tantivy_date(time).truncate(CREATED_AT_PRECISION),
                )
            };
            let lower = request
                .since
                .map_or(Bound::Unbounded, |since| Bound::Included(date_term(since)));
            let upper = request
                .until
                .map_or(Bound::Unbounded, |until| Bound::Excluded(date_term(until)));
            clauses.push((Occur::Must, Box::new(RangeQuery::new(lower, upper))));
        }
        if clauses.len() == 1 {
            let (_, only) = clauses.pop().expect("one clause");
            return Ok(only);
        }
        Ok(Box::new(BooleanQuery::new(clauses)))
    }

    fn hit(
        &self,
        searcher: &Searcher,
        snippets: &SnippetGenerator,
        snippet_max_bytes: usize,
        address: DocAddress,
        score: Option<f32>,
    ) -> Result<SearchHit, IndexError> {
        let fields = &self.inner.fields;
        let document: TantivyDocument = searcher
            .doc(address)
            .map_err(|source| IndexError::Search { source })?;
        let text_of = |field: Field| {
            document
                .get_first(field)
                .and_then(|value| value.as_str())
                .map(str::to_owned)
        };
        let required = |field: Field, name: &'static str| {
            text_of(field).ok_or(IndexError::CorruptDocument { field: name })
        };
        let created_at = document
            .get_first(fields.created_at)
            .and_then(|value| value.as_datetime())
            .map(from_tantivy_date)
            .ok_or(IndexError::CorruptDocument { field: CREATED_AT })?;
        let text = required(fields.original_text, "original_text")?;
        let snippet = snippets.snippet(&text);
        let snippet = if snippet.is_empty() {
            text_start_html(&text, snippet_max_bytes)
        } else {
            snippet.to_html()
        };
        Ok(SearchHit {
            id: required(fields.id, "id")?,
            created_at,
            author: text_of(fields.author),
            lang: required(fields.lang, "lang")?,
            snippet,
            text,
            hashtags: document
                .get_all(fields.hashtags)
                .filter_map(|value| value.as_str().map(str::to_owned))
                .collect(),
            source: required(fields.source, "source")?,
            origin: required(fields.origin, "origin")?,
            score,
        })
    }
}

/// Returns the start of `text`, HTML-escaped, as a snippet without highlights.
fn text_start_html(text: &str, max_bytes: usize) -> String {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut html = escape_html(&text[..end]);
    if end < text.len() {
        html.push('…');
    }
    html
}

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use vigie_domain::{Checkpoint, Origin, Post};

    use super::*;
    use crate::testing::{analyze, analyzed, analyzer, at, test_config, test_index};
    use crate::PostIndex;

    fn ids(results: &SearchResults) -> Vec<&str> {
        results.hits.iter().map(|hit| hit.id.as_str()).collect()
    }

    fn query(text: &str) -> SearchRequest {
        SearchRequest {
            query: text.into(),
            ..SearchRequest::default()
        }
    }

    /// Indexes a small mixed corpus and returns the open index.
    fn corpus() -> (tempfile::TempDir, PostIndex) {
        let (dir, mut index) = test_index(test_config());
        let mut koch = Post::for_test(
            "en1",
            "Breaking: #KochFarms poisoned the water supply, share before they delete it",
            at("2024-05-01T10:00:00Z"),
        );
        koch.author = Some("U_123".into());
        koch.lang = Some("en".into());
        koch.origin = Origin::Kafka {
            topic: "posts".into(),
            partition: 2,
            offset: 41,
        };
        let mut water = Post::for_test(
            "en2",
            "The water report is out: water quality is <really> fine, water is safe",
            at("2024-05-02T10:00:00Z"),
        );
        water.author = Some("u_456".into());
        water.lang = Some("en".into());
        let mut war = Post::for_test(
            "ru1",
            "Они снова говорят про войну и про новые санкции",
            at("2024-05-03T10:00:00Z"),
        );
        war.lang = Some("ru".into());
        let mut late_water = Post::for_test(
            "en3",
            "Is the water safe to drink?",
            at("2024-05-04T10:00:00Z"),
        );
        late_water.lang = Some("en".into());
        for post in [koch, water, war, late_water] {
            index.add(&analyze(post)).unwrap();
        }
        index.commit(&Checkpoint::new()).unwrap();
        (dir, index)
    }

    #[test]
    fn empty_and_star_queries_return_everything_newest_first() {
        let (_dir, index) = corpus();
        let searcher = index.searcher();
        for text in ["", "*", "  "] {
            let results = searcher.search(&query(text)).unwrap();
            assert_eq!(results.total_hits, 4);
            assert_eq!(
                ids(&results),
                vec!["en3", "ru1", "en2", "en1"],
                "query {text:?}"
            );
            assert!(results.hits.iter().all(|hit| hit.score.is_none()));
        }
    }

    #[test]
    fn newest_order_sorts_by_created_at_and_limit_keeps_the_total() {
        let (_dir, index) = corpus();
        let results = index
            .searcher()
            .search(&SearchRequest {
                limit: 2,
                ..query("water")
            })
            .unwrap();
        assert_eq!(results.total_hits, 3);
        assert_eq!(ids(&results), vec!["en3", "en2"]);
    }

    #[test]
    fn relevance_order_ranks_by_bm25_and_reports_scores() {
        let (_dir, index) = corpus();
        let request = SearchRequest {
            order: SearchOrder::Relevance,
            ..query("water")
        };
        let results = index.searcher().search(&request).unwrap();
        assert_eq!(results.total_hits, 3);
        assert_eq!(
            results.hits[0].id, "en2",
            "three occurrences of water rank first"
        );
        let scores: Vec<f32> = results.hits.iter().map(|hit| hit.score.unwrap()).collect();
        assert!(
            scores.windows(2).all(|pair| pair[0] >= pair[1]),
            "{scores:?}"
        );
    }

    #[test]
    fn time_range_includes_since_and_excludes_until() {
        let (_dir, index) = corpus();
        let request = SearchRequest {
            since: Some(at("2024-05-02T10:00:00Z")),
            until: Some(at("2024-05-04T10:00:00Z")),
            ..query("")
        };
        let results = index.searcher().search(&request).unwrap();
        assert_eq!(ids(&results), vec!["ru1", "en2"]);
        let only_since = SearchRequest {
            since: Some(at("2024-05-03T00:00:00Z")),
            ..query("water")
        };
        assert_eq!(
            ids(&index.searcher().search(&only_since).unwrap()),
            vec!["en3"]
        );
    }

    #[test]
    fn lang_filter_and_lang_field_agree() {
        let (_dir, index) = corpus();
        let searcher = index.searcher();
        let filtered = searcher
            .search(&SearchRequest {
                lang: Some("RU".into()),
                ..query("")
            })
            .unwrap();
        assert_eq!(ids(&filtered), vec!["ru1"]);
        assert_eq!(
            ids(&searcher.search(&query("lang:ru")).unwrap()),
            vec!["ru1"]
        );
        let english = searcher
            .search(&SearchRequest {
                lang: Some("en".into()),
                ..query("")
            })
            .unwrap();
        assert_eq!(english.total_hits, 3);
    }

    #[test]
    fn author_field_query_ignores_case_and_at_sign() {
        let (_dir, index) = corpus();
        let searcher = index.searcher();
        for text in ["author:u_123", "author:U_123", "author:@u_123"] {
            let results = searcher.search(&query(text)).unwrap();
            assert_eq!(ids(&results), vec!["en1"], "query {text:?}");
            assert_eq!(
                results.hits[0].author.as_deref(),
                Some("U_123"),
                "stored as sent"
            );
        }
    }

    #[test]
    fn hashtag_queries_match_with_and_without_the_sign() {
        let (_dir, index) = corpus();
        let searcher = index.searcher();
        for text in [
            "#KochFarms",
            "kochfarms",
            "hashtags:kochfarms",
            "hashtags:#KochFarms",
        ] {
            let results = searcher.search(&query(text)).unwrap();
            assert_eq!(ids(&results), vec!["en1"], "query {text:?}");
        }
        let hit = &searcher.search(&query("#KochFarms")).unwrap().hits[0];
        assert_eq!(hit.hashtags, vec!["kochfarms"]);
        assert_eq!(hit.source, "posts");
        assert_eq!(hit.origin, "posts/2@41");
        assert_eq!(hit.lang, "en");
        assert_eq!(hit.created_at, at("2024-05-01T10:00:00Z"));
    }

    #[test]
    fn inflected_russian_query_matches_and_highlights_the_post() {
        let (_dir, index) = corpus();
        let results = index.searcher().search(&query("войны")).unwrap();
        assert_eq!(ids(&results), vec!["ru1"]);
        let snippet = &results.hits[0].snippet;
        assert!(snippet.contains("<b>войну</b>"), "{snippet}");
    }

    #[test]
    fn snippets_are_escaped_and_fall_back_to_the_start_of_the_text() {
        let (_dir, index) = corpus();
        let searcher = index.searcher();
        let hit = searcher.search(&query("quality")).unwrap().hits.remove(0);
        assert!(hit.snippet.contains("<b>quality</b>"), "{}", hit.snippet);
        assert!(hit.snippet.contains("&lt;really&gt;"), "{}", hit.snippet);
        let everything = searcher
            .search(&SearchRequest {
                lang: Some("en".into()),
                ..query("")
            })
            .unwrap();
        let en2 = everything.hits.iter().find(|hit| hit.id == "en2").unwrap();
        assert!(!en2.snippet.contains("<b>"), "{}", en2.snippet);
        assert!(
            en2.snippet.starts_with("The water report"),
            "{}",
            en2.snippet
        );
    }

    #[test]
    fn all_words_must_match() {
        let (_dir, index) = corpus();
        let searcher = index.searcher();
        assert_eq!(
            ids(&searcher.search(&query("water safe")).unwrap()),
            vec!["en3", "en2"]
        );
        assert_eq!(
            ids(&searcher.search(&query("water OR войны")).unwrap()).len(),
            4
        );
    }

    #[test]
    fn domain_and_mention_fields_are_searchable() {
        let (_dir, mut index) = test_index(test_config());
        let post = Post::for_test(
            "d1",
            "@SomeReporter read https://www.NYTimes.com/2024/05/story.html now",
            at("2024-05-01T10:00:00Z"),
        );
        index.add(&analyze(post)).unwrap();
        index.commit(&Checkpoint::new()).unwrap();
        let searcher = index.searcher();
        assert_eq!(
            ids(&searcher.search(&query("domain:nytimes.com")).unwrap()),
            vec!["d1"]
        );
        assert_eq!(
            ids(&searcher.search(&query("mention:somereporter")).unwrap()),
            vec!["d1"]
        );
        assert!(searcher
            .search(&query("domain:example.com"))
            .unwrap()
            .hits
            .is_empty());
    }

    #[test]
    fn bad_queries_are_user_facing_query_errors() {
        let (_dir, index) = corpus();
        let searcher = index.searcher();
        for text in ["nosuchfield:x", "water AND (", "created_at:[bad TO worse]"] {
            match searcher.search(&query(text)) {
                Err(IndexError::Query { message }) => {
                    assert!(message.contains("invalid query"), "{message}")
                }
                other => panic!("query {text:?} gave {other:?}"),
            }
        }
        let backwards = SearchRequest {
            since: Some(at("2024-05-03T00:00:00Z")),
            until: Some(at("2024-05-01T00:00:00Z")),
            ..query("")
        };
        assert!(matches!(
            searcher.search(&backwards),
            Err(IndexError::Query { .. })
        ));
    }

    /// Issue 12, row 1: a query nested 2,500 deep aborted the daemon with a stack overflow.
    #[test]
    fn issue_12_exists_queries_on_the_wrong_field_are_query_errors() {
        // Found by the search_query fuzz target (fuzz/artifacts-found/search_query/).
        let (_dir, index) = corpus();
        let searcher = index.searcher();
        for text in ["text:*", "a:*"] {
            match searcher.search(&query(text)) {
                Err(IndexError::Query { .. }) => {}
                other => panic!("{text} gave {other:?}"),
            }
        }
    }

    #[test]
    fn issue_12_deeply_nested_queries_are_query_errors_not_crashes() {
        let (_dir, index) = corpus();
        let searcher = index.searcher();
        for text in [
            format!("{}water{}", "(".repeat(2500), ")".repeat(2500)),
            format!("{}water", "NOT ".repeat(2500)),
        ] {
            let limits = SearchLimits {
                max_query_bytes: crate::MAX_QUERY_BYTES_CEILING,
                ..SearchLimits::default()
            };
            match searcher.search_with(&query(&text), &limits) {
                Err(IndexError::Query { message }) => {
                    assert!(message.contains("levels deep"), "{message}")
                }
                other => panic!("gave {other:?}"),
            }
        }
        let nested = format!("{}water{}", "(".repeat(20), ")".repeat(20));
        assert_eq!(searcher.search(&query(&nested)).unwrap().total_hits, 3);
        let small = SearchLimits {
            max_hits: 1,
            snippet_max_bytes: 12,
            ..SearchLimits::default()
        };
        let results = searcher.search_with(&query("water"), &small).unwrap();
        assert_eq!((results.total_hits, results.hits.len()), (3, 1));
        assert!(
            results.hits[0].snippet.len() < 40,
            "{}",
            results.hits[0].snippet
        );
    }

    #[test]
    fn read_only_searcher_sees_commits_while_the_writer_is_open() {
        let (dir, mut index) = test_index(test_config());
        index
            .add(&analyzed(
                "p1",
                "water everywhere",
                at("2024-05-01T10:00:00Z"),
            ))
            .unwrap();
        index.commit(&Checkpoint::new()).unwrap();
        index
            .add(&analyzed("p2", "water again", at("2024-05-01T11:00:00Z")))
            .unwrap();

        let read_only = PostSearcher::open_read_only(dir.path(), analyzer()).unwrap();
        assert_eq!(
            read_only.num_docs(),
            1,
            "the uncommitted post is not visible"
        );
        let results = read_only.search(&query("water")).unwrap();
        assert_eq!(ids(&results), vec!["p1"]);
        assert!(results.hits[0].snippet.contains("<b>water</b>"));
    }

    #[test]
    fn read_only_open_without_an_index_says_so() {
        let empty = tempfile::tempdir().unwrap();
        let err = PostSearcher::open_read_only(empty.path(), analyzer())
            .err()
            .unwrap();
        assert!(matches!(err, IndexError::NoIndex { .. }), "{err:?}");
        let missing = empty.path().join("nowhere");
        let err = PostSearcher::open_read_only(&missing, analyzer())
            .err()
            .unwrap();
        assert!(matches!(err, IndexError::NoIndex { .. }), "{err:?}");
    }

    #[test]
    fn searcher_is_send_sync_index_is_send_and_request_parses_from_json() {
        fn assert_send_sync<T: Send + Sync>() {}
        fn assert_send<T: Send>() {}
        assert_send_sync::<PostSearcher>();
        assert_send::<PostIndex>();
        let request: SearchRequest = serde_json::from_str(
            r#"{"query":"x","order":"relevance","since":"2024-05-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(request.order, SearchOrder::Relevance);
        assert_eq!(request.limit, 0);
    }
}
