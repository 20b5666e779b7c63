//! Latency of `diff` between two `full`-scale versions that differ in 5 % of their public entities
//! (200 of 4,000, plus the entities, data entities and enumerations the simulator's evolution adds,
//! removes and changes with them), through the real component and host, against a lower bound on
//! the same database file: the core's own code run natively (the same code and SQL, without the
//! component boundary).
//!
//! Setup (untimed): the `full` scale and its evolution served by the simulator, synced into a
//! temporary database (the first in full, the second incrementally), labels in en-US. Measured,
//! after one warm-up call each, in alternating order: the whole diff, and `--only breaking`.
//!
//! `cargo bench -p d365meta --bench diff [-- [--rounds N] [--json]]`

mod common;

use common::*;
use d365meta::cache::{DiffOptions, DiffSide};
use d365meta_guest::native::SqliteStore;
use d365meta_guest::wit::types as core_types;
use d365meta_simulator::{Dataset, EnvironmentSpec, Scale, Simulator};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Public entities the newer version changes: 5 % of the `full` scale's 4,000.
const CHANGED: usize = 200;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench(args))
}

fn options(only_breaking: bool) -> DiffOptions {
    DiffOptions { kinds: vec![], entity: None, only_breaking, label_languages: vec![] }
}

fn core_options(only_breaking: bool) -> core_types::DiffOptions {
    core_types::DiffOptions { kinds: vec![], entity: None, only_breaking, label_languages: vec![] }
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let out = Out::new(args.json);
    let rounds = args.number("rounds", 30).max(1);

    let v1 = Arc::new(Dataset::generate(Scale::Full));
    let (v2, evolution) = v1.evolve(29, CHANGED);
    let sim =
        Simulator::start("127.0.0.1".parse()?, vec![EnvironmentSpec::new("old", v1.clone()), EnvironmentSpec::new("new", Arc::new(v2))])
            .await?;
    let (old, new) = (sim.env(0).base_url(), sim.env(1).base_url());
    let (runtime, _) = runtime()?;
    let scratch = Scratch::new("diff");
    let db = scratch.db();
    let (mut cache, _) = open(&runtime, &db, None).await?;
    let (first, _) = sync(&mut cache, &old).await?;
    let (second, _) = sync(&mut cache, &new).await?;
    drop(sim);
    let store = SqliteStore::open(&db)?;
    let ctx = d365meta_guest::Ctx { http: &d365meta_guest::native::Offline, store: &store, host: &d365meta_guest::native::Quiet };
    let (a, b) = (DiffSide::Environment(old.clone()), DiffSide::Environment(new.clone()));
    let (core_a, core_b) = (core_types::DiffSide::Environment(old.clone()), core_types::DiffSide::Environment(new.clone()));

    // The same answer both ways before anything is timed.
    let whole = cache.diff(a.clone(), b.clone(), options(false)).await?;
    let native = d365meta_guest::read::diff::diff(ctx.store, &core_a, &core_b, &core_options(false))?;
    anyhow::ensure!(
        whole.objects.len() == native.objects.len() && whole.unchanged == native.unchanged,
        "component and core natively disagree: {} / {} objects",
        whole.objects.len(),
        native.objects.len()
    );

    // Where the core natively spends a diff: finding what differs, and reading it.
    let snapshots: Vec<i64> = {
        let conn = rusqlite::Connection::open(&db)?;
        let mut stmt = conn.prepare("SELECT snapshot_id FROM environments ORDER BY id")?;
        stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
    };
    let started = Instant::now();
    let (pairs, _) = d365meta_guest::read::diff::differing(ctx.store, snapshots[0], snapshots[1])?;
    let find_time = started.elapsed();
    let public = pairs.iter().filter(|p| p.kind == d365meta_guest::metadata::Kind::PublicEntity);
    let compared: Vec<(i64, i64)> = public.filter_map(|p| Some((p.a?, p.b?))).collect();
    let started = Instant::now();
    let read = d365meta_guest::read::entities::public_entities_to_compare(ctx.store, &compared)?;
    let read_time = started.elapsed();
    let differ_rows = pairs.len();
    out.line(format!(
        "core natively: finding the {differ_rows} differing objects {:.1} ms; reading the {} changed public entities among them to compare {:.1} ms",
        find_time.as_secs_f64() * 1e3,
        read.len(),
        read_time.as_secs_f64() * 1e3
    ));

    let mut results = Vec::new();
    for only_breaking in [false, true] {
        let (mut component, mut core) = (Vec::new(), Vec::new());
        for round in 0..=rounds {
            for native_first in if round % 2 == 0 { [true, false] } else { [false, true] } {
                let started = Instant::now();
                if native_first {
                    d365meta_guest::read::diff::diff(ctx.store, &core_a, &core_b, &core_options(only_breaking))?;
                } else {
                    cache.diff(a.clone(), b.clone(), options(only_breaking)).await?;
                }
                let took: Duration = started.elapsed();
                if round > 0 {
                    if native_first { core.push(took) } else { component.push(took) }
                }
            }
        }
        results.push((only_breaking, Percentiles::of(&component), Percentiles::of(&core)));
    }

    out.line(format!(
        "d365meta diff bench: scale full, {} CPU(s); version A {} requests, version B {} (plan {}), {} public entities changed by the evolution",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        thousands(first.requests),
        thousands(second.requests),
        d365meta::bindings::name_of(&second.plan),
        evolution.changed_public_entities.len(),
    ));
    out.line(format!(
        "answer: {} objects differ ({} breaking), {} unchanged objects skipped by hash; {} modules changed",
        whole.objects.len(),
        whole.objects.iter().filter(|o| o.breaking).count(),
        thousands(whole.unchanged),
        whole.modules.changed.len()
    ));
    let mut json_rows = Vec::new();
    for (only_breaking, c, k) in &results {
        let title = if *only_breaking { "diff --only breaking" } else { "diff" };
        out.line(format!(
            "{title:<22} component p50 {:>8.1} ms  p99 {:>8.1} ms | core natively p50 {:>8.1} ms  p99 {:>8.1} ms | ratio p50 {:.2}",
            c.p50 / 1e3,
            c.p99 / 1e3,
            k.p50 / 1e3,
            k.p99 / 1e3,
            c.p50 / k.p50
        ));
        json_rows.push(json!({ "name": title, "component": c.json(), "core_native": k.json() }));
    }
    let summary = json!({
        "scale": "full",
        "changed_public_entities": evolution.changed_public_entities.len(),
        "objects": whole.objects.len(),
        "unchanged": whole.unchanged,
        "rounds": rounds,
        "results": json_rows,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    Ok(())
}
