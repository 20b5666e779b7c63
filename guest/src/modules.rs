//! Installed modules: parsing `GetInstalledModules` lines, the modules hash, and comparing two lists.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub use crate::wit::types::{Module, ModuleChange, ModuleDiff, UnparsedLine};

/// The parsed module list of one environment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModuleList {
    /// Sorted by module id, then version (byte order).
    pub modules: Vec<Module>,
    pub unparsed: Vec<UnparsedLine>,
}

const FIELDS: [&str; 5] = ["Name", "Version", "Module", "Publisher", "DisplayName"];

/// Parses one `Name: … | Version: … | Module: … | Publisher: … | DisplayName: …` line.
///
/// Fields are split on ` | `, but a segment that does not start a new, not yet seen field continues
/// the previous one: display names (and publishers) may themselves contain ` | `.
pub fn parse_line(line: &str) -> Result<Module, String> {
    let mut values: [Option<String>; 5] = Default::default();
    let mut current: Option<usize> = None;
    for segment in line.split(" | ") {
        let starts = FIELDS.iter().position(|field| segment.strip_prefix(field).is_some_and(|rest| rest.starts_with(':')));
        match starts {
            Some(i) if values[i].is_none() => {
                let value = segment[FIELDS[i].len() + 1..].trim();
                values[i] = Some(value.to_owned());
                current = Some(i);
            }
            _ => match current {
                Some(i) => {
                    let v = values[i].get_or_insert_with(String::new);
                    v.push_str(" | ");
                    v.push_str(segment.trim_end());
                }
                None => return Err(format!("does not start with a field name ({})", FIELDS.join(", "))),
            },
        }
    }
    let [name, version, module_id, publisher, display_name] = values;
    let module_id = module_id.filter(|m| !m.is_empty()).ok_or("no `Module:` field")?;
    let version = version.filter(|v| !v.is_empty()).ok_or("no `Version:` field")?;
    if module_id.contains(|c: char| c.is_whitespace() || c == ':' || c == '|') {
        return Err(format!("module id {module_id:?} contains whitespace, ':' or '|'"));
    }
    if version.contains(|c: char| c.is_whitespace() || c == '|') {
        return Err(format!("version {version:?} contains whitespace or '|'"));
    }
    Ok(Module {
        name: name.unwrap_or_else(|| module_id.clone()),
        version,
        publisher: publisher.unwrap_or_default(),
        display_name: display_name.unwrap_or_default(),
        module_id,
    })
}

/// Parses every line; lines that do not parse are kept in `unparsed` with their reason.
pub fn parse_lines<S: AsRef<str>>(lines: &[S]) -> ModuleList {
    let mut list = ModuleList::default();
    for (i, line) in lines.iter().enumerate() {
        let text = line.as_ref();
        match parse_line(text) {
            Ok(m) => list.modules.push(m),
            Err(reason) => list.unparsed.push(UnparsedLine { line: i as u32 + 1, text: text.to_owned(), reason }),
        }
    }
    sort_modules(&mut list.modules);
    list
}

pub fn sort_modules(modules: &mut [Module]) {
    modules.sort_by(|a, b| (a.module_id.as_bytes(), a.version.as_bytes()).cmp(&(b.module_id.as_bytes(), b.version.as_bytes())));
}

/// The modules hash: SHA-256 (lower-case hex) of the `module id:version` pairs sorted by module id and
/// joined with `|` — the value the Python d365fo-client computes.
///
/// Lines that did not parse are appended, sorted, as `|?<text>`: two environments that differ only in
/// lines this code cannot read must not be taken for one version. With every line parsed the hash is
/// exactly the Python one.
pub fn modules_hash(list: &ModuleList) -> String {
    let mut modules: Vec<&Module> = list.modules.iter().collect();
    modules.sort_by(|a, b| (a.module_id.as_bytes(), a.version.as_bytes()).cmp(&(b.module_id.as_bytes(), b.version.as_bytes())));
    let mut input = modules.iter().map(|m| format!("{}:{}", m.module_id, m.version)).collect::<Vec<_>>().join("|");
    let mut unparsed: Vec<&str> = list.unparsed.iter().map(|u| u.text.as_str()).collect();
    unparsed.sort_unstable();
    for text in unparsed {
        input.push_str("|?");
        input.push_str(text);
    }
    sha256_hex(input.as_bytes())
}

/// The identity of an environment whose modules are unknown: its application and platform versions.
pub fn fallback_hash(application_version: &str, platform_version: &str) -> String {
    sha256_hex(format!("fallback|application:{application_version}|platform:{platform_version}").as_bytes())
}

