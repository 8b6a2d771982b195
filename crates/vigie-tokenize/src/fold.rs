//! Case and accent folding: turns one word into the forms the stemmers and the index use.
//!
//! Folding happens in two steps so that stemmers still see the letters they depend on:
//! [`lower_into`] makes the *stemmer input* (NFKC, lowercase, one apostrophe, script
//! clean-ups that never change a stem), and [`finish_fold_into`] makes the *index form*
//! from it or from a stem (Latin accents stripped, Arabic letter variants merged). The
//! folded surface form of a word is `finish_fold(lower(word))`; a folded stem is
//! `finish_fold(stem(lower(word)))`. This module knows scripts, not languages.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// The writing system of a word, decided by its first letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Script {
    /// Latin letters (any accents).
    Latin,
    /// Cyrillic letters.
    Cyrillic,
    /// Arabic letters (Arabic, Persian, Urdu...).
    Arabic,
    /// Greek letters.
    Greek,
    /// Han ideographs.
    Han,
    /// Tamil letters.
    Tamil,
    /// Any other script (Hebrew, Devanagari, Hangul, kana...).
    Other,
    /// No letter at all: a number such as `2015` or `08.12.2015`.
    Numeric,
}

/// Returns the script of a letter, or `None` when `c` is not a letter.
pub(crate) fn script_of_char(c: char) -> Option<Script> {
    if c.is_ascii() {
        return c.is_ascii_alphabetic().then_some(Script::Latin);
    }
    if !c.is_alphabetic() {
        return None;
    }
    let script = match u32::from(c) {
        0x00C0..=0x024F | 0x1E00..=0x1EFF | 0x2C60..=0x2C7F | 0xA720..=0xA7FF | 0xAB30..=0xAB6F => {
            Script::Latin
        }
        0xFF21..=0xFF3A | 0xFF41..=0xFF5A => Script::Latin,
        0x0400..=0x052F | 0x1C80..=0x1C8F | 0x2DE0..=0x2DFF | 0xA640..=0xA69F => Script::Cyrillic,
        0x0600..=0x06FF | 0x0750..=0x077F | 0x08A0..=0x08FF | 0xFB50..=0xFDFF | 0xFE70..=0xFEFF => {
            Script::Arabic
        }
        0x0370..=0x03FF | 0x1F00..=0x1FFF => Script::Greek,
        0x0B80..=0x0BFF => Script::Tamil,
        0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xF900..=0xFAFF
        | 0x20000..=0x2EBEF
        | 0x30000..=0x3134F => Script::Han,
        _ => Script::Other,
    };
    Some(script)
}

/// Returns the script of a word: that of its first letter, or [`Script::Numeric`] when it
/// has none.
pub(crate) fn word_script(word: &str) -> Script {
    word.chars()
        .find_map(script_of_char)
        .unwrap_or(Script::Numeric)
}

/// Returns true for the apostrophes people type inside words (`'`, `’`, `ʼ`, `‘`, `` ` ``).
pub(crate) fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{02BC}' | '\u{2018}' | '`')
}

/// Writes the stemmer input form of `word` into `out` (cleared first).
///
/// NFKC (full-width letters, ligatures and "math bold" spam become plain letters), Unicode
/// lowercase, every apostrophe as `'`. Cyrillic: `ё` → `е` (Russian writes both) and
/// stress marks dropped. Arabic: tatweel and harakat dropped; they never change a stem.
pub(crate) fn lower_into(word: &str, script: Script, out: &mut String) {
    out.clear();
    if word.is_ascii() {
        out.extend(word.chars().map(|c| {
            if c == '`' {
                '\''
            } else {
                c.to_ascii_lowercase()
            }
        }));
        return;
    }
    for c in word.nfkc() {
        for c in c.to_lowercase() {
            match script {
                Script::Cyrillic if c == 'ё' => out.push('е'),
                Script::Cyrillic if is_combining_mark(c) => {}
                Script::Arabic if is_arabic_diacritic(c) => {}
                _ if is_apostrophe(c) => out.push('\''),
                _ => out.push(c),
            }
        }
    }
}

