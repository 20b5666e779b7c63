//! `d365meta:cache/http`: outbound HTTP under the host's policy.
//!
//! Policy, in order: the URL's origin must be on the allow-list (fail closed); `Authorization` from
//! the component is dropped and the host's own bearer token added where one applies; connect
//! errors, 429 and 502/503/504 are retried with exponential backoff and full jitter, honouring
//! `Retry-After`, until the attempts or the total time budget run out; each request has a timeout
//! and a body-size limit; batches run with bounded concurrency. The component gets coarse errors;
//! details go to the log.

use crate::auth::Authenticator;
use crate::bindings::http_api as api;
use crate::cancel::CancelToken;
use crate::policy::{AllowList, Origin, Refusal};
use crate::runtime::State;
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

#[derive(Clone, Debug)]
pub struct HttpOptions {
    pub connect_timeout: Duration,
    /// Per attempt, body included. Large: a full PublicEntities answer is tens of megabytes.
    pub request_timeout: Duration,
    /// Total time one request may spend in retries (waits included).
    pub retry_budget: Duration,
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Requests in flight at once within one batch.
    pub max_concurrency: usize,
    pub max_body_bytes: u64,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(300),
            retry_budget: Duration::from_secs(180),
            max_attempts: 6,
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(30),
            max_concurrency: 16,
            max_body_bytes: 512 * 1024 * 1024,
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
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpTotals {
    pub requests: u64,
    pub retries: u64,
    pub bytes_received: u64,
    pub refused: u64,
}

impl HttpStats {
    pub fn totals(&self) -> HttpTotals {
        HttpTotals {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }
}

/// The process-wide client: building one loads the platform's roots, which costs milliseconds, and
/// one client shares its connection pool across all requests.
pub fn shared_client(connect_timeout: Duration) -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .connect_timeout(connect_timeout)
                .pool_idle_timeout(Duration::from_secs(60))
                .user_agent(concat!("d365meta/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("the HTTP client configuration is valid")
        })
        .clone()
}

pub struct HttpState {
    client: reqwest::Client,
    options: Arc<HttpOptions>,
    allowed: AllowList,
    auth: Arc<Authenticator>,
    cancel: CancelToken,
    stats: Arc<HttpStats>,
}

impl HttpState {
    pub fn new(options: HttpOptions, auth: Arc<Authenticator>, cancel: CancelToken) -> Self {
        HttpState {
            client: shared_client(options.connect_timeout),
            options: Arc::new(options),
            allowed: AllowList::default(),
            auth,
            cancel,
            stats: Arc::new(HttpStats::default()),
        }
    }

    pub fn allow(&mut self, origin: Origin) {
        self.allowed.allow(origin);
    }

    pub fn stats(&self) -> Arc<HttpStats> {
        self.stats.clone()
    }

