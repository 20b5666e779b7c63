//! Reading the cache end to end: lookups, labels, search and statistics on the simulator's data,
//! through the real component over a real SQLite file.

use d365meta::bindings::name_of;
use d365meta::cache::{Cache, Constraint, EntityLookup, LabelLanguages, ObjectKind, ReadOptions, SearchFilters, SearchHit, SearchQuery};
use d365meta_simulator::Scale;
use d365meta_simulator::model as wire;
use d365meta_tests::*;
use serde_json::{Value as Json, json};
use std::sync::Arc;

fn read(env: Option<&str>) -> ReadOptions {
    ReadOptions { base_url: env.map(str::to_owned), labels: None }
}

/// Options asking for a label in `language`, with or without the en-US fallback.
fn label_in(language: &str, fallback: bool) -> ReadOptions {
    let fallback = if fallback { vec!["en-US".to_owned()] } else { vec![] };
    ReadOptions { base_url: None, labels: Some(LabelLanguages { language: language.to_owned(), fallback }) }
}

fn with_labels(language: &str) -> ReadOptions {
    ReadOptions { base_url: None, labels: Some(LabelLanguages { language: language.to_owned(), fallback: vec!["en-US".to_owned()] }) }
}

/// A synced small-scale cache (en-US and de labels).
async fn synced(name: &str) -> (d365meta_simulator::Simulator, Scratch, Cache) {
    let sim = simulator(vec![spec("a", dataset(Scale::Small))]).await;
    let scratch = Scratch::new(name);
    let mut cache = open(&scratch.db()).await;
    cache.sync(&sim.env(0).base_url(), sync_options(d365meta::cache::Strategy::Auto, &["en-US", "de"])).await.unwrap();
    (sim, scratch, cache)
}

/// The same, synced once for the tests of this file that only read: they open it side by side.
async fn shared() -> Cache {
    static DB: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let db = DB.get_or_init(|| {
        // Synced on a runtime of its own, which outlives no test: readers need no simulator.
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("read-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("cache.db");
        let path = db.clone();
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async move {
                let sim = simulator(vec![spec("a", dataset(Scale::Small))]).await;
                let mut cache = open(&path).await;
                cache.sync(&sim.env(0).base_url(), sync_options(d365meta::cache::Strategy::Auto, &["en-US", "de"])).await.unwrap();
            })
        })
        .join()
        .unwrap();
        db
    });
    open(db).await
}