/// Writes the index form of a lowered word or of a stem into `out` (cleared first).
///
/// Latin: accents stripped (`é` → `e`, `ñ` → `n`), `œ` → `oe`, `æ` → `ae`. Arabic: `أ إ آ ٱ`
/// → `ا`, `ى` → `ي`, `ة` → `ه`, the usual normalisation of Arabic search engines, since
/// posts spell these letters inconsistently. Other scripts are left as they are.
pub(crate) fn finish_fold_into(lowered: &str, script: Script, out: &mut String) {
    out.clear();
    match script {
        Script::Latin if !lowered.is_ascii() => {
            for c in lowered.nfd() {
                match c {
                    'œ' => out.push_str("oe"),
                    'æ' => out.push_str("ae"),
                    c if is_combining_mark(c) => {}
                    c => out.push(c),
                }
            }
        }
        Script::Arabic => out.extend(lowered.chars().map(|c| match c {
            'أ' | 'إ' | 'آ' | 'ٱ' => 'ا',
            'ى' => 'ي',
            'ة' => 'ه',
            c => c,
        })),
        _ => out.push_str(lowered),
    }
}

/// Returns the index form of a word (lowered then finished), for stopword lists and tests.
pub(crate) fn fold_word(word: &str) -> String {
    let script = word_script(word);
    let mut lowered = String::with_capacity(word.len());
    lower_into(word, script, &mut lowered);
    let mut folded = String::with_capacity(lowered.len());
    finish_fold_into(&lowered, script, &mut folded);
    folded
}

/// Returns true for Arabic tatweel, harakat and Quranic annotation marks.
fn is_arabic_diacritic(c: char) -> bool {
    matches!(u32::from(c), 0x0640 | 0x064B..=0x065F | 0x0670 | 0x06D6..=0x06ED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_decided_by_the_first_letter() {
        assert_eq!(word_script("élection"), Script::Latin);
        assert_eq!(word_script("війна"), Script::Cyrillic);
        assert_eq!(word_script("2015"), Script::Numeric);
        assert_eq!(word_script("a321"), Script::Latin);
        assert_eq!(word_script("الحرب"), Script::Arabic);
        assert_eq!(word_script("战争"), Script::Han);
        assert_eq!(word_script("πόλεμος"), Script::Greek);
    }

    #[test]
    fn latin_folding_strips_accents_after_lowercasing() {
        assert_eq!(fold_word("Élection"), "election");
        assert_eq!(fold_word("ŒUVRES"), "oeuvres");
        assert_eq!(fold_word("Straße"), "straße");
        // NFKC turns full-width and mathematical letters into plain ones.
        assert_eq!(fold_word("ＵＫＲＡＩＮＥ"), "ukraine");
        assert_eq!(fold_word("𝐖𝐀𝐑"), "war");
    }

    #[test]
    fn cyrillic_folding_keeps_ukrainian_letters_and_merges_yo() {
        assert_eq!(fold_word("ЁЛКА"), "елка");
        assert_eq!(fold_word("Україна"), "україна");
        assert_eq!(fold_word("ҐАНОК"), "ґанок");
        assert_eq!(fold_word("пам’ять"), "пам'ять");
        assert_eq!(fold_word("памʼять"), "пам'ять");
        // A stress mark is dropped, the decomposed й is composed by NFKC.
        assert_eq!(fold_word("война\u{301}"), "война");
        assert_eq!(fold_word("и\u{306}ога"), "йога");
    }

    #[test]
    fn arabic_folding_drops_harakat_and_merges_letter_variants() {
        assert_eq!(fold_word("أَحْمَد"), "احمد");
        assert_eq!(fold_word("مدرسة"), "مدرسه");
        assert_eq!(fold_word("على"), "علي");
        assert_eq!(fold_word("كـــتاب"), "كتاب");
    }
}
