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
