//! The generated datasets: determinism, sizes, internal consistency, label rules and evolution.

use d365meta_simulator::model::{Cardinality, Constraint, DataType, PublicEntity, TYPE_NAMESPACE};
use d365meta_simulator::{Dataset, Scale};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::OnceLock;
use std::time::Instant;

fn full() -> &'static Dataset {
    static FULL: OnceLock<Dataset> = OnceLock::new();
    FULL.get_or_init(|| {
        let start = Instant::now();
        let d = Dataset::generate(Scale::Full);
        eprintln!("full dataset generated in {:?}", start.elapsed());
        d
    })
}

fn small() -> &'static Dataset {
    static SMALL: OnceLock<Dataset> = OnceLock::new();
    SMALL.get_or_init(|| Dataset::generate(Scale::Small))
}

fn json(d: &Dataset) -> Vec<u8> {
    serde_json::to_vec(d).expect("dataset serialises")
}

fn within(actual: usize, target: usize, what: &str) {
    let (low, high) = (target * 9 / 10, target * 11 / 10);
    assert!((low..=high).contains(&actual), "{what}: {actual} is not within 10% of {target}");
}

#[test]
fn same_scale_gives_the_same_bytes() {
    for scale in [Scale::Tiny, Scale::Small] {
        assert_eq!(json(&Dataset::generate(scale)), json(&Dataset::generate(scale)), "{scale}");
    }
    assert_ne!(json(&Dataset::generate(Scale::Tiny)), json(small()));
}

#[test]
fn scales_parse_and_print() {
    for scale in [Scale::Tiny, Scale::Small, Scale::Full] {
        assert_eq!(scale.to_string().parse::<Scale>(), Ok(scale));
    }
    assert!("huge".parse::<Scale>().unwrap_err().contains("huge"));
}

#[test]
fn datasets_round_trip_through_json() {
    let d = Dataset::generate(Scale::Tiny);
    let back: Dataset = serde_json::from_slice(&json(&d)).expect("deserialises");
    assert_eq!(back, d);
}

#[test]
fn tiny_has_the_anchors() {
    let d = Dataset::generate(Scale::Tiny);
    assert_eq!(d.data_entities.len(), 20);
    assert_eq!(d.public_entities.len(), 12);
    assert_eq!(d.enumerations.len(), 8);
    assert_eq!(d.languages, ["en-US", "de"]);
    assert!((4..=6).contains(&d.modules.len()), "{} modules", d.modules.len());
    let customers = d.data_entity("CustCustomerV3Entity").expect("CustCustomerV3Entity");
    assert_eq!((customers.public_entity_name.as_str(), customers.public_collection_name.as_str()), ("CustomerV3", "CustomersV3"));
    assert!(customers.data_service_enabled);
    let customer = d.public_entity("CustomerV3").expect("CustomerV3");
    assert_eq!(customer.entity_set_name, "CustomersV3");
    assert_eq!(customer.label_id, "@AccountsReceivable:CustomersV3");
    let keys: Vec<&str> = customer.properties.iter().filter(|p| p.is_key).map(|p| p.name.as_str()).collect();
    assert_eq!(keys, ["dataAreaId", "CustomerAccount"]);
    assert_eq!(customer.property("dataAreaId").map(|p| p.label_id.as_str()), Some("@SYS13342"));
    assert_eq!(d.labels.get("@SYS13342", "en-US"), Some("Company"));
    assert!(customer.actions.iter().any(|a| a.name == "GetCreditLimit"));
    let group = d.public_entity("CustomerGroup").expect("CustomerGroup");
    assert!(customer.navigation_properties.iter().any(|n| {
        n.related_entity == "CustomerGroup"
            && n.constraints.iter().any(|c| matches!(c, Constraint::Referential { property, .. } if property == "CustomerGroupId"))
    }));
    assert!(group.navigation_properties.iter().any(|n| n.related_entity == "CustomerV3" && n.cardinality == Cardinality::Multiple));
    let no_yes = d.enumeration("NoYes").expect("NoYes");
    let members: Vec<(&str, i64)> = no_yes.members.iter().map(|m| (m.name.as_str(), m.value)).collect();
    assert_eq!(members, [("No", 0), ("Yes", 1)]);
}

#[test]
fn small_has_its_sizes() {
    let d = small();
    assert_eq!(d.data_entities.len(), 300);
    assert_eq!(d.public_entities.len(), 200);
    assert_eq!(d.enumerations.len(), 80);
    assert_eq!(d.languages, ["en-US", "de", "fr"]);
    assert_eq!(d.modules.len(), 30);
}

