//! What a first real user meets at the edges of the command-line tool: messages, exit codes, logs,
//! a run killed hard, a cache file the user may only read.

mod common;

use d365meta_simulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TOKEN, Dataset, EnvironmentSpec, Fault, FaultKind, Scale, Simulator,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("d365meta-edges-{name}-{}-{:08x}", std::process::id(), fastrand::u32(..)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn command(cache: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_d365meta"));
    command.arg("--cache").arg(cache).args(args);
    common::without_caller_variables(&mut command);
    // No profile of the user's running the tests applies.
    command.env("D365META_CONFIG", cache.with_extension("no-config.toml"));
    command
}

fn d365meta(cache: &Path, args: &[&str]) -> Output {
    command(cache, args).output().expect("the binary runs")
}

/// Runs the binary off the async runtime's threads.
async fn run(cache: &Path, args: &[&str]) -> Output {
    let (cache, args) = (cache.to_owned(), args.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    tokio::task::spawn_blocking(move || d365meta(&cache, &args.iter().map(String::as_str).collect::<Vec<_>>())).await.unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "failed: {}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

async fn simulator(scale: Scale) -> Simulator {
    Simulator::start("127.0.0.1".parse().unwrap(), vec![EnvironmentSpec::new("a", Arc::new(Dataset::generate(scale)))]).await.unwrap()
}

#[test]
fn bad_urls_are_refused_before_anything_is_created_and_never_echoed_whole() {
    let dir = scratch("urls");
    let db = dir.join("cache.db");
    for args in [vec!["sync", "contoso.operations.dynamics.com"], vec!["version", "ftp://x"], vec!["forget", "nope"]] {
        let out = d365meta(&db, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("base URL"), "{}", stderr(&out));
    }
    let long = format!("https://contoso.operations.dynamics.com/{}", "a".repeat(100_000));
    let out = d365meta(&db, &["sync", &long]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.len() < 1_000, "{} bytes of error for a 100 KB URL", out.stderr.len());
    assert!(stderr(&out).contains("100040 bytes"), "{}", stderr(&out));
    assert!(!db.exists(), "a refused URL must not create the cache file");
    // Reading a cache that does not exist reads an empty one, and creates nothing either.
    let stats = json(&d365meta(&db, &["stats", "--json"]));
    assert_eq!(stats["environments"], serde_json::json!([]));
    assert!(!db.exists());
    let out = d365meta(&db, &["history", "--env", "http://127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(3), "an unknown environment's history is not found: {}", stderr(&out));
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_404_during_a_sync_is_a_failure_not_an_unknown_name() {
    let sim = simulator(Scale::Tiny).await;
    sim.env(0).inject(Fault::status("/Metadata/PublicEntities", 1, 404));
    let dir = scratch("404");
    let out = run(&dir.join("cache.db"), &["sync", &sim.env(0).base_url()]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("/Metadata/PublicEntities: HTTP 404"), "{}", stderr(&out));
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_match_is_one_match() {
    let sim = simulator(Scale::Tiny).await;
    let dir = scratch("match");
    let db = dir.join("cache.db");
    json(&run(&db, &["sync", &sim.env(0).base_url(), "--json"]).await);
    let names: Vec<String> = Dataset::generate(Scale::Tiny).public_entities.iter().map(|e| e.name.clone()).collect();
    let mut found = false;
    for name in names {
        let hits = json(&run(&db, &["search", &name, "--kind", "public-entity", "--json"]).await);
        if hits["total"] == 1 {
            let text = String::from_utf8_lossy(&run(&db, &["search", &name, "--kind", "public-entity"]).await.stdout).into_owned();
            assert!(text.contains(&format!("1 match for {name:?}")), "{text}");
            found = true;
            break;
        }
    }
    assert!(found, "some entity name matches only itself");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_hard_reads_as_interrupted_without_another_sync() {
    let sim = simulator(Scale::Small).await;
    sim.env(0).inject(Fault::new("/Metadata/Labels(", usize::MAX, FaultKind::Delay(Duration::from_millis(30))));
    let url = sim.env(0).base_url();
    let dir = scratch("killed");
    let db = dir.join("cache.db");
    let mut child = command(&db, &["sync", &url]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // Wait until the sync is well into its labels.
    let started = Instant::now();
    while sim.env(0).requests().iter().filter(|r| r.path_and_query.contains("/Metadata/Labels(")).count() < 50 {
        assert!(started.elapsed() < Duration::from_secs(120), "the sync never reached its labels");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap(); // SIGKILL: no chance to record anything
    child.wait().unwrap();
    let history = json(&run(&db, &["history", "--json"]).await);
    assert_eq!(history[0]["outcome"], "interrupted", "{history:#}");
    assert!(history[0]["error"].as_str().unwrap().contains("process ended"), "{history:#}");
    let stats = json(&run(&db, &["stats", "--json"]).await);
    assert_eq!(stats["last_sync"]["outcome"], "interrupted");
    // Reading changed nothing: the database still records it as running, until the next sync.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let stored: String = conn.query_row("SELECT outcome FROM sync_runs ORDER BY id DESC LIMIT 1", [], |r| r.get(0)).unwrap();
    assert_eq!(stored, "running");
    drop(conn);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_tells_phases_and_requests_apart_and_never_shows_a_token() {
    let dir = scratch("log");
    let (sim, ca) = common::tls_simulator(&dir).await;
    sim.env(0).set_require_bearer(Some(DEFAULT_TOKEN.to_owned()));
    let url = sim.env(0).base_url();
    let mut lines = Vec::new();
    for verbosity in ["-v", "-vv", "-vvv"] {
        let db = dir.join(format!("cache{verbosity}.db"));
        let out = {
            let (db, url, authority, ca) = (db.clone(), url.clone(), sim.authority_host(), ca.display().to_string());
            tokio::task::spawn_blocking(move || {
                command(&db, &["--auth", "always", "--ca-file", &ca, verbosity, "sync", &url])
                    .env("AZURE_TENANT_ID", "tenant")
                    .env("AZURE_CLIENT_ID", DEFAULT_CLIENT_ID)
                    .env("AZURE_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
                    .env("AZURE_AUTHORITY_HOST", authority)
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        };
        assert!(out.status.success(), "{}", stderr(&out));
        let log = stderr(&out);
        assert!(!log.contains(DEFAULT_TOKEN) && !log.contains(DEFAULT_CLIENT_SECRET), "{verbosity}: a secret was logged");
        assert!(log.contains("command{name=\"sync\"}") || log.contains("command{name=sync}"), "{verbosity}: {log}");
        assert!(log.contains("phase{name=labels:en-US}") && log.contains("finished") && log.contains("elapsed_ms"), "{verbosity}: {log}");
        if verbosity != "-v" {
            let request = log
                .lines()
                .find(|l| l.contains("request{method=GET") && l.contains("/Metadata/PublicEntities"))
                .unwrap_or_else(|| panic!("{verbosity}: no request line: {log}"));
            assert!(
                request.contains("attempt=1") && request.contains("status=200") && request.contains("elapsed_ms="),
                "{verbosity}: {request}"
            );
        }
        lines.push(log.lines().count());
    }
    assert!(lines[0] >= 8 && lines[0] < lines[1] && lines[1] <= lines[2], "lines at -v, -vv, -vvv: {lines:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// Runs the binary as a user who may read the cache file but not write it or its directory. As
/// root (whom file modes do not stop) the binary runs as `nobody` through `setpriv`; otherwise the
/// modes are taken away from the user itself.
#[derive(Clone)]
struct ReadOnlyUser {
    dir: PathBuf,
    binary: PathBuf,
    as_root: bool,
}

impl ReadOnlyUser {
    fn new(dir: &Path) -> ReadOnlyUser {
        use std::os::unix::fs::PermissionsExt;
        // SAFETY: geteuid has no preconditions.
        let as_root = unsafe { libc::geteuid() } == 0;
        let binary = if as_root {
            // nobody cannot reach the build directory under /root: a copy it can run, and the
            // compiled component, so that it need not compile it again.
            let copy = dir.join("d365meta");
            std::fs::copy(env!("CARGO_BIN_EXE_d365meta"), &copy).unwrap();
            let components = dirs::cache_dir().unwrap().join("d365meta/components");
            let target = dir.join("xdg/d365meta/components");
            std::fs::create_dir_all(&target).unwrap();
            for entry in std::fs::read_dir(components).into_iter().flatten().flatten() {
                let _ = std::fs::copy(entry.path(), target.join(entry.file_name()));
            }
            for path in [dir.to_owned(), dir.join("xdg"), dir.join("xdg/d365meta"), target.clone()] {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            for entry in std::fs::read_dir(&target).unwrap().flatten() {
                std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
            }
            copy
        } else {
            PathBuf::from(env!("CARGO_BIN_EXE_d365meta"))
        };
        ReadOnlyUser { dir: dir.to_owned(), binary, as_root }
    }

    /// Takes write access to `db` (and, unless root, to its directory) away.
    fn protect(&self, db: &Path) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(db, std::fs::Permissions::from_mode(0o444)).unwrap();
        if !self.as_root {
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        }
    }

    fn restore(&self) {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o755));
    }

    async fn run(&self, db: &Path, args: &[&str]) -> Output {
        let (user, db, args) = (self.clone(), db.to_owned(), args.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        tokio::task::spawn_blocking(move || {
            let mut command = if user.as_root {
                let mut c = Command::new("setpriv");
                c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(&user.binary);
                c.env("HOME", user.dir.join("home")).env("XDG_CACHE_HOME", user.dir.join("xdg"));
                c
            } else {
                Command::new(&user.binary)
            };
            command.arg("--cache").arg(&db).args(&args).output().unwrap()
        })
        .await
        .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_the_user_may_only_read_can_be_read() {
    let sim = simulator(Scale::Tiny).await;
    let dir = scratch("readonly");
    let db = dir.join("cache.db");
    json(&run(&db, &["sync", &sim.env(0).base_url(), "--json"]).await);
    let name = Dataset::generate(Scale::Tiny).public_entities[0].name.clone();
    let user = ReadOnlyUser::new(&dir);
    user.protect(&db);
    let before = std::fs::read(&db).unwrap();
    let entity = json(&user.run(&db, &["entity", &name, "--json"]).await);
    assert_eq!(entity["public_entity"]["name"], name.as_str());
    let stats = json(&user.run(&db, &["stats", "--json"]).await);
    assert_eq!(stats["environments"].as_array().unwrap().len(), 1);
    let search = json(&user.run(&db, &["search", &name, "--json"]).await);
    assert!(search["total"].as_u64().unwrap() >= 1);
    // A write is refused with a clear error, and the file is left as it was.
    let out = user.run(&db, &["gc"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot write the cache database") && stderr(&out).contains("read-only"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&db).unwrap(), before, "the file was changed");
    user.restore();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn export_component_writes_the_embedded_core_byte_for_byte() {
    let dir = scratch("export");
    let wasm = dir.join("out/d365meta.wasm");
    let out = d365meta(&dir.join("cache.db"), &["export-component", wasm.to_str().unwrap(), "--json"]);
    let printed = json(&out);
    let bytes = std::fs::read(&wasm).unwrap();
    assert_eq!(bytes, d365meta::runtime::CORE_WASM);
    assert_eq!(printed["bytes"], bytes.len());
    // A component (layer 1), not a core module: the WebAssembly header's layer field.
    assert_eq!(&bytes[..4], b"\0asm");
    assert_eq!(&bytes[6..8], &[1, 0], "not a component");
    assert!(!dir.join("cache.db").exists(), "exporting opens no cache");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn with_json_a_failure_prints_its_error_kind_and_message() {
    let dir = scratch("json-errors");
    let db = dir.join("cache.db");
    let out = d365meta(&db, &["--json", "sync", "contoso.operations.dynamics.com"]);
    assert_eq!(out.status.code(), Some(2));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["error"]["kind"], "invalid-input", "{printed}");
    assert!(printed["error"]["message"].as_str().unwrap().contains("base URL"), "{printed}");

    let out = d365meta(&db, &["--json", "history", "--env", "http://127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(3));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["error"]["kind"], "not-found", "{printed}");

    // A lookup in a cache with nothing synced: an error, printed once.
    let out = d365meta(&db, &["--json", "entity", "CustomerV4"]);
    assert_eq!(out.status.code(), Some(3));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["error"]["kind"], "not-found", "{printed}");
    assert!(printed["error"]["message"].as_str().unwrap().contains("nothing is synced yet"), "{printed}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn diff_prints_text_markdown_and_the_documented_json() {
    let v1 = Dataset::generate(Scale::Tiny);
    let (v2, evolution) = v1.evolve(5, 3);
    let sim = Simulator::start(
        "127.0.0.1".parse().unwrap(),
        vec![EnvironmentSpec::new("old", Arc::new(v1)), EnvironmentSpec::new("new", Arc::new(v2))],
    )
    .await
    .unwrap();
    let dir = scratch("diff");
    let db = dir.join("cache.db");
    let (old, new) = (sim.env(0).base_url(), sim.env(1).base_url());
    for url in [&old, &new] {
        assert!(run(&db, &["sync", url]).await.status.success());
    }
    let out = json(&run(&db, &["diff", &old, &new, "--json"]).await);
    for key in ["a", "b", "modules", "objects", "labels", "unchanged"] {
        assert!(out.get(key).is_some(), "no {key} in {out}");
    }
    let changed = evolution.changed_public_entities[0].as_str();
    let entity = out["objects"].as_array().unwrap().iter().find(|o| o["name"] == changed).expect("a changed entity");
    assert_eq!(entity["kind"], "public-entity");
    assert_eq!(entity["change"], "changed");
    let first = &entity["changes"][0];
    for key in ["part", "name", "change", "field", "old", "new", "breaking"] {
        assert!(first.get(key).is_some(), "no {key} in {first}");
    }
    let removed = evolution.removed_public_entities[0].as_str();
    let text = run(&db, &["diff", &old, &new]).await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!("- public-entity {removed}  [breaking]")), "{text}");
    assert!(text.contains(&format!("~ public-entity {changed}")), "{text}");
    let markdown = run(&db, &["diff", &old, &new, "--format", "markdown", "--only", "breaking"]).await;
    let markdown = String::from_utf8_lossy(&markdown.stdout);
    assert!(markdown.starts_with("## Metadata changes"), "{markdown}");
    assert!(markdown.contains(&format!("| - | public-entity | `{removed}` | removed | **yes** |")), "{markdown}");
    let bad = run(&db, &["diff", &old, "not-a-hash!"]).await;
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    let unknown = run(&db, &["diff", &old, "http://127.0.0.1:1"]).await;
    assert_eq!(unknown.status.code(), Some(3), "{}", stderr(&unknown));
    sim.shutdown().await;
}

/// The files a test must find unchanged: the database and what SQLite may keep beside it.
fn snapshot_of(db: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    ["", "-wal", "-shm", "-journal", ".locks"]
        .iter()
        .map(|suffix| {
            let mut path = db.as_os_str().to_owned();
            path.push(suffix);
            (suffix.to_string(), std::fs::read(PathBuf::from(path)).ok())
        })
        .collect()
}

fn application_id(db: &Path) -> i32 {
    rusqlite::Connection::open(db).unwrap().query_row("PRAGMA application_id", [], |r| r.get(0)).unwrap()
}

#[test]
fn another_programs_database_is_refused_and_left_byte_for_byte() {
    let dir = scratch("foreign");
    // Another program's SQLite file, in rollback-journal mode; one marked with another id; and the
    // cache the Python d365fo-client writes (in WAL mode).
    let plain = dir.join("inventory.db");
    rusqlite::Connection::open(&plain)
        .unwrap()
        .execute_batch("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO items (name) VALUES ('bolt');")
        .unwrap();
    let marked = dir.join("marked.db");
    rusqlite::Connection::open(&marked).unwrap().execute_batch("PRAGMA application_id = 1234;").unwrap();
    let python = dir.join("metadata_v2.db");
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/d365fo-client-cache/metadata_v2.db"), &python).unwrap();

    for (db, why) in [
        (&plain, "it holds tables of another program (items)"),
        (&marked, "its header names another program (application id 0x000004d2)"),
        (&python, "it holds tables of another program (action_parameters,"),
    ] {
        let before = snapshot_of(db);
        for args in [&["sync", "http://127.0.0.1:9"][..], &["stats"], &["gc"], &["search", "customer"]] {
            let out = d365meta(db, args);
            assert_eq!(out.status.code(), Some(2), "{args:?} on {}: {}", db.display(), stderr(&out));
            let message = stderr(&out);
            assert!(message.contains(&format!("{} is not a d365meta cache", db.display())) && message.contains(why), "{message}");
            assert!(message.contains("left as it is"), "{message}");
        }
        assert!(snapshot_of(db) == before, "{} was changed", db.display());
    }

    // An empty file, and a new one, become caches, marked as such.
    let empty = dir.join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let new = dir.join("new.db");
    for db in [&empty, &new] {
        json(&d365meta(db, &["gc", "--json"]));
        assert_eq!(application_id(db), 0x4433_3635, "{}", db.display());
    }
    // A cache written before caches were marked is still one, and gets marked.
    rusqlite::Connection::open(&new).unwrap().execute_batch("PRAGMA application_id = 0;").unwrap();
    json(&d365meta(&new, &["stats", "--json"]));
    json(&d365meta(&new, &["gc", "--json"]));
    assert_eq!(application_id(&new), 0x4433_3635);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn requests_go_through_the_proxy_the_usual_variables_name() {
    // The simulator stands in for the proxy: a request for a host that does not resolve reaches
    // it only through HTTP_PROXY, as a proxy request naming the whole URL.
    let sim = simulator(Scale::Tiny).await;
    let dir = scratch("proxy");
    let db = dir.join("cache.db");
    let proxy = sim.env(0).base_url();
    let out = tokio::task::spawn_blocking(move || {
        command(&db, &["--auth", "none", "--json", "version", "http://contoso.invalid"]).env("HTTP_PROXY", proxy).output().unwrap()
    })
    .await
    .unwrap();
    let report = json(&out);
    assert_eq!(report["base_url"], "http://contoso.invalid");
    assert!(sim.env(0).requests().iter().any(|r| r.path_and_query.contains("GetInstalledModules")));
    std::fs::remove_dir_all(dir).unwrap();
}
