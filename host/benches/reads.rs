//! Latency of lookups and searches on the `full` data, through the real component and host, against
//! two lower bounds on the same database file: the core's own code run natively (`d365meta-guest`
//! with its `native` feature: same code and SQL, no component boundary), and the same SQL statements
//! run with rusqlite directly.
//!
//! Setup (untimed except as reported): the `full` scale synced once, labels in en-US, into a temporary
//! database, then one `Cache` opened on it and one native rusqlite connection configured as the host
//! configures its own (WAL, statement cache). Measured, after a warm-up pass:
//!
//! - `get_entity` for 200 names drawn deterministically from the dataset (a third data entity names,
//!   a third public entity names, a third entity set names), without and with labels resolved in
//!   en-US, over several rounds;
//! - `search` for a fixed set of queries (limit 20), repeated to about 2,000 samples;
//! - the floor of any export call: `list_environments` (one environment, one SELECT) and
//!   `compare_modules` of two empty lists (no SQL at all).
//!
//! The three sides take turns item by item (the order rotates by round), so that drift on a shared
//! machine hits all of them. Before measuring, every name and query is answered three ways and the
//! answers compared, so the lower bounds provably do the same work.
//!
//! `cargo bench -p d365meta --bench reads [-- [--rounds N] [--search-samples N] [--floor-samples N] [--json] [--analyze]]`
//!
//! `--analyze` runs SQLite's `ANALYZE` on the database after the sync (which the component does not
//! do): a what-if, to see what planner statistics would change.

mod common;

use common::*;
use d365meta::cache::{Cache, EntityLookup, LabelLanguages, ReadOptions, SearchFilters, SearchQuery, SearchResults};
use d365meta_simulator::{Dataset, EnvironmentSpec, Scale, Simulator};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LANGUAGE: &str = "en-US";

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench(args))
}

fn label_options(labels: bool) -> ReadOptions {
    ReadOptions { env: None, labels: labels.then(|| LabelLanguages { language: LANGUAGE.into(), fallback: vec![] }) }
}

/// One search of the fixed set.
#[derive(Clone)]
struct Case {
    label: String,
    query: SearchQuery,
    labels: bool,
}

fn filters() -> SearchFilters {
    SearchFilters { category: None, read_only: None, data_service_enabled: None, data_management_enabled: None, entity: None }
}

fn case(text: &str, kinds: &[&str], f: SearchFilters, labels: bool) -> Case {
    let mut label = format!("{text:?}");
    if !kinds.is_empty() {
        label.push_str(&format!(" kinds={}", kinds.join(",")));
    }
    if let Some(c) = &f.category {
        label.push_str(&format!(" category={c}"));
    }
    if let Some(v) = f.data_service_enabled {
        label.push_str(&format!(" data-service={v}"));
    }
    if let Some(v) = f.read_only {
        label.push_str(&format!(" read-only={v}"));
    }
    if let Some(e) = &f.entity {
        label.push_str(&format!(" entity={e}"));
    }
    if labels {
        label.push_str(" +labels");
    }
    Case {
        label,
        query: SearchQuery {
            text: text.into(),
            kinds: kinds.iter().map(|k| k.to_string()).collect(),
            filters: f,
            language: LANGUAGE.into(),
            limit: 20,
            offset: 0,
        },
        labels,
    }
}

fn search_cases(dataset: &Dataset) -> Vec<Case> {
    // An entity set to filter properties by: CustomersV3 when the dataset has it.
    let entity = dataset
        .public_entities
        .iter()
        .find(|e| e.entity_set_name == "CustomersV3")
        .or_else(|| dataset.public_entities.iter().max_by_key(|e| e.properties.len()))
        .map(|e| e.entity_set_name.clone())
        .expect("the dataset has public entities");
    let mut cases: Vec<Case> = [
        "customer",
        "CustCustomerV3Entity",
        "group",
        "sales order",
        "vend",
        "invoice",
        "NoYes",
        "CustomerGroupId",
        "dimension",
        "warehouse location",
    ]
    .iter()
    .map(|t| case(t, &[], filters(), false))
    .collect();
    cases.push(case("customer", &["public-entity"], filters(), false));
    cases.push(case("group", &["property"], SearchFilters { entity: Some(entity), ..filters() }, false));
    cases.push(case(
        "order",
        &[],
        SearchFilters { category: Some("Transaction".into()), data_service_enabled: Some(true), ..filters() },
        false,
    ));
    cases.push(case("name", &["data-entity", "public-entity"], SearchFilters { read_only: Some(false), ..filters() }, false));
    cases.push(case("invoice", &["enumeration"], filters(), false));
    cases.push(case("customer", &[], filters(), true));
    cases
}

/// 200 names: data entity names, public entity names and entity set names in turn, each list walked
/// with a fixed stride.
fn entity_names(dataset: &Dataset) -> Vec<String> {
    let (de, pe) = (&dataset.data_entities, &dataset.public_entities);
    (0..200)
        .map(|i| {
            let k = i / 3;
            match i % 3 {
                0 => de[(k * 73 + 5) % de.len()].name.clone(),
                1 => pe[(k * 59 + 11) % pe.len()].name.clone(),
                _ => pe[(k * 61 + 17) % pe.len()].entity_set_name.clone(),
            }
        })
        .collect()
}

// ---- what both sides answer, reduced to compare them ----

