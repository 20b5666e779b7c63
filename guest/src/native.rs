//! The core's storage port over the `d365meta-sqlite` backend, for running the core natively: its
//! unit tests, and the benchmarks' lower bound (the same code and SQL without the component
//! boundary).
//!
//! It is the backend the host gives the component, not a look-alike: the same configuration, the
//! same authorizer (no `ATTACH`, no `BEGIN` in SQL, no pragmas that change a setting), parameter
//! count checks, `changes` rule, error codes, transactions and leases. What the core does natively
//! it may do in the component, and the other way round.

use crate::ports::*;
use d365meta_sqlite as sqlite;
use std::cell::RefCell;

/// The core's [`Store`] over one `d365meta-sqlite` connection.
pub struct SqliteStore {
    /// The port takes `&self`; the connection is borrowed for one call at a time (nothing calls
    /// back into the store while a statement runs).
    db: RefCell<sqlite::Database>,
}

impl SqliteStore {
    /// A private in-memory database.
    pub fn memory() -> Self {
        Self::new(sqlite::Database::open_in_memory().expect("an in-memory database opens"))
    }

    /// The database file at `path` (created if needed), opened read-write as the host opens it:
    /// WAL, the default busy timeout, foreign keys, and leases as lock files beside it.
    pub fn open(path: &std::path::Path) -> Result<Self, sqlite::Error> {
        Ok(Self::new(sqlite::Database::open(path, sqlite::DEFAULT_BUSY_TIMEOUT)?))
    }

    /// A store over a connection opened otherwise (another busy timeout, read-only).
    pub fn new(db: sqlite::Database) -> Self {
        SqliteStore { db: RefCell::new(db) }
    }
}

fn to_sqlite(v: &Value) -> sqlite::Value {
    match v {
        Value::Null => sqlite::Value::Null,
        Value::Integer(i) => sqlite::Value::Integer(*i),
        Value::Real(f) => sqlite::Value::Real(*f),
        Value::Text(s) => sqlite::Value::Text(s.clone()),
        Value::Blob(b) => sqlite::Value::Blob(b.clone()),
    }
}

fn from_sqlite(v: sqlite::Value) -> Value {
    match v {
        sqlite::Value::Null => Value::Null,
        sqlite::Value::Integer(i) => Value::Integer(i),
        sqlite::Value::Real(f) => Value::Real(f),
        sqlite::Value::Text(s) => Value::Text(s),
        sqlite::Value::Blob(b) => Value::Blob(b),
    }
}

fn store_error(e: sqlite::Error) -> StoreError {
    let code = match e.code {
        sqlite::ErrorCode::Constraint => StoreErrorCode::Constraint,
        sqlite::ErrorCode::Busy => StoreErrorCode::Busy,
        sqlite::ErrorCode::Denied => StoreErrorCode::Denied,
        sqlite::ErrorCode::Corrupt => StoreErrorCode::Corrupt,
        sqlite::ErrorCode::ReadOnly => StoreErrorCode::ReadOnly,
        sqlite::ErrorCode::Invalid => StoreErrorCode::Invalid,
        sqlite::ErrorCode::Misuse => StoreErrorCode::Misuse,
        sqlite::ErrorCode::Foreign => StoreErrorCode::Other,
        sqlite::ErrorCode::Other => StoreErrorCode::Other,
    };
    StoreError { code, message: e.message }
}

impl Store for SqliteStore {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<Rows, StoreError> {
        let params: Vec<sqlite::Value> = params.iter().map(to_sqlite).collect();
        let rows = self.db.borrow_mut().execute(sql, &params).map_err(store_error)?;
        Ok(Rows {
            columns: rows.columns,
            rows: rows.rows.into_iter().map(|r| r.into_iter().map(from_sqlite).collect()).collect(),
            changes: rows.changes,
        })
    }

    fn execute_many(&self, sql: &str, params: &[Vec<Value>]) -> Result<u64, StoreError> {
        let params: Vec<Vec<sqlite::Value>> = params.iter().map(|r| r.iter().map(to_sqlite).collect()).collect();
        self.db.borrow_mut().execute_many(sql, &params).map_err(store_error)
    }

