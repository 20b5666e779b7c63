//! The JSON printed for types shaped as `wasmtime::component::bindgen!` generates them.

use d365meta_wit_serialize::WitSerialize;
use serde_json::{Value, json};

/// `property` of this entity refers to `referenced-property` of the related one.
#[derive(WitSerialize)]
#[component(record)]
#[derive(Clone)]
pub struct ReferentialConstraint {
    #[component(name = "property")]
    pub property: Option<String>,
    #[component(name = "referenced-property")]
    pub referenced_property: Option<String>,
}

#[derive(WitSerialize)]
#[component(record)]
#[derive(Clone)]
pub struct FixedConstraint {
    #[component(name = "property")]
    pub property: Option<String>,
    /// A field named `value`, which must not be confused with the tag's `value`.
    #[component(name = "value")]
    pub value: Option<i64>,
}

#[derive(WitSerialize)]
#[component(record)]
#[component(wasmtime_crate = ::wasmtime)]
#[derive(Clone)]
pub struct Property {
    #[component(name = "name")]
    pub name: String,
    #[component(name = "label-id")]
    pub label_id: Option<String>,
    #[component(name = "type")]
    pub r#type: String,
    #[component(name = "constraints")]
    pub constraints: Vec<Constraint>,
    #[component(name = "strategy")]
    pub strategy: Strategy,
}

#[derive(WitSerialize)]
#[component(record)]
pub struct Entity {
    #[component(name = "name")]
    pub name: String,
    #[component(name = "properties")]
    pub properties: Vec<Property>,
    #[component(name = "key")]
    pub key: Option<ReferentialConstraint>,
}

/// A record holding borrowed data, as bindgen! generates for imports' parameters.
#[derive(WitSerialize)]
#[component(record)]
pub struct Request<'a> {
    #[component(name = "url")]
    pub url: &'a str,
    #[component(name = "headers")]
    pub headers: &'a [(String, String)],
}

#[derive(WitSerialize)]
#[component(enum)]
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Strategy {
    /// Decide from what is cached.
    #[component(name = "auto")]
    Auto,
    #[component(name = "entities-only")]
    EntitiesOnly,
    // No attribute: the name comes from the identifier.
    Http2Version,
}

#[derive(WitSerialize)]
#[component(variant)]
#[derive(Clone)]
pub enum Constraint {
    #[component(name = "referential")]
    Referential(ReferentialConstraint),
    #[component(name = "fixed")]
    Fixed(FixedConstraint),
    #[component(name = "none-here")]
    NoneHere,
}

/// A variant with payloads of every shape that is not a record.
#[derive(WitSerialize)]
#[component(variant)]
pub enum Phase {
    #[component(name = "detect")]
    Detect,
    #[component(name = "labels")]
    Labels(String),
    #[component(name = "count")]
    Count(u64),
    #[component(name = "ids")]
    Ids(Vec<u32>),
    #[component(name = "maybe")]
    Maybe(Option<String>),
    #[component(name = "strategy")]
    Strategy(Strategy),
    #[component(name = "constraint")]
    Constraint(Constraint),
    RelatedFixed(FixedConstraint),
}