#[derive(Debug, PartialEq, Eq)]
struct EntitySummary {
    data_entity: Option<String>,
    public_entity: Option<String>,
    properties: usize,
    navigation_properties: usize,
    constraints: usize,
    property_groups: usize,
    members: usize,
    actions: usize,
    parameters: usize,
    /// Distinct label ids that got a text.
    labelled: usize,
}

fn summarize_entity(r: &EntityLookup) -> EntitySummary {
    let mut labelled = BTreeSet::new();
    let mut add = |id: &Option<String>, text: &Option<String>| {
        if let (Some(id), Some(_)) = (id, text) {
            labelled.insert(id.clone());
        }
    };
    if let Some(d) = &r.data_entity {
        add(&d.label_id, &d.label);
    }
    if let Some(p) = &r.public_entity {
        add(&p.label_id, &p.label);
        for prop in &p.properties {
            add(&prop.label_id, &prop.label);
        }
    }
    let p = r.public_entity.as_ref();
    EntitySummary {
        data_entity: r.data_entity.as_ref().map(|d| d.name.clone()),
        public_entity: p.map(|p| p.name.clone()),
        properties: p.map_or(0, |p| p.properties.len()),
        navigation_properties: p.map_or(0, |p| p.navigation_properties.len()),
        constraints: p.map_or(0, |p| p.navigation_properties.iter().map(|n| n.constraints.len()).sum()),
        property_groups: p.map_or(0, |p| p.property_groups.len()),
        members: p.map_or(0, |p| p.property_groups.iter().map(|g| g.properties.len()).sum()),
        actions: p.map_or(0, |p| p.actions.len()),
        parameters: p.map_or(0, |p| p.actions.iter().map(|a| a.parameters.len()).sum()),
        labelled: labelled.len(),
    }
}

#[derive(Debug, PartialEq, Eq)]
struct SearchSummary {
    total: u64,
    hits: Vec<(String, String, Option<String>)>,
    labelled: usize,
}

fn summarize_search(r: &SearchResults) -> SearchSummary {
    SearchSummary {
        total: r.total,
        hits: r.hits.iter().map(|h| (h.kind.clone(), h.name.clone(), h.entity.clone())).collect(),
        labelled: r.hits.iter().filter(|h| h.label.is_some()).filter_map(|h| h.label_id.clone()).collect::<BTreeSet<_>>().len(),
    }
}

// ---- the native side: the component's statements, run with rusqlite directly ----

/// A connection configured as the host's `Database` (WAL, synchronous NORMAL, foreign keys, a
/// statement cache of 256), reading rows into owned values as the host's `execute` does.
struct Native {
    conn: Connection,
    /// When set, time spent per statement (keyed by its first words): for the breakdown pass only.
    profile: std::cell::RefCell<Option<BTreeMap<String, (u64, Duration)>>>,
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Integer(i) => *i,
        _ => 0,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Text(s) => Some(s.clone()),
        _ => None,
    }
}

fn is_label_reference(id: &str) -> bool {
    id.starts_with('@') && id.len() > 1
}

/// Public entity details, as the component assembles them (rows grouped under their parents).
struct NativePublic {
    name: String,
    label_id: Option<String>,
    properties: Vec<Vec<Value>>,
    navigation: Vec<(Vec<Value>, Vec<Vec<Value>>)>,
    groups: Vec<(Vec<Value>, Vec<String>)>,
    actions: Vec<(Vec<Value>, Vec<Vec<Value>>)>,
}

/// Groups `children` (sorted by their first column, the parent's position) under `parents` (whose
/// first column is the position).
fn group<T>(parents: Vec<Vec<Value>>, children: Vec<Vec<Value>>, child: impl Fn(Vec<Value>) -> T) -> Vec<(Vec<Value>, Vec<T>)> {
    let mut children = children.into_iter().peekable();
    parents
        .into_iter()
        .map(|p| {
            let position = int(&p[0]);
            let mut mine = Vec::new();
            while let Some(c) = children.next_if(|c| int(&c[0]) == position) {
                mine.push(child(c));
            }
            (p, mine)
        })
        .collect()
}

// The SQL below is copied from the component (guest/src/read/environment.rs, guest/src/read/entities.rs,
// guest/src/read/labels.rs, guest/src/search/query.rs) so that both sides run the same statements.

const SCOPE: &str = "SELECT e.base_url, e.snapshot_id, s.languages FROM environments e LEFT JOIN snapshots s ON s.id = e.snapshot_id WHERE e.snapshot_id IS NOT NULL ORDER BY e.synced_ms DESC, e.id DESC LIMIT 1";
const FIND: &str = "SELECT object_id FROM snapshot_objects WHERE snapshot_id = ?1 AND kind = ?2 AND name = ?3 COLLATE NOCASE
         ORDER BY name = ?3 DESC LIMIT 1";
const FIND_BY_ENTITY_SET: &str = "SELECT p.object_id FROM public_entities p JOIN snapshot_objects so ON so.object_id = p.object_id
         WHERE so.snapshot_id = ?1 AND so.kind = 'public-entity' AND p.entity_set_name = ?2 COLLATE NOCASE
         ORDER BY p.entity_set_name = ?2 DESC LIMIT 1";
const DATA_ENTITY_OF_PUBLIC: &str = "SELECT d.object_id FROM data_entities d JOIN snapshot_objects so ON so.object_id = d.object_id
         WHERE so.snapshot_id = ?1 AND so.kind = 'data-entity' AND d.public_entity_name = ?2 COLLATE NOCASE
         ORDER BY d.public_entity_name = ?2 DESC LIMIT 1";
