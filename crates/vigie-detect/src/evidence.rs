//! What a person reads of a narrative: its label in the words posts use, and
//! representative posts that are not copies of each other.
//!
//! Terms are counted folded and stemmed (`захаров`, `мид`); a label of stems reads badly
//! and may name no word any post wrote. [`SurfaceForms`] counts, per term, the original
//! spellings it had in member posts, so that [`label`] can say `Захарова МИД` instead.
//! [`representatives`] groups near-duplicate posts (the same text retweeted, re-pasted
//! with another link) and shows one post per group with the group's size, so that five
//! representatives are five different things said.

use serde::{Deserialize, Serialize};
use vigie_domain::{RepresentativePost, TokenKind};

use crate::hashing::{estimated_jaccard, MINHASH_LEN};

/// Most terms whose spellings are counted; new terms beyond are ignored.
const MAX_TERMS: usize = 256;
/// Most spellings counted per term (space-saving: the rarest is replaced).
const MAX_SPELLINGS: usize = 4;
/// Longest spelling kept, in bytes; longer ones are not words a label needs.
const MAX_SPELLING_BYTES: usize = 64;
/// Least words of the shorter text for containment to make two texts one.
const MIN_CONTAINED_WORDS: usize = 4;
/// Least share of the longer text's words the shorter must have for containment.
const MIN_CONTAINED_SHARE: f64 = 0.6;

/// A post that may represent a narrative.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Candidate<'a> {
    /// The post's id.
    pub id: &'a str,
    /// Its text (or a bounded sample of it).
    pub text: &'a str,
    /// Its language (ISO 639-1, or `und`).
    pub lang: &'a str,
    /// Its MinHash signature; `None` for posts too short to have one.
    pub signature: Option<&'a [u32; MINHASH_LEN]>,
    /// How central it is to the narrative (higher is more central).
    pub centrality: f64,
}

