//! Statistics: what the cache holds, per environment and overall, and how much is shared.

use crate::error::Result;
use crate::params;
use crate::ports::Store;
use crate::sql::{query_map, query_opt};
use crate::sync::history;
use crate::sync::snapshot;

pub use crate::wit::types::{EnvironmentStats, KindStats, LanguageCoverage, Stats, VersionStats};

pub fn collect(store: &dyn Store, only: Option<&str>) -> Result<Stats> {
    let only = only.map(crate::url::normalize_base_url).transpose()?;
    let rows = query_map(
        store,
        "SELECT e.base_url, dv.modules_hash, sv.modules_hash, e.synced_ms, e.snapshot_id
         FROM environments e LEFT JOIN versions dv ON dv.id = e.version_id
         LEFT JOIN snapshots s ON s.id = e.snapshot_id LEFT JOIN versions sv ON sv.id = s.version_id
         WHERE ?1 IS NULL OR e.base_url = ?1 ORDER BY e.base_url",
        &params![only.as_deref()],
        |r| Ok((r.text(0)?, r.opt_text(1)?, r.opt_text(2)?, r.opt_int(3)?, r.opt_int(4)?)),
    )?;
    if let (Some(url), true) = (&only, rows.is_empty()) {
        return Err(crate::Error::not_found(format!("{url} is not in the cache")));
    }
    let mut environments = Vec::new();
    for (base_url, detected_hash, synced_hash, synced_ms, snapshot_id) in rows {
        let (counts, coverage) = match snapshot_id {
            Some(id) => (Some(snapshot::stored_counts(store, id)?), coverage(store, id)?),
            None => (None, vec![]),
        };
        let last_sync = history::last(store, Some(&base_url))?;
        environments.push(EnvironmentStats {
            base_url,
            detected_hash,
            synced_hash,
            synced_ms,
            counts,
            label_coverage: coverage,
            last_sync,
        });
    }
    let versions = query_map(
        store,
        "SELECT v.modules_hash, v.module_count,
                (SELECT group_concat(base_url, ' ') FROM (SELECT e.base_url FROM environments e JOIN snapshots s ON s.id = e.snapshot_id
                  WHERE s.version_id = v.id ORDER BY e.base_url)),
                (SELECT COUNT(*) FROM snapshots s WHERE s.version_id = v.id AND s.state = 'complete')
         FROM versions v ORDER BY v.last_seen_ms DESC, v.id DESC",
        &[],
        |r| {
            Ok(VersionStats {
                modules_hash: r.text(0)?,
                module_count: r.int(1)? as u64,
                environments: r.opt_text(2)?.map(|s| s.split(' ').map(str::to_owned).collect()).unwrap_or_default(),
                complete_snapshots: r.int(3)? as u64,
            })
        },
    )?;
    let objects = query_map(
        store,
        "SELECT o.kind, COUNT(*),
                (SELECT COUNT(*) FROM snapshot_objects so WHERE so.kind = o.kind),
                (SELECT COUNT(*) FROM (SELECT so.object_id FROM snapshot_objects so JOIN snapshots s ON s.id = so.snapshot_id
                  WHERE so.kind = o.kind AND s.state = 'complete' GROUP BY so.object_id HAVING COUNT(DISTINCT s.version_id) > 1))
         FROM objects o GROUP BY o.kind ORDER BY o.kind",
        &[],
        |r| {
            let kind = r.text(0)?;
            Ok(KindStats {
                kind: crate::metadata::ObjectKind::parse(&kind)
                    .ok_or_else(|| crate::Error::internal(format!("unknown object kind {kind:?}")))?,
                stored: r.int(1)? as u64,
                references: r.int(2)? as u64,
                shared_between_versions: r.int(3)? as u64,
            })
        },
    )?;
    let (label_texts, label_references) =
        query_opt(store, "SELECT (SELECT COUNT(*) FROM labels), (SELECT COUNT(*) FROM snapshot_labels)", &[], |r| {
            Ok((r.int(0)? as u64, r.int(1)? as u64))
        })?
        .unwrap_or_default();
    let pragma = |name: &str| -> Result<u64> { Ok(query_opt(store, &format!("PRAGMA {name}"), &[], |r| r.int(0))?.unwrap_or(0) as u64) };
    let page_size = pragma("page_size")?;
    Ok(Stats {
        environments,
        versions,
        objects,
        label_texts,
        label_references,
        database_bytes: pragma("page_count")? * page_size,
        free_bytes: pragma("freelist_count")? * page_size,
        last_sync: history::last(store, None)?,
    })
}

/// Label texts per language in a snapshot.
pub fn coverage(store: &dyn Store, snapshot_id: i64) -> Result<Vec<LanguageCoverage>> {
    query_map(
        store,
        "SELECT l.language, SUM(l.missing = 0), SUM(l.missing = 1) FROM snapshot_labels sl JOIN labels l ON l.id = sl.label_row
         WHERE sl.snapshot_id = ?1 GROUP BY l.language ORDER BY l.language",
        &params![snapshot_id],
        |r| Ok(LanguageCoverage { language: r.text(0)?, texts: r.int(1)? as u64, missing: r.int(2)? as u64 }),
    )
}
