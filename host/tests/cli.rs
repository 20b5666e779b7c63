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
    assert_eq!(v["module_count"], 4);
    assert_eq!(v["base_url"], a.as_str());
    assert_eq!(v["fallback"], false);
    assert_eq!(v["new_version"], true);
    assert_eq!(v["requests"], 3);
    assert_eq!(v["unparsed_lines"], serde_json::json!([]));
    assert_eq!(v["shared_with"], serde_json::json!([]));
    assert_eq!(v["modules"][0]["module_id"], "AccountsPayableMobile");
    for key in ["application_version", "platform_version", "fallback_reason", "warnings", "first_seen", "last_seen"] {
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
fn demo_shows_shared_and_distinct_versions() {
    let out = Command::new(env!("CARGO_BIN_EXE_d365meta")).args(["demo", "--scale", "tiny"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("same version as contoso-test"), "{text}");
    assert!(text.contains("2 versions"), "{text}");
}
