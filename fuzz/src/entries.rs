//! Entry points of Vigie's fuzz targets, one function per target, each taking the raw
//! bytes libFuzzer generates.
//!
//! The same functions replay the committed corpora in `cargo test`
//! (`tests/tests/fuzz_regressions.rs` includes this file as a module), so what a fuzzer once
//! found stays fixed without nightly. Each function feeds the bytes to the real parser the
//! daemon uses on untrusted input and checks what every answer must satisfy; a panic, an
//! abort or a sanitizer report is a finding.
//!
//! Only `std`, `chrono`, `serde_json`, `tempfile` and Vigie's crates may be used here: the
//! regression test has no other dependency for it.

use std::cell::RefCell;
use std::io::BufReader;
use std::sync::{Arc, OnceLock};

use chrono::{TimeZone, Utc};
use tempfile::TempDir;
use vigie_alert_delivery::outbox::{parse_journal, read_journal};
use vigie_detect::{DetectError, WatchEntry, Watchlists};
use vigie_domain::{decode_post as decode, Analysis, AnalyzedPost, DecodeLimits, Origin, Token};
use vigie_index::{IndexConfig, IndexError, PostIndex, PostSearcher, SearchOrder, SearchRequest};
use vigie_tokenize::{Analyzer, AnalyzerConfig};

/// Posts of the built-in sample (and a few made-up ones covering hashtags, mentions and
/// links) that the search and watchlist targets run their queries against.
const POSTS: &[&str] = &[
    r#"{"id": "ira:DonetskNovosti:375", "created_at": "2015-11-26T12:00:00Z", "author": "u_420d724962ad37c5", "lang": "ru", "text": "Колонны МЧС России доставили гуманитарную помощь в Донецк и Луганск  https://t.co/gEpQhSnq29 https://t.co/Ul26WBG3DK"}"#,
    r#"{"id": "ira:GubatovOfficial:390", "created_at": "2015-11-26T12:00:00Z", "author": "u_53b79dec2f55abc6", "lang": "ru", "text": "Владимир Путин считает необъяснимым удар в спину от того, кого РФ считала союзником  https://t.co/EhlRebftiO https://t.co/Mz7ZpAOP34"}"#,
    r#"{"id": "en1", "created_at": "2024-05-01T10:00:00Z", "author": "U_123", "lang": "en", "text": "Breaking: #KochFarms poisoned the water supply, share before they delete it @CityNews https://www.example.com/report?utm_source=x", "hashtags": ["KochFarms"], "mentions": ["CityNews"], "urls": ["https://www.example.com/report"]}"#,
    r#"{"id": "en2", "created_at": 1714644000, "author": 456, "text": "The water report is out: water quality is <really> fine, water is safe 🚰"}"#,
    r#"{"id": "uk1", "created_at": "2024-05-03T10:00:00+03:00", "lang": "uk", "text": "Вони знову говорять про війну і про нові санкції #СтопВійні"}"#,
    r#"{"id": "zh1", "created_at": 1714816800000, "lang": "zh", "text": "网络上流传的视频是伪造的，请不要转发"}"#,
    r#"{"id": "ar1", "created_at": "2024-05-05T10:00:00Z", "lang": "ar", "text": "الفيديو المنتشر على الإنترنت مزيف، لا تشاركوه"}"#,
    r#"{"id": "fr1", "created_at": "2024-05-06T10:00:00Z", "text": "Élection: les résultats arrivent, restez à l'écoute #Élection2024"}"#,
];

/// Language hints tried by the analyzer target: none, supported, unsupported and malformed.
const LANG_HINTS: &[Option<&str>] = &[
    None,
    Some("en"),
    Some("ru"),
    Some("uk"),
    Some("zh"),
    Some("ar"),
    Some("fr"),
    Some("de"),
    Some("und"),
    Some(""),
    Some("xx"),
    Some("EN-us"),
    Some("zh-Hant-TW"),
    Some(" ru "),
    Some("ü"),
    Some("sr"),
];

fn origin() -> Origin {
    Origin::File {
        path: "fuzz".into(),
        line: 1,
    }
}

/// Returns the analyzer with its default settings, built once per process.
fn shared_analyzer() -> Arc<Analyzer> {
    static ANALYZER: OnceLock<Arc<Analyzer>> = OnceLock::new();
    ANALYZER
        .get_or_init(|| Arc::new(Analyzer::new(AnalyzerConfig::default())))
        .clone()
}

