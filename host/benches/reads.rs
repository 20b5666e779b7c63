//! Latency of lookups and searches on the `full` data, through the real component and host, against
//! a lower bound on the same database file: the core's own code run natively (`d365meta-guest` with
//! its `native` feature: the same code and the same SQL, without the component boundary). The bench
//! holds no copy of the core's SQL, so the lower bound always runs the statements the component runs.
//!
//! Setup (untimed except as reported): the `full` scale synced once, labels in en-US, into a temporary
//! database, then one `Cache` and the core natively opened on it. Measured, after a warm-up pass:
//!
//! - `get_entity` for 200 names drawn deterministically from the dataset (a third data entity names,
//!   a third public entity names, a third entity set names), without and with labels resolved in
//!   en-US, over several rounds;
//! - `search` for a fixed set of queries (limit 20), repeated to about 2,000 samples;
//! - the floor of any export call: `list_environments` (one environment, one SELECT) and
//!   `compare_modules` of two empty lists (no SQL at all);
//! - where the core natively spends a `get_entity` with labels, by statement: one more pass with its
//!   store wrapped to time each statement the core issues.
//!
//! The two sides take turns item by item (the order alternates by round), so that drift on a shared
//! machine hits both. Before measuring, every name and query is answered both ways and the answers
//! compared, so the lower bound provably does the same work.
//!
//! `cargo bench -p d365meta --bench reads [-- [--rounds N] [--search-samples N] [--floor-samples N] [--json] [--analyze]]`
//!
//! `--analyze` runs SQLite's `ANALYZE` on the database after the sync (which the component does not
//! do): a what-if, to see whether planner statistics would still change the plans.

mod common;

use common::*;
use d365meta::bindings::name_of;
use d365meta::cache::{Cache, EntityLookup, LabelLanguages, ObjectKind, ReadOptions, SearchFilters, SearchQuery, SearchResults};
use d365meta_guest::native::SqliteStore;
use d365meta_guest::ports::Store;
use d365meta_guest::wit::types as core_types;
use d365meta_simulator::{Dataset, EnvironmentSpec, Scale, Simulator};
use serde_json::json;
use std::collections::BTreeSet;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LANGUAGE: &str = "en-US";

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench(args))
}

fn label_options(labels: bool) -> ReadOptions {
    ReadOptions { base_url: None, labels: labels.then(|| LabelLanguages { language: LANGUAGE.into(), fallback: vec![] }) }
}

/// One search of the fixed set.
#[derive(Clone)]
struct Case {
    label: String,
    query: SearchQuery,
    /// The same query in the core's types (the search language is the labels' language, else en-US).
    core_query: core_types::SearchQuery,
    labels: bool,
}

fn filters() -> SearchFilters {
    SearchFilters { category: None, read_only: None, data_service_enabled: None, data_management_enabled: None, entity: None }
}

fn case(text: &str, kinds: &[ObjectKind], f: SearchFilters, labels: bool) -> Case {
    let mut label = format!("{text:?}");
    if !kinds.is_empty() {
        label.push_str(&format!(" kinds={}", kinds.iter().map(name_of).collect::<Vec<_>>().join(",")));
    }
    if let Some(c) = &f.category {
        label.push_str(&format!(" category={c}"));
    }
    if let Some(v) = f.data_service_enabled {
        label.push_str(&format!(" data-service={v}"));
    }
    if let Some(v) = f.read_only {
        label.push_str(&format!(" read-only={v}"));
    }
    if let Some(e) = &f.entity {
        label.push_str(&format!(" entity={e}"));
    }
    if labels {
        label.push_str(" +labels");
    }
    let core_query = core_types::SearchQuery {
        text: text.into(),
        kinds: kinds.iter().map(core_kind).collect(),
        filters: core_types::SearchFilters {
            category: f.category.clone(),
            read_only: f.read_only,
            data_service_enabled: f.data_service_enabled,
            data_management_enabled: f.data_management_enabled,
            entity: f.entity.clone(),
        },
        limit: 20,
        offset: 0,
    };
    Case { label, query: SearchQuery { text: text.into(), kinds: kinds.to_vec(), filters: f, limit: 20, offset: 0 }, core_query, labels }
}

