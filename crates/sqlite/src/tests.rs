use crate::*;

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
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
        let err = db.execute(sql, &[]).unwrap_err();
        assert_eq!(err.code, ErrorCode::Denied, "{sql}: {err:?}");
        assert!(err.message.contains("refused by the host's policy"), "{sql}: {}", err.message);
    }
    let rows = db.execute("PRAGMA page_count", &[]).unwrap();
    assert_eq!(rows.rows.len(), 1);
    // VACUUM works: the temporary database it attaches reaches no file.
    db.execute("VACUUM", &[]).unwrap();
    // Foreign keys are enforced.
    db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)", &[]).unwrap();
    db.execute("CREATE TABLE child (parent INTEGER REFERENCES parent(id))", &[]).unwrap();
    let orphan = db.execute("INSERT INTO child VALUES (42)", &[]).unwrap_err();
    assert_eq!(orphan.code, ErrorCode::Constraint, "{orphan:?}");
}

#[test]
fn transactions_roll_back_unless_committed() {
    let mut db = Database::open_in_memory().unwrap();
    db.execute("CREATE TABLE t (x TEXT)", &[]).unwrap();
    let tx = db.begin(TransactionMode::Immediate).unwrap();
    assert_eq!(db.execute("INSERT INTO t VALUES (?1)", &[text("gone")]).unwrap().changes, 1);
    assert_eq!(db.begin(TransactionMode::Deferred).unwrap_err().code, ErrorCode::Misuse);
    db.end(tx);
    let tx = db.begin(TransactionMode::Immediate).unwrap();
    assert_eq!(db.execute_many("INSERT INTO t VALUES (?1)", &[vec![text("a")], vec![text("b")]]).unwrap(), 2);
    db.commit(tx).unwrap();
    assert_eq!(db.commit(tx).unwrap_err().code, ErrorCode::Misuse);
    db.end(tx); // a committed transaction's handle dropped later changes nothing
    let rows = db.execute("SELECT x FROM t ORDER BY x", &[]).unwrap();
    let texts: Vec<String> = rows
        .rows
        .iter()
        .map(|r| match &r[0] {
            Value::Text(t) => t.clone(),
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
    db.execute("CREATE TABLE t (x TEXT PRIMARY KEY)", &[]).unwrap();
    db.execute("INSERT INTO t VALUES ('a')", &[]).unwrap();
    assert_eq!(db.execute("INSERT INTO t VALUES ('a')", &[]).unwrap_err().code, ErrorCode::Constraint);
    assert_eq!(db.execute("SELEKT 1", &[]).unwrap_err().code, ErrorCode::Invalid);
    assert_eq!(db.execute("SELECT ?1", &[]).unwrap_err().code, ErrorCode::Misuse);
    let err = db.execute_many("INSERT INTO t VALUES (?1)", &[vec![text("b")], vec![text("a")]]).unwrap_err();
    assert_eq!(err.code, ErrorCode::Constraint);
    assert!(err.message.starts_with("row 1:"), "{}", err.message);
}
