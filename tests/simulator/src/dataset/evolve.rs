//! A newer version of an environment: what an update of a few modules does to the metadata.

use super::Dataset;
use super::actions::{candidate_names, random_action};
use super::labels::shared_id;
use super::modules::{bump_version, module_and_version};
use super::names::{label_text, next_version};
use super::properties::{infer_type, odata_type};
use crate::model::{Cardinality, DataEntity, EnumerationMember, Property, PublicEntity};
use crate::rng::{Rng, hash};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};

/// What [`Dataset::evolve`] changed. Every list is sorted; any object not named here serialises
/// exactly as before, and so does every label text of an id not in `added_label_ids`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Evolution {
    pub changed_public_entities: Vec<String>,
    pub added_public_entities: Vec<String>,
    pub removed_public_entities: Vec<String>,
    pub changed_enumerations: Vec<String>,
    pub changed_data_entities: Vec<String>,
    pub added_data_entities: Vec<String>,
    pub removed_data_entities: Vec<String>,
    /// Module ids whose version changed.
    pub bumped_modules: Vec<String>,
    pub added_label_ids: Vec<String>,
}

/// Entities tests rely on; an update never removes them.
const KEPT: &[&str] = &["CustomerV3", "CustomerGroup"];
const NEW_FIELD_HEADS: &[&str] = &["Carbon", "Compliance", "External", "Approval", "Sustainability", "Tracking", "Integration", "Esg"];
const NEW_FIELD_TAILS: &[&str] = &["Code", "Reference", "Date", "Amount", "Status", "Notes", "Id", "Percentage"];
const NEW_MEMBERS: &[&str] = &["NotApplicable", "Pending", "Archived", "OnHold", "Other", "Deferred", "Simulated"];

struct Evolver<'a> {
    next: Dataset,
    rng: Rng,
    taken_ids: BTreeSet<String>,
    new_labels: Vec<(String, String)>,
    enum_names: HashSet<String>,
    languages: &'a [String],
}

