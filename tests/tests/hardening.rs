//! What a hostile service and a flaky network do to a sync: redirects, resets, cut-off answers,
//! throttling, slow or short-lived tokens, oversized answers, bad language codes, duplicate items.
//! Each test reproduces one fault against the real component in the real host over loopback.

use d365meta::bindings::name_of;
use d365meta::cache::{Cache, ErrorKind, Strategy, SyncOptions};
use d365meta_simulator::{DEFAULT_TOKEN, Fault, FaultKind, Scale};
use d365meta_tests::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_redirect_to_another_origin_is_refused_and_that_origin_never_reached() {
    let data = dataset(Scale::Tiny);
    let sim = simulator(vec![spec("a", data.clone()), spec("elsewhere", data.clone())]).await;
    let (url, elsewhere) = (sim.env(0).base_url(), sim.env(1).base_url());
    let scratch = Scratch::new("redirect-off");
    let mut cache = open(&scratch.db()).await;
    for status in [301, 302, 307, 308] {
        sim.env(0).inject(Fault::new(
            "/Metadata/DataEntities",
            1,
            FaultKind::Redirect { status, location: format!("{elsewhere}/Metadata/DataEntities") },
        ));
        let err = cache.sync(&url, auto()).await.unwrap_err();
        let core = core_error(&err);
        assert_eq!(core.kind, ErrorKind::Denied, "{status}: {}", core.message);
        assert!(
            core.message.contains(&format!("redirected (HTTP {status})"))
                && core.message.contains(&elsewhere)
                && core.message.contains(&url),
            "{status}: {}",
            core.message
        );
    }
    assert_eq!(sim.env(1).requests().len(), 0, "the other origin was contacted: {:?}", sim.env(1).requests());
    assert_eq!(rows(&scratch.db(), "snapshots WHERE state = 'complete'"), 0);
    let history = cache.history(Some(&url), 10).await.unwrap();
    assert!(history.iter().all(|r| name_of(&r.outcome) == "failed"), "{history:?}");

    // A redirect of the version POST that would turn it into a GET is refused, even on the same origin.
    sim.env(0).inject(Fault::new(
        "GetInstalledModules",
        1,
        FaultKind::Redirect {
            status: 302,
            location: format!("{url}/data/SystemNotifications/Microsoft.Dynamics.DataEntities.GetInstalledModules"),
        },
    ));
    let err = cache.detect_version(&url).await.unwrap_err();
    assert!(core_error(&err).message.contains("would turn it into a GET"), "{err:#}");
}

#[tokio::test]
async fn a_redirect_within_the_origin_is_followed_as_another_attempt() {
    let data = dataset(Scale::Tiny);
    let sim = simulator(vec![spec("a", data.clone())]).await;
    let url = sim.env(0).base_url();
    // Relative and absolute locations, GET and POST (307 keeps the method and body).
    sim.env(0).inject(Fault::new(
        "/Metadata/DataEntities",
        1,
        FaultKind::Redirect { status: 302, location: "/Metadata/DataEntities".into() },
    ));
    sim.env(0).inject(Fault::new(
        "GetInstalledModules",
        1,
        FaultKind::Redirect {
            status: 307,
            location: format!("{url}/data/SystemNotifications/Microsoft.Dynamics.DataEntities.GetInstalledModules"),
        },
    ));
    let scratch = Scratch::new("redirect-on");
    let report = open(&scratch.db()).await.sync(&url, auto()).await.unwrap();
    assert_eq!(counts_array(report.counts.as_ref().unwrap()), expected_counts(&data, &["en-US"]));
    assert_eq!(count_requests(&sim.env(0), "/Metadata/DataEntities"), 2);
    let modules: Vec<_> = sim.env(0).requests().into_iter().filter(|r| r.path_and_query.contains("GetInstalledModules")).collect();
    assert_eq!(modules.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(), ["POST", "POST"], "307 keeps the method");
    assert_eq!(report.requests as usize, sim.env(0).requests().len(), "redirects count as attempts");
}

