//! `d365meta:cache/http`: outbound HTTP to one environment, under the host's policy.
//!
//! The component reaches the network only through an `environment` resource the host makes for a
//! base URL the user named; a request names a path under it. Policy, in order: the path joined to
//! the base URL must stay under it (fail closed); `Authorization` from the component is dropped and
//! the host's own bearer token added where one applies; redirects are not followed by the HTTP
//! client: the host follows one only to the same origin, as a new attempt of the same request, and
//! refuses any other with an error that names both ends; connect errors,
//! 429 and 502/503/504 are retried with exponential backoff and full jitter, honouring
//! `Retry-After`, and so are resets and answers cut off mid-body when the request is idempotent,
//! until the attempts or the total time budget run out; each request has a timeout and a body-size
//! limit. A batch runs on a fixed number of slots: a request waiting out its `Retry-After` gives its
//! slot to the next one. The component gets coarse errors; details go to the log.

use super::concurrency::{Limiter, Outcome};
use crate::auth::Authenticator;
use crate::bindings::http_api as api;
use crate::cancel::CancelToken;
use crate::policy::Origin;
use crate::runtime::State;
use reqwest::Url;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;
use tracing::Instrument as _;
use wasmtime::component::Resource;

#[derive(Clone, Debug)]
pub struct HttpOptions {
    pub connect_timeout: Duration,
    /// Per attempt, body included. Large: a full PublicEntities answer is tens of megabytes.
    pub request_timeout: Duration,
    /// Total time one request may spend in retries (waits included).
    pub retry_budget: Duration,
    /// Attempts per request, redirects followed included.
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Requests to one environment in flight at once, to begin with: the host then adapts it to
    /// how the service answers (see [`super::concurrency`]).
    pub initial_concurrency: usize,
    /// The most requests to one environment in flight at once, however well it answers.
    pub max_concurrency: usize,
    /// Certificate authorities to trust besides the platform's (PEM; a TLS-inspecting proxy's),
    /// for requests to the service and sign-in alike. Verification itself is never turned off.
    pub ca_file: Option<std::path::PathBuf>,
    /// The largest response body accepted. A real environment's largest answer (all public
    /// entities) is tens of megabytes.
    pub max_body_bytes: u64,
}

/// The default ceiling of requests in flight to one environment (`--concurrency` changes it).
pub const DEFAULT_MAX_CONCURRENCY: usize = 64;

/// The default response limit, in MiB (`--max-response-mb` changes it).
pub const DEFAULT_MAX_RESPONSE_MIB: u64 = 256;

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(300),
            retry_budget: Duration::from_secs(180),
            max_attempts: 6,
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(30),
            initial_concurrency: 16,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            ca_file: None,
            max_body_bytes: DEFAULT_MAX_RESPONSE_MIB << 20,
        }
    }
}

/// Counters over everything the component sent.
#[derive(Debug, Default)]
pub struct HttpStats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub bytes_received: AtomicU64,
    pub refused: AtomicU64,
    /// Requests in flight allowed at the last answer, the most ever allowed, and the cuts.
    pub concurrency: AtomicU64,
    pub peak_concurrency: AtomicU64,
    pub concurrency_cuts: AtomicU64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpTotals {
    pub requests: u64,
    pub retries: u64,
    pub bytes_received: u64,
    pub refused: u64,
    pub concurrency: u64,
    pub peak_concurrency: u64,
    pub concurrency_cuts: u64,
}

impl HttpStats {
    pub fn totals(&self) -> HttpTotals {
        HttpTotals {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            concurrency: self.concurrency.load(Ordering::Relaxed),
            peak_concurrency: self.peak_concurrency.load(Ordering::Relaxed),
            concurrency_cuts: self.concurrency_cuts.load(Ordering::Relaxed),
        }
    }
}

