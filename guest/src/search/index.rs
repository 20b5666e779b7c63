//! The search index, built as objects are first stored: shared objects are indexed once, and every
//! query joins through a snapshot, so an index row is never seen outside the versions that have it.

use super::words::index_words;
use crate::error::Result;
use crate::metadata::{DataEntity, Enumeration, PublicEntity};
use crate::ports::{Store, Value};
use crate::{params, row};

/// What can be searched for.
pub const KINDS: [&str; 5] = ["data-entity", "public-entity", "enumeration", "action", "property"];

/// One index row. `alias` is another name the item is known by (a public entity's entity set).
fn item(
    object_id: i64,
    kind: &str,
    position: usize,
    name: &str,
    alias: Option<&str>,
    owner: Option<&str>,
    label_id: Option<&str>,
) -> Vec<Value> {
    let mut words = index_words(name);
    if let Some(alias) = alias {
        words.push(' ');
        words.push_str(&index_words(alias));
    }
    let literal = label_id.filter(|l| !crate::metadata::is_label_reference(l));
    row![object_id, kind, position, name, alias, words, owner, label_id, literal]
}

const INSERT: &str = "INSERT INTO search_items (object_id, kind, position, name, alias, words, owner, label_id, literal_label)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/// The first id rows inserted from now on in this transaction get in `table` (an `INTEGER PRIMARY
/// KEY`: a new row's id is above every id in use).
fn next_id(store: &dyn Store, table: &str) -> Result<i64> {
    let next = crate::sql::query_opt(store, &format!("SELECT coalesce(max(id), 0) + 1 FROM {table}"), &[], |r| r.int(0))?;
    Ok(next.unwrap_or(1))
}

/// Adds the search items from id `first` on to the full-text index, in one statement. The index
/// is written here rather than by a trigger per row: FTS5 flushes its pending terms to disk at
/// every statement savepoint, which row-by-row inserts with a trigger open once per row.
fn index_items_from(store: &dyn Store, first: i64) -> Result<()> {
    crate::sql::exec(
        store,
        "INSERT INTO search_fts (rowid, name, alias, words, literal_label)
         SELECT id, name, alias, words, literal_label FROM search_items WHERE id >= ?1",
        &params![first],
    )?;
    Ok(())
}

/// Inserts label rows with `insert` (each row's new label, if any, gets a new id) and adds the
/// new labels' texts to the full-text index in one statement (see [`index_items_from`]).
pub fn insert_labels(store: &dyn Store, insert: &str, rows: impl IntoIterator<Item = Vec<Value>>) -> Result<()> {
    let first = next_id(store, "labels")?;
    crate::sql::execute_all(store, insert, rows)?;
    crate::sql::exec(store, "INSERT INTO label_fts (rowid, text) SELECT id, text FROM labels WHERE id >= ?1", &params![first])?;
    Ok(())
}

pub fn data_entities(store: &dyn Store, objects: &[(i64, &DataEntity)]) -> Result<()> {
    let first = next_id(store, "search_items")?;
    let rows: Vec<Vec<Value>> =
        objects.iter().map(|(id, e)| item(*id, "data-entity", 0, &e.name, None, None, e.label_id.as_deref())).collect();
    crate::sql::execute_all(store, INSERT, rows)?;
    index_items_from(store, first)
}

pub fn public_entities(store: &dyn Store, objects: &[(i64, &PublicEntity)]) -> Result<()> {
    let first = next_id(store, "search_items")?;
    let mut rows = crate::sql::Batch::new(store, INSERT);
    for (id, e) in objects {
        rows.push(item(*id, "public-entity", 0, &e.name, e.entity_set_name.as_deref(), None, e.label_id.as_deref()))?;
        for (i, p) in e.properties.iter().enumerate() {
            rows.push(item(*id, "property", i, &p.name, None, Some(&e.name), p.label_id.as_deref()))?;
        }
        for (i, a) in e.actions.iter().enumerate() {
            rows.push(item(*id, "action", i, &a.name, None, Some(&e.name), None))?;
        }
    }
    rows.finish()?;
    index_items_from(store, first)
}

pub fn enumerations(store: &dyn Store, objects: &[(i64, &Enumeration)]) -> Result<()> {
    let first = next_id(store, "search_items")?;
    let rows: Vec<Vec<Value>> =
        objects.iter().map(|(id, e)| item(*id, "enumeration", 0, &e.name, None, None, e.label_id.as_deref())).collect();
    crate::sql::execute_all(store, INSERT, rows)?;
    index_items_from(store, first)
}

/// Indexes every stored object that has no index rows yet (objects stored before the index existed).
/// It runs within migration 3, whose triggers still put each row into the full-text index (which
/// migration 5 rebuilds from the rows anyway).
pub fn backfill(store: &dyn Store) -> Result<()> {
    use crate::sql::query_map;
    let unindexed = "NOT EXISTS (SELECT 1 FROM search_items si WHERE si.object_id = t.object_id)";
    let mut rows: Vec<Vec<Value>> = Vec::new();
    let simple = |sql: &str, kind: &str, rows: &mut Vec<Vec<Value>>| -> Result<()> {
        let found = query_map(store, sql, &[], |r| {
            Ok(item(r.int(0)?, kind, 0, &r.text(1)?, r.opt_text(2)?.as_deref(), None, r.opt_text(3)?.as_deref()))
        })?;
        rows.extend(found);
        Ok(())
    };
    simple(&format!("SELECT object_id, name, NULL, label_id FROM data_entities t WHERE {unindexed}"), "data-entity", &mut rows)?;
    simple(
        &format!("SELECT object_id, name, entity_set_name, label_id FROM public_entities t WHERE {unindexed}"),
        "public-entity",
        &mut rows,
    )?;
    simple(&format!("SELECT object_id, name, NULL, label_id FROM enumerations t WHERE {unindexed}"), "enumeration", &mut rows)?;
    let members = |sql: &str, kind: &str, rows: &mut Vec<Vec<Value>>| -> Result<()> {
        let found = query_map(store, sql, &[], |r| {
            Ok(item(r.int(0)?, kind, r.int(1)? as usize, &r.text(2)?, None, Some(&r.text(3)?), r.opt_text(4)?.as_deref()))
        })?;
        rows.extend(found);
        Ok(())
    };
    members(
        &format!(
            "SELECT t.object_id, t.position, t.name, p.name, t.label_id FROM entity_properties t JOIN public_entities p ON p.object_id = t.object_id WHERE {unindexed}"
        ),
        "property",
        &mut rows,
    )?;
    members(
        &format!(
            "SELECT t.object_id, t.position, t.name, p.name, NULL FROM entity_actions t JOIN public_entities p ON p.object_id = t.object_id WHERE {unindexed}"
        ),
        "action",
        &mut rows,
    )?;
    crate::sql::execute_all(store, INSERT, rows)?;
    Ok(())
}
