//! Packs: many items in one object of the store, so that a version is a few dozen uploads, not
//! tens of thousands.
//!
//! A pack is a header line, then one JSON line per item: `{"hash":…,"kind":…,"item":…}`, the item
//! as the content hash serialises it. Its name is the SHA-256 of its bytes, so two publishers of
//! the same items write the same pack. A reader takes from a pack only the items it lacks, found by
//! the hash each line claims, and checks each of those: it parses the item and computes its hash
//! again with the same function a sync uses for what it fetched, so an item is stored only if it is
//! exactly the one named. Items it already has are neither parsed nor hashed.

use crate::metadata::{DataEntity, Enumeration, Kind, PublicEntity, content_hash};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

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
    /// The kind a pack line names: an object kind's name, or `label`.
    pub fn kind(&self) -> &'static str {
        match self {
            Item::DataEntity(_) => Kind::DataEntity.as_str(),
            Item::PublicEntity(_) => Kind::PublicEntity.as_str(),
            Item::Enumeration(_) => Kind::Enumeration.as_str(),
            Item::Label(_) => "label",
        }
    }

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
    /// Adds `item`, whose content hash is `hash`.
    pub fn push(&mut self, hash: &str, item: &Item) {
        // Hashes and kinds are lower-case letters, digits and `-`: nothing to escape.
        self.bytes.extend_from_slice(b"{\"hash\":\"");
        self.bytes.extend_from_slice(hash.as_bytes());
        self.bytes.extend_from_slice(b"\",\"kind\":\"");
        self.bytes.extend_from_slice(item.kind().as_bytes());
        self.bytes.extend_from_slice(b"\",\"item\":");
        // Serialising these plain types cannot fail.
        let _ = match item {
            Item::DataEntity(o) => serde_json::to_writer(&mut self.bytes, o),
            Item::PublicEntity(o) => serde_json::to_writer(&mut self.bytes, o),
            Item::Enumeration(o) => serde_json::to_writer(&mut self.bytes, o),
            Item::Label(l) => serde_json::to_writer(&mut self.bytes, l),
        };
        self.bytes.extend_from_slice(b"}\n");
        self.items += 1;
    }

    pub fn is_full(&self) -> bool {
        self.bytes.len() >= TARGET_BYTES
    }

    pub fn is_empty(&self) -> bool {
        self.items == 0
    }

    /// The pack's name and bytes as stored.
    pub fn finish(self) -> (String, Vec<u8>) {
        let stored = super::deflate(&self.bytes);
        (name(&crate::modules::sha256_hex(&stored)), stored)
    }
}

/// One line of a pack, as written: the hash it claims, its kind, and the item unparsed.
#[derive(Deserialize)]
pub struct Entry<'a> {
    pub hash: &'a str,
    pub kind: &'a str,
    #[serde(borrow)]
    item: &'a RawValue,
}

impl Entry<'_> {
    /// The item, parsed, if its content hashes to the hash the line claims.
    pub fn verified(&self, pack: &str) -> Result<Item, String> {
        let text = self.item.get();
        let parsed = match Kind::parse(self.kind) {
            Some(Kind::DataEntity) => serde_json::from_str(text).map(Item::DataEntity),
            Some(Kind::PublicEntity) => serde_json::from_str(text).map(Item::PublicEntity),
            Some(Kind::Enumeration) => serde_json::from_str(text).map(Item::Enumeration),
            None if self.kind == "label" => serde_json::from_str(text).map(Item::Label),
            None => return Err(format!("pack {pack}, item {}: unknown kind {:?}", self.hash, self.kind)),
        };
        let item = parsed.map_err(|e| format!("pack {pack}, item {} is damaged: {e}", self.hash))?;
        let actual = item.hash();
        if actual != self.hash {
            return Err(format!("pack {pack}, item {} is damaged: its content hashes to {actual}", self.hash));
        }
        Ok(item)
    }
}

/// The text of the pack `name` from its bytes as stored, for [`entries`].
pub fn open(name: &str, stored: &[u8]) -> Result<Vec<u8>, String> {
    if hash_of(name).is_none() {
        return Err(format!("{name} is not a pack's name"));
    }
    super::inflate(&format!("pack {name}"), stored)
}

/// The lines of the pack `name` (its text, from [`open`]), in order; a line that is not one fails
/// with the pack and line.
pub fn entries<'a>(name: &'a str, text: &'a [u8]) -> Result<impl Iterator<Item = Result<Entry<'a>, String>> + 'a, String> {
    let body = text.strip_prefix(HEADER).ok_or_else(|| format!("pack {name} is damaged: it does not begin with the pack header"))?;
    Ok(body.split(|b| *b == b'\n').enumerate().filter(|(_, line)| !line.is_empty()).map(move |(i, line)| {
        std::str::from_utf8(line)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str::<Entry<'_>>(text).map_err(|e| e.to_string()))
            .map_err(|e| format!("pack {name} is damaged at line {}: {e}", i + 2))
    }))
}

/// Every item of the pack `name` (its bytes as stored), each checked against the hash its line claims.
pub fn read(name: &str, stored: &[u8]) -> Result<Vec<Item>, String> {
    let text = open(name, stored)?;
    entries(name, &text)?.map(|entry| entry.and_then(|e| e.verified(name))).collect()
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
        writer.push(&entity.hash(), &entity);
        writer.push(&label("Customer").hash(), &label("Customer"));
        let (name, bytes) = writer.finish();
        assert_eq!(hash_of(&name), Some(crate::modules::sha256_hex(&bytes).as_str()));
        let items = read(&name, &bytes).unwrap();
        assert_eq!(items, [entity.clone(), label("Customer")]);
        let Item::Enumeration(e) = &entity else { unreachable!() };
        assert_eq!(items[0].hash(), content_hash(Kind::Enumeration, e));
        // Any changed byte of an item's content is caught by its hash; of its frame, by the parser;
        // of the stream, by zlib.
        let text = String::from_utf8(open(&name, &bytes).unwrap()).unwrap();
        for (from, to) in [("NoYes", "NoYet"), ("Customer", "Customes"), ("\"value\":1", "\"value\":2"), ("\"kind\"", "\"kinf\"")] {
            let damaged = crate::share::deflate(text.replacen(from, to, 1).as_bytes());
            let e = read(&name, &damaged).unwrap_err();
            assert!(e.contains("damaged") && e.contains(&name), "{from}: {e}");
        }
        let mut flipped = bytes.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x20;
        assert!(read(&name, &flipped).unwrap_err().contains("damaged"));
        assert!(text.len() > bytes.len(), "stored compressed");
        assert!(read("packs/x.pack", &bytes).is_err());
    }

    #[test]
    fn label_hashes_tell_texts_apart() {
        assert_ne!(label("a").hash().as_str(), label("b").hash().as_str());
        assert_eq!(label("a").hash().len(), 64);
    }
}