/// The process-wide client for a set of trusted authorities: building one loads the platform's
/// roots, which costs milliseconds, and one client shares its connection pool across all requests.
/// It never follows a redirect itself (the policy decides, per request), and goes through the
/// proxies `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` name.
pub fn shared_client(connect_timeout: Duration, ca_file: Option<&std::path::Path>) -> Result<reqwest::Client, String> {
    static CLIENTS: OnceLock<std::sync::Mutex<HashMap<Option<std::path::PathBuf>, reqwest::Client>>> = OnceLock::new();
    let mut clients = CLIENTS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    let key = ca_file.map(std::path::Path::to_path_buf);
    if let Some(client) = clients.get(&key) {
        return Ok(client.clone());
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("d365meta/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_file {
        let bad = |why: String| format!("certificate authorities {}: {why}", path.display());
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(e.to_string()))?;
        if certificates.is_empty() {
            return Err(bad("no PEM certificate in the file".to_owned()));
        }
        builder = builder.tls_certs_merge(certificates);
    }
    let client = builder.build().map_err(|e| format!("cannot set up the HTTP client: {}", describe_reqwest_error(&e)))?;
    clients.insert(key, client.clone());
    Ok(client)
}

/// Answers an environment's requests in the process instead of over the network: an environment
/// recorded elsewhere (another program's cache being imported), never a live one.
pub trait Responder: Send + Sync {
    /// The status and body answering `method` `path_and_query` (under the base URL).
    fn respond(&self, method: &str, path_and_query: &str) -> (u16, Vec<u8>);
}

/// What every environment of one cache shares: the client, the policy's settings, credentials,
/// cancellation and the counters. It makes the `environment` resources the component is given.
pub struct Network {
    client: reqwest::Client,
    options: Arc<HttpOptions>,
    auth: Arc<Authenticator>,
    cancel: CancelToken,
    stats: Arc<HttpStats>,
    /// Per origin, so that each sync of an environment starts where the last one left off.
    limiters: Arc<Mutex<HashMap<Origin, Arc<Limiter>>>>,
}

impl Network {
    pub fn new(options: HttpOptions, auth: Arc<Authenticator>, cancel: CancelToken) -> Result<Self, String> {
        Ok(Network {
            client: shared_client(options.connect_timeout, options.ca_file.as_deref())?,
            options: Arc::new(options),
            auth,
            cancel,
            stats: Arc::new(HttpStats::default()),
            limiters: Arc::default(),
        })
    }

    pub fn stats(&self) -> Arc<HttpStats> {
        self.stats.clone()
    }

    pub fn options(&self) -> &HttpOptions {
        &self.options
    }

    /// An environment the component may reach: the base URL the user named, normalised as the
    /// core normalises it (so that the host and the core agree on what is under it).
    pub fn environment(&self, base_url: &str) -> Result<EnvironmentHandle, String> {
        let normalized = d365meta_guest::url::normalize_base_url(base_url).map_err(|e| e.message)?;
        let parsed = Url::parse(&normalized).map_err(|e| format!("base URL {:?}: {e}", shorten(base_url)))?;
        let origin = Origin::of_url(&parsed).ok_or_else(|| format!("base URL {:?} has no http(s) origin", shorten(base_url)))?;
        let limiter = lock(&self.limiters)
            .entry(origin.clone())
            .or_insert_with(|| Arc::new(Limiter::new(self.options.initial_concurrency, self.options.max_concurrency)))
            .clone();
        Ok(EnvironmentHandle {
            sender: Sender {
                limiter,
                client: self.client.clone(),
                options: self.options.clone(),
                base_url: Arc::from(normalized.as_str()),
                origin,
                auth: self.auth.clone(),
                cancel: self.cancel.clone(),
                stats: self.stats.clone(),
                local: None,
            },
        })
    }

    /// The environment `base_url` as [`Network::environment`] makes it, its requests answered by
    /// `responder` and never sent.
    pub fn replayed_environment(&self, base_url: &str, responder: Arc<dyn Responder>) -> Result<EnvironmentHandle, String> {
        let mut handle = self.environment(base_url)?;
        handle.sender.local = Some(responder);
        Ok(handle)
    }
}

/// The host side of an `environment` resource.
pub struct EnvironmentHandle {
    sender: Sender,
}

impl EnvironmentHandle {
    pub fn base_url(&self) -> &str {
        &self.sender.base_url
    }

    /// Sends one request under the policy, retrying as configured.
    pub async fn send(&self, request: api::Request) -> Result<api::Response, api::Error> {
        self.sender.send(request).await
    }

    /// Starts sending `requests` concurrently; their results arrive through [`PendingBatch::next`].
    pub fn start(&self, requests: Vec<api::Request>) -> PendingBatch {
        let sender = self.sender.clone();
        let total = requests.len();
        let (tx, rx) = mpsc::unbounded_channel();
        let parent = tracing::Span::current();
        let task = tokio::spawn(async move { sender.run_batch(requests, tx).await }.instrument(parent));
        PendingBatch { results: rx, stash: None, remaining: total, task }
    }
}

