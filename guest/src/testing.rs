//! Native implementations of the ports for unit tests: a real SQLite (through rusqlite), canned
//! HTTP answers that record what was asked, and host services with a settable clock.

use crate::ports::*;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

pub struct SqliteStore {
    pub conn: rusqlite::Connection,
    in_tx: Cell<bool>,
    leases: std::rc::Rc<RefCell<std::collections::BTreeSet<String>>>,
}

impl SqliteStore {
    pub fn memory() -> Self {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        SqliteStore { conn, in_tx: Cell::new(false), leases: Default::default() }
    }
}

fn to_sql(v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match v {
        Value::Null => V::Null,
        Value::Integer(i) => V::Integer(*i),
        Value::Real(f) => V::Real(*f),
        Value::Text(s) => V::Text(s.clone()),
        Value::Blob(b) => V::Blob(b.clone()),
    }
}

fn from_sql(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef as V;
    match v {
        V::Null => Value::Null,
        V::Integer(i) => Value::Integer(i),
        V::Real(f) => Value::Real(f),
        V::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        V::Blob(b) => Value::Blob(b.to_vec()),
    }
}

fn store_error(e: rusqlite::Error) -> StoreError {
    let code = match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => StoreErrorCode::Constraint,
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => StoreErrorCode::Busy,
        _ => StoreErrorCode::Other,
    };
    StoreError { code, message: e.to_string() }
}

impl Store for SqliteStore {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<Rows, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(store_error)?;
        let columns: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
        let n = columns.len();
        let values: Vec<rusqlite::types::Value> = params.iter().map(to_sql).collect();
        let mut out = Vec::new();
        let mut rows = stmt.query(rusqlite::params_from_iter(values)).map_err(store_error)?;
        while let Some(row) = rows.next().map_err(store_error)? {
            out.push((0..n).map(|i| from_sql(row.get_ref(i).unwrap())).collect());
        }
        drop(rows);
        let changes = if n == 0 { self.conn.changes() } else { 0 };
        Ok(Rows { columns, rows: out, changes })
    }

    fn execute_many(&self, sql: &str, params: &[Vec<Value>]) -> Result<u64, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(store_error)?;
        let mut total = 0;
        for row in params {
            let values: Vec<rusqlite::types::Value> = row.iter().map(to_sql).collect();
            total += stmt.execute(rusqlite::params_from_iter(values)).map_err(store_error)? as u64;
        }
        Ok(total)
    }

    fn begin(&self, mode: TxMode) -> Result<Box<dyn Transaction + '_>, StoreError> {
        if self.in_tx.get() {
            return Err(StoreError { code: StoreErrorCode::Misuse, message: "a transaction is already open".into() });
        }
        let sql = match mode {
            TxMode::Deferred => "BEGIN DEFERRED",
            TxMode::Immediate => "BEGIN IMMEDIATE",
        };
        self.conn.execute_batch(sql).map_err(store_error)?;
        self.in_tx.set(true);
        Ok(Box::new(SqliteTx { store: self, done: false }))
    }

    fn try_lock(&self, name: &str) -> Result<Option<Box<dyn Lease>>, StoreError> {
        if !self.leases.borrow_mut().insert(name.to_owned()) {
            return Ok(None);
        }
        Ok(Some(Box::new(TestLease { name: name.to_owned(), leases: self.leases.clone() })))
    }
}

struct TestLease {
    name: String,
    leases: std::rc::Rc<RefCell<std::collections::BTreeSet<String>>>,
}

impl Lease for TestLease {}

impl Drop for TestLease {
    fn drop(&mut self) {
        self.leases.borrow_mut().remove(&self.name);
    }
}

struct SqliteTx<'a> {
    store: &'a SqliteStore,
    done: bool,
}

impl Transaction for SqliteTx<'_> {
    fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        self.done = true;
        self.store.in_tx.set(false);
        self.store.conn.execute_batch("COMMIT").map_err(store_error)
    }
}

impl Drop for SqliteTx<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.store.in_tx.set(false);
            let _ = self.store.conn.execute_batch("ROLLBACK");
        }
    }
}

/// Answers requests from a list of (URL suffix, status, body), first match wins; records every URL.
#[derive(Default)]
pub struct FakeHttp {
    routes: RefCell<Vec<(String, Result<(u16, String), HttpError>)>>,
    pub log: RefCell<Vec<String>>,
    pub queued: RefCell<VecDeque<String>>,
}

impl FakeHttp {
    pub fn route(&self, url_suffix: &str, status: u16, body: &str) -> &Self {
        self.routes.borrow_mut().push((url_suffix.to_owned(), Ok((status, body.to_owned()))));
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

impl Http for FakeHttp {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        self.log.borrow_mut().push(request.url.clone());
        let routes = self.routes.borrow();
        let Some((_, answer)) = routes.iter().find(|(suffix, _)| request.url.ends_with(suffix.as_str())) else {
            return Ok(HttpResponse {
                status: 404,
                headers: vec![],
                body: br#"{"error":{"code":"NotFound","message":"no route"}}"#.to_vec(),
                attempts: 1,
            });
        };
        answer.clone().map(|(status, body)| HttpResponse { status, headers: vec![], body: body.into_bytes(), attempts: 1 })
    }
    fn send_batch(&self, requests: &[HttpRequest]) -> Vec<Result<HttpResponse, HttpError>> {
        requests.iter().map(|r| self.send(r)).collect()
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
