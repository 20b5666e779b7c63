//! What the shared store holds, and how it is checked: packs of objects and label texts, and one
//! manifest per published version and coverage. Both are built and verified here, in the
//! component; the host only moves their bytes (see `wit/shared.wit`).
//!
//! Layout under the store's root:
//! - `packs/<sha256>.pack`: items (objects and label texts), named by the SHA-256 of the pack's
//!   bytes, so a pack is immutable and two publishers of the same items write the same pack.
//! - `versions/<modules hash>/<coverage>.json.zlib`: a manifest (`entities+en-US.json.zlib`),
//!   written last and only if absent, so that a reader never sees a version before every pack it
//!   names.
//!
//! Both are zlib streams (RFC 1950) of JSON text: metadata JSON repeats its field names on every
//! item and shrinks about fourteen-fold, which is what a team pulling over a wide-area link waits
//! for. Each is inflated with a limit, so a small object cannot become a huge one.

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
    format!("{}{key}{MANIFEST_SUFFIX}", version_prefix(modules_hash))
}

/// How a manifest's name ends.
pub const MANIFEST_SUFFIX: &str = ".json.zlib";

/// The most text a pack or manifest may inflate to (a full version's largest pack is about 8 MiB,
/// its manifest about 3 MiB).
const MAX_INFLATED: usize = 256 << 20;

/// `text` as stored: a zlib stream.
pub fn deflate(text: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(text, 6)
}

/// The text of the stored object `name`; a stream that is damaged, or would inflate beyond the
/// limit, fails naming the object.
pub fn inflate(name: &str, stored: &[u8]) -> Result<Vec<u8>, String> {
    miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(stored, MAX_INFLATED).map_err(|e| match e.status {
        miniz_oxide::inflate::TINFLStatus::HasMoreOutput => format!("{name} would inflate to more than {MAX_INFLATED} bytes"),
        status => format!("{name} is damaged: not a whole zlib stream ({status:?})"),
    })
}

/// Whether `s` is a SHA-256 in lower-case hex, as every hash in the store is.
pub fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
