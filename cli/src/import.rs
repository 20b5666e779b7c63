//! `d365meta import`: the versions in a d365fo-client metadata cache, brought into this cache
//! without asking any environment.

use super::Context;
use super::output::print_json;
use super::sync::to_json;
use d365meta::cache::{CoreError, ErrorKind, Strategy, SyncOptions};
use d365meta::import::D365foClientCache;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// d365fo-client's `metadata_v2.db`, or the directory holding it (by default
    /// `~/.cache/d365fo-client` on Linux).
    #[arg(value_name = "FILE_OR_DIR")]
    source: PathBuf,
}

pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let invalid = |message: String| anyhow::Error::from(CoreError { kind: ErrorKind::InvalidInput, message });
    let source = D365foClientCache::open(&args.source).map_err(invalid)?;
    let versions = source.versions().map_err(invalid)?;
    let problems = source.problems(&versions).map_err(invalid)?;
    let (_runtime, mut cache) = ctx.open().await?;
    let mut imported = Vec::new();
    for version in versions.iter().filter(|v| !v.environments.is_empty()) {
        let recording = Arc::new(source.recording(version.id).map_err(invalid)?);
        let mut environments = Vec::new();
        for base_url in &version.environments {
            let options =
                SyncOptions { strategy: Strategy::Auto, languages: version.languages.clone(), drop_languages: vec![], dry_run: false };
            let report = cache.sync_replayed(base_url, recording.clone(), options).await?;
            if report.modules_hash != version.modules_hash {
                tracing::warn!(
                    "{base_url}: the modules hash computed here ({}) differs from the one d365fo-client recorded ({})",
                    report.modules_hash,
                    version.modules_hash
                );
            }
            environments.push(report);
        }
        imported.push((version, environments));
    }
    if ctx.json {
        print_json(&json!({
            "source": source.path(),
            "versions": imported.iter().map(|(v, reports)| json!({
                "modules_hash": v.modules_hash,
                "same_hash": reports.iter().all(|r| r.modules_hash == v.modules_hash),
                "languages": v.languages,
                "environments": reports.iter().map(to_json).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "problems": {
                "orphaned": problems.orphaned.iter().map(|(table, rows)| json!({"table": table, "rows": rows})).collect::<Vec<_>>(),
                "versions_without_environment": problems.versions_without_environment,
            },
        }));
        return Ok(());
    }
    println!("From {}:", source.path().display());
    for (version, reports) in &imported {
        let same = if reports.iter().all(|r| r.modules_hash == version.modules_hash) {
            "same hash as d365fo-client's"
        } else {
            "a different hash than d365fo-client's"
        };
        println!(
            "  version {} ({same}), languages {}",
            &version.modules_hash[..version.modules_hash.len().min(12)],
            version.languages.join(", ")
        );
        for r in reports {
            let counts = r.counts.as_ref().map(super::sync::describe_counts).unwrap_or_default();
            println!("    {} ({}): {counts}", r.base_url, d365meta::bindings::name_of(&r.plan));
            for w in &r.warnings {
                println!("      warning: {w}");
            }
        }
    }
    for (table, rows) in &problems.orphaned {
        println!("  not imported: {rows} row(s) of {table} that belong to nothing");
    }
    for hash in &problems.versions_without_environment {
        println!("  not imported: version {hash}, which no environment recorded");
    }
    println!("Nothing was asked of any environment; {} was only read.", source.path().display());
    Ok(())
}
