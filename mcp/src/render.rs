//! Short text renderings of the tools' answers, for a model that reads text rather than the
//! structured content: the gist in a few lines, the full record in `structuredContent`.

use d365meta::bindings::name_of;
use d365meta::cache::{
    EntityLookup, EnumerationLookup, EnvironmentInfo, LabelLookup, MetadataDiff, ModuleDiff, SearchResults, Stats, SyncReport, SyncRun,
    VersionDetails,
};
use serde_json::Value as Json;
use std::fmt::Write as _;

/// At most this many lines of a list are rendered; the structured content has them all.
const MAX_LINES: usize = 40;

fn suggestions(s: &[String]) -> String {
    if s.is_empty() { String::new() } else { format!(" Did you mean: {}?", s.join(", ")) }
}

fn labelled(label: &Option<String>, label_id: &Option<String>) -> String {
    match (label, label_id) {
        (Some(text), _) => format!(" \"{text}\""),
        (None, Some(id)) => format!(" ({id})"),
        (None, None) => String::new(),
    }
}

pub fn search(r: &SearchResults, offset: u32) -> String {
    if r.hits.is_empty() {
        return format!("No match in {} (total {}).", r.base_url, r.total);
    }
    let more = if r.total_exact { "" } else { "more than " };
    let mut out = format!("{more}{} match(es) in {}; showing {}–{}:\n", r.total, r.base_url, offset + 1, offset as usize + r.hits.len());
    for h in r.hits.iter().take(MAX_LINES) {
        let set = h.entity_set_name.as_deref().map(|s| format!(" [{s}]")).unwrap_or_default();
        let of = h.entity.as_deref().map(|e| format!(" of {e}")).unwrap_or_default();
        let _ = writeln!(out, "- {} {}{set}{of}{}", name_of(&h.kind), h.name, labelled(&h.label, &h.label_id));
    }
    out
}

pub fn entity(r: &EntityLookup) -> String {
    let mut out = String::new();
    match (&r.public_entity, &r.data_entity) {
        (None, None) => return format!("No entity by that name in {}.{}", r.base_url, suggestions(&r.suggestions)),
        (Some(p), d) => {
            let keys: Vec<&str> = p.properties.iter().filter(|x| x.is_key).map(|x| x.name.as_str()).collect();
            let mandatory = p.properties.iter().filter(|x| x.is_mandatory).count();
            let _ = writeln!(
                out,
                "Public entity {}{} (entity set {}){}: {} properties (keys: {}; {mandatory} mandatory), {} navigation properties, {} actions{}.",
                p.name,
                labelled(&p.label, &p.label_id),
                p.entity_set_name.as_deref().unwrap_or("none"),
                if p.is_read_only { ", read-only" } else { "" },
                p.properties.len(),
                if keys.is_empty() { "none".to_owned() } else { keys.join(", ") },
                p.navigation_properties.len(),
                p.actions.len(),
                d.as_ref().map(|d| format!("; data entity {}", d.name)).unwrap_or_default(),
            );
            for n in p.navigation_properties.iter().take(MAX_LINES) {
                let _ = writeln!(out, "- navigation {} -> {}", n.name, n.related_entity.as_deref().unwrap_or("?"));
            }
        }
        (None, Some(d)) => {
            let _ = writeln!(out, "Data entity {}{} (no public entity).", d.name, labelled(&d.label, &d.label_id));
        }
    }
    if let Some(d) = &r.data_entity {
        let _ = writeln!(
            out,
            "Data entity {}: category {}, OData {}, data management {}{}.",
            d.name,
            d.category.as_deref().unwrap_or("unknown"),
            if d.data_service_enabled { "enabled" } else { "disabled" },
            if d.data_management_enabled { "enabled" } else { "disabled" },
            if d.is_read_only { ", read-only" } else { "" },
        );
    }
    out
}

pub fn enumeration(r: &EnumerationLookup) -> String {
    let Some(e) = &r.enumeration else {
        return format!("No enumeration by that name in {}.{}", r.base_url, suggestions(&r.suggestions));
    };
    let mut out = format!("Enumeration {}{}: {} members\n", e.name, labelled(&e.label, &e.label_id), e.members.len());
    for m in e.members.iter().take(MAX_LINES) {
        let _ = writeln!(out, "- {} = {}{}", m.name, m.value, labelled(&m.label, &m.label_id));
    }
    out
}

pub fn labels(r: &[LabelLookup]) -> String {
    let mut out = String::new();
    for l in r.iter().take(MAX_LINES) {
        let _ = match (&l.text, &l.language) {
            (Some(text), Some(language)) => writeln!(out, "- {} ({language}): {text}", l.id),
            (Some(text), None) => writeln!(out, "- {}: {text}", l.id),
            (None, _) => writeln!(out, "- {}: no text (missing in {})", l.id, l.missing_in.join(", ")),
        };
    }
    out
}

