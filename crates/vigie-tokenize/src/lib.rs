//! The multilingual analyzer: turns each post into the terms every later stage uses,
//! computed once ("tokenize once") and shared by the index and by detection.
//!
//! [`Analyzer::analyze_post`] gives a [`vigie_domain::Analysis`]: the post's language
//! (trusted from the producer, else identified with whatlang, else `und` for the
//! language-neutral analysis) and its tokens. [`Analyzer::analyze_query`] turns a search
//! query into terms that match those tokens whatever the post's language.
//!
//! # Layout
//!
//! - `scan`: cuts text into words (UAX #29), Han runs, hashtags, mentions, links, emoji.
//! - `fold`: lowercase, NFKC, accent and letter-variant folding, per script.
//! - `languages`: language codes, identification, stemmers and stopword sets.
//! - `ukrainian`: a Ukrainian suffix-stripping stemmer (no crate has one).
//! - `url_norm`: link normal form without tracking parameters.
//! - `analyzer`: puts them together and chooses the terms.
//!
//! # Terms
//!
//! A word's `Word` term is folded and stemmed in the post's language (Snowball stemmers
//! from rust-stemmers, our Ukrainian one); at the same position, `Variant` terms carry its
//! folded surface form, its stem in the script's default language (Latin → en, Cyrillic →
//! ru, Arabic → ar) and, for Cyrillic words, its Ukrainian stem. Queries use one of those
//! forms, so a query for `войны` finds posts with `войну` or `войне` even when the query's
//! language is unknown, and `війни` finds `війну`.
//! Stopwords (stop-words crate: NLTK lists, ISO where NLTK has none) are dropped. Chinese
//! is cut with jieba. Hashtags give the whole tag and its words, mentions the account,
//! links their normal form and domain; emoji are kept as they are.
//!
//! This crate does no I/O; the daemon decides where posts come from and go to.
#![warn(missing_docs)]

mod analyzer;
mod config;
mod fold;
mod languages;
mod scan;
mod ukrainian;
mod url_norm;

pub use analyzer::Analyzer;
pub use config::{AnalyzerConfig, ConfigError};

/// Folds a term the way the analyzer folds hashtags and mentions (Unicode NFKC, lowercase,
/// accents stripped where the script allows), so keyword fields queried by name
/// (`hashtags:#Élection`) meet the analyzer's terms (`election`).
pub fn fold_term(text: &str) -> String {
    fold::fold_word(text)
}

impl vigie_domain::QueryAnalyzer for Analyzer {
    fn analyze_query(&self, text: &str, lang: Option<&str>) -> Vec<vigie_domain::Token> {
        Analyzer::analyze_query(self, text, lang)
    }

    fn fold_term(&self, text: &str) -> String {
        fold_term(text)
    }
}
