//! The cache as the host's callers see it: one component instance over one database, with typed
//! calls into the component's exports.
//!
//! `examples/embed.rs` is a complete program: open a cache, sync an environment, look up, search
//! (`cargo run -p d365meta --example embed`, against the simulator).

use crate::auth::Authenticator;
use crate::bindings::Core;
use crate::cancel::CancelToken;
use crate::imports::host::{ProgressSink, Services};
use crate::imports::http::EnvironmentHandle;
use crate::imports::http::{HttpOptions, HttpTotals, Network};
use crate::imports::store::{Access, Claim, DEFAULT_BUSY_TIMEOUT, Database};
use crate::runtime::{Runtime, State, entering_guest};
use crate::shared::{SharedOptions, SharedStore};
use anyhow::Context as _;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::Store;
use wasmtime::component::Resource;

pub use crate::bindings::types::*;

/// An error the component reported: what kind, and a message naming the endpoint, status or object.
#[derive(Clone, Debug)]
pub struct CoreError {
    pub kind: ErrorKind,
    pub message: String,
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CoreError {}

impl From<Error> for CoreError {
    fn from(e: Error) -> Self {
        CoreError { kind: e.kind, message: e.message }
    }
}

#[derive(Clone)]
pub struct CacheOptions {
    pub database: PathBuf,
    /// `ReadOnly` for commands that only read: the file is never created or changed, and one the
    /// user may only read can be read.
    pub access: Access,
    pub busy_timeout: Duration,
    pub http: HttpOptions,
    pub auth: Arc<Authenticator>,
    pub cancel: CancelToken,
    pub progress: Option<ProgressSink>,
    /// The shared store a sync pulls from and `publish` writes to.
    pub shared: Option<SharedOptions>,
}

impl CacheOptions {
    pub fn new(database: impl Into<PathBuf>) -> Self {
        CacheOptions {
            database: database.into(),
            access: Access::ReadWrite,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            http: HttpOptions::default(),
            auth: Arc::new(Authenticator::none()),
            cancel: CancelToken::new(),
            progress: None,
            shared: None,
        }
    }
}

/// The future of one call into an export answering `result<T, error>`.
type ExportCall<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = wasmtime::Result<Result<T, Error>>> + Send + 'a>>;

/// How the host recognises a cache file (see wit/store.wit): marked with this `application_id`
/// ("D365" in ASCII). Caches written before files were marked are recognised by two tables of the
/// schema's first migration; any other SQLite file is refused unchanged.
pub const CACHE_CLAIM: Claim =
    Claim { application_id: 0x4433_3635, unmarked_tables: &["schema_migrations", "environment_versions"], what: "a d365meta cache" };

impl DiffSide {
    /// A side as a user names it: a base URL (it has `://`), else a cached version's modules hash
    /// or its prefix.
    pub fn named(name: impl Into<String>) -> DiffSide {
        let name = name.into();
        if name.contains("://") { DiffSide::Environment(name) } else { DiffSide::Version(name) }
    }
}

/// A cache file that is another program's database is the user's mistake, reported as such.
fn open_error(e: d365meta_sqlite::Error) -> anyhow::Error {
    match e.code {
        d365meta_sqlite::ErrorCode::Foreign => CoreError { kind: ErrorKind::InvalidInput, message: e.message }.into(),
        _ => e.into(),
    }
}

pub struct Cache {
    store: Store<State>,
    core: Core,
    /// What a sync or a publish opens the shared store with.
    shared: Option<(SharedOptions, Arc<Authenticator>, HttpOptions, CancelToken)>,
    /// Set once the component trapped: its instance must not be entered again.
    broken: Option<String>,
    schema: SchemaStatus,
}

impl Cache {
    /// Opens (creating if needed) the database and the component over it, applying migrations.
    pub async fn open(runtime: &Runtime, options: CacheOptions) -> anyhow::Result<Cache> {
        let (db, reader) = match options.access {
            Access::ReadWrite => {
                if let Some(parent) = options.database.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).with_context(|| format!("creating the cache directory {}", parent.display()))?;
                }
                let db =
                    Database::open_claimed(&options.database, options.busy_timeout, Access::ReadWrite, &CACHE_CLAIM).map_err(open_error)?;
                let reader = Database::open_claimed(&options.database, options.busy_timeout, Access::ReadOnly, &CACHE_CLAIM)?;
                (db, Some(reader))
            }
            // Reading a cache that does not exist yet reads an empty one, and creates no file.
            Access::ReadOnly if !options.database.exists() => (Database::open_in_memory()?, None),
            Access::ReadOnly => {
                (Database::open_claimed(&options.database, options.busy_timeout, Access::ReadOnly, &CACHE_CLAIM).map_err(open_error)?, None)
            }
        };
        let shared = options.shared.clone().map(|s| (s, options.auth.clone(), options.http.clone(), options.cancel.clone()));
        let network = Network::new(options.http, options.auth.clone(), options.cancel.clone())
            .map_err(|message| CoreError { kind: ErrorKind::InvalidInput, message })?;
        let services = Services::new(options.cancel, options.progress);
        let mut state = State::new(network, db, services);
        if let Some(reader) = reader {
            state = state.with_reader(reader);
        }
        let (store, core) = runtime.instantiate(state).await?;
        let mut cache = Cache { store, core, shared, broken: None, schema: SchemaStatus { version: 0, latest: 0, applied: vec![] } };
        let schema = cache.call(|core, store| Box::pin(async move { core.d365meta_cache_cache().call_open(store).await })).await?;
        cache.schema = schema;
        Ok(cache)
    }

    /// The schema as opening found and left it.
    pub fn schema(&self) -> &SchemaStatus {
        &self.schema
    }

    pub fn http_totals(&self) -> HttpTotals {
        self.store.data().network.stats().totals()
    }

    /// Lends the component an environment resource for `base_url` — the one origin it may reach —
    /// for the length of one export call. The user named `base_url`; the component never names one.
    async fn with_environment<T, F>(&mut self, base_url: &str, f: F) -> anyhow::Result<T>
    where
        F: for<'a> FnOnce(&'a Core, &'a mut Store<State>, Resource<EnvironmentHandle>) -> ExportCall<'a, T>,
    {
        let environment =
            self.store.data().network.environment(base_url).map_err(|message| CoreError { kind: ErrorKind::InvalidInput, message })?;
        let handle = self.store.data_mut().table.push(environment)?;
        let borrowed = Resource::new_borrow(handle.rep());
        let result = self.call(move |core, store| f(core, store, borrowed)).await;
        self.store.data_mut().table.delete(handle)?;
        result
    }

    /// Detects and records the version of the environment at `base_url`.
    pub async fn detect_version(&mut self, base_url: &str) -> anyhow::Result<VersionReport> {
        self.with_environment(base_url, |core, store, env| {
            Box::pin(async move { core.d365meta_cache_cache().call_detect_version(store, env).await })
        })
        .await
    }

    pub async fn compare_modules(&mut self, a: Vec<Module>, b: Vec<Module>) -> anyhow::Result<ModuleDiff> {
        self.ensure_usable()?;
        entering_guest(&mut self.store);
        let result = self.core.d365meta_cache_cache().call_compare_modules(&mut self.store, &a, &b).await;
        self.settle(result.map(Ok))
    }

    pub async fn list_environments(&mut self) -> anyhow::Result<Vec<EnvironmentInfo>> {
        self.call_read(|core, store| Box::pin(async move { core.d365meta_cache_cache().call_list_environments(store).await })).await
    }

    pub async fn list_versions(&mut self) -> anyhow::Result<Vec<VersionInfo>> {
        self.call_read(|core, store| Box::pin(async move { core.d365meta_cache_cache().call_list_versions(store).await })).await
    }

    /// A cached version with its modules: by modules hash (or a prefix of at least 8 characters),
    /// else the version of the environment in `options.base_url`, else that of the latest sync.
    pub async fn get_version(&mut self, modules_hash: Option<&str>, options: ReadOptions) -> anyhow::Result<VersionDetails> {
        let hash = modules_hash.map(str::to_owned);
        self.call_read(move |core, store| {
            Box::pin(async move { core.d365meta_cache_cache().call_get_version(store, hash.as_deref(), &options).await })
        })
        .await
    }

    /// What changed in the metadata from `a` to `b` (environments or cached versions), from the
    /// cache alone.
    pub async fn diff(&mut self, a: DiffSide, b: DiffSide, options: DiffOptions) -> anyhow::Result<MetadataDiff> {
        self.call_read(move |core, store| Box::pin(async move { core.d365meta_cache_cache().call_diff(store, &a, &b, &options).await }))
            .await
    }

    /// The shared store, opened for one call; `None` when none is configured. A store that cannot
    /// be opened (a directory that does not exist, no credentials) fails a publish; a sync goes on
    /// without it, with a warning in its report.
    fn open_shared(&self, create: bool) -> Option<Result<SharedStore, String>> {
        let (options, auth, http, cancel) = self.shared.as_ref()?;
        Some(SharedStore::open(options, auth.clone(), http, cancel.clone(), create))
    }

    /// Syncs the environment at `base_url`, pulling from the shared store when one is configured
    /// and has the version.
    pub async fn sync(&mut self, base_url: &str, options: SyncOptions) -> anyhow::Result<SyncReport> {
        let mut unopened = None;
        let shared = match self.open_shared(false) {
            Some(Ok(store)) => Some(self.store.data_mut().table.push(store)?),
            Some(Err(message)) => {
                tracing::warn!("{message}; syncing from the environment alone");
                unopened = Some(message);
                None
            }
            None => None,
        };
        let borrowed = shared.as_ref().map(|h| Resource::<SharedStore>::new_borrow(h.rep()));
        let result = self
            .with_environment(base_url, move |core, store, env| {
                Box::pin(async move { core.d365meta_cache_cache().call_sync(store, env, borrowed, &options).await })
            })
            .await;
        if let Some(handle) = shared {
            self.store.data_mut().table.delete(handle)?;
        }
        let mut report = result?;
        if let Some(message) = unopened {
            report.warnings.push(format!("{message}; fetched from the environment instead"));
        }
        Ok(report)
    }

    /// Uploads what the shared store lacks of the given cached versions (all complete ones when
    /// `options.versions` is empty).
    pub async fn publish(&mut self, options: PublishOptions) -> anyhow::Result<PublishReport> {
        let store = match self.open_shared(true) {
            Some(Ok(store)) => store,
            Some(Err(message)) => return Err(CoreError { kind: ErrorKind::InvalidInput, message }.into()),
            None => {
                return Err(CoreError {
                    kind: ErrorKind::InvalidInput,
                    message: "no shared store is configured: give --shared URL or a profile's `shared`".to_owned(),
                }
                .into());
            }
        };
        let handle = self.store.data_mut().table.push(store)?;
        let borrowed = Resource::<SharedStore>::new_borrow(handle.rep());
        let result = self
            .call(move |core, store| Box::pin(async move { core.d365meta_cache_cache().call_publish(store, borrowed, &options).await }))
            .await;
        self.store.data_mut().table.delete(handle)?;
        result
    }

    /// Syncs the environment `base_url` from a recording of it instead of the environment itself:
    /// `responder` answers every request, and nothing goes over the network. The cache ends up as
    /// a sync from the live environment would leave it.
    pub async fn sync_replayed(
        &mut self,
        base_url: &str,
        responder: Arc<dyn crate::imports::http::Responder>,
        options: SyncOptions,
    ) -> anyhow::Result<SyncReport> {
        let environment = self
            .store
            .data()
            .network
            .replayed_environment(base_url, responder)
            .map_err(|message| CoreError { kind: ErrorKind::InvalidInput, message })?;
        let handle = self.store.data_mut().table.push(environment)?;
        let borrowed = Resource::new_borrow(handle.rep());
        let result = self
            .call(move |core, store| Box::pin(async move { core.d365meta_cache_cache().call_sync(store, borrowed, None, &options).await }))
            .await;
        self.store.data_mut().table.delete(handle)?;
        result
    }

    /// Recorded syncs, newest first, of one environment or (without a base URL) of all.
    pub async fn history(&mut self, base_url: Option<&str>, limit: u32) -> anyhow::Result<Vec<SyncRun>> {
        let options = ReadOptions { base_url: base_url.map(str::to_owned), labels: None };
        self.call_read(move |core, store| Box::pin(async move { core.d365meta_cache_cache().call_history(store, &options, limit).await }))
            .await
    }

    /// Removes what nothing references (and with `vacuum`, gives the space back).
    pub async fn gc(&mut self, options: GcOptions) -> anyhow::Result<GcReport> {
        self.call(move |core, store| Box::pin(async move { core.d365meta_cache_cache().call_gc(store, options).await })).await
    }

    /// Removes an environment and its recorded syncs.
    pub async fn forget(&mut self, base_url: &str) -> anyhow::Result<ForgetReport> {
        let url = base_url.to_owned();
        self.call(move |core, store| Box::pin(async move { core.d365meta_cache_cache().call_forget(store, &url).await })).await
    }

    // Reads: answered from the database alone, on a connection that cannot write. They never reach
    // the network: they are lent no environment.

    pub async fn get_entity(&mut self, name: &str, options: ReadOptions) -> anyhow::Result<EntityLookup> {
        let name = name.to_owned();
        self.call_read(move |core, store| {
            Box::pin(async move { core.d365meta_cache_cache().call_get_entity(store, &name, &options).await })
        })
        .await
    }

    pub async fn get_enumeration(&mut self, name: &str, options: ReadOptions) -> anyhow::Result<EnumerationLookup> {
        let name = name.to_owned();
        self.call_read(move |core, store| {
            Box::pin(async move { core.d365meta_cache_cache().call_get_enumeration(store, &name, &options).await })
        })
        .await
    }

    pub async fn get_action(&mut self, name: &str, entity: Option<&str>, options: ReadOptions) -> anyhow::Result<ActionLookup> {
        let (name, entity) = (name.to_owned(), entity.map(str::to_owned));
        self.call_read(move |core, store| {
            Box::pin(async move { core.d365meta_cache_cache().call_get_action(store, &name, entity.as_deref(), &options).await })
        })
        .await
    }

    pub async fn get_label(&mut self, id: &str, options: ReadOptions) -> anyhow::Result<LabelLookup> {
        let id = id.to_owned();
        self.call_read(move |core, store| Box::pin(async move { core.d365meta_cache_cache().call_get_label(store, &id, &options).await }))
            .await
    }

    pub async fn search(&mut self, query: SearchQuery, options: ReadOptions) -> anyhow::Result<SearchResults> {
        self.call_read(move |core, store| Box::pin(async move { core.d365meta_cache_cache().call_search(store, &query, &options).await }))
            .await
    }

    /// Statistics of one environment or (without a base URL) of all.
    pub async fn stats(&mut self, base_url: Option<&str>) -> anyhow::Result<Stats> {
        let options = ReadOptions { base_url: base_url.map(str::to_owned), labels: None };
        self.call_read(move |core, store| Box::pin(async move { core.d365meta_cache_cache().call_get_stats(store, &options).await })).await
    }

    fn ensure_usable(&self) -> anyhow::Result<()> {
        match &self.broken {
            Some(why) => anyhow::bail!("the core component stopped earlier ({why}); open the cache again"),
            None => Ok(()),
        }
    }

    /// Calls an export that answers `result<T, error>`: a component error becomes a [`CoreError`],
    /// a trap marks the instance broken.
    async fn call<T, F>(&mut self, f: F) -> anyhow::Result<T>
    where
        F: for<'a> FnOnce(&'a Core, &'a mut Store<State>) -> ExportCall<'a, T>,
    {
        self.ensure_usable()?;
        entering_guest(&mut self.store);
        let result = f(&self.core, &mut self.store).await;
        self.settle(result)
    }

    /// Calls a read export on the read-only connection.
    async fn call_read<T, F>(&mut self, f: F) -> anyhow::Result<T>
    where
        F: for<'a> FnOnce(&'a Core, &'a mut Store<State>) -> ExportCall<'a, T>,
    {
        self.store.data_mut().set_reading(true);
        let result = self.call(f).await;
        self.store.data_mut().set_reading(false);
        result
    }

    fn settle<T>(&mut self, result: wasmtime::Result<Result<T, Error>>) -> anyhow::Result<T> {
        self.store.data_mut().services.leave_phase();
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(CoreError::from(e).into()),
            Err(trap) => {
                let message = format!("{trap:#}");
                self.broken = Some(message.lines().next().unwrap_or("trap").to_owned());
                Err(anyhow::anyhow!("the core component stopped: {message}"))
            }
        }
    }
}
