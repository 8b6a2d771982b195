//! Text scanning: cuts a post's text into pieces (words, runs of Han ideographs, hashtags,
//! mentions, links, emoji) with their byte spans, in one pass and without allocating per
//! piece.
//!
//! Links, hashtags and mentions are found by hand-written scanning, so that the words
//! inside them never become words of the post; the text between them is split with
//! Unicode word segmentation (UAX #29), which keeps `don't`, `п'ють`, `3.14` and emoji ZWJ
//! sequences whole. Folding, stemming and language choices are left to the analyzer.

use unicode_normalization::char::is_combining_mark;
use unicode_segmentation::UnicodeSegmentation;

use crate::fold::{is_apostrophe, script_of_char, Script};

/// What a piece of text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PieceKind {
    /// A word or a number.
    Word,
    /// Consecutive Han ideographs, to be cut by a dictionary segmenter.
    HanRun,
    /// `#` and the tag.
    Hashtag,
    /// `@` and the account name.
    Mention,
    /// An `http(s)://` or `www.` link.
    Url,
    /// One emoji, with its modifiers and ZWJ parts, or a flag.
    Emoji,
}

/// A piece of text and its byte span in the scanned text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Piece {
    /// What the piece is.
    pub(crate) kind: PieceKind,
    /// Byte offset of the first byte.
    pub(crate) start: usize,
    /// Byte offset after the last byte.
    pub(crate) end: usize,
}

/// French, Italian and Catalan elided words: `l'armée` is indexed as `armée`. UAX #29
/// keeps `l'armée` whole, which would hide the word from every search.
const ELISIONS: &[&str] = &[
    "l", "d", "j", "m", "n", "s", "t", "c", "qu", "jusqu", "lorsqu", "puisqu", "quoiqu", "presqu",
    "quelqu", "dell", "all", "nell", "sull", "dall", "coll", "un", "quest", "quell",
];

/// Appends the pieces of `text` to `out`, in text order.
pub(crate) fn scan(text: &str, out: &mut Vec<Piece>) {
    let bytes = text.as_bytes();
    let mut gap_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Only ASCII bytes start a special piece, and UTF-8 continuation bytes are never
        // ASCII, so stepping byte by byte keeps `i` on a char boundary whenever it matters.
        let special = match bytes[i] {
            b'h' | b'H' | b'w' | b'W' => url_at(text, i),
            b'#' => tagged_at(text, i, PieceKind::Hashtag),
            b'@' => tagged_at(text, i, PieceKind::Mention),
            _ => None,
        };
        match special {
            Some(piece) => {
                segment_gap(text, gap_start, i, out);
                out.push(piece);
                i = piece.end;
                gap_start = i;
            }
            None => i += 1,
        }
    }
    segment_gap(text, gap_start, text.len(), out);
}

/// Returns true for a character that continues a word, a hashtag or a mention.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn prev_char(text: &str, i: usize) -> Option<char> {
    text[..i].chars().next_back()
}

/// Returns the link starting at byte `i`, if any. `http(s)://` may follow anything (posts
/// often glue links to the previous word); `www.` must start a word.
fn url_at(text: &str, i: usize) -> Option<Piece> {
    let rest = &text[i..];
    let starts_with = |prefix: &str| {
        rest.len() >= prefix.len()
            && rest.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    };
    let scheme_len = if starts_with("https://") {
        8
    } else if starts_with("http://") {
        7
    } else if starts_with("www.") && !prev_char(text, i).is_some_and(is_word_char) {
        4
    } else {
        return None;
    };
    let body_len = rest[scheme_len..]
        .find(|c: char| c.is_whitespace() || c.is_control() || "<>\"«»“”…|".contains(c))
        .unwrap_or(rest.len() - scheme_len);
    let mut link = &rest[..scheme_len + body_len];
    // Trailing punctuation belongs to the sentence, unless it closes a bracket opened in
    // the link (Wikipedia's `..._(film)`). Brackets are counted once and kept up to date
    // as the end is trimmed: recounting per trimmed char is quadratic on `http://a)))…`.
    let count = |c: u8| link.bytes().filter(|&b| b == c).count();
    let (open_paren, mut close_paren) = (count(b'('), count(b')'));
    let (open_bracket, mut close_bracket) = (count(b'['), count(b']'));
    while link.len() > scheme_len {
        let Some(last) = link.chars().next_back() else {
            break;
        };
        let trailing = match last {
            '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '’' | '*' => true,
            ')' => close_paren > open_paren,
            ']' => close_bracket > open_bracket,
            _ => false,
        };
        if !trailing {
            break;
        }
        match last {
            ')' => close_paren -= 1,
            ']' => close_bracket -= 1,
            _ => {}
        }
        link = &link[..link.len() - last.len_utf8()];
    }
    let has_host = link[scheme_len..]
        .chars()
        .next()
        .is_some_and(char::is_alphanumeric);
    has_host.then(|| Piece {
        kind: PieceKind::Url,
        start: i,
        end: i + link.len(),
    })
}

