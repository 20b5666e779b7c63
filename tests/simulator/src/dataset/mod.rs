//! Simulated F&O environments' metadata: deterministic datasets at three scales, built from real
//! metadata names (see `data/README.md`), and newer versions of them.

mod actions;
mod corpus;
mod enums;
mod evolve;
mod generate;
mod groups;
mod labels;
mod modules;
mod names;
mod navigation;
mod properties;
mod translate;
mod universe;

pub use evolve::Evolution;
pub use labels::Labels;
pub use modules::module_line;

use crate::model::{DataEntity, Enumeration, PublicEntity};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// How big an environment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scale {
    /// About 20 data entities: for unit tests, generated instantly.
    Tiny,
    /// About 300 data entities.
    Small,
    /// A realistic environment: 5,000 data entities, 4,000 public entities, 1,000 enumerations.
    Full,
}

impl FromStr for Scale {
    type Err = String;

    fn from_str(s: &str) -> Result<Scale, String> {
        match s {
            "tiny" => Ok(Scale::Tiny),
            "small" => Ok(Scale::Small),
            "full" => Ok(Scale::Full),
            other => Err(format!("unknown scale '{other}' (expected tiny, small or full)")),
        }
    }
}

impl fmt::Display for Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scale::Tiny => "tiny",
            Scale::Small => "small",
            Scale::Full => "full",
        })
    }
}

/// Everything an environment's metadata service can answer. Collections are sorted by name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    pub data_entities: Vec<DataEntity>,
    pub public_entities: Vec<PublicEntity>,
    pub enumerations: Vec<Enumeration>,
    pub labels: Labels,
    /// Languages that have labels, en-US first.
    pub languages: Vec<String>,
    /// `GetInstalledModules` lines.
    pub modules: Vec<String>,
    pub application_version: String,
    pub platform_version: String,
}

impl Dataset {
    /// The dataset of a scale; the same scale always gives the same dataset, byte for byte.
    pub fn generate(scale: Scale) -> Dataset {
        generate::generate(scale)
    }

    /// A newer version of this environment; `changes` public entities differ. See [`Evolution`].
    pub fn evolve(&self, seed: u64, changes: usize) -> (Dataset, Evolution) {
        evolve::evolve(self, seed, changes)
    }

    /// Every distinct label id referenced that is a reference (starts with `@`), dangling or not.
    pub fn label_ids(&self) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        let mut add = |id: &str| {
            if id.starts_with('@') && !ids.contains(id) {
                ids.insert(id.to_string());
            }
        };
        for e in &self.data_entities {
            add(&e.label_id);
        }
        for e in &self.public_entities {
            add(&e.label_id);
            for p in &e.properties {
                add(&p.label_id);
            }
        }
        for e in &self.enumerations {
            add(&e.label_id);
            for m in &e.members {
                add(&m.label_id);
            }
        }
        ids
    }

    pub fn data_entity(&self, name: &str) -> Option<&DataEntity> {
        self.data_entities.iter().find(|e| e.name == name)
    }

    pub fn public_entity(&self, name: &str) -> Option<&PublicEntity> {
        self.public_entities.iter().find(|e| e.name == name)
    }

    pub fn enumeration(&self, name: &str) -> Option<&Enumeration> {
        self.enumerations.iter().find(|e| e.name == name)
    }

    /// Number of properties over all public entities.
    pub fn property_count(&self) -> usize {
        self.public_entities.iter().map(|e| e.properties.len()).sum()
    }
}
