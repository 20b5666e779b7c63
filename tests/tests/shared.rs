//! Versions shared through a store: published from one cache, pulled into another, against a
//! directory and against Azurite (Microsoft's Azure Storage emulator, run by the test).

use d365meta::bindings::name_of;
use d365meta::cache::{
    Cache, CacheOptions, LabelLanguages, PublishOptions, PublishOutcome, PublishReport, ReadOptions, SearchFilters, SearchQuery,
};
use d365meta::imports::host::ProgressSink;
use d365meta::shared::{AzureStorageCredentials, SharedOptions};
use d365meta_simulator::Scale;
use d365meta_tests::azurite::Azurite;
use d365meta_tests::*;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Cache options with `url` as the shared store (and, for Azurite, its connection string).
fn with_store(db: &Path, url: &str, connection_string: Option<String>) -> CacheOptions {
    let mut o = options(db);
    let mut shared = SharedOptions::new(url);
    shared.azure = AzureStorageCredentials { connection_string, ..AzureStorageCredentials::default() };
    // A store that does not answer counts as down after this long: the fallback is what is tested.
    shared.retry_budget = Duration::from_secs(3);
    shared.request_timeout = Duration::from_secs(10);
    o.shared = Some(shared);
    o
}

fn file_url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

fn azurite_store(azurite: &Azurite, container: &str) -> (String, Option<String>) {
    azurite.create_container(container);
    (format!("az://{container}/team/d365"), Some(azurite.connection_string()))
}

fn all() -> PublishOptions {
    PublishOptions { versions: vec![] }
}

/// What a reader sees besides the rows: an entity with its labels, and a search.
async fn answers(cache: &mut Cache, base_url: &str) -> String {
    let options =
        ReadOptions { base_url: Some(base_url.to_owned()), labels: Some(LabelLanguages { language: "en-US".into(), fallback: vec![] }) };
    let entity = cache.get_entity("CustomerV3", options.clone()).await.unwrap();
    let filters =
        SearchFilters { category: None, read_only: None, data_service_enabled: None, data_management_enabled: None, entity: None };
    let query = SearchQuery { text: "customer".into(), kinds: vec![], filters, limit: 20, offset: 0 };
    let found = cache.search(query, options).await.unwrap();
    // The environment's own URL aside, which differs by design.
    format!("{}\n{}", serde_json::to_string(&entity).unwrap(), serde_json::to_string(&found.hits).unwrap()).replace(base_url, "ENV")
}

/// A cache at `db` that synced the simulator's first environment and published it to `url`.
async fn synced_and_published(sim: &d365meta_simulator::Simulator, db: &Path, url: &str, connection_string: Option<String>) -> Cache {
    let mut publisher = Cache::open(runtime(), with_store(db, url, connection_string)).await.unwrap();
    publisher.sync(&sim.env(0).base_url(), auto()).await.unwrap();
    publisher.publish(all()).await.unwrap();
    publisher
}

fn outcomes(report: &PublishReport) -> Vec<PublishOutcome> {
    report.versions.iter().map(|v| v.outcome).collect()
}

/// Publishes the environment's version from a cache that syncs it from the environment, then pulls
/// it into a fresh cache through the same store: the second cache asks the environment one thing
/// (which modules it runs) and ends up with exactly the rows and answers of the first.
async fn publish_then_pull(url: &str, connection_string: Option<String>, name: &str) {
    let sim = simulator(vec![spec("publisher", dataset(Scale::Small)), spec("puller", dataset(Scale::Small))]).await;
    let (a, b) = (Scratch::new(&format!("{name}-a")), Scratch::new(&format!("{name}-b")));
    let mut publisher = Cache::open(runtime(), with_store(&a.db(), url, connection_string.clone())).await.unwrap();
    let direct = publisher.sync(&sim.env(0).base_url(), auto()).await.unwrap();
    assert_eq!(name_of(&direct.plan), "full", "the store is empty: {:?}", direct.warnings);

    let report = publisher.publish(all()).await.unwrap();
    let v = &report.versions[0];
    assert_eq!((report.versions.len(), v.outcome), (1, PublishOutcome::Published));
    let counts = direct.counts.as_ref().unwrap();
    assert_eq!(v.objects, counts.data_entities + counts.public_entities + counts.enumerations);
    assert_eq!((v.objects_uploaded, v.labels_uploaded), (v.objects, v.labels));
    assert!(v.packs_uploaded >= 1 && v.bytes_uploaded > 0);
    let again = publisher.publish(all()).await.unwrap();
    assert_eq!(outcomes(&again), [PublishOutcome::AlreadyPublished]);
    assert_eq!((again.versions[0].packs_uploaded, again.versions[0].bytes_uploaded), (0, 0), "publishing again writes nothing");

    let mut puller = Cache::open(runtime(), with_store(&b.db(), url, connection_string)).await.unwrap();
    let before = sim.env(1).requests().len();
    let pulled = puller.sync(&sim.env(1).base_url(), auto()).await.unwrap();
    assert_eq!(name_of(&pulled.plan), "pull", "{:?}", pulled.warnings);
    assert_eq!(sim.env(1).requests().len() - before, 1, "only the modules are asked of the environment");
    assert_eq!(pulled.requests, 1);
    let p = pulled.pulled.as_ref().unwrap();
    assert_eq!((p.objects, p.labels), (v.objects, v.labels), "everything was new to the fresh cache");
    assert_eq!(counts_array(pulled.counts.as_ref().unwrap()), counts_array(counts));
    let (one, other) = (fingerprint(&a.db(), &sim.env(0).base_url()), fingerprint(&b.db(), &sim.env(1).base_url()));
    assert!(!one.objects.is_empty());
    assert_eq!(one, other, "the same objects, positions and label rows");
    assert_eq!(answers(&mut publisher, &sim.env(0).base_url()).await, answers(&mut puller, &sim.env(1).base_url()).await);
    let version = puller.get_version(None, ReadOptions { base_url: Some(sim.env(1).base_url()), labels: None }).await.unwrap();
    assert!(version.application_version.is_some(), "the application version came with the manifest");
}