#[tokio::test]
async fn resets_and_cut_off_answers_are_retried() {
    let data = dataset(Scale::Tiny);
    let sim = simulator(vec![spec("a", data.clone())]).await;
    let env = sim.env(0);
    let label = data.label_ids().into_iter().nth(3).unwrap();
    env.inject(Fault::new("GetInstalledModules", 1, FaultKind::Reset));
    env.inject(Fault::new("GetPlatformBuildVersion", 1, FaultKind::Truncate(10)));
    env.inject(Fault::new("/Metadata/DataEntities", 2, FaultKind::Reset));
    env.inject(Fault::new("/Metadata/PublicEntities", 1, FaultKind::Truncate(1000)));
    env.inject(Fault::new("/Metadata/PublicEnumerations", 1, FaultKind::Close));
    env.inject(Fault::new(format!("Labels(Id='{label}'"), 1, FaultKind::Reset));
    let scratch = Scratch::new("resets");
    let report = open(&scratch.db()).await.sync(&env.base_url(), auto()).await.unwrap();
    assert_eq!(counts_array(report.counts.as_ref().unwrap()), expected_counts(&data, &["en-US"]));
    assert_eq!(count_requests(&env, "GetInstalledModules"), 2);
    assert_eq!(count_requests(&env, "/Metadata/DataEntities"), 3);
    assert_eq!(count_requests(&env, "/Metadata/PublicEntities"), 2);
    assert_eq!(count_requests(&env, "/Metadata/PublicEnumerations"), 2);
    assert_eq!(count_requests(&env, &format!("Labels(Id='{label}'")), 2);
    assert_eq!(report.requests as usize, env.requests().len());
}