/// Fast enough for a debug build (a few seconds); the timing bound holds for release builds.
#[test]
fn full_has_realistic_sizes() {
    let start = Instant::now();
    let d = full();
    let elapsed = start.elapsed();
    within(d.data_entities.len(), 5000, "data entities");
    within(d.public_entities.len(), 4000, "public entities");
    within(d.property_count(), 120_000, "properties");
    within(d.enumerations.len(), 1000, "enumerations");
    within(d.label_ids().len(), 25_000, "distinct label ids");
    assert_eq!(d.modules.len(), 200);
    assert_eq!(d.languages.len(), 3);
    if !cfg!(debug_assertions) {
        assert!(elapsed.as_secs_f64() < 2.0, "generating full took {elapsed:?}");
    }
}

fn enum_name(type_name: &str) -> Option<&str> {
    type_name.strip_prefix(TYPE_NAMESPACE)?.strip_prefix('.')
}

/// Property groups, navigation and constraints only name what exists.
fn check_consistency(d: &Dataset) {
    let entities: HashMap<&str, &PublicEntity> = d.public_entities.iter().map(|e| (e.name.as_str(), e)).collect();
    assert_eq!(entities.len(), d.public_entities.len(), "public entity names are unique");
    let sets: HashSet<&str> = d.public_entities.iter().map(|e| e.entity_set_name.as_str()).collect();
    assert_eq!(sets.len(), d.public_entities.len(), "entity set names are unique");
    let enums: HashMap<&str, _> = d.enumerations.iter().map(|e| (e.name.as_str(), e)).collect();
    for e in &d.public_entities {
        let names: Vec<&str> = e.properties.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names.iter().collect::<HashSet<_>>().len(), names.len(), "{}: property names unique", e.name);
        assert!(e.properties.iter().any(|p| p.is_key), "{} has a key", e.name);
        if e.property("dataAreaId").is_some_and(|p| p.is_key) {
            assert_eq!(names[0], "dataAreaId", "{}: dataAreaId first", e.name);
        }
        for p in &e.properties {
            if p.data_type == DataType::Enum {
                let name = enum_name(&p.type_name).unwrap_or_else(|| panic!("{}.{}: {}", e.name, p.name, p.type_name));
                assert!(enums.contains_key(name), "{}.{}: enumeration {name} exists", e.name, p.name);
            }
            if p.is_dimension {
                assert!(p.dimension_relation.is_some(), "{}.{}", e.name, p.name);
            }
        }
        for g in &e.property_groups {
            let positions: Vec<usize> = g
                .properties
                .iter()
                .map(|m| names.iter().position(|n| n == m).unwrap_or_else(|| panic!("{}.{}: member {m} exists", e.name, g.name)))
                .collect();
            assert!(positions.windows(2).all(|w| w[0] < w[1]), "{}.{}: members in property order", e.name, g.name);
        }
        let nav_names: HashSet<&str> = e.navigation_properties.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(nav_names.len(), e.navigation_properties.len(), "{}: navigation names unique", e.name);
        for n in &e.navigation_properties {
            let related = entities.get(n.related_entity.as_str()).unwrap_or_else(|| panic!("{}.{} → {}", e.name, n.name, n.related_entity));
            assert!(!names.contains(&n.name.as_str()), "{}.{} clashes with a property", e.name, n.name);
            if let Some(back) = &n.related_relation_name {
                let reverse = related.navigation_properties.iter().find(|r| &r.name == back);
                assert!(reverse.is_some_and(|r| r.related_entity == e.name), "{}.{}: way back {back}", e.name, n.name);
            }
            for c in &n.constraints {
                match c {
                    Constraint::Referential { property, referenced_property } => {
                        assert!(e.property(property).is_some(), "{}.{}: {property}", e.name, n.name);
                        assert!(
                            related.property(referenced_property).is_some(),
                            "{}.{}: {}.{referenced_property}",
                            e.name,
                            n.name,
                            related.name
                        );
                    }
                    Constraint::Fixed { property, value, value_str } => {
                        let p = e.property(property).unwrap_or_else(|| panic!("{}.{}: {property}", e.name, n.name));
                        let members = &enums[enum_name(&p.type_name).unwrap_or_default()].members;
                        assert!(members.iter().any(|m| m.value == *value && &m.name == value_str));
                    }
                    Constraint::RelatedFixed { related_property, .. } => {
                        assert!(related.property(related_property).is_some(), "{}.{}: {related_property}", e.name, n.name);
                    }
                }
            }
        }
    }
    let mut enabled = 0;
    let data_names: HashSet<&str> = d.data_entities.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(data_names.len(), d.data_entities.len(), "data entity names are unique");
    for de in &d.data_entities {
        match entities.get(de.public_entity_name.as_str()) {
            Some(pe) if de.data_service_enabled => {
                enabled += 1;
                assert_eq!(pe.entity_set_name, de.public_collection_name, "{}", de.name);
                assert_eq!(pe.label_id, de.label_id, "{}", de.name);
                assert_eq!(pe.is_read_only, de.is_read_only, "{}", de.name);
            }
            Some(_) => panic!("{} is not data-service enabled but has a public entity", de.name),
            None => assert!(!de.data_service_enabled, "{} is enabled without a public entity", de.name),
        }
    }
    assert_eq!(enabled, d.public_entities.len());
    for e in &d.enumerations {
        let names: HashSet<&str> = e.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names.len(), e.members.len(), "{}: member names unique", e.name);
        assert!(!e.members.is_empty(), "{}", e.name);
    }
}

