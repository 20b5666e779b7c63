//! What changed in the metadata between two snapshots. Objects are content-addressed, so the
//! comparison is first of object ids, in SQL, and only the objects that differ are read and compared
//! field by field.

use super::entities;
use super::environment;
use crate::catalog;
use crate::error::{Error, Result};
use crate::metadata::*;
use crate::params;
use crate::ports::Store;
use crate::sql::{query_map, query_opt};
use crate::wit::types::{
    ChangeKind, DiffOptions, DiffPart, DiffSide, DiffSideInfo, FieldChange, LabelChange, MetadataDiff, ObjectChange, ObjectKind,
};
use std::collections::{BTreeMap, BTreeSet};

/// A side resolved: the snapshot it reads and what the answer says about it.
struct Side {
    snapshot_id: i64,
    version_id: i64,
    info: DiffSideInfo,
}

fn resolve(store: &dyn Store, side: &DiffSide) -> Result<Side> {
    let (snapshot_id, version_id) = match side {
        DiffSide::Environment(url) => {
            let scope = environment::resolve(store, Some(url))?;
            let version_id = query_opt(store, "SELECT version_id FROM snapshots WHERE id = ?1", &params![scope.snapshot_id], |r| r.int(0))?
                .ok_or_else(|| Error::internal(format!("snapshot {} is read but not stored", scope.snapshot_id)))?;
            (scope.snapshot_id, version_id)
        }
        DiffSide::Version(hash) => {
            let version_id = catalog::version_by_hash(store, hash)?;
            let snapshot_id = query_opt(
                store,
                "SELECT id FROM snapshots WHERE version_id = ?1 AND state = 'complete' AND entities = 1 ORDER BY id DESC LIMIT 1",
                &params![version_id],
                |r| r.int(0),
            )?
            .ok_or_else(|| {
                Error::not_found(format!("version {hash} is known but its metadata is not synced; sync an environment that runs it"))
            })?;
            (snapshot_id, version_id)
        }
    };
    let modules_hash = query_opt(store, "SELECT modules_hash FROM versions WHERE id = ?1", &params![version_id], |r| r.text(0))?
        .ok_or_else(|| Error::internal(format!("version {version_id} is referenced but not stored")))?;
    let environments =
        query_map(store, "SELECT base_url FROM environments WHERE version_id = ?1 ORDER BY base_url", &params![version_id], |r| r.text(0))?;
    let languages =
        query_opt(store, "SELECT languages FROM snapshots WHERE id = ?1", &params![snapshot_id], |r| r.text(0))?.unwrap_or_default();
    let languages = crate::sync::coverage::Coverage::parse_languages(&languages).into_iter().collect();
    Ok(Side { snapshot_id, version_id, info: DiffSideInfo { modules_hash, environments, languages } })
}

/// An object that is not the same on both sides: its object id on each side it is on.
pub struct Pair {
    pub kind: Kind,
    pub name: String,
    pub a: Option<i64>,
    pub b: Option<i64>,
}

