//! Shared parts of the end-to-end tests: the real component in the real host, over a real SQLite
//! file, against the simulator over loopback HTTP.

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
    static SETS: OnceLock<std::sync::Mutex<Vec<(String, Arc<Dataset>)>>> = OnceLock::new();
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