#[test]
fn tiny_and_small_are_consistent() {
    check_consistency(&Dataset::generate(Scale::Tiny));
    check_consistency(small());
}

#[test]
fn full_is_consistent_and_plausible() {
    let d = full();
    check_consistency(d);
    let categories: BTreeSet<String> = d.data_entities.iter().map(|e| format!("{:?}", e.entity_category)).collect();
    for c in ["None", "Some(Master)", "Some(Transaction)", "Some(Configuration)", "Some(Reference)", "Some(Document)", "Some(Parameters)"] {
        assert!(categories.contains(c), "category {c}");
    }
    let share = |n: usize| n as f64 / d.data_entities.len() as f64;
    let disabled = share(d.data_entities.iter().filter(|e| !e.data_service_enabled).count());
    assert!((0.15..0.25).contains(&disabled), "{disabled} not data-service enabled");
    assert!(share(d.data_entities.iter().filter(|e| e.data_management_enabled).count()) > 0.8);
    assert!(d.data_entities.iter().any(|e| e.is_read_only));
    let with_actions = d.public_entities.iter().filter(|e| !e.actions.is_empty()).count() as f64 / d.public_entities.len() as f64;
    assert!((0.1..0.2).contains(&with_actions), "{with_actions} of public entities have actions");
    let kinds: BTreeSet<String> = d.public_entities.iter().flat_map(|e| &e.actions).map(|a| format!("{:?}", a.binding_kind)).collect();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    let actions: Vec<_> = d.public_entities.iter().flat_map(|e| &e.actions).collect();
    assert!(actions.iter().all(|a| a.parameters.len() <= 3));
    assert!(actions.iter().any(|a| a.return_type.is_none()) && actions.iter().any(|a| a.return_type.is_some()));
    let constraints: Vec<&Constraint> =
        d.public_entities.iter().flat_map(|e| &e.navigation_properties).flat_map(|n| &n.constraints).collect();
    let referential = constraints.iter().filter(|c| matches!(c, Constraint::Referential { .. })).count();
    assert!(referential * 10 > constraints.len() * 8, "mostly referential constraints");
    assert!(constraints.iter().any(|c| matches!(c, Constraint::Fixed { .. })));
    assert!(constraints.iter().any(|c| matches!(c, Constraint::RelatedFixed { .. })));
    let properties: Vec<_> = d.public_entities.iter().flat_map(|e| &e.properties).collect();
    let dimensions: Vec<_> = properties.iter().filter(|p| p.is_dimension).collect();
    assert!(!dimensions.is_empty() && dimensions.len() < properties.len() / 100);
    assert!(dimensions.iter().any(|p| p.dimension_legal_entity_property.is_some() && p.dimension_type_property.is_some()));
    let types: BTreeSet<String> = properties.iter().map(|p| format!("{:?}", p.data_type)).collect();
    for t in ["String", "Integer", "Int64", "Real", "Date", "DateTime", "Enum", "Guid"] {
        assert!(types.contains(t), "data type {t}");
    }
    let mandatory = properties.iter().filter(|p| p.is_mandatory).count();
    assert!(mandatory > 0 && mandatory < properties.len() / 2);
}

