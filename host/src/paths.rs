//! Where d365meta keeps its files by default.

use std::path::PathBuf;

/// The directory for the cache database and the compiled component: the user's cache directory
/// (`$XDG_CACHE_HOME/d365meta`, `~/Library/Caches/d365meta`, `%LOCALAPPDATA%\d365meta`).
pub fn default_cache_dir() -> PathBuf {
    dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("d365meta")
}

pub fn default_database() -> PathBuf {
    default_cache_dir().join("cache.db")
}