#[tokio::test]
async fn an_answer_whose_json_is_cut_off_is_asked_for_again() {
    // A body complete at the HTTP level but cut mid-JSON (a proxy that closed a connection-delimited
    // answer early): the component asks again instead of reporting invalid JSON.
    let data = dataset(Scale::Tiny);
    let sim = simulator(vec![spec("a", data.clone())]).await;
    let env = sim.env(0);
    let whole = fetch_text(&format!("{}/Metadata/PublicEntities", env.base_url())).await;
    let label = data.label_ids().into_iter().nth(2).unwrap();
    env.clear_requests();
    env.inject(Fault::new("/Metadata/PublicEntities", 1, FaultKind::Body(whole[..whole.len() / 2].to_owned())));
    env.inject(Fault::new("GetInstalledModules", 1, FaultKind::Body(r#"{"value":["Name: A | Vers"#.to_owned())));
    env.inject(Fault::new(format!("Labels(Id='{label}'"), 1, FaultKind::Body(r#"{"Id":"x","Value":"Cut"#.to_owned())));
    let scratch = Scratch::new("cutjson");
    let report = open(&scratch.db()).await.sync(&env.base_url(), auto()).await.unwrap();
    assert_eq!(counts_array(report.counts.as_ref().unwrap()), expected_counts(&data, &["en-US"]));
    assert_eq!(count_requests(&env, "/Metadata/PublicEntities"), 2);
    assert_eq!(count_requests(&env, "GetInstalledModules"), 2);
    assert_eq!(count_requests(&env, &format!("Labels(Id='{label}'")), 2);

    // An answer that is cut off every time fails, naming the request, after a bounded number of tries.
    env.clear_requests();
    env.inject(Fault::new("/Metadata/DataEntities", usize::MAX, FaultKind::Body(r#"{"value":[{"Name":"#.to_owned())));
    let scratch = Scratch::new("cutjson-always");
    let err = open(&scratch.db()).await.sync(&env.base_url(), auto()).await.unwrap_err();
    let core = core_error(&err);
    assert_eq!(core.kind, ErrorKind::Parse);
    assert!(core.message.contains("/Metadata/DataEntities") && core.message.contains("ends before"), "{}", core.message);
    assert_eq!(count_requests(&env, "/Metadata/DataEntities"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_labels_do_not_hold_up_the_others() {
    // One label in ten is answered 429 or 503 with `Retry-After: 1`. A request waiting out its pause
    // gives its slot to the next, so the pauses overlap instead of adding up batch by batch.
    let data = dataset(Scale::Small);
    let sim = simulator(vec![spec("a", data.clone())]).await;
    let env = sim.env(0);
    let status = |status| FaultKind::Status { status, retry_after: Some("1".to_owned()), body: None };
    env.inject(Fault::sometimes("/Metadata/Labels(", 0.05, status(429)));
    env.inject(Fault::sometimes("/Metadata/Labels(", 0.05, status(503)));
    let scratch = Scratch::new("throttled");
    let mut cache =
        Cache::open(runtime(), d365meta::cache::CacheOptions { http: Default::default(), ..options(&scratch.db()) }).await.unwrap();
    let started = Instant::now();
    let report = cache.sync(&env.base_url(), auto()).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(counts_array(report.counts.as_ref().unwrap()), expected_counts(&data, &["en-US"]));
    let labels = data.label_ids().len();
    let throttled = env.requests().iter().filter(|r| matches!(r.status, 429 | 503)).count();
    assert!(throttled * 20 > labels, "about one label in ten is throttled: {throttled} of {labels}");
    // Served one after another, the pauses alone would take `throttled` seconds (about 500); at 16
    // requests in flight, about a sixteenth of that.
    eprintln!("{labels} labels, {throttled} throttled answers with Retry-After: 1, synced in {elapsed:?}");
    assert!(elapsed < Duration::from_secs(throttled as u64 / 4), "{labels} labels with {throttled} throttled took {elapsed:?}");
    // Every pause was at least what the service asked for.
    let log = env.requests();
    for (i, r) in log.iter().enumerate().filter(|(_, r)| matches!(r.status, 429 | 503)) {
        let again = log[i + 1..].iter().find(|n| n.path_and_query == r.path_and_query).expect("every throttled label is asked again");
        assert!(again.at.duration_since(r.at) >= Duration::from_millis(990), "asked again after {:?}", again.at.duration_since(r.at));
    }
}

#[tokio::test]
async fn the_token_endpoint_is_retried_and_a_short_lived_token_reused() {
    let data = dataset(Scale::Tiny);
    let scratch = Scratch::new("token");
    let (sim, ca) = tls_simulator(vec![spec("a", data.clone())], &scratch).await;
    sim.env(0).set_require_bearer(Some(DEFAULT_TOKEN.to_owned()));
    sim.set_token_expires_in(30);
    sim.inject_token_fault(Fault::throttle("/token", 1, 1));
    sim.inject_token_fault(Fault::status("/token", 1, 503));
    sim.inject_token_fault(Fault::new("/token", 1, FaultKind::Reset));
    let mut cache = Cache::open(runtime(), signed_in_options(&scratch.db(), &sim, &ca)).await.unwrap();
    let report = cache.sync(&sim.env(0).base_url(), auto()).await.unwrap();
    assert_eq!(counts_array(report.counts.as_ref().unwrap()), expected_counts(&data, &["en-US"]));
    let tokens = sim.token_requests();
    assert_eq!(tokens.iter().map(|r| r.status).collect::<Vec<_>>(), [429, 503, 0, 200], "retried, then one token for the whole sync");
    assert!(sim.env(0).requests().iter().all(|r| r.status != 401));
    assert!(report.requests > 30, "many requests shared the one token");
}

#[tokio::test]
async fn an_oversized_answer_fails_cleanly_naming_the_limit() {
    let data = dataset(Scale::Tiny);
    let sim = simulator(vec![spec("a", data.clone())]).await;
    let url = sim.env(0).base_url();
    let scratch = Scratch::new("oversized");
    let mut cache =
        Cache::open(runtime(), d365meta::cache::CacheOptions { http: Default::default(), ..options(&scratch.db()) }).await.unwrap();
    cache.sync(&url, auto()).await.unwrap();
    let before = fingerprint(&scratch.db(), &url);

    // 300 MB, over the 256 MiB default: refused from its declared length, not read.
    let huge = format!(r#"{{"value":[{{"Name":"{}"}}]}}"#, "x".repeat(300_000_000));
    sim.env(0).inject(Fault::new("/Metadata/DataEntities", 1, FaultKind::Body(huge)));
    let err = cache.sync(&url, SyncOptions { strategy: Strategy::Full, ..auto() }).await.unwrap_err();
    let core = core_error(&err);
    assert!(core.message.contains("over the 256 MiB limit") && core.message.contains("--max-response-mb"), "{}", core.message);

    // 150 MB in one item, under the response limit: refused by the item limit, without a trap.
    let big_item = format!(r#"{{"value":[{{"Name":"Big","LabelId":"{}"}}]}}"#, "y".repeat(150_000_000));
    sim.env(0).inject(Fault::new("/Metadata/DataEntities", 1, FaultKind::Body(big_item)));
    let err = cache.sync(&url, SyncOptions { strategy: Strategy::Full, ..auto() }).await.unwrap_err();
    let core = core_error(&err);
    assert_eq!(core.kind, ErrorKind::Parse);
    assert!(core.message.contains("DataEntities item 1") && core.message.contains("at most 16 MiB"), "{}", core.message);

    // The instance still works, the history says how each run ended, and nothing stored was lost.
    let history = cache.history(Some(&url), 3).await.unwrap();
    assert_eq!(history.iter().map(|r| name_of(&r.outcome)).collect::<Vec<_>>(), ["failed", "failed", "succeeded"]);
    assert_eq!(fingerprint(&scratch.db(), &url), before);
}

#[tokio::test]
async fn language_codes_are_normalised_warned_about_and_can_be_dropped() {
    let data = dataset(Scale::Tiny);
    let sim = simulator(vec![spec("a", data.clone())]).await;
    let url = sim.env(0).base_url();
    let scratch = Scratch::new("languages");
    let mut cache = open(&scratch.db()).await;
    // `DE` is `de`, the language the simulator has.
    let report = cache.sync(&url, sync_options(Strategy::Auto, &["en-US", "DE"])).await.unwrap();
    assert_eq!(report.coverage.languages, ["de", "en-US"]);
    assert_eq!(counts_array(report.counts.as_ref().unwrap()), expected_counts(&data, &["en-US", "de"]));
    assert!(sim.env(0).requests().iter().any(|r| r.path_and_query.contains("Language='de')")));
    assert!(!report.warnings.iter().any(|w| w.contains("no text")), "{:?}", report.warnings);

    // A language the environment does not have: every label is missing, and the sync says so.
    let report = cache.sync(&url, sync_options(Strategy::Auto, &["FR-ca"])).await.unwrap();
    assert_eq!(report.coverage.languages, ["de", "en-US", "fr-CA"]);
    let warning = report.warnings.iter().find(|w| w.contains("fr-CA")).unwrap_or_else(|| panic!("no warning: {:?}", report.warnings));
    assert!(warning.contains("no text in fr-CA for any") && warning.contains("--drop-languages fr-CA"), "{warning}");

    // Dropping it makes a snapshot without it from the cached one, without a request for labels.
    sim.env(0).clear_requests();
    let options = SyncOptions { drop_languages: vec!["fr-ca".into()], ..sync_options(Strategy::Auto, &[]) };
    let report = cache.sync(&url, options).await.unwrap();
    assert_eq!(report.coverage.languages, ["de", "en-US"]);
    assert_eq!(count_requests(&sim.env(0), "/Metadata/"), 0);
    assert_eq!(counts_array(report.counts.as_ref().unwrap()), expected_counts(&data, &["en-US", "de"]));
    // And it stays dropped.
    let report = cache.sync(&url, auto()).await.unwrap();
    assert_eq!(name_of(&report.plan), "up-to-date");
    assert_eq!(report.coverage.languages, ["de", "en-US"]);
    let history = cache.history(Some(&url), 1).await.unwrap();
    assert_eq!(history[0].languages, ["de", "en-US"], "the history lists what the run covers");
    let bad = cache.sync(&url, sync_options(Strategy::Auto, &["en_US"])).await.unwrap_err();
    assert_eq!(core_error(&bad).kind, ErrorKind::InvalidInput);
}

#[tokio::test]
async fn duplicate_items_are_left_out_and_reported() {
    let data = dataset(Scale::Tiny);
    let sim = simulator(vec![spec("a", data.clone())]).await;
    let env = sim.env(0);
    let page: serde_json::Value = serde_json::from_str(&fetch_text(&format!("{}/Metadata/DataEntities", env.base_url())).await).unwrap();
    let mut items = page["value"].as_array().unwrap().clone();
    let mut changed = items[1].clone();
    changed["IsReadOnly"] = serde_json::json!(!changed["IsReadOnly"].as_bool().unwrap());
    items.push(items[0].clone());
    items.push(changed);
    let body = serde_json::json!({"value": items}).to_string();
    env.inject(Fault::new("/Metadata/DataEntities", 1, FaultKind::Body(body)));
    let scratch = Scratch::new("duplicates");
    let report = open(&scratch.db()).await.sync(&env.base_url(), auto()).await.unwrap();
    assert_eq!(report.counts.as_ref().unwrap().data_entities, data.data_entities.len() as u64);
    let warning = report.warnings.iter().find(|w| w.contains("DataEntities")).unwrap_or_else(|| panic!("{:?}", report.warnings));
    assert!(
        warning.contains("2 items repeated") && warning.contains(&data.data_entities[0].name) && warning.contains("1 of them different"),
        "{warning}"
    );
}

#[tokio::test]
async fn a_transiently_garbled_module_list_is_retried_not_taken_for_an_old_environment() {
    let data = dataset(Scale::Tiny);
    let sim = simulator(vec![spec("a", data.clone())]).await;
    sim.env(0).inject(Fault::new("GetInstalledModules", 1, FaultKind::Body("<html>gateway hiccup</html>".into())));
    let scratch = Scratch::new("garbled");
    let report = open(&scratch.db()).await.detect_version(&sim.env(0).base_url()).await.unwrap();
    assert!(!report.fallback);
    assert_eq!(report.modules.len(), data.modules.len());
    // A server error is a failure, not a reason for the fallback identity.
    sim.env(0).inject(Fault::status("GetInstalledModules", 1, 500));
    let err = open(&scratch.db()).await.detect_version(&sim.env(0).base_url()).await.unwrap_err();
    assert_eq!(core_error(&err).kind, ErrorKind::Service);
}

#[tokio::test]
async fn progress_of_the_labels_phase_counts_its_own_bytes() {
    let data = dataset(Scale::Tiny);
    let sim = simulator(vec![spec("a", data.clone())]).await;
    let scratch = Scratch::new("phasebytes");
    let mut options = options(&scratch.db());
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    options.progress = Some(Arc::new(move |e: &d365meta::bindings::host_api::ProgressEvent| seen.lock().unwrap().push(e.clone())));
    let mut cache = Cache::open(runtime(), options).await.unwrap();
    let report = cache.sync(&sim.env(0).base_url(), auto()).await.unwrap();
    let events = events.lock().unwrap();
    let last = |phase: &str| events.iter().rev().find(|e| e.phase.to_string() == phase).and_then(|e| e.bytes).unwrap();
    let entities = last("data-entities") + last("public-entities") + last("enumerations");
    let labels = last("labels:en-US");
    let label_bytes: usize = sim.env(0).requests().len(); // at least one byte per answer
    assert!(labels > label_bytes as u64 / 2, "labels phase bytes {labels}");
    assert!(labels + entities <= report.bytes, "labels {labels} + entities {entities} > sync {}", report.bytes);
}

#[tokio::test]
async fn history_reports_unknown_environments_and_dry_runs_are_not_the_last_sync() {
    let data = dataset(Scale::Tiny);
    let sim = simulator(vec![spec("a", data.clone())]).await;
    let url = sim.env(0).base_url();
    let scratch = Scratch::new("history");
    let mut cache = open(&scratch.db()).await;
    let err = cache.history(Some("http://127.0.0.1:9"), 5).await.unwrap_err();
    assert_eq!(core_error(&err).kind, ErrorKind::NotFound);
    cache.sync(&url, sync_options(Strategy::Auto, &["en-US", "de"])).await.unwrap();
    let dry = cache.sync(&url, SyncOptions { dry_run: true, ..auto() }).await.unwrap();
    assert_eq!(name_of(&dry.plan), "up-to-date");
    let history = cache.history(Some(&url), 5).await.unwrap();
    assert_eq!(name_of(&history[0].outcome), "planned");
    assert_eq!(history[0].languages, ["de", "en-US"], "a dry run lists the languages the environment covers");
    let stats = cache.stats(Some(&url)).await.unwrap();
    assert_eq!(name_of(&stats.environments[0].last_sync.as_ref().unwrap().outcome), "succeeded");
    assert_eq!(name_of(&stats.last_sync.as_ref().unwrap().outcome), "succeeded");
}

#[tokio::test]
async fn gc_can_give_the_space_back_and_an_environment_can_be_forgotten() {
    let data = dataset(Scale::Small);
    let (newer, _) = data.evolve(7, 40);
    let sim = simulator(vec![spec("a", data.clone()), spec("b", data.clone())]).await;
    let (a, b) = (sim.env(0).base_url(), sim.env(1).base_url());
    let scratch = Scratch::new("vacuum");
    let mut cache = open(&scratch.db()).await;
    cache.sync(&a, auto()).await.unwrap();
    cache.sync(&b, auto()).await.unwrap();
    // `b` moves on; then `a` is forgotten: the first version is used by nobody.
    sim.env(1).set_dataset(Arc::new(newer));
    cache.sync(&b, sync_options(Strategy::Full, &[])).await.unwrap();
    let forgotten = cache.forget(&a).await.unwrap();
    assert_eq!(forgotten.base_url, a);
    assert_eq!(forgotten.runs, 1);
    assert!(forgotten.snapshot_unreferenced);
    assert_eq!(cache.list_environments().await.unwrap().iter().map(|e| e.base_url.clone()).collect::<Vec<_>>(), std::slice::from_ref(&b));
    assert_eq!(core_error(&cache.history(Some(&a), 5).await.unwrap_err()).kind, ErrorKind::NotFound);
    assert_eq!(core_error(&cache.forget(&a).await.unwrap_err()).kind, ErrorKind::NotFound);

    let file = || std::fs::metadata(scratch.db()).unwrap().len();
    let gc = cache.gc(d365meta::cache::GcOptions { keep_days: 0, vacuum: false }).await.unwrap();
    assert!(gc.versions == 1 && gc.objects > 0 && gc.labels > 0, "{gc:?}");
    assert_eq!(gc.bytes_freed, 0);
    let free = cache.stats(None).await.unwrap().free_bytes;
    assert!(free > 0, "collecting leaves free pages");
    let before = file();
    let vacuumed = cache.gc(d365meta::cache::GcOptions { keep_days: 0, vacuum: true }).await.unwrap();
    assert!(vacuumed.bytes_freed >= free, "{} freed, {free} were free", vacuumed.bytes_freed);
    assert_eq!(cache.stats(None).await.unwrap().free_bytes, 0);
    // The file itself shrinks once the write-ahead log is checkpointed (at the latest when closed).
    drop(cache);
    assert!(file() < before, "{} >= {before}", file());
    assert!(open(&scratch.db()).await.get_entity(&data.public_entities[0].name, read_options(Some(&b))).await.is_ok());
}

/// What the simulator answers at `url`, fetched directly.
async fn fetch_text(url: &str) -> String {
    let client = d365meta::imports::http::shared_client(Duration::from_secs(5), None).unwrap();
    client.get(url).send().await.unwrap().text().await.unwrap()
}

fn read_options(env: Option<&str>) -> d365meta::cache::ReadOptions {
    d365meta::cache::ReadOptions { base_url: env.map(str::to_owned), labels: None }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_adapt_to_what_the_service_accepts() {
    // Over a slow link more requests in flight go faster: the host takes more while answers come
    // back healthy, up to its ceiling.
    let data = dataset(Scale::Small);
    let sim = simulator(vec![spec("slow", data.clone()), spec("busy", data.clone())]).await;
    let (slow, busy) = (sim.env(0), sim.env(1));
    slow.set_latency(Some(Duration::from_millis(20)));
    let scratch = Scratch::new("adaptive");
    let mut cache = Cache::open(runtime(), options(&scratch.db())).await.unwrap();
    let report = cache.sync(&slow.base_url(), auto()).await.unwrap();
    assert_eq!(counts_array(report.counts.as_ref().unwrap()), expected_counts(&data, &["en-US"]));
    let grown = cache.http_totals();
    let initial = d365meta::imports::http::HttpOptions::default().initial_concurrency as u64;
    eprintln!("at 20 ms per answer: {grown:?}, the service saw at most {} in flight", slow.load().0);
    assert!(grown.peak_concurrency > initial * 2, "grew from {initial}: {grown:?}");
    assert_eq!(grown.concurrency_cuts, 0);
    assert!(slow.load().0 as u64 > initial * 2, "the service saw more in flight: {:?}", slow.load());

    // A service that serves 6 at once and answers 429 with Retry-After: 1 beyond: the host backs
    // off to about what it accepts instead of retrying at full width, and the sync completes.
    busy.set_latency(Some(Duration::from_millis(5)));
    busy.set_capacity(Some(6));
    let scratch = Scratch::new("adaptive-busy");
    let mut cache = Cache::open(runtime(), options(&scratch.db())).await.unwrap();
    let report = cache.sync(&busy.base_url(), auto()).await.unwrap();
    assert_eq!(counts_array(report.counts.as_ref().unwrap()), expected_counts(&data, &["en-US"]));
    let settled = cache.http_totals();
    let (_, refused) = busy.load();
    let labels = data.label_ids().len() as u64;
    eprintln!("capacity 6: {settled:?}; {refused} answers 429 for {labels} labels");
    assert!(settled.concurrency_cuts >= 1, "{settled:?}");
    assert!(settled.concurrency <= 10, "settled near what the service accepts: {settled:?}");
    // At a fixed 16 in flight, most of each round would be refused, again and again.
    assert!(refused * 10 < labels, "{refused} refusals for {labels} labels");
}
