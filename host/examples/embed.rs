//! Embedding the core: open a cache, sync an environment, look up and search, from Rust.
//!
//! Runs against the simulator on loopback, so it needs no F&O environment:
//! `cargo run -p d365meta --example embed`. For a real environment, give `Cache::sync` its base URL
//! and an `Authenticator` with credentials in the `CacheOptions`.

use d365meta::cache::{LabelLanguages, ReadOptions, SearchFilters, SearchQuery, Strategy, SyncOptions};
use d365meta::{Cache, CacheOptions, Runtime, RuntimeConfig};
use d365meta_simulator::{Dataset, EnvironmentSpec, Scale, Simulator};
use std::sync::Arc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let simulator =
        Simulator::start("127.0.0.1".parse()?, vec![EnvironmentSpec::new("contoso", Arc::new(Dataset::generate(Scale::Tiny)))]).await?;
    let base_url = simulator.env(0).base_url();
    let database = std::env::temp_dir().join(format!("d365meta-embed-{}.db", std::process::id()));

    // One runtime per process: it compiles (or loads) the component and enforces its limits.
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let mut cache = Cache::open(&runtime, CacheOptions::new(&database)).await?;

    let options = SyncOptions { strategy: Strategy::Auto, languages: vec!["en-US".into()], drop_languages: vec![], dry_run: false };
    let report = cache.sync(&base_url, options).await?;
    println!("synced {base_url}: {} requests, {} public entities", report.requests, report.counts.map_or(0, |c| c.public_entities));

    // Every answer is a WIT record; serde turns it into the JSON the command line prints.
    let read =
        ReadOptions { base_url: Some(base_url.clone()), labels: Some(LabelLanguages { language: "en-US".into(), fallback: vec![] }) };
    let customers = cache.get_entity("CustomersV3", read.clone()).await?;
    if let Some(entity) = &customers.public_entity {
        let keys: Vec<&str> = entity.properties.iter().filter(|p| p.is_key).map(|p| p.name.as_str()).collect();
        println!("{} ({:?}): keys {}", entity.name, entity.label, keys.join(", "));
    }
    let filters =
        SearchFilters { category: None, read_only: None, data_service_enabled: None, data_management_enabled: None, entity: None };
    let hits = cache.search(SearchQuery { text: "customer group".into(), kinds: vec![], filters, limit: 3, offset: 0 }, read).await?;
    println!("{}", serde_json::to_string_pretty(&hits)?);

    drop(cache);
    simulator.shutdown().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", database.display()));
    }
    let _ = std::fs::remove_dir_all(format!("{}.locks", database.display()));
    Ok(())
}
