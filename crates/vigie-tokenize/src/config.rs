//! The analyzer's configuration, read by the daemon from the `[analyzer]` table.

use serde::Deserialize;

use crate::languages::whatlang_lang;

/// Settings of language identification; everything else in the analyzer is fixed so that
/// the index and detection always agree on terms.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyzerConfig {
    /// Minimum number of letters (in words, not counting links, mentions and hashtags)
    /// a post needs before its language is identified. Shorter posts get the
    /// language-neutral analysis, since identification on a few words is mostly noise.
    pub min_detect_chars: usize,
    /// Minimum whatlang confidence (0 to 1) to accept an identified language; below it,
    /// the language-neutral analysis is used.
    pub min_detect_confidence: f64,
    /// ISO 639-1 codes identification may choose from, for example `["en", "ru", "uk"]`;
    /// unset means every language whatlang knows. Restricting it makes identification
    /// more accurate and faster when the stream's languages are known. Does not apply to
    /// the `lang` given by producers, which is always trusted.
    pub languages: Option<Vec<String>>,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        AnalyzerConfig {
            min_detect_chars: 20,
            min_detect_confidence: 0.5,
            languages: None,
        }
    }
}

/// An invalid analyzer setting.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    /// A code in `languages` is not one identification knows.
    #[error(
        "unknown language code {code:?} in `languages` (expected an ISO 639-1 code such as \"en\")"
    )]
    UnknownLanguage {
        /// The code as written.
        code: String,
    },
    /// `languages` is set but empty.
    #[error("`languages` is empty; leave it unset to identify every language")]
    NoLanguages,
    /// `min_detect_confidence` is outside 0 to 1.
    #[error("`min_detect_confidence` must be between 0 and 1, got {value}")]
    ConfidenceOutOfRange {
        /// The configured value.
        value: f64,
    },
}

impl AnalyzerConfig {
    /// Checks the settings; [`crate::Analyzer::new`] ignores unknown language codes, so the
    /// daemon calls this first to report typos.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.min_detect_confidence) {
            return Err(ConfigError::ConfidenceOutOfRange {
                value: self.min_detect_confidence,
            });
        }
        if let Some(languages) = &self.languages {
            if languages.is_empty() {
                return Err(ConfigError::NoLanguages);
            }
            if let Some(code) = languages.iter().find(|code| whatlang_lang(code).is_none()) {
                return Err(ConfigError::UnknownLanguage { code: code.clone() });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_the_check() {
        assert_eq!(AnalyzerConfig::default().check(), Ok(()));
    }

    #[test]
    fn bad_settings_are_reported() {
        let config = AnalyzerConfig {
            languages: Some(vec!["en".into(), "english".into()]),
            ..Default::default()
        };
        assert_eq!(
            config.check(),
            Err(ConfigError::UnknownLanguage {
                code: "english".into()
            })
        );
        let config = AnalyzerConfig {
            languages: Some(vec![]),
            ..Default::default()
        };
        assert_eq!(config.check(), Err(ConfigError::NoLanguages));
        let config = AnalyzerConfig {
            min_detect_confidence: 1.5,
            ..Default::default()
        };
        assert_eq!(
            config.check(),
            Err(ConfigError::ConfidenceOutOfRange { value: 1.5 })
        );
    }
}
