//! Recognising a collection item the cache has read before, by its text as the service sent it.
//!
//! Reading an item means parsing it, writing its canonical JSON and hashing that (the content
//! hash, SHA-256): at full scale about a second of the component's time for 47 MB of
//! `PublicEntities`, most of an incremental sync, where nearly every item is one the cache holds.
//! So each item's text is hashed as it arrives, and the cache keeps, for every text it has parsed,
//! the object that text became (`object_sources`). A text seen before is that object again, without
//! parsing; a new text is parsed and stored as before, and its source recorded.
//!
//! The source hash is SipHash-1-3 (128 bits) keyed with a random key of this database (made by
//! the migration that created the table): several times faster than SHA-256 in the component, and,
//! being keyed, no service can make a text of its own match another's, which an unkeyed fast hash
//! would let it do. The key covers the parser's version too ([`PARSER`]), so a release that reads
//! items differently never takes an object read by an older one for a text.

use super::write::StoredObject;
use crate::error::{Error, Result};
use crate::metadata::typed::TextError;
use crate::metadata::{Kind, content_hash};
use crate::ports::{Store, Value};
use crate::row;
use crate::sql::{execute_all, query_map, query_opt};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::hash::Hasher;

/// Changes whenever `metadata::parse` reads an item's text differently: recorded sources of an
/// older parser are then never matched.
const PARSER: &[u8] = b"d365meta parse 1";

/// The hash of an item's text as served.
pub type Source = [u8; 16];

/// Hashes item texts with this database's key.
pub struct Sources {
    key: [u8; 16],
}

impl Sources {
    /// The database's key (see the module's comment).
    pub fn open(store: &dyn Store) -> Result<Sources> {
        let key = query_opt(store, "SELECT key FROM cache_keys WHERE name = 'object-sources'", &[], |r| r.opt_blob(0))?
            .flatten()
            .and_then(|k| <[u8; 16]>::try_from(k.as_slice()).ok())
            .ok_or_else(|| Error::internal("the database has no key for object sources (cache_keys)"))?;
        Ok(Sources { key })
    }

    pub fn hash(&self, kind: Kind, text: &str) -> Source {
        let mut hasher = siphasher::sip128::SipHasher13::new_with_key(&self.key);
        hasher.write(PARSER);
        hasher.write(kind.as_str().as_bytes());
        hasher.write(&[0]);
        hasher.write(text.as_bytes());
        u128::from(siphasher::sip128::Hasher128::finish128(&hasher)).to_le_bytes()
    }
}

/// One item of a collection as read: an object the cache holds, recognised by its text, or a new
/// text, parsed.
pub enum Fetched<T> {
    Known { object_id: i64, name: String, hash: String },
    New { object: T, hash: String, source: Source },
}

impl<T: StoredObject> Fetched<T> {
    pub fn name(&self) -> &str {
        match self {
            Fetched::Known { name, .. } => name,
            Fetched::New { object, .. } => object.name(),
        }
    }

    /// The content hash (`metadata::content_hash`).
    pub fn hash(&self) -> &str {
        match self {
            Fetched::Known { hash, .. } | Fetched::New { hash, .. } => hash,
        }
    }

    pub fn new_object(&self) -> Option<&T> {
        match self {
            Fetched::Known { .. } => None,
            Fetched::New { object, .. } => Some(object),
        }
    }
}

/// Why one item of a page could not be read: its index in the page and what is wrong with it (to
/// follow "item N"), or a failure of the store.
pub enum PageError {
    Item(usize, String),
    Store(Error),
}

/// Reads one page of items: each text recognised if the cache has read it before, else parsed
/// with `parse` and content-hashed.
pub fn read_page<T: StoredObject>(
    store: &dyn Store,
    sources: &Sources,
    items: &[&RawValue],
    parse: &impl Fn(&str) -> Result<T, TextError>,
) -> Result<Vec<Fetched<T>>, PageError> {
    let hashes: Vec<Source> = items.iter().map(|raw| sources.hash(T::KIND, raw.get())).collect();
    let known = recorded(store, &hashes).map_err(PageError::Store)?;
    items
        .iter()
        .zip(hashes)
        .enumerate()
        .map(|(index, (raw, source))| {
            if let Some((object_id, name, hash)) = known.get(&source) {
                return Ok(Fetched::Known { object_id: *object_id, name: name.clone(), hash: hash.clone() });
            }
            let object = parse(raw.get()).map_err(|e| {
                PageError::Item(
                    index,
                    match e {
                        TextError::NotJson(e) => format!(" is not valid JSON ({e})"),
                        TextError::Invalid(m) => format!(": {m}"),
                    },
                )
            })?;
            let hash = content_hash(T::KIND, &object);
            Ok(Fetched::New { object, hash, source })
        })
        .collect()
}

