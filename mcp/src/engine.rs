//! What every session of the server shares: the runtime, a bounded pool of read-only component
//! instances for the tools that read, and the syncs running in the background, each on an
//! instance of its own so that a sync never holds up a read.

use d365meta::bindings::host_api::ProgressEvent;
use d365meta::cache::{Cache, CacheOptions, CoreError, ErrorKind, SyncOptions, SyncReport};
use d365meta::cancel::CancelToken;
use d365meta::imports::store::Access;
use d365meta::{Runtime, RuntimeConfig};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};

/// How the server reaches the cache and the environments.
#[derive(Clone)]
pub struct EngineConfig {
    /// Options for every instance (database, HTTP policy, credentials); `access`, `cancel` and
    /// `progress` are set per instance.
    pub cache: CacheOptions,
    /// The most tool calls that read at once; each holds one component instance.
    pub readers: usize,
    /// The profiles tools may name environments by.
    pub profiles: Profiles,
}

/// Profiles, as the tools use them: names for base URLs, and the environment of the profile the
/// server was started with, for tools that name none.
#[derive(Clone, Debug, Default)]
pub struct Profiles {
    pub by_name: BTreeMap<String, String>,
    pub selected: Option<String>,
}

impl Profiles {
    pub fn base_url(&self, name: &str) -> Option<&str> {
        self.by_name.get(name).map(String::as_str)
    }

    /// Why `name` names no environment.
    pub fn unknown(&self, name: &str) -> String {
        let known = if self.by_name.is_empty() {
            "there are no profiles".to_owned()
        } else {
            format!("the profiles are {}", self.by_name.keys().cloned().collect::<Vec<_>>().join(", "))
        };
        format!("{name:?} is neither a base URL (https://...) nor a profile name; {known}")
    }
}

/// How many finished syncs are kept for `sync_status`.
const FINISHED_KEPT: usize = 64;

pub struct Engine {
    runtime: Runtime,
    config: EngineConfig,
    idle_readers: Mutex<Vec<Cache>>,
    reader_permits: Semaphore,
    jobs: Mutex<BTreeMap<u64, Arc<Job>>>,
    next_job: AtomicU64,
}

/// A failure, as tools report it: the component's own error, or one of the server's.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Failure {
    pub kind: Option<String>,
    pub message: String,
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        match e.downcast_ref::<CoreError>() {
            Some(c) => Failure { kind: Some(d365meta::bindings::name_of(&c.kind)), message: c.message.clone() },
            None => Failure { kind: None, message: format!("{e:#}") },
        }
    }
}

impl Failure {
    pub fn is(&self, kind: ErrorKind) -> bool {
        self.kind.as_deref() == Some(d365meta::bindings::name_of(&kind).as_str())
    }
}

