//! Version detection end to end: the real component in the real host against the simulator.

use d365meta::cache::{Cache, ErrorKind};
use d365meta_simulator::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TOKEN, Fault, Scale, load_modules_file};
use d365meta_tests::*;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SAMPLE_HASH: &str = "ae97cdc85de9b242364367e8bd9bf662a32cee6aaea4d8b47c8e35c4f0a8b90b";

fn sample_modules() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("simulator/tests/fixtures/get-installed-modules.sample.json");
    load_modules_file(&path).unwrap()
}

fn sha256(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn the_sample_modules_give_the_design_hash_in_three_requests() {
    let mut env = spec("sample", dataset(Scale::Tiny));
    env.modules = Some(sample_modules());
    let sim = simulator(vec![env]).await;
    let scratch = Scratch::new("sample");
    let mut cache = open(&scratch.db()).await;
    let report = cache.detect_version(&sim.env(0).base_url()).await.unwrap();
    assert_eq!(report.modules_hash, SAMPLE_HASH);
    assert_eq!(report.modules.len(), 4);
    assert_eq!(report.modules[3].module_id, "ApplicationFoundation");
    assert_eq!(report.modules[3].version, "7.0.7521.60");
    let data = dataset(Scale::Tiny);
    assert_eq!(report.application_version.as_deref(), Some(data.application_version.as_str()));
    assert_eq!(report.platform_version.as_deref(), Some(data.platform_version.as_str()));
    assert!(!report.fallback && report.unparsed.is_empty() && report.new_version);
    assert_eq!(report.requests, 3);
    let served = sim.env(0).requests();
    assert_eq!(served.len(), 3, "{served:?}");
    assert!(served.iter().all(|r| r.method == "POST" && r.status == 200 && r.authorization.is_none()));
}

#[tokio::test]
async fn environments_with_equal_modules_share_one_version_and_others_do_not() {
    let base = dataset(Scale::Tiny);
    let (newer, evolution) = base.evolve(7, 2);
    let sim = simulator(vec![spec("a", base.clone()), spec("b", base.clone()), spec("c", Arc::new(newer))]).await;
    let scratch = Scratch::new("share");
    let mut cache = open(&scratch.db()).await;
    let urls: Vec<String> = (0..3).map(|i| sim.env(i).base_url()).collect();
    let a = cache.detect_version(&urls[0]).await.unwrap();
    let b = cache.detect_version(&urls[1]).await.unwrap();
    let c = cache.detect_version(&urls[2]).await.unwrap();
    assert_eq!(a.modules_hash, b.modules_hash);
    assert!(a.new_version && !b.new_version && c.new_version);
    assert_eq!(b.shared_with, vec![urls[0].clone()]);
    assert_ne!(c.modules_hash, a.modules_hash);
    assert!(c.shared_with.is_empty());

    let versions = cache.list_versions().await.unwrap();
    assert_eq!(versions.len(), 2);
    let shared = versions.iter().find(|v| v.modules_hash == a.modules_hash).unwrap();
    let mut expected = vec![urls[0].clone(), urls[1].clone()];
    expected.sort();
    assert_eq!(shared.environments, expected);
    assert_eq!(cache.list_environments().await.unwrap().len(), 3);

    let diff = cache.compare_modules(a.modules.clone(), c.modules.clone()).await.unwrap();
    let changed: Vec<String> = diff.changed.iter().map(|m| m.module_id.clone()).collect();
    let mut bumped = evolution.bumped_modules.clone();
    bumped.sort();
    assert_eq!(changed, bumped);
    assert!(diff.added.is_empty() && diff.removed.is_empty());
    assert_eq!(diff.unchanged as usize, a.modules.len() - bumped.len());
}

#[tokio::test]
async fn a_version_survives_reopening_the_database() {
    let sim = simulator(vec![spec("a", dataset(Scale::Tiny))]).await;
    let scratch = Scratch::new("reopen");
    let first = open(&scratch.db()).await.detect_version(&sim.env(0).base_url()).await.unwrap();
    let mut cache = open(&scratch.db()).await;
    let again = cache.detect_version(&sim.env(0).base_url()).await.unwrap();
    assert_eq!(again.modules_hash, first.modules_hash);
    assert!(!again.new_version);
    assert_eq!(again.first_seen_ms, first.first_seen_ms);
}

#[tokio::test]
async fn without_a_module_list_the_identity_falls_back_to_build_versions() {
    let sim = simulator(vec![spec("old", dataset(Scale::Tiny))]).await;
    sim.env(0).inject(Fault::status("GetInstalledModules", usize::MAX, 404));
    let scratch = Scratch::new("fallback");
    let report = open(&scratch.db()).await.detect_version(&sim.env(0).base_url()).await.unwrap();
    let data = dataset(Scale::Tiny);
    assert!(report.fallback);
    assert!(report.fallback_reason.unwrap().contains("HTTP 404"));
    assert!(report.modules.is_empty());
    let expected = sha256(&format!("fallback|application:{}|platform:{}", data.application_version, data.platform_version));
    assert_eq!(report.modules_hash, expected);
}

#[tokio::test]
async fn unparsed_lines_are_reported_and_part_of_the_identity() {
    let sim = simulator(vec![spec("clean", dataset(Scale::Tiny)), spec("odd", dataset(Scale::Tiny))]).await;
    let mut lines = sim.env(1).modules();
    lines.push("Name: Broken | Version: 1.0".to_owned());
    sim.env(1).set_modules(Some(lines.clone()));
    let scratch = Scratch::new("unparsed");
    let mut cache = open(&scratch.db()).await;
    let clean = cache.detect_version(&sim.env(0).base_url()).await.unwrap();
    let odd = cache.detect_version(&sim.env(1).base_url()).await.unwrap();
    assert_eq!(odd.unparsed.len(), 1);
    assert_eq!(odd.unparsed[0].line as usize, lines.len());
    assert_eq!(odd.unparsed[0].text, "Name: Broken | Version: 1.0");
    assert!(odd.unparsed[0].reason.contains("Module"));
    assert_eq!(odd.modules.len(), clean.modules.len());
    assert_ne!(odd.modules_hash, clean.modules_hash, "a line that did not parse must not leave the identity unchanged");
    assert!(odd.warnings.iter().any(|w| w.contains("could not be parsed")));
}

#[tokio::test]
async fn throttling_is_retried_after_the_delay_the_service_asks_for() {
    let sim = simulator(vec![spec("busy", dataset(Scale::Tiny))]).await;
    sim.env(0).inject(Fault::throttle("GetInstalledModules", 1, 1));
    let scratch = Scratch::new("throttle");
    let mut cache = open(&scratch.db()).await;
    let started = Instant::now();
    let report = cache.detect_version(&sim.env(0).base_url()).await.unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(1), "retried before Retry-After: {elapsed:?}");
    let modules: Vec<(u16, std::time::Instant)> =
        sim.env(0).requests().into_iter().filter(|r| r.path_and_query.contains("GetInstalledModules")).map(|r| (r.status, r.at)).collect();
    assert_eq!(modules.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [429, 200]);
    assert!(modules[1].1 - modules[0].1 >= Duration::from_secs(1), "the retry came {:?} after the 429", modules[1].1 - modules[0].1);
    assert_eq!(report.requests, 4, "three requests, one of them sent twice");
    assert_eq!(report.modules_hash.len(), 64);
}

