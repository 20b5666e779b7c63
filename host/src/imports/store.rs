//! `d365meta:cache/store`: SQLite for the component.
//!
//! The host executes the component's statements with bound parameters and knows no table names.
//! Every connection gets WAL journaling, a busy timeout, foreign keys and a prepared-statement
//! cache. An authorizer refuses `ATTACH`/`DETACH`, extension loading, transaction statements (the
//! component uses `begin`, so the host always knows whether a transaction is open) and pragmas
//! beyond a read-only allow-list.

use crate::bindings::store_api as api;
use crate::runtime::State;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::component::Resource;

/// Pragmas the component may use, none of which changes a setting: the size figures `stats`
/// reports, the read-only checks SQLite itself runs inside `ALTER TABLE ... ADD COLUMN`, and the
/// change counter FTS5 reads. The flag says whether an argument is allowed (for the checks it
/// names a table, not a value).
const READ_ONLY_PRAGMAS: &[(&str, bool)] = &[
    ("page_count", false),
    ("page_size", false),
    ("freelist_count", false),
    ("data_version", false),
    ("quick_check", true),
    ("integrity_check", true),
];

pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The host side of a `transaction` resource.
#[derive(Clone, Copy)]
pub struct TransactionHandle {
    id: u64,
    /// Opened on the read-only connection (during a read export).
    on_reader: bool,
}

/// The host side of a `lease` resource: the lock is held while this lives.
pub struct LeaseHandle {
    _lock: Lock,
}

enum Lock {
    /// An OS file lock: released by the OS when the process ends, however it ends.
    File { _held: std::fs::File },
    /// For in-memory databases, which no other process can open.
    InProcess(String),
}

impl Drop for Lock {
    fn drop(&mut self) {
        if let Lock::InProcess(name) = self {
            in_process_locks().lock().unwrap_or_else(|e| e.into_inner()).remove(name);
        }
    }
}

fn in_process_locks() -> &'static std::sync::Mutex<std::collections::HashSet<String>> {
    static LOCKS: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<String>>> = std::sync::OnceLock::new();
    LOCKS.get_or_init(Default::default)
}

/// Whether a connection may write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    /// Opened read-only by SQLite itself: every write is refused, whatever the statement.
    ReadOnly,
}

pub struct Database {
    conn: Connection,
    access: Access,
    /// Where lock files live (beside the database); `None` for an in-memory database.
    lock_dir: Option<std::path::PathBuf>,
    /// Distinguishes in-memory databases in the in-process lock table.
    memory_id: u64,
    /// Set while the host itself runs `BEGIN`/`COMMIT`/`ROLLBACK`, which the authorizer otherwise refuses.
    host_statement: Arc<AtomicBool>,
    open_transaction: Option<u64>,
    next_transaction: u64,
}

impl Database {
    pub fn open(path: &Path, busy_timeout: Duration) -> anyhow::Result<Database> {
        Self::open_with(path, busy_timeout, Access::ReadWrite)
    }

    /// Opens the database at `path`. Read-only, a file the user may only read is read as it is;
    /// when SQLite cannot even set up its shared memory beside it (a directory the user may not
    /// write), the file is opened as immutable, which is what it is to this process.
    pub fn open_with(path: &Path, busy_timeout: Duration, access: Access) -> anyhow::Result<Database> {
        let cannot = |e: &dyn std::fmt::Display| anyhow::anyhow!("cannot open the cache database {}: {e}", path.display());
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
        let mut db = Self::configure(conn, busy_timeout, access).map_err(|e| {
            let read_only =
                e.downcast_ref::<rusqlite::Error>().and_then(rusqlite::Error::sqlite_error_code) == Some(rusqlite::ErrorCode::ReadOnly);
            if read_only { read_only_file(path) } else { cannot(&format!("{e:#}")) }
        })?;
        let mut dir = path.as_os_str().to_owned();
        dir.push(".locks");
        db.lock_dir = Some(dir.into());
        Ok(db)
    }

