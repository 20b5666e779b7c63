//! A full sync of the `full` simulator scale, through the real component and host over loopback
//! HTTP, against the lower bound of fetching exactly the same requests without the cache.
//!
//! Each run: a fresh SQLite file; the full sync of environment `prod` with labels in en-US; the
//! database size; then, in the same database, a second environment with the same modules (`uat`,
//! a link: one request) and an incremental sync of an evolved environment (`next`,
//! `dataset.evolve(29, N)`: N public entities changed, `--changed N`, default 200 of 4,000, the 5 %
//! of the process bench). Each run also measures the lower bound: the three collections and
//! every label of `prod` fetched with reqwest at the host's concurrency, every body read and
//! dropped. And the same full sync by the core natively (`d365meta-guest` with its `native`
//! feature: the same code and SQL, over the host's SQLite backend and reqwest, without the
//! component and host). And the physical floor (`floor/loader.rs`): the same requests, parsed with
//! serde_json and their rows inserted into a fresh SQLite file with one prepared statement per table
//! in one transaction, no search index. The order of the four is rotated from run to run so that
//! drift on a shared machine hits all.
//!
//! With `--latency-ms N`, afterwards: one full sync of a fourth environment whose every response
//! waits N ms (a wide-area link), in a fresh database, against fetch-only over the same link, with
//! the number of requests in flight the host settled at.
//!
//! `cargo bench -p d365meta --bench sync [-- [--runs N] [--changed N] [--latency-ms N] [--json]]`

mod common;
#[path = "floor/loader.rs"]
mod floor;

use common::*;
use d365meta::bindings::name_of;
use d365meta::cache::{Plan, SnapshotCounts, SyncReport};
use d365meta::imports::http::HttpOptions;
use d365meta_simulator::{Dataset, EnvironmentSpec, Scale, SimEnv, Simulator};
use futures_util::StreamExt;
use serde_json::{Value as Json, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LANGUAGE: &str = "en-US";
const COLLECTIONS: [&str; 3] = ["DataEntities", "PublicEntities", "PublicEnumerations"];

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench(args))
}

/// What the lower bound did in one run.
struct FetchOnly {
    total: Duration,
    collections: Vec<Duration>,
    labels: Duration,
    requests: u64,
    bytes: u64,
    /// Label answers that were 404 (the service has no text).
    not_found: u64,
}

/// One full sync and what followed it in the same database.
struct FullRun {
    open: Duration,
    sync: Duration,
    report: SyncReport,
    db_open: (u64, u64),
    db_closed: u64,
    segments: Vec<(String, Duration)>,
    label_wait: Duration,
    label_after: Duration,
    label_batches: usize,
    /// Label requests that reached the simulator before the labels phase began.
    label_early: usize,
    reopen: Duration,
    link: (SyncReport, Duration),
    incremental: (SyncReport, Duration),
    db_final: u64,
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let out = Out::new(args.json);
    let runs = args.number("runs", 3).max(1);

    let started = Instant::now();
    let dataset = Arc::new(Dataset::generate(Scale::Full));
    let changed = args.number("changed", 200);
    let (evolved, evolution) = dataset.evolve(29, changed);
    let evolved = Arc::new(evolved);
    let generated = started.elapsed();
    let label_ids: Vec<String> = dataset.label_ids().into_iter().collect();
    let labels_with_text = label_ids.iter().filter(|id| dataset.labels.get(id, LANGUAGE).is_some()).count();
    let new_label_ids = evolved.label_ids().difference(&dataset.label_ids()).count();

    let sim = Simulator::start(
        "127.0.0.1".parse()?,
        vec![
            EnvironmentSpec::new("prod", dataset.clone()),
            EnvironmentSpec::new("uat", dataset.clone()),
            EnvironmentSpec::new("next", evolved.clone()),
            EnvironmentSpec::new("far", dataset.clone()),
        ],
    )
    .await?;
    let (prod, uat, next) = (sim.env(0), sim.env(1), sim.env(2));
    let (runtime, runtime_load) = runtime()?;

    let concurrency = HttpOptions::default().max_concurrency;
    let client = client()?;
    // Warm-up, untimed: the simulator serialises each collection on first use (once per dataset),
    // and the first connections are opened.
    let warm_started = Instant::now();
    for env in [&prod, &next] {
        for c in COLLECTIONS {
            get(&client, &format!("{}/Metadata/{c}", env.base_url())).await?;
        }
    }
    fetch_labels(&client, &prod.base_url(), &label_ids[..label_ids.len().min(512)], concurrency).await?;
    let warm_up = warm_started.elapsed();

    out.line(format!(
        "d365meta sync bench: scale full, labels {LANGUAGE}, {runs} run(s), {} CPU(s) available",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    ));
    out.line(format!(
        "dataset: {} data entities, {} public entities, {} properties, {} enumerations, {} label ids ({} with en-US text); generated in {:.1} s",
        thousands(dataset.data_entities.len() as u64),
        thousands(dataset.public_entities.len() as u64),
        thousands(dataset.property_count() as u64),
        thousands(dataset.enumerations.len() as u64),
        thousands(label_ids.len() as u64),
        thousands(labels_with_text as u64),
        generated.as_secs_f64()
    ));
    out.line(format!(
        "runtime: component loaded in {:.0} ms; simulator warm-up (collections serialised, connections opened) {:.1} s",
        runtime_load.as_secs_f64() * 1e3,
        warm_up.as_secs_f64()
    ));
    out.line(format!("database directory: {}", std::env::temp_dir().display()));
    out.line("");

