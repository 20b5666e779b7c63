//! Label ids and label texts.
//!
//! As in F&O, most label ids are shared: a property name has one label wherever it appears, and
//! enumeration members with the same name share theirs, so distinct ids are far fewer than
//! references. A few references are literal text (no `@`), a few ids have no text in any language
//! (dangling), and languages other than en-US cover about nine ids in ten.

use super::translate::translate;
use crate::rng::{hash, unit};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub(crate) const EN_US: &str = "en-US";
const LITERAL_SHARE: f64 = 0.02;
const DANGLING_SHARE: f64 = 0.005;
const TRANSLATED_SHARE: f64 = 0.9;

/// Label texts by id and language.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Labels {
    texts: BTreeMap<String, BTreeMap<String, String>>,
}

impl Labels {
    pub fn get(&self, id: &str, language: &str) -> Option<&str> {
        self.texts.get(id)?.get(language).map(String::as_str)
    }

    pub fn insert(&mut self, id: impl Into<String>, language: impl Into<String>, text: impl Into<String>) {
        self.texts.entry(id.into()).or_default().insert(language.into(), text.into());
    }

    /// The ids that have a text in at least one language.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.texts.keys().map(String::as_str)
    }

    /// The texts of one id, by language.
    pub fn texts(&self, id: &str) -> Option<&BTreeMap<String, String>> {
        self.texts.get(id)
    }

    pub fn contains_id(&self, id: &str) -> bool {
        self.texts.contains_key(id)
    }

    /// Number of ids with a text.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// Adds texts for a new id: en-US and, as for every id, most of the other languages.
    pub(crate) fn add_with_translations(&mut self, id: &str, text: &str, languages: &[String]) {
        for language in languages {
            if language == EN_US {
                self.insert(id, language.as_str(), text);
            } else if unit(&["translated", id, language]) < TRANSLATED_SHARE {
                self.insert(id, language.as_str(), translate(text, language));
            }
        }
    }
}

/// Label files of F&O models, for ids of the `@<File>:<Name>` form that are not tied to an area.
const LABEL_FILES: &[&str] = &[
    "AccountsPayable",
    "AccountsReceivable",
    "ApplicationFoundation",
    "ApplicationPlatform",
    "ApplicationSuite",
    "Budgeting",
    "CashManagement",
    "CostAccounting",
    "Directory",
    "FixedAssets",
    "GeneralLedger",
    "Inventory",
    "MasterPlanning",
    "Procurement",
    "ProductInformationManagement",
    "ProjectManagementAndAccounting",
    "Retail",
    "SalesAndMarketing",
    "SourceDocumentation",
    "Tax",
    "Transportation",
    "WarehouseManagement",
];

/// Collects label ids while a dataset is generated, with the en-US text each one gets.
#[derive(Default)]
pub(crate) struct LabelBook {
    /// id → (text, whether the text is a real display name rather than one made from a name).
    texts: BTreeMap<String, (String, bool)>,
    /// Ids that are never dangling: the well-known ones every environment has.
    pinned: Vec<String>,
}

impl LabelBook {
    /// Records `id` with its text; a display name from the corpus beats a text made from a name.
    pub(crate) fn register(&mut self, id: &str, text: &str, from_display: bool) {
        match self.texts.get_mut(id) {
            Some(entry) if !entry.1 && from_display => *entry = (text.to_string(), true),
            Some(_) => {}
            None => {
                self.texts.insert(id.to_string(), (text.to_string(), from_display));
            }
        }
    }

    /// A well-known label: always the given text, never dangling, never literal.
    pub(crate) fn well_known(&mut self, id: &str, text: &str) -> String {
        self.texts.insert(id.to_string(), (text.to_string(), true));
        self.pinned.push(id.to_string());
        id.to_string()
    }

    /// The LabelId value for one reference: usually `id`, occasionally the text itself (literal).
    /// `site` names the referencing object, so the choice does not depend on generation order.
    pub(crate) fn reference(&mut self, id: &str, text: &str, from_display: bool, site: &[&str]) -> String {
        if unit(site) < LITERAL_SHARE {
            return text.to_string();
        }
        self.register(id, text, from_display);
        id.to_string()
    }

    pub(crate) fn finish(self, languages: &[String]) -> Labels {
        let mut labels = Labels::default();
        for (id, (text, _)) in &self.texts {
            let pinned = self.pinned.iter().any(|p| p == id);
            if !pinned && unit(&["dangling", id]) < DANGLING_SHARE {
                continue;
            }
            labels.add_with_translations(id, text, languages);
        }
        labels
    }
}

/// The shared label id of a name (a property or member name): the same name, the same id.
pub(crate) fn shared_id(name: &str) -> String {
    let h = hash(&["label", name]);
    match h % 100 {
        0..=67 => format!("@SYS{}", 1000 + (h >> 8) % 339_000),
        68..=79 => format!("@GLS{}", 100 + (h >> 8) % 230_000),
        _ => format!("@{}:{name}", LABEL_FILES[((h >> 8) % LABEL_FILES.len() as u64) as usize]),
    }
}

/// The label id of an entity, usually in the label file of its area.
pub(crate) fn entity_id(file: &str, collection: &str) -> String {
    let h = hash(&["entity-label", collection]);
    if h.is_multiple_of(5) { format!("@SYS{}", 1000 + (h >> 8) % 339_000) } else { format!("@{file}:{collection}") }
}

/// A label id used by one property of one entity only.
pub(crate) fn specific_id(file: &str, entity: &str, property: &str) -> String {
    format!("@{file}:{entity}_{property}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_f_and_o_forms() {
        let mut forms = [0usize; 3];
        for i in 0..1000 {
            let id = shared_id(&format!("Field{i}"));
            if id.starts_with("@SYS") {
                forms[0] += 1;
            } else if id.starts_with("@GLS") {
                forms[1] += 1;
            } else {
                assert!(id.contains(':'), "{id}");
                forms[2] += 1;
            }
        }
        assert!(forms.iter().all(|&n| n > 50), "{forms:?}");
        assert_eq!(shared_id("CustomerGroupId"), shared_id("CustomerGroupId"));
    }

    #[test]
    fn display_names_win_and_well_known_ids_never_dangle() {
        let mut book = LabelBook::default();
        book.register("@SYS1", "Customer group ID", false);
        book.register("@SYS1", "Customer group", true);
        book.register("@SYS1", "Something else", true);
        book.well_known("@SYS13342", "Company");
        let labels = book.finish(&[EN_US.to_string(), "de".to_string()]);
        assert_eq!(labels.get("@SYS1", EN_US), Some("Customer group"));
        assert_eq!(labels.get("@SYS13342", EN_US), Some("Company"));
        assert_eq!(labels.get("@SYS13342", "fr"), None);
    }
}
