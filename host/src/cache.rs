//! The cache as the host's callers see it: one component instance over one database, with typed
//! calls into the component's exports.

use crate::auth::Authenticator;
use crate::bindings::Core;
use crate::bindings::cache_api as api;
use crate::cancel::CancelToken;
use crate::imports::host::{ProgressSink, Services};
use crate::imports::http::{HttpOptions, HttpState, HttpTotals};
use crate::imports::store::{Access, DEFAULT_BUSY_TIMEOUT, Database};
use crate::policy::Origin;
use crate::runtime::{Runtime, State, entering_guest};
use anyhow::Context as _;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::Store;

pub use api::{
    Action, ActionLookup, DataEntity, EntityLookup, EnumerationLookup, EnvironmentInfo, EnvironmentStats, ErrorKind, ForgetReport,
    GcOptions, GcReport, LabelLanguages, LabelLookup, Module, ModuleChange, ModuleDiff, PhaseReport, PublicEntity, ReadOptions,
    SchemaStatus, SearchFilters, SearchHit, SearchQuery, SearchResults, SnapshotCounts, Stats, Strategy, SyncOptions, SyncReport, SyncRun,
    UnparsedLine, VersionInfo, VersionReport,
};

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

impl From<api::Error> for CoreError {
    fn from(e: api::Error) -> Self {
        CoreError { kind: e.kind, message: e.message }
    }
}

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
        }
    }
}

/// The future of one call into an export answering `result<T, error>`.
type ExportCall<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = wasmtime::Result<Result<T, api::Error>>> + Send + 'a>>;

pub struct Cache {
    store: Store<State>,
    core: Core,
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
                let db = Database::open(&options.database, options.busy_timeout)?;
                let reader = Database::open_with(&options.database, options.busy_timeout, Access::ReadOnly)?;
                (db, Some(reader))
            }
            // Reading a cache that does not exist yet reads an empty one, and creates no file.
            Access::ReadOnly if !options.database.exists() => (Database::open_in_memory()?, None),
            Access::ReadOnly => (Database::open_with(&options.database, options.busy_timeout, Access::ReadOnly)?, None),
        };
        let mut http = HttpState::new(options.http, options.auth.clone(), options.cancel.clone());
        if let Some(origin) = options.auth.token_origin() {
            // The token endpoint is reached by the host only, but listing it keeps one allow-list.
            http.allow(origin);
        }
        let services = Services::new(options.cancel, options.progress);
        let mut state = State::new(http, db, services);
        if let Some(reader) = reader {
            state = state.with_reader(reader);
        }
        let (store, core) = runtime.instantiate(state).await?;
        let mut cache = Cache { store, core, broken: None, schema: SchemaStatus { version: 0, latest: 0, applied: vec![] } };
        let schema = cache.call(|core, store| Box::pin(async move { core.d365meta_cache_cache().call_open(store).await })).await?;
        cache.schema = schema;
        Ok(cache)
    }

    /// The schema as opening found and left it.
    pub fn schema(&self) -> &SchemaStatus {
        &self.schema
    }

    /// Lets the component reach the environment at `base_url`. Commands call this for the URLs the
    /// user gave them and nothing else.
    pub fn allow(&mut self, base_url: &str) -> Result<Origin, CoreError> {
        let origin = Origin::parse(base_url).map_err(|m| CoreError { kind: ErrorKind::InvalidInput, message: format!("base URL {m}") })?;
        self.store.data_mut().http.allow(origin.clone());
        Ok(origin)
    }

    pub fn http_totals(&self) -> HttpTotals {
        self.store.data().http.stats().totals()
    }

    /// Detects and records the version of the environment at `base_url` (allowing its host).
    pub async fn detect_version(&mut self, base_url: &str) -> anyhow::Result<VersionReport> {
        self.allow(base_url)?;
        let url = base_url.to_owned();
        self.call(move |core, store| Box::pin(async move { core.d365meta_cache_cache().call_detect_version(store, &url).await })).await
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

    /// Syncs the environment at `base_url` (allowing its host).
    pub async fn sync(&mut self, base_url: &str, options: SyncOptions) -> anyhow::Result<SyncReport> {
        self.allow(base_url)?;
        let url = base_url.to_owned();
        self.call(move |core, store| Box::pin(async move { core.d365meta_cache_cache().call_sync(store, &url, &options).await })).await
    }

    /// Recorded syncs, newest first.
    pub async fn history(&mut self, base_url: Option<&str>, limit: u32) -> anyhow::Result<Vec<SyncRun>> {
        let url = base_url.map(str::to_owned);
        self.call_read(move |core, store| {
            Box::pin(async move { core.d365meta_cache_cache().call_history(store, url.as_deref(), limit).await })
        })
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
    // the network (no origin is allowed for them).

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

    pub async fn get_label(&mut self, id: &str, language: &str, fallback: Vec<String>, env: Option<&str>) -> anyhow::Result<LabelLookup> {
        let (id, language, env) = (id.to_owned(), language.to_owned(), env.map(str::to_owned));
        self.call_read(move |core, store| {
            Box::pin(async move { core.d365meta_cache_cache().call_get_label(store, &id, &language, &fallback, env.as_deref()).await })
        })
        .await
    }

    pub async fn search(&mut self, query: SearchQuery, options: ReadOptions) -> anyhow::Result<SearchResults> {
        self.call_read(move |core, store| Box::pin(async move { core.d365meta_cache_cache().call_search(store, &query, &options).await }))
            .await
    }

    pub async fn stats(&mut self, env: Option<&str>) -> anyhow::Result<Stats> {
        let env = env.map(str::to_owned);
        self.call_read(move |core, store| Box::pin(async move { core.d365meta_cache_cache().call_get_stats(store, env.as_deref()).await }))
            .await
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
        self.store.data_mut().reading = true;
        let result = self.call(f).await;
        self.store.data_mut().reading = false;
        result
    }

    fn settle<T>(&mut self, result: wasmtime::Result<Result<T, api::Error>>) -> anyhow::Result<T> {
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