const DATA_ENTITY: &str = "SELECT name, public_entity_name, public_collection_name, label_id, category, data_service_enabled, data_management_enabled, is_read_only
         FROM data_entities WHERE object_id = ?1";
const PUBLIC_ENTITY: &str =
    "SELECT name, entity_set_name, label_id, is_read_only, configuration_enabled FROM public_entities WHERE object_id = ?1";
const PROPERTIES: &str =
    "SELECT name, type_name, data_type, label_id, is_key, is_mandatory, configuration_enabled, allow_edit, allow_edit_on_create,
                is_dimension, dimension_relation, is_dynamic_dimension, dimension_legal_entity_property, dimension_type_property
         FROM entity_properties WHERE object_id = ?1 ORDER BY position";
const CONSTRAINTS: &str = "SELECT navigation_position, kind, property, referenced_property, related_property, value, value_str
         FROM navigation_constraints WHERE object_id = ?1 ORDER BY navigation_position, position";
const NAVIGATION: &str = "SELECT position, name, related_entity, related_relation_name, cardinality FROM navigation_properties WHERE object_id = ?1 ORDER BY position";
const MEMBERS: &str =
    "SELECT group_position, property_name FROM property_group_members WHERE object_id = ?1 ORDER BY group_position, position";
const GROUPS: &str = "SELECT position, name FROM property_groups WHERE object_id = ?1 ORDER BY position";
const PARAMETERS: &str =
    "SELECT action_position, name, type_name, is_collection FROM action_parameters WHERE object_id = ?1 ORDER BY action_position, position";
const ACTIONS: &str = "SELECT position, name, binding_kind, field_lookup, NULL, returns, return_type_name, return_is_collection
         FROM entity_actions WHERE object_id = ?1 ORDER BY position";
const PUBLIC_NAME: &str = "SELECT name FROM public_entities WHERE object_id = ?1";

