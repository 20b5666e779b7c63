//! The catalog of environments and versions: which environments are known, which version each runs,
//! and which environments share a version.

use crate::error::{Error, Result};
use crate::modules::Module;
use crate::ports::{Store, TxMode, Value};
use crate::sql::{exec, in_transaction, query_map, query_opt};
use crate::version::Detected;
use crate::{params, row};

/// What recording a detection changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub version_id: i64,
    pub environment_id: i64,
    pub new_version: bool,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// Other environments currently on this version, sorted.
    pub shared_with: Vec<String>,
}

/// Records that `detected.base_url` runs `detected`'s version, now. One transaction.
pub fn record(store: &dyn Store, detected: &Detected, now_ms: i64) -> Result<Recorded> {
    in_transaction(store, TxMode::Immediate, || {
        let existing =
            query_opt(store, "SELECT id, first_seen_ms FROM versions WHERE modules_hash = ?1", &params![&detected.modules_hash], |r| {
                Ok((r.int(0)?, r.int(1)?))
            })?;
        let (version_id, first_seen_ms, new_version) = match existing {
            Some((id, first)) => {
                exec(
                    store,
                    "UPDATE versions SET last_seen_ms = ?2,
                        application_version = COALESCE(?3, application_version),
                        platform_version = COALESCE(?4, platform_version)
                     WHERE id = ?1",
                    &params![id, now_ms, detected.application_version.as_deref(), detected.platform_version.as_deref()],
                )?;
                (id, first, false)
            }
            None => (insert_version(store, detected, now_ms)?, now_ms, true),
        };
        let environment_id = query_opt(
            store,
            "INSERT INTO environments (base_url, version_id, first_seen_ms, last_seen_ms) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (base_url) DO UPDATE SET version_id = excluded.version_id, last_seen_ms = excluded.last_seen_ms
             RETURNING id",
            &params![&detected.base_url, version_id, now_ms],
            |r| r.int(0),
        )?
        .ok_or_else(|| crate::Error::internal("environment upsert returned no id"))?;
        exec(
            store,
            "INSERT INTO environment_versions (environment_id, version_id, first_seen_ms, last_seen_ms) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (environment_id, version_id) DO UPDATE SET last_seen_ms = excluded.last_seen_ms",
            &params![environment_id, version_id, now_ms],
        )?;
        let shared_with = query_map(
            store,
            "SELECT base_url FROM environments WHERE version_id = ?1 AND id <> ?2 ORDER BY base_url",
            &params![version_id, environment_id],
            |r| r.text(0),
        )?;
        Ok(Recorded { version_id, environment_id, new_version, first_seen_ms, last_seen_ms: now_ms, shared_with })
    })
}

fn insert_version(store: &dyn Store, d: &Detected, now_ms: i64) -> Result<i64> {
    let id = query_opt(
        store,
        "INSERT INTO versions (modules_hash, module_count, application_version, platform_version, fallback, first_seen_ms, last_seen_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) RETURNING id",
        &params![
            &d.modules_hash,
            d.modules.modules.len(),
            d.application_version.as_deref(),
            d.platform_version.as_deref(),
            d.fallback,
            now_ms
        ],
        |r| r.int(0),
    )?
    .ok_or_else(|| crate::Error::internal("version insert returned no id"))?;
    let rows: Vec<Vec<Value>> = d
        .modules
        .modules
        .iter()
        .enumerate()
        .map(|(i, m)| row![id, i, &m.module_id, &m.name, &m.version, &m.publisher, &m.display_name])
        .collect();
    crate::sql::execute_all(
        store,
        "INSERT INTO version_modules (version_id, position, module_id, name, version, publisher, display_name) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        rows,
    )?;
    let rows: Vec<Vec<Value>> = d.modules.unparsed.iter().map(|u| row![id, u.line, &u.text, &u.reason]).collect();
    crate::sql::execute_all(store, "INSERT INTO version_unparsed_lines (version_id, line, text, reason) VALUES (?1, ?2, ?3, ?4)", rows)?;
    Ok(id)
}

/// The modules of a stored version, in module id order.
pub fn version_modules(store: &dyn Store, version_id: i64) -> Result<Vec<Module>> {
    query_map(
        store,
        "SELECT module_id, name, version, publisher, display_name FROM version_modules WHERE version_id = ?1 ORDER BY position",
        &params![version_id],
        |r| Ok(Module { module_id: r.text(0)?, name: r.text(1)?, version: r.text(2)?, publisher: r.text(3)?, display_name: r.text(4)? }),
    )
}

pub use crate::wit::types::{EnvironmentInfo, VersionDetails, VersionInfo};

/// The shortest modules-hash prefix that names a version.
const MIN_HASH_PREFIX: usize = 8;

