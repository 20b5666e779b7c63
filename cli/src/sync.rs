//! `d365meta sync`, `d365meta history`, `d365meta gc`.

use super::Context;
use super::output::{print_fields, print_json, rfc3339};
use super::progress::{Progress, human_bytes};
use clap::ValueEnum;
use d365meta::bindings::name_of;
use d365meta::cache::{Cache, GcOptions, SnapshotCounts, Strategy, SyncOptions, SyncReport};
use serde_json::Value as Json;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum StrategyArg {
    /// Choose: up to date, link to a cached copy of this version, incremental, or full.
    Auto,
    Full,
    Incremental,
    EntitiesOnly,
    LabelsOnly,
}

#[derive(clap::Args, Debug)]
pub struct SyncArgs {
    /// The environment: a base URL or a profile name (default: the selected or default profile's).
    #[arg(value_name = "URL|PROFILE")]
    base_url: Option<String>,

    #[arg(long, value_enum, default_value_t = StrategyArg::Auto)]
    strategy: StrategyArg,

    /// Label languages, comma-separated (default en-US). Languages synced before are kept.
    #[arg(long, value_delimiter = ',', value_name = "LANGS")]
    languages: Vec<String>,

    /// Languages to stop covering, comma-separated: the environment keeps no labels of them.
    #[arg(long, value_delimiter = ',', value_name = "LANGS")]
    drop_languages: Vec<String>,

    /// Print the plan and why it was chosen; fetch nothing.
    #[arg(long)]
    dry_run: bool,
}

impl SyncArgs {
    pub(crate) fn named(&mut self) -> Vec<super::Named<'_>> {
        vec![super::Named::Environment { value: &mut self.base_url, required: true, defaults: true }]
    }
}

pub async fn sync(ctx: &Context, args: SyncArgs) -> anyhow::Result<()> {
    let base_url = args.base_url.clone().unwrap_or_default();
    super::check_base_url(&base_url)?;
    let runtime = ctx.runtime().await?;
    let progress = Progress::new();
    let mut options = ctx.sign_in_options(ctx.database())?;
    if !args.dry_run {
        options.progress = Some(progress.sink());
    }
    let mut cache = Cache::open(&runtime, options).await?;
    let strategy = match args.strategy {
        StrategyArg::Auto => Strategy::Auto,
        StrategyArg::Full => Strategy::Full,
        StrategyArg::Incremental => Strategy::Incremental,
        StrategyArg::EntitiesOnly => Strategy::EntitiesOnly,
        StrategyArg::LabelsOnly => Strategy::LabelsOnly,
    };
    // Languages asked for on the command line, else the profile's.
    let languages =
        if args.languages.is_empty() { ctx.profile.as_ref().map(|p| p.languages.clone()).unwrap_or_default() } else { args.languages };
    let options = SyncOptions { strategy, languages, drop_languages: args.drop_languages, dry_run: args.dry_run };
    let report = cache.sync(&base_url, options).await;
    progress.finish();
    let report = report?;
    if ctx.json {
        print_json(&to_json(&report));
    } else {
        print_report(&report);
    }
    Ok(())
}

/// Any of the component's records as JSON, with WIT's names: the documented `--json` shapes.
pub fn to_json<T: serde::Serialize>(value: &T) -> Json {
    serde_json::to_value(value).unwrap_or(Json::Null)
}

pub fn describe_counts(c: &SnapshotCounts) -> String {
    format!(
        "{} data entities, {} public entities ({} properties, {} navigation properties, {} actions), {} enumerations ({} members), {} label ids, {} labels ({} missing)",
        c.data_entities,
        c.public_entities,
        c.properties,
        c.navigation_properties,
        c.actions,
        c.enumerations,
        c.members,
        c.label_ids,
        c.labels,
        c.labels_missing
    )
}

