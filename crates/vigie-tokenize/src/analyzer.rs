//! The analyzer: turns a post into its terms once, for both the index and detection, and
//! turns a search query into terms that match them.
//!
//! Per word, the index gets the `Word` term (stem in the post's language) and, at the
//! same position, `Variant` terms: the folded surface form, the stem in the script's
//! default language (Latin → en, Cyrillic → ru, Arabic → ar, Greek → el, Tamil → ta) and,
//! for Cyrillic words, the Ukrainian stem. A query term is one of those forms (see
//! [`Analyzer::analyze_query`]), so it matches whatever language the post was in.

use std::collections::HashSet;
use std::sync::OnceLock;

use jieba_rs::Jieba;
use unicode_segmentation::UnicodeSegmentation;
use vigie_domain::{Analysis, LangSource, Post, Token, TokenKind};
use whatlang::Detector;

use crate::config::AnalyzerConfig;
use crate::fold::{finish_fold_into, fold_word, lower_into, word_script, Script};
use crate::languages::{
    correct_cyrillic, iso_code, normalize_lang_code, whatlang_lang, CyrillicMarkers,
    LanguageProfile, Languages, STEMMED_LANGUAGES,
};
use crate::scan::{scan, split_hashtag, Piece, PieceKind};
use crate::url_norm::normalize_url;

/// The language code of a post whose language is unknown.
const UNDETERMINED: &str = "und";

/// Returns the Chinese segmenter, built on first use: loading its dictionary takes a few
/// hundred milliseconds, which streams without Chinese should not pay at startup.
fn jieba() -> &'static Jieba {
    static JIEBA: OnceLock<Jieba> = OnceLock::new();
    JIEBA.get_or_init(Jieba::new)
}

/// Turns post text into terms: language identification, segmentation, folding, stopwords,
/// stemming, hashtags, mentions, links and emoji. Built once and shared (it is `Send +
/// Sync`); every method takes `&self`.
pub struct Analyzer {
    config: AnalyzerConfig,
    languages: Languages,
    detector: Detector,
    /// The codes identification may choose, when restricted.
    allowed: Option<Vec<&'static str>>,
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Analyzer {
    /// Builds the stemmers, the folded stopword sets and the language identifier.
    ///
    /// Unknown codes in `config.languages` are ignored ([`AnalyzerConfig::check`] reports
    /// them); if none is known, identification chooses among all languages.
    pub fn new(config: AnalyzerConfig) -> Analyzer {
        let allowed_langs: Vec<whatlang::Lang> = config
            .languages
            .iter()
            .flatten()
            .filter_map(|code| whatlang_lang(code))
            .collect();
        let (detector, allowed) = if allowed_langs.is_empty() {
            (Detector::new(), None)
        } else {
            let codes = allowed_langs.iter().map(|l| iso_code(*l)).collect();
            (Detector::with_allowlist(allowed_langs), Some(codes))
        };
        Analyzer {
            config,
            languages: Languages::new(),
            detector,
            allowed,
        }
    }

    /// Returns the ISO 639-1 codes of the languages whose words are stemmed; words of
    /// other languages are folded only.
    pub fn stemmed_languages() -> &'static [&'static str] {
        STEMMED_LANGUAGES
    }

    /// Analyzes a post: uses `post.lang` if given (trusted), else identifies the language;
    /// adds the hashtags, mentions and links the producer gave that the text lacks.
    ///
    /// Given items come after the text's terms, with offsets `0..0` (they have no place in
    /// the text).
    pub fn analyze_post(&self, post: &Post) -> Analysis {
        let mut analysis = self.analyze(&post.text, post.lang.as_deref());
        if post.hashtags.is_empty() && post.mentions.is_empty() && post.urls.is_empty() {
            return analysis;
        }
        let mut emitter = self.emitter(&analysis.lang, analysis.lang_source);
        emitter.tokens = std::mem::take(&mut analysis.tokens);
        emitter.position = emitter.tokens.last().map_or(0, |t| t.position + 1);
        // A set, not a scan of the tokens per given item: a 1 MB message can list
        // 100,000 distinct hashtags, and the scan made that quadratic.
        let mut seen: HashSet<(TokenKind, String)> = emitter
            .tokens
            .iter()
            .filter(|t| {
                matches!(
                    t.kind,
                    TokenKind::Hashtag | TokenKind::Mention | TokenKind::Url
                )
            })
            .map(|t| (t.kind, t.text.clone()))
            .collect();
        for tag in &post.hashtags {
            let body = tag.trim().trim_start_matches('#');
            if !body.is_empty() && seen.insert((TokenKind::Hashtag, fold_word(body))) {
                emitter.hashtag(body, None);
            }
        }
        for mention in &post.mentions {
            let name = mention.trim().trim_start_matches('@');
            if !name.is_empty() && seen.insert((TokenKind::Mention, fold_word(name))) {
                emitter.mention(name, 0, 0);
            }
        }
        for url in &post.urls {
            if let Some(normalized) = normalize_url(url.trim()) {
                if seen.insert((TokenKind::Url, normalized.url.clone())) {
                    emitter.url(normalized, 0, 0);
                }
            }
        }
        analysis.tokens = emitter.tokens;
        analysis
    }