impl Evolver<'_> {
    /// Registers a label id no version of this environment has used yet.
    fn new_label(&mut self, preferred: Option<String>, text: &str) -> String {
        let id = match preferred.filter(|p| !self.taken_ids.contains(p)) {
            Some(id) => id,
            None => loop {
                let candidate = format!("@SYS{}", 400_000 + self.rng.below(100_000));
                if !self.taken_ids.contains(&candidate) {
                    break candidate;
                }
            },
        };
        self.taken_ids.insert(id.clone());
        self.new_labels.push((id.clone(), text.to_string()));
        id
    }

    fn add_property(&mut self, entity: usize) {
        let e = &self.next.public_entities[entity];
        let existing: HashSet<&str> = e.properties.iter().map(|p| p.name.as_str()).collect();
        let name = (0..100)
            .map(|_| format!("{}{}", self.rng.pick(NEW_FIELD_HEADS), self.rng.pick(NEW_FIELD_TAILS)))
            .find(|candidate| !existing.contains(candidate.as_str()))
            .unwrap_or_else(|| format!("ExtensionField{}", e.properties.len()));
        let file = e.label_id.strip_prefix('@').and_then(|l| l.split_once(':')).map_or("ApplicationSuite", |(f, _)| f);
        let preferred = format!("@{file}:{}_{name}", e.name);
        let editable = !e.is_read_only;
        let enum_names: HashSet<&str> = self.enum_names.iter().map(String::as_str).collect();
        let (type_name, data_type) = odata_type(&infer_type(&name, &enum_names));
        let label_id = self.new_label(Some(preferred), &label_text(&name));
        self.next.public_entities[entity].properties.push(Property {
            name,
            type_name,
            data_type,
            label_id,
            is_key: false,
            is_mandatory: false,
            configuration_enabled: true,
            allow_edit: editable,
            allow_edit_on_create: editable,
            is_dimension: false,
            dimension_relation: None,
            is_dynamic_dimension: false,
            dimension_legal_entity_property: None,
            dimension_type_property: None,
        });
    }

    /// Gives a property a new label id; false when the entity has no such property.
    fn relabel_property(&mut self, entity: usize) -> bool {
        let candidates: Vec<usize> = self.next.public_entities[entity]
            .properties
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.is_key && p.label_id.starts_with('@'))
            .map(|(i, _)| i)
            .collect();
        if candidates.is_empty() {
            return false;
        }
        let i = *self.rng.pick(&candidates);
        let p = &self.next.public_entities[entity].properties[i];
        let text = match self.next.labels.get(&p.label_id, super::labels::EN_US) {
            Some(old) => format!("{old} (revised)"),
            None => label_text(&p.name),
        };
        let id = self.new_label(None, &text);
        self.next.public_entities[entity].properties[i].label_id = id;
        true
    }

    /// Adds an action the entity does not have yet; false when it has them all.
    fn add_action(&mut self, entity: usize) -> bool {
        let e = &self.next.public_entities[entity];
        let free: Vec<_> = candidate_names().filter(|(n, _)| !e.actions.iter().any(|a| a.name == *n)).collect();
        if free.is_empty() {
            return false;
        }
        let (name, kind) = *self.rng.pick(&free);
        let action = random_action(&mut self.rng, name, kind, &e.name);
        self.next.public_entities[entity].actions.push(action);
        true
    }

    fn toggle_mandatory(&mut self, entity: usize) -> bool {
        let e = &mut self.next.public_entities[entity];
        let candidates: Vec<usize> = (0..e.properties.len()).filter(|&i| !e.properties[i].is_key).collect();
        if candidates.is_empty() {
            return false;
        }
        let i = candidates[self.rng.below(candidates.len())];
        e.properties[i].is_mandatory = !e.properties[i].is_mandatory;
        true
    }

    fn change_public_entity(&mut self, entity: usize) {
        let before = self.next.public_entities[entity].clone();
        for _ in 0..self.rng.between(1, 2) {
            let changed = match self.rng.below(4) {
                0 => self.relabel_property(entity),
                1 => self.add_action(entity),
                2 => self.toggle_mandatory(entity),
                _ => false,
            };
            if !changed {
                self.add_property(entity);
            }
        }
        // Two changes can cancel out (a flag set and reset); the entity must differ all the same.
        if self.next.public_entities[entity] == before {
            self.add_property(entity);
        }
    }

    /// `count` distinct indices of `0..len`.
    fn distinct(&mut self, len: usize, count: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..len).collect();
        let count = count.min(len);
        for i in 0..count {
            let j = i + self.rng.below(len - i);
            order.swap(i, j);
        }
        order.truncate(count);
        order
    }

    /// The next version of `base`, as a new data entity and public entity; None if that name is taken.
    fn add_version_of(&mut self, base: &PublicEntity) -> Option<(DataEntity, PublicEntity)> {
        let name = next_version(&base.name);
        let set = next_version(&base.entity_set_name);
        let data = self.next.data_entities.iter().find(|d| d.public_entity_name == base.name && d.data_service_enabled)?.clone();
        let data_name = match data.name.strip_suffix("Entity") {
            Some(stem) => format!("{}Entity", next_version(stem)),
            None => next_version(&data.name),
        };
        let taken = self.next.public_entities.iter().any(|e| e.name == name || e.entity_set_name == set)
            || self.next.data_entities.iter().any(|d| d.name == data_name || d.public_entity_name == name);
        if taken {
            return None;
        }
        let file = base.label_id.strip_prefix('@').and_then(|l| l.split_once(':')).map_or("ApplicationSuite", |(f, _)| f);
        let label_id = self.new_label(Some(format!("@{file}:{set}")), &label_text(&set));
        let mut entity = base.clone();
        entity.name = name.clone();
        entity.entity_set_name = set.clone();
        entity.label_id = label_id.clone();
        // Only the way out: the related entities do not know the new one yet.
        entity.navigation_properties.retain(|n| n.cardinality == Cardinality::Single);
        for n in &mut entity.navigation_properties {
            n.related_relation_name = None;
        }
        let data_entity = DataEntity { name: data_name, public_entity_name: name, public_collection_name: set, label_id, ..data };
        Some((data_entity, entity))
    }
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names.dedup();
    names
}