#[tokio::test]
async fn unavailable_service_is_retried_with_backoff_and_a_budget() {
    let sim = simulator(vec![spec("servicing", dataset(Scale::Tiny))]).await;
    sim.env(0).inject(Fault::status("GetInstalledModules", 2, 503));
    let scratch = Scratch::new("503");
    let mut cache = open(&scratch.db()).await;
    let report = cache.detect_version(&sim.env(0).base_url()).await.unwrap();
    assert_eq!(count_requests(&sim.env(0), "GetInstalledModules"), 3);
    assert_eq!(report.requests, 5);

    // A service that never recovers: the retries stop at the attempt limit and the error says so.
    sim.env(0).inject(Fault::status("GetInstalledModules", usize::MAX, 503));
    let err = cache.detect_version(&sim.env(0).base_url()).await.unwrap_err();
    let core = core_error(&err);
    assert_eq!(core.kind, ErrorKind::Service);
    assert!(core.message.contains("GetInstalledModules") && core.message.contains("HTTP 503"), "{}", core.message);
    assert!(core.message.contains("after 6 attempts"), "{}", core.message);
}

#[tokio::test]
async fn a_refused_connection_fails_cleanly_and_keeps_what_is_stored() {
    let sim = simulator(vec![spec("a", dataset(Scale::Tiny))]).await;
    let scratch = Scratch::new("refused");
    let mut cache = open(&scratch.db()).await;
    cache.detect_version(&sim.env(0).base_url()).await.unwrap();
    let gone = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let err = cache.detect_version(&gone).await.unwrap_err();
    let core = core_error(&err);
    assert_eq!(core.kind, ErrorKind::Network);
    assert!(core.message.contains("could not connect") && core.message.contains(&gone), "{}", core.message);
    assert_eq!(cache.list_environments().await.unwrap().len(), 1, "the failed detection recorded nothing");
}

