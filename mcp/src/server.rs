//! The MCP face of the cache: tools and resources, each answered by the component.
//!
//! Every tool answers with structured content (the record the component returned, in the JSON
//! the command line prints with `--json`) and a short text rendering for a model to read. A
//! failure of the cache is a tool result marked as an error, in the cache's own words, and so is
//! an argument that is malformed, naming the argument: the MCP specification asks for input
//! errors as tool results so that the model can read them and correct its call. Only `sync`
//! reaches an environment; every other tool reads the cache on an instance that is lent no
//! environment.

use crate::args::*;
use crate::engine::{Engine, Failure, JobState, Profiles, d365meta_json};
use crate::render;
use d365meta::cache::{
    DiffOptions, DiffSide, ErrorKind, LabelLanguages, LabelLookup, ObjectKind, ReadOptions, SearchFilters, SearchQuery,
    Strategy as CoreStrategy, SyncOptions,
};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::*;
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use serde_json::{Value as Json, json};
use std::sync::Arc;

const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 200;
const MAX_LABEL_IDS: usize = 500;

#[derive(Clone)]
pub struct Server {
    engine: Arc<Engine>,
    tool_router: ToolRouter<Server>,
}

fn answer(structured: Json, text: String) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(structured);
    result
}

/// A failure of the cache as a tool result marked as an error, so that the model reads it.
fn failed(f: Failure) -> Result<CallToolResult, McpError> {
    let mut result = CallToolResult::error(vec![ContentBlock::text(format!("{}: {}", f.kind.as_deref().unwrap_or("error"), f.message))]);
    result.structured_content = Some(json!({ "error": f }));
    Ok(result)
}

/// A malformed argument, named, as a tool error of kind `invalid-input`.
fn invalid(argument: &str, message: impl std::fmt::Display) -> Result<CallToolResult, McpError> {
    failed(Failure {
        kind: Some(d365meta::bindings::name_of(&ErrorKind::InvalidInput)),
        message: format!("argument `{argument}`: {message}"),
    })
}

/// An environment argument: a base URL (http or https, with a host) as it is, or a profile's name
/// as its base URL; left out, the environment of the profile the server was started with, if any,
/// else `None` (the cache's one synced environment, or the most recent).
fn resolve_environment(profiles: &Profiles, given: Option<String>) -> Result<Option<String>, String> {
    match given {
        None => Ok(profiles.selected.clone()),
        Some(url) if url.contains("://") => d365meta::policy::Origin::parse(&url).map(|_| Some(url)),
        Some(name) => profiles.base_url(&name).map(|url| Some(url.to_owned())).ok_or_else(|| profiles.unknown(&name)),
    }
}

/// A side of a comparison: a base URL, a profile's name as its base URL, or else a modules hash.
fn resolve_side(profiles: &Profiles, given: String) -> Result<String, String> {
    if given.contains("://") {
        return d365meta::policy::Origin::parse(&given).map(|_| given);
    }
    Ok(profiles.base_url(&given).map(str::to_owned).unwrap_or(given))
}

/// The environment argument resolved (see [`resolve_environment`]), or the tool's refusal.
macro_rules! environment {
    ($server:expr, $environment:expr) => {
        match $server.environment($environment) {
            Ok(environment) => environment,
            Err(message) => return invalid("environment", message),
        }
    };
    // Left out, every environment: the server's profile does not narrow the answer.
    ($server:expr, $environment:expr, or all) => {
        match $environment {
            None => None,
            given => environment!($server, given),
        }
    };
}

fn respond(outcome: Result<(Json, String), Failure>) -> Result<CallToolResult, McpError> {
    match outcome {
        Ok((structured, text)) => Ok(answer(structured, text)),
        Err(f) => failed(f),
    }
}

fn labels(language: Option<String>, fallback: Option<Vec<String>>) -> Option<LabelLanguages> {
    language.map(|language| LabelLanguages { language, fallback: fallback.unwrap_or_else(|| vec!["en-US".to_owned()]) })
}

fn read_options(environment: Option<String>, labels: Option<LabelLanguages>) -> ReadOptions {
    ReadOptions { base_url: environment, labels }
}

