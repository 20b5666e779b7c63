//! The data entities an environment can have, and which of them a dataset of a given size holds.
//!
//! The universe is every real data entity of the corpus, followed by later versions (`…V2`, `…V3`)
//! of the larger ones, as F&O keeps adding them. A dataset takes a connected neighbourhood of the
//! customer entities first (so small datasets still have navigation between their entities), then
//! the rest in a fixed order.

use super::corpus::{Corpus, CorpusEntity};
use super::names::{next_version, split_version};
use crate::rng::unit;
use std::collections::{HashMap, HashSet, VecDeque};

/// The anchors every dataset contains, whatever its size.
pub(crate) const ROOTS: &[&str] = &["CustCustomerV3Entity", "CustCustomerGroupEntity"];
/// Bases of later versions need at least this many properties: small entities rarely get a V2.
const VARIANT_MIN_PROPERTIES: usize = 12;
const MAX_VARIANTS: usize = 2500;

#[derive(Debug)]
pub(crate) enum Origin {
    /// Index into the corpus entities.
    Corpus(usize),
    /// A later version of another seed (index into the universe).
    Variant { base: usize },
}

#[derive(Debug)]
pub(crate) struct Seed {
    pub name: String,
    pub public_name: String,
    pub collection: String,
    /// The entity's display name, where the corpus has one (variants extend their base's).
    pub display: Option<String>,
    /// The label file of the entity's own labels: its functional area, else its module.
    pub label_file: String,
    pub module: String,
    pub company: bool,
    pub origin: Origin,
}

impl Seed {
    /// The corpus entity this seed is, or descends from.
    pub(crate) fn corpus<'c>(&self, universe: &[Seed], corpus: &'c Corpus) -> &'c CorpusEntity {
        match self.origin {
            Origin::Corpus(i) => &corpus.entities[i],
            Origin::Variant { base } => universe[base].corpus(universe, corpus),
        }
    }

    fn is_typed(&self, corpus: &Corpus) -> bool {
        matches!(self.origin, Origin::Corpus(i) if corpus.entities[i].typed.is_some())
    }
}

fn corpus_seed(index: usize, e: &CorpusEntity) -> Seed {
    let company = match &e.typed {
        Some(t) => t.keys.iter().any(|k| k == "dataAreaId"),
        None if e.company == 1 => true,
        // The CDM states the company context; entities known only by name are mostly per company.
        None if e.attributes.is_empty() => unit(&["company", &e.name]) < 0.7,
        None => false,
    };
    let label_file = match e.area.as_deref().and_then(|a| a.rsplit('/').next()) {
        Some(area) => area.to_string(),
        None => e.module.clone(),
    };
    Seed {
        name: e.name.clone(),
        public_name: e.public_name.clone(),
        collection: e.collection.clone(),
        display: e.display.clone(),
        label_file,
        module: e.module.clone(),
        company,
        origin: Origin::Corpus(index),
    }
}

/// `CustCustomerV3Entity` → `CustCustomerV4Entity`; `InventTableEntity` → `InventTableV2Entity`.
fn next_entity_name(name: &str) -> String {
    match name.strip_suffix("Entity") {
        Some(stem) => format!("{}Entity", next_version(stem)),
        None => next_version(name),
    }
}

fn next_display(display: &str) -> String {
    match display.rsplit_once(' ') {
        Some((head, tail)) if tail.starts_with('V') && tail[1..].parse::<u32>().is_ok() => {
            format!("{head} V{}", tail[1..].parse::<u32>().unwrap_or(1) + 1)
        }
        _ => format!("{display} V2"),
    }
}

fn property_count(e: &CorpusEntity) -> usize {
    e.typed.as_ref().map_or(e.attributes.len(), |t| t.properties.len())
}

pub(crate) fn build(corpus: &Corpus) -> Vec<Seed> {
    let mut seeds: Vec<Seed> = corpus.entities.iter().enumerate().map(|(i, e)| corpus_seed(i, e)).collect();
    let mut names: HashSet<String> = HashSet::new();
    for s in &seeds {
        names.insert(s.name.clone());
        names.insert(format!("public:{}", s.public_name));
        names.insert(format!("set:{}", s.collection));
    }
    let mut bases: Vec<usize> = (0..seeds.len()).filter(|&i| property_count(&corpus.entities[i]) >= VARIANT_MIN_PROPERTIES).collect();
    bases.sort_by(|&a, &b| {
        let (ea, eb) = (&corpus.entities[a], &corpus.entities[b]);
        property_count(eb).cmp(&property_count(ea)).then_with(|| ea.name.cmp(&eb.name))
    });
    // Two rounds: V2 of the bases, then V3 of those V2s.
    for _round in 0..2 {
        let mut next_bases = Vec::new();
        for base in bases {
            if seeds.len() - corpus.entities.len() >= MAX_VARIANTS {
                break;
            }
            let b = &seeds[base];
            let name = next_entity_name(&b.name);
            let public_name = next_version(&b.public_name);
            let collection = next_version(&b.collection);
            let keys = [name.clone(), format!("public:{public_name}"), format!("set:{collection}")];
            if keys.iter().any(|k| names.contains(k)) || split_version(&public_name).0.is_empty() {
                continue;
            }
            names.extend(keys);
            let seed = Seed {
                display: Some(next_display(b.display.as_deref().unwrap_or(&b.collection))),
                label_file: b.label_file.clone(),
                module: b.module.clone(),
                company: b.company,
                origin: Origin::Variant { base },
                name,
                public_name,
                collection,
            };
            next_bases.push(seeds.len());
            seeds.push(seed);
        }
        bases = next_bases;
    }
    seeds
}

