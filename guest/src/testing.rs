//! Native implementations of the ports for unit tests: a real SQLite (the host's backend), canned
//! HTTP answers that record what was asked, and host services with a settable clock.

pub use crate::native::SqliteStore;
use crate::ports::*;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

/// A canned answer: a status and body, or a transport failure.
type Answer = Result<(u16, String), HttpError>;

/// Answers requests from a list of (URL suffix, status, body), first match wins; records every URL.
#[derive(Default)]
pub struct FakeHttp {
    routes: RefCell<Vec<(String, Answer)>>,
    /// Answers used once each, in order, before `routes`.
    once: RefCell<VecDeque<(String, Answer)>>,
    pub log: RefCell<Vec<String>>,
}

impl FakeHttp {
    pub fn route(&self, url_suffix: &str, status: u16, body: &str) -> &Self {
        self.routes.borrow_mut().push((url_suffix.to_owned(), Ok((status, body.to_owned()))));
        self
    }
    /// Answers the next request to `url_suffix` (before any `route`), once.
    pub fn once(&self, url_suffix: &str, status: u16, body: &str) -> &Self {
        self.once.borrow_mut().push_back((url_suffix.to_owned(), Ok((status, body.to_owned()))));
        self
    }
    pub fn fail(&self, url_suffix: &str, error: HttpError) -> &Self {
        self.routes.borrow_mut().push((url_suffix.to_owned(), Err(error)));
        self
    }
    /// Forgets every route and recorded request: the environment now runs something else.
    pub fn reset(&self) {
        self.routes.borrow_mut().clear();
        self.once.borrow_mut().clear();
        self.log.borrow_mut().clear();
    }
    pub fn requests(&self) -> Vec<String> {
        self.log.borrow().clone()
    }
}

/// The base URL of the environment `FakeHttp` stands for.
pub const FAKE_BASE_URL: &str = "http://env.test";

impl Http for FakeHttp {
    fn base_url(&self) -> String {
        FAKE_BASE_URL.to_owned()
    }
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        self.log.borrow_mut().push(request.path.clone());
        let once = self.once.borrow().iter().position(|(suffix, _)| request.path.ends_with(suffix.as_str()));
        if let Some(i) = once {
            let (_, answer) = self.once.borrow_mut().remove(i).expect("the position was just found");
            return answer.map(|(status, body)| HttpResponse { status, headers: vec![], body: body.into_bytes(), attempts: 1 });
        }
        let routes = self.routes.borrow();
        let Some((_, answer)) = routes.iter().find(|(suffix, _)| request.path.ends_with(suffix.as_str())) else {
            return Ok(HttpResponse {
                status: 404,
                headers: vec![],
                body: br#"{"error":{"code":"NotFound","message":"no route"}}"#.to_vec(),
                attempts: 1,
            });
        };
        answer.clone().map(|(status, body)| HttpResponse { status, headers: vec![], body: body.into_bytes(), attempts: 1 })
    }
    fn start(&self, requests: &[HttpRequest]) -> Box<dyn PendingBatch + '_> {
        Box::new(Answered(requests.iter().enumerate().map(|(i, r)| (i, self.send(r))).collect()))
    }
}

pub struct FakeHost {
    pub now: Cell<i64>,
    pub cancel: Cell<bool>,
    pub logs: RefCell<Vec<(Level, String)>>,
    pub progress: RefCell<Vec<Progress>>,
}

impl Default for FakeHost {
    fn default() -> Self {
        FakeHost { now: Cell::new(1_700_000_000_000), cancel: Cell::new(false), logs: RefCell::default(), progress: RefCell::default() }
    }
}

impl Services for FakeHost {
    fn now_ms(&self) -> i64 {
        self.now.get()
    }
    fn log(&self, level: Level, message: &str) {
        self.logs.borrow_mut().push((level, message.to_owned()));
    }
    fn progress(&self, event: &Progress) {
        self.progress.borrow_mut().push(event.clone());
    }
    fn cancelled(&self) -> bool {
        self.cancel.get()
    }
}

/// All three fakes, with the schema opened.
pub struct World {
    pub http: FakeHttp,
    pub store: SqliteStore,
    pub host: FakeHost,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    pub fn new() -> Self {
        let w = World { http: FakeHttp::default(), store: SqliteStore::memory(), host: FakeHost::default() };
        crate::schema::open(&w.store, 0).unwrap();
        w
    }
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx { http: &self.http, store: &self.store, host: &self.host }
    }
}

/// A shared store in memory: objects by name, and every name asked for.
#[derive(Default)]
pub struct MemoryShared {
    pub objects: RefCell<std::collections::BTreeMap<String, Vec<u8>>>,
    pub gets: RefCell<Vec<String>>,
}

impl Shared for MemoryShared {
    fn location(&self) -> String {
        "memory://shared".to_owned()
    }
    fn list(&self, prefix: &str) -> Result<Vec<Listed>, SharedError> {
        Ok(self
            .objects
            .borrow()
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, bytes)| Listed { name: name.clone(), size: bytes.len() as u64 })
            .collect())
    }
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, SharedError> {
        self.gets.borrow_mut().push(name.to_owned());
        Ok(self.objects.borrow().get(name).cloned())
    }
    fn download(&self, names: &[String]) -> Box<dyn Iterator<Item = Result<Option<Vec<u8>>, SharedError>> + '_> {
        let answers: Vec<_> = names.iter().map(|n| self.get(n)).collect();
        Box::new(answers.into_iter())
    }
    fn put_new(&self, name: &str, body: &[u8]) -> Result<bool, SharedError> {
        let mut objects = self.objects.borrow_mut();
        if objects.contains_key(name) {
            return Ok(false);
        }
        objects.insert(name.to_owned(), body.to_vec());
        Ok(true)
    }
}
