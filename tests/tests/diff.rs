//! `diff` against versions whose differences are known: the simulator's evolution of a dataset, plus
//! one change of every kind it does not make, each on an entity nothing else touched.

use d365meta::cache::{ChangeKind, DiffOptions, DiffPart, DiffSide, ErrorKind, MetadataDiff, ObjectChange, ObjectKind};
use d365meta_simulator::Scale;
use d365meta_simulator::model as wire;
use d365meta_tests::*;
use std::collections::BTreeSet;
use std::sync::Arc;

fn options() -> DiffOptions {
    DiffOptions { kinds: vec![], entity: None, only_breaking: false, label_languages: vec![] }
}

fn kind_of(o: &ObjectChange) -> &'static str {
    match o.kind {
        ObjectKind::DataEntity => "data-entity",
        ObjectKind::PublicEntity => "public-entity",
        ObjectKind::Enumeration => "enumeration",
        ObjectKind::Action => "action",
        ObjectKind::Property => "property",
    }
}

fn object<'d>(diff: &'d MetadataDiff, kind: &str, name: &str) -> &'d ObjectChange {
    diff.objects.iter().find(|o| kind_of(o) == kind && o.name == name).unwrap_or_else(|| panic!("{kind} {name} is not in the diff"))
}

/// Whether `o` reports a change of `part` named `name` (`field` for a changed field).
fn has(o: &ObjectChange, part: DiffPart, name: &str, change: ChangeKind, field: Option<&str>, breaking: bool) -> bool {
    o.changes
        .iter()
        .any(|c| c.part == part && c.name == name && c.change == change && c.field.as_deref() == field && c.breaking == breaking)
}

/// The changes made by hand, on entities the evolution left alone.
struct Known {
    removed_property: (String, String),
    retyped: (String, String),
    /// The entity, and its key before and after (as the diff writes a key: names in order).
    rekeyed: (String, String, String),
    not_editable: (String, String),
    removed_action: (String, String),
    new_parameter: (String, String),
    constraint: (String, String),
    removed_member: (String, String),
    revalued: (String, String),
    withdrawn: String,
    relabelled: (String, String),
}

fn change_by_hand(v2: &mut d365meta_simulator::Dataset, untouched: &BTreeSet<String>) -> Known {
    let mut free = v2.public_entities.iter().enumerate().filter(|(_, e)| !untouched.contains(&e.name)).map(|(i, _)| i).collect::<Vec<_>>();
    let mut take = |v2: &d365meta_simulator::Dataset, ok: &dyn Fn(&wire::PublicEntity) -> bool| -> usize {
        let at = free.iter().position(|&i| ok(&v2.public_entities[i])).expect("an entity fit for the change");
        free.remove(at)
    };
    let non_key = |e: &wire::PublicEntity| e.properties.iter().position(|p| !p.is_key && !p.is_mandatory && p.allow_edit);

    let i = take(v2, &|e| non_key(e).is_some());
    let p = non_key(&v2.public_entities[i]).unwrap();
    let removed_property = (v2.public_entities[i].name.clone(), v2.public_entities[i].properties.remove(p).name);

    let i = take(v2, &|e| non_key(e).is_some());
    let p = non_key(&v2.public_entities[i]).unwrap();
    v2.public_entities[i].properties[p].type_name = "Edm.Guid".to_owned();
    let retyped = (v2.public_entities[i].name.clone(), v2.public_entities[i].properties[p].name.clone());

    let i = take(v2, &|e| non_key(e).is_some());
    let p = non_key(&v2.public_entities[i]).unwrap();
    let key = |e: &wire::PublicEntity| e.properties.iter().filter(|p| p.is_key).map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ");
    let old_key = key(&v2.public_entities[i]);
    v2.public_entities[i].properties[p].is_key = true;
    let rekeyed = (v2.public_entities[i].name.clone(), old_key, key(&v2.public_entities[i]));

    let i = take(v2, &|e| non_key(e).is_some());
    let p = non_key(&v2.public_entities[i]).unwrap();
    v2.public_entities[i].properties[p].allow_edit = false;
    let not_editable = (v2.public_entities[i].name.clone(), v2.public_entities[i].properties[p].name.clone());

    let i = take(v2, &|e| !e.actions.is_empty());
    let removed_action = (v2.public_entities[i].name.clone(), v2.public_entities[i].actions.remove(0).name);

    let i = take(v2, &|e| !e.actions.is_empty());
    let entity = &mut v2.public_entities[i];
    entity.actions[0].parameters.push(wire::ActionParameter {
        name: "reasonCode".to_owned(),
        type_ref: wire::TypeRef { type_name: "Edm.String".to_owned(), is_collection: false },
    });
    let new_parameter = (entity.name.clone(), format!("{}.reasonCode", entity.actions[0].name));

    let i = take(v2, &|e| e.navigation_properties.iter().any(|n| !n.constraints.is_empty()));
    let entity = &mut v2.public_entities[i];
    let nav = entity.navigation_properties.iter_mut().find(|n| !n.constraints.is_empty()).unwrap();
    nav.constraints.pop();
    let constraint = (entity.name.clone(), nav.name.clone());

    let mut enums = v2.enumerations.iter_mut().filter(|e| !untouched.contains(&e.name) && e.members.len() >= 3);
    let e = enums.next().expect("an enumeration to change");
    let removed_member = (e.name.clone(), e.members.pop().unwrap().name);
    let e = enums.next().expect("a second enumeration to change");
    e.members[0].value += 100;
    let revalued = (e.name.clone(), e.members[0].name.clone());

    let d = v2
        .data_entities
        .iter_mut()
        .find(|d| d.data_service_enabled && !untouched.contains(&d.name) && !untouched.contains(&d.public_entity_name))
        .expect("a data entity to change");
    d.data_service_enabled = false;
    let withdrawn = d.name.clone();

    let label = v2.public_entities.iter().find(|e| !untouched.contains(&e.name)).unwrap().label_id.clone();
    let old = v2.labels.get(&label, "en-US").expect("an en-US text").to_owned();
    v2.labels.insert(label.clone(), "en-US", format!("{old} (renamed)"));

    Known {
        removed_property,
        retyped,
        rekeyed,
        not_editable,
        removed_action,
        new_parameter,
        constraint,
        removed_member,
        revalued,
        withdrawn,
        relabelled: (label, old),
    }
}

