//! Watchlists: analysts' standing queries and lists of domains or accounts. A narrative
//! whose posts match one is raised one severity level.
//!
//! Tantivy lives in `vigie-index` only, so standing queries are matched here against the
//! terms the analyzer already produced for each post. Query syntax (a subset of the
//! search syntax, case-insensitive operators):
//!
//! ```text
//! query   := or
//! or      := and ("OR" and)*
//! and     := unary (["AND"] unary)*        adjacent terms are ANDed
//! unary   := ("NOT" | "-") unary | "(" or ")" | atom
//! atom    := WORD | #hashtag | @account | domain:HOST | author:ID | lang:CODE
//! ```
//!
//! A `WORD` goes through [`QueryAnalyzer::analyze_query`], so `poisoning` matches posts with
//! `poisoned` and `войны` matches `войну`; a query word that is a stopword matches every
//! post. `author:` compares the post's author id exactly, `domain:` a link's host without
//! `www.`. This module stores entries and matches posts; the daemon's HTTP API lists, adds
//! and removes them through [`Watchlists`].
//!
//! Entries come from analysts over HTTP, so everything about them is bounded: the query's
//! length ([`MAX_QUERY_BYTES`]), its nesting ([`MAX_QUERY_DEPTH`], which bounds the
//! recursion of the parser, of matching and of dropping the tree), its terms
//! ([`MAX_QUERY_TERMS`]), the lists of domains and accounts and the number of entries. A
//! query nested thousands deep aborted the daemon with a stack overflow (issue 12, row 2).

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use vigie_domain::{AnalyzedPost, QueryAnalyzer, TokenKind};

use crate::DetectError;

/// Longest accepted watch query, in bytes of UTF-8.
pub const MAX_QUERY_BYTES: usize = 4096;

/// Deepest accepted nesting of parentheses and `NOT`/`-` prefixes in a watch query.
pub const MAX_QUERY_DEPTH: usize = 20;

/// Most terms in one watch query.
pub const MAX_QUERY_TERMS: usize = 256;

/// Most domains plus accounts in one entry.
pub const MAX_ENTRY_ITEMS: usize = 10_000;

/// Longest accepted entry name, in bytes.
pub const MAX_NAME_BYTES: usize = 200;

/// Most entries in force at once.
pub const MAX_ENTRIES: usize = 1000;

/// How much of a query an error message quotes.
const QUOTED_QUERY_CHARS: usize = 120;

/// One watchlist entry; it matches a post when any of its parts does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchEntry {
    /// Unique name, shown in severity reasons.
    pub name: String,
    /// A standing query in the syntax of the module docs.
    #[serde(default)]
    pub query: Option<String>,
    /// Domains whose links are watched (`example.com` also matches `www.example.com`).
    #[serde(default)]
    pub domains: Vec<String>,
    /// Author ids whose posts are watched.
    #[serde(default)]
    pub accounts: Vec<String>,
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
enum QueryNode {
    /// Matches every post (a stopword, an empty group).
    Always,
    /// Matches posts that have the term.
    Term(TermField, String),
    /// Matches when all match.
    And(Vec<QueryNode>),
    /// Matches when one matches.
    Or(Vec<QueryNode>),
    /// Matches when the inner node does not.
    Not(Box<QueryNode>),
}

/// Which part of a post a query term is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TermField {
    /// Word and variant tokens.
    Word,
    /// Hashtag tokens.
    Hashtag,
    /// Mention tokens.
    Mention,
    /// Domain tokens.
    Domain,
    /// The post's author id.
    Author,
    /// The post's analysis language.
    Lang,
}

#[derive(Debug, Clone)]
struct CompiledEntry {
    entry: WatchEntry,
    query: Option<QueryNode>,
    domains: BTreeSet<String>,
    accounts: BTreeSet<String>,
}

/// The analysts' watchlist entries, compiled for matching.
#[derive(Debug, Clone)]
pub struct Watchlists {
    analyzer: Arc<dyn QueryAnalyzer>,
    entries: Vec<CompiledEntry>,
}

