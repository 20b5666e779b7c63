//! Reading metadata items from the service's JSON.
//!
//! Tolerant where real services differ (extra fields are ignored; a missing or null optional
//! field is absent; a missing or null flag is false) and strict where data would be lost (an item
//! without a name, a field of the wrong type): those fail with the item's position and name.
//!
//! The cache remembers which object each item text it parsed became (`sync::sources`): a change
//! to what these functions make of a text must change `sync::sources::PARSER` too, or texts read
//! before would still stand for what the older reader made of them.

use super::model::*;
use serde_json::{Map, Value as Json};

type Obj = Map<String, Json>;

/// Why an item could not be read, with where.
pub type ParseResult<T> = Result<T, String>;

fn as_object<'a>(v: &'a Json, what: &str) -> ParseResult<&'a Obj> {
    v.as_object().ok_or_else(|| format!("{what} is {}, expected an object", crate::odata::kind_of(v)))
}

fn name(o: &Obj, what: &str) -> ParseResult<String> {
    match o.get("Name") {
        Some(Json::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Json::String(_)) => Err(format!("{what} has an empty Name")),
        Some(other) => Err(format!("{what} has a Name that is {}", crate::odata::kind_of(other))),
        None => Err(format!("{what} has no Name")),
    }
}

fn opt_str(o: &Obj, key: &str, what: &str) -> ParseResult<Option<String>> {
    match o.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("{what}: {key} is {}, expected a string", crate::odata::kind_of(other))),
    }
}

fn flag(o: &Obj, key: &str, what: &str) -> ParseResult<bool> {
    match o.get(key) {
        None | Some(Json::Null) => Ok(false),
        Some(Json::Bool(b)) => Ok(*b),
        Some(other) => Err(format!("{what}: {key} is {}, expected a boolean", crate::odata::kind_of(other))),
    }
}

fn list<'a>(o: &'a Obj, key: &str, what: &str) -> ParseResult<&'a [Json]> {
    match o.get(key) {
        None | Some(Json::Null) => Ok(&[]),
        Some(Json::Array(items)) => Ok(items),
        Some(other) => Err(format!("{what}: {key} is {}, expected an array", crate::odata::kind_of(other))),
    }
}

fn int(o: &Obj, key: &str, what: &str) -> ParseResult<Option<i64>> {
    match o.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Number(n)) => n.as_i64().map(Some).ok_or_else(|| format!("{what}: {key} is not an integer ({n})")),
        Some(other) => Err(format!("{what}: {key} is {}, expected an integer", crate::odata::kind_of(other))),
    }
}

pub fn data_entity(v: &Json) -> ParseResult<DataEntity> {
    let o = as_object(v, "the item")?;
    let name = name(o, "the item")?;
    let what = format!("data entity {name}");
    Ok(DataEntity {
        label: None,
        public_entity_name: opt_str(o, "PublicEntityName", &what)?,
        public_collection_name: opt_str(o, "PublicCollectionName", &what)?,
        label_id: opt_str(o, "LabelId", &what)?,
        category: opt_str(o, "EntityCategory", &what)?,
        data_service_enabled: flag(o, "DataServiceEnabled", &what)?,
        data_management_enabled: flag(o, "DataManagementEnabled", &what)?,
        is_read_only: flag(o, "IsReadOnly", &what)?,
        name,
    })
}

