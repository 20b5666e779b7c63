//! The SQL schema and its migrations.
//!
//! The database records which migrations it has had in `schema_migrations`. Opening applies the
//! pending ones in order, each in its own transaction together with its record, so a crash leaves the
//! database at a migration boundary. A database that has a migration this code does not know is
//! refused rather than guessed at.

use crate::error::{Error, Result};
use crate::params;
use crate::ports::{Store, TxMode};
use crate::sql::{exec, query_opt};

pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub statements: &'static [&'static str],
}

pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "environments and versions",
    statements: &[
        // One row per version of installed modules, identified by its modules hash.
        "CREATE TABLE versions (
            id INTEGER PRIMARY KEY,
            modules_hash TEXT NOT NULL UNIQUE,
            module_count INTEGER NOT NULL,
            application_version TEXT,
            platform_version TEXT,
            fallback INTEGER NOT NULL CHECK (fallback IN (0, 1)),
            first_seen_ms INTEGER NOT NULL,
            last_seen_ms INTEGER NOT NULL
        ) STRICT",
        // The modules of a version, in module id order.
        "CREATE TABLE version_modules (
            version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            module_id TEXT NOT NULL,
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            publisher TEXT NOT NULL,
            display_name TEXT NOT NULL,
            PRIMARY KEY (version_id, position)
        ) STRICT, WITHOUT ROWID",
        // GetInstalledModules lines that did not parse; part of the version's identity.
        "CREATE TABLE version_unparsed_lines (
            version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
            line INTEGER NOT NULL,
            text TEXT NOT NULL,
            reason TEXT NOT NULL,
            PRIMARY KEY (version_id, line)
        ) STRICT, WITHOUT ROWID",
        // An environment, by normalised base URL, and the version it currently runs.
        "CREATE TABLE environments (
            id INTEGER PRIMARY KEY,
            base_url TEXT NOT NULL UNIQUE,
            version_id INTEGER REFERENCES versions(id),
            first_seen_ms INTEGER NOT NULL,
            last_seen_ms INTEGER NOT NULL
        ) STRICT",
        "CREATE INDEX environments_by_version ON environments(version_id)",
        // Every version an environment has been seen running.
        "CREATE TABLE environment_versions (
            environment_id INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
            version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
            first_seen_ms INTEGER NOT NULL,
            last_seen_ms INTEGER NOT NULL,
            PRIMARY KEY (environment_id, version_id)
        ) STRICT, WITHOUT ROWID",
        "CREATE INDEX environment_versions_by_version ON environment_versions(version_id)",
    ],
}];

pub fn latest() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaStatus {
    pub version: u32,
    pub latest: u32,
    pub applied: Vec<u32>,
}

/// Brings the database up to the newest schema this code knows.
pub fn open(store: &dyn Store, now_ms: i64) -> Result<SchemaStatus> {
    migrate(store, MIGRATIONS, now_ms)
}

pub fn migrate(store: &dyn Store, migrations: &[Migration], now_ms: i64) -> Result<SchemaStatus> {
    let latest = migrations.last().map_or(0, |m| m.version);
    exec(
        store,
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at_ms INTEGER NOT NULL
        ) STRICT",
        &[],
    )
    .map_err(|e| e.context("opening the schema"))?;
    let mut current = current_version(store)?;
    refuse_newer(current, latest)?;
    let mut applied = Vec::new();
    let start = current;
    for migration in migrations.iter().filter(|m| m.version > start) {
        let tx = store.begin(TxMode::Immediate).map_err(|e| Error::from(e).context("starting a migration"))?;
        // Another process may have applied it while this one waited for the lock.
        let now_current = current_version(store)?;
        refuse_newer(now_current, latest)?;
        if now_current >= migration.version {
            drop(tx);
            current = now_current;
            continue;
        }
        debug_assert!(now_current >= current);
        for (i, statement) in migration.statements.iter().enumerate() {
            exec(store, statement, &[]).map_err(|e| {
                Error::schema(format!(
                    "migration {} ({}) failed at statement {}: {}; the database is unchanged at schema version {}",
                    migration.version,
                    migration.name,
                    i + 1,
                    e.message,
                    now_current
                ))
            })?;
        }
        exec(
            store,
            "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?1, ?2, ?3)",
            &params![migration.version, migration.name, now_ms],
        )?;
        tx.commit().map_err(|e| Error::from(e).context(format!("committing migration {}", migration.version)))?;
        current = migration.version;
        applied.push(migration.version);
    }
    Ok(SchemaStatus { version: current, latest, applied })
}

