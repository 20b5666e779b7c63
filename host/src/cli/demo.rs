//! `d365meta demo`: the main job against simulated environments, over real HTTP.

use super::Context;
use super::output::short_hash;
use crate::cache::VersionReport;
use d365meta_simulator::{Dataset, EnvironmentSpec, Scale, Simulator};
use std::path::PathBuf;
use std::sync::Arc;

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
    for (i, name) in NAMES.iter().enumerate() {
        let note = if i == 2 { format!("  (newer: {} modules upgraded)", evolution.bumped_modules.len()) } else { String::new() };
        println!("  {name:<13} {}{note}", urls[i]);
    }
    println!();
    println!("Detecting versions (cache: {})", database.display());

    let runtime = ctx.runtime()?;
    let mut cache = crate::cache::Cache::open(&runtime, ctx.options(database)).await?;
    let mut reports: Vec<VersionReport> = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let report = cache.detect_version(url).await?;
        let sharing = report.shared_with.iter().filter_map(|u| urls.iter().position(|x| x == u).map(|j| NAMES[j])).collect::<Vec<_>>();
        let status = if report.new_version { "new version".to_owned() } else { format!("same version as {}", sharing.join(", ")) };
        println!(
            "  {:<13} {:>3} modules  hash {}  {:<30} {} requests",
            NAMES[i],
            report.modules.len(),
            short_hash(&report.modules_hash),
            status,
            report.requests
        );
        reports.push(report);
    }

    let diff = cache.compare_modules(reports[0].modules.clone(), reports[2].modules.clone()).await?;
    println!();
    println!(
        "{} -> {}: {} modules changed, {} added, {} removed, {} unchanged",
        NAMES[0],
        NAMES[2],
        diff.changed.len(),
        diff.added.len(),
        diff.removed.len(),
        diff.unchanged
    );
    for c in &diff.changed {
        println!("  ~ {}  {} -> {}", c.module_id, c.old_version, c.new_version);
    }
    let versions = cache.list_versions().await?;
    let environments = cache.list_environments().await?;
    println!();
    println!("The cache now knows {} environments running {} versions.", environments.len(), versions.len());
    simulator.shutdown().await;
    Ok(())
}

fn spec(name: &str, dataset: Arc<Dataset>) -> EnvironmentSpec {
    EnvironmentSpec { name: name.to_owned(), dataset, modules: None, page_size: None, require_bearer: None }
}

/// A temporary directory removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(format!("d365meta-demo-{}-{:08x}", std::process::id(), fastrand::u32(..)));
        std::fs::create_dir_all(&dir)?;
        Ok(ScratchDir(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
