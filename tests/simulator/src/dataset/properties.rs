//! The properties of a public entity: from the typed corpus where a live service described the
//! entity, else from its CDM attributes with types inferred from the names, else drawn from the
//! attribute names of its module; later versions add a few to their base's.

use super::corpus::{Attribute, Corpus};
use super::labels::{LabelBook, shared_id, specific_id};
use super::names::{label_text, split_version};
use super::universe::{Origin, Seed};
use crate::model::{DataType, Property, TYPE_NAMESPACE};
use crate::rng::{Rng, unit};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

/// Share of property references with a label of their own rather than the one shared by name.
const SPECIFIC_LABEL_SHARE: f64 = 0.005;
const KEY_SUFFIXES: &[&str] = &["Id", "ID", "Code", "Number", "Num", "Account", "Name"];
pub(crate) const DATA_AREA_ID: &str = "dataAreaId";
pub(crate) const COMPANY_LABEL: (&str, &str) = ("@SYS13342", "Company");

/// One property before its type and flags are decided.
struct Spec<'a> {
    name: String,
    display: Option<&'a str>,
    /// The OData type from the typed corpus (`#Enum` for an enumeration).
    typed: Option<&'a str>,
}

/// Attribute names of the corpus, by module, most frequent first, to draw plausible properties from.
struct Vocabulary {
    global: Vec<&'static str>,
    by_module: HashMap<&'static str, Vec<&'static str>>,
}

fn vocabulary(corpus: &'static Corpus) -> &'static Vocabulary {
    static VOCABULARY: OnceLock<Vocabulary> = OnceLock::new();
    VOCABULARY.get_or_init(|| {
        let mut global: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut by_module: HashMap<&'static str, BTreeMap<&'static str, usize>> = HashMap::new();
        for e in &corpus.entities {
            for a in &e.attributes {
                *global.entry(a.name()).or_default() += 1;
                *by_module.entry(e.module.as_str()).or_default().entry(a.name()).or_default() += 1;
            }
        }
        Vocabulary { global: by_frequency(global), by_module: by_module.into_iter().map(|(m, names)| (m, by_frequency(names))).collect() }
    })
}

fn by_frequency(counts: BTreeMap<&'static str, usize>) -> Vec<&'static str> {
    let mut names: Vec<(&'static str, usize)> = counts.into_iter().collect();
    names.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    names.into_iter().map(|(n, _)| n).collect()
}

impl Vocabulary {
    fn pool(&self, module: &str) -> &[&'static str] {
        match self.by_module.get(module) {
            Some(names) if names.len() >= 50 => names,
            _ => &self.global,
        }
    }
}

fn draw<'a>(rng: &mut Rng, pool: &[&'static str], count: usize, specs: &mut Vec<Spec<'a>>) {
    let mut taken: HashSet<String> = specs.iter().map(|s| s.name.clone()).collect();
    let mut added = 0;
    for _ in 0..count * 4 {
        if added == count {
            break;
        }
        // Common fields (Description, Name, ItemNumber…) recur far more often than rare ones.
        let name = pool[(pool.len() as f64 * rng.unit().powi(2)) as usize];
        if taken.insert(name.to_string()) {
            specs.push(Spec { name: name.to_string(), display: None, typed: None });
            added += 1;
        }
    }
}

fn infer_keys(seed: &Seed, specs: &[Spec]) -> Vec<String> {
    let mut keys = Vec::new();
    if seed.company {
        keys.push(DATA_AREA_ID.to_string());
    }
    let first = specs
        .iter()
        .filter(|s| s.name != DATA_AREA_ID)
        .find(|s| KEY_SUFFIXES.iter().any(|k| s.name.ends_with(k)))
        .or_else(|| specs.iter().find(|s| s.name != DATA_AREA_ID));
    if let Some(first) = first {
        keys.push(first.name.clone());
        if seed.public_name.contains("Line") && first.name != "LineNumber" && specs.iter().any(|s| s.name == "LineNumber") {
            keys.push("LineNumber".to_string());
        }
    }
    keys
}

fn specs<'a>(index: usize, universe: &'a [Seed], corpus: &'static Corpus) -> (Vec<Spec<'a>>, Vec<String>) {
    let seed = &universe[index];
    let mut specs = Vec::new();
    match seed.origin {
        Origin::Corpus(ci) => {
            let e = &corpus.entities[ci];
            if let Some(typed) = &e.typed {
                let displays: HashMap<&str, &str> = e.attributes.iter().filter_map(|a| Some((a.name(), a.display()?))).collect();
                specs.extend(typed.properties.iter().map(|(name, ty)| Spec {
                    name: name.clone(),
                    display: displays.get(name.as_str()).copied(),
                    typed: Some(ty.as_str()),
                }));
                return (specs, typed.keys.clone());
            }
            if seed.company {
                specs.push(Spec { name: DATA_AREA_ID.to_string(), display: None, typed: None });
            }
            if e.attributes.is_empty() {
                // Known by name only: a key named after the entity, then names of its module.
                let mut rng = Rng::from_parts(&["generated-properties", &seed.name]);
                let (stem, _) = split_version(&seed.public_name);
                specs.push(Spec { name: format!("{stem}Id"), display: None, typed: None });
                if stem.contains("Line") {
                    specs.push(Spec { name: "LineNumber".to_string(), display: None, typed: None });
                }
                let count = 3 + (rng.unit().powf(2.2) * 120.0) as usize;
                draw(&mut rng, vocabulary(corpus).pool(&seed.module), count, &mut specs);
            } else {
                let mut seen = HashSet::new();
                specs.extend(e.attributes.iter().filter(|a| seen.insert(a.name())).map(|a: &Attribute| Spec {
                    name: a.name().to_string(),
                    display: a.display(),
                    typed: None,
                }));
            }
            let keys = infer_keys(seed, &specs);
            (specs, keys)
        }
        Origin::Variant { base } => {
            let (mut specs, keys) = self::specs(base, universe, corpus);
            let mut rng = Rng::from_parts(&["variant-properties", &seed.name]);
            let count = rng.between(2, 10);
            draw(&mut rng, vocabulary(corpus).pool(&seed.module), count, &mut specs);
            (specs, keys)
        }
    }
}