/// The objects of snapshots `a` and `b` whose ids differ, and how many of `a`'s are on both: found
/// without reading anything equal. Each side's object ids are compared here, where SQLite would
/// look each one up in the other side's index; only the objects one side lacks are then read, and
/// paired by kind and name (ignoring case, as every lookup finds them).
pub fn differing(store: &dyn Store, a: i64, b: i64) -> Result<(Vec<Pair>, u64)> {
    // One text of ten thousand numbers rather than ten thousand rows: a row costs more to hand
    // over than to find.
    let ids = |snapshot: i64| -> Result<Vec<i64>> {
        let list =
            query_opt(store, "SELECT group_concat(object_id) FROM snapshot_objects WHERE snapshot_id = ?1", &params![snapshot], |r| {
                r.opt_text(0)
            })?
            .flatten()
            .unwrap_or_default();
        list.split(',')
            .filter(|id| !id.is_empty())
            .map(|id| id.parse().map_err(|_| Error::internal(format!("snapshot {snapshot}: object id {id:?} is not a number"))))
            .collect()
    };
    let (mut ids_a, mut ids_b) = (ids(a)?, ids(b)?);
    ids_a.sort_unstable();
    ids_b.sort_unstable();
    let (mut only_a, mut only_b, mut unchanged) = (Vec::new(), Vec::new(), 0u64);
    let (mut x, mut y) = (ids_a.iter().peekable(), ids_b.iter().peekable());
    loop {
        match (x.peek(), y.peek()) {
            (Some(&&i), Some(&&j)) if i == j => {
                // An object twice in a snapshot counts twice, as its rows do.
                while x.next_if_eq(&&i).is_some() {
                    unchanged += 1;
                }
                while y.next_if_eq(&&j).is_some() {}
            }
            (Some(&&i), Some(&&j)) if i < j => only_a.extend(x.next()),
            (Some(_), Some(_)) => only_b.extend(y.next()),
            (Some(_), None) => only_a.extend(x.next()),
            (None, Some(_)) => only_b.extend(y.next()),
            (None, None) => break,
        }
    }
    only_a.dedup();
    only_b.dedup();
    let only_in = |snapshot: i64, ids: &[i64]| -> Result<Vec<(String, String, i64)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = entities::id_list(ids);
        query_map(
            store,
            &format!(
                "SELECT kind, name, object_id FROM snapshot_objects INDEXED BY snapshot_objects_by_object
                 WHERE object_id IN ({list}) AND snapshot_id = ?1"
            ),
            &params![snapshot],
            |r| Ok((r.text(0)?, r.text(1)?, r.int(2)?)),
        )
    };
    let (in_a, in_b) = (only_in(a, &only_a)?, only_in(b, &only_b)?);
    let mut pairs: BTreeMap<(Kind, String), Pair> = BTreeMap::new();
    for (side_is_a, rows) in [(true, in_a), (false, in_b)] {
        for (kind, name, object_id) in rows {
            let kind = Kind::parse(&kind).ok_or_else(|| Error::internal(format!("an object of unknown kind {kind:?}")))?;
            let pair =
                pairs.entry((kind, name.to_ascii_lowercase())).or_insert_with(|| Pair { kind, name: name.clone(), a: None, b: None });
            if side_is_a {
                pair.a = Some(object_id);
            } else {
                pair.b = Some(object_id);
                pair.name = name;
            }
        }
    }
    Ok((pairs.into_values().collect(), unchanged))
}

/// An object read back, of either kind.
enum Object {
    Data(DataEntity),
    Public(PublicEntity),
    Enum(Enumeration),
}

fn read(store: &dyn Store, kind: Kind, object_id: i64) -> Result<Object> {
    let missing = || Error::internal(format!("{} object {object_id} is referenced but not stored", kind.as_str()));
    Ok(match kind {
        Kind::DataEntity => Object::Data(entities::data_entity(store, object_id)?.ok_or_else(missing)?),
        Kind::PublicEntity => Object::Public(entities::public_entity(store, object_id)?.ok_or_else(missing)?),
        Kind::Enumeration => Object::Enum(entities::enumeration(store, object_id)?.ok_or_else(missing)?),
    })
}

/// Whether the object belongs to the entity named `entity` (any of its names, ignoring case).
fn belongs_to(object: &Object, entity: &str) -> bool {
    let is = |name: Option<&str>| name.is_some_and(|n| n.eq_ignore_ascii_case(entity));
    match object {
        Object::Data(d) => is(Some(&d.name)) || is(d.public_entity_name.as_deref()) || is(d.public_collection_name.as_deref()),
        Object::Public(p) => is(Some(&p.name)) || is(p.entity_set_name.as_deref()),
        Object::Enum(_) => false,
    }
}