    let mut fetches = Vec::new();
    let mut fulls = Vec::new();
    let mut natives = Vec::new();
    let mut floors = Vec::new();
    let label_urls: Vec<String> = label_ids.iter().map(|id| label_url(&prod.base_url(), id)).collect();
    for run in 0..runs {
        // The four measurements of a run, in an order rotated from run to run.
        for step in 0..4 {
            match (run + step) % 4 {
                0 => fetches.push(fetch_only(&client, &prod.base_url(), &label_ids, concurrency).await?),
                1 => fulls.push(full_run(&runtime, &prod, &uat, &next).await?),
                2 => natives.push(native_run(&prod, &client, concurrency).await?),
                _ => {
                    let scratch = Scratch::new("floor");
                    floors.push(floor::run(&client, &prod.base_url(), &label_urls, concurrency, &scratch.db()).await?);
                }
            }
        }
        let (f, s, n) = (fetches.last().unwrap(), fulls.last().unwrap(), natives.last().unwrap());
        out.line(format!(
            "run {}: full sync {:.2} s ({} requests), core natively {:.2} s, floor loader {:.2} s, fetch-only {:.2} s ({} requests), ratio sync/fetch {:.2}; link {:.1} ms ({} request(s)); incremental {:.2} s ({} requests)",
            run + 1,
            s.sync.as_secs_f64(),
            s.report.requests,
            n.sync.as_secs_f64(),
            floors.last().unwrap().total.as_secs_f64(),
            f.total.as_secs_f64(),
            f.requests,
            s.sync.as_secs_f64() / f.total.as_secs_f64(),
            s.link.1.as_secs_f64() * 1e3,
            s.link.0.requests,
            s.incremental.1.as_secs_f64(),
            s.incremental.0.requests,
        ));
    }

    // ---- the report ----
    let secs = |d: &Duration| d.as_secs_f64();
    let sync_times: Vec<f64> = fulls.iter().map(|r| secs(&r.sync)).collect();
    let fetch_times: Vec<f64> = fetches.iter().map(|r| secs(&r.total)).collect();
    let ratios: Vec<f64> = fulls.iter().zip(&fetches).map(|(s, f)| secs(&s.sync) / secs(&f.total)).collect();
    let (m_sync, m_fetch) = (median(&sync_times), median(&fetch_times));
    let first = &fulls[0];
    let f0 = &fetches[0];
    out.line("");
    out.line(format!("full sync, fresh database (median of {runs}):"));
    out.line(format!(
        "  wall time              {:>9.2} s   (runs: {})",
        m_sync,
        sync_times.iter().map(|t| format!("{t:.2}")).collect::<Vec<_>>().join(", ")
    ));
    out.line(format!(
        "  fetch-only lower bound {:>9.2} s   (runs: {}; collections {:.2} s, labels {:.2} s in the median run)",
        m_fetch,
        fetch_times.iter().map(|t| format!("{t:.2}")).collect::<Vec<_>>().join(", "),
        median(&fetches.iter().map(|f| secs(&f.collections.iter().sum::<Duration>())).collect::<Vec<_>>()),
        median(&fetches.iter().map(|f| secs(&f.labels)).collect::<Vec<_>>()),
    ));
    out.line(format!(
        "  ratio sync/fetch-only  {:>9.2}     (median of per-run ratios; ratio of medians {:.2})",
        median(&ratios),
        m_sync / m_fetch
    ));
    let native_times: Vec<f64> = natives.iter().map(|r| secs(&r.sync)).collect();
    let native_ratios: Vec<f64> = fulls.iter().zip(&natives).map(|(s, n)| secs(&s.sync) / secs(&n.sync)).collect();
    out.line(format!(
        "  core natively          {:>9.2} s   (runs: {}; the same code and SQL without the component, {} requests)",
        median(&native_times),
        native_times.iter().map(|t| format!("{t:.2}")).collect::<Vec<_>>().join(", "),
        natives[0].requests
    ));
    out.line(format!(
        "  ratio sync/native core {:>9.2}     (median of per-run ratios; ratio of medians {:.2})",
        median(&native_ratios),
        m_sync / median(&native_times)
    ));
    let floor_times: Vec<f64> = floors.iter().map(|r| secs(&r.total)).collect();
    let floor_ratios: Vec<f64> = fulls.iter().zip(&floors).map(|(s, f)| secs(&s.sync) / secs(&f.total)).collect();
    let m_floor = median(&floor_times);
    out.line(format!(
        "  floor loader           {:>9.2} s   (runs: {}; fetch, parse with serde_json, insert the same {} rows, one transaction, no search index; database {:.1} MiB)",
        m_floor,
        floor_times.iter().map(|t| format!("{t:.2}")).collect::<Vec<_>>().join(", "),
        thousands(floors[0].rows),
        mib(floors[0].db_bytes)
    ));
    out.line(format!(
        "  ratio sync/floor       {:>9.2}     (median of per-run ratios; ratio of medians {:.2})",
        median(&floor_ratios),
        m_sync / m_floor
    ));
    out.line(format!(
        "  open (fresh database, schema migrations) {:.1} ms median",
        median(&fulls.iter().map(|r| secs(&r.open) * 1e3).collect::<Vec<_>>())
    ));
    out.line(format!(
        "  requests               {:>9}     (fetch-only: {} = 3 collections + {} labels; {} labels answered 404)",
        thousands(first.report.requests),
        thousands(f0.requests),
        thousands(label_ids.len() as u64),
        thousands(f0.not_found)
    ));
    out.line(format!("  bytes (bodies)         {:>9.1} MiB (fetch-only: {:.1} MiB)", mib(first.report.bytes), mib(f0.bytes)));
    out.line(format!(
        "  database               {:>9.1} MiB + {:.1} MiB -wal while open; {:.1} MiB after close",
        mib(first.db_open.0),
        mib(first.db_open.1),
        mib(first.db_closed)
    ));
    if let Some(c) = &first.report.counts {
        out.line(format!("  snapshot               {}", describe_counts(c)));
    }
    out.line(format!(
        "  plan                   {} ({}); phases: {}",
        name_of(&first.report.plan),
        first.report.reason,
        phases_text(&first.report)
    ));