fn current_version(store: &dyn Store) -> Result<u32> {
    Ok(query_opt(store, "SELECT MAX(version) FROM schema_migrations", &[], |r| r.opt_int(0))?
        .flatten()
        .unwrap_or(0) as u32)
}

fn refuse_newer(current: u32, latest: u32) -> Result<()> {
    if current > latest {
        return Err(Error::schema(format!(
            "the cache database has schema version {current}, newer than this d365meta understands (up to {latest}); \
             upgrade d365meta, or point --cache at another file"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::query_map;
    use crate::testing::SqliteStore;

    fn tables(store: &SqliteStore) -> Vec<String> {
        query_map(store, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name", &[], |r| r.text(0)).unwrap()
    }

    #[test]
    fn a_fresh_database_gets_every_migration_once() {
        let store = SqliteStore::memory();
        let status = open(&store, 1).unwrap();
        assert_eq!(status, SchemaStatus { version: latest(), latest: latest(), applied: (1..=latest()).collect() });
        assert!(tables(&store).contains(&"environments".to_owned()));
        let again = open(&store, 2).unwrap();
        assert_eq!(again.applied, Vec::<u32>::new());
        assert_eq!(again.version, latest());
    }

    #[test]
    fn a_newer_database_is_refused_with_a_clear_message() {
        let store = SqliteStore::memory();
        open(&store, 1).unwrap();
        exec(&store, "INSERT INTO schema_migrations VALUES (999, 'from the future', 0)", &[]).unwrap();
        let err = open(&store, 2).unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::Schema);
        assert!(err.message.contains("schema version 999") && err.message.contains("upgrade d365meta"), "{}", err.message);
    }

    #[test]
    fn a_failing_migration_leaves_the_previous_schema_intact() {
        const BROKEN: &[Migration] = &[
            Migration { version: 1, name: "one", statements: &["CREATE TABLE a (x INTEGER)"] },
            Migration { version: 2, name: "two", statements: &["CREATE TABLE b (x INTEGER)", "CREATE TABLE a (dup INTEGER)"] },
        ];
        let store = SqliteStore::memory();
        let err = migrate(&store, BROKEN, 1).unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::Schema);
        assert!(err.message.contains("migration 2 (two) failed at statement 2"), "{}", err.message);
        assert!(err.message.contains("unchanged at schema version 1"), "{}", err.message);
        // Migration 1 committed; nothing of migration 2 remains.
        assert_eq!(tables(&store), ["a", "schema_migrations"]);
        assert_eq!(current_version(&store).unwrap(), 1);
    }

    #[test]
    fn migrations_apply_in_order_from_where_the_database_stands() {
        const FIRST: &[Migration] = &[Migration { version: 1, name: "one", statements: &["CREATE TABLE a (x INTEGER)"] }];
        const BOTH: &[Migration] = &[
            Migration { version: 1, name: "one", statements: &["CREATE TABLE a (x INTEGER)"] },
            Migration { version: 2, name: "two", statements: &["ALTER TABLE a ADD COLUMN y TEXT"] },
        ];
        let store = SqliteStore::memory();
        assert_eq!(migrate(&store, FIRST, 1).unwrap().applied, [1]);
        assert_eq!(migrate(&store, BOTH, 2).unwrap().applied, [2]);
        exec(&store, "INSERT INTO a (x, y) VALUES (1, 'ok')", &[]).unwrap();
    }
}
