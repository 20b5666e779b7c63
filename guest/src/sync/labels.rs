//! The labels phase of a snapshot, one language at a time: labels carried over from another
//! snapshot where it has them, the rest fetched. The whole language is handed to the host at once
//! and its answers are taken as they arrive, so one slow or throttled label never holds up the
//! rest; they are committed in batches, so an interrupted phase resumes where it stopped.

use super::fetch::{self, LabelAnswer, Meter};
use super::snapshot::{REFERENCED_LABEL_IDS, mark_phase, phase_done};
use crate::error::{Error, Result};
use crate::ports::{Ctx, HttpRequest, Phase, Progress, TxMode, Value};
use crate::sql::{exec, in_transaction, query_map};
use crate::{params, row};

/// Answers taken from the host (and committed) at once, at most.
pub const BATCH: usize = 512;

/// How long the host gathers answers for one batch once the first has arrived: long enough that a
/// transaction carries hundreds of labels, short enough for smooth progress.
const LINGER_MS: u32 = 100;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LabelCounts {
    pub fetched: u64,
    pub reused: u64,
    pub missing: u64,
}

impl LabelCounts {
    /// A warning when the service had no text for any label asked for: the language code is
    /// usually one the environment does not have.
    pub fn warning(&self, language: &str) -> Option<String> {
        (self.fetched == 0 && self.reused == 0 && self.missing > 0).then(|| {
            format!(
                "the service has no text in {language} for any of the {} labels asked for; is {language} a language this environment has? \
                 (stop covering it with --drop-languages {language})",
                self.missing
            )
        })
    }
}

pub fn phase(language: &str) -> Phase {
    Phase::Labels(language.to_owned())
}

const PRESENT_IN_SNAPSHOT: &str =
    "SELECT l.label_id FROM snapshot_labels sl JOIN labels l ON l.id = sl.label_row WHERE sl.snapshot_id = ?1 AND l.language = ?2";

/// Fills the labels of `language` for a building snapshot.
pub fn run(ctx: &Ctx<'_>, meter: &mut Meter, snapshot_id: i64, language: &str, carry_from: Option<i64>) -> Result<LabelCounts> {
    let phase = phase(language);
    let base_url = ctx.http.base_url();
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
    let phase_bytes = meter.bytes;
    let mut failures: Vec<Error> = Vec::new();
    let mut done = 0u64;
    let mut round: Vec<&String> = wanted.iter().collect();
    // Labels whose answer arrived cut off or garbled are asked for again, a bounded number of times.
    for attempt in 0..=crate::odata::TRUNCATED_RETRIES {
        if round.is_empty() {
            break;
        }
        let requests: Vec<HttpRequest> = round.iter().map(|id| fetch::label_request(id, language)).collect();
        let mut pending = ctx.http.start(&requests);
        let mut again = Vec::new();
        loop {
            // Leaving early drops the batch, which stops its unanswered requests.
            ctx.check_cancelled()?;
            let answers = pending.next(BATCH, LINGER_MS);
            if answers.is_empty() {
                break;
            }
            let mut rows: Vec<Vec<Value>> = Vec::with_capacity(answers.len());
            for (index, answer) in answers {
                let (Some(id), Some(request)) = (round.get(index), requests.get(index)) else {
                    return Err(Error::internal(format!("the host answered request {index} of a batch of {}", round.len())));
                };
                match fetch::label_answer(meter, &base_url, request, id, language, answer) {
                    LabelAnswer::Text(text) => {
                        counts.fetched += 1;
                        rows.push(row![*id, language, text, false]);
                    }
                    LabelAnswer::Missing => {
                        counts.missing += 1;
                        rows.push(row![*id, language, "", true]);
                    }
                    LabelAnswer::Failed(e, _) if e.kind == crate::ErrorKind::Cancelled => return Err(e),
                    LabelAnswer::Failed(_, true) if attempt < crate::odata::TRUNCATED_RETRIES => again.push(*id),
                    LabelAnswer::Failed(e, _) => failures.push(e),
                }
            }
            store_batch(ctx, snapshot_id, &rows)?;
            done += rows.len() as u64;
            ctx.host.progress(&Progress { phase: phase.clone(), done, total: Some(total), bytes: Some(meter.bytes - phase_bytes) });
        }
        if !again.is_empty() {
            ctx.host.log(
                crate::ports::Level::Warn,
                &format!("{} labels in {language} arrived cut off or garbled; asking for them again", again.len()),
            );
        }
        round = again;
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

/// Stores fetched label rows (`label_id, language, text, missing`) and links them to the snapshot,
/// in one transaction.
fn store_batch(ctx: &Ctx<'_>, snapshot_id: i64, rows: &[Vec<Value>]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    in_transaction(ctx.store, TxMode::Immediate, || {
        crate::search::index::insert_labels(
            ctx.store,
            "INSERT INTO labels (label_id, language, text, missing) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (label_id, language, missing, text) DO NOTHING",
            rows.iter().cloned(),
        )?;
        let links: Vec<Vec<Value>> = rows.iter().map(|r| [vec![Value::Integer(snapshot_id)], r.clone()].concat()).collect();
        crate::sql::execute_all(
            ctx.store,
            "INSERT OR IGNORE INTO snapshot_labels (snapshot_id, label_row)
             SELECT ?1, id FROM labels WHERE label_id = ?2 AND language = ?3 AND text = ?4 AND missing = ?5",
            links,
        )?;
        Ok(())
    })
}