    pub fn open_in_memory() -> anyhow::Result<Database> {
        Self::configure(Connection::open_in_memory()?, DEFAULT_BUSY_TIMEOUT, Access::ReadWrite)
    }

    pub fn access(&self) -> Access {
        self.access
    }

    fn configure(mut conn: Connection, busy_timeout: Duration, access: Access) -> anyhow::Result<Database> {
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
            anyhow::bail!("foreign keys could not be enabled");
        }
        conn.set_prepared_statement_cache_capacity(256);
        let host_statement = Arc::new(AtomicBool::new(false));
        let flag = host_statement.clone();
        conn.authorizer(Some(move |ctx: AuthContext<'_>| authorize(&ctx, flag.load(Ordering::Relaxed))))?;
        Ok(Database {
            conn,
            access,
            lock_dir: None,
            memory_id: fastrand::u64(..),
            host_statement,
            open_transaction: None,
            next_transaction: 1,
        })
    }

    fn host_execute(&self, sql: &str) -> rusqlite::Result<()> {
        self.host_statement.store(true, Ordering::Relaxed);
        let result = self.conn.execute_batch(sql);
        self.host_statement.store(false, Ordering::Relaxed);
        result
    }

    pub fn execute(&mut self, sql: &str, params: Vec<api::Value>) -> Result<api::Rows, api::Error> {
        if sql.trim().trim_end_matches(';').trim().eq_ignore_ascii_case("vacuum") && params.is_empty() {
            return self.vacuum();
        }
        let mut stmt = self.conn.prepare_cached(sql).map_err(to_api_error)?;
        let expected = stmt.parameter_count();
        if expected != params.len() {
            return Err(misuse(format!("the statement takes {expected} parameter(s), {} given", params.len())));
        }
        let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let width = columns.len();
        let writes = !stmt.readonly();
        let mut rows = stmt.query(rusqlite::params_from_iter(params.into_iter().map(to_sql))).map_err(to_api_error)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(to_api_error)? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(from_sql(row.get_ref(i).map_err(to_api_error)?));
            }
            out.push(values);
        }
        drop(rows);
        let changes = if writes { self.conn.changes() } else { 0 };
        Ok(api::Rows { columns, rows: out, changes })
    }

    pub fn execute_many(&mut self, sql: &str, params: Vec<Vec<api::Value>>) -> Result<u64, api::Error> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(to_api_error)?;
        let expected = stmt.parameter_count();
        let mut total = 0u64;
        for (i, row) in params.into_iter().enumerate() {
            if row.len() != expected {
                return Err(misuse(format!("row {i}: the statement takes {expected} parameter(s), {} given", row.len())));
            }
            total += stmt.execute(rusqlite::params_from_iter(row.into_iter().map(to_sql))).map_err(|e| {
                let mut err = to_api_error(e);
                err.message = format!("row {i}: {}", err.message);
                err
            })? as u64;
        }
        Ok(total)
    }

    /// `VACUUM` runs its own transaction and statements on a temporary database, which the
    /// authorizer would refuse to the component; the host runs it on the component's behalf.
    fn vacuum(&mut self) -> Result<api::Rows, api::Error> {
        if self.open_transaction.is_some() {
            return Err(misuse("VACUUM cannot run inside a transaction".to_owned()));
        }
        self.host_execute("VACUUM").map_err(to_api_error)?;
        Ok(api::Rows { columns: vec![], rows: vec![], changes: 0 })
    }

    fn begin(&mut self, mode: api::TransactionMode) -> Result<u64, api::Error> {
        if self.open_transaction.is_some() {
            return Err(misuse("a transaction is already open".to_owned()));
        }
        let sql = match mode {
            api::TransactionMode::Deferred => "BEGIN DEFERRED",
            api::TransactionMode::Immediate => "BEGIN IMMEDIATE",
        };
        self.host_execute(sql).map_err(to_api_error)?;
        let id = self.next_transaction;
        self.next_transaction += 1;
        self.open_transaction = Some(id);
        Ok(id)
    }

    fn commit(&mut self, id: u64) -> Result<(), api::Error> {
        if self.open_transaction != Some(id) {
            return Err(misuse("this transaction has already ended".to_owned()));
        }
        // A failed COMMIT (busy) leaves the transaction open; dropping the handle rolls it back.
        self.host_execute("COMMIT").map_err(to_api_error)?;
        self.open_transaction = None;
        Ok(())
    }

    fn try_lock(&self, name: &str) -> Result<Option<Lock>, api::Error> {
        let Some(dir) = &self.lock_dir else {
            let key = format!("{:016x}:{name}", self.memory_id);
            let mut held = in_process_locks().lock().unwrap_or_else(|e| e.into_inner());
            // Built lazily: a `Lock` dropped here would release the entry it failed to take.
            return Ok(held.insert(key.clone()).then(|| Lock::InProcess(key)));
        };
        let io =
            |what: &str, e: std::io::Error| api::Error { code: api::ErrorCode::Other, message: format!("{what} {}: {e}", dir.display()) };
        std::fs::create_dir_all(dir).map_err(|e| io("cannot create the lock directory", e))?;
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(name.as_bytes());
        let file_name: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{file_name}.lock")))
            .map_err(|e| io("cannot open a lock file in", e))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Lock::File { _held: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(io("cannot lock a file in", e)),
        }
    }

    fn end(&mut self, id: u64) {
        if self.open_transaction == Some(id) {
            if let Err(e) = self.host_execute("ROLLBACK") {
                tracing::warn!("rolling back a transaction the component dropped: {e}");
            }
            self.open_transaction = None;
        }
    }
}

