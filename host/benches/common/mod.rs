//! Shared parts of the benchmarks: arguments, the runtime, scratch directories, the simulator and a
//! full sync, and the statistics the reports print.

#![allow(dead_code)]

use d365meta::cache::{Cache, CacheOptions, Strategy, SyncOptions, SyncReport};
use d365meta::imports::host::ProgressSink;
use d365meta::runtime::{Runtime, RuntimeConfig};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Command-line arguments. `cargo bench` passes `--bench` to a `harness = false` target; anything
/// not recognised is ignored.
pub struct Args {
    /// JSON on stdout (the plain-text report then goes to stderr).
    pub json: bool,
    /// Named numeric options (`--runs 3`, `--rounds 5`).
    values: Vec<(String, String)>,
    /// Every `--name` given.
    flags: Vec<String>,
}

impl Args {
    pub fn parse() -> Args {
        let argv: Vec<String> = std::env::args().skip(1).collect();
        let mut json = false;
        let mut values = Vec::new();
        let flags = argv.iter().filter_map(|a| a.strip_prefix("--")).map(str::to_owned).collect();
        let mut i = 0;
        while i < argv.len() {
            let a = &argv[i];
            if a == "--json" {
                json = true;
            } else if let Some((k, v)) = a.strip_prefix("--").and_then(|a| a.split_once('=')) {
                values.push((k.to_owned(), v.to_owned()));
            } else if let Some(k) = a.strip_prefix("--")
                && let Some(v) = argv.get(i + 1).filter(|v| v.parse::<f64>().is_ok())
            {
                values.push((k.to_owned(), v.clone()));
                i += 1;
            }
            i += 1;
        }
        Args { json, values, flags }
    }

    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }

    pub fn number(&self, name: &str, default: usize) -> usize {
        self.values.iter().rev().find(|(k, _)| k == name).and_then(|(_, v)| v.parse().ok()).unwrap_or(default)
    }
}

/// Where the report goes: stdout, or stderr when stdout carries JSON.
pub struct Out {
    json: bool,
}

impl Out {
    pub fn new(json: bool) -> Out {
        Out { json }
    }

    pub fn line(&self, s: impl AsRef<str>) {
        if self.json {
            eprintln!("{}", s.as_ref());
        } else {
            println!("{}", s.as_ref());
        }
    }
}

/// The runtime, with its compiled-component artifact kept in the bench's own directory (the
/// default, the user's cache directory, keeps only one artifact and would evict the debug build's).
pub fn runtime() -> anyhow::Result<(Runtime, Duration)> {
    let started = Instant::now();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("d365meta-bench-components");
    let runtime = Runtime::new(RuntimeConfig { artifact_dir: Some(dir), ..RuntimeConfig::default() })?;
    Ok((runtime, started.elapsed()))
}

/// A directory removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("d365meta-bench-{name}-{}-{:08x}", std::process::id(), fastrand::u32(..)));
        std::fs::create_dir_all(&dir).expect("creating a scratch directory");
        Scratch(dir)
    }

    pub fn db(&self) -> PathBuf {
        self.0.join("cache.db")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The database file and its `-wal`, in bytes.
pub fn db_sizes(db: &Path) -> (u64, u64) {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    (file_size(db), file_size(Path::new(&wal)))
}

/// One progress event as the host received it, with the time it arrived.
#[derive(Clone, Debug)]
pub struct Event {
    pub at: Instant,
    pub phase: String,
    pub done: u64,
    pub total: Option<u64>,
}

pub type Events = Arc<Mutex<Vec<Event>>>;

pub fn recorder() -> (Events, ProgressSink) {
    let events: Events = Arc::new(Mutex::new(Vec::new()));
    let sink_events = events.clone();
    let sink: ProgressSink = Arc::new(move |e: &d365meta::bindings::host_api::ProgressEvent| {
        sink_events.lock().unwrap().push(Event { at: Instant::now(), phase: e.phase.to_string(), done: e.done, total: e.total });
    });
    (events, sink)
}

pub fn en_us_sync() -> SyncOptions {
    SyncOptions { strategy: Strategy::Auto, languages: vec!["en-US".into()], drop_languages: vec![], dry_run: false }
}

/// Opens a cache on `db` (timed) with an optional progress sink.
pub async fn open(runtime: &Runtime, db: &Path, progress: Option<ProgressSink>) -> anyhow::Result<(Cache, Duration)> {
    let mut options = CacheOptions::new(db);
    options.progress = progress;
    let started = Instant::now();
    let cache = Cache::open(runtime, options).await?;
    Ok((cache, started.elapsed()))
}

/// Syncs `url` with labels in en-US, timed.
pub async fn sync(cache: &mut Cache, url: &str) -> anyhow::Result<(SyncReport, Duration)> {
    let started = Instant::now();
    let report = cache.sync(url, en_us_sync()).await?;
    Ok((report, started.elapsed()))
}

// ---- statistics ----

pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Latency percentiles in microseconds (nearest rank).
#[derive(Clone, Copy, Debug)]
pub struct Percentiles {
    pub n: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    pub fn of(samples: &[Duration]) -> Percentiles {
        let mut us: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        us.sort_by(f64::total_cmp);
        let rank = |p: f64| -> f64 {
            if us.is_empty() {
                return f64::NAN;
            }
            let i = ((p / 100.0) * us.len() as f64).ceil() as usize;
            us[i.clamp(1, us.len()) - 1]
        };
        Percentiles {
            n: us.len(),
            p50: rank(50.0),
            p90: rank(90.0),
            p99: rank(99.0),
            max: us.last().copied().unwrap_or(f64::NAN),
            mean: us.iter().sum::<f64>() / us.len().max(1) as f64,
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "n": self.n, "p50_us": round1(self.p50), "p90_us": round1(self.p90), "p99_us": round1(self.p99),
            "max_us": round1(self.max), "mean_us": round1(self.mean),
        })
    }
}

pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// `12345678` as `12,345,678`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// ---- where the core's time goes, statement by statement ----

use d365meta_guest::ports::{Lease, Rows, Store, StoreError, Transaction, TxMode, Value};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

/// Calls, rows sent (a batch's rows; one for a single statement) and time of one statement.
#[derive(Clone, Copy, Debug, Default)]
pub struct Spent {
    pub calls: u64,
    pub rows: u64,
    pub time: Duration,
}

/// A store that times every statement the core issues through it, then passes it on: the
/// per-statement breakdown comes from the core's own SQL text, not from a copy of it. Commits are
/// timed as `COMMIT`.
pub struct Timed<'a> {
    store: &'a dyn Store,
    /// Per statement, keyed by `statement_key`.
    spent: RefCell<BTreeMap<String, Spent>>,
    /// Time spent keeping these accounts, to take out of a total.
    bookkeeping: Cell<Duration>,
}

impl<'a> Timed<'a> {
    pub fn new(store: &'a dyn Store) -> Timed<'a> {
        Timed { store, spent: RefCell::default(), bookkeeping: Cell::default() }
    }

    fn record<T>(&self, sql: &str, rows: u64, run: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = run();
        let ran = Instant::now();
        let mut map = self.spent.borrow_mut();
        let entry = map.entry(statement_key(sql)).or_default();
        entry.calls += 1;
        entry.rows += rows;
        entry.time += ran - started;
        self.bookkeeping.set(self.bookkeeping.get() + ran.elapsed());
        result
    }

    pub fn bookkeeping(&self) -> Duration {
        self.bookkeeping.get()
    }

    /// Every statement seen, the most time first.
    pub fn statements(&self) -> Vec<(String, Spent)> {
        let mut all: Vec<(String, Spent)> = self.spent.borrow().iter().map(|(k, s)| (k.clone(), *s)).collect();
        all.sort_by_key(|(_, s)| std::cmp::Reverse(s.time));
        all
    }
}

struct TimedTransaction<'b, 'a> {
    inner: Box<dyn Transaction + 'b>,
    timed: &'b Timed<'a>,
}

impl Transaction for TimedTransaction<'_, '_> {
    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let TimedTransaction { inner, timed } = *self;
        timed.record("COMMIT", 1, || inner.commit())
    }
}

impl Store for Timed<'_> {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<Rows, StoreError> {
        self.record(sql, 1, || self.store.execute(sql, params))
    }

    fn execute_many(&self, sql: &str, params: &[Vec<Value>]) -> Result<u64, StoreError> {
        self.record(sql, params.len() as u64, || self.store.execute_many(sql, params))
    }

    fn begin(&self, mode: TxMode) -> Result<Box<dyn Transaction + '_>, StoreError> {
        let inner = self.store.begin(mode)?;
        Ok(Box::new(TimedTransaction { inner, timed: self }))
    }

    fn try_lock(&self, name: &str) -> Result<Option<Box<dyn Lease>>, StoreError> {
        self.store.try_lock(name)
    }
}

/// One key per statement: whitespace collapsed, placeholders unnumbered, and a list of them
/// (`IN (?2,?3,…)`, as long as the label ids a lookup asks for) written as one.
pub fn statement_key(sql: &str) -> String {
    let text = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut key = String::with_capacity(text.len());
    let mut after_mark = false;
    for c in text.chars() {
        if after_mark && c.is_ascii_digit() {
            continue;
        }
        after_mark = c == '?';
        key.push(c);
    }
    while key.contains("?,?") {
        key = key.replace("?,?", "?");
    }
    key
}

/// What a statement reads, for the report: its FROM clause (tables, joins and the indexes named).
pub fn statement_source(key: &str) -> &str {
    let Some((_, from)) = key.split_once(" FROM ") else { return key };
    [" WHERE ", " ORDER BY ", " LIMIT "].iter().filter_map(|end| from.find(end)).min().map_or(from, |end| &from[..end])
}
