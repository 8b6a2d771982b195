//! What detection takes from one analyzed post: its counted terms, the subset combined
//! into pairs, its MinHash signature and its links. Computed once per post.

use std::collections::HashSet;

use vigie_domain::{AnalyzedPost, TokenKind};

use crate::hashing::{hash_bytes, minhash, term_hash, MINHASH_LEN};

/// A term detection counts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PostTerm {
    /// Its hash (kind and text).
    pub hash: u64,
    /// Its kind.
    pub kind: TokenKind,
    /// Its text.
    pub text: String,
}

/// Detection's view of one post.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PostFeatures {
    /// Distinct counted terms, sorted by hash.
    pub terms: Vec<PostTerm>,
    /// Indexes into `terms` of the terms combined into pairs.
    pub pair_terms: Vec<usize>,
    /// MinHash of the post's word bigrams; `None` for posts under three words, too short
    /// to call near-duplicates.
    pub signature: Option<[u32; MINHASH_LEN]>,
    /// Normalised links.
    pub links: Vec<String>,
    /// Hashtags, folded.
    pub hashtags: Vec<String>,
}

/// Returns whether a token kind is counted for bursts. Words, hashtags, mentions and
/// domains name what a story is about; variants and hashtag parts repeat words, full
/// links are nearly unique per post (they feed coordination instead), and emoji are
/// mood rather than topic.
fn counted(kind: TokenKind) -> bool {
    matches!(
        kind,
        TokenKind::Word | TokenKind::Hashtag | TokenKind::Mention | TokenKind::Domain
    )
}

/// Extracts the features of a post; `ignored` holds folded terms never counted.
pub(crate) fn extract(
    post: &AnalyzedPost,
    ignored: &HashSet<String>,
    max_pair_terms: usize,
) -> PostFeatures {
    let tokens = &post.analysis.tokens;
    let keep = |kind: TokenKind, text: &str| {
        counted(kind)
            && !ignored.contains(text)
            // One Latin letter or digit is noise; one Han character is a word.
            && !(text.len() == 1 && text.is_ascii())
    };
    let mut terms: Vec<PostTerm> = Vec::new();
    // Pair candidates in priority order: hashtags, mentions, domains, then words as they
    // come in the text (SigniTrend pairs all words of a short tweet; we bound the count).
    let mut priority: Vec<(u8, usize, u64)> = Vec::new();
    for (order, token) in tokens.iter().enumerate() {
        if !keep(token.kind, &token.text) {
            continue;
        }
        let hash = term_hash(token.kind, &token.text);
        if terms.iter().any(|t| t.hash == hash) {
            continue;
        }
        let rank = match token.kind {
            TokenKind::Hashtag => 0,
            TokenKind::Mention => 1,
            TokenKind::Domain => 2,
            _ => 3,
        };
        priority.push((rank, order, hash));
        terms.push(PostTerm {
            hash,
            kind: token.kind,
            text: token.text.clone(),
        });
    }
    priority.sort_unstable();
    terms.sort_unstable_by_key(|t| t.hash);
    let pair_terms = priority
        .iter()
        .take(max_pair_terms)
        .map(|(_, _, hash)| {
            terms
                .binary_search_by_key(hash, |t| t.hash)
                .expect("every candidate is a term")
        })
        .collect();

    let words: Vec<&str> = tokens
        .iter()
        .filter(|t| matches!(t.kind, TokenKind::Word | TokenKind::Hashtag))
        .map(|t| t.text.as_str())
        .filter(|text| !ignored.contains(*text))
        .collect();
    let signature = if words.len() >= 3 {
        let shingles: Vec<u64> = words
            .windows(2)
            .map(|pair| hash_bytes(hash_bytes(0, pair[0].as_bytes()), pair[1].as_bytes()))
            .collect();
        minhash(&shingles)
    } else {
        None
    };
    let mut links: Vec<String> = post
        .analysis
        .terms_of(TokenKind::Url)
        .map(str::to_owned)
        .collect();
    links.sort_unstable();
    links.dedup();
    let mut hashtags: Vec<String> = post
        .analysis
        .terms_of(TokenKind::Hashtag)
        .map(str::to_owned)
        .collect();
    hashtags.sort_unstable();
    hashtags.dedup();
    PostFeatures {
        terms,
        pair_terms,
        signature,
        links,
        hashtags,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use vigie_domain::Post;
    use vigie_tokenize::{Analyzer, AnalyzerConfig};

    use super::*;

    #[test]
    fn terms_pairs_and_signatures_come_from_the_analysis() {
        let analyzer = Analyzer::new(AnalyzerConfig::default());
        let mut post = Post::for_test(
            "1",
            "RT @ap: Gunmen attack Charlie Hebdo offices in Paris #CharlieHebdo http://t.co/x",
            Utc.timestamp_opt(0, 0).unwrap(),
        );
        post.lang = Some("en".into());
        let analyzed = AnalyzedPost {
            analysis: analyzer.analyze_post(&post),
            post,
        };
        let ignored: HashSet<String> = ["rt".to_owned(), "t.co".to_owned()].into();
        let features = extract(&analyzed, &ignored, 3);
        let texts: Vec<&str> = features.terms.iter().map(|t| t.text.as_str()).collect();
        assert!(texts.contains(&"charliehebdo") && texts.contains(&"hebdo"));
        assert!(!texts.contains(&"rt") && !texts.contains(&"t.co"));
        assert_eq!(features.pair_terms.len(), 3);
        let first = &features.terms[features.pair_terms[0]];
        assert_eq!(first.kind, TokenKind::Hashtag);
        assert!(features.signature.is_some());
        assert_eq!(features.links, vec!["t.co/x".to_owned()]);
    }
}
