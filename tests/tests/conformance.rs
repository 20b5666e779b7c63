//! The conformance scenario every host of the component must pass (tests/conformance/scenario.json),
//! on the Rust host: the real component through `d365meta::Cache`, against the simulator serving
//! the scenario's environments. Its answers, normalised, must equal those recorded in
//! tests/conformance/answers.json; the Node host runs the same scenario and must give the same
//! answers, field by field (node/test/conformance.test.js).

use d365meta::bindings::name_of;
use d365meta::cache::{
    Cache, DiffOptions, DiffSide, LabelLanguages, ObjectKind, ReadOptions, SearchFilters, SearchQuery, Strategy, SyncOptions,
};
use d365meta_simulator::{Scale, Setup, Simulator, load_modules_file};
use d365meta_tests::*;
use serde_json::Value as Json;
use std::path::Path;

fn scenario() -> Json {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/scenario.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

const OBJECT_KINDS: [ObjectKind; 5] =
    [ObjectKind::DataEntity, ObjectKind::PublicEntity, ObjectKind::Enumeration, ObjectKind::Action, ObjectKind::Property];

/// The case of `all` whose WIT name is `name`.
fn case<T: serde::Serialize + Copy>(all: &[T], name: &str) -> T {
    *all.iter().find(|c| name_of(*c) == name).unwrap_or_else(|| panic!("no case named {name:?}"))
}

fn strings(v: &Json) -> Vec<String> {
    v.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect()).unwrap_or_default()
}

fn text(v: &Json) -> Option<String> {
    v.as_str().map(str::to_owned)
}

/// A URL from the scenario: a number is the simulator's environment of that number.
fn url(v: &Json, urls: &[String]) -> String {
    match v {
        Json::Number(n) => urls[n.as_u64().unwrap() as usize - 1].clone(),
        Json::String(s) => s.clone(),
        other => panic!("not an environment: {other}"),
    }
}

fn read_options(v: &Json, urls: &[String]) -> ReadOptions {
    ReadOptions {
        base_url: (!v["base_url"].is_null()).then(|| url(&v["base_url"], urls)),
        labels: (!v["labels"].is_null())
            .then(|| LabelLanguages { language: text(&v["labels"]["language"]).unwrap(), fallback: strings(&v["labels"]["fallback"]) }),
    }
}

fn sync_options(v: &Json) -> SyncOptions {
    let strategies = [Strategy::Auto, Strategy::Full, Strategy::Incremental, Strategy::EntitiesOnly, Strategy::LabelsOnly];
    SyncOptions {
        strategy: case(&strategies, v["strategy"].as_str().unwrap()),
        languages: strings(&v["languages"]),
        drop_languages: strings(&v["drop_languages"]),
        dry_run: v["dry_run"].as_bool().unwrap(),
    }
}

fn search_query(v: &Json) -> SearchQuery {
    let f = &v["filters"];
    SearchQuery {
        text: text(&v["text"]).unwrap(),
        kinds: v["kinds"].as_array().unwrap().iter().map(|k| case(&OBJECT_KINDS, k.as_str().unwrap())).collect(),
        filters: SearchFilters {
            category: text(&f["category"]),
            read_only: f["read_only"].as_bool(),
            data_service_enabled: f["data_service_enabled"].as_bool(),
            data_management_enabled: f["data_management_enabled"].as_bool(),
            entity: text(&f["entity"]),
        },
        limit: v["limit"].as_u64().unwrap() as u32,
        offset: v["offset"].as_u64().unwrap() as u32,
    }
}

/// A side of a diff: a number is the simulator's environment of that number, a text with `://` a
/// base URL, any other text a modules hash or its prefix.
fn diff_side(v: &Json, urls: &[String]) -> DiffSide {
    match v {
        Json::String(s) if !s.contains("://") => DiffSide::Version(s.clone()),
        _ => DiffSide::Environment(url(v, urls)),
    }
}

fn diff_options(v: &Json) -> DiffOptions {
    DiffOptions {
        kinds: v["kinds"].as_array().unwrap().iter().map(|k| case(&OBJECT_KINDS, k.as_str().unwrap())).collect(),
        entity: text(&v["entity"]),
        only_breaking: v["only_breaking"].as_bool().unwrap(),
        label_languages: strings(&v["label_languages"]),
    }
}

fn json<T: serde::Serialize>(value: T) -> Json {
    serde_json::to_value(value).unwrap()
}