    out.line("");
    out.line(format!("time per phase, median of {runs} (from progress events and the simulator's request log), seconds:"));
    out.line(format!("  {:<66} {:>9} {:>7} {:>9} {:>7} {:>9} {:>7}", "", "component", "share", "native", "ratio", "floor", "ratio"));
    let names: Vec<String> = first.segments.iter().map(|(n, _)| n.clone()).collect();
    let m_native = median(&native_times);
    let mut segments_json = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let values: Vec<f64> = fulls.iter().filter_map(|r| r.segments.get(i)).map(|(_, d)| secs(d)).collect();
        let native_values: Vec<f64> = natives.iter().filter_map(|r| r.segments.get(i)).map(|(_, d)| secs(d)).collect();
        let (m, n) = (median(&values), median(&native_values));
        let floor_values: Vec<f64> = floors.iter().filter_map(|f| floor_phase(name, f)).map(|d| secs(&d)).collect();
        let (floor_text, floor_json) = if floor_values.is_empty() {
            (format!("{:>9} {:>7}", "", ""), Json::Null)
        } else {
            let f = median(&floor_values);
            (format!("{f:>9.3} {:>7.2}", m / f), json!(round3(f)))
        };
        out.line(format!("  {:<66} {:>9.3} {:>6.1}% {:>9.3} {:>7.2} {floor_text}", name, m, 100.0 * m / m_sync, n, m / n));
        segments_json.push(json!({"phase": name, "median_s": round3(m), "native_median_s": round3(n), "floor_median_s": floor_json}));
    }
    out.line(format!(
        "  {:<66} {:>9.3} {:>6.1}% {:>9.3} {:>7.2} {:>9.3} {:>7.2}",
        "total",
        m_sync,
        100.0,
        m_native,
        m_sync / m_native,
        m_floor,
        m_sync / m_floor
    ));
    let wait = median(&fulls.iter().map(|r| secs(&r.label_wait)).collect::<Vec<_>>());
    let after = median(&fulls.iter().map(|r| secs(&r.label_after)).collect::<Vec<_>>());
    let native_wait = median(&natives.iter().map(|r| secs(&r.label_wait)).collect::<Vec<_>>());
    let native_after = median(&natives.iter().map(|r| secs(&r.label_after)).collect::<Vec<_>>());
    out.line(format!(
        "    labels: {} of {} requests reached the simulator before the labels phase, answered while the entities were written; then {} batches: until each batch's last request reached the simulator {:.3} s (native {:.3} s);",
        thousands(first.label_early as u64), thousands(label_ids.len() as u64), first.label_batches, wait, native_wait
    ));
    out.line(format!("    after it (last answers, component, SQLite) {after:.3} s (native {native_after:.3} s)"));

    let link_times: Vec<f64> = fulls.iter().map(|r| secs(&r.link.1) * 1e3).collect();
    let incr_times: Vec<f64> = fulls.iter().map(|r| secs(&r.incremental.1)).collect();
    let (link, incr) = (&first.link.0, &first.incremental.0);
    out.line("");
    out.line(format!(
        "second environment, same modules: {:.1} ms median (runs: {}), {} request(s), plan {} ({})",
        median(&link_times),
        link_times.iter().map(|t| format!("{t:.1}")).collect::<Vec<_>>().join(", "),
        link.requests,
        name_of(&link.plan),
        link.reason
    ));
    out.line(format!(
        "incremental, evolve(29, {changed}): {:.2} s median (runs: {}), {} requests, {:.1} MiB, plan {} ({})",
        median(&incr_times),
        incr_times.iter().map(|t| format!("{t:.2}")).collect::<Vec<_>>().join(", "),
        thousands(incr.requests),
        mib(incr.bytes),
        name_of(&incr.plan),
        incr.reason
    ));
    out.line(format!(
        "  evolution: {} public entities changed, {} added, {} removed; {} data entities changed, {} added; {} enumerations changed; {} new label ids",
        evolution.changed_public_entities.len(),
        evolution.added_public_entities.len(),
        evolution.removed_public_entities.len(),
        evolution.changed_data_entities.len(),
        evolution.added_data_entities.len(),
        evolution.changed_enumerations.len(),
        new_label_ids
    ));
    out.line(format!("  phases: {}", phases_text(incr)));
    out.line(format!(
        "  reopen (existing database) {:.1} ms median; database after the three syncs, closed: {:.1} MiB",
        median(&fulls.iter().map(|r| secs(&r.reopen) * 1e3).collect::<Vec<_>>()),
        mib(first.db_final)
    ));

    // Where the native core spends a full and an incremental sync, statement by statement.
    let profiles = native_profiles(&prod, &next, &client, concurrency).await?;
    let mut profiles_json = Vec::new();
    for (what, profile) in ["full sync".to_owned(), format!("incremental sync, evolve(29, {changed})")].iter().zip(&profiles) {
        let in_statements: Duration = profile.statements.iter().map(|(_, s)| s.time).sum();
        out.line("");
        out.line(format!(
            "core natively, {what} (plan {}) by statement: {:.3} s, {:.3} s of it in statements; {:.3} s outside them (parsing, hashing, building rows, waiting for answers):",
            profile.plan,
            secs(&profile.sync),
            secs(&in_statements),
            secs(&profile.outside)
        ));
        out.line("  share   seconds      calls       rows  statement");
        let mut statements_json = Vec::new();
        for (key, spent) in &profile.statements {
            if statements_json.len() < 12 {
                out.line(format!(
                    "  {:>4.1} % {:>8.3} {:>10} {:>10}  {}",
                    secs(&spent.time) / secs(&profile.sync) * 100.0,
                    secs(&spent.time),
                    thousands(spent.calls),
                    thousands(spent.rows),
                    key.chars().take(150).collect::<String>()
                ));
            }
            statements_json.push(json!({"statement": key, "calls": spent.calls, "rows": spent.rows, "s": round3(secs(&spent.time))}));
        }
        out.line(format!("  ({} statements in all; the first 12 shown)", profile.statements.len()));
        profiles_json.push(json!({
            "sync": what, "plan": profile.plan, "s": round3(secs(&profile.sync)), "in_statements_s": round3(secs(&in_statements)),
            "outside_statements_s": round3(secs(&profile.outside)), "statements": statements_json,
        }));
    }

    let latency_ms = args.number("latency-ms", 0) as u64;
    let mut wide_area = Json::Null;
    if latency_ms > 0 {
        let far = sim.env(3);
        far.set_latency(Some(Duration::from_millis(latency_ms)));
        let scratch = Scratch::new("far");
        let (mut cache, _) = open(&runtime, &scratch.db(), None).await?;
        let (report, took) = sync(&mut cache, &far.base_url()).await?;
        let totals = cache.http_totals();
        drop(cache);
        let fetch = fetch_only(&client, &far.base_url(), &label_ids, concurrency).await?;
        out.line("");
        out.line(format!("wide area: every response {latency_ms} ms late"));
        out.line(format!(
            "  full sync              {:>9.1} s   {} requests, {} retries; requests in flight: {} at the end, at most {}, cut {} time(s)",
            secs(&took),
            thousands(report.requests),
            thousands(totals.retries),
            totals.concurrency,
            totals.peak_concurrency,
            totals.concurrency_cuts
        ));
        out.line(format!(
            "  fetch-only             {:>9.1} s   {} requests, {concurrency} in flight; ratio {:.2}",
            secs(&fetch.total),
            thousands(fetch.requests),
            secs(&took) / secs(&fetch.total)
        ));
        wide_area = json!({
            "latency_ms": latency_ms,
            "full_sync_s": round3(secs(&took)),
            "requests": report.requests,
            "retries": totals.retries,
            "concurrency_end": totals.concurrency,
            "concurrency_peak": totals.peak_concurrency,
            "concurrency_cuts": totals.concurrency_cuts,
            "fetch_only_s": round3(secs(&fetch.total)),
            "fetch_only_concurrency": concurrency,
        });
    }

    if args.json {
        let report = json!({
            "wide_area": wide_area,
            "bench": "sync",
            "scale": "full",
            "language": LANGUAGE,
            "runs": runs,
            "dataset": {
                "data_entities": dataset.data_entities.len(),
                "public_entities": dataset.public_entities.len(),
                "properties": dataset.property_count(),
                "enumerations": dataset.enumerations.len(),
                "label_ids": label_ids.len(),
                "generate_s": round3(generated.as_secs_f64()),
            },
            "full_sync": {
                "wall_s": sync_times.iter().map(|t| round3(*t)).collect::<Vec<_>>(),
                "median_s": round3(m_sync),
                "requests": first.report.requests,
                "bytes": first.report.bytes,
                "db_bytes_open": first.db_open.0,
                "wal_bytes_open": first.db_open.1,
                "db_bytes_closed": first.db_closed,
                "open_ms": fulls.iter().map(|r| round3(secs(&r.open) * 1e3)).collect::<Vec<_>>(),
                "counts": first.report.counts.as_ref().map(counts_json),
                "phases": segments_json,
                "label_wait_s": round3(wait),
                "label_after_s": round3(after),
                "label_requests_before_labels_phase": first.label_early,
            },
            "fetch_only": {
                "wall_s": fetch_times.iter().map(|t| round3(*t)).collect::<Vec<_>>(),
                "median_s": round3(m_fetch),
                "requests": f0.requests,
                "bytes": f0.bytes,
                "concurrency": concurrency,
            },
            "native_core": {
                "wall_s": native_times.iter().map(|t| round3(*t)).collect::<Vec<_>>(),
                "median_s": round3(m_native),
                "requests": natives[0].requests,
                "label_wait_s": round3(native_wait),
                "label_after_s": round3(native_after),
            },
            "native_core_statements": profiles_json,
            "floor": {
                "wall_s": floor_times.iter().map(|t| round3(*t)).collect::<Vec<_>>(),
                "median_s": round3(m_floor),
                "rows": floors[0].rows,
                "db_bytes": floors[0].db_bytes,
            },
            "ratio_sync_over_floor": {
                "per_run": floor_ratios.iter().map(|r| round3(*r)).collect::<Vec<_>>(),
                "median": round3(median(&floor_ratios)),
            },
            "ratio_sync_over_native_core": {
                "per_run": native_ratios.iter().map(|r| round3(*r)).collect::<Vec<_>>(),
                "median": round3(median(&native_ratios)),
            },
            "ratio_sync_over_fetch": {
                "per_run": ratios.iter().map(|r| round3(*r)).collect::<Vec<_>>(),
                "median": round3(median(&ratios)),
            },
            "link": {"wall_ms": link_times.iter().map(|t| round3(*t)).collect::<Vec<_>>(), "median_ms": round3(median(&link_times)), "requests": link.requests, "strategy": name_of(&link.plan)},
            "incremental": {
                "changed_public_entities": changed,
                "wall_s": incr_times.iter().map(|t| round3(*t)).collect::<Vec<_>>(),
                "median_s": round3(median(&incr_times)),
                "requests": incr.requests,
                "bytes": incr.bytes,
                "strategy": name_of(&incr.plan),
                "phases": incr.phases.iter().map(|p| json!({"name": p.phase.to_string(), "fetched": p.fetched, "written": p.written, "reused": p.reused, "missing": p.missing})).collect::<Vec<_>>(),
            },
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    drop(sim);
    Ok(())
}

/// The floor loader's time for the sync phase named `name`, where it has one.
fn floor_phase(name: &str, floor: &floor::Floor) -> Option<Duration> {
    Some(match name {
        n if n.starts_with("fetch and parse DataEntities") => floor.fetch_parse[0],
        n if n.starts_with("write data entities") => floor.insert[0],
        n if n.starts_with("fetch and parse PublicEntities") => floor.fetch_parse[1],
        n if n.starts_with("write public entities") => floor.insert[1],
        n if n.starts_with("fetch and parse PublicEnumerations") => floor.fetch_parse[2],
        n if n.starts_with("write enumerations") => floor.insert[2],
        n if n.starts_with("labels") => floor.labels,
        n if n.starts_with("complete") => floor.commit,
        _ => return None,
    })
}

/// A client configured as the host's (`shared_client`), but its own connection pool.
fn client() -> anyhow::Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent("d365meta-bench")
        .build()?)
}

