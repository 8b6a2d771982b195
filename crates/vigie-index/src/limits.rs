//! Bounds on what one search may cost, checked before Tantivy sees the query.
//!
//! Tantivy's query grammar is a recursive-descent parser (`tantivy-query-grammar`, nom):
//! each `(` and each `NOT` prefix is one more level of recursion while parsing, while
//! turning the parsed tree into a query, and while dropping it. A query of 2,500 nested
//! parentheses — 15 kB, small enough for a URL an `<img src>` can send — overflowed the
//! stack of the thread that parsed it and aborted the daemon (issue 12, row 1). So the
//! nesting depth, the length and the number of terms are measured here, by a flat scan
//! that cannot recurse, and a query over a bound is refused with a reason the user can act
//! on.

use crate::IndexError;

/// Hard ceiling of [`SearchLimits::max_query_bytes`]: no configuration goes above it.
pub const MAX_QUERY_BYTES_CEILING: usize = 16 * 1024;

/// Hard ceiling of [`SearchLimits::max_depth`].
pub const MAX_DEPTH_CEILING: usize = 64;

/// Hard ceiling of [`SearchLimits::max_hits`].
pub const MAX_HITS_CEILING: usize = 1000;

/// Hard ceiling of [`SearchLimits::snippet_max_bytes`].
pub const SNIPPET_MAX_BYTES_CEILING: usize = 4096;

/// What one search may cost. [`SearchLimits::default`] is what `vigie search` and the HTTP
/// API use unless configured otherwise; every field is clamped to its `*_CEILING`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchLimits {
    /// Longest accepted query, in bytes of UTF-8.
    pub max_query_bytes: usize,
    /// Deepest accepted nesting of parentheses and `NOT` prefixes.
    pub max_depth: usize,
    /// Most terms (words, phrases, fielded terms) in one query.
    pub max_terms: usize,
    /// Most hits one request may return; each hit reads a document from the store.
    pub max_hits: usize,
    /// Snippet length, in bytes of text (Tantivy measures fragments in bytes).
    pub snippet_max_bytes: usize,
}

impl Default for SearchLimits {
    fn default() -> Self {
        SearchLimits {
            max_query_bytes: 4096,
            max_depth: 20,
            max_terms: 256,
            max_hits: MAX_HITS_CEILING,
            snippet_max_bytes: 200,
        }
    }
}

impl SearchLimits {
    /// Returns the limits with every field clamped to its ceiling (and to at least 1).
    pub fn clamped(self) -> SearchLimits {
        SearchLimits {
            max_query_bytes: self.max_query_bytes.clamp(1, MAX_QUERY_BYTES_CEILING),
            max_depth: self.max_depth.clamp(1, MAX_DEPTH_CEILING),
            max_terms: self.max_terms.max(1),
            max_hits: self.max_hits.clamp(1, MAX_HITS_CEILING),
            snippet_max_bytes: self.snippet_max_bytes.clamp(1, SNIPPET_MAX_BYTES_CEILING),
        }
    }

    /// Checks a query's size and shape without parsing it, so that a hostile query never
    /// reaches the recursive parser.
    ///
    /// The scan follows Tantivy's lexical rules closely enough to be exact on ordinary
    /// queries: a quoted phrase is one term and its parentheses do not nest, a backslash
    /// escapes the next character, and `NOT` followed by a space prefixes what follows.
    /// Unbalanced parentheses are left for the parser to report.
    pub fn check_query(&self, query: &str) -> Result<(), IndexError> {
        let limits = self.clamped();
        if query.len() > limits.max_query_bytes {
            return Err(IndexError::Query {
                message: format!(
                    "the query is {} bytes long; at most {} are accepted",
                    query.len(),
                    limits.max_query_bytes
                ),
            });
        }
        let shape = QueryShape::scan(query);
        if shape.max_depth > limits.max_depth {
            return Err(IndexError::Query {
                message: format!(
                    "the query nests parentheses and NOT {} levels deep; at most {} are accepted",
                    shape.max_depth, limits.max_depth
                ),
            });
        }
        if shape.terms > limits.max_terms {
            return Err(IndexError::Query {
                message: format!(
                    "the query has {} terms; at most {} are accepted",
                    shape.terms, limits.max_terms
                ),
            });
        }
        Ok(())
    }
}

/// What a flat scan of a query finds.
#[derive(Debug, Default, PartialEq, Eq)]
struct QueryShape {
    /// Deepest nesting of `(` and `NOT` prefixes.
    max_depth: usize,
    /// Words, phrases and fielded terms (operators excluded).
    terms: usize,
}