/// Our answer in the wire's shape, to compare with what the simulator served, field by field.
fn public_as_wire(p: &d365meta::cache::PublicEntity) -> Json {
    json!({
        "Name": p.name, "EntitySetName": p.entity_set_name, "LabelId": p.label_id,
        "IsReadOnly": p.is_read_only, "ConfigurationEnabled": p.configuration_enabled,
        "Properties": p.properties.iter().map(|x| json!({
            "Name": x.name, "TypeName": x.type_name, "DataType": x.data_type, "LabelId": x.label_id, "IsKey": x.is_key,
            "IsMandatory": x.is_mandatory, "ConfigurationEnabled": x.configuration_enabled, "AllowEdit": x.allow_edit,
            "AllowEditOnCreate": x.allow_edit_on_create, "IsDimension": x.is_dimension, "DimensionRelation": x.dimension_relation,
            "IsDynamicDimension": x.is_dynamic_dimension, "DimensionLegalEntityProperty": x.dimension_legal_entity_property,
            "DimensionTypeProperty": x.dimension_type_property,
        })).collect::<Vec<_>>(),
        "NavigationProperties": p.navigation_properties.iter().map(|n| json!({
            "Name": n.name, "RelatedEntity": n.related_entity, "RelatedRelationName": n.related_relation_name, "Cardinality": n.cardinality,
            "Constraints": n.constraints.iter().map(|c| match c {
                Constraint::Referential(c) => json!({"@odata.type": "#Microsoft.Dynamics.Metadata.ReferentialConstraint", "Property": c.property, "ReferencedProperty": c.referenced_property}),
                Constraint::Fixed(c) => json!({"@odata.type": "#Microsoft.Dynamics.Metadata.FixedConstraint", "Property": c.property, "Value": c.value, "ValueStr": c.value_str}),
                Constraint::RelatedFixed(c) => json!({"@odata.type": "#Microsoft.Dynamics.Metadata.RelatedFixedConstraint", "RelatedProperty": c.related_property, "Value": c.value, "ValueStr": c.value_str}),
                Constraint::Unknown(c) => panic!("unexpected constraint kind {}", c.odata_type),
            }).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "PropertyGroups": p.property_groups.iter().map(|g| json!({"Name": g.name, "Properties": g.properties})).collect::<Vec<_>>(),
        "Actions": p.actions.iter().map(|a| json!({
            "Name": a.name, "BindingKind": a.binding_kind, "FieldLookup": a.field_lookup,
            "Parameters": a.parameters.iter().map(|x| json!({"Name": x.name, "Type": {"TypeName": x.type_name, "IsCollection": x.is_collection}})).collect::<Vec<_>>(),
            "ReturnType": a.return_type.as_ref().map(|t| json!({"TypeName": t.type_name, "IsCollection": t.is_collection})),
        })).collect::<Vec<_>>(),
    })
}

fn data_as_wire(d: &d365meta::cache::DataEntity) -> Json {
    json!({
        "Name": d.name, "PublicEntityName": d.public_entity_name, "PublicCollectionName": d.public_collection_name,
        "LabelId": d.label_id, "EntityCategory": d.category, "DataServiceEnabled": d.data_service_enabled,
        "DataManagementEnabled": d.data_management_enabled, "IsReadOnly": d.is_read_only,
    })
}

#[tokio::test]
async fn every_object_reads_back_field_by_field_as_the_service_sent_it() {
    let data = dataset(Scale::Small);
    let mut cache = shared().await;
    for e in &data.public_entities {
        let r = cache.get_entity(&e.name, read(None)).await.unwrap();
        let p = r.public_entity.unwrap_or_else(|| panic!("{} not found", e.name));
        assert_eq!(public_as_wire(&p), serde_json::to_value(e).unwrap(), "public entity {}", e.name);
    }
    for d in &data.data_entities {
        let r = cache.get_entity(&d.name, read(None)).await.unwrap();
        let found = r.data_entity.unwrap_or_else(|| panic!("{} not found", d.name));
        assert_eq!(data_as_wire(&found), serde_json::to_value(d).unwrap(), "data entity {}", d.name);
    }
    for e in &data.enumerations {
        let r = cache.get_enumeration(&e.name, read(None)).await.unwrap();
        let found = r.enumeration.unwrap();
        let ours = json!({"Name": found.name, "LabelId": found.label_id, "Members": found.members.iter().map(|m| json!({
            "Name": m.name, "Value": m.value, "LabelId": m.label_id, "ConfigurationEnabled": m.configuration_enabled,
        })).collect::<Vec<_>>()});
        assert_eq!(ours, serde_json::to_value(e).unwrap(), "enumeration {}", e.name);
    }
}

#[tokio::test]
async fn entities_are_found_by_any_of_their_names_with_their_counterpart() {
    let data = dataset(Scale::Small);
    let mut cache = shared().await;
    let customer = data.data_entity("CustCustomerV3Entity").unwrap();
    for name in ["CustCustomerV3Entity", "custcustomerv3entity", "CustomerV3", "CUSTOMERV3", "CustomersV3", "customersv3"] {
        let r: EntityLookup = cache.get_entity(name, read(None)).await.unwrap();
        assert_eq!(r.data_entity.as_ref().map(|d| d.name.as_str()), Some("CustCustomerV3Entity"), "{name}");
        assert_eq!(r.public_entity.as_ref().map(|p| p.name.as_str()), Some(customer.public_entity_name.as_str()), "{name}");
        assert!(r.suggestions.is_empty());
    }
    // A data entity that is not data-service enabled has no public entity.
    let hidden = data.data_entities.iter().find(|d| !d.data_service_enabled).unwrap();
    let r = cache.get_entity(&hidden.name, read(None)).await.unwrap();
    assert!(r.data_entity.is_some() && r.public_entity.is_none());

    let r = cache.get_entity("CustomerV33", read(None)).await.unwrap();
    assert!(r.data_entity.is_none() && r.public_entity.is_none());
    assert_eq!(r.suggestions.first().map(String::as_str), Some("CustomerV3"), "{:?}", r.suggestions);
}

#[tokio::test]
async fn actions_and_enumerations_by_name() {
    let data = dataset(Scale::Small);
    let mut cache = shared().await;
    let (owner, action) = data.public_entities.iter().flat_map(|e| e.actions.iter().map(move |a| (e, a))).next().unwrap();
    let expected: Vec<&str> =
        data.public_entities.iter().filter(|e| e.actions.iter().any(|a| a.name == action.name)).map(|e| e.name.as_str()).collect();
    let r = cache.get_action(&action.name.to_lowercase(), None, read(None)).await.unwrap();
    let mut found: Vec<&str> = r.actions.iter().map(|a| a.entity.as_str()).collect();
    let mut sorted = expected.clone();
    sorted.sort();
    found.sort();
    assert_eq!(found, sorted);
    let within = cache.get_action(&action.name, Some(&owner.entity_set_name), read(None)).await.unwrap();
    assert_eq!(within.actions.len(), 1);
    assert_eq!(within.actions[0].entity, owner.name);
    assert_eq!(within.actions[0].parameters.len(), action.parameters.len());
    let none = cache.get_action(&format!("{}x", action.name), None, read(None)).await.unwrap();
    assert!(none.actions.is_empty());
    assert!(none.suggestions.contains(&action.name), "{:?}", none.suggestions);
    let err = cache.get_action(&action.name, Some("NoSuchEntity"), read(None)).await.unwrap_err();
    assert!(core_error(&err).message.contains("no entity named"), "{err:#}");

    let r = cache.get_enumeration("noyes", with_labels("de")).await.unwrap();
    let e = r.enumeration.unwrap();
    assert_eq!(e.name, "NoYes");
    let members: Vec<(&str, i64)> = e.members.iter().map(|m| (m.name.as_str(), m.value)).collect();
    assert_eq!(members, [("No", 0), ("Yes", 1)]);
    assert_eq!(e.members[1].label.as_deref(), data.labels.get(e.members[1].label_id.as_deref().unwrap(), "de"));
    let missing = cache.get_enumeration("NoYess", read(None)).await.unwrap();
    assert_eq!(missing.suggestions.first().map(String::as_str), Some("NoYes"));
}

#[tokio::test]
async fn labels_resolve_with_fallback_and_the_literal_rule() {
    let data = dataset(Scale::Small);
    let mut cache = shared().await;
    let ids = data.label_ids();
    let both = ids.iter().find(|id| data.labels.get(id, "de").is_some()).unwrap();
    let only_en = ids.iter().find(|id| data.labels.get(id, "de").is_none() && data.labels.get(id, "en-US").is_some()).unwrap();
    let dangling = ids.iter().find(|id| data.labels.get(id, "en-US").is_none()).unwrap();

    let r = cache.get_label(both, label_in("de", true)).await.unwrap();
    assert_eq!((r.text.as_deref(), r.language.as_deref()), (data.labels.get(both, "de"), Some("de")));
    let r = cache.get_label(only_en, label_in("de", true)).await.unwrap();
    assert_eq!((r.text.as_deref(), r.language.as_deref()), (data.labels.get(only_en, "en-US"), Some("en-US")), "falls back to en-US");
    assert_eq!(r.missing_in, ["de"]);
    let r = cache.get_label(only_en, label_in("de", false)).await.unwrap();
    assert_eq!(r.text, None, "no fallback asked for");
    let r = cache.get_label(dangling, label_in("en-US", false)).await.unwrap();
    assert_eq!(r.text, None);
    assert_eq!(r.missing_in, ["en-US"], "the service has no text for a dangling id");
    let r = cache.get_label(both, label_in("fr", false)).await.unwrap();
    assert_eq!(r.not_synced, ["fr"]);
    let r = cache.get_label("@NotUsed:Anywhere", label_in("en-US", false)).await.unwrap();
    assert_eq!(r.unknown_in, ["en-US"]);
    let r = cache.get_label("Customer account", label_in("de", false)).await.unwrap();
    assert!(r.literal);
    assert_eq!(r.text.as_deref(), Some("Customer account"));

    // Lookups carry their labels resolved when asked, literal ones included.
    let entity = data.public_entities.iter().find(|e| e.properties.iter().any(|p| !p.label_id.starts_with('@'))).unwrap();
    let r = cache.get_entity(&entity.name, with_labels("de")).await.unwrap();
    for (ours, theirs) in r.public_entity.unwrap().properties.iter().zip(&entity.properties) {
        let expected = if theirs.label_id.starts_with('@') {
            data.labels.get(&theirs.label_id, "de").or(data.labels.get(&theirs.label_id, "en-US")).map(str::to_owned)
        } else {
            Some(theirs.label_id.clone())
        };
        assert_eq!(ours.label, expected, "{}.{}", entity.name, theirs.name);
    }
}

fn query(text: &str) -> SearchQuery {
    SearchQuery {
        text: text.to_owned(),
        kinds: vec![],
        filters: SearchFilters { category: None, read_only: None, data_service_enabled: None, data_management_enabled: None, entity: None },
        limit: 10_000,
        offset: 0,
    }
}

fn tier(h: &SearchHit) -> usize {
    ["exact", "prefix", "word", "label"].iter().position(|t| *t == name_of(&h.matched)).unwrap()
}

/// The order within a tier, as documented: entities, enumerations, actions, properties; shorter
/// names first; then the name and the entity, without case (ASCII, as SQLite's NOCASE).
fn rank(h: &SearchHit) -> (usize, usize, String, String) {
    let kind = ["public-entity", "data-entity", "enumeration", "action", "property"].iter().position(|k| *k == name_of(&h.kind)).unwrap();
    (kind, h.name.chars().count(), h.name.to_ascii_lowercase(), h.entity.clone().unwrap_or_default().to_ascii_lowercase())
}

/// Lower-cased words of a name, split at case changes and digits (an independent oracle).
fn words_of(name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let start = i == 0
            || !chars[i - 1].is_alphanumeric()
            || (chars[i - 1].is_lowercase() && c.is_uppercase())
            || (chars[i - 1].is_uppercase() && c.is_uppercase() && chars.get(i + 1).is_some_and(|n| n.is_lowercase()))
            || (chars[i - 1].is_ascii_digit() && c.is_alphabetic());
        if !c.is_alphanumeric() {
            continue;
        }
        if start || out.is_empty() {
            out.push(String::new());
        }
        out.last_mut().unwrap().extend(c.to_lowercase());
    }
    out
}

#[tokio::test]
async fn search_ranks_exact_then_prefix_then_words_then_labels() {
    let data = dataset(Scale::Small);
    let mut cache = shared().await;
    let top = |hits: &[SearchHit]| hits.first().map(|h| (name_of(&h.kind), h.name.clone(), name_of(&h.matched)));
    let cases = [
        ("CustomerV3", ("public-entity", "CustomerV3", "exact")),
        ("customersv3", ("public-entity", "CustomerV3", "exact")),
        ("CustCustomerV3Entity", ("data-entity", "CustCustomerV3Entity", "exact")),
        ("NoYes", ("enumeration", "NoYes", "exact")),
        ("CustCustomerV", ("data-entity", "CustCustomerV3Entity", "prefix")),
    ];
    for (text, (kind, name, matched)) in cases {
        let r = cache.search(query(text), read(None)).await.unwrap();
        assert_eq!(top(&r.hits), Some((kind.to_owned(), name.to_owned(), matched.to_owned())), "{text}");
    }
    for text in ["customer", "group", "sales order", "CustomerGroup", "vend", "name"] {
        let r = cache.search(query(text), read(None)).await.unwrap();
        // One page holds all; past 200 matches the total says "at least 200".
        if r.total_exact {
            assert_eq!(r.total as usize, r.hits.len(), "{text}: one page holds all");
        } else {
            assert!(r.total == 200 && r.hits.len() > 200, "{text}: {} of at least {}", r.hits.len(), r.total);
        }
        assert!(!r.hits.is_empty(), "{text}");
        let compact: String = text.split_whitespace().collect::<String>().to_lowercase();
        let wanted: Vec<String> = text.split_whitespace().flat_map(words_of).collect();
        for pair in r.hits.windows(2) {
            assert!(tier(&pair[0]) <= tier(&pair[1]), "{text}: {:?} before {:?}", pair[0], pair[1]);
            if tier(&pair[0]) == tier(&pair[1]) {
                assert!(rank(&pair[0]) <= rank(&pair[1]), "{text}: {:?} before {:?} in one tier", pair[0], pair[1]);
            }
        }
        for h in &r.hits {
            let names = [Some(h.name.to_lowercase()), h.entity_set_name.as_ref().map(|s| s.to_lowercase())];
            let names = names.iter().flatten();
            match name_of(&h.matched).as_str() {
                "exact" => assert!(names.clone().any(|n| *n == compact), "{text}: {h:?}"),
                "prefix" => assert!(names.clone().any(|n| n.starts_with(&compact)), "{text}: {h:?}"),
                "word" => {
                    let ws: Vec<String> =
                        [Some(&h.name), h.entity_set_name.as_ref()].into_iter().flatten().flat_map(|n| words_of(n)).collect();
                    assert!(
                        wanted.iter().all(|w| ws.iter().any(|x| x.starts_with(w.as_str()))),
                        "{text}: {h:?} lacks the words {wanted:?}"
                    );
                }
                "label" => {
                    let id = h.label_id.as_deref().unwrap();
                    let label = if id.starts_with('@') { data.labels.get(id, "en-US").unwrap().to_lowercase() } else { id.to_lowercase() };
                    assert!(wanted.iter().all(|w| label.contains(w.as_str())), "{text}: {h:?} label {label:?}");
                }
                other => panic!("{other}"),
            }
        }
    }
    // Words inside PascalCase names are found.
    let customer = cache.search(query("customer"), read(None)).await.unwrap();
    assert!(customer.hits.iter().any(|h| h.name == "CustCustomerV3Entity" && name_of(&h.matched) == "word"));
    let group = cache.search(SearchQuery { kinds: vec![ObjectKind::Property], ..query("group") }, read(None)).await.unwrap();
    assert!(group.hits.iter().any(|h| h.name == "CustomerGroupId"), "group finds CustomerGroupId");
    assert!(group.hits.iter().all(|h| name_of(&h.kind) == "property"));
    // A name beats a label text: every label match comes after every name match.
    let first_label = customer.hits.iter().position(|h| name_of(&h.matched) == "label");
    let last_name = customer.hits.iter().rposition(|h| name_of(&h.matched) != "label");
    if let (Some(l), Some(n)) = (first_label, last_name) {
        assert!(n < l);
    }
    // Every public entity whose name has the word is found.
    let expected = data.public_entities.iter().filter(|e| words_of(&e.name).iter().any(|w| w.starts_with("customer"))).count();
    let found = customer
        .hits
        .iter()
        .filter(|h| {
            name_of(&h.kind) == "public-entity"
                && name_of(&h.matched) != "label"
                && words_of(&h.name).iter().any(|w| w.starts_with("customer"))
        })
        .count();
    assert_eq!(found, expected);
}

#[tokio::test]
async fn search_pages_and_filters() {
    let data = dataset(Scale::Small);
    let mut cache = shared().await;
    let all = cache.search(query("customer"), read(None)).await.unwrap();
    let mut paged = Vec::new();
    let mut offset = 0;
    loop {
        let page = cache.search(SearchQuery { limit: 7, offset, ..query("customer") }, read(None)).await.unwrap();
        assert_eq!(page.total, all.total);
        if page.hits.is_empty() {
            break;
        }
        paged.extend(page.hits.into_iter().map(|h| (h.kind, h.name, h.entity)));
        offset += 7;
    }
    let whole: Vec<_> = all.hits.into_iter().map(|h| (h.kind, h.name, h.entity)).collect();
    assert_eq!(paged, whole);

    // Counting stops at the cap, and says so; pages past it are still served, in rank order.
    let names_with_id = data
        .public_entities
        .iter()
        .flat_map(|e| &e.properties)
        .filter(|p| {
            p.name
                .split(|c: char| !c.is_alphanumeric())
                .chain(words_of(&p.name).iter().map(String::as_str))
                .any(|w| w.to_lowercase().starts_with("id"))
        })
        .count();
    assert!(names_with_id > 1200, "the dataset has {names_with_id} properties with a word id");
    let ids = |offset, limit| SearchQuery { kinds: vec![ObjectKind::Property], limit, offset, ..query("id") };
    let first = cache.search(ids(0, 5), read(None)).await.unwrap();
    assert_eq!((first.total, first.total_exact), (200, false));
    let wide = cache.search(ids(1180, 20), read(None)).await.unwrap();
    let narrow = cache.search(ids(1190, 10), read(None)).await.unwrap();
    assert_eq!(wide.hits.len(), 20);
    let key = |h: &SearchHit| (name_of(&h.kind), h.name.clone(), h.entity.clone(), name_of(&h.matched));
    assert_eq!(narrow.hits.iter().map(key).collect::<Vec<_>>(), wide.hits[10..].iter().map(key).collect::<Vec<_>>());
    assert_eq!((narrow.total, narrow.total_exact), (200, false));
    for pair in wide.hits.windows(2) {
        assert!((tier(&pair[0]), rank(&pair[0])) <= (tier(&pair[1]), rank(&pair[1])), "{:?} before {:?}", pair[0], pair[1]);
    }

    let master = |f: SearchFilters| SearchQuery { filters: f, ..query("customer") };
    let none = SearchFilters { category: None, read_only: None, data_service_enabled: None, data_management_enabled: None, entity: None };
    let r = cache.search(master(SearchFilters { category: Some("Master".into()), ..none.clone() }), read(None)).await.unwrap();
    assert!(!r.hits.is_empty());
    for h in &r.hits {
        let public = match name_of(&h.kind).as_str() {
            "data-entity" => {
                assert_eq!(data.data_entity(&h.name).unwrap().entity_category, Some(wire::EntityCategory::Master), "{h:?}");
                continue;
            }
            "public-entity" => h.name.clone(),
            "property" | "action" => h.entity.clone().unwrap(),
            other => panic!("{other} cannot have a category: {h:?}"),
        };
        let de = data.data_entities.iter().find(|d| d.public_entity_name == public && d.data_service_enabled).unwrap();
        assert_eq!(de.entity_category, Some(wire::EntityCategory::Master), "{h:?}");
    }
    let r = cache.search(master(SearchFilters { read_only: Some(true), ..none.clone() }), read(None)).await.unwrap();
    for h in r.hits.iter().filter(|h| name_of(&h.kind) == "public-entity") {
        assert!(data.public_entity(&h.name).unwrap().is_read_only, "{h:?}");
    }
    let r = cache.search(master(SearchFilters { data_service_enabled: Some(false), ..none.clone() }), read(None)).await.unwrap();
    assert!(
        r.hits.iter().all(|h| name_of(&h.kind) == "data-entity" && !data.data_entity(&h.name).unwrap().data_service_enabled),
        "{:?}",
        r.hits
    );

    // Properties of one entity, named by its entity set.
    let customer = data.public_entity("CustomerV3").unwrap();
    let r = cache
        .search(
            SearchQuery { filters: SearchFilters { entity: Some("CustomersV3".into()), ..none.clone() }, ..query("dataAreaId") },
            read(None),
        )
        .await
        .unwrap();
    assert_eq!(r.hits.len(), 1);
    assert_eq!(
        (name_of(&r.hits[0].kind).as_str(), r.hits[0].name.as_str(), r.hits[0].entity.as_deref()),
        ("property", "dataAreaId", Some("CustomerV3"))
    );
    let everywhere = cache.search(SearchQuery { kinds: vec![ObjectKind::Property], ..query("dataAreaId") }, read(None)).await.unwrap();
    let expected = data.public_entities.iter().filter(|e| e.property("dataAreaId").is_some()).count();
    let exact: Vec<&SearchHit> = everywhere.hits.iter().filter(|h| name_of(&h.matched) == "exact").collect();
    assert_eq!(exact.len(), expected);
    assert!(everywhere.hits[..expected].iter().all(|h| name_of(&h.matched) == "exact"), "exact matches come first");
    // The rest have the words data, area and id inside their names (LegalEntityDataAreaId).
    for h in &everywhere.hits[expected..] {
        let ws = words_of(&h.name);
        assert!(["data", "area", "id"].iter().all(|w| ws.iter().any(|x| x.starts_with(w))), "{h:?}");
    }
    assert!(customer.property("dataAreaId").is_some());

    let err = cache.search(query(" -- "), read(None)).await.unwrap_err();
    assert!(core_error(&err).message.contains("nothing to search for"), "{err:#}");
}

#[tokio::test]
async fn each_environment_sees_only_its_own_version() {
    let v1 = dataset(Scale::Tiny);
    let (v2, evolution) = v1.evolve(13, 2);
    let sim = simulator(vec![spec("old", v1.clone()), spec("new", Arc::new(v2))]).await;
    let scratch = Scratch::new("isolation");
    let mut cache = open(&scratch.db()).await;
    let (old, new) = (sim.env(0).base_url(), sim.env(1).base_url());
    cache.sync(&old, auto()).await.unwrap();
    cache.sync(&new, auto()).await.unwrap();
    let added = &evolution.added_public_entities[0];
    let removed = &evolution.removed_public_entities[0];
    let exact =
        |r: &d365meta::cache::SearchResults, name: &str| r.hits.iter().any(|h| name_of(&h.kind) == "public-entity" && h.name == *name);
    let in_new = cache.search(query(added), read(Some(&new))).await.unwrap();
    let in_old = cache.search(query(added), read(Some(&old))).await.unwrap();
    assert!(exact(&in_new, added) && !exact(&in_old, added));
    assert!(cache.get_entity(added, read(Some(&old))).await.unwrap().public_entity.is_none());
    assert!(cache.get_entity(removed, read(Some(&new))).await.unwrap().public_entity.is_none());
    assert!(cache.get_entity(removed, read(Some(&old))).await.unwrap().public_entity.is_some());
    let in_new = cache.search(query(removed), read(Some(&new))).await.unwrap();
    assert!(!exact(&in_new, removed));
    // Without --env, the most recently synced environment answers.
    assert_eq!(cache.get_entity("NoYes", read(None)).await.unwrap().base_url, new);
    let err = cache.get_entity("NoYes", read(Some("http://127.0.0.1:1"))).await.unwrap_err();
    assert!(core_error(&err).message.contains("not in the cache"), "{err:#}");
}

#[tokio::test]
async fn reads_never_reach_the_network_and_never_write() {
    let (sim, scratch, cache) = synced("pure").await;
    drop(cache); // the last connection checkpoints the WAL
    let watcher = rusqlite::Connection::open(scratch.db()).unwrap();
    let version = |c: &rusqlite::Connection| c.query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0)).unwrap();
    let before = version(&watcher);
    let requests = sim.env(0).requests().len();
    let mut cache = open(&scratch.db()).await;
    cache.get_entity("CustomerV3", with_labels("de")).await.unwrap();
    cache.get_entity("Nope", read(None)).await.unwrap();
    cache.get_enumeration("NoYes", with_labels("en-US")).await.unwrap();
    cache.get_action("x", None, read(None)).await.unwrap();
    cache.get_label("@SYS13342", label_in("de", true)).await.unwrap();
    cache.search(query("customer group"), with_labels("de")).await.unwrap();
    cache.stats(None).await.unwrap();
    cache.list_environments().await.unwrap();
    cache.history(None, 10).await.unwrap();
    assert_eq!(version(&watcher), before, "a read committed a write");
    assert_eq!(sim.env(0).requests().len(), requests, "a read reached the environment");
    assert_eq!(cache.http_totals().requests + cache.http_totals().refused, 0);
}

