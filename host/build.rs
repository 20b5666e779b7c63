//! Builds the core component (guest/) for wasm32-wasip2 and hands its path to the host crate,
//! which embeds it. Runs whenever the guest sources, the WIT contract or the workspace manifests
//! change, so a host binary always carries the core it was built with.

fn main() {
    let component = d365meta_build_component::build(
        "d365meta-guest",
        "d365meta_guest",
        "guest",
        "d365meta_core.wasm",
        &["guest/src", "guest/Cargo.toml", "wit"],
    );
    println!("cargo:rustc-env=D365META_CORE_WASM={}", component.display());
}
