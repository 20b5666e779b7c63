//! The host's HTTP policy, exercised directly on its `http` import over loopback.

use d365meta::auth::Authenticator;
use d365meta::bindings::http_api::{Error as HttpError, Header, Method, Request};
use d365meta::cancel::CancelToken;
use d365meta::imports::http::HttpState;
use d365meta::policy::Origin;
use d365meta_simulator::Scale;
use d365meta_tests::*;
use std::sync::Arc;

fn get(url: String) -> Request {
    Request {
        method: Method::Get,
        url,
        headers: vec![Header { name: "Authorization".into(), value: "Bearer stolen".into() }],
        body: None,
        idempotent: true,
    }
}

#[tokio::test]
async fn only_the_environment_being_worked_on_can_be_reached() {
    let sim = simulator(vec![spec("allowed", dataset(Scale::Tiny)), spec("other", dataset(Scale::Tiny))]).await;
    let mut http = HttpState::new(quick_http(), Arc::new(Authenticator::none()), CancelToken::new());
    http.allow(Origin::parse(&sim.env(0).base_url()).unwrap());

    let ok = http.send(get(format!("{}/Metadata/PublicEnumerations('NoYes')", sim.env(0).base_url()))).await.unwrap();
    assert_eq!(ok.status, 200);
    assert!(sim.env(0).requests()[0].authorization.is_none(), "the component's Authorization header is dropped");

    let refused = http.send(get(format!("{}/Metadata/DataEntities", sim.env(1).base_url()))).await.unwrap_err();
    assert!(matches!(refused, HttpError::Denied(_)), "{refused:?}");
    assert!(sim.env(1).requests().is_empty(), "a refused request must never leave the host");

    for bad in ["not a url", "file:///etc/passwd", "http://user:pw@127.0.0.1/x"] {
        let e = http.send(get(bad.to_owned())).await.unwrap_err();
        assert!(matches!(e, HttpError::InvalidUrl(_)), "{bad}: {e:?}");
    }
    // Same host, another port: another origin, refused.
    let other_port = sim.env(1).base_url().replace("127.0.0.1", "localhost");
    assert!(matches!(http.send(get(other_port)).await.unwrap_err(), HttpError::Denied(_)));
    let totals = http.stats().totals();
    assert_eq!((totals.requests, totals.refused), (1, 5));
}

#[tokio::test]
async fn cancelling_stops_a_request_that_waits_to_be_retried() {
    let sim = simulator(vec![spec("busy", dataset(Scale::Tiny))]).await;
    sim.env(0).inject(d365meta_simulator::Fault::throttle("DataEntities", 1, 30));
    let cancel = CancelToken::new();
    let mut http = HttpState::new(quick_http(), Arc::new(Authenticator::none()), cancel.clone());
    http.allow(Origin::parse(&sim.env(0).base_url()).unwrap());
    let canceller = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            cancel.cancel();
        })
    };
    let started = std::time::Instant::now();
    let e = http.send(get(format!("{}/Metadata/DataEntities", sim.env(0).base_url()))).await.unwrap_err();
    assert!(matches!(e, HttpError::Cancelled), "{e:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "cancelled during a 30 s Retry-After wait: {:?}", started.elapsed());
    canceller.await.unwrap();
}