fn object_kind(kind: Kind) -> ObjectKind {
    match kind {
        Kind::DataEntity => ObjectKind::DataEntity,
        Kind::PublicEntity => ObjectKind::PublicEntity,
        Kind::Enumeration => ObjectKind::Enumeration,
        Kind::Action => ObjectKind::Action,
        Kind::Property => ObjectKind::Property,
    }
}

fn strategy(s: Strategy) -> CoreStrategy {
    match s {
        Strategy::Auto => CoreStrategy::Auto,
        Strategy::Full => CoreStrategy::Full,
        Strategy::Incremental => CoreStrategy::Incremental,
        Strategy::EntitiesOnly => CoreStrategy::EntitiesOnly,
        Strategy::LabelsOnly => CoreStrategy::LabelsOnly,
    }
}

/// A version named by a tool argument: a base URL, or else a modules hash.
fn version_selector(arg: &str) -> (Option<String>, ReadOptions) {
    match DiffSide::named(arg) {
        DiffSide::Environment(url) => (None, read_options(Some(url), None)),
        DiffSide::Version(hash) => (Some(hash), read_options(None, None)),
    }
}

#[tool_router]
impl Server {
    pub fn new(engine: Arc<Engine>) -> Server {
        Server { engine, tool_router: Self::tool_router() }
    }

    fn environment(&self, given: Option<String>) -> Result<Option<String>, String> {
        resolve_environment(&self.engine.config().profiles, given)
    }

    fn side(&self, given: String) -> Result<String, String> {
        resolve_side(&self.engine.config().profiles, given)
    }

