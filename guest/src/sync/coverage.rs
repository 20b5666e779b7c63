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

    pub fn to_wit(&self) -> crate::wit::types::Coverage {
        crate::wit::types::Coverage { entities: self.entities, languages: self.languages.iter().cloned().collect() }
    }

    pub fn describe(&self) -> String {
        let langs = if self.languages.is_empty() { "no labels".to_owned() } else { format!("labels {}", self.languages_text()) };
        if self.entities { format!("entities and {langs}") } else { langs }
    }
}

/// Checks a language code (`en-US`, `de`, `pt-BR`, `zh-Hans`) and puts it in the case BCP 47
/// recommends, so that `DE-de` and `de-DE` are one language: the language subtag lower-case, a
/// four-letter script title-case, a two-letter region upper-case, everything else (variants, and
/// all that follows a singleton such as `x-`) lower-case.
pub fn normalize_language(code: &str) -> Result<String, String> {
    let code = code.trim();
    let valid = !code.is_empty()
        && code.len() <= 35
        && code.split('-').all(|part| !part.is_empty() && part.len() <= 8 && part.chars().all(|c| c.is_ascii_alphanumeric()))
        && code.split('-').next().is_some_and(|first| first.chars().all(|c| c.is_ascii_alphabetic()));
    if !valid {
        let shown: String = code.chars().take(40).collect();
        return Err(format!("{shown:?} is not a language code (like en-US or de)"));
    }
    let mut out = Vec::new();
    let mut in_extension = false;
    for (i, part) in code.split('-').enumerate() {
        let lower = part.to_ascii_lowercase();
        let alphabetic = part.chars().all(|c| c.is_ascii_alphabetic());
        out.push(if i == 0 || in_extension {
            lower
        } else if part.len() == 1 {
            in_extension = true;
            lower
        } else if part.len() == 2 && alphabetic {
            part.to_ascii_uppercase()
        } else if part.len() == 4 && alphabetic {
            let mut title = lower;
            title[..1].make_ascii_uppercase();
            title
        } else {
            lower
        });
    }
    Ok(out.join("-"))
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
        for (input, want) in [
            ("DE-de", "de-DE"),
            ("EN-us", "en-US"),
            ("de", "de"),
            ("FR", "fr"),
            ("zh-hans", "zh-Hans"),
            ("ZH-HANT-tw", "zh-Hant-TW"),
            ("es-419", "es-419"),
            ("en-x-Private-US", "en-x-private-us"),
        ] {
            assert_eq!(normalize_language(input).unwrap(), want, "{input}");
        }
        assert!(normalize_language("42").is_err());
        assert!(normalize_language("en_US").is_err());
        assert!(normalize_language("").is_err());
        assert!(normalize_language("de--x").is_err());
    }
}
