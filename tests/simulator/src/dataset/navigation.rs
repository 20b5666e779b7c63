//! Navigation properties between the public entities of a dataset.
//!
//! Forward navigations come from the CDM relationships, and from foreign keys: a property named
//! like the single key of another entity (`CustomerGroupId` → `CustomerGroup`). Each forward
//! navigation gets its way back on the related entity (`CustomerGroup.Customers`), up to a limit
//! per entity, as F&O's popular entities would otherwise carry hundreds.

use super::enums::EnumSpec;
use super::names::split_version;
use super::properties::DATA_AREA_ID;
use crate::model::{Cardinality, Constraint, DataType, NavigationProperty, PublicEntity, TYPE_NAMESPACE};
use crate::rng::Rng;
use std::collections::{HashMap, HashSet};

const MAX_FOREIGN_KEY_NAVIGATIONS: usize = 8;
const MAX_REVERSE_NAVIGATIONS: usize = 30;
const KEY_SUFFIXES: &[&str] = &["Id", "Code", "Account", "Number", "Num"];

/// What navigation needs to know of one public entity.
pub(crate) struct Node<'a> {
    pub entity: &'a mut PublicEntity,
    pub data_entity: &'a str,
    pub keys: &'a [String],
    pub company: bool,
    /// (navigation name, related data entity) from the corpus.
    pub relations: &'a [(String, String)],
    /// A later version made up from a real entity, rather than a real entity.
    pub generated: bool,
}

struct Forward {
    from: usize,
    to: usize,
    name: String,
    constraints: Vec<Constraint>,
}

/// `base`, or when a property or navigation already has that name, `<base>Nav`, `<base>Nav2`…
fn unique_name(base: &str, used: &mut HashSet<String>) -> String {
    if used.insert(base.to_string()) {
        return base.to_string();
    }
    std::iter::once(format!("{base}Nav"))
        .chain((2..).map(|n| format!("{base}Nav{n}")))
        .find(|candidate| used.insert(candidate.clone()))
        .unwrap_or_default()
}

fn has(entity: &PublicEntity, name: &str) -> bool {
    entity.properties.iter().any(|p| p.name == name)
}

fn non_company_keys(keys: &[String]) -> impl Iterator<Item = &String> {
    keys.iter().filter(|k| *k != DATA_AREA_ID)
}

/// Referential constraints from `from` to `to`: the company, then each key of `to` that `from`
/// holds under the same name.
fn referential(from: &Node, to: &Node, foreign_key: Option<(&str, &str)>) -> Vec<Constraint> {
    let mut constraints = Vec::new();
    let mut push = |property: &str, referenced: &str| {
        constraints.push(Constraint::Referential { property: property.to_string(), referenced_property: referenced.to_string() });
    };
    if from.company && to.company && has(from.entity, DATA_AREA_ID) && has(to.entity, DATA_AREA_ID) {
        push(DATA_AREA_ID, DATA_AREA_ID);
    }
    if let Some((property, key)) = foreign_key {
        push(property, key);
        return constraints;
    }
    for key in non_company_keys(to.keys).filter(|k| has(from.entity, k)) {
        push(key, key);
    }
    constraints
}

/// A fixed constraint on an enumeration property of `entity`, if it has one.
fn fixed_on(entity: &PublicEntity, enums: &HashMap<&str, &EnumSpec>, rng: &mut Rng) -> Option<(String, i64, String)> {
    let candidates: Vec<_> = entity.properties.iter().filter(|p| p.data_type == DataType::Enum && !p.is_key).collect();
    if candidates.is_empty() {
        return None;
    }
    let p = rng.pick(&candidates);
    let spec = enums.get(p.type_name.strip_prefix(TYPE_NAMESPACE)?.strip_prefix('.')?)?;
    let (member, value) = rng.pick(&spec.members);
    Some((p.name.clone(), *value, member.clone()))
}

/// The entity a foreign key property leads to: entities with that single key, preferring one
/// named like the key (`CustomerGroup` for `CustomerGroupId`), then a real one, then the latest
/// version.
fn foreign_key_index(nodes: &[Node]) -> HashMap<String, usize> {
    let mut candidates: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        let keys: Vec<&String> = non_company_keys(n.keys).collect();
        if let [key] = keys[..]
            && key.len() >= 6
            && KEY_SUFFIXES.iter().any(|s| key.ends_with(s))
        {
            candidates.entry(key.as_str()).or_default().push(i);
        }
    }
    let mut index = HashMap::new();
    for (key, mut entities) in candidates {
        let score = |i: &usize| {
            let (stem, version) = split_version(&nodes[*i].entity.name);
            let n = &nodes[*i];
            (!key.starts_with(stem), n.generated, std::cmp::Reverse(version.unwrap_or(1)), n.entity.name.len(), n.entity.name.clone())
        };
        entities.sort_by_key(score);
        let chosen = entities[0];
        if entities.len() == 1 || key.starts_with(split_version(&nodes[chosen].entity.name).0) {
            index.insert(key.to_string(), chosen);
        }
    }
    index
}

