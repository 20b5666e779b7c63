//! Reading an item the usual way: its text straight into typed fields, in one pass.
//!
//! `parse` reads an item from a document tree (`serde_json::Value`), which allocates every key and
//! every value before a field is taken; at full scale that made reading `PublicEntities` three
//! times slower than the rows need. This reader takes the item's text into structs of exactly the
//! fields kept and gives up, returning `None`, on anything that is not the plain case: a missing or
//! empty name, a value of another type than expected, a repeated key, a constraint without its
//! `@odata.type`, a group member or a type given another way. [`from_text`] then reads the item
//! with `parse`, which either reads it just the same or fails with the words that say where — so
//! what an item becomes, and every message, is `parse`'s.

use super::model::*;
use super::parse::ParseResult;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor, value::MapAccessDeserializer};
use std::marker::PhantomData;

/// Reads one collection item from its text: the typed reader when it can, else `tree`.
pub fn from_text<W: Typed>(text: &str, tree: fn(&serde_json::Value) -> ParseResult<W::Model>) -> Result<W::Model, TextError> {
    if let Some(model) = serde_json::from_str::<Object<W>>(text).ok().and_then(|o| o.0.model()) {
        return Ok(model);
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| TextError::NotJson(e.to_string()))?;
    tree(&value).map_err(TextError::Invalid)
}

/// Why an item's text could not be read.
#[derive(Debug, PartialEq)]
pub enum TextError {
    NotJson(String),
    Invalid(String),
}

/// A wire shape and the model it reads into, `None` where `parse` must decide.
pub trait Typed: for<'de> Deserialize<'de> {
    type Model;
    fn model(self) -> Option<Self::Model>;
}

/// A JSON object only: serde's derived structs would also read one from an array, by position.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = Object<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Object)
            }
        }
        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

/// A name as `parse` accepts it: present and not empty.
fn named(name: Option<String>) -> Option<String> {
    name.filter(|n| !n.is_empty())
}

fn all<W, M>(items: Option<Vec<Object<W>>>, read: impl FnMut(W) -> Option<M>) -> Option<Vec<M>> {
    items.unwrap_or_default().into_iter().map(|o| o.0).map(read).collect()
}

#[derive(Deserialize)]
pub struct DataEntityWire {
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "PublicEntityName")]
    public_entity_name: Option<String>,
    #[serde(rename = "PublicCollectionName")]
    public_collection_name: Option<String>,
    #[serde(rename = "LabelId")]
    label_id: Option<String>,
    #[serde(rename = "EntityCategory")]
    category: Option<String>,
    #[serde(rename = "DataServiceEnabled")]
    data_service_enabled: Option<bool>,
    #[serde(rename = "DataManagementEnabled")]
    data_management_enabled: Option<bool>,
    #[serde(rename = "IsReadOnly")]
    is_read_only: Option<bool>,
}

impl Typed for DataEntityWire {
    type Model = DataEntity;
    fn model(self) -> Option<DataEntity> {
        Some(DataEntity {
            name: named(self.name)?,
            label: None,
            public_entity_name: self.public_entity_name,
            public_collection_name: self.public_collection_name,
            label_id: self.label_id,
            category: self.category,
            data_service_enabled: self.data_service_enabled.unwrap_or(false),
            data_management_enabled: self.data_management_enabled.unwrap_or(false),
            is_read_only: self.is_read_only.unwrap_or(false),
        })
    }
}

#[derive(Deserialize)]
pub struct PublicEntityWire {
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "EntitySetName")]
    entity_set_name: Option<String>,
    #[serde(rename = "LabelId")]
    label_id: Option<String>,
    #[serde(rename = "IsReadOnly")]
    is_read_only: Option<bool>,
    #[serde(rename = "ConfigurationEnabled")]
    configuration_enabled: Option<bool>,
    #[serde(rename = "Properties")]
    properties: Option<Vec<Object<PropertyWire>>>,
    #[serde(rename = "NavigationProperties")]
    navigation_properties: Option<Vec<Object<NavigationWire>>>,
    #[serde(rename = "PropertyGroups")]
    property_groups: Option<Vec<Object<GroupWire>>>,
    #[serde(rename = "Actions")]
    actions: Option<Vec<Object<ActionWire>>>,
}

