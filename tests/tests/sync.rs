//! Sync end to end: the real component in the real host, a real SQLite file, the simulator over
//! loopback.

use d365meta::bindings::name_of;
use d365meta::cache::{Cache, ErrorKind, Strategy, SyncOptions};
use d365meta::imports::host::ProgressSink;
use d365meta_simulator::{Dataset, Fault, FaultKind, Scale};
use d365meta_tests::*;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn metadata_requests(env: &d365meta_simulator::SimEnv) -> usize {
    count_requests(env, "/Metadata/")
}

#[tokio::test]
async fn a_full_sync_holds_exactly_the_simulators_data() {
    let data = dataset(Scale::Small);
    let sim = simulator(vec![spec("a", data.clone())]).await;
    let scratch = Scratch::new("full");
    let mut cache = open(&scratch.db()).await;
    let report = cache.sync(&sim.env(0).base_url(), sync_options(Strategy::Auto, &["en-US", "de"])).await.unwrap();
    assert_eq!(name_of(&report.plan), "full");
    assert!(report.new_version);
    assert_eq!(report.coverage.languages, ["de", "en-US"]);
    assert_eq!(counts_array(report.counts.as_ref().unwrap()), expected_counts(&data, &["en-US", "de"]));
    let literal = data.public_entities.iter().flat_map(|e| &e.properties).filter(|p| !p.label_id.starts_with('@')).count();
    assert!(literal > 0, "the simulator has literal label texts");
    // One request per label id and language, none for literal texts; plus detection, build versions
    // and one page per collection.
    let label_requests = count_requests(&sim.env(0), "/Metadata/Labels(");
    assert_eq!(label_requests, 2 * data.label_ids().len());
    assert_eq!(report.requests as usize, sim.env(0).requests().len());
    let phases: Vec<String> = report.phases.iter().map(|p| p.phase.to_string()).collect();
    assert_eq!(phases, ["data-entities", "public-entities", "enumerations", "labels:de", "labels:en-US"]);
    assert!(report.phases.iter().take(3).all(|p| p.written == p.fetched && p.reused == 0));
}

#[tokio::test]
async fn a_second_environment_with_the_same_modules_is_linked_without_a_metadata_request() {
    let data = dataset(Scale::Tiny);
    let sim = simulator(vec![spec("a", data.clone()), spec("b", data.clone())]).await;
    let scratch = Scratch::new("link");
    let mut cache = open(&scratch.db()).await;
    let (a, b) = (sim.env(0).base_url(), sim.env(1).base_url());
    cache.sync(&a, auto()).await.unwrap();
    let objects_before = rows(&scratch.db(), "objects");
    let report = cache.sync(&b, auto()).await.unwrap();
    assert_eq!(name_of(&report.plan), "link");
    assert_eq!(report.shared_with, std::slice::from_ref(&a));
    assert_eq!(report.requests, 1);
    assert_eq!(sim.env(1).requests().len(), 1, "only GetInstalledModules: {:?}", sim.env(1).requests());
    assert_eq!(metadata_requests(&sim.env(1)), 0);
    assert_eq!(rows(&scratch.db(), "objects"), objects_before, "linking stores nothing");
    assert_eq!(fingerprint(&scratch.db(), &a), fingerprint(&scratch.db(), &b));
    assert_eq!(counts_array(report.counts.as_ref().unwrap()), expected_counts(&data, &["en-US"]));
}

#[tokio::test]
async fn an_up_to_date_environment_costs_one_request() {
    let sim = simulator(vec![spec("a", dataset(Scale::Tiny))]).await;
    let scratch = Scratch::new("uptodate");
    let mut cache = open(&scratch.db()).await;
    let url = sim.env(0).base_url();
    let first = cache.sync(&url, auto()).await.unwrap();
    sim.env(0).clear_requests();
    let again = cache.sync(&url, auto()).await.unwrap();
    assert_eq!(name_of(&again.plan), "up-to-date");
    assert_eq!(again.requests, 1);
    assert_eq!(sim.env(0).requests().len(), 1);
    assert_eq!(counts_array(again.counts.as_ref().unwrap()), counts_array(first.counts.as_ref().unwrap()));
}