fn read_only_file(path: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot write the cache database {}: the file (or its directory) is read-only to this user; \
         commands that only read (entity, search, stats, ...) still work",
        path.display()
    )
}

/// `file:<path>?immutable=1`, with the path percent-encoded as SQLite's URI rules ask.
fn immutable_uri(path: &Path) -> String {
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

fn authorize(ctx: &AuthContext<'_>, host_statement: bool) -> Authorization {
    match ctx.action {
        // `VACUUM`, run by the host, attaches a private temporary database (no file) and detaches it.
        AuthAction::Attach { filename } if host_statement && filename.is_empty() => Authorization::Allow,
        AuthAction::Detach { database_name } if host_statement && database_name == "vacuum_db" => Authorization::Allow,
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => Authorization::Deny,
        AuthAction::Function { function_name } if function_name.eq_ignore_ascii_case("load_extension") => Authorization::Deny,
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } if !host_statement => Authorization::Deny,
        AuthAction::Pragma { pragma_name, pragma_value } if !host_statement => {
            let allowed = READ_ONLY_PRAGMAS
                .iter()
                .any(|(name, with_argument)| name.eq_ignore_ascii_case(pragma_name) && (*with_argument || pragma_value.is_none()));
            if allowed { Authorization::Allow } else { Authorization::Deny }
        }
        _ => Authorization::Allow,
    }
}

fn misuse(message: String) -> api::Error {
    api::Error { code: api::ErrorCode::Misuse, message }
}

fn to_api_error(e: rusqlite::Error) -> api::Error {
    use rusqlite::ErrorCode as C;
    // SQLite reports an authorizer refusal found while preparing as a plain SQL error.
    let refused = e.to_string().contains("not authorized");
    let code = match e.sqlite_error_code() {
        _ if refused => api::ErrorCode::Denied,
        Some(C::ConstraintViolation) => api::ErrorCode::Constraint,
        Some(C::DatabaseBusy | C::DatabaseLocked) => api::ErrorCode::Busy,
        Some(C::AuthorizationForStatementDenied | C::PermissionDenied) => api::ErrorCode::Denied,
        Some(C::DatabaseCorrupt | C::NotADatabase) => api::ErrorCode::Corrupt,
        Some(C::ReadOnly) => api::ErrorCode::ReadOnly,
        _ => match e {
            rusqlite::Error::SqlInputError { .. } | rusqlite::Error::InvalidColumnType(..) => api::ErrorCode::Invalid,
            rusqlite::Error::SqliteFailure(_, Some(ref m)) if m.contains("syntax error") || m.contains("no such") => {
                api::ErrorCode::Invalid
            }
            rusqlite::Error::InvalidParameterCount(..) | rusqlite::Error::MultipleStatement => api::ErrorCode::Misuse,
            _ => api::ErrorCode::Other,
        },
    };
    let message = match code {
        api::ErrorCode::Denied => format!("refused by the host's policy: {e}"),
        _ => e.to_string(),
    };
    api::Error { code, message }
}