    #[tool(
        description = "Search the cached F&O metadata: data entities, public entities, enumerations, actions and properties, by name, entity set name or label text, with filters (category, read-only, OData / data management). Returns hits with their kind, name and label, and the total for paging.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn search(&self, Parameters(Args(a)): Parameters<Args<SearchArgs>>) -> Result<CallToolResult, McpError> {
        if a.text.trim().is_empty() {
            return invalid("text", "give at least one word to search for");
        }
        let limit = a.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return invalid("limit", format!("{limit} is not between 1 and {MAX_LIMIT}"));
        }
        let query = SearchQuery {
            text: a.text,
            kinds: a.kinds.into_iter().map(object_kind).collect(),
            filters: SearchFilters {
                category: a.category,
                read_only: a.read_only,
                data_service_enabled: a.data_service_enabled,
                data_management_enabled: a.data_management_enabled,
                entity: a.entity,
            },
            limit,
            offset: a.offset.unwrap_or(0),
        };
        let environment = environment!(self, a.environment);
        let options = read_options(environment, labels(a.language, None));
        let offset = query.offset;
        respond(
            self.engine
                .read(move |cache| Box::pin(async move { cache.search(query, options).await }))
                .await
                .map(|r| (d365meta_json(&r), render::search(&r, offset))),
        )
    }

    #[tool(
        name = "get_entity",
        description = "The schema of an entity: by public entity name (CustomerV3), entity set name (CustomersV3) or data entity name (CustCustomerV3Entity). Gives the public entity (properties with types, keys, mandatory fields, navigation properties with their constraints, property groups, actions) and its data entity (category, OData and data management flags). Labels are resolved when a language is given. An unknown name gives suggestions.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_entity(&self, Parameters(Args(a)): Parameters<Args<EntityArgs>>) -> Result<CallToolResult, McpError> {
        let environment = environment!(self, a.environment);
        let options = read_options(environment, labels(a.language, a.fallback));
        let name = a.name;
        respond(
            self.engine
                .read(move |cache| Box::pin(async move { cache.get_entity(&name, options).await }))
                .await
                .map(|r| (d365meta_json(&r), render::entity(&r))),
        )
    }

    #[tool(
        name = "get_enumeration",
        description = "An enumeration with its members (name, value, label), e.g. NoYes or CustVendorBlocked. Labels are resolved when a language is given. An unknown name gives suggestions.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_enumeration(&self, Parameters(Args(a)): Parameters<Args<EnumerationArgs>>) -> Result<CallToolResult, McpError> {
        let environment = environment!(self, a.environment);
        let options = read_options(environment, labels(a.language, a.fallback));
        let name = a.name;
        respond(
            self.engine
                .read(move |cache| Box::pin(async move { cache.get_enumeration(&name, options).await }))
                .await
                .map(|r| (d365meta_json(&r), render::enumeration(&r))),
        )
    }

    #[tool(
        name = "get_labels",
        description = "The texts of label ids (@SYS13342, @AccountsReceivable:CustomersV3, ...) in a language, with fallback languages; many ids in one call.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_labels(&self, Parameters(Args(a)): Parameters<Args<LabelsArgs>>) -> Result<CallToolResult, McpError> {
        if a.ids.is_empty() || a.ids.len() > MAX_LABEL_IDS {
            return invalid("ids", format!("give 1 to {MAX_LABEL_IDS} label ids, not {}", a.ids.len()));
        }
        let language = a.language.unwrap_or_else(|| "en-US".to_owned());
        let environment = environment!(self, a.environment);
        let options = read_options(environment, labels(Some(language), a.fallback));
        let ids = a.ids;
        respond(
            self.engine
                .read(move |cache| {
                    Box::pin(async move {
                        let mut found: Vec<LabelLookup> = Vec::with_capacity(ids.len());
                        for id in &ids {
                            found.push(cache.get_label(id, options.clone()).await?);
                        }
                        Ok(found)
                    })
                })
                .await
                .map(|r| (json!({ "labels": d365meta_json(&r) }), render::labels(&r))),
        )
    }

    #[tool(
        name = "get_version",
        description = "The version an environment runs, as cached: its modules hash, installed modules (id, name, version, publisher), application and platform versions, and the other environments that run the same version. Or a cached version by modules hash.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_version(&self, Parameters(Args(a)): Parameters<Args<VersionArgs>>) -> Result<CallToolResult, McpError> {
        let environment = environment!(self, a.environment);
        let options = read_options(environment, None);
        let hash = a.modules_hash;
        respond(
            self.engine
                .read(move |cache| Box::pin(async move { cache.get_version(hash.as_deref(), options).await }))
                .await
                .map(|r| (d365meta_json(&r), render::version(&r))),
        )
    }

    #[tool(
        name = "compare_versions",
        description = "The module differences between two cached versions, each named by an environment's base URL or a modules hash: modules added, removed and changed (with old and new versions).",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn compare_versions(&self, Parameters(Args(a)): Parameters<Args<CompareArgs>>) -> Result<CallToolResult, McpError> {
        let (side_a, side_b) = match (self.side(a.a), self.side(a.b)) {
            (Ok(x), Ok(y)) => (x, y),
            (Err(message), _) => return invalid("a", message),
            (_, Err(message)) => return invalid("b", message),
        };
        let (hash_a, read_a) = version_selector(&side_a);
        let (hash_b, read_b) = version_selector(&side_b);
        respond(
            self.engine
                .read(move |cache| {
                    Box::pin(async move {
                        let va = cache.get_version(hash_a.as_deref(), read_a).await?;
                        let vb = cache.get_version(hash_b.as_deref(), read_b).await?;
                        let diff = cache.compare_modules(va.modules.clone(), vb.modules.clone()).await?;
                        Ok((va, vb, diff))
                    })
                })
                .await
                .map(|(va, vb, diff)| {
                    let side = |v: &d365meta::cache::VersionDetails| {
                        json!({"modules_hash": v.modules_hash, "module_count": v.modules.len(), "environments": v.environments})
                    };
                    let mut out = d365meta_json(&diff);
                    out["a"] = side(&va);
                    out["b"] = side(&vb);
                    out["same_version"] = Json::Bool(va.modules_hash == vb.modules_hash);
                    let text = render::comparison(&va, &vb, &diff);
                    (out, text)
                }),
        )
    }

    #[tool(
        description = "What changed in the metadata between two versions, each an environment's base URL or a cached modules hash: modules, data entities, public entities and enumerations added, removed or changed, and inside a changed one its properties (type, key, mandatory, editable, label), navigation properties and constraints, property groups, actions and parameters, enumeration members; each change marked breaking when it breaks an integration. Answers from the cache alone.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn diff(&self, Parameters(Args(a)): Parameters<Args<DiffArgs>>) -> Result<CallToolResult, McpError> {
        let (side_a, side_b) = match (self.side(a.a), self.side(a.b)) {
            (Ok(x), Ok(y)) => (DiffSide::named(x), DiffSide::named(y)),
            (Err(message), _) => return invalid("a", message),
            (_, Err(message)) => return invalid("b", message),
        };
        let options = DiffOptions {
            kinds: a.kinds.into_iter().map(object_kind).collect(),
            entity: a.entity,
            only_breaking: a.only_breaking,
            label_languages: a.label_languages,
        };
        respond(
            self.engine
                .read(move |cache| Box::pin(async move { cache.diff(side_a, side_b, options).await }))
                .await
                .map(|r| (d365meta_json(&r), render::diff(&r))),
        )
    }

    #[tool(
        description = "Sync an environment's metadata into the cache (reads from the environment; can take minutes). Returns a handle at once; follow it with sync_status, stop it with sync_cancel. With wait=true, returns the report when done and sends progress notifications meanwhile.",
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn sync(
        &self,
        Parameters(Args(a)): Parameters<Args<SyncArgs>>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let options = SyncOptions {
            strategy: strategy(a.strategy.unwrap_or(Strategy::Auto)),
            languages: a.languages,
            drop_languages: vec![],
            dry_run: false,
        };
        let Some(environment) = environment!(self, Some(a.environment)) else { unreachable!("a named environment resolves to one") };
        let job = self.engine.start_sync(environment, options);
        if !a.wait {
            let status = job.status();
            let text = format!("sync started: handle {} for {}; follow it with sync_status", job.handle, job.base_url);
            return Ok(answer(status, text));
        }
        let token = context.meta.get_progress_token();
        let mut progress = job.progress.clone();
        loop {
            tokio::select! {
                changed = progress.changed() => {
                    if changed.is_err() {
                        continue;
                    }
                    let p = progress.borrow_and_update().clone();
                    if let Some(token) = &token {
                        let message = match p.total {
                            Some(total) => format!("{}: {} of {total}", p.phase.clone().unwrap_or_default(), p.done),
                            None => format!("{}: {}", p.phase.clone().unwrap_or_default(), p.done),
                        };
                        let _ = context.peer.notify_progress(ProgressNotificationParam::new(token.clone(), p.overall as f64).with_message(message)).await;
                    }
                }
                () = job.finished() => break,
                () = context.ct.cancelled() => {
                    // The client gave up on the call: the sync it started stops too.
                    job.cancel.cancel();
                    job.finished().await;
                    break;
                }
            }
        }
        let status = job.status();
        let outcome = match &*job.state.borrow() {
            JobState::Succeeded(report) => Ok((status.clone(), render::sync_report(report))),
            JobState::Failed(f) | JobState::Cancelled(f) => Err(f.clone()),
            JobState::Running => unreachable!("the loop ends when the sync does"),
        };
        respond(outcome)
    }

    #[tool(
        name = "sync_status",
        description = "Where a sync started with sync stands: running (with its phase and counts), succeeded (with its report), failed or cancelled (with the error).",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn sync_status(&self, Parameters(Args(a)): Parameters<Args<HandleArgs>>) -> Result<CallToolResult, McpError> {
        let Some(job) = self.engine.job(&a.handle) else {
            return invalid("handle", format!("no sync {:?} is known to this server", a.handle));
        };
        let status = job.status();
        let text = render::job(&status);
        Ok(answer(status, text))
    }

    #[tool(
        name = "sync_cancel",
        description = "Stop a running sync. It stops at its next step; what it had not finished is not kept, what the cache held before stays.",
        annotations(read_only_hint = false, destructive_hint = false, open_world_hint = false)
    )]
    async fn sync_cancel(&self, Parameters(Args(a)): Parameters<Args<HandleArgs>>) -> Result<CallToolResult, McpError> {
        let Some(job) = self.engine.job(&a.handle) else {
            return invalid("handle", format!("no sync {:?} is known to this server", a.handle));
        };
        job.cancel.cancel();
        job.finished().await;
        let status = job.status();
        let text = render::job(&status);
        Ok(answer(status, text))
    }

    #[tool(
        name = "sync_history",
        description = "Recorded syncs, newest first: when, which version, plan, outcome, requests and counts; of one environment or of all.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn sync_history(&self, Parameters(Args(a)): Parameters<Args<HistoryArgs>>) -> Result<CallToolResult, McpError> {
        let environment = environment!(self, a.environment, or all);
        let limit = a.limit.unwrap_or(20).clamp(1, 1000);
        respond(
            self.engine
                .read(move |cache| Box::pin(async move { cache.history(environment.as_deref(), limit).await }))
                .await
                .map(|r| (json!({ "runs": d365meta_json(&r) }), render::history(&r))),
        )
    }

    #[tool(
        name = "list_environments",
        description = "The environments the cache knows, with the version each runs and when it was seen.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn list_environments(&self, Parameters(Args(_)): Parameters<Args<NoArgs>>) -> Result<CallToolResult, McpError> {
        respond(
            self.engine
                .read(|cache| Box::pin(async move { cache.list_environments().await }))
                .await
                .map(|r| (json!({ "environments": d365meta_json(&r) }), render::environments(&r))),
        )
    }

    #[tool(
        name = "get_stats",
        description = "What the cache holds: per environment its synced version, counts of entities, enumerations and labels, label languages and the last sync; versions; the database's size.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_stats(&self, Parameters(Args(a)): Parameters<Args<StatsArgs>>) -> Result<CallToolResult, McpError> {
        let environment = environment!(self, a.environment, or all);
        respond(
            self.engine
                .read(move |cache| Box::pin(async move { cache.stats(environment.as_deref()).await }))
                .await
                .map(|r| (d365meta_json(&r), render::stats(&r))),
        )
    }
}

