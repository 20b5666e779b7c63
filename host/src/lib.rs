//! The d365meta host library: runs the core component (built from `guest/`) under wasmtime and
//! gives it HTTP, SQLite and host services under policy. The `d365meta` command-line tool
//! (`cli/`) and other hosts' embedders build on it.
//!
//! - [`runtime`]: the engine, the compiled component (cached), memory and CPU limits, the linker.
//! - [`imports`]: one module per interface the component imports (`http`, `store`, `host`, `wasi`).
//! - [`policy`]: where a request may go; [`auth`]: the tokens the host adds.
//! - [`cache`]: [`Cache`], the typed API over the component's exports.
//!
//! `examples/embed.rs` is a complete program: open a cache, sync an environment, look up, search
//! (`cargo run -p d365meta --example embed`, against the simulator).

pub mod auth;
pub mod bindings;
pub mod cache;
pub mod cancel;
pub mod diff_text;
pub mod import;
pub mod imports;
pub mod paths;
pub mod policy;
pub mod runtime;
pub mod shared;

pub use cache::{Cache, CacheOptions, CoreError};
pub use runtime::{Runtime, RuntimeConfig};
