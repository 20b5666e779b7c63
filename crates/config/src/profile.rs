//! A profile: one F&O environment and how to reach it, validated when read.

use crate::Error;
use serde::Deserialize;
use std::path::PathBuf;

/// How the host signs in to an environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignIn {
    /// The credential chain: client secret from the environment, workload identity, managed
    /// identity, then the Azure CLI (what d365fo-client's `default` does); none on loopback.
    Default,
    /// No token at all (the simulator, an environment behind a proxy that signs in for you).
    None,
    /// An app registration's client secret, read from where the profile says, never stored.
    ClientSecret { tenant_id: Value, client_id: Value, secret: Secret },
    /// The account `az login` signed in.
    AzureCli { tenant_id: Option<String> },
    /// The managed identity of the Azure resource this runs on (a user-assigned one by client id).
    ManagedIdentity { client_id: Option<String> },
    /// Workload identity federation (Kubernetes, GitHub Actions): the `AZURE_*` variables it sets.
    WorkloadIdentity,
}

impl SignIn {
    pub const NAMES: [&'static str; 6] = ["default", "none", "client-secret", "azure-cli", "managed-identity", "workload-identity"];

    pub fn name(&self) -> &'static str {
        match self {
            SignIn::Default => "default",
            SignIn::None => "none",
            SignIn::ClientSecret { .. } => "client-secret",
            SignIn::AzureCli { .. } => "azure-cli",
            SignIn::ManagedIdentity { .. } => "managed-identity",
            SignIn::WorkloadIdentity => "workload-identity",
        }
    }
}

/// A setting given as itself or as the environment variable that holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Literal(String),
    Env(String),
}

impl Value {
    /// The value now: the variable's, for one read from the environment.
    pub fn resolve(&self, what: &str) -> Result<String, Error> {
        match self {
            Value::Literal(v) => Ok(v.clone()),
            Value::Env(var) => std::env::var(var)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| Error::new(format!("{what} is to be read from the environment variable {var}, which is not set"))),
        }
    }
}

/// Where a secret comes from. A secret itself is never written to the configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Secret {
    /// An environment variable holding it.
    Env(String),
    /// A command that prints it (a password manager, `az keyvault secret show ... -o tsv`).
    Command(String),
}

impl Secret {
    /// The secret now. Errors name where it was to come from, never what came out.
    pub fn resolve(&self, profile: &str) -> Result<String, Error> {
        match self {
            Secret::Env(var) => std::env::var(var).ok().filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                Error::new(format!(
                    "profile {profile}: the client secret is to be read from the environment variable {var}, which is not set"
                ))
            }),
            Secret::Command(command) => {
                let (shell, flag) = if cfg!(windows) { ("cmd", "/C") } else { ("sh", "-c") };
                let output = std::process::Command::new(shell)
                    .args([flag, command])
                    .stdin(std::process::Stdio::null())
                    .stderr(std::process::Stdio::inherit())
                    .output()
                    .map_err(|e| Error::new(format!("profile {profile}: cannot run the client secret command {command:?}: {e}")))?;
                if !output.status.success() {
                    return Err(Error::new(format!("profile {profile}: the client secret command {command:?} failed ({})", output.status)));
                }
                let secret = String::from_utf8(output.stdout).map_err(|_| {
                    Error::new(format!("profile {profile}: the client secret command {command:?} printed something that is not text"))
                })?;
                let secret = secret.trim().to_owned();
                if secret.is_empty() {
                    return Err(Error::new(format!("profile {profile}: the client secret command {command:?} printed nothing")));
                }
                Ok(secret)
            }
        }
    }
}

/// One named environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub base_url: String,
    pub sign_in: SignIn,
    /// Label languages a sync covers when none are asked for.
    pub languages: Vec<String>,
    /// The cache database, when not the default.
    pub cache: Option<PathBuf>,
    /// Requests in flight at once.
    pub concurrency: Option<u32>,
    /// Extra certificate authorities (PEM) to trust, for a TLS-inspecting proxy.
    pub ca_file: Option<PathBuf>,
    /// The shared store a sync pulls versions from and `publish` writes them to
    /// (`az://container/prefix`, `s3://bucket/prefix`, `file:///path`).
    pub shared: Option<String>,
    pub description: Option<String>,
}