#[tokio::test]
async fn an_incremental_sync_writes_only_what_changed_and_reads_like_a_full_one() {
    let v1 = dataset(Scale::Small);
    let (v2, evolution) = v1.evolve(11, 6);
    let v2 = Arc::new(v2);
    let sim = simulator(vec![spec("prod", v1.clone()), spec("fresh", v2.clone())]).await;
    let scratch = Scratch::new("incremental");
    let mut cache = open(&scratch.db()).await;
    let url = sim.env(0).base_url();
    cache.sync(&url, auto()).await.unwrap();
    // Every item text read became an object, and is recorded as such (sync::sources).
    let sources = rows(&scratch.db(), "object_sources");
    assert_eq!(sources, rows(&scratch.db(), "objects"));

    // The environment is upgraded in place.
    sim.env(0).set_dataset(v2.clone());
    sim.env(0).set_modules(None);
    let report = cache.sync(&url, auto()).await.unwrap();
    assert_eq!(name_of(&report.plan), "incremental");
    assert!(report.new_version);
    let written: Vec<(String, u64)> = report.phases.iter().map(|p| (p.phase.to_string(), p.written)).collect();
    let n = |v: &Vec<String>| v.len() as u64;
    assert_eq!(
        written,
        [
            ("data-entities".to_owned(), n(&evolution.changed_data_entities) + n(&evolution.added_data_entities)),
            ("public-entities".to_owned(), n(&evolution.changed_public_entities) + n(&evolution.added_public_entities)),
            ("enumerations".to_owned(), n(&evolution.changed_enumerations)),
            (
                "labels:en-US".to_owned(),
                (v2.label_ids().difference(&v1.label_ids()).filter(|id| v2.labels.get(id, "en-US").is_some())).count() as u64
            ),
        ]
    );
    let label_phase = &report.phases[3];
    assert_eq!(label_phase.fetched as usize, v2.label_ids().difference(&v1.label_ids()).count(), "only new label ids are requested");
    assert_eq!(label_phase.reused as usize, v2.label_ids().intersection(&v1.label_ids()).count());
    assert_eq!(counts_array(report.counts.as_ref().unwrap()), expected_counts(&v2, &["en-US"]));
    // The new texts, and only they, are recorded: the others were recognised.
    let new_objects: u64 = report.phases[..3].iter().map(|p| p.written).sum();
    assert_eq!(rows(&scratch.db(), "object_sources") - sources, new_objects as i64);

    // A full sync of the new version into an empty cache reads the same, object for object.
    let other = Scratch::new("incremental-reference");
    let mut reference = open(&other.db()).await;
    let full = reference.sync(&sim.env(1).base_url(), auto()).await.unwrap();
    assert_eq!(name_of(&full.plan), "full");
    assert_eq!(full.modules_hash, report.modules_hash);
    let incremental = fingerprint(&scratch.db(), &url);
    let from_scratch = fingerprint(&other.db(), &sim.env(1).base_url());
    assert_eq!(incremental.objects.len(), from_scratch.objects.len());
    assert_eq!(incremental, from_scratch);
}

