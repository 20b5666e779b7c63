//! What the shared store holds, and how it is checked: packs of objects and label texts, and one
//! manifest per published version and coverage. Both are built and verified here, in the
//! component; the host only moves their bytes (see `wit/shared.wit`).
//!
//! Layout under the store's root:
//! - `packs/<sha256>.pack`: items (objects and label texts), named by the SHA-256 of the pack's
//!   bytes, so a pack is immutable and two publishers of the same items write the same pack.
//! - `versions/<modules hash>/<coverage>.json`: a manifest (`entities+en-US.json`), written last
//!   and only if absent, so that a reader never sees a version before every pack it names.

pub mod manifest;
pub mod pack;

pub use manifest::{Manifest, ObjectRef};
pub use pack::{Item, LabelText};

/// Where the manifests of a version live.
pub fn version_prefix(modules_hash: &str) -> String {
    format!("versions/{modules_hash}/")
}

/// A manifest's name: its version and what it covers (`versions/<hash>/entities+de-DE+en-US.json`).
pub fn manifest_name(modules_hash: &str, coverage: &crate::sync::coverage::Coverage) -> String {
    let mut key = String::from(if coverage.entities { "entities" } else { "labels" });
    for language in &coverage.languages {
        key.push('+');
        key.push_str(language);
    }
    format!("{}{key}.json", version_prefix(modules_hash))
}

/// Whether `s` is a SHA-256 in lower-case hex, as every hash in the store is.
pub fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
