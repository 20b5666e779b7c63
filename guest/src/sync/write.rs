//! Writing fetched objects into a snapshot: content-addressed, so an object whose content is
//! already stored (from any version) is referenced, not written again.

use super::snapshot::mark_phase;
use super::sources::{Fetched, Source};
use crate::error::Result;
use crate::metadata::{DataEntity, Enumeration, Kind, PublicEntity};
use crate::ports::{Phase, Store, TxMode, Value};
use crate::row;
use crate::sql::{Batch, in_transaction, query_map};
use serde::Serialize;
use std::collections::BTreeMap;

/// How many objects a phase fetched, wrote anew, and found already stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteCounts {
    pub fetched: u64,
    pub written: u64,
    pub reused: u64,
}

/// An object kind that can be stored: its name and its detail rows.
pub trait StoredObject: Serialize {
    const KIND: Kind;
    fn name(&self) -> &str;
    /// Inserts the detail rows of `objects` (paired with their new object ids).
    fn insert_details(store: &dyn Store, objects: &[(i64, &Self)]) -> Result<()>;
}

/// Stores `items` (in wire order) as the `kind` objects of a building snapshot, records which
/// object each new text became, and marks the phase done, in one transaction.
pub fn write_phase<T: StoredObject>(
    store: &dyn Store,
    snapshot_id: i64,
    phase: &Phase,
    items: &[Fetched<T>],
    now_ms: i64,
) -> Result<WriteCounts> {
    in_transaction(store, TxMode::Immediate, || {
        let kind = T::KIND.as_str();
        let new: Vec<(&str, &T)> = items.iter().filter_map(|i| Some((i.hash(), i.new_object()?))).collect();
        let (ids, written) = store_objects(store, &new)?;
        let object_id = |item: &Fetched<T>| match item {
            Fetched::Known { object_id, .. } => *object_id,
            Fetched::New { hash, .. } => ids[hash.as_str()],
        };
        let sources: Vec<(Source, i64)> = items
            .iter()
            .filter_map(|i| match i {
                Fetched::New { source, .. } => Some((*source, object_id(i))),
                Fetched::Known { .. } => None,
            })
            .collect();
        super::sources::record(store, &sources)?;
        let rows: Vec<Vec<Value>> =
            items.iter().enumerate().map(|(position, item)| row![snapshot_id, kind, position, item.name(), object_id(item)]).collect();
        crate::sql::execute_all(
            store,
            "INSERT INTO snapshot_objects (snapshot_id, kind, position, name, object_id) VALUES (?1, ?2, ?3, ?4, ?5)",
            rows,
        )?;
        mark_phase(store, snapshot_id, phase, items.len() as u64, now_ms)?;
        Ok(WriteCounts { fetched: items.len() as u64, written, reused: items.len() as u64 - written })
    })
}

/// Stores the objects (with their content hashes) that are not stored yet, with their details
/// and search items, and answers every object's id by hash and how many were stored anew. Call
/// inside a transaction.
pub fn store_objects<T: StoredObject>(store: &dyn Store, objects: &[(&str, &T)]) -> Result<(BTreeMap<String, i64>, u64)> {
    let kind = T::KIND.as_str();
    let hashes: Vec<String> = objects.iter().map(|(hash, _)| (*hash).to_owned()).collect();
    let mut ids = existing_ids(store, kind, &hashes)?;
    let mut fresh: Vec<(&str, &T)> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for &(hash, object) in objects {
        if !ids.contains_key(hash) && seen.insert(hash) {
            fresh.push((hash, object));
        }
    }
    let rows: Vec<Vec<Value>> = fresh.iter().map(|(hash, o)| row![kind, o.name(), *hash]).collect();
    crate::sql::execute_all(store, "INSERT INTO objects (kind, name, hash) VALUES (?1, ?2, ?3)", rows)?;
    let fresh_hashes: Vec<String> = fresh.iter().map(|(hash, _)| (*hash).to_owned()).collect();
    ids.extend(existing_ids(store, kind, &fresh_hashes)?);
    let with_ids: Vec<(i64, &T)> = fresh.iter().map(|(hash, o)| (ids[*hash], *o)).collect();
    T::insert_details(store, &with_ids)?;
    Ok((ids, fresh.len() as u64))
}

