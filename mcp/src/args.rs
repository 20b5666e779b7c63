//! The tools' arguments: their JSON schemas (from the doc comments, written for a model choosing
//! a tool) and their parsing, which names the argument that was wrong.

use schemars::JsonSchema;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};

/// Arguments parsed with the path of the offending field in the error ("argument `limit`:
/// invalid type: string "x", expected u32"): the MCP error then names the argument, where serde
/// alone would only say what was expected. Its schema is `T`'s.
pub struct Args<T>(pub T);

impl<'de, T: DeserializeOwned> Deserialize<'de> for Args<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        serde_path_to_error::deserialize(value).map(Args).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." { D::Error::custom(inner) } else { D::Error::custom(format!("argument `{path}`: {inner}")) }
        })
    }
}

impl<T: JsonSchema> JsonSchema for Args<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// The kinds of object the cache holds.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A data entity (the AOT object, e.g. CustCustomerV3Entity).
    DataEntity,
    /// A public entity as OData exposes it (e.g. CustomerV3, entity set CustomersV3).
    PublicEntity,
    /// An enumeration (e.g. NoYes).
    Enumeration,
    /// An OData action bound to an entity.
    Action,
    /// A property of a public entity.
    Property,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// Words to find in names, entity set names and label texts; each word also matches as a
    /// prefix ("cust grou" finds CustomerGroup).
    pub text: String,
    /// The kinds of object to search; all kinds when omitted.
    #[serde(default)]
    pub kinds: Vec<Kind>,
    /// Only data entities of this category: Master, Transaction, Configuration, Reference,
    /// Document or Parameters.
    pub category: Option<String>,
    /// Only read-only (true) or writable (false) entities.
    pub read_only: Option<bool>,
    /// Only entities exposed (true) or not exposed (false) through OData.
    pub data_service_enabled: Option<bool>,
    /// Only entities usable (true) or not usable (false) in data management (import/export).
    pub data_management_enabled: Option<bool>,
    /// Only properties and actions of this entity (public entity name, entity set name or data
    /// entity name).
    pub entity: Option<String>,
    /// How many hits to return (default 20, at most 200).
    pub limit: Option<u32>,
    /// How many hits to skip, for the next page (default 0).
    pub offset: Option<u32>,
    /// The language of the label texts searched and shown (en-US, de, fr, ...; default en-US).
    pub language: Option<String>,
    /// The environment: its base URL or a profile name. Default: the server's profile's, else the one
    /// synced environment, or the most recently synced.
    pub environment: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntityArgs {
    /// A public entity name (CustomerV3), an entity set name (CustomersV3) or a data entity name
    /// (CustCustomerV3Entity); any case.
    pub name: String,
    /// Resolve label ids into texts in this language (en-US, de, ...). Without it, labels are given
    /// as ids only.
    pub language: Option<String>,
    /// Languages to try, in order, for a label missing in `language` (default: en-US).
    pub fallback: Option<Vec<String>>,
    /// The environment: its base URL or a profile name. Default: the server's profile's, else the one
    /// synced environment, or the most recently synced.
    pub environment: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnumerationArgs {
    /// The enumeration's name (NoYes, CustVendorBlocked, ...); any case.
    pub name: String,
    /// Resolve the member labels into texts in this language (en-US, de, ...).
    pub language: Option<String>,
    /// Languages to try, in order, for a label missing in `language` (default: en-US).
    pub fallback: Option<Vec<String>>,
    /// The environment: its base URL or a profile name. Default: the server's profile's, else the one
    /// synced environment, or the most recently synced.
    pub environment: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelsArgs {
    /// Label ids, such as "@SYS13342" or "@AccountsReceivable:CustomersV3" (1 to 500). A text that is
    /// not an @ reference is returned as its own text.
    pub ids: Vec<String>,
    /// The language of the texts (default en-US).
    pub language: Option<String>,
    /// Languages to try, in order, for a label missing in `language` (default: en-US).
    pub fallback: Option<Vec<String>>,
    /// The environment: its base URL or a profile name. Default: the server's profile's, else the one
    /// synced environment, or the most recently synced.
    pub environment: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionArgs {
    /// The environment whose version to show: its base URL or a profile name. Default: the server's profile's, the one synced environment, or
    /// the most recently synced.
    pub environment: Option<String>,
    /// Or a version by its modules hash (64 hexadecimal characters, or the first 8 or more).
    pub modules_hash: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareArgs {
    /// The first version: an environment's base URL or profile name, or a modules hash (8 or more characters).
    pub a: String,
    /// The second version, named the same way.
    pub b: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiffArgs {
    /// The old side: an environment's base URL or profile name, or a cached version's modules hash
    /// (8 or more characters).
    pub a: String,
    /// The new side, named the same way.
    pub b: String,
    /// Only changes of these kinds (action: changes of actions and their parameters; property: of
    /// properties and keys); all when omitted.
    #[serde(default)]
    pub kinds: Vec<Kind>,
    /// Only this entity (public entity, entity set or data entity name) and its counterpart.
    pub entity: Option<String>,
    /// Only what breaks an integration: removed entities, properties, actions, members; changed
    /// keys and types; properties made mandatory or not editable; entities made read-only or
    /// taken out of OData or data management.
    #[serde(default)]
    pub only_breaking: bool,
    /// Also label texts that changed, in these languages (both sides must cover them).
    #[serde(default)]
    pub label_languages: Vec<String>,
}

/// How a sync brings metadata in.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Decide from what the cache holds: nothing to do, link to an equal version, incremental, or full.
    Auto,
    /// Fetch everything.
    Full,
    /// Fetch the entities, store only what changed against an earlier version.
    Incremental,
    /// Fetch the entities only, no labels.
    EntitiesOnly,
    /// Fetch labels only, for a version whose entities are cached.
    LabelsOnly,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncArgs {
    /// The environment to sync: its base URL (https://contoso.operations.dynamics.com) or a profile name. Syncing
    /// reads from the environment; nothing else does.
    pub environment: String,
    /// How to sync (default auto).
    pub strategy: Option<Strategy>,
    /// Label languages to cover (default en-US; languages covered before are kept).
    #[serde(default)]
    pub languages: Vec<String>,
    /// Wait for the sync to end and return its report, sending progress notifications meanwhile
    /// (when the call carries a progress token). Default: return a handle at once; follow it with
    /// sync_status.
    #[serde(default)]
    pub wait: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HandleArgs {
    /// The handle sync returned (sync-1, sync-2, ...).
    pub handle: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryArgs {
    /// Only syncs of this environment (its base URL or a profile name). Default: all.
    pub environment: Option<String>,
    /// How many runs, newest first (default 20).
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatsArgs {
    /// Only this environment (its base URL or a profile name). Default: all environments.
    pub environment: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal<T: DeserializeOwned + std::fmt::Debug>(json: serde_json::Value) -> String {
        serde_json::from_value::<Args<T>>(json).map(|a| a.0).unwrap_err().to_string()
    }

    #[test]
    fn a_refused_argument_is_named() {
        let limit = refusal::<SearchArgs>(serde_json::json!({"text": "cust", "limit": "ten"}));
        assert!(limit.starts_with("argument `limit`:"), "{limit}");
        let kind = refusal::<SearchArgs>(serde_json::json!({"text": "cust", "kinds": ["public-entity", "table"]}));
        assert!(kind.starts_with("argument `kinds[1]`:") && kind.contains("data-entity"), "{kind}");
        let unknown = refusal::<EntityArgs>(serde_json::json!({"name": "CustomersV3", "colour": "blue"}));
        assert!(unknown.contains("`colour`"), "{unknown}");
        let missing = refusal::<EntityArgs>(serde_json::json!({}));
        assert!(missing.contains("`name`"), "{missing}");
    }

    #[test]
    fn arguments_that_are_right_parse() {
        let Args(a) = serde_json::from_value::<Args<SyncArgs>>(serde_json::json!({
            "environment": "https://contoso.operations.dynamics.com", "strategy": "entities-only", "languages": ["de"]
        }))
        .unwrap();
        assert!(matches!(a.strategy, Some(Strategy::EntitiesOnly)));
        assert!(!a.wait);
        assert_eq!(a.languages, ["de"]);
    }
}
