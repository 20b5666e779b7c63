//! Snapshots: one version's metadata as synced. A snapshot is built invisibly ('building'), phase
//! by phase, and becomes visible in one transaction that completes it and points the environment at
//! it. Until then readers keep the environment's previous snapshot.

use super::coverage::Coverage;
use crate::error::{Error, Result};
use crate::params;
use crate::ports::{Phase, Store, TxMode};
use crate::sql::{Row, exec, in_transaction, query_map, query_opt};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub id: i64,
    pub version_id: i64,
    pub modules_hash: String,
    pub complete: bool,
    pub strategy: String,
    pub coverage: Coverage,
    pub completed_ms: Option<i64>,
}

const COLUMNS: &str = "s.id, s.version_id, v.modules_hash, s.state, s.strategy, s.entities, s.languages, s.completed_ms";

fn read(r: Row<'_>) -> Result<SnapshotInfo> {
    Ok(SnapshotInfo {
        id: r.int(0)?,
        version_id: r.int(1)?,
        modules_hash: r.text(2)?,
        complete: r.text(3)? == "complete",
        strategy: r.text(4)?,
        coverage: Coverage { entities: r.bool(5)?, languages: Coverage::parse_languages(&r.text(6)?) },
        completed_ms: r.opt_int(7)?,
    })
}

pub fn get(store: &dyn Store, id: i64) -> Result<Option<SnapshotInfo>> {
    query_opt(
        store,
        &format!("SELECT {COLUMNS} FROM snapshots s JOIN versions v ON v.id = s.version_id WHERE s.id = ?1"),
        &params![id],
        read,
    )
}

/// The snapshot readers of an environment see.
pub fn of_environment(store: &dyn Store, environment_id: i64) -> Result<Option<SnapshotInfo>> {
    query_opt(
        store,
        &format!(
            "SELECT {COLUMNS} FROM environments e JOIN snapshots s ON s.id = e.snapshot_id JOIN versions v ON v.id = s.version_id WHERE e.id = ?1"
        ),
        &params![environment_id],
        read,
    )
}

/// Complete snapshots of a version, the most covering and most recent first.
pub fn complete_for_version(store: &dyn Store, version_id: i64) -> Result<Vec<SnapshotInfo>> {
    let mut all = query_map(
        store,
        &format!(
            "SELECT {COLUMNS} FROM snapshots s JOIN versions v ON v.id = s.version_id WHERE s.version_id = ?1 AND s.state = 'complete' ORDER BY s.completed_ms DESC, s.id DESC"
        ),
        &params![version_id],
        read,
    )?;
    all.sort_by_key(|s| std::cmp::Reverse((s.coverage.entities, s.coverage.languages.len())));
    Ok(all)
}

/// The most recently completed snapshot with entities of any version but `except_version`.
pub fn latest_with_entities_except(store: &dyn Store, except_version: i64) -> Result<Option<SnapshotInfo>> {
    query_opt(
        store,
        &format!(
            "SELECT {COLUMNS} FROM snapshots s JOIN versions v ON v.id = s.version_id
             WHERE s.state = 'complete' AND s.entities = 1 AND s.version_id <> ?1
             ORDER BY s.completed_ms DESC, s.id DESC LIMIT 1"
        ),
        &params![except_version],
        read,
    )
}

pub fn building_for_version(store: &dyn Store, version_id: i64) -> Result<Option<SnapshotInfo>> {
    query_opt(
        store,
        &format!(
            "SELECT {COLUMNS} FROM snapshots s JOIN versions v ON v.id = s.version_id WHERE s.version_id = ?1 AND s.state = 'building' ORDER BY s.id DESC LIMIT 1"
        ),
        &params![version_id],
        read,
    )
}

pub fn create_building(
    store: &dyn Store,
    version_id: i64,
    strategy: &str,
    coverage: &Coverage,
    base: Option<i64>,
    now_ms: i64,
) -> Result<i64> {
    query_opt(
        store,
        "INSERT INTO snapshots (version_id, state, strategy, entities, languages, base_snapshot_id, created_ms)
         VALUES (?1, 'building', ?2, ?3, ?4, ?5, ?6) RETURNING id",
        &params![version_id, strategy, coverage.entities, coverage.languages_text(), base, now_ms],
        |r| r.int(0),
    )?
    .ok_or_else(|| Error::internal("snapshot insert returned no id"))
}