#[tokio::test]
async fn a_version_published_to_a_directory_pulls_into_a_fresh_cache_with_one_request() {
    let store = Scratch::new("shared-dir");
    publish_then_pull(&file_url(&store.0.join("team")), None, "dir").await;
}

#[tokio::test]
async fn a_version_published_to_azure_blob_storage_pulls_into_a_fresh_cache_with_one_request() {
    let azurite = Azurite::start();
    let (url, connection_string) = azurite_store(&azurite, "versions");
    publish_then_pull(&url, connection_string, "azurite").await;
}

#[tokio::test]
async fn two_publishers_of_one_version_at_once_write_it_once() {
    let azurite = Azurite::start();
    let (url, connection_string) = azurite_store(&azurite, "race");
    let sim = simulator(vec![spec("a", dataset(Scale::Small)), spec("b", dataset(Scale::Small)), spec("c", dataset(Scale::Small))]).await;
    let scratch: Vec<Scratch> = ["race-a", "race-b", "race-c"].iter().map(|n| Scratch::new(n)).collect();
    let mut caches = Vec::new();
    for (i, s) in scratch.iter().enumerate() {
        let mut cache = Cache::open(runtime(), with_store(&s.db(), &url, connection_string.clone())).await.unwrap();
        if i < 2 {
            cache.sync(&sim.env(i).base_url(), auto()).await.unwrap();
        }
        caches.push(cache);
    }
    let (first, rest) = caches.split_at_mut(1);
    let (second, third) = rest.split_at_mut(1);
    let (x, y) = tokio::join!(first[0].publish(all()), second[0].publish(all()));
    let (x, y) = (x.unwrap(), y.unwrap());
    let mut both = [outcomes(&x), outcomes(&y)].concat();
    both.sort_by_key(|o| *o == PublishOutcome::AlreadyPublished);
    assert_eq!(both, [PublishOutcome::Published, PublishOutcome::AlreadyPublished], "one manifest, written by one of them");

    let pulled = third[0].sync(&sim.env(2).base_url(), auto()).await.unwrap();
    assert_eq!(name_of(&pulled.plan), "pull", "{:?}", pulled.warnings);
    assert_eq!(fingerprint(&scratch[2].db(), &sim.env(2).base_url()), fingerprint(&scratch[0].db(), &sim.env(0).base_url()));
}

