//! `d365meta demo`: the main job against simulated environments, over real HTTP.
//!
//! Three environments: two run the same modules (the second is linked to the first one's copy and
//! transfers no metadata), one runs a newer version with a few entities changed (incremental).
//! Then a few reads, answered from the cache alone.

use super::Context;
use super::output::short_hash;
use super::progress::human_bytes;
use d365meta::bindings::name_of;
use d365meta::cache::{Cache, Phase, ReadOptions, SearchFilters, SearchQuery, Strategy, SyncOptions, SyncReport};
use d365meta_simulator::{Dataset, EnvironmentSpec, Scale, Simulator};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// How much metadata the simulated environments have: tiny, small or full.
    #[arg(long, default_value = "small", value_name = "SCALE")]
    scale: Scale,
}

const NAMES: [&str; 3] = ["contoso-test", "contoso-uat", "contoso-prod"];

pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    // The simulator's ports change from run to run; unless a cache was named, the demo keeps its
    // environments out of the user's cache.
    let scratch = match &ctx.cache_path {
        Some(_) => None,
        None => Some(ScratchDir::new()?),
    };
    let database = scratch.as_ref().map_or_else(|| ctx.database(), |s| s.0.join("cache.db"));

    let dataset = Arc::new(Dataset::generate(args.scale));
    let (newer, evolution) = dataset.evolve(1, 5);
    let specs = vec![spec(NAMES[0], dataset.clone()), spec(NAMES[1], dataset.clone()), spec(NAMES[2], Arc::new(newer))];
    let simulator = Simulator::start("127.0.0.1".parse()?, specs).await?;
    let urls: Vec<String> = (0..3).map(|i| simulator.env(i).base_url()).collect();

    println!("d365meta demo: three simulated F&O environments on loopback (scale {})", args.scale);
    println!();
    let changed = evolution.changed_public_entities.len() + evolution.added_public_entities.len() + evolution.removed_public_entities.len();
    let notes = [
        format!("{} public entities, {} modules", dataset.public_entities.len(), dataset.modules.len()),
        format!("same modules as {}", NAMES[0]),
        format!("newer: {} modules upgraded, {changed} public entities changed, added or removed", evolution.bumped_modules.len()),
    ];
    for (i, name) in NAMES.iter().enumerate() {
        println!("  {name:<13} {}  {}", urls[i], notes[i]);
    }
    println!();
    println!("Syncing each into {}", database.display());
    println!();
    println!(
        "  {:<13} {:<12} {:>8} {:>10}  {:>15} {:>8}  {:>14} {:>8}  {:>7}",
        "environment", "plan", "requests", "received", "objects written", "reused", "labels fetched", "reused", "seconds"
    );

    let runtime = ctx.runtime().await?;
    let mut cache = Cache::open(&runtime, ctx.options(database)).await?;
    let mut reports: Vec<SyncReport> = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let started = Instant::now();
        let r =
            cache.sync(url, SyncOptions { strategy: Strategy::Auto, languages: vec![], drop_languages: vec![], dry_run: false }).await?;
        let (mut written, mut reused, mut fetched, mut labels_reused) = (0, 0, 0, 0);
        if r.phases.is_empty() {
            // Linked (or up to date): everything the environment reads is reused.
            if let Some(c) = &r.counts {
                reused = c.data_entities + c.public_entities + c.enumerations;
                labels_reused = c.labels + c.labels_missing;
            }
        }
        for p in &r.phases {
            if matches!(p.phase, Phase::Labels(_)) {
                fetched += p.fetched;
                labels_reused += p.reused;
            } else {
                written += p.written;
                reused += p.reused;
            }
        }
        println!(
            "  {:<13} {:<12} {:>8} {:>10}  {:>15} {:>8}  {:>14} {:>8}  {:>7.1}",
            NAMES[i],
            name_of(&r.plan),
            r.requests,
            human_bytes(r.bytes),
            written,
            reused,
            fetched,
            labels_reused,
            started.elapsed().as_secs_f64()
        );
        reports.push(r);
    }
    println!();
    for (i, r) in reports.iter().enumerate() {
        let why = r.reason.replace(&urls[0], NAMES[0]).replace(&urls[1], NAMES[1]);
        println!("  {}: {} ({})", NAMES[i], name_of(&r.plan), why);
    }

    let stats = cache.stats(None).await?;
    let stored: u64 = stats.objects.iter().map(|k| k.stored).sum();
    let references: u64 = stats.objects.iter().map(|k| k.references).sum();
    let shared: u64 = stats.objects.iter().map(|k| k.shared_between_versions).sum();
    println!();
    println!(
        "The cache holds {} versions for {} environments: {stored} objects stored for {references} references \
         ({shared} shared by both versions), {} label texts for {} references, {} on disk.",
        stats.versions.len(),
        stats.environments.len(),
        stats.label_texts,
        stats.label_references,
        human_bytes(stats.database_bytes)
    );
    let hash = |i: usize| short_hash(&reports[i].modules_hash).to_owned();
    println!("{} and {} read version {}; {} reads version {}.", NAMES[0], NAMES[1], hash(0), NAMES[2], hash(2));

    // Reads: from the cache alone, in milliseconds.
    println!();
    let options = || ReadOptions { base_url: Some(urls[2].clone()), labels: None };
    let started = Instant::now();
    let entity = cache.get_entity("CustomersV3", options()).await?;
    let lookup = started.elapsed();
    if let Some(p) = &entity.public_entity {
        let keys: Vec<&str> = p.properties.iter().filter(|x| x.is_key).map(|x| x.name.as_str()).collect();
        println!(
            "d365meta entity CustomersV3    -> {} ({} properties, keys {}) in {:.1} ms",
            p.name,
            p.properties.len(),
            keys.join(", "),
            lookup.as_secs_f64() * 1000.0
        );
    }
    let started = Instant::now();
    let filters =
        SearchFilters { category: None, read_only: None, data_service_enabled: None, data_management_enabled: None, entity: None };
    let query = SearchQuery { text: "customer group".into(), kinds: vec![], filters, limit: 3, offset: 0 };
    let found = cache.search(query, options()).await?;
    let names: Vec<String> = found.hits.iter().map(|h| format!("{} ({})", h.name, name_of(&h.kind))).collect();
    println!(
        "d365meta search \"customer group\" -> {}{} matches, first {} in {:.1} ms",
        if found.total_exact { "" } else { "more than " },
        found.total,
        names.join(", "),
        started.elapsed().as_secs_f64() * 1000.0
    );
    simulator.shutdown().await;
    Ok(())
}

fn spec(name: &str, dataset: Arc<Dataset>) -> EnvironmentSpec {
    EnvironmentSpec::new(name, dataset)
}

/// A temporary directory removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "d365meta-demo-{}-{:08x}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos())
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(ScratchDir(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