#[tokio::test]
async fn gc_removes_exactly_what_nothing_references() {
    let v1 = dataset(Scale::Small);
    let (v2, _) = v1.evolve(3, 5);
    let v2 = Arc::new(v2);
    let sim = simulator(vec![spec("a", v1.clone())]).await;
    let scratch = Scratch::new("gc");
    let mut cache = open(&scratch.db()).await;
    let url = sim.env(0).base_url();
    cache.sync(&url, auto()).await.unwrap();
    // Nothing is unreferenced yet.
    let nothing = cache.gc(gc_options(0)).await.unwrap();
    assert_eq!((nothing.versions, nothing.snapshots, nothing.objects, nothing.labels), (0, 0, 0, 0));

    sim.env(0).set_dataset(v2.clone());
    sim.env(0).set_modules(None);
    cache.sync(&url, auto()).await.unwrap();
    let before = fingerprint(&scratch.db(), &url);

    // Objects of the first version whose content the second does not have, and its label rows the
    // second does not use: computed from the simulator's data, not from the cache.
    fn contents<T: serde::Serialize>(items: &[T]) -> BTreeSet<String> {
        items.iter().map(|i| serde_json::to_string(i).unwrap()).collect()
    }
    let only_old = |a: BTreeSet<String>, b: BTreeSet<String>| a.difference(&b).count() as u64;
    let objects = only_old(contents(&v1.data_entities), contents(&v2.data_entities))
        + only_old(contents(&v1.public_entities), contents(&v2.public_entities))
        + only_old(contents(&v1.enumerations), contents(&v2.enumerations));
    let label_rows = |d: &Dataset| -> BTreeSet<(String, Option<String>)> {
        d.label_ids()
            .into_iter()
            .map(|id| {
                let text = d.labels.get(&id, "en-US").map(str::to_owned);
                (id, text)
            })
            .collect()
    };
    let labels = only_old(
        label_rows(&v1).into_iter().map(|r| format!("{r:?}")).collect(),
        label_rows(&v2).into_iter().map(|r| format!("{r:?}")).collect(),
    );
    assert!(objects > 0 && labels > 0, "the new version changed objects ({objects}) and labels ({labels})");

    let report = cache.gc(gc_options(0)).await.unwrap();
    assert_eq!((report.versions, report.snapshots, report.objects, report.labels), (1, 1, objects, labels));
    assert_eq!(fingerprint(&scratch.db(), &url), before, "what the environment reads is untouched");
    let again = cache.gc(gc_options(0)).await.unwrap();
    assert_eq!((again.versions, again.snapshots, again.objects, again.labels), (0, 0, 0, 0));
    assert_eq!(cache.list_versions().await.unwrap().len(), 1);
}

/// The full-text indexes are written a batch at a time, apart from their rows: after a full sync,
/// an incremental one and a gc, each must hold exactly its rows (FTS5's own check against the
/// content table), and a search must find what only the newer version added.
#[tokio::test]
async fn the_search_indexes_hold_exactly_their_rows() {
    let v1 = dataset(Scale::Small);
    let (v2, evolution) = v1.evolve(5, 8);
    let added = evolution.added_public_entities.first().expect("the evolution adds a public entity").clone();
    let sim = simulator(vec![spec("a", v1.clone())]).await;
    let scratch = Scratch::new("fts");
    let mut cache = open(&scratch.db()).await;
    let url = sim.env(0).base_url();
    let check = |when: &str| {
        let conn = rusqlite::Connection::open(scratch.db()).unwrap();
        for table in ["search_fts", "label_fts"] {
            conn.execute(&format!("INSERT INTO {table} ({table}, rank) VALUES ('integrity-check', 1)"), [])
                .unwrap_or_else(|e| panic!("{table} after {when}: {e}"));
        }
        let phrase = format!("name : \"{}\"", added.to_lowercase());
        conn.query_row("SELECT count(*) FROM search_fts WHERE search_fts MATCH ?1", [&phrase], |r| r.get::<_, i64>(0)).unwrap()
    };
    cache.sync(&url, sync_options(Strategy::Auto, &["en-US"])).await.unwrap();
    assert_eq!(check("a full sync"), 0, "{added} is not in the first version");
    sim.env(0).set_dataset(Arc::new(v2));
    sim.env(0).set_modules(None);
    cache.sync(&url, sync_options(Strategy::Auto, &["en-US"])).await.unwrap();
    assert!(check("an incremental sync") >= 1, "{added} is indexed");
    let query = d365meta::cache::SearchQuery {
        text: added.clone(),
        kinds: vec![],
        filters: d365meta::cache::SearchFilters {
            category: None,
            read_only: None,
            data_service_enabled: None,
            data_management_enabled: None,
            entity: None,
        },
        limit: 20,
        offset: 0,
    };
    let options = d365meta::cache::ReadOptions { base_url: Some(url.clone()), labels: None };
    let search = cache.search(query, options).await.unwrap();
    assert!(search.hits.iter().any(|h| h.name == added), "a search finds {added}: {:?}", search.hits);
    let removed = cache.gc(gc_options(0)).await.unwrap();
    assert!(removed.objects > 0 && removed.labels > 0, "gc removed the first version's own objects and labels");
    assert!(check("gc") >= 1);
}

