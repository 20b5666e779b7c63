//! Enumerations: the real ones of the corpus, then more named and shaped like them.

use super::corpus::Corpus;
use super::names::split_words;
use crate::rng::Rng;
use std::collections::{BTreeMap, HashSet};

/// Enough generated enumerations for the largest dataset to choose from.
const GENERATED: usize = 700;
const COUNTRY_SUFFIXES: &[&str] = &["_BR", "_CN", "_CZ", "_IN", "_IT", "_JP", "_MX", "_PL", "_RU", "_TH"];

#[derive(Clone, Debug)]
pub(crate) struct EnumSpec {
    pub name: String,
    pub members: Vec<(String, i64)>,
}

/// The real enumerations (values are the positions), then the generated ones.
pub(crate) fn universe(corpus: &Corpus) -> Vec<EnumSpec> {
    let mut specs: Vec<EnumSpec> = corpus
        .enumerations
        .iter()
        .map(|(name, members)| EnumSpec {
            name: name.clone(),
            members: members.iter().enumerate().map(|(i, m)| (m.clone(), i as i64)).collect(),
        })
        .collect();
    let mut names: HashSet<String> = specs.iter().map(|s| s.name.clone()).collect();
    // A generated name is a real prefix (`Cust`, `Invent`, `Trv`…) with the tail of another real
    // name (`PostingType`, `Status`…), and takes that name's members: `CustPostingType` would
    // plausibly have the members of `LedgerPostingType`.
    let parts: Vec<(&str, &str)> = corpus
        .enumerations
        .iter()
        .filter_map(|(name, _)| {
            let first = split_words(name).into_iter().next()?;
            let tail = name.strip_prefix(first)?;
            (tail.len() > 2).then_some((first, tail))
        })
        .collect();
    let mut prefixes: Vec<&str> = parts.iter().map(|p| p.0).collect();
    prefixes.sort_unstable();
    prefixes.dedup();
    let mut rng = Rng::from_parts(&["generated-enumerations"]);
    let mut attempts = 0;
    while specs.len() < corpus.enumerations.len() + GENERATED && attempts < GENERATED * 20 {
        attempts += 1;
        let source = rng.below(corpus.enumerations.len());
        let (source_name, source_members) = &corpus.enumerations[source];
        let Some(tail) = parts.iter().find(|p| source_name.ends_with(p.1)).map(|p| p.1) else {
            continue;
        };
        let mut name = format!("{}{}", rng.pick(&prefixes), tail);
        if rng.chance(0.08) && !name.contains('_') {
            let suffix = rng.pick(COUNTRY_SUFFIXES);
            name.push_str(suffix);
        }
        if !names.insert(name.clone()) {
            continue;
        }
        // Some enumerations leave gaps in their values (members removed or reserved ranges).
        let gap_after = if rng.chance(0.06) { rng.below(source_members.len().max(1)) } else { usize::MAX };
        let members =
            source_members.iter().enumerate().map(|(i, m)| (m.clone(), if i > gap_after { i as i64 + 10 } else { i as i64 })).collect();
        specs.push(EnumSpec { name, members });
    }
    specs
}

/// Chooses `target` enumerations: `NoYes`, then the most referenced, then unreferenced ones in
/// universe order (real before generated).
pub(crate) fn choose(universe: &[EnumSpec], references: &BTreeMap<String, usize>, target: usize) -> Vec<usize> {
    let index: BTreeMap<&str, usize> = universe.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
    let mut referenced: Vec<(&String, &usize)> = references.iter().collect();
    referenced.sort_by(|a, b| {
        let no_yes = |n: &str| n != "NoYes";
        no_yes(a.0).cmp(&no_yes(b.0)).then(b.1.cmp(a.1)).then(a.0.cmp(b.0))
    });
    let mut chosen: Vec<usize> = referenced.iter().filter_map(|(n, _)| index.get(n.as_str()).copied()).collect();
    if let Some(no_yes) = index.get("NoYes")
        && !chosen.contains(no_yes)
    {
        chosen.insert(0, *no_yes);
    }
    chosen.truncate(target);
    let taken: HashSet<usize> = chosen.iter().copied().collect();
    let missing = target.saturating_sub(chosen.len());
    chosen.extend((0..universe.len()).filter(|i| !taken.contains(i)).take(missing));
    chosen.sort_by(|&a, &b| universe[a].name.cmp(&universe[b].name));
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::corpus::corpus;

    #[test]
    fn generated_names_are_new_and_members_nonempty() {
        let c = corpus();
        let u = universe(c);
        assert!(u.len() >= c.enumerations.len() + GENERATED);
        let names: HashSet<&str> = u.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.len(), u.len());
        assert!(u.iter().all(|s| !s.members.is_empty()));
    }

    #[test]
    fn choice_puts_no_yes_first_and_fills_the_target() {
        let u = universe(corpus());
        let refs = BTreeMap::from([("InvoiceType_MY".to_string(), 5), ("TransactionLogType".to_string(), 9)]);
        let chosen = choose(&u, &refs, 2);
        let names: Vec<&str> = chosen.iter().map(|&i| u[i].name.as_str()).collect();
        assert_eq!(names, ["NoYes", "TransactionLogType"]);
        assert_eq!(choose(&u, &refs, 10).len(), 10);
    }
}
