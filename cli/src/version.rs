//! `d365meta version`: detect and record an environment's version, or compare two environments.

use super::Context;
use super::output::{print_fields, print_json, rfc3339, short_hash};
use super::sync::to_json;
use d365meta::cache::{DiffSide, Module, ModuleDiff, ReadOptions, VersionDetails, VersionReport};
use serde_json::{Value as Json, json};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The environment: a base URL (e.g. https://contoso.operations.dynamics.com) or a profile name
    /// (default: the selected or default profile's); with --cached, also a modules hash (8
    /// characters or more), or nothing for the latest synced version
    #[arg(value_name = "URL|PROFILE", conflicts_with = "compare")]
    base_url: Option<String>,

    /// Compare the installed modules of two environments, each a base URL or a profile name (both
    /// are detected and recorded; with --cached, two cached versions, a modules hash allowed too)
    #[arg(long, num_args = 2, value_names = ["A", "B"])]
    compare: Option<Vec<String>>,

    /// Answer from the cache alone, without asking any environment
    #[arg(long)]
    cached: bool,
}

/// One side of a comparison: an environment just detected, or a cached version.
struct Side<'a> {
    base_url: Option<&'a str>,
    modules_hash: &'a str,
    modules: &'a [Module],
    fallback: bool,
}

impl<'a> From<&'a VersionReport> for Side<'a> {
    fn from(r: &'a VersionReport) -> Self {
        Side { base_url: Some(&r.base_url), modules_hash: &r.modules_hash, modules: &r.modules, fallback: r.fallback }
    }
}

impl<'a> Side<'a> {
    fn cached(d: &'a VersionDetails, read: &'a ReadOptions) -> Self {
        Side { base_url: read.base_url.as_deref(), modules_hash: &d.modules_hash, modules: &d.modules, fallback: d.fallback }
    }
}

/// A cached version named on the command line: a base URL, or else a modules hash.
fn cached_selector(arg: Option<&str>) -> (Option<String>, ReadOptions) {
    match arg.map(DiffSide::named) {
        Some(DiffSide::Environment(url)) => (None, ReadOptions { base_url: Some(url), labels: None }),
        Some(DiffSide::Version(hash)) => (Some(hash), ReadOptions { base_url: None, labels: None }),
        None => (None, ReadOptions { base_url: None, labels: None }),
    }
}

impl Args {
    pub(crate) fn named(&mut self) -> Vec<super::Named<'_>> {
        let mut named = Vec::new();
        if self.cached {
            named.extend(self.base_url.iter_mut().map(super::Named::Side));
            named.extend(self.compare.iter_mut().flatten().map(super::Named::Side));
        } else if let Some(compare) = &mut self.compare {
            named.extend(compare.iter_mut().map(super::Named::Url));
        } else {
            named.push(super::Named::Environment { value: &mut self.base_url, required: true, defaults: true });
        }
        named
    }
}

pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    if args.cached {
        return cached(ctx, args).await;
    }
    for url in args.compare.iter().flatten().chain(&args.base_url) {
        super::check_base_url(url)?;
    }
    let runtime = ctx.runtime().await?;
    let mut cache = d365meta::cache::Cache::open(&runtime, ctx.sign_in_options(ctx.database())?).await?;
    if let Some(urls) = args.compare {
        let a = cache.detect_version(&urls[0]).await?;
        let b = cache.detect_version(&urls[1]).await?;
        let diff = cache.compare_modules(a.modules.clone(), b.modules.clone()).await?;
        let (a, b) = (Side::from(&a), Side::from(&b));
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

/// `version --cached`: versions as the cache knows them, with no request sent.
async fn cached(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let (_runtime, mut cache) = ctx.open_read().await?;
    if let Some(selectors) = args.compare {
        let (hash_a, read_a) = cached_selector(Some(&selectors[0]));
        let (hash_b, read_b) = cached_selector(Some(&selectors[1]));
        let a = cache.get_version(hash_a.as_deref(), read_a.clone()).await?;
        let b = cache.get_version(hash_b.as_deref(), read_b.clone()).await?;
        let diff = cache.compare_modules(a.modules.clone(), b.modules.clone()).await?;
        let (a, b) = (Side::cached(&a, &read_a), Side::cached(&b, &read_b));
        if ctx.json {
            print_json(&comparison_json(&a, &b, &diff));
        } else {
            print_comparison(&a, &b, &diff);
        }
        return Ok(());
    }
    let (hash, read) = cached_selector(args.base_url.as_deref());
    let details = cache.get_version(hash.as_deref(), read).await?;
    if ctx.json {
        print_json(&to_json(&details));
    } else {
        let or_unknown = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".to_owned());
        print_fields(&[
            ("Modules hash", details.modules_hash.clone()),
            ("Modules", details.modules.len().to_string()),
            ("Application", or_unknown(&details.application_version)),
            ("Platform", or_unknown(&details.platform_version)),
            ("Fallback", if details.fallback { "yes".to_owned() } else { "no".to_owned() }),
            ("Seen", format!("{} to {}", rfc3339(details.first_seen_ms), rfc3339(details.last_seen_ms))),
            ("Run by", if details.environments.is_empty() { "no known environment".to_owned() } else { details.environments.join(", ") }),
        ]);
        for m in &details.modules {
            println!("  {}  {}", m.module_id, m.version);
        }
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

/// The module differences (the `module-diff` record), with which two versions they compare.
fn comparison_json(a: &Side<'_>, b: &Side<'_>, d: &ModuleDiff) -> Json {
    let side = |s: &Side<'_>| json!({"base_url": s.base_url, "modules_hash": s.modules_hash, "module_count": s.modules.len()});
    let mut out = to_json(d);
    out["a"] = side(a);
    out["b"] = side(b);
    out["same_version"] = Json::Bool(a.modules_hash == b.modules_hash);
    out
}

fn print_comparison(a: &Side<'_>, b: &Side<'_>, d: &ModuleDiff) {
    for (letter, s) in [("A", a), ("B", b)] {
        println!("{letter}  {}  {} modules  {}", s.base_url.unwrap_or("(cached version)"), s.modules.len(), short_hash(s.modules_hash));
    }
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
