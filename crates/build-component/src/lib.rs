//! Builds a crate of this workspace as a WebAssembly component (`wasm32-wasip2`) from a build
//! script, so that no manual step stands between `cargo test` and the component a host embeds or
//! a test runs.
//!
//! The nested cargo gets its own target directory beside the outer one (sharing the outer one
//! deadlocks on cargo's lock) and a scrubbed environment (what cargo tells a build script about
//! the *host* build would otherwise leak into the wasm build). The crate is built with
//! `cargo rustc --crate-type cdylib` rather than declaring `cdylib` in its manifest, so that it
//! still builds natively for unit tests.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

/// Builds `package` (whose library is named `lib_name`) with `profile`, copies the component into
/// `OUT_DIR` as `file_name`, and returns its path. `watch` lists paths (relative to the workspace
/// root) whose changes rebuild it.
pub fn build(package: &str, lib_name: &str, profile: &str, file_name: &str, watch: &[&str]) -> PathBuf {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = workspace_root(&manifest_dir);
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    // Relative to the building crate, as cargo resolves them: an absolute path would outlive the
    // checkout. Two checkouts sharing a target directory (a CI clone beside a working copy) share
    // this build script's unit, and absolute paths recorded by one would have the other watch the
    // wrong tree and embed a stale component.
    let up = manifest_dir.strip_prefix(&root).map(|rel| rel.components().count()).unwrap_or(0);
    let to_root: PathBuf = std::iter::repeat_n("..", up).collect();
    for path in watch.iter().chain(&["Cargo.toml", "Cargo.lock"]) {
        println!("cargo:rerun-if-changed={}", to_root.join(path).display());
    }

    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out: the component gets a target directory
    // beside the outer build's.
    let target_root = out_dir.ancestors().nth(4).map(Path::to_path_buf).unwrap_or_else(|| out_dir.join("t"));
    let wasm_target = target_root.join(format!("{package}-wasm"));

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .current_dir(&root)
        .args(["rustc", "--locked", "-p", package, "--lib", "--crate-type", "cdylib"])
        .args(["--target", TARGET, "--profile", profile, "--target-dir"])
        .arg(&wasm_target);
    scrub_environment(&mut command);

    let output = command.output().unwrap_or_else(|e| panic!("could not run cargo to build the component {package}: {e}"));
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
        panic!("building the component {package} failed:\n{stderr}{hint}");
    }

    let built = wasm_target.join(TARGET).join(profile).join(format!("{lib_name}.wasm"));
    let copied = out_dir.join(file_name);
    std::fs::copy(&built, &copied)
        .unwrap_or_else(|e| panic!("the component {package} was built but {} could not be copied: {e}", built.display()));
    copied
}

/// The directory of the workspace's `Cargo.lock`, searching up from the building crate.
fn workspace_root(manifest_dir: &Path) -> PathBuf {
    manifest_dir.ancestors().find(|dir| dir.join("Cargo.lock").exists()).unwrap_or(manifest_dir).to_path_buf()
}

/// The nested cargo must not inherit what cargo tells this build script about the *host* build:
/// encoded rustflags would override the component's own configuration, and profile, cfg and
/// feature variables describe another target. The jobserver (CARGO_MAKEFLAGS) is kept so both
/// builds share the machine's cores.
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