    /// Analyzes raw text with an optional trusted language hint (same output as
    /// [`Analyzer::analyze_post`] for a post with only text).
    ///
    /// A hint of `und` or an empty one counts as none. Without a hint, the language is
    /// identified; below `min_detect_chars` letters or `min_detect_confidence`, the
    /// analysis is language-neutral: `lang` is `und` and `Word` terms are folded, not
    /// stemmed (variants still carry the script-default stems, for search).
    pub fn analyze(&self, text: &str, lang_hint: Option<&str>) -> Analysis {
        let mut pieces = Vec::with_capacity(text.len() / 5 + 1);
        scan(text, &mut pieces);
        let (lang, lang_source) = match lang_hint.and_then(normalize_lang_code) {
            Some(code) => (code, LangSource::Given),
            None => self.identify(text, &pieces),
        };
        let mut emitter = self.emitter(&lang, lang_source);
        emitter.tokens.reserve(pieces.len() * 2);
        for piece in &pieces {
            emitter.piece(text, piece);
        }
        Analysis {
            lang,
            lang_source,
            tokens: emitter.tokens,
        }
    }

    /// Analyzes a search query into one term per position, with no variants.
    ///
    /// Each word becomes the form that posts in any language index for it: its stem in
    /// `lang` when the user gave one, else the stem in its script's default language —
    /// for Cyrillic words with a letter only Ukrainian has (`і ї є ґ`), the Ukrainian
    /// stem. So `войны` matches posts with `войну` or `война`, and `attacks` posts with
    /// `attacked`. Stopwords are dropped, as in posts. Hashtags, mentions, links and emoji
    /// give the same terms as in posts (a hashtag only its whole form).
    pub fn analyze_query(&self, text: &str, lang: Option<&str>) -> Vec<Token> {
        let code = lang.and_then(normalize_lang_code);
        let profile = code.as_deref().and_then(|c| self.languages.get(c));
        let mut pieces = Vec::new();
        scan(text, &mut pieces);
        let mut emitter = self.emitter(code.as_deref().unwrap_or(UNDETERMINED), LangSource::Given);
        for piece in &pieces {
            let (from, to) = (offset(piece.start), offset(piece.end));
            let piece_text = &text[piece.start..piece.end];
            match piece.kind {
                PieceKind::Word => {
                    if let Some(term) = self.query_word(piece_text, profile, &mut emitter.lowered) {
                        emitter.push(term, TokenKind::Word, from, to);
                        emitter.position += 1;
                    }
                }
                PieceKind::Hashtag => {
                    let tag = fold_word(&piece_text[1..]);
                    if !tag.is_empty() {
                        emitter.push(tag, TokenKind::Hashtag, from, to);
                        emitter.position += 1;
                    }
                }
                PieceKind::Url => {
                    if let Some(normalized) = normalize_url(piece_text) {
                        emitter.push(normalized.url, TokenKind::Url, from, to);
                        emitter.position += 1;
                    }
                }
                PieceKind::Mention | PieceKind::Emoji | PieceKind::HanRun => {
                    emitter.piece(text, piece)
                }
            }
        }
        emitter.tokens
    }

