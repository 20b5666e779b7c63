//! Crash safety: a syncing process killed with SIGKILL at random moments leaves a cache that opens,
//! shows the previous complete state, and lets the next sync finish.
//!
//! The kill points are random; the seed is printed, and `D365META_CRASH_SEED` replays a run.

use d365meta_simulator::{Dataset, EnvironmentSpec, Fault, FaultKind, Scale, Simulator};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KILLS: usize = 10;

fn d365meta(db: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_d365meta"));
    c.arg("--cache").arg(db).args(args).stdout(Stdio::null()).stderr(Stdio::null());
    c
}

/// What readers of an environment see: (kind, position, object hash) and (label, language, text).
type Visible = (Vec<(String, i64, String)>, Vec<(String, String, String)>);

fn visible(db: &Path, url: &str) -> Visible {
    let conn = Connection::open(db).unwrap();
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
    let dangling: i64 = conn
        .query_row("SELECT COUNT(*) FROM environments e JOIN snapshots s ON s.id = e.snapshot_id WHERE s.state <> 'complete'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(dangling, 0, "an environment points at an incomplete snapshot");
    let objects = rows(
        &conn,
        "SELECT so.kind, so.position, o.hash FROM environments e JOIN snapshot_objects so ON so.snapshot_id = e.snapshot_id
         JOIN objects o ON o.id = so.object_id WHERE e.base_url = ?1 ORDER BY 1, 2",
        url,
    );
    let labels = rows(
        &conn,
        "SELECT l.label_id, l.language, l.text FROM environments e JOIN snapshot_labels sl ON sl.snapshot_id = e.snapshot_id
         JOIN labels l ON l.id = sl.label_row WHERE e.base_url = ?1 ORDER BY 1, 2",
        url,
    );
    (objects, labels)
}

/// The rows of a three-column query about one environment.
fn rows<A, B, C>(conn: &Connection, sql: &str, url: &str) -> Vec<(A, B, C)>
where
    A: rusqlite::types::FromSql,
    B: rusqlite::types::FromSql,
    C: rusqlite::types::FromSql,
{
    conn.prepare(sql).unwrap().query_map([url], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().collect::<Result<Vec<_>, _>>().unwrap()
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("d365meta-crash-{}-{:08x}", std::process::id(), fastrand::u32(..)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_at_random_moments_never_leaves_a_broken_or_half_visible_cache() {
    let seed = std::env::var("D365META_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| fastrand::u64(..));
    println!("D365META_CRASH_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);

    let v1 = Arc::new(Dataset::generate(Scale::Small));
    let v2 = Arc::new(v1.evolve(21, 8).0);
    let sim = Simulator::start(
        "127.0.0.1".parse().unwrap(),
        vec![EnvironmentSpec::new("prod", v1.clone()), EnvironmentSpec::new("reference", v2.clone())],
    )
    .await
    .unwrap();
    let url = sim.env(0).base_url();
    let dir = scratch();
    let db = dir.join("cache.db");
    let reference_db = dir.join("reference.db");

    // The previous complete state, and what the finished new state must look like.
    let status = tokio::task::spawn_blocking({
        let (db, url) = (db.clone(), url.clone());
        move || d365meta(&db, &["sync", &url]).status().unwrap()
    })
    .await
    .unwrap();
    assert!(status.success());
    let before = visible(&db, &url);
    let reference_url = sim.env(1).base_url();
    let status = tokio::task::spawn_blocking({
        let (db, url) = (reference_db.clone(), reference_url.clone());
        move || d365meta(&db, &["sync", &url, "--strategy", "full"]).status().unwrap()
    })
    .await
    .unwrap();
    assert!(status.success());
    let after = visible(&reference_db, &reference_url);
    assert_ne!(before.0, after.0);

    // Upgrade the environment, and slow its answers so the kills land in every phase.
    sim.env(0).set_dataset(v2.clone());
    sim.env(0).set_modules(None);
    sim.env(0).inject(Fault::new("/Metadata/", usize::MAX, FaultKind::Delay(Duration::from_millis(8))));

    // Once a sync has completed, the complete state readers must keep seeing is the new version.
    let mut previous = before.clone();
    let mut killed_after_completion = 0;
    for round in 0..KILLS {
        let wait = Duration::from_millis(rng.u64(0..3000));
        let (db2, url2) = (db.clone(), url.clone());
        let finished = tokio::task::spawn_blocking(move || {
            let mut child = d365meta(&db2, &["sync", &url2, "--strategy", "full"]).spawn().unwrap();
            let deadline = Instant::now() + wait;
            while Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            child.kill().unwrap();
            child.wait().unwrap();
            false
        })
        .await
        .unwrap();
        let now = visible(&db, &url);
        if finished || (now.0 == after.0 && previous != after) {
            killed_after_completion += 1;
            assert_eq!(now, after, "round {round}: a finished sync shows the new version completely");
            previous = after.clone();
        } else {
            assert_eq!(now, previous, "round {round} (killed after {wait:?}): readers must see the previous complete state");
        }
        // The cache opens and answers through the component too.
        let status = tokio::task::spawn_blocking({
            let db = db.clone();
            move || d365meta(&db, &["history", "--limit", "1"]).status().unwrap()
        })
        .await
        .unwrap();
        assert!(status.success(), "round {round}: the cache did not open");
    }
    println!("{killed_after_completion} of the rounds ended after the sync completed");

    // The next sync finishes and shows exactly the new version.
    sim.env(0).clear_faults();
    let status = tokio::task::spawn_blocking({
        let (db, url) = (db.clone(), url.clone());
        move || d365meta(&db, &["sync", &url, "--strategy", "full"]).status().unwrap()
    })
    .await
    .unwrap();
    assert!(status.success());
    assert_eq!(visible(&db, &url), after);
    let conn = Connection::open(&db).unwrap();
    let interrupted: i64 =
        conn.query_row("SELECT COUNT(*) FROM sync_runs WHERE outcome IN ('interrupted', 'running')", [], |r| r.get(0)).unwrap();
    let running: i64 = conn.query_row("SELECT COUNT(*) FROM sync_runs WHERE outcome = 'running'", [], |r| r.get(0)).unwrap();
    assert_eq!(running, 0, "killed runs are recorded as interrupted by the next sync");
    assert!(interrupted > 0);
    std::fs::remove_dir_all(dir).unwrap();
}
