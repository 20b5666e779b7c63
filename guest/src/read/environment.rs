//! Which environment (and so which snapshot) a read is about.

use crate::error::{Error, Result};
use crate::params;
use crate::ports::Store;
use crate::sql::{query_map, query_opt};
use crate::url::normalize_base_url;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub base_url: String,
    pub snapshot_id: i64,
    pub languages: Vec<String>,
}

/// The environment named, or else the only synced one, or else the most recently synced one.
pub fn resolve(store: &dyn Store, base_url: Option<&str>) -> Result<Scope> {
    let read =
        |r: crate::sql::Row<'_>| -> Result<(String, Option<i64>, Option<String>)> { Ok((r.text(0)?, r.opt_int(1)?, r.opt_text(2)?)) };
    let sql = "SELECT e.base_url, e.snapshot_id, s.languages FROM environments e LEFT JOIN snapshots s ON s.id = e.snapshot_id";
    let (url, snapshot, languages) = match base_url {
        Some(url) => {
            let url = normalize_base_url(url)?;
            match query_opt(store, &format!("{sql} WHERE e.base_url = ?1"), &params![&url], read)? {
                Some(found) => found,
                None => {
                    let known =
                        query_map(store, "SELECT base_url FROM environments WHERE snapshot_id IS NOT NULL ORDER BY base_url", &[], |r| {
                            r.text(0)
                        })?;
                    let hint = if known.is_empty() {
                        "nothing is synced yet".to_owned()
                    } else {
                        format!("synced environments: {}", known.join(", "))
                    };
                    return Err(Error::not_found(format!("{url} is not in the cache; run `d365meta sync {url}` ({hint})")));
                }
            }
        }
        None => {
            query_opt(store, &format!("{sql} WHERE e.snapshot_id IS NOT NULL ORDER BY e.synced_ms DESC, e.id DESC LIMIT 1"), &[], read)?
                .ok_or_else(|| Error::not_found("nothing is synced yet; run `d365meta sync <base-url>` first"))?
        }
    };
    let snapshot_id =
        snapshot.ok_or_else(|| Error::not_found(format!("{url} has been detected but not synced; run `d365meta sync {url}`")))?;
    let languages = crate::sync::coverage::Coverage::parse_languages(&languages.unwrap_or_default()).into_iter().collect();
    Ok(Scope { base_url: url, snapshot_id, languages })
}