    /// Returns the query term of one word, or `None` for a stopword.
    fn query_word(
        &self,
        word: &str,
        given: Option<&LanguageProfile>,
        lowered: &mut String,
    ) -> Option<String> {
        let script = word_script(word);
        lower_into(word, script, lowered);
        let mut surface = String::with_capacity(lowered.len());
        finish_fold_into(lowered, script, &mut surface);
        if surface.is_empty() {
            return None;
        }
        if script == Script::Numeric {
            return Some(surface);
        }
        if let Some(profile) = given.filter(|p| p.accepts(script)) {
            if profile.is_stopword(&surface) {
                return None;
            }
            return Some(
                profile
                    .stem(lowered, script)
                    .filter(|s| !s.is_empty())
                    .unwrap_or(surface),
            );
        }
        if self.languages.is_neutral_stopword(&surface, script) {
            return None;
        }
        let mut markers = CyrillicMarkers::default();
        if script == Script::Cyrillic {
            markers.add(&surface);
        }
        let stem = if markers.ukrainian > 0 {
            self.languages
                .get("uk")
                .and_then(|uk| uk.stem(lowered, script))
        } else {
            self.languages
                .script_default(script)
                .and_then(|p| p.stem(&surface, script))
        };
        Some(stem.filter(|s| !s.is_empty()).unwrap_or(surface))
    }

    /// Returns the language of a text without a usable hint, and how it was decided.
    fn identify(&self, text: &str, pieces: &[Piece]) -> (String, LangSource) {
        let fallback = || (UNDETERMINED.to_owned(), LangSource::Fallback);
        let mut words = String::with_capacity(text.len());
        let mut letters = 0;
        let mut markers = CyrillicMarkers::default();
        for piece in pieces
            .iter()
            .filter(|p| matches!(p.kind, PieceKind::Word | PieceKind::HanRun))
        {
            let word = &text[piece.start..piece.end];
            letters += word.chars().map(letter_weight).sum::<usize>();
            markers.add(word);
            words.push_str(word);
            words.push(' ');
        }
        if letters < self.config.min_detect_chars {
            return fallback();
        }
        let Some(info) = self.detector.detect(&words) else {
            return fallback();
        };
        let mut identified = iso_code(info.lang());
        if info.confidence() < self.config.min_detect_confidence {
            match self.stopword_vote(text, pieces, identified) {
                Some(code) => identified = code,
                None => return fallback(),
            }
        }
        let corrected = correct_cyrillic(identified, markers);
        let code = match &self.allowed {
            Some(allowed) if !allowed.contains(&corrected) => identified,
            _ => corrected,
        };
        (code.to_owned(), LangSource::Detected)
    }

    /// Settles a language whatlang is unsure of by counting the post's stopwords in each
    /// stemmed language: whatlang's guess stands if it has stopwords and no language has
    /// more; another language wins with at least two and twice the runner-up's count;
    /// otherwise the post stays unidentified.
    ///
    /// Trigram confidence is low on headlines such as "Biologists Create More Precise
    /// Molecular Scissors for Genome Editing", whose function words still say English.
    fn stopword_vote(
        &self,
        text: &str,
        pieces: &[Piece],
        guess: &'static str,
    ) -> Option<&'static str> {
        let candidates: Vec<&'static str> = STEMMED_LANGUAGES
            .iter()
            .copied()
            .chain([guess])
            .filter(|code| {
                self.allowed
                    .as_ref()
                    .is_none_or(|allowed| allowed.contains(code))
            })
            .collect();
        let mut counts = vec![0usize; candidates.len()];
        let profiles: Vec<Option<&LanguageProfile>> =
            candidates.iter().map(|c| self.languages.get(c)).collect();
        for piece in pieces.iter().filter(|p| p.kind == PieceKind::Word) {
            let folded = fold_word(&text[piece.start..piece.end]);
            for (count, profile) in counts.iter_mut().zip(&profiles) {
                *count += usize::from(profile.is_some_and(|p| p.is_stopword(&folded)));
            }
        }
        let best = counts.iter().copied().max().unwrap_or(0);
        let guess_count = candidates
            .iter()
            .position(|c| *c == guess)
            .map_or(0, |i| counts[i]);
        if guess_count > 0 && guess_count == best {
            return Some(guess);
        }
        let winner = counts.iter().position(|c| *c == best)?;
        let runner_up = counts
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != winner)
            .map(|(_, c)| *c)
            .max()
            .unwrap_or(0);
        (best >= 2 && best >= 2 * runner_up).then_some(candidates[winner])
    }

    fn emitter(&self, lang: &str, source: LangSource) -> Emitter<'_> {
        let fallback = source == LangSource::Fallback;
        Emitter {
            languages: &self.languages,
            profile: if fallback {
                None
            } else {
                self.languages.get(lang)
            },
            fallback,
            japanese: lang == "ja",
            tokens: Vec::new(),
            position: 0,
            lowered: String::new(),
            parts: Vec::new(),
        }
    }
}

