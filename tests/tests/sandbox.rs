//! The sandbox the host gives a component, tried by a component that attempts what it must not:
//! WASI with nothing granted (no files, sockets, name lookup, environment, arguments or stdin),
//! HTTP only under the base URL of the environment it is lent, and no writes through the store
//! while the host serves a read. After each refusal the host carries on.

use d365meta::auth::Authenticator;
use d365meta::cancel::CancelToken;
use d365meta::imports::host::Services;
use d365meta::imports::http::Network;
use d365meta::imports::store::{Access, DEFAULT_BUSY_TIMEOUT, Database};
use d365meta::runtime::{Runtime, State};
use d365meta_simulator::Scale;
use d365meta_tests::*;
use std::sync::Arc;
use wasmtime::component::{Component, Resource};

/// The probe's bindings, in a module of their own: they name a `d365meta` package as the host
/// crate is named.
mod bindings {
    wasmtime::component::bindgen!({
        path: ["../wit", "probe/wit"],
        world: "d365meta:probe/probe",
        exports: { default: async },
        // The probe's imports are the core's own interfaces: the host's implementations serve them.
        with: {
            "d365meta:cache/http": ::d365meta::bindings::d365meta::cache::http,
            "d365meta:cache/store": ::d365meta::bindings::d365meta::cache::store,
        },
    });
}

use bindings::Probe;

struct Sandbox {
    store: wasmtime::Store<State>,
    probe: Probe,
}

async fn sandbox(db: &std::path::Path) -> Sandbox {
    // The host's runtime: its engine, limits and linker (the core component it also loads is not used).
    let runtime = runtime();
    let bytes = std::fs::read(env!("D365META_PROBE_WASM")).unwrap();
    let component = Component::new(runtime.engine_ref(), &bytes).unwrap();
    let linker = Runtime::linker(runtime.engine_ref()).unwrap();
    let cancel = CancelToken::new();
    let network = Network::new(quick_http(), Arc::new(Authenticator::none()), cancel.clone()).unwrap();
    let state = State::new(network, Database::open(db, DEFAULT_BUSY_TIMEOUT).unwrap(), Services::new(cancel, None))
        .with_reader(Database::open_with(db, DEFAULT_BUSY_TIMEOUT, Access::ReadOnly).unwrap());
    let mut store = runtime.new_store(state);
    let probe = Probe::instantiate_async(&mut store, &component, &linker).await.unwrap();
    Sandbox { store, probe }
}

fn refused(outcome: &str) -> bool {
    outcome.starts_with("refused")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_gets_no_files_sockets_names_environment_or_input() {
    let scratch = Scratch::new("sandbox-wasi");
    let mut s = sandbox(&scratch.db()).await;
    let (probe, store) = (&s.probe, &mut s.store);

    assert_eq!(probe.call_list_preopens(&mut *store).await.unwrap(), Vec::<String>::new());
    let secret = scratch.0.join("secret.txt");
    std::fs::write(&secret, "the host's own file").unwrap();
    for path in [secret.to_string_lossy().into_owned(), "/etc/passwd".to_owned(), "secret.txt".to_owned()] {
        let outcome = probe.call_open_file(&mut *store, &path).await.unwrap();
        assert!(refused(&outcome), "{path}: {outcome}");
    }
    let planted = scratch.0.join("planted.txt");
    let outcome = probe.call_create_file(&mut *store, &planted.to_string_lossy()).await.unwrap();
    assert!(refused(&outcome) && !planted.exists(), "{outcome}");

    // A listener on loopback the probe is told about: it must see no connection.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let outcome = probe.call_connect(&mut *store, &address).await.unwrap();
    assert!(refused(&outcome), "{outcome}");
    let accepted = tokio::time::timeout(std::time::Duration::from_millis(300), listener.accept()).await;
    assert!(accepted.is_err(), "the probe reached the listener");
    let outcome = probe.call_resolve(&mut *store, "localhost").await.unwrap();
    assert!(refused(&outcome), "{outcome}");

    // SAFETY: tests set an environment variable no other test reads.
    unsafe { std::env::set_var("D365META_PROBE_SECRET", "visible to the host only") };
    assert_eq!(probe.call_environment_variables(&mut *store).await.unwrap(), Vec::<(String, String)>::new());
    assert_eq!(probe.call_program_arguments(&mut *store).await.unwrap(), Vec::<String>::new());
    assert_eq!(probe.call_read_stdin(&mut *store).await.unwrap(), "allowed: (0, \"\")", "stdin is empty");
    probe.call_print(&mut *store, "to the host's log, not the terminal").await.unwrap();

    // The host carries on: the same instance still works.
    let outcome = probe.call_execute(&mut *store, "CREATE TABLE after_the_refusals (x INTEGER)").await.unwrap();
    assert!(!refused(&outcome), "{outcome}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_cannot_name_another_origin_through_its_environment() {
    let sim = simulator(vec![spec("lent", dataset(Scale::Tiny)), spec("other", dataset(Scale::Tiny))]).await;
    let scratch = Scratch::new("sandbox-http");
    let mut s = sandbox(&scratch.db()).await;
    let environment = s.store.data().network().environment(&sim.env(0).base_url()).unwrap();
    let handle = s.store.data_mut().table().push(environment).unwrap();
    let other = sim.env(1).base_url();
    let other_authority = other.trim_start_matches("http://").to_owned();
    let paths = vec![
        "/Metadata/PublicEnumerations('NoYes')".to_owned(),
        format!("//{other_authority}/Metadata/DataEntities"),
        format!("{other}/Metadata/DataEntities"),
        format!("@{other_authority}/Metadata/DataEntities"),
        format!(":{}/Metadata/DataEntities", sim.env(1).addr().port()),
        "Metadata/DataEntities".to_owned(),
    ];
    let outcomes = s.probe.call_send_paths(&mut s.store, Resource::new_borrow(handle.rep()), &paths).await.unwrap();
    assert_eq!(outcomes[0], "allowed: 200");
    for (path, outcome) in paths.iter().zip(&outcomes).skip(1) {
        assert!(outcome.starts_with("refused") && outcome.contains("Denied"), "{path}: {outcome}");
    }
    assert!(sim.env(1).requests().is_empty(), "the other origin was reached: {:?}", sim.env(1).requests());
    assert_eq!(sim.env(0).requests().len(), 1);
    s.store.data_mut().table().delete(handle).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_host_serves_a_read_the_store_refuses_writes() {
    let scratch = Scratch::new("sandbox-read");
    let mut s = sandbox(&scratch.db()).await;
    let outcome = s.probe.call_execute(&mut s.store, "CREATE TABLE t (x INTEGER)").await.unwrap();
    assert!(!refused(&outcome), "{outcome}");
    s.store.data_mut().set_reading(true);
    for sql in ["INSERT INTO t VALUES (1)", "DROP TABLE t", "CREATE TABLE u (x INTEGER)"] {
        let outcome = s.probe.call_execute(&mut s.store, sql).await.unwrap();
        assert!(outcome.contains("ReadOnly"), "{sql}: {outcome}");
    }
    let outcome = s.probe.call_execute(&mut s.store, "SELECT COUNT(*) FROM t").await.unwrap();
    assert!(!refused(&outcome), "reads still work: {outcome}");
    s.store.data_mut().set_reading(false);
    let outcome = s.probe.call_execute(&mut s.store, "INSERT INTO t VALUES (1)").await.unwrap();
    assert_eq!(outcome, "allowed: 1");
}
