//! Running a search: candidates from the full-text indexes, ranked and filtered in one query, scoped
//! to one snapshot.
//!
//! Ranking tiers: an exact name (or entity set name) first, then a name that starts with the query,
//! then a name with the query's words inside it, then a label text that matches. Within a tier,
//! entities come before enumerations, actions and properties, and shorter names before longer.

use super::words;
use crate::error::{Error, Result};
use crate::ports::{Store, Value};
use crate::read::environment::Scope;
use crate::row;
use crate::sql::query_map;

pub use crate::wit::types::{MatchKind, ObjectKind, SearchFilters as Filters, SearchHit as Hit, SearchQuery as Query};

/// A page of hits and how many there are in all.
#[derive(Clone, Debug, PartialEq)]
pub struct Results {
    pub total: u64,
    pub hits: Vec<Hit>,
}

const ALL_KINDS: [ObjectKind; 5] =
    [ObjectKind::DataEntity, ObjectKind::PublicEntity, ObjectKind::Enumeration, ObjectKind::Action, ObjectKind::Property];

const TIERS: [MatchKind; 4] = [MatchKind::Exact, MatchKind::Prefix, MatchKind::Word, MatchKind::Label];

/// Whether the item `si` belongs to the snapshot `?1`: one probe of an index whose entries carry
/// the snapshot (a secondary index of a WITHOUT ROWID table holds its key). Checking candidates one
/// by one is far cheaper than listing the snapshot's ten thousand objects for every query.
const IN_SNAPSHOT: &str = "EXISTS (SELECT 1 FROM snapshot_objects so INDEXED BY snapshot_objects_by_object
    WHERE so.object_id = si.object_id AND so.snapshot_id = ?1)";

/// The FTS5 expressions for a text: each token as a prefix, tokens ANDed; a PascalCase token also
/// matches as its words. Tokens are alphanumeric, so quoting them is enough.
fn fts_expressions(text: &str) -> Option<(String, String, String)> {
    let tokens: Vec<&str> = text.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty()).collect();
    if tokens.is_empty() {
        return None;
    }
    let compact: String = tokens.concat().to_lowercase();
    let words: Vec<String> = tokens.iter().flat_map(|t| words::split(t)).map(|w| w.to_lowercase()).collect();
    let and = |ws: &[String]| ws.iter().map(|w| format!("\"{w}\"*")).collect::<Vec<_>>().join(" AND ");
    let names = format!("{{name alias words}} : (\"{compact}\"* OR ({}))", and(&words));
    Some((compact, names, and(&words)))
}