/// The ids of the stored objects of `kind` among `hashes`, by hash.
pub fn existing_ids(store: &dyn Store, kind: &str, hashes: &[String]) -> Result<BTreeMap<String, i64>> {
    let mut out = BTreeMap::new();
    for chunk in hashes.chunks(500) {
        let placeholders = (0..chunk.len()).map(|i| format!("?{}", i + 2)).collect::<Vec<_>>().join(",");
        let mut params = vec![Value::from(kind)];
        params.extend(chunk.iter().map(Value::from));
        let rows = query_map(store, &format!("SELECT hash, id FROM objects WHERE kind = ?1 AND hash IN ({placeholders})"), &params, |r| {
            Ok((r.text(0)?, r.int(1)?))
        })?;
        out.extend(rows);
    }
    Ok(out)
}

impl StoredObject for DataEntity {
    const KIND: Kind = Kind::DataEntity;
    fn name(&self) -> &str {
        &self.name
    }
    fn insert_details(store: &dyn Store, objects: &[(i64, &Self)]) -> Result<()> {
        let rows: Vec<Vec<Value>> = objects
            .iter()
            .map(|(id, e)| {
                row![
                    *id,
                    &e.name,
                    e.public_entity_name.as_deref(),
                    e.public_collection_name.as_deref(),
                    e.label_id.as_deref(),
                    e.category.as_deref(),
                    e.data_service_enabled,
                    e.data_management_enabled,
                    e.is_read_only
                ]
            })
            .collect();
        crate::sql::execute_all(
            store,
            "INSERT INTO data_entities (object_id, name, public_entity_name, public_collection_name, label_id, category,
                data_service_enabled, data_management_enabled, is_read_only) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            rows,
        )?;
        crate::search::index::data_entities(store, objects)
    }
}

