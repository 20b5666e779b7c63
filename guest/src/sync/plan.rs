//! Choosing how to sync: compare what the environment runs with what the cache holds.

use super::coverage::Coverage;
use super::snapshot::{self, SnapshotInfo};
use crate::error::{Error, Result};
use crate::modules::Module;
use crate::ports::Store;
use crate::wit::types::{Phase, PlannedPhase};
use std::collections::BTreeSet;

pub use crate::wit::types::{Plan as Planned, Strategy};

impl Strategy {
    /// The name stored in the history.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Auto => "auto",
            Strategy::Full => "full",
            Strategy::Incremental => "incremental",
            Strategy::EntitiesOnly => "entities-only",
            Strategy::LabelsOnly => "labels-only",
        }
    }

    pub fn parse(s: &str) -> Option<Strategy> {
        [Strategy::Auto, Strategy::Full, Strategy::Incremental, Strategy::EntitiesOnly, Strategy::LabelsOnly]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

impl Planned {
    /// The name stored with snapshots and in the history.
    pub fn as_str(self) -> &'static str {
        match self {
            Planned::UpToDate => "up-to-date",
            Planned::Link => "link",
            Planned::Incremental => "incremental",
            Planned::Full => "full",
            Planned::EntitiesOnly => "entities-only",
            Planned::LabelsOnly => "labels-only",
            Planned::Pull => "pull",
        }
    }

    pub fn parse(s: &str) -> Option<Planned> {
        [Planned::UpToDate, Planned::Link, Planned::Incremental, Planned::Full, Planned::EntitiesOnly, Planned::LabelsOnly, Planned::Pull]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// Where a language's labels come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LanguagePlan {
    pub language: String,
    /// Labels copied from this snapshot where it has them; the rest are fetched.
    pub carry_from: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncPlan {
    pub planned: Planned,
    pub reason: String,
    /// What the environment will see once the sync is done.
    pub coverage: Coverage,
    /// The existing snapshot the environment ends up on (up to date, link).
    pub target: Option<SnapshotInfo>,
    /// The snapshot whose objects are taken as they are (labels only).
    pub objects_from: Option<SnapshotInfo>,
    pub fetch_entities: bool,
    pub languages: Vec<LanguagePlan>,
    /// The earlier version an incremental sync compares against.
    pub base: Option<SnapshotInfo>,
    /// Other environments the linked snapshot serves.
    pub shared_with: Vec<String>,
}

impl SyncPlan {
    pub fn new(planned: Planned, reason: String, coverage: Coverage) -> SyncPlan {
        SyncPlan {
            planned,
            reason,
            coverage,
            target: None,
            objects_from: None,
            fetch_entities: false,
            languages: vec![],
            base: None,
            shared_with: vec![],
        }
    }

    /// The phases the plan runs, in order.
    pub fn phases(&self) -> Vec<PlannedPhase> {
        let mut out = Vec::new();
        if self.planned == Planned::Pull {
            return vec![PlannedPhase { phase: Phase::Pull, from_cache: false }];
        }
        if self.objects_from.is_some() {
            out.push(PlannedPhase { phase: Phase::Objects, from_cache: true });
        }
        if self.fetch_entities {
            out.extend(
                [Phase::DataEntities, Phase::PublicEntities, Phase::Enumerations].map(|phase| PlannedPhase { phase, from_cache: false }),
            );
        }
        for l in &self.languages {
            out.push(PlannedPhase { phase: Phase::Labels(l.language.clone()), from_cache: l.carry_from.is_some() });
        }
        out
    }
}

pub struct Inputs<'a> {
    pub environment_id: i64,
    pub version_id: i64,
    pub strategy: Strategy,
    /// Languages asked for on this run.
    pub languages: &'a BTreeSet<String>,
    /// Languages to stop covering (compared without regard to case, so that a code stored before
    /// codes were normalised can be dropped too).
    pub drop: &'a BTreeSet<String>,
    /// The modules of the version being synced, to describe an incremental base.
    pub modules: &'a [Module],
}

pub fn make(store: &dyn Store, input: &Inputs<'_>) -> Result<SyncPlan> {
    let current = snapshot::of_environment(store, input.environment_id)?;
    let same_version = snapshot::complete_for_version(store, input.version_id)?;
    let best = same_version.iter().find(|s| s.coverage.entities);
    // Languages are kept once asked for (a later sync refreshes them too), until dropped.
    let dropped = |l: &str| input.drop.iter().any(|d| d.eq_ignore_ascii_case(l));
    let mut languages = input.languages.clone();
    if let Some(c) = &current {
        languages.extend(
            c.coverage
                .languages
                .iter()
                .filter(|l| !dropped(l))
                .map(|l| super::coverage::normalize_language(l).unwrap_or_else(|_| l.clone())),
        );
    }
    languages.retain(|l| !dropped(l));
    let wanted = Coverage { entities: true, languages: languages.clone() };
    // A snapshot that still covers a dropped language does not do: the environment must end up on
    // one without it.
    let acceptable = |c: &Coverage| c.covers(&wanted) && !c.languages.iter().any(|l| dropped(l));
    let fetch_all =
        |carry: Option<i64>| languages.iter().map(|l| LanguagePlan { language: l.clone(), carry_from: carry }).collect::<Vec<_>>();

    match input.strategy {
        Strategy::Auto => {
            if let Some(c) = current.as_ref().filter(|c| c.version_id == input.version_id && acceptable(&c.coverage)) {
                let mut plan = SyncPlan::new(
                    Planned::UpToDate,
                    format!("the cached snapshot is of this version and has {}", c.coverage.describe()),
                    c.coverage.clone(),
                );
                plan.target = Some(c.clone());
                return Ok(plan);
            }
            if let Some(s) = same_version.iter().find(|s| acceptable(&s.coverage)) {
                let others = sharing(store, s.id)?;
                let reason = if others.is_empty() {
                    format!("this version is already cached with {}", s.coverage.describe())
                } else {
                    format!("{} already brought this version with {}", others.join(", "), s.coverage.describe())
                };
                let mut plan = SyncPlan::new(Planned::Link, reason, s.coverage.clone());
                plan.target = Some(s.clone());
                plan.shared_with = others;
                return Ok(plan);
            }
            if let Some(best) = best {
                let missing: Vec<&String> = wanted.languages.difference(&best.coverage.languages).collect();
                let reason = if missing.is_empty() {
                    format!(
                        "this version is cached with {}; a snapshot without {} is made from it, nothing is fetched",
                        best.coverage.describe(),
                        input.drop.iter().cloned().collect::<Vec<_>>().join(", ")
                    )
                } else {
                    format!(
                        "this version is cached with {}; fetching labels for {}",
                        best.coverage.describe(),
                        missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    )
                };
                let languages = best.coverage.languages.union(&wanted.languages).filter(|l| !dropped(l)).cloned().collect();
                let mut plan = SyncPlan::new(Planned::LabelsOnly, reason, Coverage { entities: true, languages });
                plan.objects_from = Some(best.clone());
                plan.languages = plan
                    .coverage
                    .languages
                    .iter()
                    .map(|l| LanguagePlan { language: l.clone(), carry_from: best.coverage.languages.contains(l).then_some(best.id) })
                    .collect();
                return Ok(plan);
            }
            match incremental_base(store, current.as_ref(), input.version_id)? {
                Some(base) => Ok(incremental(store, base, wanted.clone(), fetch_all, input)?),
                None => {
                    let mut plan = SyncPlan::new(Planned::Full, "no version of any environment is cached yet".to_owned(), wanted.clone());
                    plan.fetch_entities = true;
                    plan.languages = fetch_all(None);
                    Ok(plan)
                }
            }
        }
        Strategy::Full => {
            let mut plan = SyncPlan::new(Planned::Full, "asked for".to_owned(), wanted.clone());
            plan.fetch_entities = true;
            plan.languages = fetch_all(None);
            Ok(plan)
        }
        Strategy::Incremental => {
            let base = match current.as_ref().filter(|c| c.coverage.entities) {
                Some(c) => Some(c.clone()),
                None => incremental_base(store, None, input.version_id)?,
            };
            let base = base.ok_or_else(|| {
                Error::invalid_input(
                    "--strategy incremental needs an earlier synced version to compare with, and none is cached; use auto or full",
                )
            })?;
            incremental(store, base, wanted.clone(), fetch_all, input)
        }
        Strategy::EntitiesOnly => {
            // Labels this version already has are kept for the ids still referenced.
            let mut kept = best.map(|b| b.coverage.languages.clone()).unwrap_or_default();
            kept.retain(|l| !dropped(l));
            let mut plan =
                SyncPlan::new(Planned::EntitiesOnly, "asked for".to_owned(), Coverage { entities: true, languages: kept.clone() });
            plan.fetch_entities = true;
            plan.languages = kept.iter().map(|l| LanguagePlan { language: l.clone(), carry_from: best.map(|b| b.id) }).collect();
            Ok(plan)
        }
        Strategy::LabelsOnly => {
            let best = best.ok_or_else(|| {
                Error::invalid_input("--strategy labels-only needs this version's entities in the cache, and they are not; run a sync with auto, full or entities-only first")
            })?;
            let coverage = Coverage {
                entities: true,
                languages: best.coverage.languages.union(input.languages).filter(|l| !dropped(l)).cloned().collect(),
            };
            let mut plan = SyncPlan::new(
                Planned::LabelsOnly,
                format!("asked for: labels for {}", input.languages.iter().cloned().collect::<Vec<_>>().join(", ")),
                coverage.clone(),
            );
            plan.objects_from = Some(best.clone());
            plan.languages = coverage
                .languages
                .iter()
                .map(|l| LanguagePlan { language: l.clone(), carry_from: (!input.languages.contains(l)).then_some(best.id) })
                .collect();
            Ok(plan)
        }
    }
}

fn incremental(
    store: &dyn Store,
    base: SnapshotInfo,
    wanted: Coverage,
    fetch_all: impl Fn(Option<i64>) -> Vec<LanguagePlan>,
    input: &Inputs<'_>,
) -> Result<SyncPlan> {
    let base_modules = crate::catalog::version_modules(store, base.version_id)?;
    let diff = crate::modules::diff(&base_modules, input.modules);
    let holders = sharing(store, base.id)?;
    let from = if holders.is_empty() { String::new() } else { format!(" (cached from {})", holders.join(", ")) };
    let reason = format!(
        "the cache has version {}{from}, which differs by {} changed, {} added and {} removed modules; unchanged objects and labels are reused",
        crate::modules::short(&base.modules_hash),
        diff.changed.len(),
        diff.added.len(),
        diff.removed.len()
    );
    let mut plan = SyncPlan::new(Planned::Incremental, reason, wanted);
    plan.fetch_entities = true;
    plan.languages = fetch_all(Some(base.id));
    plan.base = Some(base);
    Ok(plan)
}

/// The environment's own earlier version if it has one, or else the most recent version of any
/// environment.
fn incremental_base(store: &dyn Store, current: Option<&SnapshotInfo>, version_id: i64) -> Result<Option<SnapshotInfo>> {
    if let Some(c) = current.filter(|c| c.coverage.entities && c.version_id != version_id) {
        return Ok(Some(c.clone()));
    }
    snapshot::latest_with_entities_except(store, version_id)
}

fn sharing(store: &dyn Store, snapshot_id: i64) -> Result<Vec<String>> {
    crate::sql::query_map(
        store,
        "SELECT base_url FROM environments WHERE snapshot_id = ?1 ORDER BY base_url",
        &crate::params![snapshot_id],
        |r| r.text(0),
    )
}
