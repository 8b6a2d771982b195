//! Languages: code normalisation, identification with whatlang, and the per-language
//! stemmer and stopword set used by the analyzer.
//!
//! Codes are ISO 639-1 (`en`, `uk`) where one exists. Identification runs on a post's
//! words only (links, mentions and hashtags would mislead it) and is corrected for the
//! Cyrillic languages whatlang confuses on short posts (see [`correct_cyrillic`]).

use std::collections::{HashMap, HashSet};

use rust_stemmers::{Algorithm, Stemmer};
use whatlang::Lang;

use crate::fold::{self, Script};
use crate::ukrainian;

/// Languages with a stemmer: Snowball's (rust-stemmers) and our Ukrainian one.
pub(crate) const STEMMED_LANGUAGES: &[&str] = &[
    "ar", "da", "de", "el", "en", "es", "fi", "fr", "hu", "it", "nl", "no", "pt", "ro", "ru", "sv",
    "ta", "tr", "uk",
];

/// Words missing from the ISO Ukrainian stopword list (the only one stop-words has for
/// Ukrainian), which lacks the most frequent prepositions, conjunctions and particles of
/// the language. The ISO list is kept; these are only added to it.
const UKRAINIAN_STOPWORDS_ADDED: &[&str] = &[
    "і", "в", "у", "на", "не", "а", "о", "же", "ж", "ні", "бо", "вже", "ще", "за", "по", "я",
    "його", "або", "мене", "мені", "нас", "тут", "там", "щоб", "би", "зі", "при", "їй", "ним",
    "них",
];

/// ISO 639-1 code of each language whatlang identifies.
const WHATLANG_CODES: &[(Lang, &str)] = &[
    (Lang::Epo, "eo"),
    (Lang::Eng, "en"),
    (Lang::Rus, "ru"),
    (Lang::Cmn, "zh"),
    (Lang::Spa, "es"),
    (Lang::Por, "pt"),
    (Lang::Ita, "it"),
    (Lang::Ben, "bn"),
    (Lang::Fra, "fr"),
    (Lang::Deu, "de"),
    (Lang::Ukr, "uk"),
    (Lang::Kat, "ka"),
    (Lang::Ara, "ar"),
    (Lang::Hin, "hi"),
    (Lang::Jpn, "ja"),
    (Lang::Heb, "he"),
    (Lang::Yid, "yi"),
    (Lang::Pol, "pl"),
    (Lang::Amh, "am"),
    (Lang::Jav, "jv"),
    (Lang::Kor, "ko"),
    (Lang::Nob, "nb"),
    (Lang::Dan, "da"),
    (Lang::Swe, "sv"),
    (Lang::Fin, "fi"),
    (Lang::Tur, "tr"),
    (Lang::Nld, "nl"),
    (Lang::Hun, "hu"),
    (Lang::Ces, "cs"),
    (Lang::Ell, "el"),
    (Lang::Bul, "bg"),
    (Lang::Bel, "be"),
    (Lang::Mar, "mr"),
    (Lang::Kan, "kn"),
    (Lang::Ron, "ro"),
    (Lang::Slv, "sl"),
    (Lang::Hrv, "hr"),
    (Lang::Srp, "sr"),
    (Lang::Mkd, "mk"),
    (Lang::Lit, "lt"),
    (Lang::Lav, "lv"),
    (Lang::Est, "et"),
    (Lang::Tam, "ta"),
    (Lang::Vie, "vi"),
    (Lang::Urd, "ur"),
    (Lang::Tha, "th"),
    (Lang::Guj, "gu"),
    (Lang::Uzb, "uz"),
    (Lang::Pan, "pa"),
    (Lang::Aze, "az"),
    (Lang::Ind, "id"),
    (Lang::Tel, "te"),
    (Lang::Pes, "fa"),
    (Lang::Mal, "ml"),
    (Lang::Ori, "or"),
    (Lang::Mya, "my"),
    (Lang::Nep, "ne"),
    (Lang::Sin, "si"),
    (Lang::Khm, "km"),
    (Lang::Tuk, "tk"),
    (Lang::Aka, "ak"),
    (Lang::Zul, "zu"),
    (Lang::Sna, "sn"),
    (Lang::Afr, "af"),
    (Lang::Lat, "la"),
    (Lang::Slk, "sk"),
    (Lang::Cat, "ca"),
    (Lang::Tgl, "tl"),
    (Lang::Hye, "hy"),
    (Lang::Cym, "cy"),
];