impl StoredObject for PublicEntity {
    const KIND: Kind = Kind::PublicEntity;
    fn name(&self) -> &str {
        &self.name
    }
    fn insert_details(store: &dyn Store, objects: &[(i64, &Self)]) -> Result<()> {
        let mut entities = Batch::new(
            store,
            "INSERT INTO public_entities (object_id, name, entity_set_name, label_id, is_read_only, configuration_enabled, fingerprints,
                property_count, navigation_property_count, constraint_count, property_group_count, action_count)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        );
        let mut properties = Batch::new(
            store,
            "INSERT INTO entity_properties (object_id, position, name, type_name, data_type, label_id, is_key, is_mandatory,
                configuration_enabled, allow_edit, allow_edit_on_create, is_dimension, dimension_relation, is_dynamic_dimension,
                dimension_legal_entity_property, dimension_type_property)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        );
        let mut navigations = Batch::new(
            store,
            "INSERT INTO navigation_properties (object_id, position, name, related_entity, related_relation_name, cardinality) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        );
        let mut constraints = Batch::new(
            store,
            "INSERT INTO navigation_constraints (object_id, navigation_position, position, kind, property, referenced_property, related_property, value, value_str)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        );
        let mut groups = Batch::new(store, "INSERT INTO property_groups (object_id, position, name) VALUES (?1, ?2, ?3)");
        let mut members = Batch::new(
            store,
            "INSERT INTO property_group_members (object_id, group_position, position, property_name) VALUES (?1, ?2, ?3, ?4)",
        );
        let mut actions = Batch::new(
            store,
            "INSERT INTO entity_actions (object_id, position, name, binding_kind, field_lookup, returns, return_type_name, return_is_collection)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        );
        let mut parameters = Batch::new(
            store,
            "INSERT INTO action_parameters (object_id, action_position, position, name, type_name, is_collection) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        );
        for (id, e) in objects {
            let id = *id;
            entities.push(row![
                id,
                &e.name,
                e.entity_set_name.as_deref(),
                e.label_id.as_deref(),
                e.is_read_only,
                e.configuration_enabled,
                crate::metadata::Fingerprints::of(e),
                e.properties.len(),
                e.navigation_properties.len(),
                e.navigation_properties.iter().map(|n| n.constraints.len()).sum::<usize>(),
                e.property_groups.len(),
                e.actions.len()
            ])?;
            for (i, p) in e.properties.iter().enumerate() {
                properties.push(row![
                    id,
                    i,
                    &p.name,
                    p.type_name.as_deref(),
                    p.data_type.as_deref(),
                    p.label_id.as_deref(),
                    p.is_key,
                    p.is_mandatory,
                    p.configuration_enabled,
                    p.allow_edit,
                    p.allow_edit_on_create,
                    p.is_dimension,
                    p.dimension_relation.as_deref(),
                    p.is_dynamic_dimension,
                    p.dimension_legal_entity_property.as_deref(),
                    p.dimension_type_property.as_deref()
                ])?;
            }
            for (i, n) in e.navigation_properties.iter().enumerate() {
                navigations.push(row![
                    id,
                    i,
                    &n.name,
                    n.related_entity.as_deref(),
                    n.related_relation_name.as_deref(),
                    n.cardinality.as_deref()
                ])?;
                for (j, c) in n.constraints.iter().enumerate() {
                    let (property, referenced, related, value, value_str) = c.columns();
                    constraints.push(row![id, i, j, c.kind(), property, referenced, related, value, value_str])?;
                }
            }
            for (i, g) in e.property_groups.iter().enumerate() {
                groups.push(row![id, i, &g.name])?;
                for (j, m) in g.properties.iter().enumerate() {
                    members.push(row![id, i, j, m])?;
                }
            }
            for (i, a) in e.actions.iter().enumerate() {
                let (returns, return_name, return_collection) = match &a.return_type {
                    Some(t) => (true, t.type_name.as_deref(), t.is_collection),
                    None => (false, None, false),
                };
                actions.push(row![
                    id,
                    i,
                    &a.name,
                    a.binding_kind.as_deref(),
                    a.field_lookup.as_deref(),
                    returns,
                    return_name,
                    return_collection
                ])?;
                for (j, p) in a.parameters.iter().enumerate() {
                    parameters.push(row![id, i, j, &p.name, p.type_name.as_deref(), p.is_collection])?;
                }
            }
        }
        for batch in [entities, properties, navigations, constraints, groups, members, actions, parameters] {
            batch.finish()?;
        }
        crate::search::index::public_entities(store, objects)
    }
}

impl StoredObject for Enumeration {
    const KIND: Kind = Kind::Enumeration;
    fn name(&self) -> &str {
        &self.name
    }
    fn insert_details(store: &dyn Store, objects: &[(i64, &Self)]) -> Result<()> {
        let mut enums = Vec::new();
        let mut members = Vec::new();
        for (id, e) in objects {
            enums.push(row![*id, &e.name, e.label_id.as_deref(), e.members.len()]);
            for (i, m) in e.members.iter().enumerate() {
                members.push(row![*id, i, &m.name, m.value, m.label_id.as_deref(), m.configuration_enabled]);
            }
        }
        crate::sql::execute_all(
            store,
            "INSERT INTO enumerations (object_id, name, label_id, member_count) VALUES (?1, ?2, ?3, ?4)",
            enums,
        )?;
        crate::sql::execute_all(
            store,
            "INSERT INTO enumeration_members (object_id, position, name, value, label_id, configuration_enabled) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            members,
        )?;
        crate::search::index::enumerations(store, objects)
    }
}
