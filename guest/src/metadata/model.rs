//! The metadata the cache keeps: the WIT records themselves. Their field order (WIT's) is the
//! canonical order of the content hash, so changing it changes every object's identity. Fields a
//! read fills in (`label`) are empty in what is stored and hashed.

pub use crate::wit::types::{
    Action, ActionParameter, ActionType, Constraint, DataEntity, EnumMember, Enumeration, FixedConstraint, NavigationProperty, ObjectKind,
    Property, PropertyGroup, PublicEntity, ReferentialConstraint, RelatedFixedConstraint, UnknownConstraint,
};

/// The kinds of objects, as stored and as named in coverage and search.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    DataEntity,
    PublicEntity,
    Enumeration,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::DataEntity, Kind::PublicEntity, Kind::Enumeration];

    pub fn object_kind(self) -> ObjectKind {
        match self {
            Kind::DataEntity => ObjectKind::DataEntity,
            Kind::PublicEntity => ObjectKind::PublicEntity,
            Kind::Enumeration => ObjectKind::Enumeration,
        }
    }

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

impl ObjectKind {
    /// The name stored in the database and used in WIT.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::DataEntity => "data-entity",
            ObjectKind::PublicEntity => "public-entity",
            ObjectKind::Enumeration => "enumeration",
            ObjectKind::Action => "action",
            ObjectKind::Property => "property",
        }
    }

    pub fn parse(s: &str) -> Option<ObjectKind> {
        [ObjectKind::DataEntity, ObjectKind::PublicEntity, ObjectKind::Enumeration, ObjectKind::Action, ObjectKind::Property]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A constraint's fields as stored: property, referenced property, related property, value, value text.
pub type ConstraintColumns<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, Option<i64>, Option<&'a str>);

impl Constraint {
    /// The kind's name, as stored: `referential`, `fixed`, `related-fixed`, or the service's
    /// `@odata.type` for a kind this version does not know.
    pub fn kind(&self) -> &str {
        match self {
            Constraint::Referential(_) => "referential",
            Constraint::Fixed(_) => "fixed",
            Constraint::RelatedFixed(_) => "related-fixed",
            Constraint::Unknown(u) => &u.odata_type,
        }
    }

    /// Every field, as stored side by side: property, referenced property, related property,
    /// value, value text.
    pub fn columns(&self) -> ConstraintColumns<'_> {
        match self {
            Constraint::Referential(c) => (c.property.as_deref(), c.referenced_property.as_deref(), None, None, None),
            Constraint::Fixed(c) => (c.property.as_deref(), None, None, c.value, c.value_str.as_deref()),
            Constraint::RelatedFixed(c) => (None, None, c.related_property.as_deref(), c.value, c.value_str.as_deref()),
            Constraint::Unknown(c) => {
                (c.property.as_deref(), c.referenced_property.as_deref(), c.related_property.as_deref(), c.value, c.value_str.as_deref())
            }
        }
    }

    /// A constraint from its stored kind and fields.
    pub fn from_columns(
        kind: &str,
        property: Option<String>,
        referenced_property: Option<String>,
        related_property: Option<String>,
        value: Option<i64>,
        value_str: Option<String>,
    ) -> Constraint {
        match kind {
            "referential" => Constraint::Referential(ReferentialConstraint { property, referenced_property }),
            "fixed" => Constraint::Fixed(FixedConstraint { property, value, value_str }),
            "related-fixed" => Constraint::RelatedFixed(RelatedFixedConstraint { related_property, value, value_str }),
            other => Constraint::Unknown(UnknownConstraint {
                odata_type: other.to_owned(),
                property,
                referenced_property,
                related_property,
                value,
                value_str,
            }),
        }
    }
}
