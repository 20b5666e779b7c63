//! One simulated environment: its listener's request handling, state, request log and faults.

use super::body::Chunks;
use super::cache::{CacheRegistry, DatasetCache};
use super::faults::{Fault, FaultKind, FaultQueue};
use super::odata::{error_body, percent_decode};
use super::routes::{self, Env, ODATA_JSON};
use super::{Conn, Dropped, RecordedRequest, activity_id, fault_response};
use crate::dataset::Dataset;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// What an environment serves.
#[derive(Clone, Debug)]
pub struct EnvironmentSpec {
    pub name: String,
    pub dataset: Arc<Dataset>,
    /// `GetInstalledModules` lines to answer instead of the dataset's.
    pub modules: Option<Vec<String>>,
    /// Server-driven paging: at most this many items per collection response.
    pub page_size: Option<usize>,
    /// Requests must carry `Authorization: Bearer <this token>`.
    pub require_bearer: Option<String>,
}

impl EnvironmentSpec {
    pub fn new(name: impl Into<String>, dataset: Arc<Dataset>) -> EnvironmentSpec {
        EnvironmentSpec { name: name.into(), dataset, modules: None, page_size: None, require_bearer: None }
    }
}

#[derive(Clone)]
struct State {
    cache: Arc<DatasetCache>,
    modules: Option<Arc<Vec<String>>>,
    page_size: Option<usize>,
    require_bearer: Option<String>,
    latency: Option<Duration>,
    capacity: Option<usize>,
}

pub struct SimEnv {
    index: usize,
    name: String,
    addr: SocketAddr,
    base_url: String,
    state: RwLock<State>,
    log: Mutex<Vec<RecordedRequest>>,
    faults: Mutex<FaultQueue>,
    counter: AtomicU64,
    caches: Arc<CacheRegistry>,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
    throttled: AtomicU64,
}

