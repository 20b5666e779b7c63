//! `d365meta profiles`: named environments in the configuration file, and their import from
//! d365fo-client.

use super::Context;
use super::output::{print_fields, print_json};
use d365meta::cache::{CoreError, ErrorKind};
use d365meta_config::{ConfigFile, Profile, Secret, SignIn, Value};
use serde_json::{Value as Json, json};
use std::path::PathBuf;

// Parsed once per run: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// List the profiles, the default marked.
    List,
    /// Show one profile's settings (never a secret: where it comes from).
    Show { name: String },
    /// Add a profile (or replace one with --replace).
    Add(Box<AddArgs>),
    /// Remove a profile.
    Remove { name: String },
    /// Make a profile the default: used when a command names no environment.
    Default { name: String },
    /// Bring over d365fo-client's profiles (default: ~/.d365fo-client/config.yaml); secrets
    /// written there are not copied.
    Import {
        /// d365fo-client's configuration file.
        #[arg(value_name = "CONFIG_YAML")]
        path: Option<PathBuf>,
        /// Replace profiles of the same name.
        #[arg(long)]
        replace: bool,
    },
}

#[derive(clap::Args, Debug)]
pub struct AddArgs {
    name: String,
    /// The environment's base URL.
    #[arg(long, value_name = "URL")]
    base_url: String,
    /// How to sign in: default, none, client-secret, azure-cli, managed-identity, workload-identity.
    #[arg(long, value_name = "KIND", value_parser = clap::builder::PossibleValuesParser::new(SignIn::NAMES))]
    sign_in: Option<String>,
    #[arg(long, value_name = "ID", conflicts_with = "tenant_id_env")]
    tenant_id: Option<String>,
    /// The variable holding the tenant id.
    #[arg(long, value_name = "VAR")]
    tenant_id_env: Option<String>,
    #[arg(long, value_name = "ID", conflicts_with = "client_id_env")]
    client_id: Option<String>,
    /// The variable holding the client id.
    #[arg(long, value_name = "VAR")]
    client_id_env: Option<String>,
    /// The variable holding the client secret (the secret itself is never stored).
    #[arg(long, value_name = "VAR", conflicts_with = "client_secret_command")]
    client_secret_env: Option<String>,
    /// A command that prints the client secret (a password manager, `az keyvault secret show`).
    #[arg(long, value_name = "COMMAND")]
    client_secret_command: Option<String>,
    /// Label languages a sync covers when none are given, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "LANGS")]
    languages: Vec<String>,
    /// The cache database for this environment.
    #[arg(long = "cache-file", value_name = "PATH")]
    cache_file: Option<PathBuf>,
    /// Requests in flight at once.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    concurrency: Option<u32>,
    /// Extra certificate authorities to trust (PEM), for a TLS-inspecting proxy.
    #[arg(long, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// The team's shared store of published versions (az://container/prefix, s3://bucket/prefix,
    /// file:///path).
    #[arg(long, value_name = "URL")]
    shared: Option<String>,
    #[arg(long)]
    description: Option<String>,
    /// Make it the default profile.
    #[arg(long)]
    default: bool,
    /// Replace a profile of the same name.
    #[arg(long)]
    replace: bool,
}

fn invalid(e: d365meta_config::Error) -> anyhow::Error {
    CoreError { kind: ErrorKind::InvalidInput, message: e.message }.into()
}

fn value_json(v: &Value) -> Json {
    match v {
        Value::Literal(s) => json!({ "value": s }),
        Value::Env(var) => json!({ "env": var }),
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Literal(s) => s.clone(),
        Value::Env(var) => format!("from ${var}"),
    }
}

/// A profile as `--json` prints it: its settings, and for a secret where it comes from.
pub fn profile_json(p: &Profile, default: bool) -> Json {
    let mut sign_in = json!({ "kind": p.sign_in.name() });
    match &p.sign_in {
        SignIn::ClientSecret { tenant_id, client_id, secret } => {
            sign_in["tenant_id"] = value_json(tenant_id);
            sign_in["client_id"] = value_json(client_id);
            sign_in["client_secret"] = match secret {
                Secret::Env(var) => json!({ "env": var }),
                Secret::Command(command) => json!({ "command": command }),
            };
        }
        SignIn::AzureCli { tenant_id } => sign_in["tenant_id"] = json!(tenant_id),
        SignIn::ManagedIdentity { client_id } => sign_in["client_id"] = json!(client_id),
        _ => {}
    }
    json!({
        "name": p.name,
        "base_url": p.base_url,
        "default": default,
        "sign_in": sign_in,
        "languages": p.languages,
        "cache": p.cache,
        "concurrency": p.concurrency,
        "ca_file": p.ca_file,
        "shared": p.shared,
        "description": p.description,
    })
}