    fn begin(&self, mode: TxMode) -> Result<Box<dyn Transaction + '_>, StoreError> {
        let mode = match mode {
            TxMode::Deferred => sqlite::TransactionMode::Deferred,
            TxMode::Immediate => sqlite::TransactionMode::Immediate,
        };
        let id = self.db.borrow_mut().begin(mode).map_err(store_error)?;
        Ok(Box::new(SqliteTransaction { store: self, id }))
    }

    fn try_lock(&self, name: &str) -> Result<Option<Box<dyn Lease>>, StoreError> {
        let lease = self.db.borrow().try_lock(name).map_err(store_error)?;
        Ok(lease.map(|l| Box::new(SqliteLease { _held: l }) as Box<dyn Lease>))
    }
}

/// Dropping it releases the lock, as dropping the component's `lease` resource does.
struct SqliteLease {
    _held: sqlite::Lease,
}

impl Lease for SqliteLease {}

/// Dropping it rolls the transaction back unless it was committed, as dropping the component's
/// `transaction` resource does.
struct SqliteTransaction<'a> {
    store: &'a SqliteStore,
    id: sqlite::TransactionId,
}

impl Transaction for SqliteTransaction<'_> {
    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.store.db.borrow_mut().commit(self.id).map_err(store_error)
    }
}

impl Drop for SqliteTransaction<'_> {
    fn drop(&mut self) {
        self.store.db.borrow_mut().end(self.id);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The native store is the host's backend: what the host refuses to the component, it refuses
    /// to the core run natively, with the same codes.
    #[test]
    fn the_native_store_refuses_what_the_host_refuses() {
        let store = SqliteStore::memory();
        for sql in ["ATTACH DATABASE '/tmp/other.db' AS other", "BEGIN", "COMMIT", "SAVEPOINT s", "PRAGMA foreign_keys = OFF"] {
            let err = store.execute(sql, &[]).unwrap_err();
            assert_eq!(err.code, StoreErrorCode::Denied, "{sql}: {err:?}");
            assert!(err.message.contains("refused by the host's policy"), "{sql}: {}", err.message);
        }
        let err = store.execute_many("SELECT load_extension(?1)", &[vec![Value::from("/tmp/x.so")]]).unwrap_err();
        assert_eq!(err.code, StoreErrorCode::Denied, "{err:?}");
        assert_eq!(store.execute("SELECT ?1", &[]).unwrap_err().code, StoreErrorCode::Misuse, "parameter counts are checked");
        assert_eq!(store.execute("SELEKT 1", &[]).unwrap_err().code, StoreErrorCode::Invalid);
        store.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)", &[]).unwrap();
        assert_eq!(store.execute("INSERT INTO t VALUES (1), (2)", &[]).unwrap().changes, 2);
        assert_eq!(store.execute("SELECT x FROM t", &[]).unwrap().changes, 0, "a query reports no changes");
        let returning = store.execute("DELETE FROM t WHERE x = 1 RETURNING x", &[]).unwrap();
        assert_eq!((returning.rows.len(), returning.changes), (1, 1), "a write that returns rows reports its changes");
        assert_eq!(store.execute("INSERT INTO t VALUES (2)", &[]).unwrap_err().code, StoreErrorCode::Constraint);
        store.execute("VACUUM", &[]).unwrap();
    }

    #[test]
    fn transactions_and_leases_behave_as_the_component_sees_them() {
        let store = SqliteStore::memory();
        store.execute("CREATE TABLE t (x INTEGER)", &[]).unwrap();
        let tx = store.begin(TxMode::Immediate).unwrap();
        store.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
        assert_eq!(store.begin(TxMode::Deferred).err().map(|e| e.code), Some(StoreErrorCode::Misuse), "one transaction at a time");
        assert_eq!(store.execute("VACUUM", &[]).unwrap_err().code, StoreErrorCode::Misuse, "no VACUUM inside a transaction");
        drop(tx);
        assert_eq!(store.execute("SELECT COUNT(*) FROM t", &[]).unwrap().rows, [[Value::Integer(0)]], "dropped: rolled back");
        let tx = store.begin(TxMode::Deferred).unwrap();
        store.execute("INSERT INTO t VALUES (2)", &[]).unwrap();
        tx.commit().unwrap();
        assert_eq!(store.execute("SELECT COUNT(*) FROM t", &[]).unwrap().rows, [[Value::Integer(1)]], "committed");

        let lease = store.try_lock("sync:x").unwrap().expect("free");
        assert!(store.try_lock("sync:x").unwrap().is_none(), "held");
        assert!(SqliteStore::memory().try_lock("sync:x").unwrap().is_some(), "another database's leases are its own");
        drop(lease);
        assert!(store.try_lock("sync:x").unwrap().is_some(), "dropping releases");
    }
}
