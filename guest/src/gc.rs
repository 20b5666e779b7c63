//! Collecting what nothing references any more.
//!
//! Kept: every version an environment runs or reads, and versions seen within `keep_days`; every
//! snapshot an environment reads, and the latest complete snapshot of every kept version (so it can
//! still be linked); every object and label a kept snapshot references. Building snapshots of kept
//! versions stay too: they hold an interrupted sync's progress. Everything else goes, in one
//! transaction, and the counts are exactly the rows removed.

use crate::error::Result;
use crate::params;
use crate::ports::{Store, TxMode};
use crate::sql::{exec, in_transaction, query_opt};

pub use crate::wit::types::{ForgetReport, GcReport};

const DOOMED_VERSIONS: &str = "SELECT id FROM versions
    WHERE last_seen_ms < ?1
      AND id NOT IN (SELECT version_id FROM environments WHERE version_id IS NOT NULL)
      AND id NOT IN (SELECT s.version_id FROM environments e JOIN snapshots s ON s.id = e.snapshot_id)";

pub fn collect(store: &dyn Store, keep_days: u32, now_ms: i64) -> Result<GcReport> {
    let cutoff = now_ms - i64::from(keep_days) * 86_400_000;
    in_transaction(store, TxMode::Immediate, || {
        let count = |sql: &str| -> Result<u64> { Ok(query_opt(store, sql, &params![cutoff], |r| r.int(0))?.unwrap_or(0) as u64) };
        let cascaded = count(&format!("SELECT COUNT(*) FROM snapshots WHERE version_id IN ({DOOMED_VERSIONS})"))?;
        let versions = exec(store, &format!("DELETE FROM versions WHERE id IN ({DOOMED_VERSIONS})"), &params![cutoff])?;
        let superseded = exec(
            store,
            "DELETE FROM snapshots
             WHERE state = 'complete'
               AND id NOT IN (SELECT snapshot_id FROM environments WHERE snapshot_id IS NOT NULL)
               AND id <> (SELECT latest.id FROM snapshots latest
                          WHERE latest.version_id = snapshots.version_id AND latest.state = 'complete'
                          ORDER BY latest.completed_ms DESC, latest.id DESC LIMIT 1)",
            &[],
        )?;
        let objects = exec(store, "DELETE FROM objects WHERE id NOT IN (SELECT object_id FROM snapshot_objects)", &[])?;
        let labels = exec(store, "DELETE FROM labels WHERE id NOT IN (SELECT label_row FROM snapshot_labels)", &[])?;
        Ok(GcReport { versions, snapshots: cascaded + superseded, objects, labels, bytes_freed: 0 })
    })
}

/// Rewrites the database so that free pages go back to the file system; returns the bytes freed.
/// It needs no transaction of its own (SQLite runs VACUUM as one) and waits for readers to finish.
pub fn vacuum(store: &dyn Store) -> Result<u64> {
    let before = file_bytes(store)?;
    exec(store, "VACUUM", &[])?;
    Ok(before.saturating_sub(file_bytes(store)?))
}

fn file_bytes(store: &dyn Store) -> Result<u64> {
    let pragma = |name: &str| -> Result<u64> { Ok(query_opt(store, &format!("PRAGMA {name}"), &[], |r| r.int(0))?.unwrap_or(0) as u64) };
    Ok(pragma("page_count")? * pragma("page_size")?)
}

/// Removes the environment at `base_url` (normalised) and its recorded syncs.
pub fn forget(store: &dyn Store, base_url: &str) -> Result<ForgetReport> {
    in_transaction(store, TxMode::Immediate, || {
        let snapshot = query_opt(store, "SELECT snapshot_id FROM environments WHERE base_url = ?1", &params![base_url], |r| r.opt_int(0))?;
        let runs = exec(store, "DELETE FROM sync_runs WHERE base_url = ?1", &params![base_url])?;
        let environments = exec(store, "DELETE FROM environments WHERE base_url = ?1", &params![base_url])?;
        if environments == 0 && runs == 0 {
            return Err(crate::Error::not_found(format!("{base_url} is not in the cache")));
        }
        let snapshot_unreferenced = match snapshot.flatten() {
            Some(id) => query_opt(store, "SELECT COUNT(*) FROM environments WHERE snapshot_id = ?1", &params![id], |r| r.int(0))?
                .is_some_and(|n| n == 0),
            None => false,
        };
        Ok(ForgetReport { base_url: base_url.to_owned(), runs, snapshot_unreferenced })
    })
}