/// Runs `q` over `scope`'s snapshot, matching label texts in `language`. `q.filters.entity`, when
/// set, is the canonical public entity name.
pub fn run(store: &dyn Store, scope: &Scope, q: &Query, language: &str) -> Result<Results> {
    let (compact, names_match, labels_match) = fts_expressions(&q.text)
        .ok_or_else(|| Error::invalid_input(format!("nothing to search for in {:?}: use letters or digits", q.text)))?;
    let kinds: Vec<&str> =
        if q.kinds.is_empty() { ALL_KINDS.to_vec() } else { q.kinds.clone() }.into_iter().map(ObjectKind::as_str).collect();
    let literal_match = format!("{{literal_label}} : ({labels_match})");
    let mut params: Vec<Value> = row![scope.snapshot_id, names_match, compact, labels_match, language, literal_match];
    let next = |v: Value, params: &mut Vec<Value>| {
        params.push(v);
        format!("?{}", params.len())
    };
    let kind_list = kinds.iter().map(|k| next(Value::from(*k), &mut params)).collect::<Vec<_>>().join(", ");
    let mut conditions = vec![format!("si.kind IN ({kind_list})")];

    // Attribute filters, applied through the data entity (for entities, properties and actions).
    let mut data_conditions = Vec::new();
    if let Some(c) = &q.filters.category {
        data_conditions.push(format!("d.category = {} COLLATE NOCASE", next(Value::from(c.as_str()), &mut params)));
    }
    if let Some(v) = q.filters.data_service_enabled {
        data_conditions.push(format!("d.data_service_enabled = {}", next(Value::from(v), &mut params)));
    }
    if let Some(v) = q.filters.data_management_enabled {
        data_conditions.push(format!("d.data_management_enabled = {}", next(Value::from(v), &mut params)));
    }
    let mut ctes = String::new();
    if !data_conditions.is_empty() {
        ctes.push_str(&format!(
            ", allowed_data AS (SELECT d.object_id, d.public_entity_name FROM snapshot_objects so JOIN data_entities d ON d.object_id = so.object_id
                WHERE so.snapshot_id = ?1 AND so.kind = 'data-entity' AND {})",
            data_conditions.join(" AND ")
        ));
        conditions.push(
            "((si.kind = 'data-entity' AND si.object_id IN (SELECT object_id FROM allowed_data))
              OR (si.kind = 'public-entity' AND si.name IN (SELECT public_entity_name FROM allowed_data))
              OR (si.kind IN ('property', 'action') AND si.owner IN (SELECT public_entity_name FROM allowed_data)))"
                .to_owned(),
        );
    }
    if let Some(v) = q.filters.read_only {
        let p = next(Value::from(v), &mut params);
        ctes.push_str(&format!(
            ", read_only_public AS (SELECT p.name FROM snapshot_objects so JOIN public_entities p ON p.object_id = so.object_id
                WHERE so.snapshot_id = ?1 AND so.kind = 'public-entity' AND p.is_read_only = {p}),
               read_only_data AS (SELECT d.object_id FROM snapshot_objects so JOIN data_entities d ON d.object_id = so.object_id
                WHERE so.snapshot_id = ?1 AND so.kind = 'data-entity' AND d.is_read_only = {p})"
        ));
        conditions.push(
            "((si.kind = 'data-entity' AND si.object_id IN (SELECT object_id FROM read_only_data))
              OR (si.kind = 'public-entity' AND si.name IN (SELECT name FROM read_only_public))
              OR (si.kind IN ('property', 'action') AND si.owner IN (SELECT name FROM read_only_public)))"
                .to_owned(),
        );
    }
    if let Some(entity) = &q.filters.entity {
        conditions.push(format!("si.kind IN ('property', 'action') AND si.owner = {}", next(Value::from(entity.as_str()), &mut params)));
    }
    let limit = next(Value::from(q.limit), &mut params);
    let offset = next(Value::from(q.offset), &mut params);
    let sql = format!(
        "WITH name_hits AS (
            SELECT si.id AS item,
                   CASE WHEN lower(si.name) = ?3 OR lower(coalesce(si.alias, '')) = ?3 THEN 0
                        WHEN substr(lower(si.name), 1, length(?3)) = ?3 OR substr(lower(coalesce(si.alias, '')), 1, length(?3)) = ?3 THEN 1
                        ELSE 2 END AS tier
            FROM search_fts JOIN search_items si ON si.id = search_fts.rowid
            WHERE search_fts MATCH ?2 AND {IN_SNAPSHOT}),
         literal_hits AS (
            SELECT si.id AS item, 3 AS tier
            FROM search_fts JOIN search_items si ON si.id = search_fts.rowid
            WHERE search_fts MATCH ?6 AND {IN_SNAPSHOT}),
         label_hits AS (
            SELECT si.id AS item, 3 AS tier
            FROM label_fts JOIN labels l ON l.id = label_fts.rowid
            JOIN snapshot_labels sl ON sl.label_row = l.id AND sl.snapshot_id = ?1
            JOIN search_items si ON si.label_id = l.label_id
            WHERE label_fts MATCH ?4 AND l.language = ?5 AND l.missing = 0 AND {IN_SNAPSHOT}),
         hits AS (SELECT item, MIN(tier) AS tier FROM
            (SELECT * FROM name_hits UNION ALL SELECT * FROM literal_hits UNION ALL SELECT * FROM label_hits) GROUP BY item)
         {ctes}
         SELECT si.kind, si.name, si.alias, si.owner, si.label_id, h.tier, COUNT(*) OVER () AS total
         FROM hits h JOIN search_items si ON si.id = h.item
         WHERE {}
         ORDER BY h.tier,
                  CASE si.kind WHEN 'public-entity' THEN 0 WHEN 'data-entity' THEN 1 WHEN 'enumeration' THEN 2 WHEN 'action' THEN 3 ELSE 4 END,
                  length(si.name), si.name COLLATE NOCASE, si.owner COLLATE NOCASE
         LIMIT {limit} OFFSET {offset}",
        conditions.join(" AND ")
    );
    let mut total = 0u64;
    let hits = query_map(store, &sql, &params, |r| {
        total = r.int(6)? as u64;
        let kind = r.text(0)?;
        Ok(Hit {
            kind: ObjectKind::parse(&kind).ok_or_else(|| Error::internal(format!("unknown object kind {kind:?} in the search index")))?,
            name: r.text(1)?,
            entity_set_name: r.opt_text(2)?,
            entity: r.opt_text(3)?,
            label_id: r.opt_text(4)?,
            label: None,
            matched: TIERS[r.int(5)?.clamp(0, 3) as usize],
        })
    })?;
    if hits.is_empty() && q.offset > 0 {
        // The page is past the end; count from the start.
        let all = run(store, scope, &Query { offset: 0, limit: 1, ..q.clone() }, language)?;
        return Ok(Results { total: all.total, hits });
    }
    Ok(Results { total, hits })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_match_words_and_prefixes() {
        let (compact, names, labels) = fts_expressions("CustomerGroup").unwrap();
        assert_eq!(compact, "customergroup");
        assert_eq!(names, "{name alias words} : (\"customergroup\"* OR (\"customer\"* AND \"group\"*))");
        assert_eq!(labels, "\"customer\"* AND \"group\"*");
        assert!(fts_expressions(" -- ").is_none());
        let (compact, _, _) = fts_expressions("sales order").unwrap();
        assert_eq!(compact, "salesorder");
    }
}