fn sign_in_text(s: &SignIn) -> String {
    match s {
        SignIn::ClientSecret { tenant_id, client_id, secret } => {
            let secret = match secret {
                Secret::Env(var) => format!("from ${var}"),
                Secret::Command(command) => format!("printed by `{command}`"),
            };
            format!("client-secret (tenant {}, client {}, secret {secret})", value_text(tenant_id), value_text(client_id))
        }
        SignIn::AzureCli { tenant_id: Some(t) } => format!("azure-cli (tenant {t})"),
        SignIn::ManagedIdentity { client_id: Some(c) } => format!("managed-identity (client {c})"),
        other => other.name().to_owned(),
    }
}

pub async fn run(ctx: &Context, action: Action) -> anyhow::Result<()> {
    let mut config = ConfigFile::load(&ctx.config_path).map_err(invalid)?;
    let is_default = |config: &ConfigFile, name: &str| config.default_profile().is_some_and(|d| d.name == name);
    match action {
        Action::List => {
            if ctx.json {
                let profiles: Vec<Json> = config.profiles().map(|p| profile_json(p, is_default(&config, &p.name))).collect();
                print_json(&json!({
                    "config": config.path(),
                    "default_profile": config.default_profile().map(|p| &p.name),
                    "profiles": profiles,
                }));
            } else if config.profiles().next().is_none() {
                println!("No profiles in {} (add one with `d365meta profiles add NAME --base-url URL`).", config.path().display());
            } else {
                for p in config.profiles() {
                    let mark = if is_default(&config, &p.name) { "*" } else { " " };
                    println!("{mark} {:<16} {}  [{}]", p.name, p.base_url, p.sign_in.name());
                }
            }
        }
        Action::Show { name } => {
            let p = config.require(&name).map_err(invalid)?;
            if ctx.json {
                print_json(&profile_json(p, is_default(&config, &name)));
            } else {
                let mut fields = vec![
                    ("Profile", format!("{}{}", p.name, if is_default(&config, &name) { " (default)" } else { "" })),
                    ("Base URL", p.base_url.clone()),
                    ("Sign-in", sign_in_text(&p.sign_in)),
                ];
                if !p.languages.is_empty() {
                    fields.push(("Languages", p.languages.join(", ")));
                }
                if let Some(c) = &p.cache {
                    fields.push(("Cache", c.display().to_string()));
                }
                if let Some(n) = p.concurrency {
                    fields.push(("Concurrency", n.to_string()));
                }
                if let Some(c) = &p.ca_file {
                    fields.push(("CA file", c.display().to_string()));
                }
                if let Some(url) = &p.shared {
                    fields.push(("Shared store", url.clone()));
                }
                if let Some(d) = &p.description {
                    fields.push(("Description", d.clone()));
                }
                print_fields(&fields);
            }
        }
        Action::Add(args) => {
            let profile = profile_from(args.name.clone(), &args)?;
            config.add(profile.clone(), args.replace).map_err(invalid)?;
            if args.default || config.default_profile().is_none() {
                config.set_default(&profile.name).map_err(invalid)?;
            }
            config.save().map_err(invalid)?;
            if ctx.json {
                print_json(&json!({ "config": config.path(), "profile": profile_json(&profile, is_default(&config, &profile.name)) }));
            } else {
                let default = if is_default(&config, &profile.name) { " (the default)" } else { "" };
                println!("Added profile {}{default} to {}.", profile.name, config.path().display());
            }
        }
        Action::Remove { name } => {
            let removed = config.remove(&name).map_err(invalid)?;
            config.save().map_err(invalid)?;
            if ctx.json {
                print_json(&json!({ "config": config.path(), "removed": removed.name }));
            } else {
                println!("Removed profile {} from {}.", removed.name, config.path().display());
            }
        }
        Action::Default { name } => {
            config.set_default(&name).map_err(invalid)?;
            config.save().map_err(invalid)?;
            if ctx.json {
                print_json(&json!({ "config": config.path(), "default_profile": name }));
            } else {
                println!("{name} is the default profile.");
            }
        }
        Action::Import { path, replace } => import(ctx, &mut config, path, replace)?,
    }
    Ok(())
}