/// Runs one step; an error comes back as its kind.
async fn run(cache: &mut Cache, step: &Json, urls: &[String]) -> Result<Json, String> {
    let answer = match step["call"].as_str().unwrap() {
        "detect-version" => cache.detect_version(&url(&step["environment"], urls)).await.map(json),
        "sync" => cache.sync(&url(&step["environment"], urls), sync_options(&step["options"])).await.map(json),
        "get-entity" => cache.get_entity(step["name"].as_str().unwrap(), read_options(&step["options"], urls)).await.map(json),
        "get-enumeration" => cache.get_enumeration(step["name"].as_str().unwrap(), read_options(&step["options"], urls)).await.map(json),
        "get-action" => {
            let entity = text(&step["entity"]);
            cache.get_action(step["name"].as_str().unwrap(), entity.as_deref(), read_options(&step["options"], urls)).await.map(json)
        }
        "get-label" => cache.get_label(step["id"].as_str().unwrap(), read_options(&step["options"], urls)).await.map(json),
        "search" => cache.search(search_query(&step["query"]), read_options(&step["options"], urls)).await.map(json),
        "get-stats" => {
            let options = read_options(&step["options"], urls);
            cache.stats(options.base_url.as_deref()).await.map(json)
        }
        "history" => {
            let options = read_options(&step["options"], urls);
            cache.history(options.base_url.as_deref(), step["limit"].as_u64().unwrap() as u32).await.map(json)
        }
        "get-version" => {
            let hash = text(&step["modules_hash"]);
            cache.get_version(hash.as_deref(), read_options(&step["options"], urls)).await.map(json)
        }
        "diff" => {
            let (a, b) = (diff_side(&step["a"], urls), diff_side(&step["b"], urls));
            cache.diff(a, b, diff_options(&step["options"])).await.map(json)
        }
        other => panic!("the scenario calls {other}, which this driver does not know"),
    };
    answer.map_err(|e| name_of(&core_error(&e).kind))
}

/// Whether every field of `expected` is in `actual` with the same value (objects compared as
/// subsets, everything else exactly).
fn contains(actual: &Json, expected: &Json) -> bool {
    match (actual, expected) {
        (Json::Object(a), Json::Object(e)) => e.iter().all(|(k, v)| a.get(k).is_some_and(|av| contains(av, v))),
        (a, e) => a == e,
    }
}

