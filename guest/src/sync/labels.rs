//! The labels phase of a snapshot, one language at a time: labels carried over from another
//! snapshot where it has them, the rest fetched. The whole language is handed to the host at once
//! and its answers are taken as they arrive, so one slow or throttled label never holds up the
//! rest; they are committed in batches, so an interrupted phase resumes where it stopped.

use super::fetch::{self, LabelAnswer, Meter};
use super::snapshot::{REFERENCED_LABEL_IDS, mark_phase, phase_done};
use crate::error::{Error, Result};
use crate::ports::{Ctx, HttpRequest, PendingBatch, Phase, Progress, TxMode, Value};
use crate::sql::{exec, in_transaction, json_strings, query_map};
use crate::{params, row};
use std::collections::BTreeSet;

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
    /// How many label ids the snapshot's objects refer to, when the phase read them.
    pub referenced: Option<u64>,
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

/// Label requests started as a snapshot's collections are parsed, before their rows are written,
/// for the label ids they refer to: the service answers them while the rows are stored, and
/// [`run`] takes the answers afterwards.
pub struct Prefetch<'a> {
    language: String,
    /// Every id asked for so far, so that an id named by several collections is asked for once.
    asked: BTreeSet<String>,
    batches: Vec<Started<'a>>,
}

/// One batch of label requests on its way: `ids[i]` is asked for by `requests[i]`.
struct Started<'a> {
    ids: Vec<String>,
    requests: Vec<HttpRequest>,
    pending: Box<dyn PendingBatch + 'a>,
}

impl<'a> Prefetch<'a> {
    pub fn new(language: &str) -> Prefetch<'a> {
        Prefetch { language: language.to_owned(), asked: BTreeSet::new(), batches: Vec::new() }
    }

    pub fn language(&self) -> &str {
        &self.language
    }

    /// Starts asking for the label references (`@…`) among `ids` not asked for yet; nothing is
    /// stored until [`run`] takes the answers.
    pub fn ask<'s>(&mut self, ctx: &Ctx<'a>, ids: impl IntoIterator<Item = &'s str>) {
        let new: BTreeSet<&str> =
            ids.into_iter().filter(|id| crate::metadata::is_label_reference(id) && !self.asked.contains(*id)).collect();
        if new.is_empty() {
            return;
        }
        let ids: Vec<String> = new.into_iter().map(str::to_owned).collect();
        self.asked.extend(ids.iter().cloned());
        let requests: Vec<HttpRequest> = ids.iter().map(|id| fetch::label_request(id, &self.language)).collect();
        let http: &'a dyn crate::ports::Http = ctx.http;
        let pending = http.start(&requests);
        self.batches.push(Started { ids, requests, pending });
    }
}

/// What a labels phase has done so far.
struct Tally {
    counts: LabelCounts,
    failures: Vec<Error>,
    /// Labels whose answer arrived cut off or garbled, to ask for again.
    again: Vec<String>,
    done: u64,
    total: u64,
    phase_bytes: u64,
}