/// The first 12 characters of a hash, for people.
pub fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0'));
    }
    out
}

/// What a user should know about a module list's identity.
pub fn warnings(list: &ModuleList) -> Vec<String> {
    let mut out = Vec::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for m in &list.modules {
        *counts.entry(m.module_id.as_str()).or_default() += 1;
    }
    let duplicates: Vec<&str> = counts.iter().filter(|(_, n)| **n > 1).map(|(id, _)| *id).collect();
    if !duplicates.is_empty() {
        out.push(format!("module ids listed more than once: {}", duplicates.join(", ")));
    }
    let placeholders: Vec<&str> = list.modules.iter().filter(|m| m.version == "1.0.0.0").map(|m| m.module_id.as_str()).collect();
    if !placeholders.is_empty() {
        out.push(format!(
            "{} module(s) report version 1.0.0.0, as custom models on development boxes do; their content can change without changing this identity: {}",
            placeholders.len(),
            abbreviate(&placeholders, 5)
        ));
    }
    if !list.unparsed.is_empty() {
        out.push(format!(
            "{} line(s) of GetInstalledModules could not be parsed; their text is part of the modules hash",
            list.unparsed.len()
        ));
    }
    out
}

fn abbreviate(items: &[&str], max: usize) -> String {
    if items.len() <= max { items.join(", ") } else { format!("{}, and {} more", items[..max].join(", "), items.len() - max) }
}

