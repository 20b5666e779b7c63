//! The read commands: `entity`, `enum`, `action`, `label`, `search`, `stats`, `envs`. They answer
//! from the cache alone.

use super::Context;
use super::output::{print_fields, print_json, rfc3339, short_hash};
use super::progress::human_bytes;
use super::sync::{describe_counts, to_json};
use d365meta::bindings::name_of;
use d365meta::cache::{Action, Constraint, CoreError, ErrorKind, LabelLanguages, ObjectKind, ReadOptions, SearchFilters, SearchQuery};

#[derive(clap::Args, Debug, Clone)]
pub struct Scope {
    /// The environment to read: a base URL or a profile name (default: the selected or default
    /// profile's, else the only synced environment, or the most recently synced).
    #[arg(long = "env", value_name = "URL|PROFILE")]
    env: Option<String>,

    /// Resolve label ids to their texts.
    #[arg(long)]
    labels: bool,

    /// The language labels are resolved (and searched) in; en-US is the fallback.
    #[arg(long = "lang", default_value = "en-US", value_name = "LANG")]
    lang: String,
}

impl Scope {
    pub(crate) fn named(&mut self) -> Vec<super::Named<'_>> {
        vec![super::Named::Environment { value: &mut self.env, required: false, defaults: true }]
    }

    fn options(&self, resolve: bool) -> ReadOptions {
        ReadOptions {
            base_url: self.env.clone(),
            labels: (resolve || self.labels).then(|| LabelLanguages { language: self.lang.clone(), fallback: vec!["en-US".to_owned()] }),
        }
    }
}

fn not_found(what: &str, name: &str, env: &str, suggestions: &[String]) -> anyhow::Error {
    let hint = if suggestions.is_empty() { String::new() } else { format!("; did you mean: {}?", suggestions.join(", ")) };
    CoreError { kind: ErrorKind::NotFound, message: format!("no {what} named {name:?} in {env}{hint}") }.into()
}