/// One GET with the headers the component sends; the body is read in full, as the host reads it.
/// Returns the status and the body length.
async fn get(client: &reqwest::Client, url: &str) -> anyhow::Result<(u16, u64)> {
    let mut response = client.get(url).header("Accept", "application/json").header("OData-Version", "4.0").send().await?;
    let status = response.status().as_u16();
    let mut body = Vec::with_capacity(response.content_length().unwrap_or(0).min(64 << 20) as usize);
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
    }
    if status != 200 && status != 404 {
        anyhow::bail!("GET {url}: status {status}");
    }
    Ok((status, body.len() as u64))
}

/// An OData string key literal for a URL path segment: quotes doubled, then percent-encoded
/// (the same rule as the component's `odata_string_literal`).
fn odata_string_literal(value: &str) -> String {
    let quoted = format!("'{}'", value.replace('\'', "''"));
    let mut out = String::with_capacity(quoted.len());
    for b in quoted.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~'()*,;=:@!$".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn label_url(base: &str, id: &str) -> String {
    format!("{base}/Metadata/Labels(Id={},Language={})", odata_string_literal(id), odata_string_literal(LANGUAGE))
}

/// Fetches labels `concurrency` at a time; returns (requests, bytes, 404s).
async fn fetch_labels(client: &reqwest::Client, base: &str, ids: &[String], concurrency: usize) -> anyhow::Result<(u64, u64, u64)> {
    let results: Vec<anyhow::Result<(u16, u64)>> = futures_util::stream::iter(ids)
        .map(|id| async move { get(client, &label_url(base, id)).await })
        .buffered(concurrency)
        .collect()
        .await;
    let (mut bytes, mut not_found) = (0, 0);
    for r in &results {
        match r {
            Ok((status, n)) => {
                bytes += n;
                not_found += u64::from(*status == 404);
            }
            Err(e) => anyhow::bail!("{e:#}"),
        }
    }
    Ok((results.len() as u64, bytes, not_found))
}

