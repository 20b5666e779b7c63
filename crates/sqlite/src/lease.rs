//! Advisory locks scoped to one database, for work that must not run twice at once (two syncs of
//! one environment), whether the other party is another process or another connection in this one.

use crate::{Error, ErrorCode};
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

/// A held advisory lock: released when dropped, and by the operating system when the process
/// ends, however it ends.
#[derive(Debug)]
pub struct Lease {
    _lock: Lock,
}

#[derive(Debug)]
enum Lock {
    /// An OS file lock: released by the OS when the process ends, however it ends.
    File { _held: std::fs::File },
    /// For in-memory databases, which no other process can open.
    InProcess(String),
}

impl Drop for Lock {
    fn drop(&mut self) {
        if let Lock::InProcess(key) = self {
            in_process_locks().lock().unwrap_or_else(|e| e.into_inner()).remove(key);
        }
    }
}

fn in_process_locks() -> &'static Mutex<HashSet<String>> {
    static LOCKS: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    LOCKS.get_or_init(Default::default)
}

/// Takes the lock `name` of the in-memory database `memory_id`, or `None` if it is held.
pub(crate) fn try_lock_in_process(memory_id: u64, name: &str) -> Option<Lease> {
    let key = format!("{memory_id:016x}:{name}");
    let mut held = in_process_locks().lock().unwrap_or_else(|e| e.into_inner());
    // Built lazily: a `Lock` dropped here would release the entry it failed to take.
    held.insert(key.clone()).then(|| Lease { _lock: Lock::InProcess(key) })
}

/// Takes the lock `name` as a file lock in `dir` (created if needed), or `None` if it is held. The
/// file is named by a digest of `name`, so any name makes a valid file name.
pub(crate) fn try_lock_file(dir: &Path, name: &str) -> Result<Option<Lease>, Error> {
    let io = |what: &str, e: std::io::Error| Error::new(ErrorCode::Other, format!("{what} {}: {e}", dir.display()));
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
        Ok(()) => Ok(Some(Lease { _lock: Lock::File { _held: file } })),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(io("cannot lock a file in", e)),
    }
}