pub fn public_entity(v: &Json) -> ParseResult<PublicEntity> {
    let o = as_object(v, "the item")?;
    let name = name(o, "the item")?;
    let what = format!("public entity {name}");
    let properties = list(o, "Properties", &what)?
        .iter()
        .enumerate()
        .map(|(i, p)| property(p, &format!("{what}, property {}", i + 1)))
        .collect::<ParseResult<Vec<_>>>()?;
    let navigation_properties = list(o, "NavigationProperties", &what)?
        .iter()
        .enumerate()
        .map(|(i, p)| navigation_property(p, &format!("{what}, navigation property {}", i + 1)))
        .collect::<ParseResult<Vec<_>>>()?;
    let property_groups = list(o, "PropertyGroups", &what)?
        .iter()
        .enumerate()
        .map(|(i, g)| property_group(g, &format!("{what}, property group {}", i + 1)))
        .collect::<ParseResult<Vec<_>>>()?;
    let actions = list(o, "Actions", &what)?
        .iter()
        .enumerate()
        .map(|(i, a)| action(a, &name, &format!("{what}, action {}", i + 1)))
        .collect::<ParseResult<Vec<_>>>()?;
    Ok(PublicEntity {
        label: None,
        entity_set_name: opt_str(o, "EntitySetName", &what)?,
        label_id: opt_str(o, "LabelId", &what)?,
        is_read_only: flag(o, "IsReadOnly", &what)?,
        configuration_enabled: flag(o, "ConfigurationEnabled", &what)?,
        properties,
        navigation_properties,
        property_groups,
        actions,
        name,
    })
}

fn property(v: &Json, what: &str) -> ParseResult<Property> {
    let o = as_object(v, what)?;
    let name = name(o, what)?;
    let what = format!("{what} ({name})");
    Ok(Property {
        label: None,
        type_name: opt_str(o, "TypeName", &what)?,
        data_type: opt_str(o, "DataType", &what)?,
        label_id: opt_str(o, "LabelId", &what)?,
        is_key: flag(o, "IsKey", &what)?,
        is_mandatory: flag(o, "IsMandatory", &what)?,
        configuration_enabled: flag(o, "ConfigurationEnabled", &what)?,
        allow_edit: flag(o, "AllowEdit", &what)?,
        allow_edit_on_create: flag(o, "AllowEditOnCreate", &what)?,
        is_dimension: flag(o, "IsDimension", &what)?,
        dimension_relation: opt_str(o, "DimensionRelation", &what)?,
        is_dynamic_dimension: flag(o, "IsDynamicDimension", &what)?,
        dimension_legal_entity_property: opt_str(o, "DimensionLegalEntityProperty", &what)?,
        dimension_type_property: opt_str(o, "DimensionTypeProperty", &what)?,
        name,
    })
}

fn navigation_property(v: &Json, what: &str) -> ParseResult<NavigationProperty> {
    let o = as_object(v, what)?;
    let name = name(o, what)?;
    let what = format!("{what} ({name})");
    let constraints = list(o, "Constraints", &what)?
        .iter()
        .enumerate()
        .map(|(i, c)| constraint(c, &format!("{what}, constraint {}", i + 1)))
        .collect::<ParseResult<Vec<_>>>()?;
    Ok(NavigationProperty {
        related_entity: opt_str(o, "RelatedEntity", &what)?,
        related_relation_name: opt_str(o, "RelatedRelationName", &what)?,
        cardinality: opt_str(o, "Cardinality", &what)?,
        constraints,
        name,
    })
}

fn constraint(v: &Json, what: &str) -> ParseResult<Constraint> {
    let o = as_object(v, what)?;
    let odata_type = opt_str(o, "@odata.type", what)?.unwrap_or_default();
    let short = odata_type.rsplit('.').next().unwrap_or_default();
    let kind = match short {
        "ReferentialConstraint" => "referential",
        "FixedConstraint" => "fixed",
        "RelatedFixedConstraint" => "related-fixed",
        // Without a type, the fields tell the kind apart.
        "" if o.contains_key("ReferencedProperty") => "referential",
        "" if o.contains_key("RelatedProperty") => "related-fixed",
        "" if o.contains_key("Value") || o.contains_key("ValueStr") => "fixed",
        "" => return Err(format!("{what} has no @odata.type and no fields that tell its kind")),
        // A kind this version does not know keeps its `@odata.type`, so nothing is lost.
        _ => odata_type.as_str(),
    };
    Ok(Constraint::from_columns(
        kind,
        opt_str(o, "Property", what)?,
        opt_str(o, "ReferencedProperty", what)?,
        opt_str(o, "RelatedProperty", what)?,
        int(o, "Value", what)?,
        opt_str(o, "ValueStr", what)?,
    ))
}