fn label_text(id: &Option<String>, text: &Option<String>) -> String {
    match (id, text) {
        (Some(id), Some(text)) if id != text => format!("{text:?} [{id}]"),
        (Some(id), _) => id.clone(),
        (None, _) => String::new(),
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

// ---- entity ----

#[derive(clap::Args, Debug)]
pub struct EntityArgs {
    /// A data entity name (CustCustomerV3Entity), public entity name (CustomerV3) or entity set name (CustomersV3).
    name: String,
    #[command(flatten)]
    scope: Scope,
}

fn signature(a: &Action) -> String {
    let params = a
        .parameters
        .iter()
        .map(|p| format!("{}: {}{}", p.name, p.type_name.as_deref().unwrap_or("?"), if p.is_collection { "[]" } else { "" }));
    let ret = match &a.return_type {
        Some(t) => format!(" -> {}{}", t.type_name.as_deref().unwrap_or("?"), if t.is_collection { "[]" } else { "" }),
        None => String::new(),
    };
    format!("{}({}){ret}", a.name, params.collect::<Vec<_>>().join(", "))
}

pub async fn entity(ctx: &Context, args: EntityArgs) -> anyhow::Result<()> {
    let (_runtime, mut cache) = ctx.open_read().await?;
    let r = cache.get_entity(&args.name, args.scope.options(false)).await?;
    let found = r.data_entity.is_some() || r.public_entity.is_some();
    if ctx.json {
        print_json(&to_json(&r));
    }
    if !found {
        return Err(not_found("entity", &args.name, &r.base_url, &r.suggestions));
    }
    if ctx.json {
        return Ok(());
    }
    if let Some(p) = &r.public_entity {
        println!("{} (public entity, entity set {}) in {}", p.name, p.entity_set_name.as_deref().unwrap_or("-"), r.base_url);
        print_fields(&[
            ("Label", label_text(&p.label_id, &p.label)),
            ("Read-only", yes(p.is_read_only).to_owned()),
            ("Configuration", if p.configuration_enabled { "enabled" } else { "disabled" }.to_owned()),
        ]);
    }
    if let Some(d) = &r.data_entity {
        if r.public_entity.is_none() {
            println!("{} (data entity) in {}", d.name, r.base_url);
        } else {
            println!();
            println!("Data entity {}", d.name);
        }
        print_fields(&[
            ("Label", label_text(&d.label_id, &d.label)),
            ("Category", d.category.clone().unwrap_or_else(|| "-".to_owned())),
            (
                "Public name",
                format!("{} / {}", d.public_entity_name.as_deref().unwrap_or("-"), d.public_collection_name.as_deref().unwrap_or("-")),
            ),
            ("Data service", yes(d.data_service_enabled).to_owned()),
            ("Data management", yes(d.data_management_enabled).to_owned()),
            ("Read-only", yes(d.is_read_only).to_owned()),
        ]);
    }
    let Some(p) = &r.public_entity else { return Ok(()) };
    println!();
    println!("Properties ({})", p.properties.len());
    let width = p.properties.iter().map(|x| x.name.len()).max().unwrap_or(4);
    for (i, x) in p.properties.iter().enumerate() {
        let mut flags = Vec::new();
        if x.is_key {
            flags.push("key");
        }
        if x.is_mandatory {
            flags.push("mandatory");
        }
        if !x.allow_edit {
            flags.push(if x.allow_edit_on_create { "edit on create" } else { "read-only" });
        }
        if x.is_dimension {
            flags.push("dimension");
        }
        let ty = format!("{} ({})", x.type_name.as_deref().unwrap_or("?"), x.data_type.as_deref().unwrap_or("?"));
        println!("  {:>3}  {:<width$}  {:<44}  {:<22}  {}", i + 1, x.name, ty, flags.join(", "), label_text(&x.label_id, &x.label));
    }
    if !p.navigation_properties.is_empty() {
        println!();
        println!("Navigation properties ({})", p.navigation_properties.len());
        for n in &p.navigation_properties {
            let relation = n.related_relation_name.as_deref().map(|r| format!(", back as {r}")).unwrap_or_default();
            println!(
                "  {} -> {} ({}{relation})",
                n.name,
                n.related_entity.as_deref().unwrap_or("?"),
                n.cardinality.as_deref().unwrap_or("?")
            );
            for c in &n.constraints {
                let value = |value: &Option<i64>, text: &Option<String>| text.clone().or(value.map(|v| v.to_string())).unwrap_or_default();
                let unknown = |s: &Option<String>| s.as_deref().unwrap_or("?").to_owned();
                let text = match c {
                    Constraint::Referential(r) => format!("{} = {}", unknown(&r.property), unknown(&r.referenced_property)),
                    Constraint::Fixed(f) => format!("{} = {}", unknown(&f.property), value(&f.value, &f.value_str)),
                    Constraint::RelatedFixed(f) => format!("related {} = {}", unknown(&f.related_property), value(&f.value, &f.value_str)),
                    Constraint::Unknown(u) => format!("{:?} ({})", u.property, u.odata_type),
                };
                let kind = match c {
                    Constraint::Unknown(_) => "unknown".to_owned(),
                    known => serde_json::to_value(known).ok().and_then(|v| v["kind"].as_str().map(str::to_owned)).unwrap_or_default(),
                };
                println!("      {kind:<13} {text}");
            }
        }
    }
    if !p.property_groups.is_empty() {
        println!();
        println!("Property groups ({})", p.property_groups.len());
        for g in &p.property_groups {
            println!("  {}: {}", g.name, g.properties.join(", "));
        }
    }
    if !p.actions.is_empty() {
        println!();
        println!("Actions ({})", p.actions.len());
        for a in &p.actions {
            println!("  {}  [{}]", signature(a), a.binding_kind.as_deref().unwrap_or("?"));
        }
    }
    Ok(())
}

// ---- enum ----

#[derive(clap::Args, Debug)]
pub struct EnumArgs {
    name: String,
    #[command(flatten)]
    scope: Scope,
}

pub async fn enumeration(ctx: &Context, args: EnumArgs) -> anyhow::Result<()> {
    let (_runtime, mut cache) = ctx.open_read().await?;
    let r = cache.get_enumeration(&args.name, args.scope.options(false)).await?;
    if ctx.json {
        print_json(&to_json(&r));
    }
    let Some(e) = r.enumeration else { return Err(not_found("enumeration", &args.name, &r.base_url, &r.suggestions)) };
    if ctx.json {
        return Ok(());
    }
    println!("{} (enumeration, {} members) in {}", e.name, e.members.len(), r.base_url);
    println!("Label  {}", label_text(&e.label_id, &e.label));
    let width = e.members.iter().map(|m| m.name.len()).max().unwrap_or(4);
    for m in &e.members {
        println!("  {:>5}  {:<width$}  {}", m.value, m.name, label_text(&m.label_id, &m.label));
    }
    Ok(())
}

// ---- action ----

#[derive(clap::Args, Debug)]
pub struct ActionArgs {
    name: String,
    /// Only the action of this entity (public entity, entity set or data entity name).
    #[arg(long, value_name = "ENTITY")]
    entity: Option<String>,
    #[command(flatten)]
    scope: Scope,
}

pub async fn action(ctx: &Context, args: ActionArgs) -> anyhow::Result<()> {
    let (_runtime, mut cache) = ctx.open_read().await?;
    let r = cache.get_action(&args.name, args.entity.as_deref(), args.scope.options(false)).await?;
    if ctx.json {
        print_json(&to_json(&r));
    }
    if r.actions.is_empty() {
        let within = args.entity.as_deref().map(|e| format!(" of {e}")).unwrap_or_default();
        return Err(not_found("action", &format!("{}{within}", args.name), &r.base_url, &r.suggestions));
    }
    if !ctx.json {
        for a in &r.actions {
            println!("{}.{}  [{}]", a.entity, signature(a), a.binding_kind.as_deref().unwrap_or("?"));
        }
    }
    Ok(())
}

// ---- label ----

#[derive(clap::Args, Debug)]
pub struct LabelArgs {
    /// A label id such as @SYS13342 or @AccountsReceivable:CustomersV3.
    id: String,
    /// The environment to read: a base URL or a profile name.
    #[arg(long = "env", value_name = "URL|PROFILE")]
    env: Option<String>,
    /// The language wanted; en-US is the fallback.
    #[arg(long = "lang", default_value = "en-US", value_name = "LANG")]
    lang: String,
}

impl LabelArgs {
    pub(crate) fn named(&mut self) -> Vec<super::Named<'_>> {
        vec![super::Named::Environment { value: &mut self.env, required: false, defaults: true }]
    }
}

pub async fn label(ctx: &Context, args: LabelArgs) -> anyhow::Result<()> {
    let (_runtime, mut cache) = ctx.open_read().await?;
    let options = ReadOptions {
        base_url: args.env.clone(),
        labels: Some(LabelLanguages { language: args.lang.clone(), fallback: vec!["en-US".to_owned()] }),
    };
    let r = cache.get_label(&args.id, options).await?;
    if ctx.json {
        print_json(&to_json(&r));
    }
    match &r.text {
        Some(text) => {
            if !ctx.json {
                let from = match (&r.language, r.literal) {
                    (_, true) => " (not a label reference: the id is the text)".to_owned(),
                    (Some(l), _) if *l != args.lang => format!(" ({l}: no text in {})", args.lang),
                    _ => String::new(),
                };
                println!("{text}{from}");
            }
            Ok(())
        }
        None => {
            let mut why = Vec::new();
            if !r.missing_in.is_empty() {
                why.push(format!("the environment has no text for it in {}", r.missing_in.join(", ")));
            }
            if !r.unknown_in.is_empty() {
                why.push(format!("its metadata does not use it ({})", r.unknown_in.join(", ")));
            }
            if !r.not_synced.is_empty() {
                why.push(format!(
                    "{} not synced (run `d365meta sync {} --languages {}`)",
                    r.not_synced.join(", "),
                    r.base_url,
                    r.not_synced.join(",")
                ));
            }
            Err(CoreError {
                kind: ErrorKind::NotFound,
                message: format!("no text for label {} in {}: {}", r.id, r.base_url, why.join("; ")),
            }
            .into())
        }
    }
}

// ---- search ----

#[derive(clap::Args, Debug)]
pub struct SearchArgs {
    /// Words to look for, in names (CustCustomerV3Entity is found by "customer") and label texts.
    text: String,
    /// Kinds to search (comma-separated): data-entity, public-entity, enumeration, action, property.
    #[arg(long = "kind", value_delimiter = ',', value_name = "KINDS")]
    kinds: Vec<String>,
    /// Filters, repeatable: category=Master, read-only=true, data-service=true, data-management=true,
    /// entity=CustomerV3 (properties and actions of that entity).
    #[arg(long = "filter", value_name = "KEY=VALUE")]
    filters: Vec<String>,
    #[arg(long, default_value_t = 20)]
    limit: u32,
    #[arg(long, default_value_t = 0)]
    offset: u32,
    #[command(flatten)]
    scope: Scope,
}

impl EntityArgs {
    pub(crate) fn named(&mut self) -> Vec<super::Named<'_>> {
        self.scope.named()
    }
}