#[tokio::test]
async fn statistics_count_what_is_stored_and_shared() {
    let v1 = dataset(Scale::Tiny);
    let (v2, evolution) = v1.evolve(17, 3);
    let v2 = Arc::new(v2);
    let sim = simulator(vec![spec("a", v1.clone()), spec("b", v1.clone()), spec("c", v2.clone())]).await;
    let scratch = Scratch::new("stats");
    let mut cache = open(&scratch.db()).await;
    for i in 0..3 {
        cache.sync(&sim.env(i).base_url(), auto()).await.unwrap();
    }
    let s = cache.stats(None).await.unwrap();
    assert_eq!(s.environments.len(), 3);
    assert_eq!(s.versions.len(), 2);
    let shared = s.versions.iter().find(|v| v.environments.len() == 2).unwrap();
    assert_eq!(shared.complete_snapshots, 1);
    let kind = |k: &str| *s.objects.iter().find(|x| name_of(&x.kind) == k).unwrap();
    let n = |v: &Vec<String>| v.len() as u64;
    let publics = kind("public-entity");
    // Two snapshots: a and b share the first version's.
    assert_eq!(publics.references, (v1.public_entities.len() + v2.public_entities.len()) as u64);
    assert_eq!(
        publics.stored,
        v1.public_entities.len() as u64 + n(&evolution.changed_public_entities) + n(&evolution.added_public_entities)
    );
    assert_eq!(
        publics.shared_between_versions,
        v1.public_entities.len() as u64 - n(&evolution.changed_public_entities) - n(&evolution.removed_public_entities)
    );
    let env = s.environments.iter().find(|e| e.base_url == sim.env(2).base_url()).unwrap();
    let counts = env.counts.as_ref().unwrap();
    assert_eq!(counts_array(counts), expected_counts(&v2, &["en-US"]));
    assert_eq!(env.label_coverage.len(), 1);
    assert_eq!(env.label_coverage[0].texts + env.label_coverage[0].missing, counts.label_ids);
    assert_eq!(name_of(&env.last_sync.as_ref().unwrap().outcome), "succeeded");
    assert!(s.database_bytes > 0);
    let one = cache.stats(Some(&sim.env(0).base_url())).await.unwrap();
    assert_eq!(one.environments.len(), 1);
}