/// Returns the ISO 639-1 code of a whatlang language.
pub(crate) fn iso_code(lang: Lang) -> &'static str {
    WHATLANG_CODES
        .iter()
        .find(|(l, _)| *l == lang)
        .map_or_else(|| lang.code(), |(_, code)| code)
}

/// Returns the whatlang language of an ISO 639-1 code.
pub(crate) fn whatlang_lang(code: &str) -> Option<Lang> {
    let code = if matches!(code, "no" | "nn") {
        "nb"
    } else {
        code
    };
    WHATLANG_CODES
        .iter()
        .find(|(_, c)| *c == code)
        .map(|(l, _)| *l)
}

/// Returns the analysis code of a language tag given by a producer or a user, or `None`
/// when the tag says nothing (`und`, empty) and the language must be identified.
///
/// `en-US` → `en`, `zh_Hant` → `zh`, ISO 639-3 codes whatlang knows (`rus`) → `ru`,
/// obsolete codes (`iw`, `in`, `ji`) → their current ones. Other tags are kept lowercase.
pub(crate) fn normalize_lang_code(tag: &str) -> Option<String> {
    let primary = tag
        .trim()
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let code = match primary.as_str() {
        "" | "und" | "zxx" | "mul" | "mis" | "xx" => return None,
        "iw" => "he".to_owned(),
        "in" => "id".to_owned(),
        "ji" => "yi".to_owned(),
        "jw" => "jv".to_owned(),
        three if three.len() == 3 => {
            Lang::from_code(three).map_or(primary.clone(), |lang| iso_code(lang).to_owned())
        }
        _ => primary,
    };
    Some(code)
}

/// Returns the script words of a stemmed language are written in.
fn stemmed_language_script(code: &str) -> Script {
    match code {
        "ru" | "uk" => Script::Cyrillic,
        "ar" => Script::Arabic,
        "el" => Script::Greek,
        "ta" => Script::Tamil,
        _ => Script::Latin,
    }
}

/// Returns the language whose stemmer and stopwords serve a script when a word's language
/// is unknown: Latin → en, Cyrillic → ru, Arabic → ar, Greek → el, Tamil → ta.
pub(crate) fn script_default_language(script: Script) -> Option<&'static str> {
    match script {
        Script::Latin => Some("en"),
        Script::Cyrillic => Some("ru"),
        Script::Arabic => Some("ar"),
        Script::Greek => Some("el"),
        Script::Tamil => Some("ta"),
        Script::Han | Script::Other | Script::Numeric => None,
    }
}

/// How one language stems.
enum LanguageStemmer {
    Snowball(Stemmer),
    Ukrainian,
}

/// A language's analysis resources, built once.
pub(crate) struct LanguageProfile {
    /// The script of the language's words, for stemmed languages; a word in another
    /// script is not analysed with this language.
    script: Option<Script>,
    stemmer: Option<LanguageStemmer>,
    /// Folded like tokens.
    stopwords: HashSet<String>,
}

impl LanguageProfile {
    /// Returns true when a word of `script` can be analysed with this language.
    pub(crate) fn accepts(&self, script: Script) -> bool {
        self.script.is_none_or(|s| s == script)
    }

    /// Returns true when this language has a stemmer.
    pub(crate) fn has_stemmer(&self) -> bool {
        self.stemmer.is_some()
    }