/// The OData type name and data type of a property type.
pub(crate) fn odata_type(typed: &str) -> (String, DataType) {
    if let Some(enumeration) = typed.strip_prefix('#') {
        return (format!("{TYPE_NAMESPACE}.{enumeration}"), DataType::Enum);
    }
    let data_type = match typed {
        "Edm.Int32" => DataType::Integer,
        "Edm.Int64" => DataType::Int64,
        "Edm.Decimal" => DataType::Real,
        "Edm.Date" => DataType::Date,
        "Edm.DateTimeOffset" => DataType::DateTime,
        "Edm.Guid" => DataType::Guid,
        "Edm.Binary" => DataType::Container,
        "Edm.Boolean" => DataType::Boolean,
        _ => return ("Edm.String".to_string(), DataType::String),
    };
    (typed.to_string(), data_type)
}

/// The type F&O would most likely give a field of this name: `#Enum` or an `Edm` type.
pub(crate) fn infer_type(name: &str, enumerations: &HashSet<&str>) -> String {
    let ends = |suffixes: &[&str]| suffixes.iter().any(|s| name.ends_with(s));
    let flag = |prefix: &str| name.strip_prefix(prefix).and_then(|rest| rest.chars().next()).is_some_and(char::is_uppercase);
    let inferred = if name == DATA_AREA_ID {
        "Edm.String"
    } else if ends(&["RecId", "RecordId"]) {
        "Edm.Int64"
    } else if ends(&["DateTime", "DateTimeUtc", "UtcDateTime", "Timestamp"]) {
        "Edm.DateTimeOffset"
    } else if ends(&["Date", "ValidFrom", "ValidTo"]) {
        "Edm.Date"
    } else if flag("Is") || flag("Has") || ends(&["Enabled"]) {
        "#NoYes"
    } else if enumerations.contains(name) && name.len() > 6 {
        return format!("#{name}");
    } else if ends(&["Amount", "Qty", "Quantity", "Price", "Percent", "Percentage", "Total", "Weight", "Volume", "Factor", "LineNumber"]) {
        "Edm.Decimal"
    } else if ends(&["Count", "Days", "Months", "Level", "Priority", "Sequence", "Time"]) {
        "Edm.Int32"
    } else if ends(&["Guid"]) {
        "Edm.Guid"
    } else if ends(&["Image", "Picture", "Logo"]) {
        "Edm.Binary"
    } else {
        "Edm.String"
    };
    inferred.to_string()
}