#[tokio::test]
async fn upgrading_to_schema_6_rebuilds_the_search_index_from_the_stored_objects() {
    let sim = simulator(vec![spec("one", dataset(Scale::Small))]).await;
    let scratch = Scratch::new("reindex");
    let mut cache = open(&scratch.db()).await;
    cache.sync(&sim.env(0).base_url(), auto()).await.unwrap();
    let key = |h: &SearchHit| (name_of(&h.kind), h.name.clone(), h.entity.clone(), name_of(&h.matched));
    let texts = ["customer", "group", "NoYes", "sales order", "CustomersV3"];
    let mut before = Vec::new();
    for text in texts {
        let r = cache.search(query(text), read(None)).await.unwrap();
        assert!(!r.hits.is_empty(), "{text}");
        before.push((r.total, r.hits.iter().map(key).collect::<Vec<_>>()));
    }
    drop(cache);
    // The database as schema 5 left it, without its search items: schema 6 rebuilds them from the
    // stored objects.
    let conn = rusqlite::Connection::open(scratch.db()).unwrap();
    let items: i64 = conn.query_row("SELECT count(*) FROM search_items", [], |r| r.get(0)).unwrap();
    undo_schema_7(&conn);
    conn.execute_batch("DELETE FROM search_items; DELETE FROM schema_migrations WHERE version = 6;").unwrap();
    drop(conn);
    let mut cache = open(&scratch.db()).await;
    assert_eq!(cache.schema().applied, [6, 7]);
    for (text, before) in texts.iter().zip(&before) {
        let r = cache.search(query(text), read(None)).await.unwrap();
        assert_eq!(&(r.total, r.hits.iter().map(key).collect::<Vec<_>>()), before, "{text}");
    }
    drop(cache);
    let conn = rusqlite::Connection::open(scratch.db()).unwrap();
    let rebuilt: i64 = conn.query_row("SELECT count(*) FROM search_items", [], |r| r.get(0)).unwrap();
    assert_eq!(rebuilt, items);
    let indexed: i64 = conn.query_row("SELECT count(*) FROM search_fts WHERE search_fts MATCH 'a* OR b* OR c*'", [], |r| r.get(0)).unwrap();
    assert!(indexed > 0);
}

