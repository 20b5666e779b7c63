//! Looking objects up by name in a snapshot and reading them back whole, in wire order.

use super::environment::Scope;
use crate::error::Result;
use crate::metadata::*;
use crate::params;
use crate::ports::Store;
use crate::sql::{Row, query_map, query_opt};
use std::collections::{BTreeMap, BTreeSet};

/// Finds an object of `kind` by name, ignoring case (an exact-case match wins).
pub fn find(store: &dyn Store, scope: &Scope, kind: Kind, name: &str) -> Result<Option<i64>> {
    query_opt(
        store,
        // The plans are fixed with INDEXED BY and CROSS JOIN: the cache never runs ANALYZE, and
        // without statistics SQLite would scan a snapshot's objects (or labels) instead.
        "SELECT object_id FROM snapshot_objects INDEXED BY snapshot_objects_by_name
         WHERE snapshot_id = ?1 AND kind = ?2 AND name = ?3 COLLATE NOCASE
         ORDER BY name = ?3 DESC LIMIT 1",
        &params![scope.snapshot_id, kind.as_str(), name],
        |r| r.int(0),
    )
}

/// A public entity by its entity set name, ignoring case.
pub fn find_by_entity_set(store: &dyn Store, scope: &Scope, set: &str) -> Result<Option<i64>> {
    query_opt(
        store,
        "SELECT p.object_id FROM public_entities p INDEXED BY public_entities_by_set
         CROSS JOIN snapshot_objects so INDEXED BY snapshot_objects_by_object ON so.object_id = p.object_id
         WHERE so.snapshot_id = ?1 AND so.kind = 'public-entity' AND p.entity_set_name = ?2 COLLATE NOCASE
         ORDER BY p.entity_set_name = ?2 DESC LIMIT 1",
        &params![scope.snapshot_id, set],
        |r| r.int(0),
    )
}

/// The data entity whose public entity this is.
pub fn data_entity_of_public(store: &dyn Store, scope: &Scope, public_name: &str) -> Result<Option<i64>> {
    query_opt(
        store,
        "SELECT d.object_id FROM data_entities d INDEXED BY data_entities_by_public_name
         CROSS JOIN snapshot_objects so INDEXED BY snapshot_objects_by_object ON so.object_id = d.object_id
         WHERE so.snapshot_id = ?1 AND so.kind = 'data-entity' AND d.public_entity_name = ?2 COLLATE NOCASE
         ORDER BY d.public_entity_name = ?2 DESC LIMIT 1",
        &params![scope.snapshot_id, public_name],
        |r| r.int(0),
    )
}

/// Names of every object of the given kinds, for suggestions.
pub fn names(store: &dyn Store, scope: &Scope, kinds: &[Kind]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for kind in kinds {
        out.extend(query_map(
            store,
            "SELECT name FROM snapshot_objects WHERE snapshot_id = ?1 AND kind = ?2",
            &params![scope.snapshot_id, kind.as_str()],
            |r| r.text(0),
        )?);
    }
    Ok(out)
}

pub fn data_entity(store: &dyn Store, object_id: i64) -> Result<Option<DataEntity>> {
    query_opt(
        store,
        "SELECT name, public_entity_name, public_collection_name, label_id, category, data_service_enabled, data_management_enabled, is_read_only
         FROM data_entities WHERE object_id = ?1",
        &params![object_id],
        |r| {
            Ok(DataEntity {
                label: None,
                name: r.text(0)?,
                public_entity_name: r.opt_text(1)?,
                public_collection_name: r.opt_text(2)?,
                label_id: r.opt_text(3)?,
                category: r.opt_text(4)?,
                data_service_enabled: r.bool(5)?,
                data_management_enabled: r.bool(6)?,
                is_read_only: r.bool(7)?,
            })
        },
    )
}

pub fn public_entity(store: &dyn Store, object_id: i64) -> Result<Option<PublicEntity>> {
    Ok(read_public_entities(store, "?1", &params![object_id], Selection::All)?.remove(&object_id))
}

