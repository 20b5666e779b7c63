//! The search index, built as objects are first stored: shared objects are indexed once, and every
//! query joins through a snapshot, so an index row is never seen outside the versions that have it.
//!
//! A search item's id is its place in the ranking (see [`item_id`]), so that the full-text index,
//! which lists matches in id order, lists them best first and a page of hits stops after its first
//! few matches instead of ranking every one.

use super::words::index_words;
use crate::error::Result;
use crate::metadata::{DataEntity, Enumeration, PublicEntity};
use crate::ports::{Store, Value};
use crate::sql::json_integers;
use crate::{params, row};

/// What can be searched for.
pub const KINDS: [&str; 5] = ["data-entity", "public-entity", "enumeration", "action", "property"];

/// The low bits of an item id: a number that makes it unique within its bucket, counted per
/// bucket. Few bits keep the full-text index small: it stores the gaps between the ids of the
/// items that have a token, and a gap across buckets is at least this many bits long.
pub const SEQUENCE_BITS: u32 = 24;
/// Where the kind's rank starts in an item id.
pub const KIND_SHIFT: u32 = SEQUENCE_BITS + 24;

/// The order of kinds within a ranking tier: entities, then enumerations, actions and properties.
pub fn kind_rank(kind: &str) -> i64 {
    match kind {
        "public-entity" => 0,
        "data-entity" => 1,
        "enumeration" => 2,
        "action" => 3,
        _ => 4,
    }
}

/// An item's bucket: its kind's rank (3 bits), its name's length in characters (8 bits, capped),
/// and the name's first two bytes folded as `COLLATE NOCASE` folds them (16 bits). Buckets compare
/// as the ranking within a tier does (kind, shorter names first, then the name without case), so
/// an item in a lower bucket always ranks before one in a higher bucket; items of one bucket are
/// ordered by the query itself.
pub fn bucket(kind: &str, name: &str) -> i64 {
    let length = name.chars().count().min(255) as i64;
    let byte = |i: usize| name.as_bytes().get(i).map_or(0, |b| b.to_ascii_lowercase()) as i64;
    (kind_rank(kind) << 24) | (length << 16) | (byte(0) << 8) | byte(1)
}

/// The id of the `sequence`-th item stored in `bucket` (`sequence` below `1 << SEQUENCE_BITS`).
pub fn item_id(bucket: i64, sequence: i64) -> i64 {
    (bucket << SEQUENCE_BITS) | sequence
}

/// The first id after every id of `id`'s bucket.
pub fn bucket_end(id: i64) -> i64 {
    ((id >> SEQUENCE_BITS) + 1) << SEQUENCE_BITS
}

/// One item to index. `alias` is another name the item is known by (a public entity's entity set).
#[derive(Clone)]
struct Item<'a> {
    object_id: i64,
    kind: &'static str,
    position: usize,
    name: &'a str,
    alias: Option<&'a str>,
    owner: Option<&'a str>,
    label_id: Option<&'a str>,
}

impl Item<'_> {
    fn row(&self, id: i64) -> Vec<Value> {
        let mut words = index_words(self.name);
        if let Some(alias) = self.alias {
            words.push(' ');
            words.push_str(&index_words(alias));
        }
        let literal = self.label_id.filter(|l| !crate::metadata::is_label_reference(l));
        row![id, self.object_id, self.kind, self.position, self.name, self.alias, words, self.owner, self.label_id, literal]
    }
}

