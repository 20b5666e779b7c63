//! Running a search: candidates from the full-text indexes, tier by tier, filtered and scoped to one
//! snapshot.
//!
//! Ranking tiers: an exact name (or entity set name) first, then a name that starts with the query,
//! then a name with the query's words inside it, then a label text that matches. Within a tier,
//! entities come before enumerations, actions and properties, shorter names before longer, then
//! names and entities in order regardless of (ASCII) case.

use super::{index, words};
use crate::error::{Error, Result};
use crate::ports::{Store, Value};
use crate::read::environment::Scope;
use crate::sql::{Row, json_strings, query_map, query_opt};
use crate::{params, row};

pub use crate::wit::types::{MatchKind, ObjectKind, SearchFilters as Filters, SearchHit as Hit, SearchQuery as Query};

/// A page of hits and how many there are in all.
#[derive(Clone, Debug, PartialEq)]
pub struct Results {
    /// Matches over every page, counted up to [`TOTAL_CAP`].
    pub total: u64,
    /// False when there are more matches than `total`: the count stopped at [`TOTAL_CAP`].
    pub total_exact: bool,
    pub hits: Vec<Hit>,
}

/// Totals are counted exactly up to this many matches. Counting costs a probe per match, and a
/// reader needs "more than 200" no more precisely; the page itself never depends on it.
pub const TOTAL_CAP: u64 = 200;

/// A count of matches as a total: itself up to [`TOTAL_CAP`], else the cap and not exact.
fn capped(found: u64) -> (u64, bool) {
    if found > TOTAL_CAP { (TOTAL_CAP, false) } else { (found, true) }
}

/// A hit from the first five columns of a row: kind, name, alias, owner, label id.
fn read_hit(r: &Row<'_>, matched: MatchKind) -> Result<Hit> {
    let kind = r.text(0)?;
    Ok(Hit {
        kind: ObjectKind::parse(&kind).ok_or_else(|| Error::internal(format!("unknown object kind {kind:?} in the search index")))?,
        name: r.text(1)?,
        entity_set_name: r.opt_text(2)?,
        entity: r.opt_text(3)?,
        label_id: r.opt_text(4)?,
        label: None,
        matched,
    })
}

/// Up to this many name matches, a search ranks every match in one statement; past it, tier by
/// tier in id order.
const FEW: u64 = 100;

const ALL_KINDS: [ObjectKind; 5] =
    [ObjectKind::DataEntity, ObjectKind::PublicEntity, ObjectKind::Enumeration, ObjectKind::Action, ObjectKind::Property];

const TIERS: [MatchKind; 4] = [MatchKind::Exact, MatchKind::Prefix, MatchKind::Word, MatchKind::Label];

/// Whether the item `si` belongs to the snapshot `?1`: one probe of an index whose entries carry
/// the snapshot (a secondary index of a WITHOUT ROWID table holds its key). Checking candidates one
/// by one is far cheaper than listing the snapshot's ten thousand objects for every query.
const IN_SNAPSHOT: &str = "EXISTS (SELECT 1 FROM snapshot_objects so INDEXED BY snapshot_objects_by_object
    WHERE so.object_id = si.object_id AND so.snapshot_id = ?1)";

/// The name or entity set name is the text (`?2`, lower-cased, without separators).
const EXACT: &str = "(lower(si.name) = ?2 OR lower(coalesce(si.alias, '')) = ?2)";
/// The name or entity set name starts with the text (an exact name does too).
const PREFIX: &str = "(substr(lower(si.name), 1, length(?2)) = ?2 OR substr(lower(coalesce(si.alias, '')), 1, length(?2)) = ?2)";

/// The parameters every statement of one search shares, by position.
const SNAPSHOT: usize = 1;
const FIRST_FILTER: usize = 11;

/// The FTS5 expressions for a text: each token as a prefix, tokens ANDed; a PascalCase token also
/// matches as its words. Tokens are alphanumeric, so quoting them is enough.
struct Expressions {
    /// The tokens run together, lower-cased: what an exact or prefix name is compared with.
    compact: String,
    /// Names that are the text, as one token of the name or entity set name.
    exact: String,
    /// Names with a token that starts with the text.
    prefix: String,
    /// Names with the text inside them: the text as a prefix, or each of its words as a prefix.
    names: String,
    /// Label texts with each word as a prefix.
    labels: String,
    /// The text's words, lower-cased.
    words: Vec<String>,
}