fn search_cases(dataset: &Dataset) -> Vec<Case> {
    // An entity set to filter properties by: CustomersV3 when the dataset has it.
    let entity = dataset
        .public_entities
        .iter()
        .find(|e| e.entity_set_name == "CustomersV3")
        .or_else(|| dataset.public_entities.iter().max_by_key(|e| e.properties.len()))
        .map(|e| e.entity_set_name.clone())
        .expect("the dataset has public entities");
    let mut cases: Vec<Case> = [
        "customer",
        "CustCustomerV3Entity",
        "group",
        "sales order",
        "vend",
        "invoice",
        "NoYes",
        "CustomerGroupId",
        "dimension",
        "warehouse location",
    ]
    .iter()
    .map(|t| case(t, &[], filters(), false))
    .collect();
    cases.push(case("customer", &[ObjectKind::PublicEntity], filters(), false));
    cases.push(case("group", &[ObjectKind::Property], SearchFilters { entity: Some(entity), ..filters() }, false));
    cases.push(case(
        "order",
        &[],
        SearchFilters { category: Some("Transaction".into()), data_service_enabled: Some(true), ..filters() },
        false,
    ));
    cases.push(case(
        "name",
        &[ObjectKind::DataEntity, ObjectKind::PublicEntity],
        SearchFilters { read_only: Some(false), ..filters() },
        false,
    ));
    cases.push(case("invoice", &[ObjectKind::Enumeration], filters(), false));
    cases.push(case("customer", &[], filters(), true));
    cases
}

/// 200 names: data entity names, public entity names and entity set names in turn, each list walked
/// with a fixed stride.
fn entity_names(dataset: &Dataset) -> Vec<String> {
    let (de, pe) = (&dataset.data_entities, &dataset.public_entities);
    (0..200)
        .map(|i| {
            let k = i / 3;
            match i % 3 {
                0 => de[(k * 73 + 5) % de.len()].name.clone(),
                1 => pe[(k * 59 + 11) % pe.len()].name.clone(),
                _ => pe[(k * 61 + 17) % pe.len()].entity_set_name.clone(),
            }
        })
        .collect()
}

// ---- what the two sides answer, reduced to compare them ----

#[derive(Debug, PartialEq, Eq)]
struct EntitySummary {
    data_entity: Option<String>,
    public_entity: Option<String>,
    properties: usize,
    navigation_properties: usize,
    constraints: usize,
    property_groups: usize,
    members: usize,
    actions: usize,
    parameters: usize,
    /// Distinct label ids that got a text.
    labelled: usize,
}

fn summarize_entity(r: &EntityLookup) -> EntitySummary {
    let mut labelled = BTreeSet::new();
    let mut add = |id: &Option<String>, text: &Option<String>| {
        if let (Some(id), Some(_)) = (id, text) {
            labelled.insert(id.clone());
        }
    };
    if let Some(d) = &r.data_entity {
        add(&d.label_id, &d.label);
    }
    if let Some(p) = &r.public_entity {
        add(&p.label_id, &p.label);
        for prop in &p.properties {
            add(&prop.label_id, &prop.label);
        }
    }
    let p = r.public_entity.as_ref();
    EntitySummary {
        data_entity: r.data_entity.as_ref().map(|d| d.name.clone()),
        public_entity: p.map(|p| p.name.clone()),
        properties: p.map_or(0, |p| p.properties.len()),
        navigation_properties: p.map_or(0, |p| p.navigation_properties.len()),
        constraints: p.map_or(0, |p| p.navigation_properties.iter().map(|n| n.constraints.len()).sum()),
        property_groups: p.map_or(0, |p| p.property_groups.len()),
        members: p.map_or(0, |p| p.property_groups.iter().map(|g| g.properties.len()).sum()),
        actions: p.map_or(0, |p| p.actions.len()),
        parameters: p.map_or(0, |p| p.actions.iter().map(|a| a.parameters.len()).sum()),
        labelled: labelled.len(),
    }
}

#[derive(Debug, PartialEq, Eq)]
struct SearchSummary {
    total: u64,
    hits: Vec<(String, String, Option<String>)>,
    labelled: usize,
}

