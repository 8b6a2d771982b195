//! Issue 8, item 4 ("readable and honest evidence"), over real streams committed in the
//! repository: the built-in IRA sample and the PHEME fixture.
//!
//! Acceptance row: "Every word of a narrative label appears as a whole word in one of its
//! posts (a test over the sample and pheme); no two representative posts of an alert are
//! near-duplicates (a test)." Both are checked on every narrative of every event, claims
//! included, not only on the final state.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vigie_domain::{
    decode_post, AnalyzedPost, DecodeLimits, Narrative, NarrativeEventKind, Origin,
};
use vigie_tokenize::{Analyzer, AnalyzerConfig};

use crate::evidence::normalized;
use crate::features::extract;
use crate::hashing::estimated_jaccard;
use crate::{Detector, DetectorConfig};

fn repository_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

fn load(path: &Path, analyzer: &Analyzer) -> Vec<AnalyzedPost> {
    let file = std::fs::File::open(path).expect("the fixture is committed");
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut posts: Vec<AnalyzedPost> = BufReader::new(reader)
        .lines()
        .map_while(Result::ok)
        .enumerate()
        .filter_map(|(line, text)| {
            let origin = Origin::File {
                path: path.display().to_string(),
                line: line as u64 + 1,
            };
            decode_post(text.as_bytes(), &DecodeLimits::default(), origin).ok()
        })
        .map(|post| AnalyzedPost {
            analysis: analyzer.analyze_post(&post),
            post,
        })
        .collect();
    // The detector takes posts in event-time order, as `vigie replay` gives them.
    posts.sort_by_key(|p| p.post.created_at);
    posts
}

/// Every narrative reported while replaying the stream, with the ids of all the posts it
/// held up to then (its members over all events, and those of the narratives it absorbed).
fn replay(posts: &[AnalyzedPost]) -> Vec<(Narrative, HashSet<String>)> {
    let analyzer = Arc::new(Analyzer::new(AnalyzerConfig::default()));
    let mut detector = Detector::new(DetectorConfig::default(), analyzer).unwrap();
    let mut members: HashMap<u64, HashSet<String>> = HashMap::new();
    let mut reported = Vec::new();
    for post in posts {
        for event in detector.observe(post) {
            let id = event.narrative.id.0;
            if let NarrativeEventKind::Merged { absorbed, .. } = &event.kind {
                let theirs = members.remove(&absorbed.0).unwrap_or_default();
                members.entry(id).or_default().extend(theirs);
            }
            let mine = members.entry(id).or_default();
            mine.extend(event.narrative.member_post_ids.iter().cloned());
            reported.push((event.narrative, mine.clone()));
        }
    }
    reported
}

/// Returns whether `word` occurs in `text` delimited by non-alphanumeric characters (or
/// the text's ends), case-insensitively.
fn has_whole_word(text: &str, word: &str) -> bool {
    let (text, word) = (text.to_lowercase(), word.to_lowercase());
    text.match_indices(&word).any(|(start, _)| {
        let before = text[..start].chars().next_back();
        let after = text[start + word.len()..].chars().next();
        // A hashtag or mention starts with its own delimiter.
        let starts = word.starts_with(['#', '@']) || before.is_none_or(|c| !c.is_alphanumeric());
        starts && after.is_none_or(|c| !c.is_alphanumeric())
    })
}

fn assert_label_words_in_member_posts(stream: &str, posts: &[AnalyzedPost]) -> usize {
    let texts: HashMap<&str, &str> = posts
        .iter()
        .map(|p| (p.post.id.as_str(), p.post.text.as_str()))
        .collect();
    let reported = replay(posts);
    let mut checked = 0;
    for (narrative, members) in &reported {
        for word in narrative.label.split_whitespace() {
            assert!(
                members
                    .iter()
                    .filter_map(|id| texts.get(id.as_str()))
                    .any(|text| has_whole_word(text, word)),
                "{stream}: label word {word:?} of {} {:?} is in none of its {} posts",
                narrative.id,
                narrative.label,
                members.len()
            );
            checked += 1;
        }
    }
    checked
}

fn assert_representatives_are_not_near_duplicates(posts: &[AnalyzedPost]) -> usize {
    let config = DetectorConfig::default();
    let ignored: HashSet<String> = config.ignored_terms.iter().cloned().collect();
    let signatures: HashMap<&str, _> = posts
        .iter()
        .map(|p| {
            let features = extract(p, &ignored, config.max_pair_terms_per_post);
            (p.post.id.as_str(), features.signature)
        })
        .collect();
    let mut pairs = 0;
    for (narrative, _) in replay(posts) {
        let shown = &narrative.representatives;
        let ids: Vec<&str> = shown.iter().map(|r| r.post_id.as_str()).collect();
        assert_eq!(narrative.representative_post_ids, ids);
        for (i, a) in shown.iter().enumerate() {
            assert!(a.copies >= 1);
            for b in &shown[i + 1..] {
                assert_ne!(
                    normalized(&a.text),
                    normalized(&b.text),
                    "{}: {a:?} and {b:?}",
                    narrative.id
                );
                if let (Some(Some(x)), Some(Some(y))) = (
                    signatures.get(a.post_id.as_str()),
                    signatures.get(b.post_id.as_str()),
                ) {
                    let jaccard = estimated_jaccard(x, y);
                    assert!(
                        jaccard < config.near_duplicate_jaccard,
                        "{}: {a:?} and {b:?} are near-duplicates ({jaccard})",
                        narrative.id
                    );
                }
                pairs += 1;
            }
        }
    }
    pairs
}

fn sample() -> Vec<AnalyzedPost> {
    let analyzer = Analyzer::new(AnalyzerConfig::default());
    load(
        &repository_file("crates/vigie-daemon/data/sample.jsonl.gz"),
        &analyzer,
    )
}

fn pheme() -> Vec<AnalyzedPost> {
    let analyzer = Analyzer::new(AnalyzerConfig::default());
    load(
        &repository_file("tests/fixtures/pheme-sample.jsonl"),
        &analyzer,
    )
}

#[test]
fn issue_8_every_label_word_appears_whole_in_a_member_post() {
    let words = assert_label_words_in_member_posts("sample", &sample());
    assert!(
        words > 100,
        "the sample makes labelled narratives ({words} words)"
    );
    let words = assert_label_words_in_member_posts("pheme", &pheme());
    assert!(
        words > 20,
        "the pheme fixture makes labelled narratives ({words} words)"
    );
}

#[test]
fn issue_8_no_two_representatives_are_near_duplicates() {
    let pairs = assert_representatives_are_not_near_duplicates(&sample())
        + assert_representatives_are_not_near_duplicates(&pheme());
    assert!(
        pairs > 100,
        "narratives show several representatives ({pairs} pairs)"
    );
}

#[test]
fn whole_words_are_delimited() {
    assert!(has_whole_word("Gunmen attack Charlie Hebdo", "hebdo"));
    assert!(has_whole_word("pray for #CharlieHebdo!", "#charliehebdo"));
    assert!(!has_whole_word("pray for #CharlieHebdos", "#CharlieHebdo"));
    assert!(!has_whole_word("Hebdomadaire", "hebdo"));
    assert!(has_whole_word("МИД Бельгии", "бельгии"));
}
