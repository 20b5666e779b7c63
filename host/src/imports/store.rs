//! `d365meta:cache/store`: SQLite for the component.
//!
//! The SQLite backend, with its policy (WAL, busy timeout, foreign keys, statement cache, and an
//! authorizer refusing `ATTACH`/`DETACH`, extension loading, transaction statements and pragmas
//! beyond a read-only allow-list), is the `d365meta-sqlite` crate, shared with the core when it
//! runs natively. This module maps the WIT types to the crate's and the component's resource
//! handles to its transactions and leases.

use crate::bindings::store_api as api;
use crate::runtime::State;
use d365meta_sqlite as sqlite;
use wasmtime::component::Resource;

pub use d365meta_sqlite::{Access, Claim, DEFAULT_BUSY_TIMEOUT, Database};

/// The host side of a `transaction` resource.
#[derive(Clone, Copy)]
pub struct TransactionHandle {
    id: sqlite::TransactionId,
    /// Opened on the read-only connection (during a read export).
    on_reader: bool,
}

/// The host side of a `lease` resource: the lock is held while this lives.
pub struct LeaseHandle {
    _lease: sqlite::Lease,
}

fn to_sqlite(v: api::Value) -> sqlite::Value {
    match v {
        api::Value::Null => sqlite::Value::Null,
        api::Value::Integer(i) => sqlite::Value::Integer(i),
        api::Value::Real(f) => sqlite::Value::Real(f),
        api::Value::Text(s) => sqlite::Value::Text(s),
        api::Value::Blob(b) => sqlite::Value::Blob(b),
    }
}

fn from_sqlite(v: sqlite::Value) -> api::Value {
    match v {
        sqlite::Value::Null => api::Value::Null,
        sqlite::Value::Integer(i) => api::Value::Integer(i),
        sqlite::Value::Real(f) => api::Value::Real(f),
        sqlite::Value::Text(s) => api::Value::Text(s),
        sqlite::Value::Blob(b) => api::Value::Blob(b),
    }
}

fn from_sqlite_rows(rows: sqlite::Rows) -> api::Rows {
    api::Rows {
        columns: rows.columns,
        rows: rows.rows.into_iter().map(|r| r.into_iter().map(from_sqlite).collect()).collect(),
        changes: rows.changes,
    }
}

fn from_sqlite_error(e: sqlite::Error) -> api::Error {
    let code = match e.code {
        sqlite::ErrorCode::Constraint => api::ErrorCode::Constraint,
        sqlite::ErrorCode::Busy => api::ErrorCode::Busy,
        sqlite::ErrorCode::Denied => api::ErrorCode::Denied,
        sqlite::ErrorCode::Corrupt => api::ErrorCode::Corrupt,
        sqlite::ErrorCode::ReadOnly => api::ErrorCode::ReadOnly,
        sqlite::ErrorCode::Invalid => api::ErrorCode::Invalid,
        sqlite::ErrorCode::Misuse => api::ErrorCode::Misuse,
        sqlite::ErrorCode::Foreign => api::ErrorCode::Other,
        sqlite::ErrorCode::Other => api::ErrorCode::Other,
    };
    api::Error { code, message: e.message }
}

impl api::Host for State {
    fn execute(&mut self, sql: String, params: Vec<api::Value>) -> wasmtime::Result<Result<api::Rows, api::Error>> {
        let params: Vec<sqlite::Value> = params.into_iter().map(to_sqlite).collect();
        let reading = self.reading;
        let result = self.database(reading).execute(&sql, &params).map(from_sqlite_rows).map_err(from_sqlite_error);
        self.returning_to_guest();
        Ok(result)
    }

    fn execute_many(&mut self, sql: String, params: Vec<Vec<api::Value>>) -> wasmtime::Result<Result<u64, api::Error>> {
        let params: Vec<Vec<sqlite::Value>> = params.into_iter().map(|r| r.into_iter().map(to_sqlite).collect()).collect();
        let reading = self.reading;
        let result = self.database(reading).execute_many(&sql, &params).map_err(from_sqlite_error);
        self.returning_to_guest();
        Ok(result)
    }

    fn try_lock(&mut self, name: String) -> wasmtime::Result<Result<Option<Resource<LeaseHandle>>, api::Error>> {
        let result = match self.db.try_lock(&name) {
            Ok(Some(lease)) => Ok(Some(self.table.push(LeaseHandle { _lease: lease })?)),
            Ok(None) => Ok(None),
            Err(e) => Err(from_sqlite_error(e)),
        };
        self.returning_to_guest();
        Ok(result)
    }

    fn begin(&mut self, mode: api::TransactionMode) -> wasmtime::Result<Result<Resource<TransactionHandle>, api::Error>> {
        let mode = match mode {
            api::TransactionMode::Deferred => sqlite::TransactionMode::Deferred,
            api::TransactionMode::Immediate => sqlite::TransactionMode::Immediate,
        };
        let on_reader = self.reading && self.reader.is_some();
        let result = match self.database(on_reader).begin(mode) {
            Ok(id) => Ok(self.table.push(TransactionHandle { id, on_reader })?),
            Err(e) => Err(from_sqlite_error(e)),
        };
        self.returning_to_guest();
        Ok(result)
    }
}

impl api::HostLease for State {
    fn drop(&mut self, handle: Resource<LeaseHandle>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        Ok(())
    }
}

impl api::HostTransaction for State {
    fn commit(&mut self, handle: Resource<TransactionHandle>) -> wasmtime::Result<Result<(), api::Error>> {
        let TransactionHandle { id, on_reader } = *self.table.get(&handle)?;
        let result = self.database(on_reader).commit(id).map_err(from_sqlite_error);
        self.returning_to_guest();
        Ok(result)
    }

    fn drop(&mut self, handle: Resource<TransactionHandle>) -> wasmtime::Result<()> {
        let TransactionHandle { id, on_reader } = self.table.delete(handle)?;
        self.database(on_reader).end(id);
        Ok(())
    }
}