/// A variant over borrowed data.
#[derive(WitSerialize)]
#[component(variant)]
pub enum Borrowed<'a> {
    #[component(name = "text")]
    Text(&'a str),
    #[component(name = "request")]
    Request(Request<'a>),
}

#[derive(WitSerialize)]
#[component(record)]
pub struct Error {
    #[component(name = "kind")]
    pub kind: Strategy,
    #[component(name = "message")]
    pub message: String,
}

#[derive(WitSerialize)]
#[component(record)]
pub struct LateKind {
    #[component(name = "message")]
    pub message: String,
    #[component(name = "kind")]
    pub kind: u8,
}

#[derive(WitSerialize)]
#[component(variant)]
pub enum Outcome {
    #[component(name = "failed")]
    Failed(Error),
    #[component(name = "late")]
    Late(LateKind),
}

fn to_value<T: serde::Serialize>(value: &T) -> Value {
    // Through the text, to check that the output is JSON that parses back to the value.
    let text = serde_json::to_string(value).expect("serializes");
    serde_json::from_str(&text).expect("parses")
}

fn referential() -> ReferentialConstraint {
    ReferentialConstraint { property: Some("a".into()), referenced_property: None }
}

#[test]
fn a_record_is_keyed_by_rust_field_names_in_order() {
    let text = serde_json::to_string(&referential()).unwrap();
    assert_eq!(text, r#"{"property":"a","referenced_property":null}"#);
}

#[test]
fn records_nest_with_options_lists_raw_identifiers_enums_and_variants() {
    let entity = Entity {
        name: "Customers".into(),
        properties: vec![Property {
            name: "Id".into(),
            label_id: Some("@SYS1".into()),
            r#type: "Edm.String".into(),
            constraints: vec![Constraint::Referential(referential()), Constraint::NoneHere],
            strategy: Strategy::EntitiesOnly,
        }],
        key: Some(referential()),
    };
    assert_eq!(
        to_value(&entity),
        json!({
            "name": "Customers",
            "properties": [{
                "name": "Id",
                "label_id": "@SYS1",
                "type": "Edm.String",
                "constraints": [
                    {"kind": "referential", "property": "a", "referenced_property": null},
                    {"kind": "none-here"},
                ],
                "strategy": "entities-only",
            }],
            "key": {"property": "a", "referenced_property": null},
        })
    );
    let empty = Entity { name: String::new(), properties: vec![], key: None };
    assert_eq!(to_value(&empty), json!({"name": "", "properties": [], "key": null}));
}

#[test]
fn a_record_with_a_lifetime_serializes_its_borrowed_fields() {
    let headers = [("accept".to_string(), "application/json".to_string())];
    let request = Request { url: "https://example.com/data", headers: &headers };
    assert_eq!(to_value(&request), json!({"url": "https://example.com/data", "headers": [["accept", "application/json"]]}));
}

#[test]
fn an_enum_is_its_wit_name_or_the_kebab_case_of_its_identifier() {
    assert_eq!(serde_json::to_string(&Strategy::Auto).unwrap(), r#""auto""#);
    assert_eq!(to_value(&Strategy::EntitiesOnly), json!("entities-only"));
    assert_eq!(to_value(&Strategy::Http2Version), json!("http2-version"));
}

#[test]
fn a_struct_payload_is_flattened_beside_the_kind() {
    assert_eq!(
        serde_json::to_string(&Constraint::Referential(referential())).unwrap(),
        r#"{"kind":"referential","property":"a","referenced_property":null}"#
    );
    // The payload's own `value` field stays a field: only a non-struct payload goes under `value`.
    let fixed = FixedConstraint { property: None, value: Some(7) };
    assert_eq!(to_value(&Constraint::Fixed(fixed.clone())), json!({"kind": "fixed", "property": null, "value": 7}));
    assert_eq!(to_value(&Phase::RelatedFixed(fixed)), json!({"kind": "related-fixed", "property": null, "value": 7}));
}

#[test]
fn a_unit_case_is_only_the_kind() {
    assert_eq!(serde_json::to_string(&Constraint::NoneHere).unwrap(), r#"{"kind":"none-here"}"#);
    assert_eq!(to_value(&Phase::Detect), json!({"kind": "detect"}));
}

#[test]
fn any_other_payload_goes_under_value() {
    assert_eq!(serde_json::to_string(&Phase::Labels("en-us".into())).unwrap(), r#"{"kind":"labels","value":"en-us"}"#);
    assert_eq!(to_value(&Phase::Count(3)), json!({"kind": "count", "value": 3}));
    assert_eq!(to_value(&Phase::Ids(vec![1, 2])), json!({"kind": "ids", "value": [1, 2]}));
    assert_eq!(to_value(&Phase::Ids(vec![])), json!({"kind": "ids", "value": []}));
    assert_eq!(to_value(&Phase::Maybe(None)), json!({"kind": "maybe", "value": null}));
    assert_eq!(to_value(&Phase::Maybe(Some("x".into()))), json!({"kind": "maybe", "value": "x"}));
    assert_eq!(to_value(&Phase::Strategy(Strategy::Auto)), json!({"kind": "strategy", "value": "auto"}));
}

#[test]
fn a_payload_starting_with_its_own_kind_goes_under_value() {
    // A nested variant: flattening it would print `kind` twice.
    assert_eq!(
        serde_json::to_string(&Phase::Constraint(Constraint::NoneHere)).unwrap(),
        r#"{"kind":"constraint","value":{"kind":"none-here"}}"#
    );
    assert_eq!(
        to_value(&Phase::Constraint(Constraint::Referential(referential()))),
        json!({
            "kind": "constraint",
            "value": {"kind": "referential", "property": "a", "referenced_property": null},
        })
    );
    // A record whose first field is `kind`, as WIT's `error { kind: error-kind, message: string }`.
    let error = Error { kind: Strategy::Auto, message: "m".into() };
    assert_eq!(to_value(&Outcome::Failed(error)), json!({"kind": "failed", "value": {"kind": "auto", "message": "m"}}));
}

#[test]
fn a_payload_with_kind_after_other_fields_is_an_error_not_a_duplicate_key() {
    let payload = LateKind { message: "m".into(), kind: 1 };
    let error = serde_json::to_string(&Outcome::Late(payload)).unwrap_err();
    assert!(error.to_string().contains("case `late`"), "{error}");
}

#[test]
fn borrowed_payloads_serialize_too() {
    assert_eq!(to_value(&Borrowed::Text("hi")), json!({"kind": "text", "value": "hi"}));
    let request = Request { url: "u", headers: &[] };
    assert_eq!(to_value(&Borrowed::Request(request)), json!({"kind": "request", "url": "u", "headers": []}));
}

#[test]
fn pretty_printing_and_to_value_agree_with_compact_text() {
    let constraint = Constraint::Referential(referential());
    let pretty: Value = serde_json::from_str(&serde_json::to_string_pretty(&constraint).unwrap()).unwrap();
    assert_eq!(pretty, serde_json::to_value(&constraint).unwrap());
    assert_eq!(serde_json::to_value(Phase::Ids(vec![4])).unwrap(), json!({"kind": "ids", "value": [4]}));
}