fn to_sql(v: api::Value) -> SqlValue {
    match v {
        api::Value::Null => SqlValue::Null,
        api::Value::Integer(i) => SqlValue::Integer(i),
        api::Value::Real(f) => SqlValue::Real(f),
        api::Value::Text(s) => SqlValue::Text(s),
        api::Value::Blob(b) => SqlValue::Blob(b),
    }
}

fn from_sql(v: ValueRef<'_>) -> api::Value {
    match v {
        ValueRef::Null => api::Value::Null,
        ValueRef::Integer(i) => api::Value::Integer(i),
        ValueRef::Real(f) => api::Value::Real(f),
        ValueRef::Text(t) => api::Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => api::Value::Blob(b.to_vec()),
    }
}

impl api::Host for State {
    fn execute(&mut self, sql: String, params: Vec<api::Value>) -> wasmtime::Result<Result<api::Rows, api::Error>> {
        let reading = self.reading;
        let result = self.database(reading).execute(&sql, params);
        self.returning_to_guest();
        Ok(result)
    }

    fn execute_many(&mut self, sql: String, params: Vec<Vec<api::Value>>) -> wasmtime::Result<Result<u64, api::Error>> {
        let reading = self.reading;
        let result = self.database(reading).execute_many(&sql, params);
        self.returning_to_guest();
        Ok(result)
    }