    /// Returns true when `folded` is a stopword.
    pub(crate) fn is_stopword(&self, folded: &str) -> bool {
        self.stopwords.contains(folded)
    }

    /// Returns the folded stem of a lowered word (see `fold`), or `None` when the language
    /// has no stemmer.
    pub(crate) fn stem(&self, lowered: &str, script: Script) -> Option<String> {
        let stem = match self.stemmer.as_ref()? {
            LanguageStemmer::Snowball(stemmer) => stemmer.stem(lowered).into_owned(),
            LanguageStemmer::Ukrainian => ukrainian::stem(lowered),
        };
        let mut folded = String::with_capacity(stem.len());
        fold::finish_fold_into(&stem, script, &mut folded);
        Some(folded)
    }
}

/// Every language profile, by code.
pub(crate) struct Languages {
    profiles: HashMap<&'static str, LanguageProfile>,
    /// Stopwords of Cyrillic words of unknown language: Russian and Ukrainian together,
    /// so that neither language's function words reach the index as content.
    neutral_cyrillic_stopwords: HashSet<String>,
}

impl Languages {
    /// Builds stemmers and folded stopword sets for every language that has either.
    pub(crate) fn new() -> Languages {
        let mut profiles = HashMap::new();
        let codes = STEMMED_LANGUAGES.iter().copied().chain(
            stop_words::available_languages()
                .iter()
                .copied()
                .filter(|c| c.len() == 2),
        );
        for code in codes {
            if profiles.contains_key(code) {
                continue;
            }
            let stemmer = stemmer_for(code);
            let script = stemmer.is_some().then(|| stemmed_language_script(code));
            let mut stopwords: HashSet<String> = stop_words::lookup(code)
                .unwrap_or_default()
                .iter()
                .map(|w| fold::fold_word(w))
                .collect();
            if code == "uk" {
                stopwords.extend(UKRAINIAN_STOPWORDS_ADDED.iter().map(|w| fold::fold_word(w)));
            }
            profiles.insert(
                code,
                LanguageProfile {
                    script,
                    stemmer,
                    stopwords,
                },
            );
        }
        let neutral_cyrillic_stopwords = ["ru", "uk"]
            .iter()
            .flat_map(|code| profiles[code].stopwords.iter().cloned())
            .collect();
        Languages {
            profiles,
            neutral_cyrillic_stopwords,
        }
    }

    /// Returns the profile of a language code (`nb` and `nn` share `no`'s).
    pub(crate) fn get(&self, code: &str) -> Option<&LanguageProfile> {
        let code = if matches!(code, "nb" | "nn") {
            "no"
        } else {
            code
        };
        self.profiles.get(code)
    }

    /// Returns the profile serving a script when the language is unknown.
    pub(crate) fn script_default(&self, script: Script) -> Option<&LanguageProfile> {
        script_default_language(script).and_then(|code| self.get(code))
    }

    /// Returns true when `folded` is a stopword of a word of unknown language in `script`.
    pub(crate) fn is_neutral_stopword(&self, folded: &str, script: Script) -> bool {
        match script {
            Script::Cyrillic => self.neutral_cyrillic_stopwords.contains(folded),
            Script::Han => self.get("zh").is_some_and(|p| p.is_stopword(folded)),
            _ => self
                .script_default(script)
                .is_some_and(|p| p.is_stopword(folded)),
        }
    }
}

fn stemmer_for(code: &str) -> Option<LanguageStemmer> {
    let algorithm = match code {
        "ar" => Algorithm::Arabic,
        "da" => Algorithm::Danish,
        "de" => Algorithm::German,
        "el" => Algorithm::Greek,
        "en" => Algorithm::English,
        "es" => Algorithm::Spanish,
        "fi" => Algorithm::Finnish,
        "fr" => Algorithm::French,
        "hu" => Algorithm::Hungarian,
        "it" => Algorithm::Italian,
        "nl" => Algorithm::Dutch,
        "no" => Algorithm::Norwegian,
        "pt" => Algorithm::Portuguese,
        "ro" => Algorithm::Romanian,
        "ru" => Algorithm::Russian,
        "sv" => Algorithm::Swedish,
        "ta" => Algorithm::Tamil,
        "tr" => Algorithm::Turkish,
        "uk" => return Some(LanguageStemmer::Ukrainian),
        _ => return None,
    };
    Some(LanguageStemmer::Snowball(Stemmer::create(algorithm)))
}