/// Returns the hashtag or mention starting with the `#` or `@` at byte `i`, if any.
///
/// The sign must not follow a word character (`C#`, `name@example.org` are not tags) nor
/// `&` (`&#39;`). A hashtag needs a letter (`#1` is a number); a mention does not.
fn tagged_at(text: &str, i: usize, kind: PieceKind) -> Option<Piece> {
    if prev_char(text, i).is_some_and(|c| is_word_char(c) || c == '&') {
        return None;
    }
    let body_start = i + 1;
    let mut has_letter = false;
    let mut end = body_start;
    for (offset, c) in text[body_start..].char_indices() {
        let continues = if kind == PieceKind::Hashtag {
            is_word_char(c) || (end > body_start && (is_combining_mark(c) || c == '\u{200C}'))
        } else {
            is_word_char(c)
        };
        if !continues {
            break;
        }
        has_letter |= c.is_alphabetic();
        end = body_start + offset + c.len_utf8();
    }
    let valid = end > body_start && (has_letter || kind == PieceKind::Mention);
    valid.then_some(Piece {
        kind,
        start: i,
        end,
    })
}

/// Appends the words, Han runs and emoji of `text[start..end]`.
fn segment_gap(text: &str, start: usize, end: usize, out: &mut Vec<Piece>) {
    if start >= end {
        return;
    }
    for (offset, segment) in text[start..end].split_word_bound_indices() {
        let seg_start = start + offset;
        let seg_end = seg_start + segment.len();
        let Some(first) = segment.chars().next() else {
            continue;
        };
        if is_emoji_start(first) || segment.contains('\u{20E3}') {
            out.push(Piece {
                kind: PieceKind::Emoji,
                start: seg_start,
                end: seg_end,
            });
        } else if script_of_char(first) == Some(Script::Han) {
            match out.last_mut() {
                Some(last) if last.kind == PieceKind::HanRun && last.end == seg_start => {
                    last.end = seg_end
                }
                _ => out.push(Piece {
                    kind: PieceKind::HanRun,
                    start: seg_start,
                    end: seg_end,
                }),
            }
        } else if segment.chars().any(char::is_alphanumeric) {
            split_word_segment(text, seg_start, seg_end, out);
        }
    }
}

/// Returns true for the characters UAX #29 keeps inside a word that still separate words
/// in posts: `end.Next` and `Terrorisme:quels` (missing spaces are common), but not
/// `3.14` or `08.12.2015`, which stay one number.
fn is_inner_separator(c: char) -> bool {
    matches!(
        c,
        '.' | ':'
            | '·'
            | '\u{2024}'
            | '\u{2027}'
            | '\u{FE13}'
            | '\u{FE52}'
            | '\u{FE55}'
            | '\u{FF0E}'
            | '\u{FF1A}'
    )
}

/// Splits one UAX #29 word segment at inner separators and drops elided articles.
fn split_word_segment(text: &str, start: usize, end: usize, out: &mut Vec<Piece>) {
    let segment = &text[start..end];
    let mut part_start = 0;
    let mut prev: Option<char> = None;
    let mut chars = segment.char_indices().peekable();
    while let Some((offset, c)) = chars.next() {
        let next = chars.peek().map(|&(_, n)| n);
        let between_digits =
            prev.is_some_and(|p| p.is_numeric()) && next.is_some_and(char::is_numeric);
        if is_inner_separator(c) && !between_digits {
            push_word(text, start + part_start, start + offset, out);
            part_start = offset + c.len_utf8();
        }
        prev = Some(c);
    }
    push_word(text, start + part_start, end, out);
}

fn push_word(text: &str, mut start: usize, mut end: usize, out: &mut Vec<Piece>) {
    let trim = |c: char| c == '_' || is_apostrophe(c);
    let word = text[start..end].trim_start_matches(trim);
    start = end - word.len();
    let word = word.trim_end_matches(trim);
    end = start + word.len();
    if let Some((apostrophe, c)) = word.char_indices().find(|&(_, c)| is_apostrophe(c)) {
        let elided = &word[..apostrophe];
        let after = apostrophe + c.len_utf8();
        if after < word.len() && ELISIONS.iter().any(|e| e.eq_ignore_ascii_case(elided)) {
            start += after;
        }
    }
    if text[start..end].chars().any(char::is_alphanumeric) {
        out.push(Piece {
            kind: PieceKind::Word,
            start,
            end,
        });
    }
}