impl Watchlists {
    /// Compiles the configured entries; fails on the first invalid one.
    pub fn new(
        analyzer: Arc<dyn QueryAnalyzer>,
        entries: &[WatchEntry],
    ) -> Result<Watchlists, DetectError> {
        let mut watchlists = Watchlists {
            analyzer,
            entries: Vec::new(),
        };
        for entry in entries {
            watchlists.add(entry.clone())?;
        }
        Ok(watchlists)
    }

    /// Returns the entries, in the order they were added.
    pub fn list(&self) -> Vec<WatchEntry> {
        self.entries.iter().map(|e| e.entry.clone()).collect()
    }

    /// Adds an entry; fails if its name is taken, its query does not parse, or it has
    /// nothing to match.
    pub fn add(&mut self, entry: WatchEntry) -> Result<(), DetectError> {
        let invalid = |reason: String| DetectError::InvalidWatchQuery {
            query: quoted(entry.query.as_deref().unwrap_or_default()),
            reason,
        };
        if entry.name.trim().is_empty() || entry.name.len() > MAX_NAME_BYTES {
            return Err(invalid(format!(
                "an entry needs a name of 1 to {MAX_NAME_BYTES} bytes"
            )));
        }
        if entry.domains.len() + entry.accounts.len() > MAX_ENTRY_ITEMS {
            return Err(invalid(format!(
                "entry {:?} lists {} domains and accounts; at most {MAX_ENTRY_ITEMS} are accepted",
                entry.name,
                entry.domains.len() + entry.accounts.len()
            )));
        }
        if self.entries.iter().any(|e| e.entry.name == entry.name) {
            return Err(DetectError::DuplicateWatch { name: entry.name });
        }
        if self.entries.len() >= MAX_ENTRIES {
            return Err(invalid(format!(
                "{MAX_ENTRIES} entries are in force already; remove one first"
            )));
        }
        let query = match &entry.query {
            Some(text) => Some(parse_query(text, self.analyzer.as_ref())?),
            None => None,
        };
        if query.is_none() && entry.domains.is_empty() && entry.accounts.is_empty() {
            return Err(DetectError::InvalidWatchQuery {
                query: String::new(),
                reason: format!("entry {:?} has no query, domain or account", entry.name),
            });
        }
        let domains = entry.domains.iter().map(|d| normalize_domain(d)).collect();
        let accounts = entry.accounts.iter().map(|a| a.trim().to_owned()).collect();
        self.entries.push(CompiledEntry {
            entry,
            query,
            domains,
            accounts,
        });
        Ok(())
    }

    /// Removes the entry with this name; returns whether there was one.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.entry.name != name);
        self.entries.len() != before
    }

    /// Returns whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Returns the names of the entries a post matches.
    pub fn matches<'a>(&'a self, post: &AnalyzedPost) -> Vec<&'a str> {
        self.entries
            .iter()
            .filter(|entry| entry_matches(entry, post))
            .map(|entry| entry.entry.name.as_str())
            .collect()
    }
}

fn entry_matches(entry: &CompiledEntry, post: &AnalyzedPost) -> bool {
    if let Some(author) = &post.post.author {
        if entry.accounts.contains(author) {
            return true;
        }
    }
    if !entry.domains.is_empty()
        && post
            .analysis
            .terms_of(TokenKind::Domain)
            .any(|domain| entry.domains.contains(domain))
    {
        return true;
    }
    entry
        .query
        .as_ref()
        .is_some_and(|query| node_matches(query, post))
}

