//! The real metadata the datasets start from, derived from public sources by
//! `tools/derive-simulator-data.py` and embedded in the crate (see `data/README.md`).

use serde::Deserialize;
use std::sync::OnceLock;

const ENTITIES: &str = include_str!("../../data/entities.json");
const ENUMERATIONS: &str = include_str!("../../data/enumerations.json");
const MODULES: &str = include_str!("../../data/modules.json");

/// A real data entity: its AOT name, module, public names and whatever the sources know of it.
#[derive(Debug, Deserialize)]
pub(crate) struct CorpusEntity {
    #[serde(rename = "n")]
    pub name: String,
    /// Functional area, `Finance/AccountsReceivable`; known for entities from the CDM.
    #[serde(rename = "a")]
    pub area: Option<String>,
    #[serde(rename = "m")]
    pub module: String,
    #[serde(rename = "p")]
    pub public_name: String,
    #[serde(rename = "s")]
    pub collection: String,
    #[serde(rename = "d")]
    pub display: Option<String>,
    /// 1 when the entity is company-specific (has a primary company context).
    #[serde(rename = "c", default)]
    pub company: u8,
    #[serde(rename = "f", default)]
    pub attributes: Vec<Attribute>,
    /// (navigation name, related data entity).
    #[serde(rename = "r", default)]
    pub relations: Vec<(String, String)>,
    #[serde(rename = "t")]
    pub typed: Option<Typed>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Attribute {
    Name(String),
    Displayed(String, String),
}

impl Attribute {
    pub(crate) fn name(&self) -> &str {
        match self {
            Attribute::Name(n) | Attribute::Displayed(n, _) => n,
        }
    }

    pub(crate) fn display(&self) -> Option<&str> {
        match self {
            Attribute::Name(_) => None,
            Attribute::Displayed(_, d) => Some(d),
        }
    }
}

/// The OData entity type as a live tenant's `$metadata` describes it.
#[derive(Debug, Deserialize)]
pub(crate) struct Typed {
    #[serde(rename = "k")]
    pub keys: Vec<String>,
    /// (name, OData type name, or `#<Enum>` for an enumeration type).
    #[serde(rename = "p")]
    pub properties: Vec<(String, String)>,
}

#[derive(Debug)]
pub(crate) struct Corpus {
    pub entities: Vec<CorpusEntity>,
    pub enumerations: Vec<(String, Vec<String>)>,
    pub modules: Vec<String>,
}

/// Parsed once per process: the datasets of every scale share it.
pub(crate) fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| Corpus {
        entities: serde_json::from_str(ENTITIES).expect("embedded entities.json is valid"),
        enumerations: serde_json::from_str(ENUMERATIONS).expect("embedded enumerations.json is valid"),
        modules: serde_json::from_str(MODULES).expect("embedded modules.json is valid"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_corpus_parses_and_holds_the_anchors() {
        let c = corpus();
        assert!(c.entities.len() > 3000);
        let customer = c.entities.iter().find(|e| e.name == "CustCustomerV3Entity").expect("customers");
        assert_eq!((customer.public_name.as_str(), customer.collection.as_str()), ("CustomerV3", "CustomersV3"));
        assert!(customer.typed.is_some());
        assert!(c.enumerations.iter().any(|(n, m)| n == "NoYes" && m == &["No", "Yes"]));
        assert!(c.modules.iter().any(|m| m == "ApplicationSuite"));
    }
}