fn summarize_search(r: &SearchResults) -> SearchSummary {
    SearchSummary {
        total: r.total,
        hits: r.hits.iter().map(|h| (name_of(&h.kind), h.name.clone(), h.entity.clone())).collect(),
        labelled: r.hits.iter().filter(|h| h.label.is_some()).filter_map(|h| h.label_id.clone()).collect::<BTreeSet<_>>().len(),
    }
}

// ---- the core natively: the component's own code and SQL over the host's SQLite backend, without the component ----

/// The core's database, opened natively on the file the component wrote, configured as the host
/// configures its own.
fn open_store(path: &Path) -> anyhow::Result<SqliteStore> {
    Ok(SqliteStore::open(path)?)
}

/// The core's read API called natively over `store`.
struct Core<'a> {
    store: &'a dyn Store,
}

impl Core<'_> {
    fn ctx(&self) -> d365meta_guest::Ctx<'_> {
        d365meta_guest::Ctx { http: &d365meta_guest::native::Offline, store: self.store, host: &d365meta_guest::native::Quiet }
    }

    fn options(labels: bool) -> core_types::ReadOptions {
        core_types::ReadOptions {
            base_url: None,
            labels: labels.then(|| core_types::LabelLanguages { language: LANGUAGE.into(), fallback: vec![] }),
        }
    }

    fn entity(&self, name: &str, labels: bool) -> anyhow::Result<core_types::EntityLookup> {
        Ok(d365meta_guest::api::entity(&self.ctx(), name, &Self::options(labels))?)
    }

    fn search(&self, case: &Case) -> anyhow::Result<core_types::SearchResults> {
        Ok(d365meta_guest::api::search(&self.ctx(), case.core_query.clone(), &Self::options(case.labels))?)
    }
}

/// The core's object kind for the host's (the same WIT enum, generated twice).
fn core_kind(kind: &ObjectKind) -> core_types::ObjectKind {
    match kind {
        ObjectKind::DataEntity => core_types::ObjectKind::DataEntity,
        ObjectKind::PublicEntity => core_types::ObjectKind::PublicEntity,
        ObjectKind::Enumeration => core_types::ObjectKind::Enumeration,
        ObjectKind::Action => core_types::ObjectKind::Action,
        ObjectKind::Property => core_types::ObjectKind::Property,
    }
}

/// The host's object kind for the core's, to compare and print with the host's WIT names.
fn host_kind(kind: &core_types::ObjectKind) -> ObjectKind {
    match kind {
        core_types::ObjectKind::DataEntity => ObjectKind::DataEntity,
        core_types::ObjectKind::PublicEntity => ObjectKind::PublicEntity,
        core_types::ObjectKind::Enumeration => ObjectKind::Enumeration,
        core_types::ObjectKind::Action => ObjectKind::Action,
        core_types::ObjectKind::Property => ObjectKind::Property,
    }
}

fn summarize_core_entity(r: &core_types::EntityLookup) -> EntitySummary {
    let mut labelled = BTreeSet::new();
    let mut add = |id: &Option<String>, text: &Option<String>| {
        if let (Some(id), Some(_)) = (id, text) {
            labelled.insert(id.clone());
        }
    };
    if let Some(d) = &r.data_entity {
        add(&d.label_id, &d.label);
    }
    if let Some(p) = &r.public_entity {
        add(&p.label_id, &p.label);
        for prop in &p.properties {
            add(&prop.label_id, &prop.label);
        }
    }
    let p = r.public_entity.as_ref();
    EntitySummary {
        data_entity: r.data_entity.as_ref().map(|d| d.name.clone()),
        public_entity: p.map(|p| p.name.clone()),
        properties: p.map_or(0, |p| p.properties.len()),
        navigation_properties: p.map_or(0, |p| p.navigation_properties.len()),
        constraints: p.map_or(0, |p| p.navigation_properties.iter().map(|n| n.constraints.len()).sum()),
        property_groups: p.map_or(0, |p| p.property_groups.len()),
        members: p.map_or(0, |p| p.property_groups.iter().map(|g| g.properties.len()).sum()),
        actions: p.map_or(0, |p| p.actions.len()),
        parameters: p.map_or(0, |p| p.actions.iter().map(|a| a.parameters.len()).sum()),
        labelled: labelled.len(),
    }
}