impl EnumArgs {
    pub(crate) fn named(&mut self) -> Vec<super::Named<'_>> {
        self.scope.named()
    }
}

impl ActionArgs {
    pub(crate) fn named(&mut self) -> Vec<super::Named<'_>> {
        self.scope.named()
    }
}

impl SearchArgs {
    pub(crate) fn named(&mut self) -> Vec<super::Named<'_>> {
        self.scope.named()
    }
}

/// The kinds a user typed, each checked against WIT's names for them.
pub fn parse_kinds(raw: &[String]) -> anyhow::Result<Vec<ObjectKind>> {
    const ALL: [ObjectKind; 5] =
        [ObjectKind::DataEntity, ObjectKind::PublicEntity, ObjectKind::Enumeration, ObjectKind::Action, ObjectKind::Property];
    raw.iter()
        .map(|k| {
            ALL.into_iter().find(|kind| name_of(kind) == k.trim()).ok_or_else(|| {
                let names: Vec<String> = ALL.iter().map(name_of).collect();
                CoreError { kind: ErrorKind::InvalidInput, message: format!("unknown kind {k:?}; kinds are {}", names.join(", ")) }.into()
            })
        })
        .collect()
}

fn parse_filters(raw: &[String]) -> anyhow::Result<SearchFilters> {
    let mut f = SearchFilters { category: None, read_only: None, data_service_enabled: None, data_management_enabled: None, entity: None };
    let invalid = |m: String| -> anyhow::Error { CoreError { kind: ErrorKind::InvalidInput, message: m }.into() };
    for item in raw {
        let (key, value) = item.split_once('=').ok_or_else(|| invalid(format!("filter {item:?}: expected KEY=VALUE")))?;
        let flag = |v: &str| match v.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(true),
            "false" | "no" | "0" => Ok(false),
            _ => Err(invalid(format!("filter {item:?}: {v:?} is not true or false"))),
        };
        match key.trim() {
            "category" => f.category = Some(value.to_owned()),
            "read-only" => f.read_only = Some(flag(value)?),
            "data-service" => f.data_service_enabled = Some(flag(value)?),
            "data-management" => f.data_management_enabled = Some(flag(value)?),
            "entity" => f.entity = Some(value.to_owned()),
            other => {
                return Err(invalid(format!(
                    "unknown filter {other:?}; filters are category, read-only, data-service, data-management, entity"
                )));
            }
        }
    }
    Ok(f)
}

