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
use std::sync::{Once, OnceLock};

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
    if SCHEMA.get().is_none() {
        let status = api::open(&CTX).map_err(to_wit_error)?;
        let _ = SCHEMA.set(status);
    }
    Ok(&CTX)
}

/// The schema as the instance's first call found and left it.
static SCHEMA: OnceLock<crate::schema::SchemaStatus> = OnceLock::new();

impl wit::Guest for Component {
    fn open() -> Result<wit::SchemaStatus, wit::Error> {
        enter()?;
        let status = SCHEMA.get().cloned().ok_or_else(|| to_wit_error(crate::Error::internal("the schema was not opened")))?;
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

    fn sync(base_url: String, options: wit::SyncOptions) -> Result<wit::SyncReport, wit::Error> {
        use crate::sync::plan::Strategy;
        let ctx = enter()?;
        let strategy = match options.strategy {
            wit::Strategy::Auto => Strategy::Auto,
            wit::Strategy::Full => Strategy::Full,
            wit::Strategy::Incremental => Strategy::Incremental,
            wit::Strategy::EntitiesOnly => Strategy::EntitiesOnly,
            wit::Strategy::LabelsOnly => Strategy::LabelsOnly,
        };
        let options = crate::sync::SyncOptions {
            strategy,
            languages: options.languages,
            drop_languages: options.drop_languages,
            dry_run: options.dry_run,
        };
        let r = api::sync(ctx, &base_url, &options).map_err(to_wit_error)?;
        Ok(wit::SyncReport {
            run_id: r.run_id,
            base_url: r.base_url,
            modules_hash: r.modules_hash,
            new_version: r.new_version,
            strategy: r.plan.planned.as_str().to_owned(),
            reason: r.plan.reason.clone(),
            dry_run: r.dry_run,
            entities: r.plan.coverage.entities,
            languages: r.plan.coverage.languages.iter().cloned().collect(),
            planned_phases: r.plan.phases(),
            base_modules_hash: r.plan.base.as_ref().map(|b| b.modules_hash.clone()),
            shared_with: r.plan.shared_with.clone(),
            phases: r
                .phases
                .into_iter()
                .map(|p| wit::PhaseReport { name: p.name, fetched: p.fetched, written: p.written, reused: p.reused, missing: p.missing })
                .collect(),
            counts: r.counts.map(to_wit_counts),
            requests: r.requests,
            bytes: r.bytes,
            duration_ms: r.duration_ms,
            warnings: r.warnings,
        })
    }

    fn history(base_url: Option<String>, limit: u32) -> Result<Vec<wit::SyncRun>, wit::Error> {
        let ctx = enter()?;
        let runs = api::history(ctx, base_url.as_deref(), limit).map_err(to_wit_error)?;
        Ok(runs.into_iter().map(to_wit_run).collect())
    }

    fn get_entity(name: String, options: wit::ReadOptions) -> Result<wit::EntityLookup, wit::Error> {
        let ctx = enter()?;
        let r = api::entity(ctx, &name, &read_options(options)).map_err(to_wit_error)?;
        let t = &r.texts;
        Ok(wit::EntityLookup {
            env: r.env,
            data_entity: r.data_entity.map(|d| wit_data_entity(d, t)),
            public_entity: r.public_entity.map(|p| wit_public_entity(p, t)),
            suggestions: r.suggestions,
        })
    }

    fn get_enumeration(name: String, options: wit::ReadOptions) -> Result<wit::EnumerationLookup, wit::Error> {
        let ctx = enter()?;
        let r = api::enumeration(ctx, &name, &read_options(options)).map_err(to_wit_error)?;
        let t = &r.texts;
        Ok(wit::EnumerationLookup {
            env: r.env,
            enumeration: r.enumeration.map(|e| wit::Enumeration {
                label: label(t, &e.label_id),
                label_id: e.label_id,
                name: e.name,
                members: e
                    .members
                    .into_iter()
                    .map(|m| wit::EnumMember {
                        label: label(t, &m.label_id),
                        name: m.name,
                        value: m.value,
                        label_id: m.label_id,
                        configuration_enabled: m.configuration_enabled,
                    })
                    .collect(),
            }),
            suggestions: r.suggestions,
        })
    }

    fn get_action(name: String, entity: Option<String>, options: wit::ReadOptions) -> Result<wit::ActionLookup, wit::Error> {
        let ctx = enter()?;
        let r = api::actions(ctx, &name, entity.as_deref(), &read_options(options)).map_err(to_wit_error)?;
        Ok(wit::ActionLookup {
            env: r.env,
            actions: r.actions.into_iter().map(|(owner, a)| wit_action(owner, a)).collect(),
            suggestions: r.suggestions,
        })
    }

    fn get_label(id: String, language: String, fallback: Vec<String>, env: Option<String>) -> Result<wit::LabelLookup, wit::Error> {
        use crate::read::labels::LabelText;
        let ctx = enter()?;
        let r = api::label(ctx, &id, &language, &fallback, env.as_deref()).map_err(to_wit_error)?;
        let mut out = wit::LabelLookup {
            env: r.env,
            id: r.id,
            text: None,
            language: None,
            literal: false,
            missing_in: vec![],
            not_synced: vec![],
            unknown_in: vec![],
        };
        match r.text {
            LabelText::Literal(text) => {
                out.text = Some(text);
                out.literal = true;
            }
            LabelText::Found { text, language, skipped } => {
                out.text = Some(text);
                out.language = Some(language);
                out.missing_in = skipped.known_missing;
                out.not_synced = skipped.not_synced;
                out.unknown_in = skipped.unknown;
            }
            LabelText::Missing(skipped) => {
                out.missing_in = skipped.known_missing;
                out.not_synced = skipped.not_synced;
                out.unknown_in = skipped.unknown;
            }
        }
        Ok(out)
    }

    fn search(query: wit::SearchQuery, options: wit::ReadOptions) -> Result<wit::SearchResults, wit::Error> {
        use crate::search::query::{Filters, Query};
        let ctx = enter()?;
        let f = query.filters;
        let q = Query {
            text: query.text,
            kinds: query.kinds,
            filters: Filters {
                category: f.category,
                read_only: f.read_only,
                data_service_enabled: f.data_service_enabled,
                data_management_enabled: f.data_management_enabled,
                entity: f.entity,
            },
            language: query.language,
            limit: query.limit,
            offset: query.offset,
        };
        let r = api::search(ctx, q, &read_options(options)).map_err(to_wit_error)?;
        let t = &r.texts;
        Ok(wit::SearchResults {
            env: r.env,
            total: r.results.total,
            hits: r
                .results
                .hits
                .into_iter()
                .map(|h| wit::SearchHit {
                    label: label(t, &h.label_id),
                    kind: h.kind,
                    name: h.name,
                    entity_set_name: h.alias,
                    entity: h.owner,
                    label_id: h.label_id,
                    matched: h.matched,
                })
                .collect(),
        })
    }

    fn get_stats(env: Option<String>) -> Result<wit::Stats, wit::Error> {
        let ctx = enter()?;
        let s = api::stats(ctx, env.as_deref()).map_err(to_wit_error)?;
        Ok(wit::Stats {
            environments: s
                .environments
                .into_iter()
                .map(|e| wit::EnvironmentStats {
                    base_url: e.base_url,
                    detected_hash: e.detected_hash,
                    synced_hash: e.synced_hash,
                    synced_ms: e.synced_ms,
                    counts: e.counts.map(to_wit_counts),
                    coverage: e
                        .coverage
                        .into_iter()
                        .map(|c| wit::LanguageCoverage { language: c.language, texts: c.texts, missing: c.missing })
                        .collect(),
                    last_sync: e.last_sync.map(to_wit_run),
                })
                .collect(),
            versions: s
                .versions
                .into_iter()
                .map(|v| wit::VersionStats {
                    modules_hash: v.modules_hash,
                    module_count: v.module_count,
                    environments: v.environments,
                    complete_snapshots: v.complete_snapshots,
                })
                .collect(),
            kinds: s
                .kinds
                .into_iter()
                .map(|k| wit::KindStats { kind: k.kind, stored: k.stored, references: k.references, shared: k.shared })
                .collect(),
            label_texts: s.label_texts,
            label_references: s.label_references,
            database_bytes: s.database_bytes,
            free_bytes: s.free_bytes,
            last_sync: s.last_sync.map(to_wit_run),
        })
    }

    fn gc(options: wit::GcOptions) -> Result<wit::GcReport, wit::Error> {
        let ctx = enter()?;
        let r = api::gc(ctx, options.keep_days, options.vacuum).map_err(to_wit_error)?;
        Ok(wit::GcReport { versions: r.versions, snapshots: r.snapshots, objects: r.objects, labels: r.labels, bytes_freed: r.bytes_freed })
    }

    fn forget(base_url: String) -> Result<wit::ForgetReport, wit::Error> {
        let ctx = enter()?;
        let r = api::forget(ctx, &base_url).map_err(to_wit_error)?;
        Ok(wit::ForgetReport { base_url: r.base_url, runs: r.runs, snapshot_unreferenced: r.snapshot_unreferenced })
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

fn to_wit_run(r: crate::sync::history::SyncRun) -> wit::SyncRun {
    wit::SyncRun {
        id: r.id,
        base_url: r.base_url,
        modules_hash: r.modules_hash,
        requested_strategy: r.requested_strategy,
        strategy: r.strategy,
        reason: r.reason,
        languages: crate::sync::coverage::Coverage::parse_languages(&r.languages).into_iter().collect(),
        started_ms: r.started_ms,
        finished_ms: r.finished_ms,
        outcome: r.outcome,
        error: r.error,
        requests: r.requests,
        bytes: r.bytes,
        objects_fetched: r.objects_fetched,
        objects_written: r.objects_written,
        objects_reused: r.objects_reused,
        labels_fetched: r.labels_fetched,
        labels_reused: r.labels_reused,
        labels_missing: r.labels_missing,
    }
}

fn read_options(o: wit::ReadOptions) -> api::ReadOptions {
    api::ReadOptions { env: o.env, languages: o.labels.map(|l| crate::read::labels::language_order(&l.language, &l.fallback)) }
}

fn label(texts: &api::Texts, id: &Option<String>) -> Option<String> {
    id.as_ref().and_then(|id| texts.get(id).cloned())
}

fn wit_data_entity(d: crate::metadata::DataEntity, t: &api::Texts) -> wit::DataEntity {
    wit::DataEntity {
        label: label(t, &d.label_id),
        name: d.name,
        public_entity_name: d.public_entity_name,
        public_collection_name: d.public_collection_name,
        label_id: d.label_id,
        category: d.category,
        data_service_enabled: d.data_service_enabled,
        data_management_enabled: d.data_management_enabled,
        is_read_only: d.is_read_only,
    }
}

fn wit_action(owner: String, a: crate::metadata::Action) -> wit::Action {
    wit::Action {
        name: a.name,
        entity: owner,
        binding_kind: a.binding_kind,
        field_lookup: a.field_lookup,
        parameters: a
            .parameters
            .into_iter()
            .map(|p| wit::ActionParameter { name: p.name, type_name: p.type_name, is_collection: p.is_collection })
            .collect(),
        return_type: a.return_type.map(|t| wit::ActionParameterType { type_name: t.type_name, is_collection: t.is_collection }),
    }
}

fn wit_public_entity(p: crate::metadata::PublicEntity, t: &api::Texts) -> wit::PublicEntity {
    let owner = p.name.clone();
    wit::PublicEntity {
        label: label(t, &p.label_id),
        name: p.name,
        entity_set_name: p.entity_set_name,
        label_id: p.label_id,
        is_read_only: p.is_read_only,
        configuration_enabled: p.configuration_enabled,
        properties: p
            .properties
            .into_iter()
            .map(|x| wit::Property {
                label: label(t, &x.label_id),
                name: x.name,
                type_name: x.type_name,
                data_type: x.data_type,
                label_id: x.label_id,
                is_key: x.is_key,
                is_mandatory: x.is_mandatory,
                configuration_enabled: x.configuration_enabled,
                allow_edit: x.allow_edit,
                allow_edit_on_create: x.allow_edit_on_create,
                is_dimension: x.is_dimension,
                dimension_relation: x.dimension_relation,
                is_dynamic_dimension: x.is_dynamic_dimension,
                dimension_legal_entity_property: x.dimension_legal_entity_property,
                dimension_type_property: x.dimension_type_property,
            })
            .collect(),
        navigation_properties: p
            .navigation_properties
            .into_iter()
            .map(|n| wit::NavigationProperty {
                name: n.name,
                related_entity: n.related_entity,
                related_relation_name: n.related_relation_name,
                cardinality: n.cardinality,
                constraints: n
                    .constraints
                    .into_iter()
                    .map(|c| wit::Constraint {
                        kind: c.kind,
                        property: c.property,
                        referenced_property: c.referenced_property,
                        related_property: c.related_property,
                        value: c.value,
                        value_str: c.value_str,
                    })
                    .collect(),
            })
            .collect(),
        property_groups: p.property_groups.into_iter().map(|g| wit::PropertyGroup { name: g.name, properties: g.properties }).collect(),
        actions: p.actions.into_iter().map(|a| wit_action(owner.clone(), a)).collect(),
    }
}

fn to_wit_counts(c: crate::sync::snapshot::Counts) -> wit::SnapshotCounts {
    wit::SnapshotCounts {
        data_entities: c.data_entities,
        public_entities: c.public_entities,
        properties: c.properties,
        navigation_properties: c.navigation_properties,
        constraints: c.constraints,
        property_groups: c.property_groups,
        actions: c.actions,
        enumerations: c.enumerations,
        members: c.members,
        label_ids: c.label_ids,
        labels: c.labels,
        labels_missing: c.labels_missing,
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
        idempotent: r.idempotent,
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
            http::Error::Interrupted(m) => ports::HttpError::Interrupted(m),
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
    fn start(&self, requests: &[ports::HttpRequest]) -> Box<dyn ports::PendingBatch + '_> {
        let wit_requests: Vec<http::Request> = requests.iter().map(to_wit_request).collect();
        Box::new(WitBatch(http::start(&wit_requests)))
    }
}

/// Dropping the resource handle stops the batch's unanswered requests in the host.
struct WitBatch(http::PendingBatch);

impl ports::PendingBatch for WitBatch {
    fn next(&mut self, max: usize, linger_ms: u32) -> Vec<ports::Completion> {
        let max = u32::try_from(max).unwrap_or(u32::MAX);
        self.0.next(max, linger_ms).into_iter().map(|c| (c.index as usize, from_wit_response(c.outcome))).collect()
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
        store::ErrorCode::ReadOnly => C::ReadOnly,
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
