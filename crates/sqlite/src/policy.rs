//! The authorizer installed on every connection: what SQL given to a [`Database`](crate::Database)
//! may do. The crate documentation says why each refusal exists.

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

/// Pragmas a caller may use, none of which changes a setting: the size figures `stats` reports,
/// the read-only checks SQLite itself runs inside `ALTER TABLE ... ADD COLUMN`, and the change
/// counter FTS5 reads. The flag says whether an argument is allowed (for the checks it names a
/// table, not a value).
const READ_ONLY_PRAGMAS: &[(&str, bool)] = &[
    ("page_count", false),
    ("page_size", false),
    ("freelist_count", false),
    ("data_version", false),
    ("quick_check", true),
    ("integrity_check", true),
];

/// Decides one action of a statement being prepared. `host_statement` is set while the crate itself
/// runs `BEGIN`/`COMMIT`/`ROLLBACK` or `VACUUM`, which are refused to callers.
pub(crate) fn authorize(ctx: &AuthContext<'_>, host_statement: bool) -> Authorization {
    match ctx.action {
        // `VACUUM`, run by the host, attaches a private temporary database (no file) and detaches it.
        AuthAction::Attach { filename } if host_statement && filename.is_empty() => Authorization::Allow,
        AuthAction::Detach { database_name } if host_statement && database_name == "vacuum_db" => Authorization::Allow,
        // Any other database file is out of the caller's reach.
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => Authorization::Deny,
        // Native code from a file: never.
        AuthAction::Function { function_name } if function_name.eq_ignore_ascii_case("load_extension") => Authorization::Deny,
        // Transactions are opened and ended through `Database::begin`, `commit` and `end` only.
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
