//! The d365meta core.
//!
//! Everything that decides *what* is done lives here: parsing the F&O metadata service's answers,
//! the version identity, the SQL schema and its migrations, every statement. Nothing here does I/O of
//! its own; it talks to the world through the ports in [`ports`], which the component implements with
//! its WIT imports and the unit tests implement natively.

pub mod api;
pub mod catalog;
pub mod error;
pub mod gc;
pub mod metadata;
pub mod modules;
pub mod odata;
pub mod ports;
pub mod publish;
pub mod read;
pub mod schema;
pub mod search;
pub mod share;
pub mod sql;
pub mod sync;
pub mod time;
pub mod url;
pub mod version;
pub mod wit;

#[cfg(target_arch = "wasm32")]
mod component;

#[cfg(any(test, feature = "native"))]
pub mod native;

#[cfg(test)]
pub mod testing;

#[cfg(test)]
mod fuzz;

pub use error::{Error, ErrorKind, Result};
pub use ports::Ctx;