impl Native {
    fn open(path: &Path) -> anyhow::Result<Native> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
        conn.set_prepared_statement_cache_capacity(256);
        Ok(Native { conn, profile: std::cell::RefCell::new(None) })
    }

    /// Runs one statement and reads every row into owned values (what the host's `execute` does
    /// before handing rows to the component).
    fn rows(&self, sql: &str, params: &[Value]) -> anyhow::Result<Vec<Vec<Value>>> {
        if self.profile.borrow().is_none() {
            return self.rows_unprofiled(sql, params);
        }
        let started = Instant::now();
        let rows = self.rows_unprofiled(sql, params)?;
        let spent = started.elapsed();
        let key: String = sql.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(72).collect();
        let mut profile = self.profile.borrow_mut();
        let entry = profile.as_mut().unwrap().entry(key).or_default();
        entry.0 += 1;
        entry.1 += spent;
        Ok(rows)
    }

    fn rows_unprofiled(&self, sql: &str, params: &[Value]) -> anyhow::Result<Vec<Vec<Value>>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let width = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(Value::try_from(row.get_ref(i)?).unwrap_or(Value::Null));
            }
            out.push(values);
        }
        Ok(out)
    }

    fn first(&self, sql: &str, params: &[Value]) -> anyhow::Result<Option<Vec<Value>>> {
        Ok(self.rows(sql, params)?.into_iter().next())
    }

    fn snapshot(&self) -> anyhow::Result<i64> {
        let row = self.first(SCOPE, &[])?.ok_or_else(|| anyhow::anyhow!("nothing synced"))?;
        // The component also parses the snapshot's languages here.
        black_box(text(&row[2]));
        Ok(int(&row[1]))
    }

    fn find(&self, snap: i64, kind: &str, name: &str) -> anyhow::Result<Option<i64>> {
        Ok(self.first(FIND, &[Value::Integer(snap), Value::Text(kind.into()), Value::Text(name.into())])?.map(|r| int(&r[0])))
    }

    fn find_by_entity_set(&self, snap: i64, set: &str) -> anyhow::Result<Option<i64>> {
        Ok(self.first(FIND_BY_ENTITY_SET, &[Value::Integer(snap), Value::Text(set.into())])?.map(|r| int(&r[0])))
    }

    fn data_entity(&self, id: i64) -> anyhow::Result<Option<Vec<Value>>> {
        self.first(DATA_ENTITY, &[Value::Integer(id)])
    }

    fn public_entity(&self, id: i64) -> anyhow::Result<Option<NativePublic>> {
        let p = [Value::Integer(id)];
        let Some(head) = self.first(PUBLIC_ENTITY, &p)? else { return Ok(None) };
        let properties = self.rows(PROPERTIES, &p)?;
        let constraints = self.rows(CONSTRAINTS, &p)?;
        let navigation = group(self.rows(NAVIGATION, &p)?, constraints, |c| c);
        let members = self.rows(MEMBERS, &p)?;
        let groups = group(self.rows(GROUPS, &p)?, members, |m| text(&m[1]).unwrap_or_default());
        let parameters = self.rows(PARAMETERS, &p)?;
        let actions = group(self.rows(ACTIONS, &p)?, parameters, |a| a);
        Ok(Some(NativePublic {
            name: text(&head[0]).unwrap_or_default(),
            label_id: text(&head[2]),
            properties,
            navigation,
            groups,
            actions,
        }))
    }

    /// Label texts for `ids` in `languages` (guest/src/read/labels.rs `resolve`): the number of
    /// distinct ids that have a text.
    fn labels(&self, snap: i64, ids: &[&str], languages: &[&str]) -> anyhow::Result<usize> {
        let mut references: Vec<&str> = ids.iter().copied().filter(|id| is_label_reference(id)).collect();
        references.sort_unstable();
        references.dedup();
        let mut found: BTreeMap<(String, String), Option<String>> = BTreeMap::new();
        for chunk in references.chunks(400) {
            let placeholders = (0..chunk.len()).map(|i| format!("?{}", i + 2)).collect::<Vec<_>>().join(",");
            let mut params = vec![Value::Integer(snap)];
            params.extend(chunk.iter().map(|id| Value::Text((*id).to_owned())));
            let sql = format!(
                "SELECT l.label_id, l.language, l.text, l.missing FROM labels l
                 JOIN snapshot_labels sl ON sl.label_row = l.id AND sl.snapshot_id = ?1
                 WHERE l.label_id IN ({placeholders})"
            );
            for r in self.rows(&sql, &params)? {
                let missing = int(&r[3]) != 0;
                found.insert((text(&r[0]).unwrap_or_default(), text(&r[1]).unwrap_or_default()), (!missing).then(|| text(&r[2])).flatten());
            }
        }
        let mut texts: BTreeMap<&str, String> = BTreeMap::new();
        for id in ids {
            if texts.contains_key(id) {
                continue;
            }
            if !is_label_reference(id) {
                texts.insert(id, (*id).to_owned());
                continue;
            }
            for language in languages {
                if let Some(Some(t)) = found.get(&((*id).to_owned(), (*language).to_owned())) {
                    texts.insert(id, t.clone());
                    break;
                }
            }
        }
        Ok(texts.len())
    }

    /// `get_entity` (guest/src/api.rs `entity`), statement for statement.
    fn entity(&self, name: &str, labels: bool) -> anyhow::Result<EntitySummary> {
        let snap = self.snapshot()?;
        let mut data = match self.find(snap, "data-entity", name)? {
            Some(id) => self.data_entity(id)?,
            None => None,
        };
        let mut public_id = self.find(snap, "public-entity", name)?;
        if public_id.is_none() {
            public_id = self.find_by_entity_set(snap, name)?;
        }
        if public_id.is_none()
            && let Some(public_name) = data.as_ref().and_then(|d| text(&d[1]))
        {
            public_id = self.find(snap, "public-entity", &public_name)?;
        }
        let public = match public_id {
            Some(id) => self.public_entity(id)?,
            None => None,
        };
        if data.is_none()
            && let Some(p) = &public
        {
            data = match self.first(DATA_ENTITY_OF_PUBLIC, &[Value::Integer(snap), Value::Text(p.name.clone())])? {
                Some(r) => self.data_entity(int(&r[0]))?,
                None => None,
            };
        }
        // Not-found names (suggestions) are not part of this bench: every name exists.
        anyhow::ensure!(data.is_some() || public.is_some(), "{name} not found natively");
        let labelled = if labels {
            let mut ids: Vec<String> = Vec::new();
            if let Some(d) = &data {
                ids.extend(text(&d[3]));
            }
            if let Some(p) = &public {
                ids.extend(p.label_id.clone());
                ids.extend(p.properties.iter().filter_map(|r| text(&r[3])));
            }
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            self.labels(snap, &ids, &[LANGUAGE])?
        } else {
            0
        };
        let p = public.as_ref();
        Ok(EntitySummary {
            data_entity: data.as_ref().and_then(|d| text(&d[0])),
            public_entity: p.map(|p| p.name.clone()),
            properties: p.map_or(0, |p| p.properties.len()),
            navigation_properties: p.map_or(0, |p| p.navigation.len()),
            constraints: p.map_or(0, |p| p.navigation.iter().map(|(_, c)| c.len()).sum()),
            property_groups: p.map_or(0, |p| p.groups.len()),
            members: p.map_or(0, |p| p.groups.iter().map(|(_, m)| m.len()).sum()),
            actions: p.map_or(0, |p| p.actions.len()),
            parameters: p.map_or(0, |p| p.actions.iter().map(|(_, a)| a.len()).sum()),
            labelled,
        })
    }

    /// The canonical public entity name (guest/src/api.rs `public_entity_name`).
    fn public_entity_name(&self, snap: i64, name: &str) -> anyhow::Result<Option<String>> {
        let id = match self.find(snap, "public-entity", name)? {
            Some(id) => Some(id),
            None => match self.find_by_entity_set(snap, name)? {
                Some(id) => Some(id),
                None => match self.find(snap, "data-entity", name)? {
                    Some(d) => match self.data_entity(d)?.and_then(|d| text(&d[1])) {
                        Some(p) => self.find(snap, "public-entity", &p)?,
                        None => None,
                    },
                    None => None,
                },
            },
        };
        Ok(match id {
            Some(id) => self.first(PUBLIC_NAME, &[Value::Integer(id)])?.and_then(|r| text(&r[0])),
            None => None,
        })
    }

    /// `search` (guest/src/api.rs `search` and guest/src/search/query.rs `run`), with the SQL text
    /// built exactly as the component builds it.
    fn search(&self, case: &Case) -> anyhow::Result<SearchSummary> {
        let q = &case.query;
        let snap = self.snapshot()?;
        let entity = match &q.filters.entity {
            Some(e) => Some(self.public_entity_name(snap, e)?.ok_or_else(|| anyhow::anyhow!("no entity {e}"))?),
            None => None,
        };
        let (compact, names_match, labels_match) = fts_expressions(&q.text).ok_or_else(|| anyhow::anyhow!("empty query"))?;
        const KINDS: [&str; 5] = ["data-entity", "public-entity", "enumeration", "action", "property"];
        let kinds: Vec<&str> = if q.kinds.is_empty() { KINDS.to_vec() } else { q.kinds.iter().map(String::as_str).collect() };
        let literal_match = format!("{{literal_label}} : ({labels_match})");
        let mut params: Vec<Value> = vec![
            Value::Integer(snap),
            Value::Text(names_match),
            Value::Text(compact),
            Value::Text(labels_match),
            Value::Text(q.language.clone()),
            Value::Text(literal_match),
        ];
        let next = |v: Value, params: &mut Vec<Value>| {
            params.push(v);
            format!("?{}", params.len())
        };
        let kind_list = kinds.iter().map(|k| next(Value::Text((*k).to_owned()), &mut params)).collect::<Vec<_>>().join(", ");
        let mut conditions = vec![format!("si.kind IN ({kind_list})")];
        let mut data_conditions = Vec::new();
        if let Some(c) = &q.filters.category {
            data_conditions.push(format!("d.category = {} COLLATE NOCASE", next(Value::Text(c.clone()), &mut params)));
        }
        if let Some(v) = q.filters.data_service_enabled {
            data_conditions.push(format!("d.data_service_enabled = {}", next(Value::Integer(v.into()), &mut params)));
        }
        if let Some(v) = q.filters.data_management_enabled {
            data_conditions.push(format!("d.data_management_enabled = {}", next(Value::Integer(v.into()), &mut params)));
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
            let p = next(Value::Integer(v.into()), &mut params);
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
        if let Some(entity) = &entity {
            conditions.push(format!("si.kind IN ('property', 'action') AND si.owner = {}", next(Value::Text(entity.clone()), &mut params)));
        }
        let limit = next(Value::Integer(q.limit.into()), &mut params);
        let offset = next(Value::Integer(q.offset.into()), &mut params);
        let sql = format!(
            "WITH snap AS (SELECT object_id FROM snapshot_objects WHERE snapshot_id = ?1),
         name_hits AS (
            SELECT si.id AS item,
                   CASE WHEN lower(si.name) = ?3 OR lower(coalesce(si.alias, '')) = ?3 THEN 0
                        WHEN substr(lower(si.name), 1, length(?3)) = ?3 OR substr(lower(coalesce(si.alias, '')), 1, length(?3)) = ?3 THEN 1
                        ELSE 2 END AS tier
            FROM search_fts JOIN search_items si ON si.id = search_fts.rowid
            WHERE search_fts MATCH ?2 AND si.object_id IN snap),
         literal_hits AS (
            SELECT si.id AS item, 3 AS tier
            FROM search_fts JOIN search_items si ON si.id = search_fts.rowid
            WHERE search_fts MATCH ?6 AND si.object_id IN snap),
         label_hits AS (
            SELECT si.id AS item, 3 AS tier
            FROM label_fts JOIN labels l ON l.id = label_fts.rowid
            JOIN snapshot_labels sl ON sl.label_row = l.id AND sl.snapshot_id = ?1
            JOIN search_items si ON si.label_id = l.label_id
            WHERE label_fts MATCH ?4 AND l.language = ?5 AND l.missing = 0 AND si.object_id IN snap),
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
        let rows = self.rows(&sql, &params)?;
        let total = rows.first().map_or(0, |r| int(&r[6]) as u64);
        let hits: Vec<(String, String, Option<String>)> =
            rows.iter().map(|r| (text(&r[0]).unwrap_or_default(), text(&r[1]).unwrap_or_default(), text(&r[3]))).collect();
        let labelled = if case.labels {
            let ids: Vec<&str> = rows.iter().filter_map(|r| if let Value::Text(s) = &r[4] { Some(s.as_str()) } else { None }).collect();
            // Distinct label ids with a text; literal ids count as their own text.
            self.labels(snap, &ids, &[LANGUAGE])?
        } else {
            0
        };
        Ok(SearchSummary { total, hits, labelled })
    }
}

/// guest/src/search/words.rs `split`, copied.
fn split_words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut words = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            continue;
        }
        if let Some(&prev) = i.checked_sub(1).and_then(|p| chars.get(p)) {
            let next = chars.get(i + 1).copied();
            let boundary = (prev.is_lowercase() && c.is_uppercase())
                || (prev.is_uppercase() && c.is_uppercase() && next.is_some_and(char::is_lowercase))
                || (prev.is_ascii_digit() && c.is_alphabetic());
            if boundary && !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
        }
        current.push(c);
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// guest/src/search/query.rs `fts_expressions`, copied.
fn fts_expressions(text: &str) -> Option<(String, String, String)> {
    let tokens: Vec<&str> = text.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty()).collect();
    if tokens.is_empty() {
        return None;
    }
    let compact: String = tokens.concat().to_lowercase();
    let words: Vec<String> = tokens.iter().flat_map(|t| split_words(t)).map(|w| w.to_lowercase()).collect();
    let and = |ws: &[String]| ws.iter().map(|w| format!("\"{w}\"*")).collect::<Vec<_>>().join(" AND ");
    let names = format!("{{name alias words}} : (\"{compact}\"* OR ({}))", and(&words));
    Some((compact, names, and(&words)))
}