impl Typed for PublicEntityWire {
    type Model = PublicEntity;
    fn model(self) -> Option<PublicEntity> {
        let name = named(self.name)?;
        let actions = all(self.actions, |a| a.model(&name))?;
        Some(PublicEntity {
            label: None,
            entity_set_name: self.entity_set_name,
            label_id: self.label_id,
            is_read_only: self.is_read_only.unwrap_or(false),
            configuration_enabled: self.configuration_enabled.unwrap_or(false),
            properties: all(self.properties, PropertyWire::model)?,
            navigation_properties: all(self.navigation_properties, NavigationWire::model)?,
            property_groups: all(self.property_groups, GroupWire::model)?,
            actions,
            name,
        })
    }
}

#[derive(Deserialize)]
struct PropertyWire {
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "TypeName")]
    type_name: Option<String>,
    #[serde(rename = "DataType")]
    data_type: Option<String>,
    #[serde(rename = "LabelId")]
    label_id: Option<String>,
    #[serde(rename = "IsKey")]
    is_key: Option<bool>,
    #[serde(rename = "IsMandatory")]
    is_mandatory: Option<bool>,
    #[serde(rename = "ConfigurationEnabled")]
    configuration_enabled: Option<bool>,
    #[serde(rename = "AllowEdit")]
    allow_edit: Option<bool>,
    #[serde(rename = "AllowEditOnCreate")]
    allow_edit_on_create: Option<bool>,
    #[serde(rename = "IsDimension")]
    is_dimension: Option<bool>,
    #[serde(rename = "DimensionRelation")]
    dimension_relation: Option<String>,
    #[serde(rename = "IsDynamicDimension")]
    is_dynamic_dimension: Option<bool>,
    #[serde(rename = "DimensionLegalEntityProperty")]
    dimension_legal_entity_property: Option<String>,
    #[serde(rename = "DimensionTypeProperty")]
    dimension_type_property: Option<String>,
}

impl PropertyWire {
    fn model(self) -> Option<Property> {
        Some(Property {
            name: named(self.name)?,
            label: None,
            type_name: self.type_name,
            data_type: self.data_type,
            label_id: self.label_id,
            is_key: self.is_key.unwrap_or(false),
            is_mandatory: self.is_mandatory.unwrap_or(false),
            configuration_enabled: self.configuration_enabled.unwrap_or(false),
            allow_edit: self.allow_edit.unwrap_or(false),
            allow_edit_on_create: self.allow_edit_on_create.unwrap_or(false),
            is_dimension: self.is_dimension.unwrap_or(false),
            dimension_relation: self.dimension_relation,
            is_dynamic_dimension: self.is_dynamic_dimension.unwrap_or(false),
            dimension_legal_entity_property: self.dimension_legal_entity_property,
            dimension_type_property: self.dimension_type_property,
        })
    }
}

#[derive(Deserialize)]
struct NavigationWire {
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "RelatedEntity")]
    related_entity: Option<String>,
    #[serde(rename = "RelatedRelationName")]
    related_relation_name: Option<String>,
    #[serde(rename = "Cardinality")]
    cardinality: Option<String>,
    #[serde(rename = "Constraints")]
    constraints: Option<Vec<Object<ConstraintWire>>>,
}

impl NavigationWire {
    fn model(self) -> Option<NavigationProperty> {
        Some(NavigationProperty {
            name: named(self.name)?,
            related_entity: self.related_entity,
            related_relation_name: self.related_relation_name,
            cardinality: self.cardinality,
            constraints: all(self.constraints, ConstraintWire::model)?,
        })
    }
}

#[derive(Deserialize)]
struct ConstraintWire {
    #[serde(rename = "@odata.type")]
    odata_type: Option<String>,
    #[serde(rename = "Property")]
    property: Option<String>,
    #[serde(rename = "ReferencedProperty")]
    referenced_property: Option<String>,
    #[serde(rename = "RelatedProperty")]
    related_property: Option<String>,
    #[serde(rename = "Value")]
    value: Option<i64>,
    #[serde(rename = "ValueStr")]
    value_str: Option<String>,
}