#[tokio::test]
async fn gc_keeps_recent_versions_when_asked() {
    let v1 = dataset(Scale::Tiny);
    let (v2, _) = v1.evolve(5, 2);
    let sim = simulator(vec![spec("a", v1.clone())]).await;
    let scratch = Scratch::new("gc-keep");
    let mut cache = open(&scratch.db()).await;
    let url = sim.env(0).base_url();
    cache.sync(&url, auto()).await.unwrap();
    sim.env(0).set_dataset(Arc::new(v2));
    sim.env(0).set_modules(None);
    cache.sync(&url, auto()).await.unwrap();
    let kept = cache.gc(gc_options(7)).await.unwrap();
    assert_eq!((kept.versions, kept.snapshots), (0, 0), "a version seen today is kept for 7 days, with its latest snapshot");
    let removed = cache.gc(gc_options(0)).await.unwrap();
    assert_eq!((removed.versions, removed.snapshots), (1, 1));
}

#[tokio::test]
async fn paged_collections_are_followed_to_the_end() {
    let data = dataset(Scale::Small);
    let mut env = spec("paged", data.clone());
    env.page_size = Some(37);
    let sim = simulator(vec![env]).await;
    let scratch = Scratch::new("paging");
    let mut cache = open(&scratch.db()).await;
    let report = cache.sync(&sim.env(0).base_url(), auto()).await.unwrap();
    assert_eq!(counts_array(report.counts.as_ref().unwrap()), expected_counts(&data, &["en-US"]));
    let pages = |c: &str| count_requests(&sim.env(0), &format!("/Metadata/{c}"));
    assert_eq!(pages("DataEntities"), data.data_entities.len().div_ceil(37));
    assert_eq!(pages("PublicEntities"), data.public_entities.len().div_ceil(37));
    assert_eq!(pages("PublicEnumerations"), data.enumerations.len().div_ceil(37));
    // Order is the wire's.
    let fp = fingerprint(&scratch.db(), &sim.env(0).base_url());
    let names: Vec<&str> = fp.objects.iter().filter(|o| o.0 == "public-entity").map(|o| o.2.as_str()).collect();
    let wire: Vec<&str> = data.public_entities.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, wire);
}

#[tokio::test]
async fn a_dry_run_plans_without_fetching() {
    let sim = simulator(vec![spec("a", dataset(Scale::Tiny))]).await;
    let scratch = Scratch::new("dry");
    let mut cache = open(&scratch.db()).await;
    let report = cache.sync(&sim.env(0).base_url(), SyncOptions { dry_run: true, ..auto() }).await.unwrap();
    assert!(report.dry_run);
    assert_eq!(name_of(&report.plan), "full");
    assert_eq!(
        report.planned_phases.iter().map(|p| p.phase.to_string()).collect::<Vec<_>>(),
        ["data-entities", "public-entities", "enumerations", "labels:en-US"]
    );
    assert!(report.phases.is_empty() && report.counts.is_none());
    assert_eq!(sim.env(0).requests().len(), 1);
    assert_eq!(rows(&scratch.db(), "snapshots"), 0);
    let history = cache.history(None, 10).await.unwrap();
    assert_eq!(name_of(&history[0].outcome), "planned");
}

