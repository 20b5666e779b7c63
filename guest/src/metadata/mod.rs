//! F&O metadata: the model, reading it from the wire, and its content hash.

pub mod model;
pub mod parse;
pub mod typed;

pub use model::*;

use serde::Serialize;

/// The content hash of an object: SHA-256 of its kind and its canonical JSON. Two objects with the
/// same hash are the same object, whichever version they came from.
pub fn content_hash<T: Serialize>(kind: Kind, object: &T) -> String {
    let mut bytes = kind.as_str().as_bytes().to_vec();
    bytes.push(b'\n');
    // Serialising these plain structs cannot fail.
    bytes.extend(serde_json::to_vec(object).unwrap_or_default());
    crate::modules::sha256_hex(&bytes)
}

/// Fingerprints of a public entity's parts, stored with it so that a diff of two versions of an
/// entity reads only the parts that differ: the navigation properties (with their constraints), the
/// property groups and the actions (with their parameters) each as a whole, and each property on its
/// own (properties are most of an entity's rows, and few of them change between versions). A
/// fingerprint is the first eight bytes of the SHA-256 of the part's canonical JSON.
///
/// Stored as one blob: the three parts' fingerprints, then per property, in order, one byte (1 if it
/// is part of the key, which a diff reads whole) and its fingerprint.
pub struct Fingerprints<'a> {
    pub navigation_properties: &'a [u8],
    pub property_groups: &'a [u8],
    pub actions: &'a [u8],
    properties: &'a [u8],
}

const FINGERPRINT_BYTES: usize = 8;
const PROPERTY_RECORD_BYTES: usize = 1 + FINGERPRINT_BYTES;

impl<'a> Fingerprints<'a> {
    pub fn of(entity: &PublicEntity) -> Vec<u8> {
        fn digest<T: Serialize + ?Sized>(part: &T) -> [u8; FINGERPRINT_BYTES] {
            use sha2::{Digest, Sha256};
            // Serialising these plain structs cannot fail.
            let digest = Sha256::digest(serde_json::to_vec(part).unwrap_or_default());
            let mut out = [0; FINGERPRINT_BYTES];
            out.copy_from_slice(&digest[..FINGERPRINT_BYTES]);
            out
        }
        let mut out = Vec::with_capacity(3 * FINGERPRINT_BYTES + entity.properties.len() * PROPERTY_RECORD_BYTES);
        out.extend(digest(&entity.navigation_properties));
        out.extend(digest(&entity.property_groups));
        out.extend(digest(&entity.actions));
        for p in &entity.properties {
            out.push(u8::from(p.is_key));
            out.extend(digest(p));
        }
        out
    }

    /// `None` for a blob of the wrong length: such an entity is compared whole.
    pub fn parse(blob: &'a [u8]) -> Option<Self> {
        let parts = 3 * FINGERPRINT_BYTES;
        if blob.len() < parts || !(blob.len() - parts).is_multiple_of(PROPERTY_RECORD_BYTES) {
            return None;
        }
        let (parts, properties) = blob.split_at(parts);
        let (navigation_properties, rest) = parts.split_at(FINGERPRINT_BYTES);
        let (property_groups, actions) = rest.split_at(FINGERPRINT_BYTES);
        Some(Fingerprints { navigation_properties, property_groups, actions, properties })
    }

    /// Positions of this entity's properties that `other` has no equal of (at any position), and of
    /// its keys.
    pub fn properties_unlike(&self, other: &Fingerprints<'_>) -> Vec<usize> {
        let theirs: std::collections::BTreeSet<&[u8]> = other.properties.chunks_exact(PROPERTY_RECORD_BYTES).map(|r| &r[1..]).collect();
        self.properties
            .chunks_exact(PROPERTY_RECORD_BYTES)
            .enumerate()
            .filter(|(_, record)| record[0] == 1 || !theirs.contains(&record[1..]))
            .map(|(position, _)| position)
            .collect()
    }
}

/// Label texts resolved for a read: label id to text.
pub type Texts = std::collections::BTreeMap<String, String>;

/// The label ids an object refers to, references and literal texts alike, in wire order; and
/// filling in their texts once resolved.
pub trait Labelled {
    fn label_ids<'a>(&'a self, out: &mut Vec<&'a str>);
    fn fill_labels(&mut self, texts: &Texts);
}

fn text(texts: &Texts, id: &Option<String>) -> Option<String> {
    id.as_ref().and_then(|id| texts.get(id).cloned())
}

impl Labelled for DataEntity {
    fn label_ids<'a>(&'a self, out: &mut Vec<&'a str>) {
        out.extend(self.label_id.as_deref());
    }
    fn fill_labels(&mut self, texts: &Texts) {
        self.label = text(texts, &self.label_id);
    }
}

impl Labelled for PublicEntity {
    fn label_ids<'a>(&'a self, out: &mut Vec<&'a str>) {
        out.extend(self.label_id.as_deref());
        out.extend(self.properties.iter().filter_map(|p| p.label_id.as_deref()));
    }
    fn fill_labels(&mut self, texts: &Texts) {
        self.label = text(texts, &self.label_id);
        for p in &mut self.properties {
            p.label = text(texts, &p.label_id);
        }
    }
}

impl Labelled for Enumeration {
    fn label_ids<'a>(&'a self, out: &mut Vec<&'a str>) {
        out.extend(self.label_id.as_deref());
        out.extend(self.members.iter().filter_map(|m| m.label_id.as_deref()));
    }
    fn fill_labels(&mut self, texts: &Texts) {
        self.label = text(texts, &self.label_id);
        for m in &mut self.members {
            m.label = text(texts, &m.label_id);
        }
    }
}

/// Two items whose labels are resolved together (an entity and its counterpart: one lookup).
impl<A: Labelled, B: Labelled> Labelled for (A, B) {
    fn label_ids<'a>(&'a self, out: &mut Vec<&'a str>) {
        self.0.label_ids(out);
        self.1.label_ids(out);
    }
    fn fill_labels(&mut self, texts: &Texts) {
        self.0.fill_labels(texts);
        self.1.fill_labels(texts);
    }
}

impl<T: Labelled> Labelled for Option<T> {
    fn label_ids<'a>(&'a self, out: &mut Vec<&'a str>) {
        if let Some(t) = self {
            t.label_ids(out);
        }
    }
    fn fill_labels(&mut self, texts: &Texts) {
        if let Some(t) = self {
            t.fill_labels(texts);
        }
    }
}
