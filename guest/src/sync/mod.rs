//! Sync: an environment's metadata into the version-shared store.
//!
//! Detect the version (one request), plan, then run the plan's phases into a snapshot that becomes
//! visible only when every phase is done. Two syncs of one environment exclude each other (a
//! lease); so do two builders of one version. Every run is recorded in the history, however it ends.

pub mod coverage;
pub mod fetch;
pub mod history;
pub mod labels;
pub mod plan;
pub mod pull;
pub mod snapshot;
pub mod sources;
pub mod write;

use crate::catalog;
use crate::error::{Error, ErrorKind, Result};
use crate::metadata::{Kind, Labelled, typed};
use crate::params;
use crate::ports::{Ctx, Phase, Progress, Shared, TxMode};
use crate::sql::{exec, in_transaction};
use crate::url::normalize_base_url;
use crate::version;
use coverage::normalize_language;
use fetch::Meter;
use history::{Finished, Outcome};
use plan::{Planned, SyncPlan};
use std::collections::BTreeSet;
use write::WriteCounts;

pub use crate::wit::types::{PhaseReport, SyncOptions, SyncReport};

pub const DEFAULT_LANGUAGE: &str = "en-US";

/// What a run has done so far: the parts of its report that phases add to.
struct Progressed {
    phases: Vec<PhaseReport>,
    warnings: Vec<String>,
    record: Finished,
}

impl Progressed {
    fn phase(&mut self, phase: Phase, fetched: u64, written: u64, reused: u64, missing: u64) {
        self.phases.push(PhaseReport { phase, fetched, written, reused, missing });
    }
}

/// The phase of an entity kind.
pub fn entity_phase(kind: Kind) -> Phase {
    match kind {
        Kind::DataEntity => Phase::DataEntities,
        Kind::PublicEntity => Phase::PublicEntities,
        Kind::Enumeration => Phase::Enumerations,
    }
}

/// Syncs the environment `ctx.http` reaches, pulling the version from `shared` when it has it.
pub fn sync(ctx: &Ctx<'_>, shared: Option<&dyn Shared>, options: &SyncOptions) -> Result<SyncReport> {
    let base_url = normalize_base_url(&ctx.http.base_url())?;
    let normalize = |list: &[String]| -> Result<BTreeSet<String>> {
        list.iter().map(|l| normalize_language(l).map_err(Error::invalid_input)).collect()
    };
    let mut languages = normalize(&options.languages)?;
    let drop = normalize(&options.drop_languages)?;
    if let Some(both) = languages.iter().find(|l| drop.contains(*l)) {
        return Err(Error::invalid_input(format!("{both} is both asked for and to be dropped")));
    }
    if languages.is_empty() && drop.is_empty() {
        languages.insert(DEFAULT_LANGUAGE.to_owned());
    }
    let Some(_environment_lease) = environment_lease(ctx, &base_url)? else {
        let now = ctx.host.now_ms();
        let since = history::running(ctx.store, &base_url)?
            .map(|r| {
                format!(
                    " (run {}, started {}, {} ago)",
                    r.id,
                    crate::time::rfc3339(r.started_ms),
                    crate::time::duration(now - r.started_ms)
                )
            })
            .unwrap_or_default();
        return Err(Error::new(ErrorKind::Conflict, format!("another sync of {base_url} is running{since}; wait for it to finish")));
    };
    let started = ctx.host.now_ms();
    let language_list = languages.iter().cloned().collect::<Vec<_>>().join(",");
    let run_id = history::start(ctx.store, &base_url, options.strategy, &language_list, started)?;
    let mut meter = Meter::default();
    let mut done = Progressed { phases: vec![], warnings: vec![], record: Finished::new(run_id) };
    let result = run(ctx, shared, &base_url, options, &languages, &drop, &mut meter, &mut done);
    let mut record = done.record;
    record.finished_ms = ctx.host.now_ms();
    record.requests = meter.requests;
    record.bytes = meter.bytes;
    match &result {
        Ok(outcome) => {
            record.outcome = if options.dry_run { Outcome::Planned } else { Outcome::Succeeded };
            record.snapshot_id = outcome.snapshot_id;
        }
        Err(e) => {
            record.outcome = if e.kind == ErrorKind::Cancelled { Outcome::Cancelled } else { Outcome::Failed };
            record.error = Some(e.message.clone());
        }
    }
    // The history must not hide the sync's own outcome: a failure to record is logged, not returned.
    if let Err(e) = history::finish(ctx.store, &record) {
        ctx.host.log(crate::ports::Level::Error, &format!("recording sync run {run_id}: {e}"));
    }
    let outcome = result?;
    let plan = &outcome.plan;
    Ok(SyncReport {
        run_id,
        base_url,
        modules_hash: outcome.modules_hash,
        new_version: outcome.new_version,
        plan: plan.planned,
        reason: plan.reason.clone(),
        dry_run: options.dry_run,
        coverage: plan.coverage.to_wit(),
        planned_phases: plan.phases(),
        base_modules_hash: plan.base.as_ref().map(|b| b.modules_hash.clone()),
        shared_with: plan.shared_with.clone(),
        phases: done.phases,
        counts: outcome.counts,
        requests: meter.requests,
        bytes: meter.bytes,
        duration_ms: (ctx.host.now_ms() - started).max(0) as u64,
        warnings: done.warnings,
        pulled: outcome.pulled,
    })
}

