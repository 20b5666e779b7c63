//! Reading the cache: lookups, labels, search and statistics. Reads are pure: they never call the
//! environment and never write.

pub mod entities;
pub mod environment;
pub mod labels;
pub mod stats;
pub mod suggest;