fn profile_from(name: String, a: &AddArgs) -> anyhow::Result<Profile> {
    // Built through the file's own reading, so that a profile added here is checked exactly as
    // one written by hand.
    let mut t = toml::Table::new();
    let mut put = |key: &str, value: Option<toml::Value>| {
        if let Some(v) = value {
            t.insert(key.to_owned(), v);
        }
    };
    let text = |v: &Option<String>| v.clone().map(toml::Value::String);
    let path = |v: &Option<PathBuf>| v.as_ref().map(|p| toml::Value::String(p.display().to_string()));
    put("base_url", Some(toml::Value::String(a.base_url.clone())));
    put("sign_in", text(&a.sign_in));
    put("tenant_id", text(&a.tenant_id));
    put("tenant_id_env", text(&a.tenant_id_env));
    put("client_id", text(&a.client_id));
    put("client_id_env", text(&a.client_id_env));
    put("client_secret_env", text(&a.client_secret_env));
    put("client_secret_command", text(&a.client_secret_command));
    if !a.languages.is_empty() {
        put("languages", Some(toml::Value::Array(a.languages.iter().cloned().map(toml::Value::String).collect())));
    }
    put("cache", path(&a.cache_file));
    put("concurrency", a.concurrency.map(|n| toml::Value::Integer(n.into())));
    put("ca_file", path(&a.ca_file));
    put("shared", text(&a.shared));
    put("description", text(&a.description));
    d365meta_config::profile_from_table(&name, t).map_err(invalid)
}

fn import(ctx: &Context, config: &mut ConfigFile, path: Option<PathBuf>, replace: bool) -> anyhow::Result<()> {
    let source = path.or_else(d365meta_config::d365fo_client_config_path).ok_or_else(|| {
        invalid(d365meta_config::Error { message: "no home directory to find d365fo-client's config.yaml in; name the file".to_owned() })
    })?;
    let text = std::fs::read_to_string(&source).map_err(|e| {
        invalid(d365meta_config::Error { message: format!("cannot read d365fo-client's configuration {}: {e}", source.display()) })
    })?;
    let report = d365meta_config::import_d365fo_client(&text, &source).map_err(invalid)?;
    let mut added = Vec::new();
    let mut existing = Vec::new();
    for imported in &report.profiles {
        if config.profile(&imported.profile.name).is_some() && !replace {
            existing.push(imported.profile.name.clone());
            continue;
        }
        config.add(imported.profile.clone(), true).map_err(invalid)?;
        added.push(imported);
    }
    let default =
        report.default_profile.as_ref().filter(|d| config.default_profile().is_none() && added.iter().any(|a| &a.profile.name == *d));
    if let Some(d) = default {
        config.set_default(d).map_err(invalid)?;
    }
    if !added.is_empty() {
        config.save().map_err(invalid)?;
    }
    if ctx.json {
        print_json(&json!({
            "source": source,
            "config": config.path(),
            "imported": added.iter().map(|a| json!({ "profile": profile_json(&a.profile, is_default_name(config, &a.profile.name)), "notes": a.notes })).collect::<Vec<_>>(),
            "existing": existing,
            "skipped": report.skipped.iter().map(|(name, reason)| json!({ "name": name, "reason": reason })).collect::<Vec<_>>(),
            "default_profile": config.default_profile().map(|p| &p.name),
            "cache_dirs": report.cache_dirs,
        }));
        return Ok(());
    }
    println!("From {}:", source.display());
    for a in &added {
        println!("  imported {} ({}, sign-in {})", a.profile.name, a.profile.base_url, a.profile.sign_in.name());
        for note in &a.notes {
            println!("    note: {note}");
        }
    }
    for name in &existing {
        println!("  kept the existing profile {name} (give --replace to replace it)");
    }
    for (name, reason) in &report.skipped {
        println!("  skipped {name}: {reason}");
    }
    if let Some(d) = default {
        println!("{d} is the default profile.");
    }
    println!("{} profile(s) written to {}.", added.len(), config.path().display());
    Ok(())
}

fn is_default_name(config: &ConfigFile, name: &str) -> bool {
    config.default_profile().is_some_and(|d| d.name == name)
}