/// What a run found and left: the parts of the report that come from planning and finishing.
struct RunOutcome {
    modules_hash: String,
    new_version: bool,
    plan: SyncPlan,
    snapshot_id: Option<i64>,
    counts: Option<crate::wit::types::SnapshotCounts>,
    pulled: Option<crate::wit::types::PullReport>,
}

#[allow(clippy::too_many_arguments)]
fn run(
    ctx: &Ctx<'_>,
    shared: Option<&dyn Shared>,
    base_url: &str,
    options: &SyncOptions,
    languages: &BTreeSet<String>,
    drop: &BTreeSet<String>,
    meter: &mut Meter,
    done: &mut Progressed,
) -> Result<RunOutcome> {
    ctx.host.progress(&Progress { phase: Phase::Detect, done: 0, total: Some(1), bytes: None });
    let detected = version::detect(ctx, base_url, false)?;
    meter.requests += detected.requests;
    meter.bytes += detected.bytes;
    let recorded = catalog::record(ctx.store, &detected, ctx.host.now_ms())?;
    ctx.host.progress(&Progress { phase: Phase::Detect, done: 1, total: Some(1), bytes: None });
    let mut plan = plan::make(
        ctx.store,
        &plan::Inputs {
            environment_id: recorded.environment_id,
            version_id: recorded.version_id,
            strategy: options.strategy,
            languages,
            drop,
            modules: &detected.modules.modules,
        },
    )?;
    done.warnings.extend(detected.warnings.iter().cloned());
    // A sync that would fetch the entities asks the shared store first.
    let mut pull: Option<(pull::Found, SyncPlan)> = None;
    if let Some(shared) = shared.filter(|_| options.strategy == plan::Strategy::Auto && plan.fetch_entities) {
        match pull::find(shared, &detected.modules_hash, &plan.coverage) {
            Ok(Some(found)) => {
                let reason = format!(
                    "the shared store {} has this version with {} ({}); only what this cache lacks is downloaded",
                    shared.location(),
                    plan.coverage.describe(),
                    found.name
                );
                let mut pulled = SyncPlan::new(Planned::Pull, reason, plan.coverage.clone());
                pulled.languages =
                    plan.languages.iter().map(|l| plan::LanguagePlan { language: l.language.clone(), carry_from: None }).collect();
                pull = Some((found, std::mem::replace(&mut plan, pulled)));
            }
            Ok(None) => ctx.host.log(
                crate::ports::Level::Info,
                &format!(
                    "the shared store {} does not have version {} with {}",
                    shared.location(),
                    detected.modules_hash,
                    plan.coverage.describe()
                ),
            ),
            Err(e) if e.kind == ErrorKind::Cancelled => return Err(e),
            Err(e) => done.warnings.push(format!("{e}; fetching from the environment instead")),
        }
    }
    history::planned(ctx.store, done.record.id, &detected.modules_hash, plan.planned, &plan.reason, &plan.coverage.languages_text())?;
    let mut outcome = RunOutcome {
        modules_hash: detected.modules_hash.clone(),
        new_version: recorded.new_version,
        plan,
        snapshot_id: None,
        counts: None,
        pulled: None,
    };
    if options.dry_run {
        if let Some(target) = &outcome.plan.target {
            outcome.counts = Some(snapshot::stored_counts(ctx.store, target.id)?);
        }
        outcome.snapshot_id = outcome.plan.target.as_ref().map(|t| t.id);
        return Ok(outcome);
    }
    let now = ctx.host.now_ms();
    let snapshot_id = match (&outcome.plan.planned, &outcome.plan.target) {
        (Planned::UpToDate | Planned::Link, Some(target)) => {
            in_transaction(ctx.store, TxMode::Immediate, || {
                snapshot::point_environment(ctx.store, recorded.environment_id, target.id, now)
            })?;
            target.id
        }
        (Planned::Pull, _) => {
            let (found, fallback) = pull.take().ok_or_else(|| Error::internal("a pull was planned without a manifest"))?;
            let shared = shared.ok_or_else(|| Error::internal("a pull was planned without a shared store"))?;
            match pull_version(ctx, shared, &found, &detected, recorded.version_id, recorded.environment_id, &outcome.plan) {
                Ok((snapshot_id, report)) => {
                    outcome.pulled = Some(report);
                    snapshot_id
                }
                Err(e) if matches!(e.kind, ErrorKind::Cancelled | ErrorKind::Conflict) => return Err(e),
                Err(e) => {
                    done.warnings.push(format!("{e}; fetching from the environment instead"));
                    outcome.plan = fallback;
                    history::planned(
                        ctx.store,
                        done.record.id,
                        &detected.modules_hash,
                        outcome.plan.planned,
                        &outcome.plan.reason,
                        &outcome.plan.coverage.languages_text(),
                    )?;
                    build(ctx, &detected, recorded.version_id, recorded.environment_id, &outcome.plan, meter, done)?
                }
            }
        }
        _ => build(ctx, &detected, recorded.version_id, recorded.environment_id, &outcome.plan, meter, done)?,
    };
    outcome.snapshot_id = Some(snapshot_id);
    outcome.counts = Some(snapshot::stored_counts(ctx.store, snapshot_id)?);
    Ok(outcome)
}

