//! The wasmtime engine and the compiled core component, and the limits every instance runs under.
//!
//! The component is compiled once per build of the host and configuration, then loaded from a
//! precompiled artifact in the cache directory (under a millisecond, against half a second to
//! compile in a debug build). An artifact that does not load — another wasmtime version or
//! configuration, a damaged file — is replaced, never trusted.
//!
//! Limits: linear memory is capped (growing past it traps), and a guest that computes for longer
//! than `guest_cpu_limit` without returning to the host is interrupted (epoch interruption). Time
//! spent inside imports — waiting on the network or the database — does not count.

use crate::bindings::{Core, CorePre};
use crate::imports::host::Services;
use crate::imports::http::Network;
use crate::imports::store::Database;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::error::Context as _;
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};

/// The core component, built by `build.rs` from `guest/` and embedded in the host.
pub static CORE_WASM: &[u8] = include_bytes!(env!("D365META_CORE_WASM"));

/// How often the epoch advances; the CPU limit is checked at this granularity.
const EPOCH_TICK: Duration = Duration::from_millis(10);

#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Linear memory a component instance may use.
    pub memory_limit_bytes: usize,
    /// Longest stretch of guest computation between two host calls.
    pub guest_cpu_limit: Duration,
    /// Where the precompiled component is kept; `None` compiles in memory every time.
    pub artifact_dir: Option<PathBuf>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            memory_limit_bytes: 2 << 30,
            guest_cpu_limit: Duration::from_secs(120),
            artifact_dir: Some(crate::paths::default_cache_dir().join("components")),
        }
    }
}

/// The data of one component instance's store.
pub struct State {
    pub(crate) table: ResourceTable,
    pub(crate) wasi: wasmtime_wasi::WasiCtx,
    pub(crate) network: Network,
    /// A read-only connection to the same database, for the exports that only read; `None` when
    /// `db` is the only one (a read-only cache, an in-memory database). Declared before `db` so
    /// that it is closed first: the last connection to close checkpoints the write-ahead log, and
    /// a read-only one cannot.
    pub(crate) reader: Option<Database>,
    pub(crate) db: Database,
    /// Set while a read export runs: storage calls then go to `reader`.
    pub(crate) reading: bool,
    pub(crate) services: Services,
    limits: StoreLimits,
    /// When control last passed to the guest; the CPU limit counts from here.
    guest_since: Instant,
}

impl State {
    pub fn new(network: Network, db: Database, services: Services) -> Self {
        State {
            table: ResourceTable::new(),
            wasi: crate::imports::wasi::context(),
            network,
            db,
            reader: None,
            reading: false,
            services,
            limits: StoreLimits::default(),
            guest_since: Instant::now(),
        }
    }

    /// Gives read exports a connection of their own that cannot write.
    pub fn with_reader(mut self, reader: Database) -> Self {
        self.reader = Some(reader);
        self
    }

    /// While set, storage calls go to the read-only connection: what the cache does around every
    /// read export.
    pub fn set_reading(&mut self, reading: bool) {
        self.reading = reading;
    }

    /// The network, from which the host makes the `environment` resources it lends the component.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The table holding the resources the host lends the component.
    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// The connection storage calls use now.
    pub(crate) fn database(&mut self, on_reader: bool) -> &mut Database {
        match (&mut self.reader, on_reader) {
            (Some(reader), true) => reader,
            _ => &mut self.db,
        }
    }

    /// Every import calls this as it returns, so that time spent in the host is not charged to
    /// the guest's CPU limit.
    pub(crate) fn returning_to_guest(&mut self) {
        self.guest_since = Instant::now();
    }
}

pub struct Runtime {
    engine: Engine,
    pre: CorePre<State>,
    config: RuntimeConfig,
    ticker: Arc<AtomicBool>,
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> anyhow::Result<Runtime> {
        let engine = Self::engine()?;
        let component = load_component(&engine, CORE_WASM, config.artifact_dir.as_deref())?;
        let linker = Self::linker(&engine)?;
        let pre = CorePre::new(linker.instantiate_pre(&component).context("pre-instantiating the core")?)?;
        let ticker = start_epoch_ticker(&engine);
        Ok(Runtime { engine, pre, config, ticker })
    }

