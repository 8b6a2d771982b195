//! Ukrainian stemming: strips inflectional suffixes so that `війна`, `війни`, `війну` and
//! `війною` share the term `війн`.
//!
//! No Rust crate stems Ukrainian and Snowball has no Ukrainian algorithm, so this is a
//! port of the rules of "ukrstemmer" (Kostiantyn Bondarenko, BSD licence,
//! `github.com/Amice13/ukr_stemmer`), itself an adaptation of Snowball's Russian stemmer
//! (`snowballstem.org/algorithms/russian/stemmer.html`) to Ukrainian endings:
//!
//! 1. RV is the part of the word after its first vowel; only RV is ever changed.
//! 2. Remove a perfective gerund ending; if there is none, remove a reflexive ending, then
//!    an adjective ending (followed by a participle ending), or else a verb ending, or
//!    else a noun ending. Each step removes the longest ending that matches.
//! 3. Remove a final `и`.
//! 4. Remove the derivational ending `ость` when RV is long enough (the ukrstemmer test).
//! 5. If a final `ь` was removed, remove a superlative `ейш(е)` and turn `нн` into `н`.
//!
//! Departures from ukrstemmer, where its regular expressions do not do what they say: the
//! perfective gerund group "в, вши, вшись after а or я" is applied as Snowball intends
//! (ukrstemmer's pattern can never match it), and the apostrophe is dropped from the stem
//! (`п'ють` → `пют`) instead of being kept in some spellings and not others; the verb
//! endings gain the present-tense `-ють -ять -ить -еть -єть -іть` and the infinitive
//! `-ити -іти`, without which `залишається` and `залишаються` keep different stems.
//!
//! Like every suffix stripper it is crude: it conflates some unrelated words and misses
//! stem alternations (`Київ`/`Києва`). Input must be lowercase (see `fold::lower_into`).

/// Vowels of Ukrainian, plus Russian `ы`, which Ukrainian posts mix in.
const VOWELS: &[char] = &['а', 'е', 'и', 'о', 'у', 'ю', 'я', 'і', 'ї', 'є', 'ы'];

/// Perfective gerund endings allowed after `а` or `я` only.
const PERFECTIVE_GERUND_AFTER_A: &[&str] = &["вшись", "вши", "в"];
/// Perfective gerund endings allowed anywhere in RV.
const PERFECTIVE_GERUND: &[&str] = &["ившись", "ывшись", "ивши", "ывши", "ив", "ыв"];
const REFLEXIVE: &[&str] = &["ся", "сь", "си"];
const ADJECTIVE: &[&str] = &[
    "ими", "ій", "ий", "а", "е", "ова", "ове", "ів", "є", "їй", "єє", "еє", "я", "ім", "ем", "им",
    "их", "іх", "ою", "йми", "іми", "у", "ю", "ого", "ому", "ої",
];
const PARTICIPLE: &[&str] = &[
    "ий", "ого", "ому", "им", "ім", "а", "ій", "у", "ою", "і", "их", "йми",
];
const VERB: &[&str] = &[
    "сь", "ся", "ив", "ать", "ять", "у", "ю", "ав", "али", "учи", "ячи", "вши", "ши", "е", "ме",
    "ати", "яти", "є", "ють", "ять", "ить", "еть", "єть", "іть", "ити", "іти",
];
const NOUN: &[&str] = &[
    "а", "ев", "ов", "е", "ями", "ами", "еи", "и", "ей", "ой", "ий", "й", "иям", "ям", "ием", "ем",
    "ам", "ом", "о", "у", "ах", "иях", "ях", "ы", "ь", "ию", "ью", "ю", "ия", "ья", "я", "і",
    "ові", "ї", "ею", "єю", "ою", "є", "еві", "єм", "ів", "їв",
];

/// Returns the Ukrainian stem of a lowercase word.
pub(crate) fn stem(word: &str) -> String {
    let mut word: String = word.chars().filter(|&c| c != '\'').collect();
    let Some(first_vowel_end) = word
        .char_indices()
        .find(|(_, c)| VOWELS.contains(c))
        .map(|(i, c)| i + c.len_utf8())
    else {
        return word;
    };
    let mut rv = word.split_off(first_vowel_end);
    let start = word;

    // Step 1.
    if !remove_perfective_gerund(&mut rv) {
        remove_longest(&mut rv, REFLEXIVE);
        if remove_longest(&mut rv, ADJECTIVE) {
            remove_longest(&mut rv, PARTICIPLE);
        } else if !remove_longest(&mut rv, VERB) {
            remove_longest(&mut rv, NOUN);
        }
    }
    // Step 2.
    remove_longest(&mut rv, &["и"]);
    // Step 3.
    if is_long_derivational(&rv) {
        remove_longest(&mut rv, &["ость"]);
    }
    // Step 4.
    if remove_longest(&mut rv, &["ь"]) {
        remove_longest(&mut rv, &["ейше", "ейш"]);
        if rv.ends_with("нн") {
            rv.truncate(rv.len() - "н".len());
        }
    }

    let mut stem = start;
    stem.push_str(&rv);
    stem
}

