//! The Azure AD client-credentials token endpoint, and the credentials it accepts.

use super::body::Chunks;
use super::faults::{FaultKind, FaultQueue};
use super::odata::{parse_query, percent_decode};
use super::{Conn, Dropped, RecordedRequest, activity_id, fault_response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub const DEFAULT_CLIENT_ID: &str = "d365meta-simulator-client";
pub const DEFAULT_CLIENT_SECRET: &str = "d365meta-simulator-secret";
pub const DEFAULT_TOKEN: &str = "d365meta-simulator-token";

struct Credentials {
    client_id: String,
    client_secret: String,
    token: String,
    expires_in: u64,
}

pub(crate) struct TokenService {
    credentials: Mutex<Credentials>,
    log: Mutex<Vec<RecordedRequest>>,
    pub(crate) faults: Mutex<FaultQueue>,
    counter: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn aad_json(status: StatusCode, body: String) -> Response<Chunks> {
    let mut r = Response::new(Chunks::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json; charset=utf-8"));
    r
}

/// An error as Azure AD reports it: `error`, `error_description` (with its AADSTS code), `error_codes`…
fn aad_error(status: StatusCode, error: &str, code: u32, description: &str, trace_id: &str) -> Response<Chunks> {
    let body = serde_json::json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {trace_id}\r\nTimestamp: 2025-01-01 00:00:00Z"),
        "error_codes": [code],
        "timestamp": "2025-01-01 00:00:00Z",
        "trace_id": trace_id,
        "correlation_id": trace_id,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    aad_json(status, body.to_string())
}

impl TokenService {
    pub(crate) fn new() -> TokenService {
        TokenService {
            credentials: Mutex::new(Credentials {
                client_id: DEFAULT_CLIENT_ID.to_string(),
                client_secret: DEFAULT_CLIENT_SECRET.to_string(),
                token: DEFAULT_TOKEN.to_string(),
                expires_in: 3599,
            }),
            log: Mutex::new(Vec::new()),
            faults: Mutex::new(FaultQueue::default()),
            counter: AtomicU64::new(0),
        }
    }

    pub(crate) fn set_credentials(&self, client_id: &str, client_secret: &str, token: &str) {
        let mut c = lock(&self.credentials);
        c.client_id = client_id.to_string();
        c.client_secret = client_secret.to_string();
        c.token = token.to_string();
    }

    pub(crate) fn set_expires_in(&self, seconds: u64) {
        lock(&self.credentials).expires_in = seconds;
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.log).clone()
    }

    pub(crate) async fn handle(&self, req: Request<Incoming>, conn: Conn) -> Result<Response<Chunks>, Dropped> {
        let method = req.method().clone();
        let path_and_query = req.uri().path_and_query().map_or_else(|| req.uri().path().to_string(), |p| p.to_string());
        let trace_id = activity_id("token", self.counter.fetch_add(1, Ordering::Relaxed));
        let body = Limited::new(req.into_body(), 64 * 1024).collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let fault = lock(&self.faults).take(&path_and_query, &percent_decode(&path_and_query, false));
        if let Some(answer) = fault.as_ref().and_then(|kind| fault_response(kind, conn)) {
            self.record(&method, &path_and_query, answer.as_ref().map_or(0, |r| r.status().as_u16()));
            return answer;
        }
        let mut response = match fault {
            Some(FaultKind::Status { status, retry_after, body }) => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut r = match body {
                    Some(body) => aad_json(status, body),
                    None => aad_error(status, "temporarily_unavailable", 50196, "The server is temporarily unavailable.", &trace_id),
                };
                if let Some(value) = retry_after.and_then(|v| header::HeaderValue::from_str(&v).ok()) {
                    r.headers_mut().insert(header::RETRY_AFTER, value);
                }
                r
            }
            Some(FaultKind::Body(body)) => aad_json(StatusCode::OK, body),
            Some(FaultKind::Delay(delay)) => {
                tokio::time::sleep(delay).await;
                self.answer(&method, &path_and_query, &body, &trace_id)
            }
            Some(FaultKind::Truncate(keep)) => {
                let mut r = self.answer(&method, &path_and_query, &body, &trace_id);
                r.body_mut().cut_after(keep);
                r
            }
            Some(FaultKind::Close | FaultKind::Reset | FaultKind::Redirect { .. }) | None => {
                self.answer(&method, &path_and_query, &body, &trace_id)
            }
        };
        if let Ok(value) = header::HeaderValue::from_str(&trace_id) {
            response.headers_mut().insert("x-ms-request-id", value);
        }
        self.record(&method, &path_and_query, response.status().as_u16());
        Ok(response)
    }

    fn record(&self, method: &Method, path_and_query: &str, status: u16) {
        lock(&self.log).push(RecordedRequest {
            method: method.to_string(),
            path_and_query: path_and_query.to_string(),
            status,
            authorization: None,
            client_request_id: None,
            at: Instant::now(),
        });
    }

    fn answer(&self, method: &Method, path: &str, body: &[u8], trace_id: &str) -> Response<Chunks> {
        let segments: Vec<&str> = path.split('?').next().unwrap_or_default().split('/').collect();
        if !matches!(segments.as_slice(), ["", tenant, "oauth2", "v2.0", "token"] if !tenant.is_empty()) {
            return aad_error(StatusCode::NOT_FOUND, "not_found", 90002, "The endpoint was not found.", trace_id);
        }
        if method != Method::POST {
            return aad_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request",
                900561,
                "The endpoint only accepts POST requests.",
                trace_id,
            );
        }
        let form = parse_query(&String::from_utf8_lossy(body));
        let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let credentials = lock(&self.credentials);
        if field("grant_type") != Some("client_credentials") {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type.",
                trace_id,
            );
        }
        if !field("scope").is_some_and(|s| s.ends_with("/.default")) {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                1002012,
                "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
                trace_id,
            );
        }
        if field("client_id") != Some(credentials.client_id.as_str()) {
            let id = field("client_id").unwrap_or_default();
            return aad_error(
                StatusCode::UNAUTHORIZED,
                "unauthorized_client",
                700016,
                &format!("Application with identifier '{id}' was not found in the directory."),
                trace_id,
            );
        }
        if field("client_secret") != Some(credentials.client_secret.as_str()) {
            return aad_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
                trace_id,
            );
        }
        let body = serde_json::json!({
            "token_type": "Bearer",
            "expires_in": credentials.expires_in,
            "ext_expires_in": credentials.expires_in,
            "access_token": credentials.token,
        });
        aad_json(StatusCode::OK, body.to_string())
    }
}