#[tokio::test]
async fn every_kind_of_change_is_found_and_nothing_else() {
    let v1 = dataset(Scale::Small);
    let (mut v2, evolution) = v1.evolve(23, 8);
    let untouched: BTreeSet<String> = [
        &evolution.changed_public_entities,
        &evolution.added_public_entities,
        &evolution.removed_public_entities,
        &evolution.changed_enumerations,
        &evolution.changed_data_entities,
        &evolution.added_data_entities,
        &evolution.removed_data_entities,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    let known = change_by_hand(&mut v2, &untouched);
    let sim = simulator(vec![spec("old", v1.clone()), spec("new", Arc::new(v2))]).await;
    let scratch = Scratch::new("diff");
    let mut cache = open(&scratch.db()).await;
    let (old, new) = (sim.env(0).base_url(), sim.env(1).base_url());
    cache.sync(&old, auto()).await.unwrap();
    // In full: an incremental sync takes the texts of label ids it knows from the older version.
    cache.sync(&new, sync_options(d365meta::cache::Strategy::Full, &["en-US"])).await.unwrap();
    let requests = (sim.env(0).requests().len(), sim.env(1).requests().len());

    let (a, b) = (DiffSide::Environment(old.clone()), DiffSide::Environment(new.clone()));
    let diff = cache.diff(a.clone(), b.clone(), options()).await.unwrap();

    // Exactly the objects that differ, each with the right change.
    let mut expected: BTreeSet<(String, String, &str)> = BTreeSet::new();
    let mut put = |kind: &str, names: &[String], change: &'static str| {
        expected.extend(names.iter().map(|n| (kind.to_owned(), n.clone(), change)));
    };
    put("public-entity", &evolution.changed_public_entities, "changed");
    put("public-entity", &evolution.added_public_entities, "added");
    put("public-entity", &evolution.removed_public_entities, "removed");
    put("enumeration", &evolution.changed_enumerations, "changed");
    put("data-entity", &evolution.changed_data_entities, "changed");
    put("data-entity", &evolution.added_data_entities, "added");
    put("data-entity", &evolution.removed_data_entities, "removed");
    for entity in [
        &known.removed_property.0,
        &known.retyped.0,
        &known.rekeyed.0,
        &known.not_editable.0,
        &known.removed_action.0,
        &known.new_parameter.0,
        &known.constraint.0,
    ] {
        expected.insert(("public-entity".to_owned(), entity.clone(), "changed"));
    }
    expected.insert(("enumeration".to_owned(), known.removed_member.0.clone(), "changed"));
    expected.insert(("enumeration".to_owned(), known.revalued.0.clone(), "changed"));
    expected.insert(("data-entity".to_owned(), known.withdrawn.clone(), "changed"));
    let found: BTreeSet<(String, String, &str)> = diff
        .objects
        .iter()
        .map(|o| {
            let change = match o.change {
                ChangeKind::Added => "added",
                ChangeKind::Removed => "removed",
                ChangeKind::Changed => "changed",
            };
            (kind_of(o).to_owned(), o.name.clone(), change)
        })
        .collect();
    assert_eq!(found, expected, "the objects that differ, and only they");
    let total = (v1.data_entities.len() + v1.public_entities.len() + v1.enumerations.len()) as u64;
    let in_a = diff.objects.iter().filter(|o| o.change != ChangeKind::Added).count() as u64;
    assert_eq!(diff.unchanged, total - in_a);
    assert_eq!(diff.modules.changed.len(), evolution.bumped_modules.len());

    // Inside each object changed by hand: the change, and whether it breaks an integration.
    let p = |name: &str| object(&diff, "public-entity", name);
    assert!(has(p(&known.removed_property.0), DiffPart::Property, &known.removed_property.1, ChangeKind::Removed, None, true));
    assert!(has(p(&known.retyped.0), DiffPart::Property, &known.retyped.1, ChangeKind::Changed, Some("type-name"), true));
    assert!(has(p(&known.rekeyed.0), DiffPart::Key, &known.rekeyed.0, ChangeKind::Changed, Some("key"), true));
    // The whole key on each side, though only properties that differ are read to compare.
    let rekeyed = p(&known.rekeyed.0).changes.iter().find(|c| c.part == DiffPart::Key).unwrap();
    let key = |k: &str| (!k.is_empty()).then(|| k.to_owned());
    assert_eq!((rekeyed.old.clone(), rekeyed.new.clone()), (key(&known.rekeyed.1), key(&known.rekeyed.2)));
    let retyped = p(&known.retyped.0).changes.iter().find(|c| c.name == known.retyped.1).unwrap();
    assert_eq!(retyped.new.as_deref(), Some("Edm.Guid"));
    assert_eq!(p(&known.retyped.0).changes.len(), 1, "one property changed, and nothing else reported: {:?}", p(&known.retyped.0).changes);
    assert!(has(p(&known.not_editable.0), DiffPart::Property, &known.not_editable.1, ChangeKind::Changed, Some("allow-edit"), true));
    assert!(has(p(&known.removed_action.0), DiffPart::Action, &known.removed_action.1, ChangeKind::Removed, None, true));
    assert!(has(p(&known.new_parameter.0), DiffPart::Parameter, &known.new_parameter.1, ChangeKind::Added, None, true));
    assert!(has(p(&known.constraint.0), DiffPart::Constraint, &known.constraint.1, ChangeKind::Changed, Some("constraints"), false));
    assert!(!p(&known.constraint.0).breaking, "a constraint dropped breaks no integration");
    let e = |name: &str| object(&diff, "enumeration", name);
    assert!(has(e(&known.removed_member.0), DiffPart::Member, &known.removed_member.1, ChangeKind::Removed, None, true));
    assert!(has(e(&known.revalued.0), DiffPart::Member, &known.revalued.1, ChangeKind::Changed, Some("value"), true));
    let d = object(&diff, "data-entity", &known.withdrawn);
    assert!(has(d, DiffPart::Attribute, &known.withdrawn, ChangeKind::Changed, Some("data-service-enabled"), true));
    for o in &diff.objects {
        assert_eq!(o.breaking, o.change == ChangeKind::Removed || o.changes.iter().any(|c| c.breaking), "{}", o.name);
        assert_eq!(o.change == ChangeKind::Changed, !o.changes.is_empty(), "{}: a changed object says what changed", o.name);
    }
    for name in &evolution.added_public_entities {
        assert!(!p(name).breaking, "an added entity breaks nothing");
    }

    // --only breaking keeps exactly the breaking objects, and in them the breaking changes.
    let breaking = cache.diff(a.clone(), b.clone(), DiffOptions { only_breaking: true, ..options() }).await.unwrap();
    let names = |d: &MetadataDiff| d.objects.iter().map(|o| (kind_of(o), o.name.clone())).collect::<Vec<_>>();
    let want: Vec<_> = diff.objects.iter().filter(|o| o.breaking).map(|o| (kind_of(o), o.name.clone())).collect();
    assert_eq!(names(&breaking), want);
    assert!(breaking.objects.iter().all(|o| o.breaking && o.changes.iter().all(|c| c.breaking)));
    let constraint_entity = breaking.objects.iter().find(|o| o.name == known.constraint.0);
    assert!(constraint_entity.is_none());

    // Filters: kinds, parts of entities, one entity.
    let enums = cache.diff(a.clone(), b.clone(), DiffOptions { kinds: vec![ObjectKind::Enumeration], ..options() }).await.unwrap();
    assert!(!enums.objects.is_empty() && enums.objects.iter().all(|o| kind_of(o) == "enumeration"));
    let actions = cache.diff(a.clone(), b.clone(), DiffOptions { kinds: vec![ObjectKind::Action], ..options() }).await.unwrap();
    assert!(actions.objects.iter().any(|o| o.name == known.removed_action.0));
    assert!(actions.objects.iter().any(|o| o.name == known.new_parameter.0));
    assert!(actions.objects.iter().all(|o| o.changes.iter().all(|c| matches!(c.part, DiffPart::Action | DiffPart::Parameter))));
    let one = cache.diff(a.clone(), b.clone(), DiffOptions { entity: Some(known.retyped.0.to_uppercase()), ..options() }).await.unwrap();
    assert_eq!(names(&one), [("public-entity", known.retyped.0.clone())]);

    // Label texts, in a language both sides cover.
    let labelled = cache.diff(a.clone(), b.clone(), DiffOptions { label_languages: vec!["en-US".into()], ..options() }).await.unwrap();
    let (label, old_text) = &known.relabelled;
    let change = labelled.labels.iter().find(|l| &l.label_id == label).expect("the relabelled text");
    assert_eq!(change.old.as_deref(), Some(old_text.as_str()));
    assert_eq!(change.new, Some(format!("{old_text} (renamed)")));
    assert_eq!(labelled.labels.len(), 1, "only the text that changed: {:?}", labelled.labels);
    let uncovered = cache.diff(a.clone(), b.clone(), DiffOptions { label_languages: vec!["fr".into()], ..options() }).await.unwrap_err();
    assert_eq!(core_error(&uncovered).kind, ErrorKind::InvalidInput, "{uncovered:#}");

    // Versions by modules hash give the same answer; a side against itself, nothing.
    let by_hash = cache
        .diff(DiffSide::Version(diff.a.modules_hash[..10].to_owned()), DiffSide::Version(diff.b.modules_hash.clone()), options())
        .await
        .unwrap();
    assert_eq!(names(&by_hash), names(&diff));
    assert_eq!(format!("{:?}", by_hash.objects), format!("{:?}", diff.objects));
    // Entities stored before properties had fingerprints are read whole, to the same answer.
    let stored = rusqlite::Connection::open(scratch.db()).unwrap();
    let (entities, prints): (i64, i64) =
        stored.query_row("SELECT count(*), count(fingerprints) FROM public_entities", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    assert_eq!(prints, entities, "every entity a sync stores has its fingerprints");
    stored.execute("UPDATE public_entities SET fingerprints = NULL", []).unwrap();
    let unprinted = cache.diff(a.clone(), b.clone(), options()).await.unwrap();
    assert_eq!(format!("{:?}", unprinted.objects), format!("{:?}", diff.objects));
    let same = cache.diff(a.clone(), a.clone(), options()).await.unwrap();
    assert!(same.objects.is_empty());
    assert_eq!(same.unchanged, total);
    let unknown = cache.diff(a.clone(), DiffSide::Environment("http://127.0.0.1:1".into()), options()).await.unwrap_err();
    assert_eq!(core_error(&unknown).kind, ErrorKind::NotFound);

    assert_eq!((sim.env(0).requests().len(), sim.env(1).requests().len()), requests, "a diff reads the cache alone");
}