/// Appends the byte ranges of the words of a hashtag body (without `#`) to `out`.
///
/// Words end at `_`, before an uppercase letter that follows a lowercase one
/// (`StandWith`), before the last capital of a capitalised run followed by lowercase
/// (`GOPDebate` → `GOP`, `Debate`), and between letters and digits (`Prayers4Paris`).
/// Caseless scripts are split at digits only.
pub(crate) fn split_hashtag(body: &str, out: &mut Vec<(usize, usize)>) {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Class {
        Upper,
        Lower,
        Digit,
    }
    let class_of = |c: char| {
        if c.is_numeric() {
            Class::Digit
        } else if c.is_uppercase() {
            Class::Upper
        } else {
            Class::Lower
        }
    };
    let mut part_start: Option<usize> = None;
    let mut prev: Option<Class> = None;
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '_' {
            if let Some(start) = part_start.take() {
                out.push((start, i));
            }
            prev = None;
            continue;
        }
        if is_combining_mark(c) || c == '\u{200C}' {
            continue;
        }
        let class = class_of(c);
        let next_is_lower = chars.peek().is_some_and(|&(_, n)| n.is_lowercase());
        let boundary = match (prev, class) {
            (Some(Class::Lower), Class::Upper) => true,
            (Some(Class::Upper), Class::Upper) => next_is_lower,
            (Some(Class::Digit), Class::Upper | Class::Lower)
            | (Some(Class::Upper | Class::Lower), Class::Digit) => true,
            _ => false,
        };
        if boundary {
            if let Some(start) = part_start.replace(i) {
                out.push((start, i));
            }
        } else if part_start.is_none() {
            part_start = Some(i);
        }
        prev = Some(class);
    }
    if let Some(start) = part_start {
        out.push((start, body.len()));
    }
}