/// The lower bound: the sync's collection and label requests, without the cache.
async fn fetch_only(client: &reqwest::Client, base: &str, ids: &[String], concurrency: usize) -> anyhow::Result<FetchOnly> {
    let started = Instant::now();
    let (mut requests, mut bytes) = (0u64, 0u64);
    let mut collections = Vec::new();
    for c in COLLECTIONS {
        let t = Instant::now();
        let (status, n) = get(client, &format!("{base}/Metadata/{c}")).await?;
        anyhow::ensure!(status == 200, "{c}: status {status}");
        collections.push(t.elapsed());
        requests += 1;
        bytes += n;
    }
    let t = Instant::now();
    let (r, b, not_found) = fetch_labels(client, base, ids, concurrency).await?;
    let labels = t.elapsed();
    Ok(FetchOnly { total: started.elapsed(), collections, labels, requests: requests + r, bytes: bytes + b, not_found })
}

async fn full_run(runtime: &d365meta::Runtime, prod: &SimEnv, uat: &SimEnv, next: &SimEnv) -> anyhow::Result<FullRun> {
    let scratch = Scratch::new("sync");
    let db = scratch.db();
    let (events, sink) = recorder();
    let (mut cache, open_time) = open(runtime, &db, Some(sink)).await?;
    prod.clear_requests();
    let t0 = Instant::now();
    let (report, sync_time) = sync(&mut cache, &prod.base_url()).await?;
    let t1 = t0 + sync_time;
    anyhow::ensure!(report.plan == Plan::Full, "expected a full sync, got {}", name_of(&report.plan));
    let db_open = db_sizes(&db);
    drop(cache);
    let db_closed = db_sizes(&db).0;
    let events = events.lock().unwrap().clone();
    let (segments, label_wait, label_after, label_batches, label_early) = timeline(&events, prod, t0, t1)?;

    let (mut cache, reopen) = open(runtime, &db, None).await?;
    uat.clear_requests();
    let link = sync(&mut cache, &uat.base_url()).await?;
    next.clear_requests();
    let incremental = sync(&mut cache, &next.base_url()).await?;
    drop(cache);
    let db_final = db_sizes(&db).0;
    Ok(FullRun {
        open: open_time,
        sync: sync_time,
        report,
        db_open,
        db_closed,
        segments,
        label_wait,
        label_after,
        label_batches,
        label_early,
        reopen,
        link,
        incremental,
        db_final,
    })
}