/// A profile as written in the file; [`Profile`] is what it must mean.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProfile {
    pub base_url: Option<String>,
    pub sign_in: Option<String>,
    pub tenant_id: Option<String>,
    pub tenant_id_env: Option<String>,
    pub client_id: Option<String>,
    pub client_id_env: Option<String>,
    pub client_secret_env: Option<String>,
    pub client_secret_command: Option<String>,
    /// Refused with a message of its own: secrets are never kept in the file.
    pub client_secret: Option<toml::Value>,
    pub languages: Option<Vec<String>>,
    pub cache: Option<PathBuf>,
    pub concurrency: Option<u32>,
    pub ca_file: Option<PathBuf>,
    pub shared: Option<String>,
    pub description: Option<String>,
}

/// Whether `name` may name a profile: it must not be mistaken for a URL, a modules hash or a flag.
pub fn check_name(name: &str) -> Result<(), Error> {
    let bad = |why: &str| Err(Error::new(format!("profile name {name:?}: {why}")));
    if name.is_empty() || name.len() > 64 {
        return bad("between 1 and 64 characters");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.') {
        return bad("letters, digits, '-', '_' and '.' only");
    }
    if name.starts_with('-') {
        return bad("must not start with '-'");
    }
    if name.len() >= 8 && name.chars().all(|c| c.is_ascii_hexdigit()) {
        return bad("looks like a modules hash; choose a name with a letter beyond a-f");
    }
    Ok(())
}

/// Whether `url` is an http(s) URL with a host: the check is the host's own, repeated where the
/// file is read so that a bad profile is reported with its name.
pub fn check_base_url(url: &str) -> Result<(), String> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).ok_or("expected an http:// or https:// URL")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err("the URL has no host".to_owned());
    }
    if url.chars().any(char::is_whitespace) {
        return Err("the URL contains spaces".to_owned());
    }
    Ok(())
}

/// Whether `url` may name a shared store: `az://`, `azure://`, `https://` (an Azure account),
/// `s3://` or `file:///` with an absolute path, and no credentials in it but a SAS query.
pub fn check_shared_url(url: &str) -> Result<(), Error> {
    let bad = |why: &str| Err(Error::new(format!("{url:?}: {why}")));
    let Some((scheme, rest)) = url.split_once("://") else {
        return bad("expected a URL such as az://container/prefix, s3://bucket/prefix or file:///path");
    };
    if url.chars().any(char::is_whitespace) {
        return bad("the URL contains spaces");
    }
    match scheme.to_ascii_lowercase().as_str() {
        "az" | "azure" | "abfs" | "abfss" | "s3" | "s3a" | "http" | "https" if rest.split('/').next().is_some_and(|h| !h.is_empty()) => {
            Ok(())
        }
        "file" if rest.starts_with('/') => Ok(()),
        "file" => bad("a file URL needs an absolute path: file:///path"),
        "az" | "azure" | "abfs" | "abfss" | "s3" | "s3a" | "http" | "https" => bad("the URL names no container or bucket"),
        other => bad(&format!("unknown scheme {other}: expected az, s3 or file")),
    }
}

