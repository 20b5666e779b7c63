//! One connection under the policy: opening, statements, transactions, leases.

use crate::lease::{self, Lease};
use crate::{Claim, DEFAULT_BUSY_TIMEOUT, Error, ErrorCode, Rows, Value, policy};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Whether a connection may write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    /// Opened read-only by SQLite itself: every write is refused, whatever the statement.
    ReadOnly,
}

/// How [`Database::begin`] takes locks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransactionMode {
    /// Takes the write lock at the first write (use for reads that must see one snapshot).
    Deferred,
    /// Takes the write lock at once, waiting up to the busy timeout.
    Immediate,
}

/// Names one transaction opened by [`Database::begin`]; ids are not reused, so a stale one is
/// recognised as such.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TransactionId(u64);

/// One SQLite connection under the policy described in the crate documentation.
pub struct Database {
    conn: Connection,
    access: Access,
    /// Where lock files live (beside the database); `None` for an in-memory database.
    lock_dir: Option<PathBuf>,
    /// Distinguishes in-memory databases in the in-process lock table.
    memory_id: u64,
    /// Set while this crate itself runs `BEGIN`/`COMMIT`/`ROLLBACK` or `VACUUM`, which the
    /// authorizer otherwise refuses.
    host_statement: Arc<AtomicBool>,
    open_transaction: Option<TransactionId>,
    next_transaction: u64,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.conn.path())
            .field("access", &self.access)
            .field("open_transaction", &self.open_transaction)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Opens (creating if needed) the database at `path` for reading and writing.
    pub fn open(path: &Path, busy_timeout: Duration) -> Result<Database, Error> {
        Self::open_with(path, busy_timeout, Access::ReadWrite)
    }

    /// Opens the database at `path`. Read-only, a file the user may only read is read as it is;
    /// when SQLite cannot even set up its shared memory beside it (a directory the user may not
    /// write), the file is opened as immutable, which is what it is to this process.
    pub fn open_with(path: &Path, busy_timeout: Duration, access: Access) -> Result<Database, Error> {
        Self::open_inner(path, busy_timeout, access, None)
    }

    /// Opens the database at `path` as [`Database::open_with`] does, if it is the caller's by
    /// `claim`: another program's file is refused ([`ErrorCode::Foreign`]) with nothing in it
    /// changed, and an unmarked one of the caller's (or an empty one) is marked when `access` writes.
    pub fn open_claimed(path: &Path, busy_timeout: Duration, access: Access, claim: &Claim) -> Result<Database, Error> {
        Self::open_inner(path, busy_timeout, access, Some(claim))
    }

    fn open_inner(path: &Path, busy_timeout: Duration, access: Access, claim: Option<&Claim>) -> Result<Database, Error> {
        let found = claim.map(|c| c.inspect(path)).transpose()?;
        let cannot = |e: &rusqlite::Error| Error::new(Error::code_of(e), format!("cannot open the cache database {}: {e}", path.display()));
        let conn = match access {
            Access::ReadWrite => Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )
            .map_err(|e| cannot(&e))?,
            Access::ReadOnly => {
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
                let conn = Connection::open_with_flags(path, flags).map_err(|e| cannot(&e))?;
                match conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)) {
                    Ok(_) => conn,
                    // No shared memory for the write-ahead log can be made beside the file: it is
                    // read as it is, which is all this process can do with it anyway.
                    Err(e) if matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly)) => {
                        tracing::info!("opening {} as immutable: {e}", path.display());
                        Connection::open_with_flags(immutable_uri(path), flags).map_err(|e| cannot(&e))?
                    }
                    Err(e) => return Err(cannot(&e)),
                }
            }
        };
        if let Some(claim) = claim
            && found == Some(crate::claim::Found::Unmarked)
            && access == Access::ReadWrite
        {
            claim.mark(&conn).map_err(|e| cannot(&e))?;
        }
        let mut db = Self::configure(conn, busy_timeout, access).map_err(|e| match e {
            Setup::Sqlite(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly) => read_only_file(path),
            Setup::Sqlite(e) => cannot(&e),
            Setup::NoForeignKeys => {
                Error::new(ErrorCode::Other, format!("cannot open the cache database {}: {}", path.display(), Setup::NoForeignKeys))
            }
        })?;
        let mut dir = path.as_os_str().to_owned();
        dir.push(".locks");
        db.lock_dir = Some(dir.into());
        Ok(db)
    }

    /// A private in-memory database (leases on it are in-process).
    pub fn open_in_memory() -> Result<Database, Error> {
        let conn = Connection::open_in_memory()?;
        Self::configure(conn, DEFAULT_BUSY_TIMEOUT, Access::ReadWrite).map_err(|e| match e {
            Setup::Sqlite(e) => Error::from(e),
            Setup::NoForeignKeys => Error::new(ErrorCode::Other, Setup::NoForeignKeys.to_string()),
        })
    }

    /// Whether this connection may write.
    pub fn access(&self) -> Access {
        self.access
    }

    fn configure(mut conn: Connection, busy_timeout: Duration, access: Access) -> Result<Database, Setup> {
        conn.busy_timeout(busy_timeout)?;
        if access == Access::ReadWrite {
            // `journal_mode` answers with a row, so it is queried rather than executed.
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            if mode != "wal" && mode != "memory" {
                tracing::warn!("the cache database is in {mode} journal mode, not WAL: readers may wait for writers");
            }
        }
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
        let fk: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
        if fk != 1 {
            return Err(Setup::NoForeignKeys);
        }
        conn.set_prepared_statement_cache_capacity(256);
        let host_statement = Arc::new(AtomicBool::new(false));
        let flag = host_statement.clone();
        conn.authorizer(Some(move |ctx: rusqlite::hooks::AuthContext<'_>| policy::authorize(&ctx, flag.load(Ordering::Relaxed))))?;
        static MEMORY_IDS: AtomicU64 = AtomicU64::new(1);
        Ok(Database {
            conn,
            access,
            lock_dir: None,
            memory_id: MEMORY_IDS.fetch_add(1, Ordering::Relaxed),
            host_statement,
            open_transaction: None,
            next_transaction: 1,
        })
    }

    /// Runs `sql`, which the authorizer would refuse to a caller, on the caller's behalf.
    fn host_execute(&self, sql: &str) -> rusqlite::Result<()> {
        self.host_statement.store(true, Ordering::Relaxed);
        let result = self.conn.execute_batch(sql);
        self.host_statement.store(false, Ordering::Relaxed);
        result
    }

    /// Runs one statement with positional parameters (`?1`, `?2`, ... or `?`) and returns its rows.
    /// The parameters must be exactly as many as the statement takes ([`ErrorCode::Misuse`]
    /// otherwise). `changes` is SQLite's count of rows the statement inserted, updated or deleted
    /// for a statement that writes, 0 for one that cannot (for a write that is not an `INSERT`,
    /// `UPDATE` or `DELETE`, such as `CREATE TABLE`, SQLite's count is still the last one of
    /// those). `VACUUM` (no parameters) is run on the caller's behalf, outside a transaction only.
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<Rows, Error> {
        if sql.trim().trim_end_matches(';').trim().eq_ignore_ascii_case("vacuum") && params.is_empty() {
            return self.vacuum();
        }
        let mut stmt = self.conn.prepare_cached(sql)?;
        let expected = stmt.parameter_count();
        if expected != params.len() {
            return Err(Error::misuse(format!("the statement takes {expected} parameter(s), {} given", params.len())));
        }
        let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let width = columns.len();
        let writes = !stmt.readonly();
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(from_sql(row.get_ref(i)?));
            }
            out.push(values);
        }
        drop(rows);
        let changes = if writes { self.conn.changes() } else { 0 };
        Ok(Rows { columns, rows: out, changes })
    }

    /// Runs one statement once for each row of parameters, prepared once, and returns the total
    /// number of rows changed. Stops at the first failing row, whose index the error message
    /// names; run it in a transaction to make it all-or-nothing.
    pub fn execute_many(&mut self, sql: &str, params: &[Vec<Value>]) -> Result<u64, Error> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let expected = stmt.parameter_count();
        let mut total = 0u64;
        for (i, row) in params.iter().enumerate() {
            if row.len() != expected {
                return Err(Error::misuse(format!("row {i}: the statement takes {expected} parameter(s), {} given", row.len())));
            }
            total += stmt.execute(rusqlite::params_from_iter(row)).map_err(|e| {
                let mut err = Error::from(e);
                err.message = format!("row {i}: {}", err.message);
                err
            })? as u64;
        }
        Ok(total)
    }

    /// `VACUUM` runs its own transaction and statements on a temporary database, which the
    /// authorizer refuses to callers; it is run on the caller's behalf.
    fn vacuum(&mut self) -> Result<Rows, Error> {
        if self.open_transaction.is_some() {
            return Err(Error::misuse("VACUUM cannot run inside a transaction"));
        }
        self.host_execute("VACUUM")?;
        Ok(Rows::default())
    }

    /// Opens a transaction: the only one, until it is committed or ended ([`ErrorCode::Misuse`]
    /// for a second one).
    pub fn begin(&mut self, mode: TransactionMode) -> Result<TransactionId, Error> {
        if self.open_transaction.is_some() {
            return Err(Error::misuse("a transaction is already open"));
        }
        let sql = match mode {
            TransactionMode::Deferred => "BEGIN DEFERRED",
            TransactionMode::Immediate => "BEGIN IMMEDIATE",
        };
        self.host_execute(sql)?;
        let id = TransactionId(self.next_transaction);
        self.next_transaction += 1;
        self.open_transaction = Some(id);
        Ok(id)
    }

    /// Makes everything done in transaction `id` durable and visible to other connections.
    /// [`ErrorCode::Misuse`] when `id` is not the open transaction. A failed `COMMIT` (busy) leaves
    /// the transaction open: [`Database::end`] then rolls it back.
    pub fn commit(&mut self, id: TransactionId) -> Result<(), Error> {
        if self.open_transaction != Some(id) {
            return Err(Error::misuse("this transaction has already ended"));
        }
        self.host_execute("COMMIT")?;
        self.open_transaction = None;
        Ok(())
    }

    /// Ends transaction `id`: rolls it back if it is still open, does nothing if it has already
    /// ended (committed, or ended before).
    pub fn end(&mut self, id: TransactionId) {
        if self.open_transaction == Some(id) {
            if let Err(e) = self.host_execute("ROLLBACK") {
                tracing::warn!("rolling back a transaction the component dropped: {e}");
            }
            self.open_transaction = None;
        }
    }

    /// Takes the advisory lock `name` if no one else (another process, or another connection in
    /// this one) holds it; `None` if someone does. Never waits. The lock is held until the
    /// [`Lease`] is dropped.
    pub fn try_lock(&self, name: &str) -> Result<Option<Lease>, Error> {
        match &self.lock_dir {
            Some(dir) => lease::try_lock_file(dir, name),
            None => Ok(lease::try_lock_in_process(self.memory_id, name)),
        }
    }
}

/// Why configuring a new connection failed.
enum Setup {
    Sqlite(rusqlite::Error),
    NoForeignKeys,
}

impl From<rusqlite::Error> for Setup {
    fn from(e: rusqlite::Error) -> Setup {
        Setup::Sqlite(e)
    }
}

impl std::fmt::Display for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Setup::Sqlite(e) => e.fmt(f),
            Setup::NoForeignKeys => f.write_str("foreign keys could not be enabled"),
        }
    }
}

fn read_only_file(path: &Path) -> Error {
    Error::new(
        ErrorCode::ReadOnly,
        format!(
            "cannot write the cache database {}: the file (or its directory) is read-only to this user; \
             commands that only read (entity, search, stats, ...) still work",
            path.display()
        ),
    )
}

/// `file:<path>?immutable=1`, with the path percent-encoded as SQLite's URI rules ask.
pub(crate) fn immutable_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            uri.push(b as char);
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    uri
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn from_sql(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}