/// A cached version, chosen as `get-version` documents: by modules hash (or an unambiguous prefix),
/// else by the version an environment was last seen running, else that of the most recent sync.
pub fn version_details(store: &dyn Store, modules_hash: Option<&str>, base_url: Option<&str>) -> Result<VersionDetails> {
    let version_id = match (modules_hash, base_url) {
        (Some(hash), _) => version_by_hash(store, hash)?,
        (None, Some(url)) => {
            let url = crate::url::normalize_base_url(url)?;
            query_opt(store, "SELECT version_id FROM environments WHERE base_url = ?1", &params![&url], |r| r.opt_int(0))?
                .flatten()
                .ok_or_else(|| {
                    Error::not_found(format!("{url} is not in the cache; run `d365meta version {url}` or `d365meta sync {url}`"))
                })?
        }
        (None, None) => query_opt(
            store,
            "SELECT version_id FROM environments WHERE version_id IS NOT NULL
             ORDER BY snapshot_id IS NOT NULL DESC, synced_ms DESC, last_seen_ms DESC, id DESC LIMIT 1",
            &[],
            |r| r.int(0),
        )?
        .ok_or_else(|| Error::not_found("no version is cached yet; run `d365meta version <base-url>` or `d365meta sync <base-url>`"))?,
    };
    let mut details = query_opt(
        store,
        "SELECT modules_hash, application_version, platform_version, fallback, first_seen_ms, last_seen_ms FROM versions WHERE id = ?1",
        &params![version_id],
        |r| {
            Ok(VersionDetails {
                modules_hash: r.text(0)?,
                modules: Vec::new(),
                unparsed: Vec::new(),
                application_version: r.opt_text(1)?,
                platform_version: r.opt_text(2)?,
                fallback: r.bool(3)?,
                first_seen_ms: r.int(4)?,
                last_seen_ms: r.int(5)?,
                environments: Vec::new(),
            })
        },
    )?
    .ok_or_else(|| Error::internal(format!("version {version_id} is referenced but not stored")))?;
    details.modules = version_modules(store, version_id)?;
    details.unparsed = query_map(
        store,
        "SELECT line, text, reason FROM version_unparsed_lines WHERE version_id = ?1 ORDER BY line",
        &params![version_id],
        |r| Ok(crate::modules::UnparsedLine { line: r.int(0)? as u32, text: r.text(1)?, reason: r.text(2)? }),
    )?;
    details.environments =
        query_map(store, "SELECT base_url FROM environments WHERE version_id = ?1 ORDER BY base_url", &params![version_id], |r| r.text(0))?;
    Ok(details)
}

