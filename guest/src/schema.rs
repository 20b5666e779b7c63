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
    /// Work SQL alone cannot do (filling a new index from existing rows), in the same transaction.
    pub after: Option<fn(&dyn Store) -> Result<()>>,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
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
        after: None,
    },
    Migration {
        version: 2,
        name: "metadata snapshots, shared objects, labels and sync history",
        statements: &[
            // Objects are content-addressed: one row per distinct content of a kind, shared by every
            // snapshot that has it. The detail tables below hang off them.
            "CREATE TABLE objects (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            hash TEXT NOT NULL,
            UNIQUE (kind, hash)
        ) STRICT",
            "CREATE TABLE data_entities (
            object_id INTEGER PRIMARY KEY REFERENCES objects(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            public_entity_name TEXT,
            public_collection_name TEXT,
            label_id TEXT,
            category TEXT,
            data_service_enabled INTEGER NOT NULL,
            data_management_enabled INTEGER NOT NULL,
            is_read_only INTEGER NOT NULL
        ) STRICT",
            "CREATE TABLE public_entities (
            object_id INTEGER PRIMARY KEY REFERENCES objects(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            entity_set_name TEXT,
            label_id TEXT,
            is_read_only INTEGER NOT NULL,
            configuration_enabled INTEGER NOT NULL
        ) STRICT",
            "CREATE TABLE entity_properties (
            object_id INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            type_name TEXT,
            data_type TEXT,
            label_id TEXT,
            is_key INTEGER NOT NULL,
            is_mandatory INTEGER NOT NULL,
            configuration_enabled INTEGER NOT NULL,
            allow_edit INTEGER NOT NULL,
            allow_edit_on_create INTEGER NOT NULL,
            is_dimension INTEGER NOT NULL,
            dimension_relation TEXT,
            is_dynamic_dimension INTEGER NOT NULL,
            dimension_legal_entity_property TEXT,
            dimension_type_property TEXT,
            PRIMARY KEY (object_id, position)
        ) STRICT, WITHOUT ROWID",
            "CREATE TABLE navigation_properties (
            object_id INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            related_entity TEXT,
            related_relation_name TEXT,
            cardinality TEXT,
            PRIMARY KEY (object_id, position)
        ) STRICT, WITHOUT ROWID",
            "CREATE TABLE navigation_constraints (
            object_id INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
            navigation_position INTEGER NOT NULL,
            position INTEGER NOT NULL,
            kind TEXT NOT NULL,
            property TEXT,
            referenced_property TEXT,
            related_property TEXT,
            value INTEGER,
            value_str TEXT,
            PRIMARY KEY (object_id, navigation_position, position)
        ) STRICT, WITHOUT ROWID",
            "CREATE TABLE property_groups (
            object_id INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            PRIMARY KEY (object_id, position)
        ) STRICT, WITHOUT ROWID",
            "CREATE TABLE property_group_members (
            object_id INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
            group_position INTEGER NOT NULL,
            position INTEGER NOT NULL,
            property_name TEXT NOT NULL,
            PRIMARY KEY (object_id, group_position, position)
        ) STRICT, WITHOUT ROWID",
            "CREATE TABLE entity_actions (
            object_id INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            binding_kind TEXT,
            field_lookup TEXT,
            returns INTEGER NOT NULL,
            return_type_name TEXT,
            return_is_collection INTEGER NOT NULL,
            PRIMARY KEY (object_id, position)
        ) STRICT, WITHOUT ROWID",
            "CREATE TABLE action_parameters (
            object_id INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
            action_position INTEGER NOT NULL,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            type_name TEXT,
            is_collection INTEGER NOT NULL,
            PRIMARY KEY (object_id, action_position, position)
        ) STRICT, WITHOUT ROWID",
            "CREATE TABLE enumerations (
            object_id INTEGER PRIMARY KEY REFERENCES objects(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            label_id TEXT
        ) STRICT",
            "CREATE TABLE enumeration_members (
            object_id INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            value INTEGER NOT NULL,
            label_id TEXT,
            configuration_enabled INTEGER NOT NULL,
            PRIMARY KEY (object_id, position)
        ) STRICT, WITHOUT ROWID",
            // Label texts, content-addressed too: one row per (label id, language, text). `missing`
            // records that the service has no text for the id (it answered 404), so it is not asked again.
            "CREATE TABLE labels (
            id INTEGER PRIMARY KEY,
            label_id TEXT NOT NULL,
            language TEXT NOT NULL,
            text TEXT NOT NULL,
            missing INTEGER NOT NULL CHECK (missing IN (0, 1)),
            UNIQUE (label_id, language, missing, text)
        ) STRICT",
            // A snapshot is one version's metadata as synced, and what it covers. Readers only ever
            // see complete snapshots; a building one is invisible until its last transaction.
            "CREATE TABLE snapshots (
            id INTEGER PRIMARY KEY,
            version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
            state TEXT NOT NULL CHECK (state IN ('building', 'complete')),
            strategy TEXT NOT NULL,
            entities INTEGER NOT NULL CHECK (entities IN (0, 1)),
            languages TEXT NOT NULL,
            base_snapshot_id INTEGER,
            created_ms INTEGER NOT NULL,
            completed_ms INTEGER,
            data_entities INTEGER,
            public_entities INTEGER,
            properties INTEGER,
            navigation_properties INTEGER,
            constraints INTEGER,
            property_groups INTEGER,
            actions INTEGER,
            enumerations INTEGER,
            members INTEGER,
            label_ids INTEGER,
            labels INTEGER,
            labels_missing INTEGER
        ) STRICT",
            "CREATE INDEX snapshots_by_version ON snapshots(version_id, state)",
            // Phases of a building snapshot that are finished, so an interrupted sync resumes after them.
            "CREATE TABLE snapshot_phases (
            snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
            phase TEXT NOT NULL,
            items INTEGER NOT NULL,
            completed_ms INTEGER NOT NULL,
            PRIMARY KEY (snapshot_id, phase)
        ) STRICT, WITHOUT ROWID",
            // The objects of a snapshot, in wire order per kind.
            "CREATE TABLE snapshot_objects (
            snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            object_id INTEGER NOT NULL REFERENCES objects(id),
            PRIMARY KEY (snapshot_id, kind, position)
        ) STRICT, WITHOUT ROWID",
            "CREATE INDEX snapshot_objects_by_name ON snapshot_objects(snapshot_id, kind, name COLLATE NOCASE)",
            "CREATE INDEX snapshot_objects_by_object ON snapshot_objects(object_id)",
            "CREATE TABLE snapshot_labels (
            snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
            label_row INTEGER NOT NULL REFERENCES labels(id),
            PRIMARY KEY (snapshot_id, label_row)
        ) STRICT, WITHOUT ROWID",
            "CREATE INDEX snapshot_labels_by_label ON snapshot_labels(label_row)",
            "CREATE INDEX labels_by_id ON labels(label_id, language)",
            // What readers of an environment see: its current complete snapshot.
            "ALTER TABLE environments ADD COLUMN snapshot_id INTEGER REFERENCES snapshots(id)",
            "ALTER TABLE environments ADD COLUMN synced_ms INTEGER",
            "CREATE INDEX environments_by_snapshot ON environments(snapshot_id)",
            // Every sync, planned or run, and how it ended.
            "CREATE TABLE sync_runs (
            id INTEGER PRIMARY KEY,
            base_url TEXT NOT NULL,
            modules_hash TEXT,
            requested_strategy TEXT NOT NULL,
            strategy TEXT,
            reason TEXT,
            languages TEXT NOT NULL,
            started_ms INTEGER NOT NULL,
            finished_ms INTEGER,
            outcome TEXT NOT NULL CHECK (outcome IN ('running', 'succeeded', 'failed', 'cancelled', 'interrupted', 'planned')),
            error TEXT,
            requests INTEGER NOT NULL DEFAULT 0,
            bytes INTEGER NOT NULL DEFAULT 0,
            objects_fetched INTEGER NOT NULL DEFAULT 0,
            objects_written INTEGER NOT NULL DEFAULT 0,
            objects_reused INTEGER NOT NULL DEFAULT 0,
            labels_fetched INTEGER NOT NULL DEFAULT 0,
            labels_reused INTEGER NOT NULL DEFAULT 0,
            labels_missing INTEGER NOT NULL DEFAULT 0,
            snapshot_id INTEGER
        ) STRICT",
            "CREATE INDEX sync_runs_by_url ON sync_runs(base_url, started_ms)",
        ],
        after: None,
    },
    Migration {
        version: 3,
        name: "full-text search",
        statements: &[
            // One row per searchable item of a stored object. Shared objects are indexed once; queries
            // reach rows through a snapshot's objects, so a version never sees another's items.
            "CREATE TABLE search_items (
            id INTEGER PRIMARY KEY,
            object_id INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            alias TEXT,
            words TEXT NOT NULL,
            owner TEXT,
            label_id TEXT,
            literal_label TEXT
        ) STRICT",
            "CREATE INDEX search_items_by_object ON search_items(object_id)",
            "CREATE INDEX search_items_by_label ON search_items(label_id)",
            // Names and their words (PascalCase split), kept in step with search_items by triggers.
            // `literal_label` is a label id that is already text (not an `@` reference).
            "CREATE VIRTUAL TABLE search_fts USING fts5(
            name, alias, words, literal_label, content = 'search_items', content_rowid = 'id',
            tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
        )",
            "CREATE TRIGGER search_items_indexed AFTER INSERT ON search_items BEGIN
            INSERT INTO search_fts (rowid, name, alias, words, literal_label) VALUES (new.id, new.name, new.alias, new.words, new.literal_label);
        END",
            "CREATE TRIGGER search_items_unindexed AFTER DELETE ON search_items BEGIN
            INSERT INTO search_fts (search_fts, rowid, name, alias, words, literal_label)
            VALUES ('delete', old.id, old.name, old.alias, old.words, old.literal_label);
        END",
            // Lookups by entity set name, and from a public entity to its data entity.
            "CREATE INDEX public_entities_by_set ON public_entities(entity_set_name COLLATE NOCASE)",
            "CREATE INDEX data_entities_by_public_name ON data_entities(public_entity_name COLLATE NOCASE)",
            // Label texts, so items are found by what their labels say, in the versions that have them.
            "CREATE VIRTUAL TABLE label_fts USING fts5(
            text, content = 'labels', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
        )",
            "CREATE TRIGGER labels_indexed AFTER INSERT ON labels BEGIN
            INSERT INTO label_fts (rowid, text) VALUES (new.id, new.text);
        END",
            "CREATE TRIGGER labels_unindexed AFTER DELETE ON labels BEGIN
            INSERT INTO label_fts (label_fts, rowid, text) VALUES ('delete', old.id, old.text);
        END",
            "INSERT INTO label_fts (label_fts) VALUES ('rebuild')",
        ],
        // The items of objects stored before this migration are indexed by migration 6, which
        // rebuilds the index.
        after: None,
    },
    Migration {
        version: 4,
        name: "entity fingerprints",
        statements: &[
            // See `metadata::Fingerprints`. Entities stored before this migration have none, and a
            // diff reads them whole instead.
            "ALTER TABLE public_entities ADD COLUMN fingerprints BLOB",
        ],
        after: None,
    },
    Migration {
        version: 5,
        name: "leaner full-text indexes, written a batch at a time",
        statements: &[
            // Searches ask whether a column holds a token (or a prefix of one), never where in it
            // nor how long the column is (no phrase queries, no bm25): `detail = column` keeps no
            // positions and `columnsize = 0` no per-row sizes.
            //
            // New rows reach the indexes through `search::index` (one statement per batch), not a
            // trigger per row: FTS5 writes its pending terms to disk at every statement savepoint,
            // so a trigger on a row-by-row insert left one tiny segment per row, merged again and
            // again (half of a full sync's time). Deletions (gc) are one statement each already
            // and keep their triggers.
            "DROP TRIGGER search_items_indexed",
            "DROP TRIGGER search_items_unindexed",
            "DROP TRIGGER labels_indexed",
            "DROP TRIGGER labels_unindexed",
            "DROP TABLE search_fts",
            "DROP TABLE label_fts",
            "CREATE VIRTUAL TABLE search_fts USING fts5(
            name, alias, words, literal_label, content = 'search_items', content_rowid = 'id',
            tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3', detail = column, columnsize = 0
        )",
            "CREATE TRIGGER search_items_unindexed AFTER DELETE ON search_items BEGIN
            INSERT INTO search_fts (search_fts, rowid, name, alias, words, literal_label)
            VALUES ('delete', old.id, old.name, old.alias, old.words, old.literal_label);
        END",
            "CREATE VIRTUAL TABLE label_fts USING fts5(
            text, content = 'labels', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3',
            detail = column, columnsize = 0
        )",
            "CREATE TRIGGER labels_unindexed AFTER DELETE ON labels BEGIN
            INSERT INTO label_fts (label_fts, rowid, text) VALUES ('delete', old.id, old.text);
        END",
            "INSERT INTO search_fts (search_fts) VALUES ('rebuild')",
            "INSERT INTO label_fts (label_fts) VALUES ('rebuild')",
        ],
        after: None,
    },
    Migration {
        version: 6,
        name: "search items in rank order",
        statements: &[
            // A search item's id is its place in the ranking (`search::index::item_id`), so that a
            // page of hits is the first few matches the full-text index lists. The items are
            // rebuilt from the stored objects with such ids.
            "DROP TRIGGER search_items_unindexed",
            "DROP TABLE search_fts",
            "DROP TABLE search_items",
            "CREATE TABLE search_items (
            id INTEGER PRIMARY KEY,
            object_id INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            alias TEXT,
            words TEXT NOT NULL,
            owner TEXT,
            label_id TEXT,
            literal_label TEXT
        ) STRICT",
            "CREATE INDEX search_items_by_object ON search_items(object_id)",
            "CREATE INDEX search_items_by_label ON search_items(label_id)",
            // Every word typed is matched as a prefix. A prefix FTS5 has no index of its own for
            // is answered by merging the lists of every token that starts with it, which for the
            // common words of entity names (`entity*`: 5,730 items) costs more than a millisecond
            // a word; with an index per prefix length up to 10, each is one list (the index about
            // doubles, about 9 MB at full scale).
            "CREATE VIRTUAL TABLE search_fts USING fts5(
            name, alias, words, literal_label, content = 'search_items', content_rowid = 'id',
            tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3 4 5 6 7 8 9 10', detail = column, columnsize = 0
        )",
            "CREATE TRIGGER search_items_unindexed AFTER DELETE ON search_items BEGIN
            INSERT INTO search_fts (search_fts, rowid, name, alias, words, literal_label)
            VALUES ('delete', old.id, old.name, old.alias, old.words, old.literal_label);
        END",
        ],
        after: Some(crate::search::index::rebuild),
    },
    Migration {
        version: 7,
        name: "the objects that item texts became, and each object's part counts",
        statements: &[
            // Keys of this database, made here once: `object-sources` keys the hash of item texts
            // (see `sync::sources`), so that no service can choose a text that matches another's.
            "CREATE TABLE cache_keys (
            name TEXT PRIMARY KEY,
            key BLOB NOT NULL
        ) STRICT, WITHOUT ROWID",
            "INSERT INTO cache_keys (name, key) VALUES ('object-sources', randomblob(16))",
            // For each collection item text parsed, the object it became: a text seen again is
            // that object without parsing it. Objects stored before this migration have none; the
            // next sync that reads their texts records them.
            "CREATE TABLE object_sources (
            source BLOB PRIMARY KEY,
            object_id INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE
        ) STRICT, WITHOUT ROWID",
            "CREATE INDEX object_sources_by_object ON object_sources(object_id)",
            // How many parts of each kind an object has, so that a snapshot's counts read one row
            // per object instead of every detail row (118,000 properties at full scale).
            "ALTER TABLE public_entities ADD COLUMN property_count INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE public_entities ADD COLUMN navigation_property_count INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE public_entities ADD COLUMN constraint_count INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE public_entities ADD COLUMN property_group_count INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE public_entities ADD COLUMN action_count INTEGER NOT NULL DEFAULT 0",
            "UPDATE public_entities SET
            property_count = (SELECT COUNT(*) FROM entity_properties t WHERE t.object_id = public_entities.object_id),
            navigation_property_count = (SELECT COUNT(*) FROM navigation_properties t WHERE t.object_id = public_entities.object_id),
            constraint_count = (SELECT COUNT(*) FROM navigation_constraints t WHERE t.object_id = public_entities.object_id),
            property_group_count = (SELECT COUNT(*) FROM property_groups t WHERE t.object_id = public_entities.object_id),
            action_count = (SELECT COUNT(*) FROM entity_actions t WHERE t.object_id = public_entities.object_id)",
            "ALTER TABLE enumerations ADD COLUMN member_count INTEGER NOT NULL DEFAULT 0",
            "UPDATE enumerations SET member_count = (SELECT COUNT(*) FROM enumeration_members t WHERE t.object_id = enumerations.object_id)",
            // The index of labels' UNIQUE constraint (`sqlite_autoindex_labels_1`: label id,
            // language, missing, text) answers every lookup by id and holds the text as well, so a
            // label is one probe instead of two; this one only repeated its first two columns.
            "DROP INDEX labels_by_id",
        ],
        after: None,
    },
];