/// What changed from `a` to `b`.
pub fn diff(store: &dyn Store, a: &DiffSide, b: &DiffSide, options: &DiffOptions) -> Result<MetadataDiff> {
    let (side_a, side_b) = (resolve(store, a)?, resolve(store, b)?);
    for language in &options.label_languages {
        for (side, name) in [(&side_a, "a"), (&side_b, "b")] {
            if !side.info.languages.contains(language) {
                return Err(Error::invalid_input(format!(
                    "labels in {language}: side {name} ({}) covers only {}; sync it with --languages {language}",
                    side.info.modules_hash,
                    side.info.languages.join(", ")
                )));
            }
        }
    }
    let modules =
        crate::modules::diff(&catalog::version_modules(store, side_a.version_id)?, &catalog::version_modules(store, side_b.version_id)?);
    // Two sides on one snapshot differ in nothing: every object counts as unchanged.
    let (pairs, unchanged) = differing(store, side_a.snapshot_id, side_b.snapshot_id)?;

    let filter = Filter::new(options);
    let pairs: Vec<Pair> = pairs.into_iter().filter(|p| filter.reads(p.kind)).collect();
    // Public entities, the bulk of what differs, are read together: those on both sides as much as
    // comparing them needs, those on one side whole.
    let public_pairs = pairs.iter().filter(|p| p.kind == Kind::PublicEntity);
    let compared: Vec<(i64, i64)> = public_pairs.clone().filter_map(|p| Some((p.a?, p.b?))).collect();
    let one_sided: Vec<i64> = public_pairs.filter(|p| p.a.is_none() || p.b.is_none()).flat_map(|p| p.a.or(p.b)).collect();
    let mut public = entities::public_entities_to_compare(store, &compared)?;
    public.extend(entities::public_entities(store, &one_sided)?);
    let read = |kind: Kind, object_id: i64| -> Result<Object> {
        match kind {
            Kind::PublicEntity => public
                .get(&object_id)
                .cloned()
                .map(Object::Public)
                .ok_or_else(|| Error::internal(format!("public-entity object {object_id} is referenced but not stored"))),
            _ => read(store, kind, object_id),
        }
    };
    let mut objects = Vec::new();
    for pair in pairs {
        let old = pair.a.map(|id| read(pair.kind, id)).transpose()?;
        let new = pair.b.map(|id| read(pair.kind, id)).transpose()?;
        if let Some(entity) = &options.entity
            && !old.iter().chain(new.iter()).any(|o| belongs_to(o, entity))
        {
            continue;
        }
        let (change, changes) = match (&old, &new) {
            (Some(old), Some(new)) => (ChangeKind::Changed, compare(old, new)),
            (None, Some(_)) => (ChangeKind::Added, Vec::new()),
            _ => (ChangeKind::Removed, Vec::new()),
        };
        if let Some(found) = filter.keep(pair.kind, pair.name, change, changes) {
            objects.push(found);
        }
    }
    objects.sort_by(|x, y| (x.kind.as_str(), x.name.to_ascii_lowercase()).cmp(&(y.kind.as_str(), y.name.to_ascii_lowercase())));

    // A changed text breaks nothing: with only what breaks, no labels are compared.
    let mut labels = Vec::new();
    if side_a.snapshot_id != side_b.snapshot_id && !options.only_breaking {
        for language in &options.label_languages {
            labels.extend(label_changes(store, side_a.snapshot_id, side_b.snapshot_id, language)?);
        }
    }
    Ok(MetadataDiff { a: side_a.info, b: side_b.info, modules, objects, labels, unchanged })
}