/// Everything a request to one environment needs, cheap to clone into the tasks of a batch.
#[derive(Clone)]
struct Sender {
    client: reqwest::Client,
    options: Arc<HttpOptions>,
    /// The environment's normalised base URL: every request goes under it.
    base_url: Arc<str>,
    origin: Origin,
    auth: Arc<Authenticator>,
    cancel: CancelToken,
    stats: Arc<HttpStats>,
    /// Answers in the process instead of the network (see [`Responder`]).
    local: Option<Arc<dyn Responder>>,
    limiter: Arc<Limiter>,
}

/// One request on its way through its attempts.
struct Exchange {
    request: api::Request,
    method: reqwest::Method,
    /// Where the next attempt goes: the request's URL, or where a same-origin redirect pointed.
    url: Url,
    origin: Origin,
    attempt: u32,
    started: Instant,
    /// Whether the service has refused a token of ours once already (it gets one new one).
    signed_in_again: bool,
    /// When the last attempt was sent, and what its answer says about the load the service accepts.
    sent: Instant,
    outcome: Outcome,
}

/// What one attempt leads to.
enum Step {
    Done(Result<api::Response, api::Error>),
    /// Try again after this long (zero: at once, to follow a redirect).
    Again(Duration),
}

/// Why an attempt failed, before it becomes the component's coarse error.
enum Failure {
    Connect(String),
    Timeout(String),
    /// The connection broke after the request went out (reset, closed early), or the body was cut
    /// off: safe to repeat only for an idempotent request.
    Interrupted(String),
    TooLarge {
        limit: u64,
        seen: u64,
    },
    Other(String),
}

