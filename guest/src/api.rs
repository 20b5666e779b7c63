//! The operations the component exports, written against the ports so they run natively in tests.
//! Each answers the WIT record the export returns.

use crate::catalog;
use crate::error::{Error, Result};
use crate::metadata::{Kind, Labelled, Texts};
use crate::ports::Ctx;
use crate::read::environment::{self, Scope};
use crate::read::labels::{self as label_texts, LabelText};
use crate::read::{entities, suggest};
use crate::url::normalize_base_url;
use crate::version;
use crate::wit::types::{
    ActionLookup, EntityLookup, EnumerationLookup, ForgetReport, GcOptions, GcReport, LabelLookup, PublishOptions, PublishReport,
    ReadOptions, SchemaStatus, SearchQuery, SearchResults, Stats, SyncOptions, SyncReport, SyncRun, VersionReport,
};

/// Opens the schema (applying migrations).
pub fn open(ctx: &Ctx<'_>) -> Result<SchemaStatus> {
    crate::schema::open(ctx.store, ctx.host.now_ms())
}

/// Detects and records the version of the environment `ctx.http` reaches.
pub fn detect_version(ctx: &Ctx<'_>) -> Result<VersionReport> {
    let base_url = normalize_base_url(&ctx.http.base_url())?;
    let d = version::detect(ctx, &base_url, true)?;
    let r = catalog::record(ctx.store, &d, ctx.host.now_ms())?;
    Ok(VersionReport {
        base_url: d.base_url,
        modules_hash: d.modules_hash,
        modules: d.modules.modules,
        unparsed: d.modules.unparsed,
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

/// Syncs the environment `ctx.http` reaches, pulling from `shared` what it has published.
pub fn sync(ctx: &Ctx<'_>, shared: Option<&dyn crate::ports::Shared>, options: &SyncOptions) -> Result<SyncReport> {
    crate::sync::sync(ctx, shared, options)
}

/// Uploads what the shared store lacks of cached versions.
pub fn publish(ctx: &Ctx<'_>, shared: &dyn crate::ports::Shared, options: &PublishOptions) -> Result<PublishReport> {
    crate::publish::publish(ctx, shared, options)
}

/// Recorded syncs, newest first; for an environment the cache does not know, an error.
pub fn history(ctx: &Ctx<'_>, options: &ReadOptions, limit: u32) -> Result<Vec<SyncRun>> {
    let url = options.base_url.as_deref().map(normalize_base_url).transpose()?;
    if let Some(url) = &url {
        let known = crate::sql::query_opt(
            ctx.store,
            "SELECT 1 FROM environments WHERE base_url = ?1 UNION ALL SELECT 1 FROM sync_runs WHERE base_url = ?1 LIMIT 1",
            &crate::params![url.as_str()],
            |r| r.int(0),
        )?;
        if known.is_none() {
            return Err(Error::not_found(format!("{url} is not in the cache: it was never detected or synced")));
        }
    }
    crate::sync::history::list(ctx.store, url.as_deref(), limit)
}

/// Removes what nothing references, then, if asked, gives the space back.
pub fn gc(ctx: &Ctx<'_>, options: &GcOptions) -> Result<GcReport> {
    let mut report = crate::gc::collect(ctx.store, options.keep_days, ctx.host.now_ms())?;
    if options.vacuum {
        report.bytes_freed = crate::gc::vacuum(ctx.store)?;
    }
    Ok(report)
}

/// Removes an environment and its recorded syncs.
pub fn forget(ctx: &Ctx<'_>, base_url: &str) -> Result<ForgetReport> {
    crate::gc::forget(ctx.store, &normalize_base_url(base_url)?)
}

// ---- reads ----

/// The languages labels are resolved in, when asked to: the language, then its fallbacks.
fn languages(options: &ReadOptions) -> Option<Vec<String>> {
    options.labels.as_ref().map(|l| label_texts::language_order(&l.language, &l.fallback))
}

/// Resolves the label ids `item` refers to and fills in their texts, when the options ask for it.
fn fill_labels<T: Labelled>(ctx: &Ctx<'_>, scope: &Scope, options: &ReadOptions, item: &mut T) -> Result<()> {
    let Some(languages) = languages(options) else { return Ok(()) };
    let mut ids = Vec::new();
    item.label_ids(&mut ids);
    let texts: Texts = label_texts::resolve(ctx.store, scope, &ids, &languages)?
        .into_iter()
        .filter_map(|(id, t)| t.text().map(|text| (id, text.to_owned())))
        .collect();
    item.fill_labels(&texts);
    Ok(())
}

pub fn entity(ctx: &Ctx<'_>, name: &str, options: &ReadOptions) -> Result<EntityLookup> {
    let scope = environment::resolve(ctx.store, options.base_url.as_deref())?;
    let store = ctx.store;
    let mut data = match entities::find(store, &scope, Kind::DataEntity, name)? {
        Some(id) => entities::data_entity(store, id)?,
        None => None,
    };
    let mut public_id = entities::find(store, &scope, Kind::PublicEntity, name)?;
    if public_id.is_none() {
        public_id = entities::find_by_entity_set(store, &scope, name)?;
    }
    if public_id.is_none()
        && let Some(public_name) = data.as_ref().and_then(|d| d.public_entity_name.as_deref())
    {
        public_id = entities::find(store, &scope, Kind::PublicEntity, public_name)?;
    }
    let public = match public_id {
        Some(id) => entities::public_entity(store, id)?,
        None => None,
    };
    if data.is_none()
        && let Some(p) = &public
    {
        data = match entities::data_entity_of_public(store, &scope, &p.name)? {
            Some(id) => entities::data_entity(store, id)?,
            None => None,
        };
    }
    let suggestions = if data.is_none() && public.is_none() {
        suggest::closest(name, entities::names(store, &scope, &[Kind::DataEntity, Kind::PublicEntity])?.iter().map(String::as_str), 5)
    } else {
        vec![]
    };
    let mut both = (data, public);
    fill_labels(ctx, &scope, options, &mut both)?;
    let (data, public) = both;
    Ok(EntityLookup { base_url: scope.base_url, data_entity: data, public_entity: public, suggestions })
}

pub fn enumeration(ctx: &Ctx<'_>, name: &str, options: &ReadOptions) -> Result<EnumerationLookup> {
    let scope = environment::resolve(ctx.store, options.base_url.as_deref())?;
    let mut found = match entities::find(ctx.store, &scope, Kind::Enumeration, name)? {
        Some(id) => entities::enumeration(ctx.store, id)?,
        None => None,
    };
    let suggestions = match &found {
        Some(_) => vec![],
        None => suggest::closest(name, entities::names(ctx.store, &scope, &[Kind::Enumeration])?.iter().map(String::as_str), 5),
    };
    fill_labels(ctx, &scope, options, &mut found)?;
    Ok(EnumerationLookup { base_url: scope.base_url, enumeration: found, suggestions })
}

/// The canonical public entity name for a name that may be a public entity, an entity set or a
/// data entity.
pub fn public_entity_name(ctx: &Ctx<'_>, scope: &Scope, name: &str) -> Result<Option<String>> {
    let store = ctx.store;
    let id = match entities::find(store, scope, Kind::PublicEntity, name)? {
        Some(id) => Some(id),
        None => match entities::find_by_entity_set(store, scope, name)? {
            Some(id) => Some(id),
            None => match entities::find(store, scope, Kind::DataEntity, name)? {
                Some(d) => match entities::data_entity(store, d)?.and_then(|d| d.public_entity_name) {
                    Some(p) => entities::find(store, scope, Kind::PublicEntity, &p)?,
                    None => None,
                },
                None => None,
            },
        },
    };
    Ok(match id {
        Some(id) => {
            crate::sql::query_opt(store, "SELECT name FROM public_entities WHERE object_id = ?1", &crate::params![id], |r| r.text(0))?
        }
        None => None,
    })
}

pub fn actions(ctx: &Ctx<'_>, name: &str, entity: Option<&str>, options: &ReadOptions) -> Result<ActionLookup> {
    let scope = environment::resolve(ctx.store, options.base_url.as_deref())?;
    let owner = match entity {
        Some(e) => Some(public_entity_name(ctx, &scope, e)?.ok_or_else(|| {
            let names = entities::names(ctx.store, &scope, &[Kind::PublicEntity, Kind::DataEntity]).unwrap_or_default();
            let close = suggest::closest(e, names.iter().map(String::as_str), 5);
            let hint = if close.is_empty() { String::new() } else { format!("; did you mean: {}", close.join(", ")) };
            Error::not_found(format!("no entity named {e:?} in {}{hint}", scope.base_url))
        })?),
        None => None,
    };
    let mut found = entities::actions_named(ctx.store, &scope, name)?;
    if let Some(owner) = &owner {
        found.retain(|a| &a.entity == owner);
    }
    let suggestions = if found.is_empty() {
        let pool = match &owner {
            Some(o) => match entities::find(ctx.store, &scope, Kind::PublicEntity, o)? {
                Some(id) => entities::actions_of(ctx.store, id, o)?.into_iter().map(|a| a.name).collect(),
                None => vec![],
            },
            None => entities::action_names(ctx.store, &scope)?,
        };
        suggest::closest(name, pool.iter().map(String::as_str), 5)
    } else {
        vec![]
    };
    Ok(ActionLookup { base_url: scope.base_url, actions: found, suggestions })
}

pub fn label(ctx: &Ctx<'_>, id: &str, options: &ReadOptions) -> Result<LabelLookup> {
    let scope = environment::resolve(ctx.store, options.base_url.as_deref())?;
    let order = languages(options).unwrap_or_else(|| vec![crate::sync::DEFAULT_LANGUAGE.to_owned()]);
    let mut resolved = label_texts::resolve(ctx.store, &scope, &[id], &order)?;
    let text = resolved.remove(id).ok_or_else(|| Error::internal("label resolution lost the id"))?;
    let mut out = LabelLookup {
        base_url: scope.base_url,
        id: id.to_owned(),
        text: None,
        language: None,
        literal: false,
        missing_in: vec![],
        not_synced: vec![],
        unknown_in: vec![],
    };
    let skipped = match text {
        LabelText::Literal(text) => {
            out.text = Some(text);
            out.literal = true;
            return Ok(out);
        }
        LabelText::Found { text, language, skipped } => {
            out.text = Some(text);
            out.language = Some(language);
            skipped
        }
        LabelText::Missing(skipped) => skipped,
    };
    out.missing_in = skipped.known_missing;
    out.not_synced = skipped.not_synced;
    out.unknown_in = skipped.unknown;
    Ok(out)
}

pub fn search(ctx: &Ctx<'_>, mut query: SearchQuery, options: &ReadOptions) -> Result<SearchResults> {
    let scope = environment::resolve(ctx.store, options.base_url.as_deref())?;
    if let Some(e) = query.filters.entity.clone() {
        query.filters.entity = Some(
            public_entity_name(ctx, &scope, &e)?.ok_or_else(|| Error::not_found(format!("no entity named {e:?} in {}", scope.base_url)))?,
        );
    }
    let language = options.labels.as_ref().map_or(crate::sync::DEFAULT_LANGUAGE, |l| l.language.as_str());
    let mut results = crate::search::query::run(ctx.store, &scope, &query, language)?;
    if let Some(languages) = languages(options) {
        let ids: Vec<&str> = results.hits.iter().filter_map(|h| h.label_id.as_deref()).collect();
        let texts = label_texts::resolve(ctx.store, &scope, &ids, &languages)?;
        for hit in &mut results.hits {
            hit.label = hit.label_id.as_ref().and_then(|id| texts.get(id)).and_then(|t| t.text()).map(str::to_owned);
        }
    }
    Ok(SearchResults { base_url: scope.base_url, total: results.total, total_exact: results.total_exact, hits: results.hits })
}

pub fn stats(ctx: &Ctx<'_>, options: &ReadOptions) -> Result<Stats> {
    crate::read::stats::collect(ctx.store, options.base_url.as_deref())
}
