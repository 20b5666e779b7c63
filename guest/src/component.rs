//! The component: the exports, and the ports implemented with the WIT imports. The records the
//! exports return are the WIT types the core already works with, so nothing is converted here.

use crate::api;
use crate::ports::{self, Ctx};
use crate::wit::exports_cache::Guest;
use crate::wit::http::{Environment, PendingBatch};
use crate::wit::shared::SharedStore;
use crate::wit::types::*;
use crate::wit::{host, store};
use std::sync::{Once, OnceLock};

struct Component;

crate::wit::export!(Component with_types_in crate::wit);

/// HTTP through the environment the host handed to an export.
struct EnvironmentHttp<'a>(&'a Environment);

struct WitStore;
struct WitHost;

/// The context of an export that reaches no environment (every read).
const OFFLINE: Ctx<'static> = Ctx { http: &ports::NoNetwork, store: &WitStore, host: &WitHost };

/// Runs once per instance before any export: panics are reported through the host's log (a panic
/// aborts the instance; the message would otherwise be lost) and the schema is opened.
fn enter() -> Result<(), Error> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| host::log(host::Level::Error, &format!("d365meta core panicked: {info}"))));
    });
    if SCHEMA.get().is_none() {
        let _ = SCHEMA.set(api::open(&OFFLINE)?);
    }
    Ok(())
}

/// The schema as the instance's first call found and left it.
static SCHEMA: OnceLock<SchemaStatus> = OnceLock::new();

/// A context whose requests go to `environment`.
fn with<T>(environment: &Environment, f: impl FnOnce(&Ctx<'_>) -> Result<T, Error>) -> Result<T, Error> {
    enter()?;
    let http = EnvironmentHttp(environment);
    f(&Ctx { http: &http, store: &WitStore, host: &WitHost })
}

fn offline<T>(f: impl FnOnce(&Ctx<'_>) -> Result<T, Error>) -> Result<T, Error> {
    enter()?;
    f(&OFFLINE)
}

impl Guest for Component {
    fn open() -> Result<SchemaStatus, Error> {
        enter()?;
        SCHEMA.get().cloned().ok_or_else(|| Error::internal("the schema was not opened"))
    }

    fn detect_version(environment: &Environment) -> Result<VersionReport, Error> {
        with(environment, api::detect_version)
    }

    fn compare_modules(a: Vec<Module>, b: Vec<Module>) -> ModuleDiff {
        let (mut a, mut b) = (a, b);
        crate::modules::sort_modules(&mut a);
        crate::modules::sort_modules(&mut b);
        crate::modules::diff(&a, &b)
    }

    fn list_environments() -> Result<Vec<EnvironmentInfo>, Error> {
        offline(|ctx| crate::catalog::list_environments(ctx.store))
    }

    fn list_versions() -> Result<Vec<VersionInfo>, Error> {
        offline(|ctx| crate::catalog::list_versions(ctx.store))
    }

    fn diff(a: DiffSide, b: DiffSide, options: DiffOptions) -> Result<MetadataDiff, Error> {
        offline(|ctx| crate::read::diff::diff(ctx.store, &a, &b, &options))
    }

    fn get_version(modules_hash: Option<String>, options: ReadOptions) -> Result<VersionDetails, Error> {
        offline(|ctx| crate::catalog::version_details(ctx.store, modules_hash.as_deref(), options.base_url.as_deref()))
    }

    fn sync(environment: &Environment, shared: Option<&SharedStore>, options: SyncOptions) -> Result<SyncReport, Error> {
        let shared = shared.map(WitShared);
        with(environment, |ctx| api::sync(ctx, shared.as_ref().map(|s| s as &dyn ports::Shared), &options))
    }

    fn publish(shared: &SharedStore, options: PublishOptions) -> Result<PublishReport, Error> {
        offline(|ctx| api::publish(ctx, &WitShared(shared), &options))
    }

    fn history(options: ReadOptions, limit: u32) -> Result<Vec<SyncRun>, Error> {
        offline(|ctx| api::history(ctx, &options, limit))
    }

    fn gc(options: GcOptions) -> Result<GcReport, Error> {
        offline(|ctx| api::gc(ctx, &options))
    }

    fn forget(base_url: String) -> Result<ForgetReport, Error> {
        offline(|ctx| api::forget(ctx, &base_url))
    }

    fn get_entity(name: String, options: ReadOptions) -> Result<EntityLookup, Error> {
        offline(|ctx| api::entity(ctx, &name, &options))
    }

    fn get_enumeration(name: String, options: ReadOptions) -> Result<EnumerationLookup, Error> {
        offline(|ctx| api::enumeration(ctx, &name, &options))
    }

    fn get_action(name: String, entity: Option<String>, options: ReadOptions) -> Result<ActionLookup, Error> {
        offline(|ctx| api::actions(ctx, &name, entity.as_deref(), &options))
    }

    fn get_label(id: String, options: ReadOptions) -> Result<LabelLookup, Error> {
        offline(|ctx| api::label(ctx, &id, &options))
    }

    fn search(query: SearchQuery, options: ReadOptions) -> Result<SearchResults, Error> {
        offline(|ctx| api::search(ctx, query, &options))
    }

    fn get_stats(options: ReadOptions) -> Result<Stats, Error> {
        offline(|ctx| api::stats(ctx, &options))
    }
}

// ---- ports over the imports ----

impl ports::Http for EnvironmentHttp<'_> {
    fn base_url(&self) -> String {
        self.0.base_url()
    }
    fn send(&self, request: &ports::HttpRequest) -> Result<ports::HttpResponse, ports::HttpError> {
        self.0.send(request)
    }
    fn start(&self, requests: &[ports::HttpRequest]) -> Box<dyn ports::PendingBatch + '_> {
        Box::new(WitBatch(self.0.start(requests)))
    }
}