/// Pulls the version from the shared store into a new snapshot and makes it visible.
fn pull_version(
    ctx: &Ctx<'_>,
    shared: &dyn Shared,
    found: &pull::Found,
    detected: &version::Detected,
    version_id: i64,
    environment_id: i64,
    plan: &SyncPlan,
) -> Result<(i64, crate::wit::types::PullReport)> {
    let Some(_version_lease) = ctx.store.try_lock(&format!("build:{}", detected.modules_hash))? else {
        return Err(busy_version(&detected.modules_hash));
    };
    let snapshot_id = resume_or_create(ctx, version_id, plan)?;
    let report = pull::run(ctx, shared, found, &plan.coverage.languages, snapshot_id, version_id, environment_id)?;
    Ok((snapshot_id, report))
}

fn busy_version(modules_hash: &str) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!(
            "version {} is being synced by another process right now; run this sync again when it is done and it will share that work",
            crate::modules::short(modules_hash)
        ),
    )
}

/// Builds (or resumes building) the snapshot the plan describes and makes it visible.
fn build(
    ctx: &Ctx<'_>,
    detected: &version::Detected,
    version_id: i64,
    environment_id: i64,
    plan: &SyncPlan,
    meter: &mut Meter,
    done: &mut Progressed,
) -> Result<i64> {
    let Some(_version_lease) = ctx.store.try_lock(&format!("build:{}", detected.modules_hash))? else {
        return Err(busy_version(&detected.modules_hash));
    };
    fill_build_versions(ctx, &detected.base_url, detected, version_id, meter)?;
    let snapshot_id = resume_or_create(ctx, version_id, plan)?;

    if let Some(from) = &plan.objects_from {
        let phase = Phase::Objects;
        if !snapshot::phase_done(ctx.store, snapshot_id, &phase)? {
            in_transaction(ctx.store, TxMode::Immediate, || {
                let copied = exec(
                    ctx.store,
                    "INSERT INTO snapshot_objects (snapshot_id, kind, position, name, object_id)
                     SELECT ?1, kind, position, name, object_id FROM snapshot_objects WHERE snapshot_id = ?2",
                    &params![snapshot_id, from.id],
                )?;
                snapshot::mark_phase(ctx.store, snapshot_id, &phase, copied, ctx.host.now_ms())?;
                done.phase(phase.clone(), 0, 0, copied, 0);
                done.record.objects_reused += copied;
                Ok(())
            })?;
        }
    }
    // The labels of the first language to fetch are asked for as each collection is parsed, and
    // answered while its rows are written (one pipeline; the labels phase then takes the answers).
    // Each collection is still written before the next is fetched, so a failure keeps what was
    // written for the next sync to resume from.
    let mut prefetch = match plan.languages.iter().find(|l| l.carry_from.is_none()) {
        Some(language) if plan.fetch_entities && !snapshot::phase_done(ctx.store, snapshot_id, &labels::phase(&language.language))? => {
            Some(labels::Prefetch::new(&language.language))
        }
        _ => None,
    };
    if plan.fetch_entities {
        let sources = sources::Sources::open(ctx.store)?;
        for kind in Kind::ALL {
            let phase = entity_phase(kind);
            if snapshot::phase_done(ctx.store, snapshot_id, &phase)? {
                continue;
            }
            ctx.check_cancelled()?;
            let counts = match kind {
                Kind::DataEntity => read_and_write(ctx, meter, snapshot_id, &sources, typed::data_entity, &mut prefetch, done)?,
                Kind::PublicEntity => read_and_write(ctx, meter, snapshot_id, &sources, typed::public_entity, &mut prefetch, done)?,
                Kind::Enumeration => read_and_write(ctx, meter, snapshot_id, &sources, typed::enumeration, &mut prefetch, done)?,
            };
            add_objects(done, phase, counts);
        }
    }
    let mut label_ids = None;
    for language in &plan.languages {
        ctx.check_cancelled()?;
        let early = prefetch.take_if(|p: &mut labels::Prefetch<'_>| p.language() == language.language);
        let counts = labels::run(ctx, meter, snapshot_id, &language.language, language.carry_from, early)?;
        label_ids = label_ids.or(counts.referenced);
        done.warnings.extend(counts.warning(&language.language));
        done.record.labels_fetched += counts.fetched;
        done.record.labels_reused += counts.reused;
        done.record.labels_missing += counts.missing;
        done.phase(labels::phase(&language.language), counts.fetched + counts.missing, counts.fetched, counts.reused, counts.missing);
    }
    ctx.check_cancelled()?;
    snapshot::complete(ctx.store, snapshot_id, environment_id, label_ids, ctx.host.now_ms())?;
    Ok(snapshot_id)
}

/// Fetches the collection of `T`'s kind, reads it (only texts not seen before are parsed), asks
/// for the labels of the new objects at once, and writes the phase. The labels of items
/// recognised as stored are asked for by the labels phase, if the snapshot lacks them.
#[allow(clippy::too_many_arguments)]
fn read_and_write<'a, T: write::StoredObject + Labelled>(
    ctx: &Ctx<'a>,
    meter: &mut Meter,
    snapshot_id: i64,
    sources: &sources::Sources,
    read: fn(&str) -> Result<T, typed::TextError>,
    prefetch: &mut Option<labels::Prefetch<'a>>,
    done: &mut Progressed,
) -> Result<WriteCounts> {
    let phase = entity_phase(T::KIND);
    let items = fetch::collection(ctx, meter, T::KIND.collection(), &phase, |page| sources::read_page(ctx.store, sources, page, &read))?;
    let items = unique(items, T::KIND, &mut done.warnings);
    if let Some(p) = prefetch {
        let mut ids = Vec::new();
        for object in items.iter().filter_map(sources::Fetched::new_object) {
            object.label_ids(&mut ids);
        }
        p.ask(ctx, ids);
    }
    write::write_phase(ctx.store, snapshot_id, &phase, &items, ctx.host.now_ms())
}

