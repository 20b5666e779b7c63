//! The core's storage port over rusqlite, for running the core natively: its unit tests, and the
//! benchmarks' lower bound (the same code and SQL without the component boundary).

use crate::ports::*;
use std::cell::{Cell, RefCell};

pub struct SqliteStore {
    pub conn: rusqlite::Connection,
    in_tx: Cell<bool>,
    leases: std::rc::Rc<RefCell<std::collections::BTreeSet<String>>>,
}

impl SqliteStore {
    pub fn memory() -> Self {
        Self::new(rusqlite::Connection::open_in_memory().expect("an in-memory database opens"))
    }

    /// An existing database file (for reading what the component wrote).
    pub fn open(path: &std::path::Path) -> rusqlite::Result<Self> {
        Ok(Self::new(rusqlite::Connection::open(path)?))
    }

    fn new(conn: rusqlite::Connection) -> Self {
        let _ = conn.execute_batch("PRAGMA foreign_keys = ON");
        conn.set_prepared_statement_cache_capacity(256);
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
        Some(rusqlite::ErrorCode::ReadOnly) => StoreErrorCode::ReadOnly,
        _ => StoreErrorCode::Other,
    };
    StoreError { code, message: e.to_string() }
}

impl Store for SqliteStore {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<Rows, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(store_error)?;
        let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let n = columns.len();
        let values: Vec<rusqlite::types::Value> = params.iter().map(to_sql).collect();
        let mut out = Vec::new();
        let mut rows = stmt.query(rusqlite::params_from_iter(values)).map_err(store_error)?;
        while let Some(row) = rows.next().map_err(store_error)? {
            out.push((0..n).map(|i| row.get_ref(i).map(from_sql)).collect::<Result<_, _>>().map_err(store_error)?);
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

/// HTTP for reads run natively: they never need it, and any request is refused.
pub struct Offline;

impl Http for Offline {
    fn base_url(&self) -> String {
        String::new()
    }
    fn send(&self, _: &HttpRequest) -> Result<HttpResponse, HttpError> {
        Err(HttpError::Denied("offline".to_owned()))
    }
    fn start(&self, requests: &[HttpRequest]) -> Box<dyn PendingBatch + '_> {
        Box::new(Answered(requests.iter().enumerate().map(|(i, r)| (i, self.send(r))).collect()))
    }
}

/// Host services for running natively: the system clock, and nothing to show or cancel.
pub struct Quiet;

impl Services for Quiet {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
    }
    fn log(&self, _: Level, _: &str) {}
    fn progress(&self, _: &Progress) {}
    fn cancelled(&self) -> bool {
        false
    }
}