impl QueryShape {
    fn scan(query: &str) -> QueryShape {
        let mut shape = QueryShape::default();
        // NOTs still waiting for the leaf they prefix, and the NOTs that prefix each open
        // group: `NOT (NOT (a))` is four levels, `NOT a NOT b` only one.
        let mut pending_nots = 0usize;
        let mut open_groups: Vec<usize> = Vec::new();
        let mut nots_in_open_groups = 0usize;
        let depth =
            |pending: usize, groups: &Vec<usize>, nots: usize| groups.len() + nots + pending;
        let mut chars = query.chars().peekable();
        let mut word = String::new();
        let end_word = |word: &mut String, pending_nots: &mut usize, shape: &mut QueryShape| {
            if word.is_empty() {
                return;
            }
            match word.as_str() {
                "NOT" => *pending_nots += 1,
                "AND" | "OR" | "&&" | "||" | "+" | "-" => {}
                _ => {
                    shape.terms += 1;
                    *pending_nots = 0;
                }
            }
            word.clear();
        };
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    word.push(c);
                    if let Some(escaped) = chars.next() {
                        word.push(escaped);
                    }
                }
                '"' => {
                    // A phrase (possibly `field:"…"`) is one term whatever it holds.
                    word.push(c);
                    while let Some(inner) = chars.next() {
                        word.push(inner);
                        match inner {
                            '\\' => {
                                if let Some(escaped) = chars.next() {
                                    word.push(escaped);
                                }
                            }
                            '"' => break,
                            _ => {}
                        }
                    }
                }
                '(' => {
                    // `field:(` opens a group too: what precedes it is not a term of its own.
                    word.clear();
                    open_groups.push(pending_nots);
                    nots_in_open_groups += pending_nots;
                    pending_nots = 0;
                    shape.max_depth =
                        shape
                            .max_depth
                            .max(depth(pending_nots, &open_groups, nots_in_open_groups));
                }
                ')' => {
                    end_word(&mut word, &mut pending_nots, &mut shape);
                    pending_nots = 0;
                    if let Some(nots) = open_groups.pop() {
                        nots_in_open_groups -= nots;
                    }
                }
                c if c.is_whitespace() => {
                    end_word(&mut word, &mut pending_nots, &mut shape);
                    shape.max_depth =
                        shape
                            .max_depth
                            .max(depth(pending_nots, &open_groups, nots_in_open_groups));
                }
                c => word.push(c),
            }
        }
        end_word(&mut word, &mut pending_nots, &mut shape);
        shape.max_depth =
            shape
                .max_depth
                .max(depth(pending_nots, &open_groups, nots_in_open_groups));
        shape
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(query: &str) -> (usize, usize) {
        let shape = QueryShape::scan(query);
        (shape.max_depth, shape.terms)
    }

    #[test]
    fn scan_measures_nesting_and_terms() {
        assert_eq!(shape(""), (0, 0));
        assert_eq!(shape("water"), (0, 1));
        assert_eq!(shape("water AND (safe OR clean)"), (1, 3));
        assert_eq!(shape("((a))"), (2, 1));
        assert_eq!(shape("NOT a NOT b NOT c"), (1, 3));
        assert_eq!(shape("NOT NOT NOT a"), (3, 1));
        assert_eq!(shape("NOT (NOT (a))"), (4, 1));
        assert_eq!(shape("hashtags:(a b) lang:en"), (1, 3));
        // Parentheses inside a phrase or escaped do not nest.
        assert_eq!(shape("\"((((((\" a"), (0, 2));
        assert_eq!(shape("\\(\\(\\( a"), (0, 2));
        assert_eq!(shape("\"unterminated (((("), (0, 1));
        // Unbalanced closings do not underflow.
        assert_eq!(shape("a)))) (b"), (1, 2));
    }

    /// Issue 12, row 1: 2,500 nested parentheses are refused before the parser sees them.
    #[test]
    fn issue_12_deeply_nested_query_is_refused_with_a_reason() {
        let query = format!("{}water{}", "(".repeat(2500), ")".repeat(2500));
        let limits = SearchLimits {
            max_query_bytes: MAX_QUERY_BYTES_CEILING,
            ..SearchLimits::default()
        };
        let err = limits.check_query(&query).unwrap_err();
        assert!(err.to_string().contains("2500 levels deep"), "{err}");
        let nots = format!("{}water", "NOT ".repeat(1000));
        let err = limits.check_query(&nots).unwrap_err();
        assert!(err.to_string().contains("levels deep"), "{err}");
        let err = SearchLimits::default()
            .check_query(&"a ".repeat(3000))
            .unwrap_err();
        assert!(err.to_string().contains("bytes long"), "{err}");
        let err = SearchLimits::default()
            .check_query(&"a ".repeat(300))
            .unwrap_err();
        assert!(err.to_string().contains("300 terms"), "{err}");
        let ok = format!("{}water{}", "(".repeat(20), ")".repeat(20));
        SearchLimits::default().check_query(&ok).unwrap();
    }

    #[test]
    fn limits_are_clamped_to_their_ceilings() {
        let wild = SearchLimits {
            max_query_bytes: usize::MAX,
            max_depth: 0,
            max_terms: 0,
            max_hits: usize::MAX,
            snippet_max_bytes: usize::MAX,
        }
        .clamped();
        assert_eq!(wild.max_query_bytes, MAX_QUERY_BYTES_CEILING);
        assert_eq!(wild.max_depth, 1);
        assert_eq!(wild.max_terms, 1);
        assert_eq!(wild.max_hits, MAX_HITS_CEILING);
        assert_eq!(wild.snippet_max_bytes, SNIPPET_MAX_BYTES_CEILING);
    }
}
