//! Reading the metadata cache of the Python d365fo-client (`metadata_v2.db`), to bring its
//! versions into this cache without asking any environment.
//!
//! Each version is answered, request by request, as the environment that recorded it would have
//! answered (a [`Responder`] behind the environment resource), so the component runs its ordinary
//! sync: objects are stored content-addressed, exactly as a sync of the live environment stores
//! them, and a later sync of that version links to them.
//!
//! The file is opened read-only; when no write-ahead log lies beside it, as immutable, so that not
//! even SQLite's shared-memory file is made next to it. Its journal mode is never touched.

use crate::imports::http::Responder;
use d365meta_guest::version::{APPLICATION_VERSION, INSTALLED_MODULES, PLATFORM_VERSION};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde_json::{Value as Json, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One version in the file, and the environments that recorded it.
#[derive(Clone, Debug)]
pub struct SourceVersion {
    pub id: i64,
    pub modules_hash: String,
    /// Base URLs, the ones that run it now last.
    pub environments: Vec<String>,
    /// Whether an environment runs it now (rather than ran it once).
    pub current: bool,
    pub languages: Vec<String>,
}

/// What the file holds that cannot be brought over, counted per kind.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SourceProblems {
    /// Rows that belong to no row of their parent table (a property of no entity, ...).
    pub orphaned: Vec<(String, u64)>,
    /// Versions no environment recorded: there is no environment to record them under.
    pub versions_without_environment: Vec<String>,
}

pub struct D365foClientCache {
    path: PathBuf,
    conn: Connection,
}

/// `file:` URI of `path`, percent-encoded as SQLite's URI rules ask.
fn uri(path: &Path, immutable: bool) -> String {
    let mut out = String::from("file:");
    for b in path.to_string_lossy().bytes() {
        match b {
            b'?' | b'#' | b'%' => out.push_str(&format!("%{b:02X}")),
            _ => out.push(b as char),
        }
    }
    out.push_str(if immutable { "?mode=ro&immutable=1" } else { "?mode=ro" });
    out
}