pub(crate) fn evolve(old: &Dataset, seed: u64, changes: usize) -> (Dataset, Evolution) {
    let mut taken_ids = old.label_ids();
    taken_ids.extend(old.labels.ids().map(str::to_string));
    let mut ev = Evolver {
        next: old.clone(),
        rng: Rng::new(seed ^ hash(&["evolve"])),
        taken_ids,
        new_labels: Vec::new(),
        enum_names: old.enumerations.iter().map(|e| e.name.clone()).collect(),
        languages: &old.languages,
    };
    let mut report = Evolution::default();
    let mut changed: BTreeSet<String> = BTreeSet::new();

    // Removed: entities nothing navigates to, so the removal touches nothing else if possible.
    let incoming: HashSet<&str> = old
        .public_entities
        .iter()
        .flat_map(|e| e.navigation_properties.iter().filter(move |n| n.related_entity != e.name))
        .map(|n| n.related_entity.as_str())
        .collect();
    let mut removable: Vec<&str> =
        old.public_entities.iter().map(|e| e.name.as_str()).filter(|n| !KEPT.contains(n) && !incoming.contains(n)).collect();
    if removable.is_empty() {
        removable = old.public_entities.iter().map(|e| e.name.as_str()).filter(|n| !KEPT.contains(n)).collect();
    }
    let remove_count = ev.rng.between(1, 2).min(removable.len());
    for _ in 0..remove_count {
        let i = ev.rng.below(removable.len());
        let name = removable.swap_remove(i).to_string();
        ev.next.public_entities.retain(|e| e.name != name);
        if let Some(d) = ev.next.data_entities.iter().find(|d| d.public_entity_name == name && d.data_service_enabled) {
            report.removed_data_entities.push(d.name.clone());
        }
        ev.next.data_entities.retain(|d| !(d.public_entity_name == name && d.data_service_enabled));
        for e in &mut ev.next.public_entities {
            let before = e.navigation_properties.len();
            e.navigation_properties.retain(|n| n.related_entity != name);
            if e.navigation_properties.len() != before {
                changed.insert(e.name.clone());
            }
        }
        report.removed_public_entities.push(name);
    }

    // Changed.
    for i in ev.distinct(ev.next.public_entities.len(), changes) {
        ev.change_public_entity(i);
        changed.insert(ev.next.public_entities[i].name.clone());
    }

    // Added: later versions of existing entities, as F&O updates bring them.
    let add_count = ev.rng.between(1, 2);
    let mut attempts = 0;
    while report.added_public_entities.len() < add_count && attempts < 50 && !ev.next.public_entities.is_empty() {
        attempts += 1;
        let base = ev.next.public_entities[ev.rng.below(ev.next.public_entities.len())].clone();
        if changed.contains(&base.name) {
            continue;
        }
        if let Some((data, entity)) = ev.add_version_of(&base) {
            report.added_data_entities.push(data.name.clone());
            report.added_public_entities.push(entity.name.clone());
            let at = ev.next.data_entities.partition_point(|d| d.name < data.name);
            ev.next.data_entities.insert(at, data);
            let at = ev.next.public_entities.partition_point(|e| e.name < entity.name);
            ev.next.public_entities.insert(at, entity);
        }
    }

    // Enumerations gain a member.
    let candidates: Vec<usize> = (0..ev.next.enumerations.len()).filter(|&i| ev.next.enumerations[i].name != "NoYes").collect();
    for c in ev.distinct(candidates.len(), 2) {
        let i = candidates[c];
        let members = &ev.next.enumerations[i].members;
        let Some(member) = NEW_MEMBERS.iter().find(|m| !members.iter().any(|x| x.name == **m)) else {
            continue;
        };
        let value = members.iter().map(|m| m.value).max().unwrap_or(-1) + 1;
        let shared = shared_id(member);
        let label_id = if ev.next.labels.contains_id(&shared) { shared } else { ev.new_label(Some(shared), &label_text(member)) };
        let new_member = EnumerationMember { name: member.to_string(), value, label_id, configuration_enabled: true };
        ev.next.enumerations[i].members.push(new_member);
        report.changed_enumerations.push(ev.next.enumerations[i].name.clone());
    }

    // Data entities: data management switched on or off for a couple of them.
    let untouched: Vec<usize> = (0..ev.next.data_entities.len())
        .filter(|&i| {
            let d = &ev.next.data_entities[i];
            !report.added_data_entities.contains(&d.name)
        })
        .collect();
    for c in ev.distinct(untouched.len(), 2) {
        let i = untouched[c];
        let d = &mut ev.next.data_entities[i];
        d.data_management_enabled = !d.data_management_enabled;
        report.changed_data_entities.push(d.name.clone());
    }

    // Modules: a few get a new build. Models that always report 1.0.0.0 keep it, as they do.
    let bumpable: Vec<usize> =
        (0..ev.next.modules.len()).filter(|&i| module_and_version(&ev.next.modules[i]).is_some_and(|(_, v)| v != "1.0.0.0")).collect();
    for c in ev.distinct(bumpable.len(), 3) {
        let i = bumpable[c];
        let line = ev.next.modules[i].clone();
        if let Some((module, version)) = module_and_version(&line) {
            ev.next.modules[i] = line.replacen(&format!("Version: {version} |"), &format!("Version: {} |", bump_version(version)), 1);
            report.bumped_modules.push(module.to_string());
        }
    }

    for (id, text) in std::mem::take(&mut ev.new_labels) {
        ev.next.labels.add_with_translations(&id, &text, ev.languages);
        report.added_label_ids.push(id);
    }
    let added: BTreeSet<&String> = report.added_public_entities.iter().collect();
    report.changed_public_entities = changed.into_iter().filter(|n| !added.contains(n)).collect();
    for list in [
        &mut report.added_public_entities,
        &mut report.removed_public_entities,
        &mut report.changed_enumerations,
        &mut report.changed_data_entities,
        &mut report.added_data_entities,
        &mut report.removed_data_entities,
        &mut report.bumped_modules,
        &mut report.added_label_ids,
    ] {
        *list = sorted(std::mem::take(list));
    }
    (ev.next, report)
}