/// Throws away a building snapshot that will not be finished (its plan changed).
pub fn discard_building(store: &dyn Store, id: i64) -> Result<()> {
    in_transaction(store, TxMode::Immediate, || {
        exec(store, "DELETE FROM snapshots WHERE id = ?1 AND state = 'building'", &params![id])?;
        Ok(())
    })
}

pub fn phase_done(store: &dyn Store, snapshot_id: i64, phase: &Phase) -> Result<bool> {
    Ok(query_opt(
        store,
        "SELECT 1 FROM snapshot_phases WHERE snapshot_id = ?1 AND phase = ?2",
        &params![snapshot_id, phase_key(phase)],
        |_| Ok(()),
    )?
    .is_some())
}

/// Records a finished phase; call inside the transaction that wrote the phase's data.
pub fn mark_phase(store: &dyn Store, snapshot_id: i64, phase: &Phase, items: u64, now_ms: i64) -> Result<()> {
    exec(
        store,
        "INSERT OR REPLACE INTO snapshot_phases (snapshot_id, phase, items, completed_ms) VALUES (?1, ?2, ?3, ?4)",
        &params![snapshot_id, phase_key(phase), items as i64, now_ms],
    )?;
    Ok(())
}

/// The name a finished phase is recorded under: `data-entities`, `labels:en-US`, ...
pub fn phase_key(phase: &Phase) -> String {
    match phase {
        Phase::Detect => "detect".to_owned(),
        Phase::Objects => "objects".to_owned(),
        Phase::DataEntities => "data-entities".to_owned(),
        Phase::PublicEntities => "public-entities".to_owned(),
        Phase::Enumerations => "enumerations".to_owned(),
        Phase::Labels(language) => format!("labels:{language}"),
        Phase::Pull => "pull".to_owned(),
    }
}

/// The label ids (references only) the objects of a snapshot use, as a SQL subquery over `?1`.
pub const REFERENCED_LABEL_IDS: &str = "SELECT label_id FROM (
        SELECT d.label_id FROM snapshot_objects so JOIN data_entities d ON d.object_id = so.object_id
         WHERE so.snapshot_id = ?1 AND so.kind = 'data-entity'
        UNION SELECT p.label_id FROM snapshot_objects so JOIN public_entities p ON p.object_id = so.object_id
         WHERE so.snapshot_id = ?1 AND so.kind = 'public-entity'
        UNION SELECT ep.label_id FROM snapshot_objects so JOIN entity_properties ep ON ep.object_id = so.object_id
         WHERE so.snapshot_id = ?1 AND so.kind = 'public-entity'
        UNION SELECT e.label_id FROM snapshot_objects so JOIN enumerations e ON e.object_id = so.object_id
         WHERE so.snapshot_id = ?1 AND so.kind = 'enumeration'
        UNION SELECT m.label_id FROM snapshot_objects so JOIN enumeration_members m ON m.object_id = so.object_id
         WHERE so.snapshot_id = ?1 AND so.kind = 'enumeration'
    ) WHERE label_id LIKE '@_%'";

pub use crate::wit::types::SnapshotCounts as Counts;

/// Counts what a snapshot holds, from the stored rows: the objects and their parts (each detail
/// row stores how many parts of each kind it has, so this reads one row per object), and the
/// label ids its objects refer to unless the caller has counted them (`label_ids`, see
/// [`REFERENCED_LABEL_IDS`]: the one costly part).
pub fn count(store: &dyn Store, snapshot_id: i64, label_ids: Option<u64>) -> Result<Counts> {
    let label_ids = match label_ids {
        Some(n) => n.to_string(),
        None => format!("(SELECT COUNT(*) FROM ({REFERENCED_LABEL_IDS}))"),
    };
    let sql = format!(
        "SELECT de.n, pe.n, pe.properties, pe.navigation_properties, pe.constraints, pe.property_groups, pe.actions, en.n, en.members,
            {label_ids},
            (SELECT COUNT(*) FROM snapshot_labels sl JOIN labels l ON l.id = sl.label_row WHERE sl.snapshot_id = ?1 AND l.missing = 0),
            (SELECT COUNT(*) FROM snapshot_labels sl JOIN labels l ON l.id = sl.label_row WHERE sl.snapshot_id = ?1 AND l.missing = 1)
         FROM (SELECT COUNT(*) AS n FROM snapshot_objects WHERE snapshot_id = ?1 AND kind = 'data-entity') de,
              (SELECT COUNT(*) AS n, SUM(p.property_count) AS properties, SUM(p.navigation_property_count) AS navigation_properties,
                      SUM(p.constraint_count) AS constraints, SUM(p.property_group_count) AS property_groups, SUM(p.action_count) AS actions
                 FROM snapshot_objects so JOIN public_entities p ON p.object_id = so.object_id
                WHERE so.snapshot_id = ?1 AND so.kind = 'public-entity') pe,
              (SELECT COUNT(*) AS n, SUM(e.member_count) AS members
                 FROM snapshot_objects so JOIN enumerations e ON e.object_id = so.object_id
                WHERE so.snapshot_id = ?1 AND so.kind = 'enumeration') en"
    );
    query_opt(store, &sql, &params![snapshot_id], read_counts)?.ok_or_else(|| Error::internal("count query returned no row"))
}