pub async fn search(ctx: &Context, args: SearchArgs) -> anyhow::Result<()> {
    let filters = parse_filters(&args.filters)?;
    let (_runtime, mut cache) = ctx.open_read().await?;
    let kinds = parse_kinds(&args.kinds)?;
    let query = SearchQuery { text: args.text.clone(), kinds, filters, limit: args.limit, offset: args.offset };
    // Label texts are searched in the language asked for, and resolved when it was asked for.
    let resolve = args.scope.lang != "en-US";
    let r = cache.search(query, args.scope.options(resolve)).await?;
    if ctx.json {
        print_json(&to_json(&r));
        return Ok(());
    }
    if r.hits.is_empty() {
        println!("No matches for {:?} in {} ({} in all).", args.text, r.base_url, r.total);
        return Ok(());
    }
    println!(
        "{}{} {} for {:?} in {}; showing {}-{}",
        if r.total_exact { "" } else { "more than " },
        r.total,
        if r.total == 1 && r.total_exact { "match" } else { "matches" },
        args.text,
        r.base_url,
        args.offset + 1,
        args.offset as usize + r.hits.len()
    );
    let width = r.hits.iter().map(|h| h.name.len() + h.entity.as_ref().map_or(0, |e| e.len() + 1)).max().unwrap_or(4);
    for h in &r.hits {
        let name = match &h.entity {
            Some(e) => format!("{e}.{}", h.name),
            None => h.name.clone(),
        };
        let extra = match (&h.entity_set_name, args.scope.labels || resolve) {
            (_, true) => label_text(&h.label_id, &h.label),
            (Some(set), false) => format!("set {set}"),
            _ => String::new(),
        };
        println!("  {:<13} {:<width$}  {:<7}  {extra}", name_of(&h.kind), name, name_of(&h.matched));
    }
    Ok(())
}

