//! The operations the component exports, written against the ports so they run natively in tests.

use crate::catalog::{self, Recorded};
use crate::error::Result;
use crate::ports::Ctx;
use crate::schema::{self, SchemaStatus};
use crate::url::normalize_base_url;
use crate::version::{self, Detected};

/// Opens the schema (applying migrations).
pub fn open(ctx: &Ctx<'_>) -> Result<SchemaStatus> {
    schema::open(ctx.store, ctx.host.now_ms())
}

/// Detects and records the version of the environment at `base_url`.
pub fn detect_version(ctx: &Ctx<'_>, base_url: &str) -> Result<(Detected, Recorded)> {
    let base_url = normalize_base_url(base_url)?;
    let detected = version::detect(ctx, &base_url, true)?;
    let recorded = catalog::record(ctx.store, &detected, ctx.host.now_ms())?;
    Ok((detected, recorded))
}

/// Syncs the environment at `base_url`.
pub fn sync(ctx: &Ctx<'_>, base_url: &str, options: &crate::sync::SyncOptions) -> Result<crate::sync::SyncReport> {
    crate::sync::sync(ctx, base_url, options)
}

/// Recorded syncs, newest first; for an environment the cache does not know, an error.
pub fn history(ctx: &Ctx<'_>, base_url: Option<&str>, limit: u32) -> Result<Vec<crate::sync::history::SyncRun>> {
    let url = base_url.map(normalize_base_url).transpose()?;
    if let Some(url) = &url {
        let known = crate::sql::query_opt(
            ctx.store,
            "SELECT 1 FROM environments WHERE base_url = ?1 UNION ALL SELECT 1 FROM sync_runs WHERE base_url = ?1 LIMIT 1",
            &crate::params![url.as_str()],
            |r| r.int(0),
        )?;
        if known.is_none() {
            return Err(crate::Error::not_found(format!("{url} is not in the cache: it was never detected or synced")));
        }
    }
    crate::sync::history::list(ctx.store, url.as_deref(), limit)
}

/// Removes what nothing references, then, if asked, gives the space back.
pub fn gc(ctx: &Ctx<'_>, keep_days: u32, vacuum: bool) -> Result<crate::gc::GcReport> {
    let mut report = crate::gc::collect(ctx.store, keep_days, ctx.host.now_ms())?;
    if vacuum {
        report.bytes_freed = crate::gc::vacuum(ctx.store)?;
    }
    Ok(report)
}

/// Removes an environment and its recorded syncs.
pub fn forget(ctx: &Ctx<'_>, base_url: &str) -> Result<crate::gc::Forgotten> {
    crate::gc::forget(ctx.store, &normalize_base_url(base_url)?)
}

// ---- reads ----

use crate::metadata::{DataEntity, Enumeration, Kind, PublicEntity};
use crate::read::environment::{self, Scope};
use crate::read::labels::{self as label_texts, LabelText};
use crate::read::{entities, suggest};
use std::collections::BTreeMap;

/// Which languages to resolve labels in, when asked to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadOptions {
    pub env: Option<String>,
    /// The language, then fallbacks.
    pub languages: Option<Vec<String>>,
}

/// Label texts resolved for a result: label id to text (absent when unknown).
pub type Texts = BTreeMap<String, String>;

fn texts(ctx: &Ctx<'_>, scope: &Scope, options: &ReadOptions, ids: &[&str]) -> Result<Texts> {
    let Some(languages) = &options.languages else { return Ok(Texts::new()) };
    Ok(label_texts::resolve(ctx.store, scope, ids, languages)?
        .into_iter()
        .filter_map(|(id, t)| t.text().map(|text| (id, text.to_owned())))
        .collect())
}

pub struct EntityLookup {
    pub env: String,
    pub data_entity: Option<DataEntity>,
    pub public_entity: Option<PublicEntity>,
    pub texts: Texts,
    pub suggestions: Vec<String>,
}

pub fn entity(ctx: &Ctx<'_>, name: &str, options: &ReadOptions) -> Result<EntityLookup> {
    let scope = environment::resolve(ctx.store, options.env.as_deref())?;
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
    let mut ids: Vec<&str> = Vec::new();
    use crate::metadata::LabelIds;
    if let Some(d) = &data {
        d.label_ids(&mut ids);
    }
    if let Some(p) = &public {
        p.label_ids(&mut ids);
    }
    let texts = texts(ctx, &scope, options, &ids)?;
    Ok(EntityLookup { env: scope.base_url, data_entity: data, public_entity: public, texts, suggestions })
}