/// Takes a database back to schema 6: no object sources, no part counts.
fn undo_schema_7(conn: &rusqlite::Connection) {
    conn.execute_batch(
        "DROP TABLE object_sources; DROP TABLE cache_keys;
         ALTER TABLE public_entities DROP COLUMN property_count; ALTER TABLE public_entities DROP COLUMN navigation_property_count;
         ALTER TABLE public_entities DROP COLUMN constraint_count; ALTER TABLE public_entities DROP COLUMN property_group_count;
         ALTER TABLE public_entities DROP COLUMN action_count; ALTER TABLE enumerations DROP COLUMN member_count;
         CREATE INDEX labels_by_id ON labels(label_id, language);
         DELETE FROM schema_migrations WHERE version = 7;",
    )
    .unwrap();
}

#[tokio::test]
async fn upgrading_to_schema_7_counts_the_parts_of_stored_objects() {
    let data = dataset(Scale::Small);
    let sim = simulator(vec![spec("one", data.clone())]).await;
    let scratch = Scratch::new("schema-7");
    let mut cache = open(&scratch.db()).await;
    let url = sim.env(0).base_url();
    let first = cache.sync(&url, auto()).await.unwrap();
    drop(cache);
    undo_schema_7(&rusqlite::Connection::open(scratch.db()).unwrap());
    let mut cache = open(&scratch.db()).await;
    assert_eq!(cache.schema().applied, [7]);
    // A full sync again stores no object (all are stored), so its counts come from the parts the
    // migration counted; and it records the texts it read.
    let again = cache.sync(&url, sync_options(d365meta::cache::Strategy::Full, &["en-US"])).await.unwrap();
    assert_eq!(again.phases.iter().take(3).map(|p| p.written).sum::<u64>(), 0);
    assert_eq!(counts_array(again.counts.as_ref().unwrap()), counts_array(first.counts.as_ref().unwrap()));
    assert_eq!(counts_array(again.counts.as_ref().unwrap()), expected_counts(&data, &["en-US"]));
    drop(cache);
    assert_eq!(rows(&scratch.db(), "object_sources"), rows(&scratch.db(), "objects"));
}