fn print_report(r: &SyncReport) {
    let mut fields = vec![
        ("Environment", r.base_url.clone()),
        ("Version", format!("{}{}", r.modules_hash, if r.new_version { " (new to this cache)" } else { "" })),
        (if r.dry_run { "Plan (dry run)" } else { "Plan" }, format!("{}: {}", name_of(&r.plan), r.reason)),
    ];
    if r.dry_run {
        let phases: Vec<String> = r
            .planned_phases
            .iter()
            .map(|p| if p.from_cache { format!("{} (from the cache)", p.phase) } else { p.phase.to_string() })
            .collect();
        fields.push(("Phases", if phases.is_empty() { "none: nothing to fetch".to_owned() } else { phases.join(", ") }));
    } else {
        for p in &r.phases {
            let missing = if p.missing > 0 { format!(", {} missing", p.missing) } else { String::new() };
            fields.push(("Phase", format!("{}: {} fetched, {} written, {} reused{missing}", p.phase, p.fetched, p.written, p.reused)));
        }
    }
    let c = &r.coverage;
    let languages = if c.languages.is_empty() { "no labels".to_owned() } else { format!("labels {}", c.languages.join(", ")) };
    fields.push(("Coverage", if c.entities { format!("entities and {languages}") } else { languages }));
    if let Some(c) = &r.counts {
        fields.push(("Snapshot", describe_counts(c)));
    }
    if !r.shared_with.is_empty() {
        fields.push(("Shared with", r.shared_with.join(", ")));
    }
    if let Some(p) = &r.pulled {
        fields.push((
            "Pulled",
            format!(
                "{} packs ({}) from {}: {} objects and {} labels stored anew",
                p.packs,
                human_bytes(p.bytes),
                p.location,
                p.objects,
                p.labels
            ),
        ));
    }
    fields.push(("Requests", format!("{} ({}) in {:.1} s", r.requests, human_bytes(r.bytes), r.duration_ms as f64 / 1000.0)));
    print_fields(&fields);
    for w in &r.warnings {
        println!("warning: {w}");
    }
}

#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// Only this environment's syncs: a base URL or a profile name.
    #[arg(long = "env", value_name = "URL|PROFILE")]
    env: Option<String>,

    /// How many runs to show, newest first.
    #[arg(long, default_value_t = 20)]
    limit: u32,
}

impl HistoryArgs {
    pub(crate) fn named(&mut self) -> Vec<super::Named<'_>> {
        vec![super::Named::Environment { value: &mut self.env, required: false, defaults: false }]
    }
}

pub async fn history(ctx: &Context, args: HistoryArgs) -> anyhow::Result<()> {
    let (_runtime, mut cache) = ctx.open_read().await?;
    let runs = cache.history(args.env.as_deref(), args.limit).await?;
    if ctx.json {
        print_json(&to_json(&runs));
        return Ok(());
    }
    if runs.is_empty() {
        println!("No syncs recorded.");
        return Ok(());
    }
    println!(
        "{:<24}  {:<11}  {:<13}  {:>8}  {:>8}  {:>9}  {:>8}  environment",
        "started", "outcome", "strategy", "seconds", "requests", "written", "reused"
    );
    for r in &runs {
        let seconds = r.finished_ms.map(|f| format!("{:.1}", (f - r.started_ms) as f64 / 1000.0)).unwrap_or_else(|| "-".to_owned());
        println!(
            "{:<24}  {:<11}  {:<13}  {:>8}  {:>8}  {:>9}  {:>8}  {}",
            rfc3339(r.started_ms),
            name_of(&r.outcome),
            r.plan.map_or_else(|| name_of(&r.requested_strategy), |p| name_of(&p)),
            seconds,
            r.requests,
            r.objects_written + r.labels_fetched,
            r.objects_reused + r.labels_reused,
            r.base_url
        );
        if let Some(e) = &r.error {
            println!("{:<24}  error: {e}", "");
        }
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct GcArgs {
    /// Keep versions no environment points at if they were seen within this many days.
    #[arg(long, default_value_t = 0, value_name = "N")]
    keep_days: u32,

    /// Afterwards, rewrite the database file so that the space freed goes back to the file system.
    #[arg(long)]
    vacuum: bool,
}

pub async fn gc(ctx: &Context, args: GcArgs) -> anyhow::Result<()> {
    let (_runtime, mut cache) = ctx.open().await?;
    let report = cache.gc(GcOptions { keep_days: args.keep_days, vacuum: args.vacuum }).await?;
    if ctx.json {
        print_json(&to_json(&report));
    } else {
        let mut fields = vec![
            ("Versions removed", report.versions.to_string()),
            ("Snapshots removed", report.snapshots.to_string()),
            ("Objects removed", report.objects.to_string()),
            ("Labels removed", report.labels.to_string()),
        ];
        if args.vacuum {
            fields.push(("File shrank by", human_bytes(report.bytes_freed)));
        }
        print_fields(&fields);
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct ForgetArgs {
    /// The environment: a base URL or a profile name.
    #[arg(value_name = "URL|PROFILE")]
    base_url: String,
}

impl ForgetArgs {
    pub(crate) fn named(&mut self) -> Vec<super::Named<'_>> {
        vec![super::Named::Url(&mut self.base_url)]
    }
}

pub async fn forget(ctx: &Context, args: ForgetArgs) -> anyhow::Result<()> {
    super::check_base_url(&args.base_url)?;
    let (_runtime, mut cache) = ctx.open().await?;
    let report = cache.forget(&args.base_url).await?;
    if ctx.json {
        print_json(&to_json(&report));
    } else {
        let after = if report.snapshot_unreferenced { "; `d365meta gc` frees what only it used" } else { "" };
        println!("Forgot {} and {} recorded sync(s){after}.", report.base_url, report.runs);
    }
    Ok(())
}