/// Returns [`POSTS`], decoded and analyzed.
fn analyzed_posts() -> &'static [AnalyzedPost] {
    static POSTS_ANALYZED: OnceLock<Vec<AnalyzedPost>> = OnceLock::new();
    POSTS_ANALYZED.get_or_init(|| {
        POSTS
            .iter()
            .map(|line| {
                let post = decode(line.as_bytes(), &DecodeLimits::default(), origin())
                    .expect("the fuzz harness's posts decode");
                let analysis = shared_analyzer().analyze_post(&post);
                AnalyzedPost { post, analysis }
            })
            .collect()
    })
}

/// Checks what the index and snippets rely on: offsets inside the text, on character
/// boundaries, and tokens in position order.
fn check_tokens(text: &str, tokens: &[Token]) {
    let mut position = 0;
    for token in tokens {
        let (from, to) = (token.offset_from as usize, token.offset_to as usize);
        assert!(
            from <= to && to <= text.len(),
            "token {token:?} is outside the text"
        );
        assert!(
            text.is_char_boundary(from) && text.is_char_boundary(to),
            "token {token:?} cuts a character"
        );
        assert!(
            token.position >= position,
            "token {token:?} is out of order"
        );
        position = token.position;
    }
}

fn check_analysis(text: &str, analysis: &Analysis) {
    assert!(!analysis.lang.is_empty(), "empty language code");
    check_tokens(text, &analysis.tokens);
}

/// Target `decode_post`: one Kafka message or file line, decoded as the sources do.
///
/// A message either decodes to a post that passed validation or is a rejection with a
/// detail; nothing else.
pub fn decode_post(data: &[u8]) {
    let limits = DecodeLimits {
        max_text_bytes: 4096,
        max_message_bytes: 64 * 1024,
        // A fixed clock, so that runs are reproducible.
        not_after: Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).single(),
    };
    match decode(data, &limits, origin()) {
        Ok(post) => {
            assert!(!post.id.trim().is_empty(), "decoded a post without id");
            assert!(!post.text.trim().is_empty(), "decoded a post without text");
            assert!(
                post.text.len() <= limits.max_text_bytes,
                "text over the limit"
            );
            assert!(limits.not_after.is_none_or(|t| post.created_at <= t));
        }
        Err(rejection) => {
            assert!(!rejection.detail.is_empty(), "rejection without detail");
            let _ = rejection.to_string();
        }
    }
}

/// Target `analyzer`: text as the analyzer sees it from posts and from queries.
///
/// A first byte `{` makes the whole input a post message, decoded then analyzed with
/// `analyze_post` (given hashtags, mentions, links); otherwise the first byte picks a
/// language hint and the rest is the text, analyzed as a post's text and as a query.
pub fn analyzer(data: &[u8]) {
    let analyzer = shared_analyzer();
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    if first == b'{' {
        if let Ok(post) = decode(data, &DecodeLimits::default(), origin()) {
            let analysis = analyzer.analyze_post(&post);
            check_analysis(&post.text, &analysis);
        }
        return;
    }
    let hint = LANG_HINTS[usize::from(first) % LANG_HINTS.len()];
    let text = String::from_utf8_lossy(rest);
    check_analysis(&text, &analyzer.analyze(&text, hint));
    check_tokens(&text, &analyzer.analyze_query(&text, hint));
    let _ = vigie_tokenize::fold_term(&text);
}

/// Stack size of the threads that parse queries in the daemon (Tokio's default for the
/// `vigie-rt` workers), so that a recursion too deep for the daemon is too deep here too
/// (the fuzzer's own main thread has 8 MiB).
const DAEMON_STACK_BYTES: usize = 2 * 1024 * 1024;

/// Runs `work` on a thread with the daemon's stack size and returns its result; a panic
/// there is a panic here.
fn on_daemon_stack<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("vigie-rt".into())
            .stack_size(DAEMON_STACK_BYTES)
            .spawn_scoped(scope, work)
            .expect("spawn a thread")
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// A small index of [`POSTS`] in a temporary directory, for the search target.
struct SearchHarness {
    searcher: PostSearcher,
    // Kept alive for the searcher; dropped (and the directory removed) with the thread.
    _index: PostIndex,
    _dir: TempDir,
}

impl SearchHarness {
    fn new() -> SearchHarness {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = IndexConfig {
            writer_memory_mb: 20,
            writer_threads: Some(1),
            ..IndexConfig::default()
        };
        let mut index =
            PostIndex::open(dir.path(), shared_analyzer(), config).expect("a fresh index");
        for post in analyzed_posts() {
            index.add(post).expect("the harness's posts index");
        }
        index
            .commit(&vigie_domain::Checkpoint::new())
            .expect("the first commit");
        SearchHarness {
            searcher: index.searcher(),
            _index: index,
            _dir: dir,
        }
    }
}

