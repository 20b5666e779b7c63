//! Putting a dataset together: which entities, their public entities, enumerations, labels and
//! modules, for one scale.

use super::corpus::{Corpus, corpus};
use super::enums::{self, EnumSpec};
use super::labels::{EN_US, LabelBook, entity_id, shared_id};
use super::modules::{APPLICATION_VERSION, PLATFORM_VERSION, module_lines};
use super::names::label_text;
use super::navigation::{self, Node};
use super::universe::{self, Origin, Seed};
use super::{Dataset, Scale, actions, groups, properties};
use crate::model::{DataEntity, DataType, EntityCategory, Enumeration, EnumerationMember, PublicEntity, TYPE_NAMESPACE};
use crate::rng::unit;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

struct Targets {
    data_entities: usize,
    public_entities: usize,
    enumerations: usize,
    modules: usize,
    languages: &'static [&'static str],
}

impl Targets {
    fn of(scale: Scale) -> Targets {
        match scale {
            Scale::Tiny => Targets { data_entities: 20, public_entities: 12, enumerations: 8, modules: 6, languages: &[EN_US, "de"] },
            Scale::Small => {
                Targets { data_entities: 300, public_entities: 200, enumerations: 80, modules: 30, languages: &[EN_US, "de", "fr"] }
            }
            Scale::Full => {
                Targets { data_entities: 5000, public_entities: 4000, enumerations: 1000, modules: 200, languages: &[EN_US, "de", "fr"] }
            }
        }
    }
}

/// The category F&O gives entities of this kind, judged from the name as a person would.
fn category(name: &str) -> Option<EntityCategory> {
    if unit(&["category", name]) < 0.03 {
        return None;
    }
    let has = |words: &[&str]| words.iter().any(|w| name.contains(w));
    Some(if has(&["Parameter"]) {
        EntityCategory::Parameters
    } else if has(&["Setup", "Config", "Profile", "Rule", "Policy", "Template", "Settings"]) {
        EntityCategory::Configuration
    } else if has(&["Header", "Document", "Invoice", "Confirmation", "Receipt", "Statement"]) {
        EntityCategory::Document
    } else if has(&["Journal", "Trans", "Line", "Order", "Posting", "Settlement", "Voucher", "Balance"]) {
        EntityCategory::Transaction
    } else if has(&["Group", "Type", "Code", "Reason", "Category", "Term", "Method", "Unit", "Currency", "Calendar"]) {
        EntityCategory::Reference
    } else {
        EntityCategory::Master
    })
}

fn is_read_only(name: &str) -> bool {
    name.contains("ReadOnly") || name.contains("OnHand") || unit(&["read-only", name]) < 0.04
}

fn entity_label(book: &mut LabelBook, seed: &Seed) -> String {
    if seed.public_name == "CustomerV3" {
        return book.well_known("@AccountsReceivable:CustomersV3", "Customers V3");
    }
    let text = seed.display.clone().unwrap_or_else(|| label_text(&seed.collection));
    let id = entity_id(&seed.label_file, &seed.collection);
    book.reference(&id, &text, seed.display.is_some(), &["literal-entity", &seed.name])
}

fn enumeration(spec: &EnumSpec, book: &mut LabelBook) -> Enumeration {
    let label_id = if spec.name == "NoYes" {
        book.well_known("@SYS2048", "No/Yes")
    } else {
        book.reference(&shared_id(&spec.name), &label_text(&spec.name), false, &["literal-enum", &spec.name])
    };
    let members = spec
        .members
        .iter()
        .map(|(name, value)| {
            let label_id = match name.as_str() {
                "No" => book.well_known("@SYS1960", "No"),
                "Yes" => book.well_known("@SYS1961", "Yes"),
                _ => book.reference(&shared_id(name), &label_text(name), false, &["literal-member", &spec.name, name]),
            };
            EnumerationMember {
                name: name.clone(),
                value: *value,
                label_id,
                configuration_enabled: spec.name == "NoYes" || unit(&["member-config", &spec.name, name]) < 0.97,
            }
        })
        .collect();
    Enumeration { name: spec.name.clone(), label_id, members }
}

/// What a public entity is built from, kept until navigation is done.
struct Draft {
    seed: usize,
    entity: PublicEntity,
    keys: Vec<String>,
}

