//! The component: WIT bindings, the ports implemented with the WIT imports, and the exports.
//!
//! Only conversions live here; every decision is made in the modules it calls.

wit_bindgen::generate!({
    world: "core",
    path: "../wit",
});

use crate::ports::{self, Ctx};
use crate::{api, catalog, modules};
use d365meta::cache::{host, http, store};
use exports::d365meta::cache::cache as wit;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

struct Component;

export!(Component);

struct WitHttp;
struct WitStore;
struct WitHost;

const CTX: Ctx<'static> = Ctx { http: &WitHttp, store: &WitStore, host: &WitHost };

/// Runs once per instance before any export: panics are reported through the host's log (a panic
/// aborts the instance; the message would otherwise be lost) and the schema is opened.
fn enter() -> Result<&'static Ctx<'static>, wit::Error> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| host::log(host::Level::Error, &format!("d365meta core panicked: {info}"))));
    });
    static OPENED: AtomicBool = AtomicBool::new(false);
    if !OPENED.load(Ordering::Relaxed) {
        api::open(&CTX).map_err(to_wit_error)?;
        OPENED.store(true, Ordering::Relaxed);
    }
    Ok(&CTX)
}

impl wit::Guest for Component {
    fn open() -> Result<wit::SchemaStatus, wit::Error> {
        let ctx = enter()?;
        // `enter` applied the migrations; report where the schema stands now.
        let status = api::open(ctx).map_err(to_wit_error)?;
        Ok(wit::SchemaStatus { version: status.version, latest: status.latest, applied: status.applied })
    }

    fn detect_version(base_url: String) -> Result<wit::VersionReport, wit::Error> {
        let ctx = enter()?;
        let (d, r) = api::detect_version(ctx, &base_url).map_err(to_wit_error)?;
        Ok(wit::VersionReport {
            base_url: d.base_url,
            modules_hash: d.modules_hash,
            modules: d.modules.modules.into_iter().map(to_wit_module).collect(),
            unparsed: d.modules.unparsed.into_iter().map(|u| wit::UnparsedLine { line: u.line, text: u.text, reason: u.reason }).collect(),
            application_version: d.application_version,
            platform_version: d.platform_version,
            fallback: d.fallback,
            fallback_reason: d.fallback_reason,
            warnings: d.warnings,
            new_version: r.new_version,
            first_seen_ms: r.first_seen_ms,
            last_seen_ms: r.last_seen_ms,
            shared_with: r.shared_with,
            requests: d.requests,
        })
    }

    fn compare_modules(a: Vec<wit::Module>, b: Vec<wit::Module>) -> wit::ModuleDiff {
        let mut a: Vec<modules::Module> = a.into_iter().map(from_wit_module).collect();
        let mut b: Vec<modules::Module> = b.into_iter().map(from_wit_module).collect();
        modules::sort_modules(&mut a);
        modules::sort_modules(&mut b);
        let d = modules::diff(&a, &b);
        wit::ModuleDiff {
            added: d.added.into_iter().map(to_wit_module).collect(),
            removed: d.removed.into_iter().map(to_wit_module).collect(),
            changed: d
                .changed
                .into_iter()
                .map(|c| wit::ModuleChange { module_id: c.module_id, old_version: c.old_version, new_version: c.new_version })
                .collect(),
            unchanged: d.unchanged,
        }
    }

    fn list_environments() -> Result<Vec<wit::EnvironmentInfo>, wit::Error> {
        let ctx = enter()?;
        let envs = catalog::list_environments(ctx.store).map_err(to_wit_error)?;
        Ok(envs
            .into_iter()
            .map(|e| wit::EnvironmentInfo {
                base_url: e.base_url,
                modules_hash: e.modules_hash,
                application_version: e.application_version,
                platform_version: e.platform_version,
                fallback: e.fallback,
                first_seen_ms: e.first_seen_ms,
                last_seen_ms: e.last_seen_ms,
            })
            .collect())
    }

    fn list_versions() -> Result<Vec<wit::VersionInfo>, wit::Error> {
        let ctx = enter()?;
        let versions = catalog::list_versions(ctx.store).map_err(to_wit_error)?;
        Ok(versions
            .into_iter()
            .map(|v| wit::VersionInfo {
                modules_hash: v.modules_hash,
                module_count: v.module_count,
                application_version: v.application_version,
                platform_version: v.platform_version,
                fallback: v.fallback,
                first_seen_ms: v.first_seen_ms,
                last_seen_ms: v.last_seen_ms,
                environments: v.environments,
            })
            .collect())
    }
}

fn to_wit_module(m: modules::Module) -> wit::Module {
    wit::Module { module_id: m.module_id, name: m.name, version: m.version, publisher: m.publisher, display_name: m.display_name }
}

fn from_wit_module(m: wit::Module) -> modules::Module {
    modules::Module { module_id: m.module_id, name: m.name, version: m.version, publisher: m.publisher, display_name: m.display_name }
}

fn to_wit_error(e: crate::Error) -> wit::Error {
    use crate::ErrorKind as K;
    use wit::ErrorKind as W;
    let kind = match e.kind {
        K::InvalidInput => W::InvalidInput,
        K::Denied => W::Denied,
        K::Network => W::Network,
        K::Service => W::Service,
        K::Parse => W::Parse,
        K::Store => W::Store,
        K::Schema => W::Schema,
        K::Cancelled => W::Cancelled,
        K::NotFound => W::NotFound,
        K::Conflict => W::Conflict,
        K::Internal => W::Internal,
    };
    wit::Error { kind, message: e.message }
}

// ---- ports over the imports ----