    fn try_lock(&mut self, name: String) -> wasmtime::Result<Result<Option<Resource<LeaseHandle>>, api::Error>> {
        let result = match self.db.try_lock(&name) {
            Ok(Some(lock)) => Ok(Some(self.table.push(LeaseHandle { _lock: lock })?)),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        self.returning_to_guest();
        Ok(result)
    }

    fn begin(&mut self, mode: api::TransactionMode) -> wasmtime::Result<Result<Resource<TransactionHandle>, api::Error>> {
        let on_reader = self.reading && self.reader.is_some();
        let result = match self.database(on_reader).begin(mode) {
            Ok(id) => Ok(self.table.push(TransactionHandle { id, on_reader })?),
            Err(e) => Err(e),
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
        let result = self.database(on_reader).commit(id);
        self.returning_to_guest();
        Ok(result)
    }

    fn drop(&mut self, handle: Resource<TransactionHandle>) -> wasmtime::Result<()> {
        let TransactionHandle { id, on_reader } = self.table.delete(handle)?;
        self.database(on_reader).end(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> api::Value {
        api::Value::Text(s.to_owned())
    }

    #[test]
    fn attach_extensions_transactions_and_pragmas_are_refused() {
        let mut db = Database::open_in_memory().unwrap();
        for sql in [
            "ATTACH DATABASE '/tmp/other.db' AS other",
            "ATTACH DATABASE 'file:/tmp/other.db' AS other",
            "DETACH DATABASE main",
            "SELECT load_extension('/tmp/x.so')",
            "BEGIN",
            "COMMIT",
            "SAVEPOINT s",
            "PRAGMA foreign_keys = OFF",
            "PRAGMA journal_mode = DELETE",
            "PRAGMA writable_schema = 1",
            "PRAGMA page_size = 1024",
        ] {
            let err = db.execute(sql, vec![]).unwrap_err();
            assert_eq!(err.code, api::ErrorCode::Denied, "{sql}: {err:?}");
            assert!(err.message.contains("refused by the host's policy"), "{sql}: {}", err.message);
        }
        let rows = db.execute("PRAGMA page_count", vec![]).unwrap();
        assert_eq!(rows.rows.len(), 1);
        // VACUUM works: the temporary database it attaches reaches no file.
        db.execute("VACUUM", vec![]).unwrap();
        // Foreign keys are enforced on the component's connection.
        db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)", vec![]).unwrap();
        db.execute("CREATE TABLE child (parent INTEGER REFERENCES parent(id))", vec![]).unwrap();
        let orphan = db.execute("INSERT INTO child VALUES (42)", vec![]).unwrap_err();
        assert_eq!(orphan.code, api::ErrorCode::Constraint, "{orphan:?}");
    }

    #[test]
    fn transactions_roll_back_unless_committed() {
        let mut db = Database::open_in_memory().unwrap();
        db.execute("CREATE TABLE t (x TEXT)", vec![]).unwrap();
        let tx = db.begin(api::TransactionMode::Immediate).unwrap();
        assert_eq!(db.execute("INSERT INTO t VALUES (?1)", vec![text("gone")]).unwrap().changes, 1);
        assert_eq!(db.begin(api::TransactionMode::Deferred).unwrap_err().code, api::ErrorCode::Misuse);
        db.end(tx);
        let tx = db.begin(api::TransactionMode::Immediate).unwrap();
        assert_eq!(db.execute_many("INSERT INTO t VALUES (?1)", vec![vec![text("a")], vec![text("b")]]).unwrap(), 2);
        db.commit(tx).unwrap();
        assert_eq!(db.commit(tx).unwrap_err().code, api::ErrorCode::Misuse);
        db.end(tx); // a committed transaction's handle dropped later changes nothing
        let rows = db.execute("SELECT x FROM t ORDER BY x", vec![]).unwrap();
        let texts: Vec<String> = rows
            .rows
            .iter()
            .map(|r| match &r[0] {
                api::Value::Text(t) => t.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(texts, ["a", "b"]);
    }

    #[test]
    fn leases_exclude_each_other_until_dropped() {
        let dir = std::env::temp_dir().join(format!("d365meta-lease-{}-{:08x}", std::process::id(), fastrand::u32(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let a = Database::open(&dir.join("c.db"), DEFAULT_BUSY_TIMEOUT).unwrap();
        let b = Database::open(&dir.join("c.db"), DEFAULT_BUSY_TIMEOUT).unwrap();
        let held = a.try_lock("sync:x").unwrap().expect("free");
        assert!(b.try_lock("sync:x").unwrap().is_none(), "a second connection must not take a held lease");
        assert!(b.try_lock("sync:y").unwrap().is_some(), "other names are independent");
        drop(held);
        assert!(b.try_lock("sync:x").unwrap().is_some(), "dropping releases");
        let m1 = Database::open_in_memory().unwrap();
        let m2 = Database::open_in_memory().unwrap();
        let l1 = m1.try_lock("n").unwrap().expect("free");
        assert!(m1.try_lock("n").unwrap().is_none());
        assert!(m2.try_lock("n").unwrap().is_some(), "separate in-memory databases do not share locks");
        drop(l1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn errors_are_classified_and_parameter_counts_checked() {
        let mut db = Database::open_in_memory().unwrap();
        db.execute("CREATE TABLE t (x TEXT PRIMARY KEY)", vec![]).unwrap();
        db.execute("INSERT INTO t VALUES ('a')", vec![]).unwrap();
        assert_eq!(db.execute("INSERT INTO t VALUES ('a')", vec![]).unwrap_err().code, api::ErrorCode::Constraint);
        assert_eq!(db.execute("SELEKT 1", vec![]).unwrap_err().code, api::ErrorCode::Invalid);
        assert_eq!(db.execute("SELECT ?1", vec![]).unwrap_err().code, api::ErrorCode::Misuse);
        let err = db.execute_many("INSERT INTO t VALUES (?1)", vec![vec![text("b")], vec![text("a")]]).unwrap_err();
        assert_eq!(err.code, api::ErrorCode::Constraint);
        assert!(err.message.starts_with("row 1:"), "{}", err.message);
    }
}