/// The label id of a property: shared by name, sometimes the entity's own, rarely literal text.
fn property_label(book: &mut LabelBook, seed: &Seed, name: &str, display: Option<&str>) -> String {
    if name == DATA_AREA_ID {
        return book.well_known(COMPANY_LABEL.0, COMPANY_LABEL.1);
    }
    let text = display.map_or_else(|| label_text(name), str::to_string);
    let id = if unit(&["specific-label", &seed.name, name]) < SPECIFIC_LABEL_SHARE {
        specific_id(&seed.label_file, &seed.public_name, name)
    } else {
        shared_id(name)
    };
    book.reference(&id, &text, display.is_some(), &["literal-property", &seed.name, name])
}

/// The properties of the seed's public entity, in order, and its key names.
pub(crate) fn build(
    index: usize,
    universe: &[Seed],
    corpus: &'static Corpus,
    enumerations: &HashSet<&str>,
    read_only: bool,
    book: &mut LabelBook,
) -> (Vec<Property>, Vec<String>) {
    let seed = &universe[index];
    let (specs, keys) = specs(index, universe, corpus);
    let mut rng = Rng::from_parts(&["property-flags", &seed.name]);
    let mut properties: Vec<Property> = specs
        .iter()
        .map(|spec| {
            let ty = spec.typed.map_or_else(|| infer_type(&spec.name, enumerations), str::to_string);
            let (type_name, data_type) = odata_type(&ty);
            let is_key = keys.contains(&spec.name);
            Property {
                label_id: property_label(book, seed, &spec.name, spec.display),
                type_name,
                data_type,
                is_key,
                is_mandatory: is_key || rng.chance(0.12),
                configuration_enabled: is_key || rng.chance(0.97),
                allow_edit: !read_only && !is_key && !spec.name.ends_with("RecId") && rng.chance(0.9),
                allow_edit_on_create: !read_only && (is_key || rng.chance(0.97)),
                is_dimension: false,
                dimension_relation: None,
                is_dynamic_dimension: false,
                dimension_legal_entity_property: None,
                dimension_type_property: None,
                name: spec.name.clone(),
            }
        })
        .collect();
    mark_dimensions(&mut properties, seed.company);
    (properties, keys)
}

/// Financial dimension display values (`DefaultDimensionDisplayValue`, `AccountDisplayValue`):
/// dynamic dimension fields whose legal entity and (for ledger accounts) account type are other
/// properties of the entity.
fn mark_dimensions(properties: &mut [Property], company: bool) {
    let names: HashSet<String> = properties.iter().map(|p| p.name.clone()).collect();
    let legal_entity = if company {
        Some(DATA_AREA_ID.to_string())
    } else {
        ["LegalEntityId", "LegalEntity", "Company"].iter().find(|n| names.contains(**n)).map(|n| n.to_string())
    };
    for p in properties.iter_mut() {
        let Some(stem) = p.name.strip_suffix("DisplayValue") else {
            continue;
        };
        if p.data_type != DataType::String || !(stem.contains("Dimension") || stem.ends_with("Account")) {
            continue;
        }
        p.is_dimension = true;
        p.is_dynamic_dimension = true;
        p.dimension_relation = Some(stem.to_string());
        p.dimension_legal_entity_property = legal_entity.clone();
        p.dimension_type_property = Some(format!("{stem}Type")).filter(|t| names.contains(t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_follow_the_names() {
        let enums: HashSet<&str> = ["NoYes", "PartyType"].into_iter().collect();
        assert_eq!(infer_type("DeliveryDate", &enums), "Edm.Date");
        assert_eq!(infer_type("CreatedDateTime", &enums), "Edm.DateTimeOffset");
        assert_eq!(infer_type("CreditLimitAmount", &enums), "Edm.Decimal");
        assert_eq!(infer_type("SalesQty", &enums), "Edm.Decimal");
        assert_eq!(infer_type("PartyRecId", &enums), "Edm.Int64");
        assert_eq!(infer_type("IsBlocked", &enums), "#NoYes");
        assert_eq!(infer_type("WorkflowEnabled", &enums), "#NoYes");
        assert_eq!(infer_type("Issue", &enums), "Edm.String");
        assert_eq!(infer_type("PartyType", &enums), "#PartyType");
        assert_eq!(infer_type("CustomerGroupId", &enums), "Edm.String");
        assert_eq!(odata_type("#NoYes"), ("Microsoft.Dynamics.DataEntities.NoYes".to_string(), DataType::Enum));
        assert_eq!(odata_type("Edm.Date"), ("Edm.Date".to_string(), DataType::Date));
    }
}