fn to_wit_request(r: &ports::HttpRequest) -> http::Request {
    http::Request {
        method: match r.method {
            ports::Method::Get => http::Method::Get,
            ports::Method::Post => http::Method::Post,
        },
        url: r.url.clone(),
        headers: r.headers.iter().map(|(name, value)| http::Header { name: name.clone(), value: value.clone() }).collect(),
        body: r.body.clone(),
    }
}

fn from_wit_response(r: Result<http::Response, http::Error>) -> Result<ports::HttpResponse, ports::HttpError> {
    match r {
        Ok(r) => Ok(ports::HttpResponse {
            status: r.status,
            headers: r.headers.into_iter().map(|h| (h.name, h.value)).collect(),
            body: r.body,
            attempts: r.attempts,
        }),
        Err(e) => Err(match e {
            http::Error::Denied(m) => ports::HttpError::Denied(m),
            http::Error::InvalidUrl(m) => ports::HttpError::InvalidUrl(m),
            http::Error::Timeout(m) => ports::HttpError::Timeout(m),
            http::Error::Connect(m) => ports::HttpError::Connect(m),
            http::Error::TooLarge(m) => ports::HttpError::TooLarge(m),
            http::Error::Cancelled => ports::HttpError::Cancelled,
            http::Error::Other(m) => ports::HttpError::Other(m),
        }),
    }
}

impl ports::Http for WitHttp {
    fn send(&self, request: &ports::HttpRequest) -> Result<ports::HttpResponse, ports::HttpError> {
        from_wit_response(http::send(&to_wit_request(request)))
    }
    fn send_batch(&self, requests: &[ports::HttpRequest]) -> Vec<Result<ports::HttpResponse, ports::HttpError>> {
        let wit_requests: Vec<http::Request> = requests.iter().map(to_wit_request).collect();
        http::send_batch(&wit_requests).into_iter().map(from_wit_response).collect()
    }
}

fn to_wit_value(v: &ports::Value) -> store::Value {
    match v {
        ports::Value::Null => store::Value::Null,
        ports::Value::Integer(i) => store::Value::Integer(*i),
        ports::Value::Real(f) => store::Value::Real(*f),
        ports::Value::Text(s) => store::Value::Text(s.clone()),
        ports::Value::Blob(b) => store::Value::Blob(b.clone()),
    }
}

fn from_wit_value(v: store::Value) -> ports::Value {
    match v {
        store::Value::Null => ports::Value::Null,
        store::Value::Integer(i) => ports::Value::Integer(i),
        store::Value::Real(f) => ports::Value::Real(f),
        store::Value::Text(s) => ports::Value::Text(s),
        store::Value::Blob(b) => ports::Value::Blob(b),
    }
}

fn from_wit_store_error(e: store::Error) -> ports::StoreError {
    use ports::StoreErrorCode as C;
    let code = match e.code {
        store::ErrorCode::Constraint => C::Constraint,
        store::ErrorCode::Busy => C::Busy,
        store::ErrorCode::Denied => C::Denied,
        store::ErrorCode::Corrupt => C::Corrupt,
        store::ErrorCode::Invalid => C::Invalid,
        store::ErrorCode::Misuse => C::Misuse,
        store::ErrorCode::Other => C::Other,
    };
    ports::StoreError { code, message: e.message }
}

impl ports::Store for WitStore {
    fn execute(&self, sql: &str, params: &[ports::Value]) -> Result<ports::Rows, ports::StoreError> {
        let params: Vec<store::Value> = params.iter().map(to_wit_value).collect();
        let rows = store::execute(sql, &params).map_err(from_wit_store_error)?;
        Ok(ports::Rows {
            columns: rows.columns,
            rows: rows.rows.into_iter().map(|r| r.into_iter().map(from_wit_value).collect()).collect(),
            changes: rows.changes,
        })
    }

    fn execute_many(&self, sql: &str, params: &[Vec<ports::Value>]) -> Result<u64, ports::StoreError> {
        let params: Vec<Vec<store::Value>> = params.iter().map(|r| r.iter().map(to_wit_value).collect()).collect();
        store::execute_many(sql, &params).map_err(from_wit_store_error)
    }

    fn begin(&self, mode: ports::TxMode) -> Result<Box<dyn ports::Transaction + '_>, ports::StoreError> {
        let mode = match mode {
            ports::TxMode::Deferred => store::TransactionMode::Deferred,
            ports::TxMode::Immediate => store::TransactionMode::Immediate,
        };
        Ok(Box::new(WitTransaction(store::begin(mode).map_err(from_wit_store_error)?)))
    }

    fn try_lock(&self, name: &str) -> Result<Option<Box<dyn ports::Lease>>, ports::StoreError> {
        let lease = store::try_lock(name).map_err(from_wit_store_error)?;
        Ok(lease.map(|l| Box::new(WitLease { _held: l }) as Box<dyn ports::Lease>))
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
        self.0.commit().map_err(from_wit_store_error)
    }
}

impl ports::Services for WitHost {
    fn now_ms(&self) -> i64 {
        host::now_ms()
    }
    fn log(&self, level: ports::Level, message: &str) {
        let level = match level {
            ports::Level::Error => host::Level::Error,
            ports::Level::Warn => host::Level::Warn,
            ports::Level::Info => host::Level::Info,
            ports::Level::Debug => host::Level::Debug,
            ports::Level::Trace => host::Level::Trace,
        };
        host::log(level, message);
    }
    fn progress(&self, event: &ports::Progress) {
        host::progress(&host::ProgressEvent { phase: event.phase.clone(), done: event.done, total: event.total, bytes: event.bytes });
    }
    fn cancelled(&self) -> bool {
        host::cancelled()
    }
}
