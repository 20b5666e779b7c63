//! Property groups (field groups of the entity): the keys, an overview, and a general group.

use crate::model::{Property, PropertyGroup};
use crate::rng::Rng;

/// `count` of `items`, chosen by `rng`, in their original order.
fn ordered_subset<'a>(rng: &mut Rng, items: &[&'a Property], count: usize) -> Vec<&'a Property> {
    let mut indices: Vec<usize> = (0..items.len()).collect();
    for i in 0..count.min(items.len()) {
        let j = i + rng.below(items.len() - i);
        indices.swap(i, j);
    }
    indices.truncate(count);
    indices.sort_unstable();
    indices.into_iter().map(|i| items[i]).collect()
}

fn group(name: &str, members: &[&Property]) -> PropertyGroup {
    PropertyGroup { name: name.to_string(), properties: members.iter().map(|p| p.name.clone()).collect() }
}

pub(crate) fn build(entity_name: &str, properties: &[Property]) -> Vec<PropertyGroup> {
    let mut rng = Rng::from_parts(&["property-groups", entity_name]);
    let mut groups = Vec::new();
    let keys: Vec<&Property> = properties.iter().filter(|p| p.is_key).collect();
    if !keys.is_empty() {
        groups.push(group("Identification", &keys));
    }
    let others: Vec<&Property> = properties.iter().filter(|p| !p.is_key && !p.is_dimension).collect();
    if others.len() >= 3 {
        let head = &others[..others.len().min(12)];
        let count = rng.between(2, head.len().min(5));
        groups.push(group("Overview", &ordered_subset(&mut rng, head, count)));
    }
    if others.len() >= 8 && rng.chance(0.6) {
        let tail = if others.len() > 16 { &others[12..] } else { &others[..] };
        let count = rng.between(3, tail.len().min(8));
        groups.push(group("General", &ordered_subset(&mut rng, tail, count)));
    }
    let dimensions: Vec<&Property> = properties.iter().filter(|p| p.is_dimension).collect();
    if !dimensions.is_empty() {
        groups.push(group("FinancialDimensions", &dimensions));
    }
    groups
}