/// Splits a sync's wall time into phases. Progress events mark when the component finished
/// something (`detect` done; a collection fetched and parsed; a batch of labels written); the
/// simulator's log marks when each request had its answer ready. A collection's request reaching
/// the simulator ends the previous step (writing the collection before it).
#[allow(clippy::type_complexity)]
fn timeline(
    events: &[Event],
    env: &SimEnv,
    t0: Instant,
    t1: Instant,
) -> anyhow::Result<(Vec<(String, Duration)>, Duration, Duration, usize, usize)> {
    let requests = env.requests();
    let request_at = |fragment: &str| requests.iter().find(|r| r.path_and_query.contains(fragment)).map(|r| r.at);
    let first_event = |phase: &str| events.iter().find(|e| e.phase == phase).map(|e| e.at);
    let detect = events.iter().find(|e| e.phase == "detect" && e.done == 1).map(|e| e.at);
    let phases = [("data-entities", "DataEntities"), ("public-entities", "PublicEntities"), ("enumerations", "PublicEnumerations")];
    let label_phase = format!("labels:{LANGUAGE}");
    let label_events: Vec<Instant> = events.iter().filter(|e| e.phase == label_phase).map(|e| e.at).collect();
    let label_requests: Vec<Instant> = requests.iter().filter(|r| r.path_and_query.contains("/Metadata/Labels(")).map(|r| r.at).collect();
    let (Some(detect), Some(first_label), Some(last_label)) = (detect, label_requests.iter().min().copied(), label_events.last().copied())
    else {
        anyhow::bail!("the sync did not report the expected progress events and requests");
    };

    // Each collection's label requests start once it is parsed, and are answered while its rows
    // are written; the labels phase's first event comes once all three are written.
    let first_label_event = label_events.first().copied().unwrap_or(last_label);
    let mut marks: Vec<(String, Instant)> = vec![("detect (GetInstalledModules)".to_owned(), detect)];
    let mut previous_label = "plan, application and platform versions (2 requests), snapshot";
    let write_names = [
        "write data entities (rows + search index)",
        "write public entities (rows + search index)",
        "write enumerations (rows + search index)",
    ];
    for (i, (phase, collection)) in phases.iter().enumerate() {
        let asked = request_at(&format!("/Metadata/{collection}")).ok_or_else(|| anyhow::anyhow!("no {collection} request"))?;
        let fetched = first_event(phase).ok_or_else(|| anyhow::anyhow!("no {phase} event"))?;
        marks.push((previous_label.to_owned(), asked));
        marks.push((format!("fetch and parse {collection}"), fetched));
        previous_label = write_names[i];
    }
    marks.push((previous_label.to_owned(), first_label_event));
    marks.push((format!("labels {LANGUAGE}: the answers not yet taken, written batch by batch"), last_label));
    marks.push(("complete the snapshot, counts, history".to_owned(), t1));

    let mut segments = Vec::new();
    let mut from = t0;
    for (name, at) in marks {
        segments.push((name, at.saturating_duration_since(from)));
        from = at;
    }

    // Within the labels phase: each batch from the previous batch's event (or the phase's first)
    // to the last of its requests reaching the simulator, then to its own event. Requests that
    // reached it before the phase began were answered while the entities were written.
    let early = label_requests.iter().filter(|&&at| at < first_label_event).count();
    let (mut wait, mut after) = (Duration::ZERO, Duration::ZERO);
    let mut start = first_label_event.max(first_label);
    let mut i = early;
    for &event in &label_events {
        let mut last = start;
        while i < label_requests.len() && label_requests[i] <= event {
            last = last.max(label_requests[i]);
            i += 1;
        }
        wait += last.saturating_duration_since(start);
        after += event.saturating_duration_since(last);
        start = event;
    }
    Ok((segments, wait, after, label_events.len(), early))
}

