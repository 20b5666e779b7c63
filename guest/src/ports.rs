//! The seams between the core and the world: HTTP to one environment, storage and host services.
//!
//! The shapes are the WIT contract's own types (`crate::wit`); the traits let the same core code
//! run over the component's imports (`component.rs`) and natively over test doubles and rusqlite.

use crate::error::{Error, ErrorKind};

pub use crate::wit::host::{Level, ProgressEvent as Progress};
pub use crate::wit::http::{Error as HttpError, Header, Method, Request as HttpRequest, Response as HttpResponse};
pub use crate::wit::shared::{Error as SharedError, Listed};
pub use crate::wit::store::{Error as StoreError, ErrorCode as StoreErrorCode, Rows, TransactionMode as TxMode, Value};
pub use crate::wit::types::Phase;

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
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
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

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
    }
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
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

/// HTTP to one environment: requests name paths under its base URL, never another origin.
pub trait Http {
    /// The environment's base URL (normalised by whoever made the environment).
    fn base_url(&self) -> String;
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

/// No environment: what reads get, so that they cannot send a request at all.
pub struct NoNetwork;

impl Http for NoNetwork {
    fn base_url(&self) -> String {
        String::new()
    }
    fn send(&self, _: &HttpRequest) -> Result<HttpResponse, HttpError> {
        Err(HttpError::Denied("reads never reach an environment".to_owned()))
    }
    fn start(&self, requests: &[HttpRequest]) -> Box<dyn PendingBatch + '_> {
        Box::new(Answered(requests.iter().enumerate().map(|(i, r)| (i, self.send(r))).collect()))
    }
}

impl SharedError {
    /// Turns a failure of the shared store at `location` into the core's error, naming what was done.
    pub fn into_error(self, location: &str, what: &str) -> Error {
        match self {
            SharedError::Denied(m) => {
                Error::new(ErrorKind::Denied, format!("shared store {location}: {what}: refused by the host's policy ({m})"))
            }
            SharedError::Unavailable(m) => Error::new(ErrorKind::Network, format!("shared store {location}: {what}: unavailable ({m})")),
            SharedError::TooLarge(m) => Error::new(ErrorKind::Service, format!("shared store {location}: {what}: too large ({m})")),
            SharedError::Cancelled => Error::cancelled(),
            SharedError::Other(m) => Error::new(ErrorKind::Service, format!("shared store {location}: {what}: {m}")),
        }
    }
}

/// The shared store of published versions the host lends a sync or a publish: objects by name
/// under its root, moved by the host (see `wit/shared.wit`).
pub trait Shared {
    /// Where the store is, for messages.
    fn location(&self) -> String;
    fn list(&self, prefix: &str) -> Result<Vec<Listed>, SharedError>;
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, SharedError>;
    /// Starts downloading `names`; their bytes come from the iterator in the order asked, fetched
    /// a few ahead while the caller works.
    fn download(&self, names: &[String]) -> Box<dyn Iterator<Item = Result<Option<Vec<u8>>, SharedError>> + '_>;
    /// Writes `name` only if it does not exist: `false` when it did (and is left as it was).
    fn put_new(&self, name: &str, body: &[u8]) -> Result<bool, SharedError>;
}

pub trait Services {
    fn now_ms(&self) -> i64;
    fn log(&self, level: Level, message: &str);
    fn progress(&self, event: &Progress);
    fn cancelled(&self) -> bool;
}

/// Milliseconds since the Unix epoch from the system clock (WASI's wall clock in the component).
pub fn system_now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
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
