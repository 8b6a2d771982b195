//! The analyzer's output: a post's terms, computed once.

use serde::{Deserialize, Serialize};

use crate::Post;

/// What a token is; detection and the index treat kinds differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// A word's canonical term: folded and, where the language allows, stemmed.
    /// This is the term detection counts.
    Word,
    /// Another form of the word at the same position (its folded surface form, or its
    /// stem in the script's default language), indexed so that searches in another
    /// language than the post's still match. Detection ignores variants.
    Variant,
    /// A whole hashtag, folded, without `#` (`standwithukraine`).
    Hashtag,
    /// One word of a hashtag split on case and digit boundaries (`stand`, `ukraine`).
    HashtagPart,
    /// A mentioned account, folded, without `@`.
    Mention,
    /// A link, normalised: lowercase scheme and host, no tracking parameters, no fragment.
    Url,
    /// A link's host without `www.`.
    Domain,
    /// An emoji, kept as is.
    Emoji,
}

/// One term of a post.
///
/// Tokens sharing a `position` are alternatives for the same stretch of text (a word and
/// its variants, a hashtag and its first part), so phrase search works across them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// The term itself.
    pub text: String,
    /// What the term is.
    pub kind: TokenKind,
    /// Position in the post, in words.
    pub position: u32,
    /// Byte offset where the source text of the token starts.
    pub offset_from: u32,
    /// Byte offset where the source text of the token ends.
    pub offset_to: u32,
}

/// How the analyzer settled on a post's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LangSource {
    /// The producer gave it (`lang` field); trusted.
    Given,
    /// Identified from the text with enough confidence.
    Detected,
    /// Identification was unreliable: the language-neutral analysis was used.
    Fallback,
}

/// A post's analysis: its language and its terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Analysis {
    /// ISO 639-1 code of the language used for analysis, or `und` when unknown.
    pub lang: String,
    /// How `lang` was decided.
    pub lang_source: LangSource,
    /// All terms, in position order.
    pub tokens: Vec<Token>,
}

impl Analysis {
    /// Returns the terms of a kind, in order, duplicates included.
    pub fn terms_of(&self, kind: TokenKind) -> impl Iterator<Item = &str> + '_ {
        self.tokens
            .iter()
            .filter(move |t| t.kind == kind)
            .map(|t| t.text.as_str())
    }

    /// Returns the distinct terms detection counts (everything but variants), sorted.
    pub fn detection_terms(&self) -> Vec<&str> {
        let mut terms: Vec<&str> = self
            .tokens
            .iter()
            .filter(|t| t.kind != TokenKind::Variant)
            .map(|t| t.text.as_str())
            .collect();
        terms.sort_unstable();
        terms.dedup();
        terms
    }
}

/// A post together with its analysis: what flows from the analyzer to the index and to
/// detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyzedPost {
    /// The post.
    pub post: Post,
    /// Its terms.
    pub analysis: Analysis,
}

/// What later stages need of the analyzer: query text analyzed the way posts were, so that
/// watch queries (detection) and searches (the index) match the terms posts carry, and
/// keywords folded the same way. `vigie_tokenize::Analyzer` implements it; the stages take
/// an `Arc<dyn QueryAnalyzer>`, so no stage crate depends on the analyzer's (issue 9).
pub trait QueryAnalyzer: Send + Sync + std::fmt::Debug {
    /// Returns the tokens of query text: one term per position, matching the terms posts
    /// hold for any inflected form of a word. `lang` is a hint; `None` when unknown.
    fn analyze_query(&self, text: &str, lang: Option<&str>) -> Vec<Token>;

    /// Returns a term (a hashtag or mention without its sigil, a language code) folded as
    /// the analyzer folds terms.
    fn fold_term(&self, text: &str) -> String;
}