thread_local! {
    static SEARCH: RefCell<Option<SearchHarness>> = const { RefCell::new(None) };
}

/// Target `search_query`: the `q` of `GET /api/v1/search` and `vigie search`, run against
/// a real index.
///
/// A query either gives results within the limit or an error meant for the user (HTTP
/// 400); an error of another kind would be a 500 for bad input.
pub fn search_query(data: &[u8]) {
    let request = SearchRequest {
        query: String::from_utf8_lossy(data).into_owned(),
        limit: 5,
        // Both orders, chosen by the input so that a run is reproducible.
        order: if data.len() % 2 == 0 {
            SearchOrder::Newest
        } else {
            SearchOrder::Relevance
        },
        ..SearchRequest::default()
    };
    SEARCH.with(|cell| {
        let mut cell = cell.borrow_mut();
        let harness = cell.get_or_insert_with(SearchHarness::new);
        match on_daemon_stack(|| harness.searcher.search(&request)) {
            Ok(results) => {
                assert!(results.hits.len() <= 5, "more hits than the limit");
                assert!(results.total_hits >= results.hits.len(), "total below hits");
            }
            Err(err) => assert!(
                is_user_query_error(&err),
                "query {:?} failed with an error that is not the user's: {err}",
                request.query
            ),
        }
    });
}

/// Whether a search error is one the HTTP API reports as 400 (the user's query).
pub fn is_user_query_error(err: &IndexError) -> bool {
    matches!(err, IndexError::Query { .. })
}

/// Target `watchlist_query`: the `query` of a watchlist entry (`POST /api/v1/watchlists`,
/// `[[detect.watchlists]]`), parsed, then matched against analyzed posts.
///
/// A query either compiles or is refused as an invalid watch query.
pub fn watchlist_query(data: &[u8]) {
    let entry = WatchEntry {
        name: "fuzz".into(),
        query: Some(String::from_utf8_lossy(data).into_owned()),
        domains: Vec::new(),
        accounts: Vec::new(),
    };
    let added = on_daemon_stack(|| -> Result<(), DetectError> {
        let mut watchlists = Watchlists::new(shared_analyzer(), &[]).expect("no entries");
        watchlists.add(entry)?;
        for post in analyzed_posts() {
            let _ = watchlists.matches(post);
        }
        Ok(())
    });
    match added {
        Ok(()) => {}
        Err(err) => assert!(
            is_user_watch_error(&err),
            "a watch query failed with an error that is not about the query: {err}"
        ),
    }
}

/// Whether a watchlist error is about the query (HTTP 400).
pub fn is_user_watch_error(err: &DetectError) -> bool {
    matches!(err, DetectError::InvalidWatchQuery { .. })
}

/// Target `journal`: the bytes of an outbox journal (`outbox/journal.jsonl`) left by an
/// earlier run, torn or corrupt anywhere, read as the daemon does at start.
///
/// Every line is either a record or counted as corrupt; reading through a file's small
/// buffer gives the same as reading the bytes at once; and what compaction writes back
/// (the records, re-encoded) reads back whole.
pub fn journal(data: &[u8]) {
    let parsed = parse_journal(data);
    let line_count = data.iter().filter(|&&b| b == b'\n').count() as u64
        + u64::from(!data.is_empty() && !data.ends_with(b"\n"));
    assert!(
        parsed.records.len() as u64 + parsed.corrupt_lines.len() as u64 <= line_count,
        "more records and corrupt lines than lines"
    );
    assert!(
        parsed.corrupt_lines.windows(2).all(|w| w[0] < w[1])
            && parsed
                .corrupt_lines
                .iter()
                .all(|&n| (1..=line_count).contains(&n)),
        "corrupt line numbers out of order or range: {:?}",
        parsed.corrupt_lines
    );
    let capacity = 1 + data.len() % 61;
    let streamed = read_journal(BufReader::with_capacity(capacity, data))
        .expect("reading from a byte slice cannot fail");
    assert_eq!(
        streamed, parsed,
        "a buffer of {capacity} bytes reads differently"
    );
    let mut encoded = Vec::new();
    for record in &parsed.records {
        serde_json::to_writer(&mut encoded, record).expect("a parsed record encodes");
        encoded.push(b'\n');
    }
    let reread = parse_journal(&encoded);
    assert!(
        reread.corrupt_lines.is_empty() && reread.records.len() == parsed.records.len(),
        "re-encoded records do not read back: {:?}",
        reread.corrupt_lines
    );
}