/// Takes the environment's sync lease (`None`: another sync holds it), and with it the lease that
/// tells readers this sync's process is alive. Readers only ever try the second, and hold it for an
/// instant, so taking it is only a matter of asking again.
fn environment_lease(ctx: &Ctx<'_>, base_url: &str) -> Result<Option<[Box<dyn crate::ports::Lease>; 2]>> {
    let Some(sync) = ctx.store.try_lock(&history::sync_lease(base_url))? else { return Ok(None) };
    for _ in 0..10_000 {
        if let Some(alive) = ctx.store.try_lock(&history::alive_lease(base_url))? {
            return Ok(Some([sync, alive]));
        }
    }
    Err(Error::new(ErrorKind::Conflict, format!("could not take the lease that marks a sync of {base_url} as alive")))
}

/// Leaves out items that repeat an earlier item's name (a service's paging fault can send one
/// twice): they would be counted twice and make names ambiguous. The first is kept; a warning says
/// how many were left out, which, and whether any differed from the one kept.
fn unique<T: write::StoredObject>(items: Vec<sources::Fetched<T>>, kind: Kind, warnings: &mut Vec<String>) -> Vec<sources::Fetched<T>> {
    let mut first: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    let mut kept: Vec<sources::Fetched<T>> = Vec::with_capacity(items.len());
    let mut repeated: Vec<String> = Vec::new();
    let mut differing = 0usize;
    for item in items {
        match first.get(item.name()) {
            Some(&at) => {
                if kept[at].hash() != item.hash() {
                    differing += 1;
                }
                repeated.push(item.name().to_owned());
            }
            None => {
                first.insert(item.name().to_owned(), kept.len());
                kept.push(item);
            }
        }
    }
    if !repeated.is_empty() {
        let shown: Vec<&str> = repeated.iter().take(5).map(String::as_str).collect();
        let more = if repeated.len() > shown.len() { format!(" and {} more", repeated.len() - shown.len()) } else { String::new() };
        let differ = match differing {
            0 => "each the same as the first".to_owned(),
            n => format!("{n} of them different from the first, which is kept"),
        };
        warnings.push(format!(
            "{}: {} item{} repeated an earlier item's name and {} left out ({}{more}; {differ})",
            kind.collection(),
            repeated.len(),
            if repeated.len() == 1 { "" } else { "s" },
            if repeated.len() == 1 { "was" } else { "were" },
            shown.join(", ")
        ));
    }
    kept
}

