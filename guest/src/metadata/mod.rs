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

/// Every label id an object refers to, references and literal texts alike, in wire order.
pub trait LabelIds {
    fn label_ids<'a>(&'a self, out: &mut Vec<&'a str>);
}

impl LabelIds for DataEntity {
    fn label_ids<'a>(&'a self, out: &mut Vec<&'a str>) {
        out.extend(self.label_id.as_deref());
    }
}

impl LabelIds for PublicEntity {
    fn label_ids<'a>(&'a self, out: &mut Vec<&'a str>) {
        out.extend(self.label_id.as_deref());
        out.extend(self.properties.iter().filter_map(|p| p.label_id.as_deref()));
    }
}

impl LabelIds for Enumeration {
    fn label_ids<'a>(&'a self, out: &mut Vec<&'a str>) {
        out.extend(self.label_id.as_deref());
        out.extend(self.members.iter().filter_map(|m| m.label_id.as_deref()));
    }
}
