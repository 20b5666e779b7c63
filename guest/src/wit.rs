//! The types and imports generated from the WIT contract in `wit/`: the one definition of every
//! record the core exchanges with its host. The core's own model uses them directly, so a record
//! is written once in WIT (and once in SQL), not again here.
//!
//! The bindings are generated on every target: natively (unit tests, the benchmarks' lower bound)
//! the types are what matters; the import functions exist there but are never called.

wit_bindgen::generate!({
    world: "core",
    path: "../wit",
    // Content hashes serialise objects; sync compares them; pulled packs deserialise them.
    additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
    pub_export_macro: true,
});

pub use d365meta::cache::types;
pub use d365meta::cache::{host, http, shared, store};
pub use exports::d365meta::cache::cache as exports_cache;