// ---- the core natively: the component's own code and SQL over rusqlite, without the component ----

struct Core {
    store: d365meta_guest::native::SqliteStore,
}

impl Core {
    fn open(path: &Path) -> anyhow::Result<Core> {
        let store = d365meta_guest::native::SqliteStore::open(path)?;
        store.conn.busy_timeout(Duration::from_secs(30))?;
        Ok(Core { store })
    }

    fn ctx(&self) -> d365meta_guest::Ctx<'_> {
        d365meta_guest::Ctx { http: &d365meta_guest::native::Offline, store: &self.store, host: &d365meta_guest::native::Quiet }
    }

    fn options(labels: bool) -> d365meta_guest::api::ReadOptions {
        d365meta_guest::api::ReadOptions { env: None, languages: labels.then(|| vec![LANGUAGE.to_owned()]) }
    }

    fn entity(&self, name: &str, labels: bool) -> anyhow::Result<d365meta_guest::api::EntityLookup> {
        Ok(d365meta_guest::api::entity(&self.ctx(), name, &Self::options(labels))?)
    }

    fn search(&self, case: &Case) -> anyhow::Result<d365meta_guest::api::SearchOutcome> {
        use d365meta_guest::search::query::{Filters, Query};
        let (q, f) = (&case.query, &case.query.filters);
        let query = Query {
            text: q.text.clone(),
            kinds: q.kinds.clone(),
            filters: Filters {
                category: f.category.clone(),
                read_only: f.read_only,
                data_service_enabled: f.data_service_enabled,
                data_management_enabled: f.data_management_enabled,
                entity: f.entity.clone(),
            },
            language: q.language.clone(),
            limit: q.limit,
            offset: q.offset,
        };
        Ok(d365meta_guest::api::search(&self.ctx(), query, &Self::options(case.labels))?)
    }
}

