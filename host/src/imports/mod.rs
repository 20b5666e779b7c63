//! The component's imports, one module per WIT interface: `http`, `store`, `host`, `shared`; and `wasi`, the
//! standard WASI interfaces its standard library imports, granted nothing.
//!
//! Errors a guest should expect (a refused host, a constraint violation) are returned to it;
//! broken invariants (an unknown resource handle) trap.

pub mod concurrency;
pub mod host;
pub mod http;
pub mod shared;
pub mod store;
pub mod wasi;
