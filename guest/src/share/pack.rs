//! Packs: many items in one object of the store, so that a version is a few dozen uploads, not
//! tens of thousands.
//!
//! A pack is a header line, then one JSON line per item. Its name is the SHA-256 of its bytes;
//! each item's hash is computed again from the item as parsed, with the same function a sync uses
//! for what it fetched, so an item is stored only if it is exactly what the manifest names.

use crate::metadata::{DataEntity, Enumeration, Kind, PublicEntity, content_hash};
use serde::{Deserialize, Serialize};

const HEADER: &[u8] = b"d365meta-pack 1\n";

/// About the size at which a publisher closes a pack: large enough that a full version is a
/// handful of requests, small enough that a failed upload or download repeats little.
pub const TARGET_BYTES: usize = 8 << 20;

/// A label text as stored: one row of `labels`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelText {
    pub label_id: String,
    pub language: String,
    /// The service has no text for the id (it answered 404).
    pub missing: bool,
    pub text: String,
}

impl LabelText {
    /// The label's content hash: SHA-256 of `label` and its canonical JSON, as objects' are.
    pub fn hash(&self) -> String {
        let mut bytes = b"label\n".to_vec();
        // Serialising this plain struct cannot fail.
        bytes.extend(serde_json::to_vec(self).unwrap_or_default());
        crate::modules::sha256_hex(&bytes)
    }
}

/// One item of a pack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "item", rename_all = "kebab-case")]
pub enum Item {
    DataEntity(DataEntity),
    PublicEntity(PublicEntity),
    Enumeration(Enumeration),
    Label(LabelText),
}

impl Item {
    /// The item's content hash, as the cache stores it.
    pub fn hash(&self) -> String {
        match self {
            Item::DataEntity(o) => content_hash(Kind::DataEntity, o),
            Item::PublicEntity(o) => content_hash(Kind::PublicEntity, o),
            Item::Enumeration(o) => content_hash(Kind::Enumeration, o),
            Item::Label(l) => l.hash(),
        }
    }
}

/// The name of the pack whose bytes hash to `hash`.
pub fn name(hash: &str) -> String {
    format!("packs/{hash}.pack")
}

/// The hash a pack's name says its bytes have; `None` for a name that is not a pack's.
pub fn hash_of(name: &str) -> Option<&str> {
    name.strip_prefix("packs/").and_then(|n| n.strip_suffix(".pack")).filter(|h| super::is_hash(h))
}

/// A pack being filled.
pub struct Writer {
    bytes: Vec<u8>,
    items: usize,
}

impl Default for Writer {
    fn default() -> Self {
        Writer { bytes: HEADER.to_vec(), items: 0 }
    }
}

impl Writer {
    pub fn push(&mut self, item: &Item) {
        // Serialising these plain types cannot fail.
        serde_json::to_writer(&mut self.bytes, item).unwrap_or_default();
        self.bytes.push(b'\n');
        self.items += 1;
    }

    pub fn is_full(&self) -> bool {
        self.bytes.len() >= TARGET_BYTES
    }

    pub fn is_empty(&self) -> bool {
        self.items == 0
    }

    /// The pack's name and bytes.
    pub fn finish(self) -> (String, Vec<u8>) {
        (name(&crate::modules::sha256_hex(&self.bytes)), self.bytes)
    }
}

/// Reads the pack `name`, after checking that its bytes are the ones its name says.
pub fn read(name: &str, bytes: &[u8]) -> Result<Vec<Item>, String> {
    let expected = hash_of(name).ok_or_else(|| format!("{name} is not a pack's name"))?;
    let actual = crate::modules::sha256_hex(bytes);
    if actual != expected {
        return Err(format!("pack {name} is damaged: its bytes hash to {actual}"));
    }
    let body = bytes.strip_prefix(HEADER).ok_or_else(|| format!("pack {name} does not begin with the pack header"))?;
    body.split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(i, line)| serde_json::from_slice(line).map_err(|e| format!("pack {name}, item {}: {e}", i + 1)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(text: &str) -> Item {
        Item::Label(LabelText { label_id: "@SYS1".into(), language: "en-US".into(), missing: false, text: text.into() })
    }

    #[test]
    fn a_pack_reads_back_as_written_and_refuses_any_changed_byte() {
        let entity = Item::Enumeration(Enumeration {
            name: "NoYes".into(),
            label_id: Some("@SYS2".into()),
            label: None,
            members: vec![crate::metadata::EnumMember {
                name: "Yes".into(),
                value: 1,
                label_id: None,
                label: None,
                configuration_enabled: true,
            }],
        });
        let mut writer = Writer::default();
        writer.push(&entity);
        writer.push(&label("Customer"));
        let (name, bytes) = writer.finish();
        let items = read(&name, &bytes).unwrap();
        assert_eq!(items, [entity.clone(), label("Customer")]);
        assert_eq!(
            items[0].hash(),
            content_hash(
                Kind::Enumeration,
                match &entity {
                    Item::Enumeration(e) => e,
                    _ => unreachable!(),
                }
            )
        );
        let mut damaged = bytes.clone();
        let at = damaged.len() - 3;
        damaged[at] ^= 1;
        assert!(read(&name, &damaged).unwrap_err().contains("damaged"));
        assert!(read("packs/x.pack", &bytes).is_err());
    }

    #[test]
    fn label_hashes_tell_texts_apart() {
        assert_ne!(label("a").hash().as_str(), label("b").hash().as_str());
        assert_eq!(label("a").hash().len(), 64);
    }
}