#[tokio::test]
async fn a_damaged_pack_is_never_stored_and_the_sync_fetches_from_the_environment() {
    let store = Scratch::new("shared-damaged");
    let url = file_url(&store.0);
    let sim = simulator(vec![spec("publisher", dataset(Scale::Small)), spec("puller", dataset(Scale::Small))]).await;
    let (a, b) = (Scratch::new("damaged-a"), Scratch::new("damaged-b"));
    synced_and_published(&sim, &a.db(), &url, None).await;

    // An entity's name changed inside a pack: parsed, it would be a valid entity of another name.
    let packs: Vec<_> = std::fs::read_dir(store.0.join("packs")).unwrap().map(|e| e.unwrap().path()).collect();
    let pack = packs.iter().max_by_key(|p| std::fs::metadata(p).unwrap().len()).unwrap();
    let stored = std::fs::read(pack).unwrap();
    let text = String::from_utf8(miniz_oxide::inflate::decompress_to_vec_zlib(&stored).unwrap()).unwrap();
    assert!(text.contains("\"name\":\"CustomerV3\""));
    let forged = text.replacen("\"name\":\"CustomerV3\"", "\"name\":\"CustomerV4\"", 1);
    std::fs::write(pack, miniz_oxide::deflate::compress_to_vec_zlib(forged.as_bytes(), 6)).unwrap();

    let mut puller = Cache::open(runtime(), with_store(&b.db(), &url, None)).await.unwrap();
    let report = puller.sync(&sim.env(1).base_url(), auto()).await.unwrap();
    assert_eq!(name_of(&report.plan), "full");
    let pack_name = pack.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("damaged") && w.contains(&pack_name) && w.contains("fetching from the environment instead")),
        "{:?}",
        report.warnings
    );
    assert!(report.pulled.is_none());
    let conn = rusqlite::Connection::open(b.db()).unwrap();
    let forged: i64 = conn.query_row("SELECT count(*) FROM objects WHERE name = 'CustomerV4'", [], |r| r.get(0)).unwrap();
    assert_eq!(forged, 0, "nothing from the damaged pack was stored");
    assert_eq!(rows(&b.db(), "objects"), rows(&a.db(), "objects"));
    assert_eq!(fingerprint(&a.db(), &sim.env(0).base_url()), fingerprint(&b.db(), &sim.env(1).base_url()));
}

#[tokio::test]
async fn a_store_that_goes_down_mid_pull_leaves_the_sync_to_the_environment() {
    let azurite = Arc::new(Mutex::new(Azurite::start()));
    let (url, connection_string) = azurite_store(&azurite.lock().unwrap(), "down");
    let sim = simulator(vec![spec("publisher", dataset(Scale::Small)), spec("puller", dataset(Scale::Small))]).await;
    let (a, b) = (Scratch::new("down-a"), Scratch::new("down-b"));
    synced_and_published(&sim, &a.db(), &url, connection_string.clone()).await;

    // The emulator is stopped once the pull has read the manifest and is about to download packs.
    let mut options = with_store(&b.db(), &url, connection_string);
    let stopper = azurite.clone();
    let sink: ProgressSink = Arc::new(move |event| {
        if event.phase.to_string() == "pull" && event.done == 0 {
            stopper.lock().unwrap().kill();
        }
    });
    options.progress = Some(sink);
    let mut puller = Cache::open(runtime(), options).await.unwrap();
    let report = puller.sync(&sim.env(1).base_url(), auto()).await.unwrap();
    assert!(!azurite.lock().unwrap().is_running(), "the pull began");
    assert_eq!(name_of(&report.plan), "full");
    assert!(
        report.warnings.iter().any(|w| w.contains("unavailable") && w.contains("fetching from the environment instead")),
        "{:?}",
        report.warnings
    );
    assert_eq!(fingerprint(&a.db(), &sim.env(0).base_url()), fingerprint(&b.db(), &sim.env(1).base_url()));

    // With the store down from the start, a sync goes to the environment at once.
    let c = Scratch::new("down-c");
    let connection_string = azurite.lock().unwrap().connection_string();
    let mut late = Cache::open(runtime(), with_store(&c.db(), &url, Some(connection_string))).await.unwrap();
    let report = late.sync(&sim.env(1).base_url(), auto()).await.unwrap();
    assert_eq!(name_of(&report.plan), "full");
    assert!(report.warnings.iter().any(|w| w.contains("listing versions")), "{:?}", report.warnings);
}