/// Letter counts that tell Cyrillic languages apart, gathered while scanning.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct CyrillicMarkers {
    /// `і ї є ґ`: Ukrainian (and `і` Belarusian), never Russian.
    pub(crate) ukrainian: usize,
    /// `ы э ё`: Russian and Belarusian, never Ukrainian, Bulgarian or Serbian.
    pub(crate) russian: usize,
    /// `ў`: Belarusian only.
    pub(crate) belarusian: usize,
    /// `ъ`: frequent in Bulgarian, rare in Russian, absent from Ukrainian.
    pub(crate) hard_sign: usize,
    /// `ђ ј љ њ ћ џ ѓ ѕ ќ`: Serbian and Macedonian.
    pub(crate) south_slavic: usize,
}

impl CyrillicMarkers {
    /// Counts the markers of one word.
    pub(crate) fn add(&mut self, word: &str) {
        for c in word.chars() {
            match c {
                'і' | 'ї' | 'є' | 'ґ' | 'І' | 'Ї' | 'Є' | 'Ґ' => self.ukrainian += 1,
                'ы' | 'э' | 'ё' | 'Ы' | 'Э' | 'Ё' => self.russian += 1,
                'ў' | 'Ў' => self.belarusian += 1,
                'ъ' | 'Ъ' => self.hard_sign += 1,
                'ђ' | 'ј' | 'љ' | 'њ' | 'ћ' | 'џ' | 'ѓ' | 'ѕ' | 'ќ' | 'Ђ' | 'Ј' | 'Љ' | 'Њ'
                | 'Ћ' | 'Џ' | 'Ѓ' | 'Ѕ' | 'Ќ' => self.south_slavic += 1,
                _ => {}
            }
        }
    }
}