/// Counts a request in flight until dropped.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SimEnv {
    pub(crate) fn new(index: usize, addr: SocketAddr, spec: EnvironmentSpec, caches: Arc<CacheRegistry>, scheme: &str) -> SimEnv {
        // A listener on every interface is still reached through loopback.
        let host = match addr.ip() {
            ip if ip.is_unspecified() && ip.is_ipv4() => SocketAddr::from(([127, 0, 0, 1], addr.port())),
            ip if ip.is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port())),
            _ => addr,
        };
        SimEnv {
            index,
            base_url: format!("{scheme}://{host}"),
            addr,
            state: RwLock::new(State {
                cache: caches.cache_for(&spec.dataset),
                modules: spec.modules.map(Arc::new),
                page_size: spec.page_size,
                require_bearer: spec.require_bearer,
                latency: None,
                capacity: None,
            }),
            name: spec.name,
            log: Mutex::new(Vec::new()),
            faults: Mutex::new(FaultQueue::default()),
            counter: AtomicU64::new(0),
            caches,
            in_flight: AtomicUsize::new(0),
            peak_in_flight: AtomicUsize::new(0),
            throttled: AtomicU64::new(0),
        }
    }

    pub fn index(&self) -> usize {
        self.index
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: each environment has its own listener, as real ones have their own host.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Every request served so far, in the order answered.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.log).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.log).clear();
    }

    pub fn inject(&self, fault: Fault) {
        lock(&self.faults).push(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    fn state(&self) -> State {
        self.state.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        change(&mut self.state.write().unwrap_or_else(|e| e.into_inner()));
    }

    /// Upgrades the environment in place: the next requests see the new dataset.
    pub fn set_dataset(&self, dataset: Arc<Dataset>) {
        let cache = self.caches.cache_for(&dataset);
        self.update(|s| s.cache = cache);
    }

    pub fn dataset(&self) -> Arc<Dataset> {
        self.state().cache.dataset().clone()
    }

    /// `GetInstalledModules` lines to answer instead of the dataset's (None: the dataset's).
    pub fn set_modules(&self, lines: Option<Vec<String>>) {
        self.update(|s| s.modules = lines.map(Arc::new));
    }

    /// The `GetInstalledModules` lines answered now.
    pub fn modules(&self) -> Vec<String> {
        let state = self.state();
        match &state.modules {
            Some(lines) => lines.as_ref().clone(),
            None => state.cache.dataset().modules.clone(),
        }
    }

    pub fn set_page_size(&self, page_size: Option<usize>) {
        self.update(|s| s.page_size = page_size);
    }

    pub fn set_require_bearer(&self, token: Option<String>) {
        self.update(|s| s.require_bearer = token);
    }

    /// Every response waits this long before it is sent, as over a wide-area link.
    pub fn set_latency(&self, latency: Option<Duration>) {
        self.update(|s| s.latency = latency);
    }

    /// At most this many requests are served at once; one more is answered 429 with
    /// `Retry-After: 1`, as a throttled service answers.
    pub fn set_capacity(&self, capacity: Option<usize>) {
        self.update(|s| s.capacity = capacity);
    }

    /// The most requests that were in flight at once, and how many were answered 429 for capacity.
    pub fn load(&self) -> (usize, u64) {
        (self.peak_in_flight.load(Ordering::Relaxed), self.throttled.load(Ordering::Relaxed))
    }

    pub(crate) async fn handle(&self, req: Request<Incoming>, conn: Conn) -> Result<Response<Chunks>, Dropped> {
        let method = req.method().clone();
        let path_and_query = req.uri().path_and_query().map_or_else(|| req.uri().path().to_string(), |p| p.to_string());
        let header_text = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let authorization = header_text(header::AUTHORIZATION.as_str());
        let client_request_id = header_text("x-ms-client-request-id");
        // Read the body so the connection can be reused; action bodies are `{}` and not needed.
        let _ = Limited::new(req.into_body(), 1 << 20).collect().await;
        let aid = activity_id(&self.name, self.counter.fetch_add(1, Ordering::Relaxed));
        let _counted = InFlight(&self.in_flight);
        let in_flight = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_in_flight.fetch_max(in_flight, Ordering::Relaxed);
        let State { latency, capacity, .. } = self.state();
        if let Some(latency) = latency {
            tokio::time::sleep(latency).await;
        }
        if capacity.is_some_and(|capacity| in_flight > capacity) {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            let mut r = routes::error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "Too many requests in flight; retry later.");
            r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            self.record(&method, &path_and_query, 429, authorization, client_request_id);
            return Ok(r);
        }
        let fault = lock(&self.faults).take(&path_and_query, &percent_decode(&path_and_query, false));
        if let Some(answer) = fault.as_ref().and_then(|kind| fault_response(kind, conn)) {
            let status = answer.as_ref().map_or(0, |r| r.status().as_u16());
            self.record(&method, &path_and_query, status, authorization, client_request_id);
            return answer;
        }
        let mut response = match fault {
            Some(FaultKind::Status { status, retry_after, body }) => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let body =
                    body.unwrap_or_else(|| error_body(&status.as_u16().to_string(), status.canonical_reason().unwrap_or("Injected fault")));
                let mut r = routes::json(status, body);
                if let Some(value) = retry_after.and_then(|v| header::HeaderValue::from_str(&v).ok()) {
                    r.headers_mut().insert(header::RETRY_AFTER, value);
                }
                r
            }
            Some(FaultKind::Body(body)) => routes::json(StatusCode::OK, body),
            Some(FaultKind::Delay(delay)) => {
                tokio::time::sleep(delay).await;
                self.answer(&method, &path_and_query, authorization.as_deref()).await
            }
            Some(FaultKind::Truncate(keep)) => {
                let mut r = self.answer(&method, &path_and_query, authorization.as_deref()).await;
                r.body_mut().cut_after(keep);
                r
            }
            Some(FaultKind::Close | FaultKind::Reset | FaultKind::Redirect { .. }) | None => {
                self.answer(&method, &path_and_query, authorization.as_deref()).await
            }
        };
        let headers = response.headers_mut();
        if let Ok(value) = header::HeaderValue::from_str(&aid) {
            headers.insert("ms-dyn-aid", value);
        }
        headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static(ODATA_JSON));
        headers.insert("odata-version", header::HeaderValue::from_static("4.0"));
        self.record(&method, &path_and_query, response.status().as_u16(), authorization, client_request_id);
        Ok(response)
    }

    async fn answer(&self, method: &Method, path_and_query: &str, authorization: Option<&str>) -> Response<Chunks> {
        let state = self.state();
        if let Some(token) = &state.require_bearer {
            let presented = authorization.and_then(|a| a.split_once(' ')).filter(|(scheme, _)| scheme.eq_ignore_ascii_case("Bearer"));
            if presented.map(|(_, t)| t) != Some(token.as_str()) {
                let mut r =
                    routes::error(StatusCode::UNAUTHORIZED, "Unauthorized", "Authentication failed: a valid bearer token is required.");
                r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
                return r;
            }
        }
        let modules: &[String] = match &state.modules {
            Some(lines) => lines,
            None => &state.cache.dataset().modules,
        };
        let env = Env { base: &self.base_url, cache: &state.cache, modules, page_size: state.page_size };
        routes::route(&env, method, path_and_query).await
    }

    fn record(&self, method: &Method, path_and_query: &str, status: u16, authorization: Option<String>, client_request_id: Option<String>) {
        lock(&self.log).push(RecordedRequest {
            method: method.to_string(),
            path_and_query: path_and_query.to_string(),
            status,
            authorization,
            client_request_id,
            at: Instant::now(),
        });
    }
}