const ENVIRONMENTS_URI: &str = "d365meta://environments";

/// A resource URI's environment segment: `_` for the default environment, else a
/// percent-encoded base URL.
fn environment_of(segment: &str) -> Result<Option<String>, McpError> {
    if segment == "_" {
        return Ok(None);
    }
    let decoded = percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map_err(|_| McpError::invalid_params(format!("resource environment {segment:?} is not UTF-8 once decoded"), None))?;
    Ok(Some(decoded.into_owned()))
}

/// What rmcp puts before an argument its deserialization refused.
const REFUSED_ARGUMENTS: &str = "failed to deserialize parameters: ";

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Server {
    /// The router's call, with one change: arguments that do not parse become the same tool error
    /// as every other malformed argument (kind `invalid-input`, structured and as text), where rmcp
    /// alone would give text only.
    async fn call_tool(&self, request: CallToolRequestParams, context: RequestContext<RoleServer>) -> Result<CallToolResponse, McpError> {
        let tool = request.name.clone();
        let response = self.tool_router.call(rmcp::handler::server::tool::ToolCallContext::new(self, request, context)).await?;
        let CallToolResponse::Complete(result) = &response else {
            return Ok(response);
        };
        let refused = match (result.is_error, &result.structured_content, result.content.first().and_then(|c| c.as_text())) {
            (Some(true), None, Some(text)) => text.text.strip_prefix(REFUSED_ARGUMENTS).map(str::to_owned),
            _ => None,
        };
        match refused {
            Some(message) => {
                let message = if message.starts_with("argument `") { message } else { format!("arguments of {tool}: {message}") };
                Ok(failed(Failure { kind: Some(d365meta::bindings::name_of(&ErrorKind::InvalidInput)), message })?.into())
            }
            None => Ok(response),
        }
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_resources().build())
            .with_server_info(Implementation::new("d365meta", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "d365meta answers questions about Dynamics 365 Finance & Operations metadata from a local cache, in milliseconds and \
                 without reaching the environment: search finds entities, enumerations, actions and properties; get_entity gives an \
                 entity's schema (keys, properties, navigation, actions); get_enumeration, get_labels, get_version and \
                 compare_versions answer the rest. Only sync reads from an environment, to fill or refresh the cache. Tools take an \
                 optional environment (base URL); without it they use the one synced environment, or the most recently synced.",
            )
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let environments = Resource::new(ENVIRONMENTS_URI, "environments")
            .with_description("The environments in the cache, with the version each runs")
            .with_mime_type("application/json");
        Ok(ListResourcesResult::with_all_items(vec![environments]))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new("d365meta://{environment}/entities/{name}", "entity")
                .with_description(
                    "An entity's schema, as get_entity gives it. {environment}: the base URL, percent-encoded, or _ for the default environment",
                )
                .with_mime_type("application/json"),
            ResourceTemplate::new("d365meta://{environment}/enumerations/{name}", "enumeration")
                .with_description(
                    "An enumeration with its members. {environment}: the base URL, percent-encoded, or _ for the default environment",
                )
                .with_mime_type("application/json"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let uri = request.uri.clone();
        let json_of = |value: Json| -> Result<ReadResourceResponse, McpError> {
            let text = serde_json::to_string_pretty(&value).map_err(|e| McpError::internal_error(e.to_string(), None))?;
            Ok(ReadResourceResult::new(vec![ResourceContents::text(text, uri.clone()).with_mime_type("application/json")]).into())
        };
        let not_found = |f: Failure| McpError::resource_not_found(format!("{uri}: {}", f.message), None);
        if uri == ENVIRONMENTS_URI {
            let envs = self.engine.read(|cache| Box::pin(async move { cache.list_environments().await })).await.map_err(not_found)?;
            return json_of(json!({ "environments": d365meta_json(&envs) }));
        }
        let rest = uri
            .strip_prefix("d365meta://")
            .ok_or_else(|| McpError::resource_not_found(format!("{uri}: not a d365meta:// resource"), None))?;
        let parts: Vec<&str> = rest.splitn(3, '/').collect();
        let [environment, collection, name] = parts.as_slice() else {
            return Err(McpError::resource_not_found(
                format!("{uri}: expected d365meta://{{environment}}/entities/{{name}} or …/enumerations/{{name}}"),
                None,
            ));
        };
        let options = read_options(environment_of(environment)?, None);
        let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy().into_owned();
        match *collection {
            "entities" => {
                let found = self
                    .engine
                    .read(move |cache| Box::pin(async move { cache.get_entity(&name, options).await }))
                    .await
                    .map_err(not_found)?;
                if found.public_entity.is_none() && found.data_entity.is_none() {
                    return Err(McpError::resource_not_found(format!("{uri}: no such entity"), Some(d365meta_json(&found))));
                }
                json_of(d365meta_json(&found))
            }
            "enumerations" => {
                let found = self
                    .engine
                    .read(move |cache| Box::pin(async move { cache.get_enumeration(&name, options).await }))
                    .await
                    .map_err(not_found)?;
                if found.enumeration.is_none() {
                    return Err(McpError::resource_not_found(format!("{uri}: no such enumeration"), Some(d365meta_json(&found))));
                }
                json_of(d365meta_json(&found))
            }
            other => Err(McpError::resource_not_found(format!("{uri}: no collection {other:?} (entities, enumerations)"), None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resources_environment_is_a_percent_encoded_base_url_or_the_default() {
        assert_eq!(environment_of("_").unwrap(), None);
        assert_eq!(
            environment_of("https%3A%2F%2Fcontoso.operations.dynamics.com").unwrap().as_deref(),
            Some("https://contoso.operations.dynamics.com")
        );
        assert!(environment_of("%FF%FE").is_err());
    }

    #[test]
    fn an_environment_argument_is_a_base_url_or_a_profile_name() {
        let none = Profiles::default();
        assert_eq!(resolve_environment(&none, None), Ok(None));
        let url = "https://contoso.operations.dynamics.com";
        assert_eq!(resolve_environment(&none, Some(url.to_owned())), Ok(Some(url.to_owned())));
        for bad in ["contoso", "ftp://example.com", "http://"] {
            assert!(resolve_environment(&none, Some(bad.to_owned())).is_err(), "{bad}");
        }
        let profiles = Profiles { by_name: [("uat".to_owned(), url.to_owned())].into(), selected: Some("http://127.0.0.1:1".to_owned()) };
        assert_eq!(resolve_environment(&profiles, Some("uat".to_owned())), Ok(Some(url.to_owned())));
        assert_eq!(resolve_environment(&profiles, None), Ok(Some("http://127.0.0.1:1".to_owned())));
        let e = resolve_environment(&profiles, Some("prod".to_owned())).unwrap_err();
        assert!(e.contains("\"prod\" is neither a base URL") && e.contains("the profiles are uat"), "{e}");
        assert_eq!(resolve_side(&profiles, "uat".to_owned()), Ok(url.to_owned()));
        assert_eq!(resolve_side(&profiles, "ae97cdc85de9".to_owned()), Ok("ae97cdc85de9".to_owned()));
    }
}
