//! The index schema and the mapping from an analyzed post to a Tantivy document.
//!
//! Field names are what users type in fielded queries (`author:u_123`, `lang:ru`,
//! `hashtags:kochfarms`, `domain:nytimes.com`, `mention:someone`), so they are part of the
//! search interface. Changing any field's options changes the schema, and an index built
//! with another schema is refused at open.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use tantivy::schema::{
    DateOptions, DateTimePrecision, Field, IndexRecordOption, Schema, TextFieldIndexing,
    TextOptions, STORED, STRING,
};
use tantivy::tokenizer::{PreTokenizedString, Token};
use tantivy::TantivyDocument;
use vigie_domain::{AnalyzedPost, QueryAnalyzer, TokenKind};

use crate::tokenizer::{fold_keyword, KEYWORD_TOKENIZER, TEXT_TOKENIZER};
use crate::IndexError;

/// Name of the date field, used by the fast-field sort.
pub(crate) const CREATED_AT: &str = "created_at";

/// Precision of the `created_at` fast field (sorting and range filters). Producers send
/// at most milliseconds; the stored value keeps full precision.
pub(crate) const CREATED_AT_PRECISION: DateTimePrecision = DateTimePrecision::Milliseconds;

/// The schema's fields.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fields {
    /// The post id, untokenized: the upsert key.
    pub id: Field,
    pub author: Field,
    /// The analysis language (given, detected or `und`).
    pub lang: Field,
    pub created_at: Field,
    /// The analyzer's tokens, with positions; not stored (see `original_text`).
    pub text: Field,
    /// The post text as sent, stored only. A stored pre-tokenized value would keep every
    /// token in the doc store too, several times the size of the text.
    pub original_text: Field,
    pub hashtags: Field,
    pub mention: Field,
    pub domain: Field,
    pub url: Field,
    pub platform: Field,
    /// The topic or file the post was read from.
    pub source: Field,
    /// `topic/partition@offset` or `path:line`, stored only.
    pub origin: Field,
}

/// Builds the schema this version writes.
pub(crate) fn build_schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let keyword_indexing = TextFieldIndexing::default()
        .set_tokenizer(KEYWORD_TOKENIZER)
        .set_index_option(IndexRecordOption::Basic);
    let keyword = TextOptions::default().set_indexing_options(keyword_indexing);
    let text_indexing = TextFieldIndexing::default()
        .set_tokenizer(TEXT_TOKENIZER)
        .set_index_option(IndexRecordOption::WithFreqsAndPositions);
    let created_at = DateOptions::default()
        .set_indexed()
        .set_stored()
        .set_fast()
        .set_precision(CREATED_AT_PRECISION);
    let fields = Fields {
        id: builder.add_text_field("id", STRING | STORED),
        author: builder.add_text_field("author", keyword.clone() | STORED),
        lang: builder.add_text_field("lang", keyword.clone() | STORED),
        created_at: builder.add_date_field(CREATED_AT, created_at),
        text: builder.add_text_field(
            "text",
            TextOptions::default().set_indexing_options(text_indexing),
        ),
        original_text: builder.add_text_field("original_text", STORED),
        hashtags: builder.add_text_field("hashtags", keyword.clone() | STORED),
        mention: builder.add_text_field("mention", keyword.clone()),
        domain: builder.add_text_field("domain", keyword.clone()),
        url: builder.add_text_field("url", keyword.clone()),
        platform: builder.add_text_field("platform", keyword),
        source: builder.add_text_field("source", STRING | STORED),
        origin: builder.add_text_field("origin", STORED),
    };
    (builder.build(), fields)
}

/// Returns an error unless the index on disk has exactly the expected schema.
pub(crate) fn check_schema(
    dir: &Path,
    expected: &Schema,
    found: &Schema,
) -> Result<(), IndexError> {
    if expected == found {
        return Ok(());
    }
    let mut differences = Vec::new();
    for (_, entry) in expected.fields() {
        match found.get_field(entry.name()) {
            Err(_) => differences.push(format!("missing field {}", entry.name())),
            Ok(field) if found.get_field_entry(field) != entry => {
                differences.push(format!("field {} has other options", entry.name()))
            }
            Ok(_) => {}
        }
    }
    for (_, entry) in found.fields() {
        if expected.get_field(entry.name()).is_err() {
            differences.push(format!("unknown field {}", entry.name()));
        }
    }
    if differences.is_empty() {
        // Same entries in another order: field ids differ, which matters just as much.
        differences.push("fields are in another order".into());
    }
    Err(IndexError::SchemaMismatch {
        dir: dir.to_owned(),
        difference: differences.join(", "),
    })
}