pub fn version(v: &VersionDetails) -> String {
    let mut out = format!(
        "Version {} ({} modules; application {}, platform {}); run by {}.\n",
        v.modules_hash,
        v.modules.len(),
        v.application_version.as_deref().unwrap_or("unknown"),
        v.platform_version.as_deref().unwrap_or("unknown"),
        if v.environments.is_empty() { "no known environment".to_owned() } else { v.environments.join(", ") },
    );
    for m in v.modules.iter().take(MAX_LINES) {
        let _ = writeln!(out, "- {} {}", m.module_id, m.version);
    }
    out
}

pub fn comparison(a: &VersionDetails, b: &VersionDetails, d: &ModuleDiff) -> String {
    if a.modules_hash == b.modules_hash {
        return format!("Same version {} ({} modules).", a.modules_hash, d.unchanged);
    }
    let mut out = format!(
        "{} changed, {} added in B, {} removed from A, {} unchanged (A {}, B {}).\n",
        d.changed.len(),
        d.added.len(),
        d.removed.len(),
        d.unchanged,
        &a.modules_hash[..12.min(a.modules_hash.len())],
        &b.modules_hash[..12.min(b.modules_hash.len())],
    );
    for c in d.changed.iter().take(MAX_LINES) {
        let _ = writeln!(out, "~ {} {} -> {}", c.module_id, c.old_version, c.new_version);
    }
    for m in d.added.iter().take(MAX_LINES) {
        let _ = writeln!(out, "+ {} {}", m.module_id, m.version);
    }
    for m in d.removed.iter().take(MAX_LINES) {
        let _ = writeln!(out, "- {} {}", m.module_id, m.version);
    }
    out
}

pub fn sync_report(r: &SyncReport) -> String {
    let counts = r
        .counts
        .as_ref()
        .map(|c| {
            format!(
                "; {} data entities, {} public entities, {} enumerations, {} labels",
                c.data_entities, c.public_entities, c.enumerations, c.labels
            )
        })
        .unwrap_or_default();
    let pulled = r
        .pulled
        .as_ref()
        .map(|p| format!(" Pulled {} packs from {}: {} objects and {} labels new to the cache.", p.packs, p.location, p.objects, p.labels))
        .unwrap_or_default();
    let warnings: String = r.warnings.iter().map(|w| format!(" Warning: {w}.")).collect();
    format!(
        "Synced {}: plan {} ({}), {} requests in {} ms{counts}.{pulled}{warnings}",
        r.base_url,
        name_of(&r.plan),
        r.reason,
        r.requests,
        r.duration_ms
    )
}

/// A `sync_status` answer in one line.
pub fn job(status: &Json) -> String {
    let s = |k: &str| status[k].as_str().unwrap_or("").to_owned();
    match status["state"].as_str() {
        Some("running") => {
            let p = &status["progress"];
            let total = p["total"].as_u64().map(|t| format!(" of {t}")).unwrap_or_default();
            format!("{} ({}): running, {} {}{total}", s("handle"), s("base_url"), p["phase"].as_str().unwrap_or("starting"), p["done"])
        }
        Some("succeeded") => format!(
            "{} ({}): succeeded, plan {}, {} requests",
            s("handle"),
            s("base_url"),
            status["report"]["plan"],
            status["report"]["requests"]
        ),
        Some(state) => format!("{} ({}): {state}: {}", s("handle"), s("base_url"), status["error"]["message"].as_str().unwrap_or("")),
        None => String::new(),
    }
}

pub fn history(runs: &[SyncRun]) -> String {
    if runs.is_empty() {
        return "No sync recorded.".to_owned();
    }
    let mut out = String::new();
    for r in runs.iter().take(MAX_LINES) {
        let plan = r.plan.as_ref().map(name_of).unwrap_or_else(|| "unplanned".to_owned());
        let _ = writeln!(out, "- #{} {} {} {} ({} requests)", r.id, r.base_url, plan, name_of(&r.outcome), r.requests);
    }
    out
}

pub fn environments(envs: &[EnvironmentInfo]) -> String {
    if envs.is_empty() {
        return "No environment in the cache yet; sync one.".to_owned();
    }
    let mut out = String::new();
    for e in envs.iter().take(MAX_LINES) {
        let _ = writeln!(out, "- {} version {}", e.base_url, e.modules_hash.as_deref().map(|h| &h[..12.min(h.len())]).unwrap_or("unknown"));
    }
    out
}

pub fn stats(s: &Stats) -> String {
    let mut out =
        format!("{} environment(s), {} version(s), database {} bytes.\n", s.environments.len(), s.versions.len(), s.database_bytes);
    for e in s.environments.iter().take(MAX_LINES) {
        let counts = e
            .counts
            .as_ref()
            .map(|c| format!("{} public entities, {} enumerations, {} labels", c.public_entities, c.enumerations, c.labels))
            .unwrap_or_else(|| "not synced".to_owned());
        let _ = writeln!(out, "- {}: {counts}", e.base_url);
    }
    out
}

/// A diff as text, the command line's rendering: both sides named by their version.
pub fn diff(d: &MetadataDiff) -> String {
    let (a, b) = (d.a.modules_hash.as_str(), d.b.modules_hash.as_str());
    d365meta::diff_text::text(d, (&a[..a.len().min(12)], &b[..b.len().min(12)]))
}
