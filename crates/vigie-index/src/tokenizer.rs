//! Tantivy tokenizers for query parsing and snippets.
//!
//! Indexing never runs these on post text: posts arrive already analyzed and are indexed
//! from their tokens. They exist so that the query parser and the snippet generator, which
//! only know how to call a Tantivy tokenizer, analyze text the way the indexer did.

use std::sync::Arc;

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};
use tantivy::Index;
use vigie_domain::QueryAnalyzer;

/// Tokenizer name of the `text` field.
pub(crate) const TEXT_TOKENIZER: &str = "vigie";

/// Tokenizer name of the keyword fields (author, lang, hashtags, mentions, domains, urls).
pub(crate) const KEYWORD_TOKENIZER: &str = "vigie_keyword";

/// Registers both tokenizers on an index; needed after every open, since Tantivy stores
/// only their names.
pub(crate) fn register_tokenizers(index: &Index, analyzer: Arc<dyn QueryAnalyzer>) {
    index.tokenizers().register(
        TEXT_TOKENIZER,
        QueryTextTokenizer {
            analyzer: analyzer.clone(),
        },
    );
    index
        .tokenizers()
        .register(KEYWORD_TOKENIZER, KeywordTokenizer { analyzer });
}

/// Analyzes text with [`QueryAnalyzer::analyze_query`]: one term per position, matching the
/// terms the index holds for any inflected form of a word.
#[derive(Clone)]
pub(crate) struct QueryTextTokenizer {
    analyzer: Arc<dyn QueryAnalyzer>,
}

impl Tokenizer for QueryTextTokenizer {
    type TokenStream<'a> = VecTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        // No language hint: query text is too short to trust detection on its own, and
        // analyze_query is specified to match the index's terms without one.
        let tokens = self
            .analyzer
            .analyze_query(text, None)
            .into_iter()
            .map(|token| Token {
                offset_from: token.offset_from as usize,
                offset_to: token.offset_to as usize,
                position: token.position as usize,
                text: token.text,
                position_length: 1,
            })
            .collect();
        VecTokenStream::new(tokens)
    }
}

/// Turns a whole value into one term: trimmed, lowercased, without a leading `#` or `@`.
///
/// The index stores hashtags and mentions folded and without their sigil, so this lets
/// `hashtags:#KochFarms` and `author:@Someone` match what the analyzer produced.
#[derive(Clone)]
pub(crate) struct KeywordTokenizer {
    analyzer: Arc<dyn QueryAnalyzer>,
}

impl Tokenizer for KeywordTokenizer {
    type TokenStream<'a> = VecTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        let term = fold_keyword(self.analyzer.as_ref(), text);
        let tokens = if term.is_empty() {
            Vec::new()
        } else {
            vec![Token {
                offset_from: 0,
                offset_to: text.len(),
                position: 0,
                text: term,
                position_length: 1,
            }]
        };
        VecTokenStream::new(tokens)
    }
}

/// Folds a keyword value the way [`KeywordTokenizer`] does.
pub(crate) fn fold_keyword(analyzer: &dyn QueryAnalyzer, text: &str) -> String {
    let trimmed = text.trim();
    let bare = trimmed.strip_prefix(['#', '@']).unwrap_or(trimmed);
    analyzer.fold_term(bare)
}

/// A token stream over tokens computed up front.
pub(crate) struct VecTokenStream {
    tokens: Vec<Token>,
    /// Index of the current token plus one; 0 before the first `advance`.
    next: usize,
}

impl VecTokenStream {
    fn new(tokens: Vec<Token>) -> VecTokenStream {
        VecTokenStream { tokens, next: 0 }
    }
}

impl TokenStream for VecTokenStream {
    fn advance(&mut self) -> bool {
        if self.next < self.tokens.len() {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(non_snake_case)]
    fn KeywordTokenizer() -> super::KeywordTokenizer {
        super::KeywordTokenizer {
            analyzer: crate::testing::analyzer(),
        }
    }

    fn terms(mut tokenizer: impl Tokenizer, text: &str) -> Vec<String> {
        let mut stream = tokenizer.token_stream(text);
        let mut terms = Vec::new();
        stream.process(&mut |token| terms.push(token.text.clone()));
        terms
    }

    #[test]
    fn keyword_tokenizer_folds_case_and_sigils() {
        assert_eq!(terms(KeywordTokenizer(), "#KochFarms"), vec!["kochfarms"]);
        assert_eq!(terms(KeywordTokenizer(), " @U_123 "), vec!["u_123"]);
        assert_eq!(
            terms(KeywordTokenizer(), "NYTimes.com"),
            vec!["nytimes.com"]
        );
        assert!(terms(KeywordTokenizer(), "  ").is_empty());
        // Accents and compatibility forms fold like the analyzer folds hashtags.
        assert_eq!(terms(KeywordTokenizer(), "#Élection"), vec!["election"]);
        assert_eq!(
            terms(KeywordTokenizer(), "#ＫｏｃｈFarms"),
            vec!["kochfarms"]
        );
    }
}
