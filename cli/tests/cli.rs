//! The `d365meta` binary as a user runs it: commands, `--json` output and exit codes.

use d365meta_simulator::{Dataset, EnvironmentSpec, Scale, Simulator, load_modules_file};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SAMPLE_HASH: &str = "ae97cdc85de9b242364367e8bd9bf662a32cee6aaea4d8b47c8e35c4f0a8b90b";

fn sample_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/simulator/tests/fixtures/get-installed-modules.sample.json")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("d365meta-cli-{name}-{}-{:08x}", std::process::id(), fastrand::u32(..)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn d365meta(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_d365meta")).arg("--cache").arg(cache).args(args).output().expect("the binary runs")
}

fn json(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&output.stdout)))
}

async fn sample_simulator() -> Simulator {
    let dataset = Arc::new(Dataset::generate(Scale::Tiny));
    let mut a = EnvironmentSpec::new("a", dataset.clone());
    a.modules = Some(load_modules_file(&sample_file()).unwrap());
    let mut b = EnvironmentSpec::new("b", dataset.clone());
    b.modules = a.modules.clone();
    let c = EnvironmentSpec::new("c", dataset);
    Simulator::start("127.0.0.1".parse().unwrap(), vec![a, b, c]).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_prints_the_documented_json() {
    let sim = sample_simulator().await;
    let dir = scratch("version");
    let db = dir.join("cache.db");
    let (a, b) = (sim.env(0).base_url(), sim.env(1).base_url());
    let first = tokio::task::spawn_blocking({
        let (db, a) = (db.clone(), a.clone());
        move || d365meta(&db, &["version", &a, "--json"])
    })
    .await
    .unwrap();
    let v = json(&first);
    assert_eq!(v["modules_hash"], SAMPLE_HASH);
    assert_eq!(v["modules"].as_array().unwrap().len(), 4);
    assert_eq!(v["base_url"], a.as_str());
    assert_eq!(v["fallback"], false);
    assert_eq!(v["new_version"], true);
    assert_eq!(v["requests"], 3);
    assert_eq!(v["unparsed"], serde_json::json!([]));
    assert_eq!(v["shared_with"], serde_json::json!([]));
    assert_eq!(v["modules"][0]["module_id"], "AccountsPayableMobile");
    for key in ["application_version", "platform_version", "fallback_reason", "warnings", "first_seen_ms", "last_seen_ms"] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    let second = tokio::task::spawn_blocking({
        let db = db.clone();
        move || d365meta(&db, &["--json", "version", &b])
    })
    .await
    .unwrap();
    let v = json(&second);
    assert_eq!(v["new_version"], false);
    assert_eq!(v["shared_with"], serde_json::json!([a]));

    let text = tokio::task::spawn_blocking({
        let (db, b) = (db.clone(), sim.env(1).base_url());
        move || d365meta(&db, &["version", &b])
    })
    .await
    .unwrap();
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(out.contains(SAMPLE_HASH) && out.contains("Shared with") && out.contains(&sim.env(0).base_url()), "{out}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_lists_module_differences() {
    let sim = sample_simulator().await;
    let dir = scratch("compare");
    let db = dir.join("cache.db");
    let (a, c) = (sim.env(0).base_url(), sim.env(2).base_url());
    let out = tokio::task::spawn_blocking(move || d365meta(&db, &["version", "--compare", &a, &c, "--json"])).await.unwrap();
    let v = json(&out);
    assert_eq!(v["same_version"], false);
    assert_eq!(v["a"]["modules_hash"], SAMPLE_HASH);
    let added = v["added"].as_array().unwrap();
    assert_eq!(
        added.len() + v["changed"].as_array().unwrap().len() + v["unchanged"].as_u64().unwrap() as usize,
        sim.env(2).modules().len()
    );
    assert!(!added.is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn exit_codes_tell_invalid_input_from_failure() {
    let dir = scratch("exit");
    let db = dir.join("cache.db");
    let invalid = d365meta(&db, &["version", "contoso.operations.dynamics.com"]);
    assert_eq!(invalid.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&invalid.stderr).contains("base URL"), "{}", String::from_utf8_lossy(&invalid.stderr));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let unreachable = d365meta(&db, &["version", &format!("http://127.0.0.1:{port}")]);
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("could not connect"));
    let usage = d365meta(&db, &["version"]);
    assert_eq!(usage.status.code(), Some(2), "a missing argument is a usage error");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn simulate_prints_its_urls_and_stops_on_interrupt() {
    let dir = scratch("simulate");
    let db = dir.join("cache.db");
    let sample = sample_file();
    let mut child = Command::new(env!("CARGO_BIN_EXE_d365meta"))
        .args(["simulate", "--scale", "tiny", "--environments", "2", "--modules"])
        .arg(&sample)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let urls: Vec<String> = (0..2).map(|_| lines.next().unwrap().unwrap()).collect();
    for url in &urls {
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    }
    let first = json(&d365meta(&db, &["version", &urls[0], "--json"]));
    assert_eq!(first["modules_hash"], SAMPLE_HASH, "the --modules file applies to the first environment");
    let second = json(&d365meta(&db, &["version", &urls[1], "--json"]));
    assert_ne!(second["modules_hash"], SAMPLE_HASH);

    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "simulate exits cleanly on Ctrl-C: {status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "simulate did not stop after SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn demo_syncs_full_then_links_then_goes_incremental() {
    let out = Command::new(env!("CARGO_BIN_EXE_d365meta")).args(["demo", "--scale", "tiny"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let row = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(name) && l.contains("  ") && !l.contains("http"))
            .map(str::split_whitespace)
            .map(|w| w.collect::<Vec<_>>())
            .unwrap_or_else(|| panic!("no row for {name}: {text}"))
    };
    assert_eq!(row("contoso-test")[1], "full");
    let uat = row("contoso-uat");
    assert_eq!((uat[1], uat[2]), ("link", "1"), "the second environment makes one request: {text}");
    assert_eq!(row("contoso-prod")[1], "incremental");
    assert!(text.contains("The cache holds 2 versions for 3 environments"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_answers_in_its_documented_json_shape() {
    let sim = Simulator::start("127.0.0.1".parse().unwrap(), vec![EnvironmentSpec::new("a", Arc::new(Dataset::generate(Scale::Tiny)))])
        .await
        .unwrap();
    let url = sim.env(0).base_url();
    let dir = scratch("commands");
    let db = dir.join("cache.db");
    let run = {
        let db = db.clone();
        move |args: Vec<String>| {
            let db = db.clone();
            async move {
                tokio::task::spawn_blocking(move || d365meta(&db, &args.iter().map(String::as_str).collect::<Vec<_>>())).await.unwrap()
            }
        }
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let plan = json(&run(args(&["sync", &url, "--dry-run", "--json"])).await);
    assert_eq!((plan["dry_run"].as_bool(), plan["plan"].as_str()), (Some(true), Some("full")));
    assert_eq!(plan["planned_phases"][3], serde_json::json!({"phase": {"kind": "labels", "value": "en-US"}, "from_cache": false}));
    let sync = json(&run(args(&["sync", &url, "--languages", "en-US,de", "--json"])).await);
    for key in [
        "run_id",
        "base_url",
        "modules_hash",
        "new_version",
        "plan",
        "reason",
        "coverage",
        "planned_phases",
        "base_modules_hash",
        "shared_with",
        "phases",
        "counts",
        "requests",
        "bytes",
        "duration_ms",
        "warnings",
    ] {
        assert!(sync.get(key).is_some(), "sync --json lacks {key}");
    }
    assert_eq!(sync["coverage"]["languages"], serde_json::json!(["de", "en-US"]));
    assert_eq!(sync["counts"]["public_entities"], 12);
    let again = json(&run(args(&["sync", &url, "--json"])).await);
    assert_eq!(again["plan"], "up-to-date");
    assert_eq!(again["requests"], 1);

    let history = json(&run(args(&["history", "--json"])).await);
    let outcomes: Vec<&str> = history.as_array().unwrap().iter().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["succeeded", "succeeded", "planned"]);
    assert!(history[1]["requests"].as_u64().unwrap() > 100);
    assert_eq!((history[1]["requested_strategy"].as_str(), history[1]["plan"].as_str()), (Some("auto"), Some("full")));

    let entity = json(&run(args(&["entity", "customersv3", "--labels", "--json"])).await);
    assert_eq!(entity["public_entity"]["name"], "CustomerV3");
    assert_eq!(entity["data_entity"]["name"], "CustCustomerV3Entity");
    assert_eq!(entity["public_entity"]["properties"][0]["label"], "Company");
    let missing = run(args(&["entity", "CustomerV4", "--json"])).await;
    assert_eq!(missing.status.code(), Some(3));
    let body: serde_json::Value = serde_json::from_slice(&missing.stdout).unwrap();
    assert_eq!(body["suggestions"][0], "CustomerV3");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("did you mean: CustomerV3"));

    let e = json(&run(args(&["enum", "NoYes", "--labels", "--lang", "de", "--json"])).await);
    assert_eq!(e["enumeration"]["members"][1]["name"], "Yes");
    assert_eq!(e["enumeration"]["members"][1]["value"], 1);
    let label = json(&run(args(&["label", "@SYS13342", "--json"])).await);
    assert_eq!((label["text"].as_str(), label["language"].as_str()), (Some("Company"), Some("en-US")));
    let unknown = run(args(&["label", "@Nope:Nope"])).await;
    assert_eq!(unknown.status.code(), Some(3));

    let search = json(&run(args(&["search", "CustomerV3", "--limit", "2", "--json"])).await);
    assert_eq!(search["hits"].as_array().unwrap().len(), 2);
    assert_eq!(search["hits"][1]["name"], "CustCustomerV3Entity", "the words customer and v3 inside the data entity's name");
    assert_eq!((search["hits"][0]["name"].as_str(), search["hits"][0]["matched"].as_str()), (Some("CustomerV3"), Some("exact")));
    let filtered = json(&run(args(&["search", "id", "--kind", "property", "--filter", "entity=CustomerV3", "--json"])).await);
    assert!(filtered["hits"].as_array().unwrap().iter().all(|h| h["entity"] == "CustomerV3" && h["kind"] == "property"));
    let bad = run(args(&["search", "x", "--filter", "colour=red"])).await;
    assert_eq!(bad.status.code(), Some(2));

    let action_name = Dataset::generate(Scale::Tiny).public_entities.iter().flat_map(|e| e.actions.iter()).next().unwrap().name.clone();
    let action = json(&run(args(&["action", &action_name, "--json"])).await);
    assert_eq!(action["actions"][0]["name"], action_name.as_str());

    let stats = json(&run(args(&["stats", "--json"])).await);
    assert_eq!(stats["environments"][0]["counts"]["public_entities"], 12);
    assert_eq!(stats["environments"][0]["label_coverage"].as_array().unwrap().len(), 2);
    assert!(stats["database_bytes"].as_u64().unwrap() > 0);
    let envs = json(&run(args(&["envs", "--json"])).await);
    assert_eq!(envs[0]["base_url"], url.as_str());
    let languages: Vec<&str> = envs[0]["label_coverage"].as_array().unwrap().iter().map(|c| c["language"].as_str().unwrap()).collect();
    assert_eq!(languages, ["de", "en-US"]);
    // A navigation constraint carries its kind beside its fields.
    let constraint = entity["public_entity"]["navigation_properties"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| n["constraints"].as_array().unwrap().iter())
        .next()
        .expect("the customer entity has constrained navigation properties");
    assert!(["referential", "fixed", "related-fixed"].contains(&constraint["kind"].as_str().unwrap()), "{constraint}");
    let gc = json(&run(args(&["gc", "--json"])).await);
    assert_eq!(gc, serde_json::json!({"versions": 0, "snapshots": 0, "objects": 0, "labels": 0, "bytes_freed": 0}));
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_cancels_a_sync_promptly_and_the_next_one_finishes() {
    use d365meta_simulator::{Fault, FaultKind};
    let sim = Simulator::start("127.0.0.1".parse().unwrap(), vec![EnvironmentSpec::new("a", Arc::new(Dataset::generate(Scale::Small)))])
        .await
        .unwrap();
    sim.env(0).inject(Fault::new("/Metadata/Labels(", usize::MAX, FaultKind::Delay(Duration::from_millis(50))));
    let url = sim.env(0).base_url();
    let dir = scratch("sigint");
    let db = dir.join("cache.db");
    let env = sim.env(0);
    let (status, elapsed) = tokio::task::spawn_blocking({
        let (db, url) = (db.clone(), url.clone());
        move || {
            let mut child = Command::new(env!("CARGO_BIN_EXE_d365meta"))
                .arg("--cache")
                .arg(&db)
                .args(["sync", &url])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            // Interrupt once the sync is fetching labels (start-up may take a while on a busy machine).
            let started = Instant::now();
            while !env.requests().iter().any(|r| r.path_and_query.contains("/Metadata/Labels(")) {
                assert!(started.elapsed() < Duration::from_secs(120), "the sync never reached its labels");
                std::thread::sleep(Duration::from_millis(20));
            }
            Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
            let interrupted = Instant::now();
            (child.wait().unwrap(), interrupted.elapsed())
        }
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(130), "a cancelled sync exits with 130");
    assert!(elapsed < Duration::from_secs(5), "stopped {elapsed:?} after Ctrl-C");
    let history = tokio::task::spawn_blocking({
        let db = db.clone();
        move || d365meta(&db, &["history", "--json"])
    })
    .await
    .unwrap();
    assert_eq!(json(&history)[0]["outcome"], "cancelled");
    sim.env(0).clear_faults();
    let done = tokio::task::spawn_blocking({
        let (db, url) = (db.clone(), url.clone());
        move || d365meta(&db, &["sync", &url, "--json"])
    })
    .await
    .unwrap();
    assert_eq!(json(&done)["counts"]["public_entities"], 200);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_cached_answers_from_the_cache_with_the_environments_gone() {
    let sim = sample_simulator().await;
    let dir = scratch("version-cached");
    let db = dir.join("cache.db");
    let (a, c) = (sim.env(0).base_url(), sim.env(2).base_url());
    let run = |args: Vec<String>| {
        let db = db.clone();
        tokio::task::spawn_blocking(move || d365meta(&db, &args.iter().map(String::as_str).collect::<Vec<_>>()))
    };
    json(&run(vec!["version".into(), a.clone(), "--json".into()]).await.unwrap());
    let synced = json(&run(vec!["sync".into(), c.clone(), "--json".into()]).await.unwrap());
    let c_hash = synced["modules_hash"].as_str().unwrap().to_owned();
    sim.shutdown().await;

    // The latest synced version, then one by environment, one by hash prefix: no environment is up.
    let latest = json(&run(vec!["version".into(), "--cached".into(), "--json".into()]).await.unwrap());
    assert_eq!(latest["modules_hash"], c_hash.as_str());
    assert_eq!(latest["environments"], serde_json::json!([c]));
    let by_url = json(&run(vec!["version".into(), "--cached".into(), a.clone(), "--json".into()]).await.unwrap());
    assert_eq!(by_url["modules_hash"], SAMPLE_HASH);
    assert_eq!(by_url["modules"].as_array().unwrap().len(), 4);
    let by_hash = json(&run(vec!["version".into(), "--cached".into(), SAMPLE_HASH[..10].to_owned(), "--json".into()]).await.unwrap());
    assert_eq!(by_hash["environments"], serde_json::json!([a]));

    let compared = json(
        &run(vec!["version".into(), "--cached".into(), "--compare".into(), a.clone(), c_hash[..12].to_owned(), "--json".into()])
            .await
            .unwrap(),
    );
    assert_eq!(compared["same_version"], false);
    assert_eq!(compared["a"]["base_url"], a.as_str());
    assert_eq!(compared["b"]["base_url"], serde_json::Value::Null);
    assert_eq!(compared["b"]["modules_hash"], c_hash.as_str());
    let changes = compared["added"].as_array().unwrap().len()
        + compared["removed"].as_array().unwrap().len()
        + compared["changed"].as_array().unwrap().len();
    assert!(changes > 0, "{compared}");

    let short = run(vec!["version".into(), "--cached".into(), "ae97".into()]).await.unwrap();
    assert_eq!(short.status.code(), Some(2), "{}", String::from_utf8_lossy(&short.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_a_pull_through_a_shared_directory() {
    let sim = Simulator::start(
        "127.0.0.1".parse().unwrap(),
        vec![
            EnvironmentSpec::new("a", Arc::new(Dataset::generate(Scale::Tiny))),
            EnvironmentSpec::new("b", Arc::new(Dataset::generate(Scale::Tiny))),
        ],
    )
    .await
    .unwrap();
    let dir = scratch("shared");
    let store = format!("file://{}", dir.join("store").display());
    let (a, b) = (dir.join("a.db"), dir.join("b.db"));
    let (url_a, url_b) = (sim.env(0).base_url(), sim.env(1).base_url());
    let run = |db: PathBuf, args: Vec<String>| async move {
        tokio::task::spawn_blocking(move || d365meta(&db, &args.iter().map(String::as_str).collect::<Vec<_>>())).await.unwrap()
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    json(&run(a.clone(), args(&["sync", &url_a, "--json"])).await);
    let nothing = run(a.clone(), args(&["publish"])).await;
    assert_eq!(nothing.status.code(), Some(2), "no store configured");
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("--shared"));
    let bad = run(a.clone(), args(&["--shared", "nas/share", "publish"])).await;
    assert_eq!(bad.status.code(), Some(2));

    let published = json(&run(a.clone(), args(&["--shared", &store, "publish", "--json"])).await);
    assert_eq!(published["location"], store.as_str());
    let v = &published["versions"][0];
    assert_eq!(v["outcome"], "published");
    for key in [
        "modules_hash",
        "coverage",
        "manifest",
        "objects",
        "labels",
        "objects_uploaded",
        "labels_uploaded",
        "packs_uploaded",
        "bytes_uploaded",
    ] {
        assert!(v.get(key).is_some(), "publish --json lacks {key}");
    }
    let text = run(a.clone(), args(&["--shared", &store, "publish"])).await;
    assert!(String::from_utf8_lossy(&text.stdout).contains("already published"), "{}", String::from_utf8_lossy(&text.stdout));

    let pulled = json(&run(b.clone(), args(&["--shared", &store, "sync", &url_b, "--json"])).await);
    assert_eq!((pulled["plan"].as_str(), pulled["requests"].as_u64()), (Some("pull"), Some(1)));
    assert_eq!(pulled["pulled"]["objects"], v["objects"]);
    assert_eq!(pulled["counts"]["public_entities"], 12);
    let entity = json(&run(b.clone(), args(&["entity", "CustomerV3", "--labels", "--json"])).await);
    assert_eq!(entity["public_entity"]["properties"][0]["label"], "Company");
    let history = json(&run(b.clone(), args(&["history", "--json"])).await);
    assert_eq!(history[0]["plan"], "pull");
    std::fs::remove_dir_all(dir).unwrap();
}