/// Returns the identified language corrected with letters only some Cyrillic languages
/// use.
///
/// On posts in the IRA data, whatlang's trigrams take about 6% of Russian headlines for
/// Bulgarian (often with full confidence) and some for Ukrainian, and short Ukrainian
/// posts for Russian or Bulgarian. Letters settle most cases: Ukrainian has `і ї є ґ` and
/// never `ы э ё ъ`; Russian has `ы э ё` and no Ukrainian letter; `ў` means Belarusian. A
/// post identified as Ukrainian, Bulgarian, Serbian, Macedonian or Belarusian without
/// any letter of that language (`і`, `ъ`, `ђ ј љ њ ћ џ ѓ ѕ ќ`) is taken for Russian:
/// at the length identification needs, text in those languages nearly always shows one,
/// and Russian, the language it is confused with, has no letter it must show. This
/// favours Russian for short Bulgarian posts without `ъ`, which have no stemmer anyway.
pub(crate) fn correct_cyrillic(code: &'static str, markers: CyrillicMarkers) -> &'static str {
    let cyrillic = matches!(code, "ru" | "uk" | "bg" | "mk" | "sr" | "be");
    if !cyrillic || markers.belarusian > 0 {
        return code;
    }
    let CyrillicMarkers {
        ukrainian,
        russian,
        hard_sign,
        south_slavic,
        ..
    } = markers;
    if ukrainian > 0 && russian == 0 && hard_sign == 0 {
        return "uk";
    }
    if russian > 0 && ukrainian == 0 {
        return "ru";
    }
    let shows_no_letter_of_its_own = match code {
        "uk" | "be" => ukrainian == 0,
        "bg" => hard_sign == 0,
        "mk" | "sr" => south_slavic == 0,
        _ => false,
    };
    if shows_no_letter_of_its_own {
        "ru"
    } else {
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_normalized_to_iso_639_1() {
        assert_eq!(normalize_lang_code("en-US").as_deref(), Some("en"));
        assert_eq!(normalize_lang_code(" FR ").as_deref(), Some("fr"));
        assert_eq!(normalize_lang_code("zh_Hant").as_deref(), Some("zh"));
        assert_eq!(normalize_lang_code("rus").as_deref(), Some("ru"));
        assert_eq!(normalize_lang_code("ukr").as_deref(), Some("uk"));
        assert_eq!(normalize_lang_code("iw").as_deref(), Some("he"));
        assert_eq!(normalize_lang_code("und"), None);
        assert_eq!(normalize_lang_code(""), None);
    }

    #[test]
    fn every_whatlang_language_has_an_iso_code() {
        for lang in Lang::all() {
            assert_eq!(iso_code(*lang).len(), 2, "{lang:?}");
            assert_eq!(whatlang_lang(iso_code(*lang)), Some(*lang));
        }
    }

    #[test]
    fn stopwords_come_from_the_nltk_lists_where_they_exist() {
        let languages = Languages::new();
        let ru = languages.get("ru").unwrap();
        assert!(ru.is_stopword("что"));
        // The ISO Russian list would drop these content words.
        assert!(!ru.is_stopword("война"));
        assert!(!ru.is_stopword("россия"));
        let uk = languages.get("uk").unwrap();
        assert!(uk.is_stopword("що") && uk.is_stopword("і") && uk.is_stopword("на"));
        assert!(!uk.is_stopword("війна"));
        let fr = languages.get("fr").unwrap();
        // Folded like tokens: "été" is listed as a stopword and matched as "ete".
        assert!(fr.is_stopword("ete"));
        assert!(languages.is_neutral_stopword("що", Script::Cyrillic));
        assert!(languages.is_neutral_stopword("что", Script::Cyrillic));
        assert!(languages.is_neutral_stopword("the", Script::Latin));
        assert!(languages.get("ar").unwrap().is_stopword("في"));
    }

    #[test]
    fn every_stemmed_language_has_a_stemmer_and_a_script() {
        let languages = Languages::new();
        for code in STEMMED_LANGUAGES {
            let profile = languages.get(code).unwrap();
            assert!(profile.has_stemmer(), "{code}");
            assert!(profile.script.is_some(), "{code}");
        }
        assert!(languages.get("nb").unwrap().has_stemmer());
        assert!(!languages.get("pl").unwrap().has_stemmer());
    }

    #[test]
    fn cyrillic_letters_correct_the_identified_language() {
        let mut uk = CyrillicMarkers::default();
        uk.add("Слава Україні");
        assert_eq!(correct_cyrillic("ru", uk), "uk");
        assert_eq!(correct_cyrillic("bg", uk), "uk");
        let mut ru = CyrillicMarkers::default();
        ru.add("Вы были правы");
        assert_eq!(correct_cyrillic("uk", ru), "ru");
        // Real IRA headline whatlang takes for Bulgarian.
        let mut headline = CyrillicMarkers::default();
        headline.add("Депутат Екатеринбурга признал вину в организации убийства пенсионерки");
        assert_eq!(correct_cyrillic("bg", headline), "ru");
        assert_eq!(correct_cyrillic("uk", headline), "ru");
        let mut bulgarian = CyrillicMarkers::default();
        bulgarian.add("Министрите се събраха във вторник");
        assert_eq!(correct_cyrillic("bg", bulgarian), "bg");
        let mut serbian = CyrillicMarkers::default();
        serbian.add("Влада Србије је донела одлуку");
        assert_eq!(correct_cyrillic("sr", serbian), "sr");
        assert_eq!(correct_cyrillic("en", uk), "en");
    }
}