    /// Sends one request under the policy, retrying as configured.
    pub async fn send(&self, request: api::Request) -> Result<api::Response, api::Error> {
        let (url, origin) = match self.allowed.check(&request.url) {
            Ok(ok) => ok,
            Err(refusal) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                return Err(match refusal {
                    Refusal::Invalid(why) => {
                        crate::log!(Warn, "refused {:?}: {why}", request.url);
                        api::Error::InvalidUrl(why)
                    }
                    Refusal::NotAllowed(origin) => {
                        let allowed: Vec<String> = self.allowed.origins().map(ToString::to_string).collect();
                        crate::log!(Warn, "refused a request to {origin}: not an allowed host (allowed: {})", allowed.join(", "));
                        api::Error::Denied(format!("{} is not an allowed host", origin.host))
                    }
                });
            }
        };
        let token = self.auth.token_for(&self.client, &origin).await.map_err(|e| {
            crate::log!(Error, "{e}");
            api::Error::Other(format!("could not obtain an access token: {e}"))
        })?;
        let method = match request.method {
            api::Method::Get => reqwest::Method::GET,
            api::Method::Post => reqwest::Method::POST,
        };
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if self.cancel.is_cancelled() {
                return Err(api::Error::Cancelled);
            }
            let mut builder = self.client.request(method.clone(), url.clone()).timeout(self.options.request_timeout);
            for header in &request.headers {
                if header.name.eq_ignore_ascii_case("authorization") {
                    crate::log!(Warn, "dropped an Authorization header set by the component");
                    continue;
                }
                builder = builder.header(header.name.as_str(), header.value.as_str());
            }
            if let Some(token) = &token {
                builder = builder.bearer_auth(token);
            }
            if let Some(body) = &request.body {
                builder = builder.body(body.clone());
            }
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let outcome = tokio::select! {
                outcome = self.exchange(builder) => outcome,
                () = self.cancel.cancelled() => return Err(api::Error::Cancelled),
            };
            let retry_after = match &outcome {
                Ok(response) if is_retryable_status(response.status) => Some(retry_after(&response.headers)),
                Err(Failure::Connect(_)) => Some(None),
                _ => None,
            };
            let Some(server_delay) = retry_after else {
                return finish(outcome, attempt);
            };
            let delay = server_delay.unwrap_or_else(|| backoff(&self.options, attempt));
            let out_of_budget = started.elapsed() + delay > self.options.retry_budget;
            if attempt >= self.options.max_attempts || out_of_budget {
                crate::log!(Warn, "{} {url}: giving up after {attempt} attempt(s) ({})", method, describe_outcome(&outcome));
                return finish(outcome, attempt);
            }
            crate::log!(
                Info,
                "{} {url}: {}; retrying in {:.1}s (attempt {})",
                method,
                describe_outcome(&outcome),
                delay.as_secs_f64(),
                attempt + 1
            );
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.cancel.cancelled() => return Err(api::Error::Cancelled),
            }
        }
    }

    /// One attempt: send, then read the body within the size limit.
    async fn exchange(&self, builder: reqwest::RequestBuilder) -> Result<api::Response, Failure> {
        let mut response = builder.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(name, value)| Some(api::Header { name: name.as_str().to_owned(), value: value.to_str().ok()?.to_owned() }))
            .collect();
        if let Some(length) = response.content_length()
            && length > self.options.max_body_bytes
        {
            return Err(Failure::TooLarge(length));
        }
        let mut body = Vec::with_capacity(response.content_length().unwrap_or(0).min(64 << 20) as usize);
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if (body.len() + chunk.len()) as u64 > self.options.max_body_bytes {
                return Err(Failure::TooLarge((body.len() + chunk.len()) as u64));
            }
            self.stats.bytes_received.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            body.extend_from_slice(&chunk);
        }
        Ok(api::Response { status, headers, body, attempts: 1 })
    }
}

enum Failure {
    Connect(String),
    Timeout(String),
    TooLarge(u64),
    Other(String),
}

fn classify(e: reqwest::Error) -> Failure {
    let detail = describe_reqwest_error(&e);
    if e.is_timeout() {
        Failure::Timeout(detail)
    } else if e.is_connect() {
        Failure::Connect(detail)
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

fn describe_outcome(outcome: &Result<api::Response, Failure>) -> String {
    match outcome {
        Ok(r) => format!("HTTP {}", r.status),
        Err(Failure::Connect(d)) => format!("connect error: {d}"),
        Err(Failure::Timeout(d)) => format!("timeout: {d}"),
        Err(Failure::TooLarge(n)) => format!("body of {n} bytes over the limit"),
        Err(Failure::Other(d)) => d.clone(),
    }
}

fn finish(outcome: Result<api::Response, Failure>, attempts: u32) -> Result<api::Response, api::Error> {
    match outcome {
        Ok(mut r) => {
            r.attempts = attempts;
            Ok(r)
        }
        Err(Failure::Connect(d)) => Err(api::Error::Connect(if attempts > 1 { format!("{d}, after {attempts} attempts") } else { d })),
        Err(Failure::Timeout(d)) => Err(api::Error::Timeout(d)),
        Err(Failure::TooLarge(n)) => Err(api::Error::TooLarge(format!("{n} bytes"))),
        Err(Failure::Other(d)) => Err(api::Error::Other(d)),
    }
}

fn is_retryable_status(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// `Retry-After` as seconds or as an HTTP date.
fn retry_after(headers: &[api::Header]) -> Option<Duration> {
    let value = headers.iter().find(|h| h.name.eq_ignore_ascii_case("retry-after"))?.value.trim().to_owned();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let when = httpdate::parse_http_date(&value).ok()?;
    Some(when.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^(attempt-1))].
fn backoff(options: &HttpOptions, attempt: u32) -> Duration {
    let exp = options.backoff_base.saturating_mul(1u32 << (attempt - 1).min(20));
    let ceiling = exp.min(options.backoff_cap);
    ceiling.mul_f64(fastrand::f64())
}

impl api::Host for State {
    async fn send(&mut self, request: api::Request) -> wasmtime::Result<Result<api::Response, api::Error>> {
        let result = self.http.send(request).await;
        self.returning_to_guest();
        Ok(result)
    }

    async fn send_batch(&mut self, requests: Vec<api::Request>) -> wasmtime::Result<Vec<Result<api::Response, api::Error>>> {
        let concurrency = self.http.options.max_concurrency.max(1);
        let http = &self.http;
        let results = futures_util::stream::iter(requests).map(|r| http.send(r)).buffered(concurrency).collect().await;
        self.returning_to_guest();
        Ok(results)
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