/// The objects recorded for `sources`: id, name and content hash by source.
fn recorded(store: &dyn Store, sources: &[Source]) -> Result<BTreeMap<Source, (i64, String, String)>> {
    let mut out = BTreeMap::new();
    for chunk in sources.chunks(500) {
        let placeholders = (1..=chunk.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(",");
        let params: Vec<Value> = chunk.iter().map(|s| Value::Blob(s.to_vec())).collect();
        let rows = query_map(
            store,
            &format!(
                "SELECT s.source, o.id, o.name, o.hash FROM object_sources s JOIN objects o ON o.id = s.object_id
                 WHERE s.source IN ({placeholders})"
            ),
            &params,
            |r| Ok((r.opt_blob(0)?, r.int(1)?, r.text(2)?, r.text(3)?)),
        )?;
        for (source, id, name, hash) in rows {
            if let Some(source) = source.and_then(|s| Source::try_from(s.as_slice()).ok()) {
                out.insert(source, (id, name, hash));
            }
        }
    }
    Ok(out)
}

/// Records which object each new text became. Call inside the transaction that stores them.
pub fn record(store: &dyn Store, new: &[(Source, i64)]) -> Result<()> {
    execute_all(
        store,
        "INSERT OR IGNORE INTO object_sources (source, object_id) VALUES (?1, ?2)",
        new.iter().map(|(source, object_id)| row![source.to_vec(), *object_id]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{DataEntity, typed};
    use crate::testing::World;

    /// How many texts are recorded.
    fn count(store: &dyn Store) -> Result<i64> {
        Ok(query_opt(store, "SELECT count(*) FROM object_sources", &[], |r| r.int(0))?.unwrap_or(0))
    }

    fn raws(texts: &[&str]) -> Vec<Box<RawValue>> {
        texts.iter().map(|t| RawValue::from_string((*t).to_owned()).unwrap()).collect()
    }

    fn read(
        w: &World,
        texts: &[&str],
        parse: &impl Fn(&str) -> Result<DataEntity, TextError>,
    ) -> Result<Vec<Fetched<DataEntity>>, PageError> {
        let raws = raws(texts);
        let page: Vec<&RawValue> = raws.iter().map(|r| &**r).collect();
        read_page(&w.store, &Sources::open(&w.store).unwrap(), &page, parse)
    }

    /// Stores what a page read anew, as a sync does, and records the sources.
    fn store(w: &World, items: &[Fetched<DataEntity>]) {
        let new: Vec<(&str, &DataEntity)> = items.iter().filter_map(|i| Some((i.hash(), i.new_object()?))).collect();
        let (ids, _) = super::super::write::store_objects(&w.store, &new).unwrap();
        let sources: Vec<(Source, i64)> = items
            .iter()
            .filter_map(|i| match i {
                Fetched::New { source, hash, .. } => Some((*source, ids[hash.as_str()])),
                Fetched::Known { .. } => None,
            })
            .collect();
        record(&w.store, &sources).unwrap();
    }

    const A: &str = r#"{"Name":"A","LabelId":"@L:A","IsReadOnly":true}"#;
    const B: &str = r#"{"Name":"B"}"#;

    #[test]
    fn a_text_read_before_is_its_object_again_without_parsing() {
        let w = World::new();
        let first = read(&w, &[A, B], &typed::data_entity).ok().unwrap();
        assert!(first.iter().all(|i| i.new_object().is_some()));
        store(&w, &first);
        assert_eq!(count(&w.store).unwrap(), 2);

        // A parser that refuses everything shows which texts are parsed: only the changed one.
        let refuse = |_: &str| -> Result<DataEntity, TextError> { Err(TextError::Invalid("parsed".to_owned())) };
        let again = read(&w, &[A, B], &refuse).ok().unwrap();
        for (item, fetched) in again.iter().zip(&first) {
            assert!(matches!(item, Fetched::Known { .. }), "{} was parsed again", item.name());
            assert_eq!((item.name(), item.hash()), (fetched.name(), fetched.hash()));
        }
        // The same content in other text is parsed (and then found stored by its content hash).
        let spaced = r#"{"Name": "B"}"#;
        assert!(matches!(read(&w, &[A, spaced], &refuse), Err(PageError::Item(1, m)) if m == ": parsed"));
        let read_anew = read(&w, &[spaced], &typed::data_entity).ok().unwrap();
        assert_eq!(read_anew[0].hash(), first[1].hash());
    }

    #[test]
    fn the_source_hash_is_keyed_per_database_and_per_kind() {
        let (one, two) = (World::new(), World::new());
        let (one, two) = (Sources::open(&one.store).unwrap(), Sources::open(&two.store).unwrap());
        assert_ne!(one.hash(Kind::DataEntity, A), two.hash(Kind::DataEntity, A));
        assert_ne!(one.hash(Kind::DataEntity, A), one.hash(Kind::Enumeration, A));
        assert_eq!(one.hash(Kind::DataEntity, A), one.hash(Kind::DataEntity, A));
    }

    #[test]
    fn an_object_collected_takes_its_sources_along() {
        let w = World::new();
        store(&w, &read(&w, &[A, B], &typed::data_entity).ok().unwrap());
        crate::sql::exec(&w.store, "DELETE FROM objects WHERE name = 'A'", &[]).unwrap();
        assert_eq!(count(&w.store).unwrap(), 1);
        let refuse = |_: &str| -> Result<DataEntity, TextError> { Err(TextError::Invalid("parsed".to_owned())) };
        assert!(matches!(read(&w, &[A], &refuse), Err(PageError::Item(0, _))), "a collected object is never answered");
    }
}