/// Returns true when `c` starts an emoji: an Extended_Pictographic character of the emoji
/// blocks, or a regional indicator (flags). Older text-style symbols (`©`, `™`, arrows)
/// are Extended_Pictographic too but are not counted: in posts they are typography.
fn is_emoji_start(c: char) -> bool {
    matches!(
        u32::from(c),
        0x1F000..=0x1F0FF
            | 0x1F10D..=0x1F10F
            | 0x1F12F
            | 0x1F16C..=0x1F171
            | 0x1F17E..=0x1F17F
            | 0x1F18E
            | 0x1F191..=0x1F19A
            | 0x1F1E6..=0x1F1FF
            | 0x1F201..=0x1F20F
            | 0x1F21A
            | 0x1F22F
            | 0x1F232..=0x1F23A
            | 0x1F23C..=0x1F23F
            | 0x1F249..=0x1F3FA
            | 0x1F400..=0x1F53D
            | 0x1F546..=0x1F64F
            | 0x1F680..=0x1F6FF
            | 0x1F774..=0x1F77F
            | 0x1F7D5..=0x1F7FF
            | 0x1F80C..=0x1F80F
            | 0x1F848..=0x1F84F
            | 0x1F85A..=0x1F85F
            | 0x1F888..=0x1F88F
            | 0x1F8AE..=0x1F8FF
            | 0x1F90C..=0x1F93A
            | 0x1F93C..=0x1F945
            | 0x1F947..=0x1FAFF
            | 0x1FC00..=0x1FFFD
            | 0x231A..=0x231B
            | 0x23E9..=0x23F3
            | 0x23F8..=0x23FA
            | 0x25FB..=0x25FE
            | 0x2600..=0x27BF
            | 0x2B05..=0x2B07
            | 0x2B1B..=0x2B1C
            | 0x2B50
            | 0x2B55
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(text: &str) -> Vec<(PieceKind, &str)> {
        let mut out = Vec::new();
        scan(text, &mut out);
        out.iter()
            .map(|p| (p.kind, &text[p.start..p.end]))
            .collect()
    }

    use PieceKind::*;

    #[test]
    fn links_hashtags_and_mentions_are_whole_pieces() {
        assert_eq!(
            pieces("RT @AntonioFrench: Police in #Ferguson http://t.co/2gxUzOvwfy."),
            vec![
                (Word, "RT"),
                (Mention, "@AntonioFrench"),
                (Word, "Police"),
                (Word, "in"),
                (Hashtag, "#Ferguson"),
                (Url, "http://t.co/2gxUzOvwfy"),
            ]
        );
    }

    #[test]
    fn links_stop_at_quotes_ellipses_and_unbalanced_brackets() {
        assert_eq!(
            pieces("'see https://t.co/ltxwWFqLyp'")[1],
            (Url, "https://t.co/ltxwWFqLyp")
        );
        assert_eq!(
            pieces("(https://en.wikipedia.org/wiki/Tom_(film))")[0].1,
            "https://en.wikipedia.org/wiki/Tom_(film)"
        );
        assert_eq!(
            pieces("к..https://t.co/72aj81Qzct")[1],
            (Url, "https://t.co/72aj81Qzct")
        );
        assert_eq!(
            pieces("https://t.co/abc… more")[0],
            (Url, "https://t.co/abc")
        );
        assert_eq!(
            pieces("visit www.bbc.co.uk, now")[1],
            (Url, "www.bbc.co.uk")
        );
        assert_eq!(
            pieces("http:// nothing"),
            vec![(Word, "http"), (Word, "nothing")]
        );
        assert_eq!(pieces("www."), vec![(Word, "www")]);
    }

    #[test]
    fn trimming_many_closing_brackets_is_linear() {
        // 64 KiB of `)` after a link took seconds when brackets were recounted per char.
        let text = format!("http://a.b/{}", ")".repeat(64 * 1024));
        let started = std::time::Instant::now();
        assert_eq!(pieces(&text)[0], (Url, "http://a.b/"));
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(1), "{took:?}");
    }

    #[test]
    fn emails_entities_and_numbers_are_not_tags() {
        assert_eq!(
            pieces("mail john@example.org"),
            vec![
                (Word, "mail"),
                (Word, "john"),
                (Word, "example"),
                (Word, "org")
            ]
        );
        assert_eq!(
            pieces("C# &#39; #1"),
            vec![(Word, "C"), (Word, "39"), (Word, "1")]
        );
    }

    #[test]
    fn hashtags_take_any_script() {
        assert_eq!(
            pieces("#СБУ затримала"),
            vec![(Hashtag, "#СБУ"), (Word, "затримала")]
        );
        assert_eq!(pieces("l'#EI"), vec![(Word, "l"), (Hashtag, "#EI")]);
    }

    #[test]
    fn ukrainian_apostrophes_stay_inside_words() {
        assert_eq!(
            pieces("п'ють пам’яток"),
            vec![(Word, "п'ють"), (Word, "пам’яток")]
        );
    }

    #[test]
    fn french_elisions_are_dropped() {
        assert_eq!(
            pieces("l'armée d’art qu'il don't"),
            vec![
                (Word, "armée"),
                (Word, "art"),
                (Word, "il"),
                (Word, "don't")
            ]
        );
    }

    #[test]
    fn glued_sentences_split_but_numbers_stay_whole() {
        assert_eq!(
            pieces("end.Next 08.12.2015 3,14"),
            vec![
                (Word, "end"),
                (Word, "Next"),
                (Word, "08.12.2015"),
                (Word, "3,14")
            ]
        );
        assert_eq!(
            pieces("Terrorisme:quels"),
            vec![(Word, "Terrorisme"), (Word, "quels")]
        );
    }

    #[test]
    fn emoji_sequences_and_flags_are_single_pieces() {
        assert_eq!(
            pieces("ok 👍🏽 👨‍👩‍👧 🇺🇦🇫🇷 🐧🍁 1️⃣ ©"),
            vec![
                (Word, "ok"),
                (Emoji, "👍🏽"),
                (Emoji, "👨‍👩‍👧"),
                (Emoji, "🇺🇦"),
                (Emoji, "🇫🇷"),
                (Emoji, "🐧"),
                (Emoji, "🍁"),
                (Emoji, "1️⃣"),
            ]
        );
    }

    #[test]
    fn han_ideographs_form_runs() {
        assert_eq!(
            pieces("我们支持乌克兰 ok"),
            vec![(HanRun, "我们支持乌克兰"), (Word, "ok")]
        );
    }

    fn hashtag_words(body: &str) -> Vec<&str> {
        let mut out = Vec::new();
        split_hashtag(body, &mut out);
        out.iter().map(|&(s, e)| &body[s..e]).collect()
    }

    #[test]
    fn hashtags_split_on_case_digits_and_underscores() {
        assert_eq!(
            hashtag_words("StandWithUkraine"),
            ["Stand", "With", "Ukraine"]
        );
        assert_eq!(hashtag_words("GOPDebate"), ["GOP", "Debate"]);
        assert_eq!(hashtag_words("Prayers4Paris"), ["Prayers", "4", "Paris"]);
        assert_eq!(hashtag_words("Regionales2015"), ["Regionales", "2015"]);
        assert_eq!(hashtag_words("stop_the_war"), ["stop", "the", "war"]);
        assert_eq!(hashtag_words("укроСМИ"), ["укро", "СМИ"]);
        assert_eq!(hashtag_words("ferguson"), ["ferguson"]);
        assert_eq!(hashtag_words("USA"), ["USA"]);
        assert_eq!(hashtag_words("__"), Vec::<&str>::new());
    }
}