/// Texts of label ids both snapshots have in `language`, where they differ.
fn label_changes(store: &dyn Store, a: i64, b: i64, language: &str) -> Result<Vec<LabelChange>> {
    // Label rows are unique per (id, language, text): two rows of one id and language differ in text.
    query_map(
        store,
        "SELECT la.label_id, la.text, lb.text FROM snapshot_labels sa
         CROSS JOIN labels la ON la.id = sa.label_row
         CROSS JOIN labels lb INDEXED BY sqlite_autoindex_labels_1 ON lb.label_id = la.label_id AND lb.language = la.language
         CROSS JOIN snapshot_labels sb ON sb.snapshot_id = ?2 AND sb.label_row = lb.id
         WHERE sa.snapshot_id = ?1 AND la.language = ?3 AND la.missing = 0 AND lb.missing = 0 AND lb.id <> la.id
         ORDER BY la.label_id",
        &params![a, b, language],
        |r| Ok(LabelChange { label_id: r.text(0)?, language: language.to_owned(), old: Some(r.text(1)?), new: Some(r.text(2)?) }),
    )
}

/// Which objects and changes an answer keeps.
struct Filter {
    /// Object kinds kept whole; all when no kinds were asked for.
    objects: BTreeSet<Kind>,
    /// Parts of public entities kept on their own (`action` and `property` kinds).
    parts: Vec<DiffPart>,
    only_breaking: bool,
}

impl Filter {
    fn new(options: &DiffOptions) -> Filter {
        let mut objects = BTreeSet::new();
        let mut parts = Vec::new();
        for kind in &options.kinds {
            match kind {
                ObjectKind::DataEntity => {
                    objects.insert(Kind::DataEntity);
                }
                ObjectKind::PublicEntity => {
                    objects.insert(Kind::PublicEntity);
                }
                ObjectKind::Enumeration => {
                    objects.insert(Kind::Enumeration);
                }
                ObjectKind::Action => parts.extend([DiffPart::Action, DiffPart::Parameter]),
                ObjectKind::Property => parts.extend([DiffPart::Property, DiffPart::Key]),
            }
        }
        if options.kinds.is_empty() {
            objects.extend(Kind::ALL);
        }
        Filter { objects, parts, only_breaking: options.only_breaking }
    }

    /// Whether objects of `kind` are read at all.
    fn reads(&self, kind: Kind) -> bool {
        self.objects.contains(&kind) || (kind == Kind::PublicEntity && !self.parts.is_empty())
    }

    fn keep(&self, kind: Kind, name: String, change: ChangeKind, mut changes: Vec<FieldChange>) -> Option<ObjectChange> {
        if !self.objects.contains(&kind) {
            // Only parts of it were asked for: a changed entity's changes of those parts.
            changes.retain(|c| self.parts.contains(&c.part));
            if change != ChangeKind::Changed || changes.is_empty() {
                return None;
            }
        }
        if self.only_breaking {
            changes.retain(|c| c.breaking);
        }
        let breaking = change == ChangeKind::Removed || changes.iter().any(|c| c.breaking);
        if self.only_breaking && !breaking {
            return None;
        }
        if change == ChangeKind::Changed && changes.is_empty() {
            // Only unshown fields differ (nothing a reader of the diff can see): not reported.
            return None;
        }
        Some(ObjectChange { kind: kind.object_kind(), name, change, breaking, changes })
    }
}

// ---- comparing two versions of one object ----

fn text(value: &Option<String>) -> Option<String> {
    value.clone()
}

fn flag(value: bool) -> Option<String> {
    Some(value.to_string())
}

/// Changes of fields, each `(field, old, new, breaking)`, where old and new differ.
fn fields(part: DiffPart, name: &str, fields: Vec<(&str, Option<String>, Option<String>, bool)>) -> Vec<FieldChange> {
    fields
        .into_iter()
        .filter(|(_, old, new, _)| old != new)
        .map(|(field, old, new, breaking)| FieldChange {
            part,
            name: name.to_owned(),
            change: ChangeKind::Changed,
            field: Some(field.to_owned()),
            old,
            new,
            breaking,
        })
        .collect()
}

