//! What detection takes from one analyzed post: its counted terms, the subset combined
//! into pairs, its MinHash signature and its links. Computed once per post.

use std::collections::HashSet;

use vigie_domain::{AnalyzedPost, Token, TokenKind};

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
    /// Its most literal original spelling in this post, cut from the post text: a word
    /// as written (`Захарова` for `захаров`), a hashtag without `#` in its original case,
    /// a mention as `@name`; the canonical text when the token has no usable offsets
    /// (hashtags and mentions given by the producer, a domain not spelled in its link).
    pub surface: String,
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

/// Returns the original spelling of a token in `text` (see [`PostTerm::surface`]).
/// Offsets come from the analyzer; an offset out of range or off a character boundary
/// yields the canonical text rather than a panic, and so does a spelling with spaces,
/// which a label could not show as one word.
pub(crate) fn surface(text: &str, token: &Token) -> String {
    let (from, to) = (token.offset_from as usize, token.offset_to as usize);
    let written = if from < to { text.get(from..to) } else { None };
    let canonical = || match token.kind {
        TokenKind::Mention => format!("@{}", token.text),
        _ => token.text.clone(),
    };
    let Some(written) = written else {
        return canonical();
    };
    let spelled = match token.kind {
        TokenKind::Hashtag => written.trim_start_matches(['#', '＃']).to_owned(),
        TokenKind::Mention => {
            let name = written.trim_start_matches(['@', '＠']);
            format!("@{name}")
        }
        // A domain's offsets span its whole link; keep the domain as the link spells it.
        TokenKind::Domain => {
            let lowered = written.to_lowercase();
            lowered
                .find(&token.text)
                .filter(|_| lowered.len() == written.len())
                .and_then(|start| written.get(start..start + token.text.len()))
                .map_or_else(|| token.text.clone(), str::to_owned)
        }
        _ => written.to_owned(),
    };
    if spelled.trim_start_matches(['@', '＠']).is_empty() || spelled.contains(char::is_whitespace)
    {
        canonical()
    } else {
        spelled
    }
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
            surface: surface(&post.post.text, token),
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

    #[test]
    fn surfaces_are_cut_from_the_text_as_written() {
        let analyzer = Analyzer::new(AnalyzerConfig::default());
        let text = "Захарова: МИД Бельгии @UN_News #KochFarms http://WWW.Example.com/a";
        let mut post = Post::for_test("1", text, Utc.timestamp_opt(0, 0).unwrap());
        post.lang = Some("ru".into());
        post.hashtags = vec!["GivenOnly".into()];
        let analyzed = AnalyzedPost {
            analysis: analyzer.analyze_post(&post),
            post,
        };
        let features = extract(&analyzed, &HashSet::new(), 3);
        let surfaces: Vec<&str> = features.terms.iter().map(|t| t.surface.as_str()).collect();
        for expected in [
            "Захарова",
            "МИД",
            "Бельгии",
            "@UN_News",
            "KochFarms",
            "Example.com",
        ] {
            assert!(surfaces.contains(&expected), "{expected} in {surfaces:?}");
        }
        // A hashtag given by the producer has no offsets: its canonical text.
        assert!(surfaces.contains(&"givenonly"), "{surfaces:?}");
        // Bad offsets never panic.
        let mut token = analyzed.analysis.tokens[0].clone();
        for (from, to) in [(0, 1000), (1, 2), (5, 3), (u32::MAX, u32::MAX)] {
            token.offset_from = from;
            token.offset_to = to;
            assert!(!surface(text, &token).is_empty());
        }
    }
}