#[tokio::test]
async fn an_entitys_items_are_found_and_ranked_as_in_the_whole_index() {
    let mut cache = shared().await;
    let none = SearchFilters { category: None, read_only: None, data_service_enabled: None, data_management_enabled: None, entity: None };
    let key = |h: &SearchHit| (name_of(&h.kind), h.name.clone(), h.entity.clone(), name_of(&h.matched));
    for text in ["group", "customer", "id", "account", "CustomerGroup", "name", "dataAreaId"] {
        // Every property and action matching the text, page by page, keeping CustomerV3's.
        let mut everywhere = Vec::new();
        let mut offset = 0;
        loop {
            let q = SearchQuery { kinds: vec![ObjectKind::Property, ObjectKind::Action], limit: 200, offset, ..query(text) };
            let page = cache.search(q, read(None)).await.unwrap();
            if page.hits.is_empty() {
                break;
            }
            everywhere.extend(page.hits.iter().filter(|h| h.entity.as_deref() == Some("CustomerV3")).map(key));
            offset += 200;
        }
        let q = SearchQuery { filters: SearchFilters { entity: Some("CustomersV3".into()), ..none.clone() }, limit: 200, ..query(text) };
        let within = cache.search(q, read(None)).await.unwrap();
        assert_eq!(within.hits.iter().map(key).collect::<Vec<_>>(), everywhere, "{text}");
        assert_eq!(within.total as usize, everywhere.len(), "{text}");
    }
}
