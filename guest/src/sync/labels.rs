//! The labels phase of a snapshot, one language at a time: labels carried over from another
//! snapshot where it has them, the rest fetched. Fetched labels are committed batch by batch, so an
//! interrupted phase resumes where it stopped.

use super::fetch::{self, LabelAnswer, Meter};
use super::snapshot::{REFERENCED_LABEL_IDS, mark_phase, phase_done};
use crate::error::{Error, Result};
use crate::ports::{Ctx, Progress, TxMode, Value};
use crate::sql::{exec, in_transaction, query_map};
use crate::{params, row};

/// Labels asked for in one call to the host's batch import.
pub const BATCH: usize = 256;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LabelCounts {
    pub fetched: u64,
    pub reused: u64,
    pub missing: u64,
}

pub fn phase_name(language: &str) -> String {
    format!("labels:{language}")
}

const PRESENT_IN_SNAPSHOT: &str =
    "SELECT l.label_id FROM snapshot_labels sl JOIN labels l ON l.id = sl.label_row WHERE sl.snapshot_id = ?1 AND l.language = ?2";

/// Fills the labels of `language` for a building snapshot.
pub fn run(
    ctx: &Ctx<'_>,
    meter: &mut Meter,
    base_url: &str,
    snapshot_id: i64,
    language: &str,
    carry_from: Option<i64>,
) -> Result<LabelCounts> {
    let phase = phase_name(language);
    if phase_done(ctx.store, snapshot_id, &phase)? {
        return Ok(LabelCounts::default());
    }
    let mut counts = LabelCounts::default();
    if let Some(from) = carry_from {
        counts.reused = in_transaction(ctx.store, TxMode::Immediate, || {
            exec(
                ctx.store,
                &format!(
                    "INSERT OR IGNORE INTO snapshot_labels (snapshot_id, label_row)
                     SELECT ?1, l.id FROM snapshot_labels sl JOIN labels l ON l.id = sl.label_row
                     WHERE sl.snapshot_id = ?3 AND l.language = ?2
                       AND l.label_id IN ({REFERENCED_LABEL_IDS})
                       AND l.label_id NOT IN ({PRESENT_IN_SNAPSHOT})"
                ),
                &params![snapshot_id, language, from],
            )
        })?;
    }
    let wanted = query_map(
        ctx.store,
        &format!("SELECT label_id FROM ({REFERENCED_LABEL_IDS}) WHERE label_id NOT IN ({PRESENT_IN_SNAPSHOT}) ORDER BY label_id"),
        &params![snapshot_id, language],
        |r| r.text(0),
    )?;
    let total = wanted.len() as u64;
    let mut failures: Vec<Error> = Vec::new();
    let mut done = 0u64;
    for batch in wanted.chunks(BATCH) {
        ctx.check_cancelled()?;
        let answers = fetch::labels(ctx, meter, base_url, language, batch);
        let mut rows: Vec<Vec<Value>> = Vec::with_capacity(batch.len());
        for (id, answer) in batch.iter().zip(answers) {
            match answer {
                LabelAnswer::Text(text) => {
                    counts.fetched += 1;
                    rows.push(row![id, language, text, false]);
                }
                LabelAnswer::Missing => {
                    counts.missing += 1;
                    rows.push(row![id, language, "", true]);
                }
                LabelAnswer::Failed(e) if e.kind == crate::ErrorKind::Cancelled => return Err(e),
                LabelAnswer::Failed(e) => failures.push(e),
            }
        }
        in_transaction(ctx.store, TxMode::Immediate, || {
            ctx.store.execute_many(
                "INSERT INTO labels (label_id, language, text, missing) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (label_id, language, missing, text) DO NOTHING",
                &rows,
            )?;
            let links: Vec<Vec<Value>> = rows.iter().map(|r| [vec![Value::Integer(snapshot_id)], r.clone()].concat()).collect();
            ctx.store.execute_many(
                "INSERT OR IGNORE INTO snapshot_labels (snapshot_id, label_row)
                 SELECT ?1, id FROM labels WHERE label_id = ?2 AND language = ?3 AND text = ?4 AND missing = ?5",
                &links,
            )?;
            Ok(())
        })?;
        done += batch.len() as u64;
        ctx.host.progress(&Progress { phase: phase.clone(), done, total: Some(total), bytes: Some(meter.bytes) });
    }
    if let Some(first) = failures.first() {
        return Err(Error::new(
            first.kind,
            format!(
                "{} of {total} labels in {language} could not be fetched (the others are kept; the next sync fetches only these): {}",
                failures.len(),
                first.message
            ),
        ));
    }
    in_transaction(ctx.store, TxMode::Immediate, || mark_phase(ctx.store, snapshot_id, &phase, total, ctx.host.now_ms()))?;
    Ok(counts)
}
