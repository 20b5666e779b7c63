//! A version through the shared store at full scale: the direct full sync from the environment,
//! then publishing that cache to Azurite (Microsoft's Azure Storage emulator, on loopback) and to a
//! directory, then pulling into fresh caches from each — all in one run, so the ratios compare like
//! with like on a shared machine.
//!
//! Needs the pinned Azurite: `npm ci --prefix tests/azurite`.
//!
//! `cargo bench -p d365meta --bench shared [-- [--runs N] [--json]]`

#[path = "../../tests/src/azurite.rs"]
#[allow(dead_code)]
mod azurite;
mod common;

use common::*;
use d365meta::bindings::name_of;
use d365meta::cache::{Cache, CacheOptions, PublishOptions, SyncReport};
use d365meta::runtime::Runtime;
use d365meta::shared::{AzureStorageCredentials, SharedOptions};
use d365meta_simulator::{Dataset, EnvironmentSpec, Scale, Simulator};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench(args))
}

fn with_store(db: &Path, url: &str, connection_string: Option<String>) -> CacheOptions {
    let mut options = CacheOptions::new(db);
    let mut shared = SharedOptions::new(url);
    shared.azure = AzureStorageCredentials { connection_string, ..AzureStorageCredentials::default() };
    options.shared = Some(shared);
    options
}

async fn timed_sync(runtime: &Runtime, options: CacheOptions, url: &str) -> anyhow::Result<(SyncReport, Duration)> {
    let mut cache = Cache::open(runtime, options).await?;
    let started = Instant::now();
    let report = cache.sync(url, en_us_sync()).await?;
    Ok((report, started.elapsed()))
}

struct Run {
    direct: Duration,
    publish_azure: Duration,
    publish_dir: Duration,
    pull_azure: Duration,
    pull_dir: Duration,
    bytes: u64,
    packs: u32,
    direct_requests: u64,
    pull_requests: u64,
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let out = Out::new(args.json);
    let runs = args.number("runs", 3).max(1);
    let dataset = Arc::new(Dataset::generate(Scale::Full));
    let sim = Simulator::start(
        "127.0.0.1".parse()?,
        vec![EnvironmentSpec::new("prod", dataset.clone()), EnvironmentSpec::new("team", dataset.clone())],
    )
    .await?;
    let (prod, team) = (sim.env(0), sim.env(1));
    let (runtime, _) = runtime()?;
    let emulator = azurite::Azurite::start();
    emulator.create_container("bench");
    out.line(format!(
        "d365meta shared-store bench: scale full, labels en-US, {runs} run(s), Azurite on 127.0.0.1:{}, {} CPU(s) available",
        emulator.port(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    ));

    let mut results = Vec::new();
    for run in 0..runs {
        let scratch = Scratch::new("shared");
        let (a, b, c) = (scratch.0.join("a.db"), scratch.0.join("b.db"), scratch.0.join("c.db"));
        let azure_url = format!("az://bench/run{run}");
        let dir_url = format!("file://{}", scratch.0.join("store").display());
        let connection = Some(emulator.connection_string());

        // The direct sync, with no store configured, as a sync without a team would run.
        let (direct, direct_time) = timed_sync(&runtime, CacheOptions::new(&a), &prod.base_url()).await?;
        anyhow::ensure!(name_of(&direct.plan) == "full", "the direct sync was {}", name_of(&direct.plan));

        let mut publisher = Cache::open(&runtime, with_store(&a, &azure_url, connection.clone())).await?;
        let started = Instant::now();
        let published = publisher.publish(PublishOptions { versions: vec![] }).await?;
        let publish_azure = started.elapsed();
        drop(publisher);
        let mut publisher = Cache::open(&runtime, with_store(&a, &dir_url, None)).await?;
        let started = Instant::now();
        publisher.publish(PublishOptions { versions: vec![] }).await?;
        let publish_dir = started.elapsed();
        drop(publisher);

        let (pulled, pull_azure) = timed_sync(&runtime, with_store(&b, &azure_url, connection), &team.base_url()).await?;
        anyhow::ensure!(name_of(&pulled.plan) == "pull", "the Azure pull was {}: {:?}", name_of(&pulled.plan), pulled.warnings);
        let (from_dir, pull_dir) = timed_sync(&runtime, with_store(&c, &dir_url, None), &team.base_url()).await?;
        anyhow::ensure!(name_of(&from_dir.plan) == "pull", "the directory pull was {}", name_of(&from_dir.plan));
        let p = pulled.pulled.as_ref().expect("a pull reports what it took");
        let result = Run {
            direct: direct_time,
            publish_azure,
            publish_dir,
            pull_azure,
            pull_dir,
            bytes: published.versions[0].bytes_uploaded,
            packs: p.packs,
            direct_requests: direct.requests,
            pull_requests: pulled.requests,
        };
        out.line(format!(
            "run {}: direct sync {:.2} s ({} requests); publish Azurite {:.2} s, directory {:.2} s ({} packs, {:.1} MiB); pull Azurite {:.2} s ({} request), directory {:.2} s",
            run + 1,
            result.direct.as_secs_f64(),
            thousands(result.direct_requests),
            result.publish_azure.as_secs_f64(),
            result.publish_dir.as_secs_f64(),
            result.packs,
            mib(result.bytes),
            result.pull_azure.as_secs_f64(),
            result.pull_requests,
            result.pull_dir.as_secs_f64()
        ));
        results.push(result);
    }
    let med = |f: &dyn Fn(&Run) -> Duration| median(&results.iter().map(|r| f(r).as_secs_f64()).collect::<Vec<_>>());
    let (direct, pull_azure, pull_dir) = (med(&|r| r.direct), med(&|r| r.pull_azure), med(&|r| r.pull_dir));
    let (publish_azure, publish_dir) = (med(&|r| r.publish_azure), med(&|r| r.publish_dir));
    out.line("");
    out.line(format!(
        "median: direct full sync {direct:.2} s; pull from Azurite {pull_azure:.2} s = {:.2} x the direct sync ({:.1} x faster), from a directory {pull_dir:.2} s = {:.2} x; publish {publish_azure:.2} s to Azurite, {publish_dir:.2} s to a directory",
        pull_azure / direct,
        direct / pull_azure,
        pull_dir / direct
    ));
    let report = json!({
        "runs": runs,
        "direct_sync_s": round3(direct),
        "pull_azurite_s": round3(pull_azure),
        "pull_directory_s": round3(pull_dir),
        "publish_azurite_s": round3(publish_azure),
        "publish_directory_s": round3(publish_dir),
        "pull_over_direct": round3(pull_azure / direct),
        "packs": results[0].packs,
        "published_bytes": results[0].bytes,
        "direct_requests": results[0].direct_requests,
        "pull_requests": results[0].pull_requests,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}
