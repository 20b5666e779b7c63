//! Errors, classified as the WIT `store.error-code` classifies them.

use std::fmt;

/// What kind of failure an [`Error`] is; mirrors the WIT `store.error-code` case for case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// A constraint failed (unique, foreign key, check, not null).
    Constraint,
    /// The database stayed locked by another connection for longer than the busy timeout.
    Busy,
    /// The policy refused the statement (see [`crate::policy`]).
    Denied,
    /// The database file is not a database, or is damaged.
    Corrupt,
    /// The connection may not write: it was opened read-only, or the file is read-only to this user.
    ReadOnly,
    /// The statement is not valid SQL for this database.
    Invalid,
    /// Misuse of the interface: a second `begin` while a transaction is open, a parameter count
    /// mismatch, `VACUUM` inside a transaction, a transaction that has already ended.
    Misuse,
    /// The file is another program's database (see [`crate::Claim`]); nothing in it was changed.
    Foreign,
    Other,
}

/// A failure, with the code callers act on and a message for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

impl Error {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Error {
        Error { code, message: message.into() }
    }

    pub(crate) fn misuse(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::Misuse, message)
    }

    /// The code SQLite's error `e` is reported with.
    pub(crate) fn code_of(e: &rusqlite::Error) -> ErrorCode {
        use rusqlite::ErrorCode as C;
        // SQLite reports an authorizer refusal found while preparing as a plain SQL error.
        if e.to_string().contains("not authorized") {
            return ErrorCode::Denied;
        }
        match e.sqlite_error_code() {
            Some(C::ConstraintViolation) => ErrorCode::Constraint,
            Some(C::DatabaseBusy | C::DatabaseLocked) => ErrorCode::Busy,
            Some(C::AuthorizationForStatementDenied | C::PermissionDenied) => ErrorCode::Denied,
            Some(C::DatabaseCorrupt | C::NotADatabase) => ErrorCode::Corrupt,
            Some(C::ReadOnly) => ErrorCode::ReadOnly,
            _ => match e {
                rusqlite::Error::SqlInputError { .. } | rusqlite::Error::InvalidColumnType(..) => ErrorCode::Invalid,
                rusqlite::Error::SqliteFailure(_, Some(m)) if m.contains("syntax error") || m.contains("no such") => ErrorCode::Invalid,
                rusqlite::Error::InvalidParameterCount(..) | rusqlite::Error::MultipleStatement => ErrorCode::Misuse,
                _ => ErrorCode::Other,
            },
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        let code = Error::code_of(&e);
        let message = match code {
            ErrorCode::Denied => format!("refused by the host's policy: {e}"),
            _ => e.to_string(),
        };
        Error { code, message }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
