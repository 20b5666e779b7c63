//! d365meta's configuration file: named profiles of F&O environments and a default one.
//!
//! The file is TOML, at `d365meta/config.toml` in the user's configuration directory (or where
//! `D365META_CONFIG` says). It is read into validated [`Profile`]s at once, so a mistake is
//! reported with the file, the profile and the setting; changes are written back with `toml_edit`,
//! keeping the user's comments and layout, atomically (a new file renamed over the old one).
//!
//! ```toml
//! default_profile = "uat"
//!
//! [profiles.uat]
//! base_url = "https://contoso-uat.sandbox.operations.dynamics.com"
//! sign_in = "client-secret"        # default | none | client-secret | azure-cli | managed-identity | workload-identity
//! tenant_id = "00000000-0000-0000-0000-000000000000"
//! client_id = "11111111-1111-1111-1111-111111111111"
//! client_secret_env = "UAT_CLIENT_SECRET"   # or client_secret_command = "pass show d365/uat"
//! languages = ["en-US", "de"]
//! ```
//!
//! A secret is never written here: a profile names the variable that holds it or a command that
//! prints it.

mod import;
mod profile;

pub use import::{ImportReport, Imported, d365fo_client_config_path, import_d365fo_client};
pub use profile::{Profile, Secret, SignIn, Value, check_base_url, check_name, check_shared_url};

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A configuration problem, in words that name the file, the profile and the setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub message: String,
}

impl Error {
    pub(crate) fn new(message: impl Into<String>) -> Error {
        Error { message: message.into() }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// A profile from settings as the file holds them, checked as the file's own are.
pub fn profile_from_table(name: &str, table: toml::Table) -> Result<Profile, Error> {
    let raw: profile::RawProfile =
        table.try_into().map_err(|e: toml::de::Error| Error::new(format!("profile {name}: {}", e.to_string().trim_end())))?;
    raw.validate(name)
}

/// The variable that moves the configuration file elsewhere.
pub const CONFIG_VAR: &str = "D365META_CONFIG";

/// Where the configuration file is: `D365META_CONFIG`, else `d365meta/config.toml` in the user's
/// configuration directory (`~/.config` on Linux, `~/Library/Application Support` on macOS,
/// `%APPDATA%` on Windows).
pub fn default_path() -> PathBuf {
    if let Some(path) = std::env::var_os(CONFIG_VAR).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    dirs::config_dir().unwrap_or_else(|| PathBuf::from(".")).join("d365meta").join("config.toml")
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    default_profile: Option<String>,
    #[serde(default)]
    profiles: BTreeMap<String, toml::Table>,
}

/// The configuration file, read and validated; changes are kept until [`ConfigFile::save`].
#[derive(Debug)]
pub struct ConfigFile {
    path: PathBuf,
    document: toml_edit::DocumentMut,
    default_profile: Option<String>,
    profiles: BTreeMap<String, Profile>,
}

impl ConfigFile {
    /// Reads the file at `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<ConfigFile, Error> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::new(format!("cannot read the configuration file {}: {e}", path.display()))),
        };
        Self::parse(path, &text)
    }

    fn parse(path: &Path, text: &str) -> Result<ConfigFile, Error> {
        let in_file = |why: String| Error::new(format!("configuration file {}: {why}", path.display()));
        let raw: RawConfig = toml::from_str(text).map_err(|e| in_file(e.to_string().trim_end().to_owned()))?;
        let document: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| in_file(e.to_string()))?;
        let mut profiles = BTreeMap::new();
        for (name, table) in raw.profiles {
            profiles.insert(name.clone(), profile_from_table(&name, table).map_err(|e| in_file(e.message))?);
        }
        if let Some(default) = &raw.default_profile
            && !profiles.contains_key(default)
        {
            return Err(in_file(format!("default_profile {default:?} is not one of the profiles")));
        }
        Ok(ConfigFile { path: path.to_owned(), document, default_profile: raw.default_profile, profiles })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn profiles(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.values()
    }

    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    /// The profile `name`, or an error that lists the ones there are.
    pub fn require(&self, name: &str) -> Result<&Profile, Error> {
        self.profile(name).ok_or_else(|| {
            let known = if self.profiles.is_empty() {
                format!("there are none in {} (add one with `d365meta profiles add`)", self.path.display())
            } else {
                format!("the profiles are {}", self.profiles.keys().cloned().collect::<Vec<_>>().join(", "))
            };
            Error::new(format!("no profile named {name:?}: {known}"))
        })
    }

    pub fn default_profile(&self) -> Option<&Profile> {
        self.default_profile.as_deref().and_then(|n| self.profiles.get(n))
    }

    /// Adds `profile`, or replaces the one of its name when `replace` is set.
    pub fn add(&mut self, profile: Profile, replace: bool) -> Result<(), Error> {
        check_name(&profile.name)?;
        if self.profiles.contains_key(&profile.name) && !replace {
            return Err(Error::new(format!("a profile named {} exists; give --replace to replace it", profile.name)));
        }
        let profiles = self.document.entry("profiles").or_insert_with(|| {
            let mut t = toml_edit::Table::new();
            t.set_implicit(true);
            toml_edit::Item::Table(t)
        });
        let Some(profiles) = profiles.as_table_like_mut() else {
            return Err(Error::new(format!("configuration file {}: `profiles` is not a table", self.path.display())));
        };
        profiles.insert(&profile.name, toml_edit::Item::Table(profile.to_table()));
        self.profiles.insert(profile.name.clone(), profile);
        Ok(())
    }

    /// Removes the profile `name` (and makes no profile the default if it was).
    pub fn remove(&mut self, name: &str) -> Result<Profile, Error> {
        self.require(name)?;
        if let Some(profiles) = self.document.get_mut("profiles").and_then(|p| p.as_table_like_mut()) {
            profiles.remove(name);
        }
        if self.default_profile.as_deref() == Some(name) {
            self.default_profile = None;
            self.document.remove("default_profile");
        }
        Ok(self.profiles.remove(name).expect("required above"))
    }

    pub fn set_default(&mut self, name: &str) -> Result<(), Error> {
        self.require(name)?;
        self.default_profile = Some(name.to_owned());
        // Keys of the top level are written before every table, where a reader looks for them.
        self.document["default_profile"] = toml_edit::value(name);
        Ok(())
    }

    /// Writes the file: a new file beside it, then renamed over it, so that a reader never sees
    /// half of one. Readable by its owner only where the system has such permissions: it says
    /// which variables and commands hold secrets.
    pub fn save(&self) -> Result<(), Error> {
        let fail = |what: &str, e: std::io::Error| Error::new(format!("cannot {what} the configuration file {}: {e}", self.path.display()));
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail("create the directory of", e))?;
        }
        let mut temporary = self.path.as_os_str().to_owned();
        temporary.push(format!(".{}.tmp", std::process::id()));
        let temporary = PathBuf::from(temporary);
        std::fs::write(&temporary, self.document.to_string()).map_err(|e| fail("write", e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600)).map_err(|e| fail("protect", e))?;
        }
        std::fs::rename(&temporary, &self.path).map_err(|e| {
            let _ = std::fs::remove_file(&temporary);
            fail("replace", e)
        })
    }
}

#[cfg(test)]
mod tests;