fn phases_text(report: &SyncReport) -> String {
    report
        .phases
        .iter()
        .map(|p| format!("{} fetched {} written {} reused {} missing {}", p.phase, p.fetched, p.written, p.reused, p.missing))
        .collect::<Vec<_>>()
        .join("; ")
}

fn describe_counts(c: &SnapshotCounts) -> String {
    format!(
        "{} data entities, {} public entities, {} properties, {} navigation properties, {} constraints, {} property groups, {} actions, {} enumerations, {} members, {} label ids, {} labels, {} missing",
        thousands(c.data_entities),
        thousands(c.public_entities),
        thousands(c.properties),
        thousands(c.navigation_properties),
        thousands(c.constraints),
        thousands(c.property_groups),
        thousands(c.actions),
        thousands(c.enumerations),
        thousands(c.members),
        thousands(c.label_ids),
        thousands(c.labels),
        thousands(c.labels_missing)
    )
}

fn counts_json(c: &SnapshotCounts) -> Json {
    json!({
        "data_entities": c.data_entities, "public_entities": c.public_entities, "properties": c.properties,
        "navigation_properties": c.navigation_properties, "constraints": c.constraints, "property_groups": c.property_groups,
        "actions": c.actions, "enumerations": c.enumerations, "members": c.members, "label_ids": c.label_ids,
        "labels": c.labels, "labels_missing": c.labels_missing,
    })
}

// ---- the core natively: the same code and SQL, without the component ----

use d365meta_guest::ports::{self as core_ports, Header, HttpError, HttpRequest, HttpResponse};

/// The core's HTTP port over reqwest for one environment: each request's path joined to the base
/// URL (as the host joins it), one attempt per request (loopback needs no retries), batches
/// `concurrency` at a time, as the host's `start` runs them.
struct NativeHttp {
    client: reqwest::Client,
    handle: tokio::runtime::Handle,
    /// The environment's normalised base URL, as the host keeps it for an `environment`.
    base_url: String,
    concurrency: usize,
}

async fn exchange(client: &reqwest::Client, base_url: &str, r: &HttpRequest) -> Result<HttpResponse, HttpError> {
    let method = match r.method {
        core_ports::Method::Get => reqwest::Method::GET,
        core_ports::Method::Post => reqwest::Method::POST,
    };
    let mut builder = client.request(method, format!("{base_url}{}", r.path));
    for h in &r.headers {
        builder = builder.header(&h.name, &h.value);
    }
    if let Some(body) = &r.body {
        builder = builder.body(body.clone());
    }
    let mut response = builder.send().await.map_err(|e| HttpError::Connect(e.to_string()))?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter_map(|(n, v)| Some(Header { name: n.as_str().to_owned(), value: v.to_str().ok()?.to_owned() }))
        .collect();
    let mut body = Vec::with_capacity(response.content_length().unwrap_or(0).min(64 << 20) as usize);
    while let Some(chunk) = response.chunk().await.map_err(|e| HttpError::Other(e.to_string()))? {
        body.extend_from_slice(&chunk);
    }
    Ok(HttpResponse { status, headers, body, attempts: 1 })
}

impl core_ports::Http for NativeHttp {
    fn base_url(&self) -> String {
        self.base_url.clone()
    }

    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        self.handle.block_on(exchange(&self.client, &self.base_url, request))
    }

    fn start(&self, requests: &[HttpRequest]) -> Box<dyn core_ports::PendingBatch + '_> {
        let (client, base_url) = (&self.client, self.base_url.as_str());
        let answered = self.handle.block_on(
            futures_util::stream::iter(requests.iter().enumerate())
                .map(|(i, r)| async move { (i, exchange(client, base_url, r).await) })
                .buffer_unordered(self.concurrency)
                .collect(),
        );
        Box::new(core_ports::Answered(answered))
    }
}

