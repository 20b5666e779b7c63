use crate::database::immutable_uri;
use crate::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// A fresh directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("d365meta-sqlite-{name}-{}-{:08x}", std::process::id(), fastrand::u32(..)));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A database file with one table `t (x TEXT)` holding `rows`, closed again.
fn file_with_rows(path: &Path, rows: &[&str]) {
    let mut db = Database::open(path, DEFAULT_BUSY_TIMEOUT).unwrap();
    db.execute("CREATE TABLE t (x TEXT)", &[]).unwrap();
    for row in rows {
        db.execute("INSERT INTO t VALUES (?1)", &[text(row)]).unwrap();
    }
}

fn texts(rows: &Rows) -> Vec<String> {
    rows.rows
        .iter()
        .map(|r| match &r[0] {
            Value::Text(t) => t.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn attach_extensions_transactions_and_pragmas_are_refused() {
    let mut db = Database::open_in_memory().unwrap();
    for sql in [
        "ATTACH DATABASE '/tmp/other.db' AS other",
        "ATTACH DATABASE 'file:/tmp/other.db' AS other",
        "ATTACH DATABASE '' AS other",
        "DETACH DATABASE main",
        "SELECT load_extension('/tmp/x.so')",
        "BEGIN",
        "BEGIN IMMEDIATE",
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT s",
        "RELEASE s",
        "PRAGMA foreign_keys = OFF",
        "PRAGMA journal_mode = DELETE",
        "PRAGMA journal_mode",
        "PRAGMA busy_timeout = 0",
        "PRAGMA synchronous = OFF",
        "PRAGMA writable_schema = 1",
        "PRAGMA page_size = 1024",
    ] {
        let err = db.execute(sql, &[]).unwrap_err();
        assert_eq!(err.code, ErrorCode::Denied, "{sql}: {err:?}");
        assert!(err.message.contains("refused by the host's policy"), "{sql}: {}", err.message);
    }
    for sql in ["PRAGMA page_count", "PRAGMA page_size", "PRAGMA freelist_count", "PRAGMA data_version", "PRAGMA quick_check"] {
        let rows = db.execute(sql, &[]).unwrap();
        assert_eq!(rows.rows.len(), 1, "{sql}");
    }
    // VACUUM works: the temporary database it attaches reaches no file.
    db.execute("VACUUM", &[]).unwrap();
    // Foreign keys are enforced.
    db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)", &[]).unwrap();
    db.execute("CREATE TABLE child (parent INTEGER REFERENCES parent(id))", &[]).unwrap();
    let orphan = db.execute("INSERT INTO child VALUES (42)", &[]).unwrap_err();
    assert_eq!(orphan.code, ErrorCode::Constraint, "{orphan:?}");
}

#[test]
fn vacuum_is_run_for_the_caller_outside_transactions_only() {
    let scratch = Scratch::new("vacuum");
    let db_path = scratch.path("c.db");
    let mut db = Database::open(&db_path, DEFAULT_BUSY_TIMEOUT).unwrap();
    db.execute("CREATE TABLE t (x BLOB)", &[]).unwrap();
    db.execute_many("INSERT INTO t VALUES (?1)", &(0..200).map(|_| vec![Value::Blob(vec![7; 4096])]).collect::<Vec<_>>()).unwrap();
    db.execute("DELETE FROM t", &[]).unwrap();
    let free = |db: &mut Database| match db.execute("PRAGMA freelist_count", &[]).unwrap().rows[0][0] {
        Value::Integer(n) => n,
        ref other => panic!("{other:?}"),
    };
    assert!(free(&mut db) > 100);
    for sql in ["VACUUM", "vacuum;", "  Vacuum ; "] {
        assert_eq!(db.execute(sql, &[]).unwrap(), Rows::default(), "{sql}");
    }
    assert_eq!(free(&mut db), 0, "VACUUM gave the space back");
    // Inside a transaction SQLite cannot run it.
    let tx = db.begin(TransactionMode::Deferred).unwrap();
    assert_eq!(db.execute("VACUUM", &[]).unwrap_err().code, ErrorCode::Misuse);
    db.end(tx);
    // Only the plain statement is run by the host: the forms that attach a file are refused, and
    // the file is not written.
    let copy = scratch.path("copy.db");
    for sql in [format!("VACUUM INTO '{}'", copy.display()), "VACUUM main".to_owned()] {
        let err = db.execute(&sql, &[]).unwrap_err();
        assert_eq!(err.code, ErrorCode::Denied, "{sql}: {err:?}");
    }
    assert!(!copy.exists(), "VACUUM INTO wrote a file");
}

#[test]
fn transactions_roll_back_unless_committed() {
    let mut db = Database::open_in_memory().unwrap();
    db.execute("CREATE TABLE t (x TEXT)", &[]).unwrap();
    let tx = db.begin(TransactionMode::Immediate).unwrap();
    assert_eq!(db.execute("INSERT INTO t VALUES (?1)", &[text("gone")]).unwrap().changes, 1);
    assert_eq!(db.begin(TransactionMode::Deferred).unwrap_err().code, ErrorCode::Misuse);
    db.end(tx);
    assert_eq!(db.commit(tx).unwrap_err().code, ErrorCode::Misuse, "an ended transaction cannot be committed");
    let tx = db.begin(TransactionMode::Immediate).unwrap();
    assert_eq!(db.execute_many("INSERT INTO t VALUES (?1)", &[vec![text("a")], vec![text("b")]]).unwrap(), 2);
    db.commit(tx).unwrap();
    assert_eq!(db.commit(tx).unwrap_err().code, ErrorCode::Misuse);
    db.end(tx); // a committed transaction's handle dropped later changes nothing
    let rows = db.execute("SELECT x FROM t ORDER BY x", &[]).unwrap();
    assert_eq!(texts(&rows), ["a", "b"]);
    // An old id does not end a newer transaction.
    let newer = db.begin(TransactionMode::Deferred).unwrap();
    db.end(tx);
    assert_eq!(db.begin(TransactionMode::Deferred).unwrap_err().code, ErrorCode::Misuse, "the newer transaction is still open");
    db.commit(newer).unwrap();
}

#[test]
fn a_write_lock_held_elsewhere_is_busy_after_the_timeout() {
    let scratch = Scratch::new("busy");
    let path = scratch.path("c.db");
    file_with_rows(&path, &[]);
    let mut holder = Database::open(&path, DEFAULT_BUSY_TIMEOUT).unwrap();
    let mut waiter = Database::open(&path, Duration::from_millis(50)).unwrap();
    let tx = holder.begin(TransactionMode::Immediate).unwrap();
    let err = waiter.begin(TransactionMode::Immediate).unwrap_err();
    assert_eq!(err.code, ErrorCode::Busy, "{err:?}");
    assert_eq!(waiter.execute("INSERT INTO t VALUES ('x')", &[]).unwrap_err().code, ErrorCode::Busy);
    // The failed begin left no transaction open.
    holder.end(tx);
    let tx = waiter.begin(TransactionMode::Immediate).unwrap();
    waiter.commit(tx).unwrap();
}

#[test]
fn leases_exclude_each_other_until_dropped() {
    let scratch = Scratch::new("lease");
    let a = Database::open(&scratch.path("c.db"), DEFAULT_BUSY_TIMEOUT).unwrap();
    let b = Database::open(&scratch.path("c.db"), DEFAULT_BUSY_TIMEOUT).unwrap();
    let held = a.try_lock("sync:x").unwrap().expect("free");
    assert!(b.try_lock("sync:x").unwrap().is_none(), "a second connection must not take a held lease");
    assert!(a.try_lock("sync:x").unwrap().is_none(), "nor the same one");
    assert!(b.try_lock("sync:y").unwrap().is_some(), "other names are independent");
    assert!(b.try_lock("../../any name/ at all").unwrap().is_some(), "any name makes a lock file");
    drop(held);
    assert!(b.try_lock("sync:x").unwrap().is_some(), "dropping releases");
    assert!(scratch.path("c.db.locks").is_dir(), "the lock files live beside the database");
    let other = Database::open(&scratch.path("d.db"), DEFAULT_BUSY_TIMEOUT).unwrap();
    let _x = a.try_lock("n").unwrap().expect("free");
    assert!(other.try_lock("n").unwrap().is_some(), "another database's leases are its own");
    let m1 = Database::open_in_memory().unwrap();
    let m2 = Database::open_in_memory().unwrap();
    let l1 = m1.try_lock("n").unwrap().expect("free");
    assert!(m1.try_lock("n").unwrap().is_none());
    assert!(m2.try_lock("n").unwrap().is_some(), "separate in-memory databases do not share locks");
    drop(l1);
    assert!(m1.try_lock("n").unwrap().is_some(), "dropping releases");
}

#[test]
fn errors_are_classified_and_parameter_counts_checked() {
    let mut db = Database::open_in_memory().unwrap();
    db.execute("CREATE TABLE t (x TEXT PRIMARY KEY)", &[]).unwrap();
    db.execute("INSERT INTO t VALUES ('a')", &[]).unwrap();
    assert_eq!(db.execute("INSERT INTO t VALUES ('a')", &[]).unwrap_err().code, ErrorCode::Constraint);
    db.execute("CREATE TABLE n (y TEXT NOT NULL CHECK (y <> ''))", &[]).unwrap();
    assert_eq!(db.execute("INSERT INTO n VALUES (NULL)", &[]).unwrap_err().code, ErrorCode::Constraint, "not null");
    assert_eq!(db.execute("INSERT INTO n VALUES ('')", &[]).unwrap_err().code, ErrorCode::Constraint, "check");
    assert_eq!(db.execute("SELEKT 1", &[]).unwrap_err().code, ErrorCode::Invalid);
    assert_eq!(db.execute("SELECT * FROM missing", &[]).unwrap_err().code, ErrorCode::Invalid);
    assert_eq!(db.execute("SELECT nope FROM t", &[]).unwrap_err().code, ErrorCode::Invalid);
    assert_eq!(db.execute("SELECT ?1", &[]).unwrap_err().code, ErrorCode::Misuse);
    assert_eq!(db.execute("SELECT 1", &[text("extra")]).unwrap_err().code, ErrorCode::Misuse);
    assert_eq!(db.execute("SELECT 1; SELECT 2", &[]).unwrap_err().code, ErrorCode::Misuse, "one statement at a time");
    let err = db.execute_many("INSERT INTO t VALUES (?1)", &[vec![text("b")], vec![text("a")]]).unwrap_err();
    assert_eq!(err.code, ErrorCode::Constraint);
    assert!(err.message.starts_with("row 1:"), "{}", err.message);
    let err = db.execute_many("INSERT INTO t VALUES (?1)", &[vec![text("c")], vec![]]).unwrap_err();
    assert_eq!(err.code, ErrorCode::Misuse);
    assert!(err.message.starts_with("row 1:"), "{}", err.message);
    let rows = db.execute("SELECT x FROM t ORDER BY x", &[]).unwrap();
    assert_eq!(texts(&rows), ["a", "b", "c"], "execute-many stops at the failing row, keeping the rows before it");
}

#[test]
fn a_file_that_is_not_a_database_is_corrupt() {
    let scratch = Scratch::new("corrupt");
    let path = scratch.path("c.db");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    for access in [Access::ReadWrite, Access::ReadOnly] {
        let err = Database::open_with(&path, DEFAULT_BUSY_TIMEOUT, access).unwrap_err();
        assert_eq!(err.code, ErrorCode::Corrupt, "{access:?}: {err:?}");
        assert!(err.message.starts_with("cannot open the cache database"), "{}", err.message);
    }
}

#[test]
fn changes_are_reported_for_statements_that_write_only() {
    let mut db = Database::open_in_memory().unwrap();
    db.execute("CREATE TABLE t (x INTEGER)", &[]).unwrap();
    let inserted = db.execute("INSERT INTO t VALUES (1), (2), (3)", &[]).unwrap();
    assert_eq!((inserted.columns.len(), inserted.changes), (0, 3));
    let read = db.execute("SELECT x FROM t", &[]).unwrap();
    assert_eq!((read.rows.len(), read.changes), (3, 0), "a query does not repeat the count of the write before it");
    assert_eq!(db.execute("SELECT COUNT(*) FROM t WHERE x > ?1", &[Value::Integer(1)]).unwrap().changes, 0);
    assert_eq!(db.execute("PRAGMA page_count", &[]).unwrap().changes, 0);
    let returning = db.execute("UPDATE t SET x = x * 10 WHERE x >= ?1 RETURNING x", &[Value::Integer(2)]).unwrap();
    assert_eq!(returning.columns, ["x"]);
    assert_eq!((returning.rows.len(), returning.changes), (2, 2), "a write that returns rows reports its changes");
    assert_eq!(db.execute("DELETE FROM t WHERE x = 99", &[]).unwrap().changes, 0);
    assert_eq!(db.execute("DELETE FROM t", &[]).unwrap().changes, 3);
}

#[test]
fn values_round_trip() {
    let mut db = Database::open_in_memory().unwrap();
    let values = [Value::Null, Value::Integer(i64::MIN), Value::Real(0.5), text("ünïcode"), Value::Blob(vec![0, 1, 255])];
    let rows = db.execute("SELECT ?1 AS a, ?2 AS b, ?3 AS c, ?4 AS d, ?5 AS e", &values).unwrap();
    assert_eq!(rows.columns, ["a", "b", "c", "d", "e"]);
    assert_eq!(rows.rows, [values.to_vec()]);
}

#[test]
fn a_read_only_connection_reads_and_refuses_every_write() {
    let scratch = Scratch::new("readonly");
    let path = scratch.path("c.db");
    file_with_rows(&path, &["a"]);
    let mut db = Database::open_with(&path, DEFAULT_BUSY_TIMEOUT, Access::ReadOnly).unwrap();
    assert_eq!(db.access(), Access::ReadOnly);
    assert_eq!(texts(&db.execute("SELECT x FROM t", &[]).unwrap()), ["a"]);
    for sql in ["INSERT INTO t VALUES ('b')", "CREATE TABLE u (y)", "DELETE FROM t", "VACUUM"] {
        let err = db.execute(sql, &[]).unwrap_err();
        assert_eq!(err.code, ErrorCode::ReadOnly, "{sql}: {err:?}");
    }
    // The policy holds there too.
    assert_eq!(db.execute("PRAGMA foreign_keys = OFF", &[]).unwrap_err().code, ErrorCode::Denied);
    // A read transaction still works.
    let tx = db.begin(TransactionMode::Deferred).unwrap();
    db.execute("SELECT COUNT(*) FROM t", &[]).unwrap();
    db.commit(tx).unwrap();
    // And a writer beside it is seen by it.
    let mut writer = Database::open(&path, DEFAULT_BUSY_TIMEOUT).unwrap();
    assert_eq!(writer.access(), Access::ReadWrite);
    writer.execute("INSERT INTO t VALUES ('b')", &[]).unwrap();
    assert_eq!(texts(&db.execute("SELECT x FROM t ORDER BY x", &[]).unwrap()), ["a", "b"]);
}

#[cfg(unix)]
#[test]
fn read_only_without_shared_memory_opens_the_file_as_immutable() {
    let scratch = Scratch::new("immutable");
    // A name that needs percent-encoding in a URI.
    let path = scratch.path("my cache?#%.db");
    file_with_rows(&path, &["a", "b"]);
    // The write-ahead log's shared memory cannot be opened beside the file, as in a directory
    // the user may not write (a symbolic link is refused by SQLite even to root).
    let mut shm = path.as_os_str().to_owned();
    shm.push("-shm");
    std::os::unix::fs::symlink(scratch.path("elsewhere"), &shm).unwrap();
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    let plain = rusqlite::Connection::open_with_flags(&path, flags).unwrap();
    let err = plain.query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0)).unwrap_err();
    assert_eq!(err.sqlite_error_code(), Some(rusqlite::ErrorCode::CannotOpen), "without the fallback: {err}");
    let mut db = Database::open_with(&path, DEFAULT_BUSY_TIMEOUT, Access::ReadOnly).unwrap();
    assert_eq!(texts(&db.execute("SELECT x FROM t ORDER BY x", &[]).unwrap()), ["a", "b"]);
    assert_eq!(db.execute("INSERT INTO t VALUES ('c')", &[]).unwrap_err().code, ErrorCode::ReadOnly);
    assert!(!scratch.path("elsewhere").exists());
}

#[test]
fn immutable_uris_encode_the_path() {
    assert_eq!(immutable_uri(Path::new("/a b/c?d#e%f.db")), "file:/a%20b/c%3Fd%23e%25f.db?immutable=1");
    assert_eq!(immutable_uri(Path::new("/x/y-z_1.~db")), "file:/x/y-z_1.~db?immutable=1");
}