impl Sender {
    async fn send(&self, request: api::Request) -> Result<api::Response, api::Error> {
        let mut exchange = self.prepare(request)?;
        loop {
            match self.step(&mut exchange).await {
                Step::Done(result) => return result,
                Step::Again(delay) => {
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = self.cancel.cancelled() => return Err(api::Error::Cancelled),
                    }
                }
            }
        }
    }

    /// Joins the request's path to the base URL, refusing (before anything is sent) a path that
    /// would leave it.
    fn prepare(&self, request: api::Request) -> Result<Exchange, api::Error> {
        let url = crate::policy::join(&self.base_url, &request.path).map_err(|why| {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(path = %shorten(&request.path), "refused a request: {why}");
            api::Error::Denied(why)
        })?;
        let method = match request.method {
            api::Method::Get => reqwest::Method::GET,
            api::Method::Post => reqwest::Method::POST,
        };
        Ok(Exchange {
            request,
            method,
            url,
            origin: self.origin.clone(),
            attempt: 0,
            started: Instant::now(),
            signed_in_again: false,
            sent: Instant::now(),
            outcome: Outcome::Neutral,
        })
    }

    /// One attempt of `exchange`: send it, read the answer, and decide what comes next.
    async fn step(&self, exchange: &mut Exchange) -> Step {
        if self.cancel.is_cancelled() {
            return Step::Done(Err(api::Error::Cancelled));
        }
        exchange.attempt += 1;
        exchange.outcome = Outcome::Neutral;
        exchange.sent = Instant::now();
        let span =
            tracing::debug_span!("request", method = %exchange.method, url = %shorten(exchange.url.as_str()), attempt = exchange.attempt);
        self.attempt(exchange).instrument(span).await
    }

    async fn attempt(&self, exchange: &mut Exchange) -> Step {
        if let Some(local) = &self.local {
            let path = &exchange.url.as_str()[self.base_url.len().min(exchange.url.as_str().len())..];
            let (status, body) = local.respond(exchange.method.as_str(), path);
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            self.stats.bytes_received.fetch_add(body.len() as u64, Ordering::Relaxed);
            return Step::Done(Ok(api::Response { status, headers: vec![], body, attempts: exchange.attempt }));
        }
        let token = match self.auth.token_for(&self.client, &exchange.origin, &self.options, &self.cancel).await {
            Ok(token) => token,
            Err(e) => {
                // The error goes to the component, which reports it once; concurrent requests meet it too.
                tracing::debug!("{e}");
                return Step::Done(Err(api::Error::Other(format!("could not obtain an access token: {e}"))));
            }
        };
        let mut builder = self.client.request(exchange.method.clone(), exchange.url.clone()).timeout(self.options.request_timeout);
        for header in &exchange.request.headers {
            if header.name.eq_ignore_ascii_case("authorization") {
                tracing::warn!("dropped an Authorization header set by the component");
                continue;
            }
            builder = builder.header(header.name.as_str(), header.value.as_str());
        }
        if let Some(token) = &token {
            builder = builder.bearer_auth(token);
        }
        if let Some(body) = &exchange.request.body {
            builder = builder.body(body.clone());
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let sent = Instant::now();
        let outcome = tokio::select! {
            outcome = self.exchange(builder) => outcome,
            () = self.cancel.cancelled() => return Step::Done(Err(api::Error::Cancelled)),
        };
        let elapsed_ms = sent.elapsed().as_millis() as u64;
        exchange.outcome = match &outcome {
            Ok(r) if matches!(r.status, 429 | 503) => Outcome::Throttled,
            Ok(_) => Outcome::Healthy,
            Err(_) => Outcome::Neutral,
        };
        match &outcome {
            Ok(r) => tracing::debug!(status = r.status, bytes = r.body.len(), elapsed_ms, "answered"),
            Err(f) => tracing::debug!(elapsed_ms, "failed: {}", describe_failure(f)),
        }
        if let Ok(response) = &outcome
            && is_redirect(response.status)
        {
            return self.redirect(exchange, response);
        }
        // A token the service refuses may have been revoked or have expired early: sign in anew
        // once, then let the refusal stand.
        if let Ok(response) = &outcome
            && response.status == 401
            && let Some(token) = &token
            && !exchange.signed_in_again
        {
            exchange.signed_in_again = true;
            self.auth.refused(&exchange.origin, token).await;
            tracing::info!("the service refused the token (HTTP 401); signing in again");
            return Step::Again(Duration::ZERO);
        }
        let retry = match &outcome {
            Ok(response) if is_retryable_status(response.status) => Some(retry_after(&response.headers)),
            Err(Failure::Connect(_)) => Some(None),
            Err(Failure::Interrupted(_)) if exchange.request.idempotent => Some(None),
            _ => None,
        };
        let Some(server_delay) = retry else {
            return Step::Done(finish(outcome, exchange.attempt, &self.options));
        };
        let delay = server_delay.unwrap_or_else(|| backoff(&self.options, exchange.attempt));
        let out_of_budget = exchange.started.elapsed() + delay > self.options.retry_budget;
        let what = describe_outcome(&outcome);
        if exchange.attempt >= self.options.max_attempts || out_of_budget {
            tracing::warn!(
                "{} {}: giving up after {} attempt(s) ({what})",
                exchange.method,
                shorten(exchange.url.as_str()),
                exchange.attempt
            );
            return Step::Done(finish(outcome, exchange.attempt, &self.options));
        }
        tracing::info!("{what}; retrying in {:.1}s", delay.as_secs_f64());
        self.stats.retries.fetch_add(1, Ordering::Relaxed);
        Step::Again(delay)
    }

    /// A redirect is followed only to the request's own origin, keeping the method and body, as
    /// another attempt; anything else ends the request with an error naming both ends.
    fn redirect(&self, exchange: &mut Exchange, response: &api::Response) -> Step {
        let status = response.status;
        let from = shorten(exchange.url.as_str());
        let Some(location) = response.headers.iter().find(|h| h.name.eq_ignore_ascii_case("location")).map(|h| h.value.as_str()) else {
            return Step::Done(Err(api::Error::Other(format!("{from} answered HTTP {status} without a Location to go to"))));
        };
        let target = match exchange.url.join(location) {
            Ok(target) => target,
            Err(e) => {
                return Step::Done(Err(api::Error::Other(format!(
                    "{from} redirected (HTTP {status}) to {location:?}, which is not a URL ({e})"
                ))));
            }
        };
        let same_origin = Origin::of_url(&target).is_some_and(|o| o == exchange.origin);
        if !same_origin || !target.username().is_empty() || target.password().is_some() {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("refused a redirect (HTTP {status}) from {from} to {}: another origin", shorten(target.as_str()));
            return Step::Done(Err(api::Error::Denied(format!(
                "{from} redirected (HTTP {status}) to {}, which is not the environment's origin {}; redirects are followed only within it",
                shorten(target.as_str()),
                exchange.origin
            ))));
        }
        if exchange.method == reqwest::Method::POST && matches!(status, 301..=303) {
            return Step::Done(Err(api::Error::Denied(format!(
                "{from} redirected a POST with HTTP {status}, which would turn it into a GET to {}; not followed",
                shorten(target.as_str())
            ))));
        }
        if exchange.attempt >= self.options.max_attempts {
            return Step::Done(Err(api::Error::Other(format!("{from}: too many redirects ({} attempts)", exchange.attempt))));
        }
        tracing::info!("following a redirect (HTTP {status}) to {}", shorten(target.as_str()));
        exchange.url = target;
        Step::Again(Duration::ZERO)
    }

    /// One attempt: send, then read the body within the size limit.
    async fn exchange(&self, builder: reqwest::RequestBuilder) -> Result<api::Response, Failure> {
        let limit = self.options.max_body_bytes;
        let mut response = builder.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(name, value)| Some(api::Header { name: name.as_str().to_owned(), value: value.to_str().ok()?.to_owned() }))
            .collect();
        if let Some(length) = response.content_length()
            && length > limit
        {
            return Err(Failure::TooLarge { limit, seen: length });
        }
        let mut body = Vec::with_capacity(response.content_length().unwrap_or(0).min(64 << 20) as usize);
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(Failure::TooLarge { limit, seen: (body.len() + chunk.len()) as u64 });
            }
            self.stats.bytes_received.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            body.extend_from_slice(&chunk);
        }
        Ok(api::Response { status, headers, body, attempts: 1 })
    }

    /// Runs a batch on `max_concurrency` slots. A request that must wait before its next attempt
    /// leaves its slot; requests whose wait is over go before requests not yet started.
    async fn run_batch(self, requests: Vec<api::Request>, results: mpsc::UnboundedSender<Completion>) {
        let mut queue = Queue::default();
        for (index, request) in requests.into_iter().enumerate() {
            match self.prepare(request) {
                Ok(exchange) => queue.fresh.push_back((index as u32, exchange)),
                Err(e) => {
                    let _ = results.send((index as u32, Err(e)));
                }
            }
        }
        // As many workers as requests could ever be in flight; the limiter decides how many are.
        let slots = self.options.max_concurrency.max(1).min(queue.fresh.len().max(1));
        let queue = Arc::new(Mutex::new(queue));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..slots {
            let (sender, queue, results) = (self.clone(), queue.clone(), results.clone());
            workers.spawn(async move { sender.work(queue, results).await }.in_current_span());
        }
        while workers.join_next().await.is_some() {}
    }

    async fn work(&self, queue: Arc<Mutex<Queue>>, results: mpsc::UnboundedSender<Completion>) {
        loop {
            let permit = tokio::select! {
                permit = self.limiter.acquire() => permit,
                () = self.cancel.cancelled() => return,
            };
            let next = lock(&queue).next(Instant::now());
            match next {
                Next::Run(index, mut exchange) => {
                    let step = self.step(&mut exchange).await;
                    let levels = self.limiter.release(permit, exchange.outcome, exchange.sent);
                    self.stats.concurrency.store(levels.limit as u64, Ordering::Relaxed);
                    self.stats.peak_concurrency.fetch_max(levels.peak as u64, Ordering::Relaxed);
                    self.stats.concurrency_cuts.store(levels.cuts, Ordering::Relaxed);
                    match step {
                        Step::Done(result) => {
                            if results.send((index, result)).is_err() {
                                return; // nobody waits for the batch any more
                            }
                        }
                        Step::Again(delay) => lock(&queue).waiting.push((Instant::now() + delay, index, *exchange)),
                    }
                }
                Next::WaitUntil(when) => {
                    drop(permit);
                    // Capped, so that a retry queued meanwhile by another slot with an earlier time
                    // is not overslept.
                    let until = when.min(Instant::now() + Duration::from_millis(50));
                    tokio::select! {
                        () = tokio::time::sleep_until(until.into()) => {}
                        () = self.cancel.cancelled() => {}
                    }
                }
                Next::Finished => return,
            }
        }
    }
}