pub struct EnumerationLookup {
    pub env: String,
    pub enumeration: Option<Enumeration>,
    pub texts: Texts,
    pub suggestions: Vec<String>,
}

pub fn enumeration(ctx: &Ctx<'_>, name: &str, options: &ReadOptions) -> Result<EnumerationLookup> {
    let scope = environment::resolve(ctx.store, options.env.as_deref())?;
    let found = match entities::find(ctx.store, &scope, Kind::Enumeration, name)? {
        Some(id) => entities::enumeration(ctx.store, id)?,
        None => None,
    };
    let suggestions = match &found {
        Some(_) => vec![],
        None => suggest::closest(name, entities::names(ctx.store, &scope, &[Kind::Enumeration])?.iter().map(String::as_str), 5),
    };
    let mut ids = Vec::new();
    if let Some(e) = &found {
        use crate::metadata::LabelIds;
        e.label_ids(&mut ids);
    }
    let texts = texts(ctx, &scope, options, &ids)?;
    Ok(EnumerationLookup { env: scope.base_url, enumeration: found, texts, suggestions })
}

pub struct ActionLookup {
    pub env: String,
    /// (entity, action)
    pub actions: Vec<(String, crate::metadata::Action)>,
    pub suggestions: Vec<String>,
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
    let scope = environment::resolve(ctx.store, options.env.as_deref())?;
    let owner = match entity {
        Some(e) => Some(public_entity_name(ctx, &scope, e)?.ok_or_else(|| {
            let names = entities::names(ctx.store, &scope, &[Kind::PublicEntity, Kind::DataEntity]).unwrap_or_default();
            let close = suggest::closest(e, names.iter().map(String::as_str), 5);
            let hint = if close.is_empty() { String::new() } else { format!("; did you mean: {}", close.join(", ")) };
            crate::Error::not_found(format!("no entity named {e:?} in {}{hint}", scope.base_url))
        })?),
        None => None,
    };
    let mut found = entities::actions_named(ctx.store, &scope, name)?;
    if let Some(owner) = &owner {
        found.retain(|(o, _)| o == owner);
    }
    let suggestions = if found.is_empty() {
        let pool = match &owner {
            Some(o) => match entities::find(ctx.store, &scope, Kind::PublicEntity, o)? {
                Some(id) => entities::actions_of(ctx.store, id)?.into_iter().map(|a| a.name).collect(),
                None => vec![],
            },
            None => entities::action_names(ctx.store, &scope)?,
        };
        suggest::closest(name, pool.iter().map(String::as_str), 5)
    } else {
        vec![]
    };
    Ok(ActionLookup { env: scope.base_url, actions: found, suggestions })
}

pub struct LabelLookup {
    pub env: String,
    pub id: String,
    pub text: LabelText,
}

pub fn label(ctx: &Ctx<'_>, id: &str, language: &str, fallback: &[String], env: Option<&str>) -> Result<LabelLookup> {
    let scope = environment::resolve(ctx.store, env)?;
    let order = label_texts::language_order(language, fallback);
    let mut resolved = label_texts::resolve(ctx.store, &scope, &[id], &order)?;
    let text = resolved.remove(id).ok_or_else(|| crate::Error::internal("label resolution lost the id"))?;
    Ok(LabelLookup { env: scope.base_url, id: id.to_owned(), text })
}

pub struct SearchOutcome {
    pub env: String,
    pub results: crate::search::query::Results,
    pub texts: Texts,
}

pub fn search(ctx: &Ctx<'_>, mut query: crate::search::query::Query, options: &ReadOptions) -> Result<SearchOutcome> {
    let scope = environment::resolve(ctx.store, options.env.as_deref())?;
    if let Some(e) = query.filters.entity.clone() {
        query.filters.entity = Some(
            public_entity_name(ctx, &scope, &e)?
                .ok_or_else(|| crate::Error::not_found(format!("no entity named {e:?} in {}", scope.base_url)))?,
        );
    }
    let results = crate::search::query::run(ctx.store, &scope, &query)?;
    let ids: Vec<&str> = results.hits.iter().filter_map(|h| h.label_id.as_deref()).collect();
    let texts = texts(ctx, &scope, options, &ids)?;
    Ok(SearchOutcome { env: scope.base_url, results, texts })
}

pub fn stats(ctx: &Ctx<'_>, env: Option<&str>) -> Result<crate::read::stats::Stats> {
    crate::read::stats::collect(ctx.store, env)
}