/// Removes the longest of `suffixes` that ends `rv`; returns whether one was removed.
fn remove_longest(rv: &mut String, suffixes: &[&str]) -> bool {
    let longest = suffixes
        .iter()
        .filter(|s| rv.ends_with(**s))
        .map(|s| s.len())
        .max();
    match longest {
        Some(len) => {
            rv.truncate(rv.len() - len);
            true
        }
        None => false,
    }
}

fn remove_perfective_gerund(rv: &mut String) -> bool {
    let after_a = PERFECTIVE_GERUND_AFTER_A
        .iter()
        .filter(|s| {
            rv.strip_suffix(**s)
                .is_some_and(|rest| rest.ends_with('а') || rest.ends_with('я'))
        })
        .map(|s| s.len())
        .max();
    let anywhere = PERFECTIVE_GERUND
        .iter()
        .filter(|s| rv.ends_with(**s))
        .map(|s| s.len())
        .max();
    match after_a.max(anywhere) {
        Some(len) => {
            rv.truncate(rv.len() - len);
            true
        }
        None => false,
    }
}

/// Returns true when RV ends in `ост`/`ость` and has, up to that `о`, a consonant, one or
/// more vowels, one or more consonants and a vowel: ukrstemmer's
/// `[^V][V]+[^V]+[V].*(?<=о)сть?$`.
fn is_long_derivational(rv: &str) -> bool {
    let Some(head) = rv.strip_suffix("ость").or_else(|| rv.strip_suffix("ост")) else {
        return false;
    };
    // The pattern may end on the `о` itself, so search `head` followed by `о`.
    let chars: Vec<bool> = head
        .chars()
        .chain(['о'])
        .map(|c| VOWELS.contains(&c))
        .collect();
    (0..chars.len()).any(|start| {
        let mut i = start;
        if chars.get(i) != Some(&false) {
            return false;
        }
        i += 1;
        let vowels = chars[i..].iter().take_while(|v| **v).count();
        if vowels == 0 {
            return false;
        }
        i += vowels;
        let consonants = chars[i..].iter().take_while(|v| !**v).count();
        consonants > 0 && chars.get(i + consonants) == Some(&true)
    })
}

#[cfg(test)]
mod tests {
    use super::stem;

    fn assert_same_stem(words: &[&str], expected: &str) {
        for word in words {
            assert_eq!(stem(word), expected, "stem of {word}");
        }
    }

    #[test]
    fn war_shares_one_stem_across_cases() {
        assert_same_stem(
            &[
                "війна",
                "війни",
                "війні",
                "війну",
                "війною",
                "війнами",
                "війн",
            ],
            "війн",
        );
    }

    #[test]
    fn ukraine_shares_one_stem_across_cases() {
        assert_same_stem(
            &["україна", "україни", "україні", "україну", "україною"],
            "україн",
        );
    }

    #[test]
    fn adjectives_lose_their_endings() {
        assert_same_stem(
            &[
                "український",
                "українського",
                "українському",
                "українські",
                "українських",
            ],
            "українськ",
        );
    }

    #[test]
    fn verbs_lose_reflexive_and_verb_endings() {
        assert_same_stem(&["залишається", "залишаються"], "залиша");
        assert_eq!(stem("вибігали"), "вибіг");
    }

    #[test]
    fn real_fixture_words_stem_as_expected() {
        // From "У Харкові розстріляли трамвай" and "Москалі зі своїм газом".
        assert_eq!(stem("харкові"), "харк");
        assert_eq!(stem("москалі"), "москал");
        assert_eq!(stem("москалів"), "москал");
        assert_eq!(stem("газом"), "газ");
    }

    #[test]
    fn apostrophes_are_dropped_and_vowelless_words_kept() {
        assert_eq!(stem("пам'ятки"), stem("пам'ятку"));
        assert_eq!(stem("сбу"), "сбу");
        assert_eq!(stem("птн"), "птн");
        assert_eq!(stem(""), "");
    }

    #[test]
    fn derivational_test_needs_a_long_rv() {
        assert!(super::is_long_derivational("довость"));
        assert!(super::is_long_derivational("лабость"));
        assert!(!super::is_long_derivational("дность"));
        assert!(!super::is_long_derivational("трамвай"));
    }
}