fn add_objects(done: &mut Progressed, phase: Phase, counts: WriteCounts) {
    done.record.objects_fetched += counts.fetched;
    done.record.objects_written += counts.written;
    done.record.objects_reused += counts.reused;
    done.phase(phase, counts.fetched, counts.written, counts.reused, 0);
}

/// A building snapshot of this version with the same plan is resumed; one with another plan is
/// discarded (it would never be finished).
fn resume_or_create(ctx: &Ctx<'_>, version_id: i64, plan: &SyncPlan) -> Result<i64> {
    if let Some(building) = snapshot::building_for_version(ctx.store, version_id)? {
        if building.coverage == plan.coverage && building.strategy == plan.planned.as_str() {
            ctx.host.log(crate::ports::Level::Info, &format!("resuming snapshot {} left unfinished by an earlier sync", building.id));
            return Ok(building.id);
        }
        snapshot::discard_building(ctx.store, building.id)?;
    }
    let base = plan.base.as_ref().or(plan.objects_from.as_ref()).map(|s| s.id);
    in_transaction(ctx.store, TxMode::Immediate, || {
        snapshot::create_building(ctx.store, version_id, plan.planned.as_str(), &plan.coverage, base, ctx.host.now_ms())
    })
}

/// A version first seen by a sync has no application and platform versions yet: ask for them.
fn fill_build_versions(ctx: &Ctx<'_>, base_url: &str, detected: &version::Detected, version_id: i64, meter: &mut Meter) -> Result<()> {
    let known = crate::sql::query_opt(
        ctx.store,
        "SELECT application_version IS NOT NULL AND platform_version IS NOT NULL FROM versions WHERE id = ?1",
        &params![version_id],
        |r| r.bool(0),
    )?
    .unwrap_or(false);
    if known || detected.fallback {
        return Ok(());
    }
    let (application, platform, requests) = version::build_versions(ctx, base_url);
    meter.requests += requests;
    in_transaction(ctx.store, TxMode::Immediate, || {
        exec(
            ctx.store,
            "UPDATE versions SET application_version = COALESCE(?2, application_version), platform_version = COALESCE(?3, platform_version) WHERE id = ?1",
            &params![version_id, application, platform],
        )?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use crate::ports::*;
    use crate::testing::World;
    use std::cell::RefCell;

    /// The fake service, noting for each batch of label requests how many property rows were stored
    /// when it was started.
    struct Watching<'a> {
        world: &'a World,
        rows_when_labels_asked: RefCell<Vec<i64>>,
    }

    impl Http for Watching<'_> {
        fn base_url(&self) -> String {
            self.world.http.base_url()
        }
        fn send(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
            self.world.http.send(request)
        }
        fn start(&self, requests: &[HttpRequest]) -> Box<dyn PendingBatch + '_> {
            if requests.iter().any(|r| r.path.contains("/Labels(")) {
                let rows = crate::sql::query_opt(&self.world.store, "SELECT count(*) FROM entity_properties", &[], |r| r.int(0));
                self.rows_when_labels_asked.borrow_mut().push(rows.unwrap().unwrap());
            }
            self.world.http.start(requests)
        }
    }

    #[test]
    fn each_collections_labels_are_asked_for_before_its_rows_are_written() {
        let w = World::new();
        w.http
            .route("GetInstalledModules", 200, r#"{"value":["Name: M | Version: 1.0 | Module: M | Publisher: P | DisplayName: M"]}"#)
            .route("GetApplicationVersion", 200, r#"{"value":"10.0.1"}"#)
            .route("GetPlatformBuildVersion", 200, r#"{"value":"7.0.1"}"#)
            .route("/Metadata/DataEntities", 200, r#"{"value":[{"Name":"D","PublicEntityName":"P","LabelId":"@L:D"}]}"#)
            .route(
                "/Metadata/PublicEntities",
                200,
                r#"{"value":[{"Name":"P","EntitySetName":"Ps","LabelId":"@L:P","Properties":[{"Name":"A","LabelId":"@L:A"},{"Name":"B","LabelId":"literal"}]}]}"#,
            )
            .route("/Metadata/PublicEnumerations", 200, r#"{"value":[{"Name":"E","LabelId":"@L:E","Members":[{"Name":"X","Value":0,"LabelId":"@L:X"}]}]}"#)
            .route("Language='en-US')", 200, r#"{"Id":"@L:any","Language":"en-US","Value":"Text"}"#);
        let watching = Watching { world: &w, rows_when_labels_asked: RefCell::default() };
        let ctx = Ctx { http: &watching, store: &w.store, host: &w.host };
        let options = crate::wit::types::SyncOptions {
            strategy: crate::wit::types::Strategy::Auto,
            languages: vec!["en-US".into()],
            drop_languages: vec![],
            dry_run: false,
        };
        let report = crate::api::sync(&ctx, None, &options).unwrap();
        // One batch per collection: the data entities' and the public entities' before any property
        // row is stored, the enumerations' after; none once the labels phase begins (all were asked).
        assert_eq!(*watching.rows_when_labels_asked.borrow(), [0, 0, 2]);
        let counts = report.counts.unwrap();
        assert_eq!((counts.properties, counts.labels), (2, 5), "every referenced label (not the literal text) was stored");
        let labels = w.http.requests().iter().filter(|u| u.contains("/Labels(")).count();
        assert_eq!(labels, 5, "each label asked for once");
    }
}