fn added_or_removed(part: DiffPart, name: &str, change: ChangeKind, breaking: bool) -> FieldChange {
    FieldChange { part, name: name.to_owned(), change, field: None, old: None, new: None, breaking }
}

/// Matches items of two lists by name (ignoring case) and reports what was added, removed or
/// changed; `changed` compares two items of one name.
fn by_name<T>(
    part: DiffPart,
    old: &[T],
    new: &[T],
    name: impl Fn(&T) -> &str,
    removed_breaks: bool,
    added_breaks: impl Fn(&T) -> bool,
    changed: impl Fn(&T, &T) -> Vec<FieldChange>,
) -> Vec<FieldChange> {
    let index =
        |items: &[T]| -> BTreeMap<String, usize> { items.iter().enumerate().map(|(i, t)| (name(t).to_ascii_lowercase(), i)).collect() };
    let (old_index, new_index) = (index(old), index(new));
    let mut out = Vec::new();
    for item in old {
        match new_index.get(&name(item).to_ascii_lowercase()) {
            None => out.push(added_or_removed(part, name(item), ChangeKind::Removed, removed_breaks)),
            Some(&j) => out.extend(changed(item, &new[j])),
        }
    }
    for item in new {
        if !old_index.contains_key(&name(item).to_ascii_lowercase()) {
            out.push(added_or_removed(part, name(item), ChangeKind::Added, added_breaks(item)));
        }
    }
    out
}

fn compare(old: &Object, new: &Object) -> Vec<FieldChange> {
    match (old, new) {
        (Object::Data(a), Object::Data(b)) => compare_data_entities(a, b),
        (Object::Public(a), Object::Public(b)) => compare_public_entities(a, b),
        (Object::Enum(a), Object::Enum(b)) => compare_enumerations(a, b),
        _ => Vec::new(),
    }
}

/// True when a flag that allowed something now forbids it.
fn withdrawn(old: bool, new: bool) -> bool {
    old && !new
}

pub fn compare_data_entities(a: &DataEntity, b: &DataEntity) -> Vec<FieldChange> {
    fields(
        DiffPart::Attribute,
        &b.name,
        vec![
            ("public-entity-name", text(&a.public_entity_name), text(&b.public_entity_name), true),
            ("public-collection-name", text(&a.public_collection_name), text(&b.public_collection_name), true),
            ("label-id", text(&a.label_id), text(&b.label_id), false),
            ("category", text(&a.category), text(&b.category), false),
            (
                "data-service-enabled",
                flag(a.data_service_enabled),
                flag(b.data_service_enabled),
                withdrawn(a.data_service_enabled, b.data_service_enabled),
            ),
            (
                "data-management-enabled",
                flag(a.data_management_enabled),
                flag(b.data_management_enabled),
                withdrawn(a.data_management_enabled, b.data_management_enabled),
            ),
            ("is-read-only", flag(a.is_read_only), flag(b.is_read_only), !a.is_read_only && b.is_read_only),
        ],
    )
}

fn key_of(e: &PublicEntity) -> Option<String> {
    let key: Vec<&str> = e.properties.iter().filter(|p| p.is_key).map(|p| p.name.as_str()).collect();
    (!key.is_empty()).then(|| key.join(", "))
}

