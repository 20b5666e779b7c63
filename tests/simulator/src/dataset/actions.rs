//! OData actions of public entities, on about one entity in seven.

use crate::model::{Action, ActionParameter, BindingKind, TYPE_NAMESPACE, TypeRef};
use crate::rng::{Rng, unit};

const SHARE_WITH_ACTIONS: f64 = 0.15;
const INSTANCE_ACTIONS: &[&str] = &[
    "Activate",
    "Approve",
    "Calculate",
    "Cancel",
    "Close",
    "Confirm",
    "Copy",
    "Deactivate",
    "GetBalance",
    "GetStatus",
    "Post",
    "Print",
    "Recalculate",
    "Reject",
    "Release",
    "Reopen",
    "Submit",
    "Validate",
];
const SET_ACTIONS: &[&str] = &[
    "BulkUpdate",
    "CreateFromTemplate",
    "Export",
    "GetDefaultValues",
    "GetNextNumber",
    "GetSummary",
    "Import",
    "Synchronize",
    "ValidateAll",
];
const UNBOUND_ACTIONS: &[&str] = &["GetCompanyContext", "GetFeatureState", "InitializeParameters", "ResetCache", "RunCleanup"];
const PARAMETERS: &[(&str, &str, bool)] = &[
    ("asOfDate", "Edm.Date", false),
    ("company", "Edm.String", false),
    ("amount", "Edm.Decimal", false),
    ("quantity", "Edm.Decimal", false),
    ("reason", "Edm.String", false),
    ("comment", "Edm.String", false),
    ("lineNumbers", "Edm.Decimal", true),
    ("ids", "Edm.String", true),
    ("includeClosed", "Microsoft.Dynamics.DataEntities.NoYes", false),
    ("maxCount", "Edm.Int32", false),
    ("transactionDateTime", "Edm.DateTimeOffset", false),
];
const RETURN_TYPES: &[(&str, bool)] = &[
    ("Edm.String", false),
    ("Edm.Decimal", false),
    ("Edm.Boolean", false),
    ("Edm.Int32", false),
    ("Edm.Date", false),
    ("Edm.String", true),
];

fn type_ref(type_name: &str, is_collection: bool) -> TypeRef {
    TypeRef { type_name: type_name.to_string(), is_collection }
}

/// The action of the wire format's example entity, so every dataset has a known one.
fn get_credit_limit() -> Action {
    Action {
        name: "GetCreditLimit".to_string(),
        binding_kind: BindingKind::BoundToEntityInstance,
        field_lookup: None,
        parameters: vec![ActionParameter { name: "asOfDate".to_string(), type_ref: type_ref("Edm.Date", false) }],
        return_type: Some(type_ref("Edm.Decimal", false)),
    }
}

/// One action named `name` with random parameters and return type.
pub(crate) fn random_action(rng: &mut Rng, name: &str, binding_kind: BindingKind, entity: &str) -> Action {
    let mut parameters: Vec<ActionParameter> = Vec::new();
    for _ in 0..rng.between(0, 3) {
        let (pname, ty, collection) = *rng.pick(PARAMETERS);
        if !parameters.iter().any(|p| p.name == pname) {
            parameters.push(ActionParameter { name: pname.to_string(), type_ref: type_ref(ty, collection) });
        }
    }
    let return_type = if !rng.chance(0.7) {
        None
    } else if rng.chance(0.1) {
        Some(type_ref(&format!("{TYPE_NAMESPACE}.{entity}"), true))
    } else {
        let (ty, collection) = *rng.pick(RETURN_TYPES);
        Some(type_ref(ty, collection))
    };
    Action { name: name.to_string(), binding_kind, field_lookup: None, parameters, return_type }
}

pub(crate) fn build(entity: &str) -> Vec<Action> {
    let mut actions = Vec::new();
    if entity == "CustomerV3" {
        actions.push(get_credit_limit());
    } else if unit(&["has-actions", entity]) >= SHARE_WITH_ACTIONS {
        return actions;
    }
    let mut rng = Rng::from_parts(&["actions", entity]);
    for _ in 0..rng.between(1, 3) {
        let roll = rng.unit();
        let (kind, names) = if roll < 0.6 {
            (BindingKind::BoundToEntityInstance, INSTANCE_ACTIONS)
        } else if roll < 0.85 {
            (BindingKind::BoundToEntitySet, SET_ACTIONS)
        } else {
            (BindingKind::Unbound, UNBOUND_ACTIONS)
        };
        let name = *rng.pick(names);
        if !actions.iter().any(|a: &Action| a.name == name) {
            actions.push(random_action(&mut rng, name, kind, entity));
        }
    }
    actions
}

/// Names an evolved environment may add to an entity.
pub(crate) fn candidate_names() -> impl Iterator<Item = (&'static str, BindingKind)> {
    let with = |names: &'static [&'static str], kind| names.iter().map(move |n| (*n, kind));
    with(INSTANCE_ACTIONS, BindingKind::BoundToEntityInstance)
        .chain(with(SET_ACTIONS, BindingKind::BoundToEntitySet))
        .chain(with(UNBOUND_ACTIONS, BindingKind::Unbound))
}
