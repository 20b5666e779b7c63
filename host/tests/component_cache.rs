//! The precompiled component: reused when it fits, rebuilt when it does not, never trusted blindly.

use d365meta::runtime::{CORE_WASM, Runtime, load_component};
use std::path::PathBuf;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("d365meta-test-{name}-{}-{:08x}", std::process::id(), fastrand::u32(..)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn artifacts(dir: &PathBuf) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "cwasm")).collect();
    files.sort();
    files
}

#[test]
fn the_artifact_is_written_once_and_reused() {
    let dir = scratch("artifact");
    let engine = Runtime::engine().unwrap();
    load_component(&engine, CORE_WASM, Some(&dir)).unwrap();
    let files = artifacts(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let written = std::fs::metadata(&files[0]).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    load_component(&engine, CORE_WASM, Some(&dir)).unwrap();
    assert_eq!(std::fs::metadata(&files[0]).unwrap().modified().unwrap(), written, "a valid artifact is not rewritten");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_damaged_artifact_is_replaced_not_loaded() {
    let dir = scratch("damaged");
    let engine = Runtime::engine().unwrap();
    load_component(&engine, CORE_WASM, Some(&dir)).unwrap();
    let path = artifacts(&dir).remove(0);
    std::fs::write(&path, b"not a compiled component").unwrap();
    let component = load_component(&engine, CORE_WASM, Some(&dir)).unwrap();
    assert!(component.component_type().exports(&engine).any(|(name, _)| name.starts_with("d365meta:cache/cache")));
    assert_ne!(std::fs::read(&path).unwrap(), b"not a compiled component");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn another_component_gets_its_own_artifact() {
    // A different core (another build of the guest) never loads this one's artifact: the file name
    // carries a digest of the component bytes.
    let dir = scratch("other");
    let engine = Runtime::engine().unwrap();
    load_component(&engine, CORE_WASM, Some(&dir)).unwrap();
    let empty_component = b"\0asm\x0d\0\x01\0";
    load_component(&engine, empty_component, Some(&dir)).unwrap();
    let files = artifacts(&dir);
    assert_eq!(files.len(), 1, "the earlier build's artifact is removed when a new one is written: {files:?}");
    load_component(&engine, CORE_WASM, Some(&dir)).unwrap();
    assert_eq!(artifacts(&dir).len(), 1);
    std::fs::remove_dir_all(dir).unwrap();
}
