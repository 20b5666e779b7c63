//! SQLite for d365meta: the one backend behind the component's `store` import (in the host) and
//! behind the core's storage port when the core runs natively (its unit tests, the benchmarks'
//! lower bound).
//!
//! The caller owns the schema and every statement; this crate executes what it is given with
//! bound parameters, knows no table names, and guarantees the following for every [`Database`]:
//!
//! - **Configuration.** WAL journaling (for a connection that may write), `synchronous = NORMAL`,
//!   foreign keys on (opening fails when they cannot be enabled), a busy timeout, and a cache of
//!   256 prepared statements.
//! - **Policy.** An authorizer refuses `ATTACH`/`DETACH`, `load_extension`, transaction statements
//!   and pragmas outside a read-only allow-list, with [`ErrorCode::Denied`] (see below).
//! - **Transactions by handle.** [`Database::begin`] opens the only transaction there can be and
//!   answers a [`TransactionId`]; [`Database::commit`] ends it durably, [`Database::end`] rolls it
//!   back if it is still open. Since SQL cannot begin or end a transaction, the connection always
//!   knows whether one is open.
//! - **Statements.** [`Database::execute`] checks that the parameters given are exactly the ones
//!   the statement takes (SQLite would bind the missing ones as `NULL`), and reports `changes`
//!   only for statements that write, so a query never repeats the count of an earlier write.
//!   `VACUUM` is run on the caller's behalf, outside a transaction.
//! - **Leases.** [`Database::try_lock`] takes an advisory lock scoped to the database, held by the
//!   [`Lease`] it returns: an OS file lock beside the database file (released by the OS when the
//!   process ends, however it ends), or an in-process one for an in-memory database.
//! - **Errors.** Every failure is reported as an [`Error`] with an [`ErrorCode`] that mirrors the
//!   WIT `store.error-code`.
//! - **Ownership.** [`Database::open_claimed`] opens only a file that is the caller's by its
//!   [`Claim`] (SQLite's `application_id`), and refuses any other with [`ErrorCode::Foreign`]
//!   before anything in it is changed; an empty file is marked.
//! - **Read-only opening.** [`Access::ReadOnly`] opens the file read-only in SQLite itself, so every
//!   write is refused whatever the statement; a file in a directory this user may not write is
//!   opened as immutable.
//!
//! # What is refused, and why
//!
//! The SQL comes from the component, which runs sandboxed: it must reach its own database and
//! nothing else, and must not be able to undo what the host guarantees about that database.
//!
//! - **`ATTACH` and `DETACH`.** `ATTACH` opens (or creates) any file this process may reach, to
//!   read or write it: it would let SQL escape the one database it was given. The only attachment
//!   allowed is the private temporary database (no file) of a `VACUUM` run by this crate.
//! - **`load_extension`.** It loads and runs native code from a file: everything the sandbox
//!   takes away. (SQLite keeps it disabled too; the authorizer does not depend on that.)
//! - **Transaction statements** (`BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`, `RELEASE`).
//!   Transactions are opened and ended through [`Database::begin`], [`Database::commit`] and
//!   [`Database::end`], so that the connection knows at any time whether one is open: to roll back
//!   one whose handle was dropped, to refuse a second one and `VACUUM` inside one. A `COMMIT` in SQL
//!   would end a transaction a handle still stands for; a `BEGIN` in SQL could hold the write lock
//!   with no handle to release it.
//! - **Pragmas that change a setting** (anything outside `page_count`, `page_size`,
//!   `freelist_count`, `data_version`, `quick_check(...)`, `integrity_check(...)`). Pragmas
//!   undo the configuration above (`foreign_keys = OFF`, `journal_mode`, `synchronous`,
//!   `busy_timeout`) or endanger the file itself (`writable_schema`, `page_size = ...`).
//! - **`VACUUM` inside a transaction** is refused as misuse: SQLite cannot run it there.
//!
//! A refusal is reported as [`ErrorCode::Denied`], its message starting "refused by the host's
//! policy".

mod claim;
mod database;
mod error;
mod lease;
mod policy;

#[cfg(test)]
mod tests;

pub use claim::Claim;
pub use database::{Access, Database, TransactionId, TransactionMode};
pub use error::{Error, ErrorCode};
pub use lease::Lease;

use std::time::Duration;

/// How long a statement waits for a lock another connection holds before failing with
/// [`ErrorCode::Busy`].
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// One SQLite value, as bound to a parameter or read from a column.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// The result of one statement.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rows {
    /// Column names, in select order (empty for statements that return nothing).
    pub columns: Vec<String>,
    /// Each row's values, in column order.
    pub rows: Vec<Vec<Value>>,
    /// Rows inserted, updated or deleted by the statement; 0 for statements that cannot write.
    pub changes: u64,
}
