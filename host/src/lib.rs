//! The d365meta host: runs the core component (built from `guest/`) under wasmtime and gives it
//! HTTP, SQLite and host services under policy; and the `d365meta` command-line tool.
//!
//! - [`runtime`]: the engine, the compiled component (cached), memory and CPU limits.
//! - [`imports`]: one module per WIT interface the component imports.
//! - [`cache`]: the typed API the CLI and the tests use to call the component.
//! - [`cli`]: the command-line tool.

pub mod auth;
pub mod bindings;
pub mod cache;
pub mod cancel;
pub mod cli;
pub mod imports;
pub mod logging;
pub mod paths;
pub mod policy;
pub mod runtime;

pub use cache::{Cache, CacheOptions, CoreError};
pub use runtime::{Runtime, RuntimeConfig};
