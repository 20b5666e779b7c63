//! Builds the probe component (tests/probe) for the sandbox tests.

fn main() {
    let component = d365meta_build_component::build(
        "d365meta-probe",
        "d365meta_probe",
        "release",
        "d365meta_probe.wasm",
        &["tests/probe/src", "tests/probe/wit", "tests/probe/Cargo.toml", "wit"],
    );
    println!("cargo:rustc-env=D365META_PROBE_WASM={}", component.display());
}
