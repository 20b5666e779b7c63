//! Entity lookup latency through the Rust host, for `node/bench/compare.js`, which measures the
//! same lookups through the Node host in the same run.
//!
//! `cargo run --release -p d365meta --example lookup_latency -- DATABASE BASE_URL ROUNDS NAME...`
//! prints `{"samples": N, "median_us": ..., "p90_us": ...}`: each lookup timed from the call to
//! its answer, after one warm-up round.

use d365meta::cache::{LabelLanguages, ReadOptions};
use d365meta::imports::store::Access;
use d365meta::{Cache, CacheOptions, Runtime, RuntimeConfig};
use std::time::Instant;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [database, base_url, rounds, names @ ..] = args.as_slice() else {
        anyhow::bail!("usage: lookup_latency DATABASE BASE_URL ROUNDS NAME...");
    };
    let rounds: usize = rounds.parse()?;
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let mut options = CacheOptions::new(database);
    options.access = Access::ReadOnly;
    let mut cache = Cache::open(&runtime, options).await?;
    let read =
        ReadOptions { base_url: Some(base_url.clone()), labels: Some(LabelLanguages { language: "en-US".into(), fallback: vec![] }) };
    let mut samples = Vec::with_capacity(rounds * names.len());
    for round in 0..=rounds {
        for name in names {
            let started = Instant::now();
            let found = cache.get_entity(name, read.clone()).await?;
            let took = started.elapsed();
            anyhow::ensure!(found.public_entity.is_some() || found.data_entity.is_some(), "{name} is not in the cache");
            if round > 0 {
                samples.push(took.as_secs_f64() * 1e6);
            }
        }
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!("{}", serde_json::json!({ "samples": samples.len(), "median_us": at(0.5), "p90_us": at(0.9) }));
    Ok(())
}
