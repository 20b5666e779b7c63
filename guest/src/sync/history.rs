//! The record of every sync: when, what was planned and why, how it ended, and what it cost.

use super::coverage::Coverage;
use super::plan::{Planned, Strategy};
use crate::error::{Error, Result};
use crate::params;
use crate::ports::Store;
use crate::sql::{exec, query_map, query_opt};

pub use crate::wit::types::{Outcome, SyncRun};

impl Outcome {
    /// The name stored in the history.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
            Outcome::Interrupted => "interrupted",
            Outcome::Planned => "planned",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        [Outcome::Running, Outcome::Succeeded, Outcome::Failed, Outcome::Cancelled, Outcome::Interrupted, Outcome::Planned]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// How a run ended and what it cost, as the sync records it when done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    pub id: i64,
    pub finished_ms: i64,
    pub outcome: Outcome,
    pub error: Option<String>,
    pub requests: u64,
    pub bytes: u64,
    pub objects_fetched: u64,
    pub objects_written: u64,
    pub objects_reused: u64,
    pub labels_fetched: u64,
    pub labels_reused: u64,
    pub labels_missing: u64,
    pub snapshot_id: Option<i64>,
}

impl Finished {
    pub fn new(id: i64) -> Finished {
        Finished {
            id,
            finished_ms: 0,
            outcome: Outcome::Running,
            error: None,
            requests: 0,
            bytes: 0,
            objects_fetched: 0,
            objects_written: 0,
            objects_reused: 0,
            labels_fetched: 0,
            labels_reused: 0,
            labels_missing: 0,
            snapshot_id: None,
        }
    }
}

/// Records a sync as running. Runs of the same environment still marked running cannot be (the
/// caller holds the environment's lease), so they are recorded as interrupted.
pub fn start(store: &dyn Store, base_url: &str, requested: Strategy, languages: &str, now_ms: i64) -> Result<i64> {
    exec(
        store,
        "UPDATE sync_runs SET outcome = 'interrupted', finished_ms = COALESCE(finished_ms, ?2), error = COALESCE(error, ?3)
         WHERE base_url = ?1 AND outcome = 'running'",
        &params![base_url, now_ms, INTERRUPTED],
    )?;
    Ok(query_opt(
        store,
        "INSERT INTO sync_runs (base_url, requested_strategy, languages, started_ms, outcome) VALUES (?1, ?2, ?3, ?4, 'running') RETURNING id",
        &params![base_url, requested.as_str(), languages, now_ms],
        |r| r.int(0),
    )?
    .unwrap_or_default())
}

/// Records the plan: the version, the strategy and why, and the languages the environment will
/// cover (which may differ from those asked for: covered languages are kept, dropped ones go).
pub fn planned(store: &dyn Store, run: i64, modules_hash: &str, plan: Planned, reason: &str, languages: &str) -> Result<()> {
    exec(
        store,
        "UPDATE sync_runs SET modules_hash = ?2, strategy = ?3, reason = ?4, languages = ?5 WHERE id = ?1",
        &params![run, modules_hash, plan.as_str(), reason, languages],
    )?;
    Ok(())
}

/// The name of the lease a sync of `base_url` holds while it runs, so that no other starts.
pub fn sync_lease(base_url: &str) -> String {
    format!("sync:{base_url}")
}

/// The name of the second lease a sync holds while it runs: a reader that can take it knows the
/// process that recorded a run as running is gone. Readers never touch the first, so they cannot
/// make a sync believe another one runs.
pub fn alive_lease(base_url: &str) -> String {
    format!("alive:{base_url}")
}

/// A run recorded as running whose process is gone (its lease is free) was interrupted: reads
/// report it so without writing; the next sync of the environment records it.
fn settle_running(store: &dyn Store, mut run: SyncRun) -> SyncRun {
    if run.outcome == Outcome::Running && matches!(store.try_lock(&alive_lease(&run.base_url)), Ok(Some(_))) {
        run.outcome = Outcome::Interrupted;
        run.error.get_or_insert_with(|| INTERRUPTED.to_owned());
    }
    run
}

