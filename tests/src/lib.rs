//! Shared parts of the end-to-end tests: the real component in the real host, over a real SQLite
//! file, against the simulator over loopback HTTP.

pub mod azurite;

use d365meta::cache::{Cache, CacheOptions};
use d365meta::imports::http::HttpOptions;
use d365meta::runtime::{Runtime, RuntimeConfig};
use d365meta_simulator::{Dataset, EnvironmentSpec, Scale, Simulator};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// One runtime for all tests of a binary: compiling or loading the component once is enough.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::new(RuntimeConfig::default()).expect("the runtime starts"))
}

/// Datasets are deterministic and immutable: generate each scale once per test binary.
pub fn dataset(scale: Scale) -> Arc<Dataset> {
    type ByScale = std::sync::Mutex<Vec<(String, Arc<Dataset>)>>;
    static SETS: OnceLock<ByScale> = OnceLock::new();
    let sets = SETS.get_or_init(Default::default);
    let mut sets = sets.lock().unwrap();
    let key = scale.to_string();
    if let Some((_, d)) = sets.iter().find(|(k, _)| *k == key) {
        return d.clone();
    }
    let d = Arc::new(Dataset::generate(scale));
    sets.push((key, d.clone()));
    d
}

pub fn spec(name: &str, dataset: Arc<Dataset>) -> EnvironmentSpec {
    EnvironmentSpec::new(name, dataset)
}

pub async fn simulator(specs: Vec<EnvironmentSpec>) -> Simulator {
    Simulator::start("127.0.0.1".parse().unwrap(), specs).await.expect("the simulator starts")
}

/// A simulator serving HTTPS (environments and token endpoint) with a certificate authority made
/// for this run, and that authority's certificate written to `scratch` for clients to trust.
pub async fn tls_simulator(specs: Vec<EnvironmentSpec>, scratch: &Scratch) -> (Simulator, PathBuf) {
    let pki = d365meta_simulator::TestPki::generate().expect("test certificates");
    let ca = scratch.0.join("test-authority.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let sim = Simulator::start_tls("127.0.0.1".parse().unwrap(), specs, &pki).await.expect("the simulator starts");
    (sim, ca)
}

/// Options that sign in with the simulator's client secret at its (HTTPS) token endpoint, trusting
/// its authority, and always send the token (the simulator is on loopback).
pub fn signed_in_options(db: &Path, sim: &Simulator, ca: &Path) -> CacheOptions {
    use d365meta::auth::{AuthMode, Authenticator, SignIn};
    use d365meta_simulator::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
    let mut o = options(db);
    o.http.ca_file = Some(ca.to_owned());
    let sign_in =
        SignIn::ClientSecret { tenant_id: "tenant".into(), client_id: DEFAULT_CLIENT_ID.into(), secret: DEFAULT_CLIENT_SECRET.into() };
    o.auth = Arc::new(Authenticator::new(AuthMode::Always, sign_in).with_authority_host(sim.authority_host()));
    o
}

/// A directory removed when the test ends.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("d365meta-e2e-{name}-{}-{:08x}", std::process::id(), fastrand_u32()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn db(&self) -> PathBuf {
        self.0.join("cache.db")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fastrand_u32() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now()) as u32
}

/// Retry settings that keep failure tests short while still exercising the real policy.
pub fn quick_http() -> HttpOptions {
    HttpOptions { backoff_base: Duration::from_millis(20), backoff_cap: Duration::from_millis(200), ..HttpOptions::default() }
}

pub fn options(db: &Path) -> CacheOptions {
    let mut o = CacheOptions::new(db);
    o.http = quick_http();
    o
}

pub async fn open(db: &Path) -> Cache {
    Cache::open(runtime(), options(db)).await.expect("the cache opens")
}

/// The requests an environment served whose path contains `fragment`.
pub fn count_requests(env: &d365meta_simulator::SimEnv, fragment: &str) -> usize {
    env.requests().iter().filter(|r| r.path_and_query.contains(fragment)).count()
}