type Completion = (u32, Result<api::Response, api::Error>);

#[derive(Default)]
struct Queue {
    fresh: VecDeque<(u32, Exchange)>,
    waiting: Vec<(Instant, u32, Exchange)>,
}

enum Next {
    Run(u32, Box<Exchange>),
    WaitUntil(Instant),
    Finished,
}

impl Queue {
    fn next(&mut self, now: Instant) -> Next {
        let due = self.waiting.iter().enumerate().min_by_key(|(_, (when, _, _))| *when).map(|(i, (when, _, _))| (i, *when));
        match due {
            Some((i, when)) if when <= now => {
                let (_, index, exchange) = self.waiting.swap_remove(i);
                Next::Run(index, Box::new(exchange))
            }
            _ => match self.fresh.pop_front() {
                Some((index, exchange)) => Next::Run(index, Box::new(exchange)),
                None => match due {
                    Some((_, when)) => Next::WaitUntil(when),
                    None => Next::Finished,
                },
            },
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The host side of a `pending-batch` resource: results as they arrive. Dropping it stops the
/// requests not yet answered.
pub struct PendingBatch {
    results: mpsc::UnboundedReceiver<Completion>,
    /// A result held back because the previous call had already returned enough bytes.
    stash: Option<Completion>,
    remaining: usize,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PendingBatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Response bytes handed to the component in one `next` call (one larger response still passes).
const NEXT_BYTES: usize = 32 << 20;

impl PendingBatch {
    /// Waits for the next result, then gathers more for up to `linger` (at most `max`), and
    /// returns them; empty once every result has been returned.
    pub async fn next(&mut self, max: usize, linger: Duration) -> Vec<Completion> {
        let mut out = Vec::new();
        if self.remaining == 0 {
            return out;
        }
        let first = match self.stash.take() {
            Some(c) => Some(c),
            None => self.results.recv().await,
        };
        let Some(first) = first else {
            // The batch's task ended without answering everything: it was aborted.
            self.remaining = 0;
            return out;
        };
        let mut bytes = size_of(&first);
        out.push(first);
        let deadline = tokio::time::Instant::now() + linger;
        while out.len() < max.max(1) && out.len() < self.remaining {
            let next = match self.results.try_recv() {
                Ok(c) => c,
                Err(_) => match tokio::time::timeout_at(deadline, self.results.recv()).await {
                    Ok(Some(c)) => c,
                    _ => break,
                },
            };
            if bytes + size_of(&next) > NEXT_BYTES {
                self.stash = Some(next);
                break;
            }
            bytes += size_of(&next);
            out.push(next);
        }
        self.remaining -= out.len();
        out
    }
}

fn size_of(c: &Completion) -> usize {
    c.1.as_ref().map_or(0, |r| r.body.len())
}

fn classify(e: reqwest::Error) -> Failure {
    let detail = describe_reqwest_error(&e);
    if e.is_timeout() {
        Failure::Timeout(detail)
    } else if e.is_connect() {
        Failure::Connect(detail)
    } else if e.is_request() || e.is_body() || e.is_decode() {
        Failure::Interrupted(detail)
    } else {
        Failure::Other(detail)
    }
}

/// The innermost cause of a reqwest error, which is where the useful words are ("connection
/// refused", "dns error").
pub fn describe_reqwest_error(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

fn describe_failure(f: &Failure) -> String {
    match f {
        Failure::Connect(d) => format!("connect error: {d}"),
        Failure::Timeout(d) => format!("timeout: {d}"),
        Failure::Interrupted(d) => format!("connection interrupted: {d}"),
        Failure::TooLarge { limit, seen } => format!("body of {seen} bytes over the {} MiB limit", limit >> 20),
        Failure::Other(d) => d.clone(),
    }
}

fn describe_outcome(outcome: &Result<api::Response, Failure>) -> String {
    match outcome {
        Ok(r) => format!("HTTP {}", r.status),
        Err(f) => describe_failure(f),
    }
}

fn finish(outcome: Result<api::Response, Failure>, attempts: u32, options: &HttpOptions) -> Result<api::Response, api::Error> {
    let after = |d: String| if attempts > 1 { format!("{d}, after {attempts} attempts") } else { d };
    match outcome {
        Ok(mut r) => {
            r.attempts = attempts;
            Ok(r)
        }
        Err(Failure::Connect(d)) => Err(api::Error::Connect(after(d))),
        Err(Failure::Timeout(d)) => Err(api::Error::Timeout(format!("{d} (limit {} s per attempt)", options.request_timeout.as_secs()))),
        Err(Failure::Interrupted(d)) => Err(api::Error::Interrupted(after(d))),
        Err(Failure::TooLarge { limit, seen }) => Err(api::Error::TooLarge(format!(
            "the answer is {}, over the {} MiB limit for one response; raise it with --max-response-mb",
            human_size(seen),
            limit >> 20
        ))),
        Err(Failure::Other(d)) => Err(api::Error::Other(d)),
    }
}

fn human_size(bytes: u64) -> String {
    if bytes >= 1 << 20 { format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20)) } else { format!("{bytes} bytes") }
}

/// A URL for a message or a log line: long ones are cut, so that a 100 KB URL is not echoed whole.
pub use d365meta_guest::odata::shorten;

fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// `Retry-After` as seconds or as an HTTP date.
fn retry_after(headers: &[api::Header]) -> Option<Duration> {
    let value = headers.iter().find(|h| h.name.eq_ignore_ascii_case("retry-after"))?;
    parse_retry_after(&value.value)
}

fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^(attempt-1))].
pub(crate) fn backoff(options: &HttpOptions, attempt: u32) -> Duration {
    let exp = options.backoff_base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let ceiling = exp.min(options.backoff_cap);
    ceiling.mul_f64(fastrand::f64())
}

impl api::Host for State {}

impl api::HostEnvironment for State {
    async fn base_url(&mut self, environment: Resource<EnvironmentHandle>) -> wasmtime::Result<String> {
        let base_url = self.table.get(&environment)?.base_url().to_owned();
        self.returning_to_guest();
        Ok(base_url)
    }