#[tokio::test]
async fn a_second_version_publishes_and_pulls_only_what_it_adds() {
    let store = Scratch::new("shared-incremental");
    let url = file_url(&store.0);
    let v1 = dataset(Scale::Small);
    let (v2, evolution) = v1.evolve(11, 6);
    let v2 = Arc::new(v2);
    let sim = simulator(vec![spec("publisher", v1.clone()), spec("puller", v1.clone())]).await;
    let (a, b) = (Scratch::new("incremental-a"), Scratch::new("incremental-b"));
    let mut publisher = Cache::open(runtime(), with_store(&a.db(), &url, None)).await.unwrap();
    let mut puller = Cache::open(runtime(), with_store(&b.db(), &url, None)).await.unwrap();
    publisher.sync(&sim.env(0).base_url(), auto()).await.unwrap();
    let first = publisher.publish(all()).await.unwrap();
    assert_eq!(name_of(&puller.sync(&sim.env(1).base_url(), auto()).await.unwrap().plan), "pull");

    for env in [sim.env(0), sim.env(1)] {
        env.set_dataset(v2.clone());
        env.set_modules(None);
    }
    let upgraded = publisher.sync(&sim.env(0).base_url(), auto()).await.unwrap();
    assert_eq!(name_of(&upgraded.plan), "incremental");
    let second = publisher.publish(all()).await.unwrap();
    let n = |v: &Vec<String>| v.len() as u64;
    let changed_objects = n(&evolution.changed_data_entities)
        + n(&evolution.added_data_entities)
        + n(&evolution.changed_public_entities)
        + n(&evolution.added_public_entities)
        + n(&evolution.changed_enumerations);
    let new = second.versions.iter().find(|v| v.outcome == PublishOutcome::Published).expect("the second version is published");
    assert_eq!(new.modules_hash, upgraded.modules_hash);
    assert_eq!(new.objects_uploaded, changed_objects, "only the objects the first version lacks");
    assert!(
        new.labels_uploaded > 0 && new.labels_uploaded < new.labels / 10,
        "only the new label texts: {} of {}",
        new.labels_uploaded,
        new.labels
    );
    // The manifest names every item of the version, so it is most of what a small update uploads.
    assert!(
        new.bytes_uploaded * 2 < first.versions[0].bytes_uploaded,
        "{} against {}",
        new.bytes_uploaded,
        first.versions[0].bytes_uploaded
    );

    let pulled = puller.sync(&sim.env(1).base_url(), auto()).await.unwrap();
    assert_eq!(name_of(&pulled.plan), "pull", "{:?}", pulled.warnings);
    let p = pulled.pulled.as_ref().unwrap();
    assert_eq!((p.objects, p.labels), (new.objects_uploaded, new.labels_uploaded), "the cache with the first version lacked only this");
    assert_eq!(p.packs, new.packs_uploaded);
    assert_eq!(fingerprint(&a.db(), &sim.env(0).base_url()), fingerprint(&b.db(), &sim.env(1).base_url()));
}

#[tokio::test]
async fn the_hosts_size_limit_refuses_a_pack_and_names_the_limit() {
    let store = Scratch::new("shared-limit");
    let url = file_url(&store.0);
    let sim = simulator(vec![spec("a", dataset(Scale::Small)), spec("b", dataset(Scale::Small))]).await;
    let (a, b) = (Scratch::new("limit-a"), Scratch::new("limit-b"));
    let mut small = with_store(&a.db(), &url, None);
    small.shared.as_mut().unwrap().max_object_bytes = 64 << 10;
    let mut publisher = Cache::open(runtime(), small).await.unwrap();
    publisher.sync(&sim.env(0).base_url(), auto()).await.unwrap();
    let e = publisher.publish(all()).await.unwrap_err();
    assert!(format!("{e:#}").contains("more than the limit of 65536 bytes"), "{e:#}");
    assert!(!store.0.join("versions").exists(), "no manifest without its packs");

    // Published with the default limit, the same pack is too large for a reader with a small one.
    drop(publisher);
    let mut publisher = Cache::open(runtime(), with_store(&a.db(), &url, None)).await.unwrap();
    publisher.publish(all()).await.unwrap();
    let mut small = with_store(&b.db(), &url, None);
    small.shared.as_mut().unwrap().max_object_bytes = 64 << 10;
    let mut reader = Cache::open(runtime(), small).await.unwrap();
    let report = reader.sync(&sim.env(1).base_url(), auto()).await.unwrap();
    assert_eq!(name_of(&report.plan), "full");
    assert!(report.warnings.iter().any(|w| w.contains("too large")), "{:?}", report.warnings);
}

#[tokio::test]
async fn without_storage_credentials_the_store_is_reached_with_the_environments_sign_in() {
    let scratch = Scratch::new("shared-sign-in");
    let (sim, ca) = tls_simulator(vec![spec("env", dataset(Scale::Small)), spec("blob", dataset(Scale::Small))], &scratch).await;
    // A second HTTPS service stands in for Azure Blob Storage (named by an https:// URL, the account
    // being the host's first label): it records the Authorization of every request it receives.
    let mut options = signed_in_options(&scratch.db(), &sim, &ca);
    let mut shared = SharedOptions::new(format!("{}/team/d365", sim.env(1).base_url()));
    shared.retry_budget = Duration::from_secs(2);
    options.shared = Some(shared);
    let mut cache = Cache::open(runtime(), options).await.unwrap();
    let report = cache.sync(&sim.env(0).base_url(), auto()).await.unwrap();
    assert_eq!(name_of(&report.plan), "full", "no store answers there: the sync goes to the environment");
    assert!(report.warnings.iter().any(|w| w.contains("shared store") && w.contains("listing versions")), "{:?}", report.warnings);
    let asked = sim.env(1).requests();
    assert!(!asked.is_empty(), "the store was asked, trusting the same certificate authorities");
    let bearer = format!("Bearer {}", d365meta_simulator::DEFAULT_TOKEN);
    assert!(asked.iter().all(|r| r.authorization.as_deref() == Some(bearer.as_str())), "{asked:?}");
    assert_eq!(sim.token_requests().len(), 2, "one sign-in for the environment's scope, one for Azure Storage's");
}