const INSERT: &str = "INSERT INTO search_items (id, object_id, kind, position, name, alias, words, owner, label_id, literal_label)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// Stores `items` and adds them to the full-text index. The index is written by one statement for
/// all of them rather than by a trigger per row: FTS5 writes its pending terms to disk at every
/// statement savepoint, which row-by-row inserts with a trigger open once per row.
fn insert<'a, I>(store: &dyn Store, items: I) -> Result<()>
where
    I: Iterator<Item = Item<'a>> + Clone,
{
    // The next number in each bucket the items fall in, from the highest id stored there.
    let mut buckets: Vec<i64> = items.clone().map(|i| bucket(i.kind, i.name)).collect();
    if buckets.is_empty() {
        return Ok(());
    }
    buckets.sort_unstable();
    buckets.dedup();
    let mut next: std::collections::HashMap<i64, i64> = crate::sql::query_map(
        store,
        &format!(
            "SELECT value, coalesce(((SELECT max(id) FROM search_items WHERE id >= value << {SEQUENCE_BITS} AND id < (value + 1) << {SEQUENCE_BITS})
                & {mask}) + 1, 0) FROM json_each(?1)",
            mask = (1i64 << SEQUENCE_BITS) - 1
        ),
        &[json_integers(&buckets)],
        |r| Ok((r.int(0)?, r.int(1)?)),
    )?
    .into_iter()
    .collect();
    let mut numbered = Vec::new();
    for item in items {
        let bucket = bucket(item.kind, item.name);
        let sequence = next.entry(bucket).or_insert(0);
        if *sequence >= 1 << SEQUENCE_BITS {
            return Err(crate::Error::internal(format!("the search index holds too many items like {:?}", item.name)));
        }
        numbered.push((item_id(bucket, *sequence), item));
        *sequence += 1;
    }
    // Inserted in id order: the ids of one batch fall into thousands of buckets across the table,
    // and in order each insert lands next to the one before instead of on a page of its own.
    numbered.sort_unstable_by_key(|(id, _)| *id);
    let ids: Vec<i64> = numbered.iter().map(|(id, _)| *id).collect();
    let mut rows = crate::sql::Batch::new(store, INSERT);
    for (id, item) in &numbered {
        rows.push(item.row(*id))?;
    }
    rows.finish()?;
    crate::sql::exec(
        store,
        "INSERT INTO search_fts (rowid, name, alias, words, literal_label)
         SELECT id, name, alias, words, literal_label FROM search_items WHERE id IN (SELECT value FROM json_each(?1))",
        &[json_integers(&ids)],
    )?;
    Ok(())
}

/// The first id rows inserted from now on in this transaction get in `table` (an `INTEGER PRIMARY
/// KEY`: a new row's id is above every id in use).
fn next_id(store: &dyn Store, table: &str) -> Result<i64> {
    let next = crate::sql::query_opt(store, &format!("SELECT coalesce(max(id), 0) + 1 FROM {table}"), &[], |r| r.int(0))?;
    Ok(next.unwrap_or(1))
}

/// Inserts label rows with `insert` (each row's new label, if any, gets a new id) and adds the
/// new labels' texts to the full-text index in one statement (see [`insert`]).
pub fn insert_labels(store: &dyn Store, insert: &str, rows: impl IntoIterator<Item = Vec<Value>>) -> Result<()> {
    let first = next_id(store, "labels")?;
    crate::sql::execute_all(store, insert, rows)?;
    crate::sql::exec(store, "INSERT INTO label_fts (rowid, text) SELECT id, text FROM labels WHERE id >= ?1", &params![first])?;
    Ok(())
}

fn named<'a>(object_id: i64, kind: &'static str, name: &'a str, alias: Option<&'a str>, label_id: Option<&'a str>) -> Item<'a> {
    Item { object_id, kind, position: 0, name, alias, owner: None, label_id }
}

pub fn data_entities(store: &dyn Store, objects: &[(i64, &DataEntity)]) -> Result<()> {
    insert(store, objects.iter().map(|(id, e)| named(*id, "data-entity", &e.name, None, e.label_id.as_deref())))
}

pub fn public_entities(store: &dyn Store, objects: &[(i64, &PublicEntity)]) -> Result<()> {
    insert(
        store,
        objects.iter().flat_map(|(id, e)| {
            let id = *id;
            let entity = named(id, "public-entity", &e.name, e.entity_set_name.as_deref(), e.label_id.as_deref());
            let properties = e.properties.iter().enumerate().map(move |(i, p)| Item {
                object_id: id,
                kind: "property",
                position: i,
                name: &p.name,
                alias: None,
                owner: Some(&e.name),
                label_id: p.label_id.as_deref(),
            });
            let actions = e.actions.iter().enumerate().map(move |(i, a)| Item {
                object_id: id,
                kind: "action",
                position: i,
                name: &a.name,
                alias: None,
                owner: Some(&e.name),
                label_id: None,
            });
            std::iter::once(entity).chain(properties).chain(actions)
        }),
    )
}

