//! `d365meta import`: a cache written by d365fo-client 0.3.7 (tests/fixtures/d365fo-client-cache)
//! brought over without any request, checked against what the file is known to hold.

mod common;

use d365meta_simulator::{Dataset, EnvironmentSpec, Scale, Simulator};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/d365fo-client-cache")
}

fn d365meta(cache: &Path, args: &[&str]) -> Json {
    let mut command = Command::new(env!("CARGO_BIN_EXE_d365meta"));
    command.arg("--cache").arg(cache).arg("--json").args(args).env("D365META_CONFIG", cache.with_extension("no-config.toml"));
    common::without_caller_variables(&mut command);
    let out = command.output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn a_d365fo_client_cache_is_imported_whole_without_a_request_and_left_untouched() {
    let dir = std::env::temp_dir().join(format!("d365meta-import-{}-{:08x}", std::process::id(), fastrand::u32(..)));
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("metadata_v2.db");
    std::fs::copy(fixture().join("metadata_v2.db"), &source).unwrap();
    let before = std::fs::read(&source).unwrap();
    let expected: Json = serde_json::from_str(&std::fs::read_to_string(fixture().join("expected.json")).unwrap()).unwrap();
    let db = dir.join("cache.db");

    // The directory names the file as well as the file does.
    let report = d365meta(&db, &["import", &dir.display().to_string()]);
    let version = &report["versions"][0];
    assert_eq!(version["modules_hash"], expected["source"]["modules_hash"]);
    assert_eq!(version["same_hash"], true, "the modules hash computed here is d365fo-client's");
    let env = &version["environments"][0];
    assert_eq!(env["base_url"], expected["source"]["base_url"]);
    assert_eq!(env["plan"], "full");
    assert_eq!(report["problems"]["orphaned"], serde_json::json!([]));
    assert_eq!(std::fs::read(&source).unwrap(), before, "the source file is read, never written");
    for suffix in ["-wal", "-shm", "-journal"] {
        assert!(!dir.join(format!("metadata_v2.db{suffix}")).exists(), "{suffix} beside the source");
    }

    // Everything the file holds, counted as d365fo-client counted it.
    let c = &expected["counts"];
    let stats = d365meta(&db, &["stats"]);
    let counts = &stats["environments"][0]["counts"];
    for (ours, theirs) in [
        ("data_entities", "data_entities"),
        ("public_entities", "public_entities"),
        ("properties", "entity_properties"),
        ("navigation_properties", "navigation_properties"),
        ("constraints", "relation_constraints"),
        ("property_groups", "property_groups"),
        ("actions", "entity_actions"),
        ("enumerations", "enumerations"),
        ("members", "enumeration_members"),
        ("labels", "labels_cache"),
    ] {
        assert_eq!(counts[ours], c[theirs], "{ours}");
    }
    assert_eq!(counts["labels_missing"], expected["labels_without_text"]);

    // Values, in order: an entity's properties and keys, an enumeration's members, label texts.
    let e = &expected["public_entity_CustomerV3"];
    let entity = d365meta(&db, &["entity", "CustomerV3"]);
    let p = &entity["public_entity"];
    assert_eq!(p["entity_set_name"], e["entity_set_name"]);
    let properties = p["properties"].as_array().unwrap();
    assert_eq!(properties.len() as u64, e["property_count"].as_u64().unwrap());
    let names: Vec<&Json> = properties.iter().map(|p| &p["name"]).take(e["first_properties"].as_array().unwrap().len()).collect();
    assert_eq!(serde_json::to_value(names).unwrap(), e["first_properties"]);
    let keys: Vec<&Json> = properties.iter().filter(|p| p["is_key"] == true).map(|p| &p["name"]).collect();
    assert_eq!(serde_json::to_value(keys).unwrap(), e["keys"]);
    let en = &expected["enumeration_first_by_name"];
    let enumeration = d365meta(&db, &["enum", en["name"].as_str().unwrap()]);
    let members: Vec<Json> =
        enumeration["enumeration"]["members"].as_array().unwrap().iter().map(|m| serde_json::json!([m["name"], m["value"]])).collect();
    assert_eq!(Json::Array(members), en["members"]);
    for label in expected["labels_sample"].as_array().unwrap() {
        let answer = d365meta(&db, &["label", label["id"].as_str().unwrap(), "--lang", label["language"].as_str().unwrap()]);
        assert_eq!(answer["text"], label["text"], "{label}");
    }

    // A later sync of an environment running that version links to what was imported: one request.
    let lines: Vec<String> = {
        let conn = rusqlite::Connection::open_with_flags(&source, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let mut stmt = conn
            .prepare("SELECT module_name, version, module_id, publisher, display_name FROM global_version_modules ORDER BY sort_order")
            .unwrap();
        stmt.query_map([], |r| {
            Ok(d365meta_simulator::module_line(
                &r.get::<_, String>(0)?,
                &r.get::<_, String>(1)?,
                &r.get::<_, String>(2)?,
                &r.get::<_, String>(3)?,
                &r.get::<_, String>(4)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    };
    let mut spec = EnvironmentSpec::new("same-version", Arc::new(Dataset::generate(Scale::Tiny)));
    spec.modules = Some(lines);
    let sim = Simulator::start("127.0.0.1".parse().unwrap(), vec![spec]).await.unwrap();
    let url = sim.env(0).base_url();
    let report = tokio::task::spawn_blocking({
        let db = db.clone();
        move || d365meta(&db, &["sync", &url, "--languages", "en-US"])
    })
    .await
    .unwrap();
    assert_eq!(report["plan"], "link", "{report}");
    assert_eq!(report["requests"], 1);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn orphaned_and_duplicated_rows_are_reported_not_imported() {
    let dir = std::env::temp_dir().join(format!("d365meta-import-bad-{}-{:08x}", std::process::id(), fastrand::u32(..)));
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("metadata_v2.db");
    std::fs::copy(fixture().join("metadata_v2.db"), &source).unwrap();
    {
        // What the Python client's format is known to hold after interrupted syncs: a property of
        // no entity, and a data entity recorded twice.
        let conn = rusqlite::Connection::open(&source).unwrap();
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO entity_properties (entity_id, global_version_id, name) VALUES (999999, 1, 'Orphan');
             INSERT INTO data_entities (global_version_id, name, public_entity_name, public_collection_name)
                 SELECT global_version_id, name, public_entity_name, public_collection_name FROM data_entities ORDER BY id LIMIT 1;
             PRAGMA wal_checkpoint(TRUNCATE);",
        )
        .unwrap();
    }
    let report = d365meta(&dir.join("cache.db"), &["import", &source.display().to_string()]);
    assert_eq!(report["problems"]["orphaned"], serde_json::json!([{"table": "entity_properties", "rows": 1}]));
    let warnings = report["versions"][0]["environments"][0]["warnings"].as_array().unwrap();
    assert!(warnings.iter().any(|w| w.as_str().unwrap().contains("DataEntities")), "{warnings:?}");
    let stats = d365meta(&dir.join("cache.db"), &["stats"]);
    assert_eq!(stats["environments"][0]["counts"]["data_entities"], 500, "the duplicate is stored once");
    std::fs::remove_dir_all(dir).unwrap();
}
