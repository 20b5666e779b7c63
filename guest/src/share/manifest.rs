//! A version's manifest: what the version is (its modules), what the published snapshot covers,
//! and the hash of every object and label text it consists of, each with the pack that holds it.

use super::{is_hash, pack};
use crate::metadata::Kind;
use crate::modules::Module;
use crate::wit::types::Coverage;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

const FORMAT: &str = "d365meta-manifest";
const FORMAT_VERSION: u32 = 1;

/// One object of the snapshot, in wire order within its kind: kind, name, content hash, and the
/// index of its pack in `packs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef(pub String, pub String, pub String, pub u32);

impl ObjectRef {
    pub fn kind(&self) -> &str {
        &self.0
    }
    pub fn name(&self) -> &str {
        &self.1
    }
    pub fn hash(&self) -> &str {
        &self.2
    }
    pub fn pack(&self) -> usize {
        self.3 as usize
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackRef {
    pub name: String,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub modules_hash: String,
    pub modules: Vec<Module>,
    pub application_version: Option<String>,
    pub platform_version: Option<String>,
    pub coverage: Coverage,
    pub published_ms: i64,
    pub packs: Vec<PackRef>,
    /// Data entities, public entities, then enumerations, each kind in wire order.
    pub objects: Vec<ObjectRef>,
    /// Per language, the hash of each label text and the index of its pack.
    pub labels: BTreeMap<String, Vec<(String, u32)>>,
}

impl Manifest {
    pub fn new(
        modules_hash: &str,
        modules: Vec<Module>,
        application_version: Option<String>,
        platform_version: Option<String>,
        coverage: Coverage,
        published_ms: i64,
    ) -> Manifest {
        Manifest {
            format: FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            modules_hash: modules_hash.to_owned(),
            modules,
            application_version,
            platform_version,
            coverage,
            published_ms,
            packs: vec![],
            objects: vec![],
            labels: BTreeMap::new(),
        }
    }

    /// The manifest as stored.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising these plain types cannot fail.
        super::deflate(&serde_json::to_vec(self).unwrap_or_default())
    }

    /// Reads the manifest `name` of version `modules_hash` and checks that it is whole: its
    /// format, its version, every hash and every pack it names. Any fault is named.
    pub fn read(name: &str, stored: &[u8], modules_hash: Option<&str>) -> Result<Manifest, String> {
        let text = super::inflate(&format!("manifest {name}"), stored)?;
        let m: Manifest = serde_json::from_slice(&text).map_err(|e| format!("manifest {name} is damaged: {e}"))?;
        let fault = |what: String| Err(format!("manifest {name} is damaged: {what}"));
        if m.format != FORMAT || m.format_version != FORMAT_VERSION {
            return fault(format!("it is a {} of version {}, not a {FORMAT} of version {FORMAT_VERSION}", m.format, m.format_version));
        }
        if let Some(expected) = modules_hash
            && m.modules_hash != expected
        {
            return fault(format!("it describes version {}, not {expected}", m.modules_hash));
        }
        if let Some(p) = m.packs.iter().find(|p| pack::hash_of(&p.name).is_none()) {
            return fault(format!("{} is not a pack's name", p.name));
        }
        let in_range = |pack: usize| pack < m.packs.len();
        let mut names: BTreeSet<(&str, &str)> = BTreeSet::new();
        for o in &m.objects {
            if Kind::parse(o.kind()).is_none() || !is_hash(o.hash()) || !in_range(o.pack()) || !names.insert((o.kind(), o.name())) {
                return fault(format!("its entry for {} {} is not valid", o.kind(), o.name()));
            }
        }
        for (language, labels) in &m.labels {
            if !m.coverage.languages.contains(language) {
                return fault(format!("it holds labels of {language}, which it does not cover"));
            }
            if let Some((hash, _)) = labels.iter().find(|(hash, pack)| !is_hash(hash) || !in_range(*pack as usize)) {
                return fault(format!("its entry for the {language} label {hash} is not valid"));
            }
        }
        Ok(m)
    }

    /// The objects of one kind, in wire order.
    pub fn objects_of(&self, kind: Kind) -> impl Iterator<Item = &ObjectRef> {
        self.objects.iter().filter(move |o| o.kind() == kind.as_str())
    }

    /// Every item hash the manifest names, with its pack's name.
    pub fn packs_of_items(&self) -> impl Iterator<Item = (&str, &str)> {
        let packs = &self.packs;
        self.objects
            .iter()
            .map(move |o| (o.hash(), packs[o.pack()].name.as_str()))
            .chain(self.labels.values().flatten().map(move |(hash, pack)| (hash.as_str(), packs[*pack as usize].name.as_str())))
    }
}
