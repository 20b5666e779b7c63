//! The metadata the cache keeps, as read from the wire. Field order here is the canonical order of
//! the content hash, so changing it changes every object's identity.

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DataEntity {
    pub name: String,
    pub public_entity_name: Option<String>,
    pub public_collection_name: Option<String>,
    pub label_id: Option<String>,
    pub category: Option<String>,
    pub data_service_enabled: bool,
    pub data_management_enabled: bool,
    pub is_read_only: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PublicEntity {
    pub name: String,
    pub entity_set_name: Option<String>,
    pub label_id: Option<String>,
    pub is_read_only: bool,
    pub configuration_enabled: bool,
    pub properties: Vec<Property>,
    pub navigation_properties: Vec<NavigationProperty>,
    pub property_groups: Vec<PropertyGroup>,
    pub actions: Vec<Action>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Property {
    pub name: String,
    pub type_name: Option<String>,
    pub data_type: Option<String>,
    pub label_id: Option<String>,
    pub is_key: bool,
    pub is_mandatory: bool,
    pub configuration_enabled: bool,
    pub allow_edit: bool,
    pub allow_edit_on_create: bool,
    pub is_dimension: bool,
    pub dimension_relation: Option<String>,
    pub is_dynamic_dimension: bool,
    pub dimension_legal_entity_property: Option<String>,
    pub dimension_type_property: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NavigationProperty {
    pub name: String,
    pub related_entity: Option<String>,
    pub related_relation_name: Option<String>,
    pub cardinality: Option<String>,
    pub constraints: Vec<Constraint>,
}

/// The three constraint kinds are kept apart; a kind this code does not know keeps its
/// `@odata.type` so nothing is lost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Constraint {
    pub kind: String,
    pub property: Option<String>,
    pub referenced_property: Option<String>,
    pub related_property: Option<String>,
    pub value: Option<i64>,
    pub value_str: Option<String>,
}

pub const REFERENTIAL: &str = "referential";
pub const FIXED: &str = "fixed";
pub const RELATED_FIXED: &str = "related-fixed";

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PropertyGroup {
    pub name: String,
    pub properties: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Action {
    pub name: String,
    pub binding_kind: Option<String>,
    /// `FieldLookup` as JSON text when the service sends anything but null.
    pub field_lookup: Option<String>,
    pub parameters: Vec<Parameter>,
    pub return_type: Option<TypeRef>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Parameter {
    pub name: String,
    pub type_name: Option<String>,
    pub is_collection: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TypeRef {
    pub type_name: Option<String>,
    pub is_collection: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Enumeration {
    pub name: String,
    pub label_id: Option<String>,
    pub members: Vec<Member>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Member {
    pub name: String,
    pub value: i64,
    pub label_id: Option<String>,
    pub configuration_enabled: bool,
}

/// The kinds of objects, as stored and as named in coverage and search.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    DataEntity,
    PublicEntity,
    Enumeration,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::DataEntity, Kind::PublicEntity, Kind::Enumeration];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::DataEntity => "data-entity",
            Kind::PublicEntity => "public-entity",
            Kind::Enumeration => "enumeration",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The metadata collection this kind is read from.
    pub fn collection(self) -> &'static str {
        match self {
            Kind::DataEntity => "DataEntities",
            Kind::PublicEntity => "PublicEntities",
            Kind::Enumeration => "PublicEnumerations",
        }
    }
}

/// Whether a label id refers to a label (`@SYS13342`, `@ApplicationFoundation:Name`); any other
/// label id already is the text.
pub fn is_label_reference(label_id: &str) -> bool {
    label_id.starts_with('@') && label_id.len() > 1
}