/// Fills the labels of `language` for a building snapshot. `prefetched` holds requests started
/// earlier for this language (the caller hands over only those), if any: their answers are used for the ids still wanted (the list
/// below, from the stored rows, is the authority), and ids they did not cover are asked for now.
pub fn run(
    ctx: &Ctx<'_>,
    meter: &mut Meter,
    snapshot_id: i64,
    language: &str,
    carry_from: Option<i64>,
    mut prefetched: Option<Prefetch<'_>>,
) -> Result<LabelCounts> {
    let phase = phase(language);
    if phase_done(ctx.store, snapshot_id, &phase)? {
        return Ok(LabelCounts::default());
    }
    // The ids the snapshot's objects refer to are read once (a union over every label column of
    // the snapshot, the costliest statement of a phase that carries most texts over).
    let referenced = query_map(ctx.store, REFERENCED_LABEL_IDS, &params![snapshot_id], |r| r.text(0))?;
    let referenced_count = referenced.len() as u64;
    let referenced_json = json_strings(&referenced.iter().map(String::as_str).collect::<Vec<_>>())?;
    let mut reused = 0;
    if let Some(from) = carry_from {
        reused = in_transaction(ctx.store, TxMode::Immediate, || {
            exec(
                ctx.store,
                &format!(
                    "INSERT OR IGNORE INTO snapshot_labels (snapshot_id, label_row)
                     SELECT ?1, l.id FROM snapshot_labels sl JOIN labels l ON l.id = sl.label_row
                     WHERE sl.snapshot_id = ?3 AND l.language = ?2
                       AND l.label_id IN (SELECT value FROM json_each(?4))
                       AND l.label_id NOT IN ({PRESENT_IN_SNAPSHOT})"
                ),
                &[Value::Integer(snapshot_id), Value::from(language), Value::Integer(from), referenced_json.clone()],
            )
        })?;
    }
    let wanted = query_map(
        ctx.store,
        &format!("SELECT DISTINCT value FROM json_each(?3) WHERE value NOT IN ({PRESENT_IN_SNAPSHOT}) ORDER BY value"),
        &[Value::Integer(snapshot_id), Value::from(language), referenced_json],
        |r| r.text(0),
    )?;
    let mut tally = Tally {
        counts: LabelCounts { reused, referenced: Some(referenced_count), ..LabelCounts::default() },
        failures: Vec::new(),
        again: Vec::new(),
        done: 0,
        total: wanted.len() as u64,
        phase_bytes: meter.bytes,
    };
    let mut round = wanted;
    // Labels whose answer arrived cut off or garbled are asked for again, a bounded number of times.
    for attempt in 0..=crate::odata::TRUNCATED_RETRIES {
        if let Some(early) = prefetched.take() {
            let still_wanted: BTreeSet<&str> = round.iter().map(String::as_str).collect();
            for mut batch in early.batches {
                let asked = (batch.ids.as_slice(), batch.requests.as_slice());
                take_answers(ctx, meter, snapshot_id, language, attempt, asked, batch.pending.as_mut(), Some(&still_wanted), &mut tally)?;
            }
            round.retain(|id| !early.asked.contains(id));
        }
        if !round.is_empty() {
            let requests: Vec<HttpRequest> = round.iter().map(|id| fetch::label_request(id, language)).collect();
            let mut pending = ctx.http.start(&requests);
            take_answers(ctx, meter, snapshot_id, language, attempt, (&round, &requests), pending.as_mut(), None, &mut tally)?;
        }
        if !tally.again.is_empty() {
            ctx.host.log(
                crate::ports::Level::Warn,
                &format!("{} labels in {language} arrived cut off or garbled; asking for them again", tally.again.len()),
            );
        }
        round = std::mem::take(&mut tally.again);
        if round.is_empty() {
            break;
        }
    }
    let total = tally.total;
    if let Some(first) = tally.failures.first() {
        return Err(Error::new(
            first.kind,
            format!(
                "{} of {total} labels in {language} could not be fetched (the others are kept; the next sync fetches only these): {}",
                tally.failures.len(),
                first.message
            ),
        ));
    }
    in_transaction(ctx.store, TxMode::Immediate, || mark_phase(ctx.store, snapshot_id, &phase, total, ctx.host.now_ms()))?;
    Ok(tally.counts)
}

/// Takes the answers of one batch of label requests (`ids[i]` asked for by `requests[i]`) as they
/// arrive and stores them batch by batch; with `wanted`, answers for other ids are left out.
#[allow(clippy::too_many_arguments)]
fn take_answers(
    ctx: &Ctx<'_>,
    meter: &mut Meter,
    snapshot_id: i64,
    language: &str,
    attempt: u32,
    (ids, requests): (&[String], &[HttpRequest]),
    pending: &mut dyn PendingBatch,
    wanted: Option<&BTreeSet<&str>>,
    tally: &mut Tally,
) -> Result<()> {
    let base_url = ctx.http.base_url();
    let phase = phase(language);
    loop {
        // Leaving early drops the batch, which stops its unanswered requests.
        ctx.check_cancelled()?;
        let answers = pending.next(BATCH, LINGER_MS);
        if answers.is_empty() {
            return Ok(());
        }
        let mut rows: Vec<Vec<Value>> = Vec::with_capacity(answers.len());
        for (index, answer) in answers {
            let (Some(id), Some(request)) = (ids.get(index), requests.get(index)) else {
                return Err(Error::internal(format!("the host answered request {index} of a batch of {}", ids.len())));
            };
            let answer = fetch::label_answer(meter, &base_url, request, id, language, answer);
            if wanted.is_some_and(|w| !w.contains(id.as_str())) {
                continue;
            }
            match answer {
                LabelAnswer::Text(text) => {
                    tally.counts.fetched += 1;
                    rows.push(row![id.as_str(), language, text, false]);
                }
                LabelAnswer::Missing => {
                    tally.counts.missing += 1;
                    rows.push(row![id.as_str(), language, "", true]);
                }
                LabelAnswer::Failed(e, _) if e.kind == crate::ErrorKind::Cancelled => return Err(e),
                LabelAnswer::Failed(_, true) if attempt < crate::odata::TRUNCATED_RETRIES => tally.again.push(id.clone()),
                LabelAnswer::Failed(e, _) => tally.failures.push(e),
            }
        }
        store_batch(ctx, snapshot_id, &rows)?;
        tally.done += rows.len() as u64;
        ctx.host.progress(&Progress {
            phase: phase.clone(),
            done: tally.done,
            total: Some(tally.total),
            bytes: Some(meter.bytes - tally.phase_bytes),
        });
    }
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