// ---- stats, envs ----

#[derive(clap::Args, Debug)]
pub struct StatsArgs {
    /// Only this environment: a base URL or a profile name.
    #[arg(long = "env", value_name = "URL|PROFILE")]
    env: Option<String>,
}

impl StatsArgs {
    pub(crate) fn named(&mut self) -> Vec<super::Named<'_>> {
        // Statistics of every environment unless one is named: a default profile does not narrow them.
        vec![super::Named::Environment { value: &mut self.env, required: false, defaults: false }]
    }
}

pub async fn stats(ctx: &Context, args: StatsArgs) -> anyhow::Result<()> {
    let (_runtime, mut cache) = ctx.open_read().await?;
    let s = cache.stats(args.env.as_deref()).await?;
    if ctx.json {
        print_json(&to_json(&s));
        return Ok(());
    }
    if s.free_bytes > 0 {
        println!(
            "Database      {} ({} free; `d365meta gc --vacuum` gives it back)",
            human_bytes(s.database_bytes),
            human_bytes(s.free_bytes)
        );
    } else {
        println!("Database      {}", human_bytes(s.database_bytes));
    }
    println!("Environments  {}", s.environments.len());
    println!("Versions      {}", s.versions.len());
    for v in &s.versions {
        let envs = if v.environments.is_empty() { "no environment reads it".to_owned() } else { v.environments.join(", ") };
        println!("  {}  {:>3} modules  {} snapshot(s)  {}", short_hash(&v.modules_hash), v.module_count, v.complete_snapshots, envs);
    }
    println!("Objects");
    for k in &s.objects {
        let saved: f64 = if k.references > 0 { 100.0 * (1.0 - k.stored as f64 / k.references as f64) } else { 0.0 };
        println!(
            "  {:<14} {:>7} stored for {:>7} references ({:.0}% saved), {} shared between versions",
            name_of(&k.kind),
            k.stored,
            k.references,
            saved.max(0.0),
            k.shared_between_versions
        );
    }
    println!("Labels        {} texts stored for {} references", s.label_texts, s.label_references);
    for e in &s.environments {
        println!();
        println!("{}", e.base_url);
        match (&e.synced_hash, &e.counts) {
            (Some(h), Some(c)) => {
                let stale = match &e.detected_hash {
                    Some(d) if d != h => format!(" (it now runs {}: sync to update)", short_hash(d)),
                    _ => String::new(),
                };
                println!("  version   {}{stale}, synced {}", short_hash(h), e.synced_ms.map(rfc3339).unwrap_or_default());
                println!("  holds     {}", describe_counts(c));
                for cov in &e.label_coverage {
                    let pct = if c.label_ids > 0 { 100.0 * cov.texts as f64 / c.label_ids as f64 } else { 0.0 };
                    println!("  labels    {}: {} of {} ({pct:.1}%), {} without text", cov.language, cov.texts, c.label_ids, cov.missing);
                }
            }
            _ => println!("  not synced"),
        }
        if let Some(run) = &e.last_sync {
            println!(
                "  last sync {} {} ({})",
                rfc3339(run.started_ms),
                name_of(&run.outcome),
                run.plan.map_or_else(|| name_of(&run.requested_strategy), |p| name_of(&p))
            );
        }
    }
    Ok(())
}

pub async fn envs(ctx: &Context) -> anyhow::Result<()> {
    let (_runtime, mut cache) = ctx.open_read().await?;
    let s = cache.stats(None).await?;
    if ctx.json {
        // The environments' part of `stats`: one shape for one thing.
        print_json(&to_json(&s.environments));
        return Ok(());
    }
    if s.environments.is_empty() {
        println!("No environments yet: run `d365meta version <base-url>` or `d365meta sync <base-url>`.");
        return Ok(());
    }
    for e in &s.environments {
        let synced = match (&e.synced_hash, e.synced_ms) {
            (Some(h), Some(ms)) => format!("synced {} at {}", short_hash(h), rfc3339(ms)),
            _ => "not synced".to_owned(),
        };
        let languages = e.label_coverage.iter().map(|c| c.language.as_str()).collect::<Vec<_>>().join(",");
        let entities = e.counts.as_ref().map(|c| format!("{} entities", c.public_entities)).unwrap_or_default();
        println!("{}  {synced}  {entities}  {languages}", e.base_url);
    }
    Ok(())
}