/// Every LabelId value of a dataset, references and literals.
fn label_references(d: &Dataset) -> Vec<&str> {
    let mut refs: Vec<&str> = d.data_entities.iter().map(|e| e.label_id.as_str()).collect();
    for e in &d.public_entities {
        refs.push(&e.label_id);
        refs.extend(e.properties.iter().map(|p| p.label_id.as_str()));
    }
    for e in &d.enumerations {
        refs.push(&e.label_id);
        refs.extend(e.members.iter().map(|m| m.label_id.as_str()));
    }
    refs
}

/// `sharing`: at least how many references a label id has on average.
fn check_labels(d: &Dataset, sharing: f64) {
    let refs = label_references(d);
    let literal = refs.iter().filter(|r| !r.starts_with('@')).count() as f64 / refs.len() as f64;
    assert!((0.01..0.03).contains(&literal), "{literal} of LabelId values are literal");
    assert!(refs.iter().filter(|r| !r.starts_with('@')).all(|r| !r.is_empty()));
    let ids = d.label_ids();
    let ratio = refs.len() as f64 / ids.len() as f64;
    assert!(ratio > sharing, "label ids are shared: {} ids for {} references", ids.len(), refs.len());
    let dangling: Vec<&String> = ids.iter().filter(|id| !d.labels.contains_id(id)).collect();
    let dangling_share = dangling.len() as f64 / ids.len() as f64;
    assert!((0.002..0.01).contains(&dangling_share), "{dangling_share} dangling");
    for id in ["@SYS13342", "@SYS2048", "@SYS1960", "@SYS1961"] {
        assert!(d.labels.contains_id(id), "{id}");
    }
    let labelled: Vec<&String> = ids.iter().filter(|id| d.labels.contains_id(id)).collect();
    assert_eq!(labelled.len(), d.labels.len(), "no label text without a reference");
    for id in &labelled {
        assert!(d.labels.get(id, "en-US").is_some_and(|t| !t.is_empty()), "{id} has en-US text");
    }
    for language in &d.languages[1..] {
        let covered = labelled.iter().filter(|id| d.labels.get(id, language).is_some()).count() as f64 / labelled.len() as f64;
        assert!((0.85..0.95).contains(&covered), "{language} covers {covered}");
        let differing =
            labelled.iter().filter_map(|id| Some((d.labels.get(id, language)?, d.labels.get(id, "en-US")?))).all(|(other, en)| other != en);
        assert!(differing, "{language} texts differ from en-US");
    }
    let forms = |prefix: &str| ids.iter().filter(|id| id.starts_with(prefix)).count();
    assert!(forms("@SYS") > 0 && forms("@GLS") > 0);
    assert!(ids.iter().any(|id| !id.starts_with("@SYS") && !id.starts_with("@GLS") && id.contains(':')));
}

#[test]
fn labels_follow_the_rules() {
    check_labels(small(), 1.4);
    check_labels(full(), 4.0);
    let tiny = Dataset::generate(Scale::Tiny);
    assert!(tiny.label_ids().iter().all(|id| id.starts_with('@')));
    let customer = tiny.public_entity("CustomerV3").expect("CustomerV3");
    let id = &customer.property("CustomerGroupId").expect("CustomerGroupId").label_id;
    if id.starts_with('@') {
        assert_eq!(tiny.labels.get(id, "en-US"), Some("Customer group ID"));
    }
}

#[test]
fn module_lines_have_the_format_and_the_traps() {
    for d in [&Dataset::generate(Scale::Tiny), small(), full()] {
        let mut ids = BTreeSet::new();
        for line in &d.modules {
            let fields: Vec<&str> = line.splitn(5, " | ").collect();
            let prefixes = ["Name: ", "Version: ", "Module: ", "Publisher: ", "DisplayName: "];
            assert_eq!(fields.len(), 5, "{line}");
            for (field, prefix) in fields.iter().zip(prefixes) {
                assert!(field.starts_with(prefix), "{line}");
            }
            ids.insert(fields[2].trim_start_matches("Module: "));
        }
        assert_eq!(ids.len(), d.modules.len(), "module ids are unique");
        assert!(d.modules.iter().any(|l| l.contains("| Version: 1.0.0.0 |") && !l.contains("Publisher: Microsoft")));
        assert!(d.modules.iter().any(|l| l.split(" | DisplayName: ").nth(1).is_some_and(|n| n.contains(" | "))));
        assert!(d.modules.iter().any(|l| l.starts_with("Name: ApplicationPlatform | Version: 7.0.7690.53 |")));
        assert!(d.modules.iter().any(|l| l.starts_with("Name: ApplicationSuite | Version: 10.0.2095.37 |")));
        assert_eq!((d.application_version.as_str(), d.platform_version.as_str()), ("10.0.2095.37", "7.0.7690.53"));
    }
}

