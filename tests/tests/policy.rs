//! The host's HTTP policy, exercised directly on an `environment` resource over loopback: it sends
//! only under the base URL it was made for, whatever path it is given.

use d365meta::auth::Authenticator;
use d365meta::bindings::http_api::{Error as HttpError, Header, Method, Request};
use d365meta::cancel::CancelToken;
use d365meta::imports::http::Network;
use d365meta_simulator::Scale;
use d365meta_tests::*;
use std::sync::Arc;

fn get(path: &str) -> Request {
    Request {
        method: Method::Get,
        path: path.to_owned(),
        headers: vec![Header { name: "Authorization".into(), value: "Bearer stolen".into() }],
        body: None,
        idempotent: true,
    }
}

#[tokio::test]
async fn an_environment_reaches_only_its_own_base_url() {
    let sim = simulator(vec![spec("allowed", dataset(Scale::Tiny)), spec("other", dataset(Scale::Tiny))]).await;
    let network = Network::new(quick_http(), Arc::new(Authenticator::none()), CancelToken::new()).unwrap();
    let env = network.environment(&sim.env(0).base_url()).unwrap();

    let ok = env.send(get("/Metadata/PublicEnumerations('NoYes')")).await.unwrap();
    assert_eq!(ok.status, 200);
    assert!(sim.env(0).requests()[0].authorization.is_none(), "the component's Authorization header is dropped");

    // Whatever the path, the request cannot leave the environment's origin.
    let other = sim.env(1).base_url();
    let other_host_port = other.trim_start_matches("http://");
    for bad in [
        format!("//{other_host_port}/Metadata/DataEntities"),
        format!("{other}/Metadata/DataEntities"),
        format!("@{other_host_port}/Metadata/DataEntities"),
        "/\\\\127.0.0.1/x".to_owned(),
        "Metadata/DataEntities".to_owned(),
        String::new(),
    ] {
        let e = env.send(get(&bad)).await.unwrap_err();
        assert!(matches!(e, HttpError::Denied(_)), "{bad:?}: {e:?}");
    }
    assert!(sim.env(1).requests().is_empty(), "a refused request must never leave the host");
    let totals = network.stats().totals();
    assert_eq!((totals.requests, totals.refused), (1, 6));

    // An environment is made only for an http(s) base URL.
    for bad in ["not a url", "file:///etc/passwd", "http://user:pw@127.0.0.1/x"] {
        assert!(network.environment(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn cancelling_stops_a_request_that_waits_to_be_retried() {
    let sim = simulator(vec![spec("busy", dataset(Scale::Tiny))]).await;
    sim.env(0).inject(d365meta_simulator::Fault::throttle("DataEntities", 1, 30));
    let cancel = CancelToken::new();
    let network = Network::new(quick_http(), Arc::new(Authenticator::none()), cancel.clone()).unwrap();
    let env = network.environment(&sim.env(0).base_url()).unwrap();
    let canceller = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            cancel.cancel();
        })
    };
    let started = std::time::Instant::now();
    let e = env.send(get("/Metadata/DataEntities")).await.unwrap_err();
    assert!(matches!(e, HttpError::Cancelled), "{e:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "cancelled during a 30 s Retry-After wait: {:?}", started.elapsed());
    canceller.await.unwrap();
}