#[tokio::test]
async fn bad_base_urls_are_refused_before_any_request() {
    let scratch = Scratch::new("badurl");
    let mut cache = open(&scratch.db()).await;
    for url in ["contoso.operations.dynamics.com", "ftp://x", "http://"] {
        let err = cache.detect_version(url).await.unwrap_err();
        assert_eq!(core_error(&err).kind, ErrorKind::InvalidInput, "{url}");
    }
}

#[tokio::test]
async fn tokens_are_obtained_by_the_host_and_sent_where_required() {
    let scratch = Scratch::new("token");
    let (sim, ca) = tls_simulator(vec![spec("secured", dataset(Scale::Tiny))], &scratch).await;
    sim.env(0).set_require_bearer(Some(DEFAULT_TOKEN.to_owned()));

    // Without trusting the simulator's authority nothing is reached, and the error says why.
    let err = open(&scratch.db()).await.detect_version(&sim.env(0).base_url()).await.unwrap_err();
    assert!(core_error(&err).message.to_lowercase().contains("certificate"), "{err:#}");
    // Trusting it but without a token, the service refuses, and the error says what usually causes it.
    let mut trusting = options(&scratch.db());
    trusting.http.ca_file = Some(ca.clone());
    let err = Cache::open(runtime(), trusting).await.unwrap().detect_version(&sim.env(0).base_url()).await.unwrap_err();
    let message = &core_error(&err).message;
    assert!(message.contains("HTTP 401") && message.contains("Microsoft Entra ID applications"), "{message}");

    // Signed in with the client secret through the SDK, at the simulator's HTTPS authority.
    let mut cache = Cache::open(runtime(), signed_in_options(&scratch.db(), &sim, &ca)).await.unwrap();
    sim.env(0).clear_requests();
    let report = cache.detect_version(&sim.env(0).base_url()).await.unwrap();
    assert_eq!(report.requests, 3);
    let served = sim.env(0).requests();
    assert!(served.iter().all(|r| r.authorization.as_deref() == Some(&format!("Bearer {DEFAULT_TOKEN}")[..])), "{served:?}");
    assert_eq!(sim.token_requests().len(), 1, "one token serves every request");

    // A token the service stops accepting is replaced once: the next request signs in again.
    sim.set_credentials(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, "a-new-token");
    sim.env(0).set_require_bearer(Some("a-new-token".to_owned()));
    let report = cache.detect_version(&sim.env(0).base_url()).await.unwrap();
    assert!(report.requests >= 3);
    assert_eq!(sim.token_requests().len(), 2, "signed in again after the 401");
}

#[tokio::test]
async fn a_database_from_a_newer_d365meta_is_refused() {
    let scratch = Scratch::new("newer");
    drop(open(&scratch.db()).await);
    let conn = rusqlite::Connection::open(scratch.db()).unwrap();
    conn.execute("INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (99, 'from the future', 0)", []).unwrap();
    drop(conn);
    let err = Cache::open(runtime(), options(&scratch.db())).await.err().expect("a newer schema must be refused");
    let core = core_error(&err);
    assert_eq!(core.kind, ErrorKind::Schema);
    assert!(core.message.contains("schema version 99") && core.message.contains("upgrade d365meta"), "{}", core.message);
}

#[tokio::test]
async fn opening_reports_the_migrations_it_applied() {
    let scratch = Scratch::new("migrations");
    let fresh = open(&scratch.db()).await;
    assert_eq!(fresh.schema().applied, (1..=fresh.schema().latest).collect::<Vec<_>>());
    assert_eq!(fresh.schema().version, fresh.schema().latest);
    drop(fresh);
    let again = open(&scratch.db()).await;
    assert!(again.schema().applied.is_empty());
    assert_eq!(again.schema().version, again.schema().latest);
}