#[tokio::test]
async fn more_languages_are_added_without_fetching_entities_again() {
    let data = dataset(Scale::Tiny);
    let sim = simulator(vec![spec("a", data.clone())]).await;
    let scratch = Scratch::new("languages");
    let mut cache = open(&scratch.db()).await;
    let url = sim.env(0).base_url();
    cache.sync(&url, auto()).await.unwrap();
    sim.env(0).clear_requests();
    let report = cache.sync(&url, sync_options(Strategy::Auto, &["de"])).await.unwrap();
    assert_eq!(name_of(&report.plan), "labels-only");
    assert_eq!(report.coverage.languages, ["de", "en-US"]);
    assert_eq!(count_requests(&sim.env(0), "/Metadata/Labels("), data.label_ids().len());
    assert_eq!(metadata_requests(&sim.env(0)), data.label_ids().len(), "no entity collection is read again");
    assert_eq!(counts_array(report.counts.as_ref().unwrap()), expected_counts(&data, &["en-US", "de"]));
    // Languages once synced stay: a plain sync is now up to date with both.
    let again = cache.sync(&url, auto()).await.unwrap();
    assert_eq!(name_of(&again.plan), "up-to-date");
    assert_eq!(again.coverage.languages, ["de", "en-US"]);
}

#[tokio::test]
async fn forced_strategies_that_cannot_apply_say_why() {
    let sim = simulator(vec![spec("a", dataset(Scale::Tiny))]).await;
    let scratch = Scratch::new("forced");
    let mut cache = open(&scratch.db()).await;
    let url = sim.env(0).base_url();
    for (strategy, words) in [(Strategy::LabelsOnly, "labels-only needs"), (Strategy::Incremental, "incremental needs")] {
        let err = cache.sync(&url, sync_options(strategy, &[])).await.unwrap_err();
        let core = core_error(&err);
        assert_eq!(core.kind, ErrorKind::InvalidInput);
        assert!(core.message.contains(words), "{}", core.message);
    }
    let entities = cache.sync(&url, sync_options(Strategy::EntitiesOnly, &[])).await.unwrap();
    assert_eq!(name_of(&entities.plan), "entities-only");
    assert!(entities.coverage.languages.is_empty());
    assert_eq!(count_requests(&sim.env(0), "/Metadata/Labels("), 0);
    let labels = cache.sync(&url, sync_options(Strategy::LabelsOnly, &["en-US"])).await.unwrap();
    assert_eq!(name_of(&labels.plan), "labels-only");
    assert_eq!(labels.coverage.languages, ["en-US"]);
    let err = cache.sync(&url, sync_options(Strategy::Auto, &["en_US"])).await.unwrap_err();
    assert_eq!(core_error(&err).kind, ErrorKind::InvalidInput);
}

#[tokio::test]
async fn a_malformed_item_fails_the_sync_by_name_and_keeps_the_previous_snapshot() {
    let v1 = dataset(Scale::Tiny);
    let (v2, _) = v1.evolve(9, 1);
    let sim = simulator(vec![spec("a", v1.clone())]).await;
    let scratch = Scratch::new("malformed");
    let mut cache = open(&scratch.db()).await;
    let url = sim.env(0).base_url();
    cache.sync(&url, auto()).await.unwrap();
    let before = fingerprint(&scratch.db(), &url);
    sim.env(0).set_dataset(Arc::new(v2));
    sim.env(0).set_modules(None);
    let body = r#"{"value": [{"Name": "Good", "Members": []}, {"Name": "BrokenEnum", "LabelId": 42, "Members": []}]}"#;
    sim.env(0).inject(Fault::new("PublicEnumerations", 1, FaultKind::Body(body.to_owned())));
    let err = cache.sync(&url, auto()).await.unwrap_err();
    let core = core_error(&err);
    assert_eq!(core.kind, ErrorKind::Parse);
    assert!(
        core.message.contains("PublicEnumerations item 2") && core.message.contains("BrokenEnum") && core.message.contains("LabelId"),
        "{}",
        core.message
    );
    assert_eq!(fingerprint(&scratch.db(), &url), before, "readers still see the previous version");
    let history = cache.history(Some(&url), 1).await.unwrap();
    assert_eq!(name_of(&history[0].outcome), "failed");
    assert!(history[0].error.as_deref().unwrap().contains("BrokenEnum"));
    // The next sync resumes: entity kinds already written are not fetched again.
    sim.env(0).clear_requests();
    let report = cache.sync(&url, auto()).await.unwrap();
    assert_eq!(name_of(&report.plan), "incremental");
    assert_eq!(count_requests(&sim.env(0), "/Metadata/DataEntities"), 0);
    assert_eq!(count_requests(&sim.env(0), "/Metadata/PublicEntities"), 0);
    assert_eq!(count_requests(&sim.env(0), "/Metadata/PublicEnumerations"), 1);
}