fn summarize_core_search(r: &core_types::SearchResults) -> SearchSummary {
    SearchSummary {
        total: r.total,
        hits: r.hits.iter().map(|h| (name_of(&host_kind(&h.kind)), h.name.clone(), h.entity.clone())).collect(),
        labelled: r.hits.iter().filter(|h| h.label.is_some()).filter_map(|h| h.label_id.clone()).collect::<BTreeSet<_>>().len(),
    }
}

// ---- the bench ----

/// Samples of one operation, answered both ways.
#[derive(Default)]
struct Samples {
    /// Through the component and the host (`Cache`).
    component: Vec<Duration>,
    /// The core's code natively (`d365meta-guest`, feature `native`).
    core: Vec<Duration>,
}

impl Samples {
    fn extend(&mut self, other: &Samples) {
        self.component.extend(&other.component);
        self.core.extend(&other.core);
    }
}

fn timed<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let r = f()?;
    let d = t.elapsed();
    black_box(r);
    Ok(d)
}

/// Which side goes first alternates with `turn`: `true` is the component.
fn order(turn: usize) -> [bool; 2] {
    if turn.is_multiple_of(2) { [true, false] } else { [false, true] }
}

/// One sample of each side, in `order(turn)`.
async fn sample_entity(s: &mut Samples, turn: usize, cache: &mut Cache, core: &Core<'_>, name: &str, labels: bool) -> anyhow::Result<()> {
    for component in order(turn) {
        if component {
            let t = Instant::now();
            let r = cache.get_entity(name, label_options(labels)).await?;
            s.component.push(t.elapsed());
            black_box(r);
        } else {
            s.core.push(timed(|| core.entity(name, labels))?);
        }
    }
    Ok(())
}