pub fn latest() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

pub use crate::wit::types::SchemaStatus;

/// Brings the database up to the newest schema this code knows.
pub fn open(store: &dyn Store, now_ms: i64) -> Result<SchemaStatus> {
    migrate(store, MIGRATIONS, now_ms)
}

pub fn migrate(store: &dyn Store, migrations: &[Migration], now_ms: i64) -> Result<SchemaStatus> {
    let latest = migrations.last().map_or(0, |m| m.version);
    // An up-to-date database is opened without a single write, so that a read-only connection (a
    // read, or a file the user may only read) can open it.
    let has_table = query_opt(store, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'", &[], |r| r.int(0))?;
    if has_table.is_some() {
        let current = current_version(store)?;
        refuse_newer(current, latest)?;
        if current == latest {
            return Ok(SchemaStatus { version: current, latest, applied: vec![] });
        }
    }
    let needs_writing = |e: crate::Error| {
        if e.message.contains("read-only") || e.message.contains("readonly") {
            Error::schema(format!(
                "the cache database needs upgrading to schema version {latest}, which needs write access; \
                 run a command that writes (such as `d365meta sync`) once with write access to the file"
            ))
        } else {
            e
        }
    };
    exec(
        store,
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at_ms INTEGER NOT NULL
        ) STRICT",
        &[],
    )
    .map_err(|e| needs_writing(e).context("opening the schema"))?;
    let mut current = current_version(store)?;
    refuse_newer(current, latest)?;
    let mut applied = Vec::new();
    let start = current;
    for migration in migrations.iter().filter(|m| m.version > start) {
        let tx = store.begin(TxMode::Immediate).map_err(|e| needs_writing(Error::from(e)).context("starting a migration"))?;
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
        if let Some(after) = migration.after {
            after(store).map_err(|e| {
                Error::schema(format!(
                    "migration {} ({}) failed: {}; the database is unchanged at schema version {now_current}",
                    migration.version, migration.name, e.message
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
    Ok(query_opt(store, "SELECT MAX(version) FROM schema_migrations", &[], |r| r.opt_int(0))?.flatten().unwrap_or(0) as u32)
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
            Migration { version: 1, name: "one", statements: &["CREATE TABLE a (x INTEGER)"], after: None },
            Migration { version: 2, name: "two", statements: &["CREATE TABLE b (x INTEGER)", "CREATE TABLE a (dup INTEGER)"], after: None },
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
        const FIRST: &[Migration] = &[Migration { version: 1, name: "one", statements: &["CREATE TABLE a (x INTEGER)"], after: None }];
        const BOTH: &[Migration] = &[
            Migration { version: 1, name: "one", statements: &["CREATE TABLE a (x INTEGER)"], after: None },
            Migration { version: 2, name: "two", statements: &["ALTER TABLE a ADD COLUMN y TEXT"], after: None },
        ];
        let store = SqliteStore::memory();
        assert_eq!(migrate(&store, FIRST, 1).unwrap().applied, [1]);
        assert_eq!(migrate(&store, BOTH, 2).unwrap().applied, [2]);
        exec(&store, "INSERT INTO a (x, y) VALUES (1, 'ok')", &[]).unwrap();
    }
}
