//! Prints the sizes of a generated dataset and how long generating and serialising it takes.
//! Usage: cargo run --release -p d365meta-simulator --example dataset-stats -- [tiny|small|full] [dump.json]

use d365meta_simulator::{Dataset, Scale};
use std::time::Instant;

fn main() -> Result<(), String> {
    let scale: Scale = std::env::args().nth(1).as_deref().unwrap_or("full").parse()?;
    let start = Instant::now();
    let d = Dataset::generate(scale);
    let generated = start.elapsed();
    let start = Instant::now();
    let public = serde_json::to_vec(&d.public_entities).map_err(|e| e.to_string())?;
    let serialised = start.elapsed();
    let ids = d.label_ids();
    let dangling = ids.iter().filter(|id| !d.labels.contains_id(id)).count();
    let navigations: usize = d.public_entities.iter().map(|e| e.navigation_properties.len()).sum();
    let actions: usize = d.public_entities.iter().map(|e| e.actions.len()).sum();
    let members: usize = d.enumerations.iter().map(|e| e.members.len()).sum();
    println!("scale {scale}");
    println!(
        "data entities {} (data-service enabled {})",
        d.data_entities.len(),
        d.data_entities.iter().filter(|e| e.data_service_enabled).count()
    );
    println!(
        "public entities {} properties {} navigation properties {} actions {}",
        d.public_entities.len(),
        d.property_count(),
        navigations,
        actions
    );
    println!("enumerations {} members {}", d.enumerations.len(), members);
    println!("label ids {} (dangling {}) labelled ids {} languages {:?}", ids.len(), dangling, d.labels.len(), d.languages);
    println!("modules {}", d.modules.len());
    println!("PublicEntities JSON {:.1} MB", public.len() as f64 / 1e6);
    println!("generate {:?}, serialise public entities {:?}", generated, serialised);
    if let Some(path) = std::env::args().nth(2) {
        std::fs::write(&path, serde_json::to_vec(&d).map_err(|e| e.to_string())?).map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(())
}