/// Converts to Tantivy's date type, clamped to its range.
///
/// Tantivy counts nanoseconds in an `i64`, so it cannot represent dates before 1677-09-21
/// or after 2262-04-11, which `created_at` (and `since`/`until`) may hold: its own
/// `from_timestamp_micros` multiplies without a check and overflows on them. Such dates
/// become Tantivy's `MIN`/`MAX`, which sort and filter as "before/after everything".
pub(crate) fn to_tantivy_date(time: DateTime<Utc>) -> tantivy::DateTime {
    match time.timestamp_nanos_opt() {
        Some(nanos) => tantivy::DateTime::from_timestamp_nanos(nanos),
        None if time.timestamp() < 0 => tantivy::DateTime::MIN,
        None => tantivy::DateTime::MAX,
    }
}

/// Converts from Tantivy's date type.
pub(crate) fn from_tantivy_date(time: tantivy::DateTime) -> DateTime<Utc> {
    let micros = time.into_timestamp_micros();
    Utc.timestamp_micros(micros)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

impl Fields {
    /// Builds the document of an analyzed post, from its tokens: the text is not analyzed
    /// again.
    pub(crate) fn document(
        &self,
        analyzed: &AnalyzedPost,
        analyzer: &dyn QueryAnalyzer,
    ) -> TantivyDocument {
        let post = &analyzed.post;
        let analysis = &analyzed.analysis;
        let mut document = TantivyDocument::new();
        document.add_text(self.id, &post.id);
        if let Some(author) = &post.author {
            document.add_text(self.author, author);
        }
        document.add_text(self.lang, &analysis.lang);
        document.add_date(self.created_at, to_tantivy_date(post.created_at));

        // Every token goes in, variants included: they share their word's position, so
        // phrase queries still line up, and they let other languages' forms match.
        let tokens = analysis
            .tokens
            .iter()
            .map(|token| Token {
                offset_from: token.offset_from as usize,
                offset_to: token.offset_to as usize,
                position: token.position as usize,
                text: token.text.clone(),
                position_length: 1,
            })
            .collect();
        document.add_pre_tokenized_text(
            self.text,
            PreTokenizedString {
                text: post.text.clone(),
                tokens,
            },
        );
        document.add_text(self.original_text, &post.text);

        for (field, kind) in [
            (self.hashtags, TokenKind::Hashtag),
            (self.mention, TokenKind::Mention),
            (self.domain, TokenKind::Domain),
            (self.url, TokenKind::Url),
        ] {
            // The keyword tokenizer folds at index time too, so what is stored, what is
            // indexed and what a query looks up agree even if the analyzer kept some case.
            let distinct: BTreeSet<String> = analysis
                .terms_of(kind)
                .map(|term| fold_keyword(analyzer, term))
                .collect();
            for term in distinct.iter().filter(|term| !term.is_empty()) {
                document.add_text(field, term);
            }
        }
        if let Some(platform) = &post.platform {
            document.add_text(self.platform, platform);
        }
        document.add_text(self.source, post.origin.source_name());
        document.add_text(self.origin, post.origin.describe());
        document
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_outside_tantivys_range_are_clamped_not_overflowed() {
        let far_future: DateTime<Utc> = "9999-12-31T00:00:00Z".parse().unwrap();
        let far_past: DateTime<Utc> = "0001-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(to_tantivy_date(far_future), tantivy::DateTime::MAX);
        assert_eq!(to_tantivy_date(far_past), tantivy::DateTime::MIN);
        let usual: DateTime<Utc> = "2015-11-26T10:00:00.123456Z".parse().unwrap();
        assert_eq!(from_tantivy_date(to_tantivy_date(usual)), usual);
    }
}
