//! Full-text search over names and label texts, ranked so that an exact name beats a prefix, a
//! prefix beats a word inside a name, and a name beats a label text.

pub mod index;
pub mod query;
pub mod words;
