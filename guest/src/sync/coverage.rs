//! What a snapshot covers: the entity kinds (all three together) and label languages.

use std::collections::BTreeSet;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    pub entities: bool,
    pub languages: BTreeSet<String>,
}

impl Coverage {
    pub fn covers(&self, wanted: &Coverage) -> bool {
        (self.entities || !wanted.entities) && wanted.languages.is_subset(&self.languages)
    }

    /// Languages as stored: sorted, comma-separated.
    pub fn languages_text(&self) -> String {
        self.languages.iter().cloned().collect::<Vec<_>>().join(",")
    }

    pub fn parse_languages(text: &str) -> BTreeSet<String> {
        text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
    }

    pub fn describe(&self) -> String {
        let langs = if self.languages.is_empty() { "no labels".to_owned() } else { format!("labels {}", self.languages_text()) };
        if self.entities { format!("entities and {langs}") } else { langs }
    }
}

/// Checks and normalises a language code (`en-US`, `de`, `pt-BR`).
pub fn normalize_language(code: &str) -> Result<String, String> {
    let code = code.trim();
    let valid = !code.is_empty()
        && code.len() <= 35
        && code.split('-').all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()));
    if valid { Ok(code.to_owned()) } else { Err(format!("{code:?} is not a language code (like en-US or de)")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cov(entities: bool, langs: &[&str]) -> Coverage {
        Coverage { entities, languages: langs.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn covering() {
        assert!(cov(true, &["de", "en-US"]).covers(&cov(true, &["en-US"])));
        assert!(!cov(true, &["en-US"]).covers(&cov(true, &["de"])));
        assert!(!cov(false, &["en-US"]).covers(&cov(true, &["en-US"])));
        assert!(cov(true, &[]).covers(&cov(false, &[])));
        assert_eq!(cov(true, &["en-US", "de"]).languages_text(), "de,en-US");
        assert_eq!(Coverage::parse_languages("de,en-US"), cov(false, &["de", "en-US"]).languages);
    }

    #[test]
    fn language_codes() {
        assert_eq!(normalize_language(" en-US ").unwrap(), "en-US");
        assert!(normalize_language("en_US").is_err());
        assert!(normalize_language("").is_err());
        assert!(normalize_language("de--x").is_err());
    }
}