/// Which seeds a dataset holds (universe indices, sorted by name) and which of them are
/// data-service enabled (exactly `public` of them).
pub(crate) fn select(universe: &[Seed], corpus: &Corpus, total: usize, public: usize) -> Vec<(usize, bool)> {
    let by_name: HashMap<&str, usize> = universe.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
    // After the neighbourhood of the roots: typed entities (the best-known), the rest of the
    // corpus, then later versions.
    let mut priority: Vec<usize> = (0..universe.len()).filter(|&i| universe[i].is_typed(corpus)).collect();
    priority.extend((0..universe.len()).filter(|&i| !universe[i].is_typed(corpus)));
    // Neighbours both ways: what an entity relates to, and the real entities relating to it.
    let mut neighbours: Vec<Vec<usize>> = universe
        .iter()
        .map(|s| s.corpus(universe, corpus).relations.iter().filter_map(|(_, t)| by_name.get(t.as_str()).copied()).collect())
        .collect();
    for (i, s) in universe.iter().enumerate().filter(|(_, s)| matches!(s.origin, Origin::Corpus(_))) {
        for (_, target) in &s.corpus(universe, corpus).relations {
            if let Some(&t) = by_name.get(target.as_str()) {
                neighbours[t].push(i);
            }
        }
    }
    let mut chosen = Vec::with_capacity(total);
    let mut seen = vec![false; universe.len()];
    let mut queue: VecDeque<usize> = ROOTS.iter().filter_map(|r| by_name.get(r).copied()).collect();
    for &i in &queue {
        seen[i] = true;
    }
    let mut rest = priority.into_iter();
    while chosen.len() < total {
        let next = match queue.pop_front() {
            Some(i) => i,
            None => match rest.find(|&i| !seen[i]) {
                Some(i) => {
                    seen[i] = true;
                    i
                }
                None => break,
            },
        };
        chosen.push(next);
        for &t in &neighbours[next] {
            if !seen[t] {
                seen[t] = true;
                queue.push_back(t);
            }
        }
    }
    // Data-service enabled: the roots and typed entities (they come from a live OData service),
    // then the entities ranked most likely; later versions exist mostly for OData.
    let rank = |i: usize| -> f64 {
        let s = &universe[i];
        if ROOTS.contains(&s.name.as_str()) || s.is_typed(corpus) {
            -1.0
        } else {
            let u = unit(&["data-service", &s.name]);
            if matches!(s.origin, Origin::Variant { .. }) { u * 0.5 } else { u }
        }
    };
    let mut ranked: Vec<(f64, usize)> = chosen.iter().map(|&i| (rank(i), i)).collect();
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| universe[a.1].name.cmp(&universe[b.1].name)));
    let enabled: HashSet<usize> = ranked.iter().take(public).map(|&(_, i)| i).collect();
    let mut result: Vec<(usize, bool)> = chosen.into_iter().map(|i| (i, enabled.contains(&i))).collect();
    result.sort_by(|a, b| universe[a.0].name.cmp(&universe[b.0].name));
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::corpus::corpus;

    #[test]
    fn variants_follow_the_version_pattern() {
        assert_eq!(next_entity_name("CustCustomerV3Entity"), "CustCustomerV4Entity");
        assert_eq!(next_entity_name("InventTableEntity"), "InventTableV2Entity");
        assert_eq!(next_display("Customers V3"), "Customers V4");
        assert_eq!(next_display("Customers"), "Customers V2");
    }

    #[test]
    fn selection_holds_the_roots_and_the_quota() {
        let c = corpus();
        let u = build(c);
        let picked = select(&u, c, 20, 12);
        assert_eq!(picked.len(), 20);
        assert_eq!(picked.iter().filter(|p| p.1).count(), 12);
        for root in ROOTS {
            assert!(picked.iter().any(|&(i, enabled)| u[i].name == *root && enabled), "{root}");
        }
    }
}