fn public_entity(
    index: usize,
    universe: &[Seed],
    corpus: &'static Corpus,
    enum_names: &HashSet<&str>,
    label_id: String,
    book: &mut LabelBook,
) -> Draft {
    let seed = &universe[index];
    let read_only = is_read_only(&seed.name);
    let (properties, keys) = properties::build(index, universe, corpus, enum_names, read_only, book);
    let entity = PublicEntity {
        name: seed.public_name.clone(),
        entity_set_name: seed.collection.clone(),
        label_id,
        is_read_only: read_only,
        configuration_enabled: unit(&["entity-config", &seed.name]) < 0.97,
        properties,
        navigation_properties: Vec::new(),
        property_groups: Vec::new(),
        actions: Vec::new(),
    };
    Draft { seed: index, entity, keys }
}

/// Enumeration types of properties whose enumeration the dataset does not hold become strings.
fn count_and_prune_enum_types(drafts: &mut [Draft], kept: Option<&HashSet<&str>>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for d in drafts.iter_mut() {
        for p in d.entity.properties.iter_mut().filter(|p| p.data_type == DataType::Enum) {
            let name = p.type_name.strip_prefix(TYPE_NAMESPACE).and_then(|n| n.strip_prefix('.')).unwrap_or_default();
            match kept {
                Some(kept) if !kept.contains(name) => {
                    p.type_name = "Edm.String".to_string();
                    p.data_type = DataType::String;
                }
                _ => *counts.entry(name.to_string()).or_insert(0) += 1,
            }
        }
    }
    counts
}

pub(crate) fn generate(scale: Scale) -> Dataset {
    let corpus = corpus();
    let targets = Targets::of(scale);
    let universe = universe::build(corpus);
    let selection = universe::select(&universe, corpus, targets.data_entities, targets.public_entities);
    let enum_specs = enums::universe(corpus);
    let all_enum_names: HashSet<&str> = enum_specs.iter().map(|s| s.name.as_str()).collect();
    let mut book = LabelBook::default();

    let mut data_entities = Vec::with_capacity(selection.len());
    let mut drafts = Vec::with_capacity(targets.public_entities);
    for &(index, enabled) in &selection {
        let seed = &universe[index];
        let label_id = entity_label(&mut book, seed);
        data_entities.push(DataEntity {
            name: seed.name.clone(),
            public_entity_name: seed.public_name.clone(),
            public_collection_name: seed.collection.clone(),
            label_id: label_id.clone(),
            entity_category: category(&seed.name),
            data_service_enabled: enabled,
            data_management_enabled: unit(&["data-management", &seed.name]) < 0.92,
            is_read_only: is_read_only(&seed.name),
        });
        if enabled {
            drafts.push(public_entity(index, &universe, corpus, &all_enum_names, label_id, &mut book));
        }
    }

    let references = count_and_prune_enum_types(&mut drafts, None);
    let chosen = enums::choose(&enum_specs, &references, targets.enumerations);
    let kept: HashSet<&str> = chosen.iter().map(|&i| enum_specs[i].name.as_str()).collect();
    count_and_prune_enum_types(&mut drafts, Some(&kept));
    let enum_by_name: HashMap<&str, &EnumSpec> = chosen.iter().map(|&i| (enum_specs[i].name.as_str(), &enum_specs[i])).collect();

    let mut nodes: Vec<Node> = drafts
        .iter_mut()
        .map(|d| {
            let seed = &universe[d.seed];
            Node {
                entity: &mut d.entity,
                data_entity: &seed.name,
                keys: &d.keys,
                company: seed.company,
                relations: &seed.corpus(&universe, corpus).relations,
                generated: matches!(seed.origin, Origin::Variant { .. }),
            }
        })
        .collect();
    navigation::build(&mut nodes, &enum_by_name);
    for d in &mut drafts {
        d.entity.property_groups = groups::build(&d.entity.name, &d.entity.properties);
        d.entity.actions = actions::build(&d.entity.name);
    }

    let enumerations: Vec<Enumeration> = chosen.iter().map(|&i| enumeration(&enum_specs[i], &mut book)).collect();
    let languages: Vec<String> = targets.languages.iter().map(|l| l.to_string()).collect();
    let labels = book.finish(&languages);
    let entity_modules: BTreeSet<String> = selection.iter().map(|&(i, _)| universe[i].module.clone()).collect();
    let mut public_entities: Vec<PublicEntity> = drafts.into_iter().map(|d| d.entity).collect();
    public_entities.sort_by(|a, b| a.name.cmp(&b.name));
    Dataset {
        data_entities,
        public_entities,
        enumerations,
        labels,
        languages,
        modules: module_lines(corpus, &entity_modules, targets.modules),
        application_version: APPLICATION_VERSION.to_string(),
        platform_version: PLATFORM_VERSION.to_string(),
    }
}