pub(crate) fn build(nodes: &mut [Node], enums: &HashMap<&str, &EnumSpec>) {
    let by_data_entity: HashMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (n.data_entity, i)).collect();
    let foreign_keys = foreign_key_index(nodes);
    let mut used: Vec<HashSet<String>> = nodes.iter().map(|n| n.entity.properties.iter().map(|p| p.name.clone()).collect()).collect();
    let mut forwards: Vec<Forward> = Vec::new();
    for from in 0..nodes.len() {
        let mut targets: Vec<usize> = Vec::new();
        for (name, related) in nodes[from].relations {
            let Some(&to) = by_data_entity.get(related.as_str()) else {
                continue;
            };
            if to == from || targets.contains(&to) {
                continue;
            }
            targets.push(to);
            let constraints = referential(&nodes[from], &nodes[to], None);
            forwards.push(Forward { from, to, name: unique_name(name, &mut used[from]), constraints });
        }
        let mut inferred = 0;
        for p in 0..nodes[from].entity.properties.len() {
            let property = &nodes[from].entity.properties[p].name;
            let Some(&to) = foreign_keys.get(property) else {
                continue;
            };
            // Versions of one entity share their key but do not navigate to each other.
            let same_family = split_version(&nodes[to].entity.name).0 == split_version(&nodes[from].entity.name).0;
            if to == from || same_family || targets.contains(&to) || inferred == MAX_FOREIGN_KEY_NAVIGATIONS {
                continue;
            }
            targets.push(to);
            inferred += 1;
            let constraints = referential(&nodes[from], &nodes[to], Some((property, property)));
            let name = unique_name(&nodes[to].entity.name.clone(), &mut used[from]);
            forwards.push(Forward { from, to, name, constraints });
        }
    }
    // Fixed constraints narrow a few navigations to one value of an enumeration field.
    for f in &mut forwards {
        let mut rng = Rng::from_parts(&["fixed-constraint", &nodes[f.from].entity.name, &f.name]);
        if rng.chance(0.08)
            && let Some((property, value, value_str)) = fixed_on(nodes[f.from].entity, enums, &mut rng)
        {
            f.constraints.push(Constraint::Fixed { property, value, value_str });
        } else if rng.chance(0.04)
            && let Some((related_property, value, value_str)) = fixed_on(nodes[f.to].entity, enums, &mut rng)
        {
            f.constraints.push(Constraint::RelatedFixed { related_property, value, value_str });
        }
    }
    let mut reverse_count = vec![0usize; nodes.len()];
    let mut reverses: Vec<(usize, NavigationProperty)> = Vec::new();
    for f in &forwards {
        let back = if reverse_count[f.to] < MAX_REVERSE_NAVIGATIONS {
            reverse_count[f.to] += 1;
            let name = unique_name(&nodes[f.from].entity.entity_set_name.clone(), &mut used[f.to]);
            let constraints = f
                .constraints
                .iter()
                .filter_map(|c| match c {
                    Constraint::Referential { property, referenced_property } => {
                        Some(Constraint::Referential { property: referenced_property.clone(), referenced_property: property.clone() })
                    }
                    _ => None,
                })
                .collect();
            reverses.push((
                f.to,
                NavigationProperty {
                    name: name.clone(),
                    related_entity: nodes[f.from].entity.name.clone(),
                    related_relation_name: Some(f.name.clone()),
                    cardinality: Cardinality::Multiple,
                    constraints,
                },
            ));
            Some(name)
        } else {
            None
        };
        let related_entity = nodes[f.to].entity.name.clone();
        nodes[f.from].entity.navigation_properties.push(NavigationProperty {
            name: f.name.clone(),
            related_entity,
            related_relation_name: back,
            cardinality: Cardinality::Single,
            constraints: f.constraints.clone(),
        });
    }
    for (to, nav) in reverses {
        nodes[to].entity.navigation_properties.push(nav);
    }
}