/// Public entities by object id, read whole with one statement per table for all of them: a diff
/// reads hundreds at once, where a statement per table per entity would cost as much again.
pub fn public_entities(store: &dyn Store, object_ids: &[i64]) -> Result<BTreeMap<i64, PublicEntity>> {
    if object_ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    read_public_entities(store, &id_list(object_ids), &[], Selection::All)
}

/// Both public entities of each pair `(a, b)`, to be compared with each other, reading only what
/// their stored [`Fingerprints`] say differs: the navigation properties, property groups and actions
/// of both when they differ as a whole, and the properties one has no equal of in the other (at any
/// position), with the keys, which are compared whole. Properties are most of an entity's rows and
/// few change between versions: this reads a tenth of what reading the entities whole would.
/// Entities stored without fingerprints are read whole with their partners.
pub fn public_entities_to_compare(store: &dyn Store, pairs: &[(i64, i64)]) -> Result<BTreeMap<i64, PublicEntity>> {
    if pairs.is_empty() {
        return Ok(BTreeMap::new());
    }
    let ids: Vec<i64> = pairs.iter().flat_map(|&(a, b)| [a, b]).collect::<BTreeSet<_>>().into_iter().collect();
    let blobs: BTreeMap<i64, Vec<u8>> = query_map(
        store,
        &format!("SELECT object_id, fingerprints FROM public_entities WHERE object_id IN ({})", id_list(&ids)),
        &[],
        |r| Ok((r.int(0)?, r.opt_blob(1)?)),
    )?
    .into_iter()
    .filter_map(|(id, blob)| Some((id, blob?)))
    .collect();
    let mut chosen = Chosen::default();
    for &(a, b) in pairs {
        let prints = |id: i64| blobs.get(&id).and_then(|blob| Fingerprints::parse(blob));
        let (Some(of_a), Some(of_b)) = (prints(a), prints(b)) else {
            for part in [&mut chosen.whole, &mut chosen.navigation_properties, &mut chosen.property_groups, &mut chosen.actions] {
                part.extend([a, b]);
            }
            continue;
        };
        chosen.properties.extend(of_a.properties_unlike(&of_b).into_iter().map(|position| (a, position)));
        chosen.properties.extend(of_b.properties_unlike(&of_a).into_iter().map(|position| (b, position)));
        for (part, differs) in [
            (&mut chosen.navigation_properties, of_a.navigation_properties != of_b.navigation_properties),
            (&mut chosen.property_groups, of_a.property_groups != of_b.property_groups),
            (&mut chosen.actions, of_a.actions != of_b.actions),
        ] {
            if differs {
                part.extend([a, b]);
            }
        }
    }
    chosen.properties.sort_unstable();
    read_public_entities(store, &id_list(&ids), &[], Selection::Chosen(&chosen))
}

/// Integers from the database itself, written as an SQL list of literals: one statement whatever
/// their number.
pub(crate) fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// What a batched read of public entities includes besides the entities themselves.
enum Selection<'a> {
    All,
    Chosen(&'a Chosen),
}

/// Parts of entities chosen to be read, by object id.
#[derive(Default)]
struct Chosen {
    /// Property rows `(object id, position)`, in order.
    properties: Vec<(i64, usize)>,
    /// Entities whose every property is read.
    whole: Vec<i64>,
    navigation_properties: Vec<i64>,
    property_groups: Vec<i64>,
    actions: Vec<i64>,
}