fn summarize_core_entity(r: &d365meta_guest::api::EntityLookup) -> EntitySummary {
    let mut ids: BTreeSet<&str> = BTreeSet::new();
    if let Some(d) = &r.data_entity {
        ids.extend(d.label_id.as_deref());
    }
    let p = r.public_entity.as_ref();
    if let Some(p) = p {
        ids.extend(p.label_id.as_deref());
        ids.extend(p.properties.iter().filter_map(|p| p.label_id.as_deref()));
    }
    EntitySummary {
        data_entity: r.data_entity.as_ref().map(|d| d.name.clone()),
        public_entity: p.map(|p| p.name.clone()),
        properties: p.map_or(0, |p| p.properties.len()),
        navigation_properties: p.map_or(0, |p| p.navigation_properties.len()),
        constraints: p.map_or(0, |p| p.navigation_properties.iter().map(|n| n.constraints.len()).sum()),
        property_groups: p.map_or(0, |p| p.property_groups.len()),
        members: p.map_or(0, |p| p.property_groups.iter().map(|g| g.properties.len()).sum()),
        actions: p.map_or(0, |p| p.actions.len()),
        parameters: p.map_or(0, |p| p.actions.iter().map(|a| a.parameters.len()).sum()),
        labelled: ids.iter().filter(|id| r.texts.contains_key(**id)).count(),
    }
}

fn summarize_core_search(r: &d365meta_guest::api::SearchOutcome) -> SearchSummary {
    let hits = &r.results.hits;
    SearchSummary {
        total: r.results.total,
        hits: hits.iter().map(|h| (h.kind.clone(), h.name.clone(), h.owner.clone())).collect(),
        labelled: hits.iter().filter_map(|h| h.label_id.as_deref()).filter(|id| r.texts.contains_key(*id)).collect::<BTreeSet<_>>().len(),
    }
}

// ---- the bench ----

/// Samples of one operation, answered three ways.
#[derive(Default)]
struct Samples {
    /// Through the component and the host (`Cache`).
    component: Vec<Duration>,
    /// The core's code natively (`d365meta-guest`, feature `native`).
    core: Vec<Duration>,
    /// The same statements run with rusqlite directly.
    sql: Vec<Duration>,
}

impl Samples {
    fn extend(&mut self, other: &Samples) {
        self.component.extend(&other.component);
        self.core.extend(&other.core);
        self.sql.extend(&other.sql);
    }
}

fn timed<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let r = f()?;
    let d = t.elapsed();
    black_box(r);
    Ok(d)
}

/// One sample of each side, in an order rotated by `turn`.
async fn sample_entity(
    s: &mut Samples,
    turn: usize,
    cache: &mut Cache,
    core: &Core,
    native: &Native,
    name: &str,
    labels: bool,
) -> anyhow::Result<()> {
    for step in 0..3 {
        match (turn + step) % 3 {
            0 => {
                let t = Instant::now();
                let r = cache.get_entity(name, label_options(labels)).await?;
                s.component.push(t.elapsed());
                black_box(r);
            }
            1 => s.core.push(timed(|| core.entity(name, labels))?),
            _ => s.sql.push(timed(|| native.entity(name, labels))?),
        }
    }
    Ok(())
}