fn fts_expressions(text: &str) -> Option<Expressions> {
    let tokens: Vec<&str> = text.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty()).collect();
    if tokens.is_empty() {
        return None;
    }
    let compact: String = tokens.concat().to_lowercase();
    let words: Vec<String> = tokens.iter().flat_map(|t| words::split(t)).map(|w| w.to_lowercase()).collect();
    let and = |ws: &[String]| ws.iter().map(|w| format!("\"{w}\"*")).collect::<Vec<_>>().join(" AND ");
    Some(Expressions {
        exact: format!("{{name alias}} : \"{compact}\""),
        prefix: format!("{{name alias}} : \"{compact}\"*"),
        names: format!("{{name alias words}} : (\"{compact}\"* OR ({}))", and(&words)),
        labels: and(&words),
        compact,
        words,
    })
}

/// Runs `q` over `scope`'s snapshot, matching label texts in `language`. `q.filters.entity`, when
/// set, is the canonical public entity name.
///
/// A search with few name matches ranks all its matches in one statement. With many, each tier is
/// read in id order, which is rank order but within a bucket ([`index::bucket`]): the page takes a
/// tier's first matches up to the last one it needs, plus the rest of that one's bucket, and ranks
/// those exactly; nothing past them is read but to count them, up to the cap.
pub fn run(store: &dyn Store, scope: &Scope, q: &Query, language: &str) -> Result<Results> {
    let ex = fts_expressions(&q.text)
        .ok_or_else(|| Error::invalid_input(format!("nothing to search for in {:?}: use letters or digits", q.text)))?;
    let mut kinds: Vec<ObjectKind> = if q.kinds.is_empty() { ALL_KINDS.to_vec() } else { q.kinds.clone() };
    if q.filters.entity.is_some() {
        kinds.retain(|k| matches!(k, ObjectKind::Property | ObjectKind::Action));
    }
    let empty = Results { total: 0, total_exact: true, hits: Vec::new() };
    let ranks: Vec<i64> = kinds.iter().map(|k| index::kind_rank(k.as_str())).collect();
    let (Some(&low), Some(&high)) = (ranks.iter().min(), ranks.iter().max()) else { return Ok(empty) };
    let owner = match &q.filters.entity {
        None => None,
        Some(entity) => {
            let found = query_opt(
                store,
                "SELECT object_id FROM snapshot_objects WHERE snapshot_id = ?1 AND kind = 'public-entity' AND name = ?2 COLLATE NOCASE AND name = ?2",
                &params![scope.snapshot_id, entity.as_str()],
                |r| r.int(0),
            )?;
            match found {
                Some(id) => Some(id),
                None => return Ok(empty),
            }
        }
    };
    let literal = format!("{{literal_label}} : ({})", ex.labels);
    let mut params: Vec<Value> = row![
        scope.snapshot_id,
        ex.compact.as_str(),
        ex.names.as_str(),
        ex.labels.as_str(),
        language,
        literal,
        ex.exact.as_str(),
        ex.prefix.as_str(),
        low << index::KIND_SHIFT,
        ((high + 1) << index::KIND_SHIFT) - 1
    ];
    params.push(Value::from(owner.unwrap_or(0)));
    debug_assert_eq!(params.len(), FIRST_FILTER);
    let next = |v: Value, params: &mut Vec<Value>| {
        params.push(v);
        format!("?{}", params.len())
    };
    let kind_list = kinds.iter().map(|k| next(Value::from(k.as_str()), &mut params)).collect::<Vec<_>>().join(", ");
    let mut conditions = vec![format!("si.kind IN ({kind_list})"), IN_SNAPSHOT.to_owned()];
    if owner.is_some() {
        conditions.push("si.object_id = ?11".to_owned());
    }

    // Attribute filters, applied through the data entity (for entities, properties and actions):
    // one probe per candidate, by the object itself or by the public entity's name.
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
    if !data_conditions.is_empty() {
        let data = data_conditions.join(" AND ");
        conditions.push(format!(
            "CASE si.kind
                WHEN 'data-entity' THEN EXISTS (SELECT 1 FROM data_entities d WHERE d.object_id = si.object_id AND {data})
                WHEN 'enumeration' THEN 0
                ELSE EXISTS (SELECT 1 FROM data_entities d INDEXED BY data_entities_by_public_name
                    WHERE d.public_entity_name = (CASE si.kind WHEN 'public-entity' THEN si.name ELSE si.owner END) COLLATE NOCASE
                      AND d.public_entity_name = (CASE si.kind WHEN 'public-entity' THEN si.name ELSE si.owner END) AND {data}
                      AND EXISTS (SELECT 1 FROM snapshot_objects so INDEXED BY snapshot_objects_by_object
                          WHERE so.object_id = d.object_id AND so.snapshot_id = ?{SNAPSHOT}))
             END"
        ));
    }
    if let Some(v) = q.filters.read_only {
        let p = next(Value::from(v), &mut params);
        // A property or action is stored with its public entity: `si.object_id` is that entity.
        conditions.push(format!(
            "CASE si.kind
                WHEN 'data-entity' THEN EXISTS (SELECT 1 FROM data_entities d WHERE d.object_id = si.object_id AND d.is_read_only = {p})
                WHEN 'enumeration' THEN 0
                ELSE EXISTS (SELECT 1 FROM public_entities p WHERE p.object_id = si.object_id AND p.is_read_only = {p})
             END"
        ));
    }
    let filters = conditions.join(" AND ");

    // Name matches of a tier (`tier`: a condition on `si`), listed by the full-text index in id
    // order; with an entity, its items that are among the name matches (`name_matches`, see below).
    let names = |expression: usize, tier: &str| match owner {
        None => format!(
            "FROM search_fts JOIN search_items si ON si.id = search_fts.rowid
             WHERE search_fts MATCH ?{expression} AND search_fts.rowid BETWEEN ?9 AND ?10 AND {tier} AND {filters}"
        ),
        Some(_) => format!("FROM search_items si WHERE si.id IN name_matches AND {tier} AND {filters}"),
    };
    // Label matches that are no name match: found through the texts, so in no useful order.
    let labels = |name_matches: &str| {
        format!(
            "FROM search_items si
             WHERE si.id IN (
                SELECT li.id FROM label_fts JOIN labels l ON l.id = label_fts.rowid
                JOIN snapshot_labels sl ON sl.label_row = l.id AND sl.snapshot_id = ?1
                JOIN search_items li ON li.label_id = l.label_id AND li.id BETWEEN ?9 AND ?10
                WHERE label_fts MATCH ?4 AND l.language = ?5 AND l.missing = 0
                UNION SELECT rowid FROM search_fts WHERE search_fts MATCH ?6 AND rowid BETWEEN ?9 AND ?10)
             AND si.id NOT IN {name_matches} AND {filters}"
        )
    };
    const NAME_MATCHES: &str = "(SELECT rowid FROM search_fts WHERE search_fts MATCH ?3 AND rowid BETWEEN ?9 AND ?10)";
    let with = |extra: &[Value]| -> Vec<Value> { params.iter().chain(extra).cloned().collect() };
    let at = |i: usize| format!("?{}", params.len() + i);
    let count = |source: &str, up_to: u64| -> Result<u64> {
        let sql = format!("SELECT count(*) FROM (SELECT 1 {source} LIMIT {})", at(1));
        Ok(query_opt(store, &sql, &with(&[Value::from(up_to as i64)]), |r| r.int(0))?.unwrap_or(0) as u64)
    };
    let order = format!("si.id >> {}, length(si.name), si.name COLLATE NOCASE, si.owner COLLATE NOCASE", index::KIND_SHIFT);

    if owner.is_some()
        && let Some(results) = in_one_entity(store, &params, &filters, &ex, q)?
    {
        return Ok(results);
    }
    // An entity's items are few: they are always ranked at once.
    let names_total = if owner.is_some() { 0 } else { count(&names(3, "1"), TOTAL_CAP + 1)? };
    if owner.is_some() || names_total <= FEW {
        let sql = format!(
            "WITH name_matches(id) AS MATERIALIZED {NAME_MATCHES},
             hits(item, tier) AS (
                SELECT si.id, CASE WHEN {EXACT} THEN 0 WHEN {PREFIX} THEN 1 ELSE 2 END {}
                UNION ALL SELECT si.id, 3 {})
             SELECT si.kind, si.name, si.alias, si.owner, si.label_id, h.tier, COUNT(*) OVER ()
             FROM hits h JOIN search_items si ON si.id = h.item
             ORDER BY h.tier, {order} LIMIT {} OFFSET {}",
            names(3, "1"),
            labels("name_matches"),
            at(1),
            at(2)
        );
        let mut all = 0;
        let hits = query_map(store, &sql, &with(&[Value::from(q.limit), Value::from(q.offset)]), |r| {
            all = r.int(6)? as u64;
            read_hit(&r, TIERS[(r.int(5)? as usize).min(3)])
        })?;
        if hits.is_empty() && q.offset > 0 {
            // The page is past the end; count from the start.
            let all = run(store, scope, &Query { offset: 0, limit: 1, ..q.clone() }, language)?;
            return Ok(Results { total: all.total, total_exact: all.total_exact, hits });
        }
        let (total, total_exact) = capped(all);
        return Ok(Results { total, total_exact, hits });
    }

    // Many name matches: tier by tier, each page read in id order as far as it needs.
    let want = u64::from(q.offset) + u64::from(q.limit);
    let mut hits: Vec<Hit> = Vec::new();
    let tiers = [names(7, EXACT), names(8, &format!("{PREFIX} AND NOT {EXACT}")), names(3, &format!("NOT {PREFIX}")), labels(NAME_MATCHES)];
    for (tier, source) in tiers.iter().enumerate() {
        let need = want.saturating_sub(hits.len() as u64);
        if need == 0 {
            break;
        }
        // The tier's first `need` matches in rank order are among its matches up to the `need`-th
        // in id order and the rest of that one's bucket. (Label matches come in no useful order.)
        let id = if tier < 3 { "search_fts.rowid" } else { "si.id" };
        let sql = format!(
            "SELECT si.kind, si.name, si.alias, si.owner, si.label_id {source}
             AND {id} < coalesce((SELECT ((x >> {bits}) + 1) << {bits} FROM (SELECT {id} AS x {source} ORDER BY {id} LIMIT 1 OFFSET {})), {})
             ORDER BY {order} LIMIT {}",
            at(1),
            i64::MAX,
            at(2),
            bits = index::SEQUENCE_BITS
        );
        let page = query_map(store, &sql, &with(&[Value::from(need as i64 - 1), Value::from(need as i64)]), |r| read_hit(&r, TIERS[tier]))?;
        hits.extend(page);
    }
    let (total, total_exact) = if names_total > TOTAL_CAP {
        (TOTAL_CAP, false)
    } else {
        capped(names_total + count(&labels(NAME_MATCHES), TOTAL_CAP + 1 - names_total)?)
    };
    let hits = hits.into_iter().skip(q.offset as usize).take(q.limit as usize).collect();
    Ok(Results { total, total_exact, hits })
}

