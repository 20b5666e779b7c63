//! `d365meta version`: detect and record an environment's version, or compare two environments.

use super::Context;
use super::output::{print_fields, print_json, rfc3339, short_hash};
use super::sync::to_json;
use d365meta::cache::{ModuleDiff, VersionReport};
use serde_json::{Value as Json, json};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The environment's base URL, e.g. https://contoso.operations.dynamics.com
    #[arg(value_name = "BASE_URL", required_unless_present = "compare", conflicts_with = "compare")]
    base_url: Option<String>,

    /// Compare the installed modules of two environments (both are detected and recorded).
    #[arg(long, num_args = 2, value_names = ["URL_A", "URL_B"])]
    compare: Option<Vec<String>>,
}

pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    for url in args.compare.iter().flatten().chain(&args.base_url) {
        super::check_base_url(url)?;
    }
    let (_runtime, mut cache) = ctx.open().await?;
    if let Some(urls) = args.compare {
        let a = cache.detect_version(&urls[0]).await?;
        let b = cache.detect_version(&urls[1]).await?;
        let diff = cache.compare_modules(a.modules.clone(), b.modules.clone()).await?;
        if ctx.json {
            print_json(&comparison_json(&a, &b, &diff));
        } else {
            print_comparison(&a, &b, &diff);
        }
        return Ok(());
    }
    let base_url = args.base_url.unwrap_or_default();
    let report = cache.detect_version(&base_url).await?;
    if ctx.json {
        print_json(&to_json(&report));
    } else {
        print_report(&report);
    }
    Ok(())
}

fn print_report(r: &VersionReport) {
    let or_unknown = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".to_owned());
    let mut fields = vec![
        ("Environment", r.base_url.clone()),
        ("Modules", r.modules.len().to_string()),
        ("Modules hash", r.modules_hash.clone()),
        ("Application", or_unknown(&r.application_version)),
        ("Platform", or_unknown(&r.platform_version)),
        (
            "Fallback",
            match &r.fallback_reason {
                Some(reason) if r.fallback => format!("yes: identity from application and platform versions ({reason})"),
                _ => "no".to_owned(),
            },
        ),
        ("Unparsed lines", r.unparsed.len().to_string()),
        ("Version", if r.new_version { "new to this cache".to_owned() } else { format!("known since {}", rfc3339(r.first_seen_ms)) }),
        ("Shared with", if r.shared_with.is_empty() { "no other known environment".to_owned() } else { r.shared_with.join(", ") }),
        ("Requests", r.requests.to_string()),
    ];
    if r.fallback {
        fields.retain(|(label, _)| *label != "Modules");
    }
    print_fields(&fields);
    for u in &r.unparsed {
        println!("  line {}: {:?} ({})", u.line, u.text, u.reason);
    }
    for w in &r.warnings {
        println!("warning: {w}");
    }
}

/// The module differences (the `module-diff` record), with which two environments they compare.
pub fn comparison_json(a: &VersionReport, b: &VersionReport, d: &ModuleDiff) -> Json {
    let side = |r: &VersionReport| json!({"base_url": r.base_url, "modules_hash": r.modules_hash, "module_count": r.modules.len()});
    let mut out = to_json(d);
    out["a"] = side(a);
    out["b"] = side(b);
    out["same_version"] = Json::Bool(a.modules_hash == b.modules_hash);
    out
}

fn print_comparison(a: &VersionReport, b: &VersionReport, d: &ModuleDiff) {
    println!("A  {}  {} modules  {}", a.base_url, a.modules.len(), short_hash(&a.modules_hash));
    println!("B  {}  {} modules  {}", b.base_url, b.modules.len(), short_hash(&b.modules_hash));
    if a.modules_hash == b.modules_hash {
        println!("Same version: identical modules ({} unchanged).", d.unchanged);
        return;
    }
    println!("{} changed, {} added in B, {} removed from A, {} unchanged", d.changed.len(), d.added.len(), d.removed.len(), d.unchanged);
    let width =
        d.changed.iter().map(|c| c.module_id.len()).chain(d.added.iter().chain(&d.removed).map(|m| m.module_id.len())).max().unwrap_or(0);
    for c in &d.changed {
        println!("  ~ {:<width$}  {} -> {}", c.module_id, c.old_version, c.new_version);
    }
    for m in &d.added {
        println!("  + {:<width$}  {}", m.module_id, m.version);
    }
    for m in &d.removed {
        println!("  - {:<width$}  {}", m.module_id, m.version);
    }
    if a.fallback || b.fallback {
        println!("note: an environment without a module list (fallback identity) compares as having no modules");
    }
}