fn compare_properties(a: &Property, b: &Property) -> Vec<FieldChange> {
    fields(
        DiffPart::Property,
        &b.name,
        vec![
            ("type-name", text(&a.type_name), text(&b.type_name), true),
            ("data-type", text(&a.data_type), text(&b.data_type), true),
            ("label-id", text(&a.label_id), text(&b.label_id), false),
            ("is-mandatory", flag(a.is_mandatory), flag(b.is_mandatory), !a.is_mandatory && b.is_mandatory),
            ("allow-edit", flag(a.allow_edit), flag(b.allow_edit), withdrawn(a.allow_edit, b.allow_edit)),
            (
                "allow-edit-on-create",
                flag(a.allow_edit_on_create),
                flag(b.allow_edit_on_create),
                withdrawn(a.allow_edit_on_create, b.allow_edit_on_create),
            ),
            ("configuration-enabled", flag(a.configuration_enabled), flag(b.configuration_enabled), false),
            ("is-dimension", flag(a.is_dimension), flag(b.is_dimension), false),
            ("dimension-relation", text(&a.dimension_relation), text(&b.dimension_relation), false),
            ("is-dynamic-dimension", flag(a.is_dynamic_dimension), flag(b.is_dynamic_dimension), false),
            ("dimension-legal-entity-property", text(&a.dimension_legal_entity_property), text(&b.dimension_legal_entity_property), false),
            ("dimension-type-property", text(&a.dimension_type_property), text(&b.dimension_type_property), false),
        ],
    )
}

fn value_text(value: Option<i64>, value_str: &Option<String>) -> String {
    match (value, value_str) {
        (_, Some(s)) => format!("{s:?}"),
        (Some(v), None) => v.to_string(),
        (None, None) => "none".to_owned(),
    }
}

fn constraint_text(c: &Constraint) -> String {
    let name = |n: &Option<String>| n.clone().unwrap_or_else(|| "?".to_owned());
    match c {
        Constraint::Referential(r) => format!("{} = {}", name(&r.property), name(&r.referenced_property)),
        Constraint::Fixed(f) => format!("{} = {}", name(&f.property), value_text(f.value, &f.value_str)),
        Constraint::RelatedFixed(f) => format!("related {} = {}", name(&f.related_property), value_text(f.value, &f.value_str)),
        Constraint::Unknown(u) => format!("{} ({})", u.odata_type, name(&u.property)),
    }
}

fn constraints_text(n: &NavigationProperty) -> Option<String> {
    (!n.constraints.is_empty()).then(|| n.constraints.iter().map(constraint_text).collect::<Vec<_>>().join(", "))
}

fn compare_navigation(a: &NavigationProperty, b: &NavigationProperty) -> Vec<FieldChange> {
    let mut out = fields(
        DiffPart::NavigationProperty,
        &b.name,
        vec![
            ("related-entity", text(&a.related_entity), text(&b.related_entity), true),
            ("related-relation-name", text(&a.related_relation_name), text(&b.related_relation_name), false),
            ("cardinality", text(&a.cardinality), text(&b.cardinality), true),
        ],
    );
    out.extend(fields(DiffPart::Constraint, &b.name, vec![("constraints", constraints_text(a), constraints_text(b), false)]));
    out
}

fn return_text(a: &Action) -> Option<String> {
    a.return_type.as_ref().map(|t| format!("{}{}", t.type_name.as_deref().unwrap_or("?"), if t.is_collection { "[]" } else { "" }))
}

fn parameter_type(p: &ActionParameter) -> Option<String> {
    Some(format!("{}{}", p.type_name.as_deref().unwrap_or("?"), if p.is_collection { "[]" } else { "" }))
}

fn compare_actions(a: &Action, b: &Action) -> Vec<FieldChange> {
    let mut out = fields(
        DiffPart::Action,
        &b.name,
        vec![
            ("binding-kind", text(&a.binding_kind), text(&b.binding_kind), true),
            ("field-lookup", text(&a.field_lookup), text(&b.field_lookup), false),
            ("return-type", return_text(a), return_text(b), true),
        ],
    );
    let mut parameters = by_name(
        DiffPart::Parameter,
        &a.parameters,
        &b.parameters,
        |p| p.name.as_str(),
        true,
        |_| true,
        |x, y| fields(DiffPart::Parameter, &y.name, vec![("type-name", parameter_type(x), parameter_type(y), true)]),
    );
    for change in &mut parameters {
        change.name = format!("{}.{}", b.name, change.name);
    }
    out.extend(parameters);
    out
}

