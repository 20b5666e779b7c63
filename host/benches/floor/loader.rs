//! The physical floor of a full sync: what fetching the metadata, parsing it and storing its rows
//! needs of this machine, written as plainly as it can be. The three collections one after the
//! other and every label (at the host's ceiling of requests in flight), each parsed with serde_json
//! into structs of exactly the stored fields, and the same rows the cache stores inserted into a
//! fresh SQLite file (WAL, `synchronous = NORMAL`, as the host opens it) with one prepared statement
//! per table, in one transaction; no content hashes, no search index, no snapshot bookkeeping.
//! Every phase of the sync can then be read against the same phase here.

use futures_util::StreamExt;
use serde::Deserialize;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Deserialize)]
struct Page<T> {
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    next: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DataEntity {
    name: String,
    public_entity_name: Option<String>,
    public_collection_name: Option<String>,
    label_id: Option<String>,
    entity_category: Option<String>,
    data_service_enabled: bool,
    data_management_enabled: bool,
    is_read_only: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PublicEntity {
    name: String,
    entity_set_name: Option<String>,
    label_id: Option<String>,
    is_read_only: bool,
    configuration_enabled: bool,
    #[serde(default)]
    properties: Vec<Property>,
    #[serde(default)]
    navigation_properties: Vec<Navigation>,
    #[serde(default)]
    property_groups: Vec<Group>,
    #[serde(default)]
    actions: Vec<Action>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Property {
    name: String,
    type_name: Option<String>,
    data_type: Option<String>,
    label_id: Option<String>,
    is_key: bool,
    is_mandatory: bool,
    configuration_enabled: bool,
    allow_edit: bool,
    allow_edit_on_create: bool,
    is_dimension: bool,
    dimension_relation: Option<String>,
    is_dynamic_dimension: bool,
    dimension_legal_entity_property: Option<String>,
    dimension_type_property: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Navigation {
    name: String,
    related_entity: Option<String>,
    related_relation_name: Option<String>,
    cardinality: Option<String>,
    #[serde(default)]
    constraints: Vec<Constraint>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Constraint {
    #[serde(rename = "@odata.type")]
    kind: Option<String>,
    property: Option<String>,
    referenced_property: Option<String>,
    related_property: Option<String>,
    value: Option<i64>,
    value_str: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Group {
    name: String,
    #[serde(default)]
    properties: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TypeRef {
    type_name: Option<String>,
    is_collection: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Parameter {
    name: String,
    #[serde(rename = "Type")]
    of_type: Option<TypeRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Action {
    name: String,
    binding_kind: Option<String>,
    field_lookup: Option<String>,
    #[serde(default)]
    parameters: Vec<Parameter>,
    return_type: Option<TypeRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Enumeration {
    name: String,
    label_id: Option<String>,
    #[serde(default)]
    members: Vec<Member>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Member {
    name: String,
    value: i64,
    label_id: Option<String>,
    configuration_enabled: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Label {
    id: String,
    language: String,
    value: String,
}

const SCHEMA: &str = "
CREATE TABLE data_entities (id INTEGER PRIMARY KEY, name TEXT NOT NULL, public_entity_name TEXT, public_collection_name TEXT,
    label_id TEXT, category TEXT, data_service_enabled INTEGER NOT NULL, data_management_enabled INTEGER NOT NULL, is_read_only INTEGER NOT NULL) STRICT;
CREATE TABLE public_entities (id INTEGER PRIMARY KEY, name TEXT NOT NULL, entity_set_name TEXT, label_id TEXT,
    is_read_only INTEGER NOT NULL, configuration_enabled INTEGER NOT NULL) STRICT;
CREATE TABLE entity_properties (entity INTEGER NOT NULL, position INTEGER NOT NULL, name TEXT NOT NULL, type_name TEXT, data_type TEXT,
    label_id TEXT, is_key INTEGER NOT NULL, is_mandatory INTEGER NOT NULL, configuration_enabled INTEGER NOT NULL, allow_edit INTEGER NOT NULL,
    allow_edit_on_create INTEGER NOT NULL, is_dimension INTEGER NOT NULL, dimension_relation TEXT, is_dynamic_dimension INTEGER NOT NULL,
    dimension_legal_entity_property TEXT, dimension_type_property TEXT, PRIMARY KEY (entity, position)) STRICT, WITHOUT ROWID;
CREATE TABLE navigation_properties (entity INTEGER NOT NULL, position INTEGER NOT NULL, name TEXT NOT NULL, related_entity TEXT,
    related_relation_name TEXT, cardinality TEXT, PRIMARY KEY (entity, position)) STRICT, WITHOUT ROWID;
CREATE TABLE navigation_constraints (entity INTEGER NOT NULL, navigation_position INTEGER NOT NULL, position INTEGER NOT NULL, kind TEXT,
    property TEXT, referenced_property TEXT, related_property TEXT, value INTEGER, value_str TEXT,
    PRIMARY KEY (entity, navigation_position, position)) STRICT, WITHOUT ROWID;
CREATE TABLE property_groups (entity INTEGER NOT NULL, position INTEGER NOT NULL, name TEXT NOT NULL, PRIMARY KEY (entity, position)) STRICT, WITHOUT ROWID;
CREATE TABLE property_group_members (entity INTEGER NOT NULL, group_position INTEGER NOT NULL, position INTEGER NOT NULL,
    property_name TEXT NOT NULL, PRIMARY KEY (entity, group_position, position)) STRICT, WITHOUT ROWID;
CREATE TABLE entity_actions (entity INTEGER NOT NULL, position INTEGER NOT NULL, name TEXT NOT NULL, binding_kind TEXT, field_lookup TEXT,
    returns INTEGER NOT NULL, return_type_name TEXT, return_is_collection INTEGER NOT NULL, PRIMARY KEY (entity, position)) STRICT, WITHOUT ROWID;
CREATE TABLE action_parameters (entity INTEGER NOT NULL, action_position INTEGER NOT NULL, position INTEGER NOT NULL, name TEXT NOT NULL,
    type_name TEXT, is_collection INTEGER NOT NULL, PRIMARY KEY (entity, action_position, position)) STRICT, WITHOUT ROWID;
CREATE TABLE enumerations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, label_id TEXT) STRICT;
CREATE TABLE enumeration_members (enumeration INTEGER NOT NULL, position INTEGER NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL,
    label_id TEXT, configuration_enabled INTEGER NOT NULL, PRIMARY KEY (enumeration, position)) STRICT, WITHOUT ROWID;
CREATE TABLE labels (id INTEGER PRIMARY KEY, label_id TEXT NOT NULL, language TEXT NOT NULL, text TEXT NOT NULL) STRICT;
";

/// One floor run: its phases and the rows it stored.
pub struct Floor {
    pub total: Duration,
    /// Fetch and parse each collection.
    pub fetch_parse: [Duration; 3],
    /// Insert each collection's rows.
    pub insert: [Duration; 3],
    /// Fetch, parse and insert every label (inserted as they arrive).
    pub labels: Duration,
    pub commit: Duration,
    pub rows: u64,
    pub db_bytes: u64,
}

async fn collection<T: serde::de::DeserializeOwned>(client: &reqwest::Client, url: String) -> anyhow::Result<Vec<T>> {
    let mut items = Vec::new();
    let mut next = Some(url);
    while let Some(url) = next {
        let body = client.get(&url).header("Accept", "application/json").header("OData-Version", "4.0").send().await?.bytes().await?;
        let page: Page<T> = serde_json::from_slice(&body)?;
        items.extend(page.value);
        next = page.next;
    }
    Ok(items)
}

pub async fn run(client: &reqwest::Client, base: &str, label_urls: &[String], concurrency: usize, db: &Path) -> anyhow::Result<Floor> {
    let started = Instant::now();
    let conn = rusqlite::Connection::open(db)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(SCHEMA)?;
    conn.execute_batch("BEGIN")?;
    let mut rows = 0u64;
    let (mut fetch_parse, mut insert) = ([Duration::ZERO; 3], [Duration::ZERO; 3]);

    let t = Instant::now();
    let data: Vec<DataEntity> = collection(client, format!("{base}/Metadata/DataEntities")).await?;
    fetch_parse[0] = t.elapsed();
    let t = Instant::now();
    {
        let mut stmt = conn.prepare("INSERT INTO data_entities VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")?;
        for d in &data {
            stmt.execute(rusqlite::params![
                d.name,
                d.public_entity_name,
                d.public_collection_name,
                d.label_id,
                d.entity_category,
                d.data_service_enabled,
                d.data_management_enabled,
                d.is_read_only
            ])?;
            rows += 1;
        }
    }
    insert[0] = t.elapsed();

    let t = Instant::now();
    let public: Vec<PublicEntity> = collection(client, format!("{base}/Metadata/PublicEntities")).await?;
    fetch_parse[1] = t.elapsed();
    let t = Instant::now();
    {
        let mut entity = conn.prepare("INSERT INTO public_entities VALUES (NULL, ?1, ?2, ?3, ?4, ?5)")?;
        let mut property =
            conn.prepare("INSERT INTO entity_properties VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)")?;
        let mut navigation = conn.prepare("INSERT INTO navigation_properties VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
        let mut constraint = conn.prepare("INSERT INTO navigation_constraints VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")?;
        let mut group = conn.prepare("INSERT INTO property_groups VALUES (?1, ?2, ?3)")?;
        let mut member = conn.prepare("INSERT INTO property_group_members VALUES (?1, ?2, ?3, ?4)")?;
        let mut action = conn.prepare("INSERT INTO entity_actions VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")?;
        let mut parameter = conn.prepare("INSERT INTO action_parameters VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
        for e in &public {
            entity.execute(rusqlite::params![e.name, e.entity_set_name, e.label_id, e.is_read_only, e.configuration_enabled])?;
            let id = conn.last_insert_rowid();
            rows += 1;
            for (i, p) in e.properties.iter().enumerate() {
                let i = i as i64;
                property.execute(rusqlite::params![
                    id,
                    i,
                    p.name,
                    p.type_name,
                    p.data_type,
                    p.label_id,
                    p.is_key,
                    p.is_mandatory,
                    p.configuration_enabled,
                    p.allow_edit,
                    p.allow_edit_on_create,
                    p.is_dimension,
                    p.dimension_relation,
                    p.is_dynamic_dimension,
                    p.dimension_legal_entity_property,
                    p.dimension_type_property
                ])?;
                rows += 1;
            }
            for (i, n) in e.navigation_properties.iter().enumerate() {
                let i = i as i64;
                navigation.execute(rusqlite::params![id, i, n.name, n.related_entity, n.related_relation_name, n.cardinality])?;
                rows += 1;
                for (j, c) in n.constraints.iter().enumerate() {
                    let j = j as i64;
                    constraint.execute(rusqlite::params![
                        id,
                        i,
                        j,
                        c.kind,
                        c.property,
                        c.referenced_property,
                        c.related_property,
                        c.value,
                        c.value_str
                    ])?;
                    rows += 1;
                }
            }
            for (i, g) in e.property_groups.iter().enumerate() {
                let i = i as i64;
                group.execute(rusqlite::params![id, i, g.name])?;
                rows += 1;
                for (j, m) in g.properties.iter().enumerate() {
                    let j = j as i64;
                    member.execute(rusqlite::params![id, i, j, m])?;
                    rows += 1;
                }
            }
            for (i, a) in e.actions.iter().enumerate() {
                let i = i as i64;
                let returns = a.return_type.as_ref();
                action.execute(rusqlite::params![
                    id,
                    i,
                    a.name,
                    a.binding_kind,
                    a.field_lookup,
                    returns.is_some(),
                    returns.and_then(|r| r.type_name.clone()),
                    returns.is_some_and(|r| r.is_collection)
                ])?;
                rows += 1;
                for (j, p) in a.parameters.iter().enumerate() {
                    let j = j as i64;
                    let of_type = p.of_type.as_ref();
                    parameter.execute(rusqlite::params![
                        id,
                        i,
                        j,
                        p.name,
                        of_type.and_then(|t| t.type_name.clone()),
                        of_type.is_some_and(|t| t.is_collection)
                    ])?;
                    rows += 1;
                }
            }
        }
    }
    insert[1] = t.elapsed();

    let t = Instant::now();
    let enums: Vec<Enumeration> = collection(client, format!("{base}/Metadata/PublicEnumerations")).await?;
    fetch_parse[2] = t.elapsed();
    let t = Instant::now();
    {
        let mut enumeration = conn.prepare("INSERT INTO enumerations VALUES (NULL, ?1, ?2)")?;
        let mut member = conn.prepare("INSERT INTO enumeration_members VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
        for e in &enums {
            enumeration.execute(rusqlite::params![e.name, e.label_id])?;
            let id = conn.last_insert_rowid();
            rows += 1;
            for (i, m) in e.members.iter().enumerate() {
                let i = i as i64;
                member.execute(rusqlite::params![id, i, m.name, m.value, m.label_id, m.configuration_enabled])?;
                rows += 1;
            }
        }
    }
    insert[2] = t.elapsed();

    let t = Instant::now();
    {
        let mut label = conn.prepare("INSERT INTO labels VALUES (NULL, ?1, ?2, ?3)")?;
        let mut answers = futures_util::stream::iter(label_urls)
            .map(|url| async move {
                let response = client.get(url).header("Accept", "application/json").header("OData-Version", "4.0").send().await?;
                let status = response.status().as_u16();
                let body = response.bytes().await?;
                anyhow::Ok((status, body))
            })
            .buffer_unordered(concurrency);
        while let Some(answer) = answers.next().await {
            let (status, body) = answer?;
            match status {
                200 => {
                    let l: Label = serde_json::from_slice(&body)?;
                    label.execute(rusqlite::params![l.id, l.language, l.value])?;
                    rows += 1;
                }
                404 => {}
                other => anyhow::bail!("a label answered {other}"),
            }
        }
    }
    let labels = t.elapsed();
    let t = Instant::now();
    conn.execute_batch("COMMIT")?;
    drop(conn);
    let commit = t.elapsed();
    Ok(Floor {
        total: started.elapsed(),
        fetch_parse,
        insert,
        labels,
        commit,
        rows,
        db_bytes: std::fs::metadata(db).map(|m| m.len()).unwrap_or(0),
    })
}
