//! A version through the shared store at full scale: the direct full sync from the environment,
//! then publishing that cache to Azurite (Microsoft's Azure Storage emulator, on loopback) and to a
//! directory, then pulling into fresh caches from each — all in one run, so the ratios compare like
//! with like on a shared machine.
//!
//! Needs the pinned Azurite: `npm ci --prefix tests/azurite`.
//!
//! With `--latency-ms N`, afterwards: the same comparison once more for an environment whose every
//! response is N ms late (a wide-area link to F&O; the store stays on loopback, as a store in the
//! team's own region is near).
//!
//! `cargo bench -p d365meta --bench shared [-- [--runs N] [--latency-ms N] [--json]]`

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
    // The core reports where a pull's time went at debug level: shown on stderr.
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let only_pulls = Targets::new().with_target("d365meta::core", LevelFilter::DEBUG).with_default(LevelFilter::WARN);
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false).without_time().with_target(false);
    let _ = tracing_subscriber::registry().with(only_pulls).with(lines).try_init();
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
    direct_bytes: u64,
    pull_requests: u64,
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let out = Out::new(args.json);
    let runs = args.number("runs", 3).max(1);
    let dataset = Arc::new(Dataset::generate(Scale::Full));
    let sim = Simulator::start(
        "127.0.0.1".parse()?,
        vec![
            EnvironmentSpec::new("prod", dataset.clone()),
            EnvironmentSpec::new("team", dataset.clone()),
            EnvironmentSpec::new("far", dataset.clone()),
            EnvironmentSpec::new("far-team", dataset.clone()),
        ],
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
            direct_bytes: direct.bytes,
            pull_requests: pulled.requests,
        };
        out.line(format!(
            "run {}: direct sync {:.2} s ({} requests, {:.1} MiB); publish Azurite {:.2} s, directory {:.2} s ({} packs, {:.1} MiB); pull Azurite {:.2} s ({} request), directory {:.2} s",
            run + 1,
            result.direct.as_secs_f64(),
            thousands(result.direct_requests),
            mib(result.direct_bytes),
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
    let latency_ms = args.number("latency-ms", 0) as u64;
    let mut wide_area = serde_json::Value::Null;
    if latency_ms > 0 {
        let (far, far_team) = (sim.env(2), sim.env(3));
        for env in [&far, &far_team] {
            env.set_latency(Some(Duration::from_millis(latency_ms)));
        }
        let scratch = Scratch::new("shared-far");
        let (a, b) = (scratch.0.join("a.db"), scratch.0.join("b.db"));
        let url = "az://bench/far".to_owned();
        let connection = Some(emulator.connection_string());
        let (direct, direct_time) = timed_sync(&runtime, CacheOptions::new(&a), &far.base_url()).await?;
        let mut publisher = Cache::open(&runtime, with_store(&a, &url, connection.clone())).await?;
        publisher.publish(PublishOptions { versions: vec![] }).await?;
        drop(publisher);
        let (pulled, pull_time) = timed_sync(&runtime, with_store(&b, &url, connection), &far_team.base_url()).await?;
        anyhow::ensure!(name_of(&pulled.plan) == "pull", "the wide-area pull was {}", name_of(&pulled.plan));
        out.line(format!(
            "wide area, every F&O response {latency_ms} ms late: direct full sync {:.2} s ({} requests), pull from Azurite {:.2} s ({} request) = {:.1} x faster",
            direct_time.as_secs_f64(),
            thousands(direct.requests),
            pull_time.as_secs_f64(),
            pulled.requests,
            direct_time.as_secs_f64() / pull_time.as_secs_f64()
        ));
        wide_area = json!({
            "latency_ms": latency_ms,
            "direct_sync_s": round3(direct_time.as_secs_f64()),
            "pull_azurite_s": round3(pull_time.as_secs_f64()),
            "direct_requests": direct.requests,
            "pull_requests": pulled.requests,
        });
    }
    let report = json!({
        "wide_area": wide_area,
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
        "direct_bytes": results[0].direct_bytes,
        "pull_requests": results[0].pull_requests,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}