async fn sample_search(s: &mut Samples, turn: usize, cache: &mut Cache, core: &Core<'_>, case: &Case) -> anyhow::Result<()> {
    for component in order(turn) {
        if component {
            let t = Instant::now();
            let r = cache.search(case.query.clone(), label_options(case.labels)).await?;
            s.component.push(t.elapsed());
            black_box(r);
        } else {
            s.core.push(timed(|| core.search(case))?);
        }
    }
    Ok(())
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let out = Out::new(args.json);
    let rounds = args.number("rounds", 5).max(1);
    let search_samples = args.number("search-samples", 2000).max(1);
    let floor_samples = args.number("floor-samples", 2000).max(1);

    // ---- setup ----
    let started = Instant::now();
    let dataset = Arc::new(Dataset::generate(Scale::Full));
    let generated = started.elapsed();
    let sim = Simulator::start("127.0.0.1".parse()?, vec![EnvironmentSpec::new("prod", dataset.clone())]).await?;
    let url = sim.env(0).base_url();
    let (runtime, runtime_load) = runtime()?;
    let scratch = Scratch::new("reads");
    let db = scratch.db();
    let (mut cache, _) = open(&runtime, &db, None).await?;
    let (report, sync_time) = sync(&mut cache, &url).await?;
    drop(cache);
    drop(sim);
    // `--analyze`: what-if only. Gives SQLite's planner statistics (sqlite_stat1), which the
    // component does not do; it shows whether the plans the core fixes still depend on them.
    let analyzed = args.flag("analyze");
    if analyzed {
        rusqlite::Connection::open(&db)?.execute_batch("ANALYZE")?;
    }
    let mut opens = Vec::new();
    for _ in 0..20 {
        let (c, t) = open(&runtime, &db, None).await?;
        drop(c);
        opens.push(t);
    }
    let (mut cache, _) = open(&runtime, &db, None).await?;
    let store = open_store(&db)?;
    let core = Core { store: &store };
    let (db_bytes, wal_bytes) = db_sizes(&db);

    let names = entity_names(&dataset);
    let cases = search_cases(&dataset);

    out.line(format!(
        "d365meta reads bench: scale full, labels {LANGUAGE}, {} CPU(s) available{}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if analyzed { "; WHAT-IF: ANALYZE run on the database after the sync" } else { "" }
    ));
    out.line(format!(
        "setup: dataset generated in {:.1} s; component loaded in {:.0} ms; full sync {:.1} s ({} requests); database {:.1} MiB + {:.1} MiB -wal",
        generated.as_secs_f64(),
        runtime_load.as_secs_f64() * 1e3,
        sync_time.as_secs_f64(),
        thousands(report.requests),
        mib(db_bytes),
        mib(wal_bytes)
    ));

    // ---- both sides answer the same, and everything is warm ----
    let check_started = Instant::now();
    for name in &names {
        for labels in [false, true] {
            let c = summarize_entity(&cache.get_entity(name, label_options(labels)).await?);
            let k = summarize_core_entity(&core.entity(name, labels)?);
            anyhow::ensure!(c == k, "get_entity({name:?}, labels={labels}): component {c:?} != core natively {k:?}");
        }
    }
    let mut search_totals = Vec::new();
    for case in &cases {
        let c = summarize_search(&cache.search(case.query.clone(), label_options(case.labels)).await?);
        let k = summarize_core_search(&core.search(case)?);
        anyhow::ensure!(c == k, "search {}: component {c:?} != core natively {k:?}", case.label);
        search_totals.push((c.total, c.hits.len()));
    }
    let mut scratch_samples = Samples::default();
    for turn in 0..2 {
        for case in &cases {
            sample_search(&mut scratch_samples, turn, &mut cache, &core, case).await?;
        }
    }
    out.line(format!(
        "warm-up: {} entity lookups and {} searches answered both ways, answers identical ({:.1} s)",
        names.len() * 2,
        cases.len() * 3,
        check_started.elapsed().as_secs_f64()
    ));

    // ---- get_entity ----
    let mut entity = [Samples::default(), Samples::default()];
    let entity_started = Instant::now();
    for round in 0..rounds {
        for name in &names {
            for (mode, labels) in [false, true].into_iter().enumerate() {
                sample_entity(&mut entity[mode], round, &mut cache, &core, name, labels).await?;
            }
        }
    }
    let entity_time = entity_started.elapsed();

    // Where a lookup spends its time: one more pass over the names, with labels, by the core natively
    // with each of its statements timed (not part of the samples above: timing adds its own cost).
    let profiled = Timed::new(&store);
    let profiled_core = Core { store: &profiled };
    let profile_started = Instant::now();
    for name in &names {
        black_box(profiled_core.entity(name, true)?);
    }
    let profile_total = profile_started.elapsed().saturating_sub(profiled.bookkeeping());
    let statements: Vec<(String, u64, Duration)> = profiled.statements().into_iter().map(|(k, s)| (k, s.calls, s.time)).collect();

    // ---- search ----
    let search_rounds = search_samples.div_ceil(cases.len());
    let mut per_case: Vec<Samples> = cases.iter().map(|_| Samples::default()).collect();
    let search_started = Instant::now();
    for round in 0..search_rounds {
        for (i, case) in cases.iter().enumerate() {
            sample_search(&mut per_case[i], round, &mut cache, &core, case).await?;
        }
    }
    let search_time = search_started.elapsed();

    // ---- the floor of an export call ----
    let mut list_envs = Vec::new();
    let mut compare = Vec::new();
    for _ in 0..50 {
        black_box(cache.list_environments().await?);
        black_box(cache.compare_modules(vec![], vec![]).await?);
    }
    for _ in 0..floor_samples {
        let t = Instant::now();
        black_box(cache.list_environments().await?);
        list_envs.push(t.elapsed());
        let t = Instant::now();
        black_box(cache.compare_modules(vec![], vec![]).await?);
        compare.push(t.elapsed());
    }

    // ---- report ----
    out.line("");
    out.line("latency in microseconds                         n      p50      p90      p99      max");
    let row =
        |label: &str, p: &Percentiles| format!("  {:<42} {:>5} {:>8.1} {:>8.1} {:>8.1} {:>8.1}", label, p.n, p.p50, p.p90, p.p99, p.max);
    let mut json_groups = Vec::new();
    let report = |title: &str, s: &Samples, json_groups: &mut Vec<serde_json::Value>| {
        let (c, k) = (Percentiles::of(&s.component), Percentiles::of(&s.core));
        out.line(title);
        out.line(row("component (wasm + host)", &c));
        out.line(row("core natively (same code, no component)", &k));
        out.line(format!("  {:<42}       {:>7.2}x          {:>7.2}x", "ratio component / core natively", c.p50 / k.p50, c.p99 / k.p99));
        json_groups.push(json!({
            "name": title, "component": c.json(), "core_native": k.json(),
            "ratio_core_p50": round3(c.p50 / k.p50), "ratio_core_p99": round3(c.p99 / k.p99),
        }));
    };
    report(&format!("get_entity, no labels ({} names x {rounds} rounds)", names.len()), &entity[0], &mut json_groups);
    report(&format!("get_entity, labels en-US ({} names x {rounds} rounds)", names.len()), &entity[1], &mut json_groups);
    let mut all = Samples::default();
    for s in &per_case {
        all.extend(s);
    }
    report(&format!("search, all {} queries x {search_rounds} rounds, limit 20", cases.len()), &all, &mut json_groups);
    let (floor_list, floor_compare) = (Percentiles::of(&list_envs), Percentiles::of(&compare));
    out.line("floor of an export call (component)");
    out.line(row("list_environments (1 env, 1 SELECT)", &floor_list));
    out.line(row("compare_modules([], []) (no SQL)", &floor_compare));
    let open_p = Percentiles::of(&opens);
    out.line(row("Cache::open, existing database", &open_p));

    out.line("");
    out.line(format!(
        "search per query ({search_rounds} samples each), in microseconds                      total hits  comp p50  core p50  comp p99  core p99  p50 ratio"
    ));
    let mut json_cases = Vec::new();
    for ((case, s), (total, hits)) in cases.iter().zip(&per_case).zip(&search_totals) {
        let (c, k) = (Percentiles::of(&s.component), Percentiles::of(&s.core));
        out.line(format!(
            "  {:<72} {:>6} {:>4} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>10.2}",
            case.label,
            total,
            hits,
            c.p50,
            k.p50,
            c.p99,
            k.p99,
            c.p50 / k.p50
        ));
        json_cases.push(json!({
            "query": case.label, "total": total, "hits": hits, "component": c.json(), "core_native": k.json(),
        }));
    }

    out.line("");
    let per_lookup = |d: Duration| d.as_secs_f64() * 1e6 / names.len() as f64;
    let in_statements: Duration = statements.iter().map(|s| s.2).sum();
    out.line(format!(
        "core natively, get_entity with labels, by statement (one pass over the {} names, {:.1} µs per lookup, {:.1} µs of it in statements):",
        names.len(),
        per_lookup(profile_total),
        per_lookup(in_statements)
    ));
    out.line("  calls/lookup  µs/lookup  reads (FROM)");
    let mut json_statements = Vec::new();
    for (key, calls, spent) in &statements {
        let calls = *calls as f64 / names.len() as f64;
        out.line(format!("  {:>12.2} {:>10.1}  {}", calls, per_lookup(*spent), statement_source(key)));
        json_statements.push(json!({"statement": key, "calls_per_lookup": round3(calls), "us_per_lookup": round1(per_lookup(*spent))}));
    }
    let outside = profile_total.saturating_sub(in_statements);
    out.line(format!("  {:>12} {:>10.1}  (outside the statements: the core's own code)", "", per_lookup(outside)));
    out.line("");
    out.line(format!("measuring took {:.1} s (entity lookups) + {:.1} s (searches)", entity_time.as_secs_f64(), search_time.as_secs_f64()));

    if args.json {
        let report = json!({
            "bench": "reads",
            "scale": "full",
            "language": LANGUAGE,
            "database_bytes": db_bytes,
            "analyzed": analyzed,
            "groups": json_groups,
            "floor": {"list_environments": floor_list.json(), "compare_modules_empty": floor_compare.json(), "open_existing": open_p.json()},
            "search_queries": json_cases,
            "core_native_entity_statements": {
                "us_per_lookup": round1(per_lookup(profile_total)),
                "us_outside_statements": round1(per_lookup(outside)),
                "statements": json_statements,
            },
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}
