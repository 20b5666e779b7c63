//! F&O metadata: the model, reading it from the wire, and its content hash.

pub mod model;
pub mod parse;

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
