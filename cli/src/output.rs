//! Formatting shared by the commands: timestamps, JSON, aligned fields.

use serde_json::Value as Json;

pub use d365meta_guest::time::rfc3339;

pub fn print_json(value: &Json) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()));
}

/// Prints `label  value` lines with the values aligned.
pub fn print_fields(fields: &[(&str, String)]) {
    let width = fields.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    for (label, value) in fields {
        println!("{label:<width$}  {value}");
    }
}

pub fn short_hash(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}