/// The `CoreError` inside an error from the cache, if the component reported it.
pub fn core_error(e: &anyhow::Error) -> &d365meta::CoreError {
    e.downcast_ref::<d365meta::CoreError>().unwrap_or_else(|| panic!("not an error of the component: {e:#}"))
}

/// What a snapshot of a simulated dataset must hold, computed from the simulator's own data:
/// `[data entities, public entities, properties, navigation properties, constraints, property
/// groups, actions, enumerations, members, label ids, labels, labels missing]` for `languages`.
pub fn expected_counts(d: &Dataset, languages: &[&str]) -> [u64; 12] {
    let label_ids = d.label_ids();
    let mut labels = 0;
    let mut missing = 0;
    for language in languages {
        for id in &label_ids {
            match d.labels.get(id, language) {
                Some(_) => labels += 1,
                None => missing += 1,
            }
        }
    }
    let publics = &d.public_entities;
    [
        d.data_entities.len() as u64,
        publics.len() as u64,
        publics.iter().map(|e| e.properties.len()).sum::<usize>() as u64,
        publics.iter().map(|e| e.navigation_properties.len()).sum::<usize>() as u64,
        publics.iter().flat_map(|e| &e.navigation_properties).map(|n| n.constraints.len()).sum::<usize>() as u64,
        publics.iter().map(|e| e.property_groups.len()).sum::<usize>() as u64,
        publics.iter().map(|e| e.actions.len()).sum::<usize>() as u64,
        d.enumerations.len() as u64,
        d.enumerations.iter().map(|e| e.members.len()).sum::<usize>() as u64,
        label_ids.len() as u64,
        labels,
        missing,
    ]
}

pub fn counts_array(c: &d365meta::cache::SnapshotCounts) -> [u64; 12] {
    [
        c.data_entities,
        c.public_entities,
        c.properties,
        c.navigation_properties,
        c.constraints,
        c.property_groups,
        c.actions,
        c.enumerations,
        c.members,
        c.label_ids,
        c.labels,
        c.labels_missing,
    ]
}

/// Everything a reader of `base_url` sees, read straight from the database file: each object by
/// kind, position, name and content hash, and each label row.
#[derive(Debug, PartialEq, Eq)]
pub struct Fingerprint {
    pub objects: Vec<(String, i64, String, String)>,
    pub labels: Vec<(String, String, String, bool)>,
}

pub fn fingerprint(db: &Path, base_url: &str) -> Fingerprint {
    let conn = rusqlite::Connection::open(db).unwrap();
    let objects = conn
        .prepare(
            "SELECT so.kind, so.position, so.name, o.hash FROM environments e
             JOIN snapshot_objects so ON so.snapshot_id = e.snapshot_id JOIN objects o ON o.id = so.object_id
             WHERE e.base_url = ?1 ORDER BY so.kind, so.position",
        )
        .unwrap()
        .query_map([base_url], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let labels = conn
        .prepare(
            "SELECT l.label_id, l.language, l.text, l.missing FROM environments e
             JOIN snapshot_labels sl ON sl.snapshot_id = e.snapshot_id JOIN labels l ON l.id = sl.label_row
             WHERE e.base_url = ?1 ORDER BY l.language, l.label_id",
        )
        .unwrap()
        .query_map([base_url], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? != 0)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    Fingerprint { objects, labels }
}

/// Counts rows of a table straight from the database file.
pub fn rows(db: &Path, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).unwrap()
}

pub fn sync_options(strategy: d365meta::cache::Strategy, languages: &[&str]) -> d365meta::cache::SyncOptions {
    d365meta::cache::SyncOptions {
        strategy,
        languages: languages.iter().map(|s| s.to_string()).collect(),
        drop_languages: vec![],
        dry_run: false,
    }
}

pub fn auto() -> d365meta::cache::SyncOptions {
    sync_options(d365meta::cache::Strategy::Auto, &[])
}

pub fn gc_options(keep_days: u32) -> d365meta::cache::GcOptions {
    d365meta::cache::GcOptions { keep_days, vacuum: false }
}