/// The items of one entity that match `q`, ranked, when every name and literal label among them
/// is ASCII (F&O names always are); `None` otherwise, for the statements above to answer.
///
/// An entity's items are few (hundreds at most): they are read whole and matched here as the
/// full-text index would match them, rather than by listing every item in the database whose names
/// match (thousands, for a common word) and keeping the entity's. On ASCII text the index's
/// tokenizer is exactly "runs of letters and digits, lower-cased". Label texts, which may need the
/// tokenizer's folding of diacritics, are still matched by the index.
fn in_one_entity(store: &dyn Store, params: &[Value], filters: &str, ex: &Expressions, q: &Query) -> Result<Option<Results>> {
    if !q.text.is_ascii() {
        return Ok(None);
    }
    struct Item {
        hit: Hit,
        words: String,
        literal: Option<String>,
    }
    let items = query_map(
        store,
        &format!(
            "SELECT si.kind, si.name, si.alias, si.owner, si.label_id, si.words, si.literal_label
             FROM search_items si WHERE {filters}"
        ),
        params,
        |r| Ok(Item { hit: read_hit(&r, MatchKind::Label)?, words: r.text(5)?, literal: r.opt_text(6)? }),
    )?;
    let ascii = |s: &Option<String>| s.as_deref().is_none_or(str::is_ascii);
    if !items.iter().all(|i| i.hit.name.is_ascii() && ascii(&i.hit.entity_set_name) && ascii(&i.literal)) {
        return Ok(None);
    }
    let tokens = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_ascii_alphanumeric()).filter(|t| !t.is_empty()).map(str::to_ascii_lowercase).collect()
    };
    let all_words = |found: &[String]| ex.words.iter().all(|w| found.iter().any(|t| t.starts_with(w.as_str())));
    let compact = ex.compact.as_str();
    let mut ranked: Vec<(usize, Hit)> = Vec::new();
    let mut unmatched: Vec<Hit> = Vec::new();
    for item in items {
        let h = item.hit;
        let mut found = tokens(&h.name);
        found.extend(h.entity_set_name.as_deref().map(tokens).unwrap_or_default());
        found.extend(tokens(&item.words));
        let names = [Some(h.name.to_ascii_lowercase()), h.entity_set_name.as_ref().map(|a| a.to_ascii_lowercase())];
        let names = names.iter().flatten();
        let tier = if names.clone().any(|n| n == compact) {
            Some(0)
        } else if names.clone().any(|n| n.starts_with(compact)) {
            Some(1)
        } else if found.iter().any(|t| t.starts_with(compact)) || all_words(&found) {
            Some(2)
        } else if item.literal.as_deref().is_some_and(|l| all_words(&tokens(l))) {
            Some(3)
        } else {
            None
        };
        match tier {
            Some(tier) => ranked.push((tier, h)),
            None if h.label_id.as_deref().is_some_and(crate::metadata::is_label_reference) => unmatched.push(h),
            None => {}
        }
    }
    // Label texts of the rest, in the language searched.
    let ids: Vec<&str> = unmatched.iter().filter_map(|h| h.label_id.as_deref()).collect();
    if !ids.is_empty() {
        let matching: std::collections::BTreeSet<String> = query_map(
            store,
            "SELECT l.label_id FROM label_fts JOIN labels l ON l.id = label_fts.rowid
             JOIN snapshot_labels sl ON sl.label_row = l.id AND sl.snapshot_id = ?1
             WHERE label_fts MATCH ?2 AND l.language = ?3 AND l.missing = 0 AND l.label_id IN (SELECT value FROM json_each(?4))",
            &[params[SNAPSHOT - 1].clone(), params[3].clone(), params[4].clone(), json_strings(&ids)?],
            |r| r.text(0),
        )?
        .into_iter()
        .collect();
        ranked.extend(unmatched.into_iter().filter(|h| h.label_id.as_ref().is_some_and(|id| matching.contains(id))).map(|h| (3, h)));
    }
    // The order of the statements' `ORDER BY`: NOCASE folds ASCII letters only.
    ranked.sort_by_cached_key(|(tier, h)| {
        (
            *tier,
            index::kind_rank(h.kind.as_str()),
            h.name.chars().count(),
            h.name.to_ascii_lowercase(),
            h.entity.as_deref().map(str::to_ascii_lowercase),
        )
    });
    let found = ranked.len() as u64;
    let hits =
        ranked.into_iter().skip(q.offset as usize).take(q.limit as usize).map(|(tier, h)| Hit { matched: TIERS[tier], ..h }).collect();
    let (total, total_exact) = capped(found);
    Ok(Some(Results { total, total_exact, hits }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_match_words_and_prefixes() {
        let ex = fts_expressions("CustomerGroup").unwrap();
        assert_eq!(ex.compact, "customergroup");
        assert_eq!(ex.exact, "{name alias} : \"customergroup\"");
        assert_eq!(ex.prefix, "{name alias} : \"customergroup\"*");
        assert_eq!(ex.names, "{name alias words} : (\"customergroup\"* OR (\"customer\"* AND \"group\"*))");
        assert_eq!(ex.labels, "\"customer\"* AND \"group\"*");
        assert!(fts_expressions(" -- ").is_none());
        assert_eq!(fts_expressions("sales order").unwrap().compact, "salesorder");
    }
}
