//! Recognising a database file as the program's own before anything in it is changed.

use crate::{Error, ErrorCode};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

/// How a program recognises its database files: by SQLite's `application_id`, in the file header.
/// A file marked with another id, or marked with none but holding tables of another program, is
/// refused before anything in it changes (not even its journal mode); an empty file is marked when
/// the connection may write, and so is an unmarked file of this program written before files were
/// marked.
#[derive(Clone, Copy, Debug)]
pub struct Claim {
    pub application_id: i32,
    /// Tables that, all present in an unmarked file, make it this program's.
    pub unmarked_tables: &'static [&'static str],
    /// What the program's files are, for messages ("a d365meta cache").
    pub what: &'static str,
}

/// What a look at a file found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Found {
    Ours,
    /// Empty, or this program's written before marking: ours, to be marked if the connection writes.
    Unmarked,
}

impl Claim {
    /// Looks at the file at `path` without changing it. A marked file is recognised from its header
    /// alone; an unmarked one is opened on a connection of its own, closed before this returns, so
    /// that SQLite removes the `-wal` and `-shm` files it made beside a file in WAL mode (a
    /// read-only connection could not, and would leave them beside another program's file).
    pub(crate) fn inspect(&self, path: &Path) -> Result<Found, Error> {
        let Some(header_id) = header_application_id(path) else { return Ok(Found::Unmarked) };
        if header_id == self.application_id {
            return Ok(Found::Ours);
        }
        let foreign = |why: String| {
            Error::new(
                ErrorCode::Foreign,
                format!("{} is not {}: {why}; it was left as it is (choose another file for the cache)", path.display(), self.what),
            )
        };
        let named_elsewhere = |id: i32| foreign(format!("its header names another program (application id {id:#010x})"));
        if header_id != 0 {
            return Err(named_elsewhere(header_id));
        }
        let read = |e: rusqlite::Error| Error::new(Error::code_of(&e), format!("cannot read the database {}: {e}", path.display()));
        let flags = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_READ_WRITE)
            .or_else(|_| Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_READ_ONLY))
            .map_err(read)?;
        // The header as the database sees it, with what its write-ahead log holds.
        let id: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0)).map_err(read)?;
        if id == self.application_id {
            return Ok(Found::Ours);
        }
        if id != 0 {
            return Err(named_elsewhere(id));
        }
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")
            .map_err(read)?;
        let tables: Vec<String> = stmt.query_map([], |r| r.get(0)).map_err(read)?.collect::<Result<_, _>>().map_err(read)?;
        if tables.is_empty() || self.unmarked_tables.iter().all(|t| tables.iter().any(|n| n == t)) {
            return Ok(Found::Unmarked);
        }
        const SHOWN: usize = 5;
        let mut names = tables.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
        if tables.len() > SHOWN {
            names.push_str(&format!(" and {} more", tables.len() - SHOWN));
        }
        Err(foreign(format!("it holds tables of another program ({names})")))
    }

    /// Marks the file behind `conn` as this program's.
    pub(crate) fn mark(&self, conn: &Connection) -> rusqlite::Result<()> {
        conn.execute_batch(&format!("PRAGMA application_id = {}", self.application_id))
    }
}

/// The `application_id` in the file's header (big-endian at offset 68 of the 100-byte header), or
/// `None` for a file that does not exist or is too short to have one (new, or empty).
fn header_application_id(path: &Path) -> Option<i32> {
    use std::io::Read as _;
    let mut header = [0u8; 100];
    std::fs::File::open(path).ok()?.read_exact(&mut header).ok()?;
    Some(i32::from_be_bytes([header[68], header[69], header[70], header[71]]))
}
