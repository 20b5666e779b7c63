//! The command line as a user meets it, one process per command: the peak memory of `d365meta sync`
//! at full scale, the cost of the first command after installing (the component not yet compiled
//! for this machine), a warm `d365meta entity NAME` from start to exit, and the database's size
//! for one version and after an incremental second one. The floor is the same binary doing
//! nothing (`d365meta --version`), measured in the same run.
//!
//! Setup: the `full` simulator scale and its evolution with 200 of 4,000 public entities changed
//! (5 %), served on loopback by this process; every command runs the release binary with its own
//! cache directory (`XDG_CACHE_HOME`), so "installed" and "warm" are told apart by whether the
//! compiled component is already there.
//!
//! `cargo bench -p d365meta-cli --bench process [-- [--samples N] [--json]]`

#[path = "../../host/benches/common/mod.rs"]
mod common;

use common::*;
use d365meta_simulator::{Dataset, EnvironmentSpec, Scale, Simulator};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_d365meta");

/// Public entities the second version changes: 5 % of the `full` scale's 4,000.
const CHANGED: usize = 200;

/// One finished command: wall time, the process's peak resident set (sampled every millisecond),
/// what it printed.
struct Run {
    wall: Duration,
    max_rss_bytes: u64,
    stdout: String,
}

/// Runs the binary with `args`, its cache directory (and configuration) under `home`, and follows
/// its peak resident set (`VmHWM`) until it exits. Not `wait4`'s `ru_maxrss`: Linux carries the
/// spawning process's peak into the child's across `exec`, and this process holds the simulator.
fn run(home: &Path, args: &[&str]) -> anyhow::Result<Run> {
    use std::io::Read;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let started = Instant::now();
    let mut child = Command::new(BINARY)
        .args(args)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env_remove("D365META_CONFIG")
        .env_remove("D365FO_BASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let (done, peak) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let watcher = {
        let (done, peak, status) = (done.clone(), peak.clone(), format!("/proc/{}/status", child.id()));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                // `VmHWM:   24092 kB`; absent once the process has exited (a zombie has no memory).
                if let Some(kib) = std::fs::read_to_string(&status).ok().and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("VmHWM:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok()))
                }) {
                    peak.fetch_max(kib * 1024, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let mut stdout = String::new();
    child.stdout.take().expect("piped").read_to_string(&mut stdout)?;
    let mut stderr = String::new();
    child.stderr.take().expect("piped").read_to_string(&mut stderr)?;
    let status = child.wait()?;
    let wall = started.elapsed();
    done.store(true, Ordering::Relaxed);
    watcher.join().expect("the memory watcher");
    anyhow::ensure!(status.success(), "d365meta {args:?} failed ({status}): {stderr}");
    Ok(Run { wall, max_rss_bytes: peak.load(Ordering::Relaxed), stdout })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn report_ms(run: &Run) -> anyhow::Result<f64> {
    let v: serde_json::Value = serde_json::from_str(&run.stdout)?;
    v["duration_ms"].as_f64().ok_or_else(|| anyhow::anyhow!("no duration_ms in the sync report: {}", run.stdout))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let out = Out::new(args.json);
    let samples = args.number("samples", 30).max(3);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;

    let v1 = Arc::new(Dataset::generate(Scale::Full));
    let (v2, _) = v1.evolve(29, CHANGED);
    let sim = rt.block_on(Simulator::start(
        "127.0.0.1".parse()?,
        vec![EnvironmentSpec::new("v1", v1.clone()), EnvironmentSpec::new("v2", Arc::new(v2))],
    ))?;
    let (url1, url2) = (sim.env(0).base_url(), sim.env(1).base_url());
    let scratch = Scratch::new("process");
    let home = |name: &str| scratch.0.join(name);
    let db = |name: &str| scratch.0.join(format!("{name}.db"));
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let entity = "CustomersV3";

    // 1. The first sync after installing: the component is compiled within the command.
    let first = run(&home("warm"), &["--cache", &path(&db("first")), "--json", "sync", &url1, "--languages", "en-US"])
        .map_err(|e| e.context("first sync"))?;
    // 2. A full sync with the component already compiled, into a fresh database.
    let full = run(&home("warm"), &["--cache", &path(&db("main")), "--json", "sync", &url1, "--languages", "en-US"])?;
    let one_version = file_size(&db("main"));
    // 3. The second version, incrementally, into the same database.
    let incremental = run(&home("warm"), &["--cache", &path(&db("main")), "--json", "sync", &url2, "--languages", "en-US"])?;
    let two_versions = file_size(&db("main"));
    drop(sim);

    // 4. `entity NAME` with no compiled component (a fresh cache directory each time) against a
    //    warm one, alternating; then warm alone, and the binary doing nothing.
    let lookup = |h: &Path| run(h, &["--cache", &path(&db("main")), "entity", entity]);
    lookup(&home("warm"))?;
    let (mut cold, mut warm_pairs) = (Vec::new(), Vec::new());
    for i in 0..5 {
        let fresh = home(&format!("installed-{i}"));
        cold.push(lookup(&fresh)?.wall);
        warm_pairs.push(lookup(&home("warm"))?.wall);
        let _ = std::fs::remove_dir_all(fresh);
    }
    let (mut warm, mut floor, mut warm_rss) = (Vec::new(), Vec::new(), 0);
    for _ in 0..samples {
        let r = lookup(&home("warm"))?;
        warm_rss = warm_rss.max(r.max_rss_bytes);
        warm.push(r.wall);
        floor.push(run(&home("warm"), &["--version"])?.wall);
    }
    let secs = |v: &[Duration]| v.iter().map(Duration::as_secs_f64).collect::<Vec<_>>();
    let cold_ms = median(&secs(&cold)) * 1e3;
    let warm_pair_ms = median(&secs(&warm_pairs)) * 1e3;
    let (warm_p, floor_p) = (Percentiles::of(&warm), Percentiles::of(&floor));
    let growth = two_versions as f64 / one_version as f64 - 1.0;

    out.line("d365meta as a process, `full` scale (one process per command, release build)");
    out.line(format!(
        "first sync after installing (component compiled within): {:.2} s, peak memory {:.1} MiB",
        first.wall.as_secs_f64(),
        mib(first.max_rss_bytes)
    ));
    out.line(format!(
        "full sync, component precompiled: {:.2} s (report {:.2} s), peak memory {:.1} MiB",
        full.wall.as_secs_f64(),
        report_ms(&full)? / 1e3,
        mib(full.max_rss_bytes)
    ));
    out.line(format!(
        "incremental second version (5 % of public entities changed): {:.2} s (report {:.2} s), peak memory {:.1} MiB",
        incremental.wall.as_secs_f64(),
        report_ms(&incremental)? / 1e3,
        mib(incremental.max_rss_bytes)
    ));
    out.line(format!(
        "database: one version {} bytes ({:.1} MiB); after the second {} bytes ({:.1} MiB), +{:.1} %",
        thousands(one_version),
        mib(one_version),
        thousands(two_versions),
        mib(two_versions),
        growth * 100.0
    ));
    out.line(format!(
        "`entity {entity}`, first after installing: median {cold_ms:.0} ms over 5; warm, alternating: {warm_pair_ms:.0} ms; difference {:.0} ms",
        cold_ms - warm_pair_ms
    ));
    out.line(format!(
        "`entity {entity}`, warm, {} runs: p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms, peak memory {:.1} MiB",
        warm_p.n,
        warm_p.p50 / 1e3,
        warm_p.p90 / 1e3,
        warm_p.max / 1e3,
        mib(warm_rss)
    ));
    out.line(format!(
        "floor, `d365meta --version`: p50 {:.1} ms, p90 {:.1} ms; warm entity ÷ floor at p50 {:.2}",
        floor_p.p50 / 1e3,
        floor_p.p90 / 1e3,
        warm_p.p50 / floor_p.p50
    ));
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "first_sync": { "wall_ms": round1(ms(first.wall)), "max_rss_bytes": first.max_rss_bytes },
                "full_sync": { "wall_ms": round1(ms(full.wall)), "report_ms": report_ms(&full)?, "max_rss_bytes": full.max_rss_bytes },
                "incremental_sync": {
                    "wall_ms": round1(ms(incremental.wall)), "report_ms": report_ms(&incremental)?, "max_rss_bytes": incremental.max_rss_bytes,
                },
                "database": { "one_version_bytes": one_version, "two_versions_bytes": two_versions, "growth": round3(growth) },
                "first_command": { "cold_ms": round1(cold_ms), "warm_ms": round1(warm_pair_ms), "difference_ms": round1(cold_ms - warm_pair_ms) },
                "warm_entity": warm_p.json(),
                "warm_entity_max_rss_bytes": warm_rss,
                "floor_version": floor_p.json(),
            }))?
        );
    }
    Ok(())
}