/// The shared store the host lent to one export call.
struct WitShared<'a>(&'a SharedStore);

impl ports::Shared for WitShared<'_> {
    fn location(&self) -> String {
        self.0.location()
    }
    fn list(&self, prefix: &str) -> Result<Vec<ports::Listed>, ports::SharedError> {
        self.0.list(prefix)
    }
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, ports::SharedError> {
        self.0.get(name)
    }
    fn download(&self, names: &[String]) -> Box<dyn Iterator<Item = Result<Option<Vec<u8>>, ports::SharedError>> + '_> {
        let downloads = self.0.download(names);
        // Dropping the iterator drops the resource, which stops what was not taken.
        Box::new(std::iter::from_fn(move || downloads.next()))
    }
    fn put_new(&self, name: &str, body: &[u8]) -> Result<bool, ports::SharedError> {
        self.0.put_new(name, body)
    }
}

/// Dropping the resource handle stops the batch's unanswered requests in the host.
struct WitBatch(PendingBatch);

impl ports::PendingBatch for WitBatch {
    fn next(&mut self, max: usize, linger_ms: u32) -> Vec<ports::Completion> {
        let max = u32::try_from(max).unwrap_or(u32::MAX);
        self.0.next(max, linger_ms).into_iter().map(|c| (c.index as usize, c.outcome)).collect()
    }
}

impl ports::Store for WitStore {
    fn execute(&self, sql: &str, params: &[ports::Value]) -> Result<ports::Rows, ports::StoreError> {
        store::execute(sql, params)
    }

    fn execute_many(&self, sql: &str, params: &[Vec<ports::Value>]) -> Result<u64, ports::StoreError> {
        store::execute_many(sql, params)
    }

    fn begin(&self, mode: ports::TxMode) -> Result<Box<dyn ports::Transaction + '_>, ports::StoreError> {
        Ok(Box::new(WitTransaction(store::begin(mode)?)))
    }

    fn try_lock(&self, name: &str) -> Result<Option<Box<dyn ports::Lease>>, ports::StoreError> {
        Ok(store::try_lock(name)?.map(|l| Box::new(WitLease { _held: l }) as Box<dyn ports::Lease>))
    }
}

/// Dropping the resource handle releases the lock in the host.
struct WitLease {
    _held: store::Lease,
}

impl ports::Lease for WitLease {}

/// Dropping the resource handle rolls the transaction back in the host.
struct WitTransaction(store::Transaction);

impl ports::Transaction for WitTransaction {
    fn commit(self: Box<Self>) -> Result<(), ports::StoreError> {
        self.0.commit()
    }
}

impl ports::Services for WitHost {
    fn now_ms(&self) -> i64 {
        ports::system_now_ms()
    }
    fn log(&self, level: ports::Level, message: &str) {
        host::log(level, message);
    }
    fn progress(&self, event: &ports::Progress) {
        host::progress(event);
    }
    fn cancelled(&self) -> bool {
        host::cancelled()
    }
}