async fn sample_search(s: &mut Samples, turn: usize, cache: &mut Cache, core: &Core, native: &Native, case: &Case) -> anyhow::Result<()> {
    for step in 0..3 {
        match (turn + step) % 3 {
            0 => {
                let t = Instant::now();
                let r = cache.search(case.query.clone(), label_options(case.labels)).await?;
                s.component.push(t.elapsed());
                black_box(r);
            }
            1 => s.core.push(timed(|| core.search(case))?),
            _ => s.sql.push(timed(|| native.search(case))?),
        }
    }
    Ok(())
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let out = Out::new(args.json);
    let rounds = args.number("rounds", 5).max(1);
    let search_samples = args.number("search-samples", 2000).max(1);
    let floor_samples = args.number("floor-samples", 2000).max(1);

    // ---- setup ----
    let started = Instant::now();
    let dataset = Arc::new(Dataset::generate(Scale::Full));
    let generated = started.elapsed();
    let sim = Simulator::start("127.0.0.1".parse()?, vec![EnvironmentSpec::new("prod", dataset.clone())]).await?;
    let url = sim.env(0).base_url();
    let (runtime, runtime_load) = runtime()?;
    let scratch = Scratch::new("reads");
    let db = scratch.db();
    let (mut cache, _) = open(&runtime, &db, None).await?;
    let (report, sync_time) = sync(&mut cache, &url).await?;
    drop(cache);
    drop(sim);
    // `--analyze`: what-if only. Gives SQLite's planner statistics (sqlite_stat1), which the
    // component does not do; without them it scans a snapshot's objects and labels for some lookups.
    let analyzed = args.flag("analyze");
    if analyzed {
        Connection::open(&db)?.execute_batch("ANALYZE")?;
    }
    let mut opens = Vec::new();
    for _ in 0..20 {
        let (c, t) = open(&runtime, &db, None).await?;
        drop(c);
        opens.push(t);
    }
    let (mut cache, _) = open(&runtime, &db, None).await?;
    let core = Core::open(&db)?;
    let native = Native::open(&db)?;
    let (db_bytes, wal_bytes) = db_sizes(&db);

    let names = entity_names(&dataset);
    let cases = search_cases(&dataset);

    out.line(format!(
        "d365meta reads bench: scale full, labels {LANGUAGE}, {} CPU(s) available{}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if analyzed { "; WHAT-IF: ANALYZE run on the database after the sync" } else { "" }
    ));
    out.line(format!(
        "setup: dataset generated in {:.1} s; component loaded in {:.0} ms; full sync {:.1} s ({} requests); database {:.1} MiB + {:.1} MiB -wal",
        generated.as_secs_f64(),
        runtime_load.as_secs_f64() * 1e3,
        sync_time.as_secs_f64(),
        thousands(u64::from(report.requests)),
        mib(db_bytes),
        mib(wal_bytes)
    ));

    // ---- the three sides answer the same, and everything is warm ----
    let check_started = Instant::now();
    for name in &names {
        for labels in [false, true] {
            let c = summarize_entity(&cache.get_entity(name, label_options(labels)).await?);
            let k = summarize_core_entity(&core.entity(name, labels)?);
            let n = native.entity(name, labels)?;
            anyhow::ensure!(c == k, "get_entity({name:?}, labels={labels}): component {c:?} != core natively {k:?}");
            anyhow::ensure!(c == n, "get_entity({name:?}, labels={labels}): component {c:?} != SQL natively {n:?}");
        }
    }
    let mut search_totals = Vec::new();
    for case in &cases {
        let c = summarize_search(&cache.search(case.query.clone(), label_options(case.labels)).await?);
        let k = summarize_core_search(&core.search(case)?);
        let n = native.search(case)?;
        anyhow::ensure!(c == k, "search {}: component {c:?} != core natively {k:?}", case.label);
        anyhow::ensure!(c == n, "search {}: component {c:?} != SQL natively {n:?}", case.label);
        search_totals.push((c.total, c.hits.len()));
    }
    let mut scratch_samples = Samples::default();
    for turn in 0..2 {
        for case in &cases {
            sample_search(&mut scratch_samples, turn, &mut cache, &core, &native, case).await?;
        }
    }
    out.line(format!(
        "warm-up: {} entity lookups and {} searches answered three ways, answers identical ({:.1} s)",
        names.len() * 2,
        cases.len() * 3,
        check_started.elapsed().as_secs_f64()
    ));

    // ---- get_entity ----
    let mut entity = [Samples::default(), Samples::default()];
    let entity_started = Instant::now();
    for round in 0..rounds {
        for name in &names {
            for (mode, labels) in [false, true].into_iter().enumerate() {
                sample_entity(&mut entity[mode], round, &mut cache, &core, &native, name, labels).await?;
            }
        }
    }
    let entity_time = entity_started.elapsed();

    // Where a lookup spends its time in SQLite: one more pass over the names, with labels, timing
    // each statement of the SQL-native side (not part of the samples above).
    *native.profile.borrow_mut() = Some(BTreeMap::new());
    let profile_started = Instant::now();
    for name in &names {
        black_box(native.entity(name, true)?);
    }
    let profile_total = profile_started.elapsed();
    let mut statements: Vec<(String, u64, Duration)> =
        native.profile.borrow_mut().take().unwrap_or_default().into_iter().map(|(k, (n, d))| (k, n, d)).collect();
    statements.sort_by_key(|s| std::cmp::Reverse(s.2));

    // ---- search ----
    let search_rounds = search_samples.div_ceil(cases.len());
    let mut per_case: Vec<Samples> = cases.iter().map(|_| Samples::default()).collect();
    let search_started = Instant::now();
    for round in 0..search_rounds {
        for (i, case) in cases.iter().enumerate() {
            sample_search(&mut per_case[i], round, &mut cache, &core, &native, case).await?;
        }
    }
    let search_time = search_started.elapsed();

    // ---- the floor of an export call ----
    let mut list_envs = Vec::new();
    let mut compare = Vec::new();
    for _ in 0..50 {
        black_box(cache.list_environments().await?);
        black_box(cache.compare_modules(vec![], vec![]).await?);
    }
    for _ in 0..floor_samples {
        let t = Instant::now();
        black_box(cache.list_environments().await?);
        list_envs.push(t.elapsed());
        let t = Instant::now();
        black_box(cache.compare_modules(vec![], vec![]).await?);
        compare.push(t.elapsed());
    }

    // ---- report ----
    out.line("");
    out.line("latency in microseconds                         n      p50      p90      p99      max");
    let row =
        |label: &str, p: &Percentiles| format!("  {:<42} {:>5} {:>8.1} {:>8.1} {:>8.1} {:>8.1}", label, p.n, p.p50, p.p90, p.p99, p.max);
    let mut json_groups = Vec::new();
    let report = |title: &str, s: &Samples, json_groups: &mut Vec<serde_json::Value>| {
        let (c, k, n) = (Percentiles::of(&s.component), Percentiles::of(&s.core), Percentiles::of(&s.sql));
        out.line(title);
        out.line(row("component (wasm + host)", &c));
        out.line(row("core natively (same code, no component)", &k));
        out.line(row("SQL natively (same statements, rusqlite)", &n));
        out.line(format!("  {:<42}       {:>7.2}x          {:>7.2}x", "ratio component / core natively", c.p50 / k.p50, c.p99 / k.p99));
        out.line(format!("  {:<42}       {:>7.2}x          {:>7.2}x", "ratio component / SQL natively", c.p50 / n.p50, c.p99 / n.p99));
        json_groups.push(json!({
            "name": title, "component": c.json(), "core_native": k.json(), "sql_native": n.json(),
            "ratio_core_p50": round3(c.p50 / k.p50), "ratio_core_p99": round3(c.p99 / k.p99),
            "ratio_sql_p50": round3(c.p50 / n.p50), "ratio_sql_p99": round3(c.p99 / n.p99),
        }));
    };
    report(&format!("get_entity, no labels ({} names x {rounds} rounds)", names.len()), &entity[0], &mut json_groups);
    report(&format!("get_entity, labels en-US ({} names x {rounds} rounds)", names.len()), &entity[1], &mut json_groups);
    let mut all = Samples::default();
    for s in &per_case {
        all.extend(s);
    }
    report(&format!("search, all {} queries x {search_rounds} rounds, limit 20", cases.len()), &all, &mut json_groups);
    let (floor_list, floor_compare) = (Percentiles::of(&list_envs), Percentiles::of(&compare));
    out.line("floor of an export call (component)");
    out.line(row("list_environments (1 env, 1 SELECT)", &floor_list));
    out.line(row("compare_modules([], []) (no SQL)", &floor_compare));
    let open_p = Percentiles::of(&opens);
    out.line(row("Cache::open, existing database", &open_p));

    out.line("");
    out.line(format!(
        "search per query ({search_rounds} samples each), p50 in microseconds                 total hits  component       core        SQL  comp/core  comp/SQL"
    ));
    let mut json_cases = Vec::new();
    for ((case, s), (total, hits)) in cases.iter().zip(&per_case).zip(&search_totals) {
        let (c, k, n) = (Percentiles::of(&s.component), Percentiles::of(&s.core), Percentiles::of(&s.sql));
        out.line(format!(
            "  {:<72} {:>6} {:>4} {:>10.1} {:>10.1} {:>10.1} {:>10.2} {:>9.2}",
            case.label,
            total,
            hits,
            c.p50,
            k.p50,
            n.p50,
            c.p50 / k.p50,
            c.p50 / n.p50
        ));
        json_cases.push(json!({
            "query": case.label, "total": total, "hits": hits,
            "component": c.json(), "core_native": k.json(), "sql_native": n.json(),
        }));
    }
    out.line("");
    out.line(format!(
        "SQL natively, get_entity with labels, per statement (one pass over the {} names, {:.1} µs per lookup in all):",
        names.len(),
        profile_total.as_secs_f64() * 1e6 / names.len() as f64
    ));
    out.line("  calls/lookup  µs/lookup  statement");
    let mut json_statements = Vec::new();
    for (sql, calls, spent) in &statements {
        let per = spent.as_secs_f64() * 1e6 / names.len() as f64;
        out.line(format!("  {:>12.2} {:>10.1}  {}", *calls as f64 / names.len() as f64, per, sql));
        json_statements
            .push(json!({"statement": sql, "calls_per_lookup": round3(*calls as f64 / names.len() as f64), "us_per_lookup": round1(per)}));
    }
    out.line("");
    out.line(format!("measuring took {:.1} s (entity lookups) + {:.1} s (searches)", entity_time.as_secs_f64(), search_time.as_secs_f64()));

    if args.json {
        let report = json!({
            "bench": "reads",
            "scale": "full",
            "language": LANGUAGE,
            "database_bytes": db_bytes,
            "analyzed": analyzed,
            "groups": json_groups,
            "floor": {"list_environments": floor_list.json(), "compare_modules_empty": floor_compare.json(), "open_existing": open_p.json()},
            "search_queries": json_cases,
            "sql_native_entity_statements": json_statements,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}