impl Engine {
    /// Loads the component and opens the cache once for writing, so that the file and its schema
    /// exist before the first read-only instance opens it.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub async fn start(config: EngineConfig) -> anyhow::Result<Arc<Engine>> {
        let runtime = tokio::task::spawn_blocking(|| Runtime::new(RuntimeConfig::default())).await??;
        drop(Cache::open(&runtime, config.cache.clone()).await?);
        let readers = config.readers.max(1);
        Ok(Arc::new(Engine {
            runtime,
            config,
            idle_readers: Mutex::new(Vec::new()),
            reader_permits: Semaphore::new(readers),
            jobs: Mutex::new(BTreeMap::new()),
            next_job: AtomicU64::new(1),
        }))
    }

    /// Runs `f` on a read-only instance, waiting for one when all are busy. An instance whose call
    /// failed outside the component (a trap) is dropped rather than pooled again.
    pub async fn read<T, F>(&self, f: F) -> Result<T, Failure>
    where
        F: for<'c> FnOnce(&'c mut Cache) -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<T>> + Send + 'c>>,
    {
        let _permit = self.reader_permits.acquire().await.map_err(|_| Failure { kind: None, message: "the server is stopping".into() })?;
        let idle = self.idle_readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut cache = match idle {
            Some(cache) => cache,
            None => {
                let mut options = self.config.cache.clone();
                options.access = Access::ReadOnly;
                options.cancel = CancelToken::new();
                options.progress = None;
                Cache::open(&self.runtime, options).await?
            }
        };
        let result = f(&mut cache).await;
        let healthy = match &result {
            Ok(_) => true,
            Err(e) => e.downcast_ref::<CoreError>().is_some(),
        };
        if healthy {
            self.idle_readers.lock().unwrap_or_else(|p| p.into_inner()).push(cache);
        }
        result.map_err(Failure::from)
    }

    /// Starts syncing `base_url` in the background, on an instance of its own.
    pub fn start_sync(self: &Arc<Self>, base_url: String, options: SyncOptions) -> Arc<Job> {
        let id = self.next_job.fetch_add(1, Ordering::Relaxed);
        let (progress_tx, progress_rx) = watch::channel(Progress::default());
        let (state_tx, state_rx) = watch::channel(JobState::Running);
        let job = Arc::new(Job {
            handle: format!("sync-{id}"),
            base_url: base_url.clone(),
            started_ms: now_ms(),
            cancel: CancelToken::new(),
            progress: progress_rx,
            state: state_rx,
        });
        {
            let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
            jobs.insert(id, job.clone());
            let finished: Vec<u64> = jobs.iter().filter(|(_, j)| !j.is_running()).map(|(k, _)| *k).collect();
            for k in finished.iter().take(finished.len().saturating_sub(FINISHED_KEPT)) {
                jobs.remove(k);
            }
        }
        let engine = self.clone();
        let cancel = job.cancel.clone();
        tokio::spawn(async move {
            let tracker = Mutex::new(Tracker::default());
            let sink: d365meta::imports::host::ProgressSink = Arc::new(move |event: &ProgressEvent| {
                let next = tracker.lock().unwrap_or_else(|p| p.into_inner()).observe(event);
                progress_tx.send_replace(next);
            });
            let mut options_for_cache = engine.config.cache.clone();
            options_for_cache.access = Access::ReadWrite;
            options_for_cache.cancel = cancel;
            options_for_cache.progress = Some(sink);
            let outcome = async {
                let mut cache = Cache::open(&engine.runtime, options_for_cache).await?;
                cache.sync(&base_url, options).await
            }
            .await;
            let state = match outcome {
                Ok(report) => JobState::Succeeded(Box::new(report)),
                Err(e) => {
                    let failure = Failure::from(e);
                    if failure.is(ErrorKind::Cancelled) { JobState::Cancelled(failure) } else { JobState::Failed(failure) }
                }
            };
            state_tx.send_replace(state);
        });
        job
    }

    pub fn job(&self, handle: &str) -> Option<Arc<Job>> {
        let id: u64 = handle.strip_prefix("sync-")?.parse().ok()?;
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
    }

    /// Cancels every running sync and waits (up to `patience`) for each to stop at its next step,
    /// so that the cache is left as it was before the unfinished step.
    pub async fn shutdown(&self, patience: Duration) {
        let running: Vec<Arc<Job>> =
            self.jobs.lock().unwrap_or_else(|p| p.into_inner()).values().filter(|j| j.is_running()).cloned().collect();
        for job in &running {
            job.cancel.cancel();
        }
        let all = futures_join(running.iter().map(|j| j.finished()));
        if tokio::time::timeout(patience, all).await.is_err() {
            tracing::warn!("{} sync(s) did not stop within {patience:?}", running.iter().filter(|j| j.is_running()).count());
        }
    }
}

async fn futures_join<F: Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    for f in futures {
        f.await;
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Where a sync stands: the phase it is in and a count that only grows across phases, as MCP
/// progress notifications require.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Progress {
    /// The phase, as the command line names it: `data-entities`, `labels:en-US`, ...
    pub phase: Option<String>,
    pub done: u64,
    pub total: Option<u64>,
    /// Items finished in all phases so far.
    pub overall: u64,
}

#[derive(Default)]
struct Tracker {
    phase: Option<String>,
    finished_before: u64,
    last_done: u64,
}

impl Tracker {
    fn observe(&mut self, event: &ProgressEvent) -> Progress {
        let phase = event.phase.to_string();
        if self.phase.as_deref() != Some(phase.as_str()) {
            self.finished_before += self.last_done;
            self.phase = Some(phase.clone());
            self.last_done = 0;
        }
        self.last_done = self.last_done.max(event.done);
        Progress { phase: Some(phase), done: event.done, total: event.total, overall: self.finished_before + self.last_done }
    }
}

#[derive(Clone, Debug)]
pub enum JobState {
    Running,
    Succeeded(Box<SyncReport>),
    Failed(Failure),
    Cancelled(Failure),
}

pub struct Job {
    pub handle: String,
    pub base_url: String,
    pub started_ms: i64,
    pub cancel: CancelToken,
    pub progress: watch::Receiver<Progress>,
    pub state: watch::Receiver<JobState>,
}

impl Job {
    pub fn is_running(&self) -> bool {
        matches!(*self.state.borrow(), JobState::Running)
    }

    /// Resolves once the sync has ended, however it ended.
    pub async fn finished(&self) {
        let mut state = self.state.clone();
        let _ = state.wait_for(|s| !matches!(s, JobState::Running)).await;
    }

    /// The job as `sync_status` reports it.
    pub fn status(&self) -> serde_json::Value {
        let progress = self.progress.borrow().clone();
        let (state, report, error) = match &*self.state.borrow() {
            JobState::Running => ("running", None, None),
            JobState::Succeeded(report) => ("succeeded", Some(d365meta_json(report.as_ref())), None),
            JobState::Failed(f) => ("failed", None, Some(f.clone())),
            JobState::Cancelled(f) => ("cancelled", None, Some(f.clone())),
        };
        serde_json::json!({
            "handle": self.handle,
            "base_url": self.base_url,
            "state": state,
            "started_ms": self.started_ms,
            "progress": progress,
            "report": report,
            "error": error,
        })
    }
}

/// A record the component answered, in the JSON every host prints.
pub fn d365meta_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}