/// Compares two module lists by module id. A module id listed several times compares by its sorted
/// versions joined with `,`, so duplicates never hide a change.
pub fn diff(a: &[Module], b: &[Module]) -> ModuleDiff {
    fn index(list: &[Module]) -> BTreeMap<&str, Vec<&Module>> {
        let mut map: BTreeMap<&str, Vec<&Module>> = BTreeMap::new();
        for m in list {
            map.entry(m.module_id.as_str()).or_default().push(m);
        }
        for v in map.values_mut() {
            v.sort_by(|x, y| x.version.cmp(&y.version));
        }
        map
    }
    let versions = |ms: &[&Module]| ms.iter().map(|m| m.version.as_str()).collect::<Vec<_>>().join(",");
    let (ia, ib) = (index(a), index(b));
    let mut out = ModuleDiff { added: vec![], removed: vec![], changed: vec![], unchanged: 0 };
    for (id, ma) in &ia {
        match ib.get(id) {
            None => out.removed.extend(ma.iter().map(|m| (*m).clone())),
            Some(mb) => {
                let (va, vb) = (versions(ma), versions(mb));
                if va == vb {
                    out.unchanged += 1;
                } else {
                    out.changed.push(ModuleChange { module_id: (*id).to_owned(), old_version: va, new_version: vb });
                }
            }
        }
    }
    for (id, mb) in &ib {
        if !ia.contains_key(id) {
            out.added.extend(mb.iter().map(|m| (*m).clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &str, version: &str) -> String {
        format!("Name: {id} | Version: {version} | Module: {id} | Publisher: Microsoft Corporation | DisplayName: {id}")
    }

    #[test]
    fn parses_a_real_line() {
        let m = parse_line("Name: ApplicationFoundation | Version: 7.0.7521.60 | Module: ApplicationFoundation | Publisher: Microsoft Corporation | DisplayName: Application Foundation").unwrap();
        assert_eq!(m.module_id, "ApplicationFoundation");
        assert_eq!(m.version, "7.0.7521.60");
        assert_eq!(m.publisher, "Microsoft Corporation");
        assert_eq!(m.display_name, "Application Foundation");
    }

    #[test]
    fn a_display_name_may_contain_the_separator() {
        let m = parse_line(
            "Name: Fleet | Version: 1.2 | Module: FleetManagement | Publisher: Contoso | DisplayName: Fleet | Trucks | Version: 2",
        )
        .unwrap();
        assert_eq!(m.display_name, "Fleet | Trucks | Version: 2");
        assert_eq!(m.version, "1.2");
        assert_eq!(m.module_id, "FleetManagement");
    }

    #[test]
    fn field_order_does_not_matter_and_empty_fields_are_allowed() {
        let m = parse_line("Module: X | Version: 3.0 | Name: Ex | Publisher: | DisplayName: ").unwrap();
        assert_eq!((m.module_id.as_str(), m.version.as_str(), m.name.as_str()), ("X", "3.0", "Ex"));
        assert_eq!(m.publisher, "");
    }

    #[test]
    fn lines_that_do_not_parse_are_reported_with_their_text() {
        let lines = vec![
            line("B", "1.0"),
            "garbage".to_owned(),
            "Name: NoModule | Version: 1.0".to_owned(),
            "Name: X | Version: | Module: X".to_owned(),
            "".to_owned(),
            line("A", "2.0"),
        ];
        let list = parse_lines(&lines);
        assert_eq!(list.modules.iter().map(|m| m.module_id.as_str()).collect::<Vec<_>>(), ["A", "B"]);
        let reported: Vec<(u32, &str)> = list.unparsed.iter().map(|u| (u.line, u.text.as_str())).collect();
        assert_eq!(reported, [(2, "garbage"), (3, "Name: NoModule | Version: 1.0"), (4, "Name: X | Version: | Module: X"), (5, "")]);
        assert!(list.unparsed[1].reason.contains("Module"), "{}", list.unparsed[1].reason);
        assert!(list.unparsed[2].reason.contains("Version"), "{}", list.unparsed[2].reason);
    }

    #[test]
    fn hash_vectors_from_the_design() {
        let lines: Vec<String> = [
            ("AccountsPayableMobile", "10.34.2105.34092"),
            ("AdvancedQualityManagement", "10.34.2105.34092"),
            ("ApplicationCommon", "10.34.2105.34092"),
            ("ApplicationFoundation", "7.0.7521.60"),
        ]
        .iter()
        .rev() // the hash must not depend on the order of the response
        .map(|(id, v)| line(id, v))
        .collect();
        assert_eq!(modules_hash(&parse_lines(&lines)), "ae97cdc85de9b242364367e8bd9bf662a32cee6aaea4d8b47c8e35c4f0a8b90b");
        assert_eq!(
            modules_hash(&parse_lines(&[line("module1", "1.0")])),
            "760ec0e3d54350b5ac9b767cbdd070da2d158b35613dfe5846f3a4515dacadd5"
        );
    }

    #[test]
    fn sorting_is_by_bytes_not_by_case_folding() {
        let list = parse_lines(&[line("b", "1"), line("B", "1"), line("a", "1")]);
        let ids: Vec<&str> = list.modules.iter().map(|m| m.module_id.as_str()).collect();
        assert_eq!(ids, ["B", "a", "b"]);
        assert_eq!(modules_hash(&list), sha256_hex(b"B:1|a:1|b:1"));
    }

    #[test]
    fn unparsed_lines_change_the_identity() {
        let clean = parse_lines(&[line("A", "1")]);
        let dirty = parse_lines(&[line("A", "1"), "something new".to_owned()]);
        let other = parse_lines(&[line("A", "1"), "something else".to_owned()]);
        assert_ne!(modules_hash(&clean), modules_hash(&dirty));
        assert_ne!(modules_hash(&dirty), modules_hash(&other));
        assert!(warnings(&dirty).iter().any(|w| w.contains("could not be parsed")));
    }

    #[test]
    fn duplicates_and_placeholder_versions_are_warned_about() {
        let list = parse_lines(&[line("A", "1"), line("A", "2"), line("Custom", "1.0.0.0")]);
        let w = warnings(&list);
        assert!(w.iter().any(|w| w.contains("more than once: A")), "{w:?}");
        assert!(w.iter().any(|w| w.contains("1.0.0.0") && w.contains("Custom")), "{w:?}");
        // Both entries of a duplicate count, whatever their order in the response.
        let swapped = parse_lines(&[line("A", "2"), line("A", "1"), line("Custom", "1.0.0.0")]);
        assert_eq!(modules_hash(&list), modules_hash(&swapped));
    }

    #[test]
    fn diff_reports_added_removed_and_changed() {
        let a = parse_lines(&[line("Keep", "1"), line("Gone", "1"), line("Bump", "1.0")]).modules;
        let b = parse_lines(&[line("Keep", "1"), line("New", "5"), line("Bump", "1.1")]).modules;
        let d = diff(&a, &b);
        assert_eq!(d.added.iter().map(|m| m.module_id.as_str()).collect::<Vec<_>>(), ["New"]);
        assert_eq!(d.removed.iter().map(|m| m.module_id.as_str()).collect::<Vec<_>>(), ["Gone"]);
        assert_eq!(d.changed, [ModuleChange { module_id: "Bump".into(), old_version: "1.0".into(), new_version: "1.1".into() }]);
        assert_eq!(d.unchanged, 1);
        assert_eq!(diff(&a, &a), ModuleDiff { added: vec![], removed: vec![], changed: vec![], unchanged: 3 });
    }

    #[test]
    fn fallback_identity_never_equals_a_modules_hash() {
        let f = fallback_hash("10.0.1985.137", "7.0.7521.60");
        assert_eq!(f.len(), 64);
        assert_ne!(f, fallback_hash("10.0.1985.138", "7.0.7521.60"));
    }
}
