//! The seams between the core and the world: HTTP, storage and host services.
//!
//! The component implements these with its WIT imports (see `component.rs`); unit tests implement them
//! natively. The shapes follow the WIT contract in `wit/` one to one.

use crate::error::{Error, ErrorKind};

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Integer(v)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Integer(i64::from(v))
    }
}
impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::Integer(v as i64)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Integer(i64::from(v))
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    pub changes: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreErrorCode {
    Constraint,
    Busy,
    Denied,
    Corrupt,
    /// The connection may not write.
    ReadOnly,
    Invalid,
    Misuse,
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError {
    pub code: StoreErrorCode,
    pub message: String,
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        let kind = match e.code {
            StoreErrorCode::Busy => ErrorKind::Conflict,
            _ => ErrorKind::Store,
        };
        Error::new(kind, format!("storage: {}", e.message))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxMode {
    Deferred,
    Immediate,
}

/// An open transaction: rolls back when dropped without `commit`.
pub trait Transaction {
    fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// A held advisory lock: released when dropped.
pub trait Lease {}

pub trait Store {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<Rows, StoreError>;
    fn execute_many(&self, sql: &str, params: &[Vec<Value>]) -> Result<u64, StoreError>;
    fn begin(&self, mode: TxMode) -> Result<Box<dyn Transaction + '_>, StoreError>;
    /// Takes the advisory lock `name`, or `None` when someone else holds it.
    fn try_lock(&self, name: &str) -> Result<Option<Box<dyn Lease>>, StoreError>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// Safe to send twice: the host repeats it after a broken connection or a cut-off answer.
    pub idempotent: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub attempts: u32,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpError {
    Denied(String),
    InvalidUrl(String),
    Timeout(String),
    Connect(String),
    Interrupted(String),
    TooLarge(String),
    Cancelled,
    Other(String),
}

impl HttpError {
    /// Turns a transport failure of `method url` into the core's error, naming the endpoint.
    pub fn into_error(self, what: &str) -> Error {
        match self {
            HttpError::Denied(m) => Error::new(ErrorKind::Denied, format!("{what}: refused by the host's policy ({m})")),
            HttpError::InvalidUrl(m) => Error::invalid_input(format!("{what}: invalid URL ({m})")),
            HttpError::Timeout(m) => Error::new(ErrorKind::Network, format!("{what}: timed out ({m})")),
            HttpError::Connect(m) => Error::new(ErrorKind::Network, format!("{what}: could not connect ({m})")),
            HttpError::Interrupted(m) => Error::new(ErrorKind::Network, format!("{what}: the connection broke ({m})")),
            HttpError::TooLarge(m) => Error::new(ErrorKind::Service, format!("{what}: response too large: {m}")),
            HttpError::Cancelled => Error::cancelled(),
            HttpError::Other(m) => Error::new(ErrorKind::Network, format!("{what}: {m}")),
        }
    }
}

/// The result of one request of a batch, with its position in the batch.
pub type Completion = (usize, Result<HttpResponse, HttpError>);

/// Requests in flight; results come as they arrive. Dropping it stops what is not answered yet.
pub trait PendingBatch {
    /// Waits for the next result, gathers more for up to `linger_ms` (at most `max`), and returns
    /// them; empty once every result has been returned.
    fn next(&mut self, max: usize, linger_ms: u32) -> Vec<Completion>;
}

pub trait Http {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError>;
    fn start(&self, requests: &[HttpRequest]) -> Box<dyn PendingBatch + '_>;

    /// Sends all `requests` concurrently and answers each, in the order given.
    fn send_batch(&self, requests: &[HttpRequest]) -> Vec<Result<HttpResponse, HttpError>> {
        let mut answers: Vec<Option<Result<HttpResponse, HttpError>>> = requests.iter().map(|_| None).collect();
        let mut pending = self.start(requests);
        loop {
            let done = pending.next(requests.len(), 0);
            if done.is_empty() {
                break;
            }
            for (index, result) in done {
                if let Some(slot) = answers.get_mut(index) {
                    *slot = Some(result);
                }
            }
        }
        answers.into_iter().map(|a| a.unwrap_or_else(|| Err(HttpError::Other("the host gave no answer".to_owned())))).collect()
    }
}

/// A batch whose results are all known already (native ports and tests).
pub struct Answered(pub std::collections::VecDeque<Completion>);

impl PendingBatch for Answered {
    fn next(&mut self, max: usize, _linger_ms: u32) -> Vec<Completion> {
        let n = max.max(1).min(self.0.len());
        self.0.drain(..n).collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    pub phase: String,
    pub done: u64,
    pub total: Option<u64>,
    pub bytes: Option<u64>,
}

pub trait Services {
    fn now_ms(&self) -> i64;
    fn log(&self, level: Level, message: &str);
    fn progress(&self, event: &Progress);
    fn cancelled(&self) -> bool;
}

/// Everything a core operation may touch.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub http: &'a dyn Http,
    pub store: &'a dyn Store,
    pub host: &'a dyn Services,
}

impl Ctx<'_> {
    /// Fails with `Cancelled` when the user asked to stop.
    pub fn check_cancelled(&self) -> Result<(), Error> {
        if self.host.cancelled() { Err(Error::cancelled()) } else { Ok(()) }
    }
}