#[tokio::test]
async fn labels_that_fail_fail_the_phase_and_only_they_are_fetched_again() {
    let data = dataset(Scale::Tiny);
    let sim = simulator(vec![spec("a", data.clone())]).await;
    let scratch = Scratch::new("labelfail");
    let mut cache = open(&scratch.db()).await;
    let url = sim.env(0).base_url();
    let victim = data.label_ids().into_iter().nth(5).unwrap();
    sim.env(0).inject(Fault::status(format!("Labels(Id='{victim}'"), 1, 500));
    let err = cache.sync(&url, auto()).await.unwrap_err();
    let core = core_error(&err);
    assert!(core.message.contains("1 of") && core.message.contains(&victim) && core.message.contains("HTTP 500"), "{}", core.message);
    assert!(cache.list_environments().await.unwrap()[0].modules_hash.is_some());
    assert_eq!(rows(&scratch.db(), "snapshots WHERE state = 'complete'"), 0, "no partial snapshot becomes visible");
    sim.env(0).clear_requests();
    let report = cache.sync(&url, auto()).await.unwrap();
    assert_eq!(count_requests(&sim.env(0), "/Metadata/Labels("), 1, "only the failed label is fetched again");
    assert_eq!(counts_array(report.counts.as_ref().unwrap()), expected_counts(&data, &["en-US"]));
}

#[tokio::test]
async fn a_next_link_to_another_host_is_not_followed() {
    let sim = simulator(vec![spec("a", dataset(Scale::Tiny))]).await;
    let body = r#"{"value": [], "@odata.nextLink": "http://attacker.example/Metadata/DataEntities?$skip=1"}"#;
    sim.env(0).inject(Fault::new("/Metadata/DataEntities", 1, FaultKind::Body(body.to_owned())));
    let scratch = Scratch::new("nextlink");
    let err = open(&scratch.db()).await.sync(&sim.env(0).base_url(), auto()).await.unwrap_err();
    let core = core_error(&err);
    assert!(core.message.contains("leads outside the environment") && core.message.contains("attacker.example"), "{}", core.message);
}

/// Records progress events and cancels the token once a phase starts.
fn cancel_when(phase: &'static str, cancel: d365meta::cancel::CancelToken, seen: Arc<Mutex<Vec<String>>>) -> ProgressSink {
    Arc::new(move |e: &d365meta::bindings::host_api::ProgressEvent| {
        seen.lock().unwrap().push(e.phase.to_string());
        if e.phase.to_string() == phase && e.done > 0 {
            cancel.cancel();
        }
    })
}

