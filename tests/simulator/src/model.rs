//! The metadata objects exactly as the F&O metadata service serialises them (see WIRE.md).
//!
//! Every field the wire shows is always written, with `null` where the service writes null, so that
//! a client parsing these responses meets the same shapes as against a real environment.

use serde::{Deserialize, Serialize};

/// An item of `/Metadata/DataEntities`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DataEntity {
    pub name: String,
    pub public_entity_name: String,
    pub public_collection_name: String,
    pub label_id: String,
    pub entity_category: Option<EntityCategory>,
    pub data_service_enabled: bool,
    pub data_management_enabled: bool,
    pub is_read_only: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntityCategory {
    Master,
    Transaction,
    Configuration,
    Reference,
    Document,
    Parameters,
}

/// An item of `/Metadata/PublicEntities`, with all its details inline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublicEntity {
    pub name: String,
    pub entity_set_name: String,
    pub label_id: String,
    pub is_read_only: bool,
    pub configuration_enabled: bool,
    pub properties: Vec<Property>,
    pub navigation_properties: Vec<NavigationProperty>,
    pub property_groups: Vec<PropertyGroup>,
    pub actions: Vec<Action>,
}

impl PublicEntity {
    pub fn property(&self, name: &str) -> Option<&Property> {
        self.properties.iter().find(|p| p.name == name)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Property {
    pub name: String,
    pub type_name: String,
    pub data_type: DataType,
    pub label_id: String,
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

/// The X++ base type of a property, as the service names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataType {
    String,
    Integer,
    Int64,
    Real,
    Date,
    DateTime,
    Enum,
    Guid,
    Container,
    Boolean,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NavigationProperty {
    pub name: String,
    pub related_entity: String,
    /// The navigation property on the related entity that leads back, if there is one.
    pub related_relation_name: Option<String>,
    pub cardinality: Cardinality,
    pub constraints: Vec<Constraint>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cardinality {
    Single,
    Multiple,
}

/// A navigation constraint; the service tells the kinds apart by `@odata.type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "@odata.type")]
pub enum Constraint {
    #[serde(rename = "#Microsoft.Dynamics.Metadata.ReferentialConstraint", rename_all = "PascalCase")]
    Referential { property: String, referenced_property: String },
    #[serde(rename = "#Microsoft.Dynamics.Metadata.FixedConstraint", rename_all = "PascalCase")]
    Fixed { property: String, value: i64, value_str: String },
    #[serde(rename = "#Microsoft.Dynamics.Metadata.RelatedFixedConstraint", rename_all = "PascalCase")]
    RelatedFixed { related_property: String, value: i64, value_str: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PropertyGroup {
    pub name: String,
    pub properties: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Action {
    pub name: String,
    pub binding_kind: BindingKind,
    pub field_lookup: Option<String>,
    pub parameters: Vec<ActionParameter>,
    pub return_type: Option<TypeRef>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BindingKind {
    BoundToEntityInstance,
    BoundToEntitySet,
    Unbound,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ActionParameter {
    pub name: String,
    #[serde(rename = "Type")]
    pub type_ref: TypeRef,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TypeRef {
    pub type_name: String,
    pub is_collection: bool,
}

/// An item of `/Metadata/PublicEnumerations`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Enumeration {
    pub name: String,
    pub label_id: String,
    pub members: Vec<EnumerationMember>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnumerationMember {
    pub name: String,
    pub value: i64,
    pub label_id: String,
    pub configuration_enabled: bool,
}

/// The OData namespace of F&O enumeration and entity types (`Microsoft.Dynamics.DataEntities.NoYes`).
pub const TYPE_NAMESPACE: &str = "Microsoft.Dynamics.DataEntities";