/// Counts from a row of twelve columns in the order of [`Counts`]' fields (null reads as 0).
fn read_counts(r: Row<'_>) -> Result<Counts> {
    let n = |i| r.opt_int(i).map(|v| v.unwrap_or(0) as u64);
    Ok(Counts {
        data_entities: n(0)?,
        public_entities: n(1)?,
        properties: n(2)?,
        navigation_properties: n(3)?,
        constraints: n(4)?,
        property_groups: n(5)?,
        actions: n(6)?,
        enumerations: n(7)?,
        members: n(8)?,
        label_ids: n(9)?,
        labels: n(10)?,
        labels_missing: n(11)?,
    })
}

/// The stored counts of a complete snapshot.
pub fn stored_counts(store: &dyn Store, snapshot_id: i64) -> Result<Counts> {
    query_opt(
        store,
        "SELECT data_entities, public_entities, properties, navigation_properties, constraints, property_groups, actions,
                enumerations, members, label_ids, labels, labels_missing FROM snapshots WHERE id = ?1 AND state = 'complete'",
        &params![snapshot_id],
        read_counts,
    )?
    .ok_or_else(|| Error::not_found(format!("snapshot {snapshot_id} is not complete")))
}

/// Makes a building snapshot visible: records its counts, marks it complete, and points the
/// environment — and every environment on a snapshot of the same version that this one covers —
/// at it. One transaction: readers see the old snapshot or the new one, nothing in between.
pub fn complete(store: &dyn Store, snapshot_id: i64, environment_id: i64, label_ids: Option<u64>, now_ms: i64) -> Result<Counts> {
    in_transaction(store, TxMode::Immediate, || {
        let snapshot =
            get(store, snapshot_id)?.ok_or_else(|| Error::internal(format!("snapshot {snapshot_id} vanished while building")))?;
        let counts = count(store, snapshot_id, label_ids)?;
        exec(
            store,
            "UPDATE snapshots SET state = 'complete', completed_ms = ?2,
                data_entities = ?3, public_entities = ?4, properties = ?5, navigation_properties = ?6, constraints = ?7,
                property_groups = ?8, actions = ?9, enumerations = ?10, members = ?11, label_ids = ?12, labels = ?13, labels_missing = ?14
             WHERE id = ?1",
            &params![
                snapshot_id,
                now_ms,
                counts.data_entities as i64,
                counts.public_entities as i64,
                counts.properties as i64,
                counts.navigation_properties as i64,
                counts.constraints as i64,
                counts.property_groups as i64,
                counts.actions as i64,
                counts.enumerations as i64,
                counts.members as i64,
                counts.label_ids as i64,
                counts.labels as i64,
                counts.labels_missing as i64
            ],
        )?;
        exec(store, "DELETE FROM snapshot_phases WHERE snapshot_id = ?1", &params![snapshot_id])?;
        let covered: Vec<i64> = complete_for_version(store, snapshot.version_id)?
            .into_iter()
            .filter(|s| s.id != snapshot_id && snapshot.coverage.covers(&s.coverage))
            .map(|s| s.id)
            .collect();
        for old in covered {
            exec(store, "UPDATE environments SET snapshot_id = ?1 WHERE snapshot_id = ?2", &params![snapshot_id, old])?;
        }
        point_environment(store, environment_id, snapshot_id, now_ms)?;
        Ok(counts)
    })
}

/// Points an environment's readers at a complete snapshot (call inside a transaction).
pub fn point_environment(store: &dyn Store, environment_id: i64, snapshot_id: i64, now_ms: i64) -> Result<()> {
    exec(store, "UPDATE environments SET snapshot_id = ?2, synced_ms = ?3 WHERE id = ?1", &params![environment_id, snapshot_id, now_ms])?;
    Ok(())
}
