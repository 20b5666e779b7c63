//! Reading the cache: lookups, labels, search, statistics and differences. Reads are pure: they
//! never call the environment and never write.

pub mod diff;
pub mod entities;
pub mod environment;
pub mod labels;
pub mod stats;
pub mod suggest;
