//! The installed modules, as `GetInstalledModules` lists them.

use super::corpus::Corpus;
use super::names::split_words;
use crate::rng::{Rng, unit};
use std::collections::BTreeSet;

pub(crate) const APPLICATION_VERSION: &str = "10.0.2095.37";
pub(crate) const PLATFORM_VERSION: &str = "7.0.7690.53";
const PLATFORM_MODULES: &[&str] = &["ApplicationFoundation", "ApplicationPlatform", "DataUpgradePlatform", "TestEssentials"];
/// Modules every environment has.
const CORE_MODULES: &[&str] = &["ApplicationCommon", "ApplicationFoundation", "ApplicationPlatform", "ApplicationSuite"];
/// Suffixes of real F&O model names (`FleetManagementExtension`, `WarehouseOrdersIntegration`…).
const MODEL_SUFFIXES: &[&str] = &["Extension", "Integration", "Mobile", "Upgrade", "Common", "Interface"];

/// Partner and customer models: not published by Microsoft. The first is a customer's own model
/// that keeps version 1.0.0.0 whatever changes; the second has ` | ` in its display name.
const ISV_LINES: &[&str] = &[
    "Name: ContosoCustomizations | Version: 1.0.0.0 | Module: ContosoCustomizations | Publisher: Contoso Ltd. | DisplayName: Contoso customizations",
    "Name: FabrikamPaymentConnector | Version: 3.2.1045.0 | Module: FabrikamPaymentConnector | Publisher: Fabrikam, Inc. | DisplayName: Fabrikam | Payment connector",
    "Name: AdventureWorksWarehouse | Version: 10.0.41.3 | Module: AdventureWorksWarehouse | Publisher: Adventure Works Cycles | DisplayName: Adventure Works warehouse extensions",
    "Name: LitwareTaxIntegration | Version: 2024.11.2.7 | Module: LitwareTaxIntegration | Publisher: Litware, Inc. | DisplayName: Litware tax integration",
];

/// One `GetInstalledModules` line.
pub fn module_line(name: &str, version: &str, module: &str, publisher: &str, display_name: &str) -> String {
    format!("Name: {name} | Version: {version} | Module: {module} | Publisher: {publisher} | DisplayName: {display_name}")
}

fn microsoft_line(module: &str) -> String {
    let version = if PLATFORM_MODULES.contains(&module) { PLATFORM_VERSION } else { APPLICATION_VERSION };
    // Microsoft's own modules name their publisher both ways.
    let publisher = if unit(&["publisher", module]) < 0.1 { "Microsoft" } else { "Microsoft Corporation" };
    module_line(module, version, module, publisher, &split_words(module).join(" "))
}

/// `count` module lines: the core modules, the modules of the dataset's entities, then other real
/// modules and further plausible ones; partner models included.
pub(crate) fn module_lines(corpus: &Corpus, entity_modules: &BTreeSet<String>, count: usize) -> Vec<String> {
    let isv = if count >= 100 { ISV_LINES.len() } else { 2 };
    let microsoft = count.saturating_sub(isv);
    let mut names: Vec<String> = Vec::new();
    let push = |names: &mut Vec<String>, name: &str| {
        if names.len() < microsoft && !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    };
    for m in CORE_MODULES.iter().copied().chain(entity_modules.iter().map(String::as_str)) {
        push(&mut names, m);
    }
    if count >= 100 {
        for m in PLATFORM_MODULES.iter().copied().chain(corpus.modules.iter().map(String::as_str)) {
            push(&mut names, m);
        }
        // Functional areas that are also model names in F&O.
        let mut areas: BTreeSet<&str> = BTreeSet::new();
        for e in &corpus.entities {
            if let Some(area) = e.area.as_deref().and_then(|a| a.rsplit('/').next()) {
                areas.insert(area);
            }
        }
        for area in areas {
            push(&mut names, area);
        }
        let mut rng = Rng::from_parts(&["module-names"]);
        let mut attempts = 0;
        while names.len() < microsoft && attempts < 10_000 {
            attempts += 1;
            let name = format!("{}{}", rng.pick(&corpus.modules), rng.pick(MODEL_SUFFIXES));
            push(&mut names, &name);
        }
    } else {
        for m in &corpus.modules {
            push(&mut names, m);
        }
    }
    let mut lines: Vec<String> = names.iter().map(|n| microsoft_line(n)).collect();
    lines.extend(ISV_LINES.iter().take(isv).map(|l| l.to_string()));
    lines.sort_by(|a, b| a.to_lowercase().cmp(&b.to_lowercase()).then(a.cmp(b)));
    lines
}

/// The module id and version of one of our own lines (ids and versions never contain ` | `).
pub(crate) fn module_and_version(line: &str) -> Option<(&str, &str)> {
    let mut version = None;
    let mut module = None;
    for field in line.splitn(5, " | ") {
        if let Some(v) = field.strip_prefix("Version: ") {
            version = Some(v);
        } else if let Some(m) = field.strip_prefix("Module: ") {
            module = Some(m);
        }
    }
    Some((module?, version?))
}

/// The next build of a version: `10.0.2095.37` → `10.0.2095.38`.
pub(crate) fn bump_version(version: &str) -> String {
    match version.rsplit_once('.') {
        Some((head, last)) => match last.parse::<u64>() {
            Ok(n) => format!("{head}.{}", n + 1),
            Err(_) => format!("{version}.1"),
        },
        None => format!("{version}.1"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::corpus::corpus;

    #[test]
    fn lines_have_the_wire_format_and_the_traps() {
        let lines = module_lines(corpus(), &BTreeSet::new(), 6);
        assert_eq!(lines.len(), 6);
        assert!(lines.iter().any(|l| l.contains("Version: 1.0.0.0") && !l.contains("Publisher: Microsoft")));
        assert!(lines.iter().any(|l| l.split(" | DisplayName: ").nth(1).is_some_and(|d| d.contains(" | "))));
        let platform = lines.iter().find(|l| l.starts_with("Name: ApplicationPlatform |")).expect("platform");
        assert_eq!(module_and_version(platform), Some(("ApplicationPlatform", PLATFORM_VERSION)));
        assert_eq!(microsoft_line("AccountsPayableMobile").split(" | DisplayName: ").nth(1), Some("Accounts Payable Mobile"));
    }

    #[test]
    fn full_module_list_is_unique() {
        let lines = module_lines(corpus(), &BTreeSet::new(), 200);
        assert_eq!(lines.len(), 200);
        let ids: BTreeSet<&str> = lines.iter().filter_map(|l| module_and_version(l)).map(|m| m.0).collect();
        assert_eq!(ids.len(), 200);
    }

    #[test]
    fn versions_bump() {
        assert_eq!(bump_version("10.0.2095.37"), "10.0.2095.38");
    }
}
