//! Profiles from d365fo-client's `config.yaml` (`~/.d365fo-client/config.yaml`): its `profiles`
//! and `default_profile`, turned into d365meta profiles. A secret written in that file is never
//! copied: the imported profile reads it from a variable instead, and the report says so.

use crate::Error;
use crate::profile::{Profile, Secret, SignIn, Value, check_base_url, check_name};
use serde_norway::Value as Yaml;
use std::path::{Path, PathBuf};

/// One profile brought over, and what the user should know about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imported {
    pub profile: Profile,
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub profiles: Vec<Imported>,
    /// Profiles that could not be brought over, and why.
    pub skipped: Vec<(String, String)>,
    /// The file's default profile, when it was imported.
    pub default_profile: Option<String>,
    /// Metadata cache directories the profiles name (for `d365meta import`).
    pub cache_dirs: Vec<PathBuf>,
}

/// Where d365fo-client keeps its configuration.
pub fn d365fo_client_config_path() -> Option<PathBuf> {
    dirs::home_dir().map(|h| h.join(".d365fo-client").join("config.yaml"))
}

/// The variable d365fo-client reads a client secret from.
const SECRET_VAR: &str = "D365FO_CLIENT_SECRET";

/// Reads d365fo-client's configuration `text` (from `source`, for messages).
pub fn import_d365fo_client(text: &str, source: &Path) -> Result<ImportReport, Error> {
    let in_file = |why: String| Error::new(format!("d365fo-client configuration {}: {why}", source.display()));
    let root: Yaml = serde_norway::from_str(text).map_err(|e| in_file(e.to_string()))?;
    let mut report = ImportReport::default();
    if root.is_null() {
        return Ok(report);
    }
    let root = root.as_mapping().ok_or_else(|| in_file("expected a mapping at the top".to_owned()))?;
    let Some(profiles) = root.get("profiles").filter(|p| !p.is_null()) else { return Ok(report) };
    let profiles = profiles.as_mapping().ok_or_else(|| in_file("`profiles` is not a mapping".to_owned()))?;
    for (name, fields) in profiles {
        let Some(name) = name.as_str() else {
            report.skipped.push((format!("{name:?}"), "its name is not text".to_owned()));
            continue;
        };
        match profile(name, fields, &mut report.cache_dirs) {
            Ok(imported) => report.profiles.push(imported),
            Err(why) => report.skipped.push((name.to_owned(), why)),
        }
    }
    if let Some(default) = root.get("default_profile").and_then(Yaml::as_str)
        && report.profiles.iter().any(|p| p.profile.name == default)
    {
        report.default_profile = Some(default.to_owned());
    }
    Ok(report)
}

fn profile(name: &str, fields: &Yaml, cache_dirs: &mut Vec<PathBuf>) -> Result<Imported, String> {
    check_name(name).map_err(|e| format!("{}; add it again under another name with `d365meta profiles add`", e.message))?;
    let fields = fields.as_mapping().ok_or("its settings are not a mapping")?;
    let text = |key: &str| fields.get(key).and_then(Yaml::as_str).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
    let mut notes = Vec::new();
    let base_url = text("base_url").ok_or("it has no base_url")?;
    check_base_url(&base_url).map_err(|why| format!("base_url {base_url:?}: {why}"))?;

    let source = fields.get("credential_source").and_then(Yaml::as_mapping);
    let source_var = |key: &str, default: &str| {
        source.and_then(|s| s.get(key)).and_then(Yaml::as_str).filter(|v| !v.is_empty()).unwrap_or(default).to_owned()
    };
    let auth_mode = text("auth_mode").unwrap_or_else(|| "default".to_owned());
    let sign_in = match source.and_then(|s| s.get("source_type")).and_then(Yaml::as_str) {
        Some("environment") => SignIn::ClientSecret {
            tenant_id: Value::Env(source_var("tenant_id_var", "AZURE_TENANT_ID")),
            client_id: Value::Env(source_var("client_id_var", "AZURE_CLIENT_ID")),
            secret: Secret::Env(source_var("client_secret_var", "AZURE_CLIENT_SECRET")),
        },
        Some(other) => {
            notes.push(format!(
                "its credentials come from a {other} source, which d365meta does not read: it signs in with the default chain; \
                 to use an app registration, set client_secret_command to a command that prints the secret"
            ));
            SignIn::Default
        }
        None if auth_mode == "client_credentials" || text("client_secret").is_some() => {
            if text("client_secret").is_some() {
                notes.push(format!("its client secret was written in the file and was not copied: set {SECRET_VAR}, or name another variable (client_secret_env) or a command (client_secret_command)"));
            }
            let id = |key: &str, var: &str| text(key).map(Value::Literal).unwrap_or_else(|| Value::Env(var.to_owned()));
            SignIn::ClientSecret {
                tenant_id: id("tenant_id", "D365FO_TENANT_ID"),
                client_id: id("client_id", "D365FO_CLIENT_ID"),
                secret: Secret::Env(SECRET_VAR.to_owned()),
            }
        }
        None => {
            if auth_mode != "default" {
                notes.push(format!("its auth_mode {auth_mode:?} is not known here: it signs in with the default chain"));
            }
            SignIn::Default
        }
    };
    if fields.get("verify_ssl").and_then(Yaml::as_bool) == Some(false) {
        notes.push(
            "it turned certificate verification off; d365meta never does: give its proxy's certificate authority with ca_file".to_owned(),
        );
    }
    if let Some(timeout) = fields.get("timeout").and_then(Yaml::as_u64).filter(|&t| t != 60) {
        notes.push(format!("its timeout ({timeout} s) is not imported: d365meta retries within its own limits"));
    }
    let languages = text("language").map(|l| vec![l]).unwrap_or_default();
    for key in ["metadata_cache_dir", "cache_dir"] {
        if let Some(dir) = text(key) {
            let dir = PathBuf::from(dir);
            notes.push(format!("its metadata cache is in {}: bring it over with `d365meta import {}`", dir.display(), dir.display()));
            if !cache_dirs.contains(&dir) {
                cache_dirs.push(dir);
            }
        }
    }
    Ok(Imported {
        profile: Profile {
            name: name.to_owned(),
            base_url,
            sign_in,
            languages,
            cache: None,
            concurrency: None,
            ca_file: None,
            shared: None,
            description: text("description"),
        },
        notes,
    })
}