    async fn send(
        &mut self,
        environment: Resource<EnvironmentHandle>,
        request: api::Request,
    ) -> wasmtime::Result<Result<api::Response, api::Error>> {
        let span = self.services.phase_span();
        let result = self.table.get(&environment)?.send(request).instrument(span).await;
        self.returning_to_guest();
        Ok(result)
    }

    async fn start(
        &mut self,
        environment: Resource<EnvironmentHandle>,
        requests: Vec<api::Request>,
    ) -> wasmtime::Result<Resource<PendingBatch>> {
        let pending = {
            let _phase = self.services.phase_span().entered();
            self.table.get(&environment)?.start(requests)
        };
        let handle = self.table.push(pending)?;
        self.returning_to_guest();
        Ok(handle)
    }

    /// The host made the environment and removes it after the export it was lent to returns; a
    /// component cannot own one, so there is nothing to do here.
    async fn drop(&mut self, _environment: Resource<EnvironmentHandle>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl api::HostPendingBatch for State {
    async fn next(&mut self, batch: Resource<PendingBatch>, max: u32, linger_ms: u32) -> wasmtime::Result<Vec<api::Completion>> {
        let pending = self.table.get_mut(&batch)?;
        let results = pending.next(max as usize, Duration::from_millis(u64::from(linger_ms))).await;
        self.returning_to_guest();
        Ok(results.into_iter().map(|(index, result)| api::Completion { index, outcome: result }).collect())
    }

    async fn drop(&mut self, batch: Resource<PendingBatch>) -> wasmtime::Result<()> {
        self.table.delete(batch)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, value: &str) -> api::Header {
        api::Header { name: name.into(), value: value.into() }
    }

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        assert_eq!(retry_after(&[header("Retry-After", "3")]), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(&[header("retry-after", "0.5")]), Some(Duration::from_millis(500)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let d = retry_after(&[header("Retry-After", &later)]).unwrap();
        assert!(d > Duration::from_secs(25) && d <= Duration::from_secs(30), "{d:?}");
        assert_eq!(retry_after(&[header("Retry-After", "soon")]), None);
        assert_eq!(retry_after(&[]), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let o = HttpOptions { backoff_base: Duration::from_millis(100), backoff_cap: Duration::from_secs(1), ..HttpOptions::default() };
        for _ in 0..200 {
            assert!(backoff(&o, 1) <= Duration::from_millis(100));
            assert!(backoff(&o, 3) <= Duration::from_millis(400));
            assert!(backoff(&o, 30) <= Duration::from_secs(1));
        }
        let mean = (0..2000).map(|_| backoff(&o, 4).as_secs_f64()).sum::<f64>() / 2000.0;
        assert!((0.3..0.5).contains(&mean), "full jitter over [0, 0.8s] averages 0.4s, got {mean}");
    }
}
