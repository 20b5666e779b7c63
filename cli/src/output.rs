//! Formatting shared by the commands: timestamps, JSON, aligned fields.

use serde_json::Value as Json;

pub use d365meta_guest::time::rfc3339;

static PRINTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn print_json(value: &Json) {
    PRINTED.store(true, std::sync::atomic::Ordering::Relaxed);
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()));
}

/// Whether the command printed its JSON already (a lookup that found nothing prints its answer,
/// suggestions included, and fails after).
pub fn printed() -> bool {
    PRINTED.load(std::sync::atomic::Ordering::Relaxed)
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
