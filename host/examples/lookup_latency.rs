//! Read latency through the Rust host, in process: the floor against which `node/bench/compare.js`
//! measures the Node host and `node/bench/mcp.js` the MCP server, in the same run.
//!
//! `cargo run --release -p d365meta --example lookup_latency -- DATABASE BASE_URL ROUNDS entity NAME...`
//! times entity lookups with en-US labels; `... ROUNDS search ARGS...` times searches, each ARGS a
//! JSON object shaped as the MCP `search` tool's arguments (`text`, `kinds`, `category`,
//! `read_only`, `data_service_enabled`, `data_management_enabled`, `entity`, `language`; limit 20).
//! Prints `{"samples": N, "median_us": ..., "p90_us": ..., "p99_us": ...}`: each call timed from
//! the call to its answer, after one warm-up round.

use d365meta::cache::{LabelLanguages, ObjectKind, ReadOptions, SearchFilters, SearchQuery};
use d365meta::imports::store::Access;
use d365meta::{Cache, CacheOptions, Runtime, RuntimeConfig};
use serde_json::Value as Json;
use std::time::Instant;

enum Call {
    Entity(String),
    Search(SearchQuery, ReadOptions),
}

fn labels(language: &str) -> Option<LabelLanguages> {
    Some(LabelLanguages { language: language.into(), fallback: vec![] })
}

fn search(base_url: &str, json: &str) -> anyhow::Result<Call> {
    let args: Json = serde_json::from_str(json)?;
    let text = |key: &str| args.get(key).and_then(Json::as_str).map(str::to_owned);
    let flag = |key: &str| args.get(key).and_then(Json::as_bool);
    let kinds = args.get("kinds").and_then(Json::as_array).cloned().unwrap_or_default();
    let kinds = kinds
        .iter()
        .map(|k| match k.as_str() {
            Some("data-entity") => Ok(ObjectKind::DataEntity),
            Some("public-entity") => Ok(ObjectKind::PublicEntity),
            Some("enumeration") => Ok(ObjectKind::Enumeration),
            Some("action") => Ok(ObjectKind::Action),
            Some("property") => Ok(ObjectKind::Property),
            _ => anyhow::bail!("unknown kind {k}"),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let query = SearchQuery {
        text: text("text").ok_or_else(|| anyhow::anyhow!("a search needs text: {json}"))?,
        kinds,
        filters: SearchFilters {
            category: text("category"),
            read_only: flag("read_only"),
            data_service_enabled: flag("data_service_enabled"),
            data_management_enabled: flag("data_management_enabled"),
            entity: text("entity"),
        },
        limit: 20,
        offset: 0,
    };
    Ok(Call::Search(query, ReadOptions { base_url: Some(base_url.to_owned()), labels: text("language").as_deref().and_then(labels) }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [database, base_url, rounds, mode, items @ ..] = args.as_slice() else {
        anyhow::bail!("usage: lookup_latency DATABASE BASE_URL ROUNDS entity NAME... | search JSON...");
    };
    let rounds: usize = rounds.parse()?;
    let calls = match mode.as_str() {
        "entity" => items.iter().map(|n| Ok(Call::Entity(n.clone()))).collect::<anyhow::Result<Vec<_>>>()?,
        "search" => items.iter().map(|json| search(base_url, json)).collect::<anyhow::Result<Vec<_>>>()?,
        other => anyhow::bail!("unknown mode {other:?} (entity or search)"),
    };
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let mut options = CacheOptions::new(database);
    options.access = Access::ReadOnly;
    let mut cache = Cache::open(&runtime, options).await?;
    let read = ReadOptions { base_url: Some(base_url.clone()), labels: labels("en-US") };
    let mut samples = Vec::with_capacity(rounds * calls.len());
    for round in 0..=rounds {
        for call in &calls {
            let started = Instant::now();
            match call {
                Call::Entity(name) => {
                    let found = cache.get_entity(name, read.clone()).await?;
                    anyhow::ensure!(found.public_entity.is_some() || found.data_entity.is_some(), "{name} is not in the cache");
                }
                Call::Search(query, read) => {
                    cache.search(query.clone(), read.clone()).await?;
                }
            }
            let took = started.elapsed();
            if round > 0 {
                samples.push(took.as_secs_f64() * 1e6);
            }
        }
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!("{}", serde_json::json!({ "samples": samples.len(), "median_us": at(0.5), "p90_us": at(0.9), "p99_us": at(0.99) }));
    Ok(())
}
