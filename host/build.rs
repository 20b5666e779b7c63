//! Builds the core component (guest/) for wasm32-wasip2 and hands its path to the host crate,
//! which embeds it. Runs whenever the guest sources, the WIT contract or the workspace manifests
//! change, so a host binary always carries the core it was built with.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const GUEST_PACKAGE: &str = "d365meta-guest";
const TARGET: &str = "wasm32-wasip2";
const PROFILE: &str = "guest";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("host/ has a parent").to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));

    for path in ["guest/src", "guest/Cargo.toml", "wit", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }

    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out; the guest gets its own target directory
    // beside the host's: sharing one with the outer build deadlocks on cargo's lock.
    let target_root = out_dir.ancestors().nth(4).map(Path::to_path_buf).unwrap_or_else(|| out_dir.join("t"));
    let guest_target = target_root.join("guest-wasm");

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .current_dir(&root)
        .args(["rustc", "--locked", "-p", GUEST_PACKAGE, "--lib", "--crate-type", "cdylib"])
        .args(["--target", TARGET, "--profile", PROFILE, "--target-dir"])
        .arg(&guest_target);
    scrub_environment(&mut command);

    let output = command.output().unwrap_or_else(|e| panic!("could not run cargo to build the core component: {e}"));
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("may not be installed")
            || stderr.contains("can't find crate for `core`")
            || stderr.contains("can't find crate for `std`")
        {
            format!("\n\nThe {TARGET} target is missing. Install it with:\n    rustup target add {TARGET}\n")
        } else {
            String::new()
        };
        panic!("building the core component failed:\n{stderr}{hint}");
    }

    let built = guest_target.join(TARGET).join(PROFILE).join("d365meta_guest.wasm");
    let embedded = out_dir.join("d365meta_core.wasm");
    std::fs::copy(&built, &embedded)
        .unwrap_or_else(|e| panic!("the core component was built but {} could not be copied: {e}", built.display()));
    println!("cargo:rustc-env=D365META_CORE_WASM={}", embedded.display());
}

/// The nested cargo must not inherit what cargo tells this build script about the *host* build:
/// encoded rustflags would override the guest's own configuration, and profile, cfg and feature
/// variables describe another target. The jobserver (CARGO_MAKEFLAGS) is kept so both builds share
/// the machine's cores.
fn scrub_environment(command: &mut Command) {
    for key in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_MANIFEST_DIR",
        "CARGO_PKG_NAME",
        "OUT_DIR",
        "TARGET",
        "HOST",
        "PROFILE",
        "OPT_LEVEL",
        "DEBUG",
        "NUM_JOBS",
    ] {
        command.env_remove(key);
    }
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PROFILE_")
            || key.starts_with("CARGO_CFG_")
            || key.starts_with("CARGO_FEATURE_")
            || key.starts_with("DEP_")
        {
            command.env_remove(key.as_ref());
        }
    }
}