const INTERRUPTED: &str = "the process ended before the sync finished";

pub fn finish(store: &dyn Store, run: &Finished) -> Result<()> {
    exec(
        store,
        "UPDATE sync_runs SET finished_ms = ?2, outcome = ?3, error = ?4, requests = ?5, bytes = ?6,
            objects_fetched = ?7, objects_written = ?8, objects_reused = ?9, labels_fetched = ?10, labels_reused = ?11,
            labels_missing = ?12, snapshot_id = ?13
         WHERE id = ?1",
        &params![
            run.id,
            run.finished_ms,
            run.outcome.as_str(),
            run.error.as_deref(),
            run.requests as i64,
            run.bytes as i64,
            run.objects_fetched as i64,
            run.objects_written as i64,
            run.objects_reused as i64,
            run.labels_fetched as i64,
            run.labels_reused as i64,
            run.labels_missing as i64,
            run.snapshot_id
        ],
    )?;
    Ok(())
}

/// The run of `base_url` in progress, if any (for the message a second sync gets).
pub fn running(store: &dyn Store, base_url: &str) -> Result<Option<SyncRun>> {
    Ok(select(store, "outcome = 'running' AND base_url = ?1", &params![base_url, 1i64])?.into_iter().next())
}

/// Runs, newest first; a run whose process is gone shows as interrupted.
pub fn list(store: &dyn Store, base_url: Option<&str>, limit: u32) -> Result<Vec<SyncRun>> {
    let runs = select(store, "(?1 IS NULL OR base_url = ?1)", &params![base_url, limit])?;
    Ok(runs.into_iter().map(|r| settle_running(store, r)).collect())
}

/// The latest run that was not a dry run, of one environment or of all.
pub fn last(store: &dyn Store, base_url: Option<&str>) -> Result<Option<SyncRun>> {
    let runs = select(store, "(?1 IS NULL OR base_url = ?1) AND outcome <> 'planned'", &params![base_url, 1i64])?;
    Ok(runs.into_iter().next().map(|r| settle_running(store, r)))
}

/// Runs matching `filter` (over `?1`), newest first, at most `?2`.
fn select(store: &dyn Store, filter: &str, params: &[crate::ports::Value]) -> Result<Vec<SyncRun>> {
    query_map(
        store,
        &format!(
            "SELECT id, base_url, modules_hash, requested_strategy, strategy, reason, languages, started_ms, finished_ms, outcome, error,
                    requests, bytes, objects_fetched, objects_written, objects_reused, labels_fetched, labels_reused, labels_missing
             FROM sync_runs WHERE {filter} ORDER BY started_ms DESC, id DESC LIMIT ?2"
        ),
        params,
        |r| {
            let n = |i| r.int(i).map(|v| v as u64);
            let bad = |what: &str, value: String| Error::internal(format!("sync run {}: unknown {what} {value:?}", r.int(0).unwrap_or(0)));
            let requested = r.text(3)?;
            let outcome = r.text(9)?;
            Ok(SyncRun {
                id: r.int(0)?,
                base_url: r.text(1)?,
                modules_hash: r.opt_text(2)?,
                requested_strategy: Strategy::parse(&requested).ok_or_else(|| bad("strategy", requested.clone()))?,
                plan: r.opt_text(4)?.map(|p| Planned::parse(&p).ok_or_else(|| bad("plan", p.clone()))).transpose()?,
                reason: r.opt_text(5)?,
                languages: Coverage::parse_languages(&r.text(6)?).into_iter().collect(),
                started_ms: r.int(7)?,
                finished_ms: r.opt_int(8)?,
                outcome: Outcome::parse(&outcome).ok_or_else(|| bad("outcome", outcome.clone()))?,
                error: r.opt_text(10)?,
                requests: n(11)?,
                bytes: n(12)?,
                objects_fetched: n(13)?,
                objects_written: n(14)?,
                objects_reused: n(15)?,
                labels_fetched: n(16)?,
                labels_reused: n(17)?,
                labels_missing: n(18)?,
            })
        },
    )
}