impl Selection<'_> {
    const PROPERTY_COLUMNS: &'static str =
        "e.object_id, e.name, e.type_name, e.data_type, e.label_id, e.is_key, e.is_mandatory, e.configuration_enabled,
        e.allow_edit, e.allow_edit_on_create, e.is_dimension, e.dimension_relation, e.is_dynamic_dimension,
        e.dimension_legal_entity_property, e.dimension_type_property, e.position";

    /// The statements that read properties (no entity in two), in no particular order: sorting a
    /// thousand chosen rows here costs less than SQLite's sorter.
    fn property_queries(&self, ids: &str) -> Vec<String> {
        let columns = Self::PROPERTY_COLUMNS;
        let all =
            |ids: &str| format!("SELECT {columns} FROM entity_properties e WHERE e.object_id IN ({ids}) ORDER BY e.object_id, e.position");
        match self {
            Selection::All => vec![all(ids)],
            Selection::Chosen(chosen) => {
                let mut queries = Vec::new();
                if !chosen.properties.is_empty() {
                    let values = chosen.properties.iter().map(|(id, position)| format!("({id},{position})")).collect::<Vec<_>>().join(",");
                    queries.push(format!(
                        "WITH chosen(id, position) AS (VALUES {values})
                         SELECT {columns} FROM chosen c CROSS JOIN entity_properties e ON e.object_id = c.id AND e.position = c.position"
                    ));
                }
                if !chosen.whole.is_empty() {
                    queries.push(all(&id_list(&chosen.whole)));
                }
                queries
            }
        }
    }

    /// The entities (an SQL list) whose part `part` is read, or `None` for none.
    fn part(&self, ids: &str, part: fn(&Chosen) -> &Vec<i64>) -> Option<String> {
        match self {
            Selection::All => Some(ids.to_owned()),
            Selection::Chosen(chosen) => {
                let chosen = part(chosen);
                (!chosen.is_empty()).then(|| id_list(chosen))
            }
        }
    }
}