pub fn compare_public_entities(a: &PublicEntity, b: &PublicEntity) -> Vec<FieldChange> {
    let mut out = fields(
        DiffPart::Attribute,
        &b.name,
        vec![
            ("entity-set-name", text(&a.entity_set_name), text(&b.entity_set_name), true),
            ("label-id", text(&a.label_id), text(&b.label_id), false),
            ("is-read-only", flag(a.is_read_only), flag(b.is_read_only), !a.is_read_only && b.is_read_only),
            ("configuration-enabled", flag(a.configuration_enabled), flag(b.configuration_enabled), false),
        ],
    );
    out.extend(fields(DiffPart::Key, &b.name, vec![("key", key_of(a), key_of(b), true)]));
    out.extend(by_name(
        DiffPart::Property,
        &a.properties,
        &b.properties,
        |p| p.name.as_str(),
        true,
        |p| p.is_mandatory,
        compare_properties,
    ));
    out.extend(by_name(
        DiffPart::NavigationProperty,
        &a.navigation_properties,
        &b.navigation_properties,
        |n| n.name.as_str(),
        true,
        |_| false,
        compare_navigation,
    ));
    let members = |g: &PropertyGroup| Some(g.properties.join(", "));
    out.extend(by_name(
        DiffPart::PropertyGroup,
        &a.property_groups,
        &b.property_groups,
        |g| g.name.as_str(),
        false,
        |_| false,
        |x, y| fields(DiffPart::PropertyGroup, &y.name, vec![("properties", members(x), members(y), false)]),
    ));
    out.extend(by_name(DiffPart::Action, &a.actions, &b.actions, |x| x.name.as_str(), true, |_| false, compare_actions));
    out
}