    /// A linker with everything the core imports: its own interfaces, and WASI granted nothing.
    /// Any component written against the same WIT (or a part of it) links with it.
    pub fn linker(engine: &Engine) -> anyhow::Result<Linker<State>> {
        let mut linker = Linker::<State>::new(engine);
        Core::add_to_linker::<State, HasSelf<State>>(&mut linker, |state| state).context("linking the core's imports")?;
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).context("linking WASI")?;
        Ok(linker)
    }

    /// The engine configuration every component of this host runs under.
    pub fn engine() -> anyhow::Result<Engine> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        Ok(Engine::new(&config).context("configuring wasmtime")?)
    }

    pub fn engine_ref(&self) -> &Engine {
        &self.engine
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// A store with this runtime's limits applied.
    pub fn new_store(&self, state: State) -> Store<State> {
        let mut store = Store::new(&self.engine, state);
        store.data_mut().limits = StoreLimitsBuilder::new().memory_size(self.config.memory_limit_bytes).trap_on_grow_failure(true).build();
        store.limiter(|state| &mut state.limits);
        let limit = self.config.guest_cpu_limit;
        store.epoch_deadline_callback(move |ctx| {
            let ran = ctx.data().guest_since.elapsed();
            if ran > limit {
                wasmtime::bail!(
                    "the core component computed for {:.1}s without returning to the host (limit {:.1}s) and was interrupted",
                    ran.as_secs_f64(),
                    limit.as_secs_f64()
                );
            }
            // Yield to the executor at every tick so other tasks (progress, the signal handler) run.
            Ok(UpdateDeadline::Yield(1))
        });
        store.set_epoch_deadline(1);
        store
    }

    pub async fn instantiate(&self, state: State) -> anyhow::Result<(Store<State>, Core)> {
        let mut store = self.new_store(state);
        let core = self.pre.instantiate_async(&mut store).await.context("instantiating the core component")?;
        Ok((store, core))
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker.store(true, Ordering::Relaxed);
    }
}

/// Marks that control passes to the guest now (before calling an export).
pub fn entering_guest(store: &mut Store<State>) {
    store.data_mut().returning_to_guest();
}

fn start_epoch_ticker(engine: &Engine) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let (engine, flag) = (engine.weak(), stop.clone());
    std::thread::Builder::new()
        .name("d365meta-epoch".to_owned())
        .spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                match engine.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => return,
                }
            }
        })
        .expect("spawning the epoch thread");
    stop
}

/// Loads the precompiled component from `dir`, or compiles it and stores the artifact there.
pub fn load_component(engine: &Engine, wasm: &[u8], dir: Option<&Path>) -> anyhow::Result<Component> {
    let Some(dir) = dir else {
        return Ok(Component::new(engine, wasm).context("compiling the core component")?);
    };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let digest = Sha256::digest(wasm);
    let key: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join(format!("core-{key}-{:016x}.cwasm", hasher.finish()));
    if path.exists() {
        // SAFETY: the artifact was written by this host (same wasmtime version and configuration,
        // as its name encodes) into the user's own cache directory; wasmtime still checks its
        // header and refuses an incompatible one, in which case it is rebuilt below.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok(component),
            Err(e) => tracing::warn!("discarding the precompiled component {}: {e}", path.display()),
        }
    }
    let bytes = engine.precompile_component(wasm).context("compiling the core component")?;
    if let Err(e) = store_artifact(dir, &path, &bytes) {
        tracing::info!("could not keep the precompiled component in {}: {e}", dir.display());
    }
    // SAFETY: `bytes` was produced by `precompile_component` on this engine just now.
    Ok(unsafe { Component::deserialize(engine, &bytes) }.context("loading the compiled core component")?)
}

fn store_artifact(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    // Artifacts of earlier builds are of no further use.
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("core-") && name.ends_with(".cwasm") && entry.path() != path {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let tmp = dir.join(format!(".core-{}-{:016x}.tmp", std::process::id(), fastrand::u64(..)));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