/// Groups candidates into near-duplicate groups: two posts are near-duplicates when the
/// estimated Jaccard of their signatures is at least `jaccard`, or when their texts are
/// the same once normalised ([`normalized`], [`same_text`]). Each candidate, most
/// central first, joins the first group with a member it duplicates, or opens a group of
/// which it is the representative; so no two representatives are near-duplicates.
/// Returns the groups as indexes into `candidates`, most central representative first
/// (ties: the larger group, then input order).
pub(crate) fn groups(candidates: &[Candidate<'_>], jaccard: f64) -> Vec<Vec<usize>> {
    let keys: Vec<String> = candidates.iter().map(|c| normalized(c.text)).collect();
    groups_by_key(candidates, &keys, jaccard)
}

/// [`groups`] with the candidates' normalised texts already at hand (`keys[i]` is
/// `normalized(candidates[i].text)`).
pub(crate) fn groups_by_key(
    candidates: &[Candidate<'_>],
    keys: &[String],
    jaccard: f64,
) -> Vec<Vec<usize>> {
    debug_assert_eq!(candidates.len(), keys.len());
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| {
        candidates[b]
            .centrality
            .total_cmp(&candidates[a].centrality)
            .then(a.cmp(&b))
    });
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in order {
        let found = groups.iter().position(|group| {
            group.iter().any(|&member| {
                near_duplicates(
                    &candidates[member],
                    &keys[member],
                    &candidates[i],
                    &keys[i],
                    jaccard,
                )
            })
        });
        match found {
            Some(g) => groups[g].push(i),
            None => groups.push(vec![i]),
        }
    }
    // Stable: equal heads keep their order after the size tie-break.
    groups.sort_by(|a, b| {
        candidates[b[0]]
            .centrality
            .total_cmp(&candidates[a[0]].centrality)
            .then(b.len().cmp(&a.len()))
    });
    groups
}

/// Returns one representative per near-duplicate group (estimated Jaccard of signatures
/// ≥ `jaccard`, or the same text once links, mentions, RT prefix, case and spacing are
/// normalised, or one such text held in the other, see [`same_text`]), most central
/// group first; `copies` is the group's size among the candidates; at most `max`.
#[allow(
    dead_code,
    reason = "the claims' evidence (claims.rs) calls it; storylines weigh kept copies with `groups`"
)]
pub(crate) fn representatives(
    candidates: &[Candidate<'_>],
    jaccard: f64,
    max: usize,
) -> Vec<RepresentativePost> {
    groups(candidates, jaccard)
        .into_iter()
        .take(max)
        .map(|group| {
            let head = &candidates[group[0]];
            RepresentativePost {
                post_id: head.id.to_owned(),
                text: head.text.to_owned(),
                lang: head.lang.to_owned(),
                copies: u32::try_from(group.len()).unwrap_or(u32::MAX),
            }
        })
        .collect()
}

/// Returns whether two candidates (with their normalised texts) are near-duplicates.
pub(crate) fn near_duplicates(
    a: &Candidate<'_>,
    a_key: &str,
    b: &Candidate<'_>,
    b_key: &str,
    jaccard: f64,
) -> bool {
    if same_text(a_key, b_key) {
        return true;
    }
    match (a.signature, b.signature) {
        (Some(x), Some(y)) => estimated_jaccard(x, y) >= jaccard,
        _ => false,
    }
}

/// Returns whether two normalised texts say the same thing: equal, or one starting or
/// ending the other at a word boundary, with at least `MIN_CONTAINED_WORDS` words and
/// `MIN_CONTAINED_SHARE` of the other's. Copies often add a word or two before or after
/// ("OMG X", "#DogThanking X", "X via"), which barely moves a long text's bigram
/// Jaccard but takes a short text's below any threshold. Called for every kept piece
/// of evidence at every member post, so the cheap tests come first.
pub(crate) fn same_text(a: &str, b: &str) -> bool {
    if a.len() == b.len() {
        return a == b;
    }
    let (short, long) = if a.len() < b.len() { (a, b) } else { (b, a) };
    // Words average a few to a dozen bytes: a text under a fifth of the other's bytes is
    // far from 60% of its words, and not worth the comparison.
    if short.len() < MIN_CONTAINED_WORDS * 2 || short.len() * 5 < long.len() {
        return false;
    }
    // Bytes, not `str` slices: the cut may fall inside a character.
    let (short_bytes, long_bytes) = (short.as_bytes(), long.as_bytes());
    let cut = long.len() - short.len();
    let at_start = long_bytes[short.len()] == b' ' && long_bytes[..short.len()] == *short_bytes;
    let at_end = !at_start && long_bytes[cut - 1] == b' ' && long_bytes[cut..] == *short_bytes;
    if !(at_start || at_end) {
        return false;
    }
    let words = |text: &str| text.bytes().filter(|b| *b == b' ').count() + 1;
    let (short_words, long_words) = (words(short), words(long));
    short_words >= MIN_CONTAINED_WORDS
        && short_words as f64 >= MIN_CONTAINED_SHARE * long_words as f64
}

/// Returns whether a whitespace-separated word of a post is a link.
fn is_link(lowered: &str) -> bool {
    lowered.contains("://")
        || lowered.starts_with("www.")
        || lowered.starts_with("pic.twitter.com/")
        || lowered.starts_with("t.co/")
}

/// Returns the text with what copies change removed: links, mentions and a leading `RT`
/// (or `MT`) prefix dropped, punctuation at the edges of words trimmed, lowercase,
/// single spaces. A text that normalises to nothing (only links and mentions) is kept
/// whole, lowercase, so that two different links are not one text.
pub(crate) fn normalized(text: &str) -> String {
    let lowered = text.to_lowercase();
    let mut out = String::with_capacity(lowered.len());
    let mut in_prefix = true;
    for word in lowered.split_whitespace() {
        if word.starts_with(['@', '＠']) || is_link(word) {
            continue;
        }
        let trimmed = word.trim_matches(|c: char| !c.is_alphanumeric());
        if in_prefix && (trimmed == "rt" || trimmed == "mt") {
            continue;
        }
        if trimmed.is_empty() {
            continue;
        }
        in_prefix = false;
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(trimmed);
    }
    if out.is_empty() {
        return lowered.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    out
}

/// The original spellings of terms and how often each was seen, bounded: at most
/// `MAX_TERMS` terms and `MAX_SPELLINGS` spellings per term (space-saving counting, which
/// keeps any spelling used by more than a quarter of a term's posts).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct SurfaceForms {
    /// (term hash, [(spelling, count)]), sorted by hash.
    terms: Vec<(u64, Vec<(String, u32)>)>,
}

impl SurfaceForms {
    /// Counts one use of `surface` as the spelling of term `hash`; empty or overlong
    /// spellings are ignored.
    pub fn add(&mut self, hash: u64, surface: &str) {
        self.add_count(hash, surface, 1);
    }

    fn add_count(&mut self, hash: u64, surface: &str, count: u32) {
        if surface.is_empty() || surface.len() > MAX_SPELLING_BYTES || count == 0 {
            return;
        }
        let index = match self.terms.binary_search_by_key(&hash, |(h, _)| *h) {
            Ok(index) => index,
            Err(_) if self.terms.len() >= MAX_TERMS => return,
            Err(index) => {
                self.terms.insert(index, (hash, Vec::new()));
                index
            }
        };
        let spellings = &mut self.terms[index].1;
        if let Some(entry) = spellings.iter_mut().find(|(s, _)| s == surface) {
            entry.1 = entry.1.saturating_add(count);
        } else if spellings.len() < MAX_SPELLINGS {
            spellings.push((surface.to_owned(), count));
        } else if let Some(rarest) = spellings.iter_mut().min_by_key(|(_, n)| *n) {
            // Space-saving: the newcomer inherits the rarest count, an upper bound of
            // its own.
            *rarest = (surface.to_owned(), rarest.1.saturating_add(count));
        }
    }

    /// Returns whether no spelling was counted.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Returns the most frequent spelling of term `hash` (the first seen among equals).
    pub fn best(&self, hash: u64) -> Option<&str> {
        let index = self.terms.binary_search_by_key(&hash, |(h, _)| *h).ok()?;
        let mut best: Option<&(String, u32)> = None;
        for entry in &self.terms[index].1 {
            if best.is_none_or(|b| entry.1 > b.1) {
                best = Some(entry);
            }
        }
        best.map(|(s, _)| s.as_str())
    }

    /// Adds the counts of another narrative's spellings.
    pub fn absorb(&mut self, other: &SurfaceForms) {
        for (hash, spellings) in &other.terms {
            for (surface, count) in spellings {
                self.add_count(*hash, surface, *count);
            }
        }
    }

    /// Returns the bytes held, roughly, for the memory estimate.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .terms
                .iter()
                .map(|(_, spellings)| {
                    32 + spellings.iter().map(|(s, _)| 28 + s.len()).sum::<usize>()
                })
                .sum::<usize>()
    }
}