fn property_group(v: &Json, what: &str) -> ParseResult<PropertyGroup> {
    let o = as_object(v, what)?;
    let name = name(o, what)?;
    let properties = list(o, "Properties", what)?
        .iter()
        .map(|p| match p {
            Json::String(s) => Ok(s.clone()),
            // Some services describe members as objects with a Name.
            Json::Object(m) => self::name(m, &format!("{what} ({name}), a member")),
            other => Err(format!("{what} ({name}): a member is {}", crate::odata::kind_of(other))),
        })
        .collect::<ParseResult<Vec<_>>>()?;
    Ok(PropertyGroup { name, properties })
}

fn type_ref(v: &Json, what: &str) -> ParseResult<ActionType> {
    match v {
        Json::String(s) => Ok(ActionType { type_name: Some(s.clone()), is_collection: false }),
        Json::Object(o) => Ok(ActionType { type_name: opt_str(o, "TypeName", what)?, is_collection: flag(o, "IsCollection", what)? }),
        other => Err(format!("{what} is {}", crate::odata::kind_of(other))),
    }
}

fn action(v: &Json, entity: &str, what: &str) -> ParseResult<Action> {
    let o = as_object(v, what)?;
    let name = name(o, what)?;
    let what = format!("{what} ({name})");
    let parameters = list(o, "Parameters", &what)?
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let pw = format!("{what}, parameter {}", i + 1);
            let po = as_object(p, &pw)?;
            let pname = self::name(po, &pw)?;
            let ty = match po.get("Type") {
                None | Some(Json::Null) => ActionType { type_name: None, is_collection: false },
                Some(t) => type_ref(t, &format!("{pw} ({pname}): Type"))?,
            };
            Ok(ActionParameter { name: pname, type_name: ty.type_name, is_collection: ty.is_collection })
        })
        .collect::<ParseResult<Vec<_>>>()?;
    let return_type = match o.get("ReturnType") {
        None | Some(Json::Null) => None,
        Some(t) => Some(type_ref(t, &format!("{what}: ReturnType"))?),
    };
    let field_lookup = match o.get("FieldLookup") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    Ok(Action { binding_kind: opt_str(o, "BindingKind", &what)?, field_lookup, parameters, return_type, name, entity: entity.to_owned() })
}