/// Reads the public entities whose object ids are `ids` (an SQL list: `?1` or literals) with `params`.
fn read_public_entities(
    store: &dyn Store,
    ids: &str,
    params: &[crate::ports::Value],
    selection: Selection<'_>,
) -> Result<BTreeMap<i64, PublicEntity>> {
    let mut entities: BTreeMap<i64, PublicEntity> = query_map(
        store,
        &format!("SELECT object_id, name, entity_set_name, label_id, is_read_only, configuration_enabled FROM public_entities WHERE object_id IN ({ids})"),
        params,
        |r| {
            Ok((
                r.int(0)?,
                PublicEntity {
                    label: None,
                    name: r.text(1)?,
                    entity_set_name: r.opt_text(2)?,
                    label_id: r.opt_text(3)?,
                    is_read_only: r.bool(4)?,
                    configuration_enabled: r.bool(5)?,
                    properties: vec![],
                    navigation_properties: vec![],
                    property_groups: vec![],
                    actions: vec![],
                },
            ))
        },
    )?
    .into_iter()
    .collect();
    if entities.is_empty() {
        return Ok(entities);
    }
    let rows = selection
        .property_queries(ids)
        .iter()
        .map(|sql| {
            query_map(store, sql, params, |r| {
                Ok((
                    (r.int(0)?, r.int(15)?),
                    Property {
                        label: None,
                        name: r.text(1)?,
                        type_name: r.opt_text(2)?,
                        data_type: r.opt_text(3)?,
                        label_id: r.opt_text(4)?,
                        is_key: r.bool(5)?,
                        is_mandatory: r.bool(6)?,
                        configuration_enabled: r.bool(7)?,
                        allow_edit: r.bool(8)?,
                        allow_edit_on_create: r.bool(9)?,
                        is_dimension: r.bool(10)?,
                        dimension_relation: r.opt_text(11)?,
                        is_dynamic_dimension: r.bool(12)?,
                        dimension_legal_entity_property: r.opt_text(13)?,
                        dimension_type_property: r.opt_text(14)?,
                    },
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut rows: Vec<_> = rows.into_iter().flatten().collect();
    rows.sort_unstable_by_key(|(key, _)| *key);
    for ((id, _), property) in rows {
        if let Some(e) = entities.get_mut(&id) {
            e.properties.push(property);
        }
    }
    if let Some(ids) = selection.part(ids, |c| &c.navigation_properties) {
        let mut constraints = query_map(
            store,
            &format!(
                "SELECT object_id, navigation_position, kind, property, referenced_property, related_property, value, value_str
             FROM navigation_constraints WHERE object_id IN ({ids}) ORDER BY object_id, navigation_position, position"
            ),
            params,
            |r| {
                let kind = r.text(2)?;
                let constraint =
                    Constraint::from_columns(&kind, r.opt_text(3)?, r.opt_text(4)?, r.opt_text(5)?, r.opt_int(6)?, r.opt_text(7)?);
                Ok(((r.int(0)?, r.int(1)?), constraint))
            },
        )?
        .into_iter()
        .peekable();
        for (id, position, mut nav) in query_map(
            store,
            &format!(
                "SELECT object_id, position, name, related_entity, related_relation_name, cardinality FROM navigation_properties
             WHERE object_id IN ({ids}) ORDER BY object_id, position"
            ),
            params,
            |r| {
                Ok((
                    r.int(0)?,
                    r.int(1)?,
                    NavigationProperty {
                        name: r.text(2)?,
                        related_entity: r.opt_text(3)?,
                        related_relation_name: r.opt_text(4)?,
                        cardinality: r.opt_text(5)?,
                        constraints: vec![],
                    },
                ))
            },
        )? {
            // Constraints come in the same order as their navigation properties; any of an id or
            // position before this one belongs to no navigation property that was read.
            while constraints.next_if(|(key, _)| *key < (id, position)).is_some() {}
            while let Some((_, c)) = constraints.next_if(|(key, _)| *key == (id, position)) {
                nav.constraints.push(c);
            }
            if let Some(e) = entities.get_mut(&id) {
                e.navigation_properties.push(nav);
            }
        }
    }
    if let Some(ids) = selection.part(ids, |c| &c.property_groups) {
        let mut members = query_map(
            store,
            &format!(
                "SELECT object_id, group_position, property_name FROM property_group_members WHERE object_id IN ({ids})
             ORDER BY object_id, group_position, position"
            ),
            params,
            |r| Ok(((r.int(0)?, r.int(1)?), r.text(2)?)),
        )?
        .into_iter()
        .peekable();
        for (id, position, name) in query_map(
            store,
            &format!("SELECT object_id, position, name FROM property_groups WHERE object_id IN ({ids}) ORDER BY object_id, position"),
            params,
            |r| Ok((r.int(0)?, r.int(1)?, r.text(2)?)),
        )? {
            while members.next_if(|(key, _)| *key < (id, position)).is_some() {}
            let mut properties = Vec::new();
            while let Some((_, m)) = members.next_if(|(key, _)| *key == (id, position)) {
                properties.push(m);
            }
            if let Some(e) = entities.get_mut(&id) {
                e.property_groups.push(PropertyGroup { name, properties });
            }
        }
    }
    if let Some(ids) = selection.part(ids, |c| &c.actions) {
        let mut parameters = query_map(
            store,
            &format!(
                "SELECT object_id, action_position, name, type_name, is_collection FROM action_parameters WHERE object_id IN ({ids})
             ORDER BY object_id, action_position, position"
            ),
            params,
            |r| Ok(((r.int(0)?, r.int(1)?), ActionParameter { name: r.text(2)?, type_name: r.opt_text(3)?, is_collection: r.bool(4)? })),
        )?
        .into_iter()
        .peekable();
        let actions = query_map(
            store,
            &format!(
                "SELECT object_id, position, name, binding_kind, field_lookup, returns, return_type_name, return_is_collection
             FROM entity_actions WHERE object_id IN ({ids}) ORDER BY object_id, position"
            ),
            params,
            |r| {
                let returns = r.bool(5)?;
                Ok((
                    r.int(0)?,
                    r.int(1)?,
                    r.text(2)?,
                    r.opt_text(3)?,
                    r.opt_text(4)?,
                    returns
                        .then(|| -> Result<ActionType> { Ok(ActionType { type_name: r.opt_text(6)?, is_collection: r.bool(7)? }) })
                        .transpose()?,
                ))
            },
        )?;
        for (id, position, name, binding_kind, field_lookup, return_type) in actions {
            while parameters.next_if(|(key, _)| *key < (id, position)).is_some() {}
            let mut action_parameters = Vec::new();
            while let Some((_, p)) = parameters.next_if(|(key, _)| *key == (id, position)) {
                action_parameters.push(p);
            }
            if let Some(e) = entities.get_mut(&id) {
                let entity = e.name.clone();
                e.actions.push(Action { entity, name, binding_kind, field_lookup, parameters: action_parameters, return_type });
            }
        }
    }
    Ok(entities)
}

fn action_row(r: Row<'_>, entity: &str) -> Result<(i64, Action)> {
    let returns = r.bool(5)?;
    Ok((
        r.int(0)?,
        Action {
            entity: entity.to_owned(),
            name: r.text(1)?,
            binding_kind: r.opt_text(2)?,
            field_lookup: r.opt_text(3)?,
            parameters: vec![],
            return_type: returns
                .then(|| -> Result<ActionType> { Ok(ActionType { type_name: r.opt_text(6)?, is_collection: r.bool(7)? }) })
                .transpose()?,
        },
    ))
}

/// The actions of the public entity `entity` (stored as `object_id`), with their parameters, in wire order.
pub fn actions_of(store: &dyn Store, object_id: i64, entity: &str) -> Result<Vec<Action>> {
    let id = params![object_id];
    let mut parameters = query_map(
        store,
        "SELECT action_position, name, type_name, is_collection FROM action_parameters WHERE object_id = ?1 ORDER BY action_position, position",
        &id,
        |r| Ok((r.int(0)?, ActionParameter { name: r.text(1)?, type_name: r.opt_text(2)?, is_collection: r.bool(3)? })),
    )?
    .into_iter()
    .peekable();
    Ok(query_map(
        store,
        "SELECT position, name, binding_kind, field_lookup, NULL, returns, return_type_name, return_is_collection
         FROM entity_actions WHERE object_id = ?1 ORDER BY position",
        &id,
        |r| action_row(r, entity),
    )?
    .into_iter()
    .map(|(position, mut action)| {
        while let Some((_, p)) = parameters.next_if(|(ap, _)| *ap == position) {
            action.parameters.push(p);
        }
        action
    })
    .collect())
}

/// Every action named `name` (ignoring case), by the public entity it belongs to.
pub fn actions_named(store: &dyn Store, scope: &Scope, name: &str) -> Result<Vec<Action>> {
    let owners = query_map(
        store,
        "SELECT DISTINCT so.object_id, so.name FROM snapshot_objects so JOIN entity_actions a ON a.object_id = so.object_id
         WHERE so.snapshot_id = ?1 AND so.kind = 'public-entity' AND a.name = ?2 COLLATE NOCASE ORDER BY so.name",
        &params![scope.snapshot_id, name],
        |r| Ok((r.int(0)?, r.text(1)?)),
    )?;
    let mut out = Vec::new();
    for (object_id, owner) in owners {
        out.extend(actions_of(store, object_id, &owner)?.into_iter().filter(|a| a.name.eq_ignore_ascii_case(name)));
    }
    Ok(out)
}

/// Names of every action, for suggestions.
pub fn action_names(store: &dyn Store, scope: &Scope) -> Result<Vec<String>> {
    query_map(
        store,
        "SELECT DISTINCT a.name FROM snapshot_objects so JOIN entity_actions a ON a.object_id = so.object_id
         WHERE so.snapshot_id = ?1 AND so.kind = 'public-entity'",
        &params![scope.snapshot_id],
        |r| r.text(0),
    )
}

pub fn enumeration(store: &dyn Store, object_id: i64) -> Result<Option<Enumeration>> {
    let Some((name, label_id)) =
        query_opt(store, "SELECT name, label_id FROM enumerations WHERE object_id = ?1", &params![object_id], |r| {
            Ok((r.text(0)?, r.opt_text(1)?))
        })?
    else {
        return Ok(None);
    };
    let members = query_map(
        store,
        "SELECT name, value, label_id, configuration_enabled FROM enumeration_members WHERE object_id = ?1 ORDER BY position",
        &params![object_id],
        |r| Ok(EnumMember { label: None, name: r.text(0)?, value: r.int(1)?, label_id: r.opt_text(2)?, configuration_enabled: r.bool(3)? }),
    )?;
    Ok(Some(Enumeration { label: None, name, label_id, members }))
}