/// An answer as the scenario's hosts compare it (node/test/conformance.js does the same): each
/// environment's URL becomes `env<N>` wherever it appears, a volatile field's value becomes
/// `"volatile"` (null stays null), and a list of environments is sorted (their URLs' ports, and
/// so their order, change from run to run).
fn normalize(value: &Json, urls: &[String], volatile: &[String]) -> Json {
    match value {
        Json::String(s) => Json::String(sort_environment_lists(&replace_urls(s, urls))),
        Json::Array(items) => {
            let mut items: Vec<Json> = items.iter().map(|v| normalize(v, urls, volatile)).collect();
            if !items.is_empty() && items.iter().all(is_environment_token) {
                items.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
            Json::Array(items)
        }
        Json::Object(fields) => Json::Object(
            fields
                .iter()
                .map(|(k, v)| {
                    let v = if volatile.contains(k) && !v.is_null() { Json::from("volatile") } else { normalize(v, urls, volatile) };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn is_environment_token(v: &Json) -> bool {
    v.as_str().and_then(|s| s.strip_prefix("env")).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `text` with each environment URL replaced by its token; a URL followed by another digit is a
/// different port, not this one.
fn replace_urls(text: &str, urls: &[String]) -> String {
    let mut out = text.to_owned();
    for (i, url) in urls.iter().enumerate() {
        let mut result = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(at) = rest.find(url.as_str()) {
            let after = &rest[at + url.len()..];
            result.push_str(&rest[..at]);
            if after.starts_with(|c: char| c.is_ascii_digit()) {
                result.push_str(url);
            } else {
                result.push_str(&format!("env{}", i + 1));
            }
            rest = after;
        }
        result.push_str(rest);
        out = result;
    }
    out
}

/// `text` with each list of environment tokens in it (`env3, env2`) sorted.
fn sort_environment_lists(text: &str) -> String {
    let token_at = |s: &str| -> usize {
        match s.strip_prefix("env") {
            Some(rest) => match rest.bytes().take_while(u8::is_ascii_digit).count() {
                0 => 0,
                digits => 3 + digits,
            },
            None => 0,
        }
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let boundary = out.chars().last().is_none_or(|c| !c.is_alphanumeric());
        let first = if boundary { token_at(rest) } else { 0 };
        if first == 0 {
            let c = rest.chars().next().unwrap();
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let mut tokens = vec![&rest[..first]];
        rest = &rest[first..];
        while let Some(next) = rest.strip_prefix(", ").map(token_at).filter(|&n| n > 0) {
            tokens.push(&rest[2..2 + next]);
            rest = &rest[2 + next..];
        }
        tokens.sort_unstable();
        out.push_str(&tokens.join(", "));
    }
    out
}

/// The first path at which two answers differ, for a message that points at the field.
fn first_difference(a: &Json, b: &Json, path: &str) -> Option<String> {
    match (a, b) {
        (Json::Object(x), Json::Object(y)) => {
            for key in x.keys().chain(y.keys()) {
                let (va, vb) = (x.get(key).unwrap_or(&Json::Null), y.get(key).unwrap_or(&Json::Null));
                if let Some(d) = first_difference(va, vb, &format!("{path}.{key}")) {
                    return Some(d);
                }
            }
            None
        }
        (Json::Array(x), Json::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (va, vb))| first_difference(va, vb, &format!("{path}[{i}]")))
        }
        (x, y) if x == y => None,
        (x, y) => Some(format!("{path}: {x} here, {y} in the recorded answers")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_scenario_holds_on_the_rust_host() {
    let scenario = scenario();
    let s = &scenario["simulator"];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let setup = Setup {
        scale: s["scale"].as_str().unwrap().parse::<Scale>().unwrap(),
        modules: s["modules"].as_array().unwrap().iter().map(|p| load_modules_file(&root.join(p.as_str().unwrap())).unwrap()).collect(),
        environments: s["environments"].as_u64().unwrap() as usize,
        newer: s["newer"].as_u64().unwrap() as usize,
        page_size: None,
    };
    let volatile = strings(&scenario["volatile"]);
    let sim = Simulator::start("127.0.0.1".parse().unwrap(), setup.specs()).await.unwrap();
    let urls: Vec<String> = sim.envs().iter().map(|e| e.base_url()).collect();
    let scratch = Scratch::new("conformance");
    let mut cache = open(&scratch.db()).await;
    let mut answers = serde_json::Map::new();
    for step in scenario["steps"].as_array().unwrap() {
        let name = step["step"].as_str().unwrap();
        let outcome = run(&mut cache, step, &urls).await;
        let recorded = match (&step["expect_error"], outcome) {
            (Json::String(kind), Err(got)) => {
                assert_eq!(&got, kind, "{name}");
                serde_json::json!({ "error": got })
            }
            (Json::String(kind), Ok(answer)) => panic!("{name}: expected a {kind} error, got {answer}"),
            (_, Err(kind)) => panic!("{name}: failed with {kind}"),
            (_, Ok(answer)) => {
                if !step["expect"].is_null() {
                    assert!(contains(&answer, &step["expect"]), "{name}: {answer:#} lacks {:#}", step["expect"]);
                }
                normalize(&answer, &urls, &volatile)
            }
        };
        answers.insert(name.to_owned(), recorded);
    }
    let answers = Json::Object(answers);

    // The answers every host must give, recorded from this host. D365META_RECORD=1 records them
    // anew after a change of behaviour (review the diff: it is the change every host must follow).
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/answers.json");
    if std::env::var_os("D365META_RECORD").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&answers).unwrap() + "\n").unwrap();
        return;
    }
    let recorded: Json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{}: {e}; record the answers with D365META_RECORD=1 cargo test -p d365meta-tests --test conformance", path.display())
    }))
    .unwrap();
    for (name, answer) in answers.as_object().unwrap() {
        let expected = recorded.get(name).unwrap_or_else(|| panic!("{name}: no recorded answer (record again with D365META_RECORD=1)"));
        if let Some(difference) = first_difference(answer, expected, "") {
            panic!("{name}: the answer differs from the recorded one at {difference}");
        }
    }
    assert_eq!(
        recorded.as_object().unwrap().len(),
        answers.as_object().unwrap().len(),
        "recorded answers for steps no longer in the scenario"
    );
}