pub fn enumeration(v: &Json) -> ParseResult<Enumeration> {
    let o = as_object(v, "the item")?;
    let name = name(o, "the item")?;
    let what = format!("enumeration {name}");
    let members = list(o, "Members", &what)?
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mw = format!("{what}, member {}", i + 1);
            let mo = as_object(m, &mw)?;
            let mname = self::name(mo, &mw)?;
            let mw = format!("{mw} ({mname})");
            Ok(EnumMember {
                label: None,
                value: int(mo, "Value", &mw)?.ok_or_else(|| format!("{mw} has no Value"))?,
                label_id: opt_str(mo, "LabelId", &mw)?,
                configuration_enabled: flag(mo, "ConfigurationEnabled", &mw)?,
                name: mname,
            })
        })
        .collect::<ParseResult<Vec<_>>>()?;
    Ok(Enumeration { label: None, label_id: opt_str(o, "LabelId", &what)?, members, name })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_wire_example_of_a_public_entity() {
        let v = json!({"Name": "CustomerV3", "EntitySetName": "CustomersV3", "LabelId": "@AccountsReceivable:CustomersV3",
         "IsReadOnly": false, "ConfigurationEnabled": true, "Unknown": {"x": 1},
         "Properties": [{"Name": "dataAreaId", "TypeName": "Edm.String", "DataType": "String", "LabelId": "@SYS13342",
                         "IsKey": true, "IsMandatory": true, "ConfigurationEnabled": true, "AllowEdit": false,
                         "AllowEditOnCreate": true, "IsDimension": false, "DimensionRelation": null,
                         "IsDynamicDimension": false, "DimensionLegalEntityProperty": null, "DimensionTypeProperty": null}],
         "NavigationProperties": [{"Name": "CustomerGroup", "RelatedEntity": "CustomerGroup",
                                   "RelatedRelationName": "Customers", "Cardinality": "Single",
                                   "Constraints": [{"@odata.type": "#Microsoft.Dynamics.Metadata.ReferentialConstraint",
                                                    "Property": "CustomerGroupId", "ReferencedProperty": "CustomerGroupId"},
                                                   {"@odata.type": "#Microsoft.Dynamics.Metadata.FixedConstraint", "Property": "Type", "Value": 3, "ValueStr": "Customer"},
                                                   {"@odata.type": "#Microsoft.Dynamics.Metadata.RelatedFixedConstraint", "RelatedProperty": "Kind", "Value": 1, "ValueStr": "Org"}]}],
         "PropertyGroups": [{"Name": "Identification", "Properties": ["dataAreaId", "CustomerAccount"]}],
         "Actions": [{"Name": "GetCreditLimit", "BindingKind": "BoundToEntityInstance", "FieldLookup": null,
                      "Parameters": [{"Name": "asOfDate", "Type": {"TypeName": "Edm.Date", "IsCollection": false}}],
                      "ReturnType": {"TypeName": "Edm.Decimal", "IsCollection": false}}]});
        let e = public_entity(&v).unwrap();
        assert_eq!(e.entity_set_name.as_deref(), Some("CustomersV3"));
        assert!(e.properties[0].is_key && e.properties[0].allow_edit_on_create && !e.properties[0].allow_edit);
        let kinds: Vec<&str> = e.navigation_properties[0].constraints.iter().map(Constraint::kind).collect();
        assert_eq!(kinds, ["referential", "fixed", "related-fixed"]);
        assert!(matches!(&e.navigation_properties[0].constraints[1], Constraint::Fixed(c) if c.value == Some(3)));
        assert!(
            matches!(&e.navigation_properties[0].constraints[2], Constraint::RelatedFixed(c) if c.related_property.as_deref() == Some("Kind"))
        );
        assert_eq!(e.actions[0].entity, "CustomerV3");
        assert_eq!(e.property_groups[0].properties, ["dataAreaId", "CustomerAccount"]);
        assert_eq!(e.actions[0].parameters[0].type_name.as_deref(), Some("Edm.Date"));
        assert_eq!(e.actions[0].return_type.as_ref().unwrap().type_name.as_deref(), Some("Edm.Decimal"));
    }

    #[test]
    fn missing_optional_fields_are_absent_and_wrong_types_are_named() {
        let e = data_entity(&json!({"Name": "X"})).unwrap();
        assert_eq!((e.label_id, e.data_service_enabled), (None, false));
        let err = data_entity(&json!({"Name": "X", "IsReadOnly": "yes"})).unwrap_err();
        assert_eq!(err, "data entity X: IsReadOnly is a string, expected a boolean");
        let err = public_entity(&json!({"Name": "P", "Properties": [{"Name": "A"}, {"TypeName": "Edm.String"}]})).unwrap_err();
        assert_eq!(err, "public entity P, property 2 has no Name");
        let err = enumeration(&json!({"Name": "E", "Members": [{"Name": "A"}]})).unwrap_err();
        assert_eq!(err, "enumeration E, member 1 (A) has no Value");
        assert!(data_entity(&json!(["not", "an", "object"])).unwrap_err().contains("an array"));
    }

    #[test]
    fn unknown_constraint_kinds_are_kept() {
        let v = json!({"Name": "P", "NavigationProperties": [{"Name": "N", "Constraints": [{"@odata.type": "#Microsoft.Dynamics.Metadata.FutureConstraint", "Property": "A"}]}]});
        let e = public_entity(&v).unwrap();
        let c = &e.navigation_properties[0].constraints[0];
        assert_eq!(c.kind(), "#Microsoft.Dynamics.Metadata.FutureConstraint");
        assert!(matches!(c, Constraint::Unknown(u) if u.property.as_deref() == Some("A")));
    }
}