/// The core's host services, recording progress events as the host's progress sink does.
struct NativeServices {
    events: Events,
}

impl core_ports::Services for NativeServices {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
    }
    fn log(&self, _: core_ports::Level, _: &str) {}
    fn progress(&self, e: &core_ports::Progress) {
        self.events.lock().unwrap().push(Event {
            at: Instant::now(),
            phase: d365meta_guest::sync::snapshot::phase_key(&e.phase),
            done: e.done,
            total: e.total,
        });
    }
    fn cancelled(&self) -> bool {
        false
    }
}

/// One full sync by the core natively, into a fresh database opened by the host's SQLite backend
/// (WAL, synchronous NORMAL, foreign keys, busy timeout, 256 cached statements, the authorizer).
struct NativeRun {
    sync: Duration,
    requests: u64,
    segments: Vec<(String, Duration)>,
    label_wait: Duration,
    label_after: Duration,
}

async fn native_run(prod: &SimEnv, client: &reqwest::Client, concurrency: usize) -> anyhow::Result<NativeRun> {
    use d365meta_guest::wit::types::Plan as CorePlan;
    let scratch = Scratch::new("native");
    let db = scratch.db();
    let base_url = d365meta_guest::url::normalize_base_url(&prod.base_url())?;
    let events: Events = Default::default();
    let http = NativeHttp { client: client.clone(), handle: tokio::runtime::Handle::current(), base_url, concurrency };
    let services = NativeServices { events: events.clone() };
    prod.clear_requests();
    // The core is synchronous: it runs on a blocking thread and waits on the runtime for HTTP.
    let (requests, plan, t0, sync) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let store = d365meta_guest::native::SqliteStore::open(&db)?;
        let ctx = d365meta_guest::Ctx { http: &http, store: &store, host: &services };
        d365meta_guest::api::open(&ctx)?;
        let t0 = Instant::now();
        let report = d365meta_guest::api::sync(&ctx, None, &core_sync_options())?;
        Ok((report.requests, report.plan, t0, t0.elapsed()))
    })
    .await??;
    anyhow::ensure!(plan == CorePlan::Full, "the native sync planned {plan:?}, not a full sync");
    let events = events.lock().unwrap().clone();
    let (segments, label_wait, label_after, _, _) = timeline(&events, prod, t0, t0 + sync)?;
    drop(scratch);
    Ok(NativeRun { sync, requests, segments, label_wait, label_after })
}

fn core_sync_options() -> d365meta_guest::wit::types::SyncOptions {
    use d365meta_guest::wit::types::{Strategy as CoreStrategy, SyncOptions as CoreSyncOptions};
    CoreSyncOptions { strategy: CoreStrategy::Auto, languages: vec![LANGUAGE.into()], drop_languages: vec![], dry_run: false }
}

/// One sync by the core natively with every statement timed.
struct Profile {
    sync: Duration,
    plan: &'static str,
    statements: Vec<(String, Spent)>,
    /// Time outside the statements: parsing, hashing, building rows, waiting for answers.
    outside: Duration,
}

/// Where the core natively spends a full sync of `prod` and then an incremental one of `next`,
/// statement by statement, in one fresh database (not among the timed runs: timing each
/// statement adds its own cost, taken out of the totals).
async fn native_profiles(prod: &SimEnv, next: &SimEnv, client: &reqwest::Client, concurrency: usize) -> anyhow::Result<[Profile; 2]> {
    let scratch = Scratch::new("native-profile");
    let db = scratch.db();
    let mut https = Vec::new();
    for env in [prod, next] {
        let base_url = d365meta_guest::url::normalize_base_url(&env.base_url())?;
        https.push(NativeHttp { client: client.clone(), handle: tokio::runtime::Handle::current(), base_url, concurrency });
    }
    let profiles = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Profile>> {
        let sqlite = d365meta_guest::native::SqliteStore::open(&db)?;
        let services = NativeServices { events: Events::default() };
        d365meta_guest::api::open(&d365meta_guest::Ctx { http: &https[0], store: &sqlite, host: &services })?;
        let mut profiles = Vec::new();
        for http in &https {
            let timed = Timed::new(&sqlite);
            let ctx = d365meta_guest::Ctx { http, store: &timed, host: &services };
            let t0 = Instant::now();
            let report = d365meta_guest::api::sync(&ctx, None, &core_sync_options())?;
            let sync = t0.elapsed().saturating_sub(timed.bookkeeping());
            let statements = timed.statements();
            let inside: Duration = statements.iter().map(|(_, s)| s.time).sum();
            profiles.push(Profile { sync, plan: report.plan.as_str(), statements, outside: sync.saturating_sub(inside) });
        }
        Ok(profiles)
    })
    .await??;
    drop(scratch);
    profiles.try_into().map_err(|_| anyhow::anyhow!("two syncs, two profiles"))
}
