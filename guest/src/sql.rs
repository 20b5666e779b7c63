//! Small helpers over the [`Store`] port: parameter lists, typed column access, transactions.

use crate::error::{Error, Result};
use crate::ports::{Rows, Store, TxMode, Value};

/// The parameters of one statement, from values of mixed types: `&params![a, b]`.
#[macro_export]
macro_rules! params {
    ($($v:expr),+ $(,)?) => { [$($crate::ports::Value::from($v)),+] };
}

/// One row of parameters to keep or hand on (to `execute_many`, a [`Batch`]).
#[macro_export]
macro_rules! row {
    ($($v:expr),+ $(,)?) => { vec![$($crate::ports::Value::from($v)),+] };
}

/// Typed access to one row of a result, by column position.
pub struct Row<'a>(pub &'a [Value]);

impl Row<'_> {
    fn get(&self, i: usize) -> Result<&Value> {
        self.0.get(i).ok_or_else(|| Error::internal(format!("column {i} missing from result row")))
    }
    pub fn text(&self, i: usize) -> Result<String> {
        match self.get(i)? {
            Value::Text(s) => Ok(s.clone()),
            other => Err(Error::internal(format!("column {i}: expected text, found {other:?}"))),
        }
    }
    pub fn opt_text(&self, i: usize) -> Result<Option<String>> {
        match self.get(i)? {
            Value::Null => Ok(None),
            Value::Text(s) => Ok(Some(s.clone())),
            other => Err(Error::internal(format!("column {i}: expected text or null, found {other:?}"))),
        }
    }
    pub fn int(&self, i: usize) -> Result<i64> {
        match self.get(i)? {
            Value::Integer(v) => Ok(*v),
            other => Err(Error::internal(format!("column {i}: expected integer, found {other:?}"))),
        }
    }
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        match self.get(i)? {
            Value::Null => Ok(None),
            Value::Integer(v) => Ok(Some(*v)),
            other => Err(Error::internal(format!("column {i}: expected integer or null, found {other:?}"))),
        }
    }
    pub fn opt_blob(&self, i: usize) -> Result<Option<Vec<u8>>> {
        match self.get(i)? {
            Value::Null => Ok(None),
            Value::Blob(v) => Ok(Some(v.clone())),
            other => Err(Error::internal(format!("column {i}: expected a blob or null, found {other:?}"))),
        }
    }
    pub fn bool(&self, i: usize) -> Result<bool> {
        Ok(self.int(i)? != 0)
    }
}

/// Runs a statement and returns all its rows.
pub fn query(store: &dyn Store, sql: &str, params: &[Value]) -> Result<Rows> {
    Ok(store.execute(sql, params)?)
}

/// Runs a statement for its effect and returns the number of rows it changed.
pub fn exec(store: &dyn Store, sql: &str, params: &[Value]) -> Result<u64> {
    Ok(store.execute(sql, params)?.changes)
}

/// Strings as one parameter, a JSON array a statement reads with `json_each`: one statement text
/// whatever their number, so the store prepares it once.
pub fn json_strings(values: &[&str]) -> Result<Value> {
    serde_json::to_string(values).map(Value::from).map_err(|e| Error::internal(format!("strings as a JSON array: {e}")))
}

/// Integers as one parameter, a JSON array a statement reads with `json_each` (see [`json_strings`]).
pub fn json_integers(values: &[i64]) -> Value {
    Value::from(format!("[{}]", values.iter().map(i64::to_string).collect::<Vec<_>>().join(",")))
}

/// Runs a query and maps each row.
pub fn query_map<T>(store: &dyn Store, sql: &str, params: &[Value], mut f: impl FnMut(Row<'_>) -> Result<T>) -> Result<Vec<T>> {
    let rows = store.execute(sql, params)?;
    rows.rows.iter().map(|r| f(Row(r))).collect()
}

/// Runs a query expected to return at most one row.
pub fn query_opt<T>(store: &dyn Store, sql: &str, params: &[Value], f: impl FnOnce(Row<'_>) -> Result<T>) -> Result<Option<T>> {
    let rows = store.execute(sql, params)?;
    match rows.rows.first() {
        Some(r) => f(Row(r)).map(Some),
        None => Ok(None),
    }
}

/// Rows for one statement, handed to the store in bounded batches: a full environment has over a
/// hundred thousand property rows, and holding them all at once (twice, across the boundary) costs
/// memory for nothing. Batches are bounded in bytes too: what one call hands the host is limited
/// (wasmtime's per-call allowance, 128 MiB by default), and a batch must stay well inside it
/// whatever the rows hold.
pub struct Batch<'s> {
    store: &'s dyn Store,
    sql: &'s str,
    rows: Vec<Vec<Value>>,
    bytes: usize,
}

impl<'s> Batch<'s> {
    const SIZE: usize = 4096;
    const BYTES: usize = 8 << 20;

    pub fn new(store: &'s dyn Store, sql: &'s str) -> Self {
        Batch { store, sql, rows: Vec::new(), bytes: 0 }
    }

    pub fn push(&mut self, row: Vec<Value>) -> Result<()> {
        self.bytes += row.iter().map(value_bytes).sum::<usize>();
        self.rows.push(row);
        if self.rows.len() >= Self::SIZE || self.bytes >= Self::BYTES { self.flush() } else { Ok(()) }
    }

    /// Pushes every row of `rows`.
    pub fn extend(&mut self, rows: impl IntoIterator<Item = Vec<Value>>) -> Result<()> {
        rows.into_iter().try_for_each(|row| self.push(row))
    }

    fn flush(&mut self) -> Result<()> {
        if !self.rows.is_empty() {
            self.store.execute_many(self.sql, &self.rows)?;
            self.rows.clear();
            self.bytes = 0;
        }
        Ok(())
    }

    /// Sends what is left; the batch must be finished for its rows to be written.
    pub fn finish(mut self) -> Result<()> {
        self.flush()
    }
}

/// About what a value costs to hand across the boundary.
fn value_bytes(v: &Value) -> usize {
    match v {
        Value::Text(s) => s.len() + 8,
        Value::Blob(b) => b.len() + 8,
        _ => 16,
    }
}

/// Runs `sql` once for each of `rows`, in bounded batches (see [`Batch`]).
pub fn execute_all(store: &dyn Store, sql: &str, rows: impl IntoIterator<Item = Vec<Value>>) -> Result<()> {
    let mut batch = Batch::new(store, sql);
    batch.extend(rows)?;
    batch.finish()
}

/// Runs `body` inside a transaction, committing only if it succeeds.
pub fn in_transaction<T>(store: &dyn Store, mode: TxMode, body: impl FnOnce() -> Result<T>) -> Result<T> {
    let tx = store.begin(mode)?;
    let value = body()?;
    tx.commit()?;
    Ok(value)
}