pub fn compare_enumerations(a: &Enumeration, b: &Enumeration) -> Vec<FieldChange> {
    let mut out = fields(DiffPart::Attribute, &b.name, vec![("label-id", text(&a.label_id), text(&b.label_id), false)]);
    out.extend(by_name(
        DiffPart::Member,
        &a.members,
        &b.members,
        |m| m.name.as_str(),
        true,
        |_| false,
        |x, y| {
            fields(
                DiffPart::Member,
                &y.name,
                vec![
                    ("value", Some(x.value.to_string()), Some(y.value.to_string()), true),
                    ("label-id", text(&x.label_id), text(&y.label_id), false),
                    ("configuration-enabled", flag(x.configuration_enabled), flag(y.configuration_enabled), false),
                ],
            )
        },
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn property(name: &str, key: bool) -> Property {
        Property {
            label: None,
            name: name.into(),
            type_name: Some("Edm.String".into()),
            data_type: Some("String".into()),
            label_id: None,
            is_key: key,
            is_mandatory: false,
            configuration_enabled: true,
            allow_edit: true,
            allow_edit_on_create: true,
            is_dimension: false,
            dimension_relation: None,
            is_dynamic_dimension: false,
            dimension_legal_entity_property: None,
            dimension_type_property: None,
        }
    }

    fn entity(properties: Vec<Property>) -> PublicEntity {
        PublicEntity {
            label: None,
            name: "CustomerV3".into(),
            entity_set_name: Some("CustomersV3".into()),
            label_id: None,
            is_read_only: false,
            configuration_enabled: true,
            properties,
            navigation_properties: vec![],
            property_groups: vec![],
            actions: vec![],
        }
    }

    fn summary(changes: &[FieldChange]) -> Vec<String> {
        changes
            .iter()
            .map(|c| {
                let debug = format!("{:?} {} {:?} {} {}", c.part, c.name, c.change, c.field.as_deref().unwrap_or("-"), c.breaking);
                debug.replace("DiffPart::", "").replace("ChangeKind::", "")
            })
            .collect()
    }

    #[test]
    fn fingerprints_choose_the_keys_and_what_the_other_side_lacks() {
        let old = entity(vec![property("Id", true), property("Name", false), property("Moved", false), property("Gone", false)]);
        let mut retyped = property("Name", false);
        retyped.type_name = Some("Edm.Guid".into());
        let new = entity(vec![property("Id", true), property("Moved", false), retyped, property("Added", false)]);
        let (of_old, of_new) = (Fingerprints::of(&old), Fingerprints::of(&new));
        let (of_old, of_new) = (Fingerprints::parse(&of_old).unwrap(), Fingerprints::parse(&of_new).unwrap());
        // The key always; a property moved but equal never; the changed, removed and added ones.
        assert_eq!(of_old.properties_unlike(&of_new), [0, 1, 3]);
        assert_eq!(of_new.properties_unlike(&of_old), [0, 2, 3]);
        assert_eq!(of_old.navigation_properties, of_new.navigation_properties);
        assert!(Fingerprints::parse(&[0; 25]).is_none(), "a blob of the wrong length is not read");
    }

    #[test]
    fn equal_entities_have_no_changes() {
        let e = entity(vec![property("dataAreaId", true), property("Name", false)]);
        assert!(compare_public_entities(&e, &e.clone()).is_empty());
    }

    #[test]
    fn what_breaks_an_integration_is_marked() {
        let old = entity(vec![property("dataAreaId", true), property("Name", false), property("Phone", false), property("Notes", false)]);
        let mut new = old.clone();
        new.properties.retain(|p| p.name != "Phone");
        new.properties[1].is_mandatory = true;
        new.properties[2].label_id = Some("@SYS1".into());
        let mut optional = property("Optional", false);
        optional.allow_edit = false;
        new.properties.push(optional);
        let mut required = property("Required", false);
        required.is_mandatory = true;
        new.properties.push(required);
        new.entity_set_name = Some("CustomersV4".into());
        assert_eq!(
            summary(&compare_public_entities(&old, &new)),
            [
                "Attribute CustomerV3 Changed entity-set-name true",
                "Property Name Changed is-mandatory true",
                "Property Phone Removed - true",
                "Property Notes Changed label-id false",
                "Property Optional Added - false",
                "Property Required Added - true",
            ]
        );
        // Made optional again, or editable again: nothing breaks.
        let back = compare_public_entities(&new, &old);
        assert!(back.iter().any(|c| c.name == "Name" && c.field.as_deref() == Some("is-mandatory") && !c.breaking));
        assert!(back.iter().any(|c| c.name == "Optional" && c.change == ChangeKind::Removed && c.breaking));
    }

    #[test]
    fn a_key_change_is_one_change_of_the_key() {
        let old = entity(vec![property("dataAreaId", true), property("CustomerAccount", false)]);
        let mut new = old.clone();
        new.properties[1].is_key = true;
        let changes = compare_public_entities(&old, &new);
        assert_eq!(summary(&changes), ["Key CustomerV3 Changed key true"]);
        assert_eq!(changes[0].old.as_deref(), Some("dataAreaId"));
        assert_eq!(changes[0].new.as_deref(), Some("dataAreaId, CustomerAccount"));
    }

    #[test]
    fn enumeration_members_removed_or_revalued_break() {
        let member =
            |name: &str, value: i64| EnumMember { label: None, name: name.into(), value, label_id: None, configuration_enabled: true };
        let old = Enumeration { label: None, name: "NoYes".into(), label_id: None, members: vec![member("No", 0), member("Yes", 1)] };
        let new = Enumeration { members: vec![member("No", 0), member("Yes", 2), member("Maybe", 3)], ..old.clone() };
        assert_eq!(summary(&compare_enumerations(&old, &new)), ["Member Yes Changed value true", "Member Maybe Added - false"]);
        assert_eq!(summary(&compare_enumerations(&new, &old)), ["Member Yes Changed value true", "Member Maybe Removed - true"]);
    }
}