pub fn version_by_hash(store: &dyn Store, hash: &str) -> Result<i64> {
    let prefix = hash.trim().to_ascii_lowercase();
    if prefix.len() < MIN_HASH_PREFIX || prefix.len() > 64 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::invalid_input(format!(
            "modules hash {:?}: expected {MIN_HASH_PREFIX} to 64 hexadecimal characters",
            crate::odata::shorten(hash)
        )));
    }
    let found = query_map(
        store,
        "SELECT id, modules_hash FROM versions WHERE substr(modules_hash, 1, length(?1)) = ?1 ORDER BY modules_hash LIMIT 3",
        &params![&prefix],
        |r| Ok((r.int(0)?, r.text(1)?)),
    )?;
    match found.as_slice() {
        [(id, _)] => Ok(*id),
        [] => Err(Error::not_found(format!("no cached version has a modules hash beginning with {prefix}"))),
        several => Err(Error::invalid_input(format!(
            "modules hash {prefix} is ambiguous: it begins {}; give more characters",
            several.iter().map(|(_, h)| h.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

pub fn list_environments(store: &dyn Store) -> Result<Vec<EnvironmentInfo>> {
    query_map(
        store,
        "SELECT e.base_url, v.modules_hash, v.application_version, v.platform_version, COALESCE(v.fallback, 0), e.first_seen_ms, e.last_seen_ms
         FROM environments e LEFT JOIN versions v ON v.id = e.version_id
         ORDER BY e.base_url",
        &[],
        |r| {
            Ok(EnvironmentInfo {
                base_url: r.text(0)?,
                modules_hash: r.opt_text(1)?,
                application_version: r.opt_text(2)?,
                platform_version: r.opt_text(3)?,
                fallback: r.bool(4)?,
                first_seen_ms: r.int(5)?,
                last_seen_ms: r.int(6)?,
            })
        },
    )
}

pub fn list_versions(store: &dyn Store) -> Result<Vec<VersionInfo>> {
    let mut versions = query_map(
        store,
        "SELECT id, modules_hash, module_count, application_version, platform_version, fallback, first_seen_ms, last_seen_ms
         FROM versions ORDER BY last_seen_ms DESC, id DESC",
        &[],
        |r| {
            Ok((
                r.int(0)?,
                VersionInfo {
                    modules_hash: r.text(1)?,
                    module_count: r.int(2)? as u32,
                    application_version: r.opt_text(3)?,
                    platform_version: r.opt_text(4)?,
                    fallback: r.bool(5)?,
                    first_seen_ms: r.int(6)?,
                    last_seen_ms: r.int(7)?,
                    environments: Vec::new(),
                },
            ))
        },
    )?;
    let pointers =
        query_map(store, "SELECT version_id, base_url FROM environments WHERE version_id IS NOT NULL ORDER BY base_url", &[], |r| {
            Ok((r.int(0)?, r.text(1)?))
        })?;
    for (version_id, url) in pointers {
        if let Some((_, v)) = versions.iter_mut().find(|(id, _)| *id == version_id) {
            v.environments.push(url);
        }
    }
    Ok(versions.into_iter().map(|(_, v)| v).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::parse_lines;
    use crate::testing::World;

    fn detected(url: &str, modules: &[(&str, &str)]) -> Detected {
        let lines: Vec<String> =
            modules.iter().map(|(id, v)| format!("Name: {id} | Version: {v} | Module: {id} | Publisher: P | DisplayName: {id}")).collect();
        let list = parse_lines(&lines);
        Detected {
            base_url: url.to_owned(),
            modules_hash: crate::modules::modules_hash(&list),
            modules: list,
            application_version: Some("10.0.1".into()),
            platform_version: None,
            fallback: false,
            fallback_reason: None,
            warnings: vec![],
            requests: 1,
            bytes: 0,
        }
    }

    #[test]
    fn environments_with_equal_modules_share_one_version() {
        let w = World::new();
        let a = record(&w.store, &detected("http://a", &[("X", "1"), ("Y", "2")]), 10).unwrap();
        assert!(a.new_version);
        assert!(a.shared_with.is_empty());
        let b = record(&w.store, &detected("http://b", &[("Y", "2"), ("X", "1")]), 20).unwrap();
        assert!(!b.new_version);
        assert_eq!(b.version_id, a.version_id);
        assert_eq!(b.shared_with, ["http://a"]);
        assert_eq!((b.first_seen_ms, b.last_seen_ms), (10, 20));
        let c = record(&w.store, &detected("http://c", &[("X", "1"), ("Y", "3")]), 30).unwrap();
        assert!(c.new_version);
        assert_ne!(c.version_id, a.version_id);

        let versions = list_versions(&w.store).unwrap();
        assert_eq!(versions.len(), 2);
        assert_eq!(versions[0].environments, ["http://c"]);
        assert_eq!(versions[1].environments, ["http://a", "http://b"]);
        assert_eq!(versions[1].module_count, 2);
        assert_eq!(version_modules(&w.store, a.version_id).unwrap().iter().map(|m| m.module_id.as_str()).collect::<Vec<_>>(), ["X", "Y"]);
    }

    #[test]
    fn a_version_is_found_by_hash_prefix_by_environment_or_as_the_latest() {
        let w = World::new();
        let a = detected("http://a", &[("X", "1"), ("Y", "2")]);
        record(&w.store, &a, 10).unwrap();
        record(&w.store, &detected("http://b", &[("X", "1"), ("Y", "2")]), 20).unwrap();
        let c = detected("http://c", &[("X", "2")]);
        record(&w.store, &c, 30).unwrap();

        let by_hash = version_details(&w.store, Some(&a.modules_hash[..8].to_uppercase()), None).unwrap();
        assert_eq!(by_hash.modules_hash, a.modules_hash);
        assert_eq!(by_hash.modules.iter().map(|m| m.module_id.as_str()).collect::<Vec<_>>(), ["X", "Y"]);
        assert_eq!(by_hash.environments, ["http://a", "http://b"]);
        assert_eq!((by_hash.first_seen_ms, by_hash.last_seen_ms), (10, 20));
        assert_eq!(version_details(&w.store, None, Some("HTTP://C/")).unwrap().modules_hash, c.modules_hash);
        // Nothing synced: the most recently seen environment's version.
        assert_eq!(version_details(&w.store, None, None).unwrap().modules_hash, c.modules_hash);

        let kind = |r: Result<VersionDetails>| r.unwrap_err().kind;
        assert_eq!(kind(version_details(&w.store, Some("abc"), None)), crate::ErrorKind::InvalidInput);
        assert_eq!(kind(version_details(&w.store, Some("not-hex!"), None)), crate::ErrorKind::InvalidInput);
        assert_eq!(kind(version_details(&w.store, Some("00000000"), None)), crate::ErrorKind::NotFound);
        assert_eq!(kind(version_details(&w.store, None, Some("http://unknown"))), crate::ErrorKind::NotFound);
    }

    #[test]
    fn an_environment_that_upgrades_moves_to_the_new_version_and_keeps_its_history() {
        let w = World::new();
        let old = record(&w.store, &detected("http://a", &[("X", "1")]), 10).unwrap();
        let new = record(&w.store, &detected("http://a", &[("X", "2")]), 20).unwrap();
        assert_eq!(old.environment_id, new.environment_id);
        let envs = list_environments(&w.store).unwrap();
        assert_eq!(envs.len(), 1);
        assert_eq!(envs[0].first_seen_ms, 10);
        assert_eq!(envs[0].modules_hash.as_deref(), Some(detected("", &[("X", "2")]).modules_hash.as_str()));
        let history = query_map(&w.store, "SELECT version_id FROM environment_versions ORDER BY first_seen_ms", &[], |r| r.int(0)).unwrap();
        assert_eq!(history, [old.version_id, new.version_id]);
    }
}