/// Items by name, serialised.
fn by_name<T: serde::Serialize>(items: &[T], name: impl Fn(&T) -> &str) -> BTreeMap<String, Vec<u8>> {
    items.iter().map(|i| (name(i).to_string(), serde_json::to_vec(i).expect("json"))).collect()
}

fn check_reported<T: serde::Serialize>(
    what: &str,
    old: &[T],
    new: &[T],
    name: impl Fn(&T) -> &str + Copy,
    changed: &[String],
    added: &[String],
    removed: &[String],
) {
    let (old, new) = (by_name(old, name), by_name(new, name));
    for (n, bytes) in &old {
        match new.get(n) {
            None => assert!(removed.contains(n), "{what} {n} removed without being reported"),
            Some(b) if b != bytes => assert!(changed.contains(n), "{what} {n} changed without being reported"),
            Some(_) => assert!(!changed.contains(n) && !removed.contains(n), "{what} {n} reported but identical"),
        }
    }
    for n in new.keys().filter(|n| !old.contains_key(*n)) {
        assert!(added.contains(n), "{what} {n} added without being reported");
    }
    for n in added {
        assert!(new.contains_key(n) && !old.contains_key(n), "{what} {n} reported added");
    }
}

fn check_evolution(old: &Dataset, seed: u64, changes: usize) {
    let (new, ev) = old.evolve(seed, changes);
    check_consistency(&new);
    assert!(ev.changed_public_entities.len() >= changes, "{ev:?}");
    assert!((1..=2).contains(&ev.added_public_entities.len()) && (1..=2).contains(&ev.removed_public_entities.len()), "{ev:?}");
    assert_eq!(ev.changed_enumerations.len(), 2);
    assert_eq!(ev.changed_data_entities.len(), 2);
    assert!(!ev.bumped_modules.is_empty());
    check_reported(
        "public entity",
        &old.public_entities,
        &new.public_entities,
        |e| &e.name,
        &ev.changed_public_entities,
        &ev.added_public_entities,
        &ev.removed_public_entities,
    );
    check_reported(
        "data entity",
        &old.data_entities,
        &new.data_entities,
        |e| &e.name,
        &ev.changed_data_entities,
        &ev.added_data_entities,
        &ev.removed_data_entities,
    );
    check_reported("enumeration", &old.enumerations, &new.enumerations, |e| &e.name, &ev.changed_enumerations, &[], &[]);
    assert_ne!(old.modules, new.modules);
    for (a, b) in old.modules.iter().zip(&new.modules) {
        let module = a.split(" | Module: ").nth(1).and_then(|m| m.split(" | ").next()).unwrap_or_default();
        assert_eq!(a != b, ev.bumped_modules.iter().any(|m| m == module), "{a} → {b}");
    }
    for id in old.labels.ids() {
        assert_eq!(old.labels.texts(id), new.labels.texts(id), "label {id} unchanged");
    }
    let new_ids: Vec<&str> = new.labels.ids().filter(|id| !old.labels.contains_id(id)).collect();
    assert_eq!(new_ids, ev.added_label_ids.iter().map(String::as_str).collect::<Vec<_>>());
    for id in &ev.added_label_ids {
        assert!(new.labels.get(id, "en-US").is_some() && !old.label_ids().contains(id), "{id}");
    }
    assert_eq!(old.evolve(seed, changes), (new, ev), "evolve is deterministic");
}

#[test]
fn evolve_changes_exactly_what_it_reports() {
    let tiny = Dataset::generate(Scale::Tiny);
    check_evolution(&tiny, 1, 3);
    check_evolution(small(), 7, 10);
    check_evolution(small(), 8, 0);
    let (a, _) = small().evolve(1, 5);
    let (b, _) = small().evolve(2, 5);
    assert_ne!(a, b, "seeds give different versions");
    let (twice, ev) = a.evolve(3, 5);
    assert!(!ev.changed_public_entities.is_empty());
    check_consistency(&twice);
}