/// Returns how a term reads: its most frequent spelling, or its canonical text when
/// none was counted (a narrative restored from an older snapshot); hashtags with `#`,
/// mentions with `@`.
fn surface_of(hash: u64, text: &str, kind: TokenKind, forms: &SurfaceForms) -> String {
    let form = forms.best(hash).unwrap_or(text);
    match kind {
        TokenKind::Hashtag => format!("#{}", form.trim_start_matches(['#', '＃'])),
        TokenKind::Mention if !form.starts_with(['@', '＠']) => format!("@{form}"),
        _ => form.to_owned(),
    }
}

/// Builds a label from (hash, canonical text, kind) terms, most important first: the
/// first `max` distinct parts in their surface forms, words (and mentions, domains)
/// first then `#hashtags`, no word repeated (case-insensitive; `#Ferguson` repeats
/// `Ferguson`). A term with no counted spelling is left out, since its canonical text
/// may be a stem no post wrote, unless `forms` is empty altogether (state restored from
/// an older snapshot), where canonical texts are all there is.
pub(crate) fn label(terms: &[(u64, &str, TokenKind)], forms: &SurfaceForms, max: usize) -> String {
    let mut seen: Vec<String> = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut hashtags: Vec<String> = Vec::new();
    for &(hash, text, kind) in terms {
        if words.len() + hashtags.len() >= max {
            break;
        }
        if !forms.is_empty() && forms.best(hash).is_none() {
            continue;
        }
        let part = surface_of(hash, text, kind, forms);
        let key = part
            .trim_start_matches(['#', '＃', '@', '＠'])
            .to_lowercase();
        if key.is_empty() || part.contains(char::is_whitespace) || seen.contains(&key) {
            continue;
        }
        seen.push(key);
        if kind == TokenKind::Hashtag {
            hashtags.push(part);
        } else {
            words.push(part);
        }
    }
    words.extend(hashtags);
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::{hash_bytes, minhash};

    fn signature(text: &str) -> [u32; MINHASH_LEN] {
        let words: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
        let shingles: Vec<u64> = words
            .windows(2)
            .map(|w| hash_bytes(hash_bytes(0, w[0].as_bytes()), w[1].as_bytes()))
            .collect();
        minhash(&shingles).expect("test texts have two words or more")
    }

    #[test]
    fn normalisation_drops_what_copies_change() {
        assert_eq!(
            normalized("RT @ap: Gunmen  attack Charlie Hebdo! http://t.co/x"),
            "gunmen attack charlie hebdo"
        );
        assert_eq!(
            normalized("gunmen attack @someone CHARLIE hebdo https://bit.ly/y"),
            "gunmen attack charlie hebdo"
        );
        // "RT" inside a text is a word.
        assert_eq!(
            normalized("they said RT is biased"),
            "they said rt is biased"
        );
        // Only a link: kept, so two different links differ.
        assert_ne!(normalized("http://a.com/1"), normalized("http://a.com/2"));
    }

    #[test]
    fn a_copy_with_a_word_added_is_the_same_text() {
        let base = normalized("Who thinks we are safe? #kochfarms");
        assert!(same_text(
            &normalized("OMG  Who thinks we are safe? #kochfarms"),
            &base
        ));
        assert!(same_text(
            &base,
            &normalized("#DogThanking who thinks we are SAFE #kochfarms")
        ));
        // Too short, too small a part of the other, or not at word boundaries: different.
        assert!(!same_text("bird flu", "bird flu again usda kochfarms"));
        assert!(!same_text(
            "happy thanksgiving to everyone",
            "happy thanksgiving to everyone we hope your day is full of love and food"
        ));
        assert!(!same_text(
            "ho thinks we are safe",
            "who thinks we are safe"
        ));
        // Multi-byte texts of any lengths compare without panicking (the cut may fall
        // inside a character).
        let texts = [
            "путин создается впечатление что отношения с турцией загоняют в тупик",
            "о путин создается впечатление что отношения с турцией",
            "создается впечатление что отношения с турцией загоняют в тупик",
            "é путин создается впечатление",
            "漢字 漢字 漢字 漢字 漢字",
            "a",
            "",
        ];
        for a in texts {
            for b in texts {
                assert_eq!(same_text(a, b), same_text(b, a));
            }
        }
        assert!(same_text(texts[0], texts[2]));
    }

    #[test]
    fn one_representative_per_near_duplicate_group_with_its_size() {
        let a = "the chemical plant in centerville louisiana exploded this morning and the smoke is visible for miles";
        let a2 =
            "the chemical plant in centerville louisiana exploded this morning and the smoke is visible for kilometres";
        let b = "a shark is swimming on the new jersey highway after sandy";
        let (sa, sa2, sb) = (signature(a), signature(a2), signature(b));
        let rt = format!("RT @x: {a} http://t.co/1");
        let candidates = [
            Candidate {
                id: "1",
                text: a,
                lang: "en",
                signature: Some(&sa),
                centrality: 3.0,
            },
            Candidate {
                id: "2",
                text: b,
                lang: "en",
                signature: Some(&sb),
                centrality: 2.0,
            },
            Candidate {
                id: "3",
                text: &rt,
                lang: "en",
                signature: None,
                centrality: 4.0,
            },
            Candidate {
                id: "4",
                text: a2,
                lang: "fr",
                signature: Some(&sa2),
                centrality: 1.0,
            },
            Candidate {
                id: "5",
                text: b,
                lang: "en",
                signature: None,
                centrality: 0.0,
            },
        ];
        // 1 and 4 share 15 of 17 bigrams: near-duplicates at 0.6, not at 0.99.
        let shown = representatives(&candidates, 0.6, 5);
        let summary: Vec<(&str, u32)> = shown
            .iter()
            .map(|r| (r.post_id.as_str(), r.copies))
            .collect();
        assert_eq!(summary, [("3", 3), ("2", 2)]);
        let strict = representatives(&candidates, 0.99, 5);
        let summary: Vec<(&str, u32)> = strict
            .iter()
            .map(|r| (r.post_id.as_str(), r.copies))
            .collect();
        assert_eq!(summary, [("3", 2), ("2", 2), ("4", 1)]);
        assert_eq!(strict[2].lang, "fr");
        assert_eq!(representatives(&candidates, 0.7, 1).len(), 1);
        assert!(representatives(&[], 0.7, 5).is_empty());
    }

    #[test]
    fn surface_forms_count_spellings_within_bounds() {
        let mut forms = SurfaceForms::default();
        for spelling in ["МИД", "мид", "МИД", "МИДа"] {
            forms.add(7, spelling);
        }
        assert_eq!(forms.best(7), Some("МИД"));
        assert_eq!(forms.best(8), None);
        // Ties go to the first seen.
        forms.add(9, "Hebdo");
        forms.add(9, "hebdo");
        assert_eq!(forms.best(9), Some("Hebdo"));
        // Many spellings: the frequent one survives the rare ones.
        for i in 0..100 {
            forms.add(10, "Paris");
            forms.add(10, &format!("p{i}"));
        }
        assert_eq!(forms.best(10), Some("Paris"));
        assert!(
            forms.terms[forms.terms.binary_search_by_key(&10, |t| t.0).unwrap()]
                .1
                .len()
                <= MAX_SPELLINGS
        );
        for hash in 0..1000 {
            forms.add(1000 + hash, "w");
        }
        assert_eq!(forms.terms.len(), MAX_TERMS);
        forms.add(5, "");
        forms.add(5, &"x".repeat(200));
        assert_eq!(forms.best(5), None);
        assert!(forms.memory_bytes() > MAX_TERMS * 32);
    }

    #[test]
    fn absorbing_adds_counts() {
        let mut a = SurfaceForms::default();
        a.add(1, "Zakharova");
        let mut b = SurfaceForms::default();
        b.add(1, "ZAKHAROVA");
        b.add(1, "ZAKHAROVA");
        b.add(2, "Brussels");
        a.absorb(&b);
        assert_eq!(a.best(1), Some("ZAKHAROVA"));
        assert_eq!(a.best(2), Some("Brussels"));
    }

    #[test]
    fn labels_read_as_posts_spell_them() {
        let mut forms = SurfaceForms::default();
        forms.add(1, "Захарова");
        forms.add(2, "МИД");
        forms.add(3, "KochFarms");
        forms.add(4, "Ferguson");
        forms.add(5, "@Reuters");
        let terms = [
            (3, "kochfarms", TokenKind::Hashtag),
            (1, "захаров", TokenKind::Word),
            (2, "мид", TokenKind::Word),
            (6, "бельг", TokenKind::Word),
            (4, "ferguson", TokenKind::Word),
            (7, "ferguson", TokenKind::Hashtag),
            (5, "reuters", TokenKind::Mention),
        ];
        // "бельг" and the second #ferguson have no spelling: left out.
        assert_eq!(label(&terms, &forms, 4), "Захарова МИД Ferguson #KochFarms");
        assert_eq!(
            label(&terms, &forms, 10),
            "Захарова МИД Ferguson @Reuters #KochFarms"
        );
        assert_eq!(label(&terms, &forms, 0), "");
        // Without any spelling (an old snapshot): canonical texts.
        assert_eq!(
            label(&terms[..3], &SurfaceForms::default(), 5),
            "захаров мид #kochfarms"
        );
    }
}

#[cfg(test)]
mod issue_8_tests;