impl D365foClientCache {
    /// Opens `path`: the `metadata_v2.db` file, or the directory it is in.
    pub fn open(path: &Path) -> Result<D365foClientCache, String> {
        let file = if path.is_dir() { path.join("metadata_v2.db") } else { path.to_owned() };
        if !file.is_file() {
            return Err(format!(
                "{}: no such file (a d365fo-client cache is a metadata_v2.db file, or the directory holding one)",
                file.display()
            ));
        }
        let mut wal = file.as_os_str().to_owned();
        wal.push("-wal");
        let in_use = Path::new(&wal).exists();
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(uri(&file, !in_use), flags).map_err(|e| format!("{}: {e}", file.display()))?;
        let source = D365foClientCache { path: file, conn };
        for table in ["global_versions", "global_version_modules", "data_entities", "public_entities", "entity_properties", "labels_cache"]
        {
            let found: Option<String> = source
                .conn
                .query_row("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |r| r.get(0))
                .optional()
                .map_err(|e| source.error(e))?;
            if found.is_none() {
                return Err(format!("{} is not a d365fo-client metadata cache: it has no {table} table", source.path.display()));
            }
        }
        Ok(source)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, e: rusqlite::Error) -> String {
        format!("reading {}: {e}", self.path.display())
    }

    /// Every version, those environments run now last, so that importing them in order leaves each
    /// environment at its current version.
    pub fn versions(&self) -> Result<Vec<SourceVersion>, String> {
        let mut stmt = self.conn.prepare("SELECT id, modules_hash FROM global_versions ORDER BY id").map_err(|e| self.error(e))?;
        let rows: Vec<(i64, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.error(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.error(e))?;
        let mut versions = Vec::new();
        for (id, modules_hash) in rows {
            let mut stmt = self
                .conn
                .prepare(
                    "SELECT e.base_url, COALESCE(ev.is_active, 0) FROM environment_versions ev JOIN metadata_environments e ON e.id = ev.environment_id
                     WHERE ev.global_version_id = ?1 ORDER BY COALESCE(ev.is_active, 0), e.id",
                )
                .map_err(|e| self.error(e))?;
            let environments: Vec<(String, bool)> = stmt
                .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(|e| self.error(e))?
                .collect::<Result<_, _>>()
                .map_err(|e| self.error(e))?;
            let mut stmt = self
                .conn
                .prepare("SELECT DISTINCT language FROM labels_cache WHERE global_version_id = ?1 ORDER BY language")
                .map_err(|e| self.error(e))?;
            let languages: Vec<String> =
                stmt.query_map([id], |r| r.get(0)).map_err(|e| self.error(e))?.collect::<Result<_, _>>().map_err(|e| self.error(e))?;
            versions.push(SourceVersion {
                id,
                modules_hash,
                current: environments.iter().any(|(_, active)| *active),
                environments: environments.into_iter().map(|(url, _)| url).collect(),
                languages,
            });
        }
        versions.sort_by_key(|v| v.current);
        Ok(versions)
    }

    /// Rows the file holds that belong to nothing, and versions no environment recorded.
    pub fn problems(&self, versions: &[SourceVersion]) -> Result<SourceProblems, String> {
        let mut problems = SourceProblems::default();
        for (table, parent_column, parent) in [
            ("entity_properties", "entity_id", "public_entities"),
            ("navigation_properties", "entity_id", "public_entities"),
            ("property_groups", "entity_id", "public_entities"),
            ("entity_actions", "entity_id", "public_entities"),
            ("relation_constraints", "navigation_property_id", "navigation_properties"),
            ("property_group_members", "property_group_id", "property_groups"),
            ("action_parameters", "action_id", "entity_actions"),
            ("enumeration_members", "enumeration_id", "enumerations"),
        ] {
            let orphans: i64 = self
                .conn
                .query_row(
                    &format!("SELECT COUNT(*) FROM {table} t WHERE NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.id = t.{parent_column})"),
                    [],
                    |r| r.get(0),
                )
                .map_err(|e| self.error(e))?;
            if orphans > 0 {
                problems.orphaned.push((table.to_owned(), orphans as u64));
            }
        }
        problems.versions_without_environment =
            versions.iter().filter(|v| v.environments.is_empty()).map(|v| v.modules_hash.clone()).collect();
        Ok(problems)
    }

    /// The version `id` as its environment answered: every request a sync sends, answered from the file.
    pub fn recording(&self, id: i64) -> Result<Recording, String> {
        let e = |err: rusqlite::Error| self.error(err);
        let query = |sql: &str| -> Result<Vec<Vec<Json>>, String> {
            let mut stmt = self.conn.prepare(sql).map_err(e)?;
            let width = stmt.column_count();
            let rows = stmt
                .query_map([id], |r| {
                    (0..width)
                        .map(|i| {
                            Ok(match r.get_ref(i)? {
                                rusqlite::types::ValueRef::Null => Json::Null,
                                rusqlite::types::ValueRef::Integer(n) => json!(n),
                                rusqlite::types::ValueRef::Real(f) => json!(f),
                                rusqlite::types::ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
                                rusqlite::types::ValueRef::Blob(_) => Json::Null,
                            })
                        })
                        .collect::<Result<Vec<Json>, rusqlite::Error>>()
                })
                .map_err(e)?;
            rows.collect::<Result<_, _>>().map_err(e)
        };
        let flag = |v: &Json| json!(v.as_i64().unwrap_or(0) != 0);
        let modules: Vec<Json> = query(
            "SELECT module_id, COALESCE(module_name, module_id), version, COALESCE(publisher, ''), COALESCE(display_name, '')
             FROM global_version_modules WHERE global_version_id = ?1 ORDER BY sort_order, id",
        )?
        .into_iter()
        .map(|r| {
            let t = |i: usize| r[i].as_str().unwrap_or_default().to_owned();
            json!(format!("Name: {} | Version: {} | Module: {} | Publisher: {} | DisplayName: {}", t(1), t(2), t(0), t(3), t(4)))
        })
        .collect();
        let versions = query(
            "SELECT application_version, platform_version FROM metadata_versions WHERE global_version_id = ?1 ORDER BY id DESC LIMIT 1",
        )?;
        let data_entities: Vec<Json> = query(
            "SELECT name, public_entity_name, public_collection_name, label_id, entity_category, data_service_enabled,
                    data_management_enabled, is_read_only
             FROM data_entities WHERE global_version_id = ?1 ORDER BY id",
        )?
        .into_iter()
        .map(|r| {
            json!({
                "Name": r[0], "PublicEntityName": r[1], "PublicCollectionName": r[2], "LabelId": r[3], "EntityCategory": r[4],
                "DataServiceEnabled": flag(&r[5]), "DataManagementEnabled": flag(&r[6]), "IsReadOnly": flag(&r[7]),
            })
        })
        .collect();

        // The parts of public entities, grouped by entity id in the file's order.
        let group = |sql: &str| -> Result<HashMap<i64, Vec<Vec<Json>>>, String> {
            let mut by: HashMap<i64, Vec<Vec<Json>>> = HashMap::new();
            for row in query(sql)? {
                by.entry(row[0].as_i64().unwrap_or(0)).or_default().push(row[1..].to_vec());
            }
            Ok(by)
        };
        let mut properties = group(
            "SELECT entity_id, name, type_name, data_type, label_id, is_key, is_mandatory, configuration_enabled, allow_edit,
                    allow_edit_on_create, is_dimension, dimension_relation, is_dynamic_dimension, dimension_legal_entity_property,
                    dimension_type_property
             FROM entity_properties WHERE global_version_id = ?1 ORDER BY entity_id, property_order, id",
        )?;
        let mut constraints = group(
            "SELECT navigation_property_id, constraint_type, property_name, referenced_property, related_property, fixed_value, fixed_value_str
             FROM relation_constraints WHERE global_version_id = ?1 ORDER BY navigation_property_id, id",
        )?;
        let mut navigations = group(
            "SELECT entity_id, id, name, related_entity, related_relation_name, cardinality
             FROM navigation_properties WHERE global_version_id = ?1 ORDER BY entity_id, id",
        )?;
        let mut members = group(
            "SELECT property_group_id, property_name FROM property_group_members WHERE global_version_id = ?1
             ORDER BY property_group_id, member_order, id",
        )?;
        let mut groups = group("SELECT entity_id, id, name FROM property_groups WHERE global_version_id = ?1 ORDER BY entity_id, id")?;
        let mut parameters = group(
            "SELECT action_id, name, type_name, is_collection FROM action_parameters WHERE global_version_id = ?1
             ORDER BY action_id, parameter_order, id",
        )?;
        let mut actions = group(
            "SELECT entity_id, id, name, binding_kind, field_lookup, return_type_name, return_is_collection
             FROM entity_actions WHERE global_version_id = ?1 ORDER BY entity_id, id",
        )?;
        let public_entities: Vec<Json> = query(
            "SELECT id, name, entity_set_name, label_id, is_read_only, configuration_enabled FROM public_entities
             WHERE global_version_id = ?1 ORDER BY id",
        )?
        .into_iter()
        .map(|r| {
            let id = r[0].as_i64().unwrap_or(0);
            let properties: Vec<Json> = properties
                .remove(&id)
                .unwrap_or_default()
                .into_iter()
                .map(|p| {
                    json!({
                        "Name": p[0], "TypeName": p[1], "DataType": p[2], "LabelId": p[3], "IsKey": flag(&p[4]), "IsMandatory": flag(&p[5]),
                        "ConfigurationEnabled": flag(&p[6]), "AllowEdit": flag(&p[7]), "AllowEditOnCreate": flag(&p[8]),
                        "IsDimension": flag(&p[9]), "DimensionRelation": p[10], "IsDynamicDimension": flag(&p[11]),
                        "DimensionLegalEntityProperty": p[12], "DimensionTypeProperty": p[13],
                    })
                })
                .collect();
            let navigation_properties: Vec<Json> = navigations
                .remove(&id)
                .unwrap_or_default()
                .into_iter()
                .map(|n| {
                    let nav_id = n[0].as_i64().unwrap_or(0);
                    let constraints: Vec<Json> = constraints
                        .remove(&nav_id)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|c| {
                            let kind = c[0].as_str().unwrap_or_default();
                            match kind {
                                "Referential" => json!({"@odata.type": "#Microsoft.Dynamics.Metadata.ReferentialConstraint", "Property": c[1], "ReferencedProperty": c[2]}),
                                "Fixed" => json!({"@odata.type": "#Microsoft.Dynamics.Metadata.FixedConstraint", "Property": c[1], "Value": c[4], "ValueStr": c[5]}),
                                "RelatedFixed" => json!({"@odata.type": "#Microsoft.Dynamics.Metadata.RelatedFixedConstraint", "RelatedProperty": c[3], "Value": c[4], "ValueStr": c[5]}),
                                other => json!({"@odata.type": format!("#Microsoft.Dynamics.Metadata.{other}Constraint"), "Property": c[1]}),
                            }
                        })
                        .collect();
                    json!({"Name": n[1], "RelatedEntity": n[2], "RelatedRelationName": n[3], "Cardinality": n[4], "Constraints": constraints})
                })
                .collect();
            let property_groups: Vec<Json> = groups
                .remove(&id)
                .unwrap_or_default()
                .into_iter()
                .map(|g| {
                    let names: Vec<Json> = members.remove(&g[0].as_i64().unwrap_or(0)).unwrap_or_default().into_iter().map(|m| m[0].clone()).collect();
                    json!({"Name": g[1], "Properties": names})
                })
                .collect();
            let entity_actions: Vec<Json> = actions
                .remove(&id)
                .unwrap_or_default()
                .into_iter()
                .map(|a| {
                    let parameters: Vec<Json> = parameters
                        .remove(&a[0].as_i64().unwrap_or(0))
                        .unwrap_or_default()
                        .into_iter()
                        .map(|p| json!({"Name": p[0], "Type": {"TypeName": p[1], "IsCollection": flag(&p[2])}}))
                        .collect();
                    let returns = if a[4].is_null() { Json::Null } else { json!({"TypeName": a[4], "IsCollection": flag(&a[5])}) };
                    json!({"Name": a[1], "BindingKind": a[2], "FieldLookup": a[3], "Parameters": parameters, "ReturnType": returns})
                })
                .collect();
            json!({
                "Name": r[1], "EntitySetName": r[2], "LabelId": r[3], "IsReadOnly": flag(&r[4]), "ConfigurationEnabled": flag(&r[5]),
                "Properties": properties, "NavigationProperties": navigation_properties, "PropertyGroups": property_groups, "Actions": entity_actions,
            })
        })
        .collect();
        let mut enum_members = group(
            "SELECT enumeration_id, name, value, label_id, configuration_enabled FROM enumeration_members WHERE global_version_id = ?1
             ORDER BY enumeration_id, member_order, id",
        )?;
        let enumerations: Vec<Json> = query("SELECT id, name, label_id FROM enumerations WHERE global_version_id = ?1 ORDER BY id")?
            .into_iter()
            .map(|r| {
                let members: Vec<Json> = enum_members
                    .remove(&r[0].as_i64().unwrap_or(0))
                    .unwrap_or_default()
                    .into_iter()
                    .map(|m| json!({"Name": m[0], "Value": m[1], "LabelId": m[2], "ConfigurationEnabled": flag(&m[3])}))
                    .collect();
                json!({"Name": r[1], "LabelId": r[2], "Members": members})
            })
            .collect();
        let labels: HashMap<(String, String), String> =
            query("SELECT label_id, language, label_text FROM labels_cache WHERE global_version_id = ?1 AND label_text IS NOT NULL")?
                .into_iter()
                .map(|r| {
                    (
                        (r[0].as_str().unwrap_or_default().to_owned(), r[1].as_str().unwrap_or_default().to_owned()),
                        r[2].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
        let version = |i: usize| versions.first().and_then(|v| v[i].as_str().map(str::to_owned));
        Ok(Recording {
            modules: json!({ "value": modules }).to_string().into_bytes(),
            application_version: version(0),
            platform_version: version(1),
            data_entities: json!({ "value": data_entities }).to_string().into_bytes(),
            public_entities: json!({ "value": public_entities }).to_string().into_bytes(),
            enumerations: json!({ "value": enumerations }).to_string().into_bytes(),
            labels,
        })
    }
}

/// One version's answers, ready to be served.
pub struct Recording {
    modules: Vec<u8>,
    application_version: Option<String>,
    platform_version: Option<String>,
    data_entities: Vec<u8>,
    public_entities: Vec<u8>,
    enumerations: Vec<u8>,
    labels: HashMap<(String, String), String>,
}

/// `Labels(Id='…',Language='…')` → id and language, OData string literals unquoted.
fn label_key(path: &str) -> Option<(String, String)> {
    let args = path.strip_prefix("/Metadata/Labels(")?.strip_suffix(')')?;
    let literal = |s: &str| -> Option<(String, usize)> {
        let rest = s.strip_prefix('\'')?;
        let mut out = String::new();
        let mut chars = rest.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '\'' {
                if chars.peek().map(|(_, n)| *n) == Some('\'') {
                    chars.next();
                    out.push('\'');
                } else {
                    return Some((out, i + 2));
                }
            } else {
                out.push(c);
            }
        }
        None
    };
    let rest = args.strip_prefix("Id=")?;
    let (id, used) = literal(rest)?;
    let (language, _) = literal(rest[used..].strip_prefix(",Language=")?)?;
    Some((id, language))
}

impl Responder for Recording {
    fn respond(&self, method: &str, path_and_query: &str) -> (u16, Vec<u8>) {
        let raw_path = path_and_query.split('?').next().unwrap_or_default();
        let path = percent_encoding::percent_decode_str(raw_path).decode_utf8_lossy();
        let not_found = || (404, br#"{"error":{"code":"NotFound","message":"not in the imported cache"}}"#.to_vec());
        let value = |v: &Option<String>| match v {
            Some(v) => (200, json!({ "value": v }).to_string().into_bytes()),
            None => not_found(),
        };
        match (method, path.as_ref()) {
            ("POST", INSTALLED_MODULES) => (200, self.modules.clone()),
            ("POST", APPLICATION_VERSION) => value(&self.application_version),
            ("POST", PLATFORM_VERSION) => value(&self.platform_version),
            ("GET", "/Metadata/DataEntities") => (200, self.data_entities.clone()),
            ("GET", "/Metadata/PublicEntities") => (200, self.public_entities.clone()),
            ("GET", "/Metadata/PublicEnumerations") => (200, self.enumerations.clone()),
            ("GET", p) => match label_key(p).and_then(|key| self.labels.get(&key).map(|text| (key, text))) {
                Some(((id, language), text)) => (200, json!({ "Id": id, "Language": language, "Value": text }).to_string().into_bytes()),
                None => not_found(),
            },
            _ => not_found(),
        }
    }
}