impl ConstraintWire {
    fn model(self) -> Option<Constraint> {
        // Without a type, `parse` tells the kind by which fields are present, null or not.
        let odata_type = self.odata_type?;
        let kind = match odata_type.rsplit('.').next().unwrap_or_default() {
            "" => return None,
            "ReferentialConstraint" => "referential",
            "FixedConstraint" => "fixed",
            "RelatedFixedConstraint" => "related-fixed",
            _ => odata_type.as_str(),
        };
        Some(Constraint::from_columns(kind, self.property, self.referenced_property, self.related_property, self.value, self.value_str))
    }
}

#[derive(Deserialize)]
struct GroupWire {
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "Properties")]
    properties: Option<Vec<String>>,
}

impl GroupWire {
    fn model(self) -> Option<PropertyGroup> {
        Some(PropertyGroup { name: named(self.name)?, properties: self.properties.unwrap_or_default() })
    }
}

#[derive(Deserialize)]
struct TypeWire {
    #[serde(rename = "TypeName")]
    type_name: Option<String>,
    #[serde(rename = "IsCollection")]
    is_collection: Option<bool>,
}

impl TypeWire {
    fn model(self) -> ActionType {
        ActionType { type_name: self.type_name, is_collection: self.is_collection.unwrap_or(false) }
    }
}

#[derive(Deserialize)]
struct ParameterWire {
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "Type")]
    type_ref: Option<Object<TypeWire>>,
}

#[derive(Deserialize)]
struct ActionWire {
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "BindingKind")]
    binding_kind: Option<String>,
    #[serde(rename = "FieldLookup")]
    field_lookup: Option<String>,
    #[serde(rename = "Parameters")]
    parameters: Option<Vec<Object<ParameterWire>>>,
    #[serde(rename = "ReturnType")]
    return_type: Option<Object<TypeWire>>,
}

impl ActionWire {
    fn model(self, entity: &str) -> Option<Action> {
        let parameters = all(self.parameters, |p| {
            let ty = p.type_ref.map_or(ActionType { type_name: None, is_collection: false }, |t| t.0.model());
            Some(ActionParameter { name: named(p.name)?, type_name: ty.type_name, is_collection: ty.is_collection })
        })?;
        Some(Action {
            name: named(self.name)?,
            binding_kind: self.binding_kind,
            field_lookup: self.field_lookup,
            parameters,
            return_type: self.return_type.map(|t| t.0.model()),
            entity: entity.to_owned(),
        })
    }
}

#[derive(Deserialize)]
pub struct EnumerationWire {
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "LabelId")]
    label_id: Option<String>,
    #[serde(rename = "Members")]
    members: Option<Vec<Object<MemberWire>>>,
}

#[derive(Deserialize)]
struct MemberWire {
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "Value")]
    value: Option<i64>,
    #[serde(rename = "LabelId")]
    label_id: Option<String>,
    #[serde(rename = "ConfigurationEnabled")]
    configuration_enabled: Option<bool>,
}

impl Typed for EnumerationWire {
    type Model = Enumeration;
    fn model(self) -> Option<Enumeration> {
        let members = all(self.members, |m| {
            Some(EnumMember {
                name: named(m.name)?,
                label: None,
                value: m.value?,
                label_id: m.label_id,
                configuration_enabled: m.configuration_enabled.unwrap_or(false),
            })
        })?;
        Some(Enumeration { name: named(self.name)?, label: None, label_id: self.label_id, members })
    }
}

/// A data entity from its text (see [`from_text`]).
pub fn data_entity(text: &str) -> Result<DataEntity, TextError> {
    from_text::<DataEntityWire>(text, super::parse::data_entity)
}

/// A public entity from its text (see [`from_text`]).
pub fn public_entity(text: &str) -> Result<PublicEntity, TextError> {
    from_text::<PublicEntityWire>(text, super::parse::public_entity)
}