fn node_matches(node: &QueryNode, post: &AnalyzedPost) -> bool {
    match node {
        QueryNode::Always => true,
        QueryNode::And(nodes) => nodes.iter().all(|n| node_matches(n, post)),
        QueryNode::Or(nodes) => nodes.iter().any(|n| node_matches(n, post)),
        QueryNode::Not(inner) => !node_matches(inner, post),
        QueryNode::Term(field, text) => {
            let has = |kinds: &[TokenKind]| {
                post.analysis
                    .tokens
                    .iter()
                    .any(|t| kinds.contains(&t.kind) && t.text == *text)
            };
            match field {
                TermField::Word => has(&[TokenKind::Word, TokenKind::Variant]),
                TermField::Hashtag => has(&[TokenKind::Hashtag]),
                TermField::Mention => has(&[TokenKind::Mention]),
                TermField::Domain => has(&[TokenKind::Domain]),
                TermField::Author => post.post.author.as_deref() == Some(text.as_str()),
                TermField::Lang => post.analysis.lang == *text,
            }
        }
    }
}

fn normalize_domain(domain: &str) -> String {
    let lower = domain.trim().to_lowercase();
    lower.strip_prefix("www.").unwrap_or(&lower).to_owned()
}

/// Splits a query into words and parentheses.
fn lex(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    for ch in text.chars() {
        if ch == '(' || ch == ')' || ch.is_whitespace() {
            if !current.is_empty() {
                tokens.push(std::mem::take(&mut current));
            }
            if !ch.is_whitespace() {
                tokens.push(ch.to_string());
            }
        } else {
            current.push(ch);
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// Returns the start of a query, for error messages (a refused query may be huge).
fn quoted(query: &str) -> String {
    match query.char_indices().nth(QUOTED_QUERY_CHARS) {
        Some((end, _)) => format!("{}…", &query[..end]),
        None => query.to_owned(),
    }
}

struct Parser<'a> {
    tokens: Vec<String>,
    next: usize,
    /// Parentheses and prefixes open around the current position.
    depth: usize,
    analyzer: &'a dyn QueryAnalyzer,
    query: &'a str,
}

fn parse_query(text: &str, analyzer: &dyn QueryAnalyzer) -> Result<QueryNode, DetectError> {
    let mut parser = Parser {
        tokens: Vec::new(),
        next: 0,
        depth: 0,
        analyzer,
        query: text,
    };
    if text.len() > MAX_QUERY_BYTES {
        return Err(parser.error(&format!(
            "the query is {} bytes long; at most {MAX_QUERY_BYTES} are accepted",
            text.len()
        )));
    }
    parser.tokens = lex(text);
    let terms = parser
        .tokens
        .iter()
        .filter(|t| !matches!(t.as_str(), "(" | ")" | "AND" | "OR" | "NOT"))
        .count();
    if terms > MAX_QUERY_TERMS {
        return Err(parser.error(&format!(
            "the query has {terms} terms; at most {MAX_QUERY_TERMS} are accepted"
        )));
    }
    if parser.tokens.is_empty() {
        return Err(parser.error("the query is empty"));
    }
    let node = parser.or()?;
    if parser.next < parser.tokens.len() {
        return Err(parser.error(&format!("unexpected {:?}", parser.tokens[parser.next])));
    }
    Ok(node)
}

impl Parser<'_> {
    fn error(&self, reason: &str) -> DetectError {
        DetectError::InvalidWatchQuery {
            query: quoted(self.query),
            reason: reason.to_owned(),
        }
    }

    /// Enters one more level of nesting, refusing to go past [`MAX_QUERY_DEPTH`] so that
    /// the recursion below stays bounded whatever the input.
    fn enter(&mut self) -> Result<(), DetectError> {
        self.depth += 1;
        if self.depth > MAX_QUERY_DEPTH {
            return Err(self.error(&format!(
                "the query nests parentheses and NOT more than {MAX_QUERY_DEPTH} levels deep"
            )));
        }
        Ok(())
    }

    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.next).map(String::as_str)
    }

    fn or(&mut self) -> Result<QueryNode, DetectError> {
        let mut nodes = vec![self.and()?];
        while self.peek() == Some("OR") {
            self.next += 1;
            nodes.push(self.and()?);
        }
        Ok(if nodes.len() == 1 {
            nodes.remove(0)
        } else {
            QueryNode::Or(nodes)
        })
    }

    fn and(&mut self) -> Result<QueryNode, DetectError> {
        let mut nodes = vec![self.unary()?];
        loop {
            match self.peek() {
                Some("AND") => {
                    self.next += 1;
                    nodes.push(self.unary()?);
                }
                Some("OR") | Some(")") | None => break,
                Some(_) => nodes.push(self.unary()?),
            }
        }
        Ok(if nodes.len() == 1 {
            nodes.remove(0)
        } else {
            QueryNode::And(nodes)
        })
    }

    fn unary(&mut self) -> Result<QueryNode, DetectError> {
        let Some(token) = self.peek().map(str::to_owned) else {
            return Err(self.error("the query ends where a term was expected"));
        };
        self.next += 1;
        match token.as_str() {
            "NOT" => {
                self.enter()?;
                let inner = self.unary()?;
                self.depth -= 1;
                Ok(QueryNode::Not(Box::new(inner)))
            }
            "(" => {
                self.enter()?;
                let inner = self.or()?;
                if self.peek() != Some(")") {
                    return Err(self.error("a `(` is not closed"));
                }
                self.next += 1;
                self.depth -= 1;
                Ok(inner)
            }
            ")" | "AND" | "OR" => Err(self.error(&format!("unexpected {token:?}"))),
            _ if token.len() > 1 && token.starts_with('-') => {
                let inner = self.atom(&token[1..])?;
                Ok(QueryNode::Not(Box::new(inner)))
            }
            _ => self.atom(&token),
        }
    }

    fn atom(&self, token: &str) -> Result<QueryNode, DetectError> {
        let field_value = |prefix: &str| token.strip_prefix(prefix).filter(|v| !v.is_empty());
        if let Some(domain) = field_value("domain:") {
            return Ok(QueryNode::Term(TermField::Domain, normalize_domain(domain)));
        }
        if let Some(author) = field_value("author:") {
            return Ok(QueryNode::Term(TermField::Author, author.to_owned()));
        }
        if let Some(lang) = field_value("lang:") {
            return Ok(QueryNode::Term(TermField::Lang, lang.to_lowercase()));
        }
        let terms: Vec<QueryNode> = self
            .analyzer
            .analyze_query(token, None)
            .into_iter()
            .filter_map(|t| {
                let field = match t.kind {
                    TokenKind::Word | TokenKind::Variant | TokenKind::HashtagPart => {
                        TermField::Word
                    }
                    TokenKind::Hashtag => TermField::Hashtag,
                    TokenKind::Mention => TermField::Mention,
                    TokenKind::Domain => TermField::Domain,
                    TokenKind::Url | TokenKind::Emoji => return None,
                };
                Some(QueryNode::Term(field, t.text))
            })
            .collect();
        Ok(match terms.len() {
            0 => QueryNode::Always,
            1 => terms.into_iter().next().expect("one term"),
            _ => QueryNode::And(terms),
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use vigie_domain::Post;
    use vigie_tokenize::{Analyzer, AnalyzerConfig};

    use super::*;

    fn analyzed(analyzer: &Analyzer, text: &str, author: &str) -> AnalyzedPost {
        let mut post = Post::for_test("1", text, Utc.timestamp_opt(0, 0).unwrap());
        post.author = Some(author.to_owned());
        post.lang = Some("en".into());
        AnalyzedPost {
            analysis: analyzer.analyze_post(&post),
            post,
        }
    }

    fn entry(name: &str, query: &str) -> WatchEntry {
        WatchEntry {
            name: name.into(),
            query: Some(query.into()),
            domains: vec![],
            accounts: vec![],
        }
    }

    #[test]
    fn queries_match_inflections_hashtags_and_boolean_structure() {
        let analyzer = Arc::new(Analyzer::new(AnalyzerConfig::default()));
        let mut watchlists = Watchlists::new(
            analyzer.clone(),
            &[
                entry("koch", "#KochFarms OR (turkey AND poisoning)"),
                entry("not-usda", "turkey NOT #usda"),
            ],
        )
        .unwrap();
        watchlists
            .add(WatchEntry {
                name: "site".into(),
                query: None,
                domains: vec!["www.Example.com".into()],
                accounts: vec!["u_watched".into()],
            })
            .unwrap();
        let post = analyzed(&analyzer, "Turkeys poisoned again #USDA", "u_x");
        assert_eq!(watchlists.matches(&post), vec!["koch"]);
        let post = analyzed(&analyzer, "my turkey http://example.com/a", "u_x");
        assert_eq!(watchlists.matches(&post), vec!["not-usda", "site"]);
        let post = analyzed(&analyzer, "nothing here", "u_watched");
        assert_eq!(watchlists.matches(&post), vec!["site"]);
        assert!(watchlists.remove("site"));
        assert!(!watchlists.remove("site"));
        assert_eq!(watchlists.list().len(), 2);
    }

    #[test]
    fn bad_entries_are_rejected() {
        let analyzer = Arc::new(Analyzer::new(AnalyzerConfig::default()));
        let mut watchlists = Watchlists::new(analyzer, &[]).unwrap();
        for query in ["", "(a OR b", "a AND", "OR a"] {
            assert!(watchlists.add(entry("x", query)).is_err(), "{query}");
        }
        watchlists.add(entry("x", "a")).unwrap();
        assert_eq!(
            watchlists.add(entry("x", "b")),
            Err(DetectError::DuplicateWatch { name: "x".into() })
        );
    }

    /// Issue 12, row 2: a deeply nested watch query aborted the daemon (stack overflow).
    #[test]
    fn issue_12_deep_long_and_huge_entries_are_refused_with_a_reason() {
        let analyzer = Arc::new(Analyzer::new(AnalyzerConfig::default()));
        let mut watchlists = Watchlists::new(analyzer, &[]).unwrap();
        let reason = |result: Result<(), DetectError>| match result {
            Err(DetectError::InvalidWatchQuery { query, reason }) => {
                assert!(query.chars().count() <= QUOTED_QUERY_CHARS + 1, "{query}");
                reason
            }
            other => panic!("{other:?}"),
        };
        let nested = format!("{}turkey{}", "(".repeat(2000), ")".repeat(2000));
        assert!(reason(watchlists.add(entry("deep", &nested))).contains("levels deep"));
        let nots = format!("{}turkey", "NOT ".repeat(1000));
        assert!(reason(watchlists.add(entry("nots", &nots))).contains("levels deep"));
        let mut unclosed = "(".repeat(100_000);
        unclosed.truncate(MAX_QUERY_BYTES);
        assert!(reason(watchlists.add(entry("open", &unclosed))).contains("levels deep"));
        let long = "turkey ".repeat(1000);
        assert!(reason(watchlists.add(entry("long", &long))).contains("bytes long"));
        let many = "a ".repeat(300);
        assert!(reason(watchlists.add(entry("many", &many))).contains("300 terms"));
        let huge = WatchEntry {
            name: "huge".into(),
            query: None,
            domains: vec!["example.com".into(); MAX_ENTRY_ITEMS + 1],
            accounts: vec![],
        };
        assert!(reason(watchlists.add(huge)).contains("at most"));
        assert!(reason(watchlists.add(entry("", "a"))).contains("name"));
        // Within the bounds all is well, and nothing was added by the refusals.
        let ok = format!("{}turkey{}", "(".repeat(10), ")".repeat(10));
        watchlists.add(entry("ok", &ok)).unwrap();
        assert_eq!(watchlists.list().len(), 1);
        for i in 1..MAX_ENTRIES {
            watchlists.add(entry(&format!("e{i}"), "a")).unwrap();
        }
        assert!(reason(watchlists.add(entry("one-too-many", "a"))).contains("in force"));
    }
}