pub fn enumerations(store: &dyn Store, objects: &[(i64, &Enumeration)]) -> Result<()> {
    insert(store, objects.iter().map(|(id, e)| named(*id, "enumeration", &e.name, None, e.label_id.as_deref())))
}

/// Indexes every stored object from its stored rows: schema 6 gave items ids that rank them, and
/// rebuilt the index from the objects already stored.
pub fn rebuild(store: &dyn Store) -> Result<()> {
    use crate::sql::query_map;
    struct Owned {
        object_id: i64,
        kind: &'static str,
        position: usize,
        name: String,
        alias: Option<String>,
        owner: Option<String>,
        label_id: Option<String>,
    }
    let mut owned: Vec<Owned> = Vec::new();
    let mut read = |sql: &str, kind: &'static str| -> Result<()> {
        owned.extend(query_map(store, sql, &[], |r| {
            Ok(Owned {
                object_id: r.int(0)?,
                kind,
                position: r.int(1)? as usize,
                name: r.text(2)?,
                alias: r.opt_text(3)?,
                owner: r.opt_text(4)?,
                label_id: r.opt_text(5)?,
            })
        })?);
        Ok(())
    };
    read("SELECT object_id, 0, name, NULL, NULL, label_id FROM data_entities", "data-entity")?;
    read("SELECT object_id, 0, name, entity_set_name, NULL, label_id FROM public_entities", "public-entity")?;
    read("SELECT object_id, 0, name, NULL, NULL, label_id FROM enumerations", "enumeration")?;
    read(
        "SELECT t.object_id, t.position, t.name, NULL, p.name, t.label_id FROM entity_properties t JOIN public_entities p ON p.object_id = t.object_id",
        "property",
    )?;
    read(
        "SELECT t.object_id, t.position, t.name, NULL, p.name, NULL FROM entity_actions t JOIN public_entities p ON p.object_id = t.object_id",
        "action",
    )?;
    insert(
        store,
        owned.iter().map(|o| Item {
            object_id: o.object_id,
            kind: o.kind,
            position: o.position,
            name: &o.name,
            alias: o.alias.as_deref(),
            owner: o.owner.as_deref(),
            label_id: o.label_id.as_deref(),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_ids_order_as_the_ranking_within_a_tier() {
        let id = |kind, name, seq| item_id(bucket(kind, name), seq);
        // Kind first, whatever the name.
        assert!(id("public-entity", "Zzzzzzzzzzzz", 9) < id("data-entity", "A", 1));
        assert!(id("action", "Zzzzzzzzzzzzzz", 9) < id("property", "A", 1));
        // Then shorter names.
        assert!(id("property", "Zz", 9) < id("property", "Abc", 1));
        // Then the name without case, as far as the first two bytes tell.
        assert!(id("property", "abc", 9) < id("property", "Bbc", 1));
        assert!(id("property", "Abc", 9) < id("property", "aCc", 1));
        assert_eq!(bucket("property", "ABx"), bucket("property", "aby"));
        // The sequence tells apart items of one bucket, and never reaches the next bucket.
        let first = id("property", "CustGroup", 1);
        assert!(id("property", "CustGroup", 2) > first);
        assert!(id("property", "custgroup", (1 << SEQUENCE_BITS) - 1) < bucket_end(first));
        assert!(id("property", "custgroup", (1 << SEQUENCE_BITS) - 1) < id("property", "Cvzzzzzzz", 0));
        assert_eq!(bucket_end(first), id("property", "CustGroup", 0) + (1 << SEQUENCE_BITS));
        // Every id is positive, the highest bucket included.
        let long = "\u{ff}".repeat(300);
        assert!(id("property", &long, (1 << SEQUENCE_BITS) - 1) > 0);
        assert!(bucket_end(id("property", &long, 0)) > 0);
    }
}