/// An enumeration from its text (see [`from_text`]).
pub fn enumeration(text: &str) -> Result<Enumeration, TextError> {
    from_text::<EnumerationWire>(text, super::parse::enumeration)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire example of WIRE.md, as a service sends it.
    const CUSTOMER: &str = r##"{"Name": "CustomerV3", "EntitySetName": "CustomersV3", "LabelId": "@AccountsReceivable:CustomersV3",
     "IsReadOnly": false, "ConfigurationEnabled": true, "Unknown": {"x": [1, {"y": null}]},
     "Properties": [{"Name": "dataAreaId", "TypeName": "Edm.String", "DataType": "String", "LabelId": "@SYS13342",
                     "IsKey": true, "IsMandatory": true, "ConfigurationEnabled": true, "AllowEdit": false,
                     "AllowEditOnCreate": true, "IsDimension": false, "DimensionRelation": null,
                     "IsDynamicDimension": false, "DimensionLegalEntityProperty": null, "DimensionTypeProperty": "T\u00e9"}],
     "NavigationProperties": [{"Name": "CustomerGroup", "RelatedEntity": "CustomerGroup",
                               "RelatedRelationName": "Customers", "Cardinality": "Single",
                               "Constraints": [{"@odata.type": "#Microsoft.Dynamics.Metadata.ReferentialConstraint",
                                                "Property": "CustomerGroupId", "ReferencedProperty": "CustomerGroupId"},
                                               {"@odata.type": "#Microsoft.Dynamics.Metadata.FixedConstraint", "Property": "Type", "Value": 3, "ValueStr": "Customer"},
                                               {"@odata.type": "#Microsoft.Dynamics.Metadata.FutureConstraint", "Property": "A"}]}],
     "PropertyGroups": [{"Name": "Identification", "Properties": ["dataAreaId", "CustomerAccount"]}],
     "Actions": [{"Name": "GetCreditLimit", "BindingKind": "BoundToEntityInstance", "FieldLookup": null,
                  "Parameters": [{"Name": "asOfDate", "Type": {"TypeName": "Edm.Date", "IsCollection": false}}, {"Name": "x"}],
                  "ReturnType": {"TypeName": "Edm.Decimal", "IsCollection": true}}]}"##;

    fn typed_only(text: &str) -> Option<PublicEntity> {
        serde_json::from_str::<Object<PublicEntityWire>>(text).ok()?.0.model()
    }

    #[test]
    fn a_plain_item_is_read_by_the_typed_reader_as_parse_reads_it() {
        let tree = super::super::parse::public_entity(&serde_json::from_str(CUSTOMER).unwrap()).unwrap();
        assert_eq!(typed_only(CUSTOMER).expect("the typed reader reads the plain case"), tree);
        assert_eq!(tree.properties[0].dimension_type_property.as_deref(), Some("T\u{e9}"));
        assert_eq!(tree.navigation_properties[0].constraints[2].kind(), "#Microsoft.Dynamics.Metadata.FutureConstraint");
    }

    #[test]
    fn anything_else_is_left_to_parse() {
        // Each of these is read by `parse` (or refused by it), never by the typed reader.
        for text in [
            r#"{"Name": "P", "Properties": [["A"]]}"#,
            r#"{"Name": "P", "Name": "Q"}"#,
            r#"{"Name": ""}"#,
            r#"{"Name": "P", "PropertyGroups": [{"Name": "G", "Properties": [{"Name": "A"}]}]}"#,
            r#"{"Name": "P", "Actions": [{"Name": "A", "FieldLookup": {"k": 1}}]}"#,
            r#"{"Name": "P", "Actions": [{"Name": "A", "ReturnType": "Edm.String"}]}"#,
            r#"{"Name": "P", "NavigationProperties": [{"Name": "N", "Constraints": [{"ReferencedProperty": null}]}]}"#,
            r#"{"Name": "P", "IsReadOnly": "yes"}"#,
        ] {
            assert_eq!(typed_only(text), None, "{text}");
            let tree = super::super::parse::public_entity(&serde_json::from_str(text).unwrap());
            assert_eq!(public_entity(text), tree.map_err(TextError::Invalid), "{text}");
        }
        assert_eq!(public_entity(r#"{"Name": "P", "Name": "Q"}"#).unwrap().name, "Q", "the last of repeated keys, as parse");
        assert!(matches!(public_entity("[1]"), Err(TextError::Invalid(m)) if m.contains("an array")));
        assert!(matches!(public_entity("{"), Err(TextError::NotJson(_))));
    }
}