#[tokio::test]
async fn cancelling_stops_promptly_keeps_the_cache_consistent_and_the_next_sync_finishes() {
    let data = dataset(Scale::Small);
    let sim = simulator(vec![spec("a", data.clone())]).await;
    sim.env(0).inject(Fault::new("/Metadata/Labels(", usize::MAX, FaultKind::Delay(Duration::from_millis(20))));
    let scratch = Scratch::new("cancel");
    let mut options = options(&scratch.db());
    let cancel = options.cancel.clone();
    let seen = Arc::new(Mutex::new(Vec::new()));
    options.progress = Some(cancel_when("labels:en-US", cancel.clone(), seen.clone()));
    let mut cache = Cache::open(runtime(), options).await.unwrap();
    let url = sim.env(0).base_url();
    let started = std::time::Instant::now();
    let err = cache.sync(&url, auto()).await.unwrap_err();
    assert_eq!(core_error(&err).kind, ErrorKind::Cancelled, "{err:#}");
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    let fetched_before = count_requests(&sim.env(0), "/Metadata/Labels(");
    assert!(fetched_before < data.label_ids().len(), "cancelled before the labels were done");
    assert_eq!(name_of(&cache.history(Some(&url), 1).await.unwrap()[0].outcome), "cancelled");
    assert_eq!(rows(&scratch.db(), "environments WHERE snapshot_id IS NOT NULL"), 0, "nothing half-done is visible");
    drop(cache);

    sim.env(0).clear_faults();
    sim.env(0).clear_requests();
    let mut cache = open(&scratch.db()).await;
    let report = cache.sync(&url, auto()).await.unwrap();
    assert_eq!(counts_array(report.counts.as_ref().unwrap()), expected_counts(&data, &["en-US"]));
    assert_eq!(count_requests(&sim.env(0), "/Metadata/DataEntities"), 0, "finished phases are not run again");
    assert!(count_requests(&sim.env(0), "/Metadata/Labels(") < data.label_ids().len(), "labels fetched before the cancel are kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sync_of_the_same_environment_is_refused_while_reads_go_on() {
    let data = dataset(Scale::Small);
    let sim = simulator(vec![spec("a", data.clone()), spec("twin", data.clone())]).await;
    sim.env(0).inject(Fault::new("/Metadata/Labels(", usize::MAX, FaultKind::Delay(Duration::from_millis(20))));
    let scratch = Scratch::new("concurrent");
    let url = sim.env(0).base_url();
    let mut reader = open(&scratch.db()).await;
    reader.detect_version(&sim.env(1).base_url()).await.unwrap();

    let mut first_options = options(&scratch.db());
    let started = Arc::new(tokio::sync::Notify::new());
    let signal = started.clone();
    first_options.progress = Some(Arc::new(move |e: &d365meta::bindings::host_api::ProgressEvent| {
        if matches!(e.phase, d365meta::cache::Phase::Labels(_)) {
            signal.notify_one();
        }
    }));
    let cancel = first_options.cancel.clone();
    let mut first = Cache::open(runtime(), first_options).await.unwrap();
    let first_url = url.clone();
    let running = tokio::spawn(async move { first.sync(&first_url, auto()).await });
    started.notified().await;

    let mut second = open(&scratch.db()).await;
    let err = second.sync(&url, auto()).await.unwrap_err();
    let core = core_error(&err);
    assert_eq!(core.kind, ErrorKind::Conflict);
    assert!(core.message.contains("another sync of") && core.message.contains(&url), "{}", core.message);
    // When it started, as a time and how long ago, not as raw milliseconds.
    assert!(core.message.contains("started 20") && core.message.contains("Z, ") && core.message.contains(" ago)"), "{}", core.message);
    // Another environment with the same modules would build the same version: refused too, clearly.
    let err = second.sync(&sim.env(1).base_url(), auto()).await.unwrap_err();
    assert!(core_error(&err).message.contains("being synced by another process"), "{err:#}");
    // Reads work during the sync.
    assert_eq!(reader.list_environments().await.unwrap().len(), 2);
    assert_eq!(reader.history(Some(&url), 5).await.unwrap().iter().filter(|r| name_of(&r.outcome) == "running").count(), 1);

    cancel.cancel();
    let outcome = running.await.unwrap();
    assert_eq!(core_error(&outcome.unwrap_err()).kind, ErrorKind::Cancelled);
    sim.env(0).clear_faults();
    let done = second.sync(&url, auto()).await.unwrap();
    assert_eq!(counts_array(done.counts.as_ref().unwrap()), expected_counts(&data, &["en-US"]));
    let linked = second.sync(&sim.env(1).base_url(), auto()).await.unwrap();
    assert_eq!(name_of(&linked.plan), "link");
}