impl RawProfile {
    pub(crate) fn validate(self, name: &str) -> Result<Profile, Error> {
        let bad = |why: String| Error::new(format!("profile {name}: {why}"));
        check_name(name)?;
        if self.client_secret.is_some() {
            return Err(bad(
                "a client secret is never kept in the configuration file; name the variable that holds it (client_secret_env) or a command that prints it (client_secret_command)".to_owned(),
            ));
        }
        let base_url = self.base_url.ok_or_else(|| bad("base_url is missing".to_owned()))?;
        check_base_url(&base_url).map_err(|why| bad(format!("base_url {base_url:?}: {why}")))?;
        let either = |literal: Option<String>, env: Option<String>, what: &str| -> Result<Option<Value>, Error> {
            match (literal, env) {
                (Some(_), Some(_)) => Err(bad(format!("give {what} or {what}_env, not both"))),
                (Some(v), None) => Ok(Some(Value::Literal(v))),
                (None, Some(var)) => Ok(Some(Value::Env(var))),
                (None, None) => Ok(None),
            }
        };
        let tenant_id = either(self.tenant_id, self.tenant_id_env, "tenant_id")?;
        let client_id = either(self.client_id, self.client_id_env, "client_id")?;
        let secret = match (self.client_secret_env, self.client_secret_command) {
            (Some(_), Some(_)) => return Err(bad("give client_secret_env or client_secret_command, not both".to_owned())),
            (Some(var), None) => Some(Secret::Env(var)),
            (None, Some(command)) => Some(Secret::Command(command)),
            (None, None) => None,
        };
        let kind = self.sign_in.as_deref().unwrap_or(if secret.is_some() { "client-secret" } else { "default" });
        let literal = |v: &Option<Value>| match v {
            Some(Value::Literal(s)) => Some(s.clone()),
            _ => None,
        };
        let unused =
            |what: &str, present: bool| if present { Err(bad(format!("{what} is not used by sign_in = {kind:?}"))) } else { Ok(()) };
        let sign_in = match kind {
            "client-secret" => {
                // Unnamed ids and secret come from the variables every Azure SDK reads.
                SignIn::ClientSecret {
                    tenant_id: tenant_id.unwrap_or(Value::Env("AZURE_TENANT_ID".to_owned())),
                    client_id: client_id.unwrap_or(Value::Env("AZURE_CLIENT_ID".to_owned())),
                    secret: secret.unwrap_or(Secret::Env("AZURE_CLIENT_SECRET".to_owned())),
                }
            }
            "default" | "none" | "workload-identity" => {
                unused("client_secret_env / client_secret_command", secret.is_some())?;
                unused("tenant_id", tenant_id.is_some())?;
                unused("client_id", client_id.is_some())?;
                match kind {
                    "default" => SignIn::Default,
                    "none" => SignIn::None,
                    _ => SignIn::WorkloadIdentity,
                }
            }
            "azure-cli" => {
                unused("client_secret_env / client_secret_command", secret.is_some())?;
                unused("client_id", client_id.is_some())?;
                SignIn::AzureCli { tenant_id: literal(&tenant_id) }
            }
            "managed-identity" => {
                unused("client_secret_env / client_secret_command", secret.is_some())?;
                unused("tenant_id", tenant_id.is_some())?;
                SignIn::ManagedIdentity { client_id: literal(&client_id) }
            }
            other => return Err(bad(format!("sign_in {other:?} is not one of {}", SignIn::NAMES.join(", ")))),
        };
        let languages = self.languages.unwrap_or_default();
        if let Some(l) = languages.iter().find(|l| l.trim().is_empty() || l.contains(',')) {
            return Err(bad(format!("languages: {l:?} is not a language tag")));
        }
        if self.concurrency == Some(0) {
            return Err(bad("concurrency must be at least 1".to_owned()));
        }
        if let Some(url) = &self.shared {
            crate::check_shared_url(url).map_err(|e| bad(format!("shared: {}", e.message)))?;
        }
        Ok(Profile {
            name: name.to_owned(),
            base_url,
            sign_in,
            languages,
            cache: self.cache,
            concurrency: self.concurrency,
            ca_file: self.ca_file,
            shared: self.shared,
            description: self.description,
        })
    }
}

impl Profile {
    /// The profile as the table written to the file: only what differs from the defaults.
    pub(crate) fn to_table(&self) -> toml_edit::Table {
        use toml_edit::value;
        let mut t = toml_edit::Table::new();
        t["base_url"] = value(&self.base_url);
        t["sign_in"] = value(self.sign_in.name());
        let mut put = |key: &str, v: &Value| match v {
            Value::Literal(s) => t[key] = value(s),
            Value::Env(var) => t[&format!("{key}_env")] = value(var),
        };
        match &self.sign_in {
            SignIn::ClientSecret { tenant_id, client_id, secret } => {
                put("tenant_id", tenant_id);
                put("client_id", client_id);
                match secret {
                    Secret::Env(var) => t["client_secret_env"] = value(var),
                    Secret::Command(command) => t["client_secret_command"] = value(command),
                }
            }
            SignIn::AzureCli { tenant_id: Some(id) } => t["tenant_id"] = value(id),
            SignIn::ManagedIdentity { client_id: Some(id) } => t["client_id"] = value(id),
            _ => {}
        }
        if !self.languages.is_empty() {
            t["languages"] = value(self.languages.iter().collect::<toml_edit::Array>());
        }
        if let Some(p) = &self.cache {
            t["cache"] = value(p.display().to_string());
        }
        if let Some(n) = self.concurrency {
            t["concurrency"] = value(i64::from(n));
        }
        if let Some(p) = &self.ca_file {
            t["ca_file"] = value(p.display().to_string());
        }
        if let Some(url) = &self.shared {
            t["shared"] = value(url);
        }
        if let Some(d) = &self.description {
            t["description"] = value(d);
        }
        t
    }
}