/// Returns how much a character counts towards `min_detect_chars`: a Han ideograph,
/// kana or Hangul syllable carries about a word's worth of text (and its script alone
/// nearly settles the language), so it counts as three letters.
fn letter_weight(c: char) -> usize {
    match u32::from(c) {
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF => {
            3
        }
        _ => usize::from(c.is_alphabetic()),
    }
}

/// Converts a byte offset for a token; posts are far below 4 GiB (the decoder limits
/// their size), so saturating never loses a real offset.
fn offset(byte: usize) -> u32 {
    u32::try_from(byte).unwrap_or(u32::MAX)
}

/// Builds one analysis's tokens.
struct Emitter<'a> {
    languages: &'a Languages,
    /// The post language's profile; `None` in the language-neutral analysis or for a
    /// language with neither stemmer nor stopwords.
    profile: Option<&'a LanguageProfile>,
    fallback: bool,
    japanese: bool,
    tokens: Vec<Token>,
    position: u32,
    /// Scratch buffer for the stemmer input of the current word.
    lowered: String,
    /// Scratch buffer for hashtag word ranges.
    parts: Vec<(usize, usize)>,
}

impl Emitter<'_> {
    fn push(&mut self, text: String, kind: TokenKind, from: u32, to: u32) {
        self.tokens.push(Token {
            text,
            kind,
            position: self.position,
            offset_from: from,
            offset_to: to,
        });
    }

    /// Pushes a variant unless a token at the current position already has its text.
    fn push_variant(&mut self, text: String, from: u32, to: u32) {
        let position = self.position;
        let duplicate = self
            .tokens
            .iter()
            .rev()
            .take_while(|t| t.position == position)
            .any(|t| t.text == text);
        if !duplicate {
            self.push(text, TokenKind::Variant, from, to);
        }
    }

    fn piece(&mut self, text: &str, piece: &Piece) {
        let (from, to) = (offset(piece.start), offset(piece.end));
        let piece_text = &text[piece.start..piece.end];
        match piece.kind {
            PieceKind::Word => {
                if self.word(piece_text, TokenKind::Word, from, to) {
                    self.position += 1;
                }
            }
            PieceKind::HanRun => self.han_run(piece_text, piece.start),
            PieceKind::Hashtag => self.hashtag(&piece_text[1..], Some(piece.start)),
            PieceKind::Mention => self.mention(&piece_text[1..], from, to),
            PieceKind::Url => {
                if let Some(normalized) = normalize_url(piece_text) {
                    self.url(normalized, from, to);
                }
            }
            PieceKind::Emoji => {
                self.push(piece_text.to_owned(), TokenKind::Emoji, from, to);
                self.position += 1;
            }
        }
    }

    /// Emits a word (`kind` = `Word`) or a hashtag part (`HashtagPart`) at the current
    /// position with its variants; returns false when nothing was emitted (a stopword).
    ///
    /// The `Word` term is the stem in the post's language; in the language-neutral
    /// analysis, or when the language has no stemmer, the folded form; for a word whose
    /// script is not the post language's (a Latin name in a Russian post), the stem in
    /// the script's default language. A hashtag part is its folded form, and is kept even
    /// when a stopword; its stems become variants.
    fn word(&mut self, word: &str, kind: TokenKind, from: u32, to: u32) -> bool {
        let script = word_script(word);
        let mut lowered = std::mem::take(&mut self.lowered);
        lower_into(word, script, &mut lowered);
        let mut surface = String::with_capacity(lowered.len());
        finish_fold_into(&lowered, script, &mut surface);
        self.lowered = lowered;
        let lowered = self.lowered.as_str();

        // Folding can leave nothing (a word of Arabic tatweels).
        if surface.is_empty() {
            return false;
        }
        if script == Script::Numeric {
            self.push(surface, kind, from, to);
            return true;
        }
        let language = self.profile.filter(|p| p.accepts(script));
        let stopword = match language {
            Some(profile) => profile.is_stopword(&surface),
            None => self.languages.is_neutral_stopword(&surface, script),
        };
        if stopword {
            if kind == TokenKind::HashtagPart {
                self.push(surface, kind, from, to);
                return true;
            }
            return false;
        }

        let default = self.languages.script_default(script);
        let language_stem = language
            .and_then(|p| p.stem(lowered, script))
            .filter(|s| !s.is_empty());
        // The default stem is taken from the accent-free form, as queries without a
        // language do, so that `élection` and `election` meet.
        let default_stem = default
            .and_then(|p| p.stem(&surface, script))
            .filter(|s| !s.is_empty());
        let ukrainian = self.languages.get("uk");
        let ukrainian_stem = match (script, ukrainian) {
            (Script::Cyrillic, Some(uk)) if !language.is_some_and(|l| std::ptr::eq(l, uk)) => {
                uk.stem(lowered, script).filter(|s| !s.is_empty())
            }
            _ => None,
        };

        let primary = if kind == TokenKind::HashtagPart || self.fallback {
            surface.clone()
        } else if language.is_some() {
            language_stem.clone().unwrap_or_else(|| surface.clone())
        } else if self.profile.is_some_and(LanguageProfile::has_stemmer) {
            // Script mismatch with a stemmed post language.
            default_stem.clone().unwrap_or_else(|| surface.clone())
        } else {
            surface.clone()
        };
        self.push(primary, kind, from, to);
        for variant in [Some(surface), language_stem, default_stem, ukrainian_stem]
            .into_iter()
            .flatten()
        {
            self.push_variant(variant, from, to);
        }
        true
    }

    /// Emits a hashtag (whole, at the current position) and its words (from the same
    /// position on). `hash_start` is the byte offset of the `#` in the text, or `None` for a
    /// hashtag given by the producer.
    fn hashtag(&mut self, body: &str, hash_start: Option<usize>) {
        let body_offset = |byte: usize| hash_start.map_or(0, |start| offset(start + 1 + byte));
        let (from, to) = match hash_start {
            Some(start) => (offset(start), body_offset(body.len())),
            None => (0, 0),
        };
        let tag = fold_word(body);
        if tag.is_empty() {
            return;
        }
        self.push(tag, TokenKind::Hashtag, from, to);
        let mut parts = std::mem::take(&mut self.parts);
        parts.clear();
        split_hashtag(body, &mut parts);
        let start_position = self.position;
        for &(start, end) in &parts {
            if self.word(
                &body[start..end],
                TokenKind::HashtagPart,
                body_offset(start),
                body_offset(end),
            ) {
                self.position += 1;
            }
        }
        self.position = self.position.max(start_position + 1);
        self.parts = parts;
    }

    fn mention(&mut self, name: &str, from: u32, to: u32) {
        let name = fold_word(name);
        if !name.is_empty() {
            self.push(name, TokenKind::Mention, from, to);
            self.position += 1;
        }
    }

    fn url(&mut self, normalized: crate::url_norm::NormalizedUrl, from: u32, to: u32) {
        self.push(normalized.url, TokenKind::Url, from, to);
        self.push(normalized.domain, TokenKind::Domain, from, to);
        self.position += 1;
    }

    /// Emits the words of a run of Han ideographs: cut by jieba's dictionary, except in
    /// Japanese posts, where jieba's Chinese dictionary does not apply and each ideograph
    /// is a word (the UAX #29 fallback).
    fn han_run(&mut self, run: &str, run_start: usize) {
        let words: Vec<(usize, &str)> = if self.japanese {
            run.split_word_bound_indices().collect()
        } else {
            jieba()
                .cut(run, true)
                .into_iter()
                .map(|t| (t.byte_start, t.word))
                .collect()
        };
        let zh = self.languages.get("zh");
        for (start, word) in words {
            let mut folded = String::with_capacity(word.len());
            lower_into(word, Script::Han, &mut folded);
            if folded.trim().is_empty() || zh.is_some_and(|p| p.is_stopword(&folded)) {
                continue;
            }
            let from = offset(run_start + start);
            self.push(folded, TokenKind::Word, from, from + offset(word.len()));
            self.position += 1;
        }
    }
}
